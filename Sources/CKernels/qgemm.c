// Int8 GEMM for long activation inputs (prompt chunks), AVX-512 VNNI or AVX2: a panel of 16 weight rows is
// unpacked once per call into unsigned bytes laid out so that each 32-bit lane of a vpdpbusd is one
// weight row (lane i holds 4 consecutive weights of row i), with a scale and a minimum per row and
// 32-element block. One instruction then advances 16 rows by 4 elements against a broadcast of 4
// activation bytes: no unpacking in the inner loop and no horizontal sums. Per (row, activation row)
// the arithmetic runs over blocks in a fixed order, whatever the tile: batch-invariant. Without VNNI
// the same panel goes through vpmaddubsw + vpmaddwd, 8 rows a vector (panel_avx2): the same exact
// integer dots and float operations, so the same bits on either instruction set. Where the CPU has
// AMX-INT8, tiles of 16 activation rows take each block's dots from one tile product instead
// (qgemm_amx_body.h), finished by the same float operations: the same bits again.
// Types, by how the unsigned panel byte u relates to the weight (enum qg_kind):
//   - Q4_1, Q5_1: w = scale * u + minimum, the minimum times the activation block's sum (its s)
//     added per block;
//   - Q4_K, Q5_K: w = d * sc * u - dmin * mn with 6-bit sc, mn per block: the super-block's dots
//     times sc and the minimums times the activation blocks' integer sums summed as exact integers,
//     then d and dmin (k_block_sum, k_finish);
//   - Q5_0, Q4_0, Q8_0: w = scale * (u - offset), stored offset by 16, 8, 128 so that they are
//     unsigned bytes; the offset times the activation block's integer sum is taken off the exact
//     int32 dot, as the row kernels' sign trick does;
//   - Q6_K: w = d * sc * (u - 32) with an 8-bit sc per 16 elements: the two halves of a block are two
//     dots, each less 32 times its half's integer sum, times its sc, summed over the super-block as
//     exact integers, then d.
#include "ckernels.h"
#include <immintrin.h>
#include <cpuid.h>
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "kernel_internal.h"

#define QG_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define QG_AVX2 "avx2,fma,f16c"
#define QG_ROWS 16
// A prepacked panel block (zk_pack_panels): the 512 panel bytes of 16 rows, then their 16 f16 scales.
#define QP_BLOCK (QG_ROWS * 32 + QG_ROWS * 2)
#ifndef PF_PANELS
#define PF_PANELS 2
#endif
// How many panels ahead the GEMM's unpacking (offset types, K-quants) prefetches the weights, a block or
// super-block of each row at a time. 2 vCPUs of an AMD Zen 3, weights from memory, both threads, ms a
// product (fastest of 3-4 runs) against the next panel's lines fetched all at once: Q5_0 131072 x 640
// 1 row 3.2 against 5.4 (the row kernels: 2.9), 2 rows 3.8 / 5.8 (row kernels 5.8), 16 rows 11.1 / 13.7;
// Q8_0 2 rows 5.5 / 9.4, 16 rows 16.2 / 22.9; Q6_K 32768 x 2048 2 rows 3.4 / 5.9; 2 panels ahead
// 5-15% slower than 4.
#ifndef QG_AHEAD
#define QG_AHEAD 4
#endif

// QG_MIN: Q4_1, Q5_1; QG_KMIN: Q4_K, Q5_K; QG_OFFSET: Q5_0, Q4_0, Q8_0; QG_HALVES: Q6_K.
enum qg_kind { QG_MIN, QG_KMIN, QG_OFFSET, QG_HALVES };

static enum qg_kind kind_of(int type) {
    switch (type) {
    case ZK_Q5_0: case ZK_Q5_0_PLANES: case ZK_Q4_0: case ZK_Q8_0: return QG_OFFSET;
    case ZK_Q6_K: return QG_HALVES;
    case ZK_Q4_K: case ZK_Q5_K: return QG_KMIN;
    default: return QG_MIN;
    }
}

// The offset added to signed weights to make them unsigned bytes (0: the type is unsigned).
static int offset_of(int type) {
    switch (type) {
    case ZK_Q5_0: case ZK_Q5_0_PLANES: return 16;
    case ZK_Q4_0: return 8;
    case ZK_Q8_0: return 128;
    default: return 0;
    }
}

// The offset types' and Q4_1 / Q5_1's unpacking, vectorized: each row's block decoded to its 32 panel
// bytes u in a vector (Q8_0: w + 128; Q4_0, Q4_1: the nibbles; Q5_0, Q5_1: the nibbles and fifth bits),
// then 8 rows at a time transposed from [row][4-byte group] to the panel's [group][row] (an 8 x 8
// transpose of 32-bit words).
__attribute__((target(QG_AVX2), always_inline))
static inline __m256i block_bytes_avx2(int type, const uint8_t *blk) {
    switch (type) {
    case ZK_Q8_0: return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(blk + 2)), _mm256_set1_epi8((char)0x80));
    case ZK_Q4_0: return nibble_bytes(blk + 2);
    case ZK_Q4_1: return nibble_bytes(blk + 4);
    case ZK_Q5_1: return _mm256_or_si256(nibble_bytes(blk + 8), fifth_bits(blk + 4));
    default: return _mm256_or_si256(nibble_bytes(blk + 6), fifth_bits(blk + 2));  // Q5_0
    }
}

// Block b of panel rows 8 * half ... 8 * half + 7 (r[i]: row i's 32 unsigned bytes) into the panel,
// whose blocks are bstride bytes apart (unpacked QG_ROWS * 32, packed QP_BLOCK): from [row][4-byte
// group] to [group][row], an 8 x 8 transpose of 32-bit words.
__attribute__((target(QG_AVX2), always_inline))
static inline void put_rows8(uint8_t *panel, int64_t bstride, int64_t b, int half, const __m256i r[8]) {
    __m256i t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    // u[k] (k < 4): groups k and k + 4 of rows 0-3 (128-bit halves); u[k + 4]: of rows 4-7.
    uint8_t *dst = panel + b * bstride + 32 * half;
    for (int k = 0; k < 4; k++) {
        _mm256_storeu_si256((__m256i *)(dst + k * (QG_ROWS * 4)), _mm256_permute2x128_si256(u[k], u[k + 4], 0x20));
        _mm256_storeu_si256((__m256i *)(dst + (k + 4) * (QG_ROWS * 4)), _mm256_permute2x128_si256(u[k], u[k + 4], 0x31));
    }
}

// Blocks [b0, nb) of rows [0, nr) of an offset type's or Q4_1 / Q5_1's panel (the rest zero), their
// scales and (Q4_1 / Q5_1, whose f16 minimum follows the scale) minimums, prefetching the same block of
// rows [0, ahead_rows) at `ahead` as it goes. The offset kinds read no minimums: none are written.
__attribute__((target(QG_AVX2), always_inline))
static inline void unpack_block_rows_n(const int type, const uint8_t *w, int64_t row_bytes, int64_t b0, int64_t nb,
                                       const int nr, uint8_t *panel, float *sc, float *mn, const uint8_t *ahead,
                                       int ahead_rows) {
    const int64_t bb = type == ZK_Q5_0 ? 22 : type == ZK_Q4_0 ? 18 : type == ZK_Q4_1 ? 20 : type == ZK_Q5_1 ? 24 : 34;
    for (int64_t b = b0; b < nb; b++) {
        for (int half = 0; half < 2; half++) {
            __m256i r[8];
            for (int i = 0; i < 8; i++) {
                const int row = 8 * half + i;
                const uint8_t *blk = w + row * row_bytes + b * bb;
                if (row < ahead_rows) _mm_prefetch((const char *)(ahead + row * row_bytes + b * bb), _MM_HINT_T1);
                r[i] = row < nr ? block_bytes_avx2(type, blk) : _mm256_setzero_si256();
                sc[b * QG_ROWS + row] = row < nr ? half_to_float(blk) : 0.0f;
                if (kind_of(type) == QG_MIN) mn[b * QG_ROWS + row] = row < nr ? half_to_float(blk + 2) : 0.0f;
            }
            put_rows8(panel, QG_ROWS * 32, b, half, r);
        }
    }
}

// An instance per type for whole panels, and one for a matrix's last, partial panel (one core, AMD
// Zen 3, in cache, a one-row product: Q5_0 640 x 1024 39 against 46 us with the checks of the type and
// of the row count inside the loops, Q8_0 640 x 256 8.0 against 10.4). For Q4_1 (256 x 640 against 7 /
// 64 activation rows) 19 / 126 us against 113 / 221 for a byte loop per element.
__attribute__((target(QG_AVX2)))
static void unpack_block_rows(int type, const uint8_t *w, int64_t row_bytes, int64_t nb, int nr, uint8_t *panel,
                              float *sc, float *mn, const uint8_t *ahead, int ahead_rows) {
    if (nr == QG_ROWS && type == ZK_Q5_0) unpack_block_rows_n(ZK_Q5_0, w, row_bytes, 0, nb, QG_ROWS, panel, sc, mn, ahead, ahead_rows);
    else if (nr == QG_ROWS && type == ZK_Q8_0) unpack_block_rows_n(ZK_Q8_0, w, row_bytes, 0, nb, QG_ROWS, panel, sc, mn, ahead, ahead_rows);
    else if (nr == QG_ROWS && type == ZK_Q4_0) unpack_block_rows_n(ZK_Q4_0, w, row_bytes, 0, nb, QG_ROWS, panel, sc, mn, ahead, ahead_rows);
    else if (nr == QG_ROWS && type == ZK_Q4_1) unpack_block_rows_n(ZK_Q4_1, w, row_bytes, 0, nb, QG_ROWS, panel, sc, mn, ahead, ahead_rows);
    else if (nr == QG_ROWS && type == ZK_Q5_1) unpack_block_rows_n(ZK_Q5_1, w, row_bytes, 0, nb, QG_ROWS, panel, sc, mn, ahead, ahead_rows);
    else unpack_block_rows_n(type, w, row_bytes, 0, nb, nr, panel, sc, mn, ahead, ahead_rows);
}

// Q5_0 rows in planes (kernel_internal.h): unpack_block_rows_n's panel and scales, each whole group's
// blocks decoded one by one from its planes, a row's last blocks (nb mod 8) from the file's layout.
__attribute__((target(QG_AVX2), always_inline))
static inline void unpack_q5p_rows_n(const uint8_t *w, int64_t row_bytes, int64_t nb, const int nr, uint8_t *panel,
                                     float *sc, const uint8_t *ahead, int ahead_rows) {
    const int64_t full = nb & ~(int64_t)7;
    for (int64_t g0 = 0; g0 < full; g0 += 8) {
        _Pragma("clang loop unroll(full)")
        for (int k = 0; k < 8; k++) {
            const int64_t b = g0 + k;
            for (int half = 0; half < 2; half++) {
                __m256i r[8];
                for (int i = 0; i < 8; i++) {
                    const int row = 8 * half + i;
                    const uint8_t *g = w + row * row_bytes + g0 * 22;
                    if (row < ahead_rows) _mm_prefetch((const char *)(ahead + row * row_bytes + b * 22), _MM_HINT_T1);
                    r[i] = row < nr ? q5p_block(g, k) : _mm256_setzero_si256();
                    sc[b * QG_ROWS + row] = row < nr ? half_to_float(g + 2 * k) : 0.0f;
                }
                put_rows8(panel, QG_ROWS * 32, b, half, r);
            }
        }
    }
    unpack_block_rows_n(ZK_Q5_0, w, row_bytes, full, nb, nr, panel, sc, NULL, ahead, ahead_rows);
}

