"""Data adapters (cynet.trainers.data_adapters) and cynet.utils.PyDataset."""
import faulthandler
import inspect
import multiprocessing
import threading
import time
import tracemalloc
import warnings

import numpy as np
import pytest

from cynet.trainers import data_adapters as da
from cynet.trainers import get_data_adapter, train_validation_split
from cynet.utils import PyDataset, Sequence, set_random_seed


@pytest.fixture
def hang_guard():
    """Kill the run (with tracebacks) rather than hang if a worker pool deadlocks."""
    faulthandler.dump_traceback_later(60, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def no_leaks():
    """No thread or process outlives the test."""
    threads = threading.active_count()
    yield
    deadline = time.monotonic() + 2.0
    while threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == threads, [t.name for t in threading.enumerate()]
    assert multiprocessing.active_children() == []


def epoch(adapter):
    adapter.on_epoch_begin()
    batches = list(adapter.get_numpy_iterator())
    adapter.on_epoch_end()
    return batches


def data(n=10, features=2):
    x = np.arange(n * features, dtype=np.float64).reshape(n, features)
    return x, np.arange(n)


# ==================================================================== arrays
def test_arrays_batches_in_order_as_views():
    x, y = data(10)
    adapter = get_data_adapter(x, y, batch_size=4)
    assert isinstance(adapter, da.ArrayDataAdapter)
    assert (adapter.num_batches, adapter.batch_size, adapter.has_partial_batch, adapter.partial_batch_size) == \
        (3, 4, True, 2)
    batches = epoch(adapter)
    assert [len(b) for b in batches] == [2, 2, 2]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    assert all(np.shares_memory(b[0], x) for b in batches)    # slices: no copy
    assert [b[0].shape for b in batches] == [(4, 2), (4, 2), (2, 2)]


def test_arrays_batch_forms_and_defaults():
    x, y = data(70)
    adapter = get_data_adapter(x)
    assert adapter.batch_size == 32 and adapter.num_batches == 3
    assert all(len(b) == 1 for b in epoch(adapter))
    w = np.linspace(0, 1, 70)
    batches = epoch(get_data_adapter(x, y, sample_weight=w, batch_size=70))
    assert len(batches) == 1 and len(batches[0]) == 3
    np.testing.assert_array_equal(batches[0][2], w)
    exact = get_data_adapter(x, batch_size=7)
    assert (exact.has_partial_batch, exact.partial_batch_size) == (False, None)


def test_arrays_shuffle_each_epoch_aligned_and_seeded():
    x, y = data(50)
    set_random_seed(3)
    adapter = get_data_adapter(x, y, batch_size=8, shuffle=True)
    orders = []
    for _ in range(3):
        batches = epoch(adapter)
        order = np.concatenate([b[1] for b in batches])
        np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x[order])   # x, y aligned
        assert sorted(order.tolist()) == list(range(50))
        orders.append(order.tolist())
    assert orders[0] != orders[1] != orders[2] and orders[0] != list(range(50))
    set_random_seed(3)
    again = get_data_adapter(x, y, batch_size=8, shuffle=True)
    assert np.concatenate([b[1] for b in epoch(again)]).tolist() == orders[0]


def test_arrays_batch_shuffle_permutes_within_each_batch():
    x, y = data(34)
    adapter = get_data_adapter(x, y, batch_size=16, shuffle="batch")
    order = []
    for i, (_, yb) in enumerate(epoch(adapter)):
        assert sorted(yb.tolist()) == list(range(i * 16, min(i * 16 + 16, 34)))
        order.extend(yb.tolist())
    assert order != list(range(34))


def test_arrays_shuffle_copies_one_batch_not_the_dataset():
    x = np.zeros((100_000, 20))     # 16 MB
    adapter = get_data_adapter(x, batch_size=500, shuffle=True)
    tracemalloc.start()
    try:
        for _ in adapter.get_numpy_iterator():
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3_000_000     # the permutation (0.8 MB) and a batch (80 kB), never a copy of x


