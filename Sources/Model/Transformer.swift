// The batched forward pass: one step over any mix of prompt chunks and single decode tokens from
// many sequences, with logits only for rows that ask. Batch invariance: an item of at least
// `matmul.blasMinRows` tokens gets its own matmul calls (if they go to sgemm, their shape depends on
// that item alone); all other rows share calls to the row kernels, whose per-row arithmetic never
// depends on the batch (one weight pass serves them all).
// A sequence's results are therefore bit-identical alone or batched, given the same chunking.
//
// Per layer (Gemma 3; llama skips the q/k and post norms and uses SiLU):
//   h = rmsnorm(x) * attn_norm;  q,k,v = h Wq, h Wk, h Wv;  q,k = rope(rmsnorm(q), rmsnorm(k))
//   o = attention(q, cache + fresh k/v);  x += rmsnorm(o Wo) * post_attn_norm
//   h = rmsnorm(x) * ffn_norm;  x += rmsnorm(W_down(act(h W_gate) * h W_up)) * post_ffw_norm
import CKernels
import GGUF
import Kernels

/// One sequence's share of a step: its new tokens, at positions seq.length ..< seq.length+n.
public struct BatchItem {
    public enum LogitsWanted: Sendable { case none, last, all }
    public let seq: SequenceKV
    public let tokens: [Int32]
    public let logits: LogitsWanted
    /// Whether the step records the tokens as the sequence's (`KVCache.append`). A speculative item
    /// (a token and its draft) stores every row but records none: the caller appends the accepted
    /// prefix, and the rows past it are overwritten by later steps (nothing to roll back: a sliding
    /// window drops blocks only when tokens are recorded, and blocks are named only then).
    public let appends: Bool
    public init(seq: SequenceKV, tokens: [Int32], logits: LogitsWanted, appends: Bool = true) {
        self.seq = seq; self.tokens = tokens; self.logits = logits; self.appends = appends
    }
    var logitRows: Int { logits == .none ? 0 : logits == .last ? 1 : tokens.count }
}

/// Logits of a step: `rows` x `vocab` floats, in item order (an item's rows in position order).
/// Valid until the next `forward`.
public struct Logits {
    public let data: UnsafeBufferPointer<Float>
    public let rows: Int
    public let vocab: Int
    public func row(_ i: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(rebasing: data[i * vocab ..< (i + 1) * vocab])
    }
}

public final class Transformer: @unchecked Sendable {
    public let config: ModelConfig
    public let weights: ModelWeights
    public let pool: KernelPool
    public let matmul: Matmul
    var s = Scratch()
    /// Per-phase timing of `forward` when non-nil (see StepPhases); set and read by the caller's thread.
    public var phases: StepPhases?
    /// Row ranges of this step, their matmul route and pieces (see the file comment and `matmulGroups`).
    var groups: [MatmulGroup] = []
    var pieceBounds: [Int] = []
    /// The same for the output rows (logits; never cut inside an item, so one piece each).
    var outGroups: [MatmulGroup] = []
    var outBounds: [Int] = []
    /// The layers' distinct RoPE bases (Gemma 3: local and global), and each layer's index into them:
    /// a step computes every token's angles once per base, not once per layer.
    let ropeBases: [Float]
    let ropeIndex: [Int]

    /// Long items alone (`.auto`: sgemm or int8 kernels, see Matmul); runs of short items together on
    /// the row kernels: the aligned grouping below with no cut inside an item (the logits' rows; tests).
    static func matmulGroups(_ counts: some Sequence<Int>, blasMinRows: Int) -> [MatmulGroup] {
        var out: [MatmulGroup] = [], bounds: [Int] = []
        matmulGroups(counts.lazy.map { (start: 0, count: $0) }, blasMinRows: blasMinRows, align: .max, into: &out, bounds: &bounds)
        return out
    }

