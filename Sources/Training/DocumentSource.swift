import Foundation
import Formats
import Parquet

/// Where a rank is in its document stream: which of its units, which document in it, which pass.
/// Saved in checkpoints so a resumed run reads exactly the documents an unbroken run would.
public struct DataCursor: Codable, Equatable, Sendable {
    public var epoch = 0
    public var unit = 0       // index into this rank's own units
    public var document = 0   // index within that unit
    public init() {}
}

/// The documents of a training or validation split, sharded over ranks.
///
/// The data is a list of *units*: parquet row groups (nanochat's shards, file by file, group by
/// group; the trailing `valShards` files are the validation split, as in nanochat), or text files:
/// a `.txt` file is one document, a `.jsonl` file gives one document per line (`text` field) in
/// units of 1024 lines. Rank r of N owns units r, r+N, r+2N, ... (nanochat's loader does the same
/// with row groups). With fewer units than ranks, every rank reads every unit and keeps documents
/// r, r+N, r+2N, ... of each. When a rank's units run out the stream starts its next epoch.
public final class DocumentSource: @unchecked Sendable {
    public enum Split: String, Sendable { case train, validation }

    enum Unit {
        case rowGroup(file: Int, group: Int)
        case textFile(path: String)
        case jsonlLines(path: String, lines: Range<Int>)
    }

    public let path: String
    let units: [Unit]               // this rank's units only
    let parquetFiles: [ParquetFile]
    public let totalUnits: Int      // over all ranks
    /// Documents kept within a unit: those with index ≡ offset (mod stride); stride 1 normally.
    let documentStride: Int, documentOffset: Int

    /// Opens `path`: a directory of `*.parquet` shards, a `.txt`/`.jsonl` file, or a directory
    /// of `.txt`/`.jsonl` files (searched recursively, sorted by path).
    public init(path: String, split: Split = .train, valShards: Int = 1, rank: Int = 0, worldSize: Int = 1) throws {
        self.path = path
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else {
            throw DataError(path, "no such file or directory")
        }
        var all: [Unit] = []
        var files: [ParquetFile] = []
        let parquetPaths = try DocumentSource.parquetShards(path)
        if !parquetPaths.isEmpty {
            let count = parquetPaths.count
            let chosen: ArraySlice<String>
            switch split {
            case .train:
                guard count > valShards else {
                    throw DataError(path, "\(count) parquet shard(s) but val_shards = \(valShards) leaves none to train on")
                }
                chosen = parquetPaths[0 ..< count - valShards]
            case .validation:
                guard valShards > 0 else { throw DataError(path, "val_shards = 0: there is no validation split") }
                chosen = parquetPaths[max(0, count - valShards)...]
            }
            for p in chosen {
                let f = try ParquetFile(path: p)
                guard f.columnNames.contains("text") else {
                    throw DataError(p, "no 'text' column (columns: \(f.columnNames.joined(separator: ", ")))")
                }
                for g in 0..<f.rowGroupCount { all.append(.rowGroup(file: files.count, group: g)) }
                files.append(f)
            }
        } else {
            let texts: [String]
            if isDir.boolValue {
                texts = try DocumentSource.textFiles(in: path)
            } else {
                texts = [path]
            }
            for t in texts {
                if t.hasSuffix(".jsonl") {
                    let n = try DocumentSource.lineCount(t)
                    for start in stride(from: 0, to: n, by: 1024) { all.append(.jsonlLines(path: t, lines: start ..< min(n, start + 1024))) }
                } else if t.hasSuffix(".txt") {
                    all.append(.textFile(path: t))
                } else {
                    throw DataError(t, "unknown data file type (expected a directory of .parquet shards, .txt or .jsonl)")
                }
            }
            if split == .validation { throw DataError(path, "a validation split exists only for parquet shards") }
        }
        guard !all.isEmpty else { throw DataError(path, "no documents found (no .parquet, .txt or .jsonl files)") }
        totalUnits = all.count
        if all.count >= worldSize {
            units = stride(from: rank, to: all.count, by: worldSize).map { all[$0] }
            documentStride = 1; documentOffset = 0
        } else {
            units = all
            documentStride = worldSize; documentOffset = rank
        }
        parquetFiles = files
    }

