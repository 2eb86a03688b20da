"""Validation and normalisation shared by the public kernel functions.

Every public kernel validates here, at the Python boundary, and then calls an implementation
whose typed loops do no bounds checking. Errors name the argument, what was expected and what
was received.
"""
import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(**arrays):
    """The common float dtype of the given arrays: float64 if any is float64, else float32.

    bool, integer and float16 arrays count as float32. None values are ignored. Complex,
    object, string and other non-real dtypes raise TypeError naming the argument.
    """
    result = np.dtype(np.float32)
    for name, a in arrays.items():
        if a is None:
            continue
        dt = a.dtype if isinstance(a, np.ndarray) else np.asarray(a).dtype
        if dt.kind not in "biuf":
            raise TypeError(f"{name} must be a real numeric array (float32 or float64); received dtype {dt}")
        if dt == np.float64:
            result = dt
    return result


def as_float(name, a, dtype):
    """`a` as a C-contiguous array of `dtype` (a copy only when needed)."""
    if not isinstance(a, np.ndarray):
        try:
            a = np.asarray(a)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name} must be array-like of real numbers; {exc}") from None
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array (float32 or float64); received dtype {a.dtype}")
    return np.asarray(a, dtype=dtype, order="C")  # (ascontiguousarray would turn 0-d into 1-d)


def as_floats(dtype=None, **arrays):
    """Convert several named arrays to one common float dtype (see float_dtype).

    Returns the arrays in the order given; None stays None.
    """
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


def inplace_array(name, a, dtype, shape, dtype_source):
    """An IN/OUT array a kernel updates in place: a writable C-contiguous ndarray of exactly
    `dtype` and `shape`. Never converted, since the update would land in the copy;
    `dtype_source` says where the dtype comes from, for the message."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array (it is updated in place); received {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} ({dtype_source}; it is updated in place, so it is "
                        f"not converted); received dtype {a.dtype}")
    check_shape(name, a, shape)
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (it is updated in place); received strides {a.strides}")
    if not a.flags.writeable:
        raise ValueError(f"{name} must be writable (it is updated in place); received a read-only array")
    return a


def check_nonempty(name, a):
    if a.size == 0:
        raise ValueError(f"{name} must not be empty; received shape {a.shape}")


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; received {name}={value!r}")
    return int(value)


def nonnegative_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer; received {name}={value!r}")
    return int(value)


def int_pair(name, value):
    """An int or a pair of ints, each >= 1, as a tuple (a, b)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    try:
        pair = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be a positive integer or a pair of them; received {name}={value!r}") from None
    if len(pair) != 2:
        raise ValueError(f"{name} must be a positive integer or a pair of them; received {name}={value!r}")
    return tuple(positive_int(name, v) for v in pair)


def data_format(value):
    """Normalise a Keras data_format: None means "channels_last"."""
    if value is None:
        return "channels_last"
    if value not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first'; received data_format={value!r}")
    return value


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
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
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
        if isinstance(part, numbers.Integral) and not isinstance(part, bool):
            p = nonnegative_int("padding", part)
            result.append((p, p))
        else:
            try:
                before, after = part
            except (TypeError, ValueError):
                raise ValueError(f"padding entries must be an int or a pair (before, after); received padding={padding!r}") from None
            result.append((nonnegative_int("padding", before), nonnegative_int("padding", after)))
    return tuple(result)


def output_size(name, size, window, stride, pad_before, pad_after):
    """Number of window positions along one axis; raises when the window does not fit."""
    padded = size + pad_before + pad_after
    if window > padded:
        raise ValueError(
            f"{name} (effective size {window}) is larger than the padded input ({size} + {pad_before} + {pad_after} = {padded})"
        )
    return (padded - window) // stride + 1
