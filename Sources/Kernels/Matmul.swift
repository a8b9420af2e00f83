// Matrix products against GGUF weights, parallel over output rows in the kernel pool.
//   y[T, N] = x[T, K] . W[N, K]^T
// Quantized weights (Q4_0 ... Q6_K) multiply 8-bit activations, as llama.cpp does: x is quantized
// once per call into 32-element blocks (zk_q8a) rounded exactly as llama.cpp's activation format for
// that weight type (Q8_0, or Q8_K for K-quants), then either
//   - the int8 row kernels (`.rows`): exact integer block dots, weight blocks reused across a tile of
//     activation rows, so one weight pass serves the whole batch;
//   - the int8 panel GEMM (`.gemm`, and row-route batches where it gives the row kernels' bits), or
//     for a matrix packed at load (`WeightMatrix.packed`: Q8_0) its panels at every row count, with
//     the row kernels' bits; or
//   - OpenBLAS sgemm (`.blas`) on dequantized weight tiles and the dequantized 8-bit activations:
//     the same products, summed in another order (differences ~1e-6 relative).
// Float weights (F32/F16/BF16) use f32 activations: dequantize-row + fixed-order dot, or sgemm.
// Every row's result depends only on its own activation row on the `.rows` route; `.blas` and GEMM
// results may depend on T (OpenBLAS's blocking), so callers give each long item its own call, or one
// call cut into `pieces` computed as separate products (Transformer cuts prompts at KV block
// boundaries): a thread takes each weight tile once, dequantized or in cache, for every piece.
import CKernels
import Glibc
import COpenBLAS

/// Which route a matmul takes; `auto` picks BLAS for `T >= blasMinRows` when that route is enabled.
public enum MatmulRoute: Sendable { case auto, rows, blas, gemm }

public final class Matmul: @unchecked Sendable {
    public let pool: KernelPool
    /// Activations at or above this many rows may go through sgemm (see `blasForQuantized`).
    public var blasMinRows = 32
    /// Whether `.auto` sends long quantized products to sgemm (true) or keeps them on the int8 kernels.
    /// sgemm measures faster for prompt chunks here (616 vs 528 tokens/s at 512 on Gemma 3 270M).
    public var blasForQuantized = true
    /// Whether long quantized products use the int8 panel GEMM where it exists for the type and CPU
    /// (zk_gemm_q8a: every quantized type, AVX-512 VNNI or AVX2) instead of sgemm.
    public var int8Gemm = true
    /// From how many activation rows a row-route product goes through the panel GEMM, per type, for the
    /// types where it computes the row kernels' bits (zk_gemm_matches_rows): each weight panel is
    /// unpacked once and every row then costs a fraction of a row kernel's pass (batched decode,
    /// drafts). Measured on the CPU at hand (`RowsGemmThresholds.measured`), as the crossover differs by
    /// CPU (AMD Zen 3: 2-4 rows; Zen 4 measured slower at 4 than at 8 for Q5_0).
    public var rowsGemm: RowsGemmThresholds
    /// What `rowsGemm` is, for the bench and the server's start line.
    public var rowsGemmDescription: String { rowsGemm.description }
    /// Quantized weights multiply 8-bit activations (true, llama.cpp's arithmetic and the fast decode
    /// route) or f32 ones (false: dequantize-row + f32 dot or sgemm; slower, for accuracy checks).
    public var int8Activations = true
    /// Activations of at most this many elements are quantized on the calling thread, not in the pool.
    public var inlineQuantizeElements = 32_768
    /// Weight rows dequantized per sgemm call (bounds the per-thread scratch).
    let tileRows = 256
    private var scratch: [UnsafeMutablePointer<Float>] = []
    private var scratchCount = 0
    private var xq = GrowingBuffer<zk_q8a>()   // quantized activations
    private var xd = GrowingBuffer<Float>()    // the same, dequantized (sgemm route)
    private var xe = GrowingBuffer<Float>()    // Q8_1: each block's s - d * sum(q) (sgemm route)
    private var xs = GrowingBuffer<Int32>()    // each block's two half sums (int8 GEMM route)
    private let onePiece = UnsafeMutablePointer<Int>.allocate(capacity: 2)  // [0, nt]: a call's one piece

