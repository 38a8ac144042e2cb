import Tensors

/// nanochat's tokenizer: a tiktoken `Encoding` (byte-level BPE over nanochat's split pattern)
/// with special tokens such as `<|bos|>`. Encoding never produces special tokens from text.
public struct Tokenizer: Sendable {
    /// Encoding name from tokenizer.pkl (nanochat: "rustbpe").
    public let name: String
    /// Special tokens by name.
    public let specialTokens: [String: Int]
    let bpe: BytePairEncoder
    private let specialNames: [Int: String]

    /// nanochat's split pattern (DESIGN 2), the only `pat_str` this tokenizer implements.
    public static let splitPattern = PretokenSplitter.pattern

    /// The beginning-of-sequence token nanochat prepends to every document.
    public static let bosName = "<|bos|>"

    /// Builds a tokenizer from tiktoken's state: `ranks` maps token bytes to id (= merge rank).
    /// `file` names the source in errors.
    public init(name: String = "rustbpe", pattern: String = Tokenizer.splitPattern, ranks: [[UInt8]: Int],
                specialTokens: [String: Int], file: String = "tokenizer") throws {
        guard pattern == PretokenSplitter.pattern else {
            throw NanochatError.invalidTokenizer(file: file, reason: "pat_str is \(pattern.debugDescription); only nanochat's split pattern is implemented")
        }
        let singles = Set(ranks.keys.filter { $0.count == 1 }.map { $0[0] })
        guard singles.count == 256 else {
            throw NanochatError.invalidTokenizer(file: file, reason: "mergeable_ranks has \(singles.count) of the 256 single bytes")
        }
        var seen = Set<Int>()
        for id in Array(ranks.values) + Array(specialTokens.values) {
            guard id >= 0, seen.insert(id).inserted else {
                throw NanochatError.invalidTokenizer(file: file, reason: "token id \(id) is negative or used twice")
            }
        }
        // BytePairEncoder keeps a table entry per id up to the largest ordinary one (Int32 ids), so a
        // corrupt id must not size it: ordinary ids leave at most as many gaps as there are special
        // tokens (tiktoken's files number them densely from 0, nanochat's specials follow), and
        // special ids stay below 2³¹ so vocabSize cannot overflow.
        let ordinaryLimit = ranks.count + specialTokens.count
        if let id = ranks.values.first(where: { $0 >= ordinaryLimit }) {
            throw NanochatError.invalidTokenizer(file: file, reason: "mergeable_ranks id \(id) is not below \(ordinaryLimit), "
                + "the number of ordinary and special tokens")
        }
        if let id = specialTokens.values.first(where: { $0 >= Int(Int32.max) }) {
            throw NanochatError.invalidTokenizer(file: file, reason: "special token id \(id) is not below 2³¹ − 1")
        }
        self.name = name
        self.specialTokens = specialTokens
        bpe = BytePairEncoder(ranks: ranks)
        specialNames = Dictionary(uniqueKeysWithValues: specialTokens.map { ($1, $0) })
    }

    /// Number of token ids (largest id + 1), tiktoken's `n_vocab`.
    public var vocabSize: Int { max(bpe.tokenBytes.count, (specialTokens.values.max() ?? -1) + 1) }

    /// The id of the special token `name`, e.g. "<|bos|>".
    public func specialToken(_ name: String) throws -> Int {
        guard let id = specialTokens[name] else { throw NanochatError.unknownSpecialToken(name) }
        return id
    }

    /// `<|bos|>`.
    public var bos: Int { get throws { try specialToken(Self.bosName) } }

    /// Token ids of `text` (no BOS added; special-token text is encoded as ordinary text).
    public func encode(_ text: String) -> [Int] {
        let scalars = Array(text.unicodeScalars)
        // UTF-8 bytes of the text and the byte offset of every scalar (plus the end).
        var bytes: [UInt8] = []
        bytes.reserveCapacity(scalars.count)
        var offsets = [Int](repeating: 0, count: scalars.count + 1)
        for (i, s) in scalars.enumerated() {
            offsets[i] = bytes.count
            if s.value < 0x80 { bytes.append(UInt8(s.value)) } else { UTF8.encode(s) { bytes.append($0) } }
        }
        offsets[scalars.count] = bytes.count
        var out: [Int] = []
        out.reserveCapacity(bytes.count / 3)
        bytes.withUnsafeBufferPointer { b in
            for piece in PretokenSplitter.split(scalars) {
                bpe.encode(b[offsets[piece.lowerBound] ..< offsets[piece.upperBound]], into: &out)
            }
        }
        return out
    }

    /// Token ids of each text, the texts spread over the cores.
    public func encode(batch texts: [String]) -> [[Int]] {
        var out = [[Int]](repeating: [], count: texts.count)
        out.withUnsafeMutableBufferPointer { o in
            let o = UncheckedSendable(o)
            parallelFor(texts.count) { o.value[$0] = encode(texts[$0]) }
        }
        return out
    }

    /// The bytes of `ids` concatenated (special tokens as their names).
    public func decodeBytes(_ ids: [Int]) -> [UInt8] {
        var out: [UInt8] = []
        for id in ids {
            if id >= 0 && id < bpe.tokenBytes.count && !bpe.tokenBytes[id].isEmpty {
                out.append(contentsOf: bpe.tokenBytes[id])
            } else if let s = specialNames[id] {
                out.append(contentsOf: Array(s.utf8))
            }
        }
        return out
    }

    /// Text of `ids`; invalid UTF-8 (e.g. a token that ends inside a character) becomes U+FFFD.
    public func decode(_ ids: [Int]) -> String {
        String(decoding: decodeBytes(ids), as: UTF8.self)
    }

    /// Text of one token, for per-token displays.
    public func tokenText(_ id: Int) -> String { decode([id]) }
}
