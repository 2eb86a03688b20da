"""Attention kernels (compiled): the fused masked softmax of dot-product attention and its backward.

Layout. Scores are C-contiguous (B, H, Tq, Tk) arrays: B * H * Tq rows of Tk keys. The mask is
an optional uint8 (B, H, Tq, Tk) view with any strides (a broadcast view of a smaller mask: a
stride of 0 along an axis it does not have); along the last axis its stride is 0 (one flag for
the whole row) or 1 (a contiguous row of flags), which the public function guarantees; any
other stride takes a slower scalar loop.

Semantics (Keras 3's Softmax(mask=...) under MultiHeadAttention): z = where(mask, scale * x,
-1e9) and p = softmax(z) along the last axis. A masked key gets exp(-1e9 - max) = 0; a row with
every key masked is uniform (1 / Tk), as in Keras. The backward is that of the `where`:
dx = where(mask, scale * p * (dp - sum(dp * p)), 0), so a masked key gets no gradient even in
a fully masked row.

Row passes: one fused pass per row (scaled/masked copy and running maximum; exp and sum;
normalise), the row staying in cache. The exp is Cephes-style, branch-free and vectorisable;
its result is exactly 0 below the underflow threshold, as NumPy's. Row sums (sum of exps,
sum(dp * p)) are accumulated in float64 with eight partial sums (vectorised by GCC), and the
per-row scalars (1 / sum, the dot) are computed in float64 and rounded once, as in the NumPy
twin (attention_numpy.py). The float32 row functions are compiled for the baseline, AVX2 and
AVX-512 (CYNET_CLONES) and picked at load time.

Threads: prange over rows, threads_for(rows * Tk, COST_ROWS).
"""
from cython cimport floating
from cython.parallel cimport prange

import numpy as np

from cynet._kernels._check cimport CY_AT
from cynet._kernels._openmp cimport threads_for, COST_ROWS

__all__ = ["masked_softmax_forward", "masked_softmax_backward"]

# The value a masked score takes (Keras's _large_negative_number for float32 and float64).
cdef double MASKED_SCORE = -1e9

