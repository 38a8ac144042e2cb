import ArgumentParser
import ExitStatus
import Formats
import Foundation
import Nanochat
import Tensors

/// `sae-run forward --model M --tokenizer T --tokens FILE --hooks H1,H2|all --out F.safetensors`
/// (DESIGN 4): logits [B,T,V] and one [B,T,d] tensor per hook.
struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward", abstract: "Forward pass over token ids; writes logits and hook activations.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Token ids: .json (array of equal-length id arrays) or .safetensors (tensor `tokens` [B,T]).")
    var tokens: String
    @Option(help: "Hook names, comma-separated (blocks.<L>.hook_resid_pre|attn_out|resid_mid|mlp_out|resid_post), or all.")
    var hooks: String?
    @Option(help: "Output .safetensors file.")
    var out: String
    @Flag(help: "Do not compute or write logits (stops after the deepest hook).")
    var noLogits = false
    @Option(help: "Rows per forward pass (bounds memory).")
    var batch = 16

    func validate() throws {
        guard batch >= 1 else { throw BadInput("--batch: expected a positive integer, got \(batch)") }
        // The output is checked before the model is loaded: a path the user can fix is exit 2.
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isDir), isDir.boolValue {
            throw BadInput("--out \(out): is a directory; expected a .safetensors file to write")
        }
        let parent = URL(fileURLWithPath: out).deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDir), isDir.boolValue, access(parent, W_OK | X_OK) == 0 else {
            throw BadInput("--out \(out): its directory \(parent) does not exist or cannot be written")
        }
    }

    func run() throws {
        let (model, location, _) = try modelOptions.load(needTokenizer: false)
        let rows = try Self.readTokens(tokens)
        let points = try hooks.map { try HookPoint.parseList($0, nLayer: model.config.nLayer) } ?? []
        if noLogits && points.isEmpty { throw BadInput("--hooks: nothing to write with --no-logits; name at least one hook") }
        var logits: [Float] = [], acts: [HookPoint: [Float]] = [:]
        var start = 0
        while start < rows.count {
            let chunk = Array(rows[start ..< min(rows.count, start + batch)])
            let o: ForwardOutput
            do { o = try model.forward(tokens: chunk, hooks: points, logits: !noLogits) } catch let e as NanochatError {
                if case .invalidTokens = e { throw BadInput("\(tokens): \(e)") }
                throw e
            }
            if let l = o.logits { logits += l.storage }
            for p in points { acts[p, default: []] += o.activations[p]!.storage }
            start += chunk.count
        }
        let b = rows.count, t = rows[0].count
        var tensors: [(name: String, tensor: Tensor)] = []
        if !noLogits { tensors.append(("logits", Tensor(shape: [b, t, model.config.vocabSize], storage: logits))) }
        for p in points { tensors.append((p.name, Tensor(shape: [b, t, model.config.nEmbd], storage: acts[p]!))) }
        do {
            try writeSafetensors(tensors, metadata: ["model": location.modelPath, "step": String(location.step),
                                                     "profile": model.profile.name], to: out)
        } catch {
            throw RunFailure("\(out): cannot write output: \(error)")
        }
    }

    /// Reads B rows of token ids from .json or .safetensors.
    static func readTokens(_ path: String) throws -> [[Int]] {
        if path.hasSuffix(".safetensors") {
            let f = try SafetensorsFile(path: path)
            guard f.names.contains("tokens") else { throw BadInput("\(path): no tensor \"tokens\" (expected int [B,T])") }
            let shape = try f.shape("tokens")
            guard shape.count == 2, shape[0] > 0, shape[1] > 0 else {
                throw BadInput("\(path): tensor \"tokens\" has shape \(shape); expected [B,T]")
            }
            let flat = try f.int64s("tokens")
            return (0..<shape[0]).map { r in flat[r * shape[1] ..< (r + 1) * shape[1]].map { Int($0) } }
        }
        guard path.hasSuffix(".json") else { throw BadInput("--tokens: \(path): expected a .json or .safetensors file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw BadInput("--tokens: \(path): cannot read the file") }
        guard let rows = try? JSONDecoder().decode([[Int]].self, from: data), !rows.isEmpty, !rows[0].isEmpty else {
            throw BadInput("\(path): expected a JSON array of non-empty arrays of token ids")
        }
        return rows
    }
}
