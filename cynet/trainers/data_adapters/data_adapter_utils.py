"""Helpers shared by the data adapters: what counts as an array, nested structures and their
paths, sample counts, class weights, the validation split, and the checks every batch of a
generator or PyDataset goes through.

A structure is a leaf (an array), None, or a list / tuple / dict of structures. A list or tuple
that holds only numbers (at any depth) is an array-like leaf, as NumPy reads it; a list or tuple
that holds arrays, dicts or other lists of arrays is a structure (several inputs or outputs), as
in Keras. Nothing that is not a number, a list / tuple / dict, a NumPy array or an object with
`__array__` / `__array_interface__` is ever handed to NumPy: np.asarray walks any object with
`__len__` and `__getitem__` item by item, and turns a generator into a 0-d object array.
"""
import collections.abc
import inspect
import math
import numbers
import types

import numpy as np

from ..._validation import ArgumentTypeError, is_int, is_real

ACCEPTED = ("NumPy arrays (or array-likes / nested lists and dicts of them), Python generators or iterators, "
            "or a keras.utils.PyDataset")


# -------------------------------------------------------------------- what is what
def is_array(value):
    """An ndarray or an object NumPy converts through its array protocol (pandas, array-likes)."""
    return isinstance(value, np.ndarray) or hasattr(value, "__array__") or hasattr(value, "__array_interface__")


def _is_number(value):
    return isinstance(value, (numbers.Number, np.bool_)) and not isinstance(value, np.ndarray)


def is_number_nest(value):
    """A list / tuple holding only numbers and lists / tuples of numbers (an array-like leaf)."""
    if not isinstance(value, (list, tuple)):
        return False
    for item in value:
        if _is_number(item):
            continue
        if not is_number_nest(item):
            return False
    return True


def is_py_dataset(value):
    """cynet's PyDataset, or Keras's (keras.utils.PyDataset / Sequence, also tf.keras's)."""
    from ...utils.py_dataset import PyDataset

    if isinstance(value, PyDataset):
        return True
    for cls in type(value).__mro__:
        if cls.__name__ in ("PyDataset", "Sequence") and \
                str(cls.__module__).split(".")[0] in ("keras", "tensorflow", "tf_keras"):
            return True
    return False


def is_iterator(value):
    return isinstance(value, (types.GeneratorType, collections.abc.Iterator))


def describe(value):
    """A few words for what `value` is, for error messages."""
    if isinstance(value, (str, bytes)):
        return f"a {type(value).__name__} ({value[:40]!r}{'...' if len(value) > 40 else ''})"
    if isinstance(value, (set, frozenset)):
        return f"a {type(value).__name__} (sets have no order: use a list or an array)"
    if inspect.isgeneratorfunction(value):
        return f"the generator function {getattr(value, '__name__', '?')} (call it to get a generator)"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, dict):
        return f"a dict with keys {list(value)[:8]}"
    if inspect.isgenerator(value):
        return "a generator"
    if is_iterator(value):
        return f"an iterator of type {type(value).__name__}"
    if is_py_dataset(value):
        return f"a PyDataset ({type(value).__name__})"
    module = type(value).__module__
    qual = type(value).__qualname__ if module in (None, "builtins") else f"{module}.{type(value).__qualname__}"
    if hasattr(value, "__len__") and hasattr(value, "__getitem__"):
        return (f"an object of type {qual} with __len__ and __getitem__ that is not a PyDataset (subclass "
                f"cynet.utils.PyDataset to have fit read it batch by batch)")
    if hasattr(value, "__iter__"):
        return f"an iterable of type {qual} that is not an iterator (pass iter(...) of it, or a generator)"
    return f"an object of type {qual}"


def unsupported(name, value, what=ACCEPTED):
    """The TypeError (also a ValueError) for data of a type the adapters do not read."""
    return ArgumentTypeError(f"{name} must be {what}; received {describe(value)}")


# -------------------------------------------------------------------- structures
def _join(path, key):
    return f"{path}[{key!r}]"