__attribute__((target(QG_AVX2)))
static void unpack_q5p_rows(const uint8_t *w, int64_t row_bytes, int64_t nb, int nr, uint8_t *panel, float *sc,
                            const uint8_t *ahead, int ahead_rows) {
    if (nr == QG_ROWS) unpack_q5p_rows_n(w, row_bytes, nb, QG_ROWS, panel, sc, ahead, ahead_rows);
    else unpack_q5p_rows_n(w, row_bytes, nb, nr, panel, sc, ahead, ahead_rows);
}

// The K-quants' unpacking, vectorized the same way: super-block sb of a row decoded to its 8 blocks'
// 32 unsigned bytes u[0..7] (Q4_K: nibble halves of 32 bytes; Q5_K: with their fifth bits; Q6_K: nibble
// halves with two high bits), each block's integer scales packed in one int32 (k: low 16 bits the
// scale, high 16 the minimum; Q6_K: the two half-block scales, signed), and the super-block's d and
// -dmin (Q6_K: d, and 0).
__attribute__((target(QG_AVX2), always_inline))
static inline void k_super_avx2(int type, const uint8_t *row, int64_t sb, __m256i u[8], int32_t k[8], float *d, float *dm) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    if (type == ZK_Q6_K) {
        // Super-blocks of 210 bytes: 128 of low nibbles, 64 of high 2-bit pairs, 16 int8 scales, f16 d.
        // Each half (128 elements) holds blocks kk = 0..3: low nibbles of ql[0..31] (kk = 0), ql[32..63]
        // (1), their high nibbles (2, 3), top bits 2kk, 2kk + 1 of qh[0..31]; scales 2j, 2j + 1 for
        // block j's elements 0-15 and 16-31 (the halves' dots).
        const uint8_t *blk = row + sb * 210;
        const int8_t *scales = (const int8_t *)(blk + 192);
        for (int j = 0; j < 8; j++)
            k[j] = (int32_t)((uint32_t)(uint16_t)(int16_t)scales[2 * j] | (uint32_t)(uint16_t)(int16_t)scales[2 * j + 1] << 16);
        *d = half_to_float(blk + 208);
        *dm = 0.0f;
        for (int half = 0; half < 2; half++) {
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * half));
            for (int kk = 0; kk < 4; kk++) {
                const __m256i l = _mm256_loadu_si256((const __m256i *)(blk + 64 * half + 32 * (kk & 1)));
                const __m256i lo = _mm256_and_si256(kk < 2 ? l : _mm256_srli_epi16(l, 4), low4);
                const __m256i hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * kk)), _mm256_set1_epi8(3)), 4);
                u[4 * half + kk] = _mm256_or_si256(lo, hi);
            }
        }
        return;
    }
    // Q4_K / Q5_K: super-blocks of 144 / 176 bytes (f16 d, f16 dmin, 12 bytes of 6-bit sub-block
    // scales and minimums, Q5_K's 32 bytes of fifth bits, 128 of nibbles): block 2g the low nibbles
    // of q[32g..], 2g + 1 the high ones.
    const int high = type == ZK_Q5_K;
    const uint8_t *blk = row + sb * (high ? 176 : 144);
    uint8_t scs[8], mns[8];
    scale_min_k4(blk + 4, scs, mns);
    for (int j = 0; j < 8; j++) k[j] = (int32_t)scs[j] | (int32_t)mns[j] << 16;
    *d = half_to_float(blk);
    *dm = -half_to_float(blk + 2);
    const __m256i qh = high ? _mm256_loadu_si256((const __m256i *)(blk + 16)) : _mm256_setzero_si256();
    for (int g = 0; g < 4; g++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(blk + (high ? 48 : 16) + 32 * g));
        u[2 * g] = _mm256_and_si256(q, low4);
        u[2 * g + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
    }
    if (high)  // element e's fifth bit in block j: bit j of byte e of the 32 at 16
        for (int j = 0; j < 8; j++)
            u[j] = _mm256_or_si256(u[j], _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(j)), _mm256_set1_epi8(1)), 4));
}

// The K-quants' panel, a super-block of each row at a time: sc holds each block's packed integer
// scales (int32, see k_super_avx2), mn the super-block's d in the slots of its first block and -dmin
// in those of its second (rows past nr: left as the caller zeroed them).
__attribute__((target(QG_AVX2), always_inline))
static inline void unpack_k_rows_n(const int type, const uint8_t *w, int64_t row_bytes, int64_t nb, const int nr,
                                   uint8_t *panel, float *sc, float *mn, const uint8_t *ahead, int ahead_rows) {
    int32_t *ks = (int32_t *)sc;
    const int64_t sbb = type == ZK_Q6_K ? 210 : type == ZK_Q5_K ? 176 : 144;
    for (int64_t sb = 0; sb < nb / 8; sb++) {
        __m256i u[QG_ROWS][8];  // [row][block of the super-block]
        for (int row = 0; row < QG_ROWS; row++) {
            if (row < ahead_rows)  // (the super-block's lines, at most 5)
                for (int64_t off = 0; off < sbb + 63; off += 64)
                    _mm_prefetch((const char *)(ahead + row * row_bytes + sb * sbb + (off < sbb ? off : sbb - 1)), _MM_HINT_T1);
            if (row >= nr) {
                for (int j = 0; j < 8; j++) u[row][j] = _mm256_setzero_si256();
                continue;
            }
            int32_t k[8];
            float d, dm;
            k_super_avx2(type, w + row * row_bytes, sb, u[row], k, &d, &dm);
            for (int j = 0; j < 8; j++) ks[(8 * sb + j) * QG_ROWS + row] = k[j];
            mn[8 * sb * QG_ROWS + row] = d;
            mn[(8 * sb + 1) * QG_ROWS + row] = dm;
        }
        for (int j = 0; j < 8; j++)
            for (int half = 0; half < 2; half++) {
                __m256i r[8];
                for (int i = 0; i < 8; i++) r[i] = u[8 * half + i][j];
                put_rows8(panel, QG_ROWS * 32, 8 * sb + j, half, r);
            }
    }
}

// Whole Q4_K panels get an instance of their own (one core, AMD Zen 3, 1024 x 640 in cache: 36 against
// 42 us a one-row product); Q6_K measured slower so (90 against 85 us for 2048 x 640) and keeps the
// generic one, as do Q5_K (not measured) and a matrix's last, partial panel.
__attribute__((target(QG_AVX2)))
static void unpack_k_rows(int type, const uint8_t *w, int64_t row_bytes, int64_t nb, int nr, uint8_t *panel,
                          float *sc, float *mn, const uint8_t *ahead, int ahead_rows) {
    if (nr == QG_ROWS && type == ZK_Q4_K) unpack_k_rows_n(ZK_Q4_K, w, row_bytes, nb, QG_ROWS, panel, sc, mn, ahead, ahead_rows);
    else unpack_k_rows_n(type, w, row_bytes, nb, nr, panel, sc, mn, ahead, ahead_rows);
}

// The offset types' eight accumulators (block b's dot in a[b mod 8]) added in their one fixed tree,
// the row kernels' (qmatmul_body.h): ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)).
__attribute__((target(QG_TARGET), always_inline))
static inline __m512 class_tree(__m512 a0, __m512 a1, __m512 a2, __m512 a3, __m512 a4, __m512 a5, __m512 a6, __m512 a7) {
    return _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a4), _mm512_add_ps(a2, a6)),
                         _mm512_add_ps(_mm512_add_ps(a1, a5), _mm512_add_ps(a3, a7)));
}

// The QP_BLOCK bytes of a packed panel block at p into L2 (a streamed panel's block some panels on).
static inline void prefetch_block(const uint8_t *p) {
    for (int off = 0; off < QP_BLOCK; off += 64) _mm_prefetch((const char *)(p + off), _MM_HINT_T1);
}

// Block b's 16 row scales (pb: the block's bytes; packed: f16 after them; else sc) and minimums
// (packed: the offset types, none).
__attribute__((target(QG_TARGET), always_inline))
static inline __m512 panel_scales(const uint8_t *pb, const float *sc, int64_t b, const int packed) {
    return packed ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(pb + QG_ROWS * 32))) : _mm512_loadu_ps(sc + b * QG_ROWS);
}

__attribute__((target(QG_TARGET), always_inline))
static inline __m512 panel_mins(const float *mn, int64_t b, const int packed) {
    return packed ? _mm512_setzero_ps() : _mm512_loadu_ps(mn + b * QG_ROWS);
}

// Block b of a panel (pb: its bytes): the 8 weight vectors (4-byte groups j of the 16 rows) and the
// rows' scales.
__attribute__((target(QG_TARGET), always_inline))
static inline __m512 panel_block(const uint8_t *pb, const float *sc, int64_t b, const int packed, __m512i w[8]) {
    for (int j = 0; j < 8; j++) w[j] = _mm512_loadu_si512((const __m512i *)pb + j);
    return panel_scales(pb, sc, b, packed);
}

// The exact int32 dots of the 16 rows' block with an activation block (q: its 32 int8, as 8 groups
// of 4), less offset times the block's integer sum (the offset types' stored offset), from `init`.
__attribute__((target(QG_TARGET), always_inline))
static inline __m512i offset_dot(const __m512i w[8], const int8_t *q, int32_t init) {
    int32_t q4[8];
    memcpy(q4, q, 32);
    __m512i dot = _mm512_set1_epi32(init);
    for (int j = 0; j < 8; j++) dot = _mm512_dpbusd_epi32(dot, w[j], _mm512_set1_epi32(q4[j]));
    return dot;
}

// One activation row's block (a) into its accumulator from the block's exact int32 dots with the 16
// panel rows, the stored offsets already taken off; s and m: the rows' scales and minimums (Q4_1,
// Q5_1). The float operations of every int8 GEMM route, VNNI or AMX, in their one order: the same
// bits from either.
__attribute__((target(QG_TARGET), always_inline))
static inline __m512 block_acc(const enum qg_kind kind, __m512i dot, __m512 s, __m512 m, const zk_q8a *a, __m512 acc) {
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(s, _mm512_set1_ps(a->d)), acc);
    if (kind == QG_MIN) return _mm512_fmadd_ps(m, _mm512_set1_ps(a->s), acc);
    return acc;
}

