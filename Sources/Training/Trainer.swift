import Distributed
import ExitStatus
import Foundation
import Nanochat
import SAE
import Tensors

// The training loop of `sae-train`, the same on every rank (DESIGN 1, 3, 4):
//   every rank: its own documents → nanochat forward up to the deepest hook → shuffled blocks
//   every step, for every hook: local batch → loss and gradients per micro-batch → summed in a fixed
//   tree (PairwiseSum on the rank, then Communicator.treeAllreduce) → Adam step (identical on every
//   rank) → firing counts allreduced → dead-latent statistics
//   rank 0: metrics.jsonl, progress, checkpoints (with every rank's stream position gathered).
// With a `SingleProcessCommunicator` this is the 1-rank trainer; with MPI the data-parallel one.

public final class Trainer {
    public let config: TrainConfig
    let comm: Communicator
    /// The model and its tokenizer (nil when training from an activation cache).
    let source: LoadedModel?
    /// The cache being trained from (nil when training from the model).
    let cache: CacheManifest?
    /// This rank's documents (model mode).
    let documents: DocumentSource?
    let hookNames: [String]
    let store: CheckpointStore
    let localBatch: Int
    /// Micro-batches per rank when gradients are summed in the fixed tree (micro_batches / N), or nil
    /// for the plain allreduce of one gradient per rank (N does not divide micro_batches; batchtopk).
    let localMicroBatches: Int?
    let blockTokens: Int
    let totalSteps: Int
    let lrSchedule: LearningRateSchedule
    let lambdaSchedule: LambdaSchedule
    let saeConfig: SAEConfig
    /// The checkpoint to resume from, checked intact and compatible (nil for a fresh run).
    let resumePoint: CheckedCheckpoint?
    /// Seconds this rank took to load the model and tokenizer (0 from a cache).
    let loadSeconds: Double
    /// The pieces of each SAE's parameters whose Adam moments each rank keeps (ZeRO-1), or nil when
    /// every rank keeps all of them (one rank, or shard_optimizer false).
    let shards: BufferShards?

    // Mutable training state.
    public private(set) var trainers: [HookTrainer] = []
    public private(set) var step = 0
    public private(set) var tokens = 0
    var stream: ActivationStream! = nil
    /// Per hook, the rank's tree sum of its micro-batch gradients.
    var gradientSums: [PairwiseSum] = []
    var rng: Xoshiro256
    var stepSeconds = 0.0

