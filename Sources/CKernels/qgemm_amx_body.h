// The AMX tile kernel of the int8 panel GEMM, included twice by qgemm.c: with the AMX instructions
// (AMX_SUFFIX _hw) and with their C emulation (_emu: tests check the tile shapes, the operand layout and
// the float order on any AVX-512 CPU). Expects AMX_SUFFIX, AMX_TARGET and the tile operations
// T_LOAD(tile, base, stride), T_ZERO(tile), T_DP(c, a, b) (c += a . b, a signed bytes, b unsigned),
// T_STORE(tile, base, stride), and undefines them at its end.
//
// The tiles (amx_config): tmm1 holds 16 activation rows' 32 int8 of one block (a row per activation
// row, the blocks ldx apart in memory), tmm2 the panel's block as it is stored: 8 rows of 64 bytes,
// row j = the 16 weight rows' unsigned bytes 4j..4j+3, which is exactly a TDPBSUD B operand (K = 32,
// N = 16). tmm0 = tmm1 . tmm2 is the block's 16 x 16 exact int32 dots, stored and finished by the VNNI
// path's operations (block_acc; the K-quants' k_block_sum and k_finish) in its order. Q6_K's halves
// take tmm4 / tmm5 (16 x 16 bytes: each activation block's elements 0-15 and 16-31) against tmm6 /
// tmm7 (the panel's rows 0-3 and 4-7) into tmm0 / tmm3. A block's dots are one tile product each, not
// one over K = 64: every block has its own scale, and the integer dots must be the per-block ones.

#define AMX_CAT2(a, b) a##b
#define AMX_CAT(a, b) AMX_CAT2(a, b)
#define AMX_NAME(n) AMX_CAT(n, AMX_SUFFIX)

// Block b's 16 x 16 exact dots into lo (Q6_K's halves: lo the first 16 elements', hi the rest's).
__attribute__((target(AMX_TARGET), always_inline))
static inline void AMX_NAME(amx_block)(const uint8_t *pb, const zk_q8a *x, int64_t b, size_t stride, const int halves,
                                       int32_t lo[16][16], int32_t hi[16][16]) {
    if (halves) {
        T_LOAD(4, x[b].q, stride);
        T_LOAD(5, x[b].q + 16, stride);
        T_LOAD(6, pb, 64);
        T_LOAD(7, pb + 4 * 64, 64);
        T_ZERO(0);
        T_ZERO(3);
        T_DP(0, 4, 6);
        T_DP(3, 5, 7);
        T_STORE(0, lo, 64);
        T_STORE(3, hi, 64);
    } else {
        T_LOAD(1, x[b].q, stride);
        T_LOAD(2, pb, 64);
        T_ZERO(0);
        T_DP(0, 1, 2);
        T_STORE(0, lo, 64);
    }
}

// 16 activation rows (x: row t's blocks at x + t * ldx, hs their half sums) against one panel, blocks
// b0, b0 + step, ... in order: acc[t] = the panel rows' accumulated results (panel_tile's).
__attribute__((target(AMX_TARGET), always_inline))
static inline void AMX_NAME(amx_pass)(const uint8_t *panel, const float *sc, const float *mn, int64_t nb, int64_t b0,
                                      int step, const zk_q8a *x, int64_t ldx, const int32_t *hs,
                                      const enum qg_kind kind, const int offset, const int packed, const int64_t pf,
                                      __m512 acc[16]) {
    int32_t lo[16][16] __attribute__((aligned(64))), hi[16][16] __attribute__((aligned(64)));
    const size_t stride = (size_t)ldx * sizeof(zk_q8a);
    for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = b0; b < nb; b += step) {
        const uint8_t *pb = panel + b * (packed ? QP_BLOCK : QG_ROWS * 32);
        if (packed && pf) prefetch_block(pb + pf);  // streamed panels (panel_tile's)
        const __m512 s = panel_scales(pb, sc, b, packed), m = panel_mins(mn, b, packed);
        AMX_NAME(amx_block)(pb, x, b, stride, 0, lo, hi);
        for (int t = 0; t < 16; t++) {
            const int32_t *h = hs + 2 * (t * ldx + b);
            __m512i dot = _mm512_load_si512((const __m512i *)lo[t]);
            if (kind == QG_OFFSET) dot = _mm512_add_epi32(dot, _mm512_set1_epi32(-offset * (h[0] + h[1])));
            acc[t] = block_acc(kind, dot, s, m, x + t * ldx + b, acc[t]);
        }
    }
}

