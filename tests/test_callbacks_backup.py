"""callbacks.BackupAndRestore: an interrupted fit, resumed with the same backup_dir, ends as an
uninterrupted one (weights, optimizer state, history); compared with Keras 3's resume semantics."""
import os

import numpy as np
import pytest

import cynet
from cynet import callbacks as cb
from cynet import layers


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype("float32"), rng.normal(size=(n, 1)).astype("float32")


def _model(weights=None):
    model = cynet.Sequential([cynet.Input((4,)), layers.Dense(3, activation="tanh"), layers.Dense(1)])
    model.compile(optimizer=cynet.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    if weights is not None:
        model.set_weights(weights)
    return model


class Interrupt(cb.Callback):
    """Raises at the beginning of epoch `epoch` (or after batch `batch` of it)."""

    def __init__(self, epoch, batch=None):
        super().__init__()
        self.epoch, self.batch, self._current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self._current = epoch
        if epoch == self.epoch and self.batch is None:
            raise RuntimeError("interrupted")

    def on_train_batch_end(self, batch, logs=None):
        if self._current == self.epoch and batch == self.batch:
            raise RuntimeError("interrupted")


def _assert_same_state(a, b):
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)
    assert len(a.optimizer.variables) == len(b.optimizer.variables)
    for x, y in zip(a.optimizer.variables, b.optimizer.variables):
        np.testing.assert_array_equal(x.value, y.value)


def _interrupted_then_resumed(tmp_path, interrupt, epochs=5, **backup_kwargs):
    x, y = _data()
    w0 = _model().get_weights()
    ref = _model(w0)
    h_ref = ref.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0)
    backup_dir = str(tmp_path / "backup")
    first = _model(w0)
    with pytest.raises(RuntimeError, match="interrupted"):
        first.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0,
                  callbacks=[cb.BackupAndRestore(backup_dir, **backup_kwargs), interrupt])
    assert os.listdir(backup_dir)
    second = _model([np.zeros_like(w) for w in w0])   # a fresh process: nothing but the backup
    h = second.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0,
                   callbacks=[cb.BackupAndRestore(backup_dir, **backup_kwargs)])
    return ref, h_ref, second, h, backup_dir


@pytest.mark.parametrize("k", [1, 3])
def test_resume_at_epoch_equals_uninterrupted_run(tmp_path, k):
    ref, h_ref, second, h, backup_dir = _interrupted_then_resumed(tmp_path, Interrupt(k))
    assert h.epoch == list(range(k, 5))
    for key in ("loss", "mae"):
        assert h.history[key] == h_ref.history[key][k:]
    _assert_same_state(second, ref)
    assert second.optimizer.iterations == ref.optimizer.iterations
    assert not os.path.exists(backup_dir)   # removed after a completed fit


def test_resume_same_model_object(tmp_path):
    """The usual case: the same model object (optimizer already built) fits again."""
    x, y = _data()
    w0 = _model().get_weights()
    ref = _model(w0)
    ref.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0)
    model = _model(w0)
    backup = cb.BackupAndRestore(str(tmp_path / "b"))
    with pytest.raises(RuntimeError):
        model.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0, callbacks=[backup, Interrupt(2, batch=1)])
    h = model.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0, callbacks=[backup])
    assert h.epoch == [2, 3]
    _assert_same_state(model, ref)


def test_save_freq_batches_resumes_after_the_last_backup(tmp_path):
    # 5 batches per epoch; backups every 2 batches: the last before the interruption (epoch 2,
    # after batch 3) is after batch 3 (steps 0-3 of epoch 2 are done), so resuming trains batch 4.
    ref, h_ref, second, h, _ = _interrupted_then_resumed(tmp_path, Interrupt(2, batch=3), save_freq=2)
    assert h.epoch == [2, 3, 4]
    assert h.history["loss"][1:] == h_ref.history["loss"][3:]
    _assert_same_state(second, ref)


