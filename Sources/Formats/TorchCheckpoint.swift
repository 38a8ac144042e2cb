// torch.save state dicts: a zip of stored entries `<prefix>/data.pkl` (pickle protocol 2 of an
// OrderedDict name → tensor) and `<prefix>/data/<key>` (raw little-endian storages). Each tensor is
// `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks)`,
// the storage a persistent id `('storage', torch.<T>Storage, key, location, numel)`.
import Tensors

/// The globals a torch state dict's pickle may name; anything else is refused.
public let torchStateDictGlobals: Set<String> = [
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
    "torch.FloatStorage", "torch.BFloat16Storage", "torch.HalfStorage", "torch.LongStorage",
    "torch.IntStorage", "torch.DoubleStorage", "torch.ByteStorage", "torch.BoolStorage",
]

/// A torch checkpoint opened and its pickle decoded; tensors are gathered and converted on request.
public struct TorchCheckpoint: Sendable {
    /// Where one tensor lives: a view (offset, sizes, strides in elements) into a storage entry.
    public struct TensorInfo: Sendable, Equatable {
        public let dtype: ElementType
        public let shape: [Int]
        public let stride: [Int]
        public let storageOffset: Int
        /// The zip entry holding the storage: `<prefix>/data/<key>`.
        public let storageEntry: String
        /// Elements in the storage (from the persistent id).
        public let storageCount: Int
    }

    public let path: String
    /// Key → tensor view, keys with any `_orig_mod.` prefix (torch.compile) removed.
    public let tensors: [String: TensorInfo]
    private let archive: ZipArchive

    public init(path: String) throws {
        try self.init(archive: try ZipArchive(path: path))
    }

    /// Reads the checkpoint held by an opened zip archive.
    public init(archive: ZipArchive) throws {
        self.archive = archive
        let path = archive.path
        self.path = path
        let pickles = archive.names.filter { $0 == "data.pkl" || $0.hasSuffix("/data.pkl") }
        guard pickles.count == 1, let pkl = pickles.first else {
            throw FormatError.invalid(file: path, detail: pickles.isEmpty
                ? "not a torch checkpoint: no data.pkl in the zip archive"
                : "several data.pkl entries in the zip archive")
        }
        let prefix = String(pkl.dropLast("data.pkl".count))
        // Older torch versions write no byteorder entry (little-endian); one that is there must be readable.
        if archive.names.contains(prefix + "byteorder"), case let order = try archive.bytes(prefix + "byteorder"),
           order != Array("little".utf8) {
            throw FormatError.unsupported(file: path, what: "torch checkpoint byte order \(String(decoding: order, as: UTF8.self))")
        }
        let root = try archive.withEntryBytes(pkl) {
            try unpickle($0, allowedGlobals: torchStateDictGlobals, file: path)
        }
        guard case let .dict(pairs) = root else {
            throw FormatError.invalid(file: path, detail: "data.pkl does not hold a dict of tensors (a state dict)")
        }
        var tensors: [String: TensorInfo] = [:]
        for pair in pairs {
            guard case var .string(key) = pair.key else {
                throw FormatError.invalid(file: path, detail: "state dict key \(pair.key) is not a string")
            }
            if key.hasPrefix("_orig_mod.") { key = String(key.dropFirst("_orig_mod.".count)) }
            guard tensors[key] == nil else {
                throw FormatError.invalid(file: path, detail: "state dict key \(key) appears twice (with and without _orig_mod.?)")
            }
            let info = try TorchCheckpoint.tensorInfo(pair.value, key: key, prefix: prefix, path: path)
            let storage = try archive.entry(info.storageEntry)
            guard storage.method == 0 else {
                throw FormatError.unsupported(file: path, what: "storage \(info.storageEntry) is compressed")
            }
            guard let need = checkedMul(info.storageCount, info.dtype.size), need <= storage.uncompressedSize else {
                throw FormatError.outOfBounds(file: path, what: "storage \(info.storageEntry) holds \(storage.uncompressedSize) bytes, fewer than \(info.storageCount) × \(info.dtype.size)")
            }
            tensors[key] = info
        }
        self.tensors = tensors
    }

    /// Keys, sorted.
    public var names: [String] { tensors.keys.sorted() }

    public func info(_ name: String) throws -> TensorInfo {
        guard let i = tensors[name] else { throw FormatError.missing(file: path, name: name) }
        return i
    }

    /// The tensor's elements where they lie in the mapped file, when they can be used in place: a
    /// contiguous view whose first element is aligned for its type (torch aligns storages to 64
    /// bytes). Valid as long as this checkpoint (or a copy) lives; nil when the tensor must be
    /// gathered or converted (`tensor(_:)`).
    public func mappedElements(_ name: String) throws -> UnsafeRawBufferPointer? {
        let info = try info(name)
        let count = info.shape.reduce(1, *)
        guard count > 0, TorchCheckpoint.contiguousStrides(info.shape) == info.stride || count == 1 else { return nil }
        let entry = try archive.mappedBytes(info.storageEntry)
        let start = info.storageOffset * info.dtype.size
        let bytes = UnsafeRawBufferPointer(rebasing: entry[start ..< start + count * info.dtype.size])
        return Int(bitPattern: bytes.baseAddress!) % info.dtype.size == 0 ? bytes : nil
    }

