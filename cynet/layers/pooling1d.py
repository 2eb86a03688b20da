"""1-D pooling (Keras 3).

MaxPooling1D and AveragePooling1D run the 2-D pooling kernels on a height-1 view of their
(batch, steps, features) input ((batch, features, steps) for channels_first): the same
semantics as MaxPooling2D / AveragePooling2D along the steps (padding "valid" or "same", the
padded cells never win a max and are left out of averages).

GlobalAveragePooling1D and GlobalMaxPooling1D pool over the steps axis
of a 3-D input, (batch, steps, features) with data_format "channels_last" (the default) or
(batch, features, steps) with "channels_first"; `keepdims=True` keeps the steps axis with size 1.

GlobalMaxPooling1D routes each gradient to the first maximum along the steps (`argmax`), as the
2-D pooling kernels do; a NaN counts as the maximum (the output is NaN, as np.max gives, and the
first NaN gets the gradient). The steps axis must not be empty (there is nothing to pool); an
empty batch or an empty features axis is fine.

GlobalAveragePooling1D is mask-aware (Keras 3): with a (batch, steps) mask it averages the kept
steps only (a sample with every step masked gives 0/0 = NaN, as Keras does), and its output has
no mask. GlobalMaxPooling1D, as in Keras, does not support masks.
"""
from typing import Any

import numpy as np

from .. import _validation as _checks, kernels
from .base import Layer, as_mask
from .reshaping import check_rank


