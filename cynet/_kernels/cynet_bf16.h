/* cynet_bf16.h: the bfloat16 matrix product of the mixed_bfloat16 policy, single-threaded, no GIL.

   C (float32) = A (float32) @ B (float32) with every element of A and B rounded to bfloat16
   (round to nearest, ties to even; NaN stays NaN, Inf stays Inf) WHILE IT IS PACKED, and the
   products accumulated in float32. NumPy has no bfloat16 dtype, so cynet's activations and
   weights stay float32 arrays: the rounding happens here, on the way into the packed panels,
   never as a separate pass over memory.

   Three paths over the same rounding, chosen by the caller (`native`: CYNET_BF16_AMX,
   CYNET_BF16_AVX512 or CYNET_BF16_EMULATED); the native kernels are compiled for their target
   only (function attributes), so the module still loads on CPUs without them, and callers ask
   cynet_bf16_amx_ok() / cynet_bf16_native_ok() (CPU features, and for AMX the Linux permission
   to use the tile state, requested once) before choosing them:
   - AMX: AMX-BF16's tdpbf16ps on 16 x 32-pair tiles, a 32 x 32 block of C in four tiles
     (A packed for it in 32-row panels; a transposed A is packed by in-register transposes).
   - AVX512_BF16: vdpbf16ps (_mm512_dpbf16_ps), a 12 x 32 block of C in 24 registers. On the
     Sapphire Rapids VM it was written on, vdpbf16ps issues at a fifth of the rate of float32
     FMAs (33 against 82 G multiply-adds/s in a register-only loop), so this path is no faster
     than float32 there: it is the path of CPUs with AVX512_BF16 but no AMX.
   - emulated: the same rounded values widened back to float32 (exact: a bfloat16 is the top
     half of a float32) and multiplied-added in float32, in vdpbf16ps's order: per pair of k,
     the odd k first, then the even one. A bf16 x bf16 product is exact in float32, so each step
     rounds once, as vdpbf16ps does: the two agree bit for bit on normal numbers (the native
     instructions flush denormal inputs and results to zero; the emulation keeps them). AMX
     sums a tile's pairs in its own order: it agrees with them up to float32 accumulation order.
   The native paths convert unit-stride runs with vcvtne2ps2bf16 (the same rounding on normal
   numbers; it flushes denormals, which the native products flush anyway).

   Layouts: A[m, k] at A + m * sam + k * sak; B[k, n] at B + k * sbk + n * sbn (any strides: a
   transposed weight or a patch matrix's transpose needs no copy); C[m, n] at C + m * sc + n.
   k is packed in pairs (one 32-bit word holds k = 2p in its low half, 2p + 1 in its high half,
   vdpbf16ps's layout); an odd K is padded with a zero. B is packed in blocks of CYNET_BF16_KC
   pairs x CYNET_BF16_NC columns, panels of CYNET_BF16_NR columns; A in blocks of CYNET_BF16_MC
   rows, panels of CYNET_BF16_MR rows. `work` holds both: CYNET_BF16_WORK 32-bit words.
   accumulate: 0 C = A @ B; 1 C += A @ B. bias: NULL, or N floats added to every row of C (in
   the last K block, on each block of C while it is in cache).

   Cython declares this once, in _gemm.pxd (cimport it, e.g. for a recurrent step's products);
   the bf16 kernel family (bf16.pyx) wraps it for Python (cynet.kernels.matmul_bf16), which the
   layers' products (cynet/layers/_precision.py) and the convolutions (conv_bf16.py) call. */
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
#if CYNET_BF16_NATIVE_BUILT && __GNUC__ >= 11 && defined(__linux__)
#define CYNET_BF16_AMX_BUILT 1
#include <unistd.h>
#include <sys/syscall.h>
#else
#define CYNET_BF16_AMX_BUILT 0
#endif

/* the paths (`native` argument of cynet_bf16_gemm) */
#define CYNET_BF16_EMULATED 0
#define CYNET_BF16_AVX512 1
#define CYNET_BF16_AMX 2

