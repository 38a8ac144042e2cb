// Parquet's RLE / bit-packing hybrid encoding, used for definition levels and dictionary indices.
//
//   run        = header (ULEB128 varint), then
//     header & 1 == 0: RLE run of (header >> 1) copies of one value stored in ceil(width/8) bytes LE
//     header & 1 == 1: (header >> 1) groups of 8 values, each packed in `width` bits, LSB first
//                      (a group takes exactly `width` bytes)
// The last bit-packed group may be padded past the values the page needs; padding is ignored.

/// Decodes `count` values of `bitWidth` (0...32) bits from `bytes` into `out[0..<count]`.
/// Returns how many bytes were consumed. Throws when the runs end before `count` values.
@discardableResult
func decodeParquetHybrid(_ bytes: UnsafeRawBufferPointer, bitWidth: Int, count: Int,
                         into out: UnsafeMutableBufferPointer<UInt32>) throws -> Int {
    precondition(count <= out.count)
    guard (0...32).contains(bitWidth) else {
        throw ParquetDecodeError(problem: "RLE/bit-packed bit width \(bitWidth) is outside 0...32")
    }
    var position = 0
    var produced = 0
    let valueBytes = (bitWidth + 7) / 8
    let mask: UInt64 = (1 << UInt64(bitWidth)) - 1

    func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.count else {
                throw ParquetDecodeError(problem: "RLE/bit-packed data ends inside a run header "
                    + "after \(produced) of \(count) values")
            }
            let byte = bytes[position]
            position += 1
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            guard shift < 64 else { throw ParquetDecodeError(problem: "RLE/bit-packed run header overflows") }
        }
    }

    while produced < count {
        let header = try varint()
        if header & 1 == 0 {
            // RLE run: one value repeated.
            let runLength = Int(clamping: header >> 1)
            guard valueBytes <= bytes.count - position else {
                throw ParquetDecodeError(problem: "RLE run value runs past the end of the data")
            }
            var value: UInt32 = 0
            for i in 0..<valueBytes { value |= UInt32(bytes[position + i]) << UInt32(8 * i) }
            position += valueBytes
            let take = min(runLength, count - produced)
            out.baseAddress!.advanced(by: produced).update(repeating: value, count: take)
            produced += take
        } else {
            // Bit-packed run: groups of 8 values, `bitWidth` bytes per group.
            let groups = Int(clamping: header >> 1)
            let runValues = groups > Int.max / 8 ? Int.max : groups * 8
            let take = min(runValues, count - produced)
            let neededBytes = (take * bitWidth + 7) / 8
            guard neededBytes <= bytes.count - position else {
                throw ParquetDecodeError(problem: "bit-packed run of \(take) values needs \(neededBytes) bytes, "
                    + "\(bytes.count - position) left")
            }
            // LSB-first: value i occupies bits [i*w, (i+1)*w) of the run's little-endian bit stream.
            var accumulator: UInt64 = 0
            var bits: UInt64 = 0
            var cursor = position
            for i in 0..<take {
                while bits < UInt64(bitWidth) {
                    accumulator |= UInt64(bytes[cursor]) << bits
                    cursor += 1
                    bits += 8
                }
                out[produced + i] = UInt32(truncatingIfNeeded: accumulator & mask)
                accumulator >>= UInt64(bitWidth)
                bits -= UInt64(bitWidth)
            }
            produced += take
            // Skip the whole run (groups * width bytes), or to the end if the padding was cut off.
            let runBytes = groups > (bytes.count - position) ? bytes.count - position : groups * bitWidth
            position += min(runBytes, bytes.count - position)
        }
    }
    return position
}
