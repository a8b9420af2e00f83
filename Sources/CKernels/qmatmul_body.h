// The int8 row kernels, written once and compiled twice by qmatmul.c: with QM_VNNI 1 for CPUs with
// AVX-512 VNNI (vpdpbusd), with QM_VNNI 0 for plain AVX2 (vpmaddubsw + vpmaddwd). QM_SUFFIX names
// the instance, QM_TARGET is its function target attribute. Not a public header.
//
// Every kernel computes, for one weight row and NT activation rows, the dot products of the row's
// GGML blocks with the activations' 32-element int8 blocks (zk_q8a). The integer part of each
// 32-element dot is exact; the float part applies weight scale x activation scale: for Q8_0/Q4_0/Q5_0
// to each block's whole dot, for the K-quants to each super-block's exact integer sum, in the int8
// GEMM's order (see QM_BLOCKS and QM_K4: the GEMM and these kernels agree bit for bit), for Q4_1/Q5_1
// in llama.cpp's order (see their comment). A row's operations never depend on NT or on its slot in the tile, so results are
// identical whatever else is in the batch, and the two instruction sets do the same float operations
// in the same order (bit-identical).

#define QM_CAT_(a, b) a##b
#define QM_CAT(a, b) QM_CAT_(a, b)
#define QF(name) QM_CAT(name, QM_SUFFIX)
#define QM_FN static inline __attribute__((always_inline, target(QM_TARGET)))

// Unsigned bytes u times signed bytes s, summed in fours: 8 int32 lanes. u <= 128 so that
// vpmaddubsw's int16 pair sums never saturate (128 * 127 * 2 < 32768).
QM_FN __m256i QF(dot_us)(__m256i u, __m256i s) {
#if QM_VNNI
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

// Signed w times signed a: |w| as the unsigned operand, a with w's sign.
QM_FN __m256i QF(dot_ss)(__m256i w, __m256i a) {
    return QF(dot_us)(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
}

QM_FN float QF(hsum)(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

QM_FN uint16_t QF(f16_bits)(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return h; }

QM_FN __m256i QF(load_q)(const zk_q8a *a) { return _mm256_loadu_si256((const __m256i *)a->q); }

#if QM_VNNI
// Pairs of blocks in one 512-bit vector (AVX-512): lanes 0-7 the even block, 8-15 the odd one.
QM_FN __m512i QF(load_q2)(const zk_q8a *a) {  // activation blocks a[0], a[1]
    return _mm512_inserti64x4(_mm512_castsi256_si512(QF(load_q)(a)), QF(load_q)(a + 1), 1);
}
QM_FN __m512 QF(pair_ps)(float even, float odd) {  // [even x 8 | odd x 8]
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(even)),
                                               _mm256_castps_pd(_mm256_set1_ps(odd)), 1));
}
QM_FN float QF(hsum_pair)(__m512 v) {  // even + odd lanes, then AVX2's 8-lane sum
    return QF(hsum)(_mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}
#endif

// A Q4_1 / Q5_1 block's 32 unsigned weights (HIGH: Q5_1's fifth bits).
QM_FN __m256i QF(unsigned_u)(const uint8_t *blk, const int HIGH) {
    return HIGH ? _mm256_or_si256(nibble_bytes(blk + 8), fifth_bits(blk + 4)) : nibble_bytes(blk + 4);
}
// One 32-element block of unsigned weights u with scale dw and minimum mw (Q4_1, Q5_1) against
// activation block a: sum = dw * da * (u . q) + mw * (da * sum q), into a row's two chains.
QM_FN void QF(unsigned_step)(__m256 *acc, float *off, __m256i u, float dw, float mw, const zk_q8a *a) {
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(QF(dot_us)(u, QF(load_q)(a))), _mm256_set1_ps(dw * a->d), *acc);
    *off += mw * a->s;
}


// xd, xo: the activation blocks' scales d and integer sums (the signed types' kernels; NULL for the
// others), xa: the activations laid out for the kernel (qm_act4 for the 4-block decode, see
// QM_DRIVE_SCALED; qm_ksuper for the K-quants, see QM_DRIVE_K; NULL for the others), one
// activation row every xa_stride bytes.
#define QM_ARGS const uint8_t *row, int64_t nb, const zk_q8a *x, const float *xd, const int32_t *xo, const void *xa, \
                int64_t ldx, const int NT, float *out

// The signed 32-element block types (Q8_0, Q4_0, Q5_0), one skeleton, in the int8 GEMM's order
// (qgemm.c), so that a product may send any rows to either and a row's result still never depends
// on the batch: per activation row, eight float accumulators, block b's exact integer dot D_b going
// to accumulator b mod 8 as acc = fma(float(D_b), d_w * d_a, acc) in block order, the eight added at
// the end as ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)). Blocks go in groups of 8 (g0 a
// multiple of 8, one block of each class), whose integer dots are summed across lanes together
// (exact, so in any order): on AVX-512 a pair of blocks is one 512-bit vector (lanes 0-7 the even
// block, 8-15 the odd one) of unsigned weights u = w + OFF through vpdpbusd, and three rounds of lane
// sums turn 4 pairs into 8 dots in lanes [0 2 4 6 1 3 5 7] (OFF x the activations' block sums taken
// off after); on AVX2 vpmaddubsw + vpmaddwd give each block's 8 lane sums (of u, the offset taken
// off the same way, for Q4_0/Q5_0; Q8_0 through the sign trick on w) and unpack-and-add rounds
// sum 8 blocks into one vector in block order (sum8). A group's dots then take their scales in one multiply-add.
//
// QM_ONE decodes block p0 (BS bytes) for the tail and for AVX2: signed weights v1. QM_PAIR (AVX-512)
// decodes blocks p0, p1 into u (512 bits, w + OFF). Each block's f16 scale is its first two bytes.
#if QM_VNNI
// The lane sums, as 128-bit lanes L0-L3 of a pair's vector hold the even block's elements 0-15 and
// 16-31, then the odd block's: (1) unpack and add pairs of vectors within 128-bit lanes, (2) the same
// with 64-bit halves, leaving each 128-bit lane of one vector with the four pairs' sums over it, (3)
// add L0 + L1 and L2 + L3. Lanes 0-7 then hold the group's blocks [0 2 4 6 1 3 5 7] (qm_lane_block),
// lanes 8-15 zero. The int32 sums are exact.
static const int qm_lane_block[8] = {0, 2, 4, 6, 1, 3, 5, 7};
QM_FN __m512i QF(fold32)(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
}
QM_FN __m512i QF(fold64)(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
}
QM_FN __m512i QF(fold128)(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, 0x88), _mm512_shuffle_i32x4(a, b, 0xDD));
}
// The 16 lane dots of a pair of unsigned-offset weight blocks u with activation blocks a[0], a[1]
// (the offset is taken off after the lane sums: QM_BLOCKS's xo).
QM_FN __m512i QF(pair_dot)(__m512i u, const zk_q8a *a) {
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, QF(load_q2)(a));
}
// acc's lanes hold classes [0 2 4 6 1 3 5 7]: the canonical ((c0 + c4) + (c2 + c6)) + ((c1 + c5) +
// (c3 + c7)) is ((l0 + l2) + (l1 + l3)) + ((l4 + l6) + (l5 + l7)).
QM_FN float QF(hsum_classes)(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    hi = _mm_add_ps(hi, _mm_movehl_ps(hi, hi));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    hi = _mm_add_ss(hi, _mm_movehdup_ps(hi));
    return _mm_cvtss_f32(_mm_add_ss(lo, hi));
}
#define QM_GROUP 8
// Decodes pair p of the group (blocks g0 + 2p, g0 + 2p + 1) into up[p], their f16 scales into dwh's
// lanes for those blocks.
#define QM_DEC_PAIR(p, BS, QM_PAIR)                                                                       \
    {                                                                                          \
        const uint8_t *p0 = row + (g0 + 2 * (p)) * (BS), *p1 = p0 + (BS);                      \
        __m512i u;                                                                             \
        QM_PAIR                                                                                \
        up[p] = u;                                                                             \
        /* lanes of blocks 2p, 2p + 1: p, p + 4 */                                             \
        dwh = _mm_mask_set1_epi16(dwh, (__mmask8)(1u << (p)), (short)QF(f16_bits)(p0));        \
        dwh = _mm_mask_set1_epi16(dwh, (__mmask8)(16u << (p)), (short)QF(f16_bits)(p1));       \
    }
