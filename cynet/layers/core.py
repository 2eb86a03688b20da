"""Core layers: Input, Dense, Activation and the activation layers, Dropout, Flatten, Reshape."""
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _validation, activations
from ..utils.rng import make_rng
from .base import Layer, add_grad, as_mask, check_activation, set_kernel_options
from . import _precision


class InputLayer(Layer):
    """The layer behind `cynet.Input`: declares the shape (and dtype) of one sample, and holds the
    symbolic tensor a Functional model starts from (`output`).

    Args:
        shape: Shape of one sample (without the batch axis); `None` entries are unknown sizes.
        batch_size: Fixed batch size of the input, or `None`.
        dtype: Dtype of the layer's weights and computations (`"float32"` or `"float64"`); `None` uses
            `cynet.config.floatx()`.
        name: Name of the layer (a unique default is generated from the class name when `None`).
        batch_shape: Full input shape including the batch axis (instead of `shape` and `batch_size`).
    """

    def __init__(self, shape: Sequence[int | None] | None = None, batch_size: int | None = None, dtype: Any = None,
                 name: str | None = None, batch_shape: Sequence[int | None] | None = None, **kwargs: Any) -> None:
        if "input_shape" in kwargs:
            if shape is not None:
                raise ValueError(f"InputLayer takes shape or input_shape, not both; received shape={shape!r} and "
                                 f"input_shape={kwargs['input_shape']!r}")
            shape = kwargs.pop("input_shape")
        if kwargs.pop("sparse", None):
            raise ValueError("sparse inputs are not supported")
        if batch_shape is not None:
            if shape is not None:
                raise ValueError(f"InputLayer takes shape or batch_shape, not both; received shape={shape!r} and "
                                 f"batch_shape={batch_shape!r}")
            batch_shape = _validation.shape_tuple("batch_shape", batch_shape)
            if not batch_shape:
                raise ValueError("batch_shape must include the batch axis")
            shape, batch_size = batch_shape[1:], batch_shape[0]
        if shape is None:
            raise ValueError("Input needs shape=, the shape of one sample without the batch axis")
        shape = _validation.shape_tuple("shape", shape)
        if batch_size is not None:
            batch_size = _validation.positive_int("batch_size", batch_size)
        input_dtype = _input_dtype(dtype)
        super().__init__(name=name, dtype=input_dtype if input_dtype.kind == "f" else None, input_shape=shape,
                         **kwargs)
        self.input_dtype = input_dtype
        self._string_input = input_dtype.kind == "O"   # Input(dtype="string"): text for StringLookup and friends
        self.shape = (batch_size,) + self._input_shape_arg
        self.batch_size = batch_size
        self.built = True
        from ..graph import KerasTensor, Node
        Node(self, [], {}, KerasTensor((None,) + self._input_shape_arg, self._output_dtype(), name=self.name))

    def _output_dtype(self):
        return "string" if self._string_input else self.input_dtype.name

    def _convert_input(self, inputs):
        if self._string_input:
            from .categorical import as_strings
            return as_strings(self, inputs)
        return super()._convert_input(inputs)

    def _forward(self, ctx, inputs, training):
        return inputs

    def _backward(self, ctx, grad, need_input_grad):
        return grad

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self._output_dtype(), "shape": list(self._input_shape_arg),
                "batch_size": self.batch_size}


def _input_dtype(dtype):
    """The dtype of an Input: numeric (NumPy), or "string" (kept as NumPy object arrays of str)."""
    if isinstance(dtype, str) and dtype == "string":
        return np.dtype(object)
    try:
        dtype = np.dtype("float32" if dtype is None else dtype)
    except (TypeError, ValueError):
        raise ValueError(f"dtype must be a NumPy numeric dtype name such as 'float32' or 'int32'; "
                         f"received dtype={dtype!r}") from None
    if dtype.kind not in "biuf":
        raise ValueError(f"dtype must be a numeric dtype such as 'float32' or 'int32', or 'string'; received "
                         f"dtype={dtype}")
    return dtype


