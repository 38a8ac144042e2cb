import Foundation
import Nanochat
import SAE
import Training

/// An SAE directory loaded with the model and tokenizer it is read on, checked against each other:
/// the tokenizer's vocabulary is the model's, the hook named in the SAE's cfg.json is in the model,
/// and the SAE's d_in is the hook's width. What sae-eval and sae-viz start from.
public struct SAEOnModel {
    public let model: NanochatModel
    public let tokenizer: Tokenizer
    public let sae: SAE
    public let hook: HookPoint

    /// `model` is a model_*.pt or checkpoint dir; `tokenizer` defaults to the base dir's.
    /// The SAE, the tokenizer and the model's meta are checked against each other before the
    /// weights load.
    public init(saeDirectory: String, model modelPath: String, tokenizer tokenizerPath: String?) throws {
        let sae = try SAE.loadSAELens(from: saeDirectory)
        guard let hookName = SAE.saeLensHookName(directory: saeDirectory) else {
            throw ConfigError(saeDirectory + "/cfg.json", "no metadata.hook_name")
        }
        var hook: HookPoint?
        let loaded = try ModelAndTokenizer.load(ModelLocation.resolve(model: modelPath), tokenizer: tokenizerPath,
                                                needTokenizer: true, check: { config in
            hook = try HookPoint(name: hookName, nLayer: config.nLayer)
            guard sae.config.dIn == config.nEmbd else {
                throw ConfigError(saeDirectory, "d_in \(sae.config.dIn) differs from the width \(config.nEmbd) of \(hookName)")
            }
        })
        self.sae = sae
        self.hook = hook!
        model = loaded.model
        tokenizer = loaded.tokenizer!
    }

    /// The rows to read: exactly those of `tokenFile`, or `count` tokens of `data` packed into rows
    /// of `context` tokens (default and maximum: the model's sequence_len).
    public func rows(tokenFile: String?, data: String?, context: Int?, count: Int) throws -> EvaluationRows {
        if let file = tokenFile { return try EvaluationRows(tokenFile: file) }
        let maxContext = model.config.sequenceLen
        if let context, context > maxContext {
            throw ConfigError("--context \(context)", "exceeds the model's sequence_len (\(maxContext))")
        }
        return try EvaluationRows(data: data ?? "", tokenizer: tokenizer, context: context ?? maxContext, count: count)
    }
}

/// What is wrong with `--tokens` and `--context` (nil: nothing), for sae-eval and sae-viz alike:
/// each must be positive, and both apply to `--data` only (a token file's rows are read as they
/// are), so with `--token-file` they are refused rather than ignored.
public func rowOptionsProblem(tokenFile: String?, tokens: Int?, context: Int?) -> String? {
    if let tokens, tokens < 1 { return "--tokens: expected a positive count, got \(tokens)" }
    if let context, context < 1 { return "--context: expected a positive count, got \(context)" }
    if tokenFile != nil, let flag = tokens != nil ? "--tokens" : context != nil ? "--context" : nil {
        return "\(flag): applies to --data only; the rows of --token-file are read as they are"
    }
    return nil
}
