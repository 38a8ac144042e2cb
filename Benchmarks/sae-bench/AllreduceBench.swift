import ArgumentParser
import Distributed
import DistributedMPI
import Foundation

/// Allreduce bandwidth of the MPI Communicator (run under `mpirun -np 2`), against a memcpy of the
/// same size on one rank. Bandwidth = bytes / seconds (the buffer size, not the bytes on the wire).
struct AllreduceBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce", abstract: "Allreduce GB/s (run under mpirun) vs memcpy.")

    @Option(help: "Buffer size in MiB.") var mib = 64
    @Option(help: "Timed repetitions (best is kept).") var repeats = 10
    @Flag(help: "Sum with the fixed-tree treeAllreduce (what training uses) instead of MPI_Allreduce.")
    var tree = false
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let comm = MPICommunicator.start()
        defer { comm.finalize() }
        let bytes = mib << 20
        var buf = [Float](repeating: 1, count: bytes / 4)
        var dst = [Float](repeating: 0, count: bytes / 4)
        comm.barrier()
        let reduce = bestSeconds(repeats: repeats) {
            if tree { comm.treeAllreduce(&buf) } else { comm.allreduce(&buf, .sum) }
            comm.barrier()
        }
        // Every rank must finish at the same moment for the time to mean anything: take the slowest.
        let slowest = comm.allreduce(reduce, .max)
        let copy = bestSeconds(repeats: repeats) {
            buf.withUnsafeBytes { s in dst.withUnsafeMutableBytes { d in d.copyMemory(from: s) } }
        }
        guard comm.isRoot else { return }
        let gbs = Double(bytes) / slowest * 1e-9, copyGBs = Double(bytes) / copy * 1e-9
        if json {
            printJSON(["ranks": comm.size, "mib": mib, "reduce": tree ? "tree" : "mpi", "allreduce_gb_per_s": gbs,
                       "allreduce_ms": slowest * 1e3, "memcpy_gb_per_s": copyGBs])
        } else {
            print(String(format: "%@ %d MiB over %d ranks: %.2f ms, %.2f GB/s; memcpy %.2f GB/s",
                         tree ? "treeAllreduce" : "allreduce", mib, comm.size, slowest * 1e3, gbs, copyGBs))
        }
    }
}
