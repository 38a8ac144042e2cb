// A restricted unpickler for pickle protocols 2-5: enough for torch.save state dicts (protocol 2) and a
// pickled tiktoken Encoding (protocol 4). It builds a tree of values and never calls anything: globals
// are names checked against the caller's allow-list, REDUCE/NEWOBJ/BUILD become `PickleObject` nodes
// for the caller to interpret. Every length, memo index and stack access is checked; nesting and the
// size of the produced tree are bounded.

/// A value decoded from a pickle.
public indirect enum PickleValue: Equatable, Sendable {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case list([PickleValue])
    case tuple([PickleValue])
    /// Key/value pairs in insertion order (later duplicates replace nothing: both are kept).
    case dict([PickleDictEntry])
    /// A global from the allow-list, e.g. `collections.OrderedDict`.
    case global(module: String, name: String)
    /// `callable(*args)` (REDUCE) or `cls.__new__(cls, *args)` (NEWOBJ), with what was applied after.
    case object(PickleObject)
    /// A persistent id (torch: `('storage', type, key, location, numel)`).
    case persistentID(PickleValue)

    /// The string, if this is one.
    public var stringValue: String? { if case let .string(s) = self { return s }; return nil }
    /// The integer, if this is one (bools count as 0/1, as in Python).
    public var intValue: Int? {
        switch self { case let .int(i): return i; case let .bool(b): return b ? 1 : 0; default: return nil }
    }
    /// The elements of a tuple or list.
    public var sequence: [PickleValue]? {
        switch self { case let .tuple(a), let .list(a): return a; default: return nil }
    }
    /// The value stored under string key `key` in a dict.
    public subscript(key: String) -> PickleValue? {
        guard case let .dict(pairs) = self else { return nil }
        return pairs.last(where: { $0.key == .string(key) })?.value
    }
}

public struct PickleDictEntry: Equatable, Sendable {
    public let key: PickleValue
    public let value: PickleValue
    public init(key: PickleValue, value: PickleValue) { self.key = key; self.value = value }
}

/// An object the pickle asked to construct; interpretation is left to the caller.
public struct PickleObject: Equatable, Sendable {
    /// The callable (REDUCE) or class (NEWOBJ); normally a `.global`.
    public var callable: PickleValue
    public var args: [PickleValue]
    /// True for NEWOBJ/NEWOBJ_EX (`cls.__new__`), false for REDUCE.
    public var isNewObj: Bool
    /// keyword arguments of NEWOBJ_EX, if any.
    public var kwargs: PickleValue?
    /// The BUILD state (`__setstate__` argument), if any.
    public var state: PickleValue?
    /// Items appended (APPEND/APPENDS) and set (SETITEM/SETITEMS) on the object after construction.
    public var listItems: [PickleValue]
    public var dictItems: [PickleDictEntry]
}

/// Limits on what an unpickler will build.
public struct PickleLimits: Sendable {
    /// Deepest nesting of containers in the result.
    public var maxDepth = 200
    /// Most values on the stack (and in the memo) at once.
    public var maxStack = 1 << 22
    /// Most nodes in the produced tree (shared memo entries count each time they are reached).
    public var maxNodes = 1 << 24
    public init() {}
}

/// Decodes a pickle, allowing only the globals named in `allowedGlobals` ("module.name").
///
/// `collections.OrderedDict()` (and `builtins.dict()`) with no arguments is built as a `.dict`, as the
/// state dicts of torch need. `file` names the source in errors.
public func unpickle(_ bytes: UnsafeRawBufferPointer, allowedGlobals: Set<String>, file: String,
                     limits: PickleLimits = PickleLimits()) throws -> PickleValue {
    var machine = PickleMachine(input: bytes, allowed: allowedGlobals, file: file, limits: limits)
    defer { machine.breakCycles() }
    let root = try machine.run()
    var budget = limits.maxNodes
    return try root.value(depth: 0, maxDepth: limits.maxDepth, budget: &budget, file: file)
}

/// Convenience over an array of bytes.
public func unpickle(_ bytes: [UInt8], allowedGlobals: Set<String>, file: String,
                     limits: PickleLimits = PickleLimits()) throws -> PickleValue {
    try bytes.withUnsafeBytes { try unpickle($0, allowedGlobals: allowedGlobals, file: file, limits: limits) }
}