    public init(pool: KernelPool) {
        self.pool = pool
        onePiece[0] = 0
        // A/B of the batched route (0: never; any other value the row count from which every type takes it).
        if let v = getenv("ZEBRA_ROWS_GEMM_MIN").flatMap({ Int(String(cString: $0)) }), v >= 0 {
            rowsGemm = .uniform(v == 0 ? .max : v)
        } else {
            rowsGemm = .measured
        }
        openblas_set_num_threads(1)  // we parallelise ourselves; two spinning pools fight (PLATFORM.md)
    }

    deinit {
        for p in scratch { p.deallocate() }
        xq.deallocate()
        xd.deallocate()
        xe.deallocate()
        xs.deallocate()
        onePiece.deallocate()
    }

    private func ensureScratch(_ floats: Int) {
        if floats <= scratchCount && scratch.count == pool.threadCount { return }
        for p in scratch { p.deallocate() }
        scratchCount = max(floats, scratchCount)
        scratch = (0..<pool.threadCount).map { _ in .allocate(capacity: scratchCount) }
    }

    /// y[t * ldy + n] for t < nt, n < w.rows. `x` is [nt, w.cols] row-major. `pieces`: boundaries
    /// 0 < b1 < ... < nt of rows whose products are computed as if each were its own call (the same
    /// bits), nil for one piece.
    public func callAsFunction(_ w: WeightMatrix, _ x: UnsafePointer<Float>, rows nt: Int,
                               into y: UnsafeMutablePointer<Float>, ldy: Int? = nil, route: MatmulRoute = .auto,
                               pieces: UnsafeBufferPointer<Int>? = nil) {
        let ldy = ldy ?? w.rows
        precondition(ldy >= w.rows)
        guard nt > 0 else { return }
        onePiece[1] = nt
        let p = pieces ?? UnsafeBufferPointer(start: onePiece, count: 2)
        precondition(p.first == 0 && p.last == nt, "pieces cover the rows")
        product(w, x, rows: nt, into: y, ldy: ldy, route: route, pieces: p)
    }

