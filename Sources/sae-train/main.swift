import Distributed
import DistributedMPI
import ExitStatus
import Foundation
import Tensors
import Training
import Visualization

// `mpirun -np N sae-train --config FILE [flags]` (DESIGN 4): collect nanochat activations and
// train SAEs, data-parallel over the MPI ranks. Every config key is also a flag; flags win.
// Exit status: 0 done, 2 bad input (one line naming the file/key/flag), 1 a failure of the run.

let usage = """
    usage: sae-train [--config FILE] [--KEY VALUE ...]
           mpirun -np N sae-train --config FILE [--KEY VALUE ...]
           mpirun -np N sae-train cache --config FILE --out DIR [--KEY VALUE ...]
           mpirun -np N sae-train --activations DIR [--KEY VALUE ...]

    Trains one sparse autoencoder per hook on a nanochat model's activations. The config file is one
    JSON object whose keys are the flags below with underscores (batch_tokens); flags override it.
    Writes OUT/<hook>/ (SAELens format + state/), OUT/metrics.jsonl, OUT/run.json, OUT/checkpoints/,
    and plots of the metrics OUT/{loss,fvu,l0,dead_fraction}.svg (as `sae-viz --run OUT` does).
    `cache` only collects activations: total_tokens rows per hook into DIR (each rank its own files,
    DIR/manifest.json last); `--activations DIR` trains from such a cache, with batches that do not
    depend on the number of ranks.

    options:
      --config FILE                 JSON config file
      --help, -h                    this help
      --version                     print the version
    keys (as flags):
    \(TrainConfig.flagHelp)
    """

/// Ends the job with `error`'s message on one line. Under MPI every rank must end, so it goes
/// through MPI_Abort; rank 0 speaks first (the others wait a moment, normally killed before they
/// print), so a bad config gives one line, and an error only one rank saw still gets reported.
func fail(_ error: Error, comm: MPICommunicator) -> Never {
    // (A damaged checkpoint, `CorruptCheckpoint`, is bad input: a rerun cannot fix it, so the
    // launchers do not restart it; `CheckpointError`, one that could not be written, is not.)
    let code = exitStatus(for: error)
    let message = "sae-train: \(error)"
    if comm.size == 1 {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        comm.finalize()
        quit(code)
    }
    if comm.rank != 0 { Thread.sleep(forTimeInterval: 2) }
    comm.abort(message, code: code)
}

/// Exits without running library destructors: OpenBLAS 0.3.21's exit-time thread-pool shutdown
/// can hang forever after BLAS was called from two threads (the activation prefetcher and the
/// SAE step), seen as a join in blas_thread_shutdown_. Every file is written and synced by then.
func quit(_ code: Int32) -> Never {
    fflush(nil)
    _exit(code)
}

func main() {
    var arguments = Array(CommandLine.arguments.dropFirst())
    if arguments.contains("--help") || arguments.contains("-h") { print(usage); exit(0) }
    if arguments.contains("--version") { print("sae-train \(nanosaeVersion)"); exit(0) }
    let cacheMode = arguments.first == "cache"
    if cacheMode { arguments.removeFirst() }
    let comm = MPICommunicator.start()
    do {
        var config = TrainConfig()
        if let i = arguments.firstIndex(of: "--config") {
            guard i + 1 < arguments.count else { throw ConfigError("command line", "--config needs a file") }
            try config.apply(configFile: arguments[i + 1])
            arguments.removeSubrange(i...(i + 1))
        }
        try config.apply(flags: arguments)
        if cacheMode {
            try writeActivationCache(config: config, comm: comm)
            comm.finalize()
            quit(0)
        }
        let trainer = try Trainer(config: config, comm: comm)
        try trainer.start()
        try trainer.run()
        // The run's plots (what `sae-viz --run OUT` writes); a plot that cannot be written costs
        // the trained SAE nothing, so it is only reported.
        if comm.isRoot {
            do { try writeTrainingPlots(run: config.out) } catch {
                FileHandle.standardError.write(Data("sae-train: plots not written: \(error)\n".utf8))
            }
        }
        comm.finalize()
        quit(0)
    } catch {
        fail(error, comm: comm)
    }
}

main()
