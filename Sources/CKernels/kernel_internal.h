// Helpers shared by the int8 kernels (qmatmul.c, qgemm.c) and the attention (attention.c). Not a
// public header.
#ifndef ZEBRA_KERNEL_INTERNAL_H
#define ZEBRA_KERNEL_INTERNAL_H
#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include "ckernels.h"

// qmatmul.c: whether the AVX-512 kernels are in use (zk_kernel_path; tests may force either path).
int zk_path_is_avx512(void);
// qmatmul.c: whether the row kernels prefetch weights into L2 (1) or with the non-temporal hint (0);
// set with the kernel path (zk_weight_prefetch).
extern int zk_weight_prefetch_l2;

// An f16 value stored at p (GGML block scales), as f32.
static inline float half_to_float(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return _cvtsh_ss(h); }

// 16 packed nibbles -> 32 bytes: low nibbles first (elements 0-15), then high nibbles (16-31). (AVX2, the
// build's baseline.)
// The 16 bytes are loaded into both 128-bit lanes and the upper lane shifted by 4: one shift, no
// lane insert.
static inline __m256i nibble_bytes(const uint8_t *p) {
    const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
    return _mm256_and_si256(_mm256_srlv_epi64(b, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0F));
}

// The fifth bits of one Q5_0/Q5_1 block (a 32-bit mask at h, bit e for element e) as 16 (0x10) per byte.
static inline __m256i fifth_bits(const uint8_t *h) {
    uint32_t x;
    memcpy(&x, h, 4);
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit), _mm256_set1_epi8(0x10));
}

// The integer sum of an activation block's 32 values.
static inline int32_t q8a_block_sum(const zk_q8a *a) {
    int32_t sum = 0;
    for (int i = 0; i < 32; i++) sum += a->q[i];
    return sum;
}

// The integer sums of an activation block's values 0-15 (*lo) and 16-31 (*hi).
static inline void q8a_half_sums(const zk_q8a *a, int32_t *lo, int32_t *hi) {
    int32_t l = 0, h = 0;
    for (int e = 0; e < 16; e++) { l += a->q[e]; h += a->q[16 + e]; }
    *lo = l;
    *hi = h;
}

// The sum of 8 int32 lanes (exact in any order).
__attribute__((target("avx2")))
static inline int32_t hsum8_epi32(__m256i d) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(d), _mm256_extracti128_si256(d, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

// Q6_K's 6-bit weights are stored as u = w + 32.
#define Q6_K_BIAS 32

// The 6-bit scales and minimums of a Q4_K / Q5_K super-block (ggml's get_scale_min_k4, all eight),
// four at a time in 32-bit words: bytes 0-3 hold the low 6 bits of scales 0-3 and their top 2 bits
// are the high bits of scales 4-7; bytes 4-7 the same for the minimums; bytes 8-11 the low 4 bits
// of scales 4-7 (low nibbles) and minimums 4-7 (high nibbles).
static inline void scale_min_k4(const uint8_t *q, uint8_t *sc, uint8_t *mn) {
    uint32_t w[3];
    memcpy(w, q, 12);
    const uint32_t low6 = 0x3F3F3F3Fu, nib = 0x0F0F0F0Fu, top2 = 0x03030303u;
    const uint32_t s[2] = {w[0] & low6, (w[2] & nib) | (((w[0] >> 6) & top2) << 4)};
    const uint32_t m[2] = {w[1] & low6, ((w[2] >> 4) & nib) | (((w[1] >> 6) & top2) << 4)};
    memcpy(sc, s, 8);
    memcpy(mn, m, 8);
}

#endif
