"""Batch normalization kernels (Keras 3 semantics, feature axis last), typed Cython.

x is viewed as (M, C): M rows (every leading axis of the layer input flattened) and C
features, C-contiguous, so every pass walks the rows with C innermost.

Every pass runs a prange over nt disjoint row blocks (nt = 1 for small inputs).
Training forward, two passes over x:
  1. statistics: each thread's block of rows is read in chunks that stay in cache; a chunk's
     mean and sum of squared deviations are computed two-pass in double (the second pass
     reads from cache) and merged into the block's running (mean, M2) with Chan's formula.
     The per-thread partials are merged in thread order, so the result is deterministic for
     a given thread count and accurate for data with a large offset (no sum-of-squares
     minus square-of-sum).
  2. normalisation: y = (x - mean) * scale + beta, scale = gamma * inv_std.
Backward, two passes: one reduction pass (per-thread partial sums of dy and
dy * (x - mean), accumulated in double), then dx = a * dy + b * (x - mean) + k with
per-feature a, b, k.
Per-feature coefficients are computed in double and rounded once to x's dtype; the NumPy
twin (norm_numpy.py) uses the same formulas in the same order.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt

import numpy as np

from cynet._kernels._check cimport CY_SPAN
from cynet._kernels._common cimport dtype_of
from cynet._kernels._openmp cimport threads_for, COST_WINDOW

__all__ = ["batch_norm_train_forward", "batch_norm_inference_forward", "batch_norm_backward"]

# Statistics chunks: about CHUNK_ELEMS elements (re-read from L1/L2 by the chunk's second
# pass), and at least CHUNK_MIN_ROWS rows so the per-chunk merge stays cheap for wide C.
cdef Py_ssize_t CHUNK_ELEMS = 8192
cdef Py_ssize_t CHUNK_MIN_ROWS = 16


# ----------------------------------------------------------------------------------------------
# inner helpers (no Python objects, no allocation)

cdef inline void _block_moments(const floating* x, Py_ssize_t R, Py_ssize_t C,
                                double* mean, double* m2, double* cm, double* cq) noexcept nogil:
    """mean[C], m2[C] (OUT) of the R rows at x (row stride C); cm, cq: C doubles of scratch.

    The rows are taken in chunks that stay in cache; each chunk's moments are computed two-pass
    (the second pass reads from cache) and merged into the running (mean, m2) with Chan's
    formula: with d = chunk mean - mean, mean += d n_b / n, m2 += m2_b + d^2 n_a n_b / n.
    """
    cdef Py_ssize_t ch = CHUNK_ELEMS // C
    cdef Py_ssize_t r0, r1, i, c
    cdef const floating* row
    cdef double n_a = 0.0, n_b, f, w, d
    if ch < CHUNK_MIN_ROWS:
        ch = CHUNK_MIN_ROWS
    for c in range(C):
        mean[c] = 0.0
        m2[c] = 0.0
    r0 = 0
    while r0 < R:
        r1 = r0 + ch
        if r1 > R:
            r1 = R
        n_b = <double>(r1 - r0)
        # chunk pass 1: mean
        for c in range(C):
            cm[c] = 0.0
            cq[c] = 0.0
        for i in range(r0, r1):
            row = x + i * C
            for c in range(C):
                cm[c] += row[c]
        for c in range(C):
            cm[c] = cm[c] / n_b     # a division: exact whenever the mean is representable
        # chunk pass 2 (from cache): sum of squared deviations about the chunk mean
        for i in range(r0, r1):
            row = x + i * C
            for c in range(C):
                d = row[c] - cm[c]
                cq[c] += d * d
        # Chan: merge (n_a, mean, m2) with (n_b, cm, cq)
        f = n_b / (n_a + n_b)
        w = n_a * f
        for c in range(C):
            d = cm[c] - mean[c]
            mean[c] += d * f
            m2[c] += cq[c] + d * d * w
        n_a += n_b
        r0 = r1


cdef inline void _normalize_rows(const floating* x, floating* y, Py_ssize_t R, Py_ssize_t C,
                                 const floating* m, const floating* s,
                                 const floating* b) noexcept nogil:
    """y = (x - m) * s + b over R rows of C (row stride C)."""
    cdef Py_ssize_t i, c
    cdef const floating* xr
    cdef floating* yr
    for i in range(R):
        xr = x + i * C
        yr = y + i * C
        for c in range(C):
            yr[c] = (xr[c] - m[c]) * s[c] + b[c]


cdef inline void _block_grad_sums(const floating* dy, const floating* x, Py_ssize_t R,
                                  Py_ssize_t C, const floating* m, double* sb,
                                  double* sg) noexcept nogil:
    """sb[C] = sum dy, sg[C] = sum dy * (x - m) (OUT) over R rows, accumulated in double
    (each product dy * (x - m) is formed in x's dtype, like the twin's)."""
    cdef Py_ssize_t i, c
    cdef const floating* dr
    cdef const floating* xr
    for c in range(C):
        sb[c] = 0.0
        sg[c] = 0.0
    for i in range(R):
        dr = dy + i * C
        xr = x + i * C
        for c in range(C):
            sb[c] += dr[c]
            sg[c] += dr[c] * (xr[c] - m[c])


cdef inline void _dx_rows(const floating* dy, const floating* x, floating* dx, Py_ssize_t R,
                          Py_ssize_t C, const floating* m, const floating* a,
                          const floating* b, const floating* k) noexcept nogil:
    """dx = a * dy + b * (x - m) + k over R rows of C (row stride C)."""
    cdef Py_ssize_t i, c
    cdef const floating* dr
    cdef const floating* xr
    cdef floating* out
    for i in range(R):
        dr = dy + i * C
        xr = x + i * C
        out = dx + i * C
        for c in range(C):
            out[c] = (a[c] * dr[c] + b[c] * (xr[c] - m[c])) + k[c]


# ----------------------------------------------------------------------------------------------
# passes: threads own disjoint row blocks [t M / nt, (t + 1) M / nt); the OpenMP region keeps
# each hot loop in a small outlined function of its own (nt = 1 runs the same code serially)

cdef inline int _team(Py_ssize_t M, Py_ssize_t C) noexcept nogil:
    """Threads for a pass over (M, C): never more than M (each thread owns >= 1 row)."""
    cdef int nt = threads_for(M * C, COST_WINDOW)
    if nt > M:
        nt = <int>M
    return nt if nt >= 1 else 1


cdef void _moments_pass(const floating* x, Py_ssize_t M, Py_ssize_t C, int nt,
                        double* part, double* mean, double* var) noexcept nogil:
    """mean, var (OUT, C doubles): per-feature mean and biased variance of x (M, C).
    part: 4 * C * nt doubles of scratch (per thread: mean | m2 | chunk scratch x 2)."""
    cdef Py_ssize_t t, r0, r1, c
    cdef double n_a, n_b, f, d
    cdef double* p
    for t in prange(nt, schedule="static", num_threads=nt):
        r0 = (t * M) // nt
        r1 = ((t + 1) * M) // nt
        p = part + CY_SPAN(4 * C * t, 4 * C, 4 * C * nt)
        _block_moments(x + CY_SPAN(r0 * C, (r1 - r0) * C, M * C), r1 - r0, C, p, p + C, p + 2 * C, p + 3 * C)
    # merge the per-thread partials in thread order (Chan)
    for c in range(C):
        mean[c] = part[c]
        var[c] = part[C + c]
    n_a = <double>(M // nt)
    for t in range(1, nt):
        n_b = <double>(((t + 1) * M) // nt - (t * M) // nt)
        f = n_b / (n_a + n_b)
        p = part + CY_SPAN(4 * C * t, 4 * C, 4 * C * nt)
        for c in range(C):
            d = p[c] - mean[c]
            mean[c] += d * f
            var[c] += p[C + c] + d * d * n_a * f
        n_a += n_b
    for c in range(C):
        var[c] = var[c] / <double>M


cdef void _normalize_pass(const floating* x, floating* y, Py_ssize_t M, Py_ssize_t C, int nt,
                          const floating* m, const floating* s, const floating* b) noexcept nogil:
    """y = (x - m) * s + b for x, y (M, C)."""
    cdef Py_ssize_t t, r0, r1
    for t in prange(nt, schedule="static", num_threads=nt):
        r0 = (t * M) // nt
        r1 = ((t + 1) * M) // nt
        _normalize_rows(x + CY_SPAN(r0 * C, (r1 - r0) * C, M * C), y + CY_SPAN(r0 * C, (r1 - r0) * C, M * C),
                        r1 - r0, C, m, s, b)


cdef void _grad_sums_pass(const floating* dy, const floating* x, Py_ssize_t M, Py_ssize_t C,
                          int nt, const floating* m, double* part, double* sb,
                          double* sg) noexcept nogil:
    """sb = sum dy, sg = sum dy * (x - m) (OUT, C doubles) over the rows of dy, x (M, C).
    part: 2 * C * nt doubles of scratch (per-thread partial sums, added in thread order)."""
    cdef Py_ssize_t t, r0, r1, c
    cdef double* p
    for t in prange(nt, schedule="static", num_threads=nt):
        r0 = (t * M) // nt
        r1 = ((t + 1) * M) // nt
        p = part + CY_SPAN(2 * C * t, 2 * C, 2 * C * nt)
        _block_grad_sums(dy + CY_SPAN(r0 * C, (r1 - r0) * C, M * C), x + CY_SPAN(r0 * C, (r1 - r0) * C, M * C),
                         r1 - r0, C, m, p, p + C)
    for c in range(C):
        sb[c] = part[c]
        sg[c] = part[C + c]
    for t in range(1, nt):
        p = part + CY_SPAN(2 * C * t, 2 * C, 2 * C * nt)
        for c in range(C):
            sb[c] += p[c]
            sg[c] += p[C + c]


cdef void _dx_pass(const floating* dy, const floating* x, floating* dx, Py_ssize_t M,
                   Py_ssize_t C, int nt, const floating* m, const floating* a,
                   const floating* b, const floating* k) noexcept nogil:
    """dx = a * dy + b * (x - m) + k for dy, x, dx (M, C)."""
    cdef Py_ssize_t t, r0, r1
    for t in prange(nt, schedule="static", num_threads=nt):
        r0 = (t * M) // nt
        r1 = ((t + 1) * M) // nt
        _dx_rows(dy + CY_SPAN(r0 * C, (r1 - r0) * C, M * C), x + CY_SPAN(r0 * C, (r1 - r0) * C, M * C),
                 dx + CY_SPAN(r0 * C, (r1 - r0) * C, M * C), r1 - r0, C, m, a, b, k)


# ----------------------------------------------------------------------------------------------
# entry points

def _check_rows(name, Py_ssize_t M, Py_ssize_t C):
    if M < 1 or C < 1:
        raise ValueError(f"{name} must have M >= 1 rows and C >= 1 features; received shape ({M}, {C})")


def _check_vec(name, Py_ssize_t n, Py_ssize_t C):
    if n != C:
        raise ValueError(f"{name} must have shape ({C},); received shape ({n},)")


def _param(a, Py_ssize_t C, dtype, double default):
    """A (C,) parameter of x's dtype; None -> filled with `default`."""
    if a is None:
        return np.full(C, default, dtype=dtype)
    return a


