import ArgumentParser
import Foundation
import SAE
import Tensors

/// One SAE training step (loss + gradients, then the Adam step with the decoder-norm projection)
/// on a random batch: tokens/s, ms per step and GFLOP/s, beside the raw sgemm rate of the encoder's
/// shape measured in the same run (DESIGN 4: `sae-bench sae ... --json`).
///
/// FLOPs counted per token: topk/batchtopk 2·d·m (the one dense product; the sparse part is not
/// counted), relu/jumprelu 10·d·m (encode, decode, G·W_decᵀ, fᵀ·G, ∂preᵀ·x̃), gated 14·d·m (two decodes
/// and a doubled pullback).
struct SAEStepBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sae", abstract: "SAE training-step throughput vs the encoder's sgemm rate.")

    @Option(help: "Architecture: topk, batchtopk, relu, gated, jumprelu.") var arch = "topk"
    @Option(name: .customLong("d-in"), help: "Activation width d.") var dIn = 256
    @Option(name: .customLong("d-sae"), help: "Number of latents m.") var dSAE = 4096
    @Option(help: "Active latents per row (topk, batchtopk).") var k = 32
    @Option(help: "Rows per step.") var batch = 4096
    @Option(help: "Timed steps (after one warm-up step).") var steps = 20
    @Option(help: "BLAS threads (default: OpenBLAS's choice).") var threads: Int?
    @Option(name: .customLong("dead-fraction"),
            help: "Fraction of latents marked dead, so AuxK runs (topk, batchtopk; 0 = AuxK off).") var deadFraction = 0.0
    @Option(name: .customLong("encoder-workers"),
            help: "topk/batchtopk: row slices encoded concurrently with single-threaded BLAS (default: all cores; 1 = multi-threaded sgemm).")
    var encoderWorkers: Int?
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        guard let architecture = Architecture(rawValue: arch) else {
            throw ValidationError("--arch must be one of topk, batchtopk, relu, gated, jumprelu; got \(arch)")
        }
        if let threads { BLAS.setThreads(threads) }
        let machineThreads = BLAS.threads
        var rng = Xoshiro256(seed: 0)
        var sae = try SAE(config: SAEConfig(architecture: architecture, dIn: dIn, dSAE: dSAE, k: k, l1: 1e-3), rng: &rng)
        // TopK/BatchTopK: one encoder worker per BLAS thread, each calling single-threaded sgemm.
        let workers = architecture.usesAuxK ? (encoderWorkers ?? machineThreads) : 1
        if workers > 1 { sae.encoderWorkers = workers; BLAS.setThreads(1) }
        let x = Tensor.randomNormal(shape: [batch, dIn], rng: &rng)
        try sae.initializeDecoderBias(from: x)
        var grads = [Float](repeating: 0, count: sae.layout.count)
        var adam = AdamState(count: sae.layout.count)
        let dead: [Bool]? = deadFraction > 0
            ? (0..<dSAE).map { Double($0 % 1000) < deadFraction * 1000 } : nil

        // Resident set after setup (params, grads, Adam moments and batch are all written by now).
        let setupMB = peakResidentMB()
        var err: Error?
        let stepTimes = (0 ... steps).map { _ -> Double in
            let t0 = DispatchTime.now().uptimeNanoseconds
            do {
                _ = try sae.lossAndGradients(x, into: &grads, deadMask: dead)
                sae.optimizerStep(gradients: &grads, adam: &adam, lr: 1e-4)
            } catch { err = error }
            return Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        }
        if let err { throw err }
        let timed = stepTimes.dropFirst().sorted()
        let median = timed[timed.count / 2]
        let stepPeakMB = peakResidentMB()                       // before the sgemm probe's own buffers
        let tokensPerS = Double(batch) / median
        let flopsPerToken: Double = switch architecture {
        case .topk, .batchtopk: 2
        case .relu, .jumprelu: 10
        case .gated: 14
        }
        let gflops = tokensPerS * flopsPerToken * Double(dIn * dSAE) * 1e-9

        // The encoder's product alone, same layout (x̃ [B,d] · (W_encᵀ [m,d])ᵀ), on every BLAS thread.
        BLAS.setThreads(machineThreads)
        let a = Tensor.randomNormal(shape: [batch, dIn], rng: &rng), b = Tensor.randomNormal(shape: [dSAE, dIn], rng: &rng)
        var c = Tensor(shape: [batch, dSAE])
        let sgemmSeconds = a.withConstBuffer { pa in b.withConstBuffer { pb in c.withBuffer { pc in
            bestSeconds(repeats: 5) {
                sgemm(.none, .transposed, m: batch, n: dSAE, k: dIn, a: pa.baseAddress!, lda: dIn,
                      b: pb.baseAddress!, ldb: dIn, c: pc.baseAddress!, ldc: dSAE)
            }
        } } }
        let sgemmGflops = 2 * Double(batch * dIn * dSAE) / sgemmSeconds * 1e-9

        // Memory of a step against params + Adam state + batch (the bound is 1.3×): the step's
        // temporaries are the growth of the peak resident set over the setup; grads count as extra.
        let baseMB = Double(4 * (3 * sae.layout.count + batch * dIn)) / Double(1 << 20)
        let gradsMB = Double(4 * sae.layout.count) / Double(1 << 20)
        let extraMB = max(0, stepPeakMB - setupMB)
        let memoryRatio = (baseMB + gradsMB + extraMB) / baseMB
        // The same with the gradient buffer counted as training state (it lives as long as the
        // parameters: the allreduce and the optimizer read it), so only the step's own temporaries grow.
        let stateRatio = (baseMB + gradsMB + extraMB) / (baseMB + gradsMB)

        if json {
            var out: [String: Any] = ["tokens_per_s": tokensPerS, "step_ms": median * 1e3, "gflops": gflops]
            out["sgemm_gflops"] = sgemmGflops
            out["fraction_of_sgemm"] = gflops / sgemmGflops
            out["arch"] = arch
            out["d_in"] = dIn; out["d_sae"] = dSAE; out["k"] = k; out["batch"] = batch; out["steps"] = steps
            out["dead_fraction"] = deadFraction
            out["threads"] = machineThreads
            out["encoder_workers"] = workers
            out["core"] = BLAS.coreName
            out["params_adam_batch_mb"] = baseMB
            out["step_temporaries_mb"] = extraMB
            out["memory_ratio"] = memoryRatio
            out["memory_ratio_grads_as_state"] = stateRatio
            printJSON(out)
        } else {
            let shape = "\(arch) d=\(dIn) m=\(dSAE) k=\(k) B=\(batch) (\(BLAS.coreName), \(machineThreads) threads, \(workers) encoder workers)"
            let speed = String(format: "%.1f ms/step, %.0f tokens/s, %.1f GFLOP/s", median * 1e3, tokensPerS, gflops)
            let share = String(format: "%.0f%% of sgemm %.1f GFLOP/s", 100 * gflops / sgemmGflops, sgemmGflops)
            let memory = String(format: "memory %.2f× of params+Adam+batch %.1f MB (grads %.1f MB, step temporaries %.1f MB; %.2f× of params+grads+Adam+batch)",
                                memoryRatio, baseMB, gradsMB, extraMB, stateRatio)
            print("\(shape): \(speed) = \(share); \(memory)")
        }
    }
}

/// Peak resident set size of this process so far, in MiB.
func peakResidentMB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}
