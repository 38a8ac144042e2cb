import Foundation

/// The one-rank communicator: every collective is the identity (or a copy). Used by tests, by
/// single-process training without MPI, and by the runtime, which must never need MPI.
public final class SingleProcessCommunicator: Communicator {
    public init() {}

    public var rank: Int { 0 }
    public var size: Int { 1 }

    public func allreduce<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, _ op: ReduceOp) {}

    public func broadcast<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) {
        precondition(root == 0, "broadcast root \(root) in a 1-rank job")
    }

    public func allgather<T: CollectiveScalar>(_ send: UnsafeBufferPointer<T>, counts: [Int],
                                               _ recv: UnsafeMutableBufferPointer<T>) {
        precondition(counts == [send.count] && recv.count == send.count, "allgather counts \(counts)")
        _ = recv.initialize(fromContentsOf: send)
    }

    public func gather<T: CollectiveScalar>(_ send: UnsafeBufferPointer<T>, counts: [Int],
                                            _ recv: UnsafeMutableBufferPointer<T>, root: Int) {
        precondition(root == 0, "gather root \(root) in a 1-rank job")
        allgather(send, counts: counts, recv)
    }

    public func sendRecv<T: CollectiveScalar>(_ send: UnsafeBufferPointer<T>, _ recv: UnsafeMutableBufferPointer<T>,
                                              partner: Int) {
        precondition(partner == 0 && send.count == recv.count, "sendRecv with partner \(partner) in a 1-rank job")
        _ = recv.initialize(fromContentsOf: send)
    }

    public func barrier() {}

    public var nodes: [Int] { [0] }

    /// Private zeroed memory (one process is its own node). Never freed: like MPI's shared windows
    /// it lives until the process ends.
    public func nodeSharedBuffer(bytes: Int) -> UnsafeMutableRawPointer {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: max(bytes, 1))
        return p
    }

    public func nodeBarrier() {}

    public func broadcastAmongNodes<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, rootNode: Int) {
        precondition(rootNode == 0, "broadcast from node \(rootNode) in a 1-rank job")
    }

    public func abort(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("nanosae: \(message)\n".utf8))
        exit(code == 0 ? 1 : code)
    }
}
