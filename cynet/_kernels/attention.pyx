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
sum(dp * p)) are accumulated in float64 with sixteen partial sums (two vectors: two dependency
chains; vectorised by GCC), and the
per-row scalars (1 / sum, the dot) are computed in float64 and rounded once, as in the NumPy
twin (attention_numpy.py). The float32 row functions are compiled for the baseline, AVX2 and
AVX-512 (CYNET_CLONES) and picked at load time.

Threads: prange over rows, threads_for(rows * Tk, COST_ROWS).

Fused attention (attention_forward / attention_backward): the whole dot-product attention of one
(batch, head) pair per iteration, on the projections' own (B, T, H, d) layout (no transposed
copies in or out): scores = q k^T into the pair's (T, S) block of p, the row passes above in
place, out = p v; the backward dv = p^T g, dp = g v^T, ds = the row backward in place,
dq = ds k, dk = ds^T q. The products are cynet_gemm.h's (A read in place through any strides,
so q, p and their transposes are read where they lie); k and v are transposed once per pair
into a (d, S) scratch, the B operand's rows having to be contiguous. One pair's score block
(T x S) is written, normalised and multiplied while in cache (128 x 128 float32: 64 KiB).
Threads: prange over the B * H pairs, threads_for(B * H * T * S, COST_ROWS).
q, k and v are read through their strides (a unit stride along the last axis), so views of one
packed (B, T, 3 * H * d) projection need no copy; the backward's `packed` writes the gradients
as the parts of one such array (the packed projection's backward takes it whole).
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.string cimport memset

import numpy as np

from cynet._kernels._check cimport CY_AT, CY_SPAN
from cynet._kernels._gemm cimport gemms, gemms_tail
from cynet._kernels._omp cimport omp_get_max_threads
from cynet._kernels._openmp cimport threads_for, COST_ROWS

__all__ = ["masked_softmax_forward", "masked_softmax_backward", "attention_forward", "attention_backward"]

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

    /* The sum of 16 partial sums, as a tree. */
    static inline __attribute__((always_inline)) double cynet_att_sum16(const double* s) {
        return (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])))
             + (((s[8] + s[9]) + (s[10] + s[11])) + ((s[12] + s[13]) + (s[14] + s[15])));
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
        Py_ssize_t j; double s[16] = {0}; int l;                                                  \
        for (j = 0; j < k; j++) y[j] = EXP(y[j] - mx);                                            \
        for (j = 0; j + 16 <= k; j += 16)                                                         \
            for (l = 0; l < 16; l++) s[l] += (double)y[j + l];                                    \
        for (; j < k; j++) s[0] += (double)y[j];                                                  \
        return cynet_att_sum16(s);                                                                \
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
        Py_ssize_t j; double s[16] = {0}; int l; T dot;                                           \
        if (m != NULL && ms == 0 && m[0] == 0) {                                                  \
            for (j = 0; j < k; j++) dx[j] = (T)0;                                                 \
            return;                                                                               \
        }                                                                                         \
        for (j = 0; j + 16 <= k; j += 16)                                                         \
            for (l = 0; l < 16; l++) s[l] += (double)dp[j + l] * (double)p[j + l];                \
        for (; j < k; j++) s[0] += (double)dp[j] * (double)p[j];                                  \
        dot = (T)cynet_att_sum16(s);                                                              \
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

    /* xt (d, S) = the transpose of one head's (S, d) block x[s * rs + j] (the B operand of q k^T
       and g v^T needs contiguous rows). Under AVX-512, 16 x 16 tiles are transposed in registers
       (16 row loads, 64 shuffles, 16 row stores, where the scalar loop does 256 scattered
       stores); the rest, and every tile without AVX-512, element by element. */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
    #include <immintrin.h>
    #define CYNET_ATT_TR16 1
    __attribute__((target("avx512f"))) static void cynet_att_tr16_f32(const float* x, Py_ssize_t rs, float* xt,
                                                                      Py_ssize_t S) {
        __m512 r[16], t[16];
        int i;
        for (i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(x + i * rs);
        for (i = 0; i < 8; i++) {   /* pairs of rows interleaved by words */
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        for (i = 0; i < 4; i++) {   /* then by pairs of words: 4 x 4 blocks within each 128-bit lane */
            r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[4 * i]), _mm512_castps_pd(t[4 * i + 2])));
            r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[4 * i]), _mm512_castps_pd(t[4 * i + 2])));
            r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[4 * i + 1]),
                                                               _mm512_castps_pd(t[4 * i + 3])));
            r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[4 * i + 1]),
                                                               _mm512_castps_pd(t[4 * i + 3])));
        }
        for (i = 0; i < 4; i++) {   /* then the 128-bit lanes across rows 4 and 8 apart */
            t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);
            t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xdd);
            t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
            t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xdd);
        }
        for (i = 0; i < 4; i++) {
            r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
            r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
            r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
            r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xdd);
        }
        for (i = 0; i < 16; i++) _mm512_storeu_ps(xt + i * S, r[i]);
    }
    #else
    #define CYNET_ATT_TR16 0
    #endif

    static void cynet_att_transpose_f32(const float* x, Py_ssize_t S, Py_ssize_t rs, Py_ssize_t d, float* xt) {
        Py_ssize_t s, j, s16 = 0, d16 = 0;
    #if CYNET_ATT_TR16
        if (__builtin_cpu_supports("avx512f")) {
            s16 = S & ~(Py_ssize_t)15;
            d16 = d & ~(Py_ssize_t)15;
            for (s = 0; s < s16; s += 16)
                for (j = 0; j < d16; j += 16)
                    cynet_att_tr16_f32(x + s * rs + j, rs, xt + j * S + s, S);
        }
    #endif
        for (s = 0; s < S; s++)
            for (j = s < s16 ? d16 : 0; j < d; j++)
                xt[j * S + s] = x[s * rs + j];
    }

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
    void cynet_att_transpose_f32(const float* x, Py_ssize_t S, Py_ssize_t rs, Py_ssize_t d, float* xt) noexcept nogil
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


