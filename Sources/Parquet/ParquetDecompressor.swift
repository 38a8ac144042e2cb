// Page decompression for the codecs nanochat-style shards use: SNAPPY (raw snappy blocks),
// GZIP (gzip members, zlib's inflate), ZSTD (zstd frames), and UNCOMPRESSED.
//
// A page header states the decompressed size. Before allocating it, the size is checked against
// what the compressed bytes could possibly produce (the format's own size field for snappy and
// zstd, the codec's maximum ratio otherwise), so a corrupt header cannot ask for gigabytes.
// After decompressing, the produced size must equal the stated size exactly.

import CSnappy
import CZlib
import CZstd

/// Decompresses pages of one codec. Holds the zstd context so it is reused across pages.
final class ParquetDecompressor {
    let codec: ParquetCodec
    private var zstdContext: OpaquePointer?

    /// The codecs this reader implements.
    static let supported: [ParquetCodec] = [.uncompressed, .snappy, .gzip, .zstd]

    init(codec: ParquetCodec) {
        precondition(Self.supported.contains(codec), "check ParquetDecompressor.supported first")
        self.codec = codec
    }

    deinit {
        if let zstdContext { ZSTD_freeDCtx(zstdContext) }
    }

    /// Largest output `compressedSize` bytes can decode to (plus framing slack). Deflate's
    /// ratio is at most 1032:1; zstd's is 32768:1 (a 4-byte RLE block expands to 128 KiB).
    private func maxOutput(for compressedSize: Int) -> Int {
        switch codec {
        case .gzip: return compressedSize &* 1032 &+ 1024
        case .zstd: return compressedSize &* 32768 &+ 1024
        case .snappy: return compressedSize &* 22 &+ 64  // a 3-byte copy tag yields at most 64 bytes
        default: return compressedSize
        }
    }

    /// Decompresses `input` into `output`, which must be filled exactly.
    func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        guard output.count <= maxOutput(for: input.count) else {
            throw ParquetDecodeError(problem: "stated uncompressed size \(output.count) is impossible "
                + "for \(input.count) bytes of \(codec)")
        }
        switch codec {
        case .uncompressed:
            guard input.count == output.count else {
                throw ParquetDecodeError(problem: "UNCOMPRESSED page: compressed size \(input.count) "
                    + "differs from uncompressed size \(output.count)")
            }
            if let base = input.baseAddress, let out = output.baseAddress { out.copyMemory(from: base, byteCount: input.count) }
        case .snappy: try snappy(input, output)
        case .gzip: try gzip(input, output)
        case .zstd: try zstd(input, output)
        default: preconditionFailure("unsupported codec \(codec)")
        }
    }

    private func snappy(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) throws {
        let source = input.baseAddress?.assumingMemoryBound(to: CChar.self)
        var stated = 0
        guard snappy_uncompressed_length(source, input.count, &stated) == SNAPPY_OK else {
            throw ParquetDecodeError(problem: "SNAPPY stream has no valid length header")
        }
        guard stated == output.count else {
            throw ParquetDecodeError(problem: "SNAPPY stream holds \(stated) bytes, page header says \(output.count)")
        }
        var produced = output.count
        let status = snappy_uncompress(source, input.count, output.baseAddress?.assumingMemoryBound(to: CChar.self), &produced)
        guard status == SNAPPY_OK, produced == output.count else {
            throw ParquetDecodeError(problem: "SNAPPY data is corrupt (status \(status.rawValue))")
        }
    }

    private func zstd(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) throws {
        // ZSTD_CONTENTSIZE_UNKNOWN is UInt64.max, ZSTD_CONTENTSIZE_ERROR is UInt64.max - 1. The
        // stated size is compared only when the page is one frame (the usual case).
        let stated = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        if stated == UInt64.max - 1 {
            throw ParquetDecodeError(problem: "ZSTD data does not start with a valid zstd frame header")
        }
        let singleFrame = ZSTD_findFrameCompressedSize(input.baseAddress, input.count) == input.count
        if singleFrame && stated != UInt64.max && stated != UInt64(output.count) {
            throw ParquetDecodeError(problem: "ZSTD frames hold \(stated) bytes, page header says \(output.count)")
        }
        if zstdContext == nil { zstdContext = ZSTD_createDCtx() }
        let produced = ZSTD_decompressDCtx(zstdContext, output.baseAddress, output.count, input.baseAddress, input.count)
        if ZSTD_isError(produced) != 0 {
            throw ParquetDecodeError(problem: "ZSTD data is corrupt: \(String(cString: ZSTD_getErrorName(produced)))")
        }
        guard produced == output.count else {
            throw ParquetDecodeError(problem: "ZSTD data decompressed to \(produced) bytes, page header says \(output.count)")
        }
    }

    /// GZIP pages are gzip members (RFC 1952); several members back to back are concatenated.
    private func gzip(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) throws {
        var stream = z_stream()
        // windowBits 15 + 32: accept a zlib or gzip header (detected automatically).
        guard inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw ParquetDecodeError(problem: "zlib could not initialise inflate")
        }
        defer { inflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        stream.next_out = output.baseAddress?.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(output.count)
        while true {
            let status = inflate(&stream, Z_FINISH)
            if status == Z_STREAM_END {
                // Another member may follow; stop at the end of input or when the page is full.
                if stream.avail_in == 0 || stream.avail_out == 0 { break }
                guard inflateReset(&stream) == Z_OK else { break }
                continue
            }
            if status == Z_BUF_ERROR && stream.avail_out == 0 {
                throw ParquetDecodeError(problem: "GZIP data is longer than the page header's \(output.count) bytes")
            }
            let message = stream.msg.map { String(cString: $0) } ?? "status \(status)"
            throw ParquetDecodeError(problem: "GZIP data is corrupt or truncated: \(message)")
        }
        let produced = output.count - Int(stream.avail_out)
        guard produced == output.count else {
            throw ParquetDecodeError(problem: "GZIP data decompressed to \(produced) bytes, page header says \(output.count)")
        }
    }
}
