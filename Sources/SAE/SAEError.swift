/// Why the SAE module refused an input. Each description is one line a user can act on; command
/// lines print it and exit 2.
public enum SAEError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A config field is out of range (`field` uses the config-key spelling, e.g. `k`, `l1`).
    case invalidConfig(field: String, expected: String)
    /// A batch's width differs from the SAE's d_in.
    case widthMismatch(expected: Int, got: Int)
    /// A batch holds NaN or ±inf (first offending row); nothing was updated.
    case nonFiniteInput(row: Int)
    /// A batch or candidate set has no rows.
    case emptyBatch
    /// A buffer handed in has the wrong number of elements.
    case sizeMismatch(what: String, expected: Int, got: Int)
    /// λ handed to a step is negative or not finite.
    case invalidLambda(Float)
    /// cfg.json names an architecture this module does not implement.
    case unknownArchitecture(file: String, name: String)
    /// A file of an SAE directory is missing or cannot be read.
    case unreadable(file: String, why: String)
    /// cfg.json is missing a key, or a key has the wrong type or an unsupported value.
    case invalidCfg(file: String, key: String, expected: String)
    /// A weights file lacks a tensor or has it with the wrong shape.
    case badTensor(file: String, name: String, expected: [Int], got: [Int]?)
    /// A weights file holds a NaN or ±inf (first flat index) or a value out of its domain.
    case badValue(file: String, name: String, index: Int, expected: String)

    public var description: String {
        switch self {
        case let .invalidConfig(field, expected): return "SAE config: \(field) must be \(expected)"
        case let .widthMismatch(expected, got):
            return "SAE input: activations have width \(got) but the SAE has d_in \(expected)"
        case let .nonFiniteInput(row): return "SAE input: row \(row) of the batch holds NaN or inf; batch refused, nothing updated"
        case .emptyBatch: return "SAE input: the batch has no rows"
        case let .sizeMismatch(what, expected, got): return "SAE input: \(what) has \(got) elements, expected \(expected)"
        case let .invalidLambda(l): return "SAE input: λ must be finite and >= 0, got \(l)"
        case let .unknownArchitecture(file, name):
            return "\(file): unknown architecture \"\(name)\" (expected topk, standard, gated or jumprelu)"
        case let .unreadable(file, why): return "\(file): \(why)"
        case let .invalidCfg(file, key, expected): return "\(file): key \(key) must be \(expected)"
        case let .badTensor(file, name, expected, got):
            return got == nil ? "\(file): missing tensor \(name) (expected shape \(expected))"
                : "\(file): tensor \(name) has shape \(got!), expected \(expected)"
        case let .badValue(file, name, index, expected):
            return "\(file): tensor \(name), element \(index): expected \(expected)"
        }
    }
}
