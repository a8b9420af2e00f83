// Every fast kernel against a plain reference: matmul routes (row kernels, BLAS) for every weight type,
// norms, RoPE, attention over segmented f16 and q8_0 caches, and the pool's work split.
import CKernels
import Foundation
import Kernels
import Synchronization
import Testing

struct Rng {
    var s: UInt64
    mutating func next() -> UInt64 {
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return s >> 11
    }
    mutating func float() -> Float { Float(next() % 2_000_001) / 1_000_000 - 1 }
}

/// Random valid blocks of `type` (finite f16 scales); with `fill`, every byte but the f16 scales is it.
func randomWeights(type: Int32, rows: Int, cols: Int, rng: inout Rng, fill: UInt8? = nil) -> [UInt8] {
    let be = Int(zk_block_elems(type)), bb = Int(zk_block_bytes(type))
    if type == 0 { return (0..<rows * cols).flatMap { _ in withUnsafeBytes(of: rng.float()) { Array($0) } } }
    var b = (0..<rows * cols / be * bb).map { _ in fill ?? UInt8(truncatingIfNeeded: rng.next()) }
    let fields: [Int]
    switch type {
    case 1: return (0..<rows * cols).flatMap { _ in withUnsafeBytes(of: Float16(rng.float()).bitPattern) { Array($0) } }
    case 30: return (0..<rows * cols).flatMap { _ in withUnsafeBytes(of: UInt16(rng.float().bitPattern >> 16)) { Array($0) } }
    case 2, 6, 8: fields = [0]
    case 3, 7, 12, 13: fields = [0, 2]
    case 14: fields = [208]
    default: fields = []
    }
    for blk in 0..<b.count / bb {
        for off in fields {
            let h = Float16(Float(rng.next() % 1000 + 1) / 100_000).bitPattern
            b[blk * bb + off] = UInt8(h & 0xFF); b[blk * bb + off + 1] = UInt8(h >> 8)
        }
    }
    return b
}

let pool = KernelPool(threads: 2)
let allTypes: [Int32] = [0, 1, 30, 2, 3, 6, 7, 8, 12, 13, 14]

/// The naive product: dequantize each row; activations through the plain 8-bit reference where the
/// type uses int8 kernels; double-precision loops.
func naiveProduct(_ w: WeightMatrix, _ x: [Float], nt: Int) -> [Double] {
    let cols = w.cols, rows = w.rows
    var xs = x
    var blocks: [[ActivationQuantization.Block]] = []
    if ActivationQuantization.applies(to: w.type) {
        blocks = (0..<nt).map { t in ActivationQuantization.quantize(Array(x[t * cols..<(t + 1) * cols]), for: w.type) }
        xs = blocks.flatMap(ActivationQuantization.dequantize)
    }
    // Q4_1/Q5_1 (llama.cpp's Q8_1 activations): the minimum term multiplies the stored s (f16).
    let q81 = !blocks.isEmpty && zk_act_format(w.type) == Int32(ZK_ACT_Q8_1.rawValue)
    let bb = Int(zk_block_bytes(w.type))
    var deq = [Float](repeating: 0, count: cols)
    var want = [Double](repeating: 0, count: nt * rows)
    for r in 0..<rows {
        deq.withUnsafeMutableBufferPointer { w.dequantizeRow(r, into: $0.baseAddress!) }
        for t in 0..<nt {
            var s = 0.0
            for k in 0..<cols { s += Double(deq[k]) * Double(xs[t * cols + k]) }
            if q81 {
                for (b, blk) in blocks[t].enumerated() {
                    let m = Double(Float16(bitPattern: w.data.loadUnaligned(fromByteOffset: r * w.rowBytes + b * bb + 2, as: UInt16.self)))
                    s += m * (Double(blk.s) - Double(blk.d) * Double(blk.q.reduce(0) { $0 + Int($1) }))
                }
            }
            want[t * rows + r] = s
        }
    }
    return want
}

@Test(arguments: allTypes)
func matmulRoutesMatchNaive(type: Int32) {
    var rng = Rng(s: UInt64(type) + 1)
    let blockK = zk_block_elems(type) == 256
    // Edge shapes: one block, odd row counts, tiles of 4 activation rows plus remainders.
    let shapes = [(1, 1, 256), (17, 3, 512), (300, 1, 512), (300, 40, 256), (33, 64, 768), (5, 5, 32), (9, 7, 96)]
    for (rows, nt, cols) in shapes where !blockK || cols % 256 == 0 {
        let bytes = randomWeights(type: type, rows: rows, cols: cols, rng: &rng)
        let x = (0..<nt * cols).map { _ in rng.float() * (rng.next() % 7 == 0 ? 30 : 1) }
        bytes.withUnsafeBytes { wb in
            let w = WeightMatrix(type: type, data: wb.baseAddress!, rows: rows, cols: cols)
            let want = naiveProduct(w, x, nt: nt)
            let mm = Matmul(pool: pool)
            for route in [MatmulRoute.rows, .blas, .gemm] {
                var y = [Float](repeating: .nan, count: nt * rows)
                x.withUnsafeBufferPointer { xp in
                    y.withUnsafeMutableBufferPointer { mm(w, xp.baseAddress!, rows: nt, into: $0.baseAddress!, route: route) }
                }
                let scale = want.map(abs).max()! + 1e-9
                let err = zip(y, want).map { abs(Double($0) - $1) }.max()! / scale
                #expect(err < 1e-5, "type \(type) rows \(rows) nt \(nt) cols \(cols) route \(route): rel err \(err)")
            }
        }
    }
}

/// Whether this CPU runs the AVX-512 VNNI kernels (tests of that path are skipped, visibly, elsewhere).
let cpuHasVNNI = String(cString: zk_kernel_path()) == "avx512-vnni"

