"""cynet.callbacks, driven the way `fit` drives them, against a small fake model."""
import re
import sys
import warnings

import numpy as np
import pytest

import cynet
from cynet import callbacks as cb
from cynet import layers

BAR = "\u2501"


class FakeOptimizer:
    def __init__(self, learning_rate=1.0, schedule=False):
        self._lr = learning_rate
        self._schedule = schedule

    @property
    def learning_rate(self):
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value):
        if self._schedule:
            raise TypeError("This optimizer was created with a `LearningRateSchedule`; not settable.")
        self._lr = float(value)


class FakeModel:
    """What callbacks use of a model: stop_training, weights, optimizer, save, save_weights."""

    def __init__(self, learning_rate=1.0, schedule=False):
        self.stop_training = False
        self._weights = [np.zeros((2, 2)), np.zeros(2)]
        self.optimizer = FakeOptimizer(learning_rate, schedule)
        self.saves = []  # (method, path)

    def get_weights(self):
        return list(self._weights)  # live arrays, not copies: callbacks must copy what they keep

    def set_weights(self, weights):
        for own, new in zip(self._weights, weights):
            own[...] = new

    def mark(self, value):
        for w in self._weights:
            w[...] = value  # in place

    def save(self, filepath, overwrite=True):
        with open(filepath, "w") as f:
            f.write("model")
        self.saves.append(("save", str(filepath)))

    def save_weights(self, filepath, overwrite=True):
        with open(filepath, "w") as f:
            f.write("weights")
        self.saves.append(("save_weights", str(filepath)))


def train(callbacks, epoch_logs, model=None, steps=2, batch_logs=None, verbose=0, epochs=None):
    """Call the hooks as fit does; the model's weights equal the epoch index during that epoch.

    epoch_logs: one dict per epoch (copied). batch_logs(epoch, step) -> dict, optional.
    Returns (history, model).
    """
    model = model or FakeModel()
    epochs = len(epoch_logs) if epochs is None else epochs
    cbl = cb.CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=model,
                          verbose=verbose, epochs=epochs, steps=steps)
    model.stop_training = False
    cbl.on_train_begin()
    logs = {}
    for epoch, elogs in enumerate(epoch_logs):
        cbl.on_epoch_begin(epoch)
        model.mark(epoch)
        for step in range(steps):
            cbl.on_train_batch_begin(step)
            blogs = batch_logs(epoch, step) if batch_logs else {k: v for k, v in elogs.items()
                                                                 if not k.startswith("val_")}
            cbl.on_train_batch_end(step, blogs)
            if model.stop_training:
                break
        logs = dict(elogs)
        cbl.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cbl.on_train_end(logs)
    return cbl.history, model


def val_losses(*values):
    return [{"loss": 1.0, "val_loss": v} for v in values]


