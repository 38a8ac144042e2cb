import CZlib
#if canImport(Glibc)
import Glibc
#endif

// torch.save's state-dict format, written: the layout `TorchCheckpoint` reads (and torch.load
// takes). A zip of stored entries: `<archive>/data.pkl` (pickle protocol 2 of an OrderedDict
// name → _rebuild_tensor_v2(persistent storage, 0, size, stride, False, OrderedDict())),
// `<archive>/byteorder` ("little"), `<archive>/version` and one `<archive>/data/<i>` per tensor,
// each storage's data 64-byte aligned (padding in the local header's extra field, as torch does).
// Streaming: one tensor in memory at a time, CRCs patched into the local headers after the data;
// zip64 records wherever a size, an offset or the entry count needs them.

/// One tensor to write: its state-dict name, dtype (f32, bf16, f16) and shape (contiguous).
public struct TorchTensorSpec: Sendable {
    public var name: String
    public var dtype: ElementType
    public var shape: [Int]
    public init(name: String, dtype: ElementType, shape: [Int]) { self.name = name; self.dtype = dtype; self.shape = shape }
    public var count: Int { shape.reduce(1, *) }
}

/// Writes `tensors` as a torch checkpoint at `path` (a temporary file renamed into place).
/// `fill(i, bytes)` writes tensor i's little-endian elements into `bytes` (count × dtype size).
public func writeTorchCheckpoint(path: String, archive: String, tensors: [TorchTensorSpec],
                                 fill: (Int, UnsafeMutableRawBufferPointer) throws -> Void) throws {
    for t in tensors where !(t.dtype == .f32 || t.dtype == .bf16 || t.dtype == .f16) {
        throw FormatError.unsupported(file: path, what: "writing tensor \(t.name) as \(t.dtype.rawValue)")
    }
    let tmp = path + ".tmp-\(getpid())"
    let zip = try ZipWriter(path: tmp)
    do {
        try zip.add("\(archive)/data.pkl", bytes: stateDictPickle(tensors))
        try zip.add("\(archive)/byteorder", bytes: Array("little".utf8))
        for (i, t) in tensors.enumerated() {
            let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, t.count * t.dtype.size), alignment: 64)
            defer { bytes.deallocate() }
            let data = UnsafeMutableRawBufferPointer(rebasing: bytes[0 ..< t.count * t.dtype.size])
            try fill(i, data)
            try zip.add("\(archive)/data/\(i)", bytes: UnsafeRawBufferPointer(data))
        }
        try zip.add("\(archive)/version", bytes: Array("3\n".utf8))
        try zip.finish()
    } catch {
        zip.close(); unlink(tmp)
        throw error
    }
    guard rename(tmp, path) == 0 else {
        unlink(tmp)
        throw FormatError.io(file: path, detail: "rename: " + String(cString: strerror(errno)))
    }
}

/// The pickle (protocol 2) of the state dict: an OrderedDict of `_rebuild_tensor_v2` calls whose
/// storages are persistent ids ('storage', torch.<T>Storage, "<i>", 'cpu', numel).
func stateDictPickle(_ tensors: [TorchTensorSpec]) -> [UInt8] {
    var p: [UInt8] = [0x80, 0x02]                                   // PROTO 2
    func global(_ module: String, _ name: String) { p += [0x63] + Array("\(module)\n\(name)\n".utf8) }   // GLOBAL
    func string(_ s: String) {                                       // BINUNICODE
        let b = Array(s.utf8)
        p += [0x58] + withUnsafeBytes(of: UInt32(b.count).littleEndian, Array.init) + b
    }
    func int(_ v: Int) {
        if let i = Int32(exactly: v) { p += [0x4a] + withUnsafeBytes(of: i.littleEndian, Array.init) }   // BININT
        else { p += [0x8a, 8] + withUnsafeBytes(of: Int64(v).littleEndian, Array.init) }               // LONG1
    }
    func tuple(_ values: [Int]) { p += [0x28]; values.forEach(int); p += [0x74] }    // MARK ... TUPLE
    func emptyOrderedDict() { global("collections", "OrderedDict"); p += [0x29, 0x52] }   // () REDUCE
    let storage: [ElementType: String] = [.f32: "FloatStorage", .bf16: "BFloat16Storage", .f16: "HalfStorage"]
    emptyOrderedDict()
    p += [0x28]                                                      // MARK
    for (i, t) in tensors.enumerated() {
        string(t.name)
        global("torch._utils", "_rebuild_tensor_v2")
        p += [0x28]                                                  // MARK (args)
        p += [0x28]; string("storage"); global("torch", storage[t.dtype]!); string("\(i)"); string("cpu"); int(t.count)
        p += [0x74, 0x51]                                            // TUPLE BINPERSID
        int(0)                                                       // storage offset
        tuple(t.shape)
        tuple(TorchCheckpoint.contiguousStrides(t.shape))
        p += [0x89]                                                  // NEWFALSE: requires_grad
        emptyOrderedDict()                                           // backward hooks
        p += [0x74, 0x52]                                            // TUPLE REDUCE
    }
    p += [0x75, 0x2e]                                                // SETITEMS STOP
    return p
}

