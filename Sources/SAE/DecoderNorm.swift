import Tensors

// Unit-norm decoder rows for topk/batchtopk (Bricken et al. 2023; Gao et al. 2024): before the step
// the gradient loses its component along each row (so the step moves along the sphere to first
// order), after the step the rows are renormalised (both inside Adam's pass over each row,
// `AdamState.update(_:gradients:lr:unitRows:width:)`).

extension SAE {
    /// grad_j ← grad_j − (grad_j·w_j / ‖w_j‖²)·w_j for every decoder row w_j.
    public func projectDecoderGradients(_ grads: inout [Float]) {
        let d = config.dIn
        withPointers(params, &grads) { p, g in
            let box = UncheckedSendable((p + layout.W_dec.lowerBound, g + layout.W_dec.lowerBound))
            parallelRanges(config.dSAE, grain: 256) { r in
                let (W, dW) = box.value
                for j in r { projectOut(dW + j * d, along: W + j * d, d) }
            }
        }
    }
}

/// g ← g − (g·w / ‖w‖²)·w  (w = 0 leaves g).
@inline(__always)
func projectOut(_ g: UnsafeMutablePointer<Float>, along w: UnsafePointer<Float>, _ d: Int) {
    let ww = dot(w, w, d)
    if ww > 0 { axpy(g, -dot(g, w, d) / ww, w, d) }
}

/// w ← w / ‖w‖  (w = 0 stays 0).
@inline(__always)
func normalize(_ w: UnsafeMutablePointer<Float>, _ d: Int) {
    let n = dot(w, w, d).squareRoot()
    if n > 0 { for i in 0..<d { w[i] /= n } }
}
