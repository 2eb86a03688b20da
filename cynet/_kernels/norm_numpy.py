"""Batch normalization (Keras 3 semantics, feature axis last): the NumPy twin of norm.pyx.

Same functions, same signatures, same results as the compiled module. x is viewed as (M, C):
M rows (every leading axis of the layer input flattened) and C features. Statistics are
accumulated in float64, as the kernel's (reductions with dtype=float64, no float64 copy of x,
squares formed in float64 so that no magnitude overflows or underflows); the per-element
arithmetic stays in x's dtype and follows the compiled kernel's operation order:

    forward     y  = (x - mean) * scale + beta,          scale = gamma * inv_std
    backward    dx = a * dy + b * (x - mean) + k,         a = gamma * inv_std,
                                                          b = -a * dgamma * inv_std / M,
                                                          k = -a * dbeta / M

where the per-feature coefficients are computed in float64 and rounded once to x's dtype.
gamma=None means ones (scale off), beta=None means zeros (center off).
"""
import numpy as np

__all__ = ["batch_norm_train_forward", "batch_norm_inference_forward", "batch_norm_backward"]


def _check_2d(name, a):
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-dimensional (M, C); received shape {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{name} must have M >= 1 rows and C >= 1 features; received shape {a.shape}")


def _param(name, a, C, dtype, default):
    """A (C,) parameter as float64 (the per-feature coefficients are computed in float64)."""
    if a is None:
        return np.full(C, default, dtype=np.float64)
    if a.shape != (C,):
        raise ValueError(f"{name} must have shape ({C},); received shape {a.shape}")
    if a.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype} (x's dtype); received dtype {a.dtype}")
    return a.astype(np.float64)


def _moments(x):
    """Per-feature mean and biased variance of x (M, C), both float64 of shape (C,), and the
    centred values xc = x - mean (in x's dtype; the normalisation reuses them).

    Accumulated as the compiled kernel does: in float64, about the mean (two passes), so the
    squares of large values cannot overflow x's dtype (float32 |x| ~ 1e20 squares to 1e40) nor
    those of tiny ones underflow it. The mean is a float64-accumulated sum. The deviations are
    taken about the mean rounded to x's dtype, which keeps them exact for data with a large
    offset, and their squares are summed in float64 (einsum with dtype=float64 casts in its
    buffers: no float64 copy of x); the result is corrected for the (tiny) shift:
    var = mean((x - m)^2) - (mean - m)^2. Where x - m itself overflows x's dtype (values near
    its largest finite one, of both signs) the kernel's float64 deviations do not: those
    features are recomputed from float64 deviations.
    """
    M = x.shape[0]
    mean = x.mean(axis=0, dtype=np.float64)
    m = mean.astype(x.dtype)
    with np.errstate(over="ignore"):       # such a feature's variance is recomputed below
        xc = x - m                          # (its y overflows, as the kernel's does)
    var = np.einsum("ij,ij->j", xc, xc, dtype=np.float64)
    var /= M
    var -= np.square(mean - m)
    np.maximum(var, 0.0, out=var)
    # inf only where x - m overflowed (finite x: a float64 sum of float32 squares stays finite;
    # an infinite x gives NaN, as in the kernel)
    over = np.flatnonzero(np.isinf(var))
    if over.size:
        d = x[:, over] - mean[over]                # float64 deviations, as the kernel's
        var[over] = np.einsum("ij,ij->j", d, d) / M
    return mean, var, xc


def batch_norm_train_forward(x, gamma, beta, moving_mean, moving_variance, momentum, epsilon):
    """Training-mode batch normalization over the rows of x.

    x: (M, C) float32|float64, C-contiguous. gamma, beta: (C,) in x's dtype, or None.
    moving_mean, moving_variance: IN/OUT (C,) in x's dtype, writable; updated in place as
    moving = moving * momentum + batch_stat * (1 - momentum) (batch variance is biased).
    Returns (y (M, C), mean (C,), inv_std (C,)), all in x's dtype.
    """
    x = np.asarray(x)
    _check_2d("x", x)
    M, C = x.shape
    dtype = x.dtype
    g = _param("gamma", gamma, C, dtype, 1.0)
    b = _param("beta", beta, C, dtype, 0.0)
    for name, a in (("moving_mean", moving_mean), ("moving_variance", moving_variance)):
        if a.shape != (C,) or a.dtype != dtype:
            raise ValueError(f"{name} must be a ({C},) {dtype} array; received shape {a.shape}, dtype {a.dtype}")
        if not a.flags.writeable:
            raise ValueError(f"{name} must be writable (it is updated in place)")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1]; received momentum={momentum}")
    if not epsilon > 0.0:
        raise ValueError(f"epsilon must be > 0; received epsilon={epsilon}")
    mean, var, xc = _moments(x)
    inv_std = 1.0 / np.sqrt(var + epsilon)
    with np.errstate(over="ignore"):       # beyond x's dtype: inf, silently as in the kernel
        moving_mean[...] = moving_mean.astype(np.float64) * momentum + mean * (1.0 - momentum)
        moving_variance[...] = moving_variance.astype(np.float64) * momentum + var * (1.0 - momentum)
    # y = (x - mean) * scale + beta, reusing the centred buffer (xc = x - mean, in x's dtype)
    y = xc
    np.multiply(y, (g * inv_std).astype(dtype), out=y)
    y += b.astype(dtype)
    return y, mean.astype(dtype), inv_std.astype(dtype)