# ---------------------------------------------------------------------------------------------
# Fused attention: one (batch, head) pair per iteration (see the module docstring).

cdef inline void _mm(const floating* A, Py_ssize_t sa, Py_ssize_t sk, Py_ssize_t M, Py_ssize_t K,
                     const floating* Bm, Py_ssize_t sb, Py_ssize_t N, floating* C, Py_ssize_t sc,
                     floating* tail) noexcept nogil:
    """C (M, N; row stride sc) = A @ B (gemms), C = 0 for an empty K, nothing for an empty C."""
    cdef Py_ssize_t m
    if M == 0 or N == 0:
        return
    if K == 0:
        for m in range(M):
            memset(C + m * sc, 0, N * sizeof(floating))
        return
    gemms(A, sa, sk, M, K, Bm, sb, N, C, sc, tail)


cdef inline void _transpose_head(const floating* x, Py_ssize_t S, Py_ssize_t rs, Py_ssize_t d,
                                 floating* xt) noexcept nogil:
    """xt (d, S) = the (S, d) block x[s * rs + j] of one (batch, head) pair, transposed."""
    cdef Py_ssize_t s, j
    if floating is float:   # (16 x 16 tiles in registers under AVX-512)
        cynet_att_transpose_f32(x, S, rs, d, xt)
    else:
        for s in range(S):
            for j in range(d):
                xt[j * S + s] = x[s * rs + j]


