// safetensors (huggingface/safetensors): an 8-byte little-endian u64 header length N, N bytes of JSON
// header {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then
// the data region; offsets are relative to the start of the data region (byte 8 + N).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// A safetensors file, mapped and validated when opened; tensors are converted on request.
public struct SafetensorsFile: Sendable {
    /// One tensor's header entry, with offsets already made absolute and checked against the file.
    public struct Entry: Sendable, Equatable {
        public let dtype: ElementType
        public let shape: [Int]
        /// Absolute byte range of the data in the file.
        public let byteRange: Range<Int>
    }

    /// Headers larger than this are refused (the reference implementation's limit).
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    public let metadata: [String: String]
    public let entries: [String: Entry]
    private let file: MappedFile

    /// Maps and validates `path`; throws a `FormatError` naming the file and the problem.
    public init(path: String) throws {
        try self.init(mapped: try MappedFile(path: path))
    }

    /// Validates an already mapped file.
    public init(mapped file: MappedFile) throws {
        let path = file.path
        self.path = path
        self.file = file
        (metadata, entries) = try SafetensorsFile.parse(file.bytes, path: path)
    }

    /// Tensor names, sorted.
    public var names: [String] { entries.keys.sorted() }

    public func entry(_ name: String) throws -> Entry {
        guard let e = entries[name] else { throw FormatError.missing(file: path, name: name) }
        return e
    }

    public func shape(_ name: String) throws -> [Int] { try entry(name).shape }

    /// The dtype as written in the header: "F32", "I64", ...
    public func dtype(_ name: String) throws -> String { try entry(name).dtype.rawValue }

