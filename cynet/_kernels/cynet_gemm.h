/* cynet_gemm.h: the matrix product of one recurrent step, C = A B, with A packed ONCE per
   sequence (included from rnn.pyx, after cynet_simd.h).

   A recurrent layer multiplies the same weights A (M x K; M = gates * units, K = units) by a
   thin B (K x N, N = batch) at every timestep. A BLAS call repacks A at every step (OpenBLAS
   spends 14% of an LSTM's time in its copy routines at batch 32) and costs a Python call per
   step. Here A is packed once into panels of CYNET_GEMM_MR rows stored k-major; each step
   streams the panels past B, which stays in L1/L2, and copies nothing.

   Layouts (T = float or double, suffix f / d):
     A[m, k]  at A + m * sam + k * sak   (any strides: a transposed weight needs no copy)
     Ap       packed A: cynet_gemm_panels(M) panels of K rows of MR values, zero-padded
     B[k, n]  at B + k * sb + n          (rows of N contiguous samples, any row stride)
     C[m, n]  at C + m * sc + n
   cynet_gemm_* computes the rows of panels [p0, p1), so that threads can split them; `tail`
   is a scratch of CYNET_GEMM_TAIL(K, N) values per thread, used when N is not a multiple of
   8 (float) / 4 (double): then B and C pass through it, zero-padded to whole vectors.

   Micro-kernel: an MR x (two vectors) tile of C lives in 12 registers; each k loads two
   vectors of B, broadcasts MR values of A and issues 2 * MR FMAs. It is written with GCC
   vector extensions: 64-byte vectors in a build for AVX-512 (measured 106 GFLOP/s here against
   OpenBLAS's 87 at M 1024, K 256, N 32), 32-byte ones in CYNET_CLONES builds for the baseline
   and AVX2+FMA, chosen at run time; other compilers get a plain loop. */
#ifndef CYNET_GEMM_H
#define CYNET_GEMM_H

#define CYNET_GEMM_MR 6
#define CYNET_GEMM_TAIL(K, N) (((K) + CYNET_GEMM_MR) * ((N) + 8))

static inline Py_ssize_t cynet_gemm_panels(Py_ssize_t M) {
    return (M + CYNET_GEMM_MR - 1) / CYNET_GEMM_MR;
}

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && defined(__x86_64__) \
    && defined(__linux__) && defined(__GLIBC__)
#define CYNET_GEMM_512 1
#else
#define CYNET_GEMM_512 0
#endif

#define CYNET_GEMM_PACK(T, S)                                                                     \
/* Ap <- A packed: cynet_gemm_panels(M) * K * MR values */                                        \
static void cynet_gemm_pack_##S(const T* A, Py_ssize_t sam, Py_ssize_t sak,                       \
                                Py_ssize_t M, Py_ssize_t K, T* Ap) {                              \
    Py_ssize_t p, k, r, m;                                                                        \
    for (p = 0; p < cynet_gemm_panels(M); p++)                                                    \
        for (k = 0; k < K; k++)                                                                   \
            for (r = 0; r < CYNET_GEMM_MR; r++) {                                                 \
                m = p * CYNET_GEMM_MR + r;                                                        \
                *Ap++ = m < M ? A[m * sam + k * sak] : (T)0;                                      \
            }                                                                                     \
}
CYNET_GEMM_PACK(float, f)
CYNET_GEMM_PACK(double, d)

#if defined(__GNUC__)

typedef float cynet_f8 __attribute__((vector_size(32), aligned(4)));
typedef float cynet_f16 __attribute__((vector_size(64), aligned(4)));
typedef double cynet_d4 __attribute__((vector_size(32), aligned(8)));
typedef double cynet_d8 __attribute__((vector_size(64), aligned(8)));

