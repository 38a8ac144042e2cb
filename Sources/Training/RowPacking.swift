/// Packs documents into rows of `context` tokens for the model: each document is `<|bos|>` followed
/// by its tokens, documents follow each other, and rows cut the stream every `context` tokens.
/// The part of the last document that does not fit is dropped, so the next call starts at a
/// document boundary and `cursor` alone says where the stream is.
///
/// Returns `rows · context` token ids, row-major.
public func packRows(from source: DocumentSource, cursor: inout DataCursor, rows: Int, context: Int,
                     bos: Int, encode: (String) throws -> [Int]) throws -> [Int] {
    precondition(rows >= 1 && context >= 1)
    let want = rows * context
    var tokens: [Int] = []
    tokens.reserveCapacity(want)
    try source.read(from: &cursor) { doc in
        tokens.append(bos)
        tokens += try encode(doc)
        return tokens.count < want
    }
    tokens.removeLast(tokens.count - want)
    return tokens
}
