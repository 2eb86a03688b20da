"""cynet.utils.pad_sequences and cynet.utils.timeseries_dataset_from_array: against their
definitions written out here with loops, against Keras 3 where it is installed (the timeseries
comparison also needs TensorFlow, which Keras's version runs on), their errors, and the windows
dataset inside fit / evaluate / predict."""
import itertools
import os

import numpy as np
import pytest

import cynet
from cynet import layers
from cynet.utils import PyDataset, pad_sequences, timeseries_dataset_from_array


# ---------------------------------------------------------------------------------------------
# pad_sequences

def ref_pad(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    lengths = [len(s) for s in sequences]
    maxlen = max(lengths) if maxlen is None else maxlen
    first = next((s for s in sequences if len(s)), [])
    sample_shape = np.asarray(first).shape[1:]
    rows = []
    for s in sequences:
        s = list(s)
        kept = (s[len(s) - maxlen:] if len(s) > maxlen else s) if truncating == "pre" else s[:maxlen]
        fill = [np.full(sample_shape, value, dtype=dtype)] * (maxlen - len(kept))
        kept = [np.asarray(v, dtype=dtype) for v in kept]
        rows.append(fill + kept if padding == "pre" else kept + fill)
    return np.array([np.stack(r) if r else np.zeros((0,) + sample_shape, dtype) for r in rows], dtype=dtype)


def _sequence_sets():
    rng = np.random.default_rng(0)
    return {
        "ints": [[1, 2, 3], [4], [5, 6, 7, 8, 9], [], [10, 11]],
        "arrays": [np.arange(n) + 1 for n in (4, 0, 7, 2)],
        "floats": [rng.standard_normal(n).tolist() for n in (3, 6, 1)],
        "vectors": [rng.standard_normal((n, 2)) for n in (3, 0, 5)],
        "one": [[7, 8, 9, 10]],
    }


@pytest.mark.parametrize("name", sorted(_sequence_sets()))
def test_pad_sequences_against_definition(name):
    sequences = _sequence_sets()[name]
    for maxlen, padding, truncating, value, dtype in itertools.product(
            [None, 1, 3, 6, 10], ["pre", "post"], ["pre", "post"], [0.0, -1, 2.5], ["int32", "float32", "float64"]):
        got = pad_sequences(sequences, maxlen=maxlen, dtype=dtype, padding=padding, truncating=truncating, value=value)
        want = ref_pad(sequences, maxlen, dtype, padding, truncating, value)
        assert got.dtype == np.dtype(dtype) and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_pad_sequences_documented_examples():
    seqs = [[1], [2, 3], [4, 5, 6]]
    np.testing.assert_array_equal(pad_sequences(seqs), [[0, 0, 1], [0, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(seqs, value=-1), [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(seqs, padding="post"), [[1, 0, 0], [2, 3, 0], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(seqs, maxlen=2), [[0, 1], [2, 3], [5, 6]])
    np.testing.assert_array_equal(pad_sequences(seqs, maxlen=2, truncating="post"), [[0, 1], [2, 3], [4, 5]])
    assert pad_sequences(seqs).dtype == np.int32 and pad_sequences([[0.7]]).tolist() == [[0]]   # cast like Keras
    words = pad_sequences([["a", "bb"], ["ccc"]], dtype=object, value="<pad>")
    assert words.tolist() == [["a", "bb"], ["<pad>", "ccc"]]
    assert pad_sequences([[1, 2], [3]], maxlen=0).shape == (2, 0)
    assert pad_sequences([[], []]).shape == (2, 0)
    assert pad_sequences([], maxlen=3).shape == (0, 3)


def test_pad_sequences_errors():
    cases = [
        (lambda: pad_sequences(iter([[1]])), "must be iterable"),
        (lambda: pad_sequences([[1], 5]), "Found non-iterable: 5"),
        (lambda: pad_sequences([[1]], padding="middle"), 'Padding type "middle" not understood'),
        (lambda: pad_sequences([[1]], truncating="mid"), 'Truncating type "mid" not understood'),
        (lambda: pad_sequences([["a"]], value="x"), "not compatible with `value`'s type"),
        (lambda: pad_sequences([np.zeros((2, 3)), np.zeros((2, 4))]), "different from expected shape"),
        (lambda: pad_sequences([[1]], maxlen=-1), "maxlen"),
        (lambda: pad_sequences([[1]], maxlen=2.0), "maxlen"),
        (lambda: pad_sequences([]), "maxlen"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


# ---------------------------------------------------------------------------------------------
# timeseries_dataset_from_array

def ref_windows(data, targets, sequence_length, sequence_stride=1, sampling_rate=1, start_index=None,
                end_index=None):
    """Every (window, target) in order: window i starts at start + i * stride."""
    start = start_index or 0
    end = len(data) if end_index is None else end_index
    out = []
    pos = start
    while pos + (sequence_length - 1) * sampling_rate < end and (targets is None or pos - start < len(targets)):
        window = np.stack([data[pos + k * sampling_rate] for k in range(sequence_length)])
        if targets is not None and pos >= len(targets):
            raise IndexError(f"no target for the window at {pos}")
        out.append((window, None if targets is None else targets[pos]))
        pos += sequence_stride
    return out


def ref_batches(windows, batch_size):
    batches = []
    for lo in range(0, len(windows), batch_size):
        part = windows[lo:lo + batch_size]
        x = np.stack([w for w, _ in part])
        batches.append(x if part[0][1] is None else (x, np.array([t for _, t in part])))
    return batches


def _as_tuple(batch):
    return batch if isinstance(batch, tuple) else (batch,)


def assert_same_batches(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        a, b = _as_tuple(a), _as_tuple(b)
        assert len(a) == len(b)
        for u, v in zip(a, b):
            u, v = np.asarray(u), np.asarray(v)
            assert u.shape == v.shape and u.dtype == v.dtype
            np.testing.assert_array_equal(u, v)


COMBOS = list(itertools.product([23, 40], [(), (3,)], [1, 4], [1, 3], [1, 2], [1, 5, 128], [None, 2], [None, 19],
                                ["aligned", "short", None]))


def _case(n, feat, tg, dtype="float32"):
    rng = np.random.default_rng(n + len(feat))
    data = rng.standard_normal((n,) + feat).astype(dtype)
    targets = None if tg is None else (np.arange(n) * 10 if tg == "aligned" else np.arange(n // 2) * 10)
    return data, targets


def test_windows_against_definition():
    checked = 0
    for n, feat, length, stride, rate, batch_size, start, end, tg in COMBOS:
        data, targets = _case(n, feat, tg)
        kw = dict(sequence_length=length, sequence_stride=stride, sampling_rate=rate, start_index=start,
                  end_index=end)
        try:
            windows = ref_windows(data, targets, **kw)
        except IndexError:   # (Keras fails too, when it reads that batch)
            with pytest.raises(ValueError, match="`targets` is too short"):
                timeseries_dataset_from_array(data, targets, batch_size=batch_size, **kw)
            continue
        ds = timeseries_dataset_from_array(data, targets, batch_size=batch_size, **kw)
        assert isinstance(ds, PyDataset) and len(ds) == -(-len(windows) // batch_size)
        assert_same_batches(list(ds), ref_batches(windows, batch_size))
        checked += 1
    assert checked > 500


def test_windows_documented_example_and_unbatched():
    # Keras's docstring: data [0..99], sequence_length=10, sampling_rate=2, sequence_stride=3
    ds = timeseries_dataset_from_array(np.arange(100), None, sequence_length=10, sampling_rate=2,
                                       sequence_stride=3, batch_size=128)
    x = ds[0]
    assert len(ds) == 1 and x.shape == (28, 10)
    np.testing.assert_array_equal(x[0], np.arange(0, 20, 2))
    np.testing.assert_array_equal(x[1], np.arange(3, 23, 2))
    np.testing.assert_array_equal(x[-1], np.arange(81, 100, 2))
    # targets offset by the window length: predict the next value
    data = np.arange(20)
    ds = timeseries_dataset_from_array(data[:-5], data[5:], sequence_length=5, batch_size=4)
    xb, yb = ds[0]
    np.testing.assert_array_equal(xb[0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(yb, [5, 6, 7, 8])
    # batch_size=None: one window (and target) per item
    ds = timeseries_dataset_from_array(data, data * 10, sequence_length=4, sequence_stride=5, batch_size=None)
    assert len(ds) == 4
    x1, y1 = ds[1]
    np.testing.assert_array_equal(x1, [5, 6, 7, 8])
    assert y1 == 50
    assert ds[-1][1] == 150
    with pytest.raises(IndexError):
        ds[4]
    # no complete window: an empty dataset, as Keras's
    assert len(timeseries_dataset_from_array(np.arange(5), None, sequence_length=9)) == 0


class _CountingArray(np.ndarray):
    """Records how many rows each read takes."""

    reads = []

    def __getitem__(self, key):
        if isinstance(key, np.ndarray):
            _CountingArray.reads.append(key.size)
        return np.asarray(super().__getitem__(key))


def test_batches_read_only_their_rows():
    data = np.arange(10_000, dtype=np.float32).reshape(-1, 1).view(_CountingArray)
    _CountingArray.reads = []
    ds = timeseries_dataset_from_array(data, None, sequence_length=50, batch_size=16)
    assert len(ds) == -(-(10_000 - 49) // 16)
    x = ds[3]
    np.testing.assert_array_equal(x[0, :, 0], np.arange(48, 98))
    assert _CountingArray.reads == [16 * 50]   # one batch's windows, not all ~10,000 of them


def test_shuffle_permutes_start_positions_like_keras():
    data, targets = np.arange(200, dtype=np.float32), np.arange(200) * 10
    ds = timeseries_dataset_from_array(data, targets, sequence_length=6, sequence_stride=2, batch_size=16,
                                       shuffle=True, seed=42)
    positions = np.arange(0, 200 - 5, 2)
    np.random.RandomState(42).shuffle(positions)   # Keras's first stage, with the same seed
    first = np.concatenate([b[0][:, 0] for b in ds]).astype(int)
    np.testing.assert_array_equal(first, positions)
    for x, y in ds:   # windows and targets stay together
        np.testing.assert_array_equal(x[:, 0] * 10, y)
        np.testing.assert_array_equal(x - x[:, :1], np.broadcast_to(np.arange(6), x.shape))
    again = timeseries_dataset_from_array(data, targets, sequence_length=6, sequence_stride=2, batch_size=16,
                                          shuffle=True, seed=42)
    assert_same_batches(list(again), list(ds))
    ds.on_epoch_end()   # a new order each epoch, the same windows
    second = np.concatenate([b[0][:, 0] for b in ds]).astype(int)
    assert not np.array_equal(first, second) and sorted(first) == sorted(second)
    cynet.utils.set_random_seed(3)   # without a seed: NumPy's global generator (seeded by set_random_seed)
    a = timeseries_dataset_from_array(data, targets, sequence_length=6, batch_size=16, shuffle=True)[0][1]
    cynet.utils.set_random_seed(3)
    b = timeseries_dataset_from_array(data, targets, sequence_length=6, batch_size=16, shuffle=True)[0][1]
    np.testing.assert_array_equal(a, b)


def test_timeseries_errors():
    data = np.arange(10.0)
    cases = [
        (dict(start_index=-1), "`start_index` must be 0 or greater"),
        (dict(start_index=10), "`start_index` must be lower than the length of the data"),
        (dict(start_index=5, end_index=5), "`end_index` must be higher than `start_index`"),
        (dict(end_index=10), "`end_index` must be lower than the length of the data"),
        (dict(end_index=-2), "`end_index` must be higher than 0"),
        (dict(sampling_rate=0), "`sampling_rate` must be higher than 0"),
        (dict(sampling_rate=10), "`sampling_rate` must be lower than the length of the data"),
        (dict(sequence_stride=0), "`sequence_stride` must be higher than 0"),
        (dict(sequence_stride=12), "`sequence_stride` must be lower than the length of the data"),
        (dict(sequence_stride=1.5), "`sequence_stride` must be an integer"),
        (dict(batch_size=0), "`batch_size` must be higher than 0"),
        (dict(sequence_length=0), "`sequence_length` must be higher than 0"),
        (dict(shuffle="yes"), "`shuffle` must be True or False"),
        (dict(shuffle=True, seed=-1), "`seed`"),
        (dict(start_index=2.0), "`start_index` must be None or an integer"),
    ]
    for kwargs, message in cases:
        kwargs = {"sequence_length": 3, **kwargs}
        with pytest.raises(ValueError, match=message):
            timeseries_dataset_from_array(data, None, **kwargs)
    with pytest.raises(ValueError, match="`targets` is too short"):
        timeseries_dataset_from_array(data, np.arange(4), sequence_length=2, start_index=3)
    with pytest.raises(ValueError, match="scalar"):
        timeseries_dataset_from_array(3.0, None, sequence_length=1)


def test_fit_evaluate_predict_on_windows():
    rng = np.random.default_rng(5)
    series = np.cumsum(rng.standard_normal((300, 2)), axis=0).astype(np.float32)
    length = 8
    train = timeseries_dataset_from_array(series[:-length], series[length:, 0], sequence_length=length,
                                          batch_size=32, end_index=200)
    val = timeseries_dataset_from_array(series[:-length], series[length:, 0], sequence_length=length,
                                        batch_size=32, start_index=200)
    cynet.utils.set_random_seed(0)
    model = cynet.models.Sequential([layers.Input((length, 2)), layers.Flatten(), layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    history = model.fit(train, validation_data=val, epochs=3, verbose=0)
    assert set(history.history) == {"loss", "mae", "val_loss", "val_mae"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    inputs = timeseries_dataset_from_array(series[:-length], None, sequence_length=length, batch_size=32,
                                           start_index=200)
    pred = model.predict(inputs, verbose=0)
    windows = np.stack([series[p:p + length] for p in range(200, 300 - length - length + 1)])
    np.testing.assert_allclose(pred, model.predict(windows, verbose=0), rtol=1e-6)
    logs = model.evaluate(val, return_dict=True, verbose=0)
    assert logs["mae"] == pytest.approx(np.mean(np.abs(pred[:, 0] - series[200 + length:200 + length + len(pred), 0])),
                                        rel=1e-5)


# ---------------------------------------------------------------------------------------------
# Against Keras 3 (skipped without it; the timeseries comparison also needs TensorFlow).

@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3; found {keras.__version__}")
    return keras


@pytest.mark.parametrize("name", sorted(_sequence_sets()))
def test_pad_sequences_same_as_keras(keras, name):
    sequences = _sequence_sets()[name]
    for maxlen, padding, truncating, value, dtype in itertools.product(
            [None, 1, 3, 6, 10], ["pre", "post"], ["pre", "post"], [0.0, -1, 2.5], ["int32", "float32", "float64"]):
        kw = dict(maxlen=maxlen, dtype=dtype, padding=padding, truncating=truncating, value=value)
        want = keras.utils.pad_sequences(sequences, **kw)
        got = pad_sequences(sequences, **kw)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_pad_sequences_errors_as_keras(keras):
    for call in (lambda f: f(iter([[1]])), lambda f: f([[1], 5]), lambda f: f([[1]], padding="middle"),
                 lambda f: f([[1]], truncating="mid"), lambda f: f([["a"]], value="x"),
                 lambda f: f([np.zeros((2, 3)), np.zeros((2, 4))])):
        for f in (keras.utils.pad_sequences, pad_sequences):
            with pytest.raises(ValueError):
                call(f)
    words = [["a", "bb"], ["ccc"]]
    assert pad_sequences(words, dtype=object, value="<pad>").tolist() == \
        keras.utils.pad_sequences(words, dtype=object, value="<pad>").tolist()


def test_timeseries_same_batches_as_keras(keras):
    pytest.importorskip("tensorflow")
    compared = 0
    for n, feat, length, stride, rate, batch_size, start, end, tg in COMBOS[::3]:
        data, targets = _case(n, feat, tg)
        kw = dict(sequence_length=length, sequence_stride=stride, sampling_rate=rate, batch_size=batch_size,
                  start_index=start, end_index=end)
        try:
            want = [tuple(np.asarray(t) for t in _as_tuple(b))
                    for b in keras.utils.timeseries_dataset_from_array(data, targets, **kw)]
        except Exception:   # Keras fails (e.g. too few targets after start_index): so does cynet
            with pytest.raises(ValueError):
                list(timeseries_dataset_from_array(data, targets, **kw))
            continue
        assert_same_batches([_as_tuple(b) for b in timeseries_dataset_from_array(data, targets, **kw)], want)
        compared += 1
    assert compared > 100
    # shuffled: the same windows with their targets, in batches of the same sizes
    data, targets = np.arange(120, dtype=np.float32), np.arange(120) * 10
    for seed in (1, 7):
        theirs = [tuple(np.asarray(t) for t in b) for b in keras.utils.timeseries_dataset_from_array(
            data, targets, 5, batch_size=16, shuffle=True, seed=seed)]
        ours = list(timeseries_dataset_from_array(data, targets, 5, batch_size=16, shuffle=True, seed=seed))
        assert [len(b[0]) for b in theirs] == [len(b[0]) for b in ours]
        assert sorted(map(tuple, np.concatenate([b[0] for b in theirs]))) == \
            sorted(map(tuple, np.concatenate([b[0] for b in ours])))
        assert all(np.array_equal(b[0][:, 0] * 10, b[1]) for b in ours)
    for kwargs in (dict(start_index=-1), dict(end_index=10), dict(sampling_rate=0), dict(sequence_stride=12)):
        for f in (keras.utils.timeseries_dataset_from_array, timeseries_dataset_from_array):
            with pytest.raises(ValueError):
                f(np.arange(10.0), None, 3, **kwargs)
