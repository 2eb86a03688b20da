"""Tests of cynet.kernels pooling / upsampling: cython == twin, twin == naive definition, gradients,
Keras "same" semantics, ties, channels_first, validation errors, hostile argmax."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cynet
import cynet.kernels as K
from cynet._kernels import pool_numpy
from cynet.testing import assert_twins_close, numerical_gradient

try:
    from cynet._kernels import pool as pool_cython
except ImportError:  # pragma: no cover - only with CYNET_ALLOW_UNCOMPILED
    pool_cython = None

BACKENDS = ["cython", "numpy"]
LOW_LEVEL = [pytest.param(pool_cython, id="cython"), pytest.param(pool_numpy, id="numpy")]


def on(backend, f, *args, **kwargs):
    with K.use_backend(backend):
        return f(*args, **kwargs)


def both(f, *args, **kwargs):
    """(cython result, numpy result) of the public function f."""
    return on("cython", f, *args, **kwargs), on("numpy", f, *args, **kwargs)


# ----------------------------------------------------------------------------- naive definitions

def same_pads(size, window, stride):
    """Keras/TensorFlow "same", written out independently of cynet: out = ceil(size / stride)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def naive_geometry(H, W, pool, strides, padding):
    strides = pool if strides is None else strides
    if padding == "same":
        (pt, pb), (pl, pr) = same_pads(H, pool[0], strides[0]), same_pads(W, pool[1], strides[1])
    else:
        pt = pb = pl = pr = 0
    OH = (H + pt + pb - pool[0]) // strides[0] + 1
    OW = (W + pl + pr - pool[1]) // strides[1] + 1
    return strides, (pt, pb, pl, pr), (OH, OW)


def naive_windows(x, pool, strides, padding):
    """Yield (n, oh, ow, c, cells) with cells a list of (di, dj, h, w) of REAL cells in row-major order."""
    N, H, W, C = x.shape
    strides, (pt, pb, pl, pr), (OH, OW) = naive_geometry(H, W, pool, strides, padding)
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                for c in range(C):
                    cells = []
                    for di in range(pool[0]):
                        for dj in range(pool[1]):
                            h, w = oh * strides[0] - pt + di, ow * strides[1] - pl + dj
                            if 0 <= h < H and 0 <= w < W:
                                cells.append((di, dj, h, w))
                    yield n, oh, ow, c, cells


def naive_max_pool(x, pool, strides=None, padding="valid"):
    N, H, W, C = x.shape
    _, _, (OH, OW) = naive_geometry(H, W, pool, strides, padding)
    y = np.zeros((N, OH, OW, C), x.dtype)
    am = np.zeros((N, OH, OW, C), np.int32)
    for n, oh, ow, c, cells in naive_windows(x, pool, strides, padding):
        best = None
        for di, dj, h, w in cells:
            if best is None or x[n, h, w, c] > best:  # strict: the first maximum wins
                best, am[n, oh, ow, c] = x[n, h, w, c], di * pool[1] + dj
        y[n, oh, ow, c] = best
    return y, am


def naive_max_pool_backward(dy, am, x_shape, pool, strides=None, padding="valid"):
    dx = np.zeros(x_shape, dy.dtype)
    for n, oh, ow, c, cells in naive_windows(np.empty(x_shape), pool, strides, padding):
        for di, dj, h, w in cells:
            if di * pool[1] + dj == am[n, oh, ow, c]:
                dx[n, h, w, c] += dy[n, oh, ow, c]
    return dx


def naive_avg_pool(x, pool, strides=None, padding="valid"):
    """Explicitly padded with zeros; the count excludes the padded cells."""
    N, H, W, C = x.shape
    strides, (pt, pb, pl, pr), (OH, OW) = naive_geometry(H, W, pool, strides, padding)
    xp = np.zeros((N, H + pt + pb, W + pl + pr, C), x.dtype)
    xp[:, pt:pt + H, pl:pl + W] = x
    real = np.zeros(xp.shape[1:3])
    real[pt:pt + H, pl:pl + W] = 1
    y = np.zeros((N, OH, OW, C), x.dtype)
    for oh in range(OH):
        for ow in range(OW):
            hs, ws = oh * strides[0], ow * strides[1]
            window = xp[:, hs:hs + pool[0], ws:ws + pool[1]]
            count = real[hs:hs + pool[0], ws:ws + pool[1]].sum()
            y[:, oh, ow] = window.sum(axis=(1, 2)) / count
    return y


def naive_avg_pool_backward(dy, x_shape, pool, strides=None, padding="valid"):
    dx = np.zeros(x_shape, dy.dtype)
    for n, oh, ow, c, cells in naive_windows(np.empty(x_shape), pool, strides, padding):
        for _, _, h, w in cells:
            dx[n, h, w, c] += dy[n, oh, ow, c] / len(cells)
    return dx


# ----------------------------------------------------------------------------- hand-worked cases

def test_max_pool_hand_worked(backend):
    x = np.array([[1, 5, 2, 0],
                  [3, 4, 7, 7],
                  [0, 0, 9, 1],
                  [-1, 2, 1, 8]], np.float32).reshape(1, 4, 4, 1)
    y, am = K.max_pool2d_forward(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[5, 7], [2, 9]])
    np.testing.assert_array_equal(am[0, :, :, 0], [[1, 2], [3, 0]])  # 7 7 tie -> first
    assert y.dtype == np.float32 and am.dtype == np.int32
    dx = K.max_pool2d_backward(np.array([[1, 2], [3, 4]], np.float32).reshape(1, 2, 2, 1), am, x.shape)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 1, 0, 0], [0, 0, 2, 0], [0, 0, 4, 0], [0, 3, 0, 0]])


