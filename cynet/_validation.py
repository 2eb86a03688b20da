"""Argument and array validation for the whole library: kernels, layers, optimizers and their
schedules, the trainer and the data adapters all check with these functions.

Errors name the argument, what was expected and what was received. Two wordings are kept, the
two conventions cynet's users see:

- "name must be ...; received name=value" (kernels, layers, the trainer): the plain functions;
- "Owner: argument `name` must be ...; received name=value" (optimizers and learning-rate
  schedules, worded as Keras words them): the `argument_*` functions, which also read NumPy
  scalars and 0-d arrays as Python numbers.

A value of the wrong type raises TypeError, or `ArgumentTypeError` where callers may catch either
convention (the integer checks, the `argument_*` functions, the trainer's data checks): it is
both a TypeError and a ValueError, since Keras raises ValueError for most of these. Messages
are built only on failure: the hot paths (kernel calls, layer calls) pass a few type tests.
"""
import math
import numbers
import os
from typing import TypeGuard

import numpy as np

from . import _config


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (catchable as TypeError or as ValueError)."""


# ----------------------------------------------------------------------------------- numbers

# Sizes, strides, windows, dilations and padding amounts must stay below this: the compiled
# kernels index with them and refuse larger ones (and an int that does not fit a C ssize_t
# would raise OverflowError at the call).
INT_LIMIT = 2 ** 31

_REQUIRED = object()


def is_int(value: object) -> TypeGuard[int]:
    """A Python or NumPy integer, not a bool."""
    if type(value) is int:  # the common case, without the slower ABC check
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value):
    """A Python or NumPy real number, not a bool."""
    if type(value) is float or type(value) is int:   # the common cases, without the slower ABC check
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def to_python(value):
    """NumPy scalars and 0-d arrays as the equivalent Python number; anything else unchanged."""
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    return value


def _count(name, value, low, what, bounded, default):
    if value is None and default is not _REQUIRED:
        return default
    if is_int(value) and low <= value and (not bounded or value < INT_LIMIT):
        return int(value)
    what += " below 2**31" if bounded else ""
    error = ValueError if is_int(value) else ArgumentTypeError
    raise error(f"{name} must be {what}; received {name}={value!r}")


def positive_int(name, value, bounded=True, default=_REQUIRED):
    """An int >= 1, below 2**31 unless not `bounded` (Python or NumPy integer; bool refused):
    ArgumentTypeError for a non-integer, ValueError out of range. With a `default`, None means
    it."""
    return _count(name, value, 1, "a positive integer", bounded, default)


def nonnegative_int(name, value, bounded=True, default=_REQUIRED):
    """An int >= 0, as `positive_int`."""
    return _count(name, value, 0, "a non-negative integer", bounded, default)


def int_pair(name, value):
    """An int or a pair of ints, each in [1, 2**31), as a tuple (a, b)."""
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int \
            and 0 < value[0] < INT_LIMIT and 0 < value[1] < INT_LIMIT:
        return value  # the common case, checked fast
    if is_int(value):
        value = (value, value)
    if isinstance(value, (str, bytes)):
        pair = None
    else:
        try:
            pair = tuple(value)
        except TypeError:
            pair = None
    if pair is None or len(pair) != 2:
        raise ValueError(f"{name} must be a positive integer or a pair of them; received {name}={value!r}")
    return tuple(positive_int(name, v) for v in pair)


def interval_rule(value, low=None, high=None, low_open=False, high_open=False, fmt=str):
    """None when `value` lies in the interval from low to high (either may be None; ends closed
    unless *_open), else the rule it breaks for a message, e.g. "in [0, 1)" or ">= 0", with the
    bounds written by `fmt`."""
    below = low is not None and (value < low or (low_open and value == low))
    above = high is not None and (value > high or (high_open and value == high))
    if not (below or above):
        return None
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{fmt(low)}, {fmt(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {fmt(low)}"
    return f"{'<' if high_open else '<='} {fmt(high)}"


_FLOAT_MAX = {np.dtype(t): float(np.finfo(t).max) for t in (np.float16, np.float32, np.float64)}


def real(name, value, dtype=None, *, low=None, high=None, low_open=False, high_open=False):
    """A finite real number (Python or NumPy, bool refused: TypeError) as a float, in the
    interval from low to high when given (ends closed unless *_open), or as a scalar of `dtype`
    when given (then it must stay finite in that dtype)."""
    if type(value) is float or type(value) is int:  # the common case, without the slower ABC check
        pass
    elif not is_real(value):
        raise TypeError(f"{name} must be a real number; received {name}={value!r}")
    try:
        f = float(value)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f):
        raise ValueError(f"{name} must be finite; received {name}={value!r}")
    if low is not None or high is not None:
        rule = interval_rule(f, low, high, low_open, high_open)
        if rule is not None:
            raise ValueError(f"{name} must be {rule}; received {name}={f!r}")
    if dtype is None:
        return f
    dtype = np.dtype(dtype)
    if abs(f) > _FLOAT_MAX.get(dtype, math.inf):
        raise ValueError(f"{name} must be finite in {dtype}; received {name}={value!r}")
    return dtype.type(f)


# ------------------------------------------------------------------------------ other kinds
def flag(name, value):
    """A bool (Python or NumPy). Anything else is refused: bool("False") is True, and an array
    has no truth value."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool; received {name}={value!r}")
    return bool(value)