/// Inputs for the panel GEMM tests: `rows` weight rows whose first 16 (one panel) hold the largest
/// weight bytes, `nt` activation rows of which the first two are +-1 throughout (quantized to +-127:
/// the int16 sums' worst cases), quantized in the type's activation format, with their half-block sums
/// and a GEMM scratch.
struct GemmInputs {
    let bytes: [UInt8], rowBytes: Int64, q: [zk_q8a], sums: [Int32]
    var scratch: [UInt8]
    init(type: Int32, rows: Int, cols: Int, nt: Int, rng: inout Rng) {
        let nb = cols / 32
        let largest: UInt8 = type == 8 ? 0x80 : 0xFF  // Q8_0: -128; others: every quantity bit set
        bytes = randomWeights(type: type, rows: 16, cols: cols, rng: &rng, fill: largest)
            + randomWeights(type: type, rows: rows - 16, cols: cols, rng: &rng)
        rowBytes = Int64(bytes.count / rows)
        var x = (0..<nt * cols).map { _ in rng.float() }
        for i in 0..<cols { x[i] = 1; x[cols + i] = -1 }
        var q = [zk_q8a](repeating: zk_q8a(), count: nt * nb)
        q.withUnsafeMutableBufferPointer { zk_quantize_q8a(x, $0.baseAddress!, Int64(nt * cols), zk_act_format(type)) }
        var sums = [Int32](repeating: 0, count: 2 * nt * nb)
        zk_q8a_half_sums(q, &sums, Int64(nt * nb))
        self.q = q
        self.sums = sums
        scratch = [UInt8](repeating: 0, count: Int(zk_gemm_q8a_scratch_bytes(Int64(cols))))
    }
}

