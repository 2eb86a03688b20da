"""The first convolution, its ReLU and a 2x2 / stride 2 max pooling in one pass (conv.pyx's
conv2d_relu_maxpool_forward_bf16 / _backward_bf16 on cynet_conv_small.h, their NumPy twins,
cynet/_kernels/conv_bf16.py's dispatch).

The forward equals the three steps it replaces bit for bit (conv2d_forward_bf16 with its ReLU,
then max_pool2d_forward: same sums in the same order), its record is the pooling's argmax where
the max is > 0; the backward's dkernel and dbias match a float64 reference (the pooled gradient
routed to each window's cell, masked by the ReLU, rounded to bfloat16 for the product; the
bias gradient the sum of the unrounded values) to float32 accumulation; the twin agrees; NaN,
ties and dead windows behave as MaxPooling2D after the ReLU; bad arguments raise."""
import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet._kernels import bf16_numpy, conv as cconv, conv_bf16, conv_numpy, pool_numpy

NATIVE = cconv.relu_maxpool_native(9)
native = pytest.mark.skipif(not NATIVE, reason="the one-pass kernels need AVX-512F (and a GCC build)")

# (x shape, kernel shape, (sh, sw, dh, dw))
CASES = {
    "mnist": ((3, 28, 28, 1), (3, 3, 1, 32), (1, 1, 1, 1)),
    "odd_output_rows_and_columns": ((2, 12, 13, 1), (3, 3, 1, 20), (1, 1, 1, 1)),   # 10 x 11 -> 5 x 5
    "strided_dilated_two_channels": ((2, 16, 17, 2), (2, 3, 2, 40), (2, 1, 1, 2)),  # K = 12
    "f_not_a_multiple_of_8": ((2, 9, 9, 1), (3, 3, 1, 7), (1, 1, 1, 1)),
    "f_over_32": ((2, 8, 10, 1), (2, 2, 1, 70), (1, 1, 1, 1)),
    "one_window": ((1, 4, 4, 1), (3, 3, 1, 5), (1, 1, 1, 1)),
}


def r(a):
    return bf16_numpy.round_bf16(a).reshape(a.shape)


def _case(name, seed=0):
    xs, ks, geom = CASES[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(np.float32)
    k = rng.standard_normal(ks).astype(np.float32)
    b = (0.3 * rng.standard_normal(ks[3])).astype(np.float32)
    return rng, x, k, b, geom


def _three_steps(x, k, b, geom):
    """The compiled conv (fused ReLU) and max pool the one pass replaces: (conv output, p, argmax)."""
    sh, sw, dh, dw = geom
    y = cconv.conv2d_forward_bf16(x, k, b, 0, 0, 0, 0, sh, sw, dh, dw, 0, True)
    p, argmax = K.max_pool2d_forward(y, pool_size=2, strides=2)
    return y, p, argmax


def _reference_grads(x, k, y, argmax, dp, geom):
    """float64 dkernel and dbias: dp at each window's argmax cell, where the ReLU passed it."""
    sh, sw, dh, dw = geom
    dy = K.max_pool2d_backward(dp, argmax, y.shape, pool_size=2, strides=2)
    g = np.where(y > 0, dy, np.float32(0))
    _, dk, _ = conv_numpy.conv2d_backward(r(g).astype(np.float64), r(x).astype(np.float64),
                                          r(k).astype(np.float64), 0, 0, 0, 0, sh, sw, dh, dw, False, False)
    return dk, g.reshape(-1, g.shape[-1]).astype(np.float64).sum(0), g


def _close(got, want, tol=2e-6):
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * (np.abs(want).max() + 1e-30))


@native
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", sorted(CASES))
def test_one_pass_against_the_three_steps(name, threads):
    rng, x, k, b, geom = _case(name)
    old = cynet.get_num_threads()
    cynet.set_num_threads(threads)
    try:
        p, sel = cconv.conv2d_relu_maxpool_forward_bf16(x, k, b, *geom)
        dp = rng.standard_normal(p.shape).astype(np.float32)
        dk, db = cconv.conv2d_relu_maxpool_backward_bf16(dp, x, k, sel, *geom, True)
        dk_nobias, db_none = cconv.conv2d_relu_maxpool_backward_bf16(dp, x, k, sel, *geom, False)
    finally:
        cynet.set_num_threads(old)
    y, want_p, argmax = _three_steps(x, k, b, geom)
    assert p.dtype == dk.dtype == db.dtype == np.float32 and sel.dtype == np.uint8
    np.testing.assert_array_equal(p, want_p)
    np.testing.assert_array_equal(sel, conv_numpy.maxpool_record(want_p, argmax))
    rdk, rdb, g = _reference_grads(x, k, y, argmax, dp, geom)
    _close(dk, rdk)
    np.testing.assert_array_equal(dk_nobias, dk)
    assert db_none is None
    np.testing.assert_allclose(db, rdb, rtol=0, atol=1e-6 * np.abs(g).reshape(-1, g.shape[-1]).sum(0).max())


