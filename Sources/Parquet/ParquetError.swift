/// Why a parquet file could not be read. Every description is one line that names the file, where
/// in it the problem is (footer, row group, column, page) and what is wrong.
import Formats

public enum ParquetError: Error, CustomStringConvertible, Sendable {
    /// The file could not be opened or mapped (missing, unreadable, a directory...).
    case cannotOpen(file: String, reason: String)
    /// The bytes are not a parquet file, or its structure is damaged: `location` says where
    /// ("footer", "row group 2, column 'text', page at byte 4096"), `problem` what is wrong.
    case corrupt(file: String, location: String, problem: String)
    /// A valid parquet feature this reader does not implement (a codec, an encoding, nesting).
    case unsupported(file: String, location: String, feature: String)
    /// No leaf column has this name; `available` lists the ones that exist.
    case noSuchColumn(file: String, column: String, available: [String])
    /// The column exists but does not hold byte arrays (strings).
    case notAStringColumn(file: String, column: String, physicalType: String)
    /// `rowGroup` is outside `0..<count`.
    case rowGroupOutOfRange(file: String, rowGroup: Int, count: Int)

    /// One line: names from the file are escaped (control characters as `\u{..}`; invalid UTF-8
    /// was already escaped as `\xNN` when the schema was read).
    public var description: String { oneLine(message) }

    private var message: String {
        switch self {
        case let .cannotOpen(file, reason):
            return "\(file): cannot open parquet file: \(reason)"
        case let .corrupt(file, location, problem):
            return "\(file): corrupt parquet file: \(location): \(problem)"
        case let .unsupported(file, location, feature):
            return "\(file): \(location): unsupported parquet feature: \(feature)"
        case let .noSuchColumn(file, column, available):
            let names = available.map { "'\($0)'" }.joined(separator: ", ")
            return "\(file): no column named '\(column)' (columns: \(names))"
        case let .notAStringColumn(file, column, physicalType):
            return "\(file): column '\(column)' holds \(physicalType) values, not BYTE_ARRAY strings"
        case let .rowGroupOutOfRange(file, rowGroup, count):
            return "\(file): row group \(rowGroup) does not exist (the file has \(count) row groups)"
        }
    }
}
