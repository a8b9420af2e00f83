// The attention partial kernel, included twice by attention.c: AT_512 = 1 (AVX-512, 16 lanes) and
// AT_512 = 0 (AVX2, 8 lanes), each compiled for its own target and chosen at run time.
#define AT_CAT2(a, b) a##b
#define AT_CAT(a, b) AT_CAT2(a, b)
#define AT_FN(name) AT_CAT(name, AT_SUFFIX)

#if AT_512
typedef __m512 AT_FN(vec);
#define AT_W 16
#define AT_VB 4  // vectors per head in a value block: 4 heads x 4 = 16 of the 32 registers
#define AT_ZERO() _mm512_setzero_ps()
#define AT_LOADH(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define AT_LOAD(p) _mm512_loadu_ps(p)
#define AT_STORE(p, v) _mm512_storeu_ps(p, v)
#define AT_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define AT_SET1(x) _mm512_set1_ps(x)
#else
typedef __m256 AT_FN(vec);
#define AT_W 8
#define AT_VB 2  // 4 heads x 2 = 8 of the 16 registers
#define AT_ZERO() _mm256_setzero_ps()
#define AT_LOADH(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define AT_LOAD(p) _mm256_loadu_ps(p)
#define AT_STORE(p, v) _mm256_storeu_ps(p, v)
#define AT_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define AT_SET1(x) _mm256_set1_ps(x)
#endif
#define AT_VEC AT_FN(vec)

// scores[h * ZK_ATT_CHUNK] = scale * q_h . k for the g heads; the key row is read once per 4 heads.
// Both variants sum each 16-dimension block lane by lane (AVX2: two 8-lane halves), add the halves,
// then reduce 8 lanes the same way, and finish a tail with fmaf: the AVX-512 and AVX2 results are
// bit-identical, so a forced path (tests) never changes a model's numbers.
#if AT_512
__attribute__((target(AT_TARGET), always_inline))
static inline float AT_FN(reduce16)(__m512 v) {
    const __m256 lo = _mm512_castps512_ps256(v);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return hsum8(_mm256_add_ps(lo, hi));
}
#define AT_ACC __m512
#define AT_ACC_ZERO() _mm512_setzero_ps()
#define AT_ACC_FMA(acc, qp, kv) acc = _mm512_fmadd_ps(_mm512_loadu_ps(qp), kv, acc)
#define AT_KEY16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define AT_KEY_T __m512
#define AT_ACC_REDUCE(acc) AT_FN(reduce16)(acc)
#else
typedef struct { __m256 lo, hi; } AT_FN(pair);
#define AT_ACC AT_FN(pair)
#define AT_ACC_ZERO() ((AT_FN(pair)){_mm256_setzero_ps(), _mm256_setzero_ps()})
#define AT_ACC_FMA(acc, qp, kv) do { acc.lo = _mm256_fmadd_ps(_mm256_loadu_ps(qp), kv.lo, acc.lo); \
                                     acc.hi = _mm256_fmadd_ps(_mm256_loadu_ps((qp) + 8), kv.hi, acc.hi); } while (0)
#define AT_KEY16(p) ((AT_FN(pair)){_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p))), \
                                   _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((p) + 8)))})
#define AT_KEY_T AT_FN(pair)
#define AT_ACC_REDUCE(acc) hsum8(_mm256_add_ps(acc.lo, acc.hi))
#endif

