import Foundation
import Tensors

// nanosae's sparse autoencoder. Notable choices (DESIGN 3):
// - One contiguous Float32 buffer holds every parameter (`ParameterLayout`); gradients use a second
//   buffer of the same layout, so a data-parallel trainer allreduces one buffer.
// - W_enc is stored transposed ([m, d]) so each latent's encoder vector is a contiguous row.
// - `lossAndGradients` only computes; `optimizerStep` (Adam.swift) only updates. Nothing in between
//   is hidden state, so every rank of a trainer can do the same thing to the same numbers.
// - TopK/BatchTopK touch only the active latents after the dense encoder product (TopK.swift).

/// One sparse autoencoder: its config, its parameters and (batchtopk) its inference threshold.
public struct SAE: Sendable {
    public let config: SAEConfig
    public let layout: ParameterLayout
    /// Every parameter, laid out as `layout` says (private, or node-shared under the trainer).
    public var params: ParameterBuffer
    /// BatchTopK: running mean θ of each batch's smallest kept activation (0 until the first update).
    /// Inference and the jumprelu export use it. Unused by the other architectures.
    public var threshold: Float = 0
    /// TopK/BatchTopK: how many row slices the encoder runs concurrently, each with its own sgemm
    /// calls and selection. Set it to the core count with BLAS single-threaded (`BLAS.setThreads(1)`):
    /// each core then works through its rows without hand-offs between BLAS's threads and ours.
    /// 1 = one multi-threaded sgemm per chunk. Results do not depend on it.
    public var encoderWorkers = 1
    /// AuxK runs as dense products over the dead latents while there are at most this many times
    /// k_aux of them (`usesGatheredAuxK`), entry by entry beyond. Results agree either way (to float
    /// rounding); tests set it to 0 to take the entry-by-entry path.
    var auxGatheredDensity = 8
    /// TopK/BatchTopK: each row's selection starts from margin × the ratio of the previous rows'
    /// k-th largest to ‖x̃‖ (`topkSelect`). It changes how much work a row costs, never the result;
    /// tests set extreme values to drive every row through its fallback.
    var selectionMargin: Float = 0.9

    /// A freshly initialised SAE, as the anchors do it: decoder rows are random unit directions
    /// (norm 0.1 for the L1-type architectures, after Anthropic's April 2024 update), W_enc = W_decᵀ,
    /// biases 0, r_mag 0, log θ = log θ₀. Set b_dec from data with `initializeDecoderBias`.
    public init(config: SAEConfig, rng: inout Xoshiro256) throws {
        try config.validate()
        self.config = config
        layout = ParameterLayout(config)
        params = ParameterBuffer(repeating: 0, count: layout.count)
        let d = config.dIn, m = config.dSAE
        let norm: Float = config.architecture.hasUnitNormDecoder ? 1 : 0.1
        for j in 0..<m {
            var row = (0..<d).map { _ in rng.nextGaussian() }
            let n = max(row.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            for i in 0..<d { row[i] *= norm / n }
            for i in 0..<d {
                params[layout.W_dec.lowerBound + j * d + i] = row[i]
                params[layout.W_enc.lowerBound + j * d + i] = row[i]   // W_encᵀ row j = W_dec row j
            }
        }
        let logθ0 = Foundation.log(config.initialThreshold)
        for i in layout.log_threshold { params[i] = logθ0 }
    }

    /// An SAE with the given parameters (checked against the layout).
    public init(config: SAEConfig, params: [Float], threshold: Float = 0) throws {
        try self.init(config: config, buffer: ParameterBuffer(params), threshold: threshold)
    }

    /// An SAE over `buffer` (a node-shared buffer is used in place).
    public init(config: SAEConfig, buffer params: ParameterBuffer, threshold: Float = 0) throws {
        try config.validate()
        self.config = config
        layout = ParameterLayout(config)
        guard params.count == layout.count else {
            throw SAEError.sizeMismatch(what: "parameter buffer", expected: layout.count, got: params.count)
        }
        self.params = params
        self.threshold = threshold
    }

    /// A copy of one parameter tensor (W_enc as stored: [m, d]).
    public func tensor(_ range: Range<Int>, shape: [Int]) -> Tensor {
        Tensor(shape: shape, storage: Array(params[range]))
    }

    /// b_dec ← mean of `batch` (or its geometric median, Weiszfeld iterations, as SAELens offers).
    public mutating func initializeDecoderBias(from batch: Tensor, geometricMedian: Bool = false) throws {
        try checkBatch(batch)
        let d = config.dIn, B = batch.rows
        var mean = [Double](repeating: 0, count: d)
        for b in 0..<B { for i in 0..<d { mean[i] += Double(batch.storage[b * d + i]) } }
        for i in 0..<d { mean[i] /= Double(B) }
        if geometricMedian {
            // Weiszfeld: y ← Σ x_b/‖x_b − y‖ / Σ 1/‖x_b − y‖, started at the mean.
            for _ in 0..<100 {
                var num = [Double](repeating: 0, count: d), den = 0.0
                for b in 0..<B {
                    var dist = 0.0
                    for i in 0..<d { let t = Double(batch.storage[b * d + i]) - mean[i]; dist += t * t }
                    let w = 1 / max(dist.squareRoot(), 1e-8)
                    den += w
                    for i in 0..<d { num[i] += w * Double(batch.storage[b * d + i]) }
                }
                for i in 0..<d { mean[i] = num[i] / den }
            }
        }
        for i in 0..<d { params[layout.b_dec.lowerBound + i] = Float(mean[i]) }
    }

    /// Throws unless `batch` is [B, d_in] with B ≥ 1 and every value finite.
    func checkBatch(_ batch: Tensor) throws {
        guard batch.columns == config.dIn else { throw SAEError.widthMismatch(expected: config.dIn, got: batch.columns) }
        guard batch.count > 0 else { throw SAEError.emptyBatch }
        if let i = batch.withConstBuffer(firstNonFinite) { throw SAEError.nonFiniteInput(row: i / config.dIn) }
    }
}

/// What one forward/backward pass measured. Sums (not means) where a trainer must add across ranks.
public struct StepStatistics: Sendable {
    /// Rows in the batch.
    public var rows = 0
    /// The objective whose gradient was computed (reconstruction + sparsity + auxiliary terms).
    public var loss = 0.0
    /// Mean over rows of ‖x − x̂‖².
    public var mse = 0.0
    /// λ term (L1 for relu/gated, L0 for jumprelu).
    public var sparsityLoss = 0.0
    /// AuxK (topk/batchtopk) or the gated frozen-decoder term.
    public var auxLoss = 0.0
    /// Σ_b ‖x_b − x̂_b‖²
    public var sumSquaredError = 0.0
    /// Σ_b ‖x_b − mean(x)‖²
    public var totalVariance = 0.0
    /// Mean number of latents with f > 0 per row.
    public var l0 = 0.0
    /// Per latent, the number of rows in which it fired (f > 0). Combine across ranks with SUM.
    public var firingCounts: [Int64] = []
    /// BatchTopK: the smallest positive kept activation of this batch (feeds `updateThreshold`).
    public var minKeptActivation: Float? = nil

