"""The first convolution, its ReLU and a 2x2 / stride 2 max pooling in one pass (conv.pyx's
conv2d_relu_maxpool_forward / _backward on cynet_conv_small.h, float32 or with bfloat16-rounded
products, their NumPy twins, cynet.kernels.conv's dispatch).

Under bfloat16 the forward equals the three steps it replaces bit for bit (conv2d_forward_bf16
with its ReLU, then max_pool2d_forward: same sums in the same order); in float32 it matches a
float64 reference to float32 accumulation. Its record is the pooling's argmax where the max is
> 0; the backward's dkernel and dbias match a float64 reference (the pooled gradient routed to
each window's cell, masked by the ReLU, rounded to bfloat16 for the product under bfloat16; the
bias gradient the sum of the unrounded values) to float32 accumulation; the twin agrees; NaN,
ties and dead windows behave as MaxPooling2D after the ReLU; bad arguments raise."""
import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet._kernels import bf16_numpy, conv as cconv, conv_numpy, pool_numpy

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


def r(a, bf16=True):
    return bf16_numpy.round_bf16(a).reshape(a.shape) if bf16 else a


def _case(name, seed=0):
    xs, ks, geom = CASES[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(np.float32)
    k = rng.standard_normal(ks).astype(np.float32)
    b = (0.3 * rng.standard_normal(ks[3])).astype(np.float32)
    return rng, x, k, b, geom


def _three_steps(x, k, b, geom, bf16=True):
    """The conv (its ReLU fused) and max pool the one pass replaces: (conv output, p, argmax): the
    compiled bfloat16 convolution (bf16), or a float64 one rounded to float32."""
    sh, sw, dh, dw = geom
    if bf16:
        y = cconv.conv2d_forward_bf16(x, k, b, 0, 0, 0, 0, sh, sw, dh, dw, 0, True)
    else:
        y = conv_numpy.conv2d_forward(x.astype(np.float64), k.astype(np.float64), b.astype(np.float64),
                                      0, 0, 0, 0, sh, sw, dh, dw)
        y = np.maximum(y, 0).astype(np.float32)
    p, argmax = K.max_pool2d_forward(y, pool_size=2, strides=2)
    return y, p, argmax


def _routed(dp, argmax, y):
    """The convolution's output gradient: dp at each window's argmax cell, where the ReLU passed it."""
    return np.where(y > 0, K.max_pool2d_backward(dp, argmax, y.shape, pool_size=2, strides=2), np.float32(0))


def _reference_grads(x, k, g, geom, bf16=True):
    """float64 dkernel and dbias of the convolution's output gradient g."""
    sh, sw, dh, dw = geom
    _, dk, _ = conv_numpy.conv2d_backward(r(g, bf16).astype(np.float64), r(x, bf16).astype(np.float64),
                                          r(k, bf16).astype(np.float64), 0, 0, 0, 0, sh, sw, dh, dw, False, False)
    return dk, g.reshape(-1, g.shape[-1]).astype(np.float64).sum(0)


def _bits(sel, f):
    return np.unpackbits(sel, axis=2, count=f, bitorder="little")


def _same_record_where_clear(sel, want, p):
    """Equal records at the pooled outputs whose max is clear (a float32 sum in another order may
    order a near tie the other way)."""
    f = p.shape[-1]
    clear = np.broadcast_to((np.abs(p.reshape(-1, f)) > 1e-3)[:, None], _bits(sel, f).shape)
    np.testing.assert_array_equal(_bits(sel, f)[clear], _bits(want, f)[clear])


def _close(got, want, tol=2e-6):
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * (np.abs(want).max() + 1e-30))


