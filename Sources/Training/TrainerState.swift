import Foundation
import Formats
import SAE
import Tensors

// What a checkpoint holds besides the SAELens files, and how it is written and read.
//
//   <checkpoint>/trainer.json                      TrainerCheckpoint: step, tokens, ranks' positions, RNG
//   <checkpoint>/<hook>/state/training.json        HookTrainingState: SAE config, scale, θ, Adam step, stats
//   <checkpoint>/<hook>/state/params.safetensors   params, adam_m, adam_v (training space, unscaled-folded)
//
// The parameters are stored as trained (on s·x), not folded, so a resume continues bit for bit.

/// The run-wide part of a checkpoint.
public struct TrainerCheckpoint: Codable, Equatable, Sendable {
    public var format = 1
    public var step: Int
    public var tokens: Int
    public var worldSize: Int
    public var seed: Int
    public var hooks: [String]
    /// Each rank's activation stream position, by rank.
    public var positions: [StreamPosition]
    /// The resampling RNG (the same on every rank).
    public var rng: [UInt64]
}

/// One SAE's training state.
public struct HookTrainingState: Codable, Equatable, Sendable {
    public var hook: String
    public var sae: SAEConfig
    public var inputScale: Float
    public var threshold: Float
    public var adamConfig: AdamConfig
    public var adamStep: Int
    public var stats: LatentStatistics
}

/// A hook's SAE with everything its training needs. A class: the trainer updates several of its
/// buffers in one call (gradients, Adam moments, parameters).
public final class HookTrainer: @unchecked Sendable {
    public var hook: String
    public var sae: SAE
    public var adam: AdamState
    public var stats: LatentStatistics
    public var inputScale: Float
    var grads: [Float]

    init(hook: String, sae: SAE, adam: AdamState, stats: LatentStatistics, inputScale: Float, grads: [Float]) {
        self.hook = hook; self.sae = sae; self.adam = adam; self.stats = stats
        self.inputScale = inputScale; self.grads = grads
    }

    public var state: HookTrainingState {
        HookTrainingState(hook: hook, sae: sae.config, inputScale: inputScale, threshold: sae.threshold,
                          adamConfig: adam.config, adamStep: adam.step, stats: stats)
    }

    /// Writes `dir/state/` (training form) with Adam's `moments` over all parameters (gathered when
    /// the optimizer is sharded) — the SAELens files are written by the caller.
    func writeState(to dir: URL, moments: (m: [Float], v: [Float])) throws {
        let stateDir = dir.appendingPathComponent("state")
        try FileManager.default.createDirectory(at: stateDir, withIntermediateDirectories: true)
        try sae.params.withUnsafeBufferPointer { p in
            try moments.m.withUnsafeBufferPointer { m in try moments.v.withUnsafeBufferPointer { v in
                try writeSafetensors(vectors: [("params", p), ("adam_m", m), ("adam_v", v)],
                                     to: stateDir.appendingPathComponent("params.safetensors").path)
            } }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(state).write(to: stateDir.appendingPathComponent("training.json"))
    }

    /// Reads a hook's state written by `writeState`.
    static func readState(from dir: URL) throws -> HookTrainer {
        let stateDir = dir.appendingPathComponent("state")
        let s = try decodeCheckpointJSON(HookTrainingState.self, at: stateDir.appendingPathComponent("training.json").path)
        let paramsPath = stateDir.appendingPathComponent("params.safetensors").path
        var sae: SAE, adam: AdamState
        do {
            let file = try SafetensorsFile(path: paramsPath)
            sae = try SAE(config: s.sae, params: try file.tensor("params").storage, threshold: s.threshold)
            sae.threshold = s.threshold
            adam = AdamState(count: sae.params.count, config: s.adamConfig)
            adam.m = try file.tensor("adam_m").storage
            adam.v = try file.tensor("adam_v").storage
            adam.step = s.adamStep
        } catch let e as FormatError { throw CorruptCheckpoint(line: "\(e)") }
        catch let e as SAEError { throw CorruptCheckpoint(paramsPath, "\(e)") }
        guard adam.m.count == sae.params.count, adam.v.count == sae.params.count,
              s.stats.firingCounts.count == s.sae.dSAE else {
            throw CorruptCheckpoint(stateDir.path, "tensor sizes do not match the SAE config")
        }
        return HookTrainer(hook: s.hook, sae: sae, adam: adam, stats: s.stats, inputScale: s.inputScale,
                           grads: [Float](repeating: 0, count: sae.params.count))
    }
}

extension TrainerCheckpoint {
    static func read(from dir: URL) throws -> TrainerCheckpoint {
        try decodeCheckpointJSON(TrainerCheckpoint.self, at: dir.appendingPathComponent("trainer.json").path)
    }

    func write(to dir: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: dir.appendingPathComponent("trainer.json"))
    }
}
