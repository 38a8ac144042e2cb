// libFuzzer entry for the SAELens loader (built by Tests/Fuzz/run.sh): one input encodes a whole SAE
// directory, as
//   cfg.json | 0x00 | sae_weights.safetensors
// (no 0x00: all of it is cfg.json and the weights file is empty). JSON has no NUL byte, so a mutation that
// lengthens or shortens cfg.json keeps both parts intact (a length prefix went stale and cut them: 1.75 M
// executions never got a changed d_sae past the weights file). Both files are written into a
// per-process directory under /dev/shm (else the temp dir) and SAE.loadSAELens(from:) reads them. Any
// input must give an SAE or a thrown error; a trap, sanitizer report or allocation over -malloc_limit_mb
// is a bug.
import Foundation

let saeLensFuzzDirectory: String = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let dir = base + "/nanosae-fuzz-saelens-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: saeLensFuzzDirectory) }
    return dir
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSAELens(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let cfgStart = 0, cfgEnd = input.firstIndex(of: 0) ?? size
    let weightsStart = min(cfgEnd + 1, size)
    let dir = saeLensFuzzDirectory
    do {
        // An empty cfg.json is written as one space (the same invalid JSON): swift-foundation 6.3's
        // Data(contentsOf:) leaks its 4 KiB read buffer on a zero-size file (Data+Reading.swift's
        // fileSize == 0 path on Linux), which LeakSanitizer would report against every such input.
        let cfg = cfgEnd > cfgStart ? Data(input[cfgStart..<cfgEnd]) : Data(" ".utf8)
        try cfg.write(to: URL(fileURLWithPath: dir + "/cfg.json"))
        try Data(input[weightsStart..<size]).write(to: URL(fileURLWithPath: dir + "/sae_weights.safetensors"))
    } catch {
        fatalError("cannot write the fuzz input to \(dir): \(error)")
    }
    if let sae = try? SAE.loadSAELens(from: dir) {
        // The loaded parameters must fill the layout the config implies.
        if sae.params.count != sae.layout.count { fatalError("params \(sae.params.count) != layout \(sae.layout.count)") }
    }
    return 0
}