def test_arrays_steps_per_epoch():
    x, y = data(10)
    # batch_size from steps, as Keras: ceil(10 / 3) = 4
    adapter = get_data_adapter(x, y, steps_per_epoch=3)
    assert adapter.batch_size == 4 and adapter.num_batches == 3
    # fewer steps than batches: each epoch continues where the previous stopped
    adapter = get_data_adapter(x, y, batch_size=2, steps_per_epoch=2)
    seen = [[b[1].tolist() for b in epoch(adapter)] for _ in range(3)]
    assert seen == [[[0, 1], [2, 3]], [[4, 5], [6, 7]], [[8, 9], [0, 1]]]
    # more steps than batches: new passes begin, every epoch has exactly steps batches
    adapter = get_data_adapter(x, y, batch_size=4, steps_per_epoch=5)
    sizes = [len(b[1]) for b in epoch(adapter)]
    assert sizes == [4, 4, 2, 4, 4]
    # an epoch left early resumes at the first batch not handed out
    adapter = get_data_adapter(x, y, batch_size=2, steps_per_epoch=3)
    it = adapter.get_numpy_iterator()
    assert next(it)[1].tolist() == [0, 1]
    adapter.on_epoch_end()
    assert [b[1].tolist() for b in epoch(adapter)] == [[2, 3], [4, 5], [6, 7]]


def test_arrays_nested_structures():
    n = 12
    x = {"image": np.ones((n, 4, 4, 1)), "meta": [np.zeros((n, 3)), np.arange(n)]}
    y = [np.zeros((n, 2)), {"aux": np.arange(n, dtype=float)}]
    adapter = get_data_adapter(x, y, batch_size=5)
    batches = epoch(adapter)
    xb, yb = batches[0]
    assert set(xb) == {"image", "meta"} and isinstance(xb["meta"], list)
    assert xb["image"].shape == (5, 4, 4, 1) and xb["meta"][1].tolist() == [0, 1, 2, 3, 4]
    assert isinstance(yb, list) and yb[1]["aux"].tolist() == [0, 1, 2, 3, 4]
    assert batches[-1][0]["meta"][0].shape == (2, 3)
    # one per-sample weight array serves every output
    w = np.arange(n, dtype=float)
    xb, yb, wb = epoch(get_data_adapter(x, y, sample_weight=w, batch_size=n))[0]
    assert isinstance(wb, list) and wb[1]["aux"].tolist() == wb[0].tolist() == w.tolist()
    # or one per output, with y's structure
    ws = [np.ones(n), {"aux": np.zeros(n)}]
    assert epoch(get_data_adapter(x, y, sample_weight=ws, batch_size=n))[0][2][1]["aux"].tolist() == [0.0] * n
    with pytest.raises(ValueError, match="one sample_weight array per output"):
        get_data_adapter(x, y, sample_weight=[np.ones(n)])
    with pytest.raises(ValueError, match=r"shape \(n,\) or \(n, 1\)"):
        get_data_adapter(x, y, sample_weight=np.ones((n, 2)))


def test_arrays_cardinality_error_names_the_arrays_and_sizes():
    x, y = data(10)
    with pytest.raises(ValueError, match="x has 10, but y has 9"):
        get_data_adapter(x, y[:9])
    with pytest.raises(ValueError, match=r"x\['a'\], x\['c'\]\[0\], y have 10, but x\['b'\] has 7"):
        get_data_adapter({"a": x, "b": x[:7], "c": [x]}, y)
    with pytest.raises(ValueError, match="sample_weight has 3"):
        get_data_adapter(x, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="scalar"):
        get_data_adapter(np.float64(1.0))
    with pytest.raises(ValueError, match="no samples"):
        get_data_adapter(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="without targets"):
        get_data_adapter(x, sample_weight=np.ones(10))


