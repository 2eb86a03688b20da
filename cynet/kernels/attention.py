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

attention_forward / attention_backward: the whole dot-product attention of MultiHeadAttention,
fused (one (batch, head) pair at a time, its score block in cache) on the projections' layout:
query (B, T, H, dk), key (B, S, H, dk), value (B, S, H, dv) -> out (B, T, H, dv) and the
probabilities p (B, H, T, S); mask broadcastable to p. Query, key and value may be views of one
packed projection (read in place), and attention_backward can return the gradients as the parts
of one array (`packed`), MultiHeadAttention's self-attention path.
"""
from typing import Any

import numpy as np

from .._validation import as_array, as_float, check_size, float_dtype, inplace_array, is_real
from ._backend import impl
from .._typing import ArrayLike

__all__ = ["masked_softmax_forward", "masked_softmax_backward", "attention_forward", "attention_backward"]


def _as_4d(name, a):
    """a (ndim 1..4) as a (B, H, Tq, Tk) view with leading size-1 axes."""
    if not 1 <= a.ndim <= 4:
        raise ValueError(f"{name} must have 1 to 4 dimensions ((B, H, Tq, Tk), keys last); received shape {a.shape}")
    return a.reshape((1,) * (4 - a.ndim) + a.shape)


def _mask(mask, shape, shape4, scores="the scores"):
    """mask (broadcastable to `shape`) as a uint8 broadcast view of `shape4`, the 4-D view of
    shape, its last-axis stride 0 or 1; None stays None. `scores` names the scores in errors."""
    if mask is None:
        return None
    m = as_array("mask", mask)
    if m.dtype.kind not in "biuf":
        raise TypeError(f"mask must be a boolean (or numeric, nonzero = keep) array; received dtype {m.dtype}")
    if m.ndim > len(shape) or any(a != 1 and a != b for a, b in zip(m.shape[::-1], shape[::-1])):
        raise ValueError(f"mask must be broadcastable to {scores} {tuple(shape)} (at most their rank, each axis 1 "
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


def _rows(name, a, dtype):
    """`a` as an array of `dtype` with a unit stride along its last axis: a view of a wider array
    (a part of a packed query-key-value projection) is read in place when its strides are
    non-negative whole elements; anything else is converted to a C-contiguous array."""
    if isinstance(a, np.ndarray) and a.dtype == dtype and a.ndim == 4 and a.size and a.strides[3] == a.itemsize \
            and all(s >= 0 and s % a.itemsize == 0 for s in a.strides):
        return a
    return as_float(name, a, dtype)


def _heads(dtype, query, key, value):
    """query, key, value as C-contiguous arrays of `dtype`, their shapes checked: (B, T, H, dk),
    (B, S, H, dk), (B, S, H, dv)."""
    q, k, v = (_rows(name, a, dtype) for name, a in (("query", query), ("key", key), ("value", value)))
    for name, a in (("query", q), ("key", k), ("value", v)):
        if a.ndim != 4:
            raise ValueError(f"{name} must be 4-dimensional ((batch, steps, heads, dim)); received shape {a.shape}")
    if k.shape[0] != q.shape[0] or k.shape[2:] != q.shape[2:]:
        raise ValueError(f"key must have the shape (B, S, H, dk) = ({q.shape[0]}, S, {q.shape[2]}, {q.shape[3]}) "
                         f"to match query {q.shape}; received shape {k.shape}")
    if v.shape[:3] != k.shape[:3]:
        raise ValueError(f"value must have the shape (B, S, H, dv) = {k.shape[:3] + ('dv',)} to match key "
                         f"{k.shape}; received shape {v.shape}")
    return q, k, v


def attention_forward(query: ArrayLike, key: ArrayLike, value: ArrayLike, mask: ArrayLike | None = None,
                      scale: float = 1.0) -> Any:
    """out = softmax(where(mask, scale * q k^T, -1e9)) v for each (batch, head), fused.

    Args:
        query: (B, T, H, dk) float32|float64 (IN), the projections' layout (MultiHeadAttention's
            query output). query, key and value are read in place when their last axis has a unit
            stride and their other strides are non-negative (views of one packed projection, e.g.
            (B, T, 3 * H * d) sliced along its last axis); any other layout is copied first.
        key: (B, S, H, dk) (IN).
        value: (B, S, H, dv) (IN).
        mask: None or broadcastable to the scores (B, H, T, S), True/nonzero = keep (IN).
        scale: A finite real factor applied to the scores before the mask.

    Returns:
        (out (B, T, H, dv), p (B, H, T, S)): the attention output and the probabilities (what
        attention_backward needs), of the inputs' common float dtype.
    """
    scale = _scale(scale)
    q, k, v = _heads(float_dtype(query=query, key=key, value=value), query, key, value)
    shape = (q.shape[0], q.shape[2], q.shape[1], k.shape[1])
    check_size("attention_forward", shape, q.itemsize, "the probabilities (B, H, T, S)")
    m4 = _mask(mask, shape, shape, f"the scores (B, H, T, S) of query {q.shape} and key {k.shape}")
    return impl("attention").attention_forward(q, k, v, m4, scale)


_PACKED = {None: 0, "kv": 1, "qkv": 2}


def attention_backward(grad: ArrayLike, query: ArrayLike, key: ArrayLike, value: ArrayLike, p: ArrayLike,
                       mask: ArrayLike | None = None, scale: float = 1.0, packed: str | None = None) -> Any:
    """The gradients of attention_forward's out with respect to its query, key and value.

    Args:
        grad: (B, T, H, dv), the gradient of the output (IN).
        query: As given to the forward.
        key: As given to the forward.
        value: As given to the forward.
        p: (B, H, T, S), the forward's probabilities (IN).
        mask: As given to the forward.
        scale: As given to the forward.
        packed: None (three arrays), "kv" (dkey and dvalue the two parts, along the last axis, of
            one (B, S, H*dk + H*dv) array: the gradient of a fused key-value projection) or "qkv"
            (all three the parts of one (B, T, 2*H*dk + H*dv) array, T == S: a fused
            query-key-value projection's); the parts are views of that array.

    Returns:
        (dquery, dkey, dvalue), each of its input's shape and the common float dtype.
    """
    if not isinstance(packed, (str, type(None))) or packed not in _PACKED:
        raise ValueError(f"packed must be None, 'kv' or 'qkv'; received packed={packed!r}")
    scale = _scale(scale)
    dtype = float_dtype(grad=grad, query=query, key=key, value=value, p=p)
    q, k, v = _heads(dtype, query, key, value)
    shape = (q.shape[0], q.shape[2], q.shape[1], k.shape[1])
    g, pp = as_float("grad", grad, dtype), as_float("p", p, dtype)
    if g.shape != q.shape[:3] + v.shape[3:]:
        raise ValueError(f"grad must have the shape of the output {q.shape[:3] + v.shape[3:]} of query {q.shape} "
                         f"and value {v.shape}; received shape {g.shape}")
    if pp.shape != shape:
        raise ValueError(f"p must have the shape of the probabilities {shape} of query {q.shape} and key {k.shape}; "
                         f"received shape {pp.shape}")
    if packed == "qkv" and q.shape[1] != k.shape[1]:
        raise ValueError(f"packed='qkv' needs as many keys as queries; received query {q.shape} and key {k.shape}")
    m4 = _mask(mask, shape, shape, f"the scores (B, H, T, S) of query {q.shape} and key {k.shape}")
    return impl("attention").attention_backward(g, q, k, v, pp, m4, scale, _PACKED[packed])
