"""2-D convolution kernels: compiled == twin, twin == direct definition, gradients, validation."""
import importlib

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import cynet.kernels as K
from cynet.testing import assert_twins_close, numerical_gradient

conv2d_forward = K.conv2d_forward
conv2d_backward = K.conv2d_backward
conv2d_output_shape = K.conv2d_output_shape


# ---------------------------------------------------------------------------------------------
# reference: direct definition on explicitly padded input, Keras's "same" split written out here


def keras_pads(padding, H, W, KH, KW, sh, sw, dh, dw):
    """((top, bottom), (left, right)) as Keras/TensorFlow define them."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        out = []
        for size, k, s, d in ((H, KH, sh, dh), (W, KW, sw, dw)):
            eff = (k - 1) * d + 1
            o = -(-size // s)  # ceil(size / stride)
            total = max((o - 1) * s + eff - size, 0)
            out.append((total // 2, total - total // 2))  # the odd cell goes bottom/right
        return tuple(out)
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    return tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)


def naive_conv(x, kernel, bias, strides, padding, dilation):
    """y[n, i, j, f] = sum_{a, b, c} xp[n, i*sh + a*dh, j*sw + b*dw, c] * kernel[a, b, c, f] + bias[f]."""
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    N, H, W, C = x.shape
    KH, KW, _, F = kernel.shape
    sh, sw = strides
    dh, dw = dilation
    (pt, pb), (pl, pr) = keras_pads(padding, H, W, KH, KW, sh, sw, dh, dw)
    xp = np.zeros((N, H + pt + pb, W + pl + pr, C))
    xp[:, pt:pt + H, pl:pl + W] = x
    OH = (H + pt + pb - (KH - 1) * dh - 1) // sh + 1
    OW = (W + pl + pr - (KW - 1) * dw - 1) // sw + 1
    y = np.zeros((N, OH, OW, F))
    for n in range(N):
        for i in range(OH):
            for j in range(OW):
                for f in range(F):
                    s = 0.0
                    for a in range(KH):
                        for b in range(KW):
                            for c in range(C):
                                s += xp[n, i * sh + a * dh, j * sw + b * dw, c] * kernel[a, b, c, f]
                    y[n, i, j, f] = s + (0.0 if bias is None else bias[f])
    return y


def ref_tol(dtype):
    return dict(rtol=1e-4, atol=1e-4) if np.dtype(dtype) == np.float32 else dict(rtol=1e-10, atol=1e-10)


def both_backends(fn):
    with K.use_backend("cython"):
        a = fn()
    with K.use_backend("numpy"):
        b = fn()
    return a, b


def data(rng, x_shape, k_shape, dtype=np.float64):
    x = rng.standard_normal(x_shape).astype(dtype)
    kernel = rng.standard_normal(k_shape).astype(dtype)
    bias = rng.standard_normal(k_shape[3]).astype(dtype)
    return x, kernel, bias


# (x shape, kernel shape, strides, padding, dilation)
CASES = [
    ((2, 5, 6, 3), (3, 3, 3, 4), (1, 1), "valid", (1, 1)),
    ((2, 5, 6, 3), (3, 3, 3, 4), (1, 1), "same", (1, 1)),
    ((2, 7, 6, 2), (2, 2, 2, 3), (1, 1), "same", (1, 1)),       # even kernel: odd pad cell after
    ((2, 7, 8, 2), (4, 2, 2, 3), (2, 3), "same", (1, 1)),       # even kernels, strides > 1
    ((1, 9, 7, 2), (3, 2, 2, 2), (3, 2), "same", (1, 1)),
    ((2, 9, 9, 2), (3, 3, 2, 2), (1, 1), "valid", (2, 2)),      # dilation
    ((2, 9, 8, 2), (2, 3, 2, 2), (2, 1), "same", (3, 2)),       # dilation + same + stride
    ((2, 9, 9, 2), (2, 2, 2, 3), (4, 3), "valid", (1, 1)),      # stride larger than kernel
    ((1, 5, 4, 3), (5, 4, 3, 2), (1, 1), "valid", (1, 1)),      # kernel equal to the input
    ((1, 4, 4, 1), (1, 1, 1, 1), (1, 1), "valid", (1, 1)),      # batch 1, 1x1
    ((3, 4, 5, 3), (1, 1, 3, 4), (1, 1), "valid", (1, 1)),      # 1x1 (patch matrix is x)
    ((3, 6, 5, 3), (1, 1, 3, 4), (2, 2), "same", (1, 1)),       # 1x1 strided
    ((2, 5, 6, 2), (3, 2, 2, 3), (1, 2), ((2, 0), (1, 3)), (1, 1)),  # asymmetric explicit padding
    ((2, 5, 6, 2), (3, 3, 2, 3), (2, 1), (1, 2), (1, 1)),       # (ph, pw)
    ((2, 4, 4, 2), (3, 3, 2, 1), (1, 1), 2, (1, 1)),            # int padding
]


# ---------------------------------------------------------------------------------------------
# forward against the direct definition


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-s{c[2]}-{c[3]}-d{c[4]}")
def test_forward_matches_direct_definition(backend, dtype, rng, case):
    x_shape, k_shape, strides, padding, dilation = case
    x, kernel, bias = data(rng, x_shape, k_shape, dtype)
    y = conv2d_forward(x, kernel, bias, strides=strides, padding=padding, dilation_rate=dilation)
    expected = naive_conv(x, kernel, bias, strides, padding, dilation)
    assert y.dtype == dtype
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, **ref_tol(dtype))
    assert y.shape == conv2d_output_shape(x.shape, k_shape[:2], strides, padding, dilation, filters=k_shape[3])


def test_hand_worked_case(backend):
    # 1 image 3x3x1, 2x2 kernel of ones except a 2, valid: each output is a window sum
    x = np.arange(9.0).reshape(1, 3, 3, 1)
    kernel = np.array([[1.0, 1.0], [1.0, 2.0]]).reshape(2, 2, 1, 1)
    y = conv2d_forward(x, kernel, np.array([0.5]))
    np.testing.assert_array_equal(y[0, :, :, 0], [[0 + 1 + 3 + 8 + 0.5, 1 + 2 + 4 + 10 + 0.5],
                                                   [3 + 4 + 6 + 14 + 0.5, 4 + 5 + 7 + 16 + 0.5]])
    # "same", 2x2 kernel, stride 1: Keras pads 0 on top/left and 1 on bottom/right
    y = conv2d_forward(x, kernel, padding="same")
    assert y.shape == (1, 3, 3, 1)
    assert y[0, 2, 2, 0] == 8.0  # window covers x[2, 2] and three padding zeros
    assert y[0, 0, 2, 0] == 2 + 5.0  # x[0, 2]*k[0, 0] + x[1, 2]*k[1, 0], the rest is padding


@pytest.mark.parametrize("H,W,k,s", [(7, 8, 2, 2), (7, 8, 4, 3), (5, 5, 2, 4), (6, 9, 3, 2), (1, 1, 2, 2)])
def test_same_output_is_ceil_of_input_over_stride(backend, rng, H, W, k, s):
    x, kernel, bias = data(rng, (2, H, W, 2), (k, k, 2, 3))
    y = conv2d_forward(x, kernel, bias, strides=s, padding="same")
    assert y.shape == (2, -(-H // s), -(-W // s), 3)
    np.testing.assert_allclose(y, naive_conv(x, kernel, bias, (s, s), "same", (1, 1)), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# backward: numerical gradients (float64) and cython == twin

GRAD_CASES = [
    ((2, 5, 5, 2), (3, 3, 2, 3), (1, 1), "same", (1, 1)),
    ((2, 6, 7, 2), (2, 2, 2, 2), (2, 2), "same", (1, 1)),
    ((1, 7, 6, 2), (2, 3, 2, 2), (2, 1), "valid", (2, 2)),
    ((2, 6, 6, 1), (2, 2, 1, 2), (3, 3), "valid", (1, 1)),      # stride > kernel: some x get no gradient
    ((2, 4, 5, 2), (3, 2, 2, 2), (1, 2), ((2, 0), (1, 3)), (1, 1)),
    ((1, 3, 4, 2), (3, 4, 2, 2), (1, 1), "valid", (1, 1)),      # kernel equal to the input
    ((2, 3, 3, 2), (1, 1, 2, 3), (1, 1), "valid", (1, 1)),      # 1x1
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: f"{c[0]}-{c[1]}-s{c[2]}-{c[3]}-d{c[4]}")
def test_gradients_match_central_differences(backend, rng, case):
    x_shape, k_shape, strides, padding, dilation = case
    x, kernel, bias = data(rng, x_shape, k_shape)
    kw = dict(strides=strides, padding=padding, dilation_rate=dilation)
    g = rng.standard_normal(conv2d_output_shape(x_shape, k_shape[:2], filters=k_shape[3], **kw))

    def loss():
        return float(np.sum(conv2d_forward(x, kernel, bias, **kw) * g))

    dx, dkernel, dbias = conv2d_backward(g, x, kernel, **kw)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dkernel, numerical_gradient(loss, kernel), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dbias, numerical_gradient(loss, bias), rtol=1e-6, atol=1e-7)


def test_gradients_channels_first_numerically(backend, rng):
    x = rng.standard_normal((2, 2, 5, 4))
    kernel = rng.standard_normal((2, 3, 2, 2))
    bias = rng.standard_normal(2)
    kw = dict(strides=(2, 1), padding="same", dilation_rate=(1, 1), data_format="channels_first")
    g = rng.standard_normal(conv2d_forward(x, kernel, bias, **kw).shape)

    def loss():
        return float(np.sum(conv2d_forward(x, kernel, bias, **kw) * g))

    dx, dkernel, dbias = conv2d_backward(g, x, kernel, **kw)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dkernel, numerical_gradient(loss, kernel), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dbias, numerical_gradient(loss, bias), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-s{c[2]}-{c[3]}-d{c[4]}")
def test_backends_agree_on_cases(dtype, rng, case):
    x_shape, k_shape, strides, padding, dilation = case
    x, kernel, bias = data(rng, x_shape, k_shape, dtype)
    kw = dict(strides=strides, padding=padding, dilation_rate=dilation)
    dy = rng.standard_normal(conv2d_output_shape(x_shape, k_shape[:2], filters=k_shape[3], **kw)).astype(dtype)
    yc, yn = both_backends(lambda: conv2d_forward(x, kernel, bias, **kw))
    assert yc.dtype == yn.dtype == dtype
    assert_twins_close(yc, yn, dtype)
    gc, gn = both_backends(lambda: conv2d_backward(dy, x, kernel, **kw))
    for a in gc:
        assert a.dtype == dtype
    assert_twins_close(gc, gn, dtype)


PADDINGS = st.one_of(
    st.sampled_from(["valid", "same"]),
    st.integers(0, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)), st.tuples(st.integers(0, 2), st.integers(0, 2))),
)


@given(
    N=st.integers(1, 3), H=st.integers(1, 9), W=st.integers(1, 9), C=st.integers(1, 4), F=st.integers(1, 4),
    KH=st.integers(1, 4), KW=st.integers(1, 4), sh=st.integers(1, 4), sw=st.integers(1, 4),
    dh=st.integers(1, 3), dw=st.integers(1, 3), padding=PADDINGS,
    data_format=st.sampled_from(["channels_last", "channels_first"]), use_bias=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16),
)
def test_backends_agree_randomised(N, H, W, C, F, KH, KW, sh, sw, dh, dw, padding, data_format, use_bias,
                                   dtype, seed):
    x_shape = (N, H, W, C) if data_format == "channels_last" else (N, C, H, W)
    kw = dict(strides=(sh, sw), padding=padding, dilation_rate=(dh, dw), data_format=data_format)
    try:
        out_shape = conv2d_output_shape(x_shape, (KH, KW), filters=F, **kw)
    except ValueError:
        assume(False)
    rng = np.random.default_rng(seed)
    x, kernel, bias = data(rng, x_shape, (KH, KW, C, F), dtype)
    bias = bias if use_bias else None
    dy = rng.standard_normal(out_shape).astype(dtype)
    yc, yn = both_backends(lambda: conv2d_forward(x, kernel, bias, **kw))
    assert yc.shape == out_shape
    assert_twins_close(yc, yn, dtype)
    gc, gn = both_backends(lambda: conv2d_backward(dy, x, kernel, use_bias=use_bias, **kw))
    assert gc[0].shape == x.shape and gc[1].shape == kernel.shape
    assert_twins_close(gc, gn, dtype)


def test_backends_agree_across_many_blocks(dtype, rng):
    # large enough that the compiled path works in several blocks that split images
    x, kernel, bias = data(rng, (20, 32, 30, 4), (3, 3, 4, 5), dtype)
    kw = dict(strides=(1, 1), padding="same")
    dy = rng.standard_normal((20, 32, 30, 5)).astype(dtype)
    assert_twins_close(*both_backends(lambda: conv2d_forward(x, kernel, bias, **kw)), dtype)
    (dxc, dkc, dbc), (dxn, dkn, dbn) = both_backends(lambda: conv2d_backward(dy, x, kernel, **kw))
    assert_twins_close(dxc, dxn, dtype)
    # dkernel and dbias sum 19,200 products each, in different orders: compare relative to their scale
    rtol, atol = (1e-5, 1e-5) if dtype == np.float32 else (1e-10, 1e-10)
    for a, b in ((dkc, dkn), (dbc, dbn)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * np.abs(b).max())


@pytest.mark.parametrize("threads", [1, 2])
def test_dbias_extreme_float32_matches_kernel(rng, threads):
    """dbias of float32 dy at extreme magnitudes. Filter 0: +-2**66 (~7e19) at the first and
    last positions around ~800 terms of 2**40 (~1e12); the kernel's sum is float64 (per-thread
    doubles), exact here, and so must the twin's be: a float32 running sum absorbs every 2**40
    into 2**66 and returns 0. Filters 1 and 2: values from 1e-20 to 1e20, and around 1e-20."""
    ext = pytest.importorskip("cynet._kernels.conv")
    old = ext._set_tuning(own_gemm=True, min_work=1 if threads > 1 else None)   # a team of `threads`
    if not ext._set_tuning()[4]:
        ext._set_tuning(*old)
        pytest.skip("this build has no team path (its BLAS path sums dbias per block in float32)")
    x, kernel, _ = data(rng, (4, 15, 14, 2), (3, 3, 2, 3), np.float32)
    dy = np.empty((4, 15, 14, 3), np.float32)
    dy[..., 0] = 2.0 ** 40
    dy[0, 0, 0, 0], dy[-1, -1, -1, 0] = 2.0 ** 66, -(2.0 ** 66)
    dy[..., 1] = rng.standard_normal(dy.shape[:3]) * 10.0 ** rng.uniform(-20, 20, dy.shape[:3])
    dy[..., 2] = rng.standard_normal(dy.shape[:3]) * 1e-20
    old_threads = K.get_num_threads()
    K.set_num_threads(threads)
    try:
        (dxc, dkc, dbc), (dxn, dkn, dbn) = both_backends(lambda: conv2d_backward(dy, x, kernel, padding="same"))
    finally:
        ext._set_tuning(*old)
        K.set_num_threads(old_threads)
    exact = (dy[..., 0].size - 2) * 2.0 ** 40
    assert dbc[0] == exact and dbn[0] == exact
    ref = dy.reshape(-1, 3).astype(np.float64).sum(axis=0)
    np.testing.assert_allclose(dbn[1:], dbc[1:], rtol=1e-6, atol=1e-7 * np.abs(dy[..., 1]).max())
    np.testing.assert_allclose(dbn[2], ref[2], rtol=1e-5)
    for a, b in ((dxc, dxn), (dkc, dkn)):    # float32 products in both, in different orders
        assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max())


@pytest.mark.parametrize("own_gemm", [False, True], ids=["blas", "team"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("tuning", [(1, 1, 1, 1), (200, 3, 1, 200), (5000, 64, 10, 9000)])
@pytest.mark.parametrize("batch", [1, 3])
def test_compiled_blocking_edges(rng, tuning, threads, own_gemm, batch):
    """Force tiny blocks (one output row, blocks splitting images) and threads on tiny work,
    on both product paths: NumPy's BLAS between OpenMP regions, and one team whose threads each
    own whole images (batch 1: fewer images than threads; 3: an uneven split)."""
    try:
        ext = importlib.import_module("cynet._kernels.conv")
    except ImportError:
        pytest.skip("compiled conv module not built")
    twin = importlib.import_module("cynet._kernels.conv_numpy")
    old = ext._set_tuning(*tuning, own_gemm=own_gemm)
    if own_gemm and not ext._set_tuning()[4]:
        ext._set_tuning(*old)
        pytest.skip("this build has no vector kernels for the team path")
    old_threads = K.get_num_threads()
    K.set_num_threads(threads)
    try:
        for x_shape, k_shape, strides, padding, dilation in CASES:
            x, kernel, bias = data(rng, (batch,) + x_shape[1:], k_shape)
            N, H, W, _ = x.shape
            (pt, pb), (pl, pr) = keras_pads(padding, H, W, k_shape[0], k_shape[1], *strides, *dilation)
            args = (pt, pb, pl, pr, *strides, *dilation)
            y = ext.conv2d_forward(x, kernel, bias, *args)
            assert_twins_close(y, twin.conv2d_forward(x, kernel, bias, *args), np.float64)
            dy = rng.standard_normal(y.shape)
            assert_twins_close(ext.conv2d_backward(dy, x, kernel, *args, True, True),
                               twin.conv2d_backward(dy, x, kernel, *args, True, True), np.float64)
            dx, dk, db = ext.conv2d_backward(dy, x, kernel, *args, False, False)
            assert dx is None and db is None
            assert_twins_close(dk, twin.conv2d_backward(dy, x, kernel, *args, False, False)[1], np.float64)
    finally:
        ext._set_tuning(*old)
        K.set_num_threads(old_threads)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("F, C", [(8, 8), (16, 3), (24, 16), (32, 1), (40, 5), (64, 32)])
def test_compiled_team_products_every_tile_width(rng, F, C, dtype):
    """The team path's products at filter counts that take every tile of cynet_gemm.h's row
    scheme (two vectors, one wide, narrow ones, the zero-padded tail) and patch widths K = 9C
    on both sides of a vector, on 1 and 2 threads, against the twin."""
    ext = pytest.importorskip("cynet._kernels.conv")
    twin = importlib.import_module("cynet._kernels.conv_numpy")
    x, kernel, bias = data(rng, (3, 7, 6, C), (3, 3, C, F), dtype)
    args = (1, 1, 1, 1, 1, 1, 1, 1)
    dy = rng.standard_normal((3, 7, 6, F)).astype(dtype)
    old = ext._set_tuning(own_gemm=True)
    old_threads = K.get_num_threads()
    try:
        for threads in (1, 2):
            K.set_num_threads(threads)
            assert_twins_close(ext.conv2d_forward(x, kernel, bias, *args),
                               twin.conv2d_forward(x, kernel, bias, *args), dtype)
            got = ext.conv2d_backward(dy, x, kernel, *args, True, True)
            want = twin.conv2d_backward(dy, x, kernel, *args, True, True)
            for a, b in zip(got, want):
                assert a.dtype == dtype
                np.testing.assert_allclose(a, b, rtol=1e-4 if dtype == np.float32 else 1e-10,
                                           atol=(1e-4 if dtype == np.float32 else 1e-10) * np.abs(b).max())
    finally:
        ext._set_tuning(*old)
        K.set_num_threads(old_threads)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("W, C, KW, F, pl, pr", [
    (9, 3, 3, 4, 1, 1), (7, 5, 5, 2, 2, 2), (5, 2, 1, 3, 0, 0), (6, 3, 4, 17, 3, 0), (4, 1, 5, 1, 4, 4),
    (3, 2, 3, 2, 0, 2), (11, 16, 3, 33, 0, 0), (2, 3, 5, 8, 4, 3),
    (6, 2, 3, 4, 3, 0), (6, 2, 2, 4, 0, 2)])   # (the last two: a padding over KW - 1, the 2-D path)
def test_compiled_1d_path_matches_twin(rng, dtype, W, C, KW, F, pl, pr):
    """Height-1 convolutions with stride and dilation 1 (Conv1D's view; "same", "valid" and
    "causal" paddings) run the 1-D path: the padded rows read in place as the patch matrix,
    the input gradient a product with the flipped kernel. Against the twin, on 1 and 2 threads,
    with and without dx and bias."""
    ext = pytest.importorskip("cynet._kernels.conv")
    twin = importlib.import_module("cynet._kernels.conv_numpy")
    x, kernel, bias = data(rng, (3, 1, W, C), (1, KW, C, F), dtype)
    args = (0, 0, pl, pr, 1, 1, 1, 1)
    OW = W + pl + pr - KW + 1
    dy = rng.standard_normal((3, 1, OW, F)).astype(dtype)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    old_threads = K.get_num_threads()
    try:
        for threads in (1, 2):
            K.set_num_threads(threads)
            assert_twins_close(ext.conv2d_forward(x, kernel, bias, *args),
                               twin.conv2d_forward(x, kernel, bias, *args), dtype)
            for use_bias, compute_dx in ((True, True), (False, False), (True, False)):
                got = ext.conv2d_backward(dy, x, kernel, *args, use_bias, compute_dx)
                want = twin.conv2d_backward(dy, x, kernel, *args, use_bias, compute_dx)
                for a, b in zip(got, want):
                    assert (a is None) == (b is None)
                    if b is not None:
                        assert a.dtype == dtype and a.shape == b.shape
                        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, np.abs(b).max()))
    finally:
        K.set_num_threads(old_threads)


def test_compiled_team_leaves_batches_smaller_than_the_team_to_the_blas(rng):
    """A team owns whole images: with fewer images than threads the BLAS path runs instead
    (bit-identical to forcing it), so no thread idles on a batch of one."""
    ext = pytest.importorskip("cynet._kernels.conv")
    x, kernel, bias = data(rng, (1, 9, 8, 3), (3, 3, 3, 16), np.float32)
    dy = rng.standard_normal((1, 9, 8, 16)).astype(np.float32)
    args = (1, 1, 1, 1, 1, 1, 1, 1)
    old = ext._set_tuning(min_work=1)
    old_threads = K.get_num_threads()
    K.set_num_threads(2)
    try:
        if K.get_num_threads() < 2:
            pytest.skip("a serial build (no OpenMP) runs every team on one thread")
        runs = []
        for own in (True, False):
            ext._set_tuning(own_gemm=own)
            runs.append((ext.conv2d_forward(x, kernel, bias, *args),)
                        + ext.conv2d_backward(dy, x, kernel, *args, True, True))
        for a, b in zip(*runs):
            np.testing.assert_array_equal(a, b)
    finally:
        ext._set_tuning(*old)
        K.set_num_threads(old_threads)


def test_compiled_products_run_in_one_team_by_default():
    """On GCC builds (Linux, the wheels and CI) the convolution's products run on cynet_gemm.h
    inside the OpenMP team, not on NumPy's BLAS between regions."""
    ext = pytest.importorskip("cynet._kernels.conv")
    import sys
    if sys.platform != "linux":
        pytest.skip("the team path is only asserted for GCC builds")
    assert ext._set_tuning()[4] is True