__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(dots)(const float *q, int64_t g, int64_t hd, const uint16_t *k, float scale, float *scores) {
    const int64_t hv = hd - hd % 16;
    int64_t h = 0;
    for (; h + 4 <= g; h += 4) {
        const float *q0 = q + h * hd, *q1 = q0 + hd, *q2 = q1 + hd, *q3 = q2 + hd;
        AT_ACC a0 = AT_ACC_ZERO(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t i = 0; i < hv; i += 16) {
            const AT_KEY_T kv = AT_KEY16(k + i);
            AT_ACC_FMA(a0, q0 + i, kv);
            AT_ACC_FMA(a1, q1 + i, kv);
            AT_ACC_FMA(a2, q2 + i, kv);
            AT_ACC_FMA(a3, q3 + i, kv);
        }
        float r0 = AT_ACC_REDUCE(a0), r1 = AT_ACC_REDUCE(a1), r2 = AT_ACC_REDUCE(a2), r3 = AT_ACC_REDUCE(a3);
        for (int64_t i = hv; i < hd; i++) {
            const float kk = zk_f16_to_f32(k[i]);
            r0 = fmaf(q0[i], kk, r0); r1 = fmaf(q1[i], kk, r1); r2 = fmaf(q2[i], kk, r2); r3 = fmaf(q3[i], kk, r3);
        }
        scores[h * ZK_ATT_CHUNK] = r0 * scale;
        scores[(h + 1) * ZK_ATT_CHUNK] = r1 * scale;
        scores[(h + 2) * ZK_ATT_CHUNK] = r2 * scale;
        scores[(h + 3) * ZK_ATT_CHUNK] = r3 * scale;
    }
    for (; h < g; h++) {
        const float *qh = q + h * hd;
        AT_ACC a = AT_ACC_ZERO();
        for (int64_t i = 0; i < hv; i += 16) {
            const AT_KEY_T kv = AT_KEY16(k + i);
            AT_ACC_FMA(a, qh + i, kv);
        }
        float r = AT_ACC_REDUCE(a);
        for (int64_t i = hv; i < hd; i++) r = fmaf(qh[i], zk_f16_to_f32(k[i]), r);
        scores[h * ZK_ATT_CHUNK] = r * scale;
    }
}
#undef AT_ACC
#undef AT_ACC_ZERO
#undef AT_ACC_FMA
#undef AT_KEY16
#undef AT_KEY_T
#undef AT_ACC_REDUCE

#if AT_512
// dots for 4 keys x 4 heads at once: 16 accumulators keep both FMA pipes busy (one key's 4 chains
// wait on FMA latency) and each query block is loaded once for 4 keys; the 16 sums are reduced
// together by a transpose tree that adds lanes in reduce16's order (l + l+8, l + l+4, l + l+2,
// l + l+1), so every score has the same bits as dots() and as the AVX2 variant.
__attribute__((target(AT_TARGET), always_inline))
static inline __m512 AT_FN(fold_halves)(__m512 x, __m512 y) {  // [x.lo8 + x.hi8 | y.lo8 + y.hi8]
    return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x44), _mm512_shuffle_f32x4(x, y, 0xEE));
}
__attribute__((target(AT_TARGET), always_inline))
static inline __m512 AT_FN(fold_quarters)(__m512 x, __m512 y) {  // 8-lane groups to 4: l + l+4
    return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x88), _mm512_shuffle_f32x4(x, y, 0xDD));
}
__attribute__((target(AT_TARGET), always_inline))
static inline __m512 AT_FN(fold_pairs)(__m512 x, __m512 y) {  // per 128-bit lane: l + l+2
    return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(x), _mm512_castps_pd(y))),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(x), _mm512_castps_pd(y))));
}
__attribute__((target(AT_TARGET), always_inline))
static inline __m512 AT_FN(fold_singles)(__m512 x, __m512 y) {  // per 128-bit lane: l + l+1
    return _mm512_add_ps(_mm512_shuffle_ps(x, y, 0x88), _mm512_shuffle_ps(x, y, 0xDD));
}
__attribute__((target(AT_TARGET), always_inline))
static inline __m512 AT_FN(fold_key)(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {  // lane group h: head h
    return AT_FN(fold_quarters)(AT_FN(fold_halves)(a0, a1), AT_FN(fold_halves)(a2, a3));
}

// scores[h * ZK_ATT_CHUNK + t] for keys k[0..3] and 4 heads (hd a multiple of 16).
__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(dots4)(const float *q, int64_t hd, const uint16_t *const *k, float scale, float *scores) {
    __m512 a[4][4];  // [key][head]
    for (int t = 0; t < 4; t++)
        for (int h = 0; h < 4; h++) a[t][h] = _mm512_setzero_ps();
    for (int64_t i = 0; i < hd; i += 16) {
        const __m512 q0 = _mm512_loadu_ps(q + i), q1 = _mm512_loadu_ps(q + hd + i);
        const __m512 q2 = _mm512_loadu_ps(q + 2 * hd + i), q3 = _mm512_loadu_ps(q + 3 * hd + i);
        for (int t = 0; t < 4; t++) {
            const __m512 kv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k[t] + i)));
            a[t][0] = _mm512_fmadd_ps(q0, kv, a[t][0]);
            a[t][1] = _mm512_fmadd_ps(q1, kv, a[t][1]);
            a[t][2] = _mm512_fmadd_ps(q2, kv, a[t][2]);
            a[t][3] = _mm512_fmadd_ps(q3, kv, a[t][3]);
        }
    }
    const __m512 k0 = AT_FN(fold_key)(a[0][0], a[0][1], a[0][2], a[0][3]);
    const __m512 k1 = AT_FN(fold_key)(a[1][0], a[1][1], a[1][2], a[1][3]);
    const __m512 k2 = AT_FN(fold_key)(a[2][0], a[2][1], a[2][2], a[2][3]);
    const __m512 k3 = AT_FN(fold_key)(a[3][0], a[3][1], a[3][2], a[3][3]);
    const __m512 r = _mm512_mul_ps(AT_FN(fold_singles)(AT_FN(fold_pairs)(k0, k1), AT_FN(fold_pairs)(k2, k3)),
                                   _mm512_set1_ps(scale));  // lane group h = head h, keys 0..3
    _mm_storeu_ps(scores, _mm512_castps512_ps128(r));
    _mm_storeu_ps(scores + ZK_ATT_CHUNK, _mm512_extractf32x4_ps(r, 1));
    _mm_storeu_ps(scores + 2 * ZK_ATT_CHUNK, _mm512_extractf32x4_ps(r, 2));
    _mm_storeu_ps(scores + 3 * ZK_ATT_CHUNK, _mm512_extractf32x4_ps(r, 3));
}
#endif

