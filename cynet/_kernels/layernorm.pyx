"""Layer and group normalization kernels (Keras 3 semantics), typed Cython over C loops.

Twin: layernorm_numpy.py (same functions, signatures and results up to rounding: the compiled
loops may contract a multiply and an add into one FMA, and sum in another order).

Layer normalization: x is viewed as (M, C), each of the M rows normalised over its C
contiguous values. Per row, in one visit that keeps the row in L1:
  forward   one pass for the statistics, about the row's first value x0 (a shift that makes
            the one-pass formula accurate whatever the offset: s1 = sum(x - x0), s2 = sum((x - x0)^2),
            mean = x0 + s1 / C, var = s2 / C - (s1 / C)^2, accumulated in double), then
            s = 1 / sqrt(var + epsilon), y = ((x - c) * s) * gamma + beta with c = mean
            (c = 0 with rms_scaling, Keras's deprecated variant: y = x * s * gamma).
  backward  xh = (x - c) * s, w = dy * gamma; A = sum(w), B = sum(w * xh) in double;
            dx = s * w - (s * B / C) * (x - mean) * s - s * A / C (A = 0 with rms_scaling);
            dgamma += dy * xh, dbeta += dy: summed in x's dtype over blocks of CYNET_LN_BLOCK
            rows, each block added to per-thread double partials, which
            are added in thread order (deterministic for a given thread count).
The row reductions run on vectors of lanes (GCC vector extensions) added in a fixed order: GCC
does not reassociate a plain floating sum, so a scalar loop would stay scalar. For float32
data the lanes hold float partial sums of at most 8 terms each, flushed into the double totals
every 256 elements; a row whose float partials overflow (|x| ~ 1e19 and up) is summed again
with every term in double, so the statistics stay those of the twin.

Group normalization: x is viewed as (N, S, C), channels last (S: every spatial position),
channels in G groups of K = C / G; each (sample, group) is normalised over its S * K values
and the affine is per channel. Per sample the statistics are column sums over the S rows
(vectorised across channels, whatever K is, instance normalization's K = 1 included) reduced
per group; the backward pass is the same formula as the layer's with per-channel coefficients.

Every loop is C built by CYNET_CLONES (baseline, AVX2+FMA and AVX-512, picked at load time).
Rows (samples) are split over threads in contiguous blocks; the team comes from the thread
policy (threads_for(work, COST_WINDOW)).
"""
from cython cimport floating
from cython.parallel cimport prange

import numpy as np

from cynet._kernels._openmp cimport threads_for, COST_WINDOW

__all__ = ["layer_norm_forward", "layer_norm_backward", "group_norm_forward", "group_norm_backward"]

