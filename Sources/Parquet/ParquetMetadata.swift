// Parquet's footer (FileMetaData) as far as a flat column reader needs it, decoded from the thrift
// compact protocol. Field ids and enum values are those of parquet-format's parquet.thrift;
// fields not listed here are skipped.

/// Physical storage type of a column (parquet.thrift `Type`).
struct ParquetPhysicalType: RawRepresentable, Equatable, CustomStringConvertible {
    var rawValue: Int32
    static let boolean = Self(rawValue: 0), int32 = Self(rawValue: 1), int64 = Self(rawValue: 2)
    static let int96 = Self(rawValue: 3), float = Self(rawValue: 4), double = Self(rawValue: 5)
    static let byteArray = Self(rawValue: 6), fixedLenByteArray = Self(rawValue: 7)

    var description: String {
        let names = ["BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"]
        return names.indices.contains(Int(rawValue)) ? names[Int(rawValue)] : "type \(rawValue)"
    }
}

/// Page compression (parquet.thrift `CompressionCodec`).
struct ParquetCodec: RawRepresentable, Equatable, CustomStringConvertible {
    var rawValue: Int32
    static let uncompressed = Self(rawValue: 0), snappy = Self(rawValue: 1), gzip = Self(rawValue: 2)
    static let zstd = Self(rawValue: 6)

    var description: String {
        let names = ["UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"]
        return names.indices.contains(Int(rawValue)) ? names[Int(rawValue)] : "codec \(rawValue)"
    }
}

/// Value or level encoding (parquet.thrift `Encoding`).
struct ParquetEncoding: RawRepresentable, Equatable, CustomStringConvertible {
    var rawValue: Int32
    static let plain = Self(rawValue: 0), plainDictionary = Self(rawValue: 2), rle = Self(rawValue: 3)
    static let bitPacked = Self(rawValue: 4), rleDictionary = Self(rawValue: 8)

    var description: String {
        let names = ["PLAIN", "GROUP_VAR_INT", "PLAIN_DICTIONARY", "RLE", "BIT_PACKED", "DELTA_BINARY_PACKED",
                     "DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY", "RLE_DICTIONARY", "BYTE_STREAM_SPLIT"]
        return names.indices.contains(Int(rawValue)) ? names[Int(rawValue)] : "encoding \(rawValue)"
    }
}

/// REQUIRED (0), OPTIONAL (1) or REPEATED (2) (parquet.thrift `FieldRepetitionType`).
enum ParquetRepetition: Int32 {
    case required = 0, optional = 1, repeated = 2
}

/// One node of the schema, which parquet stores flattened depth-first (`SchemaElement`).
struct ParquetSchemaElement {
    var name = ""
    var type: ParquetPhysicalType?      // nil for groups
    var repetition: ParquetRepetition?  // nil only for the root
    var numChildren = 0

    init(from reader: inout ThriftCompactReader) throws {
        var sawName = false
        try reader.readStruct { r, field in
            switch field.id {
            case 1:
                try r.expect(field, .i32, in: "SchemaElement")
                type = ParquetPhysicalType(rawValue: try r.readI32())
            case 3:
                try r.expect(field, .i32, in: "SchemaElement")
                let raw = try r.readI32()
                guard let rep = ParquetRepetition(rawValue: raw) else {
                    throw r.error("unknown repetition type \(raw)")
                }
                repetition = rep
            case 4:
                try r.expect(field, .binary, in: "SchemaElement")
                name = try r.readString()
                sawName = true
            case 5:
                try r.expect(field, .i32, in: "SchemaElement")
                numChildren = Int(try r.readI32())
                guard numChildren >= 0 else { throw r.error("negative num_children \(numChildren)") }
            default:
                try r.skip(field.type)
            }
        }
        guard sawName else { throw reader.error("SchemaElement without a name") }
    }
}

/// Where one column's pages of one row group live and how they are stored
/// (`ColumnChunk` with its `ColumnMetaData` flattened in).
struct ParquetColumnChunk {
    var filePath: String?            // set when the chunk lives in another file (unsupported)
    var type = ParquetPhysicalType(rawValue: -1)
    var encodings: [ParquetEncoding] = []
    var path: [String] = []
    var codec = ParquetCodec(rawValue: -1)
    var numValues: Int64 = 0
    var totalUncompressedSize: Int64 = 0
    var totalCompressedSize: Int64 = 0
    var dataPageOffset: Int64 = -1
    var dictionaryPageOffset: Int64?

