import ArgumentParser
import Foundation
import Tensors

/// `sae-bench`: the speed measurements behind the README's numbers. Each subcommand lives in its
/// own file; `--json` makes it print one JSON object (DESIGN 4) instead of a table.
@main
struct SAEBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sae-bench",
        abstract: "Benchmarks of nanosae's kernels, collectives, SAE steps and nanochat forward.",
        subcommands: [BLASBench.self, AllreduceBench.self, ForwardBench.self, CheckpointBench.self, SAEStepBench.self, HeldOutBench.self, GenerateBench.self])
}

/// Wall-clock seconds of `body`, best of `repeats` after one warm-up call.
/// With `threadCPU`, the calling thread's CPU time instead of wall time: for single-threaded work on
/// a machine that other jobs share, it leaves out the time the thread waited for a core.
func bestSeconds(repeats: Int, threadCPU: Bool = false, _ body: () -> Void) -> Double {
    func now() -> Double {
        if threadCPU {
            var t = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
            return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
        }
        return Double(DispatchTime.now().uptimeNanoseconds) * 1e-9
    }
    body()
    var best = Double.infinity
    for _ in 0..<repeats {
        let t0 = now()
        body()
        best = min(best, now() - t0)
    }
    return best
}

/// Prints `object` as one line of JSON (sorted keys, so output is stable).
func printJSON(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}
