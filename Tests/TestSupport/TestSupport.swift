import Foundation

// What several test targets share: where the repo, the test data and the built programs are, and
// how to run a program as a user would.

public enum TestPaths {
    /// The repository root (this file is Tests/TestSupport/TestSupport.swift).
    public static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    // The one place that says where test data is. Everything is in the repository except the
    // document text, which Debian's python3.11-doc installs (TextShards).

    /// `Tests/Fixtures`: nanochat's reference outputs and the v0 model (its README says how each
    /// file was made).
    public static let fixtures = repoRoot.appendingPathComponent("Tests/Fixtures")

    /// The d4 model as a nanochat base dir (`base_checkpoints/d4`, `tokenizer/tokenizer.pkl`):
    /// `models/nanochat-d4`, which the README's examples use too.
    public static let d4BaseDir = repoRoot.appendingPathComponent("models/nanochat-d4").path
    public static let d4Model = d4BaseDir + "/base_checkpoints/d4"
    public static let d4Tokenizer = d4BaseDir + "/tokenizer/tokenizer.pkl"
    /// nanochat's outputs for d4: forward.safetensors, generate.json, tokenizer.json.
    public static let d4Reference = fixtures.appendingPathComponent("nanochat-d4/reference").path

    /// The v0 (first release) random-weight model: model_000000.pt, meta_000000.json, reference/.
    public static let v0 = fixtures.appendingPathComponent("nanochat-v0-random").path

    /// Four nanochat-style parquet shards of Debian-installed text (the last is validation).
    public static var textShards: String { TextShards.directory }

    /// The directory holding the built executables (beside the test bundle).
    public static var products: URL {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 where !FileManager.default.fileExists(atPath: url.appendingPathComponent("sae-train").path) {
            url.deleteLastPathComponent()
        }
        return url
    }

    /// A fresh, empty temporary directory.
    public static func temporaryDirectory(_ label: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nanosae-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// A finished (or killed) program run.
public struct ProcessResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var seconds: Double
}

/// Runs `command` through /bin/bash -c with the environment cleaned of MPI state (a child mpirun
/// or MPI singleton that inherits another job's OMPI_/PMIX_/OPAL_ variables fails, PLATFORM.md).
/// `killWhen`, polled every 50 ms, may end the process with SIGKILL (crash tests); `timeout` too.
public func runShell(_ command: String, environment extra: [String: String] = [:], timeout: Double = 300,
                     killWhen: (() -> Bool)? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = ["-c", command]
    var environment = ProcessInfo.processInfo.environment.filter { key, _ in
        !(key.hasPrefix("OMPI_") || key.hasPrefix("PMIX_") || key.hasPrefix("OPAL_"))
    }
    environment["SWIFT_BACKTRACE"] = "enable=no"
    for (k, v) in extra { environment[k] = v }
    process.environment = environment
    let outFile = FileManager.default.temporaryDirectory.appendingPathComponent("nanosae-out-\(UUID().uuidString)")
    let errFile = FileManager.default.temporaryDirectory.appendingPathComponent("nanosae-err-\(UUID().uuidString)")
    FileManager.default.createFile(atPath: outFile.path, contents: nil)
    FileManager.default.createFile(atPath: errFile.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: outFile); try? FileManager.default.removeItem(at: errFile) }
    process.standardOutput = try FileHandle(forWritingTo: outFile)
    process.standardError = try FileHandle(forWritingTo: errFile)
    let start = Date()
    try process.run()
    while process.isRunning {
        if Date().timeIntervalSince(start) > timeout || killWhen?() == true {
            kill(process.processIdentifier, SIGKILL)
            // Children of the shell (the program, an MPI orted) go too.
            _ = try? runPkill(parent: process.processIdentifier)
            break
        }
        Thread.sleep(forTimeInterval: 0.05)
    }
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus,
                         stdout: (try? String(contentsOf: outFile, encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOf: errFile, encoding: .utf8)) ?? "",
                         seconds: Date().timeIntervalSince(start))
}

private func runPkill(parent: Int32) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/pkill")
    p.arguments = ["-KILL", "-P", String(parent)]
    try p.run()
    p.waitUntilExit()
}

/// Single-quotes `s` for bash.
public func shellQuote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