def test_save_freq_batches_backup_position(tmp_path):
    x, y = _data()
    model = _model()
    backup_dir = tmp_path / "b"
    with pytest.raises(RuntimeError):
        model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
                  callbacks=[cb.BackupAndRestore(str(backup_dir), save_freq=3), Interrupt(1, batch=2)])
    # batches seen: 5 in epoch 0 (backup after its batch 2), 3 in epoch 1 (backup after batch 0,
    # the 6th batch, since the count runs across epochs as in Keras)
    from cynet.saving import load_training_state
    assert load_training_state(_model(), str(backup_dir / "latest.backup")) == {"epoch": 1, "step": 1}


def test_save_freq_at_epoch_end_moves_to_next_epoch(tmp_path):
    x, y = _data()
    model = _model()
    with pytest.raises(RuntimeError):
        model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
                  callbacks=[cb.BackupAndRestore(str(tmp_path / "b"), save_freq=5), Interrupt(1, batch=2)])
    from cynet.saving import load_training_state
    assert load_training_state(_model(), str(tmp_path / "b" / "latest.backup")) == {"epoch": 1, "step": 0}


def test_double_checkpoint_falls_back_to_previous(tmp_path):
    x, y = _data()
    w0 = _model().get_weights()
    ref = _model(w0)
    h_ref = ref.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0)
    backup_dir = tmp_path / "b"
    first = _model(w0)
    with pytest.raises(RuntimeError):
        first.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0,
                  callbacks=[cb.BackupAndRestore(str(backup_dir), double_checkpoint=True), Interrupt(3)])
    assert sorted(os.listdir(backup_dir)) == ["latest.backup", "latest.backup.bkp"]
    (backup_dir / "latest.backup").write_bytes(b"not a zip")   # the latest is damaged
    second = _model(w0)
    with pytest.warns(UserWarning, match="previous backup"):
        h = second.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0,
                       callbacks=[cb.BackupAndRestore(str(backup_dir), double_checkpoint=True)])
    assert h.epoch == [2, 3]   # from the backup of epoch 1's end
    assert h.history["loss"] == h_ref.history["loss"][2:]
    _assert_same_state(second, ref)
    assert not backup_dir.exists()


def test_damaged_backup_without_double_checkpoint_raises(tmp_path):
    backup_dir = tmp_path / "b"
    backup_dir.mkdir()
    (backup_dir / "latest.backup").write_bytes(b"not a zip")
    x, y = _data()
    with pytest.raises(ValueError, match="latest.backup"):
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[cb.BackupAndRestore(str(backup_dir))])


def test_backup_of_another_model_is_refused(tmp_path):
    x, y = _data()
    with pytest.raises(RuntimeError):
        _model().fit(x, y, epochs=3, verbose=0,
                     callbacks=[cb.BackupAndRestore(str(tmp_path / "b")), Interrupt(1)])
    other = cynet.Sequential([cynet.Input((4,)), layers.Dense(1)])
    other.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="weights"):
        other.fit(x, y, epochs=3, verbose=0, callbacks=[cb.BackupAndRestore(str(tmp_path / "b"))])


def test_delete_checkpoint_false_keeps_the_backup(tmp_path):
    x, y = _data()
    _model().fit(x, y, epochs=2, verbose=0,
                 callbacks=[cb.BackupAndRestore(str(tmp_path / "b"), delete_checkpoint=False)])
    assert os.listdir(tmp_path / "b") == ["latest.backup"]
    # a new fit resumes from it: epoch 2 of 2 is the end, nothing more runs
    h = _model().fit(x, y, epochs=2, verbose=0, callbacks=[cb.BackupAndRestore(str(tmp_path / "b"))])
    assert h.epoch == []


def test_end_leaves_other_files(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "mine.txt").write_text("keep")
    x, y = _data()
    _model().fit(x, y, epochs=1, verbose=0, callbacks=[cb.BackupAndRestore(str(tmp_path / "b"))])
    assert os.listdir(tmp_path / "b") == ["mine.txt"]


def test_save_freq_false_never_writes(tmp_path):
    x, y = _data()
    _model().fit(x, y, epochs=2, verbose=0, callbacks=[cb.BackupAndRestore(str(tmp_path / "b"), save_freq=False)])
    assert not (tmp_path / "b").exists()