/* 1 when this build has the native kernel and this CPU runs it */
static inline int cynet_bf16_native_ok(void) {
#if CYNET_BF16_NATIVE_BUILT
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

/* 1 when this build has the AMX-BF16 kernel, this CPU has AMX-BF16 and Linux lets this process
   use the tile data (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, asked once) */
static inline int cynet_bf16_amx_ok(void) {
#if CYNET_BF16_AMX_BUILT
    static int state = -1;   /* (a benign race: every thread computes the same answer) */
    if (state < 0)
        state = __builtin_cpu_supports("amx-bf16") && __builtin_cpu_supports("amx-tile")
            && cynet_bf16_native_ok()
            && syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
    return state;
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

/* Bp <- B's rows [0, kc) x columns [0, nc) in panels of NR columns, each kq >= ceil(kc / 2)
   pairs x NR words; zero past kc and nc */
static void cynet_bf16_pack_b(const float* B, Py_ssize_t sbk, Py_ssize_t sbn, Py_ssize_t kc,
                              Py_ssize_t nc, Py_ssize_t kq, uint32_t* Bp) {
    Py_ssize_t kp = (kc + 1) / 2, j0, p, j;
    for (j0 = 0; j0 < nc; j0 += CYNET_BF16_NR, Bp += kq * CYNET_BF16_NR) {
        Py_ssize_t w = nc - j0 < CYNET_BF16_NR ? nc - j0 : CYNET_BF16_NR;
        for (p = kp; p < kq; p++)
            for (j = 0; j < CYNET_BF16_NR; j++) Bp[p * CYNET_BF16_NR + j] = 0;
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


#if CYNET_BF16_NATIVE_BUILT
/* Packing with AVX512_BF16's conversions (vcvtne2ps2bf16: round to nearest even, NaN kept, the
   scalar cynet_bf16_round's result on every normal number; denormal inputs become zero, as the
   native products would treat them anyway), for the native paths on unit-stride operands. */

/* dst[0, kq) <- the pairs of a[0, kc) (unit stride), zero past them */
CYNET_BF16_TARGET static void cynet_bf16_row_pairs_vec(const float* a, Py_ssize_t kc, uint32_t* dst,
                                                       Py_ssize_t kq) {
    Py_ssize_t k = 0, p;
    for (; k + 32 <= kc; k += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(a + k + 16), _mm512_loadu_ps(a + k));
        _mm512_storeu_si512((void*)(dst + k / 2), (__m512i)v);
    }
    if (k < kc) {
        Py_ssize_t r = kc - k;
        __mmask16 m0 = (__mmask16)(r >= 16 ? 0xffff : (1u << r) - 1u);
        __mmask16 m1 = (__mmask16)(r >= 32 ? 0xffff : r <= 16 ? 0 : (1u << (r - 16)) - 1u);
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, a + k + 16), _mm512_maskz_loadu_ps(m0, a + k));
        __mmask16 w = (__mmask16)(((r + 1) / 2) >= 16 ? 0xffff : (1u << ((r + 1) / 2)) - 1u);
        _mm512_mask_storeu_epi32((void*)(dst + k / 2), w, (__m512i)v);
        k += 2 * ((r + 1) / 2);
    }
    for (p = k / 2; p < kq; p++) dst[p] = 0;
}

/* 16 words: the pairs (r0[j], r1[j]) of 16 columns (unit stride; r1 NULL: zeros), `m` the
   columns present */
CYNET_BF16_TARGET static inline __attribute__((always_inline)) __m512i cynet_bf16_cols_vec(const float* r0, const float* r1, __mmask16 m) {
    __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, r0)));
    if (r1 == NULL) return lo;
    __m512i hi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, r1)));
    return _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
}

/* cynet_bf16_pack_b for a B with unit column stride */
CYNET_BF16_TARGET static void cynet_bf16_pack_b_vec(const float* B, Py_ssize_t sbk, Py_ssize_t kc,
                                                    Py_ssize_t nc, Py_ssize_t kq, uint32_t* Bp) {
    Py_ssize_t kp = (kc + 1) / 2, j0, p;
    for (j0 = 0; j0 < nc; j0 += CYNET_BF16_NR, Bp += kq * CYNET_BF16_NR) {
        Py_ssize_t w = nc - j0 < CYNET_BF16_NR ? nc - j0 : CYNET_BF16_NR;
        __mmask16 m0 = (__mmask16)(w >= 16 ? 0xffff : (1u << w) - 1u);
        __mmask16 m1 = (__mmask16)(w >= 32 ? 0xffff : w <= 16 ? 0 : (1u << (w - 16)) - 1u);
        for (p = 0; p < kp; p++) {
            const float* r0 = B + 2 * p * sbk + j0;
            const float* r1 = 2 * p + 1 < kc ? r0 + sbk : NULL;
            _mm512_storeu_si512((void*)(Bp + p * CYNET_BF16_NR), cynet_bf16_cols_vec(r0, r1, m0));
            _mm512_storeu_si512((void*)(Bp + p * CYNET_BF16_NR + 16),
                                m1 ? cynet_bf16_cols_vec(r0 + 16, r1 ? r1 + 16 : NULL, m1) : _mm512_setzero_si512());
        }
        for (p = kp; p < kq; p++) {
            _mm512_storeu_si512((void*)(Bp + p * CYNET_BF16_NR), _mm512_setzero_si512());
            _mm512_storeu_si512((void*)(Bp + p * CYNET_BF16_NR + 16), _mm512_setzero_si512());
        }
    }
}
#endif

