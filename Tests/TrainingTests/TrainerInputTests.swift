import Foundation
import TestSupport
import Testing
import Training

/// sae-train's input checks through the executable: sizes and the output directory are checked
/// before the model loads, and a damaged checkpoint is bad input (exit 2, which the launchers do
/// not restart) whose message says which older checkpoint is intact and how to resume from it.
@Suite(.serialized) struct TrainerInputTests {
    static let hook = TrainerTests.hook

    func train(_ config: TrainConfig, _ extra: String = "") throws -> ProcessResult {
        try runShell("exec \(TrainerTests.saeTrain) \(TrainerTests.flags(config)) \(extra)")
    }

    /// A copy of the d4 checkpoint dir with its meta json intact and its weights truncated:
    /// anything checked before the model loads is reported; anything after, is not reached.
    func brokenModel() throws -> String {
        let dir = try TestPaths.temporaryDirectory("broken-model").path
        let src = TrainerTests.d4.appendingPathComponent("base_checkpoints/d4").path
        try FileManager.default.copyItem(atPath: src + "/meta_000600.json", toPath: dir + "/meta_000600.json")
        let weights = try Data(contentsOf: URL(fileURLWithPath: src + "/model_000600.pt"))
        try weights.prefix(1000).write(to: URL(fileURLWithPath: dir + "/model_000600.pt"))
        return dir
    }

    func expectOneLine(_ r: ProcessResult, status: Int32 = 2, _ words: [String], _ what: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == status, "\(what): exit \(r.status)\n\(r.stderr)", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1 && words.allSatisfy { r.stderr.contains($0) }, "\(what): \(r.stderr)", sourceLocation: sourceLocation)
    }

    @Test func sizesAndTheOutputDirectoryAreCheckedBeforeTheModelLoads() throws {
        let dir = try TestPaths.temporaryDirectory("sizes")
        var c = TrainerTests.smallConfig(out: dir.appendingPathComponent("out").path)
        c.model = try brokenModel()
        // The broken model is what a run with good sizes trips over.
        expectOneLine(try train(c), ["model_000600.pt"], "the broken model")
        let cases: [(String, [String])] = [
            ("--d-sae 100000000000", ["d_sae 100000000000: the SAE's parameters, gradients and Adam moments would need", "this machine has"]),
            ("--d-sae 4611686018427387904", ["d_sae 4611686018427387904", "more than 9.2 EB", "this machine has"]),
            ("--expansion 4611686018427387904", ["expansion 4611686018427387904", "this machine has"]),
            ("--buffer-tokens 4611686018427387904", ["buffer_tokens 4611686018427387904", "this machine has"]),
            ("--batch-tokens 1T --buffer-tokens 1T".replacingOccurrences(of: "1T", with: "1099511627776"),
             ["batch_tokens 1099511627776", "this machine has"]),
        ]
        for (extra, words) in cases { expectOneLine(try train(c, extra), words, extra) }
        // An output path that is a file (or lies under one): one line naming it, no Foundation dump.
        let file = dir.appendingPathComponent("a-file").path
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        for out in [file, file + "/below"] {
            let r = try train(c, "--out \(shellQuote(out))")
            expectOneLine(r, ["out \(out)", "file"], out)
            #expect(!r.stderr.contains("Error Domain") && !r.stderr.contains("NSCocoa"), "\(r.stderr)")
        }
    }

    @Test func aDamagedCheckpointIsBadInputThatNamesTheNewestIntactOne() throws {
        let out = try TestPaths.temporaryDirectory("damaged").path
        let c = TrainerTests.smallConfig(out: out)          // 12 steps, checkpoints at 4, 8, 12
        let r0 = try train(c)
        #expect(r0.status == 0, "\(r0.stderr)")
        let store = CheckpointStore(out: out, keep: 3)
        #expect(store.steps() == [4, 8, 12])

        // trainer.json of the latest checkpoint cut short: exit 2 (a launcher does not restart it),
        // naming the file and the newest intact checkpoint.
        let trainerJSON = "\(out)/checkpoints/step_00000012/trainer.json"
        let text = try Data(contentsOf: URL(fileURLWithPath: trainerJSON))
        try text.prefix(text.count / 2).write(to: URL(fileURLWithPath: trainerJSON))
        expectOneLine(try train(c, "--resume --total-tokens 8192"),
                      ["step_00000012/trainer.json", "step 8", "--resume-from 8"], "truncated trainer.json")

        // --resume-from 8 continues from step 8 and finishes (16 steps), writing step 12 anew.
        let r1 = try train(c, "--resume-from 8 --total-tokens 8192")
        #expect(r1.status == 0 && r1.stderr.contains("resuming from step 8"), "\(r1.stderr)")
        #expect(store.latest()?.step == 16 && store.steps() == [8, 12, 16])

        // Another d_sae than the checkpoint's: one line in the config's words.
        expectOneLine(try train(c, "--resume --total-tokens 10240 --expansion 4"),
                      ["\(out)/\(Self.hook)", "was trained with d_sae 512; the config asks for d_sae 1024"], "another d_sae")

        // latest pointing at a deleted checkpoint: the same guidance, not "no checkpoint".
        try FileManager.default.removeItem(atPath: "\(out)/checkpoints/step_00000016")
        expectOneLine(try train(c, "--resume --total-tokens 10240"),
                      ["\(out)/latest", "step_00000016, which is missing", "--resume-from 12"], "dangling latest")
        expectOneLine(try train(c, "--resume-from 99"), ["resume_from 99", "steps: 8, 12"], "no such step")
    }
}
