import Foundation

/// The JSON bodies `sae-run serve` accepts, decoded and checked in one place: the HTTP handlers,
/// the fuzz target (Tests/Fuzz) and the OpenAPI description (`openAPIDocument`) all follow these
/// types. Decoding is strict (`JSONFields`): a body larger than `Limits.maxBodyBytes` or nested
/// deeper than `Limits.maxDepth`, an unknown key, a wrong type, a number out of its range, each is
/// refused with a `RuntimeError` naming the key; interventions go through `Steering.check`.
public enum ServeRequest {
    public struct Limits: Sendable {
        public var maxPromptChars = 4000
        public var maxNewTokens = 256
        /// Most features listed per token and SAE.
        public var maxTop = 50
        /// Most interventions in one request.
        public var maxInterventions = 64
        /// max_tokens when a request does not say: 32, or fewer if the server allows fewer.
        public var defaultNewTokens: Int { min(32, maxNewTokens) }
        public static let maxBodyBytes = 1 << 16
        public static let maxDepth = 8
        public init(maxPromptChars: Int = 4000, maxNewTokens: Int = 256) {
            self.maxPromptChars = maxPromptChars; self.maxNewTokens = maxNewTokens
        }
    }

    /// POST /api/features: `{"prompt": str, "top"?: 1...maxTop (10)}`.
    public struct Features: Sendable, Equatable {
        public var prompt: String
        public var top: Int
    }

    /// POST /api/generate: `{"prompt": str, "max_tokens"?: 1...maxNewTokens (32 at most), "temperature"?:
    /// 0...10 (0), "seed"?: 0...2⁶⁴−1 (42), "steer"?: [{"hook", "feature", "value", "mode"?, "scope"?}]}`.
    public struct Generate: Sendable, Equatable {
        public var prompt: String
        public var maxTokens: Int
        public var temperature: Float
        public var seed: UInt64
        public var steer: [Steering]
    }

    public static func features(_ body: Data, limits: Limits) throws -> Features {
        let r = try JSONFields(body: body, keys: ["prompt", "top"])
        let top = try r.int("top") ?? 10
        guard (1...limits.maxTop).contains(top) else { throw bad("\"top\": expected 1-\(limits.maxTop), got \(top)") }
        return Features(prompt: try prompt(r, limits), top: top)
    }

    public static func generate(_ body: Data, limits: Limits, targets: [Steering.Target]) throws -> Generate {
        let r = try JSONFields(body: body, keys: ["prompt", "max_tokens", "temperature", "seed", "steer"])
        let n = try r.int("max_tokens") ?? limits.defaultNewTokens
        guard (1...limits.maxNewTokens).contains(n) else { throw bad("\"max_tokens\": expected 1-\(limits.maxNewTokens), got \(n)") }
        let t = try r.number("temperature") ?? 0
        guard t >= 0 && t <= 10 else { throw bad("\"temperature\": expected 0-10, got \(t)") }
        let steer = try r.objects("steer", keys: ["hook", "feature", "value", "mode", "scope"]) ?? []
        guard steer.count <= limits.maxInterventions else {
            throw bad("\"steer\": at most \(limits.maxInterventions) interventions, got \(steer.count)")
        }
        let interventions = try steer.map { s -> Steering in
            let modeName = try s.string("mode") ?? "add", scopeName = try s.string("scope") ?? "all"
            guard let mode = Steering.Mode(rawValue: modeName) else {
                throw bad("\(s.path)\"mode\": expected add, clamp or scale, got \"\(modeName)\"")
            }
            guard let scope = Steering.Scope(rawValue: scopeName) else {
                throw bad("\(s.path)\"scope\": expected prompt, gen or all, got \"\(scopeName)\"")
            }
            // Any JSON number: beyond float32's range it saturates at ±3.4e38 (already past any
            // activation's scale), so the schema needs no bound that a decimal parse could blur.
            let value = Float(max(-Double(Float.greatestFiniteMagnitude), min(Double(Float.greatestFiniteMagnitude),
                                                                              try s.required(s.number, "value"))))
            let steering = Steering(hook: try s.required(s.string, "hook"), feature: try s.required(s.int, "feature"),
                                    value: value, mode: mode, scope: scope)
            do { try steering.check(against: targets) } catch { throw bad("\(s.path.dropLast()): \(error)") }
            return steering
        }
        return Generate(prompt: try prompt(r, limits), maxTokens: n, temperature: Float(t),
                        seed: try r.uint64("seed") ?? 42, steer: interventions)
    }

    static func bad(_ message: String) -> RuntimeError { .badInput(message) }

