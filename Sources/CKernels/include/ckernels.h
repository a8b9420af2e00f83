// CKernels: the hot loops of Zebra in C, so they are fast even in debug builds (see PLATFORM.md).
// Nothing here knows about models or requests: plain arrays, GGML block formats, and row ranges.
#ifndef ZEBRA_CKERNELS_H
#define ZEBRA_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// GGML tensor type ids, as stored in GGUF files (ggml.h `enum ggml_type`).
enum zk_type {
    ZK_F32 = 0, ZK_F16 = 1, ZK_Q4_0 = 2, ZK_Q4_1 = 3, ZK_Q5_0 = 6, ZK_Q5_1 = 7,
    ZK_Q8_0 = 8, ZK_Q4_K = 12, ZK_Q5_K = 13, ZK_Q6_K = 14, ZK_BF16 = 30,
};

/// Elements per block and bytes per block of a supported type; 0 for an unsupported one.
int64_t zk_block_elems(int type);
int64_t zk_block_bytes(int type);

/// Dequantize `n` elements (a multiple of the block size) of `type` from `src` into `dst`.
/// Bit-exact with ggml's `dequantize_row_*` (no FMA contraction).
void zk_dequantize(int type, const void *src, float *dst, int64_t n);

// Half precision, round-to-nearest-even as F16C does.
float zk_f16_to_f32(uint16_t h);
uint16_t zk_f32_to_f16(float f);
void zk_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n);
void zk_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n);

/// Dot product of two float vectors with a fixed summation order (depends only on n).
float zk_dot_f32(const float *a, const float *b, int64_t n);

/// y[t*ldy + r] = dot(row r of W, x[t*k ..< t*k+k]) for rows r in [r0, r1) and t in [0, nt).
/// W is `type` with `row_bytes` bytes per row of k elements. `scratch` holds k floats.
/// Each (r, t) result depends only on that row and that activation: batch-invariant.
void zk_matmul_rows(int type, const void *w, int64_t row_bytes, int64_t k,
                    int64_t r0, int64_t r1, const float *x, int64_t nt,
                    float *y, int64_t ldy, float *scratch);

/// An activation block quantized to 8 bits: x[i] ~ d * q[i], and s ~ d * sum(q) (for minimums).
/// 40 bytes. How d, q and s are rounded follows llama.cpp's format for the weight type (below).
typedef struct {
    float d;
    float s;
    int8_t q[32];
} zk_q8a;

