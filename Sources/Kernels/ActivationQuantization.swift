// The plain reference for the 8-bit activations the quantized kernels multiply (zk_q8a), rounded as
// llama.cpp's activation formats: Q8_0 / Q8_1 (per 32: d = max|x| / 127 kept in f16, q = x * 127 /
// max|x| to nearest even) and Q8_K (per 256: iscale = -127 / the largest-magnitude value, q = x *
// iscale to nearest even, at most 127, d = 1 / iscale). Each block also carries s, the sum its
// weights' minimum term multiplies: d * sum(q), except Q8_1 (Q4_1/Q5_1 weights), which stores
// f16(max|x| / 127 * sum(q)) as ggml does. The naive forward pass and the kernel tests use this;
// `zk_quantize_q8a` must reproduce it bit for bit.
import CKernels

public enum ActivationQuantization {
    /// Whether products with weights of this GGML type use 8-bit activations.
    public static func applies(to type: Int32) -> Bool { zk_has_int8_kernel(type) != 0 }

    public typealias Block = (d: Float, q: [Int8], s: Float)

    /// (d, q, s) per 32-element block for weights of `type`; `x.count` must be a multiple of the block.
    public static func quantize(_ x: [Float], for type: Int32) -> [Block] {
        let format = zk_act_format(type)
        if format == Int32(ZK_ACT_Q8_K.rawValue) {
            precondition(x.count % 256 == 0)
            return stride(from: 0, to: x.count, by: 256).flatMap { sb -> [Block] in
                var amax: Float = 0, mx: Float = 0
                for i in sb..<sb + 256 where abs(x[i]) > amax { amax = abs(x[i]); mx = x[i] }
                if amax == 0 { return (0..<8).map { _ in (Float(0), [Int8](repeating: 0, count: 32), Float(0)) } }
                let iscale = -127 / mx, d = 1 / iscale
                return (0..<8).map { b in
                    let q = (0..<32).map { j in Int8(min(127, (iscale * x[sb + b * 32 + j]).rounded(.toNearestOrEven))) }
                    return (d, q, d * Float(q.reduce(0) { $0 + Int($1) }))
                }
            }
        }
        precondition(x.count % 32 == 0)
        return stride(from: 0, to: x.count, by: 32).map { b in
            var amax: Float = 0
            for i in b..<b + 32 { amax = max(amax, abs(x[i])) }
            let id: Float = amax != 0 ? 127 / amax : 0
            let q = (b..<b + 32).map { Int8((x[$0] * id).rounded(.toNearestOrEven)) }
            let d = Float(Float16(amax / 127)), sum = Float(q.reduce(0) { $0 + Int($1) })
            let s = format == Int32(ZK_ACT_Q8_1.rawValue) ? Float(Float16(amax / 127 * sum)) : d * sum
            return (d, q, s)
        }
    }

    /// The blocks' values as floats: d * q for every element (x rounded through 8 bits).
    public static func dequantize(_ blocks: [Block]) -> [Float] {
        blocks.flatMap { blk in blk.q.map { blk.d * Float($0) } }
    }
}
