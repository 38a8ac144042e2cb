import Foundation
import Formats
import Testing
@testable import SAE
import Tensors

// Files written by `saveSAELens` load in SAELens 6.x itself, and SAELens's encode/decode equals ours
// within 1e-5. Runs only where a Python with sae_lens is found: set SAE_LENS_PYTHON to its path
// (e.g. a venv: `python3 -m venv /tmp/saelens && /tmp/saelens/bin/pip install sae-lens`), otherwise
// `python3` is tried; without sae_lens the test is skipped, never failed.

enum SAELensPython {
    static let executable: String = ProcessInfo.processInfo.environment["SAE_LENS_PYTHON"] ?? "/usr/bin/env"
    static let prefix: [String] = ProcessInfo.processInfo.environment["SAE_LENS_PYTHON"] == nil ? ["python3"] : []

    /// Runs python with `arguments`; returns (exit status, stdout + stderr).
    static func run(_ arguments: [String]) -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = prefix + arguments
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        do { try p.run() } catch { return (-1, "\(error)") }
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self))
    }

    static let available: Bool = run(["-c", "import sae_lens, safetensors"]).0 == 0

    /// For each DIR given, loads it with SAELens, runs encode/decode on `x` from DIR/io.safetensors and
    /// compares with our `f` and `xhat` (one Python start for all, torch's import is slow).
    static let check = """
    import sys, torch
    from sae_lens import SAE
    from safetensors.torch import load_file
    worst = 0.0
    for d in sys.argv[1:]:
        sae = SAE.load_from_disk(d, device="cpu")
        t = load_file(d + "/io.safetensors")
        with torch.no_grad():
            f = sae.encode(t["x"]); xhat = sae.decode(f)
        ef = (f - t["f"]).abs().max().item(); ex = (xhat - t["xhat"]).abs().max().item()
        print(d, type(sae).__name__, "max |f - ours|", ef, "max |xhat - ours|", ex)
        worst = max(worst, ef, ex)
    sys.exit(0 if worst <= 1e-5 else 1)
    """

    /// Writes SAEs with SAELens's own `save_model` (random weights, every SAELens architecture, and a
    /// jumprelu with apply_b_dec_to_input = false) under ROOT/<name>, each with io.safetensors holding
    /// x and SAELens's f and xhat.
    static let write = """
    import sys, torch
    from safetensors.torch import save_file
    from sae_lens import (TopKSAE, TopKSAEConfig, StandardSAE, StandardSAEConfig, GatedSAE, GatedSAEConfig,
                          JumpReLUSAE, JumpReLUSAEConfig)
    torch.manual_seed(0)
    root = sys.argv[1]
    cases = [("topk", TopKSAE, TopKSAEConfig(d_in=24, d_sae=96, k=6, rescale_acts_by_decoder_norm=False)),
             ("standard", StandardSAE, StandardSAEConfig(d_in=24, d_sae=96)),
             ("gated", GatedSAE, GatedSAEConfig(d_in=24, d_sae=96)),
             ("jumprelu", JumpReLUSAE, JumpReLUSAEConfig(d_in=24, d_sae=96)),
             ("jumprelu-nobdec", JumpReLUSAE, JumpReLUSAEConfig(d_in=24, d_sae=96, apply_b_dec_to_input=False))]
    for name, cls, cfg in cases:
        sae = cls(cfg)
        with torch.no_grad():
            for pname, p in sae.named_parameters():
                p.copy_(torch.randn_like(p) * 0.3)
                if pname == "threshold": p.abs_().add_(0.01)
        d = root + "/" + name
        sae.save_model(d)
        x = torch.randn(16, 24)
        with torch.no_grad():
            f = sae.encode(x); xhat = sae.decode(f)
        save_file({"x": x.contiguous(), "f": f.contiguous(), "xhat": xhat.contiguous()}, d + "/io.safetensors")
        print(name)
    """
}

@Suite struct SAELensCompatibilityTests {
    @Test(.enabled(if: SAELensPython.available, "needs a Python with sae_lens (set SAE_LENS_PYTHON)"))
    func saeLensLoadsOurFilesAndAgrees() throws {
        let root = temporaryDirectory("saelens")
        defer { try? FileManager.default.removeItem(atPath: root) }
        var dirs: [String] = []
        for arch in Architecture.allCases {
            var rng = Xoshiro256(seed: 21)
            var sae = try SAE(config: SAEConfig(architecture: arch, dIn: 24, dSAE: 96, k: 6), rng: &rng)
            for i in 0..<sae.layout.count where !sae.layout.log_threshold.contains(i) { sae.params[i] += 0.05 * rng.nextGaussian() }
            for i in sae.layout.log_threshold { sae.params[i] = Foundation.log(0.05 + 0.2 * rng.nextFloat()) }
            sae.threshold = 0.1
            let x = Tensor.randomNormal(shape: [16, 24], rng: &rng)
            let f = try sae.encode(x), xhat = try sae.decode(f)
            #expect(f.storage.contains { $0 > 0 }, "\(arch): no feature fires, the comparison would be weak")
            let dir = root + "/" + arch.rawValue
            try sae.saveSAELens(to: dir, metadata: SAELensMetadata(hookName: "blocks.1.hook_resid_post", contextSize: 256))
            try writeSafetensors([("x", x), ("f", f), ("xhat", xhat)], to: dir + "/io.safetensors")
            dirs.append(dir)
        }
        let (status, output) = SAELensPython.run(["-c", SAELensPython.check] + dirs)
        #expect(status == 0, "\(output)")
    }

    /// SAEs written by SAELens itself load here and give SAELens's features and reconstructions.
    @Test(.enabled(if: SAELensPython.available, "needs a Python with sae_lens (set SAE_LENS_PYTHON)"))
    func weLoadFilesWrittenBySAELens() throws {
        let root = temporaryDirectory("fromsaelens")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (status, output) = SAELensPython.run(["-c", SAELensPython.write, root])
        try #require(status == 0, "\(output)")
        for name in ["topk", "standard", "gated", "jumprelu", "jumprelu-nobdec"] {
            let dir = root + "/" + name
            let sae = try SAE.loadSAELens(from: dir)
            let io = try SafetensorsFile(path: dir + "/io.safetensors")
            let f = try sae.encode(io.tensor("x"))
            #expect(f.storage.contains { $0 > 0 }, "\(name): no feature fires")
            #expect(f.maxAbsDifference(try io.tensor("f")) <= 1e-5, "\(name) features")
            #expect(try sae.decode(f).maxAbsDifference(io.tensor("xhat")) <= 1e-5, "\(name) reconstruction")
        }
    }
}