cdef extern from *:
    """
    #include <math.h>
    #include "cynet_simd.h"

    /* Rows of up to CYNET_LN_PF_BYTES: the forward pass prefetches x two rows ahead; the
       backward pass prefetches the next row of dx for writing (its read-for-ownership then
       overlaps this row's reductions) and the next row of dy and x for reading: on the idle
       VM, against the two-rows-at-a-time backward before it, 0.93x on 4096 rows of 512 floats
       and 0.94-0.96x on rows of 256 (without the read prefetch rows of 256 ran 1.04x; two rows
       ahead, 0.97x and 0.90x). Longer rows are left to the hardware prefetcher. */
    #define CYNET_LN_PF_BYTES 16384
    #define CYNET_LN_BLOCK 16   /* rows whose dgamma, dbeta terms are summed in T before double */

    /* The row reductions. GCC does not reassociate a floating sum, so a plain loop stays scalar:
       with GCC's (and clang's) vector extensions the sums run on two vectors of lanes each,
       whatever the clone's ISA, in a fixed order; elsewhere (CYNET_LN_VEC 0), scalar. For
       float data the lanes are float partial sums of at most CYNET_LN_FLUSH / 32 terms, each
       added into the double totals when full: double accumulation at a fraction of the cost
       of converting every element (the float partials carry at most 8 roundings). Inlined
       into the CYNET_CLONES callers, so they compile for each clone's ISA. */
    #define CYNET_LN_FLUSH 256
    #if defined(__GNUC__)
    #define CYNET_LN_VEC 1
    #define CYNET_LN_INLINE static inline __attribute__((always_inline))
    typedef double cynet_v8d __attribute__((vector_size(64)));
    typedef float cynet_v16f __attribute__((vector_size(64)));
    typedef float cynet_v8f __attribute__((vector_size(32)));
    CYNET_LN_INLINE double cynet_ln_hsum8d(cynet_v8d v) {
        return (((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])));
    }
    /* the 16 lanes in double, as a tree (a chain of 16 dependent adds would cost about a third
       of a 256-value row's statistics pass) */
    CYNET_LN_INLINE double cynet_ln_hsum16f(cynet_v16f v) {
        cynet_v8f lo, hi;
        memcpy(&lo, &v, 32); memcpy(&hi, (const char*)&v + 32, 32);
        return cynet_ln_hsum8d(__builtin_convertvector(lo, cynet_v8d) + __builtin_convertvector(hi, cynet_v8d));
    }
    #else
    #define CYNET_LN_VEC 0
    #define CYNET_LN_INLINE static inline
    #endif

    /* s1 = sum(x - x0), s2 = sum((x - x0)^2); x0 is x's first value (exact in T) */
    CYNET_LN_INLINE void cynet_ln_stats_f(const float* x, Py_ssize_t n, double* s1, double* s2) {
        Py_ssize_t i = 0; double r1 = 0.0, r2 = 0.0; const float x0 = x[0];
    #if CYNET_LN_VEC
        while (i + 32 <= n) {
            cynet_v16f a1 = {0}, b1 = {0}, a2 = {0}, b2 = {0}, u, v;
            Py_ssize_t e = i + CYNET_LN_FLUSH <= n ? i + CYNET_LN_FLUSH : n - (n - i) % 32;
            for (; i < e; i += 32) {
                memcpy(&u, x + i, 64); memcpy(&v, x + i + 16, 64);
                u -= x0; v -= x0;
                a1 += u; b1 += v; a2 += u * u; b2 += v * v;
            }
            r1 += cynet_ln_hsum16f(a1 + b1); r2 += cynet_ln_hsum16f(a2 + b2);
        }
        if ((r1 - r1) != 0.0 || (r2 - r2) != 0.0) {   /* a float partial overflowed (|x| ~ 1e20): */
            r1 = 0.0; r2 = 0.0;                       /* the row again, every term in double */
            for (i = 0; i < n; i++) { double d = (double)x[i] - (double)x0; r1 += d; r2 += d * d; }
        }
    #endif
        for (; i < n; i++) { double d = (double)x[i] - (double)x0; r1 += d; r2 += d * d; }
        *s1 = r1; *s2 = r2;
    }
    CYNET_LN_INLINE void cynet_ln_stats_d(const double* x, Py_ssize_t n, double* s1, double* s2) {
        Py_ssize_t i = 0; double r1 = 0.0, r2 = 0.0; const double x0 = x[0];
    #if CYNET_LN_VEC
        if (n >= 16) {
            cynet_v8d a1 = {0}, b1 = {0}, a2 = {0}, b2 = {0}, u, v;
            for (; i + 16 <= n; i += 16) {
                memcpy(&u, x + i, 64); memcpy(&v, x + i + 8, 64);
                u -= x0; v -= x0;
                a1 += u; b1 += v; a2 += u * u; b2 += v * v;
            }
            r1 = cynet_ln_hsum8d(a1 + b1); r2 = cynet_ln_hsum8d(a2 + b2);
        }
    #endif
        for (; i < n; i++) { double d = x[i] - x0; r1 += d; r2 += d * d; }
        *s1 = r1; *s2 = r2;
    }
    /* A = sum(w), B = sum(w * ((x - c) * st)), w = dy * g: products in T, sums as above */
    CYNET_LN_INLINE void cynet_ln_gsums_f(const float* dy, const float* x, const float* g, Py_ssize_t n,
                                          float c, float st, double* A, double* B) {
        Py_ssize_t i = 0; double r1 = 0.0, r2 = 0.0;
    #if CYNET_LN_VEC
        while (i + 32 <= n) {
            cynet_v16f a1 = {0}, b1 = {0}, a2 = {0}, b2 = {0}, d, xv, gv, w;
            Py_ssize_t e = i + CYNET_LN_FLUSH <= n ? i + CYNET_LN_FLUSH : n - (n - i) % 32;
            for (; i < e; i += 32) {
                memcpy(&d, dy + i, 64); memcpy(&xv, x + i, 64); memcpy(&gv, g + i, 64);
                w = d * gv; a1 += w; a2 += w * ((xv - c) * st);
                memcpy(&d, dy + i + 16, 64); memcpy(&xv, x + i + 16, 64); memcpy(&gv, g + i + 16, 64);
                w = d * gv; b1 += w; b2 += w * ((xv - c) * st);
            }
            r1 += cynet_ln_hsum16f(a1 + b1); r2 += cynet_ln_hsum16f(a2 + b2);
        }
        if ((r1 - r1) != 0.0 || (r2 - r2) != 0.0) {   /* a float partial overflowed: again in double */
            r1 = 0.0; r2 = 0.0;
            for (i = 0; i < n; i++) {
                float w = dy[i] * g[i];
                r1 += (double)w; r2 += (double)w * (double)((x[i] - c) * st);
            }
        }
    #endif
        for (; i < n; i++) { float w = dy[i] * g[i]; r1 += (double)w; r2 += (double)w * (double)((x[i] - c) * st); }
        *A = r1; *B = r2;
    }
    CYNET_LN_INLINE void cynet_ln_gsums_d(const double* dy, const double* x, const double* g, Py_ssize_t n,
                                          double c, double st, double* A, double* B) {
        Py_ssize_t i = 0; double r1 = 0.0, r2 = 0.0;
    #if CYNET_LN_VEC
        if (n >= 16) {
            cynet_v8d a1 = {0}, b1 = {0}, a2 = {0}, b2 = {0}, d, xv, gv, w;
            for (; i + 16 <= n; i += 16) {
                memcpy(&d, dy + i, 64); memcpy(&xv, x + i, 64); memcpy(&gv, g + i, 64);
                w = d * gv; a1 += w; a2 += w * ((xv - c) * st);
                memcpy(&d, dy + i + 8, 64); memcpy(&xv, x + i + 8, 64); memcpy(&gv, g + i + 8, 64);
                w = d * gv; b1 += w; b2 += w * ((xv - c) * st);
            }
            r1 = cynet_ln_hsum8d(a1 + b1); r2 = cynet_ln_hsum8d(a2 + b2);
        }
    #endif
        for (; i < n; i++) { double w = dy[i] * g[i]; r1 += w; r2 += w * ((x[i] - c) * st); }
        *A = r1; *B = r2;
    }

    /* The backward's second pass over a row (in L1 after cynet_ln_gsums): with h = (x - m) * st,
       dx = (st * (dy * g) + k2 * h) + k1, and the row's dgamma, dbeta terms added to fg, fb:
       fg += dy * ((x - c) * st), fb += dy (c = m, or 0 with rms_scaling). On vectors of lanes,
       as the sums: the auto-vectorised loop ran on half-width vectors in the AVX-512 clone. */
    #if CYNET_LN_VEC
    #define CYNET_LN_DX_VEC(V, L)                                                               \
        for (; i + L <= n; i += L) {                                                            \
            V d, xv, gv, a, b, o;                                                               \
            memcpy(&d, dy + i, sizeof(V)); memcpy(&xv, x + i, sizeof(V));                       \
            memcpy(&gv, g + i, sizeof(V)); memcpy(&a, fg + i, sizeof(V));                       \
            memcpy(&b, fb + i, sizeof(V));                                                      \
            o = (st * (d * gv) + k2 * ((xv - m) * st)) + k1;                                    \
            a += d * ((xv - c) * st); b += d;                                                   \
            memcpy(dx + i, &o, sizeof(V)); memcpy(fg + i, &a, sizeof(V));                       \
            memcpy(fb + i, &b, sizeof(V));                                                      \
        }
    #else
    #define CYNET_LN_DX_VEC(V, L)
    #endif
    #define CYNET_LN_DX(T, S, V, L)                                                             \
    CYNET_LN_INLINE void cynet_ln_dx_##S(const T* dy, const T* x, T* dx, const T* g, Py_ssize_t n, \
                                         T m, T c, T st, T k1, T k2, T* fg, T* fb) {             \
        Py_ssize_t i = 0;                                                                       \
        CYNET_LN_DX_VEC(V, L)                                                                   \
        for (; i < n; i++) {                                                                    \
            const T d = dy[i];                                                                  \
            dx[i] = (st * (d * g[i]) + k2 * ((x[i] - m) * st)) + k1;                            \
            fg[i] += d * ((x[i] - c) * st); fb[i] += d;                                         \
        }                                                                                       \
    }
    #if CYNET_LN_VEC
    CYNET_LN_DX(float, f, cynet_v16f, 16)
    CYNET_LN_DX(double, d, cynet_v8d, 8)
    #else
    CYNET_LN_DX(float, f, float, 1)
    CYNET_LN_DX(double, d, double, 1)
    #endif

    #define CYNET_LN_KERNELS(T, S)                                                              \
    /* layer norm forward over rows [0, M) of (M, C): the statistics in one pass, about the     \
       row's first value (in double: exact for any offset the data can have) */                 \
    CYNET_CLONES static void cynet_ln_fwd_##S(const T* x, T* y, Py_ssize_t M, Py_ssize_t C,     \
            const T* g, const T* b, double eps, int rms, T* mean, T* inv) {                      \
        Py_ssize_t r, i;                                                                         \
        const double inv_c = 1.0 / (double)C;                                                    \
        for (r = 0; r < M; r++) {                                                                \
            const T* xr = x + r * C; T* yr = y + r * C;                                          \
            const double x0 = (double)xr[0];                                                     \
            double s1, s2, mu, var, sd; T m, st, c;                                              \
            if (r + 2 < M && C * (Py_ssize_t)sizeof(T) <= CYNET_LN_PF_BYTES)                     \
                CYNET_PREFETCH(xr + 2 * C, C, sizeof(T), 0);                                     \
            cynet_ln_stats_##S(xr, C, &s1, &s2);                \
            mu = s1 * inv_c;                                                                     \
            var = s2 * inv_c - mu * mu;                                                          \
            var = var > 0.0 ? var : 0.0;                                                         \
            sd = 1.0 / sqrt(var + eps);                                                          \
            m = (T)(x0 + mu); st = (T)sd; c = rms ? (T)0 : m;                                    \
            mean[r] = m; inv[r] = st;                                                            \
            CYNET_IVDEP                                                                          \
            for (i = 0; i < C; i++) yr[i] = ((xr[i] - c) * st) * g[i] + b[i];                    \
        }                                                                                        \
    }                                                                                            \
    /* layer norm backward over rows [0, M), one row at a time (its dy and x stay in L1 between \
       the two passes; two or four rows at a time ran slower here); dg, db: C doubles,          \
       accumulated into; fg, fb: C T's of scratch (a block of rows' dgamma, dbeta terms, added  \
       to dg, db per block). */                                                                 \
    CYNET_CLONES static void cynet_ln_bwd_##S(const T* dy, const T* x, T* dx, Py_ssize_t M,     \
            Py_ssize_t C, const T* g, const T* mean, const T* inv, int rms, double* dg,         \
            double* db, T* fg, T* fb) {                                                          \
        Py_ssize_t r, i, r0;                                                                     \
        const double inv_c = 1.0 / (double)C;                                                    \
        for (r0 = 0; r0 < M; r0 += CYNET_LN_BLOCK) {                                             \
            const Py_ssize_t r1 = r0 + CYNET_LN_BLOCK < M ? r0 + CYNET_LN_BLOCK : M;             \
            for (i = 0; i < C; i++) { fg[i] = (T)0; fb[i] = (T)0; }                              \
            for (r = r0; r < r1; r++) {                                                          \
                const T m = mean[r], st = inv[r], c = rms ? (T)0 : m;                            \
                double A, B;                                                                     \
                if (r + 1 < M && C * (Py_ssize_t)sizeof(T) <= CYNET_LN_PF_BYTES) {               \
                    CYNET_PREFETCH(dx + (r + 1) * C, C, sizeof(T), 1);                           \
                    CYNET_PREFETCH(dy + (r + 1) * C, C, sizeof(T), 0);                           \
                    CYNET_PREFETCH(x + (r + 1) * C, C, sizeof(T), 0);                            \
                }                                                                                \
                cynet_ln_gsums_##S(dy + r * C, x + r * C, g, C, c, st, &A, &B);                  \
                if (rms) A = 0.0;                                                                \
                cynet_ln_dx_##S(dy + r * C, x + r * C, dx + r * C, g, C, m, c, st,               \
                                (T)(-(double)st * A * inv_c), (T)(-(double)st * B * inv_c),      \
                                fg, fb);                                                         \
            }                                                                                    \
            for (i = 0; i < C; i++) { dg[i] += (double)fg[i]; db[i] += (double)fb[i]; }          \
        }                                                                                        \
    }                                                                                            \
    /* group norm forward over samples [0, N) of (N, Sp, C), G groups of K = C / G channels.    \
       col, muc: C doubles; cm, cs: C T's of scratch */                                          \
    CYNET_CLONES static void cynet_gn_fwd_##S(const T* x, T* y, Py_ssize_t N, Py_ssize_t Sp,    \
            Py_ssize_t C, Py_ssize_t G, const T* g, const T* b, double eps, T* mean, T* inv,    \
            double* col, double* muc, T* cm, T* cs) {                                            \
        Py_ssize_t n, s, c, q, k, K = C / G;                                                     \
        const double cnt = (double)Sp * (double)K;                                               \
        for (n = 0; n < N; n++) {                                                                \
            const T* X = x + n * Sp * C; T* Y = y + n * Sp * C;                                  \
            for (c = 0; c < C; c++) col[c] = 0.0;                                                \
            for (s = 0; s < Sp; s++) {                                                           \
                const T* xr = X + s * C;                                                         \
                for (c = 0; c < C; c++) col[c] += (double)xr[c];                                 \
            }                                                                                    \
            for (q = 0; q < G; q++) {                                                            \
                double mu = 0.0;                                                                 \
                for (k = 0; k < K; k++) mu += col[q * K + k];                                    \
                mu = mu / cnt;                                                                   \
                for (k = 0; k < K; k++) muc[q * K + k] = mu;                                     \
            }                                                                                    \
            for (c = 0; c < C; c++) col[c] = 0.0;                                                \
            for (s = 0; s < Sp; s++) {                                                           \
                const T* xr = X + s * C;                                                         \
                CYNET_IVDEP                                                                      \
                for (c = 0; c < C; c++) {                                                        \
                    double d = (double)xr[c] - muc[c];                                           \
                    col[c] += d * d;                                                             \
                }                                                                                \
            }                                                                                    \
            for (q = 0; q < G; q++) {                                                            \
                double var = 0.0, sd; T m, st;                                                   \
                for (k = 0; k < K; k++) var += col[q * K + k];                                   \
                sd = 1.0 / sqrt(var / cnt + eps);                                                \
                m = (T)muc[q * K]; st = (T)sd;                                                   \
                mean[n * G + q] = m; inv[n * G + q] = st;                                        \
                for (k = 0; k < K; k++) { cm[q * K + k] = m; cs[q * K + k] = st; }               \
            }                                                                                    \
            for (s = 0; s < Sp; s++) {                                                           \
                const T* xr = X + s * C; T* yr = Y + s * C;                                      \
                CYNET_IVDEP                                                                      \
                for (c = 0; c < C; c++) yr[c] = ((xr[c] - cm[c]) * cs[c]) * g[c] + b[c];         \
            }                                                                                    \
        }                                                                                        \
    }                                                                                            \
    /* group norm backward over samples [0, N). dg, db: C doubles, accumulated into;             \
       ca, cb: C doubles, cm, cs, k0, k1, k2: C T's of scratch */                                \
    CYNET_CLONES static void cynet_gn_bwd_##S(const T* dy, const T* x, T* dx, Py_ssize_t N,     \
            Py_ssize_t Sp, Py_ssize_t C, Py_ssize_t G, const T* g, const T* mean, const T* inv, \
            double* dg, double* db, double* ca, double* cb, T* cm, T* cs, T* k0, T* k1, T* k2) { \
        Py_ssize_t n, s, c, q, k, K = C / G;                                                     \
        const double cnt = (double)Sp * (double)K;                                               \
        for (n = 0; n < N; n++) {                                                                \
            const T* D = dy + n * Sp * C; const T* X = x + n * Sp * C; T* O = dx + n * Sp * C;   \
            for (q = 0; q < G; q++)                                                              \
                for (k = 0; k < K; k++) { cm[q * K + k] = mean[n * G + q]; cs[q * K + k] = inv[n * G + q]; } \
            for (c = 0; c < C; c++) { ca[c] = 0.0; cb[c] = 0.0; }                                \
            for (s = 0; s < Sp; s++) {                                                           \
                const T* dr = D + s * C; const T* xr = X + s * C;                                \
                CYNET_IVDEP                                                                      \
                for (c = 0; c < C; c++) {                                                        \
                    ca[c] += (double)dr[c];                                                      \
                    cb[c] += (double)(dr[c] * ((xr[c] - cm[c]) * cs[c]));                        \
                }                                                                                \
            }                                                                                    \
            for (c = 0; c < C; c++) { db[c] += ca[c]; dg[c] += cb[c]; }                          \
            for (q = 0; q < G; q++) {                                                            \
                double A = 0.0, B = 0.0, sd = (double)inv[n * G + q];                            \
                for (k = 0; k < K; k++) {                                                        \
                    A += (double)g[q * K + k] * ca[q * K + k];                                   \
                    B += (double)g[q * K + k] * cb[q * K + k];                                   \
                }                                                                                \
                for (k = 0; k < K; k++) {                                                        \
                    k0[q * K + k] = (T)(sd * (double)g[q * K + k]);                              \
                    k1[q * K + k] = (T)(-sd * A / cnt);                                          \
                    k2[q * K + k] = (T)(-sd * B / cnt);                                          \
                }                                                                                \
            }                                                                                    \
            for (s = 0; s < Sp; s++) {                                                           \
                const T* dr = D + s * C; const T* xr = X + s * C; T* out = O + s * C;            \
                CYNET_IVDEP                                                                      \
                for (c = 0; c < C; c++)                                                          \
                    out[c] = (k0[c] * dr[c] + k2[c] * ((xr[c] - cm[c]) * cs[c])) + k1[c];        \
            }                                                                                    \
        }                                                                                        \
    }

    CYNET_LN_KERNELS(float, f)
    CYNET_LN_KERNELS(double, d)
    """
    void cynet_ln_fwd_f(const float* x, float* y, Py_ssize_t M, Py_ssize_t C, const float* g,
                        const float* b, double eps, int rms, float* mean, float* inv) noexcept nogil
    void cynet_ln_fwd_d(const double* x, double* y, Py_ssize_t M, Py_ssize_t C, const double* g,
                        const double* b, double eps, int rms, double* mean, double* inv) noexcept nogil
    void cynet_ln_bwd_f(const float* dy, const float* x, float* dx, Py_ssize_t M, Py_ssize_t C,
                        const float* g, const float* mean, const float* inv, int rms, double* dg,
                        double* db, float* fg, float* fb) noexcept nogil
    void cynet_ln_bwd_d(const double* dy, const double* x, double* dx, Py_ssize_t M, Py_ssize_t C,
                        const double* g, const double* mean, const double* inv, int rms, double* dg,
                        double* db, double* fg, double* fb) noexcept nogil
    void cynet_gn_fwd_f(const float* x, float* y, Py_ssize_t N, Py_ssize_t Sp, Py_ssize_t C,
                        Py_ssize_t G, const float* g, const float* b, double eps, float* mean,
                        float* inv, double* col, double* muc, float* cm, float* cs) noexcept nogil
    void cynet_gn_fwd_d(const double* x, double* y, Py_ssize_t N, Py_ssize_t Sp, Py_ssize_t C,
                        Py_ssize_t G, const double* g, const double* b, double eps, double* mean,
                        double* inv, double* col, double* muc, double* cm, double* cs) noexcept nogil
    void cynet_gn_bwd_f(const float* dy, const float* x, float* dx, Py_ssize_t N, Py_ssize_t Sp,
                        Py_ssize_t C, Py_ssize_t G, const float* g, const float* mean,
                        const float* inv, double* dg, double* db, double* ca, double* cb,
                        float* cm, float* cs, float* k0, float* k1, float* k2) noexcept nogil
    void cynet_gn_bwd_d(const double* dy, const double* x, double* dx, Py_ssize_t N, Py_ssize_t Sp,
                        Py_ssize_t C, Py_ssize_t G, const double* g, const double* mean,
                        const double* inv, double* dg, double* db, double* ca, double* cb,
                        double* cm, double* cs, double* k0, double* k1, double* k2) noexcept nogil