/* rows x (two vectors, or one when !two) of C at cp from the panel ap and the columns of B at bp */
#define CYNET_GEMM_TILE(NAME, T, V, W)                                                            \
static inline __attribute__((always_inline)) void NAME(                                           \
        const T* ap, const T* bp, Py_ssize_t sb, Py_ssize_t K, T* cp, Py_ssize_t sc,              \
        Py_ssize_t rows, int two) {                                                               \
    Py_ssize_t k, r;                                                                              \
    V z = {0}, c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z,                              \
      c30 = z, c31 = z, c40 = z, c41 = z, c50 = z, c51 = z, b0, b1, tile[CYNET_GEMM_MR][2];       \
    if (two) {                                                                                    \
        for (k = 0; k < K; k++, ap += CYNET_GEMM_MR, bp += sb) {                                  \
            b0 = *(const V*)bp; b1 = *(const V*)(bp + W);                                         \
            c00 += ap[0] * b0; c01 += ap[0] * b1; c10 += ap[1] * b0; c11 += ap[1] * b1;           \
            c20 += ap[2] * b0; c21 += ap[2] * b1; c30 += ap[3] * b0; c31 += ap[3] * b1;           \
            c40 += ap[4] * b0; c41 += ap[4] * b1; c50 += ap[5] * b0; c51 += ap[5] * b1;           \
        }                                                                                         \
    } else {                                                                                      \
        for (k = 0; k < K; k++, ap += CYNET_GEMM_MR, bp += sb) {                                  \
            b0 = *(const V*)bp;                                                                   \
            c00 += ap[0] * b0; c10 += ap[1] * b0; c20 += ap[2] * b0;                              \
            c30 += ap[3] * b0; c40 += ap[4] * b0; c50 += ap[5] * b0;                              \
        }                                                                                         \
    }                                                                                             \
    tile[0][0] = c00; tile[0][1] = c01; tile[1][0] = c10; tile[1][1] = c11;                       \
    tile[2][0] = c20; tile[2][1] = c21; tile[3][0] = c30; tile[3][1] = c31;                       \
    tile[4][0] = c40; tile[4][1] = c41; tile[5][0] = c50; tile[5][1] = c51;                       \
    for (r = 0; r < rows; r++) {                                                                  \
        *(V*)(cp + r * sc) = tile[r][0];                                                          \
        if (two) *(V*)(cp + r * sc + W) = tile[r][1];                                             \
    }                                                                                             \
}
CYNET_GEMM_TILE(cynet_tile_f8, float, cynet_f8, 8)
CYNET_GEMM_TILE(cynet_tile_f16, float, cynet_f16, 16)
CYNET_GEMM_TILE(cynet_tile_d4, double, cynet_d4, 4)
CYNET_GEMM_TILE(cynet_tile_d8, double, cynet_d8, 8)

/* The panel loop: tiles of two and one wide vectors (width WW), then narrow ones (WN <= WW).
   When N is not a multiple of WN, B is first copied into `tail` with its rows zero-padded to
   NP columns, and each panel's tile of C goes through `tail` too (NP x MR values after B). */
