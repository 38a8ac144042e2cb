// Reads one column chunk (one column of one row group) page by page into strings.
//
//   chunk      = [DICTIONARY_PAGE] (DATA_PAGE | DATA_PAGE_V2)*
//   data v1    = whole body compressed: [def-levels: u32 LE length + RLE hybrid] values
//   data v2    = [def-levels: RLE hybrid, length in header] (uncompressed) then values (compressed
//                unless is_compressed is false)
//   values     = PLAIN: per non-null value u32 LE length + bytes
//                RLE_DICTIONARY / PLAIN_DICTIONARY: one byte bit width, then RLE-hybrid indices
//                into the dictionary page's PLAIN values
// Definition level == max level means "value present"; anything lower is a null (flat columns).
// Repetition levels only exist for repeated columns, which are rejected before reading.

/// Reads the pages of one column chunk. Created per call, so reads on different threads do not
/// share buffers or decompression contexts.
struct ParquetColumnReader {
    let file: ParquetFile
    let rowGroup: Int
    let leaf: ParquetLeafColumn
    let chunk: ParquetColumnChunk
    let rowCount: Int

    init(file: ParquetFile, rowGroup: Int, leafIndex: Int) {
        self.file = file
        self.rowGroup = rowGroup
        leaf = file.leaves[leafIndex]
        chunk = file.metadata.rowGroups[rowGroup].columns[leafIndex]
        rowCount = Int(file.metadata.rowGroups[rowGroup].numRows)
    }

    private var location: String { "row group \(rowGroup), column '\(leaf.name)'" }

    private func corrupt(_ problem: String, page: Int? = nil) -> ParquetError {
        let at = page.map { ", page at byte \($0)" } ?? ""
        return .corrupt(file: file.path, location: location + at, problem: problem)
    }

    private func unsupported(_ feature: String, page: Int? = nil) -> ParquetError {
        let at = page.map { ", page at byte \($0)" } ?? ""
        return .unsupported(file: file.path, location: location + at, feature: feature)
    }

    // MARK: - Chunk

    /// Reads every page of the chunk; returns one entry per row (nil for nulls).
    func readStrings() throws -> [String?] {
        guard leaf.type == .byteArray else {
            throw ParquetError.notAStringColumn(file: file.path, column: leaf.name, physicalType: leaf.type.description)
        }
        guard leaf.maxRepetitionLevel == 0 else { throw unsupported("repeated (list) column") }
        if let other = chunk.filePath, !other.isEmpty { throw unsupported("column chunk stored in another file '\(other)'") }
        guard ParquetDecompressor.supported.contains(chunk.codec) else {
            throw unsupported("codec \(chunk.codec) (supported: UNCOMPRESSED, SNAPPY, GZIP, ZSTD)")
        }
        guard chunk.path == leaf.path else {
            throw corrupt("chunk's path \(chunk.path.joined(separator: ".")) differs from the schema's")
        }
        guard chunk.type == leaf.type else { throw corrupt("chunk's type \(chunk.type) differs from the schema's \(leaf.type)") }
        // Flat column: one value (or null) per row.
        guard chunk.numValues == Int64(rowCount) else {
            throw corrupt("chunk has \(chunk.numValues) values but the row group has \(rowCount) rows")
        }
        let start = chunk.startOffset
        guard start >= 4, chunk.totalCompressedSize >= 0,
              chunk.totalCompressedSize <= Int64(file.dataEnd) - start else {
            throw corrupt("chunk at byte \(start) of \(chunk.totalCompressedSize) bytes lies outside the data "
                + "region 4..<\(file.dataEnd)")
        }
        let end = Int(start + chunk.totalCompressedSize)

        var state = ChunkState(codec: chunk.codec)
        // A corrupt row count must not reserve gigabytes: at least one byte per row is on disk
        // (PLAIN lengths) unless values are nulls or dictionary indices, so cap the reservation.
        state.values.reserveCapacity(min(rowCount, end - Int(start)))
        var position = Int(start)
        while state.values.count < rowCount {
            guard position < end else {
                throw corrupt("chunk ends after \(state.values.count) of \(rowCount) values")
            }
            let pageStart = position
            var headerReader = ThriftCompactReader(UnsafeRawBufferPointer(rebasing: file.bytes[position..<end]))
            let header: ParquetPageHeader
            do {
                header = try ParquetPageHeader(from: &headerReader)
            } catch let error as ThriftError {
                throw corrupt("page header: \(error)", page: pageStart)
            }
            position += headerReader.position
            guard header.compressedSize <= end - position else {
                throw corrupt("page body of \(header.compressedSize) bytes runs past the chunk end at byte \(end)",
                              page: pageStart)
            }
            let body = UnsafeRawBufferPointer(rebasing: file.bytes[position..<(position + header.compressedSize)])
            position += header.compressedSize
            do {
                switch header.type {
                case .dictionaryPage: try readDictionaryPage(header, body, &state, page: pageStart)
                case .dataPage: try readDataPageV1(header, body, &state, page: pageStart)
                case .dataPageV2: try readDataPageV2(header, body, &state, page: pageStart)
                case .indexPage: continue
                default: throw corrupt("unknown \(header.type)", page: pageStart)
                }
            } catch let error as ParquetDecodeError {
                throw corrupt(error.problem, page: pageStart)
            }
        }
        return state.values
    }

