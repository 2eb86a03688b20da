"""Layer and group normalization kernels (Keras 3 semantics), typed Cython over C loops.

Twin: layernorm_numpy.py (same functions, signatures and results up to rounding: the compiled
loops may contract a multiply and an add into one FMA, and sum in another order).

Layer normalization: x is viewed as (M, C), each of the M rows normalised over its C
contiguous values. Per row, in one visit that keeps the row in L1:
  forward   mean = sum(x) / C, var = sum((x - mean)^2) / C (both accumulated in double, the
            second pass about the mean from cache, so a large offset costs no accuracy),
            s = 1 / sqrt(var + epsilon), y = ((x - c) * s) * gamma + beta with c = mean
            (c = 0 with rms_scaling, Keras's deprecated variant: y = x * s * gamma).
  backward  xh = (x - c) * s, w = dy * gamma; A = sum(w), B = sum(w * xh) in double;
            dx = s * w - (s * B / C) * (x - mean) * s - s * A / C (A = 0 with rms_scaling);
            dgamma += dy * xh, dbeta += dy, in per-thread double partials added in thread
            order (deterministic for a given thread count).
The row reductions run on LANES independent double accumulators (a vector register's worth
or more), added in a fixed order: GCC does not reassociate a plain floating sum, so a single
accumulator would stay scalar.

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

    #define CYNET_LN_LANES 16

    /* s = sum over i < n of EXPR(i), EXPR a double, on CYNET_LN_LANES accumulators */
    #define CYNET_LN_REDUCE(s, n, EXPR) do {                                                  \
            double acc_[CYNET_LN_LANES]; Py_ssize_t i_ = 0; int j_;                           \
            for (j_ = 0; j_ < CYNET_LN_LANES; j_++) acc_[j_] = 0.0;                          \
            for (; i_ + CYNET_LN_LANES <= (n); i_ += CYNET_LN_LANES)                          \
                for (j_ = 0; j_ < CYNET_LN_LANES; j_++) { Py_ssize_t i = i_ + j_; acc_[j_] += (EXPR); } \
            for (; i_ < (n); i_++) { Py_ssize_t i = i_; acc_[0] += (EXPR); }                 \
            s = 0.0;                                                                          \
            for (j_ = 0; j_ < CYNET_LN_LANES; j_++) s += acc_[j_];                           \
        } while (0)

    #define CYNET_LN_KERNELS(T, S)                                                              \
    /* layer norm forward over rows [0, M) of (M, C) */                                          \
    CYNET_CLONES static void cynet_ln_fwd_##S(const T* x, T* y, Py_ssize_t M, Py_ssize_t C,     \
            const T* g, const T* b, double eps, int rms, T* mean, T* inv) {                      \
        Py_ssize_t r, i;                                                                         \
        for (r = 0; r < M; r++) {                                                                \
            const T* xr = x + r * C; T* yr = y + r * C;                                          \
            double mu, var, sd; T m, st, c;                                                      \
            CYNET_LN_REDUCE(mu, C, (double)xr[i]);                                               \
            mu = mu / (double)C;                                                                 \
            CYNET_LN_REDUCE(var, C, ((double)xr[i] - mu) * ((double)xr[i] - mu));                \
            sd = 1.0 / sqrt(var / (double)C + eps);                                              \
            m = (T)mu; st = (T)sd; c = rms ? (T)0 : m;                                           \
            mean[r] = m; inv[r] = st;                                                            \
            CYNET_IVDEP                                                                          \
            for (i = 0; i < C; i++) yr[i] = ((xr[i] - c) * st) * g[i] + b[i];                    \
        }                                                                                        \
    }                                                                                            \
    /* layer norm backward over rows [0, M); dg, db: C doubles, accumulated into */             \
    CYNET_CLONES static void cynet_ln_bwd_##S(const T* dy, const T* x, T* dx, Py_ssize_t M,     \
            Py_ssize_t C, const T* g, const T* mean, const T* inv, int rms, double* dg,         \
            double* db) {                                                                        \
        Py_ssize_t r, i;                                                                         \
        const double inv_c = 1.0 / (double)C;                                                    \
        for (r = 0; r < M; r++) {                                                                \
            const T* dr = dy + r * C; const T* xr = x + r * C; T* out = dx + r * C;              \
            const T m = mean[r], st = inv[r], c = rms ? (T)0 : m;                                \
            double A = 0.0, B, s = (double)st; T k1, k2;                                         \
            if (!rms) CYNET_LN_REDUCE(A, C, (double)(dr[i] * g[i]));                             \
            CYNET_LN_REDUCE(B, C, (double)((dr[i] * g[i]) * ((xr[i] - c) * st)));                \
            k1 = (T)(-s * A * inv_c); k2 = (T)(-s * B * inv_c);                                  \
            if (rms) {                                                                           \
                CYNET_IVDEP                                                                      \
                for (i = 0; i < C; i++) {                                                        \
                    T d = dr[i];                                                                 \
                    out[i] = (st * (d * g[i]) + k2 * ((xr[i] - m) * st)) + k1;                   \
                    dg[i] += (double)(d * (xr[i] * st)); db[i] += (double)d;                     \
                }                                                                                \
            } else {                                                                             \
                CYNET_IVDEP                                                                      \
                for (i = 0; i < C; i++) {                                                        \
                    T d = dr[i], xh = (xr[i] - m) * st;                                          \
                    out[i] = (st * (d * g[i]) + k2 * xh) + k1;                                   \
                    dg[i] += (double)(d * xh); db[i] += (double)d;                               \
                }                                                                                \
            }                                                                                    \
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
                        double* db) noexcept nogil
    void cynet_ln_bwd_d(const double* dy, const double* x, double* dx, Py_ssize_t M, Py_ssize_t C,
                        const double* g, const double* mean, const double* inv, int rms, double* dg,
                        double* db) noexcept nogil
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
    cdef Py_ssize_t t, r0, r1
    for t in prange(nt, nogil=True, schedule="static", num_threads=nt):
        r0 = (t * M) // nt
        r1 = ((t + 1) * M) // nt
        if floating is float:
            cynet_ln_bwd_f(&dy[r0, 0], &x[r0, 0], &dx[r0, 0], r1 - r0, C, &g[0], &mean[r0],
                           &inv_std[r0], rms, &pg[t, 0], &pb[t, 0])
        else:
            cynet_ln_bwd_d(&dy[r0, 0], &x[r0, 0], &dx[r0, 0], r1 - r0, C, &g[0], &mean[r0],
                           &inv_std[r0], rms, &pg[t, 0], &pb[t, 0])
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
