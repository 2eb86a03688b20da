"""MultiHeadAttention: forward against a direct NumPy definition, float64 gradients (inputs and
every weight) against central differences on both kernel backends (with masks, the causal mask,
returned scores and a shared layer), Cython == twin, the Functional API (self-attention
mha(x, x), returned scores, a mask input, config round trip), weights in Keras's shapes and
order, refused arguments, and (when Keras 3 is installed) predictions, gradients and one SGD
step equal to Keras with copied weights, attention_mask and use_causal_mask included."""
import os

import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet import layers
from cynet.testing import numerical_gradient

BACKENDS = ["cython", "numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    with K.use_backend(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(17)


def _randomize(layer, rng, scale=0.5):
    layer.set_weights([rng.normal(0.0, scale, w.shape) for w in layer.get_weights()])


def _mha(rng, q, v, key=None, **kwargs):
    """A float64 MultiHeadAttention built for (q, v[, key]) with random weights (biases included)."""
    layer = layers.MultiHeadAttention(dtype="float64", **kwargs)
    layer(q, v, key=key)
    _randomize(layer, rng)
    return layer


def reference(layer, q, v, key=None, mask=None):
    """The attention written out with einsum from the layer's weights (Keras's equations); mask
    (batch, T, S) booleans or None. Returns (output, probabilities)."""
    wq, bq, wk, bk, wv, bv, wo, bo = layer.get_weights()
    key = v if key is None else key
    qp = np.einsum("btd,dhk->bthk", q, wq) + bq
    kp = np.einsum("bsd,dhk->bshk", key, wk) + bk
    vp = np.einsum("bsd,dhk->bshk", v, wv) + bv
    scores = np.einsum("bshk,bthk->bhts", kp, qp / np.sqrt(layer.key_dim))
    if mask is not None:
        scores = np.where(mask[:, None], scores, -1e9)
    e = np.exp(scores - scores.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    out = np.einsum("bhts,bshk->bthk", p, vp)
    return np.einsum("bthk,hko->bto", out, wo) + bo, p


# ----------------------------------------------------------------------------- forward

def test_weights_follow_keras_shapes_and_order(rng):
    layer = layers.MultiHeadAttention(num_heads=3, key_dim=4, value_dim=5, output_shape=7)
    layer(np.zeros((2, 6, 8), np.float32), np.zeros((2, 9, 10), np.float32))
    assert [w.path for w in layer.weights] == ["query/kernel", "query/bias", "key/kernel", "key/bias", "value/kernel",
                                               "value/bias", "attention_output/kernel", "attention_output/bias"]
    assert [w.shape for w in layer.get_weights()] == [(8, 3, 4), (3, 4), (10, 3, 4), (3, 4), (10, 3, 5), (3, 5),
                                                      (3, 5, 7), (7,)]
    nobias = layers.MultiHeadAttention(2, 3, use_bias=False)
    nobias(np.zeros((1, 2, 4)), np.zeros((1, 3, 4)))
    assert [w.shape for w in nobias.get_weights()] == [(4, 2, 3), (4, 2, 3), (4, 2, 3), (2, 3, 4)]


@pytest.mark.parametrize("masks", ["none", "attention", "query_value", "causal", "all"])
def test_forward_matches_definition(backend, rng, masks):
    q, v = rng.standard_normal((2, 4, 5)), rng.standard_normal((2, 6, 3))
    key = rng.standard_normal((2, 6, 7))
    layer = _mha(rng, q, v, key, num_heads=2, key_dim=3, value_dim=2)
    kw, mask = {}, np.ones((2, 4, 6), bool)
    if masks in ("attention", "all"):
        kw["attention_mask"] = rng.random((2, 4, 6)) < 0.7
        mask &= kw["attention_mask"]
    if masks in ("query_value", "all"):
        kw["query_mask"] = np.array([[1, 1, 0, 1], [1, 1, 1, 1]], bool)
        kw["value_mask"] = rng.random((2, 6)) < 0.8
        mask &= kw["query_mask"][:, :, None] & kw["value_mask"][:, None, :]
    if masks in ("causal", "all"):
        kw["use_causal_mask"] = True
        mask &= np.tril(np.ones((4, 6), bool))
    y, p = layer(q, v, key=key, return_attention_scores=True, **kw)
    ry, rp = reference(layer, q, v, key, mask)
    np.testing.assert_allclose(p, rp, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y, ry, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer(q, v, key=key, **kw), y, rtol=1e-12)


def test_fully_masked_query_rows_are_uniform(backend, rng):
    """As in Keras, a query whose every key is masked attends uniformly (no NaN)."""
    q = rng.standard_normal((1, 3, 4))
    layer = _mha(rng, q, q, num_heads=1, key_dim=2)
    _, p = layer(q, q, query_mask=np.array([[True, False, True]]), return_attention_scores=True)
    np.testing.assert_allclose(p[0, 0, 1], 1 / 3)
    assert np.all(np.isfinite(p))


def test_sliding_window(rng):
    q = rng.standard_normal((1, 5, 4))
    layer = _mha(rng, q, q, num_heads=1, key_dim=2, sliding_window=2)
    _, p = layer(q, q, return_attention_scores=True)
    i, j = np.indices((5, 5))
    assert np.all(p[0, 0][np.abs(i - j) >= 2] == 0) and np.all(p[0, 0][np.abs(i - j) < 2] > 0)


def test_cython_matches_twin(rng):
    q = rng.standard_normal((3, 7, 8)).astype(np.float32)
    layer = layers.MultiHeadAttention(4, 5)
    layer(q, q)
    _randomize(layer, rng)
    g = rng.standard_normal((3, 7, 8)).astype(np.float32)
    out = {}
    for be in BACKENDS:
        with K.use_backend(be):
            y = layer(q, q, use_causal_mask=True)
            dx = layer.backward(g)
            out[be] = [y] + dx + [w.grad for w in layer.trainable_weights]
    for a, b in zip(out["cython"], out["numpy"]):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_dropout_in_training_only(rng):
    q = rng.standard_normal((2, 6, 4))
    layer = _mha(rng, q, q, num_heads=2, key_dim=3, dropout=0.5, seed=3)
    np.testing.assert_array_equal(layer(q, q), layer(q, q))
    _, p = layer(q, q, return_attention_scores=True, training=True)   # scores are before dropout
    np.testing.assert_allclose(p.sum(-1), 1.0)
    assert not np.allclose(layer(q, q, training=True), layer(q, q))
    # the same seed, the same sequence of dropout masks
    first = layers.MultiHeadAttention.from_config(layer.get_config())
    second = layers.MultiHeadAttention.from_config(layer.get_config())
    for m in (first, second):
        m(q, q)
        m.set_weights(layer.get_weights())
    np.testing.assert_array_equal(first(q, q, training=True), second(q, q, training=True))


# ----------------------------------------------------------------------------- gradients

def _check_gradients(layer, arrays, call, rng, rtol=1e-6, atol=1e-8):
    """Central differences of sum(call(*arrays) * g) against layer.backward, for every array and
    every trainable weight."""
    out = call(*arrays)
    outs = out if isinstance(out, tuple) else (out,)
    gs = [rng.standard_normal(o.shape) for o in outs]

    def loss():
        o = call(*arrays)
        o = o if isinstance(o, tuple) else (o,)
        return float(sum(np.sum(a * g) for a, g in zip(o, gs)))

    call(*arrays)
    dxs = layer.backward(list(gs) if len(gs) > 1 else gs[0])
    dws = [w.grad.copy() for w in layer.trainable_weights]
    for a, dx in zip(arrays, dxs):
        np.testing.assert_allclose(dx, numerical_gradient(loss, a), rtol=rtol, atol=atol)
    for w, dw in zip(layer.trainable_weights, dws):
        np.testing.assert_allclose(dw, numerical_gradient(loss, w.value), rtol=rtol, atol=atol, err_msg=w.path)


@pytest.mark.parametrize("case", ["cross", "self_causal", "masks_scores", "key", "dropout"])
def test_gradients(backend, rng, case):
    q, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    if case == "cross":
        layer = _mha(rng, q, v, num_heads=2, key_dim=3, value_dim=2, output_shape=(2, 3))
        _check_gradients(layer, [q, v], lambda a, b: layer(a, b), rng)
    elif case == "self_causal":   # mha(x, x): the query, key and value gradients meet in x
        layer = _mha(rng, q, q, num_heads=2, key_dim=2)
        _check_gradients(layer, [q], lambda a: layer(a, a, use_causal_mask=True), rng)
    elif case == "masks_scores":
        layer = _mha(rng, q, v, num_heads=2, key_dim=3)
        am = rng.random((2, 3, 5)) < 0.7
        qm, vm = np.array([[1, 0, 1], [1, 1, 1]], bool), rng.random((2, 5)) < 0.8
        _check_gradients(layer, [q, v], lambda a, b: layer(a, b, attention_mask=am, query_mask=qm, value_mask=vm,
                                                            return_attention_scores=True), rng)
    elif case == "key":
        key = rng.standard_normal((2, 5, 6))
        layer = _mha(rng, q, v, key, num_heads=1, key_dim=3, use_bias=False)
        _check_gradients(layer, [q, v, key], lambda a, b, c: layer(a, b, key=c, key_mask=np.ones((2, 5), bool)),
                         rng)
    else:   # dropout with a fresh seeded generator per call: the same noise each time
        layer = _mha(rng, q, v, num_heads=2, key_dim=2, dropout=0.4)

        def call(a, b):
            layer._attention._rng = np.random.default_rng(5)
            return layer(a, b, training=True)
        _check_gradients(layer, [q, v], call, rng)


def test_shared_layer_gets_the_sum_of_its_gradients(rng):
    """One MHA used twice in a Functional model (encoder self-attention, then cross-attention)."""
    x = cynet.Input((3, 4), dtype="float64")
    m = cynet.Input((5, 4), dtype="float64")
    mha = layers.MultiHeadAttention(2, 3, dtype="float64")
    h = mha(x, x)
    y = mha(h, m, use_causal_mask=True)
    model = cynet.Model([x, m], y)
    _randomize(mha, rng)
    xs = [rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))]
    g = rng.standard_normal((2, 3, 4))
    model(xs)
    dxs = model.backward(g)
    dws = [w.grad.copy() for w in mha.trainable_weights]

    def loss():
        return float(np.sum(model(xs) * g))
    for a, dx in zip(xs, dxs):
        np.testing.assert_allclose(dx, numerical_gradient(loss, a), rtol=1e-6, atol=1e-8)
    for w, dw in zip(mha.trainable_weights, dws):
        np.testing.assert_allclose(dw, numerical_gradient(loss, w.value), rtol=1e-6, atol=1e-8, err_msg=w.path)


