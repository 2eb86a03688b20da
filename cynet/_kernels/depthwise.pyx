"""Compiled depthwise 2-D convolution (Keras DepthwiseConv2D): forward and backward.

A depthwise convolution filters every input channel by its own KH x KW windows (depth_multiplier
M of them per channel): output channel j = c*M + m of pixel (oh, ow) is
    y[n, oh, ow, j] = b[j] + sum_{kh, kw} x[n, oh*sh - pt + kh*dh, ow*sw - pl + kw*dw, c] * k[kh, kw, c, m]
with zeros outside x. It is not a GEMM (each output channel sums only KH*KW products), so it has
no im2col: the loops run over output pixels and window taps with the channels innermost, where
they are contiguous in x, the kernel and y (channels_last).

Layout: channels_last only, explicit padding amounts, kernel (KH, KW, C, M) read as (KH, KW, C*M).
The public wrappers in cynet.kernels.depthwise validate and normalise (Keras padding modes,
channels_first) before calling here; the entry points below are nevertheless safe for any input
(cheap checks, then loops that cannot leave their buffers: the window range of each output row
and column is clipped to the input once, outside the channel loops, so padding costs no test in
the hot loop).

The hot loops are C (cynet_simd.h's CYNET_CLONES: baseline, AVX2+FMA and AVX-512 builds), over
32-byte vectors of contiguous channels:
  forward   interior columns (whose windows lie inside the input) CYNET_DW_OT = 4 pixels at a time
            for blocks of two vectors of channels (M == 1): each tap's kernel vectors are loaded
            once for the four pixels, the eight sums stay in registers and are stored once; edge
            columns, the channels left over and M > 1 go one pixel at a time (register blocks of
            CYNET_DW_VB vectors for M == 1, else sums accumulated in y).
  backward  M == 1: dkernel per output row, tap and channel block summed over the columns in
            registers and added once, three taps per dy load (cynet_dw_dk_image); dx as a gather,
            every dx pixel summed in registers and stored once: for unit strides the forward of
            dy with the flipped kernel and the transposed padding (its register tiles), for
            other strides without dilation cynet_dw_dx_row. M > 1 and dilated strided windows:
            one scatter pass per output pixel (dy loaded once, then for each tap
            dkernel += x * dy and dx += k * dy).
Threads: the forward splits output rows (N*OH) between threads; the backward gives each thread
whole images (its dx writes never meet another thread's), with its own partial dkernel and
dbias (doubles), added in thread order after the team, so a result is the same from run to run
for a thread count. Team sizes come from the thread policy (COST_CONV: multiply-adds of the
windows).
"""
import numpy as np

from cython cimport floating
from cython.parallel cimport prange

from cynet._kernels._openmp cimport threads_for, COST_CONV
from cynet._kernels._check cimport CY_AT
from cynet._kernels.conv import _geometry

