import ArgumentParser
import Foundation
import Nanochat
import Runtime

/// `sae-run generate --model M --tokenizer T --prompt S --max-tokens N [--temperature 0] [--json]`
/// (DESIGN 4): BOS is prepended; greedy at temperature 0; --json prints {"tokens", "text"} of the
/// generated tokens only. `--sae DIR` attaches SAEs; `--steer HOOK:FEATURE:VALUE[:add|clamp|scale]
/// [:prompt|gen|all]` steers through their features (Runtime/Steering.swift).
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Generate text after a prompt with the KV cache.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Prompt text (<|bos|> is prepended).")
    var prompt: String
    @Option(help: "Number of tokens to generate.")
    var maxTokens: Int
    @Option(help: "Sampling temperature; 0 = greedy.")
    var temperature: Float = 0
    @Option(help: "Sample only among the k most likely tokens.")
    var topK: Int?
    @Option(help: "Seed of the sampler.")
    var seed: UInt64 = 42
    @Flag(help: "Print {\"tokens\": [...], \"text\": \"...\"} instead of the text.")
    var json = false
    @Option(name: .customLong("sae"), help: "SAE directory to attach (repeatable); its hook comes from cfg.json.")
    var saes: [String] = []
    @Option(name: .customLong("steer"), help: "HOOK:FEATURE:VALUE[:add|clamp|scale][:prompt|gen|all] (repeatable).")
    var steers: [String] = []

    func validate() throws {
        if maxTokens < 0 { throw BadInput("--max-tokens: expected a non-negative integer, got \(maxTokens)") }
        if !(temperature >= 0) || !temperature.isFinite { throw BadInput("--temperature: expected a finite number ≥ 0, got \(temperature)") }
        if let k = topK, k < 1 { throw BadInput("--top-k: expected a positive integer, got \(k)") }
        for s in steers { _ = try Steering(spec: s) }
        if !steers.isEmpty && saes.isEmpty { throw BadInput("--steer needs an SAE at its hook: add --sae DIR") }
    }

    func run() throws {
        let (model, _, tokenizer) = try modelOptions.load(needTokenizer: true)
        let tok = tokenizer!
        let ids = [try tok.bos] + tok.encode(prompt)
        let sampling = Sampling(temperature: temperature, topK: topK, seed: seed)
        let runtime = SAERuntime(model: model, tokenizer: tok)
        runtime.tracking = false
        for dir in saes { try runtime.attach(AttachedSAE(directory: dir, model: model)) }
        for s in steers { try runtime.steer(Steering(spec: s)) }
        if json {
            let out = try runtime.generate(prompt: ids, maxTokens: maxTokens, sampling: sampling)
            print(Self.json(tokens: out, text: tok.decode(out)))
        } else {
            // Stream the text as whole UTF-8 characters become available.
            var pending: [Int] = []
            _ = try runtime.generate(prompt: ids, maxTokens: maxTokens, sampling: sampling, onToken: { id in
                pending.append(id)
                let text = tok.decode(pending)
                if !text.hasSuffix("\u{FFFD}") {
                    FileHandle.standardOutput.write(Data(text.utf8))
                    pending = []
                }
            })
            if !pending.isEmpty { FileHandle.standardOutput.write(Data(tok.decode(pending).utf8)) }
            print()
        }
    }

    struct Output: Encodable { let tokens: [Int]; let text: String }

    static func json(tokens: [Int], text: String) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! e.encode(Output(tokens: tokens, text: text)), as: UTF8.self)
    }
}
