"""Long training runs do not grow memory.

A small CNN (Conv2D, BatchNormalization, MaxPooling2D, Dropout, Dense) and an LSTM model train
for a few warm-up epochs, then N more, with validation, the progress bar (to /dev/null),
EarlyStopping(restore_best_weights=True) and ReduceLROnPlateau. A probe callback measures at the
end of every epoch, after gc.collect() and malloc_trim(0):

- tracemalloc, split by domain: NumPy reports its data buffers in a domain of their own, so
  arrays that accumulate (a layer caching per call, a callback keeping logs or weights) show
  there, to the byte; Python objects show in domain 0, where the History's own growth (its
  per-epoch floats, epoch indices and list slots, computed exactly with sys.getsizeof) is
  subtracted and what remains must stay below a small constant (and, in the long run, grow
  slower than one float per training step); the number of gc-tracked objects must stay flat;
- RSS (/proc/self/statm), with tracemalloc off, must stay flat.

Fast (CI): 3 + 12 epochs per model. Slow (`-m slow`): 5 + 300 epochs per model, and 270 + 120
repeated one-epoch fit / evaluate / predict cycles on one model.
"""
import contextlib
import ctypes
import ctypes.util
import gc
import math
import os
import sys
import tracemalloc

import numpy as np
import pytest

import cynet
from cynet import layers
from cynet.callbacks import Callback, EarlyStopping, ReduceLROnPlateau
from cynet.utils.rng import set_random_seed

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads /proc/self/statm (Linux)")

NUMPY_DOMAIN = 389047           # NumPy's tracemalloc domain for array data (numpy/_core/src/multiarray/alloc.c)
PAGE = os.sysconf("SC_PAGE_SIZE")

try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _libc.malloc_trim.argtypes = [ctypes.c_size_t]
except (OSError, AttributeError):  # pragma: no cover - not glibc
    _libc = None


def _settle():
    gc.collect()
    if _libc is not None:
        _libc.malloc_trim(0)


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _history_bytes(history):
    """Bytes the History holds beyond its (empty) self: lists, and the objects in them that are
    not shared singletons (small ints)."""
    total = sys.getsizeof(history.epoch) + sum(sys.getsizeof(e) for e in history.epoch if not -5 <= e <= 256)
    for values in history.history.values():
        total += sys.getsizeof(values) + sum(sys.getsizeof(v) for v in values)
    return total


class _Probe(Callback):
    """Measures memory at the end of each epoch into preallocated arrays (allocating nothing
    that accumulates itself)."""

    def __init__(self, epochs, trace):
        super().__init__()
        self.trace = trace
        self.rss = np.zeros(epochs, np.int64)
        self.python = np.zeros(epochs, np.int64)
        self.numpy = np.zeros(epochs, np.int64)
        self.history = np.zeros(epochs, np.int64)
        self.objects = np.zeros(epochs, np.int64)
        self.i = 0

    def on_epoch_end(self, epoch, logs=None):
        _settle()
        i = self.i
        self.rss[i] = _rss()
        self.objects[i] = len(gc.get_objects())
        if self.trace:
            snapshot = tracemalloc.take_snapshot()
            for stat in snapshot.filter_traces([tracemalloc.DomainFilter(True, NUMPY_DOMAIN)]).statistics("filename"):
                self.numpy[i] += stat.size
            for stat in snapshot.filter_traces([tracemalloc.DomainFilter(False, NUMPY_DOMAIN)]).statistics("filename"):
                self.python[i] += stat.size
            del snapshot, stat
            # fit appends its History after the user's callbacks, so the probe sees the History of
            # the earlier epochs (and this epoch's logs, alive in fit): the same at every epoch.
            self.history[i] = _history_bytes(self.model.history)
        self.i += 1