cdef extern from *:
    """
    #include "cynet_simd.h"
    #include "cynet_check.h"

    typedef struct {
        Py_ssize_t N, H, W, C, M, KH, KW, OH, OW, pt, pl, sh, sw, dh, dw;
    } cynet_dwg;

    /* [lo, hi): the taps k of a window starting at input index i0 (stride d between taps, K taps)
       that fall inside [0, size) */
    static inline void cynet_dw_taps(Py_ssize_t i0, Py_ssize_t d, Py_ssize_t K, Py_ssize_t size,
                                     Py_ssize_t* lo, Py_ssize_t* hi) {
        Py_ssize_t a = i0 < 0 ? (-i0 + d - 1) / d : 0;
        Py_ssize_t b = size - 1 - i0 < 0 ? 0 : (size - 1 - i0) / d + 1;
        if (b > K) b = K;
        if (a > b) a = b;
        *lo = a;
        *hi = b;
    }

    #if defined(__GNUC__)
    typedef float cynet_dw_vf __attribute__((vector_size(32), aligned(4)));
    typedef double cynet_dw_vd __attribute__((vector_size(32), aligned(8)));
    #define CYNET_DW_VEC 1
    #else
    #define CYNET_DW_VEC 0
    #endif
    #define CYNET_DW_VB 4   /* vectors of channels per register block */
    #define CYNET_DW_OT 4   /* output columns per register tile of the forward's interior */

    /* [k0, k1) stepping by s: the taps k of K whose output position o = (t - k) / s is whole and
       inside [0, O), and o0, the position of tap k0 (then o0 - 1, ...). t >= 0 (an input index
       plus the leading padding), q = t / s, r = t % s (kept by the caller, without a division
       per pixel). */
    static inline void cynet_dw_strided_taps(Py_ssize_t t, Py_ssize_t q, Py_ssize_t r, Py_ssize_t s,
                                             Py_ssize_t K, Py_ssize_t O, Py_ssize_t* k0, Py_ssize_t* k1,
                                             Py_ssize_t* o0) {
        Py_ssize_t lo = t - (O - 1) * s;
        if (lo > 0) {        /* the last output position's tap, already a whole step from t */
            *k0 = lo;
            *o0 = O - 1;
        } else {
            *k0 = r;
            *o0 = q;
        }
        *k1 = t + 1 < K ? t + 1 : K;
    }

    /* [lo, hi): the window positions o (of O) whose window [o*s - pad, o*s - pad + ext] lies
       inside [0, size) */
    static inline void cynet_dw_interior(Py_ssize_t pad, Py_ssize_t s, Py_ssize_t ext, Py_ssize_t size,
                                         Py_ssize_t O, Py_ssize_t* lo, Py_ssize_t* hi) {
        Py_ssize_t a = pad > 0 ? (pad + s - 1) / s : 0;
        Py_ssize_t last = size - 1 - ext + pad;
        Py_ssize_t b = last < 0 ? 0 : last / s + 1;
        if (b > O) b = O;
        if (a > b) a = b;
        *lo = a;
        *hi = b;
    }
    /* the index i of a block of len elements, checked (debug build) to lie wholly in [0, n) */
    #define CYNET_DW_SPAN(i, len, n) ((void)CY_AT((i) + (len) - 1, n), CY_AT(i, n))

    #define CYNET_DW_KERNELS(T, S, V)                                                                                   \
        /* y[ow] for one output pixel of row (n, oh), channels [c0, C) (output channels [c0*M, C*M)): the                   \
           taps' range clipped to the input, then register blocks of CYNET_DW_VB vectors (M == 1), then the                 \
           channels left, accumulated in y. xn: image n; yo: the pixel's C*M outputs. */                                    \
        static inline void cynet_dw_px_##S(const T* xn, const T* k, const T* b, T* yo, const cynet_dwg* g,                  \
                                           Py_ssize_t ih0, Py_ssize_t h0, Py_ssize_t h1, Py_ssize_t ow, Py_ssize_t c0) {    \
            const Py_ssize_t C = g->C, M = g->M, CM = g->C * g->M, XS = g->H * g->W * g->C;                                 \
            const Py_ssize_t KS = g->KH * g->KW * CM, iw0 = ow * g->sw - g->pl;                                             \
            Py_ssize_t w0, w1, kh, kw, c = c0, cc, m, j;                                                                    \
            (void)KS; (void)XS;                                                                                            \
            cynet_dw_taps(iw0, g->dw, g->KW, g->W, &w0, &w1);                                                               \
            if (CYNET_DW_VEC && M == 1) {                                                                                   \
                const Py_ssize_t L = (Py_ssize_t)(sizeof(V) / sizeof(T));                                                   \
                for (; c + CYNET_DW_VB * L <= C; c += CYNET_DW_VB * L) {                                                    \
                    V a0, a1, a2, a3;                                                                                       \
                    if (b) {                                                                                                \
                        a0 = *(const V*)(b + c); a1 = *(const V*)(b + c + L);                                               \
                        a2 = *(const V*)(b + c + 2 * L); a3 = *(const V*)(b + c + 3 * L);                                   \
                    } else {                                                                                                \
                        V z = {0}; a0 = z; a1 = z; a2 = z; a3 = z;                                                          \
                    }                                                                                                       \
                    for (kh = h0; kh < h1; kh++) {                                                                          \
                        const Py_ssize_t ih = ih0 + kh * g->dh;                                                             \
                        for (kw = w0; kw < w1; kw++) {                                                                      \
                            const T* xp = xn + CYNET_DW_SPAN((ih * g->W + iw0 + kw * g->dw) * C + c, CYNET_DW_VB * L, XS);  \
                            const T* kp = k + CYNET_DW_SPAN((kh * g->KW + kw) * CM + c, CYNET_DW_VB * L, KS);               \
                            a0 += *(const V*)xp * *(const V*)kp;                                                            \
                            a1 += *(const V*)(xp + L) * *(const V*)(kp + L);                                                \
                            a2 += *(const V*)(xp + 2 * L) * *(const V*)(kp + 2 * L);                                        \
                            a3 += *(const V*)(xp + 3 * L) * *(const V*)(kp + 3 * L);                                        \
                        }                                                                                                   \
                    }                                                                                                       \
                    *(V*)(yo + c) = a0; *(V*)(yo + c + L) = a1;                                                             \
                    *(V*)(yo + c + 2 * L) = a2; *(V*)(yo + c + 3 * L) = a3;                                                 \
                }                                                                                                           \
            }                                                                                                               \
            for (j = c * M; j < CM; j++) yo[j] = b ? b[j] : (T)0;                                                           \
            if (c == C) return;                                                                                             \
            for (kh = h0; kh < h1; kh++) {                                                                                  \
                const Py_ssize_t ih = ih0 + kh * g->dh;                                                                     \
                for (kw = w0; kw < w1; kw++) {                                                                              \
                    const T* xp = xn + CY_AT((ih * g->W + iw0 + kw * g->dw) * C, XS);                                       \
                    const T* kp = k + CY_AT((kh * g->KW + kw) * CM, KS);                                                    \
                    if (M == 1) {                                                                                           \
                        CYNET_IVDEP                                                                                         \
                        for (cc = c; cc < C; cc++) yo[cc] += xp[cc] * kp[cc];                                               \
                    } else {                                                                                                \
                        for (cc = c; cc < C; cc++) {                                                                        \
                            const T xv = xp[cc];                                                                            \
                            CYNET_IVDEP                                                                                     \
                            for (m = 0; m < M; m++) yo[cc * M + m] += xv * kp[cc * M + m];                                  \
                        }                                                                                                   \
                    }                                                                                                       \
                }                                                                                                           \
            }                                                                                                               \
        }                                                                                                                   \
                                                                                                                            \
        /* Output row r = n*OH + oh of y (OW pixels of C*M channels); k: (KH*KW, C*M); b: C*M or NULL.                      \
           The interior columns, whose windows lie wholly inside the input, go CYNET_DW_OT pixels at a                      \
           time for channel blocks of two vectors (M == 1): each tap's kernel vectors are loaded once for                   \
           the OT pixels, and the 2*OT sums stay in registers. The edge columns and the channels left                       \
           over go one pixel at a time (cynet_dw_px). */                                                                    \
        CYNET_CLONES static void cynet_dw_fwd_row_##S(const T* x, const T* k, const T* b, T* y, cynet_dwg g,                \
                                                      Py_ssize_t r) {                                                       \
            const Py_ssize_t C = g.C, CM = g.C * g.M, XS = g.H * g.W * g.C;                                                 \
            const Py_ssize_t KS = g.KH * g.KW * CM;                                                                         \
            const Py_ssize_t n = r / g.OH, oh = r - n * g.OH, ih0 = oh * g.sh - g.pt;                                       \
            const T* xn = x + n * XS;                                                                                       \
            T* yr = y + r * g.OW * CM;                                                                                      \
            Py_ssize_t h0, h1, ow = 0, owa, owb, kh, kw, c, q;                                                              \
            (void)KS; (void)XS;                                                                                            \
            cynet_dw_taps(ih0, g.dh, g.KH, g.H, &h0, &h1);                                                                  \
            cynet_dw_interior(g.pl, g.sw, (g.KW - 1) * g.dw, g.W, g.OW, &owa, &owb);                                        \
            if (CYNET_DW_VEC && g.M == 1) {                                                                                 \
                const Py_ssize_t L = (Py_ssize_t)(sizeof(V) / sizeof(T));                                                   \
                const Py_ssize_t C2 = C - C % (2 * L), step = g.sw * C;                                                     \
                for (; ow < owa; ow++) cynet_dw_px_##S(xn, k, b, yr + ow * CM, &g, ih0, h0, h1, ow, 0);                     \
                for (; ow + CYNET_DW_OT <= owb; ow += CYNET_DW_OT) {                                                        \
                    T* yo = yr + ow * CM;                                                                                   \
                    for (c = 0; c < C2; c += 2 * L) {                                                                       \
                        V a00, a01, a10, a11, a20, a21, a30, a31;                                                           \
                        if (b) {                                                                                            \
                            a00 = *(const V*)(b + c); a01 = *(const V*)(b + c + L);                                         \
                        } else {                                                                                            \
                            V z = {0}; a00 = z; a01 = z;                                                                    \
                        }                                                                                                   \
                        a10 = a00; a20 = a00; a30 = a00; a11 = a01; a21 = a01; a31 = a01;                                   \
                        for (kh = h0; kh < h1; kh++) {                                                                      \
                            const Py_ssize_t ih = ih0 + kh * g.dh;                                                          \
                            for (kw = 0; kw < g.KW; kw++) {                                                                 \
                                const Py_ssize_t xo = (ih * g.W + ow * g.sw - g.pl + kw * g.dw) * C + c;                    \
                                const T* xp = xn + CYNET_DW_SPAN(xo, (CYNET_DW_OT - 1) * step + 2 * L, XS);                 \
                                const T* kp = k + CYNET_DW_SPAN((kh * g.KW + kw) * CM + c, 2 * L, KS);                      \
                                const V k0 = *(const V*)kp, k1 = *(const V*)(kp + L);                                       \
                                a00 += *(const V*)xp * k0; a01 += *(const V*)(xp + L) * k1;                                 \
                                a10 += *(const V*)(xp + step) * k0; a11 += *(const V*)(xp + step + L) * k1;                 \
                                a20 += *(const V*)(xp + 2 * step) * k0; a21 += *(const V*)(xp + 2 * step + L) * k1;         \
                                a30 += *(const V*)(xp + 3 * step) * k0; a31 += *(const V*)(xp + 3 * step + L) * k1;         \
                            }                                                                                               \
                        }                                                                                                   \
                        *(V*)(yo + c) = a00; *(V*)(yo + c + L) = a01;                                                       \
                        *(V*)(yo + CM + c) = a10; *(V*)(yo + CM + c + L) = a11;                                             \
                        *(V*)(yo + 2 * CM + c) = a20; *(V*)(yo + 2 * CM + c + L) = a21;                                     \
                        *(V*)(yo + 3 * CM + c) = a30; *(V*)(yo + 3 * CM + c + L) = a31;                                     \
                    }                                                                                                       \
                    if (C2 < C)                                                                                             \
                        for (q = 0; q < CYNET_DW_OT; q++)                                                                   \
                            cynet_dw_px_##S(xn, k, b, yo + q * CM, &g, ih0, h0, h1, ow + q, C2);                            \
                }                                                                                                           \
            }                                                                                                               \
            for (; ow < g.OW; ow++) cynet_dw_px_##S(xn, k, b, yr + ow * CM, &g, ih0, h0, h1, ow, 0);                        \
        }                                                                                                                   \
                                                                                                                            \
        /* dk[tap] (C values) += sum over output columns ow in [lo, hi) of x[ih, ow*sw + off] * dy[oh, ow]:                 \
           blocks of CYNET_DW_VB vectors of channels summed in registers, then the channels left. xr: input                 \
           row ih (xlen values from there), dyr: output row oh. */                                                          \
        static inline void cynet_dw_dk_cols_##S(const T* xr, Py_ssize_t xlen, const T* dyr, T* dkp, const cynet_dwg* g,     \
                                                Py_ssize_t off, Py_ssize_t lo, Py_ssize_t hi) {                             \
            const Py_ssize_t C = g->C, step = g->sw * C;                                                                    \
            Py_ssize_t c = 0, cc, ow;                                                                                       \
            (void)xlen;                                                                                                     \
            if (lo >= hi) return;                                                                                           \
            (void)CYNET_DW_SPAN((lo * g->sw + off) * C, ((hi - 1 - lo) * g->sw + 1) * C, xlen);                             \
            if (CYNET_DW_VEC) {                                                                                             \
                const Py_ssize_t L = (Py_ssize_t)(sizeof(V) / sizeof(T));                                                   \
                for (; c + CYNET_DW_VB * L <= C; c += CYNET_DW_VB * L) {                                                    \
                    V z = {0}, a0 = z, a1 = z, a2 = z, a3 = z;                                                              \
                    const T* xp = xr + (lo * g->sw + off) * C + c;                                                          \
                    const T* dp = dyr + lo * C + c;                                                                         \
                    for (ow = lo; ow < hi; ow++, xp += step, dp += C) {                                                     \
                        a0 += *(const V*)xp * *(const V*)dp;                                                                \
                        a1 += *(const V*)(xp + L) * *(const V*)(dp + L);                                                    \
                        a2 += *(const V*)(xp + 2 * L) * *(const V*)(dp + 2 * L);                                            \
                        a3 += *(const V*)(xp + 3 * L) * *(const V*)(dp + 3 * L);                                            \
                    }                                                                                                       \
                    *(V*)(dkp + c) += a0; *(V*)(dkp + c + L) += a1;                                                         \
                    *(V*)(dkp + c + 2 * L) += a2; *(V*)(dkp + c + 3 * L) += a3;                                             \
                }                                                                                                           \
            }                                                                                                               \
            for (ow = lo; ow < hi; ow++) {                                                                                  \
                const T* xp = xr + (ow * g->sw + off) * C;                                                                  \
                const T* dp = dyr + ow * C;                                                                                 \
                CYNET_IVDEP                                                                                                 \
                for (cc = c; cc < C; cc++) dkp[cc] += xp[cc] * dp[cc];                                                      \
            }                                                                                                               \
        }                                                                                                                   \
                                                                                                                            \
        /* dk (KH*KW, C) += the window products x * dy of image n (M == 1), summed over each output row in                  \
           registers and added once per row, tap and channel block. Taps go three at a time (kw, kw + 1,                    \
           kw + 2) over the columns where all three lie inside the input: each dy vector is loaded once                     \
           for the three, the six sums (two vectors of channels) stay in registers; the other columns and                   \
           taps go one tap at a time (cynet_dw_dk_cols). db (C doubles) += dy unless NULL. */                               \
        CYNET_CLONES static void cynet_dw_dk_image_##S(const T* x, const T* dy, T* dk, double* db, T* rowsum,               \
                                                       cynet_dwg g, Py_ssize_t n) {                                         \
            const Py_ssize_t C = g.C, XS = g.H * g.W * g.C, KS = g.KH * g.KW * C, step = g.sw * C, tstep = g.dw * C;        \
            const T* xn = x + n * XS;                                                                                       \
            Py_ssize_t oh, ow, h0, h1, kh, kw, q, c, cc, j, lo[3], hi[3];                                                   \
            (void)KS; (void)XS;                                                                                            \
            for (oh = 0; oh < g.OH; oh++) {                                                                                 \
                const Py_ssize_t ih0 = oh * g.sh - g.pt;                                                                    \
                const T* dyr = dy + (n * g.OH + oh) * g.OW * C;                                                             \
                if (db) {                                                                                                   \
                    for (j = 0; j < C; j++) rowsum[j] = (T)0;                                                               \
                    for (ow = 0; ow < g.OW; ow++) {                                                                         \
                        CYNET_IVDEP                                                                                         \
                        for (j = 0; j < C; j++) rowsum[j] += dyr[ow * C + j];                                               \
                    }                                                                                                       \
                    for (j = 0; j < C; j++) db[j] += rowsum[j];                                                             \
                }                                                                                                           \
                cynet_dw_taps(ih0, g.dh, g.KH, g.H, &h0, &h1);                                                              \
                for (kh = h0; kh < h1; kh++) {                                                                              \
                    const T* xr = xn + CY_AT((ih0 + kh * g.dh) * g.W * C, XS);                                              \
                    const Py_ssize_t xlen = XS - (xr - xn);                                                                 \
                    T* dkr = dk + CY_AT(kh * g.KW * C, KS);                                                                 \
                    for (kw = 0; kw < g.KW; ) {                                                                             \
                        const Py_ssize_t nq = CYNET_DW_VEC && kw + 3 <= g.KW ? 3 : 1;                                       \
                        for (q = 0; q < nq; q++)   /* columns ow with 0 <= ow*sw + (kw + q)*dw - pl < W */                  \
                            cynet_dw_interior(g.pl - (kw + q) * g.dw, g.sw, 0, g.W, g.OW, &lo[q], &hi[q]);                  \
                        if (nq == 3 && lo[0] < hi[2]) {                                                                     \
                            const Py_ssize_t L = (Py_ssize_t)(sizeof(V) / sizeof(T)), a = lo[0], b = hi[2];                 \
                            const Py_ssize_t off = kw * g.dw - g.pl;                                                        \
                            T* dkp = dkr + kw * C;                                                                          \
                            (void)CYNET_DW_SPAN((a * g.sw + off) * C, ((b - 1 - a) * g.sw + 2 * g.dw + 1) * C, xlen);       \
                            for (c = 0; c + 2 * L <= C; c += 2 * L) {                                                       \
                                V z = {0}, a00 = z, a01 = z, a10 = z, a11 = z, a20 = z, a21 = z;                            \
                                const T* xp = xr + (a * g.sw + off) * C + c;                                                \
                                const T* dp = dyr + a * C + c;                                                              \
                                for (ow = a; ow < b; ow++, xp += step, dp += C) {                                           \
                                    const V d0 = *(const V*)dp, d1 = *(const V*)(dp + L);                                   \
                                    a00 += *(const V*)xp * d0; a01 += *(const V*)(xp + L) * d1;                             \
                                    a10 += *(const V*)(xp + tstep) * d0; a11 += *(const V*)(xp + tstep + L) * d1;           \
                                    a20 += *(const V*)(xp + 2 * tstep) * d0; a21 += *(const V*)(xp + 2 * tstep + L) * d1;   \
                                }                                                                                           \
                                *(V*)(dkp + c) += a00; *(V*)(dkp + c + L) += a01;                                           \
                                *(V*)(dkp + C + c) += a10; *(V*)(dkp + C + c + L) += a11;                                   \
                                *(V*)(dkp + 2 * C + c) += a20; *(V*)(dkp + 2 * C + c + L) += a21;                           \
                            }                                                                                               \
                            for (ow = a; ow < b && c < C; ow++) {                                                           \
                                const T* xp = xr + (ow * g.sw + off) * C;                                                   \
                                const T* dp = dyr + ow * C;                                                                 \
                                for (q = 0; q < 3; q++) {                                                                   \
                                    CYNET_IVDEP                                                                             \
                                    for (cc = c; cc < C; cc++) dkp[q * C + cc] += xp[q * tstep + cc] * dp[cc];              \
                                }                                                                                           \
                            }                                                                                               \
                            for (q = 0; q < 3; q++) {   /* the columns outside [a, b) */                                    \
                                const Py_ssize_t o = (kw + q) * g.dw - g.pl;                                                \
                                cynet_dw_dk_cols_##S(xr, xlen, dyr, dkr + (kw + q) * C, &g, o, lo[q], a);                   \
                                cynet_dw_dk_cols_##S(xr, xlen, dyr, dkr + (kw + q) * C, &g, o, b, hi[q]);                   \
                            }                                                                                               \
                        } else {                                                                                            \
                            for (q = 0; q < nq; q++)                                                                        \
                                cynet_dw_dk_cols_##S(xr, xlen, dyr, dkr + (kw + q) * C, &g, (kw + q) * g.dw - g.pl,         \
                                                     lo[q], hi[q]);                                                         \
                        }                                                                                                   \
                        kw += nq;                                                                                           \
                    }                                                                                                       \
                }                                                                                                           \
            }                                                                                                               \
        }                                                                                                                   \
                                                                                                                            \
        /* Row r = n*H + ih of dx (W pixels of C channels) for M == 1 and no dilation, any strides: a                       \
           gather. Input pixel (ih, iw) is read by the taps kh = th - oh*sh (th = ih + pt) of the output                    \
           rows oh, likewise kw; its gradient sums k[tap] * dy[output pixel] over them in registers and is                  \
           stored once (no zero fill, no read-modify-write of dx). */                                                       \
        CYNET_CLONES static void cynet_dw_dx_row_##S(const T* dy, const T* k, T* dx, cynet_dwg g, Py_ssize_t r) {           \
            const Py_ssize_t C = g.C, KS = g.KH * g.KW * C, YS = g.OH * g.OW * C;                                           \
            const Py_ssize_t n = r / g.H, ih = r - n * g.H, th = ih + g.pt;                                                 \
            const T* dyn = dy + n * YS;                                                                                     \
            T* dxr = dx + r * g.W * C;                                                                                      \
            Py_ssize_t kh0, kh1, oh0, kw0, kw1, ow0, iw, kh, kw, oh, ow, c, cc;                                             \
            Py_ssize_t tq = g.pl / g.sw, tr = g.pl % g.sw;     /* (iw + pl) / sw and (iw + pl) % sw */                      \
            (void)KS; (void)YS;                                                                                             \
            cynet_dw_strided_taps(th, th / g.sh, th % g.sh, g.sh, g.KH, g.OH, &kh0, &kh1, &oh0);                            \
            for (iw = 0; iw < g.W; iw++) {                                                                                  \
                const Py_ssize_t tw = iw + g.pl;                                                                            \
                T* o = dxr + iw * C;                                                                                        \
                cynet_dw_strided_taps(tw, tq, tr, g.sw, g.KW, g.OW, &kw0, &kw1, &ow0);                                      \
                if (++tr == g.sw) {                                                                                         \
                    tr = 0;                                                                                                 \
                    tq++;                                                                                                   \
                }                                                                                                           \
                c = 0;                                                                                                      \
                if (CYNET_DW_VEC) {                                                                                         \
                    const Py_ssize_t L = (Py_ssize_t)(sizeof(V) / sizeof(T));                                               \
                    for (; c + CYNET_DW_VB * L <= C; c += CYNET_DW_VB * L) {                                                \
                        V z = {0}, a0 = z, a1 = z, a2 = z, a3 = z;                                                          \
                        for (kh = kh0, oh = oh0; kh < kh1; kh += g.sh, oh--) {                                              \
                            for (kw = kw0, ow = ow0; kw < kw1; kw += g.sw, ow--) {                                          \
                                const T* d = dyn + CYNET_DW_SPAN((oh * g.OW + ow) * C + c, CYNET_DW_VB * L, YS);            \
                                const T* kp = k + CYNET_DW_SPAN((kh * g.KW + kw) * C + c, CYNET_DW_VB * L, KS);             \
                                a0 += *(const V*)d * *(const V*)kp;                                                         \
                                a1 += *(const V*)(d + L) * *(const V*)(kp + L);                                             \
                                a2 += *(const V*)(d + 2 * L) * *(const V*)(kp + 2 * L);                                     \
                                a3 += *(const V*)(d + 3 * L) * *(const V*)(kp + 3 * L);                                     \
                            }                                                                                               \
                        }                                                                                                   \
                        *(V*)(o + c) = a0; *(V*)(o + c + L) = a1;                                                           \
                        *(V*)(o + c + 2 * L) = a2; *(V*)(o + c + 3 * L) = a3;                                               \
                    }                                                                                                       \
                }                                                                                                           \
                for (cc = c; cc < C; cc++) o[cc] = (T)0;                                                                    \
                if (c == C) continue;                                                                                       \
                for (kh = kh0, oh = oh0; kh < kh1; kh += g.sh, oh--) {                                                      \
                    for (kw = kw0, ow = ow0; kw < kw1; kw += g.sw, ow--) {                                                  \
                        const T* d = dyn + CY_AT((oh * g.OW + ow) * C, YS);                                                 \
                        const T* kp = k + CY_AT((kh * g.KW + kw) * C, KS);                                                  \
                        CYNET_IVDEP                                                                                         \
                        for (cc = c; cc < C; cc++) o[cc] += d[cc] * kp[cc];                                                 \
                    }                                                                                                       \
                }                                                                                                           \
            }                                                                                                               \
        }                                                                                                                   \
                                                                                                                            \
        /* Gradients of image n by scattering each output pixel's dy to its taps, in one pass: dk (KH*KW,                   \
           C*M) += x * dy, db (C*M doubles) += dy unless NULL, dx[n] (zero on entry) += k * dy unless dx is                 \
           NULL. Any M; the path of depth multipliers above 1 and of dilated strided windows' dx. */                        \
        CYNET_CLONES static void cynet_dw_bwd_image_##S(const T* x, const T* k, const T* dy, T* dx, T* dk,                  \
                                                        double* db, T* rowsum, cynet_dwg g, Py_ssize_t n) {                 \
            const Py_ssize_t C = g.C, M = g.M, CM = g.C * g.M, XS = g.H * g.W * g.C;                                        \
            const Py_ssize_t KS = g.KH * g.KW * CM;                                                                         \
            const T* xn = x + n * XS;                                                                                       \
            T* dxn = dx ? dx + n * XS : (T*)0;                                                                              \
            Py_ssize_t oh, ow, h0, h1, w0, w1, kh, kw, c, cc, m, j;                                                         \
            (void)KS; (void)XS;                                                                                            \
            for (oh = 0; oh < g.OH; oh++) {                                                                                 \
                const Py_ssize_t ih0 = oh * g.sh - g.pt;                                                                    \
                const T* dyr = dy + (n * g.OH + oh) * g.OW * CM;                                                            \
                cynet_dw_taps(ih0, g.dh, g.KH, g.H, &h0, &h1);                                                              \
                if (db) {                                                                                                   \
                    for (j = 0; j < CM; j++) rowsum[j] = (T)0;                                                              \
                    for (ow = 0; ow < g.OW; ow++) {                                                                         \
                        CYNET_IVDEP                                                                                         \
                        for (j = 0; j < CM; j++) rowsum[j] += dyr[ow * CM + j];                                             \
                    }                                                                                                       \
                    for (j = 0; j < CM; j++) db[j] += rowsum[j];                                                            \
                }                                                                                                           \
                for (ow = 0; ow < g.OW; ow++) {                                                                             \
                    const Py_ssize_t iw0 = ow * g.sw - g.pl;                                                                \
                    const T* d = dyr + ow * CM;                                                                             \
                    cynet_dw_taps(iw0, g.dw, g.KW, g.W, &w0, &w1);                                                          \
                    c = 0;                                                                                                  \
                    if (CYNET_DW_VEC && M == 1) {                                                                           \
                        const Py_ssize_t L = (Py_ssize_t)(sizeof(V) / sizeof(T));                                           \
                        for (; c + CYNET_DW_VB * L <= C; c += CYNET_DW_VB * L) {                                            \
                            const V d0 = *(const V*)(d + c), d1 = *(const V*)(d + c + L);                                   \
                            const V d2 = *(const V*)(d + c + 2 * L), d3 = *(const V*)(d + c + 3 * L);                       \
                            for (kh = h0; kh < h1; kh++) {                                                                  \
                                const Py_ssize_t ih = ih0 + kh * g.dh;                                                      \
                                for (kw = w0; kw < w1; kw++) {                                                              \
                                    const Py_ssize_t xo = CYNET_DW_SPAN((ih * g.W + iw0 + kw * g.dw) * C + c,               \
                                                                        CYNET_DW_VB * L, XS);                               \
                                    const Py_ssize_t ko = CYNET_DW_SPAN((kh * g.KW + kw) * CM + c, CYNET_DW_VB * L, KS);    \
                                    const T* xp = xn + xo;                                                                  \
                                    T* dkp = dk + ko;                                                                       \
                                    *(V*)dkp += *(const V*)xp * d0;                                                         \
                                    *(V*)(dkp + L) += *(const V*)(xp + L) * d1;                                             \
                                    *(V*)(dkp + 2 * L) += *(const V*)(xp + 2 * L) * d2;                                     \
                                    *(V*)(dkp + 3 * L) += *(const V*)(xp + 3 * L) * d3;                                     \
                                    if (dxn) {                                                                              \
                                        const T* kp = k + ko;                                                               \
                                        T* dxp = dxn + xo;                                                                  \
                                        *(V*)dxp += *(const V*)kp * d0;                                                     \
                                        *(V*)(dxp + L) += *(const V*)(kp + L) * d1;                                         \
                                        *(V*)(dxp + 2 * L) += *(const V*)(kp + 2 * L) * d2;                                 \
                                        *(V*)(dxp + 3 * L) += *(const V*)(kp + 3 * L) * d3;                                 \
                                    }                                                                                       \
                                }                                                                                           \
                            }                                                                                               \
                        }                                                                                                   \
                    }                                                                                                       \
                    for (kh = h0; kh < h1; kh++) {                                                                          \
                        const Py_ssize_t ih = ih0 + kh * g.dh;                                                              \
                        for (kw = w0; kw < w1; kw++) {                                                                      \
                            const Py_ssize_t xo = CY_AT((ih * g.W + iw0 + kw * g.dw) * C, XS);                              \
                            const Py_ssize_t ko = CY_AT((kh * g.KW + kw) * CM, KS);                                         \
                            const T* xp = xn + xo;                                                                          \
                            const T* kp = k + ko;                                                                           \
                            T* dkp = dk + ko;                                                                               \
                            if (M == 1) {                                                                                   \
                                CYNET_IVDEP                                                                                 \
                                for (cc = c; cc < C; cc++) dkp[cc] += xp[cc] * d[cc];                                       \
                                if (dxn) {                                                                                  \
                                    T* dxp = dxn + xo;                                                                      \
                                    CYNET_IVDEP                                                                             \
                                    for (cc = c; cc < C; cc++) dxp[cc] += kp[cc] * d[cc];                                   \
                                }                                                                                           \
                            } else {                                                                                        \
                                for (cc = c; cc < C; cc++) {                                                                \
                                    const T xv = xp[cc];                                                                    \
                                    T s = (T)0;                                                                             \
                                    for (m = 0; m < M; m++) {                                                               \
                                        dkp[cc * M + m] += xv * d[cc * M + m];                                              \
                                        s += kp[cc * M + m] * d[cc * M + m];                                                \
                                    }                                                                                       \
                                    if (dxn) dxn[xo + cc] += s;                                                             \
                                }                                                                                           \
                            }                                                                                               \
                        }                                                                                                   \
                    }                                                                                                       \
                }                                                                                                           \
            }                                                                                                               \
        }

    #if CYNET_DW_VEC
    CYNET_DW_KERNELS(float, f, cynet_dw_vf)
    CYNET_DW_KERNELS(double, d, cynet_dw_vd)
    #else
    CYNET_DW_KERNELS(float, f, float)
    CYNET_DW_KERNELS(double, d, double)
    #endif
    """
    ctypedef struct cynet_dwg:
        Py_ssize_t N, H, W, C, M, KH, KW, OH, OW, pt, pl, sh, sw, dh, dw
    void cynet_dw_fwd_row_f(const float* x, const float* k, const float* b, float* y, cynet_dwg g,
                            Py_ssize_t r) noexcept nogil
    void cynet_dw_fwd_row_d(const double* x, const double* k, const double* b, double* y, cynet_dwg g,
                            Py_ssize_t r) noexcept nogil
    void cynet_dw_bwd_image_f(const float* x, const float* k, const float* dy, float* dx, float* dk,
                              double* db, float* rowsum, cynet_dwg g, Py_ssize_t n) noexcept nogil
    void cynet_dw_bwd_image_d(const double* x, const double* k, const double* dy, double* dx, double* dk,
                              double* db, double* rowsum, cynet_dwg g, Py_ssize_t n) noexcept nogil
    void cynet_dw_dx_row_f(const float* dy, const float* k, float* dx, cynet_dwg g, Py_ssize_t r) noexcept nogil
    void cynet_dw_dx_row_d(const double* dy, const double* k, double* dx, cynet_dwg g, Py_ssize_t r) noexcept nogil
    void cynet_dw_dk_image_f(const float* x, const float* dy, float* dk, double* db, float* rowsum,
                             cynet_dwg g, Py_ssize_t n) noexcept nogil
    void cynet_dw_dk_image_d(const double* x, const double* dy, double* dk, double* db, double* rowsum,
                             cynet_dwg g, Py_ssize_t n) noexcept nogil

