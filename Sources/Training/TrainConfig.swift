import Foundation

/// Everything `sae-train` needs to know, from a JSON config file and command-line flags (DESIGN 4).
///
/// Every key is declared once, in `TrainConfig.keys`: its name, its type (through the key path),
/// its default (the property's initial value) and its help line. The config file uses the names
/// with underscores (`batch_tokens`), flags the same names with dashes (`--batch-tokens`), flags
/// win over the file, and an unknown key or flag is an error that names it.
public struct TrainConfig: Equatable, Sendable {
    // Model and data
    public var model = ""                 // model_*.pt, a checkpoint dir, or empty with base_dir+tag
    public var baseDir = ""               // nanochat base dir (default $NANOCHAT_BASE_DIR or ~/.cache/nanochat)
    public var tag = ""                   // checkpoint tag under base_checkpoints/
    public var step = -1                  // checkpoint step (-1: the largest)
    public var archProfile = ""           // "" = detect from the state dict; "current" | "v0"
    public var tokenizer = ""             // tokenizer.pkl (default: <base dir>/tokenizer/tokenizer.pkl)
    public var data = ""                  // parquet shards dir, .txt/.jsonl file, or dir of them
    public var valShards = 1              // last N parquet shards are validation, never trained on
    public var activations = ""           // train from an activation cache instead of the model
    public var cacheDtype = "float32"     // sae-train cache: float32 | bfloat16
    public var hooks: [String] = []       // hook points; one SAE each, all from one forward pass
    public var context = 256              // tokens per packed row
    public var excludeBOS = true          // keep BOS positions out of the training data
    public var bufferTokens = 1 << 18     // shuffle buffer size, in tokens
    // SAE
    public var arch = "topk"              // topk | batchtopk | relu | gated | jumprelu
    public var dSae = 0                   // latents; 0 = expansion · d_in
    public var expansion = 16
    public var k = 32                     // active latents per token (topk, batchtopk)
    public var auxK = 0                   // AuxK latents; 0 = d_in / 2
    public var l1 = 0.0                   // λ of the sparsity term (relu, gated, jumprelu); 0 = arch default
    // Optimisation
    public var lr = 0.0                   // 0 = 4e-3·sqrt(4096/d_sae) (topk, batchtopk), 1e-3·sqrt(4096/d_sae) (others)
    public var lrWarmupTokens = 0         // linear warm-up of the learning rate
    public var lrDecay = "linear"         // none | linear (to 0 over the last 20% of the tokens)
    public var l1WarmupTokens = 0         // linear warm-up of λ
    public var batchTokens = 4096         // global batch, across all ranks
    public var microBatches = 0           // gradient pieces per global batch, summed in a fixed tree (power of two; 0 = auto)
    /// micro_batches as it applies: 0 (auto) is 8 from a cache (where the global batch does not depend
    /// on N, so the tree makes the result independent of N too) and nil from the model (the costs of
    /// micro-batches, ~13% at one rank, buy nothing when every rank reads its own documents).
    public var effectiveMicroBatches: Int? { microBatches > 0 ? microBatches : activations.isEmpty ? nil : 8 }
    /// Each rank keeps the Adam moments of 1/N of the parameters (ZeRO-1) when N > 1.
    public var shardOptimizer = true
    public var totalTokens = 10_000_000
    public var seed = 1
    public var deadTokens = 10_000_000    // a latent silent this many tokens is dead
    public var resampleEvery = 0          // tokens between resampling events (0 = never)
    // Run
    public var out = "runs/sae"
    public var resume = false
    public var resumeFrom = -1            // resume from this step's checkpoint (-1: the latest)
    /// Whether the run continues a checkpoint (`resume`, or `resume_from` a step).
    public var resuming: Bool { resume || resumeFrom >= 0 }
    public var checkpointEvery = 0        // tokens between checkpoints (0 = at the end only)
    public var keepCheckpoints = 3
    public var logEvery = 10              // steps between metrics lines
    public var checkEvery = 100           // steps between cross-rank parameter checksums

