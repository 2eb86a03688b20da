"""The convolutions of the mixed_bfloat16 policy: the conv kernels' four entry points (same
signatures as cynet/_kernels/conv.pyx and its twin) with every matrix product on
cynet.kernels.matmul_bf16 (inputs rounded to bfloat16 while packed, float32 accumulation).

The convolution and its gradients run on the current backend's conv2d_forward_bf16 /
conv2d_backward_bf16 (compiled: cynet/_kernels/conv.pyx, one OpenMP team, every product's
inputs rounded to bfloat16 while packed from a block of patches in cache; or the NumPy twin);
the transposed convolution on the backend's im2col / col2im and matmul_bf16. The bias, the
bias gradient (float64 sums), the optional fused ReLU and the scatter of col2im stay float32. cynet.kernels.conv
dispatches here inside `bf16_products()` (the Conv layers under a bfloat16 policy), in the
calling thread only.
"""
import numpy as np

from cynet.kernels._backend import impl
from cynet.kernels.bf16 import matmul_bf16


def _base():
    return impl("conv")


def _code():
    from cynet.kernels.bf16 import _CODES, _path
    return _CODES[_path()]


def _f32(*arrays):
    return [None if a is None else np.ascontiguousarray(a, dtype=np.float32) for a in arrays]


def conv2d_forward(x, kernel, bias, pt, pb, pl, pr, sh, sw, dh, dw, relu=False, bits=False):
    """y = im2col(x) @ kernel (K, F) + bias, the product in bfloat16, then ReLU when relu (the
    Conv layers' fused relu): the current backend's conv2d_forward_bf16 (conv.pyx: one team,
    im2col, product, bias and ReLU per block of images in cache). With bits, (y, relu bits):
    the record of y > 0 the backward takes instead of y (1 bit per output)."""
    x, kernel, bias = _f32(x, kernel, bias)
    return _base().conv2d_forward_bf16(x, kernel, bias, pt, pb, pl, pr, sh, sw, dh, dw, _code(), relu, bits)


def conv2d_backward(dy, x, kernel, pt, pb, pl, pr, sh, sw, dh, dw, use_bias, compute_dx, y=None):
    """(dx, dkernel, dbias): dkernel = im2col(x)^T @ g, dx = col2im(g @ kernel^T), g = dy, or dy
    where y > 0 when y (the fused ReLU's output, or its relu bits: uint8) is given."""
    bits = y if y is not None and y.dtype == np.uint8 else None
    dy, x, kernel, y = _f32(dy, x, kernel, None if bits is not None else y)
    if bits is not None:
        y = np.ascontiguousarray(bits)
    N, H, W, C = x.shape
    KH, KW, _, F = kernel.shape
    OH, OW = _out(H, KH, pt, pb, sh, dh), _out(W, KW, pl, pr, sw, dw)
    if dy.shape != (N, OH, OW, F):
        raise ValueError(f"dy must have shape {(N, OH, OW, F)}; received shape {dy.shape}")
    return _base().conv2d_backward_bf16(dy, x, kernel, y, pt, pb, pl, pr, sh, sw, dh, dw, use_bias, compute_dx,
                                        _code())


def conv2d_transpose_forward(x, kernel, bias, OH, OW, pt, pb, pl, pr, sh, sw, dh, dw):
    """y = col2im(x @ kernel^T) + bias (kernel (KH, KW, F, C)), the product in bfloat16."""
    N, H, W, C = x.shape
    KH, KW, F, _ = kernel.shape
    dcols = matmul_bf16(x.reshape(N * H * W, C), kernel.reshape(KH * KW * F, C).T)
    y = _base().col2im(dcols, N, OH, OW, F, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    if bias is not None:
        y += bias
    return y


def conv2d_transpose_backward(dy, x, kernel, pt, pb, pl, pr, sh, sw, dh, dw, use_bias, compute_dx):
    """(dx, dkernel, dbias): with P = im2col(dy), dkernel = P^T @ x, dx = P @ kernel."""
    N, OH, OW, F = dy.shape
    _, H, W, C = x.shape
    KH, KW = kernel.shape[:2]
    cols = _base().im2col(dy, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    if cols.shape[0] != N * H * W:
        raise ValueError(f"x must have the spatial size the geometry maps dy onto; received shape {x.shape}")
    x2 = x.reshape(N * H * W, C)
    dkernel = matmul_bf16(cols.T, x2).reshape(kernel.shape)
    dbias = _bias_grad(dy.reshape(-1, F)) if use_bias else None
    dx = matmul_bf16(cols, kernel.reshape(KH * KW * F, C)).reshape(N, H, W, C) if compute_dx else None
    return dx, dkernel, dbias


def _bias_grad(dy2, block=256):
    """The column sums of dy2 (rows, F): float32 sums of blocks of rows, float64 over the blocks
    (as the compiled kernel; no float64 copy of dy2)."""
    whole = dy2.shape[0] // block * block
    total = dy2[whole:].sum(axis=0, dtype=np.float64)
    if whole:
        total += dy2[:whole].reshape(-1, block, dy2.shape[1]).sum(axis=1).sum(axis=0, dtype=np.float64)
    return total.astype(dy2.dtype)


def _out(size, k, before, after, stride, dilation):
    return (size + before + after - (k - 1) * dilation - 1) // stride + 1
