import Foundation
@testable import SAE
import Tensors

// A deliberately plain Double-precision reference of every architecture's loss (DESIGN 3), written
// independently of the Float32 kernels: dense loops, no sparsity tricks. Gradient tests difference it.

/// Values the loss treats as constants (detached): AuxK's residual and its variance, gated's frozen decoder.
struct Detached {
    var r: [Double] = []
    var D: Double = 0
    var W_dec: [Double] = []
    var b_dec: [Double] = []
}

struct ReferenceResult {
    var loss: Double
    var pre: [Double]        // [B,m] (gated: z)
    var f: [Double]          // [B,m]
    var xhat: [Double]       // [B,d]
    var detached: Detached
}

/// The loss of `config` at parameters `p` (our layout, in Double) on x [B,d].
func referenceLoss(_ config: SAEConfig, _ p: [Double], _ x: [Double], rows B: Int, lambda λ: Double,
                   deadMask: [Bool]? = nil, detached given: Detached? = nil) -> ReferenceResult {
    let L = ParameterLayout(config), d = config.dIn, m = config.dSAE
    func W_enc(_ j: Int, _ i: Int) -> Double { p[L.W_enc.lowerBound + j * d + i] }
    func W_dec(_ j: Int, _ i: Int) -> Double { p[L.W_dec.lowerBound + j * d + i] }
    let b_dec = Array(p[L.b_dec])
    var pre = [Double](repeating: 0, count: B * m)
    for b in 0..<B { for j in 0..<m {
        var s = config.architecture == .gated ? 0 : p[L.b_enc.lowerBound + j]
        for i in 0..<d { s += (x[b * d + i] - b_dec[i]) * W_enc(j, i) }
        pre[b * m + j] = s
    } }
    var f = [Double](repeating: 0, count: B * m)
    var extra = 0.0
    var det = given ?? Detached()
    switch config.architecture {
    case .topk:
        for b in 0..<B {
            let order = (0..<m).sorted { pre[b * m + $0] > pre[b * m + $1] || (pre[b * m + $0] == pre[b * m + $1] && $0 < $1) }
            for j in order.prefix(config.k) { f[b * m + j] = max(pre[b * m + j], 0) }
        }
    case .batchtopk:
        let order = (0 ..< B * m).sorted { pre[$0] > pre[$1] || (pre[$0] == pre[$1] && $0 < $1) }
        for t in order.prefix(config.k * B) { f[t] = max(pre[t], 0) }
    case .relu:
        for b in 0..<B { for j in 0..<m {
            f[b * m + j] = max(pre[b * m + j], 0)
            var n = 0.0
            for i in 0..<d { n += W_dec(j, i) * W_dec(j, i) }
            extra += λ / Double(B) * f[b * m + j] * n.squareRoot()
        } }
    case .jumprelu:
        for b in 0..<B { for j in 0..<m {
            let θ = Foundation.exp(p[L.log_threshold.lowerBound + j])
            if pre[b * m + j] > θ { f[b * m + j] = pre[b * m + j]; extra += λ / Double(B) }
        } }
    case .gated:
        if given == nil { det.W_dec = Array(p[L.W_dec]); det.b_dec = b_dec }
        for b in 0..<B {
            var xg = det.b_dec
            for j in 0..<m {
                let z = pre[b * m + j]
                let pg = z + p[L.b_gate.lowerBound + j]
                let pm = z * Foundation.exp(p[L.r_mag.lowerBound + j]) + p[L.b_mag.lowerBound + j]
                f[b * m + j] = pg > 0 ? max(pm, 0) : 0
                let a = max(pg, 0)
                extra += λ / Double(B) * a
                for i in 0..<d { xg[i] += a * det.W_dec[j * d + i] }
            }
            for i in 0..<d { extra += (xg[i] - x[b * d + i]) * (xg[i] - x[b * d + i]) / Double(B) }
        }
    }
    var xhat = [Double](repeating: 0, count: B * d)
    var mse = 0.0
    for b in 0..<B { for i in 0..<d {
        var s = b_dec[i]
        for j in 0..<m { s += f[b * m + j] * W_dec(j, i) }
        xhat[b * d + i] = s
        mse += (s - x[b * d + i]) * (s - x[b * d + i]) / Double(B)
    } }
    if let dead = deadMask, config.architecture.usesAuxK, dead.contains(true) {
        if given == nil {
            det.r = (0 ..< B * d).map { x[$0] - xhat[$0] }
            var mean = [Double](repeating: 0, count: d)
            for b in 0..<B { for i in 0..<d { mean[i] += det.r[b * d + i] / Double(B) } }
            det.D = 0
            for b in 0..<B { for i in 0..<d { det.D += (det.r[b * d + i] - mean[i]) * (det.r[b * d + i] - mean[i]) } }
        }
        let deadIdx = (0..<m).filter { dead[$0] }
        let kAux = min(config.effectiveAuxK, deadIdx.count)
        var num = 0.0
        for b in 0..<B {
            let order = deadIdx.sorted { pre[b * m + $0] > pre[b * m + $1] || (pre[b * m + $0] == pre[b * m + $1] && $0 < $1) }
            var e = [Double](repeating: 0, count: d)
            for j in order.prefix(kAux) { let a = max(pre[b * m + j], 0); for i in 0..<d { e[i] += a * W_dec(j, i) } }
            for i in 0..<d { num += (e[i] - det.r[b * d + i]) * (e[i] - det.r[b * d + i]) }
        }
        extra += Double(config.auxAlpha) * num / det.D
    }
    return ReferenceResult(loss: mse + extra, pre: pre, f: f, xhat: xhat, detached: det)
}

/// Central finite differences of the reference loss for every parameter (detached values held fixed).
func finiteDifferenceGradient(_ config: SAEConfig, params: [Float], x: Tensor, lambda: Double,
                              deadMask: [Bool]?, h: Double = 1e-6) -> [Double] {
    let p0 = params.map(Double.init), xs = x.storage.map(Double.init), B = x.rows
    let base = referenceLoss(config, p0, xs, rows: B, lambda: lambda, deadMask: deadMask)
    var grad = [Double](repeating: 0, count: p0.count)
    var p = p0
    for t in 0..<p.count {
        p[t] = p0[t] + h
        let up = referenceLoss(config, p, xs, rows: B, lambda: lambda, deadMask: deadMask, detached: base.detached).loss
        p[t] = p0[t] - h
        let down = referenceLoss(config, p, xs, rows: B, lambda: lambda, deadMask: deadMask, detached: base.detached).loss
        p[t] = p0[t]
        grad[t] = (up - down) / (2 * h)
    }
    return grad
}

/// A fresh temporary directory path.
func temporaryDirectory(_ tag: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("sae-\(tag)-\(UUID().uuidString)").path
}
