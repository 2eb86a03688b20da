"""Symbolic tensors and nodes: what `keras.Input` returns and what calling a layer on it records.

`Input(shape=...)` makes a `KerasTensor` (shape with the batch axis None, dtype, name) produced by
an `InputLayer`. Calling a layer on KerasTensors runs no arithmetic: the layer is built for the
input shapes, its output shapes come from `compute_output_shape` (shape errors are raised there,
naming the layer), and a `Node` records the call: which layer, on which tensors, with which
arguments, giving which tensors. A Functional model walks the nodes from its outputs back to its
inputs and runs them in topological order (Keras 3: keras/src/ops/node.py, models/functional.py).
"""
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ._validation import is_real


class KerasTensor:
    """A symbolic tensor: shape (batch axis first, None where unknown), dtype, name, and the node
    that made it (`_keras_history`: (layer, node index, tensor index))."""

    __array_priority__ = 100

    def __init__(self, shape: Sequence[int | None], dtype: Any = "float32", name: str | None = None,
                 history: tuple[Any, int, int] | None = None) -> None:
        self.shape = tuple(None if s is None else int(s) for s in shape)
        self.dtype = "string" if dtype == "string" else np.dtype(dtype).name
        self.name = name
        self._keras_history: Any = history

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def node(self) -> "Node":
        layer, node_index, _ = self._keras_history
        return layer._inbound_nodes[node_index]

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"{self!r} is symbolic (from keras.Input): it has no value. Build a model with "
                        "keras.Model(inputs, outputs) and call or fit that model on arrays")

    def __bool__(self):
        raise TypeError(f"{self!r} is symbolic: it has no truth value (Python `if` on it cannot be traced)")

    def __len__(self):
        raise TypeError(f"{self!r} is symbolic: use .shape")

    def __iter__(self):
        raise TypeError(f"{self!r} is symbolic: it cannot be iterated")

    # Operators become layers, as in Keras (each is a node of the graph).
    def __add__(self, other):
        return _binary("add", self, other)

    def __radd__(self, other):
        return _binary("add", other, self)

    def __sub__(self, other):
        return _binary("subtract", self, other)

    def __rsub__(self, other):
        return _binary("subtract", other, self)

    def __mul__(self, other):
        return _binary("multiply", self, other)

    def __rmul__(self, other):
        return _binary("multiply", other, self)

    def __truediv__(self, other):
        if is_symbolic(other):
            raise NotImplementedError("dividing by a symbolic tensor is not supported yet (it comes with "
                                      "cynet.ops); multiply by a constant, or use a layer")
        return _binary("multiply", self, 1.0 / _scalar(other))

    def __neg__(self):
        return _binary("multiply", self, -1.0)

    def __getitem__(self, key):
        from .layers.tensor_ops import GetItem
        return GetItem(key, dtype=_float_dtype(self))(self)

    __hash__ = object.__hash__


def _scalar(value):
    if not is_real(value):
        raise TypeError(f"arithmetic on a symbolic tensor takes another symbolic tensor or a real number; "
                        f"received {type(value).__name__}")
    return float(value)


def _float_dtype(*tensors):
    """The layer dtype of an operator on these tensors: theirs when float (operators keep the
    dtype, as Keras ops do), else the default."""
    kinds = [np.dtype(t.dtype) for t in tensors if is_symbolic(t) and np.dtype(t.dtype).kind == "f"]
    return np.result_type(*kinds).name if kinds else None


def _binary(op, a, b):
    from .layers import merging, tensor_ops
    dtype = _float_dtype(a, b)
    if is_symbolic(a) and is_symbolic(b):
        cls = {"add": merging.Add, "subtract": merging.Subtract, "multiply": merging.Multiply}[op]
        return cls(dtype=dtype)([a, b])
    if is_symbolic(a):
        return tensor_ops.ScalarOp(op, _scalar(b), dtype=dtype)(a)
    return tensor_ops.ScalarOp("r" + op if op == "subtract" else op, _scalar(a), dtype=dtype)(b)


def is_symbolic(x: Any) -> bool:
    return isinstance(x, KerasTensor)


def flatten(structure: Any) -> list[Any]:
    """The leaves of a nested structure of lists, tuples and dicts (dicts in key order as given)."""
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    if isinstance(structure, dict):
        return [leaf for item in structure.values() for leaf in flatten(item)]
    return [structure]


def map_structure(fn: Callable[[Any], Any], structure: Any) -> Any:
    if isinstance(structure, (list, tuple)):
        return type(structure)(map_structure(fn, item) for item in structure)
    if isinstance(structure, dict):
        return {k: map_structure(fn, v) for k, v in structure.items()}
    return fn(structure)


def pack_like(structure: Any, flat: Iterable[Any]) -> Any:
    """`flat` (a sequence of leaves) in the shape of `structure`."""
    it = iter(flat)
    return map_structure(lambda _: next(it), structure)


def flatten_shapes(shapes: Any) -> list[tuple[int | None, ...]]:
    """A shape (tuple of sizes) or a list of shapes, as a list of shapes."""
    return [shapes] if isinstance(shapes, tuple) else [s for item in shapes for s in flatten_shapes(item)]


def any_symbolic(structure: Any) -> bool:
    return any(isinstance(leaf, KerasTensor) for leaf in flatten(structure))


class Node:
    """One call of a layer on symbolic tensors.

    arguments: the call's input structure (KerasTensors, possibly nested); kwargs: its other
    arguments; outputs: the flat list of KerasTensors it returned (their `_keras_history` points
    here); output_structure: how they nest.
    """

    def __init__(self, layer: Any, arguments: Any, kwargs: dict[str, Any], outputs: Any) -> None:
        self.layer = layer
        self.arguments = arguments
        self.kwargs = dict(kwargs)
        # the tensors the call reads: its arguments' and its keyword arguments' (a recurrent
        # layer's symbolic initial_state), so that the model runs their nodes first
        self.input_tensors = [t for t in flatten([arguments, self.kwargs]) if isinstance(t, KerasTensor)]
        self.output_structure = outputs
        self.outputs = flatten(outputs)
        index = len(layer._inbound_nodes)
        layer._inbound_nodes.append(self)
        for i, t in enumerate(self.outputs):
            t._keras_history = (layer, index, i)

    @property
    def parent_nodes(self) -> "list[Node]":
        return [t.node for t in self.input_tensors]

    @property
    def is_input(self) -> bool:
        return not self.input_tensors
