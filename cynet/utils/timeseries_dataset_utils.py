"""`timeseries_dataset_from_array`: sliding windows over a timeseries as batches (Keras 3's
keras.utils.timeseries_dataset_from_array), returned as a `PyDataset` that `fit`, `evaluate` and
`predict` read directly. Each batch is cut out of the data by index arithmetic when it is read;
the windows are never all made at once."""
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._typing import ArrayLike
from .py_dataset import PyDataset


def _int_arg(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"`{name}` must be an integer; received {name}={value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be higher than {minimum - 1}. Received: {name}={value}")
    return int(value)


def _as_array(name, value):
    if isinstance(value, np.ndarray):   # np.memmap included: rows are read per batch, never all at once
        return value
    array = np.asarray(value)
    if array.ndim == 0:
        raise ValueError(f"`{name}` must be an array with a time (first) axis; received a scalar")
    if array.dtype == object:
        raise ValueError(f"`{name}` must be a numeric array; received items of mixed or non-numeric types")
    return array


class TimeseriesDataset(PyDataset):
    """The batches of `timeseries_dataset_from_array` (see there): batch `i` holds the windows
    starting at positions `start_positions[i * batch_size:(i + 1) * batch_size]` (relative to
    start_index); a window is `data[start + p + k * sampling_rate]` for k < sequence_length, its
    target `targets[start + p]`."""

    def __init__(self, data, targets, sequence_length, sequence_stride, sampling_rate, batch_size, shuffle, seed,
                 start_index, end_index, num_seqs):
        super().__init__()
        self.data, self.targets = data, targets
        self.sequence_length, self.sequence_stride, self.sampling_rate = sequence_length, sequence_stride, \
            sampling_rate
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.start_index, self.end_index = start_index, end_index
        self.num_windows = len(range(0, max(num_seqs, 0), sequence_stride))
        self._offsets = np.arange(sequence_length, dtype=np.int64) * sampling_rate
        self._positions = None   # in order: computed per batch; shuffled: the permuted start positions
        if shuffle:
            self._rng = np.random.RandomState(seed)
            self._positions = np.arange(0, max(num_seqs, 0), sequence_stride, dtype=np.int64)
            self._rng.shuffle(self._positions)

    def __len__(self):
        if self.batch_size is None:
            return self.num_windows
        return math.ceil(self.num_windows / self.batch_size)

    def _window_positions(self, lo, hi):
        if self._positions is not None:
            return self._positions[lo:hi]
        return np.arange(lo, hi, dtype=np.int64) * self.sequence_stride

    def __getitem__(self, index):
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"batch index must be an integer; received {index!r}")
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"batch index {index} out of range for {n} batches")
        if self.batch_size is None:   # one window per item, as Keras's unbatched dataset
            positions = self._window_positions(index, index + 1)
            x = self.data[self.start_index + positions[0] + self._offsets]
            if self.targets is None:
                return x
            return x, self.targets[self.start_index + int(positions[0])]
        lo = index * self.batch_size
        positions = self._window_positions(lo, min(lo + self.batch_size, self.num_windows))
        starts = self.start_index + positions
        rows = (starts[:, None] + self._offsets).reshape(-1)
        x = np.asarray(self.data[rows])
        x = x.reshape((len(positions), self.sequence_length) + x.shape[1:])
        if self.targets is None:
            return x
        return x, np.asarray(self.targets[starts])

    def on_epoch_end(self) -> None:
        """With shuffle, the next epoch reads the windows in a new order (drawn from the same
        seeded generator, so a seed makes every epoch's order reproducible)."""
        if self._positions is not None:
            self._rng.shuffle(self._positions)