cdef inline void _rows_forward(floating* p, const unsigned char* m, Py_ssize_t s2, Py_ssize_t ms,
                               Py_ssize_t T, Py_ssize_t S, double scale) noexcept nogil:
    """The masked softmax of the T rows of one pair's (T, S) score block, in place (m: the pair's
    first mask row, NULL for none; s2: the mask's stride between rows)."""
    cdef Py_ssize_t i
    cdef const unsigned char* mi = NULL
    for i in range(T):
        if m != NULL:
            mi = m + i * s2
        if floating is float:
            cynet_att_fwd_rows_f32(p + i * S, mi, ms, p + i * S, S, <float>scale, <float>MASKED_SCORE)
        else:
            cynet_att_fwd_f64(p + i * S, mi, ms, p + i * S, S, scale, MASKED_SCORE)


cdef inline void _rows_backward(floating* dp, const floating* p, const unsigned char* m, Py_ssize_t s2,
                                Py_ssize_t ms, Py_ssize_t T, Py_ssize_t S, double scale) noexcept nogil:
    """dp = the masked softmax's backward of one pair's (T, S) block, in place."""
    cdef Py_ssize_t i
    cdef const unsigned char* mi = NULL
    for i in range(T):
        if m != NULL:
            mi = m + i * s2
        if floating is float:
            cynet_att_bwd_rows_f32(dp + i * S, p + i * S, mi, ms, dp + i * S, S, <float>scale)
        else:
            cynet_att_bwd_f64(dp + i * S, p + i * S, mi, ms, dp + i * S, S, scale)


cdef inline const unsigned char* _pair_mask(const unsigned char* base, Py_ssize_t b, Py_ssize_t h,
                                           const Py_ssize_t* st) noexcept nogil:
    """The first mask row of pair (b, h) (NULL for no mask; st: the mask's strides)."""
    if base == NULL:
        return NULL
    return base + b * st[0] + h * st[1]


cdef tuple _check_heads(q, k, v):
    """(B, T, H, dk, S, dv) of q (B, T, H, dk), k (B, S, H, dk), v (B, S, H, dv), checked, each
    with a unit stride along its last axis."""
    for name, a in (("q", q), ("k", k), ("v", v)):
        if a.shape[3] > 1 and a.strides[3] != a.itemsize:
            raise ValueError(f"{name} must have a unit stride along its last axis; received strides {a.strides}")
    B, T, H, dk, S = q.shape[0], q.shape[1], q.shape[2], q.shape[3], k.shape[1]
    _check_shape("k", tuple(k.shape[:4]), (B, S, H, dk), "(B, S, H, dk) matching q")
    _check_shape("v", tuple(v.shape[:3]), (B, S, H), "(B, S, H, dv) matching k, without dv")
    return B, T, H, dk, S, v.shape[3]


cdef Py_ssize_t _mask_strides(const unsigned char[:, :, :, :] mask, Py_ssize_t B, Py_ssize_t H, Py_ssize_t T,
                              Py_ssize_t S, Py_ssize_t* st) except -1:
    """st[0:4] = the mask's strides (zeros without one), after checking its shape."""
    st[0] = st[1] = st[2] = st[3] = 0
    if mask is not None:
        _check_shape("mask", (mask.shape[0], mask.shape[1], mask.shape[2], mask.shape[3]), (B, H, T, S),
                     "the scores (B, H, T, S)")
        st[0], st[1], st[2], st[3] = mask.strides[0], mask.strides[1], mask.strides[2], mask.strides[3]
    return 0


cdef inline Py_ssize_t _el(Py_ssize_t stride_bytes, Py_ssize_t sz) noexcept nogil:
    """A stride in elements (the public functions pass whole-element, non-negative strides)."""
    return stride_bytes // sz


