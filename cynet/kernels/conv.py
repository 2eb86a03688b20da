"""2-D convolution (Keras Conv2D semantics and weight layout): forward, backward, output shape.

The arguments are validated and normalised here (Keras padding modes, int-or-pair strides and
dilation, channels_first by transposing to channels_last, dtype conversion to one common float
type), then the work goes to `cynet._kernels.conv` (im2col / col2im in Cython, GEMMs in BLAS) or
its NumPy twin `cynet._kernels.conv_numpy`, according to the backend.
"""
import contextlib
import contextvars
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _validation
from .._kernels import conv_numpy
from ._backend import impl
from .._typing import ArrayLike

__all__ = ["conv2d_forward", "conv2d_backward", "conv2d_output_shape", "conv2d_transpose_forward",
           "conv2d_transpose_backward", "conv2d_transpose_output_shape"]


_bf16 = contextvars.ContextVar("cynet_conv_bf16", default=False)


@contextlib.contextmanager
def bf16_products():
    """Run the block's convolutions (this thread only) with their matrix products in bfloat16
    (cynet/_kernels/conv_bf16.py: inputs rounded to bfloat16, float32 accumulation), as the Conv
    layers do under the mixed_bfloat16 policy; their results are float32 arrays."""
    token = _bf16.set(True)
    try:
        yield
    finally:
        _bf16.reset(token)


# The Conv layers' fused ReLU under mixed_bfloat16 (see _bf16_relu_forward): True (or "bits":
# the relu bits too) in the forward, the ReLU's output or its relu bits in the backward; None
# otherwise.
_relu = contextvars.ContextVar("cynet_conv_relu", default=None)


def _fused(flag, fn, args, kwargs):
    token = _relu.set(flag)
    try:
        with bf16_products():
            return fn(*args, **kwargs)
    finally:
        _relu.reset(token)


def _bf16_relu_forward(x, kernel, bias=None, bits=False, **options):
    """relu(conv2d_forward(x, kernel, bias, **options)) (groups 1; float32) with the product in
    bfloat16 and the ReLU in the kernel's epilogue, on each block of the output while it is in
    cache (no pass of its own over the output): the Conv layers' path under mixed_bfloat16 with
    activation="relu". With bits, (y, relu bits): 1 bit per output where y > 0, in the
    channels_last order of the kernel's output (all _bf16_relu_backward needs; 32x smaller than y)."""
    return _fused("bits" if bits else True, conv2d_forward, (x, kernel, bias), options)


def _bf16_relu_backward(dy, x, kernel, y, **options):
    """conv2d_backward(dy where y > 0, x, kernel, **options) for y = _bf16_relu_forward(...) (or
    its relu bits) and dy the gradient of y: the ReLU's gradient taken block by block inside the
    kernel."""
    return _fused(np.asarray(y), conv2d_backward, (dy, x, kernel), options)


def _relu_maxpool_native(kernel_shape):
    """Whether _relu_maxpool_forward / _backward run in one pass here for a kernel of this shape
    (KH, KW, C, F): the compiled backend, AVX-512F, a patch of at most a dozen values (an image
    model's first convolution)."""
    native = getattr(impl("conv"), "relu_maxpool_native", None)
    return native is not None and bool(native(kernel_shape[0] * kernel_shape[1] * kernel_shape[2]))


def _relu_maxpool_forward(x, kernel, bias=None, strides=(1, 1), dilation_rate=(1, 1), bf16=False):
    """(p, record): max_pool2d_forward(relu(conv2d_forward(x, kernel, bias, strides, "valid",
    dilation_rate)), 2x2, stride 2) (float32, channels_last, groups 1; the product in bfloat16
    under bf16): a model's Conv2D -> MaxPooling2D pair (Layer._fuse_next), in one pass where
    _relu_maxpool_native (the convolution's output, 4x the pooled one, is never written), else on
    the NumPy twin's three steps. record: what _relu_maxpool_backward takes (1 bit per pooled
    output and window cell)."""
    (sh, sw), (dh, dw) = _validation.int_pair("strides", strides), _validation.int_pair("dilation_rate", dilation_rate)
    x, kernel, bias = [None if a is None else np.ascontiguousarray(a, dtype=np.float32) for a in (x, kernel, bias)]
    run = impl("conv") if _relu_maxpool_native(kernel.shape) else conv_numpy
    return run.conv2d_relu_maxpool_forward(x, kernel, bias, sh, sw, dh, dw, bool(bf16))


