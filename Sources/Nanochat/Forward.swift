import Foundation
import Tensors

/// Which positions' logits a pass computes.
public enum LogitsSelection: Sendable {
    /// No logits: the pass may stop after the deepest captured hook.
    case none
    /// Logits for every position: [B, T, V].
    case all
    /// Logits for the last position of each row only: [B, 1, V] (decoding).
    case last
}

/// The result of a forward pass.
public struct ForwardOutput {
    /// [B, T, V] (`.all`) or [B, 1, V] (`.last`); nil for `.none`.
    public var logits: Tensor?
    /// Captured activations [B, T, C] by hook point.
    public var activations: [HookPoint: Tensor]
}

extension NanochatModel {
    /// Full forward pass of `tokens` (B rows of equal length T ≤ sequence_len) from position 0.
    /// Captures the activations at `hooks`; with `logits: false` stops after the deepest of them.
    /// `callback` sees every hook point reached and may modify the activation in place.
    public func forward(tokens: [[Int]], hooks: [HookPoint] = [], logits: Bool = true,
                        callback: HookCallback? = nil) throws -> ForwardOutput {
        let (ids, b, t) = try checkedTokens(tokens, maxLength: config.sequenceLen)
        for h in hooks where h.layer >= config.nLayer {
            throw NanochatError.hookLayerOutOfRange(hook: h.name, layers: config.nLayer)
        }
        let cache = KVCache(batch: b, capacity: t, layers: config.nLayer, kvWidth: config.nKVHead * config.headDim,
                            width: config.nEmbd, transient: true)
        let deepest = logits ? nil : hooks.map(\.depth).max() ?? -1
        return run(ids: ids, batch: b, queries: t, cache: cache, logits: logits ? .all : .none,
                   capture: Set(hooks), stopAfterDepth: deepest, callback: callback)
    }

    /// Feeds `tokens` (B rows of equal length, B = cache.batch) after the positions already in
    /// `cache` and appends their keys and values: a prefill when the cache is empty, one
    /// decoding step with one token per row. Same logits as a full forward of the whole sequence.
    public func decode(tokens: [[Int]], cache: KVCache, logits: LogitsSelection = .last,
                       hooks: [HookPoint] = [], callback: HookCallback? = nil) throws -> ForwardOutput {
        let (ids, b, t) = try checkedTokens(tokens, maxLength: cache.capacity - cache.length)
        guard b == cache.batch else {
            throw NanochatError.invalidTokens(reason: "\(b) rows for a KV cache of batch \(cache.batch)")
        }
        for h in hooks where h.layer >= config.nLayer {
            throw NanochatError.hookLayerOutOfRange(hook: h.name, layers: config.nLayer)
        }
        return run(ids: ids, batch: b, queries: t, cache: cache, logits: logits, capture: Set(hooks),
                   stopAfterDepth: nil, callback: callback)
    }