// The K-quants' 16 activation rows (panel_tile_k's integer sums and float operations).
__attribute__((target(AMX_TARGET), always_inline))
static inline void AMX_NAME(amx_pass_k)(const uint8_t *panel, const float *sc, const float *mn, int64_t nb,
                                        const zk_q8a *x, int64_t ldx, const int32_t *hs, const enum qg_kind kind,
                                        __m512 acc[16]) {
    int32_t lo[16][16] __attribute__((aligned(64))), hi[16][16] __attribute__((aligned(64)));
    const size_t stride = (size_t)ldx * sizeof(zk_q8a);
    const int32_t *ks = (const int32_t *)sc;
    for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nb / 8; sb++) {
        __m512i S[16];
        for (int t = 0; t < 16; t++) S[t] = _mm512_setzero_si512();
        for (int64_t b = 8 * sb; b < 8 * sb + 8; b++) {
            AMX_NAME(amx_block)(panel + b * (QG_ROWS * 32), x, b, stride, kind == QG_HALVES, lo, hi);
            const __m512i k = _mm512_loadu_si512(ks + b * QG_ROWS);
            for (int t = 0; t < 16; t++) {
                const int32_t *h = hs + 2 * (t * ldx + b);
                __m512i dot = _mm512_load_si512((const __m512i *)lo[t]), second = dot;
                if (kind == QG_HALVES) {
                    dot = _mm512_sub_epi32(dot, _mm512_set1_epi32(Q6_K_BIAS * h[0]));
                    second = _mm512_sub_epi32(_mm512_load_si512((const __m512i *)hi[t]), _mm512_set1_epi32(Q6_K_BIAS * h[1]));
                }
                S[t] = _mm512_add_epi32(S[t], k_block_sum(kind, k, dot, second));
            }
        }
        for (int t = 0; t < 16; t++) acc[t] = k_finish(kind, S[t], ks, mn, sb, x + t * ldx, hs + 2 * t * ldx, acc[t]);
    }
}

// One panel against 16 activation rows: out[t] = row t's 16 results, the bits of panel_rows' VNNI tiles.
// The offset types keep the row kernels' order (eight classes of blocks, added in class_tree's tree).
__attribute__((target(AMX_TARGET)))
static void AMX_NAME(amx_panel16)(const uint8_t *panel, const float *sc, const float *mn, int64_t nb,
                                  const zk_q8a *x, int64_t ldx, const int32_t *hs, int kind_, int offset, int packed,
                                  int64_t pf, __m512 out[16]) {
    const enum qg_kind kind = (enum qg_kind)kind_;
    if (kind == QG_MIN) {
        AMX_NAME(amx_pass)(panel, sc, mn, nb, 0, 1, x, ldx, hs, QG_MIN, 0, 0, 0, out);
        return;
    }
    if (kind == QG_KMIN) {
        AMX_NAME(amx_pass_k)(panel, sc, mn, nb, x, ldx, hs, QG_KMIN, out);
        return;
    }
    if (kind == QG_HALVES) {
        AMX_NAME(amx_pass_k)(panel, sc, mn, nb, x, ldx, hs, QG_HALVES, out);
        return;
    }
    __m512 part[8][16];  // [class][t]
    for (int c = 0; c < 8; c++) {
        if (packed) AMX_NAME(amx_pass)(panel, sc, mn, nb, c, 8, x, ldx, hs, QG_OFFSET, offset, 1, pf, part[c]);
        else AMX_NAME(amx_pass)(panel, sc, mn, nb, c, 8, x, ldx, hs, QG_OFFSET, offset, 0, 0, part[c]);
    }
    for (int t = 0; t < 16; t++)
        out[t] = class_tree(part[0][t], part[1][t], part[2][t], part[3][t], part[4][t], part[5][t], part[6][t], part[7][t]);
}

#undef AMX_NAME
#undef AMX_CAT
#undef AMX_CAT2
#undef AMX_SUFFIX
#undef AMX_TARGET
#undef T_LOAD
#undef T_ZERO
#undef T_DP
#undef T_STORE
