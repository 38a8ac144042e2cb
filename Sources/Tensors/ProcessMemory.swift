import Foundation

/// This process's memory as Linux accounts it (/proc/self/status, kB): private anonymous pages
/// (`RssAnon`: heap, our buffers), file pages mapped in (`RssFile`: a mapped checkpoint, shared with
/// every process that maps the same file), shared memory (`RssShmem`: MPI's node-shared windows),
/// and the peak resident set (`VmHWM`). Fields the kernel does not report are nil.
public struct ProcessMemory: Sendable, Equatable {
    public var anonKB: Int?, fileKB: Int?, shmemKB: Int?, peakKB: Int?

    public static func now() -> ProcessMemory {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Int? {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return nil }
            return Int(line.split(separator: " ").dropFirst().first ?? "")
        }
        return ProcessMemory(anonKB: field("RssAnon"), fileKB: field("RssFile"), shmemKB: field("RssShmem"), peakKB: field("VmHWM"))
    }
}