@native
@pytest.mark.parametrize("name", sorted(CASES))
def test_twin_agrees(name):
    rng, x, k, b, geom = _case(name, seed=5)
    p, sel = cconv.conv2d_relu_maxpool_forward_bf16(x, k, b, *geom)
    tp, tsel = conv_numpy.conv2d_relu_maxpool_forward_bf16(x, k, b, *geom)
    _close(p, tp)
    # (the twin's float32 sums may order a near tie the other way: its record where the max is clear)
    clear = np.abs(p.reshape(-1, p.shape[-1])) > 1e-3
    bits = lambda s: np.unpackbits(s, axis=2, count=p.shape[-1], bitorder="little")   # noqa: E731
    np.testing.assert_array_equal(bits(sel)[np.broadcast_to(clear[:, None], bits(sel).shape)],
                                  bits(tsel)[np.broadcast_to(clear[:, None], bits(sel).shape)])
    dp = rng.standard_normal(p.shape).astype(np.float32)
    for a, w in zip(cconv.conv2d_relu_maxpool_backward_bf16(dp, x, k, sel, *geom, True),
                    conv_numpy.conv2d_relu_maxpool_backward_bf16(dp, x, k, sel, *geom, True)):
        _close(a, w)


@pytest.mark.parametrize("name", sorted(CASES))
def test_twin_against_its_definition(name):
    """The twin's record and its expansion are the max pool's backward after the ReLU's."""
    rng, x, k, b, geom = _case(name, seed=7)
    p, sel = conv_numpy.conv2d_relu_maxpool_forward_bf16(x, k, b, *geom)
    sh, sw, dh, dw = geom
    y = conv_numpy.conv2d_forward_bf16(x, k, b, 0, 0, 0, 0, sh, sw, dh, dw, None, True)
    want_p, argmax = pool_numpy.max_pool2d_forward(y, 2, 2, 2, 2, 0, 0, 0, 0)
    np.testing.assert_array_equal(p, want_p)
    dp = rng.standard_normal(p.shape).astype(np.float32)
    dy = pool_numpy.max_pool2d_backward(dp, argmax, y.shape[1], y.shape[2], 2, 2, 2, 2, 0, 0, 0, 0)
    np.testing.assert_array_equal(conv_numpy.maxpool_expand(dp, sel, *y.shape[1:3]), np.where(y > 0, dy, 0))
    rdk, rdb, _ = _reference_grads(x, k, y, argmax, dp, geom)
    dk, db = conv_numpy.conv2d_relu_maxpool_backward_bf16(dp, x, k, sel, *geom, True)
    _close(dk, rdk)
    _close(db, rdb)