    /// A matmul call of a step: its rows, route, and (long prompt pieces) the range of `pieceBounds`
    /// holding its piece boundaries relative to its first row (empty: one piece).
    struct MatmulGroup: Equatable {
        var rows: Range<Int>, route: MatmulRoute, bounds: Range<Int> = 0..<0
    }

    /// The step's groups when every item is `(first position, rows)`: a long item is cut at positions
    /// that are multiples of `align` (the KV block size) and each piece is a product of its own, on the
    /// GEMM route when it is long itself. A position's results then depend only on the piece it is in,
    /// which is the same whatever the chunk it came in started from: a sequence continued from a cached
    /// prefix (a multiple of `align`) computes what a cold run computes, bit for bit. An item's
    /// consecutive long pieces are one call (`Matmul`'s pieces: each weight tile read once for all).
    static func matmulGroups(_ spans: some Sequence<(start: Int, count: Int)>, blasMinRows: Int, align: Int,
                             into out: inout [MatmulGroup], bounds: inout [Int]) {
        out.removeAll(keepingCapacity: true)
        bounds.removeAll(keepingCapacity: true)
        func addRows(_ r: Range<Int>) {
            if let last = out.last, last.route == .rows, last.rows.upperBound == r.lowerBound {
                out[out.count - 1].rows = last.rows.lowerBound..<r.upperBound
            } else {
                out.append(MatmulGroup(rows: r, route: .rows))
            }
        }
        var t = 0
        for (p0, n) in spans where n > 0 {
            defer { t += n }
            guard n >= blasMinRows else { addRows(t..<t + n); continue }
            var p = p0, open = false   // open: the last group is this item's, on the GEMM route
            while p < p0 + n {
                let e = min(p0 + n, (p / align + 1) * align)
                let r = t + (p - p0) ..< t + (e - p0)
                if e - p < blasMinRows {
                    addRows(r)
                    open = false
                } else if open {
                    let g = out.count - 1
                    out[g].rows = out[g].rows.lowerBound..<r.upperBound
                    bounds.append(r.upperBound - out[g].rows.lowerBound)
                    out[g].bounds = out[g].bounds.lowerBound..<bounds.count
                } else {
                    bounds.append(0); bounds.append(r.count)
                    out.append(MatmulGroup(rows: r, route: .auto, bounds: bounds.count - 2..<bounds.count))
                    open = true
                }
                p = e
            }
        }
    }

    /// y = x . W^T over this step's rows, one matmul call per group.
    private func mm(_ w: WeightMatrix, _ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        pieceBounds.withUnsafeBufferPointer { b in
            for g in groups {
                matmul(w, x + g.rows.lowerBound * w.cols, rows: g.rows.count, into: y + g.rows.lowerBound * w.rows, route: g.route,
                       pieces: g.bounds.isEmpty ? nil : UnsafeBufferPointer(rebasing: b[g.bounds]))
            }
        }
    }

    public init(config: ModelConfig, weights: ModelWeights, pool: KernelPool) {
        self.config = config
        self.weights = weights
        self.pool = pool
        self.matmul = Matmul(pool: pool)
        var bases: [Float] = []
        for l in config.layers where !bases.contains(l.ropeBase) { bases.append(l.ropeBase) }
        ropeBases = bases
        ropeIndex = config.layers.map { l in bases.firstIndex(of: l.ropeBase)! }
    }

    deinit { s.freeAll() }

    /// Loads a GGUF model; `layers` overrides the attention pattern.
    public convenience init(path: String, layers: LayerPattern? = nil, pool: KernelPool) throws(ModelError) {
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch { throw .gguf(error) }
        var config = try ModelConfig(file: file)
        if let p = layers { config.layers = p.apply(to: config.layers) }
        self.init(config: config, weights: try ModelWeights(file: file, config: config), pool: pool)
    }

