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
// 4 heads x 3 = 12 of the 16 registers: 12 chains of fused multiply-adds, one a key each, keep both FMA
// pipes ahead of the 4-cycle latency (8 chains just match it). One core of an AMD Zen 3, 4 heads of
// 256 over 4096 f16 keys in cache: 71 -> 68 ns a key; 16384 keys from memory 81 -> 77.5 (alternated,
// the same bits).
#define AT_VB 3
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

// Finishes 4 keys x 4 heads: k_t's 128-bit lane h holds head h's sums for key t folded to 4 lanes;
// folds them to one (l + l+2, then l + l+1), scales, and stores scores[h * ZK_ATT_CHUNK + t].
__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(store4)(__m512 k0, __m512 k1, __m512 k2, __m512 k3, float scale, float *scores) {
    const __m512 r = _mm512_mul_ps(AT_FN(fold_singles)(AT_FN(fold_pairs)(k0, k1), AT_FN(fold_pairs)(k2, k3)),
                                   _mm512_set1_ps(scale));  // lane group h = head h, keys 0..3
    _mm_storeu_ps(scores, _mm512_castps512_ps128(r));
    _mm_storeu_ps(scores + ZK_ATT_CHUNK, _mm512_extractf32x4_ps(r, 1));
    _mm_storeu_ps(scores + 2 * ZK_ATT_CHUNK, _mm512_extractf32x4_ps(r, 2));
    _mm_storeu_ps(scores + 3 * ZK_ATT_CHUNK, _mm512_extractf32x4_ps(r, 3));
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
    AT_FN(store4)(AT_FN(fold_key)(a[0][0], a[0][1], a[0][2], a[0][3]), AT_FN(fold_key)(a[1][0], a[1][1], a[1][2], a[1][3]),
                  AT_FN(fold_key)(a[2][0], a[2][1], a[2][2], a[2][3]), AT_FN(fold_key)(a[3][0], a[3][1], a[3][2], a[3][3]),
                  scale, scores);
}
#endif

#if !AT_512
#define AT_NK 3
// dots for AT_NK keys x nh (at most 4) heads at once (hd a multiple of 16), AVX2: dots' two 8-lane
// accumulators per head become two passes, the lanes of dimensions i..i+7 of every 16-dimension block,
// then i+8..i+15 (each lane's chain of fused multiply-adds in the same order), so that AT_NK x nh
// chains keep both FMA pipes busy in 16 registers and a query vector, loaded once, serves AT_NK keys;
// the halves are then added and reduced as dots does: the same bits. nh < 4 serves the heads past a
// multiple of 4 (SmolLM2's groups of 3 query heads a key head): one core of an AMD Zen 3, 3 heads of
// 64 over 2048 f16 keys in cache, 0.171 -> 0.120 ms (the same bits).
__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(dotsk)(const int nh, const float *q, int64_t hd, const uint16_t *const *k, float scale,
                                float *scores) {
    __m256 half[2][AT_NK][4];
    for (int e = 0; e < 2; e++) {
        __m256 a[AT_NK][4];
        for (int t = 0; t < AT_NK; t++)
            for (int h = 0; h < nh; h++) a[t][h] = _mm256_setzero_ps();
        for (int64_t i = 8 * e; i < hd; i += 16) {
            __m256 kv[AT_NK];
            for (int t = 0; t < AT_NK; t++) kv[t] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k[t] + i)));
            for (int h = 0; h < nh; h++) {
                const __m256 qv = _mm256_loadu_ps(q + h * hd + i);
                for (int t = 0; t < AT_NK; t++) a[t][h] = _mm256_fmadd_ps(qv, kv[t], a[t][h]);
            }
        }
        for (int t = 0; t < AT_NK; t++)
            for (int h = 0; h < nh; h++) half[e][t][h] = a[t][h];
    }
    for (int t = 0; t < AT_NK; t++)
        for (int h = 0; h < nh; h++) scores[h * ZK_ATT_CHUNK + t] = hsum8(_mm256_add_ps(half[0][t][h], half[1][t][h])) * scale;
}
#endif

