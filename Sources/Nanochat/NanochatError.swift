/// Everything that can go wrong when loading or running a nanochat model, with one-line
/// descriptions that name the file, field or hook and say what was expected.
public enum NanochatError: Error, CustomStringConvertible, Equatable {
    /// `meta_*.json` could not be read or parsed as JSON.
    case unreadableMeta(file: String, reason: String)
    /// `meta_*.json` lacks `model_config` or one of its fields.
    case missingConfigField(file: String, field: String)
    /// A `model_config` field has an unusable value.
    case invalidConfig(file: String, field: String, reason: String)
    /// No `model_*.pt` could be found where the model was looked for.
    case modelNotFound(path: String, reason: String)
    /// The state dict fits no architecture profile; `details` lists the keys that did not fit.
    case architectureMismatch(file: String, details: String)
    /// `--arch-profile` names no known profile.
    case unknownProfile(String)
    /// A hook name that is not `blocks.<L>.hook_<point>`.
    case unknownHook(String)
    /// A hook on a layer the model does not have.
    case hookLayerOutOfRange(hook: String, layers: Int)
    /// Token ids that the model cannot take.
    case invalidTokens(reason: String)
    /// The tokenizer's vocabulary does not match the model's.
    case vocabularyMismatch(tokenizer: String, tokenizerVocab: Int, modelVocab: Int)
    /// tokenizer.pkl is not a tiktoken Encoding with the expected state.
    case invalidTokenizer(file: String, reason: String)
    /// A special token name the tokenizer does not have.
    case unknownSpecialToken(String)
    /// No tokenizer was named and none sits in a base dir above the model.
    case tokenizerNeeded(model: String)
    /// A weight of the checkpoint is NaN or ±inf (first flat index of the first such tensor).
    case nonFiniteWeight(file: String, tensor: String, index: Int)

    public var description: String {
        switch self {
        case let .unreadableMeta(file, reason):
            return "\(file): cannot read model metadata: \(reason)"
        case let .missingConfigField(file, field):
            return field == "model_config"
                ? "\(file): no \"model_config\" object; expected nanochat's meta_<step>.json with model_config {sequence_len, vocab_size, n_layer, n_head, n_kv_head, n_embd}"
                : "\(file): model_config has no integer field \"\(field)\""
        case let .invalidConfig(file, field, reason):
            return "\(file): model_config.\(field): \(reason)"
        case let .modelNotFound(path, reason):
            return "\(path): \(reason)"
        case let .architectureMismatch(file, details):
            return "\(file): state dict fits no nanochat architecture profile: \(details)"
        case let .unknownProfile(name):
            return "--arch-profile: unknown profile \"\(name)\"; expected one of \(ArchitectureProfile.all.map(\.name).joined(separator: ", "))"
        case let .unknownHook(name):
            return "unknown hook \"\(name)\"; expected blocks.<layer>.<point> with point one of \(HookKind.allCases.map(\.rawValue).joined(separator: ", "))"
        case let .hookLayerOutOfRange(hook, layers):
            return "hook \"\(hook)\": layer index past the model's n_layer = \(layers) (layers are 0...\(layers - 1))"
        case let .invalidTokens(reason):
            return "tokens: \(reason)"
        case let .vocabularyMismatch(tokenizer, tv, mv):
            return "\(tokenizer): tokenizer vocabulary has \(tv) tokens but the model's vocab_size is \(mv); pass the tokenizer the model was trained with"
        case let .invalidTokenizer(file, reason):
            return "\(file): not a nanochat tokenizer: \(reason)"
        case let .unknownSpecialToken(name):
            return "unknown special token \"\(name)\""
        case let .tokenizerNeeded(model):
            return "--tokenizer: required (no tokenizer/tokenizer.pkl in a nanochat base dir above \(model))"
        case let .nonFiniteWeight(file, tensor, index):
            return "\(file): tensor \(tensor) holds NaN or inf (element \(index)); the checkpoint is damaged or diverged"
        }
    }
}