    /// Flattens B rows of equal length into [B·T] ids, checking lengths and the vocabulary.
    func checkedTokens(_ tokens: [[Int]], maxLength: Int) throws -> ([Int], Int, Int) {
        guard let t = tokens.first?.count, t > 0 else {
            throw NanochatError.invalidTokens(reason: "expected at least one non-empty row of token ids")
        }
        guard tokens.allSatisfy({ $0.count == t }) else {
            throw NanochatError.invalidTokens(reason: "rows have different lengths (\(Set(tokens.map(\.count)).sorted())); pad or split them")
        }
        guard t <= maxLength else {
            throw NanochatError.invalidTokens(reason: "\(t) tokens per row but at most \(maxLength) fit (sequence_len \(config.sequenceLen))")
        }
        let ids = tokens.flatMap { $0 }
        if let bad = ids.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
            throw NanochatError.invalidTokens(reason: "token id \(bad) outside the vocabulary 0..<\(config.vocabSize)")
        }
        return (ids, tokens.count, t)
    }

    /// The forward pass over `tq` new tokens per row at positions cache.length ..< cache.length+tq.
    /// Reads top to bottom in the order of the computation (DESIGN 2). Every linear layer is one
    /// product over all N = B·tq rows, y[N, out] = x[N, in] · Wᵀ (see `linear`).
    func run(ids: [Int], batch B: Int, queries tq: Int, cache: KVCache, logits selection: LogitsSelection,
             capture: Set<HookPoint>, stopAfterDepth: Int?, callback: HookCallback?) -> ForwardOutput {
        let c = config, C = c.nEmbd, D = c.headDim, H = c.nHead, Hkv = c.nKVHead
        let KD = Hkv * D, N = B * tq, start = cache.length, cap = cache.capacity

        // Scratch: one allocation, named views (shapes in comments).
        let sizes = [N * C, N * C, N * C, N * C, N * KD, N * KD, N * C, N * C, N * 4 * C, N * C]
        let workspace = scratchPool.take(sizes.reduce(0, +))
        defer { scratchPool.give(workspace) }
        let scratch = workspace.base
        var views: [UnsafeMutablePointer<Float>] = []
        var o = 0
        for s in sizes { views.append(scratch + o); o += s }
        let x = views[0]       // [N, C] residual stream
        let x0 = views[1]      // [N, C] embedding after smear (for x0_lambdas)
        let h = views[2]       // [N, C] norm(x)
        let q = views[3]       // [N, H·D]
        let k = views[4]       // [N, Hkv·D]
        let v = views[5]       // [N, Hkv·D]
        let y = views[6]       // [N, H·D] attention heads concatenated
        let a = views[7]       // [N, C] attention output, then MLP output
        let fc = views[8]      // [N, 4C]
        let xBack = views[9]   // [N, C]

        var output = ForwardOutput(logits: nil, activations: [:])
        // Calls the callback, then captures; true when the pass may stop here.
        func emit(_ layer: Int, _ kind: HookKind, _ buffer: UnsafeMutablePointer<Float>) -> Bool {
            let point = HookPoint(layer: layer, kind: kind)
            if let callback {
                callback(HookActivation(point: point, batch: B, tokens: tq, startPosition: start, width: C,
                                        values: UnsafeMutableBufferPointer(start: buffer, count: N * C)))
            }
            if capture.contains(point) {
                output.activations[point] = Tensor(shape: [B, tq, C],
                                                   storage: Array(UnsafeBufferPointer(start: buffer, count: N * C)))
            }
            return stopAfterDepth.map { point.depth >= $0 } ?? false
        }
        if let s = stopAfterDepth, s < 0 { return output }

        // x = norm(wte[idx])
        forRows(N, width: C) { rows in
            for r in rows { wte.copyRow(ids[r], into: x + r * C) }
            norm(x, into: x, rows: rows, width: C)
        }

        // Smear: x[t] += λ · σ(smear_gate · x[t][:24]) · x[t−1], with the pre-smear x[t−1]
        // (from the cache for the first new token). Walk t downwards so x[t−1] is still unsmeared.
        if let gate = smearGate {
            var previous = cache.previousEmbedding
            for b in 0..<B {
                let rowsB = x + b * tq * C
                let lastPre = Array(UnsafeBufferPointer(start: rowsB + (tq - 1) * C, count: C))
                for t in stride(from: tq - 1, through: 0, by: -1) {
                    if t == 0 && start == 0 { break }
                    let xt = rowsB + t * C
                    var z: Float = 0
                    for j in 0..<24 { z += gate[j] * xt[j] }
                    let g = smearLambda * sigmoid(z)
                    if t > 0 {
                        let prev = rowsB + (t - 1) * C
                        for j in 0..<C { xt[j] += g * prev[j] }
                    } else {
                        previous.withUnsafeBufferPointer { pb in
                            let prev = pb.baseAddress! + b * C
                            for j in 0..<C { xt[j] += g * prev[j] }
                        }
                    }
                }
                previous.replaceSubrange(b * C ..< (b + 1) * C, with: lastPre)
            }
            cache.previousEmbedding = previous
        }
        if profile.residualLambdas { x0.update(from: x, count: N * C) }

        for (i, block) in blocks.enumerated() {
            // x = resid_lambdas[i]·x + x0_lambdas[i]·x0
            if profile.residualLambdas {
                let rl = residLambdas[i], xl = x0Lambdas[i]
                forRows(N, width: C) { rows in
                    for j in (rows.lowerBound * C)..<(rows.upperBound * C) { x[j] = rl * x[j] + xl * x0[j] }
                }
            }
            if emit(i, .residPre, x) { return output }

            // Attention: q, k, v from norm(x).
            forRows(N, width: C) { norm(x, into: h, rows: $0, width: C) }
            linear(h, rows: N, in: C, weight: block.cQ, out: q, width: H * D)
            linear(h, rows: N, in: C, weight: block.cK, out: k, width: KD)
            linear(h, rows: N, in: C, weight: block.cV, out: v, width: KD)
            // Value embedding (ResFormer): v += 3·σ(ve_gate · h[:12]) (one gate per kv head) · ve[idx]
            if let ve = block.valueEmbed, let gate = block.veGate {
                forRows(N, width: KD) { rows in withUnsafeTemporaryAllocation(of: Float.self, capacity: KD) { er in
                    for r in rows {
                        let hr = h + r * C, vr = v + r * KD
                        ve.copyRow(ids[r], into: er.baseAddress!)
                        for g in 0..<Hkv {
                            var z: Float = 0
                            for j in 0..<12 { z += gate[g * 12 + j] * hr[j] }
                            let s = 3 * sigmoid(z)
                            for j in (g * D)..<((g + 1) * D) { vr[j] += s * er[j] }
                        }
                    }
                } }
            }
            // Rotary on q and k, then q = s·norm(q), k = s·norm(k) per head.
            let qkScale = profile.qkScale
            forRows(N, width: H * D + KD) { rows in
                for r in rows {
                    let pos = start + r % tq
                    rotary.apply(q + r * H * D, heads: H, position: pos)
                    rotary.apply(k + r * KD, heads: Hkv, position: pos)
                }
                // Per head: rows of D.
                norm(q, into: q, rows: (rows.lowerBound * H)..<(rows.upperBound * H), width: D)
                norm(k, into: k, rows: (rows.lowerBound * Hkv)..<(rows.upperBound * Hkv), width: D)
                if qkScale != 1 {
                    for j in (rows.lowerBound * H * D)..<(rows.upperBound * H * D) { q[j] *= qkScale }
                    for j in (rows.lowerBound * KD)..<(rows.upperBound * KD) { k[j] *= qkScale }
                }
            }
            // Append k, v to the cache: [B, capacity, Hkv·D] at positions start ..< start+tq
            // (a transient cache is k and v themselves).
            if !cache.transient {
                for b in 0..<B {
                    let dst = (b * cap + start) * KD, src = b * tq * KD
                    (cache.keys[i] + dst).update(from: k + src, count: tq * KD)
                    (cache.values[i] + dst).update(from: v + src, count: tq * KD)
                }
            }
            attention(q: q, k: cache.transient ? k : cache.keys[i], v: cache.transient ? v : cache.values[i],
                      y: y, batch: B, queries: tq, start: start,
                      capacity: cap, heads: H, kvHeads: Hkv, headDim: D, window: windows[i])
            linear(y, rows: N, in: C, weight: block.attnProj, out: a, width: C)
            if emit(i, .attnOut, a) { return output }
            forRows(N, width: C) { rows in for j in (rows.lowerBound * C)..<(rows.upperBound * C) { x[j] += a[j] } }
            if emit(i, .residMid, x) { return output }

            // MLP: c_proj(relu(c_fc(norm(x)))²)
            forRows(N, width: C) { norm(x, into: h, rows: $0, width: C) }
            linear(h, rows: N, in: C, weight: block.fc, out: fc, width: 4 * C)
            forRows(N, width: 4 * C) { rows in
                reluSquaredInPlace(UnsafeMutableBufferPointer(start: fc + rows.lowerBound * 4 * C, count: rows.count * 4 * C))
            }
            linear(fc, rows: N, in: 4 * C, weight: block.mlpProj, out: a, width: C)
            if emit(i, .mlpOut, a) { return output }
            forRows(N, width: C) { rows in for j in (rows.lowerBound * C)..<(rows.upperBound * C) { x[j] += a[j] } }
            if emit(i, .residPost, x) { return output }

            if profile.backout && i == c.nLayer / 2 { xBack.update(from: x, count: N * C) }
        }
        cache.length = start + tq
        if selection == .none { return output }

        // Head: logits = cap·tanh(lm_head(norm(x − backout_lambda·x_back))[:V] / cap)
        let rows = selection == .all ? N : B
        let rowIndex = { (r: Int) in selection == .all ? r : r * tq + tq - 1 }
        for r in 0..<rows {
            let src = x + rowIndex(r) * C, dst = h + r * C
            if profile.backout {
                let xb = xBack + rowIndex(r) * C
                for j in 0..<C { dst[j] = src[j] - backoutLambda * xb[j] }
            } else {
                dst.update(from: src, count: C)
            }
        }
        forRows(rows, width: C) { norm(h, into: h, rows: $0, width: C) }
        let V = c.vocabSize
        // Uninitialised: the sgemm writes every element (beta = 0).
        var logits = Tensor(shape: [B, selection == .all ? tq : 1, V],
                            storage: [Float](unsafeUninitializedCapacity: rows * V) { _, n in n = rows * V })
        logits.withBuffer { lb in
            linear(h, rows: rows, in: C, weight: lmHead, out: lb.baseAddress!, width: V)
            let cap = profile.softcap, inv = 1 / cap, l = lb.baseAddress!
            forRows(rows, width: V) { r in
                for j in (r.lowerBound * V)..<(r.upperBound * V) { l[j] = cap * fastTanh(l[j] * inv) }
            }
        }
        output.logits = logits
        return output
    }
}

