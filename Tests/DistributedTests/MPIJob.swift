import Foundation

/// Runs a program under a real `mpirun`, as a user would, and returns its exit status, output and
/// wall time. The environment comes from `launch/mpi-env.sh` (transports, root, oversubscription),
/// minus the OMPI_/PMIX_/OPAL_ variables a singleton MPI_Init in this process may have left: a
/// child mpirun that inherits them exits 1 silently (PLATFORM.md).
struct MPIJob {
    struct Result { var status: Int32; var stdout: String; var stderr: String; var seconds: Double }

    static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The directory holding the built executables (beside the test bundle).
    static var productsDirectory: URL {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // swift-testing runs the bundle itself or through swiftpm-testing-helper; walk up to the
        // directory that holds our executables.
        for _ in 0..<4 where !FileManager.default.fileExists(atPath: url.appendingPathComponent("mpi-check").path) {
            url.deleteLastPathComponent()
        }
        return url
    }

    static func run(ranks: Int, _ executable: String, _ arguments: [String],
                    environment extra: [String: String] = [:], timeout: Double = 120) throws -> Result {
        let exe = productsDirectory.appendingPathComponent(executable).path
        let env = repoRoot.appendingPathComponent("launch/mpi-env.sh").path
        let quoted = ([exe] + arguments).map { "'\($0)'" }.joined(separator: " ")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", ". '\(env)' && exec mpirun --oversubscribe -np \(ranks) \(quoted)"]
        var environment = ProcessInfo.processInfo.environment.filter { key, _ in
            !(key.hasPrefix("OMPI_") || key.hasPrefix("PMIX_") || key.hasPrefix("OPAL_"))
        }
        environment["SWIFT_BACKTRACE"] = "enable=no"
        for (k, v) in extra { environment[k] = v }
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let start = Date()
        try process.run()
        // Read both pipes concurrently so neither fills up and blocks the job.
        let outData = UncheckedBox(Data()), errData = UncheckedBox(Data())
        let group = DispatchGroup()
        for (pipe, box) in [(out, outData), (err, errData)] {
            group.enter()
            DispatchQueue.global().async {
                box.value = pipe.fileHandleForReading.readDataToEndOfFile()
                group.leave()
            }
        }
        if group.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            kill(-process.processIdentifier, SIGKILL)
            group.wait()
        }
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: outData.value, as: UTF8.self),
                      stderr: String(decoding: errData.value, as: UTF8.self),
                      seconds: Date().timeIntervalSince(start))
    }
}

final class UncheckedBox<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