def attention_forward(const floating[:, :, :, :] q not None, const floating[:, :, :, :] k not None,
                      const floating[:, :, :, :] v not None, const unsigned char[:, :, :, :] mask,
                      double scale):
    """out = softmax(where(mask, scale * q k^T, -1e9)) v per (batch, head), fused.

    q: (B, T, H, dk), k: (B, S, H, dk), v: (B, S, H, dv), one float dtype, each with a unit stride
    along its last axis and any non-negative whole-element strides along the others (IN): views of
    one packed projection (B, T, 3, H, d) read in place.
    mask: None or a uint8 (B, H, T, S) view of any strides, its last-axis stride 0 or 1 (IN)
    Returns (out (B, T, H, dv), p (B, H, T, S)): the attention output in the projections' layout
    and the probabilities (what attention_backward and return_attention_scores need).
    """
    cdef Py_ssize_t B, T, H, dk, S, dv
    B, T, H, dk, S, dv = _check_heads(q, k, v)
    cdef Py_ssize_t st[4]
    _mask_strides(mask, B, H, T, S, st)
    dtype = np.float32 if floating is float else np.float64
    if dk == 0 or dv == 0:   # an empty head axis has no element 0 to point at: its problem at width 1
        out1, p1 = attention_forward(np.zeros((B, T, H, 1), dtype) if dk == 0 else np.asarray(q),
                                     np.zeros((B, S, H, 1), dtype) if dk == 0 else np.asarray(k),
                                     np.zeros((B, S, H, 1), dtype) if dv == 0 else np.asarray(v), mask, scale)
        return (np.zeros((B, T, H, 0), dtype) if dv == 0 else out1), p1
    p_arr = np.empty((B, H, T, S), dtype=dtype)
    if B * H * T == 0 or S == 0:
        return np.zeros((B, T, H, dv), dtype=dtype), p_arr
    out_arr = np.empty((B, T, H, dv), dtype=dtype)   # (every block written below)
    cdef Py_ssize_t sz = sizeof(floating)
    cdef Py_ssize_t qb = _el(q.strides[0], sz), qt = _el(q.strides[1], sz), qh = _el(q.strides[2], sz)
    cdef Py_ssize_t kb = _el(k.strides[0], sz), ks = _el(k.strides[1], sz), kh = _el(k.strides[2], sz)
    cdef Py_ssize_t vb = _el(v.strides[0], sz), vs = _el(v.strides[1], sz), vh = _el(v.strides[2], sz)
    cdef Py_ssize_t pairs = B * H, n = pairs * T * S, bh, b, h
    cdef Py_ssize_t d = dk if dk > dv else dv
    cdef Py_ssize_t ws = d * S + gemms_tail(max(dk, S), max(S, dv))
    cdef Py_ssize_t nt = max(1, omp_get_max_threads())
    cdef floating[::1] work = np.empty(nt * ws, dtype=dtype)
    cdef floating[:, :, :, ::1] o = out_arr
    cdef floating[:, :, :, ::1] p = p_arr
    cdef const floating* qp = &q[0, 0, 0, 0]
    cdef const floating* kp = &k[0, 0, 0, 0]
    cdef const floating* vp = &v[0, 0, 0, 0]
    cdef floating* op = &o[0, 0, 0, 0]
    cdef floating* pp = &p[0, 0, 0, 0]
    cdef floating* wp = &work[0]
    cdef floating* kt
    cdef floating* pb
    cdef const unsigned char* mb = NULL
    cdef const unsigned char* mrow
    if mask is not None:
        mb = &mask[0, 0, 0, 0]
    for bh in prange(pairs, nogil=True, schedule="static", num_threads=threads_for(n, COST_ROWS)):
        b = bh // H
        h = bh % H
        kt = wp + CY_SPAN(threadid() * ws, ws, nt * ws)
        pb = pp + CY_SPAN(bh * T * S, T * S, n)
        mrow = _pair_mask(mb, b, h, st)
        # scores = q k^T into p's block, then the row passes in place
        _transpose_head(kp + b * kb + h * kh, S, ks, dk, kt)
        _mm(qp + b * qb + h * qh, qt, 1, T, dk, kt, S, S, pb, S, kt + d * S)
        _rows_forward(pb, mrow, st[2], st[3], T, S, scale)
        # out = p v, written in the (B, T, H, dv) layout
        _mm(pb, S, 1, T, S, vp + b * vb + h * vh, vs, dv, op + b * T * H * dv + h * dv, H * dv, kt + d * S)
    return out_arr, p_arr


