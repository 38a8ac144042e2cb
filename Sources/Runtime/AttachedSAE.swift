import Foundation
import Nanochat
import SAE
import Tensors

/// An SAE attached to a model at its hook point (from our checkpoints or any SAELens directory).
public struct AttachedSAE: Sendable {
    /// Where it was loaded from (used in messages and output).
    public let path: String
    public let hook: HookPoint
    public let sae: SAE

    /// Loads the SAE in `directory` and checks it against `model`: the hook named in its
    /// cfg.json (`metadata.hook_name`, or `hook` to override) must exist in the model and have
    /// the SAE's width.
    public init(directory: String, model: NanochatModel, hook override: String? = nil) throws {
        let sae = try SAE.loadSAELens(from: directory)
        guard let name = override ?? SAE.saeLensHookName(directory: directory) else {
            throw RuntimeError.badInput("\(directory)/cfg.json: no metadata.hook_name; name the hook the SAE reads")
        }
        let hook: HookPoint
        do { hook = try HookPoint(name: name, nLayer: model.config.nLayer) } catch {
            throw RuntimeError.badInput("\(directory): its hook \(name) does not match the model (\(error))")
        }
        guard sae.config.dIn == model.config.nEmbd else {
            throw RuntimeError.badInput("\(directory): d_in \(sae.config.dIn) differs from the width \(model.config.nEmbd) of \(name)")
        }
        self.init(path: directory, hook: hook, sae: sae)
    }

    public init(path: String, hook: HookPoint, sae: SAE) {
        self.path = path; self.hook = hook; self.sae = sae
    }

    /// Decoder row f (its direction in the hook's activation space, raw scale): W_dec[f] [d].
    public func decoderRow(_ f: Int) -> Slice<ParameterBuffer> {
        precondition((0..<sae.config.dSAE).contains(f), "decoder row \(f) of \(sae.config.dSAE)")
        let d = sae.config.dIn, start = sae.layout.W_dec.lowerBound + f * d
        return sae.params[start ..< start + d]
    }
}