    /// Fraction of variance unexplained, Σ‖x − x̂‖² / Σ‖x − mean(x)‖².
    public var fvu: Double { totalVariance > 0 ? sumSquaredError / totalVariance : 0 }
}

extension SAE {
    /// Loss of `batch` [B, d] and its gradient with respect to every parameter, written into `grads`
    /// (overwritten; same layout as `params`). `lambda` overrides `config.l1` (for its warm-up);
    /// `deadMask` [m] marks the latents the AuxK term may use (topk/batchtopk; nil = no AuxK).
    /// Throws before writing anything if the batch is malformed or holds NaN/inf.
    public func lossAndGradients(_ batch: Tensor, into grads: inout [Float], lambda: Float? = nil,
                                 deadMask: [Bool]? = nil) throws -> StepStatistics {
        try checkBatch(batch)
        let λ = lambda ?? config.l1
        guard λ >= 0 && λ.isFinite else { throw SAEError.invalidLambda(λ) }
        guard grads.count == layout.count else {
            throw SAEError.sizeMismatch(what: "gradient buffer", expected: layout.count, got: grads.count)
        }
        if let mask = deadMask, mask.count != config.dSAE {
            throw SAEError.sizeMismatch(what: "dead-latent mask", expected: config.dSAE, got: mask.count)
        }
        var stats: StepStatistics
        switch config.architecture {
        case .topk, .batchtopk: stats = topkLossAndGradients(batch, &grads, deadMask: deadMask, dense: false)
        case .relu: stats = reluLossAndGradients(batch, &grads, lambda: λ)
        case .gated: stats = gatedLossAndGradients(batch, &grads, lambda: λ)
        case .jumprelu: stats = jumpreluLossAndGradients(batch, &grads, lambda: λ)
        }
        stats.totalVariance = totalVariance(batch)
        return stats
    }

    /// Σ_b ‖x_b − mean(x)‖² in Double.
    func totalVariance(_ x: Tensor) -> Double {
        x.withConstBuffer { sumOfSquaredDeviations($0.baseAddress!, rows: x.rows, columns: x.columns) }
    }

    /// BatchTopK: θ ← θ + rate·(a_min − θ), initialised by the first batch's value. Call on every rank
    /// with the same (e.g. rank-combined) value so θ stays identical.
    public mutating func updateThreshold(with minKeptActivation: Float) {
        threshold = threshold == 0 ? minKeptActivation
            : threshold + config.thresholdRate * (minKeptActivation - threshold)
    }
}

/// Σ_b ‖x_b − mean(x)‖² of x [rows, columns] in Double. Each thread owns a range of columns (two
/// passes over the rows: mean, then squares), and the columns add in order: the same bits for any
/// thread count.
func sumOfSquaredDeviations(_ x: UnsafePointer<Float>, rows B: Int, columns d: Int) -> Double {
    var perColumn = [Double](repeating: 0, count: d)
    perColumn.withUnsafeMutableBufferPointer { pc in
        let box = UncheckedSendable((x, pc.baseAddress!))
        parallelRanges(d, grain: 32) { r in
            let (x, out) = box.value
            let n = r.count, mean = UnsafeMutablePointer<Double>.allocate(capacity: 2 * n), s = mean + n
            defer { mean.deallocate() }
            mean.initialize(repeating: 0, count: 2 * n)
            for b in 0..<B { let row = x + b * d + r.lowerBound; for i in 0..<n { mean[i] += Double(row[i]) } }
            for i in 0..<n { mean[i] /= Double(B) }
            for b in 0..<B {
                let row = x + b * d + r.lowerBound
                for i in 0..<n { let t = Double(row[i]) - mean[i]; s[i] += t * t }
            }
            (out + r.lowerBound).update(from: s, count: n)
        }
    }
    return perColumn.reduce(0, +)
}