__all__ = ["depthwise_conv2d_forward", "depthwise_conv2d_backward"]


cdef inline void _fwd_row(const floating* x, const floating* k, const floating* b, floating* y,
                          cynet_dwg g, Py_ssize_t r) noexcept nogil:
    if floating is float:
        cynet_dw_fwd_row_f(x, k, b, y, g, r)
    else:
        cynet_dw_fwd_row_d(x, k, b, y, g, r)


cdef inline void _bwd_image(const floating* x, const floating* k, const floating* dy, floating* dx,
                            floating* dk, double* db, floating* rowsum, cynet_dwg g,
                            Py_ssize_t n) noexcept nogil:
    if floating is float:
        cynet_dw_bwd_image_f(x, k, dy, dx, dk, db, rowsum, g, n)
    else:
        cynet_dw_bwd_image_d(x, k, dy, dx, dk, db, rowsum, g, n)


cdef inline void _dk_image(const floating* x, const floating* dy, floating* dk, double* db, floating* rowsum,
                           cynet_dwg g, Py_ssize_t n) noexcept nogil:
    if floating is float:
        cynet_dw_dk_image_f(x, dy, dk, db, rowsum, g, n)
    else:
        cynet_dw_dk_image_d(x, dy, dk, db, rowsum, g, n)