# ---------------------------------------------------------------------------------------------
# im2col / col2im helpers (low level, same in both modules)


@pytest.mark.parametrize("case", CASES[:9], ids=lambda c: f"{c[0]}-{c[1]}-s{c[2]}-{c[3]}-d{c[4]}")
def test_im2col_col2im_agree_and_are_adjoint(rng, case):
    x_shape, k_shape, strides, padding, dilation = case
    N, H, W, C = x_shape
    KH, KW = k_shape[:2]
    (pt, pb), (pl, pr) = keras_pads(padding, H, W, KH, KW, *strides, *dilation)
    geo = (pt, pb, pl, pr, *strides, *dilation)
    x = rng.standard_normal(x_shape)
    twin = importlib.import_module("cynet._kernels.conv_numpy")
    mods = [twin]
    try:
        mods.append(importlib.import_module("cynet._kernels.conv"))
    except ImportError:
        pass
    cols = [m.im2col(x, KH, KW, *geo) for m in mods]
    c = rng.standard_normal(cols[0].shape)
    backs = [m.col2im(c, N, H, W, C, KH, KW, *geo) for m in mods]
    for a, b in zip(cols[1:], backs[1:]):
        assert_twins_close(a, cols[0], np.float64)
        assert_twins_close(b, backs[0], np.float64)
    # <im2col(x), c> == <x, col2im(c)>
    np.testing.assert_allclose(np.sum(cols[0] * c), np.sum(x * backs[0]), rtol=1e-12)
    assert cols[0].flags.writeable


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seg", range(1, 19))
@pytest.mark.parametrize("along", ["channels", "width"])
def test_im2col_copies_every_window_row_length(rng, seg, along, dtype):
    """The compiled im2col copies a window row of KW*C elements in size classes (1, 2-3, 4-7,
    8-15, 16+; the short ones as two overlapping fixed-size copies): exact for each length, in
    the interior windows (one copy per window row) and at the padded edges (one per pixel)."""
    conv = pytest.importorskip("cynet._kernels.conv")
    twin = importlib.import_module("cynet._kernels.conv_numpy")
    KW, C = (1, seg) if along == "channels" else (seg, 1)
    x = rng.standard_normal((2, 4, seg + 5, C)).astype(dtype)
    for geo in ((0, 0, 0, 0, 1, 1, 1, 1), (1, 1, 2, 1, 1, 2, 1, 1)):
        got = conv.im2col(x, 2, KW, *geo)
        np.testing.assert_array_equal(got, twin.im2col(x, 2, KW, *geo))
        assert got.dtype == dtype


