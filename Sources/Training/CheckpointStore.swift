import ExitStatus
import Foundation

/// Crash-safe checkpoints of a run directory `OUT` (written by rank 0 only).
///
/// Layout:
///   OUT/checkpoints/step_00001234/<hook>/{cfg.json, sae_weights.safetensors, sparsity.safetensors, state/}
///   OUT/latest   -> checkpoints/step_00001234            (symlink)
///   OUT/<hook>   -> checkpoints/step_00001234/<hook>      (symlink: what SAELens and sae-run load)
///
/// A commit fills a temporary directory, fsyncs every file and directory in it, renames it into
/// place, and only then swaps the symlinks (each swap is a rename of a fresh link over the old one,
/// which POSIX makes atomic), `latest` last. A crash at any moment leaves the previous checkpoint
/// complete and pointed to. Older checkpoints beyond `keep` are deleted after the swap.
public struct CheckpointStore: Sendable {
    public let out: URL
    public let keep: Int

    public init(out: String, keep: Int) {
        precondition(keep >= 1)
        self.out = URL(fileURLWithPath: out)
        self.keep = keep
    }

    var checkpointsDir: URL { out.appendingPathComponent("checkpoints") }
    var latestLink: URL { out.appendingPathComponent("latest") }

    static func dirName(step: Int) -> String { String(format: "step_%08d", step) }

    /// Writes checkpoint `step`: `write` fills the given (empty, temporary) directory, laid out as
    /// one sub-directory per hook. Returns the final checkpoint directory.
    @discardableResult
    public func commit(step: Int, hooks: [String], write: (URL) throws -> Void) throws -> URL {
        let fm = FileManager.default
        try fm.createDirectory(at: checkpointsDir, withIntermediateDirectories: true)
        let name = CheckpointStore.dirName(step: step)
        let tmp = checkpointsDir.appendingPathComponent(".tmp-\(name)-\(getpid())")
        try? fm.removeItem(at: tmp)
        try fm.createDirectory(at: tmp, withIntermediateDirectories: false)
        try write(tmp)
        crashPointForTests(step: step)
        try fsyncTree(tmp)
        let final = checkpointsDir.appendingPathComponent(name)
        if fm.fileExists(atPath: final.path) {
            // The same step written again (e.g. a resumed run re-reaching it): replace it. The
            // links still point at the old one until they are swapped below.
            let old = checkpointsDir.appendingPathComponent(".old-\(name)-\(getpid())")
            try fm.moveItem(at: final, to: old)
            try rename(tmp, final)
            try? fm.removeItem(at: old)
        } else {
            try rename(tmp, final)
        }
        try fsyncPath(checkpointsDir)
        for hook in hooks {
            try swapLink(out.appendingPathComponent(hook), to: "checkpoints/\(name)/\(hook)")
        }
        try swapLink(latestLink, to: "checkpoints/\(name)")
        try fsyncPath(out)
        try prune()
        return final
    }

    /// The latest committed checkpoint (step and directory), or nil if there is none.
    public func latest() -> (step: Int, dir: URL)? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: latestLink.path),
              let step = CheckpointStore.step(ofDirName: (target as NSString).lastPathComponent)
        else { return nil }
        let dir = out.appendingPathComponent(target)
        return FileManager.default.fileExists(atPath: dir.path) ? (step, dir) : nil
    }

    /// Steps of all complete checkpoints on disk, ascending.
    public func steps() -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpointsDir.path)) ?? []
        return names.compactMap(CheckpointStore.step(ofDirName:)).sorted()
    }

    static func step(ofDirName name: String) -> Int? {
        guard name.hasPrefix("step_") else { return nil }
        return Int(name.dropFirst(5))
    }

    /// Deletes checkpoints beyond the newest `keep`, never the one `latest` points to, and any
    /// temporary directories a crash left behind.
    func prune() throws {
        let fm = FileManager.default
        let current = latest()?.step
        for step in steps().dropLast(keep) where step != current {
            try fm.removeItem(at: checkpointsDir.appendingPathComponent(CheckpointStore.dirName(step: step)))
        }
        for name in (try? fm.contentsOfDirectory(atPath: checkpointsDir.path)) ?? []
        where name.hasPrefix(".tmp-") || name.hasPrefix(".old-") {
            try? fm.removeItem(at: checkpointsDir.appendingPathComponent(name))
        }
    }

    /// Points `link` at `target` atomically: a new link beside it, renamed over the old.
    func swapLink(_ link: URL, to target: String) throws {
        let fm = FileManager.default
        if let attributes = try? fm.attributesOfItem(atPath: link.path),
           attributes[.type] as? FileAttributeType != .typeSymbolicLink {
            throw CheckpointError("\(link.path) exists and is not a link this program made; move it away")
        }
        let tmp = link.deletingLastPathComponent().appendingPathComponent(".\(link.lastPathComponent).new")
        try? fm.removeItem(at: tmp)
        try fm.createSymbolicLink(atPath: tmp.path, withDestinationPath: target)
        try rename(tmp, link)
    }
}

/// Crash tests set NANOSAE_TEST_CRASH_IN_CHECKPOINT=STEP: the process then kills itself (SIGKILL,
/// like a power cut or the OOM killer) in the middle of writing that step's checkpoint, after its
/// files are written and before they are synced and renamed into place.
func crashPointForTests(step: Int) {
    if let s = ProcessInfo.processInfo.environment["NANOSAE_TEST_CRASH_IN_CHECKPOINT"], Int(s) == step {
        kill(getpid(), SIGKILL)
    }
}

public struct CheckpointError: FailureOfTheRun, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// rename(2), which replaces `to` atomically (FileManager.moveItem refuses to replace).
func rename(_ from: URL, _ to: URL) throws {
    if Foundation.rename(from.path, to.path) != 0 {
        throw CheckpointError("cannot rename \(from.path) to \(to.path): \(String(cString: strerror(errno)))")
    }
}

/// fsync of one file or directory.
func fsyncPath(_ url: URL) throws {
    let fd = open(url.path, O_RDONLY)
    guard fd >= 0 else { throw CheckpointError("cannot open \(url.path) to sync: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    if fsync(fd) != 0 { throw CheckpointError("fsync of \(url.path) failed: \(String(cString: strerror(errno)))") }
}

/// fsync of every file and directory under `root` (files first, then their directories).
func fsyncTree(_ root: URL) throws {
    let fm = FileManager.default
    var dirs = [root]
    if let e = fm.enumerator(at: root, includingPropertiesForKeys: [.isDirectoryKey]) {
        for case let url as URL in e {
            if (try? url.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true { dirs.append(url) }
            else { try fsyncPath(url) }
        }
    }
    for d in dirs.reversed() { try fsyncPath(d) }
}
