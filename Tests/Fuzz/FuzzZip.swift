// libFuzzer entry for the zip reader and the torch checkpoint loader on top of it (built by
// Tests/Fuzz/run.sh). The input is read in place, as a mapped file would be.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzZip(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let file = MappedFile(unownedBytes: UnsafeRawBufferPointer(start: data, count: size), path: "fuzz.pt")
    guard let zip = try? ZipArchive(mapped: file) else { return 0 }
    for e in zip.entries { _ = try? zip.withEntryBytes(e.name) { $0.reduce(0, &+) } }
    if let ckpt = try? TorchCheckpoint(archive: zip) {
        for name in ckpt.names { _ = try? ckpt.tensor(name) }
    }
    return 0
}