// o_h[d0 .. d0 + nz * AT_W) = sum_j p_hj v_j[...] for nh <= 4 heads over f16 values: the
// accumulators stay in registers over all keys of the chunk (called with constant nh, nz, so the
// arrays unroll).
__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(vblock)(int nh, int nz, float *o, int64_t ostride, const float *p,
                                 const void *const *vrows, int64_t n, int64_t d0, at_cursor *pf) {
    AT_VEC acc[4][AT_VB];
    for (int h = 0; h < nh; h++)
        for (int z = 0; z < nz; z++) acc[h][z] = AT_ZERO();
    for (int64_t j = 0; j < n; j++) {
        at_prefetch_step(pf);
        AT_VEC x[AT_VB];
        const uint16_t *v = (const uint16_t *)vrows[j] + d0;
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
                                  const void *const *vrows, int64_t n, int64_t d0, at_cursor *pf) {
    int64_t h = 0;
    for (; h + 4 <= g; h += 4) AT_FN(vblock)(4, nz, o + h * ostride, ostride, p + h * ZK_ATT_CHUNK, vrows, n, d0, pf);
    float *oh = o + h * ostride;
    const float *ph = p + h * ZK_ATT_CHUNK;
    switch (g - h) {
    case 3: AT_FN(vblock)(3, nz, oh, ostride, ph, vrows, n, d0, pf); break;
    case 2: AT_FN(vblock)(2, nz, oh, ostride, ph, vrows, n, d0, pf); break;
    case 1: AT_FN(vblock)(1, nz, oh, ostride, ph, vrows, n, d0, pf); break;
    default: break;
    }
}

// Per head: m = max score, p_j = exp(s_j - m) in place, l = sum p_j; m and l into the partial.
__attribute__((target(AT_TARGET)))
static void AT_FN(softmax)(float *scores, int64_t g, int64_t n, float *part, int64_t ps) {
    for (int64_t h = 0; h < g; h++) {
        float *sc = scores + h * ZK_ATT_CHUNK;
        float m = -INFINITY;
        int64_t j = 0;
        if (n >= 8) {  // (max is exact in any order)
            __m256 mv = _mm256_loadu_ps(sc);
            for (j = 8; j + 8 <= n; j += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(sc + j));
            const __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
            const __m128 m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m = _mm_cvtss_f32(_mm_max_ss(m2, _mm_movehdup_ps(m2)));
        }
        for (; j < n; j++) m = sc[j] > m ? sc[j] : m;
        const __m256 vm = _mm256_set1_ps(m);
        __m256 acc = _mm256_setzero_ps();
        for (j = 0; j + 8 <= n; j += 8) {
            const __m256 e = zk_exp8(_mm256_sub_ps(_mm256_loadu_ps(sc + j), vm));
            _mm256_storeu_ps(sc + j, e);
            acc = _mm256_add_ps(acc, e);
        }
        float l = hsum8(acc);
        for (; j < n; j++) { sc[j] = expf(sc[j] - m); l += sc[j]; }
        part[h * ps] = m;
        part[h * ps + 1] = l;
    }
}

// The key row of key j (as `type`) and its value row into vrows[j], advancing segment s / row i
// (both kernels below). Software prefetch, per key row, into L2: the key row 12 ahead, and this value
// row (read by the value pass after the chunk's keys). Streaming 3 global layers' cache at depth 16384
// on both cores of an AMD EPYC (Zen 4; a plain read streams 31-37 GB/s), ms a step, f16 / q8_0: keys 6
// ahead non-temporal and values into L1, 2.05 / 1.78; keys 12 ahead into L2, 1.78-1.91 / 1.64-1.79;
// values into L2 too, ~5% / ~12% less again (medians of 6 alternated runs; in Gemma at depth 16384 the
// q8_0 cache's global-layer attention 2.12-2.19 -> 1.67-1.85 ms a step, f16 the same within noise).
// On Intel the non-temporal hint keeps lines out of L2 altogether (the row kernels' weights
// measured 28 -> 55 tokens/s with L2 instead). A prefetch past a segment's end only warms a line; it
// never faults. Each line once: kl / vl are the last lines asked for (rows share lines; the prefetch
// instructions themselves cost: 4.25 a row instead of 6 measured ~6% faster on the q8_0 cache's
// 272-byte rows).
#define AT_NEXT_ROW(kr, j, type, bytes) do { \
        kr = (type)((const uint8_t *)segs[s].k + i * stride); \
        vrows[j] = (const uint8_t *)segs[s].v + i * stride; \
        const uintptr_t ka = (uintptr_t)kr + 12 * stride, va = (uintptr_t)vrows[j]; \
        const uintptr_t ke = (ka + (bytes) - 1) & ~(uintptr_t)63, ve = (va + (bytes) - 1) & ~(uintptr_t)63; \
        for (uintptr_t l = (ka & ~(uintptr_t)63) > kl ? ka & ~(uintptr_t)63 : kl + 64; l <= ke; l += 64) \
            _mm_prefetch((const char *)l, _MM_HINT_T1); \
        for (uintptr_t l = (va & ~(uintptr_t)63) > vl ? va & ~(uintptr_t)63 : vl + 64; l <= ve; l += 64) \
            _mm_prefetch((const char *)l, _MM_HINT_T1); \
        kl = ke; \
        vl = ve; \
        if (++i == segs[s].n) { s++; i = 0; } \
    } while (0)

