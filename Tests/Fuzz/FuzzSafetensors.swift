// libFuzzer entry for the safetensors reader (built by Tests/Fuzz/run.sh): parse, then convert every
// tensor through the public accessors.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let file = MappedFile(unownedBytes: UnsafeRawBufferPointer(start: data, count: size), path: "fuzz.safetensors")
    guard let st = try? SafetensorsFile(mapped: file) else { return 0 }
    for name in st.names {
        _ = try? st.tensor(name)
        _ = try? st.int64s(name)
    }
    return 0
}