/// The int8 panel GEMM (prompt chunks): a row's result does not depend on the other activation rows
/// in the call or on how the weight rows are split, bit for bit, on each kernel path; and the AVX2
/// path (int16 sums before widening) gives the AVX-512 VNNI path's bits. The first panel holds the
/// largest weight bytes and the first two activation rows are +-127 throughout: the int16 bounds'
/// worst cases.
@Test(arguments: allTypes.filter { zk_has_int8_kernel($0) != 0 })
func int8GemmIsBatchInvariant(type: Int32) {
    #expect(zk_has_int8_gemm(type) != 0)
    let native = String(cString: zk_kernel_path())
    defer { _ = zk_force_kernel_path(native == "avx512-vnni" ? 1 : 0) }
    var rng = Rng(s: UInt64(type) + 500)
    let rows = 40, cols = 512, nt = 13, nb = cols / 32
    var g = GemmInputs(type: type, rows: rows, cols: cols, nt: nt, rng: &rng)
    let (bytes, rowBytes, q, sums) = (g.bytes, g.rowBytes, g.q, g.sums)
    var results: [[Float]] = []
    for vnni: Int32 in [0, 1] where zk_force_kernel_path(vnni) != 0 {
        var all = [Float](repeating: .nan, count: nt * rows), pieces = all, single = all
        #expect(zk_gemm_q8a(type, bytes, rowBytes, Int64(cols), 0, Int64(rows), q, sums, Int64(nt), &all, Int64(rows), &g.scratch) == 1)
        for (r0, r1) in [(0, 16), (16, 32), (32, 40)] {
            pieces.withUnsafeMutableBufferPointer {
                _ = zk_gemm_q8a(type, bytes, rowBytes, Int64(cols), Int64(r0), Int64(r1), q, sums, Int64(nt), $0.baseAddress!, Int64(rows), &g.scratch)
            }
        }
        for t in 0..<nt {
            q.withUnsafeBufferPointer { qp in
                single.withUnsafeMutableBufferPointer {
                    _ = zk_gemm_q8a(type, bytes, rowBytes, Int64(cols), 0, Int64(rows), qp.baseAddress! + t * nb,
                                    Array(sums[2 * t * nb..<2 * (t + 1) * nb]), 1,
                                    $0.baseAddress! + t * rows, Int64(rows), &g.scratch)
                }
            }
        }
        #expect(all == pieces && all == single, "type \(type) vnni \(vnni)")
        results.append(all)
    }
    #expect(results.count == (cpuHasVNNI ? 2 : 1), "both paths ran where the CPU has both")
    if results.count == 2 { #expect(results[0] == results[1], "type \(type): AVX2 and AVX-512 differ") }
}

/// The AMX tiles (16 activation rows by a panel of 16 weight rows, one tile product per block) give the
/// VNNI tiles' bits for every int8 type, with partial panels, split row ranges and activation rows
/// past a multiple of 16; the Q8_0 prepacked panels too. The C emulation of the tile instructions
/// (which checks their shapes as the hardware does) runs on any AVX-512 CPU; the instructions
/// themselves where the CPU has AMX and Linux grants it.
@Test(.enabled(if: cpuHasVNNI, "AMX tiles sit on the AVX-512 path"), arguments: allTypes.filter { zk_has_int8_kernel($0) != 0 })
func amxTilesGiveTheVNNIBits(type: Int32) {
    defer { _ = zk_force_amx(-1) }
    var rng = Rng(s: UInt64(type) + 900)
    let rows = 37, cols = 512, nt = 35
    var g = GemmInputs(type: type, rows: rows, cols: cols, nt: nt, rng: &rng)
    let (bytes, rowBytes, q, sums) = (g.bytes, g.rowBytes, g.q, g.sums)
    var packed = [UInt8](repeating: 0, count: Int(zk_packed_bytes(type, Int64(rows), Int64(cols))))
    if !packed.isEmpty { zk_pack_panels(type, bytes, rowBytes, Int64(cols), Int64(rows), 0, 3, &packed) }
    func gemm(_ n: Int, packedPanels: Bool) -> [Float] {
        var y = [Float](repeating: .nan, count: n * rows)
        for (r0, r1) in [(0, 16), (16, 37)] {
            y.withUnsafeMutableBufferPointer { yp in
                let ok = packedPanels
                    ? zk_gemm_packed(type, packed, Int64(cols), Int64(rows), Int64(r0), Int64(r1), q, sums, Int64(n), yp.baseAddress!, Int64(rows), 0, nil)
                    : zk_gemm_q8a(type, bytes, rowBytes, Int64(cols), Int64(r0), Int64(r1), q, sums, Int64(n), yp.baseAddress!, Int64(rows), &g.scratch)
                #expect(ok == 1)
            }
        }
        return y
    }
    let modes: [Int32] = [2] + (String(cString: zk_gemm_tiles()) == "amx-int8" ? [1] : [])
    for n in [16, 19, 32, 35] {
        for packedPanels in packed.isEmpty ? [false] : [false, true] {
            #expect(zk_force_amx(0) == 1)
            let vnni = gemm(n, packedPanels: packedPanels)
            for mode in modes {
                #expect(zk_force_amx(mode) == 1)
                let before = zk_amx_emulated_products()
                let amx = gemm(n, packedPanels: packedPanels)
                let same = amx == vnni
                #expect(same, "type \(type) rows \(n) packed \(packedPanels) AMX mode \(mode)")
                if mode == 2 {  // every full tile of 16 took the tiles: blocks x panels (x 2 for Q6_K's halves)
                    let tiles = Int64(n / 16 * 3 * (cols / 32) * (type == 14 ? 2 : 1))
                    #expect(zk_amx_emulated_products() - before == tiles, "type \(type) rows \(n)")
                }
            }
        }
    }
}

/// The start-up self-check that stands between AMX and every product: the emulated tiles pass it; on a
/// CPU without AMX the real tile instructions raise SIGILL, which the check traps and reports instead
/// of dying (what the detection does with a CPU or kernel that refuses them); where the detection
/// chose AMX the hardware passed it.
@Test(.enabled(if: cpuHasVNNI, "AMX tiles sit on the AVX-512 path"))
func amxSelfCheckTrapsAndCompares() {
    func check(_ mode: Int32) -> (Int32, String) {
        var why = [CChar](repeating: 0, count: 160)
        let ok = zk_amx_self_check(mode, &why, Int64(why.count))
        return (ok, String(cString: why))
    }
    let status = String(cString: zk_amx_status())
    #expect(!status.hasPrefix("the self-check failed"), "\(status)")
    let emulated = check(2)
    #expect(emulated.0 == 1, "\(emulated.1)")
    if status == "amx-int8" {
        let hw = check(1)
        #expect(hw.0 == 1, "\(hw.1)")
    } else if status == "the CPU has no AMX-INT8" {
        let hw = check(1)
        #expect(hw.0 == 0 && hw.1.hasPrefix("SIGILL in the tiles on Q8_0"), "\(hw.1)")
    }
    #expect(check(0).0 == 0)
}

@Test(arguments: [Int32(8), 3, 12])  // Q8_0, Q8_1 (for a Q4_1 weight) and Q8_K activation formats
func activationQuantizationMatchesReferenceBitForBit(type: Int32) {
    var rng = Rng(s: 77)
    var x = (0..<256 * 5).map { _ in rng.float() * Float(rng.next() % 100) }
    for i in 0..<256 { x[i] = 0 }                      // an all-zero block (and super-block): d = 0, q = 0
    for i in 256..<288 { x[i] = Float(i - 272) * 0.5 }  // exact halves: ties to even
    x[300] = -500; x[301] = 500                        // equal magnitudes: the first one's sign sets Q8_K's scale
    let want = ActivationQuantization.quantize(x, for: type)
    var got = [zk_q8a](repeating: zk_q8a(), count: x.count / 32)
    zk_quantize_q8a(x, &got, Int64(x.count), zk_act_format(type))
    for b in 0..<got.count {
        #expect(got[b].d == want[b].d, "block \(b)")
        let q = withUnsafeBytes(of: got[b].q) { Array($0.bindMemory(to: Int8.self)) }
        #expect(q == want[b].q, "block \(b)")
        #expect(got[b].s == want[b].s, "block \(b)")
        // The kernel's s against its own d and q, independently of the reference: d times the block's
        // integer sum (Q8_1: amax / 127 times the sum, before d's rounding, kept in f16 as llama.cpp does).
        let sum = Float(q.reduce(0) { $0 + Int($1) })
        if type == 3 { #expect(got[b].s == Float(Float16(got[b].s)), "block \(b): Q8_1 keeps s in f16") }
        else { #expect(got[b].s == got[b].d * sum, "block \(b)") }
    }
}

/// The AVX-512 VNNI kernels (Q4_0/Q5_0 with the 4-block decode where the CPU has VBMI and BITALG, and
/// with the pair decode) and the AVX2 ones compute the same integer dots and the same float sequence:
/// bit-identical results (checked where this CPU has VNNI); on each path an activation row's results
/// do not depend on the tile it lands in (rows alone = rows together). An odd block count checks the
/// kernels that take blocks in pairs.
@Test(arguments: allTypes.filter { zk_has_int8_kernel($0) != 0 })
func int8KernelPathsAgreeBitForBit(type: Int32) {
    let native = String(cString: zk_kernel_path())
    defer { _ = zk_force_kernel_path(native == "avx512-vnni" ? 1 : 0) }
    var rng = Rng(s: UInt64(type) + 100)
    // Every tile remainder: 1-7 activation rows after full tiles of 8 (AVX-512) or 4 (AVX2).
    // 4096 columns and 12 rows: two chunks of the 4-block decode's activation layout.
    for (cols, nt) in [(512, 6), (544, 9), (512, 3), (256, 7), (256, 5), (512, 2), (256, 12), (4096, 12)]
    where zk_block_elems(type) != 256 || cols % 256 == 0 {
        let rows = 37, nb = cols / 32
        let bytes = randomWeights(type: type, rows: rows, cols: cols, rng: &rng)
        let x = (0..<nt * cols).map { _ in rng.float() }
        var q = [zk_q8a](repeating: zk_q8a(), count: nt * nb)
        for t in 0..<nt { q.withUnsafeMutableBufferPointer { zk_quantize_q8a(Array(x[t * cols..<(t + 1) * cols]), $0.baseAddress! + t * nb, Int64(cols), zk_act_format(type)) } }
        var results: [[Float]] = []
        for path: Int32 in [0, 1, 2] where zk_force_kernel_path(path) != 0 {
            var y = [Float](repeating: .nan, count: nt * rows), alone = y
            bytes.withUnsafeBytes { wb in
                let w = wb.baseAddress!, rb = Int64(bytes.count / rows)
                #expect(zk_matmul_q8a(type, w, rb, Int64(cols), 0, Int64(rows), q, Int64(nt), &y, Int64(rows)) == 1)
                q.withUnsafeBufferPointer { qp in
                    alone.withUnsafeMutableBufferPointer { ap in
                        for t in 0..<nt {
                            _ = zk_matmul_q8a(type, w, rb, Int64(cols), 0, Int64(rows), qp.baseAddress! + t * nb, 1, ap.baseAddress! + t * rows, Int64(rows))
                        }
                    }
                }
            }
            #expect(y == alone, "type \(type) cols \(cols) path \(path): a row's result depends on its tile")
            results.append(y)
        }
        #expect(results.count == (cpuHasVNNI ? 3 : 1), "every path ran where the CPU has them")
        for (i, r) in results.enumerated().dropFirst() { #expect(r == results[0], "type \(type) cols \(cols): path \(i) differs from AVX2") }
        #expect(zk_matmul_q8a(0, bytes, 4, 32, 0, 1, q, 1, &results[0], 1) == 0)  // F32: no int8 kernel
    }
}

/// Forcing a kernel path is the calling thread's business: the pool's workers (which run every other
/// test's model at the same time) keep the CPU's path.
@Test(.enabled(if: cpuHasVNNI, "an AVX2-only CPU has no other kernel path to force"))
func forcedKernelPathStaysOnItsThread() {
    let native = String(cString: zk_kernel_path())
    defer { _ = zk_force_kernel_path(native == "avx512-vnni" ? 1 : 0) }
    let other: Int32 = native == "avx512-vnni" ? 0 : 1
    #expect(zk_force_kernel_path(other) != 0)
    #expect(String(cString: zk_kernel_path()) != native)
    let seen = UnsafeMutablePointer<Int32>.allocate(capacity: pool.threadCount)
    defer { seen.deallocate() }
    pool.run { t, _ in seen[t] = String(cString: zk_kernel_path()) == native ? 1 : 0 }
    for t in 1..<pool.threadCount { #expect(seen[t] == 1, "worker \(t)") }  // (thread 0 is this one)
}

/// The vectorized gated activations (sigmoid form, zk_exp8) against the textbook formulas in double.
@Test func gatedActivationsMatchNaive() {
    let n = 8 * 300 + 5  // a vector tail too
    let g = (0..<n).map { Float(-30.0 + 60.0 * Double($0) / Double(n - 1)) }
    let u = (0..<n).map { Float(1.0 + Double($0 % 7) / 7.0) }
    var y = [Float](repeating: 0, count: n)
    zk_gelu_mul(g, u, &y, Int64(n))
    for i in 0..<n {
        let v = Double(g[i])
        let want = 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))) * Double(u[i])
        #expect(abs(Double(y[i]) - want) <= 2e-6 * max(1, abs(want)), "gelu(\(v))")
    }
    zk_silu_mul(g, u, &y, Int64(n))
    for i in 0..<n {
        let v = Double(g[i])
        let want = v / (1 + exp(-v)) * Double(u[i])
        #expect(abs(Double(y[i]) - want) <= 2e-6 * max(1, abs(want)), "silu(\(v))")
    }
}

@Test func rmsnormAndRopeMatchNaive() {
    var rng = Rng(s: 9)
    let x = (0..<256).map { _ in rng.float() }, w = (0..<256).map { _ in rng.float() }
    var y = [Float](repeating: 0, count: 256)
    zk_rmsnorm(x, w, &y, 256, 1e-6)
    let ms = x.map { Double($0) * Double($0) }.reduce(0, +) / 256
    for i in 0..<256 { #expect(abs(Double(y[i]) - Double(x[i]) / (ms + 1e-6).squareRoot() * Double(w[i])) < 1e-5) }
    for neox in [Int32(0), 1] {
        var r = x
        zk_rope(&r, 1, 256, 256, 37, 10000, neox)
        // Three heads at once (stride 300) equal three single-head calls.
        var three = [Float](repeating: 0, count: 900)
        for h in 0..<3 { for i in 0..<256 { three[h * 300 + i] = x[(i + 50 * h) % 256] } }
        var singles = three
        zk_rope(&three, 3, 300, 256, 37, 10000, neox)
        for h in 0..<3 { singles.withUnsafeMutableBufferPointer { zk_rope($0.baseAddress! + h * 300, 1, 300, 256, 37, 10000, neox) } }
        #expect(three == singles)
        // The per-step table (angles once per base, every layer applies them) gives the same bits.
        var table = [Float](repeating: 0, count: 256), applied = x
        zk_rope_table(37, 10000, 256, &table)
        zk_rope_apply(&applied, 1, 256, 256, table, neox)
        #expect(applied == r)
        for i in 0..<128 {
            let theta = 37 * pow(10000.0, -2 * Double(i) / 256)
            let (a, b) = neox == 1 ? (i, i + 128) : (2 * i, 2 * i + 1)
            #expect(abs(Double(r[a]) - (Double(x[a]) * cos(theta) - Double(x[b]) * sin(theta))) < 1e-4)
            #expect(abs(Double(r[b]) - (Double(x[a]) * sin(theta) + Double(x[b]) * cos(theta))) < 1e-4)
        }
    }
}

/// Grouped-query attention over key/value segments (g heads sharing one KV head, keys in chunks of
/// ZK_ATT_CHUNK) against plain double loops over the stored rows read back (and, for q8_0, the query
/// rounded the same way); chunks spread and merged give the same bits as one call; the AVX-512 and
/// AVX2 variants give the same bits (AVX-512 takes 4 keys at a time for f16 and 16 for q8_0: groups of
/// 4 heads, groups split by segment ends, tails).
func checkAttention(type: Int32, g: Int, d: Int, n: Int) {
    var rng = Rng(s: UInt64(g * 1000 + d + n) &+ UInt64(type) &* 77)
    let hb = Int(zk_kv_head_bytes(type, Int64(d))), stride = hb + 48  // rows with other heads' bytes between
    var keys = [UInt8](repeating: 0, count: n * stride), vals = keys
    var kf = [Float](repeating: 0, count: n * d), vf = kf
    for j in 0..<n {
        let kr = (0..<d).map { _ in rng.float() }, vr = (0..<d).map { _ in rng.float() }
        keys.withUnsafeMutableBytes { zk_kv_store_row(type, kr, $0.baseAddress! + j * stride, 1, Int64(d)) }
        vals.withUnsafeMutableBytes { zk_kv_store_row(type, vr, $0.baseAddress! + j * stride, 1, Int64(d)) }
        kf.withUnsafeMutableBufferPointer { o in keys.withUnsafeBytes { zk_kv_load_row(type, $0.baseAddress! + j * stride, o.baseAddress! + j * d, 1, Int64(d)) } }
        vf.withUnsafeMutableBufferPointer { o in vals.withUnsafeBytes { zk_kv_load_row(type, $0.baseAddress! + j * stride, o.baseAddress! + j * d, 1, Int64(d)) } }
    }
    let q = (0..<g * d).map { _ in rng.float() }
    var qs = q  // the query as scored: q8_0 rounds it as it rounds keys
    if type == Int32(ZK_KV_Q8_0.rawValue) {
        var b = [UInt8](repeating: 0, count: g * hb)
        zk_kv_store_row(type, q, &b, Int64(g), Int64(d))
        zk_kv_load_row(type, b, &qs, Int64(g), Int64(d))
    }
    let scale: Float = 0.125
    var want = [Double](repeating: 0, count: g * d)
    var minSum = Double.infinity  // the softmax denominator with the largest term 1, least over heads
    for h in 0..<g {
        var scores = [Double](repeating: 0, count: n)
        for j in 0..<n {
            var dot = 0.0
            for i in 0..<d { dot += Double(qs[h * d + i]) * Double(kf[j * d + i]) }
            scores[j] = dot * Double(scale)
        }
        let mx = scores.max()!
        scores = scores.map { exp($0 - mx) }
        let sum = scores.reduce(0, +)
        minSum = min(minSum, sum)
        for j in 0..<n { for k in 0..<d { want[h * d + k] += scores[j] / sum * Double(vf[j * d + k]) } }
    }
    let chunk = Int(ZK_ATT_CHUNK), chunks = (n + chunk - 1) / chunk, ps = g * (d + 2)
    // q8_0 sums values with 16-bit weights, each within half a step of 1/32767 of its chunk's largest
    // (weight <= 1, times the block scale): per key at most 0.5 / 32767 * max|v| off, over the
    // denominator (a rigorous bound; the worst case measured here, 1.2e-5, is about half of it).
    let maxV = Double(vf.map { abs($0) }.max() ?? 0)
    let tolerance = 1e-5 + (type == Int32(ZK_KV_Q8_0.rawValue) ? 0.5 / 32767 * Double(n) * maxV / minSum : 0)
    let native = String(cString: zk_kernel_path())
    defer { _ = zk_force_kernel_path(native == "avx512-vnni" ? 1 : 0) }
    var results: [[Float]] = []
    keys.withUnsafeBytes { kb in
        vals.withUnsafeBytes { vb in
            let k = kb.baseAddress!, v = vb.baseAddress!
            // Split the same keys into three runs, as a ring or block table would.
            let cut1 = min(10, n), cut2 = min(30, n)
            let segs = [zk_kv_segment(k: k, v: v, n: Int64(cut1)),
                        zk_kv_segment(k: k + cut1 * stride, v: v + cut1 * stride, n: Int64(cut2 - cut1)),
                        zk_kv_segment(k: k + cut2 * stride, v: v + cut2 * stride, n: Int64(n - cut2))]
            #expect(zk_kv_count(segs, 3) == Int64(n))
            for avx512: Int32 in [0, 1] where zk_force_kernel_path(avx512) != 0 {
                var out = [Float](repeating: .nan, count: g * d)
                var sc = [Float](repeating: .nan, count: Int(zk_attend_scratch_floats(Int64(g), Int64(d))))
                var parts = [Float](repeating: 0, count: chunks * ps)
                zk_attend(type, q, Int64(g), Int64(d), scale, segs, 3, Int64(stride), &sc, &parts, &out)
                for i in 0..<g * d { #expect(abs(Double(out[i]) - want[i]) < tolerance, "type \(type) g \(g) d \(d) n \(n) [\(i)]") }
                // The chunks one by one (as spread over threads), in reverse order, then merged; and in
                // two runs (a thread's share of a split query).
                for runs in [(0..<chunks).reversed().map { $0..<$0 + 1 }, [0..<chunks / 2, chunks / 2..<chunks]] {
                    var split = [Float](repeating: .nan, count: chunks * ps)
                    for r in runs where !r.isEmpty {
                        split.withUnsafeMutableBufferPointer { sp in
                            zk_attend_chunks(type, q, Int64(g), Int64(d), scale, segs, 3, Int64(stride), Int64(r.lowerBound),
                                             Int64(r.upperBound), &sc, sp.baseAddress! + r.lowerBound * ps)
                        }
                    }
                    var merged = [Float](repeating: .nan, count: g * d)
                    zk_attend_merge(split, Int64(chunks), Int64(g), Int64(d), &merged)
                    #expect(merged == out)
                    // Heads merged in two shares (as spread over threads): the same bits.
                    var shared = [Float](repeating: .nan, count: g * d)
                    zk_attend_merge_heads(split, Int64(chunks), Int64(g), Int64(d), 0, Int64(g / 2), &shared)
                    zk_attend_merge_heads(split, Int64(chunks), Int64(g), Int64(d), Int64(g / 2), Int64(g), &shared)
                    #expect(shared == out)
                }
                results.append(out)
            }
        }
    }
    #expect(results.count == (cpuHasVNNI ? 2 : 1), "both paths ran where the CPU has both")
    if results.count == 2 { #expect(results[0] == results[1], "type \(type): AVX-512 and AVX2 differ") }
}

/// f16: keys by 3 with heads by 4 and the rest (SmolLM2's 3 heads of 64; 4 + 2), one at a time at the
/// chunk's tail or where the dimension is not a multiple of 16.
@Test(arguments: [(1, 64, 37), (4, 256, 600), (8, 48, 301), (3, 72, 300), (5, 16, 257), (2, 40, 256), (3, 64, 300),
                  (6, 32, 259)])
func attentionOverF16SegmentsMatchesNaive(g: Int, d: Int, n: Int) {
    checkAttention(type: Int32(ZK_KV_F16.rawValue), g: g, d: d, n: n)
}

/// The q8_0 cache: exact int8 block dots against the quantized query (VNNI, or maddubs on AVX2), keys in
/// batches of 16 / 8 and one at a time, heads by 4; odd groups, one head, 8 heads, tails and segment ends.
@Test(arguments: [(1, 64, 37), (4, 256, 600), (8, 32, 301), (3, 96, 300), (5, 32, 257), (2, 64, 256), (4, 128, 7)])
func attentionOverQ8SegmentsMatchesNaive(g: Int, d: Int, n: Int) {
    checkAttention(type: Int32(ZK_KV_Q8_0.rawValue), g: g, d: d, n: n)
}

/// q8_0 rows as llama.cpp's quantize_row_q8_0 makes them: per 32 values d = f16(max|x| / 127) and
/// q = x * 127 / max|x| rounded to nearest even; f16 rows as Float16(x); both read back exactly.
@Test func kvRowsStoreAndLoad() {
    var rng = Rng(s: 99)
    let heads = 3, d = 64
    var x = (0..<heads * d).map { _ in rng.float() * 3 }
    for i in 32..<64 { x[i] = 0 }  // an all-zero block: d = 0, q = 0
    x[70] = 5  // a block whose maximum is exactly 127 steps
    let q8 = Int32(ZK_KV_Q8_0.rawValue), f16 = Int32(ZK_KV_F16.rawValue)
    #expect(zk_kv_head_bytes(q8, 256) == 272 && zk_kv_head_bytes(f16, 256) == 512)
    var b = [UInt8](repeating: 0, count: heads * Int(zk_kv_head_bytes(q8, Int64(d))))
    zk_kv_store_row(q8, x, &b, Int64(heads), Int64(d))
    var back = [Float](repeating: .nan, count: x.count)
    zk_kv_load_row(q8, b, &back, Int64(heads), Int64(d))
    let hb = d + d / 16
    for h in 0..<heads {
        for blk in 0..<d / 32 {
            let xs = x[(h * d + blk * 32)..<(h * d + blk * 32 + 32)]
            let amax = xs.map { abs($0) }.max()!
            let dh = Float16(amax / 127)
            let stored = UInt16(b[h * hb + d + 2 * blk]) | UInt16(b[h * hb + d + 2 * blk + 1]) << 8
            #expect(stored == dh.bitPattern)
            for (i, v) in xs.enumerated() {
                let want = amax == 0 ? 0 : Int8((v * (127 / amax)).rounded(.toNearestOrEven))
                #expect(Int8(bitPattern: b[h * hb + blk * 32 + i]) == want)
                #expect(back[h * d + blk * 32 + i] == Float(dh) * Float(want))
            }
        }
    }
    var h16 = [UInt8](repeating: 0, count: heads * d * 2)
    zk_kv_store_row(f16, x, &h16, Int64(heads), Int64(d))
    zk_kv_load_row(f16, h16, &back, Int64(heads), Int64(d))
    #expect(back == x.map { Float(Float16($0)) })
}

@Test func parallelForCoversEveryIndexOnce() {
    let five = KernelPool(threads: 5)  // more threads than cores: shares taken by whoever runs
    defer { five.shutdown() }
    for p5 in [pool, five] {
        for count in [0, 1, 2, 3, 15, 16, 17, 1000] {
            for g in [1, 16] {
                for chunks in [1, 3, 8] {
                    var hits = [Int](repeating: 0, count: count)
                    hits.withUnsafeMutableBufferPointer { h in
                        let p = h.baseAddress!
                        p5.parallelFor(count, granularity: g, chunks: chunks) { r, _ in for i in r { p[i] += 1 } }
                    }
                    #expect(hits.allSatisfy { $0 == 1 }, "threads \(p5.threadCount) count \(count) granularity \(g) chunks \(chunks)")
                }
            }
        }
    }
}

/// A thread that stalls does not hold up its whole share: once thread 1 holds a range, it waits in it
/// until every other index is done, which happens only if thread 0 takes the rest of thread 1's share
/// (a static split leaves it waiting out the 10 s limit, and fails). Ranges stay granularity-aligned.
@Test func parallelForLetsIdleThreadsTakeAStalledThreadsShare() {
    let count = 1000, g = 4
    let done = Atomic<Int>(0)
    let firstOfThread1 = Atomic<Int>(-1)
    var owner = [Int](repeating: -1, count: count)
    var misaligned = 0
    owner.withUnsafeMutableBufferPointer { o in
        let p = o.baseAddress!
        pool.parallelFor(count, granularity: g, chunks: 8) { r, t in
            if r.lowerBound % g != 0 { misaligned += 1 }
            for i in r { p[i] = t }
            let deadline = Date().addingTimeInterval(10)
            if t == 1, firstOfThread1.compareExchange(expected: -1, desired: r.count, ordering: .relaxed).exchanged {
                while done.load(ordering: .acquiring) < count - r.count, Date() < deadline { usleep(100) }
            }
            // (Thread 0 first waits for thread 1 to hold a range, so that there is one to stall in.)
            while t == 0, firstOfThread1.load(ordering: .relaxed) < 0, Date() < deadline { usleep(100) }
            done.add(r.count, ordering: .releasing)
        }
    }
    #expect(done.load(ordering: .relaxed) == count)
    #expect(misaligned == 0)
    let stalled = firstOfThread1.load(ordering: .relaxed)
    #expect(stalled > 0 && owner.filter { $0 == 1 }.count == stalled, "thread 1 did only the range it stalled in")
}

@Test func f16RoundTrip() {
    let xs: [Float] = [0, 1, -2.5, 65504, 1e-5, 3.14159]
    var h = [UInt16](repeating: 0, count: xs.count)
    var back = [Float](repeating: 0, count: xs.count)
    zk_f32_to_f16_row(xs, &h, Int64(xs.count))
    zk_f16_to_f32_row(h, &back, Int64(xs.count))
    for (a, b) in zip(xs, back) { #expect(Float(Float16(a)) == b) }
}

@Test func logSumExpMatchesDouble() {
    var rng = Rng(s: 31)
    for n in [1, 7, 8, 17, 262_144] {
        let x = (0..<n).map { _ in rng.float() * 30 }
        let mx = Double(x.max()!)
        let want = mx + log(x.map { exp(Double($0) - mx) }.reduce(0, +))
        #expect(abs(Double(zk_logsumexp(x, Int64(n))) - want) < 1e-5 * max(1, abs(want)), "n \(n)")
    }
    #expect(zk_logsumexp([-Float.infinity, -.infinity], 2) == -.infinity)
    #expect(abs(zk_logsumexp([-200, 0, -1000], 3)) < 1e-6)  // very negative inputs underflow to 0, not NaN
}

/// A call cut into pieces computes each piece as its own call would, bit for bit, on every route
/// (the Transformer cuts prompts at KV block boundaries so a cached prefix continues exactly).
@Test(arguments: [Int32(12), 3, 14, 8])   // Q4_K, Q4_1 (Q8_1 activations: the minimum-term product too), Q6_K, Q8_0
func matmulPiecesEqualSeparateCalls(type: Int32) {
    var rng = Rng(s: UInt64(type) + 900)
    let rows = 300, cols = 256, nt = 29
    let bytes = randomWeights(type: type, rows: rows, cols: cols, rng: &rng)
    let x = (0..<nt * cols).map { _ in rng.float() }
    let mm = Matmul(pool: KernelPool(threads: 2))
    let bounds = [0, 8, 13, 29]
    for route in [MatmulRoute.blas, .gemm, .rows] {
        var whole = [Float](repeating: .nan, count: nt * rows), apart = whole
        bytes.withUnsafeBytes { wb in
            let w = WeightMatrix(type: type, data: wb.baseAddress!, rows: rows, cols: cols)
            bounds.withUnsafeBufferPointer { b in mm(w, x, rows: nt, into: &whole, route: route, pieces: b) }
            apart.withUnsafeMutableBufferPointer { ap in
                x.withUnsafeBufferPointer { xp in
                    for i in 0..<bounds.count - 1 {
                        mm(w, xp.baseAddress! + bounds[i] * cols, rows: bounds[i + 1] - bounds[i],
                           into: ap.baseAddress! + bounds[i] * rows, route: route)
                    }
                }
            }
        }
        #expect(whole == apart, "type \(type) route \(route): a piece's result depends on the rows beside it")
    }
}

/// For Q8_0, Q4_0, Q5_0 and the K-quants (Q4_K, Q5_K, Q6_K) the row kernels and the panel GEMM share
/// one float order (block b's float operations on accumulator b mod 8, the eight added in a fixed
/// tree), so `Matmul` may send a decode batch to either: bit for bit equal on every path (AVX2, AVX-512
/// with the 4-block decode and with the pair decode), at every activation row count (row-kernel tiles
/// and remainders, GEMM tiles), for block counts that leave every kind of short last group (3, 17, 20,
/// 23 blocks; the K-quants: 1, 2, 3 and 8 super-blocks), with the largest weight bytes and +-127
/// activations in the first rows.
@Test(arguments: [Int32(8), 2, 6, 12, 13, 14])
func rowKernelsAndGemmAgree(type: Int32) {
    #expect(zk_gemm_matches_rows(type) != 0)
    let native = String(cString: zk_kernel_path())
    defer { _ = zk_force_kernel_path(native == "avx512-vnni" ? 1 : 0) }
    var rng = Rng(s: UInt64(type) + 1300)
    for cols in zk_block_elems(type) == 256 ? [256, 512, 768, 2048] : [96, 544, 640, 736] {
        let rows = 37, nt = 20
        var g = GemmInputs(type: type, rows: rows, cols: cols, nt: nt, rng: &rng)
        let (bytes, rowBytes, q, sums) = (g.bytes, g.rowBytes, g.q, g.sums)
        var results: [[Float]] = []
        for path: Int32 in [0, 1, 2] where zk_force_kernel_path(path) != 0 {
            for n in 1...nt {
                var byRows = [Float](repeating: .nan, count: n * rows), byGemm = byRows
                #expect(zk_matmul_q8a(type, bytes, rowBytes, Int64(cols), 0, Int64(rows), q, Int64(n), &byRows, Int64(rows)) == 1)
                #expect(zk_gemm_q8a(type, bytes, rowBytes, Int64(cols), 0, Int64(rows), q, sums, Int64(n), &byGemm, Int64(rows), &g.scratch) == 1)
                let same = byRows == byGemm  // (not the arrays themselves in a failure message)
                #expect(same, "type \(type) cols \(cols) path \(path) rows \(n)")
                if n == nt { results.append(byRows) }
            }
        }
        #expect(results.count == (cpuHasVNNI ? 3 : 1), "every path ran where the CPU has them")
        for (i, r) in results.enumerated().dropFirst() { #expect(r == results[0], "type \(type) cols \(cols): path \(i) differs from AVX2") }
    }
    for other: Int32 in [3, 7] { #expect(zk_gemm_matches_rows(other) == 0) }  // Q4_1, Q5_1: llama.cpp's order
}

/// Through `Matmul`: a row-route batch at and past `rowsGemmMinRows` (the panel GEMM) gives each row
/// what it gets alone (the row kernels).
@Test(arguments: [Int32(8), 6, 12, 14])
func batchedRowRouteMatchesRowsAlone(type: Int32) {
    var rng = Rng(s: UInt64(type) + 1400)
    let rows = 300, cols = zk_block_elems(type) == 256 ? 1024 : 640, nt = 24
    let bytes = randomWeights(type: type, rows: rows, cols: cols, rng: &rng)
    let x = (0..<nt * cols).map { _ in rng.float() }
    let mm = Matmul(pool: KernelPool(threads: 2))
    #expect(mm.rowsGemm.minRows(type) <= Int(RowsGemmThresholds.calibrationMaxRows) + 1)
    var batched = [Float](repeating: .nan, count: nt * rows), alone = batched
    bytes.withUnsafeBytes { wb in
        let w = WeightMatrix(type: type, data: wb.baseAddress!, rows: rows, cols: cols)
        mm(w, x, rows: nt, into: &batched, route: .rows)
        alone.withUnsafeMutableBufferPointer { ap in
            x.withUnsafeBufferPointer { xp in
                for t in 0..<nt { mm(w, xp.baseAddress! + t * cols, rows: 1, into: ap.baseAddress! + t * rows, route: .rows) }
            }
        }
    }
    let same = batched == alone
    #expect(same, "type \(type): a batched decode row differs from the row alone")
}

/// The start-up calibration of the decode-batch crossover answers for exactly the types whose GEMM
/// gives the row kernels' bits, within its range, and the description names every one of them.
@Test func rowsGemmCalibrationCoversTheMatchingTypes() {
    let maxRows = RowsGemmThresholds.calibrationMaxRows
    for type: Int32 in [2, 3, 6, 7, 8, 12, 13, 14] {
        let n = zk_rows_gemm_min_rows(type, maxRows)
        if zk_gemm_matches_rows(type) != 0 { #expect((2...maxRows + 1).contains(n), "type \(type): \(n)") }
        else { #expect(n == 0, "type \(type) has no row-kernel-matching GEMM") }
    }
    let m = RowsGemmThresholds.measured
    #expect(m.calibrated && Set(m.byType.keys) == [2, 6, 8, 12, 13, 14])
    for (_, name) in RowsGemmThresholds.types { #expect(m.description.contains(name), "\(m.description)") }
    #expect(m.description.hasSuffix(", calibrated"))
    #expect(RowsGemmThresholds.uniform(8).description == "from 8 rows")
    #expect(RowsGemmThresholds.uniform(.max).description == "off" && RowsGemmThresholds.uniform(.max).minRows(6) == .max)
}

/// Q4_1 / Q5_1 against one activation row take two weight rows at a time: a row gives the same bits
/// with its partner as alone, whichever rows a call starts and ends at (odd and even boundaries, as
/// the kernel pool may split them), on both paths.
@Test(arguments: [Int32(3), 7])
func unsignedRowPairsMatchRowsAlone(type: Int32) {
    let native = String(cString: zk_kernel_path())
    defer { _ = zk_force_kernel_path(native == "avx512-vnni" ? 1 : 0) }
    var rng = Rng(s: 1700 + UInt64(type))
    let rows = 37, cols = 576
    let bytes = randomWeights(type: type, rows: rows, cols: cols, rng: &rng)
    let rowBytes = Int64(bytes.count / rows)
    let x = (0..<cols).map { _ in rng.float() }
    var q = [zk_q8a](repeating: zk_q8a(), count: cols / 32)
    zk_quantize_q8a(x, &q, Int64(cols), zk_act_format(type))
    for path: Int32 in [0, 1] where zk_force_kernel_path(path) != 0 {
        var whole = [Float](repeating: .nan, count: rows), alone = whole, split = whole
        #expect(zk_matmul_q8a(type, bytes, rowBytes, Int64(cols), 0, Int64(rows), q, 1, &whole, Int64(rows)) == 1)
        for r in 0..<rows { _ = zk_matmul_q8a(type, bytes, rowBytes, Int64(cols), Int64(r), Int64(r + 1), q, 1, &alone, Int64(rows)) }
        for (r0, r1) in [(0, 5), (5, 16), (16, 37)] {
            _ = zk_matmul_q8a(type, bytes, rowBytes, Int64(cols), Int64(r0), Int64(r1), q, 1, &split, Int64(rows))
        }
        #expect(whole == alone && whole == split, "type \(type) path \(path)")
    }
}

/// Prepacked weights (zk_pack_panels, read by zk_gemm_packed) give the row kernels' bits at every
/// activation row count, on both paths: Q8_0's panels (the one-row and two-row in-order loop, the
/// eight-class passes of a tile, their remainders), Q5_0's planes (packed on the AVX2 path only; read
/// by its row kernels below `gemm_from` and by the GEMM from it) for a partial last panel (37 rows),
/// block counts leaving every short last group (none, 1, 3, 4, 7 blocks), and row ranges split at
/// panel starts (as the kernel pool splits them).
@Test(arguments: [Int32(8), 6])
func packedWeightsMatchRowKernels(type: Int32) {
    let native = String(cString: zk_kernel_path())
    defer { _ = zk_force_kernel_path(native == "avx512-vnni" ? 1 : 0) }
    #expect(zk_force_kernel_path(0) == 1)
    #expect(zk_packed_bytes(type, 37, 640) == (type == 8 ? 3 * 20 * 544 : 37 * 20 * 22))
    for other: Int32 in [2, 3, 7, 12, 13, 14] { #expect(zk_packed_bytes(other, 64, 256) == 0) }
    if zk_force_kernel_path(1) != 0 { #expect(zk_packed_bytes(6, 64, 256) == 0) }  // (AVX-512 keeps the file's Q5_0)
    var rng = Rng(s: 1500 + UInt64(type))
    for cols in [96, 256, 544, 640, 736] {
        let rows = 37, nt = 20
        let g = GemmInputs(type: type, rows: rows, cols: cols, nt: nt, rng: &rng)
        var scratch = [UInt8](repeating: 0, count: Int(zk_gemm_q8a_scratch_bytes(Int64(cols))))
        #expect(zk_force_kernel_path(0) == 1)
        var packed = [UInt8](repeating: 0, count: Int(zk_packed_bytes(type, Int64(rows), Int64(cols))))
        zk_pack_panels(type, g.bytes, g.rowBytes, Int64(cols), Int64(rows), 0, 3, &packed)
        for vnni: Int32 in [0, 1] where zk_force_kernel_path(vnni) != 0 {
            for n in 1...nt {
                var byRows = [Float](repeating: .nan, count: n * rows)
                #expect(zk_matmul_q8a(type, g.bytes, g.rowBytes, Int64(cols), 0, Int64(rows), g.q, Int64(n), &byRows, Int64(rows)) == 1)
                for gemmFrom in type == 6 ? [Int64(n + 1), 0] : [0] {
                    var byPacked = [Float](repeating: .nan, count: n * rows)
                    for (r0, r1) in [(0, 16), (16, 32), (32, 37)] {
                        #expect(zk_gemm_packed(type, packed, Int64(cols), Int64(rows), Int64(r0), Int64(r1), g.q, g.sums, Int64(n),
                                               &byPacked, Int64(rows), gemmFrom, &scratch) == 1)
                    }
                    let same = byRows == byPacked
                    #expect(same, "type \(type) cols \(cols) vnni \(vnni) rows \(n) gemm from \(gemmFrom)")
                }
            }
        }
        #expect(zk_gemm_packed(type, packed, Int64(cols), Int64(rows), 8, 16, g.q, g.sums, 1, nil, Int64(rows), 0, &scratch) == 0)
    }
}

/// Through `Matmul`: a matrix with packed panels gives what the file's layout gives, on the row route
/// at every batch size (rows alone, row-kernel tiles, the GEMM from rowsGemmMinRows) and on the GEMM
/// route; an sgemm request still reads the file's layout.
@Test(arguments: [Int32(8), 6])
func packedMatrixMatchesUnpackedThroughMatmul(type: Int32) {
    var rng = Rng(s: 1600)
    let rows = 300, cols = 640, nt = 24
    let bytes = randomWeights(type: type, rows: rows, cols: cols, rng: &rng)
    let x = (0..<nt * cols).map { _ in rng.float() }
    let mm = Matmul(pool: KernelPool(threads: 2))
    bytes.withUnsafeBytes { wb in
        let w = WeightMatrix(type: type, data: wb.baseAddress!, rows: rows, cols: cols)
        let native = String(cString: zk_kernel_path())
        _ = zk_force_kernel_path(0)  // (Q5_0 packs on the AVX2 path; the products run on the pool's path)
        defer { _ = zk_force_kernel_path(native == "avx512-vnni" ? 1 : 0) }
        guard let panels = PackedPanels(w) else { Issue.record("packing failed"); return }
        let p = w.with(panels)
        #expect(p.packed != nil && w.packed == nil)
        for n in [1, 2, 3, 7, 8, 9, 17, 24] {
            for route in [MatmulRoute.rows, .gemm, .auto] {
                var a = [Float](repeating: .nan, count: n * rows), b = a
                mm(w, x, rows: n, into: &a, route: route)
                mm(p, x, rows: n, into: &b, route: route)
                let same = a == b
                #expect(same, "rows \(n) route \(route)")
            }
        }
        var a = [Float](repeating: .nan, count: nt * rows), b = a
        mm(w, x, rows: nt, into: &a, route: .blas)
        mm(p, x, rows: nt, into: &b, route: .blas)
        #expect(a == b)
    }
}