#define QM_BLOCKS(BS, OFF, QM_PAIR, QM_ONE)                                                    \
    __m256 acc[QM_TILE];                                                                       \
    for (int j = 0; j < NT; j++) acc[j] = _mm256_setzero_ps();                                 \
    const __m512i z = _mm512_setzero_si512();                                                  \
    const int64_t xs = (nb + 7) & ~(int64_t)7;                                                 \
    for (int64_t g0 = 0; g0 < nb; g0 += 8) {                                                   \
        const int gn = nb - g0 < 8 ? (int)(nb - g0) : 8, np = gn / 2;                          \
        __m512i up[4];                                                                         \
        __m128i dwh = _mm_setzero_si128();  /* the blocks' f16 scales in lane order */         \
        if (NT == 1 && gn == 8) { /* one activation row: decode and dot pair by pair */        \
            const zk_q8a *a = x + g0;                                                          \
            QM_DEC_PAIR(0, BS, QM_PAIR) QM_DEC_PAIR(1, BS, QM_PAIR)                            \
            const __m512i f01 = QF(fold32)(QF(pair_dot)(up[0], a), QF(pair_dot)(up[1], a + 2)); \
            QM_DEC_PAIR(2, BS, QM_PAIR) QM_DEC_PAIR(3, BS, QM_PAIR)                            \
            const __m512i f23 = QF(fold32)(QF(pair_dot)(up[2], a + 4), QF(pair_dot)(up[3], a + 6)); \
            const __m512i dots = QF(fold128)(QF(fold64)(f01, f23), z);                         \
            const __m256i d8 = _mm256_sub_epi32(_mm512_castsi512_si256(dots),                  \
                _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(xo + g0)), __builtin_ctz(OFF))); \
            acc[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d8), _mm256_mul_ps(_mm256_cvtph_ps(dwh), _mm256_loadu_ps(xd + g0)), acc[0]); \
            continue;                                                                          \
        }                                                                                      \
        if (gn == 8) {                                                                         \
            QM_DEC_PAIR(0, BS, QM_PAIR) QM_DEC_PAIR(1, BS, QM_PAIR)                            \
            QM_DEC_PAIR(2, BS, QM_PAIR) QM_DEC_PAIR(3, BS, QM_PAIR)                            \
        } else if (gn == 4) {                                                                  \
            QM_DEC_PAIR(0, BS, QM_PAIR) QM_DEC_PAIR(1, BS, QM_PAIR)                            \
        } else {                                                                               \
            for (int p = 0; p < np; p++) QM_DEC_PAIR(p, BS, QM_PAIR)                           \
            if (gn & 1) { /* a last block alone: the even block of pair np, u = w + OFF */     \
                const uint8_t *p0 = row + (g0 + gn - 1) * (BS);                                \
                __m256i v1;                                                                    \
                QM_ONE                                                                         \
                up[np] = _mm512_zextsi256_si512(_mm256_add_epi8(v1, _mm256_set1_epi8((char)(OFF)))); \
                dwh = _mm_mask_set1_epi16(dwh, (__mmask8)(1u << np), (short)QF(f16_bits)(p0)); \
            }                                                                                  \
        }                                                                                      \
        const __m256 dwv = _mm256_cvtph_ps(dwh);                                               \
        for (int j = 0; j < NT; j++) {                                                         \
            const zk_q8a *a = x + j * ldx + g0;                                                \
            __m512i dots;                                                                      \
            if (gn == 8) {                                                                     \
                dots = QF(fold128)(QF(fold64)(QF(fold32)(QF(pair_dot)(up[0], a), QF(pair_dot)(up[1], a + 2)), \
                                              QF(fold32)(QF(pair_dot)(up[2], a + 4), QF(pair_dot)(up[3], a + 6))), z); \
            } else if (gn == 4) {                                                              \
                dots = QF(fold128)(QF(fold64)(QF(fold32)(QF(pair_dot)(up[0], a), QF(pair_dot)(up[1], a + 2)), z), z); \
            } else {                                                                           \
                __m512i v[4];                                                                  \
                for (int p = 0; p < 4; p++)                                                    \
                    v[p] = p < np ? QF(pair_dot)(up[p], a + 2 * p)                             \
                         : p == np && (gn & 1) ? _mm512_dpbusd_epi32(z, up[np], _mm512_zextsi256_si512(QF(load_q)(a + gn - 1))) \
                         : z;                                                                  \
                dots = QF(fold128)(QF(fold64)(QF(fold32)(v[0], v[1]), gn > 4 ? QF(fold32)(v[2], v[3]) : z), z); \
            }                                                                                  \
            const __m256i d8 = _mm256_sub_epi32(_mm512_castsi512_si256(dots),                  \
                _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(xo + j * xs + g0)), __builtin_ctz(OFF))); \
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d8), _mm256_mul_ps(dwv, _mm256_loadu_ps(xd + j * xs + g0)), acc[j]); \
        }                                                                                      \
    }                                                                                          \
    for (int j = 0; j < NT; j++) out[j] = QF(hsum_classes)(acc[j]);
#else
#define QM_GROUP 8
// One block's 8 lane dots against activation block a (the sign trick: exact).
#define QM_ONE_DOT(k, a, BS, QM_ONE, OFF)                                                                     \
    ({                                                                                         \
        const uint8_t *p0 = row + (g0 + (k)) * (BS);                                           \
        __m256i v1;                                                                            \
        QM_ONE                                                                                 \
        dwh[(k) >> 2] |= (uint64_t)QF(f16_bits)(p0) << (16 * ((k) & 3));                      \
        QM_DOT_W(v1, QF(load_q)((a) + (k)), OFF);                                                   \
    })
