import Foundation
import Formats
import Nanochat
import Tensors
import TestSupport

/// The fixture models and their references (where they are: TestPaths).
enum Fixtures {
    static let d4Dir = TestPaths.d4Model
    static let d4BaseDir = TestPaths.d4BaseDir
    static let v0Dir = TestPaths.v0
    static let v0Model = TestPaths.v0 + "/model_000000.pt"
    static let tokenizerPath = TestPaths.d4Tokenizer
    static let d4Reference = TestPaths.d4Reference

    /// The two fixture models and their reference dirs.
    static let models: [(name: String, model: String, reference: String)] = [
        ("d4", d4Dir, d4Reference),
        ("v0", v0Model, v0Dir + "/reference"),
    ]

    /// A unique path under the temporary directory.
    static func temporaryPath(_ suffix: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("nanochat-test-\(UUID().uuidString)\(suffix)").path
    }
}

/// Models and the tokenizer load once per test process (shared by the suites).
enum Loaded {
    static let d4: NanochatModel = try! NanochatModel(location: ModelLocation.resolve(model: Fixtures.d4Dir))
    static let v0: NanochatModel = try! NanochatModel(location: ModelLocation.resolve(model: Fixtures.v0Model))
    static let tokenizer: Tokenizer = try! Tokenizer(path: Fixtures.tokenizerPath)

    static func model(_ name: String) -> NanochatModel { name == "d4" ? d4 : v0 }
}

/// Reference tensors of reference/forward.safetensors.
struct Reference {
    let file: SafetensorsFile
    let tokens: [[Int]]

    init(dir: String) throws {
        file = try SafetensorsFile(path: dir + "/forward.safetensors")
        tokens = try Reference.rows(file, "tokens")
    }

    static func rows(_ f: SafetensorsFile, _ name: String) throws -> [[Int]] {
        let s = try f.shape(name), flat = try f.int64s(name)
        return (0..<s[0]).map { r in flat[r * s[1] ..< (r + 1) * s[1]].map { Int($0) } }
    }

    func tensor(_ name: String) throws -> Tensor { try file.tensor(name) }
}

/// generate.json
struct GenerateReference: Decodable {
    let prompt_text: String
    let prompt_tokens: [Int]
    let greedy_tokens: [Int]
    let greedy_text: String

    init(dir: String) throws {
        self = try JSONDecoder().decode(GenerateReference.self,
                                        from: Data(contentsOf: URL(fileURLWithPath: dir + "/generate.json")))
    }
}

/// A tokenizer.pkl written by hand (pickle protocol 4, as tiktoken's): a tiktoken Encoding with
/// the 256 single bytes as ranks (then `extraRanks`) and the given special tokens.
func tinyTokenizerPickle(specials: [(String, Int)], extraRanks: [([UInt8], Int)] = []) -> [UInt8] {
    var out: [UInt8] = [0x80, 0x04]
    func str(_ s: String) {
        let b = Array(s.utf8)
        if b.count < 256 { out += [0x8c, UInt8(b.count)] + b } else {
            out += [0x58] + withUnsafeBytes(of: UInt32(b.count).littleEndian, Array.init) + b
        }
    }
    func int(_ i: Int) {
        if i >= 0 && i < 256 { out += [0x4b, UInt8(i)] }                                       // BININT1
        else if i >= 0 && i < 65536 { out += [0x4d, UInt8(i & 0xff), UInt8(i >> 8)] }          // BININT2
        else if Int(exactly: Int32(truncatingIfNeeded: i)) == i {                               // BININT
            out += [0x4a] + withUnsafeBytes(of: Int32(i).littleEndian, Array.init)
        } else { out += [0x8a, 8] + withUnsafeBytes(of: i.littleEndian, Array.init) }           // LONG1
    }
    str("tiktoken.core"); str("Encoding"); out += [0x93, 0x29, 0x81]   // STACK_GLOBAL, (), NEWOBJ
    out += [0x7d, 0x28]                                                  // {  MARK
    str("name"); str("tiny")
    str("pat_str"); str(Tokenizer.splitPattern)
    str("mergeable_ranks"); out += [0x7d, 0x28]
    for b in 0..<256 { out += [0x43, 0x01, UInt8(b)]; int(b) }           // SHORT_BINBYTES b → id
    for (b, id) in extraRanks { out += [0x43, UInt8(b.count)] + b; int(id) }
    out += [0x75]                                                        // SETITEMS
    str("special_tokens"); out += [0x7d, 0x28]
    for (s, id) in specials { str(s); int(id) }
    out += [0x75, 0x75, 0x62, 0x2e]                                      // SETITEMS SETITEMS BUILD STOP
    return out
}
