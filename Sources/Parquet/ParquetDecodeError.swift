/// A page whose body would not decompress or decode. Internal: the column reader turns it into a
/// `ParquetError` that adds the file, row group, column and page offset.
struct ParquetDecodeError: Error {
    var problem: String
}
