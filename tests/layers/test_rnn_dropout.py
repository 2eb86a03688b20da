"""SimpleRNN / LSTM / GRU `recurrent_dropout` (and `dropout` beside it), Keras 3 semantics: in
training, one scaled keep-mask per sequence (per sample and unit) for every gate, drawn once per
call, multiplies h_{t-1} before the gate's recurrent product at every step; with it, an LSTM's
or GRU's input `dropout` draws one mask per gate as well (Keras's implementation 1). Inference
ignores both.

Checked: float64 gradients with the masks held fixed against central differences on both
backends (with and without a time mask), Cython against the twin, inference unchanged, seeded
calls reproducible, config round trip, bad rates refused, and (when Keras 3 with the torch
backend is installed) predictions and one training step equal to Keras with copied weights and
the same masks handed to both libraries."""
import os

import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet import layers
from cynet.testing import assert_twins_close

KINDS = ("SimpleRNN", "LSTM", "GRU")
GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _layer(kind, x, dtype="float64", **kwargs):
    layer = getattr(layers, kind)(4, dtype=dtype, **kwargs)
    layer(x)   # build
    rng = np.random.default_rng(1)
    layer.set_weights([rng.normal(0, 0.5, w.shape).astype(dtype) for w in layer.get_weights()])
    return layer


def fix_masks(layer, seed=3):
    """Make the layer's dropout masks the same at every call (one per shape and rate), so that
    a training-mode call is a fixed function for finite differences."""
    rng = np.random.default_rng(seed)
    cache = {}

    def masks(shape, rate, dtype):
        if (shape, rate) not in cache:
            cache[shape, rate] = ((rng.random(shape) >= rate) / (1 - rate)).astype(dtype)
        return cache[shape, rate]
    layer._dropout_masks = masks
    return cache


def _numeric(loss, a, eps=1e-6):
    out = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        hi = loss()
        a[i] = old - eps
        lo = loss()
        a[i] = old
        out[i] = (hi - lo) / (2 * eps)
    return out


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dropout,masked,return_sequences", [(0.0, False, True), (0.3, False, False),
                                                             (0.3, True, True)])
def test_gradients_with_fixed_masks(backend, kind, dropout, masked, return_sequences, rng):
    x = rng.normal(size=(4, 5, 3))
    mask = rng.random((4, 5)) > 0.3 if masked else None
    with K.use_backend(backend):
        layer = _layer(kind, x, recurrent_dropout=0.4, dropout=dropout, return_sequences=return_sequences)
        fix_masks(layer)
        y = layer(x, mask=mask, training=True)
        g = rng.normal(size=np.shape(y))
        for w in layer.trainable_weights:
            w.grad = None
        dx = layer.backward(g)

        def loss():
            return float(np.sum(np.asarray(layer(x, mask=mask, training=True)) * g))

        np.testing.assert_allclose(dx, _numeric(loss, x), rtol=1e-6, atol=1e-8)
        for w in layer.trainable_weights:
            np.testing.assert_allclose(np.array(w.grad), _numeric(loss, w.value), rtol=1e-6, atol=1e-8,
                                       err_msg=w.name)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cython_equals_twin(kind, dtype, rng):
    x = rng.normal(size=(6, 7, 3)).astype(dtype)
    results = {}
    for backend in ("cython", "numpy"):
        with K.use_backend(backend):
            layer = _layer(kind, x, dtype=dtype, return_sequences=True, recurrent_dropout=0.3, dropout=0.2,
                           go_backwards=True)
            fix_masks(layer)
            y = layer(x, training=True)
            dx = layer.backward(np.ones_like(y))
            results[backend] = (np.array(y), np.array(dx)) + tuple(np.array(w.grad) for w in layer.trainable_weights)
    assert_twins_close(results["cython"], results["numpy"], np.dtype(dtype))


