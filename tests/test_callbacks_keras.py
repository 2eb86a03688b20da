"""LambdaCallback, TerminateOnNaN and CSVLogger driven by a real fit, side by side with Keras 3
(skipped when keras is absent)."""
import csv
import os

import numpy as np
import pytest

import cynet
from cynet import callbacks as cb
from cynet import layers


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3; found {keras.__version__}")
    return keras


def _pair(keras, lr=0.05):
    ours = cynet.Sequential([cynet.Input((3,)), layers.Dense(2)])
    ours.compile(optimizer=cynet.optimizers.SGD(lr), loss="mse", metrics=["mae"])
    theirs = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    theirs.compile(optimizer=keras.optimizers.SGD(lr), loss="mse", metrics=["mae"])
    theirs.set_weights(ours.get_weights())
    return ours, theirs


def _data(n=24):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")


def test_lambda_callback_calls_like_keras(keras):
    x, y = _data()
    ours, theirs = _pair(keras)
    calls = {"ours": [], "theirs": []}

    def hooks(kind, module):
        log = calls[kind].append
        return module.LambdaCallback(
            on_train_begin=lambda logs: log(("train_begin",)),
            on_epoch_begin=lambda epoch, logs: log(("epoch_begin", epoch)),
            on_train_batch_begin=lambda batch, logs: log(("batch_begin", batch)),
            on_train_batch_end=lambda batch, logs: log(("batch_end", batch, sorted(logs))),
            on_epoch_end=lambda epoch, logs: log(("epoch_end", epoch, sorted(logs))),
            on_train_end=lambda logs: log(("train_end",)),
            on_test_begin=lambda logs: log(("test_begin",)))

    ours.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_data=(x, y), callbacks=[hooks("ours", cb)])
    theirs.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_data=(x, y),
               callbacks=[hooks("theirs", keras.callbacks)])
    assert calls["ours"] == calls["theirs"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_terminate_on_nan_stops_like_keras(keras):
    x, y = _data()
    x[13] = 1e30   # finite, but its squared error overflows: batch 1 of epoch 0 has an infinite loss
    ours, theirs = _pair(keras)
    batches = {"ours": [], "theirs": []}
    h = ours.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
                 callbacks=[cb.TerminateOnNaN(),
                            cb.LambdaCallback(on_train_batch_end=lambda b, logs: batches["ours"].append(b))])
    kh = theirs.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
                    callbacks=[keras.callbacks.TerminateOnNaN(),
                               keras.callbacks.LambdaCallback(
                                   on_train_batch_end=lambda b, logs: batches["theirs"].append(b))])
    assert batches["ours"] == batches["theirs"] == [0, 1]
    assert h.epoch == kh.epoch == [0]
    with pytest.raises(RuntimeError, match="NaN or Inf loss"):
        ours.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[cb.TerminateOnNaN(True)])
    with pytest.raises(RuntimeError, match="NaN or Inf loss"):
        theirs.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0,
                   callbacks=[keras.callbacks.TerminateOnNaN(True)])


@pytest.mark.parametrize("validation", [False, True])
def test_csv_logger_writes_what_keras_writes(keras, tmp_path, validation):
    x, y = _data()
    ours, theirs = _pair(keras)
    extra = {"validation_data": (x, y)} if validation else {}
    for model, module, name in ((ours, cb, "ours.csv"), (theirs, keras.callbacks, "theirs.csv")):
        path = str(tmp_path / name)
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[module.CSVLogger(path)],
                  **extra)
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0,
                  callbacks=[module.CSVLogger(path, separator=";", append=True)], **extra)
    rows = {}
    for name in ("ours", "theirs"):
        with open(tmp_path / f"{name}.csv", newline="") as f:
            rows[name] = [line.rstrip("\r\n") for line in f]
    assert len(rows["ours"]) == len(rows["theirs"]) == 4   # one header, then 2 + 1 epochs
    assert rows["ours"][0] == rows["theirs"][0]            # the same columns in the same order
    for a, b in zip(rows["ours"][1:], rows["theirs"][1:]):
        sep = ";" if ";" in b else ","
        fa, fb = next(csv.reader([a], delimiter=sep)), next(csv.reader([b], delimiter=sep))
        assert fa[0] == fb[0]   # the epoch
        assert [v == "NA" for v in fa] == [v == "NA" for v in fb]   # validation columns without validation
        np.testing.assert_allclose([float(v) for v in fa[1:] if v != "NA"], [float(v) for v in fb[1:] if v != "NA"],
                                   rtol=1e-5)