# ----------------------------------------------------------------------------------------------
# argument checks (the public module validates first; these keep direct calls memory-safe)

def _check_positive(name, shape):
    if any(d < 1 for d in shape):
        raise ValueError(f"{name} must have no empty axis; received shape {tuple(shape)}")


def _vector(name, a, Py_ssize_t C, dtype, double default):
    """A (C,) parameter in x's dtype; None -> filled with `default`."""
    if a is None:
        return np.full(C, default, dtype=dtype)
    if a.shape[0] != C:
        raise ValueError(f"{name} must have shape ({C},); received shape {tuple(a.shape)}")
    return a


def _epsilon(double epsilon):
    if not (epsilon > 0.0):
        raise ValueError(f"epsilon must be > 0; received epsilon={epsilon}")


cdef inline int _team(Py_ssize_t rows, Py_ssize_t work) noexcept nogil:
    """Threads for a pass over `rows` rows (samples) of `work` elements in all: never more
    than the rows, so every thread owns at least one."""
    cdef int nt = threads_for(work, COST_WINDOW)
    if nt > rows:
        nt = <int>rows
    return nt if nt >= 1 else 1


def _reduce_partials(const double[:, ::1] part, dtype):
    """Rows 0.. of per-thread partial sums added in thread order, rounded once to dtype."""
    cdef Py_ssize_t t, c, nt = part.shape[0], C = part.shape[1]
    if nt == 1:
        return np.asarray(part[0]).astype(dtype)
    out = np.empty(C, dtype=np.float64)
    cdef double[::1] o = out
    for c in range(C):
        o[c] = part[0, c]
    for t in range(1, nt):
        for c in range(C):
            o[c] += part[t, c]
    return out.astype(dtype)


