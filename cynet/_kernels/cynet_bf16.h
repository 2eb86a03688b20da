/* cynet_bf16.h: the bfloat16 matrix product of the mixed_bfloat16 policy, single-threaded, no GIL.

   C (float32) = A (float32) @ B (float32) with every element of A and B rounded to bfloat16
   (round to nearest, ties to even; NaN stays NaN, Inf stays Inf) WHILE IT IS PACKED, and the
   products accumulated in float32. NumPy has no bfloat16 dtype, so cynet's activations and
   weights stay float32 arrays: the rounding happens here, on the way into the packed panels,
   never as a separate pass over memory.

   Two paths over the same packed data, chosen by the caller (`native`):
   - native: AVX512_BF16's vdpbf16ps (_mm512_dpbf16_ps), compiled for that target only
     (a function attribute), so the module still loads on CPUs without it; callers ask
     cynet_bf16_native_ok() (CPU features at run time) before passing native = 1.
   - emulated: the same rounded values widened back to float32 (exact: a bfloat16 is the top
     half of a float32) and multiplied-added in float32, in vdpbf16ps's order: per pair of k,
     the odd k first, then the even one. A bf16 x bf16 product is exact in float32, so each step
     rounds once, as vdpbf16ps does: the two paths agree bit for bit on normal numbers (vdpbf16ps
     flushes denormal inputs and results to zero; the emulation keeps them).

   Layouts: A[m, k] at A + m * sam + k * sak; B[k, n] at B + k * sbk + n * sbn (any strides: a
   transposed weight or a patch matrix's transpose needs no copy); C[m, n] at C + m * sc + n.
   k is packed in pairs (one 32-bit word holds k = 2p in its low half, 2p + 1 in its high half,
   vdpbf16ps's layout); an odd K is padded with a zero. B is packed in blocks of CYNET_BF16_KC
   pairs x CYNET_BF16_NC columns, panels of CYNET_BF16_NR columns; A in blocks of CYNET_BF16_MC
   rows, panels of CYNET_BF16_MR rows. `work` holds both: CYNET_BF16_WORK 32-bit words.
   accumulate: 0 C = A @ B; 1 C += A @ B.

   Cython declares this once, in _gemm.pxd; the bf16 kernel family (bf16.pyx) wraps it for
   Python (cynet.kernels.matmul_bf16) and conv.pyx calls it for the convolutions' products. */
#ifndef CYNET_BF16_H
#define CYNET_BF16_H
#include <stdint.h>
#include <string.h>
#include "cynet_simd.h"

#define CYNET_BF16_MR 12
#define CYNET_BF16_NR 32
#define CYNET_BF16_KC 256
#define CYNET_BF16_MC 96
#define CYNET_BF16_NC 512
#define CYNET_BF16_WORK ((Py_ssize_t)CYNET_BF16_KC * (CYNET_BF16_NC + CYNET_BF16_MC))

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10 && defined(__x86_64__)
#define CYNET_BF16_NATIVE_BUILT 1
#include <immintrin.h>
#else
#define CYNET_BF16_NATIVE_BUILT 0
#endif