def _cnn():
    return cynet.Sequential([
        layers.Input((8, 8, 1)),
        layers.Conv2D(4, 3, padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dropout(0.25),
        layers.Dense(3, activation="softmax"),
    ])


def _lstm():
    return cynet.Sequential([layers.Input((6, 4)), layers.LSTM(8), layers.Dense(3, activation="softmax")])


MODELS = {"cnn": (_cnn, (8, 8, 1)), "lstm": (_lstm, (6, 4))}


def _data(shape, n, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n,) + shape).astype(np.float32), rng.integers(0, 3, n)


def _train(name, epochs, trace, n=64, batch_size=8):
    """Fit one model for `epochs` epochs under the probe; returns (probe, history)."""
    build, shape = MODELS[name]
    set_random_seed(7)
    x, y = _data(shape, n, 0)
    vx, vy = _data(shape, n // 2, 1)
    model = build()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    probe = _Probe(epochs, trace)
    callbacks = [probe, EarlyStopping(monitor="val_loss", patience=10**6, restore_best_weights=True),
                 ReduceLROnPlateau(monitor="val_loss", patience=10**6)]
    if trace:
        tracemalloc.start(1)
    try:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            history = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=1,
                                validation_data=(vx, vy), callbacks=callbacks)
    finally:
        if trace:
            tracemalloc.stop()
    assert probe.i == epochs, "the probe must see every epoch (nothing stopped training)"
    return probe, history


def _steady(series):
    """Growth of a per-epoch series that a steady leak would cause: twice the smaller of the
    growths over the two halves (a one-off step, such as glibc moving its mmap threshold,
    shows in one half only)."""
    mid = len(series) // 2
    return 2 * min(series[mid] - series[0], series[-1] - series[mid])


def _check_history(history, epochs):
    assert history.epoch == list(range(epochs))
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    for key, values in history.history.items():
        assert len(values) == epochs, key
        assert all(type(v) is float for v in values), f"History['{key}'] must hold plain floats, no arrays"


def _check_traced(probe, warmup, python_slack=24 * 1024, tail_bytes_per_epoch=None):
    """NumPy buffers and container objects flat; Python memory growing by the History's floats
    and what CPython and NumPy keep in their caches.

    Those caches are no leak but are not quite flat either: without tracemalloc,
    sys.getallocatedblocks() after gc.collect() rises by a few hundred blocks over 100k training
    steps, ever more slowly (also in train_on_batch alone), with RSS flat; under tracemalloc the
    non-History growth measured about 10 KiB after 12 epochs, 21 KiB after 100, 30 KiB after
    300, then 26-45 bytes an epoch. So the fast check bounds it by a constant (`python_slack`)
    and the long one also bounds its rate over the last third of the epochs
    (`tail_bytes_per_epoch`), which a leak of one float per training step (8 steps an epoch,
    192 bytes) exceeds.
    """
    w = warmup - 1
    numpy_growth = probe.numpy[w:] - probe.numpy[w]
    objects_growth = probe.objects[w:] - probe.objects[w]
    python_growth = probe.python[w:] - probe.python[w]
    history_growth = probe.history[w:] - probe.history[w]
    other = python_growth - history_growth
    report = (f"since the warm-up, per epoch: NumPy buffers {numpy_growth.tolist()}\n"
              f"gc-tracked objects {objects_growth.tolist()}\nPython memory {python_growth.tolist()}\n"
              f"of which the History {history_growth.tolist()}")
    # exact: a leaked array of any size, kept once per epoch or per step, fails
    assert numpy_growth.max() <= 0, "NumPy arrays accumulate during training:\n" + report
    # exact up to a few: a container (list, dict, layer, closure) kept once per step fails
    assert objects_growth[-1] <= 8, "Python objects accumulate during training:\n" + report
    assert other.max() <= python_slack, "Python objects other than the History's floats accumulate:\n" + report
    if tail_bytes_per_epoch is not None:
        k = len(other) // 3
        tail = int(other[-1] - other[-1 - k])
        assert tail <= k * tail_bytes_per_epoch + 2048, (
            f"Python objects other than the History's floats grew by {tail} bytes over the last {k} epochs:\n"
            + report)
    # and the History grows by what it records, floats and epoch numbers: a few dozen bytes a value
    epochs = len(history_growth) - 1
    assert history_growth[-1] <= epochs * 6 * 64 + 4096, report
    return other