    /// Checks the run directory, the checkpoint to resume and the sizes, then loads the model,
    /// tokenizer and data; throws `ConfigError`, `CorruptCheckpoint`, `DataError`, `NanochatError`,
    /// `SAEError` or `FormatError` for bad input (exit status 2).
    public init(config: TrainConfig, comm: Communicator) throws {
        try config.validate()
        self.config = config
        self.comm = comm
        // One BLAS thread, fixed for the whole run: OpenBLAS's sgemm rounds differently with
        // different thread counts, and the model forward (background) and the SAE step run at the
        // same time. A fixed count keeps every run, and every resumed run, bitwise reproducible.
        // More cores are used by more ranks (mpirun -np <cores>) and by the kernels' own threads.
        BLAS.setThreads(1)
        let N = comm.size
        guard config.batchTokens % N == 0 else {
            throw ConfigError("config", "batch_tokens (\(config.batchTokens)) must be a multiple of the number of ranks (\(N))")
        }
        localBatch = config.batchTokens / N
        // The fixed summation tree needs equal micro-batches, whole ones on each rank (so N is a power
        // of two too). BatchTopK selects across the local batch: splitting it would change the selection.
        localMicroBatches = config.localMicroBatches(ranks: N)

        // Everything that can be checked without loading the model is, first: the output directory,
        // the checkpoint to resume (intact, and made by a compatible config), d_in and so the memory
        // the SAEs need. A mistake there is reported in a second, not after the model has loaded.
        try checkOutputDirectory(config.out, what: "out")
        store = CheckpointStore(out: config.out, keep: config.keepCheckpoints)
        let runFile = URL(fileURLWithPath: config.out).appendingPathComponent("run.json").path
        if config.resuming {
            resumePoint = try store.resumePoint(resumeFrom: config.resumeFrom)
        } else {
            resumePoint = nil
            let latestLink = URL(fileURLWithPath: config.out).appendingPathComponent("latest").path
            if FileManager.default.fileExists(atPath: runFile) || !store.steps().isEmpty
                || (try? FileManager.default.destinationOfSymbolicLink(atPath: latestLink)) != nil {
                throw ConfigError(config.out, "holds another run (run.json, checkpoints); pass --resume to continue it or choose another out")
            }
        }

        let d: Int, plan: ModelPlan?
        if config.activations.isEmpty {
            let p = try ModelPlan(config)
            plan = p
            cache = nil
            hookNames = p.hooks.map(\.name)
            d = p.dIn
        } else {
            let manifest = try CacheManifest.read(config.activations)
            for h in config.hooks where !manifest.hooks.contains(h) {
                throw ConfigError("config", "hook \(h) is not in the activation cache \(config.activations) (it has \(manifest.hooks.joined(separator: ", ")))")
            }
            plan = nil
            cache = manifest
            hookNames = config.hooks.isEmpty ? manifest.hooks : config.hooks
            d = manifest.dIn
        }
        let ranksOnHost = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? 1
        try config.checkMemory(dIn: d, hooks: hookNames.count, ranks: N, ranksOnHost: ranksOnHost, fromModel: plan != nil)
        let m = config.latents(dIn: d)!          // checkMemory refuses an overflowing count
        let arch = Architecture(rawValue: config.arch)!
        var sc = SAEConfig(architecture: arch, dIn: d, dSAE: m, k: config.k,
                           l1: Float(config.l1 > 0 ? config.l1 : Trainer.defaultLambda(arch)))
        if config.auxK > 0 { sc.auxK = config.auxK }
        try sc.validate()
        saeConfig = sc
        shards = config.shardOptimizer && N > 1 ? optimizerShards(ParameterLayout(sc), ranks: N) : nil
        if let resumePoint { try Trainer.checkCompatible(resumePoint, config: config, sae: sc, hooks: hookNames, ranks: N) }

        let loadStart = Date()
        if let plan {
            source = try LoadedModel(plan, config, sharedMemory: comm.sharedMemory)
            documents = try DocumentSource(path: config.data, split: .train, valShards: config.valShards,
                                           rank: comm.rank, worldSize: N)
        } else {
            source = nil
            documents = nil
        }
        loadSeconds = Date().timeIntervalSince(loadStart)

        totalSteps = max(1, config.totalTokens / config.batchTokens)
        let lr = Float(config.lr > 0 ? config.lr : Trainer.defaultLearningRate(arch, dSAE: m))
        let warmup = min(totalSteps, config.lrWarmupTokens / config.batchTokens)
        lrSchedule = LearningRateSchedule(lr: lr, totalSteps: totalSteps, warmupSteps: warmup,
                                          decaySteps: config.lrDecay == "linear" ? totalSteps / 5 : 0)
        lambdaSchedule = LambdaSchedule(lambda: sc.l1, warmupSteps: config.l1WarmupTokens / config.batchTokens)

        blockTokens = max(1, config.bufferTokens / localBatch) * localBatch
        rng = Xoshiro256(seed: mixSeed(UInt64(config.seed), 0x5E5A))
    }

    /// The learning rate when the config leaves it at 0: ∝ 1/sqrt(d_sae) as in sparsify, scaled for
    /// our inputs (E‖x‖² = d_in). TopK's 4e-3 at d_sae 4096 was measured on the d4 model
    /// (blocks.2.hook_resid_post, 1.5M tokens, held-out FVU: 0.252 at 1e-3, 0.225 at 2e-3, 0.211 at
    /// 4e-3, 0.204 with the default linear decay); the L1-type architectures' value is a cautious
    /// guess, not yet tuned.
    static func defaultLearningRate(_ arch: Architecture, dSAE m: Int) -> Double {
        let base = arch.usesAuxK ? 4e-3 : 1e-3
        return base * (4096 / Double(m)).squareRoot()
    }

    /// λ when the config leaves it at 0: Anthropic's 5 for the decoder-norm-weighted L1 on inputs
    /// scaled to E‖x‖² = d; the same order for gated; JumpReLU's L0 coefficient is smaller.
    static func defaultLambda(_ arch: Architecture) -> Double {
        switch arch {
        case .relu, .gated: 5
        case .jumprelu: 0.5
        case .topk, .batchtopk: 0
        }
    }

    // ------------------------------------------------------------------------------------------
    // Start: fresh or resumed

