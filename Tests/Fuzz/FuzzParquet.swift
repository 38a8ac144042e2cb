// libFuzzer entry for the parquet reader (built by Tests/Fuzz/run.sh): open the bytes as a parquet
// file (footer, thrift metadata, schema), then read every column of every row group as strings,
// as DocumentSource reads the `text` column (pages, decompression, levels, dictionaries).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParquet(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    guard let file = try? ParquetFile(bytes: bytes, name: "fuzz.parquet") else { return 0 }
    _ = file.rowCount
    _ = file.createdBy
    let names = file.columnNames
    for group in 0..<file.rowGroupCount {
        _ = try? file.rowCount(rowGroup: group)
        for name in names {
            if let values = try? file.strings(column: name, rowGroup: group) {
                // Touch the strings so a bad buffer behind them shows up here.
                var total = 0
                for v in values { total &+= v?.utf8.count ?? 0 }
                if total < 0 { print(total) }
            }
        }
    }
    _ = try? file.strings(column: "text")
    return 0
}
