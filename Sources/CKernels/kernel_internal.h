// Helpers shared by the int8 kernels (qmatmul.c, qgemm.c) and the attention (attention.c). Not a
// public header.
#ifndef ZEBRA_KERNEL_INTERNAL_H
#define ZEBRA_KERNEL_INTERNAL_H
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

// qmatmul.c: whether the AVX-512 kernels are in use (zk_kernel_path; tests may force either path).
int zk_path_is_avx512(void);

// An f16 value stored at p (GGML block scales), as f32.
static inline float half_to_float(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return _cvtsh_ss(h); }

// The 6-bit scales and minimums of a Q4_K / Q5_K super-block (ggml's get_scale_min_k4, all eight).
static inline void scale_min_k4(const uint8_t *q, uint8_t *sc, uint8_t *mn) {
    for (int j = 0; j < 4; j++) { sc[j] = q[j] & 63; mn[j] = q[j + 4] & 63; }
    for (int j = 4; j < 8; j++) {
        sc[j] = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        mn[j] = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

#endif