    /// Initialises the SAEs (fresh run) or restores the latest checkpoint (`resume`).
    public func start() throws {
        let hosts = comm.gatherVariable(Array(ProcessInfo.processInfo.hostName.utf8))
        if let hosts {
            let names = Dictionary(grouping: hosts.map { String(decoding: $0, as: UTF8.self) }, by: { $0 })
                .map { "\($0.key) ×\($0.value.count)" }.sorted().joined(separator: ", ")
            log("\(comm.size) rank(s) on \(names); \(source.map { "\($0.location.modelPath) (\($0.model.profile.name))" } ?? "cache \(config.activations)"); "
                + "\(hookNames.count) hook(s), \(saeConfig.architecture.rawValue) d_in \(saeConfig.dIn) d_sae \(saeConfig.dSAE); "
                + "\(totalSteps) steps of \(config.batchTokens) tokens (\(localBatch) per rank)")
            if let note = source?.model.conversionNote { log(note + " (once per node)") }
            if let L = localMicroBatches {
                let M = L * comm.size
                log("gradients: \(M) micro-batches of \(config.batchTokens / M) tokens (\(L) per rank) "
                    + "summed in a fixed tree: any power-of-two number of ranks dividing \(M) trains bitwise the same SAE")
            } else if config.effectiveMicroBatches == nil {
                log("gradients: one per rank, summed " + (shards?.tree == true ? "in a fixed tree" : "by MPI_Allreduce")
                    + " (training from the model: each rank reads its own documents; micro_batches > 0 makes the sum "
                    + "independent of the number of ranks)")
            } else {
                log("gradients: one per rank, summed " + (shards?.tree == true ? "in a fixed tree" : "by MPI_Allreduce")
                    + "; np-invariance is not exact ("
                    + (config.arch == "batchtopk" ? "batchtopk selects across each rank's batch"
                       : config.batchTokens % config.effectiveMicroBatches! != 0
                         ? "batch_tokens \(config.batchTokens) is not a multiple of micro_batches \(config.effectiveMicroBatches!)"
                         : "\(comm.size) ranks do not divide micro_batches \(config.effectiveMicroBatches!)") + ")")
            }
            if let shards {
                let sizes = shards.pieceCounts
                log("optimizer state sharded (ZeRO-1): each rank keeps the Adam moments of \(sizes.min()!)-\(sizes.max()!) of "
                    + "the \(shards.bounds.last!) parameters per SAE; gradients reduce-scattered; parameters held once per node "
                    + "(\(comm.nodeCount) node(s)), each rank updating its piece"
                    + (shards.tree ? "" : " (\(comm.size) is not a power of two: by MPI_Allreduce + MPI_Allgatherv)"))
            }
        }
        var position = StreamPosition()
        if config.resuming { position = try restore() }
        stream = try makeStream(position: position)
        if !config.resuming { try initialise() }
        gradientSums = trainers.map { PairwiseSum(items: localMicroBatches ?? 1, count: $0.sae.params.count) }
        // BLAS is single-threaded; the TopK encoder splits rows over the cores this rank may use
        // (its results do not depend on the split, so runs stay reproducible).
        let local = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? 1
        for t in trainers { t.sae.encoderWorkers = max(1, ProcessInfoCores.count / max(1, local)) }
        // Each rank's memory once the model and the SAEs are loaded: private vs mapped vs node-shared.
        let m = ProcessMemory.now()
        let memory = comm.gatherVariable([m.anonKB, m.fileKB, m.shmemKB].map { Int64($0 ?? -1) } + [Int64(loadSeconds * 1000)])
        if let memory {
            let anon = memory.map { Double($0[0]) / 1024 }, a = memoryAccount, load = memory.map { Double($0[3]) / 1000 }
            if source != nil { log(String(format: "model and tokenizer loaded in %.2f-%.2f s per rank", load.min()!, load.max()!)) }
            log(String(format: "memory per rank after loading: private %.0f-%.0f MB, mapped model file %.0f MB, node-shared %.0f MB; "
                       + "planned private: SAE parameters %.0f MB%@, gradients %.0f MB, Adam moments %.0f MB%@, activation blocks %.0f MB, "
                       + "encoder workspace %.0f MB", anon.min()!, anon.max()!, Double(memory[0][1]) / 1024, Double(memory[0][2]) / 1024,
                       a["sae_parameters"]!, shards == nil ? "" : String(format: " (%.0f MB node-shared)", a["sae_parameters_node_shared"]!),
                       a["gradients"]!, a["adam_moments"]!, shards == nil ? "" : " (1/\(comm.size), sharded)",
                       a["activation_blocks"]!, a["encoder_workspace"]!))
        }
        if comm.isRoot { try writeRunInfo(memory: memory ?? []) }
    }

    /// One rank's planned private allocations in MB (all hooks), from the same arithmetic as the
    /// memory check: what the measured RssAnon is made of, besides the runtime and the BLAS buffers.
    var memoryAccount: [String: Double] {
        let N = comm.size, H = hookNames.count
        let needs = config.memoryNeeds(dIn: saeConfig.dIn, hooks: H, ranks: N, fromModel: source != nil)
        // Exact counts of the SAE's buffers (the check above bounds them before the config is known).
        let floats = ParameterLayout(saeConfig).count, partials = (localMicroBatches ?? 1).trailingZeroBitCount
        let slice = shards?.pieceCounts.max()! ?? floats
        func mb(_ bytes: Int?) -> Double { Double(bytes ?? 0) / 1_048_576 }
        // Sharded, the parameters are held once per node (node-shared, not private).
        return ["sae_parameters": shards == nil ? mb(H * floats * 4) : 0, "sae_parameters_node_shared": shards == nil ? 0 : mb(H * floats * 4),
                "gradients": mb(H * (1 + partials) * floats * 4),
                "adam_moments": mb(H * 2 * slice * 4),
                "encoder_workspace": mb(needs.first { $0.part == .encoderWorkspace }?.bytes),
                "activation_blocks": mb(needs.first { $0.part == .activationBlocks }?.bytes),
                "model_converted": mb(source?.model.convertedTensors.reduce(0) { $0 + $1.bytes })]
    }

