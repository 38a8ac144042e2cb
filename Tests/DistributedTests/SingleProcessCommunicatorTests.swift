import Distributed
import Testing

/// The one-rank communicator is the identity for every collective.
@Suite struct SingleProcessCommunicatorTests {
    let comm = SingleProcessCommunicator()

    @Test func collectivesAreTheIdentity() {
        #expect(comm.rank == 0 && comm.size == 1 && comm.isRoot)
        var x: [Double] = [1.5, -2, 3]
        for op in ReduceOp.allCases {
            comm.allreduce(&x, op)
            #expect(x == [1.5, -2, 3])
        }
        comm.broadcast(&x, root: 0)
        #expect(x == [1.5, -2, 3])
        #expect(comm.allgather([Int32(4), 5]) == [4, 5])
        #expect(comm.allgatherVariable([Float(1)]) == [[1]])
        #expect(comm.gatherVariable([UInt8(9), 8]) == [[9, 8]])
        #expect(comm.broadcastVariable([Int64(7)]) == [7])
        #expect(comm.allreduce(Int64(3), .max) == 3)
        var y: [Float] = [1, 2, 3], z: [Float] = [0, 0, 0]
        y.withUnsafeBufferPointer { s in z.withUnsafeMutableBufferPointer { comm.sendRecv(s, $0, partner: 0) } }
        #expect(z == y)
        comm.treeAllreduce(&y)
        #expect(y == [1, 2, 3])
        comm.barrier()
    }
}
