import Formats

extension NanochatModel {
    /// Loads the checkpoint at `location` (weights from the torch state dict, config from the
    /// meta file); `profile` forces an architecture profile instead of detecting it.
    public convenience init(location: ModelLocation, profile: ArchitectureProfile? = nil) throws {
        let config = try ModelConfig(metaPath: location.metaPath)
        let stateDict = try loadTorchStateDict(path: location.modelPath)
        try self.init(config: config, stateDict: stateDict, profile: profile, file: location.modelPath)
    }
}