    public init() {}

    /// One config key: name, help, and how to read/write it on a `TrainConfig`.
    public struct Key: Sendable {
        public let name: String
        public let help: String
        let kind: Kind
        enum Kind: @unchecked Sendable {
            case string(WritableKeyPath<TrainConfig, String>)
            case strings(WritableKeyPath<TrainConfig, [String]>)
            case int(WritableKeyPath<TrainConfig, Int>)
            case double(WritableKeyPath<TrainConfig, Double>)
            case bool(WritableKeyPath<TrainConfig, Bool>)
        }
        public var flag: String { "--" + name.replacingOccurrences(of: "_", with: "-") }
        public var isBool: Bool { if case .bool = kind { true } else { false } }
    }

    public static let keys: [Key] = [
        Key(name: "model", help: "model_*.pt, or a checkpoint dir (largest step unless step)", kind: .string(\.model)),
        Key(name: "base_dir", help: "nanochat base dir, with tag (default $NANOCHAT_BASE_DIR or ~/.cache/nanochat)", kind: .string(\.baseDir)),
        Key(name: "tag", help: "checkpoint tag under <base_dir>/base_checkpoints", kind: .string(\.tag)),
        Key(name: "step", help: "checkpoint step (-1: the largest)", kind: .int(\.step)),
        Key(name: "arch_profile", help: "nanochat architecture: current | v0 (default: detected)", kind: .string(\.archProfile)),
        Key(name: "tokenizer", help: "tokenizer.pkl (default: <base dir>/tokenizer/tokenizer.pkl)", kind: .string(\.tokenizer)),
        Key(name: "data", help: "dir of parquet shards, a .txt/.jsonl file, or a dir of them", kind: .string(\.data)),
        Key(name: "val_shards", help: "trailing parquet shards kept for validation", kind: .int(\.valShards)),
        Key(name: "activations", help: "train from this activation cache instead of the model", kind: .string(\.activations)),
        Key(name: "cache_dtype", help: "sae-train cache: stored precision, float32 | bfloat16", kind: .string(\.cacheDtype)),
        Key(name: "hook", help: "hook point, e.g. blocks.2.hook_resid_post (repeatable)", kind: .strings(\.hooks)),
        Key(name: "context", help: "tokens per row fed to the model", kind: .int(\.context)),
        Key(name: "exclude_bos", help: "leave BOS positions out of the training data", kind: .bool(\.excludeBOS)),
        Key(name: "buffer_tokens", help: "shuffle buffer size in tokens", kind: .int(\.bufferTokens)),
        Key(name: "arch", help: "topk | batchtopk | relu | gated | jumprelu", kind: .string(\.arch)),
        Key(name: "d_sae", help: "number of latents (0: expansion × d_in)", kind: .int(\.dSae)),
        Key(name: "expansion", help: "latents per input dimension when d_sae is 0", kind: .int(\.expansion)),
        Key(name: "k", help: "active latents per token (topk, batchtopk)", kind: .int(\.k)),
        Key(name: "aux_k", help: "AuxK latents (0: d_in / 2)", kind: .int(\.auxK)),
        Key(name: "l1", help: "sparsity coefficient λ (relu, gated, jumprelu; 0: the architecture's default)", kind: .double(\.l1)),
        Key(name: "lr", help: "learning rate (0: 4e-3·sqrt(4096/d_sae) for topk/batchtopk, 1e-3·sqrt(4096/d_sae) otherwise)", kind: .double(\.lr)),
        Key(name: "lr_warmup_tokens", help: "tokens of linear learning-rate warm-up", kind: .int(\.lrWarmupTokens)),
        Key(name: "lr_decay", help: "learning-rate decay: none | linear (to 0 over the last 20% of total_tokens)", kind: .string(\.lrDecay)),
        Key(name: "l1_warmup_tokens", help: "tokens of linear λ warm-up", kind: .int(\.l1WarmupTokens)),
        Key(name: "batch_tokens", help: "global batch in tokens, across all ranks", kind: .int(\.batchTokens)),
        Key(name: "micro_batches", help: "gradient pieces of the global batch, summed in a fixed tree: a power of two; any power-of-two number of ranks dividing it trains bitwise the same SAE. 0 (auto): 8 when training from a cache, off from the model (each rank reads its own documents, so the data depend on N anyway)", kind: .int(\.microBatches)),
        Key(name: "shard_optimizer", help: "with N > 1 ranks each keeps the Adam moments of 1/N of the parameters (ZeRO-1) and the parameters are held once per node: gradients are reduce-scattered, each rank updates its piece; the same bits as unsharded", kind: .bool(\.shardOptimizer)),
        Key(name: "total_tokens", help: "training budget in tokens", kind: .int(\.totalTokens)),
        Key(name: "seed", help: "seed of initialisation, data order and resampling", kind: .int(\.seed)),
        Key(name: "dead_tokens", help: "a latent that fired on none of this many tokens is dead", kind: .int(\.deadTokens)),
        Key(name: "resample_every", help: "tokens between resampling events (0: never)", kind: .int(\.resampleEvery)),
        Key(name: "out", help: "output dir: OUT/<hook>/, metrics.jsonl, run.json", kind: .string(\.out)),
        Key(name: "resume", help: "continue from OUT's latest checkpoint", kind: .bool(\.resume)),
        Key(name: "resume_from", help: "continue from OUT's checkpoint of this step (e.g. an older intact one when the latest is damaged; -1: the latest)", kind: .int(\.resumeFrom)),
        Key(name: "checkpoint_every", help: "tokens between checkpoints (0: at the end only)", kind: .int(\.checkpointEvery)),
        Key(name: "keep_checkpoints", help: "checkpoints kept on disk (older ones are deleted)", kind: .int(\.keepCheckpoints)),
        Key(name: "log_every", help: "steps between metrics lines", kind: .int(\.logEvery)),
        Key(name: "check_every", help: "steps between cross-rank parameter checks", kind: .int(\.checkEvery)),
    ]