/// A zip archive of stored entries written front to back (APPNOTE 6.3), zip64 where needed.
final class ZipWriter {
    private let fd: Int32
    private let path: String
    private var offset = 0
    private var central: [UInt8] = []
    private var entries = 0

    init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FormatError.io(file: path, detail: String(cString: strerror(errno))) }
    }

    func close() { Glibc.close(fd) }

    private func write(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            guard n > 0 else { throw FormatError.io(file: path, detail: "write: " + String(cString: strerror(errno))) }
            done += n
        }
        offset += bytes.count
    }
    private func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    func add(_ name: String, bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try add(name, bytes: $0) } }

    /// One stored entry; its data starts at a multiple of 64 bytes of the file.
    func add(_ name: String, bytes data: UnsafeRawBufferPointer) throws {
        let nameBytes = Array(name.utf8), size = data.count, at = offset
        let big = size >= 0xFFFF_FFFF
        var extra: [UInt8] = big ? le16(1) + le16(16) + le64(size) + le64(size) : []
        let unpadded = at + 30 + nameBytes.count + extra.count + 4
        let pad = (64 - unpadded % 64) % 64
        extra += le16(0x4246) + le16(pad) + [UInt8](repeating: 0x5a, count: pad)   // "FB" padding, as torch
        var crc: UInt = 0
        var done = 0
        while done < size {   // zlib takes 32-bit lengths
            let n = min(size - done, 1 << 30)
            crc = crc32(crc, data.baseAddress!.assumingMemoryBound(to: UInt8.self) + done, UInt32(n))
            done += n
        }
        let sizes32 = big ? le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) : le32(size) + le32(size)
        try write(le32(0x0403_4b50) + le16(big ? 45 : 20) + le16(0) + le16(0) + le16(0) + le16(0x21)
                  + le32(Int(crc)) + sizes32 + le16(nameBytes.count) + le16(extra.count) + nameBytes + extra)
        if size > 0 { try write(data) }
        // Central entry: zip64 fields for what does not fit 32 bits (uncompressed, compressed, offset).
        var z64: [UInt8] = []
        if big { z64 += le64(size) + le64(size) }
        if at >= 0xFFFF_FFFF { z64 += le64(at) }
        let cextra = z64.isEmpty ? [] : le16(1) + le16(z64.count) + z64
        central += le32(0x0201_4b50) + le16(45) + le16(z64.isEmpty ? 20 : 45) + le16(0) + le16(0) + le16(0) + le16(0x21)
            + le32(Int(crc)) + sizes32 + le16(nameBytes.count) + le16(cextra.count) + le16(0) + le16(0) + le16(0) + le32(0)
            + le32(min(at, 0xFFFF_FFFF)) + nameBytes + cextra
        entries += 1
    }

    /// The central directory and end records; closes the file after syncing it.
    func finish() throws {
        let cdOffset = offset, cdSize = central.count
        try write(central)
        let needs64 = cdOffset >= 0xFFFF_FFFF || cdSize >= 0xFFFF_FFFF || entries >= 0xFFFF
        if needs64 {
            let z = offset
            try write(le32(0x0606_4b50) + le64(44) + le16(45) + le16(45) + le32(0) + le32(0)
                      + le64(entries) + le64(entries) + le64(cdSize) + le64(cdOffset))
            try write(le32(0x0706_4b50) + le32(0) + le64(z) + le32(1))
        }
        try write(le32(0x0605_4b50) + le16(0) + le16(0) + le16(min(entries, 0xFFFF)) + le16(min(entries, 0xFFFF))
                  + le32(min(cdSize, 0xFFFF_FFFF)) + le32(min(cdOffset, 0xFFFF_FFFF)) + le16(0))
        guard fsync(fd) == 0 else { throw FormatError.io(file: path, detail: "fsync: " + String(cString: strerror(errno))) }
        close()
    }
}

private func le16(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt16(truncatingIfNeeded: v).littleEndian, Array.init) }
private func le32(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian, Array.init) }
private func le64(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt64(v).littleEndian, Array.init) }