    /// The tensor as row-major Float32 (views gathered, bf16/f16/f64/integers converted).
    public func tensor(_ name: String) throws -> Tensor {
        let info = try info(name)
        let count = info.shape.reduce(1, *)
        if count == 0 { return Tensor(shape: info.shape, storage: []) }
        return try archive.withEntryBytes(info.storageEntry) { raw in
            let type = info.dtype
            let contiguous = TorchCheckpoint.contiguousStrides(info.shape) == info.stride || count <= 1
            if contiguous {
                let start = info.storageOffset * type.size
                return Tensor(shape: info.shape, storage: type.floats(
                    UnsafeRawBufferPointer(rebasing: raw[start..<(start + count * type.size)]), count: count))
            }
            // Strided view: walk the multi-index in row-major order.
            var out = [Float](repeating: 0, count: count)
            let rank = info.shape.count
            var index = [Int](repeating: 0, count: rank)
            var offset = info.storageOffset
            for i in 0..<count {
                out[i] = type.float(raw, offset)
                var d = rank - 1
                while d >= 0 {
                    index[d] += 1
                    offset += info.stride[d]
                    if index[d] < info.shape[d] { break }
                    offset -= info.stride[d] * info.shape[d]
                    index[d] = 0
                    d -= 1
                }
            }
            return Tensor(shape: info.shape, storage: out)
        }
    }

    static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) { s[d] = acc; acc *= shape[d] }
        return s
    }

    // -----------------------------------------------------------------------------------------
    // Interpreting the pickle

    static let storageTypes: [String: ElementType] = [
        "FloatStorage": .f32, "BFloat16Storage": .bf16, "HalfStorage": .f16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ByteStorage": .u8, "BoolStorage": .bool,
    ]

    static func tensorInfo(_ value: PickleValue, key: String, prefix: String, path: String) throws -> TensorInfo {
        func bad(_ why: String) -> FormatError {
            .invalid(file: path, detail: "state dict entry \(key): \(why)")
        }
        guard case let .object(obj) = value, case let .global(module, name) = obj.callable, module == "torch._utils" else {
            throw FormatError.unsupported(file: path, what: "state dict entry \(key) is not a tensor")
        }
        if name == "_rebuild_parameter" {
            guard obj.args.count >= 1 else { throw bad("_rebuild_parameter without a tensor") }
            return try tensorInfo(obj.args[0], key: key, prefix: prefix, path: path)
        }
        guard name == "_rebuild_tensor_v2", obj.args.count >= 4 else {
            throw bad("expected _rebuild_tensor_v2(storage, offset, size, stride, ...)")
        }
        // Persistent id: ('storage', torch.<T>Storage, key, location, numel)
        guard case let .persistentID(pid) = obj.args[0], let fields = pid.sequence, fields.count == 5,
              fields[0] == .string("storage"), case let .global("torch", storageName) = fields[1],
              let storageKey = fields[2].stringValue, let numel = fields[4].intValue, numel >= 0 else {
            throw bad("storage is not a persistent id ('storage', type, key, location, numel)")
        }
        guard let dtype = storageTypes[storageName] else {
            throw FormatError.unsupported(file: path, what: "state dict entry \(key) has storage type torch.\(storageName)")
        }
        guard !storageKey.isEmpty, !storageKey.contains("/"), storageKey != "..", storageKey != "." else {
            throw bad("storage key \(storageKey) is not a plain name")
        }
        guard let offset = obj.args[1].intValue, offset >= 0 else { throw bad("storage offset is not a non-negative integer") }
        guard let sizeValues = obj.args[2].sequence, let strideValues = obj.args[3].sequence,
              sizeValues.count == strideValues.count else {
            throw bad("size and stride are not tuples of equal length")
        }
        var shape: [Int] = [], strides: [Int] = []
        for (s, t) in zip(sizeValues, strideValues) {
            guard let s = s.intValue, s >= 0, let t = t.intValue, t >= 0 else {
                throw bad("size and stride must be non-negative integers")
            }
            shape.append(s); strides.append(t)
        }
        // Every element the view reaches must lie in the storage: offset + Σ (size−1)·stride < numel.
        var count = 1
        var last = offset
        for (s, t) in zip(shape, strides) {
            guard let c = checkedMul(count, s) else { throw bad("element count overflows") }
            count = c
            if s > 0 {
                guard let reach = checkedMul(s - 1, t), let l = checkedAdd(last, reach) else {
                    throw bad("view extent overflows")
                }
                last = l
            }
        }
        if count > 0, last >= numel {
            throw FormatError.outOfBounds(file: path, what: "tensor \(key) (offset \(offset), size \(shape), stride \(strides)) reaches element \(last) of a storage of \(numel)")
        }
        return TensorInfo(dtype: dtype, shape: shape, stride: strides, storageOffset: offset,
                          storageEntry: "\(prefix)data/\(storageKey)", storageCount: numel)
    }
}

/// Loads every tensor of a torch.save state dict as Float32, keys without any `_orig_mod.` prefix.
public func loadTorchStateDict(path: String) throws -> [String: Tensor] {
    let checkpoint = try TorchCheckpoint(path: path)
    var out: [String: Tensor] = [:]
    for name in checkpoint.tensors.keys { out[name] = try checkpoint.tensor(name) }
    return out
}