// AVX-512 with groups of 4 heads scores 4 keys at a time with dots4 (the same bits as dots): ~1.4x
// faster than one key at a time with the keys in cache, and streaming the cache from memory once the
// value pass prefetches the next chunk's keys (3 global layers at depth 16384, both cores of an AMD
// EPYC Zen 4: 2.13-2.48 ms a step one key at a time, 1.68-1.76 with dots4).
// quads: g is a multiple of 4 (an instance of its own, partial below).
__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(partial_body)(const int quads, const float *q, int64_t g, int64_t hd, float scale,
                                       const zk_kv_segment *segs, int64_t n_segs, int64_t stride,
                                       int64_t from, int64_t to, int64_t next_to, float *scores, float *part) {
    const int64_t n = to - from, ps = hd + 2;
    const void *vrows[ZK_ATT_CHUNK];
    int64_t s = 0, i = from;  // segment and row of key `from`
    uintptr_t kl = 0, vl = 0;  // last lines prefetched
    at_seek(segs, n_segs, &s, &i);
    int64_t j = 0;
#if AT_512
    if (quads && hd % 16 == 0)
        for (; j + 4 <= n; j += 4) {
            const uint16_t *kr[4];
            for (int t = 0; t < 4; t++) AT_NEXT_ROW(kr[t], j + t, const uint16_t *, hd * 2);
            for (int64_t h = 0; h < g; h += 4) AT_FN(dots4)(q + h * hd, hd, kr, scale, scores + h * ZK_ATT_CHUNK + j);
        }
#else
    if (hd % 16 == 0)
        for (; j + AT_NK <= n; j += AT_NK) {
            const uint16_t *kr[AT_NK];
            for (int t = 0; t < AT_NK; t++) AT_NEXT_ROW(kr[t], j + t, const uint16_t *, hd * 2);
            int64_t h = 0;
            for (; h + 4 <= g; h += 4) AT_FN(dotsk)(4, q + h * hd, hd, kr, scale, scores + h * ZK_ATT_CHUNK + j);
            if (quads) continue;
            const float *qh = q + h * hd;
            float *sh = scores + h * ZK_ATT_CHUNK + j;
            switch (g - h) {  // (constant head counts: the arrays unroll)
            case 3: AT_FN(dotsk)(3, qh, hd, kr, scale, sh); break;
            case 2: AT_FN(dotsk)(2, qh, hd, kr, scale, sh); break;
            case 1: AT_FN(dotsk)(1, qh, hd, kr, scale, sh); break;
            default: break;
            }
        }
#endif
    for (; j < n; j++) {
        const uint16_t *kr;
        AT_NEXT_ROW(kr, j, const uint16_t *, hd * 2);
        AT_FN(dots)(q, g, hd, kr, scale, scores + j);
    }
    AT_FN(softmax)(scores, g, n, part, ps);
    // o_h = sum_j p_hj v_j, by blocks of dimensions, prefetching the next chunk's keys (a call's run of
    // chunks streaming the cache: split decode queries) across all of the pass's steps.
    // Value blocks of AT_VB vectors, then one of 2 where they fit (AVX2's hd 256 = 10 x 24 + 16, 64 =
    // 2 x 24 + 16), then single vectors: each lane's sum over the keys is in key order whatever the
    // block, so any split gives the same bits.
    const int64_t d3 = hd / (AT_VB * AT_W) * (AT_VB * AT_W), d2 = AT_VB > 2 && hd - d3 >= 2 * AT_W ? d3 + 2 * AT_W : d3;
    const int64_t passes = (d3 / (AT_VB * AT_W) + (d2 > d3) + (hd - d2) / AT_W) * ((g + 3) / 4);
    at_cursor pf = at_next_keys(segs, n_segs, s, i, stride, hd * 2, to, next_to, passes * n);
    float *o = part + 2;
    int64_t d0 = 0;
    for (; d0 < d3; d0 += AT_VB * AT_W) AT_FN(vblocks)(AT_VB, o, ps, g, scores, vrows, n, d0, &pf);
    if (d2 > d3) {
        AT_FN(vblocks)(2, o, ps, g, scores, vrows, n, d0, &pf);
        d0 = d2;
    }
    for (; d0 + AT_W <= hd; d0 += AT_W) AT_FN(vblocks)(1, o, ps, g, scores, vrows, n, d0, &pf);
    for (; d0 < hd; d0++)  // (fmaf: the same rounding as a vector lane, whichever variant gets here)
        for (int64_t h = 0; h < g; h++) {
            float a = 0.0f;
            for (int64_t j = 0; j < n; j++) a = fmaf(scores[h * ZK_ATT_CHUNK + j], zk_f16_to_f32(((const uint16_t *)vrows[j])[d0]), a);
            o[h * ps + d0] = a;
        }
}

// A group of heads in 4s (Gemma's 4 query heads a key head) and any other (SmolLM2's 3), each an
// instance of its own: one for both measured ~2.5% slower for 4 heads (one core of an AMD Zen 3, 4 x
// 256 over 4096 f16 keys in cache).
__attribute__((target(AT_TARGET), noinline))
static void AT_FN(partial_quads)(const float *q, int64_t g, int64_t hd, float scale, const zk_kv_segment *segs,
                                 int64_t n_segs, int64_t stride, int64_t from, int64_t to, int64_t next_to,
                                 float *scores, float *part) {
    AT_FN(partial_body)(1, q, g, hd, scale, segs, n_segs, stride, from, to, next_to, scores, part);
}

__attribute__((target(AT_TARGET), noinline))
static void AT_FN(partial_any)(const float *q, int64_t g, int64_t hd, float scale, const zk_kv_segment *segs,
                               int64_t n_segs, int64_t stride, int64_t from, int64_t to, int64_t next_to,
                               float *scores, float *part) {
    AT_FN(partial_body)(0, q, g, hd, scale, segs, n_segs, stride, from, to, next_to, scores, part);
}

__attribute__((target(AT_TARGET)))
static void AT_FN(partial)(const float *q, int64_t g, int64_t hd, float scale, const zk_kv_segment *segs,
                           int64_t n_segs, int64_t stride, int64_t from, int64_t to, int64_t next_to,
                           float *scores, float *part) {
    if (g % 4 == 0) AT_FN(partial_quads)(q, g, hd, scale, segs, n_segs, stride, from, to, next_to, scores, part);
    else AT_FN(partial_any)(q, g, hd, scale, segs, n_segs, stride, from, to, next_to, scores, part);
}

