import CZstd
import Foundation

// A parquet writer for one string column, for test data only: it writes what nanochat's shards
// hold (pyarrow's defaults for `pq.write_table(..., row_group_size=1024, compression="zstd",
// use_dictionary=False)`), so the reader in Sources/Formats can be tested on files made from text
// we are allowed to ship. Format: github.com/apache/parquet-format (parquet.thrift), in brief:
//
//   "PAR1" | per row group, per page: PageHeader (thrift) + page bytes | FileMetaData (thrift) |
//   footer length (u32 LE) | "PAR1"
//
// One OPTIONAL BYTE_ARRAY column `text` (converted type UTF8, logical type STRING). Each data page
// (v1) is [u32 LE length + RLE/bit-packed definition levels, all 1] then PLAIN values (u32 LE
// length + UTF-8 bytes each), compressed as a whole with zstd (or stored). A page is closed once it
// holds `pageBytes` of values, as pyarrow does at 1 MiB. No dictionary, statistics or indexes.

public enum ParquetTextWriter {
    public enum Codec: Int32, Sendable { case uncompressed = 0, zstd = 6 }   // parquet.thrift CompressionCodec

    /// The file's bytes: `texts` as the `text` column, `rowGroupRows` rows per row group.
    public static func file(_ texts: [String], rowGroupRows: Int = 1024, pageBytes: Int = 1 << 20,
                            codec: Codec = .zstd) -> [UInt8] {
        precondition(rowGroupRows > 0 && pageBytes > 0)
        var out: [UInt8] = Array("PAR1".utf8)
        var rowGroups: [Thrift] = []
        for start in stride(from: 0, to: texts.count, by: rowGroupRows) {
            let rows = texts[start ..< min(start + rowGroupRows, texts.count)]
            let chunkStart = out.count
            var uncompressedTotal = 0
            // Pages: runs of rows whose PLAIN bytes reach pageBytes (at least one row each).
            var page: [String] = [], plainBytes = 0
            func flush() {
                guard !page.isEmpty else { return }
                let (header, body, rawSize) = dataPage(page, codec: codec)
                out += header + body
                uncompressedTotal += header.count + rawSize
                page = []; plainBytes = 0
            }
            for text in rows {
                page.append(text)
                plainBytes += 4 + text.utf8.count
                if plainBytes >= pageBytes { flush() }
            }
            flush()
            let compressedTotal = out.count - chunkStart
            let columnMetaData = Thrift.structure([
                1: .i32(6),                                    // type BYTE_ARRAY
                2: .list(.i32, [.i32(0), .i32(3)]),             // encodings PLAIN, RLE (levels)
                3: .list(.binary, [.binary(Array("text".utf8))]),   // path_in_schema
                4: .i32(codec.rawValue),
                5: .i64(Int64(rows.count)),                     // num_values
                6: .i64(Int64(uncompressedTotal)),              // total_uncompressed_size (with headers)
                7: .i64(Int64(compressedTotal)),                // total_compressed_size (with headers)
                9: .i64(Int64(chunkStart)),                     // data_page_offset
            ])
            let columnChunk = Thrift.structure([2: .i64(Int64(chunkStart)), 3: columnMetaData])  // file_offset
            rowGroups.append(.structure([
                1: .list(.structure, [columnChunk]),
                2: .i64(Int64(uncompressedTotal)),              // total_byte_size
                3: .i64(Int64(rows.count)),                     // num_rows
            ]))
        }
        let schema: [Thrift] = [
            .structure([4: .binary(Array("schema".utf8)), 5: .i32(1)]),       // root: name, num_children
            .structure([1: .i32(6), 3: .i32(1), 4: .binary(Array("text".utf8)), // BYTE_ARRAY, OPTIONAL
                        6: .i32(0), 10: .structure([1: .structure([:])])]),     // UTF8, logical STRING
        ]
        let footer = Thrift.structure([
            1: .i32(1),                                         // version
            2: .list(.structure, schema),
            3: .i64(Int64(texts.count)),                        // num_rows
            4: .list(.structure, rowGroups),
            6: .binary(Array("nanosae ParquetTextWriter (tests)".utf8)),   // created_by
        ]).encoded()
        out += footer
        out += withUnsafeBytes(of: UInt32(footer.count).littleEndian, Array.init)
        out += Array("PAR1".utf8)
        return out
    }

