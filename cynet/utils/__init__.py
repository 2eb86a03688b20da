"""Utilities: random seeds, label encoding, sequence padding, timeseries windows, progress bars,
training-curve plots, clear_session."""
import gc

import numpy as np

from .._typing import ArrayLike
from .data_utils import (  # noqa: F401
    get_source_inputs,
    is_keras_tensor,
    normalize,
    pack_x_y_sample_weight,
    unpack_x_y_sample_weight,
)
from .dataset_utils import split_dataset  # noqa: F401
from .file_utils import get_file  # noqa: F401
from ..saving_objects import deserialize_keras_object, serialize_keras_object  # noqa: F401
from .py_dataset import PyDataset, Sequence  # noqa: F401
from .rng import set_random_seed  # noqa: F401
from .sequence_utils import pad_sequences  # noqa: F401
from .serialization import (  # noqa: F401  (also cynet.saving's)
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
)


def to_categorical(x: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """One-hot encode integer class labels (Keras semantics): shape (..., num_classes), float32.

    A trailing axis of size 1 is dropped first, as in Keras.

    Args:
        x: Input array.
        num_classes: Number of classes.
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


def clear_session(free_memory: bool = True) -> None:
    """Resets the global state cynet keeps, as Keras's `clear_session` (also
    `cynet.backend.clear_session`).

    Auto-generated names restart (the next Dense is "dense" again), and every cache cynet holds
    is released: the recurrent kernels' scratch buffers of every thread (not only the calling
    one), every optimizer's scratch buffers (rebuilt at its next step), and the blocks the
    caching allocator keeps during fit/evaluate/predict (it goes on caching if one is running).
    Models, layers, weights and optimizer state are untouched. It is safe while other threads
    train or predict: a running kernel keeps the buffers it is using, later calls allocate
    them again.

    Args:
        free_memory: also run Python's garbage collector first (so models that are no longer
            referenced are freed), and then ask malloc to return its free memory to the system
            (glibc's malloc_trim). It may take a moment; pass False in a tight loop.
    """
    from .._kernels import scratch
    from ..kernels._backend import _compiled
    from ..layers.base import reset_name_counts

    reset_name_counts()
    if free_memory:
        gc.collect()
    scratch.release()        # the recurrent kernels' and the optimizers' scratch
    memory = _compiled.get("_memory")
    if memory is not None:
        memory.trim(system=bool(free_memory))


from .plotting import plot_history  # noqa: E402,F401
from .progbar import Progbar  # noqa: E402,F401
from .timeseries_dataset_utils import timeseries_dataset_from_array  # noqa: E402,F401