    func makeStream(position: StreamPosition) throws -> ActivationStream {
        if let source, let docs = documents {
            let producer = ActivationProducer(model: source.model, tokenizer: source.tokenizer, source: docs,
                                              hooks: source.hooks, context: config.context, blockTokens: blockTokens,
                                              excludeBOS: config.excludeBOS, seed: config.seed, rank: comm.rank)
            return try ModelStream(producer: producer, localBatch: localBatch, position: position, totalSteps: totalSteps)
        }
        return try CacheStream(dir: config.activations, manifest: cache!, hooks: hookNames, globalBatch: config.batchTokens,
                               rank: comm.rank, size: comm.size, seed: config.seed)
    }

    /// Fresh SAEs: the input scale from the first data, parameters from rank 0, b_dec at the mean
    /// of the first global batch.
    func initialise() throws {
        let d = saeConfig.dIn
        try stream.load(step: 0)
        for h in hookNames.indices {
            // Input scale s = sqrt(d / E‖x‖²) over a sample of every rank's data.
            let sample = try stream.scaleSample(hook: h)
            let squares = sum(sample, width: 1) { row, acc in for v in row { acc[0] += Double(v) * Double(v) } }[0]
            let rows = Double(sample.rows * comm.size)
            let s = Float((Double(d) * rows / max(squares, 1e-30)).squareRoot())
            // Rank 0 initialises; the parameters are broadcast so every rank starts identical.
            var initRNG = Xoshiro256(seed: mixSeed(UInt64(config.seed), UInt64(h)))
            var sae: SAE
            if shards != nil {
                sae = try SAE(config: saeConfig, buffer: nodeSharedParameters())
                if comm.isRoot { sae.params.replaceSubrange(sae.params.indices, with: try SAE(config: saeConfig, rng: &initRNG).params) }
                sae.params.withUnsafeMutableBufferPointer { comm.shareFromRankZero($0) }
            } else {
                sae = try SAE(config: saeConfig, rng: &initRNG)
                sae.params.withUnsafeMutableBufferPointer { comm.broadcast($0, root: 0) }
            }
            // b_dec = mean of the first global batch (scaled).
            let mean = sum(stream.batch(hook: h), width: d) { row, acc in for i in 0..<d { acc[i] += Double(row[i] * s) } }
            writeOncePerNode {
                for i in 0..<d { sae.params[sae.layout.b_dec.lowerBound + i] = Float(mean[i] / Double(config.batchTokens)) }
            }
            let adam = AdamState(slice: shards?.piece(of: comm.rank) ?? 0 ..< sae.params.count)
            trainers.append(HookTrainer(hook: hookNames[h], sae: sae, adam: adam,
                                        stats: LatentStatistics(latents: saeConfig.dSAE), inputScale: s,
                                        grads: [Float](repeating: 0, count: sae.params.count)))
        }
    }

    /// Σ over every rank's rows of `x` [T·localBatch, d] (T consecutive local batches) of the
    /// `width` values `add` adds for each row, in an order that does not depend on N: each
    /// micro-batch's rows in order, then the micro-batches' sums in global order (step, rank,
    /// micro-batch). Input scale and b_dec come out bitwise the same for any N dividing micro_batches.
    func sum(_ x: Tensor, width: Int, _ add: (UnsafeBufferPointer<Float>, inout [Double]) -> Void) -> [Double] {
        let L = localMicroBatches ?? 1, pieceRows = localBatch / L, d = x.columns
        let pieces = x.rows / pieceRows
        precondition(pieces * pieceRows == x.rows && pieces % L == 0, "sum over \(x.rows) rows of \(L)×\(pieceRows)")
        var partial = [Double](repeating: 0, count: pieces * width)
        x.withConstBuffer { xb in
            for p in 0..<pieces {
                var acc = [Double](repeating: 0, count: width)
                for b in p * pieceRows ..< (p + 1) * pieceRows {
                    add(UnsafeBufferPointer(rebasing: xb[b * d ..< (b + 1) * d]), &acc)
                }
                for i in 0..<width { partial[p * width + i] = acc[i] }
            }
        }
        let all = comm.allgather(partial)            // rank-major: [rank][step][micro-batch][width]
        var total = [Double](repeating: 0, count: width)
        for t in 0 ..< pieces / L { for r in 0..<comm.size { for i in 0..<L {
            let o = ((r * pieces) + t * L + i) * width
            for w in 0..<width { total[w] += all[o + w] }
        } } }
        return total
    }

