"""Small Keras utilities for data tuples, symbolic tensors and vectors: `pack_x_y_sample_weight`,
`unpack_x_y_sample_weight`, `is_keras_tensor`, `get_source_inputs`, `normalize`."""
from typing import Any

import numpy as np

from .._typing import ArrayLike

__all__ = ["pack_x_y_sample_weight", "unpack_x_y_sample_weight", "is_keras_tensor", "get_source_inputs",
           "normalize"]


def pack_x_y_sample_weight(x: Any, y: Any = None, sample_weight: Any = None) -> tuple[Any, ...]:
    """The data tuple `fit` reads: `(x,)`, `(x, y)` or `(x, y, sample_weight)`.

    Args:
        x: The inputs.
        y: The targets, or None.
        sample_weight: The per-sample weights, or None.
    """
    if y is None:
        return (x,)
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def unpack_x_y_sample_weight(data: Any) -> tuple[Any, Any, Any]:
    """`(x, y, sample_weight)` from a data tuple (or list) of length 1 to 3 (missing entries None);
    anything else (an array, a dict) is `x` alone, as in Keras.

    Args:
        data: A tuple `(x,)`, `(x, y)` or `(x, y, sample_weight)`, or the inputs alone.
    """
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return (data, None, None)
    if len(data) == 1:
        return (data[0], None, None)
    if len(data) == 2:
        return (data[0], data[1], None)
    if len(data) == 3:
        return (data[0], data[1], data[2])
    raise ValueError(f"Data is expected to be in format `x`, `(x,)`, `(x, y)`, or `(x, y, sample_weight)`, "
                     f"found: {data!r}")


def is_keras_tensor(x: Any) -> bool:
    """Whether `x` is a symbolic tensor (from `cynet.Input` or a layer called on one).

    Args:
        x: Any object.
    """
    from ..graph import KerasTensor
    return isinstance(x, KerasTensor)


def get_source_inputs(tensor: Any) -> list[Any]:
    """The `Input` tensors a symbolic tensor is computed from (in the order the graph reaches them).

    Args:
        tensor: A symbolic tensor.
    """
    if not is_keras_tensor(tensor):
        raise ValueError(f"get_source_inputs expects a symbolic tensor (from cynet.Input); received {tensor!r}")
    sources: list[Any] = []
    seen: set[int] = set()
    stack = [tensor]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        node = t.node if t._keras_history is not None else None
        if node is None or node.is_input:
            sources.append(t)
        else:
            stack.extend(reversed(node.input_tensors))
    return sources


def normalize(x: ArrayLike, axis: int = -1, order: int = 2) -> np.ndarray:
    """`x` divided by its `order`-norm along `axis` (zero norms leave the values as they are).

    Args:
        x: The array to normalize (integers become float32).
        axis: The axis along which to take the norm.
        order: The order of the norm (2: Euclidean).
    """
    x = np.asarray(x)
    if x.dtype.kind not in "f":
        x = x.astype(np.float32)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis).astype(x.dtype)
