"""2-D pooling and nearest-neighbour upsampling, forward and backward, with Keras semantics.

Images are (N, H, W, C) with data_format="channels_last" (the default) or (N, C, H, W) with
data_format="channels_first". Inputs may be any real numeric array-like (bool/int/float16 become
float32; float64 stays float64); outputs are C-contiguous arrays of that float dtype.

- `strides=None` means strides = pool_size. `padding` is "valid" or "same": Keras/TensorFlow
  "same" gives an output of ceil(H / stride) and puts the odd cell of padding at the bottom/right.
  Padded cells never win a max, and averages exclude them from the count.
- Max pools return an int32 argmax with y's shape: the window-local flat index di * PW + dj of
  the first maximum in row-major window order (ties go to the first; NaN counts as the maximum).
  Global max pools return the flat spatial index h * W + w instead. The backward functions route
  each gradient to its argmax (overlapping windows accumulate); argmax values outside
  [0, PH * PW) (or [0, H * W)) raise ValueError.
- Each function validates here, then dispatches to the compiled kernel (cynet/_kernels/pool.pyx)
  or its NumPy twin (pool_numpy.py) according to the backend; both work on channels_last data,
  so channels_first arrays are transposed on the way in and out.
"""
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _validation
from ._backend import impl
from .._typing import ArrayLike

__all__ = [
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
    "global_avg_pool2d_forward",
    "global_avg_pool2d_backward",
    "global_max_pool2d_forward",
    "global_max_pool2d_backward",
    "upsampling2d_forward",
    "upsampling2d_backward",
    "pool2d_output_shape",
]

_INT32_MAX = np.iinfo(np.int32).max


# ----------------------------------------------------------------------------- argument normalisation

def _padding_mode(padding):
    if isinstance(padding, str) and padding.lower() in ("valid", "same"):
        return padding.lower()
    raise ValueError(f"padding must be 'valid' or 'same'; received padding={padding!r}")


def _pool_args(pool_size, strides, padding):
    pool = _validation.int_pair("pool_size", pool_size)
    stride = pool if strides is None else _validation.int_pair("strides", strides)
    return pool, stride, _padding_mode(padding)


def _geometry(H, W, pool, stride, mode, source="x"):
    """((top, bottom, left, right), (OH, OW)) for an H x W input; ValueError if the window does
    not fit (`source` names the argument the input size comes from, for the message)."""
    (pt, pb), (pl, pr) = _validation.padding_2d(mode, (H, W), pool, stride)
    args = f"pool_size, {source} and data_format"
    oh = _validation.output_size("pool_size", H, pool[0], stride[0], pt, pb, args)
    ow = _validation.output_size("pool_size", W, pool[1], stride[1], pl, pr, args)
    return (pt, pb, pl, pr), (oh, ow)


def _image(name, a, dtype, fmt):
    """A 4-D image batch as a C-contiguous channels_last array of `dtype`."""
    if not isinstance(a, np.ndarray):
        a = _validation.as_float(name, a, dtype)
    _validation.check_ndim(name, a, 4)
    _validation.check_nonempty(name, a)
    if fmt == "channels_first":
        a = a.transpose(0, 2, 3, 1)
    return _validation.as_float(name, a, dtype)


def _matrix(name, a, dtype):
    a = _validation.as_float(name, a, dtype)
    _validation.check_ndim(name, a, 2)
    _validation.check_nonempty(name, a)
    return a


def _index(name, a, shape, limit, source, fmt=None, kernel_checks=False):
    """argmax as a C-contiguous int32 array of `shape` (given in the caller's layout).

    Any integer dtype is accepted; the values are range-checked here, before the cast (so that
    nothing wraps), with a message naming `source`, where the limit comes from (the kernels
    check int32 values again). kernel_checks: an int32 argmax is left to the kernel's check
    (fused into its pass; the caller runs it under _range_checked), saving two passes here.
    """
    a = _validation.as_array(name, a)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array (int32); received dtype {a.dtype}")
    _validation.check_shape(name, a, shape)
    if not (kernel_checks and a.dtype == np.int32):
        _check_range(name, a, limit, source)
    if fmt == "channels_first":
        a = a.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(a, dtype=np.int32)


