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

/// Active features of a batch in compressed-row form: row b's (feature, activation) pairs are
/// `feature[start[b]..<start[b+1]]`, `activation[...]`, in feature order, activations > 0.
public struct SparseFeatures: Sendable, Equatable {
    public var start: [Int]
    public var feature: [Int32]
    public var activation: [Float]

    public init(start: [Int], feature: [Int32], activation: [Float]) {
        self.start = start; self.feature = feature; self.activation = activation
    }

    /// The positive entries of dense features f [B, m].
    public init(dense f: Tensor) {
        let m = f.columns
        self.init(start: [0], feature: [], activation: [])
        for b in 0..<f.rows {
            for j in 0..<m where f.storage[b * m + j] > 0 { feature.append(Int32(j)); activation.append(f.storage[b * m + j]) }
            start.append(feature.count)
        }
    }

    public var rows: Int { start.count - 1 }

    /// Feature j's activation in row b (0 if it did not fire): a scan of the row's few entries.
    public func activation(row b: Int, feature j: Int) -> Float {
        for s in start[b] ..< start[b + 1] where feature[s] == Int32(j) { return activation[s] }
        return 0
    }

    /// Row b's active features, strongest first (ties to the lower index).
    public func strongest(row b: Int) -> [(Int, Float)] {
        (start[b] ..< start[b + 1]).map { (Int(feature[$0]), activation[$0]) }
            .sorted { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
    }
}

extension SAE {
    /// The active features of `batch` [B, d] (checked first), as `encode` defines them.
    public func encodeSparse(_ batch: Tensor) throws -> SparseFeatures {
        try checkBatch(batch)
        return batch.withConstBuffer { encodeSparse($0.baseAddress!, rows: batch.rows) }
    }

    /// The features of `rows` rows of x [rows, d] (no checks: the caller owns the buffer), with each
    /// architecture's inference rule, as `encode` gives them but sparse. TopK selects straight from the
    /// encoder's chunks without a dense [rows, m] result.
    public func encodeSparse(_ x: UnsafePointer<Float>, rows: Int) -> SparseFeatures {
        if config.architecture == .topk {
            let s = topkSelect(x, rows: rows, deadMask: nil).main
            return SparseFeatures(start: s.start, feature: s.idx, activation: s.val)
        }
        // Other architectures: per chunk of rows, z = (x − b_dec)·W_encᵀ, then each latent's own rule.
        let d = config.dIn, m = config.dSAE, chunk = min(rows, Self.encoderRowChunk)
        var out = SparseFeatures(start: [0], feature: [], activation: [])
        var xt = [Float](repeating: 0, count: chunk * d), z = [Float](repeating: 0, count: chunk * m)
        let rules = (0..<m).map(latentRule)
        params.withUnsafeBufferPointer { pp in
            let p = pp.baseAddress!
            var r0 = 0
            while r0 < rows {
                let n = min(chunk, rows - r0)
                xt.withUnsafeMutableBufferPointer { xb in z.withUnsafeMutableBufferPointer { zb in
                    subtractRowVector(x + r0 * d, p + layout.b_dec.lowerBound, xb.baseAddress!, rows: n, n: d)
                    sgemm(.none, .transposed, m: n, n: m, k: d, a: xb.baseAddress!, lda: d, b: p + layout.W_enc.lowerBound,
                          ldb: d, c: zb.baseAddress!, ldc: m)
                } }
                rules.withUnsafeBufferPointer { rule in
                    for b in 0..<n {
                        for j in 0..<m {
                            let f = rule[j](z[b * m + j])
                            if f > 0 { out.feature.append(Int32(j)); out.activation.append(f) }
                        }
                        out.start.append(out.feature.count)
                    }
                }
                r0 += n
            }
        }
        return out
    }

