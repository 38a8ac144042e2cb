import Foundation

/// Where a checkpoint's files are, found the way nanochat's scripts find them (DESIGN 2): a path
/// to `model_<step>.pt`, a checkpoint dir (largest step unless `step`), or a base dir + tag + step.
public struct ModelLocation: Equatable, Sendable {
    /// `.../model_<step:06d>.pt`
    public var modelPath: String
    /// `.../meta_<step:06d>.json` beside it.
    public var metaPath: String
    public var step: Int
    /// `<base dir>/tokenizer/tokenizer.pkl` when the checkpoint sits in a base dir
    /// (`<base>/base_checkpoints/<tag>/`) and that file exists.
    public var defaultTokenizerPath: String?

    /// nanochat's base dir: `$NANOCHAT_BASE_DIR`, else `~/.cache/nanochat`.
    public static var defaultBaseDir: String {
        if let d = ProcessInfo.processInfo.environment["NANOCHAT_BASE_DIR"], !d.isEmpty { return d }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/nanochat").path
    }

    /// Resolves a model. `model` is a `model_*.pt` path or a checkpoint dir; without it the
    /// checkpoint dir is `<baseDir>/base_checkpoints/<tag>` (tag: the largest `d<N>`, as nanochat).
    public static func resolve(model: String?, baseDir: String? = nil, tag: String? = nil,
                               step: Int? = nil) throws -> ModelLocation {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        let dir: String
        if let model {
            guard fm.fileExists(atPath: model, isDirectory: &isDir) else {
                throw NanochatError.modelNotFound(path: model, reason: "no such file or directory; expected a model_<step>.pt file or a checkpoint dir")
            }
            if !isDir.boolValue {
                let name = (model as NSString).lastPathComponent
                guard let s = stepOf(name, prefix: "model_", suffix: ".pt") else {
                    throw NanochatError.modelNotFound(path: model, reason: "expected a file named model_<step>.pt")
                }
                if let step, step != s {
                    throw NanochatError.modelNotFound(path: model, reason: "--step \(step) conflicts with this file's step \(s); pass the checkpoint dir instead")
                }
                return try location(dir: (model as NSString).deletingLastPathComponent, step: s, modelPath: model)
            }
            dir = model
        } else {
            let base = baseDir ?? defaultBaseDir
            let checkpoints = (base as NSString).appendingPathComponent("base_checkpoints")
            let chosen: String
            if let tag { chosen = tag } else {
                guard let tags = try? fm.contentsOfDirectory(atPath: checkpoints), !tags.isEmpty else {
                    throw NanochatError.modelNotFound(path: checkpoints, reason: "no checkpoint tags; pass --model or --base-dir/--tag")
                }
                // nanochat's find_largest_model: the largest d<N>, else the most recently modified.
                let depths = tags.compactMap { t in t.first == "d" ? Int(t.dropFirst()).map { (t, $0) } : nil }
                if let best = depths.max(by: { $0.1 < $1.1 }) { chosen = best.0 } else {
                    chosen = tags.max { mtime((checkpoints as NSString).appendingPathComponent($0)) <
                                        mtime((checkpoints as NSString).appendingPathComponent($1)) }!
                }
            }
            dir = (checkpoints as NSString).appendingPathComponent(chosen)
        }
        let files = (try? fm.contentsOfDirectory(atPath: dir)) ?? []
        let steps = files.compactMap { stepOf($0, prefix: "model_", suffix: ".pt") }
        if let step {
            guard steps.contains(step) else {
                throw NanochatError.modelNotFound(path: dir, reason: "no model_\(String(format: "%06d", step)).pt (steps here: \(steps.sorted().map(String.init).joined(separator: ", ")))")
            }
            return try location(dir: dir, step: step, modelPath: nil)
        }
        guard let last = steps.max() else {
            throw NanochatError.modelNotFound(path: dir, reason: "no model_<step>.pt in this directory")
        }
        return try location(dir: dir, step: last, modelPath: nil)
    }

    static func location(dir: String, step: Int, modelPath: String?) throws -> ModelLocation {
        let d = dir.isEmpty ? "." : dir
        let tag = String(format: "%06d", step)
        let model = modelPath ?? (d as NSString).appendingPathComponent("model_\(tag).pt")
        let meta = (d as NSString).appendingPathComponent("meta_\(tag).json")
        // <base>/base_checkpoints/<tag>/ → <base>/tokenizer/tokenizer.pkl
        var tokenizer: String?
        let abs = URL(fileURLWithPath: d).standardizedFileURL
        if abs.deletingLastPathComponent().lastPathComponent.hasSuffix("_checkpoints") {
            let t = abs.deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("tokenizer/tokenizer.pkl").path
            if FileManager.default.fileExists(atPath: t) { tokenizer = t }
        }
        return ModelLocation(modelPath: model, metaPath: meta, step: step, defaultTokenizerPath: tokenizer)
    }

    static func stepOf(_ name: String, prefix: String, suffix: String) -> Int? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        return Int(name.dropFirst(prefix.count).dropLast(suffix.count))
    }

    static func mtime(_ path: String) -> Date {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date) ?? .distantPast
    }
}
