"""Batches from a keras.utils.PyDataset (cynet.utils.PyDataset), fetched in parallel when it asks.

Parallel reading (Keras's OrderedEnqueuer, rewritten on concurrent.futures): with
`workers > 1`, or `workers >= 1` and `use_multiprocessing=True`, an executor of that many threads
(or processes) fetches `dataset[i]`; at most `max_queue_size` batches are requested ahead of the
consumer (being fetched, or fetched and waiting), and batches are handed out in index order. The
executor lives for one epoch: it is started when the epoch's iterator is first advanced and shut
down (pending requests cancelled, workers joined) when the epoch ends, when an error is raised
(a worker's exception reaches the caller with its own type and message), on KeyboardInterrupt,
or when the iterator is closed (`adapter.on_epoch_end()` / `adapter.close()` close it).

Processes are forked on Linux (the dataset is inherited, it need not pickle; each epoch's fresh
workers see the dataset as `on_epoch_end` left it) and spawned elsewhere (macOS, Windows: the
dataset is pickled to each worker and its class must be importable). Worker processes ignore
SIGINT, so Ctrl-C interrupts the main process only, which then shuts them down.
"""
import collections
import concurrent.futures
import itertools
import multiprocessing
import operator
import signal
import sys
import warnings

import numpy as np

from ...utils.py_dataset import _check_max_queue_size, _check_use_multiprocessing, _check_workers
from .data_adapter import Cursor, DataAdapter, check_shuffle, draw_rng, positive_int_or_none, rng_for
from .data_adapter_utils import BatchChecker, check_class_weight


def _num_batches(dataset):
    """The dataset's number of batches: an int >= 1, or None for an endless one."""
    try:
        n = dataset.num_batches if hasattr(type(dataset), "num_batches") else len(dataset)
    except NotImplementedError:
        n = None
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) and not hasattr(n, "__index__"):
        raise ValueError(f"The PyDataset's number of batches (len / num_batches) must be an integer or None; "
                         f"received {n!r}")
    n = int(n)
    if n < 1:
        raise ValueError(f"The PyDataset has no batches (len {n}): fit needs at least one")
    return n