def test_avg_pool_same_hand_worked(backend):
    # 3x3 input, pool 2 stride 2 "same": out 2x2, pad bottom/right by one; counts 4, 2, 2, 1.
    x = np.arange(9, dtype=np.float64).reshape(1, 3, 3, 1)
    y = K.avg_pool2d_forward(x, 2, padding="same")
    np.testing.assert_allclose(y[0, :, :, 0], [[(0 + 1 + 3 + 4) / 4, (2 + 5) / 2], [(6 + 7) / 2, 8]])
    dx = K.avg_pool2d_backward(np.ones((1, 2, 2, 1)), x.shape, 2, padding="same")
    np.testing.assert_allclose(dx[0, :, :, 0], [[0.25, 0.25, 0.5], [0.25, 0.25, 0.5], [0.5, 0.5, 1]])


def test_same_padding_odd_cell_goes_bottom_right(backend):
    # 4 wide, pool 3 stride 1 "same": one cell of padding left, one right (total 2).
    # 4 wide, pool 2 stride 1 "same": total 1, all of it on the right.
    x = np.arange(4, dtype=np.float64).reshape(1, 1, 4, 1)
    y = K.avg_pool2d_forward(x, (1, 2), strides=1, padding="same")
    np.testing.assert_allclose(y[0, 0, :, 0], [0.5, 1.5, 2.5, 3.0])
    y = K.avg_pool2d_forward(x, (1, 3), strides=1, padding="same")
    np.testing.assert_allclose(y[0, 0, :, 0], [0.5, 1.0, 2.0, 2.5])
    y, am = K.max_pool2d_forward(-x, (1, 2), strides=1, padding="same")
    np.testing.assert_array_equal(y[0, 0, :, 0], [0, -1, -2, -3])  # padding (-inf) never wins
    np.testing.assert_array_equal(am[0, 0, :, 0], [0, 0, 0, 0])


# ----------------------------------------------------------------------------- twin == naive

GEOMETRIES = [
    # (H, W, pool, strides, padding)
    (5, 5, (3, 3), (2, 2), "same"),   # pool 3 stride 2 same, odd size
    (6, 6, (3, 3), (2, 2), "same"),   # pool 3 stride 2 same, even size
    (6, 7, (2, 2), None, "same"),     # even pool, mixed parity
    (7, 6, (2, 3), (1, 2), "same"),
    (5, 6, (3, 3), (1, 1), "valid"),  # overlapping windows, stride 1
    (7, 7, (3, 3), (2, 2), "valid"),  # overlapping windows, stride 2
    (7, 8, (2, 2), (3, 3), "valid"),  # stride larger than pool: gaps
    (7, 8, (2, 2), (3, 3), "same"),
    (4, 5, (4, 5), None, "valid"),    # pool equal to input
    (4, 5, (4, 5), None, "same"),
    (5, 7, (2, 2), None, "valid"),    # odd leftovers dropped
    (4, 4, (1, 1), None, "valid"),
    (3, 3, (4, 4), (1, 1), "same"),   # pool larger than input, same
    (1, 1, (3, 3), (2, 2), "same"),
]


