"""Attention kernels in NumPy: the reference twin of attention.pyx.

Same functions, signatures and results as the compiled module (within 1e-10 in float64, 1e-5 in
float32): p = softmax(where(mask, scale * x, -1e9)) along the last axis of (B, H, Tq, Tk) scores
(Keras 3's masked softmax: a masked key gets probability 0, a fully masked row is uniform), and
its backward dx = where(mask, scale * p * (dp - sum(dp * p)), 0). As in the kernel, the row sums
(sum of exps, sum(dp * p)) are accumulated in float64 and the per-row scalars rounded once to
the scores' dtype.

attention_forward / attention_backward: the whole dot-product attention on the projections'
(B, T, H, d) layout, the compiled module's fused kernel written as matmuls around the softmax.
"""
import numpy as np

__all__ = ["masked_softmax_forward", "masked_softmax_backward", "attention_forward", "attention_backward"]

MASKED_SCORE = -1e9   # Keras's _large_negative_number for float32 and float64


def _check(name, a, ref_name=None, ref=None):
    if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64) or a.ndim != 4:
        raise TypeError(f"{name} must be a 4-dimensional float32 or float64 ndarray; received "
                        f"{type(a).__name__} of dtype {getattr(a, 'dtype', None)}")
    if ref is not None and a.shape != ref.shape:
        raise ValueError(f"{name} must have the shape of {ref_name} {ref.shape}; received shape {a.shape}")


def _check_mask(mask, shape):
    if mask is not None and tuple(mask.shape) != tuple(shape):
        raise ValueError(f"mask must have the shape of the scores {tuple(shape)}; received shape {mask.shape}")


def _out(out, ref, ref_name, result):
    """result, written into `out` when given (the kernel's out= argument)."""
    if out is None:
        return result
    _check("out", out, ref_name, ref)
    if out.dtype != ref.dtype:
        raise TypeError(f"out must have the dtype of {ref_name} ({ref.dtype}); received {out.dtype}")
    out[...] = result
    return out


def masked_softmax_forward(x, mask, scale, out=None):
    """p = softmax(where(mask, scale * x, -1e9)) along the last axis (x: (B, H, Tq, Tk); mask:
    None or a uint8 view of x's shape, nonzero = keep; out: None or the array to write p into,
    x itself allowed)."""
    _check("x", x)
    _check_mask(mask, x.shape)
    if x.size == 0:
        return _out(out, x, "x", np.empty(x.shape, x.dtype))
    dt = x.dtype.type
    z = x * dt(scale)
    if mask is not None:
        z = np.where(mask != 0, z, dt(MASKED_SCORE))
    with np.errstate(over="ignore", invalid="ignore"):   # (scores of opposite huge signs: exp(-inf) = 0)
        z = z - z.max(axis=-1, keepdims=True)
        e = np.exp(z)
    inv = (1.0 / e.sum(axis=-1, keepdims=True, dtype=np.float64)).astype(x.dtype)
    return _out(out, x, "x", e * inv)


def masked_softmax_backward(dp, p, mask, scale, out=None):
    """dx = where(mask, scale * p * (dp - sum(dp * p)), 0), the gradient of masked_softmax_forward
    (out: None or the array to write dx into, dp or p itself allowed)."""
    _check("p", p)
    _check("dp", dp, "p", p)
    _check_mask(mask, p.shape)
    if p.size == 0:
        return _out(out, p, "p", np.empty(p.shape, p.dtype))
    dot = np.einsum("...k,...k->...", dp.astype(np.float64), p.astype(np.float64))[..., None].astype(p.dtype)
    dx = p.dtype.type(scale) * (p * (dp - dot))
    if mask is not None:
        dx = np.where(mask != 0, dx, p.dtype.type(0))
    return _out(out, p, "p", dx)


