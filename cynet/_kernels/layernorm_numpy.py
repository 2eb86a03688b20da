"""Layer and group normalization (Keras 3 semantics): the NumPy twin of layernorm.pyx.

Same functions, same signatures, same results as the compiled module (up to rounding: the
kernel sums in another order and may fuse a multiply-add). Statistics and the backward
pass's reductions are accumulated in float64; the per-element arithmetic stays in x's dtype
and follows the kernel's operation order:

    layer norm  (x viewed as (M, C), each row normalised over its C values)
      forward   y  = ((x - c) * s) * gamma + beta         c = mean (0 with rms_scaling),
                                                          s = 1 / sqrt(var + epsilon)
      backward  xh = (x - c) * s, w = dy * gamma
                A = sum(w) (0 with rms_scaling), B = sum(w * xh)      (per row, float64)
                dx = (s * w + k2 * ((x - mean) * s)) + k1,  k1 = -s A / C, k2 = -s B / C
                dgamma = sum over rows of dy * xh, dbeta = sum of dy
    group norm  (x viewed as (N, S, C), C in G groups of K channels, normalised per sample
                 and group over S * K values; per-channel affine)
      forward   y  = ((x - mean_g) * s_g) * gamma + beta
      backward  per channel ca = sum_S dy, cb = sum_S dy * xh; per group A = sum_K gamma ca,
                B = sum_K gamma cb; dx = (s_g gamma * dy + k2 * xh) + k1 with
                k1 = -s_g A / (S K), k2 = -s_g B / (S K); dgamma = sum cb, dbeta = sum ca.
gamma=None means ones, beta=None zeros.
"""
import numpy as np

__all__ = ["layer_norm_forward", "layer_norm_backward", "group_norm_forward", "group_norm_backward"]


def _check(name, a, ndim):
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional; received shape {a.shape}")
    if 0 in a.shape:
        raise ValueError(f"{name} must have no empty axis; received shape {a.shape}")


def _vector(name, a, C, dtype, default):
    """A (C,) parameter in x's dtype; None -> filled with `default`."""
    if a is None:
        return np.full(C, default, dtype=dtype)
    if a.shape != (C,):
        raise ValueError(f"{name} must have shape ({C},); received shape {a.shape}")
    return np.asarray(a, dtype=dtype)


def _epsilon(epsilon):
    if not epsilon > 0.0:
        raise ValueError(f"epsilon must be > 0; received epsilon={epsilon}")


