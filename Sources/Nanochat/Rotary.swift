import Foundation

/// Rotary position tables: for position t and pair j < D/2, angle θ_t,j = t · base^(−2j/D).
/// Computed in Float32 the way nanochat does (inv_freq = 1 / base^(2j/D), then t · inv_freq),
/// and rounded to bfloat16 when the profile asks (v0 kept cos/sin in bf16).
struct RotaryTable: Sendable {
    let half: Int
    let positions: Int
    /// [positions, D/2]
    let cos: [Float]
    /// [positions, D/2]
    let sin: [Float]

    init(headDim d: Int, positions: Int, base: Float, bf16: Bool) {
        half = d / 2
        self.positions = positions
        let inv = (0..<half).map { j in 1 / Foundation.pow(base, Float(2 * j) / Float(d)) }
        var c = [Float](repeating: 0, count: positions * half), s = c
        for t in 0..<positions {
            for j in 0..<half {
                let a = Float(t) * inv[j]
                c[t * half + j] = Foundation.cos(a); s[t * half + j] = Foundation.sin(a)
            }
        }
        if bf16 { c = c.map(roundToBFloat16); s = s.map(roundToBFloat16) }
        cos = c; sin = s
    }

    /// Rotates each D-element head of `row` (heads·D floats) for position `t`:
    ///   y1 = x1·cos + x2·sin,  y2 = −x1·sin + x2·cos   over the halves (x1, x2) of each head.
    @inline(__always)
    func apply(_ row: UnsafeMutablePointer<Float>, heads: Int, position t: Int) {
        cos.withUnsafeBufferPointer { cb in sin.withUnsafeBufferPointer { sb in
            let c = cb.baseAddress! + t * half, s = sb.baseAddress! + t * half
            for h in 0..<heads {
                let x = row + h * 2 * half
                for j in 0..<half {
                    let x1 = x[j], x2 = x[j + half]
                    x[j] = x1 * c[j] + x2 * s[j]
                    x[j + half] = -x1 * s[j] + x2 * c[j]
                }
            }
        } }
    }
}

/// Float32 → bfloat16 → Float32, round to nearest even (torch's `.bfloat16()`).
func roundToBFloat16(_ x: Float) -> Float {
    if x.isNaN { return x }
    let bits = x.bitPattern
    let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
    return Float(bitPattern: rounded & 0xFFFF_0000)
}
