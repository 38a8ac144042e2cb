// libFuzzer entry for nanochat's tokenizer.pkl (built by Tests/Fuzz/run.sh): the bytes go through
// Tokenizer(pickle:file:) exactly as Tokenizer(path:) passes a file's contents — restricted
// unpickling, the tiktoken Encoding state, the checks on ranks and special tokens, and building
// the byte-pair tables — then a fixed text is encoded and decoded with the result.

let sampleText = "Hello, world! It's 2024: naïve café — 東京 🎉\n\n  tabs\tand   spaces 12345 x\r\n"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    guard let tok = try? Tokenizer(pickle: bytes, file: "fuzz.pkl") else { return 0 }
    let ids = tok.encode(sampleText)
    // Every byte is a token, so encoding then decoding gives the text back whatever the merges.
    if tok.decode(ids) != sampleText { fatalError("encode/decode round trip failed") }
    _ = tok.vocabSize
    _ = try? tok.bos
    for id in [-1, 0, 255, tok.vocabSize - 1, tok.vocabSize, Int.max] { _ = tok.tokenText(id) }
    return 0
}