    /// TopK: feature f's activation on one row. f is active iff fewer than k latents beat its
    /// pre-activation (ties to the lower index). The encoder runs block by block of latents, f's block
    /// first, and stops as soon as k latents beat f: for a feature that is not active on this token
    /// that is usually after a small part of W_enc, which is what steering reads on every token.
    func topkActivation(of f: Int, in x: UnsafePointer<Float>) -> Float {
        let d = config.dIn, m = config.dSAE, k = config.k, block = 512
        return params.withUnsafeBufferPointer { pp -> Float in
            let p = pp.baseAddress!, b_dec = p + layout.b_dec.lowerBound
            let xt = UnsafeMutablePointer<Float>.allocate(capacity: d), y = UnsafeMutablePointer<Float>.allocate(capacity: block)
            defer { xt.deallocate(); y.deallocate() }
            for i in 0..<d { xt[i] = x[i] - b_dec[i] }
            // y = W_enc[lo..<lo+n]·x̃ + b_enc[lo..<lo+n], as `encodeChunk` computes one row.
            func encode(_ lo: Int, _ n: Int) {
                y.update(from: p + layout.b_enc.lowerBound + lo, count: n)
                sgemv(.none, m: n, n: d, a: p + layout.W_enc.lowerBound + lo * d, lda: d, x: xt, beta: 1, y: y)
            }
            let home = f / block * block
            encode(home, min(block, m - home))
            let pre = y[f - home]
            if pre <= 0 { return 0 }
            var beaten = 0
            for lo in [home] + stride(from: 0, to: m, by: block).filter({ $0 != home }) {
                let n = min(block, m - lo)
                if lo != home { encode(lo, n) }
                for t in 0..<n where y[t] > pre || (y[t] == pre && lo + t < f) { beaten += 1 }
                if beaten >= k { return 0 }
            }
            return pre
        }
    }

    /// The activation of one feature on one row x [d]. Every architecture but TopK decides a feature
    /// from its own pre-activation (one dot product); TopK also needs other latents when the
    /// pre-activation is positive (otherwise the ReLU makes it 0): `topkActivation`.
    public func activation(of feature: Int, in x: UnsafePointer<Float>) -> Float {
        let d = config.dIn
        let z = params.withUnsafeBufferPointer { pp -> Float in
            let p = pp.baseAddress!, w = p + layout.W_enc.lowerBound + feature * d, b_dec = p + layout.b_dec.lowerBound
            var s: Float = 0
            for i in 0..<d { s += w[i] * (x[i] - b_dec[i]) }      // W_enc,f·(x − b_dec)
            return s
        }
        if config.architecture == .topk {
            let pre = z + params[layout.b_enc.lowerBound + feature]
            return pre <= 0 ? 0 : topkActivation(of: feature, in: x)
        }
        return latentRule(feature)(z)
    }

    /// Latent j's inference rule (every architecture but TopK, whose rule needs the whole row).
    func latentRule(_ j: Int) -> LatentRule {
        switch config.architecture {
        case .topk: preconditionFailure("TopK has no per-latent rule")
        case .relu: return LatentRule(bias: params[layout.b_enc.lowerBound + j])
        case .batchtopk: return LatentRule(bias: params[layout.b_enc.lowerBound + j], cut: threshold)
        case .jumprelu:
            return LatentRule(bias: params[layout.b_enc.lowerBound + j],
                              cut: Foundation.exp(params[layout.log_threshold.lowerBound + j]))
        case .gated:
            return LatentRule(bias: params[layout.b_mag.lowerBound + j], gain: Foundation.exp(params[layout.r_mag.lowerBound + j]),
                              gateBias: params[layout.b_gate.lowerBound + j])
        }
    }
}

/// One latent's activation from z = W_enc,j·(x − b_dec): pre = gain·z + bias, kept where the gate
/// z + gateBias is open (gated; always open otherwise), pre > cut (jumprelu's θ, batchtopk's
/// threshold) and pre > 0 (the ReLU).
struct LatentRule {
    var bias: Float
    var gain: Float = 1
    var gateBias: Float = .infinity
    var cut: Float = -.infinity

    @inline(__always)
    func callAsFunction(_ z: Float) -> Float {
        let pre = gain * z + bias
        return z + gateBias > 0 && pre > cut && pre > 0 ? pre : 0
    }
}