# ---------------------------------------------------------------------------- Callback / CallbackList
def test_base_callback_hooks_are_no_ops_and_batch_aliases_forward():
    seen = []

    class Legacy(cb.Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append((batch, logs))

    c = Legacy()
    assert c.model is None and c.params is None
    for hook in cb._HOOKS:
        args = (0,) if "batch" in hook or "epoch" in hook else ()
        getattr(cb.Callback(), hook)(*args, logs={})
    c.on_train_batch_end(3, {"loss": 1.0})
    assert seen == [(3, {"loss": 1.0})]


def test_callback_list_adds_history_and_progbar_once_and_sets_model_and_params():
    model = FakeModel()
    mine = cb.EarlyStopping()
    cbl = cb.CallbackList([mine], add_history=True, add_progbar=True, model=model, verbose=1, epochs=3, steps=5)
    assert [type(c) for c in cbl.callbacks] == [cb.EarlyStopping, cb.History, cb.ProgbarLogger]
    assert all(c.model is model for c in cbl.callbacks)
    assert all(c.params == {"verbose": 1, "epochs": 3, "steps": 5} for c in cbl.callbacks)
    assert model.history is cbl.history
    own = cb.History()
    cbl = cb.CallbackList([own, [cb.ProgbarLogger()]], add_history=True, add_progbar=True, model=model)
    assert len(cbl) == 2 and cbl.history is own
    assert cb.CallbackList(None).callbacks == []
    assert cb.CallbackList(cb.TerminateOnNaN()).callbacks[0].__class__ is cb.TerminateOnNaN


def test_callback_list_rejects_classes_and_foreign_objects():
    with pytest.raises(TypeError, match=r"EarlyStopping\(\)"):
        cb.CallbackList([cb.EarlyStopping])
    with pytest.raises(TypeError, match="Callback"):
        cb.CallbackList([object()])


def test_batch_logs_become_sorted_floats_and_epoch_logs_are_shared():
    got = {}

    class Spy(cb.Callback):
        def on_train_batch_end(self, batch, logs=None):
            got["batch"] = logs

        def on_epoch_end(self, epoch, logs=None):
            logs["extra"] = 1.0

    cbl = cb.CallbackList([Spy(), cb.History()], model=FakeModel())
    cbl.on_train_begin()
    cbl.on_train_batch_end(0, {"loss": np.float32(0.5), "accuracy": np.array(0.25)})
    assert list(got["batch"]) == ["accuracy", "loss"]
    assert all(type(v) is float for v in got["batch"].values())
    cbl.on_epoch_end(0, {"loss": 0.5})
    assert cbl.history.history["extra"] == [1.0]  # a later callback sees what an earlier one added


# ---------------------------------------------------------------------------- History
def test_history_records_epochs_params_and_model():
    logs = [{"loss": 1.0, "accuracy": 0.5, "val_loss": 1.1}, {"loss": 0.5, "accuracy": 0.7, "val_loss": 0.9}]
    history, model = train([], logs, steps=3)
    assert history.history == {"loss": [1.0, 0.5], "accuracy": [0.5, 0.7], "val_loss": [1.1, 0.9]}
    assert history.epoch == [0, 1]
    assert history.params == {"verbose": 0, "epochs": 2, "steps": 3}
    assert history.model is model and model.history is history


# ---------------------------------------------------------------------------- EarlyStopping
def test_early_stopping_patience():
    es = cb.EarlyStopping(patience=2)
    history, _ = train([es], val_losses(1.0, 0.9, 0.95, 0.96, 0.97, 0.5))
    assert history.epoch == [0, 1, 2, 3]
    assert es.stopped_epoch == 3 and es.best == 0.9 and es.best_epoch == 1


def test_early_stopping_patience_zero_stops_at_first_non_improvement():
    es = cb.EarlyStopping(monitor="loss")
    history, _ = train([es], [{"loss": v} for v in (1.0, 0.5, 0.5, 0.1)])
    assert history.epoch == [0, 1, 2] and es.stopped_epoch == 2


def test_early_stopping_min_delta():
    values = val_losses(1.0, 0.95, 0.92, 0.91)
    history, _ = train([cb.EarlyStopping(patience=1)], values)
    assert len(history.epoch) == 4
    es = cb.EarlyStopping(patience=1, min_delta=-0.1)  # the sign is ignored, as in Keras
    history, _ = train([es], values)
    assert history.epoch == [0, 1] and es.stopped_epoch == 1


def test_early_stopping_modes():
    accs = [{"val_accuracy": v} for v in (0.5, 0.6, 0.55, 0.7)]
    es = cb.EarlyStopping(monitor="val_accuracy")  # auto -> max
    assert train([es], accs)[0].epoch == [0, 1, 2]
    es = cb.EarlyStopping(monitor="val_accuracy", mode="min")
    assert train([es], accs)[0].epoch == [0, 1]
    es = cb.EarlyStopping(monitor="val_foo", mode="max")
    assert train([es], [{"val_foo": v} for v in (1, 2, 1)])[0].epoch == [0, 1, 2]
    for name, expected in [("val_mse", [0, 1]), ("mean_absolute_error", [0, 1]), ("val_auc", [0, 1, 2]),
                           ("binary_accuracy", [0, 1, 2]), ("val_output_loss", [0, 1])]:
        es = cb.EarlyStopping(monitor=name)
        assert train([es], [{name: v} for v in (1, 2, 1)])[0].epoch == expected, name


def test_early_stopping_auto_mode_raises_for_unknown_metric_and_warns_for_unknown_mode():
    with pytest.raises(ValueError, match=r"monitor=val_foo.*mode='max'"):
        train([cb.EarlyStopping(monitor="val_foo")], [{"val_foo": 1.0}])
    with pytest.warns(UserWarning, match="mode sideways is unknown|mode 'sideways' is unknown"):
        es = cb.EarlyStopping(mode="sideways")
    assert es.mode == "auto"


def test_early_stopping_auto_mode_reads_metric_direction_from_the_model():
    class Metric:
        name, _direction = "custom_score", "up"

    model = FakeModel()
    model.metrics = [Metric()]
    es = cb.EarlyStopping(monitor="val_custom_score")
    history, _ = train([es], [{"val_custom_score": v} for v in (1.0, 2.0, 1.0)], model=model)
    assert history.epoch == [0, 1, 2]


def test_early_stopping_baseline():
    accs = [{"val_accuracy": v} for v in (0.5, 0.6, 0.55, 0.56, 0.57, 0.58)]
    es = cb.EarlyStopping(monitor="val_accuracy", patience=2, baseline=0.9)
    assert train([es], accs)[0].epoch == [0, 1, 2]  # never beats the baseline: wait never resets
    es = cb.EarlyStopping(monitor="val_accuracy", patience=2)
    assert train([es], accs)[0].epoch == [0, 1, 2, 3]
    es = cb.EarlyStopping(monitor="val_accuracy", patience=2, baseline=0.4)
    assert train([es], accs)[0].epoch == [0, 1, 2, 3]


def test_early_stopping_restores_best_weights_when_it_stops(capsys):
    es = cb.EarlyStopping(patience=2, restore_best_weights=True, verbose=1)
    _, model = train([es], val_losses(1.0, 0.5, 0.7, 0.8, 0.1))
    assert es.stopped_epoch == 3
    assert all(np.all(w == 1) for w in model.get_weights())  # epoch 1 was the best
    out = capsys.readouterr().out
    assert "Epoch 4: early stopping" in out
    assert "Restoring model weights from the end of the best epoch: 2." in out


def test_early_stopping_restores_best_weights_even_without_stopping():
    # Keras 3: restore in on_train_end whenever best weights exist
    es = cb.EarlyStopping(patience=10, restore_best_weights=True)
    _, model = train([es], val_losses(1.0, 0.5, 0.7))
    assert es.stopped_epoch == 0
    assert all(np.all(w == 1) for w in model.get_weights())
    es = cb.EarlyStopping(patience=10, restore_best_weights=False)
    _, model = train([es], val_losses(1.0, 0.5, 0.7))
    assert all(np.all(w == 2) for w in model.get_weights())


def test_early_stopping_start_from_epoch():
    logs = val_losses(1.0, 2.0, 3.0, 4.0, 5.0)
    assert train([cb.EarlyStopping()], logs)[0].epoch == [0, 1]
    es = cb.EarlyStopping(start_from_epoch=2, restore_best_weights=True)
    history, model = train([es], logs)
    assert history.epoch == [0, 1, 2, 3] and es.best == 3.0
    assert all(np.all(w == 2) for w in model.get_weights())


def test_early_stopping_warns_when_metric_missing_and_is_reusable():
    es = cb.EarlyStopping(patience=0)
    with pytest.warns(UserWarning, match=r"`val_loss` which is not available. Available metrics are: loss"):
        history, _ = train([es], [{"loss": 1.0}, {"loss": 2.0}])
    assert history.epoch == [0, 1]
    train([es], val_losses(1.0, 2.0))
    assert es.stopped_epoch == 1
    train([es], val_losses(3.0, 2.0))  # state reset: 3.0 is not compared with the old best
    assert es.stopped_epoch == 0 and es.best == 2.0


# ---------------------------------------------------------------------------- ModelCheckpoint
def test_model_checkpoint_filepath_template(tmp_path):
    path = tmp_path / "model-{epoch:02d}-{val_loss:.2f}.cynet"
    _, model = train([cb.ModelCheckpoint(path)], val_losses(0.5, 0.25, 0.125))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["model-01-0.50.cynet", "model-02-0.25.cynet", "model-03-0.12.cynet"]
    assert [m for m, _ in model.saves] == ["save"] * 3


def test_model_checkpoint_save_best_only(tmp_path, capsys):
    mc = cb.ModelCheckpoint(str(tmp_path / "e{epoch}.cynet"), save_best_only=True, verbose=1)
    train([mc], val_losses(1.0, 0.5, 0.7, 0.4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e1.cynet", "e2.cynet", "e4.cynet"]
    out = capsys.readouterr().out
    assert "Epoch 2: val_loss improved from 1.00000 to 0.50000, saving model to" in out
    assert "Epoch 3: val_loss did not improve from 0.50000" in out


def test_model_checkpoint_save_best_only_max_mode_and_threshold(tmp_path):
    mc = cb.ModelCheckpoint(str(tmp_path / "a{epoch}.cynet"), monitor="val_accuracy", save_best_only=True)
    train([mc], [{"val_accuracy": v} for v in (0.5, 0.4, 0.6)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a1.cynet", "a3.cynet"]
    mc = cb.ModelCheckpoint(str(tmp_path / "t{epoch}.cynet"), save_best_only=True, initial_value_threshold=0.6)
    train([mc], val_losses(1.0, 0.5))
    assert sorted(p.name for p in tmp_path.glob("t*")) == ["t2.cynet"]


def test_model_checkpoint_save_best_only_without_monitor_warns_and_saves(tmp_path):
    mc = cb.ModelCheckpoint(str(tmp_path / "m.cynet"), save_best_only=True)
    with pytest.warns(UserWarning, match="val_loss available"):
        _, model = train([mc], [{"loss": 1.0}])
    assert len(model.saves) == 1


def test_model_checkpoint_save_weights_only(tmp_path):
    mc = cb.ModelCheckpoint(tmp_path / "sub" / "w-{epoch}.weights.npz", save_weights_only=True)
    _, model = train([mc], val_losses(1.0, 0.5))
    assert model.saves == [("save_weights", str(tmp_path / "sub" / f"w-{i}.weights.npz")) for i in (1, 2)]
    assert (tmp_path / "sub" / "w-2.weights.npz").read_text() == "weights"


@pytest.mark.parametrize("path, weights_only, match", [
    ("m.h5", False, r"must end in one of \['\.keras', '\.cynet'\].*legacy"),
    ("m", False, r"must end in one of \['\.keras', '\.cynet'\]"),
    ("m.weights.npz", False, r"save_weights_only=True"),
    ("m.weights.h5", False, r"save_weights_only=True"),
    ("m.keras", True, r"must end in one of \['\.weights\.h5', '\.weights\.npz'\]"),
    ("m.cynet", True, r"must end in one of \['\.weights\.h5', '\.weights\.npz'\]"),
])
def test_model_checkpoint_extension_errors(path, weights_only, match):
    with pytest.raises(ValueError, match=match):
        cb.ModelCheckpoint(path, save_weights_only=weights_only)


def test_model_checkpoint_save_freq_in_batches(tmp_path):
    mc = cb.ModelCheckpoint(str(tmp_path / "b-{epoch}-{batch}.cynet"), save_freq=2)
    train([mc], val_losses(1.0, 0.5), steps=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b-1-2.cynet", "b-1-4.cynet", "b-2-2.cynet",
                                                         "b-2-4.cynet"]
    for bad in ("batch", 0, 1.5, True):
        with pytest.raises(ValueError, match="save_freq"):
            cb.ModelCheckpoint("m.cynet", save_freq=bad)


def test_model_checkpoint_missing_template_key(tmp_path):
    mc = cb.ModelCheckpoint(str(tmp_path / "m-{val_acc:.2f}.cynet"))
    with pytest.raises(KeyError, match="val_acc"):
        train([mc], val_losses(1.0))


# ---------------------------------------------------------------------------- ReduceLROnPlateau
def lrs(history):
    return history.history["learning_rate"]


def test_reduce_lr_factor_and_patience():
    rl = cb.ReduceLROnPlateau(factor=0.5, patience=2)
    history, model = train([rl], val_losses(*[1.0] * 6))
    # logs["learning_rate"] holds the rate the epoch ran with (written before any reduction)
    assert lrs(history) == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25]
    assert model.optimizer.learning_rate == 0.25


def test_reduce_lr_cooldown():
    history, _ = train([cb.ReduceLROnPlateau(factor=0.5, patience=1)], val_losses(*[1.0] * 6))
    assert lrs(history) == [1.0, 1.0, 0.5, 0.25, 0.125, 0.0625]
    # as in Keras, the cooldown counter is decremented before it is checked: cooldown=2 skips one epoch
    history, _ = train([cb.ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2)], val_losses(*[1.0] * 6))
    assert lrs(history) == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    history, _ = train([cb.ReduceLROnPlateau(factor=0.5, patience=1, cooldown=3)], val_losses(*[1.0] * 6))
    assert lrs(history) == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_reduce_lr_min_lr_and_min_delta(capsys):
    rl = cb.ReduceLROnPlateau(factor=0.1, patience=1, min_lr=0.05, verbose=1)
    _, model = train([rl], val_losses(*[1.0] * 5))
    assert model.optimizer.learning_rate == 0.05
    assert "Epoch 3: ReduceLROnPlateau reducing learning rate to 0.05." in capsys.readouterr().out
    # improvements smaller than min_delta count as plateau
    history, _ = train([cb.ReduceLROnPlateau(factor=0.5, patience=1, min_delta=0.1)],
                       val_losses(1.0, 0.95, 0.9, 0.85))
    assert lrs(history) == [1.0, 1.0, 0.5, 0.25]
    history, _ = train([cb.ReduceLROnPlateau(factor=0.5, patience=1, min_delta=0.01)],
                       val_losses(1.0, 0.95, 0.9, 0.85))
    assert lrs(history) == [1.0] * 4


def test_reduce_lr_max_mode_and_errors():
    history, _ = train([cb.ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=1)],
                       [{"val_accuracy": v} for v in (0.5, 0.6, 0.7, 0.6)])
    assert lrs(history) == [1.0] * 4
    with pytest.raises(ValueError, match="factor"):
        cb.ReduceLROnPlateau(factor=1.0)
    with pytest.raises(TypeError, match="ReduceLROnPlateau cannot set the learning rate"):
        train([cb.ReduceLROnPlateau(patience=0)], val_losses(1.0, 1.0), model=FakeModel(schedule=True))
    with pytest.warns(UserWarning, match="`val_loss` which is not available"):
        train([cb.ReduceLROnPlateau()], [{"loss": 1.0}])


# ---------------------------------------------------------------------------- LearningRateScheduler
def test_lr_scheduler_two_argument_schedule(capsys):
    sched = cb.LearningRateScheduler(lambda epoch, lr: lr * 0.5, verbose=1)
    history, model = train([sched], [{"loss": 1.0}] * 3)
    assert model.optimizer.learning_rate == 0.125
    assert lrs(history) == [0.5, 0.25, 0.125]
    assert "Epoch 2: LearningRateScheduler setting learning rate to 0.25." in capsys.readouterr().out


def test_lr_scheduler_one_argument_schedule():
    def schedule(epoch):
        return 0.1 / (epoch + 1)

    history, model = train([cb.LearningRateScheduler(schedule)], [{"loss": 1.0}] * 4)
    assert lrs(history) == pytest.approx([0.1, 0.05, 0.1 / 3, 0.025])
    history, _ = train([cb.LearningRateScheduler(lambda epoch: np.float32(0.5))], [{"loss": 1.0}])
    assert lrs(history) == [0.5]


def test_lr_scheduler_does_not_hide_errors_inside_the_schedule():
    def schedule(epoch, lr):
        return lr + "oops"  # TypeError inside a two-argument schedule

    with pytest.raises(TypeError, match="oops|str"):
        train([cb.LearningRateScheduler(schedule)], [{"loss": 1.0}])
    with pytest.raises(ValueError, match="should be a float"):
        train([cb.LearningRateScheduler(lambda e, lr: "fast")], [{"loss": 1.0}])
    with pytest.raises(TypeError, match="LearningRateScheduler cannot set"):
        train([cb.LearningRateScheduler(lambda e, lr: 0.1)], [{"loss": 1.0}], model=FakeModel(schedule=True))


# ---------------------------------------------------------------------------- TerminateOnNaN
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -np.inf])
def test_terminate_on_nan(bad, capsys):
    def batch_logs(epoch, step):
        return {"loss": bad if (epoch, step) == (1, 2) else 0.5}

    history, model = train([cb.TerminateOnNaN()], [{"loss": 0.5}] * 4, steps=4, batch_logs=batch_logs)
    assert model.stop_training is True
    assert history.epoch == [0, 1]
    out = capsys.readouterr().out
    assert "Epoch 2, batch 2: Invalid loss" in out and "terminating training" in out