// The K-quants (Q4_K, Q5_K, Q6_K) in the row kernels' order (qmatmul_body.h): per activation row and
// super-block the exact int32 sum S of its blocks' dots times their integer scales (Q6_K: each half
// block's dot, less 32 x its half of the activation sum, times its scale) and for Q4_K / Q5_K the sum
// M of the blocks' minimums times the activation blocks' integer sums; then, super-block by
// super-block, acc = fma(float(S), d x d_a, acc) and acc = fma(float(M), -dmin x d_a, acc) (Q8_K
// activations: d_a is the super-block's). Two roundings a super-block, as in llama.cpp's own dot
// products, and the integers are exact in any order. A block's part of S, from its dots (lo: the
// whole block's, or Q6_K's first half's; hi: Q6_K's second half's) and its packed scales k.
__attribute__((target(QG_TARGET), always_inline))
static inline __m512i k_block_sum(const enum qg_kind kind, __m512i k, __m512i lo, __m512i hi) {
    if (kind == QG_HALVES)
        return _mm512_add_epi32(_mm512_mullo_epi32(lo, _mm512_srai_epi32(_mm512_slli_epi32(k, 16), 16)),
                                _mm512_mullo_epi32(hi, _mm512_srai_epi32(k, 16)));
    return _mm512_mullo_epi32(lo, _mm512_and_si512(k, _mm512_set1_epi32(0xFFFF)));
}

// Super-block sb's float operations for one activation row (x: its blocks, h: their half sums), from
// its exact sum S; ks, mn: the panel's packed scales and d, -dmin (unpack_k_rows).
__attribute__((target(QG_TARGET), always_inline))
static inline __m512 k_finish(const enum qg_kind kind, __m512i S, const int32_t *ks, const float *mn, int64_t sb,
                              const zk_q8a *x, const int32_t *h, __m512 acc) {
    const __m512 da = _mm512_set1_ps(x[8 * sb].d);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S), _mm512_mul_ps(_mm512_loadu_ps(mn + 8 * sb * QG_ROWS), da), acc);
    if (kind != QG_KMIN) return acc;
    __m512i m = _mm512_setzero_si512();
    for (int64_t b = 8 * sb; b < 8 * sb + 8; b++)
        m = _mm512_add_epi32(m, _mm512_mullo_epi32(_mm512_srai_epi32(_mm512_loadu_si512(ks + b * QG_ROWS), 16),
                                                   _mm512_set1_epi32(h[2 * b] + h[2 * b + 1])));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(_mm512_loadu_ps(mn + (8 * sb + 1) * QG_ROWS), da), acc);
}

// NT activation rows against the panel: out[t] lanes = the panel rows' results. hs: the activation
// rows' half-block sums, [t][block][2], ldx blocks per row.
__attribute__((target(QG_TARGET), always_inline))
static inline void panel_tile(const uint8_t *panel, const float *sc, const float *mn, int64_t nb, int64_t b0,
                              int step, const zk_q8a *x, int64_t ldx, const int32_t *hs, const enum qg_kind kind,
                              const int offset, const int packed, const int64_t pf, const int NT, __m512 *out) {
    __m512 acc[8];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = b0; b < nb; b += step) {
        const uint8_t *pb = panel + b * (packed ? QP_BLOCK : QG_ROWS * 32);
        if (packed && pf) prefetch_block(pb + pf);  // streamed panels: spread over the passes
        __m512i w[8];
        const __m512 s = panel_block(pb, sc, b, packed, w);
        const __m512 m = panel_mins(mn, b, packed);
#pragma clang loop unroll(full)
        for (int t = 0; t < NT; t++) {
            const zk_q8a *a = x + t * ldx + b;
            const int32_t *h = hs + 2 * (t * ldx + b);
            const __m512i dot = offset_dot(w, a->q, kind == QG_OFFSET ? -offset * (h[0] + h[1]) : 0);
            acc[t] = block_acc(kind, dot, s, m, a, acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) out[t] = acc[t];
}

// The offset types (Q8_0, Q4_0, Q5_0) in the row kernels' order (qmatmul_body.h): per activation row
// eight accumulators, block b's dot to accumulator b mod 8 (panel_tile over blocks m, m + 8, ...),
// added as ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)). One class at a time keeps panel_tile's
// registers.
__attribute__((target(QG_TARGET), always_inline))
static inline void panel_tile_offset(const uint8_t *panel, const float *sc, const float *mn, int64_t nb,
                                     const zk_q8a *x, int64_t ldx, const int32_t *hs, const int offset, const int packed,
                                     const int64_t pf, const int NT, __m512 *out) {
    __m512 part[8][8];  // [m][t]
    for (int m = 0; m < 8; m++) panel_tile(panel, sc, mn, nb, m, 8, x, ldx, hs, QG_OFFSET, offset, packed, pf, NT, part[m]);
    for (int t = 0; t < NT; t++)
        out[t] = class_tree(part[0][t], part[1][t], part[2][t], part[3][t], part[4][t], part[5][t], part[6][t], part[7][t]);
}

// panel_tile_offset for one or two activation rows: the same accumulators and tree, the blocks taken in
// order (block b to accumulator b mod 8) so that a panel streamed from memory (prepacked) is read
// front to back; the eight passes stride over it.
__attribute__((target(QG_TARGET), always_inline))
static inline void panel_tile_offset_seq(const uint8_t *panel, const float *sc, int64_t nb, const zk_q8a *x,
                                         int64_t ldx, const int32_t *hs, const int offset, const int packed,
                                         const int64_t pf, const int NT, __m512 *out) {
    __m512 acc[8][2];
    for (int m = 0; m < 8; m++)
        for (int t = 0; t < NT; t++) acc[m][t] = _mm512_setzero_ps();
    for (int64_t b8 = 0; b8 < nb; b8 += 8) {
#pragma clang loop unroll(full)
        for (int m = 0; m < 8; m++) {
            const int64_t b = b8 + m;
            if (b >= nb) break;
            const uint8_t *pb = panel + b * (packed ? QP_BLOCK : QG_ROWS * 32);
            if (packed && pf)  // streamed: the same block pf and pf / 2 bytes on, into L2 (a dropped
                for (int off = 0; off < QP_BLOCK; off += 64) {  // prefetch gets a second chance; measured faster)
                    _mm_prefetch((const char *)(pb + pf + off), _MM_HINT_T1);
                    _mm_prefetch((const char *)(pb + pf / 2 + off), _MM_HINT_T1);
                }
            __m512i w[8];
            const __m512 s = panel_block(pb, sc, b, packed, w);
#pragma clang loop unroll(full)
            for (int t = 0; t < NT; t++) {
                const zk_q8a *a = x + t * ldx + b;
                const int32_t *h = hs + 2 * (t * ldx + b);
                const __m512i dot = offset_dot(w, a->q, -offset * (h[0] + h[1]));
                acc[m][t] = block_acc(QG_OFFSET, dot, s, s, a, acc[m][t]);
            }
        }
    }
    for (int t = 0; t < NT; t++)
        out[t] = class_tree(acc[0][t], acc[1][t], acc[2][t], acc[3][t], acc[4][t], acc[5][t], acc[6][t], acc[7][t]);
}

// NT activation rows against a K-quant panel (k_block_sum, k_finish): out[t] lanes = the panel rows'
// results. Q6_K's halves: elements 0-15 (groups j < 4) and 16-31 apart.
__attribute__((target(QG_TARGET), always_inline))
static inline void panel_tile_k(const uint8_t *panel, const float *sc, const float *mn, int64_t nb, const zk_q8a *x,
                                int64_t ldx, const int32_t *hs, const enum qg_kind kind, const int NT, __m512 *out) {
    const int32_t *ks = (const int32_t *)sc;
    __m512 acc[8];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nb / 8; sb++) {
        __m512i S[8];
        for (int t = 0; t < NT; t++) S[t] = _mm512_setzero_si512();
        for (int64_t b = 8 * sb; b < 8 * sb + 8; b++) {
            __m512i w[8];
            for (int j = 0; j < 8; j++) w[j] = _mm512_loadu_si512((const __m512i *)(panel + b * (QG_ROWS * 32)) + j);
            const __m512i k = _mm512_loadu_si512(ks + b * QG_ROWS);
#pragma clang loop unroll(full)
            for (int t = 0; t < NT; t++) {
                const zk_q8a *a = x + t * ldx + b;
                if (kind == QG_HALVES) {
                    const int32_t *h = hs + 2 * (t * ldx + b);
                    int32_t q4[8];
                    memcpy(q4, a->q, 32);
                    __m512i lo = _mm512_set1_epi32(-Q6_K_BIAS * h[0]), hi = _mm512_set1_epi32(-Q6_K_BIAS * h[1]);
                    for (int j = 0; j < 4; j++) lo = _mm512_dpbusd_epi32(lo, w[j], _mm512_set1_epi32(q4[j]));
                    for (int j = 4; j < 8; j++) hi = _mm512_dpbusd_epi32(hi, w[j], _mm512_set1_epi32(q4[j]));
                    S[t] = _mm512_add_epi32(S[t], k_block_sum(kind, k, lo, hi));
                } else {
                    const __m512i dot = offset_dot(w, a->q, 0);
                    S[t] = _mm512_add_epi32(S[t], k_block_sum(kind, k, dot, dot));
                }
            }
        }
        for (int t = 0; t < NT; t++) acc[t] = k_finish(kind, S[t], ks, mn, sb, x + t * ldx, hs + 2 * t * ldx, acc[t]);
    }
    for (int t = 0; t < NT; t++) out[t] = acc[t];
}

// ---- AMX (Intel Sapphire Rapids and later): the integer dots of 16 activation rows by 16 panel rows as
// one tile product per block (qgemm_amx_body.h). ----

// The tile configuration (LDTILECFG's 64 bytes, palette 1): rows and bytes per row of tmm0-7.
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

_Static_assert(sizeof(amx_config) == 64 && offsetof(amx_config, colsb) == 16 && offsetof(amx_config, rows) == 48,
               "LDTILECFG's layout");

static const amx_config amx_tiles __attribute__((aligned(64))) = {
    .palette = 1,
    .colsb = {64, 32, 64, 64, 16, 16, 64, 64},
    .rows = {16, 16, 8, 16, 16, 16, 4, 4},
};

// The emulation: the instructions' semantics in C on a thread's own tile registers, with the checks
// the hardware makes (an unconfigured tile, shapes that do not chain) as aborts, so that the layout and
// the order of the real kernel are tested on any AVX-512 CPU.
typedef struct {
    int configured;
    int64_t products;  // tile products so far (tests: the tiles ran)
    uint8_t rows[8];
    uint16_t colsb[8];
    uint8_t data[8][16][64];
} amx_emu_state;
static _Thread_local amx_emu_state emu;

static void emu_fail(const char *what) {
    fprintf(stderr, "zebra: AMX emulation: %s\n", what);
    abort();
}

static void emu_config(const amx_config *c) {
    if (c->palette != 1) emu_fail("palette must be 1");
    if (c->start_row) emu_fail("start_row must be 0");
    for (int i = 0; i < 14; i++)
        if (c->reserved[i]) emu_fail("reserved bytes must be 0");
    for (int n = 8; n < 16; n++)
        if (c->rows[n] || c->colsb[n]) emu_fail("palette 1 has 8 tiles");
    for (int n = 0; n < 8; n++) {
        if (c->rows[n] > 16 || c->colsb[n] > 64) emu_fail("tile larger than palette 1 allows");
        if (!c->rows[n] != !c->colsb[n]) emu_fail("a tile with rows but no bytes, or bytes but no rows");
        emu.rows[n] = c->rows[n];
        emu.colsb[n] = c->colsb[n];
    }
    memset(emu.data, 0, sizeof emu.data);
    emu.configured = 1;
}

