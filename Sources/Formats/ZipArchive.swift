// Zip archives of stored (uncompressed) entries, as torch.save writes them, zip64 included.
// Layout (PKWARE APPNOTE): [local header + name + extra + data]* central directory, optional zip64
// end record + zip64 locator, end-of-central-directory record (EOCD, last 22 bytes + comment).
// Entries are slices of the mapped file; nothing is copied.

/// A zip archive mapped read-only, its central directory validated when opened.
public struct ZipArchive: Sendable {
    /// One central-directory entry, with its data range resolved through the local header.
    public struct Entry: Sendable, Equatable {
        public let name: String
        /// 0 = stored; anything else is refused when the entry is read.
        public let method: UInt16
        public let compressedSize: Int
        public let uncompressedSize: Int
        public let crc32: UInt32
        /// Absolute byte range of the entry's (stored) data in the file.
        public let dataRange: Range<Int>
    }

    public let path: String
    /// Entries in central-directory order.
    public let entries: [Entry]
    private let index: [String: Int]
    private let file: MappedFile

    public init(path: String) throws {
        try self.init(mapped: try MappedFile(path: path))
    }

    public init(mapped file: MappedFile) throws {
        self.file = file
        self.path = file.path
        entries = try ZipArchive.readDirectory(file.bytes, path: file.path)
        var index: [String: Int] = [:]
        for (i, e) in entries.enumerated() {
            guard index[e.name] == nil else {
                throw FormatError.invalid(file: file.path, detail: "zip entry \(e.name) appears twice")
            }
            index[e.name] = i
        }
        self.index = index
    }

    public var names: [String] { entries.map(\.name) }

    public func entry(_ name: String) throws -> Entry {
        guard let i = index[name] else { throw FormatError.missing(file: path, name: name) }
        return entries[i]
    }