// o_h[d0 .. d0 + nz * AT_W) = sum_j p_hj v_j[...] for nh <= 4 heads: the accumulators stay in
// registers over all keys of the chunk (called with constant nh, nz, so the arrays unroll).
__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(vblock)(int nh, int nz, float *o, int64_t ostride, const float *p,
                                 const uint16_t *const *vrows, int64_t n, int64_t d0) {
    AT_VEC acc[4][AT_VB];
    for (int h = 0; h < nh; h++)
        for (int z = 0; z < nz; z++) acc[h][z] = AT_ZERO();
    for (int64_t j = 0; j < n; j++) {
        const uint16_t *v = vrows[j] + d0;
        AT_VEC x[AT_VB];
        for (int z = 0; z < nz; z++) x[z] = AT_LOADH(v + z * AT_W);
        for (int h = 0; h < nh; h++) {
            const AT_VEC pb = AT_SET1(p[h * ZK_ATT_CHUNK + j]);
            for (int z = 0; z < nz; z++) acc[h][z] = AT_FMA(pb, x[z], acc[h][z]);
        }
    }
    for (int h = 0; h < nh; h++)
        for (int z = 0; z < nz; z++) AT_STORE(o + h * ostride + d0 + z * AT_W, acc[h][z]);
}

// All heads of a value block of nz vectors at d0 (heads in blocks of 4, then the rest).
__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(vblocks)(int nz, float *o, int64_t ostride, int64_t g, const float *p,
                                  const uint16_t *const *vrows, int64_t n, int64_t d0) {
    int64_t h = 0;
    for (; h + 4 <= g; h += 4) AT_FN(vblock)(4, nz, o + h * ostride, ostride, p + h * ZK_ATT_CHUNK, vrows, n, d0);
    float *oh = o + h * ostride;
    const float *ph = p + h * ZK_ATT_CHUNK;
    switch (g - h) {
    case 3: AT_FN(vblock)(3, nz, oh, ostride, ph, vrows, n, d0); break;
    case 2: AT_FN(vblock)(2, nz, oh, ostride, ph, vrows, n, d0); break;
    case 1: AT_FN(vblock)(1, nz, oh, ostride, ph, vrows, n, d0); break;
    default: break;
    }
}

