/// Collective communication between the ranks of a job, as data-parallel training needs it.
///
/// Two implementations: `SingleProcessCommunicator` (one rank; tests, the runtime, 1-rank runs,
/// no MPI needed) and `MPICommunicator` in the DistributedMPI module. Every collective must be
/// called by all ranks in the same order with compatible arguments, as in MPI.
public protocol Communicator: AnyObject, Sendable {
    /// This process's rank, 0 ..< size.
    var rank: Int { get }
    /// Number of ranks in the job.
    var size: Int { get }

    /// Element-wise reduction of `buffer` over all ranks, result in place on every rank.
    /// Any length: implementations split buffers larger than their transport allows.
    func allreduce<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, _ op: ReduceOp)

    /// Copies `root`'s `buffer` into every rank's `buffer` (same count everywhere). Any length.
    func broadcast<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int)

    /// Every rank sends `counts[rank]` elements; every rank receives all of them concatenated in
    /// rank order into `recv` (Σ counts elements).
    func allgather<T: CollectiveScalar>(_ send: UnsafeBufferPointer<T>, counts: [Int],
                                        _ recv: UnsafeMutableBufferPointer<T>)

    /// Like `allgather` but only `root` receives; other ranks pass an empty `recv`.
    func gather<T: CollectiveScalar>(_ send: UnsafeBufferPointer<T>, counts: [Int],
                                     _ recv: UnsafeMutableBufferPointer<T>, root: Int)

    /// Sends `send` to rank `partner` while receiving `recv.count` elements from it, in one call that
    /// cannot deadlock when both ranks make it (MPI_Sendrecv). Each rank's `recv.count` must equal
    /// its partner's `send.count`; `send` and `recv` must not overlap. The building block of
    /// `treeAllreduce`. Any length.
    func sendRecv<T: CollectiveScalar>(_ send: UnsafeBufferPointer<T>, _ recv: UnsafeMutableBufferPointer<T>,
                                       partner: Int)

    /// Returns when every rank has called it.
    func barrier()

    /// The node (a host whose ranks share memory) of every rank: rank r is on node `nodes[r]`,
    /// numbered 0 ..< node count in order of the nodes' lowest ranks, each node's lowest rank being its
    /// leader.
    var nodes: [Int] { get }

    /// `bytes` of zeroed memory that every rank of this node sees at its own address, alive until
    /// the process ends. Collective; every rank of a node passes the same `bytes`. Writes by one rank
    /// are seen by the others after a `nodeBarrier`.
    func nodeSharedBuffer(bytes: Int) -> UnsafeMutableRawPointer

    /// Returns when every rank of this node has called it; what any of them wrote to node-shared
    /// memory before is then visible to all of them.
    func nodeBarrier()

    /// Node leaders only (`isNodeLeader`), all of them: copies the `buffer` of node `rootNode`'s leader
    /// into every other leader's `buffer`. Any length.
    func broadcastAmongNodes<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, rootNode: Int)

    /// Ends the whole job: prints `message` on stderr (with this rank's number) and makes every
    /// rank exit with a non-zero status. Use for errors after which ranks can no longer agree.
    func abort(_ message: String, code: Int32) -> Never
}

/// Reduction operators for `allreduce`.
public enum ReduceOp: Sendable, CaseIterable {
    case sum, max, min
}

/// Element types the collectives move. `scalarKind` lets an implementation pick its wire type.
public protocol CollectiveScalar: Comparable, Numeric, BitwiseCopyable, Sendable {
    static var scalarKind: ScalarKind { get }
}

public enum ScalarKind: Sendable { case float32, float64, int32, int64, uint8 }

extension Float: CollectiveScalar { public static var scalarKind: ScalarKind { .float32 } }
extension Double: CollectiveScalar { public static var scalarKind: ScalarKind { .float64 } }
extension Int32: CollectiveScalar { public static var scalarKind: ScalarKind { .int32 } }
extension Int64: CollectiveScalar { public static var scalarKind: ScalarKind { .int64 } }
extension UInt8: CollectiveScalar { public static var scalarKind: ScalarKind { .uint8 } }

// ----------------------------------------------------------------------------------------------
// Array conveniences, written once over the primitives above.

extension Communicator {
    public var isRoot: Bool { rank == 0 }

    public func abort(_ message: String) -> Never { abort(message, code: 1) }

    /// In-place reduction of a whole array.
    public func allreduce<T: CollectiveScalar>(_ array: inout [T], _ op: ReduceOp) {
        array.withUnsafeMutableBufferPointer { allreduce($0, op) }
    }

    /// Reduction of one value.
    public func allreduce<T: CollectiveScalar>(_ value: T, _ op: ReduceOp) -> T {
        var a = [value]
        allreduce(&a, op)
        return a[0]
    }

    /// Broadcast of a whole array; every rank must pass an array of the root's length.
    public func broadcast<T: CollectiveScalar>(_ array: inout [T], root: Int = 0) {
        array.withUnsafeMutableBufferPointer { broadcast($0, root: root) }
    }