// The 8 blocks' exact sums from their lane dots, lanes in block order: unpack-and-add rounds (32-bit,
// then 64-bit within 128-bit lanes, then across them), 14 shuffles that spread over two pipes, where
// the 7 vphaddd that would do the same take two cycles each on AMD Zen 3.
QM_FN __m256i QF(fold_lanes32)(__m256i a, __m256i b) {
    return _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
}
QM_FN __m256i QF(fold_lanes64)(__m256i a, __m256i b) {
    return _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
}
QM_FN __m256i QF(sum8)(const __m256i *v) {
    const __m256i lo = QF(fold_lanes64)(QF(fold_lanes32)(v[0], v[1]), QF(fold_lanes32)(v[2], v[3]));
    const __m256i hi = QF(fold_lanes64)(QF(fold_lanes32)(v[4], v[5]), QF(fold_lanes32)(v[6], v[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31));
}
// Q4_0 and Q5_0 dot their unsigned weights u = w + OFF (vpmaddubsw pairs stay below 2 x 31 x 127)
// and take OFF x the activations' block sums off after the lane sums, as the AVX-512 kernels do (two
// sign instructions fewer a block); Q8_0's u would overflow vpmaddubsw: the sign trick on w.
#define QM_DOT_W(v, a, OFF) ((OFF) != 128 ? QF(dot_us)(_mm256_add_epi8((v), _mm256_set1_epi8((char)(OFF))), (a)) : QF(dot_ss)((v), (a)))
#define QM_OFF_SUMS(dots, o, OFF) ((OFF) != 128 ? _mm256_sub_epi32((dots), _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(o)), __builtin_ctz(OFF))) : (dots))
#define QM_BLOCKS(BS, OFF, QM_PAIR, QM_ONE)                                                    \
    __m256 acc[QM_TILE];                                                                       \
    for (int j = 0; j < NT; j++) acc[j] = _mm256_setzero_ps();                                 \
    const int64_t xs = (nb + 7) & ~(int64_t)7;                                                 \
    const __m256i z = _mm256_setzero_si256();                                                  \
    for (int64_t g0 = 0; g0 < nb; g0 += 8) {                                                   \
        const int gn = nb - g0 < 8 ? (int)(nb - g0) : 8;                                       \
        uint64_t dwh[2] = {0, 0};  /* the blocks' f16 scales, gathered in registers */         \
        if (NT == 1) { /* one activation row: decode and dot block by block */                \
            const zk_q8a *a = x + g0;                                                          \
            __m256i v[8];                                                                      \
            _Pragma("clang loop unroll(full)")                                                 \
            for (int k = 0; k < 8; k++) v[k] = k < gn ? QM_ONE_DOT(k, a, BS, QM_ONE, OFF) : z;  \
            const __m256i dots = QM_OFF_SUMS(QF(sum8)(v), xo + g0, OFF);                      \
            const __m256 dwv = _mm256_cvtph_ps(_mm_set_epi64x((long long)dwh[1], (long long)dwh[0])); \
            acc[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), _mm256_mul_ps(dwv, _mm256_loadu_ps(xd + g0)), acc[0]); \
            continue;                                                                          \
        }                                                                                      \
        __m256i wv[8];                                                                         \
        for (int k = 0; k < gn; k++) {                                                         \
            const uint8_t *p0 = row + (g0 + k) * (BS);                                         \
            __m256i v1;                                                                        \
            QM_ONE                                                                             \
            wv[k] = v1;                                                                        \
            dwh[k >> 2] |= (uint64_t)QF(f16_bits)(p0) << (16 * (k & 3));                       \
        }                                                                                      \
        const __m256 dwv = _mm256_cvtph_ps(_mm_set_epi64x((long long)dwh[1], (long long)dwh[0])); \
        for (int j = 0; j < NT; j++) {                                                         \
            const zk_q8a *a = x + j * ldx + g0;                                                \
            __m256i v[8];                                                                      \
            for (int k = 0; k < 8; k++) v[k] = k < gn ? QM_DOT_W(wv[k], QF(load_q)(a + k), OFF) : z; \
            const __m256i dots = QM_OFF_SUMS(QF(sum8)(v), xo + j * xs + g0, OFF); \
            const __m256 da = _mm256_loadu_ps(xd + j * xs + g0);                               \
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), _mm256_mul_ps(dwv, da), acc[j]); \
        }                                                                                      \
    }                                                                                          \
    for (int j = 0; j < NT; j++) out[j] = QF(hsum)(acc[j]);
#endif

#if QM_VNNI
// 16 packed nibbles of two blocks -> 64 bytes: [lo(p0) | hi(p0) | lo(p1) | hi(p1)], 16 each.
QM_FN __m512i QF(nibbles2)(const uint8_t *q0, const uint8_t *q1) {
    const __m512i z = _mm512_castsi256_si512(_mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)q0)), _mm_loadu_si128((const __m128i *)q1), 1));
    const long long sh = 0x0004000400040004LL;  // 128-bit lanes 1 and 3 take the high nibbles
    return _mm512_and_si512(_mm512_srlv_epi16(_mm512_shuffle_i64x2(z, z, 0x50), _mm512_set_epi64(sh, sh, 0, 0, sh, sh, 0, 0)),
                            _mm512_set1_epi8(0x0F));
}
// The fifth bits of two blocks (32-bit masks at h0, h1) added to their nibbles as 16.
QM_FN __m512i QF(high_bits2)(__m512i nib, const uint8_t *h0, const uint8_t *h1) {
    uint32_t a, b;
    memcpy(&a, h0, 4);
    memcpy(&b, h1, 4);
    return _mm512_mask_add_epi8(nib, (__mmask64)(((uint64_t)b << 32) | a), nib, _mm512_set1_epi8(0x10));
}
#endif
QM_FN void QF(tile_q8_0)(QM_ARGS) {
    QM_BLOCKS(34, 128,
        u = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p0 + 2))),
                                                _mm256_loadu_si256((const __m256i *)(p1 + 2)), 1), _mm512_set1_epi8((char)0x80));
        ,
        v1 = _mm256_loadu_si256((const __m256i *)(p0 + 2));)
}

QM_FN void QF(tile_q4_0)(QM_ARGS) {
    QM_BLOCKS(18, 8,
        u = QF(nibbles2)(p0 + 2, p1 + 2);,
        v1 = _mm256_sub_epi8(nibble_bytes(p0 + 2), _mm256_set1_epi8(8));)
}

QM_FN void QF(tile_q5_0)(QM_ARGS) {
    QM_BLOCKS(22, 16,
        u = QF(high_bits2)(QF(nibbles2)(p0 + 6, p1 + 6), p0 + 2, p1 + 2);,
        v1 = _mm256_sub_epi8(_mm256_or_si256(nibble_bytes(p0 + 6), fifth_bits(p0 + 2)), _mm256_set1_epi8(16));)
}

#if !QM_VNNI
// Q5_0 in planes (kernel_internal.h; packed on the AVX2 path only, and read by these AVX2 kernels on
// any path): QM_BLOCKS's operations in its order, each whole group of 8 blocks decoded from its five
// planes into u = w + 16 at once (the same bytes QM_ONE's decode plus 16 gives), the group's scales
// one f16 load; a row's last blocks (nb mod 8) in the file's layout as in QM_BLOCKS.
QM_FN void QF(tile_q5_0p8)(QM_ARGS) {
    __m256 acc[QM_TILE];
    for (int j = 0; j < NT; j++) acc[j] = _mm256_setzero_ps();
    const int64_t xs = (nb + 7) & ~(int64_t)7;
    const __m256i z = _mm256_setzero_si256();
    for (int64_t g0 = 0; g0 < nb; g0 += 8) {
        const uint8_t *g = row + g0 * 22;
        const int gn = nb - g0 < 8 ? (int)(nb - g0) : 8;
        __m256i u[8];
        __m256 dwv;
        if (gn == 8) {
            q5p_decode(g, u);
            dwv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        } else {
            uint64_t dwh[2] = {0, 0};
            for (int k = 0; k < 8; k++) {
                const uint8_t *p0 = g + k * 22;
                u[k] = k < gn ? _mm256_or_si256(nibble_bytes(p0 + 6), fifth_bits(p0 + 2)) : z;
                if (k < gn) dwh[k >> 2] |= (uint64_t)QF(f16_bits)(p0) << (16 * (k & 3));
            }
            dwv = _mm256_cvtph_ps(_mm_set_epi64x((long long)dwh[1], (long long)dwh[0]));
        }
        for (int j = 0; j < NT; j++) {
            const zk_q8a *a = x + j * ldx + g0;
            __m256i v[8];
            for (int k = 0; k < 8; k++) v[k] = k < gn ? QF(dot_us)(u[k], QF(load_q)(a + k)) : z;
            const __m256i dots = QM_OFF_SUMS(QF(sum8)(v), xo + j * xs + g0, 16);
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), _mm256_mul_ps(dwv, _mm256_loadu_ps(xd + j * xs + g0)), acc[j]);
        }
    }
    for (int j = 0; j < NT; j++) out[j] = QF(hsum)(acc[j]);
}
#endif

