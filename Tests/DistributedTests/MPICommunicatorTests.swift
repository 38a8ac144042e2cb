import Foundation
import TestSupport
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

    @Test func treeAllreduceIsBitwiseTheSerialTreeOnOneTwoAndFourRanks() throws {
        for ranks in [1, 2, 4] {
            let r = try MPIJob.run(ranks: ranks, "mpi-check", ["tree"])
            #expect(r.status == 0, "mpirun -np \(ranks) exited \(r.status)\n\(r.stdout)\n\(r.stderr)")
            #expect(r.stdout.contains("mpi-check tree: \(ranks) ranks, 0 failure(s)"), "\(r.stdout)")
        }
        // Small buckets and messages: odd segment sizes, many buckets, chunked sendrecv.
        let r = try MPIJob.run(ranks: 4, "mpi-check", ["tree"],
                               environment: ["NANOSAE_TEST_BUCKET_BYTES": "700", "NANOSAE_TEST_CHUNK_BYTES": "256"])
        #expect(r.status == 0, "mpirun exited \(r.status)\n\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("0 failure(s)"), "\(r.stdout)")
    }

    @Test func shardedReduceScatterAndAllgatherAreTheTreeOnAnyNumberOfRanks() throws {
        for ranks in [1, 2, 3, 4] {
            let r = try MPIJob.run(ranks: ranks, "mpi-check", ["shards"])
            #expect(r.status == 0, "mpirun -np \(ranks) exited \(r.status)\n\(r.stdout)\n\(r.stderr)")
            #expect(r.stdout.contains("mpi-check shards: \(ranks) ranks, 0 failure(s)"), "\(r.stdout)")
        }
    }

    /// On one node, and on ranks grouped into nodes of 2 (the last one smaller with 3 ranks).
    @Test func nodeSharedMemoryIsOneCopyFilledOncePerNode() throws {
        for (ranks, nodeSize) in [(1, 0), (3, 0), (4, 2), (3, 2)] {
            let r = try MPIJob.run(ranks: ranks, "mpi-check", ["shared"],
                                   environment: nodeSize > 0 ? ["NANOSAE_TEST_NODE_SIZE": "\(nodeSize)"] : [:])
            #expect(r.status == 0, "mpirun -np \(ranks) exited \(r.status)\n\(r.stdout)\n\(r.stderr)")
            #expect(r.stdout.contains("mpi-check shared: \(ranks) ranks, 0 failure(s)"), "\(r.stdout)")
        }
    }

    @Test func abortOnOneRankEndsTheWholeJob() throws {
        // Rank 2 aborts while ranks 0, 1, 3 wait in an allreduce it never joins.
        let r = try MPIJob.run(ranks: 4, "mpi-check", ["abort", "2"], timeout: 60)
        #expect(r.status != 0, "the job must fail")
        #expect(r.seconds < 30, "the job took \(r.seconds) s to end")
        #expect(r.stderr.contains("rank 2 aborts on purpose"), "\(r.stderr)")
        #expect(!r.stdout.contains("collective returned"), "a rank went on past the abort")
    }

    @Test func saeTrainTrainsOnFourRanksInLockstep() throws {
        // A real (tiny) data-parallel run: each of 4 ranks runs the d4 model on its own documents;
        // parameters are compared across ranks after every step (--check-every 1).
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("nanosae-mpi-\(UUID().uuidString)").path
        let r = try MPIJob.run(ranks: 4, "sae-train", [
            "--model", TestPaths.d4Model, "--data", TestPaths.textShards,
            "--hook", "blocks.0.hook_resid_post", "--context", "64", "--expansion", "2", "--k", "8",
            "--batch-tokens", "512", "--buffer-tokens", "512", "--total-tokens", "2048", "--check-every", "1",
            "--log-every", "1", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("4 rank(s)"), "\(r.stderr)")
        let lines = (try? String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8))?.split(separator: "\n") ?? []
        #expect(lines.count == 4, "one metrics line per step, written by rank 0 only")
        #expect(FileManager.default.fileExists(atPath: out + "/blocks.0.hook_resid_post/sae_weights.safetensors"))
    }

    @Test func badInputUnderMPIExitsTwoWithOneLine() throws {
        let r = try MPIJob.run(ranks: 4, "sae-train", ["--total-tokens", "-1"])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.components(separatedBy: "sae-train:").count == 2, "one message, not one per rank: \(r.stderr)")
    }
}
