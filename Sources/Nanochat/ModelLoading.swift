import Foundation
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

/// A model and its tokenizer: what every tool starts from (`ModelAndTokenizer.load`).
public struct ModelAndTokenizer: Sendable {
    public let location: ModelLocation
    public let model: NanochatModel
    /// nil only when no tokenizer was asked for and none sits beside the model.
    public let tokenizer: Tokenizer?
    public let tokenizerPath: String?

    /// Loads the model at `location` with a tokenizer, checked cheapest first so that bad input
    /// fails before any weight is read: the meta json, the tokenizer against its vocab_size, then
    /// `check` with the model's config (the caller's hooks, SAEs, output paths...), then the weights.
    /// `tokenizer`: a tokenizer.pkl or nanochat's tokenizer folder; nil: the base dir's, if any
    /// (required when `needTokenizer`).
    public static func load(_ location: ModelLocation, tokenizer: String?, needTokenizer: Bool,
                            profile: ArchitectureProfile? = nil, sharedMemory: SharedMemory? = nil,
                            check: (ModelConfig) throws -> Void = { _ in }) throws -> ModelAndTokenizer {
        let config = try ModelConfig(metaPath: location.metaPath)
        try config.validate(file: location.metaPath)
        let path = (tokenizer ?? location.defaultTokenizerPath).map(Tokenizer.file(named:))
        if path == nil && needTokenizer { throw NanochatError.tokenizerNeeded(model: location.modelPath) }
        let tok = try path.map { try Tokenizer(path: $0) }
        if let tok, let path { try tok.checkMatches(config, file: path) }
        try check(config)
        let model = try NanochatModel(location: location, profile: profile, sharedMemory: sharedMemory)
        if sharedMemory == nil, let note = model.conversionNote {   // (sae-train logs it on rank 0)
            FileHandle.standardError.write(Data((note + "\n").utf8))
        }
        return ModelAndTokenizer(location: location, model: model, tokenizer: tok, tokenizerPath: path)
    }
}

extension Tokenizer {
    /// The tokenizer file a path names: the file itself, or `tokenizer.pkl` inside nanochat's
    /// tokenizer folder (which nanochat's get_tokenizer takes).
    public static func file(named path: String) -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else { return path }
        return (path as NSString).appendingPathComponent("tokenizer.pkl")
    }

    /// Checks that this tokenizer fits a model of `config` (same vocabulary size); `file` names the tokenizer.
    public func checkMatches(_ config: ModelConfig, file: String) throws {
        if vocabSize != config.vocabSize {
            throw NanochatError.vocabularyMismatch(tokenizer: file, tokenizerVocab: vocabSize, modelVocab: config.vocabSize)
        }
    }
}
