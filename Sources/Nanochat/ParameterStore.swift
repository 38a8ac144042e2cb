import Formats
import Tensors

/// All parameters of a model, by name, with raw pointers for the kernels. Immutable once built.
///
/// From a checkpoint file the weights are used where they lie (llm.c reads its weights into one
/// allocation; we map them): a float32 tensor is a view into the read-only mapping, so every process
/// of a node that loads the same file shares the page cache's one copy, and loading costs what
/// reading the pages costs. Embedding tables (`wte`, value embeddings) stay in their stored dtype,
/// bf16 as nanochat saves them from GPUs, and rows are widened when looked up (exact: bf16 and f16
/// are subsets of f32, so every output is the same bits as with a float32 table). Anything else
/// that cannot be used in place (another dtype, a strided view, a misaligned storage) is converted
/// once into a float32 copy, listed in `converted`: in memory shared by the processes of a node when
/// the caller provides it (`SharedMemory`; sae-train's ranks do, through MPI), else private.
final class ParameterStore: @unchecked Sendable {
    struct Entry {
        let shape: [Int]
        /// f32, or bf16/f16 for an embedding table kept as stored.
        let dtype: ElementType
        let base: UnsafeRawPointer
        var count: Int { shape.reduce(1, *) }
    }
    private(set) var entries: [String: Entry] = [:]
    /// Tensors converted to float32 copies, and their bytes (the mapped ones cost none).
    private(set) var converted: [(name: String, bytes: Int)] = []
    /// What keeps the mapped bytes valid.
    private let checkpoint: TorchCheckpoint?
    private var owned: [UnsafeMutablePointer<Float>] = []

    /// Keys of the tables that are read a row at a time (and may therefore stay bf16).
    static func isEmbeddingTable(_ name: String) -> Bool {
        name == "transformer.wte.weight" || (name.hasPrefix("value_embeds.") && name.hasSuffix(".weight"))
    }

    /// Views into `checkpoint`'s mapping where possible, float32 copies otherwise: in memory from
    /// `shared` when given (one copy per node, converted by one process), else private.
    init(checkpoint: TorchCheckpoint, shared: SharedMemory? = nil) throws {
        self.checkpoint = checkpoint
        var convert: [(name: String, shape: [Int])] = []
        for name in checkpoint.names {
            let info = try checkpoint.info(name)
            guard info.dtype.isFloatingPoint else {
                throw FormatError.unsupported(file: checkpoint.path, what: "tensor \(name) has dtype \(info.dtype.rawValue); nanochat's weights are floating point")
            }
            let inPlace = info.dtype == .f32 || (Self.isEmbeddingTable(name) && (info.dtype == .bf16 || info.dtype == .f16))
            if inPlace, let bytes = try checkpoint.mappedElements(name) {
                entries[name] = Entry(shape: info.shape, dtype: info.dtype, base: bytes.baseAddress!)
            } else {
                convert.append((name, info.shape))
            }
        }
        converted = convert.map { ($0.name, $0.shape.reduce(1, *) * 4) }
        guard let shared, !convert.isEmpty else {
            for (name, _) in convert { add(name, try checkpoint.tensor(name)) }
            return
        }
        // One region, each tensor at a 64-byte-aligned offset, filled by the node's first process.
        var offsets: [Int] = [], total = 0
        for (_, bytes) in converted { offsets.append(total); total += (bytes + 63) / 64 * 64 }
        let base = try shared(total) { region in
            for ((name, _), o) in zip(convert, offsets) {
                try checkpoint.tensor(name).withConstBuffer { b in
                    if b.count > 0 { (region + o).copyMemory(from: b.baseAddress!, byteCount: b.count * 4) }
                }
            }
        }
        for ((name, shape), o) in zip(convert, offsets) { entries[name] = Entry(shape: shape, dtype: .f32, base: base + o) }
    }

    /// Private float32 copies of `tensors` (tests and benchmarks that build models in memory).
    init(_ tensors: [String: Tensor]) {
        checkpoint = nil
        for name in tensors.keys.sorted() { add(name, tensors[name]!) }
    }

    private func add(_ name: String, _ t: Tensor) {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(t.count, 1))
        t.withConstBuffer { b in if b.count > 0 { p.update(from: b.baseAddress!, count: b.count) } }
        owned.append(p)
        entries[name] = Entry(shape: t.shape, dtype: .f32, base: UnsafeRawPointer(p))
    }

    deinit { for p in owned { p.deallocate() } }

    var shapes: [String: [Int]] { entries.mapValues(\.shape) }

    /// Parameters (elements) in all.
    var count: Int { entries.values.reduce(0) { $0 + $1.count } }

    func has(_ name: String) -> Bool { entries[name] != nil }

    /// The float32 parameter `name` (present: the profile check guarantees it).
    func pointer(_ name: String) -> UnsafePointer<Float> {
        let e = entries[name]!
        precondition(e.dtype == .f32, "\(name) is \(e.dtype.rawValue), read it as a table")
        return e.base.assumingMemoryBound(to: Float.self)
    }

    /// The embedding table `name`, rows of its last dimension.
    func table(_ name: String) -> EmbeddingTable {
        let e = entries[name]!
        return EmbeddingTable(base: e.base, dtype: e.dtype, width: e.shape.last ?? 1)
    }

    /// A float32 copy of the parameter `name`.
    func tensor(_ name: String) -> Tensor {
        let e = entries[name]!
        let raw = UnsafeRawBufferPointer(start: e.base, count: e.count * e.dtype.size)
        return Tensor(shape: e.shape, storage: e.dtype.floats(raw, count: e.count))
    }

    /// The first NaN or ±inf of any parameter (names in sorted order), or nil.
    func firstNonFinite() -> (name: String, index: Int)? {
        for name in entries.keys.sorted() {
            let e = entries[name]!
            let raw = UnsafeRawBufferPointer(start: e.base, count: e.count * e.dtype.size)
            let i = e.dtype == .f32
                ? Tensors.firstNonFinite(UnsafeBufferPointer(start: e.base.assumingMemoryBound(to: Float.self), count: e.count))
                : e.dtype.firstNonFinite(raw, count: e.count)
            if let i { return (name, i) }
        }
        return nil
    }
}

/// Memory of `bytes` shared by the processes of a node; `fill` runs in one of them and every one
/// returns once it has finished (sae-train passes `Communicator.nodeShared`).
public typealias SharedMemory = (_ bytes: Int, _ fill: (UnsafeMutableRawPointer) throws -> Void) throws -> UnsafeRawPointer

/// An embedding table [rows, width] in its stored dtype; a row is widened to float32 when read.
struct EmbeddingTable: @unchecked Sendable {
    let base: UnsafeRawPointer
    let dtype: ElementType
    let width: Int

    /// dst[0..<width] = row r (bf16 → f32 is a 16-bit shift, f16 → f32 exact).
    @inline(__always)
    func copyRow(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .f32:
            dst.update(from: base.assumingMemoryBound(to: Float.self) + r * width, count: width)
        case .bf16:
            let src = base.assumingMemoryBound(to: UInt16.self) + r * width
            for i in 0..<width { dst[i] = Float(bitPattern: UInt32(UInt16(littleEndian: src[i])) << 16) }
        default:
            let raw = UnsafeRawBufferPointer(start: base + r * width * dtype.size, count: width * dtype.size)
            for i in 0..<width { dst[i] = dtype.float(raw, i) }
        }
    }
}
