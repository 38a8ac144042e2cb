import Foundation
import Formats
import SAE

// Which checkpoint `--resume` continues from, and whether it is intact, decided before anything
// else is loaded. "Intact": trainer.json parses with every field; for each of its hooks
// state/training.json parses, state/params.safetensors holds params, adam_m and adam_v of the SAE's
// size, and the SAELens files (cfg.json, sae_weights.safetensors, sparsity.safetensors) parse.
// A checkpoint that is not intact is bad input (exit 2): restarting the run would fail the same
// way, so the launchers stop, and the message names the newest intact checkpoint to resume from.

/// A checkpoint that cannot be resumed from: a file missing, damaged or inconsistent.
public struct CorruptCheckpoint: Error, CustomStringConvertible {
    public let description: String
    public init(_ file: String, _ problem: String) { self.init(line: "\(file): \(problem)") }
    init(line: String) { description = oneLine(line) }
}

/// A checkpoint that passed `CheckpointStore.check`: its trainer.json and every hook's state.
public struct CheckedCheckpoint: Sendable {
    public let step: Int
    public let dir: URL
    public let trainer: TrainerCheckpoint
    public let states: [HookTrainingState]
}

/// One line for a JSON decoding error: which field and what is wrong, not Swift's dump of it.
func jsonProblem(_ error: Error) -> String {
    func path(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined().drop { $0 == "." }.description
    }
    switch error as? DecodingError {
    case .keyNotFound(let key, let c)?: return "field \(path(c.codingPath + [key])) is missing"
    case .typeMismatch(let type, let c)?: return "field \(path(c.codingPath)): expected \(type)"
    case .valueNotFound(let type, let c)?: return "field \(path(c.codingPath)): expected \(type), got null"
    case .dataCorrupted(let c)? where c.codingPath.isEmpty: return "not valid JSON (truncated or damaged)"
    case .dataCorrupted(let c)?: return "field \(path(c.codingPath)): invalid value"
    default: return "\(error)"
    }
}

/// Decodes the JSON file at `path` as `T`; a missing or damaged file is a `CorruptCheckpoint`.
func decodeCheckpointJSON<T: Decodable>(_ type: T.Type, at path: String) throws -> T {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CorruptCheckpoint(path, "missing or unreadable; the checkpoint is incomplete")
    }
    do { return try JSONDecoder().decode(T.self, from: data) }
    catch { throw CorruptCheckpoint(path, jsonProblem(error)) }
}

extension CheckpointStore {
    /// The directory of checkpoint `step`.
    func directory(step: Int) -> URL { checkpointsDir.appendingPathComponent(CheckpointStore.dirName(step: step)) }

