"""RNN and the cells (SimpleRNNCell, LSTMCell, GRUCell, StackedRNNCells, a user-defined cell):
float64 gradients against central differences on both backends, a cell step against the fused
layer's one step, masks / go_backwards / return_state / stateful, initial states from another layer
of a Functional model, config round trips, symbolic shapes, refused arguments, and (when Keras 3
is installed) predictions and one SGD step equal to Keras's with copied weights."""
import os

import numpy as np
import pytest

import cynet
from cynet import layers, ops
from cynet.testing import check_layer_gradients

os.environ.setdefault("KERAS_BACKEND", "torch")


class MinimalRNNCell(layers.Layer):
    """The minimal cell of Keras's guide "Working with RNNs"."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform",
                                      name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), initializer="orthogonal",
                                                name="recurrent_kernel")

    def call(self, inputs, states):
        prev_output = states[0]
        h = ops.matmul(inputs, self.kernel)
        output = ops.tanh(h + ops.matmul(prev_output, self.recurrent_kernel))
        return output, [output]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class Joined(layers.Layer):
    """The outputs of a return_state RNN joined into one array (check_layer_gradients checks one
    output)."""

    def __init__(self, rnn, **kwargs):
        super().__init__(**kwargs)
        self.rnn = rnn

    def call(self, x):
        outs = self.rnn(x)
        return ops.concatenate([ops.reshape(o, (x.shape[0], -1)) for o in outs], axis=-1)


CELLS = {
    "simple": lambda dt: layers.SimpleRNNCell(4, dtype=dt),
    "lstm": lambda dt: layers.LSTMCell(4, dtype=dt),
    "gru": lambda dt: layers.GRUCell(4, dtype=dt),
    "gru_reset_before": lambda dt: layers.GRUCell(4, reset_after=False, dtype=dt),
    "stacked": lambda dt: [layers.LSTMCell(3, dtype=dt), layers.GRUCell(4, dtype=dt)],
    "custom": lambda dt: MinimalRNNCell(4, dtype=dt),
}


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def _randomize(layer, rng):
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in layer.get_weights()])


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("kind", sorted(CELLS))
@pytest.mark.parametrize("opts", [dict(return_sequences=True), dict(go_backwards=True),
                                  dict(return_state=True, return_sequences=True)], ids=["seq", "back", "state"])
def test_gradients(kind, opts, backend, rng):
    x = rng.standard_normal((2, 4, 3))
    layer = layers.RNN(CELLS[kind]("float64"), **opts)
    layer(x)
    _randomize(layer, rng)
    if layer.return_state:
        layer = Joined(layer, dtype="float64")
    with cynet.kernels.use_backend(backend):
        check_layer_gradients(layer, x)


@pytest.mark.parametrize("kind", ["simple", "lstm", "gru"])
def test_gradients_reach_initial_state_and_mask(kind, rng):
    x = rng.standard_normal((3, 5, 2))
    cell = CELLS[kind]("float64")
    layer = layers.RNN(cell, return_sequences=True)
    layer(x)
    n_states = len(layer.state_size)
    h0 = [rng.standard_normal((3, 4)) for _ in range(n_states)]
    mask = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1], [1, 0, 0, 0, 0]], bool)
    out = layer(x, initial_state=h0, mask=mask)
    g = rng.standard_normal(out.shape)
    grads = layer.backward(g)
    eps = 1e-6
    for k in range(n_states):   # the initial states' gradients against central differences
        num = np.zeros_like(h0[k])
        for idx in np.ndindex(h0[k].shape):
            hp = [a.copy() for a in h0]
            hm = [a.copy() for a in h0]
            hp[k][idx] += eps
            hm[k][idx] -= eps
            num[idx] = (np.sum(layer(x, initial_state=hp, mask=mask) * g)
                        - np.sum(layer(x, initial_state=hm, mask=mask) * g)) / (2 * eps)
        np.testing.assert_allclose(grads[1 + k], num, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("kind,fused", [("simple", "SimpleRNN"), ("lstm", "LSTM"), ("gru", "GRU")])
def test_matches_fused_layer(kind, fused, rng):
    """The cell's sequence (and one step alone) equals the fused layer with the same weights."""
    x = rng.standard_normal((3, 6, 2))
    cell = CELLS[kind]("float64")
    ours = layers.RNN(cell, return_sequences=True, return_state=True)
    ours(x)
    _randomize(ours, rng)
    theirs = getattr(layers, fused)(4, return_sequences=True, return_state=True, dtype="float64")
    theirs(x)
    theirs.set_weights(ours.get_weights())
    mask = np.ones((3, 6), bool)
    mask[0, 4:] = False
    mask[1, :2] = False
    for kw in ({}, {"mask": mask}):
        for a, b in zip(ours(x, **kw), theirs(x, **kw)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    step = [rng.standard_normal((3, 4)) for _ in ours.state_size]
    out, states = cell(x[:, 0], step)
    ref = theirs(x[:, :1], initial_state=step)
    np.testing.assert_allclose(out, ref[0][:, 0], rtol=1e-10, atol=1e-12)
    for a, b in zip(states, ref[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_mask_semantics(rng):
    """A masked step keeps the states; the output is the previous one (zeros before the first kept
    step), or zeros with zero_output_for_mask."""
    x = rng.standard_normal((1, 4, 2))
    mask = np.array([[False, True, False, True]])
    for zero in (False, True):
        layer = layers.RNN(layers.SimpleRNNCell(3), return_sequences=True, zero_output_for_mask=zero)
        y = layer(x, mask=mask)
        np.testing.assert_array_equal(y[0, 0], 0.0)
        if zero:
            np.testing.assert_array_equal(y[0, 2], 0.0)
        else:
            np.testing.assert_array_equal(y[0, 2], y[0, 1])
        only = layers.RNN(layer.cell, return_sequences=True)(x[:, [1, 3]])
        np.testing.assert_allclose(y[0, [1, 3]], only[0], rtol=1e-6)


def test_stateful_and_reset_states(rng):
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    full = layers.RNN(layers.LSTMCell(4))
    want = full(x)
    stateful = layers.RNN(layers.LSTMCell(4), stateful=True)
    stateful(x[:, :3])
    stateful.set_weights(full.get_weights())
    stateful.reset_states()
    stateful(x[:, :3])
    np.testing.assert_allclose(stateful(x[:, 3:]), want, rtol=1e-5, atol=1e-6)
    stateful.reset_states()
    np.testing.assert_allclose(stateful(x[:, :3]), layers.RNN(full.cell)(x[:, :3]), rtol=1e-6)
    with pytest.raises(ValueError, match="batch size"):
        stateful(x[:1, :3])


def test_functional_encoder_decoder_gradients(rng):
    """Initial states from an encoder's return_state reach the decoder RNN; both train."""
    enc_in = cynet.Input((5, 3))
    dec_in = cynet.Input((4, 2))
    _, h, c = layers.RNN(layers.LSTMCell(6), return_state=True)(enc_in)
    seq = layers.RNN(layers.LSTMCell(6), return_sequences=True)(dec_in, initial_state=[h, c])
    assert seq.shape == (None, 4, 6)
    out = layers.Dense(1)(seq)
    model = cynet.Model([enc_in, dec_in], out)
    model.compile(optimizer=cynet.optimizers.SGD(0.1), loss="mse")
    xe = rng.standard_normal((8, 5, 3)).astype(np.float32)
    xd = rng.standard_normal((8, 4, 2)).astype(np.float32)
    y = rng.standard_normal((8, 4, 1)).astype(np.float32)
    before = [w.copy() for w in model.get_weights()]
    model.train_on_batch([xe, xd], y)
    after = model.get_weights()
    assert all(not np.allclose(a, b) for a, b in zip(before, after))   # the encoder's weights moved too
    assert model.predict([xe, xd], verbose=0).shape == (8, 4, 1)


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_symbolic_shapes_and_config_round_trip(kind, rng):
    layer = layers.RNN(CELLS[kind]("float32"), return_sequences=True, return_state=True)
    outs = layer(cynet.Input((7, 3)))
    sizes = [3, 3, 4] if kind == "stacked" else [4] * len(layer.state_size)
    assert [o.shape for o in outs] == [(None, 7, 4)] + [(None, s) for s in sizes]
    config = layer.get_config()
    assert set(config["cell"]) >= {"class_name", "config"}
    custom = {"MinimalRNNCell": MinimalRNNCell}
    with cynet.saving.custom_object_scope(custom):
        clone = layers.deserialize(layers.serialize(layer))
    assert clone.get_config() == config
    x = rng.standard_normal((2, 7, 3)).astype(np.float32)
    clone(x)
    clone.set_weights(layer.get_weights())
    for a, b in zip(clone(x), layer(x)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_keras_config_layout():
    config = layers.RNN(layers.LSTMCell(3)).get_config()
    assert config["cell"]["class_name"] == "LSTMCell"
    assert {"return_sequences", "return_state", "go_backwards", "stateful", "unroll",
            "zero_output_for_mask"} <= set(config)
    assert config["cell"]["config"]["unit_forget_bias"] is True
    gru = layers.GRUCell(3)
    gru.build((None, 2))
    assert gru.bias.shape == (2, 9)
    gru = layers.GRUCell(3, reset_after=False)
    gru.build((None, 2))
    assert gru.bias.shape == (9,)
    lstm = layers.LSTMCell(3)
    lstm.build((None, 2))
    np.testing.assert_array_equal(np.asarray(lstm.bias.value), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    assert [w.name for w in lstm.weights] == ["kernel", "recurrent_kernel", "bias"]


@pytest.mark.parametrize("make,match", [
    (lambda: layers.LSTMCell(0), "units"),
    (lambda: layers.GRUCell(3, dropout=0.2), "dropout"),
    (lambda: layers.SimpleRNNCell(3, recurrent_dropout=0.2), "recurrent_dropout"),
    (lambda: layers.SimpleRNNCell(3, dropout=1.5), "dropout"),
    (lambda: layers.LSTMCell(3, activation="nope"), "activation"),
    (lambda: layers.GRUCell(3, reset_after="yes"), "reset_after"),
    (lambda: layers.RNN(object()), "cell"),
    (lambda: layers.RNN(layers.Dense(3)), "state_size"),
    (lambda: layers.RNN(layers.LSTMCell(3), return_sequences="yes"), "return_sequences"),
    (lambda: layers.StackedRNNCells([]), "cells"),
])
def test_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError, NotImplementedError), match=match):
        make()


def test_bad_calls(rng):
    layer = layers.RNN(layers.LSTMCell(3))
    with pytest.raises(ValueError, match="3-dimensional|inputs"):
        layer(np.zeros((2, 3)))
    x = rng.standard_normal((2, 4, 3))
    with pytest.raises(ValueError, match="initial_state"):
        layer(x, initial_state=[np.zeros((2, 3))])
    with pytest.raises(ValueError, match="initial_state"):
        layer(x, initial_state=[np.zeros((2, 5)), np.zeros((2, 3))])
    with pytest.raises(ValueError, match="mask"):
        layer(x, mask=np.ones((2, 5), bool))
    with pytest.raises(TypeError, match="states"):
        layers.LSTMCell(3)(x[:, 0])


# ---------------------------------------------------------------------------------- Keras 3
def _keras():
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3; found {keras.__version__}")
    return keras


def _keras_cells(keras, kind):
    k = keras.layers
    if kind == "custom":
        class KMinimal(keras.layers.Layer):
            def __init__(self, units, **kwargs):
                super().__init__(**kwargs)
                self.units = units
                self.state_size = units

            def build(self, input_shape):
                self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
                self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), name="recurrent_kernel")

            def call(self, inputs, states):
                out = keras.ops.tanh(keras.ops.matmul(inputs, self.kernel)
                                     + keras.ops.matmul(states[0], self.recurrent_kernel))
                return out, [out]
        return KMinimal(4)
    return {"simple": lambda: k.SimpleRNNCell(4), "lstm": lambda: k.LSTMCell(4), "gru": lambda: k.GRUCell(4),
            "gru_reset_before": lambda: k.GRUCell(4, reset_after=False),
            "stacked": lambda: [k.LSTMCell(3), k.GRUCell(4)]}[kind]()


@pytest.mark.parametrize("kind", sorted(CELLS))
@pytest.mark.parametrize("opts", [dict(), dict(return_sequences=True, return_state=True),
                                  dict(go_backwards=True, return_sequences=True),
                                  dict(return_sequences=True, zero_output_for_mask=True)],
                         ids=["last", "seq_state", "backwards", "zero_mask"])
def test_predictions_match_keras(kind, opts, rng):
    keras = _keras()
    x = rng.standard_normal((3, 5, 2)).astype(np.float32)
    mask = np.ones((3, 5), bool)
    mask[0, 3:] = False
    mask[2, 1] = False
    theirs = keras.layers.RNN(_keras_cells(keras, kind), **opts)
    ours = layers.RNN(CELLS[kind]("float32"), **opts)
    theirs(x)
    ours(x)
    _randomize(ours, rng)
    theirs.set_weights([w.astype(np.float32) for w in ours.get_weights()])
    for kw in ({}, {"mask": mask}):
        want = theirs(x, **kw)
        got = ours(x, **kw)
        want = [want] if not isinstance(want, (list, tuple)) else list(keras.tree.flatten(want))
        got = [got] if not isinstance(got, list) else got
        assert len(got) == len(want)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, keras.ops.convert_to_numpy(b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_sgd_step_matches_keras(kind, rng):
    keras = _keras()
    x = rng.standard_normal((4, 5, 2)).astype(np.float32)
    y = rng.standard_normal((4, 5, 4)).astype(np.float32)
    theirs = keras.Sequential([keras.Input((5, 2)), keras.layers.RNN(_keras_cells(keras, kind),
                                                                     return_sequences=True)])
    ours = cynet.models.Sequential([cynet.Input((5, 2)), layers.RNN(CELLS[kind]("float32"), return_sequences=True)])
    _randomize(ours, rng)
    theirs.set_weights(ours.get_weights())
    theirs.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    ours.compile(optimizer=cynet.optimizers.SGD(0.5), loss="mse")
    theirs.train_on_batch(x, y)
    ours.train_on_batch(x, y)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["lstm", "gru", "stacked"])
def test_embedding_mask_reaches_the_rnn_as_in_keras(kind, rng):
    keras = _keras()
    tokens = np.array([[3, 1, 0, 0], [0, 2, 5, 0], [4, 4, 4, 4]])

    ours = cynet.models.Sequential([cynet.Input((4,)), layers.Embedding(6, 2, mask_zero=True),
                                    layers.RNN(CELLS[kind]("float32"), return_sequences=True)])
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Embedding(6, 2, mask_zero=True),
                               keras.layers.RNN(_keras_cells(keras, kind), return_sequences=True)])
    _randomize(ours, rng)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours.predict(tokens, verbose=0), theirs.predict(tokens, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_dropout_and_implementation():
    for cls in (layers.SimpleRNNCell, layers.LSTMCell, layers.GRUCell):
        with pytest.raises(NotImplementedError, match="dropout"):
            cls(2, dropout=0.1)
        with pytest.raises(NotImplementedError, match="recurrent_dropout"):
            cls(2, recurrent_dropout=0.1)
    assert layers.LSTMCell(2, implementation=1).units == 2
    with pytest.raises(ValueError, match="implementation"):
        layers.GRUCell(2, implementation=3)