static void emu_check(int n) {
    if (!emu.configured) emu_fail("tile used without LDTILECFG");
    if (!emu.rows[n] || !emu.colsb[n]) emu_fail("tile not configured");
}

static void emu_load(int n, const void *base, size_t stride) {
    emu_check(n);
    for (int r = 0; r < 16; r++) {
        memset(emu.data[n][r], 0, 64);
        if (r < emu.rows[n]) memcpy(emu.data[n][r], (const uint8_t *)base + r * stride, emu.colsb[n]);
    }
}

static void emu_zero(int n) {
    emu_check(n);
    memset(emu.data[n], 0, sizeof emu.data[n]);
}

// TDPBSUD: c[m][j] += sum over k < a.colsb / 4 of the 4 products a[m][4k + i] (signed) x b[k][4j + i]
// (unsigned), in wrapping 32-bit arithmetic.
static void emu_dpbsud(int c, int a, int b) {
    emu_check(c), emu_check(a), emu_check(b);
    if (c == a || c == b || a == b) emu_fail("TDPBSUD operands must be three different tiles");
    if (emu.rows[c] != emu.rows[a] || emu.colsb[c] != emu.colsb[b] || emu.colsb[a] != 4 * emu.rows[b] ||
        emu.colsb[a] % 4 || emu.colsb[c] % 4)
        emu_fail("TDPBSUD shapes do not chain");
    emu.products++;
    for (int m = 0; m < emu.rows[c]; m++)
        for (int j = 0; j < emu.colsb[c] / 4; j++) {
            uint32_t sum;
            memcpy(&sum, emu.data[c][m] + 4 * j, 4);
            for (int k = 0; k < emu.colsb[a] / 4; k++)
                for (int i = 0; i < 4; i++)
                    sum += (uint32_t)((int32_t)(int8_t)emu.data[a][m][4 * k + i] * (int32_t)emu.data[b][k][4 * j + i]);
            memcpy(emu.data[c][m] + 4 * j, &sum, 4);
        }
}

static void emu_store(int n, void *base, size_t stride) {
    emu_check(n);
    for (int r = 0; r < emu.rows[n]; r++) memcpy((uint8_t *)base + r * stride, emu.data[n][r], emu.colsb[n]);
}

#define AMX_SUFFIX _emu
#define AMX_TARGET QG_TARGET
#define T_LOAD(n, base, stride) emu_load(n, base, stride)
#define T_ZERO(n) emu_zero(n)
#define T_DP(c, a, b) emu_dpbsud(c, a, b)
#define T_STORE(n, base, stride) emu_store(n, base, stride)
#include "qgemm_amx_body.h"

#define AMX_SUFFIX _hw
#define AMX_TARGET QG_TARGET ",amx-tile,amx-int8"
#define T_LOAD(n, base, stride) _tile_loadd(n, base, stride)
#define T_ZERO(n) _tile_zero(n)
#define T_DP(c, a, b) _tile_dpbsud(c, a, b)
#define T_STORE(n, base, stride) _tile_stored(n, base, stride)
#include "qgemm_amx_body.h"

__attribute__((target("amx-tile"))) static void amx_hw_begin(void) { _tile_loadconfig(&amx_tiles); }
__attribute__((target("amx-tile"))) static void amx_hw_end(void) { _tile_release(); }

// Which tiles the GEMM uses: AMX_OFF (VNNI), AMX_HW, AMX_EMU (tests).
enum { AMX_OFF = 0, AMX_HW = 1, AMX_EMU = 2 };
static int amx_native = AMX_OFF;
static char amx_why[160] = "not checked";
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;
static _Thread_local int amx_forced = -1;

static int amx_self_check(int amx, char *why, size_t n);

// AMX needs the CPU (CPUID.7.0:EDX AMX-TILE bit 24, AMX-INT8 bit 25), the OS's XSAVE state for tiles
// (XCR0 bits 17 TILECFG and 18 TILEDATA) and Linux's permission for this process (arch_prctl
// ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA; without it the first tile instruction faults), and then
// the tiles must give the VNNI tiles' bits on a small GEMM of every type (amx_self_check). Anything
// missing or different leaves the VNNI tiles, and amx_why says which.
static void amx_detect(void) {
    unsigned a, b, c, d;
    const char *e = getenv("ZEBRA_AMX");
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25))) {
        snprintf(amx_why, sizeof amx_why, "the CPU has no AMX-INT8");
        return;
    }
    if (e && !strcmp(e, "0")) {
        snprintf(amx_why, sizeof amx_why, "off (ZEBRA_AMX=0)");
        return;
    }
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) {
        snprintf(amx_why, sizeof amx_why, "the OS has not enabled XSAVE");
        return;
    }
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) {
        snprintf(amx_why, sizeof amx_why, "the OS does not enable the tile state (XCR0 0x%x)", lo);
        return;
    }
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) != 0) {
        snprintf(amx_why, sizeof amx_why, "Linux refused the tile state (arch_prctl: %s)", strerror(errno));
        return;
    }
    char failed[120];
    if (!amx_self_check(AMX_HW, failed, sizeof failed)) {
        snprintf(amx_why, sizeof amx_why, "the self-check failed (%s)", failed);
        return;
    }
    amx_native = AMX_HW;
    snprintf(amx_why, sizeof amx_why, "amx-int8");
}

static int amx_mode(void) {
    if (amx_forced >= 0) return amx_forced;
    pthread_once(&amx_once, amx_detect);
    return amx_native;
}

const char *zk_gemm_tiles(void) {
    pthread_once(&amx_once, amx_detect);
    if (!zk_path_is_avx512()) return "avx2";
    return amx_native == AMX_HW ? "amx-int8" : "avx512-vnni";
}

const char *zk_amx_status(void) {
    pthread_once(&amx_once, amx_detect);
    return amx_why;
}

int zk_force_amx(int mode) {
    pthread_once(&amx_once, amx_detect);
    if (mode == AMX_HW && amx_native != AMX_HW) return 0;
    if (mode == AMX_EMU && !zk_path_is_avx512()) return 0;
    amx_forced = mode;
    return 1;
}

int64_t zk_amx_emulated_products(void) { return emu.products; }

// The calling thread's tiles for one GEMM call: configured before, released after (a released thread
// saves no tile state on a context switch).
static void amx_begin(int amx) {
    if (amx == AMX_HW) amx_hw_begin();
    else if (amx == AMX_EMU) emu_config(&amx_tiles);
}

static void amx_end(int amx) {
    if (amx == AMX_HW) amx_hw_end();
    else if (amx == AMX_EMU) emu.configured = 0;
}

__attribute__((target(QG_TARGET)))
static void amx_panel16(int amx, const uint8_t *panel, const float *sc, const float *mn, int64_t nb, const zk_q8a *x,
                        int64_t ldx, const int32_t *hs, enum qg_kind kind, int offset, int packed, int64_t pf,
                        __m512 out[16]) {
    if (amx == AMX_HW) amx_panel16_hw(panel, sc, mn, nb, x, ldx, hs, kind, offset, packed, pf, out);
    else amx_panel16_emu(panel, sc, mn, nb, x, ldx, hs, kind, offset, packed, pf, out);
}

// All activation rows against one panel (unpacked, or packed and read from memory: prows is the end of
// the caller's rows, so prefetches stay inside them) of nr rows at column p0, tiles of 8 then the rest.
__attribute__((target(QG_TARGET), always_inline))
static inline void panel_rows(const uint8_t *panel, const float *sc, const float *mn, int64_t nb,
                              const zk_q8a *x, const int32_t *hs, int64_t nt, const enum qg_kind kind,
                              const int offset, const int packed, float *y, int64_t ldy, int64_t p0, int nr,
                              int64_t prows, int amx) {
    const __mmask16 keep = (__mmask16)((1u << nr) - 1);
    // A packed panel's first pass prefetches the panel PF_PANELS on (the caller's last panels: none).
    const int64_t pf = packed && p0 + PF_PANELS * QG_ROWS < prows ? PF_PANELS * nb * QP_BLOCK : 0;
    __m512 o[8];
    int64_t t = 0;
    if (amx) {  // tiles of 16 activation rows (the same bits as the VNNI tiles below)
        __m512 o16[16];
        for (; t + 16 <= nt; t += 16) {
            amx_panel16(amx, panel, sc, mn, nb, x + t * nb, nb, hs + 2 * t * nb, kind, offset, packed, t ? 0 : pf, o16);
            for (int j = 0; j < 16; j++) _mm512_mask_storeu_ps(y + (t + j) * ldy + p0, keep, o16[j]);
        }
    }
    for (; t + 8 <= nt; t += 8) {
        if (kind == QG_OFFSET) panel_tile_offset(panel, sc, mn, nb, x + t * nb, nb, hs + 2 * t * nb, offset, packed, t ? 0 : pf, 8, o);
        else if (kind == QG_MIN) panel_tile(panel, sc, mn, nb, 0, 1, x + t * nb, nb, hs + 2 * t * nb, kind, offset, 0, 0, 8, o);
        else panel_tile_k(panel, sc, mn, nb, x + t * nb, nb, hs + 2 * t * nb, kind, 8, o);
        for (int j = 0; j < 8; j++) _mm512_mask_storeu_ps(y + (t + j) * ldy + p0, keep, o[j]);
    }
    if (kind == QG_OFFSET && packed && nt - t >= 2) {  // 2-7 rows of a streamed panel: one tile (2: in order)
#define QG_REST(R) case R: panel_tile_offset(panel, sc, mn, nb, x + t * nb, nb, hs + 2 * t * nb, offset, 1, pf, R, o); break;
        switch (nt - t) {
        case 2: panel_tile_offset_seq(panel, sc, nb, x + t * nb, nb, hs + 2 * t * nb, offset, 1, pf, 2, o); break;
        QG_REST(3) QG_REST(4) QG_REST(5) QG_REST(6) QG_REST(7)
        }
#undef QG_REST
        for (int j = 0; j < nt - t; j++) _mm512_mask_storeu_ps(y + (t + j) * ldy + p0, keep, o[j]);
        return;
    }
    for (; t < nt; t++) {
        if (kind == QG_OFFSET) panel_tile_offset_seq(panel, sc, nb, x + t * nb, nb, hs + 2 * t * nb, offset, packed, pf, 1, o);
        else if (kind == QG_MIN) panel_tile(panel, sc, mn, nb, 0, 1, x + t * nb, nb, hs + 2 * t * nb, kind, offset, 0, 0, 1, o);
        else panel_tile_k(panel, sc, mn, nb, x + t * nb, nb, hs + 2 * t * nb, kind, 1, o);
        _mm512_mask_storeu_ps(y + t * ldy + p0, keep, o[0]);
    }
}

