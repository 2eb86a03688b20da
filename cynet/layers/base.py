"""Layer: the Keras-style base class every cynet layer derives from.

A layer owns Variables (`add_weight`), builds them from the first input's shape, computes its
output in `call(inputs, training)` and, after a call, its input gradient in `backward(grad)`,
storing each trainable Variable's gradient in `variable.grad`. Layers hold no pixel or timestep
loops: those live in `cynet.kernels`.
"""
import collections
import numbers
import re

import numpy as np

from .. import activations, initializers, regularizers
from ..kernels import _checks
from ..variables import Variable

_name_counts = collections.Counter()


def reset_name_counts():
    """Restart the auto names (dense, dense_1, ...) from scratch, as Keras's clear_session does."""
    _name_counts.clear()


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
    try:
        dtype = np.dtype("float32" if dtype is None else dtype)
    except (TypeError, ValueError):
        raise ValueError(f"dtype must be 'float32' or 'float64'; received dtype={dtype!r}") from None
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64'; received dtype={dtype}")
    return dtype


# ----------------------------------------------------------------------------- argument checks
# Constructor arguments are checked when the layer is made, with messages naming the argument.

# A bool (Python or NumPy): bool("False") is True, so nothing else is taken as one.
check_flag = _checks.flag


def check_real(name, value, low=None, high=None, low_open=False, high_open=False):
    """A finite real number (not a bool) in [low, high] (open ends where asked), as a float."""
    value = _checks.real(name, value)
    rule = _checks.interval_rule(value, low, high, low_open, high_open)
    if rule is not None:
        raise ValueError(f"{name} must be {rule}; received {name}={value!r}")
    return value