def _relu_maxpool_backward(dp, x, kernel, record, strides=(1, 1), dilation_rate=(1, 1), use_bias=True,
                           compute_dx=True, bf16=False):
    """(dx or None, dkernel, dbias or None) of _relu_maxpool_forward(x, kernel, ...) from its
    output's gradient dp and its record: in one pass where _relu_maxpool_native and no input
    gradient is wanted (the first convolution), else conv2d_backward of the expanded gradient."""
    (sh, sw), (dh, dw) = _validation.int_pair("strides", strides), _validation.int_pair("dilation_rate", dilation_rate)
    dp, x, kernel = [np.ascontiguousarray(a, dtype=np.float32) for a in (dp, x, kernel)]
    if not compute_dx and _relu_maxpool_native(kernel.shape):
        return (None,) + tuple(impl("conv").conv2d_relu_maxpool_backward(dp, x, kernel, record, sh, sw, dh, dw,
                                                                           bool(use_bias), bool(bf16)))
    OH, OW = _geometry(x.shape, kernel.shape, (sh, sw), "valid", (dh, dw), "channels_last")[4]
    dy = conv_numpy.maxpool_expand(dp, record, OH, OW)
    with bf16_products() if bf16 else contextlib.nullcontext():
        return conv2d_backward(dy, x, kernel, (sh, sw), "valid", (dh, dw), use_bias=use_bias, compute_dx=compute_dx)


def _impl():
    if _bf16.get():
        from .._kernels import conv_bf16
        return conv_bf16
    return impl("conv")


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


def _check_x_kernel(x, kernel, data_format, groups=1):
    """The number of groups, after checking x's and the kernel's ranks and channels."""
    _validation.check_ndim("x", x, 4)
    _validation.check_ndim("kernel", kernel, 4)
    _validation.check_nonempty("x", x)
    _validation.check_nonempty("kernel", kernel)
    groups = _validation.positive_int("groups", groups)
    C = x.shape[3] if _validation.data_format(data_format) == "channels_last" else x.shape[1]
    if kernel.shape[2] * groups != C:
        per = f"{C} // groups = {C // groups}" if groups > 1 and C % groups == 0 else str(C)
        raise ValueError(
            f"kernel must have shape (KH, KW, {per}, F): its third axis times groups={groups} must equal the "
            f"channels of x (x has shape {x.shape}, data_format={data_format!r}); received kernel shape "
            f"{kernel.shape}" + (f" (groups must divide the channels {C})" if C % groups else "")
        )
    if kernel.shape[3] % groups:
        raise ValueError(f"the filters (kernel.shape[3] = {kernel.shape[3]}) must be divisible by "
                         f"groups={groups}; received kernel shape {kernel.shape}")
    return groups


def _group_slices(groups, size):
    """The `groups` consecutive equal slices of an axis of `size` entries."""
    step = size // groups
    return [slice(g * step, (g + 1) * step) for g in range(groups)]


def _part(a, sl):
    """a[..., sl] as a C-contiguous array (a view of all of a when sl covers the last axis)."""
    return np.ascontiguousarray(a[..., sl])


def _to_last(a, data_format):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)) if data_format == "channels_first" else a


def _to_first(a, data_format):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2)) if data_format == "channels_first" else a


