import Tensors

/// The active (> 0) features of a batch in compressed-row form: row b's features are
/// `index[start[b] ..< start[b + 1]]` with activations `value`. For analyses that visit only what
/// fired: O(B·k) memory instead of the dense [B, m].
public struct SparseFeatures: Sendable, Equatable {
    public var start: [Int]
    public var index: [Int32]
    public var value: [Float]

    public init(start: [Int], index: [Int32], value: [Float]) {
        self.start = start; self.index = index; self.value = value
    }

    /// The positive entries of dense features f [B, m].
    public init(dense f: Tensor) {
        let m = f.columns
        var s = SparseFeatures(start: [0], index: [], value: [])
        for b in 0..<f.rows {
            for j in 0..<m where f.storage[b * m + j] > 0 { s.index.append(Int32(j)); s.value.append(f.storage[b * m + j]) }
            s.start.append(s.index.count)
        }
        self = s
    }

    public var rows: Int { start.count - 1 }

    /// Feature j's activation in row b (0 if it did not fire): a scan of the row's few entries.
    public func value(row b: Int, feature j: Int) -> Float {
        for s in start[b] ..< start[b + 1] where index[s] == Int32(j) { return value[s] }
        return 0
    }
}

extension SAE {
    /// The active features of `batch` [B, d], as `encode` defines them. TopK goes through the
    /// training's selection (row chunks, no dense [B, m] kept); the others compact `encode`.
    public func encodeSparse(_ batch: Tensor) throws -> SparseFeatures {
        guard config.architecture == .topk else { return SparseFeatures(dense: try encode(batch)) }
        try checkBatch(batch)
        let main = batch.withConstBuffer { topkSelect($0.baseAddress!, rows: batch.rows, deadMask: nil) }.main
        return SparseFeatures(start: main.start, index: main.idx, value: main.val)
    }
}
