"""Depthwise 2-D convolution (Keras DepthwiseConv2D semantics and weight layout): forward,
backward, output shape.

Each input channel c is filtered by its own depth_multiplier M windows: kernel (KH, KW, C, M),
output channel c*M + m. The arguments are validated and normalised here exactly as for
cynet.kernels.conv (Keras padding modes, int-or-pair strides and dilation, channels_first by
transposing to channels_last at the boundary, one common float dtype), then the work goes to
`cynet._kernels.depthwise` (typed loops over contiguous channels) or its NumPy twin.
"""
from collections.abc import Sequence
from typing import Any

from .. import _validation
from ._backend import impl
from .conv import _check_sizes, _geometry, _to_first, _to_last, conv2d_output_shape
from .._typing import ArrayLike

__all__ = ["depthwise_conv2d_forward", "depthwise_conv2d_backward", "depthwise_conv2d_output_shape"]


def _check_x_kernel(x, kernel, data_format):
    _validation.check_ndim("x", x, 4)
    _validation.check_ndim("kernel", kernel, 4)
    _validation.check_nonempty("x", x)
    _validation.check_nonempty("kernel", kernel)
    C = x.shape[3] if _validation.data_format(data_format) == "channels_last" else x.shape[1]
    if kernel.shape[2] != C:
        raise ValueError(
            f"kernel must have shape (KH, KW, {C}, depth_multiplier): its third axis must equal the channels of x "
            f"(x has shape {x.shape}, data_format={data_format!r}); received kernel shape {kernel.shape}"
        )


def depthwise_conv2d_forward(x: ArrayLike, kernel: ArrayLike, bias: ArrayLike | None = None, strides: Any = (1, 1),
                             padding: Any = "valid", dilation_rate: Any = (1, 1),
                             data_format: str = "channels_last") -> Any:
    """Depthwise 2-D convolution (cross-correlation, as Keras DepthwiseConv2D computes it) plus bias.

    Args:
        x: (N, H, W, C) for channels_last or (N, C, H, W) for channels_first, IN; any real dtype
            (float64 stays float64, everything else becomes float32).
        kernel: (KH, KW, C, M), IN (Keras layout; M is the depth multiplier).
        bias: (C*M,) or None, IN.
        strides: Int or pair of positive ints.
        padding: "valid", "same" (Keras rules, as conv2d_forward), an int, a pair (ph, pw) or
            ((top, bottom), (left, right)).
        dilation_rate: Int or pair of positive ints.
        data_format: "channels_last" or "channels_first" (the layout of x and y).

    Returns:
        y: (N, OH, OW, C*M) (channels_first: (N, C*M, OH, OW)), a new C-contiguous array of the
        common float dtype; output channel c*M + m is input channel c's m-th filter.
    """
    x, kernel, bias = _validation.as_floats(optional=("bias",), x=x, kernel=kernel, bias=bias)
    _check_x_kernel(x, kernel, data_format)
    data_format, (pt, pb, pl, pr), (sh, sw), (dh, dw), out_hw = _geometry(
        x.shape, kernel.shape, strides, padding, dilation_rate, data_format)
    CM = kernel.shape[2] * kernel.shape[3]
    if bias is not None and bias.shape != (CM,):
        raise ValueError(f"bias must have shape {(CM,)} (channels times depth_multiplier, kernel.shape[2] * "
                         f"kernel.shape[3]); received shape {bias.shape}")
    x = _to_last(x, data_format)
    _check_sizes(x, (pt, pb, pl, pr), out_hw, CM)
    y = impl("depthwise").depthwise_conv2d_forward(x, kernel, bias, pt, pb, pl, pr, sh, sw, dh, dw)
    return _to_first(y, data_format)