// Q4_1 and Q5_1 keep one accumulator and one chain of minimum terms in block order: llama.cpp's
// own order for these types (its dot products and these agree bit for bit), and SmolLM2's greedy
// continuations need it (the two-chain order moved a 0.12-margin step).
QM_FN void QF(tile_unsigned)(const uint8_t *row, int64_t nb, const zk_q8a *x, int64_t ldx, const int NT, float *out,
                             const int BS, const int HIGH) {
    __m256 acc[QM_TILE];
    float off[QM_TILE];
    for (int j = 0; j < NT; j++) { acc[j] = _mm256_setzero_ps(); off[j] = 0.0f; }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + b * BS;
        const __m256i u = QF(unsigned_u)(blk, HIGH);
        const float dw = half_to_float(blk), mw = half_to_float(blk + 2);
        for (int j = 0; j < NT; j++) QF(unsigned_step)(&acc[j], &off[j], u, dw, mw, x + j * ldx + b);
    }
    for (int j = 0; j < NT; j++) out[j] = QF(hsum)(acc[j]) + off[j];
}
QM_FN void QF(tile_q4_1)(QM_ARGS) { (void)xd; (void)xo; (void)xa; QF(tile_unsigned)(row, nb, x, ldx, NT, out, 20, 0); }
QM_FN void QF(tile_q5_1)(QM_ARGS) { (void)xd; (void)xo; (void)xa; QF(tile_unsigned)(row, nb, x, ldx, NT, out, 24, 1); }

// The K-quants (Q4_K, Q5_K, Q6_K) in the int8 GEMM's order too (qgemm.c, k_block_sum / k_finish): per
// activation row and super-block the exact int32 sum S of its 8 blocks' dots times their integer
// scales (Q6_K: each half block's dot times its scale, less 32 x the scales times the activations'
// half sums) and for Q4_K / Q5_K the sum M of the blocks' minimums times the activation blocks' integer
// sums; then, super-block by super-block, acc = fma(float(S), d x d_a, acc) and acc = fma(float(M),
// -dmin x d_a, acc). The integers are exact in any order, so the lane dots take their scales before
// the lane sums: 4 elements' dot is at most 4 x 63 x 127 (fits 16 bits), one vpdpwssd (AVX-512) or
// the vpmaddwd of vpmaddubsw's pairs with the scale (AVX2) a block. The activations come laid out
// per super-block (qm_ksuper, QM_DRIVE_K).
// M: the 8 minimums (bytes) times the activation blocks' sums (int16).
QM_FN int32_t QF(k_mins)(const uint8_t *mn, const int16_t *bs) {
    return hsum8_epi32(_mm256_zextsi128_si256(_mm_madd_epi16(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn)),
                                                             _mm_loadu_si128((const __m128i *)bs))));
}
#if QM_VNNI
// Pairs of blocks (2g, 2g + 1) in one 512-bit vector: lanes 0-7 the even block's lane dots, 8-15 the
// odd one's, scaled by sp[g] = [scale 2g x 8 | scale 2g + 1 x 8].
#define QM_K4(BS, QS, HIGH)                                                                    \
    float acc[QM_TILE];                                                                        \
    for (int j = 0; j < NT; j++) acc[j] = 0.0f;                                                \
    const __m512i m4 = _mm512_set1_epi8(0x0F), z = _mm512_setzero_si512();                     \
    const long long sh = 0x0004000400040004LL;  /* upper half: high nibbles */                 \
    const __m512i shift = _mm512_set_epi64(sh, sh, sh, sh, 0, 0, 0, 0);                        \
    const qm_ksuper *ka = (const qm_ksuper *)xa;                                               \
    const int64_t kstride = nb / 8;  /* one activation row: nb / 8 super-blocks */             \
    for (int64_t sb = 0; sb < nb / 8; sb++) {                                                  \
        const uint8_t *blk = row + sb * (BS);                                                  \
        const float d = half_to_float(blk), dm = -half_to_float(blk + 2);                      \
        uint8_t sc[8], mn[8];                                                                  \
        scale_min_k4(blk + 4, sc, mn);                                                         \
        const __m512i s8 = _mm512_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)sc));        \
        const __m512i qh = HIGH ? _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 16))) \
                                : _mm512_setzero_si512();                                      \
        __m512i u[4], sp[4];                                                                   \
        for (int g = 0; g < 4; g++) {                                                          \
            sp[g] = _mm512_permutexvar_epi32(_mm512_inserti64x4(_mm512_set1_epi32(2 * g), _mm256_set1_epi32(2 * g + 1), 1), s8); \
            const __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + (QS) + 32 * g))); \
            u[g] = _mm512_and_si512(_mm512_srlv_epi16(q, shift), m4);                          \
            if (HIGH) {  /* bit 2g of qh byte i: element i of block 2g; bit 2g + 1: of block 2g + 1 */ \
                const __m512i bits = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * g))), \
                                                        _mm256_set1_epi8((char)(2 << (2 * g))), 1); \
                u[g] = _mm512_mask_add_epi8(u[g], _mm512_test_epi8_mask(qh, bits), u[g], _mm512_set1_epi8(0x10)); \
            }                                                                                  \
        }                                                                                      \
        for (int j = 0; j < NT; j++) {                                                         \
            const qm_ksuper *k = ka + j * kstride + sb;                                        \
            __m512i s16 = z;                                                                   \
            for (int g = 0; g < 4; g++)                                                        \
                s16 = _mm512_dpwssd_epi32(s16, _mm512_dpbusd_epi32(z, u[g], _mm512_loadu_si512(k->q[2 * g])), sp[g]); \
            const int32_t S = _mm512_reduce_add_epi32(s16), M = QF(k_mins)(mn, k->bs);        \
            acc[j] = fmaf((float)S, d * k->d, acc[j]);                                         \
            acc[j] = fmaf((float)M, dm * k->d, acc[j]);                                        \
        }                                                                                      \
    }                                                                                          \
    for (int j = 0; j < NT; j++) out[j] = acc[j];