def batch_norm_train_forward(const floating[:, ::1] x, gamma, beta,
                             floating[::1] moving_mean, floating[::1] moving_variance,
                             double momentum, double epsilon):
    """Training-mode batch normalization over the rows of x.

    x: (M, C) float32|float64, C-contiguous. gamma, beta: (C,) in x's dtype, or None (ones,
    zeros). moving_mean, moving_variance: IN/OUT (C,) in x's dtype, writable, C-contiguous;
    updated in place: moving = moving * momentum + batch_stat * (1 - momentum), with the
    biased batch variance. Returns (y (M, C), mean (C,), inv_std (C,)) in x's dtype, with
    inv_std = 1 / sqrt(var + epsilon) and y = gamma * (x - mean) * inv_std + beta.
    """
    cdef Py_ssize_t M = x.shape[0], C = x.shape[1]
    _check_rows("x", M, C)
    dtype = dtype_of(<floating>0)
    cdef const floating[::1] g = _param(gamma, C, dtype, 1.0)
    cdef const floating[::1] b = _param(beta, C, dtype, 0.0)
    _check_vec("gamma", g.shape[0], C)
    _check_vec("beta", b.shape[0], C)
    _check_vec("moving_mean", moving_mean.shape[0], C)
    _check_vec("moving_variance", moving_variance.shape[0], C)
    if not (0.0 <= momentum <= 1.0):
        raise ValueError(f"momentum must be in [0, 1]; received momentum={momentum}")
    if not (epsilon > 0.0):
        raise ValueError(f"epsilon must be > 0; received epsilon={epsilon}")

    cdef int nt = _team(M, C)
    y_out = np.empty((M, C), dtype=dtype)
    mean_out = np.empty(C, dtype=dtype)
    inv_out = np.empty(C, dtype=dtype)
    cdef floating[:, ::1] y = y_out
    cdef floating[::1] mean_f = mean_out
    cdef floating[::1] inv_f = inv_out
    cdef floating[::1] scale = np.empty(C, dtype=dtype)
    cdef double[::1] stats = np.empty(2 * C, dtype=np.float64)      # mean | var
    cdef double[::1] part = np.empty(4 * C * nt, dtype=np.float64)
    cdef Py_ssize_t c
    cdef double inv, mu, var

    with nogil:
        _moments_pass(&x[0, 0], M, C, nt, &part[0], &stats[0], &stats[C])
        for c in range(C):
            mu = stats[c]
            var = stats[C + c]
            inv = 1.0 / sqrt(var + epsilon)
            mean_f[c] = <floating>mu
            inv_f[c] = <floating>inv
            scale[c] = <floating>(g[c] * inv)
            moving_mean[c] = <floating>(moving_mean[c] * momentum + mu * (1.0 - momentum))
            moving_variance[c] = <floating>(moving_variance[c] * momentum + var * (1.0 - momentum))
        _normalize_pass(&x[0, 0], &y[0, 0], M, C, nt, &mean_f[0], &scale[0], &b[0])
    return y_out, mean_out, inv_out