# ---------------------------------------------------------------------------------------------
# layouts and options


def test_channels_first_equals_transposed_channels_last(backend, dtype, rng):
    x, kernel, bias = data(rng, (2, 7, 6, 3), (3, 2, 3, 4), dtype)
    kw = dict(strides=(2, 1), padding="same", dilation_rate=(1, 2))
    y_last = conv2d_forward(x, kernel, bias, **kw)
    x_first = x.transpose(0, 3, 1, 2)
    y_first = conv2d_forward(x_first, kernel, bias, data_format="channels_first", **kw)
    assert y_first.flags.c_contiguous
    np.testing.assert_array_equal(y_first, y_last.transpose(0, 3, 1, 2))
    dy = rng.standard_normal(y_last.shape).astype(dtype)
    g_last = conv2d_backward(dy, x, kernel, **kw)
    g_first = conv2d_backward(dy.transpose(0, 3, 1, 2), x_first, kernel, data_format="channels_first", **kw)
    np.testing.assert_array_equal(g_first[0], g_last[0].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(g_first[1], g_last[1])
    np.testing.assert_array_equal(g_first[2], g_last[2])


def test_compute_dx_false_and_use_bias_false(backend, dtype, rng):
    x, kernel, _ = data(rng, (2, 6, 5, 3), (3, 3, 3, 2), dtype)
    dy = rng.standard_normal((2, 3, 3, 2)).astype(dtype)
    kw = dict(strides=2, padding="same")
    dx, dk, db = conv2d_backward(dy, x, kernel, **kw)
    dx2, dk2, db2 = conv2d_backward(dy, x, kernel, compute_dx=False, **kw)
    assert dx2 is None
    np.testing.assert_array_equal(dk2, dk)
    np.testing.assert_array_equal(db2, db)
    dx3, dk3, db3 = conv2d_backward(dy, x, kernel, use_bias=False, **kw)
    assert db3 is None
    np.testing.assert_array_equal(dx3, dx)
    np.testing.assert_array_equal(dk3, dk)
    dx4, dk4, db4 = conv2d_backward(dy, x, kernel, use_bias=False, compute_dx=False, **kw)
    assert dx4 is None and db4 is None
    np.testing.assert_array_equal(dk4, dk)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 1, 2)), **ref_tol(dtype))
    # without bias the forward is the same as with a zero bias
    np.testing.assert_array_equal(conv2d_forward(x, kernel, None, **kw),
                                  conv2d_forward(x, kernel, np.zeros(2, dtype), **kw))


