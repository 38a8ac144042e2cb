import Foundation
@testable import Formats

/// A unique path under the temporary directory; the file is removed by the caller (or left for the OS).
func temporaryPath(_ suffix: String) -> String {
    FileManager.default.temporaryDirectory
        .appendingPathComponent("nanosae-formats-\(UUID().uuidString)\(suffix)").path
}

/// Writes `bytes` to a fresh temporary file and returns its path.
func writeTemporary(_ bytes: [UInt8], suffix: String = ".bin") throws -> String {
    let path = temporaryPath(suffix)
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

/// Runs `body` and returns the FormatError it threw (nil if it did not throw one).
func formatError(_ body: () throws -> Void) -> FormatError? {
    do { try body(); return nil } catch let e as FormatError { return e } catch { return nil }
}

extension FormatError {
    /// The case name, for matching in tests.
    var kind: String {
        switch self {
        case .io: return "io"
        case .truncated: return "truncated"
        case .outOfBounds: return "outOfBounds"
        case .forbiddenGlobal: return "forbiddenGlobal"
        case .unsupported: return "unsupported"
        case .invalid: return "invalid"
        case .missing: return "missing"
        }
    }
}

func le64Bytes(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
