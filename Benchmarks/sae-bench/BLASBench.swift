import ArgumentParser
import COpenBLAS
import Tensors

/// sgemm GFLOP/s through our wrapper (`Tensors.sgemm`) against a raw `cblas_sgemm` call on the
/// same buffers, for the shapes the issue names, at 1 and 2 threads.
struct BLASBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blas", abstract: "sgemm through the Tensors wrapper vs raw cblas.")

    @Option(help: "Timed repetitions per measurement (best is kept).") var repeats = 10
    @Option(help: "Thread counts to measure, comma-separated.") var threads = "1,2"
    @Flag(help: "Print one JSON object per measurement.") var json = false

    func run() throws {
        let shapes: [(m: Int, k: Int, n: Int)] = [(1024, 1024, 1024), (4096, 256, 4096)]
        if !json { print("OpenBLAS core \(BLAS.coreName)\n  m×k×n             threads  raw GFLOP/s  wrapper GFLOP/s  overhead") }
        for t in threads.split(separator: ",").compactMap({ Int($0) }) {
            BLAS.setThreads(t)
            for (m, k, n) in shapes {
                var rng = Xoshiro256(seed: 1)
                let a = Tensor.randomNormal(shape: [m, k], rng: &rng)
                let b = Tensor.randomNormal(shape: [k, n], rng: &rng)
                var c = Tensor(shape: [m, n])
                let flops = 2.0 * Double(m * k * n)
                var raw = 0.0, wrapped = 0.0
                a.withConstBuffer { pa in b.withConstBuffer { pb in c.withBuffer { pc in
                    // Interleave the two so drift in machine load hits both alike.
                    var rawBest = Double.infinity, wrapBest = Double.infinity
                    for _ in 0..<max(1, repeats / 2) {
                        rawBest = min(rawBest, bestSeconds(repeats: 2) {
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                                        1, pa.baseAddress, Int32(k), pb.baseAddress, Int32(n), 0, pc.baseAddress, Int32(n))
                        })
                        wrapBest = min(wrapBest, bestSeconds(repeats: 2) {
                            sgemm(.none, .none, m: m, n: n, k: k, a: pa.baseAddress!, lda: k,
                                  b: pb.baseAddress!, ldb: n, c: pc.baseAddress!, ldc: n)
                        })
                    }
                    raw = flops / rawBest * 1e-9; wrapped = flops / wrapBest * 1e-9
                } } }
                let overhead = (raw - wrapped) / raw * 100
                if json {
                    printJSON(["m": m, "k": k, "n": n, "threads": t, "raw_gflops": raw,
                               "wrapper_gflops": wrapped, "overhead_percent": overhead, "core": BLAS.coreName])
                } else {
                    print(String(format: "  %4d×%4d×%4d   %7d  %11.1f  %15.1f  %7.2f%%", m, k, n, t, raw, wrapped, overhead))
                }
            }
        }
    }
}
