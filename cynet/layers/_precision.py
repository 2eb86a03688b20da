"""The matrix products of the built-in layers under their dtype policy.

`matmul(layer, a, b)` is `a @ b`, except under a bfloat16 policy (mixed_bfloat16), where both
operands are rounded to bfloat16 while the product packs them and the sums run in float32
(cynet.kernels.matmul_bf16). Everything around the products (bias, activations, softmax,
normalization, the loss) stays in the layer's float32 arrays: see cynet.dtype_policies.
"""
import contextlib

import numpy as np

from .. import kernels as _kernels


def row_order(a):
    """The leading axes of `a` (all but the last) by decreasing stride: in that order they
    merge into one axis of rows without a copy wherever `a` is a permuted view of a contiguous
    array (a recurrent layer's (batch, steps, units) output is its (units, steps, batch) buffer
    transposed), which BLAS then reads as a transposed matrix in place."""
    return sorted(range(a.ndim - 1), key=lambda i: -abs(a.strides[i]))


def as_rows(a, order):
    """`a` (..., k) as a 2-D (rows, k) array, its leading axes taken in `order` (row_order):
    a view where the strides allow, else a copy."""
    t = a.transpose(order + [a.ndim - 1])
    try:
        return t.reshape(-1, a.shape[-1], copy=False)
    except (ValueError, TypeError):
        return np.ascontiguousarray(t).reshape(-1, a.shape[-1])


def from_rows(z2, a, order):
    """The inverse of as_rows for a product z2 (rows, n) of as_rows(a, order): (..., n) in a's
    leading shape (a view of z2)."""
    lead = [a.shape[i] for i in order]
    back = [0] * len(order)
    for j, i in enumerate(order):
        back[i] = j
    return z2.reshape(lead + [z2.shape[-1]]).transpose(back + [len(order)])


def _mm2(layer, a, b):
    if not layer._bf16 or a.dtype != np.float32 or b.dtype != np.float32:
        return a @ b
    return _kernels.matmul_bf16(a, b)


def matmul(layer, a, b):
    """a @ b under `layer`'s dtype policy (np.matmul's shapes). A stack a (..., k) times one
    matrix b runs as ONE product of all its rows (as_rows: no copy of a permuted view)."""
    if b.ndim == 2 and a.ndim > 2:
        order = row_order(a)
        return from_rows(_mm2(layer, as_rows(a, order), b), a, order)
    return _mm2(layer, a, b)


def conv_products(layer):
    """A context in which cynet.kernels.conv runs `layer`'s convolutions under its policy (their
    products in bfloat16 under mixed_bfloat16; nothing changes otherwise)."""
    if layer._bf16 and layer.dtype == np.float32:
        from ..kernels.conv import bf16_products
        return bf16_products()
    return contextlib.nullcontext()