def test_dtypes_and_conversions(backend, rng):
    x = rng.integers(-3, 4, size=(2, 5, 5, 2))
    kernel = rng.integers(-2, 3, size=(3, 3, 2, 2))
    y = conv2d_forward(x, kernel)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, naive_conv(x, kernel, None, (1, 1), "valid", (1, 1)), rtol=1e-6)
    yb = conv2d_forward(x > 0, kernel.astype(np.float32))
    assert yb.dtype == np.float32
    np.testing.assert_allclose(yb, naive_conv(x > 0, kernel, None, (1, 1), "valid", (1, 1)), rtol=1e-6)
    # float64 anywhere -> float64 result
    y64 = conv2d_forward(x.astype(np.float32), kernel.astype(np.float64))
    assert y64.dtype == np.float64
    dy = np.ones(y.shape, np.float32)
    grads = conv2d_backward(dy, x.astype(np.float16), kernel.astype(np.float32))
    assert all(g.dtype == np.float32 for g in grads)
    # lists work
    assert conv2d_forward(x.tolist(), kernel.tolist()).shape == y.shape


def test_noncontiguous_and_reversed_views(backend, rng):
    big = rng.standard_normal((3, 10, 12, 6))
    x = big[::-1, 1::2, ::-1, ::2]            # strided, reversed view
    kbig = rng.standard_normal((3, 3, 6, 8))
    kernel = kbig[::-1, :, ::2, ::2]
    bias = rng.standard_normal(8)[::2]
    kw = dict(strides=(1, 2), padding="same")
    y = conv2d_forward(x, kernel, bias, **kw)
    np.testing.assert_allclose(y, naive_conv(x, kernel, bias, (1, 2), "same", (1, 1)), rtol=1e-10, atol=1e-10)
    dy = rng.standard_normal((y.shape[0], y.shape[1], 2 * y.shape[2], y.shape[3]))[:, :, ::2]
    got = conv2d_backward(dy, x, kernel, **kw)
    want = conv2d_backward(np.ascontiguousarray(dy), np.ascontiguousarray(x), np.ascontiguousarray(kernel), **kw)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    # the inputs are not modified
    assert np.array_equal(x, big[::-1, 1::2, ::-1, ::2])