/* 1 when this build has the native kernel and this CPU runs it */
static inline int cynet_bf16_native_ok(void) {
#if CYNET_BF16_NATIVE_BUILT
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

/* the bfloat16 nearest to f (ties to even) as its 16 bits; a NaN stays a (quiet) NaN */
static inline uint16_t cynet_bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float cynet_bf16_widen(uint32_t bits_high) {
    float f;
    memcpy(&f, &bits_high, 4);
    return f;
}

/* f rounded to bfloat16, as a float32 (the NumPy twin's round_bf16) */
static inline float cynet_bf16_roundf(float f) {
    return cynet_bf16_widen((uint32_t)cynet_bf16_round(f) << 16);
}

static inline uint32_t cynet_bf16_pair(float lo, float hi) {
    return (uint32_t)cynet_bf16_round(lo) | ((uint32_t)cynet_bf16_round(hi) << 16);
}

/* Bp <- B's rows [0, kc) x columns [0, nc) in panels of NR columns, each kp = ceil(kc / 2)
   pairs x NR words; zero past kc and nc */
static void cynet_bf16_pack_b(const float* B, Py_ssize_t sbk, Py_ssize_t sbn, Py_ssize_t kc,
                              Py_ssize_t nc, uint32_t* Bp) {
    Py_ssize_t kp = (kc + 1) / 2, j0, p, j;
    for (j0 = 0; j0 < nc; j0 += CYNET_BF16_NR, Bp += kp * CYNET_BF16_NR) {
        Py_ssize_t w = nc - j0 < CYNET_BF16_NR ? nc - j0 : CYNET_BF16_NR;
        for (p = 0; p < kp; p++) {
            const float* r0 = B + 2 * p * sbk + j0 * sbn;
            uint32_t* dst = Bp + p * CYNET_BF16_NR;
            if (2 * p + 1 < kc) {
                const float* r1 = r0 + sbk;
                for (j = 0; j < w; j++) dst[j] = cynet_bf16_pair(r0[j * sbn], r1[j * sbn]);
            } else {
                for (j = 0; j < w; j++) dst[j] = cynet_bf16_round(r0[j * sbn]);
            }
            for (j = w; j < CYNET_BF16_NR; j++) dst[j] = 0;
        }
    }
}

/* Ap <- A's rows [0, mc) x k [0, kc) in panels of MR rows, each kp pairs x MR words; zero past
   mc and kc */
static void cynet_bf16_pack_a(const float* A, Py_ssize_t sam, Py_ssize_t sak, Py_ssize_t mc,
                              Py_ssize_t kc, uint32_t* Ap) {
    Py_ssize_t kp = (kc + 1) / 2, i0, p, r;
    for (i0 = 0; i0 < mc; i0 += CYNET_BF16_MR, Ap += kp * CYNET_BF16_MR) {
        Py_ssize_t h = mc - i0 < CYNET_BF16_MR ? mc - i0 : CYNET_BF16_MR;
        for (r = 0; r < h; r++) {
            const float* a = A + (i0 + r) * sam;
            for (p = 0; p < kc / 2; p++)
                Ap[p * CYNET_BF16_MR + r] = cynet_bf16_pair(a[2 * p * sak], a[(2 * p + 1) * sak]);
            if (kc & 1) Ap[(kp - 1) * CYNET_BF16_MR + r] = cynet_bf16_round(a[(kc - 1) * sak]);
        }
        for (p = 0; p < kp; p++)
            for (r = h; r < CYNET_BF16_MR; r++) Ap[p * CYNET_BF16_MR + r] = 0;
    }
}

/* The emulated micro-kernel: an MR x NR tile of C (rows x cols of it stored) from kp pairs */
CYNET_CLONES static void cynet_bf16_tile_emulated(const uint32_t* ap, const uint32_t* bp,
        Py_ssize_t kp, float* c, Py_ssize_t sc, Py_ssize_t rows, Py_ssize_t cols, int acc) {
    float t[CYNET_BF16_MR][CYNET_BF16_NR];
    float blo[CYNET_BF16_NR], bhi[CYNET_BF16_NR];
    Py_ssize_t p, r, j;
    for (r = 0; r < CYNET_BF16_MR; r++)
        for (j = 0; j < CYNET_BF16_NR; j++) t[r][j] = (acc && r < rows && j < cols) ? c[r * sc + j] : 0.0f;
    for (p = 0; p < kp; p++, ap += CYNET_BF16_MR, bp += CYNET_BF16_NR) {
        for (j = 0; j < CYNET_BF16_NR; j++) {
            bhi[j] = cynet_bf16_widen(bp[j] & 0xffff0000u);
            blo[j] = cynet_bf16_widen(bp[j] << 16);
        }
        for (r = 0; r < CYNET_BF16_MR; r++) {
            float ahi = cynet_bf16_widen(ap[r] & 0xffff0000u), alo = cynet_bf16_widen(ap[r] << 16);
            for (j = 0; j < CYNET_BF16_NR; j++) {
                t[r][j] += ahi * bhi[j];   /* the odd k first, as vdpbf16ps */
                t[r][j] += alo * blo[j];
            }
        }
    }
    for (r = 0; r < rows; r++)
        for (j = 0; j < cols; j++) c[r * sc + j] = t[r][j];
}

#if CYNET_BF16_NATIVE_BUILT
#define CYNET_BF16_TARGET __attribute__((target("avx512bf16,avx512bw,avx512vl,avx512f")))

/* The native micro-kernel: 2 * MR accumulators of 16 floats; per pair of k two vectors of B
   and MR broadcast words of A, 2 * MR vdpbf16ps. Columns past `cols` are masked off. */
CYNET_BF16_TARGET static void cynet_bf16_tile_native(const uint32_t* ap, const uint32_t* bp,
        Py_ssize_t kp, float* c, Py_ssize_t sc, Py_ssize_t rows, Py_ssize_t cols, int acc) {
    __m512 c0[CYNET_BF16_MR], c1[CYNET_BF16_MR];
    __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xffff : (1u << cols) - 1u);
    __mmask16 m1 = (__mmask16)(cols >= 32 ? 0xffff : cols <= 16 ? 0 : (1u << (cols - 16)) - 1u);
    Py_ssize_t p;
    int r;
#pragma GCC unroll 12
    for (r = 0; r < CYNET_BF16_MR; r++) {
        if (acc && r < rows) {
            c0[r] = _mm512_maskz_loadu_ps(m0, c + r * sc);
            c1[r] = _mm512_maskz_loadu_ps(m1, c + r * sc + 16);
        } else {
            c0[r] = _mm512_setzero_ps();
            c1[r] = _mm512_setzero_ps();
        }
    }
    for (p = 0; p < kp; p++, ap += CYNET_BF16_MR, bp += CYNET_BF16_NR) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void*)bp);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void*)(bp + 16));
