import Tensors

// Input scaling: train on s·x with s chosen so that E‖s·x‖² = d (SAELens's
// "expected_average_only_in" normalisation), then fold s into the weights whenever a checkpoint is
// written, so a saved SAE always works on raw activations.

/// Running estimate of s = sqrt(d / E‖x‖²) over the first batches.
public struct InputScaling: Sendable, Equatable, Codable {
    public var sumSquaredNorms = 0.0
    public var rows = 0
    public init() {}

    /// Adds a batch [B, d] to the estimate.
    public mutating func observe(_ batch: Tensor) {
        for v in batch.storage { sumSquaredNorms += Double(v) * Double(v) }
        rows += batch.rows
    }

    /// s for activations of width d (1 until something was observed).
    public func factor(dIn: Int) -> Float {
        rows > 0 && sumSquaredNorms > 0 ? Float((Double(dIn) * Double(rows) / sumSquaredNorms).squareRoot()) : 1
    }
}

extension SAE {
    /// The SAE on raw activations equivalent to this one trained on s·x:
    ///   pre = (s·x − b_dec)·W_enc + b_enc = (x − b_dec/s)·(s·W_enc) + b_enc      (pre unchanged)
    ///   x̂_raw = x̂/s = f·(W_dec/s) + b_dec/s
    /// so W_enc ← s·W_enc, W_dec ← W_dec/s, b_dec ← b_dec/s; biases on pre and thresholds unchanged.
    public func foldingInputScale(_ s: Float) -> SAE {
        var out = self
        for i in layout.W_enc { out.params[i] *= s }
        for i in layout.W_dec { out.params[i] /= s }
        for i in layout.b_dec { out.params[i] /= s }
        return out
    }
}
