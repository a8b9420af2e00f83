// Elementwise and per-row operations of the forward pass: dot, matmul rows, norms, RoPE, activations,
// attention. Fixed summation orders so that a row's result never depends on what else is in the batch.
#include "ckernels.h"
#include <math.h>
#include <immintrin.h>
#include "simd_math.h"

float zk_dot_f32(const float *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

void zk_matmul_rows(int type, const void *w, int64_t row_bytes, int64_t k,
                    int64_t r0, int64_t r1, const float *x, int64_t nt,
                    float *y, int64_t ldy, float *scratch) {
    const uint8_t *base = (const uint8_t *)w;
    for (int64_t r = r0; r < r1; r++) {
        const float *row;
        if (type == ZK_F32) {
            row = (const float *)(base + r * row_bytes);
        } else {
            zk_dequantize(type, base + r * row_bytes, scratch, k);
            row = scratch;
        }
        for (int64_t t = 0; t < nt; t++) y[t * ldy + r] = zk_dot_f32(row, x + t * k, k);
    }
}

void zk_rmsnorm(const float *x, const float *w, float *y, int64_t n, float eps) {
    // llama.cpp sums squares in double; four double lanes at a time.
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), b = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
        s0 = _mm256_fmadd_pd(a, a, s0);
        s1 = _mm256_fmadd_pd(b, b, s1);
    }
    const __m256d s = _mm256_add_pd(s0, s1);
    const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    double ss = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    for (; i < n; i++) ss += (double)x[i] * (double)x[i];
    const float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    if (w) {
        for (i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
    } else {
        for (i = 0; i < n; i++) y[i] = x[i] * scale;
    }
}

void zk_rope_table(int64_t pos, float base, int64_t n_rot, float *cs) {
    for (int64_t i = 0; i < n_rot / 2; i++) {
        const float theta = (float)pos * powf(base, -2.0f * (float)i / (float)n_rot);
        cs[2 * i] = cosf(theta);
        cs[2 * i + 1] = sinf(theta);
    }
}

void zk_rope_apply(float *x, int64_t n_heads, int64_t head_stride, int64_t n_rot, const float *cs, int neox) {
    const int64_t half = n_rot / 2;
    for (int64_t i = 0; i < half; i++) {
        const float c = cs[2 * i], s = cs[2 * i + 1];
        const int64_t a = neox ? i : 2 * i;
        const int64_t b = neox ? i + half : 2 * i + 1;
        for (int64_t h = 0; h < n_heads; h++) {
            float *xh = x + h * head_stride;
            const float x0 = xh[a], x1 = xh[b];
            xh[a] = x0 * c - x1 * s;
            xh[b] = x0 * s + x1 * c;
        }
    }
}

void zk_rope(float *x, int64_t n_heads, int64_t head_stride, int64_t n_rot, int64_t pos, float base, int neox) {
    float cs[n_rot > 0 ? n_rot : 1];
    zk_rope_table(pos, base, n_rot, cs);
    zk_rope_apply(x, n_heads, head_stride, n_rot, cs, neox);
}

// y = g * sigmoid(2 z) * u with z = sqrt(2/pi) (g + 0.044715 g^3): the same as
// 0.5 g (1 + tanh(z)) u, since (1 + tanh(z)) / 2 = sigmoid(2 z); 8 lanes with zk_exp8 (~1e-7).
void zk_gelu_mul(const float *g, const float *u, float *y, int64_t n) {
    const float k = 0.79788456080286535587989211986876f;  // sqrt(2/pi)
    const __m256 m2k = _mm256_set1_ps(-2.0f * k), c = _mm256_set1_ps(0.044715f), one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(g + i);
        const __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(c, v), _mm256_mul_ps(v, v), v);  // v + c v^3
        const __m256 e = zk_exp8(_mm256_mul_ps(m2k, inner));                                // exp(-2z)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_div_ps(v, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) {
        const float v = g[i];
        y[i] = v / (1.0f + expf(-2.0f * k * (v + 0.044715f * v * v * v))) * u[i];
    }
}

// y = g * sigmoid(g) * u, 8 lanes with zk_exp8.
void zk_silu_mul(const float *g, const float *u, float *y, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(g + i);
        const __m256 e = zk_exp8(_mm256_sub_ps(zero, v));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_div_ps(v, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) {
        const float v = g[i];
        y[i] = v / (1.0f + expf(-v)) * u[i];
    }
}

void zk_scale(float *x, float s, int64_t n) { for (int64_t i = 0; i < n; i++) x[i] *= s; }
void zk_add(float *y, const float *x, int64_t n) { for (int64_t i = 0; i < n; i++) y[i] += x[i]; }

float zk_max(const float *x, int64_t n) {
    __m256 m8 = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) m8 = _mm256_max_ps(m8, _mm256_loadu_ps(x + i));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float mx = _mm_cvtss_f32(h);
    for (int64_t j = i; j < n; j++) if (x[j] > mx) mx = x[j];
    return mx;
}

int64_t zk_argmax(const float *x, int64_t n) {
    const float mx = zk_max(x, n);
    for (int64_t i = 0; i < n; i++) if (x[i] == mx) return i;
    return 0;
}

float zk_exp_shifted(float *x, int64_t n, float mx, float inv_t) {
    const __m256 vm = _mm256_set1_ps(mx), vt = _mm256_set1_ps(inv_t);
    __m256 s0 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = zk_exp8(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vt));
        _mm256_storeu_ps(x + i, e);
        s0 = _mm256_add_ps(s0, e);
    }
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    float sum = _mm_cvtss_f32(t);
    for (; i < n; i++) { x[i] = expf((x[i] - mx) * inv_t); sum += x[i]; }
    return sum;
}

float zk_logsumexp(const float *x, int64_t n) {
    const float mx = zk_max(x, n);
    int64_t i = 0;
    if (mx == -INFINITY) return -INFINITY;
    const __m256 vm = _mm256_set1_ps(mx);
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_add_ps(s0, zk_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm)));
        s1 = _mm256_add_ps(s1, zk_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm)));
    }
    const __m256 s = _mm256_add_ps(s0, s1);
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    double sum = _mm_cvtss_f32(t);
    for (; i < n; i++) sum += expf(x[i] - mx);
    return mx + (float)log(sum);
}
