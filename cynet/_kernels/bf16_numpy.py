"""NumPy twin of cynet/_kernels/bf16.pyx: the same functions, signatures and results.

NumPy has no bfloat16: a float32 is rounded to the nearest bfloat16 (ties to even) by integer
operations on its bits (add 0x7fff plus the lowest kept bit, clear the low 16 bits), NaN kept
NaN; the product then multiplies the rounded float32 matrices in float32 (a bfloat16 x bfloat16
product is exact in float32: only the order of the float32 sums differs from the compiled
kernel's)."""
import numpy as np

__all__ = ["round_bf16", "matmul_bf16", "native_available", "amx_available"]


def native_available():
    """The twin has no native path."""
    return False


def amx_available():
    return False


def _round(x):
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    nan = (u & np.uint32(0x7fffffff)) > np.uint32(0x7f800000)
    r = (u + (np.uint32(0x7fff) + ((u >> np.uint32(16)) & np.uint32(1)))) & np.uint32(0xffff0000)
    r = np.where(nan, (u | np.uint32(0x00400000)) & np.uint32(0xffff0000), r)
    return r.view(np.float32)


def round_bf16(x):
    """x (flat float32) rounded to the nearest bfloat16 (ties to even), as float32 values."""
    return _round(x).reshape(-1)


def matmul_bf16(a, b, native, out=None, bias=None):
    """(batch, M, N) float32 = a (batch, M, K) @ b (batch, K, N) on bfloat16-rounded inputs
    (into `out` when given), plus `bias` (N,) when given."""
    del native
    if out is None:
        out = np.matmul(_round(a), _round(b)).astype(np.float32, copy=False)
    else:
        np.matmul(_round(a), _round(b), out=out)
    if bias is not None:
        out += bias
    return out
