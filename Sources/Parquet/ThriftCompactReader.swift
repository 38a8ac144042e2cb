// Thrift compact protocol: the read half, only what parquet's footer and page headers need.
//
// Wire format (Apache Thrift, "compact protocol" spec):
//   struct   = field* STOP(0x00)
//   field    = header byte `dddd tttt`: delta to the previous field id (1...15) and the type;
//              delta 0 means the id follows as a zigzag varint i16. Booleans carry their value in
//              the type nibble (1 = true, 2 = false) and have no payload.
//   i8       = one byte; i16/i32/i64 = zigzag ULEB128 varint; double = 8 bytes little-endian
//   binary   = ULEB128 length, then the bytes (strings are UTF-8 binaries)
//   list/set = header byte `ssss tttt` (size, element type; size 15 means a varint size follows),
//              then the elements (booleans as one byte each)
//   map      = varint size, then (if size > 0) one byte `kkkk vvvv` of key/value types, then pairs
// Every length is checked against the bytes that remain, so a corrupt footer is an error, never a
// crash or an allocation larger than the input.

/// A wire type of the compact protocol (the low nibble of a field or collection header).
import Formats

enum ThriftType: UInt8, CustomStringConvertible {
    case stop = 0, boolTrue = 1, boolFalse = 2, i8 = 3, i16 = 4, i32 = 5, i64 = 6, double = 7
    case binary = 8, list = 9, set = 10, map = 11, structure = 12, uuid = 13

    var description: String {
        switch self {
        case .stop: "stop"
        case .boolTrue, .boolFalse: "bool"
        case .i8: "i8"
        case .i16: "i16"
        case .i32: "i32"
        case .i64: "i64"
        case .double: "double"
        case .binary: "binary"
        case .list: "list"
        case .set: "set"
        case .map: "map"
        case .structure: "struct"
        case .uuid: "uuid"
        }
    }
}

/// A malformed thrift message: what was wrong and the byte offset (from the start of the message)
/// where it was found. Parquet wraps it into a `ParquetError` that names the file and structure.
struct ThriftError: Error, CustomStringConvertible {
    var offset: Int
    var problem: String
    var description: String { "thrift compact protocol, byte \(offset): \(problem)" }
}

/// One field header inside a struct: its id and wire type.
struct ThriftField {
    var id: Int16
    var type: ThriftType
}

/// Reads compact-protocol values from a byte buffer, front to back.
///
/// The buffer must outlive the reader (it is usually a slice of a memory-mapped file).
struct ThriftCompactReader {
    let bytes: UnsafeRawBufferPointer
    /// Offset of the next unread byte; after reading a whole message, its encoded length.
    private(set) var position = 0
    private var depth = 0
    /// Structs and collections nest at most this deep (parquet's go 4 deep); stops stack overflows.
    static let maxDepth = 64

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    var remaining: Int { bytes.count - position }

    func error(_ problem: String) -> ThriftError {
        ThriftError(offset: position, problem: problem)
    }

    // MARK: - Scalars

    mutating func readByte() throws -> UInt8 {
        guard position < bytes.count else {
            throw error("message ends early (needed 1 more byte of \(bytes.count))")
        }
        defer { position += 1 }
        return bytes[position]
    }

