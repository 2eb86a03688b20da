"""Weight initializers with Keras 3's names, arguments, defaults and math.

Every initializer is a callable ``init(shape, dtype=None) -> np.ndarray`` of that shape and dtype
(default float32), with ``get_config()`` / ``from_config()`` / ``clone()``. ``get``, ``serialize``
and ``deserialize`` resolve names through a closed registry of cynet's own classes (plus the
``custom_objects`` a caller passes explicitly); nothing is ever imported by name.

Seeding (mirrors Keras 3, see ``keras/src/initializers/random_initializers.py``):

- ``seed=<int>``: every call of the instance returns the same values for the same shape.
- ``seed=None`` (default): at construction the instance draws an integer seed from cynet's global
  generator (``cynet.utils.rng.make_rng(None)``) and then behaves as if seeded with it: the same
  instance returns the same values on every call, two instances differ, and calling
  ``cynet.utils.set_random_seed(s)`` before constructing the initializers reproduces them. (Keras
  draws the default seed from Python's ``random`` in the same way.) Because of this, do not share
  one unseeded instance between several weights that should differ: use ``clone()`` (which draws
  a new default seed) or ``get(name)`` for each weight, as Keras's own layers do.
- ``seed=<numpy.random.Generator>`` (cynet's counterpart of ``keras.random.SeedGenerator``): every
  call advances the generator and returns fresh values. Such a seed is not serializable; the
  config records ``seed=None``.

Random values are drawn in float64 and then cast, so one seed gives the same numbers (up to
rounding) in float16, float32 and float64.
"""
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._typing import DTypeLike, Shape
from .utils.rng import make_rng
from .utils.serialization import from_config_dict, get_callable, lookup_class

__all__ = [
    "Initializer",
    "Constant",
    "Zeros",
    "Ones",
    "Identity",
    "IdentityInitializer",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "GlorotUniform",
    "GlorotNormal",
    "HeUniform",
    "HeNormal",
    "LecunUniform",
    "LecunNormal",
    "Orthogonal",
    "OrthogonalInitializer",
    "compute_fans",
    "get",
    "serialize",
    "deserialize",
]

# Stddev of a standard normal truncated to [-2, 2]; dividing by it makes the truncated
# distribution's stddev equal to the requested one (Keras's constant).
_TRUNCATION_STDDEV = 0.87962566103423978


# --------------------------------------------------------------------------- helpers


def _standardize_dtype(dtype):
    if dtype is None:
        return np.dtype(np.float32)
    try:
        return np.dtype(dtype)
    except TypeError:
        raise ValueError(f"Invalid dtype: expected a NumPy dtype or its name; received dtype={dtype!r}") from None


def _float_dtype(dtype, who):
    dtype = _standardize_dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"{who} can only produce floating-point values; received dtype={dtype.name!r}")
    return dtype


def _standardize_shape(shape):
    if isinstance(shape, (numbers.Integral, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"shape must be a tuple of non-negative ints; received shape={shape!r}") from None
    out = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (numbers.Integral, np.integer)) or d < 0:
            raise ValueError(f"shape must be a tuple of non-negative ints; received shape={shape!r}")
        out.append(int(d))
    return tuple(out)


def _number(value, name, *, minimum=None, strict=False):
    """A finite real number as float; optionally >= minimum (> minimum when strict)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise ValueError(f"Argument `{name}` must be a real number; received {name}={value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"Argument `{name}` must be finite; received {name}={value!r}")
    if minimum is not None:
        if strict and not value > minimum:
            raise ValueError(f"Argument `{name}` must be > {minimum}; received {name}={value!r}")
        if not strict and not value >= minimum:
            raise ValueError(f"Argument `{name}` must be >= {minimum}; received {name}={value!r}")
    return value


def _check_seed(seed):
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.integer)) or seed < 0:
        raise ValueError(
            "Argument `seed` must be None, a non-negative int or a numpy.random.Generator; "
            f"received seed={seed!r}"
        )
    return int(seed)


def _truncated_standard_normal(rng, shape):
    """Standard normal draws, each one outside [-2, 2] re-drawn until it falls inside."""
    z = rng.standard_normal(shape)
    bad = np.flatnonzero(np.abs(z) > 2.0)
    flat = z.reshape(-1)
    while bad.size:
        flat[bad] = rng.standard_normal(bad.size)
        bad = bad[np.abs(flat[bad]) > 2.0]
    return z


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shape, as Keras computes them.

    () -> (1, 1); (n,) -> (n, n); (in, out) -> (in, out); conv kernels (..., in, out) ->
    (in * rf, out * rf) with receptive field rf = prod(shape[:-2]).

    Args:
        shape: Shape of the variable, a tuple of ints.
    """
    shape = tuple(shape)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return int(shape[0]), int(shape[0])
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    rf = 1
    for d in shape[:-2]:
        rf *= int(d)
    return int(shape[-2]) * rf, int(shape[-1]) * rf