cdef inline void _dx_row(const floating* dy, const floating* k, floating* dx, cynet_dwg g,
                         Py_ssize_t r) noexcept nogil:
    if floating is float:
        cynet_dw_dx_row_f(dy, k, dx, g, r)
    else:
        cynet_dw_dx_row_d(dy, k, dx, g, r)


cdef void _forward(const floating* x, const floating* k, const floating* b, floating* y,
                   cynet_dwg g) noexcept nogil:
    """y = depthwise(x, k) (+ b): output rows split between the threads."""
    cdef Py_ssize_t r
    cdef int nt = threads_for(g.N * g.OH * g.OW * g.KH * g.KW * g.C * g.M, COST_CONV)
    for r in prange(g.N * g.OH, schedule="static", num_threads=nt):
        _fwd_row(x, k, b, y, g, r)


cdef inline cynet_dwg _transposed(cynet_dwg g) noexcept nogil:
    """The geometry whose forward on dy with the flipped kernel is dx, for unit strides: dx[ih]
    gathers dy[ih + pt - kh*dh] * k[kh], a window over dy with padding (KH - 1)*dh - pt (negative
    when the padding exceeds the window: the tap ranges clip it)."""
    cdef cynet_dwg t = g
    t.H, t.W, t.OH, t.OW = g.OH, g.OW, g.H, g.W
    t.pt = (g.KH - 1) * g.dh - g.pt
    t.pl = (g.KW - 1) * g.dw - g.pl
    return t


