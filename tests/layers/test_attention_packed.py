"""MultiHeadAttention's packed projections: self-attention (query, value and key one array) runs
the query, key and value projections as one product, and a key that is the value (`key=None` or
the same array) the key and value projections as one; the attention's backward writes their
gradients into one array (cynet.kernels.attention_backward's `packed`).

These tests hold the packed path to the separate one (three projection layers, which
tests/layers/test_attention.py checks against the definition and Keras) and to finite differences,
on both kernel backends, in float64: masks, causal, dropout in training, returned scores; and check
that the weights, their order and the config are Keras's whatever path ran.
"""
import numpy as np
import pytest

import cynet
import cynet.kernels as K
import cynet.layers.attention as attention_module
from cynet import layers
from cynet.testing import numerical_gradient

BACKENDS = ["cython", "numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    with K.use_backend(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(23)


def _mha(rng, shape, **kwargs):
    """A float64 MultiHeadAttention built for self-attention on `shape`, random weights."""
    layer = layers.MultiHeadAttention(dtype="float64", **kwargs)
    x = rng.standard_normal(shape)
    layer(x, x)
    layer.set_weights([rng.normal(0.0, 0.5, w.shape) for w in layer.get_weights()])
    return layer


@pytest.fixture
def packed_calls(monkeypatch):
    """The `packed` layouts the attention's backward was asked for, in call order."""
    seen = []
    real = K.attention_backward

    def spy(*args, packed=None, **kwargs):
        seen.append(packed)
        return real(*args, packed=packed, **kwargs)
    monkeypatch.setattr(K, "attention_backward", spy)
    return seen


def _run(layer, arrays, call, g):
    """(output(s), input gradients, weight gradients) of one call and its backward."""
    out = call(*arrays)
    dxs = layer.backward(g)
    return out, dxs, [w.grad.copy() for w in layer.trainable_weights]


def _seeded(layer, call):
    """`call` with the dropout generator reset first: the same dropout mask on every call."""
    def run(*a):
        layer._attention._rng = np.random.default_rng(5)
        return call(*a)
    return run


OPTIONS = {
    "plain": {},
    "causal": dict(use_causal_mask=True),
    "masks": dict(query_mask=np.array([[1, 1, 0, 1, 1], [1, 1, 1, 1, 0]], bool),
                  value_mask=np.array([[1, 0, 1, 1, 1], [1, 1, 1, 0, 1]], bool),
                  attention_mask=np.random.default_rng(3).random((2, 5, 5)) < 0.8),
    "scores": dict(return_attention_scores=True, use_causal_mask=True),
}


@pytest.mark.parametrize("option", list(OPTIONS) + ["dropout"])
def test_self_attention_packed_equals_separate(backend, rng, option, packed_calls):
    dropout = 0.3 if option == "dropout" else 0.0
    layer = _mha(rng, (2, 5, 4), num_heads=2, key_dim=3, dropout=dropout)
    kw = dict(OPTIONS.get(option, {}), training=dropout > 0)
    x = rng.standard_normal((2, 5, 4))
    packed = _seeded(layer, lambda a: layer(a, a, **kw))
    separate = _seeded(layer, lambda a: layer(a, a.copy(), key=a.copy(), **kw))
    out = packed(x)
    g = [rng.standard_normal(o.shape) for o in out] if isinstance(out, tuple) else rng.standard_normal(out.shape)
    got = _run(layer, [x], packed, g)
    want = _run(layer, [x], separate, g)
    for a, b in zip(got[0] if isinstance(out, tuple) else [got[0]], want[0] if isinstance(out, tuple) else [want[0]]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1][0], sum(want[1][:3]), rtol=1e-10, atol=1e-12)   # x's three gradients, summed
    for w, a, b in zip(layer.trainable_weights, got[2], want[2]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=w.path)
    if option in ("plain", "causal", "masks"):   # the fused kernel: one packed gradient array
        assert packed_calls[:2] == ["qkv", None]