def conv2d_forward(x: ArrayLike, kernel: ArrayLike, bias: ArrayLike | None = None, strides: Any = (1, 1),
                   padding: Any = "valid", dilation_rate: Any = (1, 1), data_format: str = "channels_last",
                   groups: int = 1) -> Any:
    """2-D convolution (cross-correlation, as Keras Conv2D computes it) plus bias.

    Args:
        x: (N, H, W, C) for channels_last or (N, C, H, W) for channels_first, IN; any real dtype
            (float64 stays float64, everything else becomes float32).
        kernel: (KH, KW, C / groups, F), IN (Keras layout).
        bias: (F,) or None, IN.
        strides: Int or pair of positive ints.
        padding: "valid", "same" (Keras/TensorFlow: output ceil(H / stride), the odd padding cell
            goes bottom/right, the window is the dilated (KH - 1) * dh + 1), an int, a pair (ph, pw)
            or ((top, bottom), (left, right)).
        dilation_rate: Int or pair of positive ints.
        data_format: "channels_last" or "channels_first" (the layout of x and y).
        groups: Positive int dividing C and F: group g convolves channels [g C/G, (g+1) C/G) of x
            with filters [g F/G, (g+1) F/G) of the kernel (one kernel call per group).

    Returns:
        y: (N, OH, OW, F) (channels_first: (N, F, OH, OW)), a new C-contiguous array of the common
        float dtype.
    """
    x, kernel, bias = _validation.as_floats(optional=("bias",), x=x, kernel=kernel, bias=bias)
    groups = _check_x_kernel(x, kernel, data_format, groups)
    data_format, (pt, pb, pl, pr), (sh, sw), (dh, dw), out_hw = _geometry(
        x.shape, kernel.shape, strides, padding, dilation_rate, data_format)
    if bias is not None and bias.shape != (kernel.shape[3],):
        raise ValueError(f"bias must have shape {(kernel.shape[3],)} (F, the last axis of kernel); "
                         f"received shape {bias.shape}")
    x = _to_last(x, data_format)
    F = kernel.shape[3]
    _check_sizes(x, (pt, pb, pl, pr), out_hw, F)
    geometry = (pt, pb, pl, pr, sh, sw, dh, dw)
    relu = _relu.get()
    if relu == "bits":   # (_bf16_relu_forward: groups 1, bfloat16 products)
        y, bits = _impl().conv2d_forward(x, kernel, bias, *geometry, relu=True, bits=True)
        return _to_first(y, data_format), bits
    if relu is True:
        y = _impl().conv2d_forward(x, kernel, bias, *geometry, relu=True)
    elif groups == 1:
        y = _impl().conv2d_forward(x, kernel, bias, *geometry)
    else:
        y = np.empty((x.shape[0],) + tuple(out_hw) + (F,), dtype=x.dtype)
        for cs, fs in zip(_group_slices(groups, x.shape[3]), _group_slices(groups, F)):
            y[..., fs] = _impl().conv2d_forward(_part(x, cs), _part(kernel, fs),
                                                     None if bias is None else _part(bias, fs), *geometry)
    return _to_first(y, data_format)


def conv2d_backward(dy: ArrayLike, x: ArrayLike, kernel: ArrayLike, strides: Any = (1, 1), padding: Any = "valid",
                    dilation_rate: Any = (1, 1), data_format: str = "channels_last", use_bias: bool = True,
                    compute_dx: bool = True, groups: int = 1) -> Any:
    """Gradients of conv2d_forward with respect to x, kernel and bias.

    Args:
        dy: The upstream gradient, shaped like conv2d_forward's output, IN.
        x: The forward input, IN.
        kernel: The forward kernel, IN.
        strides: Int or pair of positive ints.
        padding: As given to conv2d_forward.
        dilation_rate: Int or pair of positive ints.
        data_format: "channels_last" or "channels_first" (the layout of x and y).
        use_bias: Whether the forward added a bias (dbias is None otherwise).
        compute_dx: Whether to compute dx (the first layer of a network needs no input gradient, and
            its col2im is skipped); dx is None otherwise.
        groups: As given to conv2d_forward.

    Returns:
        (dx, dkernel, dbias): dx shaped like x, or None when compute_dx is False; dkernel shaped like
        kernel; dbias (F,), or None when use_bias is False. New arrays of the common float dtype of
        dy, x and kernel; nothing is modified in place.
    """
    use_bias = _validation.flag("use_bias", use_bias)
    compute_dx = _validation.flag("compute_dx", compute_dx)
    dy, x, kernel = _validation.as_floats(dy=dy, x=x, kernel=kernel)
    groups = _check_x_kernel(x, kernel, data_format, groups)
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
    geometry = (pt, pb, pl, pr, sh, sw, dh, dw)
    relu_y = _relu.get()
    if relu_y is not None:   # (_bf16_relu_backward)
        if relu_y.dtype != np.uint8:   # (relu bits are in the kernel's channels_last order)
            relu_y = _to_last(relu_y, data_format)
        dx, dkernel, dbias = _impl().conv2d_backward(dy, x, kernel, *geometry, use_bias, compute_dx, y=relu_y)
    elif groups == 1:
        dx, dkernel, dbias = _impl().conv2d_backward(dy, x, kernel, *geometry, use_bias, compute_dx)
    else:
        dx = np.empty_like(x) if compute_dx else None
        dkernel = np.empty_like(kernel)
        dbias = np.empty(F, dtype=x.dtype) if use_bias else None
        for cs, fs in zip(_group_slices(groups, x.shape[3]), _group_slices(groups, F)):
            dxg, dkernel[..., fs], dbg = _impl().conv2d_backward(
                _part(dy, fs), _part(x, cs), _part(kernel, fs), *geometry, use_bias, compute_dx)
            if compute_dx:
                dx[..., cs] = dxg
            if use_bias:
                dbias[fs] = dbg
    if dx is not None:
        dx = _to_first(dx, data_format)
    return dx, dkernel, dbias