# ----------------------------------------------------------------------------- Functional API, config

def test_functional_self_attention_and_scores(rng):
    x = cynet.Input((6, 8))
    mask = cynet.Input((6, 6))
    mha = layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")
    y, scores = mha(x, x, attention_mask=mask, return_attention_scores=True)
    assert y.shape == (None, 6, 8) and scores.shape == (None, 2, 6, 6)
    out = layers.Dense(3)(layers.GlobalAveragePooling1D()(y))
    model = cynet.Model([x, mask], [out, scores])
    xs = rng.standard_normal((4, 6, 8)).astype(np.float32)
    ms = (rng.random((4, 6, 6)) < 0.8).astype(np.float32)
    o, s = model.predict([xs, ms], verbose=0)
    assert o.shape == (4, 3) and s.shape == (4, 2, 6, 6)
    np.testing.assert_allclose(s, mha(xs, xs, attention_mask=ms, return_attention_scores=True)[1], rtol=1e-5)
    clone = cynet.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    for a, b in zip(clone.predict([xs, ms], verbose=0), (o, s)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_functional_model_trains(rng):
    x = cynet.Input((5, 4))
    h = layers.MultiHeadAttention(2, 4)(x, x, use_causal_mask=True)
    model = cynet.Model(x, layers.Dense(1)(layers.Flatten()(h)))
    model.compile(optimizer="adam", loss="mse")
    xs = rng.standard_normal((32, 5, 4)).astype(np.float32)
    ys = xs[:, :, :1].sum(1)
    first = model.evaluate(xs, ys, verbose=0)
    model.fit(xs, ys, epochs=20, batch_size=8, verbose=0)
    assert model.evaluate(xs, ys, verbose=0) < first


def test_save_and_load(tmp_path, rng):
    x = cynet.Input((4, 6))
    h = layers.Dense(6)(x)   # weights before and after the attention's (the loader plans them in order)
    model = cynet.Model(x, layers.Dense(2)(layers.MultiHeadAttention(3, 2, value_dim=5, output_shape=7)(h, x)))
    xs = rng.standard_normal((2, 4, 6)).astype(np.float32)
    path = str(tmp_path / "mha.cynet")
    model.save(path)
    loaded = cynet.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(xs, verbose=0), model.predict(xs, verbose=0), rtol=1e-6)


