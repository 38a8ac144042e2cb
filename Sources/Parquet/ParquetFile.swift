// A read-only parquet file: memory-mapped, footer decoded once, string columns read per row group.
//
// Layout (parquet-format): "PAR1" | column chunks (pages) | FileMetaData (thrift compact) |
// footer length (u32 LE) | "PAR1". Each row group holds one column chunk per leaf column; a chunk is
// an optional dictionary page followed by data pages, each page a thrift PageHeader then its body.
//
// Scope: flat (non-repeated) BYTE_ARRAY columns, which is what nanochat's shards are (one
// optional `text` column, zstd, PLAIN). See ParquetColumnReader for the pages and encodings.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One leaf column of the schema with the levels its values can have.
struct ParquetLeafColumn {
    var path: [String]
    var type: ParquetPhysicalType
    /// Number of optional or repeated fields on the path (0 for a required top-level column).
    var maxDefinitionLevel: Int
    /// Number of repeated fields on the path (0 for a flat column).
    var maxRepetitionLevel: Int

    var name: String { path.joined(separator: ".") }
}

/// A parquet file opened for reading string columns.
///
/// ```swift
/// let file = try ParquetFile(path: "base_data_climbmix/shard_00000.parquet")
/// for group in 0..<file.rowGroupCount {
///     let texts = try file.strings(column: "text", rowGroup: group)  // [String?], nil = null
/// }
/// ```
/// The file is memory-mapped for the object's lifetime. Reading is thread-safe: the object is
/// immutable after opening, so several threads may read different row groups at once.
public final class ParquetFile: @unchecked Sendable {
    /// The path the file was opened with, or the name given to in-memory bytes (for error messages).
    public let path: String
    /// The writer's identification from the footer, e.g. "parquet-cpp-arrow version 26.0.1".
    public let createdBy: String?

    let bytes: UnsafeRawBufferPointer
    let metadata: ParquetFileMetadata
    let leaves: [ParquetLeafColumn]
    /// End of the column data (start of the footer): every page must lie before it.
    let dataEnd: Int

    /// Opens and maps `path`, checks the magic numbers and decodes the footer.
    /// - Throws: `ParquetError.cannotOpen` if the file cannot be read, `.corrupt` if it is not a
    ///   valid parquet file (magic, footer, schema or row-group counts).
    public convenience init(path: String) throws {
        try self.init(name: path, buffer: try Self.map(path), ownership: .mapped)
    }

    /// Reads a parquet file held in memory (the bytes are copied); `name` appears in error messages.
    public convenience init(bytes: [UInt8], name: String) throws {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
        copy.copyBytes(from: bytes)
        try self.init(name: name, buffer: UnsafeRawBufferPointer(copy), ownership: .allocated)
    }

    /// How `bytes` was obtained, hence how to release it.
    private enum Ownership { case mapped, allocated }
    private let ownership: Ownership

    private init(name: String, buffer: UnsafeRawBufferPointer, ownership: Ownership) throws {
        let footer: (metadata: ParquetFileMetadata, leaves: [ParquetLeafColumn], dataEnd: Int)
        do {
            footer = try Self.readFooter(buffer, file: name)
        } catch {
            Self.release(buffer, ownership)
            throw error
        }
        // Nothing below throws, so deinit is the one place that releases the bytes.
        self.path = name
        self.ownership = ownership
        bytes = buffer
        metadata = footer.metadata
        leaves = footer.leaves
        dataEnd = footer.dataEnd
        createdBy = footer.metadata.createdBy
    }

    deinit {
        Self.release(bytes, ownership)
    }

    private static func release(_ buffer: UnsafeRawBufferPointer, _ ownership: Ownership) {
        switch ownership {
        case .mapped: if buffer.count > 0 { munmap(UnsafeMutableRawPointer(mutating: buffer.baseAddress), buffer.count) }
        case .allocated: buffer.deallocate()
        }
    }

    // MARK: - Table shape

    /// Number of row groups.
    public var rowGroupCount: Int { metadata.rowGroups.count }

    /// Rows in the whole file, as the footer states.
    public var rowCount: Int { Int(metadata.numRows) }

    /// Rows in one row group.
    public func rowCount(rowGroup: Int) throws -> Int {
        try checkRowGroup(rowGroup)
        return Int(metadata.rowGroups[rowGroup].numRows)
    }

    /// Leaf column names; nested fields are joined with "." (e.g. "meta.url").
    public var columnNames: [String] { leaves.map(\.name) }

    // MARK: - Reading strings

    /// Reads one BYTE_ARRAY column of one row group as strings (UTF-8; invalid sequences become
    /// U+FFFD). Nulls of an optional column are `nil`.
    /// - Parameter column: a leaf column's full dotted name, or its last component if unique.
    /// - Throws: `ParquetError` naming the file, row group, column and page on any problem.
    public func strings(column: String, rowGroup: Int) throws -> [String?] {
        try checkRowGroup(rowGroup)
        let leafIndex = try findColumn(column)
        let reader = ParquetColumnReader(file: self, rowGroup: rowGroup, leafIndex: leafIndex)
        return try reader.readStrings()
    }

    /// Reads one string column across all row groups, in file order.
    public func strings(column: String) throws -> [String?] {
        var all: [String?] = []
        for group in 0..<rowGroupCount { all += try strings(column: column, rowGroup: group) }
        return all
    }

    // MARK: - Helpers

