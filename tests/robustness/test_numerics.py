"""Huge logits (1e4, 1e30, negative, mixed) through softmax / sigmoid cross-entropies give finite
losses and gradients, on both kernel backends: in the losses module (from_logits=True, the fused
path a softmax / sigmoid last layer takes, and the clipped probability path) and in a full
model training step."""
import re

import numpy as np
import pytest

import cynet
from cynet import kernels as K
from cynet import layers, losses, optimizers

MAGNITUDES = [1e4, -1e4, 1e30, -1e30]


@pytest.fixture(autouse=True)
def strict_floats():
    """An overflow or an invalid operation anywhere is an error (underflow to 0 is expected)."""
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        yield


def logit_rows(mag, dtype):
    """Rows: the label's logit on top, at the bottom, tied on top, mixed signs, all equal."""
    z = np.array([[mag, 0.0, -mag],
                  [-mag, 0.0, mag],
                  [mag, mag, 0.0],
                  [mag, -mag, 0.5 * mag],
                  [mag, mag, mag]], dtype=dtype)
    labels = np.array([0, 0, 1, 2, 1])
    return z, labels


def expected_ce(z, labels):
    """-log_softmax(z)[label] in float64 via the exact shift (what the loss must equal)."""
    z = z.astype(np.float64)
    m = z.max(axis=1, keepdims=True)
    return np.log(np.exp(z - m).sum(axis=1)) + (m[:, 0] - z[np.arange(len(z)), labels])