# ----------------------------------------------------------------------------------------------
# layer normalization

def layer_norm_forward(const floating[:, ::1] x, gamma, beta, double epsilon, bint rms_scaling=False):
    """Layer normalization of each row of x over its C values.

    x: (M, C) float32|float64, C-contiguous. gamma, beta: (C,) in x's dtype, or None (ones,
    zeros). Returns (y (M, C), mean (M,), inv_std (M,)) in x's dtype: the row mean and
    1 / sqrt(var + epsilon) (biased variance), y = (x - mean) * inv_std * gamma + beta, or
    with rms_scaling y = x * inv_std * gamma + beta (Keras's rms_scaling: still the variance).
    """
    cdef Py_ssize_t M = x.shape[0], C = x.shape[1]
    _check_positive("x", (M, C))
    _epsilon(epsilon)
    dtype = np.float32 if floating is float else np.float64
    cdef const floating[::1] g = _vector("gamma", gamma, C, dtype, 1.0)
    cdef const floating[::1] b = _vector("beta", beta, C, dtype, 0.0)
    y_out = np.empty((M, C), dtype=dtype)
    mean_out = np.empty(M, dtype=dtype)
    inv_out = np.empty(M, dtype=dtype)
    cdef floating[:, ::1] y = y_out
    cdef floating[::1] mean = mean_out
    cdef floating[::1] inv = inv_out
    cdef int nt = _team(M, M * C), rms = rms_scaling
    cdef Py_ssize_t t, r0, r1
    for t in prange(nt, nogil=True, schedule="static", num_threads=nt):
        r0 = (t * M) // nt
        r1 = ((t + 1) * M) // nt
        if floating is float:
            cynet_ln_fwd_f(&x[r0, 0], &y[r0, 0], r1 - r0, C, &g[0], &b[0], epsilon, rms,
                           &mean[r0], &inv[r0])
        else:
            cynet_ln_fwd_d(&x[r0, 0], &y[r0, 0], r1 - r0, C, &g[0], &b[0], epsilon, rms,
                           &mean[r0], &inv[r0])
    return y_out, mean_out, inv_out


