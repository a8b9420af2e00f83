// Quantized matrix products with 8-bit activations, as llama.cpp computes them: activations are
// quantized per 32 elements (zk_q8a), then each weight block's integer dot with them is exact and
// only the per-block scales are float. Chosen at run time: AVX-512 VNNI where the CPU has it, AVX2
// otherwise (the build baseline is x86-64-v3, so one binary runs on any AVX2 machine).
#include "ckernels.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>
#include "kernel_internal.h"
#include <stdlib.h>

int zk_weight_prefetch_l2 = 0;

// The row kernels' 4-block decode of Q4_0 / Q5_0 (qmatmul_body.h, AVX-512 VBMI and BITALG): one
// activation row's 4 consecutive blocks as two vectors, their elements 0-15 and 16-31 (16 bytes a
// block), the layout the weights' nibbles decode into.
typedef struct { int8_t l[4][16], h[4][16]; } qm_act4;
// One K-quant super-block of an activation row for the row kernels: its 8 blocks' int8 values, their
// integer sums and half sums (elements 0-15, 16-31), and the super-block's scale (QM_DRIVE_K; 320
// bytes, so that every q stays 64-byte aligned).
typedef struct { int8_t q[8][32]; int16_t bs[8], hs[16]; float d, pad[3]; } qm_ksuper;
// Its permutations, per weight type (block bytes BS, nibbles at offset NO, fifth bits at 2 for Q5_0):
// the 4 blocks' bytes come from two 64-byte loads at 0 and 4 * BS - 64; `nib` gathers block i's 16
// nibble bytes into 128-bit lane i, `side` puts block i's fifth-bit mask in qwords 2i and 2i + 1
// (bytes 0-3) and its f16 scale in their word 2. Every index of block i points into block i's own
// bytes, so a block a masked load leaves out decodes to zeros.
typedef struct { uint8_t nib[64], side[64]; } qm_p4_perm;
static qm_p4_perm qm_p4_q4_0, qm_p4_q5_0;
// Shared: `bits_lo`/`bits_hi` select, for byte lane 16i + j, bit j / 16 + j of qword 2i + j / 8's mask
// (vpshufbitqmb); `words` gathers 8 blocks' scales from two side vectors in the lanes' block order
// [0 2 4 6 1 3 5 7]; `dwords` takes the 8 blocks' sums from the folded dots in that order.
static uint8_t qm_p4_bits_lo[64], qm_p4_bits_hi[64];
static uint16_t qm_p4_words[32];
static uint32_t qm_p4_dwords[16];

static void p4_perm(qm_p4_perm *t, int bs, int no, int fifth) {
    const int second = 4 * bs - 64;
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 16; j++) {
            const int o = bs * i + no + j;
            t->nib[16 * i + j] = (uint8_t)(o < 64 ? o : 64 + o - second);
        }
        for (int q = 2 * i; q < 2 * i + 2; q++)
            for (int b = 0; b < 8; b++) {
                const int o = bs * i + (b < 4 ? (fifth ? 2 + b : 0) : b < 6 ? b - 4 : 0);
                t->side[8 * q + b] = (uint8_t)(o < 64 ? o : 64 + o - second);
            }
    }
}

// Whether the AVX-512 path uses the 4-block decode: where the CPU has VBMI and BITALG (Ice Lake and
// later Intel, AMD Zen 4 and later; not Skylake-SP / Cascade Lake, whose VNNI path keeps the pair
// decode) unless ZEBRA_KERNEL_PATH=avx512-vnni asks for the pair decode; a test may force either.
static int p4_cpu, p4_hw;
static const char *p4_why = "vbmi";
static _Thread_local int p4_forced = -1;
static inline int use_p4(void) { return p4_forced >= 0 ? p4_forced : p4_cpu; }

// Activation rows per weight pass: 8 with AVX-512's 32 vector registers, 4 with AVX2's 16.
#define QM_VNNI 1
#define QM_TILE 8
#define QM_SUFFIX _vnni
#define QM_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#include "qmatmul_body.h"
#undef QM_VNNI
#undef QM_SUFFIX
#undef QM_TARGET

#undef QM_TILE
#define QM_VNNI 0
#define QM_TILE 4
#define QM_SUFFIX _avx2
#define QM_TARGET "avx2,fma,f16c"
#include "qmatmul_body.h"

typedef int (*matmul_fn)(int, const uint8_t *, int64_t, int64_t, int64_t, int64_t, const zk_q8a *, int64_t,
                         float *, int64_t);
static matmul_fn chosen = 0;  // this CPU's path, picked once
// A test's forced path, for its own thread only: a global switch let kernel tests change the path
// under model tests running at the same time (when the prompt GEMM existed only on AVX-512, a
// different summation, their logits moved by a chaotic flip now and then: a flaky parity test).
static _Thread_local matmul_fn forced = 0;

static int cpu_has_vnni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