@native
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("bf16", [True, False])
@pytest.mark.parametrize("name", sorted(CASES))
def test_one_pass_against_the_three_steps(name, bf16, threads):
    rng, x, k, b, geom = _case(name)
    old = cynet.get_num_threads()
    cynet.set_num_threads(threads)
    try:
        p, sel = cconv.conv2d_relu_maxpool_forward(x, k, b, *geom, bf16)
        dp = rng.standard_normal(p.shape).astype(np.float32)
        dk, db = cconv.conv2d_relu_maxpool_backward(dp, x, k, sel, *geom, True, bf16)
        dk_nobias, db_none = cconv.conv2d_relu_maxpool_backward(dp, x, k, sel, *geom, False, bf16)
    finally:
        cynet.set_num_threads(old)
    y, want_p, argmax = _three_steps(x, k, b, geom, bf16)
    assert p.dtype == dk.dtype == db.dtype == np.float32 and sel.dtype == np.uint8
    if bf16:
        np.testing.assert_array_equal(p, want_p)
        np.testing.assert_array_equal(sel, conv_numpy.maxpool_record(want_p, argmax))
        g = _routed(dp, argmax, y)
    else:
        _close(p, want_p)
        _same_record_where_clear(sel, conv_numpy.maxpool_record(want_p, argmax), p)
        g = conv_numpy.maxpool_expand(dp, sel, *y.shape[1:3])   # (its own record: near ties may differ)
    rdk, rdb = _reference_grads(x, k, g, geom, bf16)
    _close(dk, rdk)
    np.testing.assert_array_equal(dk_nobias, dk)
    assert db_none is None
    np.testing.assert_allclose(db, rdb, rtol=0, atol=1e-6 * np.abs(g).reshape(-1, g.shape[-1]).sum(0).max())


@native
@pytest.mark.parametrize("bf16", [True, False])
@pytest.mark.parametrize("name", sorted(CASES))
def test_twin_agrees(name, bf16):
    rng, x, k, b, geom = _case(name, seed=5)
    p, sel = cconv.conv2d_relu_maxpool_forward(x, k, b, *geom, bf16)
    tp, tsel = conv_numpy.conv2d_relu_maxpool_forward(x, k, b, *geom, bf16)
    _close(p, tp)
    _same_record_where_clear(sel, tsel, p)
    dp = rng.standard_normal(p.shape).astype(np.float32)
    for a, w in zip(cconv.conv2d_relu_maxpool_backward(dp, x, k, sel, *geom, True, bf16),
                    conv_numpy.conv2d_relu_maxpool_backward(dp, x, k, sel, *geom, True, bf16)):
        _close(a, w)


@pytest.mark.parametrize("bf16", [True, False])
@pytest.mark.parametrize("name", sorted(CASES))
def test_twin_against_its_definition(name, bf16):
    """The twin's record and its expansion are the max pool's backward after the ReLU's."""
    rng, x, k, b, geom = _case(name, seed=7)
    p, sel = conv_numpy.conv2d_relu_maxpool_forward(x, k, b, *geom, bf16)
    sh, sw, dh, dw = geom
    if bf16:
        y = conv_numpy.conv2d_forward_bf16(x, k, b, 0, 0, 0, 0, sh, sw, dh, dw, None, True)
    else:
        y = np.maximum(conv_numpy.conv2d_forward(x, k, b, 0, 0, 0, 0, sh, sw, dh, dw), 0)
    want_p, argmax = pool_numpy.max_pool2d_forward(y, 2, 2, 2, 2, 0, 0, 0, 0)
    np.testing.assert_array_equal(p, want_p)
    dp = rng.standard_normal(p.shape).astype(np.float32)
    dy = pool_numpy.max_pool2d_backward(dp, argmax, y.shape[1], y.shape[2], 2, 2, 2, 2, 0, 0, 0, 0)
    g = np.where(y > 0, dy, np.float32(0))
    np.testing.assert_array_equal(conv_numpy.maxpool_expand(dp, sel, *y.shape[1:3]), g)
    rdk, rdb = _reference_grads(x, k, g, geom, bf16)
    dk, db = conv_numpy.conv2d_relu_maxpool_backward(dp, x, k, sel, *geom, True, bf16)
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
    p, sel = cconv.conv2d_relu_maxpool_forward(x, k, b, 1, 1, 1, 1, True)
    y, want_p, argmax = _three_steps(x, k, b, (1, 1, 1, 1))
    np.testing.assert_array_equal(p, want_p)   # (NaN in the same places)
    assert np.isnan(p).any()
    np.testing.assert_array_equal(sel, conv_numpy.maxpool_record(want_p, argmax))
    bits = np.unpackbits(sel, axis=2, count=18, bitorder="little")
    clear = ~np.isnan(p[..., 3]).reshape(-1)   # (k * NaN is NaN in every channel)
    assert clear.sum() > 20 and bits[clear, 0, 3].all() and not bits[:, 1:, 3].any()
    assert not bits[:, :, 4].any() and (p[..., 4].reshape(-1)[clear] == 0).all()
    dp = rng.standard_normal(p.shape).astype(np.float32)
    dk, db = cconv.conv2d_relu_maxpool_backward(dp, x, k, sel, 1, 1, 1, 1, True, True)
    assert db[4] == 0 and np.isclose(db[3], dp[..., 3].reshape(-1)[clear].sum(dtype=np.float64), rtol=1e-5)
    tdk, tdb = conv_numpy.conv2d_relu_maxpool_backward(dp, x, k, sel, 1, 1, 1, 1, True, True)
    np.testing.assert_array_equal(np.isnan(dk), np.isnan(tdk))
    _close(np.nan_to_num(dk), np.nan_to_num(tdk))
    _close(db, tdb)