def depthwise_conv2d_backward(dy: ArrayLike, x: ArrayLike, kernel: ArrayLike, strides: Any = (1, 1),
                              padding: Any = "valid", dilation_rate: Any = (1, 1), data_format: str = "channels_last",
                              use_bias: bool = True, compute_dx: bool = True) -> Any:
    """Gradients of depthwise_conv2d_forward with respect to x, kernel and bias.

    dkernel and dbias are sums over the batch, added per thread and then in thread order: the same
    from run to run for a thread count.

    Args:
        dy: The upstream gradient, shaped like depthwise_conv2d_forward's output, IN.
        x: The forward input, IN.
        kernel: The forward kernel, IN.
        strides: Int or pair of positive ints.
        padding: As given to the forward.
        dilation_rate: Int or pair of positive ints.
        data_format: "channels_last" or "channels_first" (the layout of x and y).
        use_bias: Whether the forward added a bias (dbias is None otherwise).
        compute_dx: Whether to compute dx (the first layer of a network needs no input gradient, and
            its col2im is skipped); dx is None otherwise.

    Returns:
        (dx, dkernel, dbias): dx shaped like x, or None when compute_dx is False; dkernel
        (KH, KW, C, M); dbias (C*M,), or None when use_bias is False. New arrays of the common float
        dtype of dy, x and kernel; nothing is modified in place.
    """
    use_bias = _validation.flag("use_bias", use_bias)
    compute_dx = _validation.flag("compute_dx", compute_dx)
    dy, x, kernel = _validation.as_floats(dy=dy, x=x, kernel=kernel)
    _check_x_kernel(x, kernel, data_format)
    _validation.check_ndim("dy", dy, 4)
    data_format, (pt, pb, pl, pr), (sh, sw), (dh, dw), (OH, OW) = _geometry(
        x.shape, kernel.shape, strides, padding, dilation_rate, data_format)
    N, CM = x.shape[0], kernel.shape[2] * kernel.shape[3]
    expected = (N, OH, OW, CM) if data_format == "channels_last" else (N, CM, OH, OW)
    if dy.shape != expected:
        raise ValueError(f"dy must have shape {expected}, the output shape of depthwise_conv2d_forward for x of shape "
                         f"{x.shape}, kernel of shape {kernel.shape}, data_format={data_format!r} and these strides, "
                         f"padding and dilation_rate; received shape {dy.shape}")
    x = _to_last(x, data_format)
    dy = _to_last(dy, data_format)
    _check_sizes(x, (pt, pb, pl, pr), (OH, OW), CM)
    dx, dkernel, dbias = impl("depthwise").depthwise_conv2d_backward(
        dy, x, kernel, pt, pb, pl, pr, sh, sw, dh, dw, use_bias, compute_dx)
    if dx is not None:
        dx = _to_first(dx, data_format)
    return dx, dkernel, dbias


def depthwise_conv2d_output_shape(input_shape: Sequence[int | None], kernel_size: Any, strides: Any = (1, 1),
                                  padding: Any = "valid", dilation_rate: Any = (1, 1),
                                  data_format: str = "channels_last",
                                  depth_multiplier: int = 1) -> tuple[int | None, ...]:
    """Output shape of depthwise_conv2d_forward for a 4-D input shape, without computing anything.

    Args:
        input_shape: (N, H, W, C) or (N, C, H, W) per data_format; any entry may be None (unknown),
            which gives None in the matching output entries.
        kernel_size: Int or pair.
        strides: Int or pair of positive ints.
        padding: As for depthwise_conv2d_forward.
        dilation_rate: Int or pair of positive ints.
        data_format: "channels_last" or "channels_first" (the layout of x and y).
        depth_multiplier: Positive int M.

    Returns:
        (N, OH, OW, C*M) or (N, C*M, OH, OW).

    Raises:
        ValueError: when the (dilated) window does not fit the padded input.
    """
    M = _validation.positive_int("depth_multiplier", depth_multiplier)
    shape = conv2d_output_shape(input_shape, kernel_size, strides, padding, dilation_rate, data_format)
    axis = 3 if _validation.data_format(data_format) == "channels_last" else 1
    C = shape[axis]
    shape = list(shape)
    shape[axis] = None if C is None else C * M
    return tuple(shape)
