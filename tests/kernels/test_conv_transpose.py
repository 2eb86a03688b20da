"""Transposed 2-D convolution kernels (conv2d_transpose_forward / _backward / _output_shape):
compiled == twin (float32 and float64, both product paths, tiny blocks, 1 and 2 threads),
twin == a direct scatter-add definition, gradients == central differences, the adjoint identity
with conv2d_forward, Keras's output sizes, and validation."""
import importlib
import itertools

import numpy as np
import pytest

import cynet.kernels as K
from cynet.testing import assert_twins_close, numerical_gradient

# x shape (N, H, W, C), kernel (KH, KW, F, C), strides, padding, output_padding, dilation
CASES = [
    ((2, 4, 5, 3), (3, 3, 4, 3), (1, 1), "valid", None, (1, 1)),
    ((2, 4, 5, 3), (3, 3, 4, 3), (2, 2), "same", None, (1, 1)),
    ((2, 4, 5, 3), (3, 2, 2, 3), (2, 3), "same", (1, 2), (1, 1)),
    ((1, 3, 4, 2), (4, 4, 3, 2), (2, 2), "valid", 1, (1, 1)),
    ((2, 5, 3, 2), (2, 3, 2, 2), (1, 1), "same", 0, (2, 1)),
    ((2, 3, 3, 4), (1, 1, 5, 4), (1, 1), "valid", None, (1, 1)),
    ((3, 2, 6, 1), (5, 1, 2, 1), (3, 1), "valid", (2, 0), (1, 1)),
    ((2, 4, 4, 3), (3, 3, 2, 3), (2, 2), "same", (0, 1), (2, 2)),   # strides and dilation together
]
IDS = [f"case{i}" for i in range(len(CASES))]


