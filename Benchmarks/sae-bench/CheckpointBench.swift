import ArgumentParser
import Foundation
import Formats
import Nanochat
import Tensors

/// `sae-bench checkpoint --shape d4|d12|d20|d26|d32 [--vocab V] --out DIR` (DESIGN 5): a random-weight
/// checkpoint of that nanochat shape in nanochat's own format, no Python: DIR/model_<step>.pt (torch
/// zip: `wte` and value embeddings bf16, the rest float32, as nanochat saves from GPUs) and
/// DIR/meta_<step>.json. One tensor in memory at a time, so a d32 checkpoint needs ~300 MB.
/// `--all-bf16` stores every matrix in bf16 (a checkpoint saved all in bf16), so that loading has
/// tensors to convert.
struct CheckpointBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint", abstract: "Write a random nanochat checkpoint of a given shape.")

    @Option(help: "d4, d12, d20, d26 or d32 (nanochat's depth).") var shape: String
    @Option(help: "Vocabulary size.") var vocab = 32768
    @Option(help: "Step in the file names.") var step = 0
    @Option(help: "Seed of the weights.") var seed: UInt64 = 1
    @Flag(help: "Every 2-D tensor in bf16, not only the embeddings.") var allBf16 = false
    @Option(help: "Output directory (created).") var out: String

    func validate() throws {
        guard let d = Int(shape.dropFirst()), shape.hasPrefix("d"), [4, 12, 20, 26, 32].contains(d) else {
            throw ValidationError("--shape: expected d4, d12, d20, d26 or d32, got \(shape)")
        }
        guard vocab >= 300 && vocab <= 1 << 20 else { throw ValidationError("--vocab: expected 300...\(1 << 20), got \(vocab)") }
        guard step >= 0 else { throw ValidationError("--step: expected >= 0") }
    }

    func run() throws {
        let started = Date()
        let config = ModelConfig.nanochatShape(depth: Int(shape.dropFirst())!, vocabSize: vocab)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let name = String(format: "model_%06d", step)
        let specs = ArchitectureProfile.current.expectedShapes(config).sorted { $0.key < $1.key }.map { key, shape in
            let bf16 = key == "transformer.wte.weight" || key.hasPrefix("value_embeds.") || (allBf16 && shape.count == 2)
            return TorchTensorSpec(name: key, dtype: bf16 ? .bf16 : .f32, shape: shape)
        }
        var rng = Xoshiro256(seed: seed)
        let path = (out as NSString).appendingPathComponent(name + ".pt")
        try writeTorchCheckpoint(path: path, archive: name, tensors: specs) { i, bytes in
            let values = ForwardBench.randomWeights(specs[i].name, specs[i].shape, &rng)
            if specs[i].dtype == .f32 {
                values.withUnsafeBytes { bytes.copyMemory(from: $0) }
            } else {
                let b = bytes.bindMemory(to: UInt16.self)
                for (j, v) in values.enumerated() { b[j] = UInt16(v.bitPattern >> 16).littleEndian }   // truncation: any bf16 will do
            }
        }
        let meta: [String: Any] = [
            "step": step,
            "model_config": ["sequence_len": config.sequenceLen, "vocab_size": config.vocabSize, "n_layer": config.nLayer,
                             "n_head": config.nHead, "n_kv_head": config.nKVHead, "n_embd": config.nEmbd,
                             "window_pattern": config.windowPattern],
            "user_config": ["depth": config.nLayer, "note": "random weights written by sae-bench checkpoint"],
        ]
        try JSONSerialization.data(withJSONObject: meta, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: (out as NSString).appendingPathComponent(String(format: "meta_%06d.json", step))))
        let bytes = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let params = specs.reduce(0) { $0 + $1.count }
        print(String(format: "%@: %.2f GB, %ld parameters (%@, n_embd %ld, %ld layers), %.1f s", path, Double(bytes) / 1e9,
                     params, shape, config.nEmbd, config.nLayer, Date().timeIntervalSince(started)))
    }
}