#else
#define QM_K4(BS, QS, HIGH)                                                                    \
    float acc[QM_TILE];                                                                        \
    for (int j = 0; j < NT; j++) acc[j] = 0.0f;                                                \
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);                    \
    const qm_ksuper *ka = (const qm_ksuper *)xa;                                               \
    const int64_t kstride = nb / 8;                                                            \
    for (int64_t sb = 0; sb < nb / 8; sb++) {                                                  \
        const uint8_t *blk = row + sb * (BS);                                                  \
        const float d = half_to_float(blk), dm = -half_to_float(blk + 2);                      \
        uint8_t sc[8], mn[8];                                                                  \
        scale_min_k4(blk + 4, sc, mn);                                                         \
        const __m256i qh = HIGH ? _mm256_loadu_si256((const __m256i *)(blk + 16)) : _mm256_setzero_si256(); \
        __m256i u[8];                                                                          \
        for (int g = 0; g < 4; g++) {                                                          \
            const __m256i q = _mm256_loadu_si256((const __m256i *)(blk + (QS) + 32 * g));      \
            u[2 * g] = _mm256_and_si256(q, m4);                                                \
            u[2 * g + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);                      \
            if (HIGH)                                                                          \
                for (int h = 0; h < 2; h++) {                                                  \
                    const __m256i bit = _mm256_set1_epi8((char)((1 + h) << (2 * g)));          \
                    u[2 * g + h] = _mm256_or_si256(u[2 * g + h], _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit), b4)); \
                }                                                                              \
        }                                                                                      \
        /* the 8 scales as int16 in both 128-bit lanes, then block i's in every word (vpshufb) */ \
        const __m256i s16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc))); \
        __m256i sv[8];                                                                         \
        for (int i = 0; i < 8; i++)                                                            \
            sv[i] = _mm256_shuffle_epi8(s16, _mm256_set1_epi16((short)(0x0101 * 2 * i + 0x0100))); \
        for (int j = 0; j < NT; j++) {                                                         \
            const qm_ksuper *k = ka + j * kstride + sb;                                        \
            __m256i s8 = _mm256_setzero_si256();                                               \
            for (int i = 0; i < 8; i++)                                                        \
                s8 = _mm256_add_epi32(s8, _mm256_madd_epi16(_mm256_maddubs_epi16(u[i], _mm256_loadu_si256((const __m256i *)k->q[i])), \
                                                            sv[i]));                           \
            const int32_t S = hsum8_epi32(s8), M = QF(k_mins)(mn, k->bs);                   \
            acc[j] = fmaf((float)S, d * k->d, acc[j]);                                         \
            acc[j] = fmaf((float)M, dm * k->d, acc[j]);                                        \
        }                                                                                      \
    }                                                                                          \
    for (int j = 0; j < NT; j++) out[j] = acc[j];
#endif

QM_FN void QF(tile_q4_K)(QM_ARGS) { (void)x; (void)xd; (void)xo; (void)ldx; QM_K4(144, 16, 0) }

QM_FN void QF(tile_q5_K)(QM_ARGS) { (void)x; (void)xd; (void)xo; (void)ldx; QM_K4(176, 48, 1) }

// Q6_K: super-blocks of 256 with an int8 scale per 16 elements, u in 0..63, w = u - 32. The offset's
// part of S is 32 x (the 16 scales times the activations' 16 half sums), one vpmaddwd.
QM_FN int32_t QF(q6_offset)(const uint8_t *scales, const int16_t *hs) {
    return hsum8_epi32(_mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)scales)),
                                            _mm256_loadu_si256((const __m256i *)hs)));
}
#if QM_VNNI
QM_FN void QF(tile_q6_K)(QM_ARGS) {
    (void)x; (void)xd; (void)xo; (void)ldx;
    float acc[QM_TILE];
    for (int j = 0; j < NT; j++) acc[j] = 0.0f;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30), z = _mm512_setzero_si512();
    const qm_ksuper *ka = (const qm_ksuper *)xa;
    const int64_t kstride = nb / 8;  /* one activation row: nb / 8 super-blocks */
    const long long s4 = 0x0004000400040004LL, s2 = 0x0002000200020002LL;
    const __m512i shA = _mm512_set_epi64(s2, s2, s2, s2, s4, s4, s4, s4);  // h << 4 for block 0, << 2 for 1
    const __m512i shB = _mm512_set_epi64(s2, s2, s2, s2, 0, 0, 0, 0);      // h for block 2, h >> 2 for 3
    const __m128i rep4 = _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    for (int64_t sb = 0; sb < nb / 8; sb++) {
        const uint8_t *blk = row + sb * 210;
        const float d = half_to_float(blk + 208);
        const __m128i s16 = _mm_loadu_si128((const __m128i *)(blk + 192));
        __m512i u[4], sp[4];  // pair p: blocks 2p, 2p + 1; its lanes' scales (4 lanes a half block)
        for (int half = 0; half < 2; half++) {
            const __m512i l = _mm512_loadu_si512((const void *)(blk + 64 * half));  // [l0 | l1]
            const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * half)));
            u[2 * half] = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_and_si512(_mm512_sllv_epi16(h, shA), m30));
            u[2 * half + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), _mm512_and_si512(_mm512_srlv_epi16(h, shB), m30));
        }
        // (vpdpwssd multiplies both 16-bit halves of a lane: the scale in the low half, zero in the high)
        for (int p = 0; p < 4; p++)
            sp[p] = _mm512_and_si512(_mm512_cvtepi8_epi32(_mm_shuffle_epi8(s16, _mm_add_epi8(rep4, _mm_set1_epi8((char)(4 * p))))),
                                     _mm512_set1_epi32(0xFFFF));
        for (int j = 0; j < NT; j++) {
            const qm_ksuper *k = ka + j * kstride + sb;
            __m512i a = z;
            for (int p = 0; p < 4; p++) a = _mm512_dpwssd_epi32(a, _mm512_dpbusd_epi32(z, u[p], _mm512_loadu_si512(k->q[2 * p])), sp[p]);
            const int32_t S = _mm512_reduce_add_epi32(a) - Q6_K_BIAS * QF(q6_offset)(blk + 192, k->hs);
            acc[j] = fmaf((float)S, d * k->d, acc[j]);
        }
    }
    for (int j = 0; j < NT; j++) out[j] = acc[j];
}
#else
QM_FN void QF(tile_q6_K)(QM_ARGS) {
    (void)x; (void)xd; (void)xo; (void)ldx;
    float acc[QM_TILE];
    for (int j = 0; j < NT; j++) acc[j] = 0.0f;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const qm_ksuper *ka = (const qm_ksuper *)xa;
    const int64_t kstride = nb / 8;
    for (int64_t sb = 0; sb < nb / 8; sb++) {
        const uint8_t *blk = row + sb * 210;
        const int8_t *scales = (const int8_t *)(blk + 192);
        const float d = half_to_float(blk + 208);
        __m256i u[8], sv[8];  // block 4 * half + i: u in 0..63; its scales [first half x 8 | second x 8] (int16)
        for (int half = 0; half < 2; half++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(blk + 64 * half));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(blk + 64 * half + 32));
            const __m256i h = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * half));
            __m256i *o = u + 4 * half;
            o[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
            o[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
            o[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, m30));
            o[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
        }
        // sv from one load of the 16 scales: each half's 8 (int16) in both 128-bit lanes, then one
        // byte shuffle a block picks scale 2i in the lower lane and 2i + 1 in the upper.
        const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)scales));
        const __m256i sh[2] = {_mm256_permute2x128_si256(s16, s16, 0x00), _mm256_permute2x128_si256(s16, s16, 0x11)};
        for (int i = 0; i < 8; i++) {
            const char l = (char)(4 * (i & 3)), h = (char)(4 * (i & 3) + 2);
            sv[i] = _mm256_shuffle_epi8(sh[i >> 2], _mm256_setr_epi8(l, l + 1, l, l + 1, l, l + 1, l, l + 1, l, l + 1, l, l + 1, l, l + 1, l, l + 1,
                                                                    h, h + 1, h, h + 1, h, h + 1, h, h + 1, h, h + 1, h, h + 1, h, h + 1, h, h + 1));
        }
        for (int j = 0; j < NT; j++) {
            const qm_ksuper *k = ka + j * kstride + sb;
            __m256i a = _mm256_setzero_si256();
            for (int i = 0; i < 8; i++)
                a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_maddubs_epi16(u[i], _mm256_loadu_si256((const __m256i *)k->q[i])), sv[i]));
            const int32_t S = hsum8_epi32(a) - Q6_K_BIAS * QF(q6_offset)(blk + 192, k->hs);
            acc[j] = fmaf((float)S, d * k->d, acc[j]);
        }
    }
    for (int j = 0; j < NT; j++) out[j] = acc[j];
}
#endif