def test_array_likes():
    adapter = get_data_adapter([[1, 2], [3, 4], [5, 6]], [0, 1, 0], batch_size=2)
    (xb, yb), _ = epoch(adapter)
    assert isinstance(xb, np.ndarray) and xb.shape == (2, 2) and yb.tolist() == [0, 1]

    class ArrayLike:
        def __array__(self, dtype=None, copy=None):
            return np.arange(6.0).reshape(3, 2)

    assert epoch(get_data_adapter(ArrayLike(), batch_size=3))[0][0].shape == (3, 2)
    with pytest.raises(ValueError, match=r"y is a nested list of numbers that NumPy cannot read"):
        get_data_adapter(np.zeros((2, 1)), [[1, 2], [3]])
    # a list of arrays is several inputs (as Keras), not one stacked array
    (xb,), = epoch(get_data_adapter([np.zeros((4, 2)), np.ones((4, 3))], batch_size=4))
    assert isinstance(xb, list) and [a.shape for a in xb] == [(4, 2), (4, 3)]


# ==================================================================== class_weight
def test_class_weight_int_labels_one_hot_and_rounding():
    cw = {0: 1.0, 1: 3.0, 2: 0.5}
    labels = np.array([0, 1, 2, 1, 5])                      # 5 is not in the dict: weight 1
    expected = [1.0, 3.0, 0.5, 3.0, 1.0]
    x = np.zeros((5, 2))
    for y in (labels, labels.reshape(5, 1), labels.astype(float) + 0.2, np.eye(6)[labels]):
        (_, _, w), = epoch(get_data_adapter(x, y, batch_size=5, class_weight=cw))
        assert w.tolist() == expected
    np.testing.assert_array_equal(da.class_weight_to_sample_weights(np.eye(3)[[2, 0]], cw), [0.5, 1.0])


def test_class_weight_with_shuffle_follows_the_samples():
    x, y = data(20)
    y = y % 2
    (adapter) = get_data_adapter(x, y, batch_size=5, shuffle=True, class_weight={1: 7.0})
    for _, yb, wb in epoch(adapter):
        np.testing.assert_array_equal(wb, np.where(yb == 1, 7.0, 1.0))


def test_class_weight_errors():
    x, y = data(4)
    with pytest.raises(ValueError, match="one output"):
        get_data_adapter(x, [y, y], class_weight={0: 1.0})
    with pytest.raises(ValueError, match="both class_weight and sample_weight"):
        get_data_adapter(x, y, sample_weight=np.ones(4), class_weight={0: 1.0})
    with pytest.raises(TypeError, match="integer class indices"):
        get_data_adapter(x, y, class_weight={"0": 1.0})
    with pytest.raises(TypeError, match="dict"):
        get_data_adapter(x, y, class_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="non-negative"):
        get_data_adapter(x, y, class_weight={0: -1.0})
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        da.class_weight_to_sample_weights(y, {3: 1.0}, num_classes=3)
    with pytest.raises(ValueError, match="without targets"):
        get_data_adapter(x, class_weight={0: 1.0})


# ==================================================================== validation split
def test_train_validation_split_takes_the_last_fraction():
    x, y = data(10)
    w = np.arange(10.0)
    (xt, yt, wt), (xv, yv, wv) = train_validation_split((x, y, w), 0.25)    # floor(10 * 0.75) = 7 train
    assert yt.tolist() == list(range(7)) and yv.tolist() == [7, 8, 9] and wv.tolist() == [7.0, 8.0, 9.0]
    assert np.shares_memory(xt, x) and np.shares_memory(xv, x)          # views
    (train, val) = train_validation_split(({"a": x, "b": [x]}, y, None), 0.5)
    assert train[0]["b"][0].shape == (5, 2) and val[1].tolist() == [5, 6, 7, 8, 9] and val[2] is None
    (_, yt), (_, yv) = train_validation_split(([[1], [2], [3]], [0, 1, 2]), 0.34)
    assert yt.tolist() == [0] and yv.tolist() == [1, 2]