cdef extern from *:
    """
    #include <stdint.h>
    #include "cynet_simd.h"

    /* exp(x) for x <= 0 (or NaN), exactly 0 below the underflow threshold (NumPy's result, not
       cynet_expf's smallest normal), so a masked key's probability is 0. */
    static inline float cynet_att_expf(float x) {
        return cynet_self(x < -87.33f, 0.0f, cynet_expf(x));
    }
    static inline double cynet_att_expd(double x) {
        return cynet_seld(x < -708.3, 0.0, cynet_expd(x));
    }

    /* The row helpers inline into each clone of the entry points below (each clone compiles them
       for its own instruction set). */
    #define CYNET_ATT_INLINE static inline __attribute__((always_inline))
    #define CYNET_ATT_ROWS(T, IT, SUF, SEL, EXP)                                                 \
    /* max(y[0:k]) (k >= 1) in 32-byte vectors (GCC's vector extension: the select-based scalar    \
       reduction does not vectorise; 64-byte ones cost 4x on AVX2); a NaN may be skipped, it makes \
       the row's sum NaN anyway. */                                                               \
    CYNET_ATT_INLINE T cynet_att_max_##SUF(const T* y, Py_ssize_t k) {                           \
        typedef T V __attribute__((vector_size(32)));                                             \
        typedef IT VI __attribute__((vector_size(32)));                                           \
        const Py_ssize_t L = (Py_ssize_t)(32 / sizeof(T));                                        \
        Py_ssize_t j = 0, w; T mx = y[0], a[32 / sizeof(T)]; V acc0, acc1, v; VI c; int l;        \
        if (k >= 2 * L) {                                                                         \
            /* two accumulators (half the dependency chain), then a tree over the lanes */        \
            memcpy(&acc0, y, sizeof acc0);                                                        \
            memcpy(&acc1, y + L, sizeof acc1);                                                    \
            for (j = 2 * L; j + 2 * L <= k; j += 2 * L) {                                         \
                memcpy(&v, y + j, sizeof v);                                                      \
                c = v > acc0;                                                                     \
                acc0 = (V)(((VI)v & c) | ((VI)acc0 & ~c));                                        \
                memcpy(&v, y + j + L, sizeof v);                                                  \
                c = v > acc1;                                                                     \
                acc1 = (V)(((VI)v & c) | ((VI)acc1 & ~c));                                        \
            }                                                                                     \
            c = acc1 > acc0;                                                                      \
            acc0 = (V)(((VI)acc1 & c) | ((VI)acc0 & ~c));                                         \
            memcpy(a, &acc0, sizeof a);                                                           \
            for (w = L / 2; w >= 1; w /= 2)                                                       \
                for (l = 0; l < w; l++) a[l] = SEL(a[l + w] > a[l], a[l + w], a[l]);              \
            mx = a[0];                                                                            \
        }                                                                                         \
        for (; j < k; j++) mx = SEL(y[j] > mx, y[j], mx);                                         \
        return mx;                                                                                \
    }                                                                                             \
    /* z = mask ? scale * x : neg into y (ms: the mask's stride, m NULL for none); return the max. */ \
    CYNET_ATT_INLINE T cynet_att_masked_##SUF(const T* x, const unsigned char* m, Py_ssize_t ms, T* y,       \
                                    Py_ssize_t k, T scale, T neg) {                               \
        Py_ssize_t j;                                                                             \
        if (m == NULL || ms == 0) {                                                               \
            if (m != NULL && m[0] == 0) {                                                         \
                for (j = 0; j < k; j++) y[j] = neg;                                               \
                return neg;                                                                       \
            }                                                                                     \
            for (j = 0; j < k; j++) y[j] = x[j] * scale;                                          \
        } else if (ms == 1) {                                                                     \
            CYNET_IVDEP                                                                           \
            for (j = 0; j < k; j++) y[j] = SEL(m[j] != 0, x[j] * scale, neg);                     \
        } else {                                                                                  \
            for (j = 0; j < k; j++) y[j] = SEL(m[j * ms] != 0, x[j] * scale, neg);                \
        }                                                                                         \
        return cynet_att_max_##SUF(y, k);                                                         \
    }                                                                                             \
    /* y = exp(y - mx), then sum(y) in double (eight partial sums): two loops, as GCC vectorises  \
       each but not the fused one. */                                                             \
    CYNET_ATT_INLINE double cynet_att_exp_##SUF(T* y, Py_ssize_t k, T mx) {                                 \
        Py_ssize_t j; double s[8] = {0, 0, 0, 0, 0, 0, 0, 0}; int l;                              \
        for (j = 0; j < k; j++) y[j] = EXP(y[j] - mx);                                            \
        for (j = 0; j + 8 <= k; j += 8)                                                           \
            for (l = 0; l < 8; l++) s[l] += (double)y[j + l];                                     \
        for (; j < k; j++) s[0] += (double)y[j];                                                  \
        return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));                 \
    }                                                                                             \
    /* One row of the forward pass. */                                                            \
    CYNET_ATT_INLINE void cynet_att_fwd_##SUF(const T* x, const unsigned char* m, Py_ssize_t ms, T* y,      \
                                    Py_ssize_t k, T scale, T neg) {                               \
        Py_ssize_t j; T mx = cynet_att_masked_##SUF(x, m, ms, y, k, scale, neg);                  \
        T inv = (T)(1.0 / cynet_att_exp_##SUF(y, k, mx));                                         \
        for (j = 0; j < k; j++) y[j] *= inv;                                                      \
    }                                                                                             \
    /* One row of the backward pass: dx = mask ? scale * p * (dp - sum(dp * p)) : 0. */          \
    CYNET_ATT_INLINE void cynet_att_bwd_##SUF(const T* dp, const T* p, const unsigned char* m,              \
                                    Py_ssize_t ms, T* dx, Py_ssize_t k, T scale) {                \
        Py_ssize_t j; double s[8] = {0, 0, 0, 0, 0, 0, 0, 0}; int l; T dot;                       \
        if (m != NULL && ms == 0 && m[0] == 0) {                                                  \
            for (j = 0; j < k; j++) dx[j] = (T)0;                                                 \
            return;                                                                               \
        }                                                                                         \
        for (j = 0; j + 8 <= k; j += 8)                                                           \
            for (l = 0; l < 8; l++) s[l] += (double)dp[j + l] * (double)p[j + l];                 \
        for (; j < k; j++) s[0] += (double)dp[j] * (double)p[j];                                  \
        dot = (T)(((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])));             \
        if (m == NULL || ms == 0) {                                                               \
            for (j = 0; j < k; j++) dx[j] = scale * (p[j] * (dp[j] - dot));                       \
        } else if (ms == 1) {                                                                     \
            CYNET_IVDEP                                                                           \
            for (j = 0; j < k; j++) dx[j] = SEL(m[j] != 0, scale * (p[j] * (dp[j] - dot)), (T)0); \
        } else {                                                                                  \
            for (j = 0; j < k; j++) dx[j] = SEL(m[j * ms] != 0, scale * (p[j] * (dp[j] - dot)), (T)0); \
        }                                                                                         \
    }

    CYNET_ATT_ROWS(float, int32_t, f32, cynet_self, cynet_att_expf)
    CYNET_ATT_ROWS(double, int64_t, f64, cynet_seld, cynet_att_expd)

    /* The float32 row functions, cloned for AVX2 and AVX-512 (entry points only: the helpers
       above inline into each clone). */
    CYNET_CLONES static void cynet_att_fwd_rows_f32(const float* x, const unsigned char* m, Py_ssize_t ms,
                                                    float* y, Py_ssize_t k, float scale, float neg) {
        cynet_att_fwd_f32(x, m, ms, y, k, scale, neg);
    }
    CYNET_CLONES static void cynet_att_bwd_rows_f32(const float* dp, const float* p, const unsigned char* m,
                                                    Py_ssize_t ms, float* dx, Py_ssize_t k, float scale) {
        cynet_att_bwd_f32(dp, p, m, ms, dx, k, scale);
    }
    """
    void cynet_att_fwd_rows_f32(const float* x, const unsigned char* m, Py_ssize_t ms, float* y,
                                Py_ssize_t k, float scale, float neg) noexcept nogil
    void cynet_att_bwd_rows_f32(const float* dp, const float* p, const unsigned char* m, Py_ssize_t ms,
                                float* dx, Py_ssize_t k, float scale) noexcept nogil
    void cynet_att_fwd_f64(const double* x, const unsigned char* m, Py_ssize_t ms, double* y,
                           Py_ssize_t k, double scale, double neg) noexcept nogil
    void cynet_att_bwd_f64(const double* dp, const double* p, const unsigned char* m, Py_ssize_t ms,
                           double* dx, Py_ssize_t k, double scale) noexcept nogil


