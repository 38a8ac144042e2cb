import Foundation
import Nanochat
import Testing

/// The tokenizer against nanochat's (reference/tokenizer.json).
@Suite struct TokenizerTests {
    struct Case: Decodable { let text: String; let ids: [Int] }
    struct File: Decodable { let vocab_size: Int; let bos_id: Int; let cases: [Case] }

    static let reference: File = try! JSONDecoder().decode(
        File.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.d4Reference + "/tokenizer.json")))

    @Test func idsMatchEveryReferenceCase() throws {
        let tok = Loaded.tokenizer
        #expect(tok.vocabSize == Self.reference.vocab_size)
        #expect(try tok.bos == Self.reference.bos_id)
        #expect(Self.reference.cases.count >= 10)
        for c in Self.reference.cases {
            #expect(tok.encode(c.text) == c.ids, "\(c.text.debugDescription)")
        }
    }

    @Test func batchEncodingEqualsOneByOne() {
        let tok = Loaded.tokenizer
        let texts = Self.reference.cases.map(\.text)
        #expect(tok.encode(batch: texts) == texts.map { tok.encode($0) })
    }

    @Test func decodeInvertsEncode() {
        let tok = Loaded.tokenizer
        for c in Self.reference.cases { #expect(tok.decode(tok.encode(c.text)) == c.text) }
        for text in ["", "  \n\r\n\t ", "x'LL 're 'S ſ", "١٢٣٤ ⅻ ²³", "a\u{301}b 🇫🇷 \u{200B}", String(repeating: "ab ", count: 500)] {
            #expect(tok.decode(tok.encode(text)) == text)
        }
    }

    @Test func specialTokensAreNamedAndNeverProducedFromText() throws {
        let tok = Loaded.tokenizer
        #expect(try tok.specialToken("<|bos|>") == 4087)
        #expect(try tok.specialToken("<|assistant_end|>") == 4091)
        #expect(throws: NanochatError.self) { try tok.specialToken("<|nope|>") }
        #expect(!tok.encode("<|bos|><|user_start|>").contains { $0 >= 4087 })
        #expect(tok.decode([4087]) == "<|bos|>")
    }

    @Test func invalidUTF8DecodesToReplacement() {
        let tok = Loaded.tokenizer
        // "é" is two bytes; the first alone is not valid UTF-8.
        let ids = tok.encode("é")
        let firstByte = tok.encode("\u{E9}")
        #expect(tok.decode(ids) == "é")
        #expect(tok.decodeBytes(firstByte) == [0xC3, 0xA9])
        let c3 = (0..<4096).first { tok.decodeBytes([$0]) == [0xC3] }!
        #expect(tok.decode([c3]) == "\u{FFFD}")
    }

    @Test func picklesOtherThanATiktokenEncodingAreRefused() throws {
        // Protocol 2: GLOBAL os.system, STOP — a pickle that would run code if trusted.
        let path = Fixtures.temporaryPath(".pkl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        FileManager.default.createFile(atPath: path, contents: Data([0x80, 0x02] + Array("cos\nsystem\n.".utf8)))
        do {
            _ = try Tokenizer(path: path)
            Issue.record("a pickle naming os.system was accepted")
        } catch {
            #expect("\(error)".contains("os.system") && "\(error)".contains(path))
        }
        #expect(throws: NanochatError.self) { try Tokenizer(path: path + ".missing") }
    }

    @Test func loadsAHandWrittenPickle() throws {
        let path = Fixtures.temporaryPath(".pkl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        FileManager.default.createFile(atPath: path, contents: Data(tinyTokenizerPickle(specials: [("<|bos|>", 256)])))
        let tok = try Tokenizer(path: path)
        #expect(tok.name == "tiny" && tok.vocabSize == 257)
        #expect(try tok.bos == 256)
        #expect(tok.encode("hé!") == [104, 0xC3, 0xA9, 33])
        #expect(throws: NanochatError.vocabularyMismatch(tokenizer: path, tokenizerVocab: 257, modelVocab: 4096)) {
            try tok.checkMatches(Loaded.d4.config, file: path)
        }
    }

    /// Found by Tests/Fuzz (tokenizer target): a 4.7 KB tokenizer.pkl whose mergeable_ranks held the
    /// id 537019137 (a BININT) made BytePairEncoder allocate a 4.3 GB id table; an id of Int.max
    /// overflowed `maxID + 1`, a special id of Int.max overflowed vocabSize.
    @Test func idsFarBeyondTheVocabularyAreRefusedBeforeAllocating() throws {
        let path = Fixtures.temporaryPath(".pkl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        func load(specials: [(String, Int)], extraRanks: [([UInt8], Int)]) throws -> Tokenizer {
            FileManager.default.createFile(atPath: path, contents: Data(tinyTokenizerPickle(specials: specials, extraRanks: extraRanks)))
            return try Tokenizer(path: path)
        }
        for id in [537_019_137, Int(Int32.max), Int.max] {
            do {
                _ = try load(specials: [("<|bos|>", 256)], extraRanks: [([104, 105], id)])
                Issue.record("mergeable_ranks id \(id) was accepted")
            } catch let error as NanochatError {
                #expect("\(error)".contains("\(id)") && "\(error)".contains(path), "\(error)")
            }
        }
        #expect(throws: NanochatError.self) { try load(specials: [("<|bos|>", Int.max)], extraRanks: []) }
        // Ordinary ids may leave as many gaps as there are special tokens, and specials may lie anywhere below 2³¹.
        let gapped = try load(specials: [("<|bos|>", 1 << 30)], extraRanks: [([104, 105], 257)])
        #expect(gapped.vocabSize == (1 << 30) + 1 && gapped.encode("hi") == [257])
        let ranks = Dictionary(uniqueKeysWithValues: (0..<256).map { ([UInt8($0)], $0) })
        #expect(throws: NanochatError.self) { try Tokenizer(ranks: ranks.merging([[1, 2]: Int.max]) { $1 }, specialTokens: [:]) }
    }

    @Test func vocabularyMismatchIsRefused() throws {
        let ranks = Dictionary(uniqueKeysWithValues: (0..<256).map { ([UInt8($0)], $0) })
        let small = try Tokenizer(ranks: ranks, specialTokens: ["<|bos|>": 256])
        #expect(small.vocabSize == 257)
        #expect(throws: NanochatError.vocabularyMismatch(tokenizer: "small.pkl", tokenizerVocab: 257, modelVocab: 4096)) {
            try small.checkMatches(Loaded.v0.config, file: "small.pkl")
        }
        #expect(throws: NanochatError.self) { try Tokenizer(pattern: "\\w+", ranks: ranks, specialTokens: [:]) }
    }
}
