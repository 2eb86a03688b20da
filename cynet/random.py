"""cynet.random: Keras 3's keras.random on NumPy generators.

`seed` is, as in Keras, None (cynet's global generator, which cynet.utils.set_random_seed seeds),
an int (the same draw every call), or a SeedGenerator (a new draw every call, reproducible from its
seed). `dropout` is differentiable on the tape.
"""
import threading

import numpy as np

from . import backend
from .utils.rng import make_rng

__all__ = ["SeedGenerator", "normal", "uniform", "truncated_normal", "randint", "categorical", "dropout",
           "shuffle", "gamma", "binomial", "beta"]


class SeedGenerator:
    """A stateful seed: each draw that takes it advances it (Keras's keras.random.SeedGenerator)."""

    def __init__(self, seed=None, name=None, **kwargs):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be None or a non-negative integer; received seed={seed!r}")
        self.name = name or "seed_generator"
        self._seed = int(make_rng(None).integers(2 ** 31)) if seed is None else int(seed)
        self._rng = np.random.default_rng(self._seed)
        self._lock = threading.Lock()

    def next(self):
        """A fresh Generator derived from this state (advances it)."""
        with self._lock:
            return np.random.default_rng(self._rng.integers(2 ** 63))

    def get_config(self):
        return {"seed": self._seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _rng(seed):
    if isinstance(seed, SeedGenerator):
        return seed.next()
    return make_rng(seed)


def _dtype(dtype):
    return np.dtype(dtype or backend.floatx())


def _shape(shape):
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    return _rng(seed).normal(mean, stddev, _shape(shape)).astype(_dtype(dtype))


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    return _rng(seed).uniform(minval, maxval, _shape(shape)).astype(_dtype(dtype))


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Normal draws redrawn until within two standard deviations of the mean."""
    rng, shape = _rng(seed), _shape(shape)
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return (mean + stddev * out).astype(_dtype(dtype))


def randint(shape, minval, maxval, dtype="int32", seed=None):
    return _rng(seed).integers(minval, maxval, _shape(shape)).astype(dtype)


def categorical(logits, num_samples, dtype="int32", seed=None):
    """(batch, num_samples) class indices drawn from each row of `logits` (unnormalized log-probabilities)."""
    from .ops.core import plain
    z = np.asarray(plain(logits) if hasattr(logits, "view") else logits, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"logits must be 2-D (batch, classes); received shape {z.shape}")
    p = np.exp(z - z.max(axis=1, keepdims=True))
    cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    u = _rng(seed).uniform(size=(z.shape[0], int(num_samples)))
    return np.minimum((u[:, :, None] > cdf[:, None, :]).sum(axis=2), z.shape[1] - 1).astype(dtype)


def dropout(inputs, rate, noise_shape=None, seed=None):
    """inputs with a fraction `rate` of entries zeroed and the rest scaled by 1 / (1 - rate);
    differentiable (the same mask scales the gradient)."""
    from . import ops
    if not 0 <= rate < 1:
        raise ValueError(f"rate must be in [0, 1); received rate={rate!r}")
    shape = np.shape(inputs) if noise_shape is None else tuple(
        np.shape(inputs)[i] if s is None else s for i, s in enumerate(noise_shape))
    keep = _rng(seed).uniform(size=shape) >= rate
    return ops.multiply(inputs, (keep / (1 - rate)).astype(np.asarray(ops.convert_to_numpy(inputs)).dtype))


def shuffle(x, axis=0, seed=None):
    from . import ops
    n = np.shape(x)[axis]
    return ops.take(x, _rng(seed).permutation(n), axis=axis)


def gamma(shape, alpha, dtype=None, seed=None):
    return _rng(seed).gamma(alpha, 1.0, _shape(shape)).astype(_dtype(dtype))


def binomial(shape, counts, probabilities, dtype=None, seed=None):
    return _rng(seed).binomial(counts, probabilities, _shape(shape)).astype(_dtype(dtype))


def beta(shape, alpha, beta, dtype=None, seed=None):
    return _rng(seed).beta(alpha, beta, _shape(shape)).astype(_dtype(dtype))
