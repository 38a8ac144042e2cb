import Tensors

/// A uniform random sample of at most `capacity` items of a stream of unknown length (reservoir
/// sampling, Vitter's algorithm R): the n-th item replaces a random slot with probability
/// capacity/n, so every item seen is held with the same probability. `seen` counts the stream.
public struct Reservoir<Item: Sendable>: Sendable {
    public let capacity: Int
    public private(set) var items: [Item] = []
    public private(set) var seen = 0

    public init(capacity: Int) {
        precondition(capacity >= 1)
        self.capacity = capacity
    }

    /// Counts the next item of the stream and says where it goes if it is kept: the slot to pass
    /// to `place`, or nil. Split in two so the caller builds the item only when it is kept.
    @inline(__always)
    public mutating func admit(rng: inout Xoshiro256) -> Int? {
        seen += 1
        if items.count < capacity { return items.count }
        let slot = rng.nextInt(below: seen)
        return slot < capacity ? slot : nil
    }

    /// Puts a kept item in the slot `admit` gave.
    public mutating func place(_ item: Item, at slot: Int) {
        if slot == items.count { items.append(item) } else { items[slot] = item }
    }

    /// Offers the next item of the stream (`admit` then `place`).
    public mutating func offer(_ item: Item, rng: inout Xoshiro256) {
        if let slot = admit(rng: &rng) { place(item, at: slot) }
    }

    /// A uniform sample of the union of the streams of `a` and `b` (disjoint, independently
    /// sampled). A uniform s-subset of a ∪ b holds a hypergeometric number h of a's items (s draws
    /// without replacement from a.seen + b.seen); given h they are a uniform h-subset of a, which a
    /// uniform h-subset of a's sample is. So: draw h, then h of a's items and s − h of b's.
    public static func merged(_ a: Reservoir, _ b: Reservoir, rng: inout Xoshiro256) -> Reservoir {
        precondition(a.capacity == b.capacity)
        var out = Reservoir(capacity: a.capacity)
        out.seen = a.seen + b.seen
        if a.items.count + b.items.count <= a.capacity && a.items.count == a.seen && b.items.count == b.seen {
            out.items = a.items + b.items              // both hold their whole stream
            return out
        }
        let s = min(a.capacity, out.seen)
        var fromA = 0, restA = a.seen, restB = b.seen
        for _ in 0..<s {
            if rng.nextInt(below: restA + restB) < restA { fromA += 1; restA -= 1 } else { restB -= 1 }
        }
        out.items = randomSubset(a.items, fromA, rng: &rng) + randomSubset(b.items, s - fromA, rng: &rng)
        return out
    }
}

/// `count` items of `items` chosen uniformly without replacement (a partial Fisher–Yates shuffle).
func randomSubset<T>(_ items: [T], _ count: Int, rng: inout Xoshiro256) -> [T] {
    precondition(count <= items.count, "a subset of \(count) from \(items.count) items")
    var pool = items
    for i in 0..<count { pool.swapAt(i, i + rng.nextInt(below: pool.count - i)) }
    return Array(pool.prefix(count))
}