@pytest.mark.parametrize("mag", MAGNITUDES)
def test_softmax_crossentropy_from_logits_is_exact_and_finite(mag, dtype, backend):
    z, labels = logit_rows(mag, dtype)
    onehot = np.eye(3, dtype=dtype)[labels]
    want = expected_ce(z, labels)
    for loss, y in ((losses.CategoricalCrossentropy(from_logits=True, reduction="none"), onehot),
                    (losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none"), labels)):
        values, grad = loss.forward_backward(y, z)
        assert np.all(np.isfinite(values)) and np.all(np.isfinite(grad))
        np.testing.assert_allclose(values, want, rtol=1e-6, atol=1e-6)
        # d/dz = softmax(z) - onehot: each row sums to 0, entries in [-1, 1]
        np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-6)
        assert np.all(np.abs(grad) <= 1 + 1e-6)
    # the fused path a softmax last layer takes (from_logits=False) gives the same numbers
    for loss, y in ((losses.CategoricalCrossentropy(), onehot), (losses.SparseCategoricalCrossentropy(), labels)):
        value, dz = loss.fused_logits_backward(y, z)
        assert np.isfinite(value) and np.all(np.isfinite(dz))
        np.testing.assert_allclose(value, want.mean(), rtol=1e-6)
    # the probability path (clipped at 1e-7, as in Keras) stays finite on saturated softmax outputs
    probs = K.softmax_forward(z)
    for loss, y in ((losses.CategoricalCrossentropy(), onehot), (losses.SparseCategoricalCrossentropy(), labels)):
        value, grad = loss.forward_backward(y, probs)
        assert np.isfinite(value) and np.all(np.isfinite(grad))
        assert value <= -np.log(1e-7) + 1e-3


@pytest.mark.parametrize("mag", MAGNITUDES)
def test_sigmoid_binary_crossentropy_is_exact_and_finite(mag, dtype, backend):
    z = np.array([[mag], [mag], [-mag], [-mag], [0.5 * mag]], dtype=dtype)
    y = np.array([[1.0], [0.0], [1.0], [0.0], [0.3]], dtype=dtype)
    z64 = z.astype(np.float64)
    want = (np.maximum(z64, 0) - z64 * y + np.log1p(np.exp(-np.abs(z64))))[:, 0]
    values, grad = losses.BinaryCrossentropy(from_logits=True, reduction="none").forward_backward(y, z)
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(values, want, rtol=1e-6)
    assert np.all(np.abs(grad) <= 1)
    value, dz = losses.BinaryCrossentropy().fused_logits_backward(y, z)
    assert np.isfinite(value) and np.all(np.isfinite(dz))
    np.testing.assert_allclose(value, want.mean(), rtol=1e-6)
    value, grad = losses.BinaryCrossentropy().forward_backward(y, K.sigmoid_forward(z))
    assert np.isfinite(value) and np.all(np.isfinite(grad))


def test_mixed_magnitudes_in_one_batch(backend):
    z = np.array([[1e30, -1e4, 3.0], [-1e30, 1e4, -2.0], [0.0, 1e-30, -1e30]], np.float32)
    labels = np.array([1, 0, 2])
    values, grad = losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none").forward_backward(labels, z)
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(values, expected_ce(z, labels), rtol=1e-6)


# ------------------------------------------------------------------------------------ full model
def huge_logit_model(mag, units, activation, loss):
    """One Dense layer whose logits on the all-ones input are mag * [1, -1, 0.5, ...][:units]."""
    model = cynet.Sequential([cynet.Input(shape=(2,)), layers.Dense(units, activation=activation)])
    model.compile(optimizer=optimizers.SGD(learning_rate=1e-3), loss=loss)
    pattern = np.array([1.0, -1.0, 0.5])[:units]
    dense = model.layers[0]
    dense.kernel.assign(np.tile(mag * pattern / 2, (2, 1)))
    dense.bias.assign(np.zeros(units))
    return model


CASES = [
    ("softmax+sparse (fused)", 3, "softmax", lambda: losses.SparseCategoricalCrossentropy(), "sparse"),
    ("softmax+categorical (fused)", 3, "softmax", lambda: losses.CategoricalCrossentropy(), "onehot"),
    ("linear+sparse from_logits", 3, None, lambda: losses.SparseCategoricalCrossentropy(from_logits=True), "sparse"),
    ("linear+categorical from_logits", 3, None, lambda: losses.CategoricalCrossentropy(from_logits=True), "onehot"),
    ("sigmoid+binary (fused)", 1, "sigmoid", lambda: losses.BinaryCrossentropy(), "binary"),
    ("linear+binary from_logits", 1, None, lambda: losses.BinaryCrossentropy(from_logits=True), "binary"),
]


# from_logits=False with a softmax / sigmoid last layer also runs "unfused": through the
# activation's backward and the clipped cross-entropy on probabilities
STEP_CASES = [pytest.param(*c[1:], unfused, id=c[0] + (" unfused" if unfused else ""))
              for c in CASES for unfused in (False, True) if not (unfused and c[2] is None)]


@pytest.mark.parametrize("mag", MAGNITUDES)
@pytest.mark.parametrize("units, activation, make_loss, targets, unfused", STEP_CASES)
def test_a_training_step_on_huge_logits_is_finite(units, activation, make_loss, targets, unfused, mag, backend,
                                                  monkeypatch):
    loss = make_loss()
    model = huge_logit_model(mag, units, activation, loss)
    if unfused:
        monkeypatch.setattr(model, "_fused_record", lambda *args: None)
    x = np.ones((4, 2), np.float32)
    labels = np.array([0, 1, 2, 1]) % units
    y = {"sparse": labels, "onehot": np.eye(units, dtype=np.float32)[labels],
         "binary": np.array([[1.0], [0.0], [1.0], [0.0]], np.float32)}[targets]
    value = model.train_on_batch(x, y)
    assert np.isfinite(value)
    for v in model.trainable_weights:
        assert np.all(np.isfinite(v.grad)), v.path
        assert np.all(np.isfinite(v.value)), v.path
    assert np.isfinite(model.evaluate(x, y, verbose=0))
    if not unfused and activation is not None and targets != "binary":
        # fused: exact log-softmax, no 1e-7 clipping (a confidently wrong sample costs ~ its margin)
        logits = mag * np.array([1.0, -1.0, 0.5])
        per_sample = expected_ce(np.tile(logits, (4, 1)), labels)
        np.testing.assert_allclose(value, per_sample.mean(), rtol=1e-5)


def test_softmax_layer_forward_and_backward_saturated(backend):
    """The (non-fused) softmax activation's own backward on saturated outputs is finite and zero
    where the output is exactly 0 or 1."""
    model = huge_logit_model(1e30, 3, "softmax", "mse")  # mse does not fuse with softmax
    x = np.ones((2, 2), np.float32)
    y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
    value = model.train_on_batch(x, y)
    assert np.isfinite(value)
    assert all(np.all(np.isfinite(v.grad)) for v in model.trainable_weights)


# ------------------------------------------------------------------------------------ TerminateOnNaN
def diverging_regression(seed=0):
    """A linear regression under SGD with a learning rate far above 2 / curvature: every step
    multiplies the error by about -17, so float32 overflows within a few epochs."""
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal((64, 4))).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32) + 0.1 * rng.standard_normal((64, 1)).astype(np.float32)
    model = cynet.Sequential([cynet.Input(shape=(4,)), layers.Dense(1, kernel_initializer="zeros")])
    model.compile(optimizer=optimizers.SGD(learning_rate=1.0), loss="mse")
    return model, x, y


