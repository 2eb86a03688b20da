"""Optimizer update kernels (compiled): one fused in-place pass over a variable and its slots.

Twin: optim_numpy.py (same names, signatures and results up to rounding: the compiled loops
may contract a multiply and an add into one FMA).

A NumPy update of Adam makes about eleven passes over arrays of the variable's size (each
ufunc with out=); here each element is read and written once. The loops are C in the
CYNET_CLONES form of cynet_simd.h (baseline, AVX2+FMA and AVX-512 builds, chosen at load
time); large variables are split in chunks over OpenMP threads.

Arguments arrive validated by cynet.kernels.optim: 1-D C-contiguous views of one float dtype,
all of the same length; the scalars are already in the variable's dtype.
"""
from cython cimport floating
from cython.parallel cimport prange

from cynet._kernels._check cimport CY_SPAN
from cynet._kernels._openmp cimport threads_for, COST_UPDATE

cdef extern from "cynet_optim.h" nogil:
    void cynet_adam_f(float* w, const float* g, float* m, float* v, float* vh, Py_ssize_t n,
                      float alpha, float c1, float c2, float eps) noexcept
    void cynet_adam_d(double* w, const double* g, double* m, double* v, double* vh, Py_ssize_t n,
                      double alpha, double c1, double c2, double eps) noexcept
    void cynet_sgd_f(float* w, const float* g, float* m, Py_ssize_t n, float lr, float momentum,
                     int nesterov) noexcept
    void cynet_sgd_d(double* w, const double* g, double* m, Py_ssize_t n, double lr, double momentum,
                     int nesterov) noexcept
    void cynet_adamax_f(float* w, const float* g, float* m, float* u, Py_ssize_t n, float lr, float c1,
                        float b2, float corr, float eps) noexcept
    void cynet_adamax_d(double* w, const double* g, double* m, double* u, Py_ssize_t n, double lr, double c1,
                        double b2, double corr, double eps) noexcept
    void cynet_lion_f(float* w, const float* g, float* m, Py_ssize_t n, float lr, float b1, float c1,
                      float b2, float c2) noexcept
    void cynet_lion_d(double* w, const double* g, double* m, Py_ssize_t n, double lr, double b1, double c1,
                      double b2, double c2) noexcept
    void cynet_ftrl_f(float* w, const float* g, float* acc, float* lin, Py_ssize_t n, float lr, float p,
                      float l1, float l2x2, float s2) noexcept
    void cynet_ftrl_d(double* w, const double* g, double* acc, double* lin, Py_ssize_t n, double lr, double p,
                      double l1, double l2x2, double s2) noexcept

# Elements per prange chunk (the thread policy's COST_UPDATE asks as many per thread: a passive
# OpenMP team costs more to wake than a pass over 64k floats in cache).
cdef Py_ssize_t CHUNK = 1 << 16


def adam_update(floating[::1] variable not None, const floating[::1] gradient not None,
                floating[::1] m not None, floating[::1] v not None, floating[::1] v_hat,
                floating alpha, floating one_minus_beta_1, floating one_minus_beta_2, floating epsilon):
    """One Adam step in place on variable, m, v (and v_hat for AMSGrad, else None); alpha is
    the bias-corrected learning rate lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)."""
    cdef Py_ssize_t n = variable.shape[0], chunks = (n + CHUNK - 1) // CHUNK, c, lo, hi
    cdef floating* vh = NULL
    if n == 0:
        return
    if v_hat is not None:
        vh = &v_hat[0]
    for c in prange(chunks, nogil=True, schedule="static", num_threads=threads_for(n, COST_UPDATE)):
        lo = CY_SPAN(c * CHUNK, min(CHUNK, n - c * CHUNK), n)
        hi = min(lo + CHUNK, n)
        if floating is float:
            cynet_adam_f(&variable[lo], &gradient[lo], &m[lo], &v[lo], vh + lo if vh != NULL else NULL,
                         hi - lo, alpha, one_minus_beta_1, one_minus_beta_2, epsilon)
        else:
            cynet_adam_d(&variable[lo], &gradient[lo], &m[lo], &v[lo], vh + lo if vh != NULL else NULL,
                         hi - lo, alpha, one_minus_beta_1, one_minus_beta_2, epsilon)


