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