// One instance per kind (and for the offset kind, per panel layout), so their branches leave the inner
// loop.
__attribute__((target(QG_TARGET)))
static void panel_vnni(int type, const uint8_t *panel, const float *sc, const float *mn, int64_t nb,
                       const zk_q8a *x, const int32_t *hs, int64_t nt, float *y, int64_t ldy, int64_t p0, int nr,
                       int packed, int64_t prows, int amx) {
    const int offset = offset_of(type);
    switch (kind_of(type)) {
    case QG_MIN: panel_rows(panel, sc, mn, nb, x, hs, nt, QG_MIN, 0, 0, y, ldy, p0, nr, 0, amx); break;
    case QG_KMIN: panel_rows(panel, sc, mn, nb, x, hs, nt, QG_KMIN, 0, 0, y, ldy, p0, nr, 0, amx); break;
    case QG_OFFSET:
        if (packed) panel_rows(panel, sc, mn, nb, x, hs, nt, QG_OFFSET, offset, 1, y, ldy, p0, nr, prows, amx);
        else panel_rows(panel, sc, mn, nb, x, hs, nt, QG_OFFSET, offset, 0, y, ldy, p0, nr, 0, amx);
        break;
    case QG_HALVES: panel_rows(panel, sc, mn, nb, x, hs, nt, QG_HALVES, 0, 0, y, ldy, p0, nr, 0, amx); break;
    }
}

// AVX2 (no VNNI): the same panel, 8 rows (one 256-bit half of each 64-byte group) per vector, and the
// same integer dots from vpmaddubsw (u x q, pairs summed in int16) and vpmaddwd (int16 pairs to
// int32). Exact as long as no int16 sum passes 32767: with |q| <= 127 (both activation formats round
// into -127..127), a vpmaddubsw lane is at most 2 x 127 x max(u), and G of them are added in int16
// before widening: G = 8 for 4-bit u (8 x 2 x 15 x 127 = 30480), 4 for 5-bit (31496), 2 for Q6_K's
// 6 bits (32004). Q8_0's u = w + 128 would overflow one lane: it takes the row kernels' sign trick on
// w = u ^ 0x80 (|w| <= 128 times q with w's sign, 2 x 128 x 127 = 32512), the signed dot directly,
// so its offset is not taken off. The float operations per lane are the AVX-512 path's in the same
// order: bit-identical results.
//
// The int32 dots of a block's 16 panel rows (wb: rows 0-7, wb + 32: rows 8-15; H = 1: only the 8 at
// wb) with NT activation blocks a[t] (1 or 2; Q8_0 up to 4) over 4-byte groups j0 <= j < j1, G groups
// per int16 sum (G = 1: Q8_0's sign trick): dot[t][0] rows 0-7, dot[t][1] rows 8-15. Each weight vector
// is loaded once for all activation rows and each activation broadcast serves both halves, all in
// registers (int16 sums 4, int32 dots 4, weights 2-4 of AVX2's 16): a wider tile spills its
// broadcasts to the stack, and on AMD Zen 3 those stores, not the vpmaddubsw, set the pace. Q8_0 has
// no int16 sums, so 4 activation rows fit (int32 dots 8, weights and their magnitudes 4), and each
// weight vector's magnitude serves 4: one core of an AMD Zen 3, a 256 x 640 Q8_0 panel against 64
// rows in cache, 195 -> 188 us (alternated, the same bits).
// Q8_0's ceiling on that Zen 3: vpmaddubsw, vpmaddwd, vpsignb and vpabsb all issue on the same two
// pipes (each alone 2 a cycle, any pair together 2; vpaddd / vpxor / shifts go elsewhere), and an
// activation row takes 6.5 of them per 64 multiply-adds (sign, vpmaddubsw and vpmaddwd per half, a
// quarter of the magnitudes): 3.25 cycles, 59 GMAC/s a core at its 3.0 GHz, which the tile measures
// (58-59 in cache). Splitting w into nibbles or widening to int16 for vpmaddwd alone needs as many
// multiplier-pipe operations or more in total, so no exact variant is faster there.
#define QG_TILE_ROWS(G) ((G) == 1 ? 4 : 2)
__attribute__((target(QG_AVX2), always_inline))
static inline void dot16(const uint8_t *wb, const zk_q8a *const *a, const int j0, const int j1, const int G,
                         const int NT, const int H, __m256i dot[][2]) {
    for (int t = 0; t < NT; t++) dot[t][0] = dot[t][1] = _mm256_setzero_si256();
    for (int j = j0; j < j1; j += G) {
        __m256i p[4][2];
        for (int t = 0; t < NT; t++) p[t][0] = p[t][1] = _mm256_setzero_si256();
        for (int g = j; g < j + G; g++) {
            __m256i u[2], w[2], aw[2];
            for (int r = 0; r < H; r++) {
                u[r] = _mm256_loadu_si256((const __m256i *)(wb + g * (QG_ROWS * 4) + 32 * r));
                w[r] = _mm256_xor_si256(u[r], _mm256_set1_epi8((char)0x80));
                aw[r] = _mm256_abs_epi8(w[r]);
            }
#pragma clang loop unroll(full)
            for (int t = 0; t < NT; t++) {
                int32_t q4;
                memcpy(&q4, a[t]->q + 4 * g, 4);
                const __m256i q = _mm256_set1_epi32(q4);
                for (int r = 0; r < H; r++)
                    p[t][r] = _mm256_add_epi16(p[t][r], G == 1 ? _mm256_maddubs_epi16(aw[r], _mm256_sign_epi8(q, w[r]))
                                                               : _mm256_maddubs_epi16(u[r], q));
            }
        }
        for (int t = 0; t < NT; t++)
            for (int r = 0; r < H; r++) dot[t][r] = _mm256_add_epi32(dot[t][r], _mm256_madd_epi16(p[t][r], _mm256_set1_epi16(1)));
    }
}

// class_tree's AVX2 twin.
__attribute__((target(QG_AVX2), always_inline))
static inline __m256 class_tree_avx2(const __m256 *a) {
    return _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a[0], a[4]), _mm256_add_ps(a[2], a[6])),
                         _mm256_add_ps(_mm256_add_ps(a[1], a[5]), _mm256_add_ps(a[3], a[7])));
}

// One block of panel_tile_avx2: its NT activation rows' products into accumulator class c, or (init)
// starting that class at the product (an FMA into zero, as into zeroed memory).
__attribute__((target(QG_AVX2), always_inline))
static inline void tile_block_avx2(const uint8_t *panel, const float *sc, const float *mn, int64_t b, const zk_q8a *x,
                                   int64_t ldx, const int32_t *hs, const enum qg_kind kind, const int offset, const int G,
                                   const int packed, const int64_t pf, const int NT, const int init, __m256 acc[][4][2]) {
    const int C = kind == QG_OFFSET ? 8 : 1;
    const uint8_t *pb = panel + b * (packed ? QP_BLOCK : QG_ROWS * 32);
    if (packed && pf) prefetch_block(pb + pf);  // a streamed panel's block, PF_PANELS panels on
    const int c = C == 8 ? (int)(b & 7) : 0;
    __m256 s[2];
    for (int r = 0; r < 2; r++)
        s[r] = packed ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(pb + QG_ROWS * 32 + 16 * r)))
                      : _mm256_loadu_ps(sc + b * QG_ROWS + 8 * r);
    const int TS = QG_TILE_ROWS(G);
#pragma clang loop unroll(full)
    for (int t0 = 0; t0 < NT; t0 += TS) {
        const int n = NT - t0 < TS ? NT - t0 : TS;
        const zk_q8a *a[4];
        for (int i = 0; i < TS; i++) a[i] = x + (t0 + (i < n ? i : n - 1)) * ldx + b;  // (past n: the last row, unread)
        __m256i dot[4][2];
        dot16(pb, a, 0, 8, G, n, 2, dot);
        for (int i = 0; i < n; i++) {
            const int t = t0 + i;
            const int32_t *h = hs + 2 * (t * ldx + b);
            for (int r = 0; r < 2; r++) {
                __m256i d = dot[i][r];
                if (kind == QG_OFFSET && G > 1) d = _mm256_sub_epi32(d, _mm256_set1_epi32(offset * (h[0] + h[1])));
                acc[c][t][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_mul_ps(s[r], _mm256_set1_ps(a[i]->d)),
                                               init ? _mm256_setzero_ps() : acc[c][t][r]);
                if (kind == QG_MIN)
                    acc[c][t][r] = _mm256_fmadd_ps(_mm256_loadu_ps(mn + b * QG_ROWS + 8 * r), _mm256_set1_ps(a[i]->s), acc[c][t][r]);
            }
        }
    }
}

// panel_tile's and panel_tile_offset's AVX2 twin: NT (at most 4) activation rows, out[t][0] rows 0-7,
// out[t][1] rows 8-15. The blocks go in order, block b's product to accumulator b mod 8 for the offset
// kinds (then the class tree, as panel_tile_offset's passes and tree), to one accumulator for
// QG_MIN; the accumulators live in memory (8 x 4 x 2 vectors are more than AVX2's 16 registers), one
// load and store per block against its 8-32 vpmaddubsw. Each class starts at its first block's
// product: zeroing all 8 x 4 x 2 first compiled to a 2 KiB memset a call (~4% of a 64-row Q5_0 product
// on one core of an AMD Zen 3); only classes no block reaches (nb < 8) are zeroed.
__attribute__((target(QG_AVX2), always_inline))
static inline void panel_tile_avx2(const uint8_t *panel, const float *sc, const float *mn, int64_t nb,
                                   const zk_q8a *x, int64_t ldx, const int32_t *hs, const enum qg_kind kind,
                                   const int offset, const int G, const int packed, const int64_t pf, const int NT,
                                   __m256 out[][2]) {
    const int C = kind == QG_OFFSET ? 8 : 1;
    __m256 acc[8][4][2];
    const int peel = C == 8;  // (one class: zeroed; peeled measured slower for Q4_1)
    for (int c = !peel ? 0 : nb < C ? (int)nb : C; c < C; c++)
        for (int t = 0; t < NT; t++) acc[c][t][0] = acc[c][t][1] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; peel && b < nb && b < C; b++) tile_block_avx2(panel, sc, mn, b, x, ldx, hs, kind, offset, G, packed, pf, NT, 1, acc);
    for (; b < nb; b++) {
        tile_block_avx2(panel, sc, mn, b, x, ldx, hs, kind, offset, G, packed, pf, NT, 0, acc);
        // One class (QG_MIN): its 8 accumulators would otherwise take 8 of the 16 registers over the
        // blocks and spill dot16's sums; kept in memory like the 8 classes' (one core of an AMD Zen 3,
        // 256 x 640 Q4_1 against 64 rows in cache: 126 -> 108 us, the same bits).
        if (!peel) __asm__ volatile("" : "+m"(acc));
    }
    for (int t = 0; t < NT; t++)
        for (int r = 0; r < 2; r++) {
            if (C == 1) { out[t][r] = acc[0][t][r]; continue; }
            __m256 cl[8];
            for (int m = 0; m < 8; m++) cl[m] = acc[m][t][r];
            out[t][r] = class_tree_avx2(cl);
        }
}

