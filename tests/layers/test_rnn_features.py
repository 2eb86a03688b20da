"""SimpleRNN / LSTM / GRU features: masks (a call argument; Keras 3 semantics: a masked step is
skipped with the states carried over, the output at a masked step is the last unmasked step's,
zeros before the first one), stateful=True with reset_states(), unroll accepted, and their
checks: float64 gradients against central differences on both backends, Cython against the
twin, config round trip, and (when Keras 3 with the torch backend is installed) outputs,
gradients and one SGD step equal to Keras with copied weights."""
import os

import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet import layers
from cynet.testing import assert_twins_close

KINDS = ("SimpleRNN", "LSTM", "GRU")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def make_mask(N, T, rng):
    """Random masks with a sample masked at its start, one at its end and one fully masked."""
    mask = rng.random((N, T)) > 0.3
    mask[0, :2] = False
    mask[1, -2:] = False
    mask[2] = False
    return mask


def _layer(kind, x, dtype="float64", **kwargs):
    layer = getattr(layers, kind)(4, dtype=dtype, **kwargs)
    layer(x)   # build
    rng = np.random.default_rng(1)
    layer.set_weights([rng.normal(0, 0.5, w.shape).astype(dtype) for w in layer.get_weights()])
    return layer


def _naive_masked_outputs(layer, x, mask):
    """Per step with the layer on one-step sequences: the reference of the mask semantics."""
    N, T, _ = x.shape
    order = range(T - 1, -1, -1) if layer.go_backwards else range(T)
    cell = type(layer)(layer.units, **{k: v for k, v in layer.get_config().items()
                                       if k in ("activation", "use_bias", "recurrent_activation")},
                       return_state=True, dtype=layer.dtype)
    cell(x[:, :1])
    cell.set_weights(layer.get_weights())
    states = [np.zeros((N, layer.units))] * (2 if isinstance(layer, layers.LSTM) else 1)
    outputs, prev_out = [], np.zeros((N, layer.units))
    for t in order:
        out = cell(x[:, t:t + 1], initial_state=states)
        new_states = [np.array(s) for s in out[1:]]
        m = mask[:, t:t + 1]
        states = [np.where(m, s, p) for s, p in zip(new_states, states)]
        prev_out = np.where(m, np.array(out[0]), prev_out)
        outputs.append(prev_out)
    return np.stack(outputs, axis=1), states


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_mask_matches_step_by_step_definition(kind, return_sequences, go_backwards, rng):
    x = rng.normal(size=(5, 6, 3))
    mask = make_mask(5, 6, rng)
    layer = _layer(kind, x, return_sequences=return_sequences, go_backwards=go_backwards, return_state=True)
    out = layer(x, mask=mask)
    ref, ref_states = _naive_masked_outputs(layer, x, mask)
    expected = ref if return_sequences else ref[:, -1]
    np.testing.assert_allclose(out[0], expected, rtol=1e-10, atol=1e-12)
    for got, want in zip(out[1:], ref_states):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert np.all(np.asarray(out[0])[2] == 0)      # a fully masked sample outputs zeros


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_mask_gradients(backend, kind, return_sequences, rng):
    x = rng.normal(size=(4, 5, 3))
    mask = make_mask(4, 5, rng)
    with K.use_backend(backend):
        layer = _layer(kind, x, return_sequences=return_sequences)
        _check_masked_gradients(layer, x, mask)


def _check_masked_gradients(layer, x, mask, eps=1e-6):
    """check_layer_gradients with the mask given to every call: the input and every weight
    against central differences of sum(layer(x, mask=mask) * g)."""
    rng = np.random.default_rng(5)
    y = layer(x, mask=mask)
    g = rng.normal(size=np.shape(y))
    for w in layer.trainable_weights:
        w.grad = None
    dx = layer.backward(g)

    def loss():
        return float(np.sum(np.asarray(layer(x, mask=mask)) * g))

    def numeric(a):
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

    np.testing.assert_allclose(dx, numeric(x), rtol=1e-6, atol=1e-8)
    for w in layer.trainable_weights:
        grad = np.array(w.grad)
        np.testing.assert_allclose(grad, numeric(w.value), rtol=1e-6, atol=1e-8, err_msg=w.name)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mask_cython_equals_twin(kind, dtype, rng):
    x = rng.normal(size=(6, 7, 3)).astype(dtype)
    mask = make_mask(6, 7, rng)
    results = {}
    for backend in ("cython", "numpy"):
        with K.use_backend(backend):
            layer = _layer(kind, x, dtype=dtype, return_sequences=True)
            y = layer(x, mask=mask)
            g = np.ones_like(y)
            dx = layer.backward(g)
            results[backend] = (np.array(y), np.array(dx)) + tuple(np.array(w.grad) for w in layer.trainable_weights)
    assert_twins_close(results["cython"], results["numpy"], np.dtype(dtype))


def test_all_true_mask_changes_nothing(rng):
    x = rng.normal(size=(3, 4, 3))
    layer = _layer("LSTM", x, return_sequences=True)
    np.testing.assert_array_equal(layer(x, mask=np.ones((3, 4), bool)), layer(x))


def test_bad_mask_is_refused(rng):
    x = rng.normal(size=(3, 4, 3))
    layer = _layer("GRU", x)
    with pytest.raises(ValueError, match=r"mask must be booleans of shape \(batch, timesteps\)"):
        layer(x, mask=np.ones((3, 5), bool))


