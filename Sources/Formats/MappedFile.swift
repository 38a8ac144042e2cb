#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory; readers take slices of `bytes` instead of copying.
///
/// Shared by the safetensors and zip readers. The mapping is private and read-only and lives as long as
/// this object, so values that hold a `MappedFile` keep their slices valid.
public final class MappedFile: @unchecked Sendable {
    /// The path as given (used in error messages).
    public let path: String
    /// The file's bytes (empty for an empty file).
    public let bytes: UnsafeRawBufferPointer
    private let base: UnsafeMutableRawPointer?

    /// Maps `path`; throws `FormatError.io` if it cannot be opened or mapped.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FormatError.io(file: path, detail: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw FormatError.io(file: path, detail: String(cString: strerror(errno)))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw FormatError.io(file: path, detail: "not a regular file")
        }
        let size = Int(st.st_size)
        if size == 0 {
            base = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0), p != MAP_FAILED else {
            throw FormatError.io(file: path, detail: "mmap failed: " + String(cString: strerror(errno)))
        }
        base = p
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    /// Wraps memory the caller keeps alive and unchanged for this object's lifetime (no copy, no
    /// unmapping). For readers that are handed bytes rather than a path (fuzzing, tests).
    init(unownedBytes: UnsafeRawBufferPointer, path: String) {
        self.path = path
        self.bytes = unownedBytes
        self.base = nil
    }

    deinit {
        if let base { munmap(base, bytes.count) }
    }

    public var count: Int { bytes.count }
}

// ---------------------------------------------------------------------------------------------
// Little-endian reads from a byte buffer, bounds already checked by the caller.

extension UnsafeRawBufferPointer {
    @inline(__always) func le16(_ at: Int) -> UInt16 { UInt16(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
    @inline(__always) func le32(_ at: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    @inline(__always) func le64(_ at: Int) -> UInt64 { UInt64(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
}

/// `a + b` and `a * b` that report overflow as nil (sizes read from files can be anything).
@inline(__always) func checkedAdd(_ a: Int, _ b: Int) -> Int? {
    let (r, o) = a.addingReportingOverflow(b); return o ? nil : r
}
@inline(__always) func checkedMul(_ a: Int, _ b: Int) -> Int? {
    let (r, o) = a.multipliedReportingOverflow(by: b); return o ? nil : r
}
