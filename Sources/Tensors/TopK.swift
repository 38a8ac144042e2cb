import Foundation

/// Per-row top-k by partial selection: a k-element min-heap that each candidate must beat, so a
/// row costs O(n) comparisons plus O(log k) per element that enters the heap (not a sort).
///
/// For each row of `n` elements writes the k largest values to `values[r·k ..< (r+1)·k]` and their
/// column indices to `indices`, in descending value order. Ties go to the lower index, so the
/// result is deterministic. Rows are split over threads when the work is large enough.
public func topKRows(_ x: ConstFloatBuffer, n: Int, k: Int,
                     values: FloatBuffer, indices: UnsafeMutableBufferPointer<Int32>) {
    precondition(n > 0 && x.count % n == 0, "topKRows: \(x.count) elements in rows of \(n)")
    precondition(k >= 1 && k <= n, "topKRows: k = \(k) must be in 1...\(n)")
    let rows = x.count / n
    precondition(values.count == rows * k && indices.count == rows * k,
                 "topKRows: outputs need \(rows * k) elements")
    let xs = x.baseAddress!, vs = values.baseAddress!, ixs = indices.baseAddress!
    let work = rows * n
    let chunks = work >= 1 << 18 ? min(rows, 4 * ProcessInfoCores.count) : 1
    let perChunk = (rows + chunks - 1) / chunks
    let run = { (c: Int) in
        for r in (c * perChunk) ..< min(rows, (c + 1) * perChunk) {
            topKRow(xs + r * n, n: n, k: k, values: vs + r * k, indices: ixs + r * k)
        }
    }
    parallelFor(chunks, run)
}

/// Top-k of one row (see `topKRows`).
@inline(__always)
func topKRow(_ x: UnsafePointer<Float>, n: Int, k: Int,
             values: UnsafeMutablePointer<Float>, indices: UnsafeMutablePointer<Int32>) {
    // Heap order: the root is the *worst* kept element — smallest value, and among equal values
    // the largest index. A later element (larger index) replaces the root only if strictly larger.
    @inline(__always) func worse(_ a: Int, _ b: Int) -> Bool {
        values[a] < values[b] || (values[a] == values[b] && indices[a] > indices[b])
    }
    @inline(__always) func siftDown(_ start: Int, _ size: Int) {
        var i = start
        while true {
            let l = 2 * i + 1, r = l + 1
            var w = i
            if l < size && worse(l, w) { w = l }
            if r < size && worse(r, w) { w = r }
            if w == i { return }
            values.swapAt(i, w); indices.swapAt(i, w)
            i = w
        }
    }
    for j in 0..<k { values[j] = x[j]; indices[j] = Int32(j) }
    for i in stride(from: k / 2 - 1, through: 0, by: -1) { siftDown(i, k) }
    var threshold = values[0]
    for j in k..<n where x[j] > threshold {
        values[0] = x[j]; indices[0] = Int32(j)
        siftDown(0, k)
        threshold = values[0]
    }
    // Heap-sort in place: repeatedly move the worst to the end → descending order.
    var size = k
    while size > 1 {
        size -= 1
        values.swapAt(0, size); indices.swapAt(0, size)
        siftDown(0, size)
    }
}

extension UnsafeMutablePointer {
    @inline(__always) func swapAt(_ i: Int, _ j: Int) {
        let t = self[i]; self[i] = self[j]; self[j] = t
    }
}

extension Tensor {
    /// Top-k over the last dimension: values [rows, k] and their indices (row-major, rows·k).
    public func topK(_ k: Int) -> (values: Tensor, indices: [Int32]) {
        var v = Tensor(shape: Array(shape.dropLast()) + [k])
        var ix = [Int32](repeating: 0, count: rows * k)
        let n = columns
        withConstBuffer { xb in
            v.withBuffer { vb in ix.withUnsafeMutableBufferPointer { topKRows(xb, n: n, k: k, values: vb, indices: $0) } }
        }
        return (v, ix)
    }
}

/// Number of cores this process may use (for splitting work outside BLAS).
public enum ProcessInfoCores {
    public static let count: Int = ProcessInfo.processInfo.activeProcessorCount
}
