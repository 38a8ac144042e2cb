/// Splits text into the pieces that byte-pair encoding sees, exactly as nanochat's regex
///
///   '(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+
///
/// does under tiktoken (leftmost-first alternation, possessive `?+`/`++` never give back).
/// Written by hand over Unicode scalars: \p{L} = General_Category Letter, \p{N} = Number,
/// \s = White_Space. Every scalar falls in some alternative, so the pieces tile the text.
struct PretokenSplitter: Sendable {
    /// The pattern this splitter implements (tokenizer.pkl's `pat_str` must be this one).
    static let pattern = #"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"#

    /// Character classes of one scalar, as bits.
    struct Class: OptionSet {
        let rawValue: UInt8
        static let letter = Class(rawValue: 1)
        static let number = Class(rawValue: 2)
        static let space = Class(rawValue: 4)       // \s
        static let newline = Class(rawValue: 8)     // \r or \n (also in .space)
    }

    /// Classes of the ASCII range, so the common case is a table lookup.
    private static let asciiClasses: [Class] = (0..<128).map { properties(Unicode.Scalar(UInt8($0))) }

    @inline(__always) static func classify(_ s: Unicode.Scalar) -> Class {
        s.value < 128 ? asciiClasses[Int(s.value)] : properties(s)
    }

    /// Classes from the scalar's Unicode properties.
    static func properties(_ s: Unicode.Scalar) -> Class {
        var c: Class = []
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: c.insert(.letter)
        case .decimalNumber, .letterNumber, .otherNumber: c.insert(.number)
        default: break
        }
        if s.properties.isWhitespace { c.insert(.space) }
        if s == "\r" || s == "\n" { c.insert(.newline) }
        return c
    }

    /// The pieces of `scalars` as half-open index ranges, in order, covering every scalar.
    static func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        let classes = scalars.map(classify)
        var pieces: [Range<Int>] = []
        var i = 0
        while i < scalars.count {
            let e = matchEnd(scalars, classes, at: i)
            pieces.append(i..<e)
            i = e
        }
        return pieces
    }

    /// End of the match starting at `i`, trying the alternatives in order.
    static func matchEnd(_ s: [Unicode.Scalar], _ c: [Class], at i: Int) -> Int {
        let n = s.count
        @inline(__always) func other(_ j: Int) -> Bool { c[j].isDisjoint(with: [.letter, .number, .space]) }

        // '(?i:[sdmt]|ll|ve|re)
        if s[i] == "'" && i + 1 < n {
            let a = lower(s[i + 1])
            if a == "s" || a == "d" || a == "m" || a == "t" || s[i + 1] == "\u{17F}" { return i + 2 }
            if i + 2 < n {
                let b = lower(s[i + 2])
                if (a == "l" && b == "l") || (a == "v" && b == "e") || (a == "r" && b == "e") { return i + 3 }
            }
        }
        // [^\r\n\p{L}\p{N}]?+\p{L}+
        var j = i
        if c[j].isDisjoint(with: [.newline, .letter, .number]) { j += 1 }
        if j < n && c[j].contains(.letter) {
            j += 1
            while j < n && c[j].contains(.letter) { j += 1 }
            return j
        }
        // \p{N}{1,2}
        if c[i].contains(.number) { return i + 1 < n && c[i + 1].contains(.number) ? i + 2 : i + 1 }
        // ' ?[^\s\p{L}\p{N}]++[\r\n]*'
        j = i
        if s[j] == " " && j + 1 < n && other(j + 1) { j += 1 }
        if other(j) {
            j += 1
            while j < n && other(j) { j += 1 }
            while j < n && c[j].contains(.newline) { j += 1 }
            return j
        }
        // Whitespace from here on: the run is i ..< e.
        var e = i
        while e < n && c[e].contains(.space) { e += 1 }
        // \s*[\r\n]: up to the last newline of the run.
        var last = e - 1
        while last >= i && !c[last].contains(.newline) { last -= 1 }
        if last >= i { return last + 1 }
        // \s+(?!\S): the run, or all but its last scalar when text follows.
        if e == n { return e }
        if e - 1 > i { return e - 1 }
        // \s+
        return e
    }

    @inline(__always) static func lower(_ s: Unicode.Scalar) -> Unicode.Scalar {
        s.value >= 65 && s.value <= 90 ? Unicode.Scalar(s.value + 32)! : s
    }
}
