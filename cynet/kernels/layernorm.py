"""Layer and group normalization kernels (Keras 3 semantics): validation, reshaping, dispatch.

Layer normalization normalises x over its LAST axis: x (..., C) is treated as (M, C) rows
(M the product of the leading dimensions); the layer moves the axes it normalises to the end
and flattens them. Group normalization takes x (N, ..., C), channels last: each sample's
C channels form `groups` groups of C / groups, each normalised over all its spatial positions
and channels; the affine (gamma, beta) is per channel.

dtype rule: the computation runs in x's float dtype (float64 if x is float64, else float32;
bool/int/float16 count as float32); for the backward passes, float64 if x or dy is float64.
gamma, beta, mean and inv_std are converted to that dtype. Statistics are accumulated in
float64 (two passes over each row, the second about the mean), so float32 inputs with a large
offset keep their accuracy.
"""
import numpy as np

from .._typing import ArrayLike
from .._validation import as_float, as_floats, check_nonempty, float_dtype, flag, positive_int, real
from ._backend import impl

__all__ = ["layer_norm_forward", "layer_norm_backward", "group_norm_forward", "group_norm_backward"]


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _ready(a, dtype):
    """a is already what as_float(name, a, dtype) would return (the common case of a training
    step: the checks then cost nothing)."""
    return type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous


def _param(name, a, C, dtype, what="C, the last axis of x"):
    """An optional (C,) parameter converted to dtype (None stays None)."""
    if a is None:
        return None
    if not _ready(a, dtype):
        a = as_float(name, a, dtype)
    if a.shape != (C,):
        raise ValueError(f"{name} must have shape {(C,)} ({what}); received shape {a.shape}")
    return a


def _stats(name, a, shape, dtype, source, what="x.shape[:-1]"):
    if a is None:
        raise TypeError(f"{name} is required: the array {source} returned; received None")
    if not _ready(a, dtype):
        a = as_float(name, a, dtype)
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {what} = {tuple(shape)} (as {source} returned it); "
                         f"received shape {a.shape}")
    return a


def _epsilon(value):
    return real("epsilon", value, low=0, low_open=True)


# ----------------------------------------------------------------------------- layer normalization

def _rows(name, x):
    """x (..., C), ndim >= 1, no empty axis -> (M, C) view."""
    if x.ndim < 1:
        raise ValueError(f"{name} must have at least 1 dimension (..., C); received a scalar")
    check_nonempty(name, x)
    return x.reshape(-1, x.shape[-1])