    /// ULEB128: 7 bits per byte, low groups first, high bit set on all but the last byte.
    mutating func readVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try readByte()
            if shift == 63 && byte > 1 { throw error("varint overflows 64 bits") }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw error("varint longer than 10 bytes") }
        }
    }

    /// Zigzag: 0, -1, 1, -2, ... are encoded as 0, 1, 2, 3, ...
    mutating func readZigzag() throws -> Int64 {
        let raw = try readVarint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    mutating func readI64() throws -> Int64 { try readZigzag() }

    mutating func readI32() throws -> Int32 {
        let value = try readZigzag()
        guard let narrow = Int32(exactly: value) else { throw error("i32 value \(value) out of range") }
        return narrow
    }

    mutating func readI16() throws -> Int16 {
        let value = try readZigzag()
        guard let narrow = Int16(exactly: value) else { throw error("i16 value \(value) out of range") }
        return narrow
    }

    mutating func readDouble() throws -> Double {
        var bits: UInt64 = 0
        for i in 0..<8 { bits |= UInt64(try readByte()) << (8 * UInt64(i)) }
        return Double(bitPattern: bits)
    }

    /// A length-prefixed byte string, returned as a view into the buffer (no copy).
    mutating func readBinary() throws -> UnsafeRawBufferPointer {
        let length = try readVarint()
        guard length <= UInt64(remaining) else {
            throw error("binary of \(length) bytes runs past the end (\(remaining) bytes left)")
        }
        let start = position
        position += Int(length)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<position])
    }

    /// A binary decoded as UTF-8, invalid sequences escaped byte by byte as `\xNN`: names read
    /// from a file appear in error messages, where raw bytes must not.
    mutating func readString() throws -> String {
        escapedUTF8(try readBinary())
    }

    // MARK: - Structs and collections

    /// Reads one struct: calls `body` for every field until STOP, with the field's id and type.
    /// `body` must consume the field's value (read it, or `skip(field.type)`).
    mutating func readStruct(_ body: (inout ThriftCompactReader, ThriftField) throws -> Void) throws {
        try enter()
        defer { depth -= 1 }
        var lastID: Int16 = 0
        while true {
            let header = try readByte()
            if header == 0 { return }
            guard let type = ThriftType(rawValue: header & 0x0f), type != .stop else {
                throw error("unknown field type \(header & 0x0f)")
            }
            let delta = Int16(header >> 4)
            let id = delta == 0 ? try readI16() : lastID &+ delta
            lastID = id
            try body(&self, ThriftField(id: id, type: type))
        }
    }

    /// Reads a list (or set) header and calls `body` once per element with the element type.
    mutating func readList(_ body: (inout ThriftCompactReader, ThriftType) throws -> Void) throws {
        try enter()
        defer { depth -= 1 }
        let header = try readByte()
        guard let type = ThriftType(rawValue: header & 0x0f) else {
            throw error("unknown list element type \(header & 0x0f)")
        }
        let count = header >> 4 == 15 ? try readVarint() : UInt64(header >> 4)
        // Every element takes at least one byte, so a longer list cannot fit in what remains.
        guard count <= UInt64(remaining) else {
            throw error("list of \(count) elements cannot fit in the \(remaining) bytes left")
        }
        for _ in 0..<Int(count) { try body(&self, type) }
    }

    /// Reads a list of `T`, one `element` call each (the element type is checked by the caller).
    mutating func readListElements<T>(_ element: (inout ThriftCompactReader, ThriftType) throws -> T) throws -> [T] {
        var out: [T] = []
        try readList { reader, type in out.append(try element(&reader, type)) }
        return out
    }

    /// Skips one value of wire type `type` (used for fields a reader does not need).
    mutating func skip(_ type: ThriftType) throws {
        switch type {
        case .stop: throw error("stop is not a value")
        case .boolTrue, .boolFalse: return  // value lives in the field header
        case .i8: _ = try readByte()
        case .i16, .i32, .i64: _ = try readVarint()
        case .double: try advance(8)
        case .binary: _ = try readBinary()
        case .uuid: try advance(16)
        case .structure: try readStruct { reader, field in try reader.skip(field.type) }
        case .list, .set:
            try readList { reader, elementType in
                // Booleans inside collections take one byte each.
                if elementType == .boolTrue || elementType == .boolFalse {
                    _ = try reader.readByte()
                } else {
                    try reader.skip(elementType)
                }
            }
        case .map:
            try enter()
            defer { depth -= 1 }
            let count = try readVarint()
            if count == 0 { return }
            let types = try readByte()
            guard let key = ThriftType(rawValue: types >> 4), let value = ThriftType(rawValue: types & 0x0f) else {
                throw error("unknown map key/value types \(types)")
            }
            guard count <= UInt64(remaining) else {
                throw error("map of \(count) entries cannot fit in the \(remaining) bytes left")
            }
            for _ in 0..<Int(count) {
                try skipElement(key)
                try skipElement(value)
            }
        }
    }

    private mutating func skipElement(_ type: ThriftType) throws {
        if type == .boolTrue || type == .boolFalse { _ = try readByte() } else { try skip(type) }
    }

    private mutating func advance(_ count: Int) throws {
        guard count <= remaining else { throw error("value of \(count) bytes runs past the end") }
        position += count
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth)") }
    }

    // MARK: - Typed field access

    /// Checks that `field` has wire type `expected` (any bool type matches `.boolTrue`).
    func expect(_ field: ThriftField, _ expected: ThriftType, in structName: String) throws {
        let matches = expected == .boolTrue
            ? (field.type == .boolTrue || field.type == .boolFalse)
            : field.type == expected
        guard matches else {
            throw error("field \(field.id) of \(structName) has type \(field.type), expected \(expected)")
        }
    }
}