    /// What carries from page to page within a chunk.
    private struct ChunkState {
        var values: [String?] = []
        var dictionary: [String]?
        let decompressor: ParquetDecompressor
        var scratch: [UInt8] = []        // decompressed page body in its first `scratchCount` bytes
        var scratchCount = 0
        var levels: [UInt32] = []        // definition levels of the current page
        var indices: [UInt32] = []       // dictionary indices of the current page

        init(codec: ParquetCodec) { decompressor = ParquetDecompressor(codec: codec) }
    }

    // MARK: - Pages

    private func readDictionaryPage(_ header: ParquetPageHeader, _ body: UnsafeRawBufferPointer,
                                    _ state: inout ChunkState, page: Int) throws {
        guard state.dictionary == nil, state.values.isEmpty else {
            throw corrupt("dictionary page after the chunk's first page", page: page)
        }
        guard header.encoding == .plain || header.encoding == .plainDictionary else {
            throw unsupported("dictionary page encoding \(header.encoding)", page: page)
        }
        try decompress(body, size: header.uncompressedSize, into: &state)
        var dictionary: [String] = []
        dictionary.reserveCapacity(min(header.numValues, header.uncompressedSize / 4))
        let size = state.scratchCount
        try state.scratch.withUnsafeBytes { all in
            let raw = UnsafeRawBufferPointer(rebasing: all[0..<size])
            var cursor = 0
            for _ in 0..<header.numValues {
                dictionary.append(try plainByteArray(raw, &cursor))
            }
        }
        state.dictionary = dictionary
    }

    private func readDataPageV1(_ header: ParquetPageHeader, _ body: UnsafeRawBufferPointer,
                                _ state: inout ChunkState, page: Int) throws {
        try checkValueCount(header.numValues, state, page: page)
        try decompress(body, size: header.uncompressedSize, into: &state)
        let count = header.numValues
        let decompressed = state.scratch, size = state.scratchCount
        try decompressed.withUnsafeBytes { all in
            let raw = UnsafeRawBufferPointer(rebasing: all[0..<size])
            var cursor = 0
            var present = count
            if leaf.maxDefinitionLevel > 0 {
                guard header.definitionLevelEncoding == .rle else {
                    throw unsupported("definition level encoding \(header.definitionLevelEncoding)", page: page)
                }
                // v1 levels carry a u32 LE byte length in front.
                guard raw.count >= 4 else { throw ParquetDecodeError(problem: "page too short for definition levels") }
                let length = Int(raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian)
                guard length <= raw.count - 4 else {
                    throw ParquetDecodeError(problem: "definition levels of \(length) bytes run past the page's \(raw.count)")
                }
                present = try decodeLevels(UnsafeRawBufferPointer(rebasing: raw[4..<(4 + length)]), count: count, &state)
                cursor = 4 + length
            }
            try decodeValues(UnsafeRawBufferPointer(rebasing: raw[cursor...]), encoding: header.encoding,
                             count: count, present: present, &state, page: page)
        }
    }