# ---------------------------------------------------------------------------------------------
# Python-facing checks.

cdef _check_shape(name, tuple got, tuple shape, what):
    if got != shape:
        raise ValueError(f"{name} must have the shape of {what} {shape}; received shape {got}")


cdef inline const unsigned char* _mask_row(const unsigned char* base, Py_ssize_t r, Py_ssize_t H,
                                           Py_ssize_t Tq, Py_ssize_t s0, Py_ssize_t s1,
                                           Py_ssize_t s2) noexcept nogil:
    """The start of row r = (b * H + h) * Tq + i of a strided mask (NULL for no mask)."""
    if base == NULL:
        return NULL
    cdef Py_ssize_t i = r % Tq, bh = r // Tq
    return base + (bh // H) * s0 + (bh % H) * s1 + i * s2


def masked_softmax_forward(const floating[:, :, :, ::1] x not None, const unsigned char[:, :, :, :] mask,
                           double scale, floating[:, :, :, ::1] out=None):
    """p = softmax(where(mask, scale * x, -1e9)) along the last axis.

    x: (B, H, Tq, Tk) float32|float64, C-contiguous (IN)
    mask: None or a uint8 (B, H, Tq, Tk) view of any strides, nonzero = keep (IN)
    scale: the factor applied to the scores before the mask
    out: None, or a C-contiguous array of x's shape and dtype for p (OUT): x itself (in place:
        each row is read before it is written) or memory that does not overlap x or mask
    Returns p: (B, H, Tq, Tk) of x's dtype (out when given).
    """
    cdef Py_ssize_t B = x.shape[0], H = x.shape[1], Tq = x.shape[2], k = x.shape[3]
    cdef Py_ssize_t rows = B * H * Tq, r, n = rows * k
    cdef Py_ssize_t s0 = 0, s1 = 0, s2 = 0, ms = 0
    cdef const unsigned char* base = NULL
    if out is None:
        p_arr = np.empty((B, H, Tq, k), dtype=np.float32 if floating is float else np.float64)
    else:
        _check_shape("out", (out.shape[0], out.shape[1], out.shape[2], out.shape[3]), (B, H, Tq, k), "x")
        p_arr = out.base
    if rows == 0 or k == 0:
        return p_arr
    if mask is not None:
        _check_shape("mask", (mask.shape[0], mask.shape[1], mask.shape[2], mask.shape[3]), (B, H, Tq, k),
                     "the scores")
        base = &mask[0, 0, 0, 0]
        s0, s1, s2, ms = mask.strides[0], mask.strides[1], mask.strides[2], mask.strides[3]
    cdef floating[:, :, :, ::1] p = p_arr if out is None else out
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef floating* pp = &p[0, 0, 0, 0]
    for r in prange(rows, nogil=True, schedule="static", num_threads=threads_for(n, COST_ROWS)):
        if floating is float:
            cynet_att_fwd_rows_f32(xp + CY_AT(r * k, n), _mask_row(base, r, H, Tq, s0, s1, s2), ms,
                                   pp + CY_AT(r * k, n), k, <float>scale, <float>MASKED_SCORE)
        else:
            cynet_att_fwd_f64(xp + CY_AT(r * k, n), _mask_row(base, r, H, Tq, s0, s1, s2), ms,
                              pp + CY_AT(r * k, n), k, scale, MASKED_SCORE)
    return p_arr


def masked_softmax_backward(const floating[:, :, :, ::1] dp not None, const floating[:, :, :, ::1] p not None,
                            const unsigned char[:, :, :, :] mask, double scale, floating[:, :, :, ::1] out=None):
    """dx = where(mask, scale * p * (dp - sum(dp * p)), 0), the gradient of masked_softmax_forward.

    dp: (B, H, Tq, Tk) upstream gradient (IN); p: the forward's output, same shape and dtype (IN)
    mask: None or a uint8 (B, H, Tq, Tk) view of any strides, nonzero = keep (IN)
    out: None, or a C-contiguous array of p's shape and dtype for dx (OUT): dp or p itself (in
        place: a row's sum is taken before the row is written) or memory overlapping none of them
    Returns dx of p's shape and dtype (out when given).
    """
    cdef Py_ssize_t B = p.shape[0], H = p.shape[1], Tq = p.shape[2], k = p.shape[3]
    cdef Py_ssize_t rows = B * H * Tq, r, n = rows * k
    cdef Py_ssize_t s0 = 0, s1 = 0, s2 = 0, ms = 0
    cdef const unsigned char* base = NULL
    _check_shape("dp", (dp.shape[0], dp.shape[1], dp.shape[2], dp.shape[3]), (B, H, Tq, k), "p")
    if out is None:
        dx_arr = np.empty((B, H, Tq, k), dtype=np.float32 if floating is float else np.float64)
    else:
        _check_shape("out", (out.shape[0], out.shape[1], out.shape[2], out.shape[3]), (B, H, Tq, k), "p")
        dx_arr = out.base
    if rows == 0 or k == 0:
        return dx_arr
    if mask is not None:
        _check_shape("mask", (mask.shape[0], mask.shape[1], mask.shape[2], mask.shape[3]), (B, H, Tq, k),
                     "the scores")
        base = &mask[0, 0, 0, 0]
        s0, s1, s2, ms = mask.strides[0], mask.strides[1], mask.strides[2], mask.strides[3]
    cdef floating[:, :, :, ::1] dx = dx_arr if out is None else out
    cdef const floating* dpp = &dp[0, 0, 0, 0]
    cdef const floating* pp = &p[0, 0, 0, 0]
    cdef floating* dxp = &dx[0, 0, 0, 0]
    for r in prange(rows, nogil=True, schedule="static", num_threads=threads_for(n, COST_ROWS)):
        if floating is float:
            cynet_att_bwd_rows_f32(dpp + CY_AT(r * k, n), pp + CY_AT(r * k, n),
                                   _mask_row(base, r, H, Tq, s0, s1, s2), ms, dxp + CY_AT(r * k, n), k,
                                   <float>scale)
        else:
            cynet_att_bwd_f64(dpp + CY_AT(r * k, n), pp + CY_AT(r * k, n),
                              _mask_row(base, r, H, Tq, s0, s1, s2), ms, dxp + CY_AT(r * k, n), k, scale)
    return dx_arr
