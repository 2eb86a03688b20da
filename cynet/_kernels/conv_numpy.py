"""NumPy twin of cynet._kernels.conv: 2-D convolution by im2col + GEMM and GEMM + col2im.

Same function names, signatures and results as the compiled module. Layout: channels_last
only, explicit padding amounts. The public wrappers in cynet.kernels.conv validate and
normalise (Keras padding modes, channels_first) before calling here.

im2col is one strided view of the zero-padded input, (N, OH, OW, KH, KW, C), copied once
into the patch matrix (N*OH*OW, KH*KW*C); col2im is a slice loop over the KH*KW window
offsets, each adding one strided slab of the patch gradient into the padded input gradient.
Every GEMM is one np.matmul over the whole batch.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._windows import conv_geometry as _geometry

__all__ = ["im2col", "col2im", "conv2d_forward", "conv2d_backward", "conv2d_transpose_forward",
           "conv2d_transpose_backward"]


def _check_float(name, a, ndim):
    if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be a float32 or float64 ndarray; received {type(a).__name__} "
                        f"{getattr(a, 'dtype', '')}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional; received shape {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")


def im2col(x, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw):
    """Patch matrix of a channels_last batch.

    x: (N, H, W, C) float32|float64, IN. Returns cols (N*OH*OW, KH*KW*C) of x's dtype, a new
    array; row n*OH*OW + oh*OW + ow holds the window at (oh, ow) in (kh, kw, c) order, with
    zeros where the window covers padding.
    """
    _check_float("x", x, 4)
    cols = _patches(x, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    return cols.copy() if not cols.flags.writeable else cols


def _patches(x, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw):
    """im2col without the final copy: a read-only view of x when the patches are x itself."""
    N, H, W, C = x.shape
    OH, OW = _geometry(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    if pt or pb or pl or pr:
        xp = np.zeros((N, H + pt + pb, W + pl + pr, C), dtype=x.dtype)
        xp[:, pt:pt + H, pl:pl + W, :] = x
    else:
        xp = np.ascontiguousarray(x)
    s0, s1, s2, s3 = xp.strides
    view = as_strided(xp, shape=(N, OH, OW, KH, KW, C),
                      strides=(s0, sh * s1, sw * s2, dh * s1, dw * s2, s3), writeable=False)
    return view.reshape(N * OH * OW, KH * KW * C)


def col2im(cols, N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw):
    """Adjoint of im2col: scatter-add the patch rows back into a (N, H, W, C) image batch.

    cols: (N*OH*OW, KH*KW*C) float32|float64, IN. Returns dx (N, H, W, C) of cols' dtype;
    the entries that fell on padding are dropped.
    """
    _check_float("cols", cols, 2)
    OH, OW = _geometry(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    if cols.shape != (N * OH * OW, KH * KW * C):
        raise ValueError(f"cols must have shape {(N * OH * OW, KH * KW * C)}; received shape {cols.shape}")
    d6 = cols.reshape(N, OH, OW, KH, KW, C)
    dxp = np.zeros((N, H + pt + pb, W + pl + pr, C), dtype=cols.dtype)
    hspan, wspan = sh * (OH - 1) + 1, sw * (OW - 1) + 1
    for kh in range(KH):
        h0 = kh * dh
        for kw in range(KW):
            w0 = kw * dw
            dxp[:, h0:h0 + hspan:sh, w0:w0 + wspan:sw, :] += d6[:, :, :, kh, kw, :]
    if pt or pb or pl or pr:
        return np.ascontiguousarray(dxp[:, pt:pt + H, pl:pl + W, :])
    return dxp


def _check_conv_args(x, kernel):
    _check_float("x", x, 4)
    _check_float("kernel", kernel, 4)
    if kernel.dtype != x.dtype:
        raise TypeError(f"kernel must have x's dtype {x.dtype}; received {kernel.dtype}")
    if kernel.shape[2] != x.shape[3]:
        raise ValueError(f"kernel must have shape (KH, KW, {x.shape[3]}, F) to match x's channels; "
                         f"received shape {kernel.shape}")
    if kernel.size == 0:
        raise ValueError(f"kernel must not be empty; received shape {kernel.shape}")


def conv2d_forward(x, kernel, bias, pt, pb, pl, pr, sh, sw, dh, dw):
    """y = conv(x, kernel) + bias, channels_last, cross-correlation as in Keras.

    x: (N, H, W, C) float32|float64, IN. kernel: (KH, KW, C, F) same dtype, IN.
    bias: (F,) same dtype or None, IN. pt, pb, pl, pr: zero padding top/bottom/left/right;
    sh, sw: strides; dh, dw: dilation. Returns y (N, OH, OW, F), new array.
    """
    _check_conv_args(x, kernel)
    KH, KW, C, F = kernel.shape
    N, H, W, _ = x.shape
    OH, OW = _geometry(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    cols = _patches(x, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    y = cols @ kernel.reshape(KH * KW * C, F)
    if bias is not None:
        _check_float("bias", bias, 1)
        if bias.shape != (F,) or bias.dtype != x.dtype:
            raise ValueError(f"bias must have shape ({F},) and dtype {x.dtype}; received {bias.shape} {bias.dtype}")
        y += bias
    return y.reshape(N, OH, OW, F)


def conv2d_backward(dy, x, kernel, pt, pb, pl, pr, sh, sw, dh, dw, use_bias, compute_dx):
    """Gradients of conv2d_forward.

    dy: (N, OH, OW, F) float32|float64, IN (the upstream gradient). x, kernel and the geometry
    as in conv2d_forward. Returns (dx, dkernel, dbias): dx (N, H, W, C) or None when
    compute_dx is false; dkernel (KH, KW, C, F); dbias (F,) or None when use_bias is false.
    All new arrays of x's dtype.
    """
    _check_conv_args(x, kernel)
    _check_float("dy", dy, 4)
    KH, KW, C, F = kernel.shape
    N, H, W, _ = x.shape
    OH, OW = _geometry(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    if dy.shape != (N, OH, OW, F) or dy.dtype != x.dtype:
        raise ValueError(f"dy must have shape {(N, OH, OW, F)} and dtype {x.dtype}; "
                         f"received {dy.shape} {dy.dtype}")
    dy2 = dy.reshape(N * OH * OW, F)
    cols = _patches(x, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    dkernel = (cols.T @ dy2).reshape(KH, KW, C, F)
    del cols
    # dbias accumulated in float64 and rounded once, as the compiled kernel's (its per-thread
    # partial sums are doubles), so 1e20 and -1e20 in dy do not absorb the small terms between
    # them; einsum casts in its buffers (no float64 copy of dy)
    dbias = np.einsum("ij->j", dy2, dtype=np.float64).astype(dy2.dtype) if use_bias else None
    dx = None
    if compute_dx:
        dcols = dy2 @ kernel.reshape(KH * KW * C, F).T
        dx = col2im(dcols, N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    return dx, dkernel, dbias


# ----------------------------------------------------------------------------------------------
# transposed convolution: the adjoint of conv2d_forward (without bias) in x. A transposed
# convolution of x (N, H, W, C) with a Keras kernel (KH, KW, F, C) is the input gradient of a
# convolution of an (N, OH, OW, F) image with the same kernel read as (KH, KW, F, C): the
# padding and strides below are that convolution's, which maps the output back onto x.

def _check_transpose_args(x, kernel, OH, OW, pt, pb, pl, pr, sh, sw, dh, dw):
    """(N, H, W, C, KH, KW, F) after checking that the convolution of an (OH, OW) image gives x's (H, W)."""
    _check_float("x", x, 4)
    _check_float("kernel", kernel, 4)
    if kernel.dtype != x.dtype:
        raise TypeError(f"kernel must have x's dtype {x.dtype}; received {kernel.dtype}")
    N, H, W, C = x.shape
    KH, KW, F, Ck = kernel.shape
    if Ck != C:
        raise ValueError(f"kernel must have shape (KH, KW, F, {C}) to match x's channels; "
                         f"received shape {kernel.shape}")
    if kernel.size == 0:
        raise ValueError(f"kernel must not be empty; received shape {kernel.shape}")
    if _geometry(N, OH, OW, F, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw) != (H, W):
        raise ValueError(f"the convolution of an ({OH}, {OW}) output with this geometry does not give x's "
                         f"spatial size ({H}, {W})")
    return N, H, W, C, KH, KW, F


