// The Swift face of the C dequantizers (bit-exact with ggml).
import CKernels

/// Dequantizes `count` values (a multiple of the type's block size) from `src` into `dst`.
public func dequantize(_ type: GGMLType, _ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
    precondition(count % type.blockElements == 0, "count must be a whole number of blocks")
    zk_dequantize(Int32(type.rawValue), src, dst, Int64(count))
}

/// Dequantizes a byte buffer holding whole blocks of `type`.
public func dequantize(_ type: GGMLType, bytes: [UInt8]) -> [Float] {
    let n = bytes.count / type.blockBytes * type.blockElements
    return [Float](unsafeUninitializedCapacity: n) { buf, c in
        bytes.withUnsafeBytes { dequantize(type, $0.baseAddress!, into: buf.baseAddress!, count: n) }
        c = n
    }
}
