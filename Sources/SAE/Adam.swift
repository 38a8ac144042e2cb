import Foundation
import Tensors

// Adam (Kingma & Ba 2015) with bias correction, the learning-rate and λ schedules, and gradient
// clipping. Moments use the parameter layout, so `m` and `v` are two more buffers of `layout.count`,
// or of one contiguous slice of it when the optimizer state is sharded over ranks (ZeRO-1).

/// Adam's hyper-parameters.
public struct AdamConfig: Sendable, Equatable, Codable {
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var eps: Float = 1e-8
    public init(beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
    }
}

/// Adam's state for one parameter buffer, or a slice of it: first and second moments and the step count.
public struct AdamState: Sendable, Equatable, Codable {
    public var config: AdamConfig
    /// The parameters this state updates: all of them, or a rank's piece when sharded.
    public var slice: Range<Int>
    /// First moment of the parameters in `slice` (m[i] belongs to parameter slice.lowerBound + i).
    public var m: [Float]
    /// Second moment, likewise.
    public var v: [Float]
    /// Updates applied so far.
    public var step: Int = 0

    /// The state of all `count` parameters.
    public init(count: Int, config: AdamConfig = AdamConfig()) {
        self.init(slice: 0 ..< count, config: config)
    }

    /// The state of the parameters in `slice` only; `update` leaves the others untouched.
    public init(slice: Range<Int>, config: AdamConfig = AdamConfig()) {
        self.config = config
        self.slice = slice
        m = [Float](repeating: 0, count: slice.count)
        v = [Float](repeating: 0, count: slice.count)
    }

    /// Zeroes the moments of the parameters in `r` that this state holds.
    public mutating func resetMoments(_ r: Range<Int>) {
        let o = slice.lowerBound
        for i in r.clamped(to: slice) { m[i - o] = 0; v[i - o] = 0 }
    }

    /// One update:  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
    ///   p ← p − lr·(m/(1−β₁ᵗ)) / (sqrt(v/(1−β₂ᵗ)) + ε)
    public mutating func update(_ params: inout ParameterBuffer, gradients g: [Float], lr: Float) {
        precondition(g.count == params.count, "Adam: buffer sizes differ")
        // With no unit rows nothing writes to the gradient.
        g.withUnsafeBufferPointer { update(&params, gradients: UnsafeMutablePointer(mutating: $0.baseAddress!), lr: lr,
                                           unitRows: 0..<0, width: 1) }
    }

    /// The same update, with the parameters in `unitRows` (rows of `width`: W_dec) taken one row at a
    /// time while it is in cache: its gradient first loses its component along the row, and the row
    /// is renormalised after (unit-norm decoders, `SAE.optimizerStep`). The same bits as three passes.
    mutating func update(_ params: inout ParameterBuffer, gradients g: inout [Float], lr: Float, unitRows: Range<Int>, width d: Int) {
        precondition(g.count == params.count, "Adam: buffer sizes differ")
        g.withUnsafeMutableBufferPointer { update(&params, gradients: $0.baseAddress!, lr: lr, unitRows: unitRows, width: d) }
    }

