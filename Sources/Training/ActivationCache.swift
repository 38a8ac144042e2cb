import Foundation
import Distributed
import Tensors

// The activation cache (`sae-train cache`, then `sae-train --activations DIR`):
//
//   DIR/manifest.json                      CacheManifest: hooks, d_in, dtype, files and their rows
//   DIR/<hook>/rank_00000.bin ...          raw little-endian rows [rows, d_in], float32 or bfloat16
//
// Each rank writes its own files; rank 0 writes the manifest last (so a cache without a manifest is
// incomplete). Training from a cache takes global step s's batch from a seeded permutation of all
// cached rows, and rank r of N takes the r-th slice of it: the batches do not depend on N.

public struct CacheManifest: Codable, Equatable, Sendable {
    public struct File: Codable, Equatable, Sendable {
        public var path: String      // relative to the cache dir, e.g. "blocks.2.hook_resid_post/rank_00000.bin"
        public var rows: Int
    }
    public var format = 1
    public var hooks: [String]
    public var dIn: Int
    public var dtype: String         // "float32" | "bfloat16"
    /// Files per hook, in rank order; row i of the cache is found by running through them.
    public var files: [String: [File]]
    public var model: String
    public var context: Int
    public var seed: Int

    public var rows: Int { files[hooks[0]]!.reduce(0) { $0 + $1.rows } }

    static func read(_ dir: String) throws -> CacheManifest {
        let path = (dir as NSString).appendingPathComponent("manifest.json")
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(path, "missing: not an activation cache, or an incomplete one (sae-train cache writes it last)")
        }
        let m: CacheManifest
        do { m = try JSONDecoder().decode(CacheManifest.self, from: data) }
        catch { throw DataError(path, "not a cache manifest (\(error))") }
        guard ["float32", "bfloat16"].contains(m.dtype), m.dIn > 0, !m.hooks.isEmpty,
              m.hooks.allSatisfy({ m.files[$0] != nil }) else {
            throw DataError(path, "inconsistent manifest (dtype, d_in, hooks or files)")
        }
        let rows = m.files[m.hooks[0]]!.map(\.rows)
        guard m.hooks.allSatisfy({ m.files[$0]!.map(\.rows) == rows }) else {
            throw DataError(path, "hooks have different row counts")
        }
        return m
    }

    var bytesPerValue: Int { dtype == "bfloat16" ? 2 : 4 }
}

/// Appends rows of one hook to this rank's cache file.
final class CacheFileWriter {
    let handle: FileHandle
    let tmpPath: String, finalPath: String
    let bfloat16: Bool
    private(set) var rows = 0

    init(dir: String, hook: String, rank: Int, bfloat16: Bool) throws {
        let hookDir = (dir as NSString).appendingPathComponent(hook)
        try FileManager.default.createDirectory(atPath: hookDir, withIntermediateDirectories: true)
        finalPath = (hookDir as NSString).appendingPathComponent(String(format: "rank_%05d.bin", rank))
        tmpPath = finalPath + ".tmp"
        guard FileManager.default.createFile(atPath: tmpPath, contents: nil),
              let h = FileHandle(forWritingAtPath: tmpPath) else {
            throw DataError(tmpPath, "cannot create the cache file")
        }
        handle = h
        self.bfloat16 = bfloat16
    }

    func append(_ t: Tensor, rows n: Int) {
        let values = t.storage.prefix(n * t.columns)
        if bfloat16 {
            // Round to nearest even on the upper 16 bits.
            let halves = values.map { v -> UInt16 in
                let b = v.bitPattern
                return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
            }
            halves.withUnsafeBytes { handle.write(Data($0)) }
        } else {
            Array(values).withUnsafeBytes { handle.write(Data($0)) }
        }
        rows += n
    }

    func finish() throws {
        try handle.synchronize()
        try handle.close()
        try rename(URL(fileURLWithPath: tmpPath), URL(fileURLWithPath: finalPath))
    }
}

/// Read access to every cached row of one hook (memory-mapped files).
final class CachedRows: @unchecked Sendable {
    let data: [Data]
    let starts: [Int]      // first global row of each file
    let rows: Int, d: Int
    let bfloat16: Bool

    init(dir: String, manifest m: CacheManifest, hook: String) throws {
        var data: [Data] = [], starts: [Int] = [], total = 0
        for f in m.files[hook]! {
            let path = (dir as NSString).appendingPathComponent(f.path)
            let url = URL(fileURLWithPath: path)
            let d: Data
            do { d = try Data(contentsOf: url, options: .alwaysMapped) }
            catch { throw DataError(path, "cannot read the cache file (\(error.localizedDescription))") }
            guard d.count == f.rows * m.dIn * m.bytesPerValue else {
                throw DataError(path, "holds \(d.count) bytes, the manifest says \(f.rows) rows of \(m.dIn) \(m.dtype)")
            }
            data.append(d); starts.append(total); total += f.rows
        }
        self.data = data; self.starts = starts; rows = total; d = m.dIn
        bfloat16 = m.dtype == "bfloat16"
    }

