import Foundation
import Testing
@testable import Training

@Suite struct CheckpointStoreTests {
    func tempDir() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("nanosae-ckpt-\(UUID().uuidString)").path
    }

    func writeHook(_ dir: URL, _ hook: String, _ text: String) throws {
        let d = dir.appendingPathComponent(hook)
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        try text.write(to: d.appendingPathComponent("cfg.json"), atomically: false, encoding: .utf8)
    }

    func read(_ out: String, _ hook: String) -> String? {
        try? String(contentsOfFile: "\(out)/\(hook)/cfg.json", encoding: .utf8)
    }

    @Test func commitsSwapLinksAndKeepTheNewestK() throws {
        let out = tempDir()
        let store = CheckpointStore(out: out, keep: 2)
        #expect(store.latest() == nil)
        for step in [10, 20, 30] {
            try store.commit(step: step, hooks: ["blocks.1.hook_resid_post"]) { dir in
                try writeHook(dir, "blocks.1.hook_resid_post", "step \(step)")
            }
            #expect(read(out, "blocks.1.hook_resid_post") == "step \(step)")
            #expect(store.latest()?.step == step)
        }
        #expect(store.steps() == [20, 30])
    }

    @Test func aFailedWriteLeavesThePreviousCheckpoint() throws {
        let out = tempDir()
        let store = CheckpointStore(out: out, keep: 3)
        try store.commit(step: 1, hooks: ["h"]) { try writeHook($0, "h", "good") }
        struct Crash: Error {}
        #expect(throws: Crash.self) {
            try store.commit(step: 2, hooks: ["h"]) { dir in
                try writeHook(dir, "h", "half")
                throw Crash()
            }
        }
        #expect(store.latest()?.step == 1 && read(out, "h") == "good")
        // The next commit cleans up what the failed one left.
        try store.commit(step: 3, hooks: ["h"]) { try writeHook($0, "h", "next") }
        let names = try FileManager.default.contentsOfDirectory(atPath: "\(out)/checkpoints")
        #expect(!names.contains { $0.hasPrefix(".tmp-") }, "\(names)")
        #expect(store.steps() == [1, 3] && read(out, "h") == "next")
    }

    @Test func rewritingTheSameStepReplacesIt() throws {
        let out = tempDir()
        let store = CheckpointStore(out: out, keep: 3)
        try store.commit(step: 5, hooks: ["h"]) { try writeHook($0, "h", "first") }
        try store.commit(step: 5, hooks: ["h"]) { try writeHook($0, "h", "second") }
        #expect(read(out, "h") == "second" && store.steps() == [5])
    }

    @Test func refusesToReplaceAForeignDirectory() throws {
        let out = tempDir()
        try FileManager.default.createDirectory(atPath: "\(out)/h", withIntermediateDirectories: true)
        let store = CheckpointStore(out: out, keep: 1)
        #expect(throws: CheckpointError.self) { try store.commit(step: 1, hooks: ["h"]) { try writeHook($0, "h", "x") } }
    }
}
