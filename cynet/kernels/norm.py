"""Batch normalization kernels (Keras 3 semantics): validation, normalisation, dispatch.

The feature (channel) axis is the LAST axis of x. x may be (N, F), (N, H, W, C) or any
ndim >= 2: every leading axis is reduced, i.e. x is treated as (M, C) with M the product of
the leading dimensions. (The layer transposes for other axes.)

dtype rule: the computation runs in x's float dtype (float64 if x is float64, else float32;
bool/int/float16 count as float32); for the backward pass, float64 if x or dy is float64.
gamma, beta, mean and inv_std are converted to that dtype. moving_mean and moving_variance of
the training pass are updated IN PLACE and therefore must already be writable C-contiguous
(C,) arrays of that dtype: they are never silently copied.
"""
from typing import Any

import numpy as np

from .._validation import as_float, as_floats, check_nonempty, float_dtype, inplace_array, real
from ._backend import impl
from .._typing import ArrayLike

__all__ = ["batch_norm_train_forward", "batch_norm_inference_forward", "batch_norm_backward"]


def _as_rows(name, x):
    """x (..., C) with ndim >= 2 and no empty axis -> (M, C) view (x is C-contiguous)."""
    if x.ndim < 2:
        raise ValueError(f"{name} must have at least 2 dimensions (..., C) with the features last; "
                         f"received shape {x.shape}")
    check_nonempty(name, x)
    return x.reshape(-1, x.shape[-1])


def _param(name, a, C, dtype):
    """An optional (C,) parameter converted to dtype (None stays None)."""
    if a is None:
        return None
    a = as_float(name, a, dtype)
    if a.shape != (C,):
        raise ValueError(f"{name} must have shape {(C,)} (C, the last axis of x); received shape {a.shape}")
    return a


def _epsilon(value):
    return real("epsilon", value, low=0, low_open=True)


def batch_norm_train_forward(x: ArrayLike, gamma: ArrayLike | None, beta: ArrayLike | None, moving_mean: np.ndarray,
                             moving_variance: ArrayLike, momentum: float = 0.99, epsilon: float = 1e-3) -> Any:
    """Training-mode batch normalization with the batch statistics (Keras 3 semantics).

    Statistics are accumulated in float64 with a two-pass (chunked Chan) scheme, so they stay
    accurate for data with a large offset.

    Args:
        x: (..., C) float32|float64 (ndim >= 2), features last; every leading axis is reduced.
        gamma: (C,) scale, or None (ones: `scale=False`).
        beta: (C,) offset, or None (zeros: `center=False`).
        moving_mean: IN/OUT writable C-contiguous (C,) array of x's float dtype, updated in place:
            `moving = moving * momentum + batch_mean * (1 - momentum)`.
        moving_variance: IN/OUT like moving_mean, updated with the biased batch variance (as
            Keras's ops.moments).
        momentum: Momentum of the moving statistics, in [0, 1].
        epsilon: Added to the variance, > 0.

    Returns:
        (y, mean, inv_std): y of x's shape, mean and inv_std (C,), all in x's float dtype, with mean
        and var the batch mean and biased variance over all axes but the last,
        inv_std = 1 / sqrt(var + epsilon) and y = gamma * (x - mean) * inv_std + beta.
    """
    dtype = float_dtype(x=x)
    x = as_float("x", x, dtype)
    x2 = _as_rows("x", x)
    C = x2.shape[1]
    gamma = _param("gamma", gamma, C, dtype)
    beta = _param("beta", beta, C, dtype)
    moving_mean = inplace_array("moving_mean", moving_mean, dtype, (C,), "x's float dtype", "C, the last axis of x")
    moving_variance = inplace_array("moving_variance", moving_variance, dtype, (C,), "x's float dtype",
                                    "C, the last axis of x")
    if np.may_share_memory(moving_mean, moving_variance):
        raise ValueError("moving_mean and moving_variance must be separate arrays; received overlapping memory")
    for name, a in (("moving_mean", moving_mean), ("moving_variance", moving_variance)):
        for other, b in (("x", x), ("gamma", gamma), ("beta", beta)):
            if b is not None and np.may_share_memory(a, b):
                raise ValueError(f"{name} must not share memory with {other} (it is updated in place while "
                                 f"{other} is read)")
    momentum = real("momentum", momentum, low=0, high=1)
    epsilon = _epsilon(epsilon)
    y, mean, inv_std = impl("norm").batch_norm_train_forward(
        x2, gamma, beta, moving_mean, moving_variance, momentum, epsilon)
    return y.reshape(x.shape), mean, inv_std