// ---- q8_0 cache (ZK_KV_Q8_0): int8 rows with one f16 scale per 32 elements ----

// f16 scales to floats (nb of them).
__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(scales)(const uint8_t *src, int64_t nb, float *dst) {
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) _mm256_storeu_ps(dst + b, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 2 * b))));
    for (; b < nb; b++) dst[b] = half_to_float(src + 2 * b);
}

// Key scores over a q8_0 cache: score_hj = scale * acc, acc = fma(float(I_hjb), fl(dq_hb * dk_jb), acc)
// for blocks b = 0, 1, ... from acc = 0, where I_hjb is the exact integer dot of block b of query
// head h (quantized like the keys, attention.c) and key j. Every path below computes exactly that
// per (head, key), so AVX-512, AVX2, batches of keys and single keys agree bit for bit.
//
// Batches of AT_KT keys (16 AVX-512, 8 AVX2) put one key in each 32-bit lane: a block of the batch's
// rows is transposed so that vector g holds every key's 4 bytes g, and the head's 4 query bytes g
// are broadcast against it; 8 dot instructions give the batch's I for a head and block, with no
// horizontal sums, and the float work is one conversion and one multiply-add per head and block for
// the whole batch (against 8 lanes per key scored one at a time).

#if AT_512
#define AT_KT 16
// 16 rows of 8 dwords, in[m] = rows 2m, 2m + 1, to out[c] = column c (lane r = row r): three
// rounds of two-source permutes (rows by 4 x 4 columns, then 8 x 2, then 16 x 1).
__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(tr16x8)(const __m512i *in, __m512i *out) {
    // Round 1, lane c * 4 + r of quad q's half h: row 4q + r, column 4h + c.
    const __m512i i1a = _mm512_setr_epi32(0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27);
    const __m512i i1b = _mm512_add_epi32(i1a, _mm512_set1_epi32(4));
    // Round 2, lane c * 8 + r of rows 8p.. and columns 4h + 2s + c: quads 2p (r < 4), 2p + 1.
    const __m512i i2a = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const __m512i i2b = _mm512_add_epi32(i2a, _mm512_set1_epi32(8));
    // Round 3, lane r: rows 0-7 from the first, 8-15 from the second.
    const __m512i i3a = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    const __m512i i3b = _mm512_add_epi32(i3a, _mm512_set1_epi32(8));
    __m512i r1[4][2], r2[2][4];
    for (int q = 0; q < 4; q++) {
        r1[q][0] = _mm512_permutex2var_epi32(in[2 * q], i1a, in[2 * q + 1]);
        r1[q][1] = _mm512_permutex2var_epi32(in[2 * q], i1b, in[2 * q + 1]);
    }
    for (int p = 0; p < 2; p++)
        for (int h = 0; h < 2; h++) {
            r2[p][2 * h] = _mm512_permutex2var_epi32(r1[2 * p][h], i2a, r1[2 * p + 1][h]);
            r2[p][2 * h + 1] = _mm512_permutex2var_epi32(r1[2 * p][h], i2b, r1[2 * p + 1][h]);
        }
    for (int k = 0; k < 4; k++) {  // columns 2k, 2k + 1
        out[2 * k] = _mm512_permutex2var_epi32(r2[0][k], i3a, r2[1][k]);
        out[2 * k + 1] = _mm512_permutex2var_epi32(r2[0][k], i3b, r2[1][k]);
    }
}

// Scores of the 16 keys k[0..15] for nh <= 4 heads from h0 (constant nh: the accumulators stay in
// registers); dkt holds the keys' scales transposed ([block][key]). Two chains of dot instructions
// a head, added at the end (exact), so their latency hides behind the other heads'.
__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(keys_q8_heads)(int nh, const int8_t *const *k, const float *dkt, int64_t nb, int64_t h0,
                                        const q8_query *zq, float scale, float *scores) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512 sc[4];
    for (int h = 0; h < nh; h++) sc[h] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i in[8], z[8];
        for (int m = 0; m < 8; m++)
            in[m] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(k[2 * m] + 32 * b))),
                                                        _mm256_loadu_si256((const __m256i *)(k[2 * m + 1] + 32 * b)), 1), flip);
        AT_FN(tr16x8)(in, z);
        const __m512 dkb = _mm512_loadu_ps(dkt + b * 16);
        __m512i a0[4], a1[4];
        for (int h = 0; h < nh; h++) {
            a0[h] = _mm512_set1_epi32(zq->negb[b * zq->g + h0 + h]);
            a1[h] = _mm512_setzero_si512();
        }
        for (int c = 0; c < 8; c += 2)
            for (int h = 0; h < nh; h++) {
                const int32_t *qd = (const int32_t *)(zq->q + 32 * (b * zq->g + h0 + h));
                a0[h] = _mm512_dpbusd_epi32(a0[h], z[c], _mm512_set1_epi32(qd[c]));
                a1[h] = _mm512_dpbusd_epi32(a1[h], z[c + 1], _mm512_set1_epi32(qd[c + 1]));
            }
        for (int h = 0; h < nh; h++) {
            const __m512 w = _mm512_mul_ps(_mm512_set1_ps(zq->d[b * zq->g + h0 + h]), dkb);
            sc[h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(a0[h], a1[h])), w, sc[h]);
        }
    }
    for (int h = 0; h < nh; h++) _mm512_storeu_ps(scores + (h0 + h) * ZK_ATT_CHUNK, _mm512_mul_ps(sc[h], _mm512_set1_ps(scale)));
}

