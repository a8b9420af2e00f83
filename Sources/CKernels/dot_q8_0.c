// Fused Q8_0 x f32 row dot products: no dequantized row buffer, d applied once per block.
// Chosen at run time: AVX-512 where the CPU has it, AVX2 otherwise (the build baseline is x86-64-v3).
// The summation order depends only on k, never on the batch, so results stay batch-invariant.
#include "ckernels.h"
#include <immintrin.h>
#include <string.h>

static inline float half_to_float(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return _cvtsh_ss(h); }

__attribute__((target("avx512f,avx512bw,avx512vl")))
static float dot_q8_0_avx512(const uint8_t *row, const float *x, int64_t k) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < k / 32; b++) {
        const uint8_t *blk = row + b * 34;
        const __m512 f0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2))));
        const __m512 f1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18))));
        __m512 s = _mm512_mul_ps(f0, _mm512_loadu_ps(x + b * 32));
        s = _mm512_fmadd_ps(f1, _mm512_loadu_ps(x + b * 32 + 16), s);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(half_to_float(blk)), s, acc);
    }
    return _mm512_reduce_add_ps(acc);
}

static float dot_q8_0_avx2(const uint8_t *row, const float *x, int64_t k) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (int64_t b = 0; b < k / 32; b++) {
        const uint8_t *blk = row + b * 34;
        const float *xb = x + b * 32;
        __m256 s0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 2)))), _mm256_loadu_ps(xb));
        __m256 s1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 10)))), _mm256_loadu_ps(xb + 8));
        s0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 18)))), _mm256_loadu_ps(xb + 16), s0);
        s1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 26)))), _mm256_loadu_ps(xb + 24), s1);
        const __m256 d = _mm256_set1_ps(half_to_float(blk));
        acc0 = _mm256_fmadd_ps(d, s0, acc0);
        acc1 = _mm256_fmadd_ps(d, s1, acc1);
    }
    const __m256 s = _mm256_add_ps(acc0, acc1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

typedef float (*dot_fn)(const uint8_t *, const float *, int64_t);
static dot_fn chosen = 0;

static dot_fn pick(void) {
    if (!chosen) {
        __builtin_cpu_init();
        chosen = (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
                     ? dot_q8_0_avx512 : dot_q8_0_avx2;
    }
    return chosen;
}

const char *zk_kernel_path(void) { return pick() == dot_q8_0_avx512 ? "avx512" : "avx2"; }

void zk_force_kernel_path(int avx512) { chosen = avx512 ? dot_q8_0_avx512 : dot_q8_0_avx2; }

float zk_dot_q8_0(const void *row, const float *x, int64_t k) { return pick()((const uint8_t *)row, x, k); }