def layer_norm_backward(const floating[:, ::1] dy, const floating[:, ::1] x, gamma,
                        const floating[::1] mean, const floating[::1] inv_std, bint rms_scaling=False):
    """Gradient of layer_norm_forward, in one fused visit per row.

    dy, x: (M, C), same shape and dtype, C-contiguous. gamma: (C,) or None (ones). mean,
    inv_std: (M,) as returned by layer_norm_forward (with the same rms_scaling).
    Returns (dx (M, C), dgamma (C,), dbeta (C,)) in x's dtype.
    """
    cdef Py_ssize_t M = x.shape[0], C = x.shape[1]
    _check_positive("x", (M, C))
    if dy.shape[0] != M or dy.shape[1] != C:
        raise ValueError(f"dy must have x's shape ({M}, {C}); received shape ({dy.shape[0]}, {dy.shape[1]})")
    if mean.shape[0] != M or inv_std.shape[0] != M:
        raise ValueError(f"mean and inv_std must have shape ({M},); received ({mean.shape[0]},) and "
                         f"({inv_std.shape[0]},)")
    dtype = np.float32 if floating is float else np.float64
    cdef const floating[::1] g = _vector("gamma", gamma, C, dtype, 1.0)
    cdef int nt = _team(M, M * C), rms = rms_scaling
    dx_out = np.empty((M, C), dtype=dtype)
    cdef floating[:, ::1] dx = dx_out
    part_g = np.zeros((nt, C), dtype=np.float64)
    part_b = np.zeros((nt, C), dtype=np.float64)
    cdef double[:, ::1] pg = part_g
    cdef double[:, ::1] pb = part_b
    cdef floating[:, ::1] scr = np.empty((nt, 2 * C), dtype=dtype)
    cdef Py_ssize_t t, r0, r1
    for t in prange(nt, nogil=True, schedule="static", num_threads=nt):
        r0 = (t * M) // nt
        r1 = ((t + 1) * M) // nt
        if floating is float:
            cynet_ln_bwd_f(&dy[r0, 0], &x[r0, 0], &dx[r0, 0], r1 - r0, C, &g[0], &mean[r0],
                           &inv_std[r0], rms, &pg[t, 0], &pb[t, 0], &scr[t, 0], &scr[t, C])
        else:
            cynet_ln_bwd_d(&dy[r0, 0], &x[r0, 0], &dx[r0, 0], r1 - r0, C, &g[0], &mean[r0],
                           &inv_std[r0], rms, &pg[t, 0], &pb[t, 0], &scr[t, 0], &scr[t, C])
    return dx_out, _reduce_partials(pg, dtype), _reduce_partials(pb, dtype)