// Each weight row is read once per product: prefetch the row 16 ahead, into L2 or with the
// non-temporal hint (zk_weight_prefetch_l2; qmatmul.c says which CPUs measured which faster).
// (QM_PREFETCH_ROWS(n): the n rows from row r + 16 on, when they are all in the call's rows.)
#define QM_PREFETCH_ROWS(n)                                                                    \
    if (r + 15 + (n) < r1) {                                                                   \
        if (zk_weight_prefetch_l2)                                                             \
            for (int64_t off = 0; off < (n) * row_bytes; off += 64)                            \
                _mm_prefetch((const char *)(row + 16 * row_bytes + off), _MM_HINT_T1);         \
        else                                                                                   \
            for (int64_t off = 0; off < (n) * row_bytes; off += 64)                            \
                _mm_prefetch((const char *)(row + 16 * row_bytes + off), _MM_HINT_NTA);        \
    }
#define QM_PREFETCH_ROW QM_PREFETCH_ROWS(1)

// Rows [r0, r1) against nt activation rows: tiles of QM_TILE activation rows, then the remainder as
// one tile of its own size, so a weight row is decoded once per QM_TILE activation rows (a decode step
// of 2-7 rows, as a speculative draft's, pays one decode of each weight block, not one per row).
// Identical results whichever tile a row lands in: a row's arithmetic does not depend on NT.
#define QM_REM(kind, n)                                                                        \
    case n:                                                                                    \
        QF(tile_##kind)(row, nb, x + t * nb, xd ? xd + t * xs : NULL, xo ? xo + t * xs : NULL,    \
                        xa ? (const char *)xa + t * xa_stride : NULL, nb, n, o);               \
        for (int j = 0; j < n; j++) y[(t + j) * ldy + r] = o[j];                               \
        break;
#if QM_TILE > 4
#define QM_REM_WIDE(kind) QM_REM(kind, 4) QM_REM(kind, 5) QM_REM(kind, 6) QM_REM(kind, 7)
#else
#define QM_REM_WIDE(kind)
#endif
#define QM_DRIVE(kind)                                                                         \
    for (int64_t r = r0; r < r1; r++) {                                                        \
        const uint8_t *row = w + r * row_bytes;                                                \
        QM_PREFETCH_ROW                                                                        \
        float o[QM_TILE];                                                                      \
        int64_t t = 0;                                                                         \
        for (; t + QM_TILE <= nt; t += QM_TILE) {                                              \
            QF(tile_##kind)(row, nb, x + t * nb, xd ? xd + t * xs : NULL, xo ? xo + t * xs : NULL, \
                            xa ? (const char *)xa + t * xa_stride : NULL, nb, QM_TILE, o);     \
            for (int j = 0; j < QM_TILE; j++) y[(t + j) * ldy + r] = o[j];                     \
        }                                                                                      \
        switch (nt - t) {                                                                      \
        QM_REM(kind, 1) QM_REM(kind, 2) QM_REM(kind, 3) QM_REM_WIDE(kind)                      \
        default: break;                                                                        \
        }                                                                                      \
    }