@pytest.mark.parametrize("H,W,pool,strides,padding", GEOMETRIES)
@pytest.mark.parametrize("N", [1, 2])
@pytest.mark.parametrize("backend_name", BACKENDS)
def test_against_naive(backend_name, N, H, W, pool, strides, padding):
    rng = np.random.default_rng(7)
    x = rng.permutation(N * H * W * 3).reshape(N, H, W, 3).astype(np.float64) / 7 - 3  # distinct values
    with K.use_backend(backend_name):
        y, am = K.max_pool2d_forward(x, pool, strides, padding)
        ey, eam = naive_max_pool(x, pool, strides, padding)
        np.testing.assert_array_equal(y, ey)
        np.testing.assert_array_equal(am, eam)
        dy = rng.standard_normal(y.shape)
        np.testing.assert_allclose(K.max_pool2d_backward(dy, am, x.shape, pool, strides, padding),
                                   naive_max_pool_backward(dy, am, x.shape, pool, strides, padding), atol=1e-12)
        np.testing.assert_allclose(K.avg_pool2d_forward(x, pool, strides, padding),
                                   naive_avg_pool(x, pool, strides, padding), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(K.avg_pool2d_backward(dy, x.shape, pool, strides, padding),
                                   naive_avg_pool_backward(dy, x.shape, pool, strides, padding), rtol=1e-12, atol=1e-12)
        assert K.pool2d_output_shape(x.shape, pool, strides, padding) == y.shape


def test_same_output_is_ceil(backend):
    for H in range(1, 9):
        for k in (1, 2, 3, 4):
            for s in (1, 2, 3):
                y, _ = K.max_pool2d_forward(np.zeros((1, H, H, 1)), k, s, "same")
                assert y.shape[1:3] == (-(-H // s),) * 2


# ----------------------------------------------------------------------------- ties

def test_ties_first_max_wins_on_both_backends():
    x = np.zeros((2, 4, 6, 3), np.float32)  # everything tied
    for backend in BACKENDS:
        y, am = on(backend, K.max_pool2d_forward, x, 2)
        assert (am == 0).all()
        y, am = on(backend, K.max_pool2d_forward, x, 3, 1)
        assert (am == 0).all()
        y, am = on(backend, K.global_max_pool2d_forward, x)
        assert (am == 0).all()
    # A window [[1, 3], [3, 2]]: the first 3 wins.
    x = np.array([1, 3, 3, 2], np.float64).reshape(1, 2, 2, 1)
    for backend in BACKENDS:
        _, am = on(backend, K.max_pool2d_forward, x)
        assert am.item() == 1
        _, am = on(backend, K.global_max_pool2d_forward, x)
        assert am.item() == 1
    # Same padding: the first REAL cell of a tied window wins (pool 3 stride 2, pad 1 on top/left).
    x = np.ones((1, 5, 5, 1))
    for backend in BACKENDS:
        _, am = on(backend, K.max_pool2d_forward, x, 3, 2, "same")
        np.testing.assert_array_equal(am[0, :, :, 0], [[4, 3, 3], [1, 0, 0], [1, 0, 0]])


@pytest.mark.skipif(pool_cython is None, reason="compiled kernels not built")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [1, 40, 67])
def test_2x2_max_pool_pass_equals_twin_with_ties_nans_and_odd_edges(C, dtype):
    """The 2x2 / stride 2 max pool (cynet_pool.h: vectorised over channels, argmax range check
    fused into the backward): bit for bit the twin's y, argmax and dx, on ties, NaNs, -inf and
    an odd last row and column (which belong to no window and get a zero gradient)."""
    rng = np.random.default_rng(C)
    x = np.round(rng.standard_normal((3, 9, 7, C))).astype(dtype)   # plenty of ties
    x[rng.random(x.shape) < 0.05] = np.nan
    x[rng.random(x.shape) < 0.05] = -np.inf
    (yc, ac), (yn, an) = both(K.max_pool2d_forward, x, 2)
    np.testing.assert_array_equal(ac, an)
    np.testing.assert_array_equal(yc, yn)
    dy = rng.standard_normal(yc.shape).astype(dtype)
    dc, dn = both(K.max_pool2d_backward, dy, ac, x.shape, 2)
    np.testing.assert_array_equal(dc, dn)
    assert (dc[:, 8] == 0).all() and (dc[:, :, 6] == 0).all()
    bad = ac.copy()
    bad[2, 3, 2, C - 1] = 4
    for backend in BACKENDS:
        with pytest.raises(ValueError, match=r"argmax values must lie in \[0, 4\) \(the cells of a pool_size"):
            on(backend, K.max_pool2d_backward, dy, bad, x.shape, 2)


def test_all_neg_inf_with_padding_agrees():
    x = np.full((1, 5, 4, 2), -np.inf)
    for padding in ("same", "valid"):
        (yc, ac), (yn, an) = both(K.max_pool2d_forward, x, 3, 2, padding)
        np.testing.assert_array_equal(ac, an)
        assert np.isneginf(yc).all() and np.isneginf(yn).all()
        dy = np.ones_like(yc)
        dc, dn = both(K.max_pool2d_backward, dy, ac, x.shape, 3, 2, padding)
        np.testing.assert_array_equal(dc, dn)


# ----------------------------------------------------------------------------- cython == twin, randomised

@st.composite
def pool_cases(draw):
    N = draw(st.integers(1, 3))
    H = draw(st.integers(1, 9))
    W = draw(st.integers(1, 9))
    C = draw(st.integers(1, 5))
    padding = draw(st.sampled_from(["valid", "same"]))
    ph = draw(st.integers(1, 4 if padding == "same" else H))
    pw = draw(st.integers(1, 4 if padding == "same" else W))
    strides = draw(st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 4))))
    fmt = draw(st.sampled_from(["channels_last", "channels_first"]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**16))
    return N, H, W, C, (ph, pw), strides, padding, fmt, np.dtype(dtype), seed


@pytest.mark.skipif(pool_cython is None, reason="compiled kernels not built")
@given(pool_cases())
def test_cython_matches_twin_randomised(case):
    N, H, W, C, pool, strides, padding, fmt, dtype, seed = case
    rng = np.random.default_rng(seed)
    shape = (N, C, H, W) if fmt == "channels_first" else (N, H, W, C)
    x = rng.standard_normal(shape).astype(dtype)
    if seed % 3 == 0:
        x = np.round(x)  # plenty of ties
    args = (pool, strides, padding, fmt)
    (yc, ac), (yn, an) = both(K.max_pool2d_forward, x, *args)
    assert yc.dtype == dtype and ac.dtype == np.int32
    np.testing.assert_array_equal(ac, an)
    assert_twins_close(yc, yn, dtype)
    assert yc.shape == K.pool2d_output_shape(shape, *args)
    dy = rng.standard_normal(yc.shape).astype(dtype)
    dc, dn = both(K.max_pool2d_backward, dy, ac, shape, *args)
    assert dc.shape == shape and dc.dtype == dtype
    assert_twins_close(dc, dn, dtype)
    yc, yn = both(K.avg_pool2d_forward, x, *args)
    assert_twins_close(yc, yn, dtype)
    dc, dn = both(K.avg_pool2d_backward, dy, shape, *args)
    assert_twins_close(dc, dn, dtype)


@st.composite
def global_cases(draw):
    N, H, W, C = (draw(st.integers(1, n)) for n in (3, 9, 9, 6))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    fmt = draw(st.sampled_from(["channels_last", "channels_first"]))
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    return N, H, W, C, (sh, sw), fmt, dtype, draw(st.integers(0, 2**16))


