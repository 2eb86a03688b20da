"""The geometry of sliding windows, shared by the compiled kernels and their NumPy twins.

conv.pyx / conv_numpy.py and pool.pyx / pool_numpy.py take explicit integer geometry (window,
strides, padding amounts, dilation) from the public wrappers in cynet.kernels, which normalise
the Keras arguments first. The kernels check it again here (cheap, Python ints, so nothing
overflows) because they must be safe for any call: one definition, so that a compiled module and
its twin accept, reject and size exactly alike.

A new windowed family (1-D / transposed / depthwise convolution, 1-D pooling) computes its output
size with `window_output` and adds its own checks next to it.
"""

# Largest window, stride, dilation and padding the compiled loops take: their index arithmetic
# is done in Py_ssize_t with products of these, kept far from overflow.
LIMIT = 1 << 31


def window_output(size, window, stride, pad_lo=0, pad_hi=0, dilation=1):
    """Output positions of a window of `window` cells dilated by `dilation`, stepped by `stride`
    over an axis of `size` cells padded by pad_lo / pad_hi: (size + pads - effective) // stride + 1
    (the caller has checked that the effective window fits)."""
    return (size + pad_lo + pad_hi - ((window - 1) * dilation + 1)) // stride + 1


def conv_geometry(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw):
    """(OH, OW) of a 2-D convolution after cheap sanity checks of its integer arguments (one
    expression when they pass, so that a small call pays well under a microsecond for them)."""
    if not (N >= 1 and H >= 1 and W >= 1 and C >= 1 and 1 <= KH < LIMIT and 1 <= KW < LIMIT
            and 1 <= sh < LIMIT and 1 <= sw < LIMIT and 1 <= dh < LIMIT and 1 <= dw < LIMIT
            and 0 <= pt < LIMIT and 0 <= pb < LIMIT and 0 <= pl < LIMIT and 0 <= pr < LIMIT
            and (KH - 1) * dh + 1 <= H + pt + pb and (KW - 1) * dw + 1 <= W + pl + pr):
        _conv_geometry_error(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    return window_output(H, KH, sh, pt, pb, dh), window_output(W, KW, sw, pl, pr, dw)


def _conv_geometry_error(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw):
    """The ValueError naming the first bad argument of conv_geometry."""
    for name, v in (("N", N), ("H", H), ("W", W), ("C", C), ("KH", KH), ("KW", KW),
                    ("sh", sh), ("sw", sw), ("dh", dh), ("dw", dw)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1; received {name}={v}")
    for name, v in (("pt", pt), ("pb", pb), ("pl", pl), ("pr", pr)):
        if v < 0:
            raise ValueError(f"{name} must be >= 0; received {name}={v}")
    for name, v in (("pt", pt), ("pb", pb), ("pl", pl), ("pr", pr), ("sh", sh), ("sw", sw),
                    ("dh", dh), ("dw", dw), ("KH", KH), ("KW", KW)):
        if v >= LIMIT:
            raise ValueError(f"{name} must be < 2**31; received {name}={v}")
    ekh, ekw = (KH - 1) * dh + 1, (KW - 1) * dw + 1
    hp, wp = H + pt + pb, W + pl + pr
    if ekh > hp or ekw > wp:
        raise ValueError(
            f"the effective window ({ekh}, {ekw}) is larger than the padded input ({hp}, {wp})")


def positive(name, v):
    """ValueError unless the integer argument `name` is >= 1."""
    if v < 1:
        raise ValueError(f"{name} must be >= 1; received {name}={v}")


def pool_geometry(H, W, ph, pw, sh, sw, pt, pb, pl, pr):
    """(OH, OW) of a 2-D pooling; ValueError if the geometry is invalid. Each pad must be smaller
    than the pool along its axis, so that every window holds at least one real cell, and a window
    must have fewer than 2**31 cells (its argmax is an int32 window-local index). One expression
    when the checks pass, as conv_geometry."""
    if not (H >= 1 and W >= 1 and ph >= 1 and pw >= 1 and sh >= 1 and sw >= 1
            and 0 <= pt < ph and 0 <= pb < ph and 0 <= pl < pw and 0 <= pr < pw
            and ph * pw <= 2147483647 and ph <= H + pt + pb and pw <= W + pl + pr):
        _pool_geometry_error(H, W, ph, pw, sh, sw, pt, pb, pl, pr)
    return window_output(H, ph, sh, pt, pb), window_output(W, pw, sw, pl, pr)


def _pool_geometry_error(H, W, ph, pw, sh, sw, pt, pb, pl, pr):
    """The ValueError naming the first bad argument of pool_geometry."""
    for name, v in (("H", H), ("W", W), ("pool_h", ph), ("pool_w", pw), ("stride_h", sh), ("stride_w", sw)):
        positive(name, v)
    for name, v, p in (("pad_top", pt, ph), ("pad_bottom", pb, ph), ("pad_left", pl, pw), ("pad_right", pr, pw)):
        if v < 0 or v >= p:
            raise ValueError(f"{name} must lie in [0, pool size {p}); received {name}={v}")
    if ph * pw > 2147483647:
        raise ValueError(f"the pool window ({ph}, {pw}) must have fewer than 2**31 cells for an int32 argmax")
    if ph > H + pt + pb or pw > W + pl + pr:
        raise ValueError(f"the pool window ({ph}, {pw}) is larger than the padded input "
                         f"({H + pt + pb}, {W + pl + pr})")