// The row kernels' weight prefetch, into L2 (_MM_HINT_T1) by default: on Intel Xeon (Sapphire Rapids)
// the non-temporal hint kept the lines out of L2 and starved the kernel (28 tokens/s as NTA, 55 into
// L2), and on AMD Zen 4 (CPUID family 25 model 17) the row kernels that share the GEMM's float order
// decode 5-10% faster with it (alternated runs, 2026-12-06). The non-temporal hint (which spares the
// KV cache the weight stream; ~10% faster on Zen 5 with the earlier kernels) stays available:
// ZEBRA_WEIGHT_PREFETCH=l2|nta.
static int prefetch_l2(void) {
    const char *e = getenv("ZEBRA_WEIGHT_PREFETCH");
    if (e && !strcmp(e, "l2")) return 1;
    if (e && !strcmp(e, "nta")) return 0;
    return 1;
}

// ZEBRA_KERNEL_PATH=avx2 runs the AVX2 kernels on a CPU with VNNI too: what an AVX2-only CPU (AMD Zen
// 3, older Intel) runs, to measure it here; =avx512-vnni keeps AVX-512 without the 4-block decode
// (what a Cascade Lake runs).
static int env_kernel_path(const char *path) {
    const char *e = getenv("ZEBRA_KERNEL_PATH");
    return e && !strcmp(e, path);
}

__attribute__((constructor)) static void p4_tables(void) {
    __builtin_cpu_init();
    p4_hw = __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bitalg");
    if (!p4_hw)
        p4_why = "pairs (no AVX-512 VBMI/BITALG)";
    else if (env_kernel_path("avx512-vnni"))
        p4_why = "pairs (ZEBRA_KERNEL_PATH=avx512-vnni)";
    else
        p4_cpu = 1;
    p4_perm(&qm_p4_q4_0, 18, 2, 0);
    p4_perm(&qm_p4_q5_0, 22, 6, 1);
    for (int q = 0; q < 8; q++)
        for (int b = 0; b < 8; b++) {
            qm_p4_bits_lo[8 * q + b] = (uint8_t)(8 * (q % 2) + b);
            qm_p4_bits_hi[8 * q + b] = (uint8_t)(16 + 8 * (q % 2) + b);
        }
    // Block b's scale: word 2 of qword 2b (side vector A, b < 4) or 32 + 8 (b - 4) + 2 (B).
    for (int l = 0; l < 8; l++) {
        const int b = qm_lane_block[l];
        qm_p4_words[l] = (uint16_t)(b < 4 ? 8 * b + 2 : 32 + 8 * (b - 4) + 2);
        // The folded sums: 128-bit lane k holds blocks k (dword 4k) and k + 4 (dword 4k + 1).
        qm_p4_dwords[l] = (uint32_t)(b < 4 ? 4 * b : 4 * (b - 4) + 1);
    }
}

static matmul_fn pick(void) {
    if (forced) return forced;
    if (!chosen) {
        zk_weight_prefetch_l2 = prefetch_l2();
        chosen = cpu_has_vnni() && !env_kernel_path("avx2") ? matmul_vnni : matmul_avx2;
    }
    return chosen;
}

const char *zk_weight_prefetch(void) { pick(); return zk_weight_prefetch_l2 ? "l2" : "nta"; }

const char *zk_kernel_path(void) { return pick() == matmul_vnni ? "avx512-vnni" : "avx2"; }

int zk_path_is_avx512(void) { return pick() == matmul_vnni; }

int zk_force_kernel_path(int path) {
    if (path && !cpu_has_vnni()) return 0;
    forced = path ? matmul_vnni : matmul_avx2;
    p4_forced = path == 2 ? 0 : path == 1 ? p4_hw : -1;
    return 1;
}

const char *zk_row_decode(void) {
    if (pick() != matmul_vnni) return "avx2";
    return use_p4() ? "vbmi" : p4_forced == 0 ? "pairs (forced)" : p4_why;
}

int zk_has_int8_kernel(int type) {
    switch (type) {
    case ZK_Q8_0: case ZK_Q4_0: case ZK_Q5_0: case ZK_Q4_1: case ZK_Q5_1: case ZK_Q4_K: case ZK_Q5_K: case ZK_Q6_K:
        return 1;
    default:
        return 0;
    }
}

int zk_act_format(int type) {
    switch (type) {
    case ZK_Q4_K: case ZK_Q5_K: case ZK_Q6_K: return ZK_ACT_Q8_K;
    case ZK_Q4_1: case ZK_Q5_1: return ZK_ACT_Q8_1;
    default: return ZK_ACT_Q8_0;
    }
}

static inline float round_f16(float f) { return _cvtsh_ss(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }

// 32 values times scale, rounded to nearest even (MXCSR's default), at most `top`, to q; returns their sum.
static inline int32_t round_block(const float *x, __m256 scale, int32_t top, int8_t *q) {
    __m256i sum = _mm256_setzero_si256();
    for (int i = 0; i < 4; i++) {
        const __m256i v = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * i), scale)),
                                           _mm256_set1_epi32(top));
        sum = _mm256_add_epi32(sum, v);
        const __m128i v16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storel_epi64((__m128i *)(q + 8 * i), _mm_packs_epi16(v16, v16));
    }
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s = _mm_hadd_epi32(s, s);
    s = _mm_hadd_epi32(s, s);
    return _mm_cvtsi128_si32(s);
}