# --------------------------------------------------------------------------- base classes


class Initializer:
    """Base class: subclasses implement ``__call__(shape, dtype=None)`` and ``get_config()``."""

    def __call__(self, shape: Shape, dtype: DTypeLike | None = None) -> np.ndarray:
        raise NotImplementedError("Initializer subclasses must implement the `__call__()` method.")

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments of this object, JSON-serializable, so that `from_config` rebuilds it."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Initializer":
        """An instance built from `get_config()`'s dictionary.

        Args:
            config: The dictionary `get_config()` returned.
        """
        return cls(**config)

    def clone(self) -> "Initializer":
        """A new instance with the same config (an unseeded one draws a new default seed)."""
        return self.__class__.from_config(self.get_config())

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class RandomInitializer(Initializer):
    """Base of the random initializers: holds and validates ``seed`` (see the module docstring)."""

    def __init__(self, seed=None):
        seed = _check_seed(seed)
        self._init_seed = seed
        if seed is None:
            # Keras: seed = random.make_default_seed() at construction.
            seed = int(make_rng(None).integers(1, 2**31 - 1))
        self.seed = seed

    def _rng(self):
        return make_rng(self.seed)

    def get_config(self) -> dict[str, Any]:
        seed = self._init_seed
        return {"seed": seed if isinstance(seed, int) else None}


# --------------------------------------------------------------------------- constants


class Constant(Initializer):
    """Fills the tensor with ``value`` (a scalar, or an array-like that broadcasts to the shape).

    Args:
        value: Initial value of the variable.
    """

    def __init__(self, value: Any = 0.0) -> None:
        arr = np.asarray(value)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise ValueError(f"Argument `value` must be a number or an array of numbers; received value={value!r}")
        self.value = value

    def __call__(self, shape: Shape, dtype: DTypeLike | None = None) -> np.ndarray:
        shape = _standardize_shape(shape)
        dtype = _standardize_dtype(dtype)
        arr = np.asarray(self.value)
        try:
            return np.array(np.broadcast_to(arr, shape), dtype=dtype)
        except ValueError:
            raise ValueError(
                f"Constant value of shape {arr.shape} cannot be broadcast to the requested shape {shape}"
            ) from None

    def get_config(self) -> dict[str, Any]:
        value = self.value
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, np.generic):
            value = value.item()
        return {"value": value}


class Zeros(Initializer):
    """Fills the tensor with 0 (any numeric or bool dtype)."""

    def __call__(self, shape: Shape, dtype: DTypeLike | None = None) -> np.ndarray:
        return np.zeros(_standardize_shape(shape), dtype=_standardize_dtype(dtype))


class Ones(Initializer):
    """Fills the tensor with 1 (any numeric or bool dtype)."""

    def __call__(self, shape: Shape, dtype: DTypeLike | None = None) -> np.ndarray:
        return np.ones(_standardize_shape(shape), dtype=_standardize_dtype(dtype))


class Identity(Initializer):
    """``gain`` times the (possibly rectangular) identity matrix; 2-D shapes only.

    Args:
        gain: Multiplicative factor applied to the matrix.
    """

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = _number(gain, "gain")

    def __call__(self, shape: Shape, dtype: DTypeLike | None = None) -> np.ndarray:
        shape = _standardize_shape(shape)
        if len(shape) != 2:
            raise ValueError(
                "Identity matrix initializer can only be used for 2D matrices. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        dtype = _standardize_dtype(dtype)
        return (self.gain * np.eye(*shape)).astype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain}


IdentityInitializer = Identity


# --------------------------------------------------------------------------- random


