"""bfloat16 products: the matrix products of the mixed_bfloat16 dtype policy.

cynet's arrays stay float32 (NumPy has no bfloat16): `matmul_bf16` rounds each element of its
float32 operands to the nearest bfloat16 (ties to even; NaN and Inf kept) while packing them into
the product's panels, never as a separate pass over memory, and accumulates in float32. This is
what Keras's mixed_bfloat16 does on hardware with bfloat16 products; Keras's activations are
bfloat16 tensors between layers, while cynet's stay float32 (only the products' inputs are
rounded), so cynet's results are at least as accurate.

Three paths over the same packing (cynet/_kernels/cynet_bf16.h), the fastest the CPU has chosen
at run time unless `set_bf16_path` or the environment variable CYNET_BF16 (amx, avx512_bf16,
emulated) says otherwise: "amx" (AMX-BF16 tiles; Linux grants the tile state on first use),
"avx512_bf16" (vdpbf16ps) and "emulated" (the same rounded values, float32 multiply-adds in
vdpbf16ps's order: bit for bit the avx512_bf16 path's results on normal numbers; the native
instructions flush denormals to zero, and AMX sums each tile's pairs in its own order).
`cynet.kernels.info()["bf16"]` says which path runs ("native amx_bf16", "native avx512_bf16" or
"emulated"). The NumPy twin (the "numpy" backend) rounds the same way, then multiplies with
np.matmul in float32.
"""
import os

import numpy as np

from .. import _validation
from .._typing import ArrayLike
from ._backend import _compiled, impl

__all__ = ["round_bf16", "matmul_bf16"]

_PATHS = ("auto", "native", "amx", "avx512_bf16", "emulated")
_requested = os.environ.get("CYNET_BF16", "auto").strip().lower() or "auto"
if _requested not in _PATHS:
    _requested = "auto"
_CODES = {"emulated": 0, "avx512_bf16": 1, "amx": 2}


def _module():
    return _compiled.get("bf16")


def native_available() -> bool:
    """True where the compiled kernels have the AVX512_BF16 product and this CPU runs it."""
    mod = _module()
    return bool(mod is not None and mod.native_available())


def amx_available() -> bool:
    """True where the compiled kernels have the AMX-BF16 product, this CPU has it and the OS
    grants this process the tile state."""
    mod = _module()
    return bool(mod is not None and mod.amx_available())


def set_bf16_path(path: str) -> str:
    """Choose the bfloat16 product: "auto" or "native" (the fastest this CPU has), "amx",
    "avx512_bf16" (ValueError where the CPU lacks it) or "emulated". Returns the previous choice."""
    global _requested
    if path not in _PATHS:
        raise ValueError(f"path must be one of {_PATHS}; received path={path!r}")
    if path == "amx" and not amx_available():
        raise ValueError("path='amx' needs AMX-BF16 (this CPU, OS or build lacks it)")
    if path == "avx512_bf16" and not native_available():
        raise ValueError("path='avx512_bf16' needs AVX512_BF16 (this CPU or build lacks it); use 'emulated'")
    old, _requested = _requested, path
    return old


def _path():
    """The path that runs: "amx", "avx512_bf16" or "emulated"."""
    want = _requested
    if want in ("auto", "native", "amx") and amx_available():
        return "amx"
    if want != "emulated" and native_available():
        return "avx512_bf16"
    return "emulated"


def bf16_path() -> str:
    """The bfloat16 product that runs: "native amx_bf16", "native avx512_bf16" or "emulated"."""
    return {"amx": "native amx_bf16", "avx512_bf16": "native avx512_bf16", "emulated": "emulated"}[_path()]


def round_bf16(x: ArrayLike) -> np.ndarray:
    """x rounded to the nearest bfloat16 (ties to even; NaN stays NaN, Inf stays Inf).

    Args:
        x: Real array (taken as float32).

    Returns:
        A float32 array of x's shape (the values every bfloat16 product sees).
    """
    x = _validation.as_float("x", x, np.float32)
    return impl("bf16").round_bf16(x.reshape(-1)).reshape(x.shape)


def _operand(name, a):
    """a as a float32 ndarray the kernel reads in place (any element strides, as a transposed or
    broadcast view), or a C-contiguous float32 copy (other dtypes, unaligned or odd strides)."""
    if (isinstance(a, np.ndarray) and a.dtype == np.float32 and a.dtype.isnative and a.flags.aligned
            and all(s % 4 == 0 for s in a.strides)):
        return a
    return _validation.as_float(name, a, np.float32)


def matmul_bf16(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """a @ b (np.matmul's shapes: 2-D, or stacks broadcast over the leading axes; 1-D operands
    are refused) with both operands rounded to bfloat16 and float32 accumulation; float32 out.

    Args:
        a: (..., M, K) real array, taken as float32 (read in place when it already is).
        b: (..., K, N) real array, likewise.

    Returns:
        A new C-contiguous float32 array (..., M, N); the products run on the native or the
        emulated path (`bf16_path()`).
    """
    a, b = _operand("a", a), _operand("b", b)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"a and b must be at least 2-dimensional; received shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"b must have shape (..., {a.shape[-1]}, N) to match a's shape {a.shape}; "
                         f"received shape {b.shape}")
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"the leading axes of a {a.shape} and b {b.shape} do not broadcast") from None
    M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
    _validation.check_size("out", batch + (M, N), 4, "the product")
    a3, b3 = _stack(a, batch), _stack(b, batch)
    out = impl("bf16").matmul_bf16(a3, b3, _CODES[_path()])
    return out.reshape(batch + (M, N))


def _matmul_into(a, b, out, bias=None):
    """out (M, N), C-contiguous float32 = a (M, K) @ b (K, N) on bfloat16-rounded inputs, plus
    bias (N,) float32 when given: for cynet's own callers (the convolutions' blocks), whose
    arguments are already checked."""
    impl("bf16").matmul_bf16(a[None], b[None], _CODES[_path()], out[None], bias)
    return out


def _stack(a, batch):
    """a broadcast to batch + its last two axes, as a 3-D view (a copy only when the leading axes
    cannot merge into one stride)."""
    a = np.broadcast_to(a, batch + a.shape[-2:])
    n = int(np.prod(batch, dtype=np.int64)) if batch else 1
    if a.ndim == 2:
        return a[None]
    try:
        return a.reshape((n,) + a.shape[-2:], copy=False)
    except (ValueError, TypeError):
        return np.ascontiguousarray(a).reshape((n,) + a.shape[-2:])
