"""Convolution layers (Keras 3): Conv1D, Conv2D, Conv1DTranspose, Conv2DTranspose.

All four run on the 2-D kernels of cynet.kernels.conv. A 1-D layer sees its (batch, steps,
channels) input (channels_first: (batch, channels, steps)) as an image of height 1 and its
(k, in, out) kernel as a (1, k, in, out) one: views, no copies. "causal" padding (Conv1D) is
the explicit left padding dilation_rate * (kernel_size - 1).

Kernel shapes (Keras's): Conv (k..., in_channels / groups, filters); ConvTranspose
(k..., filters, in_channels).
"""
from typing import Any

import numpy as np

from .. import _validation, activations, constraints, initializers, kernels, regularizers
from .. import tape as _tape
from . import _precision
from .base import Layer, add_grad, set_kernel_options
from .core import ActivationMixin
from .pooling import MaxPooling2D


def _tuple(name, value, rank):
    """A Keras int-or-tuple argument as a tuple of `rank` positive ints."""
    if rank == 2:
        return _validation.int_pair(name, value)
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"{name} must be a positive int or a tuple of 1 positive int; received {name}={value!r}")
        value = value[0]
    return (_validation.positive_int(name, value),)


class _Conv(ActivationMixin, Layer):
    """What Conv1D, Conv2D and their transposes share: the arguments, the weights, the 1-D views."""

    _rank = 2
    _input_ndim = 4
    _transpose = False
    _nonempty_input = True

    def __init__(self, filters: int, kernel_size: int | tuple[int, ...], strides: int | tuple[int, ...] | None,
                 padding: str, data_format: str | None, dilation_rate: int | tuple[int, ...], activation: Any,
                 use_bias: bool, kernel_initializer: Any, bias_initializer: Any, kernel_regularizer: Any,
                 bias_regularizer: Any, activity_regularizer: Any, kernel_constraint: Any, bias_constraint: Any,
                 **kwargs: Any) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        rank = self._rank
        self.filters = _validation.positive_int("filters", filters)
        self.kernel_size = _tuple("kernel_size", kernel_size, rank)
        self.strides = _tuple("strides", strides, rank)
        self.dilation_rate = _tuple("dilation_rate", dilation_rate, rank)
        modes = ("valid", "same", "causal") if (rank == 1 and not self._transpose) else ("valid", "same")
        if not isinstance(padding, str) or padding.lower() not in modes:
            raise ValueError(f"padding must be one of {', '.join(repr(m) for m in modes)}; "
                             f"received padding={padding!r}")
        self.padding = padding.lower()
        self.data_format = _validation.data_format(data_format)
        set_kernel_options(self, activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                           bias_regularizer, kernel_constraint, bias_constraint)

    # --- the 1-D layers as height-1 2-D ones
    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def _spatial_axis(self):
        """Where a 1-D input gets its height-1 axis."""
        return 1 if self.data_format == "channels_last" else 2

    def _as_2d(self, a):
        return a if self._rank == 2 else np.expand_dims(a, self._spatial_axis())

    def _as_2d_shape(self, shape):
        shape = tuple(shape)
        if self._rank == 2:
            return shape
        i = self._spatial_axis()
        return shape[:i] + (1,) + shape[i:]

    def _from_2d(self, a):
        return a if self._rank == 2 else a.reshape(a.shape[:self._spatial_axis()] + a.shape[self._spatial_axis() + 1:])

    def _from_2d_shape(self, shape):
        if self._rank == 2:
            return tuple(shape)
        i = self._spatial_axis()
        return tuple(shape[:i]) + tuple(shape[i + 1:])

    def _pair(self, values):
        return tuple(values) if self._rank == 2 else (1,) + tuple(values)

    def _kernel_2d(self):
        k = self.kernel.value
        return k if self._rank == 2 else k.reshape((1,) + k.shape)

    # --- weights
    def _kernel_shape(self, channels):
        raise NotImplementedError

    def build(self, input_shape):
        if len(input_shape) != self._rank + 2:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects {self._rank + 2}-D inputs (batch, ...); "
                             f"received shape {input_shape}")
        axis = self._channel_axis()
        channels = input_shape[axis]
        if channels is None:
            raise ValueError(f"{self._who()}: the channel axis of the inputs must be known; received shape "
                             f"{tuple(input_shape)}")
        self._input_axes = {axis: channels}
        self.kernel = self.add_weight(self._kernel_shape(channels), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, name="kernel",
                                      constraint=self.kernel_constraint)
        self.bias = (self.add_weight((self.filters,), self.bias_initializer, regularizer=self.bias_regularizer,
                                     name="bias", constraint=self.bias_constraint) if self.use_bias else None)
        self.built = True

    def compute_output_shape(self, input_shape):
        try:
            return self._from_2d_shape(self._output_shape_2d(self._as_2d_shape(input_shape)))
        except ValueError as exc:
            raise ValueError(f"{self._who()}: inputs of shape {tuple(input_shape)} do not fit: {exc}") from None

    def _forward(self, ctx, inputs, training):
        self.compute_output_shape(inputs.shape)
        ctx.inputs = inputs
        with _precision.conv_products(self):
            z = self._call_kernel(self._as_2d(inputs), self._kernel_2d(), self.bias.value if self.use_bias else None)
        return self._activate(ctx, self._from_2d(z))

    def _backward_from_logits(self, ctx, grad_logits, need_input_grad):
        with _precision.conv_products(self):
            dx, dk, db = self._call_backward(self._as_2d(grad_logits), self._as_2d(ctx.inputs), self._kernel_2d(),
                                             need_input_grad)
        add_grad(self.kernel, dk.reshape(self.kernel.shape))
        if self.use_bias:
            add_grad(self.bias, db)
        return None if dx is None else self._from_2d(dx)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": list(self.dilation_rate), "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(initializers.get(self.kernel_initializer)),
                "bias_initializer": initializers.serialize(initializers.get(self.bias_initializer)),
                "kernel_regularizer": None if self.kernel_regularizer is None
                else regularizers.serialize(regularizers.get(self.kernel_regularizer)),
                "bias_regularizer": None if self.bias_regularizer is None
                else regularizers.serialize(regularizers.get(self.bias_regularizer)),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}


