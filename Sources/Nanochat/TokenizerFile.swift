import Foundation
import Formats

extension Tokenizer {
    /// The only global tokenizer.pkl may name.
    static let allowedGlobals: Set<String> = ["tiktoken.core.Encoding"]

    /// Loads nanochat's `tokenizer.pkl`: a pickled `tiktoken.core.Encoding` (NEWOBJ + BUILD with
    /// the state {name, pat_str, mergeable_ranks: {bytes: id}, special_tokens: {str: id}}).
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NanochatError.invalidTokenizer(file: path, reason: "file missing or unreadable")
        }
        try self.init(pickle: [UInt8](data), file: path)
    }

    /// Builds the tokenizer from the bytes of a tokenizer.pkl; `path` names them in errors.
    /// (The fuzz target Tests/Fuzz/FuzzTokenizer.swift enters here.)
    init(pickle bytes: [UInt8], file path: String) throws {
        let root = try unpickle(bytes, allowedGlobals: Self.allowedGlobals, file: path)
        func fail(_ reason: String) -> NanochatError { .invalidTokenizer(file: path, reason: reason) }
        guard case let .object(object) = root, object.callable == .global(module: "tiktoken.core", name: "Encoding"),
              let state = object.state else {
            throw fail("expected a pickled tiktoken.core.Encoding with its state")
        }
        guard let name = state["name"]?.stringValue else { throw fail("state has no string \"name\"") }
        guard let pattern = state["pat_str"]?.stringValue else { throw fail("state has no string \"pat_str\"") }
        guard case let .dict(rankEntries)? = state["mergeable_ranks"] else { throw fail("state has no dict \"mergeable_ranks\"") }
        guard case let .dict(specialEntries)? = state["special_tokens"] else { throw fail("state has no dict \"special_tokens\"") }
        var ranks: [[UInt8]: Int] = [:]
        ranks.reserveCapacity(rankEntries.count)
        for e in rankEntries {
            guard case let .bytes(b) = e.key, let id = e.value.intValue else {
                throw fail("mergeable_ranks must map bytes to int")
            }
            ranks[b] = id
        }
        var specials: [String: Int] = [:]
        for e in specialEntries {
            guard let s = e.key.stringValue, let id = e.value.intValue else {
                throw fail("special_tokens must map str to int")
            }
            specials[s] = id
        }
        try self.init(name: name, pattern: pattern, ranks: ranks, specialTokens: specials, file: path)
    }
}
