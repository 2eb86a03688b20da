"""NumPy twin of cynet/_kernels/pool.pyx: 2-D pooling and nearest-neighbour upsampling.

Same function names, signatures and results as the compiled module. All arrays are
channels_last: x (N, H, W, C) float32|float64. Geometry comes as explicit ints:
pool (PH, PW), strides (SH, SW) and padding (top, bottom, left, right), each pad smaller than
the pool along its axis (so every window holds at least one real cell). Output size
OH = (H + top + bottom - PH) // SH + 1, likewise OW.

Semantics (Keras):
- max pool: padded cells never win; argmax is int32 with y's shape, the window-local flat index
  di * PW + dj of the first maximum in row-major window order (NaN counts as the maximum).
- avg pool: the mean over the real cells of each window (padded cells excluded from the count).
- global pools reduce over (H, W); global max argmax is the flat spatial index h * W + w.
- upsampling repeats each pixel SH x SW times; its backward sums each SH x SW block.

This is the reference and the benchmark baseline: strided window views and slice loops over
the window offsets, no np.add.at, nothing slow on purpose.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._windows import pool_geometry as _geometry, positive as _positive

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
]


# ----------------------------------------------------------------------------- checks

def _check_array(name, a, ndim):
    if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be a float32 or float64 ndarray; received {type(a).__name__} "
                        f"with dtype {getattr(a, 'dtype', None)}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional; received shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} must not be empty; received shape {a.shape}")


def _check_index(name, a, shape):
    if not isinstance(a, np.ndarray) or a.dtype != np.int32:
        raise TypeError(f"{name} must be an int32 ndarray; received {type(a).__name__} with dtype {getattr(a, 'dtype', None)}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}; received shape {a.shape}")


def _check_range(name, a, limit):
    if a.size and (a.min() < 0 or a.max() >= limit):
        raise ValueError(f"{name} values must lie in [0, {limit}); received values in [{a.min()}, {a.max()}]")


def _window_slices(di, dj, OH, OW, sh, sw):
    """Index of the cells at window offset (di, dj) of every window, in the padded input."""
    return (slice(None), slice(di, di + (OH - 1) * sh + 1, sh), slice(dj, dj + (OW - 1) * sw + 1, sw))


def _real_counts(size, out, window, stride, pad):
    """Number of real (unpadded) cells in each window along one axis: (out,) int64."""
    start = np.arange(out) * stride - pad
    return np.minimum(start + window, size) - np.maximum(start, 0)


def _inverse_counts(H, W, OH, OW, ph, pw, sh, sw, pt, pl, dtype):
    """1 / (real cells per window) as an (OH, OW, 1) map of `dtype`."""
    rows = _real_counts(H, OH, ph, sh, pt)
    cols = _real_counts(W, OW, pw, sw, pl)
    return (1.0 / (rows[:, None] * cols[None, :])).astype(dtype)[:, :, None]


def _padded(x, pt, pb, pl, pr, value):
    if not (pt or pb or pl or pr):
        return x
    N, H, W, C = x.shape
    xp = np.full((N, H + pt + pb, W + pl + pr, C), value, dtype=x.dtype)
    xp[:, pt:pt + H, pl:pl + W] = x
    return xp


def _cropped(dxp, H, W, pt, pl):
    if dxp.shape[1] == H and dxp.shape[2] == W:
        return dxp
    return np.ascontiguousarray(dxp[:, pt:pt + H, pl:pl + W])


# ----------------------------------------------------------------------------- max pool

def max_pool2d_forward(x, pool_h, pool_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right):
    """Max pooling forward.

    x: IN (N, H, W, C) float32|float64. Returns (y, argmax): y OUT (N, OH, OW, C) x.dtype;
    argmax OUT (N, OH, OW, C) int32, window-local index di * pool_w + dj of the first maximum.
    """
    _check_array("x", x, 4)
    N, H, W, C = x.shape
    OH, OW = _geometry(H, W, pool_h, pool_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right)
    xp = _padded(x, pad_top, pad_bottom, pad_left, pad_right, -np.inf)
    # (N, OH, OW, C, PH, PW) view of every window, flattened to (..., PH * PW) for argmax.
    win = sliding_window_view(xp, (pool_h, pool_w), axis=(1, 2))[:, ::stride_h, ::stride_w][:, :OH, :OW]
    win = win.reshape(N, OH, OW, C, pool_h * pool_w)
    argmax = win.argmax(axis=-1).astype(np.int32)
    y = np.take_along_axis(win, argmax[..., None], axis=-1)[..., 0]
    if pad_top or pad_bottom or pad_left or pad_right:
        # A window whose real cells are all -inf ties with its padding: the first real cell wins.
        tied = np.isneginf(y)
        if tied.any():
            r0 = np.maximum(pad_top - np.arange(OH) * stride_h, 0)
            c0 = np.maximum(pad_left - np.arange(OW) * stride_w, 0)
            first_real = (r0[:, None] * pool_w + c0[None, :]).astype(np.int32)[:, :, None]
            argmax = np.where(tied, first_real, argmax)
    return y, argmax


def max_pool2d_backward(dy, argmax, H, W, pool_h, pool_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right):
    """Max pooling backward: route each dy to its window's argmax cell (overlaps accumulate).

    dy: IN (N, OH, OW, C) float32|float64; argmax: IN (N, OH, OW, C) int32 in [0, pool_h * pool_w).
    Returns dx OUT (N, H, W, C) dy.dtype. An argmax naming a padded cell sends its gradient nowhere.
    """
    _check_array("dy", dy, 4)
    N, OH, OW, C = dy.shape
    eOH, eOW = _geometry(H, W, pool_h, pool_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right)
    if (OH, OW) != (eOH, eOW):
        raise ValueError(f"dy must have shape {(N, eOH, eOW, C)} for an input of {H}x{W}; received shape {dy.shape}")
    _check_index("argmax", argmax, dy.shape)
    _check_range("argmax", argmax, pool_h * pool_w)
    dxp = np.zeros((N, H + pad_top + pad_bottom, W + pad_left + pad_right, C), dtype=dy.dtype)
    for di in range(pool_h):
        for dj in range(pool_w):
            dxp[_window_slices(di, dj, OH, OW, stride_h, stride_w)] += np.where(argmax == di * pool_w + dj, dy, 0)
    return _cropped(dxp, H, W, pad_top, pad_left)


# ----------------------------------------------------------------------------- average pool

def avg_pool2d_forward(x, pool_h, pool_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right):
    """Average pooling forward; padded cells are excluded from each window's count.

    x: IN (N, H, W, C) float32|float64. Returns y OUT (N, OH, OW, C) x.dtype.
    """
    _check_array("x", x, 4)
    N, H, W, C = x.shape
    OH, OW = _geometry(H, W, pool_h, pool_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right)
    xp = _padded(x, pad_top, pad_bottom, pad_left, pad_right, 0)
    y = None
    for di in range(pool_h):
        for dj in range(pool_w):
            cells = xp[_window_slices(di, dj, OH, OW, stride_h, stride_w)]
            if y is None:
                y = cells.copy()
            else:
                y += cells
    y *= _inverse_counts(H, W, OH, OW, pool_h, pool_w, stride_h, stride_w, pad_top, pad_left, x.dtype)
    return y


def avg_pool2d_backward(dy, H, W, pool_h, pool_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right):
    """Average pooling backward: each dy / count spread over its window's real cells.

    dy: IN (N, OH, OW, C) float32|float64. Returns dx OUT (N, H, W, C) dy.dtype.
    """
    _check_array("dy", dy, 4)
    N, OH, OW, C = dy.shape
    eOH, eOW = _geometry(H, W, pool_h, pool_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right)
    if (OH, OW) != (eOH, eOW):
        raise ValueError(f"dy must have shape {(N, eOH, eOW, C)} for an input of {H}x{W}; received shape {dy.shape}")
    g = dy * _inverse_counts(H, W, OH, OW, pool_h, pool_w, stride_h, stride_w, pad_top, pad_left, dy.dtype)
    dxp = np.zeros((N, H + pad_top + pad_bottom, W + pad_left + pad_right, C), dtype=dy.dtype)
    for di in range(pool_h):
        for dj in range(pool_w):
            dxp[_window_slices(di, dj, OH, OW, stride_h, stride_w)] += g
    return _cropped(dxp, H, W, pad_top, pad_left)


# ----------------------------------------------------------------------------- global pools

def global_avg_pool2d_forward(x):
    """x: IN (N, H, W, C) float32|float64. Returns y OUT (N, C): the mean over H and W."""
    _check_array("x", x, 4)
    N, H, W, C = x.shape
    y = x.reshape(N, H * W, C).sum(axis=1)
    y /= H * W
    return y


def global_avg_pool2d_backward(dy, H, W):
    """dy: IN (N, C) float32|float64. Returns dx OUT (N, H, W, C) = dy / (H * W) at every cell."""
    _check_array("dy", dy, 2)
    _positive("H", H)
    _positive("W", W)
    N, C = dy.shape
    dx = np.empty((N, H, W, C), dtype=dy.dtype)
    dx[...] = (dy / (H * W))[:, None, None, :]
    return dx


def global_max_pool2d_forward(x):
    """x: IN (N, H, W, C) float32|float64. Returns (y, argmax): y OUT (N, C) x.dtype, the max over
    H and W; argmax OUT (N, C) int32, the flat spatial index h * W + w of the first maximum."""
    _check_array("x", x, 4)
    N, H, W, C = x.shape
    flat = x.reshape(N, H * W, C)
    argmax = flat.argmax(axis=1).astype(np.int32)
    y = np.take_along_axis(flat, argmax[:, None, :], axis=1)[:, 0, :]
    return y, argmax


def global_max_pool2d_backward(dy, argmax, H, W):
    """dy: IN (N, C) float32|float64; argmax: IN (N, C) int32 in [0, H * W).
    Returns dx OUT (N, H, W, C): dy at each argmax cell, zero elsewhere."""
    _check_array("dy", dy, 2)
    _positive("H", H)
    _positive("W", W)
    _check_index("argmax", argmax, dy.shape)
    _check_range("argmax", argmax, H * W)
    N, C = dy.shape
    dx = np.zeros((N, H * W, C), dtype=dy.dtype)
    np.put_along_axis(dx, argmax[:, None, :], dy[:, None, :], axis=1)
    return dx.reshape(N, H, W, C)


# ----------------------------------------------------------------------------- upsampling

def upsampling2d_forward(x, size_h, size_w):
    """Nearest-neighbour upsampling. x: IN (N, H, W, C) float32|float64.
    Returns y OUT (N, H * size_h, W * size_w, C) with y[n, h, w] = x[n, h // size_h, w // size_w]."""
    _check_array("x", x, 4)
    N, H, W, C = x.shape
    _positive("size_h", size_h)
    _positive("size_w", size_w)
    y = np.empty((N, H, size_h, W, size_w, C), dtype=x.dtype)
    y[...] = x[:, :, None, :, None, :]
    return y.reshape(N, H * size_h, W * size_w, C)


def upsampling2d_backward(dy, size_h, size_w):
    """dy: IN (N, H * size_h, W * size_w, C) float32|float64. Returns dx OUT (N, H, W, C), the sum
    of each size_h x size_w block of dy."""
    _check_array("dy", dy, 4)
    N, UH, UW, C = dy.shape
    _positive("size_h", size_h)
    _positive("size_w", size_w)
    if UH % size_h or UW % size_w:
        raise ValueError(f"dy's spatial shape ({UH}, {UW}) must be a multiple of size ({size_h}, {size_w})")
    return dy.reshape(N, UH // size_h, size_h, UW // size_w, size_w, C).sum(axis=(2, 4))