    /// The parquet shards `path` names, sorted: the `*.parquet` files of a directory, or `path`
    /// itself if it is one; empty for text data. A directory that cannot be listed is an error
    /// (not "no shards", which would read it as text data or as empty).
    static func parquetShards(_ path: String) throws -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw DataError(path, "no such file or directory")
        }
        guard isDir.boolValue else { return path.hasSuffix(".parquet") ? [path] : [] }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: path) }
        catch { throw DataError(path, "cannot list the directory (\(error.localizedDescription))") }
        return names.filter { $0.hasSuffix(".parquet") }.sorted().map { (path as NSString).appendingPathComponent($0) }
    }

    /// Whether `path` has a validation split: parquet shards (the last `valShards` of them, all of
    /// them if there are no more) with val_shards > 0. Text data has none. Decided from the listing
    /// alone, so that a damaged validation shard is reported, not replaced by training data.
    public static func hasValidationSplit(path: String, valShards: Int) throws -> Bool {
        try valShards > 0 && !parquetShards(path).isEmpty
    }

    /// The `.txt` and `.jsonl` files under `dir` (recursively), sorted by path. A subdirectory that
    /// cannot be read is an error, not a silent gap in the data.
    static func textFiles(in dir: String) throws -> [String] {
        var problem: (URL, Error)? = nil
        let root = URL(fileURLWithPath: dir)
        let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil, options: []) { url, error in
            if problem == nil { problem = (url, error) }
            return false
        }
        var found: [String] = []
        while let url = e?.nextObject() as? URL {
            if url.pathExtension == "txt" || url.pathExtension == "jsonl" { found.append(url.path) }
        }
        if let (url, error) = problem { throw DataError(url.path, "cannot read (\(error.localizedDescription))") }
        return found.sorted()
    }

    /// The bytes of a text data file, which must be UTF-8: an invalid byte is an error that says
    /// where, rather than text silently changed to U+FFFD.
    static func readUTF8(_ path: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError(path, "cannot read") }
        if let offset = firstInvalidUTF8(data) {
            throw DataError(path, "not UTF-8 text: invalid byte 0x\(String(data[data.startIndex + offset], radix: 16)) at byte offset \(offset)")
        }
        return data
    }

    /// Documents of unit `i` of this rank, in order.
    func documents(ofUnit i: Int) throws -> [String] {
        let docs = try allDocuments(ofUnit: i)
        if documentStride == 1 { return docs }
        return stride(from: documentOffset, to: docs.count, by: documentStride).map { docs[$0] }
    }

    func allDocuments(ofUnit i: Int) throws -> [String] {
        switch units[i] {
        case .rowGroup(let f, let g):
            return try parquetFiles[f].strings(column: "text", rowGroup: g).compactMap { $0 }
        case .textFile(let p):
            return [String(decoding: try DocumentSource.readUTF8(p), as: UTF8.self)]
        case .jsonlLines(let p, let lines):
            let data = try DocumentSource.readUTF8(p)
            let all = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            return try lines.compactMap { n in
                guard n < all.count else { return nil }
                let line = all[n]
                if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { return nil }
                guard let obj = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                      let text = obj["text"] as? String else {
                    throw DataError(p, "line \(n + 1): expected a JSON object with a string field 'text'")
                }
                return text
            }
        }
    }

    /// One pass over this rank's documents (no epochs), until `body` returns false.
    public func forEachDocument(_ body: (String) throws -> Bool) throws {
        for u in units.indices {
            for doc in try documents(ofUnit: u) where try !body(doc) { return }
        }
    }

    static func lineCount(_ path: String) throws -> Int {
        let data = try readUTF8(path)
        return data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).count
    }

    /// Reads documents from `cursor` on, calling `body` with each until it returns false; the
    /// cursor then points just past the last document passed to `body`.
    public func read(from cursor: inout DataCursor, _ body: (String) throws -> Bool) throws {
        var cached: (unit: Int, docs: [String])? = nil
        var emptyUnits = 0
        while true {
            if cached?.unit != cursor.unit { cached = (cursor.unit, try documents(ofUnit: cursor.unit)) }
            let docs = cached!.docs
            if cursor.document < docs.count {
                emptyUnits = 0
                let doc = docs[cursor.document]
                cursor.document += 1
                if try !body(doc) { return }
            } else {
                emptyUnits += 1
                guard emptyUnits <= units.count else { throw DataError(path, "this rank's data holds no documents") }
                cursor.document = 0
                cursor.unit += 1
                if cursor.unit == units.count { cursor.unit = 0; cursor.epoch += 1 }
            }
        }
    }
}

/// Bad or missing training data: the file and what is wrong.
public struct DataError: Error, CustomStringConvertible {
    public let description: String
    public init(_ file: String, _ problem: String) { description = oneLine("\(file): \(problem)") }
}
