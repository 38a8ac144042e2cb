import Testing
@testable import Formats

@Suite struct ElementTypeTests {
    @Test func halfToFloatIsExactForEveryBitPattern() {
        #if arch(x86_64) || arch(arm64)
        for bits in 0...UInt16.max {
            let ours = halfToFloat(bits)
            let reference = Float(Float16(bitPattern: bits))
            if reference.isNaN {
                #expect(ours.isNaN)
            } else if ours.bitPattern != reference.bitPattern {
                Issue.record("f16 0x\(String(bits, radix: 16)): \(ours) vs \(reference)")
                return
            }
        }
        #endif
    }

    /// The word-at-a-time scan finds the first NaN or ±inf of each float type wherever it lies
    /// (inside a 4-word block, in the tail, after another one), and none among every finite extreme:
    /// largest, smallest normal and subnormal, ±0, negative values (the sign bit is a lane's top bit).
    @Test func firstNonFiniteFindsTheFirstAtEveryPosition() {
        let cases: [(ElementType, [UInt64], [UInt64])] = [   // (type, finite patterns, non-finite patterns)
            (.f32, [0x7f7f_ffff, 0x0080_0000, 0x0000_0001, 0, 0x8000_0000, 0xff7f_ffff, 0x3f80_0000],
             [0x7f80_0000, 0xff80_0000, 0x7fc0_0000, 0x7f80_0001]),
            (.bf16, [0x7f7f, 0x0080, 0x0001, 0, 0x8000, 0xff7f, 0xbf80], [0x7f80, 0xff80, 0x7fc0, 0xffff]),
            (.f16, [0x7bff, 0x0400, 0x0001, 0, 0x8000, 0xfbff, 0xbc00], [0x7c00, 0xfc00, 0x7e00, 0x7c01]),
            (.f64, [0x7fef_ffff_ffff_ffff, 1, 0, 0x8000_0000_0000_0000, 0xffef_ffff_ffff_ffff],
             [0x7ff0_0000_0000_0000, 0xfff8_0000_0000_0000]),
        ]
        for (type, finite, bad) in cases {
            for count in [0, 1, 5, 16, 37, 130] {
                let values = (0..<count).map { finite[$0 % finite.count] }
                func bytes(_ v: [UInt64]) -> [UInt8] {
                    v.flatMap { x in (0..<type.size).map { UInt8(truncatingIfNeeded: x >> UInt64(8 * $0)) } }
                }
                #expect(bytes(values).withUnsafeBytes { type.firstNonFinite($0, count: count) } == nil, "\(type) \(count)")
                for at in Set([0, count / 2, count - 1, max(0, count - 3)]) where at >= 0 && at < count {
                    var v = values
                    v[at] = bad[at % bad.count]
                    if at + 2 < count { v[at + 2] = bad[0] }
                    let found = bytes(v).withUnsafeBytes { type.firstNonFinite($0, count: count) }
                    #expect(found == at, "\(type): \(count) elements, non-finite at \(at), found \(String(describing: found))")
                }
            }
        }
    }

    @Test func convertsEachTypeFromLittleEndianBytes() {
        let bytes: [UInt8] = [0x00, 0x00, 0x80, 0xBF,  0x01, 0x02, 0x03, 0x84]
        bytes.withUnsafeBytes { raw in
            #expect(ElementType.f32.float(raw, 0) == -1)
            #expect(ElementType.bf16.float(raw, 1) == -1)                       // 0xBF80
            #expect(ElementType.i64.int64(raw, 0) == Int64(bitPattern: 0x8403_0201_BF80_0000))
            #expect(ElementType.i32.int64(raw, 1) == Int64(Int32(bitPattern: 0x8403_0201)))
            #expect(ElementType.i16.int64(raw, 3) == Int64(Int16(bitPattern: 0x8403)))
            #expect(ElementType.i8.int64(raw, 7) == -124)
            #expect(ElementType.u8.int64(raw, 7) == 132)
            #expect(ElementType.bool.int64(raw, 4) == 1 && ElementType.bool.int64(raw, 0) == 0)
            #expect(ElementType.f32.floats(raw, count: 2).map(\.bitPattern) == [0xBF80_0000, 0x8403_0201])
            #expect(ElementType.u8.floats(raw, count: 2) == [0, 0])
        }
        #expect(ElementType.allCases.map(\.size) == [4, 2, 2, 8, 8, 4, 2, 1, 1, 1])
    }
}
