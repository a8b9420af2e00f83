// The naive reference forward pass: plain loops over Float arrays, straight from the GGUF file,
// recomputing the whole sequence with an explicit mask (no ring buffer, no blocks, no BLAS, no pool).
// Every fast path is tested against this. K and V are rounded through the cache's type (f16, or q8_0
// with the query rounded the same way for scoring, as the int8 attention kernel does); inputs of
// quantized weights are rounded through 8 bits (ActivationQuantization), as the kernels and llama.cpp do.
import CKernels
import GGUF
import Kernels

public struct ReferenceModel {
    public let config: ModelConfig
    let file: GGUFFile
    /// Round the inputs of quantized weights through 8 bits (as `Matmul.int8Activations`).
    public let int8Activations: Bool
    /// The KV cache type whose rounding the keys and values (and, for q8_0, the scored query) take.
    public let kvCache: KVCacheType

    public init(file: GGUFFile, config: ModelConfig, int8Activations: Bool = true, kvCache: KVCacheType = .f16) {
        self.file = file
        self.config = config
        self.int8Activations = int8Activations
        self.kvCache = kvCache
    }

    /// `x` (heads x headDim) stored in the cache's type and read back.
    func kvRounded(_ x: [Float], heads: Int) -> [Float] {
        let hd = config.headDim
        var bytes = [UInt8](repeating: 0, count: heads * Int(zk_kv_head_bytes(kvCache.kernelType, Int64(hd))))
        var out = [Float](repeating: 0, count: x.count)
        zk_kv_store_row(kvCache.kernelType, x, &bytes, Int64(heads), Int64(hd))
        zk_kv_load_row(kvCache.kernelType, bytes, &out, Int64(heads), Int64(hd))
        return out
    }

    func matrix(_ name: String) -> [Float] { file.floats(file.tensors[name]!) }

    /// A weight for `matvec`: its floats and whether its products take 8-bit activations.
    struct Weight {
        let w: [Float]
        let int8Input: Bool
        let type: Int32
        /// Q4_1/Q5_1 with 8-bit activations: each 32-block's minimum m, row-major. Their minimum term
        /// is m * s with the activation block's stored s (f16 in llama.cpp's Q8_1), not m * d * sum(q).
        let mins: [Float]
    }

    func weight(_ name: String) -> Weight {
        let t = file.tensors[name]!
        let type = Int32(t.type.rawValue)
        let int8 = int8Activations && ActivationQuantization.applies(to: type)
        let mins = int8 ? blockMins(t, blocks: 0..<t.elementCount / 32) : []
        return Weight(w: file.floats(t), int8Input: int8, type: type, mins: mins)
    }

