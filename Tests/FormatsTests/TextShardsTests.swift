import Foundation
import Testing
@testable import Formats
@testable import Parquet
import TestSupport

// The reader on nanochat-style shards: the four shards the tests train on (TextShards: the Python
// 3.11 docs' reST sources from Debian's python3.11-doc, written by TestSupport's ParquetTextWriter)
// read back as exactly their source files, and the writer's other shapes (many row groups, many
// pages, uncompressed) read back too.

@Suite struct TextShardsTests {
    @Test(arguments: 0..<TextShards.shardCount)
    func shardReadsBackAsItsSourceFiles(shard: Int) throws {
        let path = TestPaths.textShards + "/" + TextShards.fileName(shard: shard)
        let file = try ParquetFile(path: path)
        let expected = TextShards.texts(shard: shard)
        #expect(expected.count > 100)
        #expect(file.columnNames == ["text"])
        #expect(file.rowCount == expected.count)
        #expect(file.rowGroupCount == (expected.count + 1023) / 1024)
        #expect(file.createdBy == "nanosae ParquetTextWriter (tests)")
        var texts: [String?] = []
        for group in 0..<file.rowGroupCount {
            let chunk = file.metadata.rowGroups[group].columns[0]
            #expect(chunk.codec == .zstd && chunk.dictionaryPageOffset == nil)
            let part = try file.strings(column: "text", rowGroup: group)
            #expect(part.count == (try file.rowCount(rowGroup: group)))
            texts += part
        }
        #expect(texts == expected.map { $0 })
        // zstd did its work: reST compresses well below half.
        let bytes = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(bytes < expected.reduce(0) { $0 + $1.utf8.count } / 2)
    }

    /// The shards hold every source file once, document i in shard i mod 4 at row i / 4, byte for
    /// byte as it is on disk (read here without TextShards).
    @Test func shardsHoldEverySourceFileOnce() throws {
        let total = try (0..<TextShards.shardCount).reduce(0) {
            $0 + (try ParquetFile(path: TestPaths.textShards + "/" + TextShards.fileName(shard: $1)).rowCount)
        }
        let root = URL(fileURLWithPath: TextShards.sourceDirectory)
        let onDisk = FileManager.default.enumerator(atPath: root.path)!.compactMap { $0 as? String }.filter { $0.hasSuffix(".txt") }
        #expect(total == onDisk.count && total > 400)
        let paths = TextShards.documents.map(\.path)
        for name in ["tutorial/interpreter.rst.txt", "library/json.rst.txt", onDisk.sorted().last!] {
            let i = try #require(paths.firstIndex(of: name), "\(name) is not among the documents")
            let shard = try ParquetFile(path: TestPaths.textShards + "/" + TextShards.fileName(shard: i % 4))
            let row = try shard.strings(column: "text")[i / 4]
            let source = try String(contentsOf: root.appendingPathComponent(name), encoding: .utf8)
            #expect(row == source, "\(name): row \(i / 4) of shard \(i % 4)")
        }
    }

    /// 2,500 rows: three row groups of 1024, 1024 and 452, pages of about 4 KiB, zstd or stored.
    @Test(arguments: [ParquetTextWriter.Codec.zstd, .uncompressed])
    func writerRoundTripsRowGroupsAndPages(codec: ParquetTextWriter.Codec) throws {
        let texts = (0..<2500).map { i -> String in
            switch i % 5 {
            case 0: return ""
            case 1: return "row \(i): h\u{e9}llo w\u{f6}rld \u{1f642} \u{65e5}\u{672c}"
            case 2: return String(repeating: "long line \(i) ", count: 200)     // ~3 KiB: a page of its own
            case 3: return "line one\nline two\r\n\ttabbed \0 nul"
            default: return String(i)
            }
        }
        let bytes = ParquetTextWriter.file(texts, rowGroupRows: 1024, pageBytes: 4096, codec: codec)
        #expect(Array(bytes.prefix(4)) == Array("PAR1".utf8) && Array(bytes.suffix(4)) == Array("PAR1".utf8))
        let file = try ParquetFile(bytes: bytes, name: "written.parquet")
        #expect(file.rowGroupCount == 3 && file.rowCount == 2500)
        #expect(try (0..<3).map { try file.rowCount(rowGroup: $0) } == [1024, 1024, 452])
        #expect(file.metadata.rowGroups.allSatisfy { $0.columns[0].codec.rawValue == codec.rawValue })
        #expect(try file.strings(column: "text") == texts.map { $0 })
        #expect(try file.strings(column: "text", rowGroup: 2) == texts[2048...].map { $0 })
    }
}
