import Foundation
import Formats
import Nanochat
import Training
import Parquet

extension EvaluationRows {
    /// Rows from a token file: `.json` (an array of arrays of ids) or `.safetensors` (`tokens`
    /// [B, T], and `targets` [B, T] if present; otherwise each position's target is the next
    /// token of its row and the last position has none).
    public init(tokenFile path: String) throws {
        var tokens: [[Int]], targets: [[Int]]? = nil
        if path.hasSuffix(".safetensors") {
            let f = try SafetensorsFile(path: path)
            let shape = try f.shape("tokens")
            guard shape.count == 2 else { throw FormatError.invalid(file: path, detail: "tokens must be [B, T], got \(shape)") }
            let flat = try f.int64s("tokens").map(Int.init)
            tokens = (0..<shape[0]).map { Array(flat[$0 * shape[1] ..< ($0 + 1) * shape[1]]) }
            if f.names.contains("targets") {
                let t = try f.int64s("targets").map(Int.init)
                guard t.count == flat.count else { throw FormatError.invalid(file: path, detail: "targets differ in shape from tokens") }
                targets = (0..<shape[0]).map { Array(t[$0 * shape[1] ..< ($0 + 1) * shape[1]]) }
            }
        } else {
            guard let data = FileManager.default.contents(atPath: path),
                  let rows = try? JSONSerialization.jsonObject(with: data) as? [[Int]], !rows.isEmpty else {
                throw FormatError.invalid(file: path, detail: "expected a JSON array of arrays of token ids")
            }
            tokens = rows
        }
        self.init(tokens: tokens, targets: targets ?? tokens.map { Array($0.dropFirst()) + [-1] })
    }

    /// `count` tokens of `data` packed into rows of `context` (BOS per document), the validation
    /// split for parquet shards. The same rows on every rank; `share(rank:size:)` splits them.
    public init(data: String, tokenizer: Tokenizer, context: Int, count: Int, valShards: Int = 1) throws {
        // Parquet shards have a validation split and it is what gets read (a damaged shard is an
        // error); text data has none and is read whole.
        let split: DocumentSource.Split = try DocumentSource.hasValidationSplit(path: data, valShards: valShards) ? .validation : .train
        let source = try DocumentSource(path: data, split: split, valShards: valShards)
        var cursor = DataCursor()
        let rows = max(1, (count + context - 1) / context)
        let flat = try packRows(from: source, cursor: &cursor, rows: rows, context: context, bos: try tokenizer.bos,
                                encode: tokenizer.encode)
        let tokens = (0..<rows).map { Array(flat[$0 * context ..< ($0 + 1) * context]) }
        self.init(tokens: tokens, targets: tokens.map { Array($0.dropFirst()) + [-1] })
    }

    /// Rows r, r+N, r+2N, ... of these.
    public func share(rank: Int, size: Int) -> EvaluationRows {
        let idx = Array(stride(from: rank, to: tokens.count, by: size))
        return EvaluationRows(tokens: idx.map { tokens[$0] }, targets: idx.map { targets[$0] })
    }
}