    /// A KV cache shaped for this model (check `type.unsupportedReason(headDim:)` first for q8_0).
    public func makeCache(budgetBytes: Int = Int.max, blockTokens: Int = 64, type: KVCacheType = .f16,
                          prefixCaching: Bool = false) -> KVCache {
        KVCache(layers: config.layers, kvHeads: config.nKVHeads, headDim: config.headDim, type: type,
                blockTokens: blockTokens, budgetBytes: budgetBytes, prefixCaching: prefixCaching)
    }

    /// Runs one step. Appends every item's tokens to its sequence's cache and returns the wanted logits.
    public func forward(_ items: [BatchItem], cache: KVCache) throws(ModelError) -> Logits {
        let c = config
        var nt = 0, nOut = 0
        for it in items {
            for tok in it.tokens where tok < 0 || Int(tok) >= c.vocabSize { throw .tokenOutOfRange(tok, vocab: c.vocabSize) }
            let end = it.seq.length + it.tokens.count
            if end > c.contextLength { throw .contextOverflow(needed: end, limit: c.contextLength) }
            nt += it.tokens.count
            nOut += it.logitRows
        }
        for it in items where !cache.reserve(it.seq, length: it.seq.length + it.tokens.count) {
            throw .kvCacheFull(sequence: it.seq.id)
        }
        if nt == 0 { return Logits(data: UnsafeBufferPointer(start: s.logits, count: 0), rows: 0, vocab: c.vocabSize) }
        s.ensure(config: c, tokens: nt, outRows: nOut, threads: pool.threadCount, blockTokens: cache.blockTokens)

        // Token rows: position and owning item.
        var t = 0
        for (i, it) in items.enumerated() {
            for (j, tok) in it.tokens.enumerated() {
                s.pos[t] = it.seq.length + j
                s.item[t] = i
                s.tok[t] = Int(tok)
                t += 1
            }
        }
        Self.matmulGroups(items.lazy.map { (start: $0.seq.length, count: $0.tokens.count) }, blasMinRows: matmul.blasMinRows,
                          align: cache.blockTokens, into: &groups, bounds: &pieceBounds)
        let t0 = phases == nil ? 0 : monotonicSeconds(), a0 = phases?.attention ?? 0
        let rope = s.rope.reserve(ropeBases.count * nt * c.nRot)
        for (b, base) in ropeBases.enumerated() {
            pool.parallelFor(nt, RopeTable(pos: s.pos, base: base, nRot: c.nRot, cs: rope + b * nt * c.nRot))
        }
        embed(nt)
        for l in 0..<c.nLayers { layer(l, items: items, nt: nt, cache: cache, rope: rope + ropeIndex[l] * nt * c.nRot) }
        for it in items where it.appends { cache.append(it.seq, it.tokens) }
        guard phases != nil else { return output(items: items, nOut: nOut) }
        let t1 = monotonicSeconds()
        let logits = output(items: items, nOut: nOut)
        let t2 = monotonicSeconds()
        phases!.otherLayerWork += (t1 - t0) - (phases!.attention - a0)
        phases!.output += t2 - t1
        phases!.steps += 1
        return logits
    }

    private func embed(_ nt: Int) {
        let c = config
        pool.parallelFor(nt, EmbedRows(table: weights.tokenEmbedding, tokens: s.tok, x: s.x, dim: c.dim, scale: c.embedScale))
    }

    private func rmsnormRows(_ src: UnsafeMutablePointer<Float>, _ w: [Float], _ dst: UnsafeMutablePointer<Float>,
                             rows: Int, width: Int) {
        w.withUnsafeBufferPointer { wp in
            pool.parallelFor(rows, RMSNormRows(src: src, weight: wp.baseAddress!, dst: dst, width: width, eps: config.rmsEps))
        }
    }