def test_config_round_trip():
    layer = layers.MultiHeadAttention(num_heads=4, key_dim=8, value_dim=6, dropout=0.1, use_bias=False,
                                      output_shape=(3, 2), attention_axes=1, sliding_window=3, seed=7,
                                      kernel_regularizer="l2", name="att")
    config = layer.get_config()
    for key in ("num_heads", "key_dim", "value_dim", "dropout", "use_bias", "use_gate", "output_shape",
                "attention_axes", "sliding_window", "kernel_initializer", "bias_initializer", "kernel_regularizer",
                "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint", "seed"):
        assert key in config, key
    clone = layers.deserialize(layers.serialize(layer))
    assert clone.get_config() == config
    assert config["value_dim"] == 6 and config["output_shape"] == (3, 2) and config["attention_axes"] == (1,)
    assert layers.MultiHeadAttention(2, 3).get_config()["value_dim"] == 3   # Keras: defaults to key_dim


def test_compute_output_shape():
    layer = layers.MultiHeadAttention(2, 3, output_shape=5)
    assert layer.compute_output_shape((None, 4, 6), (None, 7, 8)) == (None, 4, 5)
    assert layers.MultiHeadAttention(2, 3).compute_output_shape((2, 4, 6), (2, 7, 8), (2, 7, 1)) == (2, 4, 6)
    with pytest.raises(ValueError, match="value and key"):
        layer.compute_output_shape((None, 4, 6), (None, 7, 8), (None, 6, 8))


