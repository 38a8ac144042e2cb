import Distributed
import Foundation
import Nanochat

/// The model a config names, found and described from its meta json without loading the weights:
/// enough to check the config (hooks, context, d_in and so what the SAEs will allocate) before the
/// expensive part starts.
public struct ModelPlan: Sendable {
    public let location: ModelLocation
    public let config: ModelConfig
    public let profile: ArchitectureProfile?
    public let hooks: [HookPoint]

    public init(_ config: TrainConfig) throws {
        location = try ModelLocation.resolve(model: config.model.isEmpty ? nil : config.model,
                                             baseDir: config.baseDir.isEmpty ? nil : config.baseDir,
                                             tag: config.tag.isEmpty ? nil : config.tag,
                                             step: config.step >= 0 ? config.step : nil)
        profile = config.archProfile.isEmpty ? nil : try ArchitectureProfile.named(config.archProfile)
        let model = try ModelConfig(metaPath: location.metaPath)
        self.config = model
        hooks = try config.hooks.map { try HookPoint(name: $0, nLayer: model.nLayer) }
        guard Set(hooks).count == hooks.count else { throw ConfigError("config", "a hook is listed twice: \(config.hooks)") }
        guard !hooks.isEmpty else { throw ConfigError("config", "no hook given (key 'hook', e.g. blocks.2.hook_resid_post)") }
        guard config.context <= model.sequenceLen else {
            throw ConfigError("config", "context (\(config.context)) exceeds the model's sequence_len (\(model.sequenceLen))")
        }
    }

    /// The width of every hook point (the residual stream's).
    public var dIn: Int { config.nEmbd }
}

/// The nanochat model, tokenizer and hook points a config names, loaded and checked against each
/// other (the same on every rank).
public struct LoadedModel: Sendable {
    public let location: ModelLocation
    public let model: NanochatModel
    public let tokenizer: Tokenizer
    public let hooks: [HookPoint]

    public init(_ config: TrainConfig, sharedMemory: SharedMemory? = nil) throws {
        try self.init(ModelPlan(config), config, sharedMemory: sharedMemory)
    }

    /// Loads the tokenizer (checked against the planned vocabulary first) and the weights of a
    /// model already planned from `config`; converted tensors go to `sharedMemory` when given.
    public init(_ plan: ModelPlan, _ config: TrainConfig, sharedMemory: SharedMemory? = nil) throws {
        location = plan.location
        hooks = plan.hooks
        let loaded = try ModelAndTokenizer.load(location, tokenizer: config.tokenizer.isEmpty ? nil : config.tokenizer,
                                                needTokenizer: true, profile: plan.profile, sharedMemory: sharedMemory)
        model = loaded.model
        tokenizer = loaded.tokenizer!
    }
}

extension Communicator {
    /// This communicator's node-shared memory as the model loader takes it: tensors converted
    /// once per node (`Communicator.nodeShared`).
    public var sharedMemory: SharedMemory { { bytes, fill in try self.nodeShared(bytes: bytes, fill: fill) } }
}