@pytest.mark.parametrize("kind", KINDS)
def test_inference_ignores_dropout_and_training_applies_it(kind, rng):
    x = rng.normal(size=(5, 6, 3))
    plain = _layer(kind, x, return_sequences=True)
    dropped = _layer(kind, x, return_sequences=True, recurrent_dropout=0.5, seed=4)
    np.testing.assert_array_equal(dropped(x), plain(x))
    a, b = np.asarray(dropped(x, training=True)), np.asarray(plain(x, training=True))
    assert not np.allclose(a, b)
    # the recurrent masks act from the second step on: the first step reads only h0 = 0
    np.testing.assert_allclose(a[:, 0], b[:, 0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_masks_are_per_gate_sample_and_unit(kind, rng):
    """The layer draws (gates, batch, units) recurrent masks: 0 or 1 / (1 - rate), a new draw
    per call; with recurrent_dropout an LSTM's or GRU's input masks are per gate too."""
    x = rng.normal(size=(5, 6, 3))
    layer = _layer(kind, x, recurrent_dropout=0.25, dropout=0.5)
    drawn = []
    original = layer._dropout_masks

    def spy(shape, rate, dtype):
        m = original(shape, rate, dtype)
        drawn.append((shape, rate, m))
        return m
    layer._dropout_masks = spy
    layer(x, training=True)
    k = GATES[kind]
    assert [(s, r) for s, r, _ in drawn] == [((k, 5, 1, 3), 0.5), ((k, 5, 4), 0.25)]
    for _, rate, m in drawn:
        assert set(np.unique(m)) <= {0.0, 1 / (1 - rate)}
    layer(x, training=True)
    assert not np.array_equal(drawn[1][2], drawn[3][2])


@pytest.mark.parametrize("kind", KINDS)
def test_seeded_layers_repeat(kind, rng):
    x = rng.normal(size=(3, 4, 2))
    a = _layer(kind, x, recurrent_dropout=0.4, dropout=0.2, seed=11)
    b = _layer(kind, x, recurrent_dropout=0.4, dropout=0.2, seed=11)
    np.testing.assert_array_equal(a(x, training=True), b(x, training=True))


@pytest.mark.parametrize("kind", KINDS)
def test_config_round_trip(kind):
    layer = getattr(layers, kind)(3, recurrent_dropout=0.25, dropout=0.1, seed=2)
    config = layer.get_config()
    assert config["recurrent_dropout"] == 0.25 and config["dropout"] == 0.1
    assert getattr(layers, kind).from_config(config).get_config() == config


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, "0.2", None])
def test_bad_rate_is_refused(bad):
    with pytest.raises((ValueError, TypeError), match="recurrent_dropout"):
        layers.LSTM(3, recurrent_dropout=bad)


def test_fit_with_recurrent_dropout_learns(rng):
    """A small model with both dropouts trains through fit (the masks go through the tape)."""
    x = rng.normal(size=(64, 6, 3)).astype("float32")
    y = (x[:, :, 0].sum(axis=1) > 0).astype("float32")[:, None]
    model = cynet.Sequential([cynet.Input((6, 3)), layers.GRU(8, dropout=0.1, recurrent_dropout=0.2, seed=1),
                              layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=cynet.optimizers.Adam(0.03), loss="binary_crossentropy")
    hist = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]


# ------------------------------------------------------------------------------ Keras oracle

def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3") or keras.backend.backend() != "torch":
        pytest.skip("needs Keras 3 with KERAS_BACKEND=torch")
    return keras


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_matches_keras_with_the_same_masks(kind, dropout, rng):
    """Inference equals Keras; in training, Keras's cell is handed the masks cynet drew (its
    cached-mask slots, which RNN.call uses and then clears), and the outputs, input gradient
    and one SGD step agree."""
    keras = _keras()
    import torch

    x = rng.normal(size=(5, 6, 3)).astype(np.float32)
    kw = dict(return_sequences=True, recurrent_dropout=0.4, dropout=dropout)
    theirs = getattr(keras.layers, kind)(4, **kw)
    theirs.build(x.shape)
    theirs.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in theirs.get_weights()])
    ours = getattr(layers, kind)(4, **kw)
    ours(x)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours(x), keras.ops.convert_to_numpy(theirs(torch.tensor(x))), rtol=1e-5, atol=1e-6)

    masks = fix_masks(ours)
    g = rng.normal(size=(5, 6, 4)).astype(np.float32)
    for w in ours.trainable_weights:
        w.grad = None
    cy = ours(x, training=True)
    cdx = ours.backward(g)
    k = GATES[kind]

    def handed(m):   # ours (k, N, ..., F) -> Keras's list of k (N, F) masks, or one for SimpleRNN
        ms = [torch.tensor(np.ascontiguousarray(m[j].reshape(m.shape[1], m.shape[-1]))) for j in range(len(m))]
        return ms[0] if kind == "SimpleRNN" else ms

    for (shape, rate), m in masks.items():
        if len(shape) == 4:
            theirs.cell._dropout_mask = handed(m)
        else:
            theirs.cell._recurrent_dropout_mask = handed(m)
    assert len(masks) == (2 if dropout else 1) and all(s[0] == k for s, _ in masks)
    xt = torch.tensor(x, requires_grad=True)
    ky = theirs(xt, training=True)
    np.testing.assert_allclose(cy, ky.detach().numpy(), rtol=1e-5, atol=1e-6)
    (ky * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(cdx, xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    kgrads = [w.value.grad.numpy() for w in theirs.trainable_weights]
    lr = 0.1
    keras.optimizers.SGD(lr).apply([torch.tensor(kg) for kg in kgrads], theirs.trainable_weights)
    cynet.optimizers.SGD(lr).apply([np.array(w.grad) for w in ours.trainable_weights], ours.trainable_weights)
    for c, kv in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(c, kv, rtol=1e-5, atol=1e-6)