// panel_tile_k's AVX2 twin (NT at most 4; out[t][0] rows 0-7, out[t][1] rows 8-15): the same integer sums
// and float operations.
__attribute__((target(QG_AVX2), always_inline))
static inline void panel_tile_k_avx2(const uint8_t *panel, const float *sc, const float *mn, int64_t nb, const zk_q8a *x,
                                     int64_t ldx, const int32_t *hs, const enum qg_kind kind, const int G, const int NT,
                                     __m256 out[][2]) {
    const int32_t *ks = (const int32_t *)sc;
    __m256 acc[4][2];
    for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nb / 8; sb++) {
        __m256i S[4][2];
        for (int t = 0; t < NT; t++) S[t][0] = S[t][1] = _mm256_setzero_si256();
        for (int64_t b = 8 * sb; b < 8 * sb + 8; b++) {
            const uint8_t *wb = panel + b * (QG_ROWS * 32);
            __m256i k[2];
            for (int r = 0; r < 2; r++) k[r] = _mm256_loadu_si256((const __m256i *)(ks + b * QG_ROWS + 8 * r));
#pragma clang loop unroll(full)
            for (int t0 = 0; t0 < NT; t0 += 2) {
                const int n = NT - t0 < 2 ? NT - t0 : 2;
                const zk_q8a *a[2] = {x + t0 * ldx + b, x + (t0 + n - 1) * ldx + b};  // (a lone row: itself twice, unread)
                if (kind == QG_HALVES) {
                    __m256i lo[2][2], hi[2][2];
                    dot16(wb, a, 0, 4, G, n, 2, lo);
                    dot16(wb, a, 4, 8, G, n, 2, hi);
                    for (int i = 0; i < n; i++) {
                        const int32_t *h = hs + 2 * ((t0 + i) * ldx + b);
                        for (int r = 0; r < 2; r++) {
                            const __m256i l = _mm256_sub_epi32(lo[i][r], _mm256_set1_epi32(Q6_K_BIAS * h[0]));
                            const __m256i u = _mm256_sub_epi32(hi[i][r], _mm256_set1_epi32(Q6_K_BIAS * h[1]));
                            S[t0 + i][r] = _mm256_add_epi32(S[t0 + i][r], _mm256_add_epi32(_mm256_mullo_epi32(l, _mm256_srai_epi32(_mm256_slli_epi32(k[r], 16), 16)),
                                                                                         _mm256_mullo_epi32(u, _mm256_srai_epi32(k[r], 16))));
                        }
                    }
                } else {
                    __m256i d[2][2];
                    dot16(wb, a, 0, 8, G, n, 2, d);
                    for (int i = 0; i < n; i++)
                        for (int r = 0; r < 2; r++)
                            S[t0 + i][r] = _mm256_add_epi32(S[t0 + i][r], _mm256_mullo_epi32(d[i][r], _mm256_and_si256(k[r], _mm256_set1_epi32(0xFFFF))));
                }
            }
        }
        for (int t = 0; t < NT; t++) {
            const __m256 da = _mm256_set1_ps(x[t * ldx + 8 * sb].d);
            const int32_t *h = hs + 2 * t * ldx;
            for (int r = 0; r < 2; r++) {
                acc[t][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S[t][r]), _mm256_mul_ps(_mm256_loadu_ps(mn + 8 * sb * QG_ROWS + 8 * r), da), acc[t][r]);
                if (kind != QG_KMIN) continue;
                __m256i m = _mm256_setzero_si256();
                for (int64_t b = 8 * sb; b < 8 * sb + 8; b++)
                    m = _mm256_add_epi32(m, _mm256_mullo_epi32(_mm256_srai_epi32(_mm256_loadu_si256((const __m256i *)(ks + b * QG_ROWS + 8 * r)), 16),
                                                               _mm256_set1_epi32(h[2 * b] + h[2 * b + 1])));
                acc[t][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), _mm256_mul_ps(_mm256_loadu_ps(mn + (8 * sb + 1) * QG_ROWS + 8 * r), da), acc[t][r]);
            }
        }
    }
    for (int t = 0; t < NT; t++) { out[t][0] = acc[t][0]; out[t][1] = acc[t][1]; }
}

// panel_tile_avx2 for one activation row of a packed panel (decode's output matrix): per half of the
// panel rows the blocks in order, block b to accumulator b mod 8, the eight accumulators in registers
// rather than memory, each half prefetching each block pf bytes on.
__attribute__((target(QG_AVX2), always_inline))
static inline void panel_row_offset_seq_avx2(const uint8_t *panel, int64_t nb, const zk_q8a *x, const int32_t *hs,
                                             const int offset, const int G, const int64_t pf, __m256 out[2]) {
    for (int r = 0; r < 2; r++) {
        __m256 acc[8];
        for (int m = 0; m < 8; m++) acc[m] = _mm256_setzero_ps();
        for (int64_t b8 = 0; b8 < nb; b8 += 8) {
#pragma clang loop unroll(full)
            for (int m = 0; m < 8; m++) {
                const int64_t b = b8 + m;
                if (b >= nb) break;
                const uint8_t *pb = panel + b * QP_BLOCK;
                if (pf) prefetch_block(pb + pf);  // (in both halves: a dropped prefetch gets a second chance; measured faster)
                const zk_q8a *a = x + b;
                const __m256 s = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(pb + QG_ROWS * 32 + 16 * r)));
                __m256i d[2][2];
                dot16(pb + 32 * r, &a, 0, 8, G, 1, 1, d);
                __m256i dot = d[0][0];
                if (G > 1) dot = _mm256_sub_epi32(dot, _mm256_set1_epi32(offset * (hs[2 * b] + hs[2 * b + 1])));
                acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(s, _mm256_set1_ps(a->d)), acc[m]);
            }
        }
        out[r] = class_tree_avx2(acc);
    }
}

// Stores one activation row's 16 lanes, or its first nr.
__attribute__((target(QG_AVX2), always_inline))
static inline void store_rows(float *y, const __m256 *o, int nr) {
    if (nr == QG_ROWS) {
        _mm256_storeu_ps(y, o[0]);
        _mm256_storeu_ps(y + 8, o[1]);
        return;
    }
    float tmp[QG_ROWS];
    _mm256_storeu_ps(tmp, o[0]);
    _mm256_storeu_ps(tmp + 8, o[1]);
    memcpy(y, tmp, (size_t)nr * sizeof(float));
}

// panel_rows' AVX2 twin: tiles of 4 activation rows (AVX2's 16 registers), then single rows.
__attribute__((target(QG_AVX2), always_inline))
static inline void panel_rows_avx2(const uint8_t *panel, const float *sc, const float *mn, int64_t nb,
                                   const zk_q8a *x, const int32_t *hs, int64_t nt, const enum qg_kind kind,
                                   const int offset, const int G, const int packed, float *y, int64_t ldy, int64_t p0,
                                   int nr, int64_t prows) {
    const int64_t pf = packed && p0 + PF_PANELS * QG_ROWS < prows ? PF_PANELS * nb * QP_BLOCK : 0;
    __m256 o[4][2];
    int64_t t = 0;
    for (; t + 4 <= nt; t += 4) {
        if (kind != QG_KMIN && kind != QG_HALVES) panel_tile_avx2(panel, sc, mn, nb, x + t * nb, nb, hs + 2 * t * nb, kind, offset, G, packed, t ? 0 : pf, 4, o);
        else panel_tile_k_avx2(panel, sc, mn, nb, x + t * nb, nb, hs + 2 * t * nb, kind, G, 4, o);
        for (int j = 0; j < 4; j++) store_rows(y + (t + j) * ldy + p0, o[j], nr);
    }
    for (; t < nt; t++) {
        if (kind == QG_OFFSET && packed) panel_row_offset_seq_avx2(panel, nb, x + t * nb, hs + 2 * t * nb, offset, G, pf, o[0]);
        else if (kind != QG_KMIN && kind != QG_HALVES) panel_tile_avx2(panel, sc, mn, nb, x + t * nb, nb, hs + 2 * t * nb, kind, offset, G, packed, 0, 1, o);
        else panel_tile_k_avx2(panel, sc, mn, nb, x + t * nb, nb, hs + 2 * t * nb, kind, G, 1, o);
        store_rows(y + t * ldy + p0, o[0], nr);
    }
}

// One instance per (kind, G), and for Q8_0 per panel layout.
__attribute__((target(QG_AVX2)))
static void panel_avx2(int type, const uint8_t *panel, const float *sc, const float *mn, int64_t nb,
                       const zk_q8a *x, const int32_t *hs, int64_t nt, float *y, int64_t ldy, int64_t p0, int nr,
                       int packed, int64_t prows) {
    const int offset = offset_of(type);
    switch (type) {
    case ZK_Q4_0: panel_rows_avx2(panel, sc, mn, nb, x, hs, nt, QG_OFFSET, offset, 8, 0, y, ldy, p0, nr, 0); break;
    case ZK_Q5_0: panel_rows_avx2(panel, sc, mn, nb, x, hs, nt, QG_OFFSET, offset, 4, 0, y, ldy, p0, nr, 0); break;
    case ZK_Q8_0:
        if (packed) panel_rows_avx2(panel, sc, mn, nb, x, hs, nt, QG_OFFSET, offset, 1, 1, y, ldy, p0, nr, prows);
        else panel_rows_avx2(panel, sc, mn, nb, x, hs, nt, QG_OFFSET, offset, 1, 0, y, ldy, p0, nr, 0);
        break;
    case ZK_Q4_1: panel_rows_avx2(panel, sc, mn, nb, x, hs, nt, QG_MIN, 0, 8, 0, y, ldy, p0, nr, 0); break;
    case ZK_Q5_1: panel_rows_avx2(panel, sc, mn, nb, x, hs, nt, QG_MIN, 0, 4, 0, y, ldy, p0, nr, 0); break;
    case ZK_Q4_K: panel_rows_avx2(panel, sc, mn, nb, x, hs, nt, QG_KMIN, 0, 8, 0, y, ldy, p0, nr, 0); break;
    case ZK_Q5_K: panel_rows_avx2(panel, sc, mn, nb, x, hs, nt, QG_KMIN, 0, 4, 0, y, ldy, p0, nr, 0); break;
    case ZK_Q6_K: panel_rows_avx2(panel, sc, mn, nb, x, hs, nt, QG_HALVES, 0, 2, 0, y, ldy, p0, nr, 0); break;
    default: break;
    }
}

