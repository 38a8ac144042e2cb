import Foundation
import TestSupport
import Testing

/// `sae-run serve` as a person uses it: the JSON endpoints over HTTP on 127.0.0.1, and the page in
/// headless Chromium (Debian's `chromium`, which launch/setup.sh installs): load it with a prompt,
/// let it fetch the features and render, read the coloured tokens back from the DOM.
@Suite(.serialized) struct ServeTests {
    static let port = 20000 + Int(getpid() % 20000)
    static var base: String { "http://127.0.0.1:\(port)" }

    func curl(_ args: String) throws -> ProcessResult { try runShell("exec curl -s --max-time 60 \(args)") }

    @Test func theAPIAndThePageWork() throws {
        let exe = shellQuote(TestPaths.products.appendingPathComponent("sae-run").path)
        let model = shellQuote(SAERuntimeTests.d4.appendingPathComponent("base_checkpoints/d4").path)
        let sae = try SAERuntimeTests.saeDirectory()
        let later = try SAERuntimeTests.saeDirectory(hook: "blocks.3.hook_resid_post")
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/bin/bash")
        server.arguments = ["-c", "exec \(exe) serve --model \(model) --sae \(shellQuote(sae)) --sae \(shellQuote(later)) --port \(Self.port) --max-prompt-chars 200 --max-new-tokens 64"]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { server.terminate(); server.waitUntilExit() }
        var up = false
        for _ in 0..<300 where !up {
            Thread.sleep(forTimeInterval: 0.1)
            up = (try? curl("-o /dev/null -w '%{http_code}' \(Self.base)/").stdout) == "200"
        }
        try #require(up, "the server did not come up on port \(Self.port)")

        // JSON endpoints.
        let features = try curl("-X POST -d '{\"prompt\": \"The Python interpreter\", \"top\": 3}' \(Self.base)/api/features")
        let reply = try JSONSerialization.jsonObject(with: Data(features.stdout.utf8)) as? [String: Any]
        let tokens = reply?["tokens"] as? [[String: Any]] ?? []
        #expect(tokens.map { $0["token"] as? String } == ["The", " Python", " interpreter"], "\(features.stdout)")
        let gen = try curl("-X POST -d '{\"prompt\": \"hi\", \"max_tokens\": 4, \"steer\": [{\"hook\": \"blocks.2.hook_resid_post\", \"feature\": 5, \"value\": 30}]}' \(Self.base)/api/generate")
        #expect(((try? JSONSerialization.jsonObject(with: Data(gen.stdout.utf8))) as? [String: Any])?["tokens"] as? [Int] != nil, "\(gen.stdout)")
        // Malformed or oversized requests get a 400 with a message; no file is served from a path.
        for (body, word) in [("nope", "JSON object"), ("{\"prompt\": \"\(String(repeating: "x", count: 300))\"}", "longer than 200"),
                             ("{\"prompt\": \"hi\", \"max_tokens\": 100000}", "max_tokens"),
                             ("{\"prompt\": \"hi\", \"steer\": [{\"hook\": \"blocks.2.hook_resid_post\", \"feature\": 99999, \"value\": 1}]}", "d_sae")] {
            let r = try curl("-w '\\n%{http_code}' -X POST --data-binary \(shellQuote(body)) \(Self.base)/api/generate")
            #expect(r.stdout.hasSuffix("\n400") && r.stdout.contains(word), "\(body): \(r.stdout)")
        }
        #expect(try curl("-o /dev/null -w '%{http_code}' --path-as-is \(Self.base)/../../etc/passwd").stdout == "404")

        // Every hostile body of HostileInputTests (negative and huge indices, non-finite values, deep
        // JSON, wrong types, unknown keys, oversized bodies) is answered 400 with a message, and the
        // server keeps serving: a normal request after them still works.
        let bodies = try TestPaths.temporaryDirectory("hostile")
        for (i, (body, word)) in HostileInputTests.hostile.enumerated() {
            let file = bodies.appendingPathComponent("\(i).json")
            try Data(body.utf8).write(to: file)
            let r = try curl("-w '\\n%{http_code}' -X POST --data-binary @\(shellQuote(file.path)) \(Self.base)/api/generate")
            let message = (((try? JSONSerialization.jsonObject(with: Data(r.stdout.split(separator: "\n").dropLast().joined().utf8)))
                as? [String: Any])?["error"] as? [String: Any])?["message"] as? String
            #expect(r.stdout.hasSuffix("\n400") && message?.contains(word) == true, "\(body.prefix(100)): \(r.stdout.prefix(300))")
        }
        for body in ["\u{FF}\u{FE}{]", "{\"prompt\": \"hi\", \"top\": 1e999}"] {
            let r = try curl("-w '\\n%{http_code}' -X POST --data-binary \(shellQuote(body)) \(Self.base)/api/features")
            #expect(r.stdout.hasSuffix("\n400"), "\(body): \(r.stdout)")
        }
        // A huge finite steer overflows the later hook's activations: still 200, error_norm null there.
        let overflow = try curl("-X POST -d '{\"prompt\": \"hi\", \"max_tokens\": 3, \"steer\": [{\"hook\": \"blocks.2.hook_resid_post\", \"feature\": 5, \"value\": 3e38}]}' \(Self.base)/api/generate")
        let overflowRows = ((try? JSONSerialization.jsonObject(with: Data(overflow.stdout.utf8))) as? [String: Any])?["rows"] as? [[String: Any]]
        #expect(overflowRows?.count == 3 && overflowRows!.contains { ($0["saes"] as? [[String: Any]])?.contains { $0["error_norm"] is NSNull } == true },
                "\(overflow.stdout.prefix(400))")
        let after = try curl("-X POST -d '{\"prompt\": \"The Python interpreter\", \"top\": 3}' \(Self.base)/api/features")
        #expect(after.stdout == features.stdout, "the server answers as before after the hostile requests")

        // The OpenAPI description lists the two endpoints and the bounds this server was given.
        let spec = try JSONSerialization.jsonObject(with: Data(try curl("\(Self.base)/openapi.json").stdout.utf8)) as? [String: Any]
        #expect(((spec?["paths"] as? [String: Any])?.keys.sorted()) == ["/api/features", "/api/generate"])
        #expect(try curl("\(Self.base)/openapi.json").stdout.contains("\"maximum\": 64, \"default\": 32"))

        // The page, rendered by a real browser.
        let chromium = try runShell("command -v chromium")
        try #require(chromium.status == 0, "headless Chromium is needed for this test: apt-get install chromium (launch/setup.sh installs it)")
        let dom = try runShell("exec timeout 120 chromium --headless --no-sandbox --disable-gpu --virtual-time-budget=20000 --dump-dom \(shellQuote(Self.base + "/?prompt=The%20Python%20interpreter&feature=5"))").stdout
        let spans = try Regex(#"<span class="tok[^"]*" data-activation="([0-9.]+)"[^>]*>([^<]*)</span>"#)
        let rendered = dom.matches(of: spans).map { (String($0.output[2].substring ?? ""), Double($0.output[1].substring ?? "") ?? -1) }
        #expect(rendered.map(\.0) == ["The", " Python", " interpreter"], "tokens rendered: \(rendered), DOM: \(dom.prefix(2000))")
        #expect(rendered.allSatisfy { $0.1 >= 0 })
    }
}
