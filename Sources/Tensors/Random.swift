import Foundation

/// A small, fast, seedable generator (xoshiro256**, seeded through SplitMix64) whose whole state is
/// four words, so training can save and restore it exactly for `--resume`.
public struct Xoshiro256: RandomNumberGenerator, Sendable, Equatable, Codable {
    public private(set) var state: [UInt64]

    public init(seed: UInt64) {
        var z = seed
        func splitmix() -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var r = z
            r = (r ^ (r >> 30)) &* 0xBF58_476D_1CE4_E5B9
            r = (r ^ (r >> 27)) &* 0x94D0_49BB_1331_11EB
            return r ^ (r >> 31)
        }
        state = [splitmix(), splitmix(), splitmix(), splitmix()]
    }

    /// Restores a generator from a saved `state` (four words, not all zero).
    public init(state: [UInt64]) {
        precondition(state.count == 4 && state.contains { $0 != 0 }, "invalid xoshiro256 state")
        self.state = state
    }

    public mutating func next() -> UInt64 {
        let result = rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]; state[3] ^= state[1]; state[1] ^= state[2]; state[0] ^= state[3]
        state[2] ^= t
        state[3] = rotl(state[3], 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func nextFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Standard normal sample (Box–Muller).
    public mutating func nextGaussian() -> Float {
        let u1 = max(nextDouble(), 0x1p-60), u2 = nextDouble()
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }

    /// A uniform integer in 0..<n.
    public mutating func nextInt(below n: Int) -> Int {
        precondition(n > 0)
        return Int(next(upperBound: UInt64(n)))
    }
}

extension Tensor {
    /// Tensor with i.i.d. N(0, std²) entries from `rng`.
    public static func randomNormal(shape: [Int], std: Float = 1, rng: inout Xoshiro256) -> Tensor {
        var t = Tensor(shape: shape)
        for i in 0..<t.count { t.storage[i] = std * rng.nextGaussian() }
        return t
    }

    /// Tensor with i.i.d. uniform entries in [lo, hi) from `rng`.
    public static func randomUniform(shape: [Int], in range: Range<Float> = -1..<1,
                                     rng: inout Xoshiro256) -> Tensor {
        var t = Tensor(shape: shape)
        let w = range.upperBound - range.lowerBound
        for i in 0..<t.count { t.storage[i] = range.lowerBound + w * rng.nextFloat() }
        return t
    }
}