    private func product(_ w: WeightMatrix, _ x: UnsafePointer<Float>, rows nt: Int, into y: UnsafeMutablePointer<Float>,
                         ldy: Int, route: MatmulRoute, pieces: UnsafeBufferPointer<Int>) {
        let quantized = int8Activations && zk_has_int8_kernel(w.type) != 0
        let useBlas = route == .blas || route == .gemm || (route == .auto && nt >= blasMinRows && (blasForQuantized || !quantized))
        var input = x
        var excess: UnsafeMutablePointer<Float>? = nil
        // Threads claim their shares of rows in chunks, taking over a slow thread's rest, where the work
        // per row is large enough (8 activation rows on) that a chunk's extra call costs nothing: one
        // to a few rows stream the weights, and a call's start restarts the stream (KernelPool).
        let chunks = nt >= 8 ? 8 : 1
        if quantized {
            let nb = w.cols / 32
            let q = xq.reserve(nt * nb)
            // Short products take the row kernels; the panel GEMM takes long ones, and (same bits) the
            // row route's batches from rowsGemm's row count where its float order is the row kernels'.
            // Prepacked panels take every row count (the row kernels' bits; sgemm only when asked for).
            let packed = route != .blas ? w.packed : nil
            let panels = packed == nil && (useBlas ? (route == .gemm || (route == .auto && int8Gemm)) && zk_has_int8_gemm(w.type) != 0
                                                   : nt >= rowsGemm.minRows(w.type) && zk_gemm_matches_rows(w.type) != 0)
            // The panel kernels also read each activation block's half sums: computed with the rounding.
            let sums = packed != nil || panels ? xs.reserve(2 * nt * nb) : nil
            let quantize = QuantizeActivations(x: x, q: q, sums: sums, cols: w.cols, format: zk_act_format(w.type))
            // A few rows are quantized by the calling thread: a dispatch there costs more than the work
            // when the other threads are busy elsewhere (the HTTP loop, clients), as on a serving box.
            if nt * w.cols <= inlineQuantizeElements { quantize.run(0..<nt, thread: 0) }
            else { pool.parallelFor(nt, granularity: 8, quantize) }
            if let packed, let sums {
                // Q5_0's packed rows take the row kernels below its calibrated row count on the row route.
                let gemmFrom = useBlas ? 0 : zk_gemm_matches_rows(w.type) != 0 ? rowsGemm.minRows(w.type) : .max
                ensureScratch(Int(zk_gemm_q8a_scratch_bytes(Int64(w.cols))) / 4 + 16)
                pool.parallelFor(w.rows, granularity: 16, chunks: chunks, Int8Packed(w: w, packed: packed, q: q, sums: sums, nt: nt, y: y, ldy: ldy,
                                                                     gemmFrom: gemmFrom, scratch: scratch))
                return
            }
            if !useBlas && !panels {
                pool.parallelFor(w.rows, granularity: 16, chunks: chunks, Int8Rows(w: w, q: q, nt: nt, y: y, ldy: ldy))
                return
            }
            if panels, let sums {
                ensureScratch(Int(zk_gemm_q8a_scratch_bytes(Int64(w.cols))) / 4 + 16)
                pool.parallelFor(w.rows, granularity: 16, chunks: chunks,
                                 Int8Panels(w: w, q: q, sums: sums, nt: nt, y: y, ldy: ldy, scratch: scratch))
                return
            }
            let d = xd.reserve(nt * w.cols)
            if zk_act_format(w.type) == Int32(ZK_ACT_Q8_1.rawValue) { excess = xe.reserve(nt * nb) }
            pool.parallelFor(nt, granularity: 8, DequantizeActivations(q: q, d: d, excess: excess, cols: w.cols))
            input = UnsafePointer(d)
        }
        if useBlas {
            // Per thread: a tile of dequantized rows, then (Q4_1/Q5_1) the tile's block minimums.
            ensureScratch(tileRows * w.cols + tileRows * (w.cols / 32))
            pool.parallelFor(w.rows, granularity: 16, chunks: chunks,
                             SgemmTiles(w: w, x: input, excess: excess, pieces: pieces, y: y, ldy: ldy, tile: tileRows, scratch: scratch))
        } else {
            ensureScratch(w.cols)
            pool.parallelFor(w.rows, granularity: 16, FloatRows(w: w, x: x, nt: nt, y: y, ldy: ldy, scratch: scratch))
        }
    }
}

// The pool jobs of a product (structs, so a dispatch allocates nothing).

/// Rounds activation rows to 8-bit blocks in the weight type's activation format, and where the
/// product needs them (the int8 GEMM's signed types; Q6_K per half, for its scale per 16 elements)
/// the integer sums of each block's halves.
private struct QuantizeActivations: RangeJob {
    let x: UnsafePointer<Float>, q: UnsafeMutablePointer<zk_q8a>, sums: UnsafeMutablePointer<Int32>?
    let cols: Int, format: Int32
    func run(_ range: Range<Int>, thread: Int) {
        let nb = cols / 32
        for t in range { zk_quantize_q8a(x + t * cols, q + t * nb, Int64(cols), format) }
        if let sums { zk_q8a_half_sums(q + range.lowerBound * nb, sums + 2 * range.lowerBound * nb, Int64(range.count * nb)) }
    }
}

