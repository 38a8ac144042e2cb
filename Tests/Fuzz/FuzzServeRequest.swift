// libFuzzer entry for `sae-run serve`'s request decoding and checks (built by Tests/Fuzz/run.sh with
// Sources/Runtime/{ServeRequests,Steering,RuntimeError}.swift): every body either decodes into
// bounded values or is refused with a RuntimeError; nothing else may happen.
import Foundation

/// Steering.swift's spec parser asks Nanochat whether a hook name exists; the request path never
/// does (hooks are matched against the attached SAEs), so a stand-in that accepts every name is enough.
struct HookPoint { init(name: String) throws {} }

let limits = ServeRequest.Limits(maxPromptChars: 200, maxNewTokens: 64)
let targets = [Steering.Target(hook: "blocks.2.hook_resid_post", dSAE: 1024),
               Steering.Target(hook: "blocks.3.hook_mlp_out", dSAE: 7)]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzServeRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let body = Data(bytes: data, count: size)
    do {
        let f = try ServeRequest.features(body, limits: limits)
        precondition(!f.prompt.isEmpty && f.prompt.count <= limits.maxPromptChars && (1...limits.maxTop).contains(f.top))
    } catch is RuntimeError {} catch { preconditionFailure("features: \(error)") }
    do {
        let g = try ServeRequest.generate(body, limits: limits, targets: targets)
        precondition((1...limits.maxNewTokens).contains(g.maxTokens) && g.temperature >= 0 && g.temperature <= 10)
        precondition(g.steer.count <= limits.maxInterventions)
        for s in g.steer {
            let t = targets.first { $0.hook == s.hook }!
            precondition((0..<t.dSAE).contains(s.feature) && s.value.isFinite)
        }
    } catch is RuntimeError {} catch { preconditionFailure("generate: \(error)") }
    return 0
}