def layer_norm_forward(x: ArrayLike, gamma: ArrayLike | None = None, beta: ArrayLike | None = None,
                       epsilon: float = 1e-3, rms_scaling: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer normalization over the last axis (Keras 3's ops.layer_normalization).

    Args:
        x: (..., C), ndim >= 1.
        gamma: (C,) scale, or None (ones).
        beta: (C,) offset, or None (zeros).
        epsilon: Added to the variance, > 0.
        rms_scaling: Keras's deprecated variant, y = x * inv_std * gamma (+ beta): not centred, but
            still scaled by the variance.

    Returns:
        (y, mean, inv_std): y of x's shape, mean and inv_std of shape x.shape[:-1] (the per-row mean
        and 1 / sqrt(var + epsilon), biased variance), all in x's float dtype;
        y = (x - mean) * inv_std * gamma + beta.
    """
    if not (type(x) is np.ndarray and x.dtype in _FLOATS and x.flags.c_contiguous):
        x = as_float("x", x, float_dtype(x=x))
    dtype = x.dtype
    x2 = _rows("x", x)
    C = x2.shape[1]
    gamma = _param("gamma", gamma, C, dtype)
    beta = _param("beta", beta, C, dtype)
    epsilon = _epsilon(epsilon)
    rms_scaling = flag("rms_scaling", rms_scaling)
    y, mean, inv_std = impl("layernorm").layer_norm_forward(x2, gamma, beta, epsilon, rms_scaling)
    return y.reshape(x.shape), mean.reshape(x.shape[:-1]), inv_std.reshape(x.shape[:-1])


def layer_norm_backward(dy: ArrayLike, x: ArrayLike, gamma: ArrayLike | None, mean: ArrayLike, inv_std: ArrayLike,
                        rms_scaling: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient of layer_norm_forward (one fused pass over the rows).

    Args:
        dy: (..., C) upstream gradient, x's shape.
        x: (..., C) the forward input.
        gamma: (C,) or None (ones).
        mean: x.shape[:-1], as layer_norm_forward returned it.
        inv_std: x.shape[:-1], as layer_norm_forward returned it.
        rms_scaling: As given to the forward.

    Returns:
        (dx, dgamma, dbeta): dx of x's shape, dgamma = sum(dy * xhat) and dbeta = sum(dy) over the
        rows, (C,) (returned even when gamma or beta is None), in the common float dtype of x and
        dy; xhat = (x - mean) * inv_std (x * inv_std with rms_scaling).
    """
    if not (type(dy) is np.ndarray and dy.dtype in _FLOATS and _ready(dy, dy.dtype) and _ready(x, dy.dtype)):
        dy, x = as_floats(dy=dy, x=x)
    dtype = x.dtype
    x2 = _rows("x", x)
    if dy.shape != x.shape:
        raise ValueError(f"dy must have x's shape {x.shape}; received shape {dy.shape}")
    M, C = x2.shape
    gamma = _param("gamma", gamma, C, dtype)
    mean = _stats("mean", mean, x.shape[:-1], dtype, "layer_norm_forward").reshape(M)
    inv_std = _stats("inv_std", inv_std, x.shape[:-1], dtype, "layer_norm_forward").reshape(M)
    rms_scaling = flag("rms_scaling", rms_scaling)
    dx, dgamma, dbeta = impl("layernorm").layer_norm_backward(dy.reshape(x2.shape), x2, gamma, mean, inv_std,
                                                              rms_scaling)
    return dx.reshape(x.shape), dgamma, dbeta


# ----------------------------------------------------------------------------- group normalization

def _samples(name, x, groups):
    """x (N, ..., C), ndim >= 2, no empty axis -> (N, S, C) view; groups must divide C."""
    if x.ndim < 2:
        raise ValueError(f"{name} must have at least 2 dimensions (N, ..., C) with the channels last; "
                         f"received shape {x.shape}")
    check_nonempty(name, x)
    C = x.shape[-1]
    groups = positive_int("groups", groups)
    if C % groups:
        raise ValueError(f"groups must divide the number of channels C={C} (the last axis of {name}); "
                         f"received groups={groups}")
    return x.reshape(x.shape[0], -1, C), groups


def group_norm_forward(x: ArrayLike, groups: int, gamma: ArrayLike | None = None, beta: ArrayLike | None = None,
                       epsilon: float = 1e-3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group normalization (Keras 3's GroupNormalization), channels last.

    Args:
        x: (N, ..., C), ndim >= 2.
        groups: A positive divisor of C.
        gamma: (C,) scale, or None (ones).
        beta: (C,) offset, or None (zeros).
        epsilon: Added to the variance, > 0.

    Returns:
        (y, mean, inv_std): y of x's shape, mean and inv_std (N, groups) (per sample and group, over
        every spatial position and the group's C / groups channels), in x's float dtype;
        y = (x - mean) * inv_std * gamma + beta, the statistics broadcast per group.
    """
    dtype = float_dtype(x=x)
    x = as_float("x", x, dtype)
    x3, groups = _samples("x", x, groups)
    C = x3.shape[2]
    gamma = _param("gamma", gamma, C, dtype)
    beta = _param("beta", beta, C, dtype)
    epsilon = _epsilon(epsilon)
    y, mean, inv_std = impl("layernorm").group_norm_forward(x3, groups, gamma, beta, epsilon)
    return y.reshape(x.shape), mean, inv_std


def group_norm_backward(dy: ArrayLike, x: ArrayLike, groups: int, gamma: ArrayLike | None, mean: ArrayLike,
                        inv_std: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient of group_norm_forward.

    Args:
        dy: (N, ..., C) upstream gradient, x's shape.
        x: (N, ..., C) the forward input.
        groups: As given to the forward.
        gamma: (C,) or None.
        mean: (N, groups) as group_norm_forward returned it.
        inv_std: (N, groups) as group_norm_forward returned it.

    Returns:
        (dx, dgamma, dbeta): dx of x's shape, dgamma and dbeta (C,), in the common float dtype of x
        and dy.
    """
    dy, x = as_floats(dy=dy, x=x)
    dtype = x.dtype
    x3, groups = _samples("x", x, groups)
    if dy.shape != x.shape:
        raise ValueError(f"dy must have x's shape {x.shape}; received shape {dy.shape}")
    N, _, C = x3.shape
    gamma = _param("gamma", gamma, C, dtype)
    mean = _stats("mean", mean, (N, groups), dtype, "group_norm_forward", "(N, groups)")
    inv_std = _stats("inv_std", inv_std, (N, groups), dtype, "group_norm_forward", "(N, groups)")
    dx, dgamma, dbeta = impl("layernorm").group_norm_backward(dy.reshape(x3.shape), x3, groups, gamma, mean,
                                                              inv_std)
    return dx.reshape(x.shape), dgamma, dbeta
