"""Argument validation shared by the optimizers and the learning-rate schedules.

Every error names the object, the argument, what was expected and what was received.
A value of the wrong type raises `ArgumentTypeError`, which is both a TypeError and a
ValueError: Keras raises ValueError for these cases, and code written against either
convention catches it.
"""
import math
import numbers

import numpy as np

from ..kernels._checks import interval_rule


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (catchable as TypeError or as ValueError)."""


def to_python(value):
    """NumPy scalars and 0-d arrays as the equivalent Python number; anything else unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def real(owner, name, value):
    """`value` as a finite Python float, or raise naming `owner` and `name`."""
    value = to_python(value)
    if not _is_real(value):
        raise ArgumentTypeError(
            f"{owner}: argument `{name}` must be a real number; received {name}={value!r} "
            f"of type {type(value).__name__}"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: argument `{name}` must be finite; received {name}={value}")
    return value


def in_range(owner, name, value, low=None, high=None, low_open=False, high_open=False, what="a float"):
    """`value` as a float within the given interval (bounds are inclusive unless *_open)."""
    value = real(owner, name, value)
    rule = interval_rule(value, low, high, low_open, high_open, fmt=lambda v: f"{v:g}")
    if rule is not None:
        raise ValueError(f"{owner}: argument `{name}` must be {what} {rule}; received {name}={value}")
    return value


def optional_nonnegative(owner, name, value):
    """None, or a float >= 0."""
    if value is None:
        return None
    return in_range(owner, name, value, low=0.0)


def boolean(owner, name, value):
    """A Python bool from a bool, a NumPy bool or the integers 0 and 1."""
    value = to_python(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    raise ArgumentTypeError(f"{owner}: argument `{name}` must be a bool; received {name}={value!r}")


def integer(owner, name, value, low=None):
    """A Python int (bools rejected), optionally >= low."""
    value = to_python(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{owner}: argument `{name}` must be an integer; received {name}={value!r}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{owner}: argument `{name}` must be an integer >= {low}; received {name}={value}")
    return value


def name_arg(owner, value):
    if not isinstance(value, str) or not value:
        raise ArgumentTypeError(f"{owner}: argument `name` must be a non-empty string; received name={value!r}")
    return value
