import Tensors

// nanochat's GPT (karpathy/nanochat, gpt.py) for inference on the CPU in Float32. Notable choices,
// as in the original:
// - no biases, no learnable norm weights: norm(x) = x / sqrt(mean(x²) + eps) everywhere;
// - rotary position embeddings, q/k normed per head (then ×1.2 in `current`);
// - grouped-query attention (n_kv_head ≤ n_head), sliding windows per layer (`current`);
// - relu² MLP of width 4C; untied lm_head; logits soft-capped at 15·tanh(·/15);
// - `current` adds: smear of the previous token's embedding, per-layer residual and x0 lambdas,
//   value embeddings on every other layer (ResFormer), and a "backout" of the mid-depth residual.
// The forward pass itself is in Forward.swift, attention in Attention.swift.

/// A loaded nanochat model: its config, architecture profile and parameters. Immutable, so one
/// model may serve several threads (each with its own `KVCache`).
public final class NanochatModel: @unchecked Sendable {
    public let config: ModelConfig
    public let profile: ArchitectureProfile
    /// Attention window per layer (a key j is visible from query t when 0 ≤ t − j ≤ window).
    public let windows: [Int]
    let store: ParameterStore
    let rotary: RotaryTable
    /// Scratch memory of the forward pass, reused between calls.
    let scratchPool = ScratchPool()

    /// Pointers into `store` for one block; weights are [out, in].
    struct Block {
        let cQ, cK, cV, attnProj: UnsafePointer<Float>   // [H·D, C], [Hkv·D, C] ×2, [C, C]
        let fc, mlpProj: UnsafePointer<Float>            // [4C, C], [C, 4C]
        let valueEmbed: EmbeddingTable?                  // [Vp, Hkv·D]
        let veGate: UnsafePointer<Float>?                // [Hkv, 12]
    }
    let blocks: [Block]
    let wte: EmbeddingTable                              // [Vp, C]
    let lmHead: UnsafePointer<Float>                     // [Vp, C]
    let smearGate: UnsafePointer<Float>?                 // [1, 24]
    let smearLambda: Float, backoutLambda: Float
    let residLambdas: [Float], x0Lambdas: [Float]

    /// Builds a model from a state dict (keys without `_orig_mod.`), copied into private memory.
    /// The profile is detected from the keys and shapes unless `profile` forces one; `file` names
    /// the source in errors.
    public convenience init(config: ModelConfig, stateDict: [String: Tensor], profile forced: ArchitectureProfile? = nil,
                            file: String = "state dict") throws {
        try self.init(config: config, store: ParameterStore(stateDict), profile: forced, file: file)
    }

    init(config: ModelConfig, store: ParameterStore, profile forced: ArchitectureProfile?, file: String) throws {
        try config.validate(file: file)
        let profile = try ArchitectureProfile.detect(shapes: store.shapes, config: config, file: file, forced: forced)
        if let (name, i) = store.firstNonFinite() {
            throw NanochatError.nonFiniteWeight(file: file, tensor: name, index: i)
        }
        self.config = config
        self.profile = profile
        self.store = store
        windows = profile.slidingWindows ? config.windows : Array(repeating: config.sequenceLen, count: config.nLayer)
        // nanochat precomputes rotary tables for 10× the training context.
        rotary = RotaryTable(headDim: config.headDim, positions: 10 * config.sequenceLen,
                             base: profile.rotaryBase, bf16: profile.rotaryInBF16)
        blocks = (0..<config.nLayer).map { i in
            let p = "transformer.h.\(i)."
            let ve = profile.hasValueEmbedding(layer: i, nLayer: config.nLayer)
            return Block(cQ: store.pointer(p + "attn.c_q.weight"), cK: store.pointer(p + "attn.c_k.weight"),
                         cV: store.pointer(p + "attn.c_v.weight"), attnProj: store.pointer(p + "attn.c_proj.weight"),
                         fc: store.pointer(p + "mlp.c_fc.weight"), mlpProj: store.pointer(p + "mlp.c_proj.weight"),
                         valueEmbed: ve ? store.table("value_embeds.\(i).weight") : nil,
                         veGate: ve ? store.pointer(p + "attn.ve_gate.weight") : nil)
        }
        wte = store.table("transformer.wte.weight")
        lmHead = store.pointer("lm_head.weight")
        smearGate = profile.smear ? store.pointer("smear_gate.weight") : nil
        smearLambda = profile.smear ? store.pointer("smear_lambda")[0] : 0
        backoutLambda = profile.backout ? store.pointer("backout_lambda")[0] : 0
        if profile.residualLambdas {
            residLambdas = Array(UnsafeBufferPointer(start: store.pointer("resid_lambdas"), count: config.nLayer))
            x0Lambdas = Array(UnsafeBufferPointer(start: store.pointer("x0_lambdas"), count: config.nLayer))
        } else {
            residLambdas = Array(repeating: 1, count: config.nLayer)
            x0Lambdas = Array(repeating: 0, count: config.nLayer)
        }
    }

    /// A copy of parameter `name` (e.g. "lm_head.weight" for W_U in analyses).
    public func parameter(_ name: String) -> Tensor? { store.has(name) ? store.tensor(name) : nil }

    /// Longest sequence a KV cache may hold: the rotary table's length (10 · sequence_len).
    public var maxPositions: Int { rotary.positions }

    /// Parameters of the model.
    public var parameterCount: Int { store.count }

    /// Tensors of the checkpoint that could not be used in place and were converted to float32
    /// (shared or private memory), with their bytes (none for a float32 checkpoint, bf16 embeddings
    /// or not).
    public var convertedTensors: [(name: String, bytes: Int)] { store.converted }

    /// One line for the log when some tensors were converted (nil when all are used in place).
    public var conversionNote: String? {
        let c = store.converted
        guard !c.isEmpty else { return nil }
        let mb = Double(c.reduce(0) { $0 + $1.bytes }) / 1e6
        return "weights: \(c.count) tensor(s) converted to float32 (\(String(format: "%.1f", mb)) MB), not used in place from "
            + "the mapped checkpoint: " + c.prefix(4).map(\.name).joined(separator: ", ") + (c.count > 4 ? ", ..." : "")
    }

    /// Forward FLOPs per token for a context of T (matmuls only: 2 per multiply-add), as
    /// nanochat's estimate_flops without the backward factor.
    public func flopsPerToken(context t: Int) -> Double {
        let c = Double(config.nEmbd), kv = Double(config.nKVHead * config.headDim)
        let linear = 2 * (c * c * 2 + 2 * c * kv + 8 * c * c)
        // QKᵀ and PV: 4·C per visible key; query p sees min(p, window) + 1 keys.
        let attention = windows.reduce(0.0) { acc, w in
            acc + 4 * c * Double((0..<t).reduce(0) { $0 + min($1, w) + 1 }) / Double(max(t, 1))
        }
        return Double(config.nLayer) * linear + attention + 2 * c * Double(config.vocabSize)
    }
}