def test_train_validation_split_errors():
    x, y = data(3)
    for too_much_or_too_little in (0.7, 1e-17):
        with pytest.raises(ValueError, match="not enough"):
            train_validation_split((x, y), too_much_or_too_little)
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match=r"\(0, 1\)"):
            train_validation_split((x, y), bad)
    with pytest.raises(TypeError):
        train_validation_split((x, y), "0.2")
    with pytest.raises(TypeError, match="validation_data"):
        train_validation_split((iter([x]), y), 0.5)
    with pytest.raises(ValueError, match="same number of samples"):
        train_validation_split((x, y[:2]), 0.5)


# ==================================================================== generators and iterators
def counting_generator(n_batches, log, batch=4, features=3):
    for i in range(n_batches):
        log.append(i)
        yield np.full((batch, features), i, float), np.full((batch,), i)


def test_generator_without_steps_runs_to_its_end_once():
    log = []
    adapter = get_data_adapter(counting_generator(5, log))
    assert isinstance(adapter, da.GeneratorDataAdapter)
    assert adapter.num_batches is None and adapter.batch_size is None
    assert log == [0]                                   # only the first batch is peeked
    it = adapter.get_numpy_iterator()
    assert int(next(it)[1][0]) == 0 and log == [0]
    assert int(next(it)[1][0]) == 1 and log == [0, 1]   # read one at a time, nothing ahead
    assert [int(b[1][0]) for b in it] == [2, 3, 4]
    assert adapter.exhausted and not adapter.ran_out_of_data
    with pytest.warns(UserWarning, match="Your input ran out of data"):
        assert epoch(adapter) == []
    assert adapter.ran_out_of_data


def test_generator_with_steps_continues_then_runs_out():
    log = []
    adapter = get_data_adapter(counting_generator(5, log), steps_per_epoch=2)
    assert adapter.num_batches == 2
    assert [int(b[1][0]) for b in epoch(adapter)] == [0, 1]
    assert [int(b[1][0]) for b in epoch(adapter)] == [2, 3]
    assert not adapter.ran_out_of_data
    with pytest.warns(UserWarning, match=r"ran out of data.*ended after 1 of this epoch's 2 batches"):
        assert [int(b[1][0]) for b in epoch(adapter)] == [4]
    assert adapter.ran_out_of_data and adapter.exhausted


def test_endless_generator_with_steps_is_never_materialized():
    def endless():
        i = 0
        while True:
            yield np.full((2, 1), i), np.full((2,), i)
            i += 1

    adapter = get_data_adapter(endless(), steps_per_epoch=3)
    assert [int(b[1][0]) for b in epoch(adapter)] == [0, 1, 2]
    assert [int(b[1][0]) for b in epoch(adapter)] == [3, 4, 5]


def test_generator_batch_forms():
    x, y = np.zeros((3, 2)), np.ones(3)
    for item, length in ((x, 1), ((x,), 1), ((x, y), 2), ((x, y, np.ones(3)), 3), ([x, y], 2), ((x, y, None), 2),
                         (({"a": x, "b": [x, x]}, y), 2)):
        batch = epoch(get_data_adapter(iter([item, item]), steps_per_epoch=2))[1]
        assert isinstance(batch, tuple) and len(batch) == length
    (xb, yb), = epoch(get_data_adapter(iter([([[1.0, 2.0]], [3])])))       # array-likes become arrays
    assert isinstance(xb, np.ndarray) and xb.shape == (1, 2) and yb.tolist() == [3]
    with pytest.raises(ValueError, match="4 items"):
        get_data_adapter(iter([(x, y, y, y)]))
    with pytest.raises(ValueError, match="empty"):
        get_data_adapter(iter([]))


