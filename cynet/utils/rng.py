"""Random number generation: one global generator that every unseeded draw in cynet uses.

`set_random_seed(seed)` seeds Python's `random`, NumPy's legacy global state and cynet's own
generator, so the same seed gives the same initial weights, shuffles and dropout masks.
"""
import random

import numpy as np

_global = np.random.default_rng()


def set_random_seed(seed: int | None) -> None:
    """Seed Python, NumPy and cynet. `seed` must be a non-negative int.

    Args:
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
    """
    global _global
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; received seed={seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    _global = np.random.default_rng(seed)


def global_rng():
    """cynet's global numpy Generator."""
    return _global


def make_rng(seed: int | np.integer | np.random.Generator | None = None) -> np.random.Generator:
    """A Generator for `seed`: a fresh seeded one, or the global one when seed is None.

    Args:
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
    """
    if seed is None:
        return _global
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be None or a non-negative integer; received seed={seed!r}")
    return np.random.default_rng(int(seed))
