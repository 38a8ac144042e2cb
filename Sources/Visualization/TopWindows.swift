/// The `capacity` windows with the largest qualifying activations seen so far: a bounded keeper
/// whose smallest element is replaced by any larger newcomer (ties keep the earlier window), so
/// memory stays O(capacity) however many tokens go by. With capacity ~20 a linear scan for the
/// minimum beats a heap, and it runs only when a newcomer gets in.
public struct TopWindows: Sendable {
    public let capacity: Int
    private(set) var items: [ContextWindow] = []
    private var minIndex = 0

    public init(capacity: Int) {
        precondition(capacity >= 1)
        self.capacity = capacity
    }

    /// Whether a window with qualifying activation `value` would be kept.
    @inline(__always)
    public func accepts(_ value: Float) -> Bool {
        items.count < capacity || value > items[minIndex].value
    }

    /// Keeps `window` if it is among the largest (check `accepts` first to avoid building it).
    public mutating func insert(_ window: ContextWindow) {
        guard accepts(window.value) else { return }
        if items.count < capacity { items.append(window) } else { items[minIndex] = window }
        minIndex = items.indices.min { items[$0].value < items[$1].value } ?? 0
    }

    /// The kept windows, largest first (equal values in the order they are held: deterministic).
    public var sorted: [ContextWindow] {
        items.enumerated().sorted { $0.element.value > $1.element.value || ($0.element.value == $1.element.value && $0.offset < $1.offset) }
            .map(\.element)
    }
}