#if CYNET_BF16_AMX_BUILT
/* AMX-BF16: the tiles are 16 rows x 64 bytes. A block of C of 32 x 32 floats lives in tiles 0-3
   (tmm0: rows 0-15 x columns 0-15, tmm1: rows 0-15 x 16-31, tmm2, tmm3 the next 16 rows); per 16
   pairs of k, tmm4 / tmm5 hold 16 rows of A each (a row: 16 words, pairs of k), tmm6 / tmm7 16
   pairs of B's 16 columns each (a row: one pair of k, 16 columns: vdpbf16ps's word layout, which
   the B panels already have: NR = 32 words per pair, so a tile row stride of 128 bytes). A is
   packed for AMX in panels of 32 rows, each row kq words (kp pairs rounded up to 16, zero-padded). */
#define CYNET_BF16_AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512bf16,avx512f,avx512bw,avx512vl")))

typedef struct { uint8_t palette, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; }
    cynet_amx_config;

/* (a constant object: a configuration filled in on the stack is dead code to GCC, which does
   not see that ldtilecfg reads all 64 bytes) */
static const cynet_amx_config cynet_amx_cfg __attribute__((aligned(64))) = {
    1, 0, {0}, {64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0},
    {16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0}};

CYNET_BF16_AMX_TARGET static void cynet_bf16_amx_configure(void) {
    _tile_loadconfig(&cynet_amx_cfg);
}

/* Ap <- A's rows [0, mc) x k [0, kc) in panels of 32 rows of kq words; zero past mc and kc */
static void cynet_bf16_pack_a_amx(const float* A, Py_ssize_t sam, Py_ssize_t sak, Py_ssize_t mc,
                                  Py_ssize_t kc, Py_ssize_t kq, uint32_t* Ap) {
    Py_ssize_t i0, p, r, kp = (kc + 1) / 2;
    for (i0 = 0; i0 < mc; i0 += 32, Ap += 32 * kq) {
        for (r = 0; r < 32; r++) {
            uint32_t* dst = Ap + r * kq;
            if (i0 + r < mc && sak == 1) {
                cynet_bf16_row_pairs_vec(A + (i0 + r) * sam, kc, dst, kq);
                continue;
            }
            if (i0 + r < mc) {
                const float* a = A + (i0 + r) * sam;
                if (0) {}
                else
                    for (p = 0; p < kc / 2; p++) dst[p] = cynet_bf16_pair(a[2 * p * sak], a[(2 * p + 1) * sak]);
                if (kc & 1) dst[kp - 1] = cynet_bf16_round(a[(kc - 1) * sak]);
                p = kp;
            } else {
                p = 0;
            }
            for (; p < kq; p++) dst[p] = 0;
        }
    }
}

