import Foundation
import Testing
@testable import Formats
@testable import Parquet

// Damaged parquet files made from good ones: each must fail with a ParquetError that names the
// problem, and no damage may crash the reader (every byte flipped, every truncation).

private let testsDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

private func smallFile(_ name: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: testsDir.appendingPathComponent("parquet/\(name)")))
}

/// Opens `bytes` as an in-memory parquet file and reads its `text` column.
private func readText(_ bytes: [UInt8]) throws -> [String?] {
    try ParquetFile(bytes: bytes, name: "damaged.parquet").strings(column: "text")
}

/// The description of the ParquetError reading `bytes` throws ("" and an issue if none).
private func failure(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> String {
    do {
        let values = try readText(bytes)
        Issue.record("expected a ParquetError, read \(values.count) values", sourceLocation: sourceLocation)
    } catch let error as ParquetError {
        return error.description
    } catch {
        Issue.record("expected a ParquetError, got \(error)", sourceLocation: sourceLocation)
    }
    return ""
}

/// Byte ranges of the first page header's uncompressed and compressed size varints. Files without
/// a dictionary start their first page at byte 4 with fields 1 (type), 2, 3, each an i32 (0x15).
private func firstPageSizeFields(_ bytes: [UInt8]) throws -> (uncompressed: Range<Int>, compressed: Range<Int>) {
    func varintEnd(_ start: Int) -> Int {
        var i = start
        while bytes[i] & 0x80 != 0 { i += 1 }
        return i + 1
    }
    try #require(bytes[4] == 0x15 && bytes[6] == 0x15, "unexpected page header layout")
    let uncompressed = 7..<varintEnd(7)
    try #require(bytes[uncompressed.upperBound] == 0x15)
    let compressedStart = uncompressed.upperBound + 1
    return (uncompressed, compressedStart..<varintEnd(compressedStart))
}

/// Overwrites `range` with the zigzag varint of `value`, padded to exactly `range.count` bytes.
private func setVarint(_ bytes: inout [UInt8], _ range: Range<Int>, _ value: Int32) throws {
    var raw = UInt64(UInt32(bitPattern: (value << 1) ^ (value >> 31)))
    for i in range {
        bytes[i] = UInt8(raw & 0x7f) | (i == range.upperBound - 1 ? 0 : 0x80)
        raw >>= 7
    }
    try #require(raw == 0, "value \(value) does not fit in \(range.count) varint bytes")
}

@Suite struct ParquetCorruptionTests {
    @Test func truncatedFile() throws {
        let good = try smallFile("snappy.parquet")
        #expect(failure(Array(good.dropLast(10))).contains("does not end with the magic"))
        #expect(failure(Array(good.prefix(6))).contains("smaller than the 12 bytes"))
        #expect(failure([]).contains("smaller than the 12 bytes"))
    }

    @Test func badMagic() throws {
        var bytes = try smallFile("snappy.parquet")
        bytes[0] = UInt8(ascii: "Q")
        let message = failure(bytes)
        #expect(message.contains("does not start with the magic"))
        #expect(message.hasPrefix("damaged.parquet: corrupt parquet file: footer: "))
    }

    @Test func footerLengthPastTheFile() throws {
        var bytes = try smallFile("snappy.parquet")
        let length = UInt32(bytes.count)
        for i in 0..<4 { bytes[bytes.count - 8 + i] = UInt8(truncatingIfNeeded: length >> (8 * UInt32(i))) }
        #expect(failure(bytes).contains("footer length \(length) is larger than"))
    }

    @Test func garbageFooter() throws {
        var bytes = try smallFile("snappy.parquet")
        var footerLength = 0
        for i in 0..<4 { footerLength |= Int(bytes[bytes.count - 8 + i]) << (8 * i) }
        for i in (bytes.count - 8 - footerLength)..<(bytes.count - 8) { bytes[i] = 0xff }
        #expect(failure(bytes).contains("FileMetaData"))
    }

    @Test func pageBodyPastTheChunk() throws {
        var bytes = try smallFile("uncompressed.parquet")
        let fields = try firstPageSizeFields(bytes)
        try setVarint(&bytes, fields.compressed, 8000)
        let message = failure(bytes)
        #expect(message.contains("column 'text', page at byte 4"))
        #expect(message.contains("runs past the chunk end"))
    }

    @Test func uncompressedSizeLies() throws {
        // SNAPPY and ZSTD state their own size; UNCOMPRESSED must match; GZIP ends early.
        let cases: [(file: String, size: Int32, expected: String)] = [
            ("snappy.parquet", 1500, "SNAPPY stream holds"),
            ("zstd_v2.parquet", 1500, "ZSTD frames hold"),
            ("uncompressed.parquet", 1500, "differs from uncompressed size"),
            ("gzip.parquet", 1500, "GZIP data is longer than the page header's 1500 bytes"),
            ("gzip.parquet", 5000, "GZIP data decompressed to"),
        ]
        for (file, size, expected) in cases {
            var bytes = try smallFile(file)
            let fields = try firstPageSizeFields(bytes)
            try setVarint(&bytes, fields.uncompressed, size)
            let message = failure(bytes)
            #expect(message.contains(expected), "\(file): \(message)")
            #expect(message.contains("page at byte 4"), "\(file): \(message)")
        }
    }

    @Test func garbagePageBody() throws {
        for file in ["snappy.parquet", "gzip.parquet", "zstd_v2.parquet"] {
            var bytes = try smallFile(file)
            let fields = try firstPageSizeFields(bytes)
            let bodyStart = fields.compressed.upperBound
            // The header ends after optional fields; garble from well inside the body.
            for i in (bodyStart + 40)..<(bodyStart + 200) { bytes[i] = 0xab }
            let message = failure(bytes)
            #expect(message.contains("page at byte 4"), "\(file): \(message)")
        }
    }

    /// Every single-byte flip and every truncation of several files: the read either succeeds or
    /// throws a ParquetError; it never crashes, hangs or throws anything else.
    @Test(arguments: ["uncompressed.parquet", "snappy.parquet", "gzip.parquet", "zstd_v2.parquet",
                      "dictionary.parquet", "dictionary_v1.parquet", "nulls_v2_dictionary.parquet",
                      "nulls.parquet", "row_groups.parquet", "required_v2.parquet"])
    func everyByteFlipAndTruncationFailsCleanly(file: String) throws {
        let good = try smallFile(file)
        var errors = 0
        for i in 0..<good.count {
            var bytes = good
            bytes[i] ^= 0xff
            do { _ = try readText(bytes) } catch is ParquetError { errors += 1 }
        }
        // Most flips in the footer and page headers must be detected.
        #expect(errors > good.count / 10, "\(file): only \(errors) of \(good.count) flips detected")
        for length in stride(from: 0, to: good.count, by: 7) {
            #expect(throws: ParquetError.self) { _ = try readText(Array(good.prefix(length))) }
        }
    }
}
