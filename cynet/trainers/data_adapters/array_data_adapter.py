"""Batches from NumPy arrays (and array-likes, and nested lists / tuples / dicts of them)."""
import math

from . import data_adapter_utils as utils
from .data_adapter import Cursor, DataAdapter, check_shuffle, draw_rng, positive_int_or_none, rng_for


class ArrayDataAdapter(DataAdapter):
    """Batches of arrays, as Keras 3's ArrayDataAdapter.

    Args:
        x: an array, an array-like (nested lists of numbers, an object with `__array__`), or a
            list / tuple / dict of them (a model with several inputs).
        y: targets in the same forms (several outputs: a list / dict), or None.
        sample_weight: per-sample weights: one array, or one per output matching y's structure;
            a single array of shape (n,) or (n, 1) with a nested y applies to every output.
        batch_size: samples per batch; default 32, or ceil(n / steps) when only steps is given.
        steps: steps_per_epoch: each epoch takes this many batches, continuing from where the
            previous epoch stopped and beginning a new (reshuffled) pass whenever one ends.
        shuffle: False; True (a new permutation of the samples for every pass); "batch" (the
            batches keep their order, the samples inside each batch are permuted, as Keras 3).
        class_weight: {class index: weight} turned into sample weights (a single output only).
        seed: for the shuffle; None draws from cynet's global generator (set_random_seed).

    Batches index the arrays: a slice (a view, no copy) without shuffling, a fancy index (a copy
    of that batch only) with it. Leaves that are not ndarrays are converted once, here.
    """

    def __init__(self, x, y=None, sample_weight=None, batch_size=None, steps=None, shuffle=False,
                 class_weight=None, seed=None):
        if x is None:
            raise ValueError("x must be given")
        steps = positive_int_or_none("steps_per_epoch", steps)
        batch_size = positive_int_or_none("batch_size", batch_size)
        self._shuffle = check_shuffle(shuffle)
        x = utils.to_arrays(x, "x")
        y = utils.to_arrays(y, "y", what=utils.ACCEPTED.split(", Python")[0] + " when x is arrays")
        sample_weight = utils.to_arrays(sample_weight, "sample_weight",
                                        what=utils.ACCEPTED.split(", Python")[0] + " when x is arrays")
        if sample_weight is not None:
            if y is None:
                raise ValueError("sample_weight was given without targets y")
            if class_weight is not None:
                raise ValueError("You cannot give both class_weight and sample_weight (as in Keras): fold the "
                                 "class weights into sample_weight instead")
            sample_weight = _per_output_sample_weight(y, sample_weight)
        if class_weight is not None:
            if y is None:
                raise ValueError("class_weight was given without targets y")
            sample_weight = utils.class_weight_to_sample_weights(y, class_weight)
        self._data = utils.pack_x_y_sample_weight(x, y, sample_weight)
        leaves = [item for part, name in zip(self._data, utils.names_of(self._data))
                  for item in utils.flatten_with_paths(part, name)]
        if not any(path.startswith("x") for path, _ in leaves):
            raise ValueError("x holds no arrays")
        n = utils.count_samples(leaves)
        if n == 0:
            raise ValueError("The data hold no samples: " + ", ".join(f"{p} has shape {a.shape}" for p, a in leaves))
        if batch_size is None:
            batch_size = math.ceil(n / steps) if steps else 32
        self._num_samples = n
        self._batch_size = batch_size
        self._steps = steps
        self._rng = rng_for(seed)
        self._cursor = Cursor(math.ceil(n / batch_size), self._new_pass)

    def _new_pass(self):
        return _Pass(self._num_samples, self._batch_size, self._shuffle, self._rng)

    def get_numpy_iterator(self):
        """One epoch of batches: tuples (x,), (x, y) or (x, y, sample_weight)."""
        return self._open(self._epoch())

    def _epoch(self):
        for current, k, token in self._cursor.plan(self._steps):
            index = current.index(k)
            batch = tuple(utils.map_structure(lambda a: a[index], part) for part in self._data)
            self._cursor.commit(token)
            yield batch

    @property
    def num_samples(self):
        return self._num_samples

    @property
    def num_batches(self):
        """Batches per epoch: steps_per_epoch when given, else ceil(num_samples / batch_size)."""
        return self._steps if self._steps is not None else self._cursor.size

    @property
    def batch_size(self):
        return self._batch_size

    @property
    def has_partial_batch(self):
        return self._num_samples % self._batch_size > 0

    @property
    def partial_batch_size(self):
        return self._num_samples % self._batch_size or None


class _Pass:
    """One pass over n samples in batches: the index of batch k."""

    def __init__(self, n, batch_size, shuffle, rng):
        self.n, self.batch_size, self.shuffle, self.rng = n, batch_size, shuffle, rng
        self.permutation = self._rng().permutation(n) if shuffle is True else None

    def _rng(self):
        return draw_rng(self.rng)

    def index(self, k):
        start = k * self.batch_size
        stop = min(start + self.batch_size, self.n)
        if self.shuffle == "batch":
            return start + self._rng().permutation(stop - start)
        if self.permutation is not None:
            return self.permutation[start:stop]
        return slice(start, stop)


def _per_output_sample_weight(y, sample_weight):
    """sample_weight for a nested y: its structure must match y's, or a single per-sample array
    ((n,) or (n, 1)) applies to every output (as Keras)."""
    if not utils.is_nested(y):
        if utils.is_nested(sample_weight):
            raise ValueError("sample_weight must be a single array for a single output y; received "
                             f"{utils.describe(sample_weight)}")
        return sample_weight
    if utils.is_nested(sample_weight):
        y_paths = [p for p, _ in utils.flatten_with_paths(y, "")]
        w_paths = [p for p, _ in utils.flatten_with_paths(sample_weight, "")]
        if sorted(y_paths) != sorted(w_paths):
            raise ValueError("Give one sample_weight array per output in y: the two structures do not match "
                             f"(y has {['y' + p for p in y_paths]}, sample_weight has "
                             f"{['sample_weight' + p for p in w_paths]})")
        return sample_weight
    shape = sample_weight.shape
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        raise ValueError("For a model with several outputs, a single sample_weight array must hold one weight per "
                         f"sample (shape (n,) or (n, 1)); received shape {shape}. Give one array per output for "
                         "non-scalar weights")
    return utils.map_structure(lambda _: sample_weight, y)
