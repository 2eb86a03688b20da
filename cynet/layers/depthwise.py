"""Depthwise and separable convolution layers (Keras 3 arguments, weight names, shapes and order).

DepthwiseConv2D filters each input channel by its own depth_multiplier windows (the depthwise
kernel family, cynet.kernels.depthwise); SeparableConv2D follows that depthwise step with a 1x1
pointwise convolution (cynet.kernels.conv, whose 1x1 case is one matrix product) and the bias.
The 1-D layers are the 2-D ones on a height-1 view: inputs (N, L, C) are seen as (N, 1, L, C)
(channels_first (N, C, L) as (N, C, 1, L)) and the 1-D kernels as their (1, ...) 2-D views,
without copies.
"""
from typing import Any

from .. import _validation, activations, constraints, initializers, kernels, regularizers
from .base import Layer, add_grad, check_activation, check_constraint, check_initializer, check_regularizer
from .core import ActivationMixin


def _tuple(name, value, rank):
    """kernel_size, strides or dilation_rate: an int or a tuple of `rank` positive ints."""
    if rank == 2:
        return _validation.int_pair(name, value)
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"{name} must be an int or a tuple of 1 int; received {name}={value!r}")
        value = value[0]
    return (_validation.positive_int(name, value),)


def _serialize_regularizer(value):
    return None if value is None else regularizers.serialize(regularizers.get(value))


