import Foundation

/// The shape of a nanochat model: `model_config` of `meta_<step>.json` (DESIGN 2).
public struct ModelConfig: Equatable, Sendable, Codable {
    /// Longest context the model was trained on (T ≤ sequence_len in a forward pass).
    public var sequenceLen: Int
    /// Tokenizer vocabulary V (logits have V columns; weights have Vp = ceil(V/64)·64 rows).
    public var vocabSize: Int
    public var nLayer: Int
    /// Query heads H; head size D = n_embd / H.
    public var nHead: Int
    /// Key/value heads Hkv (grouped-query attention when < H).
    public var nKVHead: Int
    /// Residual width C.
    public var nEmbd: Int
    /// Sliding-window pattern tiled over the layers: "L" = full context, "S" = short window.
    /// Absent in old checkpoints, which means "L".
    public var windowPattern: String

    public init(sequenceLen: Int, vocabSize: Int, nLayer: Int, nHead: Int, nKVHead: Int, nEmbd: Int,
                windowPattern: String = "L") {
        self.sequenceLen = sequenceLen; self.vocabSize = vocabSize; self.nLayer = nLayer
        self.nHead = nHead; self.nKVHead = nKVHead; self.nEmbd = nEmbd; self.windowPattern = windowPattern
    }

    /// nanochat's base_train shape for a depth: n_embd = 64·depth rounded up to the head dim 128,
    /// n_head = n_kv_head = n_embd / 128, sequence_len 2048, window pattern SSSL.
    public static func nanochatShape(depth: Int, vocabSize: Int = 32768) -> ModelConfig {
        let nEmbd = (64 * depth + 127) / 128 * 128
        return ModelConfig(sequenceLen: 2048, vocabSize: vocabSize, nLayer: depth, nHead: nEmbd / 128,
                           nKVHead: nEmbd / 128, nEmbd: nEmbd, windowPattern: "SSSL")
    }

    /// Head size D.
    public var headDim: Int { nEmbd / nHead }
    /// Vocabulary padded to a multiple of 64 (rows of wte, lm_head, value embeddings in `current`).
    public var paddedVocab: Int { (vocabSize + 63) / 64 * 64 }

    /// Reads `model_config` from a `meta_*.json` file.
    public init(metaPath: String) throws {
        guard let data = FileManager.default.contents(atPath: metaPath) else {
            throw NanochatError.unreadableMeta(file: metaPath, reason: "file missing or unreadable")
        }
        // Decode field by field so a missing or mistyped field is named in the error.
        struct Meta: Decodable { let model_config: [String: JSONField]? }
        let meta: Meta
        do { meta = try JSONDecoder().decode(Meta.self, from: data) } catch {
            throw NanochatError.unreadableMeta(file: metaPath, reason: "not a JSON object")
        }
        guard let mc = meta.model_config else {
            throw NanochatError.missingConfigField(file: metaPath, field: "model_config")
        }
        func int(_ key: String) throws -> Int {
            guard case .int(let n)? = mc[key] else { throw NanochatError.missingConfigField(file: metaPath, field: key) }
            return n
        }
        var pattern = "L"
        switch mc["window_pattern"] {
        case nil, .null?: break
        case .string(let s)?: pattern = s
        default:
            throw NanochatError.invalidConfig(file: metaPath, field: "window_pattern", reason: "expected a string of S and L")
        }
        self.init(sequenceLen: try int("sequence_len"), vocabSize: try int("vocab_size"), nLayer: try int("n_layer"),
                  nHead: try int("n_head"), nKVHead: try int("n_kv_head"), nEmbd: try int("n_embd"),
                  windowPattern: pattern)
        try validate(file: metaPath)
    }

    /// Checks the invariants the forward pass relies on.
    public func validate(file: String) throws {
        func check(_ ok: Bool, _ field: String, _ reason: String) throws {
            if !ok { throw NanochatError.invalidConfig(file: file, field: field, reason: reason) }
        }
        try check(sequenceLen > 0, "sequence_len", "must be positive, got \(sequenceLen)")
        try check(vocabSize > 0, "vocab_size", "must be positive, got \(vocabSize)")
        try check(nLayer > 0, "n_layer", "must be positive, got \(nLayer)")
        try check(nHead > 0 && nEmbd % nHead == 0, "n_head", "must divide n_embd = \(nEmbd), got \(nHead)")
        try check(headDim % 2 == 0, "n_head", "head size n_embd/n_head = \(headDim) must be even (rotary)")
        try check(nKVHead > 0 && nHead % nKVHead == 0, "n_kv_head", "must divide n_head = \(nHead), got \(nKVHead)")
        try check(nEmbd >= 24, "n_embd", "must be at least 24 (smear gate), got \(nEmbd)")
        try check(!windowPattern.isEmpty && windowPattern.uppercased().allSatisfy { $0 == "S" || $0 == "L" },
                  "window_pattern", "expected letters S and L, got \"\(windowPattern)\"")
    }

    /// Attention window per layer for the `current` profile: the pattern tiled over layers
    /// (L = sequence_len, S = ceil(sequence_len/4/128)·128), the last layer always L.
    /// A key j is visible from query t when 0 ≤ t − j ≤ window.
    public var windows: [Int] {
        let long = sequenceLen
        let short = ((sequenceLen + 3) / 4 + 127) / 128 * 128
        let pattern = Array(windowPattern.uppercased())
        var w = (0..<nLayer).map { pattern[$0 % pattern.count] == "L" ? long : short }
        w[nLayer - 1] = long
        return w
    }
}

/// A JSON value of `model_config`, as far as the config needs to tell them apart.
enum JSONField: Decodable {
    case int(Int), string(String), null, other

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { _ = b; self = .other }
        else if let n = try? c.decode(Int.self) { self = .int(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else { self = .other }
    }
}