#define CYNET_GEMM_DRIVER(ATTR, NAME, T, WIDE, WW, NARROW, WN)                                   \
ATTR static void NAME(const T* Ap, Py_ssize_t M, Py_ssize_t K, const T* B, Py_ssize_t sb,         \
                      Py_ssize_t N, T* C, Py_ssize_t sc, Py_ssize_t p0, Py_ssize_t p1, T* tail) { \
    Py_ssize_t p, j, k, r, n, rows, NP = (N + WN - 1) / WN * WN, ldb = sb, ldc = sc;              \
    const T* b = B;                                                                               \
    T* ct = tail + K * NP;                                                                        \
    if (NP != N) {                                                                                \
        for (k = 0; k < K; k++)                                                                   \
            for (n = 0; n < NP; n++) tail[k * NP + n] = n < N ? B[k * sb + n] : (T)0;             \
        b = tail; ldb = NP; ldc = NP;                                                             \
    }                                                                                             \
    for (p = p0; p < p1; p++) {                                                                   \
        const T* ap = Ap + p * K * CYNET_GEMM_MR;                                                 \
        T* cp = C + p * CYNET_GEMM_MR * sc;                                                       \
        T* out = NP != N ? ct : cp;                                                               \
        rows = M - p * CYNET_GEMM_MR < CYNET_GEMM_MR ? M - p * CYNET_GEMM_MR : CYNET_GEMM_MR;     \
        for (j = 0; j + 2 * WW <= NP; j += 2 * WW) WIDE(ap, b + j, ldb, K, out + j, ldc, rows, 1); \
        if (j + WW <= NP) { WIDE(ap, b + j, ldb, K, out + j, ldc, rows, 0); j += WW; }            \
        for (; j < NP; j += WN) NARROW(ap, b + j, ldb, K, out + j, ldc, rows, 0);                 \
        if (NP != N)                                                                              \
            for (r = 0; r < rows; r++)                                                            \
                for (n = 0; n < N; n++) cp[r * sc + n] = ct[r * NP + n];                          \
    }                                                                                             \
}
CYNET_GEMM_DRIVER(CYNET_CLONES, cynet_gemm256_f, float, cynet_tile_f8, 8, cynet_tile_f8, 8)
CYNET_GEMM_DRIVER(CYNET_CLONES, cynet_gemm256_d, double, cynet_tile_d4, 4, cynet_tile_d4, 4)
#if CYNET_GEMM_512
CYNET_GEMM_DRIVER(__attribute__((target("arch=x86-64-v4"))), cynet_gemm512_f, float,
                  cynet_tile_f16, 16, cynet_tile_f8, 8)
CYNET_GEMM_DRIVER(__attribute__((target("arch=x86-64-v4"))), cynet_gemm512_d, double,
                  cynet_tile_d8, 8, cynet_tile_d4, 4)
#endif

#if CYNET_GEMM_512
#define CYNET_GEMM_ENTRY(T, S)                                                                    \
static void cynet_gemm_##S(const T* Ap, Py_ssize_t M, Py_ssize_t K, const T* B, Py_ssize_t sb,    \
                           Py_ssize_t N, T* C, Py_ssize_t sc, Py_ssize_t p0, Py_ssize_t p1,       \
                           T* tail) {                                                             \
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")                   \
            && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))          \
        cynet_gemm512_##S(Ap, M, K, B, sb, N, C, sc, p0, p1, tail);                               \
    else                                                                                          \
        cynet_gemm256_##S(Ap, M, K, B, sb, N, C, sc, p0, p1, tail);                               \
}
CYNET_GEMM_ENTRY(float, f)
CYNET_GEMM_ENTRY(double, d)
#else
#define cynet_gemm_f cynet_gemm256_f
#define cynet_gemm_d cynet_gemm256_d
#endif

#else  /* no vector extensions: a plain loop (same results up to rounding) */

#define CYNET_GEMM_PLAIN(T, S)                                                                    \
static void cynet_gemm_##S(const T* Ap, Py_ssize_t M, Py_ssize_t K, const T* B, Py_ssize_t sb,    \
                           Py_ssize_t N, T* C, Py_ssize_t sc, Py_ssize_t p0, Py_ssize_t p1,       \
                           T* tail) {                                                             \
    Py_ssize_t p, r, n, k, m; T s;                                                                \
    (void)tail;                                                                                   \
    for (p = p0; p < p1; p++)                                                                     \
        for (r = 0; r < CYNET_GEMM_MR && (m = p * CYNET_GEMM_MR + r) < M; r++)                    \
            for (n = 0; n < N; n++) {                                                             \
                for (s = 0, k = 0; k < K; k++)                                                    \
                    s += Ap[(p * K + k) * CYNET_GEMM_MR + r] * B[k * sb + n];                     \
                C[m * sc + n] = s;                                                                \
            }                                                                                     \
}
CYNET_GEMM_PLAIN(float, f)
CYNET_GEMM_PLAIN(double, d)

#endif  /* __GNUC__ */
#endif  /* CYNET_GEMM_H */
