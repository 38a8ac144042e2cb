import Foundation
import Nanochat
import SAE
import Tensors

/// A nanochat model with SAEs attached at their hook points: the runtime's entry type. It tracks
/// which features fire on each token and applies steering interventions, in full forward passes
/// and in KV-cache generation alike, through the model's hook callbacks. No MPI, no training code.
public final class SAERuntime {
    public let model: NanochatModel
    public let tokenizer: Tokenizer
    public private(set) var saes: [AttachedSAE] = []
    public var interventions: [Steering] = []
    /// Features recorded per token and SAE (top `topN`) when `tracking` is on.
    public var tracking = true
    public var topN = 10
    /// What the last forward or generation recorded, in the order the tokens were processed.
    /// Tracking never changes the model's outputs, so the hook only copies each tracked activation
    /// row; the SAEs encode them here, all rows of an SAE in one batch (sgemm instead of one gemv
    /// per token: this keeps tracking's overhead on generation to a few percent).
    public var trace: [TokenFeatures] {
        encodePending()
        return recorded
    }
    private var recorded: [TokenFeatures] = []
    /// Tracked rows not yet encoded: (SAE index, position) in processing order, and per SAE its rows.
    private var pending: [(sae: Int, position: Int)] = []
    private var pendingRows: [[Float]] = []

    public init(model: NanochatModel, tokenizer: Tokenizer) {
        self.model = model
        self.tokenizer = tokenizer
    }

    /// Attaches an SAE; its hook must be in the model and have its width.
    public func attach(_ sae: AttachedSAE) throws {
        guard sae.hook.layer < model.config.nLayer, sae.sae.config.dIn == model.config.nEmbd else {
            throw RuntimeError.badInput("\(sae.path): does not fit \(sae.hook.name) of this model")
        }
        saes.append(sae)
    }

    /// The attached SAEs as interventions are checked against them.
    public var targets: [Steering.Target] { saes.map { Steering.Target(hook: $0.hook.name, dSAE: $0.sae.config.dSAE) } }

    /// Adds an intervention after checking it against the attached SAEs (`Steering.check`).
    public func steer(_ s: Steering) throws {
        try s.check(against: targets)
        interventions.append(s)
    }

    /// The hook callback for a sequence whose prompt has `promptLength` tokens.
    func callback(promptLength: Int) -> HookCallback {
        { [self] act in
            for (i, attached) in saes.enumerated() where attached.hook == act.point {
                apply(attached, index: i, to: act, promptLength: promptLength)
            }
        }
    }

    /// Reads (and, with interventions, edits) one hook activation [B, T, d] in place.
    func apply(_ a: AttachedSAE, index: Int, to act: HookActivation, promptLength: Int) {
        let steers = interventions.filter { $0.hook == a.hook.name }
        let d = act.width, rows = act.batch * act.tokens
        if tracking {
            while pendingRows.count <= index { pendingRows.append([]) }
            pendingRows[index].append(contentsOf: act.values)
            for r in 0..<rows { pending.append((index, act.startPosition + r % act.tokens)) }
        }
        if steers.isEmpty { return }
        do {
            let x = act.values.baseAddress!
            for r in 0..<rows {
                let position = act.startPosition + r % act.tokens, row = x + r * d
                // Every intervention reads the features of the activation as it arrived.
                let coefficients = steers.map { s -> Float in
                    guard s.applies(position: position, promptLength: promptLength) else { return 0 }
                    let current = s.mode == .add ? 0 : a.sae.activation(of: s.feature, in: row)
                    switch s.mode {
                    case .add: return s.value
                    case .clamp: return s.value - current
                    case .scale: return (s.value - 1) * current
                    }
                }
                for (s, c) in zip(steers, coefficients) where c != 0 {
                    var i = 0
                    for w in a.decoderRow(s.feature) { row[i] += c * w; i += 1 }
                }
            }
        }
    }

    /// Encodes the tracked rows (per SAE in one batch) and appends their features to `recorded`.
    private func encodePending() {
        guard !pending.isEmpty else { return }
        let encoded = saes.indices.map { i -> SparseFeatures? in
            guard i < pendingRows.count, !pendingRows[i].isEmpty else { return nil }
            let rows = pendingRows[i].count / saes[i].sae.config.dIn
            return pendingRows[i].withUnsafeBufferPointer { saes[i].sae.encodeSparse($0.baseAddress!, rows: rows) }
        }
        var next = [Int](repeating: 0, count: saes.count)
        for (i, position) in pending {
            let sae = saes[i].sae, d = sae.config.dIn, r = next[i]
            next[i] += 1
            let f = encoded[i]!
            // ‖x − x̂‖ with x̂ = b_dec + Σ f_j·W_dec[j] over the active features only.
            var xhat = Array(sae.params[sae.layout.b_dec])
            var e: Float = 0
            sae.params.withUnsafeBufferPointer { p in pendingRows[i].withUnsafeBufferPointer { x in
                xhat.withUnsafeMutableBufferPointer { xh in
                    for t in f.start[r] ..< f.start[r + 1] {
                        let w = p.baseAddress! + sae.layout.W_dec.lowerBound + Int(f.feature[t]) * d, v = f.activation[t]
                        for c in 0..<d { xh[c] += v * w[c] }
                    }
                    for c in 0..<d { let t = x[r * d + c] - xh[c]; e += t * t }
                }
            } }
            recorded.append(TokenFeatures(position: position, sae: i, features: Array(f.strongest(row: r).prefix(topN)),
                                          errorNorm: e.squareRoot()))
        }
        pending = []
        pendingRows = []
    }

    /// Forgets what was tracked so far.
    private func resetTrace() {
        recorded = []; pending = []; pendingRows = []
    }

    /// A full forward pass of `tokens` (one sequence) with tracking and steering; returns the
    /// logits [1, T, V]. All positions count as prompt.
    public func forward(tokens: [Int]) throws -> Tensor {
        resetTrace()
        return try model.forward(tokens: [tokens], logits: true, callback: callback(promptLength: tokens.count)).logits!
    }

    /// Generates with the KV cache, tracking and steering every step as configured.
    public func generate(prompt: [Int], maxTokens: Int, sampling: Sampling = Sampling(),
                         onToken: ((Int) -> Void)? = nil) throws -> [Int] {
        resetTrace()
        return try model.generate(prompt: prompt, maxTokens: maxTokens, sampling: sampling,
                                  callback: callback(promptLength: prompt.count), onToken: onToken)
    }

    /// Greedy generation by a full forward of the whole sequence at every step (no KV cache): the
    /// reference the KV-cache generation is tested against.
    public func generateByRecompute(prompt: [Int], maxTokens: Int) throws -> [Int] {
        var seq = prompt
        for _ in 0..<maxTokens {
            let logits = try model.forward(tokens: [seq], logits: true, callback: callback(promptLength: prompt.count)).logits!
            let v = logits.columns
            let last = Array(logits.storage[(seq.count - 1) * v ..< seq.count * v])
            var rng = Xoshiro256(seed: 0)
            seq.append(NanochatModel.sample(last, sampling: Sampling(), rng: &rng))
        }
        resetTrace()
        return Array(seq[prompt.count...])
    }
}