class PyDatasetAdapter(DataAdapter):
    """Batches from a PyDataset: `dataset[i]` is `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`.

    Args:
        x: the PyDataset (cynet.utils.PyDataset or keras.utils.PyDataset / Sequence). Its
            `workers`, `use_multiprocessing` and `max_queue_size` are read here.
        class_weight: {class index: weight}, turned into sample weights for each (x, y) batch.
        shuffle: truthy: every pass visits the batch indices in a new random order (Keras 3:
            the contents of each batch are the dataset's business); ignored, with a warning, for
            an endless dataset.
        steps: steps_per_epoch: each epoch takes that many batches, continuing from where the
            last stopped (a new pass, reshuffled, begins whenever one ends). Without it an epoch
            is one pass (an endless dataset then never ends an epoch).
        seed: for the shuffle; None draws from cynet's global generator.

    The dataset's `on_epoch_begin()` / `on_epoch_end()` are called by the adapter's (per
    trainer epoch, as Keras). Each batch is checked as a generator's are (BatchChecker).
    """

    def __init__(self, x, class_weight=None, shuffle=False, steps=None, seed=None):
        self.py_dataset = x
        self._steps = positive_int_or_none("steps_per_epoch", steps)
        shuffle = check_shuffle(shuffle)
        self._workers = _check_workers(getattr(x, "workers", 1))
        self._use_multiprocessing = _check_use_multiprocessing(getattr(x, "use_multiprocessing", False))
        self._max_queue_size = _check_max_queue_size(getattr(x, "max_queue_size", 10))
        self._size = _num_batches(x)
        if shuffle and self._size is None:
            warnings.warn("`shuffle=True` was passed, but will be ignored since the data `x` was provided as an "
                          "infinite PyDataset. The PyDataset is expected to already be shuffled.", stacklevel=3)
            shuffle = False
        self._shuffle = bool(shuffle)
        if class_weight is not None:
            check_class_weight(class_weight)
        self._checker = BatchChecker("the PyDataset", class_weight)
        self._rng = rng_for(seed)
        self._cursor = None if self._size is None else Cursor(self._size, self._new_pass)
        self._next_index = 0     # endless datasets: the next index to read

    @property
    def parallel(self):
        """Whether batches are fetched by worker threads / processes."""
        return self._workers > 1 or (self._workers > 0 and self._use_multiprocessing)

    def _new_pass(self):
        return draw_rng(self._rng).permutation(self._size) if self._shuffle else np.arange(self._size)

    def _plan(self):
        """(index, token) for this epoch's batches, lazily."""
        if self._cursor is not None:
            for order, k, token in self._cursor.plan(self._steps):
                yield int(order[k]), token
            return
        indices = itertools.count(self._next_index)
        if self._steps is not None:
            indices = itertools.islice(indices, self._steps)
        for index in indices:
            yield index, index + 1

    def _commit(self, token):
        if self._cursor is not None:
            self._cursor.commit(token)
        else:
            self._next_index = token

    def get_numpy_iterator(self):
        """One epoch of batches: tuples (x,), (x, y) or (x, y, sample_weight), in index order."""
        return self._open(self._epoch())

    def _epoch(self):
        plan = self._plan()
        if self.parallel:
            source = ordered_fetch(self.py_dataset, plan, self._workers, self._use_multiprocessing,
                                   self._max_queue_size)
        else:
            source = ((index, token, self.py_dataset[index]) for index, token in plan)
        try:
            for index, token, batch in source:
                batch = self._checker(batch, f"batch {index}")
                self._commit(token)
                yield batch
        finally:
            source.close()

    def on_epoch_begin(self):
        hook = getattr(self.py_dataset, "on_epoch_begin", None)
        if callable(hook):
            hook()

    def on_epoch_end(self):
        self.close()
        hook = getattr(self.py_dataset, "on_epoch_end", None)
        if callable(hook):
            hook()

    @property
    def num_batches(self):
        """Batches per epoch: steps_per_epoch when given, else the dataset's (None: endless)."""
        return self._steps if self._steps is not None else self._size


# -------------------------------------------------------------------- parallel fetching
_WORKER_DATASET = None


def _init_worker(dataset):
    """Runs in each worker process: hold the dataset; leave Ctrl-C to the main process."""
    global _WORKER_DATASET
    _WORKER_DATASET = dataset
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):  # pragma: no cover - not the main thread / no signals
        pass


def _fetch_in_worker(index):
    return _WORKER_DATASET[index]


def process_context():
    """"fork" on Linux (no pickling, fast start), "spawn" elsewhere (fork is unsafe on macOS)."""
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def ordered_fetch(dataset, plan, workers, use_multiprocessing, max_queue_size):
    """Yield (index, token, dataset[index]) for each (index, token) of `plan`, in order, fetched
    by `workers` threads (or processes) with at most `max_queue_size` requests ahead of the
    consumer. The executor is shut down when this generator finishes, fails or is closed."""
    if use_multiprocessing:
        executor = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=process_context(),
                                                          initializer=_init_worker, initargs=(dataset,))

        def submit(index):
            return executor.submit(_fetch_in_worker, index)
    else:
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cynet_PyDataset")

        def submit(index):
            return executor.submit(operator.getitem, dataset, index)

    pending = collections.deque()
    try:
        for index, token in itertools.islice(plan, max_queue_size):
            pending.append((index, token, submit(index)))
        while pending:
            index, token, future = pending.popleft()
            batch = future.result()
            for nxt_index, nxt_token in itertools.islice(plan, 1):
                pending.append((nxt_index, nxt_token, submit(nxt_index)))
            yield index, token, batch
    finally:
        for _, _, future in pending:
            future.cancel()
        executor.shutdown(wait=True, cancel_futures=True)