def test_nan_propagates(backend, rng):
    x, kernel, bias = data(rng, (2, 5, 5, 2), (3, 3, 2, 2))
    x[0, 2, 2, 1] = np.nan
    y = conv2d_forward(x, kernel, bias, padding="same")
    assert np.isnan(y[0, 1:4, 1:4]).all()
    assert np.isfinite(y[1]).all()
    assert np.isfinite(y[0, 0]).all()
    dx, dk, db = conv2d_backward(np.ones_like(y), x, kernel, padding="same")
    assert np.isnan(dk).any() and np.isfinite(dx).all() and np.isfinite(db).all()


# ---------------------------------------------------------------------------------------------
# conv2d_output_shape


def test_output_shape_helper():
    assert conv2d_output_shape((None, 28, 28, 1), 5, filters=32) == (None, 24, 24, 32)
    assert conv2d_output_shape((None, 28, 28, 1), (6, 6), strides=2, filters=32) == (None, 12, 12, 32)
    assert conv2d_output_shape((4, 7, 8, 3), 3, strides=2, padding="same", filters=5) == (4, 4, 4, 5)
    assert conv2d_output_shape((4, 3, 7, 8), (2, 4), strides=(2, 3), padding="same", filters=5,
                               data_format="channels_first") == (4, 5, 4, 3)
    assert conv2d_output_shape((1, 9, 9, 2), 3, dilation_rate=3) == (1, 3, 3, 2)  # filters=None keeps C
    assert conv2d_output_shape((None, None, 10, 3), 3, padding=((1, 0), (2, 2)), filters=4) == (None, None, 12, 4)
    assert conv2d_output_shape((2, 5, 5, 1), 5) == (2, 1, 1, 1)
    with pytest.raises(ValueError, match="kernel height"):
        conv2d_output_shape((2, 5, 5, 1), (6, 1))
    with pytest.raises(ValueError, match="kernel width"):
        conv2d_output_shape((2, 5, 5, 1), 3, dilation_rate=(1, 3))
    with pytest.raises(ValueError, match="input_shape"):
        conv2d_output_shape((5, 5, 1), 3)
    with pytest.raises(ValueError, match="input_shape"):
        conv2d_output_shape((2, -1, 5, 1), 3)
    with pytest.raises(ValueError, match="kernel_size"):
        conv2d_output_shape((2, 5, 5, 1), 0)
    with pytest.raises(ValueError, match="filters"):
        conv2d_output_shape((2, 5, 5, 1), 3, filters=0)
    with pytest.raises(ValueError, match="padding"):
        conv2d_output_shape((2, None, 5, 1), 3, padding="full")


