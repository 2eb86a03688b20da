"""fit's per-batch fast paths give the numbers of the full paths they stand in for.

- batches no callback reads skip the per-batch logs and hooks (Trainer._quiet_batches): the
  epoch logs are the same, and any per-batch hook (on the class or set on the instance) brings
  the per-batch logs back;
- Adam updates the variables it has checked once (Adam._slots_of) with its kernel directly:
  the same weights as its update_step, which still takes anything unusual (a replaced or
  read-only variable, a gradient of another dtype or layout);
- the bias corrections' powers come from a table (Adam._power), element for element np.power;
- the sparse crossentropy's fused path reads labels (no one-hot) and leaves their range to the
  kernel, with the loss's own message;
- the trainer skips collecting layer losses only while nothing can add any.
"""
import numpy as np
import pytest

import cynet
from cynet import callbacks, layers, losses, optimizers
from cynet.kernels import use_backend
from cynet.variables import Variable


def _data(n=96, features=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, features), dtype=np.float32), rng.integers(0, classes, n)


def _model(seed=0, regularizer=None):
    cynet.utils.set_random_seed(seed)
    model = cynet.Sequential([cynet.Input(shape=(6,)),
                              layers.Dense(8, activation="relu", kernel_regularizer=regularizer),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _weights(model):
    return model.get_weights() + model.optimizer.get_variable_values()


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


class BatchLogs(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append(dict(logs))


def test_quiet_batches_give_the_epoch_logs_and_weights_of_logged_ones():
    x, y = _data()
    quiet, logged = _model(), _model()
    spy = BatchLogs()
    cynet.utils.set_random_seed(1)   # (the same shuffles)
    h_quiet = quiet.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_split=0.25)
    cynet.utils.set_random_seed(1)
    h_logged = logged.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_split=0.25, callbacks=[spy])
    assert h_quiet.history == h_logged.history
    _assert_same(_weights(quiet), _weights(logged))
    assert len(spy.logs) == 3 * 5 and set(spy.logs[-1]) == {"loss", "accuracy"}
    assert spy.logs[-1] == {k: v[-1] for k, v in h_logged.history.items() if not k.startswith("val_")}


def test_the_quiet_path_is_taken_only_when_nothing_reads_batch_logs():
    model = _model()
    quiet = cynet.callbacks.CallbackList([callbacks.History()], model=model)
    assert model._quiet_batches(quiet, None)
    assert not model._quiet_batches(cynet.callbacks.CallbackList([BatchLogs()], model=model), None)
    on_instance = callbacks.Callback()
    on_instance.on_batch_end = lambda batch, logs=None: None
    assert not model._quiet_batches(cynet.callbacks.CallbackList([on_instance], model=model), None)
    assert not model._quiet_batches(cynet.callbacks.CallbackList([callbacks.ProgbarLogger()], model=model), None)
    model.train_step = lambda data: {}   # an override on the instance returns logs of its own
    assert not model._quiet_batches(quiet, None)


def test_a_train_step_override_still_runs_in_fit():
    calls = []

    class Counting(cynet.Sequential):
        def train_step(self, data):
            calls.append(1)
            return super().train_step(data)

    x, y = _data()
    model = Counting([cynet.Input(shape=(6,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert len(calls) == 3


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_direct_kernel_steps_equal_update_step(backend, amsgrad):
    x, y = _data()
    fast, full = _model(), _model()
    for model in (fast, full):
        model.compile(optimizer=optimizers.Adam(0.01, amsgrad=amsgrad), loss="sparse_categorical_crossentropy")
    original = full.optimizer.update_step
    seen = []
    full.optimizer.update_step = lambda g, v, lr: (seen.append(1), original(g, v, lr))  # the full path, every variable
    with use_backend(backend):
        fast.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
        full.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    assert len(seen) == 2 * 6 * 4
    _assert_same(_weights(fast), _weights(full))


def _adam_on(value, dtype=np.float32):
    var = Variable(np.array(value, dtype=dtype), dtype=dtype)
    opt = optimizers.Adam(0.1)
    opt.apply([np.ones(var.shape, dtype)], [var])   # builds, and checks the slots once
    return opt, var


def test_adam_follows_a_replaced_variable_array():
    opt, var = _adam_on([1.0, 2.0, 3.0])
    old = var.value
    before = old.copy()
    var.value = np.array([10.0, 20.0, 30.0], np.float32)
    opt.apply([np.ones(3, np.float32)], [var])
    assert np.all(var.value < [10.0, 20.0, 30.0])   # the new array moved ...
    np.testing.assert_array_equal(old, before)      # ... the old one stayed as it was


def test_adam_refuses_a_variable_made_read_only_after_its_first_step():
    opt, var = _adam_on([1.0, 2.0])
    var.value.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        opt.apply([np.ones(2, np.float32)], [var])


def test_adam_converts_gradients_of_another_dtype_or_layout_as_before():
    opt_a, var_a = _adam_on(np.arange(6.0).reshape(2, 3))
    opt_b, var_b = _adam_on(np.arange(6.0).reshape(2, 3))
    g = np.linspace(-1, 1, 6).reshape(2, 3)
    opt_a.apply([g.astype(np.float32)], [var_a])
    opt_b.apply([np.asfortranarray(g)], [var_b])   # float64, Fortran order: converted
    np.testing.assert_array_equal(var_a.value, var_b.value)


def test_adam_refuses_the_variable_as_its_own_gradient():
    opt, var = _adam_on([1.0, 2.0])
    with pytest.raises(ValueError, match="separate arrays"):
        opt.apply([var.value], [var])


def test_adam_refuses_a_learning_rate_that_is_not_finite():
    opt, var = _adam_on([1.0, 2.0])
    opt.learning_rate = lambda: float("nan")
    with pytest.raises(ValueError, match="alpha must be finite"):
        opt.apply([np.ones(2, np.float32)], [var])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_power_table_equals_np_power_across_blocks(dtype):
    opt = optimizers.Adam(beta_1=0.9, beta_2=0.999)
    for step in list(range(1, 300)) + [2 ** 20 + 5, 7]:   # a block boundary, a jump ahead and back
        for beta in (0.9, 0.999):
            assert opt._power(dtype, beta, step) == np.power(dtype(beta), dtype(step))


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_fused_path_equals_the_one_hot_crossentropy(backend, dtype, weighted):
    rng = np.random.default_rng(3)
    logits = (rng.standard_normal((17, 5)) * 3).astype(dtype)
    labels = rng.integers(0, 5, 17)
    sw = rng.random(17) if weighted else None
    onehot = np.eye(5, dtype=dtype)[labels]
    with use_backend(backend):
        loss_s, g_s = losses.SparseCategoricalCrossentropy().fused_logits_backward(labels, logits, sw)
        loss_d, g_d = losses.CategoricalCrossentropy().fused_logits_backward(onehot, logits, sw)
    assert loss_s == loss_d
    np.testing.assert_array_equal(g_s, g_d)
    assert g_s.dtype == dtype


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("bad", [-1, 5])
def test_sparse_fused_path_names_a_label_out_of_range(backend, bad):
    logits = np.zeros((4, 5), np.float32)
    with use_backend(backend), pytest.raises(ValueError, match=r"sparse_categorical_crossentropy: labels must lie in \[0, 5\)"):
        losses.SparseCategoricalCrossentropy().fused_logits_backward(np.array([0, 1, bad, 2]), logits)


def test_regularization_penalties_still_reach_the_reported_loss(monkeypatch):
    from cynet.layers import base
    monkeypatch.setattr(base, "_penalty_sources", 0)   # as in a fresh process: the regularizer counts itself
    x, y = _data()
    plain, regularized = _model(), _model(regularizer=cynet.regularizers.L2(10.0))
    regularized.set_weights(plain.get_weights())
    a = plain.evaluate(x, y, verbose=0)[0]
    b = regularized.evaluate(x, y, verbose=0)[0]
    assert b > a + 1.0


def test_a_layer_with_its_own_losses_is_asked_for_them(monkeypatch):
    from cynet.layers import base
    monkeypatch.setattr(base, "_penalty_sources", 0)   # as in a fresh process: the class counts itself

    class Penalized(layers.Layer):
        @property
        def losses(self):
            return [5.0]

        def call(self, inputs):
            return inputs

    x, y = _data()
    model = cynet.Sequential([cynet.Input(shape=(6,)), Penalized(), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert base.may_have_penalties()
    assert model.train_on_batch(x[:8], y[:8]) > 5.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("schedule", [False, True])
def test_adam_step_scalars_equal_the_formula_through_changes(dtype, schedule):
    lr = optimizers.schedules.ExponentialDecay(0.01, 10, 0.9) if schedule else 0.001
    opt = optimizers.Adam(learning_rate=lr)
    var = Variable(np.ones(3, dtype), dtype=dtype)
    opt.build([var])
    for t in range(600):
        if t == 300:
            opt.beta_1 = 0.8   # a changed hyperparameter: computed for the step, then tabled again
        if t == 400 and not schedule:
            opt.learning_rate = 0.002
        rate = opt.learning_rate
        got = opt._scalars(dtype, rate)
        step = dtype(opt.iterations + 1)
        want = (dtype(rate) * np.sqrt(dtype(1) - np.power(dtype(opt.beta_2), step))
                / (dtype(1) - np.power(dtype(opt.beta_1), step)), dtype(1 - opt.beta_1), dtype(1 - opt.beta_2),
                dtype(opt.epsilon))
        assert all(a == b and type(a) is type(b) for a, b in zip(got, want)), t
        opt.apply([np.full(3, 0.1, dtype)], [var])


def test_an_activity_regularizer_counts_as_a_penalty_source(monkeypatch):
    """Layer.losses holds the penalties a layer's last top-level call added (as Keras keeps them),
    so an activity regularizer counts as a source; a step adds only its own call's penalty (as
    Keras: the earlier call's stays out of evaluate's loss)."""
    from cynet.layers import base
    monkeypatch.setattr(base, "_penalty_sources", 0)
    x, y = _data()
    model = cynet.Sequential([cynet.Input(shape=(6,)), layers.Dense(3, activation="softmax",
                                                                    activity_regularizer=cynet.regularizers.L2(50.0))])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.layers[0](x[:8], training=True)   # a top-level call of the layer: its penalty stays in model.losses
    penalty = float(sum(model.losses))
    assert base.may_have_penalties() and penalty > 0
    plain = float(losses.SparseCategoricalCrossentropy()(y[:8], model.predict(x[:8], verbose=0)))
    # evaluate's own call adds the same penalty (same inputs and weights); the kept one does not count again
    assert model.evaluate(x[:8], y[:8], batch_size=8, verbose=0) == pytest.approx(plain + penalty, rel=1e-5)