// keys4 (AVX-512, groups of 4 heads; the AVX2 variant ignores it): scores 4 keys at a time with
// dots4, the same bits. With the keys in cache (prompts: each query reads keys its neighbours just
// read) the kernel measured ~1.5x faster on 4096 keys, but streaming the cache from memory (decode)
// a few percent slower than one key at a time, so only whole queries (zk_attend) set it.
__attribute__((target(AT_TARGET)))
static void AT_FN(partial)(const float *q, int64_t g, int64_t hd, float scale,
                    const zk_kv_segment *segs, int64_t n_segs, int64_t stride,
                    int64_t from, int64_t to, float *scores, float *part, int keys4) {
    const int64_t n = to - from, ps = hd + 2;
    const uint16_t *vrows[ZK_ATT_CHUNK];
    int64_t s = 0, i = from;  // segment and row of key `from`
    while (s < n_segs && i >= segs[s].n) { i -= segs[s].n; s++; }
    // Software prefetch, per key row: the key row 6 ahead (non-temporal: read once, keep it from
    // evicting what the next step reuses) and this value row into L2 (read by the value pass below).
    // Streaming 48 MiB of cache at depth 16384 alone went from ~29 to ~45 GB/s on both cores (a
    // prefetch past a segment's end only warms a line; it never faults).
#define AT_NEXT_ROW(kr, j) do { \
        kr = segs[s].k + i * stride; \
        vrows[j] = segs[s].v + i * stride; \
        for (int64_t b = 0; b < hd * 2; b += 64) { \
            _mm_prefetch((const char *)(kr + 6 * stride) + b, _MM_HINT_NTA); \
            _mm_prefetch((const char *)vrows[j] + b, _MM_HINT_T1); \
        } \
        if (++i == segs[s].n) { s++; i = 0; } \
    } while (0)
    int64_t j = 0;
#if AT_512
    if (keys4 && g % 4 == 0 && hd % 16 == 0)
        for (; j + 4 <= n; j += 4) {
            const uint16_t *kr[4];
            for (int t = 0; t < 4; t++) AT_NEXT_ROW(kr[t], j + t);
            for (int64_t h = 0; h < g; h += 4) AT_FN(dots4)(q + h * hd, hd, kr, scale, scores + h * ZK_ATT_CHUNK + j);
        }
#else
    (void)keys4;
#endif
    for (; j < n; j++) {
        const uint16_t *kr;
        AT_NEXT_ROW(kr, j);
        AT_FN(dots)(q, g, hd, kr, scale, scores + j);
    }
#undef AT_NEXT_ROW
    // Per head: m = max score, p_j = exp(s_j - m) in place, l = sum p_j.
    for (int64_t h = 0; h < g; h++) {
        float *sc = scores + h * ZK_ATT_CHUNK;
        float m = -INFINITY;
        for (int64_t j = 0; j < n; j++) m = sc[j] > m ? sc[j] : m;
        const __m256 vm = _mm256_set1_ps(m);
        __m256 acc = _mm256_setzero_ps();
        int64_t j = 0;
        for (; j + 8 <= n; j += 8) {
            const __m256 e = zk_exp8(_mm256_sub_ps(_mm256_loadu_ps(sc + j), vm));
            _mm256_storeu_ps(sc + j, e);
            acc = _mm256_add_ps(acc, e);
        }
        float l = hsum8(acc);
        for (; j < n; j++) { sc[j] = expf(sc[j] - m); l += sc[j]; }
        part[h * ps] = m;
        part[h * ps + 1] = l;
    }
    // o_h = sum_j p_hj v_j, by blocks of dimensions.
    float *o = part + 2;
    int64_t d0 = 0;
    for (; d0 + AT_VB * AT_W <= hd; d0 += AT_VB * AT_W) AT_FN(vblocks)(AT_VB, o, ps, g, scores, vrows, n, d0);
    for (; d0 + AT_W <= hd; d0 += AT_W) AT_FN(vblocks)(1, o, ps, g, scores, vrows, n, d0);
    for (; d0 < hd; d0++)  // (fmaf: the same rounding as a vector lane, whichever variant gets here)
        for (int64_t h = 0; h < g; h++) {
            float a = 0.0f;
            for (int64_t j = 0; j < n; j++) a = fmaf(scores[h * ZK_ATT_CHUNK + j], zk_f16_to_f32(vrows[j][d0]), a);
            o[h * ps + d0] = a;
        }
}

#undef AT_W
#undef AT_VB
#undef AT_ZERO
#undef AT_LOADH
#undef AT_LOAD
#undef AT_STORE
#undef AT_FMA
#undef AT_SET1
#undef AT_VEC
