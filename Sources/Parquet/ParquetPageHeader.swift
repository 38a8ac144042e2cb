// The thrift header in front of every parquet page (parquet.thrift `PageHeader` with its
// DataPageHeader, DictionaryPageHeader and DataPageHeaderV2 flattened in).

/// DATA_PAGE (0), INDEX_PAGE (1), DICTIONARY_PAGE (2) or DATA_PAGE_V2 (3).
struct ParquetPageType: RawRepresentable, Equatable, CustomStringConvertible {
    var rawValue: Int32
    static let dataPage = Self(rawValue: 0), indexPage = Self(rawValue: 1)
    static let dictionaryPage = Self(rawValue: 2), dataPageV2 = Self(rawValue: 3)

    var description: String {
        let names = ["DATA_PAGE", "INDEX_PAGE", "DICTIONARY_PAGE", "DATA_PAGE_V2"]
        return names.indices.contains(Int(rawValue)) ? names[Int(rawValue)] : "page type \(rawValue)"
    }
}

struct ParquetPageHeader {
    var type = ParquetPageType(rawValue: -1)
    /// Size of the page body after decompression (for v2: levels + decompressed values).
    var uncompressedSize = 0
    /// Size of the page body as stored in the file, right after this header.
    var compressedSize = 0

    // Data page v1/v2 and dictionary page: number of values (including nulls) and their encoding.
    var numValues = 0
    var encoding = ParquetEncoding(rawValue: -1)
    // Data page v1: encodings of the definition and repetition levels.
    var definitionLevelEncoding = ParquetEncoding.rle
    var repetitionLevelEncoding = ParquetEncoding.rle
    // Data page v2: levels are stored uncompressed in front of the values, with these byte lengths.
    var numNulls = 0
    var definitionLevelsByteLength = 0
    var repetitionLevelsByteLength = 0
    var isCompressed = true

    init(from reader: inout ThriftCompactReader) throws {
        var sawType = false, sawSizes = 0
        try reader.readStruct { r, field in
            switch field.id {
            case 1:
                try r.expect(field, .i32, in: "PageHeader")
                type = ParquetPageType(rawValue: try r.readI32())
                sawType = true
            case 2:
                try r.expect(field, .i32, in: "PageHeader")
                uncompressedSize = Int(try r.readI32())
                sawSizes += 1
            case 3:
                try r.expect(field, .i32, in: "PageHeader")
                compressedSize = Int(try r.readI32())
                sawSizes += 1
            case 5:
                try r.expect(field, .structure, in: "PageHeader")
                try readDataPageHeader(&r)
            case 7:
                try r.expect(field, .structure, in: "PageHeader")
                try readDictionaryPageHeader(&r)
            case 8:
                try r.expect(field, .structure, in: "PageHeader")
                try readDataPageHeaderV2(&r)
            default:
                try r.skip(field.type)
            }
        }
        guard sawType, sawSizes == 2 else { throw reader.error("PageHeader without type or sizes") }
        guard uncompressedSize >= 0, compressedSize >= 0 else {
            throw reader.error("negative page size (compressed \(compressedSize), uncompressed \(uncompressedSize))")
        }
    }

    private mutating func readDataPageHeader(_ reader: inout ThriftCompactReader) throws {
        let name = "DataPageHeader"
        try reader.readStruct { r, field in
            switch field.id {
            case 1: try r.expect(field, .i32, in: name); numValues = Int(try r.readI32())
            case 2: try r.expect(field, .i32, in: name); encoding = ParquetEncoding(rawValue: try r.readI32())
            case 3: try r.expect(field, .i32, in: name); definitionLevelEncoding = ParquetEncoding(rawValue: try r.readI32())
            case 4: try r.expect(field, .i32, in: name); repetitionLevelEncoding = ParquetEncoding(rawValue: try r.readI32())
            default: try r.skip(field.type)
            }
        }
        guard numValues >= 0 else { throw reader.error("negative num_values \(numValues) in \(name)") }
    }

    private mutating func readDictionaryPageHeader(_ reader: inout ThriftCompactReader) throws {
        let name = "DictionaryPageHeader"
        try reader.readStruct { r, field in
            switch field.id {
            case 1: try r.expect(field, .i32, in: name); numValues = Int(try r.readI32())
            case 2: try r.expect(field, .i32, in: name); encoding = ParquetEncoding(rawValue: try r.readI32())
            default: try r.skip(field.type)
            }
        }
        guard numValues >= 0 else { throw reader.error("negative num_values \(numValues) in \(name)") }
    }

    private mutating func readDataPageHeaderV2(_ reader: inout ThriftCompactReader) throws {
        let name = "DataPageHeaderV2"
        try reader.readStruct { r, field in
            switch field.id {
            case 1: try r.expect(field, .i32, in: name); numValues = Int(try r.readI32())
            case 2: try r.expect(field, .i32, in: name); numNulls = Int(try r.readI32())
            case 4: try r.expect(field, .i32, in: name); encoding = ParquetEncoding(rawValue: try r.readI32())
            case 5: try r.expect(field, .i32, in: name); definitionLevelsByteLength = Int(try r.readI32())
            case 6: try r.expect(field, .i32, in: name); repetitionLevelsByteLength = Int(try r.readI32())
            case 7: try r.expect(field, .boolTrue, in: name); isCompressed = field.type == .boolTrue
            default: try r.skip(field.type)
            }
        }
        guard numValues >= 0, numNulls >= 0, numNulls <= numValues,
              definitionLevelsByteLength >= 0, repetitionLevelsByteLength >= 0 else {
            throw reader.error("inconsistent \(name): \(numValues) values, \(numNulls) nulls, level lengths "
                + "\(definitionLevelsByteLength)/\(repetitionLevelsByteLength)")
        }
    }
}
