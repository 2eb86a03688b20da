/* cynet_gemm.h: single-threaded matrix products C = A B that run without the GIL, inside an
   OpenMP team or a time loop (included from rnn.pyx and conv.pyx, after cynet_simd.h).
   cynet_gemm_S: the product of one recurrent step, with A packed ONCE per sequence (below).
   cynet_gemms_S: A read in place with any strides, A[m, k] at A + m * sa + k * sk (row scheme
   only): a convolution's patch matrix (sa = K, sk = 1) or its transpose (sa = 1, sk = K), which
   stay in cache for the block they belong to, so packing them would cost a pass for nothing.

   A recurrent layer multiplies the same weights A (M x K; M = gates * units, K = units) by a
   thin B (K x N, N = batch) at every timestep. A BLAS call repacks A at every step (a profile
   of an LSTM shows OpenBLAS's copy routines: bench/README.md, "Small GEMM") and costs a Python
   call per step. Here A is packed once into panels stored k-major; each step streams the panels past B,
   which stays in L1/L2, and copies nothing.

   Layouts (T = float or double, suffix f / d):
     A[m, k]  at A + m * sam + k * sak   (any strides: a transposed weight needs no copy)
     Ap       packed A: cynet_gemm_packed_size(M, K, N, sizeof(T)) values, zero-padded
     B[k, n]  at B + k * sb + n          (rows of N contiguous samples, any row stride)
     C[m, n]  at C + m * sc + n
   `tail` is a scratch of CYNET_GEMM_TAIL(K, N) values: the row scheme passes B and C through
   it, zero-padded to whole vectors, when N is not a multiple of 8 (float) / 4 (double); the
   column scheme copies B into it tile by tile.

   Two schemes; cynet_gemm_cols picks the cheaper for (M, N) and packs and multiplies alike.
   Row scheme (vectors along the batch): panels of CYNET_GEMM_MR rows; an MR x (two vectors)
   tile of C lives in 12 registers; each k loads two vectors of B, broadcasts MR values of A and
   issues 2 * MR FMAs. Fastest when N is a multiple of the vector width (where it beats OpenBLAS on
   a recurrent step's shapes), but a ragged batch is computed padded: N 25 as 32.
   Column scheme (vectors along the gates; AVX-512 only): panels of two vectors of rows
   (CYNET_GEMM_MC); a (two vectors) x nb tile, nb <= CYNET_GEMM_NB columns, lives in 2 * nb
   registers; each k loads two vectors of A and broadcasts nb values of B. No padding of N, at
   the price of transposing each finished tile through a small buffer: faster than the row
   scheme on a ragged N, slower on a multiple of the vector width, hence cynet_gemm_cols (the
   measurements: bench/README.md, "Small GEMM"). Written with GCC vector extensions: 64-byte vectors in a build for AVX-512, 32-byte
   ones in CYNET_CLONES builds for the baseline and AVX2+FMA (row scheme), chosen at run time;
   other compilers get a plain loop.

   Cython declares all of this once, in _gemm.pxd (cimport it; _gemm.pyx wraps the products for
   the tests, tests/kernels/test_gemm.py). */
#ifndef CYNET_GEMM_H
#define CYNET_GEMM_H
#include "cynet_simd.h"
#include "cynet_check.h"   /* CY_AT: the scratch accesses below are checked in the debug build */

/* 1 where the vector kernels are built (GCC vector extensions): then these products beat a BLAS
   call on the sizes the kernels use; the plain fallback below would not. */
#if defined(__GNUC__)
#define CYNET_GEMM_VECTOR 1
#else
#define CYNET_GEMM_VECTOR 0
#endif

#define CYNET_GEMM_MR 6
#define CYNET_GEMM_NB 13
#define CYNET_GEMM_MC(sz) ((Py_ssize_t)(128 / (sz)))
#define CYNET_GEMM_TAIL(K, N) (((K) + CYNET_GEMM_MR) * ((N) + 8))
/* scratch of cynet_gemms_S (strided A): the row scheme's, and a last panel of A packed */
#define CYNET_GEMMS_TAIL(K, N) (CYNET_GEMM_TAIL(K, N) + CYNET_GEMM_MR * (K))

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && defined(__x86_64__) \
    && defined(__linux__) && defined(__GLIBC__)