def to_arrays(value, path, what=ACCEPTED):
    """`value` with every leaf as a NumPy array (ndarrays as they are, without a copy); lists,
    tuples and dicts of arrays keep their structure; None stays None."""
    if value is None or isinstance(value, np.ndarray):
        return value
    if _is_number(value):
        return np.asarray(value)
    if is_array(value):
        return np.asarray(value)
    if isinstance(value, (list, tuple)):
        if is_number_nest(value):
            try:
                return np.asarray(value)
            except ValueError as exc:
                raise ValueError(f"{path} is a nested list of numbers that NumPy cannot read as one array "
                                 f"(the rows must all have the same length): {exc}") from None
        items = [to_arrays(item, _join(path, i), what) for i, item in enumerate(value)]
        if hasattr(value, "_fields"):    # a namedtuple
            return type(value)(*items)
        return type(value)(items) if type(value) in (list, tuple) else list(items)
    if isinstance(value, collections.abc.Mapping):
        return {key: to_arrays(item, _join(path, key), what) for key, item in value.items()}
    raise unsupported(path, value, what)


def flatten_with_paths(structure, path):
    """[(path, leaf), ...] in a fixed order, None left out."""
    out = []

    def walk(value, where):
        if value is None:
            return
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, _join(where, i))
        elif isinstance(value, collections.abc.Mapping):
            for key in value:
                walk(value[key], _join(where, key))
        else:
            out.append((where, value))

    walk(structure, path)
    return out


def map_structure(fn, structure):
    """`structure` with fn applied to every leaf (None left as None), containers kept."""
    if structure is None:
        return None
    if isinstance(structure, (list, tuple)):
        items = [map_structure(fn, item) for item in structure]
        if hasattr(structure, "_fields"):
            return type(structure)(*items)
        return type(structure)(items) if type(structure) in (list, tuple) else list(items)
    if isinstance(structure, collections.abc.Mapping):
        return {key: map_structure(fn, item) for key, item in structure.items()}
    return fn(structure)


def is_nested(structure):
    return isinstance(structure, (list, tuple, collections.abc.Mapping))


def names_of(batch):
    """The names of a batch's parts: x, y, sample_weight."""
    return ("x", "y", "sample_weight")[:len(batch)]


def count_samples(leaves, where=""):
    """The common number of samples (first dimension) of [(path, array), ...], or a ValueError
    naming the arrays that disagree, with their sizes."""
    for path, leaf in leaves:
        if leaf.ndim == 0:
            raise ValueError(f"{where}{path} is a scalar (shape ()), but every array needs a leading batch axis "
                             f"(one row per sample)")
    sizes = [(path, int(leaf.shape[0])) for path, leaf in leaves]
    distinct = {size for _, size in sizes}
    if len(distinct) > 1:
        counts = collections.Counter(size for _, size in sizes)
        common = max(distinct, key=lambda s: (counts[s], -[sz for _, sz in sizes].index(s)))
        agree = [p for p, s in sizes if s == common]
        differ = ", ".join(f"{p} has {s}" for p, s in sizes if s != common)
        raise ValueError(f"{where}all arrays must have the same number of samples (first dimension): "
                         f"{', '.join(agree)} {'has' if len(agree) == 1 else 'have'} {common}, but {differ}")
    return sizes[0][1] if sizes else None


