"""The DataAdapter interface, and the cursor that walks passes over a finite source."""
import numpy as np

from ..._validation import is_int
from ...utils.rng import make_rng


class DataAdapter:
    """Turns one kind of input data into batches, one epoch at a time.

    `get_numpy_iterator()` returns an iterator over one epoch's batches; each batch is a tuple
    `(x,)`, `(x, y)` or `(x, y, sample_weight)` whose parts are NumPy arrays or nested lists /
    tuples / dicts of them, shaped as the data were given. The trainer calls `on_epoch_begin()`
    before and `on_epoch_end()` after each epoch; `on_epoch_end()` (or `close()`) also finishes an
    epoch's iterator that was left before its end, so that no worker outlives the epoch.
    """

    #: True once the data could not supply an epoch's batches (a generator that ended before
    #: steps_per_epoch batches, or an exhausted generator asked for another epoch): the trainer
    #: should stop training. A warning "Your input ran out of data" accompanies it, as in Keras.
    ran_out_of_data = False

    _open_iterator = None

    def get_numpy_iterator(self):
        raise NotImplementedError

    @property
    def num_batches(self):
        """Batches per epoch, or None when unknown (a generator without steps_per_epoch)."""
        raise NotImplementedError

    @property
    def batch_size(self):
        """Samples per batch, or None when the data decide it (generators, PyDataset)."""
        return None

    @property
    def has_partial_batch(self):
        """Whether a pass over the data ends with a smaller batch (None when unknown)."""
        return None

    @property
    def partial_batch_size(self):
        """The size of that smaller last batch, or None (none, or unknown)."""
        return None

    def on_epoch_begin(self):
        """Called by the trainer before each epoch."""

    def on_epoch_end(self):
        """Called by the trainer after each epoch."""
        self.close()

    def close(self):
        """Finish the iterator of the current epoch, if one is still open (stops its workers)."""
        iterator, self._open_iterator = self._open_iterator, None
        if iterator is not None:
            iterator.close()

    def _open(self, iterator):
        """Register a new epoch iterator, finishing the previous one."""
        self.close()
        self._open_iterator = iterator
        return iterator

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass


# -------------------------------------------------------------------- argument checks
def positive_int_or_none(name, value):
    if value is None:
        return None
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer or None; received {name}={value!r}")
    return int(value)


def check_shuffle(shuffle):
    if isinstance(shuffle, (bool, np.bool_)):
        return bool(shuffle)
    if isinstance(shuffle, str) and shuffle == "batch":
        return "batch"
    raise ValueError(f'shuffle must be True, False or "batch"; received shuffle={shuffle!r}')


def rng_for(seed):
    """A Generator to draw from: a fixed one for a seed, else None (use the global one at each draw,
    so that a later cynet.utils.set_random_seed takes effect)."""
    return None if seed is None else make_rng(seed)


def draw_rng(rng):
    """The Generator to draw from now: `rng`, or cynet's global one when rng is None."""
    return rng if rng is not None else make_rng(None)


# -------------------------------------------------------------------- passes
class Cursor:
    """Where the next batch of a finite source comes from.

    A source of `size` batches is read in passes; `new_pass()` starts one (drawing its shuffle)
    and returns an object whose item k describes the pass's k-th batch. Without steps_per_epoch
    every epoch is one fresh pass. With steps_per_epoch an epoch takes that many batches,
    continuing where the previous epoch stopped and starting a new pass whenever one ends (so
    every epoch has exactly steps_per_epoch batches). Only batches actually handed out count:
    `plan()` yields tokens that the adapter commits as it yields each batch, so an epoch left
    early (or prefetched ahead) resumes at the first batch not consumed.
    """

    def __init__(self, size, new_pass):
        self.size = size
        self.new_pass = new_pass
        self.current = None
        self.position = 0

    def plan(self, steps):
        """Yield (pass, k, token) for one epoch's batches."""
        if steps is None:
            self.current, self.position = None, 0
            current = self.new_pass()
            for k in range(self.size):
                yield current, k, None
            return
        current, position = self.current, self.position
        for _ in range(steps):
            if current is None or position >= self.size:
                current, position = self.new_pass(), 0
            yield current, position, (current, position + 1)
            position += 1

    def commit(self, token):
        if token is not None:
            self.current, self.position = token
