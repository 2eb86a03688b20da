"""Layer pairs a model runs as one kernel (Layer._fuse_next): a valid float32 Conv2D with its
ReLU followed by a 2x2 / stride 2 MaxPooling2D, where the convolution's patch is short (an image
model's first convolution), in float32 and under mixed_bfloat16, in Sequential and Functional
models.

The pair gives the two calls' outputs (bit for bit under mixed_bfloat16) and their gradients
(weights and input) to float32 summation order; it runs only where the conditions hold
(everything else takes the usual calls); a Functional graph fuses only a convolution whose output
nothing else takes."""
import threading

import numpy as np
import pytest

import cynet
from cynet import _config, kernels, layers, mixed_precision
from cynet._kernels import conv as cconv

pytestmark = pytest.mark.skipif(not cconv.relu_maxpool_native(9),
                                reason="the one-pass kernels need AVX-512F (and a GCC build)")


@pytest.fixture(autouse=True, params=["mixed_bfloat16", "float32"])
def policy(request):
    mixed_precision.set_global_policy(request.param)
    yield request.param
    _config.set_value("dtype_policy", None)


@pytest.fixture
def fused_calls(monkeypatch):
    """The number of one-pass calls made (a list that grows by one per call)."""
    calls = []
    forward = kernels.conv._relu_maxpool_forward

    def spy(*args, **kwargs):
        calls.append(1)
        return forward(*args, **kwargs)

    monkeypatch.setattr(kernels.conv, "_relu_maxpool_forward", spy)
    return calls


def _convnet(functional=False, conv=None, pool=None, first=()):
    conv = conv or layers.Conv2D(16, 3, activation="relu")
    pool = pool or layers.MaxPooling2D()
    rest = [layers.Conv2D(8, 3, activation="relu"), layers.MaxPooling2D(), layers.Flatten(), layers.Dense(10)]
    stack = list(first) + [conv, pool] + rest
    if not functional:
        return cynet.Sequential([cynet.Input((20, 19, 1))] + stack)
    inp = h = cynet.Input((20, 19, 1))
    for layer in stack:
        h = layer(h)
    return cynet.Model(inp, h)


def _run(model, x, g, input_gradient):
    y = model(x, training=True)
    dx = model.backward(g, input_gradient=input_gradient)
    return y, dx, [np.array(v.grad) for v in model.trainable_weights]


def _both(model, x, input_gradient, monkeypatch):
    """(fused, unfused) runs of the same model and data."""
    n = len(x[0]) if isinstance(x, list) else len(x)
    g = np.random.default_rng(1).standard_normal((n, 10)).astype(np.float32)
    fused = _run(model, x, g, input_gradient)
    with monkeypatch.context() as m:
        m.setattr(kernels.conv, "_relu_maxpool_native", lambda shape: False)
        plain = _run(model, x, g, input_gradient)
    return fused, plain


def _close(got, want, tol=3e-6):
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * (np.abs(want).max() + 1e-30))


def _same_outputs(y, y0, policy):
    """Bit for bit under mixed_bfloat16 (the same sums in the same order); float32 sums in
    another order in float32."""
    if policy == "mixed_bfloat16":
        np.testing.assert_array_equal(y, y0)
    else:
        _close(y, y0, 1e-5)


@pytest.mark.parametrize("input_gradient", [False, True])
@pytest.mark.parametrize("functional", [False, True])
def test_pair_matches_the_two_calls(functional, input_gradient, fused_calls, monkeypatch, policy):
    cynet.utils.set_random_seed(0)
    model = _convnet(functional)
    x = np.random.default_rng(0).random((5, 20, 19, 1), dtype=np.float32)
    (y, dx, grads), (y0, dx0, grads0) = _both(model, x, input_gradient, monkeypatch)
    assert len(fused_calls) == 1
    _same_outputs(y, y0, policy)
    assert (dx is None) == (dx0 is None) == (not input_gradient)
    if input_gradient:
        _close(dx, dx0)
    for a, b in zip(grads, grads0):
        _close(a, b)
    _same_outputs(model.predict(x, verbose=0), y0, policy)
    assert len(fused_calls) == 2


def test_pair_after_a_layer_that_needs_the_input_gradient(fused_calls, monkeypatch, policy):
    """A pair whose input comes out of a trainable layer computes its input gradient too."""
    cynet.utils.set_random_seed(0)
    model = _convnet(first=[layers.Conv2D(1, 1)])
    x = np.random.default_rng(2).random((3, 20, 19, 1), dtype=np.float32)
    (y, _, grads), (y0, _, grads0) = _both(model, x, False, monkeypatch)
    assert len(fused_calls) == 1
    _same_outputs(y, y0, policy)
    assert np.abs(grads[0]).max() > 0
    for a, b in zip(grads, grads0):
        _close(a, b)


