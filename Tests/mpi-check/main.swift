// A small MPI program that DistributedTests starts under a real `mpirun -np N`. Each scenario
// checks the MPI Communicator against a serial computation and exits non-zero on any mismatch.
//
//   mpi-check collectives   allreduce (sum/max/min), broadcast, allgather, gather
//   mpi-check tree          treeAllreduce and PairwiseSum: bitwise the serial tree over all leaves
//   mpi-check abort R       rank R aborts while the others wait in a collective
//   mpi-check shared        nodeShared: one copy per node, filled once, seen by every rank
//   mpi-check shards        reduceScatter / allgather / gather over BufferShards (ZeRO-1's collectives)
import Distributed
import DistributedMPI
import Foundation

/// The buffer that `rank` contributes for a test of `n` elements, reproducible on every rank.
func contribution<T: BinaryFloatingPoint>(_: T.Type, rank: Int, n: Int, salt: UInt64) -> [T] {
    var state = UInt64(rank + 1) &* 0x9E37_79B9_7F4A_7C15 ^ salt &* 0xD1B5_4A32_D192_ED03 ^ UInt64(n)
    return (0..<n).map { _ in
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return T(Double(state >> 11) * 0x1p-53 * 2 - 1)
    }
}

nonisolated(unsafe) var failures = 0
func expect(_ ok: Bool, _ what: @autoclosure () -> String, _ comm: Communicator) {
    if !ok { failures += 1; FileHandle.standardError.write("rank \(comm.rank): FAILED \(what())\n".data(using: .utf8)!) }
}

func checkAllreduce<T: BinaryFloatingPoint & CollectiveScalar>(_ type: T.Type, n: Int, comm: Communicator) {
    let all = (0..<comm.size).map { contribution(T.self, rank: $0, n: n, salt: 1) }
    for op in ReduceOp.allCases {
        var buf = all[comm.rank]
        comm.allreduce(&buf, op)
        // The serial reduction, rank by rank in order.
        var serial = all[0]
        for r in 1..<comm.size {
            for i in 0..<n {
                switch op {
                case .sum: serial[i] += all[r][i]
                case .max: serial[i] = max(serial[i], all[r][i])
                case .min: serial[i] = min(serial[i], all[r][i])
                }
            }
        }
        var worst: T = 0
        for i in 0..<n { worst = max(worst, abs(buf[i] - serial[i])) }
        // max/min are exact; sums may differ from the serial order by rounding only.
        let tol: T = op == .sum ? T(comm.size) * T.ulpOfOne * 4 : 0
        expect(worst <= tol, "allreduce \(op) \(T.self) n=\(n): max error \(worst) > \(tol)", comm)
    }
}

/// The sum of `leaves` in the tree of adjacent pairs, ((l0 + l1) + (l2 + l3)) + …, serially.
func treeSum(_ leaves: ArraySlice<[Float]>) -> [Float] {
    if leaves.count == 1 { return leaves.first! }
    let mid = leaves.startIndex + leaves.count / 2
    return zip(treeSum(leaves[..<mid]), treeSum(leaves[mid...])).map { $0 + $1 }
}

let comm = MPICommunicator.start(
    maxChunkBytes: Int(ProcessInfo.processInfo.environment["NANOSAE_TEST_CHUNK_BYTES"] ?? "") ?? 1 << 30)
let args = CommandLine.arguments.dropFirst()