// Q4_1 / Q5_1 against one activation row, two weight rows at a time: each row's operations in
// tile_unsigned's order (one row's result does not depend on its partner, or on having one),
// the two rows' chains of multiply-adds interleaved: alone, a row waits on the latency of its block-
// by-block multiply-add chain.
QM_FN void QF(pair_unsigned)(const uint8_t *w0, const uint8_t *w1, int64_t nb, const zk_q8a *x, float *out,
                             const int BS, const int HIGH) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float off0 = 0.0f, off1 = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *b0 = w0 + b * BS, *b1 = w1 + b * BS;
        const __m256i u0 = QF(unsigned_u)(b0, HIGH), u1 = QF(unsigned_u)(b1, HIGH);
        const float dw0 = half_to_float(b0), mw0 = half_to_float(b0 + 2);
        const float dw1 = half_to_float(b1), mw1 = half_to_float(b1 + 2);
        QF(unsigned_step)(&acc0, &off0, u0, dw0, mw0, x + b);
        QF(unsigned_step)(&acc1, &off1, u1, dw1, mw1, x + b);
    }
    out[0] = QF(hsum)(acc0) + off0;
    out[1] = QF(hsum)(acc1) + off1;
}
#define QM_DRIVE_UNSIGNED(kind, BS, HIGH)                                                      \
    if (nt == 1) {                                                                             \
        int64_t r = r0;                                                                        \
        for (; r + 1 < r1; r += 2) {                                                           \
            const uint8_t *row = w + r * row_bytes;                                            \
            QM_PREFETCH_ROWS(2)                                                                \
            float o[2];                                                                        \
            QF(pair_unsigned)(row, row + row_bytes, nb, x, o, BS, HIGH);                       \
            y[r] = o[0];                                                                       \
            y[r + 1] = o[1];                                                                   \
        }                                                                                      \
        if (r < r1) { float o[1]; QF(tile_##kind)(w + r * row_bytes, nb, x, NULL, NULL, NULL, nb, 1, o); y[r] = o[0]; } \
    } else QM_DRIVE(kind)

// The signed types' kernels take the activation blocks' scales (xd) and their integer sums (xo: the
// offset term OFF x sum, taken off after the lane sums; not read for Q8_0 on AVX2) as plain arrays, each row padded
// with zeros to whole groups of QM_GROUP blocks, in the lanes' block order (one vector load per group;
// an absent block's scale and dot are 0, so its multiply-add leaves the accumulator as it is): filled
// here for chunks of activation rows, on the stack (2 x 16 KiB, or one row's each when longer). With
// XA, also the activations in 4-block layout (qm_act4, absent blocks zero; at most 32 KiB a chunk, or
// one row's).
#define QM_XD_FLOATS 4096
#define QM_XA_BYTES 32768
#if QM_VNNI
#define QM_LANE_BLOCK(l) qm_lane_block[l]
#else
#define QM_LANE_BLOCK(l) (l)
#endif
// QM_DRIVE_SCALED's arrays for nt activation rows at x (xs entries a row; xa: NULL, or the 4-block
// layout, xs / 4 a row).
QM_FN void QF(fill_scaled)(const zk_q8a *x, int64_t nb, int64_t xs, int64_t nt, float *xd, int32_t *xo, qm_act4 *xa) {
    for (int64_t t = 0; t < nt; t++)
        for (int64_t g = 0; g < xs; g += QM_GROUP)
            for (int l = 0; l < QM_GROUP; l++) {
                const int64_t b = g + QM_LANE_BLOCK(l);
                xd[t * xs + g + l] = b < nb ? x[t * nb + b].d : 0.0f;
                xo[t * xs + g + l] = b < nb ? q8a_block_sum(x + t * nb + b) : 0;
            }
    if (!xa) return;
    memset(xa, 0, (size_t)(nt * xs / 4) * sizeof(qm_act4));
    for (int64_t t = 0; t < nt; t++)
        for (int64_t b = 0; b < nb; b++) {
            memcpy(xa[t * xs / 4 + b / 4].l[b % 4], x[t * nb + b].q, 16);
            memcpy(xa[t * xs / 4 + b / 4].h[b % 4], x[t * nb + b].q + 16, 16);
        }
}
#define QM_DRIVE_SCALED(kind, XA)                                                              \
    {                                                                                          \
        const int64_t xs = (nb + QM_GROUP - 1) / QM_GROUP * QM_GROUP;                          \
        const int64_t room = xs > QM_XD_FLOATS ? xs : QM_XD_FLOATS;                            \
        float xdb[room];                                                                       \
        int32_t xob[room];                                                                     \
        int64_t chunk = xs <= QM_XD_FLOATS ? QM_XD_FLOATS / xs : 1;                            \
        if ((XA) && chunk * xs * 32 > QM_XA_BYTES) chunk = xs * 32 < QM_XA_BYTES ? QM_XA_BYTES / (xs * 32) : 1; \
        qm_act4 xab[(XA) ? chunk * xs / 4 : 1];                                                \
        const zk_q8a *x0 = x;                                                                  \
        float *y0 = y;                                                                         \
        for (int64_t t0 = 0; t0 < nt0; t0 += chunk) {                                          \
            const int64_t nt = nt0 - t0 < chunk ? nt0 - t0 : chunk;                            \
            const zk_q8a *x = x0 + t0 * nb;                                                    \
            const float *xd = xdb;                                                             \
            const int32_t *xo = xob;                                                           \
            const qm_act4 *xa = (XA) ? xab : NULL;                                             \
            const int64_t xa_stride = (xs / 4) * (int64_t)sizeof(qm_act4);                     \
            float *y = y0 + t0 * ldy;                                                          \
            QF(fill_scaled)(x, nb, xs, nt, xdb, xob, (XA) ? xab : NULL);                       \
            QM_DRIVE(kind)                                                                     \
        }                                                                                      \
    }

#if QM_VNNI
// The 4-block decode of Q4_0 and Q5_0 (AVX-512 VBMI and BITALG, on top of VNNI): the pair decode above
// spends most of its time in shuffles and lane sums. Here 4 blocks' bytes are two loads, one
// vpermt2b gathers their nibbles into 128-bit lanes (low nibbles: elements 0-15, high: 16-31, against
// activations laid out the same way, qm_act4), a second their fifth-bit masks and scales, vpshufbitqmb
// turns the masks into byte masks for adding 16, and two vpdpbusd give each block's four lane sums in
// its 128-bit lane; two such vectors (8 blocks) fold into the 8 exact block dots in three operations
// and one permutation puts them in the lanes' block order [0 2 4 6 1 3 5 7]. From there the float
// operations are QM_BLOCKS's, in its order: the same bits (tested against it and against AVX2).
// A group's last blocks past the row are left out by masked loads (never read past the matrix).
#define QM_PFN static inline __attribute__((always_inline, target(QM_TARGET ",avx512vbmi,avx512bitalg")))
QM_PFN void QF(dec4)(const uint8_t *p, int n, const int BS, const int FIFTH, const qm_p4_perm *t,
                     __m512i *lo, __m512i *hi, __m512i *side) {
    const int second = 4 * BS - 64;
    __m512i v0, v1;
    if (n == 4) {
        v0 = _mm512_loadu_si512(p);
        v1 = _mm512_loadu_si512(p + second);
    } else {
        const int bytes = n * BS;
        v0 = _mm512_maskz_loadu_epi8(bytes >= 64 ? ~0ULL : (1ULL << bytes) - 1, p);
        v1 = bytes > second ? _mm512_maskz_loadu_epi8((1ULL << (bytes - second)) - 1, p + second) : _mm512_setzero_si512();
    }
    const __m512i nib = _mm512_permutex2var_epi8(v0, _mm512_loadu_si512(t->nib), v1), m = _mm512_set1_epi8(0x0F);
    *side = _mm512_permutex2var_epi8(v0, _mm512_loadu_si512(t->side), v1);
    *lo = _mm512_and_si512(nib, m);
    *hi = _mm512_and_si512(_mm512_srli_epi16(nib, 4), m);
    if (FIFTH) {
        const __m512i sixteen = _mm512_set1_epi8(16);
        *lo = _mm512_mask_add_epi8(*lo, _mm512_bitshuffle_epi64_mask(*side, _mm512_loadu_si512(qm_p4_bits_lo)), *lo, sixteen);
        *hi = _mm512_mask_add_epi8(*hi, _mm512_bitshuffle_epi64_mask(*side, _mm512_loadu_si512(qm_p4_bits_hi)), *hi, sixteen);
    }
}
// The group of 8 blocks from g0 of a weight row (fewer at the row's end): v = the low and high
// halves of its first 4 blocks, then of the rest (zero where absent), dw = their scales in the lanes'
// block order [0 2 4 6 1 3 5 7]. Returns the count of the second 4 (0: no second half).
QM_PFN int QF(group_p4)(const uint8_t *row, int64_t nb, int64_t g0, const int BS, const int FIFTH, const qm_p4_perm *t,
                        __m512i words, __m512i v[4], __m256 *dw) {
    const int gn = nb - g0 < 8 ? (int)(nb - g0) : 8, na = gn < 4 ? gn : 4, nb4 = gn - na;
    __m512i sa, sb = _mm512_setzero_si512();
    v[2] = v[3] = _mm512_setzero_si512();
    QF(dec4)(row + g0 * BS, na, BS, FIFTH, t, &v[0], &v[1], &sa);
    if (nb4) QF(dec4)(row + (g0 + 4) * BS, nb4, BS, FIFTH, t, &v[2], &v[3], &sb);
    *dw = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(sa, words, sb)));
    return nb4;
}
// One activation row's part of a group (a: its qm_act4 pair for the group; xo, xd: its sums and scales
// from the group's first block) into acc: the 8 exact dots, the offset taken off, then QM_BLOCKS's
// multiply-add.
QM_PFN __m256 QF(acc_p4)(const __m512i v[4], int nb4, __m256 dw, const qm_act4 *a, const int32_t *xo, const float *xd,
                         __m512i dwords, const int OFF, __m256 acc) {
    const __m512i z = _mm512_setzero_si512();
    const __m512i va = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, v[0], _mm512_loadu_si512(a[0].l)), v[1],
                                           _mm512_loadu_si512(a[0].h));
    const __m512i vb = nb4 ? _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, v[2], _mm512_loadu_si512(a[1].l)), v[3],
                                                 _mm512_loadu_si512(a[1].h))
                           : z;
    // 128-bit lane k: (a0 + a2, b0 + b2, a1 + a3, b1 + b3), then + its qword swap: blocks k, k + 4.
    const __m512i f = _mm512_add_epi32(_mm512_unpacklo_epi32(va, vb), _mm512_unpackhi_epi32(va, vb));
    const __m512i dots = _mm512_permutexvar_epi32(dwords, _mm512_add_epi32(f, _mm512_shuffle_epi32(f, _MM_PERM_BADC)));
    const __m256i d8 = _mm256_sub_epi32(_mm512_castsi512_si256(dots),
                                        _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)xo), __builtin_ctz(OFF)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(d8), _mm256_mul_ps(dw, _mm256_loadu_ps(xd)), acc);
}
// One weight row (BS-byte blocks, unsigned offset OFF) against NT activation rows.
QM_PFN void QF(tile_p4)(QM_ARGS, const int BS, const int OFF, const int FIFTH, const qm_p4_perm *t) {
    (void)x; (void)ldx;
    __m256 acc[QM_TILE];
    for (int j = 0; j < NT; j++) acc[j] = _mm256_setzero_ps();
    const int64_t xs = (nb + 7) & ~(int64_t)7;
    const __m512i words = _mm512_loadu_si512(qm_p4_words), dwords = _mm512_loadu_si512(qm_p4_dwords);
    for (int64_t g0 = 0; g0 < nb; g0 += 8) {
        __m512i v[4];
        __m256 dw;
        const int nb4 = QF(group_p4)(row, nb, g0, BS, FIFTH, t, words, v, &dw);
        for (int j = 0; j < NT; j++)
            acc[j] = QF(acc_p4)(v, nb4, dw, (const qm_act4 *)xa + j * (xs / 4) + g0 / 4, xo + j * xs + g0, xd + j * xs + g0,
                                dwords, OFF, acc[j]);
    }
    for (int j = 0; j < NT; j++) out[j] = QF(hsum_classes)(acc[j]);
}
// One activation row (decode): tile_p4's operations for every weight row of [r0, r1), with the tables
// and the row's activation layout loaded once (~10% faster than a tile call a row).
QM_PFN void QF(rows1_p4)(const uint8_t *w, int64_t row_bytes, int64_t nb, int64_t r0, int64_t r1, const float *xd,
                         const int32_t *xo, const qm_act4 *xa, float *y, const int BS, const int OFF, const int FIFTH,
                         const qm_p4_perm *t) {
    const __m512i words = _mm512_loadu_si512(qm_p4_words), dwords = _mm512_loadu_si512(qm_p4_dwords);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = w + r * row_bytes;
        QM_PREFETCH_ROW
        __m256 acc = _mm256_setzero_ps();
        for (int64_t g0 = 0; g0 < nb; g0 += 8) {
            __m512i v[4];
            __m256 dw;
            const int nb4 = QF(group_p4)(row, nb, g0, BS, FIFTH, t, words, v, &dw);
            acc = QF(acc_p4)(v, nb4, dw, xa + g0 / 4, xo + g0, xd + g0, dwords, OFF, acc);
        }
        y[r] = QF(hsum_classes)(acc);
    }
}

