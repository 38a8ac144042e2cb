import ArgumentParser
import Distributed
import DistributedMPI
import Foundation
import Tensors

/// `mpirun -np N sae-train ...`: collect nanochat activations and train SAEs data-parallel.
///
/// This revision brings the program as far as the MPI start: every rank initialises MPI, rank 0
/// reports the world, and the job exits cleanly. The trainer arrives with the training issues.
@main
struct SAETrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sae-train",
        abstract: "Train sparse autoencoders on nanochat activations, data-parallel over MPI ranks.",
        discussion: """
            Start it under mpirun: `mpirun -np 4 sae-train`. Every rank runs the same program; \
            rank 0 reports and (with the trainer) writes checkpoints.
            """,
        version: "sae-train \(nanosaeVersion)")

    @Option(help: "OpenBLAS threads per rank (default: OPENBLAS_NUM_THREADS or OpenBLAS's choice).")
    var threads: Int?

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be >= 1, got \(t)") }
    }

    func run() throws {
        let comm = MPICommunicator.start()
        defer { comm.finalize() }
        if let t = threads { BLAS.setThreads(t) }
        let host = ProcessInfo.processInfo.hostName
        // Gather every rank's host name so rank 0 can print the whole world in one block.
        let names = comm.gatherVariable(Array(host.utf8))
        comm.barrier()
        if let names {
            print("sae-train \(nanosaeVersion): \(comm.size) rank(s), \(MPICommunicator.libraryVersion)")
            for (r, n) in names.enumerated() {
                print("  rank \(r) of \(comm.size) on \(String(decoding: n, as: UTF8.self))")
            }
            print("  OpenBLAS \(BLAS.coreName), \(BLAS.threads) thread(s) per rank")
        }
    }
}

let nanosaeVersion = "0.1.0"
