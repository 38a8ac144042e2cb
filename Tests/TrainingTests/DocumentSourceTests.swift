import Foundation
import TestSupport
import Testing
import Training

@Suite struct DocumentSourceTests {
    /// Four shards of one row group each (125, 124, 124, 124 documents); the last is validation.
    static var shards: String { TestPaths.textShards }

    func tempDir() throws -> String {
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("nanosae-data-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    func readAll(_ s: DocumentSource) throws -> [String] {
        var docs: [String] = []
        try s.forEachDocument { docs.append($0); return true }
        return docs
    }

    @Test func ranksSplitParquetRowGroupsWithoutOverlap() throws {
        let single = try readAll(DocumentSource(path: Self.shards))
        let r0 = try readAll(DocumentSource(path: Self.shards, rank: 0, worldSize: 2))
        let r1 = try readAll(DocumentSource(path: Self.shards, rank: 1, worldSize: 2))
        // Training reads shards 0-2 in order, each document whole.
        #expect(single == (0..<3).flatMap { TextShards.texts(shard: $0) })
        #expect(single.count > 300)
        #expect(r0.count + r1.count == single.count)
        #expect(Set(r0).isDisjoint(with: Set(r1)) && Set(r0).union(r1) == Set(single))
        // Four ranks, three row groups: every rank strides over the documents of every group.
        let four = try (0..<4).map { try readAll(DocumentSource(path: Self.shards, rank: $0, worldSize: 4)) }
        // Document i of a group goes to rank i mod 4 (today 94, 93, 93, 93 documents).
        #expect(four.map(\.count) == (0..<4).map { r in (0..<3).reduce(0) { $0 + (TextShards.texts(shard: $1).count + 3 - r) / 4 } })
        #expect(four.map(\.count).reduce(0, +) == single.count && Set(four.flatMap { $0 }) == Set(single))
        #expect(four[1].first == single[1] && four[3][1] == single[7])
        // The validation split is the last shard, disjoint from training.
        let val = try readAll(DocumentSource(path: Self.shards, split: .validation))
        #expect(val == TextShards.texts(shard: 3) && Set(val).isDisjoint(with: Set(single)))
    }

    @Test func aCursorResumesTheStreamExactly() throws {
        let s = try DocumentSource(path: Self.shards)
        var cursor = DataCursor(), first: [String] = []
        try s.read(from: &cursor) { first.append($0); return first.count < 200 }    // crosses row groups
        let saved = cursor
        var next: [String] = []
        try s.read(from: &cursor) { next.append($0); return next.count < 10 }
        var again = saved, replay: [String] = []
        try DocumentSource(path: Self.shards).read(from: &again) { replay.append($0); return replay.count < 10 }
        #expect(replay == next && again == cursor)
    }

    @Test func textAndJSONLinesSources() throws {
        let dir = try tempDir()
        try "first document".write(toFile: "\(dir)/a.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: "\(dir)/sub", withIntermediateDirectories: true)
        try "second".write(toFile: "\(dir)/sub/b.txt", atomically: true, encoding: .utf8)
        let lines = (0..<2500).map { #"{"text": "line \#($0)", "id": \#($0)}"# }.joined(separator: "\n") + "\n"
        try lines.write(toFile: "\(dir)/c.jsonl", atomically: true, encoding: .utf8)
        let all = try readAll(DocumentSource(path: dir))
        #expect(all.count == 2502 && all[0] == "first document" && all[1] == "line 0" && all.last == "second")
        // Units in path order: a.txt, c.jsonl lines 0-1023, 1024-2047, 2048-2499, sub/b.txt.
        // Rank 0 of 2 takes units 0, 2, 4; rank 1 takes units 1 and 3.
        let r0 = try readAll(DocumentSource(path: dir, rank: 0, worldSize: 2))
        let r1 = try readAll(DocumentSource(path: dir, rank: 1, worldSize: 2))
        #expect(r0.count == 1 + 1024 + 1 && r0[1] == "line 1024" && r0.last == "second")
        #expect(r1.count == 1024 + 452 && r1.first == "line 0" && r1[1024] == "line 2048")
    }

    @Test func badDataIsRefusedWithTheFileNamed() throws {
        let dir = try tempDir()
        #expect(throws: DataError.self) { try DocumentSource(path: dir) }             // empty
        #expect(throws: DataError.self) { try DocumentSource(path: "\(dir)/missing") }
        try #"{"txt": "no text field"}"#.write(toFile: "\(dir)/bad.jsonl", atomically: true, encoding: .utf8)
        let s = try DocumentSource(path: dir)
        var c = DataCursor()
        do { try s.read(from: &c) { _ in false }; Issue.record("accepted a line without text") }
        catch let e as DataError { #expect(e.description.contains("bad.jsonl") && e.description.contains("line 1")) }
        #expect(throws: DataError.self) { try DocumentSource(path: Self.shards, valShards: 4) }
    }

    @Test func packingCutsRowsAtContextAndStartsAtDocumentBoundaries() throws {
        let dir = try tempDir()
        let docs = (0..<50).map { "doc\($0) " + String(repeating: "x", count: $0 % 7) }
        try docs.map { #"{"text": "\#($0)"}"# }.joined(separator: "\n").write(toFile: "\(dir)/d.jsonl", atomically: true, encoding: .utf8)
        let s = try DocumentSource(path: dir)
        // "Tokenizer": one token per character, ids = unicode scalar values.
        let encode = { (t: String) in t.unicodeScalars.map { Int($0.value) } }
        var cursor = DataCursor()
        let rows = try packRows(from: s, cursor: &cursor, rows: 3, context: 16, bos: -1, encode: encode)
        #expect(rows.count == 48 && rows[0] == -1)
        let expectedStream = docs.flatMap { [-1] + encode($0) }
        #expect(Array(expectedStream.prefix(48)) == rows)
        // The next call starts with the document after the last one used.
        let used = rows.filter { $0 == -1 }.count
        let next = try packRows(from: s, cursor: &cursor, rows: 1, context: 8, bos: -1, encode: encode)
        #expect(next == Array(([-1] + encode(docs[used]) + [-1] + encode(docs[used + 1])).prefix(8)))
    }
}

/// Text data that is not what it claims to be is an error naming the file and where, not data
/// silently changed (U+FFFD) or skipped.
@Suite struct DocumentSourceInputTests {
    func tempDir() throws -> String {
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("nanosae-data-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    func firstError(_ path: String) -> String {
        do {
            let s = try DocumentSource(path: path)
            try s.forEachDocument { _ in true }
            return ""
        } catch { return "\(error)" }
    }

    @Test func invalidUTF8InATextFileIsAnErrorNamingTheFileAndOffset() throws {
        let dir = try tempDir()
        let txt = dir + "/a.txt", jsonl = dir + "/b.jsonl"
        try Data([0x68, 0x69, 0x20, 0xff, 0x21]).write(to: URL(fileURLWithPath: txt))
        var line = Data(#"{"text": "ok"}"#.utf8) + Data("\n".utf8) + Data(#"{"text": "x"#.utf8)
        line.append(contentsOf: [0xc3, 0x28])
        line.append(contentsOf: Array(#""}"#.utf8))
        try line.write(to: URL(fileURLWithPath: jsonl))
        let e1 = firstError(txt)
        #expect(e1.contains("a.txt") && e1.contains("UTF-8") && e1.contains("byte offset 3"), "\(e1)")
        let e2 = firstError(jsonl)
        #expect(e2.contains("b.jsonl") && e2.contains("UTF-8") && e2.contains("byte offset 26"), "\(e2)")
        try "fine".write(toFile: dir + "/c.txt", atomically: true, encoding: .utf8)
        #expect(firstError(dir + "/c.txt") == "")
    }

    @Test func onlyParquetDataHasAValidationSplit() throws {
        let dir = try tempDir()
        try "x".write(toFile: dir + "/a.txt", atomically: true, encoding: .utf8)
        #expect(try DocumentSource.hasValidationSplit(path: DocumentSourceTests.shards, valShards: 1))
        #expect(try !DocumentSource.hasValidationSplit(path: DocumentSourceTests.shards, valShards: 0))
        #expect(try !DocumentSource.hasValidationSplit(path: dir, valShards: 1))
        #expect(try !DocumentSource.hasValidationSplit(path: dir + "/a.txt", valShards: 1))
        // A damaged validation shard does not change the answer: reading it is what fails.
        let copy = try tempDir()
        for name in try FileManager.default.contentsOfDirectory(atPath: DocumentSourceTests.shards) {
            try FileManager.default.copyItem(atPath: DocumentSourceTests.shards + "/" + name, toPath: copy + "/" + name)
        }
        let last = copy + "/" + (try FileManager.default.contentsOfDirectory(atPath: copy).sorted().last!)
        try Data(try Data(contentsOf: URL(fileURLWithPath: last)).prefix(100)).write(to: URL(fileURLWithPath: last))
        #expect(try DocumentSource.hasValidationSplit(path: copy, valShards: 1))
        #expect(throws: (any Error).self) { try DocumentSource(path: copy, split: .validation) }
    }
}
