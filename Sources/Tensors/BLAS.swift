import COpenBLAS
import Foundation

/// OpenBLAS runtime controls. The thread count starts at OpenBLAS's own choice, which follows
/// `OPENBLAS_NUM_THREADS`; programs override it with their `--threads` flag.
public enum BLAS {
    /// Sets the number of threads OpenBLAS uses for every following call. Waits while a
    /// `withThreads` scope holds the count.
    public static func setThreads(_ n: Int) {
        precondition(n >= 1, "thread count must be >= 1, got \(n)")
        scope.lock(); defer { scope.unlock() }
        while scope.holders > 0 { scope.wait() }
        openblas_set_num_threads(Int32(n))
    }

    /// Runs `body` with OpenBLAS's process-wide thread count held at `n`. Attention runs its own
    /// tasks with single-threaded sgemms inside `withThreads(1)`; a bitwise comparison of two runs
    /// holds the count so that no concurrent code changes it between them. Scopes asking the same
    /// count share it; one asking another count waits until they have all left, and the last to
    /// leave restores the count the first one found. Do not nest scopes of different counts.
    public static func withThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        precondition(n >= 1, "thread count must be >= 1, got \(n)")
        scope.lock()
        while scope.holders > 0 && scope.held != n { scope.wait() }
        if scope.holders == 0 {
            scope.saved = Int(openblas_get_num_threads())
            scope.held = n
            openblas_set_num_threads(Int32(n))
        }
        scope.holders += 1
        scope.unlock()
        defer {
            scope.lock()
            scope.holders -= 1
            if scope.holders == 0 {
                openblas_set_num_threads(Int32(scope.saved))
                scope.broadcast()
            }
            scope.unlock()
        }
        return try body()
    }

    /// The state of `withThreads`, guarded by its own lock: OpenBLAS's count is global, so is this.
    private final class ThreadScope: @unchecked Sendable {
        let condition = NSCondition()
        var holders = 0, held = 0, saved = 0
        func lock() { condition.lock() }
        func unlock() { condition.unlock() }
        func wait() { condition.wait() }
        func broadcast() { condition.broadcast() }
    }
    private static let scope = ThreadScope()

    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// The kernel family OpenBLAS selected for this CPU (e.g. "Haswell", "Cooperlake").
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// OpenBLAS's build configuration string.
    public static var config: String { String(cString: openblas_get_config()) }
}

/// Whether a matmul operand is used as stored or transposed.
public enum Transpose: Sendable {
    case none, transposed
    var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// C[m,n] = alpha · op(A)[m,k] · op(B)[k,n] + beta · C, all row-major.
/// `lda`, `ldb`, `ldc` are the row strides of A, B, C as stored (A is [m,k] or, transposed, [k,m]).
/// A thin pass-through to cblas_sgemm: no copies, no checks beyond the shapes.
@inline(__always)
public func sgemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
                  alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                  b: UnsafePointer<Float>, ldb: Int,
                  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    cblas_sgemm(CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k),
                alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// op(a) · op(b) for 2-D tensors: a is [m,k] (or [k,m] transposed), b is [k,n] (or [n,k]).
public func matmul(_ a: Tensor, _ b: Tensor, _ transA: Transpose = .none,
                   _ transB: Transpose = .none) -> Tensor {
    precondition(a.rank == 2 && b.rank == 2, "matmul of shapes \(a.shape) and \(b.shape)")
    let (m, k) = transA == .none ? (a.shape[0], a.shape[1]) : (a.shape[1], a.shape[0])
    let (k2, n) = transB == .none ? (b.shape[0], b.shape[1]) : (b.shape[1], b.shape[0])
    precondition(k == k2, "matmul inner dimensions differ: \(a.shape)\(transA == .none ? "" : "ᵀ") · \(b.shape)\(transB == .none ? "" : "ᵀ")")
    var c = Tensor(shape: [m, n])
    if m == 0 || n == 0 { return c }
    if k == 0 { return c }
    a.storage.withUnsafeBufferPointer { pa in
        b.storage.withUnsafeBufferPointer { pb in
            c.storage.withUnsafeMutableBufferPointer { pc in
                sgemm(transA, transB, m: m, n: n, k: k, a: pa.baseAddress!, lda: a.shape[1],
                      b: pb.baseAddress!, ldb: b.shape[1], c: pc.baseAddress!, ldc: n)
            }
        }
    }
    return c
}
