import Nanochat

/// One intervention on an SAE feature at a hook (DESIGN 4, `--steer HOOK:FEATURE:VALUE[:mode][:scope]`):
///   add    x ← x + VALUE·W_dec[f]
///   clamp  f ← VALUE, keeping the SAE's error term: x ← x + decode(f') − decode(f) = x + (VALUE − f)·W_dec[f]
///   scale  f ← VALUE·f:                            x ← x + (VALUE − 1)·f·W_dec[f]
/// (decode is linear, so b_dec cancels: clamping a feature to the value it has changes nothing.)
public struct Steering: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable { case add, clamp, scale }
    /// Which positions: the prompt's, the generated tokens', or all.
    public enum Scope: String, Sendable, CaseIterable { case prompt, gen, all }

    public var hook: String
    public var feature: Int
    public var value: Float
    public var mode: Mode = .add
    public var scope: Scope = .all
    /// Steer the BOS position too (off: BOS is the attention sink nanochat relies on).
    public var includeBOS = false

    public init(hook: String, feature: Int, value: Float, mode: Mode = .add, scope: Scope = .all, includeBOS: Bool = false) {
        self.hook = hook; self.feature = feature; self.value = value
        self.mode = mode; self.scope = scope; self.includeBOS = includeBOS
    }

    /// Parses `HOOK:FEATURE:VALUE[:add|clamp|scale][:prompt|gen|all]`.
    public init(spec: String) throws {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func bad(_ why: String) -> RuntimeError {
            .badInput("--steer \(spec): \(why); expected HOOK:FEATURE:VALUE[:add|clamp|scale][:prompt|gen|all]")
        }
        guard parts.count >= 3 && parts.count <= 5 else { throw bad("wrong number of fields") }
        guard (try? HookPoint(name: parts[0])) != nil else { throw bad("'\(parts[0])' is not a hook name") }
        guard let f = Int(parts[1]), f >= 0 else { throw bad("feature '\(parts[1])' is not a non-negative integer") }
        guard let v = Float(parts[2]), v.isFinite else { throw bad("value '\(parts[2])' is not a finite number") }
        var mode = Mode.add, scope = Scope.all
        for extra in parts.dropFirst(3) {
            if let m = Mode(rawValue: extra) { mode = m }
            else if let s = Scope(rawValue: extra) { scope = s }
            else { throw bad("'\(extra)' is neither a mode nor a scope") }
        }
        self.init(hook: parts[0], feature: f, value: v, mode: mode, scope: scope)
    }

    /// An attached SAE as an intervention sees it: its hook and its number of features.
    public struct Target: Sendable, Equatable {
        public var hook: String
        public var dSAE: Int
        public init(hook: String, dSAE: Int) { self.hook = hook; self.dSAE = dSAE }
    }

    /// The one check of an intervention, whoever asks for it (`--steer`, chat's `/steer`, the HTTP
    /// API): an SAE is attached at the hook, the feature is one of its 0..<d_sae, the value finite.
    public func check(against targets: [Target]) throws {
        let name = "steer \(hook):\(feature)"
        guard let t = targets.first(where: { $0.hook == hook }) else {
            throw RuntimeError.badInput("\(name): no SAE attached at \(hook) (attached: \(targets.map(\.hook).joined(separator: ", ")))")
        }
        guard (0..<t.dSAE).contains(feature) else {
            throw RuntimeError.badInput("\(name): feature must be in 0..<\(t.dSAE) (d_sae = \(t.dSAE))")
        }
        guard value.isFinite else { throw RuntimeError.badInput("\(name): value must be a finite number, got \(value)") }
    }

    /// Whether the token at `position` is steered, for a prompt of `promptLength` tokens.
    func applies(position: Int, promptLength: Int) -> Bool {
        if position == 0 && !includeBOS { return false }
        switch scope {
        case .all: return true
        case .prompt: return position < promptLength
        case .gen: return position >= promptLength
        }
    }
}
