import Foundation
import TestSupport

/// Runs a program under a real `mpirun`, as a user would, with the environment of
/// `launch/mpi-env.sh` (transports, root, oversubscription).
enum MPIJob {
    static let repoRoot = TestPaths.repoRoot

    static func run(ranks: Int, _ executable: String, _ arguments: [String],
                    environment: [String: String] = [:], timeout: Double = 300) throws -> ProcessResult {
        let exe = TestPaths.products.appendingPathComponent(executable).path
        let env = repoRoot.appendingPathComponent("launch/mpi-env.sh").path
        let command = ([exe] + arguments).map(shellQuote).joined(separator: " ")
        return try runShell(". \(shellQuote(env)) && exec mpirun --oversubscribe -np \(ranks) \(command)",
                            environment: environment, timeout: timeout)
    }
}