/* r[i][j] <- r[j][i]: a 16 x 16 transpose of 32-bit words in registers */
CYNET_BF16_AMX_TARGET static inline void cynet_bf16_tr16(__m512i r[16]) {
    __m512i t[16];
    int i;
    for (i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (i = 0; i < 4; i++) {
        r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    /* now r[4q + j] holds, per 128-bit lane L, the words [4L .. 4L+3] of column (4? ) : rows 4q..4q+3 */
    for (i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_i32x4(r[i], r[4 + i], 0x88);
        t[4 + i] = _mm512_shuffle_i32x4(r[i], r[4 + i], 0xdd);
        t[8 + i] = _mm512_shuffle_i32x4(r[8 + i], r[12 + i], 0x88);
        t[12 + i] = _mm512_shuffle_i32x4(r[8 + i], r[12 + i], 0xdd);
    }
    for (i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_i32x4(t[i], t[8 + i], 0x88);
        r[8 + i] = _mm512_shuffle_i32x4(t[i], t[8 + i], 0xdd);
        r[4 + i] = _mm512_shuffle_i32x4(t[4 + i], t[12 + i], 0x88);
        r[12 + i] = _mm512_shuffle_i32x4(t[4 + i], t[12 + i], 0xdd);
    }
}

/* cynet_bf16_pack_a_amx for a transposed A (unit row stride: A[m, k] at A + m + k * sak, as
   a patch matrix's or an activation's transpose in a weight gradient): 16 pairs of k x 16 rows
   of words converted from contiguous runs of A, transposed in registers, stored as 16 rows.
   The runs of one k are read for all the block's rows in turn (whole cache lines, adjacent). */
CYNET_BF16_AMX_TARGET static void cynet_bf16_pack_a_amx_t(const float* A, Py_ssize_t sak, Py_ssize_t mc,
        Py_ssize_t kc, Py_ssize_t kq, uint32_t* Ap) {
    Py_ssize_t kp = (kc + 1) / 2, g, p0, p, r, groups = (mc + 31) / 32 * 2;
    __m512i w[16];
    for (p0 = 0; p0 < kq; p0 += 16) {   /* kq: a multiple of 16 */
        for (g = 0; g < groups; g++) {   /* 16 rows each; a panel of 32 rows holds two */
            Py_ssize_t h = mc - 16 * g;
            uint32_t* dst = Ap + (g / 2) * 32 * kq + (g % 2) * 16 * kq + p0;
            const float* a = A + 16 * g;
            __mmask16 m = (__mmask16)(h >= 16 ? 0xffff : h <= 0 ? 0 : (1u << h) - 1u);
            for (p = 0; p < 16; p++) {
                Py_ssize_t q = p0 + p;
                const float* x0 = a + 2 * q * sak;
                w[p] = (q < kp && m) ? cynet_bf16_cols_vec(x0, 2 * q + 1 < kc ? x0 + sak : NULL, m)
                                     : _mm512_setzero_si512();
            }
            cynet_bf16_tr16(w);
            for (r = 0; r < 16; r++) _mm512_storeu_si512((void*)(dst + r * kq), w[r]);
        }
    }
}

/* a 32 x 32 block of C (rows x cols of it stored; added to C when acc) from a 32-row panel of A
   (kq words a row) and a 32-column panel of B (kq pairs of 32 words) */
CYNET_BF16_AMX_TARGET static void cynet_bf16_tile_amx(const uint32_t* ap, const uint32_t* bp,
        Py_ssize_t kq, float* c, Py_ssize_t sc, Py_ssize_t rows, Py_ssize_t cols, int acc) {
    float t[32][32] __attribute__((aligned(64)));
    Py_ssize_t p, r;
    __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xffff : (1u << cols) - 1u);
    __mmask16 m1 = (__mmask16)(cols >= 32 ? 0xffff : cols <= 16 ? 0 : (1u << (cols - 16)) - 1u);
    int whole = rows == 32 && cols == 32;
    /* a whole block goes straight between C and the tiles (C's rows as tile rows; the tiles add
       to it); a partial one through `t` (reading tiles back through memory costs a stall) */
    if (whole && acc) {
        _tile_loadd(0, c, sc * 4);
        _tile_loadd(1, c + 16, sc * 4);
        _tile_loadd(2, c + 16 * sc, sc * 4);
        _tile_loadd(3, c + 16 * sc + 16, sc * 4);
    } else {
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    }
    for (p = 0; p < kq; p += 16) {
        _tile_loadd(4, ap + p, kq * 4);
        _tile_loadd(5, ap + 16 * kq + p, kq * 4);
        _tile_loadd(6, bp + p * 32, 128);
        _tile_loadd(7, bp + p * 32 + 16, 128);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    if (whole) {
        _tile_stored(0, c, sc * 4);
        _tile_stored(1, c + 16, sc * 4);
        _tile_stored(2, c + 16 * sc, sc * 4);
        _tile_stored(3, c + 16 * sc + 16, sc * 4);
        return;
    }
    _tile_stored(0, &t[0][0], 128);
    _tile_stored(1, &t[0][16], 128);
    _tile_stored(2, &t[16][0], 128);
    _tile_stored(3, &t[16][16], 128);
    for (r = 0; r < rows; r++) {
        __m512 v0 = _mm512_load_ps(&t[r][0]), v1 = _mm512_load_ps(&t[r][16]);
        if (acc) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, c + r * sc));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, c + r * sc + 16));
        }
        _mm512_mask_storeu_ps(c + r * sc, m0, v0);
        _mm512_mask_storeu_ps(c + r * sc + 16, m1, v1);
    }
}

CYNET_BF16_AMX_TARGET static void cynet_bf16_amx_release(void) { _tile_release(); }
#endif

/* c[r, j] += bias[j] over a block of C just written (still in L1): the bias of a layer, added
   without a pass of its own over the output */
CYNET_CLONES static void cynet_bf16_add_bias(float* c, Py_ssize_t sc, Py_ssize_t rows, Py_ssize_t cols,
                                             const float* bias) {
    Py_ssize_t r, j;
    for (r = 0; r < rows; r++)
        for (j = 0; j < cols; j++) c[r * sc + j] += bias[j];
}

#if CYNET_BF16_AMX_BUILT
/* the AMX driver: as cynet_bf16_gemm's loops, with A in 32-row AMX panels and the pairs of each
   K block rounded up to 16 (zero pairs) */