def test_generator_inconsistent_batches_are_refused():
    def batches(*shapes):
        for shape in shapes:
            yield np.zeros(shape), np.zeros(shape[:1])

    adapter = get_data_adapter(batches((4, 3), (2, 3), (4, 5)))
    it = adapter.get_numpy_iterator()
    next(it), next(it)                                   # a smaller batch is fine
    with pytest.raises(ValueError, match=r"batch 2 of the generator: x has samples of shape \(5,\).*"
                                         r"batch 0 had samples of shape \(3,\)"):
        next(it)
    with pytest.raises(ValueError, match=r"batch 1 of the generator: .*structure.*lacks y"):
        epoch(get_data_adapter(iter([(np.zeros((2, 1)), np.zeros(2)), (np.zeros((2, 1)),)])))
    with pytest.raises(ValueError, match=r"batch 1 of the generator: .*has x\['b'\] that batch 0 did not have"):
        epoch(get_data_adapter(iter([{"a": np.zeros((2, 1))}, {"a": np.zeros((2, 1)), "b": np.zeros((2, 1))}])))
    with pytest.raises(ValueError, match=r"batch 1 of the generator: the batch is empty"):
        epoch(get_data_adapter(iter([np.zeros((2, 1)), np.zeros((0, 1))])))
    with pytest.raises(ValueError, match=r"batch 0 of the generator: .*x has 3, but y has 2"):
        get_data_adapter(iter([(np.zeros((3, 1)), np.zeros(2))]))
    with pytest.raises(ValueError, match=r"batch 0 of the generator: y is a scalar"):
        get_data_adapter(iter([(np.zeros((3, 1)), 1.0)]))
    with pytest.raises(TypeError, match=r"x\[1\] must be arrays.*received a str"):
        get_data_adapter(iter([([np.zeros((3, 1)), "text"],)]))


def test_generator_arguments():
    x = np.zeros((2, 1))
    with pytest.raises(ValueError, match="`y` should not be passed"):
        get_data_adapter(iter([x]), y=x)
    with pytest.raises(ValueError, match="`sample_weight` should not be passed"):
        get_data_adapter(iter([x]), sample_weight=np.ones(2))
    with pytest.warns(UserWarning, match="shuffle"):
        get_data_adapter(iter([x]), shuffle=True)
    (_, _, w), = epoch(get_data_adapter(iter([(x, np.array([0, 1]))]), class_weight={1: 2.0}))
    assert w.tolist() == [1.0, 2.0]


def test_generator_error_propagates():
    def broken():
        yield np.zeros((2, 1))
        raise RuntimeError("disk on fire")

    adapter = get_data_adapter(broken())
    with pytest.raises(RuntimeError, match="disk on fire"):
        epoch(adapter)


# ==================================================================== PyDataset
class Batches(PyDataset):
    """n batches; batch i is (x full of i, y full of i); optional delays, failures and counters."""

    def __init__(self, n=12, batch=4, fail_at=None, error=ValueError, jitter=0.0, **kwargs):
        super().__init__(**kwargs)
        self.n, self.batch, self.fail_at, self.error, self.jitter = n, batch, fail_at, error, jitter
        self.epoch_ends = self.epoch_begins = 0
        self.lock = threading.Lock()
        self.active = self.max_active = self.fetched = 0
        self.threads = set()

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.threads.add(threading.get_ident())
        try:
            if index == self.fail_at:
                raise self.error(f"cannot read batch {index}")
            if self.jitter:
                time.sleep(self.jitter * ((index * 7) % 5) / 4)
            return np.full((self.batch, 3), index, np.float32), np.full((self.batch,), index)
        finally:
            with self.lock:
                self.active -= 1
                self.fetched += 1

    def on_epoch_begin(self):
        self.epoch_begins += 1

    def on_epoch_end(self):
        self.epoch_ends += 1


def order_of(batches):
    return [int(b[1][0]) for b in batches]


def test_py_dataset_constructor_and_properties():
    ds = PyDataset()
    assert (ds.workers, ds.use_multiprocessing, ds.max_queue_size) == (1, False, 10)
    assert Sequence is PyDataset
    ds.workers = 3
    assert ds.workers == 3
    for bad in (dict(workers=-1), dict(workers=1.5), dict(max_queue_size=0), dict(use_multiprocessing="yes")):
        with pytest.raises(ValueError):
            PyDataset(**bad)
    with pytest.raises(NotImplementedError):
        PyDataset()[0]
    assert order_of(Batches(n=3)) == [0, 1, 2]                      # plain sequential iteration
    assert Batches(n=3).num_batches == 3

    class NoSuper(PyDataset):
        def __init__(self):
            pass

        def __len__(self):
            return 1

    with pytest.warns(UserWarning, match=r"super\(\).__init__"):
        assert NoSuper().workers == 1