/// The int8 row kernels over a range of weight rows, every activation row at once.
private struct Int8Rows: RangeJob {
    let w: WeightMatrix, q: UnsafePointer<zk_q8a>, nt: Int, y: UnsafeMutablePointer<Float>, ldy: Int
    func run(_ range: Range<Int>, thread: Int) {
        _ = zk_matmul_q8a(w.type, w.data, Int64(w.rowBytes), Int64(w.cols), Int64(range.lowerBound),
                          Int64(range.upperBound), q, Int64(nt), y, Int64(ldy))
    }
}

/// The int8 panel GEMM over a range of weight rows (a multiple of 16 but for the last). Every activation
/// row has its own accumulators, summed in the same order whatever the rows beside it (tested:
/// int8GemmIsBatchInvariant), so pieces need no separate calls: all rows go at once.
private struct Int8Panels: RangeJob {
    let w: WeightMatrix, q: UnsafePointer<zk_q8a>, sums: UnsafePointer<Int32>
    let nt: Int, y: UnsafeMutablePointer<Float>, ldy: Int
    let scratch: [UnsafeMutablePointer<Float>]
    func run(_ range: Range<Int>, thread: Int) {
        _ = zk_gemm_q8a(w.type, w.data, Int64(w.rowBytes), Int64(w.cols), Int64(range.lowerBound),
                        Int64(range.upperBound), q, sums, Int64(nt), y, Int64(ldy), scratch[thread])
    }
}

/// The products from prepacked panels over a range of weight rows (ranges start at multiples of 16).
private struct Int8Packed: RangeJob {
    let w: WeightMatrix, packed: UnsafeRawPointer, q: UnsafePointer<zk_q8a>, sums: UnsafePointer<Int32>
    let nt: Int, y: UnsafeMutablePointer<Float>, ldy: Int, gemmFrom: Int, scratch: [UnsafeMutablePointer<Float>]
    func run(_ range: Range<Int>, thread: Int) {
        _ = zk_gemm_packed(w.type, packed, Int64(w.cols), Int64(w.rows), Int64(range.lowerBound), Int64(range.upperBound),
                           q, sums, Int64(nt), y, Int64(ldy), Int64(gemmFrom), scratch[thread])
    }
}

/// 8-bit activations back to f32, for the sgemm route (and, for Q8_1, each block's s - d * sum(q)).
private struct DequantizeActivations: RangeJob {
    let q: UnsafePointer<zk_q8a>, d: UnsafeMutablePointer<Float>, excess: UnsafeMutablePointer<Float>?, cols: Int
    func run(_ range: Range<Int>, thread: Int) {
        let nb = cols / 32
        for t in range {
            zk_dequantize_q8a(q + t * nb, d + t * cols, Int64(cols))
            if let excess { zk_q8a_s_excess(q + t * nb, excess + t * nb, Int64(nb)) }
        }
    }
}

/// sgemm on tiles of dequantized weight rows (each thread its own scratch tile). With Q8_1
/// activations (Q4_1/Q5_1), a second small product adds what the int8 kernels' minimum term has:
/// y[t, r] += sum_b m[r, b] * excess[t, b].
private struct SgemmTiles: RangeJob {
    let w: WeightMatrix, x: UnsafePointer<Float>, excess: UnsafePointer<Float>?
    let pieces: UnsafeBufferPointer<Int>, y: UnsafeMutablePointer<Float>, ldy: Int, tile: Int
    let scratch: [UnsafeMutablePointer<Float>]
    func run(_ range: Range<Int>, thread: Int) {
        let s = scratch[thread], mins = s + tile * w.cols, nb = w.cols / 32
        var r0 = range.lowerBound
        while r0 < range.upperBound {
            let r1 = min(range.upperBound, r0 + tile)
            zk_dequantize_rows(w.type, w.data, Int64(w.rowBytes), Int64(w.cols), Int64(r0), Int64(r1), s)
            let hasMins = excess != nil && zk_block_mins(w.type, w.data, Int64(w.rowBytes), Int64(w.cols), Int64(r0), Int64(r1), mins) != 0
            for i in 0..<pieces.count - 1 {
                let t0 = pieces[i], n = Int32(pieces[i + 1] - t0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, Int32(r1 - r0), Int32(w.cols),
                            1, x + t0 * w.cols, Int32(w.cols), s, Int32(w.cols), 0, y + t0 * ldy + r0, Int32(ldy))
                if hasMins, let excess {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, Int32(r1 - r0), Int32(nb),
                                1, excess + t0 * nb, Int32(nb), mins, Int32(nb), 1, y + t0 * ldy + r0, Int32(ldy))
                }
            }
            r0 = r1
        }
    }
}