# ----------------------------------------------------------------------------------------------
# group normalization

def _check_groups(Py_ssize_t C, Py_ssize_t groups):
    if groups < 1 or C % groups != 0:
        raise ValueError(f"groups must be a positive divisor of C={C}; received groups={groups}")


def group_norm_forward(const floating[:, :, ::1] x, Py_ssize_t groups, gamma, beta, double epsilon):
    """Group normalization of x (N, S, C) (channels last, S the flattened spatial positions):
    each sample's channels in `groups` groups of C / groups, each group normalised over its
    S * C / groups values; gamma, beta: (C,) per channel, or None.
    Returns (y (N, S, C), mean (N, groups), inv_std (N, groups)) in x's dtype.
    """
    cdef Py_ssize_t N = x.shape[0], Sp = x.shape[1], C = x.shape[2], G = groups
    _check_positive("x", (N, Sp, C))
    _check_groups(C, G)
    _epsilon(epsilon)
    dtype = np.float32 if floating is float else np.float64
    cdef const floating[::1] g = _vector("gamma", gamma, C, dtype, 1.0)
    cdef const floating[::1] b = _vector("beta", beta, C, dtype, 0.0)
    cdef int nt = _team(N, N * Sp * C)
    y_out = np.empty((N, Sp, C), dtype=dtype)
    mean_out = np.empty((N, G), dtype=dtype)
    inv_out = np.empty((N, G), dtype=dtype)
    cdef floating[:, :, ::1] y = y_out
    cdef floating[:, ::1] mean = mean_out
    cdef floating[:, ::1] inv = inv_out
    cdef double[:, ::1] dscr = np.empty((nt, 2 * C), dtype=np.float64)
    cdef floating[:, ::1] tscr = np.empty((nt, 2 * C), dtype=dtype)
    cdef Py_ssize_t t, r0, r1
    for t in prange(nt, nogil=True, schedule="static", num_threads=nt):
        r0 = (t * N) // nt
        r1 = ((t + 1) * N) // nt
        if floating is float:
            cynet_gn_fwd_f(&x[r0, 0, 0], &y[r0, 0, 0], r1 - r0, Sp, C, G, &g[0], &b[0], epsilon,
                           &mean[r0, 0], &inv[r0, 0], &dscr[t, 0], &dscr[t, C], &tscr[t, 0], &tscr[t, C])
        else:
            cynet_gn_fwd_d(&x[r0, 0, 0], &y[r0, 0, 0], r1 - r0, Sp, C, G, &g[0], &b[0], epsilon,
                           &mean[r0, 0], &inv[r0, 0], &dscr[t, 0], &dscr[t, C], &tscr[t, 0], &tscr[t, C])
    return y_out, mean_out, inv_out


