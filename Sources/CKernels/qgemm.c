// Int8 GEMM for long activation inputs (prompt chunks) on AVX-512 VNNI: a panel of 16 weight rows is
// unpacked once per call into unsigned bytes laid out so that each 32-bit lane of a vpdpbusd is one
// weight row (lane i holds 4 consecutive weights of row i), with a scale and a minimum per row and
// 32-element block. One instruction then advances 16 rows by 4 elements against a broadcast of 4
// activation bytes: no unpacking in the inner loop and no horizontal sums. Per (row, activation row)
// the arithmetic runs over blocks in a fixed order, whatever the tile: batch-invariant.
// Types: Q4_K, Q4_1 (unsigned with a minimum), and Q5_0, Q4_0, Q8_0 (signed, stored offset by 16, 8,
// 128 so that they are unsigned bytes; the offset times the activation block's integer sum is taken
// off the exact int32 dot, as the row kernels' sign trick does). Q5_K and Q6_K return 0.
#include "ckernels.h"
#include <immintrin.h>
#include <string.h>
#include "kernel_internal.h"

#define QG_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define QG_ROWS 16

// Scatters one block's 32 unsigned weights of panel row i: panel[b][j][i][0..3] = u[4j..4j+3].
static inline void put_block(uint8_t *panel, int64_t b, int i, const uint8_t *u) {
    uint8_t *p = panel + b * (QG_ROWS * 32) + i * 4;
    for (int j = 0; j < 8; j++) memcpy(p + j * (QG_ROWS * 4), u + 4 * j, 4);
}

// The offset added to signed weights to make them unsigned bytes (0: the type is unsigned).
static int offset_of(int type) {
    switch (type) {
    case ZK_Q5_0: return 16;
    case ZK_Q4_0: return 8;
    case ZK_Q8_0: return 128;
    default: return 0;
    }
}

// Unpacks weight row r into panel row i; sc/mn: [block][QG_ROWS]. Returns 0 for unsupported types.
static int unpack_row(int type, const uint8_t *row, int64_t nb, int i, uint8_t *panel, float *sc, float *mn) {
    uint8_t u[32];
    if (type == ZK_Q5_0 || type == ZK_Q4_0 || type == ZK_Q8_0) {
        const int64_t bb = type == ZK_Q5_0 ? 22 : type == ZK_Q4_0 ? 18 : 34;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = row + b * bb;
            if (type == ZK_Q8_0) {
                for (int e = 0; e < 32; e++) u[e] = (uint8_t)((int)(int8_t)blk[2 + e] + 128);
            } else if (type == ZK_Q4_0) {
                for (int e = 0; e < 16; e++) { u[e] = blk[2 + e] & 15; u[e + 16] = blk[2 + e] >> 4; }
            } else {
                uint32_t qh;
                memcpy(&qh, blk + 2, 4);
                for (int e = 0; e < 16; e++) {
                    u[e] = (uint8_t)((blk[6 + e] & 15) | (((qh >> e) & 1) << 4));
                    u[e + 16] = (uint8_t)((blk[6 + e] >> 4) | (((qh >> (e + 16)) & 1) << 4));
                }
            }
            put_block(panel, b, i, u);
            sc[b * QG_ROWS + i] = half_to_float(blk);
            mn[b * QG_ROWS + i] = 0.0f;
        }
        return 1;
    }
    if (type == ZK_Q4_K) {
        for (int64_t s = 0; s < nb / 8; s++) {
            const uint8_t *blk = row + s * 144;
            const float d = half_to_float(blk), dmin = half_to_float(blk + 2);
            uint8_t scs[8], mns[8];
            scale_min_k4(blk + 4, scs, mns);
            for (int g = 0; g < 4; g++) {
                const uint8_t *q = blk + 16 + 32 * g;
                for (int half = 0; half < 2; half++) {
                    const int64_t b = s * 8 + 2 * g + half;
                    for (int e = 0; e < 32; e++) u[e] = half ? q[e] >> 4 : q[e] & 15;
                    put_block(panel, b, i, u);
                    sc[b * QG_ROWS + i] = d * (float)scs[2 * g + half];
                    mn[b * QG_ROWS + i] = -dmin * (float)mns[2 * g + half];
                }
            }
        }
        return 1;
    }
    if (type == ZK_Q4_1) {
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = row + b * 20;
            for (int e = 0; e < 16; e++) { u[e] = blk[4 + e] & 15; u[e + 16] = blk[4 + e] >> 4; }
            put_block(panel, b, i, u);
            sc[b * QG_ROWS + i] = half_to_float(blk);
            mn[b * QG_ROWS + i] = half_to_float(blk + 2);
        }
        return 1;
    }
    return 0;
}