# ----------------------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(num_heads=0, key_dim=2), ValueError, "num_heads"),
    (dict(num_heads=2.0, key_dim=2), ValueError, "num_heads"),
    (dict(num_heads=2, key_dim=-1), ValueError, "key_dim"),
    (dict(num_heads=2, key_dim=2, value_dim=0), ValueError, "value_dim"),
    (dict(num_heads=2, key_dim=2, dropout=1.0), ValueError, "dropout"),
    (dict(num_heads=2, key_dim=2, use_bias="yes"), TypeError, "use_bias"),
    (dict(num_heads=2, key_dim=2, output_shape=(3, 0)), ValueError, "output_shape"),
    (dict(num_heads=2, key_dim=2, attention_axes="x"), ValueError, "attention_axes"),
    (dict(num_heads=2, key_dim=2, attention_axes=(1, 2)), NotImplementedError, "attention_axes"),
    (dict(num_heads=2, key_dim=2, attention_axes=2), NotImplementedError, "attention_axes"),
    (dict(num_heads=2, key_dim=2, sliding_window=0), ValueError, "sliding_window"),
    (dict(num_heads=2, key_dim=2, kernel_initializer="nope"), ValueError, "kernel_initializer"),
    (dict(num_heads=2, key_dim=2, bias_regularizer="nope"), ValueError, "bias_regularizer"),
    (dict(num_heads=2, key_dim=2, kernel_constraint="no_such"), ValueError, "kernel_constraint"),
    (dict(num_heads=2, key_dim=2, activity_regularizer="l7"), ValueError, "activity_regularizer"),
    (dict(num_heads=2, key_dim=2, use_gate=True), NotImplementedError, "use_gate"),
    (dict(num_heads=2, key_dim=2, seed=-1), ValueError, "seed"),
    (dict(num_heads=2, key_dim=2, dropout=0.1, flash_attention=True), ValueError, "flash"),
])
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        layers.MultiHeadAttention(**kwargs)


