"""callbacks.TensorBoard: Keras 3's run layout and tags, in event files written without TensorFlow.
The files are read back by cynet's own reader (which checks every record's CRC-32C) and, where
TensorBoard is installed, by TensorBoard's own event reader."""
import glob
import os

import numpy as np
import pytest

import cynet
from cynet.utils import tfevents

RNG = np.random.default_rng(0)


def _scalars(run_dir):
    """{tag: [(step, value), ...]} of the event files in run_dir."""
    out = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "events.out.tfevents.*"))):
        for event in tfevents.read_events(path):
            for v in event.get("values", []):
                if "simple_value" in v:
                    out.setdefault(v["tag"], []).append((event["step"], v["simple_value"]))
    return out


def _fit(tmp_path, **kwargs):
    cynet.utils.set_random_seed(0)
    model = cynet.Sequential([cynet.Input((4,)), cynet.layers.Dense(8, activation="relu"),
                              cynet.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=cynet.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x, y = RNG.standard_normal((40, 4)).astype("float32"), RNG.integers(0, 3, 40)
    tb = cynet.callbacks.TensorBoard(str(tmp_path / "logs"), **kwargs)
    history = model.fit(x, y, epochs=3, batch_size=10, validation_split=0.25, callbacks=[tb], verbose=0)
    return model, history, tmp_path / "logs"


def test_crc32c_and_varints():
    assert tfevents._crc32c(b"123456789") == 0xE3069283          # the standard check value
    assert tfevents._crc32c(b"") == 0
    assert tfevents._read_varint(tfevents._varint(300), 0) == (300, 2)
    assert tfevents._read_varint(tfevents._varint(-1), 0)[0] == (1 << 64) - 1


def test_epoch_scalars_match_the_history(tmp_path):
    _, history, logs = _fit(tmp_path)
    train, val = _scalars(logs / "train"), _scalars(logs / "validation")
    for name in ("loss", "accuracy"):
        assert [s for s, _ in train[f"epoch_{name}"]] == [0, 1, 2]
        np.testing.assert_allclose([v for _, v in train[f"epoch_{name}"]], history.history[name], rtol=1e-6)
        np.testing.assert_allclose([v for _, v in val[f"epoch_{name}"]], history.history[f"val_{name}"], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in train["epoch_learning_rate"]], [0.01] * 3, rtol=1e-6)
    # one evaluation per epoch (fit's validation), at step = the optimizer's iterations (3 batches an epoch)
    assert [s for s, _ in val["evaluation_loss_vs_iterations"]] == [3, 6, 9]
    assert not any(tag.startswith("batch_") for tag in train)
    first = next(tfevents.read_events(glob.glob(str(logs / "train" / "events.out.tfevents.*"))[0]))
    assert first["file_version"] == "brain.Event:2"


def test_batch_scalars_and_histograms(tmp_path):
    model, _, logs = _fit(tmp_path, update_freq=2, histogram_freq=2, write_steps_per_second=True)
    train = _scalars(logs / "train")
    assert [s for s, _ in train["batch_loss"]] == [2, 4, 6, 8]        # every 2nd of 9 training batches
    assert "batch_steps_per_second" in train and "epoch_steps_per_second" in train
    histos = {}
    for path in glob.glob(str(logs / "train" / "events.out.tfevents.*")):
        for event in tfevents.read_events(path):
            for v in event.get("values", []):
                if "histo" in v:
                    histos.setdefault(v["tag"], []).append((event["step"], v["histo"]))
    kernel = model.layers[0].kernel
    assert sorted(histos) == sorted(f"{w.path}/histogram" for layer in model.layers for w in layer.weights)
    (step0, h0), (step2, h2) = histos[f"{kernel.path}/histogram"]
    assert (step0, step2) == (0, 2)
    assert h2["num"] == kernel.size and sum(h2["bucket"]) == kernel.size
    np.testing.assert_allclose([h2["min"], h2["max"], h2["sum"]],
                               [kernel.value.min(), kernel.value.max(), kernel.value.sum()], rtol=1e-5)


def test_arguments(tmp_path):
    for kwargs, exc in ((dict(update_freq="weekly"), ValueError), (dict(update_freq=0), ValueError),
                        (dict(histogram_freq=-1), ValueError), (dict(write_images=True), NotImplementedError),
                        (dict(profile_batch=2), NotImplementedError), (dict(embeddings_freq=1), NotImplementedError)):
        with pytest.raises(exc, match=next(iter(kwargs))):
            cynet.callbacks.TensorBoard(str(tmp_path), **kwargs)


def test_a_corrupted_file_is_detected(tmp_path):
    writer = tfevents.EventFileWriter(tmp_path)
    writer.add_scalar("x", 1.0, 0)
    writer.close()
    data = bytearray(open(writer.path, "rb").read())
    data[-6] ^= 0xFF
    open(writer.path, "wb").write(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        list(tfevents.read_events(writer.path))


def test_tensorboard_reads_the_files(tmp_path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    _, history, logs = _fit(tmp_path, histogram_freq=1)
    acc = accumulator.EventAccumulator(str(logs / "train"))
    acc.Reload()
    assert "epoch_loss" in acc.Tags()["scalars"] and acc.Tags()["histograms"]
    np.testing.assert_allclose([e.value for e in acc.Scalars("epoch_loss")], history.history["loss"], rtol=1e-6)