#define CYNET_GEMM_512 1
#else
#define CYNET_GEMM_512 0
#endif

static inline int cynet_gemm_has512(void) {
#if CYNET_GEMM_512
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#else
    return 0;
#endif
}

static inline Py_ssize_t cynet_gemm_up(Py_ssize_t x, Py_ssize_t m) { return (x + m - 1) / m * m; }

/* 1 when the column scheme is cheaper for an (M x K) (K x N) product of sz-byte elements: the
   row scheme computes up(M, MR) x up(N, one vector), the column scheme up(M, MC) x N, with a
   1/32 surcharge for its transposed stores */
static inline int cynet_gemm_cols(Py_ssize_t M, Py_ssize_t N, Py_ssize_t sz) {
    return cynet_gemm_has512()
        && 33 * cynet_gemm_up(M, CYNET_GEMM_MC(sz)) * N
           < 32 * cynet_gemm_up(M, CYNET_GEMM_MR) * cynet_gemm_up(N, 64 / sz);
}

/* rows of a packed panel */
static inline Py_ssize_t cynet_gemm_height(Py_ssize_t M, Py_ssize_t N, Py_ssize_t sz) {
    return cynet_gemm_cols(M, N, sz) ? CYNET_GEMM_MC(sz) : CYNET_GEMM_MR;
}

static inline Py_ssize_t cynet_gemm_packed_size(Py_ssize_t M, Py_ssize_t K, Py_ssize_t N, Py_ssize_t sz) {
    return cynet_gemm_up(M, cynet_gemm_height(M, N, sz)) * K;
}

#define CYNET_GEMM_PACK(T, S)                                                                     \
/* Ap <- A packed for products with N columns: panels of H rows, each K rows of H values; the   \
   loops run along A's unit stride (a row-major weight is read row by row, its transpose too) */ \
CYNET_UNUSED static void cynet_gemm_pack_##S(const T* A, Py_ssize_t sam, Py_ssize_t sak,                       \
                                Py_ssize_t M, Py_ssize_t K, Py_ssize_t N, T* Ap) {                \
    Py_ssize_t p, k, k0, r, H = cynet_gemm_height(M, N, sizeof(T));                            \
    for (p = 0; p < M; p += H, Ap += H * K) {                                                     \
        Py_ssize_t rows = M - p < H ? M - p : H;                                                  \
        if (sak == 1) {   /* blocks of 64 k: the panel's lines they write stay in L1 */          \
            for (k0 = 0; k0 < K; k0 += 64)                                                        \
                for (r = 0; r < rows; r++)                                                        \
                    for (k = k0; k < K && k < k0 + 64; k++) Ap[k * H + r] = A[(p + r) * sam + k]; \
        } else {                                                                                  \
            for (k = 0; k < K; k++)                                                               \
                for (r = 0; r < rows; r++) Ap[k * H + r] = A[(p + r) * sam + k * sak];            \
        }                                                                                         \
        for (k = 0; k < K; k++)                                                                   \
            for (r = rows; r < H; r++) Ap[k * H + r] = (T)0;                                      \
    }                                                                                             \
}
CYNET_GEMM_PACK(float, f)
CYNET_GEMM_PACK(double, d)

#if defined(__GNUC__)

typedef float cynet_f8 __attribute__((vector_size(32), aligned(4)));
typedef float cynet_f16 __attribute__((vector_size(64), aligned(4)));
typedef double cynet_d4 __attribute__((vector_size(32), aligned(8)));
typedef double cynet_d8 __attribute__((vector_size(64), aligned(8)));

/* rows x (two vectors, or one when !two) of C at cp from MR rows of A and the columns of B at
   bp: row r of A at ap + r * sa, stepping by sk along k (a packed panel: sa 1, sk MR, constants
   wherever this is inlined; a row-major A: sa its row stride, sk 1) */
