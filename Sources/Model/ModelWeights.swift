// Weights: views into the mmapped GGUF (immutable after load, so Sendable). Norm vectors are copied
// to Float arrays; matrices stay in their quantized block format.
import GGUF
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

    public init(file: GGUFFile, config c: ModelConfig) throws(ModelError) {
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
        tokenEmbedding = try matrix("token_embd.weight", rows: c.vocabSize, cols: c.dim)
        output = file.tensors["output.weight"] == nil ? tokenEmbedding
            : try matrix("output.weight", rows: c.vocabSize, cols: c.dim)
        outputNorm = try vector("output_norm.weight", c.dim)
        var layers: [LayerWeights] = []
        for i in 0..<c.nLayers {
            let p = "blk.\(i)."
            layers.append(LayerWeights(
                attnNorm: try vector(p + "attn_norm.weight", c.dim),
                wq: try matrix(p + "attn_q.weight", rows: c.qDim, cols: c.dim),
                wk: try matrix(p + "attn_k.weight", rows: c.kvDim, cols: c.dim),
                wv: try matrix(p + "attn_v.weight", rows: c.kvDim, cols: c.dim),
                wo: try matrix(p + "attn_output.weight", rows: c.dim, cols: c.qDim),
                qNorm: c.qkNorm ? try vector(p + "attn_q_norm.weight", c.headDim) : nil,
                kNorm: c.qkNorm ? try vector(p + "attn_k_norm.weight", c.headDim) : nil,
                postAttnNorm: c.postNorms ? try vector(p + "post_attention_norm.weight", c.dim) : nil,
                ffnNorm: try vector(p + "ffn_norm.weight", c.dim),
                wGate: try matrix(p + "ffn_gate.weight", rows: c.ffnDim, cols: c.dim),
                wUp: try matrix(p + "ffn_up.weight", rows: c.ffnDim, cols: c.dim),
                wDown: try matrix(p + "ffn_down.weight", rows: c.dim, cols: c.ffnDim),
                postFfnNorm: c.postNorms ? try vector(p + "post_ffw_norm.weight", c.dim) : nil))
        }
        self.layers = layers
    }
}
