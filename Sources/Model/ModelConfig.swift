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

    /// The longest `context_length` accepted: RoPE takes a position as a Float, exact only up to 2^24, and
    /// the attention scratch is sized by the context.
    public static let maxContextLength = 1 << 24
    /// The largest vocabulary accepted (`token_embd` rows), 64 times Gemma 3's: logits and sampling hold a
    /// float per token for every output row.
    public static let maxVocabSize = 1 << 24

    public init(file: GGUFFile) throws(ModelError) {
        do {
            guard let archName = file.architecture else { throw ModelError.invalidConfig("missing general.architecture") }
            guard let arch = Architecture(rawValue: archName) else { throw ModelError.unsupportedArchitecture(archName) }
            let p = archName + "."
            architecture = arch
            // A count or size from the metadata: at least 1 and at most a tensor dimension's Int32.max, so that a
            // product such as nHeads * headDim cannot overflow before the weights' shapes are checked.
            func size(_ key: String, default d: Int? = nil) throws -> Int {
                let v: Int
                if let d { v = try file.int(key, default: d) } else { v = try file.int(key) }
                guard v >= 1, v <= Int(Int32.max) else { throw ModelError.invalidConfig("\(key) is \(v), not in 1...\(Int32.max)") }
                return v
            }
            nLayers = try size(p + "block_count")
            // Each layer has tensors of its own: a count beyond the file's tensors is refused before anything is
            // allocated per layer.
            guard nLayers <= file.tensors.count else {
                throw ModelError.invalidConfig("\(p)block_count is \(nLayers) but the file holds only \(file.tensors.count) tensors")
            }
            dim = try size(p + "embedding_length")
            nHeads = try size(p + "attention.head_count")
            nKVHeads = try size(p + "attention.head_count_kv", default: nHeads)
            guard nHeads % nKVHeads == 0 else {
                throw ModelError.invalidConfig("\(p)attention.head_count \(nHeads) is not a multiple of attention.head_count_kv \(nKVHeads)")
            }
            ffnDim = try size(p + "feed_forward_length")
            contextLength = try size(p + "context_length")
            guard contextLength <= Self.maxContextLength else {
                throw ModelError.invalidConfig("\(p)context_length is \(contextLength), more than the \(Self.maxContextLength) positions supported")
            }
            rmsEps = try file.float(p + "attention.layer_norm_rms_epsilon")
            if file.metadata[p + "attention.key_length"] == nil {
                guard dim % nHeads == 0 else {
                    throw ModelError.invalidConfig("\(p)embedding_length \(dim) is not a multiple of attention.head_count \(nHeads) (and attention.key_length is not set)")
                }
                headDim = dim / nHeads
            } else {
                headDim = try size(p + "attention.key_length")
            }
            guard headDim >= 2, headDim % 2 == 0 else { throw ModelError.invalidConfig("head dimension \(headDim) must be even") }
            let vDim = try file.int(p + "attention.value_length", default: headDim)
            guard vDim == headDim else { throw ModelError.invalidConfig("key_length \(headDim) != value_length \(vDim)") }
            // RoPE rotates pairs within a head: more dimensions than the head has would write past it.
            nRot = try size(p + "rope.dimension_count", default: headDim)
            guard nRot % 2 == 0, nRot <= headDim else {
                throw ModelError.invalidConfig("\(p)rope.dimension_count \(nRot) must be even and at most the head dimension \(headDim)")
            }
            let embd = try file.tensor("token_embd.weight")
            vocabSize = embd.rowCount
            guard vocabSize <= Self.maxVocabSize else {
                throw ModelError.invalidConfig("token_embd.weight has \(vocabSize) rows (one per token), more than the \(Self.maxVocabSize) tokens supported")
            }
            // One embedding row per token, as llama.cpp requires (token_embd is {n_embd, n_vocab}): other ids would
            // be sampled without text, or looked up in rows that are not there.
            if let tokens = file.metadata["tokenizer.ggml.tokens"]?.array, tokens.count != vocabSize {
                throw ModelError.invalidConfig("tokenizer.ggml.tokens has \(tokens.count) tokens but token_embd.weight has \(vocabSize) rows (one per token)")
            }
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
                let window = try size(p + "attention.sliding_window")
                let group = try size(p + "attention.sliding_window_pattern", default: 6)
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