def test_py_dataset_workers_1_in_the_calling_thread(no_leaks):
    ds = Batches(n=5)
    adapter = get_data_adapter(ds)
    assert isinstance(adapter, da.PyDatasetAdapter) and not adapter.parallel
    assert adapter.num_batches == 5 and adapter.batch_size is None
    for e in range(2):
        assert order_of(epoch(adapter)) == [0, 1, 2, 3, 4]
        assert (ds.epoch_begins, ds.epoch_ends) == (e + 1, e + 1)
    assert ds.threads == {threading.get_ident()}


def test_py_dataset_threads_keep_order_and_shut_down(no_leaks, hang_guard):
    ds = Batches(n=16, jitter=0.004, workers=3, max_queue_size=4)
    adapter = get_data_adapter(ds)
    assert adapter.parallel
    for e in range(2):
        assert order_of(epoch(adapter)) == list(range(16))
        assert ds.epoch_ends == e + 1
    assert threading.get_ident() not in ds.threads and len(ds.threads) > 1


def test_py_dataset_threads_bounded_in_flight(no_leaks, hang_guard):
    workers, queue = 2, 3
    ds = Batches(n=30, workers=workers, max_queue_size=queue)
    adapter = get_data_adapter(ds)
    consumed, ahead = 0, []
    for _ in adapter.get_numpy_iterator():
        consumed += 1
        time.sleep(0.004)                       # a slow consumer: the workers get ahead
        with ds.lock:
            ahead.append(ds.fetched - consumed)
    assert consumed == 30
    assert max(ahead) <= queue + workers and max(ahead) >= 2
    assert ds.max_active <= workers


def test_py_dataset_thread_error_propagates_and_shuts_down(no_leaks, hang_guard):
    class DiskError(Exception):
        pass

    ds = Batches(n=10, fail_at=6, error=DiskError, workers=2)
    adapter = get_data_adapter(ds)
    got = []
    with pytest.raises(DiskError, match="cannot read batch 6"):
        for batch in adapter.get_numpy_iterator():
            got.append(int(batch[1][0]))
    assert got == [0, 1, 2, 3, 4, 5]
    adapter.on_epoch_end()
    # a bad batch (checked in the main thread) also shuts the pool down
    bad = Batches(n=4, workers=2)
    bad.__class__ = type("Ragged", (Batches,), {"__getitem__": lambda self, i: np.zeros((2, 1 + (i == 2)))})
    with pytest.raises(ValueError, match=r"batch 2 of the PyDataset: x has samples of shape \(2,\)"):
        epoch(get_data_adapter(bad))


def test_py_dataset_interrupted_epoch_leaves_no_threads(no_leaks, hang_guard):
    ds = Batches(n=50, workers=3, max_queue_size=5)
    adapter = get_data_adapter(ds)
    adapter.on_epoch_begin()
    with pytest.raises(KeyboardInterrupt):
        for i, _ in enumerate(adapter.get_numpy_iterator()):
            if i == 3:
                raise KeyboardInterrupt     # Ctrl-C in the training step
    adapter.on_epoch_end()                  # the trainer's cleanup closes the epoch
    # and a KeyboardInterrupt inside a worker reaches the caller
    adapter = get_data_adapter(Batches(n=10, fail_at=2, error=KeyboardInterrupt, workers=2))
    with pytest.raises(KeyboardInterrupt):
        epoch(adapter)


def test_py_dataset_ctrl_c_while_waiting_for_a_worker(no_leaks, hang_guard):
    import _thread

    class Slow(PyDataset):
        def __len__(self):
            return 100

        def __getitem__(self, index):
            time.sleep(0.2)
            return np.zeros((2, 1))

    adapter = get_data_adapter(Slow(workers=2))
    timer = threading.Timer(0.05, _thread.interrupt_main)   # Ctrl-C while the main thread waits on a batch
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        for _ in adapter.get_numpy_iterator():
            pass
    timer.join()