def test_training_matches_the_two_calls(fused_calls, monkeypatch):
    x = np.random.default_rng(3).random((96, 20, 19, 1), dtype=np.float32)
    y = np.random.default_rng(4).integers(0, 10, 96)
    losses = []
    for fused in (True, False):
        cynet.utils.set_random_seed(0)
        model = _convnet()
        model.compile(optimizer="adam", loss=cynet.losses.SparseCategoricalCrossentropy(from_logits=True))
        with monkeypatch.context() as m:
            if not fused:
                m.setattr(kernels.conv, "_relu_maxpool_native", lambda shape: False)
            losses.append(model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0).history["loss"])
    assert len(fused_calls) == 6
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)


@pytest.mark.parametrize("case", ["float64", "activity_regularizer", "same_padding", "pool_3x3",
                                  "pool_stride_1", "channels_first", "not_relu", "long_patch", "subclass"])
def test_pairs_that_run_as_two_calls(case, fused_calls):
    conv, pool, shape = dict(activation="relu"), {}, (20, 19, 1)
    if case == "float64":
        mixed_precision.set_global_policy("float64")
    conv.update({"activity_regularizer": dict(activity_regularizer="l2"), "same_padding": dict(padding="same"),
                 "not_relu": dict(activation="elu"),
                 "channels_first": dict(data_format="channels_first")}.get(case, {}))
    pool.update({"pool_3x3": dict(pool_size=3), "pool_stride_1": dict(strides=1),
                 "channels_first": dict(data_format="channels_first")}.get(case, {}))
    if case == "long_patch":
        shape = (20, 19, 2)   # K = 18 > 12
    if case == "channels_first":
        shape = (1, 20, 19)
    conv_layer = (type("MyConv", (layers.Conv2D,), {})(4, 3, **conv) if case == "subclass"
                  else layers.Conv2D(4, 3, **conv))
    model = cynet.Sequential([cynet.Input(shape), conv_layer, layers.MaxPooling2D(**pool), layers.Flatten()])
    model.predict(np.random.default_rng(0).random((2,) + shape, dtype=np.float32), verbose=0)
    assert fused_calls == []


def test_functional_fuses_only_a_convolution_nothing_else_reads(fused_calls):
    inp = cynet.Input((12, 12, 1))
    conv = layers.Conv2D(4, 3, activation="relu")
    a = conv(inp)
    branched = cynet.Model(inp, [layers.MaxPooling2D()(a), layers.Flatten()(a)])   # a read twice
    exposed = cynet.Model(inp, [layers.MaxPooling2D()(a), a])                      # a is an output
    single = cynet.Model(inp, layers.MaxPooling2D()(a))
    x = np.random.default_rng(0).random((2, 12, 12, 1), dtype=np.float32)
    assert branched._pairs == {} and exposed._pairs == {} and len(single._pairs) == 1
    branched.predict(x, verbose=0)
    exposed.predict(x, verbose=0)
    assert fused_calls == []
    np.testing.assert_allclose(single.predict(x, verbose=0), exposed.predict(x, verbose=0)[0], rtol=1e-6)
    assert len(fused_calls) == 1


def test_predict_from_threads(fused_calls):
    cynet.utils.set_random_seed(0)
    model = _convnet()
    xs = [np.random.default_rng(i).random((4, 20, 19, 1), dtype=np.float32) for i in range(6)]
    want = [model.predict(x, verbose=0) for x in xs]
    got = [None] * len(xs)

    def work(i):
        for _ in range(5):
            got[i] = model.predict(xs[i], verbose=0)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    assert len(fused_calls) == 6 * len(xs)


def test_shared_convolution_fused_at_each_call(fused_calls, monkeypatch, policy):
    """One Conv2D called on two inputs, each call followed by its own pooling: two fused calls on
    the tape, whose kernel gradients add up as the two calls' do."""
    cynet.utils.set_random_seed(0)
    conv = layers.Conv2D(6, 3, activation="relu")
    a, b = cynet.Input((10, 9, 1)), cynet.Input((10, 9, 1))
    out = layers.Dense(10)(layers.Concatenate()([layers.Flatten()(layers.MaxPooling2D()(conv(t))) for t in (a, b)]))
    model = cynet.Model([a, b], out)
    rng = np.random.default_rng(5)
    x = [rng.random((3, 10, 9, 1), dtype=np.float32) for _ in range(2)]
    (y, _, grads), (y0, _, grads0) = _both(model, x, False, monkeypatch)
    assert len(fused_calls) == 2
    _same_outputs(y, y0, policy)
    for g, g0 in zip(grads, grads0):
        _close(g, g0)


def test_pair_without_bias_and_with_strides(fused_calls, monkeypatch, policy):
    cynet.utils.set_random_seed(0)
    model = _convnet(conv=layers.Conv2D(12, 3, strides=(1, 2), dilation_rate=1, activation="relu", use_bias=False))
    x = np.random.default_rng(6).random((4, 20, 19, 1), dtype=np.float32)
    (y, _, grads), (y0, _, grads0) = _both(model, x, False, monkeypatch)
    assert len(fused_calls) == 1
    _same_outputs(y, y0, policy)
    for a, b in zip(grads, grads0):
        _close(a, b)