def _check_range(name, a, limit, source):
    if a.size and (a.min() < 0 or a.max() >= limit):
        raise ValueError(f"{name} values must lie in [0, {limit}) ({source}); "
                         f"received values in [{a.min()}, {a.max()}]")


def _range_checked(run, name, a, limit, source):
    """run(), where a ValueError of the kernel over an index array a it range-checks itself is
    raised again with _index's message (naming `source`)."""
    try:
        return run()
    except ValueError:
        _check_range(name, a, limit, source)
        raise


def _input_shape(input_shape, fmt, dtype):
    """(N, H, W, C) from a 4-tuple of positive ints in the data_format's order, whose `dtype`
    gradient fits in memory."""
    try:
        dims = None if isinstance(input_shape, (str, bytes)) else tuple(input_shape)
    except TypeError:
        dims = None
    if dims is None or len(dims) != 4:
        raise ValueError(f"input_shape must be a 4-tuple of positive integers; received input_shape={input_shape!r}")
    dims = tuple(_validation.positive_int("input_shape", d) for d in dims)
    _validation.check_size("input_shape", dims, np.dtype(dtype).itemsize, "the gradient dx")
    if fmt == "channels_first":
        n, c, h, w = dims
        return n, h, w, c
    return dims


def _layout(shape_nhwc, fmt):
    """A (N, H, W, C) shape in the caller's layout."""
    n, h, w, c = shape_nhwc
    return (n, c, h, w) if fmt == "channels_first" else (n, h, w, c)


def _out(a, fmt):
    """A channels_last result in the caller's layout (C-contiguous)."""
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2)) if fmt == "channels_first" else a


def _check_global_dy(dy, N, C, input_shape, fmt):
    if dy.shape != (N, C):
        raise ValueError(f"dy must have shape {(N, C)}, the (N, C) of input_shape {tuple(input_shape)} with "
                         f"data_format={fmt!r}; received shape {dy.shape}")


def _check_dy(dy, expected_nhwc, fmt, input_shape):
    expected = _layout(expected_nhwc, fmt)
    if dy.shape != expected:
        raise ValueError(f"dy must have shape {expected}, the pooled shape of input_shape {tuple(input_shape)} for "
                         f"these pool_size, strides and padding with data_format={fmt!r}; received shape {dy.shape}")


# ----------------------------------------------------------------------------- shapes

