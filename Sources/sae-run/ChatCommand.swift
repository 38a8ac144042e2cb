import ArgumentParser
import Foundation
import Nanochat
import Runtime

/// `sae-run chat`: an interactive terminal session. Each line of text continues the conversation
/// (the model's tokens stream as they come); commands:
///   /steer HOOK:FEATURE:VALUE[:mode][:scope]   add an intervention     /unsteer   remove them all
///   /features [N]   top features of the tokens of the last turn        /reset     forget the context
///   /help           this list                                           /quit      leave
struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat", abstract: "Interactive generation with SAE tracking and steering.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .customLong("sae"), help: "SAE directory to attach (repeatable).")
    var saes: [String] = []
    @Option(name: .customLong("steer"), help: "Initial interventions (repeatable), as /steer takes them.")
    var steers: [String] = []
    @Option(help: "Tokens generated per turn.")
    var maxTokens = 48
    @Option(help: "Sampling temperature; 0 = greedy.")
    var temperature: Float = 0.8
    @Option(help: "Seed of the sampler.")
    var seed: UInt64 = 42

    static let help = """
        commands: /steer HOOK:FEATURE:VALUE[:add|clamp|scale][:prompt|gen|all]  /unsteer  /features [N]  /reset  /help  /quit
        """

    func validate() throws {
        if maxTokens < 1 { throw BadInput("--max-tokens: expected a positive integer, got \(maxTokens)") }
        if !(temperature >= 0) || !temperature.isFinite { throw BadInput("--temperature: expected a finite number ≥ 0") }
        for s in steers { _ = try Steering(spec: s) }
    }

    func run() throws {
        let (model, _, tokenizer) = try modelOptions.load(needTokenizer: true)
        let tok = tokenizer!
        let runtime = SAERuntime(model: model, tokenizer: tok)
        for dir in saes { try runtime.attach(AttachedSAE(directory: dir, model: model)) }
        for s in steers { try runtime.steer(Steering(spec: s)) }
        runtime.tracking = !saes.isEmpty
        var history = [try tok.bos]
        var turn = 0
        var lastTurn: (start: Int, tokens: [Int]) = (0, [])
        print("sae-run chat: \(saes.count) SAE(s) attached. \(Self.help)")
        while true {
            print("> ", terminator: "")
            fflush(nil)
            guard let line = readLine() else { break }
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            if text.hasPrefix("/") {
                let parts = text.split(separator: " ", maxSplits: 1).map(String.init)
                switch parts[0] {
                case "/quit", "/exit": return
                case "/help": print(Self.help)
                case "/reset":
                    history = [try tok.bos]; lastTurn = (0, []); print("(context cleared)")
                case "/unsteer":
                    runtime.interventions = []; print("(no interventions)")
                case "/steer":
                    do {
                        try runtime.steer(Steering(spec: parts.count > 1 ? parts[1] : ""))
                        print("(steering: \(runtime.interventions.map { "\($0.hook):\($0.feature):\($0.value):\($0.mode.rawValue):\($0.scope.rawValue)" }.joined(separator: ", ")))")
                    } catch { print("error: \(error)") }
                case "/features":
                    let n = parts.count > 1 ? Int(parts[1]) ?? 5 : 5
                    let rows = runtime.trace.filter { $0.position >= lastTurn.start && $0.position > 0 }
                    if rows.isEmpty { print("(no features: attach an SAE with --sae and say something)") }
                    for r in rows.sorted(by: { ($0.position, $0.sae) < ($1.position, $1.sae) }) {
                        let id = lastTurn.tokens[r.position - lastTurn.start]
                        let feats = r.features.prefix(n).map { String(format: "%d:%.2f", $0.0, $0.1) }.joined(separator: " ")
                        print(String(format: "%4d %-16@ %@", r.position, tok.decode([id]).debugDescription, feats))
                    }
                default: print("unknown command \(parts[0]); \(Self.help)")
                }
                continue
            }
            let prompt = history + tok.encode(text + "\n")
            turn += 1
            var pending: [Int] = []
            let out = try runtime.generate(prompt: prompt, maxTokens: maxTokens,
                                           sampling: Sampling(temperature: temperature, seed: seed &+ UInt64(turn)),
                                           onToken: { id in
                pending.append(id)
                let s = tok.decode(pending)
                if !s.hasSuffix("\u{FFFD}") { FileHandle.standardOutput.write(Data(s.utf8)); pending = [] }
            })
            if !pending.isEmpty { FileHandle.standardOutput.write(Data(tok.decode(pending).utf8)) }
            print()
            lastTurn = (history.count, Array((prompt + out)[history.count...]))
            history = prompt + out
            if history.count > model.config.sequenceLen * 4 {
                history = [try tok.bos] + Array(history.suffix(model.config.sequenceLen))
                print("(context trimmed to the last \(model.config.sequenceLen) tokens)")
            }
        }
    }
}