def test_py_dataset_shuffle_and_steps(no_leaks, hang_guard):
    set_random_seed(7)
    ds = Batches(n=10, workers=2)
    adapter = get_data_adapter(ds, shuffle=True)
    orders = [order_of(epoch(adapter)) for _ in range(2)]
    assert all(sorted(o) == list(range(10)) for o in orders)
    assert orders[0] != orders[1] and orders[0] != list(range(10))
    # steps_per_epoch continues through the passes
    adapter = get_data_adapter(Batches(n=5), steps_per_epoch=3)
    assert adapter.num_batches == 3
    assert [order_of(epoch(adapter)) for _ in range(3)] == [[0, 1, 2], [3, 4, 0], [1, 2, 3]]


def test_endless_py_dataset():
    class Endless(PyDataset):
        @property
        def num_batches(self):
            return None

        def __getitem__(self, index):
            return np.full((2, 1), index), np.full((2,), index)

    with pytest.warns(UserWarning, match="infinite PyDataset"):
        adapter = get_data_adapter(Endless(), shuffle=True, steps_per_epoch=2)
    assert [order_of(epoch(adapter)) for _ in range(2)] == [[0, 1], [2, 3]]
    assert get_data_adapter(Endless()).num_batches is None


def test_py_dataset_batch_forms_and_arguments():
    class Forms(PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            x = np.zeros((3, 2))
            return x if index == 0 else (x,)

    assert [len(b) for b in epoch(get_data_adapter(Forms()))] == [1, 1]

    class Dicts(Forms):
        def __getitem__(self, index):
            return {"a": np.zeros((3, 2)), "b": np.ones((3, 1))}, np.array([0, 1, 1])

    (xb, yb, wb), _ = epoch(get_data_adapter(Dicts(), class_weight={1: 4.0}))
    assert set(xb) == {"a", "b"} and wb.tolist() == [1.0, 4.0, 4.0]
    with pytest.raises(ValueError, match="`y` should not be passed"):
        get_data_adapter(Forms(), y=np.zeros(3))

    class Empty(Forms):
        def __len__(self):
            return 0

    with pytest.raises(ValueError, match="no batches"):
        get_data_adapter(Empty())


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork to stay fast")
def test_py_dataset_multiprocessing(no_leaks, hang_guard):
    ds = Batches(n=12, jitter=0.004, workers=2, use_multiprocessing=True, max_queue_size=4)
    adapter = get_data_adapter(ds)
    assert adapter.parallel
    for e in range(2):
        assert order_of(epoch(adapter)) == list(range(12))
        assert ds.epoch_ends == e + 1               # the hook runs in this process
    assert ds.fetched == 0                          # __getitem__ ran in the worker processes
    adapter = get_data_adapter(Batches(n=8, fail_at=3, error=KeyError, workers=2, use_multiprocessing=True))
    with pytest.raises(KeyError, match="cannot read batch 3"):
        epoch(adapter)
    # a single worker process, interrupted epoch
    adapter = get_data_adapter(Batches(n=20, workers=1, use_multiprocessing=True))
    assert adapter.parallel
    for i, _ in enumerate(adapter.get_numpy_iterator()):
        if i == 2:
            break
    adapter.on_epoch_end()


def test_keras_style_subclass():
    class KerasStyle(PyDataset):   # as written for keras.utils.PyDataset
        def __init__(self, x, y, batch_size, **kwargs):
            super().__init__(**kwargs)
            self.x, self.y, self.batch_size = x, y, batch_size

        def __len__(self):
            return int(np.ceil(len(self.x) / self.batch_size))

        def __getitem__(self, idx):
            low = idx * self.batch_size
            high = min(low + self.batch_size, len(self.x))
            return self.x[low:high], self.y[low:high]

    x, y = data(10)
    for kwargs in ({}, {"workers": 2, "use_multiprocessing": False, "max_queue_size": 3}):
        batches = epoch(get_data_adapter(KerasStyle(x, y, 4, **kwargs)))
        assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_keras_py_dataset_signature_matches():
    keras = pytest.importorskip("keras")
    ours = inspect.signature(PyDataset.__init__)
    theirs = inspect.signature(keras.utils.PyDataset.__init__)
    assert list(ours.parameters) == list(theirs.parameters)
    assert [p.default for p in ours.parameters.values()] == [p.default for p in theirs.parameters.values()]
    assert keras.utils.Sequence is keras.utils.PyDataset and Sequence is PyDataset

    class TheirDataset(keras.utils.PyDataset):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return np.full((2, 1), i), np.full((2,), i)

    assert order_of(epoch(get_data_adapter(TheirDataset(workers=2)))) == [0, 1, 2]


# ==================================================================== unsupported input
class NotADataset:
    """Has __len__ and __getitem__, but is no PyDataset: must never be walked by NumPy."""

    def __init__(self):
        self.reads = 0

    def __len__(self):
        return 10 ** 9

    def __getitem__(self, index):
        self.reads += 1
        return np.zeros(1000)


def test_unsupported_types_raise_type_error_naming_what_fit_accepts():
    accepts = ("NumPy arrays (or array-likes / nested lists and dicts of them), Python generators or iterators, "
               "or a keras.utils.PyDataset")

    def gen_function():
        yield np.zeros((1, 1))

    seq = NotADataset()
    for bad, what in (("some text", "a str"), ({1, 2}, "a set"), (object(), "an object of type object"),
                      (gen_function, "call it"), (seq, "not a PyDataset"), (b"bytes", "a bytes"),
                      (range(5), "range")):
        with pytest.raises(TypeError) as info:
            get_data_adapter(bad)
        assert accepts in str(info.value) and what in str(info.value)
    assert seq.reads == 0
    with pytest.raises(TypeError, match=r"x\['b'\] must be .*received a str"):
        get_data_adapter({"a": np.zeros((2, 1)), "b": "text"})
    with pytest.raises(TypeError, match=r"x\[1\] must be .*not a PyDataset"):
        get_data_adapter([np.zeros((2, 1)), seq])
    with pytest.raises(TypeError, match=r"y must be .*when x is arrays.*a generator"):
        get_data_adapter(np.zeros((2, 1)), (i for i in range(2)))
    assert seq.reads == 0


def test_a_tensor_of_another_framework():
    torch = pytest.importorskip("torch")
    # Like Keras, an object with __array__ (a CPU torch tensor) is an array-like.
    (xb,), = epoch(get_data_adapter(torch.zeros(3, 2), batch_size=3))
    assert isinstance(xb, np.ndarray) and xb.shape == (3, 2)


def test_arguments_are_checked():
    x, y = data(4)
    with pytest.raises(ValueError, match="batch_size"):
        get_data_adapter(x, y, batch_size=0)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        get_data_adapter(x, y, steps_per_epoch=-1)
    with pytest.raises(ValueError, match="shuffle"):
        get_data_adapter(x, y, shuffle="yes")
    with pytest.raises(ValueError, match="x must be given"):
        get_data_adapter(None)
    adapter = get_data_adapter(x, y)
    assert get_data_adapter(adapter) is adapter


def test_unpack_and_pack():
    x, y, w = np.zeros(1), np.ones(1), np.ones(1)
    assert da.unpack_x_y_sample_weight(x)[1:] == (None, None)
    assert da.unpack_x_y_sample_weight([x, y])[1] is y
    assert da.unpack_x_y_sample_weight((x, y, w))[2] is w
    assert da.pack_x_y_sample_weight(x) == (x,) and len(da.pack_x_y_sample_weight(x, y, w)) == 3
    with pytest.raises(ValueError):
        da.unpack_x_y_sample_weight((x, y, w, w))