def test_stream_resume(tmp_path):
    """A PyDataset (no shuffle): the resumed run skips the batches trained before the backup."""
    x, y = _data()

    class Data(cynet.utils.PyDataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8]

    w0 = _model().get_weights()
    ref = _model(w0)
    ref.fit(Data(), epochs=3, shuffle=False, verbose=0)
    first = _model(w0)
    with pytest.raises(RuntimeError):
        first.fit(Data(), epochs=3, shuffle=False, verbose=0,
                  callbacks=[cb.BackupAndRestore(str(tmp_path / "b"), save_freq=2), Interrupt(1, batch=2)])
    second = _model(w0)
    h = second.fit(Data(), epochs=3, shuffle=False, verbose=0,
                   callbacks=[cb.BackupAndRestore(str(tmp_path / "b"), save_freq=2)])
    assert h.epoch == [1, 2]
    _assert_same_state(second, ref)


def test_resume_point_is_consumed(tmp_path):
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[cb.BackupAndRestore(str(tmp_path / "b"),
                                                                        delete_checkpoint=False)])
    h = model.fit(x, y, epochs=3, verbose=0, callbacks=[cb.BackupAndRestore(str(tmp_path / "b"))])
    assert h.epoch == [2]
    assert model.fit(x, y, epochs=2, verbose=0).epoch == [0, 1]   # no callback: starts afresh


def test_model_built_by_fit_resumes(tmp_path):
    """Keras asks for a built model; cynet's fit builds it on the data before on_train_begin."""
    def model():
        m = cynet.Sequential([layers.Dense(1)])
        m.compile(optimizer="sgd", loss="mse")
        return m
    x, y = _data()
    with pytest.raises(RuntimeError):
        model().fit(x, y, epochs=3, verbose=0, callbacks=[cb.BackupAndRestore(str(tmp_path / "b")), Interrupt(2)])
    assert model().fit(x, y, epochs=3, verbose=0, callbacks=[cb.BackupAndRestore(str(tmp_path / "b"))]).epoch == [2]


@pytest.mark.parametrize("kwargs, name", [
    ({"backup_dir": ""}, "backup_dir"),
    ({"backup_dir": None}, "backup_dir"),
    ({"backup_dir": "d", "save_freq": "batch"}, "save_freq"),
    ({"backup_dir": "d", "save_freq": 0}, "save_freq"),
    ({"backup_dir": "d", "save_freq": True}, "save_freq"),
    ({"backup_dir": "d", "save_freq": 2.5}, "save_freq"),
    ({"backup_dir": "d", "double_checkpoint": "yes"}, "double_checkpoint"),
    ({"backup_dir": "d", "delete_checkpoint": 1}, "delete_checkpoint"),
])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        cb.BackupAndRestore(**kwargs)


def test_keras_resume_semantics(tmp_path):
    """Keras 3 and cynet run the same epochs after an interruption at the same point."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3; found {keras.__version__}")
    x, y = _data()

    class KInterrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:
                raise RuntimeError("interrupted")

    def keras_run(directory, **kwargs):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        with pytest.raises(RuntimeError):
            model.fit(x, y, batch_size=8, epochs=6, verbose=0,
                      callbacks=[keras.callbacks.BackupAndRestore(directory, **kwargs), KInterrupt()])
        h = model.fit(x, y, batch_size=8, epochs=6, verbose=0,
                      callbacks=[keras.callbacks.BackupAndRestore(directory, **kwargs)])
        return h.epoch, os.path.exists(directory)

    def cynet_run(directory, **kwargs):
        model = _model()
        with pytest.raises(RuntimeError):
            model.fit(x, y, batch_size=8, epochs=6, verbose=0,
                      callbacks=[cb.BackupAndRestore(directory, **kwargs), Interrupt(3)])
        h = model.fit(x, y, batch_size=8, epochs=6, verbose=0, callbacks=[cb.BackupAndRestore(directory, **kwargs)])
        return h.epoch, os.path.exists(directory)

    for kwargs in ({}, {"save_freq": 2}, {"double_checkpoint": True}):
        assert cynet_run(str(tmp_path / "c"), **kwargs) == keras_run(str(tmp_path / "k"), **kwargs)
    kept = keras_run(str(tmp_path / "k2"), delete_checkpoint=False)
    assert cynet_run(str(tmp_path / "c2"), delete_checkpoint=False) == kept