/// Runs `body` over disjoint ranges of `rows` rows of `width` floats, on all cores when the work
/// is large enough to pay for the threads.
@inline(__always)
func forRows(_ rows: Int, width: Int, _ body: (Range<Int>) -> Void) {
    let chunks = rows * width >= 1 << 15 ? min(rows, ProcessInfoCores.count) : 1
    if chunks <= 1 { body(0..<rows); return }
    let per = (rows + chunks - 1) / chunks
    parallelFor(chunks) { c in
        let lo = c * per, hi = min(rows, lo + per)
        if lo < hi { body(lo..<hi) }
    }
}

/// y[r] = norm(x[r]) = x[r] / sqrt(mean(x[r]²) + eps) for the rows `rows` of `width` floats
/// (y may alias x).
@inline(__always)
func norm(_ x: UnsafeMutablePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Range<Int>, width: Int) {
    let n = rows.count * width, o = rows.lowerBound * width
    rmsnormRows(UnsafeBufferPointer(start: x + o, count: n), UnsafeMutableBufferPointer(start: y + o, count: n), n: width)
}

/// tanh by the odd rational minimax fit [13/6] that Eigen uses for Float32 (clamped at ±7.9053,
/// where tanh rounds to ±1). Plain arithmetic, so the loop vectorises: 2.5× faster than expf and
/// 5× faster than tanhf; |error| < 4e-7 (so < 6e-6 on logits soft-capped at 15).
@inline(__always)
func fastTanh(_ x0: Float) -> Float {
    let x = min(max(x0, -7.905_311_107_635_498), 7.905_311_107_635_498)
    let x2 = x * x
    var p: Float = -2.760_768_477_423_55e-16
    p = p * x2 + 2.000_187_904_824_77e-13
    p = p * x2 - 8.604_671_522_137_35e-11
    p = p * x2 + 5.122_297_090_371_14e-08
    p = p * x2 + 1.485_722_357_179_79e-05
    p = p * x2 + 6.372_619_288_754_36e-04
    p = p * x2 + 4.893_524_558_917_86e-03
    var q: Float = 1.198_258_394_667_02e-06
    q = q * x2 + 1.185_347_056_866_54e-04
    q = q * x2 + 2.268_434_632_439_00e-03
    q = q * x2 + 4.893_525_185_543_85e-03
    return x * p / q
}

/// y[N, out] = x[N, in] · Wᵀ for W stored [out, in]: one sgemm over all rows, or a gemv for a
/// single row (decoding), where sgemm would repack the whole weight on every call.
@inline(__always)
func linear(_ x: UnsafePointer<Float>, rows: Int, in k: Int, weight: UnsafePointer<Float>,
            out y: UnsafeMutablePointer<Float>, width n: Int) {
    if rows == 1 {
        y.update(repeating: 0, count: n)   // beta = 0 must not meet NaN garbage in y (0·NaN)
        sgemv(.none, m: n, n: k, a: weight, lda: k, x: x, y: y)
    } else {
        sgemm(.none, .transposed, m: rows, n: n, k: k, a: x, lda: k, b: weight, ldb: k, c: y, ldc: n)
    }
}