def timeseries_dataset_from_array(data: ArrayLike, targets: Sequence[Any] | np.ndarray | None, sequence_length: int,
                                  sequence_stride: int = 1, sampling_rate: int = 1, batch_size: int | None = 128,
                                  shuffle: bool = False, seed: int | None = None, start_index: int | None = None,
                                  end_index: int | None = None) -> TimeseriesDataset:
    """Batches of sliding windows over a timeseries (Keras 3's `timeseries_dataset_from_array`).

    Window `i` starts at position `p_i = start_index + i * sequence_stride` and holds
    `data[p_i], data[p_i + sampling_rate], ...` (sequence_length steps); its target is
    `targets[p_i]`. Windows run while they fit before `end_index`, and while there are targets.
    Batches come in order (the last one may be smaller) unless shuffled.

    Args:
        data: array (or array-like) with time as its first axis; rows are read per batch, so a
            np.memmap is never read whole.
        targets: targets aligned with `data` (targets[p] for the window starting at p), or None
            for batches of windows alone.
        sequence_length: steps in each window.
        sequence_stride: steps between the starts of consecutive windows (default 1).
        sampling_rate: steps between the rows taken within a window (default 1).
        batch_size: windows per batch (default 128); None gives one window per item.
        shuffle: read the windows in a random order. The start positions are permuted with
            np.random.RandomState(seed), as Keras does; Keras's further local shuffle (a TF
            buffer, its own random stream) is not reproduced, and each epoch (`on_epoch_end`)
            draws a new permutation from the same generator.
        seed: seed of the shuffle (default: drawn from NumPy's global generator, as in Keras, so
            `cynet.utils.set_random_seed` makes it reproducible).
        start_index: first row of `data` used (default 0).
        end_index: use only rows before this one (exclusive; default: all).

    Returns:
        A `cynet.utils.PyDataset` (a `TimeseriesDataset`): `len()` batches, each `(x, y)` with
        x of shape (batch, sequence_length) + data.shape[1:], or x alone when targets is None.
        Pass it to `fit` / `evaluate` / `predict` as is.
    """
    data = _as_array("data", data)
    if targets is not None:
        targets = _as_array("targets", targets)
    n = len(data)
    sequence_length = _int_arg("sequence_length", sequence_length, 1)
    for name, value in (("start_index", start_index), ("end_index", end_index)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
            raise ValueError(f"`{name}` must be None or an integer; received {name}={value!r}")
    # Keras's checks, in Keras's order (start_index=0 and end_index=0 count as not given there).
    if start_index:
        if start_index < 0:
            raise ValueError(f"`start_index` must be 0 or greater. Received: start_index={start_index}")
        if start_index >= n:
            raise ValueError(f"`start_index` must be lower than the length of the data. Received: "
                             f"start_index={start_index}, for data of length {n}")
    if end_index:
        if start_index and end_index <= start_index:
            raise ValueError(f"`end_index` must be higher than `start_index`. Received: start_index={start_index}, "
                             f"and end_index={end_index} ")
        if end_index >= n:
            raise ValueError(f"`end_index` must be lower than the length of the data. Received: "
                             f"end_index={end_index}, for data of length {n}")
        if end_index <= 0:
            raise ValueError(f"`end_index` must be higher than 0. Received: end_index={end_index}")
    for name, value in (("sampling_rate", sampling_rate), ("sequence_stride", sequence_stride)):
        value = _int_arg(name, value, 1)
        if value >= n:
            raise ValueError(f"`{name}` must be lower than the length of the data. Received: {name}={value}, for "
                             f"data of length {n}")
    sampling_rate, sequence_stride = int(sampling_rate), int(sequence_stride)
    if batch_size is not None:
        batch_size = _int_arg("batch_size", batch_size, 1)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise ValueError(f"`shuffle` must be True or False; received shuffle={shuffle!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or not 0 <= seed < 2 ** 32):
        raise ValueError(f"`seed` must be None or an integer in [0, 2**32); received seed={seed!r}")

    start_index = 0 if start_index is None else int(start_index)
    end_index = n if end_index is None else int(end_index)
    num_seqs = end_index - start_index - (sequence_length - 1) * sampling_rate
    if targets is not None:
        num_seqs = min(num_seqs, len(targets))
        last = start_index + (len(range(0, max(num_seqs, 0), sequence_stride)) - 1) * sequence_stride
        if num_seqs > 0 and last >= len(targets):
            raise ValueError(f"`targets` is too short: the window starting at data[{last}] needs targets[{last}], "
                             f"but targets has length {len(targets)}")
    if shuffle and seed is None:
        seed = np.random.randint(1e6)  # type: ignore[call-overload]  # a float bound, as Keras passes
    return TimeseriesDataset(data, targets, sequence_length, sequence_stride, sampling_rate, batch_size,
                             bool(shuffle), seed, start_index, end_index, num_seqs)