@pytest.mark.parametrize("option", ["plain", "masks", "dropout", "key_is_value"])
def test_key_is_value_packed_equals_separate(backend, rng, option, packed_calls):
    dropout = 0.3 if option == "dropout" else 0.0
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=2, dropout=dropout, dtype="float64")
    q, v = rng.standard_normal((2, 4, 5)), rng.standard_normal((2, 6, 3))
    layer(q, v)
    layer.set_weights([rng.normal(0.0, 0.5, w.shape) for w in layer.get_weights()])
    kw = dict(training=dropout > 0)
    if option == "masks":
        kw.update(value_mask=rng.random((2, 6)) < 0.7, query_mask=np.array([[1, 0, 1, 1], [1, 1, 1, 1]], bool))
    key = (lambda b: b) if option == "key_is_value" else (lambda b: None)
    packed = _seeded(layer, lambda a, b: layer(a, b, key=key(b), **kw))
    separate = _seeded(layer, lambda a, b: layer(a, b, key=b.copy(), **kw))
    g = rng.standard_normal((2, 4, 5))
    got, want = _run(layer, [q, v], packed, g), _run(layer, [q, v], separate, g)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1][0], want[1][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[1][1], want[1][1] + want[1][2], rtol=1e-10, atol=1e-12)   # value and key: one
    for w, a, b in zip(layer.trainable_weights, got[2], want[2]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=w.path)
    if option != "dropout":
        assert packed_calls[:2] == ["kv", None]


def _check_gradients(layer, arrays, call, rng):
    """Central differences of sum(call(*arrays) * g) against layer.backward, for every array and weight."""
    g = rng.standard_normal(call(*arrays).shape)

    def loss():
        return float(np.sum(call(*arrays) * g))
    _, dxs, dws = _run(layer, arrays, call, g)
    dxs = dxs if isinstance(dxs, list) else [dxs]
    for a, dx in zip(arrays, dxs):
        np.testing.assert_allclose(dx, numerical_gradient(loss, a), rtol=1e-6, atol=1e-8)
    for w, dw in zip(layer.trainable_weights, dws):
        np.testing.assert_allclose(dw, numerical_gradient(loss, w.value), rtol=1e-6, atol=1e-8, err_msg=w.path)


@pytest.mark.parametrize("case", ["self", "self_masked_causal", "self_dropout", "key_is_value"])
def test_packed_gradients_match_finite_differences(backend, rng, case):
    rng_mask = np.array([[1, 1, 0, 1, 1], [0, 1, 1, 1, 1]], bool)
    if case == "key_is_value":
        layer = layers.MultiHeadAttention(num_heads=2, key_dim=2, value_dim=3, dtype="float64")
        q, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
        layer(q, v)
        layer.set_weights([rng.normal(0.0, 0.5, w.shape) for w in layer.get_weights()])
        _check_gradients(layer, [q, v], lambda a, b: layer(a, b, value_mask=rng_mask), rng)
        return
    dropout = 0.4 if case == "self_dropout" else 0.0
    layer = _mha(rng, (2, 4, 3), num_heads=2, key_dim=2, dropout=dropout)
    x = rng.standard_normal((2, 4, 3))
    kw = dict(training=dropout > 0)
    if case == "self_masked_causal":
        kw.update(use_causal_mask=True, query_mask=np.array([[1, 1, 0, 1], [1, 1, 1, 1]], bool))
    _check_gradients(layer, [x], _seeded(layer, lambda a: layer(a, a, **kw)), rng)


def _plain(layer):
    """`layer` without its regularizers (kept: a copy would not be the layer under test)."""
    for part in (layer.query_dense, layer.key_dense, layer.value_dense, layer.output_dense):
        part._regularized = []
    return layer


