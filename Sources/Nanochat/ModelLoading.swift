import Formats

extension NanochatModel {
    /// Loads the checkpoint at `location` (config from the meta file, weights used in place from
    /// the mapped torch file: `ParameterStore`); `profile` forces an architecture profile instead
    /// of detecting it. Tensors that must be converted go to `sharedMemory` when given (one copy
    /// per node under MPI), else to private memory.
    public convenience init(location: ModelLocation, profile: ArchitectureProfile? = nil, sharedMemory: SharedMemory? = nil) throws {
        let config = try ModelConfig(metaPath: location.metaPath)
        try config.validate(file: location.metaPath)
        let store = try ParameterStore(checkpoint: TorchCheckpoint(path: location.modelPath), shared: sharedMemory)
        try self.init(config: config, store: store, profile: profile, file: location.modelPath)
    }
}
