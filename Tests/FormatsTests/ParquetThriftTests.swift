import Testing
@testable import Formats
@testable import Parquet

// The thrift compact-protocol reader (ThriftCompactReader, used for parquet's footer and page
// headers) on a message encoded by hand from the protocol spec.

/// struct { 1: i32 -3, 2: binary "hi", 20: i64 300 (long-form id), 21: bool true,
///          22: list<i32> 0..15 (long-form size), 23: struct { 1: double 1.5, 2: map {"a": 1} } }
private let message: [UInt8] = {
    var m: [UInt8] = [0x15, 0x05]                       // field 1, i32, zigzag(-3) = 5
    m += [0x18, 0x02] + Array("hi".utf8)                // field 2 (delta 1), binary
    m += [0x06, 0x28, 0xd8, 0x04]                       // delta 0, i64; id zigzag(20) = 40; zigzag(300) = 600
    m += [0x11]                                         // field 21, bool true
    m += [0x19, 0xf5, 0x10] + (0..<16).map { UInt8($0 * 2) }  // field 22, list: size 15 -> varint 16, i32
    m += [0x1c]                                         // field 23, struct
    m += [0x17, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f]           //   field 1, double 1.5 (little-endian)
    m += [0x1b, 0x01, 0x85, 0x01] + Array("a".utf8) + [0x02]  // field 2, map size 1, binary -> i32
    m += [0x00]                                         //   stop
    m += [0x00]                                         // stop
    return m
}()

@Suite struct ParquetThriftTests {
    @Test func decodesEveryWireType() throws {
        var ids: [Int16] = []
        var int32: Int32 = 0, int64: Int64 = 0, text = "", flag = false, list: [Int32] = []
        try message.withUnsafeBytes { raw in
            var reader = ThriftCompactReader(raw)
            try reader.readStruct { r, field in
                ids.append(field.id)
                switch field.id {
                case 1: int32 = try r.readI32()
                case 2: text = try r.readString()
                case 20: int64 = try r.readI64()
                case 21: flag = field.type == .boolTrue
                case 22: list = try r.readListElements { r, _ in try r.readI32() }
                default: try r.skip(field.type)
                }
            }
            #expect(reader.position == message.count)
        }
        #expect(ids == [1, 2, 20, 21, 22, 23])
        #expect(int32 == -3 && text == "hi" && int64 == 300 && flag)
        #expect(list == (0..<16).map { Int32($0) })
    }

    @Test func skipConsumesTheWholeMessage() throws {
        try message.withUnsafeBytes { raw in
            var reader = ThriftCompactReader(raw)
            try reader.skip(.structure)
            #expect(reader.position == message.count)
        }
    }

    @Test func damagedMessagesAreErrors() {
        let cases: [(String, [UInt8])] = [
            ("every truncation", []),  // filled in below
            ("binary longer than the message", [0x18, 0x7f, 0x41]),
            ("list count larger than the message", [0x19, 0xf5, 0xff, 0xff, 0x03]),
            ("varint longer than 10 bytes", [0x15] + [UInt8](repeating: 0xff, count: 11)),
            ("nesting deeper than the limit", [UInt8](repeating: 0x1c, count: 100)),
            ("unknown field type", [0x1e]),
        ]
        var all = cases.dropFirst().map { $0 }
        for length in 0..<message.count { all.append(("truncated to \(length)", Array(message.prefix(length)))) }
        for (what, bytes) in all {
            #expect(throws: ThriftError.self, "\(what)") {
                try bytes.withUnsafeBytes { raw in
                    var reader = ThriftCompactReader(raw)
                    try reader.skip(.structure)
                }
            }
        }
    }

    @Test func pageHeaderFieldsAndTypeChecks() throws {
        // PageHeader { 1: DATA_PAGE_V2 (3), 2: 100, 3: 60, 8: DataPageHeaderV2 { 1: 10, 2: 4, 3: 10,
        //              4: RLE_DICTIONARY (8), 5: 2, 6: 0, 7: false } }
        let bytes: [UInt8] = [0x15, 0x06, 0x15, 0xc8, 0x01, 0x15, 0x78, 0x5c,
                              0x15, 0x14, 0x15, 0x08, 0x15, 0x14, 0x15, 0x10, 0x15, 0x04, 0x15, 0x00, 0x12, 0x00,
                              0x00]
        let header = try bytes.withUnsafeBytes { raw in
            var reader = ThriftCompactReader(raw)
            return try ParquetPageHeader(from: &reader)
        }
        #expect(header.type == .dataPageV2)
        #expect(header.uncompressedSize == 100 && header.compressedSize == 60)
        #expect(header.numValues == 10 && header.numNulls == 4 && header.encoding == .rleDictionary)
        #expect(header.definitionLevelsByteLength == 2 && header.repetitionLevelsByteLength == 0)
        #expect(header.isCompressed == false)

        // Field 2 sent as a binary instead of an i32: refused, naming the struct and field.
        let wrongType: [UInt8] = [0x15, 0x00, 0x18, 0x01, 0x41, 0x00]
        #expect {
            try wrongType.withUnsafeBytes { raw in
                var reader = ThriftCompactReader(raw)
                _ = try ParquetPageHeader(from: &reader)
            }
        } throws: { error in
            (error as? ThriftError)?.description.contains("field 2 of PageHeader has type binary") == true
        }
    }
}