    /// Broadcast of an array whose length only the root knows.
    public func broadcastVariable<T: CollectiveScalar>(_ array: [T], root: Int = 0) -> [T] {
        var n = [Int64(rank == root ? array.count : 0)]
        broadcast(&n, root: root)
        var out = rank == root ? array : [T](repeating: .zero, count: Int(n[0]))
        broadcast(&out, root: root)
        return out
    }

    /// Allgather of arrays that may differ in length per rank; result indexed by rank.
    public func allgatherVariable<T: CollectiveScalar>(_ values: [T]) -> [[T]] {
        let counts = allgatherCounts(values.count)
        var flat = [T](repeating: .zero, count: counts.reduce(0, +))
        values.withUnsafeBufferPointer { s in
            flat.withUnsafeMutableBufferPointer { allgather(s, counts: counts, $0) }
        }
        return split(flat, counts)
    }

    /// Allgather of arrays of equal length per rank, concatenated in rank order.
    public func allgather<T: CollectiveScalar>(_ values: [T]) -> [T] {
        let counts = [Int](repeating: values.count, count: size)
        var flat = [T](repeating: .zero, count: values.count * size)
        values.withUnsafeBufferPointer { s in
            flat.withUnsafeMutableBufferPointer { allgather(s, counts: counts, $0) }
        }
        return flat
    }

    /// Gather of arrays of any length to `root`: the per-rank arrays there, nil elsewhere.
    public func gatherVariable<T: CollectiveScalar>(_ values: [T], root: Int = 0) -> [[T]]? {
        let counts = allgatherCounts(values.count)
        var flat = [T](repeating: .zero, count: rank == root ? counts.reduce(0, +) : 0)
        values.withUnsafeBufferPointer { s in
            flat.withUnsafeMutableBufferPointer { gather(s, counts: counts, $0, root: root) }
        }
        return rank == root ? split(flat, counts) : nil
    }

    /// Every rank's `count`, in rank order.
    func allgatherCounts(_ count: Int) -> [Int] {
        allgather([Int64(count)]).map { Int($0) }
    }

    private func split<T>(_ flat: [T], _ counts: [Int]) -> [[T]] {
        var out: [[T]] = [], o = 0
        for c in counts { out.append(Array(flat[o ..< o + c])); o += c }
        return out
    }
}

// ----------------------------------------------------------------------------------------------
// Memory shared by the ranks of a node, written once over the primitives above.

extension Communicator {
    /// Whether this rank is its node's lowest (the one that fills and moves node-shared memory).
    public var isNodeLeader: Bool { nodes.firstIndex(of: nodes[rank]) == rank }

    /// Number of nodes in the job.
    public var nodeCount: Int { (nodes.max() ?? 0) + 1 }

    /// `bytes` of memory shared by the ranks of this node (one copy per node, alive until the
    /// process ends): `fill` runs on the node's leader only, and every rank returns when it has
    /// finished, seeing what it wrote. For data every rank needs read-only, such as model weights
    /// converted once. Collective over all ranks. If `fill` throws on any node, every rank throws.
    public func nodeShared(bytes: Int, fill: (UnsafeMutableRawPointer) throws -> Void) throws -> UnsafeRawPointer {
        let base = nodeSharedBuffer(bytes: bytes)
        var failure: Error?
        if isNodeLeader {
            do { try fill(base) } catch { failure = error }
        }
        // Every leader's outcome (empty: done) reaches every rank.
        let message: [UInt8] = failure.map { Array("\($0)".utf8.prefix(4096)) } ?? []
        let messages = allgatherVariable(message)
        if let failure { throw failure }
        if let m = messages.first(where: { !$0.isEmpty }) { throw NodeSharedFillFailed(String(decoding: m, as: UTF8.self)) }
        nodeBarrier()
        return UnsafeRawPointer(base)
    }

    /// Makes every rank see the whole of the node-shared `buffer` after each rank wrote its own piece
    /// (`shards.piece(of: rank)`) into its node's copy: a node barrier, then the node leaders pass each
    /// piece from its owner's node to the others, then another node barrier. Copies only.
    public func shareNodePieces(_ buffer: UnsafeMutableBufferPointer<Float>, _ shards: BufferShards) {
        precondition(shards.ranks == size && shards.bounds.last == buffer.count, "shareNodePieces: shards of another buffer or job")
        nodeBarrier()
        guard nodeCount > 1 else { return }
        if isNodeLeader {
            for p in 0..<shards.ranks {
                let r = shards.elements(p ..< p + 1)
                broadcastAmongNodes(UnsafeMutableBufferPointer(rebasing: buffer[r]), rootNode: nodes[shards.owners[p]])
            }
        }
        nodeBarrier()
    }

    /// Makes every rank see the `buffer` that rank 0 wrote into its node's node-shared copy.
    public func shareFromRankZero(_ buffer: UnsafeMutableBufferPointer<Float>) {
        if nodeCount > 1 && isNodeLeader { broadcastAmongNodes(buffer, rootNode: 0) }
        nodeBarrier()
    }
}

/// The node's lowest rank failed to fill shared memory (`nodeShared`); other ranks report this.
public struct NodeSharedFillFailed: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
