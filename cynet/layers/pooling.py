"""Pooling and upsampling layers."""
from typing import Any

from .. import _validation, kernels
from .base import Layer


class _Pooling2D(Layer):
    _input_ndim = 4
    _nonempty_input = True

    def __init__(self, pool_size: int | tuple[int, ...] = (2, 2), strides: int | tuple[int, ...] | None = None,
                 padding: str = "valid", data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_size = _validation.int_pair("pool_size", pool_size)
        self.strides = self.pool_size if strides is None else _validation.int_pair("strides", strides)
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same'; received padding={padding!r}")
        self.padding = padding.lower()
        self.data_format = _validation.data_format(data_format)

    def _args(self):
        return dict(pool_size=self.pool_size, strides=self.strides, padding=self.padding,
                    data_format=self.data_format)

    def compute_output_shape(self, input_shape):
        try:
            return kernels.pool2d_output_shape(input_shape, **self._args())
        except ValueError as exc:
            raise ValueError(f"{self._who()}: inputs of shape {tuple(input_shape)} do not fit: {exc}") from None

    def _check_input(self, x):
        super()._check_input(x)
        self.compute_output_shape(x.shape)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": self.padding, "data_format": self.data_format}


class MaxPooling2D(_Pooling2D):
    """Max pooling; backward routes each gradient to its window's first maximum.

    Args:
        pool_size: Int or tuple of ints: the size of the pooling window.
        strides: Int or tuple of ints: the stride of the window along each spatial axis.
        padding: `"valid"` (no padding) or `"same"` (zero padding so that the output has `ceil(input /
            stride)` positions).
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
    """

    def _forward(self, ctx, inputs, training):
        ctx.shape = inputs.shape
        y, ctx.argmax = kernels.max_pool2d_forward(inputs, **self._args())
        return y

    def _backward(self, ctx, grad, need_input_grad):
        return kernels.max_pool2d_backward(grad, ctx.argmax, ctx.shape, **self._args())


class AveragePooling2D(_Pooling2D):
    """Average pooling; with padding="same" the padded cells are excluded from each average.

    Args:
        pool_size: Int or tuple of ints: the size of the pooling window.
        strides: Int or tuple of ints: the stride of the window along each spatial axis.
        padding: `"valid"` (no padding) or `"same"` (zero padding so that the output has `ceil(input /
            stride)` positions).
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
    """

    def _forward(self, ctx, inputs, training):
        ctx.shape = inputs.shape
        return kernels.avg_pool2d_forward(inputs, **self._args())

    def _backward(self, ctx, grad, need_input_grad):
        return kernels.avg_pool2d_backward(grad, ctx.shape, **self._args())


class _GlobalPooling2D(Layer):
    _input_ndim = 4
    _nonempty_input = True

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = _validation.data_format(data_format)
        self.keepdims = _validation.flag("keepdims", keepdims)

    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def compute_output_shape(self, input_shape):
        c = input_shape[self._channel_axis()]
        if not self.keepdims:
            return (input_shape[0], c)
        return (input_shape[0], 1, 1, c) if self.data_format == "channels_last" else (input_shape[0], c, 1, 1)

    def _shape_out(self, y, input_shape):
        return y.reshape((y.shape[0],) + self.compute_output_shape(input_shape)[1:]) if self.keepdims else y

    @staticmethod
    def _grad_flat(grad):
        return grad.reshape(grad.shape[0], -1)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling2D):
    """Average over the spatial axes of a 4-D input: (batch, channels), or (batch, 1, 1, channels) with
    `keepdims=True`.

    Args:
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
        keepdims: Whether to keep the pooled spatial axes with size 1.
    """
    def _forward(self, ctx, inputs, training):
        ctx.shape = inputs.shape
        return self._shape_out(kernels.global_avg_pool2d_forward(inputs, data_format=self.data_format), inputs.shape)

    def _backward(self, ctx, grad, need_input_grad):
        return kernels.global_avg_pool2d_backward(self._grad_flat(grad), ctx.shape, data_format=self.data_format)


class GlobalMaxPooling2D(_GlobalPooling2D):
    """Maximum over the spatial axes of a 4-D input: (batch, channels), or (batch, 1, 1, channels) with
    `keepdims=True`.

    Args:
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
        keepdims: Whether to keep the pooled spatial axes with size 1.
    """
    def _forward(self, ctx, inputs, training):
        ctx.shape = inputs.shape
        y, ctx.argmax = kernels.global_max_pool2d_forward(inputs, data_format=self.data_format)
        return self._shape_out(y, inputs.shape)

    def _backward(self, ctx, grad, need_input_grad):
        return kernels.global_max_pool2d_backward(self._grad_flat(grad), ctx.argmax, ctx.shape,
                                                  data_format=self.data_format)


class UpSampling2D(Layer):
    """Nearest-neighbour upsampling by `size` (int or pair).

    Args:
        size: Int or tuple of ints: the upsampling factor along each spatial axis.
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
        interpolation: Interpolation method: `"bilinear"` or `"nearest"`.
    """

    _input_ndim = 4
    _nonempty_input = True

    def __init__(self, size: int | tuple[int, ...] = (2, 2), data_format: str | None = None,
                 interpolation: str = "nearest", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = _validation.int_pair("size", size)
        self.data_format = _validation.data_format(data_format)
        if not isinstance(interpolation, str) or interpolation != "nearest":
            raise ValueError(f"only interpolation='nearest' is supported; received interpolation={interpolation!r}")
        self.interpolation = interpolation

    def compute_output_shape(self, input_shape):
        n, a, b, c = input_shape
        if self.data_format == "channels_last":
            return (n, _mul(a, self.size[0]), _mul(b, self.size[1]), c)
        return (n, a, _mul(b, self.size[0]), _mul(c, self.size[1]))

    def _forward(self, ctx, inputs, training):
        try:
            return kernels.upsampling2d_forward(inputs, size=self.size, data_format=self.data_format)
        except ValueError as exc:
            raise ValueError(f"{self._who()}: inputs of shape {inputs.shape}: {exc}") from None

    def _backward(self, ctx, grad, need_input_grad):
        return kernels.upsampling2d_backward(grad, size=self.size, data_format=self.data_format)

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), "data_format": self.data_format,
                "interpolation": self.interpolation}


def _mul(a, b):
    return None if a is None else a * b