def _gradient_arrays(Py_ssize_t B, Py_ssize_t T, Py_ssize_t S, Py_ssize_t H, Py_ssize_t dk, Py_ssize_t dv,
                     int packed, dtype):
    """(dq, dk, dv) to write: separate C-contiguous arrays (packed 0); dk and dv as the two parts
    of one (B, S, H*dk + H*dv) array (packed 1: the gradient of a fused key-value projection);
    dq, dk and dv as the three parts of one (B, T, 2*H*dk + H*dv) array (packed 2, T == S: a fused
    query-key-value projection's). The parts are views with a unit last stride."""
    if packed == 2:
        buf = np.empty((B, T, H * (2 * dk + dv)), dtype=dtype)
        return (buf[:, :, :H * dk].reshape(B, T, H, dk), buf[:, :, H * dk:2 * H * dk].reshape(B, S, H, dk),
                buf[:, :, 2 * H * dk:].reshape(B, S, H, dv))
    dq_arr = np.empty((B, T, H, dk), dtype=dtype)
    if packed == 1:
        buf = np.empty((B, S, H * (dk + dv)), dtype=dtype)
        return dq_arr, buf[:, :, :H * dk].reshape(B, S, H, dk), buf[:, :, H * dk:].reshape(B, S, H, dv)
    return dq_arr, np.empty((B, S, H, dk), dtype=dtype), np.empty((B, S, H, dv), dtype=dtype)