    static func prompt(_ r: JSONFields, _ limits: Limits) throws -> String {
        let text = try r.required(r.string, "prompt")
        guard !text.isEmpty else { throw bad("\"prompt\": expected a non-empty string") }
        guard text.unicodeScalars.count <= limits.maxPromptChars else {   // code points, as JSON Schema's maxLength counts
            throw bad("\"prompt\": longer than \(limits.maxPromptChars) characters (Unicode code points)")
        }
        return text
    }

    /// The deepest nesting of arrays and objects in a JSON text (brackets inside strings skipped),
    /// counted before any parser recurses into it.
    static func nestingDepth(_ body: Data) -> Int {
        var depth = 0, deepest = 0, inString = false, escaped = false
        for b in body {
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"): depth += 1; deepest = max(deepest, depth)
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return deepest
    }
}

/// One JSON object of a request, read strictly: only the named keys, each of the JSON type asked
/// for (JSON true is not the integer 1, 5.5 is not an integer), errors naming the key by its path.
struct JSONFields {
    let object: [String: Any]
    /// Where this object sits, as a prefix of key names in messages: "" or "\"steer\"[2].".
    let path: String

    /// Parses a request body: at most `maxBodyBytes`, nested at most `maxDepth` deep, one JSON object.
    init(body: Data, keys: Set<String>) throws {
        guard body.count <= ServeRequest.Limits.maxBodyBytes else {
            throw ServeRequest.bad("request body: larger than \(ServeRequest.Limits.maxBodyBytes) bytes")
        }
        guard ServeRequest.nestingDepth(body) <= ServeRequest.Limits.maxDepth else {
            throw ServeRequest.bad("request body: JSON nested deeper than \(ServeRequest.Limits.maxDepth) levels")
        }
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) } catch {
            let why = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error.localizedDescription)"
            throw ServeRequest.bad("request body: not valid JSON (\(why)); expected a JSON object")
        }
        guard let object = json as? [String: Any] else { throw ServeRequest.bad("request body: expected a JSON object") }
        try self.init(object, path: "", keys: keys)
    }

    init(_ object: [String: Any], path: String, keys: Set<String>) throws {
        if let unknown = object.keys.sorted().first(where: { !keys.contains($0) }) {
            throw ServeRequest.bad("\(path)\"\(unknown)\": unknown key (expected \(keys.sorted().joined(separator: ", ")))")
        }
        self.object = object
        self.path = path
    }

    func bad(_ key: String, _ expected: String) -> RuntimeError {
        ServeRequest.bad("\(path)\"\(key)\": expected \(expected)\(object[key] is NSNull ? ", got null" : "")")
    }

    /// A key that must be present.
    func required<T>(_ read: (String) throws -> T?, _ key: String) throws -> T {
        guard let v = try read(key) else { throw ServeRequest.bad("\(path)\"\(key)\": required") }
        return v
    }

    /// JSON numbers arrive as NSNumber; booleans too, with objCType "c".
    private func numeric(_ key: String, as expected: String) throws -> NSNumber? {
        guard let v = object[key] else { return nil }
        guard let n = v as? NSNumber, String(cString: n.objCType) != "c" else { throw bad(key, expected) }
        return n
    }

    func string(_ key: String) throws -> String? {
        guard let v = object[key] else { return nil }
        guard let s = v as? String else { throw bad(key, "a string") }
        return s
    }

    func int(_ key: String) throws -> Int? {
        guard let n = try numeric(key, as: "an integer") else { return nil }
        guard !(n is NSDecimalNumber), "iqslQ".contains(String(cString: n.objCType)), let i = n as? Int else {
            throw bad(key, "an integer in \(Int.min)...\(Int.max), got \(n)")
        }
        return i
    }

    func uint64(_ key: String) throws -> UInt64? {
        guard let n = try numeric(key, as: "an integer") else { return nil }
        guard !(n is NSDecimalNumber), "iqslQ".contains(String(cString: n.objCType)), let u = n as? UInt64 else {
            throw bad(key, "an integer in 0...\(UInt64.max), got \(n)")
        }
        return u
    }

    func number(_ key: String) throws -> Double? {
        try numeric(key, as: "a number")?.doubleValue
    }

    /// An array of objects with the given keys.
    func objects(_ key: String, keys: Set<String>) throws -> [JSONFields]? {
        guard let v = object[key] else { return nil }
        guard let array = v as? [Any] else { throw bad(key, "an array") }
        return try array.enumerated().map { i, element in
            let at = "\(path)\"\(key)\"[\(i)]"
            guard let o = element as? [String: Any] else { throw ServeRequest.bad("\(at): expected an object") }
            return try JSONFields(o, path: at + ".", keys: keys)
        }
    }
}
