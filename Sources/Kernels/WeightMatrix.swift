// A read-only view of a 2-D weight in GGUF layout: `rows` rows of `cols` elements, row-major,
// in a GGML block format. Points into the mmapped model file, so it is valid as long as the file.
import CKernels

public struct WeightMatrix: @unchecked Sendable {
    /// GGML type id (see `zk_type`).
    public let type: Int32
    public let data: UnsafeRawPointer
    public let rows: Int      // N: output features
    public let cols: Int      // K: input features
    public let rowBytes: Int

    public init(type: Int32, data: UnsafeRawPointer, rows: Int, cols: Int) {
        precondition(zk_block_elems(type) > 0, "unsupported weight type \(type)")
        precondition(cols % Int(zk_block_elems(type)) == 0, "row length not a whole number of blocks")
        self.type = type
        self.data = data
        self.rows = rows
        self.cols = cols
        self.rowBytes = cols / Int(zk_block_elems(type)) * Int(zk_block_bytes(type))
    }

    /// Dequantizes row `r` into `dst` (`cols` floats).
    public func dequantizeRow(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        precondition(r >= 0 && r < rows)
        zk_dequantize(type, data + r * rowBytes, dst, Int64(cols))
    }
}