def test_terminate_on_nan_ignores_finite_losses_and_can_raise():
    history, model = train([cb.TerminateOnNaN()], [{"loss": 0.5}] * 3)
    assert history.epoch == [0, 1, 2] and model.stop_training is False
    with pytest.raises(RuntimeError, match="NaN or Inf loss"):
        train([cb.TerminateOnNaN(raise_error=True)], [{"loss": float("nan")}])


# ---------------------------------------------------------------------------- CSVLogger
def test_csv_logger_contents(tmp_path):
    path = tmp_path / "log.csv"
    logs = [{"loss": 1.0, "accuracy": 0.5, "val_loss": 1.5, "val_accuracy": 0.25},
            {"loss": 0.5, "accuracy": 0.75, "val_loss": 1.0, "val_accuracy": 0.5}]
    train([cb.CSVLogger(path)], logs)
    assert path.read_text() == ("epoch,accuracy,loss,val_accuracy,val_loss\n"
                                "0,0.5,1.0,0.25,1.5\n"
                                "1,0.75,0.5,0.5,1.0\n")


def test_csv_logger_append_and_overwrite(tmp_path):
    path = tmp_path / "log.csv"
    train([cb.CSVLogger(path, separator=";")], [{"loss": 1.0}])
    assert path.read_text() == "epoch;loss;val_loss\n0;1.0;NA\n"  # Keras adds val_ columns
    train([cb.CSVLogger(path, separator=";", append=True)], [{"loss": 0.5}, {"loss": 0.25}])
    assert path.read_text() == "epoch;loss;val_loss\n0;1.0;NA\n0;0.5;NA\n1;0.25;NA\n"
    train([cb.CSVLogger(path, separator=";")], [{"loss": 2.0}])
    assert path.read_text() == "epoch;loss;val_loss\n0;2.0;NA\n"
    fresh = tmp_path / "new.csv"
    train([cb.CSVLogger(fresh, append=True)], [{"loss": 1.0, "val_loss": 2.0}])
    assert fresh.read_text() == "epoch,loss,val_loss\n0,1.0,2.0\n"


