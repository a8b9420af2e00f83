// The forward pass's pool jobs: structs of pointers and sizes (not closures), so dispatching one
// allocates nothing and a steady decode step stays allocation-free (see KernelPool).
import CKernels
import Kernels

/// Token embeddings (dequantized rows), scaled by `scale` (Gemma: sqrt(dim)).
struct EmbedRows: RangeJob {
    let table: WeightMatrix, tokens: UnsafePointer<Int>, x: UnsafeMutablePointer<Float>, dim: Int, scale: Float
    func run(_ range: Range<Int>, thread: Int) {
        for t in range {
            table.dequantizeRow(tokens[t], into: x + t * dim)
            if scale != 1 { zk_scale(x + t * dim, scale, Int64(dim)) }
        }
    }
}

/// dst[t] = rmsnorm(src[t]) * weight, row by row (in place when src == dst).
struct RMSNormRows: RangeJob {
    let src: UnsafePointer<Float>, weight: UnsafePointer<Float>, dst: UnsafeMutablePointer<Float>
    let width: Int, eps: Float
    func run(_ range: Range<Int>, thread: Int) {
        for t in range { zk_rmsnorm(src + t * width, weight, dst + t * width, Int64(width), eps) }
    }
}

/// Per token: q/k head norms (Gemma 3), RoPE at the token's position, then k and v to rows of the cache's type.
struct QKNormRope: RangeJob {
    /// `rope`: each token's angles for this layer's base (`RopeTable`), c.nRot floats a token.
    let c: ModelConfig, rope: UnsafePointer<Float>
    let q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>, v: UnsafePointer<Float>
    let kh: UnsafeMutableRawPointer, vh: UnsafeMutableRawPointer
    let kvType: Int32, rowBytes: Int
    let qNorm: UnsafePointer<Float>?, kNorm: UnsafePointer<Float>?
    func run(_ range: Range<Int>, thread: Int) {
        let neox: Int32 = c.ropeNeox ? 1 : 0
        for t in range {
            let qt = q + t * c.qDim, kt = k + t * c.kvDim, cs = rope + t * c.nRot
            if let qNorm {
                for hh in 0..<c.nHeads { zk_rmsnorm(qt + hh * c.headDim, qNorm, qt + hh * c.headDim, Int64(c.headDim), c.rmsEps) }
            }
            if let kNorm {
                for hh in 0..<c.nKVHeads { zk_rmsnorm(kt + hh * c.headDim, kNorm, kt + hh * c.headDim, Int64(c.headDim), c.rmsEps) }
            }
            zk_rope_apply(qt, Int64(c.nHeads), Int64(c.headDim), Int64(c.nRot), cs, neox)
            zk_rope_apply(kt, Int64(c.nKVHeads), Int64(c.headDim), Int64(c.nRot), cs, neox)
            zk_kv_store_row(kvType, kt, kh + t * rowBytes, Int64(c.nKVHeads), Int64(c.headDim))
            zk_kv_store_row(kvType, v + t * c.kvDim, vh + t * rowBytes, Int64(c.nKVHeads), Int64(c.headDim))
        }
    }
}

/// Each token's RoPE angles for one base, once per step (every layer with that base reads them).
struct RopeTable: RangeJob {
    let pos: UnsafePointer<Int>, base: Float, nRot: Int, cs: UnsafeMutablePointer<Float>
    func run(_ range: Range<Int>, thread: Int) {
        for t in range { zk_rope_table(Int64(pos[t]), base, Int64(nRot), cs + t * nRot) }
    }
}

/// g = act(g) * u over whole rows of the FFN hidden state.
struct GatedActivation: RangeJob {
    let gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, width: Int, gelu: Bool
    func run(_ range: Range<Int>, thread: Int) {
        let base = range.lowerBound * width, count = Int64(range.count * width)
        if gelu { zk_gelu_mul(gate + base, up + base, gate + base, count) }
        else { zk_silu_mul(gate + base, up + base, gate + base, count) }
    }
}

/// One piece of a layer's attention: a query token's group of heads on one KV head, either over all
/// its keys (`chunk < 0`) or over one chunk of ZK_ATT_CHUNK keys whose partial goes to `slot` of the
/// split partials (merged afterwards by `MergeSplits`).
struct AttentionUnit {
    var token: Int32, kvHead: Int32, chunk: Int32, slot: Int32
}

