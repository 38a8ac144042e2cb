import Synchronization
import Tensors

/// Reuses the forward pass's scratch memory between calls: big fresh allocations come from mmap
/// and pay a page fault per 4 KiB on first touch, which showed up at ~8% of a d12 forward.
/// Thread-safe; keeps at most a few buffers, the largest ones.
final class ScratchPool: Sendable {
    struct Buffer: @unchecked Sendable {
        let base: UnsafeMutablePointer<Float>
        let capacity: Int
    }
    private let free = Mutex<[Buffer]>([])
    private let keep = 4

    /// A buffer of at least `count` floats (contents undefined).
    func take(_ count: Int) -> Buffer {
        let reused: Buffer? = free.withLock { list in
            guard let i = list.firstIndex(where: { $0.capacity >= count }) else { return nil }
            return list.remove(at: i)
        }
        return reused ?? Buffer(base: .allocate(capacity: max(count, 1)), capacity: max(count, 1))
    }

    /// Returns a buffer from `take` to the pool.
    func give(_ buffer: Buffer) {
        let dropped: Buffer? = free.withLock { list in
            list.append(buffer)
            list.sort { $0.capacity > $1.capacity }
            return list.count > keep ? list.removeLast() : nil
        }
        dropped?.base.deallocate()
    }

    deinit {
        free.withLock { list in for b in list { b.base.deallocate() } }
    }
}