/// llama.cpp's activation formats: Q8_0 (d in f16; Q4_0/Q5_0/Q8_0 weights), Q8_1 (the same d and q,
/// and s = f16(max|x| / 127 * sum(q)) as ggml stores it; Q4_1/Q5_1 weights, whose minimum term uses s),
/// Q8_K (one f32 scale per 256 from the largest-magnitude value; K-quants). Otherwise s = d * sum(q).
enum zk_act_format { ZK_ACT_Q8_0 = 0, ZK_ACT_Q8_K = 1, ZK_ACT_Q8_1 = 2 };
/// The activation format llama.cpp pairs with weights of `type`.
int zk_act_format(int type);
/// Quantizes k floats (a multiple of 32; of 256 for Q8_K) into k / 32 blocks.
void zk_quantize_q8a(const float *x, zk_q8a *dst, int64_t k, int format);
/// d * q for every element (tests and the reference path).
void zk_dequantize_q8a(const zk_q8a *src, float *dst, int64_t k);
/// Q8_1 activations times dequantized weights (the sgemm route) miss what the int8 kernels add for
/// Q4_1/Q5_1's minimum term, m * (s - d * sum(q)) per block: dst[b] = s - d * sum(q) for n blocks,
/// and zk_block_mins gives the m of rows [r0, r1) ([r1 - r0, k / 32]; returns 0 for other types).
void zk_q8a_s_excess(const zk_q8a *src, float *dst, int64_t n);
int zk_block_mins(int type, const void *w, int64_t row_bytes, int64_t k, int64_t r0, int64_t r1, float *dst);
/// Whether `type` has an int8 row kernel (every quantized type here; not F32/F16/BF16).
int zk_has_int8_kernel(int type);
/// y[t*ldy + r] = dot(row r of W, x_t) for rows [r0, r1) and t < nt, with x_t the k / 32 blocks at
/// x + t * (k / 32). Each result depends only on its row and its activation: batch-invariant.
/// Returns 0 (and writes nothing) for a type without an int8 kernel.
int zk_matmul_q8a(int type, const void *w, int64_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                  const zk_q8a *x, int64_t nt, float *y, int64_t ldy);
/// The same products for long inputs (prompt chunks), panel by panel of 16 weight rows (qgemm.c):
/// every type with an int8 kernel, on AVX-512 VNNI or AVX2, with AMX tiles from 16 activation rows where
/// the CPU has them (the same bits on every path; the kernel path as for zk_matmul_q8a, zk_gemm_tiles).
/// Returns 0 (and writes nothing) for other types.
/// `half_sums` holds the integer sums of each activation block's two 16-element halves
/// (zk_q8a_half_sums, [nt][k / 32][2]; read for the signed types, whose stored offset comes off the
/// dot, per half for Q6_K's scale per 16, and for the K-quants' minimum terms). `scratch` holds zk_gemm_q8a_scratch_bytes(k) bytes, one
/// per thread.
int zk_gemm_q8a(int type, const void *w, int64_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                const zk_q8a *x, const int32_t *half_sums, int64_t nt, float *y, int64_t ldy, void *scratch);
int64_t zk_gemm_q8a_scratch_bytes(int64_t k);
/// dst[b] = sum of block b's 32 int8 values, for n blocks.
void zk_q8a_sums(const zk_q8a *src, int32_t *dst, int64_t n);
/// dst[2b], dst[2b + 1] = sums of block b's values 0-15 and 16-31, for n blocks.
void zk_q8a_half_sums(const zk_q8a *src, int32_t *dst, int64_t n);
/// Whether zk_gemm_q8a handles `type` (every type with an int8 kernel).
int zk_has_int8_gemm(int type);
/// Prepacked weights, else 0: Q8_0 in panels of 16 rows, each block's 512 panel bytes and 16 f16 scales
/// (as many bytes as the GGUF layout), on any path; Q5_0 on the AVX2 path, rows in planes (each whole
/// group of 8 blocks' scales, then its weights in five 32-byte planes; the same bytes as the GGUF rows).
int64_t zk_packed_bytes(int type, int64_t rows, int64_t k);
/// Packs panels [p0, p1) of a matrix (`rows` rows; for Q5_0, its rows [16 p0, 16 p1)) into dst
/// (zk_packed_bytes). Panels are independent: threads may pack disjoint ranges.
void zk_pack_panels(int type, const void *w, int64_t row_bytes, int64_t k, int64_t rows, int64_t p0, int64_t p1,
                    void *dst);
/// zk_matmul_q8a's products (the same bits, any nt, on either path) from prepacked weights: rows
/// [r0, r1), r0 a multiple of 16. Q5_0: with nt < gemm_from the row kernels, else the GEMM, which needs
/// `scratch` (zk_gemm_q8a_scratch_bytes); Q8_0's panels take neither. Returns 0 (and writes nothing)
/// if the type has no packed layout, r0 is not a panel start, or the GEMM has no scratch.
int zk_gemm_packed(int type, const void *packed, int64_t k, int64_t rows, int64_t r0, int64_t r1, const zk_q8a *x,
                   const int32_t *half_sums, int64_t nt, float *y, int64_t ldy, int64_t gemm_from, void *scratch);