@native
def test_bad_arguments_raise():
    rng, x, k, b, geom = _case("f_not_a_multiple_of_8")
    p, sel = cconv.conv2d_relu_maxpool_forward(x, k, b, *geom, False)
    with pytest.raises(ValueError, match="dp must have shape"):
        cconv.conv2d_relu_maxpool_backward(np.zeros((2, 3, 4, 7), np.float32), x, k, sel, *geom, True, False)
    with pytest.raises(ValueError, match="sel must be a uint8 array"):
        cconv.conv2d_relu_maxpool_backward(p, x, k, sel[:-1], *geom, True, False)
    with pytest.raises(ValueError, match="sel must be a uint8 array"):
        cconv.conv2d_relu_maxpool_backward(p, x, k, sel.astype(np.int8), *geom, True, True)
    with pytest.raises(ValueError, match="bias must have shape"):
        cconv.conv2d_relu_maxpool_forward(x, k, b[:-1], *geom, True)
    with pytest.raises(ValueError, match="relu_maxpool_native"):   # K = 27: not a short patch
        cconv.conv2d_relu_maxpool_forward(np.zeros((1, 6, 6, 3), np.float32), np.zeros((3, 3, 3, 4), np.float32),
                                          None, 1, 1, 1, 1, False)
    with pytest.raises(ValueError, match="sel must be a uint8 array"):
        conv_numpy.maxpool_expand(p, sel[:, :3], 7, 7)


@pytest.mark.parametrize("bf16", [True, False])
def test_dispatch_with_an_input_gradient_and_without_the_one_pass(bf16):
    """cynet.kernels.conv's entry points: with compute_dx (or where the one pass does not run:
    here forced off by the developer knob) the gradient goes through the convolution's own
    backward of the expanded pooled gradient; the results agree with the one pass."""
    rng, x, k, b, geom = _case("odd_output_rows_and_columns", seed=2)
    strides, dilation = geom[:2], geom[2:]
    p, rec = K.conv._relu_maxpool_forward(x, k, b, strides, dilation, bf16=bf16)
    dp = rng.standard_normal(p.shape).astype(np.float32)
    dx, dk, db = K.conv._relu_maxpool_backward(dp, x, k, rec, strides, dilation, True, True, bf16)
    none, dk1, db1 = K.conv._relu_maxpool_backward(dp, x, k, rec, strides, dilation, True, False, bf16)
    assert none is None and dx.shape == x.shape
    _close(dk1, dk)
    _close(db1, db)
    y, _, argmax = _three_steps(x, k, b, geom, bf16)
    g = _routed(dp, argmax, y) if bf16 else conv_numpy.maxpool_expand(dp, rec, *y.shape[1:3])
    if bf16:
        want_dx = cconv.conv2d_backward_bf16(g, x, k, None, 0, 0, 0, 0, *geom, True, True, 0)[0]
    else:
        want_dx = K.conv2d_backward(g, x, k, strides, "valid", dilation)[0]
    _close(dx, want_dx)
    old = cconv._bf16_knobs(direct=False)
    try:
        assert not K.conv._relu_maxpool_native(k.shape)
        p2, rec2 = K.conv._relu_maxpool_forward(x, k, b, strides, dilation, bf16=bf16)
        _, dk2, db2 = K.conv._relu_maxpool_backward(dp, x, k, rec2, strides, dilation, True, False, bf16)
    finally:
        cconv._bf16_knobs(*old)
    _close(p2, p)
    _close(dk2, dk)
    _close(db2, db)


@native
@pytest.mark.parametrize("bf16", [True, False])
def test_without_bias(bf16):
    rng, x, k, _, geom = _case("mnist", seed=9)
    p, sel = cconv.conv2d_relu_maxpool_forward(x, k, None, *geom, bf16)
    q, qsel = cconv.conv2d_relu_maxpool_forward(x, k, np.zeros(k.shape[3], np.float32), *geom, bf16)
    np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(sel, qsel)
    _close(p, conv_numpy.conv2d_relu_maxpool_forward(x, k, None, *geom, bf16)[0])
