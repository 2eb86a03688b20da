"""Activation and loss kernels (compiled): fused softmax + cross-entropy, sigmoid + binary
cross-entropy, softmax, and the elementwise activations, forward and backward.

Twin: activations_numpy.py (same names, signatures and results).

Layouts. The softmax family works on C-contiguous 2-D (N, K) arrays: N rows (samples, or
samples x timesteps), K classes along the contiguous axis. The elementwise kernels work on
C-contiguous 1-D arrays (the public layer in cynet.kernels.activations flattens and reshapes).
Every kernel allocates and returns new arrays; no argument is written.

Numerical stability. Softmax and log-softmax subtract the row maximum before exp, so logits of
any finite magnitude give finite probabilities, losses and gradients. Sigmoid and the binary
cross-entropy use exp(-|z|) only. Row sums are accumulated in double for both dtypes.

Threads. The softmax family runs prange over rows, the elementwise kernels prange over chunks
of CHUNK elements; both only when the work is large enough to pay for a team (the thread policy, _openmp.threads_for).
"""
import numpy as np

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, expm1, log, log1p, log1pf, tanh
from libc.stdint cimport int32_t, int64_t

from cynet._kernels._check cimport CY_AT, CY_SPAN
from cynet._kernels._common cimport dtype_of
from cynet._kernels._openmp cimport threads_for, COST_ROWS, COST_STREAM, COST_TRANSCENDENTAL

# Elements per prange chunk for the elementwise kernels (a few pages of float32).
cdef Py_ssize_t CHUNK = 16384


# ---------------------------------------------------------------------------------------------
# Scalar helpers.
#
# float32 loops are written so that GCC vectorises them (SSE2, 4 lanes, at the -O3 baseline):
# - GCC vectorises a loop only if it has no branches, and with the default -ftrapping-math it
#   will not turn `c ? a : b` into a blend when a or b is arithmetic it can sink into a branch;
#   `_sel` selects with bit masks between values already computed instead.
# - exp is written out for x <= 0 (Cody-Waite range reduction and the Cephes expf polynomial,
#   ~1 ulp, no libm call): a scalar libm call per element keeps the whole loop scalar, an order
#   of magnitude slower than NumPy's SIMD exp (bench/README.md, "Activations"). Every exp in this module has an argument <= 0 (shifted logits,
#   -|x|, min(x, 0)), so it never overflows; NaN propagates; below -87 it returns 0.
# - float32 tanh is cynet_simd.h's, in a C loop built by CYNET_CLONES for AVX2 and AVX-512.
# float64 loops call libm (exp, expm1, tanh, log1p): the SSE2 baseline has no 64-bit integer
# compare, so GCC cannot vectorise a float64 select there and scalar libm is the faster choice.

from cynet._kernels._simd cimport cynet_f32_bits, cynet_f32_from_bits, cynet_self

cdef extern from "cynet_activations.h" nogil:
    void cynet_tanh_fwd_f32(const float* x, float* y, Py_ssize_t n) noexcept


cdef inline floating _sel(bint c, floating a, floating b) noexcept nogil:
    """a if c else b; branch-free for float32 (a and b are both evaluated by the caller)."""
    if floating is float:
        return cynet_self(c, a, b)
    else:
        return a if c else b


cdef inline floating _neg_abs(floating x) noexcept nogil:
    """-|x| (NaN stays NaN)."""
    return _sel(x >= <floating>0, -x, x)