// Rows [r0, r1) in panels of 16: unpack, then every activation row against the panel.
static void gemm_panels(int type, int vnni, int amx, const uint8_t *w, int64_t row_bytes, int64_t nb, int64_t r0,
                        int64_t r1, const zk_q8a *x, const int32_t *hs, int64_t nt, float *y, int64_t ldy,
                        uint8_t *panel, float *sc, float *mn) {
    for (int64_t p0 = r0; p0 < r1; p0 += QG_ROWS) {
        const int nr = (int)(r1 - p0 < QG_ROWS ? r1 - p0 : QG_ROWS);
        if (nr < QG_ROWS) {  // lanes past the last row: zero weights
            memset(panel, 0, (size_t)nb * QG_ROWS * 32);
            memset(sc, 0, (size_t)nb * QG_ROWS * sizeof(float));
            memset(mn, 0, (size_t)nb * QG_ROWS * sizeof(float));
        }
        // Later panels' rows stream from memory while this one is unpacked and multiplied (a decode batch
        // reads each weight once: without it the unpacking waits on every line). The offset types and
        // K-quants fetch the panel QG_AHEAD on, a block (super-block) of each row at a time as the
        // unpacking goes, and the first call the panels before it at once; Q4_1 / Q5_1 the next panel
        // at once.
        const int spread = kind_of(type) != QG_MIN;
        const int64_t burst = spread ? (p0 == r0 ? QG_AHEAD : 1) : 2;
        for (int64_t r = p0 + QG_ROWS; r < p0 + burst * QG_ROWS && r < r1; r++)
            for (int64_t off = 0; off < row_bytes; off += 64) _mm_prefetch((const char *)(w + r * row_bytes + off), _MM_HINT_T1);
        const int64_t left = r1 - (p0 + QG_AHEAD * QG_ROWS);
        const int ahead_rows = left <= 0 ? 0 : left < QG_ROWS ? (int)left : QG_ROWS;
        const uint8_t *ahead = ahead_rows ? w + (p0 + QG_AHEAD * QG_ROWS) * row_bytes : w;  // (never past the rows)
        if (type == ZK_Q5_0_PLANES) unpack_q5p_rows(w + p0 * row_bytes, row_bytes, nb, nr, panel, sc, ahead, ahead_rows);
        else if (type == ZK_Q4_K || type == ZK_Q5_K || type == ZK_Q6_K) unpack_k_rows(type, w + p0 * row_bytes, row_bytes, nb, nr, panel, sc, mn, ahead, ahead_rows);
        else unpack_block_rows(type, w + p0 * row_bytes, row_bytes, nb, nr, panel, sc, mn, ahead, spread ? ahead_rows : 0);
        const int unpacked = type == ZK_Q5_0_PLANES ? ZK_Q5_0 : type;  // (the same panel either way)
        if (vnni) panel_vnni(unpacked, panel, sc, mn, nb, x, hs, nt, y, ldy, p0, nr, 0, 0, amx);
        else panel_avx2(unpacked, panel, sc, mn, nb, x, hs, nt, y, ldy, p0, nr, 0, 0);
    }
}

int64_t zk_gemm_q8a_scratch_bytes(int64_t k) {
    const int64_t nb = k / 32;
    return nb * QG_ROWS * 32 + 2 * nb * QG_ROWS * (int64_t)sizeof(float);
}

// Every int8 type, as each measured faster than its sgemm route (dequantized tiles + OpenBLAS, its
// Cooperlake kernels) on AMD EPYC Zen 4 (CPUID family 25 model 17), one thread, 640 x 2048 weights
// (Gemma 3's ffn_down), GFLOP/s GEMM vs sgemm: Q6_K 43 vs 18 at 32 activation rows, 63 vs 30 at
// 64, 133 vs 64 at 512; Q5_K 96 vs 27, 86 vs 28, 146 vs 64; Q5_1 93 vs 26, 122 vs 55, 221 vs 80.
// The AVX2 path (forced on that CPU) against OpenBLAS's AVX2 (Haswell) kernels, at 32 / 512 rows:
// Q4_0 99 / 103 vs 53 / 80, Q4_1 113 / 155 vs 47 / 85, Q5_0 80 / 134 vs 66 / 93, Q5_1 95 / 144 vs
// 67 / 93, Q8_0 55 / 99 vs 39 / 91, Q4_K 65 / 112 vs 42 / 75, Q5_K 71 / 115 vs 41 / 78, Q6_K 37 / 93
// vs 23 / 73.
int zk_has_int8_gemm(int type) {
    switch (type) {
    case ZK_Q4_K: case ZK_Q5_K: case ZK_Q6_K: case ZK_Q4_1: case ZK_Q5_1: case ZK_Q5_0: case ZK_Q4_0: case ZK_Q8_0:
        return 1;
    default: return 0;
    }
}

int zk_gemm_matches_rows(int type) { return zk_has_int8_gemm(type) && kind_of(type) != QG_MIN; }

void zk_q8a_half_sums(const zk_q8a *src, int32_t *dst, int64_t n) {
    for (int64_t b = 0; b < n; b++) q8a_half_sums(src + b, dst + 2 * b, dst + 2 * b + 1);
}

// zk_gemm_q8a and zk_gemm_packed on the given path and tiles (the AMX self-check runs both tiles).
static void gemm_unpacked(int type, int vnni, int amx, const void *w, int64_t row_bytes, int64_t nb, int64_t r0,
                          int64_t r1, const zk_q8a *x, const int32_t *hs, int64_t nt, float *y, int64_t ldy,
                          void *scratch) {
    uint8_t *panel = (uint8_t *)scratch;
    float *sc = (float *)(panel + nb * QG_ROWS * 32), *mn = sc + nb * QG_ROWS;
    amx_begin(amx);
    gemm_panels(type, vnni, amx, (const uint8_t *)w, row_bytes, nb, r0, r1, x, hs, nt, y, ldy, panel, sc, mn);
    amx_end(amx);
}

static void gemm_packed(int type, int vnni, int amx, const void *packed, int64_t nb, int64_t r0, int64_t r1,
                        const zk_q8a *x, const int32_t *hs, int64_t nt, float *y, int64_t ldy) {
    amx_begin(amx);
    for (int64_t p0 = r0; p0 < r1; p0 += QG_ROWS) {
        const int nr = (int)(r1 - p0 < QG_ROWS ? r1 - p0 : QG_ROWS);
        const uint8_t *panel = (const uint8_t *)packed + p0 / QG_ROWS * nb * QP_BLOCK;
        if (vnni) panel_vnni(type, panel, 0, 0, nb, x, hs, nt, y, ldy, p0, nr, 1, r1, amx);
        else panel_avx2(type, panel, 0, 0, nb, x, hs, nt, y, ldy, p0, nr, 1, r1);
    }
    amx_end(amx);
}

int zk_gemm_q8a(int type, const void *w, int64_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                const zk_q8a *x, const int32_t *half_sums, int64_t nt, float *y, int64_t ldy, void *scratch) {
    if (!zk_has_int8_gemm(type)) return 0;
    const int vnni = zk_path_is_avx512(), amx = vnni && nt >= 16 ? amx_mode() : AMX_OFF;
    gemm_unpacked(type, vnni, amx, w, row_bytes, k / 32, r0, r1, x, half_sums, nt, y, ldy, scratch);
    return 1;
}

// Prepacked weights: Q8_0 panels built once at load, so no product unpacks them (a batched decode step
// spent about a third of the output matrix's time unpacking its 262144 rows). Per 16 rows (a panel) and
// block: the 512 panel bytes, then the rows' 16 f16 scales: 34 bytes per row and block, as the GGUF
// layout. The products compute the unpacked panels' float operations in the same order: the bits of
// zk_matmul_q8a for every row count (tested).
//
// On the AVX2 path, Q5_0 rows in planes (kernel_internal.h), row for row where the file has them: from the
// file's layout, Q5_0's one-row decode (most of a decode step's layer work) spends as long decoding the
// fifth bits and nibbles as multiplying (one core of an AMD Zen 3 in cache, 640 x 1024: 40.8 us a
// product from the file's layout, 31.5 us from planes; 131072 x 640 from memory on both cores 2.9 against
// 2.2 ms). The AVX-512 path keeps the file's layout (its 4-block VBMI decode; planes not measured there).
static int packs(int type) { return type == ZK_Q8_0 || type == ZK_Q5_0; }

int64_t zk_packed_bytes(int type, int64_t rows, int64_t k) {
    if (!packs(type) || k % 32 || (type == ZK_Q5_0 && zk_path_is_avx512())) return 0;
    if (type == ZK_Q5_0) return rows * (k / 32) * 22;
    return (rows + QG_ROWS - 1) / QG_ROWS * (k / 32) * QP_BLOCK;
}

// One Q5_0 row (nb blocks) into planes: the whole groups' scales and planes, the last blocks copied.
__attribute__((target(QG_AVX2)))
static void pack_q5p_row(const uint8_t *src, uint8_t *dst, int64_t nb) {
    const int64_t full = nb & ~(int64_t)7;
    memcpy(dst + full * 22, src + full * 22, (size_t)(nb - full) * 22);
    const __m256i e0 = _mm256_set1_epi8((char)0xE0), m60 = _mm256_set1_epi8(0x60), m80 = _mm256_set1_epi8((char)0x80);
    for (int64_t g0 = 0; g0 < full; g0 += 8) {
        uint8_t *g = dst + g0 * 22;
        __m256i u[8];
        for (int k = 0; k < 8; k++) {
            u[k] = block_bytes_avx2(ZK_Q5_0, src + (g0 + k) * 22);
            memcpy(g + 2 * k, src + (g0 + k) * 22, 2);
        }
        const __m256i p[5] = {
            _mm256_or_si256(u[0], _mm256_and_si256(_mm256_slli_epi16(u[5], 5), e0)),
            _mm256_or_si256(_mm256_or_si256(u[1], _mm256_and_si256(_mm256_slli_epi16(u[5], 2), m60)),
                            _mm256_and_si256(_mm256_slli_epi16(u[7], 4), m80)),
            _mm256_or_si256(u[2], _mm256_and_si256(_mm256_slli_epi16(u[6], 5), e0)),
            _mm256_or_si256(_mm256_or_si256(u[3], _mm256_and_si256(_mm256_slli_epi16(u[6], 2), m60)),
                            _mm256_and_si256(_mm256_slli_epi16(u[7], 3), m80)),
            _mm256_or_si256(u[4], _mm256_and_si256(_mm256_slli_epi16(u[7], 5), e0))};
        for (int i = 0; i < 5; i++) _mm256_storeu_si256((__m256i *)(g + 16 + 32 * i), p[i]);
    }
}

void zk_pack_panels(int type, const void *w, int64_t row_bytes, int64_t k, int64_t rows, int64_t p0, int64_t p1,
                    void *dst) {
    const int64_t nb = k / 32;
    if (type == ZK_Q5_0) {
        const int64_t r1 = p1 * QG_ROWS < rows ? p1 * QG_ROWS : rows;
        for (int64_t r = p0 * QG_ROWS; r < r1; r++)
            pack_q5p_row((const uint8_t *)w + r * row_bytes, (uint8_t *)dst + r * row_bytes, nb);
        return;
    }
    for (int64_t p = p0; p < p1; p++) {
        const uint8_t *src = (const uint8_t *)w + p * QG_ROWS * row_bytes;
        const int nr = (int)(rows - p * QG_ROWS < QG_ROWS ? rows - p * QG_ROWS : QG_ROWS);
        uint8_t *panel = (uint8_t *)dst + p * nb * QP_BLOCK;
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *scales = panel + b * QP_BLOCK + QG_ROWS * 32;  // each row's f16 block scale, as stored
            for (int half = 0; half < 2; half++) {
                __m256i r[8];
                for (int i = 0; i < 8; i++) {
                    const int row = 8 * half + i;
                    r[i] = row < nr ? block_bytes_avx2(type, src + row * row_bytes + b * 34) : _mm256_setzero_si256();
                    if (row < nr) memcpy(scales + 2 * row, src + row * row_bytes + b * 34, 2);
                    else memset(scales + 2 * row, 0, 2);
                }
                put_rows8(panel, QP_BLOCK, b, half, r);
            }
        }
    }
}

