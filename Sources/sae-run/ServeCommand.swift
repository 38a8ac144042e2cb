import ArgumentParser
import Foundation
import Hummingbird
import Nanochat
import Runtime

/// `sae-run serve --port P`: a local web page where a person types a prompt, sees each token
/// coloured by a chosen feature's activation (top features on hover) and steers generation with
/// sliders; JSON endpoints behind it. Binds to 127.0.0.1 unless --host says otherwise, serves only
/// its own page (no file paths from requests), bounds prompt length and token counts, and answers
/// a malformed request with 400 and a message.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "A local web page for reading and steering SAE features.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .customLong("sae"), help: "SAE directory to attach (repeatable).")
    var saes: [String] = []
    @Option(help: "Port to listen on.") var port = 8080
    @Option(help: "Address to bind (default: this machine only).") var host = "127.0.0.1"
    @Option(help: "Longest prompt accepted, in characters.") var maxPromptChars = 4000
    @Option(help: "Most tokens one request may generate.") var maxNewTokens = 256

    func validate() throws {
        if !(1...65535).contains(port) { throw BadInput("--port: expected 1-65535, got \(port)") }
        if maxPromptChars < 1 || maxNewTokens < 1 { throw BadInput("--max-prompt-chars and --max-new-tokens must be positive") }
    }

    func run() throws {
        let (model, _, tokenizer) = try modelOptions.load(needTokenizer: true)
        let attached = try saes.map { try AttachedSAE(directory: $0, model: model) }
        if attached.isEmpty { throw BadInput("--sae: serve needs at least one SAE to show") }
        let service = FeatureService(model: model, tokenizer: tokenizer!, saes: attached,
                                     maxPromptChars: maxPromptChars, maxNewTokens: maxNewTokens)
        let router = Router()
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: servePage)))
        }
        router.post("/api/features") { request, _ in
            var request = request
            let body = Data(try await request.collectBody(upTo: 1 << 16).readableBytesView)
            return FeatureService.response(try await service.handle(body, generate: false))
        }
        router.post("/api/generate") { request, _ in
            var request = request
            let body = Data(try await request.collectBody(upTo: 1 << 16).readableBytesView)
            return FeatureService.response(try await service.handle(body, generate: true))
        }
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port)))
        FileHandle.standardError.write(Data("sae-run serve: http://\(host):\(port)/\n".utf8))
        let done = DispatchSemaphore(value: 0)
        let failure = UncheckedResult()
        Task.detached {
            do { try await app.runService() } catch { failure.error = error }
            done.signal()
        }
        done.wait()
        if let e = failure.error { throw RunFailure("serve: \(e)") }
    }
}

final class UncheckedResult: @unchecked Sendable { var error: Error? }

/// The runtime behind the page, one request at a time.
actor FeatureService {
    let runtime: SAERuntime
    let maxPromptChars: Int, maxNewTokens: Int

    init(model: NanochatModel, tokenizer: Tokenizer, saes: [AttachedSAE], maxPromptChars: Int, maxNewTokens: Int) {
        runtime = SAERuntime(model: model, tokenizer: tokenizer)
        for s in saes { try! runtime.attach(s) }
        self.maxPromptChars = maxPromptChars
        self.maxNewTokens = maxNewTokens
    }

    static func bad(_ message: String) -> HTTPError { HTTPError(.badRequest, message: message) }

    /// Answers one request body (a JSON object, at most 64 KiB) with the JSON of the reply.
    func handle(_ body: Data, generate: Bool) throws -> Data {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw Self.bad("expected a JSON object body")
        }
        let reply = generate ? try self.generate(object) : try features(object)
        return try JSONSerialization.data(withJSONObject: reply, options: [.sortedKeys])
    }

    static func response(_ json: Data) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: json)))
    }

    func prompt(_ body: [String: Any]) throws -> [Int] {
        guard let text = body["prompt"] as? String, !text.isEmpty else { throw Self.bad("\"prompt\": expected a non-empty string") }
        guard text.count <= maxPromptChars else { throw Self.bad("\"prompt\": longer than \(maxPromptChars) characters") }
        let ids = [try runtime.tokenizer.bos] + runtime.tokenizer.encode(text)
        guard ids.count <= runtime.model.config.sequenceLen else {
            throw Self.bad("\"prompt\": \(ids.count) tokens, more than the model's \(runtime.model.config.sequenceLen)")
        }
        return ids
    }

    /// Per token: its text, id and the top features of every attached SAE.
    func rows(_ ids: [Int]) -> [[String: Any]] {
        let byPosition = Dictionary(grouping: runtime.trace, by: \.position)
        return ids.indices.dropFirst().map { p in
            let saes = (byPosition[p] ?? []).sorted { $0.sae < $1.sae }.map { t -> [String: Any] in
                ["sae": t.sae, "error_norm": Double(t.errorNorm), "features": t.features.map { [$0.0, Double($0.1)] as [Any] }]
            }
            return ["token": runtime.tokenizer.decode([ids[p]]), "id": ids[p], "saes": saes]
        }
    }

    func features(_ body: [String: Any]) throws -> [String: Any] {
        let ids = try prompt(body)
        runtime.interventions = []
        runtime.tracking = true
        runtime.topN = min(max((body["top"] as? Int) ?? 10, 1), 50)
        _ = try runtime.forward(tokens: ids)
        return ["tokens": rows(ids), "saes": runtime.saes.map { ["hook": $0.hook.name, "d_sae": $0.sae.config.dSAE, "path": $0.path] }]
    }

    func generate(_ body: [String: Any]) throws -> [String: Any] {
        let ids = try prompt(body)
        let n = (body["max_tokens"] as? Int) ?? 32
        guard (1...maxNewTokens).contains(n) else { throw Self.bad("\"max_tokens\": expected 1-\(maxNewTokens), got \(n)") }
        let temperature = (body["temperature"] as? Double) ?? 0
        guard temperature >= 0 && temperature <= 10 else { throw Self.bad("\"temperature\": expected 0-10") }
        runtime.interventions = []
        for s in (body["steer"] as? [[String: Any]]) ?? [] {
            guard let hook = s["hook"] as? String, let f = s["feature"] as? Int, let v = (s["value"] as? NSNumber)?.floatValue else {
                throw Self.bad("\"steer\": expected objects {hook, feature, value[, mode, scope]}")
            }
            let mode = Steering.Mode(rawValue: (s["mode"] as? String) ?? "add")
            let scope = Steering.Scope(rawValue: (s["scope"] as? String) ?? "all")
            guard let mode, let scope else { throw Self.bad("\"steer\": mode add|clamp|scale, scope prompt|gen|all") }
            do { try runtime.steer(Steering(hook: hook, feature: f, value: v, mode: mode, scope: scope)) }
            catch { throw Self.bad("\(error)") }
        }
        runtime.tracking = true
        let out = try runtime.generate(prompt: ids, maxTokens: n,
                                       sampling: Sampling(temperature: Float(temperature), seed: UInt64((body["seed"] as? Int) ?? 42)))
        let all = ids + out
        return ["tokens": out, "text": runtime.tokenizer.decode(out), "rows": rows(Array(all.dropLast()))]
    }
}
