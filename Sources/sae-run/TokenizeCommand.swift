import ArgumentParser
import Foundation
import Nanochat

/// `sae-run tokenize --tokenizer T`: JSON Lines of strings on stdin → one JSON array of token ids
/// per line on stdout (no BOS).
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize", abstract: "Tokenize JSON-string lines from stdin into JSON arrays of ids.")

    @Option(help: "tokenizer.pkl or nanochat's tokenizer folder")
    var tokenizer: String

    func run() throws {
        let tok = try Tokenizer(path: Tokenizer.file(named: tokenizer))
        var out = ""
        // stdin as bytes, not readLine(), which would silently replace invalid UTF-8 with U+FFFD.
        let input = FileHandle.standardInput.readDataToEndOfFile()
        var offset = 0
        for (i, bytes) in input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            defer { offset += bytes.count + 1 }
            guard let line = String(validating: bytes, as: UTF8.self) else {
                let bad = offset + (firstInvalidUTF8(bytes) ?? 0)
                throw BadInput("stdin line \(i + 1): invalid UTF-8 at byte offset \(bad) of the input")
            }
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            guard let text = (try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed])) as? String else {
                throw BadInput("stdin line \(i + 1): expected a JSON string")
            }
            out += "[" + tok.encode(text).map(String.init).joined(separator: ",") + "]\n"
            if out.utf8.count > 1 << 16 { FileHandle.standardOutput.write(Data(out.utf8)); out = "" }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}

/// The offset of the first byte of `bytes` that does not continue a valid UTF-8 sequence.
func firstInvalidUTF8<C: Collection>(_ bytes: C) -> Int? where C.Element == UInt8 {
    var decoder = UTF8(), iterator = bytes.makeIterator(), consumed = 0
    while true {
        switch decoder.decode(&iterator) {
        case .scalarValue(let s): consumed += UTF8.width(s)
        case .emptyInput: return nil
        case .error: return consumed
        }
    }
}