    /// The minimums m of 32-element blocks of a Q4_1/Q5_1 tensor (their blocks start with f16 d, then
    /// f16 m); empty for other types, whose activations' s is exactly d * sum(q).
    func blockMins(_ t: GGUFTensorInfo, blocks: Range<Int>) -> [Float] {
        let type = Int32(t.type.rawValue)
        guard zk_act_format(type) == Int32(ZK_ACT_Q8_1.rawValue) else { return [] }
        let p = file.data(t), bb = Int(zk_block_bytes(type))
        return blocks.map { b in
            Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: b * bb + 2, as: UInt16.self)))
        }
    }

    /// What a row's minimum term gains when it multiplies each activation block's stored s instead
    /// of d * sum(q): sum over blocks of m * (s - d * sum(q)).
    static func minimumTermCorrection(_ mins: ArraySlice<Float>, _ blocks: [ActivationQuantization.Block]) -> Float {
        var c: Float = 0
        for (m, blk) in zip(mins, blocks) { c += m * (blk.s - blk.d * Float(blk.q.reduce(0) { $0 + Int($1) })) }
        return c
    }

    /// y[n] = sum_k W[n][k] x[k] for W stored [N, K] row-major.
    static func matvec(_ m: Weight, _ x: [Float], rows: Int) -> [Float] {
        let w = m.w
        let blocks = m.int8Input ? ActivationQuantization.quantize(x, for: m.type) : []
        let x = m.int8Input ? ActivationQuantization.dequantize(blocks) : x
        let k = x.count
        var y = [Float](repeating: 0, count: rows)
        for n in 0..<rows {
            var s: Float = 0
            for j in 0..<k { s += w[n * k + j] * x[j] }
            if !m.mins.isEmpty { s += minimumTermCorrection(m.mins[n * blocks.count ..< (n + 1) * blocks.count], blocks) }
            y[n] = s
        }
        return y
    }

    static func rmsnorm(_ x: [Float], _ w: [Float]?, eps: Float) -> [Float] {
        var ss: Double = 0
        for v in x { ss += Double(v) * Double(v) }
        let scale = 1 / (Float(ss / Double(x.count)) + eps).squareRoot()
        return x.indices.map { i in x[i] * scale * (w?[i] ?? 1) }
    }

    static func rope(_ x: inout [Float], offset: Int, dim: Int, nRot: Int, pos: Int, base: Float, neox: Bool) {
        for i in 0..<nRot / 2 {
            let theta = Float(pos) * powf(base, -2 * Float(i) / Float(nRot))
            let (a, b) = neox ? (offset + i, offset + i + nRot / 2) : (offset + 2 * i, offset + 2 * i + 1)
            let x0 = x[a], x1 = x[b]
            x[a] = x0 * cosf(theta) - x1 * sinf(theta)
            x[b] = x0 * sinf(theta) + x1 * cosf(theta)
        }
    }

    /// Logits at every position of `tokens` (rows: positions).
    public func logits(_ tokens: [Int]) -> [[Float]] {
        let c = config, T = tokens.count
        let emb = file.tensors["token_embd.weight"]!
        var x: [[Float]] = tokens.map { t in file.row(emb, t).map { $0 * c.embedScale } }
        for l in 0..<c.nLayers {
            let p = "blk.\(l)."
            let wq = weight(p + "attn_q.weight"), wk = weight(p + "attn_k.weight"), wv = weight(p + "attn_v.weight")
            let wo = weight(p + "attn_output.weight")
            let an = matrix(p + "attn_norm.weight"), fnorm = matrix(p + "ffn_norm.weight")
            let qn = c.qkNorm ? matrix(p + "attn_q_norm.weight") : nil
            let kn = c.qkNorm ? matrix(p + "attn_k_norm.weight") : nil
            let spec = c.layers[l]
            var qs: [[Float]] = [], ks: [[Float]] = [], vs: [[Float]] = []
            for t in 0..<T {
                let h = Self.rmsnorm(x[t], an, eps: c.rmsEps)
                var q = Self.matvec(wq, h, rows: c.qDim)
                var k = Self.matvec(wk, h, rows: c.kvDim)
                var v = Self.matvec(wv, h, rows: c.kvDim)
                for hh in 0..<c.nHeads {
                    if let qn {
                        let n = Self.rmsnorm(Array(q[hh * c.headDim..<(hh + 1) * c.headDim]), qn, eps: c.rmsEps)
                        q.replaceSubrange(hh * c.headDim..<(hh + 1) * c.headDim, with: n)
                    }
                    Self.rope(&q, offset: hh * c.headDim, dim: c.headDim, nRot: c.nRot, pos: t, base: spec.ropeBase, neox: c.ropeNeox)
                }
                for hh in 0..<c.nKVHeads {
                    if let kn {
                        let n = Self.rmsnorm(Array(k[hh * c.headDim..<(hh + 1) * c.headDim]), kn, eps: c.rmsEps)
                        k.replaceSubrange(hh * c.headDim..<(hh + 1) * c.headDim, with: n)
                    }
                    Self.rope(&k, offset: hh * c.headDim, dim: c.headDim, nRot: c.nRot, pos: t, base: spec.ropeBase, neox: c.ropeNeox)
                }
                k = kvRounded(k, heads: c.nKVHeads)
                v = kvRounded(v, heads: c.nKVHeads)
                if kvCache == .q8_0 { q = kvRounded(q, heads: c.nHeads) }
                qs.append(q); ks.append(k); vs.append(v)
            }
            let group = c.nHeads / c.nKVHeads
            for t in 0..<T {
                var att = [Float](repeating: 0, count: c.qDim)
                for hh in 0..<c.nHeads {
                    let kvh = hh / group
                    // The mask, written out: key j is visible iff j <= t and (global or t - j < W).
                    var scores: [Float] = []
                    var js: [Int] = []
                    for j in 0...t {
                        if let w = spec.kind.window, t - j >= w { continue }
                        var s: Float = 0
                        for d in 0..<c.headDim { s += qs[t][hh * c.headDim + d] * ks[j][kvh * c.headDim + d] }
                        scores.append(s * c.attnScale)
                        js.append(j)
                    }
                    let mx = scores.max()!
                    let e = scores.map { expf($0 - mx) }
                    let sum = e.reduce(0, +)
                    for (i, j) in js.enumerated() {
                        for d in 0..<c.headDim { att[hh * c.headDim + d] += e[i] / sum * vs[j][kvh * c.headDim + d] }
                    }
                }
                var o = Self.matvec(wo, att, rows: c.dim)
                if c.postNorms { o = Self.rmsnorm(o, matrix(p + "post_attention_norm.weight"), eps: c.rmsEps) }
                for i in 0..<c.dim { x[t][i] += o[i] }
            }
            let wg = weight(p + "ffn_gate.weight"), wu = weight(p + "ffn_up.weight"), wd = weight(p + "ffn_down.weight")
            let post = c.postNorms ? matrix(p + "post_ffw_norm.weight") : nil
            for t in 0..<T {
                let h = Self.rmsnorm(x[t], fnorm, eps: c.rmsEps)
                let g = Self.matvec(wg, h, rows: c.ffnDim), u = Self.matvec(wu, h, rows: c.ffnDim)
                let a: [Float] = (0..<c.ffnDim).map { i in
                    let v = g[i]
                    switch c.activation {
                    case .geluTanh: return 0.5 * v * (1 + tanhf(0.7978845608 * (v + 0.044715 * v * v * v))) * u[i]
                    case .silu: return v / (1 + expf(-v)) * u[i]
                    }
                }
                var f = Self.matvec(wd, a, rows: c.dim)
                if let post { f = Self.rmsnorm(f, post, eps: c.rmsEps) }
                for i in 0..<c.dim { x[t][i] += f[i] }
            }
        }
        let onorm = matrix("output_norm.weight")
        let out = file.tensors["output.weight"] ?? emb
        let outInt8 = int8Activations && ActivationQuantization.applies(to: Int32(out.type.rawValue))
        return x.map { xt in
            let hn = Self.rmsnorm(xt, onorm, eps: c.rmsEps)
            let blocks = outInt8 ? ActivationQuantization.quantize(hn, for: Int32(out.type.rawValue)) : []
            let h = outInt8 ? ActivationQuantization.dequantize(blocks) : hn
            return (0..<c.vocabSize).map { r in
                let row = file.row(out, r)
                var s: Float = 0
                for j in 0..<c.dim { s += row[j] * h[j] }
                if outInt8 { s += Self.minimumTermCorrection(blockMins(out, blocks: r * c.dim / 32 ..< (r + 1) * c.dim / 32)[...], blocks) }
                return s
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
