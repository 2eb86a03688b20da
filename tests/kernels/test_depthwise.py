"""Depthwise 2-D convolution kernels: twin == direct definition, compiled == twin (both dtypes,
the register-block and remainder channel paths, depth multipliers), numerical gradients of the
twin, 1 and 2 threads give run-to-run identical results, validation."""
import importlib

import numpy as np
import pytest

import cynet.kernels as K
from cynet._kernels._openmp import set_thread_policy
from cynet.testing import assert_twins_close, numerical_gradient


def keras_pads(padding, H, W, KH, KW, sh, sw, dh, dw):
    """((top, bottom), (left, right)) as Keras/TensorFlow define "same": output ceil(size / stride),
    the odd padding cell after; explicit amounts as given."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        out = []
        for size, k, s, d in ((H, KH, sh, dh), (W, KW, sw, dw)):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            out.append((total // 2, total - total // 2))
        return tuple(out)
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    return tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)

forward = K.depthwise_conv2d_forward
backward = K.depthwise_conv2d_backward
output_shape = K.depthwise_conv2d_output_shape


def naive_depthwise(x, kernel, bias, strides, padding, dilation):
    """y[n, i, j, c*M + m] = sum_{a, b} xp[n, i*sh + a*dh, j*sw + b*dw, c] * kernel[a, b, c, m] + bias[c*M + m]."""
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    N, H, W, C = x.shape
    KH, KW, _, M = kernel.shape
    sh, sw = strides
    dh, dw = dilation
    (pt, pb), (pl, pr) = keras_pads(padding, H, W, KH, KW, sh, sw, dh, dw)
    xp = np.zeros((N, H + pt + pb, W + pl + pr, C))
    xp[:, pt:pt + H, pl:pl + W] = x
    OH = (H + pt + pb - (KH - 1) * dh - 1) // sh + 1
    OW = (W + pl + pr - (KW - 1) * dw - 1) // sw + 1
    y = np.zeros((N, OH, OW, C * M))
    for n in range(N):
        for i in range(OH):
            for j in range(OW):
                for c in range(C):
                    for m in range(M):
                        s = 0.0
                        for a in range(KH):
                            for b in range(KW):
                                s += xp[n, i * sh + a * dh, j * sw + b * dw, c] * kernel[a, b, c, m]
                        y[n, i, j, c * M + m] = s + (0.0 if bias is None else bias[c * M + m])
    return y


def data(rng, x_shape, k_shape, dtype=np.float64):
    x = rng.standard_normal(x_shape).astype(dtype)
    kernel = rng.standard_normal(k_shape).astype(dtype)
    bias = rng.standard_normal(k_shape[2] * k_shape[3]).astype(dtype)
    return x, kernel, bias


def tol(dtype):
    return dict(rtol=1e-4, atol=1e-4) if np.dtype(dtype) == np.float32 else dict(rtol=1e-10, atol=1e-10)


# (x shape, kernel shape, strides, padding, dilation)
CASES = [
    ((2, 5, 6, 3), (3, 3, 3, 1), (1, 1), "valid", (1, 1)),
    ((2, 5, 6, 3), (3, 3, 3, 2), (1, 1), "same", (1, 1)),
    ((2, 7, 6, 2), (2, 2, 2, 1), (1, 1), "same", (1, 1)),        # even kernel: odd pad cell after
    ((2, 7, 8, 2), (4, 2, 2, 3), (2, 3), "same", (1, 1)),
    ((2, 9, 9, 2), (3, 3, 2, 1), (1, 1), "valid", (2, 2)),       # dilation
    ((2, 9, 8, 2), (2, 3, 2, 2), (2, 1), "same", (3, 2)),        # dilation + same + stride
    ((2, 9, 9, 2), (2, 2, 2, 1), (4, 3), "valid", (1, 1)),       # stride larger than the kernel
    ((1, 5, 4, 3), (5, 4, 3, 1), (1, 1), "valid", (1, 1)),       # kernel equal to the input
    ((1, 3, 3, 2), (5, 5, 2, 1), (1, 1), "same", (1, 1)),        # kernel larger than the input
    ((2, 4, 5, 40), (3, 3, 40, 1), (1, 1), "same", (1, 1)),      # a register block and a remainder
    ((2, 5, 4, 64), (3, 2, 64, 1), (2, 2), "same", (1, 2)),      # whole blocks (float32 and float64)
    ((2, 5, 6, 2), (3, 2, 2, 1), (1, 2), ((2, 0), (1, 3)), (1, 1)),  # asymmetric explicit padding
    ((2, 6, 13, 40), (3, 3, 40, 1), (1, 1), "same", (1, 1)),    # interior tiles of 4 columns, blocks + rest
    ((2, 7, 15, 48), (3, 2, 48, 1), (1, 2), "valid", (2, 1)),    # tiles with a column stride
    ((1, 4, 11, 16), (2, 3, 16, 1), (1, 1), ((3, 0), (4, 1)), (1, 1)),  # padding beyond the window
    ((2, 5, 12, 17), (3, 3, 17, 1), (1, 1), "same", (2, 3)),     # dilated gather for dx
    ((2, 9, 10, 40), (3, 3, 40, 1), (2, 2), "same", (1, 1)),     # strided gather for dx
    ((2, 8, 9, 20), (4, 3, 20, 1), (3, 2), ((1, 2), (0, 1)), (1, 1)),
    ((1, 3, 4, 33), (3, 3, 33, 1), (5, 4), ((4, 0), (0, 5)), (1, 1)),  # pixels no window reads
    ((2, 4, 4, 3), (3, 3, 3, 1), (1, 1), 2, (1, 1)),             # int padding
]
IDS = [f"{c[0]}-{c[1]}-s{c[2]}-{c[3]}-d{c[4]}" for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_direct_definition(backend, dtype, rng, case):
    x_shape, k_shape, strides, padding, dilation = case
    x, kernel, bias = data(rng, x_shape, k_shape, dtype)
    y = forward(x, kernel, bias, strides=strides, padding=padding, dilation_rate=dilation)
    expected = naive_depthwise(x, kernel, bias, strides, padding, dilation)
    assert y.dtype == dtype and y.shape == expected.shape
    np.testing.assert_allclose(y, expected, **tol(dtype))
    assert y.shape == output_shape(x.shape, k_shape[:2], strides, padding, dilation, depth_multiplier=k_shape[3])


def test_hand_worked_case(backend):
    # two channels, 2x2 windows, valid: channel 0 sums its window, channel 1 takes twice the top-left cell
    x = np.arange(18.0).reshape(1, 3, 3, 2)
    kernel = np.zeros((2, 2, 2, 1))
    kernel[:, :, 0, 0] = 1.0
    kernel[0, 0, 1, 0] = 2.0
    y = forward(x, kernel, np.array([0.5, -1.0]))
    c0 = x[0, :, :, 0]
    np.testing.assert_array_equal(y[0, :, :, 0], [[c0[0, 0] + c0[0, 1] + c0[1, 0] + c0[1, 1] + 0.5,
                                                   c0[0, 1] + c0[0, 2] + c0[1, 1] + c0[1, 2] + 0.5],
                                                  [c0[1, 0] + c0[1, 1] + c0[2, 0] + c0[2, 1] + 0.5,
                                                   c0[1, 1] + c0[1, 2] + c0[2, 1] + c0[2, 2] + 0.5]])
    np.testing.assert_array_equal(y[0, :, :, 1], 2.0 * x[0, :2, :2, 1] - 1.0)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_compiled_matches_twin(rng, dtype, case):
    pytest.importorskip("cynet._kernels.depthwise")
    x_shape, k_shape, strides, padding, dilation = case
    x, kernel, bias = data(rng, x_shape, k_shape, dtype)
    kw = dict(strides=strides, padding=padding, dilation_rate=dilation)
    y = forward(x, kernel, bias, **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    results = {}
    for backend_name in ("cython", "numpy"):
        with K.use_backend(backend_name):
            results[backend_name] = ((forward(x, kernel, bias, **kw), forward(x, kernel, None, **kw))
                                     + backward(dy, x, kernel, **kw)
                                     + backward(dy, x, kernel, use_bias=False, compute_dx=False, **kw))
    for a in results["cython"]:
        assert a is None or a.dtype == dtype
    assert_twins_close(results["cython"], results["numpy"], dtype)


@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[5], CASES[6], CASES[11]], ids=lambda c: str(c[1]))
def test_twin_gradients_are_numerical_gradients(rng, case):
    x_shape, k_shape, strides, padding, dilation = case
    x, kernel, bias = data(rng, x_shape, k_shape)
    kw = dict(strides=strides, padding=padding, dilation_rate=dilation)
    with K.use_backend("numpy"):
        y = forward(x, kernel, bias, **kw)
        g = rng.standard_normal(y.shape)

        def loss():
            return float(np.sum(forward(x, kernel, bias, **kw) * g))

        dx, dk, db = backward(g, x, kernel, **kw)
        for name, analytic, wrt in (("dx", dx, x), ("dkernel", dk, kernel), ("dbias", db, bias)):
            np.testing.assert_allclose(analytic, numerical_gradient(loss, wrt), rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("backend_name", ["cython", "numpy"])
def test_channels_first_is_the_transposed_channels_last(rng, backend_name):
    x, kernel, bias = data(rng, (2, 6, 5, 3), (3, 2, 3, 2))
    kw = dict(strides=(2, 1), padding="same", dilation_rate=(1, 2))
    with K.use_backend(backend_name):
        y = forward(x, kernel, bias, **kw)
        dy = rng.standard_normal(y.shape)
        grads = backward(dy, x, kernel, **kw)
        xf, dyf = x.transpose(0, 3, 1, 2), dy.transpose(0, 3, 1, 2)
        yf = forward(xf, kernel, bias, data_format="channels_first", **kw)
        gf = backward(dyf, xf, kernel, data_format="channels_first", **kw)
    np.testing.assert_allclose(yf, y.transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gf[0], grads[0].transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gf[1], grads[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gf[2], grads[2], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype_", [np.float32, np.float64])
def test_one_and_two_threads_are_deterministic(rng, dtype_):
    """The threads' partial dkernel / dbias are added in thread order: every run on a thread count
    gives the same bits, and the counts agree within rounding."""
    pytest.importorskip("cynet._kernels.depthwise")
    x, kernel, bias = data(rng, (6, 9, 8, 40), (3, 3, 40, 1), dtype_)
    dy = rng.standard_normal((6, 9, 8, 40)).astype(dtype_)
    old_threads = K.get_num_threads()
    old_policy = set_thread_policy(conv=1)   # a team even for this small batch
    runs = {}
    try:
        with K.use_backend("cython"):
            for threads in (1, 2):
                K.set_num_threads(threads)
                first = (forward(x, kernel, bias, padding="same"),) + backward(dy, x, kernel, padding="same")
                for _ in range(3):
                    again = (forward(x, kernel, bias, padding="same"),) + backward(dy, x, kernel, padding="same")
                    for a, b in zip(first, again):
                        np.testing.assert_array_equal(a, b)
                runs[threads] = first
    finally:
        set_thread_policy(**old_policy)
        K.set_num_threads(old_threads)
    assert_twins_close(runs[2], runs[1], np.dtype(dtype_))


def test_output_shape(rng):
    assert output_shape((None, 28, 28, 8), 3, padding="same", depth_multiplier=2) == (None, 28, 28, 16)
    assert output_shape((4, 3, 9, 9), (3, 2), strides=2, data_format="channels_first") == (4, 3, 4, 4)
    assert output_shape((4, None, 9, None), 3, depth_multiplier=3) == (4, None, 7, None)
    with pytest.raises(ValueError, match="depth_multiplier"):
        output_shape((1, 5, 5, 2), 3, depth_multiplier=0)
    with pytest.raises(ValueError, match="kernel"):
        output_shape((1, 2, 5, 2), 3)


@pytest.mark.parametrize("call, name", [
    (lambda x, k: forward(x, k[:, :, :2]), "kernel"),                   # channels differ
    (lambda x, k: forward(x[0], k), "x"),
    (lambda x, k: forward(x, k[0]), "kernel"),
    (lambda x, k: forward(x, k, np.zeros(5)), "bias"),
    (lambda x, k: forward(x, k, strides=0), "strides"),
    (lambda x, k: forward(x, k, dilation_rate=(1, 0)), "dilation_rate"),
    (lambda x, k: forward(x, k, padding="full"), "padding"),
    (lambda x, k: forward(x, k, data_format="nhwc"), "data_format"),
    (lambda x, k: forward(x, np.ones((9, 9, 3, 1))), "kernel"),         # window larger than the input
    (lambda x, k: backward(np.ones((2, 3, 3, 3)), x, k), "dy"),
    (lambda x, k: backward(np.ones((2, 3, 3, 6)), x, k, use_bias="no"), "use_bias"),
    (lambda x, k: backward(np.ones((2, 3, 3, 6)), x, k, compute_dx=None), "compute_dx"),
])
def test_bad_arguments(backend, call, name):
    x = np.ones((2, 5, 5, 3))
    kernel = np.ones((3, 3, 3, 2))
    with pytest.raises((ValueError, TypeError), match=rf"\b{name}\b"):
        call(x, kernel)


def test_compiled_entry_points_refuse_bad_geometry(rng):
    ext = pytest.importorskip("cynet._kernels.depthwise")
    twin = importlib.import_module("cynet._kernels.depthwise_numpy")
    x, kernel, bias = data(rng, (1, 4, 4, 2), (3, 3, 2, 1))
    for module in (ext, twin):
        with pytest.raises(ValueError, match="window"):
            module.depthwise_conv2d_forward(x, kernel, bias, 0, 0, 0, 0, 1, 1, 2, 2)
        with pytest.raises(ValueError, match="sh"):
            module.depthwise_conv2d_forward(x, kernel, bias, 0, 0, 0, 0, 0, 1, 1, 1)
        with pytest.raises(ValueError, match="pt"):
            module.depthwise_conv2d_forward(x, kernel, bias, -1, 0, 0, 0, 1, 1, 1, 1)
        with pytest.raises(ValueError, match="kernel"):
            module.depthwise_conv2d_forward(x, kernel[:, :, :1].copy(), bias, 0, 0, 0, 0, 1, 1, 1, 1)
        with pytest.raises(ValueError, match="bias"):
            module.depthwise_conv2d_forward(x, kernel, bias[:1].copy(), 0, 0, 0, 0, 1, 1, 1, 1)
        with pytest.raises(ValueError, match="dy"):
            module.depthwise_conv2d_backward(np.ones((1, 3, 3, 2)), x, kernel, 0, 0, 0, 0, 1, 1, 1, 1, True, True)