def group_norm_backward(const floating[:, :, ::1] dy, const floating[:, :, ::1] x, Py_ssize_t groups,
                        gamma, const floating[:, ::1] mean, const floating[:, ::1] inv_std):
    """Gradient of group_norm_forward. dy, x: (N, S, C); mean, inv_std: (N, groups) as it
    returned. Returns (dx (N, S, C), dgamma (C,), dbeta (C,)) in x's dtype."""
    cdef Py_ssize_t N = x.shape[0], Sp = x.shape[1], C = x.shape[2], G = groups
    _check_positive("x", (N, Sp, C))
    _check_groups(C, G)
    if dy.shape[0] != N or dy.shape[1] != Sp or dy.shape[2] != C:
        raise ValueError(f"dy must have x's shape ({N}, {Sp}, {C}); received shape "
                         f"({dy.shape[0]}, {dy.shape[1]}, {dy.shape[2]})")
    if mean.shape[0] != N or mean.shape[1] != G or inv_std.shape[0] != N or inv_std.shape[1] != G:
        raise ValueError(f"mean and inv_std must have shape ({N}, {G}); received ({mean.shape[0]}, "
                         f"{mean.shape[1]}) and ({inv_std.shape[0]}, {inv_std.shape[1]})")
    dtype = np.float32 if floating is float else np.float64
    cdef const floating[::1] g = _vector("gamma", gamma, C, dtype, 1.0)
    cdef int nt = _team(N, N * Sp * C)
    dx_out = np.empty((N, Sp, C), dtype=dtype)
    cdef floating[:, :, ::1] dx = dx_out
    part_g = np.zeros((nt, C), dtype=np.float64)
    part_b = np.zeros((nt, C), dtype=np.float64)
    cdef double[:, ::1] pg = part_g
    cdef double[:, ::1] pb = part_b
    cdef double[:, ::1] dscr = np.empty((nt, 2 * C), dtype=np.float64)
    cdef floating[:, ::1] tscr = np.empty((nt, 5 * C), dtype=dtype)
    cdef Py_ssize_t t, r0, r1
    for t in prange(nt, nogil=True, schedule="static", num_threads=nt):
        r0 = (t * N) // nt
        r1 = ((t + 1) * N) // nt
        if floating is float:
            cynet_gn_bwd_f(&dy[r0, 0, 0], &x[r0, 0, 0], &dx[r0, 0, 0], r1 - r0, Sp, C, G, &g[0],
                           &mean[r0, 0], &inv_std[r0, 0], &pg[t, 0], &pb[t, 0], &dscr[t, 0], &dscr[t, C],
                           &tscr[t, 0], &tscr[t, C], &tscr[t, 2 * C], &tscr[t, 3 * C], &tscr[t, 4 * C])
        else:
            cynet_gn_bwd_d(&dy[r0, 0, 0], &x[r0, 0, 0], &dx[r0, 0, 0], r1 - r0, Sp, C, G, &g[0],
                           &mean[r0, 0], &inv_std[r0, 0], &pg[t, 0], &pb[t, 0], &dscr[t, 0], &dscr[t, C],
                           &tscr[t, 0], &tscr[t, C], &tscr[t, 2 * C], &tscr[t, 3 * C], &tscr[t, 4 * C])
    return dx_out, _reduce_partials(pg, dtype), _reduce_partials(pb, dtype)