class _ConvForward(_Conv):
    """Conv1D and Conv2D: cross-correlation (as Keras), with groups."""

    def __init__(self, filters: int, kernel_size: int | tuple[int, ...], strides: int | tuple[int, ...] | None,
                 padding: str, data_format: str | None, dilation_rate: int | tuple[int, ...], groups: int,
                 activation: Any, use_bias: bool, kernel_initializer: Any, bias_initializer: Any,
                 kernel_regularizer: Any, bias_regularizer: Any,
                 activity_regularizer: Any, kernel_constraint: Any, bias_constraint: Any,
                 **kwargs: Any) -> None:
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)
        self.groups = _validation.positive_int("groups", groups)
        if self.filters % self.groups:
            raise ValueError(f"filters must be divisible by groups; received filters={self.filters} and "
                             f"groups={self.groups}")

    def _kernel_shape(self, channels):
        if channels % self.groups:
            raise ValueError(f"{self._who()}: the input channels ({channels}) must be divisible by "
                             f"groups={self.groups}")
        return self.kernel_size + (channels // self.groups, self.filters)

    def _conv_args(self):
        padding = self.padding
        if padding == "causal":   # only Conv1D: left padding of the dilated window minus one
            padding = ((0, 0), (self.dilation_rate[0] * (self.kernel_size[0] - 1), 0))
        return dict(strides=self._pair(self.strides), padding=padding, dilation_rate=self._pair(self.dilation_rate),
                    data_format=self.data_format)

    def _output_shape_2d(self, shape):
        return kernels.conv2d_output_shape(shape, self._pair(self.kernel_size), filters=self.filters,
                                           **self._conv_args())

    def _plain_relu(self):
        """A float32 layer of one group with activation="relu" (plain): whose ReLU a kernel may take."""
        act = self.activation
        return (self.dtype == np.float32 and self.groups == 1 and isinstance(act, activations.Activation)
                and act.name == "relu" and getattr(act, "_plain", False))

    def _fuses_relu(self):
        """True where the ReLU runs inside the convolution's kernel: under a bfloat16 policy
        (mixed_bfloat16) with activation="relu" (plain) and groups 1. The kernel then adds the
        bias and takes the ReLU on each block of the output while it is in cache, and its
        backward takes the ReLU's gradient block by block (cynet.kernels.conv._bf16_relu_forward);
        the call's record keeps only the ReLU's bits (1 bit per output where it is > 0: all relu's
        gradient reads, 32x smaller than the output, which the record no longer holds)."""
        return self._bf16 and self._plain_relu()

    def _forward(self, ctx, inputs, training):
        if not self._fuses_relu():
            return super()._forward(ctx, inputs, training)
        self.compute_output_shape(inputs.shape)
        ctx.inputs = inputs
        y, ctx.relu_bits = kernels.conv._bf16_relu_forward(
            self._as_2d(inputs), self._kernel_2d(), self.bias.value if self.use_bias else None, bits=True,
            **self._conv_args())
        ctx.fused_relu = True
        return self._from_2d(y)

    def _backward(self, ctx, grad, need_input_grad):
        if getattr(ctx, "pool_record", None) is not None:   # (_fuse_next)
            dx, dk, db = kernels.conv._relu_maxpool_backward(
                grad, ctx.inputs, self.kernel.value, ctx.pool_record, self.strides, self.dilation_rate,
                use_bias=self.use_bias, compute_dx=need_input_grad, bf16=self._bf16)
        elif getattr(ctx, "fused_relu", False):
            dx, dk, db = kernels.conv._bf16_relu_backward(
                self._as_2d(grad), self._as_2d(ctx.inputs), self._kernel_2d(), ctx.relu_bits,
                use_bias=self.use_bias, compute_dx=need_input_grad, **self._conv_args())
        else:
            return super()._backward(ctx, grad, need_input_grad)
        add_grad(self.kernel, dk.reshape(self.kernel.shape))
        if self.use_bias:
            add_grad(self.bias, db)
        return None if dx is None else self._from_2d(dx)

    def _call_kernel(self, x, kernel, bias):
        return kernels.conv2d_forward(x, kernel, bias, groups=self.groups, **self._conv_args())

    def _call_backward(self, dy, x, kernel, need_input_grad):
        return kernels.conv2d_backward(dy, x, kernel, use_bias=self.use_bias, compute_dx=need_input_grad,
                                       groups=self.groups, **self._conv_args())

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


class Conv2D(_ConvForward):
    """2-D convolution, Keras 3 arguments; kernel shape (kh, kw, in_channels / groups, filters).

    Args:
        filters: number of output channels.
        kernel_size: int or pair.
        strides: int or pair (default 1).
        padding: "valid" or "same" (Keras semantics, also for even kernels and strides > 1).
        data_format: "channels_last" (default, None) or "channels_first".
        dilation_rate: int or pair.
        groups: positive int dividing the input channels and filters (grouped convolution).
        activation: Activation function (name or callable); `None` means linear (`a(x) = x`).
        use_bias: Whether the layer adds a bias vector.
        kernel_initializer: Initializer of the kernel weights (name or Initializer).
        bias_initializer: Initializer of the bias vector.
        kernel_regularizer: Regularizer applied to the kernel weights, or `None`.
        bias_regularizer: Regularizer applied to the bias vector, or `None`.
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is
            added to the loss), or `None`.
        kernel_constraint: Constraint the optimizer applies to the kernel after each update, or `None`.
        bias_constraint: Constraint applied to the bias after each update, or `None`.
    """

    def __init__(self, filters: int, kernel_size: int | tuple[int, ...],
                 strides: int | tuple[int, ...] | None = (1, 1), padding: str = "valid",
                 data_format: str | None = None, dilation_rate: int | tuple[int, ...] = (1, 1), groups: int = 1,
                 activation: Any = None, use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, groups, activation,
                         use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)

    def _fuse_next(self, layer, x):
        """A valid float32 Conv2D with activation="relu" (in float32 or under mixed_bfloat16)
        followed by a 2x2 / stride 2 / valid MaxPooling2D (channels_last, no activity regularizer
        on either) on an image whose patch is short (the first convolution of an image model:
        K = 3 x 3 x 1) runs as one kernel where it runs in one pass (AVX-512F:
        kernels.conv._relu_maxpool_*): the convolution's output, 4x the pooled one, is never
        written, and the backward reads only the pooled gradient and 1 bit per pooled output and
        window cell. The two calls' outputs (bit for bit under mixed_bfloat16) and gradients, up
        to float32 summation order."""
        if not (type(self) is Conv2D and type(layer) is MaxPooling2D and type(x) is np.ndarray and x.ndim == 4
                and self._plain_relu()
                and self.padding == "valid" and self.data_format == "channels_last"
                and self.activity_regularizer is None and layer.activity_regularizer is None
                and layer.pool_size == (2, 2) and layer.strides == (2, 2) and layer.padding == "valid"
                and layer.data_format == "channels_last" and _tape.active() is not None):
            return None
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.strides, self.dilation_rate
        if ((x.shape[1] - (kh - 1) * dh - 1) // sh < 1 or (x.shape[2] - (kw - 1) * dw - 1) // sw < 1
                or not kernels.conv._relu_maxpool_native((kh, kw, x.shape[3], self.filters))):
            return None   # (a convolution output of fewer than 2 x 2 positions: the usual calls' errors)

        def forward(ctx, inputs, training):
            layer._maybe_build((None,) + self.compute_output_shape(inputs.shape)[1:])
            ctx.inputs = inputs
            y, ctx.pool_record = kernels.conv._relu_maxpool_forward(
                inputs, self.kernel.value, self.bias.value if self.use_bias else None, self.strides,
                self.dilation_rate, bf16=self._bf16)
            return y

        return lambda inputs, training: self._run_call(_tape.active(), inputs, training, {}, forward)[1]


class Conv1D(_ConvForward):
    """1-D convolution over the steps of (batch, steps, channels) inputs (channels_first: (batch,
    channels, steps)); kernel shape (kernel_size, in_channels / groups, filters).

    Args as Conv2D, with ints (or 1-tuples) for kernel_size, strides and dilation_rate, and
    padding "valid", "same" or "causal" (output[t] depends on input[:t + 1] only: the input is
    padded on the left by dilation_rate * (kernel_size - 1)).

    Args:
        filters: Number of output channels (filters).
        kernel_size: Int or tuple of ints: the size of the convolution window.
        strides: Int or tuple of ints: the stride of the window along each spatial axis.
        padding: `"valid"` (no padding) or `"same"` (zero padding so that the output has `ceil(input /
            stride)` positions).
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
        dilation_rate: Int or tuple of ints: the dilation rate of the kernel along each spatial axis.
        groups: Positive int dividing the input channels and `filters`: each group of channels is convolved
            separately.
        activation: Activation function (name or callable); `None` means linear (`a(x) = x`).
        use_bias: Whether the layer adds a bias vector.
        kernel_initializer: Initializer of the kernel weights (name or Initializer).
        bias_initializer: Initializer of the bias vector.
        kernel_regularizer: Regularizer applied to the kernel weights, or `None`.
        bias_regularizer: Regularizer applied to the bias vector, or `None`.
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is
            added to the loss), or `None`.
        kernel_constraint: Constraint the optimizer applies to the kernel after each update, or `None`.
        bias_constraint: Constraint applied to the bias after each update, or `None`.
    """

    _rank = 1
    _input_ndim = 3

    def __init__(self, filters: int, kernel_size: int | tuple[int, ...], strides: int | tuple[int, ...] | None = 1,
                 padding: str = "valid", data_format: str | None = None, dilation_rate: int | tuple[int, ...] = 1,
                 groups: int = 1, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None,
                 bias_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, groups, activation,
                         use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)


class _ConvTranspose(_Conv):
    """Conv1DTranspose and Conv2DTranspose: the adjoint of a convolution (the gradient of a Conv
    with respect to its input), output sizes per Keras's rule."""

    _transpose = True

    def __init__(self, filters: int, kernel_size: int | tuple[int, ...], strides: int | tuple[int, ...] | None,
                 padding: str, output_padding: int | tuple[int, ...] | None, data_format: str | None,
                 dilation_rate: int | tuple[int, ...], activation: Any, use_bias: bool, kernel_initializer: Any,
                 bias_initializer: Any, kernel_regularizer: Any, bias_regularizer: Any,
                 activity_regularizer: Any, kernel_constraint: Any,
                 bias_constraint: Any, **kwargs: Any) -> None:
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)
        if output_padding is None:
            self.output_padding = None
        else:
            if isinstance(output_padding, (list, tuple)) and len(output_padding) != self._rank:
                raise ValueError(f"output_padding must be None, an int or a tuple of {self._rank} ints; received "
                                 f"output_padding={output_padding!r}")
            values = output_padding if isinstance(output_padding, (list, tuple)) else (output_padding,) * self._rank
            self.output_padding = tuple(_validation.nonnegative_int("output_padding", v) for v in values)
            for op, s in zip(self.output_padding, self.strides):
                if op >= s:
                    raise ValueError(f"output_padding must be less than strides on each axis; received "
                                     f"output_padding={output_padding!r} and strides={self.strides}")

    def _kernel_shape(self, channels):
        return self.kernel_size + (self.filters, channels)

    def _conv_args(self):
        op = None if self.output_padding is None else (0,) * (2 - self._rank) + self.output_padding
        return dict(strides=self._pair(self.strides), padding=self.padding, output_padding=op,
                    dilation_rate=self._pair(self.dilation_rate), data_format=self.data_format)

    def _output_shape_2d(self, shape):
        return kernels.conv2d_transpose_output_shape(shape, self._pair(self.kernel_size), self.filters,
                                                     **self._conv_args())

    def _call_kernel(self, x, kernel, bias):
        return kernels.conv2d_transpose_forward(x, kernel, bias, **self._conv_args())

    def _call_backward(self, dy, x, kernel, need_input_grad):
        return kernels.conv2d_transpose_backward(dy, x, kernel, use_bias=self.use_bias, compute_dx=need_input_grad,
                                                 **self._conv_args())

    def get_config(self):
        return {**super().get_config(),
                "output_padding": None if self.output_padding is None else list(self.output_padding)}


