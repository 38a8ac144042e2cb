/// One released variant of nanochat's architecture: which parameters exist and which features
/// the forward pass switches on. Adding a variant is adding one value to `all` (DESIGN 2).
public struct ArchitectureProfile: Equatable, Sendable {
    /// Name used by `--arch-profile`.
    public var name: String
    /// Rotary base: θ_t,j = t · base^(−2j/D).
    public var rotaryBase: Float
    /// Round the rotary cos/sin tables to bfloat16 (nanochat v0 kept them in bf16).
    public var rotaryInBF16: Bool
    /// q and k are multiplied by this after their per-head norm (1.2 in `current`).
    public var qkScale: Float
    /// x[t] += smear_lambda · σ(smear_gate · x[t][:24]) · x[t−1] after the embedding.
    public var smear: Bool
    /// x = resid_lambdas[i]·x + x0_lambdas[i]·x0 before every block.
    public var residualLambdas: Bool
    /// Value embeddings (ResFormer-style) on every other layer, gated per kv head.
    public var valueEmbeddings: Bool
    /// x = norm(x − backout_lambda · x_back) before the head, x_back = x after layer n_layer/2.
    public var backout: Bool
    /// Per-layer sliding windows from `window_pattern`; otherwise full causal attention.
    public var slidingWindows: Bool
    /// wte, lm_head and value embeddings have Vp = ceil(V/64)·64 rows.
    public var padVocab: Bool
    /// logits = cap · tanh(logits / cap).
    public var softcap: Float

    /// nanochat master since 2026-03-14.
    public static let current = ArchitectureProfile(
        name: "current", rotaryBase: 100_000, rotaryInBF16: false, qkScale: 1.2, smear: true,
        residualLambdas: true, valueEmbeddings: true, backout: true, slidingWindows: true, padVocab: true,
        softcap: 15)

    /// nanochat's first release (2025-10-13).
    public static let v0 = ArchitectureProfile(
        name: "v0", rotaryBase: 10_000, rotaryInBF16: true, qkScale: 1, smear: false,
        residualLambdas: false, valueEmbeddings: false, backout: false, slidingWindows: false, padVocab: false,
        softcap: 15)

    /// Every known profile, in detection order.
    public static let all: [ArchitectureProfile] = [.current, .v0]

    /// The profile named `name` (for `--arch-profile`).
    public static func named(_ name: String) throws -> ArchitectureProfile {
        guard let p = all.first(where: { $0.name == name }) else { throw NanochatError.unknownProfile(name) }
        return p
    }

    /// Layer i has a value embedding when i % 2 == (n_layer − 1) % 2 (so the last layer has one).
    public func hasValueEmbedding(layer i: Int, nLayer: Int) -> Bool {
        valueEmbeddings && i % 2 == (nLayer - 1) % 2
    }

    /// Rows of the embedding-like matrices.
    public func vocabRows(_ c: ModelConfig) -> Int { padVocab ? c.paddedVocab : c.vocabSize }

    /// Every parameter of the state dict with its shape.
    public func expectedShapes(_ c: ModelConfig) -> [String: [Int]] {
        let C = c.nEmbd, D = c.headDim, kv = c.nKVHead * D, V = vocabRows(c)
        var s: [String: [Int]] = ["transformer.wte.weight": [V, C], "lm_head.weight": [V, C]]
        if smear { s["smear_gate.weight"] = [1, 24]; s["smear_lambda"] = [1] }
        if backout { s["backout_lambda"] = [1] }
        if residualLambdas { s["resid_lambdas"] = [c.nLayer]; s["x0_lambdas"] = [c.nLayer] }
        for i in 0..<c.nLayer {
            let p = "transformer.h.\(i)."
            s[p + "attn.c_q.weight"] = [c.nHead * D, C]
            s[p + "attn.c_k.weight"] = [kv, C]
            s[p + "attn.c_v.weight"] = [kv, C]
            s[p + "attn.c_proj.weight"] = [C, C]
            s[p + "mlp.c_fc.weight"] = [4 * C, C]
            s[p + "mlp.c_proj.weight"] = [C, 4 * C]
            if hasValueEmbedding(layer: i, nLayer: c.nLayer) {
                s["value_embeds.\(i).weight"] = [V, kv]
                s[p + "attn.ve_gate.weight"] = [c.nKVHead, 12]
            }
        }
        return s
    }

    /// The keys of `shapes` that do not fit this profile: missing, unexpected, or of another shape.
    public func misfits(_ shapes: [String: [Int]], config c: ModelConfig) -> [String] {
        let want = expectedShapes(c)
        var out: [String] = []
        for k in want.keys.sorted() {
            guard let got = shapes[k] else { out.append("missing \(k) \(want[k]!)"); continue }
            if got != want[k]! { out.append("\(k) is \(got), expected \(want[k]!)") }
        }
        for k in shapes.keys.sorted() where want[k] == nil { out.append("unexpected \(k) \(shapes[k]!)") }
        return out
    }

    /// The profile whose parameters the state dict holds exactly (or `forced`, if it fits).
    /// Otherwise the error lists the keys that did not fit the closest profile.
    public static func detect(shapes: [String: [Int]], config: ModelConfig, file: String,
                              forced: ArchitectureProfile? = nil) throws -> ArchitectureProfile {
        let candidates = forced.map { [$0] } ?? all
        var best: (ArchitectureProfile, [String])?
        for p in candidates {
            let m = p.misfits(shapes, config: config)
            if m.isEmpty { return p }
            if best == nil || m.count < best!.1.count { best = (p, m) }
        }
        let (p, m) = best!
        let shown = m.prefix(12).joined(separator: "; ") + (m.count > 12 ? "; … \(m.count - 12) more" : "")
        throw NanochatError.architectureMismatch(
            file: file, details: "closest profile \"\(p.name)\" (\(m.count) keys do not fit): \(shown)")
    }
}
