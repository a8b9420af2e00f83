// The float multiply-add peak of this machine as a prompt's attention sees it: T threads each run
// independent chains of vfmadd231ps (10 chains, more than FMA latency x pipes on any x86 core so
// far), on 8-lane ymm and, where the CPU has AVX-512, 16-lane zmm registers; best of several
// passes. Prints the larger rate in multiply-adds per second (1e9, all threads): no kernel that
// computes attention in f32 (as Zebra and llama.cpp do on CPUs) can do its multiply-adds faster.
// scripts/bench-vs-llamacpp builds it to print the prompt-processing ceiling beside the measured rates.
//
//   cc -O2 -pthread scripts/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak 2
//
// Argument: threads (default 2). Prints GMAC/s, then the per-width rates on stderr.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define ITERS 100000000L  // instructions per thread and pass (multiple of 10)

#define FMA10(reg) \
    "vfmadd231ps %%" reg "10, %%" reg "11, %%" reg "0\n\t" "vfmadd231ps %%" reg "10, %%" reg "11, %%" reg "1\n\t" \
    "vfmadd231ps %%" reg "10, %%" reg "11, %%" reg "2\n\t" "vfmadd231ps %%" reg "10, %%" reg "11, %%" reg "3\n\t" \
    "vfmadd231ps %%" reg "10, %%" reg "11, %%" reg "4\n\t" "vfmadd231ps %%" reg "10, %%" reg "11, %%" reg "5\n\t" \
    "vfmadd231ps %%" reg "10, %%" reg "11, %%" reg "6\n\t" "vfmadd231ps %%" reg "10, %%" reg "11, %%" reg "7\n\t" \
    "vfmadd231ps %%" reg "10, %%" reg "11, %%" reg "8\n\t" "vfmadd231ps %%" reg "10, %%" reg "11, %%" reg "9\n\t"

// A thread's chains on one register width: `reg` "ymm" or "zmm", compiled for `isa`.
#define CHAINS(name, isa, reg) \
    __attribute__((target(isa))) static void *name(void *arg) { \
        long n = ITERS; \
        __asm__ volatile("vxorps %%" reg "10, %%" reg "10, %%" reg "10\n\t" \
                         "vxorps %%" reg "11, %%" reg "11, %%" reg "11\n\t" \
                         "1:\n\t" FMA10(reg) "subq $10, %0\n\t" "jg 1b\n\t" \
                         : "+r"(n) : : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", \
                           "xmm9", "xmm10", "xmm11", "cc"); \
        return arg; \
    }
CHAINS(ymm_chains, "avx2,fma", "ymm")
CHAINS(zmm_chains, "avx512f", "zmm")

// Multiply-adds per second (all threads) of `body` with `lanes` lanes, best of `passes`.
static double rate(void *(*body)(void *), int lanes, int threads, int passes) {
    double best = 1e30;
    for (int p = 0; p < passes; p++) {
        pthread_t th[64];
        const double t0 = now();
        for (int t = 1; t < threads; t++) pthread_create(&th[t], NULL, body, NULL);
        body(NULL);
        for (int t = 1; t < threads; t++) pthread_join(th[t], NULL);
        const double dt = now() - t0;
        if (dt < best) best = dt;
    }
    return (double)ITERS * lanes * threads / best;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (threads < 1 || threads > 64) threads = 2;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        fprintf(stderr, "fma_peak: this CPU has no AVX2 FMA\n");
        return 1;
    }
    const double y = rate(ymm_chains, 8, threads, 5);
    double z = 0;
    if (__builtin_cpu_supports("avx512f")) z = rate(zmm_chains, 16, threads, 5);
    fprintf(stderr, "fma_peak: %d threads, ymm %.1f GMAC/s, zmm %s\n", threads, y / 1e9,
            z > 0 ? "measured" : "not on this CPU");
    if (z > 0) fprintf(stderr, "fma_peak: zmm %.1f GMAC/s\n", z / 1e9);
    printf("%.2f\n", (y > z ? y : z) / 1e9);
    return 0;
}
