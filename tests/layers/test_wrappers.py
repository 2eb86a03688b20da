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


# ------------------------------------------------------------------------------ Bidirectional:
# initial_state, masks (zero_output_for_mask) and merge modes against Keras 3

def test_bidirectional_initial_state_gradients(rng):
    """initial_state = forward states then backward states; each layer starts from its own."""
    bi = layers.Bidirectional(layers.LSTM(3, return_sequences=True, dtype=F64))
    x = rng.standard_normal((2, 4, 5))
    states = [rng.standard_normal((2, 3)) for _ in range(4)]
    out = bi(x, initial_state=states)
    np.testing.assert_allclose(out[..., :3], bi.forward_layer(x, initial_state=states[:2]))
    np.testing.assert_allclose(out[..., 3:], bi.backward_layer(x, initial_state=states[2:])[:, ::-1])
    assert not np.allclose(out, bi(x))
    g = rng.standard_normal(out.shape)
    bi(x, initial_state=states)
    dx = bi.backward(g)

    def loss():
        return float(np.sum(bi(x, initial_state=states) * g))
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)


def test_bidirectional_initial_state_is_checked(rng):
    bi = layers.Bidirectional(layers.GRU(3))
    x = rng.standard_normal((2, 4, 5)).astype("float32")
    with pytest.raises(ValueError, match="initial_state must be a list of 2 arrays"):
        bi(x, initial_state=[np.zeros((2, 3))])
    with pytest.raises(ValueError, match="initial_state"):
        bi(x, initial_state=[np.zeros((2, 3)), np.zeros((2, 4))])


def test_bidirectional_initial_state_in_a_functional_model(rng):
    """An encoder's states feed a bidirectional decoder (symbolic initial_state); the gradient
    reaches the encoder through them."""
    enc_in, dec_in = cynet.Input((5, 3)), cynet.Input((4, 2))
    encoder = layers.LSTM(6, return_state=True)
    _, h, c = encoder(enc_in)
    out = layers.Bidirectional(layers.LSTM(6))(dec_in, initial_state=[h, c, h, c])
    model = cynet.Model([enc_in, dec_in], layers.Dense(1)(out))
    model.compile("sgd", "mse")
    xs = [rng.random((16, 5, 3)).astype("float32"), rng.random((16, 4, 2)).astype("float32")]
    y = rng.random((16, 1)).astype("float32")
    before = encoder.get_weights()[0].copy()
    model.fit(xs, y, epochs=2, batch_size=8, verbose=0)
    assert not np.allclose(encoder.get_weights()[0], before)


def test_zero_output_for_mask(rng):
    x = rng.standard_normal((3, 5, 2))
    mask = rng.random((3, 5)) > 0.4
    mask[0, -1] = False
    a = layers.GRU(4, return_sequences=True, dtype=F64)
    b = layers.GRU(4, return_sequences=True, zero_output_for_mask=True, dtype=F64)
    a(x)
    b(x)
    b.set_weights(a.get_weights())
    ya, yb = np.asarray(a(x, mask=mask)), np.asarray(b(x, mask=mask))
    np.testing.assert_array_equal(yb, np.where(mask[..., None], ya, 0))
    assert b.get_config()["zero_output_for_mask"] is True
    assert layers.Bidirectional(layers.GRU(2, return_sequences=True)).forward_layer.zero_output_for_mask


def _keras():
    import os
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3") or keras.backend.backend() != "torch":
        pytest.skip("needs Keras 3 with KERAS_BACKEND=torch")
    return keras


_BI_CASES = [(kind, merge, True, True, False) for kind in ("SimpleRNN", "LSTM", "GRU")
             for merge in ("concat", "sum", "mul", "ave", None)]
_BI_CASES += [(kind, merge, seqs, True, True) for kind in ("LSTM", "GRU") for merge in ("concat", None)
              for seqs in (False, True)]
_BI_CASES += [("LSTM", "concat", False, False, False), ("GRU", "ave", True, False, True)]


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
@pytest.mark.parametrize("kind,merge_mode,return_sequences,masked,states", _BI_CASES)
def test_bidirectional_matches_keras(rng, kind, merge_mode, return_sequences, masked, states):
    """Outputs, the input gradient and every weight gradient equal Keras 3's with copied weights:
    masks (zeros at masked steps of returned sequences), merge modes, return_state with
    initial_state."""
    keras = _keras()
    import torch

    N, T, D, U = 4, 6, 3, 5
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    mask = rng.random((N, T)) > 0.35
    mask[0, :2] = False
    mask[1, -2:] = False
    n_states = 2 if kind == "LSTM" else 1
    init = [rng.standard_normal((N, U)).astype(np.float32) for _ in range(2 * n_states)] if states else None
    kw = dict(return_sequences=return_sequences, return_state=states)
    theirs = keras.layers.Bidirectional(getattr(keras.layers, kind)(U, **kw), merge_mode=merge_mode)
    theirs.build(x.shape)
    theirs.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in theirs.get_weights()])
    ours = layers.Bidirectional(getattr(layers, kind)(U, **kw), merge_mode=merge_mode)
    ours(x)
    ours.set_weights(theirs.get_weights())

    call = {}
    if masked:
        call["mask"] = mask
    if states:
        call["initial_state"] = init
    xt = torch.tensor(x, requires_grad=True)
    kout = theirs(xt, **{k: ([torch.tensor(s) for s in v] if k == "initial_state" else torch.tensor(v))
                         for k, v in call.items()})
    kout = list(kout) if isinstance(kout, (list, tuple)) else [kout]
    cout = ours(x, **call)
    cout = cout if isinstance(cout, list) else [cout]
    assert len(cout) == len(kout)
    for c, k in zip(cout, kout):
        np.testing.assert_allclose(c, k.detach().numpy(), rtol=1e-5, atol=1e-6)
    gs = [rng.standard_normal(np.shape(c)).astype(np.float32) for c in cout]
    sum((k * torch.tensor(g)).sum() for k, g in zip(kout, gs)).backward()
    for w in ours.trainable_weights:
        w.grad = None
    ours(x, **call)
    cdx = ours.backward(gs if len(gs) > 1 else gs[0])
    np.testing.assert_allclose(cdx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    for c, k in zip(ours.trainable_weights, theirs.trainable_weights):
        np.testing.assert_allclose(np.array(c.grad), k.value.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=c.path)
