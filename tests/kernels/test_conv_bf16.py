"""The convolutions of the mixed_bfloat16 policy (conv.pyx conv2d_forward_bf16 /
conv2d_backward_bf16, their NumPy twins, cynet/_kernels/conv_bf16.py).

Each result against a float64 convolution of the bfloat16-rounded inputs (x, kernel, and the
gradient dy, or dy masked by the fused ReLU's output): the only difference allowed is float32
accumulation. On every path this machine has (AMX-BF16, AVX512_BF16, the emulation), with the
short inner dimensions on cynet_conv_small.h's kernels (where the CPU has AVX-512F), as rounded
float32 small GEMMs (_bf16_knobs(direct=False)) and on the packed kernels (_bf16_knobs(short_max=0)),
for geometries with padding, strides, dilation, odd K and F, one input
channel, a height-1 (Conv1D) image, and one and several threads; the AVX512_BF16 path equals the
emulation bit for bit (vdpbf16ps's order); the Cython kernels equal their twins to float32
accumulation; the bias gradient is the sum of the unrounded gradient."""
import contextlib

import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet._kernels import bf16_numpy, conv as cconv, conv_numpy
from cynet.kernels import bf16

CODES = {"emulated": 0, "avx512_bf16": 1, "amx": 2}
PATHS = (["emulated"] + (["avx512_bf16"] if bf16.native_available() else [])
         + (["amx"] if bf16.amx_available() else []))

# (x shape, kernel shape, (pt, pb, pl, pr, sh, sw, dh, dw))
GEOMETRIES = {
    "mnist_conv1": ((3, 9, 8, 1), (3, 3, 1, 5), (0, 0, 0, 0, 1, 1, 1, 1)),
    "mnist_conv2": ((4, 8, 7, 32), (3, 3, 32, 64), (0, 0, 0, 0, 1, 1, 1, 1)),
    "padded_strided_dilated": ((2, 7, 9, 6), (3, 2, 6, 40), (1, 2, 0, 1, 2, 1, 1, 2)),
    "odd_k_and_f": ((3, 6, 6, 5), (3, 3, 5, 33), (1, 1, 1, 1, 1, 1, 1, 1)),
    "conv1d_view": ((5, 1, 20, 7), (1, 3, 7, 3), (0, 0, 2, 0, 1, 1, 1, 1)),
    # short patches (K <= 16: cynet_conv_small.h where the CPU has AVX-512F): rows whose windows
    # lie inside the input (read in place) next to padded rows (im2col), F not a multiple of 16
    "short_rows_mixed": ((2, 8, 9, 1), (3, 3, 1, 48), (1, 1, 0, 0, 1, 2, 1, 1)),
    "short_padded_strided_dilated": ((2, 9, 11, 1), (3, 2, 1, 40), (1, 2, 0, 1, 2, 1, 1, 2)),
    "short_two_channels_odd_f": ((3, 7, 6, 2), (2, 3, 2, 33), (1, 1, 1, 1, 1, 1, 1, 1)),
    "short_strided_inside": ((2, 11, 12, 1), (2, 2, 1, 7), (0, 0, 0, 0, 3, 2, 2, 1)),
}


@contextlib.contextmanager
def short(value, direct=True):
    old = cconv._bf16_knobs(short_max=value, direct=direct)
    try:
        yield
    finally:
        cconv._bf16_knobs(*old)


# how a short product runs: cynet_conv_small.h (where the CPU runs it), the rounded float32
# small GEMM, the packed kernels
MODES = {"direct": (16, True), "small_gemm": (16, False), "packed": (0, True)}


def r(a):
    return bf16_numpy.round_bf16(a).reshape(a.shape)


def _case(name, seed=0):
    xs, ks, geom = GEOMETRIES[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(np.float32)
    k = rng.standard_normal(ks).astype(np.float32)
    b = rng.standard_normal(ks[3]).astype(np.float32)
    return rng, x, k, b, geom


def _reference(x, k, b, dy, y, geom):
    """float64 convolution and gradients of the rounded inputs (g: dy, or dy where y > 0)."""
    x64, k64 = r(x).astype(np.float64), r(k).astype(np.float64)
    out = conv_numpy.conv2d_forward(x64, k64, None, *geom) + b
    g = dy if y is None else np.where(y > 0, dy, np.float32(0))
    dx, dk, _ = conv_numpy.conv2d_backward(r(g).astype(np.float64), x64, k64, *geom, False, True)
    return out, dx, dk, g.reshape(-1, g.shape[-1]).astype(np.float64).sum(0)


def _close(got, want, tol=2e-6):
    scale = np.abs(want).max() + 1e-30
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale)


def _run(mod, x, k, b, geom, code, relu, dy=None, compute_dx=True):
    y = mod.conv2d_forward_bf16(x, k, b, *geom, code, relu)
    if dy is None:
        return y
    return (y,) + tuple(mod.conv2d_backward_bf16(dy, x, k, y if relu else None, *geom, True, compute_dx, code))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("p", PATHS)