def batch_norm_inference_forward(const floating[:, ::1] x, gamma, beta,
                                 const floating[::1] moving_mean,
                                 const floating[::1] moving_variance, double epsilon):
    """Inference-mode batch normalization with the moving statistics (one fused pass).

    x: (M, C) float32|float64, C-contiguous. gamma, beta: (C,) in x's dtype, or None;
    moving_mean, moving_variance: (C,) in x's dtype (read only). Returns y (M, C) in x's
    dtype: y = (x - moving_mean) * scale + beta, scale = gamma / sqrt(moving_variance + epsilon).
    """
    cdef Py_ssize_t M = x.shape[0], C = x.shape[1]
    _check_rows("x", M, C)
    dtype = dtype_of(<floating>0)
    cdef const floating[::1] g = _param(gamma, C, dtype, 1.0)
    cdef const floating[::1] b = _param(beta, C, dtype, 0.0)
    _check_vec("gamma", g.shape[0], C)
    _check_vec("beta", b.shape[0], C)
    _check_vec("moving_mean", moving_mean.shape[0], C)
    _check_vec("moving_variance", moving_variance.shape[0], C)
    if not (epsilon > 0.0):
        raise ValueError(f"epsilon must be > 0; received epsilon={epsilon}")

    cdef int nt = _team(M, C)
    y_out = np.empty((M, C), dtype=dtype)
    cdef floating[:, ::1] y = y_out
    cdef floating[::1] scale = np.empty(C, dtype=dtype)
    cdef Py_ssize_t c
    with nogil:
        for c in range(C):
            scale[c] = <floating>(<double>g[c] / sqrt(<double>moving_variance[c] + epsilon))
        _normalize_pass(&x[0, 0], &y[0, 0], M, C, nt, &moving_mean[0], &scale[0], &b[0])
    return y_out