# ---------------------------------------------------------------------------------------------
# validation errors, on both backends


def _ok():
    rng = np.random.default_rng(0)
    return rng.standard_normal((2, 5, 5, 3)), rng.standard_normal((3, 3, 3, 4)), np.zeros(4)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda x, k, b: conv2d_forward(x[0], k), ValueError, "x must be 4-dimensional"),
        (lambda x, k, b: conv2d_forward(x, k[0]), ValueError, "kernel must be 4-dimensional"),
        (lambda x, k, b: conv2d_forward(x, k[:, :, :2]), ValueError, r"kernel must have shape \(KH, KW, 3, F\)"),
        (lambda x, k, b: conv2d_forward(x, k, data_format="channels_first"), ValueError, "kernel must have shape"),
        (lambda x, k, b: conv2d_forward(x, k, np.zeros(3)), ValueError, r"bias must have shape \(4,\)"),
        (lambda x, k, b: conv2d_forward(x, k, np.zeros((4, 1))), ValueError, "bias must have shape"),
        (lambda x, k, b: conv2d_forward(x, np.zeros((6, 3, 3, 4))), ValueError, "kernel height"),
        (lambda x, k, b: conv2d_forward(x, k, dilation_rate=(1, 3)), ValueError, "kernel width"),
        (lambda x, k, b: conv2d_forward(x, k, strides=0), ValueError, "strides"),
        (lambda x, k, b: conv2d_forward(x, k, strides=(1, -2)), ValueError, "strides"),
        (lambda x, k, b: conv2d_forward(x, k, strides=(1, 2, 3)), ValueError, "strides"),
        (lambda x, k, b: conv2d_forward(x, k, dilation_rate=0), ValueError, "dilation_rate"),
        (lambda x, k, b: conv2d_forward(x, k, padding="full"), ValueError, "padding"),
        (lambda x, k, b: conv2d_forward(x, k, padding=-1), ValueError, "padding"),
        (lambda x, k, b: conv2d_forward(x, k, padding=(1, 2, 3)), ValueError, "padding"),
        (lambda x, k, b: conv2d_forward(x, k, data_format="NHWC"), ValueError, "data_format"),
        (lambda x, k, b: conv2d_forward(x[:0], k), ValueError, "x must not be empty"),
        (lambda x, k, b: conv2d_forward(x, k[..., :0]), ValueError, "kernel must not be empty"),
        (lambda x, k, b: conv2d_forward(x.astype(complex), k), TypeError, "x must be a real numeric"),
        (lambda x, k, b: conv2d_forward(x, k.astype(object)), TypeError, "kernel must be a real numeric"),
        (lambda x, k, b: conv2d_forward(x, k, np.array(["a"] * 4)), TypeError, "bias must be a real numeric"),
        (lambda x, k, b: conv2d_backward(np.zeros((2, 3, 3, 5)), x, k), ValueError, r"dy must have shape \(2, 3, 3, 4\)"),
        (lambda x, k, b: conv2d_backward(np.zeros((2, 3, 3)), x, k), ValueError, "dy must be 4-dimensional"),
        (lambda x, k, b: conv2d_backward(np.zeros((2, 3, 3, 4)), x, k, padding="same"), ValueError, "dy must have shape"),
        (lambda x, k, b: conv2d_backward(np.zeros((2, 3, 3, 4), complex), x, k), TypeError, "dy must be a real"),
        (lambda x, k, b: conv2d_backward(np.zeros((2, 3, 3, 4)), x[..., :2], k), ValueError, "kernel must have shape"),
        (lambda x, k, b: conv2d_backward(np.zeros((2, 3, 3, 4)), x, k, strides=0), ValueError, "strides"),
        (lambda x, k, b: conv2d_backward(np.zeros((2, 1, 1, 4)), x, k, dilation_rate=3), ValueError, "kernel height"),
    ],
)
def test_validation_errors(backend, call, exc, match):
    x, k, b = _ok()
    with pytest.raises(exc, match=match):
        call(x, k, b)


