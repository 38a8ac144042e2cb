import Foundation

/// Text data for tests that train or evaluate: the reST sources of the Python 3.11 documentation as
/// Debian's python3.11-doc installs them (launch/setup.sh installs it), one document per file, and
/// four nanochat-style parquet shards made from them (the last is the validation split).
///
/// The shards are written once per content (sources and writer version) into the temporary
/// directory, so every test process, and the MPI jobs tests start, read the same files.
public enum TextShards {
    /// Where python3.11-doc puts the sources (`*.txt`, in subdirectories).
    public static let sourceDirectory = "/usr/share/doc/python3.11/html/_sources"

    public static let shardCount = 4

    /// Every `*.txt` file under `sourceDirectory` as (path relative to it, text), sorted by path.
    public static let documents: [(path: String, text: String)] = {
        let root = URL(fileURLWithPath: sourceDirectory)
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else {
            preconditionFailure("\(sourceDirectory) is missing: install python3.11-doc (bash launch/setup.sh)")
        }
        var found: [(path: String, text: String)] = []
        for case let url as URL in walker where url.pathExtension == "txt" {
            let relative = String(url.path.dropFirst(root.path.count + 1))
            guard let data = FileManager.default.contents(atPath: url.path),
                  let text = String(data: data, encoding: .utf8) else { preconditionFailure("unreadable \(url.path)") }
            found.append((relative, text))
        }
        precondition(!found.isEmpty, "no .txt files under \(sourceDirectory): install python3.11-doc")
        return found.sorted { Array($0.path.utf8).lexicographicallyPrecedes(Array($1.path.utf8)) }
    }()

    /// The documents of shard `s`: document i of the sorted list goes to shard i mod 4, so every
    /// shard (the validation one too) samples every part of the documentation.
    public static func texts(shard s: Int) -> [String] {
        stride(from: s, to: documents.count, by: shardCount).map { documents[$0].text }
    }

    /// `shard_0000s.parquet`, as nanochat names them.
    public static func fileName(shard s: Int) -> String { String(format: "shard_%05d.parquet", s) }

    /// The directory of the four shards, written on first use.
    public static let directory: String = {
        // FNV-1a 64 over the writer version, then every path and text, NUL-separated.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func feed(_ s: String) { for b in s.utf8 { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }; hash = (hash ^ 0) &* 0x100_0000_01b3 }
        feed("ParquetTextWriter 1, zstd, 1024 rows, \(shardCount) shards, i mod \(shardCount)")
        for d in documents { feed(d.path); feed(d.text) }
        let fm = FileManager.default
        let final = fm.temporaryDirectory.appendingPathComponent("nanosae-text-shards-" + String(hash, radix: 16)).path
        if fm.fileExists(atPath: final) { return final }
        // Written beside, then renamed into place: a concurrent process sees all four or none.
        let partial = final + ".partial-\(UUID().uuidString)"
        do {
            try fm.createDirectory(atPath: partial, withIntermediateDirectories: true)
            for s in 0..<shardCount {
                try ParquetTextWriter.write(texts(shard: s), to: partial + "/" + fileName(shard: s))
            }
        } catch { preconditionFailure("writing the text shards in \(partial): \(error)") }
        if rename(partial, final) != 0 { try? fm.removeItem(atPath: partial) }   // another process won
        precondition(fm.fileExists(atPath: final), "text shards missing at \(final)")
        return final
    }()
}
