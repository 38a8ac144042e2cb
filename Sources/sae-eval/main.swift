import Analysis
import ArgumentParser
import DistributedMPI
import ExitStatus
import Formats
import Foundation
import Nanochat
import SAE
import Training

// `sae-eval --sae OUT/<hook> --model M --tokenizer T --data D [--tokens N] [--json]` (DESIGN 4),
// also under mpirun (ranks split the rows; rank 0 prints). `--token-file F` evaluates exactly the
// rows of F (e.g. reference/forward.safetensors, whose per-token loss ce_clean then reproduces).

struct SAEEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sae-eval", abstract: "Evaluate an SAE: reconstruction, sparsity and CE-loss metrics on held-out data.")

    @Option(help: "SAE directory (ours or SAELens format).") var sae: String
    @Option(help: "model_*.pt or checkpoint dir.") var model: String
    @Option(help: "tokenizer.pkl (default: the base dir's).") var tokenizer: String?
    @Option(help: "Data: parquet dir (its validation shard), .txt/.jsonl file or dir.") var data: String?
    @Option(help: "Token file (.json rows of ids, or .safetensors with tokens [and targets]) instead of --data.") var tokenFile: String?
    @Option(help: "Tokens to evaluate from --data (default 65536).") var tokens: Int?
    @Option(help: "Tokens per row of --data (default and maximum: the model's sequence_len).") var context: Int?
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        if (data == nil) == (tokenFile == nil) { throw ValidationError("give exactly one of --data and --token-file") }
        if let problem = rowOptionsProblem(tokenFile: tokenFile, tokens: tokens, context: context) { throw ValidationError(problem) }
    }
}

func fail(_ message: String, code: Int32, comm: MPICommunicator) -> Never {
    if comm.size > 1 {
        if comm.rank != 0 { Thread.sleep(forTimeInterval: 2) }
        comm.abort("sae-eval: \(message)", code: code)
    }
    FileHandle.standardError.write(Data("sae-eval: \(message)\n".utf8))
    comm.finalize()
    fflush(nil)
    _exit(code)
}

func main() {
    let command: SAEEval
    do { command = try SAEEval.parse(Array(CommandLine.arguments.dropFirst())) } catch {
        if SAEEval.exitCode(for: error) == .success { print(SAEEval.fullMessage(for: error)); exit(0) }
        let line = SAEEval.fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
        FileHandle.standardError.write(Data("sae-eval: \(line)\n".utf8))
        exit(2)
    }
    let comm = MPICommunicator.start()
    do {
        let setup = try SAEOnModel(saeDirectory: command.sae, model: command.model, tokenizer: command.tokenizer)
        let (nanochat, tok, sae, hookName) = (setup.model, setup.tokenizer, setup.sae, setup.hook.name)
        let rows = try setup.rows(tokenFile: command.tokenFile, data: command.data, context: command.context, count: command.tokens ?? 65536)
        let metrics = try evaluateSAE(sae, hook: setup.hook, model: nanochat, rows: rows.share(rank: comm.rank, size: comm.size),
                                      bos: try tok.bos, comm: comm)
        if comm.isRoot {
            if command.json {
                var out: [String: Any] = metrics
                out["tokens"] = Int(metrics["tokens"]!)
                let data = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print("\(hookName), \(command.sae), \(Int(metrics["tokens"]!)) tokens")
                for key in ["fvu", "explained_variance", "mse", "l0", "l1", "dead_fraction", "dense_fraction",
                            "ce_clean", "ce_sae", "ce_zero", "ce_loss_recovered", "kl"] {
                    print("  " + key.padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: "%.6g", metrics[key]!))
                }
            }
        }
        comm.finalize()
        fflush(nil)
        _exit(0)
    } catch {
        fail("\(error)", code: exitStatus(for: error), comm: comm)
    }
}

main()
