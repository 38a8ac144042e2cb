/// Where each parameter tensor of one SAE lives inside its single contiguous Float32 allocation
/// (llm.c style): one buffer to allocate, zero, checkpoint and allreduce. Gradients and both Adam
/// moments use the same layout, so a range names the same tensor in all four buffers.
///
/// W_enc is stored *transposed*, as [m, d]: latent j's encoder vector is the contiguous row j, so the
/// sparse TopK backward writes whole rows (no strided columns). SAELens's [d, m] appears only on disk.
public struct ParameterLayout: Sendable, Equatable {
    public let dIn: Int
    public let dSAE: Int
    /// W_encᵀ [m, d]
    public let W_enc: Range<Int>
    /// b_enc [m] (empty for gated)
    public let b_enc: Range<Int>
    /// W_dec [m, d]
    public let W_dec: Range<Int>
    /// b_dec [d]
    public let b_dec: Range<Int>
    /// gated: b_gate [m], r_mag [m], b_mag [m] (empty otherwise)
    public let b_gate: Range<Int>
    public let r_mag: Range<Int>
    public let b_mag: Range<Int>
    /// jumprelu: log θ [m] (empty otherwise)
    public let log_threshold: Range<Int>
    /// Total number of floats.
    public let count: Int

    public init(_ config: SAEConfig) {
        let d = config.dIn, m = config.dSAE
        var next = 0
        func take(_ n: Int) -> Range<Int> { defer { next += n }; return next ..< next + n }
        dIn = d; dSAE = m
        W_enc = take(m * d)
        W_dec = take(m * d)
        b_dec = take(d)
        let gated = config.architecture == .gated
        b_enc = take(gated ? 0 : m)
        b_gate = take(gated ? m : 0)
        r_mag = take(gated ? m : 0)
        b_mag = take(gated ? m : 0)
        log_threshold = take(config.architecture == .jumprelu ? m : 0)
        count = next
    }

    /// The non-empty tensors in layout order, with their logical shapes (W_enc as stored, [m, d]).
    public var tensors: [(name: String, range: Range<Int>, shape: [Int])] {
        let all: [(String, Range<Int>, [Int])] = [
            ("W_enc", W_enc, [dSAE, dIn]), ("W_dec", W_dec, [dSAE, dIn]), ("b_dec", b_dec, [dIn]),
            ("b_enc", b_enc, [dSAE]), ("b_gate", b_gate, [dSAE]), ("r_mag", r_mag, [dSAE]),
            ("b_mag", b_mag, [dSAE]), ("log_threshold", log_threshold, [dSAE]),
        ]
        return all.filter { !$0.1.isEmpty }.map { (name: $0.0, range: $0.1, shape: $0.2) }
    }

    /// Ranges of every per-latent vector ([m]-shaped tensors), for resampling and moment resets.
    var perLatentVectors: [Range<Int>] {
        [b_enc, b_gate, r_mag, b_mag, log_threshold].filter { !$0.isEmpty }
    }
}
