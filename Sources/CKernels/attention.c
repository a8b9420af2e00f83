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

// A query's g heads quantized for a q8_0 cache, block-major (entry o = block * g + head): the int8
// values (32 bytes an entry), -128 * the sum of those bytes (added to a dot of the key bytes flipped
// to unsigned, AVX-512) and the block scale; `work` is the rest of the scratch (partial_q8).
typedef struct {
    int64_t g;
    int8_t *q;
    int32_t *negb;
    float *d;
    float *work;
} q8_query;

// Advances (segment *s, row *i) past whole segments until row *i lies in segment *s (or *s == n_segs).
static inline void at_seek(const zk_kv_segment *segs, int64_t n_segs, int64_t *s, int64_t *i) {
    while (*s < n_segs && *i >= segs[*s].n) {
        *i -= segs[*s].n;
        (*s)++;
    }
}

// The next chunk's key rows, prefetched into L2 a line at a time while the value pass computes (the
// memory is otherwise idle there): row i of segment seg on, `rows` rows, each row's `bytes` from its
// key pointer (one KV head's), across segments. The value pass spreads the lines over its steps:
// `per` lines every `every` steps (credit counts steps against lines). The current row's next line and
// last line are kept, so a line costs a prefetch, an add and a compare (the row's address computed
// again for every line cost 4-5 ns a key of the value pass on one core of an AMD Zen 3).
typedef struct {
    const zk_kv_segment *seg, *end;
    int64_t i, rows, bytes, stride;
    uintptr_t line, last;
    int64_t credit, per, every;
} at_cursor;

static inline void at_row(at_cursor *c) {
    const uintptr_t a = (uintptr_t)c->seg->k + (uintptr_t)(c->i * c->stride);
    c->line = a & ~(uintptr_t)63;
    c->last = (a + (uintptr_t)c->bytes - 1) & ~(uintptr_t)63;
}

static inline void at_prefetch_line(at_cursor *c) {
    if (c->rows <= 0) return;
    _mm_prefetch((const char *)c->line, _MM_HINT_T1);
    c->line += 64;
    if (c->line <= c->last) return;
    if (--c->rows == 0) return;
    if (++c->i == c->seg->n) {
        c->i = 0;
        do c->seg++; while (c->seg != c->end && c->seg->n == 0);
        if (c->seg == c->end) {
            c->rows = 0;
            return;
        }
    }
    at_row(c);
}

// One value-pass step's share of the lines.
static inline void at_prefetch_step(at_cursor *c) {
    if (c->rows <= 0) return;
    c->credit += c->per;
    while (c->credit >= c->every) {
        c->credit -= c->every;
        at_prefetch_line(c);
    }
}

// The cursor over keys [to, next_to) (segment s, row i holds key `to`), spread over `steps` steps.
static inline at_cursor at_next_keys(const zk_kv_segment *segs, int64_t n_segs, int64_t s, int64_t i, int64_t stride,
                                     int64_t bytes, int64_t to, int64_t next_to, int64_t steps) {
    at_seek(segs, n_segs, &s, &i);
    at_cursor c = {segs + s, segs + n_segs, i, s < n_segs ? next_to - to : 0, bytes, stride, 0, 0, 0, 0, steps > 0 ? steps : 1};
    c.per = c.rows * ((bytes + 63) / 64 + 1);  // lines a row (at most, unaligned)
    if (c.rows > 0) at_row(&c);
    return c;
}

#define AT_512 1
#define AT_SUFFIX _512
#define AT_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
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

int64_t zk_kv_head_bytes(int type, int64_t hd) { return type == ZK_KV_Q8_0 ? hd + hd / 16 : hd * 2; }

void zk_kv_store_row(int type, const float *src, void *dst, int64_t heads, int64_t hd) {
    if (type != ZK_KV_Q8_0) { zk_f32_to_f16_row(src, dst, heads * hd); return; }
    const int64_t hb = zk_kv_head_bytes(type, hd);
    for (int64_t h = 0; h < heads; h++) {
        uint8_t *row = (uint8_t *)dst + h * hb;
        for (int64_t b = 0; b < hd / 32; b++) {
            zk_q8a blk;
            zk_quantize_q8a(src + h * hd + 32 * b, &blk, 32, ZK_ACT_Q8_0);
            memcpy(row + 32 * b, blk.q, 32);
            const uint16_t d = _cvtss_sh(blk.d, _MM_FROUND_TO_NEAREST_INT);  // exact: d is f16-rounded
            memcpy(row + hd + 2 * b, &d, 2);
        }
    }
}

void zk_kv_load_row(int type, const void *src, float *dst, int64_t heads, int64_t hd) {
    if (type != ZK_KV_Q8_0) { zk_f16_to_f32_row(src, dst, heads * hd); return; }
    const int64_t hb = zk_kv_head_bytes(type, hd);
    for (int64_t h = 0; h < heads; h++) {
        const uint8_t *row = (const uint8_t *)src + h * hb;
        for (int64_t i = 0; i < hd; i++) dst[h * hd + i] = half_to_float(row + hd + 2 * (i / 32)) * (float)(int8_t)row[i];
    }
}

