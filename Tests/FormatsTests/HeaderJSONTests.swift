import Testing
@testable import Formats

private func parse(_ s: String) throws -> HeaderJSON {
    let bytes = Array(s.utf8)
    return try bytes.withUnsafeBytes { raw throws(HeaderJSON.ParseError) in try HeaderJSON.parse(raw) }
}

private func fails(_ s: String) -> Bool { (try? parse(s)) == nil }

@Suite struct HeaderJSONTests {
    @Test func parsesValues() throws {
        #expect(try parse(#" {"a": [1, -2, 3.5, 1e3, true, false, null], "b": {}} "#) == .object([
            ("a", .array([.int(1), .int(-2), .double(3.5), .double(1000), .bool(true), .bool(false), .null])),
            ("b", .object([])),
        ]))
        #expect(try parse(#""\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#) == .string("\"\\/\u{8}\u{c}\n\r\té😀"))
        #expect(try parse("9223372036854775807") == .int(Int.max))
        #expect(try parse("9223372036854775808") == .double(9223372036854775808))   // too big for Int
        #expect(try parse(#"{"k":1,"k":2}"#) == .object([("k", .int(1)), ("k", .int(2))]))  // order kept
    }

    @Test func refusesMalformedJSON() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "01x", "-", "1.", "1e", "tru", "\"abc",
                    "\"\\x\"", "\"\\ud83d\"", "\"\\u12\"", "\"a\u{1}b\"", "{} {}", "{1:2}", "[1 2]",
                    String(repeating: "[", count: 100) + String(repeating: "]", count: 100)] {
            #expect(fails(bad), "accepted \(bad)")
        }
        // Invalid UTF-8 inside a string.
        let raw: [UInt8] = [0x22, 0xff, 0x22]
        #expect(raw.withUnsafeBytes { (try? HeaderJSON.parse($0)) == nil })
    }

    @Test func quoteRoundTrips() throws {
        for s in ["plain", "q\"b\\s", "line\nbreak\ttab\r", "\u{1}\u{1f}", "é€😀", ""] {
            #expect(try parse(HeaderJSON.quote(s)) == .string(s))
        }
    }
}
