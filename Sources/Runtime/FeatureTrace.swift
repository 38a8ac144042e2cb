/// What an attached SAE saw at one token: its strongest features and how well it reconstructed.
public struct TokenFeatures: Sendable, Equatable {
    /// Position of the token in its sequence.
    public var position: Int
    /// Index of the SAE among the runtime's `saes`.
    public var sae: Int
    /// (feature, activation) of the top active features, strongest first.
    public var features: [(Int, Float)]
    /// ‖x − x̂‖ at this token: the SAE's error term.
    public var errorNorm: Float

    public static func == (a: TokenFeatures, b: TokenFeatures) -> Bool {
        a.position == b.position && a.sae == b.sae && a.errorNorm == b.errorNorm
            && a.features.map(\.0) == b.features.map(\.0) && a.features.map(\.1) == b.features.map(\.1)
    }
}
