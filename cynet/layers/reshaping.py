"""Shape layers (Keras 3 `keras.layers.reshaping` and `core.Identity`): Identity, RepeatVector,
Permute, ZeroPadding1D, ZeroPadding2D, Cropping1D, Cropping2D, UpSampling1D.

Each is a vectorised NumPy rearrangement of its input (no weights) whose backward is the adjoint
rearrangement of the gradient: a repeat sums, a pad slices, a crop pads with zeros, a transpose
transposes back. Arguments follow Keras 3 (names, defaults, the forms `padding` and `cropping`
take); sizes are checked when the layer is made (ValueError naming the argument) and inputs that
do not fit (a crop as large as the axis) are refused naming `inputs`, also on symbolic inputs.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _validation as _checks
from .base import Layer


def _entries(value):
    """`value` as a tuple, or None when it is no sequence (strings and bytes count as none)."""
    if isinstance(value, (str, bytes, dict, set, frozenset)):
        return None
    try:
        return tuple(value)
    except TypeError:
        return None


def _amount_pair(name, value, what):
    """Keras's standardize_tuple(value, 2, allow_zero=True): an int (both ends) or a pair of ints,
    each in [0, 2**31)."""
    if _checks.is_int(value):
        value = (value, value)
    pair = _entries(value)
    if pair is None or len(pair) != 2 or not all(_checks.is_int(v) and 0 <= v < _checks.INT_LIMIT for v in pair):
        raise ValueError(f"{name} must be {what}, each a non-negative integer below 2**31; received "
                         f"{name}={value!r}")
    return int(pair[0]), int(pair[1])


def _amount_pairs_2d(name, value):
    """Keras's ZeroPadding2D / Cropping2D argument: an int (every side), a pair (symmetric height,
    symmetric width) or a pair of pairs ((top, bottom), (left, right))."""
    what = ("an int, a pair of ints (symmetric height, symmetric width) or a pair of pairs "
            "((top, bottom), (left, right))")
    if _checks.is_int(value):
        value = (value, value)
    parts = _entries(value)
    if parts is None or len(parts) != 2:
        raise ValueError(f"{name} must be {what}, each a non-negative integer below 2**31; received {name}={value!r}")
    try:
        return tuple(_amount_pair(name, part, what) for part in parts)
    except ValueError:
        raise ValueError(f"{name} must be {what}, each a non-negative integer below 2**31; received "
                         f"{name}={value!r}") from None


def check_rank(layer, input_shape):
    """Refuse (ValueError naming the layer and `inputs`) an input shape of another rank than the
    layer's `_input_ndim`: compute_output_shape runs on symbolic shapes before the input checks."""
    if layer._input_ndim is not None and len(input_shape) != layer._input_ndim:
        raise ValueError(f"{layer._who()}: inputs must be {layer._input_ndim}-dimensional (batch axis included); "
                         f"received shape {tuple(input_shape)}")


def _add(size, amount):
    return None if size is None else size + amount


def _spatial_axes(data_format, n):
    """The indices of the n spatial axes of an (N, ..., C) or (N, C, ...) input."""
    start = 1 if data_format == "channels_last" else 2
    return tuple(range(start, start + n))


class Identity(Layer):
    """Returns its input unchanged (Keras 3's `Identity`: a placeholder layer).

    Args:
        trainable: Whether the layer's weights are updated by training.
        name: Name of the layer (a unique default is generated from the class name when `None`).
        dtype: Dtype of the layer's weights and computations (`"float32"` or `"float64"`); `None` uses
            `cynet.config.floatx()`.
        input_shape: Shape of the input, including the batch axis (`None` for unknown sizes).
        input_dim: Size of the input's last axis (Keras's legacy way of giving the input shape).
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is
            added to the loss), or `None`.
    """

    supports_masking = True   # the mask passes through (Keras 3)

    def _forward(self, ctx, inputs, training):
        return inputs

    def _backward(self, ctx, grad, need_input_grad):
        return grad