@pytest.mark.skipif(pool_cython is None, reason="compiled kernels not built")
@given(global_cases())
def test_global_and_upsampling_match_twin_randomised(case):
    N, H, W, C, size, fmt, dtype, seed = case
    rng = np.random.default_rng(seed)
    shape = (N, C, H, W) if fmt == "channels_first" else (N, H, W, C)
    x = rng.standard_normal(shape).astype(dtype)
    if seed % 2:
        x = np.round(x)
    yc, yn = both(K.global_avg_pool2d_forward, x, fmt)
    assert yc.shape == (N, C) and yc.dtype == dtype
    assert_twins_close(yc, yn, dtype)
    g = rng.standard_normal((N, C)).astype(dtype)
    assert_twins_close(*both(K.global_avg_pool2d_backward, g, shape, fmt), dtype)
    (yc, ac), (yn, an) = both(K.global_max_pool2d_forward, x, fmt)
    np.testing.assert_array_equal(ac, an)
    assert ac.dtype == np.int32
    assert_twins_close(yc, yn, dtype)
    dc, dn = both(K.global_max_pool2d_backward, g, ac, shape, fmt)
    assert dc.shape == shape
    assert_twins_close(dc, dn, dtype)
    uc, un = both(K.upsampling2d_forward, x, size, fmt)
    assert_twins_close(uc, un, dtype)
    du = rng.standard_normal(uc.shape).astype(dtype)
    dc, dn = both(K.upsampling2d_backward, du, size, fmt)
    assert dc.shape == shape
    assert_twins_close(dc, dn, dtype)


@pytest.mark.parametrize("H,W,pool,strides,padding", [(32, 32, (2, 2), None, "valid"), (9, 7, (2, 2), None, "valid"),
                                                      (9, 9, (3, 3), (2, 2), "same")])