/// A query whose chunks were spread over the pool: `chunks` partials from `slot` on.
struct SplitQuery {
    var token: Int32, kvHead: Int32, slot: Int32, chunks: Int32
}

/// Runs a range of attention units (`parallelFor` with shares of about the same number of keys, from
/// the units' prefix sums by `firstUnit`, so long prompts and split decode queries both balance).
struct AttentionJob: RangeJob {
    let c: ModelConfig, layer: Int, kind: AttentionKind, items: [BatchItem], cache: KVCache
    let pos: UnsafePointer<Int>, item: UnsafePointer<Int>, starts: UnsafePointer<Int>
    let q: UnsafePointer<Float>, att: UnsafeMutablePointer<Float>
    let kh: UnsafeRawPointer, vh: UnsafeRawPointer
    let units: UnsafePointer<AttentionUnit>
    let segs: [UnsafeMutablePointer<zk_kv_segment>], scores: [UnsafeMutablePointer<Float>]
    let parts: [UnsafeMutablePointer<Float>], splitParts: UnsafeMutablePointer<Float>

    /// First of `count` units whose preceding units hold at least `keys` keys (`cost`: prefix sums).
    static func firstUnit(atCost keys: Int, cost: UnsafePointer<Int>, count: Int) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if cost[mid] < keys { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    func run(_ range: Range<Int>, thread: Int) {
        let a = range.lowerBound, b = range.upperBound
        let g = c.nHeads / c.nKVHeads, hd = c.headDim
        let segs = segs[thread], type = cache.type.kernelType, rb = cache.rowBytes, hb = cache.headBytes
        var u = a
        while u < b {
            let unit = units[u]
            // A run of this query's chunks (consecutive units, consecutive slots) is one call.
            var run = 1
            if unit.chunk >= 0 {
                while u + run < b, units[u + run].token == unit.token, units[u + run].kvHead == unit.kvHead { run += 1 }
            }
            defer { u += run }
            let t = Int(unit.token), kvh = Int(unit.kvHead), i = item[t]
            let seq = items[i].seq, p = pos[t], p0 = seq.length
            let lo = kind.firstVisible(p)
            // Keys: cached positions [lo, p0), then this step's fresh rows [max(lo, p0), p].
            var n = 0
            cache.segments(seq, layer: layer, from: lo, to: p0, head: kvh, into: segs, count: &n)
            let f0 = max(lo, p0)
            let row = starts[i] + (f0 - p0)
            segs[n] = zk_kv_segment(k: kh + row * rb + kvh * hb, v: vh + row * rb + kvh * hb, n: Int64(p - f0 + 1))
            n += 1
            let qp = q + t * c.qDim + kvh * g * hd
            if unit.chunk < 0 {
                zk_attend(type, qp, Int64(g), Int64(hd), c.attnScale, segs, Int64(n), Int64(rb),
                          scores[thread], parts[thread], att + t * c.qDim + kvh * g * hd)
            } else {
                zk_attend_chunks(type, qp, Int64(g), Int64(hd), c.attnScale, segs, Int64(n), Int64(rb),
                                 Int64(unit.chunk), Int64(unit.chunk) + Int64(run), scores[thread],
                                 splitParts + Int(unit.slot) * g * (hd + 2))
            }
        }
    }
}

/// Merges the chunk partials of split queries, in chunk order: unit u is split u / perSplit, its heads
/// [h0, h1) for the (u % perSplit)-th of perSplit equal shares (perSplit > 1 spreads one long query's
/// merge over the pool; the same bits).
struct MergeSplits: RangeJob {
    let c: ModelConfig, splits: UnsafePointer<SplitQuery>, perSplit: Int
    let splitParts: UnsafePointer<Float>, att: UnsafeMutablePointer<Float>
    func run(_ range: Range<Int>, thread: Int) {
        let g = c.nHeads / c.nKVHeads, hd = c.headDim
        for u in range {
            let sq = splits[u / perSplit], k = u % perSplit
            zk_attend_merge_heads(splitParts + Int(sq.slot) * g * (hd + 2), Int64(sq.chunks), Int64(g), Int64(hd),
                                  Int64(g * k / perSplit), Int64(g * (k + 1) / perSplit),
                                  att + Int(sq.token) * c.qDim + Int(sq.kvHead) * g * hd)
        }
    }
}
