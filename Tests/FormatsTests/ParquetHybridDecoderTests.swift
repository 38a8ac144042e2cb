import Testing
@testable import Formats
@testable import Parquet

// The RLE / bit-packing hybrid against the parquet-format spec's worked example and a
// straightforward bit packer written here.

private func decode(_ bytes: [UInt8], width: Int, count: Int) throws -> (values: [UInt32], consumed: Int) {
    var out = [UInt32](repeating: 0xdead, count: count)
    let consumed = try bytes.withUnsafeBytes { raw in
        try out.withUnsafeMutableBufferPointer { try decodeParquetHybrid(raw, bitWidth: width, count: count, into: $0) }
    }
    return (out, consumed)
}

/// Packs `values` LSB-first, `width` bits each, as one bit-packed run (padded to groups of 8).
private func bitPackedRun(_ values: [UInt32], width: Int) -> [UInt8] {
    let groups = (values.count + 7) / 8
    var bits = [Bool]()
    for i in 0..<(groups * 8) {
        let v = i < values.count ? values[i] : 0
        for b in 0..<width { bits.append((v >> UInt32(b)) & 1 == 1) }
    }
    var bytes = [UInt8](repeating: 0, count: groups * width)
    for (i, bit) in bits.enumerated() where bit { bytes[i / 8] |= 1 << UInt8(i % 8) }
    var header = [UInt8]()
    var h = groups << 1 | 1
    while h >= 0x80 { header.append(UInt8(h & 0x7f) | 0x80); h >>= 7 }
    header.append(UInt8(h))
    return header + bytes
}

@Suite struct ParquetHybridDecoderTests {
    @Test func specExampleBitPackedThenRLE() throws {
        // parquet-format Encodings.md: 0..7 with bit width 3 packs to 10001000 11000110 11111010.
        let bytes: [UInt8] = [0x03, 0x88, 0xc6, 0xfa, 5 << 1, 4]
        let (values, consumed) = try decode(bytes, width: 3, count: 13)
        #expect(values == [0, 1, 2, 3, 4, 5, 6, 7, 4, 4, 4, 4, 4])
        #expect(consumed == bytes.count)
    }

    @Test(arguments: [1, 2, 5, 8, 13, 17, 24, 31, 32])
    func bitPackedRoundTrip(width: Int) throws {
        var rng = SplitMix64(seed: UInt64(width))
        let mask = width == 32 ? UInt32.max : (1 << UInt32(width)) - 1
        let values = (0..<37).map { _ in UInt32(truncatingIfNeeded: rng.next()) & mask }
        // Decode fewer values than the padded run holds: padding is skipped, not returned.
        let run = bitPackedRun(values, width: width)
        let (decoded, consumed) = try decode(run, width: width, count: values.count)
        #expect(decoded == values)
        #expect(consumed == run.count)
    }

    @Test func multiByteRLEValueAndWidthZero() throws {
        // Width 12: the repeated value takes 2 bytes little-endian.
        #expect(try decode([3 << 1, 0x34, 0x0a], width: 12, count: 3).values == [0xa34, 0xa34, 0xa34])
        // Width 0: values take no bytes and are all zero.
        #expect(try decode([10 << 1], width: 0, count: 10).values == [UInt32](repeating: 0, count: 10))
    }

    @Test func damagedRunsAreErrors() {
        // Ends inside the run header, a bit-packed run short of bytes, runs short of values, bad width.
        let cases: [([UInt8], Int, Int)] = [([0x83], 3, 8), ([0x03, 0x88], 3, 8), ([4 << 1, 1], 1, 9), ([2, 1], 33, 1)]
        for (bytes, width, count) in cases {
            #expect(throws: ParquetDecodeError.self, "\(bytes) width \(width)") {
                _ = try decode(bytes, width: width, count: count)
            }
        }
    }
}

/// splitmix64: a tiny deterministic generator for test data.
private struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