    /// `rope`: this step's angles for the layer's RoPE base.
    private func layer(_ l: Int, items: [BatchItem], nt: Int, cache: KVCache, rope: UnsafePointer<Float>) {
        let c = config, w = weights.layers[l], spec = c.layers[l]
        let x = s.x!, h = s.h!, q = s.q!, k = s.k!, v = s.v!
        rmsnormRows(x, w.attnNorm, h, rows: nt, width: c.dim)
        mm(w.wq, h, q)
        mm(w.wk, h, k)
        mm(w.wv, h, v)

        // q/k norms and RoPE, then k/v rows in the cache's type (also used for this step's own keys).
        let qn = w.qNorm ?? [], kn = w.kNorm ?? []
        qn.withUnsafeBufferPointer { qnp in
            kn.withUnsafeBufferPointer { knp in
                pool.parallelFor(nt, QKNormRope(c: c, rope: rope, q: q, k: k, v: v, kh: s.kh, vh: s.vh,
                                                kvType: cache.type.kernelType, rowBytes: cache.rowBytes,
                                                qNorm: c.qkNorm ? qnp.baseAddress : nil, kNorm: c.qkNorm ? knp.baseAddress : nil))
            }
        }

        if phases == nil {
            attention(l, kind: spec.kind, items: items, nt: nt, cache: cache)
        } else {
            let t = monotonicSeconds()
            attention(l, kind: spec.kind, items: items, nt: nt, cache: cache)
            let dt = monotonicSeconds() - t
            if spec.kind.window == nil { phases!.globalAttention += dt } else { phases!.slidingAttention += dt }
        }

        // Store this step's keys/values (every row: a sliding layer's blocks out of the window are dropped
        // after the step, and kept for reuse while the prefix cache holds them).
        for (i, it) in items.enumerated() {
            let n = it.tokens.count, p0 = it.seq.length
            for j in 0..<n {
                let dst = cache.rows(it.seq, layer: l, pos: p0 + j)
                let src = s.itemStart[i] + j
                dst.k.copyMemory(from: s.kh + src * cache.rowBytes, byteCount: cache.rowBytes)
                dst.v.copyMemory(from: s.vh + src * cache.rowBytes, byteCount: cache.rowBytes)
            }
        }

        let o = s.o!
        mm(w.wo, s.att, o)
        if let pn = w.postAttnNorm { rmsnormRows(o, pn, o, rows: nt, width: c.dim) }
        zk_add(x, o, Int64(nt * c.dim))

        rmsnormRows(x, w.ffnNorm, h, rows: nt, width: c.dim)
        let g = s.gate!, u = s.up!
        mm(w.wGate, h, g)
        mm(w.wUp, h, u)
        pool.parallelFor(nt, GatedActivation(gate: g, up: u, width: c.ffnDim, gelu: c.activation == .geluTanh))
        mm(w.wDown, g, o)
        if let pn = w.postFfnNorm { rmsnormRows(o, pn, o, rows: nt, width: c.dim) }
        zk_add(x, o, Int64(nt * c.dim))
    }