    /// Calls `body` with the bytes of a stored entry (a slice of the mapping, valid during the call).
    public func withEntryBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let e = try entry(name)
        guard e.method == 0 else {
            throw FormatError.unsupported(file: path, what: "zip entry \(name) is compressed (method \(e.method)); only stored entries are read")
        }
        return try withExtendedLifetime(file) {
            try body(UnsafeRawBufferPointer(rebasing: file.bytes[e.dataRange]))
        }
    }

    /// The bytes of a stored entry, a slice of the mapping that stays valid as long as this archive
    /// (or any copy of it, or a value holding one) lives: for data used in place, such as weights.
    public func mappedBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        try withEntryBytes(name) { $0 }
    }

    /// A copy of a stored entry's bytes (for small entries such as `data.pkl`).
    public func bytes(_ name: String) throws -> [UInt8] {
        try withEntryBytes(name) { Array($0) }
    }

    // -----------------------------------------------------------------------------------------
    // Parsing

    static let eocdSignature: UInt32 = 0x0605_4b50
    static let zip64EOCDSignature: UInt32 = 0x0606_4b50
    static let zip64LocatorSignature: UInt32 = 0x0706_4b50
    static let centralSignature: UInt32 = 0x0201_4b50
    static let localSignature: UInt32 = 0x0403_4b50

    static func readDirectory(_ b: UnsafeRawBufferPointer, path: String) throws -> [Entry] {
        // 1. EOCD: 22 bytes + up to 65535 bytes of comment at the end; search backwards.
        guard b.count >= 22 else {
            throw FormatError.truncated(file: path, what: "\(b.count) bytes is too short for a zip archive (need the 22-byte end record)")
        }
        var eocd = -1
        var p = b.count - 22
        let lowest = max(0, b.count - 22 - 65535)
        while p >= lowest {
            if b.le32(p) == eocdSignature, p + 22 + Int(b.le16(p + 20)) == b.count { eocd = p; break }
            p -= 1
        }
        guard eocd >= 0 else {
            throw FormatError.invalid(file: path, detail: "no zip end-of-central-directory record (not a zip archive, or truncated)")
        }
        let disk = b.le16(eocd + 4), cdDisk = b.le16(eocd + 6)
        var count = Int(b.le16(eocd + 10))
        var cdSize = Int(b.le32(eocd + 12))
        var cdOffset = Int(b.le32(eocd + 16))

        // 2. Zip64: a locator sits just before the EOCD and points at the zip64 end record.
        if eocd >= 20, b.le32(eocd - 20) == zip64LocatorSignature {
            let rawOffset = b.le64(eocd - 20 + 8)
            guard rawOffset <= UInt64(eocd - 20), Int(rawOffset) + 56 <= eocd - 20 else {
                throw FormatError.outOfBounds(file: path, what: "zip64 end record offset \(rawOffset) outside the archive")
            }
            let z = Int(rawOffset)
            guard b.le32(z) == zip64EOCDSignature else {
                throw FormatError.invalid(file: path, detail: "zip64 locator does not point at a zip64 end record")
            }
            guard b.le32(z + 16) == 0, b.le32(z + 20) == 0, b.le32(eocd - 20 + 16) <= 1 else {
                throw FormatError.unsupported(file: path, what: "multi-disk zip archive")
            }
            let c64 = b.le64(z + 32), s64 = b.le64(z + 40), o64 = b.le64(z + 48)
            guard c64 <= UInt64(b.count), s64 <= UInt64(b.count), o64 <= UInt64(b.count) else {
                throw FormatError.outOfBounds(file: path, what: "zip64 end record sizes exceed the archive")
            }
            // Where the classic record is not saturated it must agree with the zip64 one.
            guard count == 0xFFFF || count == Int(c64), cdSize == 0xFFFF_FFFF || cdSize == Int(s64),
                  cdOffset == 0xFFFF_FFFF || cdOffset == Int(o64) else {
                throw FormatError.invalid(file: path, detail: "zip end record disagrees with the zip64 end record")
            }
            count = Int(c64); cdSize = Int(s64); cdOffset = Int(o64)
        } else {
            guard disk == 0, cdDisk == 0 else {
                throw FormatError.unsupported(file: path, what: "multi-disk zip archive")
            }
            if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
                throw FormatError.invalid(file: path, detail: "zip end record needs zip64 but there is no zip64 locator")
            }
        }
        guard cdOffset + cdSize <= b.count else {
            throw FormatError.outOfBounds(file: path, what: "central directory [\(cdOffset), \(cdOffset + cdSize)) outside the \(b.count)-byte archive")
        }
        // Each central entry takes at least 46 bytes: bound the count before allocating.
        guard count <= cdSize / 46 else {
            throw FormatError.invalid(file: path, detail: "zip claims \(count) entries in a \(cdSize)-byte central directory")
        }

        // 3. Central directory entries, each resolved through its local header.
        var entries: [Entry] = []
        entries.reserveCapacity(count)
        var q = cdOffset
        let cdEnd = cdOffset + cdSize
        for n in 0..<count {
            guard q + 46 <= cdEnd else {
                throw FormatError.truncated(file: path, what: "central directory entry \(n) runs past the directory's end")
            }
            guard b.le32(q) == centralSignature else {
                throw FormatError.invalid(file: path, detail: "bad signature for central directory entry \(n)")
            }
            let flags = b.le16(q + 8)
            let method = b.le16(q + 10)
            let crc = b.le32(q + 16)
            var compressed = UInt64(b.le32(q + 20))
            var uncompressed = UInt64(b.le32(q + 24))
            let nameLen = Int(b.le16(q + 28)), extraLen = Int(b.le16(q + 30)), commentLen = Int(b.le16(q + 32))
            let diskStart = b.le16(q + 34)
            var localOffset = UInt64(b.le32(q + 42))
            let next = q + 46 + nameLen + extraLen + commentLen
            guard next <= cdEnd else {
                throw FormatError.truncated(file: path, what: "central directory entry \(n)'s name and extra fields run past the directory's end")
            }
            guard let name = String(validating: UnsafeRawBufferPointer(rebasing: b[(q + 46)..<(q + 46 + nameLen)]), as: UTF8.self) else {
                throw FormatError.invalid(file: path, detail: "zip entry \(n)'s name is not UTF-8")
            }
            // Zip64 extended information (header id 1): the 8-byte values present are those whose
            // 32-bit fields are saturated, in the order uncompressed, compressed, offset.
            if uncompressed == 0xFFFF_FFFF || compressed == 0xFFFF_FFFF || localOffset == 0xFFFF_FFFF {
                guard let z = findExtra(b, from: q + 46 + nameLen, count: extraLen, id: 1) else {
                    throw FormatError.invalid(file: path, detail: "zip entry \(name) needs a zip64 extra field but has none")
                }
                var r = z.lowerBound
                func take() throws -> UInt64 {
                    guard r + 8 <= z.upperBound else {
                        throw FormatError.truncated(file: path, what: "zip64 extra field of entry \(name)")
                    }
                    defer { r += 8 }
                    return b.le64(r)
                }
                if uncompressed == 0xFFFF_FFFF { uncompressed = try take() }
                if compressed == 0xFFFF_FFFF { compressed = try take() }
                if localOffset == 0xFFFF_FFFF { localOffset = try take() }
            }
            guard flags & 1 == 0 else {
                throw FormatError.unsupported(file: path, what: "zip entry \(name) is encrypted")
            }
            guard diskStart == 0 || diskStart == 0xFFFF else {
                throw FormatError.unsupported(file: path, what: "multi-disk zip archive (entry \(name))")
            }
            guard localOffset <= UInt64(b.count), compressed <= UInt64(b.count), uncompressed <= UInt64(Int.max) else {
                throw FormatError.outOfBounds(file: path, what: "zip entry \(name)'s offset or size exceeds the archive")
            }
            let lo = Int(localOffset)
            guard lo + 30 <= b.count else {
                throw FormatError.outOfBounds(file: path, what: "local header of zip entry \(name) at \(lo) outside the \(b.count)-byte archive")
            }
            guard b.le32(lo) == localSignature else {
                throw FormatError.invalid(file: path, detail: "bad local header signature for zip entry \(name)")
            }
            let localNameLen = Int(b.le16(lo + 26)), localExtraLen = Int(b.le16(lo + 28))
            let dataStart = lo + 30 + localNameLen + localExtraLen
            guard dataStart <= b.count else {
                throw FormatError.outOfBounds(file: path, what: "local header of zip entry \(name) runs past the end of the archive")
            }
            guard localNameLen == nameLen,
                  b.baseAddress.map({ memcmpEqual($0 + lo + 30, $0 + q + 46, nameLen) }) ?? true else {
                throw FormatError.invalid(file: path, detail: "local header name of zip entry \(name) differs from the central directory")
            }
            let dataEnd = dataStart + Int(compressed)
            guard dataEnd <= b.count else {
                throw FormatError.outOfBounds(file: path, what: "data of zip entry \(name) [\(dataStart), \(dataEnd)) outside the \(b.count)-byte archive")
            }
            if method == 0, compressed != uncompressed {
                throw FormatError.invalid(file: path, detail: "stored zip entry \(name) has compressed size \(compressed) ≠ size \(uncompressed)")
            }
            entries.append(Entry(name: name, method: method, compressedSize: Int(compressed),
                                 uncompressedSize: Int(uncompressed), crc32: crc, dataRange: dataStart..<dataEnd))
            q = next
        }
        return entries
    }

    /// The payload range of extra field `id` within `[from, from + count)`, if present and well formed.
    static func findExtra(_ b: UnsafeRawBufferPointer, from: Int, count: Int, id: UInt16) -> Range<Int>? {
        var p = from
        let end = from + count
        while p + 4 <= end {
            let hid = b.le16(p), size = Int(b.le16(p + 2))
            guard p + 4 + size <= end else { return nil }
            if hid == id { return (p + 4)..<(p + 4 + size) }
            p += 4 + size
        }
        return nil
    }
}

@inline(__always) private func memcmpEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    for i in 0..<n where a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) {
        return false
    }
    return true
}
