/// The Float32 buffer that holds an SAE's parameters (`ParameterLayout`): private memory with value
/// semantics, like an array, or memory that every rank of a node shares (the data-parallel trainer's
/// one copy per node, written piece by piece by the ranks that own the pieces).
///
/// Value semantics, as for arrays: a write to a buffer that another value also holds copies it first,
/// into private memory. A node-shared buffer held by one value is written in place, so every rank of
/// the node sees the write; the trainer orders those writes (`Communicator.nodeBarrier`) and checks
/// that its buffers stay shared (`isShared`).
public struct ParameterBuffer: RandomAccessCollection, MutableCollection, Equatable, Sendable {
    final class Storage: @unchecked Sendable {
        let base: UnsafeMutablePointer<Float>
        let count: Int
        /// false for node-shared memory, which belongs to the communicator.
        let owned: Bool

        init(count: Int) {
            base = .allocate(capacity: Swift.max(count, 1))
            self.count = count
            owned = true
        }

        init(shared base: UnsafeMutablePointer<Float>, count: Int) {
            self.base = base
            self.count = count
            owned = false
        }

        deinit { if owned { base.deallocate() } }
    }

    private var storage: Storage

    /// `count` copies of `value`, in private memory.
    public init(repeating value: Float, count: Int) {
        precondition(count >= 0, "ParameterBuffer of \(count) floats")
        storage = Storage(count: count)
        storage.base.initialize(repeating: value, count: count)
    }

    /// A private copy of `values`.
    public init<C: Collection>(_ values: C) where C.Element == Float {
        storage = Storage(count: values.count)
        _ = UnsafeMutableBufferPointer(start: storage.base, count: values.count).initialize(from: values)
    }

    /// The `count` floats at `base`, used in place (shared with the other ranks of the node).
    public init(shared base: UnsafeMutablePointer<Float>, count: Int) {
        storage = Storage(shared: base, count: count)
    }

    /// Whether the memory is the shared memory given to `init(shared:count:)` (not a private copy).
    public var isShared: Bool { !storage.owned }

    public var startIndex: Int { 0 }
    public var endIndex: Int { storage.count }

    public subscript(i: Int) -> Float {
        get {
            precondition(i >= 0 && i < storage.count, "parameter index \(i) out of 0..<\(storage.count)")
            return storage.base[i]
        }
        set {
            precondition(i >= 0 && i < storage.count, "parameter index \(i) out of 0..<\(storage.count)")
            makeUnique()
            storage.base[i] = newValue
        }
    }

    /// Writes `values` over `range` (equal counts).
    public mutating func replaceSubrange<C: Collection>(_ range: Range<Int>, with values: C) where C.Element == Float {
        precondition(range.lowerBound >= 0 && range.upperBound <= storage.count && values.count == range.count,
                     "replacing \(range) of \(storage.count) parameters with \(values.count) values")
        makeUnique()
        _ = UnsafeMutableBufferPointer(start: storage.base + range.lowerBound, count: range.count).update(fromContentsOf: values)
    }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.base, count: storage.count))
    }

    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        makeUnique()
        var b = UnsafeMutableBufferPointer(start: storage.base, count: storage.count)
        return try body(&b)
    }

    public static func == (a: ParameterBuffer, b: ParameterBuffer) -> Bool {
        a.count == b.count && a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in x.elementsEqual(y) } }
    }

    /// Copy on write: a buffer that another value also holds becomes a private copy.
    private mutating func makeUnique() {
        guard !isKnownUniquelyReferenced(&storage) else { return }
        let copy = Storage(count: storage.count)
        copy.base.initialize(from: storage.base, count: storage.count)
        storage = copy
    }
}
