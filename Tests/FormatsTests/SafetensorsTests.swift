import Foundation
import Testing
import Tensors
@testable import Formats
import TestSupport

/// A safetensors file from a literal header and data region (header length computed, no padding).
private func rawSafetensors(_ header: String, data: [UInt8]) -> [UInt8] {
    let h = Array(header.utf8)
    return le64Bytes(UInt64(h.count)) + h + data
}

@Suite struct SafetensorsTests {
    @Test func readsReferenceForward() throws {
        let f = try SafetensorsFile(path: TestPaths.d4Reference + "/forward.safetensors")
        #expect(f.metadata == ["step": "600", "dtype": "float32", "checkpoint": "d4"])
        #expect(f.names.count == 4 + 4 * 5)
        #expect(f.names == f.names.sorted())
        #expect(try f.dtype("tokens") == "I32")
        #expect(try f.shape("tokens") == [2, 256])
        let tokens = try f.int64s("tokens")
        // Values from numpy over the same bytes.
        #expect(Array(tokens[0..<8]) == [4087, 1662, 1287, 595, 1655, 267, 975, 316])
        #expect(Array(tokens[256..<260]) == [4087, 1230, 792, 294])
        #expect(tokens.reduce(0, +) == 472381)
        let resid = try f.tensor("blocks.2.hook_resid_post")
        #expect(resid.shape == [2, 256, 256])
        #expect(resid[1, 5, 0] == Float(0.14124803245067596))
        #expect(resid[1, 5, 3] == Float(0.6406451463699341))
        let sum = resid.storage.reduce(0.0) { $0 + Double($1) }
        #expect(abs(sum - -627.5857611984247) < 1e-6)
        #expect(try f.shape("logits") == [2, 256, 4096])
        // Wrong accessor for the dtype is refused, not reinterpreted.
        #expect(formatError { _ = try f.tensor("tokens") }?.kind == "unsupported")
        #expect(formatError { _ = try f.int64s("logits") }?.kind == "unsupported")
        #expect(formatError { _ = try f.shape("nope") }?.kind == "missing")
    }

