import Foundation
import Testing
import Tensors
@testable import Formats
import TestSupport

/// One tensor for a hand-built checkpoint: a view into a storage of raw little-endian bytes.
struct TestTorchTensor {
    var key: String
    var storageType: String          // "FloatStorage", "BFloat16Storage", ...
    var storageKey: String
    var storage: [UInt8]
    var numel: Int
    var offset = 0
    var size: [Int]
    var stride: [Int]
    var asParameter = false
}

/// Writes torch.save-style checkpoints in the tests: a protocol-2 pickle of an OrderedDict of
/// `_rebuild_tensor_v2` calls, as torch emits it, zipped with the storages under `<prefix>/data/`.
struct TestTorchWriter {
    var prefix = "archive"
    var zip64 = false
    /// Extra opcodes inserted before the final STOP's dict is closed (to smuggle in a bad global).
    var injected: [UInt8] = []
    /// The `byteorder` entry (nil: none, as older torch versions write).
    var byteorder: [UInt8]? = Array("little".utf8)

    private func text(_ s: String) -> [UInt8] {
        let u = Array(s.utf8)
        return [0x58] + (0..<4).map { UInt8(truncatingIfNeeded: u.count >> (8 * $0)) } + u
    }
    private func int(_ v: Int) -> [UInt8] { [0x4a] + (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    private func global(_ m: String, _ n: String) -> [UInt8] { [0x63] + Array("\(m)\n\(n)\n".utf8) }

    func pickle(_ tensors: [TestTorchTensor]) -> [UInt8] {
        var p: [UInt8] = [0x80, 0x02] + global("collections", "OrderedDict") + [0x29, 0x52, 0x71, 0x00, 0x28]
        for t in tensors {
            p += text(t.key)
            if t.asParameter { p += global("torch._utils", "_rebuild_parameter") + [0x28] }
            p += global("torch._utils", "_rebuild_tensor_v2") + [0x28]
            p += [0x28] + text("storage") + global("torch", t.storageType) + text(t.storageKey) + text("cpu") + int(t.numel) + [0x74, 0x51]
            p += int(t.offset)
            p += [0x28] + t.size.flatMap(int) + [0x74]
            p += [0x28] + t.stride.flatMap(int) + [0x74]
            p += [0x89] + global("collections", "OrderedDict") + [0x29, 0x52] + [0x74, 0x52]
            if t.asParameter { p += [0x88] + global("collections", "OrderedDict") + [0x29, 0x52, 0x74, 0x52] }
        }
        p += injected
        return p + [0x75, 0x2e]
    }

    func build(_ tensors: [TestTorchTensor]) -> [UInt8] {
        var entries: [(name: String, data: [UInt8])] = [("\(prefix)/data.pkl", pickle(tensors))]
        if let byteorder { entries.append(("\(prefix)/byteorder", byteorder)) }
        var seen = Set<String>()
        for t in tensors where seen.insert(t.storageKey).inserted {
            entries.append(("\(prefix)/data/\(t.storageKey)", t.storage))
        }
        return TestZipWriter(zip64: zip64).build(entries)
    }
}

private func f32Bytes(_ v: [Float]) -> [UInt8] { v.flatMap { f in (0..<4).map { UInt8(truncatingIfNeeded: f.bitPattern >> (8 * $0)) } } }
private func u16Bytes(_ v: [UInt16]) -> [UInt8] { v.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] } }

@Suite struct TorchCheckpointTests {
    /// Little-endian, or no byteorder entry (older torch): loads; big-endian: refused, naming it.
    @Test func byteOrderEntry() throws {
        let t = [TestTorchTensor(key: "w", storageType: "FloatStorage", storageKey: "0", storage: f32Bytes([1, 2]), numel: 2,
                                 size: [2], stride: [1])]
        for order in [Array("little".utf8), nil] {
            let path = try writeTemporary(TestTorchWriter(byteorder: order).build(t), suffix: ".pt")
            defer { unlink(path) }
            #expect(try loadTorchStateDict(path: path)["w"]?.storage == [1, 2])
        }
        let path = try writeTemporary(TestTorchWriter(byteorder: Array("big".utf8)).build(t), suffix: ".pt")
        defer { unlink(path) }
        let e = formatError { _ = try loadTorchStateDict(path: path) }
        #expect(e?.kind == "unsupported" && "\(e!)".contains("byte order big"), "\(String(describing: e))")
    }

