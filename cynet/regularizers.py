"""Weight regularizers with Keras 3's names, arguments, defaults and math.

A regularizer is a callable ``reg(x) -> float`` penalty that the model adds to its loss; cynet's
regularizers also give ``reg.gradient(x)``, d(penalty)/dx with x's shape and dtype, which the
layers add to the weight gradients. ``get``, ``serialize`` and ``deserialize`` resolve names
through a closed registry of cynet's own classes (plus ``custom_objects`` passed explicitly).

String names, as in Keras 3: "l1" -> L1(0.01), "l2" -> L2(0.01), "L1L2"/"l1l2" -> L1L2() (no
penalty), "l1_l2" -> L1L2(l1=0.01, l2=0.01) (the defaults Keras documents for that string),
"orthogonal_regularizer" -> OrthogonalRegularizer(). ``l1``, ``l2``, ``l1_l2`` and
``orthogonal_regularizer`` are aliases of the classes, as in Keras 3 (so ``l1_l2()`` has l1 = l2 = 0).
"""
import math
import numbers
from typing import Any

import numpy as np

from ._typing import ArrayLike
from .utils.serialization import from_config_dict, get_callable, lookup_class

__all__ = [
    "Regularizer",
    "L1",
    "L2",
    "L1L2",
    "OrthogonalRegularizer",
    "l1",
    "l2",
    "l1_l2",
    "orthogonal_regularizer",
    "get",
    "serialize",
    "deserialize",
]


def _factor(value, name):
    """Keras's validate_float_arg: a finite, non-negative real number."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if (
        isinstance(value, bool)
        or not isinstance(value, (numbers.Real, np.integer, np.floating))
        or not math.isfinite(float(value))
        or value < 0
    ):
        raise ValueError(
            f"Invalid value for argument {name}: expected a non-negative finite float. Received: {name}={value!r}"
        )
    return float(value)


def _as_float_array(x):
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    return x


class Regularizer:
    """Base class. Subclasses implement ``__call__(x) -> float``, ``gradient(x) -> ndarray`` and
    ``get_config()``; ``from_config(config)`` defaults to ``cls(**config)``."""

    def __call__(self, x: ArrayLike) -> float:
        return 0.0

    def gradient(self, x: ArrayLike) -> np.ndarray:
        """d(penalty)/dx, same shape and dtype as x.

        Args:
            x: Input array.
        """
        if type(self).__call__ is not Regularizer.__call__:
            raise NotImplementedError(
                f"{type(self).__name__} defines a penalty but not its gradient(); "
                "cynet needs gradient(x) to train with a regularizer."
            )
        return np.zeros_like(_as_float_array(x))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Regularizer":
        """An instance built from `get_config()`'s dictionary.

        Args:
            config: The dictionary `get_config()` returned.
        """
        return cls(**config)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments of this object, JSON-serializable, so that `from_config` rebuilds it."""
        raise NotImplementedError(f"{self} does not implement get_config()")

    def __repr__(self):
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """penalty = l1 * sum(|x|) + l2 * sum(x**2).

    Args:
        l1: L1 regularization factor.
        l2: L2 regularization factor.
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        # None means 0 (Keras); the string "l1_l2" uses 0.01 for both (see get()).
        self.l1 = _factor(0.0 if l1 is None else l1, "l1")
        self.l2 = _factor(0.0 if l2 is None else l2, "l2")

    def __call__(self, x: ArrayLike) -> float:
        x = _as_float_array(x)
        penalty = 0.0
        if self.l1:
            penalty += float(x.dtype.type(self.l1) * np.sum(np.abs(x)))
        if self.l2:
            penalty += float(x.dtype.type(self.l2) * np.sum(np.square(x)))
        return penalty

    def gradient(self, x: ArrayLike) -> np.ndarray:
        x = _as_float_array(x)
        g = np.zeros_like(x)
        if self.l1:
            g += x.dtype.type(self.l1) * np.sign(x)
        if self.l2:
            g += x.dtype.type(2.0 * self.l2) * x
        return g

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """penalty = l1 * sum(|x|); gradient l1 * sign(x) (0 at 0).

    Args:
        l1: L1 regularization factor.
    """

    def __init__(self, l1: float = 0.01) -> None:
        self.l1 = _factor(0.01 if l1 is None else l1, "l1")

    def __call__(self, x: ArrayLike) -> float:
        x = _as_float_array(x)
        return float(x.dtype.type(self.l1) * np.sum(np.abs(x)))

    def gradient(self, x: ArrayLike) -> np.ndarray:
        x = _as_float_array(x)
        return x.dtype.type(self.l1) * np.sign(x)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


class L2(Regularizer):
    """penalty = l2 * sum(x**2); gradient 2 * l2 * x.

    Args:
        l2: L2 regularization factor.
    """

    def __init__(self, l2: float = 0.01) -> None:
        self.l2 = _factor(0.01 if l2 is None else l2, "l2")

    def __call__(self, x: ArrayLike) -> float:
        x = _as_float_array(x)
        return float(x.dtype.type(self.l2) * np.sum(np.square(x)))

    def gradient(self, x: ArrayLike) -> np.ndarray:
        x = _as_float_array(x)
        return x.dtype.type(2.0 * self.l2) * x

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


_NORM_EPSILON = 1e-7  # Keras's backend.epsilon(), the floor of the row/column norms


class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (``mode="rows"``) or columns (``mode="columns"``) of a 2-D weight towards
    orthogonality.

    With N the L2-normalized rows (columns) (norms floored at 1e-7) and P = N N^T (N^T N) of size
    s x s: penalty = factor * 0.5 * sum_{i != j} |P_ij| / (s (s - 1) / 2). For s < 2 there are no
    pairs and the penalty is 0 (Keras divides 0 by 0 there and returns nan).

    Args:
        factor: Regularization factor.
        mode: `"rows"` or `"columns"`: which vectors are made orthogonal.
    """

    def __init__(self, factor: float = 0.01, mode: str = "rows") -> None:
        self.factor = _factor(factor, "factor")
        if mode not in ("rows", "columns"):
            raise ValueError(
                f'Invalid value for argument `mode`. Expected one of {{"rows", "columns"}}. Received: mode={mode!r}'
            )
        self.mode = mode

    def _prepare(self, x):
        x = _as_float_array(x)
        if x.ndim != 2:
            raise ValueError(f"Inputs to OrthogonalRegularizer must have rank 2. Received: inputs.shape={x.shape}")
        v = x.astype(np.float64)
        if self.mode == "columns":
            v = v.T
        norms = np.sqrt(np.sum(v * v, axis=1, keepdims=True))
        denom = np.maximum(norms, _NORM_EPSILON)
        n = v / denom
        p = n @ n.T
        np.fill_diagonal(p, 0.0)
        return x, n, p, norms, denom

    def __call__(self, x: ArrayLike) -> float:
        x, n, p, _, _ = self._prepare(x)
        size = n.shape[0]
        if size < 2:
            return 0.0
        num_pairs = size * (size - 1) / 2.0
        return float(x.dtype.type(self.factor * 0.5 * np.sum(np.abs(p)) / num_pairs))

    def gradient(self, x: ArrayLike) -> np.ndarray:
        x, n, p, norms, denom = self._prepare(x)
        size = n.shape[0]
        if size < 2:
            return np.zeros_like(x)
        c = self.factor * 0.5 / (size * (size - 1) / 2.0)
        # dL/dP = c * sign(P) off the diagonal (symmetric), so dL/dN = 2 c sign(P) N.
        gn = 2.0 * c * (np.sign(p) @ n)
        # Back through n = v / max(||v||, eps): projected and divided by the norm where the norm
        # is above the floor, divided by eps where the floor is active.
        above = norms > _NORM_EPSILON
        gv = np.where(above, (gn - np.sum(gn * n, axis=1, keepdims=True) * n) / denom, gn / _NORM_EPSILON)
        if self.mode == "columns":
            gv = gv.T
        return gv.astype(x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"factor": self.factor, "mode": self.mode}