    /// Refuses to resume `point` with a config that trains something else: another number of ranks
    /// (from the model, where each rank has its own data cursor), other hooks, seed or SAE.
    static func checkCompatible(_ point: CheckedCheckpoint, config: TrainConfig, sae: SAEConfig, hooks: [String], ranks: Int) throws {
        let ckpt = point.trainer
        // From a cache the batches do not depend on N; from the model every rank has its own cursor.
        guard ckpt.worldSize == ranks || !config.activations.isEmpty else {
            throw ConfigError(config.out, "--resume: the checkpoint was written by \(ckpt.worldSize) rank(s), this job has \(ranks); resume with the same number of ranks (or train from an activation cache)")
        }
        guard ckpt.hooks == hooks else {
            throw ConfigError(config.out, "--resume: the checkpoint trains hooks \(ckpt.hooks.joined(separator: ", ")), the config asks for \(hooks.joined(separator: ", "))")
        }
        guard ckpt.seed == config.seed else { throw ConfigError(config.out, "--resume: the checkpoint used seed \(ckpt.seed), the config \(config.seed)") }
        for state in point.states {
            if let (was, asked) = saeDifference(state.sae, sae) {
                throw ConfigError("\(config.out)/\(state.hook)", "was trained with \(was); the config asks for \(asked)")
            }
        }
    }

    /// The first setting in which two SAE configs differ, as (that of `a`, that of `b`), in the
    /// config's own words ("d_sae 512"); nil if they are equal.
    static func saeDifference(_ a: SAEConfig, _ b: SAEConfig) -> (String, String)? {
        func auxK(_ c: SAEConfig) -> String { c.auxK.map(String.init) ?? "0 (d_in / 2)" }
        let fields: [(String, String, String)] = [
            ("arch", a.architecture.rawValue, b.architecture.rawValue),
            ("d_in", "\(a.dIn)", "\(b.dIn)"), ("d_sae", "\(a.dSAE)", "\(b.dSAE)"), ("k", "\(a.k)", "\(b.k)"),
            ("aux_k", auxK(a), auxK(b)), ("l1", "\(a.l1)", "\(b.l1)"),
        ]
        if let (name, x, y) = fields.first(where: { $0.1 != $0.2 }) { return ("\(name) \(x)", "\(name) \(y)") }
        return a == b ? nil : ("other SAE settings (aux_alpha, bandwidth, thresholds)", "this version's defaults")
    }

    /// Restores the checkpoint chosen (and checked) in `init`; returns this rank's stream position.
    func restore() throws -> StreamPosition {
        let point = resumePoint!, ckpt = point.trainer
        trainers = try hookNames.map { try HookTrainer.readState(from: point.dir.appendingPathComponent($0)) }
        trainers.forEach(keepOwnPiece)
        try trainers.forEach(shareRestoredParameters)
        step = ckpt.step
        tokens = ckpt.tokens
        rng = Xoshiro256(state: ckpt.rng)
        if comm.isRoot { log("resuming from step \(point.step) (\(formatCount(Double(tokens))) tokens) in \(point.dir.path)") }
        return cache == nil ? ckpt.positions[comm.rank] : StreamPosition()
    }

    // ------------------------------------------------------------------------------------------
    // The loop

    /// Trains to `total_tokens`, logging and checkpointing on the way, and writes the final checkpoint.
    public func run() throws {
        let metrics = comm.isRoot ? try MetricsLog(path: URL(fileURLWithPath: config.out).appendingPathComponent("metrics.jsonl").path) : nil
        var progress = ProgressLine()
        let t0 = Date(), tokens0 = tokens
        var last: [[String: Any]] = []
        while step < totalSteps {
            try stream.load(step: step)
            let tStep = Date()
            last = try trainStep()
            stepSeconds += Date().timeIntervalSince(tStep)
            step += 1
            tokens += config.batchTokens

            if config.resampleEvery > 0 && tokens / config.resampleEvery != (tokens - config.batchTokens) / config.resampleEvery {
                try resampleDeadLatents()
            }
            stream.finishStep()
            if step % config.checkEvery == 0 { try checkLockstep() }
            let rate = Double(tokens - tokens0) / max(Date().timeIntervalSince(t0), 1e-9)
            if step % config.logEvery == 0 || step == totalSteps {
                for var line in last {
                    line["tokens_per_s"] = rate
                    metrics?.write(line)
                }
            }
            if comm.isRoot, let first = last.first {
                progress.update(step: step, totalSteps: totalSteps, tokens: tokens, totalTokens: totalSteps * config.batchTokens,
                                tokensPerSecond: rate,
                                detail: String(format: "loss %.4g | fvu %.3f | L0 %.1f | dead %.1f%%", first["loss"] as! Double,
                                               first["fvu"] as! Double, first["l0"] as! Double, 100 * (first["dead_fraction"] as! Double)),
                                force: step == totalSteps)
            }
            if config.checkpointEvery > 0 && step < totalSteps
                && tokens / config.checkpointEvery != (tokens - config.batchTokens) / config.checkpointEvery {
                try checkpoint()
            }
        }
        try checkpoint()
        // The next block may still be computing on the prefetcher's thread: wait for it, so no
        // forward pass reads the weights after MPI_Finalize has unmapped node-shared memory.
        (stream as? ModelStream)?.prefetcher.drain()
        if comm.isRoot {
            let elapsed = Date().timeIntervalSince(t0)
            var data = ""
            if let m = stream as? ModelStream {
                data = String(format: ", model forward and store %.1fs for %@ tokens per rank (%.0f tok/s; the steps waited %.1fs for data)",
                              m.prefetcher.produceSeconds, formatCount(Double(m.prefetcher.producedTokens)),
                              Double(m.prefetcher.producedTokens) / max(m.prefetcher.produceSeconds, 1e-9), m.prefetcher.waitSeconds)
            }
            log(String(format: "done: %@ tokens in %@ (%@ tok/s); SAE steps %.1fs%@; SAEs in %@",
                       formatCount(Double(tokens)), formatDuration(elapsed), formatCount(Double(tokens - tokens0) / max(elapsed, 1e-9)),
                       stepSeconds, data, hookNames.map { config.out + "/" + $0 }.joined(separator: ", ")))
        }
    }

