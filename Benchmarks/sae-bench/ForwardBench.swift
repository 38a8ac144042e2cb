import ArgumentParser
import Foundation
import Formats
import Parquet
import Nanochat
import Tensors

/// nanochat forward throughput: `sae-bench forward --model M --batch B --context T --json` prints
/// {"tokens_per_s": x} (DESIGN 4) plus the time, load time and time to the first forward.
/// `--random-d12` builds random weights of nanochat's d12 shape instead of loading a model
/// (the anchor is shared/tools/torch_nanochat.py bench-config with the same shape).
/// `--tokenizer` also measures tokenizer throughput on `--corpus` parquet shards (or on the
/// texts of the fixtures' tokenizer.json when no corpus is given).
struct ForwardBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward", abstract: "nanochat forward tokens/s (and tokenizer MB/s).")

    @Option(help: "A model_<step>.pt file or checkpoint dir.") var model: String?
    @Flag(help: "Random weights of the d12 shape (n_embd 768, 12 layers, 6 heads, vocab 32768).") var randomD12 = false
    @Option(help: "Sequences per forward pass.") var batch = 16
    @Option(help: "Tokens per sequence.") var context = 256
    @Option(help: "Timed repetitions (the median is kept).") var repeats = 5
    @Option(help: "OpenBLAS threads.") var threads: Int?
    @Option(help: "tokenizer.pkl: also measure tokenizer MB/s.") var tokenizer: String?
    @Option(parsing: .upToNextOption, help: "Parquet shards (column `text`) for the tokenizer measurement.")
    var corpus: [String] = []
    @Option(help: "Also time greedy decoding of this many tokens with the KV cache (batch 1).") var decode = 0
    @Flag(help: "Load by copying every tensor to private float32 memory (the path before mapping).") var copy = false
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        if let t = threads { BLAS.setThreads(t) }
        var result: [String: Any] = ["batch": batch, "context": context, "threads": BLAS.threads, "core": BLAS.coreName]
        let t0 = DispatchTime.now().uptimeNanoseconds
        let m: NanochatModel
        if randomD12 {
            m = try Self.randomModel(ModelConfig(sequenceLen: 2048, vocabSize: 32768, nLayer: 12, nHead: 6, nKVHead: 6,
                                                 nEmbd: 768, windowPattern: "SSSL"))
        } else {
            guard let model else { throw ValidationError("--model or --random-d12 is required") }
            let location = try ModelLocation.resolve(model: model)
            // --copy: the loading path before the weights were mapped (every tensor read into
            // private float32 memory), for before/after figures in one binary.
            m = copy ? try NanochatModel(config: ModelConfig(metaPath: location.metaPath),
                                         stateDict: loadTorchStateDict(path: location.modelPath), file: location.modelPath)
                     : try NanochatModel(location: location)
        }
        let loaded = DispatchTime.now().uptimeNanoseconds
        var rng = Xoshiro256(seed: 0)
        let tokens = (0..<batch).map { _ in (0..<context).map { _ in rng.nextInt(below: m.config.vocabSize) } }
        _ = try m.forward(tokens: tokens)
        let first = DispatchTime.now().uptimeNanoseconds
        var times: [Double] = []
        for _ in 0..<repeats {
            let s = DispatchTime.now().uptimeNanoseconds
            _ = try m.forward(tokens: tokens)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - s) * 1e-9)
        }
        times.sort()
        let median = times[times.count / 2]
        result["tokens_per_s"] = Double(batch * context) / median
        result["ms"] = median * 1e3
        result["gflops"] = m.flopsPerToken(context: context) * Double(batch * context) / median * 1e-9
        result["load_s"] = Double(loaded - t0) * 1e-9
        // Memory after the forwards: private (anonymous) vs mapped file pages, and the peak.
        let memory = ProcessMemory.now()
        for (key, kB) in [("rss_anon_mb", memory.anonKB), ("rss_file_mb", memory.fileKB), ("peak_rss_mb", memory.peakKB)] {
            result[key] = kB.map { Double($0) / 1024 }
        }
        result["converted_tensors"] = m.convertedTensors.count
        result["first_forward_s"] = Double(first - t0) * 1e-9
        if decode > 0 {
            // Prompt of up to 64 tokens, then `decode` steps of one token each.
            let prompt = Array(tokens[0].prefix(64))
            let s = bestSeconds(repeats: 2) { _ = try! m.generate(prompt: prompt, maxTokens: decode) }
            result["decode_tokens_per_s"] = Double(decode) / s
        }
        if let tokenizer {
            let (single, batched) = try tokenizerThroughput(tokenizer)
            result["tokenizer_mb_per_s"] = single
            result["tokenizer_batch_mb_per_s"] = batched
        }
        if json {
            printJSON(result)
        } else {
            for k in result.keys.sorted() { print("\(k): \(result[k]!)") }
        }
    }

    /// Tokenizer MB/s (UTF-8 bytes in) over the corpus, best of 2 passes after a warm-up: one
    /// text at a time on one thread, and `encode(batch:)` over all cores.
    func tokenizerThroughput(_ path: String) throws -> (Double, Double) {
        let tok = try Tokenizer(path: path)
        var texts: [String] = []
        if corpus.isEmpty {
            let ref = URL(fileURLWithPath: path).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("reference/tokenizer.json")
            struct Case: Decodable { let text: String }
            struct File: Decodable { let cases: [Case] }
            texts = try JSONDecoder().decode(File.self, from: Data(contentsOf: ref)).cases.map(\.text)
        } else {
            for p in corpus { texts += try ParquetFile(path: p).strings(column: "text").compactMap { $0 } }
        }
        let bytes = texts.reduce(0) { $0 + $1.utf8.count }
        let s = bestSeconds(repeats: 2) { for t in texts { _ = tok.encode(t) } }
        let b = bestSeconds(repeats: 2) { _ = tok.encode(batch: texts) }
        return (Double(bytes) / s / 1e6, Double(bytes) / b / 1e6)
    }

    /// Random weights for `c` in the `current` profile (as torch_nanochat.py bench-config).
    static func randomModel(_ c: ModelConfig) throws -> NanochatModel {
        var rng = Xoshiro256(seed: 0)
        var sd: [String: Tensor] = [:]
        for (name, shape) in ArchitectureProfile.current.expectedShapes(c).sorted(by: { $0.key < $1.key }) {
            sd[name] = Tensor(shape: shape, storage: randomWeights(name, shape, &rng))
        }
        return try NanochatModel(config: c, stateDict: sd, file: "random d12")
    }

    /// Random values for the `current` parameter `name`: matrices uniform with the std of
    /// 1/sqrt(fan in) (0.01 for lm_head and the gates), embeddings std 1; resid lambdas 1, x0 and
    /// smear lambdas 0, backout 0.2.
    static func randomWeights(_ name: String, _ shape: [Int], _ rng: inout Xoshiro256) -> [Float] {
        let n = shape.reduce(1, *)
        switch name {
        case "x0_lambdas", "smear_lambda": return [Float](repeating: 0, count: n)
        case "backout_lambda": return [Float](repeating: 0.2, count: n)
        default: break
        }
        guard shape.count == 2 else { return [Float](repeating: 1, count: n) }
        let std: Float = name.contains("wte") || name.contains("value_embeds") ? 1
            : name.contains("lm_head") || name.contains("gate") ? 0.01 : 1 / Float(shape[1]).squareRoot()
        return (0..<n).map { _ in (Float(rng.nextDouble()) * 2 - 1) * std * 1.7 }
    }
}