def attention_backward(const floating[:, :, :, ::1] g not None, const floating[:, :, :, :] q not None,
                       const floating[:, :, :, :] k not None, const floating[:, :, :, :] v not None,
                       const floating[:, :, :, ::1] p not None, const unsigned char[:, :, :, :] mask,
                       double scale, int packed=0):
    """The gradients (dq, dk, dv) of attention_forward's out, given g = d(loss)/d(out).

    g: (B, T, H, dv) (IN); q, k, v, mask, scale: as given to the forward (any non-negative outer
    strides); p: its (B, H, T, S) probabilities (IN). packed: 0, 1 or 2, see _gradient_arrays (2
    needs T == S). Returns dq (B, T, H, dk), dk (B, S, H, dk), dv (B, S, H, dv).
    """
    cdef Py_ssize_t B, T, H, dk, S, dv
    B, T, H, dk, S, dv = _check_heads(q, k, v)
    _check_shape("g", (g.shape[0], g.shape[1], g.shape[2], g.shape[3]), (B, T, H, dv), "out (B, T, H, dv)")
    _check_shape("p", (p.shape[0], p.shape[1], p.shape[2], p.shape[3]), (B, H, T, S), "the scores (B, H, T, S)")
    if packed not in (0, 1, 2) or (packed == 2 and T != S):
        raise ValueError(f"packed must be 0, 1, or 2 with as many keys as queries; received packed={packed} "
                         f"with T={T}, S={S}")
    cdef Py_ssize_t st[4]
    _mask_strides(mask, B, H, T, S, st)
    dtype = np.float32 if floating is float else np.float64
    dq_arr, dk_arr, dv_arr = _gradient_arrays(B, T, S, H, dk, dv, packed, dtype)
    if B * H * T == 0 or S == 0 or dv == 0 or dk == 0:   # (no output, or scores all zero)
        for a in (dq_arr, dk_arr, dv_arr):
            a[...] = 0
        if dk == 0 and not (B * H * T == 0 or S == 0 or dv == 0):   # dv at width 1 (an empty axis has no element 0)
            dv_arr[...] = attention_backward(g, np.zeros((B, T, H, 1), dtype), np.zeros((B, S, H, 1), dtype), v, p,
                                             mask, scale)[2]
        return dq_arr, dk_arr, dv_arr
    cdef Py_ssize_t sz = sizeof(floating)
    cdef Py_ssize_t qb = _el(q.strides[0], sz), qt = _el(q.strides[1], sz), qh = _el(q.strides[2], sz)
    cdef Py_ssize_t kb = _el(k.strides[0], sz), ks = _el(k.strides[1], sz), kh = _el(k.strides[2], sz)
    cdef Py_ssize_t vb = _el(v.strides[0], sz), vs = _el(v.strides[1], sz), vh = _el(v.strides[2], sz)
    cdef Py_ssize_t gb_ = _el(g.strides[0], sz), gt = _el(g.strides[1], sz), gh = _el(g.strides[2], sz)
    cdef floating[:, :, :, :] dqm = dq_arr
    cdef floating[:, :, :, :] dkm = dk_arr
    cdef floating[:, :, :, :] dvm = dv_arr
    cdef Py_ssize_t dqb = _el(dqm.strides[0], sz), dqt = _el(dqm.strides[1], sz), dqh = _el(dqm.strides[2], sz)
    cdef Py_ssize_t dkb = _el(dkm.strides[0], sz), dks = _el(dkm.strides[1], sz), dkh = _el(dkm.strides[2], sz)
    cdef Py_ssize_t dvb = _el(dvm.strides[0], sz), dvs = _el(dvm.strides[1], sz), dvh = _el(dvm.strides[2], sz)
    cdef Py_ssize_t pairs = B * H, n = pairs * T * S, bh, b, h
    cdef Py_ssize_t d = dk if dk > dv else dv
    cdef Py_ssize_t ws = d * S + T * S + gemms_tail(max(T, dv, S), max(dv, S, dk))
    cdef Py_ssize_t nt = max(1, omp_get_max_threads())
    cdef floating[::1] work = np.empty(nt * ws, dtype=dtype)
    cdef const floating* gp = &g[0, 0, 0, 0]
    cdef const floating* qp = &q[0, 0, 0, 0]
    cdef const floating* kp = &k[0, 0, 0, 0]
    cdef const floating* vp = &v[0, 0, 0, 0]
    cdef const floating* pp = &p[0, 0, 0, 0]
    cdef floating* dqp = &dqm[0, 0, 0, 0]
    cdef floating* dkp = &dkm[0, 0, 0, 0]
    cdef floating* dvp = &dvm[0, 0, 0, 0]
    cdef floating* wp = &work[0]
    cdef floating* vt
    cdef floating* ds
    cdef floating* tail
    cdef const floating* pb
    cdef const floating* gb
    cdef const unsigned char* mb = NULL
    cdef const unsigned char* mrow
    if mask is not None:
        mb = &mask[0, 0, 0, 0]
    for bh in prange(pairs, nogil=True, schedule="static", num_threads=threads_for(n, COST_ROWS)):
        b = bh // H
        h = bh % H
        vt = wp + CY_SPAN(threadid() * ws, ws, nt * ws)
        ds = vt + d * S
        tail = ds + T * S
        pb = pp + CY_SPAN(bh * T * S, T * S, n)
        gb = gp + b * gb_ + h * gh
        mrow = _pair_mask(mb, b, h, st)
        # dv = p^T g
        _mm(pb, 1, S, S, T, gb, gt, dv, dvp + b * dvb + h * dvh, dvs, tail)
        # dp = g v^T, then ds = the softmax's backward, in place
        _transpose_head(vp + b * vb + h * vh, S, vs, dv, vt)
        _mm(gb, gt, 1, T, dv, vt, S, S, ds, S, tail)
        _rows_backward(ds, pb, mrow, st[2], st[3], T, S, scale)
        # dq = ds k, dk = ds^T q
        _mm(ds, S, 1, T, S, kp + b * kb + h * kh, ks, dk, dqp + b * dqb + h * dqh, dqt, tail)
        _mm(ds, 1, S, S, T, qp + b * qb + h * qh, qt, dk, dkp + b * dkb + h * dkh, dks, tail)
    return dq_arr, dk_arr, dv_arr
