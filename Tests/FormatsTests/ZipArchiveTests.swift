import Foundation
import Testing
@testable import Formats
import TestSupport

/// CRC-32 (IEEE, reflected 0xEDB88320), for the test archives.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        c ^= UInt32(b)
        for _ in 0..<8 { c = (c >> 1) ^ (c & 1 == 1 ? 0xEDB8_8320 : 0) }
    }
    return ~c
}

/// Builds zip archives of stored entries in the tests, like torch.save does (data 64-byte aligned by
/// padding the local extra field), optionally with every size/offset in zip64 extra fields.
struct TestZipWriter {
    var zip64 = false
    var method: UInt16 = 0
    var align = 64

    private func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xff), UInt8((v >> 8) & 0xff)] }
    private func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    func build(_ entries: [(name: String, data: [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        let sat: UInt32 = 0xFFFF_FFFF
        for e in entries {
            let name = Array(e.name.utf8)
            let offset = out.count
            let size = UInt32(e.data.count)
            var extra: [UInt8] = zip64 ? le16(1) + le16(16) + le64Bytes(UInt64(size)) + le64Bytes(UInt64(size)) : []
            let unpadded = offset + 30 + name.count + extra.count
            if align > 1, unpadded % align != 0 {
                var pad = align - unpadded % align
                if pad < 4 { pad += align }
                extra += le16(0x4246) + le16(pad - 4) + [UInt8](repeating: 0x5a, count: pad - 4)   // "FB" padding
            }
            out += le32(ZipArchive.localSignature) + le16(zip64 ? 45 : 20) + le16(0) + le16(Int(method))
            out += le16(0) + le16(0) + le32(crc32(e.data))
            out += zip64 ? le32(sat) + le32(sat) : le32(size) + le32(size)
            out += le16(name.count) + le16(extra.count) + name + extra + e.data
            let cExtra: [UInt8] = zip64
                ? le16(1) + le16(24) + le64Bytes(UInt64(size)) + le64Bytes(UInt64(size)) + le64Bytes(UInt64(offset)) : []
            central += le32(ZipArchive.centralSignature) + le16(zip64 ? 45 : 20) + le16(zip64 ? 45 : 20)
            central += le16(0) + le16(Int(method)) + le16(0) + le16(0) + le32(crc32(e.data))
            central += zip64 ? le32(sat) + le32(sat) : le32(size) + le32(size)
            central += le16(name.count) + le16(cExtra.count) + le16(0) + le16(0) + le16(0) + le32(0)
            central += (zip64 ? le32(sat) : le32(UInt32(offset))) + name + cExtra
        }
        let cdOffset = out.count
        out += central
        if zip64 {
            let z = out.count
            out += le32(ZipArchive.zip64EOCDSignature) + le64Bytes(44) + le16(45) + le16(45) + le32(0) + le32(0)
            out += le64Bytes(UInt64(entries.count)) + le64Bytes(UInt64(entries.count))
            out += le64Bytes(UInt64(central.count)) + le64Bytes(UInt64(cdOffset))
            out += le32(ZipArchive.zip64LocatorSignature) + le32(0) + le64Bytes(UInt64(z)) + le32(1)
            out += le32(ZipArchive.eocdSignature) + le16(0) + le16(0) + le16(0xFFFF) + le16(0xFFFF)
            out += le32(sat) + le32(sat) + le16(0)
        } else {
            out += le32(ZipArchive.eocdSignature) + le16(0) + le16(0) + le16(entries.count) + le16(entries.count)
            out += le32(UInt32(central.count)) + le32(UInt32(cdOffset)) + le16(0)
        }
        return out
    }
}

@Suite struct ZipArchiveTests {
    let d4 = TestPaths.d4Model + "/model_000600.pt"

    @Test func readsTorchFixture() throws {
        let z = try ZipArchive(path: d4)
        #expect(z.entries.count == 41)
        #expect(z.names.first == "model_000600/data.pkl")
        let pkl = try z.bytes("model_000600/data.pkl")
        #expect(pkl.count == 5596)
        #expect(Array(pkl.prefix(2)) == [0x80, 0x02])
        #expect(try z.bytes("model_000600/byteorder") == Array("little".utf8))
        // Stored entries carry a CRC: check ours against the archive's for a small and a big entry.
        for name in ["model_000600/data.pkl", "model_000600/data/4"] {
            let e = try z.entry(name)
            #expect(crc32(try z.bytes(name)) == e.crc32)
        }
        #expect(formatError { _ = try z.entry("nope") }?.kind == "missing")
    }

    @Test func readsWrittenArchivesPlainAndZip64() throws {
        let entries: [(name: String, data: [UInt8])] = [
            ("a/data.pkl", Array("hello".utf8)), ("a/data/0", (0..<300).map { UInt8($0 % 251) }), ("empty", []),
        ]
        for zip64 in [false, true] {
            let path = try writeTemporary(TestZipWriter(zip64: zip64).build(entries), suffix: ".zip")
            defer { unlink(path) }
            let z = try ZipArchive(path: path)
            #expect(z.names == entries.map(\.name))
            for e in entries {
                #expect(try z.bytes(e.name) == e.data)
                #expect(try z.entry(e.name).dataRange.lowerBound % 64 == 0)
            }
        }
    }

    @Test func refusesCompressedEntriesOnRead() throws {
        let path = try writeTemporary(TestZipWriter(method: 8).build([("x", [1, 2, 3])]), suffix: ".zip")
        defer { unlink(path) }
        let z = try ZipArchive(path: path)
        #expect(formatError { _ = try z.bytes("x") }?.kind == "unsupported")
    }

    @Test func refusesBrokenArchives() throws {
        func refusal(_ bytes: [UInt8]) throws -> FormatError? {
            let path = try writeTemporary(bytes, suffix: ".zip")
            defer { unlink(path) }
            return formatError { _ = try ZipArchive(path: path) }
        }
        let entries: [(name: String, data: [UInt8])] = [("a", [UInt8](repeating: 7, count: 100)), ("bb", [1])]
        for zip64 in [false, true] {
            let good = TestZipWriter(zip64: zip64).build(entries)
            #expect(try refusal(good) == nil)
            // Not a zip at all / too short.
            #expect(try refusal(Array(good.prefix(10)))?.kind == "truncated")
            #expect(try refusal([UInt8](repeating: 0, count: 100)) != nil)
            // Cut anywhere: always an error, never a crash.
            for cut in stride(from: 0, to: good.count, by: 3) {
                #expect(try refusal(Array(good.prefix(cut))) != nil)
            }
            // Find the central directory entry of "a" and point its local header offset outside the file.
            let cd = (0..<good.count - 4).first { i in
                good[i] == 0x50 && good[i + 1] == 0x4b && good[i + 2] == 0x01 && good[i + 3] == 0x02
            }!
            var bad = good
            if zip64 {
                // zip64 extra: id, size, uncompressed, compressed, offset → offset at +46+1+4+16
                let at = cd + 46 + 1 + 4 + 16
                for k in 0..<8 { bad[at + k] = k < 4 ? 0xF0 : 0 }
            } else {
                for k in 0..<4 { bad[cd + 42 + k] = 0xF0 }
            }
            #expect(try refusal(bad)?.kind == "outOfBounds")
            // A data size larger than the file.
            bad = good
            if zip64 {
                for k in 0..<8 { bad[cd + 46 + 1 + 4 + k] = k == 3 ? 0x10 : 0; bad[cd + 46 + 1 + 4 + 8 + k] = k == 3 ? 0x10 : 0 }
            } else {
                for k in 0..<4 { bad[cd + 20 + k] = k == 3 ? 0x10 : 0; bad[cd + 24 + k] = k == 3 ? 0x10 : 0 }
            }
            #expect(try refusal(bad)?.kind == "outOfBounds")
            // A name length that runs past the central directory.
            bad = good
            bad[cd + 28] = 0xFF; bad[cd + 29] = 0xFF
            #expect(try refusal(bad) != nil)
        }
        // The central directory offset in the EOCD pointing past the end.
        var bad = TestZipWriter().build(entries)
        let eocd = bad.count - 22
        for k in 0..<4 { bad[eocd + 16 + k] = 0x7F }
        #expect(try refusal(bad)?.kind == "outOfBounds")
        // zip64 locator pointing outside.
        bad = TestZipWriter(zip64: true).build(entries)
        let loc = bad.count - 22 - 20
        for k in 0..<8 { bad[loc + 8 + k] = 0x7F }
        #expect(try refusal(bad)?.kind == "outOfBounds")
        // A missing file.
        #expect(formatError { _ = try ZipArchive(path: "/nonexistent.zip") }?.kind == "io")
    }
}
