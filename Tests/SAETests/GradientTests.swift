import Foundation
import Testing
@testable import SAE
import Tensors

// Every architecture's hand-written backward against central finite differences of the Double
// reference (ReferenceSAE.swift) at d = 8, m = 32, B = 5, including AuxK and the JumpReLU
// pseudo-gradients (against their defining formula).

struct GradientCase {
    var sae: SAE
    var x: Tensor
    var dead: [Bool]?
    var lambda: Float
}

/// Random parameters (not the training init: every tensor independent, so each gradient is exercised)
/// and a batch, re-drawn until every selection boundary is at least `margin` away (FD stays valid).
func makeCase(_ arch: Architecture, aux: Bool = false, seed: UInt64 = 1, d: Int = 8, m: Int = 32, B: Int = 5,
              k: Int = 4) -> GradientCase {
    let margin = 1e-3
    for s in seed ..< seed + 200 {
        var rng = Xoshiro256(seed: s)
        var config = SAEConfig(architecture: arch, dIn: d, dSAE: m, k: k, l1: 0.3)
        config.bandwidth = 0.5
        let L = ParameterLayout(config)
        var p = [Float](repeating: 0, count: L.count)
        for i in 0..<L.count { p[i] = 0.4 * rng.nextGaussian() }
        for i in L.log_threshold { p[i] = Foundation.log(0.1 + 0.6 * rng.nextFloat()) }
        let sae = try! SAE(config: config, params: p)
        let x = Tensor.randomNormal(shape: [B, d], rng: &rng)
        let dead: [Bool]? = aux ? (0..<m).map { $0 % 3 == 1 } : nil
        let ref = referenceLoss(config, p.map(Double.init), x.storage.map(Double.init), rows: B,
                                lambda: Double(config.l1), deadMask: dead)
        if boundariesAreClear(config, pre: ref.pre, rows: B, dead: dead, params: p, margin: margin) {
            return GradientCase(sae: sae, x: x, dead: dead, lambda: config.l1)
        }
    }
    fatalError("no seed gives clear boundaries for \(arch)")
}

func boundariesAreClear(_ c: SAEConfig, pre: [Double], rows B: Int, dead: [Bool]?, params: [Float], margin: Double) -> Bool {
    let m = c.dSAE, L = ParameterLayout(c)
    if pre.contains(where: { abs($0) < margin }) { return false }            // ReLU kinks
    func gapClear(_ values: [Double], _ k: Int) -> Bool {
        let s = values.sorted(by: >)
        return k >= s.count || s[k - 1] - s[k] > margin
    }
    switch c.architecture {
    case .topk:
        for b in 0..<B where !gapClear(Array(pre[b * m ..< (b + 1) * m]), c.k) { return false }
    case .batchtopk:
        if !gapClear(pre, c.k * B) { return false }
    case .jumprelu:
        for b in 0..<B { for j in 0..<m {
            let u = abs(pre[b * m + j] - Double(Foundation.exp(params[L.log_threshold.lowerBound + j])))
            if u < margin || abs(u - Double(c.bandwidth) / 2) < margin { return false }
        } }
    case .gated:
        for b in 0..<B { for j in 0..<m {
            let z = pre[b * m + j]
            if abs(z + Double(params[L.b_gate.lowerBound + j])) < margin { return false }
            if abs(z * Double(Foundation.exp(params[L.r_mag.lowerBound + j])) + Double(params[L.b_mag.lowerBound + j])) < margin { return false }
        } }
    case .relu: break
    }
    if let dead {
        let idx = (0..<m).filter { dead[$0] }
        for b in 0..<B where !gapClear(idx.map { pre[b * m + $0] }, min(c.effectiveAuxK, idx.count)) { return false }
    }
    return true
}

