import ArgumentParser
import ExitStatus
import Formats
import Foundation
import Nanochat
import Runtime
import SAE

/// `sae-run`: nanochat (and, with the runtime, SAEs) on one machine: forward passes with hook
/// activations, tokenization, generation. One file per subcommand.
struct SAERun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sae-run",
        abstract: "Run nanochat on one machine: forward with hook activations, tokenize, generate.",
        subcommands: [ForwardCommand.self, TokenizeCommand.self, GenerateCommand.self, FeaturesCommand.self, ChatCommand.self, ServeCommand.self])

    /// Parses `arguments`, runs the subcommand and returns the exit status.
    static func main(arguments: [String]) -> Int32 {
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            return 0
        } catch let e as BadInput {
            return fail(e.description, status: 2)
        } catch let e as NanochatError {
            return fail(e.description, status: 2)
        } catch let e as FormatError {
            return fail(e.description, status: 2)
        } catch let e as RuntimeError {
            return fail(e.description, status: 2)
        } catch let e as SAEError {
            return fail(e.description, status: 2)
        } catch let e as FailureOfTheRun {
            return fail("\(e)", status: exitStatus(for: e))
        } catch {
            // ArgumentParser's own outcomes: --help (success), parse and validation errors.
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                return 0
            }
            if let e = error as? ExitCode { return e.rawValue }
            let line = fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            return fail(line, status: 2)
        }
    }

    static func fail(_ message: String, status: Int32) -> Int32 {
        // One line, "error: ..." whether the message is ours or ArgumentParser's ("Error: ...").
        var line = message.replacingOccurrences(of: "\n", with: " ")
        if line.hasPrefix("Error: ") { line.removeFirst("Error: ".count) }
        FileHandle.standardError.write(Data(("error: " + line + "\n").utf8))
        return status
    }
}

/// Bad input not covered by the library errors: names the flag or file and what was expected.
struct BadInput: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