    private func checkRowGroup(_ rowGroup: Int) throws {
        guard metadata.rowGroups.indices.contains(rowGroup) else {
            throw ParquetError.rowGroupOutOfRange(file: path, rowGroup: rowGroup, count: rowGroupCount)
        }
    }

    private func findColumn(_ name: String) throws -> Int {
        if let exact = leaves.firstIndex(where: { $0.name == name }) { return exact }
        let byLeafName = leaves.indices.filter { leaves[$0].path.last == name }
        if byLeafName.count == 1 { return byLeafName[0] }
        throw ParquetError.noSuchColumn(file: path, column: name, available: columnNames)
    }

    /// Checks the magic numbers and footer length, decodes FileMetaData and the schema's leaves.
    private static func readFooter(_ mapping: UnsafeRawBufferPointer, file path: String) throws
        -> (metadata: ParquetFileMetadata, leaves: [ParquetLeafColumn], dataEnd: Int) {
        let size = mapping.count
        func corrupt(_ problem: String) -> ParquetError {
            .corrupt(file: path, location: "footer", problem: problem)
        }
        let magic: [UInt8] = Array("PAR1".utf8)
        guard size >= 12 else { throw corrupt("file is \(size) bytes, smaller than the 12 bytes of magic and footer length") }
        guard Array(mapping[0..<4]) == magic else { throw corrupt("file does not start with the magic \"PAR1\"") }
        guard Array(mapping[(size - 4)..<size]) == magic else {
            throw corrupt("file does not end with the magic \"PAR1\" (truncated, or still being written?)")
        }
        // Footer length: u32 little-endian just before the trailing magic.
        var footerLength = 0
        for i in 0..<4 { footerLength |= Int(mapping[size - 8 + i]) << (8 * i) }
        guard footerLength <= size - 12 else {
            throw corrupt("footer length \(footerLength) is larger than the \(size - 12) bytes available")
        }
        let dataEnd = size - 8 - footerLength
        var reader = ThriftCompactReader(UnsafeRawBufferPointer(rebasing: mapping[dataEnd..<(size - 8)]))
        let metadata: ParquetFileMetadata
        do {
            metadata = try ParquetFileMetadata(from: &reader)
        } catch let error as ThriftError {
            throw corrupt("FileMetaData at byte \(dataEnd): \(error)")
        }
        let leaves = try leafColumns(metadata.schema, file: path)
        var rows: Int64 = 0
        for (index, group) in metadata.rowGroups.enumerated() {
            guard group.columns.count == leaves.count else {
                throw ParquetError.corrupt(file: path, location: "row group \(index)",
                    problem: "has \(group.columns.count) column chunks, the schema has \(leaves.count) columns")
            }
            rows = rows.addingReportingOverflow(group.numRows).partialValue
        }
        guard rows == metadata.numRows else {
            throw corrupt("the row groups hold \(rows) rows, FileMetaData says \(metadata.numRows)")
        }
        return (metadata, leaves, dataEnd)
    }

    /// Maps the whole file read-only. An empty file maps to an empty buffer.
    private static func map(_ path: String) throws -> UnsafeRawBufferPointer {
        func failure(_ what: String) -> ParquetError {
            .cannotOpen(file: path, reason: "\(what): \(String(cString: strerror(errno)))")
        }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw failure("open failed") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure("fstat failed") }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw ParquetError.cannotOpen(file: path, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        guard size > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0),
              base != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw failure("mmap of \(size) bytes failed")
        }
        return UnsafeRawBufferPointer(start: base, count: size)
    }

    /// Walks the depth-first flattened schema (each group followed by its `numChildren` children)
    /// and returns the leaves with their maximum definition and repetition levels.
    private static func leafColumns(_ schema: [ParquetSchemaElement], file: String) throws -> [ParquetLeafColumn] {
        func corrupt(_ problem: String) -> ParquetError {
            .corrupt(file: file, location: "footer schema", problem: problem)
        }
        struct Frame { var remaining: Int; var path: [String]; var definition: Int; var repetition: Int }
        var leaves: [ParquetLeafColumn] = []
        var stack = [Frame(remaining: schema[0].numChildren, path: [], definition: 0, repetition: 0)]
        var next = 1
        while let top = stack.last {
            if top.remaining == 0 { stack.removeLast(); continue }
            stack[stack.count - 1].remaining -= 1
            guard next < schema.count else {
                throw corrupt("groups declare more children than the \(schema.count) schema elements")
            }
            let element = schema[next]
            next += 1
            guard let repetition = element.repetition else {
                throw corrupt("element '\(element.name)' has no repetition type")
            }
            let definition = top.definition + (repetition == .required ? 0 : 1)
            let repeats = top.repetition + (repetition == .repeated ? 1 : 0)
            let path = top.path + [element.name]
            if element.numChildren > 0 {
                guard stack.count < 64 else { throw corrupt("schema nests deeper than 64 levels") }
                stack.append(Frame(remaining: element.numChildren, path: path, definition: definition, repetition: repeats))
            } else {
                guard let type = element.type else { throw corrupt("leaf '\(element.name)' has no physical type") }
                leaves.append(ParquetLeafColumn(path: path, type: type, maxDefinitionLevel: definition,
                                                maxRepetitionLevel: repeats))
            }
        }
        guard next == schema.count else {
            throw corrupt("\(schema.count - next) schema elements are not reachable from the root")
        }
        return leaves
    }
}