    /// Writes `file(texts, ...)` to `path`.
    public static func write(_ texts: [String], to path: String, rowGroupRows: Int = 1024, codec: Codec = .zstd) throws {
        try Data(file(texts, rowGroupRows: rowGroupRows, codec: codec)).write(to: URL(fileURLWithPath: path))
    }

    /// One DATA_PAGE: (thrift header, stored bytes, uncompressed size) of `texts`, none null.
    private static func dataPage(_ texts: [String], codec: Codec) -> ([UInt8], [UInt8], Int) {
        // Definition levels, all 1 (present): one RLE run, header = count << 1 as a varint, then the
        // value in one byte (bit width 1); prefixed by the run's byte length (u32 LE).
        var levels: [UInt8] = []
        Thrift.varint(UInt64(texts.count) << 1, into: &levels)
        levels.append(1)
        var raw = withUnsafeBytes(of: UInt32(levels.count).littleEndian, Array.init) + levels
        for text in texts {
            raw += withUnsafeBytes(of: UInt32(text.utf8.count).littleEndian, Array.init)
            raw += Array(text.utf8)
        }
        let body = codec == .zstd ? zstd(raw) : raw
        let header = Thrift.structure([
            1: .i32(0),                                         // type DATA_PAGE
            2: .i32(Int32(raw.count)),                          // uncompressed_page_size
            3: .i32(Int32(body.count)),                         // compressed_page_size
            5: .structure([1: .i32(Int32(texts.count)),         // data_page_header: num_values,
                           2: .i32(0), 3: .i32(3), 4: .i32(3)]),   // PLAIN values, RLE levels
        ]).encoded()
        return (header, body, raw.count)
    }

    /// One zstd frame (level 3, content size in the frame header).
    private static func zstd(_ input: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(input.count))
        let n = input.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in ZSTD_compress(dst.baseAddress, dst.count, src.baseAddress, src.count, 3) }
        }
        precondition(ZSTD_isError(n) == 0, "ZSTD_compress: \(String(cString: ZSTD_getErrorName(n)))")
        return Array(out.prefix(n))
    }
}

/// A thrift value in the compact protocol (only what a parquet footer needs).
/// Field header: (id delta << 4) | type when the delta is 1...15; integers are zigzag varints;
/// binary is a varint length + bytes; a list is (size << 4) | element type (size < 15) else 0xF0 |
/// type + varint size; a struct ends with a 0 byte.
indirect enum Thrift {
    case i32(Int32), i64(Int64), binary([UInt8]), list(Kind, [Thrift]), structure([Int16: Thrift])

    enum Kind: UInt8 { case i32 = 5, i64 = 6, binary = 8, list = 9, structure = 12 }

    var kind: Kind {
        switch self {
        case .i32: return .i32
        case .i64: return .i64
        case .binary: return .binary
        case .list: return .list
        case .structure: return .structure
        }
    }

    func encoded() -> [UInt8] { var out: [UInt8] = []; encode(into: &out); return out }

    func encode(into out: inout [UInt8]) {
        switch self {
        case .i32(let v): Thrift.varint(UInt64(UInt32(bitPattern: (v << 1) ^ (v >> 31))), into: &out)
        case .i64(let v): Thrift.varint(UInt64(bitPattern: (v << 1) ^ (v >> 63)), into: &out)
        case .binary(let b): Thrift.varint(UInt64(b.count), into: &out); out += b
        case .list(let kind, let items):
            if items.count < 15 { out.append(UInt8(items.count) << 4 | kind.rawValue) }
            else { out.append(0xF0 | kind.rawValue); Thrift.varint(UInt64(items.count), into: &out) }
            for item in items { precondition(item.kind == kind); item.encode(into: &out) }
        case .structure(let fields):
            var last: Int16 = 0
            for (id, value) in fields.sorted(by: { $0.key < $1.key }) {
                precondition(id - last >= 1 && id - last <= 15, "field ids must rise by 1...15")
                out.append(UInt8(id - last) << 4 | value.kind.rawValue)
                value.encode(into: &out)
                last = id
            }
            out.append(0)
        }
    }

    static func varint(_ value: UInt64, into out: inout [UInt8]) {
        var v = value
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }
}
