"""Utilities: random seeds, label encoding, progress bars, training-curve plots."""
import numpy as np

from .py_dataset import PyDataset, Sequence  # noqa: F401
from .rng import set_random_seed  # noqa: F401
from .serialization import (  # noqa: F401  (also cynet.saving's)
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
)


def to_categorical(x, num_classes=None):
    """One-hot encode integer class labels (Keras semantics): shape (..., num_classes), float32.

    A trailing axis of size 1 is dropped first, as in Keras.
    """
    x = np.asarray(x)
    if x.dtype.kind == "f":
        if not np.all(np.isfinite(x)) or np.any(x != np.round(x)):
            raise ValueError("x must hold integer class labels")
    elif x.dtype.kind not in "iub":
        raise TypeError(f"x must hold integer class labels; received dtype {x.dtype}")
    x = x.astype(np.int64)
    if x.ndim > 1 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.size and x.min() < 0:
        raise ValueError(f"class labels must be non-negative; received {x.min()}")
    if num_classes is None:
        num_classes = int(x.max()) + 1 if x.size else 0
    elif x.size and x.max() >= num_classes:
        raise ValueError(f"class labels must be < num_classes={num_classes}; received {x.max()}")
    out = np.zeros(x.shape + (num_classes,), dtype=np.float32)
    np.put_along_axis(out, x[..., None], 1.0, axis=-1)
    return out


from .plotting import plot_history  # noqa: E402,F401
from .progbar import Progbar  # noqa: E402,F401