// The batch's scales dk (16 rows of nbp floats, nb rounded up to 8) transposed into dkt ([block][key]).
__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(scales_t)(const float *dk, float *dkt, int64_t nbp) {
    for (int64_t b = 0; b < nbp; b += 8) {
        __m512i in[8], out[8];
        for (int m = 0; m < 8; m++)
            in[m] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(dk + 2 * m * nbp + b))),
                                       _mm256_loadu_si256((const __m256i *)(dk + (2 * m + 1) * nbp + b)), 1);
        AT_FN(tr16x8)(in, out);
        for (int c = 0; c < 8; c++) _mm512_storeu_si512(dkt + (b + c) * 16, out[c]);
    }
}

// I_hjb of one key and block (the key bytes flipped to unsigned, the query's -128 * sum added).
__attribute__((target(AT_TARGET), always_inline))
static inline int32_t AT_FN(block_dot)(const int8_t *k, const q8_query *zq, int64_t o) {
    const __m256i kb = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)k), _mm256_set1_epi8((char)0x80));
    const __m256i d = _mm256_dpbusd_epi32(_mm256_setzero_si256(), kb, _mm256_loadu_si256((const __m256i *)(zq->q + 32 * o)));
    return hsum8_epi32(d) + zq->negb[o];
}
#else
#define AT_KT 8
// 8 rows of 8 dwords to columns (the usual unpack / permute transpose).
__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(tr8x8)(const __m256i *in, __m256i *out) {
    __m256i t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(in[2 * i], in[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(in[2 * i], in[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        u[4 * i] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int c = 0; c < 4; c++) {
        out[c] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x20);
        out[c + 4] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x31);
    }
}

// Scores of the 8 keys k[0..7] for nh <= 4 heads from h0 (see the AVX-512 variant; maddubs
// multiplies |k| by q with k's sign, both within +-127, so a 16-bit pair never saturates).
__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(keys_q8_heads)(int nh, const int8_t *const *k, const float *dkt, int64_t nb, int64_t h0,
                                        const q8_query *zq, float scale, float *scores) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 sc[4];
    for (int h = 0; h < nh; h++) sc[h] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i in[8], z[8];
        for (int t = 0; t < 8; t++) in[t] = _mm256_loadu_si256((const __m256i *)(k[t] + 32 * b));
        AT_FN(tr8x8)(in, z);
        const __m256 dkb = _mm256_loadu_ps(dkt + b * 8);
        __m256i acc[4];
        for (int h = 0; h < nh; h++) acc[h] = _mm256_setzero_si256();
        for (int c = 0; c < 8; c++) {
            const __m256i za = _mm256_sign_epi8(z[c], z[c]);
            for (int h = 0; h < nh; h++) {
                const int32_t *qd = (const int32_t *)(zq->q + 32 * (b * zq->g + h0 + h));
                const __m256i qs = _mm256_sign_epi8(_mm256_set1_epi32(qd[c]), z[c]);
                acc[h] = _mm256_add_epi32(acc[h], _mm256_madd_epi16(_mm256_maddubs_epi16(za, qs), ones));
            }
        }
        for (int h = 0; h < nh; h++) {
            const __m256 w = _mm256_mul_ps(_mm256_set1_ps(zq->d[b * zq->g + h0 + h]), dkb);
            sc[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[h]), w, sc[h]);
        }
    }
    for (int h = 0; h < nh; h++) _mm256_storeu_ps(scores + (h0 + h) * ZK_ATT_CHUNK, _mm256_mul_ps(sc[h], _mm256_set1_ps(scale)));
}

__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(scales_t)(const float *dk, float *dkt, int64_t nbp) {
    for (int64_t b = 0; b < nbp; b += 8) {
        __m256i in[8], out[8];
        for (int t = 0; t < 8; t++) in[t] = _mm256_castps_si256(_mm256_loadu_ps(dk + t * nbp + b));
        AT_FN(tr8x8)(in, out);
        for (int c = 0; c < 8; c++) _mm256_storeu_si256((__m256i *)(dkt + (b + c) * 8), out[c]);
    }
}

__attribute__((target(AT_TARGET), always_inline))
static inline int32_t AT_FN(block_dot)(const int8_t *k, const q8_query *zq, int64_t o) {
    const __m256i kb = _mm256_loadu_si256((const __m256i *)k);
    const __m256i qb = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(zq->q + 32 * o)), kb);
    const __m256i d = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(kb, kb), qb), _mm256_set1_epi16(1));
    return hsum8_epi32(d);
}
#endif