def sgd_momentum_update(floating[::1] variable not None, const floating[::1] gradient not None,
                        floating[::1] momentums not None, floating learning_rate, floating momentum,
                        bint nesterov):
    """One SGD-with-momentum step (Keras 3 form) in place on variable and momentums."""
    cdef Py_ssize_t n = variable.shape[0], chunks = (n + CHUNK - 1) // CHUNK, c, lo, hi
    if n == 0:
        return
    for c in prange(chunks, nogil=True, schedule="static", num_threads=threads_for(n, COST_UPDATE)):
        lo = CY_SPAN(c * CHUNK, min(CHUNK, n - c * CHUNK), n)
        hi = min(lo + CHUNK, n)
        if floating is float:
            cynet_sgd_f(&variable[lo], &gradient[lo], &momentums[lo], hi - lo, learning_rate, momentum, nesterov)
        else:
            cynet_sgd_d(&variable[lo], &gradient[lo], &momentums[lo], hi - lo, learning_rate, momentum, nesterov)


def adamax_update(floating[::1] variable not None, const floating[::1] gradient not None,
                  floating[::1] m not None, floating[::1] u not None, floating learning_rate,
                  floating one_minus_beta_1, floating beta_2, floating correction, floating epsilon):
    """One Adamax step in place on variable, m and u; correction is 1 - beta_1^t."""
    cdef Py_ssize_t n = variable.shape[0], chunks = (n + CHUNK - 1) // CHUNK, c, lo, hi
    if n == 0:
        return
    for c in prange(chunks, nogil=True, schedule="static", num_threads=threads_for(n, COST_UPDATE)):
        lo = CY_SPAN(c * CHUNK, min(CHUNK, n - c * CHUNK), n)
        hi = min(lo + CHUNK, n)
        if floating is float:
            cynet_adamax_f(&variable[lo], &gradient[lo], &m[lo], &u[lo], hi - lo, learning_rate,
                           one_minus_beta_1, beta_2, correction, epsilon)
        else:
            cynet_adamax_d(&variable[lo], &gradient[lo], &m[lo], &u[lo], hi - lo, learning_rate,
                           one_minus_beta_1, beta_2, correction, epsilon)


def lion_update(floating[::1] variable not None, const floating[::1] gradient not None,
                floating[::1] m not None, floating learning_rate, floating beta_1, floating one_minus_beta_1,
                floating beta_2, floating one_minus_beta_2):
    """One Lion step in place on variable and m."""
    cdef Py_ssize_t n = variable.shape[0], chunks = (n + CHUNK - 1) // CHUNK, c, lo, hi
    if n == 0:
        return
    for c in prange(chunks, nogil=True, schedule="static", num_threads=threads_for(n, COST_UPDATE)):
        lo = CY_SPAN(c * CHUNK, min(CHUNK, n - c * CHUNK), n)
        hi = min(lo + CHUNK, n)
        if floating is float:
            cynet_lion_f(&variable[lo], &gradient[lo], &m[lo], hi - lo, learning_rate, beta_1, one_minus_beta_1,
                         beta_2, one_minus_beta_2)
        else:
            cynet_lion_d(&variable[lo], &gradient[lo], &m[lo], hi - lo, learning_rate, beta_1, one_minus_beta_1,
                         beta_2, one_minus_beta_2)


def ftrl_update(floating[::1] variable not None, const floating[::1] gradient not None,
                floating[::1] accumulator not None, floating[::1] linear not None, floating learning_rate,
                floating power, floating l1, floating two_l2, floating two_shrinkage):
    """One FTRL step in place on variable, accumulator and linear (power = -learning_rate_power)."""
    cdef Py_ssize_t n = variable.shape[0], chunks = (n + CHUNK - 1) // CHUNK, c, lo, hi
    if n == 0:
        return
    for c in prange(chunks, nogil=True, schedule="static", num_threads=threads_for(n, COST_UPDATE)):
        lo = CY_SPAN(c * CHUNK, min(CHUNK, n - c * CHUNK), n)
        hi = min(lo + CHUNK, n)
        if floating is float:
            cynet_ftrl_f(&variable[lo], &gradient[lo], &accumulator[lo], &linear[lo], hi - lo, learning_rate,
                         power, l1, two_l2, two_shrinkage)
        else:
            cynet_ftrl_d(&variable[lo], &gradient[lo], &accumulator[lo], &linear[lo], hi - lo, learning_rate,
                         power, l1, two_l2, two_shrinkage)