    private mutating func update(_ params: inout ParameterBuffer, gradients g: UnsafeMutablePointer<Float>, lr: Float,
                                 unitRows: Range<Int>, width d: Int) {
        precondition(slice.upperBound <= params.count, "Adam: a slice beyond the parameters")
        // The unit rows within the slice, as offsets into it; a sharded slice never splits a row.
        let o = slice.lowerBound, n = slice.count
        let inSlice = unitRows.clamped(to: slice)
        let units = inSlice.isEmpty ? 0 ..< 0 : inSlice.lowerBound - o ..< inSlice.upperBound - o
        precondition(inSlice.isEmpty || ((inSlice.lowerBound - unitRows.lowerBound) % d == 0 && inSlice.count % d == 0),
                     "Adam: the slice splits a unit-norm row")
        step += 1
        let b1 = config.beta1, b2 = config.beta2, eps = config.eps
        let c1 = 1 - Float(Foundation.pow(Double(b1), Double(step)))
        let c2 = 1 - Float(Foundation.pow(Double(b2), Double(step)))
        let stepSize = lr / c1, invSqrtC2 = 1 / c2.squareRoot()
        let rows = units.count / d
        params.withUnsafeMutableBufferPointer { pb in
            m.withUnsafeMutableBufferPointer { mb in v.withUnsafeMutableBufferPointer { vb in
                guard n > 0 else { return }
                let box = UncheckedSendable((pb.baseAddress! + o, g + o, mb.baseAddress!, vb.baseAddress!))
                // Elementwise, so threads over disjoint ranges give the same bits as one loop.
                @inline(__always) func adam(_ r: Range<Int>) {
                    let (p, g, m, v) = box.value
                    for i in r {
                        let gi = g[i]
                        let mi = b1 * m[i] + (1 - b1) * gi, vi = b2 * v[i] + (1 - b2) * gi * gi
                        m[i] = mi; v[i] = vi
                        p[i] -= stepSize * mi / (vi.squareRoot() * invSqrtC2 + eps)
                    }
                }
                parallelRanges(units.lowerBound, grain: 1 << 16, adam)
                parallelRanges(n - units.upperBound, grain: 1 << 16) { adam($0.lowerBound + units.upperBound ..< $0.upperBound + units.upperBound) }
                parallelRanges(rows, grain: 64) { r in
                    let (p, g, _, _) = box.value
                    for j in r {
                        let lo = units.lowerBound + j * d
                        projectOut(g + lo, along: p + lo, d)
                        adam(lo ..< lo + d)
                        normalize(p + lo, d)
                    }
                }
            } }
        }
    }
}

/// Learning rate: linear warm-up from 0 over `warmupSteps`, constant, then linear decay to
/// `finalFraction`·lr over the last `decaySteps` of `totalSteps` (Anthropic / SAELens style).
public struct LearningRateSchedule: Sendable, Equatable, Codable {
    public var lr: Float
    public var warmupSteps: Int = 0
    public var decaySteps: Int = 0
    public var totalSteps: Int
    public var finalFraction: Float = 0

    public init(lr: Float, totalSteps: Int, warmupSteps: Int = 0, decaySteps: Int = 0, finalFraction: Float = 0) {
        self.lr = lr; self.totalSteps = totalSteps; self.warmupSteps = warmupSteps
        self.decaySteps = decaySteps; self.finalFraction = finalFraction
    }

    /// Learning rate of (0-based) step `step`.
    public func callAsFunction(_ step: Int) -> Float {
        if step < warmupSteps { return lr * Float(step + 1) / Float(warmupSteps) }
        let decayStart = totalSteps - decaySteps
        if decaySteps > 0 && step >= decayStart {
            let t = min(1, Float(step - decayStart + 1) / Float(decaySteps))
            return lr * (1 - t * (1 - finalFraction))
        }
        return lr
    }
}

/// λ warm-up for the L1/L0 terms: linear from 0 to λ over `warmupSteps`.
public struct LambdaSchedule: Sendable, Equatable, Codable {
    public var lambda: Float
    public var warmupSteps: Int = 0
    public init(lambda: Float, warmupSteps: Int = 0) { self.lambda = lambda; self.warmupSteps = warmupSteps }
    public func callAsFunction(_ step: Int) -> Float {
        warmupSteps > 0 && step < warmupSteps ? lambda * Float(step + 1) / Float(warmupSteps) : lambda
    }
}

/// Scales `grads` so that their global L2 norm is at most `maxNorm`; returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ grads: inout [Float], maxNorm: Float) -> Float {
    var s = 0.0
    for g in grads { s += Double(g) * Double(g) }
    let norm = Float(s.squareRoot())
    if norm > maxNorm && norm > 0 {
        let c = maxNorm / norm
        for i in 0..<grads.count { grads[i] *= c }
    }
    return norm
}

extension SAE {
    /// The optimizer half of a training step, identical on every rank given identical inputs:
    /// for unit-norm architectures remove the gradient component along each decoder row, apply Adam,
    /// then renormalise the decoder rows (one pass over each row). `grads` is the (already rank-combined, clipped) gradient.
    public mutating func optimizerStep(gradients grads: inout [Float], adam: inout AdamState, lr: Float) {
        if config.architecture.hasUnitNormDecoder {
            adam.update(&params, gradients: &grads, lr: lr, unitRows: layout.W_dec, width: config.dIn)
        } else {
            adam.update(&params, gradients: grads, lr: lr)
        }
    }
}