cdef inline int _dx_mode(cynet_dwg g) noexcept nogil:
    """How the backward computes dx: 1 the flipped-kernel forward (M == 1, unit strides), 2 the
    strided gather (M == 1, no dilation), 0 the scatter pass (the rest)."""
    if g.M != 1:
        return 0
    if g.sh == 1 and g.sw == 1:
        return 1
    if g.dh == 1 and g.dw == 1:
        return 2
    return 0


cdef void _backward(const floating* x, const floating* k, const floating* kflip, const floating* dy,
                    floating* dx, floating* dkp, double* dbp, floating* rows, cynet_dwg g, int nt,
                    bint use_bias) noexcept nogil:
    """Thread t owns images [t N / nt, (t + 1) N / nt): its partial dkernel at dkp + t*KH*KW*C*M,
    its partial dbias at dbp + t*C*M (zero on entry), dx of its images unless dx is NULL.
    Depth multiplier 1: dkernel summed per output row in registers (_dk_image), and dx as a
    gather (each dx pixel summed in registers and stored once): for unit strides the forward
    pass over dy with the flipped kernel kflip (its register tiles), for other strides without
    dilation _dx_row. Otherwise one scatter pass (_bwd_image) for both."""
    cdef Py_ssize_t t, n, r, ks = g.KH * g.KW * g.C * g.M, cm = g.C * g.M
    cdef cynet_dwg gt = _transposed(g)
    cdef int mode = _dx_mode(g)
    for t in prange(nt, schedule="static", num_threads=nt):
        for n in range((t * g.N) // nt, ((t + 1) * g.N) // nt):
            if mode > 0 or (g.M == 1 and dx == NULL):
                _dk_image(x, dy, dkp + t * ks, dbp + t * cm if use_bias else NULL, rows + t * cm, g, n)
                if dx != NULL:
                    for r in range(n * g.H, (n + 1) * g.H):
                        if mode == 1:
                            _fwd_row(dy, kflip, NULL, dx, gt, r)
                        else:
                            _dx_row(dy, k, dx, g, r)
            else:
                _bwd_image(x, k, dy, dx, dkp + t * ks, dbp + t * cm if use_bias else NULL,
                           rows + t * cm, g, n)


cdef cynet_dwg _make_geom(Py_ssize_t N, Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t M,
                          Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t pt,
                          Py_ssize_t pl, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw):
    cdef cynet_dwg g
    g.N, g.H, g.W, g.C, g.M, g.KH, g.KW, g.OH, g.OW = N, H, W, C, M, KH, KW, OH, OW
    g.pt, g.pl, g.sh, g.sw, g.dh, g.dw = pt, pl, sh, sw, dh, dw
    return g


def _check_kernel(C, kshape):
    if kshape[2] != C:
        raise ValueError(f"kernel must have shape (KH, KW, {C}, depth_multiplier) to match x's channels; "
                         f"received shape {kshape}")
    if kshape[3] < 1:
        raise ValueError(f"kernel must not be empty; received shape {kshape}")


# ----------------------------------------------------------------------------------------------
# entry points

def depthwise_conv2d_forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] kernel, bias,
                             Py_ssize_t pt, Py_ssize_t pb, Py_ssize_t pl, Py_ssize_t pr,
                             Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw):
    """y = depthwise(x, kernel) + bias, channels_last, cross-correlation as in Keras.

    x: (N, H, W, C) float32|float64, C-contiguous, IN. kernel: (KH, KW, C, M) same dtype,
    C-contiguous, IN (M: the depth multiplier). bias: (C*M,) same dtype or None, IN.
    pt, pb, pl, pr: zero padding top/bottom/left/right; sh, sw: strides; dh, dw: dilation.
    Returns y (N, OH, OW, C*M), new; output channel c*M + m is channel c's m-th filter.
    """
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t KH = kernel.shape[0], KW = kernel.shape[1], M = kernel.shape[3]
    _check_kernel(C, (KH, KW, kernel.shape[2], M))
    OH, OW = _geometry(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    cdef cynet_dwg g = _make_geom(N, H, W, C, M, KH, KW, OH, OW, pt, pl, sh, sw, dh, dw)
    cdef const floating[::1] b
    cdef const floating* bp = NULL
    if bias is not None:
        b = bias
        if b.shape[0] != C * M:
            raise ValueError(f"bias must have shape ({C * M},); received shape ({b.shape[0]},)")
        bp = &b[0]
    y = np.empty((N, g.OH, g.OW, C * M), dtype=np.float32 if floating is float else np.float64)
    cdef floating[:, :, :, ::1] yv = y
    with nogil:
        _forward(&x[0, 0, 0, 0], &kernel[0, 0, 0, 0], bp, &yv[0, 0, 0, 0], g)
    return y


def depthwise_conv2d_backward(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] x,
                              const floating[:, :, :, ::1] kernel, Py_ssize_t pt, Py_ssize_t pb,
                              Py_ssize_t pl, Py_ssize_t pr, Py_ssize_t sh, Py_ssize_t sw,
                              Py_ssize_t dh, Py_ssize_t dw, bint use_bias, bint compute_dx):
    """Gradients of depthwise_conv2d_forward, in one pass over dy.

    dy: (N, OH, OW, C*M) float32|float64, C-contiguous, IN (the upstream gradient). x, kernel
    and the geometry as in depthwise_conv2d_forward. Returns (dx, dkernel, dbias): dx
    (N, H, W, C) or None when compute_dx is false; dkernel (KH, KW, C, M); dbias (C*M,) or None
    when use_bias is false. All new arrays of x's dtype.
    """
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t KH = kernel.shape[0], KW = kernel.shape[1], M = kernel.shape[3]
    _check_kernel(C, (KH, KW, kernel.shape[2], M))
    OH, OW = _geometry(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    if (dy.shape[0], dy.shape[1], dy.shape[2], dy.shape[3]) != (N, OH, OW, C * M):
        raise ValueError(f"dy must have shape {(N, OH, OW, C * M)}; received shape "
                         f"{(dy.shape[0], dy.shape[1], dy.shape[2], dy.shape[3])}")
    cdef cynet_dwg g = _make_geom(N, H, W, C, M, KH, KW, OH, OW, pt, pl, sh, sw, dh, dw)
    dtype = np.float32 if floating is float else np.float64
    cdef int nt = threads_for(N * g.OH * g.OW * KH * KW * C * M, COST_CONV)
    if nt > N:
        nt = <int>N
    if nt < 1:
        nt = 1
    dkp_a = np.zeros((nt, KH, KW, C, M), dtype=dtype)
    dbp_a = np.zeros((nt, C * M), dtype=np.float64)
    rows_a = np.empty((nt, C * M), dtype=dtype)
    cdef floating[:, :, :, :, ::1] dkp = dkp_a
    cdef double[:, ::1] dbp = dbp_a
    cdef floating[:, ::1] rows = rows_a
    cdef floating[:, :, :, ::1] dxv
    cdef floating* dxp = NULL
    cdef const floating[:, :, :, ::1] kflip = kernel
    cdef int mode = _dx_mode(g)
    if mode == 1:
        kflip = np.ascontiguousarray(np.asarray(kernel)[::-1, ::-1])
    dx = None
    if compute_dx:
        # the gathers store every pixel; the scatter adds into zeros
        dx = np.empty((N, H, W, C), dtype=dtype) if mode > 0 else np.zeros((N, H, W, C), dtype=dtype)
        dxv = dx
        dxp = &dxv[0, 0, 0, 0]
    with nogil:
        _backward(&x[0, 0, 0, 0], &kernel[0, 0, 0, 0], &kflip[0, 0, 0, 0], &dy[0, 0, 0, 0], dxp,
                  &dkp[0, 0, 0, 0, 0], &dbp[0, 0], &rows[0, 0], g, nt, use_bias)
    # the threads' partial sums, added in thread order (deterministic for a thread count)
    dkernel = dkp_a[0] if nt == 1 else dkp_a.sum(axis=0)
    dbias = dbp_a.sum(axis=0).astype(dtype) if use_bias else None
    return dx, dkernel, dbias