    /// Copies global row `g` into `out` (d floats).
    func copyRow(_ g: Int, into out: UnsafeMutablePointer<Float>) {
        var f = starts.count - 1
        while starts[f] > g { f -= 1 }
        let local = g - starts[f]
        data[f].withUnsafeBytes { raw in
            if bfloat16 {
                let p = raw.baseAddress!.assumingMemoryBound(to: UInt16.self) + local * d
                for i in 0..<d { out[i] = Float(bitPattern: UInt32(p[i]) << 16) }
            } else {
                let p = raw.baseAddress!.assumingMemoryBound(to: Float.self) + local * d
                out.update(from: p, count: d)
            }
        }
    }
}

/// A seeded bijection of 0..<n (a 4-round Feistel network on the next even power of two, with
/// cycle-walking): the shuffled order of a cache's rows in O(1) memory, however large the cache.
public struct FeistelPermutation: Sendable {
    let n: Int, halfBits: Int, keys: [UInt64]

    public init(count n: Int, seed: UInt64) {
        precondition(n >= 1)
        var bits = 2
        while (1 << bits) < n { bits += 1 }
        if bits % 2 == 1 { bits += 1 }
        self.n = n
        halfBits = bits / 2
        keys = (0..<4).map { mixSeed(seed, UInt64($0)) }
    }

    public func callAsFunction(_ i: Int) -> Int {
        precondition(i >= 0 && i < n)
        var x = UInt64(i)
        repeat { x = encrypt(x) } while x >= UInt64(n)
        return Int(x)
    }

    private func encrypt(_ x: UInt64) -> UInt64 {
        let mask = (UInt64(1) << halfBits) - 1
        var l = x >> halfBits, r = x & mask
        for k in keys {
            let f = mixSeed(k, r) & mask
            (l, r) = (r, l ^ f)
        }
        return (l << halfBits) | r
    }
}

/// `sae-train cache`: every rank runs the model over its own documents and writes total_tokens / N
/// activation rows per hook to `config.out`; rank 0 writes the manifest once every rank is done.
public func writeActivationCache(config: TrainConfig, comm: Communicator) throws {
    try config.validate()
    let manifestPath = (config.out as NSString).appendingPathComponent("manifest.json")
    guard !FileManager.default.fileExists(atPath: manifestPath) else {
        throw ConfigError(config.out, "already holds an activation cache (manifest.json); choose another out")
    }
    let loaded = try LoadedModel(config, sharedMemory: comm.sharedMemory)
    let perRank = config.totalTokens / comm.size
    guard perRank > 0 else { throw ConfigError("config", "total_tokens (\(config.totalTokens)) is less than one per rank") }
    let docs = try DocumentSource(path: config.data, split: .train, valShards: config.valShards,
                                  rank: comm.rank, worldSize: comm.size)
    let blockTokens = min(perRank, max(1, config.bufferTokens))
    let producer = ActivationProducer(model: loaded.model, tokenizer: loaded.tokenizer, source: docs, hooks: loaded.hooks,
                                      context: config.context, blockTokens: blockTokens, excludeBOS: config.excludeBOS,
                                      seed: config.seed, rank: comm.rank)
    BLAS.setThreads(1)
    let writers = try loaded.hooks.map {
        try CacheFileWriter(dir: config.out, hook: $0.name, rank: comm.rank, bfloat16: config.cacheDtype == "bfloat16")
    }
    var progress = ProgressLine()
    let t0 = Date()
    var cursor = DataCursor(), index = 0, written = 0
    while written < perRank {
        let block = try producer.produce(index: index, start: cursor)
        let n = min(block.tokens, perRank - written)
        for (h, w) in writers.enumerated() { w.append(block.activations[h], rows: n) }
        written += n; index += 1; cursor = block.end
        if comm.isRoot {
            let rate = Double(written * comm.size) / max(Date().timeIntervalSince(t0), 1e-9)
            progress.update(step: written, totalSteps: perRank, tokens: written * comm.size, totalTokens: perRank * comm.size,
                            tokensPerSecond: rate, force: written == perRank)
        }
    }
    for w in writers { try w.finish() }
    let counts = comm.gatherVariable([Int64(written)], root: 0)
    guard let counts else { return }
    var files: [String: [CacheManifest.File]] = [:]
    for h in loaded.hooks {
        files[h.name] = counts.enumerated().map { r, c in
            CacheManifest.File(path: "\(h.name)/" + String(format: "rank_%05d.bin", r), rows: Int(c[0]))
        }
    }
    let manifest = CacheManifest(hooks: loaded.hooks.map(\.name), dIn: loaded.model.config.nEmbd, dtype: config.cacheDtype,
                                 files: files, model: loaded.location.modelPath, context: config.context, seed: config.seed)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(manifest).write(to: URL(fileURLWithPath: manifestPath), options: .atomic)
    FileHandle.standardError.write(Data("sae-train cache: \(manifest.rows) rows × \(loaded.hooks.count) hook(s) in \(config.out)\n".utf8))
}
