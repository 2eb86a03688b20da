"""Attention kernels: the fused masked softmax of dot-product attention and its backward.

    p  = softmax(where(mask, scale * scores, -1e9))                       along the last axis
    ds = where(mask, scale * p * (dp - sum(dp * p)), 0)                   its gradient

This is Keras 3's masked softmax of MultiHeadAttention (keras.layers.Softmax with a mask): a
masked key (mask False) gets probability 0, and a query row with every key masked is uniform
(1 / Tk) rather than NaN. Masked keys get no gradient.

scores: (B, H, Tq, Tk) or fewer dimensions (read as having leading size-1 axes), float32 or
float64; the result has its shape and dtype (float64 if scores or dp is float64 in the backward).
mask: None or an array broadcastable to scores (Keras's rule: at most scores' rank, each axis 1
or equal, aligned from the right); bool, or numeric with nonzero = keep (Keras's cast to bool).
scale: a finite real factor applied to the scores before the mask (1 / sqrt(key_dim) in MHA).
"""
from typing import Any

import numpy as np

from .._validation import as_array, as_float, check_size, float_dtype, inplace_array, is_real
from ._backend import impl
from .._typing import ArrayLike

__all__ = ["masked_softmax_forward", "masked_softmax_backward"]


def _as_4d(name, a):
    """a (ndim 1..4) as a (B, H, Tq, Tk) view with leading size-1 axes."""
    if not 1 <= a.ndim <= 4:
        raise ValueError(f"{name} must have 1 to 4 dimensions ((B, H, Tq, Tk), keys last); received shape {a.shape}")
    return a.reshape((1,) * (4 - a.ndim) + a.shape)


def _mask(mask, shape, shape4):
    """mask (broadcastable to `shape`) as a uint8 broadcast view of `shape4`, the 4-D view of
    shape, its last-axis stride 0 or 1; None stays None."""
    if mask is None:
        return None
    m = as_array("mask", mask)
    if m.dtype.kind not in "biuf":
        raise TypeError(f"mask must be a boolean (or numeric, nonzero = keep) array; received dtype {m.dtype}")
    if m.ndim > len(shape) or any(a != 1 and a != b for a, b in zip(m.shape[::-1], shape[::-1])):
        raise ValueError(f"mask must be broadcastable to the scores {tuple(shape)} (at most their rank, each axis 1 "
                         f"or equal, aligned from the right); received shape {m.shape}")
    if m.dtype != np.bool_ or not m.flags.c_contiguous:
        check_size("mask", m.shape, 1, "the mask as booleans")
        m = np.ascontiguousarray(m != 0)
    m = m.view(np.uint8).reshape((1,) * (4 - m.ndim) + m.shape)
    return np.broadcast_to(m, shape4)


def _scale(scale):
    if not is_real(scale) or not np.isfinite(scale):
        raise ValueError(f"scale must be a finite real number; received scale={scale!r}")
    return float(scale)


def _out(out, shape, dtype, inputs, where):
    """out (OUT): None, or a writable C-contiguous array of the result's shape and dtype that is
    one of `inputs` ({name: array}: in place) or overlaps none of them (nor the mask)."""
    if out is None:
        return None
    out = inplace_array("out", out, dtype, shape, f"the dtype of {where}", where)
    for name, a in inputs.items():
        if a is not None and np.may_share_memory(out, a) and not (
                isinstance(a, np.ndarray) and a.__array_interface__["data"][0] == out.__array_interface__["data"][0]
                and a.strides == out.strides and a.shape == out.shape):
            raise ValueError(f"out must be {name} itself (in place) or memory that does not overlap it; received "
                             "an array overlapping it")
    return out


def masked_softmax_forward(scores: ArrayLike, mask: ArrayLike | None = None, scale: float = 1.0,
                           out: np.ndarray | None = None) -> Any:
    """p = softmax(where(mask, scale * scores, -1e9)) along the last axis (see the module docstring).

    Args:
        scores: (B, H, Tq, Tk) float32|float64 (or fewer leading axes) (IN).
        mask: None or broadcastable to scores, True/nonzero = keep (IN).
        scale: Multiplier of the scores.
        out: None, or a writable C-contiguous array of scores' shape and (float) dtype to write p
            into (OUT): scores itself (in place, as MultiHeadAttention runs it: no new array) or
            memory overlapping neither scores nor mask.

    Returns:
        p of scores' shape and dtype (out when given).
    """
    scale = _scale(scale)
    x = as_float("scores", scores, float_dtype(scores=scores))
    x4 = _as_4d("scores", x)
    m4 = _mask(mask, x.shape, x4.shape)
    o = _out(out, x.shape, x.dtype, {"scores": x, "mask": mask}, "scores")
    p = impl("attention").masked_softmax_forward(x4, m4, scale, None if o is None else o.reshape(x4.shape))
    return o if o is not None else p.reshape(x.shape)


def masked_softmax_backward(dp: ArrayLike, p: ArrayLike, mask: ArrayLike | None = None, scale: float = 1.0,
                            out: np.ndarray | None = None) -> Any:
    """The gradient of masked_softmax_forward: where(mask, scale * p * (dp - sum(dp * p)), 0).

    Args:
        dp: The gradient of the loss with respect to p (IN), p's shape.
        p: The forward's output (IN).
        mask: As given to the forward.
        scale: As given to the forward.
        out: None, or a writable C-contiguous array of p's shape and (float) dtype to write the
            result into (OUT): dp or p itself (in place) or memory overlapping none of dp, p and mask.

    Returns:
        The gradient with respect to scores, of p's shape (out when given).
    """
    scale = _scale(scale)
    dtype = float_dtype(dp=dp, p=p)
    p = as_float("p", p, dtype)
    dp = as_float("dp", dp, dtype)
    if dp.shape != p.shape:
        raise ValueError(f"dp must have the shape of p {p.shape}; received shape {dp.shape}")
    p4 = _as_4d("p", p)
    m4 = _mask(mask, p.shape, p4.shape)
    o = _out(out, p.shape, p.dtype, {"dp": dp, "p": p, "mask": mask}, "p")
    dx = impl("attention").masked_softmax_backward(dp.reshape(p4.shape), p4, m4, scale,
                                                   None if o is None else o.reshape(p4.shape))
    return o if o is not None else dx.reshape(p.shape)