def batch_norm_inference_forward(x, gamma, beta, moving_mean, moving_variance, epsilon):
    """Inference-mode batch normalization with the moving statistics.

    x: (M, C) float32|float64, C-contiguous. gamma, beta: (C,) or None; moving_mean,
    moving_variance: (C,) in x's dtype (read only). Returns y (M, C) in x's dtype:
    y = (x - moving_mean) * scale + beta, scale = gamma / sqrt(moving_variance + epsilon).
    """
    x = np.asarray(x)
    _check_2d("x", x)
    M, C = x.shape
    dtype = x.dtype
    g = _param("gamma", gamma, C, dtype, 1.0)
    b = _param("beta", beta, C, dtype, 0.0)
    mm = _param("moving_mean", moving_mean, C, dtype, 0.0)
    mv = _param("moving_variance", moving_variance, C, dtype, 1.0)
    if not epsilon > 0.0:
        raise ValueError(f"epsilon must be > 0; received epsilon={epsilon}")
    scale = (g / np.sqrt(mv + epsilon)).astype(dtype)
    y = x - mm.astype(dtype)
    y *= scale
    y += b.astype(dtype)
    return y


def batch_norm_backward(dy, x, gamma, mean, inv_std):
    """Training-mode batch normalization gradient, through the batch statistics.

    dy, x: (M, C) float32|float64, same shape and dtype, C-contiguous. gamma: (C,) or None
    (ones); mean, inv_std: (C,) as returned by batch_norm_train_forward.
    Returns (dx (M, C), dgamma (C,), dbeta (C,)) in x's dtype:
    dbeta = sum(dy), dgamma = sum(dy * xhat), dx = gamma * inv_std / M * (M dy - dbeta - xhat dgamma).
    """
    dy = np.asarray(dy)
    x = np.asarray(x)
    _check_2d("x", x)
    if dy.shape != x.shape:
        raise ValueError(f"dy must have x's shape {x.shape}; received shape {dy.shape}")
    if dy.dtype != x.dtype:
        raise ValueError(f"dy must have x's dtype {x.dtype}; received dtype {dy.dtype}")
    M, C = x.shape
    dtype = x.dtype
    g = _param("gamma", gamma, C, dtype, 1.0)
    m = _param("mean", mean, C, dtype, 0.0)
    s = _param("inv_std", inv_std, C, dtype, 1.0)
    xc = x - m.astype(dtype)                       # x - mean, in x's dtype
    dbeta = dy.sum(axis=0, dtype=np.float64)
    prod = np.multiply(dy, xc)
    dgamma = prod.sum(axis=0, dtype=np.float64) * s
    a = g * s
    coef_x = (-a * dgamma * s / M).astype(dtype)
    shift = (-a * dbeta / M).astype(dtype)
    dx = np.multiply(dy, a.astype(dtype), out=prod)
    xc *= coef_x
    dx += xc
    dx += shift
    return dx, dgamma.astype(dtype), dbeta.astype(dtype)
