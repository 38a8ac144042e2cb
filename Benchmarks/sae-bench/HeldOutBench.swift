import ArgumentParser
import Formats
import Foundation
import SAE
import Tensors

/// Quality of a trained SAE on held-out activations: FVU = Σ‖x − x̂‖² / Σ‖x − mean(x)‖² and L0 on the
/// hook activations stored in a reference file (e.g. the fixture's `reference/forward.safetensors`,
/// computed by nanochat itself), BOS positions left out as in training.
struct HeldOutBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heldout", abstract: "FVU and L0 of an SAE on reference activations.")

    @Option(help: "SAE directory (SAELens format).") var sae: String
    @Option(help: "safetensors with the hook's activations [B,T,d] and `tokens` [B,T].") var reference: String
    @Option(help: "Token id whose positions are left out (nanochat's <|bos|>; -1 keeps all).") var bos = 4087
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let model = try SAE.loadSAELens(from: sae)
        guard let hook = SAE.saeLensHookName(directory: sae) else {
            throw ValidationError("\(sae)/cfg.json: no metadata.hook_name")
        }
        let file = try SafetensorsFile(path: reference)
        let acts = try file.tensor(hook), tokens = try file.int64s("tokens")
        let d = acts.columns
        let keep = (0..<acts.rows).filter { tokens[$0] != Int64(bos) }
        let x = Tensor(shape: [keep.count, d], storage: keep.flatMap { acts.storage[$0 * d ..< ($0 + 1) * d] })
        let f = try model.encode(x)
        let xhat = try model.decode(f)
        var mean = [Double](repeating: 0, count: d)
        for r in 0..<x.rows { for i in 0..<d { mean[i] += Double(x[r, i]) / Double(x.rows) } }
        var sse = 0.0, total = 0.0
        for r in 0..<x.rows {
            for i in 0..<d {
                let e = Double(x[r, i] - xhat[r, i]), v = Double(x[r, i]) - mean[i]
                sse += e * e; total += v * v
            }
        }
        let l0 = Double(f.storage.filter { $0 > 0 }.count) / Double(x.rows)
        if json {
            printJSON(["fvu": sse / total, "explained_variance": 1 - sse / total, "l0": l0, "tokens": x.rows, "hook": hook])
        } else {
            print(String(format: "%@ on %@: FVU %.4f, L0 %.1f over %d tokens", hook, reference, sse / total, l0, x.rows))
        }
    }
}