def direct(x, kernel, bias, strides, padding, output_padding, dilation):
    """The transposed convolution by its definition (JAX's/TensorFlow's): dilate x by the
    strides, pad it by (ek - 1 - crop_before) on each side and correlate with the flipped kernel,
    written as a scatter-add: x[n, i, j] lands at (i*sh + a*dh - pt, j*sw + b*dw - pl)."""
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    N, H, W, C = x.shape
    KH, KW, F, _ = kernel.shape
    sh, sw = strides
    dh, dw = dilation
    op = (None, None) if output_padding is None else (
        (output_padding,) * 2 if isinstance(output_padding, int) else output_padding)
    sizes, before = [], []
    for size, k, s, d, o in ((H, KH, sh, dh, op[0]), (W, KW, sw, dw, op[1])):
        ek = (k - 1) * d + 1
        if padding == "valid":
            sizes.append((size - 1) * s + ek + (max(ek, s) - ek if o is None else o))
            left = ek - 1
        else:
            pad_len = s + ek - 2 if o is None else ek + ek % 2 - 2 + o
            sizes.append(size * s if o is None else (size - 1) * s + ek % 2 + o)
            left = min(pad_len // 2 + pad_len % 2, ek - 1)
        before.append(ek - 1 - left)
    OH, OW = sizes
    pt, pl = before
    y = np.zeros((N, OH, OW, F))
    for i, j, a, b in itertools.product(range(H), range(W), range(KH), range(KW)):
        o, p = i * sh + a * dh - pt, j * sw + b * dw - pl
        if 0 <= o < OH and 0 <= p < OW:
            y[:, o, p, :] += x[:, i, j, :] @ kernel[a, b].T
    return y + (0 if bias is None else bias)


def data(rng, x_shape, k_shape, dtype=np.float64):
    return (rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(k_shape).astype(dtype),
            rng.standard_normal(k_shape[2]).astype(dtype))


def layout(strides, padding, output_padding, dilation):
    return dict(strides=strides, padding=padding, output_padding=output_padding, dilation_rate=dilation)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_direct_definition(backend, dtype, rng, case):
    x_shape, k_shape, *geo = case
    x, kernel, bias = data(rng, x_shape, k_shape, dtype)
    y = K.conv2d_transpose_forward(x, kernel, bias, **layout(*geo))
    ref = direct(x, kernel, bias, *geo)
    assert y.dtype == dtype and y.shape == ref.shape
    assert y.shape == K.conv2d_transpose_output_shape(x.shape, k_shape[:2], k_shape[2], **layout(*geo))
    rtol = 1e-12 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(y, ref, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients_match_central_differences(backend, rng, case):
    x_shape, k_shape, *geo = case
    x, kernel, bias = data(rng, x_shape, k_shape)
    kw = layout(*geo)
    dy = rng.standard_normal(K.conv2d_transpose_output_shape(x.shape, k_shape[:2], k_shape[2], **kw))

    def loss():
        return float(np.sum(K.conv2d_transpose_forward(x, kernel, bias, **kw) * dy))

    dx, dk, db = K.conv2d_transpose_backward(dy, x, kernel, **kw)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dk, numerical_gradient(loss, kernel), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numerical_gradient(loss, bias), rtol=1e-6, atol=1e-7)
    none = K.conv2d_transpose_backward(dy, x, kernel, use_bias=False, compute_dx=False, **kw)
    assert none[0] is None and none[2] is None
    np.testing.assert_allclose(none[1], dk, rtol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backends_agree(dtype, rng, case):
    x_shape, k_shape, *geo = case
    x, kernel, bias = data(rng, x_shape, k_shape, dtype)
    kw = layout(*geo)
    out = {}
    for name in ("cython", "numpy"):
        with K.use_backend(name):
            y = K.conv2d_transpose_forward(x, kernel, bias, **kw)
            dy = np.random.default_rng(5).standard_normal(y.shape).astype(dtype)
            out[name] = (y,) + K.conv2d_transpose_backward(dy, x, kernel, **kw)
    assert_twins_close(out["cython"], out["numpy"], dtype)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_adjoint_of_conv2d_forward(backend, rng, case):
    """<conv2d_transpose(x), y> == <x, conv2d(y)> for the convolution whose input gradient it is
    (valid padding with the pads the twin derives), and its backward's dx is that convolution."""
    x_shape, k_shape, *geo = case
    x, kernel, _ = data(rng, x_shape, k_shape)
    kw = layout(*geo)
    y = K.conv2d_transpose_forward(x, kernel, **kw)
    dy = rng.standard_normal(y.shape)
    dx = K.conv2d_transpose_backward(dy, x, kernel, use_bias=False, **kw)[0]
    np.testing.assert_allclose(np.sum(y * dy), np.sum(x * dx), rtol=1e-10)


@pytest.mark.parametrize("own_gemm", [False, True], ids=["blas", "team"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("tuning", [(1, 1, 1, 1), (5000, 64, 10, 9000)])
@pytest.mark.parametrize("batch", [1, 3])
def test_compiled_paths_and_blocking_edges(rng, tuning, threads, own_gemm, batch):
    """Both product paths of the compiled module (the team, and the BLAS between OpenMP regions
    that batches smaller than the team take), tiny blocks, 1 and 2 threads: equal to the twin."""
    ext = pytest.importorskip("cynet._kernels.conv")
    old = ext._set_tuning(*tuning, own_gemm=own_gemm)
    old_threads = K.get_num_threads()
    K.set_num_threads(threads)
    try:
        for x_shape, k_shape, *geo in CASES:
            x, kernel, bias = data(rng, (batch,) + x_shape[1:], k_shape)
            kw = layout(*geo)
            with K.use_backend("cython"):
                y = K.conv2d_transpose_forward(x, kernel, bias, **kw)
                dy = rng.standard_normal(y.shape)
                got = (y,) + K.conv2d_transpose_backward(dy, x, kernel, **kw)
            with K.use_backend("numpy"):
                want = (K.conv2d_transpose_forward(x, kernel, bias, **kw),) + K.conv2d_transpose_backward(
                    dy, x, kernel, **kw)
            assert_twins_close(got, want, np.float64)
    finally:
        ext._set_tuning(*old)
        K.set_num_threads(old_threads)


def test_channels_first_equals_transposed_channels_last(backend, rng):
    x, kernel, bias = data(rng, (2, 4, 5, 3), (3, 3, 4, 3))
    kw = layout((2, 2), "same", None, (1, 1))
    y = K.conv2d_transpose_forward(x, kernel, bias, **kw)
    xf = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    yf = K.conv2d_transpose_forward(xf, kernel, bias, data_format="channels_first", **kw)
    np.testing.assert_allclose(yf, y.transpose(0, 3, 1, 2), rtol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx, dk, db = K.conv2d_transpose_backward(dy, x, kernel, **kw)
    dxf, dkf, dbf = K.conv2d_transpose_backward(dy.transpose(0, 3, 1, 2), xf, kernel,
                                                data_format="channels_first", **kw)
    np.testing.assert_allclose(dxf, dx.transpose(0, 3, 1, 2), rtol=1e-12)
    np.testing.assert_allclose(dkf, dk, rtol=1e-12)
    np.testing.assert_allclose(dbf, db, rtol=1e-12)


def test_dtypes_views_and_lists(backend, rng):
    x, kernel, bias = data(rng, (2, 3, 4, 2), (2, 2, 3, 2), np.float32)
    y = K.conv2d_transpose_forward(x, kernel, bias, strides=2)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(K.conv2d_transpose_forward(x.tolist(), kernel, bias, strides=2).astype(np.float32)
                                  .shape, y.shape)
    big = np.zeros((2, 6, 8, 2), np.float32)
    big[:, ::2, ::2] = x
    np.testing.assert_allclose(K.conv2d_transpose_forward(big[:, ::2, ::2], kernel, bias, strides=2), y, rtol=1e-6)
    assert K.conv2d_transpose_forward(x.astype(np.float64), kernel, bias, strides=2).dtype == np.float64


@pytest.mark.parametrize("H, k, s, padding, op, expected", [
    (4, 3, 1, "valid", None, 6), (4, 3, 2, "valid", None, 9), (4, 1, 3, "valid", None, 12),
    (4, 3, 2, "valid", 1, 10), (4, 3, 2, "same", None, 8), (4, 4, 2, "same", None, 8),
    (4, 3, 2, "same", 0, 7), (4, 3, 2, "same", 1, 8), (4, 4, 3, "same", 2, 11), (None, 3, 2, "same", None, None),
])
def test_output_shape_follows_keras(H, k, s, padding, op, expected):
    shape = K.conv2d_transpose_output_shape((5, H, H, 2), k, 7, strides=s, padding=padding, output_padding=op)
    assert shape == (5, expected, expected, 7)
    assert K.conv2d_transpose_output_shape((5, 2, H, H), k, 7, strides=s, padding=padding, output_padding=op,
                                           data_format="channels_first") == (5, 7, expected, expected)


@pytest.mark.parametrize("call, exc, match", [
    (lambda x, k: K.conv2d_transpose_forward(x, k, padding="causal"), ValueError, "padding"),
    (lambda x, k: K.conv2d_transpose_forward(x, k, padding=1), ValueError, "padding"),
    (lambda x, k: K.conv2d_transpose_forward(x, k, strides=2, output_padding=2), ValueError, "output_padding"),
    (lambda x, k: K.conv2d_transpose_forward(x, k, output_padding=-1), ValueError, "output_padding"),
    (lambda x, k: K.conv2d_transpose_forward(x, k, output_padding=(0, 0, 0)), ValueError, "output_padding"),
    (lambda x, k: K.conv2d_transpose_forward(x, k[..., :1]), ValueError, "kernel"),
    (lambda x, k: K.conv2d_transpose_forward(x, k, np.zeros(3)), ValueError, "bias"),
    (lambda x, k: K.conv2d_transpose_forward(x[0], k), ValueError, "x"),
    (lambda x, k: K.conv2d_transpose_forward(x, k, strides=0), ValueError, "strides"),
    (lambda x, k: K.conv2d_transpose_forward(x, k, dilation_rate=(1, 0)), ValueError, "dilation_rate"),
    (lambda x, k: K.conv2d_transpose_forward(x.astype(complex), k), TypeError, "x"),
    (lambda x, k: K.conv2d_transpose_backward(np.zeros((2, 5, 5, 4)), x, k), ValueError, "dy"),
    (lambda x, k: K.conv2d_transpose_backward(np.zeros((2, 5, 6, 4)), x, k, use_bias=2), TypeError, "use_bias"),
    (lambda x, k: K.conv2d_transpose_output_shape((2, 1, 1, 3), 2, 4, padding="same", output_padding=0),
     ValueError, "empty"),
    (lambda x, k: K.conv2d_transpose_output_shape((2, 3, 3, 3), 2, 0), ValueError, "filters"),
])
def test_validation_errors(backend, rng, call, exc, match):
    x, kernel, _ = data(rng, (2, 3, 4, 3), (3, 3, 4, 3))
    with pytest.raises(exc, match=match):
        call(x, kernel)


def test_low_level_functions_reject_bad_geometry(rng):
    """The compiled functions and the twin refuse geometry that does not map the output onto x."""
    x, kernel, bias = data(rng, (2, 3, 4, 3), (3, 3, 4, 3))
    mods = [importlib.import_module("cynet._kernels.conv_numpy")]
    try:
        mods.append(importlib.import_module("cynet._kernels.conv"))
    except ImportError:
        pass
    for mod in mods:
        with pytest.raises(ValueError, match="spatial size"):
            mod.conv2d_transpose_forward(x, kernel, bias, 9, 9, 0, 0, 0, 0, 1, 1, 1, 1)
        with pytest.raises(ValueError):
            mod.conv2d_transpose_forward(x, kernel[..., :2], bias, 5, 6, 0, 0, 0, 0, 1, 1, 1, 1)
        with pytest.raises(ValueError):
            mod.conv2d_transpose_backward(np.zeros((2, 9, 9, 4)), x, kernel, 0, 0, 0, 0, 1, 1, 1, 1, True, True)
        y = mod.conv2d_transpose_forward(x, kernel, bias, 5, 6, 0, 0, 0, 0, 1, 1, 1, 1)
        assert y.shape == (2, 5, 6, 4)
