import ArgumentParser
import Foundation
import Nanochat
import Runtime

/// `sae-run features --model M --tokenizer T --sae DIR --prompt S [--top N] [--json]` (DESIGN 4):
/// per token of the prompt (BOS is prepended and not listed), the SAE's strongest features.
/// --json prints [{"token": "...", "id": n, "features": [[f, a], ...]}].
struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features", abstract: "The top SAE features of every token of a prompt.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "SAE directory (ours or SAELens format); its hook comes from cfg.json.")
    var sae: String
    @Option(help: "Prompt text (<|bos|> is prepended).")
    var prompt: String
    @Option(help: "Features listed per token.")
    var top: Int = 10
    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        if top < 1 { throw BadInput("--top: expected a positive integer, got \(top)") }
    }

    func run() throws {
        let (model, _, tokenizer) = try modelOptions.load(needTokenizer: true)
        let tok = tokenizer!
        let runtime = SAERuntime(model: model, tokenizer: tok)
        try runtime.attach(AttachedSAE(directory: sae, model: model))
        runtime.topN = top
        let ids = [try tok.bos] + tok.encode(prompt)
        _ = try runtime.forward(tokens: ids)
        let rows = runtime.trace.filter { $0.position > 0 }.sorted { $0.position < $1.position }
        if json {
            let out: [[String: Any]] = rows.map { r in
                ["token": tok.decode([ids[r.position]]), "id": ids[r.position],
                 "features": r.features.map { [$0.0, Double($0.1)] as [Any] }]
            }
            let data = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for r in rows {
                let token = tok.decode([ids[r.position]]).debugDescription
                let feats = r.features.map { String(format: "%d:%.2f", $0.0, $0.1) }.joined(separator: " ")
                print(String(format: "%4d %-16@ err %.2f  %@", r.position, token, r.errorNorm, feats))
            }
        }
    }
}
