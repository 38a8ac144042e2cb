import Foundation
import Testing
@testable import Formats
import TestSupport

private func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = s.startIndex
    while i < s.endIndex {
        let j = s.index(i, offsetBy: 2)
        out.append(UInt8(s[i..<j], radix: 16)!)
        i = j
    }
    return out
}

private func pickleError(_ bytes: [UInt8], allowed: Set<String> = [], limits: PickleLimits = PickleLimits()) -> FormatError? {
    formatError { _ = try unpickle(bytes, allowedGlobals: allowed, file: "t.pkl", limits: limits) }
}

@Suite struct PickleTests {
    // pickle.dumps(obj, protocol=p) from CPython 3.11 for
    // obj = {'a': [1, -2, 3.5, None, True, False, b'xy', (1, 2)], 'big': 2**40, 'neg': -300, 'u': 'é€😀',
    //        'nested': {'k': [[], ()]}, 7: 'int key', b'b': 'bytes key',
    //        'long': [-2**63, 2**63-1, 255, 65535, 65536, -1]}
    static let protocol4 = "800495b5000000000000007d94288c0161945d94284b014afeffffff47400c0000000000004e888943027879944b014b028694658c03626967948a060000000000018c036e6567944ad4feffff8c0175948c09c3a9e282acf09f9880948c066e6573746564947d948c016b945d94285d942965734b078c07696e74206b657994430162948c096279746573206b6579948c046c6f6e67945d94288a0800000000000000808a08ffffffffffffff7f4bff4dffff4a000001004affffffff65752e"
    static let protocol2 = "80027d71002858010000006171015d7102284b014afeffffff47400c0000000000004e8889635f636f646563730a656e636f64650a710358020000007879710458060000006c6174696e3171058671065271074b014b0286710865580300000062696771098a0600000000000158030000006e6567710a4ad4feffff580100000075710b5809000000c3a9e282acf09f9880710c58060000006e6573746564710d7d710e58010000006b710f5d7110285d71112965734b075807000000696e74206b6579711268035801000000627113680586711452711558090000006279746573206b6579711658040000006c6f6e6771175d7118288a0800000000000000808a08ffffffffffffff7f4bff4dffff4a000001004affffffff65752e"

    static func expected(bytesValue: PickleValue) -> PickleValue {
        .dict([
            .init(key: .string("a"), value: .list([.int(1), .int(-2), .float(3.5), .none, .bool(true), .bool(false),
                                                   bytesValue, .tuple([.int(1), .int(2)])])),
            .init(key: .string("big"), value: .int(1 << 40)),
            .init(key: .string("neg"), value: .int(-300)),
            .init(key: .string("u"), value: .string("é€😀")),
            .init(key: .string("nested"), value: .dict([.init(key: .string("k"), value: .list([.list([]), .tuple([])]))])),
            .init(key: .int(7), value: .string("int key")),
            .init(key: bytesValue == .bytes([0x78, 0x79]) ? .bytes([0x62]) : bytesValue.latin1Encoded("b"),
                  value: .string("bytes key")),
            .init(key: .string("long"), value: .list([.int(Int.min), .int(Int.max), .int(255), .int(65535), .int(65536), .int(-1)])),
        ])
    }

    @Test func decodesCPythonProtocol4() throws {
        let v = try unpickle(hex(Self.protocol4), allowedGlobals: [], file: "t.pkl")
        #expect(v == Self.expected(bytesValue: .bytes([0x78, 0x79])))
    }

    @Test func decodesCPythonProtocol2() throws {
        // Protocol 2 has no bytes opcode: CPython writes _codecs.encode('xy', 'latin1'), which must be allowed.
        #expect(pickleError(hex(Self.protocol2))?.description == "t.pkl: pickle names a global that is not allowed: _codecs.encode")
        let v = try unpickle(hex(Self.protocol2), allowedGlobals: ["_codecs.encode"], file: "t.pkl")
        #expect(v == Self.expected(bytesValue: PickleValue.bytes([]).latin1Encoded("xy")))
    }

    @Test func sharedMemoReferencesSeeTheFilledContainer() throws {
        // s = [1, 2]; pickle.dumps([s, s], protocol=2): the second element is a BINGET of the first.
        let v = try unpickle(hex("80025d7100285d7101284b014b02656801652e"), allowedGlobals: [], file: "t.pkl")
        #expect(v == .list([.list([.int(1), .int(2)]), .list([.int(1), .int(2)])]))
    }