    /// Offset of the chunk's first page: the dictionary page if there is one, else the first data page.
    var startOffset: Int64 {
        if let dictionary = dictionaryPageOffset, dictionary > 0, dictionary < dataPageOffset { return dictionary }
        return dataPageOffset
    }

    init(from reader: inout ThriftCompactReader) throws {
        var sawMetadata = false
        try reader.readStruct { r, field in
            switch field.id {
            case 1:
                try r.expect(field, .binary, in: "ColumnChunk")
                filePath = try r.readString()
            case 3:
                try r.expect(field, .structure, in: "ColumnChunk")
                try readMetadata(&r)
                sawMetadata = true
            default:
                try r.skip(field.type)
            }
        }
        guard sawMetadata else { throw reader.error("ColumnChunk without meta_data") }
    }

    private mutating func readMetadata(_ reader: inout ThriftCompactReader) throws {
        let name = "ColumnMetaData"
        try reader.readStruct { r, field in
            switch field.id {
            case 1:
                try r.expect(field, .i32, in: name)
                type = ParquetPhysicalType(rawValue: try r.readI32())
            case 2:
                try r.expect(field, .list, in: name)
                encodings = try r.readListElements { r, _ in ParquetEncoding(rawValue: try r.readI32()) }
            case 3:
                try r.expect(field, .list, in: name)
                path = try r.readListElements { r, elementType in
                    guard elementType == .binary else { throw r.error("path_in_schema holds \(elementType)") }
                    return try r.readString()
                }
            case 4:
                try r.expect(field, .i32, in: name)
                codec = ParquetCodec(rawValue: try r.readI32())
            case 5:
                try r.expect(field, .i64, in: name)
                numValues = try r.readI64()
            case 6:
                try r.expect(field, .i64, in: name)
                totalUncompressedSize = try r.readI64()
            case 7:
                try r.expect(field, .i64, in: name)
                totalCompressedSize = try r.readI64()
            case 9:
                try r.expect(field, .i64, in: name)
                dataPageOffset = try r.readI64()
            case 11:
                try r.expect(field, .i64, in: name)
                dictionaryPageOffset = try r.readI64()
            default:
                try r.skip(field.type)
            }
        }
    }
}

/// One horizontal slice of the table: a chunk per column (`RowGroup`).
struct ParquetRowGroup {
    var columns: [ParquetColumnChunk] = []
    var numRows: Int64 = 0

    init(from reader: inout ThriftCompactReader) throws {
        try reader.readStruct { r, field in
            switch field.id {
            case 1:
                try r.expect(field, .list, in: "RowGroup")
                columns = try r.readListElements { r, elementType in
                    guard elementType == .structure else { throw r.error("RowGroup.columns holds \(elementType)") }
                    return try ParquetColumnChunk(from: &r)
                }
            case 3:
                try r.expect(field, .i64, in: "RowGroup")
                numRows = try r.readI64()
                guard numRows >= 0 else { throw r.error("negative num_rows \(numRows)") }
            default:
                try r.skip(field.type)
            }
        }
    }
}

/// The footer: schema, row count and row groups (`FileMetaData`).
struct ParquetFileMetadata {
    var schema: [ParquetSchemaElement] = []
    var numRows: Int64 = 0
    var rowGroups: [ParquetRowGroup] = []
    var createdBy: String?

    init(from reader: inout ThriftCompactReader) throws {
        try reader.readStruct { r, field in
            switch field.id {
            case 2:
                try r.expect(field, .list, in: "FileMetaData")
                schema = try r.readListElements { r, elementType in
                    guard elementType == .structure else { throw r.error("FileMetaData.schema holds \(elementType)") }
                    return try ParquetSchemaElement(from: &r)
                }
            case 3:
                try r.expect(field, .i64, in: "FileMetaData")
                numRows = try r.readI64()
                guard numRows >= 0 else { throw r.error("negative num_rows \(numRows)") }
            case 4:
                try r.expect(field, .list, in: "FileMetaData")
                rowGroups = try r.readListElements { r, elementType in
                    guard elementType == .structure else { throw r.error("FileMetaData.row_groups holds \(elementType)") }
                    return try ParquetRowGroup(from: &r)
                }
            case 6:
                try r.expect(field, .binary, in: "FileMetaData")
                createdBy = try r.readString()
            default:
                try r.skip(field.type)
            }
        }
        guard !schema.isEmpty else { throw reader.error("FileMetaData has an empty schema") }
    }
}
