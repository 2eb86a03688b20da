"""callbacks.SwapEMAWeights: evaluation with the optimizer's moving averages, training unchanged;
checked against the definition and against Keras 3."""
import os

import numpy as np
import pytest

import cynet
from cynet import callbacks as cb
from cynet import layers


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")


def _model(weights=None, use_ema=True):
    model = cynet.Sequential([cynet.Input((3,)), layers.Dense(4, activation="tanh"), layers.Dense(2)])
    model.compile(optimizer=cynet.optimizers.SGD(0.1, use_ema=use_ema, ema_momentum=0.9), loss="mse")
    if weights is not None:
        model.set_weights(weights)
    return model


class Recorder(cb.Callback):
    """Records the model's weights and the optimizer's averages at the hooks that matter."""

    def __init__(self):
        super().__init__()
        self.at = []

    def _record(self, where):
        opt = self.model.optimizer
        averages = [a.value.copy() for a in getattr(opt, "_model_variables_moving_average", None) or []]
        self.at.append((where, [w.copy() for w in self.model.get_weights()], averages))

    def on_test_batch_begin(self, batch, logs=None):
        self._record("test")

    def on_epoch_end(self, epoch, logs=None):
        self._record("epoch_end")

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self._record("train")


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def _fit(model, callbacks, epochs=3):
    x, y = _data()
    vx, vy = _data(8, seed=1)
    return model.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0, validation_data=(vx, vy),
                     callbacks=callbacks)


def test_validation_uses_the_averages_and_training_is_unchanged():
    w0 = _model().get_weights()
    plain, plain_rec = _model(w0), Recorder()
    h_plain = _fit(plain, [plain_rec])
    swapped, rec = _model(w0), Recorder()
    h = _fit(swapped, [cb.SwapEMAWeights(), rec])
    # validation ran on the averages the plain run had at that point (weights and averages traded)
    tests = [r for r in rec.at if r[0] == "test"]
    plain_tests = [r for r in plain_rec.at if r[0] == "test"]
    assert tests and len(tests) == len(plain_tests)
    for (_, weights, averages), (_, p_weights, p_averages) in zip(tests, plain_tests):
        trainable = [w for w, v in zip(weights, swapped.weights) if v.trainable]
        assert _same(trainable, p_averages)
        assert _same(averages, [w for w, v in zip(p_weights, plain.weights) if v.trainable])
    assert h.history["loss"] == h_plain.history["loss"]   # training saw its own weights
    assert h.history["val_loss"] != h_plain.history["val_loss"]
    # ... and the val_loss is the loss of the averages
    vx, vy = _data(8, seed=1)
    probe = _model(use_ema=False)
    probe.set_weights(tests[-1][1])
    assert np.isclose(probe.evaluate(vx, vy, verbose=0), h.history["val_loss"][-1], rtol=1e-6)
    assert _same(swapped.get_weights(), plain.get_weights())


def test_swap_on_epoch_shows_the_averages_at_epoch_end():
    w0 = _model().get_weights()
    plain, plain_rec = _model(w0), Recorder()
    _fit(plain, [plain_rec])
    swapped, rec = _model(w0), Recorder()
    _fit(swapped, [cb.SwapEMAWeights(swap_on_epoch=True), rec])
    ends = [r for r in rec.at if r[0] == "epoch_end"]
    plain_ends = [r for r in plain_rec.at if r[0] == "epoch_end"]
    for (_, weights, _), (_, _, p_averages) in zip(ends, plain_ends):
        assert _same(weights, p_averages)          # a checkpoint here saves the averages
    starts = [r[1] for r in rec.at if r[0] == "train"]
    assert _same(starts[1], [r[1] for r in plain_rec.at if r[0] == "train"][1])   # swapped back to train
    assert _same(swapped.get_weights(), plain.get_weights())   # the end: the averages, as use_ema ends


def test_swap_on_epoch_with_early_stop_keeps_the_averages():
    w0 = _model().get_weights()
    stop = cb.LambdaCallback(on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", epoch == 1))
    model = _model(w0)
    rec = Recorder()
    _fit(model, [stop, cb.SwapEMAWeights(swap_on_epoch=True), rec], epochs=5)
    last = [r for r in rec.at if r[0] == "epoch_end"][-1]
    assert _same(model.get_weights(), last[1])


def test_evaluate_and_predict_swap_back():
    model = _model()
    x, y = _data()
    model.fit(x, y, epochs=1, verbose=0)
    before = model.get_weights()
    averages = [a.value.copy() for a in model.optimizer._model_variables_moving_average]
    swap = cb.SwapEMAWeights()
    rec = Recorder()
    model.evaluate(x, y, verbose=0, callbacks=[swap, rec])
    assert _same(rec.at[0][1], averages)
    assert _same(model.get_weights(), before)
    out = model.predict(x, verbose=0, callbacks=[swap])
    probe = _model(averages, use_ema=False)
    np.testing.assert_array_equal(out, probe.predict(x, verbose=0))
    assert _same(model.get_weights(), before)


def test_without_use_ema_raises():
    model = _model(use_ema=False)
    x, y = _data()
    with pytest.raises(ValueError, match="use_ema"):
        model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y), callbacks=[cb.SwapEMAWeights()])


def test_before_any_training_step_raises():
    model = _model()
    x, y = _data()
    with pytest.raises(ValueError, match="no moving averages yet"):
        model.evaluate(x, y, verbose=0, callbacks=[cb.SwapEMAWeights()])


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_bad_swap_on_epoch(value):
    with pytest.raises(ValueError, match="swap_on_epoch"):
        cb.SwapEMAWeights(swap_on_epoch=value)


@pytest.mark.parametrize("swap_on_epoch", [False, True])
def test_matches_keras(swap_on_epoch):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3; found {keras.__version__}")
    x, y = _data()
    vx, vy = _data(8, seed=1)
    ours = _model()
    theirs = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(2)])
    theirs.compile(optimizer=keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.9), loss="mse")
    theirs.set_weights(ours.get_weights())
    seen = {"ours": [], "theirs": []}

    def recorder(kind, model):
        return (cb.LambdaCallback if kind == "ours" else keras.callbacks.LambdaCallback)(
            on_epoch_end=lambda epoch, logs: seen[kind].append([np.array(w) for w in model.get_weights()]))

    h = ours.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, validation_data=(vx, vy),
                 callbacks=[cb.SwapEMAWeights(swap_on_epoch), recorder("ours", ours)])
    kh = theirs.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, validation_data=(vx, vy),
                    callbacks=[keras.callbacks.SwapEMAWeights(swap_on_epoch), recorder("theirs", theirs)])
    np.testing.assert_allclose(h.history["loss"], kh.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(h.history["val_loss"], kh.history["val_loss"], rtol=1e-5)
    for a, b in zip(seen["ours"], seen["theirs"]):
        for wa, wb in zip(a, b):
            np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)
    for wa, wb in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(wa, np.array(wb), rtol=1e-5, atol=1e-6)
