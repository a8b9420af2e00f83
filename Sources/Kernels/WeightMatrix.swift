// A read-only view of a 2-D weight in GGUF layout: `rows` rows of `cols` elements, row-major,
// in a GGML block format. Points into the mmapped model file, so it is valid as long as the file.
// `packed`, where set, holds the same weights prepacked into the int8 GEMM's panels (PackedPanels):
// products read it instead of `data` (the same bits); row lookups (embeddings) still read `data`.
import CKernels
import Glibc

public struct WeightMatrix: @unchecked Sendable {
    /// GGML type id (see `zk_type`).
    public let type: Int32
    public let data: UnsafeRawPointer
    public let rows: Int      // N: output features
    public let cols: Int      // K: input features
    public let rowBytes: Int
    public let packed: UnsafeRawPointer?

    public init(type: Int32, data: UnsafeRawPointer, rows: Int, cols: Int, packed: UnsafeRawPointer? = nil) {
        precondition(zk_block_elems(type) > 0, "unsupported weight type \(type)")
        precondition(cols % Int(zk_block_elems(type)) == 0, "row length not a whole number of blocks")
        self.type = type
        self.data = data
        self.rows = rows
        self.cols = cols
        self.rowBytes = cols / Int(zk_block_elems(type)) * Int(zk_block_bytes(type))
        self.packed = packed
    }

    /// This matrix with products read from `panels`.
    public func with(_ panels: PackedPanels) -> WeightMatrix {
        WeightMatrix(type: type, data: data, rows: rows, cols: cols, packed: UnsafeRawPointer(panels.bytes))
    }

    /// Dequantizes row `r` into `dst` (`cols` floats).
    public func dequantizeRow(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        precondition(r >= 0 && r < rows)
        zk_dequantize(type, data + r * rowBytes, dst, Int64(cols))
    }
}

/// A matrix's weights prepacked once, at load (zk_pack_panels; as many bytes as the GGUF layout): Q8_0
/// into the int8 GEMM's panels (a product against the file's layout rearranges every 16 rows into a
/// panel first: for Gemma 3's 262144-row output matrix, about a third of a batched decode
/// step's head), and on the AVX2 path Q5_0 rows into planes its row kernels decode with fewer
/// operations. Every row count reads the packed weights, with the row kernels' bits. Owns its memory
/// (anonymous, huge pages where the kernel gives them).
public final class PackedPanels: @unchecked Sendable {
    public let bytes: UnsafeMutableRawPointer
    public let count: Int
    /// The matrix's GGML type id.
    public let type: Int32

    /// Whether models pack their weights: on unless ZEBRA_PACK_WEIGHTS is 0 or off (for A/B).
    public static var enabled: Bool {
        guard let v = getenv("ZEBRA_PACK_WEIGHTS").map({ String(cString: $0) }) else { return true }
        return v != "0" && v != "off"
    }

    /// Packs `w`, or nil when its type has no packed layout or the memory is not there.
    public init?(_ w: WeightMatrix) {
        let n = Int(zk_packed_bytes(w.type, Int64(w.rows), Int64(w.cols)))
        guard n > 0, let p = mmap(nil, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED
        else { return nil }
        _ = madvise(p, n, 14)  // MADV_HUGEPAGE: one streamed pass per step, fewer TLB misses (a hint)
        zk_pack_panels(w.type, w.data, Int64(w.rowBytes), Int64(w.cols), Int64(w.rows), 0, Int64((w.rows + 15) / 16), p)
        _ = mprotect(p, n, PROT_READ)
        bytes = p
        count = n
        type = w.type
    }

    deinit { munmap(bytes, count) }
}
