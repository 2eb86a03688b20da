"""2-D pooling and nearest-neighbour upsampling kernels (compiled twin of pool_numpy.py).

All arrays are channels_last: x (N, H, W, C) float32|float64, C-contiguous. Geometry comes as
explicit ints: pool (PH, PW), strides (SH, SW) and padding (top, bottom, left, right), each pad
smaller than the pool along its axis, so every window holds at least one real cell.
OH = (H + top + bottom - PH) // SH + 1, likewise OW.

Layout of the loops: prange over images (each thread owns whole images of every output, so the
backward scatters never race), then output rows and columns, then the window cells, and the
channel loop innermost over contiguous memory, written branch-free so the compiler vectorises it.
Max forward records the argmax in the same pass; max backward scatters by argmax, one window
offset at a time. When the windows tile the input (stride == pool) every input cell belongs to
exactly one window and the backward passes store each dx cell once instead of zero-fill + add.

Semantics (Keras) are those of pool_numpy.py: padded cells never win a max; argmax (int32) is the
window-local index di * PW + dj of the first maximum (NaN counts as the maximum); average pools
exclude padded cells from the count.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy, memset

import numpy as np

from cynet._kernels._check cimport CY_AT, CY_SPAN
from cynet._kernels._common cimport add_n, dtype_of, imax, imin
from cynet._kernels._openmp cimport threads_for, COST_WINDOW
from cynet._kernels._windows import pool_geometry as _geometry, positive as _positive
from libc.stdint cimport int32_t

cdef extern from "cynet_pool.h" nogil:
    void cynet_max_fwd_2x2_f(const float* x, float* y, int32_t* am, Py_ssize_t W, Py_ssize_t C,
                             Py_ssize_t OH, Py_ssize_t OW) noexcept
    void cynet_max_fwd_2x2_d(const double* x, double* y, int32_t* am, Py_ssize_t W, Py_ssize_t C,
                             Py_ssize_t OH, Py_ssize_t OW) noexcept
    int cynet_max_bwd_2x2_f(const float* dy, const int32_t* am, float* dx, Py_ssize_t W, Py_ssize_t C,
                            Py_ssize_t OH, Py_ssize_t OW) noexcept
    int cynet_max_bwd_2x2_d(const double* dy, const int32_t* am, double* dx, Py_ssize_t W, Py_ssize_t C,
                            Py_ssize_t OH, Py_ssize_t OW) noexcept

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



cdef inline int _team(Py_ssize_t n_items, Py_ssize_t work) noexcept nogil:
    """Team size for a prange over n_items images holding `work` elements in all."""
    cdef int nt = threads_for(work, COST_WINDOW)
    if nt > n_items:
        nt = <int>n_items
    return nt if nt >= 1 else 1


# ----------------------------------------------------------------------------- checks (GIL held)

cdef _nonempty(str name, tuple shape):
    for d in shape:
        if d < 1:
            raise ValueError(f"{name} must not be empty; received shape {shape}")


cdef tuple _shape4(a):
    return (a.shape[0], a.shape[1], a.shape[2], a.shape[3])


# ----------------------------------------------------------------------------- window helpers (nogil)

cdef inline void _copy_with_index(const floating* src, floating* y, int* am, int k, Py_ssize_t C) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(C):
        y[c] = src[c]
        am[c] = k


cdef inline void _max_update(const floating* src, floating* y, int* am, int k, Py_ssize_t C) noexcept nogil:
    """y, am <- src, k where src beats y (greater, or NaN over a number); branch-free for SIMD."""
    cdef Py_ssize_t c
    cdef floating v, m
    cdef bint take
    for c in range(C):
        v = src[c]
        m = y[c]
        take = (v > m) | ((v != v) & (m == m))
        y[c] = v if take else m
        am[c] = k if take else am[c]


cdef inline void _scale(floating* y, floating s, Py_ssize_t C) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(C):
        y[c] = y[c] * s


cdef inline void _store_routed(floating* dx, const floating* g, const int* am, int k, Py_ssize_t C) noexcept nogil:
    cdef Py_ssize_t c
    cdef floating v
    for c in range(C):
        v = g[c]  # loaded unconditionally so the select vectorises
        dx[c] = v if am[c] == k else 0


cdef inline void _add_routed(floating* dx, const floating* g, const int* am, int k, Py_ssize_t C) noexcept nogil:
    cdef Py_ssize_t c
    cdef floating v
    for c in range(C):
        v = g[c]
        dx[c] = dx[c] + (v if am[c] == k else 0)


cdef inline void _store_scaled(floating* dx, const floating* g, floating s, Py_ssize_t C) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(C):
        dx[c] = g[c] * s


cdef inline void _add_scaled(floating* dx, const floating* g, floating s, Py_ssize_t C) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(C):
        dx[c] = dx[c] + g[c] * s


cdef inline bint _any_out_of_range(const int* a, Py_ssize_t n, unsigned int limit) noexcept nogil:
    cdef Py_ssize_t i
    cdef unsigned int bad = 0
    for i in range(n):
        bad |= <unsigned int>(<unsigned int>a[i] >= limit)
    return bad != 0


cdef void _zero_uncovered(floating* dx, Py_ssize_t H, Py_ssize_t W, Py_ssize_t C,
                          Py_ssize_t row_end, Py_ssize_t col_end) noexcept nogil:
    """Zero the cells of one image outside rows [0, row_end) x cols [0, col_end)."""
    cdef Py_ssize_t h
    if col_end < W:
        for h in range(row_end):
            memset(dx + CY_SPAN((h * W + col_end) * C, (W - col_end) * C, H * W * C), 0,
                   (W - col_end) * C * sizeof(floating))
    if row_end < H:
        memset(dx + CY_SPAN(row_end * W * C, (H - row_end) * W * C, H * W * C), 0,
               (H - row_end) * W * C * sizeof(floating))


# ----------------------------------------------------------------------------- 2x2 / stride 2 / valid (nogil)
# The common case, where it pays (bench/README.md, "Pooling"): the four cells of a window are
# handled in one pass over the channels instead of four, so each dx / y row is written once; the
# max pool's on cynet_pool.h (vectorised C clones: this module compiles for the baseline ISA).
# Average backward gains nothing from this and uses the general path. Same arithmetic order as
# the general path, so the results are identical.

cdef bint _max_bwd_2x2_image(const floating* dy, const int* am, floating* dx,
                             Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    """cynet_pool.h's pass (each dx cell stored once, the argmax range check fused in); True if an
    argmax is out of range."""
    _zero_uncovered(dx, H, W, C, 2 * OH, 2 * OW)
    if floating is float:
        return cynet_max_bwd_2x2_f(dy, <const int32_t*>am, dx, W, C, OH, OW) != 0
    else:
        return cynet_max_bwd_2x2_d(dy, <const int32_t*>am, dx, W, C, OH, OW) != 0


cdef void _max_fwd_2x2_image(const floating* x, floating* y, int* am,
                             Py_ssize_t W, Py_ssize_t C, Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    if floating is float:
        cynet_max_fwd_2x2_f(x, y, <int32_t*>am, W, C, OH, OW)
    else:
        cynet_max_fwd_2x2_d(x, y, <int32_t*>am, W, C, OH, OW)


cdef void _avg_fwd_2x2_image(const floating* x, floating* y,
                             Py_ssize_t W, Py_ssize_t C, Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    cdef Py_ssize_t oh, ow, c
    cdef const floating* r0
    cdef const floating* r1
    cdef floating* yr
    cdef floating quarter = 0.25
    for oh in range(OH):
        for ow in range(OW):
            r0 = x + CY_SPAN((2 * oh * W + 2 * ow) * C, W * C + 2 * C, 2 * OH * W * C)   # the 2x2 window
            r1 = r0 + W * C
            yr = y + CY_SPAN((oh * OW + ow) * C, C, OH * OW * C)
            for c in range(C):
                yr[c] = (((r0[c] + r0[C + c]) + r1[c]) + r1[C + c]) * quarter


cdef inline bint _is_2x2(Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t ph, Py_ssize_t pw,
                         Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl) noexcept nogil:
    """2x2 windows at stride 2, every window inside the image (no padded cell anywhere)."""
    return (ph == 2) & (pw == 2) & (sh == 2) & (sw == 2) & (pt == 0) & (pl == 0) & (2 * OH <= H) & (2 * OW <= W)


# ----------------------------------------------------------------------------- per-image kernels (nogil)

cdef void _max_fwd_image(const floating* x, floating* y, int* am,
                         Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t OH, Py_ssize_t OW,
                         Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t sh, Py_ssize_t sw,
                         Py_ssize_t pt, Py_ssize_t pl) noexcept nogil:
    cdef Py_ssize_t oh, ow, h, w, h0, w0, hs, he, ws, we
    cdef floating* yr
    cdef int* ar
    if _is_2x2(H, W, OH, OW, ph, pw, sh, sw, pt, pl):
        _max_fwd_2x2_image(x, y, am, W, C, OH, OW)
        return
    for oh in range(OH):
        h0 = oh * sh - pt
        hs = imax(h0, 0)
        he = imin(h0 + ph, H)
        for ow in range(OW):
            w0 = ow * sw - pl
            ws = imax(w0, 0)
            we = imin(w0 + pw, W)
            yr = y + CY_SPAN((oh * OW + ow) * C, C, OH * OW * C)
            ar = am + CY_SPAN((oh * OW + ow) * C, C, OH * OW * C)
            # The first real cell starts the running max; padded cells never take part.
            _copy_with_index(x + CY_SPAN((hs * W + ws) * C, C, H * W * C), yr, ar, <int>((hs - h0) * pw + ws - w0), C)
            for h in range(hs, he):
                for w in range(ws, we):
                    if h != hs or w != ws:
                        _max_update(x + CY_SPAN((h * W + w) * C, C, H * W * C), yr, ar, <int>((h - h0) * pw + w - w0), C)


cdef bint _max_bwd_image(const floating* dy, const int* am, floating* dx,
                         Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t OH, Py_ssize_t OW,
                         Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t sh, Py_ssize_t sw,
                         Py_ssize_t pt, Py_ssize_t pl) noexcept nogil:
    """dx of one image from its dy and argmax; returns True (writing nothing) if an argmax is out of range."""
    cdef Py_ssize_t oh, ow, h, w, h0, w0, hs, he, ws, we
    cdef const floating* g
    cdef const int* ar
    cdef int k
    cdef bint tiled = sh == ph and sw == pw
    if _is_2x2(H, W, OH, OW, ph, pw, sh, sw, pt, pl):
        return _max_bwd_2x2_image(dy, am, dx, H, W, C, OH, OW)
    if _any_out_of_range(am, OH * OW * C, <unsigned int>(ph * pw)):
        return True
    if tiled:
        _zero_uncovered(dx, H, W, C, imin(OH * sh - pt, H), imin(OW * sw - pl, W))
    else:
        memset(dx, 0, H * W * C * sizeof(floating))
    for oh in range(OH):
        h0 = oh * sh - pt
        hs = imax(h0, 0)
        he = imin(h0 + ph, H)
        for ow in range(OW):
            w0 = ow * sw - pl
            ws = imax(w0, 0)
            we = imin(w0 + pw, W)
            g = dy + CY_SPAN((oh * OW + ow) * C, C, OH * OW * C)
            ar = am + CY_SPAN((oh * OW + ow) * C, C, OH * OW * C)
            # An argmax naming a padded cell matches no real offset: its gradient goes nowhere.
            for h in range(hs, he):
                for w in range(ws, we):
                    k = <int>((h - h0) * pw + w - w0)
                    if tiled:
                        _store_routed(dx + CY_SPAN((h * W + w) * C, C, H * W * C), g, ar, k, C)
                    else:
                        _add_routed(dx + CY_SPAN((h * W + w) * C, C, H * W * C), g, ar, k, C)
    return False


cdef void _avg_fwd_image(const floating* x, floating* y,
                         Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t OH, Py_ssize_t OW,
                         Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t sh, Py_ssize_t sw,
                         Py_ssize_t pt, Py_ssize_t pl) noexcept nogil:
    cdef Py_ssize_t oh, ow, h, w, h0, w0, hs, he, ws, we
    cdef floating* yr
    if _is_2x2(H, W, OH, OW, ph, pw, sh, sw, pt, pl):
        _avg_fwd_2x2_image(x, y, W, C, OH, OW)
        return
    for oh in range(OH):
        h0 = oh * sh - pt
        hs = imax(h0, 0)
        he = imin(h0 + ph, H)
        for ow in range(OW):
            w0 = ow * sw - pl
            ws = imax(w0, 0)
            we = imin(w0 + pw, W)
            yr = y + CY_SPAN((oh * OW + ow) * C, C, OH * OW * C)
            memcpy(yr, x + CY_SPAN((hs * W + ws) * C, C, H * W * C), C * sizeof(floating))
            for h in range(hs, he):
                for w in range(ws, we):
                    if h != hs or w != ws:
                        add_n(yr, x + CY_SPAN((h * W + w) * C, C, H * W * C), C)
            _scale(yr, <floating>(1.0 / <double>((he - hs) * (we - ws))), C)


cdef void _avg_bwd_image(const floating* dy, floating* dx,
                         Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t OH, Py_ssize_t OW,
                         Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t sh, Py_ssize_t sw,
                         Py_ssize_t pt, Py_ssize_t pl) noexcept nogil:
    cdef Py_ssize_t oh, ow, h, w, h0, w0, hs, he, ws, we
    cdef const floating* g
    cdef floating inv
    cdef bint tiled = sh == ph and sw == pw
    if tiled:
        _zero_uncovered(dx, H, W, C, imin(OH * sh - pt, H), imin(OW * sw - pl, W))
    else:
        memset(dx, 0, H * W * C * sizeof(floating))
    for oh in range(OH):
        h0 = oh * sh - pt
        hs = imax(h0, 0)
        he = imin(h0 + ph, H)
        for ow in range(OW):
            w0 = ow * sw - pl
            ws = imax(w0, 0)
            we = imin(w0 + pw, W)
            g = dy + CY_SPAN((oh * OW + ow) * C, C, OH * OW * C)
            inv = <floating>(1.0 / <double>((he - hs) * (we - ws)))
            for h in range(hs, he):
                for w in range(ws, we):
                    if tiled:
                        _store_scaled(dx + CY_SPAN((h * W + w) * C, C, H * W * C), g, inv, C)
                    else:
                        _add_scaled(dx + CY_SPAN((h * W + w) * C, C, H * W * C), g, inv, C)


# ----------------------------------------------------------------------------- max pool

def max_pool2d_forward(const floating[:, :, :, ::1] x, Py_ssize_t pool_h, Py_ssize_t pool_w,
                       Py_ssize_t stride_h, Py_ssize_t stride_w,
                       Py_ssize_t pad_top, Py_ssize_t pad_bottom, Py_ssize_t pad_left, Py_ssize_t pad_right):
    """Max pooling forward.

    x: IN (N, H, W, C) float32|float64, C-contiguous. Returns (y, argmax): y OUT (N, OH, OW, C)
    x.dtype; argmax OUT (N, OH, OW, C) int32, window-local index di * pool_w + dj of the first
    maximum.
    """
    _nonempty("x", _shape4(x))
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t OH, OW, n
    OH, OW = _geometry(H, W, pool_h, pool_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right)
    dtype = dtype_of(<floating>0)
    y = np.empty((N, OH, OW, C), dtype=dtype)
    argmax = np.empty((N, OH, OW, C), dtype=np.int32)
    cdef floating[:, :, :, ::1] yv = y
    cdef int[:, :, :, ::1] av = argmax
    cdef int nt = _team(N, N * H * W * C)
    with nogil:
        for n in prange(N, schedule="static", num_threads=nt):
            _max_fwd_image(&x[n, 0, 0, 0], &yv[n, 0, 0, 0], &av[n, 0, 0, 0], H, W, C, OH, OW,
                           pool_h, pool_w, stride_h, stride_w, pad_top, pad_left)
    return y, argmax


def max_pool2d_backward(const floating[:, :, :, ::1] dy, const int[:, :, :, ::1] argmax, Py_ssize_t H, Py_ssize_t W,
                        Py_ssize_t pool_h, Py_ssize_t pool_w, Py_ssize_t stride_h, Py_ssize_t stride_w,
                        Py_ssize_t pad_top, Py_ssize_t pad_bottom, Py_ssize_t pad_left, Py_ssize_t pad_right):
    """Max pooling backward: route each dy to its window's argmax cell (overlaps accumulate).

    dy: IN (N, OH, OW, C) float32|float64, C-contiguous; argmax: IN (N, OH, OW, C) int32 in
    [0, pool_h * pool_w) (ValueError otherwise). Returns dx OUT (N, H, W, C) dy.dtype. An argmax
    naming a padded cell sends its gradient nowhere.
    """
    _nonempty("dy", _shape4(dy))
    cdef Py_ssize_t N = dy.shape[0], OH = dy.shape[1], OW = dy.shape[2], C = dy.shape[3]
    cdef Py_ssize_t eOH, eOW, n
    eOH, eOW = _geometry(H, W, pool_h, pool_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right)
    if (OH, OW) != (eOH, eOW):
        raise ValueError(f"dy must have shape {(N, eOH, eOW, C)} for an input of {H}x{W}; received shape {_shape4(dy)}")
    if _shape4(argmax) != _shape4(dy):
        raise ValueError(f"argmax must have shape {_shape4(dy)}; received shape {_shape4(argmax)}")
    dtype = dtype_of(<floating>0)
    dx = np.empty((N, H, W, C), dtype=dtype)
    bad = np.zeros(N, dtype=np.uint8)
    cdef floating[:, :, :, ::1] dxv = dx
    cdef unsigned char[::1] badv = bad
    cdef int nt = _team(N, N * H * W * C)
    with nogil:
        for n in prange(N, schedule="static", num_threads=nt):
            badv[n] = _max_bwd_image(&dy[n, 0, 0, 0], &argmax[n, 0, 0, 0], &dxv[n, 0, 0, 0], H, W, C, OH, OW,
                                     pool_h, pool_w, stride_h, stride_w, pad_top, pad_left)
    if bad.any():
        a = np.asarray(argmax)
        raise ValueError(f"argmax values must lie in [0, {pool_h * pool_w}); received values in [{a.min()}, {a.max()}]")
    return dx


# ----------------------------------------------------------------------------- average pool

def avg_pool2d_forward(const floating[:, :, :, ::1] x, Py_ssize_t pool_h, Py_ssize_t pool_w,
                       Py_ssize_t stride_h, Py_ssize_t stride_w,
                       Py_ssize_t pad_top, Py_ssize_t pad_bottom, Py_ssize_t pad_left, Py_ssize_t pad_right):
    """Average pooling forward; padded cells are excluded from each window's count.

    x: IN (N, H, W, C) float32|float64, C-contiguous. Returns y OUT (N, OH, OW, C) x.dtype.
    """
    _nonempty("x", _shape4(x))
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t OH, OW, n
    OH, OW = _geometry(H, W, pool_h, pool_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right)
    dtype = dtype_of(<floating>0)
    y = np.empty((N, OH, OW, C), dtype=dtype)
    cdef floating[:, :, :, ::1] yv = y
    cdef int nt = _team(N, N * H * W * C)
    with nogil:
        for n in prange(N, schedule="static", num_threads=nt):
            _avg_fwd_image(&x[n, 0, 0, 0], &yv[n, 0, 0, 0], H, W, C, OH, OW,
                           pool_h, pool_w, stride_h, stride_w, pad_top, pad_left)
    return y


def avg_pool2d_backward(const floating[:, :, :, ::1] dy, Py_ssize_t H, Py_ssize_t W,
                        Py_ssize_t pool_h, Py_ssize_t pool_w, Py_ssize_t stride_h, Py_ssize_t stride_w,
                        Py_ssize_t pad_top, Py_ssize_t pad_bottom, Py_ssize_t pad_left, Py_ssize_t pad_right):
    """Average pooling backward: each dy / count spread over its window's real cells.

    dy: IN (N, OH, OW, C) float32|float64, C-contiguous. Returns dx OUT (N, H, W, C) dy.dtype.
    """
    _nonempty("dy", _shape4(dy))
    cdef Py_ssize_t N = dy.shape[0], OH = dy.shape[1], OW = dy.shape[2], C = dy.shape[3]
    cdef Py_ssize_t eOH, eOW, n
    eOH, eOW = _geometry(H, W, pool_h, pool_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right)
    if (OH, OW) != (eOH, eOW):
        raise ValueError(f"dy must have shape {(N, eOH, eOW, C)} for an input of {H}x{W}; received shape {_shape4(dy)}")
    dtype = dtype_of(<floating>0)
    dx = np.empty((N, H, W, C), dtype=dtype)
    cdef floating[:, :, :, ::1] dxv = dx
    cdef int nt = _team(N, N * H * W * C)
    with nogil:
        for n in prange(N, schedule="static", num_threads=nt):
            _avg_bwd_image(&dy[n, 0, 0, 0], &dxv[n, 0, 0, 0], H, W, C, OH, OW,
                           pool_h, pool_w, stride_h, stride_w, pad_top, pad_left)
    return dx


# ----------------------------------------------------------------------------- global pools

def global_avg_pool2d_forward(const floating[:, :, :, ::1] x):
    """x: IN (N, H, W, C) float32|float64, C-contiguous. Returns y OUT (N, C): the mean over H and W."""
    _nonempty("x", _shape4(x))
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t n, i, HW = H * W
    dtype = dtype_of(<floating>0)
    y = np.empty((N, C), dtype=dtype)
    cdef floating[:, ::1] yv = y
    cdef floating count = <floating>HW
    cdef int nt = _team(N, N * HW * C)
    with nogil:
        for n in prange(N, schedule="static", num_threads=nt):
            memcpy(&yv[n, 0], &x[n, 0, 0, 0], C * sizeof(floating))
            for i in range(1, HW):
                add_n(&yv[n, 0], &x[n, 0, 0, 0] + CY_SPAN(i * C, C, HW * C), C)
            for i in range(C):
                yv[n, i] = yv[n, i] / count
    return y


def global_avg_pool2d_backward(const floating[:, ::1] dy, Py_ssize_t H, Py_ssize_t W):
    """dy: IN (N, C) float32|float64, C-contiguous. Returns dx OUT (N, H, W, C) = dy / (H * W) at every cell."""
    _nonempty("dy", (dy.shape[0], dy.shape[1]))
    _positive("H", H)
    _positive("W", W)
    cdef Py_ssize_t N = dy.shape[0], C = dy.shape[1]
    cdef Py_ssize_t n, i, HW = H * W
    dtype = dtype_of(<floating>0)
    dx = np.empty((N, H, W, C), dtype=dtype)
    cdef floating[:, :, :, ::1] dxv = dx
    cdef floating count = <floating>HW
    cdef floating* row
    cdef int nt = _team(N, N * HW * C)
    with nogil:
        for n in prange(N, schedule="static", num_threads=nt):
            row = &dxv[n, 0, 0, 0]
            for i in range(C):
                row[i] = dy[n, i] / count
            for i in range(1, HW):
                memcpy(row + CY_SPAN(i * C, C, HW * C), row, C * sizeof(floating))
    return dx


def global_max_pool2d_forward(const floating[:, :, :, ::1] x):
    """x: IN (N, H, W, C) float32|float64, C-contiguous. Returns (y, argmax): y OUT (N, C) x.dtype,
    the max over H and W; argmax OUT (N, C) int32, the flat spatial index h * W + w of the first
    maximum (NaN counts as the maximum)."""
    _nonempty("x", _shape4(x))
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t n, i, HW = H * W
    if HW > 2147483647:
        raise ValueError(f"H * W must fit an int32 argmax; received H={H}, W={W}")
    dtype = dtype_of(<floating>0)
    y = np.empty((N, C), dtype=dtype)
    argmax = np.empty((N, C), dtype=np.int32)
    cdef floating[:, ::1] yv = y
    cdef int[:, ::1] av = argmax
    cdef int nt = _team(N, N * HW * C)
    with nogil:
        for n in prange(N, schedule="static", num_threads=nt):
            _copy_with_index(&x[n, 0, 0, 0], &yv[n, 0], &av[n, 0], 0, C)
            for i in range(1, HW):
                _max_update(&x[n, 0, 0, 0] + CY_SPAN(i * C, C, HW * C), &yv[n, 0], &av[n, 0], <int>i, C)
    return y, argmax


def global_max_pool2d_backward(const floating[:, ::1] dy, const int[:, ::1] argmax, Py_ssize_t H, Py_ssize_t W):
    """dy: IN (N, C) float32|float64, C-contiguous; argmax: IN (N, C) int32 in [0, H * W)
    (ValueError otherwise). Returns dx OUT (N, H, W, C): dy at each argmax cell, zero elsewhere."""
    _nonempty("dy", (dy.shape[0], dy.shape[1]))
    _positive("H", H)
    _positive("W", W)
    cdef Py_ssize_t N = dy.shape[0], C = dy.shape[1]
    cdef Py_ssize_t n, i, HW = H * W
    if (argmax.shape[0], argmax.shape[1]) != (N, C):
        raise ValueError(f"argmax must have shape {(N, C)}; received shape {(argmax.shape[0], argmax.shape[1])}")
    if HW > 2147483647:
        raise ValueError(f"H * W must fit an int32 argmax; received H={H}, W={W}")
    cdef bint bad
    with nogil:
        bad = _any_out_of_range(&argmax[0, 0], N * C, <unsigned int>HW)
    if bad:
        a = np.asarray(argmax)
        raise ValueError(f"argmax values must lie in [0, {HW}); received values in [{a.min()}, {a.max()}]")
    dtype = dtype_of(<floating>0)
    dx = np.empty((N, H, W, C), dtype=dtype)
    cdef floating[:, :, :, ::1] dxv = dx
    cdef floating* img
    cdef int nt = _team(N, N * HW * C)
    with nogil:
        for n in prange(N, schedule="static", num_threads=nt):
            img = &dxv[n, 0, 0, 0]
            memset(img, 0, HW * C * sizeof(floating))
            for i in range(C):
                img[CY_AT(argmax[n, i] * C + i, HW * C)] = dy[n, i]
    return dx


# ----------------------------------------------------------------------------- upsampling

def upsampling2d_forward(const floating[:, :, :, ::1] x, Py_ssize_t size_h, Py_ssize_t size_w):
    """Nearest-neighbour upsampling. x: IN (N, H, W, C) float32|float64, C-contiguous.
    Returns y OUT (N, H * size_h, W * size_w, C) with y[n, h, w] = x[n, h // size_h, w // size_w]."""
    _nonempty("x", _shape4(x))
    _positive("size_h", size_h)
    _positive("size_w", size_w)
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t UH = H * size_h, UW = W * size_w
    cdef Py_ssize_t n, h, w, i, j, row_len = UW * C
    dtype = dtype_of(<floating>0)
    y = np.empty((N, UH, UW, C), dtype=dtype)
    cdef floating[:, :, :, ::1] yv = y
    cdef floating* out
    cdef const floating* src
    cdef int nt = _team(N, N * UH * UW * C)
    with nogil:
        for n in prange(N, schedule="static", num_threads=nt):
            for h in range(H):
                # Build output row h * size_h, then copy it to the size_h - 1 rows below.
                out = &yv[n, h * size_h, 0, 0]
                for w in range(W):
                    src = &x[n, h, w, 0]
                    for j in range(size_w):
                        memcpy(out + CY_SPAN((w * size_w + j) * C, C, row_len), src, C * sizeof(floating))
                for i in range(1, size_h):
                    memcpy(out + CY_SPAN(i * row_len, row_len, size_h * row_len), out, row_len * sizeof(floating))
    return y


def upsampling2d_backward(const floating[:, :, :, ::1] dy, Py_ssize_t size_h, Py_ssize_t size_w):
    """dy: IN (N, H * size_h, W * size_w, C) float32|float64, C-contiguous. Returns dx OUT
    (N, H, W, C), the sum of each size_h x size_w block of dy."""
    _nonempty("dy", _shape4(dy))
    _positive("size_h", size_h)
    _positive("size_w", size_w)
    cdef Py_ssize_t N = dy.shape[0], UH = dy.shape[1], UW = dy.shape[2], C = dy.shape[3]
    if UH % size_h or UW % size_w:
        raise ValueError(f"dy's spatial shape ({UH}, {UW}) must be a multiple of size ({size_h}, {size_w})")
    cdef Py_ssize_t H = UH // size_h, W = UW // size_w
    cdef Py_ssize_t n, h, w, i, j
    dtype = dtype_of(<floating>0)
    dx = np.empty((N, H, W, C), dtype=dtype)
    cdef floating[:, :, :, ::1] dxv = dx
    cdef floating* acc
    cdef int nt = _team(N, N * UH * UW * C)
    with nogil:
        for n in prange(N, schedule="static", num_threads=nt):
            for h in range(H):
                for w in range(W):
                    acc = &dxv[n, h, w, 0]
                    memcpy(acc, &dy[n, h * size_h, w * size_w, 0], C * sizeof(floating))
                    for i in range(size_h):
                        for j in range(size_w):
                            if i != 0 or j != 0:
                                add_n(acc, &dy[n, h * size_h + i, w * size_w + j, 0], C)
    return dx
