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
    private let world: MPI_Comm

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

    /// An MPI-3 shared window over the node's ranks (MPI_Comm_split_type SHARED): the lowest rank
    /// allocates all `bytes` and fills them, the others query its base address; a barrier of the
    /// node, between MPI_Win_sync calls, makes the writes visible. The window is never freed.
    public func nodeShared(bytes: Int, fill: (UnsafeMutableRawPointer) throws -> Void) throws -> UnsafeRawPointer {
        var node: MPI_Comm?
        check(MPI_Comm_split_type(world, Int32(MPI_COMM_TYPE_SHARED), Int32(rank), nsae_info_null(), &node), "MPI_Comm_split_type")
        var nodeRank: Int32 = 0
        MPI_Comm_rank(node!, &nodeRank)
        let leader = nodeRank == 0
        var base: UnsafeMutableRawPointer?
        var window: MPI_Win?
        check(MPI_Win_allocate_shared(MPI_Aint(leader ? max(bytes, 1) : 0), 1, nsae_info_null(), node!, &base, &window),
              "MPI_Win_allocate_shared")
        var size: MPI_Aint = 0, unit: Int32 = 0
        check(MPI_Win_shared_query(window!, 0, &size, &unit, &base), "MPI_Win_shared_query")
        check(MPI_Win_lock_all(Int32(MPI_MODE_NOCHECK), window!), "MPI_Win_lock_all")
        var failure: [UInt8] = [], leaderError: Error?
        if leader {
            do { try fill(base!) } catch { leaderError = error; failure = Array("\(error)".utf8.prefix(4096)) }
        }
        MPI_Win_sync(window!)
        // The leader's outcome (empty: done) reaches every rank of the node.
        var length = Int64(failure.count)
        check(MPI_Bcast(&length, 1, nsae_type_int64(), 0, node!), "MPI_Bcast")
        if length > 0 {
            if !leader { failure = [UInt8](repeating: 0, count: Int(length)) }
            check(MPI_Bcast(&failure, Int32(length), nsae_type_uint8(), 0, node!), "MPI_Bcast")
            throw leaderError ?? NodeSharedFillFailed(String(decoding: failure, as: UTF8.self))
        }
        MPI_Win_sync(window!)
        return UnsafeRawPointer(base!)
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