/// Per element |a − fd| ≤ 1e-3·max(|fd|, 1e-2·max|fd of the tensor|); the tensor must be non-zero.
func expectClose(_ name: String, analytic: [Float], reference: [Double], sourceLocation: SourceLocation = #_sourceLocation) {
    let scale = reference.map(abs).max() ?? 0
    #expect(scale > 0, "\(name): reference gradient is all zero, the test would prove nothing", sourceLocation: sourceLocation)
    var worst = 0.0
    for (a, r) in zip(analytic, reference) {
        worst = max(worst, abs(Double(a) - r) / max(abs(r), 1e-2 * scale))
    }
    #expect(worst <= 1e-3, "\(name): worst relative error \(worst)", sourceLocation: sourceLocation)
}

@Suite struct GradientTests {
    func check(_ arch: Architecture, aux: Bool = false) throws {
        let c = makeCase(arch, aux: aux)
        var grads = [Float](repeating: 0, count: c.sae.layout.count)
        let stats = try c.sae.lossAndGradients(c.x, into: &grads, lambda: c.lambda, deadMask: c.dead)
        let ref = referenceLoss(c.sae.config, c.sae.params.map(Double.init), c.x.storage.map(Double.init),
                                rows: c.x.rows, lambda: Double(c.lambda), deadMask: c.dead)
        #expect(abs(stats.loss - ref.loss) <= 1e-5 * max(1, abs(ref.loss)), "\(arch) loss \(stats.loss) vs \(ref.loss)")
        if aux { #expect(stats.auxLoss > 0) }
        let fd = finiteDifferenceGradient(c.sae.config, params: Array(c.sae.params), x: c.x, lambda: Double(c.lambda), deadMask: c.dead)
        for t in c.sae.layout.tensors where t.name != "log_threshold" {
            expectClose("\(arch)\(aux ? "+aux" : "") \(t.name)", analytic: Array(grads[t.range]), reference: Array(fd[t.range]))
        }
    }

    @Test func topk() throws { try check(.topk) }
    @Test func topkWithAuxK() throws { try check(.topk, aux: true) }
    @Test func batchtopk() throws { try check(.batchtopk) }
    @Test func batchtopkWithAuxK() throws { try check(.batchtopk, aux: true) }
    @Test func relu() throws { try check(.relu) }
    @Test func gated() throws { try check(.gated) }
    @Test func jumprelu() throws { try check(.jumprelu) }

    /// log θ has no true gradient (the loss is piecewise constant in θ); check the straight-through
    /// estimator against its defining formula: ∂L/∂log θ_j = θ_j·Σ_b [∂L/∂f_bj·(−θ_j/ε) − λ/(B·ε)]·K((pre_bj − θ_j)/ε).
    @Test func jumpreluThresholdPseudoGradient() throws {
        let c = makeCase(.jumprelu)
        let config = c.sae.config, L = c.sae.layout, d = config.dIn, m = config.dSAE, B = c.x.rows
        var grads = [Float](repeating: 0, count: L.count)
        _ = try c.sae.lossAndGradients(c.x, into: &grads, lambda: c.lambda)
        let p = c.sae.params.map(Double.init), x = c.x.storage.map(Double.init)
        let ref = referenceLoss(config, p, x, rows: B, lambda: Double(c.lambda))
        let ε = Double(config.bandwidth), λ = Double(c.lambda)
        var expected = [Double](repeating: 0, count: m)
        var hits = 0
        for j in 0..<m {
            let θ = Foundation.exp(p[L.log_threshold.lowerBound + j])
            for b in 0..<B where abs(ref.pre[b * m + j] - θ) < ε / 2 {
                var df = 0.0
                for i in 0..<d { df += 2 / Double(B) * (ref.xhat[b * d + i] - x[b * d + i]) * p[L.W_dec.lowerBound + j * d + i] }
                expected[j] += θ * (df * (-θ / ε) - λ / (Double(B) * ε))
                hits += 1
            }
        }
        #expect(hits >= 10, "only \(hits) pre-activations inside the kernel window")
        expectClose("jumprelu log_threshold", analytic: Array(grads[L.log_threshold]), reference: expected)
    }
}