// ---------------------------------------------------------------------------------------------
// The machine works on reference nodes, because pickles memoize an empty container and fill it
// afterwards (EMPTY_DICT, BINPUT, ..., SETITEMS): every reference must see the filled container.

final class PickleNode {
    enum Kind {
        case scalar(PickleValue)     // none, bool, int, float, string, bytes, global
        case list, tuple, dict
        case object(callable: PickleNode, args: [PickleNode], isNewObj: Bool, kwargs: PickleNode?)
        case persistentID(PickleNode)
    }
    let kind: Kind
    var items: [PickleNode] = []                    // list/tuple elements, object listItems
    var pairs: [(PickleNode, PickleNode)] = []      // dict items, object dictItems
    var state: PickleNode?

    init(_ kind: Kind, items: [PickleNode] = []) { self.kind = kind; self.items = items }

    var isDictLike: Bool {
        switch kind { case .dict, .object: return true; default: return false }
    }
    var isListLike: Bool {
        switch kind { case .list, .object: return true; default: return false }
    }

    func value(depth: Int, maxDepth: Int, budget: inout Int, file: String) throws -> PickleValue {
        guard depth <= maxDepth else {
            throw FormatError.invalid(file: file, detail: "pickle nests deeper than \(maxDepth) (or is cyclic)")
        }
        budget -= 1
        guard budget >= 0 else {
            throw FormatError.invalid(file: file, detail: "pickle expands to too many values (shared references repeated)")
        }
        func sub(_ n: PickleNode) throws -> PickleValue {
            try n.value(depth: depth + 1, maxDepth: maxDepth, budget: &budget, file: file)
        }
        switch kind {
        case let .scalar(v): return v
        case .list: return .list(try items.map(sub))
        case .tuple: return .tuple(try items.map(sub))
        case .dict: return .dict(try pairs.map { PickleDictEntry(key: try sub($0.0), value: try sub($0.1)) })
        case let .object(callable, args, isNewObj, kwargs):
            return .object(PickleObject(
                callable: try sub(callable), args: try args.map(sub), isNewObj: isNewObj,
                kwargs: try kwargs.map(sub), state: try state.map(sub), listItems: try items.map(sub),
                dictItems: try pairs.map { PickleDictEntry(key: try sub($0.0), value: try sub($0.1)) }))
        case let .persistentID(pid): return .persistentID(try sub(pid))
        }
    }
}

struct PickleMachine {
    let input: UnsafeRawBufferPointer
    let allowed: Set<String>
    let file: String
    let limits: PickleLimits
    var pos = 0
    var stack: [PickleNode] = []
    var marks: [Int] = []
    var memo: [Int: PickleNode] = [:]
    /// Containers filled after creation: the only way a pickle can build a reference cycle.
    var mutated: [PickleNode] = []

    init(input: UnsafeRawBufferPointer, allowed: Set<String>, file: String, limits: PickleLimits) {
        self.input = input; self.allowed = allowed; self.file = file; self.limits = limits
    }

    /// Empties every filled container so that cycles (a list appended to itself) do not leak.
    func breakCycles() {
        for n in mutated { n.items = []; n.pairs = []; n.state = nil }
    }

    // --- input -------------------------------------------------------------------------------

    func truncated(_ what: String) -> FormatError {
        .truncated(file: file, what: "pickle ends inside \(what) at byte \(pos)")
    }
    func invalid(_ detail: String) -> FormatError {
        .invalid(file: file, detail: "pickle \(detail) (at byte \(pos))")
    }

