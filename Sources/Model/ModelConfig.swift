// Hyperparameters of a model, decoded once from GGUF metadata (MODEL_NOTES.md has the facts).
import GGUF

public enum Architecture: String, Sendable { case gemma3, llama }
public enum Activation: Sendable { case geluTanh, silu }

public struct ModelConfig: Sendable {
    public var architecture: Architecture
    public var nLayers: Int
    public var dim: Int               // hidden size
    public var nHeads: Int
    public var nKVHeads: Int
    public var headDim: Int
    public var ffnDim: Int
    public var vocabSize: Int
    public var contextLength: Int
    public var rmsEps: Float
    public var ropeNeox: Bool         // rotate-half pairs (i, i+d/2) vs adjacent pairs (2i, 2i+1)
    public var nRot: Int              // rotated dims per head
    public var embedScale: Float      // x = E[tok] * embedScale
    public var attnScale: Float       // scores = q.k * attnScale
    public var qkNorm: Bool           // RMSNorm of q and k per head before RoPE (Gemma 3)
    public var postNorms: Bool        // RMSNorm after attention and after FFN (Gemma 3)
    public var activation: Activation
    /// One entry per layer: attention kind and RoPE base.
    public var layers: [LayerSpec]

    public var kvDim: Int { nKVHeads * headDim }
    public var qDim: Int { nHeads * headDim }
    public var globalLayerCount: Int { layers.filter { $0.kind == .global }.count }
    public var slidingLayerCount: Int { layers.count - globalLayerCount }

    public init(file: GGUFFile) throws(ModelError) {
        do {
            guard let archName = file.architecture else { throw ModelError.invalidConfig("missing general.architecture") }
            guard let arch = Architecture(rawValue: archName) else { throw ModelError.unsupportedArchitecture(archName) }
            let p = archName + "."
            architecture = arch
            nLayers = try file.int(p + "block_count")
            dim = try file.int(p + "embedding_length")
            nHeads = try file.int(p + "attention.head_count")
            nKVHeads = try file.int(p + "attention.head_count_kv", default: nHeads)
            ffnDim = try file.int(p + "feed_forward_length")
            contextLength = try file.int(p + "context_length")
            rmsEps = try file.float(p + "attention.layer_norm_rms_epsilon")
            guard nHeads > 0, dim > 0, nLayers > 0, nKVHeads > 0, nHeads % nKVHeads == 0 else {
                throw ModelError.invalidConfig("heads \(nHeads), kv heads \(nKVHeads), dim \(dim), layers \(nLayers)")
            }
            headDim = try file.int(p + "attention.key_length", default: dim / nHeads)
            guard headDim >= 2, headDim % 2 == 0 else { throw ModelError.invalidConfig("head dimension \(headDim) must be even") }
            let vDim = try file.int(p + "attention.value_length", default: headDim)
            guard vDim == headDim else { throw ModelError.invalidConfig("key_length \(headDim) != value_length \(vDim)") }
            nRot = try file.int(p + "rope.dimension_count", default: headDim)
            let embd = try file.tensor("token_embd.weight")
            vocabSize = embd.rowCount
            let ropeBase = try file.float(p + "rope.freq_base", default: 10000)
            switch arch {
            case .gemma3:
                ropeNeox = true
                embedScale = Float(dim).squareRoot()
                attnScale = 1 / Float(headDim).squareRoot()
                qkNorm = true
                postNorms = true
                activation = .geluTanh
                // Groups of 6, the last of each group global (llama.cpp: swa pattern 6); tiny test models
                // may set `gemma3.attention.sliding_window_pattern`.
                let window = try file.int(p + "attention.sliding_window")
                let group = try file.int(p + "attention.sliding_window_pattern", default: 6)
                guard group >= 1, window >= 1 else { throw ModelError.invalidConfig("sliding window \(window), pattern \(group)") }
                let localBase = try file.float(p + "rope.freq_base_swa", default: 10000)
                layers = (0..<nLayers).map { i in
                    i % group == group - 1 ? LayerSpec(kind: .global, ropeBase: ropeBase)
                               : LayerSpec(kind: .sliding(window: window), ropeBase: localBase)
                }
            case .llama:
                ropeNeox = false
                embedScale = 1
                attnScale = 1 / Float(headDim).squareRoot()
                qkNorm = false
                postNorms = false
                activation = .silu
                layers = Array(repeating: LayerSpec(kind: .global, ropeBase: ropeBase), count: nLayers)
            }
        } catch let e as GGUFError {
            throw .gguf(e)
        } catch let e as ModelError {
            throw e
        } catch {
            throw .invalidConfig("\(error)")
        }
    }
}