def conv2d_output_shape(input_shape: Sequence[int | None], kernel_size: Any, strides: Any = (1, 1),
                        padding: Any = "valid", dilation_rate: Any = (1, 1), data_format: str = "channels_last",
                        filters: int | None = None) -> tuple[int | None, ...]:
    """Output shape of conv2d_forward for a 4-D input shape, without computing anything.

    Args:
        input_shape: (N, H, W, C) or (N, C, H, W) per data_format; any entry may be None (unknown),
            which gives None in the matching output entries.
        kernel_size: Int or pair.
        strides: Int or pair of positive ints.
        padding: As for conv2d_forward.
        dilation_rate: Int or pair of positive ints.
        data_format: "channels_last" or "channels_first" (the layout of x and y).
        filters: The output channels F, or None to keep the input's channel count (for windows that
            act per channel).

    Returns:
        A tuple (N, OH, OW, F) or (N, F, OH, OW).

    Raises:
        ValueError: when the (dilated) window does not fit the padded input.
    """
    input_shape = _checked_shape(input_shape)
    data_format = _validation.data_format(data_format)
    KH, KW = _validation.int_pair("kernel_size", kernel_size)
    sh, sw = _validation.int_pair("strides", strides)
    dh, dw = _validation.int_pair("dilation_rate", dilation_rate)
    if filters is not None:
        filters = _validation.positive_int("filters", filters)
    N = input_shape[0]
    H, W, C = _spatial(input_shape, data_format)
    ekh, ekw = (KH - 1) * dh + 1, (KW - 1) * dw + 1
    out: list[Any] = []
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


# ----------------------------------------------------------------------------------------------
# transposed convolution (Keras Conv2DTranspose): the adjoint in x of a convolution

def _output_padding(value):
    """None, or a pair of non-negative ints."""
    if value is None:
        return None
    if _validation.is_int(value):
        value = (value, value)
    try:
        parts = tuple(value)
    except TypeError:
        raise ValueError(f"output_padding must be None, an int or a pair of non-negative ints; "
                         f"received output_padding={value!r}") from None
    if len(parts) != 2:
        raise ValueError(f"output_padding must have one entry per spatial axis (2); received output_padding={value!r}")
    return tuple(_validation.nonnegative_int("output_padding", p) for p in parts)


def _transpose_mode(padding):
    if isinstance(padding, str) and padding.lower() in ("valid", "same"):
        return padding.lower()
    raise ValueError(f"padding must be 'valid' or 'same' for a transposed convolution; received padding={padding!r}")


