"""The recurrent layers under the mixed_bfloat16 policy: SimpleRNN, LSTM, GRU (and Bidirectional
through them) run every matrix product of the sequence in bfloat16 (cynet.kernels.rnn's bf16),
the gates, states and bias sums in float32.

Checked: output and every gradient (input, kernel, recurrent_kernel, bias) within bfloat16's
tolerance of the float32 layer with the same weights, and not equal to them, on the compiled
kernels (each bfloat16 path) and the NumPy twin, with and without a mask; the policy reaches
the kernels (and float32 / float64 layers do not round); a small sequence classifier trained
under the policy reaches float32's accuracy."""
import contextlib

import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet import _config, layers, mixed_precision
from cynet.kernels import bf16

PATHS = (["emulated"] + (["avx512_bf16"] if bf16.native_available() else [])
         + (["amx"] if bf16.amx_available() else []))

MAKERS = {
    "simple_rnn": lambda dt: layers.SimpleRNN(6, return_sequences=True, dtype=dt),
    "lstm": lambda dt: layers.LSTM(6, return_sequences=True, dtype=dt),
    "gru": lambda dt: layers.GRU(6, dtype=dt),
    "bidirectional_lstm": lambda dt: layers.Bidirectional(layers.LSTM(5, return_sequences=True, dtype=dt),
                                                          dtype=dt),
}


@pytest.fixture(autouse=True)
def _reset_policy():
    yield
    _config.set_value("dtype_policy", None)


@contextlib.contextmanager
def bf16_path(p):
    old = bf16.set_bf16_path(p)
    try:
        yield
    finally:
        bf16.set_bf16_path(old)


def _grads(layer, g):
    dx = layer.backward(g)
    return [dx] + [v.grad for v in layer.trainable_weights]


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_outputs_and_gradients_within_bf16_tolerance(name, backend, masked):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 9, 5)).astype(np.float32)
    mask = (np.arange(9)[None, :] < np.array([9, 6, 3, 8])[:, None]) if masked else None
    mixed, plain = MAKERS[name]("mixed_bfloat16"), MAKERS[name]("float32")
    mixed(x)
    plain(x)
    plain.set_weights(mixed.get_weights())
    with K.use_backend(backend):
        ym, yp = mixed(x, mask=mask, training=True), plain(x, mask=mask, training=True)
        g = rng.standard_normal(ym.shape).astype(np.float32)
        gm, gp = _grads(mixed, g), _grads(plain, g)
    assert ym.dtype == np.float32 and all(a.dtype == np.float32 for a in gm)
    assert not np.array_equal(ym, yp)
    assert np.linalg.norm(ym - yp) <= 2e-2 * np.linalg.norm(yp)
    for i, (a, b) in enumerate(zip(gm, gp)):
        assert np.linalg.norm(a - b) <= 3e-2 * np.linalg.norm(b), (name, i)


@pytest.mark.parametrize("p", PATHS)
@pytest.mark.parametrize("name", ["simple_rnn", "lstm", "gru"])
def test_every_path_agrees_with_the_twin(name, p):
    """The layer under the policy: compiled kernels on path p against the NumPy twin (same
    rounding; float32 sums in another order)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    layer = MAKERS[name]("mixed_bfloat16")
    layer(x)
    g = rng.standard_normal(layer(x).shape).astype(np.float32)
    out = {}
    for backend in ("cython", "numpy"):
        with K.use_backend(backend), bf16_path(p):
            out[backend] = [layer(x, training=True)] + _grads(layer, g)
    for a, b in zip(out["cython"], out["numpy"]):
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * (np.abs(b).max() + 1e-6))


def test_the_policy_reaches_the_kernels(monkeypatch):
    """Under mixed_bfloat16 the layer asks the kernels for bfloat16 products, under float32 and
    float64 not."""
    from cynet.layers import rnn as rnn_layers
    seen = []
    real = rnn_layers.kernels.lstm_forward

    def spy(*args, **kwargs):
        seen.append(kwargs.get("bf16"))
        return real(*args, **kwargs)
    monkeypatch.setattr(rnn_layers.kernels, "lstm_forward", spy)
    x = np.ones((2, 3, 4), np.float32)
    for dt in ("mixed_bfloat16", "float32", "float64"):
        layers.LSTM(3, dtype=dt)(x)
    assert seen == [True, False, False]


def test_training_under_the_policy_reaches_float32_accuracy():
    """A sequence classifier (which of three patterns, in noise) trained for a few epochs from the
    same initial weights under each policy: mixed_bfloat16's accuracy within 0.03 of float32's."""
    rng = np.random.default_rng(0)
    T, D = 12, 6
    patterns = rng.standard_normal((3, T, D)) * 0.8

    def data(n):
        y = rng.integers(0, 3, n)
        return (patterns[y] + rng.standard_normal((n, T, D))).astype(np.float32), y
    x, y = data(600)
    xt, yt = data(300)
    accs = {}
    for policy in ("float32", "mixed_bfloat16"):
        mixed_precision.set_global_policy(policy)
        cynet.utils.set_random_seed(0)   # (the same initial weights under both policies)
        model = cynet.Sequential([cynet.Input((T, D)), layers.LSTM(16), layers.Dense(3)])
        assert model.layers[0].compute_dtype == ("bfloat16" if policy == "mixed_bfloat16" else "float32")
        model.compile(optimizer="adam", loss=cynet.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        model.fit(x, y, epochs=8, batch_size=32, verbose=0)
        accs[policy] = model.evaluate(xt, yt, verbose=0)[1]
    mixed_precision.set_global_policy("float32")
    assert accs["float32"] > 0.8, accs
    assert accs["mixed_bfloat16"] >= accs["float32"] - 0.03, accs