    /// One optimizer step of every hook's SAE on the next local batch. Returns the metrics lines.
    func trainStep() throws -> [[String: Any]] {
        let d = saeConfig.dIn, m = saeConfig.dSAE
        let lr = lrSchedule(step), λ = lambdaSchedule(step)
        var lines: [[String: Any]] = []
        for h in trainers.indices {
            let x = batch(hook: h)
            let deadMask = saeConfig.architecture.usesAuxK ? trainers[h].stats.deadMask(deadTokens: Int64(config.deadTokens)) : nil
            let t = trainers[h]
            // Sums over micro-batches and ranks: loss·rows, mse·rows, sse, variance, l0·rows, aux·rows,
            // sparsity·rows, rows, failed.
            var sums = [Double](repeating: 0, count: 9)
            var counts = [Int64](repeating: 0, count: m)
            var minKept: Float? = nil
            var failure = ""
            // Each micro-batch's gradient is the mean over its rows; their tree sum / (micro-batches
            // in the global batch) is the mean over the global batch. Without the tree: one piece per rank.
            let pieces = localMicroBatches ?? 1
            for i in 0..<pieces {
                let xi = piece(i, of: pieces, x)
                do {
                    let s = try t.sae.lossAndGradients(xi, into: &t.grads, lambda: λ, deadMask: deadMask)
                    let r = Double(s.rows)
                    let add = [s.loss * r, s.mse * r, s.sumSquaredError, s.totalVariance, s.l0 * r, s.auxLoss * r,
                               s.sparsityLoss * r, r, s.loss.isFinite ? 0 : 1]
                    for j in 0..<8 { sums[j] += add[j] }
                    sums[8] = max(sums[8], add[8])
                    for j in 0..<m { counts[j] += s.firingCounts[j] }
                    if let v = s.minKeptActivation { minKept = min(minKept ?? v, v) }
                    gradientSums[h].add(&t.grads)
                } catch {
                    failure = "\(error)"; sums[8] = 1
                    gradientSums[h].reset()
                    break
                }
            }
            comm.allreduce(&sums, .sum)
            if sums[8] > 0 {
                throw RunFailure("step \(step + 1), hook \(t.hook): the loss is not finite on \(Int(sums[8])) rank(s)"
                                 + (failure.isEmpty ? "" : " (\(failure))") + "; the last good checkpoint is kept in \(config.out)")
            }
            // Mean gradient over the global batch (÷ a power of two is exact), then Adam. Sharded:
            // each rank sums, scales and steps its own piece, then the parameters are allgathered.
            let divisor = Float((localMicroBatches ?? 1) * comm.size)
            if let shards {
                let piece = shards.piece(of: comm.rank)
                t.grads.withUnsafeMutableBufferPointer { g in
                    comm.reduceScatter(g, shards)
                    Tensors.scale(UnsafeMutableBufferPointer(rebasing: g[piece]), 1 / divisor)
                }
                t.sae.optimizerStep(gradients: &t.grads, adam: &t.adam, lr: lr)
                // (Written in place: a copy of the SAE alive during the step would have made it private.)
                precondition(t.sae.params.isShared, "hook \(t.hook): the parameters left node-shared memory")
                t.sae.params.withUnsafeMutableBufferPointer { comm.shareNodePieces($0, shards) }
            } else {
                if localMicroBatches != nil { comm.treeAllreduce(&t.grads) } else { comm.allreduce(&t.grads, .sum) }
                if divisor != 1 { scale(&t.grads, 1 / divisor) }
                t.sae.optimizerStep(gradients: &t.grads, adam: &t.adam, lr: lr)
            }
            comm.allreduce(&counts, .sum)
            if saeConfig.architecture == .batchtopk {
                let θ: Float = comm.allreduce(minKept ?? Float.infinity, .min)
                if θ.isFinite { trainers[h].sae.updateThreshold(with: θ) }
            }
            trainers[h].stats.record(counts: counts, tokens: Int64(config.batchTokens))
            let dead = trainers[h].stats.deadLatents(deadTokens: Int64(config.deadTokens)).count
            let rows = sums[7]
            var line: [String: Any] = ["step": step + 1, "tokens": tokens + config.batchTokens, "hook": trainers[h].hook]
            line["loss"] = sums[0] / rows
            line["mse"] = sums[1] / rows
            line["fvu"] = sums[3] > 0 ? sums[2] / sums[3] : 0.0
            line["l0"] = sums[4] / rows
            line["aux_loss"] = sums[5] / rows
            line["sparsity_loss"] = sums[6] / rows
            line["dead_fraction"] = Double(dead) / Double(m)
            line["lr"] = Double(lr)
            line["lambda"] = Double(λ)
            line["d_in"] = d
            line["d_sae"] = m
            lines.append(line)
        }
        return lines
    }

