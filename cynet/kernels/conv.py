"""2-D convolution (Keras Conv2D semantics and weight layout): forward, backward, output shape.

The arguments are validated and normalised here (Keras padding modes, int-or-pair strides and
dilation, channels_first by transposing to channels_last, dtype conversion to one common float
type), then the work goes to `cynet._kernels.conv` (im2col / col2im in Cython, GEMMs in BLAS) or
its NumPy twin `cynet._kernels.conv_numpy`, according to the backend.
"""
import numpy as np

from .. import _validation
from ._backend import impl

__all__ = ["conv2d_forward", "conv2d_backward", "conv2d_output_shape"]


def _spatial(input_shape, data_format):
    if data_format == "channels_last":
        return input_shape[1], input_shape[2], input_shape[3]
    return input_shape[2], input_shape[3], input_shape[1]


def _geometry(x_shape, kernel_shape, strides, padding, dilation_rate, data_format):
    """Normalise the layout arguments for a 4-D x and kernel.

    Returns (data_format, (pt, pb, pl, pr), (sh, sw), (dh, dw), (OH, OW)).
    """
    data_format = _validation.data_format(data_format)
    sh, sw = _validation.int_pair("strides", strides)
    dh, dw = _validation.int_pair("dilation_rate", dilation_rate)
    H, W, C = _spatial(x_shape, data_format)
    KH, KW = kernel_shape[0], kernel_shape[1]
    ekh, ekw = (KH - 1) * dh + 1, (KW - 1) * dw + 1
    (pt, pb), (pl, pr) = _validation.padding_2d(padding, (H, W), (ekh, ekw), (sh, sw))
    args = "x, data_format, kernel, dilation_rate and padding"
    OH = _validation.output_size("kernel height", H, ekh, sh, pt, pb, args)
    OW = _validation.output_size("kernel width", W, ekw, sw, pl, pr, args)
    return data_format, (pt, pb, pl, pr), (sh, sw), (dh, dw), (OH, OW)


def _check_sizes(x, pads, out_hw, F):
    """Refuse, before anything is allocated, geometry whose zero-padded input (the NumPy twin
    pads x) or output would not fit in memory."""
    N, H, W, C = x.shape
    pt, pb, pl, pr = pads
    if pt or pb or pl or pr:
        _validation.check_size("padding", (N, H + pt + pb, W + pl + pr, C), x.itemsize,
                               "the zero-padded x (channels_last)")
    _validation.check_size("x, kernel, strides, padding and dilation_rate", (N,) + tuple(out_hw) + (F,), x.itemsize,
                           "the output (N, OH, OW, F) they give")


def _check_x_kernel(x, kernel, data_format):
    _validation.check_ndim("x", x, 4)
    _validation.check_ndim("kernel", kernel, 4)
    _validation.check_nonempty("x", x)
    _validation.check_nonempty("kernel", kernel)
    C = x.shape[3] if _validation.data_format(data_format) == "channels_last" else x.shape[1]
    if kernel.shape[2] != C:
        raise ValueError(
            f"kernel must have shape (KH, KW, {C}, F): its third axis must equal the channels of x "
            f"(x has shape {x.shape}, data_format={data_format!r}); received kernel shape {kernel.shape}"
        )


def _to_last(a, data_format):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)) if data_format == "channels_first" else a


def _to_first(a, data_format):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2)) if data_format == "channels_first" else a


def conv2d_forward(x, kernel, bias=None, strides=(1, 1), padding="valid", dilation_rate=(1, 1),
                   data_format="channels_last"):
    """2-D convolution (cross-correlation, as Keras Conv2D computes it) plus bias.

    x: (N, H, W, C) for channels_last or (N, C, H, W) for channels_first, IN; any real dtype
       (float64 stays float64, everything else becomes float32).
    kernel: (KH, KW, C, F), IN (Keras layout). bias: (F,) or None, IN.
    strides, dilation_rate: int or pair of positive ints.
    padding: "valid", "same" (Keras/TensorFlow: output ceil(H / stride), the odd padding cell
       goes bottom/right, the window is the dilated (KH - 1) * dh + 1), an int, a pair (ph, pw)
       or ((top, bottom), (left, right)).
    Returns y: (N, OH, OW, F) (channels_first: (N, F, OH, OW)), a new C-contiguous array of
    the common float dtype.
    """
    x, kernel, bias = _validation.as_floats(optional=("bias",), x=x, kernel=kernel, bias=bias)
    _check_x_kernel(x, kernel, data_format)
    data_format, (pt, pb, pl, pr), (sh, sw), (dh, dw), out_hw = _geometry(
        x.shape, kernel.shape, strides, padding, dilation_rate, data_format)
    if bias is not None and bias.shape != (kernel.shape[3],):
        raise ValueError(f"bias must have shape {(kernel.shape[3],)} (F, the last axis of kernel); "
                         f"received shape {bias.shape}")
    x = _to_last(x, data_format)
    _check_sizes(x, (pt, pb, pl, pr), out_hw, kernel.shape[3])
    y = impl("conv").conv2d_forward(x, kernel, bias, pt, pb, pl, pr, sh, sw, dh, dw)
    return _to_first(y, data_format)