def test_regularization_gradients_are_added_once(rng):
    """The packed node adds no penalty itself: each projection's penalty once per backward, also
    when one layer runs packed and separate calls on one tape (self-attention, then cross)."""
    layer = layers.MultiHeadAttention(2, 3, kernel_regularizer="l2", bias_regularizer="l2", dtype="float64")
    x, m = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    layer(x, x)
    layer.set_weights([rng.normal(0.0, 0.5, w.shape) for w in layer.get_weights()])
    g = rng.standard_normal((2, 3, 4))
    packed = _run(layer, [x], lambda a: layer(a, a), g)[2]
    separate = _run(layer, [x], lambda a: layer(a, a.copy(), key=a.copy()), g)[2]
    for w, a, b in zip(layer.trainable_weights, packed, separate):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=w.path)
    # one tape, both paths: a Functional model using the layer twice
    xi, mi = cynet.Input((3, 4), dtype="float64"), cynet.Input((5, 4), dtype="float64")
    model = cynet.Model([xi, mi], layer(layer(xi, xi), mi))
    model([x, m])
    model.backward(g)
    both = [w.grad.copy() for w in layer.trainable_weights]
    _plain(layer)
    model([x, m])
    model.backward(g)
    for w, a, b in zip(layer.trainable_weights, both, [w.grad.copy() for w in layer.trainable_weights]):
        reg = 2 * 0.01 * w.value   # l2's default factor, once
        np.testing.assert_allclose(a - b, reg, rtol=1e-10, atol=1e-12, err_msg=w.path)


def test_weights_config_and_order_are_unchanged(rng):
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4, dtype="float64")
    x = rng.standard_normal((2, 5, 6))
    layer(x, x)
    names = [w.path for w in layer.weights]
    shapes = [w.shape for w in layer.get_weights()]
    config = layer.get_config()
    layer(x, x)
    layer.backward(rng.standard_normal((2, 5, 6)))
    layer(x[:, :3], x)   # the key-value packed path
    assert [w.path for w in layer.weights] == names
    assert [w.shape for w in layer.get_weights()] == shapes == [(6, 2, 3), (2, 3), (6, 2, 3), (2, 3), (6, 2, 4),
                                                                (2, 4), (2, 4, 6), (6,)]
    assert len(layer.trainable_weights) == 8 and layer.get_config() == config
    assert all(type(s) is not attention_module._PackedProjection for s in layer._sublayers())


def test_joined_takes_the_packed_array_without_a_copy(rng):
    q, k, v = (rng.standard_normal((2, 5, 3, 4)) for _ in range(3))
    p = K.attention_forward(q, k, v)[1]
    g = rng.standard_normal((2, 5, 3, 4))
    grads = K.attention_backward(g, q, k, v, p, packed="qkv")
    joined = attention_module._joined(list(grads), 10, 36)
    assert joined.shape == (10, 36) and np.shares_memory(joined, grads[0])
    separate = K.attention_backward(g, q, k, v, p)
    np.testing.assert_array_equal(joined, np.concatenate([a.reshape(10, -1) for a in separate], axis=1))
    other = attention_module._joined(list(separate), 10, 36)   # separate arrays: joined by a copy
    np.testing.assert_array_equal(other, joined)
    shuffled = attention_module._joined([grads[1], grads[0], grads[2]], 10, 36)   # not in the base's order: a copy
    assert not np.shares_memory(shuffled, grads[0])


def test_mixed_bfloat16_packed_rounds_like_separate(rng):
    layer = layers.MultiHeadAttention(2, 4, dtype="mixed_bfloat16")
    x = rng.standard_normal((2, 5, 6)).astype(np.float32)
    layer(x, x)
    g = rng.standard_normal((2, 5, 6)).astype(np.float32)
    got = _run(layer, [x], lambda a: layer(a, a), g)
    want = _run(layer, [x], lambda a: layer(a, a.copy(), key=a.copy()), g)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1][0], sum(want[1]), rtol=1e-4, atol=1e-5)
    for a, b in zip(got[2], want[2]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # the products are bfloat16's: not the float32 layer's
    f32 = layers.MultiHeadAttention(2, 4)
    f32(x, x)
    f32.set_weights(layer.get_weights())
    assert not np.allclose(f32(x, x), got[0], rtol=1e-6, atol=1e-7)