class RepeatVector(Layer):
    """Repeats a (batch, features) input `n` times: output (batch, n, features).

    Args:
        n: Number of repetitions.
    """

    _input_ndim = 2

    def __init__(self, n: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n = _checks.positive_int("n", n)

    def compute_output_shape(self, input_shape):
        check_rank(self, input_shape)
        return (input_shape[0], self.n, input_shape[1])

    def _forward(self, ctx, inputs, training):
        _checks.check_size(f"{self._who()}: inputs", (inputs.shape[0], self.n, inputs.shape[1]), inputs.itemsize,
                           f"the output (inputs repeated n={self.n} times)")
        return np.repeat(inputs[:, None, :], self.n, axis=1)

    def _backward(self, ctx, grad, need_input_grad):
        return grad.sum(axis=1)

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class Permute(Layer):
    """Permutes the non-batch axes: `dims` is a permutation of 1..k (the batch axis is 0 and stays);
    `Permute((2, 1))` swaps the two axes of a (batch, a, b) input.

    Args:
        dims: Permutation of the non-batch axes (1-based, as in Keras).
    """

    def __init__(self, dims: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        entries = _entries(dims)
        if entries is None or not entries or not all(_checks.is_int(d) for d in entries) \
                or sorted(int(d) for d in entries) != list(range(1, len(entries) + 1)):
            raise ValueError(f"dims must be a permutation of the non-batch axes 1, 2, ..., k (consecutive integers "
                             f"starting at 1, each once); received dims={dims!r}")
        self.dims = tuple(int(d) for d in entries)
        self._input_ndim = len(self.dims) + 1
        self._inverse = tuple(int(i) for i in np.argsort((0,) + self.dims))

    def compute_output_shape(self, input_shape):
        check_rank(self, input_shape)
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def _forward(self, ctx, inputs, training):
        return np.transpose(inputs, (0,) + self.dims)

    def _backward(self, ctx, grad, need_input_grad):
        return np.transpose(grad, self._inverse)

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class _Padding(Layer):
    """Zero padding of the spatial axes; `self.padding` holds one (before, after) pair per axis."""

    _spatial = 1

    def _axes(self):
        return _spatial_axes(self.data_format, self._spatial)

    def compute_output_shape(self, input_shape):
        check_rank(self, input_shape)
        shape = list(input_shape)
        for axis, (before, after) in zip(self._axes(), self._pairs()):
            shape[axis] = _add(shape[axis], before + after)
        return tuple(shape)

    def _pairs(self):
        return self.padding if self._spatial > 1 else (self.padding,)

    def _forward(self, ctx, inputs, training):
        widths = [(0, 0)] * inputs.ndim
        for axis, pair in zip(self._axes(), self._pairs()):
            widths[axis] = pair
        _checks.check_size(f"{self._who()}: inputs", self.compute_output_shape(inputs.shape), inputs.itemsize,
                           f"the output (inputs padded by padding={self.padding})")
        return np.pad(inputs, widths)

    def _backward(self, ctx, grad, need_input_grad):
        index = [slice(None)] * grad.ndim
        for axis, (before, after) in zip(self._axes(), self._pairs()):
            index[axis] = slice(before, grad.shape[axis] - after)
        return grad[tuple(index)]

    def get_config(self):
        padding = [list(p) for p in self.padding] if self._spatial > 1 else list(self.padding)
        return {**super().get_config(), "padding": padding, "data_format": self.data_format}


class ZeroPadding1D(_Padding):
    """Pads the steps axis of a 3-D input with zeros: `padding` an int (both ends) or a pair
    (before, after); data_format "channels_last" (batch, steps, features) or "channels_first".

    Args:
        padding: `"valid"` (no padding) or `"same"` (zero padding so that the output has `ceil(input /
            stride)` positions).
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
    """

    _input_ndim = 3

    def __init__(self, padding: int | tuple[int, int] = 1, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = _checks.data_format(data_format)
        self.padding = _amount_pair("padding", padding, "an int or a pair of ints (before, after)")


class ZeroPadding2D(_Padding):
    """Pads the two image axes of a 4-D input with zeros: `padding` an int, a pair (symmetric
    height, symmetric width) or ((top, bottom), (left, right)).

    Args:
        padding: `"valid"` (no padding) or `"same"` (zero padding so that the output has `ceil(input /
            stride)` positions).
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
    """

    _input_ndim = 4
    _spatial = 2

    def __init__(self, padding: Any = (1, 1), data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = _checks.data_format(data_format)
        self.padding = _amount_pairs_2d("padding", padding)


class _Cropping(Layer):
    """Cropping of the spatial axes; `self.cropping` holds one (before, after) pair per axis. As in
    Keras, what is left of each axis must not be empty."""

    _spatial = 1
    data_format = "channels_last"

    def _pairs(self):
        return self.cropping if self._spatial > 1 else (self.cropping,)

    def _axes(self):
        return _spatial_axes(self.data_format, self._spatial)

    def compute_output_shape(self, input_shape):
        check_rank(self, input_shape)
        shape = list(input_shape)
        for axis, (before, after) in zip(self._axes(), self._pairs()):
            if shape[axis] is not None:
                if before + after >= shape[axis]:
                    raise ValueError(f"{self._who()}: cropping={self.cropping} must leave something of each cropped "
                                     f"axis: it removes {before + after} of the {shape[axis]} entries of axis {axis} "
                                     f"of inputs of shape {tuple(input_shape)}")
                shape[axis] -= before + after
        return tuple(shape)

    def _check_input(self, x):
        super()._check_input(x)
        self.compute_output_shape(x.shape)

    def _forward(self, ctx, inputs, training):
        ctx.shape = inputs.shape
        return inputs[self._index(inputs.shape)]

    def _index(self, shape):
        index = [slice(None)] * len(shape)
        for axis, (before, after) in zip(self._axes(), self._pairs()):
            index[axis] = slice(before, shape[axis] - after)
        return tuple(index)

    def _backward(self, ctx, grad, need_input_grad):
        dx = np.zeros(ctx.shape, dtype=grad.dtype)
        dx[self._index(ctx.shape)] = grad
        return dx


class Cropping1D(_Cropping):
    """Crops the steps axis of a (batch, steps, features) input: `cropping` an int (both ends) or a
    pair (before, after).

    Args:
        cropping: Int or tuple: how many positions to remove at the start and end of each spatial axis.
    """

    _input_ndim = 3

    def __init__(self, cropping: Any = (1, 1), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cropping = _amount_pair("cropping", cropping, "an int or a pair of ints (before, after)")

    def get_config(self):
        return {**super().get_config(), "cropping": list(self.cropping)}


class Cropping2D(_Cropping):
    """Crops the two image axes of a 4-D input: `cropping` an int, a pair (symmetric height,
    symmetric width) or ((top, bottom), (left, right)).

    Args:
        cropping: Int or tuple: how many positions to remove at the start and end of each spatial axis.
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
    """

    _input_ndim = 4
    _spatial = 2

    def __init__(self, cropping: Any = ((0, 0), (0, 0)), data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = _checks.data_format(data_format)
        self.cropping = _amount_pairs_2d("cropping", cropping)

    def get_config(self):
        return {**super().get_config(), "cropping": [list(p) for p in self.cropping], "data_format": self.data_format}


class UpSampling1D(Layer):
    """Repeats each step of a (batch, steps, features) input `size` times along the steps axis.

    Args:
        size: Int or tuple of ints: the upsampling factor along each spatial axis.
    """

    _input_ndim = 3

    def __init__(self, size: int | tuple[int, ...] = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = _checks.positive_int("size", size)

    def compute_output_shape(self, input_shape):
        check_rank(self, input_shape)
        steps = input_shape[1]
        return (input_shape[0], None if steps is None else steps * self.size, input_shape[2])

    def _forward(self, ctx, inputs, training):
        _checks.check_size(f"{self._who()}: inputs", self.compute_output_shape(inputs.shape), inputs.itemsize,
                           f"the output (steps repeated size={self.size} times)")
        return np.repeat(inputs, self.size, axis=1)

    def _backward(self, ctx, grad, need_input_grad):
        n, t, c = grad.shape
        return grad.reshape(n, t // self.size, self.size, c).sum(axis=2)

    def get_config(self):
        return {**super().get_config(), "size": self.size}