def first_bad_step(batch_size, steps):
    """(epoch, batch, weights after that step) of the first non-finite batch loss, replaying the
    same batches in order with train_on_batch."""
    model, x, y = diverging_regression()
    for epoch in range(100):
        for batch in range(steps):
            sl = slice(batch * batch_size, (batch + 1) * batch_size)
            if not np.isfinite(model.train_on_batch(x[sl], y[sl])):
                return epoch, batch, [w.numpy() for w in model.weights]
    raise AssertionError("the reference run did not diverge")


@pytest.mark.parametrize("raise_error", [False, True])
def test_terminate_on_nan_stops_a_diverging_run_at_the_bad_batch(raise_error, capsys):
    batch_size, steps = 8, 8
    with np.errstate(all="ignore"):
        epoch, batch, weights = first_bad_step(batch_size, steps)
        assert epoch >= 1 and 0 < batch < steps - 1  # the test data diverge mid-epoch, after epoch 1
        model, x, y = diverging_regression()
        seen = []
        spy = cynet.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))
        terminate = cynet.callbacks.TerminateOnNaN(raise_error=raise_error)
        if raise_error:
            with pytest.raises(RuntimeError, match=rf"NaN or Inf loss encountered at epoch {epoch + 1}, "
                                                   rf"batch {batch}\. Loss value: (inf|nan)"):
                model.fit(x, y, batch_size=batch_size, epochs=100, shuffle=False, verbose=0,
                          callbacks=[terminate, spy])
        else:
            history = model.fit(x, y, batch_size=batch_size, epochs=100, shuffle=False, verbose=0,
                                callbacks=[terminate, spy])
            assert model.stop_training is True
            assert history.epoch == list(range(epoch + 1))  # the stopping epoch's end is still logged
            assert not np.isfinite(history.history["loss"][-1]) and np.all(np.isfinite(history.history["loss"][:-1]))
            out = capsys.readouterr().out
            # Keras's wording and its 0-based batch index ("Batch 3: Invalid loss, terminating training"),
            # with the epoch numbered as the progress bar numbers it ("Epoch 2/100")
            assert re.fullmatch(rf"Epoch {epoch + 1}, batch {batch}: Invalid loss \((inf|nan)\), "
                                r"terminating training\n", out), out
            assert seen[-1] == batch                   # later callbacks still see the stopping batch
    # training stopped right after that batch: exactly epoch * steps + batch + 1 updates
    assert int(model.optimizer.iterations) == epoch * steps + batch + 1
    for got, want in zip(model.weights, weights):
        np.testing.assert_array_equal(got.numpy(), want)