# -------------------------------------------------------------------- batches: x / (x,) / (x, y) / (x, y, sw)
def unpack_x_y_sample_weight(data):
    """(x, y, sample_weight) from `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`, with None for
    what is missing (as keras.utils.unpack_x_y_sample_weight; a list counts as a tuple)."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data
    raise ValueError(f"Data is expected to be in format `x`, `(x,)`, `(x, y)`, or `(x, y, sample_weight)`; "
                     f"received a {type(data).__name__} of {len(data)} items")


def pack_x_y_sample_weight(x, y=None, sample_weight=None):
    """The batch tuple the adapters yield: (x,), (x, y) or (x, y, sample_weight)."""
    if y is None:
        if sample_weight is not None:
            raise ValueError("sample_weight was given without targets y")
        return (x,)
    return (x, y) if sample_weight is None else (x, y, sample_weight)


# -------------------------------------------------------------------- class weights
def check_class_weight(class_weight, num_classes=None):
    """Validate {class index: weight}: non-negative integer keys (below num_classes when known),
    finite non-negative real weights."""
    if not isinstance(class_weight, collections.abc.Mapping):
        raise ArgumentTypeError(f"class_weight must be a dict {{class_index: weight}}; "
                                f"received class_weight={class_weight!r}")
    for key, value in class_weight.items():
        if not is_int(key):
            raise ArgumentTypeError(f"class_weight keys must be integer class indices; received the key {key!r}")
        if key < 0 or (num_classes is not None and key >= num_classes):
            where = "non-negative" if num_classes is None else f"in [0, {num_classes}) for the model's output"
            raise ValueError(f"class_weight keys must be class indices {where}; received the key {key!r}")
        if not is_real(value):
            raise ArgumentTypeError(f"class_weight values must be real numbers; received "
                                    f"class_weight[{key!r}]={value!r}")
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"class_weight values must be finite and non-negative; received "
                             f"class_weight[{key!r}]={value!r}")


def class_weight_to_sample_weights(y, class_weight, num_classes=None):
    """Per-sample weights (float64, shape (n,)) from class_weight {class index: weight}, as Keras:
    the class of a sample is the argmax of its one-hot (or probability) target when y has shape
    (n, classes) with classes > 1, and its rounded label otherwise ((n,) or (n, 1)); a class not in
    the dict weighs 1. Only for a single output (y one array)."""
    check_class_weight(class_weight, num_classes)
    if is_nested(y):
        raise ValueError("class_weight is only supported for models with one output (y a single array); "
                         "give sample_weight per output instead")
    y = np.asarray(y) if not isinstance(y, np.ndarray) else y
    if y.ndim == 0:
        raise ValueError("class_weight needs targets with a batch axis; received a scalar y")
    n = y.shape[0]
    if y.ndim > 2:
        raise ValueError(f"class_weight needs y of shape ({n},) or ({n}, classes); received shape {y.shape}")
    if y.ndim == 2 and y.shape[-1] > 1:
        labels = np.argmax(y, axis=-1)
    else:
        labels = y.reshape(n)
        labels = np.rint(labels) if labels.dtype.kind == "f" else labels
    table = np.ones(max([int(k) for k in class_weight] + [0]) + 1)
    for key, value in class_weight.items():
        table[int(key)] = float(value)
    labels = np.nan_to_num(labels.astype(np.float64), nan=-1.0, posinf=-1.0, neginf=-1.0).astype(np.int64) \
        if labels.dtype.kind == "f" else labels.astype(np.int64)
    inside = (labels >= 0) & (labels < table.size)
    return np.where(inside, table[np.clip(labels, 0, table.size - 1)], 1.0)


# -------------------------------------------------------------------- validation split
def train_validation_split(arrays, validation_split):
    """Split a structure of arrays (e.g. `(x, y, sample_weight)`, None allowed) into
    `(train, validation)`: the LAST `validation_split` fraction of the samples, taken before any
    shuffling, validates (as Keras). The parts are slices of the inputs (views of ndarrays, no
    copy). Raises ValueError when a part would be empty."""
    if not is_real(validation_split):
        raise ArgumentTypeError(f"validation_split must be a float in (0, 1); "
                                f"received validation_split={validation_split!r}")
    if not 0.0 < float(validation_split) < 1.0:
        raise ValueError(f"validation_split must be in (0, 1); received validation_split={validation_split!r}")
    for _, leaf in flatten_with_paths(arrays, "data"):
        if is_py_dataset(leaf) or is_iterator(leaf) or inspect.isgeneratorfunction(leaf):
            raise ArgumentTypeError(f"validation_split is only supported for NumPy arrays (or array-likes); "
                                    f"received {describe(leaf)}. Pass validation_data instead")
    what = "NumPy arrays (or array-likes / nested lists and dicts of them) for validation_split"
    if isinstance(arrays, (list, tuple)):     # (x, y, sample_weight): each part on its own
        names = names_of(arrays) if len(arrays) <= 3 else [f"data[{i}]" for i in range(len(arrays))]
        parts = [to_arrays(part, name, what) for part, name in zip(arrays, names)]
        arrays = type(arrays)(parts) if type(arrays) in (list, tuple) else tuple(parts)
        leaves = [item for part, name in zip(arrays, names) for item in flatten_with_paths(part, name)]
    else:
        arrays = to_arrays(arrays, "x", what)
        leaves = flatten_with_paths(arrays, "x")
    if not leaves:
        return arrays, arrays
    n = count_samples(leaves)
    split_at = int(math.floor(n * (1.0 - float(validation_split))))
    if split_at == 0 or split_at == n:
        raise ValueError(f"The data contain {n} samples, which is not enough to split them into a training and a "
                         f"validation set with validation_split={validation_split}: provide more data, or a "
                         f"different validation_split")
    train = map_structure(lambda a: a[:split_at], arrays)
    val = map_structure(lambda a: a[split_at:], arrays)
    return train, val


# -------------------------------------------------------------------- batches from generators and PyDatasets
class BatchChecker:
    """Standardizes one batch from a generator or a PyDataset and checks it against the first.

    A batch is `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)` (a list counts as a tuple,
    trailing Nones are dropped); its leaves become NumPy arrays. Every leaf needs a batch axis,
    all leaves the same number of samples (more than 0), and every batch the structure and the
    per-sample shapes (all but the first dimension) of the first batch checked. With
    class_weight, sample weights are added to (x, y) batches.
    """

    def __init__(self, source, class_weight=None):
        self.source = source              # "the generator", "the PyDataset"
        self.class_weight = class_weight
        self._reference = None            # (label, {path: per-sample shape})

    def __call__(self, batch, label):
        where = f"{label} of {self.source}: "
        if isinstance(batch, list):
            batch = tuple(batch)
        if not isinstance(batch, tuple):
            batch = (batch,)
        if not 1 <= len(batch) <= 3:
            raise ValueError(f"{where}a batch must be `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`; "
                             f"received a tuple of {len(batch)} items")
        while len(batch) > 1 and batch[-1] is None:
            batch = batch[:-1]
        if batch[0] is None:
            raise ValueError(f"{where}the batch has no inputs (x is None)")
        if len(batch) == 3 and batch[1] is None:
            raise ValueError(f"{where}the batch has sample weights but no targets (y is None)")
        batch = tuple(to_arrays(part, name, what="arrays (or nested lists / tuples / dicts of arrays)")
                      for part, name in zip(batch, names_of(batch)))
        if self.class_weight is not None:
            if len(batch) == 3:
                raise ValueError(f"{where}you cannot give class_weight when the batches hold sample weights")
            if len(batch) == 1:
                raise ValueError(f"{where}class_weight needs targets, but the batch is (x,) only")
            batch = batch + (class_weight_to_sample_weights(batch[1], self.class_weight),)
        leaves = [item for part, name in zip(batch, names_of(batch)) for item in flatten_with_paths(part, name)]
        n = count_samples(leaves, where)
        if n == 0:
            raise ValueError(f"{where}the batch is empty (0 samples): " +
                             ", ".join(f"{p} has shape {a.shape}" for p, a in leaves))
        shapes = {path: tuple(leaf.shape[1:]) for path, leaf in leaves}
        if self._reference is None:
            self._reference = (label, shapes)
            return batch
        first, expected = self._reference
        if shapes.keys() != expected.keys():
            missing = [p for p in expected if p not in shapes]
            extra = [p for p in shapes if p not in expected]
            parts = ([f"it lacks {', '.join(missing)}"] if missing else []) + \
                    ([f"it has {', '.join(extra)} that {first} did not have"] if extra else [])
            raise ValueError(f"{where}the batch's structure differs from that of {first}: {'; '.join(parts)}. "
                             f"Every batch must have the same structure")
        for path, shape in shapes.items():
            if shape != expected[path]:
                raise ValueError(f"{where}{path} has samples of shape {shape} (batch shape {(n,) + shape}), but "
                                 f"{first} had samples of shape {expected[path]}. Every batch must have the same "
                                 f"per-sample shapes; only the number of samples may vary")
        return batch
