/// The five activation sites of a block, in the order the forward pass reaches them
/// (TransformerLens names).
public enum HookKind: String, CaseIterable, Sendable, Comparable {
    /// x after the residual lambdas, before the block (input of attention's norm).
    case residPre = "hook_resid_pre"
    /// Attention output added to the residual.
    case attnOut = "hook_attn_out"
    /// x after attention, before the MLP.
    case residMid = "hook_resid_mid"
    /// MLP output added to the residual.
    case mlpOut = "hook_mlp_out"
    /// x after the block.
    case residPost = "hook_resid_post"

    var order: Int { HookKind.allCases.firstIndex(of: self)! }
    public static func < (a: HookKind, b: HookKind) -> Bool { a.order < b.order }
}

/// A named activation site: `blocks.<layer>.<kind>`, e.g. `blocks.2.hook_resid_post`.
public struct HookPoint: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var layer: Int
    public var kind: HookKind

    public init(layer: Int, kind: HookKind) { self.layer = layer; self.kind = kind }

    /// Parses a TransformerLens hook name; `nLayer` (when given) bounds the layer index.
    public init(name: String, nLayer: Int? = nil) throws {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "blocks", let layer = Int(parts[1]), layer >= 0,
              String(layer) == parts[1], let kind = HookKind(rawValue: String(parts[2])) else {
            throw NanochatError.unknownHook(name)
        }
        if let n = nLayer, layer >= n { throw NanochatError.hookLayerOutOfRange(hook: name, layers: n) }
        self.init(layer: layer, kind: kind)
    }

    public var name: String { "blocks.\(layer).\(kind.rawValue)" }
    public var description: String { name }

    /// Position in the forward pass: hooks are reached in increasing `depth`.
    public var depth: Int { layer * HookKind.allCases.count + kind.order }
    public static func < (a: HookPoint, b: HookPoint) -> Bool { a.depth < b.depth }

    /// Every hook point of a model with `nLayer` layers, in forward order.
    public static func all(nLayer: Int) -> [HookPoint] {
        (0..<nLayer).flatMap { l in HookKind.allCases.map { HookPoint(layer: l, kind: $0) } }
    }

    /// Parses "all" or a comma-separated list of hook names.
    public static func parseList(_ list: String, nLayer: Int) throws -> [HookPoint] {
        if list == "all" { return all(nLayer: nLayer) }
        return try list.split(separator: ",").map { try HookPoint(name: String($0), nLayer: nLayer) }
    }
}

/// What a hook callback sees: the activation at one hook point for the tokens of this call,
/// as a mutable [B, T, C] buffer. Writing to it changes the rest of the forward pass (steering).
public struct HookActivation {
    public var point: HookPoint
    /// Batch size B.
    public var batch: Int
    /// Tokens per row in this call (T for a full forward, 1 per decoding step).
    public var tokens: Int
    /// Position of the first of these tokens in its sequence (0 for a full forward).
    public var startPosition: Int
    /// Residual width C.
    public var width: Int
    /// [B, T, C] row-major, valid only during the callback.
    public var values: UnsafeMutableBufferPointer<Float>
}

/// Called at every hook point the pass reaches, in forward order; may read or modify the activation.
public typealias HookCallback = (HookActivation) -> Void