/// Whether zk_gemm_q8a gives the row kernels' bits for `type` (Q8_0, Q4_0, Q5_0 and the K-quants: the
/// same float order; not Q4_1 / Q5_1, which keep llama.cpp's), so that any rows may take either
/// without changing a result.
int zk_gemm_matches_rows(int type);
/// For such a type, the fewest activation rows n (2 <= n <= max_rows, at most 32) from which
/// zk_gemm_q8a is faster than zk_matmul_q8a at every count up to max_rows, measured now on the calling
/// thread (tens of ms for all types) on the current kernel path, from the layout its matrices are packed
/// in there (zk_packed_bytes: Q5_0's planes on the AVX2 path); max_rows + 1 if it is not faster at
/// max_rows; 0 for a type the GEMM does not match or out of memory. The two give the same bits, so
/// the answer only moves time.
int zk_rows_gemm_min_rows(int type, int max_rows);
/// ggml's name of an int8-kernel type ("Q8_0", "Q6_K", ...), "?" for another.
const char *zk_type_name(int type);
/// The SIMD path the int8 kernels use on this CPU: "avx512-vnni" or "avx2" (ZEBRA_KERNEL_PATH=avx2
/// takes AVX2 on a VNNI CPU too, for measuring).
const char *zk_kernel_path(void);
/// The int8 GEMM's tiles on this CPU: "amx-int8" (Intel AMX, where the CPU has it and Linux grants the
/// tile state), "avx512-vnni" or "avx2" (the kernel path). ZEBRA_AMX=0 keeps AMX off.
const char *zk_gemm_tiles(void);
/// Why the GEMM does or does not use AMX: "amx-int8", or the first thing missing ("the CPU has no
/// AMX-INT8", "Linux refused the tile state (...)", "off (ZEBRA_AMX=0)", ...).
const char *zk_amx_status(void);
/// Tests and A/B: the calling thread's GEMM tiles from 16 activation rows: 0 VNNI, 1 AMX (returns 0
/// where AMX is unavailable), 2 AMX emulated in C (returns 0 off the AVX-512 path), -1 the CPU's choice.
int zk_force_amx(int mode);
/// The start-up check of the tiles (run by the detection before AMX is used): a small GEMM of every
/// int8 type through mode 1 (AMX) or 2 (the emulation) must give the VNNI tiles' bits. Returns 1, or 0
/// with the first difference, or the signal a tile instruction raised (trapped), in why[0..<n].
int zk_amx_self_check(int mode, char *why, int64_t n);
/// Tests: the tile products the calling thread's AMX emulation has run.
int64_t zk_amx_emulated_products(void);
/// The row kernels' weight prefetch: "l2" (every CPU), or "nta" where ZEBRA_WEIGHT_PREFETCH=nta asks.
const char *zk_weight_prefetch(void);
/// Tests only: force a path (1: AVX-512 VNNI, with the 4-block decode of Q4_0/Q5_0 where the CPU has
/// VBMI and BITALG; 2: AVX-512 VNNI with the pair decode; 0: AVX2) for the calling thread's kernel calls
/// (other threads, the kernel pool's included, keep the CPU's). Returns 0 if this CPU lacks VNNI.
int zk_force_kernel_path(int path);
/// How the AVX-512 row kernels decode Q4_0/Q5_0 blocks: "vbmi" (4 blocks at a time), or "pairs" and
/// why ("pairs (no AVX-512 VBMI/BITALG)", "pairs (ZEBRA_KERNEL_PATH=avx512-vnni)"); "avx2" off AVX-512.
const char *zk_row_decode(void);

/// Dequantize rows [r0, r1) of W into dst (row-major, k floats per row).
void zk_dequantize_rows(int type, const void *w, int64_t row_bytes, int64_t k,
                        int64_t r0, int64_t r1, float *dst);

/// RMSNorm of one row: y = x / sqrt(mean(x^2) + eps) * w (w may be NULL). x and y may alias.
void zk_rmsnorm(const float *x, const float *w, float *y, int64_t n, float eps);

/// Rotary embedding in place of `n_heads` heads `head_stride` floats apart, all at position `pos`
/// (each angle computed once for every head). neox: pairs (i, i+d/2); otherwise adjacent (2i, 2i+1).
void zk_rope(float *x, int64_t n_heads, int64_t head_stride, int64_t n_rot, int64_t pos, float base, int neox);
/// The same in two steps, so a position's angles serve every layer with that base: cs[2i], cs[2i+1] =
/// cos, sin of pos * base^(-2i / n_rot) for i < n_rot / 2 (n_rot floats), then the rotation.
void zk_rope_table(int64_t pos, float base, int64_t n_rot, float *cs);
void zk_rope_apply(float *x, int64_t n_heads, int64_t head_stride, int64_t n_rot, const float *cs, int neox);

/// y = gelu_tanh(g) * u, elementwise.
void zk_gelu_mul(const float *g, const float *u, float *y, int64_t n);
/// y = silu(g) * u, elementwise.
void zk_silu_mul(const float *g, const float *u, float *y, int64_t n);
/// log(sum(exp(x))), stable (max subtracted), vectorized exp (~1e-7 relative). -inf if all are -inf.
float zk_logsumexp(const float *x, int64_t n);
/// The largest value (-inf for none).
float zk_max(const float *x, int64_t n);
/// The index of the first largest value (0 if all are -inf or n is 0).
int64_t zk_argmax(const float *x, int64_t n);
/// x[i] = exp((x[i] - mx) * inv_t) in place, vectorized exp (~1e-7 relative); returns the sum.
float zk_exp_shifted(float *x, int64_t n, float mx, float inv_t);
/// x *= s
void zk_scale(float *x, float s, int64_t n);
/// y += x
void zk_add(float *y, const float *x, int64_t n);