switch args.first {
case "collectives":
    for n in [1, 1000, 3 << 20] {
        checkAllreduce(Float.self, n: n, comm: comm)
        checkAllreduce(Double.self, n: n, comm: comm)
    }
    // Integer allreduce: the sum of ranks, the max and min rank.
    var ints: [Int64] = [Int64(comm.rank), Int64(comm.rank), Int64(comm.rank)]
    ints.withUnsafeMutableBufferPointer { b in
        comm.allreduce(UnsafeMutableBufferPointer(rebasing: b[0..<1]), .sum)
        comm.allreduce(UnsafeMutableBufferPointer(rebasing: b[1..<2]), .max)
        comm.allreduce(UnsafeMutableBufferPointer(rebasing: b[2..<3]), .min)
    }
    let s = comm.size
    expect(ints == [Int64(s * (s - 1) / 2), Int64(s - 1), 0], "Int64 allreduce \(ints)", comm)
    expect(comm.allreduce(Int32(comm.rank + 1), .sum) == Int32(s * (s + 1) / 2), "Int32 allreduce", comm)
    // Broadcast from every root, in a size that crosses chunk boundaries when chunks are small.
    for root in 0..<s {
        let truth: [Float] = contribution(Float.self, rank: root, n: 100_003, salt: 2)
        var buf = comm.rank == root ? truth : [Float](repeating: 0, count: truth.count)
        comm.broadcast(&buf, root: root)
        expect(buf == truth, "broadcast from root \(root)", comm)
    }
    let v = comm.broadcastVariable(comm.rank == 1 % s ? [UInt8]("hello".utf8) : [], root: 1 % s)
    expect(v == [UInt8]("hello".utf8), "broadcastVariable", comm)
    // Allgather: equal and variable lengths.
    let mine: [Double] = contribution(Double.self, rank: comm.rank, n: 777, salt: 3)
    let gathered = comm.allgather(mine)
    let expected = (0..<s).flatMap { contribution(Double.self, rank: $0, n: 777, salt: 3) as [Double] }
    expect(gathered == expected, "allgather", comm)
    let varying = comm.allgatherVariable([Int32](repeating: Int32(comm.rank), count: comm.rank + 1))
    expect(varying == (0..<s).map { [Int32](repeating: Int32($0), count: $0 + 1) }, "allgatherVariable", comm)
    // Gather to a non-zero root.
    let root = s - 1
    let g = comm.gatherVariable([Float](repeating: Float(comm.rank), count: 2 * comm.rank), root: root)
    if comm.rank == root {
        expect(g == (0..<s).map { [Float](repeating: Float($0), count: 2 * $0) }, "gather", comm)
    } else {
        expect(g == nil, "gather returns nil off the root", comm)
    }
    comm.barrier()
    let totalFailures = comm.allreduce(Int64(failures), .sum)
    if comm.rank == 0 { print("mpi-check collectives: \(s) ranks, \(totalFailures) failure(s)") }
    exit(totalFailures == 0 ? 0 : 1)

case "tree":
    // Buckets of a few hundred bytes make odd-sized segments and many buckets.
    let bucketBytes = Int(ProcessInfo.processInfo.environment["NANOSAE_TEST_BUCKET_BYTES"] ?? "") ?? 4 << 20
    // 2^20 + 4097 elements span two default (4 MiB) buckets.
    for n in [0, 1, 3, 1000, 100_003] + (bucketBytes < 1 << 16 ? [] : [(1 << 20) + 4097]) {
        // One leaf per rank.
        let leaves = (0..<comm.size).map { contribution(Float.self, rank: $0, n: n, salt: 4) as [Float] }
        var buf = leaves[comm.rank]
        comm.treeAllreduce(&buf, bucketBytes: bucketBytes)
        expect(buf == treeSum(leaves[...]), "treeAllreduce n=\(n): not the serial tree's bits", comm)
        if n > 100_003 { continue }
        // 16 micro-batch leaves: this rank's aligned block summed by PairwiseSum, then the ranks'.
        let M = 16, L = M / comm.size
        let micro = (0..<M).map { contribution(Float.self, rank: $0, n: n, salt: 5) as [Float] }
        var sum = PairwiseSum(items: L, count: n)
        var x = [Float]()
        for i in 0..<L { x = micro[comm.rank * L + i]; sum.add(&x) }
        comm.treeAllreduce(&x, bucketBytes: bucketBytes)
        expect(x == treeSum(micro[...]), "PairwiseSum + treeAllreduce n=\(n): not the serial tree's bits", comm)
    }
    let treeFailures = comm.allreduce(Int64(failures), .sum)
    if comm.rank == 0 { print("mpi-check tree: \(comm.size) ranks, \(treeFailures) failure(s)") }
    exit(treeFailures == 0 ? 0 : 1)

case "shards":
    // Any number of ranks: with a power of two the pieces hold the serial tree's bits, otherwise
    // MPI_Allreduce's. Cut points moved to multiples of 7 (as to decoder rows) and left alone;
    // 256-byte chunks make reduceScatter's messages many and uneven.
    for n in [0, 1, 3, 1000, 100_003] {
        for align in [{ (c: Int) in c }, { (c: Int) in (c + 3) / 7 * 7 }] {
            let shards = BufferShards(count: n, ranks: comm.size, align: align)
            let leaves = (0..<comm.size).map { contribution(Float.self, rank: $0, n: n, salt: 6) as [Float] }
            var expected = leaves[comm.rank]
            if shards.tree { expected = treeSum(leaves[...]) } else { comm.allreduce(&expected, .sum) }
            let piece = shards.piece(of: comm.rank)
            expect(shards.bounds.first == 0 && shards.bounds.last == n && zip(shards.bounds, shards.bounds.dropFirst()).allSatisfy { $0 <= $1 }
                   && Set(shards.owners) == Set(0..<comm.size), "shards n=\(n): \(shards)", comm)
            expect(shards.bounds.dropFirst().dropLast().allSatisfy { $0 == align($0) || $0 == n }, "cut points not aligned n=\(n)", comm)
            for chunk in [256, 2 << 20] {
                var buf = leaves[comm.rank]
                buf.withUnsafeMutableBufferPointer { comm.reduceScatter($0, shards, chunkBytes: chunk) }
                expect(buf[piece] == expected[piece], "reduceScatter n=\(n) chunk \(chunk): piece \(piece) wrong", comm)
            }
            var gathered = [Float](repeating: .nan, count: n)
            gathered.replaceSubrange(piece, with: expected[piece])
            gathered.withUnsafeMutableBufferPointer { comm.allgather($0, shards) }
            expect(gathered == expected, "allgather n=\(n): not every piece in place", comm)
            let root = comm.size - 1
            var full = [Float](repeating: .nan, count: comm.rank == root ? n : 0)
            Array(expected[piece]).withUnsafeBufferPointer { p in full.withUnsafeMutableBufferPointer { comm.gather(p, shards, into: $0, root: root) } }
            expect(comm.rank != root || full == expected, "gather n=\(n): not every piece in place", comm)
        }
    }
    let shardFailures = comm.allreduce(Int64(failures), .sum)
    if comm.rank == 0 { print("mpi-check shards: \(comm.size) ranks, \(shardFailures) failure(s)") }
    exit(shardFailures == 0 ? 0 : 1)

case "shared":
    // 64 MiB filled by the node's first rank: every rank reads the pattern back, and none holds it
    // in its private (anonymous) memory: shared windows count as RssShmem.
    func rssAnonKB() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("RssAnon:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }
    let n = 16 << 20, before = rssAnonKB()
    var fills = 0
    let p = try comm.nodeShared(bytes: n * 4) { raw in
        fills += 1
        let f = raw.bindMemory(to: UInt32.self, capacity: n)
        for i in 0..<n { f[i] = UInt32(truncatingIfNeeded: i &* 2_654_435_761) }
    }
    let f = p.bindMemory(to: UInt32.self, capacity: n)
    var wrong = 0
    for i in 0..<n where f[i] != UInt32(truncatingIfNeeded: i &* 2_654_435_761) { wrong += 1 }
    expect(wrong == 0, "nodeShared: \(wrong) elements differ from the leader's", comm)
    // (A node of one rank may get private memory: it is the one copy all the same.)
    let grown = rssAnonKB() - before
    expect(comm.nodes.filter { $0 == comm.nodes[comm.rank] }.count == 1 || grown < 32 << 10, "nodeShared: private memory grew by \(grown) kB for a 64 MiB shared buffer", comm)
    let totalFills = comm.allreduce(Int64(fills), .sum)
    expect(totalFills == comm.nodeCount, "nodeShared: filled \(totalFills) times on \(comm.nodeCount) node(s)", comm)
    // Nodes: one host is one node, unless NANOSAE_TEST_NODE_SIZE=K groups K consecutive ranks.
    let k = ProcessInfo.processInfo.environment["NANOSAE_TEST_NODE_SIZE"].flatMap(Int.init) ?? comm.size
    expect(comm.nodes == (0..<comm.size).map { $0 / k }, "nodes \(comm.nodes), expected nodes of \(k)", comm)
    expect(comm.isNodeLeader == (comm.rank % k == 0), "rank \(comm.rank) leads its node: \(comm.isNodeLeader)", comm)
    // Each rank writes its own piece of a node-shared buffer; afterwards every rank sees all pieces,
    // whichever node owns them. Then rank 0 alone writes the whole buffer, and every rank sees it.
    for n in [0, 5, 100_003] {
        let shards = BufferShards(count: n, ranks: comm.size) { ($0 + 3) / 7 * 7 }
        let buffer = UnsafeMutableBufferPointer(start: comm.nodeSharedBuffer(bytes: n * 4).bindMemory(to: Float.self, capacity: n), count: n)
        expect(buffer.allSatisfy { $0 == 0 }, "nodeSharedBuffer n=\(n): not zeroed", comm)
        comm.nodeBarrier()   // every rank has looked before any writes
        for i in shards.piece(of: comm.rank) { buffer[i] = Float(i) * 0.5 + 1 }
        comm.shareNodePieces(buffer, shards)
        let wrongPieces = buffer.indices.filter { buffer[$0] != Float($0) * 0.5 + 1 }.count
        expect(wrongPieces == 0, "shareNodePieces n=\(n): \(wrongPieces) element(s) wrong", comm)
        comm.barrier()   // nobody still reads the pieces when rank 0 overwrites them
        if comm.rank == 0 { for i in buffer.indices { buffer[i] = -Float(i) } }
        comm.shareFromRankZero(buffer)
        let wrongWhole = buffer.indices.filter { buffer[$0] != -Float($0) }.count
        expect(wrongWhole == 0, "shareFromRankZero n=\(n): \(wrongWhole) element(s) wrong", comm)
    }
    // A fill that fails fails on every rank of the node, with the leader's message.
    struct Refused: Error, CustomStringConvertible { var description: String { "refused on purpose" } }
    do {
        _ = try comm.nodeShared(bytes: 16) { _ in throw Refused() }
        expect(false, "nodeShared: a failed fill returned", comm)
    } catch {
        expect("\(error)".contains("refused on purpose"), "nodeShared: error \(error)", comm)
    }
    let sharedFailures = comm.allreduce(Int64(failures), .sum)
    if comm.rank == 0 { print("mpi-check shared: \(comm.size) ranks, \(sharedFailures) failure(s)") }
    exit(sharedFailures == 0 ? 0 : 1)

case "abort":
    let who = Int(args.dropFirst().first ?? "") ?? 1
    if comm.rank == who % comm.size {
        Thread.sleep(forTimeInterval: 0.5)
        comm.abort("mpi-check: rank \(comm.rank) aborts on purpose", code: 3)
    }
    // The others block in a collective that the aborting rank never joins.
    var x: [Float] = [1]
    comm.allreduce(&x, .sum)
    print("rank \(comm.rank): collective returned after an abort (should not happen)")
    exit(0)

default:
    FileHandle.standardError.write("usage: mpi-check collectives | tree | shared | abort [RANK]\n".data(using: .utf8)!)
    exit(2)
}