/// Float weights with f32 activations: dequantize a row, fixed-order dot.
private struct FloatRows: RangeJob {
    let w: WeightMatrix, x: UnsafePointer<Float>, nt: Int, y: UnsafeMutablePointer<Float>, ldy: Int
    let scratch: [UnsafeMutablePointer<Float>]
    func run(_ range: Range<Int>, thread: Int) {
        zk_matmul_rows(w.type, w.data, Int64(w.rowBytes), Int64(w.cols), Int64(range.lowerBound),
                       Int64(range.upperBound), x, Int64(nt), y, Int64(ldy), scratch[thread])
    }
}

/// Per quantized type, the activation-row count from which a row-route product takes the panel GEMM
/// (same bits as the row kernels, so this only moves time).
public struct RowsGemmThresholds: Sendable, Equatable, CustomStringConvertible {
    /// Type (ggml id) -> fewest rows; a type not listed never takes the GEMM on the row route.
    public var byType: [Int32: Int]
    /// Whether the values were measured here (false: set by ZEBRA_ROWS_GEMM_MIN or by a caller).
    public var calibrated: Bool

    public init(byType: [Int32: Int], calibrated: Bool) { self.byType = byType; self.calibrated = calibrated }

    public func minRows(_ type: Int32) -> Int { byType[type] ?? .max }

    /// The types zk_gemm_matches_rows holds for (ggml ids, ascending), with their names.
    public static let types: [(Int32, String)] = (Int32(0)..<64).filter { zk_gemm_matches_rows($0) != 0 }.map { ($0, String(cString: zk_type_name($0))) }
    /// The most rows the calibration compares (more than the 8 that measured best on AMD Zen 4).
    public static let calibrationMaxRows: Int32 = 12

    /// One row count for every type (`.max`: off).
    public static func uniform(_ n: Int) -> RowsGemmThresholds {
        RowsGemmThresholds(byType: n == .max ? [:] : Dictionary(uniqueKeysWithValues: types.map { ($0.0, n) }), calibrated: false)
    }

    /// Measured once per process, on the first use, on the calling thread (~30 ms on AMD Zen 3): per type
    /// the smallest row count from which the GEMM beats the row kernels at every count up to
    /// `calibrationMaxRows` (zk_rows_gemm_min_rows); a type that could not be measured keeps 8.
    public static let measured: RowsGemmThresholds = {
        var m: [Int32: Int] = [:]
        for (t, _) in types {
            let n = Int(zk_rows_gemm_min_rows(t, calibrationMaxRows))
            m[t] = n > 0 ? n : 8
        }
        return RowsGemmThresholds(byType: m, calibrated: true)
    }()

    /// "from 2 rows (Q4_0, Q5_0, Q8_0), 3 (Q6_K), 4 (Q4_K, Q5_K), calibrated", "from 8 rows", or "off".
    public var description: String {
        if byType.isEmpty { return "off" }
        let named = Self.types.compactMap { t, name in byType[t].map { (n: $0, name: name) } }
        let counts = Set(named.map(\.n)).sorted()
        if counts.count == 1 && !calibrated { return "from \(counts[0]) rows" }
        let parts = counts.enumerated().map { i, n in
            "\(n)\(i == 0 ? " rows" : "") (\(named.filter { $0.n == n }.map(\.name).joined(separator: ", ")))"
        }
        return "from " + parts.joined(separator: ", ") + (calibrated ? ", calibrated" : "")
    }
}
