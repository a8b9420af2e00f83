// The naive reference forward pass: plain loops over Float arrays, straight from the GGUF file,
// recomputing the whole sequence with an explicit mask (no ring buffer, no blocks, no BLAS, no pool).
// Every fast path is tested against this. K and V are rounded through f16, as the cache stores them;
// inputs of quantized weights are rounded through 8 bits (ActivationQuantization), as the kernels and
// llama.cpp do.
import GGUF
import Kernels

public struct ReferenceModel {
    public let config: ModelConfig
    let file: GGUFFile
    /// Round the inputs of quantized weights through 8 bits (as `Matmul.int8Activations`).
    public let int8Activations: Bool

    public init(file: GGUFFile, config: ModelConfig, int8Activations: Bool = true) {
        self.file = file
        self.config = config
        self.int8Activations = int8Activations
    }

    func matrix(_ name: String) -> [Float] { file.floats(file.tensors[name]!) }

    /// A weight for `matvec`: its floats and whether its products take 8-bit activations.
    struct Weight {
        let w: [Float]
        let int8Input: Bool
        let type: Int32
    }

    func weight(_ name: String) -> Weight {
        let t = file.tensors[name]!
        let type = Int32(t.type.rawValue)
        return Weight(w: file.floats(t), int8Input: int8Activations && ActivationQuantization.applies(to: type), type: type)
    }

    /// y[n] = sum_k W[n][k] x[k] for W stored [N, K] row-major.
    static func matvec(_ m: Weight, _ x: [Float], rows: Int) -> [Float] {
        let w = m.w
        let x = m.int8Input ? ActivationQuantization.roundTrip(x, for: m.type) : x
        let k = x.count
        var y = [Float](repeating: 0, count: rows)
        for n in 0..<rows {
            var s: Float = 0
            for j in 0..<k { s += w[n * k + j] * x[j] }
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
                k = k.map { Float(Float16($0)) }
                v = v.map { Float(Float16($0)) }
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
            let h = outInt8 ? ActivationQuantization.roundTrip(hn, for: Int32(out.type.rawValue)) : hn
            return (0..<c.vocabSize).map { r in
                let row = file.row(out, r)
                var s: Float = 0
                for j in 0..<c.dim { s += row[j] * h[j] }
                return s
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
