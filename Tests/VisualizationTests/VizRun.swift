import Foundation
import TestSupport

/// One `sae-viz` run on the small d4 TopK SAE over ~3k validation tokens, shared by the suites
/// that read its output: pages for 300 features (so the Neuronpedia export has batches of 128,
/// 128 and 44) and the Neuronpedia files.
enum VizRun {
    static let features = 300
    static let output: (html: String, neuronpedia: String, stdout: String) = {
        let dir = try! TestPaths.temporaryDirectory("viz").path
        let html = dir + "/html", np = dir + "/np"
        let r = try! runShell("exec \(D4Fixture.exe("sae-viz")) --sae \(shellQuote(D4Fixture.topKSAE)) --model \(shellQuote(D4Fixture.model)) --data \(shellQuote(D4Fixture.data)) --tokens 3072 --context 128 --features \(features) --out \(shellQuote(html)) --neuronpedia \(shellQuote(np))")
        precondition(r.status == 0, "sae-viz failed: \(r.stderr)")
        return (html, np, r.stdout)
    }()

    /// The DOM of `url` after headless Chromium ran its scripts (Debian's `chromium`, which
    /// launch/setup.sh installs; the tests that need it fail with that hint when it is missing).
    static func renderedDOM(_ url: String) throws -> String? {
        guard try runShell("command -v chromium").status == 0 else { return nil }
        return try runShell("exec timeout 120 chromium --headless --no-sandbox --disable-gpu --virtual-time-budget=5000 --dump-dom \(shellQuote(url))").stdout
    }
}
