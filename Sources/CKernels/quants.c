// Dequantization of GGML block formats, bit-exact with ggml-quants.c (dequantize_row_*).
// FMA contraction is off: ggml computes `d * q - m` as two rounded operations.
#include "ckernels.h"
#include <string.h>
#include <immintrin.h>

#pragma clang fp contract(off)

float zk_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
uint16_t zk_f32_to_f16(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

int64_t zk_block_elems(int type) {
    switch (type) {
    case ZK_F32: case ZK_F16: case ZK_BF16: return 1;
    case ZK_Q4_0: case ZK_Q4_1: case ZK_Q5_0: case ZK_Q5_1: case ZK_Q8_0: return 32;
    case ZK_Q4_K: case ZK_Q5_K: case ZK_Q6_K: return 256;
    default: return 0;
    }
}

int64_t zk_block_bytes(int type) {
    switch (type) {
    case ZK_F32: return 4;
    case ZK_F16: case ZK_BF16: return 2;
    case ZK_Q4_0: return 18;   // f16 d, 16 bytes of nibbles
    case ZK_Q4_1: return 20;   // f16 d, f16 m, 16 bytes of nibbles
    case ZK_Q5_0: return 22;   // f16 d, 4 bytes high bits, 16 bytes of nibbles
    case ZK_Q5_1: return 24;   // f16 d, f16 m, 4 bytes high bits, 16 bytes of nibbles
    case ZK_Q8_0: return 34;   // f16 d, 32 int8
    case ZK_Q4_K: return 144;  // f16 d, f16 dmin, 12 bytes scales, 128 bytes nibbles
    case ZK_Q5_K: return 176;  // f16 d, f16 dmin, 12 scales, 32 high bits, 128 nibbles
    case ZK_Q6_K: return 210;  // 128 low nibbles, 64 high 2-bits, 16 int8 scales, f16 d
    default: return 0;
    }
}

static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

static void deq_q4_0(const uint8_t *b, float *y) {
    const float d = zk_f16_to_f32(rd16(b));
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        const int x0 = (qs[j] & 0x0F) - 8;
        const int x1 = (qs[j] >> 4) - 8;
        y[j] = x0 * d;
        y[j + 16] = x1 * d;
    }
}

static void deq_q4_1(const uint8_t *b, float *y) {
    const float d = zk_f16_to_f32(rd16(b));
    const float m = zk_f16_to_f32(rd16(b + 2));
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        const int x0 = qs[j] & 0x0F;
        const int x1 = qs[j] >> 4;
        y[j] = x0 * d + m;
        y[j + 16] = x1 * d + m;
    }
}

static void deq_q5_0(const uint8_t *b, float *y) {
    const float d = zk_f16_to_f32(rd16(b));
    const uint32_t qh = rd32(b + 2);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        const uint8_t xh0 = ((qh >> (j + 0)) << 4) & 0x10;
        const uint8_t xh1 = ((qh >> (j + 12))) & 0x10;
        const int32_t x0 = ((qs[j] & 0x0F) | xh0) - 16;
        const int32_t x1 = ((qs[j] >> 4) | xh1) - 16;
        y[j] = x0 * d;
        y[j + 16] = x1 * d;
    }
}

static void deq_q5_1(const uint8_t *b, float *y) {
    const float d = zk_f16_to_f32(rd16(b));
    const float m = zk_f16_to_f32(rd16(b + 2));
    const uint32_t qh = rd32(b + 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        const uint8_t xh0 = ((qh >> (j + 0)) << 4) & 0x10;
        const uint8_t xh1 = ((qh >> (j + 12))) & 0x10;
        const int x0 = (qs[j] & 0x0F) | xh0;
        const int x1 = (qs[j] >> 4) | xh1;
        y[j] = x0 * d + m;
        y[j + 16] = x1 * d + m;
    }
}

static void deq_q8_0(const uint8_t *b, float *y) {
    const float d = zk_f16_to_f32(rd16(b));
    const int8_t *qs = (const int8_t *)(b + 2);
    for (int j = 0; j < 32; j++) y[j] = qs[j] * d;
}

static void deq_q4_k(const uint8_t *b, float *y) {
    const float d = zk_f16_to_f32(rd16(b));
    const float min = zk_f16_to_f32(rd16(b + 2));
    const uint8_t *scales = b + 4;
    const uint8_t *q = b + 16;
    int is = 0;
    uint8_t sc, m;
    for (int j = 0; j < 256; j += 64) {
        scale_min_k4(is + 0, scales, &sc, &m);
        const float d1 = d * sc;
        const float m1 = min * m;
        scale_min_k4(is + 1, scales, &sc, &m);
        const float d2 = d * sc;
        const float m2 = min * m;
        for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
        for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
        q += 32;
        is += 2;
    }
}

static void deq_q5_k(const uint8_t *b, float *y) {
    const float d = zk_f16_to_f32(rd16(b));
    const float min = zk_f16_to_f32(rd16(b + 2));
    const uint8_t *scales = b + 4;
    const uint8_t *qh = b + 16;
    const uint8_t *ql = b + 48;
    int is = 0;
    uint8_t sc, m;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < 256; j += 64) {
        scale_min_k4(is + 0, scales, &sc, &m);
        const float d1 = d * sc;
        const float m1 = min * m;
        scale_min_k4(is + 1, scales, &sc, &m);
        const float d2 = d * sc;
        const float m2 = min * m;
        for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        ql += 32;
        is += 2;
        u1 <<= 2;
        u2 <<= 2;
    }
}

static void deq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b;
    const uint8_t *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const float d = zk_f16_to_f32(rd16(b + 208));
    for (int n = 0; n < 256; n += 128) {
        for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int8_t q1 = (int8_t)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int8_t q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int8_t q3 = (int8_t)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l + 0] = d * sc[is + 0] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

void zk_dequantize(int type, const void *src, float *dst, int64_t n) {
    const uint8_t *b = (const uint8_t *)src;
    switch (type) {
    case ZK_F32: memcpy(dst, src, (size_t)n * 4); return;
    case ZK_F16: for (int64_t i = 0; i < n; i++) dst[i] = zk_f16_to_f32(rd16(b + 2 * i)); return;
    case ZK_BF16: for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(rd16(b + 2 * i)); return;
    default: break;
    }
    const int64_t qk = zk_block_elems(type), bs = zk_block_bytes(type);
    if (qk == 0) return;
    void (*f)(const uint8_t *, float *) = 0;
    switch (type) {
    case ZK_Q4_0: f = deq_q4_0; break;
    case ZK_Q4_1: f = deq_q4_1; break;
    case ZK_Q5_0: f = deq_q5_0; break;
    case ZK_Q5_1: f = deq_q5_1; break;
    case ZK_Q8_0: f = deq_q8_0; break;
    case ZK_Q4_K: f = deq_q4_k; break;
    case ZK_Q5_K: f = deq_q5_k; break;
    case ZK_Q6_K: f = deq_q6_k; break;
    default: return;
    }
    for (int64_t i = 0; i < n / qk; i++) f(b + i * bs, dst + i * qk);
}

void zk_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(dst + i), h);
    }
    for (; i < n; i++) dst[i] = zk_f32_to_f16(src[i]);
}

void zk_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = zk_f16_to_f32(src[i]);
}

void zk_dequantize_rows(int type, const void *w, int64_t row_bytes, int64_t k,
                        int64_t r0, int64_t r1, float *dst) {
    const uint8_t *base = (const uint8_t *)w;
    for (int64_t r = r0; r < r1; r++) zk_dequantize(type, base + r * row_bytes, dst + (r - r0) * k, k);
}
