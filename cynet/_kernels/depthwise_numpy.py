"""NumPy twin of cynet._kernels.depthwise: depthwise 2-D convolution, forward and backward.

Same function names, signatures and results as the compiled module. Layout: channels_last
only, explicit padding amounts; kernel (KH, KW, C, M), output channel c*M + m. The public
wrappers in cynet.kernels.depthwise validate and normalise before calling here.

One loop over the KH*KW window taps: each tap is one strided slab of the zero-padded input
(N, OH, OW, C), multiplied by the tap's (C, M) weights; the backward adds each tap's slab of
the padded input gradient and reduces its dkernel over (N, OH, OW).
"""
import numpy as np

from .conv_numpy import _check_float, _geometry

__all__ = ["depthwise_conv2d_forward", "depthwise_conv2d_backward"]


def _check_args(x, kernel):
    _check_float("x", x, 4)
    _check_float("kernel", kernel, 4)
    if kernel.dtype != x.dtype:
        raise TypeError(f"kernel must have x's dtype {x.dtype}; received {kernel.dtype}")
    if kernel.shape[2] != x.shape[3]:
        raise ValueError(f"kernel must have shape (KH, KW, {x.shape[3]}, depth_multiplier) to match x's channels; "
                         f"received shape {kernel.shape}")
    if kernel.size == 0:
        raise ValueError(f"kernel must not be empty; received shape {kernel.shape}")


def _padded(x, pt, pb, pl, pr):
    if not (pt or pb or pl or pr):
        return x
    N, H, W, C = x.shape
    xp = np.zeros((N, H + pt + pb, W + pl + pr, C), dtype=x.dtype)
    xp[:, pt:pt + H, pl:pl + W, :] = x
    return xp


def _tap(a, kh, kw, OH, OW, sh, sw, dh, dw):
    """The slab of the padded array a that tap (kh, kw) of every window reads: (N, OH, OW, C)."""
    h0, w0 = kh * dh, kw * dw
    return a[:, h0:h0 + sh * (OH - 1) + 1:sh, w0:w0 + sw * (OW - 1) + 1:sw, :]


def depthwise_conv2d_forward(x, kernel, bias, pt, pb, pl, pr, sh, sw, dh, dw):
    """y = depthwise(x, kernel) + bias, channels_last, cross-correlation as in Keras.

    x: (N, H, W, C) float32|float64, IN. kernel: (KH, KW, C, M) same dtype, IN. bias: (C*M,)
    same dtype or None, IN. pt, pb, pl, pr: zero padding; sh, sw: strides; dh, dw: dilation.
    Returns y (N, OH, OW, C*M), new array; output channel c*M + m is channel c's m-th filter.
    """
    _check_args(x, kernel)
    KH, KW, C, M = kernel.shape
    N, H, W, _ = x.shape
    OH, OW = _geometry(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    if bias is not None:
        _check_float("bias", bias, 1)
        if bias.shape != (C * M,) or bias.dtype != x.dtype:
            raise ValueError(f"bias must have shape ({C * M},) and dtype {x.dtype}; received {bias.shape} {bias.dtype}")
    xp = _padded(x, pt, pb, pl, pr)
    y = np.zeros((N, OH, OW, C, M), dtype=x.dtype)
    for kh in range(KH):
        for kw in range(KW):
            y += _tap(xp, kh, kw, OH, OW, sh, sw, dh, dw)[..., None] * kernel[kh, kw]
    y = y.reshape(N, OH, OW, C * M)
    if bias is not None:
        y += bias
    return y


def depthwise_conv2d_backward(dy, x, kernel, pt, pb, pl, pr, sh, sw, dh, dw, use_bias, compute_dx):
    """Gradients of depthwise_conv2d_forward.

    dy: (N, OH, OW, C*M) float32|float64, IN. x, kernel and the geometry as in
    depthwise_conv2d_forward. Returns (dx, dkernel, dbias): dx (N, H, W, C) or None when
    compute_dx is false; dkernel (KH, KW, C, M); dbias (C*M,) or None when use_bias is false.
    All new arrays of x's dtype.
    """
    _check_args(x, kernel)
    _check_float("dy", dy, 4)
    KH, KW, C, M = kernel.shape
    N, H, W, _ = x.shape
    OH, OW = _geometry(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    if dy.shape != (N, OH, OW, C * M) or dy.dtype != x.dtype:
        raise ValueError(f"dy must have shape {(N, OH, OW, C * M)} and dtype {x.dtype}; "
                         f"received {dy.shape} {dy.dtype}")
    dy5 = dy.reshape(N, OH, OW, C, M)
    xp = _padded(x, pt, pb, pl, pr)
    dkernel = np.empty(kernel.shape, dtype=x.dtype)
    dxp = np.zeros(xp.shape, dtype=x.dtype) if compute_dx else None
    for kh in range(KH):
        for kw in range(KW):
            dkernel[kh, kw] = np.einsum("nhwc,nhwcm->cm", _tap(xp, kh, kw, OH, OW, sh, sw, dh, dw), dy5)
            if compute_dx:
                _tap(dxp, kh, kw, OH, OW, sh, sw, dh, dw)[...] += np.einsum("nhwcm,cm->nhwc", dy5, kernel[kh, kw])
    # dbias summed in float64 and rounded once, as the compiled kernel's
    dbias = (np.einsum("nhwj->j", dy, dtype=np.float64).astype(dy.dtype) if use_bias else None)
    dx = None
    if compute_dx:
        dx = np.ascontiguousarray(dxp[:, pt:pt + H, pl:pl + W, :]) if (pt or pb or pl or pr) else dxp
    return dx, dkernel, dbias
