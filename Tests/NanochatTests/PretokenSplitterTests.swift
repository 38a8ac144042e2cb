@testable import Nanochat
import Testing

/// The hand-written splitter against what nanochat's regex gives (worked by hand from the pattern).
@Suite struct PretokenSplitterTests {
    func pieces(_ s: String) -> [String] {
        let scalars = Array(s.unicodeScalars)
        return PretokenSplitter.split(scalars).map { r in
            var out = String.UnicodeScalarView()
            out.append(contentsOf: scalars[r])
            return String(out)
        }
    }

    @Test func alternativesInOrder() {
        #expect(pieces("I'm you're they've WE'LL it'S") == ["I", "'m", " you", "'re", " they", "'ve", " WE", "'LL", " it", "'S"])
        #expect(pieces("12345") == ["12", "34", "5"])
        #expect(pieces("a  b") == ["a", " ", " b"])             // \s+(?!\S) leaves the last space to the word
        #expect(pieces("x   \n\n  y") == ["x", "   \n\n", " ", " y"])
        #expect(pieces("end  ") == ["end", "  "])
        #expect(pieces(" ...!\n\nx") == [" ...!\n\n", "x"])     // punctuation takes the newlines after it
        #expect(pieces("\"hello") == ["\"hello"])               // one non-letter prefix joins the word
        #expect(pieces("\nhello") == ["\n", "hello"])           // but not \r or \n
        #expect(pieces("'hello") == ["'hello"])
        #expect(pieces("héllo wörld") == ["héllo", " wörld"])
        #expect(pieces("٣٤٥") == ["٣٤", "٥"])                   // \p{N} beyond ASCII
    }

    @Test func piecesTileTheText() {
        let s = "Mixed: 你好, \t\r\n tabs\u{00A0}nbsp 'quote' ½ \u{2028}!"
        #expect(pieces(s).joined() == s)
    }
}