def _low_level_modules():
    mods = [importlib.import_module("cynet._kernels.conv_numpy")]
    try:
        mods.append(importlib.import_module("cynet._kernels.conv"))
    except ImportError:
        pass
    return mods


def test_low_level_functions_reject_bad_input():
    """The implementation modules are safe when called directly with inconsistent arguments."""
    x, k, b = _ok()
    geo = (1, 1, 1, 1, 1, 1, 1, 1)
    dy = np.zeros((2, 5, 5, 4))
    for m in _low_level_modules():
        with pytest.raises(ValueError, match="kernel"):
            m.conv2d_forward(x, np.zeros((3, 3, 2, 4)), None, *geo)
        with pytest.raises(ValueError, match="bias"):
            m.conv2d_forward(x, k, np.zeros(5), *geo)
        with pytest.raises(ValueError, match="window"):
            m.conv2d_forward(x, np.zeros((9, 3, 3, 4)), None, *geo)
        with pytest.raises(ValueError, match="pt"):
            m.conv2d_forward(x, k, None, -1, 1, 1, 1, 1, 1, 1, 1)
        with pytest.raises(ValueError, match="sh"):
            m.conv2d_forward(x, k, None, 1, 1, 1, 1, 0, 1, 1, 1)
        with pytest.raises(ValueError, match="dw"):
            m.conv2d_forward(x, k, None, 1, 1, 1, 1, 1, 1, 1, 0)
        with pytest.raises(ValueError, match="N"):
            m.conv2d_forward(x[:0], k, None, *geo)
        with pytest.raises(ValueError, match="dy"):
            m.conv2d_backward(np.zeros((2, 4, 5, 4)), x, k, *geo, True, True)
        with pytest.raises(ValueError, match="cols"):
            m.col2im(np.zeros((10, 27)), 2, 5, 5, 3, 3, 3, *geo)
        with pytest.raises((TypeError, ValueError)):
            m.conv2d_forward(x.astype(np.float32), k, None, *geo)  # mixed dtypes
        with pytest.raises((TypeError, ValueError)):
            m.conv2d_forward(x[..., ::2], k[:, :, :2], None, *geo)  # not C-contiguous / wrong layout
        with pytest.raises((TypeError, ValueError)):
            m.conv2d_forward(x.astype(np.int64), k.astype(np.int64), None, *geo)
