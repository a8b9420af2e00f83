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

/// Fused dot of one Q8_0 row (k elements) with f32 x; AVX-512 or AVX2 chosen at run time.
float zk_dot_q8_0(const void *row, const float *x, int64_t k);
/// The SIMD path the kernels use on this CPU: "avx512" or "avx2".
const char *zk_kernel_path(void);
/// Tests only: force a path (1: AVX-512, 0: AVX2). The AVX-512 path needs a CPU that has it.
void zk_force_kernel_path(int avx512);

/// Dequantize rows [r0, r1) of W into dst (row-major, k floats per row).
void zk_dequantize_rows(int type, const void *w, int64_t row_bytes, int64_t k,
                        int64_t r0, int64_t r1, float *dst);

/// RMSNorm of one row: y = x / sqrt(mean(x^2) + eps) * w (w may be NULL). x and y may alias.
void zk_rmsnorm(const float *x, const float *w, float *y, int64_t n, float eps);

/// Rotary embedding of one head in place. neox: pairs (i, i+d/2); otherwise adjacent pairs (2i, 2i+1).
void zk_rope(float *x, int64_t head_dim, int64_t n_rot, int64_t pos, float base, int neox);

/// y = gelu_tanh(g) * u, elementwise.
void zk_gelu_mul(const float *g, const float *u, float *y, int64_t n);
/// y = silu(g) * u, elementwise.
void zk_silu_mul(const float *g, const float *u, float *y, int64_t n);
/// x *= s
void zk_scale(float *x, float s, int64_t n);
/// y += x
void zk_add(float *y, const float *x, int64_t n);

/// A run of consecutive cached positions: `n` key and value rows in f16, `stride` elements apart.
typedef struct {
    const uint16_t *k;
    const uint16_t *v;
    int64_t n;
} zk_kv_segment;

/// Attention of one query head over segments of keys/values (in position order).
/// out[head_dim] = softmax(scale * q.k_j) . v_j ; `scores` has room for all keys.
void zk_attend(const float *q, int64_t head_dim, float scale,
               const zk_kv_segment *segs, int64_t n_segs, int64_t stride,
               float *scores, float *out);

/// Spin-wait hint for the kernel pool's workers.
static inline void zk_pause(void) { __builtin_ia32_pause(); }

#ifdef __cplusplus
}
#endif
#endif
