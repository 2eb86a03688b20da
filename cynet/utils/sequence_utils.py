"""`pad_sequences`: a list of variable-length sequences as one (samples, maxlen, ...) array, with
Keras 3's arguments, defaults, results and errors (keras.utils.pad_sequences)."""
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._typing import DTypeLike


def pad_sequences(sequences: Sequence[Any], maxlen: int | None = None, dtype: DTypeLike | None = "int32",
                  padding: str = "pre", truncating: str = "pre", value: Any = 0.0) -> np.ndarray:
    """Pads (and truncates) sequences to a common length, as Keras's `pad_sequences`.

    Each sequence becomes one row of length `maxlen`: a longer one loses values from its start
    (truncating="pre") or its end ("post"); a shorter one is filled with `value` before it
    (padding="pre") or after it ("post"). Sequences may hold scalars or equally-shaped arrays
    (the shape of the first non-empty sequence's items sets the sample shape).

    Args:
        sequences: a list (anything with a length) of sequences (lists or arrays).
        maxlen: the length of every row; by default the longest sequence's length.
        dtype: the output dtype (default "int32"; use object for strings of varying length).
        padding: "pre" (default) or "post".
        truncating: "pre" (default) or "post".
        value: the padding value (default 0.0, cast to dtype).

    Returns:
        A NumPy array of shape (len(sequences), maxlen) + sample shape.

    Raises:
        ValueError: for a `sequences` without a length or an item that is not a sequence, an
            invalid padding / truncating, a string value with a non-string dtype, a negative
            maxlen, or items whose shapes differ.
    """
    if not hasattr(sequences, "__len__"):
        raise ValueError("`sequences` must be iterable.")
    if truncating not in ("pre", "post"):
        raise ValueError(f'Truncating type "{truncating}" not understood')
    if padding not in ("pre", "post"):
        raise ValueError(f'Padding type "{padding}" not understood')
    num_samples = len(sequences)

    lengths = []
    sample_shape = ()
    found = False
    for x in sequences:
        try:
            n = len(x)
        except TypeError as e:
            raise ValueError(f"`sequences` must be a list of iterables. Found non-iterable: {x}") from e
        lengths.append(n)
        if not found and n:
            sample_shape = np.asarray(x).shape[1:]
            found = True

    if maxlen is None:
        if not lengths:
            raise ValueError("pad_sequences needs `maxlen` when `sequences` is empty")
        maxlen = max(lengths)
    elif isinstance(maxlen, bool) or not isinstance(maxlen, numbers.Integral):
        raise ValueError(f"`maxlen` must be None or a non-negative integer; received maxlen={maxlen!r}")
    elif maxlen < 0:
        raise ValueError(f"`maxlen` must be None or a non-negative integer; received maxlen={maxlen}")
    maxlen = int(maxlen)

    is_dtype_str = np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_dtype_str:
        raise ValueError(f"`dtype` {dtype} is not compatible with `value`'s type: {type(value)}\n"
                         "You should set `dtype=object` for variable length strings.")

    out = np.full((num_samples, maxlen) + sample_shape, value, dtype=dtype)
    if maxlen == 0:
        return out
    for idx, s in enumerate(sequences):
        if not len(s):
            continue
        trunc = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        trunc = np.asarray(trunc, dtype=dtype)
        if trunc.shape[1:] != sample_shape:
            raise ValueError(f"Shape of sample {trunc.shape[1:]} of sequence at position {idx} is different from "
                             f"expected shape {sample_shape}")
        if padding == "post":
            out[idx, :len(trunc)] = trunc
        else:
            out[idx, -len(trunc):] = trunc
    return out
