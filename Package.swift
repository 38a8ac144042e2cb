// swift-tools-version:6.0
// nanosae: sparse autoencoders on nanochat activations, trained data-parallel over MPI.
// Module boundaries follow ../shared/DESIGN.md section 1; each target holds one concern.
import Foundation
import PackageDescription

// The hand-written kernels (Tensors, SAE, Nanochat) compile for Haswell-class CPUs (AVX2, FMA) when
// the machine that builds them has those, as llm.c builds with -march=native: their SIMD8 loops
// then take one AVX instruction instead of two SSE ones (the TopK step: 0.62 → 0.66 of the sgemm
// rate, Benchmarks/README.md). Results are the same bits either way (no fused multiply-adds
// are formed implicitly). `NANOSAE_PORTABLE=1 swift build` builds for any x86-64.
let kernelSettings: [SwiftSetting] = {
    #if arch(x86_64) && os(Linux)
    let env = ProcessInfo.processInfo.environment
    guard env["NANOSAE_PORTABLE"] == nil,
          let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
    let flags = Set(line.split(separator: " ").map(String.init))
    let haswell = ["avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "popcnt", "abm"]
    return haswell.allSatisfy(flags.contains) ? [.unsafeFlags(["-target-cpu", "haswell"])] : []
    #else
    return []
    #endif
}()

let package = Package(
    name: "nanosae",
    products: [
        .executable(name: "sae-train", targets: ["sae-train"]),
        .executable(name: "sae-run", targets: ["sae-run"]),
        .executable(name: "sae-eval", targets: ["sae-eval"]),
        .executable(name: "sae-viz", targets: ["sae-viz"]),
        .executable(name: "sae-bench", targets: ["sae-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
    ],
    targets: [
        // Bindings: C libraries from Debian's -dev packages.
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CSnappy", path: "Sources/CSnappy", pkgConfig: "snappy",
                       providers: [.apt(["libsnappy-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),

        // Tensors and kernels: row-major Float32, BLAS-backed matmul, element-wise ops, top-k.
        .target(name: "Tensors", dependencies: ["COpenBLAS"], swiftSettings: kernelSettings),

        // File formats from outside: zip (stored, zip64), restricted pickle, torch state dicts,
        // safetensors (read and write), JSON configs. Every length and offset is checked.
        .target(name: "Formats", dependencies: ["Tensors", "CZlib"]),
        // Parquet (nanochat's text shards) and its codecs: only the data readers need them.
        .target(name: "Parquet", dependencies: ["Formats", "CZstd", "CSnappy", "CZlib"]),

        // nanochat: config and architecture profiles, weights, forward with hook points, KV cache,
        // tokenizer, generation.
        .target(name: "Nanochat", dependencies: ["Tensors", "Formats"], swiftSettings: kernelSettings),

        // SAE: architectures with forward and hand-written backward, Adam, dead latents,
        // resampling, the SAELens on-disk format.
        .target(name: "SAE", dependencies: ["Tensors", "Formats"], swiftSettings: kernelSettings),

        // Runtime: a nanochat model with SAEs attached, feature tracking and steering (no MPI,
        // no training code: users load SAEs on a laptop).
        .target(name: "Runtime", dependencies: ["Nanochat", "SAE", "Tensors"]),

        // Analysis: evaluation metrics (sae-eval) and the rows it evaluates.
        .target(name: "Analysis", dependencies: ["Distributed", "Nanochat", "SAE", "Tensors", "Formats", "Parquet", "Training"]),

        // Visualization: feature dashboards (one pass over the data collects per-feature top
        // contexts, interval samples and histograms), logit effects, static HTML pages, the
        // Neuronpedia export, and SVG plots of a training run's metrics.
        .target(name: "Visualization", dependencies: ["Formats", "Nanochat", "SAE", "Tensors"]),

        // Collective communication: the Communicator protocol and the single-process implementation
        // (no MPI, so the runtime and tests never need it) ...
        .target(name: "Distributed"),
        // ... and the MPI implementation over OpenMPI.
        .target(name: "DistributedMPI", dependencies: ["Distributed", "CMPI"]),

        // Training: configuration, data, activation store and cache, trainer, checkpoints, metrics.
        // How the programs end (exit statuses), shared by the four of them.
        .target(name: "ExitStatus"),
        .target(name: "Training", dependencies: ["Distributed", "ExitStatus", "Tensors", "Formats", "Parquet", "Nanochat", "SAE"]),

        // Executables.
        .executableTarget(name: "sae-train", dependencies: ["ExitStatus", "Training", "Distributed", "DistributedMPI", "Tensors", "Visualization"]),
        .executableTarget(name: "sae-run", dependencies: [
            "ExitStatus", "Runtime", "Nanochat", "SAE", "Formats", "Tensors",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Hummingbird", package: "hummingbird"),
        ]),
        .executableTarget(name: "sae-eval", dependencies: [
            "Analysis", "DistributedMPI", "ExitStatus", "Nanochat", "SAE", "Formats", "Training",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "sae-viz", dependencies: [
            "Visualization", "Analysis", "ExitStatus", "Nanochat", "SAE", "Training",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "sae-bench", dependencies: [
            "Distributed", "DistributedMPI", "Tensors", "COpenBLAS", "SAE", "Nanochat", "Formats", "Parquet", "Runtime",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Benchmarks/sae-bench"),

        // Tests. mpi-check is started by DistributedTests under a real mpirun.
        .executableTarget(name: "mpi-check", dependencies: ["Distributed", "DistributedMPI"],
                          path: "Tests/mpi-check"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors"]),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed", "Formats", "TestSupport", "mpi-check", "sae-train", "sae-bench"],
                    exclude: ["two-hosts.sh"]),
        // parquet/ holds test files found via #filePath; the script regenerates them.
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "Parquet", "Tensors", "TestSupport"],
                    exclude: ["parquet", "make_parquet_expectations.py"]),
        .testTarget(name: "NanochatTests", dependencies: ["Nanochat", "Formats", "Tensors", "TestSupport"]),
        // Where test data is, the text shards (and their parquet writer), running the programs.
        .target(name: "TestSupport", dependencies: ["CZstd"], path: "Tests/TestSupport"),
        .testTarget(name: "AnalysisTests", dependencies: ["Analysis", "TestSupport", "sae-eval", "sae-train"]),
        .testTarget(name: "VisualizationTests", dependencies: ["Visualization", "SAE", "Nanochat", "Tensors", "Formats",
                                                               "TestSupport", "sae-viz", "sae-train"],
                    exclude: ["neuronpedia-batch.schema.json"]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "Nanochat", "SAE", "Tensors", "Formats", "TestSupport", "sae-run"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Distributed", "Tensors", "SAE", "Formats",
                                                          "TestSupport", "sae-train"]),
        .testTarget(name: "SAETests", dependencies: ["SAE", "Formats", "Tensors", "TestSupport"]),
    ]
)