class Conv2DTranspose(_ConvTranspose):
    """2-D transposed convolution (Keras 3); kernel shape (kh, kw, filters, in_channels).

    Args:
        filters: Number of output channels (filters).
        kernel_size: Int or tuple of ints: the size of the convolution window.
        strides: Int or tuple of ints: the stride of the window along each spatial axis.
        padding: "valid" or "same".
        output_padding: None (Keras's default output size: "valid" (H - 1) * s + max(ek, s), "same"
            H * s) or an int or pair, each less than its stride.
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
        dilation_rate: Int or tuple of ints: the dilation rate of the kernel along each spatial axis.
        activation: Activation function (name or callable); `None` means linear (`a(x) = x`).
        use_bias: Whether the layer adds a bias vector.
        kernel_initializer: Initializer of the kernel weights (name or Initializer).
        bias_initializer: Initializer of the bias vector.
        kernel_regularizer: Regularizer applied to the kernel weights, or `None`.
        bias_regularizer: Regularizer applied to the bias vector, or `None`.
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is
            added to the loss), or `None`.
        kernel_constraint: Constraint the optimizer applies to the kernel after each update, or `None`.
        bias_constraint: Constraint applied to the bias after each update, or `None`.
    """

    def __init__(self, filters: int, kernel_size: int | tuple[int, ...],
                 strides: int | tuple[int, ...] | None = (1, 1), padding: str = "valid",
                 output_padding: int | tuple[int, ...] | None = None, data_format: str | None = None,
                 dilation_rate: int | tuple[int, ...] = (1, 1), activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None,
                 bias_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(filters, kernel_size, strides, padding, output_padding, data_format, dilation_rate,
                         activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                         bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint, **kwargs)


class Conv1DTranspose(_ConvTranspose):
    """1-D transposed convolution (Keras 3); kernel shape (kernel_size, filters, in_channels).
    Args as Conv2DTranspose, with ints (or 1-tuples).

    Args:
        filters: Number of output channels (filters).
        kernel_size: Int or tuple of ints: the size of the convolution window.
        strides: Int or tuple of ints: the stride of the window along each spatial axis.
        padding: `"valid"` (no padding) or `"same"` (zero padding so that the output has `ceil(input /
            stride)` positions).
        output_padding: `None` (Keras's default output size) or an int or tuple: the padding added to the
            output along each spatial axis (each less than its stride).
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
        dilation_rate: Int or tuple of ints: the dilation rate of the kernel along each spatial axis.
        activation: Activation function (name or callable); `None` means linear (`a(x) = x`).
        use_bias: Whether the layer adds a bias vector.
        kernel_initializer: Initializer of the kernel weights (name or Initializer).
        bias_initializer: Initializer of the bias vector.
        kernel_regularizer: Regularizer applied to the kernel weights, or `None`.
        bias_regularizer: Regularizer applied to the bias vector, or `None`.
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is
            added to the loss), or `None`.
        kernel_constraint: Constraint the optimizer applies to the kernel after each update, or `None`.
        bias_constraint: Constraint applied to the bias after each update, or `None`.
    """

    _rank = 1
    _input_ndim = 3

    def __init__(self, filters: int, kernel_size: int | tuple[int, ...], strides: int | tuple[int, ...] | None = 1,
                 padding: str = "valid", output_padding: int | tuple[int, ...] | None = None,
                 data_format: str | None = None, dilation_rate: int | tuple[int, ...] = 1, activation: Any = None,
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None,
                 bias_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(filters, kernel_size, strides, padding, output_padding, data_format, dilation_rate,
                         activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                         bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint, **kwargs)