@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_against_float64_on_rounded_inputs(name, p, relu, mode, threads):
    rng, x, k, b, geom = _case(name)
    old = cynet.get_num_threads() if hasattr(cynet, "get_num_threads") else None
    cynet.set_num_threads(threads)
    try:
        with short(*MODES[mode]):
            y0 = _run(cconv, x, k, b, geom, CODES[p], relu)
            dy = rng.standard_normal(y0.shape).astype(np.float32)
            y, dx, dk, db = _run(cconv, x, k, b, geom, CODES[p], relu, dy)
    finally:
        if old is not None:
            cynet.set_num_threads(old)
    ry, rdx, rdk, rdb = _reference(x, k, b, dy, y if relu else None, geom)
    if relu:
        ry = np.maximum(ry, 0)
    assert y.dtype == dx.dtype == dk.dtype == db.dtype == np.float32
    np.testing.assert_array_equal(y, y0)
    _close(y, ry)
    _close(dx, rdx)
    _close(dk, rdk)
    # (float32 sums of 256 rows, float64 over them: float32 rounding on the sum of |g|)
    g = dy if not relu else np.where(y > 0, dy, 0)
    np.testing.assert_allclose(db, rdb, rtol=0, atol=1e-6 * np.abs(g).reshape(-1, g.shape[-1]).sum(0).max())


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_twin_agrees(name, relu):
    rng, x, k, b, geom = _case(name, seed=3)
    dy = rng.standard_normal(_run(conv_numpy, x, k, b, geom, 0, relu).shape).astype(np.float32)
    got = _run(cconv, x, k, b, geom, CODES[PATHS[-1]], relu, dy)
    want = _run(conv_numpy, x, k, b, geom, 0, relu, dy)
    for a, w in zip(got, want):
        _close(a, w)


@pytest.mark.skipif("avx512_bf16" not in PATHS, reason="this CPU has no AVX512_BF16")
@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_avx512_bf16_equals_the_emulation_bit_for_bit(name):
    rng, x, k, b, geom = _case(name, seed=5)
    with short(0):
        dy = rng.standard_normal(_run(cconv, x, k, b, geom, 0, True).shape).astype(np.float32)
        native = _run(cconv, x, k, b, geom, 1, True, dy)
        emulated = _run(cconv, x, k, b, geom, 0, True, dy)
    for a, w in zip(native, emulated):
        np.testing.assert_array_equal(a, w)


def test_relu_semantics_match_cynet_relu():
    """The fused epilogue is relu_forward (NaN and -0.0 pass, negatives become +0.0) and the fused
    gradient relu_backward (dy where y > 0), bit for bit on the same logits."""
    x = np.zeros((1, 1, 4, 1), np.float32)
    k = np.ones((1, 1, 1, 1), np.float32)
    b = np.array([0.0], np.float32)
    x[0, 0, :, 0] = [np.nan, -0.0, -2.0, 3.0]
    for mod in (cconv, conv_numpy):
        y = mod.conv2d_forward_bf16(x, k, b, 0, 0, 0, 0, 1, 1, 1, 1, 0, True)
        want = K.relu_forward(mod.conv2d_forward_bf16(x, k, b, 0, 0, 0, 0, 1, 1, 1, 1, 0, False))
        np.testing.assert_array_equal(y.view(np.uint32), want.view(np.uint32))
        dy = np.full(y.shape, 2.0, np.float32)
        _, dk, db = mod.conv2d_backward_bf16(dy, x, k, y, 0, 0, 0, 0, 1, 1, 1, 1, True, False, 0)
        g = K.relu_backward(dy, y)
        np.testing.assert_array_equal(db, g.sum(axis=(0, 1, 2)))


def test_short_products_round_their_operands():
    """K = 9 (one input channel): the rounded float32 product, not the float32 one."""
    rng, x, k, b, geom = _case("mnist_conv1", seed=7)
    x = x + np.float32(1 / 3)   # values that bfloat16 cannot hold
    y = cconv.conv2d_forward_bf16(x, k, b, *geom, 0, False)
    plain = conv_numpy.conv2d_forward(x, k, b, *geom)
    assert not np.allclose(y, plain, rtol=0, atol=1e-6 * np.abs(plain).max())


def test_bad_arguments_raise():
    _, x, k, b, geom = _case("mnist_conv2")
    y = cconv.conv2d_forward_bf16(x, k, b, *geom, 0, True)
    with pytest.raises(ValueError, match="bias"):
        cconv.conv2d_forward_bf16(x, k, b[:-1], *geom, 0, False)
    with pytest.raises(ValueError, match="dy"):
        cconv.conv2d_backward_bf16(y[:1], x, k, None, *geom, True, True, 0)
    with pytest.raises(ValueError, match="y must"):
        cconv.conv2d_backward_bf16(y, x, k, y[:1], *geom, True, True, 0)
    with pytest.raises(ValueError, match="kernel"):
        cconv.conv2d_forward_bf16(x, np.ascontiguousarray(k[:, :, :3]), b, *geom, 0, False)


