import Foundation
import Testing
@testable import Formats
@testable import Parquet

// Names read from a parquet file appear in error messages as text: invalid UTF-8 as \xNN, control
// characters as \u{..}, never as raw bytes that would garble the terminal or split the line.

@Suite struct ParquetNameTests {
    /// snappy.parquet with its column name `text` replaced, in the footer, by ESC, 0xFF, LF, "t"
    /// (the same length, so every offset stays valid).
    func renamedColumnFile() throws -> [UInt8] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("parquet/snappy.parquet")
        var bytes = [UInt8](try Data(contentsOf: url))
        let n = bytes.count
        let footerLength = Int(bytes[n - 8]) | Int(bytes[n - 7]) << 8 | Int(bytes[n - 6]) << 16 | Int(bytes[n - 5]) << 24
        let name = Array("text".utf8), replacement: [UInt8] = [0x1b, 0xff, 0x0a, 0x74]
        var replaced = 0
        for i in (n - 8 - footerLength) ..< (n - 8 - name.count) where Array(bytes[i ..< i + name.count]) == name {
            bytes.replaceSubrange(i ..< i + name.count, with: replacement)
            replaced += 1
        }
        try #require(replaced > 0, "no column name 'text' in the footer")
        return bytes
    }

    @Test func aColumnNameThatIsNotTextIsEscapedInTheError() throws {
        let file = try ParquetFile(bytes: try renamedColumnFile(), name: "renamed.parquet")
        #expect(file.columnNames == ["\u{1b}\\xff\nt"])
        do {
            _ = try file.strings(column: "text")
            Issue.record("expected noSuchColumn")
        } catch let error as ParquetError {
            let text = error.description
            #expect(text.contains("'\\u{1b}\\xff\\u{a}t'"), "\(text)")
            #expect(!text.unicodeScalars.contains { $0.value < 0x20 || $0 == "\u{FFFD}" }, "\(text)")
        }
    }

    @Test func escapingKeepsValidTextAndMarksEachInvalidByte() {
        #expect(escapedUTF8(Array("héllo".utf8)) == "héllo")
        #expect(escapedUTF8([0x61, 0xc3, 0x62]) == "a\\xc3b")
        #expect(firstInvalidUTF8(Array("héllo".utf8)) == nil)
        #expect(firstInvalidUTF8([0x61, 0x62, 0xc3, 0x28]) == 2)
    }
}