    private func readDataPageV2(_ header: ParquetPageHeader, _ body: UnsafeRawBufferPointer,
                                _ state: inout ChunkState, page: Int) throws {
        try checkValueCount(header.numValues, state, page: page)
        let count = header.numValues
        let levelBytes = header.repetitionLevelsByteLength + header.definitionLevelsByteLength
        guard levelBytes <= body.count, levelBytes <= header.uncompressedSize else {
            throw ParquetDecodeError(problem: "level lengths \(levelBytes) exceed the page size \(body.count)")
        }
        guard header.repetitionLevelsByteLength == 0 else {
            throw ParquetDecodeError(problem: "repetition levels in a flat column")
        }
        var present = count
        if leaf.maxDefinitionLevel > 0 {
            present = try decodeLevels(UnsafeRawBufferPointer(rebasing: body[0..<levelBytes]), count: count, &state)
        }
        guard present == count - header.numNulls else {
            throw ParquetDecodeError(problem: "header counts \(header.numNulls) nulls, definition levels \(count - present)")
        }
        let compressedValues = UnsafeRawBufferPointer(rebasing: body[levelBytes...])
        let valuesSize = header.uncompressedSize - levelBytes
        if header.isCompressed {
            try decompress(compressedValues, size: valuesSize, into: &state)
        } else {
            guard compressedValues.count == valuesSize else {
                throw ParquetDecodeError(problem: "uncompressed values are \(compressedValues.count) bytes, header says \(valuesSize)")
            }
            try reserveScratch(valuesSize, &state)
            state.scratch.withUnsafeMutableBytes { $0.copyMemory(from: compressedValues) }
        }
        let values = state.scratch, size = state.scratchCount
        try values.withUnsafeBytes { all in
            let raw = UnsafeRawBufferPointer(rebasing: all[0..<size])
            try decodeValues(raw, encoding: header.encoding, count: count, present: present, &state, page: page)
        }
    }

    // MARK: - Levels and values

    private func checkValueCount(_ count: Int, _ state: ChunkState, page: Int) throws {
        guard count <= rowCount - state.values.count else {
            throw corrupt("page holds \(count) values, only \(rowCount - state.values.count) rows remain", page: page)
        }
    }

    /// Decodes `count` definition levels into `state.levels`; returns how many values are present.
    private func decodeLevels(_ bytes: UnsafeRawBufferPointer, count: Int, _ state: inout ChunkState) throws -> Int {
        // Bit width: enough bits for 0...maxDefinitionLevel.
        let width = Int.bitWidth - leaf.maxDefinitionLevel.leadingZeroBitCount
        if state.levels.count < count { state.levels = [UInt32](repeating: 0, count: count) }
        let maxLevel = UInt32(leaf.maxDefinitionLevel)
        return try state.levels.withUnsafeMutableBufferPointer { levels in
            try decodeParquetHybrid(bytes, bitWidth: width, count: count, into: levels)
            var present = 0
            for level in levels[0..<count] {
                guard level <= maxLevel else {
                    throw ParquetDecodeError(problem: "definition level \(level) above the maximum \(maxLevel)")
                }
                if level == maxLevel { present += 1 }
            }
            return present
        }
    }