def test_public_dispatch_under_bf16_products():
    """cynet.kernels.conv inside bf16_products(): the bfloat16 kernels, also channels_first and
    grouped (one call per group)."""
    from cynet.kernels.conv import bf16_products
    rng, x, k, b, geom = _case("odd_k_and_f", seed=9)
    xf = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    with bf16_products():
        y = K.conv2d_forward(xf, k, b, padding=1, data_format="channels_first")
    want = cconv.conv2d_forward_bf16(x, k, b, *geom, CODES[PATHS[-1]], False)
    _close(y.transpose(0, 2, 3, 1), want)
    kg = rng.standard_normal((3, 3, 2, 8)).astype(np.float32)
    x4 = rng.standard_normal((2, 5, 5, 4)).astype(np.float32)
    with bf16_products():
        yg = K.conv2d_forward(x4, kg, groups=2)
    ref = np.concatenate([conv_numpy.conv2d_forward(r(x4[..., 2 * i:2 * i + 2]).astype(np.float64),
                                                    r(kg[..., 4 * i:4 * i + 4]).astype(np.float64), None,
                                                    0, 0, 0, 0, 1, 1, 1, 1) for i in range(2)], axis=-1)
    _close(yg, ref)


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_relu_bits_stand_for_the_relu_output(name, mode):
    """conv2d_forward_bf16(..., bits=True): bit j % 8 of byte j // 8 of an output position's row
    is y > 0 before the ReLU (NaN, 0 and -0.0: 0), equal to the twin's packbits on every path;
    the backward given the bits equals the backward given y, on both backends."""
    rng, x, k, b, geom = _case(name, seed=11)
    x[0, 0, 0, 0] = np.nan
    for mod in (cconv, conv_numpy):
        for p in PATHS:
            with short(*MODES[mode]):
                y, bits = mod.conv2d_forward_bf16(x, k, b, *geom, CODES[p], True, True)
                np.testing.assert_array_equal(y, mod.conv2d_forward_bf16(x, k, b, *geom, CODES[p], True))
                F = y.shape[-1]
                assert bits.dtype == np.uint8 and bits.shape == (y.size // F, (F + 7) // 8)
                want = np.packbits(y.reshape(-1, F) > 0, axis=1, bitorder="little")
                np.testing.assert_array_equal(bits, want)
                dy = rng.standard_normal(y.shape).astype(np.float32)
                got = mod.conv2d_backward_bf16(dy, x, k, bits, *geom, True, True, CODES[p])
                ref = mod.conv2d_backward_bf16(dy, x, k, y, *geom, True, True, CODES[p])
                for a, w in zip(got, ref):
                    np.testing.assert_array_equal(a, w)


@pytest.mark.parametrize("mod", [cconv, conv_numpy])
def test_relu_bits_of_the_wrong_shape_raise(mod):
    _, x, k, b, geom = _case("mnist_conv1")
    y, bits = mod.conv2d_forward_bf16(x, k, b, *geom, 0, True, True)
    dy = np.ones_like(y)
    with pytest.raises(ValueError, match="relu bits y must have shape"):
        mod.conv2d_backward_bf16(dy, x, k, bits[:-1], *geom, True, True, 0)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("record", ["none", "y", "bits"])
@pytest.mark.parametrize("p", PATHS)
@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_first_convolution_backward_without_dx(name, p, record, fused):
    """compute_dx=False (the first layer): a short patch (K <= 12) then runs in one pass over dy
    (cynet_cs_fused_backward, where the CPU has AVX-512F) or as grad block + weight gradient
    (_bf16_knobs(fused=False)); dkernel and dbias as the float64 reference, on 1 and 2 threads."""
    rng, x, k, b, geom = _case(name, seed=13)
    y, bits = cconv.conv2d_forward_bf16(x, k, b, *geom, CODES[p], record != "none", True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    given = {"none": None, "y": y, "bits": bits}[record]
    old_knobs = cconv._bf16_knobs(fused=fused)
    old_threads = cynet.get_num_threads()
    try:
        for threads in (1, 2):
            cynet.set_num_threads(threads)
            dx, dk, db = cconv.conv2d_backward_bf16(dy, x, k, given, *geom, True, False, CODES[p])
            assert dx is None
            _, _, rdk, rdb = _reference(x, k, b, dy, None if record == "none" else y, geom)
            _close(dk, rdk)
            g = dy if record == "none" else np.where(y > 0, dy, 0)
            np.testing.assert_allclose(db, rdb, rtol=0, atol=1e-6 * np.abs(g).reshape(-1, g.shape[-1]).sum(0).max())
    finally:
        cconv._bf16_knobs(*old_knobs)
        cynet.set_num_threads(old_threads)
