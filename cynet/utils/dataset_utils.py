"""`split_dataset`: Keras's train/test split of in-memory data (NumPy arrays, tuples and lists of
arrays), returned as the same structure of NumPy arrays, ready for `fit(x, y)`."""
import numbers
from typing import Any

import numpy as np

from .rng import make_rng

__all__ = ["split_dataset"]


def _leaves(data: Any, path: str) -> list[tuple[str, np.ndarray]]:
    """[(where, array)] for every array of `data` (an array, or nested tuples/lists/dicts of them)."""
    if isinstance(data, (tuple, list)):
        return [leaf for i, item in enumerate(data) for leaf in _leaves(item, f"{path}[{i}]")]
    if isinstance(data, dict):
        return [leaf for key, item in data.items() for leaf in _leaves(item, f"{path}[{key!r}]")]
    array = np.asarray(data)
    if array.ndim == 0 or array.dtype == object and not isinstance(data, np.ndarray):
        raise ValueError(f"dataset: {path} must be an array with a sample axis (all of the same length); "
                         f"received {type(data).__name__}")
    return [(path, array)]


def _take(data: Any, index: Any) -> Any:
    """`data` with every array indexed along its first axis by `index` (the structure kept)."""
    if isinstance(data, (tuple, list)):
        return type(data)(_take(item, index) for item in data)
    if isinstance(data, dict):
        return {key: _take(item, index) for key, item in data.items()}
    return np.asarray(data)[index]


def _size(name: str, value: Any, total: int) -> float | None:
    """A split size checked as Keras does: an int in (0, total) or a float in (0, 1), or None."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, numbers.Real)):
        raise TypeError(f"{name} must be an int, a float or None; received {name}={value!r} of type "
                        f"{type(value).__name__}")
    if isinstance(value, numbers.Integral):
        if not 0 < int(value) < total:
            raise ValueError(f"{name} should be either a positive integer smaller than {total} (the number of "
                             f"samples), or a float within the range (0, 1); received {name}={value!r}")
        return float(int(value))
    if not 0 < float(value) < 1:
        raise ValueError(f"{name} should be either a positive integer smaller than {total} (the number of "
                         f"samples), or a float within the range (0, 1); received {name}={value!r}")
    return float(round(float(value) * total))


def _split_sizes(left_size: Any, right_size: Any, total: int) -> tuple[int, int]:
    """Keras's `_rescale_dataset_split_sizes`: the numbers of samples of the two sides."""
    if left_size is None and right_size is None:
        raise ValueError("At least one of left_size or right_size must be specified; received left_size=None "
                         "and right_size=None")
    fractions = [float(v) for v in (left_size, right_size)
                 if isinstance(v, numbers.Real) and not isinstance(v, (numbers.Integral, np.bool_))]
    if len(fractions) == 2 and sum(fractions) > 1:
        raise ValueError(f"The sum of left_size and right_size must be at most 1; received left_size={left_size} "
                         f"and right_size={right_size}")
    left_n, right_n = _size("left_size", left_size, total), _size("right_size", right_size, total)
    left = total - right_n if left_n is None and right_n is not None else left_n
    right = total - left if right_n is None and left is not None else right_n
    assert left is not None and right is not None   # (both None was refused above)
    if left + right > total:
        raise ValueError(f"The sum of left_size and right_size should be at most the number of samples, {total}; "
                         f"received left_size + right_size = {int(left + right)}")
    for size, side in ((left, "left"), (right, "right")):
        if size == 0:
            raise ValueError(f"With a dataset of {total} samples, left_size={left_size} and "
                             f"right_size={right_size}, the {side} split would be empty")
    return int(left), int(right)


def split_dataset(dataset: Any, left_size: int | float | None = None, right_size: int | float | None = None,
                  shuffle: bool = False, seed: int | None = None, preferred_backend: str | None = None) -> Any:
    """Split a dataset into a left and a right part (e.g. train and test), as Keras's
    `keras.utils.split_dataset`.

    The left part is the first `left_size` samples, the right part the last `right_size` (samples
    between them, when the two sizes do not add up to the whole, are in neither), after a random
    permutation when `shuffle` is True. A float size is a fraction of the samples (rounded as
    Keras rounds); an int a number of samples; `None` the complement of the other.

    Keras returns `tf.data` or `torch` datasets; cynet returns the same structure as `dataset`
    holding NumPy arrays (an array gives two arrays, a tuple `(x, y)` two tuples), which `fit`,
    `evaluate` and `predict` take directly. Keras's PyTorch backend splits at random even when
    `shuffle=False` (torch's random_split); cynet keeps the order then, as the TensorFlow backend
    and Keras's documentation do. Shuffled splits draw from `cynet.utils.rng` (Keras's draws differ).

    Args:
        dataset: A NumPy array, or a tuple or list of arrays (possibly nested, or dicts of arrays)
            of the same length. A `tf.data.Dataset` or a `torch.utils.data.Dataset` raises
            NotImplementedError.
        left_size: The left part's size: a float in (0, 1) (a fraction of the samples), an int in
            (0, number of samples), or `None` (all the samples the right part leaves).
        right_size: The right part's size, in the same forms.
        shuffle: Whether to shuffle the samples before splitting.
        seed: Seed of the shuffle (a non-negative int); `None` draws from cynet's global generator.
        preferred_backend: Keras's choice of dataset type to return; cynet always returns NumPy
            arrays (only `None` is accepted).
    """
    if preferred_backend is not None:
        raise NotImplementedError(f"split_dataset(preferred_backend={preferred_backend!r}) is not implemented in "
                                  f"cynet: the splits are NumPy arrays; use preferred_backend=None")
    module = type(dataset).__module__ or ""
    if module.startswith(("tensorflow", "torch")) or hasattr(dataset, "element_spec"):
        raise NotImplementedError(f"split_dataset of a {type(dataset).__module__}.{type(dataset).__name__} is not "
                                  f"implemented in cynet: pass NumPy arrays, or a tuple or list of them")
    if not isinstance(dataset, (np.ndarray, tuple, list)):
        raise TypeError(f"dataset must be a NumPy array, or a tuple or list of arrays of the same length; "
                        f"received dataset of type {type(dataset).__name__}")
    leaves = _leaves(dataset, "dataset")
    if not leaves:
        raise ValueError("dataset is empty: it holds no arrays")
    lengths = {len(array) for _, array in leaves}
    if len(lengths) != 1:
        raise ValueError(f"dataset: the arrays must all have the same length (number of samples); received "
                         f"{', '.join(f'{where}: {len(array)}' for where, array in leaves)}")
    total = lengths.pop()
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False; received shuffle={shuffle!r}")
    left, right = _split_sizes(left_size, right_size, total)
    rng = make_rng(seed)   # (checks seed, shuffled or not)
    order = rng.permutation(total) if shuffle else np.arange(total)
    return _take(dataset, order[:left]), _take(dataset, order[total - right:])