def test_bad_inputs(rng):
    layer = layers.MultiHeadAttention(2, 3)
    q, v = np.zeros((2, 4, 5)), np.zeros((2, 6, 5))
    with pytest.raises(TypeError, match="value"):
        layer(q)
    with pytest.raises(ValueError, match="query"):
        layer(np.zeros((2, 5)), v)
    with pytest.raises(NotImplementedError, match="rank 4"):   # (also a ValueError)
        layer(np.zeros((2, 3, 4, 5)), np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="batch size"):
        layer(q, np.zeros((3, 6, 5)))
    with pytest.raises(ValueError, match="value and key"):
        layer(q, v, key=np.zeros((2, 5, 5)))
    layer(q, v)
    with pytest.raises(ValueError, match="attention_mask"):
        layer(q, v, attention_mask=np.ones((2, 6, 4), bool))
    with pytest.raises(ValueError, match="query_mask"):
        layer(q, v, query_mask=np.ones((2, 6), bool))
    with pytest.raises(ValueError, match="value_mask"):
        layer(q, v, value_mask=np.ones((2, 4), bool))
    with pytest.raises(TypeError, match="return_attention_scores"):
        layer(q, v, return_attention_scores="yes")
    with pytest.raises(ValueError):   # a query of another width than the layer was built for
        layer(np.zeros((2, 4, 6)), v)
    with pytest.raises(TypeError, match="unexpected"):
        layer(q, v, mask=None)


def test_symbolic_shape_errors_name_the_layer():
    x = cynet.Input((4, 5))
    with pytest.raises(ValueError, match="mha"):
        layers.MultiHeadAttention(2, 3, name="mha")(x, cynet.Input((6,)))


# ----------------------------------------------------------------------------- Keras 3 oracle