// Scores of the AT_KT keys k[] for the g heads: dk holds each key's scales (AT_KT rows of nbp floats),
// dkt is room for them transposed; heads by 4.
__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(keys_q8)(const int8_t *const *k, const float *dk, float *dkt, int64_t nb, int64_t nbp, int64_t g,
                                  const q8_query *zq, float scale, float *scores) {
    AT_FN(scales_t)(dk, dkt, nbp);
    for (int64_t h0 = 0; h0 < g; h0 += 4) {
        switch (g - h0 < 4 ? g - h0 : 4) {
        case 4: AT_FN(keys_q8_heads)(4, k, dkt, nb, h0, zq, scale, scores); break;
        case 3: AT_FN(keys_q8_heads)(3, k, dkt, nb, h0, zq, scale, scores); break;
        case 2: AT_FN(keys_q8_heads)(2, k, dkt, nb, h0, zq, scale, scores); break;
        default: AT_FN(keys_q8_heads)(1, k, dkt, nb, h0, zq, scale, scores); break;
        }
    }
}

// One key (the rest of a chunk after its batches): the same chain with scalar fused multiply-adds.
__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(key1_q8)(const int8_t *k, const float *dk, int64_t nb, int64_t g, const q8_query *zq,
                                  float scale, float *scores) {
    for (int64_t h = 0; h < g; h++) {
        float acc = 0.0f;
        for (int64_t b = 0; b < nb; b++) {
            const int64_t o = b * zq->g + h;
            acc = fmaf((float)AT_FN(block_dot)(k + 32 * b, zq, o), zq->d[o] * dk[b], acc);
        }
        scores[h * ZK_ATT_CHUNK] = acc * scale;
    }
}

// ---- q8_0 value pass: integer dot products over pairs of keys ----
//
// o_h[d] = sum_j p_hj s_jb v_jd (s_jb: row j's scale of block b = d / 32, v int8). The weights
// w_hjb = p_hj s_jb of a chunk are rounded to 16 bits against the chunk's largest scale of the
// block, S_b >= every w_hjb (p <= 1): wq = rne(p_hj * (s_jb * 32767 / S_b)), and the value pass is
// exact int32 arithmetic, sum_j wq_hjb v_jd, over pairs of keys (pmaddwd / vpdpwssd: two 16-bit
// products a lane; |sum| <= 256 keys * 32767 * 127 < 2^31), scaled once by S_b / 32767 at the end.
// Integer sums do not depend on their order, so AVX-512 and AVX2 give the same bits. The rounding
// is 2^-16 of the block's largest weight, below the 2^-8 of the values' own int8 steps; against
// float multiply-adds this halves the multiplies a lane does (two keys an instruction) and drops
// the per-value int8 -> float conversion and scaling.

// wq[(h * np + jp) * nb + b]: the 16-bit weights of keys 2jp (low half) and 2jp + 1 (high half)
// for head h and block b; np = ceil(n / 2), a missing last key's weight 0. fr[b] = S_b / 32767.
__attribute__((target(AT_TARGET)))
static void AT_FN(vweights)(const float *p, int64_t g, int64_t n, const float *vsc, int64_t nb, int32_t *wq,
                            float *f, float *fr) {
    const int64_t np = (n + 1) / 2, nb8 = nb - nb % 8;
    for (int64_t b = 0; b < nb; b += 8) {  // S_b into fr, 8 blocks at a time (max is exact in any order)
        if (b < nb8) {
            __m256 m = _mm256_setzero_ps();
            for (int64_t j = 0; j < n; j++) m = _mm256_max_ps(m, _mm256_loadu_ps(vsc + j * nb + b));
            _mm256_storeu_ps(fr + b, m);
        } else {
            for (int64_t c = b; c < nb; c++) {
                float m = 0.0f;
                for (int64_t j = 0; j < n; j++) m = vsc[j * nb + c] > m ? vsc[j * nb + c] : m;
                fr[c] = m;
            }
        }
    }
    for (int64_t b = 0; b < nb; b++) {
        const float m = fr[b];
        f[b] = m > 0.0f ? 32767.0f / m : 0.0f;
        fr[b] = m / 32767.0f;
    }
    const __m256i lo16 = _mm256_set1_epi32(0xFFFF);
    for (int64_t jp = 0; jp < np; jp++) {
        const int64_t j0 = 2 * jp, j1 = j0 + 1 < n ? j0 + 1 : j0;
        for (int64_t b = 0; b < nb8; b += 8) {
            const __m256 fb = _mm256_loadu_ps(f + b);
            const __m256 s0 = _mm256_mul_ps(_mm256_loadu_ps(vsc + j0 * nb + b), fb);
            const __m256 s1 = _mm256_mul_ps(_mm256_loadu_ps(vsc + j1 * nb + b), fb);
            for (int64_t h = 0; h < g; h++) {
                const float p1 = j0 + 1 < n ? p[h * ZK_ATT_CHUNK + j0 + 1] : 0.0f;
                const __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_set1_ps(p[h * ZK_ATT_CHUNK + j0]), s0));
                const __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_set1_ps(p1), s1));
                _mm256_storeu_si256((__m256i *)(wq + (h * np + jp) * nb + b),
                                    _mm256_or_si256(_mm256_and_si256(a, lo16), _mm256_slli_epi32(c, 16)));
            }
        }
        for (int64_t b = nb8; b < nb; b++) {
            const float s0 = vsc[j0 * nb + b] * f[b], s1 = vsc[j1 * nb + b] * f[b];
            for (int64_t h = 0; h < g; h++) {
                const float p1 = j0 + 1 < n ? p[h * ZK_ATT_CHUNK + j0 + 1] : 0.0f;
                const int32_t a = _mm_cvtss_si32(_mm_set_ss(p[h * ZK_ATT_CHUNK + j0] * s0));
                const int32_t c = _mm_cvtss_si32(_mm_set_ss(p1 * s1));
                wq[(h * np + jp) * nb + b] = (int32_t)(((uint32_t)a & 0xFFFF) | ((uint32_t)c << 16));
            }
        }
    }
}

