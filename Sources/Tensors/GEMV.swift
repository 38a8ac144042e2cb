import COpenBLAS

/// y[m] = alpha · op(A) · x + beta · y with A stored row-major [m, n] (lda = row stride):
/// op(A) = A (y has m elements, x has n) or Aᵀ (y has n, x has m).
/// A thin pass-through to cblas_sgemv. For one-row products (decoding one token) sgemm would pack
/// the whole weight matrix on every call; gemv streams it once.
@inline(__always)
public func sgemv(_ trans: Transpose, m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                  x: UnsafePointer<Float>, incx: Int = 1, beta: Float = 0,
                  y: UnsafeMutablePointer<Float>, incy: Int = 1) {
    cblas_sgemv(CblasRowMajor, trans.cblas, Int32(m), Int32(n), alpha, a, Int32(lda), x, Int32(incx),
                beta, y, Int32(incy))
}
