/// Why an outside file (safetensors, zip, pickle, torch checkpoint) was refused.
///
/// Every case names the file, so a command line can print `description` as one line and exit 2.
/// Readers never trap on bad input: each length, offset and index is checked and mapped to one of these.
public enum FormatError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be opened, mapped or written (`detail` carries the system's reason).
    case io(file: String, detail: String)
    /// The file ends before `what` is complete.
    case truncated(file: String, what: String)
    /// An offset or length in the file points outside the region it must lie in.
    case outOfBounds(file: String, what: String)
    /// A pickle names a global that the caller did not allow, e.g. `os.system`.
    case forbiddenGlobal(file: String, name: String)
    /// A valid feature of the format that this reader does not implement (compression, a dtype...).
    case unsupported(file: String, what: String)
    /// The bytes contradict the format (bad signature, inconsistent sizes, malformed header...).
    case invalid(file: String, detail: String)
    /// A tensor or entry the caller asked for is not in the file.
    case missing(file: String, name: String)

    /// One line: control characters that came from the file (names may hold anything) are escaped.
    public var description: String { oneLine(message) }

    private var message: String {
        switch self {
        case let .io(file, detail): return "\(file): cannot access the file: \(detail)"
        case let .truncated(file, what): return "\(file): file is truncated: \(what)"
        case let .outOfBounds(file, what): return "\(file): out of bounds: \(what)"
        case let .forbiddenGlobal(file, name):
            return "\(file): pickle names a global that is not allowed: \(name)"
        case let .unsupported(file, what): return "\(file): unsupported: \(what)"
        case let .invalid(file, detail): return "\(file): invalid: \(detail)"
        case let .missing(file, name): return "\(file): no tensor or entry named \(name)"
        }
    }
}

/// `text` with control characters escaped as `\u{..}`, so that a name taken from a file (which may
/// hold anything: newlines, terminal escapes) prints as one line of text.
public func oneLine(_ text: String) -> String {
    var line = ""
    for u in text.unicodeScalars {
        if u.value < 0x20 || u.value == 0x7f {
            line += "\\u{" + String(u.value, radix: 16) + "}"
        } else {
            line.unicodeScalars.append(u)
        }
    }
    return line
}

/// Bytes from a file as text: UTF-8 where they are valid, each byte of an invalid sequence as
/// `\xNN` (so two different invalid names never print alike, and no byte prints raw).
public func escapedUTF8<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    var text = ""
    var parser = Unicode.UTF8.ForwardParser()
    var iterator = bytes.makeIterator()
    var raw = Array(bytes)[...]
    while true {
        switch parser.parseScalar(from: &iterator) {
        case .valid(let encoded):
            text.unicodeScalars.append(Unicode.UTF8.decode(encoded))
            raw = raw.dropFirst(encoded.count)
        case .error(let length):
            for b in raw.prefix(length) { text += "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16) }
            raw = raw.dropFirst(length)
        case .emptyInput:
            return text
        }
    }
}

/// The byte offset of the first invalid UTF-8 sequence in `bytes`, or nil if they are valid UTF-8.
public func firstInvalidUTF8<Bytes: Collection>(_ bytes: Bytes) -> Int? where Bytes.Element == UInt8 {
    var parser = Unicode.UTF8.ForwardParser()
    var iterator = bytes.makeIterator()
    var offset = 0
    while true {
        switch parser.parseScalar(from: &iterator) {
        case .valid(let encoded): offset += encoded.count
        case .error: return offset
        case .emptyInput: return nil
        }
    }
}
