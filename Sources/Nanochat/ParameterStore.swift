import Tensors

/// All parameters of a model in one contiguous allocation with named views into it (llm.c
/// style): one place to allocate and free, and raw pointers for the kernels. Immutable once built.
final class ParameterStore: @unchecked Sendable {
    let base: UnsafeMutablePointer<Float>
    let count: Int
    private(set) var offsets: [String: (offset: Int, shape: [Int])] = [:]

    /// Copies `tensors` (already checked against the profile) into one allocation.
    init(_ tensors: [String: Tensor]) {
        count = tensors.values.reduce(0) { $0 + $1.count }
        base = .allocate(capacity: max(count, 1))
        var o = 0
        for name in tensors.keys.sorted() {
            let t = tensors[name]!
            t.withConstBuffer { b in if b.count > 0 { (base + o).update(from: b.baseAddress!, count: b.count) } }
            offsets[name] = (o, t.shape)
            o += t.count
        }
    }

    deinit { base.deallocate() }

    /// The parameter `name` (present: the profile check guarantees it).
    func pointer(_ name: String) -> UnsafePointer<Float> {
        UnsafePointer(base + offsets[name]!.offset)
    }

    func has(_ name: String) -> Bool { offsets[name] != nil }

    /// A copy of the parameter `name` as a Tensor.
    func tensor(_ name: String) -> Tensor {
        let (o, shape) = offsets[name]!
        return Tensor(shape: shape, storage: Array(UnsafeBufferPointer(start: base + o, count: shape.reduce(1, *))))
    }
}