def _resolved(name, value, get, what):
    """get(value), or ValueError naming the argument: `what` it must be, and why it is not."""
    try:
        return get(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be {what}; received {name}={value!r}: {exc}") from None


def check_initializer(name, value, default):
    """An initializer argument, resolved once to catch bad ones now; None means `default`."""
    if value is None:
        return default
    _resolved(name, value, initializers.get, "an initializer (a name, a config dict, an Initializer or a callable)")
    return value


def check_regularizer(name, value):
    """A regularizer argument (None for none), resolved once to catch bad ones now."""
    _resolved(name, value, regularizers.get,
              "a regularizer (a name, a config dict, a Regularizer, a callable or None)")
    return value


def check_activation(name, value):
    """An activation object from a Keras name, an activation object or None (linear)."""
    return _resolved(name, value, activations.get, "an activation name, an activation object or None")


def set_kernel_options(layer, activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                       bias_regularizer):
    """Check and set the arguments every kernel-and-bias layer (Dense, Conv2D) takes, with Keras's
    defaults for the initializers."""
    layer.activation = check_activation("activation", activation)
    layer.use_bias = check_flag("use_bias", use_bias)
    layer.kernel_initializer = check_initializer("kernel_initializer", kernel_initializer, "glorot_uniform")
    layer.bias_initializer = check_initializer("bias_initializer", bias_initializer, "zeros")
    layer.kernel_regularizer = check_regularizer("kernel_regularizer", kernel_regularizer)
    layer.bias_regularizer = check_regularizer("bias_regularizer", bias_regularizer)


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

    # What inputs a built layer takes (Keras's InputSpec, checked at each call): an exact ndim
    # (batch axis included) or at least one, whether empty inputs are refused (layers whose
    # kernels need data), and, set by `build`, the sizes of the axes its weights fix.
    _input_ndim = None
    _input_min_ndim = 1
    _nonempty_input = False

    def __init__(self, trainable=True, name=None, dtype=None, input_shape=None, input_dim=None, **kwargs):
        kwargs.pop("autocast", None)
        batch_input_shape = kwargs.pop("batch_input_shape", None)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}")
        self.name = name if name is not None else unique_name(snake_case(type(self).__name__))
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string; received name={name!r}")
        self.trainable = check_flag("trainable", trainable)
        self.dtype = standardize_dtype(dtype)
        if input_dim is not None:
            input_dim = _shape_tuple((input_dim,), "input_dim")
            if input_shape is None:
                input_shape = input_dim
        if batch_input_shape is not None:
            batch_input_shape = _shape_tuple(batch_input_shape, "batch_input_shape")
            if not batch_input_shape:
                raise ValueError(f"batch_input_shape must include the batch axis; received "
                                 f"batch_input_shape={batch_input_shape!r}")
            if input_shape is None:
                input_shape = batch_input_shape[1:]
        self._input_shape_arg = None if input_shape is None else _shape_tuple(input_shape, "input_shape")
        self._input_axes = {}    # axis -> size its weights fix, set by build
        self._built_ndim = None  # the ndim its weights fix, set by build where binding
        self._output_seen = None
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
        shape = tuple(int(s) for s in shape)
        _checks.check_size(f"{self._who()}: weight {name!r}", shape, np.dtype(dtype or self.dtype).itemsize,
                           "the weight (from the layer's arguments and its input shape)")
        var = Variable(init, shape=shape, dtype=dtype or self.dtype,
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
        self._check_input(x)
        self._maybe_build((None,) + x.shape[1:])
        return self._seen(self.call(x, training=bool(training)))

    def forward(self, inputs, training=False):
        """Same as calling the layer: forward pass that remembers what `backward` needs."""
        return self(inputs, training=training)

    def _who(self):
        return f"{type(self).__name__} '{self.name}'"

    def _convert_input(self, inputs):
        x = inputs if isinstance(inputs, np.ndarray) else _checks.as_array(f"{self._who()}: inputs", inputs)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{self._who()}: inputs must be numeric; received dtype {x.dtype}")
        if x.ndim == 0:
            raise ValueError(f"{self._who()}: inputs need a batch axis; received a scalar")
        if x.dtype != self.dtype or x.size * self.dtype.itemsize > _checks.memory_limit():  # (the hot path
            _checks.check_size(f"{self._who()}: inputs", x.shape, self.dtype.itemsize,  # builds no message)
                               f"the inputs as {self.dtype}")
            x = x.astype(self.dtype)
        return x

    def _check_input(self, x):
        """Refuse, naming `inputs`, inputs this layer cannot take (see _input_ndim and friends)."""
        if self._input_ndim is not None and x.ndim != self._input_ndim:
            raise ValueError(f"{self._who()}: inputs must be {self._input_ndim}-dimensional (batch axis included); "
                             f"received shape {x.shape}")
        if x.ndim < self._input_min_ndim:
            raise ValueError(f"{self._who()}: inputs must have at least {self._input_min_ndim} dimensions "
                             f"(batch axis included); received shape {x.shape}")
        if self._nonempty_input and x.size == 0:
            raise ValueError(f"{self._who()}: inputs must not be empty; received shape {x.shape}")
        if self.built:
            if self._built_ndim is not None and x.ndim != self._built_ndim:
                raise ValueError(f"{self._who()}: inputs must be {self._built_ndim}-dimensional like the input shape "
                                 f"{self.input_shape} it was built for; received shape {x.shape}")
            for axis, size in self._input_axes.items():
                if not -x.ndim <= axis < x.ndim or x.shape[axis] != size:
                    raise ValueError(f"{self._who()}: inputs must have size {size} on axis {axis} (the layer was "
                                     f"built for input shape {self.input_shape}); received shape {x.shape}")

    def _seen(self, outputs):
        """Remember the shapes of the last call's outputs, which `backward` checks its grad against."""
        if isinstance(outputs, (list, tuple)):
            self._output_seen = [np.shape(o) for o in outputs]
        else:
            self._output_seen = np.shape(outputs)
        return outputs

    def _grad_in(self, grad):
        """`grad`, the gradient of the last call's output(s), as arrays of the layer's dtype.

        Refuses (naming `grad`) a grad whose shape is not the output's, or that is not real:
        NumPy would broadcast a wrong shape into a silently wrong gradient.
        """
        if self._output_seen is None:
            raise RuntimeError(f"{self._who()}: backward() needs a forward call first (layer(inputs))")
        if isinstance(self._output_seen, list):
            if not isinstance(grad, (list, tuple)) or len(grad) != len(self._output_seen):
                raise ValueError(f"{self._who()}: grad must be a list of {len(self._output_seen)} arrays, one per "
                                 f"output of the last call; received {type(grad).__name__}")
            return [self._one_grad(g, s, f"grad[{i}]") for i, (g, s) in enumerate(zip(grad, self._output_seen))]
        return self._one_grad(grad, self._output_seen, "grad")

    def _one_grad(self, grad, shape, what):
        g = _checks.as_array(f"{self._who()}: grad", grad)
        if g.dtype.kind not in "biuf":
            raise TypeError(f"{self._who()}: {what} must be a real numeric array; received dtype {g.dtype}")
        if g.shape != tuple(shape):
            raise ValueError(f"{self._who()}: {what} must have the shape of the last call's output {tuple(shape)}; "
                             f"received shape {g.shape}")
        return np.asarray(g, dtype=self.dtype)

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
    """A shape argument: an int or a sequence of positive ints (None for unknown)."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    try:
        entries = None if isinstance(shape, (str, bytes)) else tuple(shape)
    except TypeError:
        entries = None
    if entries is None or not all(s is None or (isinstance(s, numbers.Integral) and not isinstance(s, (bool, np.bool_))
                                                and 1 <= s < _checks.INT_LIMIT) for s in entries):
        raise ValueError(f"{name} must be a tuple of positive integers (None for unknown); received {name}={shape!r}")
    return tuple(None if s is None else int(s) for s in entries)