    @Test func roundTripIsExact() throws {
        var rng = Xoshiro256(seed: 7)
        let a = Tensor(shape: [3, 5], storage: (0..<15).map { _ in rng.nextGaussian() })
        let b = Tensor(shape: [7], storage: [0, -0.0, Float(bitPattern: 1), .infinity, -.infinity, 3.5, .greatestFiniteMagnitude])
        let empty = Tensor(shape: [0, 4], storage: [])
        let scalar = Tensor(shape: [], storage: [42])
        let path = temporaryPath(".safetensors")
        defer { unlink(path) }
        let meta = ["hook_name": "blocks.1.hook_resid_post", "quote\"and\\slash": "line\nbreak é"]
        try writeSafetensors([("z_first", a), ("b", b), ("empty", empty), ("scalar", scalar)], metadata: meta, to: path)
        let f = try SafetensorsFile(path: path)
        #expect(f.names == ["b", "empty", "scalar", "z_first"])
        #expect(f.metadata == meta)
        #expect(try f.tensor("z_first") == a)
        #expect(try f.tensor("b").storage.map(\.bitPattern) == b.storage.map(\.bitPattern))
        #expect(try f.tensor("empty") == empty)
        #expect(try f.tensor("scalar") == scalar)
        // Layout: header padded with spaces to a multiple of 8, tensors in the order given.
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let n = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        #expect(n % 8 == 0)
        #expect(f.entries["z_first"]!.byteRange.lowerBound == 8 + n)
        #expect(f.entries["b"]!.byteRange.lowerBound == 8 + n + 60)
        #expect(bytes.count == 8 + n + (15 + 7 + 0 + 1) * 4)

        // Overwriting goes through a temporary file + rename and leaves no stray files.
        try writeSafetensors([("x", scalar)], to: path)
        #expect(try SafetensorsFile(path: path).names == ["x"])
        #expect(try SafetensorsFile(path: path).metadata.isEmpty)
        let dir = (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".\(base).tmp") }
        #expect(leftovers.isEmpty)
    }

    @Test func int64RoundTrip() throws {
        let path = temporaryPath(".safetensors")
        defer { unlink(path) }
        let values: [Int64] = [0, -1, .max, .min, 4087, 12345678901]
        try writeSafetensors(int64s: [("tokens", [2, 3], values)], to: path)
        let f = try SafetensorsFile(path: path)
        #expect(try f.dtype("tokens") == "I64")
        #expect(try f.shape("tokens") == [2, 3])
        #expect(try f.int64s("tokens") == values)
        #expect(formatError { try writeSafetensors(int64s: [("t", [4], values)], to: path) }?.kind == "invalid")
    }

    @Test func convertsHalfPrecisionAndIntegers() throws {
        // bf16: 1.0 = 0x3F80, -2.5 = 0xC020; f16: 1.0 = 0x3C00, -2.5 = 0xC100, smallest subnormal 0x0001,
        // 65504 = 0x7BFF; f64: 0.1; i16 -3; u8 200; bool.
        let data: [UInt8] = [0x80, 0x3F, 0x20, 0xC0,
                             0x00, 0x3C, 0x00, 0xC1, 0x01, 0x00, 0xFF, 0x7B]
            + Array(withUnsafeBytes(of: (0.1 as Double).bitPattern.littleEndian, Array.init))
            + [0xFD, 0xFF, 200, 1, 0]
        let header = """
        {"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},\
        "h":{"dtype":"F16","shape":[2,2],"data_offsets":[4,12]},\
        "d":{"dtype":"F64","shape":[1],"data_offsets":[12,20]},\
        "s":{"dtype":"I16","shape":[1],"data_offsets":[20,22]},\
        "u":{"dtype":"U8","shape":[1],"data_offsets":[22,23]},\
        "q":{"dtype":"BOOL","shape":[2],"data_offsets":[23,25]}}
        """
        let path = try writeTemporary(rawSafetensors(header, data: data))
        defer { unlink(path) }
        let f = try SafetensorsFile(path: path)
        #expect(try f.tensor("a").storage == [1.0, -2.5])
        #expect(try f.tensor("h").storage == [1.0, -2.5, Float(5.9604645e-08), 65504])
        #expect(try f.tensor("d").storage == [Float(0.1)])
        #expect(try f.int64s("s") == [-3])
        #expect(try f.int64s("u") == [200])
        #expect(try f.int64s("q") == [1, 0])
    }

    @Test func refusesBrokenFiles() throws {
        func refusal(_ bytes: [UInt8]) throws -> FormatError? {
            let path = try writeTemporary(bytes)
            defer { unlink(path) }
            let e = formatError { _ = try SafetensorsFile(path: path) }
            if let e { #expect(e.description.hasPrefix(path + ": ")) }
            return e
        }
        let good = #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        #expect(try refusal(rawSafetensors(good, data: [UInt8](repeating: 0, count: 8))) == nil)
        // Shorter than the length field.
        #expect(try refusal([1, 2, 3])?.kind == "truncated")
        // Header length beyond the end of the file, and absurdly large.
        #expect(try refusal(le64Bytes(1000) + Array("{}".utf8))?.kind == "truncated")
        #expect(try refusal(le64Bytes(UInt64.max) + Array("{}".utf8))?.kind == "invalid")
        // Not JSON / not an object / bad entries.
        #expect(try refusal(rawSafetensors("{\"t\":", data: []))?.kind == "invalid")
        #expect(try refusal(rawSafetensors("[1,2]", data: []))?.kind == "invalid")
        #expect(try refusal(rawSafetensors(String(repeating: "[", count: 10000), data: []))?.kind == "invalid")
        #expect(try refusal(rawSafetensors(#"{"t":{"dtype":"F32","shape":[2]}}"#, data: []))?.kind == "invalid")
        #expect(try refusal(rawSafetensors(#"{"__metadata__":{"k":1}}"#, data: []))?.kind == "invalid")
        // Unknown dtype.
        #expect(try refusal(rawSafetensors(#"{"t":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#, data: [0, 0]))?.kind == "unsupported")
        // Negative shape.
        #expect(try refusal(rawSafetensors(#"{"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)))?.kind == "invalid")
        // Offsets past the data region, reversed offsets.
        #expect(try refusal(rawSafetensors(#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0, 0, 0]))?.kind == "outOfBounds")
        #expect(try refusal(rawSafetensors(#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, data: [UInt8](repeating: 0, count: 8)))?.kind == "outOfBounds")
        // dtype × shape disagrees with the span; overflowing element counts.
        #expect(try refusal(rawSafetensors(#"{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)))?.kind == "invalid")
        #expect(try refusal(rawSafetensors(#"{"t":{"dtype":"F64","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)))?.kind == "invalid")
        // The same name twice.
        #expect(try refusal(rawSafetensors(#"{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, data: [0]))?.kind == "invalid")
        // A missing file.
        #expect(formatError { _ = try SafetensorsFile(path: "/nonexistent/x.safetensors") }?.kind == "io")
    }
}
