import Dispatch
import Foundation

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
            slots[level].withUnsafeBufferPointer { s in x.withUnsafeMutableBufferPointer { x in addInto(x, s) } }
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

/// x[i] = s[i] + x[i], on all cores in blocks (element-wise, so the bits do not depend on the split):
/// a memory-bound pass that one core does not saturate.
private func addInto(_ x: UnsafeMutableBufferPointer<Float>, _ s: UnsafeBufferPointer<Float>) {
    guard let xp = x.baseAddress, let sp = s.baseAddress else { return }
    let n = x.count, block = 1 << 16, blocks = (n + block - 1) / block
    let box = UncheckedPointers(x: xp, s: sp)
    let add: @Sendable (Int) -> Void = { b in
        let x = box.x, s = box.s
        for i in b * block ..< min(n, (b + 1) * block) { x[i] = s[i] + x[i] }
    }
    if blocks < 2 || ProcessInfo.processInfo.activeProcessorCount < 2 { for b in 0..<blocks { add(b) } }
    else { DispatchQueue.concurrentPerform(iterations: blocks, execute: add) }
}

/// The two buffers of `addInto`, handed to its worker threads, which write disjoint blocks.
private struct UncheckedPointers: @unchecked Sendable {
    let x: UnsafeMutablePointer<Float>
    let s: UnsafePointer<Float>
}