def Input(shape: Sequence[int | None] | None = None, batch_size: int | None = None, dtype: Any = None,
          sparse: bool | None = None, batch_shape: Sequence[int | None] | None = None, name: str | None = None,
          tensor: Any = None) -> Any:
    """Keras `Input`: a symbolic tensor to build a Functional model from (`Input(shape=(28, 28, 1))`),
    also accepted as the first element of a Sequential model. `dtype="int32"` for index inputs.

    Args:
        shape: Shape of one sample (without the batch axis); `None` entries are unknown sizes.
        batch_size: Fixed batch size of the input, or `None`.
        dtype: Dtype of the layer's weights and computations (`"float32"` or `"float64"`); `None` uses
            `cynet.config.floatx()`.
        sparse: Must be `None` or `False`: sparse inputs are not supported.
        batch_shape: Full input shape including the batch axis (instead of `shape` and `batch_size`).
        name: Name of the layer (a unique default is generated from the class name when `None`).
        tensor: Keras's existing-tensor input; not supported (must be `None`).
    """
    if tensor is not None:
        raise ValueError("Input(tensor=...) is not supported")
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=sparse, batch_shape=batch_shape,
                      name=name).output


class ActivationMixin:
    """For layers that end in an activation: the call's context keeps the pre-activation `logits`,
    and a loss that fuses with this activation sends its gradient straight to them
    (`_backward_from_logits`)."""

    def _activate(self, ctx, z):
        ctx.logits = z
        try:
            ctx.activated = self.activation(z) if self.activation is not activations.linear else z
        except ValueError as exc:  # the kernel names its own argument (x): say which layer and input
            raise ValueError(f"{self._who()}: the activation of inputs of shape {z.shape} failed: {exc}") from None
        return ctx.activated

    def _activation_grad(self, ctx, grad):
        if self.activation is activations.linear:
            return grad
        return self.activation.backward(grad, ctx.logits, ctx.activated)

    def _backward(self, ctx, grad, need_input_grad):
        return self._backward_from_logits(ctx, self._activation_grad(ctx, grad), need_input_grad)

    def _backward_from_logits(self, ctx, grad_logits, need_input_grad):
        raise NotImplementedError