    public static func key(named name: String) -> Key? { keys.first { $0.name == name } }
}

/// A bad config file or flag: the source (file name or "command line"), the key, what was expected.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let source: String
    public let message: String
    public init(_ source: String, _ message: String) { self.source = source; self.message = message }
    public var description: String { "\(source): \(message)" }
}

extension TrainConfig {
    /// Reads a JSON config file (one object of known keys) over the current values.
    public mutating func apply(configFile path: String) throws {
        let name = (path as NSString).lastPathComponent
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(path, "cannot read the config file")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) }
        catch { throw ConfigError(name, "not valid JSON (\(error.localizedDescription))") }
        guard let dict = object as? [String: Any] else { throw ConfigError(name, "expected one JSON object of config keys") }
        for (name_, value) in dict.sorted(by: { $0.key < $1.key }) {
            guard let key = TrainConfig.key(named: name_) else {
                throw ConfigError(name, "unknown key '\(name_)' (known keys: \(TrainConfig.keys.map(\.name).joined(separator: ", ")))")
            }
            try set(key, json: value, source: name)
        }
    }

    mutating func set(_ key: Key, json value: Any, source: String) throws {
        func fail(_ expected: String) -> ConfigError {
            ConfigError(source, "key '\(key.name)' must be \(expected), got \(describe(value))")
        }
        switch key.kind {
        case .string(let p):
            guard let s = value as? String else { throw fail("a string") }
            self[keyPath: p] = s
        case .strings(let p):
            if let s = value as? String { self[keyPath: p] = [s] }
            else if let a = value as? [Any], let s = a as? [String] { self[keyPath: p] = s }
            else { throw fail("a string or an array of strings") }
        case .int(let p):
            if let n = value as? NSNumber, !isBool(n), let i = exactInt(n.doubleValue) { self[keyPath: p] = i }
            else if let s = value as? String, let i = parseCount(s) { self[keyPath: p] = i }
            else { throw fail("an integer (or a count like \"1.5M\")") }
        case .double(let p):
            guard let n = value as? NSNumber, !isBool(n) else { throw fail("a number") }
            self[keyPath: p] = n.doubleValue
        case .bool(let p):
            guard let n = value as? NSNumber, isBool(n) else { throw fail("true or false") }
            self[keyPath: p] = n.boolValue
        }
    }

    /// Applies `--key value`, `--key=value` and bare boolean `--flag` arguments over the current
    /// values. Repeated list flags (`--hook`) accumulate and replace the file's list.
    public mutating func apply(flags arguments: [String]) throws {
        var i = 0, listsSeen = Set<String>()
        while i < arguments.count {
            let arg = arguments[i]
            guard arg.hasPrefix("--") else { throw ConfigError("command line", "unexpected argument '\(arg)'") }
            var name = String(arg.dropFirst(2)), inline: String? = nil
            if let eq = name.firstIndex(of: "=") { inline = String(name[name.index(after: eq)...]); name = String(name[..<eq]) }
            guard let key = TrainConfig.key(named: name.replacingOccurrences(of: "-", with: "_")), !name.contains("_") else {
                throw ConfigError("command line", "unknown flag '--\(name)' (see --help)")
            }
            let value: String
            if let inline { value = inline }
            else if key.isBool { value = "true" }
            else {
                guard i + 1 < arguments.count else { throw ConfigError("command line", "\(key.flag) needs a value") }
                i += 1; value = arguments[i]
            }
            try set(key, flag: value, listsSeen: &listsSeen)
            i += 1
        }
    }

    mutating func set(_ key: Key, flag value: String, listsSeen: inout Set<String>) throws {
        func fail(_ expected: String) -> ConfigError {
            ConfigError("command line", "\(key.flag) expects \(expected), got '\(value)'")
        }
        switch key.kind {
        case .string(let p): self[keyPath: p] = value
        case .strings(let p):
            if listsSeen.insert(key.name).inserted { self[keyPath: p] = [] }
            self[keyPath: p] += value.split(separator: ",").map(String.init)
        case .int(let p):
            guard let n = parseCount(value) else { throw fail("an integer (or a count like 1.5M)") }
            self[keyPath: p] = n
        case .double(let p):
            guard let d = Double(value), d.isFinite else { throw fail("a number") }
            self[keyPath: p] = d
        case .bool(let p):
            switch value.lowercased() {
            case "true", "1", "yes": self[keyPath: p] = true
            case "false", "0", "no": self[keyPath: p] = false
            default: throw fail("true or false")
            }
        }
    }

    /// The resolved config as a JSON object (for run.json), keys as in the config file.
    public var jsonObject: [String: Any] {
        var out: [String: Any] = [:]
        for key in TrainConfig.keys {
            switch key.kind {
            case .string(let p): out[key.name] = self[keyPath: p]
            case .strings(let p): out[key.name] = self[keyPath: p]
            case .int(let p): out[key.name] = self[keyPath: p]
            case .double(let p): out[key.name] = self[keyPath: p]
            case .bool(let p): out[key.name] = self[keyPath: p]
            }
        }
        return out
    }

    /// Help text listing every key as a flag.
    public static var flagHelp: String {
        keys.map { key in
            let flag = key.flag + (key.isBool ? "" : " <value>")
            return "  " + flag.padding(toLength: 30, withPad: " ", startingAt: 0) + key.help
        }.joined(separator: "\n")
    }
}