class _DepthwiseBase(ActivationMixin, Layer):
    """The arguments, shapes and depthwise step shared by the depthwise and separable layers of
    rank 1 and 2. Subclasses set `_rank` and build their weights."""

    _rank = 2
    _nonempty_input = True

    def __init__(self, kernel_size: int | tuple[int, ...], strides: int | tuple[int, ...] | None, padding: str,
                 depth_multiplier: int, data_format: str | None, dilation_rate: int | tuple[int, ...], activation: Any,
                 use_bias: bool, depthwise_initializer: Any, bias_initializer: Any, depthwise_regularizer: Any,
                 bias_regularizer: Any, activity_regularizer: Any, depthwise_constraint: Any, bias_constraint: Any,
                 **kwargs: Any) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        rank = self._rank
        self.kernel_size = _tuple("kernel_size", kernel_size, rank)
        self.strides = _tuple("strides", strides, rank)
        self.dilation_rate = _tuple("dilation_rate", dilation_rate, rank)
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same'; received padding={padding!r}")
        self.padding = padding.lower()
        self.depth_multiplier = _validation.positive_int("depth_multiplier", depth_multiplier)
        self.data_format = _validation.data_format(data_format)
        self.activation = check_activation("activation", activation)
        self.use_bias = _validation.flag("use_bias", use_bias)
        self.depthwise_initializer = check_initializer("depthwise_initializer", depthwise_initializer,
                                                       "glorot_uniform")
        self.bias_initializer = check_initializer("bias_initializer", bias_initializer, "zeros")
        self.depthwise_regularizer = check_regularizer("depthwise_regularizer", depthwise_regularizer)
        self.bias_regularizer = check_regularizer("bias_regularizer", bias_regularizer)
        self.depthwise_constraint = check_constraint("depthwise_constraint", depthwise_constraint)
        self.bias_constraint = check_constraint("bias_constraint", bias_constraint)
        self._input_ndim = rank + 2

    # --- the 2-D view of a rank-1 layer
    def _pair(self, values):
        return tuple(values) if self._rank == 2 else (1,) + tuple(values)

    def _conv_args(self):
        return dict(strides=self._pair(self.strides), padding=self.padding,
                    dilation_rate=self._pair(self.dilation_rate), data_format=self.data_format)

    def _view4(self, a):
        """A rank-1 layer's (N, L, C) or (N, C, L) array as its 4-D height-1 view."""
        if self._rank == 2:
            return a
        return a[:, None] if self.data_format == "channels_last" else a[:, :, None]

    def _view_back(self, a):
        if self._rank == 2:
            return a
        return a[:, 0] if self.data_format == "channels_last" else a[:, :, 0]

    def _channels(self, input_shape):
        if len(input_shape) != self._rank + 2:
            raise ValueError(f"{self._who()} expects {self._rank + 2}-D inputs (batch, ...); "
                             f"received shape {tuple(input_shape)}")
        axis = -1 if self.data_format == "channels_last" else 1
        channels = input_shape[axis]
        if channels is None:
            raise ValueError(f"{self._who()}: the channel axis of the inputs must be known to build the kernel; "
                             f"received shape {tuple(input_shape)} (data_format={self.data_format!r})")
        self._input_axes = {axis: channels}
        return channels

    def _depthwise_shape(self, input_shape):
        """The output shape of the depthwise step (channels times depth_multiplier)."""
        shape = tuple(input_shape)
        try:
            if self._rank == 1:
                shape = shape[:1] + ((1,) + shape[1:] if self.data_format == "channels_last"
                                     else shape[1:2] + (1,) + shape[2:])
            out = kernels.depthwise_conv2d_output_shape(shape, self._pair(self.kernel_size),
                                                        depth_multiplier=self.depth_multiplier,
                                                        **self._conv_args())
        except ValueError as exc:
            raise ValueError(f"{self._who()}: inputs of shape {tuple(input_shape)} do not fit: {exc}") from None
        if self._rank == 1:
            out = out[:1] + out[2:] if self.data_format == "channels_last" else out[:2] + out[3:]
        return out

    def _depthwise_kernel4(self, variable):
        k = variable.value
        return k if self._rank == 2 else k[None]

    def _depthwise_config(self):
        return {"kernel_size": list(self.kernel_size), "strides": list(self.strides), "padding": self.padding,
                "data_format": self.data_format, "dilation_rate": list(self.dilation_rate),
                "depth_multiplier": self.depth_multiplier, "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "depthwise_initializer": initializers.serialize(initializers.get(self.depthwise_initializer)),
                "bias_initializer": initializers.serialize(initializers.get(self.bias_initializer)),
                "depthwise_regularizer": _serialize_regularizer(self.depthwise_regularizer),
                "bias_regularizer": _serialize_regularizer(self.bias_regularizer),
                "activity_regularizer": _serialize_regularizer(self.activity_regularizer),
                "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}


class DepthwiseConv2D(_DepthwiseBase):
    """Depthwise 2-D convolution: each input channel convolved with its own depth_multiplier
    filters, output channel c * depth_multiplier + m. Weights: kernel (kh, kw, in_channels,
    depth_multiplier), then bias (in_channels * depth_multiplier,).

    Args:
        kernel_size: int or pair.
        strides: int or pair (default 1).
        padding: "valid" or "same" (Keras semantics, also for even kernels and strides > 1).
        depth_multiplier: positive int, filters per input channel.
        data_format: "channels_last" (default, None) or "channels_first".
        dilation_rate: int or pair (default 1).
        activation: Activation function (name or callable); `None` means linear (`a(x) = x`).
        use_bias: Whether the layer adds a bias vector.
        depthwise_initializer: Initializer of the depthwise kernel.
        bias_initializer: Initializer of the bias vector.
        depthwise_regularizer: Regularizer of the depthwise kernel, or `None`.
        bias_regularizer: Regularizer applied to the bias vector, or `None`.
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is added to the
            loss), or `None`.
        depthwise_constraint: Constraint the optimizer applies to the depthwise kernel after each update, or `None`.
        bias_constraint: Constraint the optimizer applies to the bias after each update, or `None`.
    """

    def __init__(self, kernel_size: int | tuple[int, ...], strides: int | tuple[int, ...] | None = (1, 1),
                 padding: str = "valid", depth_multiplier: int = 1, data_format: str | None = None,
                 dilation_rate: int | tuple[int, ...] = (1, 1), activation: Any = None, use_bias: bool = True,
                 depthwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 depthwise_constraint: Any = None, bias_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
                         use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)

    def build(self, input_shape):
        channels = self._channels(input_shape)
        self.kernel = self.add_weight(self.kernel_size + (channels, self.depth_multiplier),
                                      self.depthwise_initializer, regularizer=self.depthwise_regularizer,
                                      name="kernel", constraint=self.depthwise_constraint)
        self.bias = (self.add_weight((channels * self.depth_multiplier,), self.bias_initializer,
                                     regularizer=self.bias_regularizer, name="bias", constraint=self.bias_constraint)
                     if self.use_bias else None)
        self.built = True

    def compute_output_shape(self, input_shape):
        return self._depthwise_shape(input_shape)

    def _forward(self, ctx, inputs, training):
        self.compute_output_shape(inputs.shape)
        ctx.inputs = inputs
        z = kernels.depthwise_conv2d_forward(self._view4(inputs), self._depthwise_kernel4(self.kernel),
                                             self.bias.value if self.use_bias else None, **self._conv_args())
        return self._activate(ctx, self._view_back(z))

    def _backward_from_logits(self, ctx, grad_logits, need_input_grad):
        dx, dk, db = kernels.depthwise_conv2d_backward(
            self._view4(grad_logits), self._view4(ctx.inputs), self._depthwise_kernel4(self.kernel),
            use_bias=self.use_bias, compute_dx=need_input_grad, **self._conv_args())
        add_grad(self.kernel, dk.reshape(self.kernel.shape))
        if self.use_bias:
            add_grad(self.bias, db)
        return None if dx is None else self._view_back(dx)

    def get_config(self):
        return {**super().get_config(), **self._depthwise_config()}


class DepthwiseConv1D(DepthwiseConv2D):
    """Depthwise 1-D convolution over (batch, steps, channels) (channels_first: (batch, channels,
    steps)). Weights: kernel (k, in_channels, depth_multiplier), then bias. Arguments as
    DepthwiseConv2D with ints (or 1-tuples) for kernel_size, strides and dilation_rate.

    Args:
        kernel_size: Int or tuple of ints: the size of the convolution window.
        strides: Int or tuple of ints: the stride of the window along each spatial axis.
        padding: `"valid"` (no padding) or `"same"` (zero padding so that the output has `ceil(input /
            stride)` positions).
        depth_multiplier: Number of depthwise output channels per input channel.
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
        dilation_rate: Int or tuple of ints: the dilation rate of the kernel along each spatial axis.
        activation: Activation function (name or callable); `None` means linear (`a(x) = x`).
        use_bias: Whether the layer adds a bias vector.
        depthwise_initializer: Initializer of the depthwise kernel.
        bias_initializer: Initializer of the bias vector.
        depthwise_regularizer: Regularizer of the depthwise kernel, or `None`.
        bias_regularizer: Regularizer applied to the bias vector, or `None`.
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is added to the
            loss), or `None`.
        depthwise_constraint: Constraint the optimizer applies to the depthwise kernel after each update, or `None`.
        bias_constraint: Constraint the optimizer applies to the bias after each update, or `None`.
    """

    _rank = 1

    def __init__(self, kernel_size: int | tuple[int, ...], strides: int | tuple[int, ...] | None = 1,
                 padding: str = "valid", depth_multiplier: int = 1, data_format: str | None = None,
                 dilation_rate: int | tuple[int, ...] = 1, activation: Any = None, use_bias: bool = True,
                 depthwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 depthwise_constraint: Any = None, bias_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
                         use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)


class SeparableConv2D(_DepthwiseBase):
    """Depthwise separable 2-D convolution: a depthwise convolution (no bias), then a 1x1
    pointwise convolution to `filters` channels, the bias and the activation. Weights, in Keras's
    order: depthwise_kernel (kh, kw, in_channels, depth_multiplier), pointwise_kernel
    (1, 1, in_channels * depth_multiplier, filters), bias (filters,).

    Args:
        filters: output channels.
        kernel_size: Int or tuple of ints: the size of the convolution window.
        strides: Int or tuple of ints: the stride of the window along each spatial axis.
        padding: `"valid"` (no padding) or `"same"` (zero padding so that the output has `ceil(input /
            stride)` positions).
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
        dilation_rate: Int or tuple of ints: the dilation rate of the kernel along each spatial axis.
        depth_multiplier: Number of depthwise output channels per input channel.
        activation: Activation function (name or callable); `None` means linear (`a(x) = x`).
        use_bias: Whether the layer adds a bias vector.
        depthwise_initializer: Initializer of the depthwise kernel.
        pointwise_initializer: Initializer of the pointwise (1x1) kernel.
        bias_initializer: Initializer of the bias vector.
        depthwise_regularizer: Regularizer of the depthwise kernel, or `None`.
        pointwise_regularizer: Regularizer of the pointwise kernel, or `None`.
        bias_regularizer: Regularizer applied to the bias vector, or `None`.
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is added to the
            loss), or `None`.
        depthwise_constraint: Constraint the optimizer applies to the depthwise kernel after each update, or `None`.
        bias_constraint: Constraint the optimizer applies to the bias after each update, or `None`.
        pointwise_constraint: Constraint the optimizer applies to the pointwise kernel after each update, or `None`.
    """

    def __init__(self, filters: int, kernel_size: int | tuple[int, ...],
                 strides: int | tuple[int, ...] | None = (1, 1), padding: str = "valid",
                 data_format: str | None = None, dilation_rate: int | tuple[int, ...] = (1, 1),
                 depth_multiplier: int = 1, activation: Any = None, use_bias: bool = True,
                 depthwise_initializer: Any = "glorot_uniform", pointwise_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", depthwise_regularizer: Any = None, pointwise_regularizer: Any = None,
                 bias_regularizer: Any = None, activity_regularizer: Any = None, depthwise_constraint: Any = None,
                 pointwise_constraint: Any = None, bias_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
                         use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)
        self.filters = _validation.positive_int("filters", filters)
        self.pointwise_initializer = check_initializer("pointwise_initializer", pointwise_initializer,
                                                       "glorot_uniform")
        self.pointwise_regularizer = check_regularizer("pointwise_regularizer", pointwise_regularizer)
        self.pointwise_constraint = check_constraint("pointwise_constraint", pointwise_constraint)

    def build(self, input_shape):
        channels = self._channels(input_shape)
        self.depthwise_kernel = self.add_weight(self.kernel_size + (channels, self.depth_multiplier),
                                                self.depthwise_initializer, regularizer=self.depthwise_regularizer,
                                                name="depthwise_kernel", constraint=self.depthwise_constraint)
        self.pointwise_kernel = self.add_weight((1,) * self._rank + (channels * self.depth_multiplier, self.filters),
                                                self.pointwise_initializer, regularizer=self.pointwise_regularizer,
                                                name="pointwise_kernel", constraint=self.pointwise_constraint)
        self.bias = (self.add_weight((self.filters,), self.bias_initializer, regularizer=self.bias_regularizer,
                                     name="bias", constraint=self.bias_constraint) if self.use_bias else None)
        self.built = True

    def compute_output_shape(self, input_shape):
        shape = list(self._depthwise_shape(input_shape))
        shape[-1 if self.data_format == "channels_last" else 1] = self.filters
        return tuple(shape)

    def _pointwise4(self):
        k = self.pointwise_kernel.value
        return k if self._rank == 2 else k[None]

    def _pointwise_args(self):
        return dict(data_format=self.data_format)

    def _forward(self, ctx, inputs, training):
        self.compute_output_shape(inputs.shape)
        ctx.inputs = inputs
        ctx.depthwise = kernels.depthwise_conv2d_forward(self._view4(inputs),
                                                         self._depthwise_kernel4(self.depthwise_kernel),
                                                         None, **self._conv_args())
        z = kernels.conv2d_forward(ctx.depthwise, self._pointwise4(), self.bias.value if self.use_bias else None,
                                   **self._pointwise_args())
        return self._activate(ctx, self._view_back(z))

    def _backward_from_logits(self, ctx, grad_logits, need_input_grad):
        dmid, dpk, db = kernels.conv2d_backward(self._view4(grad_logits), ctx.depthwise, self._pointwise4(),
                                                use_bias=self.use_bias, **self._pointwise_args())
        dx, ddk, _ = kernels.depthwise_conv2d_backward(
            dmid, self._view4(ctx.inputs), self._depthwise_kernel4(self.depthwise_kernel), use_bias=False,
            compute_dx=need_input_grad, **self._conv_args())
        add_grad(self.depthwise_kernel, ddk.reshape(self.depthwise_kernel.shape))
        add_grad(self.pointwise_kernel, dpk.reshape(self.pointwise_kernel.shape))
        if self.use_bias:
            add_grad(self.bias, db)
        return None if dx is None else self._view_back(dx)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, **self._depthwise_config(),
                "pointwise_initializer": initializers.serialize(initializers.get(self.pointwise_initializer)),
                "pointwise_regularizer": _serialize_regularizer(self.pointwise_regularizer),
                "pointwise_constraint": constraints.serialize(self.pointwise_constraint)}


