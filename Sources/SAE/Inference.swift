import Foundation
import Tensors

// Inference: dense features and reconstructions of a batch, with each architecture's inference rule
// (batchtopk uses its learned threshold θ, like the jumprelu it exports as).

extension SAE {
    /// Feature activations f [B, m] of `batch` [B, d].
    public func encode(_ batch: Tensor) throws -> Tensor {
        try checkBatch(batch)
        let d = config.dIn, m = config.dSAE, B = batch.rows
        var xt = Tensor(shape: [B, d])
        var pre = Tensor(shape: [B, m])
        params.withUnsafeBufferPointer { pp in batch.withConstBuffer { x in xt.withBuffer { o in pre.withBuffer { pb in
            let p = pp.baseAddress!
            subtractRowVector(x.baseAddress!, p + layout.b_dec.lowerBound, o.baseAddress!, rows: B, n: d)
            sgemm(.none, .transposed, m: B, n: m, k: d, a: o.baseAddress!, lda: d, b: p + layout.W_enc.lowerBound,
                  ldb: d, c: pb.baseAddress!, ldc: m)
        } } } }
        var f = Tensor(shape: [B, m])
        switch config.architecture {
        case .topk:
            // Selection on pre + b_enc, then ReLU.
            var full = pre
            for b in 0..<B { for j in 0..<m { full.storage[b * m + j] += params[layout.b_enc.lowerBound + j] } }
            let (v2, ix2) = full.topK(config.k)
            for t in 0 ..< B * config.k { f.storage[(t / config.k) * m + Int(ix2[t])] = max(v2.storage[t], 0) }
        case .batchtopk:
            for b in 0..<B { for j in 0..<m {
                let v = pre.storage[b * m + j] + params[layout.b_enc.lowerBound + j]
                f.storage[b * m + j] = v > threshold ? max(v, 0) : 0
            } }
        case .relu:
            for b in 0..<B { for j in 0..<m { f.storage[b * m + j] = max(pre.storage[b * m + j] + params[layout.b_enc.lowerBound + j], 0) } }
        case .jumprelu:
            for b in 0..<B { for j in 0..<m {
                let v = pre.storage[b * m + j] + params[layout.b_enc.lowerBound + j]
                f.storage[b * m + j] = v > Foundation.exp(params[layout.log_threshold.lowerBound + j]) ? v : 0
            } }
        case .gated:
            for b in 0..<B { for j in 0..<m {
                let z = pre.storage[b * m + j]
                let pg = z + params[layout.b_gate.lowerBound + j]
                let pm = z * Foundation.exp(params[layout.r_mag.lowerBound + j]) + params[layout.b_mag.lowerBound + j]
                f.storage[b * m + j] = pg > 0 ? max(pm, 0) : 0
            } }
        }
        return f
    }

    /// Reconstruction x̂ = f·W_dec + b_dec [B, d] of features f [B, m].
    public func decode(_ f: Tensor) throws -> Tensor {
        guard f.columns == config.dSAE else {
            throw SAEError.sizeMismatch(what: "feature row", expected: config.dSAE, got: f.columns)
        }
        let W_dec = tensor(layout.W_dec, shape: [config.dSAE, config.dIn])
        var out = matmul(f, W_dec)
        out.addRowVector(tensor(layout.b_dec, shape: [config.dIn]))
        return out
    }
}
