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

// Q5_0 in planes: the layout zk_pack_panels gives Q5_0 on the AVX2 path (as many bytes as the file's,
// each row where the file has it). Each row's whole groups of 8 blocks (176 bytes) hold the 8 f16 scales, then
// five 32-byte planes P0-P4 of the blocks' unsigned weights u = w + 16 (5 bits), element e of every
// block at byte e of each plane: bits 0-4 of Pi are block i's u (i < 5); block 5's low 3 bits are
// bits 5-7 of P0 and its high 2 bits 5-6 of P1; block 6 the same in P2 and P3; block 7's low 3 bits
// are bits 5-7 of P4, its bit 3 bit 7 of P1 and its bit 4 bit 7 of P3. A row's last blocks (nb mod 8)
// keep the file's layout. Decoding a group is 5 masks and 7 shifts (16-bit shifts: the masks drop what
// crosses from the neighbouring byte), against a vpshufb, a compare and three logic operations per
// block for the file's fifth bits, and no nibble shuffles.
#define ZK_Q5_0_PLANES 1006  // an internal type id: Q5_0 rows in planes
#define Q5P_GROUP_BYTES 176
// qmatmul.c: zk_matmul_q8a's products of Q5_0 rows in planes (the AVX2 row kernels, on any path).
int zk_matmul_q5_0_planes(const void *w, int64_t row_bytes, int64_t k, int64_t r0, int64_t r1, const zk_q8a *x,
                          int64_t nt, float *y, int64_t ldy);

static inline void q5p_decode(const uint8_t *g, __m256i u[8]) {
    const __m256i p0 = _mm256_loadu_si256((const __m256i *)(g + 16)), p1 = _mm256_loadu_si256((const __m256i *)(g + 48)),
                  p2 = _mm256_loadu_si256((const __m256i *)(g + 80)), p3 = _mm256_loadu_si256((const __m256i *)(g + 112)),
                  p4 = _mm256_loadu_si256((const __m256i *)(g + 144));
    const __m256i m1f = _mm256_set1_epi8(0x1F), m07 = _mm256_set1_epi8(0x07), m18 = _mm256_set1_epi8(0x18),
                  m08 = _mm256_set1_epi8(0x08), m10 = _mm256_set1_epi8(0x10);
    u[0] = _mm256_and_si256(p0, m1f);
    u[1] = _mm256_and_si256(p1, m1f);
    u[2] = _mm256_and_si256(p2, m1f);
    u[3] = _mm256_and_si256(p3, m1f);
    u[4] = _mm256_and_si256(p4, m1f);
    u[5] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(p0, 5), m07), _mm256_and_si256(_mm256_srli_epi16(p1, 2), m18));
    u[6] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(p2, 5), m07), _mm256_and_si256(_mm256_srli_epi16(p3, 2), m18));
    u[7] = _mm256_or_si256(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(p4, 5), m07), _mm256_and_si256(_mm256_srli_epi16(p1, 4), m08)),
                           _mm256_and_si256(_mm256_srli_epi16(p3, 3), m10));
}

// Block k (0-7) of a group alone (the GEMM's unpacking goes block by block): the same bits as q5p_decode.
__attribute__((always_inline))
static inline __m256i q5p_block(const uint8_t *g, const int k) {
    const __m256i m1f = _mm256_set1_epi8(0x1F), m07 = _mm256_set1_epi8(0x07), m18 = _mm256_set1_epi8(0x18);
#define Q5P_PLANE(i) _mm256_loadu_si256((const __m256i *)(g + 16 + 32 * (i)))
    if (k < 5) return _mm256_and_si256(Q5P_PLANE(k), m1f);
    if (k < 7)
        return _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(Q5P_PLANE(2 * k - 10), 5), m07),
                               _mm256_and_si256(_mm256_srli_epi16(Q5P_PLANE(2 * k - 9), 2), m18));
    return _mm256_or_si256(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(Q5P_PLANE(4), 5), m07),
                                           _mm256_and_si256(_mm256_srli_epi16(Q5P_PLANE(1), 4), _mm256_set1_epi8(0x08))),
                           _mm256_and_si256(_mm256_srli_epi16(Q5P_PLANE(3), 3), _mm256_set1_epi8(0x10)));
#undef Q5P_PLANE
}

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
