// libFuzzer entry for the restricted unpickler (built by Tests/Fuzz/run.sh, not part of `swift test`).
// Any input must give a value or a FormatError; a trap or sanitizer report is a bug.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPickle(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let allowed: Set<String> = torchStateDictGlobals.union(["tiktoken.core.Encoding", "_codecs.encode"])
    var limits = PickleLimits()
    limits.maxNodes = 1 << 20
    if let v = try? unpickle(bytes, allowedGlobals: allowed, file: "fuzz.pkl", limits: limits) {
        // Walk the result the way the torch reader does for dicts of tensors.
        if case let .dict(pairs) = v {
            for p in pairs {
                if case let .string(key) = p.key {
                    _ = try? TorchCheckpoint.tensorInfo(p.value, key: key, prefix: "a/", path: "fuzz.pkl")
                }
            }
        }
    }
    return 0
}