class SeparableConv1D(SeparableConv2D):
    """Depthwise separable 1-D convolution over (batch, steps, channels). Weights: depthwise_kernel
    (k, in_channels, depth_multiplier), pointwise_kernel (1, in_channels * depth_multiplier,
    filters), bias (filters,). Arguments as SeparableConv2D with ints for kernel_size, strides and
    dilation_rate.

    Args:
        filters: Number of output channels (filters).
        kernel_size: Int or tuple of ints: the size of the convolution window.
        strides: Int or tuple of ints: the stride of the window along each spatial axis.
        padding: `"valid"` (no padding) or `"same"` (zero padding so that the output has `ceil(input /
            stride)` positions).
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
        dilation_rate: Int or tuple of ints: the dilation rate of the kernel along each spatial axis.
        depth_multiplier: Number of depthwise output channels per input channel.
        activation: Activation function (name or callable); `None` means linear (`a(x) = x`).
        use_bias: Whether the layer adds a bias vector.
        depthwise_initializer: Initializer of the depthwise kernel.
        pointwise_initializer: Initializer of the pointwise (1x1) kernel.
        bias_initializer: Initializer of the bias vector.
        depthwise_regularizer: Regularizer of the depthwise kernel, or `None`.
        pointwise_regularizer: Regularizer of the pointwise kernel, or `None`.
        bias_regularizer: Regularizer applied to the bias vector, or `None`.
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is added to the
            loss), or `None`.
        depthwise_constraint: Constraint the optimizer applies to the depthwise kernel after each update, or `None`.
        pointwise_constraint: Constraint the optimizer applies to the pointwise kernel after each update, or `None`.
        bias_constraint: Constraint the optimizer applies to the bias after each update, or `None`.
    """

    _rank = 1

    def __init__(self, filters: int, kernel_size: int | tuple[int, ...], strides: int | tuple[int, ...] | None = 1,
                 padding: str = "valid", data_format: str | None = None, dilation_rate: int | tuple[int, ...] = 1,
                 depth_multiplier: int = 1, activation: Any = None, use_bias: bool = True,
                 depthwise_initializer: Any = "glorot_uniform", pointwise_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", depthwise_regularizer: Any = None, pointwise_regularizer: Any = None,
                 bias_regularizer: Any = None, activity_regularizer: Any = None, depthwise_constraint: Any = None,
                 pointwise_constraint: Any = None, bias_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier,
                         activation, use_bias, depthwise_initializer, pointwise_initializer, bias_initializer,
                         depthwise_regularizer, pointwise_regularizer, bias_regularizer, activity_regularizer,
                         depthwise_constraint, pointwise_constraint, bias_constraint, **kwargs)