def conv2d_transpose_forward(x, kernel, bias, OH, OW, pt, pb, pl, pr, sh, sw, dh, dw):
    """y = conv2d_transpose(x, kernel) + bias, channels_last.

    x: (N, H, W, C) float32|float64, IN. kernel: (KH, KW, F, C) same dtype, IN (Keras's layout).
    bias: (F,) same dtype or None, IN. (OH, OW): the output's spatial size; pt, pb, pl, pr,
    sh, sw, dh, dw: the geometry of the convolution that maps an (OH, OW) image onto x's (H, W).
    Returns y (N, OH, OW, F), a new array: col2im of x @ kernel^T.
    """
    N, H, W, C, KH, KW, F = _check_transpose_args(x, kernel, OH, OW, pt, pb, pl, pr, sh, sw, dh, dw)
    dcols = x.reshape(N * H * W, C) @ kernel.reshape(KH * KW * F, C).T
    y = col2im(dcols, N, OH, OW, F, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    if bias is not None:
        _check_float("bias", bias, 1)
        if bias.shape != (F,) or bias.dtype != x.dtype:
            raise ValueError(f"bias must have shape ({F},) and dtype {x.dtype}; received {bias.shape} {bias.dtype}")
        y += bias
    return y


def conv2d_transpose_backward(dy, x, kernel, pt, pb, pl, pr, sh, sw, dh, dw, use_bias, compute_dx):
    """Gradients of conv2d_transpose_forward.

    dy: (N, OH, OW, F) float32|float64, IN. x, kernel and the geometry as given to
    conv2d_transpose_forward. Returns (dx, dkernel, dbias): dx (N, H, W, C) = the convolution
    of dy with the kernel (None when compute_dx is false); dkernel (KH, KW, F, C) = patches(dy)^T @ x;
    dbias (F,) or None when use_bias is false. New arrays of x's dtype.
    """
    _check_float("dy", dy, 4)
    N, OH, OW, F = dy.shape
    N_, H, W, C, KH, KW, F_ = _check_transpose_args(x, kernel, OH, OW, pt, pb, pl, pr, sh, sw, dh, dw)
    if (N_, F_) != (N, F) or dy.dtype != x.dtype:
        raise ValueError(f"dy must have shape ({N_}, OH, OW, {F_}) and dtype {x.dtype}; received {dy.shape} {dy.dtype}")
    cols = _patches(dy, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    x2 = x.reshape(N * H * W, C)
    dkernel = (cols.T @ x2).reshape(KH, KW, F, C)
    dbias = (np.einsum("ij->j", dy.reshape(-1, F), dtype=np.float64).astype(dy.dtype) if use_bias else None)
    dx = (cols @ kernel.reshape(KH * KW * F, C)).reshape(N, H, W, C) if compute_dx else None
    return dx, dkernel, dbias


# ----------------------------------------------------------------------------------------------
# the mixed_bfloat16 convolution (twin of conv.pyx's conv2d_forward_bf16 / conv2d_backward_bf16;
# outside __all__: cynet/_kernels/conv_bf16.py calls them). Every product input is rounded to
# bfloat16 (a rounded x's patches are the patches of the rounded x), the products run in float32;
# the bias, the ReLU and the bias gradient on unrounded float32 values.

def _round_bf16(a):
    from .bf16_numpy import round_bf16
    return round_bf16(a).reshape(a.shape)


def conv2d_forward_bf16(x, kernel, bias, pt, pb, pl, pr, sh, sw, dh, dw, path, relu, bits=False):
    """conv2d_forward (float32) on bfloat16-rounded x and kernel, then ReLU when relu. path:
    unused (the twin has one path). With bits, (y, relu_bits(y before the ReLU))."""
    del path
    _check_conv_args(x, kernel)
    if x.dtype != np.float32:
        raise ValueError(f"x must be float32; received {x.dtype}")
    y = conv2d_forward(_round_bf16(x), _round_bf16(kernel), None, pt, pb, pl, pr, sh, sw, dh, dw)
    if bias is not None:
        if bias.shape != (kernel.shape[3],):
            raise ValueError(f"bias must have shape ({kernel.shape[3]},); received shape {bias.shape}")
        y += bias
    b = relu_bits(y) if bits else None
    if relu:
        y[y < 0] = 0
    return (y, b) if bits else y


def relu_bits(y):
    """The fused ReLU's record of y (N, OH, OW, F): uint8 (N * OH * OW, ceil(F / 8)), bit j % 8 of
    byte j // 8 of a row 1 where channel j is > 0 (NaN and -0.0: 0)."""
    return np.packbits(y.reshape(-1, y.shape[-1]) > 0, axis=1, bitorder="little")


def _relu_keep(y, dy):
    """Where the fused ReLU passes its gradient: y > 0 for its output y, or the 1 bits of its
    relu bits (relu_bits)."""
    if y.dtype == np.uint8:
        F = dy.shape[-1]
        rows = int(np.prod(dy.shape[:-1]))
        if y.shape != (rows, (F + 7) // 8):
            raise ValueError(f"the relu bits y must have shape {(rows, (F + 7) // 8)}; received shape {y.shape}")
        return np.unpackbits(y, axis=1, count=F, bitorder="little").astype(bool).reshape(dy.shape)
    if y.shape != dy.shape:
        raise ValueError(f"y must have dy's shape {dy.shape}; received shape {y.shape}")
    return y > 0


def conv2d_backward_bf16(dy, x, kernel, y, pt, pb, pl, pr, sh, sw, dh, dw, use_bias, compute_dx, path):
    """conv2d_backward (float32) with bfloat16-rounded product inputs; y: None, or the ReLU output
    or its relu bits (the gradient then goes through the ReLU first: dy where y > 0)."""
    del path
    if y is not None:
        dy = np.where(_relu_keep(y, dy), dy, np.float32(0))
    dx, dkernel, _ = conv2d_backward(_round_bf16(dy), _round_bf16(x), _round_bf16(kernel),
                                     pt, pb, pl, pr, sh, sw, dh, dw, False, compute_dx)
    dbias = None
    if use_bias:
        dbias = np.einsum("ij->j", dy.reshape(-1, dy.shape[-1]), dtype=np.float64).astype(np.float32)
    return dx, dkernel, dbias


# the first convolution, its ReLU and a 2x2 / stride 2 / valid max pooling in one call (twin of
# conv.pyx's conv2d_relu_maxpool_forward / _backward, which run in one pass; float32, outside
# __all__ as the bf16 convolution's): here the three steps, and the pooling's record as the bits
# conv.pyx's kernel writes.

def maxpool_record(p, argmax):
    """The record of a 2x2 max pooling p of a ReLU's output, from its argmax (window-local cell
    of the first maximum, both (N, PH, PW, F)): uint8 (N * PH * PW, 4, ceil(F / 8)), bit j % 8 of
    byte j // 8 of [u, q] 1 where pooled output u's channel j is > 0 and its maximum is cell q."""
    F = p.shape[-1]
    keep = (p.reshape(-1, 1, F) > 0) & (argmax.reshape(-1, 1, F) == np.arange(4).reshape(1, 4, 1))
    return np.packbits(keep, axis=2, bitorder="little")


def maxpool_expand(dp, sel, OH, OW):
    """The gradient (N, OH, OW, F) of the pooled ReLU's input (the convolution's output): each dp
    (N, PH, PW, F) at the window cell of its record sel (maxpool_record), 0 elsewhere (and on a
    last odd row or column, which no window reads)."""
    N, PH, PW, F = dp.shape
    if not isinstance(sel, np.ndarray) or sel.dtype != np.uint8 or sel.shape != (N * PH * PW, 4, (F + 7) // 8):
        raise ValueError(f"sel must be a uint8 array of shape {(N * PH * PW, 4, (F + 7) // 8)}; received "
                         f"{getattr(sel, 'dtype', type(sel).__name__)} {getattr(sel, 'shape', '')}")
    keep = np.unpackbits(sel, axis=2, count=F, bitorder="little").astype(bool).reshape(N, PH, PW, 4, F)
    dy = np.zeros((N, OH, OW, F), dtype=dp.dtype)
    for q in range(4):
        di, dj = divmod(q, 2)
        dy[:, di:2 * PH:2, dj:2 * PW:2] = np.where(keep[..., q, :], dp, dp.dtype.type(0))
    return dy


def conv2d_relu_maxpool_forward(x, kernel, bias, sh, sw, dh, dw, bf16):
    """(p, sel): the 2x2 / stride 2 max pooling of relu(conv2d_forward(x, kernel, bias, valid
    padding, ...)) (its product in bfloat16 when bf16: conv2d_forward_bf16) and its record
    (maxpool_record)."""
    from .pool_numpy import max_pool2d_forward
    geometry = (0, 0, 0, 0, sh, sw, dh, dw)
    if bf16:
        y = conv2d_forward_bf16(x, kernel, bias, *geometry, None, True)
    else:
        y = conv2d_forward(x, kernel, bias, *geometry)
        y[y < 0] = 0
    p, argmax = max_pool2d_forward(y, 2, 2, 2, 2, 0, 0, 0, 0)
    return p, maxpool_record(p, argmax)


def conv2d_relu_maxpool_backward(dp, x, kernel, sel, sh, sw, dh, dw, use_bias, bf16):
    """(dkernel, dbias or None) of conv2d_relu_maxpool_forward from p's gradient dp and sel."""
    N, H, W, _ = x.shape
    KH, KW = kernel.shape[:2]
    dy = maxpool_expand(dp, sel, (H - (KH - 1) * dh - 1) // sh + 1, (W - (KW - 1) * dw - 1) // sw + 1)
    geometry = (0, 0, 0, 0, sh, sw, dh, dw)
    if bf16:
        return conv2d_backward_bf16(dy, x, kernel, None, *geometry, use_bias, False, None)[1:]
    return conv2d_backward(dy, x, kernel, *geometry, use_bias, False)[1:]