def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3; found {keras.__version__}")
    if keras.backend.backend() != "torch":
        pytest.skip("the oracle needs KERAS_BACKEND=torch")
    return keras


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
@pytest.mark.parametrize("case", ["plain", "attention_mask", "causal", "cross_key_scores", "masks_causal"])
def test_matches_keras(backend, rng, case):
    keras = _keras()
    import torch
    kw = dict(num_heads=2, key_dim=3)
    q = rng.standard_normal((3, 4, 6)).astype(np.float32)
    v = rng.standard_normal((3, 5, 6)).astype(np.float32) if case != "causal" else q
    key = rng.standard_normal((3, 5, 2)).astype(np.float32) if case == "cross_key_scores" else None
    call = {}
    if case in ("attention_mask", "masks_causal"):
        mask = rng.random((3, 4, v.shape[1])) < 0.7
        mask[:, :, 0] = True     # no fully masked row (Keras's two attention paths differ there)
        call["attention_mask"] = mask
    if case in ("causal", "masks_causal"):
        call["use_causal_mask"] = True
    if case == "masks_causal":
        kw.update(value_dim=4, output_shape=5)
    theirs = keras.layers.MultiHeadAttention(**kw)
    ours = layers.MultiHeadAttention(**kw)
    scores = case == "cross_key_scores"
    args = (q, v) if key is None else (q, v, key)
    ours(*args[:2], key=key)
    theirs(*[torch.tensor(a) for a in args], **{k: torch.tensor(m) if k == "attention_mask" else m
                                                 for k, m in call.items()})
    weights = [rng.normal(0, 0.5, w.shape).astype(np.float32) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]

    tensors = [torch.tensor(a, requires_grad=True) for a in args]
    kcall = {k: torch.tensor(m) if k == "attention_mask" else m for k, m in call.items()}
    kout = theirs(*tensors, return_attention_scores=scores, **kcall)
    kouts = kout if isinstance(kout, tuple) else (kout,)
    gs = [rng.standard_normal(tuple(o.shape)).astype(np.float32) for o in kouts]
    sum((o * torch.tensor(g)).sum() for o, g in zip(kouts, gs)).backward()
    cout = ours(q, v, key=key, return_attention_scores=scores, **call)
    couts = cout if isinstance(cout, tuple) else (cout,)
    for c, k in zip(couts, kouts):
        np.testing.assert_allclose(c, k.detach().numpy(), rtol=1e-5, atol=1e-5)
    dxs = ours.backward(gs if scores else gs[0])
    if len(args) == 2 and args[0] is args[1]:   # mha(x, x): one array, one gradient (both entries)
        np.testing.assert_allclose(dxs[0], (tensors[0].grad + tensors[1].grad).numpy(), rtol=1e-4, atol=1e-5)
    else:
        for dx, t in zip(dxs, tensors):
            np.testing.assert_allclose(dx, t.grad.numpy(), rtol=1e-4, atol=1e-5)
    # one SGD step: the same update of every weight
    lr = 0.1
    for c, w in zip(ours.trainable_weights, theirs.trainable_weights):
        k_new = w.value.detach().numpy() - lr * w.value.grad.numpy()
        np.testing.assert_allclose(c.numpy() - lr * c.grad, k_new, rtol=1e-4, atol=1e-5, err_msg=c.path)


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_functional_sgd_step_matches_keras(rng):
    """A small Transformer-style block, causal self-attention: predictions and one SGD step of
    train_on_batch equal to Keras's with the same weights."""
    keras = _keras()

    def block(lib, L):
        x = lib.Input((5, 4))
        h = L.MultiHeadAttention(num_heads=2, key_dim=3)(x, x, use_causal_mask=True)
        h = L.Add()([x, h])
        out = L.Dense(2)(L.Flatten()(h))
        return lib.Model(x, out)

    theirs, ours = block(keras, keras.layers), block(cynet, layers)
    weights = [rng.normal(0, 0.5, w.shape).astype(np.float32) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    xs = rng.standard_normal((8, 5, 4)).astype(np.float32)
    ys = rng.standard_normal((8, 2)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(xs, verbose=0), theirs.predict(xs, verbose=0), rtol=1e-5, atol=1e-5)
    theirs.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    ours.compile(optimizer=cynet.optimizers.SGD(0.1), loss="mse")
    theirs.train_on_batch(xs, ys)
    ours.train_on_batch(xs, ys)
    for c, k in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(c, k, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- Attention, AdditiveAttention

def luong_reference(layer, q, v, key=None, q_mask=None, v_mask=None, causal=False):
    """Keras's Attention / AdditiveAttention written out (scores, where(mask, s, s - 1e9), softmax)."""
    key = v if key is None else key
    w = {x.name: x.numpy() for x in layer.weights}
    if isinstance(layer, layers.AdditiveAttention):
        s = (np.tanh(q[:, :, None] + key[:, None]) * w.get("scale", 1.0)).sum(-1)
    elif layer.score_mode == "concat":
        s = w["concat_score_weight"] * np.tanh(w.get("scale", 1.0) * (q[:, :, None] + key[:, None])).sum(-1)
    else:
        s = np.einsum("bqd,bvd->bqv", q, key) * w.get("scale", 1.0)
    keep = np.ones(s.shape, bool)
    if v_mask is not None:
        keep &= v_mask[:, None]
    if causal:
        keep &= np.tril(np.ones(s.shape[1:], bool))
    s = np.where(keep, s, s - 1e9)
    e = np.exp(s - s.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    out = p @ v
    if q_mask is not None:
        out = out * q_mask[:, :, None]
    return out, p


LUONG = [("dot", lambda: layers.Attention(dtype="float64")),
         ("dot_scale", lambda: layers.Attention(use_scale=True, dtype="float64")),
         ("concat", lambda: layers.Attention(score_mode="concat", dtype="float64")),
         ("concat_scale", lambda: layers.Attention(use_scale=True, score_mode="concat", dtype="float64")),
         ("additive", lambda: layers.AdditiveAttention(dtype="float64")),
         ("additive_noscale", lambda: layers.AdditiveAttention(use_scale=False, dtype="float64"))]


def _luong(make, rng, xs):
    layer = make()
    layer(xs)
    layer.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in layer.get_weights()])
    return layer


@pytest.mark.parametrize("name, make", LUONG, ids=[n for n, _ in LUONG])
@pytest.mark.parametrize("masked", [False, True])
def test_luong_forward_and_gradients(backend, rng, name, make, masked):
    q, v, key = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5, 4))
    layer = _luong(make, rng, [q, v, key])
    kw = {}
    if masked:
        kw = dict(mask=[np.array([[1, 0, 1], [1, 1, 1]], bool), rng.random((2, 5)) < 0.8], use_causal_mask=True)
        kw["mask"][1][:, 0] = True
    y, p = layer([q, v, key], return_attention_scores=True, **kw)
    ry, rp = luong_reference(layer, q, v, key, *(kw.get("mask") or [None, None]),
                             causal=kw.get("use_causal_mask", False))
    np.testing.assert_allclose(p, rp, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y, ry, rtol=1e-10, atol=1e-12)

    def call(a, b, c):
        return layer([a, b, c], return_attention_scores=True, **kw)
    _check_gradients(layer, [q, v, key], call, rng)


def test_luong_two_inputs_value_is_key(backend, rng):
    q, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    layer = _luong(lambda: layers.AdditiveAttention(dtype="float64"), rng, [q, v])
    _check_gradients(layer, [q, v], lambda a, b: layer([a, b]), rng)