def _positive(name, value):
    """A Keras 1-D window argument: a positive int or a 1-tuple of one."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"{name} must be a positive int or a tuple of 1 positive int; received {name}={value!r}")
        value = value[0]
    return _checks.positive_int(name, value)


class _Pooling1D(Layer):
    _input_ndim = 3
    _nonempty_input = True

    def __init__(self, pool_size: int | tuple[int, ...] = 2, strides: int | tuple[int, ...] | None = None,
                 padding: str = "valid", data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_size = (_positive("pool_size", pool_size),)
        self.strides = self.pool_size if strides is None else (_positive("strides", strides),)
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same'; received padding={padding!r}")
        self.padding = padding.lower()
        self.data_format = _checks.data_format(data_format)

    def _axis(self):
        """Where the height-1 axis of the 2-D view goes."""
        return 1 if self.data_format == "channels_last" else 2

    def _args(self):
        return dict(pool_size=(1,) + self.pool_size, strides=(1,) + self.strides, padding=self.padding,
                    data_format=self.data_format)

    def _view(self, a):
        return np.expand_dims(a, self._axis())

    def _unview(self, a):
        return a.reshape(a.shape[:self._axis()] + a.shape[self._axis() + 1:])

    def _shape_2d(self, shape):
        shape = tuple(shape)
        return shape[:self._axis()] + (1,) + shape[self._axis():]

    def compute_output_shape(self, input_shape):
        check_rank(self, input_shape)
        try:
            out = kernels.pool2d_output_shape(self._shape_2d(input_shape), **self._args())
        except ValueError as exc:
            raise ValueError(f"{self._who()}: inputs of shape {tuple(input_shape)} do not fit: {exc}") from None
        return out[:self._axis()] + out[self._axis() + 1:]

    def _check_input(self, x):
        super()._check_input(x)
        self.compute_output_shape(x.shape)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": self.padding, "data_format": self.data_format}


class MaxPooling1D(_Pooling1D):
    """Max pooling over the steps; the backward routes each gradient to its window's first maximum.

    Args:
        pool_size: Int or tuple of ints: the size of the pooling window.
        strides: Int or tuple of ints: the stride of the window along each spatial axis.
        padding: `"valid"` (no padding) or `"same"` (zero padding so that the output has `ceil(input /
            stride)` positions).
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
    """

    def _forward(self, ctx, inputs, training):
        ctx.shape = self._shape_2d(inputs.shape)
        y, ctx.argmax = kernels.max_pool2d_forward(self._view(inputs), **self._args())
        return self._unview(y)

    def _backward(self, ctx, grad, need_input_grad):
        return self._unview(kernels.max_pool2d_backward(self._view(grad), ctx.argmax, ctx.shape, **self._args()))


class AveragePooling1D(_Pooling1D):
    """Average pooling over the steps; with padding="same" the padded cells are left out of each average.

    Args:
        pool_size: Int or tuple of ints: the size of the pooling window.
        strides: Int or tuple of ints: the stride of the window along each spatial axis.
        padding: `"valid"` (no padding) or `"same"` (zero padding so that the output has `ceil(input /
            stride)` positions).
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
    """

    def _forward(self, ctx, inputs, training):
        ctx.shape = self._shape_2d(inputs.shape)
        return self._unview(kernels.avg_pool2d_forward(self._view(inputs), **self._args()))

    def _backward(self, ctx, grad, need_input_grad):
        return self._unview(kernels.avg_pool2d_backward(self._view(grad), ctx.shape, **self._args()))


class _GlobalPooling1D(Layer):
    _input_ndim = 3

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = _checks.data_format(data_format)
        self.keepdims = _checks.flag("keepdims", keepdims)

    def _steps_axis(self):
        return 1 if self.data_format == "channels_last" else 2

    def compute_output_shape(self, input_shape):
        check_rank(self, input_shape)
        n = input_shape[0]
        if self.data_format == "channels_last":
            c = input_shape[2]
            return (n, 1, c) if self.keepdims else (n, c)
        c = input_shape[1]
        return (n, c, 1) if self.keepdims else (n, c)

    def _check_input(self, x):
        super()._check_input(x)
        if x.shape[self._steps_axis()] == 0:
            raise ValueError(f"{self._who()}: inputs must have at least one step to pool (axis "
                             f"{self._steps_axis()}); received shape {tuple(x.shape)}")

    def _grad_kept(self, grad):
        """The output gradient with the steps axis kept (size 1)."""
        return grad if self.keepdims else np.expand_dims(grad, self._steps_axis())

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPooling1D):
    """The mean over the steps axis (over the kept steps, given a mask).

    Args:
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
        keepdims: Whether to keep the pooled spatial axes with size 1.
    """

    supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None

    def _checked_mask(self, mask, x, what="mask"):
        """A (batch, steps) mask."""
        m = as_mask(self._who(), mask, what)
        expected = (x.shape[0], x.shape[self._steps_axis()])
        if m.shape != expected:
            raise ValueError(f"{self._who()}: {what} must have shape (batch, steps) = {expected} for inputs of shape "
                             f"{x.shape}; received shape {m.shape}")
        return m

    def _forward(self, ctx, inputs, training, mask=None):
        ctx.shape = inputs.shape
        axis = self._steps_axis()
        if mask is None:
            ctx.weights = None
            return inputs.mean(axis=axis, keepdims=self.keepdims)
        kept = np.expand_dims(mask, 2 if axis == 1 else 1)
        count = kept.sum(axis=axis, keepdims=True, dtype=inputs.dtype)
        with np.errstate(invalid="ignore", divide="ignore"):   # every step masked: 0/0 = NaN, as Keras
            y = np.where(kept, inputs, inputs.dtype.type(0)).sum(axis=axis, keepdims=True) / count
            ctx.weights = kept / count
        return y if self.keepdims else np.squeeze(y, axis)

    def _backward(self, ctx, grad, need_input_grad):
        g = self._grad_kept(grad)
        if ctx.weights is not None:
            return g * ctx.weights
        steps = ctx.shape[self._steps_axis()]
        return np.broadcast_to(g * grad.dtype.type(1.0 / steps), ctx.shape).copy()


class GlobalMaxPooling1D(_GlobalPooling1D):
    """The maximum over the steps axis; the gradient goes to the first maximum.

    Args:
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
        keepdims: Whether to keep the pooled spatial axes with size 1.
    """

    def _forward(self, ctx, inputs, training):
        axis = self._steps_axis()
        ctx.shape = inputs.shape
        ctx.argmax = np.expand_dims(np.argmax(inputs, axis=axis), axis)
        y = np.take_along_axis(inputs, ctx.argmax, axis=axis)
        return y if self.keepdims else np.squeeze(y, axis)

    def _backward(self, ctx, grad, need_input_grad):
        axis = self._steps_axis()
        dx = np.zeros(ctx.shape, dtype=grad.dtype)
        np.put_along_axis(dx, ctx.argmax, self._grad_kept(grad), axis=axis)
        return dx