    @Test func loadsNanochatD4() throws {
        let path = TestPaths.d4Model + "/model_000600.pt"
        let sd = try loadTorchStateDict(path: path)
        #expect(sd.count == 35)
        #expect(sd["transformer.wte.weight"]?.shape == [4096, 256])
        #expect(sd["transformer.h.1.attn.ve_gate.weight"]?.shape == [4, 12])
        #expect(sd["smear_gate.weight"]?.shape == [1, 24])
        #expect(sd["smear_lambda"]?.shape == [1])
        #expect(sd["value_embeds.3.weight"]?.shape == [4096, 256])
        #expect(sd["transformer.h.0.mlp.c_proj.weight"]?.shape == [256, 1024])
        // Values from numpy over the zip entries.
        #expect(sd["x0_lambdas"]?.storage == [-0.47658905386924744, -0.4944152534008026, -0.04298881068825722, 0.023076893761754036])
        let wte = try #require(sd["transformer.wte.weight"])
        #expect(wte[5, 7] == Float(0.1991237))
        #expect(abs(wte.storage.reduce(0.0) { $0 + Double($1) } - 10815.674943143438) < 1e-6 * 1.1e4)
        let ckpt = try TorchCheckpoint(path: path)
        #expect(try ckpt.info("transformer.wte.weight").dtype == .f32)
        #expect(try ckpt.info("lm_head.weight").stride == [256, 1])
    }

    @Test func loadsNanochatV0() throws {
        let sd = try loadTorchStateDict(path: TestPaths.v0 + "/model_000000.pt")
        #expect(sd.count == 14)
        #expect(sd["transformer.h.0.attn.c_k.weight"]?.shape == [64, 128])
        let lm = try #require(sd["lm_head.weight"])
        #expect(lm.shape == [4096, 128])
        #expect(lm[3, 100] == Float(-0.01528409))
        #expect(abs(lm.storage.reduce(0.0) { $0 + Double($1) } - -30.968559007639726) < 1e-4)
        #expect(sd.values.allSatisfy { t in t.storage.allSatisfy { $0 != 0 } })
    }

