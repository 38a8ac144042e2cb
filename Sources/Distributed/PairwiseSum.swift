/// The sum of a power-of-two number of buffers (one rank's micro-batch gradients) in the fixed tree
/// of adjacent pairs, ((g0 + g1) + (g2 + g3)) + …, computed as the buffers arrive.
///
/// Binary-counter style: after i items, partial sum `slots[l]` is occupied exactly when bit l of i is
/// set, and holds the sum of an aligned block of 2^l items; a new item carries up through the
/// occupied slots like a binary increment. So log2(items) buffers are held besides the caller's, and
/// the result equals the lower levels of the tree that `Communicator.treeAllreduce` finishes.
public struct PairwiseSum {
    /// Items per sum (a power of two).
    public let items: Int
    /// Elements per item.
    public let count: Int
    var slots: [[Float]] = []
    var added = 0

    public init(items: Int, count: Int) {
        precondition(items > 0 && items & (items - 1) == 0, "PairwiseSum of \(items) items: a power of two is needed")
        self.items = items
        self.count = count
    }

    /// Adds the next item `x` [count]. `x` comes back as a spare buffer to compute the next item in,
    /// except after the `items`-th call, when it holds the sum of all items (and a new sum starts).
    public mutating func add(_ x: inout [Float]) {
        precondition(x.count == count, "PairwiseSum: an item of \(x.count) elements, expected \(count)")
        var level = 0
        while (added >> level) & 1 == 1 {
            // x ← slots[level] + x: the left block's sum plus the right one's.
            slots[level].withUnsafeBufferPointer { s in
                x.withUnsafeMutableBufferPointer { x in for i in 0..<count { x[i] = s[i] + x[i] } }
            }
            level += 1
        }
        added += 1
        if added == items { added = 0; return }
        if slots.count <= level { slots.append([]) }
        swap(&x, &slots[level])
        if x.count != count { x = [Float](repeating: 0, count: count) }
    }

    /// Forgets the items added so far (after a failed step).
    public mutating func reset() { added = 0 }
}