#define CYNET_GEMM_TILE(NAME, T, V, W)                                                            \
static inline __attribute__((always_inline)) void NAME(                                           \
        const T* ap, Py_ssize_t sa, Py_ssize_t sk, const T* bp, Py_ssize_t sb, Py_ssize_t K,      \
        T* cp, Py_ssize_t sc, Py_ssize_t rows, int two) {                                         \
    Py_ssize_t k, r;                                                                              \
    V z = {0}, c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z,                              \
      c30 = z, c31 = z, c40 = z, c41 = z, c50 = z, c51 = z, b0, b1, tile[CYNET_GEMM_MR][2];       \
    if (two) {                                                                                    \
        for (k = 0; k < K; k++, ap += sk, bp += sb) {                                             \
            b0 = *(const V*)bp; b1 = *(const V*)(bp + W);                                         \
            c00 += ap[0] * b0; c01 += ap[0] * b1; c10 += ap[sa] * b0; c11 += ap[sa] * b1;         \
            c20 += ap[2 * sa] * b0; c21 += ap[2 * sa] * b1;                                       \
            c30 += ap[3 * sa] * b0; c31 += ap[3 * sa] * b1;                                       \
            c40 += ap[4 * sa] * b0; c41 += ap[4 * sa] * b1;                                       \
            c50 += ap[5 * sa] * b0; c51 += ap[5 * sa] * b1;                                       \
        }                                                                                         \
    } else {                                                                                      \
        for (k = 0; k < K; k++, ap += sk, bp += sb) {                                             \
            b0 = *(const V*)bp;                                                                   \
            c00 += ap[0] * b0; c10 += ap[sa] * b0; c20 += ap[2 * sa] * b0;                       \
            c30 += ap[3 * sa] * b0; c40 += ap[4 * sa] * b0; c50 += ap[5 * sa] * b0;               \
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

/* The row scheme's panel loop: tiles of two and one wide vectors (width WW), then narrow ones
   (WN <= WW). When N is not a multiple of WN, B is first copied into `tail` with its rows
   zero-padded to NP columns, and each panel's tile of C goes through `tail` too (NP x MR values
   after B). PACKED (a constant): A is packed panels (sa, sk unused); else A[m, k] is at
   A + m * sa + k * sk, and a last panel of fewer than MR rows is packed, zero-padded, into
   `tail` (MR x K values after the tile of C) so that no row past M is read. Every scalar access
   to `tail` is checked against its documented size (TN) in the debug build. */
#define CYNET_GEMM_DRIVER(ATTR, NAME, T, WIDE, WW, NARROW, WN, PACKED)                           \
ATTR CYNET_UNUSED static void NAME(const T* A, Py_ssize_t sa, Py_ssize_t sk, Py_ssize_t M, Py_ssize_t K,       \
                      const T* B, Py_ssize_t sb, Py_ssize_t N, T* C, Py_ssize_t sc, T* tail) {    \
    Py_ssize_t p, j, k, r, n, rows, NP = (N + WN - 1) / WN * WN, ldb = sb, ldc = sc, asa, ask;    \
    const Py_ssize_t TN = (PACKED) ? CYNET_GEMM_TAIL(K, N) : CYNET_GEMMS_TAIL(K, N);            \
    (void)TN;   /* read by CY_AT only in the debug build */                                       \
    const T* b = B;                                                                               \
    const T* ap;                                                                                  \
    T* ct = tail + K * NP;                                                                        \
    T* pk = ct + NP * CYNET_GEMM_MR;                                                              \
    if (NP != N) {                                                                                \
        for (k = 0; k < K; k++)                                                                   \
            for (n = 0; n < NP; n++) tail[CY_AT(k * NP + n, TN)] = n < N ? B[k * sb + n] : (T)0;  \
        b = tail; ldb = NP; ldc = NP;                                                             \
        (void)CY_SPAN(K * NP, NP * CYNET_GEMM_MR, TN);   /* the tile of C after B */               \
    }                                                                                             \
    for (p = 0; p * CYNET_GEMM_MR < M; p++) {                                                     \
        T* cp = C + p * CYNET_GEMM_MR * sc;                                                       \
        T* out = NP != N ? ct : cp;                                                               \
        rows = M - p * CYNET_GEMM_MR < CYNET_GEMM_MR ? M - p * CYNET_GEMM_MR : CYNET_GEMM_MR;     \
        ap = A + p * K * CYNET_GEMM_MR; asa = 1; ask = CYNET_GEMM_MR;                             \
        if (!(PACKED)) {                                                                          \
            ap = A + p * CYNET_GEMM_MR * sa; asa = sa; ask = sk;                                  \
            if (rows < CYNET_GEMM_MR) {                                                           \
                for (k = 0; k < K; k++)                                                           \
                    for (r = 0; r < CYNET_GEMM_MR; r++)                                           \
                        pk[CY_AT(k * CYNET_GEMM_MR + r, TN - (pk - tail))] =                      \
                            r < rows ? ap[r * sa + k * sk] : (T)0;                                \
                ap = pk; asa = 1; ask = CYNET_GEMM_MR;                                            \
            }                                                                                     \
        }                                                                                         \
        for (j = 0; j + 2 * WW <= NP; j += 2 * WW)                                                \
            WIDE(ap, asa, ask, b + j, ldb, K, out + j, ldc, rows, 1);                             \
        if (j + WW <= NP) { WIDE(ap, asa, ask, b + j, ldb, K, out + j, ldc, rows, 0); j += WW; }  \
        for (; j < NP; j += WN) NARROW(ap, asa, ask, b + j, ldb, K, out + j, ldc, rows, 0);       \
        if (NP != N)                                                                              \
            for (r = 0; r < rows; r++)                                                            \
                for (n = 0; n < N; n++) cp[r * sc + n] = ct[CY_AT(r * NP + n, NP * CYNET_GEMM_MR)]; \
    }                                                                                             \
}
CYNET_GEMM_DRIVER(CYNET_CLONES, cynet_gemm256_f, float, cynet_tile_f8, 8, cynet_tile_f8, 8, 1)
CYNET_GEMM_DRIVER(CYNET_CLONES, cynet_gemm256_d, double, cynet_tile_d4, 4, cynet_tile_d4, 4, 1)
CYNET_GEMM_DRIVER(CYNET_CLONES, cynet_gemms256_f, float, cynet_tile_f8, 8, cynet_tile_f8, 8, 0)
CYNET_GEMM_DRIVER(CYNET_CLONES, cynet_gemms256_d, double, cynet_tile_d4, 4, cynet_tile_d4, 4, 0)

#if CYNET_GEMM_512
#define CYNET_V4 __attribute__((target("arch=x86-64-v4")))
CYNET_GEMM_DRIVER(CYNET_V4, cynet_gemm512_f, float, cynet_tile_f16, 16, cynet_tile_f8, 8, 1)
CYNET_GEMM_DRIVER(CYNET_V4, cynet_gemm512_d, double, cynet_tile_d8, 8, cynet_tile_d4, 4, 1)
CYNET_GEMM_DRIVER(CYNET_V4, cynet_gemms512_f, float, cynet_tile_f16, 16, cynet_tile_f8, 8, 0)
CYNET_GEMM_DRIVER(CYNET_V4, cynet_gemms512_d, double, cynet_tile_d8, 8, cynet_tile_d4, 4, 0)

/* Column scheme: the (2W rows) x nb tile of C at c from the panel ap and the columns of B at b;
   nb is a constant wherever this is inlined, so the accumulators stay in registers */
#define CYNET_GEMM_CTILE(NAME, T, V, W)                                                           \
static inline __attribute__((always_inline)) void NAME(                                           \
        const T* ap, const T* b, Py_ssize_t sb, Py_ssize_t K, T* c, Py_ssize_t sc,                \
        Py_ssize_t rows, const int nb) {                                                          \
    Py_ssize_t k, r; int j;                                                                       \
    V z = {0}, acc[CYNET_GEMM_NB][2], a0, a1;                                                     \
    T tile[CYNET_GEMM_NB][2 * W] __attribute__((aligned(64)));                                    \
    for (j = 0; j < nb; j++) { acc[j][0] = z; acc[j][1] = z; }                                    \
    for (k = 0; k < K; k++, ap += 2 * W, b += sb) {                                               \
        a0 = *(const V*)ap; a1 = *(const V*)(ap + W);                                             \
        for (j = 0; j < nb; j++) { acc[j][0] += a0 * b[j]; acc[j][1] += a1 * b[j]; }              \
    }                                                                                             \
    for (j = 0; j < nb; j++) { *(V*)tile[j] = acc[j][0]; *(V*)(tile[j] + W) = acc[j][1]; }        \
    for (r = 0; r < rows; r++)                                                                    \
        for (j = 0; j < nb; j++) c[r * sc + j] = tile[j][r];                                      \
}
CYNET_GEMM_CTILE(cynet_ctile_f16, float, cynet_f16, 16)
CYNET_GEMM_CTILE(cynet_ctile_d8, double, cynet_d8, 8)

/* The column scheme's panel loop: N split into the fewest tiles of at most NB columns, as
   even as possible (25 = 13 + 12), so that no tile is left with too few accumulators: a tile
   of 13 columns keeps 26 accumulators in registers, and each vector of A loaded serves 13 FMAs
   (at most 6 columns before: the LSTM step products of a batch of 25 took 9-11% longer). B is first
   copied into `bt` as one contiguous K x N block: read in place, its rows lie a whole sequence
   apart, which the prefetchers do not follow, and a copy tile by tile (K x nb per tile) costs
   more than the one copy (bench/README.md, "Small GEMM"). */
#define CYNET_GEMM_CDRIVER(NAME, T, TILE, W)                                                      \
__attribute__((target("arch=x86-64-v4"))) static void NAME(                                       \
        const T* Ap, Py_ssize_t M, Py_ssize_t K, const T* B, Py_ssize_t sb, Py_ssize_t N, T* C,   \
        Py_ssize_t sc, T* bt) {                                                                   \
    Py_ssize_t p, t, k, j, n0, rows, nt = (N + CYNET_GEMM_NB - 1) / CYNET_GEMM_NB;                \
    int nb;                                                                                       \
    for (k = 0; k < K; k++)                                                                       \
        for (j = 0; j < N; j++) bt[CY_AT(k * N + j, CYNET_GEMM_TAIL(K, N))] = B[k * sb + j];      \
    for (p = 0; p < M; p += 2 * W) {                                                              \
        const T* ap = Ap + p * K;                                                                 \
        rows = M - p < 2 * W ? M - p : 2 * W;                                                     \
        for (n0 = 0, t = 0; t < nt; t++, n0 += nb) {                                              \
            const T* b = bt + n0; T* c = C + p * sc + n0;                                         \
            nb = (int)(N / nt + (t < N % nt));                                                    \
            switch (nb) {                                                                         \
            case 13: TILE(ap, b, N, K, c, sc, rows, 13); break;                                   \
            case 12: TILE(ap, b, N, K, c, sc, rows, 12); break;                                   \
            case 11: TILE(ap, b, N, K, c, sc, rows, 11); break;                                   \
            case 10: TILE(ap, b, N, K, c, sc, rows, 10); break;                                   \
            case 9: TILE(ap, b, N, K, c, sc, rows, 9); break;                                     \
            case 8: TILE(ap, b, N, K, c, sc, rows, 8); break;                                     \
            case 7: TILE(ap, b, N, K, c, sc, rows, 7); break;                                     \
            case 6: TILE(ap, b, N, K, c, sc, rows, 6); break;                                     \
            case 5: TILE(ap, b, N, K, c, sc, rows, 5); break;                                     \
            case 4: TILE(ap, b, N, K, c, sc, rows, 4); break;                                     \
            case 3: TILE(ap, b, N, K, c, sc, rows, 3); break;                                     \
            case 2: TILE(ap, b, N, K, c, sc, rows, 2); break;                                     \
            default: TILE(ap, b, N, K, c, sc, rows, 1); break;                                    \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
}
CYNET_GEMM_CDRIVER(cynet_gemmc_f, float, cynet_ctile_f16, 16)
CYNET_GEMM_CDRIVER(cynet_gemmc_d, double, cynet_ctile_d8, 8)

#define CYNET_GEMM_ENTRY(T, S)                                                                    \
CYNET_UNUSED static void cynet_gemm_##S(const T* Ap, Py_ssize_t M, Py_ssize_t K, const T* B, Py_ssize_t sb,    \
                           Py_ssize_t N, T* C, Py_ssize_t sc, T* tail) {                          \
    if (cynet_gemm_cols(M, N, sizeof(T)))                                                         \
        cynet_gemmc_##S(Ap, M, K, B, sb, N, C, sc, tail);                                         \
    else if (cynet_gemm_has512())                                                                 \
        cynet_gemm512_##S(Ap, 1, CYNET_GEMM_MR, M, K, B, sb, N, C, sc, tail);                     \
    else                                                                                          \
        cynet_gemm256_##S(Ap, 1, CYNET_GEMM_MR, M, K, B, sb, N, C, sc, tail);                     \
}                                                                                                 \
CYNET_UNUSED static void cynet_gemms_##S(const T* A, Py_ssize_t sa, Py_ssize_t sk, Py_ssize_t M, Py_ssize_t K, \
                            const T* B, Py_ssize_t sb, Py_ssize_t N, T* C, Py_ssize_t sc,         \
                            T* tail) {                                                            \
    if (cynet_gemm_has512())                                                                      \
        cynet_gemms512_##S(A, sa, sk, M, K, B, sb, N, C, sc, tail);                               \
    else                                                                                          \
        cynet_gemms256_##S(A, sa, sk, M, K, B, sb, N, C, sc, tail);                               \
}
CYNET_GEMM_ENTRY(float, f)
CYNET_GEMM_ENTRY(double, d)
#else
#define cynet_gemm_f(Ap, M, K, B, sb, N, C, sc, tail) \
    cynet_gemm256_f(Ap, 1, CYNET_GEMM_MR, M, K, B, sb, N, C, sc, tail)
#define cynet_gemm_d(Ap, M, K, B, sb, N, C, sc, tail) \
    cynet_gemm256_d(Ap, 1, CYNET_GEMM_MR, M, K, B, sb, N, C, sc, tail)
#define cynet_gemms_f cynet_gemms256_f
#define cynet_gemms_d cynet_gemms256_d
#endif

#else  /* no vector extensions: a plain loop over the row scheme (same results up to rounding) */

#define CYNET_GEMM_PLAIN(T, S)                                                                    \
CYNET_UNUSED static void cynet_gemm_##S(const T* Ap, Py_ssize_t M, Py_ssize_t K, const T* B, Py_ssize_t sb,    \
                           Py_ssize_t N, T* C, Py_ssize_t sc, T* tail) {                          \
    Py_ssize_t p, r, n, k, m; T s;                                                                \
    (void)tail;                                                                                   \
    for (p = 0; p * CYNET_GEMM_MR < M; p++)                                                       \
        for (r = 0; r < CYNET_GEMM_MR && (m = p * CYNET_GEMM_MR + r) < M; r++)                    \
            for (n = 0; n < N; n++) {                                                             \
                for (s = 0, k = 0; k < K; k++)                                                    \
                    s += Ap[(p * K + k) * CYNET_GEMM_MR + r] * B[k * sb + n];                     \
                C[m * sc + n] = s;                                                                \
            }                                                                                     \
}
CYNET_GEMM_PLAIN(float, f)
CYNET_GEMM_PLAIN(double, d)

#define CYNET_GEMMS_PLAIN(T, S)                                                                   \
CYNET_UNUSED static void cynet_gemms_##S(const T* A, Py_ssize_t sa, Py_ssize_t sk, Py_ssize_t M, Py_ssize_t K, \
                            const T* B, Py_ssize_t sb, Py_ssize_t N, T* C, Py_ssize_t sc,         \
                            T* tail) {                                                            \
    Py_ssize_t m, n, k; T s;                                                                      \
    (void)tail;                                                                                   \
    for (m = 0; m < M; m++)                                                                       \
        for (n = 0; n < N; n++) {                                                                 \
            for (s = 0, k = 0; k < K; k++) s += A[m * sa + k * sk] * B[k * sb + n];               \
            C[m * sc + n] = s;                                                                    \
        }                                                                                         \
}
CYNET_GEMMS_PLAIN(float, f)
CYNET_GEMMS_PLAIN(double, d)

#endif  /* __GNUC__ */
#endif  /* CYNET_GEMM_H */
