import Foundation
import TestSupport
import Testing

/// sae-viz's bad input: exit status 2 and one line on stderr that names the flag or file.
@Suite struct CommandLineTests {
    func run(_ args: String) throws -> ProcessResult { try runShell("exec \(D4Fixture.exe("sae-viz")) \(args)") }

    @Test func badInputExitsTwoNamingTheFlag() throws {
        let model = "--model \(shellQuote(D4Fixture.model))"
        let cases: [(String, String)] = [
            ("\(model) --data d --out o", "--sae"),
            ("--sae s --data d --out o", "--model"),
            ("--sae s \(model) --data d", "--out"),
            ("--sae s \(model) --out o", "exactly one of --data and --token-file"),
            ("--sae s \(model) --data d --out o --features 0", "--features"),
            ("--sae s \(model) --data d --out o --features 3 --all", "--all"),
            ("--sae s \(model) --data d --out o --tokens -5", "--tokens"),
            ("--run r --sae s", "--sae"),
            ("--sae /nonexistent/sae \(model) --data d --out o", "/nonexistent/sae"),
            // Flags that would be ignored are refused.
            ("--run r --tokens 5", "--tokens"),
            ("--run r --context 5", "--context"),
            ("--run r --seed 3", "--seed"),
            ("--run r --all", "--all"),
            ("--sae s \(model) --token-file t --out o --context 5", "--context: applies to --data only"),
            ("--sae s \(model) --token-file t --out o --tokens 5", "--tokens: applies to --data only"),
        ]
        for (args, word) in cases {
            let r = try run(args)
            #expect(r.status == 2, "\(args): status \(r.status), \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(word), "\(args): \(r.stderr)")
        }
        #expect(try run("--help").status == 0)
    }

    @Test func anUnwritableOutputDirectoryIsBadInput() throws {
        let r = try run("--sae \(shellQuote(D4Fixture.topKSAE)) --model \(shellQuote(D4Fixture.model)) --data \(shellQuote(D4Fixture.data)) --tokens 256 --context 128 --features 2 --out /proc/nope")
        #expect(r.status == 2 && r.stderr.contains("--out /proc/nope"), "\(r.stderr)")
    }

    /// An --out that is a file is reported before the model loads and the data is read, in one
    /// line (not Foundation's error dump after the whole pass).
    @Test func anOutputPathThatIsAFileIsReportedFirst() throws {
        let dir = try TestPaths.temporaryDirectory("viz-out").path
        let file = dir + "/a-file"
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        // --model does not exist: an error about --out proves it came first.
        let r = try run("--sae /nonexistent-sae --model /nonexistent --data \(shellQuote(D4Fixture.data)) --out \(shellQuote(file))")
        #expect(r.status == 2 && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(r.stderr.contains("--out \(file): is a file") && !r.stderr.contains("Error Domain"), "\(r.stderr)")
    }

    @Test func aTokenFileGivesExactlyItsRows() throws {
        let dir = try TestPaths.temporaryDirectory("viz-tokens").path
        let r = try run("--sae \(shellQuote(D4Fixture.topKSAE)) --model \(shellQuote(D4Fixture.model)) --token-file \(shellQuote(D4Fixture.reference + "/forward.safetensors")) --features 5 --out \(shellQuote(dir))")
        #expect(r.status == 0, "\(r.stderr)")
        // 2 rows of 256 tokens, BOS left out: 510 tokens, as sae-eval counts them.
        let index = try String(contentsOfFile: dir + "/index.html", encoding: .utf8)
        #expect(index.contains(" · 510 tokens · ") && r.stdout.contains("sae-viz: 510 tokens"), "\(r.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/features").count == 5)
    }
}
