import Foundation

/// `OUT/metrics.jsonl`: one JSON object per logged step and hook (rank 0 only). Appends, so a
/// resumed run continues the same file; each line is flushed as it is written.
public final class MetricsLog {
    let handle: FileHandle

    public init(path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw ConfigError(path, "cannot create the metrics file")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw ConfigError(path, "cannot open the metrics file") }
        h.seekToEndOfFile()
        handle = h
    }

    deinit { try? handle.close() }

    public func write(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        handle.write(data + Data("\n".utf8))
    }
}

/// The progress line on stderr (rank 0): tokens, rate, ETA and the latest metrics. Rewritten in
/// place on a terminal, one line per update otherwise (logs, CI).
public struct ProgressLine {
    let isTTY = isatty(STDERR_FILENO) != 0
    var lastPrint = 0.0

    public init() {}

    /// Prints at most once a second unless `force`.
    public mutating func update(step: Int, totalSteps: Int, tokens: Int, totalTokens: Int, tokensPerSecond: Double,
                                detail: String = "", force: Bool = false) {
        let now = Date().timeIntervalSince1970
        guard force || now - lastPrint >= (isTTY ? 0.5 : 10) else { return }
        lastPrint = now
        let eta = tokensPerSecond > 0 ? Double(totalTokens - tokens) / tokensPerSecond : 0
        let line = String(format: "step %d/%d | %@/%@ tok | %@ tok/s | ETA %@",
                          step, totalSteps, formatCount(Double(tokens)), formatCount(Double(totalTokens)),
                          formatCount(tokensPerSecond), formatDuration(eta)) + (detail.isEmpty ? "" : " | " + detail)
        let text = isTTY ? "\r\u{1B}[K" + line + (force ? "\n" : "") : line + "\n"
        FileHandle.standardError.write(Data(text.utf8))
    }
}

/// 1234 → "1.2k", 1.5e6 → "1.5M".
public func formatCount(_ x: Double) -> String {
    switch abs(x) {
    case 1e9...: String(format: "%.2fB", x / 1e9)
    case 1e6...: String(format: "%.2fM", x / 1e6)
    case 1e3...: String(format: "%.1fk", x / 1e3)
    default: String(format: "%.0f", x)
    }
}

/// Seconds → "42s", "3m05s", "2h10m".
public func formatDuration(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "?" }
    let t = Int(s.rounded())
    if t < 60 { return "\(t)s" }
    if t < 3600 { return String(format: "%dm%02ds", t / 60, t % 60) }
    return String(format: "%dh%02dm", t / 3600, (t % 3600) / 60)
}
