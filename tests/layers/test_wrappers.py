"""Bidirectional and TimeDistributed: composite layers whose pieces are recorded on the tape."""
import numpy as np
import pytest

import cynet
from cynet import layers
from cynet.testing import numerical_gradient

F64 = "float64"


def _check(layer, x, rng):
    out = layer(x)
    outs = out if isinstance(out, list) else [out]
    gs = [rng.standard_normal(o.shape) for o in outs]
    dx = layer.backward(gs if isinstance(out, list) else gs[0])
    analytic = [v.grad.copy() for v in layer.trainable_weights]

    def loss():
        o = layer(x)
        return sum(float(np.sum(a * g)) for a, g in zip(o if isinstance(o, list) else [o], gs))
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)
    for v, a in zip(layer.trainable_weights, analytic):
        np.testing.assert_allclose(a, numerical_gradient(loss, v.value), rtol=1e-6, atol=1e-8, err_msg=v.path)
    return out


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("cell", [layers.SimpleRNN, layers.LSTM, layers.GRU])
def test_bidirectional_gradients(rng, cell, merge_mode):
    bi = layers.Bidirectional(cell(3, return_sequences=True, dtype=F64), merge_mode=merge_mode)
    x = rng.standard_normal((2, 4, 5))
    out = _check(bi, x, rng)
    forward = bi.forward_layer(x)
    backward = bi.backward_layer(x)[:, ::-1]
    want = {"concat": np.concatenate([forward, backward], -1), "sum": forward + backward,
            "mul": forward * backward, "ave": (forward + backward) / 2, None: None}[merge_mode]
    if merge_mode is None:
        np.testing.assert_allclose(out[0], forward)
        np.testing.assert_allclose(out[1], backward)
    else:
        np.testing.assert_allclose(out, want, rtol=1e-12)
    assert [v.shape for v in bi.weights] == [v.shape for v in bi.forward_layer.weights] * 2


def test_bidirectional_last_output_and_states(rng):
    bi = layers.Bidirectional(layers.LSTM(3, return_state=True, dtype=F64))
    x = rng.standard_normal((2, 4, 5))
    out = _check(bi, x, rng)
    assert [o.shape for o in out] == [(2, 6)] + [(2, 3)] * 4
    assert bi.compute_output_shape((None, 4, 5)) == [(None, 6)] + [(None, 3)] * 4


def test_time_distributed_dense_and_conv(rng):
    td = layers.TimeDistributed(layers.Dense(4, activation="tanh", dtype=F64))
    out = _check(td, rng.standard_normal((2, 3, 5)), rng)
    assert out.shape == (2, 3, 4)
    conv = layers.TimeDistributed(layers.Conv2D(2, 3, dtype=F64))
    out = _check(conv, rng.standard_normal((2, 2, 5, 5, 1)), rng)
    assert out.shape == (2, 2, 3, 3, 2)
    x = rng.standard_normal((2, 3, 5))
    np.testing.assert_allclose(td(x), np.stack([td.layer(x[:, t]) for t in range(3)], axis=1))


def test_wrappers_in_a_functional_model_train_and_round_trip(rng, tmp_path):
    inp = cynet.Input((6, 5))
    h = layers.Bidirectional(layers.GRU(4, return_sequences=True), merge_mode="sum")(inp)
    out = layers.TimeDistributed(layers.Dense(2))(h)
    model = cynet.Model(inp, out)
    assert out.shape == (None, 6, 2)
    model.compile("adam", "mse")
    x, y = rng.random((8, 6, 5)).astype("float32"), rng.random((8, 6, 2)).astype("float32")
    model.fit(x, y, epochs=2, verbose=0)
    path = str(tmp_path / "m.cynet")
    model.save(path)
    loaded = cynet.models.load_model(path)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_wrapper_arguments_are_checked():
    with pytest.raises(ValueError, match="must be a recurrent layer"):
        layers.Bidirectional(layers.Dense(2))
    with pytest.raises(ValueError, match="merge_mode must be one of"):
        layers.Bidirectional(layers.LSTM(2), merge_mode="avg")
    with pytest.raises(ValueError, match="go_backwards opposite"):
        layers.Bidirectional(layers.LSTM(2), backward_layer=layers.LSTM(2))
    with pytest.raises(ValueError, match="layer must be a cynet layer"):
        layers.TimeDistributed("dense")
    with pytest.raises(ValueError, match="at least 3-dimensional"):
        layers.TimeDistributed(layers.Dense(2))(np.ones((2, 3), np.float32))