# ---------------------------------------------------------------------------- LambdaCallback
def test_lambda_callback_calls_the_given_functions():
    calls = []
    lam = cb.LambdaCallback(
        on_train_begin=lambda logs: calls.append("train_begin"),
        on_epoch_begin=lambda epoch, logs: calls.append(("epoch_begin", epoch)),
        on_train_batch_begin=lambda batch, logs: calls.append(("batch_begin", batch)),
        on_train_batch_end=lambda batch, logs: calls.append(("batch_end", batch, logs["loss"])),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, logs["loss"])),
        on_train_end=lambda logs: calls.append("train_end"),
        on_test_begin=lambda logs: calls.append("test_begin"),
    )
    train([lam], [{"loss": 0.5}], steps=2)
    assert calls == ["train_begin", ("epoch_begin", 0), ("batch_begin", 0), ("batch_end", 0, 0.5),
                     ("batch_begin", 1), ("batch_end", 1, 0.5), ("epoch_end", 0, 0.5), "train_end"]
    lam.on_test_begin({})
    assert calls[-1] == "test_begin"


def test_lambda_callback_rejects_unknown_hooks():
    with pytest.raises(TypeError, match="on_epoch_ends"):
        cb.LambdaCallback(on_epoch_ends=lambda epoch, logs: None)
    with pytest.raises(TypeError, match="callable"):
        cb.LambdaCallback(on_epoch_end=3)


