// Attention over the f16 KV cache, for a group of query heads that share one KV head (GQA; all 4 of
// Gemma 3 270M's heads share one): each key and value row is read once for the whole group.
//
// Keys are taken in chunks of ZK_ATT_CHUNK, counted from the first visible key. A chunk gives a
// partial result per head (running max m, sum l of exp(s - m), unnormalised output o); partials are
// merged in chunk order. The arithmetic depends only on the query and its keys, never on which thread
// computed a chunk, so splitting one query's chunks over the pool (decode at long context) gives the
// same bits as doing them all in one job (prompts), alone or in a batch.
#include "ckernels.h"
#include <math.h>
#include <immintrin.h>
#include "simd_math.h"
#include "kernel_internal.h"

static inline float hsum8(__m256 s) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

#define AT_512 1
#define AT_SUFFIX _512
#define AT_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl"
#include "attention_body.h"
#undef AT_512
#undef AT_SUFFIX
#undef AT_TARGET

#define AT_512 0
#define AT_SUFFIX _avx2
#define AT_TARGET "avx2,fma,f16c"
#include "attention_body.h"

int64_t zk_kv_count(const zk_kv_segment *segs, int64_t n_segs) {
    int64_t n = 0;
    for (int64_t s = 0; s < n_segs; s++) n += segs[s].n;
    return n;
}

// The same instruction set as the matmul kernels (zk_kernel_path; tests force either).
static void partial(const float *q, int64_t g, int64_t hd, float scale, const zk_kv_segment *segs, int64_t n_segs,
                    int64_t stride, int64_t from, int64_t to, float *scores, float *part, int keys4) {
    if (zk_path_is_avx512())
        partial_512(q, g, hd, scale, segs, n_segs, stride, from, to, scores, part, keys4);
    else
        partial_avx2(q, g, hd, scale, segs, n_segs, stride, from, to, scores, part, keys4);
}

void zk_attend_partial(const float *q, int64_t g, int64_t hd, float scale,
                       const zk_kv_segment *segs, int64_t n_segs, int64_t stride,
                       int64_t from, int64_t to, float *scores, float *part) {
    partial(q, g, hd, scale, segs, n_segs, stride, from, to, scores, part, 0);
}

void zk_attend_merge(const float *parts, int64_t n_parts, int64_t g, int64_t hd, float *out) {
    const int64_t ps = hd + 2;
    for (int64_t h = 0; h < g; h++) {
        float m = -INFINITY;
        for (int64_t c = 0; c < n_parts; c++) {
            const float mc = parts[(c * g + h) * ps];
            m = mc > m ? mc : m;
        }
        float *oh = out + h * hd;
        for (int64_t d = 0; d < hd; d++) oh[d] = 0.0f;
        float l = 0.0f;
        for (int64_t c = 0; c < n_parts; c++) {
            const float *p = parts + (c * g + h) * ps;
            const float w = p[0] == -INFINITY ? 0.0f : expf(p[0] - m);
            l += w * p[1];
            for (int64_t d = 0; d < hd; d++) oh[d] += w * p[2 + d];
        }
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (int64_t d = 0; d < hd; d++) oh[d] *= inv;
    }
}

void zk_attend(const float *q, int64_t g, int64_t hd, float scale, const zk_kv_segment *segs, int64_t n_segs,
               int64_t stride, float *scores, float *parts, float *out) {
    const int64_t n = zk_kv_count(segs, n_segs);
    const int64_t chunks = (n + ZK_ATT_CHUNK - 1) / ZK_ATT_CHUNK;
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t to = (c + 1) * ZK_ATT_CHUNK < n ? (c + 1) * ZK_ATT_CHUNK : n;
        partial(q, g, hd, scale, segs, n_segs, stride, c * ZK_ATT_CHUNK, to, scores, parts + c * g * (hd + 2), 1);
    }
    zk_attend_merge(parts, chunks, g, hd, out);
}