def _same(name, a, shape, dtype):
    a = np.asarray(a)
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}; received shape {a.shape}")
    if a.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype} (x's dtype); received dtype {a.dtype}")
    return a


# ----------------------------------------------------------------------------- layer normalization

def layer_norm_forward(x, gamma, beta, epsilon, rms_scaling=False):
    """Layer normalization of each row of x (M, C) over its C values; see layernorm.pyx.
    Returns (y (M, C), mean (M,), inv_std (M,)) in x's dtype."""
    x = np.asarray(x)
    _check("x", x, 2)
    _epsilon(epsilon)
    M, C = x.shape
    dtype = x.dtype
    g = _vector("gamma", gamma, C, dtype, 1.0)
    b = _vector("beta", beta, C, dtype, 0.0)
    mean = x.sum(axis=1, dtype=np.float64) / C
    d = x - mean[:, None]                                  # float64 deviations, as the kernel's
    var = np.einsum("ij,ij->i", d, d) / C
    inv = 1.0 / np.sqrt(var + epsilon)
    m, s = mean.astype(dtype), inv.astype(dtype)
    y = x - m[:, None] if not rms_scaling else x.copy()
    y *= s[:, None]
    y *= g
    y += b
    return y, m, s


def layer_norm_backward(dy, x, gamma, mean, inv_std, rms_scaling=False):
    """Gradient of layer_norm_forward: (dx (M, C), dgamma (C,), dbeta (C,)) in x's dtype."""
    x = np.asarray(x)
    _check("x", x, 2)
    M, C = x.shape
    dtype = x.dtype
    dy = _same("dy", dy, x.shape, dtype)
    m = _same("mean", mean, (M,), dtype)[:, None]
    s = _same("inv_std", inv_std, (M,), dtype)[:, None]
    g = _vector("gamma", gamma, C, dtype, 1.0)
    xm = (x - m) * s                                       # (x - mean) * s
    xh = x * s if rms_scaling else xm                      # (x - c) * s
    w = dy * g
    A = np.zeros(M) if rms_scaling else w.sum(axis=1, dtype=np.float64)
    B = np.einsum("ij,ij->i", w, xh, dtype=np.float64)     # products in x's dtype, summed in float64
    s64 = s[:, 0].astype(np.float64)
    k1 = (-s64 * A / C).astype(dtype)[:, None]
    k2 = (-s64 * B / C).astype(dtype)[:, None]
    dx = s * w
    dx += k2 * xm
    dx += k1
    dgamma = np.einsum("ij,ij->j", dy, xh, dtype=np.float64)
    dbeta = dy.sum(axis=0, dtype=np.float64)
    return dx, dgamma.astype(dtype), dbeta.astype(dtype)


# ----------------------------------------------------------------------------- group normalization

def _check_groups(C, groups):
    if groups < 1 or C % groups != 0:
        raise ValueError(f"groups must be a positive divisor of C={C}; received groups={groups}")


def group_norm_forward(x, groups, gamma, beta, epsilon):
    """Group normalization of x (N, S, C), channels last, in `groups` groups of channels; see
    layernorm.pyx. Returns (y (N, S, C), mean (N, groups), inv_std (N, groups)) in x's dtype."""
    x = np.asarray(x)
    _check("x", x, 3)
    N, S, C = x.shape
    _check_groups(C, groups)
    _epsilon(epsilon)
    dtype = x.dtype
    K = C // groups
    g = _vector("gamma", gamma, C, dtype, 1.0)
    b = _vector("beta", beta, C, dtype, 0.0)
    xg = x.reshape(N, S, groups, K)
    mean = xg.sum(axis=(1, 3), dtype=np.float64) / (S * K)            # (N, G)
    d = xg - mean[:, None, :, None]                                     # float64 deviations
    var = np.einsum("nsgk,nsgk->ng", d, d) / (S * K)
    inv = 1.0 / np.sqrt(var + epsilon)
    m, s = mean.astype(dtype), inv.astype(dtype)
    y = xg - m[:, None, :, None]
    y *= s[:, None, :, None]
    y = y.reshape(N, S, C)
    y *= g
    y += b
    return y, m, s


def group_norm_backward(dy, x, groups, gamma, mean, inv_std):
    """Gradient of group_norm_forward: (dx (N, S, C), dgamma (C,), dbeta (C,)) in x's dtype."""
    x = np.asarray(x)
    _check("x", x, 3)
    N, S, C = x.shape
    _check_groups(C, groups)
    dtype = x.dtype
    K = C // groups
    dy = _same("dy", dy, x.shape, dtype)
    m = _same("mean", mean, (N, groups), dtype)
    s = _same("inv_std", inv_std, (N, groups), dtype)
    g = _vector("gamma", gamma, C, dtype, 1.0)
    xh = (x.reshape(N, S, groups, K) - m[:, None, :, None]) * s[:, None, :, None]
    xh = xh.reshape(N, S, C)
    ca = dy.sum(axis=1, dtype=np.float64)                                # (N, C)
    cb = np.einsum("nsc,nsc->nc", dy, xh, dtype=np.float64)
    g64 = g.astype(np.float64)
    A = (ca * g64).reshape(N, groups, K).sum(axis=2)                     # (N, G)
    B = (cb * g64).reshape(N, groups, K).sum(axis=2)
    s64 = s.astype(np.float64)
    per_channel = (lambda v: np.repeat(v, K, axis=1)[:, None, :])      # (N, G) -> (N, 1, C)
    k0 = (s64[:, :, None] * g64.reshape(groups, K)).reshape(N, C).astype(dtype)[:, None, :]
    k1 = per_channel((-s64 * A / (S * K)).astype(dtype))
    k2 = per_channel((-s64 * B / (S * K)).astype(dtype))
    dx = k0 * dy
    dx += k2 * xh
    dx += k1
    return dx, cb.sum(axis=0).astype(dtype), ca.sum(axis=0).astype(dtype)
