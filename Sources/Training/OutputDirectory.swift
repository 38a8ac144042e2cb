import Foundation

/// Checks, before anything is loaded or computed, that `path` can be the output directory named by
/// `what` (a flag or key, e.g. "--out" or "out"): an existing directory we may write into, or a
/// path whose nearest existing ancestor is one (the directory is created later). Otherwise a
/// `ConfigError` that says which path is in the way and why.
public func checkOutputDirectory(_ path: String, what: String) throws {
    let fm = FileManager.default
    var isDir: ObjCBool = false
    if fm.fileExists(atPath: path, isDirectory: &isDir) {
        guard isDir.boolValue else { throw ConfigError("\(what) \(path)", "is a file; expected a directory (created if missing)") }
        guard access(path, W_OK | X_OK) == 0 else {
            throw ConfigError("\(what) \(path)", "cannot write into this directory (\(String(cString: strerror(errno))))")
        }
        return
    }
    // The nearest existing ancestor must be a directory we can create entries in.
    var ancestor = URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent()
    while !fm.fileExists(atPath: ancestor.path, isDirectory: &isDir) && ancestor.path != "/" {
        ancestor.deleteLastPathComponent()
    }
    guard isDir.boolValue else {
        throw ConfigError("\(what) \(path)", "cannot be created: \(ancestor.path) is a file, not a directory")
    }
    guard access(ancestor.path, W_OK | X_OK) == 0 else {
        throw ConfigError("\(what) \(path)", "cannot be created in \(ancestor.path) (\(String(cString: strerror(errno))))")
    }
}