class RandomNormal(RandomInitializer):
    """Normal draws with ``mean`` and ``stddev``.

    Args:
        mean: Mean of the values.
        stddev: Standard deviation of the values.
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        self.mean = _number(mean, "mean")
        self.stddev = _number(stddev, "stddev", minimum=0.0)
        super().__init__(seed=seed)

    def __call__(self, shape: Shape, dtype: DTypeLike | None = None) -> np.ndarray:
        shape = _standardize_shape(shape)
        dtype = _float_dtype(dtype, type(self).__name__)
        z = self._rng().standard_normal(shape)
        return (self.mean + self.stddev * z).astype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class TruncatedNormal(RandomInitializer):
    """Normal draws with ``mean`` and ``stddev``; values more than 2 stddev from the mean are
    re-drawn (so the result's own stddev is about 0.88 * stddev).

    Args:
        mean: Mean of the values.
        stddev: Standard deviation of the values.
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        self.mean = _number(mean, "mean")
        self.stddev = _number(stddev, "stddev", minimum=0.0)
        super().__init__(seed=seed)

    def __call__(self, shape: Shape, dtype: DTypeLike | None = None) -> np.ndarray:
        shape = _standardize_shape(shape)
        dtype = _float_dtype(dtype, type(self).__name__)
        z = _truncated_standard_normal(self._rng(), shape)
        return (self.mean + self.stddev * z).astype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class RandomUniform(RandomInitializer):
    """Uniform draws in ``[minval, maxval)``.

    Args:
        minval: Lower bound of the values.
        maxval: Upper bound of the values.
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
    """

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None) -> None:
        self.minval = _number(minval, "minval")
        self.maxval = _number(maxval, "maxval")
        if self.minval > self.maxval:
            raise ValueError(
                f"Argument `minval` must be <= `maxval`; received minval={minval!r}, maxval={maxval!r}"
            )
        super().__init__(seed=seed)

    def __call__(self, shape: Shape, dtype: DTypeLike | None = None) -> np.ndarray:
        shape = _standardize_shape(shape)
        dtype = _float_dtype(dtype, type(self).__name__)
        return self._rng().uniform(self.minval, self.maxval, shape).astype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "minval": self.minval, "maxval": self.maxval}


_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")


class VarianceScaling(RandomInitializer):
    """Draws with variance ``scale / n``, n = fan_in, fan_out or their mean (``mode``).

    ``distribution="truncated_normal"`` (alias ``"normal"``): truncated normal whose stddev after
    truncation is sqrt(scale / n); ``"untruncated_normal"``: normal with that stddev;
    ``"uniform"``: uniform in [-limit, limit], limit = sqrt(3 * scale / n). Fans follow
    ``compute_fans`` and n is at least 1.

    Args:
        scale: Scaling factor (positive).
        mode: `"fan_in"`, `"fan_out"` or `"fan_avg"`: which fan the variance is divided by.
        distribution: `"truncated_normal"`, `"untruncated_normal"` or `"uniform"`.
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
    """

    def __init__(self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal",
                 seed: int | None = None) -> None:
        scale = _number(scale, "scale", minimum=0.0, strict=True)
        if mode not in _MODES:
            raise ValueError(f"Invalid `mode` argument: {mode!r}. Please use one of {list(_MODES)}")
        if not isinstance(distribution, str):
            raise ValueError(
                f"Invalid `distribution` argument: {distribution!r}. Please use one of {list(_DISTRIBUTIONS)}"
            )
        distribution = distribution.lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(
                f"Invalid `distribution` argument: {distribution!r}. Please use one of {list(_DISTRIBUTIONS)}"
            )
        self.scale = scale
        self.mode = mode
        self.distribution = distribution
        super().__init__(seed=seed)

    def __call__(self, shape: Shape, dtype: DTypeLike | None = None) -> np.ndarray:
        shape = _standardize_shape(shape)
        dtype = _float_dtype(dtype, type(self).__name__)
        fan_in, fan_out = compute_fans(shape)
        n: float
        if self.mode == "fan_in":
            n = fan_in
        elif self.mode == "fan_out":
            n = fan_out
        else:
            n = (fan_in + fan_out) / 2.0
        scale = self.scale / max(1.0, n)
        rng = self._rng()
        if self.distribution == "truncated_normal":
            stddev = math.sqrt(scale) / _TRUNCATION_STDDEV
            values = stddev * _truncated_standard_normal(rng, shape)
        elif self.distribution == "untruncated_normal":
            values = math.sqrt(scale) * rng.standard_normal(shape)
        else:
            limit = math.sqrt(3.0 * scale)
            values = rng.uniform(-limit, limit, shape)
        return values.astype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
        }


class _FixedVarianceScaling(VarianceScaling):
    _scale, _mode, _distribution = 1.0, "fan_in", "truncated_normal"

    def __init__(self, seed=None):
        super().__init__(scale=self._scale, mode=self._mode, distribution=self._distribution, seed=seed)

    def get_config(self) -> dict[str, Any]:
        return {"seed": RandomInitializer.get_config(self)["seed"]}


class GlorotUniform(_FixedVarianceScaling):
    """Uniform in [-limit, limit], limit = sqrt(6 / (fan_in + fan_out)).

    Args:
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
    """

    _scale, _mode, _distribution = 1.0, "fan_avg", "uniform"


class GlorotNormal(_FixedVarianceScaling):
    """Truncated normal with stddev sqrt(2 / (fan_in + fan_out)).

    Args:
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
    """

    _scale, _mode, _distribution = 1.0, "fan_avg", "truncated_normal"