@pytest.mark.parametrize("kind", KINDS)
def test_supports_masking_and_compute_mask(kind):
    layer = getattr(layers, kind)(3, return_sequences=True, return_state=True)
    assert layer.supports_masking
    m = np.ones((2, 4), bool)
    out = layer.compute_mask(None, m)
    assert out[0] is m and all(s is None for s in out[1:])
    assert getattr(layers, kind)(3).compute_mask(None, m) is None


# ------------------------------------------------------------------------------ stateful, unroll

@pytest.mark.parametrize("kind", KINDS)
def test_stateful_carries_states_between_calls(kind, rng):
    x = rng.normal(size=(2, 6, 3))
    full = _layer(kind, x, return_sequences=True)
    stateful = _layer(kind, x, return_sequences=True, stateful=True)
    stateful.set_weights(full.get_weights())
    stateful.reset_states()
    want = np.array(full(x))
    got = np.concatenate([np.array(stateful(x[:, :3])), np.array(stateful(x[:, 3:]))], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    stateful.reset_states()
    np.testing.assert_allclose(stateful(x[:, :3]), want[:, :3], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="batch size of the input sequences must be the same"):
        stateful(x[:1])


def test_stateful_in_a_model_with_reset(rng):
    x = rng.normal(size=(4, 5, 3)).astype(np.float32)
    y = rng.normal(size=(4, 1)).astype(np.float32)
    model = cynet.Sequential([cynet.Input((5, 3), batch_size=4), layers.LSTM(4, stateful=True), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False)
    lstm = model.layers[0]
    assert lstm.states is not None and np.any(lstm.states[0] != 0)
    first = model.predict(x, batch_size=4, verbose=0)
    second = model.predict(x, batch_size=4, verbose=0)
    assert not np.allclose(first, second)            # the states moved on
    lstm.reset_states()
    a = model.predict(x, batch_size=4, verbose=0)
    lstm.reset_states()
    np.testing.assert_array_equal(model.predict(x, batch_size=4, verbose=0), a)


@pytest.mark.parametrize("kind", KINDS)
def test_config_round_trip_with_features(kind):
    layer = getattr(layers, kind)(3, stateful=True, unroll=True, go_backwards=True, return_state=True)
    config = layer.get_config()
    assert config["stateful"] and config["unroll"] and config["go_backwards"]
    again = getattr(layers, kind).from_config(config)
    assert again.get_config() == config


# ------------------------------------------------------------------------------ Keras oracle

def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3") or keras.backend.backend() != "torch":
        pytest.skip("needs Keras 3 with KERAS_BACKEND=torch")
    return keras


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("return_sequences,go_backwards", [(False, False), (True, False), (False, True),
                                                           (True, True)])
def test_mask_matches_keras_predict_and_sgd_step(kind, return_sequences, go_backwards, rng):
    keras = _keras()
    import torch

    x = rng.normal(size=(5, 6, 3)).astype(np.float32)
    mask = make_mask(5, 6, rng)
    kw = dict(return_sequences=return_sequences, go_backwards=go_backwards)
    theirs = getattr(keras.layers, kind)(4, **kw)
    theirs.build(x.shape)
    theirs.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in theirs.get_weights()])
    ours = getattr(layers, kind)(4, **kw)
    ours(x)
    ours.set_weights(theirs.get_weights())
    # predict
    ky = theirs(torch.tensor(x), mask=torch.tensor(mask))
    cy = ours(x, mask=mask)
    np.testing.assert_allclose(cy, keras.ops.convert_to_numpy(ky), rtol=1e-5, atol=1e-6)
    # one SGD step on sum(output * g)
    g = rng.normal(size=np.shape(cy)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    (theirs(xt, mask=torch.tensor(mask), training=True) * torch.tensor(g)).sum().backward()
    kgrads = [w.value.grad.numpy() for w in theirs.trainable_weights]
    for w in ours.trainable_weights:
        w.grad = None
    ours(x, mask=mask, training=True)
    cdx = ours.backward(g)
    np.testing.assert_allclose(cdx, xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    lr = 0.1
    keras.optimizers.SGD(lr).apply([torch.tensor(k) for k in kgrads], theirs.trainable_weights)
    cynet.optimizers.SGD(lr).apply([np.array(w.grad) for w in ours.trainable_weights], ours.trainable_weights)
    for c, k in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(c, k, rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_mask_with_initial_state_and_return_state_matches_keras(rng):
    """Leading masked steps: Keras outputs zeros there while the states stay the initial ones."""
    keras = _keras()
    import torch

    x = rng.normal(size=(4, 5, 3)).astype(np.float32)
    mask = make_mask(4, 5, rng)
    h0, c0 = (rng.normal(size=(4, 4)).astype(np.float32) for _ in range(2))
    theirs = keras.layers.LSTM(4, return_sequences=True, return_state=True)
    theirs.build(x.shape)
    ours = layers.LSTM(4, return_sequences=True, return_state=True)
    ours(x)
    ours.set_weights(theirs.get_weights())
    kout = theirs(torch.tensor(x), initial_state=[torch.tensor(h0), torch.tensor(c0)], mask=torch.tensor(mask))
    cout = ours(x, initial_state=[h0, c0], mask=mask)
    for c, k in zip(cout, kout):
        np.testing.assert_allclose(c, keras.ops.convert_to_numpy(k), rtol=1e-5, atol=1e-6)