def conv2d_backward(dy, x, kernel, strides=(1, 1), padding="valid", dilation_rate=(1, 1),
                    data_format="channels_last", use_bias=True, compute_dx=True):
    """Gradients of conv2d_forward with respect to x, kernel and bias.

    dy: the upstream gradient, shaped like conv2d_forward's output, IN. x, kernel and the layout
    arguments as given to conv2d_forward, IN.
    Returns (dx, dkernel, dbias): dx shaped like x, or None when compute_dx is False (the first
    layer of a network needs no input gradient, and its col2im is skipped); dkernel (KH, KW, C, F);
    dbias (F,), or None when use_bias is False. New arrays of the common float dtype of dy, x
    and kernel; nothing is modified in place.
    """
    use_bias = _validation.flag("use_bias", use_bias)
    compute_dx = _validation.flag("compute_dx", compute_dx)
    dy, x, kernel = _validation.as_floats(dy=dy, x=x, kernel=kernel)
    _check_x_kernel(x, kernel, data_format)
    _validation.check_ndim("dy", dy, 4)
    data_format, (pt, pb, pl, pr), (sh, sw), (dh, dw), (OH, OW) = _geometry(
        x.shape, kernel.shape, strides, padding, dilation_rate, data_format)
    N, F = x.shape[0], kernel.shape[3]
    expected = (N, OH, OW, F) if data_format == "channels_last" else (N, F, OH, OW)
    if dy.shape != expected:
        raise ValueError(f"dy must have shape {expected}, the output shape of conv2d_forward for x of shape {x.shape}, "
                         f"kernel of shape {kernel.shape}, data_format={data_format!r} and these strides, padding "
                         f"and dilation_rate; received shape {dy.shape}")
    x = _to_last(x, data_format)
    dy = _to_last(dy, data_format)
    _check_sizes(x, (pt, pb, pl, pr), (OH, OW), F)
    dx, dkernel, dbias = impl("conv").conv2d_backward(
        dy, x, kernel, pt, pb, pl, pr, sh, sw, dh, dw, use_bias, compute_dx)
    if dx is not None:
        dx = _to_first(dx, data_format)
    return dx, dkernel, dbias


def conv2d_output_shape(input_shape, kernel_size, strides=(1, 1), padding="valid",
                        dilation_rate=(1, 1), data_format="channels_last", filters=None):
    """Output shape of conv2d_forward for a 4-D input shape, without computing anything.

    input_shape: (N, H, W, C) or (N, C, H, W) per data_format; any entry may be None
    (unknown), which gives None in the matching output entries. kernel_size: int or pair.
    filters: the output channels F, or None to keep the input's channel count (for windows
    that act per channel). Returns a tuple (N, OH, OW, F) or (N, F, OH, OW).
    Raises ValueError when the (dilated) window does not fit the padded input.
    """
    try:
        input_shape = tuple(input_shape)
    except TypeError:
        raise ValueError(f"input_shape must be a 4-tuple; received input_shape={input_shape!r}") from None
    if len(input_shape) != 4:
        raise ValueError(f"input_shape must have 4 entries (N, H, W, C) or (N, C, H, W); "
                         f"received input_shape={input_shape!r}")
    for v in input_shape:
        if v is not None and (not _validation.is_int(v) or v < 0):
            raise ValueError(f"input_shape entries must be non-negative integers or None; "
                             f"received input_shape={input_shape!r}")
    data_format = _validation.data_format(data_format)
    KH, KW = _validation.int_pair("kernel_size", kernel_size)
    sh, sw = _validation.int_pair("strides", strides)
    dh, dw = _validation.int_pair("dilation_rate", dilation_rate)
    if filters is not None:
        filters = _validation.positive_int("filters", filters)
    N = input_shape[0]
    H, W, C = _spatial(input_shape, data_format)
    ekh, ekw = (KH - 1) * dh + 1, (KW - 1) * dw + 1
    out = []
    for name, size, window, stride, axis in (("kernel height", H, ekh, sh, 0), ("kernel width", W, ekw, sw, 1)):
        if size is None:
            # validate the padding argument even when the size is unknown
            _validation.padding_2d(padding, (1, 1), (1, 1), (sh, sw))
            out.append(None)
            continue
        pads = _validation.padding_2d(padding, (size, size), (window, window), (stride, stride))[axis]
        out.append(_validation.output_size(name, size, window, stride, pads[0], pads[1],
                                           "input_shape, data_format, kernel_size, dilation_rate and padding"))
    F = C if filters is None else filters
    OH, OW = out
    return (N, OH, OW, F) if data_format == "channels_last" else (N, F, OH, OW)