#pragma GCC unroll 12
        for (r = 0; r < CYNET_BF16_MR; r++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)ap[r]);
            c0[r] = _mm512_dpbf16_ps(c0[r], a, b0);
            c1[r] = _mm512_dpbf16_ps(c1[r], a, b1);
        }
    }
#pragma GCC unroll 12
    for (r = 0; r < CYNET_BF16_MR; r++) {
        if (r < rows) {
            _mm512_mask_storeu_ps(c + r * sc, m0, c0[r]);
            _mm512_mask_storeu_ps(c + r * sc + 16, m1, c1[r]);
        }
    }
}
#endif

/* C (M x N) = or += A (M x K) @ B (K x N), both rounded to bfloat16 while packed (see the top of
   this file); native: 1 for vdpbf16ps (only where cynet_bf16_native_ok()), 0 for the emulation */
CYNET_UNUSED static void cynet_bf16_gemm(int native, const float* A, Py_ssize_t sam, Py_ssize_t sak,
        const float* B, Py_ssize_t sbk, Py_ssize_t sbn, float* C, Py_ssize_t sc, Py_ssize_t M,
        Py_ssize_t N, Py_ssize_t K, int accumulate, uint32_t* work) {
    uint32_t* bpk = work;
    uint32_t* apk = work + (Py_ssize_t)CYNET_BF16_KC * CYNET_BF16_NC;
    Py_ssize_t n0, k0, m0, i, j, nc, kc, kp, mc;
    int acc;
#if !CYNET_BF16_NATIVE_BUILT
    native = 0;
#endif
    if (K <= 0) {
        if (!accumulate)
            for (i = 0; i < M; i++) memset(C + i * sc, 0, (size_t)N * sizeof(float));
        return;
    }
    for (n0 = 0; n0 < N; n0 += CYNET_BF16_NC) {
        nc = N - n0 < CYNET_BF16_NC ? N - n0 : CYNET_BF16_NC;
        for (k0 = 0; k0 < K; k0 += 2 * CYNET_BF16_KC) {
            kc = K - k0 < 2 * CYNET_BF16_KC ? K - k0 : 2 * CYNET_BF16_KC;
            kp = (kc + 1) / 2;
            acc = accumulate || k0 > 0;
            cynet_bf16_pack_b(B + k0 * sbk + n0 * sbn, sbk, sbn, kc, nc, bpk);
            for (m0 = 0; m0 < M; m0 += CYNET_BF16_MC) {
                mc = M - m0 < CYNET_BF16_MC ? M - m0 : CYNET_BF16_MC;
                cynet_bf16_pack_a(A + m0 * sam + k0 * sak, sam, sak, mc, kc, apk);
                for (j = 0; j < nc; j += CYNET_BF16_NR) {
                    Py_ssize_t cols = nc - j < CYNET_BF16_NR ? nc - j : CYNET_BF16_NR;
                    const uint32_t* bp = bpk + (j / CYNET_BF16_NR) * kp * CYNET_BF16_NR;
                    for (i = 0; i < mc; i += CYNET_BF16_MR) {
                        Py_ssize_t rows = mc - i < CYNET_BF16_MR ? mc - i : CYNET_BF16_MR;
                        const uint32_t* ap = apk + (i / CYNET_BF16_MR) * kp * CYNET_BF16_MR;
                        float* cp = C + (m0 + i) * sc + n0 + j;
#if CYNET_BF16_NATIVE_BUILT
                        if (native) {
                            cynet_bf16_tile_native(ap, bp, kp, cp, sc, rows, cols, acc);
                            continue;
                        }
#endif
                        cynet_bf16_tile_emulated(ap, bp, kp, cp, sc, rows, cols, acc);
                    }
                }
            }
        }
    }
}

#endif  /* CYNET_BF16_H */
