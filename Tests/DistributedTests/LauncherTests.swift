import Foundation
import TestSupport
import Testing

/// The launchers' restart policy, with a stand-in for the job: exit status 2 (bad input, a damaged
/// checkpoint among it) is never restarted; a run failure is, with --resume and without a
/// --resume-from of the first attempt. Every launcher that starts sae-train goes through it.
@Suite struct LauncherTests {
    static let launch = TestPaths.repoRoot.appendingPathComponent("launch")

    /// Runs run_with_restarts on a job that logs its arguments and exits with `status`.
    func restarts(status: Int, _ args: String) throws -> (ProcessResult, [String]) {
        let log = try TestPaths.temporaryDirectory("launch-log").appendingPathComponent("calls").path
        let script = """
            . \(shellQuote(Self.launch.appendingPathComponent("run-with-restarts.sh").path))
            job() { echo "$*" >> \(shellQuote(log)); return \(status); }
            MAX_RESTARTS=2 RESTART_DELAY=0 run_with_restarts job \(args)
            """
        let r = try runShell(script)
        let calls = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").map(String.init) ?? []
        return (r, calls)
    }

    @Test func badInputIsNotRestartedAndARunFailureIs() throws {
        let (bad, badCalls) = try restarts(status: 2, "--out o --resume")
        #expect(bad.status == 2 && badCalls == ["--out o --resume"], "\(badCalls) \(bad.stderr)")
        #expect(bad.stderr.contains("not restarting"))
        let (failed, calls) = try restarts(status: 1, "--out o --resume-from 4 --x=1 --resume-from=8")
        #expect(failed.status == 1)
        #expect(calls == ["--out o --resume-from 4 --x=1 --resume-from=8", "--out o --x=1 --resume", "--out o --x=1 --resume"], "\(calls)")
    }

    @Test func everyLauncherOfSaeTrainUsesTheRestartPolicy() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.launch.path).sorted()
        var launchers: [String] = []
        for name in names {
            let text = try String(contentsOf: Self.launch.appendingPathComponent(name), encoding: .utf8)
            // A launcher: a script whose commands (not its comments) start a job with mpirun or srun.
            let starts = text.split(separator: "\n").contains { line in
                !line.trimmingCharacters(in: .whitespaces).hasPrefix("#") && (line.contains("mpirun ") || line.contains("srun "))
            }
            guard starts else { continue }
            launchers.append(name)
            #expect(text.contains("run-with-restarts.sh") && text.contains("run_with_restarts "), "\(name) starts sae-train without run_with_restarts")
        }
        #expect(launchers.count >= 4, "\(launchers)")
    }
}
