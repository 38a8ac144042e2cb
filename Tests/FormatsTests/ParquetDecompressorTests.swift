import Foundation
import Testing
@testable import Formats
@testable import Parquet

// Page decompression: round trips through each codec's own compressor are not available without
// more bindings, so these check the size guards; the small test files cover real decoding.
@Suite struct ParquetDecompressorTests {
    @Test func impossibleSizeIsRefusedBeforeDecoding() throws {
        let input = [UInt8](repeating: 0, count: 10)
        var output = [UInt8](repeating: 0, count: 1 << 20)
        for codec in [ParquetCodec.snappy, .gzip, .zstd, .uncompressed] {
            let decompressor = ParquetDecompressor(codec: codec)
            var message = ""
            do {
                try input.withUnsafeBytes { raw in
                    try output.withUnsafeMutableBytes { try decompressor.decompress(raw, into: $0) }
                }
            } catch let error as ParquetDecodeError {
                message = error.problem
            }
            #expect(message.contains("impossible"), "\(codec): \(message)")
            #expect(output.allSatisfy { $0 == 0 }, "\(codec) wrote before refusing")
        }
    }

    @Test func uncompressedCopiesExactly() throws {
        let input: [UInt8] = Array("PAR1 page".utf8)
        var output = [UInt8](repeating: 0, count: input.count)
        try input.withUnsafeBytes { raw in
            try output.withUnsafeMutableBytes { try ParquetDecompressor(codec: .uncompressed).decompress(raw, into: $0) }
        }
        #expect(output == input)
    }

    @Test func snappyLiteralDecodes() throws {
        // Snappy block: varint length 5, literal tag ((5-1) << 2 | 0), then the bytes.
        let input: [UInt8] = [5, 4 << 2] + Array("hello".utf8)
        var output = [UInt8](repeating: 0, count: 5)
        try input.withUnsafeBytes { raw in
            try output.withUnsafeMutableBytes { try ParquetDecompressor(codec: .snappy).decompress(raw, into: $0) }
        }
        #expect(String(decoding: output, as: UTF8.self) == "hello")
    }
}
