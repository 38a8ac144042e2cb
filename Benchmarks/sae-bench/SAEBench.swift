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
        subcommands: [BLASBench.self, AllreduceBench.self, ForwardBench.self, SAEStepBench.self, HeldOutBench.self, GenerateBench.self])
}

/// Wall-clock seconds of `body`, best of `repeats` after one warm-up call.
func bestSeconds(repeats: Int, _ body: () -> Void) -> Double {
    body()
    var best = Double.infinity
    for _ in 0..<repeats {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
    }
    return best
}

/// Prints `object` as one line of JSON (sorted keys, so output is stable).
func printJSON(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}