def batch_norm_backward(const floating[:, ::1] dy, const floating[:, ::1] x, gamma,
                        const floating[::1] mean, const floating[::1] inv_std):
    """Training-mode batch normalization gradient, through the batch statistics.

    dy, x: (M, C) float32|float64, same shape and dtype, C-contiguous. gamma: (C,) in x's
    dtype, or None (ones). mean, inv_std: (C,) as returned by batch_norm_train_forward.
    Returns (dx (M, C), dgamma (C,), dbeta (C,)) in x's dtype: dbeta = sum(dy),
    dgamma = sum(dy * xhat), dx = gamma * inv_std / M * (M dy - dbeta - xhat dgamma).
    """
    cdef Py_ssize_t M = x.shape[0], C = x.shape[1]
    _check_rows("x", M, C)
    if dy.shape[0] != M or dy.shape[1] != C:
        raise ValueError(f"dy must have x's shape ({M}, {C}); received shape ({dy.shape[0]}, {dy.shape[1]})")
    dtype = dtype_of(<floating>0)
    cdef const floating[::1] g = _param(gamma, C, dtype, 1.0)
    _check_vec("gamma", g.shape[0], C)
    _check_vec("mean", mean.shape[0], C)
    _check_vec("inv_std", inv_std.shape[0], C)

    cdef int nt = _team(M, C)
    dx_out = np.empty((M, C), dtype=dtype)
    dgamma_out = np.empty(C, dtype=dtype)
    dbeta_out = np.empty(C, dtype=dtype)
    cdef floating[:, ::1] dx = dx_out
    cdef floating[::1] dgamma = dgamma_out
    cdef floating[::1] dbeta = dbeta_out
    cdef double[::1] sums = np.empty(2 * C, dtype=np.float64)       # sum dy | sum dy (x - mean)
    cdef double[::1] part = np.empty(2 * C * nt, dtype=np.float64)
    cdef floating[::1] coef = np.empty(3 * C, dtype=dtype)         # a | b | k
    cdef Py_ssize_t c
    cdef double sb, s, a, dg

    with nogil:
        _grad_sums_pass(&dy[0, 0], &x[0, 0], M, C, nt, &mean[0], &part[0], &sums[0], &sums[C])
        for c in range(C):
            sb = sums[c]
            s = inv_std[c]
            dg = sums[C + c] * s
            a = g[c] * s
            dbeta[c] = <floating>sb
            dgamma[c] = <floating>dg
            coef[c] = <floating>a
            coef[C + c] = <floating>(-a * dg * s / M)
            coef[2 * C + c] = <floating>(-a * sb / M)
        _dx_pass(&dy[0, 0], &x[0, 0], &dx[0, 0], M, C, nt, &mean[0], &coef[0], &coef[C], &coef[2 * C])
    return dx_out, dgamma_out, dbeta_out

