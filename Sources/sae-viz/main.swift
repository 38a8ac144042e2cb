import Analysis
import ArgumentParser
import ExitStatus
import Foundation
import Nanochat
import SAE
import Training
import Visualization

// `sae-viz --sae OUT/<hook> --model M [--tokenizer T] --data D --out HTMLDIR [--tokens N] [--context C]
//  [--features N | --all] [--neuronpedia DIR]` (DESIGN 4): one pass over N tokens gathers every feature's
// top contexts, interval samples, activation histogram and density; the weights give its logit
// effects; static pages (and Neuronpedia batch files) are written. `--token-file F` reads exactly
// the rows of F, as sae-eval does. `sae-viz --run OUT` plots a training run's metrics.jsonl.
// Exit status: 0 done, 2 bad input (one line naming the flag, file or field), 1 a failure of the run.

struct SAEViz: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sae-viz",
        abstract: "Feature dashboards of an SAE (static HTML, Neuronpedia export), or plots of a training run.")

    @Option(help: "Training run directory: write loss/fvu/l0/dead_fraction.svg from its metrics.jsonl (nothing else needed).") var run: String?
    @Option(help: "SAE directory (ours or SAELens format).") var sae: String?
    @Option(help: "model_*.pt or checkpoint dir.") var model: String?
    @Option(help: "tokenizer.pkl (default: the base dir's).") var tokenizer: String?
    @Option(help: "Data: parquet dir (its validation shard), .txt/.jsonl file or dir.") var data: String?
    @Option(help: "Token file (.json rows of ids, or .safetensors with tokens) instead of --data.") var tokenFile: String?
    @Option(help: "Output directory of the pages (index.html, features/<f>.html).") var out: String?
    @Option(help: "Tokens to read from --data (a count like 262144, 200k or 1M; default 262144).",
            transform: { text in
                guard let n = parseCount(text) else { throw ValidationError("expected a count like 65536, 200k or 1M") }
                return n
            }) var tokens: Int?
    @Option(help: "Tokens per row of --data (default and maximum: the model's sequence_len).") var context: Int?
    @Option(help: "Pages for at most this many features that fired, by index (default 1000).") var features: Int?
    @Flag(help: "A page for every feature, dead ones too.") var all = false
    @Option(help: "Also write Neuronpedia batch-<i>.json files (128 features each) into this directory.") var neuronpedia: String?
    @Option(help: "Seed of the interval sampling (default 0).") var seed: UInt64?

    func validate() throws {
        if let run {
            // Every flag of the dashboards is refused here rather than ignored.
            let others: [(String, Any?)] = [("--sae", sae), ("--model", model), ("--tokenizer", tokenizer), ("--data", data),
                                           ("--token-file", tokenFile), ("--out", out), ("--neuronpedia", neuronpedia), ("--features", features),
                                           ("--tokens", tokens), ("--context", context), ("--seed", seed), ("--all", all ? true : nil)]
            if let extra = others.first(where: { $0.1 != nil }) {
                throw ValidationError("--run \(run): plots a training run on its own; leave out \(extra.0)")
            }
            return
        }
        guard sae != nil else { throw ValidationError("--sae: required (an SAE directory OUT/<hook>), or --run OUT for training plots") }
        guard model != nil else { throw ValidationError("--model: required (model_*.pt or a checkpoint dir)") }
        guard out != nil else { throw ValidationError("--out: required (the directory for the pages)") }
        if (data == nil) == (tokenFile == nil) { throw ValidationError("give exactly one of --data and --token-file") }
        if let problem = rowOptionsProblem(tokenFile: tokenFile, tokens: tokens, context: context) { throw ValidationError(problem) }
        if let n = features, n < 1 { throw ValidationError("--features: expected a positive count, got \(n)") }
        if all && features != nil { throw ValidationError("--features and --all: give one of them") }
    }
}

/// Ends with one line on stderr.
func fail(_ message: String, code: Int32) -> Never {
    FileHandle.standardError.write(Data("sae-viz: \(message)\n".utf8))
    exit(code)
}

/// Runs `body`, turning an error into bad input about an output flag (an unwritable directory).
func writing(_ flag: String, _ path: String, _ body: () throws -> Void) throws {
    do { try body() } catch { throw ConfigError("\(flag) \(path)", "cannot write there: \(error.localizedDescription)") }
}