// ggml's quantize_row_q8_0 / q8_1 (x86): d = max|x| / 127 kept in f16, q = x * (127 / max|x|)
// rounded to nearest even. s (used by the minimum term of Q4_1/Q5_1 weights): Q8_1 stores
// f16(max|x| / 127 * sum(q)), as ggml does; Q8_0 keeps d * sum(q) (unused by its weight types).
static void quantize_q8_0(const float *x, zk_q8a *dst, int64_t k, int q8_1) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < k / 32; b++) {
        const float *xb = x + b * 32;
        __m256 v[4], m = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(xb + 8 * i);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[i]));
        }
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        const float amax = _mm_cvtss_f32(h);
        const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
        // |x| * 127 / max|x| <= 127: the cap never binds.
        const float qsum = (float)round_block(xb, _mm256_set1_ps(id), 127, dst[b].q);
        const float dh = round_f16(d);
        dst[b].d = dh;
        dst[b].s = q8_1 ? round_f16(d * qsum) : dh * qsum;
    }
}

// ggml's quantize_row_q8_K: one scale per 256 from the signed value of largest magnitude (the first
// one), q = nearest even of x * (-127 / max), at most 127; d = 1 / iscale. Vectorized (prompt chunks
// quantize every K-quant product's input): the same products and roundings, so the same bytes.
static void quantize_q8_K(const float *x, zk_q8a *dst, int64_t k) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t sb = 0; sb < k / 256; sb++) {
        const float *xs = x + sb * 256;
        __m256 m = _mm256_setzero_ps();
        for (int i = 0; i < 32; i++) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(xs + 8 * i)), m);  // NaN x: skipped
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        const float amax = _mm_cvtss_f32(h);
        zk_q8a *out = dst + sb * 8;
        if (amax == 0.0f) {
            memset(out, 0, 8 * sizeof(zk_q8a));
            continue;
        }
        float mx = 0.0f;  // the first element of largest magnitude, with its sign
        for (int i = 0; i < 32; i++) {
            const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(xs + 8 * i)),
                                                             _mm256_set1_ps(amax), _CMP_EQ_OQ));
            if (hit) { mx = xs[8 * i + __builtin_ctz((unsigned)hit)]; break; }
        }
        const float iscale = -127.0f / mx, d = 1.0f / iscale;
        for (int b = 0; b < 8; b++) {
            const int32_t sum = round_block(xs + 32 * b, _mm256_set1_ps(iscale), 127, out[b].q);
            out[b].d = d;
            out[b].s = d * (float)sum;
        }
    }
}

void zk_quantize_q8a(const float *x, zk_q8a *dst, int64_t k, int format) {
    if (format == ZK_ACT_Q8_K) quantize_q8_K(x, dst, k);
    else quantize_q8_0(x, dst, k, format == ZK_ACT_Q8_1);
}

void zk_dequantize_q8a(const zk_q8a *src, float *dst, int64_t k) {
    for (int64_t b = 0; b < k / 32; b++)
        for (int i = 0; i < 32; i++) dst[b * 32 + i] = src[b].d * (float)src[b].q[i];
}

void zk_q8a_sums(const zk_q8a *src, int32_t *dst, int64_t n) {
    for (int64_t b = 0; b < n; b++) dst[b] = q8a_block_sum(src + b);
}

void zk_q8a_s_excess(const zk_q8a *src, float *dst, int64_t n) {
    for (int64_t b = 0; b < n; b++) dst[b] = src[b].s - src[b].d * (float)q8a_block_sum(src + b);
}

int zk_block_mins(int type, const void *w, int64_t row_bytes, int64_t k, int64_t r0, int64_t r1, float *dst) {
    if (type != ZK_Q4_1 && type != ZK_Q5_1) return 0;
    const int64_t bb = type == ZK_Q4_1 ? 20 : 24, nb = k / 32;  // blocks start with f16 d, f16 m
    for (int64_t r = r0; r < r1; r++)
        for (int64_t b = 0; b < nb; b++)
            dst[(r - r0) * nb + b] = half_to_float((const uint8_t *)w + r * row_bytes + b * bb + 2);
    return 1;
}

int zk_matmul_q8a(int type, const void *w, int64_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                  const zk_q8a *x, int64_t nt, float *y, int64_t ldy) {
    return pick()(type, (const uint8_t *)w, row_bytes, k, r0, r1, x, nt, y, ldy);
}

int zk_matmul_q5_0_planes(const void *w, int64_t row_bytes, int64_t k, int64_t r0, int64_t r1, const zk_q8a *x,
                          int64_t nt, float *y, int64_t ldy) {
    pick();  // (the weight prefetch setting)
    return matmul_avx2(ZK_Q5_0_PLANES, (const uint8_t *)w, row_bytes, k, r0, r1, x, nt, y, ldy);
}