    /// Appends `count` entries to `state.values`: `present` decoded values, nil where the definition
    /// level is below the maximum (only if the column has levels).
    private func decodeValues(_ raw: UnsafeRawBufferPointer, encoding: ParquetEncoding, count: Int, present: Int,
                              _ state: inout ChunkState, page: Int) throws {
        let hasNulls = present < count
        let maxLevel = UInt32(leaf.maxDefinitionLevel)
        switch encoding {
        case .plain:
            var cursor = 0
            for i in 0..<count {
                if hasNulls && state.levels[i] != maxLevel {
                    state.values.append(nil)
                } else {
                    state.values.append(try plainByteArray(raw, &cursor))
                }
            }
        case .rleDictionary, .plainDictionary:
            guard let dictionary = state.dictionary else {
                throw corrupt("\(encoding) data page without a dictionary page", page: page)
            }
            guard present == 0 || !raw.isEmpty else { throw ParquetDecodeError(problem: "dictionary indices are missing") }
            if state.indices.count < present { state.indices = [UInt32](repeating: 0, count: present) }
            if present > 0 {
                let width = Int(raw[0])
                _ = try state.indices.withUnsafeMutableBufferPointer { indices in
                    try decodeParquetHybrid(UnsafeRawBufferPointer(rebasing: raw[1...]), bitWidth: width,
                                            count: present, into: indices)
                }
            }
            var next = 0
            for i in 0..<count {
                if hasNulls && state.levels[i] != maxLevel {
                    state.values.append(nil)
                    continue
                }
                let index = Int(state.indices[next])
                next += 1
                guard index < dictionary.count else {
                    throw ParquetDecodeError(problem: "dictionary index \(index) outside the \(dictionary.count) entries")
                }
                state.values.append(dictionary[index])
            }
        default:
            throw unsupported("value encoding \(encoding) (supported: PLAIN, RLE_DICTIONARY, PLAIN_DICTIONARY)", page: page)
        }
    }

    /// PLAIN BYTE_ARRAY: u32 LE length, then that many bytes (decoded as UTF-8).
    private func plainByteArray(_ raw: UnsafeRawBufferPointer, _ cursor: inout Int) throws -> String {
        guard raw.count - cursor >= 4 else {
            throw ParquetDecodeError(problem: "PLAIN values end early (length prefix at byte \(cursor) of \(raw.count))")
        }
        let length = Int(raw.loadUnaligned(fromByteOffset: cursor, as: UInt32.self).littleEndian)
        cursor += 4
        guard length <= raw.count - cursor else {
            throw ParquetDecodeError(problem: "PLAIN value of \(length) bytes at byte \(cursor) runs past the page's \(raw.count)")
        }
        defer { cursor += length }
        return String(decoding: UnsafeRawBufferPointer(rebasing: raw[cursor..<(cursor + length)]), as: UTF8.self)
    }

    /// Decompresses a page body into `state.scratch` (exactly `size` bytes).
    private func decompress(_ body: UnsafeRawBufferPointer, size: Int, into state: inout ChunkState) throws {
        try reserveScratch(size, &state)
        let decompressor = state.decompressor
        try state.scratch.withUnsafeMutableBytes { all in
            try decompressor.decompress(body, into: UnsafeMutableRawBufferPointer(rebasing: all[0..<size]))
        }
    }

    /// Makes `state.scratch` hold at least `size` bytes (reused across pages) and sets `scratchCount`.
    private func reserveScratch(_ size: Int, _ state: inout ChunkState) throws {
        // Bound the allocation by what the chunk says it holds uncompressed (plus slack for headers).
        let limit = max(chunk.totalUncompressedSize, 0) + 1 << 16
        guard Int64(size) <= limit else {
            throw ParquetDecodeError(problem: "page states \(size) uncompressed bytes, more than the chunk's \(chunk.totalUncompressedSize)")
        }
        if state.scratch.count < size { state.scratch = [UInt8](repeating: 0, count: size) }
        state.scratchCount = size
    }
}
