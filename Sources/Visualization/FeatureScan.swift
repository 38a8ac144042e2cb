import Foundation
import Nanochat
import SAE
import Tensors

/// Settings of the pass over the data.
public struct ScanSettings: Sendable {
    /// Tokens shown around a qualifying token.
    public var window = WindowShape()
    /// Top activating windows kept per feature.
    public var topCount = 20
    /// Sample windows per activation interval.
    public var samplesPerInterval = 5
    /// Seeds every feature's sampling (feature j uses seed + j through SplitMix64).
    public var seed: UInt64 = 0
    /// Rows per model forward.
    public var rowsPerPass = 8

    public init() {}
}

/// Per-feature statistics of an SAE over a stream of token rows, gathered in one pass: each batch
/// is one model forward (stopped at the hook) and one SAE encode (sparse: only what fired is kept),
/// and every feature's accumulator sees the batch's activations of that feature. Memory is
/// O(features · (top + samples) · window), whatever the number of tokens. BOS positions count nowhere.
public struct FeatureScan: Sendable {
    public let settings: ScanSettings
    public private(set) var features: [FeatureAccumulator]
    /// Tokens seen, BOS left out: the denominator of every density.
    public private(set) var tokens = 0
    /// Rows seen.
    public private(set) var rows = 0
    /// Wall-clock seconds of the pass by stage: model forward, SAE encode, accumulation.
    public internal(set) var seconds = (forward: 0.0, encode: 0.0, accumulate: 0.0)

    public init(features m: Int, settings: ScanSettings = ScanSettings()) {
        self.settings = settings
        features = (0..<m).map {
            FeatureAccumulator(topCount: settings.topCount, samplesPerInterval: settings.samplesPerInterval,
                               seed: settings.seed &+ UInt64($0))
        }
    }

    /// Adds a batch: B rows of T token ids and the SAE's active features `f` at them (B·T rows).
    /// Features are split over the cores; each accumulator is touched by one thread only.
    public mutating func add(rows batch: [[Int]], activations f: SparseFeatures, bos: Int) {
        let ids = batch.flatMap { $0 }, T = batch.first?.count ?? 0, m = features.count
        precondition(f.rows == ids.count, "activations of \(f.rows) rows for \(batch.count)×\(T) tokens")
        tokens += ids.reduce(0) { $0 + ($1 == bos ? 0 : 1) }
        rows += batch.count
        let before = settings.window.before, after = settings.window.after
        let chunks = min(m, 4 * ProcessInfoCores.count), per = (m + chunks - 1) / chunks
        features.withUnsafeMutableBufferPointer { acc in
            let acc = UncheckedSendable(acc)
            parallelFor(chunks) { c in
                let lo = Int32(c * per), hi = Int32(min(m, (c + 1) * per))
                for p in ids.indices where ids[p] != bos {
                    for s in f.start[p] ..< f.start[p + 1] where f.feature[s] >= lo && f.feature[s] < hi {
                        let j = Int(f.feature[s])
                        acc.value[j].add(f.activation[s]) {
                            // Window [p − before, p + after] clipped to p's row.
                            let rowStart = p - p % T
                            let w = max(rowStart, p - before) ..< min(rowStart + T, p + after + 1)
                            return ContextWindow(tokens: w.map { Int32(ids[$0]) },
                                                 values: w.map { ids[$0] == bos ? 0 : f.activation(row: $0, feature: j) },
                                                 peak: p - w.lowerBound)
                        }
                    }
                }
            }
        }
    }
}

/// Runs `model` on `rows` up to `hook` (one forward per `settings.rowsPerPass` rows), encodes the
/// activations with `sae` and gathers every feature's statistics. `progress` gets the tokens done.
public func scanFeatures(sae: SAE, hook: HookPoint, model: NanochatModel, rows: [[Int]], bos: Int,
                         settings: ScanSettings = ScanSettings(), progress: ((Int) -> Void)? = nil) throws -> FeatureScan {
    var scan = FeatureScan(features: sae.config.dSAE, settings: settings)
    var done = 0
    for start in stride(from: 0, to: rows.count, by: settings.rowsPerPass) {
        let batch = Array(rows[start ..< min(rows.count, start + settings.rowsPerPass)])
        let t0 = Date()
        let x = try model.forward(tokens: batch, hooks: [hook], logits: false).activations[hook]!
        let t1 = Date()
        let f = try sae.encodeSparse(x)
        // A non-finite activation would stretch the doubling grid forever; it means broken weights.
        if let s = f.activation.firstIndex(where: { !$0.isFinite }) { throw NonFiniteActivation(feature: Int(f.feature[s])) }
        let t2 = Date()
        scan.add(rows: batch, activations: f, bos: bos)
        scan.seconds.forward += t1.timeIntervalSince(t0)
        scan.seconds.encode += t2.timeIntervalSince(t1)
        scan.seconds.accumulate += Date().timeIntervalSince(t2)
        done += batch.reduce(0) { $0 + $1.count }
        progress?(done)
    }
    return scan
}

/// An SAE feature came out infinite (the weights, not the data, are at fault: inputs are checked).
public struct NonFiniteActivation: Error, CustomStringConvertible {
    public let feature: Int
    public var description: String { "feature \(feature) has a non-finite activation: check the SAE's weights" }
}