#if AT_512
// nh heads x nbb (1 or 2) blocks from block b0: per block, the two keys' 32 bytes interleaved
// (unpack within 128-bit lanes: x0 holds pairs of dimensions 0-7 and 16-23, x1 8-15 and 24-31),
// widened to 16 bits, one vpdpwssd per head and half; the halves put back in order at the end.
__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(vblock_q8)(int nh, int nbb, float *o, int64_t ostride, const int32_t *wq, int64_t np,
                                    int64_t nb, int64_t b0, const void *const *vrows, const float *fr,
                                    at_cursor *pf) {
    __m512i acc[4][4];
    for (int h = 0; h < nh; h++)
        for (int z = 0; z < 2 * nbb; z++) acc[h][z] = _mm512_setzero_si512();
    for (int64_t jp = 0; jp < np; jp++) {
        at_prefetch_step(pf);
        const int8_t *r0 = (const int8_t *)vrows[2 * jp] + 32 * b0;
        const int8_t *r1 = (const int8_t *)vrows[2 * jp + 1] + 32 * b0;
        for (int bb = 0; bb < nbb; bb++) {
            const __m256i a = _mm256_loadu_si256((const __m256i *)(r0 + 32 * bb));
            const __m256i c = _mm256_loadu_si256((const __m256i *)(r1 + 32 * bb));
            const __m512i x0 = _mm512_cvtepi8_epi16(_mm256_unpacklo_epi8(a, c));
            const __m512i x1 = _mm512_cvtepi8_epi16(_mm256_unpackhi_epi8(a, c));
            for (int h = 0; h < nh; h++) {
                const __m512i w = _mm512_set1_epi32(wq[(h * np + jp) * nb + b0 + bb]);
                acc[h][2 * bb] = _mm512_dpwssd_epi32(acc[h][2 * bb], x0, w);
                acc[h][2 * bb + 1] = _mm512_dpwssd_epi32(acc[h][2 * bb + 1], x1, w);
            }
        }
    }
    for (int h = 0; h < nh; h++)
        for (int bb = 0; bb < nbb; bb++) {
            const __m512 r = _mm512_set1_ps(fr[b0 + bb]);
            float *ob = o + h * ostride + 32 * (b0 + bb);
            const __m512i x = acc[h][2 * bb], y = acc[h][2 * bb + 1];
            _mm512_storeu_ps(ob, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_shuffle_i64x2(x, y, 0x44)), r));
            _mm512_storeu_ps(ob + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_shuffle_i64x2(x, y, 0xEE)), r));
        }
}
#define AT_QB 2  // blocks a value pass
#else
// nh heads x 16 dimensions (half hf of block b0): pairs of dimensions 0-7 and 8-15, pmaddwd.
__attribute__((target(AT_TARGET), always_inline))
static inline void AT_FN(vblock_q8)(int nh, int hf, float *o, int64_t ostride, const int32_t *wq, int64_t np,
                                    int64_t nb, int64_t b0, const void *const *vrows, const float *fr,
                                    at_cursor *pf) {
    __m256i acc[4][2];
    // Each head's weights of block b0 walk by nb a pair, as pointers: the index arithmetic per head and
    // pair (an imul and reloads from the stack each) cost ~4.5% of the q8_0 attention on an AMD Zen 3.
    const int32_t *wp[4];
    for (int h = 0; h < nh; h++) {
        acc[h][0] = acc[h][1] = _mm256_setzero_si256();
        wp[h] = wq + h * np * nb + b0;
    }
    const int64_t off = 32 * b0 + 16 * hf;
    for (int64_t jp = 0; jp < np; jp++) {
        at_prefetch_step(pf);
        const __m128i a = _mm_loadu_si128((const __m128i *)((const int8_t *)vrows[2 * jp] + off));
        const __m128i c = _mm_loadu_si128((const __m128i *)((const int8_t *)vrows[2 * jp + 1] + off));
        const __m256i x0 = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, c));
        const __m256i x1 = _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(a, c));
        for (int h = 0; h < nh; h++) {
            const __m256i w = _mm256_set1_epi32(*wp[h]);
            wp[h] += nb;
            acc[h][0] = _mm256_add_epi32(acc[h][0], _mm256_madd_epi16(x0, w));
            acc[h][1] = _mm256_add_epi32(acc[h][1], _mm256_madd_epi16(x1, w));
        }
    }
    for (int h = 0; h < nh; h++) {
        const __m256 r = _mm256_set1_ps(fr[b0]);
        float *ob = o + h * ostride + 32 * b0 + 16 * hf;
        _mm256_storeu_ps(ob, _mm256_mul_ps(_mm256_cvtepi32_ps(acc[h][0]), r));
        _mm256_storeu_ps(ob + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(acc[h][1]), r));
    }
}
#define AT_QB 1
#endif

