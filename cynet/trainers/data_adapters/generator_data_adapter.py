"""Batches from a Python generator or iterator, read one at a time (never materialized)."""
import warnings

from .data_adapter import DataAdapter, positive_int_or_none
from .data_adapter_utils import BatchChecker, check_class_weight

RAN_OUT = ("Your input ran out of data; interrupting training. Make sure that your dataset or generator can "
           "generate at least `steps_per_epoch * epochs` batches.")


class GeneratorDataAdapter(DataAdapter):
    """Batches from a generator or iterator yielding `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`.

    The first batch is read here (an empty generator is a ValueError, as in Keras) and every
    batch is checked against it (structure and per-sample shapes; see BatchChecker). Batches are
    pulled one at a time as the epoch's iterator is advanced: nothing is read ahead.

    Args:
        generator: the generator or iterator.
        steps: steps_per_epoch. With it, each epoch takes that many batches from the same
            generator, continuing it (Keras). Without it, an epoch runs until the generator ends
            (num_batches is None), and the next epoch finds it exhausted.
        class_weight: {class index: weight}, turned into sample weights for each (x, y) batch.

    Running out: when the generator ends before an epoch's steps_per_epoch batches, or an epoch
    begins on an exhausted generator, the epoch ends there, a UserWarning "Your input ran out of
    data; interrupting training. ..." is issued (Keras's words), and `ran_out_of_data` becomes
    True: the trainer should then stop training. `exhausted` tells whether the generator has
    ended (a trainer may check it before starting another epoch).
    """

    def __init__(self, generator, steps=None, class_weight=None):
        self._steps = positive_int_or_none("steps_per_epoch", steps)
        if class_weight is not None:
            check_class_weight(class_weight)
        self._generator = generator
        self._checker = BatchChecker("the generator", class_weight)
        self._exhausted = False
        self.ran_out_of_data = False
        try:
            first = next(generator)
        except StopIteration:
            raise ValueError("When passing a Python generator or iterator to fit / evaluate / predict, it must yield "
                             "at least one batch; received an empty (or exhausted) one") from None
        self._peeked = self._checker(first, "batch 0")
        self._drawn = 1

    def _next(self):
        """The next checked batch; StopIteration at the generator's end."""
        if self._peeked is not None:
            batch, self._peeked = self._peeked, None
            return batch
        if self._exhausted:
            raise StopIteration
        try:
            raw = next(self._generator)
        except StopIteration:
            self._exhausted = True
            raise
        label = f"batch {self._drawn}"
        self._drawn += 1
        return self._checker(raw, label)

    def get_numpy_iterator(self):
        """One epoch of batches: tuples (x,), (x, y) or (x, y, sample_weight)."""
        return self._open(self._epoch())

    def _epoch(self):
        count = 0
        while self._steps is None or count < self._steps:
            try:
                batch = self._next()
            except StopIteration:
                if self._steps is not None or count == 0:
                    self._ran_out(count)
                return
            count += 1
            yield batch

    def _ran_out(self, count):
        self.ran_out_of_data = True
        if self._steps is not None:
            detail = (f"The generator ended after {count} of this epoch's {self._steps} batches "
                      f"(steps_per_epoch={self._steps}; {self._drawn} batches in all).")
        else:
            detail = (f"The generator was exhausted by an earlier epoch ({self._drawn} batches in all): without "
                      f"steps_per_epoch an epoch reads it to its end; for several epochs give steps_per_epoch and "
                      f"a generator that lasts (or loops).")
        warnings.warn(f"{RAN_OUT} {detail}", UserWarning, stacklevel=3)

    @property
    def exhausted(self):
        """Whether the generator has ended (and the batch it had read ahead was handed out)."""
        return self._exhausted and self._peeked is None

    @property
    def num_batches(self):
        """steps_per_epoch, or None (unknown) without it."""
        return self._steps
