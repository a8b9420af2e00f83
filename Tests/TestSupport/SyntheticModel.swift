// A tiny synthetic Gemma 3-style GGUF: 3 layers (2 sliding with window 4, then 1 global), random
// weights in a mix of quantization types, and a small SentencePiece vocabulary with byte fallback.
import Foundation
import GGUF

public enum SyntheticModel {
    public static let dim = 64, heads = 2, kvHeads = 1, headDim = 32, ffn = 256, layers = 3, window = 4

    /// The vocabulary: 4 specials, 256 byte tokens, then letters and a few words.
    public static let vocab: [String] = {
        var v = ["<pad>", "<eos>", "<bos>", "<unk>"]
        for b in 0..<256 { v.append(String(format: "<0x%02X>", b)) }
        for c in "abcdefghijklmnopqrstuvwxyz" { v.append(String(c)) }
        v += ["\u{2581}", "\u{2581}the", "\u{2581}a", "he", "th", "in", "er", "an", "<start_of_turn>", "<end_of_turn>"]
        return v
    }()

    struct Rng {
        var s: UInt64
        mutating func next() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24) }
    }

    /// Offsets of the f16 scale fields in one block, kept small and finite.
    static func halfFields(_ t: GGMLType) -> [Int] {
        switch t {
        case .q4_0, .q5_0, .q8_0: [0]
        case .q4_1, .q5_1, .q4_K, .q5_K: [0, 2]
        case .q6_K: [208]
        default: []
        }
    }

    /// Random weights of `type` with `rows` x `cols` elements.
    static func randomTensor(_ name: String, rows: Int, cols: Int, type: GGMLType, rng: inout Rng) -> GGUFWriter.Tensor {
        let count = rows * cols
        var bytes: [UInt8]
        switch type {
        case .f32:
            bytes = []
            for _ in 0..<count { withUnsafeBytes(of: rng.uniform(-0.2, 0.2).bitPattern) { bytes += $0 } }
        case .f16:
            bytes = []
            for _ in 0..<count { withUnsafeBytes(of: Float16(rng.uniform(-0.2, 0.2)).bitPattern) { bytes += $0 } }
        case .bf16:
            bytes = []
            for _ in 0..<count { withUnsafeBytes(of: UInt16(rng.uniform(-0.2, 0.2).bitPattern >> 16)) { bytes += $0 } }
        default:
            let nb = count / type.blockElements
            bytes = (0..<nb * type.blockBytes).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let scale: Float = type.blockElements == 256 ? 0.0005 : 0.02
            for b in 0..<nb {
                for off in halfFields(type) {
                    let h = Float16(rng.uniform(scale * 0.5, scale)).bitPattern
                    bytes[b * type.blockBytes + off] = UInt8(h & 0xFF)
                    bytes[b * type.blockBytes + off + 1] = UInt8(h >> 8)
                }
            }
        }
        return GGUFWriter.Tensor(name: name, dims: [cols, rows], type: type, bytes: bytes)
    }

    /// Serialized GGUF bytes of the synthetic model.
    public static func bytes(seed: UInt64 = 7, context: Int = 256) -> [UInt8] {
        writer(seed: seed, context: context).serialize()
    }

    /// The synthetic model before serialization, for tests that change its metadata or tensors.
    public static func writer(seed: UInt64 = 7, context: Int = 256) -> GGUFWriter {
        var rng = Rng(s: seed)
        var w = GGUFWriter()
        let a = "gemma3."
        w.add("general.architecture", .string("gemma3"))
        w.add("general.name", .string("zebra-synthetic"))
        w.add(a + "context_length", .uint32(UInt32(context)))
        w.add(a + "embedding_length", .uint32(UInt32(dim)))
        w.add(a + "block_count", .uint32(UInt32(layers)))
        w.add(a + "feed_forward_length", .uint32(UInt32(ffn)))
        w.add(a + "attention.head_count", .uint32(UInt32(heads)))
        w.add(a + "attention.head_count_kv", .uint32(UInt32(kvHeads)))
        w.add(a + "attention.key_length", .uint32(UInt32(headDim)))
        w.add(a + "attention.value_length", .uint32(UInt32(headDim)))
        w.add(a + "attention.layer_norm_rms_epsilon", .float32(1e-6))
        w.add(a + "rope.freq_base", .float32(1_000_000))
        w.add(a + "attention.sliding_window", .uint32(UInt32(window)))
        w.add(a + "attention.sliding_window_pattern", .uint32(3))
        w.add("tokenizer.ggml.model", .string("llama"))
        w.add("tokenizer.ggml.tokens", .array(vocab.map { .string($0) }))
        w.add("tokenizer.ggml.scores", .array(vocab.enumerated().map { i, _ in .float32(-Float(i)) }))
        w.add("tokenizer.ggml.token_type", .array(vocab.enumerated().map { i, t in
            .int32(i < 4 || t.hasPrefix("<start") || t.hasPrefix("<end") ? 3 : (i < 260 ? 6 : 1))
        }))
        w.add("tokenizer.ggml.bos_token_id", .uint32(2))
        w.add("tokenizer.ggml.eos_token_id", .uint32(1))
        w.add("tokenizer.ggml.unknown_token_id", .uint32(3))
        w.add("tokenizer.ggml.add_bos_token", .bool(true))
        w.add("tokenizer.ggml.add_space_prefix", .bool(false))
        let norm = { (n: Int, rng: inout Rng) -> [Float] in (0..<n).map { _ in rng.uniform(0.8, 1.2) } }
        w.tensors.append(randomTensor("token_embd.weight", rows: vocab.count, cols: dim, type: .q8_0, rng: &rng))
        w.addF32("output_norm.weight", dims: [dim], norm(dim, &rng))
        let mix: [(GGMLType, GGMLType, GGMLType, GGMLType, GGMLType, GGMLType, GGMLType)] = [
            (.q5_0, .q4_0, .q8_0, .q4_1, .q5_1, .f16, .q6_K),
            (.q8_0, .q5_1, .q4_1, .f32, .q4_0, .q5_0, .q4_K),
            (.bf16, .q8_0, .q5_0, .q8_0, .q8_0, .q4_1, .q5_K),
        ]
        for l in 0..<layers {
            let p = "blk.\(l)."
            let (tq, tk, tv, to, tg, tu, td) = mix[l]
            w.addF32(p + "attn_norm.weight", dims: [dim], norm(dim, &rng))
            w.tensors.append(randomTensor(p + "attn_q.weight", rows: heads * headDim, cols: dim, type: tq, rng: &rng))
            w.tensors.append(randomTensor(p + "attn_k.weight", rows: kvHeads * headDim, cols: dim, type: tk, rng: &rng))
            w.tensors.append(randomTensor(p + "attn_v.weight", rows: kvHeads * headDim, cols: dim, type: tv, rng: &rng))
            w.tensors.append(randomTensor(p + "attn_output.weight", rows: dim, cols: heads * headDim, type: to, rng: &rng))
            w.addF32(p + "attn_q_norm.weight", dims: [headDim], norm(headDim, &rng))
            w.addF32(p + "attn_k_norm.weight", dims: [headDim], norm(headDim, &rng))
            w.addF32(p + "post_attention_norm.weight", dims: [dim], norm(dim, &rng))
            w.addF32(p + "ffn_norm.weight", dims: [dim], norm(dim, &rng))
            w.tensors.append(randomTensor(p + "ffn_gate.weight", rows: ffn, cols: dim, type: tg, rng: &rng))
            w.tensors.append(randomTensor(p + "ffn_up.weight", rows: ffn, cols: dim, type: tu, rng: &rng))
            w.tensors.append(randomTensor(p + "ffn_down.weight", rows: dim, cols: ffn, type: td, rng: &rng))
            w.addF32(p + "post_ffw_norm.weight", dims: [dim], norm(dim, &rng))
        }
        return w
    }

    /// Writes the synthetic model to a temporary file and returns its path.
    public static func write(seed: UInt64 = 7, context: Int = 256) throws -> String {
        let path = ScratchFiles.path("synthetic-\(seed)-\(context)", suffix: ".gguf")
        try Data(bytes(seed: seed, context: context)).write(to: URL(fileURLWithPath: path))
        return path
    }
}
