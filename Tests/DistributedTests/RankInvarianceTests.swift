import Formats
import Foundation
import TestSupport
import Testing

/// From one activation cache the global batches do not depend on the number of ranks, and gradients
/// are summed per micro-batch in one fixed tree (Communicator.treeAllreduce), so -np 1, 2 and 4 train
/// bitwise the same SAE: relu with several resampling events inside the run, and topk with AuxK on;
/// with the Adam moments sharded over the ranks (ZeRO-1) or not, and with the parameters held once
/// per node on one node or on several (ranks grouped into nodes by NANOSAE_TEST_NODE_SIZE).
@Suite(.serialized) struct RankInvarianceTests {
    static let hook = "blocks.1.hook_resid_post"

    /// A 16k-row cache of the d4 fixture, written once by 2 ranks.
    static let cache: Result<String, Error> = Result {
        let dir = try TestPaths.temporaryDirectory("np-invariance-cache").path
        let r = try MPIJob.run(ranks: 2, "sae-train", [
            "cache", "--model", TestPaths.d4Model, "--data", TestPaths.textShards, "--hook", hook,
            "--context", "128", "--total-tokens", "16384", "--buffer-tokens", "8192", "--out", dir + "/cache"])
        guard r.status == 0 else { throw RunError("sae-train cache exited \(r.status): \(r.stderr)") }
        return dir + "/cache"
    }