def pool2d_output_shape(input_shape: Sequence[int | None], pool_size: Any, strides: Any = None, padding: Any = "valid",
                        data_format: str = "channels_last") -> tuple[int | None, ...]:
    """Output shape of a 2-D pool for a 4-D `input_shape` in `data_format` order.

    Args:
        input_shape: 4-D shape; any entry may be None (unknown): the result keeps None where the
            size cannot be known.
        pool_size: Int or pair (PH, PW), the window.
        strides: Int or pair, or None (pool_size).
        padding: "valid" or "same" (Keras rules).
        data_format: "channels_last" (N, H, W, C) or "channels_first" (N, C, H, W).

    Raises:
        ValueError: if the window does not fit a known spatial size.
    """
    fmt = _validation.data_format(data_format)
    pool, stride, mode = _pool_args(pool_size, strides, padding)
    try:
        dims = None if isinstance(input_shape, (str, bytes)) else tuple(input_shape)
    except TypeError:
        dims = None
    if dims is None or len(dims) != 4:
        raise ValueError(f"input_shape must have 4 entries (batch, spatial..., channels); received input_shape={input_shape!r}")
    for d in dims:
        if d is not None and (not _validation.is_int(d) or d < 1):
            raise ValueError(f"input_shape entries must be positive integers or None; received input_shape={input_shape!r}")
    n, h, w, c = (dims[0], dims[2], dims[3], dims[1]) if fmt == "channels_first" else dims
    out: list[Any] = []
    for axis, size in enumerate((h, w)):
        if size is None:
            out.append(None)
            continue
        if mode == "same":
            out.append(-(-int(size) // stride[axis]))
        else:
            out.append(_validation.output_size("pool_size", int(size), pool[axis], stride[axis], 0, 0,
                                               "pool_size, input_shape and data_format"))
    return _layout((n, out[0], out[1], c), fmt)


# ----------------------------------------------------------------------------- max pool

def max_pool2d_forward(x: ArrayLike, pool_size: Any = (2, 2), strides: Any = None, padding: Any = "valid",
                       data_format: str = "channels_last") -> Any:
    """2-D max pooling.

    Args:
        x: IN (N, H, W, C) (or (N, C, H, W) for channels_first) real array-like.
        pool_size: Int or pair (PH, PW), the window.
        strides: Int or pair, or None (pool_size).
        padding: "valid" or "same" (Keras rules).
        data_format: "channels_last" (N, H, W, C) or "channels_first" (N, C, H, W).

    Returns:
        (y, argmax): y (N, OH, OW, C) float32|float64 in x's layout; argmax int32 of y's shape, the
        window-local index di * PW + dj of the first maximum of each window.
    """
    fmt = _validation.data_format(data_format)
    pool, stride, mode = _pool_args(pool_size, strides, padding)
    dtype = _validation.float_dtype(x=x)
    x = _image("x", x, dtype, fmt)
    _, H, W, _ = x.shape
    pads, _ = _geometry(H, W, pool, stride, mode)
    y, argmax = impl("pool").max_pool2d_forward(x, *pool, *stride, *pads)
    return _out(y, fmt), _out(argmax, fmt)


def max_pool2d_backward(dy: ArrayLike, argmax: ArrayLike, input_shape: Sequence[int | None], pool_size: Any = (2, 2),
                        strides: Any = None, padding: Any = "valid", data_format: str = "channels_last") -> Any:
    """Gradient of 2-D max pooling with respect to its input.

    Args:
        dy: IN upstream gradient with y's shape.
        argmax: IN int32 from max_pool2d_forward (values in [0, PH * PW), else ValueError).
        input_shape: x's shape in the same layout.
        pool_size: Int or pair (PH, PW), the window.
        strides: Int or pair, or None (pool_size).
        padding: "valid" or "same" (Keras rules).
        data_format: "channels_last" (N, H, W, C) or "channels_first" (N, C, H, W).

    Returns:
        dx with input_shape, dy's float dtype: each dy added at its window's argmax cell.
    """
    fmt = _validation.data_format(data_format)
    pool, stride, mode = _pool_args(pool_size, strides, padding)
    dtype = _validation.float_dtype(dy=dy)
    N, H, W, C = _input_shape(input_shape, fmt, dtype)
    pads, (OH, OW) = _geometry(H, W, pool, stride, mode, "input_shape")
    dy = _validation.as_float("dy", dy, dtype)
    _check_dy(dy, (N, OH, OW, C), fmt, input_shape)
    source = f"the cells of a pool_size {pool} window"
    argmax = _index("argmax", argmax, dy.shape, pool[0] * pool[1], source, fmt, kernel_checks=True)
    if fmt == "channels_first":
        dy = np.ascontiguousarray(dy.transpose(0, 2, 3, 1))
    dx = _range_checked(lambda: impl("pool").max_pool2d_backward(dy, argmax, H, W, *pool, *stride, *pads),
                        "argmax", argmax, pool[0] * pool[1], source)
    return _out(dx, fmt)


# ----------------------------------------------------------------------------- average pool

def avg_pool2d_forward(x: ArrayLike, pool_size: Any = (2, 2), strides: Any = None, padding: Any = "valid",
                       data_format: str = "channels_last") -> Any:
    """2-D average pooling; with padding="same" the padded cells are excluded from each average.

    Args:
        x: IN (N, H, W, C) (or (N, C, H, W)) real array-like.
        pool_size: Int or pair (PH, PW), the window.
        strides: Int or pair, or None (pool_size).
        padding: "valid" or "same" (Keras rules).
        data_format: "channels_last" (N, H, W, C) or "channels_first" (N, C, H, W).

    Returns:
        y (N, OH, OW, C) float32|float64 in x's layout.
    """
    fmt = _validation.data_format(data_format)
    pool, stride, mode = _pool_args(pool_size, strides, padding)
    dtype = _validation.float_dtype(x=x)
    x = _image("x", x, dtype, fmt)
    _, H, W, _ = x.shape
    pads, _ = _geometry(H, W, pool, stride, mode)
    return _out(impl("pool").avg_pool2d_forward(x, *pool, *stride, *pads), fmt)


def avg_pool2d_backward(dy: ArrayLike, input_shape: Sequence[int | None], pool_size: Any = (2, 2), strides: Any = None,
                        padding: Any = "valid", data_format: str = "channels_last") -> Any:
    """Gradient of 2-D average pooling with respect to its input.

    Args:
        dy: IN upstream gradient with y's shape.
        input_shape: x's shape in the same layout.
        pool_size: Int or pair (PH, PW), the window.
        strides: Int or pair, or None (pool_size).
        padding: "valid" or "same" (Keras rules).
        data_format: "channels_last" (N, H, W, C) or "channels_first" (N, C, H, W).

    Returns:
        dx with input_shape: each dy / (real cells of its window) spread over those cells.
    """
    fmt = _validation.data_format(data_format)
    pool, stride, mode = _pool_args(pool_size, strides, padding)
    dtype = _validation.float_dtype(dy=dy)
    N, H, W, C = _input_shape(input_shape, fmt, dtype)
    pads, (OH, OW) = _geometry(H, W, pool, stride, mode, "input_shape")
    dy = _validation.as_float("dy", dy, dtype)
    _check_dy(dy, (N, OH, OW, C), fmt, input_shape)
    if fmt == "channels_first":
        dy = np.ascontiguousarray(dy.transpose(0, 2, 3, 1))
    return _out(impl("pool").avg_pool2d_backward(dy, H, W, *pool, *stride, *pads), fmt)


# ----------------------------------------------------------------------------- global pools

def global_avg_pool2d_forward(x: ArrayLike, data_format: str = "channels_last") -> Any:
    """Mean over the spatial axes.

    Args:
        x: IN (N, H, W, C) (or (N, C, H, W)).
        data_format: "channels_last" (N, H, W, C) or "channels_first" (N, C, H, W).

    Returns:
        y (N, C).
    """
    fmt = _validation.data_format(data_format)
    dtype = _validation.float_dtype(x=x)
    x = _image("x", x, dtype, fmt)
    return impl("pool").global_avg_pool2d_forward(x)


def global_avg_pool2d_backward(dy: ArrayLike, input_shape: Sequence[int | None],
                               data_format: str = "channels_last") -> Any:
    """Gradient of global_avg_pool2d_forward.

    Args:
        dy: IN (N, C).
        input_shape: x's shape.
        data_format: "channels_last" (N, H, W, C) or "channels_first" (N, C, H, W).

    Returns:
        dx with input_shape, dy / (H * W) everywhere.
    """
    fmt = _validation.data_format(data_format)
    dtype = _validation.float_dtype(dy=dy)
    N, H, W, C = _input_shape(input_shape, fmt, dtype)
    dy = _matrix("dy", dy, dtype)
    _check_global_dy(dy, N, C, input_shape, fmt)
    return _out(impl("pool").global_avg_pool2d_backward(dy, H, W), fmt)


def global_max_pool2d_forward(x: ArrayLike, data_format: str = "channels_last") -> Any:
    """Max over the spatial axes.

    Args:
        x: IN (N, H, W, C) (or (N, C, H, W)).
        data_format: "channels_last" (N, H, W, C) or "channels_first" (N, C, H, W).

    Returns:
        (y, argmax): y (N, C); argmax (N, C) int32, the flat spatial index h * W + w of the first
        maximum.
    """
    fmt = _validation.data_format(data_format)
    dtype = _validation.float_dtype(x=x)
    x = _image("x", x, dtype, fmt)
    if x.shape[1] * x.shape[2] > _INT32_MAX:
        raise ValueError(f"H * W must fit an int32 argmax; received spatial shape {x.shape[1:3]}")
    return impl("pool").global_max_pool2d_forward(x)


def global_max_pool2d_backward(dy: ArrayLike, argmax: ArrayLike, input_shape: Sequence[int | None],
                               data_format: str = "channels_last") -> Any:
    """Gradient of global_max_pool2d_forward.

    Args:
        dy: IN (N, C).
        argmax: IN (N, C) int32 in [0, H * W) (else ValueError).
        input_shape: x's shape.
        data_format: "channels_last" (N, H, W, C) or "channels_first" (N, C, H, W).

    Returns:
        dx with input_shape: dy at each argmax cell, zero elsewhere.
    """
    fmt = _validation.data_format(data_format)
    dtype = _validation.float_dtype(dy=dy)
    N, H, W, C = _input_shape(input_shape, fmt, dtype)
    if H * W > _INT32_MAX:
        raise ValueError(f"input_shape's H * W must fit an int32 argmax; received input_shape={tuple(input_shape)}")
    dy = _matrix("dy", dy, dtype)
    _check_global_dy(dy, N, C, input_shape, fmt)
    argmax = _index("argmax", argmax, (N, C), H * W, f"the H * W cells of input_shape {tuple(input_shape)}")
    return _out(impl("pool").global_max_pool2d_backward(dy, argmax, H, W), fmt)


# ----------------------------------------------------------------------------- upsampling

def upsampling2d_forward(x: ArrayLike, size: Any = (2, 2), data_format: str = "channels_last") -> Any:
    """Nearest-neighbour upsampling (Keras UpSampling2D, interpolation="nearest").

    Args:
        x: IN (N, H, W, C) (or (N, C, H, W)).
        size: Int or pair (SH, SW), the upsampling factors.
        data_format: "channels_last" (N, H, W, C) or "channels_first" (N, C, H, W).

    Returns:
        y (N, H * SH, W * SW, C) in x's layout, each pixel repeated SH x SW times.
    """
    fmt = _validation.data_format(data_format)
    sh, sw = _validation.int_pair("size", size)
    dtype = _validation.float_dtype(x=x)
    x = _image("x", x, dtype, fmt)
    N, H, W, C = x.shape
    _validation.check_size("size", (N, H * sh, W * sw, C), x.itemsize, "the upsampled x")
    return _out(impl("pool").upsampling2d_forward(x, sh, sw), fmt)


def upsampling2d_backward(dy: ArrayLike, size: Any = (2, 2), data_format: str = "channels_last") -> Any:
    """Gradient of upsampling2d_forward.

    Args:
        dy: IN (N, H * SH, W * SW, C) (or channels_first).
        size: As given to the forward.
        data_format: "channels_last" (N, H, W, C) or "channels_first" (N, C, H, W).

    Returns:
        dx (N, H, W, C) in dy's layout: the sum of each SH x SW block.
    """
    fmt = _validation.data_format(data_format)
    sh, sw = _validation.int_pair("size", size)
    dtype = _validation.float_dtype(dy=dy)
    dy = _image("dy", dy, dtype, fmt)
    if dy.shape[1] % sh or dy.shape[2] % sw:
        raise ValueError(f"dy's spatial shape {dy.shape[1:3]} (data_format={fmt!r}) must be a multiple of size "
                         f"{(sh, sw)}")
    return _out(impl("pool").upsampling2d_backward(dy, sh, sw), fmt)