# Keras 3 exports the classes under these lower-case names too.
l1 = L1
l2 = L2
l1_l2 = L1L2
orthogonal_regularizer = OrthogonalRegularizer


_CLASSES = (Regularizer, L1, L2, L1L2, OrthogonalRegularizer)
_REGISTRY = {}
for _cls in _CLASSES:
    _REGISTRY[_cls.__name__] = _cls
_REGISTRY.update(
    {"regularizer": Regularizer, "l1": L1, "l2": L2, "l1l2": L1L2, "orthogonal_regularizer": OrthogonalRegularizer}
)
del _cls

# Names that make an instance with arguments other than the class defaults.
_PRESETS = {"l1_l2": lambda: L1L2(l1=0.01, l2=0.01)}


def _valid_names():
    return ", ".join(sorted([*_REGISTRY, *_PRESETS]))


def _lookup(name, custom_objects):
    return lookup_class("regularizer", name, _REGISTRY, custom_objects, fallback={"l1_l2": L1L2},
                        valid=_valid_names)


def serialize(regularizer: Any) -> Any:
    """``{"class_name": ..., "config": {...}}`` for a Regularizer instance; None -> None.

    Args:
        regularizer: A regularizer (instance or name).
    """
    if regularizer is None:
        return None
    if not isinstance(regularizer, Regularizer):
        raise ValueError(
            f"Cannot serialize {regularizer!r}: only cynet.regularizers.Regularizer instances can be "
            "serialized (a plain function has no config)."
        )
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Any:
    """Build a regularizer from ``serialize``'s dict (or a registered name).

    Names resolve through cynet's registry, then ``custom_objects`` (a dict name -> class) given
    by the caller; Keras's extra keys ("module", "registered_name") are ignored.

    Args:
        config: The dictionary `get_config()` returned.
        custom_objects: Optional dict mapping names to custom classes or functions used while deserializing.
    """
    if isinstance(config, str):
        if config in _PRESETS and not (custom_objects and config in custom_objects):
            return _PRESETS[config]()
        config = {"class_name": config, "config": {}}
    return from_config_dict("regularizer", config, lambda name: _lookup(name, custom_objects))


def get(identifier: Any) -> Any:
    """A regularizer from None (-> None), a name, a config dict, a class, an instance or a callable.

    Args:
        identifier: A name (string), a config dictionary, an instance, a callable, or `None`.
    """
    return get_callable("regularizer", identifier, deserialize)