/// "4096", "1_000_000", "16k", "1.5M", "2B" → an integer count; nil if not exactly one.
public func parseCount(_ text: String) -> Int? {
    var s = text.replacingOccurrences(of: "_", with: "").trimmingCharacters(in: .whitespaces)
    var scale = 1.0
    if let last = s.last, let m = ["k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9][String(last)] {
        scale = m; s.removeLast()
    }
    if scale == 1, let i = Int(s) { return i }
    guard let d = Double(s), d.isFinite else { return nil }
    return exactInt(d * scale)
}

private func exactInt(_ d: Double) -> Int? {
    guard d.isFinite, d.rounded() == d, abs(d) < 9e18 else { return nil }
    return Int(d)
}

private func isBool(_ n: NSNumber) -> Bool {
    // JSONSerialization gives booleans as NSNumbers of Objective-C type "c" (char), numbers as others.
    String(cString: n.objCType) == "c"
}

private func describe(_ value: Any) -> String {
    switch value {
    case is String: "a string"
    case let n as NSNumber: isBool(n) ? "a boolean" : "the number \(n)"
    case is [Any]: "an array"
    case is [String: Any]: "an object"
    case is NSNull: "null"
    default: "\(value)"
    }
}

extension TrainConfig {
    /// Checks values that no single key's type can: ranges, choices, what must be present.
    /// Model-dependent checks (hook names, d_in) happen when the model is loaded.
    public func validate(source: String = "config") throws {
        func need(_ ok: Bool, _ message: String) throws { if !ok { throw ConfigError(source, message) } }
        try need(!hooks.isEmpty || !activations.isEmpty, "no hook given (key 'hook', e.g. blocks.2.hook_resid_post)")
        try need(["float32", "bfloat16"].contains(cacheDtype), "cache_dtype must be float32 or bfloat16; got '\(cacheDtype)'")
        try need(!model.isEmpty || !tag.isEmpty || !activations.isEmpty,
                 "no model given (key 'model', or 'base_dir' + 'tag', or 'activations')")
        try need(!data.isEmpty || !activations.isEmpty, "no data given (key 'data' or 'activations')")
        try need(["topk", "batchtopk", "relu", "gated", "jumprelu"].contains(arch),
                 "arch must be one of topk, batchtopk, relu, gated, jumprelu; got '\(arch)'")
        try need(["none", "linear"].contains(lrDecay), "lr_decay must be none or linear; got '\(lrDecay)'")
        try need(archProfile.isEmpty || ["current", "v0"].contains(archProfile),
                 "arch_profile must be current or v0; got '\(archProfile)'")
        try need(totalTokens > 0, "total_tokens must be > 0, got \(totalTokens)")
        try need(batchTokens > 0, "batch_tokens must be > 0, got \(batchTokens)")
        try need(microBatches >= 0 && microBatches & (microBatches - 1) == 0,
                 "micro_batches must be a power of two (1, 2, 4, 8, ...) or 0 (auto), got \(microBatches)")
        try need(context >= 2, "context must be >= 2, got \(context)")
        try need(dSae >= 0 && expansion >= 1, "d_sae must be >= 0 and expansion >= 1")
        try need(k >= 1, "k must be >= 1, got \(k)")
        try need(dSae == 0 || k <= dSae, "k (\(k)) must be <= d_sae (\(dSae))")
        try need(auxK >= 0, "aux_k must be >= 0, got \(auxK)")
        try need(l1 >= 0, "l1 must be >= 0, got \(l1)")
        try need(lr >= 0, "lr must be >= 0, got \(lr)")
        try need(lrWarmupTokens >= 0 && l1WarmupTokens >= 0, "warm-up token counts must be >= 0")
        try need(deadTokens > 0, "dead_tokens must be > 0, got \(deadTokens)")
        try need(resampleEvery >= 0 && checkpointEvery >= 0, "resample_every and checkpoint_every must be >= 0")
        try need(keepCheckpoints >= 1, "keep_checkpoints must be >= 1, got \(keepCheckpoints)")
        try need(logEvery >= 1 && checkEvery >= 1, "log_every and check_every must be >= 1")
        try need(bufferTokens >= batchTokens || !activations.isEmpty,
                 "buffer_tokens (\(bufferTokens)) must be >= batch_tokens (\(batchTokens))")
        try need(valShards >= 0, "val_shards must be >= 0")
        try need(resumeFrom >= -1, "resume_from must be a checkpoint step (>= 0) or -1 (the latest), got \(resumeFrom)")
        try need(!out.isEmpty, "out must not be empty")
    }
}