@native
def test_nan_ties_and_dead_windows_as_max_pooling_after_relu():
    """A NaN input makes its windows NaN (NaN wins; its gradient stops at the ReLU, as NaN > 0 is
    false); equal outputs send the gradient to the first cell; a window of outputs <= 0 pools to
    0 and passes no gradient."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 10, 10, 1)).astype(np.float32)
    x[0, 4, 5, 0] = np.nan
    k = rng.standard_normal((3, 3, 1, 18)).astype(np.float32)
    k[..., 3] = 0                     # channel 3: the bias everywhere, a tie in every window
    k[..., 4] = 0                     # channel 4: 0 everywhere, every window dead
    b = rng.standard_normal(18).astype(np.float32)
    b[3], b[4] = 0.5, -0.25
    p, sel = cconv.conv2d_relu_maxpool_forward_bf16(x, k, b, 1, 1, 1, 1)
    y, want_p, argmax = _three_steps(x, k, b, (1, 1, 1, 1))
    np.testing.assert_array_equal(p, want_p)   # (NaN in the same places)
    assert np.isnan(p).any()
    np.testing.assert_array_equal(sel, conv_numpy.maxpool_record(want_p, argmax))
    bits = np.unpackbits(sel, axis=2, count=18, bitorder="little")
    clear = ~np.isnan(p[..., 3]).reshape(-1)   # (k * NaN is NaN in every channel)
    assert clear.sum() > 20 and bits[clear, 0, 3].all() and not bits[:, 1:, 3].any()
    assert not bits[:, :, 4].any() and (p[..., 4].reshape(-1)[clear] == 0).all()
    dp = rng.standard_normal(p.shape).astype(np.float32)
    dk, db = cconv.conv2d_relu_maxpool_backward_bf16(dp, x, k, sel, 1, 1, 1, 1, True)
    assert db[4] == 0 and np.isclose(db[3], dp[..., 3].reshape(-1)[clear].sum(dtype=np.float64), rtol=1e-5)
    tdk, tdb = conv_numpy.conv2d_relu_maxpool_backward_bf16(dp, x, k, sel, 1, 1, 1, 1, True)
    np.testing.assert_array_equal(np.isnan(dk), np.isnan(tdk))
    _close(np.nan_to_num(dk), np.nan_to_num(tdk))
    _close(db, tdb)


@native
def test_bad_arguments_raise():
    rng, x, k, b, geom = _case("f_not_a_multiple_of_8")
    p, sel = cconv.conv2d_relu_maxpool_forward_bf16(x, k, b, *geom)
    with pytest.raises(ValueError, match="dp must have shape"):
        cconv.conv2d_relu_maxpool_backward_bf16(np.zeros((2, 3, 4, 7), np.float32), x, k, sel, *geom, True)
    with pytest.raises(ValueError, match="sel must be a uint8 array"):
        cconv.conv2d_relu_maxpool_backward_bf16(p, x, k, sel[:-1], *geom, True)
    with pytest.raises(ValueError, match="sel must be a uint8 array"):
        cconv.conv2d_relu_maxpool_backward_bf16(p, x, k, sel.astype(np.int8), *geom, True)
    with pytest.raises(ValueError, match="bias must have shape"):
        cconv.conv2d_relu_maxpool_forward_bf16(x, k, b[:-1], *geom)
    with pytest.raises(ValueError, match="relu_maxpool_native"):   # K = 27: not a short patch
        cconv.conv2d_relu_maxpool_forward_bf16(np.zeros((1, 6, 6, 3), np.float32), np.zeros((3, 3, 3, 4), np.float32),
                                               None, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="sel must be a uint8 array"):
        conv_numpy.maxpool_expand(p, sel[:, :3], 7, 7)


def test_dispatch_with_an_input_gradient_and_without_the_one_pass():
    """conv_bf16's entry points: with compute_dx (or where the one pass does not run: here forced
    off by the developer knob) the gradient goes through the convolution's own backward of the
    expanded pooled gradient; the results agree with the one pass."""
    rng, x, k, b, geom = _case("odd_output_rows_and_columns", seed=2)
    p, rec = conv_bf16.conv2d_relu_maxpool_forward(x, k, b, *geom)
    dp = rng.standard_normal(p.shape).astype(np.float32)
    dx, dk, db = conv_bf16.conv2d_relu_maxpool_backward(dp, x, k, rec, *geom, True, True)
    none, dk1, db1 = conv_bf16.conv2d_relu_maxpool_backward(dp, x, k, rec, *geom, True, False)
    assert none is None and dx.shape == x.shape
    _close(dk1, dk)
    _close(db1, db)
    y, _, argmax = _three_steps(x, k, b, geom)
    g = np.where(y > 0, K.max_pool2d_backward(dp, argmax, y.shape, pool_size=2, strides=2), np.float32(0))
    want_dx = cconv.conv2d_backward_bf16(g, x, k, None, 0, 0, 0, 0, *geom, True, True, 0)[0]
    _close(dx, want_dx)
    old = cconv._bf16_knobs(direct=False)
    try:
        assert not conv_bf16.relu_maxpool_native(k.shape)
        p2, rec2 = conv_bf16.conv2d_relu_maxpool_forward(x, k, b, *geom)
        _, dk2, db2 = conv_bf16.conv2d_relu_maxpool_backward(dp, x, k, rec2, *geom, True, False)
    finally:
        cconv._bf16_knobs(*old)
    _close(p2, p)
    _close(dk2, dk)
    _close(db2, db)
