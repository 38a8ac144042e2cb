import Foundation
import Testing

/// The MPI Communicator under a real `mpirun -np 4` of Tests/mpi-check, which compares every
/// collective with a serial computation on each rank. Serialized: each test starts 4 processes
/// on a 2-core machine.
@Suite(.serialized) struct MPICommunicatorTests {
    @Test func collectivesMatchSerialResultsOnFourRanks() throws {
        let r = try MPIJob.run(ranks: 4, "mpi-check", ["collectives"])
        #expect(r.status == 0, "mpirun exited \(r.status)\n\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("mpi-check collectives: 4 ranks, 0 failure(s)"), "\(r.stdout)")
    }

    @Test func buffersLargerThanOneMessageAreChunked() throws {
        // 64 KiB messages: the 3·2^20-element buffers go in 192 (Float) and 384 (Double) pieces.
        let r = try MPIJob.run(ranks: 4, "mpi-check", ["collectives"],
                               environment: ["NANOSAE_TEST_CHUNK_BYTES": "65536"])
        #expect(r.status == 0, "mpirun exited \(r.status)\n\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("0 failure(s)"), "\(r.stdout)")
    }

    @Test func abortOnOneRankEndsTheWholeJob() throws {
        // Rank 2 aborts while ranks 0, 1, 3 wait in an allreduce it never joins.
        let r = try MPIJob.run(ranks: 4, "mpi-check", ["abort", "2"], timeout: 60)
        #expect(r.status != 0, "the job must fail")
        #expect(r.seconds < 30, "the job took \(r.seconds) s to end")
        #expect(r.stderr.contains("rank 2 aborts on purpose"), "\(r.stderr)")
        #expect(!r.stdout.contains("collective returned"), "a rank went on past the abort")
    }

    @Test func saeTrainStartsAndExitsCleanlyUnderMPI() throws {
        let r = try MPIJob.run(ranks: 4, "sae-train", [])
        #expect(r.status == 0, "\(r.stderr)")
        for rank in 0..<4 { #expect(r.stdout.contains("rank \(rank) of 4"), "\(r.stdout)") }
    }
}
