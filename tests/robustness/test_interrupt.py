"""Ctrl-C during fit: the model keeps the weights of the last completed batch.

A KeyboardInterrupt raised by a callback stops training between steps; a SIGINT that arrives
inside a training step (forward, backward, the optimizer's update of every variable) is held
back until the step has finished, so no variable is left half a step behind the others."""
import os
import signal
import threading
import zipfile

import numpy as np
import pytest

import cynet
from cynet import callbacks, layers, optimizers

N, BATCH = 48, 8
STEPS = N // BATCH


def make_model():
    """Adam (slot variables) and batch normalisation (moving statistics updated in the forward pass)."""
    model = cynet.Sequential([cynet.Input(shape=(6,)), layers.Dense(8, activation="relu"),
                              layers.BatchNormalization(), layers.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data():
    rng = np.random.default_rng(7)
    return rng.standard_normal((N, 6)).astype(np.float32), rng.integers(0, 3, N)


def state(model):
    """Every array training changes: weights (trainable or not) and the optimizer's variables."""
    opt = model.optimizer.get_variable_values() if model.optimizer.built else []
    return [w.numpy() for w in model.weights] + opt


def reference_states(initial, x, y, nbatches):
    """states[k]: the state after k batches (shuffle=False order) applied with train_on_batch."""
    model = make_model()
    model.set_weights(initial)
    states = [state(model)]
    for k in range(nbatches):
        b = k % STEPS
        model.train_on_batch(x[b * BATCH:(b + 1) * BATCH], y[b * BATCH:(b + 1) * BATCH])
        states.append(state(model))
    return states


def assert_state(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def matches(got, want):
    return len(got) == len(want) and all(np.array_equal(g, w) for g, w in zip(got, want))


class InterruptAt(callbacks.Callback):
    def __init__(self, hook, at):
        super().__init__()
        self.at, self.count = at, -1
        setattr(self, hook, self._tick)

    def _tick(self, batch, logs=None):
        self.count += 1
        if self.count == self.at:
            raise KeyboardInterrupt


@pytest.fixture
def sigint_default():
    """Run with Python's default SIGINT handler (KeyboardInterrupt), restored afterwards."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def sigint_during_update(model, on_call):
    """Patch the optimizer so that SIGINT is sent to this process right after it has updated the
    first variable of its `on_call`-th apply (0-based): mid-update."""
    optimizer = model.optimizer
    original = optimizer.update_step
    calls = {"apply": -1}
    original_apply = optimizer.apply

    def apply(*args, **kwargs):
        calls["apply"] += 1
        calls["var"] = 0
        return original_apply(*args, **kwargs)

    def update_step(gradient, variable, learning_rate):
        original(gradient, variable, learning_rate)
        if calls["apply"] == on_call and calls["var"] == 0:
            os.kill(os.getpid(), signal.SIGINT)
        calls["var"] += 1

    optimizer.apply = apply
    optimizer.update_step = update_step
    return calls


@pytest.mark.parametrize("k", [0, 3, STEPS + 2])
def test_keyboard_interrupt_from_a_callback_keeps_the_last_completed_batch(k, sigint_default):
    x, y = data()
    model = make_model()
    initial = model.get_weights()
    want = reference_states(initial, x, y, k + 1)[k + 1]
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=BATCH, epochs=5, shuffle=False, verbose=0,
                  callbacks=[InterruptAt("on_train_batch_end", k)])
    assert_state(state(model), want)
    assert int(model.optimizer.iterations) == k + 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # fit put the handler back
    # still usable: predicts, evaluates, and trains on from where it stopped
    assert model.predict(x, verbose=0).shape == (N, 3)
    assert np.isfinite(model.evaluate(x, y, verbose=0)[0])
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    assert int(model.optimizer.iterations) == k + 1 + STEPS


def test_keyboard_interrupt_before_a_step_leaves_it_undone(sigint_default):
    x, y = data()
    model = make_model()
    initial = model.get_weights()
    want = reference_states(initial, x, y, 2)[2]
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0,
                  callbacks=[InterruptAt("on_train_batch_begin", 2)])
    assert_state(state(model), want)


def test_the_probe_really_interrupts_an_unprotected_update_half_way(sigint_default):
    """Control: the same SIGINT, during optimizer.apply called directly (no fit), leaves the first
    variable updated and the rest not: the torn state fit must prevent."""
    x, y = data()
    model = make_model()
    model.train_on_batch(x[:BATCH], y[:BATCH])  # builds the optimizer
    before = [w.numpy() for w in model.trainable_weights]
    model(x[BATCH:2 * BATCH], training=True)
    model.backward(np.ones((BATCH, 3), np.float32) / BATCH)
    variables = model.trainable_weights
    sigint_during_update(model, on_call=0)
    with pytest.raises(KeyboardInterrupt):
        model.optimizer.apply([v.grad for v in variables], variables)
    changed = [not np.array_equal(v.numpy(), b) for v, b in zip(variables, before)]
    assert changed[0] and not any(changed[1:])


@pytest.mark.parametrize("k", [0, 4, STEPS + 1])
def test_sigint_inside_the_optimizer_update_is_held_until_the_step_ends(k, sigint_default):
    x, y = data()
    model = make_model()
    initial = model.get_weights()
    states = reference_states(initial, x, y, k + 1)
    calls = sigint_during_update(model, on_call=k)
    seen = []
    spy = callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=BATCH, epochs=5, shuffle=False, verbose=0, callbacks=[spy])
    assert calls["apply"] == k and calls["var"] == len(model.trainable_weights)  # the update finished
    got = state(model)
    assert not matches(got, states[k])            # not "none updated" either: the step completed ...
    assert_state(got, states[k + 1])              # ... every variable, slot and statistic of batch k
    assert int(model.optimizer.iterations) == k + 1
    assert len(seen) == k                         # the interrupt came before batch k's callbacks
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)   # trains again (the patch sends no more)
    assert int(model.optimizer.iterations) == k + 1 + STEPS


def test_sigint_inside_train_on_batch_is_held_until_the_step_ends(sigint_default):
    x, y = data()
    model = make_model()
    initial = model.get_weights()
    states = reference_states(initial, x, y, 2)
    model.train_on_batch(x[:BATCH], y[:BATCH])
    sigint_during_update(model, on_call=0)
    with pytest.raises(KeyboardInterrupt):
        model.train_on_batch(x[BATCH:2 * BATCH], y[BATCH:2 * BATCH])
    assert_state(state(model), states[2])


def test_a_handler_that_does_not_raise_is_called_once_after_the_step_and_training_goes_on():
    x, y = data()
    model = make_model()
    got = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(int(model.optimizer.iterations)))
    try:
        sigint_during_update(model, on_call=2)
        history = model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
        assert got == [3]                      # called after batch 2's step completed, not inside it
        assert len(history.history["loss"]) == 2 and int(model.optimizer.iterations) == 2 * STEPS
        assert signal.getsignal(signal.SIGINT) is not None and signal.getsignal(signal.SIGINT).__name__ == "<lambda>"
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_ignored_sigint_stays_ignored():
    x, y = data()
    model = make_model()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        sigint_during_update(model, on_call=1)
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert int(model.optimizer.iterations) == STEPS
    finally:
        signal.signal(signal.SIGINT, previous)


def test_fit_in_a_worker_thread_leaves_signals_alone(sigint_default):
    x, y = data()
    model = make_model()
    errors = []

    def work():
        try:
            model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == [] and int(model.optimizer.iterations) == 2 * STEPS
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("weights_only", [False, True])
def test_checkpoints_survive_an_interrupt_during_a_later_save(tmp_path, monkeypatch, weights_only, sigint_default):
    """ModelCheckpoint every 2 batches; SIGINT arrives while the second save is writing its zip.
    The file on disk is the first save, whole and loadable, and no temporary file is left."""
    x, y = data()
    model = make_model()
    initial = model.get_weights()
    states = reference_states(initial, x, y, 4)
    path = tmp_path / ("ckpt.weights.npz" if weights_only else "ckpt.cynet")
    checkpoint = callbacks.ModelCheckpoint(path, save_freq=2, save_weights_only=weights_only)
    written = {"saves": 0, "members": 0}
    original_writestr = zipfile.ZipFile.writestr

    def writestr(self, name, data, *args, **kwargs):
        if getattr(self, "mode", "r") == "w" and name.endswith(".npy"):
            written["members"] += 1
            if written["saves"] == 1 and written["members"] == 2:
                os.kill(os.getpid(), signal.SIGINT)
        return original_writestr(self, name, data, *args, **kwargs)

    class CountSaves(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if os.path.exists(path) and written["saves"] == 0:
                written["saves"], written["members"] = 1, 0

    monkeypatch.setattr(zipfile.ZipFile, "writestr", writestr)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[checkpoint, CountSaves()])
    monkeypatch.undo()
    assert int(model.optimizer.iterations) == 4    # interrupted while saving after batch 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    saved_weights = states[2][:len(model.weights)]
    if weights_only:
        restored = make_model()
        restored.load_weights(path)
    else:
        restored = cynet.models.load_model(path)
        assert int(restored.optimizer.iterations) == 2
    for got, want in zip(restored.get_weights(), saved_weights):
        np.testing.assert_array_equal(got, want)
    # the interrupted model can still save and train
    model.save_weights(tmp_path / "after.weights.npz")
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)


def test_a_fit_inside_a_callback_chains_to_the_outer_one(sigint_default):
    """The inner fit's handler holds the signal through its step, then hands it to the outer fit's
    handler, which (between steps) raises at once; both handlers are undone."""
    x, y = data()
    outer, inner = make_model(), make_model()
    sigint_during_update(inner, on_call=1)

    class TrainInner(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                inner.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)

    with pytest.raises(KeyboardInterrupt):
        outer.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[TrainInner()])
    assert int(inner.optimizer.iterations) == 2 and int(outer.optimizer.iterations) == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