    mutating func take(_ n: Int, _ what: String) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= input.count - pos else { throw truncated(what) }
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: input[pos..<(pos + n)])
    }
    mutating func u8(_ what: String) throws -> Int { Int(try take(1, what)[0]) }
    mutating func u16(_ what: String) throws -> Int { Int(try take(2, what).le16(0)) }
    mutating func u32(_ what: String) throws -> Int { Int(try take(4, what).le32(0)) }
    mutating func u64(_ what: String) throws -> Int {
        let v = try take(8, what).le64(0)
        guard v <= UInt64(Int.max) else { throw invalid("\(what) length \(v) is too large") }
        return Int(v)
    }
    /// A newline-terminated text line (GLOBAL's module and name).
    mutating func line(_ what: String) throws -> String {
        var end = pos
        while end < input.count, input[end] != 0x0a { end += 1 }
        guard end < input.count else { throw truncated(what) }
        let text = UnsafeRawBufferPointer(rebasing: input[pos..<end])
        pos = end + 1
        guard let s = String(validating: text, as: UTF8.self) else { throw invalid("\(what) is not UTF-8") }
        return s
    }
    mutating func utf8(_ n: Int, _ what: String) throws -> String {
        let raw = try take(n, what)
        guard let s = String(validating: raw, as: UTF8.self) else { throw invalid("\(what) is not valid UTF-8") }
        return s
    }

    // --- stack -------------------------------------------------------------------------------

    mutating func push(_ n: PickleNode) throws {
        guard stack.count < limits.maxStack else { throw invalid("stack exceeds \(limits.maxStack) values") }
        stack.append(n)
    }
    mutating func push(_ v: PickleValue) throws { try push(PickleNode(.scalar(v))) }
    mutating func pop(_ op: String) throws -> PickleNode {
        guard stack.count > (marks.last ?? 0), let v = stack.popLast() else {
            throw invalid("stack underflow in \(op)")
        }
        return v
    }
    mutating func top(_ op: String) throws -> PickleNode {
        guard stack.count > (marks.last ?? 0), let v = stack.last else {
            throw invalid("stack underflow in \(op)")
        }
        return v
    }
    /// Everything above the last MARK, removing the mark.
    mutating func popMark(_ op: String) throws -> [PickleNode] {
        guard let m = marks.popLast() else { throw invalid("\(op) without a MARK") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    mutating func memoPut(_ index: Int) throws {
        guard let v = stack.last else { throw invalid("memo store with an empty stack") }
        guard memo.count < limits.maxStack || memo[index] != nil else { throw invalid("memo exceeds \(limits.maxStack) values") }
        memo[index] = v
    }
    mutating func memoGet(_ index: Int) throws {
        guard let v = memo[index] else { throw invalid("refers to memo entry \(index), which was never stored") }
        try push(v)
    }

    mutating func global(_ module: String, _ name: String) throws -> PickleNode {
        let full = "\(module).\(name)"
        guard allowed.contains(full) else { throw FormatError.forbiddenGlobal(file: file, name: full) }
        return PickleNode(.scalar(.global(module: module, name: name)))
    }

    /// REDUCE/NEWOBJ: OrderedDict()/dict() become dicts; everything else an object node.
    func construct(_ callable: PickleNode, _ args: PickleNode, isNewObj: Bool, kwargs: PickleNode? = nil) throws -> PickleNode {
        guard case .tuple = args.kind else { throw invalid("\(isNewObj ? "NEWOBJ" : "REDUCE") arguments are not a tuple") }
        if case let .scalar(.global(module, name)) = callable.kind, args.items.isEmpty, kwargs == nil,
           (module == "collections" && name == "OrderedDict") || (module == "builtins" && name == "dict") {
            return PickleNode(.dict)
        }
        return PickleNode(.object(callable: callable, args: args.items, isNewObj: isNewObj, kwargs: kwargs))
    }

    mutating func setItems(_ target: PickleNode, _ kv: [PickleNode], _ op: String) throws {
        guard target.isDictLike else { throw invalid("\(op) on a value that is not a dict") }
        guard kv.count % 2 == 0 else { throw invalid("\(op) with an odd number of values") }
        for i in stride(from: 0, to: kv.count, by: 2) {
            let k = kv[i]
            switch k.kind {
            case .list, .dict: throw invalid("\(op) with an unhashable key (a list or dict)")
            default: break
            }
            target.pairs.append((k, kv[i + 1]))
        }
        mutated.append(target)
    }

    mutating func appendItems(_ target: PickleNode, _ items: [PickleNode], _ op: String) throws {
        guard target.isListLike else { throw invalid("\(op) on a value that is not a list") }
        target.items.append(contentsOf: items)
        mutated.append(target)
    }

    // --- the loop ----------------------------------------------------------------------------

    mutating func run() throws -> PickleNode {
        while true {
            let opPos = pos
            let op = UInt8(try u8("an opcode"))
            switch op {
            case 0x80: // PROTO
                let v = try u8("PROTO")
                guard v <= 5 else { throw FormatError.unsupported(file: file, what: "pickle protocol \(v)") }
            case 0x95: _ = try take(8, "FRAME")          // FRAME: length of the next frame; frames are not needed
            case 0x2e: // STOP
                guard marks.isEmpty else { throw invalid("STOP with an open MARK") }
                guard stack.count == 1 else { throw invalid("STOP with \(stack.count) values on the stack, expected 1") }
                return stack[0]
            case 0x28: marks.append(stack.count)          // MARK
            case 0x30: _ = try pop("POP")                 // POP
            case 0x31: _ = try popMark("POP_MARK")        // POP_MARK
            case 0x32: try push(try top("DUP"))           // DUP

            case 0x4e: try push(.none)                    // NONE
            case 0x88: try push(.bool(true))              // NEWTRUE
            case 0x89: try push(.bool(false))             // NEWFALSE
            case 0x4a: try push(.int(Int(Int32(truncatingIfNeeded: try u32("BININT")))))   // BININT
            case 0x4b: try push(.int(try u8("BININT1")))  // BININT1
            case 0x4d: try push(.int(try u16("BININT2"))) // BININT2
            case 0x8a, 0x8b: // LONG1, LONG4: little-endian two's complement of n bytes
                let n = op == 0x8a ? try u8("LONG1") : try u32("LONG4")
                guard n <= 8 else { throw FormatError.unsupported(file: file, what: "pickle integer of \(n) bytes (more than 64 bits)") }
                let raw = try take(n, "LONG")
                var v: UInt64 = 0
                for i in 0..<n { v |= UInt64(raw[i]) << (8 * UInt64(i)) }
                if n > 0, n < 8, raw[n - 1] & 0x80 != 0 { v |= ~0 << (8 * UInt64(n)) }   // sign-extend
                try push(.int(Int(Int64(bitPattern: v))))
            case 0x47: // BINFLOAT: big-endian double
                let raw = try take(8, "BINFLOAT")
                var bits: UInt64 = 0
                for i in 0..<8 { bits = bits << 8 | UInt64(raw[i]) }
                try push(.float(Double(bitPattern: bits)))

            case 0x58: let n = try u32("BINUNICODE"); try push(.string(try utf8(n, "BINUNICODE")))
            case 0x8c: let n = try u8("SHORT_BINUNICODE"); try push(.string(try utf8(n, "SHORT_BINUNICODE")))
            case 0x8d: let n = try u64("BINUNICODE8"); try push(.string(try utf8(n, "BINUNICODE8")))
            case 0x42: let n = try u32("BINBYTES"); try push(.bytes(Array(try take(n, "BINBYTES"))))
            case 0x43: let n = try u8("SHORT_BINBYTES"); try push(.bytes(Array(try take(n, "SHORT_BINBYTES"))))
            case 0x8e: let n = try u64("BINBYTES8"); try push(.bytes(Array(try take(n, "BINBYTES8"))))
            case 0x96: let n = try u64("BYTEARRAY8"); try push(.bytes(Array(try take(n, "BYTEARRAY8"))))
            case 0x54, 0x55: // BINSTRING, SHORT_BINSTRING (Python 2 str): read as Latin-1 text
                let n = op == 0x55 ? try u8("SHORT_BINSTRING") : Int(Int32(truncatingIfNeeded: try u32("BINSTRING")))
                guard n >= 0 else { throw invalid("BINSTRING with a negative length") }
                let raw = try take(n, "BINSTRING")
                try push(.string(String(String.UnicodeScalarView(raw.map { Unicode.Scalar($0) }))))

            case 0x29: try push(PickleNode(.tuple))                                   // EMPTY_TUPLE
            case 0x85: let a = try pop("TUPLE1"); try push(PickleNode(.tuple, items: [a]))
            case 0x86:
                let b = try pop("TUPLE2"), a = try pop("TUPLE2")
                try push(PickleNode(.tuple, items: [a, b]))
            case 0x87:
                let c = try pop("TUPLE3"), b = try pop("TUPLE3"), a = try pop("TUPLE3")
                try push(PickleNode(.tuple, items: [a, b, c]))
            case 0x74: try push(PickleNode(.tuple, items: try popMark("TUPLE")))      // TUPLE
            case 0x5d: try push(PickleNode(.list))                                    // EMPTY_LIST
            case 0x6c: try push(PickleNode(.list, items: try popMark("LIST")))        // LIST
            case 0x61: // APPEND
                let v = try pop("APPEND")
                try appendItems(try top("APPEND"), [v], "APPEND")
            case 0x65: // APPENDS
                let items = try popMark("APPENDS")
                try appendItems(try top("APPENDS"), items, "APPENDS")
            case 0x8f: try push(PickleNode(.list))                                    // EMPTY_SET (as a list)
            case 0x90: // ADDITEMS
                let items = try popMark("ADDITEMS")
                try appendItems(try top("ADDITEMS"), items, "ADDITEMS")
            case 0x91: try push(PickleNode(.list, items: try popMark("FROZENSET")))   // FROZENSET (as a list)
            case 0x7d: try push(PickleNode(.dict))                                    // EMPTY_DICT
            case 0x64: // DICT
                let kv = try popMark("DICT")
                let d = PickleNode(.dict)
                try setItems(d, kv, "DICT")
                try push(d)
            case 0x73: // SETITEM
                let v = try pop("SETITEM"), k = try pop("SETITEM")
                try setItems(try top("SETITEM"), [k, v], "SETITEM")
            case 0x75: // SETITEMS
                let kv = try popMark("SETITEMS")
                try setItems(try top("SETITEMS"), kv, "SETITEMS")

            case 0x63: // GLOBAL "module\nname\n"
                let module = try line("GLOBAL module"), name = try line("GLOBAL name")
                try push(try global(module, name))
            case 0x93: // STACK_GLOBAL
                let n = try pop("STACK_GLOBAL"), m = try pop("STACK_GLOBAL")
                guard case let .scalar(.string(module)) = m.kind, case let .scalar(.string(name)) = n.kind else {
                    throw invalid("STACK_GLOBAL needs two strings")
                }
                try push(try global(module, name))
            case 0x52: // REDUCE
                let args = try pop("REDUCE"), callable = try pop("REDUCE")
                try push(try construct(callable, args, isNewObj: false))
            case 0x81: // NEWOBJ
                let args = try pop("NEWOBJ"), cls = try pop("NEWOBJ")
                try push(try construct(cls, args, isNewObj: true))
            case 0x92: // NEWOBJ_EX
                let kwargs = try pop("NEWOBJ_EX"), args = try pop("NEWOBJ_EX"), cls = try pop("NEWOBJ_EX")
                try push(try construct(cls, args, isNewObj: true, kwargs: kwargs))
            case 0x62: // BUILD: state applies to the object below it; ignored for dicts (OrderedDict metadata)
                let state = try pop("BUILD")
                let target = try top("BUILD")
                switch target.kind {
                case .object: target.state = state; mutated.append(target)
                case .dict: break
                default: throw invalid("BUILD on a value that is not an object")
                }
            case 0x51: try push(PickleNode(.persistentID(try pop("BINPERSID"))))     // BINPERSID

            case 0x71: try memoPut(try u8("BINPUT"))                                   // BINPUT
            case 0x72: try memoPut(try u32("LONG_BINPUT"))                             // LONG_BINPUT
            case 0x94: try memoPut(memo.count)                                         // MEMOIZE
            case 0x68: try memoGet(try u8("BINGET"))                                   // BINGET
            case 0x6a: try memoGet(try u32("LONG_BINGET"))                             // LONG_BINGET

            default:
                pos = opPos
                throw FormatError.unsupported(file: file, what: "pickle opcode \(opcodeName(op)) at byte \(opPos)")
            }
        }
    }
}

/// Names of opcodes this reader refuses, for error messages.
func opcodeName(_ op: UInt8) -> String {
    let names: [UInt8: String] = [
        0x49: "INT", 0x4c: "LONG", 0x46: "FLOAT", 0x53: "STRING", 0x56: "UNICODE", 0x70: "PUT",
        0x67: "GET", 0x50: "PERSID", 0x69: "INST", 0x6f: "OBJ", 0x82: "EXT1", 0x83: "EXT2",
        0x84: "EXT4", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
    ]
    let hex = "0x" + String(op, radix: 16)
    if let n = names[op] { return "\(n) (\(hex))" }
    return hex
}