def test_luong_functional_and_config(rng):
    q, v = cynet.Input((3, 4)), cynet.Input((5, 4))
    att = layers.Attention(use_scale=True, name="att")
    out, scores = att([q, v], return_attention_scores=True)
    assert out.shape == (None, 3, 4) and scores.shape == (None, 3, 5)
    model = cynet.Model([q, v], [out, layers.AdditiveAttention()([q, v])])
    xs = [rng.standard_normal((2, 3, 4)).astype(np.float32), rng.standard_normal((2, 5, 4)).astype(np.float32)]
    clone = cynet.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    for a, b in zip(clone.predict(xs, verbose=0), model.predict(xs, verbose=0)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    config = layers.Attention(use_scale=True, score_mode="concat", dropout=0.2, seed=3).get_config()
    assert {k: config[k] for k in ("use_scale", "score_mode", "dropout", "seed")} == dict(
        use_scale=True, score_mode="concat", dropout=0.2, seed=3)
    add = layers.AdditiveAttention(use_scale=False).get_config()
    assert "score_mode" not in add and add["use_scale"] is False
    assert layers.deserialize(layers.serialize(layers.AdditiveAttention(name="a"))).get_config() == \
        layers.AdditiveAttention(name="a").get_config()


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(score_mode="sum"), ValueError, "score_mode"),
    (dict(use_scale="yes"), TypeError, "use_scale"),
    (dict(dropout=-0.1), ValueError, "dropout"),
    (dict(seed=1.5), ValueError, "seed"),
])
def test_luong_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        layers.Attention(**kwargs)


def test_luong_bad_inputs():
    att = layers.Attention()
    with pytest.raises(TypeError, match="inputs"):
        att(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="inputs"):
        att([np.zeros((2, 3, 4))])
    with pytest.raises(ValueError, match="key"):
        att([np.zeros((2, 3, 4)), np.zeros((2, 5, 4)), np.zeros((2, 4, 4))])
    with pytest.raises(ValueError, match="last axis"):
        att([np.zeros((2, 3, 4)), np.zeros((2, 5, 3))])
    with pytest.raises(ValueError, match="mask"):
        att([np.zeros((2, 3, 4)), np.zeros((2, 5, 4))], mask=[None, np.ones((2, 4), bool)])


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
@pytest.mark.parametrize("name", ["dot_scale", "concat_scale", "additive"])
def test_luong_matches_keras(backend, rng, name):
    keras = _keras()
    import torch
    make_k = {"dot_scale": lambda: keras.layers.Attention(use_scale=True),
              "concat_scale": lambda: keras.layers.Attention(use_scale=True, score_mode="concat"),
              "additive": lambda: keras.layers.AdditiveAttention()}[name]
    make_c = {"dot_scale": lambda: layers.Attention(use_scale=True),
              "concat_scale": lambda: layers.Attention(use_scale=True, score_mode="concat"),
              "additive": lambda: layers.AdditiveAttention()}[name]
    q, v = rng.standard_normal((2, 3, 4)).astype(np.float32), rng.standard_normal((2, 5, 4)).astype(np.float32)
    vmask = rng.random((2, 5)) < 0.7
    vmask[:, 0] = True
    theirs, ours = make_k(), make_c()
    theirs([torch.tensor(q), torch.tensor(v)])
    ours([q, v])
    weights = [rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    tq, tv = torch.tensor(q, requires_grad=True), torch.tensor(v, requires_grad=True)
    ky = theirs([tq, tv], mask=[None, torch.tensor(vmask)], use_causal_mask=True)
    g = rng.standard_normal(tuple(ky.shape)).astype(np.float32)
    (ky * torch.tensor(g)).sum().backward()
    cy = ours([q, v], mask=[None, vmask], use_causal_mask=True)
    np.testing.assert_allclose(cy, ky.detach().numpy(), rtol=1e-5, atol=1e-5)
    dq, dv = ours.backward(g)
    np.testing.assert_allclose(dq, tq.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dv, tv.grad.numpy(), rtol=1e-4, atol=1e-5)
    for c, w in zip(ours.trainable_weights, theirs.trainable_weights):
        np.testing.assert_allclose(c.numpy() - 0.1 * c.grad, w.value.detach().numpy() - 0.1 * w.value.grad.numpy(),
                                   rtol=1e-4, atol=1e-5)