class HeUniform(_FixedVarianceScaling):
    """Uniform in [-limit, limit], limit = sqrt(6 / fan_in).

    Args:
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
    """

    _scale, _mode, _distribution = 2.0, "fan_in", "uniform"


class HeNormal(_FixedVarianceScaling):
    """Truncated normal with stddev sqrt(2 / fan_in).

    Args:
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
    """

    _scale, _mode, _distribution = 2.0, "fan_in", "truncated_normal"


class LecunUniform(_FixedVarianceScaling):
    """Uniform in [-limit, limit], limit = sqrt(3 / fan_in).

    Args:
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
    """

    _scale, _mode, _distribution = 1.0, "fan_in", "uniform"


class LecunNormal(_FixedVarianceScaling):
    """Truncated normal with stddev sqrt(1 / fan_in).

    Args:
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
    """

    _scale, _mode, _distribution = 1.0, "fan_in", "truncated_normal"


class Orthogonal(RandomInitializer):
    """``gain`` times a random orthogonal matrix, reshaped to ``shape`` (rank >= 2).

    The matrix has rows = prod(shape[:-1]) and cols = shape[-1]; it comes from the QR
    decomposition of a (max, min) standard-normal matrix with each column of Q multiplied by the
    sign of R's diagonal (so Q is Haar-distributed), transposed when rows < cols. So its columns
    are orthonormal when rows >= cols and its rows are orthonormal otherwise (times gain).

    Args:
        gain: Multiplicative factor applied to the matrix.
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
    """

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        self.gain = _number(gain, "gain")
        super().__init__(seed=seed)

    def __call__(self, shape: Shape, dtype: DTypeLike | None = None) -> np.ndarray:
        shape = _standardize_shape(shape)
        if len(shape) < 2:
            raise ValueError(
                "The tensor to initialize must be at least two-dimensional. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        dtype = _float_dtype(dtype, type(self).__name__)
        rows = 1
        for d in shape[:-1]:
            rows *= d
        cols = shape[-1]
        if rows == 0 or cols == 0:
            return np.zeros(shape, dtype=dtype)
        a = self._rng().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gain": self.gain}


OrthogonalInitializer = Orthogonal


# --------------------------------------------------------------------------- registry


def _snake(name):
    # Keras's keras.src.utils.naming.to_snake_case, for the fixed class names below.
    import re

    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


_CLASSES = (
    Initializer,
    Constant,
    Zeros,
    Ones,
    Identity,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
    GlorotUniform,
    GlorotNormal,
    HeUniform,
    HeNormal,
    LecunUniform,
    LecunNormal,
    Orthogonal,
)

_REGISTRY = {}
for _cls in _CLASSES:
    _REGISTRY[_cls.__name__] = _cls
    _REGISTRY[_snake(_cls.__name__)] = _cls
_REGISTRY.update(
    {
        # Aliases Keras 3 accepts.
        "uniform": RandomUniform,
        "normal": RandomNormal,
        "one": Ones,
        "zero": Zeros,
        "OrthogonalInitializer": Orthogonal,
        "orthogonal_initializer": Orthogonal,
        "IdentityInitializer": Identity,
        "identity_initializer": Identity,
    }
)
del _cls


def _lookup(name, custom_objects):
    return lookup_class("initializer", name, _REGISTRY, custom_objects)


def serialize(initializer: Any) -> Any:
    """``{"class_name": ..., "config": {...}}`` for an Initializer instance; None -> None.

    Args:
        initializer: Initializer of the variable (an Initializer instance or name).
    """
    if initializer is None:
        return None
    if not isinstance(initializer, Initializer):
        raise ValueError(
            f"Cannot serialize {initializer!r}: only cynet.initializers.Initializer instances can be "
            "serialized (a plain function has no config)."
        )
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Any:
    """Build an initializer from ``serialize``'s dict (or a registered name).

    Names resolve through cynet's registry, then ``custom_objects`` (a dict name -> class) given
    by the caller; Keras's extra keys ("module", "registered_name") are ignored.

    Args:
        config: The dictionary `get_config()` returned.
        custom_objects: Optional dict mapping names to custom classes or functions used while deserializing.
    """
    if isinstance(config, str):
        config = {"class_name": config, "config": {}}
    return from_config_dict("initializer", config, lambda name: _lookup(name, custom_objects))


def get(identifier: Any) -> Any:
    """An initializer from None (-> None), a name, a config dict, a class, an instance or a callable.

    Args:
        identifier: A name (string), a config dictionary, an instance, a callable, or `None`.
    """
    return get_callable("initializer", identifier, deserialize)
