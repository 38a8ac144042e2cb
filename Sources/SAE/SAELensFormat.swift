import Foundation
import Formats
import Tensors

// The SAELens 6.x on-disk format (DESIGN 3): DIR/cfg.json, DIR/sae_weights.safetensors and
// DIR/sparsity.safetensors. On disk W_enc is [d, m] (we store its transpose) and jumprelu keeps θ
// itself, not log θ. Architecture names: relu ↔ "standard"; batchtopk is written as "jumprelu"
// with its learned threshold in every latent (so SAELens runs it as the inference rule it uses).

/// Provenance written into cfg.json's `metadata`.
public struct SAELensMetadata: Sendable, Equatable {
    public var hookName: String
    public var modelName: String
    public var contextSize: Int
    /// Our own provenance (nanochat checkpoint, step, tokens trained...), written as strings.
    public var extra: [String: String]
    public init(hookName: String, modelName: String = "nanochat", contextSize: Int = 0, extra: [String: String] = [:]) {
        self.hookName = hookName; self.modelName = modelName; self.contextSize = contextSize; self.extra = extra
    }
}

extension SAE {
    /// SAELens's architecture name for this SAE.
    public var saeLensArchitecture: String {
        switch config.architecture {
        case .topk: return "topk"
        case .relu: return "standard"
        case .gated: return "gated"
        case .jumprelu, .batchtopk: return "jumprelu"
        }
    }