static void cynet_bf16_gemm_amx(const float* A, Py_ssize_t sam, Py_ssize_t sak, const float* B,
        Py_ssize_t sbk, Py_ssize_t sbn, float* C, Py_ssize_t sc, Py_ssize_t M, Py_ssize_t N,
        Py_ssize_t K, int accumulate, const float* bias, uint32_t* work) {
    uint32_t* bpk = work;
    uint32_t* apk = work + (Py_ssize_t)CYNET_BF16_KC * CYNET_BF16_NC;
    Py_ssize_t n0, k0, m0, i, j, nc, kc, kq, mc;
    int acc;
    cynet_bf16_amx_configure();
    for (n0 = 0; n0 < N; n0 += CYNET_BF16_NC) {
        nc = N - n0 < CYNET_BF16_NC ? N - n0 : CYNET_BF16_NC;
        for (k0 = 0; k0 < K; k0 += 2 * CYNET_BF16_KC) {
            kc = K - k0 < 2 * CYNET_BF16_KC ? K - k0 : 2 * CYNET_BF16_KC;
            kq = ((kc + 1) / 2 + 15) / 16 * 16;
            acc = accumulate || k0 > 0;
            if (sbn == 1)
                cynet_bf16_pack_b_vec(B + k0 * sbk + n0, sbk, kc, nc, kq, bpk);
            else
                cynet_bf16_pack_b(B + k0 * sbk + n0 * sbn, sbk, sbn, kc, nc, kq, bpk);
            for (m0 = 0; m0 < M; m0 += CYNET_BF16_MC) {
                mc = M - m0 < CYNET_BF16_MC ? M - m0 : CYNET_BF16_MC;
                if (sam == 1 && sak != 1)
                    cynet_bf16_pack_a_amx_t(A + m0 + k0 * sak, sak, mc, kc, kq, apk);
                else
                    cynet_bf16_pack_a_amx(A + m0 * sam + k0 * sak, sam, sak, mc, kc, kq, apk);
                for (j = 0; j < nc; j += CYNET_BF16_NR) {
                    Py_ssize_t cols = nc - j < CYNET_BF16_NR ? nc - j : CYNET_BF16_NR;
                    const uint32_t* bp = bpk + (j / CYNET_BF16_NR) * kq * CYNET_BF16_NR;
                    for (i = 0; i < mc; i += 32) {
                        Py_ssize_t rows = mc - i < 32 ? mc - i : 32;
                        cynet_bf16_tile_amx(apk + i * kq, bp, kq, C + (m0 + i) * sc + n0 + j, sc,
                                            rows, cols, acc);
                        if (bias != NULL && k0 + kc == K)
                            cynet_bf16_add_bias(C + (m0 + i) * sc + n0 + j, sc, rows, cols, bias + n0 + j);
                    }
                }
            }
        }
    }
    cynet_bf16_amx_release();
}
#endif

/* C (M x N) = or += A (M x K) @ B (K x N), both rounded to bfloat16 while packed (see the top of
   this file); native: 1 for vdpbf16ps (only where cynet_bf16_native_ok()), 0 for the emulation */
CYNET_UNUSED static void cynet_bf16_gemm(int native, const float* A, Py_ssize_t sam, Py_ssize_t sak,
        const float* B, Py_ssize_t sbk, Py_ssize_t sbn, float* C, Py_ssize_t sc, Py_ssize_t M,
        Py_ssize_t N, Py_ssize_t K, int accumulate, const float* bias, uint32_t* work) {
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
        if (bias != NULL) cynet_bf16_add_bias(C, sc, M, N, bias);
        return;
    }
#if CYNET_BF16_AMX_BUILT
    if (native == CYNET_BF16_AMX) {
        cynet_bf16_gemm_amx(A, sam, sak, B, sbk, sbn, C, sc, M, N, K, accumulate, bias, work);
        return;
    }
