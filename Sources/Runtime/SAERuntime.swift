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
    public private(set) var trace: [TokenFeatures] = []

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

    /// Adds an intervention after checking it against the attached SAEs.
    public func steer(_ s: Steering) throws {
        guard let i = saes.firstIndex(where: { $0.hook.name == s.hook }) else {
            throw RuntimeError.badInput("--steer \(s.hook):\(s.feature): no SAE attached at \(s.hook) (attached: \(saes.map(\.hook.name).joined(separator: ", ")))")
        }
        guard s.feature < saes[i].sae.config.dSAE else {
            throw RuntimeError.badInput("--steer \(s.hook):\(s.feature): feature index must be < d_sae = \(saes[i].sae.config.dSAE)")
        }
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
        let needFeatures = tracking || steers.contains { $0.mode != .add }
        let d = act.width, rows = act.batch * act.tokens
        var f: Tensor? = nil
        if needFeatures {
            let x = Tensor(shape: [rows, d], storage: Array(act.values))
            f = try? a.sae.encode(x)
        }
        let m = a.sae.config.dSAE
        for r in 0..<rows {
            let position = act.startPosition + r % act.tokens
            if tracking, let fv = f {
                // x̂ = b_dec + Σ_{f_j > 0} f_j·W_dec[j]: only the active rows (sparse for TopK).
                var active: [(Int, Float)] = []
                for j in 0..<m where fv.storage[r * m + j] > 0 { active.append((j, fv.storage[r * m + j])) }
                var xhat = Array(a.sae.params[a.sae.layout.b_dec])
                for (j, v) in active {
                    let base = a.sae.layout.W_dec.lowerBound + j * d
                    for i in 0..<d { xhat[i] += v * a.sae.params[base + i] }
                }
                active.sort { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
                var e: Float = 0
                for i in 0..<d { let t = act.values[r * d + i] - xhat[i]; e += t * t }
                trace.append(TokenFeatures(position: position, sae: index, features: Array(active.prefix(topN)),
                                           errorNorm: e.squareRoot()))
            }
            for s in steers where s.applies(position: position, promptLength: promptLength) {
                let current = f?.storage[r * m + s.feature] ?? 0
                let coefficient: Float
                switch s.mode {
                case .add: coefficient = s.value
                case .clamp: coefficient = s.value - current
                case .scale: coefficient = (s.value - 1) * current
                }
                if coefficient == 0 { continue }
                let row = a.decoderRow(s.feature)
                var i = 0
                for w in row { act.values[r * d + i] += coefficient * w; i += 1 }
            }
        }
    }

    /// A full forward pass of `tokens` (one sequence) with tracking and steering; returns the
    /// logits [1, T, V]. All positions count as prompt.
    public func forward(tokens: [Int]) throws -> Tensor {
        trace = []
        return try model.forward(tokens: [tokens], logits: true, callback: callback(promptLength: tokens.count)).logits!
    }

    /// Generates with the KV cache, tracking and steering every step as configured.
    public func generate(prompt: [Int], maxTokens: Int, sampling: Sampling = Sampling(),
                         onToken: ((Int) -> Void)? = nil) throws -> [Int] {
        trace = []
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
        trace = []
        return Array(seq[prompt.count...])
    }
}
