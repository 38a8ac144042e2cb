import ArgumentParser
import ExitStatus
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
        let service = try FeatureService(model: model, tokenizer: tokenizer!, saes: attached,
                                     maxPromptChars: maxPromptChars, maxNewTokens: maxNewTokens)
        let router = Router()
        router.add(middleware: PostOnly(paths: ["/api/features", "/api/generate"]))
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: servePage)))
        }
        let openAPI = Data(openAPIDocument(service.limits, targets: attached.map {
            Steering.Target(hook: $0.hook.name, dSAE: $0.sae.config.dSAE) }, contextTokens: model.config.sequenceLen).utf8)
        router.get("/openapi.json") { _, _ in FeatureService.response(openAPI) }
        router.post("/api/features") { request, _ in
            FeatureService.response(try await service.handle(try await Self.body(request), generate: false))
        }
        router.post("/api/generate") { request, _ in
            FeatureService.response(try await service.handle(try await Self.body(request), generate: true))
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

extension ServeCommand {
    /// The request body, refused with 400 beyond `ServeRequest.Limits.maxBodyBytes`.
    static func body(_ request: Request) async throws -> Data {
        var request = request
        do {
            return Data(try await request.collectBody(upTo: ServeRequest.Limits.maxBodyBytes).readableBytesView)
        } catch let e as HTTPResponseError where e.status == .contentTooLarge {   // NIO's too-many-bytes
            throw FeatureService.bad("request body: larger than \(ServeRequest.Limits.maxBodyBytes) bytes")
        }
    }
}

/// The API's paths take POST only: any other method is 405 with Allow (not 404: the path exists).
struct PostOnly<Context: RequestContext>: RouterMiddleware {
    let paths: Set<String>
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.method != .post && paths.contains(request.uri.path) {
            return Response(status: .methodNotAllowed, headers: [.allow: "POST"])
        }
        return try await next(request, context)
    }
}

final class UncheckedResult: @unchecked Sendable { var error: Error? }

/// The runtime behind the page, one request at a time. Requests are decoded and checked by
/// `ServeRequest` (Runtime); anything it refuses is answered 400 with its message.
actor FeatureService {
    let runtime: SAERuntime
    nonisolated let limits: ServeRequest.Limits

    init(model: NanochatModel, tokenizer: Tokenizer, saes: [AttachedSAE], maxPromptChars: Int, maxNewTokens: Int) throws {
        runtime = SAERuntime(model: model, tokenizer: tokenizer)
        for s in saes { try runtime.attach(s) }
        limits = ServeRequest.Limits(maxPromptChars: maxPromptChars, maxNewTokens: maxNewTokens)
    }

    static func bad(_ message: String) -> HTTPError { HTTPError(.badRequest, message: message) }

    /// Answers one request body with the JSON of the reply.
    func handle(_ body: Data, generate: Bool) throws -> Data {
        let reply: [String: Any]
        do {
            reply = generate
                ? try self.generate(ServeRequest.generate(body, limits: limits, targets: runtime.targets))
                : try features(ServeRequest.features(body, limits: limits))
        } catch let e as RuntimeError {
            throw Self.bad(e.description)
        } catch let e as NanochatError {
            throw Self.bad(e.description)
        }
        return try JSONSerialization.data(withJSONObject: reply, options: [.sortedKeys])
    }

    static func response(_ json: Data) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: json)))
    }

    /// BOS + the prompt's tokens, refused beyond the model's context.
    func tokens(_ prompt: String) throws -> [Int] {
        let ids = [try runtime.tokenizer.bos] + runtime.tokenizer.encode(prompt)
        guard ids.count <= runtime.model.config.sequenceLen else {
            throw RuntimeError.badInput("\"prompt\": \(ids.count) tokens, more than the model's \(runtime.model.config.sequenceLen)")
        }
        return ids
    }

    /// Per token: its text, id and the top features of every attached SAE.
    func rows(_ ids: [Int]) -> [[String: Any]] {
        let byPosition = Dictionary(grouping: runtime.trace, by: \.position)
        return ids.indices.dropFirst().map { p in
            let saes = (byPosition[p] ?? []).sorted { $0.sae < $1.sae }.map { t -> [String: Any] in
                // A steer can overflow the activations downstream: ‖x − x̂‖ is then inf or NaN, which
                // JSON cannot hold, so it is null.
                ["sae": t.sae, "error_norm": t.errorNorm.isFinite ? Double(t.errorNorm) : NSNull(),
                 "features": t.features.map { [$0.0, Double($0.1)] as [Any] }]
            }
            return ["token": runtime.tokenizer.decode([ids[p]]), "id": ids[p], "saes": saes]
        }
    }

    func features(_ r: ServeRequest.Features) throws -> [String: Any] {
        let ids = try tokens(r.prompt)
        runtime.interventions = []
        runtime.tracking = true
        runtime.topN = r.top
        _ = try runtime.forward(tokens: ids)
        return ["tokens": rows(ids), "saes": runtime.saes.map { ["hook": $0.hook.name, "d_sae": $0.sae.config.dSAE, "path": $0.path] }]
    }

    func generate(_ r: ServeRequest.Generate) throws -> [String: Any] {
        let ids = try tokens(r.prompt)
        runtime.interventions = []
        for s in r.steer { try runtime.steer(s) }
        runtime.tracking = true
        let out = try runtime.generate(prompt: ids, maxTokens: r.maxTokens,
                                       sampling: Sampling(temperature: r.temperature, seed: r.seed))
        let all = ids + out
        return ["tokens": out, "text": runtime.tokenizer.decode(out), "rows": rows(Array(all.dropLast()))]
    }
}