    struct RunError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    /// Trains from the cache on each number of ranks (with the optimizer state sharded over them,
    /// the default, and unsharded on the ranks in `unsharded`; `nodes`: sharded runs of that many
    /// ranks split into nodes of that size); expects every run's SAE and training state (parameters
    /// and Adam moments, as saved) bitwise equal to the first run's. Returns the runs' stderr and the
    /// first run's metrics lines.
    static func expectSameWeights(ranks: [Int], unsharded: [Int] = [], nodes: [(ranks: Int, nodeSize: Int)] = [],
                                  _ flags: [String], name: String) throws -> (logs: [String], metrics: [[String: Any]]) {
        let cache = try Self.cache.get()
        let dir = try TestPaths.temporaryDirectory("np-invariance-\(name)").path
        var reference: [String: [Float]] = [:], logs: [String] = []
        let runs = ranks.map { ($0, true, 0) } + unsharded.map { ($0, false, 0) } + nodes.map { ($0.ranks, true, $0.nodeSize) }
        for (n, sharded, nodeSize) in runs {
            let out = "\(dir)/np\(n)" + (sharded ? "" : "-unsharded") + (nodeSize > 0 ? "-nodes-of-\(nodeSize)" : "")
            let r = try MPIJob.run(ranks: n, "sae-train", ["--activations", cache, "--out", out, "--shard-optimizer=\(sharded)"] + flags,
                                   environment: nodeSize > 0 ? ["NANOSAE_TEST_NODE_SIZE": "\(nodeSize)"] : [:])
            #expect(r.status == 0, "np \(n): \(r.stderr)")
            #expect(r.stderr.contains("sharded (ZeRO-1)") == (sharded && n > 1), "\(r.stderr)")
            if sharded && n > 1 { #expect(r.stderr.contains("(\(nodeSize > 0 ? n / nodeSize : 1) node(s))"), "\(r.stderr)") }
            logs.append(r.stderr)
            var tensors: [String: [Float]] = [:]
            for file in ["sae_weights.safetensors", "state/params.safetensors"] {
                let f = try SafetensorsFile(path: "\(out)/\(hook)/\(file)")
                for key in f.names { tensors[file + ":" + key] = try f.tensor(key).storage }
            }
            if reference.isEmpty { reference = tensors; continue }
            #expect(Set(tensors.keys) == Set(reference.keys))
            for (key, a) in reference {
                let b = try #require(tensors[key])
                let diff = zip(a, b).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
                let norm = a.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
                let same = a == b   // (a Bool: #expect(a == b) would diff the arrays element by element, for minutes)
                #expect(same, "\(name) \(key): np \(n)\(sharded ? "" : " unsharded")\(nodeSize > 0 ? " in nodes of \(nodeSize)" : "") differs from np \(ranks[0]) (relative difference \(diff / max(norm, 1e-30)))")
            }
        }
        #expect(reference.keys.contains("state/params.safetensors:adam_v"))
        let lines = try String(contentsOfFile: "\(dir)/np\(ranks[0])/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let metrics = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        return (logs, metrics)
    }

    @Test func reluWithResamplingIsBitwiseTheSameOnOneTwoAndFourRanks() throws {
        // A high λ and learning rate make latents die within the run; dead = silent for one step.
        let (logs, _) = try Self.expectSameWeights(ranks: [1, 2, 4], unsharded: [2], nodes: [(4, 2)], [
            "--arch", "relu", "--expansion", "4", "--lr", "0.01", "--l1", "10", "--batch-tokens", "1024",
            "--total-tokens", "32768", "--dead-tokens", "1024", "--resample-every", "4096"], name: "relu")
        for log in logs {
            #expect(log.contains("summed in a fixed tree"), "\(log)")
            let events = log.components(separatedBy: "resampled").count - 1
            #expect(events >= 3, "only \(events) resampling event(s): \(log)")
        }
    }

    @Test func topkWithAuxKIsBitwiseTheSameOnOneTwoAndFourRanks() throws {
        // k = 4 of 2048 latents: about half are dead after a few steps, so AuxK takes part.
        let (logs, metrics) = try Self.expectSameWeights(ranks: [1, 2, 4], unsharded: [4], nodes: [(2, 1)], [
            "--arch", "topk", "--expansion", "8", "--k", "4", "--aux-k", "16", "--batch-tokens", "1024",
            "--total-tokens", "16384", "--dead-tokens", "1024", "--log-every", "1"], name: "topk")
        #expect(logs.allSatisfy { $0.contains("summed in a fixed tree") })
        let aux = metrics.compactMap { $0["aux_loss"] as? Double }
        #expect(aux.count == 16 && aux.filter { $0 > 0 }.count >= 8, "AuxK took part in too few steps: \(aux)")
    }

    /// The saved Adam moments are the whole state whatever the sharding: a run checkpointed by 4
    /// sharded ranks resumes on 2 (on two nodes) and ends bitwise where an unbroken, unsharded 1-rank
    /// run ends.
    @Test func aShardedCheckpointResumesOnAnotherNumberOfRanks() throws {
        let cache = try Self.cache.get()
        let dir = try TestPaths.temporaryDirectory("np-invariance-resume").path
        let flags = ["--activations", cache, "--arch", "relu", "--expansion", "4", "--lr", "0.01", "--l1", "10",
                     "--batch-tokens", "1024", "--dead-tokens", "1024", "--resample-every", "4096", "--lr-decay", "none"]
        let whole = try MPIJob.run(ranks: 1, "sae-train", flags + ["--out", dir + "/whole", "--total-tokens", "16384",
                                                                    "--checkpoint-every", "8192"])
        #expect(whole.status == 0, "\(whole.stderr)")
        let first = try MPIJob.run(ranks: 4, "sae-train", flags + ["--out", dir + "/split", "--total-tokens", "8192"])
        #expect(first.status == 0 && first.stderr.contains("sharded (ZeRO-1)"), "\(first.stderr)")
        let second = try MPIJob.run(ranks: 2, "sae-train", flags + ["--out", dir + "/split", "--total-tokens", "16384", "--resume"],
                                    environment: ["NANOSAE_TEST_NODE_SIZE": "1"])
        #expect(second.status == 0 && second.stderr.contains("resuming from step 8"), "\(second.stderr)")
        for file in ["sae_weights.safetensors", "state/params.safetensors"] {
            let a = try SafetensorsFile(path: "\(dir)/whole/\(Self.hook)/\(file)"), b = try SafetensorsFile(path: "\(dir)/split/\(Self.hook)/\(file)")
            #expect(a.names == b.names)
            for key in a.names {
                let same = try a.tensor(key).storage == b.tensor(key).storage
                #expect(same, "\(file) \(key) differs after the resume")
            }
        }
    }

    @Test func ranksThatDoNotDivideMicroBatchesFallBackToAllreduceAndSaySo() throws {
        let cache = try Self.cache.get()
        let out = try TestPaths.temporaryDirectory("np-invariance-fallback").path + "/out"
        let r = try MPIJob.run(ranks: 2, "sae-train", ["--activations", cache, "--out", out, "--expansion", "2",
                                                       "--batch-tokens", "512", "--total-tokens", "1024", "--micro-batches", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("np-invariance is not exact (2 ranks do not divide micro_batches 1)"), "\(r.stderr)")
        let bad = try MPIJob.run(ranks: 1, "sae-train", ["--activations", cache, "--out", out + "2", "--micro-batches", "6"])
        #expect(bad.status == 2 && bad.stderr.contains("micro_batches must be a power of two"), "\(bad.stderr)")
    }
}
