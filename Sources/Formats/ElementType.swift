/// The element types the readers understand, with their on-disk sizes and conversions.
///
/// Floating types convert to Float32 (bf16 and f16 exactly, f64 rounded); integer types widen to Int64.
/// All on-disk data is little-endian.
public enum ElementType: String, CaseIterable, Sendable {
    case f32 = "F32", bf16 = "BF16", f16 = "F16", f64 = "F64"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .bf16, .f16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }

    public var isFloatingPoint: Bool {
        switch self { case .f32, .bf16, .f16, .f64: return true; default: return false }
    }

    /// Element `i` (not a byte offset) of `raw` as Float32.
    @inline(__always) public func float(_ raw: UnsafeRawBufferPointer, _ i: Int) -> Float {
        switch self {
        case .f32: return Float(bitPattern: raw.le32(i * 4))
        case .bf16: return Float(bitPattern: UInt32(raw.le16(i * 2)) << 16)
        case .f16: return halfToFloat(raw.le16(i * 2))
        case .f64: return Float(Double(bitPattern: raw.le64(i * 8)))
        default: return Float(int64(raw, i))
        }
    }

    /// Element `i` of `raw` as Int64 (floating types truncate toward zero; used only for integers).
    @inline(__always) func int64(_ raw: UnsafeRawBufferPointer, _ i: Int) -> Int64 {
        switch self {
        case .i64: return Int64(bitPattern: raw.le64(i * 8))
        case .i32: return Int64(Int32(bitPattern: raw.le32(i * 4)))
        case .i16: return Int64(Int16(bitPattern: raw.le16(i * 2)))
        case .i8: return Int64(Int8(bitPattern: raw[i]))
        case .u8: return Int64(raw[i])
        case .bool: return raw[i] != 0 ? 1 : 0
        default:
            let f = float(raw, i)
            return f.isFinite && abs(f) < 9.2e18 ? Int64(f) : 0
        }
    }

    /// The index of the first NaN or ±inf among the first `count` elements of `raw` (a floating
    /// type's exponent bits all ones), or nil. Integers are always finite. Four 64-bit words are
    /// tested at once (a memory-bound pass: 2.7 GB of weights in well under a second); the words
    /// that hold one are then searched element by element.
    public func firstNonFinite(_ raw: UnsafeRawBufferPointer, count: Int) -> Int? {
        precondition(raw.count >= count * size)
        // Per lane of `size` bytes: exponent mask M. y = (x & M) ^ M is 0 exactly in a non-finite
        // lane, and M leaves each lane's top bit clear, so "some lane of y is 0" is
        // (y − lowOnes) & ~y & highBits ≠ 0 (a borrow can only start at a zero lane).
        let mask: UInt64, element: (Int) -> UInt64
        switch self {
        case .f32: mask = 0x7f80_0000_7f80_0000; element = { UInt64(raw.le32($0 * 4)) }
        case .bf16: mask = 0x7f80_7f80_7f80_7f80; element = { UInt64(raw.le16($0 * 2)) }
        case .f16: mask = 0x7c00_7c00_7c00_7c00; element = { UInt64(raw.le16($0 * 2)) }
        case .f64: mask = 0x7ff0_0000_0000_0000; element = { raw.le64($0 * 8) }
        default: return nil
        }
        let bits = size * 8, laneMask = bits == 64 ? UInt64.max : (1 << UInt64(bits)) - 1
        let lowOnes = UInt64.max / laneMask, highBits = lowOnes << UInt64(bits - 1)
        @inline(__always) func hasNonFinite(_ w: UInt64) -> Bool {
            let y = (w & mask) ^ mask
            return (y &- lowOnes) & ~y & highBits != 0
        }
        let perWord = 8 / size, words = count / perWord
        var w = 0
        while w + 4 <= words {
            let a = raw.le64(w * 8), b = raw.le64(w * 8 + 8), c = raw.le64(w * 8 + 16), d = raw.le64(w * 8 + 24)
            if hasNonFinite(a) || hasNonFinite(b) || hasNonFinite(c) || hasNonFinite(d) { break }
            w += 4
        }
        for i in w * perWord ..< count where element(i) & (mask & laneMask) == mask & laneMask { return i }
        return nil
    }

    /// The first `count` elements of `raw` (which must hold them) as Float32.
    public func floats(_ raw: UnsafeRawBufferPointer, count: Int) -> [Float] {
        precondition(raw.count >= count * size)
        if self == .f32 {
            // Bit copy: the host is little-endian (x86-64, arm64).
            return [Float](unsafeUninitializedCapacity: count) { buf, n in
                if count > 0 { UnsafeMutableRawPointer(buf.baseAddress!).copyMemory(from: raw.baseAddress!, byteCount: count * 4) }
                n = count
            }
        }
        return [Float](unsafeUninitializedCapacity: count) { buf, n in
            for i in 0..<count { buf[i] = float(raw, i) }
            n = count
        }
    }

    /// The first `count` elements of `raw` (which must hold them) as Int64.
    func int64s(_ raw: UnsafeRawBufferPointer, count: Int) -> [Int64] {
        precondition(raw.count >= count * size)
        return [Int64](unsafeUninitializedCapacity: count) { buf, n in
            for i in 0..<count { buf[i] = int64(raw, i) }
            n = count
        }
    }
}

/// IEEE binary16 → binary32 (exact): sign, 5-bit exponent (bias 15), 10-bit mantissa.
@inline(__always) func halfToFloat(_ h: UInt16) -> Float {
    let sign: UInt32 = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1f
    let mantissa = UInt32(h & 0x3ff)
    if exponent == 0 {
        // zero or subnormal: mantissa · 2^-24
        let magnitude = Float(mantissa) * 5.9604645e-08
        return sign != 0 ? -magnitude : magnitude
    }
    if exponent == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13)) }  // inf / NaN
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))           // rebias 15 → 127
}