QM_PFN void QF(tile_q4_0p)(QM_ARGS) { QF(tile_p4)(row, nb, x, xd, xo, xa, ldx, NT, out, 18, 8, 0, &qm_p4_q4_0); }
QM_PFN void QF(tile_q5_0p)(QM_ARGS) { QF(tile_p4)(row, nb, x, xd, xo, xa, ldx, NT, out, 22, 16, 1, &qm_p4_q5_0); }

__attribute__((target(QM_TARGET ",avx512vbmi,avx512bitalg")))
static int QF(matmul_p4)(int type, const uint8_t *w, int64_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                         const zk_q8a *x, int64_t nt0, float *y, int64_t ldy) {
    const int64_t nb = k / 32;
    if (nt0 == 1) {
        const int64_t xs = (nb + 7) & ~(int64_t)7;
        float xd[xs];
        int32_t xo[xs];
        qm_act4 xa[xs / 4];
        QF(fill_scaled)(x, nb, xs, 1, xd, xo, xa);
        if (type == ZK_Q4_0) QF(rows1_p4)(w, row_bytes, nb, r0, r1, xd, xo, xa, y, 18, 8, 0, &qm_p4_q4_0);
        else QF(rows1_p4)(w, row_bytes, nb, r0, r1, xd, xo, xa, y, 22, 16, 1, &qm_p4_q5_0);
        return 1;
    }
    if (type == ZK_Q4_0) QM_DRIVE_SCALED(q4_0p, 1)
    else QM_DRIVE_SCALED(q5_0p, 1)
    return 1;
}
#undef QM_PFN
#endif

// The K-quants' activations (qm_ksuper) for chunks of activation rows, on the stack like the scaled
// types' (at most QM_KS_BYTES a chunk, or one row's when longer; 64-byte aligned): each super-block's
// int8 values back to back, its blocks' integer sums and half sums (int16: at most 32 x 127) and its
// scale d (Q8_K: one a super-block). On the stack, not in a buffer a thread grows: which thread runs
// which share changes from call to call (KernelPool), and a steady decode step allocates nothing.
#define QM_KS_BYTES 32768
#define QM_DRIVE_K(kind)                                                                       \
    {                                                                                          \
        const int64_t nsb = nb / 8;                                                            \
        const int64_t row_ks = nsb * (int64_t)sizeof(qm_ksuper);                               \
        const int64_t chunk = row_ks < QM_KS_BYTES ? QM_KS_BYTES / row_ks : 1;                 \
        _Alignas(64) uint8_t ksb[(chunk < nt0 ? chunk : nt0) * row_ks];                        \
        qm_ksuper *kb = (qm_ksuper *)ksb;                                                      \
        const zk_q8a *x0 = x;                                                                  \
        float *y0 = y;                                                                         \
        for (int64_t t0 = 0; t0 < nt0; t0 += chunk) {                                          \
            const int64_t nt = nt0 - t0 < chunk ? nt0 - t0 : chunk;                            \
            const zk_q8a *x = x0 + t0 * nb;                                                    \
            float *y = y0 + t0 * ldy;                                                          \
            for (int64_t t = 0; t < nt; t++)                                                   \
                for (int64_t sb = 0; sb < nsb; sb++) {                                         \
                    qm_ksuper *o = kb + t * nsb + sb;                                          \
                    const zk_q8a *a = x + t * nb + sb * 8;                                     \
                    for (int i = 0; i < 8; i++) {                                              \
                        memcpy(o->q[i], a[i].q, 32);                                           \
                        int32_t lo, hi;                                                        \
                        q8a_half_sums(a + i, &lo, &hi);                                        \
                        o->hs[2 * i] = (int16_t)lo;                                            \
                        o->hs[2 * i + 1] = (int16_t)hi;                                        \
                        o->bs[i] = (int16_t)(lo + hi);                                         \
                    }                                                                          \
                    o->d = a[0].d;                                                             \
                }                                                                              \
            const void *xa = kb;                                                               \
            const int64_t xa_stride = row_ks;                                                  \
            QM_DRIVE(kind)                                                                     \
        }                                                                                      \
    }

__attribute__((target(QM_TARGET)))
static int QF(matmul)(int type, const uint8_t *w, int64_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                      const zk_q8a *x, int64_t nt0, float *y, int64_t ldy) {
    const int64_t nb = k / 32;
    const int64_t nt = nt0, xs = nb;  // the unscaled types' kernels take no scale arrays
    const float *xd = NULL;
    const int32_t *xo = NULL;
    const void *xa = NULL;
    const int64_t xa_stride = 0;
#if QM_VNNI
    if ((type == ZK_Q4_0 || type == ZK_Q5_0) && use_p4()) return QF(matmul_p4)(type, w, row_bytes, k, r0, r1, x, nt0, y, ldy);
#endif
    switch (type) {
    case ZK_Q8_0: QM_DRIVE_SCALED(q8_0, 0) return 1;
    case ZK_Q4_0: QM_DRIVE_SCALED(q4_0, 0) return 1;
    case ZK_Q5_0: QM_DRIVE_SCALED(q5_0, 0) return 1;
#if !QM_VNNI
    case ZK_Q5_0_PLANES: QM_DRIVE_SCALED(q5_0p8, 0) return 1;
#endif
    case ZK_Q4_1: QM_DRIVE_UNSIGNED(q4_1, 20, 0) return 1;
    case ZK_Q5_1: QM_DRIVE_UNSIGNED(q5_1, 24, 1) return 1;
    case ZK_Q4_K: QM_DRIVE_K(q4_K) return 1;
    case ZK_Q5_K: QM_DRIVE_K(q5_K) return 1;
    case ZK_Q6_K: QM_DRIVE_K(q6_K) return 1;
    default: return 0;
    }
}

#undef QF
#undef QM_PREFETCH_ROW
#undef QM_PREFETCH_ROWS
#undef QM_DRIVE_UNSIGNED
#undef QM_FN
#undef QM_BLOCKS
#undef QM_K4
#undef QM_ARGS
#undef QM_DRIVE
#undef QM_DRIVE_SCALED
#undef QM_DOT_W
#undef QM_OFF_SUMS
#undef QM_DEC_PAIR
#undef QM_ONE_DOT
#undef QM_LANE_BLOCK
#undef QM_GROUP
#undef QM_XD_FLOATS
#undef QM_REM
#undef QM_REM_WIDE