#endif
    if (native == CYNET_BF16_AMX) native = CYNET_BF16_AVX512;
    for (n0 = 0; n0 < N; n0 += CYNET_BF16_NC) {
        nc = N - n0 < CYNET_BF16_NC ? N - n0 : CYNET_BF16_NC;
        for (k0 = 0; k0 < K; k0 += 2 * CYNET_BF16_KC) {
            kc = K - k0 < 2 * CYNET_BF16_KC ? K - k0 : 2 * CYNET_BF16_KC;
            kp = (kc + 1) / 2;
            acc = accumulate || k0 > 0;
#if CYNET_BF16_NATIVE_BUILT
            if (native && sbn == 1)
                cynet_bf16_pack_b_vec(B + k0 * sbk + n0, sbk, kc, nc, kp, bpk);
            else
#endif
                cynet_bf16_pack_b(B + k0 * sbk + n0 * sbn, sbk, sbn, kc, nc, kp, bpk);
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
                        if (native)
                            cynet_bf16_tile_native(ap, bp, kp, cp, sc, rows, cols, acc);
                        else
#endif
                            cynet_bf16_tile_emulated(ap, bp, kp, cp, sc, rows, cols, acc);
                        if (bias != NULL && k0 + kc == K)
                            cynet_bf16_add_bias(cp, sc, rows, cols, bias + n0 + j);
                    }
                }
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------
   Pack A once, multiply many: the recurrent layers' products (rnn.pyx). A recurrent step
   multiplies the same weights by a new B at every step (a sequence of 60 steps would pack them
   60 times through cynet_bf16_gemm), and a whole-sequence weight gradient has a B read with unit
   K stride (the transposed gate gradients). cynet_bf16_path resolves a requested path to one
   this CPU runs; cynet_bf16_pack_a_all packs all of A (every K block, rows padded to the path's
   panels) into cynet_bf16_packed_a_words(path, M, K) words; cynet_bf16_gemm_apacked then runs
   C (M x N, row stride sc) = or += A @ B from it, packing only B (work: CYNET_BF16_WORK words).
   The rounding and the sums are cynet_bf16_gemm's, path for path. */

/* the path that runs for a requested one (AMX -> AVX512_BF16 -> emulated, as this CPU allows) */
CYNET_UNUSED static int cynet_bf16_path(int native) {
    if (native >= CYNET_BF16_AMX && !cynet_bf16_amx_ok()) native = CYNET_BF16_AVX512;
    if (native >= CYNET_BF16_AVX512 && !cynet_bf16_native_ok()) native = CYNET_BF16_EMULATED;
    return native < 0 ? CYNET_BF16_EMULATED : native;
}

/* rows of a packed A's panel, and words per row of a K block of kc values, for a resolved path */
static inline Py_ssize_t cynet_bf16_panel_rows(int path) { return path == CYNET_BF16_AMX ? 32 : CYNET_BF16_MR; }
static inline Py_ssize_t cynet_bf16_block_words(int path, Py_ssize_t kc) {
    Py_ssize_t kp = (kc + 1) / 2;
    return path == CYNET_BF16_AMX ? (kp + 15) / 16 * 16 : kp;
}

/* words of A (M x K) packed by cynet_bf16_pack_a_all for a resolved path (at least 1) */
CYNET_UNUSED static Py_ssize_t cynet_bf16_packed_a_words(int path, Py_ssize_t M, Py_ssize_t K) {
    Py_ssize_t mr = cynet_bf16_panel_rows(path), mpad = (M + mr - 1) / mr * mr, k0, kc, total = 0;
    for (k0 = 0; k0 < K; k0 += 2 * CYNET_BF16_KC) {
        kc = K - k0 < 2 * CYNET_BF16_KC ? K - k0 : 2 * CYNET_BF16_KC;
        total += mpad * cynet_bf16_block_words(path, kc);
    }
    return total > 0 ? total : 1;
}

/* Ap <- all of A (A[m, k] at A + m * sam + k * sak), K block after K block, each block the
   panels of all M rows as the path's micro-kernel reads them (a resolved path) */
CYNET_UNUSED static void cynet_bf16_pack_a_all(int path, const float* A, Py_ssize_t sam, Py_ssize_t sak,
                                               Py_ssize_t M, Py_ssize_t K, uint32_t* Ap) {
    Py_ssize_t mr = cynet_bf16_panel_rows(path), mpad = (M + mr - 1) / mr * mr, k0, kc, kw;
    for (k0 = 0; k0 < K; k0 += 2 * CYNET_BF16_KC) {
        kc = K - k0 < 2 * CYNET_BF16_KC ? K - k0 : 2 * CYNET_BF16_KC;
        kw = cynet_bf16_block_words(path, kc);
#if CYNET_BF16_AMX_BUILT
        if (path == CYNET_BF16_AMX) {
            if (sam == 1 && sak != 1)
                cynet_bf16_pack_a_amx_t(A + k0 * sak, sak, M, kc, kw, Ap);
            else
                cynet_bf16_pack_a_amx(A + k0 * sak, sam, sak, M, kc, kw, Ap);
            Ap += mpad * kw;
            continue;
        }
#endif
        cynet_bf16_pack_a(A + k0 * sak, sam, sak, M, kc, Ap);
        Ap += mpad * kw;
    }
}

