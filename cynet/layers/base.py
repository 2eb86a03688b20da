"""Layer: the Keras-style base class every cynet layer derives from.

A layer owns Variables (`add_weight`), builds them from the first input's shape, computes its
output in `call(inputs, training)` and, after a call, its input gradient in `backward(grad)`,
storing each trainable Variable's gradient in `variable.grad`. Layers hold no pixel or timestep
loops: those live in `cynet.kernels`.
"""
import collections
import re

import numpy as np

from .. import initializers, regularizers
from ..variables import Variable

_name_counts = collections.Counter()


def unique_name(base):
    """Keras-style auto names: dense, dense_1, dense_2, ..."""
    n = _name_counts[base]
    _name_counts[base] += 1
    return base if n == 0 else f"{base}_{n}"


def snake_case(name):
    """Keras's auto-name rule: "Conv2D" -> "conv2d", "MaxPooling2D" -> "max_pooling2d", "SimpleRNN" -> "simple_rnn"."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def standardize_dtype(dtype):
    dtype = np.dtype("float32" if dtype is None else dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64'; received dtype={dtype}")
    return dtype


class Layer:
    """Base class of all layers.

    Args:
        trainable: whether the layer's weights are updated by training.
        name: the layer's name (unique names are generated from the class name by default).
        dtype: "float32" (default) or "float64": the dtype of weights and computations.
        input_shape: shape of one sample (no batch axis), for the first layer of a Sequential model.
    """

    # False while a model backpropagates into its first layer for training: `backward` may then
    # skip the input gradient (and return None). Set by Sequential.backward before each call.
    _needs_input_grad = True

    def __init__(self, trainable=True, name=None, dtype=None, input_shape=None, input_dim=None, **kwargs):
        kwargs.pop("autocast", None)
        batch_input_shape = kwargs.pop("batch_input_shape", None)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}")
        self.name = name if name is not None else unique_name(snake_case(type(self).__name__))
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string; received name={name!r}")
        self.trainable = bool(trainable)
        self.dtype = standardize_dtype(dtype)
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is not None and input_shape is None:
            input_shape = tuple(batch_input_shape)[1:]
        self._input_shape_arg = None if input_shape is None else _shape_tuple(input_shape, "input_shape")
        self._trainable_vars = []
        self._non_trainable_vars = []
        self._regularized = []
        self.built = False
        self.input_shape = None
        self.output_shape = None

    # ----------------------------------------------------------------- weights
    def add_weight(self, shape, initializer="glorot_uniform", dtype=None, trainable=True, regularizer=None,
                   name=None):
        """Create, track and return a Variable of `shape`."""
        init = initializers.get(initializer)
        var = Variable(init, shape=tuple(int(s) for s in shape), dtype=dtype or self.dtype,
                       trainable=trainable, name=name)
        var.path = f"{self.name}/{var.name}"
        (self._trainable_vars if trainable else self._non_trainable_vars).append(var)
        reg = regularizers.get(regularizer)
        if reg is not None:
            self._regularized.append((var, reg))
        return var

    @property
    def trainable_weights(self):
        return list(self._trainable_vars) if self.trainable else []

    @property
    def non_trainable_weights(self):
        if self.trainable:
            return list(self._non_trainable_vars)
        return list(self._trainable_vars) + list(self._non_trainable_vars)

    @property
    def weights(self):
        return list(self._trainable_vars) + list(self._non_trainable_vars)

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights
    variables = weights

    def get_weights(self):
        return [v.numpy() for v in self.weights]

    def set_weights(self, weights):
        own = self.weights
        weights = list(weights)
        if len(weights) != len(own):
            raise ValueError(f"Layer '{self.name}' expects {len(own)} weight arrays; received {len(weights)}")
        for var, value in zip(own, weights):
            value = np.asarray(value)
            if value.shape != var.shape:
                raise ValueError(f"Layer '{self.name}' weight '{var.name}' has shape {var.shape}; "
                                 f"received an array of shape {value.shape}")
        for var, value in zip(own, weights):
            var.assign(value)

    def count_params(self):
        return int(sum(v.size for v in self.weights))

    # ----------------------------------------------------------- regularization
    @property
    def losses(self):
        """Regularization penalties of this layer's weights (floats)."""
        return [float(reg(var.value)) for var, reg in self._regularized]

    def _add_regularization_gradients(self):
        for var, reg in self._regularized:
            if var.grad is not None:
                var.grad += reg.gradient(var.value).astype(var.dtype, copy=False)

    # ------------------------------------------------------------------ calling
    def build(self, input_shape):
        """Create the weights for inputs of `input_shape` (batch axis first, may be None)."""
        self.built = True

    def _maybe_build(self, input_shape):
        if not self.built:
            input_shape = tuple(input_shape)
            self.build(input_shape)
            self.built = True
            self.input_shape = input_shape
            self.output_shape = self.compute_output_shape(input_shape)

    def __call__(self, inputs, training=False):
        x = self._convert_input(inputs)
        self._maybe_build((None,) + x.shape[1:])
        return self.call(x, training=bool(training))

    def forward(self, inputs, training=False):
        """Same as calling the layer: forward pass that remembers what `backward` needs."""
        return self(inputs, training=training)

    def _convert_input(self, inputs):
        x = np.asarray(inputs)
        if x.dtype != self.dtype:
            if x.dtype.kind not in "biuf":
                raise TypeError(f"{type(self).__name__} '{self.name}': inputs must be numeric; received dtype {x.dtype}")
            x = x.astype(self.dtype)
        if x.ndim == 0:
            raise ValueError(f"{type(self).__name__} '{self.name}': inputs need a batch axis; received a scalar")
        return x

    def call(self, inputs, training=False):
        return inputs

    def backward(self, grad):
        """Gradient with respect to the last call's input, given the gradient of its output.

        Stores the gradients of trainable weights in `variable.grad`.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    # ------------------------------------------------------------------- config
    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}
        if self._input_shape_arg is not None:
            config["input_shape"] = list(self._input_shape_arg)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _shape_tuple(shape, name):
    if isinstance(shape, int):
        shape = (shape,)
    try:
        out = tuple(None if s is None else int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a tuple of positive integers; received {name}={shape!r}") from None
    if any(s is not None and s < 1 for s in out):
        raise ValueError(f"{name} must be a tuple of positive integers; received {name}={shape!r}")
    return out
