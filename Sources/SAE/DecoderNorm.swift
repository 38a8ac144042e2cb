import Tensors

// Unit-norm decoder rows for topk/batchtopk (Bricken et al. 2023; Gao et al. 2024): before the step
// the gradient loses its component along each row (so the step moves along the sphere to first
// order), after the step the rows are renormalised.

extension SAE {
    /// grad_j ← grad_j − (grad_j·w_j / ‖w_j‖²)·w_j for every decoder row w_j.
    public func projectDecoderGradients(_ grads: inout [Float]) {
        let d = config.dIn
        withPointers(params, &grads) { p, g in
            let box = UncheckedSendable((p + layout.W_dec.lowerBound, g + layout.W_dec.lowerBound))
            parallelRanges(config.dSAE, grain: 256) { r in
                let (W, dW) = box.value
                for j in r {
                    let w = W + j * d, gj = dW + j * d
                    let ww = dot(w, w, d)
                    if ww > 0 { axpy(gj, -dot(gj, w, d) / ww, w, d) }
                }
            }
        }
    }

    /// w_j ← w_j / ‖w_j‖ for every decoder row (rows of norm 0 stay 0).
    public mutating func normalizeDecoderRows() {
        let d = config.dIn, range = layout.W_dec
        params.withUnsafeMutableBufferPointer { p in
            let box = UncheckedSendable(p.baseAddress! + range.lowerBound)
            parallelRanges(config.dSAE, grain: 256) { r in
                for j in r {
                    let w = box.value + j * d
                    let n = dot(w, w, d).squareRoot()
                    if n > 0 { for i in 0..<d { w[i] /= n } }
                }
            }
        }
    }
}