def shape_tuple(name, shape):
    """A shape argument: an int or a sequence of ints in [1, 2**31) (None for unknown)."""
    if is_int(shape):
        shape = (shape,)
    try:
        entries = None if isinstance(shape, (str, bytes)) else tuple(shape)
    except TypeError:
        entries = None
    if entries is None or not all(s is None or (is_int(s) and 1 <= s < INT_LIMIT) for s in entries):
        raise ValueError(f"{name} must be a tuple of positive integers (None for unknown); received {name}={shape!r}")
    return tuple(None if s is None else int(s) for s in entries)


def standardize_dtype(dtype):
    """A layer's dtype: float32 or float64 (None: cynet.config.floatx())."""
    try:
        dtype = np.dtype(_config.get("floatx") if dtype is None else dtype)
    except (TypeError, ValueError):
        raise ValueError(f"dtype must be 'float32' or 'float64'; received dtype={dtype!r}") from None
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64'; received dtype={dtype}")
    return dtype


def data_format(value):
    """Normalise a Keras data_format (a string, any case, as Keras): None means "channels_last"."""
    if value is None:
        return _config.get("image_data_format")
    if isinstance(value, str) and value.lower() in ("channels_last", "channels_first"):
        return value.lower()
    raise ValueError(f"data_format must be 'channels_last' or 'channels_first'; received data_format={value!r}")


def verbose(value):
    """Keras's verbose argument of fit, evaluate and predict: "auto" (1), 0, 1 or 2."""
    if value == "auto":
        return 1
    if isinstance(value, numbers.Integral) and int(value) in (0, 1, 2):
        return int(value)
    raise ValueError(f"verbose must be \"auto\", 0, 1 or 2; received verbose={value!r}")


