// Matrix products against quantized weights, parallel over output rows in the kernel pool.
//   y[T, N] = x[T, K] . W[N, K]^T
// Small T (decode): per-row dequantize + fixed-order dot, so each output depends only on its own row
// of x (batch-invariant). Large T (prompt chunks): dequantize a tile of W and call OpenBLAS sgemm.
import CKernels
import COpenBLAS

/// Which route a matmul takes; `auto` picks BLAS for `T >= blasMinRows`.
public enum MatmulRoute: Sendable { case auto, rows, blas }

public final class Matmul: @unchecked Sendable {
    public let pool: KernelPool
    /// Activations at or above this many rows go through sgemm.
    public var blasMinRows = 32
    /// Weight rows dequantized per sgemm call (bounds the per-thread scratch).
    let tileRows = 256
    private var scratch: [UnsafeMutablePointer<Float>] = []
    private var scratchCount = 0

    public init(pool: KernelPool) {
        self.pool = pool
        openblas_set_num_threads(1)  // we parallelise ourselves; two spinning pools fight (PLATFORM.md)
    }

    deinit { for p in scratch { p.deallocate() } }

    private func ensureScratch(_ floats: Int) {
        if floats <= scratchCount && scratch.count == pool.threadCount { return }
        for p in scratch { p.deallocate() }
        scratchCount = max(floats, scratchCount)
        scratch = (0..<pool.threadCount).map { _ in .allocate(capacity: scratchCount) }
    }

    /// y[t * ldy + n] for t < nt, n < w.rows. `x` is [nt, w.cols] row-major.
    public func callAsFunction(_ w: WeightMatrix, _ x: UnsafePointer<Float>, rows nt: Int,
                               into y: UnsafeMutablePointer<Float>, ldy: Int? = nil, route: MatmulRoute = .auto) {
        let ldy = ldy ?? w.rows
        precondition(ldy >= w.rows)
        let useBlas = route == .blas || (route == .auto && nt >= blasMinRows)
        if useBlas {
            ensureScratch(tileRows * w.cols)
            let tile = tileRows
            pool.parallelFor(w.rows, granularity: 16) { range, thread in
                let s = scratch[thread]
                var r0 = range.lowerBound
                while r0 < range.upperBound {
                    let r1 = min(range.upperBound, r0 + tile)
                    zk_dequantize_rows(w.type, w.data, Int64(w.rowBytes), Int64(w.cols), Int64(r0), Int64(r1), s)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(nt), Int32(r1 - r0), Int32(w.cols),
                                1, x, Int32(w.cols), s, Int32(w.cols), 0, y + r0, Int32(ldy))
                    r0 = r1
                }
            }
        } else {
            ensureScratch(w.cols)
            pool.parallelFor(w.rows, granularity: 16) { range, thread in
                let s = scratch[thread]
                zk_matmul_rows(w.type, w.data, Int64(w.rowBytes), Int64(w.cols),
                               Int64(range.lowerBound), Int64(range.upperBound), x, Int64(nt), y, Int64(ldy), s)
            }
        }
    }
}