    /// Reads checkpoint `step` and checks that it is intact (above); tensor data is not read.
    public func check(step: Int) throws -> CheckedCheckpoint {
        let dir = directory(step: step)
        let trainer = try decodeCheckpointJSON(TrainerCheckpoint.self, at: dir.appendingPathComponent("trainer.json").path)
        guard trainer.step == step else {
            throw CorruptCheckpoint(dir.appendingPathComponent("trainer.json").path, "says step \(trainer.step), its directory step \(step)")
        }
        guard trainer.worldSize >= 1, trainer.positions.count == trainer.worldSize, trainer.rng.count == 4, trainer.rng.contains(where: { $0 != 0 }), !trainer.hooks.isEmpty else {
            throw CorruptCheckpoint(dir.appendingPathComponent("trainer.json").path,
                                    "inconsistent: world_size \(trainer.worldSize), \(trainer.positions.count) positions, \(trainer.rng.count) RNG words, \(trainer.hooks.count) hooks")
        }
        let states = try trainer.hooks.map { hook -> HookTrainingState in
            let hookDir = dir.appendingPathComponent(hook)
            let statePath = hookDir.appendingPathComponent("state/training.json").path
            let state = try decodeCheckpointJSON(HookTrainingState.self, at: statePath)
            do { try state.sae.validate() } catch { throw CorruptCheckpoint(statePath, "field sae: \(error)") }
            let (m, d) = (state.sae.dSAE, state.sae.dIn)
            guard checkedProduct(4, m, d) != nil else { throw CorruptCheckpoint(statePath, "field sae: d_sae \(m) × d_in \(d) overflows") }
            guard state.stats.firingCounts.count == m, state.stats.tokensSinceFired.count == m else {
                throw CorruptCheckpoint(statePath, "field stats: \(state.stats.firingCounts.count) latents, the SAE has \(m)")
            }
            let count = ParameterLayout(state.sae).count
            let paramsPath = hookDir.appendingPathComponent("state/params.safetensors").path
            do {
                let file = try SafetensorsFile(path: paramsPath)
                for name in ["params", "adam_m", "adam_v"] {
                    let entry = try file.entry(name)
                    guard entry.dtype == .f32, entry.shape == [count] else {
                        throw CorruptCheckpoint(paramsPath, "tensor \(name): expected float32 [\(count)], got \(entry.dtype.rawValue) \(entry.shape)")
                    }
                }
                _ = try SafetensorsFile(path: hookDir.appendingPathComponent("sae_weights.safetensors").path)
                _ = try SafetensorsFile(path: hookDir.appendingPathComponent("sparsity.safetensors").path)
            } catch let e as FormatError { throw CorruptCheckpoint(line: "\(e)") }
            let cfgPath = hookDir.appendingPathComponent("cfg.json").path
            guard let cfg = FileManager.default.contents(atPath: cfgPath),
                  (try? JSONSerialization.jsonObject(with: cfg)) is [String: Any] else {
                throw CorruptCheckpoint(cfgPath, "missing or not a JSON object")
            }
            return state
        }
        return CheckedCheckpoint(step: step, dir: dir, trainer: trainer, states: states)
    }

    /// The newest intact checkpoint other than `step` (nil if none).
    func newestIntact(except step: Int?) -> Int? {
        steps().reversed().first { $0 != step && (try? check(step: $0)) != nil }
    }

    /// The checkpoint to resume from: step `resumeFrom`'s if it is >= 0, else the one `latest`
    /// points to, checked intact. If it is missing or damaged, the error says so and names the
    /// newest intact checkpoint with the flag that resumes from it.
    public func resumePoint(resumeFrom: Int) throws -> CheckedCheckpoint {
        let latestPath = latestLink.path
        let step: Int
        if resumeFrom >= 0 {
            step = resumeFrom
            guard steps().contains(step) else {
                let list = steps().map(String.init).joined(separator: ", ")
                throw ConfigError("resume_from \(step)", "no checkpoint of that step in \(checkpointsDir.path) "
                                  + (list.isEmpty ? "(it has none)" : "(steps: \(list))"))
            }
        } else {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: latestPath) else {
                if let intact = newestIntact(except: nil) {
                    throw ConfigError(latestPath, "missing; \(guidance(intact))")
                }
                throw ConfigError(out.path, "--resume: no checkpoint to resume from (no \(latestPath))")
            }
            guard let s = CheckpointStore.step(ofDirName: (target as NSString).lastPathComponent),
                  FileManager.default.fileExists(atPath: out.appendingPathComponent(target).path) else {
                throw CorruptCheckpoint(latestPath, "points to \(target), which is missing; \(guidance(newestIntact(except: nil)))")
            }
            step = s
        }
        do { return try check(step: step) }
        catch let e as CorruptCheckpoint {
            throw CorruptCheckpoint(line: e.description + "; " + guidance(newestIntact(except: step)))
        }
    }

    /// What to do instead: resume from `intact`, or start afresh when there is none.
    func guidance(_ intact: Int?) -> String {
        guard let intact else { return "no intact checkpoint remains in \(checkpointsDir.path); start afresh with another out" }
        return "the newest intact checkpoint is step \(intact): resume from it with --resume-from \(intact)"
    }
}