// The whole value pass: passes of AT_QB blocks (AVX2: each block in two halves), heads by 4. vrows
// holds 2 * np rows (partial_q8 repeats an odd chunk's last row; its weight is 0).
__attribute__((target(AT_TARGET)))
static void AT_FN(vpass_q8)(float *o, int64_t ostride, int64_t g, int64_t nb, const int32_t *wq,
                            const void *const *vrows, int64_t n, const float *fr, at_cursor *pf) {
    const int64_t np = (n + 1) / 2;
    for (int64_t b0 = 0; b0 < nb; b0 += AT_QB)
        for (int64_t h = 0; h < g; h += 4) {
            const int nh = g - h < 4 ? (int)(g - h) : 4;
            const int32_t *wh = wq + h * np * nb;
            float *oh = o + h * ostride;
#if AT_512
            const int nbb = nb - b0 < 2 ? 1 : 2;
#define AT_VQ(k) (nbb == 2 ? AT_FN(vblock_q8)(k, 2, oh, ostride, wh, np, nb, b0, vrows, fr, pf) \
                           : AT_FN(vblock_q8)(k, 1, oh, ostride, wh, np, nb, b0, vrows, fr, pf))
#else
#define AT_VQ(k) (AT_FN(vblock_q8)(k, 0, oh, ostride, wh, np, nb, b0, vrows, fr, pf), \
                  AT_FN(vblock_q8)(k, 1, oh, ostride, wh, np, nb, b0, vrows, fr, pf))
#endif
            switch (nh) {
            case 4: AT_VQ(4); break;
            case 3: AT_VQ(3); break;
            case 2: AT_VQ(2); break;
            default: AT_VQ(1); break;
            }
#undef AT_VQ
        }
}
#undef AT_QB

// The partial of keys [from, to) over a q8_0 cache (hd a multiple of 32): the query is quantized
// per 32 elements (zq, prepared by attention.c), each key row scored by int8 dots, then the same
// softmax, and the integer value pass above. Keys up to next_to (the caller's next chunk) are
// prefetched during the value pass. Scratch: see attention.c.
__attribute__((target(AT_TARGET)))
static void AT_FN(partial_q8)(const q8_query *zq, int64_t g, int64_t hd, float scale,
                              const zk_kv_segment *segs, int64_t n_segs, int64_t stride,
                              int64_t from, int64_t to, int64_t next_to, float *scores, float *vsc, float *dk,
                              float *dkt, int32_t *wq, float *part) {
    const int64_t n = to - from, ps = hd + 2, nb = hd / 32, hb = hd + 2 * nb;
    const void *vrows[ZK_ATT_CHUNK];
    int64_t s = 0, i = from;
    at_seek(segs, n_segs, &s, &i);
    const int64_t nbp = (nb + 7) & ~(int64_t)7;
    uintptr_t kl = 0, vl = 0;  // last lines prefetched
    int64_t j = 0;
    for (; j + AT_KT <= n; j += AT_KT) {
        const int8_t *kr[AT_KT];
        for (int t = 0; t < AT_KT; t++) {
            const uint8_t *r;
            AT_NEXT_ROW(r, j + t, const uint8_t *, hb);
            kr[t] = (const int8_t *)r;
            AT_FN(scales)(r + hd, nb, dk + t * nbp);
        }
        AT_FN(keys_q8)(kr, dk, dkt, nb, nbp, g, zq, scale, scores + j);
    }
    for (; j < n; j++) {
        const uint8_t *kr;
        AT_NEXT_ROW(kr, j, const uint8_t *, hb);
        AT_FN(scales)(kr + hd, nb, dk);
        AT_FN(key1_q8)((const int8_t *)kr, dk, nb, g, zq, scale, scores + j);
    }
    AT_FN(softmax)(scores, g, n, part, ps);
    // The value rows' scales, once their prefetches have landed (read in the key loop, right after
    // the prefetch, each stalled on memory: ~9% of the kernel's time).
    for (j = 0; j < n; j++) AT_FN(scales)((const uint8_t *)vrows[j] + hd, nb, vsc + j * nb);
    if (n % 2) vrows[n] = vrows[n - 1];  // the pairs' missing last key (weight 0; n < ZK_ATT_CHUNK)
    float *f = dk, *fr = dk + nb;  // (the key scales are done with)
    AT_FN(vweights)(scores, g, n, vsc, nb, wq, f, fr);
    // The next chunk's key rows into L2, spread over the value pass's steps (pairs of keys, per call of
    // vblock_q8). 3 global layers at depth 16384, both cores of an AMD EPYC Zen 4, alternated: 1.19-1.57
    // ms a step against 1.76-1.80 with a line per pair (which covers ~100 of the 256 rows).
#if AT_512
    const int64_t calls = (nb + 1) / 2 * ((g + 3) / 4);
#else
    const int64_t calls = 2 * nb * ((g + 3) / 4);
#endif
    at_cursor pf = at_next_keys(segs, n_segs, s, i, stride, hb, to, next_to, calls * ((n + 1) / 2));
    AT_FN(vpass_q8)(part + 2, ps, g, nb, wq, vrows, n, fr, &pf);
}

#undef AT_NEXT_ROW
#undef AT_KT
#undef AT_W
#undef AT_VB
#undef AT_ZERO
#undef AT_LOADH
#undef AT_LOAD
#undef AT_STORE
#undef AT_FMA
#undef AT_SET1
#undef AT_VEC
