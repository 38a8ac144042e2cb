/// `s` with the five characters that are special in HTML and XML text and attributes escaped.
public func htmlEscape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for c in s.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

/// A token's text for display: line breaks and tabs made visible (they would otherwise break or
/// vanish from a one-line context), other control characters as U+FFFD. Not yet HTML-escaped.
public func visibleToken(_ text: String) -> String {
    var out = ""
    for c in text.unicodeScalars {
        switch c {
        case "\n": out += "↵"
        case "\r": out += "␍"
        case "\t": out += "⇥"
        default: if c.value < 0x20 || c.value == 0x7f { out += "\u{FFFD}" } else { out.unicodeScalars.append(c) }
        }
    }
    return out
}

/// A number for display: 4 significant digits.
func formatValue(_ v: Double) -> String {
    String(format: "%.4g", v)
}

/// Every token's text computed once: raw (for JSON) and for HTML (made visible, then escaped).
/// Pages show each token many times; decoding and escaping it each time dominated their writing.
public struct TokenTexts: Sendable {
    public let raw: [String]
    public let html: [String]

    /// The texts of ids 0..<count, from `text` (e.g. the tokenizer's `tokenText`).
    public init(count: Int, text: (Int) -> String) {
        raw = (0..<count).map(text)
        html = raw.map { htmlEscape(visibleToken($0)) }
    }
}