cdef inline float _expf_nonpos(float x) noexcept nogil:
    """exp(x) for x <= 0 or NaN, vectorisable; 0 below -87."""
    cdef float lo = <float>-87.0
    cdef float magic = <float>12582912.0            # 1.5 * 2**23: adding it rounds to an integer
    cdef bint under = x < lo
    cdef float xc = _sel(under, lo, x)              # NaN stays NaN
    cdef float t = xc * <float>1.44269504088896341 + magic
    cdef float n = t - magic                        # round(xc / ln 2), in [-126, 0]
    cdef int32_t ni = cynet_f32_bits(t) - cynet_f32_bits(magic)
    cdef float r = (xc - n * <float>0.693359375) - n * <float>-2.12194440e-4
    cdef float p = <float>1.9875691500e-4
    p = p * r + <float>1.3981999507e-3
    p = p * r + <float>8.3334519073e-3
    p = p * r + <float>4.1665795894e-2
    p = p * r + <float>1.6666665459e-1
    p = p * r + <float>5.0000001201e-1
    p = (p * r) * r + r + <float>1.0
    p = p * cynet_f32_from_bits((ni + 127) << 23)    # times 2**n
    return _sel(under, <float>0.0, p)


cdef inline floating _exp(floating x) noexcept nogil:
    """exp(x) for x <= 0 (or NaN)."""
    if floating is float:
        return _expf_nonpos(x)
    else:
        return exp(x)


cdef inline floating _expm1(floating x) noexcept nogil:
    """expm1(x) for x <= 0 (or NaN). float32: Taylor series above -0.35 (full relative accuracy
    near 0), exp(x) - 1 below (no cancellation there)."""
    cdef float p
    if floating is float:
        p = <float>(1.0 / 40320.0)
        p = p * x + <float>(1.0 / 5040.0)
        p = p * x + <float>(1.0 / 720.0)
        p = p * x + <float>(1.0 / 120.0)
        p = p * x + <float>(1.0 / 24.0)
        p = p * x + <float>(1.0 / 6.0)
        p = p * x + <float>0.5
        p = (p * x) * x + x
        return _sel(x > <float>-0.35, p, _expf_nonpos(x) - <float>1)
    else:
        return expm1(x)


cdef inline floating _log1p(floating x) noexcept nogil:
    if floating is float:
        return log1pf(x)
    else:
        return log1p(x)


cdef inline floating _sigmoid_from(floating x, floating e) noexcept nogil:
    """sigmoid(x) given e = exp(-|x|): 1/(1+e) for x >= 0, e/(1+e) otherwise (NaN stays NaN)."""
    cdef floating r = <floating>1 / (<floating>1 + e)
    return _sel(x < <floating>0, e * r, r)


# ---------------------------------------------------------------------------------------------
# Row helpers. Reductions keep four partial results to break the dependency chain (GCC
# vectorises the sums in pairs of doubles).

cdef inline floating _row_max(const floating* z, Py_ssize_t k) noexcept nogil:
    """Maximum of a row (k >= 1), four running maxima (maxss). A NaN may be skipped here: it
    makes the row's exp-sum NaN anyway."""
    cdef floating m0 = z[0], m1 = z[0], m2 = z[0], m3 = z[0], v
    cdef Py_ssize_t j = 1
    while j + 4 <= k:
        v = z[j]
        m0 = v if v > m0 else m0
        v = z[j + 1]
        m1 = v if v > m1 else m1
        v = z[j + 2]
        m2 = v if v > m2 else m2
        v = z[j + 3]
        m3 = v if v > m3 else m3
        j += 4
    while j < k:
        v = z[j]
        m0 = v if v > m0 else m0
        j += 1
    m0 = m1 if m1 > m0 else m0
    m2 = m3 if m3 > m2 else m2
    return m2 if m2 > m0 else m0