/// The KV cache's storage formats. A row holds one position's keys (or values) for every KV head,
/// head after head; one head of head_dim elements takes zk_kv_head_bytes bytes:
///   ZK_KV_F16:  head_dim f16 values;
///   ZK_KV_Q8_0: head_dim int8 values then head_dim / 32 f16 scales (x ~ scale * q per 32 elements,
///               rounded as llama.cpp's q8_0: scale = f16(max|x| / 127), q = nearest even of x * 127 / max|x|).
enum zk_kv_type { ZK_KV_F16 = 0, ZK_KV_Q8_0 = 1 };
int64_t zk_kv_head_bytes(int type, int64_t head_dim);
/// One row: `heads` heads of `head_dim` floats (src) into storage of `type` (dst).
void zk_kv_store_row(int type, const float *src, void *dst, int64_t heads, int64_t head_dim);
/// The inverse (tests, the reference path): storage of `type` back to floats.
void zk_kv_load_row(int type, const void *src, float *dst, int64_t heads, int64_t head_dim);

/// A run of consecutive cached positions of one KV head: `n` key and value rows of the cache's type,
/// `stride` bytes apart (k and v point at the head inside its row).
typedef struct {
    const void *k;
    const void *v;
    int64_t n;
} zk_kv_segment;

/// Attention (attention.c) of `g` query heads sharing one KV head, over segments of keys/values in
/// position order. Keys go in chunks of ZK_ATT_CHUNK from the first; a chunk's partial result per head
/// is [m, l, o[head_dim]] (max score, sum of exp(score - m), unnormalised output), `head_dim + 2` floats.
/// With ZK_KV_Q8_0 (head_dim a multiple of 32) each query head is quantized the same way as the keys
/// and scored by exact int8 dot products per 32 elements, as llama.cpp does with a q8_0 K cache.
#define ZK_ATT_CHUNK 256
/// Keys in the segments.
int64_t zk_kv_count(const zk_kv_segment *segs, int64_t n_segs);
/// Floats of per-thread scratch the attention kernels need for g heads of head_dim.
int64_t zk_attend_scratch_floats(int64_t g, int64_t head_dim);
/// Partials of chunks [c0, c1) of the keys (chunk c: keys [c * ZK_ATT_CHUNK, +ZK_ATT_CHUNK)) into
/// parts[(c - c0) * g * (head_dim + 2)]; q is [g, head_dim]; scratch holds
/// zk_attend_scratch_floats(g, head_dim) floats. A chunk's partial does not depend on c0 and c1.
void zk_attend_chunks(int type, const float *q, int64_t g, int64_t head_dim, float scale,
                      const zk_kv_segment *segs, int64_t n_segs, int64_t stride,
                      int64_t c0, int64_t c1, float *scratch, float *parts);
/// out[g, head_dim] = softmax-weighted values, from `n_parts` chunk partials (chunk-major) in order.
void zk_attend_merge(const float *parts, int64_t n_parts, int64_t g, int64_t head_dim, float *out);
/// The same for heads [h0, h1) only (out as for zk_attend_merge; other heads untouched): the same bits.
void zk_attend_merge_heads(const float *parts, int64_t n_parts, int64_t g, int64_t head_dim, int64_t h0, int64_t h1,
                           float *out);
/// A whole query: every chunk (partials in `parts`, room for ceil(keys / ZK_ATT_CHUNK) chunks), merged.
void zk_attend(int type, const float *q, int64_t g, int64_t head_dim, float scale,
               const zk_kv_segment *segs, int64_t n_segs, int64_t stride,
               float *scratch, float *parts, float *out);

/// Spin-wait hint for the kernel pool's workers.
static inline void zk_pause(void) { __builtin_ia32_pause(); }
/// *p += v atomically (relaxed), returning the old value: the kernel pool's chunk claims.
static inline int64_t zk_claim(int64_t *p, int64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
/// *p read atomically (relaxed): a share's cursor looked at before claiming from it.
static inline int64_t zk_peek(const int64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

#ifdef __cplusplus
}
#endif
#endif
