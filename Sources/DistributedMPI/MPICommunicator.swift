import CMPI
import Distributed
import Foundation

/// The MPI implementation of `Communicator`, over MPI_COMM_WORLD of Debian's OpenMPI.
///
/// All MPI calls of nanosae live in this file. MPI is initialised once per process by `start()`
/// (a second call returns a communicator over the same world) and finalised at exit. MPI's own
/// "initialised" flag is the only process-wide state. Errors inside MPI abort the job
/// (MPI_ERRORS_ARE_FATAL, MPI's default), so no rank waits forever for a dead peer.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// Largest message of one collective call, in bytes. MPI counts are 32-bit, and transports
    /// misbehave near 2 GiB, so bigger buffers go in pieces of this size (tests lower it).
    public let maxChunkBytes: Int
    public let nodes: [Int]
    private let world: MPI_Comm
    /// The ranks of this rank's node; the node leaders (a leader's rank in `leaders` is its node's
    /// number; on the other ranks `leaders` holds the non-leaders and is not used).
    private let node: MPI_Comm
    private let leaders: MPI_Comm
    /// Every node-shared window, for `nodeBarrier`'s MPI_Win_sync. Never freed.
    private var windows: [MPI_Win] = []
    private let windowsLock = NSLock()

    /// Initialises MPI (thread level MULTIPLE) if this process has not yet, and registers
    /// MPI_Finalize to run at normal process exit.
    public static func start(maxChunkBytes: Int = 1 << 30) -> MPICommunicator {
        var initialised: Int32 = 0
        MPI_Initialized(&initialised)
        if initialised == 0 {
            var provided: Int32 = 0
            var argc: Int32 = 0
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
            MPI_Init_thread(&argc, &argv, Int32(MPI_THREAD_MULTIPLE), &provided)
            atexit {
                var finalised: Int32 = 0
                MPI_Finalized(&finalised)
                if finalised == 0 { MPI_Finalize() }
            }
        }
        return MPICommunicator(maxChunkBytes: maxChunkBytes)
    }

    private init(maxChunkBytes: Int) {
        precondition(maxChunkBytes >= 16, "maxChunkBytes \(maxChunkBytes) too small")
        world = nsae_comm_world()
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(world, &r)
        MPI_Comm_size(world, &s)
        rank = Int(r); size = Int(s)
        self.maxChunkBytes = maxChunkBytes
        var nodeComm: MPI_Comm?, leaderComm: MPI_Comm?
        if let k = ProcessInfo.processInfo.environment["NANOSAE_TEST_NODE_SIZE"].flatMap(Int.init), k > 0 {
            MPI_Comm_split(world, r / Int32(k), r, &nodeComm)
        } else {
            MPI_Comm_split_type(world, Int32(MPI_COMM_TYPE_SHARED), r, nsae_info_null(), &nodeComm)
        }
        node = nodeComm!
        var nodeRank: Int32 = 0
        MPI_Comm_rank(node, &nodeRank)
        // Leaders (node rank 0) in one communicator, ordered by world rank; the others in another, unused.
        MPI_Comm_split(world, nodeRank == 0 ? 0 : 1, r, &leaderComm)
        leaders = leaderComm!
        // Each rank's node: the leaders' ranks among the leaders, broadcast within each node.
        var nodeIndex: Int32 = 0
        if nodeRank == 0 { MPI_Comm_rank(leaders, &nodeIndex) }
        MPI_Bcast(&nodeIndex, 1, nsae_type_int32(), 0, node)
        var all = [Int32](repeating: 0, count: Int(s))
        MPI_Allgather(&nodeIndex, 1, nsae_type_int32(), &all, 1, nsae_type_int32(), world)
        nodes = all.map(Int.init)
    }

    /// The MPI library's version string (e.g. "Open MPI v4.1.4, ...").
    public static var libraryVersion: String {
        var buf = [CChar](repeating: 0, count: Int(MPI_MAX_LIBRARY_VERSION_STRING) + 1)
        var len: Int32 = 0
        MPI_Get_library_version(&buf, &len)
        let bytes = buf.prefix(Int(len)).prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
    }

    /// Finalises MPI now (idempotent); later collectives are errors.
    public func finalize() {
        var finalised: Int32 = 0
        MPI_Finalized(&finalised)
        if finalised == 0 { MPI_Finalize() }
    }

    // ------------------------------------------------------------------------------------------

    private func datatype<T: CollectiveScalar>(_: T.Type) -> MPI_Datatype {
        switch T.scalarKind {
        case .float32: nsae_type_float()
        case .float64: nsae_type_double()
        case .int32: nsae_type_int32()
        case .int64: nsae_type_int64()
        case .uint8: nsae_type_uint8()
        }
    }

    private func mpiOp(_ op: ReduceOp) -> MPI_Op {
        switch op {
        case .sum: nsae_op_sum()
        case .max: nsae_op_max()
        case .min: nsae_op_min()
        }
    }

    /// Element ranges of at most `maxChunkBytes` covering 0..<count.
    private func chunks<T>(_ count: Int, _: T.Type) -> StrideTo<Int> {
        stride(from: 0, to: count, by: max(1, maxChunkBytes / MemoryLayout<T>.stride))
    }

    private func chunkLength<T>(_ start: Int, _ count: Int, _: T.Type) -> Int32 {
        Int32(min(count - start, max(1, maxChunkBytes / MemoryLayout<T>.stride)))
    }

    public func allreduce<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, _ op: ReduceOp) {
        guard let base = buffer.baseAddress else { return }
        let type = datatype(T.self), mop = mpiOp(op)
        for start in chunks(buffer.count, T.self) {
            let n = chunkLength(start, buffer.count, T.self)
            check(MPI_Allreduce(nsae_in_place(), base + start, n, type, mop, world), "MPI_Allreduce")
        }
    }

    public func broadcast<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) {
        precondition(root >= 0 && root < size, "broadcast root \(root) of \(size) ranks")
        guard let base = buffer.baseAddress else { return }
        let type = datatype(T.self)
        for start in chunks(buffer.count, T.self) {
            let n = chunkLength(start, buffer.count, T.self)
            check(MPI_Bcast(base + start, n, type, Int32(root), world), "MPI_Bcast")
        }
    }

    public func allgather<T: CollectiveScalar>(_ send: UnsafeBufferPointer<T>, counts: [Int],
                                               _ recv: UnsafeMutableBufferPointer<T>) {
        let (c, d) = countsAndDisplacements(counts, send.count, recv.count, T.self, "allgather")
        var dummy = T.zero
        withUnsafeMutablePointer(to: &dummy) { dp in
            check(MPI_Allgatherv(send.baseAddress ?? UnsafePointer(dp), Int32(send.count), datatype(T.self),
                                 recv.baseAddress ?? dp, c, d, datatype(T.self), world), "MPI_Allgatherv")
        }
    }

    public func gather<T: CollectiveScalar>(_ send: UnsafeBufferPointer<T>, counts: [Int],
                                            _ recv: UnsafeMutableBufferPointer<T>, root: Int) {
        precondition(root >= 0 && root < size, "gather root \(root) of \(size) ranks")
        let (c, d) = countsAndDisplacements(counts, send.count, rank == root ? recv.count : nil,
                                            T.self, "gather")
        var dummy = T.zero
        withUnsafeMutablePointer(to: &dummy) { dp in
            check(MPI_Gatherv(send.baseAddress ?? UnsafePointer(dp), Int32(send.count), datatype(T.self),
                              recv.baseAddress ?? dp, c, d, datatype(T.self), Int32(root), world),
                  "MPI_Gatherv")
        }
    }

    /// MPI's 32-bit counts and displacements for a gather; refuses totals that do not fit.
    private func countsAndDisplacements<T>(_ counts: [Int], _ sendCount: Int, _ recvCount: Int?,
                                           _: T.Type, _ what: String) -> ([Int32], [Int32]) {
        precondition(counts.count == size, "\(what): \(counts.count) counts for \(size) ranks")
        precondition(counts[rank] == sendCount, "\(what): rank \(rank) sends \(sendCount), counts say \(counts[rank])")
        let total = counts.reduce(0, +)
        if let recvCount {
            precondition(recvCount == total, "\(what): receive buffer of \(recvCount) for \(total) elements")
        }
        precondition(total <= Int(Int32.max),
                     "\(what): \(total) elements exceed MPI's 32-bit displacements; gather in parts")
        var displacements: [Int32] = [], o = 0
        for n in counts { displacements.append(Int32(o)); o += n }
        return (counts.map { Int32($0) }, displacements)
    }

    public func sendRecv<T: CollectiveScalar>(_ send: UnsafeBufferPointer<T>, _ recv: UnsafeMutableBufferPointer<T>,
                                              partner: Int) {
        precondition(partner >= 0 && partner < size, "sendRecv partner \(partner) of \(size) ranks")
        // Both partners make the same number of calls: max(send, recv) is the same on both sides.
        let total = max(send.count, recv.count), type = datatype(T.self), peer = Int32(partner)
        var dummy = T.zero
        withUnsafeMutablePointer(to: &dummy) { dp in
            for start in chunks(total, T.self) {
                let ns = max(0, min(send.count - start, Int(chunkLength(start, total, T.self))))
                let nr = max(0, min(recv.count - start, Int(chunkLength(start, total, T.self))))
                check(MPI_Sendrecv(ns > 0 ? send.baseAddress! + start : UnsafePointer(dp), Int32(ns), type, peer, 0,
                                   nr > 0 ? recv.baseAddress! + start : dp, Int32(nr), type, peer, 0,
                                   world, nsae_status_ignore()), "MPI_Sendrecv")
            }
        }
    }

    public func barrier() {
        check(MPI_Barrier(world), "MPI_Barrier")
    }

    // ------------------------------------------------------------------------------------------
    // Nodes: MPI_Comm_split_type(SHARED) groups the ranks of a host (NANOSAE_TEST_NODE_SIZE=K groups
    // K consecutive ranks instead, so tests can run the multi-node paths on one machine); the
    // nodes' lowest ranks form `leaders`.

    public func nodeSharedBuffer(bytes: Int) -> UnsafeMutableRawPointer {
        // The leader allocates the whole window, the others query its base address.
        var base: UnsafeMutableRawPointer?
        var window: MPI_Win?
        check(MPI_Win_allocate_shared(MPI_Aint(isNodeLeader ? max(bytes, 1) : 0), 1, nsae_info_null(), node, &base, &window),
              "MPI_Win_allocate_shared")
        var size: MPI_Aint = 0, unit: Int32 = 0
        check(MPI_Win_shared_query(window!, 0, &size, &unit, &base), "MPI_Win_shared_query")
        check(MPI_Win_lock_all(Int32(MPI_MODE_NOCHECK), window!), "MPI_Win_lock_all")
        if isNodeLeader { base!.initializeMemory(as: UInt8.self, repeating: 0, count: max(bytes, 1)) }
        windowsLock.withLock { windows.append(window!) }
        nodeBarrier()
        return base!
    }

    /// MPI_Win_sync on every shared window around a barrier of the node: the unified memory model's
    /// way to order the ranks' loads and stores to shared memory.
    public func nodeBarrier() {
        let all = windowsLock.withLock { windows }
        for w in all { MPI_Win_sync(w) }
        check(MPI_Barrier(node), "MPI_Barrier")
        for w in all { MPI_Win_sync(w) }
    }

    public func broadcastAmongNodes<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, rootNode: Int) {
        precondition(isNodeLeader, "broadcastAmongNodes on rank \(rank), which does not lead its node")
        guard let base = buffer.baseAddress else { return }
        let type = datatype(T.self)
        for start in chunks(buffer.count, T.self) {
            check(MPI_Bcast(base + start, chunkLength(start, buffer.count, T.self), type, Int32(rootNode), leaders), "MPI_Bcast")
        }
    }

    public func abort(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("nanosae [rank \(rank)/\(size)]: \(message)\n".utf8))
        MPI_Abort(world, code == 0 ? 1 : code)
        exit(code == 0 ? 1 : code)  // MPI_Abort does not return; this satisfies the type checker.
    }

    private func check(_ rc: Int32, _ call: String) {
        if rc != MPI_SUCCESS { abort("\(call) failed with MPI error \(rc)") }
    }
}