def _check_rss(probe, warmup, limit):
    rss = probe.rss[warmup - 1:]
    steady = _steady(rss)
    assert steady <= limit, (f"RSS grew steadily by {steady / 1024:.0f} KiB over {len(rss) - 1} epochs "
                             f"(per epoch, KiB: {(np.diff(rss) // 1024).tolist()})")
    return steady


@pytest.mark.parametrize("name", sorted(MODELS))
def test_training_memory_is_flat(name):
    warmup, epochs = 3, 3 + 12
    probe, history = _train(name, epochs, trace=True)
    _check_history(history, epochs)
    _check_traced(probe, warmup)
    probe, history = _train(name, epochs, trace=False)
    _check_rss(probe, warmup, limit=1024 * 1024)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_long_training_memory_is_flat(name):
    """300 epochs x 8 steps: a leak of 1 KiB a step (2.4 MiB) fails the RSS check, one float a
    step (192 bytes an epoch) the tracemalloc rate check, any array the NumPy check."""
    warmup, epochs = 5, 5 + 300
    traced, history = _train(name, epochs, trace=True)
    _check_history(history, epochs)
    other = _check_traced(traced, warmup, python_slack=64 * 1024, tail_bytes_per_epoch=100)
    probe, history = _train(name, epochs, trace=False)
    steady = _check_rss(probe, warmup, limit=1024 * 1024)
    print(f"\n{name}: {epochs - warmup} epochs after {warmup} warm-up: RSS steady growth {steady / 1024:.0f} KiB; "
          f"traced: NumPy buffers {int(traced.numpy[-1] - traced.numpy[warmup - 1])} B, History "
          f"{int(traced.history[-1] - traced.history[warmup - 1])} B, other Python memory {int(other[-1])} B "
          f"(last 100 epochs: {int(other[-1] - other[-101])} B)")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_repeated_fit_evaluate_predict_is_flat(name):
    """Many short fits (each with its own History and progress bar), evaluations and predictions
    on one model: RSS and traced memory stay flat."""
    build, shape = MODELS[name]
    set_random_seed(3)
    x, y = _data(shape, 64, 0)
    model = build()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    def cycle():
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            model.fit(x, y, batch_size=8, epochs=1, verbose=1, validation_split=0.25)
            model.evaluate(x, y, batch_size=16, verbose=1)
            model.predict(x, batch_size=16, verbose=0)

    for _ in range(10):
        cycle()
    warm, rounds = 30, 240
    traced = np.zeros(rounds + 1, np.int64)
    tracemalloc.start(1)
    try:
        for _ in range(warm):
            cycle()
        for i in range(rounds + 1):
            if i:
                cycle()
            _settle()
            traced[i] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    rss = np.zeros(rounds // 2 + 1, np.int64)
    for i in range(len(rss)):
        if i:
            cycle()
        _settle()
        rss[i] = _rss()
    # 16 batches a cycle (6 training, 2 validation, 4 evaluation, 4 prediction): one float kept
    # a batch is 384 bytes a cycle; the caches of CPython and NumPy (see _check_traced) measured
    # about 50 bytes a cycle over these rounds, declining
    growth = traced - traced[0]
    tail = int(growth[-1] - growth[rounds // 2])
    assert growth[-1] <= 64 * 1024, f"traced memory per 10 fit calls: {growth[::10].tolist()}"
    assert tail <= (rounds // 2) * 160 + 4096, f"traced memory per 10 fit calls: {growth[::10].tolist()}"
    assert _steady(rss) <= 1024 * 1024, f"RSS per fit call, KiB: {(np.diff(rss) // 1024).tolist()}"
    assert math.isfinite(model.history.history["loss"][0])
