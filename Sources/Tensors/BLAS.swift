import COpenBLAS

/// OpenBLAS runtime controls. The thread count starts at OpenBLAS's own choice, which follows
/// `OPENBLAS_NUM_THREADS`; programs override it with their `--threads` flag.
public enum BLAS {
    /// Sets the number of threads OpenBLAS uses for every following call.
    public static func setThreads(_ n: Int) {
        precondition(n >= 1, "thread count must be >= 1, got \(n)")
        openblas_set_num_threads(Int32(n))
    }

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
