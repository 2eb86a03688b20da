"""The convolutions of the mixed_bfloat16 policy: the conv kernels' four entry points (same
signatures as cynet/_kernels/conv.pyx and its twin) with every matrix product on
cynet.kernels.matmul_bf16 (inputs rounded to bfloat16 while packed, float32 accumulation).

The patch matrices come from the current backend's im2col / col2im (compiled or twin); the
bias, the bias gradient (float64 sums) and the scatter of col2im stay float32. cynet.kernels.conv
dispatches here inside `bf16_products()` (the Conv layers under a bfloat16 policy), in the
calling thread only.
"""
import numpy as np

from cynet.kernels._backend import impl
from cynet.kernels.bf16 import _matmul_into, matmul_bf16


def _base():
    return impl("conv")


# Images per block: the block's patch matrix (and its product) about this many bytes, so that
# im2col's writes and the product's reads stay in the core's L2 instead of a pass over memory.
_BLOCK_BYTES = 1 << 20


def _blocks(N, rows_per_image, K):
    per = max(1, _BLOCK_BYTES // max(1, rows_per_image * K * 4))
    return [(n, min(n + per, N)) for n in range(0, N, per)]


def conv2d_forward(x, kernel, bias, pt, pb, pl, pr, sh, sw, dh, dw):
    """y = im2col(x) @ kernel (K, F) + bias, the product in bfloat16, in blocks of images."""
    N, H, W, C = x.shape
    KH, KW, _, F = kernel.shape
    OH, OW = _out(H, KH, pt, pb, sh, dh), _out(W, KW, pl, pr, sw, dw)
    w2 = kernel.reshape(KH * KW * C, F)
    y = np.empty((N, OH, OW, F), dtype=np.float32)
    y2 = y.reshape(N, OH * OW, F)
    for n0, n1 in _blocks(N, OH * OW, KH * KW * C):
        cols = _base().im2col(x[n0:n1], KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
        _matmul_into(cols, w2, y2[n0:n1].reshape(-1, F), bias)   # (the bias added in the product)
    return y


def conv2d_backward(dy, x, kernel, pt, pb, pl, pr, sh, sw, dh, dw, use_bias, compute_dx):
    """(dx, dkernel, dbias): dkernel = im2col(x)^T @ dy, dx = col2im(dy @ kernel^T), in blocks
    of images."""
    N, H, W, C = x.shape
    KH, KW, _, F = kernel.shape
    OH, OW = _out(H, KH, pt, pb, sh, dh), _out(W, KW, pl, pr, sw, dw)
    if dy.shape != (N, OH, OW, F):
        raise ValueError(f"dy must have shape {(N, OH, OW, F)}; received shape {dy.shape}")
    K = KH * KW * C
    w2t = kernel.reshape(K, F).T
    dy3 = dy.reshape(N, OH * OW, F)
    dk = np.zeros((K, F), dtype=np.float64)
    dx = np.empty((N, H, W, C), dtype=np.float32) if compute_dx else None
    for n0, n1 in _blocks(N, OH * OW, K):
        cols = _base().im2col(x[n0:n1], KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
        dyb = dy3[n0:n1].reshape(-1, F)
        dk += matmul_bf16(cols.T, dyb)
        if compute_dx:
            dcols = matmul_bf16(dyb, w2t)
            dx[n0:n1] = _base().col2im(dcols, n1 - n0, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    dbias = _bias_grad(dy.reshape(-1, F)) if use_bias else None
    return dx, dk.astype(np.float32).reshape(kernel.shape), dbias


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
