// Weights: views into the mmapped GGUF (immutable after load, so Sendable). Norm vectors are copied
// to Float arrays; matrices stay in their quantized block format, and those of a type with a packed
// layout are also packed for products (Q8_0, Gemma 3's output matrix: the int8 GEMM's panels; on the
// AVX2 path Q5_0: rows in planes; see PackedPanels).
import GGUF
import CKernels
import Kernels

public struct LayerWeights: Sendable {
    public let attnNorm: [Float]
    public let wq, wk, wv, wo: WeightMatrix
    public let qNorm: [Float]?, kNorm: [Float]?
    public let postAttnNorm: [Float]?
    public let ffnNorm: [Float]
    public let wGate, wUp, wDown: WeightMatrix
    public let postFfnNorm: [Float]?
}

public final class ModelWeights: @unchecked Sendable {
    public let file: GGUFFile         // keeps the mapping alive
    public let tokenEmbedding: WeightMatrix   // [vocab, dim]
    public let output: WeightMatrix           // [vocab, dim]; the embedding when tied
    public let outputNorm: [Float]
    public let layers: [LayerWeights]
    /// The packed copies products read (PackedPanels; empty with ZEBRA_PACK_WEIGHTS=0).
    public let packed: [PackedPanels]
    /// Bytes of weights a one-row decode step reads: every matrix once (the output matrix once even when
    /// it is the embedding table; an embedding lookup reads one row) and the norm vectors. Divided
    /// into a measured bandwidth it gives the one-stream decode roofline.
    public var bytesPerDecodeStep: Int {
        var n = output.rows * output.rowBytes + outputNorm.count * 4
        for l in layers {
            for w in [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown] { n += w.rows * w.rowBytes }
            n += 4 * (l.attnNorm.count + l.ffnNorm.count + (l.qNorm?.count ?? 0) + (l.kNorm?.count ?? 0)
                      + (l.postAttnNorm?.count ?? 0) + (l.postFfnNorm?.count ?? 0))
        }
        return n
    }
    /// For the bench and the server's start line: how many matrices are packed, and their bytes.
    public var packedDescription: String {
        guard !packed.isEmpty else { return "none" }
        let types = packed.reduce(into: [Int32]()) { if !$0.contains($1.type) { $0.append($1.type) } }
        return types.map { t in
            let of = packed.filter { $0.type == t }
            return "\(of.count) \(String(cString: zk_type_name(t))) (\(of.reduce(0) { $0 + $1.count } >> 20) MiB)"
        }.joined(separator: ", ")
    }

    /// `pack`: whether matrices of a type with a packed layout get one (PackedPanels.enabled: on unless
    /// ZEBRA_PACK_WEIGHTS=0).
    public init(file: GGUFFile, config c: ModelConfig, pack: Bool = PackedPanels.enabled) throws(ModelError) {
        self.file = file
        func matrix(_ name: String, rows: Int, cols: Int) throws(ModelError) -> WeightMatrix {
            let t: GGUFTensorInfo
            do { t = try file.tensor(name) } catch { throw .gguf(error) }
            guard t.dims.count == 2, t.dims[0] == cols, t.dims[1] == rows else {
                throw .gguf(.tensorShapeMismatch(tensor: name, expected: [cols, rows], found: t.dims))
            }
            return WeightMatrix(type: Int32(t.type.rawValue), data: file.data(t), rows: rows, cols: cols)
        }
        func vector(_ name: String, _ n: Int) throws(ModelError) -> [Float] {
            let t: GGUFTensorInfo
            do { t = try file.tensor(name) } catch { throw .gguf(error) }
            guard t.elementCount == n else { throw .gguf(.tensorShapeMismatch(tensor: name, expected: [n], found: t.dims)) }
            return file.floats(t)
        }
        var packed: [PackedPanels] = []
        // The packed copy of a matrix when its type has one; the file's pages of it are then dropped from
        // this process (products no longer read them; an embedding lookup faults its row back in).
        func packing(_ w: WeightMatrix) -> WeightMatrix {
            guard pack, let p = PackedPanels(w) else { return w }  // nil: no packed layout for the type
            packed.append(p)
            file.releasePages(w.data, count: w.rows * w.rowBytes)
            return w.with(p)
        }
        func product(_ name: String, rows: Int, cols: Int) throws(ModelError) -> WeightMatrix {
            packing(try matrix(name, rows: rows, cols: cols))
        }
        tokenEmbedding = try matrix("token_embd.weight", rows: c.vocabSize, cols: c.dim)
        output = file.tensors["output.weight"] == nil ? packing(tokenEmbedding)
            : try product("output.weight", rows: c.vocabSize, cols: c.dim)
        outputNorm = try vector("output_norm.weight", c.dim)
        var layers: [LayerWeights] = []
        for i in 0..<c.nLayers {
            let p = "blk.\(i)."
            layers.append(LayerWeights(
                attnNorm: try vector(p + "attn_norm.weight", c.dim),
                wq: try product(p + "attn_q.weight", rows: c.qDim, cols: c.dim),
                wk: try product(p + "attn_k.weight", rows: c.kvDim, cols: c.dim),
                wv: try product(p + "attn_v.weight", rows: c.kvDim, cols: c.dim),
                wo: try product(p + "attn_output.weight", rows: c.dim, cols: c.qDim),
                qNorm: c.qkNorm ? try vector(p + "attn_q_norm.weight", c.headDim) : nil,
                kNorm: c.qkNorm ? try vector(p + "attn_k_norm.weight", c.headDim) : nil,
                postAttnNorm: c.postNorms ? try vector(p + "post_attention_norm.weight", c.dim) : nil,
                ffnNorm: try vector(p + "ffn_norm.weight", c.dim),
                wGate: try product(p + "ffn_gate.weight", rows: c.ffnDim, cols: c.dim),
                wUp: try product(p + "ffn_up.weight", rows: c.ffnDim, cols: c.dim),
                wDown: try product(p + "ffn_down.weight", rows: c.dim, cols: c.ffnDim),
                postFfnNorm: c.postNorms ? try vector(p + "post_ffw_norm.weight", c.dim) : nil))
        }
        self.layers = layers
        self.packed = packed
    }
}
