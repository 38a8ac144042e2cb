import ArgumentParser
import Foundation
import Nanochat
import Tensors

/// How a subcommand names its nanochat model and tokenizer, like nanochat's scripts.
struct ModelOptions: ParsableArguments {
    @Option(help: "A model_<step>.pt file or a checkpoint dir (largest step unless --step).")
    var model: String?
    @Option(help: "nanochat base dir (default $NANOCHAT_BASE_DIR or ~/.cache/nanochat), used without --model.")
    var baseDir: String?
    @Option(help: "Checkpoint tag under <base dir>/base_checkpoints (default: the largest d<N>).")
    var tag: String?
    @Option(help: "Checkpoint step (default: the largest).")
    var step: Int?
    @Option(help: "tokenizer.pkl or nanochat's tokenizer folder (default: <base dir>/tokenizer when the model sits in a base dir).")
    var tokenizer: String?
    @Option(help: "Architecture profile (current, v0); default: detected from the state dict.")
    var archProfile: String?
    @Option(help: "Threads for OpenBLAS.")
    var threads: Int?

    func validate() throws {
        if let t = threads, t < 1 { throw BadInput("--threads: expected a positive integer, got \(t)") }
        if let s = step, s < 0 { throw BadInput("--step: expected a non-negative integer, got \(s)") }
    }

    /// The model, its location, and the tokenizer (checked against the model's vocabulary before
    /// the weights load) when `needTokenizer` or one is available; `check` runs before the weights too.
    func load(needTokenizer: Bool, check: (ModelConfig) throws -> Void = { _ in }) throws -> (NanochatModel, ModelLocation, Tokenizer?) {
        if let t = threads { BLAS.setThreads(t) }
        let location = try ModelLocation.resolve(model: model, baseDir: baseDir, tag: tag, step: step)
        let profile = try archProfile.map { try ArchitectureProfile.named($0) }
        let loaded = try ModelAndTokenizer.load(location, tokenizer: tokenizer, needTokenizer: needTokenizer,
                                                profile: profile, check: check)
        return (loaded.model, location, loaded.tokenizer)
    }
}
