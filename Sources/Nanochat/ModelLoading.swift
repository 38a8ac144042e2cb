import Formats

extension NanochatModel {
    /// Loads the checkpoint at `location` (config from the meta file, weights used in place from
    /// the mapped torch file: `ParameterStore`); `profile` forces an architecture profile instead
    /// of detecting it.
    public convenience init(location: ModelLocation, profile: ArchitectureProfile? = nil) throws {
        let config = try ModelConfig(metaPath: location.metaPath)
        try config.validate(file: location.metaPath)
        let store = try ParameterStore(checkpoint: TorchCheckpoint(path: location.modelPath))
        try self.init(config: config, store: store, profile: profile, file: location.modelPath)
    }
}
