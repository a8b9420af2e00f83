// Tensor element types of GGML, with their block geometry (ggml.h `enum ggml_type`).
import CKernels

/// A tensor's element type. Quantized types store blocks of `blockElements` values in `blockBytes` bytes.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8
    case q4_K = 12, q5_K = 13, q6_K = 14, bf16 = 30

    public var blockElements: Int { Int(zk_block_elems(Int32(rawValue))) }
    public var blockBytes: Int { Int(zk_block_bytes(Int32(rawValue))) }
    public var name: String {
        switch self {
        case .f32: "F32"; case .f16: "F16"; case .bf16: "BF16"
        case .q4_0: "Q4_0"; case .q4_1: "Q4_1"; case .q5_0: "Q5_0"; case .q5_1: "Q5_1"; case .q8_0: "Q8_0"
        case .q4_K: "Q4_K"; case .q5_K: "Q5_K"; case .q6_K: "Q6_K"
        }
    }

    /// Bytes taken by `elements` values (a multiple of `blockElements`).
    public func bytes(forElements elements: Int) -> Int { elements / blockElements * blockBytes }
}