def _check_heads(q, k, v):
    for name, a in (("q", q), ("k", k), ("v", v)):
        _check(name, a)
    B, T, H, dk = q.shape
    if k.shape != (B, k.shape[1], H, dk):
        raise ValueError(f"k must have the shape (B, S, H, dk) matching q {q.shape}; received shape {k.shape}")
    if v.shape[:3] != k.shape[:3]:
        raise ValueError(f"v must have the shape (B, S, H, dv) matching k {k.shape}; received shape {v.shape}")


def attention_forward(q, k, v, mask, scale):
    """(out, p): p = masked_softmax_forward(q k^T per (batch, head), mask, scale) (B, H, T, S),
    out = p v in the (B, T, H, dv) layout (q (B, T, H, dk), k (B, S, H, dk), v (B, S, H, dv))."""
    _check_heads(q, k, v)
    _check_mask(mask, (q.shape[0], q.shape[2], q.shape[1], k.shape[1]))
    scores = np.ascontiguousarray(q.transpose(0, 2, 1, 3) @ k.transpose(0, 2, 3, 1))
    p = masked_softmax_forward(scores, mask, scale)
    return np.ascontiguousarray((p @ v.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)), p


def _gradient_arrays(B, T, S, H, dk, dv, packed, dtype):
    """(dq, dk, dv) to write: separate arrays (packed 0); dk and dv the two parts of one
    (B, S, H*dk + H*dv) array (packed 1); all three the parts of one (B, T, 2*H*dk + H*dv) array
    (packed 2, T == S): the compiled module's layouts."""
    if packed == 2:
        buf = np.empty((B, T, H * (2 * dk + dv)), dtype=dtype)
        return (buf[:, :, :H * dk].reshape(B, T, H, dk), buf[:, :, H * dk:2 * H * dk].reshape(B, S, H, dk),
                buf[:, :, 2 * H * dk:].reshape(B, S, H, dv))
    dq = np.empty((B, T, H, dk), dtype=dtype)
    if packed == 1:
        buf = np.empty((B, S, H * (dk + dv)), dtype=dtype)
        return dq, buf[:, :, :H * dk].reshape(B, S, H, dk), buf[:, :, H * dk:].reshape(B, S, H, dv)
    return dq, np.empty((B, S, H, dk), dtype=dtype), np.empty((B, S, H, dv), dtype=dtype)


def attention_backward(g, q, k, v, p, mask, scale, packed=0):
    """(dq, dk, dv), the gradients of attention_forward's out given g (B, T, H, dv) and its p;
    packed 0, 1 or 2: their layout (_gradient_arrays)."""
    _check_heads(q, k, v)
    B, T, H, dk = q.shape
    S, dv = k.shape[1], v.shape[3]
    if g.shape != (B, T, H, dv):
        raise ValueError(f"g must have the shape of out {(B, T, H, dv)}; received shape {g.shape}")
    if p.shape != (B, H, T, S):
        raise ValueError(f"p must have the shape of the scores {(B, H, T, S)}; received shape {p.shape}")
    if packed not in (0, 1, 2) or (packed == 2 and T != S):
        raise ValueError(f"packed must be 0, 1, or 2 with as many keys as queries; received packed={packed} "
                         f"with T={T}, S={S}")
    _check_mask(mask, p.shape)
    gh = g.transpose(0, 2, 1, 3)
    dv_ = p.transpose(0, 1, 3, 2) @ gh
    ds = masked_softmax_backward(np.ascontiguousarray(gh @ v.transpose(0, 2, 3, 1)), p, mask, scale)
    dq_ = ds @ k.transpose(0, 2, 1, 3)
    dk_ = ds.transpose(0, 1, 3, 2) @ q.transpose(0, 2, 1, 3)
    out = _gradient_arrays(B, T, S, H, dk, dv, packed, p.dtype)
    for o, a in zip(out, (dq_, dk_, dv_)):
        o[...] = a.transpose(0, 2, 1, 3)
    return out
