import Foundation
import Testing
@testable import Formats
@testable import Parquet

// The parquet reader against pyarrow: small files that cover each codec / encoding / page version /
// null pattern (exact contents), unsupported features (named in the error), and damaged files (an
// error naming the problem, never a crash). Expected values come from make_parquet_expectations.py
// (see ParquetExpectations.swift). nanochat-style shards: TextShardsTests.

/// Paths of the test data, found from this source file (CI clones the repo elsewhere).
private enum ParquetPaths {
    static let testsDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

    static func small(_ name: String) -> String { testsDir.appendingPathComponent("parquet/\(name)").path }

    /// Writes `bytes` to a unique temporary file, runs `body` with its path, then removes it.
    static func withTemporary<T>(_ bytes: [UInt8], _ body: (String) throws -> T) throws -> T {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("nanosae-parquet-\(UUID().uuidString).parquet").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try body(path)
    }
}

/// Reads every row group of every column a test file has, throwing the first error.
private func readEverything(_ path: String) throws {
    let file = try ParquetFile(path: path)
    for column in file.columnNames where column == "text" || column == "title" {
        for group in 0..<file.rowGroupCount { _ = try file.strings(column: column, rowGroup: group) }
    }
}

/// The `ParquetError` `body` throws; records an issue if it throws something else or nothing.
private func parquetError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> ParquetError? {
    do {
        try body()
        Issue.record("expected a ParquetError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as ParquetError {
        return error
    } catch {
        Issue.record("expected a ParquetError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

@Suite struct ParquetFileTests {
    // MARK: - Against pyarrow

    @Test(arguments: ParquetExpectations.smallFiles.indices)
    func smallFileReadsLikePyarrow(index: Int) throws {
        let expected = ParquetExpectations.smallFiles[index]
        let file = try ParquetFile(path: ParquetPaths.small(expected.file))
        #expect(file.rowGroupCount == expected.rowGroups, "\(expected.file): \(expected.what)")
        #expect(file.rowCount == expected.values.count)
        var values: [String?] = []
        for group in 0..<file.rowGroupCount {
            let part = try file.strings(column: expected.column, rowGroup: group)
            #expect(part.count == (try file.rowCount(rowGroup: group)))
            values += part
        }
        #expect(values == expected.values, "\(expected.file) column \(expected.column): \(expected.what)")
        #expect(try file.strings(column: expected.column) == expected.values)
        // The same bytes read from memory give the same values.
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: ParquetPaths.small(expected.file))))
        #expect(try ParquetFile(bytes: bytes, name: expected.file).strings(column: expected.column) == expected.values)
    }

    @Test func createdByComesFromTheFooter() throws {
        let file = try ParquetFile(path: ParquetPaths.small("snappy.parquet"))
        #expect(file.createdBy?.hasPrefix("parquet-cpp-arrow") == true)
    }

    // MARK: - Unsupported features and wrong requests

    @Test func unsupportedCodecIsNamed() throws {
        let path = ParquetPaths.small("lz4.parquet")
        let error = try #require(parquetError { _ = try ParquetFile(path: path).strings(column: "text") })
        guard case .unsupported = error else { Issue.record("wrong case: \(error)"); return }
        #expect(error.description.contains("lz4.parquet"))
        #expect(error.description.contains("column 'text'"))
        #expect(error.description.contains("LZ4"))
    }

    @Test func unsupportedEncodingIsNamed() throws {
        let path = ParquetPaths.small("delta.parquet")
        let error = try #require(parquetError { _ = try ParquetFile(path: path).strings(column: "text") })
        guard case .unsupported = error else { Issue.record("wrong case: \(error)"); return }
        #expect(error.description.contains("delta.parquet"))
        #expect(error.description.contains("DELTA_BYTE_ARRAY"))
    }

    @Test func columnsAreFoundByNameAndWrongOnesRefused() throws {
        let file = try ParquetFile(path: ParquetPaths.small("columns.parquet"))
        #expect(file.columnNames == ["id", "title", "text", "tags.list.element"])
        // A unique last component is enough: "title" is found as itself, "element" as the list's leaf.
        let viaLeafName = try #require(parquetError { _ = try file.strings(column: "element", rowGroup: 0) })
        #expect(viaLeafName.description.contains("column 'tags.list.element'"))

        let missing = try #require(parquetError { _ = try file.strings(column: "body", rowGroup: 0) })
        guard case .noSuchColumn = missing else { Issue.record("wrong case: \(missing)"); return }
        #expect(missing.description.contains("'body'") && missing.description.contains("'title'"))

        let integer = try #require(parquetError { _ = try file.strings(column: "id", rowGroup: 0) })
        guard case .notAStringColumn = integer else { Issue.record("wrong case: \(integer)"); return }
        #expect(integer.description.contains("INT64"))

        let list = try #require(parquetError { _ = try file.strings(column: "tags.list.element", rowGroup: 0) })
        guard case .unsupported = list else { Issue.record("wrong case: \(list)"); return }
        #expect(list.description.contains("repeated"))

        let group = try #require(parquetError { _ = try file.strings(column: "text", rowGroup: 1) })
        guard case .rowGroupOutOfRange = group else { Issue.record("wrong case: \(group)"); return }
        #expect(throws: ParquetError.self) { try file.rowCount(rowGroup: -1) }
    }

    @Test func missingFileIsCannotOpen() throws {
        let error = try #require(parquetError { _ = try ParquetFile(path: "/nonexistent/shard_00000.parquet") })
        guard case .cannotOpen = error else { Issue.record("wrong case: \(error)"); return }
        #expect(error.description.contains("/nonexistent/shard_00000.parquet"))
        let directory = try #require(parquetError { _ = try ParquetFile(path: ParquetPaths.small("")) })
        guard case .cannotOpen = directory else { Issue.record("wrong case: \(directory)"); return }
    }
}