def batch_norm_inference_forward(x: ArrayLike, gamma: ArrayLike | None, beta: ArrayLike | None,
                                 moving_mean: np.ndarray, moving_variance: ArrayLike, epsilon: float = 1e-3) -> Any:
    """Inference-mode batch normalization with the moving statistics (one fused pass).

    Args:
        x: (..., C) float32|float64 (ndim >= 2), features last.
        gamma: (C,) scale, or None (ones).
        beta: (C,) offset, or None (zeros).
        moving_mean: (C,), read only (converted to x's float dtype).
        moving_variance: (C,), read only (converted to x's float dtype).
        epsilon: Added to the variance, > 0.

    Returns:
        y of x's shape and float dtype:
        y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta.
    """
    dtype = float_dtype(x=x)
    x = as_float("x", x, dtype)
    x2 = _as_rows("x", x)
    C = x2.shape[1]
    gamma = _param("gamma", gamma, C, dtype)
    beta = _param("beta", beta, C, dtype)
    if moving_mean is None or moving_variance is None:
        raise TypeError("moving_mean and moving_variance are required arrays of shape (C,); received None")
    moving_mean = _param("moving_mean", moving_mean, C, dtype)
    moving_variance = _param("moving_variance", moving_variance, C, dtype)
    epsilon = _epsilon(epsilon)
    y = impl("norm").batch_norm_inference_forward(x2, gamma, beta, moving_mean, moving_variance, epsilon)
    return y.reshape(x.shape)


def batch_norm_backward(dy: ArrayLike, x: ArrayLike, gamma: ArrayLike | None, mean: ArrayLike,
                        inv_std: ArrayLike) -> Any:
    """Training-mode batch normalization gradient, through the batch statistics.

    Args:
        dy: (..., C) upstream gradient, x's shape (ndim >= 2), features last.
        x: (..., C) the forward input.
        gamma: (C,) or None (ones).
        mean: (C,) as returned by batch_norm_train_forward.
        inv_std: (C,) as returned by batch_norm_train_forward.

    Returns:
        (dx, dgamma, dbeta): dx of x's shape, dgamma and dbeta (C,), in the common float dtype of x
        and dy. With xhat = (x - mean) * inv_std and M the number of reduced elements per feature:
        dbeta = sum(dy), dgamma = sum(dy * xhat) (returned even when gamma is None),
        dx = gamma * inv_std / M * (M * dy - dbeta - xhat * dgamma).
    """
    dy, x = as_floats(dy=dy, x=x)
    dx_dtype = x.dtype
    x2 = _as_rows("x", x)
    if dy.shape != x.shape:
        raise ValueError(f"dy must have x's shape {x.shape}; received shape {dy.shape}")
    dy2 = dy.reshape(x2.shape)
    C = x2.shape[1]
    gamma = _param("gamma", gamma, C, dx_dtype)
    if mean is None or inv_std is None:
        raise TypeError("mean and inv_std are required arrays of shape (C,) (from batch_norm_train_forward); "
                        "received None")
    mean = _param("mean", mean, C, dx_dtype)
    inv_std = _param("inv_std", inv_std, C, dx_dtype)
    dx, dgamma, dbeta = impl("norm").batch_norm_backward(dy2, x2, gamma, mean, inv_std)
    return dx.reshape(x.shape), dgamma, dbeta