/// `model_name` of the SAE's cfg.json metadata, for the Neuronpedia model_id ("nanochat" when the
/// metadata has none). A cfg.json that cannot be read is an error, not the default name.
func modelName(saeDirectory: String) throws -> String {
    let path = URL(fileURLWithPath: saeDirectory).appendingPathComponent("cfg.json").path
    guard let data = FileManager.default.contents(atPath: path),
          let cfg = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
        throw ConfigError(path, "cannot read it as a JSON object")
    }
    guard let metadata = cfg["metadata"] else { return "nanochat" }
    guard let object = metadata as? [String: Any] else { throw ConfigError(path, "field metadata: expected an object") }
    guard let name = object["model_name"] else { return "nanochat" }
    guard let text = name as? String else { throw ConfigError(path, "field metadata.model_name: expected a string") }
    return text
}

func dashboards(_ command: SAEViz) throws {
    let t0 = Date()
    let saeDir = command.sae!
    // Output directories first: a file in the way is reported before minutes of work, not after.
    try checkOutputDirectory(command.out!, what: "--out")
    if let dir = command.neuronpedia { try checkOutputDirectory(dir, what: "--neuronpedia") }
    let setup = try SAEOnModel(saeDirectory: saeDir, model: command.model!, tokenizer: command.tokenizer)
    let (nanochat, tok, sae, hook, hookName) = (setup.model, setup.tokenizer, setup.sae, setup.hook, setup.hook.name)
    let rows = try setup.rows(tokenFile: command.tokenFile, data: command.data, context: command.context, count: command.tokens ?? 262_144).tokens
    let bos = try tok.bos

    // One pass: forward to the hook, encode, accumulate.
    var settings = ScanSettings()
    settings.seed = command.seed ?? 0
    let total = rows.reduce(0) { $0 + $1.count }
    var progress = ProgressLine()
    let tScan = Date()
    let scan: FeatureScan
    do {
        scan = try scanFeatures(sae: sae, hook: hook, model: nanochat, rows: rows, bos: bos, settings: settings) { done in
            progress.update(step: done, totalSteps: total, tokens: done, totalTokens: total,
                            tokensPerSecond: Double(done) / max(Date().timeIntervalSince(tScan), 1e-9), force: done == total)
        }
    } catch let e as SAEError {
        throw RunFailure("encoding the activations of \(hookName): \(e)")
    } catch let e as NonFiniteActivation {
        throw ConfigError(saeDir, e.description)
    }
    let scanSeconds = Date().timeIntervalSince(tScan)

    // Logit effects of the selected features, then the pages.
    let selected = scan.selectFeatures(limit: command.features ?? 1000, all: command.all)
    guard let W_U = nanochat.parameter("lm_head.weight") else { throw RunFailure("the model has no lm_head.weight") }
    let effects = logitEffects(sae: sae, unembedding: W_U, vocabSize: nanochat.config.vocabSize, features: selected)
    let dashboards = selected.map { scan.dashboard($0, logits: effects[$0]!) }
    let fired = scan.features.filter { $0.fired > 0 }.count
    let info = DashboardInfo(hook: hookName, saePath: saeDir, dSAE: sae.config.dSAE, tokens: scan.tokens, firedFeatures: fired)
    let texts = TokenTexts(count: nanochat.config.vocabSize) { tok.tokenText($0) }
    try writing("--out", command.out!) {
        try writeDashboard(to: command.out!, features: dashboards, info: info, bos: bos, texts: texts)
    }
    if let dir = command.neuronpedia {
        let source = NeuronpediaSource(modelID: try modelName(saeDirectory: saeDir), layer: hook.layer, saeSet: hookName,
                                       dataset: command.data ?? command.tokenFile!, promptsTotal: rows.count,
                                       tokensInPrompt: rows.first?.count ?? 0)
        try writing("--neuronpedia", dir) {
            try writeNeuronpedia(to: dir, features: dashboards, source: source, bos: bos, texts: texts)
        }
    }
    let s = scan.seconds
    print("sae-viz: \(scan.tokens) tokens, \(fired) of \(sae.config.dSAE) features fired, \(dashboards.count) pages in \(command.out!)"
        + String(format: " (%.1f s; pass %.1f s = %.0f tok/s: forward %.1f s, encode %.1f s, accumulate %.1f s)",
                 Date().timeIntervalSince(t0), scanSeconds, Double(total) / max(scanSeconds, 1e-9), s.forward, s.encode, s.accumulate))
}

func main() {
    let command: SAEViz
    do { command = try SAEViz.parse(Array(CommandLine.arguments.dropFirst())) } catch {
        if SAEViz.exitCode(for: error) == .success { print(SAEViz.fullMessage(for: error)); exit(0) }
        let line = SAEViz.fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
        fail(line, code: 2)
    }
    do {
        if let run = command.run {
            for path in try writeTrainingPlots(run: run) { print(path) }
        } else {
            try dashboards(command)
        }
        fflush(nil)
        _exit(0)
    } catch {
        fail("\(error)", code: exitStatus(for: error))
    }
}

main()