    @Test func readsTiktokenEncoding() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: TestPaths.d4Tokenizer)))
        #expect(pickleError(bytes)?.kind == "forbiddenGlobal")
        let v = try unpickle(bytes, allowedGlobals: ["tiktoken.core.Encoding"], file: "tokenizer.pkl")
        guard case let .object(obj) = v, let state = obj.state else { Issue.record("not an object: \(v)"); return }
        #expect(obj.callable == .global(module: "tiktoken.core", name: "Encoding"))
        #expect(obj.isNewObj)
        #expect(obj.args.isEmpty)
        #expect(state["name"] == .string("rustbpe"))
        #expect(state["pat_str"]?.stringValue?.hasPrefix("'(?i:[sdmt]|ll|ve|re)|") == true)
        guard case let .dict(ranks)? = state["mergeable_ranks"], case let .dict(special)? = state["special_tokens"] else {
            Issue.record("state lacks mergeable_ranks / special_tokens"); return
        }
        #expect(ranks.count == 4087)
        #expect(ranks[0] == PickleDictEntry(key: .bytes([0]), value: .int(0)))
        #expect(ranks[300] == PickleDictEntry(key: .bytes(Array(" :".utf8)), value: .int(300)))
        #expect(ranks[4086] == PickleDictEntry(key: .bytes(Array(" safe".utf8)), value: .int(4086)))
        #expect(special.count == 9)
        #expect(state["special_tokens"]?["<|bos|>"] == .int(4087))
        #expect(state["special_tokens"]?["<|output_end|>"] == .int(4095))
    }

    @Test func truncatedInputIsAnErrorNeverACrash() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: TestPaths.d4Tokenizer)))
        let allowed: Set<String> = ["tiktoken.core.Encoding"]
        var cuts = Array(0..<600)
        cuts += Array(stride(from: 600, to: bytes.count, by: 397)) + [bytes.count - 1]
        for cut in cuts {
            let e = formatError { _ = try unpickle(Array(bytes.prefix(cut)), allowedGlobals: allowed, file: "t.pkl") }
            #expect(e != nil, "prefix of \(cut) bytes was accepted")
        }
        for p in [Self.protocol2, Self.protocol4] {
            let full = hex(p)
            for cut in 0..<full.count {
                #expect(pickleError(Array(full.prefix(cut)), allowed: ["_codecs.encode"]) != nil)
            }
        }
    }

    @Test func refusesForbiddenGlobals() {
        // pickle.dumps(os.system, protocol=2) → GLOBAL 'posix system'
        #expect(pickleError(hex("800263706f7369780a73797374656d0a71002e"))?.description
                == "t.pkl: pickle names a global that is not allowed: posix.system")
        // pickle.dumps(eval, protocol=4) → STACK_GLOBAL builtins eval
        #expect(pickleError(hex("80049515000000000000008c086275696c74696e73948c046576616c9493942e"))?.description
                == "t.pkl: pickle names a global that is not allowed: builtins.eval")
        // GLOBAL os.system followed by REDUCE: refused at the GLOBAL, before anything is built.
        let osSystem: [UInt8] = [0x80, 0x02] + Array("cos\nsystem\n".utf8) + [0x58, 2, 0, 0, 0] + Array("ls".utf8) + [0x85, 0x52, 0x2e]
        #expect(pickleError(osSystem)?.description == "t.pkl: pickle names a global that is not allowed: os.system")
        // An allowed global does not make a similarly named one allowed.
        #expect(pickleError(osSystem, allowed: ["os.systemx", "os"])?.kind == "forbiddenGlobal")
    }

    @Test func refusesMalformedPickles() {
        func kind(_ b: [UInt8]) -> String? { pickleError(b)?.kind }
        #expect(kind([]) == "truncated")
        #expect(kind([0x80, 0x02]) == "truncated")                       // no STOP
        #expect(kind([0x80, 0x02, 0x2e]) == "invalid")                   // STOP on an empty stack
        #expect(kind([0x80, 0x02, 0x4e, 0x4e, 0x2e]) == "invalid")       // two values left
        #expect(kind([0x80, 0x06, 0x4e, 0x2e]) == "unsupported")         // protocol 6
        #expect(kind([0x80, 0x02, 0x30, 0x2e]) == "invalid")             // POP on empty stack
        #expect(kind([0x80, 0x02, 0x86, 0x2e]) == "invalid")             // TUPLE2 underflow
        #expect(kind([0x80, 0x02, 0x4e, 0x28, 0x30, 0x2e]) == "invalid") // POP below a MARK
        #expect(kind([0x80, 0x02, 0x74, 0x2e]) == "invalid")             // TUPLE without MARK
        #expect(kind([0x80, 0x02, 0x68, 0x05, 0x2e]) == "invalid")       // BINGET of an unset memo slot
        #expect(kind([0x80, 0x02, 0x6a, 0xff, 0xff, 0xff, 0xff, 0x2e]) == "invalid")
        #expect(kind([0x80, 0x02, 0x71, 0x00, 0x2e]) == "invalid")       // BINPUT on empty stack
        #expect(kind([0x80, 0x02, 0x58, 0xff, 0xff, 0xff, 0x7f]) == "truncated")  // huge string length
        #expect(kind([0x80, 0x04, 0x8d] + le64Bytes(UInt64.max) + [0x2e]) == "invalid")
        #expect(kind([0x80, 0x02, 0x58, 0x01, 0, 0, 0, 0xff, 0x2e]) == "invalid")  // not UTF-8
        #expect(kind([0x80, 0x02, 0x8a, 9] + [UInt8](repeating: 1, count: 9) + [0x2e]) == "unsupported")
        #expect(kind([0x80, 0x02, 0x4b, 0x01, 0x4b, 0x02, 0x73, 0x2e]) == "invalid")  // SETITEM on an int
        #expect(kind([0x80, 0x02, 0x7d, 0x5d, 0x4b, 0x01, 0x73, 0x2e]) == "invalid")  // unhashable key
        #expect(kind([0x80, 0x02, 0x4e, 0x4e, 0x62, 0x2e]) == "invalid")  // BUILD on None
        #expect(kind([0x80, 0x02, 0x63] + Array("os".utf8)) == "truncated")  // GLOBAL cut before newline
        // Unknown / refused opcodes are named.
        #expect(pickleError([0x80, 0x02, 0x49] + Array("1\n".utf8) + [0x2e])?.description
                == "t.pkl: unsupported: pickle opcode INT (0x49) at byte 2")
        #expect(pickleError([0x80, 0x02, 0x82, 0x01, 0x2e])?.description.contains("EXT1") == true)
        #expect(pickleError([0x80, 0x02, 0xff, 0x2e])?.description.contains("0xff") == true)
    }

    @Test func boundsNestingCyclesAndExpansion() {
        // 10,000 nested lists: push them all, then APPEND each into the one below.
        let deep: [UInt8] = [0x80, 0x02] + [UInt8](repeating: 0x5d, count: 10_000) + [UInt8](repeating: 0x61, count: 9_999) + [0x2e]
        #expect(pickleError(deep)?.kind == "invalid")
        // A list that contains itself: EMPTY_LIST, DUP, APPEND.
        #expect(pickleError([0x80, 0x02, 0x5d, 0x32, 0x61, 0x2e])?.kind == "invalid")
        // Exponential sharing: x = [x_prev, x_prev] 40 times → 2^40 nodes if expanded naively.
        var b: [UInt8] = [0x80, 0x02, 0x5d]
        for _ in 0..<40 { b += [0x71, 0x00, 0x68, 0x00, 0x68, 0x00, 0x86] }
        b += [0x2e]
        #expect(pickleError(b)?.kind == "invalid")
        var small = PickleLimits(); small.maxStack = 8
        #expect(pickleError([0x80, 0x02] + [UInt8](repeating: 0x4e, count: 20) + [0x2e], limits: small)?.kind == "invalid")
    }
}

private extension PickleValue {
    /// What the protocol-2 pickle holds for bytes: `_codecs.encode(text, 'latin1')`.
    func latin1Encoded(_ text: String) -> PickleValue {
        .object(PickleObject(callable: .global(module: "_codecs", name: "encode"),
                             args: [.string(text), .string("latin1")], isNewObj: false, kwargs: nil,
                             state: nil, listItems: [], dictItems: []))
    }
}
