// Helpers shared by the int8 kernels (qmatmul.c, qgemm.c) and the attention (attention.c). Not a
// public header.
#ifndef ZEBRA_KERNEL_INTERNAL_H
#define ZEBRA_KERNEL_INTERNAL_H
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

// qmatmul.c: whether the AVX-512 kernels are in use (zk_kernel_path; tests may force either path).
int zk_path_is_avx512(void);
// qmatmul.c: whether the row kernels prefetch weights into L2 (1) or with the non-temporal hint (0);
// set with the kernel path (zk_weight_prefetch).
extern int zk_weight_prefetch_l2;

// An f16 value stored at p (GGML block scales), as f32.
static inline float half_to_float(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return _cvtsh_ss(h); }

// The 6-bit scales and minimums of a Q4_K / Q5_K super-block (ggml's get_scale_min_k4, all eight),
// four at a time in 32-bit words: bytes 0-3 hold the low 6 bits of scales 0-3 and their top 2 bits
// are the high bits of scales 4-7; bytes 4-7 the same for the minimums; bytes 8-11 the low 4 bits
// of scales 4-7 (low nibbles) and minimums 4-7 (high nibbles).
static inline void scale_min_k4(const uint8_t *q, uint8_t *sc, uint8_t *mn) {
    uint32_t w[3];
    memcpy(w, q, 12);
    const uint32_t low6 = 0x3F3F3F3Fu, nib = 0x0F0F0F0Fu, top2 = 0x03030303u;
    const uint32_t s[2] = {w[0] & low6, (w[2] & nib) | (((w[0] >> 6) & top2) << 4)};
    const uint32_t m[2] = {w[1] & low6, ((w[2] >> 4) & nib) | (((w[1] >> 6) & top2) << 4)};
    memcpy(sc, s, 8);
    memcpy(mn, m, 8);
}

#endif