// Scratch, in floats: the scores of g heads (g * ZK_ATT_CHUNK), then for q8_0 the prepared query
// (g * nb entries: 8 floats of bytes, a sum and a scale), the chunk's value scales (ZK_ATT_CHUNK * nb),
// a batch of 16 key rows' scales and the same transposed (2 x 16 * nbp, nbp = nb rounded up to 8)
// and the value pass's 16-bit weight pairs (g * ZK_ATT_CHUNK / 2 * nb).
int64_t zk_attend_scratch_floats(int64_t g, int64_t hd) {
    const int64_t nb = hd / 32, nbp = (nb + 7) & ~(int64_t)7;
    return g * ZK_ATT_CHUNK + 10 * g * nb + ZK_ATT_CHUNK * nb + 32 * nbp + g * ZK_ATT_CHUNK / 2 * nb + 16;
}

static q8_query prepare_q8(const float *q, int64_t g, int64_t hd, float *scratch) {
    const int64_t nb = hd / 32;
    float *base = scratch + g * ZK_ATT_CHUNK;
    q8_query zq = {g, (int8_t *)base, (int32_t *)(base + 8 * g * nb), base + 9 * g * nb, base + 10 * g * nb};
    for (int64_t b = 0; b < nb; b++)
        for (int64_t h = 0; h < g; h++) {
            const int64_t o = b * g + h;
            zk_q8a blk;
            zk_quantize_q8a(q + h * hd + 32 * b, &blk, 32, ZK_ACT_Q8_0);
            memcpy(zq.q + 32 * o, blk.q, 32);
            zk_q8a_sums(&blk, zq.negb + o, 1);
            zq.negb[o] *= -128;
            zq.d[o] = blk.d;
        }
    return zq;
}

// The same instruction set as the matmul kernels (zk_kernel_path; tests force either).
static void partial(const float *q, int64_t g, int64_t hd, float scale, const zk_kv_segment *segs, int64_t n_segs,
                    int64_t stride, int64_t from, int64_t to, int64_t next_to, float *scores, float *part) {
    if (zk_path_is_avx512())
        partial_512(q, g, hd, scale, segs, n_segs, stride, from, to, next_to, scores, part);
    else
        partial_avx2(q, g, hd, scale, segs, n_segs, stride, from, to, next_to, scores, part);
}

static void partial_q8(const q8_query *zq, int64_t g, int64_t hd, float scale, const zk_kv_segment *segs,
                       int64_t n_segs, int64_t stride, int64_t from, int64_t to, int64_t next_to, float *scratch,
                       float *part) {
    float *scores = scratch, *vsc = zq->work;
    const int64_t nbp = (hd / 32 + 7) & ~(int64_t)7;
    float *dk = vsc + ZK_ATT_CHUNK * (hd / 32), *dkt = dk + 16 * nbp;
    int32_t *wq = (int32_t *)(dkt + 16 * nbp);
    if (zk_path_is_avx512())
        partial_q8_512(zq, g, hd, scale, segs, n_segs, stride, from, to, next_to, scores, vsc, dk, dkt, wq, part);
    else
        partial_q8_avx2(zq, g, hd, scale, segs, n_segs, stride, from, to, next_to, scores, vsc, dk, dkt, wq, part);
}

// Chunks [c0, c1) of one query, in order, the query prepared once (a split decode query's run of
// chunks on one thread is one call).
void zk_attend_chunks(int type, const float *q, int64_t g, int64_t hd, float scale,
                      const zk_kv_segment *segs, int64_t n_segs, int64_t stride,
                      int64_t c0, int64_t c1, float *scratch, float *parts) {
    const int64_t n = zk_kv_count(segs, n_segs);
    q8_query zq = {0, NULL, NULL, NULL, NULL};
    if (type == ZK_KV_Q8_0) zq = prepare_q8(q, g, hd, scratch);
    for (int64_t c = c0; c < c1; c++) {
        const int64_t from = c * ZK_ATT_CHUNK, to = from + ZK_ATT_CHUNK < n ? from + ZK_ATT_CHUNK : n;
        float *part = parts + (c - c0) * g * (hd + 2);
        const int64_t next_to = c + 1 < c1 ? (to + ZK_ATT_CHUNK < n ? to + ZK_ATT_CHUNK : n) : to;
        if (type == ZK_KV_Q8_0) partial_q8(&zq, g, hd, scale, segs, n_segs, stride, from, to, next_to, scratch, part);
        else partial(q, g, hd, scale, segs, n_segs, stride, from, to, next_to, scratch, part);
    }
}

void zk_attend_merge(const float *parts, int64_t n_parts, int64_t g, int64_t hd, float *out) {
    for (int64_t h = 0; h < g; h++) zk_attend_merge_heads(parts, n_parts, g, hd, h, h + 1, out);
}

void zk_attend_merge_heads(const float *parts, int64_t n_parts, int64_t g, int64_t hd, int64_t h0, int64_t h1,
                           float *out) {
    const int64_t ps = hd + 2;
    for (int64_t h = h0; h < h1; h++) {
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

void zk_attend(int type, const float *q, int64_t g, int64_t hd, float scale, const zk_kv_segment *segs,
               int64_t n_segs, int64_t stride, float *scratch, float *parts, float *out) {
    const int64_t chunks = (zk_kv_count(segs, n_segs) + ZK_ATT_CHUNK - 1) / ZK_ATT_CHUNK;
    zk_attend_chunks(type, q, g, hd, scale, segs, n_segs, stride, 0, chunks, scratch, parts);
    zk_attend_merge(parts, chunks, g, hd, out);
}