#if CYNET_BF16_AMX_BUILT
/* cynet_bf16_pack_b for a B with unit K stride (B[k, n] at B + k + n * sbn: a transposed
   matrix, as the gate gradients in a weight gradient): per 16 columns and 16 pairs, each
   column's 32 contiguous values converted to 16 words, the 16 x 16 words transposed in
   registers into 16 rows of the panel. kq: pairs of the panel (>= ceil(kc / 2)), zero past kc. */
CYNET_BF16_AMX_TARGET static void cynet_bf16_pack_b_kunit(const float* B, Py_ssize_t sbn, Py_ssize_t kc,
        Py_ssize_t nc, Py_ssize_t kq, uint32_t* Bp) {
    Py_ssize_t j0, h, p0, p, j;
    __m512i w[16];
    for (j0 = 0; j0 < nc; j0 += CYNET_BF16_NR, Bp += kq * CYNET_BF16_NR) {
        for (h = 0; h < CYNET_BF16_NR; h += 16) {
            Py_ssize_t cols = nc - j0 - h;
            for (p0 = 0; p0 < kq; p0 += 16) {
                Py_ssize_t r = kc - 2 * p0;   /* values of k left from pair p0 */
                __mmask16 m0 = (__mmask16)(r >= 16 ? 0xffff : r <= 0 ? 0 : (1u << r) - 1u);
                __mmask16 m1 = (__mmask16)(r >= 32 ? 0xffff : r <= 16 ? 0 : (1u << (r - 16)) - 1u);
                for (j = 0; j < 16; j++) {
                    if (j < cols && r > 0) {
                        const float* b = B + (j0 + h + j) * sbn + 2 * p0;
                        w[j] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, b + 16),
                                                            _mm512_maskz_loadu_ps(m0, b));
                    } else {
                        w[j] = _mm512_setzero_si512();
                    }
                }
                cynet_bf16_tr16(w);
                for (p = 0; p < 16 && p0 + p < kq; p++)
                    _mm512_storeu_si512((void*)(Bp + (p0 + p) * CYNET_BF16_NR + h), w[p]);
            }
        }
    }
}
#endif

/* C (M x N, row stride sc) = or += A @ B, A from cynet_bf16_pack_a_all(path, ...) (the same
   resolved path), B[k, n] at B + k * sbk + n * sbn packed here per block (work: at least
   CYNET_BF16_KC * CYNET_BF16_NC words). */
CYNET_UNUSED static void cynet_bf16_gemm_apacked(int path, const uint32_t* Ap, Py_ssize_t M, Py_ssize_t K,
        const float* B, Py_ssize_t sbk, Py_ssize_t sbn, float* C, Py_ssize_t sc, Py_ssize_t N,
        int accumulate, uint32_t* work) {
    Py_ssize_t mr = cynet_bf16_panel_rows(path), mpad = (M + mr - 1) / mr * mr;
    Py_ssize_t n0, k0, m0, i, j, nc, kc, kw, mc;
    const uint32_t* ak;
    int acc;
    if (K <= 0) {
        if (!accumulate)
            for (i = 0; i < M; i++) memset(C + i * sc, 0, (size_t)N * sizeof(float));
        return;
    }
#if CYNET_BF16_AMX_BUILT
    if (path == CYNET_BF16_AMX) cynet_bf16_amx_configure();
#endif
    for (n0 = 0; n0 < N; n0 += CYNET_BF16_NC) {
        nc = N - n0 < CYNET_BF16_NC ? N - n0 : CYNET_BF16_NC;
        ak = Ap;
        for (k0 = 0; k0 < K; k0 += 2 * CYNET_BF16_KC, ak += mpad * kw) {
            kc = K - k0 < 2 * CYNET_BF16_KC ? K - k0 : 2 * CYNET_BF16_KC;
            kw = cynet_bf16_block_words(path, kc);
            acc = accumulate || k0 > 0;
#if CYNET_BF16_AMX_BUILT
            if (path == CYNET_BF16_AMX && sbk == 1 && sbn != 1)
                cynet_bf16_pack_b_kunit(B + k0 + n0 * sbn, sbn, kc, nc, kw, work);
            else
#endif
#if CYNET_BF16_NATIVE_BUILT
            if (path != CYNET_BF16_EMULATED && sbn == 1)
                cynet_bf16_pack_b_vec(B + k0 * sbk + n0, sbk, kc, nc, kw, work);
            else
#endif
                cynet_bf16_pack_b(B + k0 * sbk + n0 * sbn, sbk, sbn, kc, nc, kw, work);
            for (m0 = 0; m0 < M; m0 += CYNET_BF16_MC) {
                mc = M - m0 < CYNET_BF16_MC ? M - m0 : CYNET_BF16_MC;
                for (j = 0; j < nc; j += CYNET_BF16_NR) {
                    Py_ssize_t cols = nc - j < CYNET_BF16_NR ? nc - j : CYNET_BF16_NR;
                    const uint32_t* bp = work + (j / CYNET_BF16_NR) * kw * CYNET_BF16_NR;
                    for (i = m0; i < m0 + mc; i += mr) {
                        Py_ssize_t rows = m0 + mc - i < mr ? m0 + mc - i : mr;
                        float* cp = C + i * sc + n0 + j;
#if CYNET_BF16_AMX_BUILT
                        if (path == CYNET_BF16_AMX) {
                            cynet_bf16_tile_amx(ak + i * kw, bp, kw, cp, sc, rows, cols, acc);
                            continue;
                        }
#endif
#if CYNET_BF16_NATIVE_BUILT
                        if (path == CYNET_BF16_AVX512) {
                            cynet_bf16_tile_native(ak + i * kw, bp, kw, cp, sc, rows, cols, acc);
                            continue;
                        }
#endif
                        cynet_bf16_tile_emulated(ak + i * kw, bp, kw, cp, sc, rows, cols, acc);
                    }
                }
            }
        }
    }
#if CYNET_BF16_AMX_BUILT
    if (path == CYNET_BF16_AMX) cynet_bf16_amx_release();
#endif
}

