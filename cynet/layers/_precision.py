"""The matrix products of the built-in layers under their dtype policy.

`matmul(layer, a, b)` is `a @ b`, except under a bfloat16 policy (mixed_bfloat16), where both
operands are rounded to bfloat16 while the product packs them and the sums run in float32
(cynet.kernels.matmul_bf16). Everything around the products (bias, activations, softmax,
normalization, the loss) stays in the layer's float32 arrays: see cynet.dtype_policies.
"""
import contextlib

import numpy as np

from .. import kernels as _kernels


def matmul(layer, a, b):
    """a @ b under `layer`'s dtype policy (np.matmul's shapes)."""
    if not layer._bf16 or a.dtype != np.float32 or b.dtype != np.float32:
        return a @ b
    if b.ndim == 2 and a.ndim > 2:   # a stack times one matrix: one product of all rows (B packed once)
        k = a.shape[-1]
        try:
            a2 = a.reshape(-1, k, copy=False)
        except (ValueError, TypeError):
            a2 = np.ascontiguousarray(a).reshape(-1, k)
        return _kernels.matmul_bf16(a2, b).reshape(a.shape[:-1] + (b.shape[-1],))
    return _kernels.matmul_bf16(a, b)


def conv_products(layer):
    """A context in which cynet.kernels.conv runs `layer`'s convolutions under its policy (their
    products in bfloat16 under mixed_bfloat16; nothing changes otherwise)."""
    if layer._bf16 and layer.dtype == np.float32:
        from ..kernels.conv import bf16_products
        return bf16_products()
    return contextlib.nullcontext()