def _transpose_axis(size, k, s, d, mode, op):
    """(output size, pad_before, pad_after) of one spatial axis.

    The output size is Keras's (TensorFlow's) rule: "valid" gives (size - 1) * s + ek + op with
    op = max(ek, s) - ek by default; "same" gives size * s by default, else
    (size - 1) * s + ek % 2 + op (ek = (k - 1) * d + 1, the dilated window). The pads are those
    of the convolution that maps the output back onto `size` positions, the one whose input
    gradient this is: pad_before = ek - 1 - (the left padding of the dilated input in the
    direct formulation), pad_after just large enough for `size` windows.
    """
    ek = (k - 1) * d + 1
    if mode == "valid":
        out = (size - 1) * s + ek + (max(ek, s) - ek if op is None else op)
        before = 0
    else:
        if op is None:
            out, pad_len = size * s, s + ek - 2
        else:
            out, pad_len = (size - 1) * s + ek % 2 + op, ek + ek % 2 - 2 + op
        before = ek - 1 - min(pad_len // 2 + pad_len % 2, ek - 1)
    after = max(0, (size - 1) * s + ek - out - before)
    return out, before, after


def _transpose_geometry(hw, kernel_hw, strides, padding, output_padding, dilation_rate, what):
    """((OH, OW), (pt, pb, pl, pr), (sh, sw), (dh, dw)) for an input of spatial size hw (entries
    may be None: unknown, giving None). `what` names the arguments for messages."""
    mode = _transpose_mode(padding)
    sh, sw = _validation.int_pair("strides", strides)
    dh, dw = _validation.int_pair("dilation_rate", dilation_rate)
    op = _output_padding(output_padding)
    if op is not None:
        for o, st in zip(op, (sh, sw)):
            if o >= st:
                raise ValueError(f"output_padding must be less than strides on each axis; received "
                                 f"output_padding={output_padding!r} and strides={strides!r}")
    out, pads = [], []
    for axis, (size, k, st, d) in enumerate(zip(hw, kernel_hw, (sh, sw), (dh, dw))):
        if size is None:
            out.append(None)
            pads.extend((0, 0))
            continue
        o, before, after = _transpose_axis(size, k, st, d, mode, None if op is None else op[axis])
        if o < 1:
            raise ValueError(f"the output would be empty along spatial axis {axis} (size {o}); check {what}")
        out.append(o)
        pads.extend((before, after))
    return tuple(out), tuple(pads), (sh, sw), (dh, dw)


def _check_transpose_x_kernel(x, kernel, data_format):
    _validation.check_ndim("x", x, 4)
    _validation.check_ndim("kernel", kernel, 4)
    _validation.check_nonempty("x", x)
    _validation.check_nonempty("kernel", kernel)
    C = x.shape[3] if _validation.data_format(data_format) == "channels_last" else x.shape[1]
    if kernel.shape[3] != C:
        raise ValueError(
            f"kernel must have shape (KH, KW, F, {C}): its last axis must equal the channels of x "
            f"(x has shape {x.shape}, data_format={data_format!r}); received kernel shape {kernel.shape}")


def _transpose_setup(x, kernel, strides, padding, output_padding, dilation_rate, data_format):
    """(data_format, (OH, OW), geometry tuple for the compiled kernel) after every check."""
    _check_transpose_x_kernel(x, kernel, data_format)
    data_format = _validation.data_format(data_format)
    H, W, C = _spatial(x.shape, data_format)
    out_hw, pads, (sh, sw), (dh, dw) = _transpose_geometry(
        (H, W), kernel.shape[:2], strides, padding, output_padding, dilation_rate,
        "x, kernel, strides, padding, output_padding and dilation_rate")
    N, F = x.shape[0], kernel.shape[2]
    _validation.check_size("x, kernel, strides, padding, output_padding and dilation_rate",
                           (N,) + out_hw + (F,), x.itemsize, "the output (N, OH, OW, F) they give")
    _validation.check_size("x and kernel", (N * H * W, kernel.shape[0] * kernel.shape[1] * F), x.itemsize,
                           "the patch-gradient matrix (N*H*W, KH*KW*F) of the NumPy backend")
    return data_format, out_hw, pads + (sh, sw, dh, dw)


def conv2d_transpose_forward(x: ArrayLike, kernel: ArrayLike, bias: ArrayLike | None = None, strides: Any = (1, 1),
                             padding: Any = "valid", output_padding: Any = None, dilation_rate: Any = (1, 1),
                             data_format: str = "channels_last") -> Any:
    """2-D transposed convolution plus bias, as Keras Conv2DTranspose computes it.

    Args:
        x: (N, H, W, C) for channels_last or (N, C, H, W) for channels_first, IN; any real dtype
            (float64 stays float64, everything else becomes float32).
        kernel: (KH, KW, F, C), IN (Keras's layout: filters before input channels).
        bias: (F,) or None.
        strides: Int or pair of positive ints.
        padding: "valid" or "same".
        output_padding: None (Keras's default sizes) or an int or pair, each less than its stride.
        dilation_rate: Int or pair of positive ints.
        data_format: "channels_last" or "channels_first" (the layout of x and y).

    Returns:
        y: (N, OH, OW, F) (channels_first: (N, F, OH, OW)), OH per Keras's rule (see
        conv2d_transpose_output_shape): the input gradient of the convolution of y with kernel,
        computed as col2im(x @ kernel^T), plus bias.
    """
    x, kernel, bias = _validation.as_floats(optional=("bias",), x=x, kernel=kernel, bias=bias)
    data_format, (OH, OW), geometry = _transpose_setup(x, kernel, strides, padding, output_padding,
                                                       dilation_rate, data_format)
    if bias is not None and bias.shape != (kernel.shape[2],):
        raise ValueError(f"bias must have shape {(kernel.shape[2],)} (F, the third axis of kernel); "
                         f"received shape {bias.shape}")
    y = _impl().conv2d_transpose_forward(_to_last(x, data_format), kernel, bias, OH, OW, *geometry)
    return _to_first(y, data_format)


def conv2d_transpose_backward(dy: ArrayLike, x: ArrayLike, kernel: ArrayLike, strides: Any = (1, 1),
                              padding: Any = "valid", output_padding: Any = None, dilation_rate: Any = (1, 1),
                              data_format: str = "channels_last", use_bias: bool = True,
                              compute_dx: bool = True) -> Any:
    """Gradients of conv2d_transpose_forward with respect to x, kernel and bias.

    Args:
        dy: Shaped like conv2d_transpose_forward's output, IN.
        x: The forward input, IN.
        kernel: The forward kernel, IN.
        strides: Int or pair of positive ints.
        padding: As given to the forward.
        output_padding: As given to the forward.
        dilation_rate: Int or pair of positive ints.
        data_format: "channels_last" or "channels_first" (the layout of x and y).
        use_bias: Whether the forward added a bias (dbias is None otherwise).
        compute_dx: Whether to compute dx (the first layer of a network needs no input gradient, and
            its col2im is skipped); dx is None otherwise.

    Returns:
        (dx, dkernel, dbias): dx shaped like x (the convolution of dy with kernel), or None when
        compute_dx is False; dkernel (KH, KW, F, C); dbias (F,), or None when use_bias is False. New
        arrays of the common float dtype; nothing is modified in place.
    """
    use_bias = _validation.flag("use_bias", use_bias)
    compute_dx = _validation.flag("compute_dx", compute_dx)
    dy, x, kernel = _validation.as_floats(dy=dy, x=x, kernel=kernel)
    _validation.check_ndim("dy", dy, 4)
    data_format, (OH, OW), geometry = _transpose_setup(x, kernel, strides, padding, output_padding,
                                                       dilation_rate, data_format)
    N, F = x.shape[0], kernel.shape[2]
    expected = (N, OH, OW, F) if data_format == "channels_last" else (N, F, OH, OW)
    if dy.shape != expected:
        raise ValueError(f"dy must have shape {expected}, the output shape of conv2d_transpose_forward for x of "
                         f"shape {x.shape}, kernel of shape {kernel.shape}, data_format={data_format!r} and these "
                         f"strides, padding, output_padding and dilation_rate; received shape {dy.shape}")
    dx, dkernel, dbias = _impl().conv2d_transpose_backward(
        _to_last(dy, data_format), _to_last(x, data_format), kernel, *geometry, use_bias, compute_dx)
    if dx is not None:
        dx = _to_first(dx, data_format)
    return dx, dkernel, dbias


def conv2d_transpose_output_shape(input_shape: Sequence[int | None], kernel_size: Any, filters: int | None,
                                  strides: Any = (1, 1), padding: Any = "valid", output_padding: Any = None,
                                  dilation_rate: Any = (1, 1),
                                  data_format: str = "channels_last") -> tuple[int | None, ...]:
    """Output shape of conv2d_transpose_forward for a 4-D input shape, without computing anything.

    Args:
        input_shape: (N, H, W, C) or (N, C, H, W) per data_format; None entries (unknown) give None.
        kernel_size: Int or pair.
        filters: The output channels F.
        strides: Int or pair of positive ints.
        padding: "valid" or "same".
        output_padding: None or an int or pair, as for the forward.
        dilation_rate: Int or pair of positive ints.
        data_format: "channels_last" or "channels_first" (the layout of x and y).

    Returns:
        (N, OH, OW, F) or (N, F, OH, OW).

    Raises:
        ValueError: when the output would be empty.
    """
    input_shape = _checked_shape(input_shape)
    data_format = _validation.data_format(data_format)
    KH, KW = _validation.int_pair("kernel_size", kernel_size)
    filters = _validation.positive_int("filters", filters)
    H, W, _ = _spatial(input_shape, data_format)
    (OH, OW), _, _, _ = _transpose_geometry(
        (H, W), (KH, KW), strides, padding, output_padding, dilation_rate,
        "input_shape, kernel_size, strides, padding, output_padding and dilation_rate")
    N = input_shape[0]
    return (N, OH, OW, filters) if data_format == "channels_last" else (N, filters, OH, OW)


def _checked_shape(input_shape):
    """input_shape as a tuple of 4 non-negative ints or None."""
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
    return input_shape