    /// The raw little-endian bytes of a tensor (a slice of the mapping, valid while `self` lives).
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let e = try entry(name)
        return try withExtendedLifetime(file) {
            try body(UnsafeRawBufferPointer(rebasing: file.bytes[e.byteRange]))
        }
    }

    /// A floating tensor (F32, BF16, F16, F64) as Float32.
    public func tensor(_ name: String) throws -> Tensor {
        let e = try entry(name)
        guard e.dtype.isFloatingPoint else {
            throw FormatError.unsupported(file: path, what: "tensor \(name) has dtype \(e.dtype.rawValue); read it with int64s(_:)")
        }
        let count = e.shape.reduce(1, *)
        let values = try withRawBytes(name) { e.dtype.floats($0, count: count) }
        return Tensor(shape: e.shape, storage: values)
    }

    /// An integer tensor (I64, I32, I16, I8, U8, BOOL) widened to Int64, in row-major order.
    public func int64s(_ name: String) throws -> [Int64] {
        let e = try entry(name)
        guard !e.dtype.isFloatingPoint else {
            throw FormatError.unsupported(file: path, what: "tensor \(name) has dtype \(e.dtype.rawValue); read it with tensor(_:)")
        }
        let count = e.shape.reduce(1, *)
        return try withRawBytes(name) { e.dtype.int64s($0, count: count) }
    }

    // -----------------------------------------------------------------------------------------
    // Validation

    static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> ([String: String], [String: Entry]) {
        guard bytes.count >= 8 else {
            throw FormatError.truncated(file: path, what: "\(bytes.count) bytes, need 8 for the header length")
        }
        let n64 = bytes.le64(0)
        guard n64 <= UInt64(maxHeaderBytes) else {
            throw FormatError.invalid(file: path, detail: "header length \(n64) exceeds the limit of \(maxHeaderBytes) bytes")
        }
        let n = Int(n64)
        guard 8 + n <= bytes.count else {
            throw FormatError.truncated(file: path, what: "header length \(n) but only \(bytes.count - 8) bytes follow")
        }
        let json: HeaderJSON
        do {
            json = try HeaderJSON.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + n)]))
        } catch {
            throw FormatError.invalid(file: path, detail: "header JSON: \(error.detail)")
        }
        guard case let .object(pairs) = json else {
            throw FormatError.invalid(file: path, detail: "header is not a JSON object")
        }
        let dataStart = 8 + n
        let dataCount = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var entries: [String: Entry] = [:]
        for (name, value) in pairs {
            if name == "__metadata__" {
                guard case let .object(kv) = value else {
                    throw FormatError.invalid(file: path, detail: "__metadata__ is not an object")
                }
                for (k, v) in kv {
                    guard case let .string(s) = v else {
                        throw FormatError.invalid(file: path, detail: "__metadata__ value for \(k) is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            guard entries[name] == nil else {
                throw FormatError.invalid(file: path, detail: "tensor \(name) appears twice in the header")
            }
            entries[name] = try parseEntry(name, value, dataStart: dataStart, dataCount: dataCount, path: path)
        }
        return (metadata, entries)
    }

    static func parseEntry(_ name: String, _ value: HeaderJSON, dataStart: Int, dataCount: Int,
                           path: String) throws -> Entry {
        guard case let .object(fields) = value else {
            throw FormatError.invalid(file: path, detail: "header entry for \(name) is not an object")
        }
        var dtypeText: String?, shapeJSON: [HeaderJSON]?, offsetsJSON: [HeaderJSON]?
        for (k, v) in fields {
            switch (k, v) {
            case let ("dtype", .string(s)): dtypeText = s
            case let ("shape", .array(a)): shapeJSON = a
            case let ("data_offsets", .array(a)): offsetsJSON = a
            default: throw FormatError.invalid(file: path, detail: "tensor \(name): unexpected or malformed field \(k)")
            }
        }
        guard let dtypeText, let shapeJSON, let offsetsJSON else {
            throw FormatError.invalid(file: path, detail: "tensor \(name) lacks dtype, shape or data_offsets")
        }
        guard let dtype = ElementType(rawValue: dtypeText) else {
            throw FormatError.unsupported(file: path, what: "tensor \(name) has dtype \(dtypeText)")
        }
        var shape: [Int] = []
        var count = 1
        for d in shapeJSON {
            guard case let .int(v) = d, v >= 0 else {
                throw FormatError.invalid(file: path, detail: "tensor \(name) has a shape entry that is not a non-negative integer")
            }
            guard let c = checkedMul(count, v) else {
                throw FormatError.invalid(file: path, detail: "tensor \(name): element count overflows")
            }
            shape.append(v); count = c
        }
        guard offsetsJSON.count == 2, case let .int(begin) = offsetsJSON[0], case let .int(end) = offsetsJSON[1] else {
            throw FormatError.invalid(file: path, detail: "tensor \(name): data_offsets is not [begin, end]")
        }
        guard 0 <= begin, begin <= end, end <= dataCount else {
            throw FormatError.outOfBounds(file: path, what: "tensor \(name) data_offsets [\(begin), \(end)] outside the data region of \(dataCount) bytes")
        }
        guard let bytesNeeded = checkedMul(count, dtype.size), bytesNeeded == end - begin else {
            throw FormatError.invalid(file: path, detail: "tensor \(name): shape \(shape) of \(dtype.rawValue) needs \(count) × \(dtype.size) bytes but data_offsets span \(end - begin)")
        }
        return Entry(dtype: dtype, shape: shape, byteRange: (dataStart + begin)..<(dataStart + end))
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Writes Float32 tensors as a safetensors file (dtype F32), laid out in the order given.
///
/// The header is padded with spaces to a multiple of 8 bytes and carries `__metadata__` when
/// `metadata` is non-empty. The file appears atomically: a temporary file in the same directory is
/// written, fsynced and renamed over `path`.
public func writeSafetensors(_ tensors: [(name: String, tensor: Tensor)],
                             metadata: [String: String] = [:], to path: String) throws {
    let items = tensors.map { t in
        SafetensorsItem(name: t.name, dtype: .f32, shape: t.tensor.shape, byteCount: t.tensor.count * 4) { fd in
            try t.tensor.storage.withUnsafeBytes { try writeAll(fd, $0, path: path) }
        }
    }
    try writeSafetensorsItems(items, metadata: metadata, to: path)
}

/// F32 vectors written straight from memory that is not a `Tensor` (no copy), with the same
/// layout and safety as the writer above.
public func writeSafetensors(vectors: [(name: String, values: UnsafeBufferPointer<Float>)],
                             metadata: [String: String] = [:], to path: String) throws {
    let items = vectors.map { t in
        SafetensorsItem(name: t.name, dtype: .f32, shape: [t.values.count], byteCount: t.values.count * 4) { fd in
            try writeAll(fd, UnsafeRawBufferPointer(t.values), path: path)
        }
    }
    try writeSafetensorsItems(items, metadata: metadata, to: path)
}

/// Writes Int64 tensors (dtype I64), e.g. token ids, with the same layout and safety as the F32 writer.
public func writeSafetensors(int64s tensors: [(name: String, shape: [Int], values: [Int64])],
                             metadata: [String: String] = [:], to path: String) throws {
    let items = try tensors.map { t in
        guard t.shape.allSatisfy({ $0 >= 0 }), t.shape.reduce(1, *) == t.values.count else {
            throw FormatError.invalid(file: path, detail: "tensor \(t.name): shape \(t.shape) does not match \(t.values.count) values")
        }
        return SafetensorsItem(name: t.name, dtype: .i64, shape: t.shape, byteCount: t.values.count * 8) { fd in
            let le = t.values.map { $0.littleEndian }
            try le.withUnsafeBytes { try writeAll(fd, $0, path: path) }
        }
    }
    try writeSafetensorsItems(items, metadata: metadata, to: path)
}

struct SafetensorsItem {
    let name: String
    let dtype: ElementType
    let shape: [Int]
    let byteCount: Int
    let write: (Int32) throws -> Void
}

func writeSafetensorsItems(_ items: [SafetensorsItem], metadata: [String: String], to path: String) throws {
    var seen = Set<String>()
    var header = "{"
    var parts: [String] = []
    if !metadata.isEmpty {
        let kv = metadata.keys.sorted().map { "\(HeaderJSON.quote($0)):\(HeaderJSON.quote(metadata[$0]!))" }
        parts.append("\"__metadata__\":{" + kv.joined(separator: ",") + "}")
    }
    var offset = 0
    for item in items {
        guard item.name != "__metadata__", seen.insert(item.name).inserted else {
            throw FormatError.invalid(file: path, detail: "tensor name \(item.name) is reserved or repeated")
        }
        let shape = item.shape.map(String.init).joined(separator: ",")
        parts.append("\(HeaderJSON.quote(item.name)):{\"dtype\":\"\(item.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + item.byteCount)]}")
        offset += item.byteCount
    }
    header += parts.joined(separator: ",") + "}"
    var headerBytes = Array(header.utf8)
    while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
    var lengthBytes = UInt64(headerBytes.count).littleEndian

    try writeFileAtomically(path) { fd in
        try withUnsafeBytes(of: &lengthBytes) { try writeAll(fd, $0, path: path) }
        try headerBytes.withUnsafeBytes { try writeAll(fd, $0, path: path) }
        for item in items { try item.write(fd) }
    }
}

/// Writes `path` through a temporary file in the same directory: write, fsync, rename, fsync the
/// directory. A crash leaves either the old file or the new one, never a partial file.
func writeFileAtomically(_ path: String, _ body: (Int32) throws -> Void) throws {
    let dir: String = {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let d = String(path[..<slash]); return d.isEmpty ? "/" : d
    }()
    let base = path.split(separator: "/").last.map(String.init) ?? path
    var template = Array("\(dir)/.\(base).tmp-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard fd >= 0 else { throw FormatError.io(file: path, detail: "cannot create a temporary file in \(dir): " + String(cString: strerror(errno))) }
    let tmp = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    var ok = false
    defer { if !ok { close(fd); unlink(tmp) } }
    try body(fd)
    guard fchmod(fd, 0o644) == 0, fsync(fd) == 0 else {
        throw FormatError.io(file: path, detail: "fsync: " + String(cString: strerror(errno)))
    }
    ok = true
    close(fd)
    guard rename(tmp, path) == 0 else {
        let reason = String(cString: strerror(errno))
        unlink(tmp)
        throw FormatError.io(file: path, detail: "rename: \(reason)")
    }
    let dfd = open(dir, O_RDONLY | O_DIRECTORY)
    if dfd >= 0 { _ = fsync(dfd); close(dfd) }
}

/// write(2) until every byte is out, retrying on EINTR.
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 {
            if errno == EINTR { continue }
            throw FormatError.io(file: path, detail: "write: " + String(cString: strerror(errno)))
        }
        done += n
    }
}
