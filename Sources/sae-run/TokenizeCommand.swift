import ArgumentParser
import Foundation
import Nanochat

/// `sae-run tokenize --tokenizer T`: JSON Lines of strings on stdin → one JSON array of token ids
/// per line on stdout (no BOS).
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize", abstract: "Tokenize JSON-string lines from stdin into JSON arrays of ids.")

    @Option(help: "tokenizer.pkl")
    var tokenizer: String

    func run() throws {
        let tok = try Tokenizer(path: tokenizer)
        var lineNumber = 0
        var out = ""
        while let line = readLine(strippingNewline: true) {
            lineNumber += 1
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            guard let text = (try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed])) as? String else {
                throw BadInput("stdin line \(lineNumber): expected a JSON string")
            }
            out += "[" + tok.encode(text).map(String.init).joined(separator: ",") + "]\n"
            if out.utf8.count > 1 << 16 { FileHandle.standardOutput.write(Data(out.utf8)); out = "" }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}