cdef inline double _row_sum(const floating* e, Py_ssize_t k) noexcept nogil:
    """sum(e), accumulated in double."""
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    cdef Py_ssize_t j = 0
    while j + 4 <= k:
        s0 += e[j]
        s1 += e[j + 1]
        s2 += e[j + 2]
        s3 += e[j + 3]
        j += 4
    while j < k:
        s0 += e[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


cdef inline double _row_dot(const floating* a, const floating* b, floating shift, Py_ssize_t k) noexcept nogil:
    """sum(a * (b - shift)), accumulated in double."""
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    cdef Py_ssize_t j = 0
    while j + 4 <= k:
        s0 += <double>a[j] * (b[j] - shift)
        s1 += <double>a[j + 1] * (b[j + 1] - shift)
        s2 += <double>a[j + 2] * (b[j + 2] - shift)
        s3 += <double>a[j + 3] * (b[j + 3] - shift)
        j += 4
    while j < k:
        s0 += <double>a[j] * (b[j] - shift)
        j += 1
    return (s0 + s1) + (s2 + s3)


cdef inline void _exp_shifted(const floating* z, floating m, floating* e, Py_ssize_t k) noexcept nogil:
    """e[j] = exp(z[j] - m) (m the row max, so every argument is <= 0)."""
    cdef Py_ssize_t j
    for j in range(k):
        e[j] = _exp(z[j] - m)


# ---------------------------------------------------------------------------------------------
# Row kernels of the softmax family: one fused pass per row (max, exp, sum, normalise/gradient),
# the row staying in cache between the steps.

cdef inline floating _sce_sparse_row(const floating* z, int64_t label, floating* g,
                                     Py_ssize_t k) noexcept nogil:
    # 1. m = max(z); 2. g = exp(z - m), s = sum(g); 3. g = g / s - onehot(label);
    # 4. loss = log(s) - (z[label] - m)
    cdef floating m = _row_max(z, k)
    _exp_shifted(z, m, g, k)
    cdef double s = _row_sum(g, k)
    cdef floating inv = <floating>(1.0 / s)
    cdef Py_ssize_t j
    for j in range(k):
        g[j] = g[j] * inv
    g[CY_AT(label, k)] -= 1
    return <floating>(log(s) - <double>(z[CY_AT(label, k)] - m))


cdef inline floating _sce_dense_row(const floating* z, const floating* t, floating* g,
                                    Py_ssize_t k) noexcept nogil:
    # 1. m = max(z); 2. g = exp(z - m), s = sum(g), T = sum(t), tz = sum(t * (z - m));
    # 3. g = g * (T / s) - t; 4. loss = T * log(s) - tz
    cdef floating m = _row_max(z, k)
    _exp_shifted(z, m, g, k)
    cdef double s = _row_sum(g, k)
    cdef double tsum = _row_sum(t, k)
    cdef double tz = _row_dot(t, z, m, k)
    cdef floating scale = <floating>(tsum / s)
    cdef Py_ssize_t j
    for j in range(k):
        g[j] = g[j] * scale - t[j]
    return <floating>(tsum * log(s) - tz)


cdef inline void _softmax_row(const floating* x, floating* y, Py_ssize_t k) noexcept nogil:
    # 1. m = max(x); 2. y = exp(x - m), s = sum(y); 3. y = y / s
    cdef floating m = _row_max(x, k)
    _exp_shifted(x, m, y, k)
    cdef floating inv = <floating>(1.0 / _row_sum(y, k))
    cdef Py_ssize_t j
    for j in range(k):
        y[j] = y[j] * inv


cdef inline void _softmax_backward_row(const floating* dy, const floating* y, floating* dx,
                                       Py_ssize_t k) noexcept nogil:
    # 1. s = sum(dy * y); 2. dx = y * (dy - s)
    cdef floating s = <floating>_row_dot(dy, y, <floating>0, k)
    cdef Py_ssize_t j
    for j in range(k):
        dx[j] = y[j] * (dy[j] - s)


# ---------------------------------------------------------------------------------------------
# Elementwise chunk kernels: plain C loops over [0, n) of raw pointers (vectorised by GCC).

cdef inline void _relu_fwd(const floating* x, floating* y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating v
    for i in range(n):
        v = x[i]
        y[i] = _sel(v < <floating>0, <floating>0, v)        # NaN passes through


cdef inline void _relu_bwd(const floating* dy, const floating* y, floating* dx, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dx[i] = _sel(y[i] > <floating>0, dy[i], <floating>0)


cdef inline void _leaky_fwd(const floating* x, floating* y, floating s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating v
    for i in range(n):
        v = x[i]
        y[i] = _sel(v > <floating>0, v, v * s)


cdef inline void _leaky_bwd(const floating* dy, const floating* x, floating* dx, floating s,
                            Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating d
    for i in range(n):
        d = dy[i]
        dx[i] = _sel(x[i] > <floating>0, d, d * s)


cdef inline void _elu_fwd(const floating* x, floating* y, floating a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating v
    cdef bint pos
    for i in range(n):
        v = x[i]
        pos = v > <floating>0
        y[i] = _sel(pos, v, _expm1(_sel(pos, <floating>0, v)) * a)   # expm1 argument clipped to <= 0


cdef inline void _elu_bwd(const floating* dy, const floating* x, const floating* y, floating* dx,
                          floating a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating d
    for i in range(n):
        d = dy[i]
        dx[i] = _sel(x[i] > <floating>0, d, (y[i] + a) * d)


cdef inline void _sigmoid_fwd(const floating* x, floating* y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating v
    for i in range(n):
        v = x[i]
        y[i] = _sigmoid_from(v, _exp(_neg_abs(v)))


cdef inline void _sigmoid_bwd(const floating* dy, const floating* y, floating* dx, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dx[i] = dy[i] * (y[i] * (<floating>1 - y[i]))


cdef inline void _tanh_fwd(const floating* x, floating* y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    if floating is float:
        cynet_tanh_fwd_f32(x, y, n)
    else:
        for i in range(n):
            y[i] = tanh(x[i])


cdef inline void _tanh_bwd(const floating* dy, const floating* y, floating* dx, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dx[i] = dy[i] * (<floating>1 - y[i] * y[i])


cdef inline void _sigmoid_ce(const floating* z, const floating* y, floating* loss, floating* g,
                             Py_ssize_t n) noexcept nogil:
    # e = exp(-|z|), r = 1 / (1 + e); loss = max(z, 0) - z*y + log1p(e);
    # dlogits = sigmoid(z) - y = e*r - y for z < 0, (1 - y) - e*r for z >= 0 (no cancellation at y = 1)
    cdef Py_ssize_t i
    cdef floating v, t, e, er
    for i in range(n):
        v = z[i]
        t = y[i]
        e = _exp(_neg_abs(v))
        er = e / (<floating>1 + e)
        loss[i] = (_sel(v > <floating>0, v, <floating>0) - v * t) + _log1p(e)
        g[i] = _sel(v < <floating>0, er - t, (<floating>1 - t) - er)


# ---------------------------------------------------------------------------------------------
# Python-facing checks and allocation.

cdef inline _empty(shape, floating tag):
    """A new array of `shape` in the dtype of the fused specialisation (tag: <floating>0)."""
    return np.empty(shape, dtype=dtype_of(tag))


cdef _check_rows(name, Py_ssize_t k):
    if k < 1:
        raise ValueError(f"{name} must have at least one class along its last axis (K >= 1); received K={k}")


cdef _check_same(name, tuple shape, other_name, tuple other_shape):
    if shape != other_shape:
        raise ValueError(f"{name} must have the shape of {other_name} {other_shape}; received shape {shape}")


cdef inline Py_ssize_t _n_chunks(Py_ssize_t n) noexcept nogil:
    return (n + CHUNK - 1) // CHUNK


# ---------------------------------------------------------------------------------------------
# Softmax family.

def softmax_cross_entropy_sparse(const floating[:, ::1] logits not None,
                                 const int64_t[::1] labels not None):
    """Fused softmax + cross-entropy with integer class labels.

    logits: (N, K) float32|float64, C-contiguous, K >= 1 (IN)
    labels: (N,) int64, C-contiguous, each in [0, K) (IN)
    Returns (loss, dlogits): loss (N,) = logsumexp(z) - z[label]; dlogits (N, K) =
    softmax(z) - onehot(label), the gradient of the per-sample loss (not divided by N).
    """
    cdef Py_ssize_t n = logits.shape[0], k = logits.shape[1], i
    cdef int64_t lo = 0, hi = 0
    _check_rows("logits", k)
    _check_same("labels", (labels.shape[0],), "logits.shape[:-1]", (n,))
    if n > 0:
        lo = hi = labels[0]
        with nogil:
            for i in range(n):
                if labels[i] < lo:
                    lo = labels[i]
                elif labels[i] > hi:
                    hi = labels[i]
        if lo < 0 or hi >= k:
            raise ValueError(f"labels must be class indices in [0, {k}) for K={k} classes; "
                             f"received values in [{lo}, {hi}]")
    loss_arr = _empty(n, <floating>0)
    g_arr = _empty((n, k), <floating>0)
    cdef floating[::1] loss = loss_arr
    cdef floating[:, ::1] g = g_arr
    if n == 0:
        return loss_arr, g_arr
    for i in prange(n, nogil=True, schedule="static", num_threads=threads_for(n * k, COST_ROWS)):
        loss[i] = _sce_sparse_row(&logits[i, 0], labels[i], &g[i, 0], k)
    return loss_arr, g_arr


def softmax_cross_entropy_dense(const floating[:, ::1] logits not None,
                                const floating[:, ::1] targets not None):
    """Fused softmax + cross-entropy with dense targets (one-hot or probabilities).

    logits: (N, K) float32|float64, C-contiguous, K >= 1 (IN)
    targets: (N, K) same dtype, C-contiguous (IN)
    Returns (loss, dlogits): loss (N,) = -sum_j t_j log_softmax(z)_j; dlogits (N, K) =
    softmax(z) * sum_j t_j - t, the gradient of the per-sample loss (not divided by N).
    """
    cdef Py_ssize_t n = logits.shape[0], k = logits.shape[1], i
    _check_rows("logits", k)
    _check_same("targets", (targets.shape[0], targets.shape[1]), "logits", (n, k))
    loss_arr = _empty(n, <floating>0)
    g_arr = _empty((n, k), <floating>0)
    cdef floating[::1] loss = loss_arr
    cdef floating[:, ::1] g = g_arr
    if n == 0:
        return loss_arr, g_arr
    for i in prange(n, nogil=True, schedule="static", num_threads=threads_for(n * k, COST_ROWS)):
        loss[i] = _sce_dense_row(&logits[i, 0], &targets[i, 0], &g[i, 0], k)
    return loss_arr, g_arr


def softmax_forward(const floating[:, ::1] x not None):
    """Softmax along the last axis.

    x: (N, K) float32|float64, C-contiguous, K >= 1 (IN)
    Returns y: (N, K), y = exp(x - max) / sum(exp(x - max)) per row.
    """
    cdef Py_ssize_t n = x.shape[0], k = x.shape[1], i
    _check_rows("x", k)
    y_arr = _empty((n, k), <floating>0)
    cdef floating[:, ::1] y = y_arr
    if n == 0:
        return y_arr
    for i in prange(n, nogil=True, schedule="static", num_threads=threads_for(n * k, COST_ROWS)):
        _softmax_row(&x[i, 0], &y[i, 0], k)
    return y_arr


def softmax_backward(const floating[:, ::1] dy not None, const floating[:, ::1] y not None):
    """Gradient of softmax along the last axis.

    dy: (N, K) float32|float64, C-contiguous, upstream gradient (IN)
    y: (N, K) same dtype, the softmax output (IN)
    Returns dx: (N, K), dx = y * (dy - sum(dy * y, axis=-1)).
    """
    cdef Py_ssize_t n = y.shape[0], k = y.shape[1], i
    _check_rows("y", k)
    _check_same("dy", (dy.shape[0], dy.shape[1]), "y", (n, k))
    dx_arr = _empty((n, k), <floating>0)
    cdef floating[:, ::1] dx = dx_arr
    if n == 0:
        return dx_arr
    for i in prange(n, nogil=True, schedule="static", num_threads=threads_for(n * k // 4, COST_ROWS)):
        _softmax_backward_row(&dy[i, 0], &y[i, 0], &dx[i, 0], k)
    return dx_arr


# ---------------------------------------------------------------------------------------------
# The elementwise driver: every elementwise entry point below is one op code run by _map, which
# allocates the outputs and runs the op's chunk kernel over chunks of CHUNK elements in a prange.
# The op is chosen once per chunk (a switch beside a loop of up to CHUNK elements), and each
# chunk kernel is inlined into its branch, vectorised as before.

cdef enum Op:
    RELU_FWD
    RELU_BWD
    LEAKY_FWD
    LEAKY_BWD
    ELU_FWD
    ELU_BWD
    SIGMOID_FWD
    SIGMOID_BWD
    TANH_FWD
    TANH_BWD
    SIGMOID_CE          # two outputs: loss, dlogits


cdef inline void _chunk(int op, const floating* a, const floating* b, const floating* c,
                        floating* out, floating* out2, floating p, Py_ssize_t n) noexcept nogil:
    """Op `op` over n elements: out (and out2) from the inputs a, b, c (those the op reads) and
    the scalar p (leaky_relu's slope, elu's alpha)."""
    if op == RELU_FWD:
        _relu_fwd(a, out, n)
    elif op == RELU_BWD:
        _relu_bwd(a, b, out, n)
    elif op == LEAKY_FWD:
        _leaky_fwd(a, out, p, n)
    elif op == LEAKY_BWD:
        _leaky_bwd(a, b, out, p, n)
    elif op == ELU_FWD:
        _elu_fwd(a, out, p, n)
    elif op == ELU_BWD:
        _elu_bwd(a, b, c, out, p, n)
    elif op == SIGMOID_FWD:
        _sigmoid_fwd(a, out, n)
    elif op == SIGMOID_BWD:
        _sigmoid_bwd(a, b, out, n)
    elif op == TANH_FWD:
        _tanh_fwd(a, out, n)
    elif op == TANH_BWD:
        _tanh_bwd(a, b, out, n)
    elif op == SIGMOID_CE:
        _sigmoid_ce(a, b, out, out2, n)


cdef object _map(int op, int cost, const floating[::1] a, const floating[::1] b, const floating[::1] c,
                 double p, bint two_outputs):
    """Run `op` over the n = len(a) elements of the inputs a, b, c (as long as a, checked by the
    caller; an input the op does not read is passed as a) on threads_for(n, cost) threads. Returns the new output array (n,), or the pair
    (out, out2) when the op has two outputs."""
    cdef Py_ssize_t n = a.shape[0], k, lo
    cdef floating s = <floating>p
    out_arr = _empty(n, <floating>0)
    out2_arr = _empty(n, <floating>0) if two_outputs else None
    cdef floating[::1] out = out_arr
    cdef floating[::1] out2
    cdef const floating* pa
    cdef const floating* pb
    cdef const floating* pc
    cdef floating* po
    cdef floating* po2 = NULL
    if two_outputs:
        out2 = out2_arr
        po2 = &out2[0] if n > 0 else NULL
    if n > 0:
        pa = &a[0]
        pb = &b[0]
        pc = &c[0]
        po = &out[0]
        for k in prange(_n_chunks(n), nogil=True, schedule="static", num_threads=threads_for(n, cost)):
            lo = CY_SPAN(k * CHUNK, min(CHUNK, n - k * CHUNK), n)
            _chunk(op, pa + lo, pb + lo, pc + lo, po + lo, po2 + lo if po2 != NULL else NULL, s,
                   min(CHUNK, n - lo))
    return (out_arr, out2_arr) if two_outputs else out_arr


# ---------------------------------------------------------------------------------------------
# Sigmoid + binary cross-entropy (elementwise).

def sigmoid_cross_entropy(const floating[::1] logits not None, const floating[::1] labels not None):
    """Fused sigmoid + binary cross-entropy, elementwise.

    logits: (n,) float32|float64, C-contiguous (IN)
    labels: (n,) same dtype, targets in [0, 1] (IN)
    Returns (loss, dlogits), each (n,): loss = max(z, 0) - z*y + log1p(exp(-|z|)),
    dlogits = sigmoid(z) - y (computed as (1 - y) - (1 - sigmoid(z)) for z >= 0).
    """
    _check_same("labels", (labels.shape[0],), "logits", (logits.shape[0],))
    return _map(SIGMOID_CE, COST_TRANSCENDENTAL, logits, labels, logits, 0.0, True)


# ---------------------------------------------------------------------------------------------
# Elementwise activations. x, dy, y: (n,) float32|float64, C-contiguous, one dtype (IN).

def relu_forward(const floating[::1] x not None):
    """y = max(x, 0) (NaN propagates). x: (n,) float32|float64, C-contiguous (IN). Returns y (n,)."""
    return _map(RELU_FWD, COST_STREAM, x, x, x, 0.0, False)


def relu_backward(const floating[::1] dy not None, const floating[::1] y not None):
    """dx = dy where y > 0, else 0. dy, y: (n,) (IN). Returns dx (n,)."""
    _check_same("dy", (dy.shape[0],), "y", (y.shape[0],))
    return _map(RELU_BWD, COST_STREAM, dy, y, dy, 0.0, False)


def leaky_relu_forward(const floating[::1] x not None, double negative_slope=0.2):
    """y = x where x > 0, else negative_slope * x. x: (n,) (IN). Returns y (n,)."""
    return _map(LEAKY_FWD, COST_STREAM, x, x, x, negative_slope, False)


def leaky_relu_backward(const floating[::1] dy not None, const floating[::1] x not None,
                        double negative_slope=0.2):
    """dx = dy where x > 0, else negative_slope * dy. dy, x: (n,) (IN). Returns dx (n,)."""
    _check_same("dy", (dy.shape[0],), "x", (x.shape[0],))
    return _map(LEAKY_BWD, COST_STREAM, dy, x, dy, negative_slope, False)


def elu_forward(const floating[::1] x not None, double alpha=1.0):
    """y = x where x > 0, else alpha * expm1(x). x: (n,) (IN). Returns y (n,)."""
    return _map(ELU_FWD, COST_TRANSCENDENTAL, x, x, x, alpha, False)


def elu_backward(const floating[::1] dy not None, const floating[::1] x not None, const floating[::1] y not None,
                 double alpha=1.0):
    """dx = dy where x > 0, else dy * (y + alpha) (= dy * alpha * exp(x)).

    dy, x, y: (n,) one dtype, y = elu_forward(x, alpha) (IN). Returns dx (n,).
    """
    _check_same("dy", (dy.shape[0],), "x", (x.shape[0],))
    _check_same("y", (y.shape[0],), "x", (x.shape[0],))
    return _map(ELU_BWD, COST_STREAM, dy, x, y, alpha, False)


def sigmoid_forward(const floating[::1] x not None):
    """y = 1 / (1 + exp(-x)), computed from exp(-|x|). x: (n,) (IN). Returns y (n,)."""
    return _map(SIGMOID_FWD, COST_TRANSCENDENTAL, x, x, x, 0.0, False)


def sigmoid_backward(const floating[::1] dy not None, const floating[::1] y not None):
    """dx = dy * y * (1 - y). dy, y: (n,), y = sigmoid(x) (IN). Returns dx (n,)."""
    _check_same("dy", (dy.shape[0],), "y", (y.shape[0],))
    return _map(SIGMOID_BWD, COST_STREAM, dy, y, dy, 0.0, False)


def tanh_forward(const floating[::1] x not None):
    """y = tanh(x). x: (n,) (IN). Returns y (n,)."""
    return _map(TANH_FWD, COST_TRANSCENDENTAL, x, x, x, 0.0, False)


def tanh_backward(const floating[::1] dy not None, const floating[::1] y not None):
    """dx = dy * (1 - y**2). dy, y: (n,), y = tanh(x) (IN). Returns dx (n,)."""
    _check_same("dy", (dy.shape[0],), "y", (y.shape[0],))
    return _map(TANH_BWD, COST_STREAM, dy, y, dy, 0.0, False)