    /// The current local batch of hook `h`, scaled by its input scale: [localBatch, d].
    func batch(hook h: Int) -> Tensor {
        var x = stream.batch(hook: h)
        let s = trainers[h].inputScale
        if s != 1 { x *= s }
        return x
    }

    /// Rows [i·R, (i+1)·R) of x, R = x.rows / pieces (x itself when pieces is 1).
    func piece(_ i: Int, of pieces: Int, _ x: Tensor) -> Tensor {
        guard pieces > 1 else { return x }
        let r = x.rows / pieces, d = x.columns
        return Tensor(shape: [r, d], storage: Array(x.storage[i * r * d ..< (i + 1) * r * d]))
    }

    func scale(_ a: inout [Float], _ c: Float) {
        a.withUnsafeMutableBufferPointer { Tensors.scale($0, c) }
    }

    // ------------------------------------------------------------------------------------------
    // Resampling, lockstep, checkpoints

    /// Resamples each SAE's dead latents from the last batch of every rank (candidates weighted by
    /// their squared reconstruction loss), the same way on every rank.
    func resampleDeadLatents() throws {
        let d = saeConfig.dIn
        for h in trainers.indices {
            let dead = trainers[h].stats.deadLatents(deadTokens: Int64(config.deadTokens))
            guard !dead.isEmpty else { continue }
            let x = batch(hook: h)                   // the batch just trained on
            // Losses per micro-batch, so every row's loss comes from the same sgemm shapes for any N.
            var losses: [Float] = []
            let pieces = localMicroBatches ?? 1
            for p in 0..<pieces {
                let xp = piece(p, of: pieces, x)
                let xhat = try trainers[h].sae.decode(try trainers[h].sae.encode(xp))
                for b in 0..<xp.rows {
                    var e: Float = 0
                    for i in 0..<d { let t = xp.storage[b * d + i] - xhat.storage[b * d + i]; e += t * t }
                    losses.append(e)
                }
            }
            let allX = comm.allgather(x.storage), allLoss = comm.allgather(losses)
            let candidates = Tensor(shape: [allLoss.count, d], storage: allX)
            let t = trainers[h]
            let plan = try t.sae.resamplePlan(deadLatents: dead, candidates: candidates, losses: allLoss, rng: &rng)
            t.sae.resetMoments(of: plan, in: &t.adam)
            writeOncePerNode { t.sae.apply(plan) }
            for j in dead { trainers[h].stats.tokensSinceFired[j] = 0 }
            if comm.isRoot { log("step \(step): resampled \(dead.count) dead latent(s) of \(trainers[h].hook)") }
        }
        try checkLockstep()
    }

    /// Compares a checksum of every SAE's parameters across ranks; a mismatch ends the job.
    func checkLockstep() throws {
        guard comm.size > 1 else { return }
        let sums = trainers.map { Int64(bitPattern: $0.sae.params.withUnsafeBufferPointer(checksum)) }
        let all = comm.allgather(sums)
        for r in 1..<comm.size where Array(all[r * sums.count ..< (r + 1) * sums.count]) != Array(all[0..<sums.count]) {
            throw RunFailure("step \(step): the parameters of rank \(r) differ from rank 0's; ranks are out of lockstep")
        }
    }