def test_larger_batch_and_threads_agree(H, W, pool, strides, padding, dtype):
    """Large enough for a thread team; 1 and 2 threads give identical results."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, H, W, 64)).astype(dtype)
    yn, an = on("numpy", K.max_pool2d_forward, x, pool, strides, padding)
    dy = rng.standard_normal(yn.shape).astype(dtype)
    dn = on("numpy", K.max_pool2d_backward, dy, an, x.shape, pool, strides, padding)
    avn = on("numpy", K.avg_pool2d_forward, x, pool, strides, padding)
    dvn = on("numpy", K.avg_pool2d_backward, dy, x.shape, pool, strides, padding)
    if pool_cython is None:
        pytest.skip("compiled kernels not built")
    before = cynet.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            cynet.set_num_threads(threads)
            with K.use_backend("cython"):
                y, am = K.max_pool2d_forward(x, pool, strides, padding)
                results.append((y, am, K.max_pool2d_backward(dy, am, x.shape, pool, strides, padding),
                                K.avg_pool2d_forward(x, pool, strides, padding),
                                K.avg_pool2d_backward(dy, x.shape, pool, strides, padding),
                                K.global_avg_pool2d_forward(x), K.upsampling2d_forward(x)))
    finally:
        cynet.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    y, am, dx, av, dav = results[0][:5]
    np.testing.assert_array_equal(am, an)
    assert_twins_close(y, yn, dtype)
    assert_twins_close(dx, dn, dtype)
    assert_twins_close(av, avn, dtype)
    assert_twins_close(dav, dvn, dtype)


# ----------------------------------------------------------------------------- channels_first

def test_channels_first_is_transposed_channels_last(backend):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 7, 6, 3))
    xf = x.transpose(0, 3, 1, 2).copy()
    t = lambda a: a.transpose(0, 3, 1, 2)  # noqa: E731
    for args in (((2, 2), None, "valid"), ((3, 3), (2, 2), "same"), ((3, 2), (1, 2), "valid")):
        y, am = K.max_pool2d_forward(x, *args)
        yf, amf = K.max_pool2d_forward(xf, *args, data_format="channels_first")
        assert yf.flags.c_contiguous and amf.flags.c_contiguous
        np.testing.assert_array_equal(yf, t(y))
        np.testing.assert_array_equal(amf, t(am))
        dy = rng.standard_normal(y.shape)
        np.testing.assert_allclose(K.max_pool2d_backward(t(dy), amf, xf.shape, *args, data_format="channels_first"),
                                   t(K.max_pool2d_backward(dy, am, x.shape, *args)))
        np.testing.assert_allclose(K.avg_pool2d_forward(xf, *args, data_format="channels_first"),
                                   t(K.avg_pool2d_forward(x, *args)))
        np.testing.assert_allclose(K.avg_pool2d_backward(t(dy), xf.shape, *args, data_format="channels_first"),
                                   t(K.avg_pool2d_backward(dy, x.shape, *args)))
        assert K.pool2d_output_shape(xf.shape, *args, data_format="channels_first") == yf.shape
    np.testing.assert_allclose(K.global_avg_pool2d_forward(xf, "channels_first"), K.global_avg_pool2d_forward(x))
    g = rng.standard_normal((2, 3))
    np.testing.assert_allclose(K.global_avg_pool2d_backward(g, xf.shape, "channels_first"),
                               t(K.global_avg_pool2d_backward(g, x.shape)))
    (y, am), (yf, amf) = K.global_max_pool2d_forward(x), K.global_max_pool2d_forward(xf, "channels_first")
    np.testing.assert_array_equal(yf, y)
    np.testing.assert_array_equal(amf, am)
    np.testing.assert_allclose(K.global_max_pool2d_backward(g, amf, xf.shape, "channels_first"),
                               t(K.global_max_pool2d_backward(g, am, x.shape)))
    np.testing.assert_allclose(K.upsampling2d_forward(xf, (2, 3), "channels_first"), t(K.upsampling2d_forward(x, (2, 3))))
    du = rng.standard_normal((2, 14, 18, 3))
    np.testing.assert_allclose(K.upsampling2d_backward(t(du), (2, 3), "channels_first"),
                               t(K.upsampling2d_backward(du, (2, 3))))


# ----------------------------------------------------------------------------- global pools and upsampling

def test_global_pools_and_upsampling_definitions(backend):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(K.global_avg_pool2d_forward(x), x.mean(axis=(1, 2)))
    y, am = K.global_max_pool2d_forward(x)
    np.testing.assert_array_equal(y, x.max(axis=(1, 2)))
    np.testing.assert_array_equal(am, x.reshape(2, 12, 5).argmax(axis=1))
    g = rng.standard_normal((2, 5))
    dx = K.global_max_pool2d_backward(g, am, x.shape)
    expected = np.zeros_like(x)
    for n in range(2):
        for c in range(5):
            expected[n, am[n, c] // 4, am[n, c] % 4, c] = g[n, c]
    np.testing.assert_array_equal(dx, expected)
    np.testing.assert_allclose(K.global_avg_pool2d_backward(g, x.shape), np.broadcast_to(g[:, None, None] / 12, x.shape))
    u = K.upsampling2d_forward(x, (2, 3))
    assert u.shape == (2, 6, 12, 5)
    for h in range(6):
        for w in range(12):
            np.testing.assert_array_equal(u[:, h, w], x[:, h // 2, w // 3])
    du = rng.standard_normal(u.shape)
    np.testing.assert_allclose(K.upsampling2d_backward(du, (2, 3)),
                               du.reshape(2, 3, 2, 4, 3, 5).sum(axis=(2, 4)), rtol=1e-12)
    np.testing.assert_array_equal(K.upsampling2d_forward(x, 1), x)


# ----------------------------------------------------------------------------- gradients (float64)

def _grad_check(forward, backward, x, seed=0):
    g = np.random.default_rng(seed).standard_normal(forward(x).shape)
    numeric = numerical_gradient(lambda: float(np.sum(forward(x) * g)), x, eps=1e-6)
    np.testing.assert_allclose(backward(g), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("args", [((2, 2), None, "valid"), ((3, 3), (2, 2), "same"), ((3, 3), (1, 1), "valid"),
                                  ((2, 3), (3, 1), "same")])
def test_avg_pool_gradient(backend, args):
    x = np.random.default_rng(1).standard_normal((2, 5, 6, 2))
    _grad_check(lambda a: K.avg_pool2d_forward(a, *args), lambda g: K.avg_pool2d_backward(g, x.shape, *args), x)


@pytest.mark.parametrize("args", [((2, 2), None, "valid"), ((3, 3), (2, 2), "same"), ((3, 3), (1, 1), "valid"),
                                  ((2, 3), (3, 1), "same")])
def test_max_pool_gradient_distinct_values(backend, args):
    # Values at least 0.1 apart: a 1e-6 perturbation never changes a window's argmax.
    x = np.random.default_rng(2).permutation(2 * 5 * 6 * 2).reshape(2, 5, 6, 2) / 10.0
    _, am = K.max_pool2d_forward(x, *args)
    _grad_check(lambda a: K.max_pool2d_forward(a, *args)[0], lambda g: K.max_pool2d_backward(g, am, x.shape, *args), x)


def test_global_gradients(backend):
    x = np.random.default_rng(3).permutation(2 * 3 * 4 * 3).reshape(2, 3, 4, 3) / 10.0
    _grad_check(K.global_avg_pool2d_forward, lambda g: K.global_avg_pool2d_backward(g, x.shape), x)
    _, am = K.global_max_pool2d_forward(x)
    _grad_check(lambda a: K.global_max_pool2d_forward(a)[0], lambda g: K.global_max_pool2d_backward(g, am, x.shape), x)


def test_upsampling_gradient(backend):
    x = np.random.default_rng(4).standard_normal((2, 3, 2, 2))
    _grad_check(lambda a: K.upsampling2d_forward(a, (2, 3)), lambda g: K.upsampling2d_backward(g, (2, 3)), x)


# ----------------------------------------------------------------------------- dtypes, layouts, NaN

def test_dtypes_are_preserved(backend, dtype):
    x = np.random.default_rng(0).standard_normal((2, 4, 4, 3)).astype(dtype)
    y, am = K.max_pool2d_forward(x)
    assert y.dtype == dtype and am.dtype == np.int32
    assert K.max_pool2d_backward(y, am, x.shape).dtype == dtype
    assert K.avg_pool2d_forward(x).dtype == dtype
    assert K.avg_pool2d_backward(y, x.shape).dtype == dtype
    assert K.global_avg_pool2d_forward(x).dtype == dtype
    assert K.global_avg_pool2d_backward(y[:, 0, 0], x.shape).dtype == dtype
    assert K.global_max_pool2d_forward(x)[0].dtype == dtype
    assert K.upsampling2d_forward(x).dtype == dtype
    assert K.upsampling2d_backward(x).dtype == dtype


def test_views_ints_bools_and_readonly_inputs(backend):
    rng = np.random.default_rng(6)
    base = rng.standard_normal((3, 10, 9, 8))
    views = [base[::2, 1::2, ::-1, 2:6], base[:, ::-1, ::-1, ::-1], np.asfortranarray(base)]
    for v in views:
        ref = np.ascontiguousarray(v)
        for args in (((2, 2), None, "valid"), ((3, 3), (2, 2), "same")):
            y, am = K.max_pool2d_forward(v, *args)
            ey, eam = K.max_pool2d_forward(ref, *args)
            np.testing.assert_array_equal(y, ey)
            np.testing.assert_array_equal(am, eam)
            dy = np.ones_like(y)[..., ::-1]  # a reversed view as upstream gradient
            np.testing.assert_array_equal(K.max_pool2d_backward(dy, am[::1], v.shape, *args),
                                          K.max_pool2d_backward(np.ascontiguousarray(dy), am, v.shape, *args))
            np.testing.assert_array_equal(K.avg_pool2d_forward(v, *args), K.avg_pool2d_forward(ref, *args))
        np.testing.assert_array_equal(K.global_avg_pool2d_forward(v), K.global_avg_pool2d_forward(ref))
        np.testing.assert_array_equal(K.upsampling2d_forward(v), K.upsampling2d_forward(ref))
    ints = rng.integers(-5, 5, (2, 4, 4, 3))
    y, am = K.max_pool2d_forward(ints)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, K.max_pool2d_forward(ints.astype(np.float32))[0])
    np.testing.assert_allclose(K.avg_pool2d_forward(ints.tolist()), K.avg_pool2d_forward(ints.astype(np.float32)))
    bools = ints > 0
    np.testing.assert_array_equal(K.global_max_pool2d_forward(bools)[0], bools.any(axis=(1, 2)).astype(np.float32))
    # int64 argmax in range is accepted; read-only arrays are fine.
    ro = np.ascontiguousarray(base[:, :8, :8])
    ro.setflags(write=False)
    y, am = K.max_pool2d_forward(ro)
    am64 = am.astype(np.int64)
    am64.setflags(write=False)
    np.testing.assert_array_equal(K.max_pool2d_backward(y, am64, ro.shape), K.max_pool2d_backward(y, am, ro.shape))
    np.testing.assert_array_equal(K.avg_pool2d_forward(ro), K.avg_pool2d_forward(ro.copy()))


def test_nan_propagates(backend):
    x = np.arange(2 * 4 * 4 * 2, dtype=np.float64).reshape(2, 4, 4, 2)
    x[0, 1, 1, 0] = np.nan
    x[0, 0, 1, 0] = np.nan
    x[1, 3, 3, 1] = np.nan
    y, am = K.max_pool2d_forward(x)
    assert np.isnan(y[0, 0, 0, 0]) and am[0, 0, 0, 0] == 1  # the first NaN
    assert np.isnan(y[1, 1, 1, 1]) and am[1, 1, 1, 1] == 3
    assert np.isnan(y).sum() == 2
    y3, am3 = K.max_pool2d_forward(x, 3, 1, "same")
    assert np.isnan(y3[0, :3, :3, 0]).all()
    assert np.isnan(K.avg_pool2d_forward(x)).sum() == 2
    gy, gam = K.global_max_pool2d_forward(x)
    assert np.isnan(gy[0, 0]) and gam[0, 0] == 1
    dx = K.max_pool2d_backward(np.ones_like(y), am, x.shape)
    assert dx[0, 0, 1, 0] == 1 and dx[0, 1, 1, 0] == 0
    assert np.isnan(K.upsampling2d_forward(x)).sum() == 12


def test_nan_agrees_across_backends():
    x = np.random.default_rng(8).standard_normal((2, 6, 6, 4))
    x[x > 1.0] = np.nan
    for args in (((2, 2), None, "valid"), ((3, 3), (1, 1), "same")):
        (yc, ac), (yn, an) = both(K.max_pool2d_forward, x, *args)
        np.testing.assert_array_equal(ac, an)
        np.testing.assert_array_equal(yc, yn)
    (yc, ac), (yn, an) = both(K.global_max_pool2d_forward, x)
    np.testing.assert_array_equal(ac, an)


# ----------------------------------------------------------------------------- output shape helper

def test_pool2d_output_shape():
    assert K.pool2d_output_shape((None, 32, 32, 3), 2) == (None, 16, 16, 3)
    assert K.pool2d_output_shape((None, 5, 6, 3), 3, 2, "same") == (None, 3, 3, 3)
    assert K.pool2d_output_shape((None, 5, 6, 3), 3, 2, "SAME") == (None, 3, 3, 3)
    assert K.pool2d_output_shape((8, 3, 7, 7), (3, 2), (2, 1), data_format="channels_first") == (8, 3, 3, 6)
    assert K.pool2d_output_shape((None, None, 7, 3), 2) == (None, None, 3, 3)
    with pytest.raises(ValueError, match="larger than the padded input"):
        K.pool2d_output_shape((None, 2, 8, 3), 3)
    with pytest.raises(ValueError, match="input_shape"):
        K.pool2d_output_shape((None, 8, 3), 2)
    with pytest.raises(ValueError, match="input_shape"):
        K.pool2d_output_shape((None, 0, 8, 3), 2)
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        K.pool2d_output_shape((None, 8, 8, 3), 2, padding="full")
    with pytest.raises(ValueError, match="strides"):
        K.pool2d_output_shape((None, 8, 8, 3), 2, strides=0)


# ----------------------------------------------------------------------------- validation errors (public API)

def test_validation_errors(backend):
    x = np.zeros((2, 4, 4, 3), np.float32)
    y, am = K.max_pool2d_forward(x)
    cases = [
        (ValueError, "x must be 4-dimensional", lambda: K.max_pool2d_forward(x[0])),
        (ValueError, "x must be 4-dimensional", lambda: K.avg_pool2d_forward(x[None])),
        (ValueError, "x must not be empty", lambda: K.max_pool2d_forward(np.zeros((0, 4, 4, 3)))),
        (ValueError, "x must not be empty", lambda: K.avg_pool2d_forward(np.zeros((1, 4, 4, 0)))),
        (ValueError, "larger than the padded input", lambda: K.max_pool2d_forward(x, 5)),
        (ValueError, "larger than the padded input", lambda: K.avg_pool2d_forward(x, (2, 5))),
        (ValueError, "pool_size must be a positive integer", lambda: K.max_pool2d_forward(x, 0)),
        (ValueError, "pool_size must be a positive integer", lambda: K.avg_pool2d_forward(x, (2, 2, 2))),
        (ValueError, "strides must be a positive integer", lambda: K.max_pool2d_forward(x, 2, 0)),
        (ValueError, "strides must be a positive integer", lambda: K.avg_pool2d_forward(x, 2, (-1, 1))),
        (ValueError, "padding must be 'valid' or 'same'", lambda: K.max_pool2d_forward(x, padding="full")),
        (ValueError, "padding must be 'valid' or 'same'", lambda: K.avg_pool2d_forward(x, padding=1)),
        (ValueError, "data_format must be", lambda: K.max_pool2d_forward(x, data_format="NHWC")),
        (ValueError, "data_format must be", lambda: K.global_avg_pool2d_forward(x, data_format="nchw")),
        (TypeError, "x must be a real numeric array", lambda: K.max_pool2d_forward(x.astype(np.complex64))),
        (TypeError, "x must be a real numeric array", lambda: K.avg_pool2d_forward(x.astype(object))),
        (TypeError, "x must be a real numeric array", lambda: K.global_max_pool2d_forward(np.full((1, 2, 2, 1), "a"))),
        (TypeError, "dy must be a real numeric array", lambda: K.max_pool2d_backward(y.astype(complex), am, x.shape)),
        # backward shape agreement
        (ValueError, r"dy must have shape \(2, 2, 2, 3\)", lambda: K.max_pool2d_backward(y[:, :1], am, x.shape)),
        (ValueError, r"dy must have shape \(2, 2, 2, 3\)", lambda: K.avg_pool2d_backward(y[0], x.shape)),
        (ValueError, r"dy must have shape \(2, 3, 3, 3\)", lambda: K.max_pool2d_backward(y, am, (2, 5, 5, 3), 3, 1)),
        (ValueError, "argmax must have shape", lambda: K.max_pool2d_backward(y, am[:1], x.shape)),
        (TypeError, "argmax must be an integer array", lambda: K.max_pool2d_backward(y, am.astype(np.float32), x.shape)),
        (TypeError, "argmax must be an integer array", lambda: K.max_pool2d_backward(y, am > 0, x.shape)),
        (ValueError, r"argmax values must lie in \[0, 4\)", lambda: K.max_pool2d_backward(y, am + 4, x.shape)),
        (ValueError, r"argmax values must lie in \[0, 4\)", lambda: K.max_pool2d_backward(y, am - 1, x.shape)),
        (ValueError, r"argmax values must lie in \[0, 4\)",
         lambda: K.max_pool2d_backward(y, am.astype(np.int64) + 2**32, x.shape)),
        (ValueError, "input_shape must be a 4-tuple", lambda: K.max_pool2d_backward(y, am, (4, 4, 3))),
        (ValueError, "input_shape must be a positive integer", lambda: K.avg_pool2d_backward(y, (2, 4, 0, 3))),
        (ValueError, "larger than the padded input", lambda: K.avg_pool2d_backward(y, (2, 1, 4, 3))),
        # global pools
        (ValueError, r"dy must have shape \(2, 3\)", lambda: K.global_avg_pool2d_backward(np.zeros((2, 4)), x.shape)),
        (ValueError, "dy must be 2-dimensional", lambda: K.global_avg_pool2d_backward(np.zeros((2, 3, 1)), x.shape)),
        (ValueError, r"dy must have shape \(2, 3\)",
         lambda: K.global_max_pool2d_backward(np.zeros((1, 3)), np.zeros((1, 3), np.int32), x.shape)),
        (ValueError, "argmax must have shape",
         lambda: K.global_max_pool2d_backward(np.zeros((2, 3)), np.zeros((2, 2), np.int32), x.shape)),
        (ValueError, r"argmax values must lie in \[0, 16\)",
         lambda: K.global_max_pool2d_backward(np.zeros((2, 3)), np.full((2, 3), 16, np.int32), x.shape)),
        (ValueError, r"argmax values must lie in \[0, 16\)",
         lambda: K.global_max_pool2d_backward(np.zeros((2, 3)), np.full((2, 3), -1, np.int64), x.shape)),
        (ValueError, "x must be 4-dimensional", lambda: K.global_max_pool2d_forward(x[0])),
        # upsampling
        (ValueError, "size must be a positive integer", lambda: K.upsampling2d_forward(x, 0)),
        (ValueError, "size must be a positive integer", lambda: K.upsampling2d_backward(x, (2, -2))),
        (ValueError, "must be a multiple of size", lambda: K.upsampling2d_backward(x, (3, 2))),
        (ValueError, "dy must be 4-dimensional", lambda: K.upsampling2d_backward(x[0])),
    ]
    for exc, match, call in cases:
        with pytest.raises(exc, match=match):
            call()


# ----------------------------------------------------------------------------- low-level entry points, hostile input

@pytest.mark.parametrize("mod", LOW_LEVEL)
def test_low_level_rejects_bad_input(mod):
    if mod is None:
        pytest.skip("compiled kernels not built")
    x = np.zeros((2, 4, 4, 3))
    y, am = mod.max_pool2d_forward(x, 2, 2, 2, 2, 0, 0, 0, 0)
    geo = (2, 2, 2, 2, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="pad_top must lie in"):
        mod.max_pool2d_forward(x, 2, 2, 2, 2, 2, 0, 0, 0)
    with pytest.raises(ValueError, match="pad_right must lie in"):
        mod.avg_pool2d_forward(x, 2, 2, 2, 2, 0, 0, 0, -1)
    with pytest.raises(ValueError, match="stride_h must be >= 1"):
        mod.avg_pool2d_forward(x, 2, 2, 0, 2, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="pool_w must be >= 1"):
        mod.max_pool2d_forward(x, 2, 0, 2, 2, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="larger than the padded input"):
        mod.max_pool2d_forward(x, 5, 2, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="x must not be empty"):
        mod.max_pool2d_forward(np.zeros((0, 4, 4, 3)), *geo)
    with pytest.raises(ValueError, match="dy must have shape"):
        mod.max_pool2d_backward(y, am, 6, 4, *geo)
    with pytest.raises(ValueError, match="dy must have shape"):
        mod.avg_pool2d_backward(y, 4, 7, *geo)
    with pytest.raises(ValueError, match="argmax must have shape"):
        mod.max_pool2d_backward(y, np.ascontiguousarray(am[:1]), 4, 4, *geo)
    with pytest.raises(ValueError, match="H must be >= 1"):
        mod.global_avg_pool2d_backward(np.zeros((2, 3)), 0, 4)
    with pytest.raises(ValueError, match="argmax must have shape"):
        mod.global_max_pool2d_backward(np.zeros((2, 3)), np.zeros((2, 2), np.int32), 4, 4)
    with pytest.raises(ValueError, match="size_w must be >= 1"):
        mod.upsampling2d_forward(x, 2, 0)
    with pytest.raises(ValueError, match="must be a multiple of size"):
        mod.upsampling2d_backward(x, 3, 1)
    with pytest.raises((TypeError, ValueError)):
        mod.max_pool2d_backward(y, am.astype(np.int64), 4, 4, *geo)
    with pytest.raises((TypeError, ValueError)):
        mod.max_pool2d_forward(x[0], *geo)


@pytest.mark.parametrize("mod", LOW_LEVEL)
@pytest.mark.parametrize("geo", [(4, 4, (2, 2, 2, 2, 0, 0, 0, 0)), (5, 5, (3, 3, 2, 2, 1, 1, 1, 1)),
                                 (5, 4, (3, 3, 1, 1, 0, 0, 0, 0)), (5, 5, (2, 2, 2, 2, 0, 1, 0, 1))])
def test_hostile_argmax_never_writes_out_of_bounds(mod, geo):
    if mod is None:
        pytest.skip("compiled kernels not built")
    H, W, g = geo
    x = np.random.default_rng(0).standard_normal((3, H, W, 5))
    y, am = mod.max_pool2d_forward(x, *g)
    limit = g[0] * g[1]
    for bad in (limit, 2**31 - 1, -1, -(2**31)):
        hostile = am.copy()
        hostile[1, -1, -1, -1] = bad
        with pytest.raises(ValueError, match=rf"argmax values must lie in \[0, {limit}\)"):
            mod.max_pool2d_backward(y, hostile, H, W, *g)
    # In range but naming a padded cell: the gradient goes nowhere, on both backends alike.
    hostile = np.full_like(am, limit - 1)
    dx = mod.max_pool2d_backward(np.ones_like(y), hostile, H, W, *g)
    expected = pool_numpy.max_pool2d_backward(np.ones_like(y), hostile, H, W, *g)
    np.testing.assert_array_equal(dx, expected)
    for bad in (H * W, -1):
        with pytest.raises(ValueError, match=rf"argmax values must lie in \[0, {H * W}\)"):
            mod.global_max_pool2d_backward(np.zeros((3, 5)), np.full((3, 5), bad, np.int32), H, W)


def test_padded_argmax_is_dropped_consistently():
    # pool 3 stride 2 "same" on 5x5: pad 1 on every side; argmax 0 of window (0, 0) is the padded corner.
    y = np.ones((1, 3, 3, 1))
    am = np.zeros((1, 3, 3, 1), np.int32)
    dc, dn = both(K.max_pool2d_backward, y, am, (1, 5, 5, 1), 3, 2, "same")
    np.testing.assert_array_equal(dc, dn)
    assert dc[0, 0, 0, 0] == 0 and dc.sum() == 4  # only windows whose cell 0 is real route a gradient


def test_backward_outputs_hold_no_stale_memory(backend):
    """Cells no window covers (odd leftovers, gaps between windows) are exactly zero even when the
    allocator hands back memory full of garbage."""
    for H, W, args in ((5, 7, ((2, 2), None, "valid")), (8, 8, ((2, 2), (3, 3), "valid")), (7, 7, ((3, 3), (2, 2), "valid"))):
        x = np.random.default_rng(0).standard_normal((4, H, W, 16))
        y, am = K.max_pool2d_forward(x, *args)
        for _ in range(3):
            junk = np.full(x.shape, np.nan)  # freed just before the kernel allocates dx of this size
            del junk
            dx = K.max_pool2d_backward(np.ones_like(y), am, x.shape, *args)
            dv = K.avg_pool2d_backward(np.ones_like(y), x.shape, *args)
            assert np.isfinite(dx).all() and np.isfinite(dv).all()
            assert dx.sum() == y.size
            np.testing.assert_allclose(dv.sum(), y.size)
    g = np.ones((4, 16))
    for _ in range(3):
        junk = np.full((4, 6, 5, 16), np.nan)
        del junk
        dx = K.global_max_pool2d_backward(g, np.zeros((4, 16), np.int32), (4, 6, 5, 16))
        assert np.isfinite(dx).all() and dx.sum() == 64
