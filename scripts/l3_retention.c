// Does data read once per decode step stay in the last-level cache while the weights stream past?
// (docs/architecture.md, "What the cache costs a step at depth".) Alternates: read A (the KV cache's
// stand-in, A MiB) once, then stream W MiB of "weights" with or without non-temporal prefetch, and
// prints the bandwidth of both. A staying cached reads far faster than DRAM.
//
//   cc -O2 -mavx512f scripts/l3_retention.c -o /tmp/l3 && /tmp/l3 8 250
//
// Arguments: A MiB (default 8), W MiB (default 250). Each line: A's and W's hint (0: none, 1: NTA
// prefetch, 2: T0 prefetch), then A's and W's GB/s, averaged over 10 rounds after 2 warm-up rounds;
// last, the control: A read a second time right after the first (from the cache, if A fits).
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

// Sums n bytes at p (so the reads cannot be dropped), prefetching 1 KiB ahead with the given hint.
static long long sum(const char *p, size_t n, int hint) {
    __m512i a = _mm512_setzero_si512();
    for (size_t i = 0; i < n; i += 64) {
        if (hint == 1) _mm_prefetch(p + i + 1024, _MM_HINT_NTA);
        if (hint == 2) _mm_prefetch(p + i + 1024, _MM_HINT_T0);
        a = _mm512_add_epi32(a, _mm512_load_si512((const void *)(p + i)));
    }
    return _mm512_reduce_add_epi32(a);
}

static char *filled(size_t n, unsigned long long k) {  // distinct words: no page merging by the host
    char *p = aligned_alloc(2u << 20, n);
    if (!p) { perror("alloc"); exit(1); }
    for (size_t i = 0; i < n / 8; i++) ((unsigned long long *)p)[i] = i * k;
    return p;
}

int main(int argc, char **argv) {
    const size_t an = (size_t)(argc > 1 ? atol(argv[1]) : 8) << 20, wn = (size_t)(argc > 2 ? atol(argv[2]) : 250) << 20;
    char *A = filled(an, 0x9E3779B97F4A7C15ull), *W = filled(wn, 0x9E3779B97F4A7C17ull);
    long long cs = 0;
    for (int ah = 0; ah < 3; ah++)
        for (int wh = 0; wh < 3; wh++) {
            double ta = 0, tw = 0;
            for (int r = 0; r < 12; r++) {
                const double t0 = now();
                cs += sum(A, an, ah);
                const double t1 = now();
                cs += sum(W, wn, wh);
                const double t2 = now();
                if (r >= 2) { ta += t1 - t0; tw += t2 - t1; }
            }
            printf("A %zu MiB hint %d, W %zu MiB hint %d: A %.1f GB/s, W %.1f GB/s\n", an >> 20, ah, wn >> 20, wh,
                   10.0 * (double)an / ta / 1e9, 10.0 * (double)wn / tw / 1e9);
        }
    // The control: A read twice in a row (nothing between) comes from the cache the second time.
    double t2 = 0;
    for (int r = 0; r < 12; r++) {
        cs += sum(W, wn, 1);
        cs += sum(A, an, 0);
        const double t0 = now();
        cs += sum(A, an, 0);
        if (r >= 2) t2 += now() - t0;
    }
    printf("control: A read again right away: %.1f GB/s\n", 10.0 * (double)an / t2 / 1e9);
    return cs == 42;  // keep the sums
}