// NT activation rows against the panel: out[t] lanes = the panel rows' results.
__attribute__((target(QG_TARGET), always_inline))
static inline void panel_tile(const uint8_t *panel, const float *sc, const float *mn, int64_t nb,
                              const zk_q8a *x, int64_t ldx, const int32_t *sums, int offset, const int NT,
                              __m512 *out) {
    __m512 acc[8];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m512i *wb = (const __m512i *)(panel + b * (QG_ROWS * 32));
        __m512i w[8];
        for (int j = 0; j < 8; j++) w[j] = _mm512_loadu_si512(wb + j);
        const __m512 s = _mm512_loadu_ps(sc + b * QG_ROWS), m = _mm512_loadu_ps(mn + b * QG_ROWS);
        for (int t = 0; t < NT; t++) {
            const zk_q8a *a = x + t * ldx + b;
            int32_t q4[8];
            memcpy(q4, a->q, 32);
            __m512i dot = _mm512_setzero_si512();
            for (int j = 0; j < 8; j++) dot = _mm512_dpbusd_epi32(dot, w[j], _mm512_set1_epi32(q4[j]));
            if (offset) dot = _mm512_sub_epi32(dot, _mm512_set1_epi32(offset * sums[t * ldx + b]));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(s, _mm512_set1_ps(a->d)), acc[t]);
            if (!offset) acc[t] = _mm512_fmadd_ps(m, _mm512_set1_ps(a->s), acc[t]);  // unsigned types: minimum
        }
    }
    for (int t = 0; t < NT; t++) out[t] = acc[t];
}

__attribute__((target(QG_TARGET)))
static void gemm_vnni(int type, const uint8_t *w, int64_t row_bytes, int64_t nb, int64_t r0, int64_t r1,
                      const zk_q8a *x, const int32_t *sums, int64_t nt, float *y, int64_t ldy, uint8_t *panel,
                      float *sc, float *mn) {
    const int offset = offset_of(type);
    for (int64_t p0 = r0; p0 < r1; p0 += QG_ROWS) {
        const int nr = (int)(r1 - p0 < QG_ROWS ? r1 - p0 : QG_ROWS);
        if (nr < QG_ROWS) {  // lanes past the last row: zero weights
            memset(panel, 0, (size_t)nb * QG_ROWS * 32);
            memset(sc, 0, (size_t)nb * QG_ROWS * sizeof(float));
            memset(mn, 0, (size_t)nb * QG_ROWS * sizeof(float));
        }
        for (int i = 0; i < nr; i++) unpack_row(type, w + (p0 + i) * row_bytes, nb, i, panel, sc, mn);
        const __mmask16 keep = (__mmask16)((1u << nr) - 1);
        __m512 o[8];
        int64_t t = 0;
        for (; t + 8 <= nt; t += 8) {
            panel_tile(panel, sc, mn, nb, x + t * nb, nb, sums + t * nb, offset, 8, o);
            for (int j = 0; j < 8; j++) _mm512_mask_storeu_ps(y + (t + j) * ldy + p0, keep, o[j]);
        }
        for (; t < nt; t++) {
            panel_tile(panel, sc, mn, nb, x + t * nb, nb, sums + t * nb, offset, 1, o);
            _mm512_mask_storeu_ps(y + t * ldy + p0, keep, o[0]);
        }
    }
}

int64_t zk_gemm_q8a_scratch_bytes(int64_t k) {
    const int64_t nb = k / 32;
    return nb * QG_ROWS * 32 + 2 * nb * QG_ROWS * (int64_t)sizeof(float);
}

int zk_has_int8_gemm(int type) {
    switch (type) {
    case ZK_Q4_K: case ZK_Q4_1: case ZK_Q5_0: case ZK_Q4_0: case ZK_Q8_0: return zk_path_is_avx512();
    default: return 0;
    }
}

int zk_gemm_q8a(int type, const void *w, int64_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                const zk_q8a *x, const int32_t *sums, int64_t nt, float *y, int64_t ldy, void *scratch) {
    if (!zk_has_int8_gemm(type)) return 0;
    const int64_t nb = k / 32;
    uint8_t *panel = (uint8_t *)scratch;
    float *sc = (float *)(panel + nb * QG_ROWS * 32), *mn = sc + nb * QG_ROWS;
    gemm_vnni(type, (const uint8_t *)w, row_bytes, nb, r0, r1, x, sums, nt, y, ldy, panel, sc, mn);
    return 1;
}
