/// A small, bounded JSON parser for file headers (safetensors). Foundation's parser is not used so
/// that hostile headers (deep nesting, huge numbers) give a `FormatError`, never a crash.
enum HeaderJSON: Equatable {
    case null
    case bool(Bool)
    case int(Int)          // integers that fit in Int
    case double(Double)    // every other number
    case string(String)
    case array([HeaderJSON])
    case object([(String, HeaderJSON)])   // in file order

    static func == (a: HeaderJSON, b: HeaderJSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.double(x), .double(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// Why parsing stopped (the caller wraps it in a `FormatError` naming the file).
    struct ParseError: Error { let detail: String }

    static let maxDepth = 64

    /// Parses one JSON value filling all of `bytes` (surrounding whitespace allowed).
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(ParseError) -> HeaderJSON {
        var p = Parser(b: bytes, i: 0)
        let v = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == bytes.count else { throw ParseError(detail: "extra bytes after the JSON value at byte \(p.i)") }
        return v
    }

    private struct Parser {
        let b: UnsafeRawBufferPointer
        var i: Int

        mutating func skipSpace() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x0a || b[i] == 0x0d || b[i] == 0x09 { i += 1 }
        }

        func fail(_ what: String) -> ParseError { ParseError(detail: "\(what) at byte \(i)") }

        mutating func expect(_ literal: String) throws(ParseError) {
            for c in literal.utf8 {
                guard i < b.count, b[i] == c else { throw fail("expected '\(literal)'") }
                i += 1
            }
        }

        mutating func value(depth: Int) throws(ParseError) -> HeaderJSON {
            guard depth < HeaderJSON.maxDepth else { throw fail("JSON nested deeper than \(HeaderJSON.maxDepth)") }
            skipSpace()
            guard i < b.count else { throw fail("JSON ends early") }
            switch b[i] {
            case UInt8(ascii: "{"):
                i += 1
                var pairs: [(String, HeaderJSON)] = []
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(pairs) }
                while true {
                    skipSpace()
                    guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                    let key = try string()
                    skipSpace()
                    try expect(":")
                    pairs.append((key, try value(depth: depth + 1)))
                    skipSpace()
                    guard i < b.count else { throw fail("JSON object ends early") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "}") { i += 1; return .object(pairs) }
                    throw fail("expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                i += 1
                var items: [HeaderJSON] = []
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < b.count else { throw fail("JSON array ends early") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                    throw fail("expected ',' or ']'")
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            default: return try number()
            }
        }

        mutating func number() throws(ParseError) -> HeaderJSON {
            let start = i
            var isInteger = true
            if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
            var digits = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1; digits += 1 }
            guard digits > 0 else { throw fail("expected a JSON value") }
            if i < b.count, b[i] == UInt8(ascii: ".") {
                isInteger = false; i += 1
                var frac = 0
                while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1; frac += 1 }
                guard frac > 0 else { throw fail("malformed number") }
            }
            if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                isInteger = false; i += 1
                if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
                var exp = 0
                while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1; exp += 1 }
                guard exp > 0 else { throw fail("malformed number") }
            }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
            if isInteger, let v = Int(text) { return .int(v) }
            guard let d = Double(text) else { throw fail("malformed number") }
            return .double(d)
        }

        mutating func hex4() throws(ParseError) -> UInt32 {
            guard i + 4 <= b.count else { throw fail("\\u escape ends early") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = b[i]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: throw fail("bad \\u escape")
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }

        mutating func string() throws(ParseError) -> String {
            i += 1  // opening quote
            var out: [UInt8] = []
            while true {
                guard i < b.count else { throw fail("JSON string ends early") }
                let c = b[i]
                if c == UInt8(ascii: "\"") { i += 1; break }
                if c < 0x20 { throw fail("control character in JSON string") }
                if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
                i += 1
                guard i < b.count else { throw fail("JSON string ends early") }
                let e = b[i]; i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0c)
                case UInt8(ascii: "n"): out.append(0x0a)
                case UInt8(ascii: "r"): out.append(0x0d)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xD800, scalar < 0xDC00 {   // surrogate pair
                        guard i + 2 <= b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
                            throw fail("unpaired surrogate in JSON string")
                        }
                        i += 2
                        let low = try hex4()
                        guard low >= 0xDC00, low < 0xE000 else { throw fail("unpaired surrogate in JSON string") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw fail("bad escape in JSON string")
                }
            }
            guard let s = String(validating: out, as: UTF8.self) else { throw fail("JSON string is not UTF-8") }
            return s
        }
    }

    /// `s` as a JSON string literal (quotes included).
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