# ---------------------------------------------------------- Keras's wording: "Owner: argument"
def argument_real(owner, name, value):
    """`value` (NumPy scalars too) as a finite Python float, or raise naming `owner` and `name`."""
    value = to_python(value)
    if not is_real(value):
        raise ArgumentTypeError(
            f"{owner}: argument `{name}` must be a real number; received {name}={value!r} "
            f"of type {type(value).__name__}"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: argument `{name}` must be finite; received {name}={value}")
    return value


def argument_in_range(owner, name, value, low=None, high=None, low_open=False, high_open=False, what="a float"):
    """`value` as a float within the given interval (bounds are inclusive unless *_open)."""
    value = argument_real(owner, name, value)
    rule = interval_rule(value, low, high, low_open, high_open, fmt=lambda v: f"{v:g}")
    if rule is not None:
        raise ValueError(f"{owner}: argument `{name}` must be {what} {rule}; received {name}={value}")
    return value


def argument_bool(owner, name, value):
    """A Python bool from a bool, a NumPy bool or the integers 0 and 1."""
    value = to_python(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    raise ArgumentTypeError(f"{owner}: argument `{name}` must be a bool; received {name}={value!r}")


def argument_int(owner, name, value, low=None):
    """A Python int (bools rejected; an integral float is taken), optionally >= low."""
    value = to_python(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{owner}: argument `{name}` must be an integer; received {name}={value!r}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{owner}: argument `{name}` must be an integer >= {low}; received {name}={value}")
    return value


def argument_name(owner, value):
    """The `name` argument: a non-empty string."""
    if not isinstance(value, str) or not value:
        raise ArgumentTypeError(f"{owner}: argument `name` must be a non-empty string; received name={value!r}")
    return value


# ------------------------------------------------------------------------------------ arrays
_memory_bytes = None


def memory_limit():
    """The most bytes one array may take: this machine's physical memory (an array larger than
    that cannot be worked on, so asking for one is refused up front instead of failing in the
    allocator or thrashing)."""
    global _memory_bytes
    if _memory_bytes is None:
        try:
            _memory_bytes = int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
        except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
            _memory_bytes = 0
        if _memory_bytes <= 0:  # pragma: no cover
            _memory_bytes = np.iinfo(np.intp).max
    return _memory_bytes


def check_size(name, shape, itemsize, what):
    """Raise ValueError (naming `name`) when an array of `shape` and `itemsize` would not fit in
    memory: `what` says which array, e.g. "the output (N, OH, OW, F)". Python integers, so the
    product never overflows; call it before allocating."""
    count = 1
    for s in shape:
        count *= int(s)
    nbytes = count * int(itemsize)
    if nbytes > memory_limit():
        raise ValueError(f"{name}: {what} of shape {tuple(int(s) for s in shape)} would need "
                         f"{nbytes / 2 ** 30:.4g} GiB, more than this machine's {memory_limit() / 2 ** 30:.4g} GiB "
                         f"of memory")


def as_array(name, a):
    """`a` as an ndarray (no copy for an ndarray); a ragged or otherwise unconvertible array-like
    raises TypeError naming the argument."""
    if isinstance(a, np.ndarray):
        return a
    try:
        return np.asarray(a)
    except (ValueError, TypeError, OverflowError) as exc:
        raise TypeError(f"{name} must be array-like of real numbers; {exc}") from None


_FLOAT32 = np.dtype(np.float32)


def float_dtype(**arrays):
    """The common float dtype of the given arrays: float64 if any is float64, else float32.

    bool, integer and float16 arrays count as float32; floats of 8 bytes or more (float64 in
    either byte order, longdouble) as float64. None values are ignored. Complex, object,
    string and other non-real dtypes raise TypeError naming the argument.
    """
    result = _FLOAT32
    for name, a in arrays.items():
        if a is None:
            continue
        dt = a.dtype if type(a) is np.ndarray else as_array(name, a).dtype
        if dt is _FLOAT32:   # (the kernels' own arrays, every call)
            continue
        if dt.kind not in "biuf":
            raise TypeError(f"{name} must be a real numeric array (float32 or float64); received dtype {dt}")
        if dt.kind == "f" and dt.itemsize >= 8:
            result = np.dtype(np.float64)
    return result


def as_float(name, a, dtype):
    """`a` as a C-contiguous array of `dtype` (a copy only when needed; refused with ValueError
    when it would not fit in memory, e.g. a broadcast view posing as terabytes)."""
    if type(a) is np.ndarray and a.dtype is dtype and a.flags.c_contiguous:
        return a   # (already what the kernel takes: every call from a layer)
    a = as_array(name, a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array (float32 or float64); received dtype {a.dtype}")
    if a.dtype != dtype or not a.flags.c_contiguous:  # a copy: check its size first (messages built only here)
        check_size(name, a.shape, np.dtype(dtype).itemsize, f"{name} as a {np.dtype(dtype)} array")
    return np.asarray(a, dtype=dtype, order="C")  # (ascontiguousarray would turn 0-d into 1-d)


def as_floats(dtype=None, optional=(), **arrays):
    """Convert several named arrays to one common float dtype (see float_dtype).

    Returns the arrays in the order given. None stays None for the names in `optional`; for any
    other it raises TypeError.
    """
    for name, a in arrays.items():
        if a is None and name not in optional:
            raise TypeError(f"{name} is required: a real numeric array; received None")
    if dtype is None:
        dtype = float_dtype(**arrays)
    return tuple(None if a is None else as_float(name, a, dtype) for name, a in arrays.items())


def check_ndim(name, a, ndim):
    """Raise ValueError unless `a.ndim` is `ndim` (an int or a tuple of allowed ints)."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if a.ndim not in allowed:
        want = " or ".join(str(d) for d in allowed)
        raise ValueError(f"{name} must be {want}-dimensional; received shape {a.shape}")


def check_shape(name, a, shape):
    """Raise ValueError unless `a.shape == shape`."""
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}; received shape {a.shape}")


def check_nonempty(name, a):
    if a.size == 0:
        raise ValueError(f"{name} must not be empty; received shape {a.shape}")


def inplace_array(name, a, dtype, shape, dtype_source, shape_source=None):
    """An IN/OUT array a kernel updates in place: a writable C-contiguous ndarray of exactly
    `dtype` and `shape`. Never converted, since the update would land in the copy;
    `dtype_source` (and `shape_source`) say where the dtype (and shape) come from, for the
    messages."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array (it is updated in place); received {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} ({dtype_source}; it is updated in place, so it is "
                        f"not converted); received dtype {a.dtype}")
    if tuple(a.shape) != tuple(shape):
        source = f" ({shape_source})" if shape_source else ""
        raise ValueError(f"{name} must have shape {tuple(shape)}{source}; received shape {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (it is updated in place); received strides {a.strides}")
    if not a.flags.writeable:
        raise ValueError(f"{name} must be writable (it is updated in place); received a read-only array")
    return a


def first_index(mask):
    """The index of the first True in mask: an int for 1-d, else a tuple."""
    idx = np.unravel_index(int(np.argmax(mask)), mask.shape)
    return int(idx[0]) if len(idx) == 1 else tuple(int(i) for i in idx)


def first_entry(name, mask, values):
    """'name[i, j] = v' for the first True in mask, for messages.

    Args:
        name: Name of the object (a default is generated when `None`).
        mask: Optional mask of the inputs.
        values: Values to average.
    """
    idx = first_index(mask)
    where = ", ".join(map(str, idx)) if isinstance(idx, tuple) else idx
    return f"{name}[{where}] = {values[idx].item()!r}"


def check_finite(arr, name, given=None):
    """Raise ValueError naming the first NaN or infinity of a float array; `given`, the array
    before its conversion to arr's dtype, tells an overflow in the conversion apart.

    One reduction and no temporary when all is well: the sum is finite exactly when every entry
    is (NaN and inf propagate), unless it overflows; only then is each entry looked at. (NumPy's
    sum, not a BLAS dot: a threaded dot wakes OpenBLAS's threads, which then compete with the
    kernels' OpenMP threads and slowed the next training steps tenfold.)
    """
    if arr.dtype.kind not in "fc" or arr.size == 0:
        return
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(arr.sum()):
            return
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    message = f"{name} must hold finite values only (no NaN or inf); received {first_entry(name, bad, arr)}"
    if given is not None and given.dtype != arr.dtype and given.dtype.kind == "f" and given.shape == arr.shape:
        idx = first_index(bad)
        if np.isfinite(given[idx]):
            message += f" (the value {given[idx].item()!r} overflows the model's dtype {arr.dtype})"
    raise ValueError(message)


# ------------------------------------------------------------------- windows (conv, pooling)
def _same_padding(size, window, stride):
    """Keras/TensorFlow "same": output ceil(size / stride), the odd cell of padding goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def padding_2d(padding, in_hw, window_hw, strides):
    """Explicit padding ((top, bottom), (left, right)) for a 2-D window.

    padding: "valid", "same" (Keras semantics, including even windows and strides > 1),
    an int, a pair (ph, pw), or ((top, bottom), (left, right)). `window_hw` is the effective
    (dilated) window size.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0), (0, 0)
        if mode == "same":
            return tuple(_same_padding(s, w, st) for s, w, st in zip(in_hw, window_hw, strides))
        raise ValueError(f"padding must be 'valid', 'same' or explicit amounts; received padding={padding!r}")
    if is_int(padding):
        p = nonnegative_int("padding", padding)
        return (p, p), (p, p)
    try:
        parts = tuple(padding)
    except TypeError:
        raise ValueError(f"padding must be 'valid', 'same' or explicit amounts; received padding={padding!r}") from None
    if len(parts) != 2:
        raise ValueError(f"padding must have one entry per spatial axis (2); received padding={padding!r}")
    result = []
    for part in parts:
        if is_int(part):
            p = nonnegative_int("padding", part)
            result.append((p, p))
        else:
            try:
                before, after = part
            except (TypeError, ValueError):
                raise ValueError(f"padding entries must be an int or a pair (before, after); "
                                 f"received padding={padding!r}") from None
            result.append((nonnegative_int("padding", before), nonnegative_int("padding", after)))
    return tuple(result)


def output_size(name, size, window, stride, pad_before, pad_after, args=None):
    """Number of window positions along one axis; raises when the window does not fit.

    `args` names the arguments that set these sizes, for the message (e.g. "x, kernel,
    dilation_rate and padding").
    """
    padded = size + pad_before + pad_after
    if window > padded:
        hint = f"; check {args}" if args else ""
        raise ValueError(
            f"{name} (effective size {window}) is larger than the padded input ({size} + {pad_before} + {pad_after} "
            f"= {padded}){hint}"
        )
    return (padded - window) // stride + 1