# ---------------------------------------------------------------------------- ProgbarLogger
@pytest.fixture
def non_tty(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.delenv("PYCHARM_HOSTED", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


def running(epoch, step):
    """Running means as fit passes them: exact values the bar must show unchanged."""
    return {"loss": [0.5, 0.4, 0.3][step], "accuracy": [0.7, 0.8, 0.9][step]}


EPOCHS = [{"loss": 0.3, "accuracy": 0.9, "val_loss": 0.35, "val_accuracy": 0.85}] * 2


def test_progbar_logger_verbose_1_non_tty(non_tty, capsys):
    train([], EPOCHS, steps=3, verbose=1, batch_logs=running)
    out = capsys.readouterr().out
    assert not re.search(r"[\r\b\x1b]", out)
    lines = out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    assert re.fullmatch(rf"3/3 {BAR}{{20}} \d+s \d+(us|ms|s)/step - accuracy: 0\.9000 - loss: 0\.3000 "
                        r"- val_accuracy: 0\.8500 - val_loss: 0\.3500", lines[1]), lines[1]


def test_progbar_logger_verbose_1_tty_redraws(non_tty, monkeypatch, capsys):
    monkeypatch.setattr(type(sys.stdout), "isatty", lambda self: True)
    cbl = cb.CallbackList([], add_progbar=True, model=FakeModel(), verbose=1, epochs=1, steps=3)
    cbl.on_train_begin()
    cbl.on_epoch_begin(0)
    cbl._progbar.progbar.interval = 0
    for step in range(3):
        cbl.on_train_batch_end(step, running(0, step))
    cbl.on_epoch_end(0, dict(EPOCHS[0]))
    out = capsys.readouterr().out
    assert not out.startswith("Epoch")  # no header for a single epoch, as in Keras
    frames = [re.sub(r"\x1b\[\d+m", "", f) for f in out.split("\r")[1:]]
    assert len(frames) == 4
    assert "1/3" in frames[0] and "loss: 0.5000" in frames[0]
    assert "loss: 0.4000" in frames[1]  # running means shown as given, not averaged again
    assert frames[3].endswith("val_loss: 0.3500\n")


def test_progbar_logger_verbose_2(non_tty, capsys):
    logs = [{"loss": 0.3, "accuracy": 0.9, "val_loss": 0.35, "val_accuracy": 0.85}] * 2  # fit's key order
    train([cb.ReduceLROnPlateau()], logs, steps=3, verbose=2, batch_logs=running)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and len(lines) == 4
    # Keras 3's order: batch metrics sorted, then validation sorted, then what callbacks added
    assert re.fullmatch(r"3/3 - \d+s - \d+(us|ms|s)/step - accuracy: 0\.9000 - loss: 0\.3000 "
                        r"- val_accuracy: 0\.8500 - val_loss: 0\.3500 - learning_rate: 1\.0000", lines[3]), lines[3]


def test_progbar_logger_ends_a_stopped_epoch_where_it_stopped(non_tty, capsys):
    def batch_logs(epoch, step):
        return {"loss": float("nan") if step == 1 else 0.5}

    train([cb.TerminateOnNaN()], [{"loss": 0.5}] * 2, steps=4, verbose=2, batch_logs=batch_logs)
    out = capsys.readouterr().out
    assert re.search(r"^2/4 - ", out, re.M), out


def test_progbar_logger_is_silent_for_validation_in_fit_but_not_for_evaluate(non_tty, capsys):
    cbl = cb.CallbackList([], add_progbar=True, model=FakeModel(), verbose=1, epochs=1, steps=2)
    cbl.on_train_begin()
    cbl.on_epoch_begin(0)
    cbl.on_train_batch_end(0, {"loss": 1.0})
    cbl.on_test_begin()
    cbl.on_test_batch_end(0, {"loss": 9.0})
    cbl.on_test_end({"loss": 9.0})
    cbl.on_epoch_end(0, {"loss": 1.0, "val_loss": 9.0})
    cbl.on_train_end()
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "val_loss: 9.0000" in out
    ev = cb.CallbackList([], add_progbar=True, model=FakeModel(), verbose=1, epochs=1, steps=2)
    ev.on_test_begin()
    for step in range(2):
        ev.on_test_batch_end(step, {"loss": 2.0})
    ev.on_test_end({"loss": 2.0})
    assert re.match(rf"2/2 {BAR}{{20}} .* - loss: 2\.0000\n$", capsys.readouterr().out)


def test_progbar_logger_verbose_0_prints_nothing(non_tty, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train([], EPOCHS, steps=3, verbose=0, batch_logs=running)
    assert capsys.readouterr().out == ""


class _PredictRecorder(cb.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_predict_begin(self, logs=None):
        self.events.append("begin")

    def on_predict_batch_begin(self, batch, logs=None):
        self.events.append(("batch_begin", batch))

    def on_predict_batch_end(self, batch, logs=None):
        self.events.append(("batch_end", batch, logs["outputs"].shape))

    def on_predict_end(self, logs=None):
        self.events.append("end")


def test_predict_calls_the_predict_hooks_with_each_batchs_outputs():
    model = cynet.Sequential([cynet.Input((3,)), layers.Dense(2)])
    x = np.arange(15, dtype="float32").reshape(5, 3)
    rec = _PredictRecorder()
    out = model.predict(x, batch_size=2, verbose=0, callbacks=[rec])
    assert rec.events == ["begin", ("batch_begin", 0), ("batch_end", 0, (2, 2)), ("batch_begin", 1),
                          ("batch_end", 1, (2, 2)), ("batch_begin", 2), ("batch_end", 2, (1, 2)), "end"]
    np.testing.assert_array_equal(out, model.predict(x, verbose=0))

    def batches():
        for i in range(2):
            yield x[2 * i:2 * i + 2]
    rec = _PredictRecorder()
    model.predict(batches(), verbose=0, callbacks=[rec])
    assert rec.events == ["begin", ("batch_begin", 0), ("batch_end", 0, (2, 2)), ("batch_begin", 1),
                          ("batch_end", 1, (2, 2)), "end"]
