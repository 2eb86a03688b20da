"""Weight constraints with Keras 3's names, arguments, defaults and math.

A constraint is a callable ``c(w) -> array`` that projects a weight back onto an allowed set. A
layer's ``kernel_constraint`` (``bias_constraint``, ``embeddings_constraint``, ...) is stored on the
weight it creates (``Variable.constraint``); the optimizer applies it right after every update, as
Keras does: ``w <- c(w)``. Gradients are not changed.

String names, as in Keras 3: the class names and their snake_case forms ("max_norm", "non_neg",
"unit_norm", "min_max_norm"), each giving the class with its defaults; ``max_norm``, ``non_neg``,
``unit_norm`` and ``min_max_norm`` are also aliases of the classes.
"""
import numbers
from typing import Any

import numpy as np

from ._typing import ArrayLike
from .utils.serialization import from_config_dict, get_callable, lookup_class

__all__ = [
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "max_norm",
    "min_max_norm",
    "non_neg",
    "unit_norm",
    "get",
    "serialize",
    "deserialize",
]

_EPSILON = 1e-7   # Keras's backend.epsilon(): added to the norms the weights are divided by


def _real(name, value):
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise ValueError(f"Invalid value for argument {name}: expected a real number. Received: {name}={value!r}")
    return value


def _axis(value):
    """An int or a list/tuple of ints (Keras's `axis`), kept as given so configs round-trip."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in items):
        raise ValueError(f"Invalid value for argument axis: expected an int or a list of ints. "
                         f"Received: axis={value!r}")
    return list(value) if isinstance(value, (list, tuple)) else int(value)


def _as_float_array(w):
    w = np.asarray(w)
    return w if np.issubdtype(w.dtype, np.floating) else w.astype(np.float32)


class Constraint:
    """Base class of weight constraints: the identity projection.

    Subclasses override `__call__(w)`, returning the projected weight (an array of `w`'s shape),
    and `get_config()` when they take arguments.
    """

    def __call__(self, w: ArrayLike) -> np.ndarray:
        """The projection of `w` (here `w` itself).

        Args:
            w: The weight's current value.
        """
        return np.asarray(w)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-serializable."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Constraint":
        """A constraint from `get_config()`'s dict.

        Args:
            config: The dictionary `get_config()` returned.
        """
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _NormConstraint(Constraint):
    """The norms constraints share: the L2 norms of `w` along `axis` (kept as axes of size 1)."""

    def __init__(self, axis: Any = 0) -> None:
        self.axis = _axis(axis)

    def _norms(self, w):
        axis = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))


class MaxNorm(_NormConstraint):
    """Scales the weight vectors along `axis` whose L2 norm exceeds `max_value` down to it:
    `w * clip(norm, 0, max_value) / (epsilon + norm)`.

    Args:
        max_value: The largest norm allowed for the weights incident to one unit.
        axis: The axis (or list of axes) the norms are taken over: 0 for a Dense kernel
            `(input_dim, units)` (one norm per unit), `[0, 1, 2]` for a Conv2D kernel.
    """

    def __init__(self, max_value: float = 2, axis: Any = 0) -> None:
        super().__init__(axis)
        self.max_value = _real("max_value", max_value)

    def __call__(self, w: ArrayLike) -> np.ndarray:
        w = _as_float_array(w)
        norms = self._norms(w)
        return w * (np.clip(norms, 0, self.max_value) / (_EPSILON + norms)).astype(w.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": self.axis}


class MinMaxNorm(_NormConstraint):
    """Moves the norms along `axis` towards `[min_value, max_value]`: the new norm is
    `rate * clip(norm, min_value, max_value) + (1 - rate) * norm`.

    Args:
        min_value: The smallest norm allowed.
        max_value: The largest norm allowed.
        rate: How far to move at each step (1.0: all the way, strict enforcement).
        axis: The axis (or list of axes) the norms are taken over (see `MaxNorm`).
    """

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: Any = 0) -> None:
        super().__init__(axis)
        self.min_value = _real("min_value", min_value)
        self.max_value = _real("max_value", max_value)
        self.rate = _real("rate", rate)

    def __call__(self, w: ArrayLike) -> np.ndarray:
        w = _as_float_array(w)
        norms = self._norms(w)
        desired = self.rate * np.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return w * (desired / (_EPSILON + norms)).astype(w.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


class NonNeg(Constraint):
    """Sets the negative weights to zero."""

    def __call__(self, w: ArrayLike) -> np.ndarray:
        w = _as_float_array(w)
        return np.maximum(w, w.dtype.type(0))


class UnitNorm(_NormConstraint):
    """Scales the weight vectors along `axis` to unit L2 norm: `w / (epsilon + norm)`.

    Args:
        axis: The axis (or list of axes) the norms are taken over (see `MaxNorm`).
    """

    def __call__(self, w: ArrayLike) -> np.ndarray:
        w = _as_float_array(w)
        return w / (_EPSILON + self._norms(w)).astype(w.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}


# Keras 3's lower-case names are the classes themselves.
max_norm = MaxNorm
min_max_norm = MinMaxNorm
non_neg = NonNeg
unit_norm = UnitNorm

_REGISTRY: dict[str, type] = {}
for _cls in (Constraint, MaxNorm, MinMaxNorm, NonNeg, UnitNorm):
    _REGISTRY[_cls.__name__] = _cls
_REGISTRY.update({"constraint": Constraint, "max_norm": MaxNorm, "min_max_norm": MinMaxNorm, "non_neg": NonNeg,
                  "unit_norm": UnitNorm})
del _cls


def _lookup(name, custom_objects):
    return lookup_class("constraint", name, _REGISTRY, custom_objects)


def serialize(constraint: Any) -> Any:
    """``{"class_name": ..., "config": {...}}`` for a Constraint instance; None -> None.

    Args:
        constraint: A Constraint instance, or None.
    """
    if constraint is None:
        return None
    if not isinstance(constraint, Constraint):
        raise ValueError(f"Cannot serialize {constraint!r}: only cynet.constraints.Constraint instances can be "
                         "serialized (a plain function has no config).")
    return {"class_name": type(constraint).__name__, "config": constraint.get_config()}


def deserialize(config: Any, custom_objects: dict[str, Any] | None = None) -> Any:
    """Build a constraint from ``serialize``'s dict (or a name).

    Names resolve through cynet's classes, then ``custom_objects`` given by the caller; Keras's
    extra keys ("module", "registered_name") are ignored.

    Args:
        config: The dictionary `serialize()` returned, or a name.
        custom_objects: Optional dict mapping names to custom classes used while deserializing.
    """
    if isinstance(config, str):
        config = {"class_name": config, "config": {}}
    return from_config_dict("constraint", config, lambda name: _lookup(name, custom_objects))


def get(identifier: Any) -> Any:
    """A constraint from None (-> None), a name, a config dict, a class, an instance or a callable.

    Args:
        identifier: A name (string), a config dictionary, a class, an instance, a callable, or `None`.
    """
    return get_callable("constraint", identifier, deserialize)
