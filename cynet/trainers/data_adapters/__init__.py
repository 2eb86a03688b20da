"""Data adapters: arrays, generators / iterators and PyDatasets as one stream of batches.

    adapter = get_data_adapter(x, y, sample_weight, batch_size, steps_per_epoch, shuffle, class_weight)
    for epoch in ...:
        adapter.on_epoch_begin()
        for batch in adapter.get_numpy_iterator():   # (x,), (x, y) or (x, y, sample_weight)
            ...
        adapter.on_epoch_end()
        if adapter.ran_out_of_data:                  # a generator ended early: stop training
            break

As Keras 3's keras/src/trainers/data_adapters (NumPy only: no tf.data, no torch).
"""
import warnings

from .array_data_adapter import ArrayDataAdapter
from .data_adapter import DataAdapter
from .data_adapter_utils import (  # noqa: F401
    ACCEPTED,
    class_weight_to_sample_weights,
    is_iterator,
    is_py_dataset,
    pack_x_y_sample_weight,
    train_validation_split,
    unpack_x_y_sample_weight,
)
from .data_adapter import check_shuffle, positive_int_or_none
from .generator_data_adapter import GeneratorDataAdapter
from .py_dataset_adapter import PyDatasetAdapter

__all__ = [
    "ArrayDataAdapter", "DataAdapter", "GeneratorDataAdapter", "PyDatasetAdapter", "class_weight_to_sample_weights",
    "get_data_adapter", "pack_x_y_sample_weight", "train_validation_split", "unpack_x_y_sample_weight",
]


def get_data_adapter(x, y=None, sample_weight=None, batch_size=None, steps_per_epoch=None, shuffle=False,
                     class_weight=None):
    """The adapter for `x`: a DataAdapter (returned as it is), a PyDataset, a generator or
    iterator, or arrays (NumPy arrays, array-likes, nested lists / tuples / dicts of them).

    Anything else is a TypeError (also a ValueError) naming what fit accepts. y and
    sample_weight go with arrays only; a PyDataset or generator yields them in its batches.
    batch_size applies to arrays and is ignored otherwise (as in Keras).
    """
    if isinstance(x, DataAdapter):
        return x
    batch_size = positive_int_or_none("batch_size", batch_size)
    steps_per_epoch = positive_int_or_none("steps_per_epoch", steps_per_epoch)
    shuffle = check_shuffle(shuffle)
    if is_py_dataset(x):
        _refuse_separate("PyDataset", y, sample_weight)
        return PyDatasetAdapter(x, class_weight=class_weight, shuffle=shuffle, steps=steps_per_epoch)
    if is_iterator(x):
        _refuse_separate("generator", y, sample_weight)
        if shuffle:
            warnings.warn("`shuffle=True` was passed, but will be ignored since the data `x` was provided as a "
                          "generator. The generator is expected to yield already-shuffled data.", stacklevel=2)
        return GeneratorDataAdapter(x, steps=steps_per_epoch, class_weight=class_weight)
    return ArrayDataAdapter(x, y, sample_weight=sample_weight, batch_size=batch_size, steps=steps_per_epoch,
                            shuffle=shuffle, class_weight=class_weight)


def _refuse_separate(kind, y, sample_weight):
    for name, value, what in (("y", y, "the targets"), ("sample_weight", sample_weight, "the sample weights")):
        if value is not None:
            raise ValueError(f"When providing `x` as a {kind}, `{name}` should not be passed. Instead, {what} "
                             f"should be included as part of the {kind}'s batches: (x, y) or "
                             f"(x, y, sample_weight)")
