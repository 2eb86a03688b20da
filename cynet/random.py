"""cynet.random: Keras 3's keras.random on NumPy generators.

`seed` is, as in Keras, None (cynet's global generator, which cynet.utils.set_random_seed seeds),
an int (the same draw every call), or a SeedGenerator (a new draw every call, reproducible from its
seed). `dropout` is differentiable on the tape.
"""
import threading
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
from ._typing import ArrayLike, DTypeLike, Shape

from . import backend
from .utils.rng import make_rng

#: What `seed=` accepts: None (the global generator), an int, or a SeedGenerator.
Seed = Union[int, "SeedGenerator", None]

__all__ = ["SeedGenerator", "normal", "uniform", "truncated_normal", "randint", "categorical", "dropout",
           "shuffle", "gamma", "binomial", "beta"]


class SeedGenerator:
    """A stateful seed: each draw that takes it advances it (Keras's keras.random.SeedGenerator).

    Unlike Keras's, its state is not a backend variable (it is not saved with a model's weights).

    Args:
        seed: Non-negative int that makes the sequence of draws reproducible; `None` draws one from
            cynet's global generator.
        name: Name of the generator.
        **kwargs: Accepted for Keras compatibility and ignored.
    """

    def __init__(self, seed: int | None = None, name: str | None = None, **kwargs: Any) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be None or a non-negative integer; received seed={seed!r}")
        self.name = name or "seed_generator"
        self._seed = int(make_rng(None).integers(2 ** 31)) if seed is None else int(seed)
        self._rng = np.random.default_rng(self._seed)
        self._lock = threading.Lock()

    def next(self) -> np.random.Generator:
        """A fresh Generator derived from this state (advances it)."""
        with self._lock:
            return np.random.default_rng(self._rng.integers(2 ** 63))

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that recreate this generator (its initial seed)."""
        return {"seed": self._seed}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "SeedGenerator":
        """A generator from `get_config()`'s dictionary.

        Args:
            config: The dictionary `get_config()` returned.
        """
        return cls(**config)


def _rng(seed: Seed) -> np.random.Generator:
    if isinstance(seed, SeedGenerator):
        return seed.next()
    return make_rng(seed)


def _dtype(dtype: DTypeLike | None) -> np.dtype:
    return np.dtype(dtype or backend.floatx())


def _shape(shape: Shape) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def normal(shape: Shape, mean: float = 0.0, stddev: float = 1.0, dtype: DTypeLike | None = None,
           seed: Seed = None) -> np.ndarray:
    """Draws from a normal distribution.

    Args:
        shape: Shape of the result, an int or a tuple of ints.
        mean: Mean of the distribution.
        stddev: Standard deviation of the distribution.
        dtype: Float dtype of the result; `None` uses `cynet.config.floatx()`.
        seed: `None` (cynet's global generator), an int (the same draw on every call) or a SeedGenerator.
    """
    return _rng(seed).normal(mean, stddev, _shape(shape)).astype(_dtype(dtype))


def uniform(shape: Shape, minval: float = 0.0, maxval: float = 1.0, dtype: DTypeLike | None = None,
            seed: Seed = None) -> np.ndarray:
    """Draws from a uniform distribution on `[minval, maxval)`.

    Args:
        shape: Shape of the result, an int or a tuple of ints.
        minval: Lower bound (included).
        maxval: Upper bound (excluded).
        dtype: Float dtype of the result; `None` uses `cynet.config.floatx()`.
        seed: `None` (cynet's global generator), an int (the same draw on every call) or a SeedGenerator.
    """
    return _rng(seed).uniform(minval, maxval, _shape(shape)).astype(_dtype(dtype))


def truncated_normal(shape: Shape, mean: float = 0.0, stddev: float = 1.0, dtype: DTypeLike | None = None,
                     seed: Seed = None) -> np.ndarray:
    """Normal draws redrawn until within two standard deviations of the mean.

    Args:
        shape: Shape of the result, an int or a tuple of ints.
        mean: Mean of the (untruncated) distribution.
        stddev: Standard deviation of the (untruncated) distribution.
        dtype: Float dtype of the result; `None` uses `cynet.config.floatx()`.
        seed: `None` (cynet's global generator), an int (the same draw on every call) or a SeedGenerator.
    """
    rng, shape = _rng(seed), _shape(shape)
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return (mean + stddev * out).astype(_dtype(dtype))


def randint(shape: Shape, minval: int, maxval: int, dtype: DTypeLike = "int32", seed: Seed = None) -> np.ndarray:
    """Draws integers uniformly from `[minval, maxval)`.

    Args:
        shape: Shape of the result, an int or a tuple of ints.
        minval: Lowest value (included).
        maxval: Upper bound (excluded).
        dtype: Integer dtype of the result.
        seed: `None` (cynet's global generator), an int (the same draw on every call) or a SeedGenerator.
    """
    return _rng(seed).integers(minval, maxval, _shape(shape)).astype(dtype)


def categorical(logits: ArrayLike, num_samples: int, dtype: DTypeLike = "int32", seed: Seed = None) -> np.ndarray:
    """(batch, num_samples) class indices drawn from each row of `logits` (unnormalized log-probabilities).

    Args:
        logits: (batch, classes) unnormalized log-probabilities.
        num_samples: Number of draws per row.
        dtype: Integer dtype of the result.
        seed: `None` (cynet's global generator), an int (the same draw on every call) or a SeedGenerator.
    """
    from .ops.core import plain
    z = np.asarray(plain(logits) if hasattr(logits, "view") else logits, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"logits must be 2-D (batch, classes); received shape {z.shape}")
    p = np.exp(z - z.max(axis=1, keepdims=True))
    cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    u = _rng(seed).uniform(size=(z.shape[0], int(num_samples)))
    return np.minimum((u[:, :, None] > cdf[:, None, :]).sum(axis=2), z.shape[1] - 1).astype(dtype)


def dropout(inputs: ArrayLike, rate: float, noise_shape: Sequence[int | None] | None = None,
            seed: Seed = None) -> np.ndarray:
    """inputs with a fraction `rate` of entries zeroed and the rest scaled by 1 / (1 - rate);
    differentiable (the same mask scales the gradient).

    Args:
        inputs: Float array (or Tensor) to drop entries from.
        rate: Fraction of entries to drop, in `[0, 1)`.
        noise_shape: Shape of the keep mask, broadcast against `inputs` (a `None` entry takes the
            input's size), e.g. `(batch, 1, features)` to drop the same features at every timestep.
        seed: `None` (cynet's global generator), an int (the same draw on every call) or a SeedGenerator.
    """
    from . import ops
    if not 0 <= rate < 1:
        raise ValueError(f"rate must be in [0, 1); received rate={rate!r}")
    shape = np.shape(inputs) if noise_shape is None else tuple(
        np.shape(inputs)[i] if s is None else s for i, s in enumerate(noise_shape))
    keep = _rng(seed).uniform(size=shape) >= rate
    return ops.multiply(inputs, (keep / (1 - rate)).astype(np.asarray(ops.convert_to_numpy(inputs)).dtype))


def shuffle(x: ArrayLike, axis: int = 0, seed: Seed = None) -> np.ndarray:
    """`x` with its elements randomly permuted along `axis` (differentiable, as `ops.take`).

    Args:
        x: Array to shuffle.
        axis: Axis along which to shuffle.
        seed: `None` (cynet's global generator), an int (the same draw on every call) or a SeedGenerator.
    """
    from . import ops
    n = np.shape(x)[axis]
    return ops.take(x, _rng(seed).permutation(n), axis=axis)


def gamma(shape: Shape, alpha: float, dtype: DTypeLike | None = None, seed: Seed = None) -> np.ndarray:
    """Draws from a gamma distribution with unit scale.

    Args:
        shape: Shape of the result, an int or a tuple of ints.
        alpha: Shape parameter (concentration) of the distribution.
        dtype: Float dtype of the result; `None` uses `cynet.config.floatx()`.
        seed: `None` (cynet's global generator), an int (the same draw on every call) or a SeedGenerator.
    """
    return _rng(seed).gamma(alpha, 1.0, _shape(shape)).astype(_dtype(dtype))


def binomial(shape: Shape, counts: int | np.ndarray, probabilities: float | np.ndarray, dtype: DTypeLike | None = None,
             seed: Seed = None) -> np.ndarray:
    """Draws from binomial distributions (as floats of `dtype`, as in Keras).

    Args:
        shape: Shape of the result, an int or a tuple of ints.
        counts: Number of trials, broadcast against `shape`.
        probabilities: Success probability of each trial, broadcast against `shape`.
        dtype: Float dtype of the result; `None` uses `cynet.config.floatx()`.
        seed: `None` (cynet's global generator), an int (the same draw on every call) or a SeedGenerator.
    """
    return _rng(seed).binomial(counts, probabilities, _shape(shape)).astype(_dtype(dtype))


def beta(shape: Shape, alpha: float | np.ndarray, beta: float | np.ndarray, dtype: DTypeLike | None = None,
         seed: Seed = None) -> np.ndarray:
    """Draws from a beta distribution.

    Args:
        shape: Shape of the result, an int or a tuple of ints.
        alpha: First concentration parameter (> 0), broadcast against `shape`.
        beta: Second concentration parameter (> 0), broadcast against `shape`.
        dtype: Float dtype of the result; `None` uses `cynet.config.floatx()`.
        seed: `None` (cynet's global generator), an int (the same draw on every call) or a SeedGenerator.
    """
    return _rng(seed).beta(alpha, beta, _shape(shape)).astype(_dtype(dtype))