    /// Writes DIR/cfg.json and DIR/sae_weights.safetensors (+ DIR/sparsity.safetensors when
    /// `firingFractions` [m] is given), folding the input scale `s` into the weights first.
    public func saveSAELens(to directory: String, metadata: SAELensMetadata, inputScale s: Float = 1,
                            firingFractions: [Double]? = nil) throws {
        let sae = s == 1 ? self : foldingInputScale(s)
        let d = config.dIn, m = config.dSAE, L = layout
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var W_enc = Tensor(shape: [d, m])                  // [d, m] = (our [m, d])ᵀ
        for j in 0..<m { for i in 0..<d { W_enc.storage[i * m + j] = sae.params[L.W_enc.lowerBound + j * d + i] } }
        var tensors: [(name: String, tensor: Tensor)] = [
            ("W_enc", W_enc), ("W_dec", sae.tensor(L.W_dec, shape: [m, d])), ("b_dec", sae.tensor(L.b_dec, shape: [d])),
        ]
        switch config.architecture {
        case .gated:
            tensors += [("b_gate", sae.tensor(L.b_gate, shape: [m])), ("r_mag", sae.tensor(L.r_mag, shape: [m])),
                        ("b_mag", sae.tensor(L.b_mag, shape: [m]))]
        case .jumprelu:
            tensors += [("b_enc", sae.tensor(L.b_enc, shape: [m])),
                        ("threshold", Tensor(shape: [m], storage: sae.params[L.log_threshold].map { Foundation.exp($0) }))]
        case .batchtopk:
            tensors += [("b_enc", sae.tensor(L.b_enc, shape: [m])), ("threshold", Tensor(shape: [m], repeating: threshold))]
        case .topk, .relu:
            tensors += [("b_enc", sae.tensor(L.b_enc, shape: [m]))]
        }
        try writeSafetensors(tensors, to: directory + "/sae_weights.safetensors")
        if let frac = firingFractions {
            guard frac.count == m else { throw SAEError.sizeMismatch(what: "firing fractions", expected: m, got: frac.count) }
            let sparsity = Tensor(shape: [m], storage: frac.map { Float(Foundation.log10($0 + 1e-10)) })
            try writeSafetensors([("sparsity", sparsity)], to: directory + "/sparsity.safetensors")
        }
        var meta: [String: Any] = ["sae_lens_version": "6.0.0", "hook_name": metadata.hookName,
                                   "model_name": metadata.modelName, "context_size": metadata.contextSize,
                                   "prepend_bos": true]
        for (k, v) in metadata.extra { meta[k] = v }
        var cfg: [String: Any] = [
            "architecture": saeLensArchitecture, "d_in": d, "d_sae": m, "dtype": "float32", "device": "cpu",
            "apply_b_dec_to_input": true, "normalize_activations": "none", "reshape_activations": "none",
            "metadata": meta,
        ]
        if config.architecture == .topk { cfg["k"] = config.k; cfg["rescale_acts_by_decoder_norm"] = false }
        let data = try JSONSerialization.data(withJSONObject: cfg, options: [.prettyPrinted, .sortedKeys])
        let tmp = directory + "/.cfg.json.tmp"
        try data.write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, directory + "/cfg.json") == 0 else {   // atomic: readers never see half a file
            throw FormatError.io(file: directory + "/cfg.json", detail: String(cString: strerror(errno)))
        }
    }

    /// The hook an SAE directory was trained on: cfg.json's `metadata.hook_name` (SAELens 6.x), or a
    /// top-level `hook_name` (older SAELens); nil if neither is there.
    public static func saeLensHookName(directory: String) -> String? {
        let url = URL(fileURLWithPath: directory).appendingPathComponent("cfg.json")
        guard let cfg = (try? JSONSerialization.jsonObject(with: Data(contentsOf: url))) as? [String: Any] else { return nil }
        return (cfg["metadata"] as? [String: Any])?["hook_name"] as? String ?? cfg["hook_name"] as? String
    }

    /// Reads an SAE in SAELens 6.x format (ours, or written by SAELens for topk, standard, gated and
    /// jumprelu). `apply_b_dec_to_input: false` is folded into the encoder biases so our x − b_dec
    /// convention gives the same pre-activations.
    public static func loadSAELens(from directory: String) throws -> SAE {
        let cfgPath = directory + "/cfg.json"
        let data: Data
        guard let contents = FileManager.default.contents(atPath: cfgPath) else {
            throw SAEError.unreadable(file: cfgPath, why: FileManager.default.fileExists(atPath: cfgPath)
                ? "cannot be read" : "no such file; an SAE directory holds cfg.json and sae_weights.safetensors (SAELens format)")
        }
        data = contents
        guard let cfg = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw SAEError.invalidCfg(file: cfgPath, key: "(file)", expected: "a JSON object")
        }
        func int(_ key: String) throws -> Int {
            guard let n = cfg[key] as? NSNumber, let v = Int(exactly: n.doubleValue), v > 0 else {
                throw SAEError.invalidCfg(file: cfgPath, key: key, expected: "a positive integer")
            }
            return v
        }
        guard let archName = cfg["architecture"] as? String else {
            throw SAEError.invalidCfg(file: cfgPath, key: "architecture", expected: "a string (topk, standard, gated, jumprelu)")
        }
        let arch: Architecture
        switch archName {
        case "topk": arch = .topk
        case "standard": arch = .relu
        case "gated": arch = .gated
        case "jumprelu": arch = .jumprelu
        default: throw SAEError.unknownArchitecture(file: cfgPath, name: archName)
        }
        if let norm = cfg["normalize_activations"] as? String, norm != "none" {
            throw SAEError.invalidCfg(file: cfgPath, key: "normalize_activations", expected: "\"none\" (got \"\(norm)\")")
        }
        if let r = cfg["rescale_acts_by_decoder_norm"] as? Bool, r {
            throw SAEError.invalidCfg(file: cfgPath, key: "rescale_acts_by_decoder_norm", expected: "false")
        }
        let d = try int("d_in"), m = try int("d_sae")
        var config = SAEConfig(architecture: arch, dIn: d, dSAE: m)
        if arch == .topk { config.k = try int("k") }
        do { try config.validate() } catch let SAEError.invalidConfig(field, expected) {
            throw SAEError.invalidCfg(file: cfgPath, key: field, expected: expected)
        }
        let applyBDec = (cfg["apply_b_dec_to_input"] as? Bool) ?? true

        // Every tensor is checked against cfg.json before anything is allocated: the file's shapes
        // are bounded by its own byte count, so a cfg.json claiming a huge d_sae stops here.
        let weightsPath = directory + "/sae_weights.safetensors"
        let file = try SafetensorsFile(path: weightsPath)
        let perLatent = arch == .gated ? ["b_gate", "r_mag", "b_mag"] : arch == .jumprelu ? ["b_enc", "threshold"] : ["b_enc"]
        let expected = [("W_enc", [d, m]), ("W_dec", [m, d]), ("b_dec", [d])] + perLatent.map { ($0, [m]) }
        for (name, shape) in expected {
            guard let e = file.entries[name] else { throw SAEError.badTensor(file: weightsPath, name: name, expected: shape, got: nil) }
            guard e.shape == shape else { throw SAEError.badTensor(file: weightsPath, name: name, expected: shape, got: e.shape) }
            guard e.dtype.isFloatingPoint else {
                throw SAEError.invalidCfg(file: weightsPath, key: name, expected: "a floating-point tensor, got \(e.dtype.rawValue)")
            }
        }
        /// Tensor `name` as float32, every value finite (and ≥ 0 where `nonNegative`: θ = 0 is a ReLU).
        func load(_ name: String, nonNegative: Bool = false) throws -> [Float] {
            let values = try file.tensor(name).storage
            if let i = values.withUnsafeBufferPointer(firstNonFinite) {
                throw SAEError.badValue(file: weightsPath, name: name, index: i, expected: "a finite number, got \(values[i])")
            }
            if nonNegative, let i = values.firstIndex(where: { $0 < 0 }) {
                throw SAEError.badValue(file: weightsPath, name: name, index: i, expected: "a number ≥ 0, got \(values[i])")
            }
            return values
        }
        var sae = try SAE(config: config, params: [Float](repeating: 0, count: ParameterLayout(config).count))
        let L = sae.layout
        let W_enc = try load("W_enc")
        for j in 0..<m { for i in 0..<d { sae.params[L.W_enc.lowerBound + j * d + i] = W_enc[i * m + j] } }
        sae.params.replaceSubrange(L.W_dec, with: try load("W_dec"))
        sae.params.replaceSubrange(L.b_dec, with: try load("b_dec"))
        if arch == .gated {
            sae.params.replaceSubrange(L.b_gate, with: try load("b_gate"))
            sae.params.replaceSubrange(L.r_mag, with: try load("r_mag"))
            sae.params.replaceSubrange(L.b_mag, with: try load("b_mag"))
        } else {
            sae.params.replaceSubrange(L.b_enc, with: try load("b_enc"))
        }
        if arch == .jumprelu {
            sae.params.replaceSubrange(L.log_threshold, with: try load("threshold", nonNegative: true).map { Foundation.log($0) })
        }
        if !applyBDec {
            // SAELens computes pre = x·W_enc + b_enc; ours is (x − b_dec)·W_enc + b_enc', so
            // b_enc' = b_enc + b_dec·W_enc (gated: b_gate and b_mag, the latter through exp(r_mag)).
            for j in 0..<m {
                var s: Float = 0
                for i in 0..<d { s += sae.params[L.b_dec.lowerBound + i] * sae.params[L.W_enc.lowerBound + j * d + i] }
                if arch == .gated {
                    sae.params[L.b_gate.lowerBound + j] += s
                    sae.params[L.b_mag.lowerBound + j] += s * Foundation.exp(sae.params[L.r_mag.lowerBound + j])
                } else {
                    sae.params[L.b_enc.lowerBound + j] += s
                }
            }
        }
        return sae
    }
}