    /// Writes a checkpoint (rank 0), with every rank's stream position gathered to it.
    public func checkpoint() throws {
        for t in trainers where !t.sae.params.allSatisfy({ $0.isFinite }) {
            throw RunFailure("step \(step), hook \(t.hook): parameters are not finite; the last good checkpoint is kept in \(config.out)")
        }
        let mine = try JSONEncoder().encode(stream.position)
        let gathered = comm.gatherVariable([UInt8](mine), root: 0)
        let moments = trainers.map(fullMoments)
        // The window of firing counts restarts at every checkpoint; sparsity.safetensors holds the
        // window that just ended. Reset before the state is written, so a resume sees the same.
        let fractions = trainers.map { $0.stats.firingFractions }
        for h in trainers.indices { trainers[h].stats.resetWindow() }
        guard let gathered else { return }
        let positions = try gathered.map { try JSONDecoder().decode(StreamPosition.self, from: Data($0)) }
        let ckpt = TrainerCheckpoint(step: step, tokens: tokens, worldSize: comm.size, seed: config.seed,
                                     hooks: hookNames, positions: positions, rng: rng.state)
        let extra = ["nanochat_checkpoint": source?.location.modelPath ?? cache!.model,
                     "activation_cache": config.activations,
                     "training_step": String(step), "training_tokens": String(tokens), "trainer": "nanosae"]
        try store.commit(step: step, hooks: hookNames) { dir in
            for (h, t) in trainers.enumerated() {
                let hookDir = dir.appendingPathComponent(t.hook)
                try t.sae.saveSAELens(to: hookDir.path,
                                      metadata: SAELensMetadata(hookName: t.hook, modelName: "nanochat",
                                                                contextSize: config.context, extra: extra),
                                      inputScale: t.inputScale, firingFractions: fractions[h])
                try t.writeState(to: hookDir, moments: moments[h]!)
            }
            try ckpt.write(to: dir)
        }
    }

    /// run.json; `memory` holds each rank's [RssAnon, RssFile, RssShmem] in kB after loading, and its
    /// model load time in ms.
    func writeRunInfo(memory: [[Int64]]) throws {
        var info: [String: Any] = [
            "config": config.jsonObject, "world_size": comm.size, "nanosae_version": nanosaeVersion,
            "openblas": BLAS.config, "openblas_core": BLAS.coreName, "swift": swiftVersion,
            "git_commit": gitCommit(), "started_at": ISO8601DateFormatter().string(from: Date()),
            "model": source.map { s -> [String: Any] in
                ["path": s.location.modelPath, "step": s.location.step, "profile": s.model.profile.name,
                 "n_layer": s.model.config.nLayer, "n_embd": s.model.config.nEmbd, "vocab_size": s.model.config.vocabSize]
            } ?? ["path": cache!.model, "activation_cache": config.activations],
            "d_in": saeConfig.dIn, "d_sae": saeConfig.dSAE, "local_batch_tokens": localBatch,
            "gradient_sum": localMicroBatches == nil ? "allreduce" : "tree",
            "block_tokens": blockTokens, "total_steps": totalSteps, "lr": Double(lrSchedule.lr),
            "lambda": Double(saeConfig.l1), "input_scales": Dictionary(uniqueKeysWithValues: trainers.map { ($0.hook, Double($0.inputScale)) }),
        ]
        if config.resuming { info["resumed_at_step"] = step }
        info["memory_per_rank_mb"] = memory.enumerated().map { r, kB in
            ["rank": r, "private": Double(kB[0]) / 1024, "mapped_file": Double(kB[1]) / 1024, "node_shared": Double(kB[2]) / 1024,
             "model_load_seconds": Double(kB[3]) / 1000]
        }
        // model_converted: tensors converted once per node (node-shared under MPI, private in one process).
        info["memory_account_mb"] = memoryAccount
        info["optimizer"] = shards.map { ["sharded": true, "ranks": comm.size, "tree": $0.tree] } ?? ["sharded": false]
        let out = URL(fileURLWithPath: config.out)
        let data = try JSONSerialization.data(withJSONObject: info, options: [.prettyPrinted, .sortedKeys])
        do {
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            try data.write(to: out.appendingPathComponent("run.json"), options: .atomic)
        } catch {
            throw ConfigError("out \(config.out)", "cannot write run.json there: \(error.localizedDescription)")
        }
    }

    func log(_ message: String) {
        FileHandle.standardError.write(Data("sae-train: \(message)\n".utf8))
    }
}

/// FNV-1a over the bit patterns of `values`: equal exactly when the floats are bitwise equal.
func checksum(_ values: UnsafeBufferPointer<Float>) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for v in values { h = (h ^ UInt64(v.bitPattern)) &* 0x100_0000_01B3 }
    return h
}

/// The version of nanosae, written into run.json and printed by `--version`.
public let nanosaeVersion = "0.1.0"

/// The Swift compiler the program was built with.
let swiftVersion: String = {
    #if compiler(>=6.3)
    "6.3 or later"
    #elseif compiler(>=6.0)
    "6.0-6.2"
    #else
    "before 6.0"
    #endif
}()

/// The git commit the program was built from, if its source tree is a git checkout.
func gitCommit() -> String {
    let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["git", "-C", dir, "rev-parse", "HEAD"]
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return "unknown" }
    p.waitUntilExit()
    let s = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        .trimmingCharacters(in: .whitespacesAndNewlines)
    return p.terminationStatus == 0 && !s.isEmpty ? s : "unknown"
}