/* ---- elementwise helpers for the convolutions' fused blocks (conv.pyx's bfloat16 team) ----
   Plain loops over integer bits (no float ?:, so GCC vectorises them in every clone). */

/* the bits of the float32 nearest to bits u in bfloat16 (cynet_bf16_round's value, widened) */
static inline uint32_t cynet_bf16_round_bits(uint32_t u) {
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    uint32_t q = (u | 0x400000u) & 0xffff0000u;   /* a NaN stays a quiet NaN */
    uint32_t nan = (uint32_t)0 - (uint32_t)((u & 0x7fffffffu) > 0x7f800000u);
    return (q & nan) | (r & ~nan);
}

/* dst[:n] = src[:n] rounded to bfloat16 (as float32 values; dst == src allowed): the operands
   of a product whose inner dimension is too short for the packed kernels, multiplied then in
   float32 (exact products of bfloat16 values, float32 sums: the same rounding as the kernels) */
CYNET_CLONES CYNET_UNUSED static void cynet_bf16_round_n(float* dst, const float* src, Py_ssize_t n) {
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, src + i, 4);
        u = cynet_bf16_round_bits(u);
        memcpy(dst + i, &u, 4);
    }
}

/* y[:n] = y + bias (bias: f values, repeated; NULL: none), then ReLU when relu (v < 0: 0; NaN
   and -0.0 pass, as cynet's relu_forward): the epilogue of a block of a convolution's output,
   n a multiple of f, while it is in cache */
CYNET_CLONES CYNET_UNUSED static void cynet_bf16_bias_relu(float* y, Py_ssize_t rows, Py_ssize_t f,
                                                            const float* bias, int relu) {
    Py_ssize_t r, j;
    for (r = 0; r < rows; r++, y += f) {
        if (bias != NULL)
            for (j = 0; j < f; j++) y[j] += bias[j];
        if (relu)
            for (j = 0; j < f; j++) {
                uint32_t u, neg;
                float v = y[j];
                memcpy(&u, &v, 4);
                neg = (uint32_t)0 - (uint32_t)(v < 0.0f);
                u &= ~neg;
                memcpy(y + j, &u, 4);
            }
    }
}

/* g[:n] = dy where y > 0, else 0 (cynet's relu_backward): the gradient of a convolution's
   logits from its ReLU output, one block at a time */
CYNET_CLONES CYNET_UNUSED static void cynet_bf16_relu_grad(float* g, const float* dy, const float* y,
                                                            Py_ssize_t n) {
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        uint32_t u, keep;
        float d = dy[i];
        memcpy(&u, &d, 4);
        keep = (uint32_t)0 - (uint32_t)(y[i] > 0.0f);
        u &= keep;
        memcpy(g + i, &u, 4);
    }
}

/* colsum[:f] += the column sums of the (rows, f) block g (float32; a caller adds them into its
   float64 totals every few hundred rows): a bias gradient, vectorised over the columns */
CYNET_CLONES CYNET_UNUSED static void cynet_bf16_col_sums(const float* g, Py_ssize_t rows, Py_ssize_t f,
                                                           float* colsum) {
    Py_ssize_t r, j;
    for (r = 0; r < rows; r++, g += f)
        for (j = 0; j < f; j++) colsum[j] += g[j];
}

#endif  /* CYNET_BF16_H */
