"""Convolution layers."""
from .. import _validation, activations, initializers, kernels, regularizers
from .base import Layer, add_grad, set_kernel_options
from .core import ActivationMixin


class Conv2D(ActivationMixin, Layer):
    """2-D convolution, Keras 3 arguments; kernel shape (kh, kw, in_channels, filters).

    Args:
        filters: number of output channels.
        kernel_size: int or pair.
        strides: int or pair (default 1).
        padding: "valid" or "same" (Keras semantics, also for even kernels and strides > 1).
        data_format: "channels_last" (default, None) or "channels_first".
        dilation_rate: int or pair.
        activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer: as Keras.
    """

    _input_ndim = 4
    _nonempty_input = True

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None, dilation_rate=(1, 1),
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = _validation.positive_int("filters", filters)
        self.kernel_size = _validation.int_pair("kernel_size", kernel_size)
        self.strides = _validation.int_pair("strides", strides)
        self.dilation_rate = _validation.int_pair("dilation_rate", dilation_rate)
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same'; received padding={padding!r}")
        self.padding = padding.lower()
        self.data_format = _validation.data_format(data_format)
        if not _validation.is_int(groups) or groups != 1:
            raise ValueError(f"only groups=1 is supported; received groups={groups!r}")
        set_kernel_options(self, activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                           bias_regularizer)

    def _conv_args(self):
        return dict(strides=self.strides, padding=self.padding, dilation_rate=self.dilation_rate,
                    data_format=self.data_format)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"Conv2D '{self.name}' expects 4-D inputs (batch, ...); received shape {input_shape}")
        axis = -1 if self.data_format == "channels_last" else 1
        channels = input_shape[axis]
        self._input_axes = {axis: channels}
        self.kernel = self.add_weight(self.kernel_size + (channels, self.filters), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, name="kernel")
        self.bias = (self.add_weight((self.filters,), self.bias_initializer, regularizer=self.bias_regularizer,
                                     name="bias") if self.use_bias else None)
        self.built = True

    def compute_output_shape(self, input_shape):
        try:
            return kernels.conv2d_output_shape(input_shape, self.kernel_size, filters=self.filters,
                                               **self._conv_args())
        except ValueError as exc:
            raise ValueError(f"{self._who()}: inputs of shape {tuple(input_shape)} do not fit: {exc}") from None

    def _forward(self, ctx, inputs, training):
        self.compute_output_shape(inputs.shape)
        ctx.inputs = inputs
        z = kernels.conv2d_forward(inputs, self.kernel.value, self.bias.value if self.use_bias else None,
                                   **self._conv_args())
        return self._activate(ctx, z)

    def _backward_from_logits(self, ctx, grad_logits, need_input_grad):
        dx, dk, db = kernels.conv2d_backward(grad_logits, ctx.inputs, self.kernel.value, use_bias=self.use_bias,
                                             compute_dx=need_input_grad, **self._conv_args())
        add_grad(self.kernel, dk)
        if self.use_bias:
            add_grad(self.bias, db)
        return dx

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
                else regularizers.serialize(regularizers.get(self.bias_regularizer))}

