/// The five SAE architectures (DESIGN 3). `rawValue` is our name (the `arch` config key); SAELens's
/// names are in `SAELensFormat.swift` (relu is SAELens's "standard"; batchtopk exports as "jumprelu").
public enum Architecture: String, Sendable, CaseIterable, Codable {
    /// f = ReLU(top-k of pre per row); unit-norm decoder rows; AuxK for dead latents.
    case topk
    /// Keep the k·B largest of ReLU(pre) over the batch; inference uses a learned threshold θ.
    case batchtopk
    /// Standard SAE: f = ReLU(pre), loss adds λ·Σ f_i·‖W_dec,i‖.
    case relu
    /// Gated SAE (Rajamanoharan et al. 2024a): gate and magnitude paths sharing W_enc.
    case gated
    /// JumpReLU SAE (Rajamanoharan et al. 2024b): f = pre·H(pre − θ), λ·L0 with a straight-through θ.
    case jumprelu

    /// Whether the decoder rows are kept at unit norm (gradient projection + renormalisation).
    public var hasUnitNormDecoder: Bool { self == .topk || self == .batchtopk }
    /// Whether the AuxK dead-latent loss applies.
    public var usesAuxK: Bool { self == .topk || self == .batchtopk }
    /// Whether λ (`SAEConfig.l1`) weights a sparsity term (L1 for relu/gated, L0 for jumprelu).
    public var usesSparsityPenalty: Bool { self == .relu || self == .gated || self == .jumprelu }
}

/// Everything that defines one SAE's shape and loss; the model reads this and nothing else.
public struct SAEConfig: Sendable, Equatable, Codable {
    public var architecture: Architecture
    /// d: width of the activations (the hook's d_model).
    public var dIn: Int
    /// m: number of latents.
    public var dSAE: Int
    /// Active latents per row (topk) or per row on average (batchtopk).
    public var k: Int = 32
    /// λ: coefficient of the sparsity term (relu/gated L1, jumprelu L0). Warm it up with `LambdaSchedule`.
    public var l1: Float = 0
    /// AuxK: how many dead latents reconstruct the residual; nil = d/2 (Gao et al. 2024).
    public var auxK: Int? = nil
    /// AuxK weight α (Gao et al. use 1/32).
    public var auxAlpha: Float = 1.0 / 32
    /// JumpReLU straight-through bandwidth ε of the rectangle kernel.
    public var bandwidth: Float = 0.05
    /// JumpReLU initial threshold θ₀ (log_threshold starts at log θ₀).
    public var initialThreshold: Float = 0.01
    /// BatchTopK: rate of the exponential running mean of each batch's smallest kept activation.
    public var thresholdRate: Float = 0.01

    public init(architecture: Architecture, dIn: Int, dSAE: Int, k: Int = 32, l1: Float = 0) {
        self.architecture = architecture
        self.dIn = dIn
        self.dSAE = dSAE
        self.k = k
        self.l1 = l1
    }

    /// k_aux actually used: the configured value, else d/2, never more than m.
    public var effectiveAuxK: Int { min(auxK ?? max(1, dIn / 2), dSAE) }

    /// How many floats the parameters take (`ParameterLayout.count`): 2·m·d + d + m·(per-latent
    /// vectors), computed with overflow checks; nil when it does not fit in an Int. `validate`
    /// refuses such a config, so `ParameterLayout` can use plain arithmetic after it.
    public var parameterCount: Int? {
        let perLatent = architecture == .gated ? 3 : architecture == .jumprelu ? 2 : 1
        let (md, o1) = dSAE.multipliedReportingOverflow(by: dIn)
        let (twoMD, o2) = md.multipliedReportingOverflow(by: 2)
        let (vectors, o3) = dSAE.multipliedReportingOverflow(by: perLatent)
        let (sum, o4) = twoMD.addingReportingOverflow(vectors)
        let (total, o5) = sum.addingReportingOverflow(dIn)
        return o1 || o2 || o3 || o4 || o5 ? nil : total
    }

    /// Throws `SAEError.invalidConfig` naming the first field out of range.
    public func validate() throws {
        func bad(_ field: String, _ expected: String) -> SAEError {
            .invalidConfig(field: field, expected: expected)
        }
        guard dIn >= 1 else { throw bad("d_in", "a positive width, got \(dIn)") }
        guard dSAE >= 1 else { throw bad("d_sae", "a positive number of latents, got \(dSAE)") }
        guard parameterCount != nil else {
            throw bad("d_sae", "small enough that its \(dSAE) × \(dIn) parameters can be counted, got \(dSAE)")
        }
        if architecture == .topk || architecture == .batchtopk {
            guard k >= 1 && k <= dSAE else { throw bad("k", "1...d_sae (\(dSAE)), got \(k)") }
            if let a = auxK, a < 1 { throw bad("aux_k", "a positive count, got \(a)") }
            guard auxAlpha >= 0 && auxAlpha.isFinite else { throw bad("aux_alpha", ">= 0, got \(auxAlpha)") }
        }
        guard l1 >= 0 && l1.isFinite else { throw bad("l1", "a finite λ >= 0, got \(l1)") }
        if architecture == .jumprelu {
            guard bandwidth > 0 && bandwidth.isFinite else { throw bad("bandwidth", "> 0, got \(bandwidth)") }
            guard initialThreshold > 0 && initialThreshold.isFinite else {
                throw bad("initial_threshold", "> 0, got \(initialThreshold)")
            }
        }
        guard thresholdRate > 0 && thresholdRate <= 1 else {
            throw bad("threshold_rate", "in (0, 1], got \(thresholdRate)")
        }
    }
}