    @Test func handBuiltViewsAndDtypes() throws {
        let base: [Float] = (0..<12).map { Float($0) - 2.5 }     // storage 0: 12 floats
        let bf16: [UInt16] = [0x3F80, 0xC020, 0x4049, 0x0000]     // 1, -2.5, 3.140625, 0
        let f16: [UInt16] = [0x3C00, 0xC100, 0x7BFF, 0x0001]      // 1, -2.5, 65504, 2^-24
        let tensors = [
            // A [3, 4] tensor and its transpose [4, 3] (stride (1, 4)) sharing storage 0.
            TestTorchTensor(key: "_orig_mod.m", storageType: "FloatStorage", storageKey: "0", storage: f32Bytes(base), numel: 12, size: [3, 4], stride: [4, 1]),
            TestTorchTensor(key: "_orig_mod.mT", storageType: "FloatStorage", storageKey: "0", storage: f32Bytes(base), numel: 12, size: [4, 3], stride: [1, 4]),
            // A row slice with a storage offset: rows 1..2 → offset 4.
            TestTorchTensor(key: "rows", storageType: "FloatStorage", storageKey: "0", storage: f32Bytes(base), numel: 12, offset: 4, size: [2, 4], stride: [4, 1]),
            // Every other column of row 2: offset 8, stride 2.
            TestTorchTensor(key: "cols", storageType: "FloatStorage", storageKey: "0", storage: f32Bytes(base), numel: 12, offset: 8, size: [2], stride: [2]),
            TestTorchTensor(key: "b", storageType: "BFloat16Storage", storageKey: "1", storage: u16Bytes(bf16), numel: 4, size: [2, 2], stride: [2, 1]),
            TestTorchTensor(key: "h", storageType: "HalfStorage", storageKey: "2", storage: u16Bytes(f16), numel: 4, size: [4], stride: [1], asParameter: true),
            TestTorchTensor(key: "s", storageType: "FloatStorage", storageKey: "0", storage: f32Bytes(base), numel: 12, offset: 11, size: [], stride: []),
            TestTorchTensor(key: "e", storageType: "FloatStorage", storageKey: "0", storage: f32Bytes(base), numel: 12, size: [0, 3], stride: [3, 1]),
        ]
        for zip64 in [false, true] {
            let path = try writeTemporary(TestTorchWriter(zip64: zip64).build(tensors), suffix: ".pt")
            defer { unlink(path) }
            let sd = try loadTorchStateDict(path: path)
            #expect(Set(sd.keys) == ["m", "mT", "rows", "cols", "b", "h", "s", "e"])
            let m = try #require(sd["m"]), mT = try #require(sd["mT"])
            #expect(m.storage == base)
            #expect(mT.shape == [4, 3])
            for i in 0..<3 { for j in 0..<4 { #expect(mT[j, i] == m[i, j]) } }
            #expect(sd["rows"]?.storage == Array(base[4..<12]))
            #expect(sd["cols"]?.storage == [base[8], base[10]])
            #expect(sd["b"]?.storage == [1, -2.5, 3.140625, 0])
            #expect(sd["b"]?.shape == [2, 2])
            #expect(sd["h"]?.storage == [1, -2.5, 65504, Float(5.9604645e-08)])
            #expect(sd["s"]?.shape == [] && sd["s"]?.storage == [base[11]])
            #expect(sd["e"]?.shape == [0, 3])
            let info = try TorchCheckpoint(path: path).info("b")
            #expect(info.dtype == .bf16 && info.storageEntry == "archive/data/1")
        }
    }

    @Test func refusesBadCheckpoints() throws {
        func refusal(_ bytes: [UInt8]) throws -> FormatError? {
            let path = try writeTemporary(bytes, suffix: ".pt")
            defer { unlink(path) }
            let e = formatError { _ = try loadTorchStateDict(path: path) }
            if let e { #expect(e.description.hasPrefix(path + ": "), "\(e)") }
            return e
        }
        let ok = TestTorchTensor(key: "w", storageType: "FloatStorage", storageKey: "0", storage: f32Bytes([1, 2, 3, 4, 5, 6]), numel: 6, size: [2, 3], stride: [3, 1])
        #expect(try refusal(TestTorchWriter().build([ok])) == nil)
        // A view that reaches past its storage: offset, sizes and strides each.
        var t = ok; t.offset = 1
        #expect(try refusal(TestTorchWriter().build([t]))?.kind == "outOfBounds")
        t = ok; t.stride = [4, 1]
        #expect(try refusal(TestTorchWriter().build([t]))?.kind == "outOfBounds")
        // numel larger than the bytes stored.
        t = ok; t.numel = 7
        #expect(try refusal(TestTorchWriter().build([t]))?.kind == "outOfBounds")
        // Negative sizes; unknown storage type; missing storage entry.
        t = ok; t.size = [-2, 3]
        #expect(try refusal(TestTorchWriter().build([t]))?.kind == "invalid")
        t = ok; t.storageType = "ComplexFloatStorage"
        #expect(try refusal(TestTorchWriter().build([t]))?.kind == "forbiddenGlobal")
        t = ok; t.storageKey = "../x"
        #expect(try refusal(TestTorchWriter().build([t]))?.kind == "invalid")
        let noStorage = TestZipWriter().build([("archive/data.pkl", TestTorchWriter().pickle([ok]))])
        #expect(try refusal(noStorage)?.kind == "missing")
        // A pickle that names os.system / builtins.eval anywhere.
        var w = TestTorchWriter()
        w.injected = Array("X\u{1}\0\0\0z".utf8) + Array("cos\nsystem\n".utf8)
        let e1 = try refusal(w.build([ok]))
        #expect(e1?.kind == "forbiddenGlobal" && e1?.description.hasSuffix("not allowed: os.system") == true)
        w.injected = [0x58, 1, 0, 0, 0, 0x7a, 0x8c, 8] + Array("builtins".utf8) + [0x8c, 4] + Array("eval".utf8) + [0x93]
        let e2 = try refusal(w.build([ok]))
        #expect(e2?.description.hasSuffix("not allowed: builtins.eval") == true)
        // No data.pkl at all.
        #expect(try refusal(TestZipWriter().build([("x", [1])]))?.kind == "invalid")
    }

    @Test func truncatedFixtureIsRefusedAtEveryCut() throws {
        let full = [UInt8](try Data(contentsOf: URL(fileURLWithPath: TestPaths.v0 + "/model_000000.pt")))
        let cuts = [0, 1, 21, 22, 100, 1000, 1500, 1878, 2_000_000, full.count / 2, full.count - 4096, full.count - 200,
                    full.count - 23, full.count - 22, full.count - 1]
        for cut in cuts {
            let path = try writeTemporary(Array(full.prefix(cut)), suffix: ".pt")
            defer { unlink(path) }
            let e = formatError { _ = try loadTorchStateDict(path: path) }
            #expect(e != nil, "cut at \(cut) was accepted")
        }
        // A corrupted central directory offset (the zip's own bounds), on the real file.
        var bad = full
        let eocd = bad.count - 22
        #expect(bad[eocd] == 0x50 && bad[eocd + 1] == 0x4b)
        for k in 0..<4 { bad[eocd + 16 + k] = 0xEE }
        let path = try writeTemporary(bad, suffix: ".pt")
        defer { unlink(path) }
        #expect(formatError { _ = try loadTorchStateDict(path: path) }?.kind == "invalid")
        // torch always writes zip64 end records: corrupt the zip64 central directory offset too.
        bad = full
        let locator = full.count - 22 - 20
        #expect(bad[locator] == 0x50 && bad[locator + 2] == 0x06 && bad[locator + 3] == 0x07)
        let z64 = Int(full[(locator + 8)..<(locator + 16)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        for k in 0..<8 { bad[z64 + 48 + k] = k < 7 ? 0xEE : 0 }
        let path2 = try writeTemporary(bad, suffix: ".pt")
        defer { unlink(path2) }
        #expect(formatError { _ = try loadTorchStateDict(path: path2) }?.kind == "outOfBounds")
    }
}