class Dense(ActivationMixin, Layer):
    """Densely connected layer: `activation(inputs @ kernel + bias)`, on the last axis of its input.

    Args:
        units: positive int, output size.
        activation: activation name or object (None: linear).
        use_bias: whether to add a bias.
        kernel_initializer: Initializer of the kernel weights (name or Initializer).
        bias_initializer: Initializer of the bias vector.
        kernel_regularizer: Regularizer applied to the kernel weights, or `None`.
        bias_regularizer: Regularizer applied to the bias vector, or `None`.
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is
            added to the loss), or `None`.
        kernel_constraint: Constraint the optimizer applies to the kernel after each update
            (`cynet.constraints`: a name, an instance or a callable), or `None`.
        bias_constraint: Constraint applied to the bias after each update, or `None`.
    """

    supports_masking = True   # the mask passes through (Keras 3)
    # Set by set_kernel_options (declared for the type checker).
    activation: Any
    use_bias: bool
    kernel_initializer: Any
    bias_initializer: Any
    kernel_regularizer: Any
    bias_regularizer: Any
    kernel_constraint: Any
    bias_constraint: Any

    _input_min_ndim = 2

    def __init__(self, units: int, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = _validation.positive_int("units", units)
        set_kernel_options(self, activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                           bias_regularizer, kernel_constraint, bias_constraint)

    def build(self, input_shape: Any) -> None:
        if len(input_shape) < 2 or not input_shape[-1]:
            raise ValueError(f"Dense '{self.name}' needs inputs with a known, non-empty last axis; "
                             f"received shape {input_shape}")
        self.kernel = self.add_weight((input_shape[-1], self.units), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, name="kernel",
                                      constraint=self.kernel_constraint)
        self.bias = (self.add_weight((self.units,), self.bias_initializer, regularizer=self.bias_regularizer,
                                     name="bias", constraint=self.bias_constraint) if self.use_bias else None)
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        if self.built and input_shape[-1] != self.kernel.shape[0]:
            raise ValueError(f"Dense '{self.name}' expects inputs with last axis {self.kernel.shape[0]}; "
                             f"received shape {tuple(input_shape)}")
        return tuple(input_shape[:-1]) + (self.units,)

    def _forward(self, ctx, inputs, training):
        if inputs.shape[-1] != self.kernel.shape[0]:
            raise ValueError(f"Dense '{self.name}' expects inputs with last axis {self.kernel.shape[0]}; "
                             f"received shape {inputs.shape}")
        ctx.inputs = inputs
        z = _precision.matmul(self, inputs, self.kernel.value)
        if self.use_bias:
            z += self.bias.value
        return self._activate(ctx, z)

    def _backward_from_logits(self, ctx, grad_logits, need_input_grad):
        x = ctx.inputs
        order = _precision.row_order(x)   # the rows of x in the order they lie in memory
        x2, g2 = _precision.as_rows(x, order), _precision.as_rows(grad_logits, order)
        add_grad(self.kernel, _precision.matmul(self, x2.T, g2))
        if self.use_bias:
            add_grad(self.bias, g2.sum(axis=0))
        if not need_input_grad:
            return None
        return _precision.from_rows(_precision.matmul(self, g2, self.kernel.value.T), x, order)

    def get_config(self) -> dict[str, Any]:
        from .. import constraints, initializers, regularizers
        return {**super().get_config(), "units": self.units, "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(initializers.get(self.kernel_initializer)),
                "bias_initializer": initializers.serialize(initializers.get(self.bias_initializer)),
                "kernel_regularizer": regularizers.serialize(regularizers.get(self.kernel_regularizer))
                if self.kernel_regularizer is not None else None,
                "bias_regularizer": regularizers.serialize(regularizers.get(self.bias_regularizer))
                if self.bias_regularizer is not None else None,
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}


class Activation(ActivationMixin, Layer):
    """Applies an activation function: `Activation("relu")`.

    Args:
        activation: Activation function (name or callable); `None` means linear (`a(x) = x`).
    """

    supports_masking = True   # the mask passes through (Keras 3)

    def __init__(self, activation: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = check_activation("activation", activation)

    def _forward(self, ctx, inputs, training):
        return self._activate(ctx, inputs)

    def _backward_from_logits(self, ctx, grad_logits, need_input_grad):
        return grad_logits

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class ReLU(ActivationMixin, Layer):
    """Keras ReLU layer: `max(x, 0)` above `threshold`, capped at `max_value`, with `negative_slope`
    below the threshold.

    Args:
        max_value: Upper bound of the output (`None`: unbounded).
        negative_slope: Slope of the negative part.
        threshold: Values below this threshold are damped (by `negative_slope`).
    """

    supports_masking = True   # the mask passes through (Keras 3)

    def __init__(self, max_value: float | None = None, negative_slope: float = 0.0, threshold: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if max_value is not None:
            max_value = _validation.real("max_value", max_value, low=0.0)
        negative_slope = _validation.real("negative_slope", negative_slope, low=0.0)
        threshold = _validation.real("threshold", threshold, low=0.0)
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold
        self.activation: Any = activations._ReLU(negative_slope, max_value, threshold)

    _forward = Activation._forward
    _backward_from_logits = Activation._backward_from_logits

    def get_config(self) -> dict[str, Any]:
        return {**Layer.get_config(self), "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}


class LeakyReLU(ReLU):
    """Keras 3 LeakyReLU(negative_slope=0.3).

    Args:
        negative_slope: Slope of the negative part.
    """

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any) -> None:
        kwargs.pop("alpha", None)
        Layer.__init__(self, **kwargs)
        self.negative_slope = _validation.real("negative_slope", negative_slope, low=0.0)
        self.activation = activations._LeakyReLU(self.negative_slope)

    def get_config(self) -> dict[str, Any]:
        return {**Layer.get_config(self), "negative_slope": self.negative_slope}


class ELU(ReLU):
    """Exponential linear unit layer: `x` for `x > 0`, `alpha * (exp(x) - 1)` below.

    Args:
        alpha: Scale of the negative part.
    """
    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        Layer.__init__(self, **kwargs)
        self.alpha = _validation.real("alpha", alpha)
        self.activation = activations._ELU(self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {**Layer.get_config(self), "alpha": self.alpha}


class Softmax(ReLU):
    """Softmax activation layer, along `axis`.

    Args:
        axis: Axis along which the softmax is taken.
    """
    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        Layer.__init__(self, **kwargs)
        if not _validation.is_int(axis):
            raise ValueError(f"axis must be an integer; received axis={axis!r}")
        self.axis = int(axis)
        self.activation = activations._Softmax(self.axis)

    def _check_input(self, x):
        super()._check_input(x)
        if not -x.ndim <= self.axis < x.ndim:
            raise ValueError(f"{self._who()}: axis={self.axis} is not an axis of inputs of shape {x.shape}")

    # A mask (Keras 3): masked positions enter the softmax as -1e9 and leave it as 0.
    def _forward(self, ctx, inputs, training, mask=None):
        ctx.softmax_mask = mask
        if mask is None:
            return self._activate(ctx, inputs)
        y = self._activate(ctx, np.where(mask, inputs, inputs.dtype.type(-1e9)))
        return np.where(mask, y, y.dtype.type(0))

    def _backward(self, ctx, grad, need_input_grad):
        if ctx.softmax_mask is not None:
            grad = np.where(ctx.softmax_mask, grad, grad.dtype.type(0))
        return super()._backward(ctx, grad, need_input_grad)

    def _backward_from_logits(self, ctx, grad_logits, need_input_grad):
        if ctx.softmax_mask is None:
            return grad_logits
        return np.where(ctx.softmax_mask, grad_logits, grad_logits.dtype.type(0))

    def _checked_mask(self, mask, x, what="mask"):
        """Keras's Softmax takes any mask that broadcasts to the inputs (aligned on the last axes)."""
        m = as_mask(self._who(), mask, what)
        if m.ndim > x.ndim or any(a != 1 and a != b for a, b in zip(m.shape[::-1], x.shape[::-1])):
            raise ValueError(f"{self._who()}: {what} must broadcast to the inputs of shape {x.shape} (each axis, "
                             f"counted from the last, 1 or the inputs' size); received shape {m.shape}")
        return m

    def get_config(self) -> dict[str, Any]:
        return {**Layer.get_config(self), "axis": self.axis}


class Dropout(Layer):
    """Inverted dropout: in training, zeroes a fraction `rate` of inputs and scales the rest by
    1 / (1 - rate); at inference, the identity.

    Args:
        rate: Float between 0 and 1: the fraction of the inputs to drop.
        noise_shape: Shape of the binary dropout mask, broadcast against the inputs (e.g. `(batch, 1,
            features)` to drop the same features at every timestep).
        seed: Int seed of the layer's random draws, for reproducibility; `None` uses cynet's global generator.
    """

    supports_masking = True   # the mask passes through (Keras 3)

    def __init__(self, rate: float, noise_shape: Sequence[int | None] | None = None, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = _validation.real("rate", rate, low=0.0, high=1.0, high_open=True)
        self.noise_shape = None if noise_shape is None else _validation.shape_tuple("noise_shape", noise_shape)
        self.seed = seed
        self._rng = make_rng(seed) if seed is not None else None

    def _check_input(self, x):
        super()._check_input(x)
        check_noise_shape(self, x)

    def _forward(self, ctx, inputs, training):
        if not training or self.rate == 0.0:
            ctx.mask = None
            return inputs
        shape = inputs.shape
        if self.noise_shape is not None:
            shape = tuple(s if n is None else n for s, n in zip(inputs.shape, self.noise_shape))
        rng = self._rng if self._rng is not None else make_rng(None)
        keep = rng.random(shape, dtype=inputs.dtype) >= self.rate
        ctx.mask = keep * inputs.dtype.type(1.0 / (1.0 - self.rate))
        return inputs * ctx.mask

    def _backward(self, ctx, grad, need_input_grad):
        return grad if ctx.mask is None else grad * ctx.mask

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}


def check_noise_shape(layer, x):
    """Refuse a dropout layer's noise_shape that does not broadcast to inputs like x."""
    if layer.noise_shape is not None and (
            len(layer.noise_shape) != x.ndim
            or any(n is not None and n != 1 and n != s for n, s in zip(layer.noise_shape, x.shape))):
        raise ValueError(f"{layer._who()}: noise_shape={layer.noise_shape} does not broadcast to inputs of shape "
                         f"{x.shape} (one entry per axis, each None, 1 or the input's size)")


class Flatten(Layer):
    """Flattens each sample to one axis (the batch axis is kept). With `data_format="channels_first"`, the
    channels are moved last first, as Keras does.

    Args:
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
    """
    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = None if data_format is None else _validation.data_format(data_format)

    def compute_output_shape(self, input_shape: Any) -> Any:
        rest = input_shape[1:]
        return (input_shape[0], None if any(s is None for s in rest) else int(np.prod(rest)))

    def _forward(self, ctx, inputs, training):
        ctx.shape = inputs.shape
        if self.data_format == "channels_first" and inputs.ndim > 2:
            inputs = np.moveaxis(inputs, 1, -1)
        return inputs.reshape(inputs.shape[0], int(np.prod(inputs.shape[1:])))  # (-1 fails for an empty batch)

    def _backward(self, ctx, grad, need_input_grad):
        s = ctx.shape
        if self.data_format == "channels_first" and len(s) > 2:
            return np.moveaxis(grad.reshape((s[0],) + s[2:] + (s[1],)), -1, 1)
        return grad.reshape(s)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Reshapes each sample to `target_shape` (the batch axis is kept).

    Args:
        target_shape: Target shape of each sample (without the batch axis); one entry may be -1.
    """
    def __init__(self, target_shape: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        try:
            target = None if isinstance(target_shape, (str, bytes)) else tuple(target_shape)
        except TypeError:
            target = None
        if target is None or not all(_validation.is_int(s) and (s == -1 or 1 <= s < _validation.INT_LIMIT)
                                     for s in target):
            raise ValueError(f"target_shape must be a tuple of positive integers (and at most one -1); "
                             f"received target_shape={target_shape!r}")
        if sum(1 for s in target if s == -1) > 1:
            raise ValueError(f"target_shape may contain at most one -1; received target_shape={target_shape!r}")
        self.target_shape = tuple(int(s) for s in target)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if -1 in self.target_shape and all(s is not None for s in input_shape[1:]):
            known = int(np.prod([s for s in self.target_shape if s != -1]))
            total = int(np.prod(input_shape[1:]))
            return (input_shape[0],) + tuple(total // known if s == -1 else s for s in self.target_shape)
        return (input_shape[0],) + self.target_shape

    def _forward(self, ctx, inputs, training):
        ctx.shape = inputs.shape
        size = int(np.prod(inputs.shape[1:]))
        known = int(np.prod([s for s in self.target_shape if s != -1]))
        target = self.target_shape
        if -1 in target and known and size % known == 0:
            target = tuple(size // known if s == -1 else s for s in target)  # (-1 fails for an empty batch)
        if int(np.prod(target)) != size or -1 in target:
            raise ValueError(f"Reshape '{self.name}': cannot reshape inputs with samples of shape {inputs.shape[1:]} "
                             f"to target_shape={self.target_shape}")
        return inputs.reshape((inputs.shape[0],) + target)

    def _backward(self, ctx, grad, need_input_grad):
        return grad.reshape(ctx.shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target_shape": list(self.target_shape)}