    /// Attention of every query row, parallel over units of (token, KV head) with the KV head's group
    /// of query heads together. Queries of short items (decode) are cut into key chunks spread over the
    /// pool and merged afterwards; long prompts keep each query in one unit. Same arithmetic either way.
    private func attention(_ l: Int, kind: AttentionKind, items: [BatchItem], nt: Int, cache: KVCache) {
        let c = config, chunk = Int(ZK_ATT_CHUNK), g = c.nHeads / c.nKVHeads
        let starts = s.itemStart!
        var t0 = 0
        for (i, it) in items.enumerated() { starts[i] = t0; t0 += it.tokens.count }

        // A query's keys, its chunks, and whether they are spread (short items: decode).
        func plan(_ t: Int) -> (keys: Int, chunks: Int, split: Bool) {
            let p = s.pos[t], n = p - kind.firstVisible(p) + 1, chunks = (n + chunk - 1) / chunk
            return (n, chunks, chunks > 1 && items[s.item[t]].tokens.count < matmul.blasMinRows)
        }
        // Count, then lay out the units.
        var nUnits = 0, nSplits = 0, nSlots = 0
        for t in 0..<nt {
            let q = plan(t)
            if q.split {
                nUnits += q.chunks * c.nKVHeads; nSplits += c.nKVHeads; nSlots += q.chunks * c.nKVHeads
            } else {
                nUnits += c.nKVHeads
            }
        }
        let units = s.units.reserve(nUnits), cost = s.unitCost.reserve(nUnits + 1)
        let splits = s.splits.reserve(nSplits), splitParts = s.splitParts.reserve(nSlots * g * (c.headDim + 2))
        var u = 0, sp = 0, slot = 0, keys = 0
        cost[0] = 0
        for t in 0..<nt {
            let (n, chunks, split) = plan(t)
            for kvh in 0..<c.nKVHeads {
                if split {
                    splits[sp] = SplitQuery(token: Int32(t), kvHead: Int32(kvh), slot: Int32(slot), chunks: Int32(chunks))
                    sp += 1
                    for ci in 0..<chunks {
                        units[u] = AttentionUnit(token: Int32(t), kvHead: Int32(kvh), chunk: Int32(ci), slot: Int32(slot + ci))
                        keys += min(chunk, n - ci * chunk) + 16  // + a fixed cost per unit
                        u += 1
                        cost[u] = keys
                    }
                    slot += chunks
                } else {
                    units[u] = AttentionUnit(token: Int32(t), kvHead: Int32(kvh), chunk: -1, slot: 0)
                    keys += n + 16
                    u += 1
                    cost[u] = keys
                }
            }
        }
        // Each thread's share: about the same number of keys, in one call (a split query's run of chunks
        // in one call keeps its prefetch going).
        let n = pool.threadCount, bounds = s.shareBounds.reserve(n + 1)
        for t in 0...n { bounds[t] = AttentionJob.firstUnit(atCost: keys * t / n, cost: cost, count: nUnits) }
        pool.parallelFor(nUnits, bounds: bounds,
                         AttentionJob(c: c, layer: l, kind: kind, items: items, cache: cache, pos: s.pos, item: s.item,
                                      starts: starts, q: s.q, att: s.att, kh: s.kh, vh: s.vh, units: units,
                                      segs: s.segs, scores: s.scores, parts: s.parts, splitParts: splitParts))
        // A few long queries (decode at depth: one per KV head, 64 partials each at 16384 keys) merge
        // their heads on every thread; short ones (a ring's 2 partials) are not worth a dispatch.
        let perSplit = nSplits < pool.threadCount && nSlots >= 8 * nSplits ? min(g, pool.threadCount) : 1
        pool.parallelFor(nSplits * perSplit, MergeSplits(c: c, splits: splits, perSplit: perSplit,
                                                         splitParts: splitParts, att: s.att))
    }

    private func output(items: [BatchItem], nOut: Int) -> Logits {
        let c = config
        var row = 0, t = 0
        let ho = s.hOut!
        for it in items {
            let n = it.tokens.count
            let from = it.logits == .all ? 0 : it.logits == .last ? n - 1 : n
            for j in from..<n {
                zk_rmsnorm(s.x + (t + j) * c.dim, weights.outputNorm, ho + row * c.dim, Int64(c.dim), c.rmsEps)
                row += 1
            }
            t += n
        }
        // Logits: an item wanting all its rows (tests, scoring) may use sgemm on its own; sampled rows
        // use the row kernels.
        Self.matmulGroups(items.lazy.map { (start: 0, count: $0.logitRows) }, blasMinRows: matmul.blasMinRows, align: .max,
                          into: &outGroups, bounds: &outBounds)
        for g in outGroups {
            matmul(weights.output, ho + g.rows.lowerBound * c.dim, rows: g.rows.count,
                   into: s.logits + g.rows.lowerBound * c.vocabSize, route: g.route)
        }
        return Logits(data: UnsafeBufferPointer(start: s.logits, count: nOut * c.vocabSize), rows: nOut, vocab: c.vocabSize)
    }
}