int zk_gemm_packed(int type, const void *packed, int64_t k, int64_t rows, int64_t r0, int64_t r1, const zk_q8a *x,
                   const int32_t *half_sums, int64_t nt, float *y, int64_t ldy, int64_t gemm_from, void *scratch) {
    if (!packs(type) || k % 32 || r0 % QG_ROWS || r1 > rows) return 0;
    const int vnni = zk_path_is_avx512(), amx = vnni && nt >= 16 ? amx_mode() : AMX_OFF;
    if (type == ZK_Q5_0) {
        const int64_t row_bytes = k / 32 * 22;
        if (nt < gemm_from) return zk_matmul_q5_0_planes(packed, row_bytes, k, r0, r1, x, nt, y, ldy);
        if (!scratch) return 0;
        gemm_unpacked(ZK_Q5_0_PLANES, vnni, amx, packed, row_bytes, k / 32, r0, r1, x, half_sums, nt, y, ldy, scratch);
        return 1;
    }
    gemm_packed(type, vnni, amx, packed, k / 32, r0, r1, x, half_sums, nt, y, ldy);
    return 1;
}

// The start-up check of the tiles before any product takes them: 16 rows of every int8 type (K = 256,
// one K-quant super-block) against 16 activation rows, through `amx` and through the VNNI tiles, and
// the Q8_0 prepacked panels too; the bits must agree. A tile instruction the CPU or the OS refuses
// (SIGILL, or SIGSEGV for a configuration it rejects) is trapped and reported, not fatal: the caller
// falls back to VNNI. Returns 1 if all agree, else 0 with the first difference or signal in `why`.
static sigjmp_buf amx_trap;
static volatile sig_atomic_t amx_trapped;
static struct sigaction amx_old_ill, amx_old_segv;
static _Thread_local volatile sig_atomic_t amx_checking;  // this thread is inside the check
const char *zk_type_name(int type) {
    switch (type) {
    case ZK_Q8_0: return "Q8_0"; case ZK_Q4_0: return "Q4_0"; case ZK_Q4_1: return "Q4_1"; case ZK_Q5_0: return "Q5_0";
    case ZK_Q5_1: return "Q5_1"; case ZK_Q4_K: return "Q4_K"; case ZK_Q5_K: return "Q5_K"; case ZK_Q6_K: return "Q6_K";
    default: return "?";
    }
}
// A fault on another thread meanwhile is not the check's: its own handler is put back and the
// faulting instruction runs again into it.
static void amx_trap_handler(int sig) {
    if (!amx_checking) {
        sigaction(sig, sig == SIGILL ? &amx_old_ill : &amx_old_segv, NULL);
        return;
    }
    amx_trapped = sig;
    siglongjmp(amx_trap, 1);
}

// Random weights of `type` (rows of row_bytes) whose f16 scales and minimums are all 1/128, so every
// product is finite, and activations in [-1, 1): the inputs of the AMX self-check and the calibration.
static void synthetic_weights(int type, uint8_t *w, int64_t bytes, uint32_t *s) {
    for (int64_t i = 0; i < bytes; i++) w[i] = (uint8_t)((*s = *s * 1664525u + 1013904223u) >> 24);
    const int64_t bb = zk_block_bytes(type), fields[2] = {type == ZK_Q6_K ? 208 : 0, 2};
    const int nf = type == ZK_Q4_1 || type == ZK_Q5_1 || type == ZK_Q4_K || type == ZK_Q5_K ? 2 : 1;
    for (int64_t b = 0; b < bytes / bb; b++)
        for (int f = 0; f < nf; f++) { w[b * bb + fields[f]] = 0x00; w[b * bb + fields[f] + 1] = 0x20; }
}

static void synthetic_activations(float *x, int64_t n, uint32_t *s) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(int32_t)((*s = *s * 1664525u + 1013904223u) >> 8) / (float)(1 << 23) - 1.0f;
}

static int amx_self_check(int amx, char *why, size_t n) {
    enum { R = 16, K = 256, NB = K / 32 };
    static const int types[] = {ZK_Q8_0, ZK_Q4_0, ZK_Q4_1, ZK_Q5_0, ZK_Q5_1, ZK_Q4_K, ZK_Q5_K, ZK_Q6_K};
    if (!zk_path_is_avx512()) { snprintf(why, n, "no AVX-512 VNNI path"); return 0; }
    const int64_t scratch_bytes = zk_gemm_q8a_scratch_bytes(K);
    // (Q8_0 has the most bytes per element of the types.)
    uint8_t *w = malloc(R * NB * zk_block_bytes(ZK_Q8_0)), *scratch = malloc((size_t)scratch_bytes), *packed = malloc((size_t)zk_packed_bytes(ZK_Q8_0, R, K));
    float *x = malloc(sizeof(float) * R * K), *y[2] = {malloc(sizeof(float) * R * R), malloc(sizeof(float) * R * R)};
    zk_q8a *q = malloc(sizeof(zk_q8a) * R * NB);
    int32_t *hs = malloc(sizeof(int32_t) * 2 * R * NB);
    volatile int ok = w && scratch && packed && x && y[0] && y[1] && q && hs;
    if (!ok) snprintf(why, n, "out of memory");
    struct sigaction trap = {.sa_handler = amx_trap_handler};
    sigemptyset(&trap.sa_mask);
    static pthread_mutex_t one_at_a_time = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&one_at_a_time);
    amx_checking = 1;
    sigaction(SIGILL, &trap, &amx_old_ill);
    sigaction(SIGSEGV, &trap, &amx_old_segv);
    volatile int t = 0;
    if (ok) {
        if (sigsetjmp(amx_trap, 1) != 0) {
            snprintf(why, n, "%s in the tiles on %s", amx_trapped == SIGILL ? "SIGILL" : "SIGSEGV", zk_type_name(types[t]));
            ok = 0;
        }
    }
    for (; ok && t < (int)(sizeof types / sizeof types[0]); t++) {
        const int type = types[t];
        const int64_t row_bytes = NB * 32 / zk_block_elems(type) * zk_block_bytes(type);
        uint32_t s = 0x2545F491u + (uint32_t)type;
        synthetic_weights(type, w, R * row_bytes, &s);
        synthetic_activations(x, R * K, &s);
        zk_quantize_q8a(x, q, R * K, zk_act_format(type));
        zk_q8a_half_sums(q, hs, R * NB);
        for (int pass = 0; pass < 2; pass++)
            gemm_unpacked(type, 1, pass ? amx : AMX_OFF, w, row_bytes, NB, 0, R, q, hs, R, y[pass], R, scratch);
        if (memcmp(y[0], y[1], sizeof(float) * R * R)) { snprintf(why, n, "tiles differ from VNNI on %s", zk_type_name(type)); ok = 0; }
        if (ok && type == ZK_Q8_0) {
            zk_pack_panels(type, w, row_bytes, K, R, 0, 1, packed);
            for (int pass = 0; pass < 2; pass++) gemm_packed(type, 1, pass ? amx : AMX_OFF, packed, NB, 0, R, q, hs, R, y[pass], R);
            if (memcmp(y[0], y[1], sizeof(float) * R * R)) { snprintf(why, n, "tiles differ from VNNI on packed Q8_0"); ok = 0; }
        }
    }
    sigaction(SIGILL, &amx_old_ill, NULL);
    sigaction(SIGSEGV, &amx_old_segv, NULL);
    amx_checking = 0;
    pthread_mutex_unlock(&one_at_a_time);
    free(w), free(scratch), free(packed), free(x), free(y[0]), free(y[1]), free(q), free(hs);
    return ok;
}

int zk_amx_self_check(int mode, char *why, int64_t n) {
    if (mode != AMX_HW && mode != AMX_EMU) { snprintf(why, (size_t)n, "mode %d is not a tile mode", mode); return 0; }
    return amx_self_check(mode, why, (size_t)n);
}

// The decode-batch crossover (zk_rows_gemm_min_rows): R weight rows of K elements (whole K-quant
// super-blocks; 72-136 KiB of weights, in L2, where a decode step reads its matrices from memory: both
// routes are compute-bound at these row counts with their prefetches, and the in-cache answer repeats
// from run to run where one from L3 did not) against n = 2..max_rows activation rows on each route,
// one thread, the fastest of 5 interleaved runs each.
static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int zk_rows_gemm_min_rows(int type, int max_rows) {
    enum { R = 128, K = 1024, NB = K / 32, REPS = 5 };
    if (!zk_gemm_matches_rows(type) || max_rows < 2) return 0;
    if (max_rows > 32) max_rows = 32;
    const int64_t row_bytes = K / zk_block_elems(type) * zk_block_bytes(type);
    // A type whose matrices are packed in rows on this path (Q5_0 planes) is timed packed: what its products run.
    const int rowwise = type == ZK_Q5_0 && zk_packed_bytes(type, R, K) > 0;
    uint8_t *w = malloc((size_t)(R * row_bytes)), *scratch = malloc((size_t)zk_gemm_q8a_scratch_bytes(K));
    float *x = malloc(sizeof(float) * (size_t)(max_rows * K)), *y = malloc(sizeof(float) * (size_t)(max_rows * R));
    zk_q8a *q = malloc(sizeof(zk_q8a) * (size_t)(max_rows * NB));
    int32_t *hs = malloc(sizeof(int32_t) * (size_t)(2 * max_rows * NB));
    int best = 0;
    if (w && scratch && x && y && q && hs) {
        uint32_t s = 0x9E3779B9u + (uint32_t)type;
        synthetic_weights(type, w, R * row_bytes, &s);
        if (rowwise) {
            uint8_t *file = malloc((size_t)(R * row_bytes));
            if (file) memcpy(file, w, (size_t)(R * row_bytes)), zk_pack_panels(type, file, row_bytes, K, R, 0, R / QG_ROWS, w);
            free(file);
        }
        synthetic_activations(x, max_rows * K, &s);
        zk_quantize_q8a(x, q, max_rows * K, zk_act_format(type));
        zk_q8a_half_sums(q, hs, max_rows * NB);
        double t_rows[33], t_gemm[33];
        for (int n = 0; n <= max_rows; n++) t_rows[n] = t_gemm[n] = 1e30;
        zk_gemm_q8a(type, w, row_bytes, K, 0, R, q, hs, max_rows, y, R, scratch);  // (first touch)
        for (int rep = 0; rep < REPS; rep++)
            for (int n = 2; n <= max_rows; n++) {
                double t0 = seconds();
                if (rowwise) zk_gemm_packed(type, w, K, R, 0, R, q, hs, n, y, R, INT64_MAX, scratch);
                else zk_matmul_q8a(type, w, row_bytes, K, 0, R, q, n, y, R);
                const double t1 = seconds();
                if (rowwise) zk_gemm_packed(type, w, K, R, 0, R, q, hs, n, y, R, 0, scratch);
                else zk_gemm_q8a(type, w, row_bytes, K, 0, R, q, hs, n, y, R, scratch);
                const double t2 = seconds();
                if (t1 - t0 < t_rows[n]) t_rows[n] = t1 - t0;
                if (t2 - t1 < t_gemm[n]) t_gemm[n] = t2 - t1;
            }
        best = max_rows + 1;
        for (int n = max_rows; n >= 2 && t_gemm[n] < t_rows[n]; n--) best = n;
    }
    free(w), free(scratch), free(x), free(y), free(q), free(hs);
    return best;
}
