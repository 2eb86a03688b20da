"""`PyDataset` (alias `Sequence`): a dataset written in Python that `fit` can read in parallel.

The class mirrors Keras 3's `keras.utils.PyDataset` (keras/src/trainers/data_adapters/
py_dataset_adapter.py): same constructor, properties and hooks, so a subclass written against
Keras runs unchanged. The parallel reading itself lives in cynet.trainers.data_adapters.
"""
import itertools
import numbers
import warnings

import numpy as np

from .._validation import is_int


def _check_workers(value):
    if not is_int(value) or value < 0:
        raise ValueError(f"PyDataset: `workers` must be a non-negative integer; received workers={value!r}")
    return int(value)


def _check_use_multiprocessing(value):
    if not isinstance(value, (bool, numbers.Integral, np.bool_)) or value not in (0, 1):
        raise ValueError(f"PyDataset: `use_multiprocessing` must be True or False; "
                         f"received use_multiprocessing={value!r}")
    return bool(value)


def _check_max_queue_size(value):
    if not is_int(value) or value < 1:
        raise ValueError(f"PyDataset: `max_queue_size` must be a positive integer; "
                         f"received max_queue_size={value!r}")
    return int(value)


class PyDataset:
    """Base class for a dataset defined in Python code, read batch by batch.

    Implement `__getitem__(index)`, which returns one complete batch (not one sample), and
    `__len__()`, the number of batches (or override the `num_batches` property and return None
    for an endless dataset). A batch is `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`, where
    each of x, y, sample_weight is an array or a nested list / tuple / dict of arrays. Override
    `on_epoch_end()` (and `on_epoch_begin()`) to change the dataset between epochs.

    Args:
        workers: how many threads (or processes) `fit` uses to fetch batches. With 0 or 1 (and
            use_multiprocessing False) batches are fetched in the calling thread.
        use_multiprocessing: fetch batches in worker processes instead of threads (worth it when
            `__getitem__` is CPU-bound Python). On Linux the processes are forked, so the dataset
            need not be picklable; elsewhere they are spawned and the dataset must pickle. Each
            epoch starts fresh workers, so they see the dataset as `on_epoch_end` left it.
        max_queue_size: at most this many batches are being fetched or waiting to be consumed at
            any time (bounds the memory that prefetching takes). Defaults to 10.

    The three arguments configure how `fit` reads the dataset; indexing it yourself is plain,
    sequential Python. Do not pass them to `fit`.

    Example::

        class Batches(cynet.utils.PyDataset):
            def __init__(self, x, y, batch_size, **kwargs):
                super().__init__(**kwargs)
                self.x, self.y, self.batch_size = x, y, batch_size

            def __len__(self):
                return math.ceil(len(self.x) / self.batch_size)

            def __getitem__(self, idx):
                lo = idx * self.batch_size
                return self.x[lo:lo + self.batch_size], self.y[lo:lo + self.batch_size]

        model.fit(Batches(x, y, 32, workers=4), epochs=3)
    """

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10) -> None:
        self._workers = _check_workers(workers)
        self._use_multiprocessing = _check_use_multiprocessing(use_multiprocessing)
        self._max_queue_size = _check_max_queue_size(max_queue_size)

    def _warn_if_super_not_called(self):
        missing = [name for name in ("_workers", "_use_multiprocessing", "_max_queue_size")
                   if name not in self.__dict__]
        if not missing:
            return
        defaults = {"_workers": 1, "_use_multiprocessing": False, "_max_queue_size": 10}
        for name in missing:
            setattr(self, name, defaults[name])
        warnings.warn("Your `PyDataset` class should call `super().__init__(**kwargs)` in its constructor. "
                      "`**kwargs` can include `workers`, `use_multiprocessing`, `max_queue_size`. Do not pass "
                      "these arguments to `fit()`, as they will be ignored.", stacklevel=3)

    @property
    def workers(self) -> int:
        """Number of threads (or processes) that load batches in parallel."""
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value):
        self._workers = _check_workers(value)

    @property
    def use_multiprocessing(self) -> bool:
        """Whether batches are loaded by processes instead of threads."""
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = _check_use_multiprocessing(value)

    @property
    def max_queue_size(self) -> int:
        """Maximum number of batches loaded ahead."""
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = _check_max_queue_size(value)

    def __getitem__(self, index):
        """The batch at position `index`."""
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index), returning one batch")

    def __iter__(self):
        """The batches in order, read sequentially (endless when num_batches is None)."""
        try:
            num_batches = self.num_batches
        except NotImplementedError:
            num_batches = None
        indices = itertools.count() if num_batches is None else range(num_batches)
        for index in indices:
            yield self[index]

    @property
    def num_batches(self) -> int | None:
        """The number of batches, or None for an endless dataset (defaults to `len(self)`)."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError("You need to implement the `num_batches` property (or `__len__`):\n\n"
                                  "@property\ndef num_batches(self):\n  return ...")

    def on_epoch_begin(self) -> None:
        """Called at the beginning of every epoch."""

    def on_epoch_end(self) -> None:
        """Called at the end of every epoch."""


Sequence = PyDataset
