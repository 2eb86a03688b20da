"""Layer: the Keras-style base class every cynet layer derives from.

A layer owns Variables (`add_weight`), builds them from the first input's shape and computes its
output in `call(inputs, training)`. It holds configuration and variables only: a built-in layer's
`_forward(ctx, inputs, training)` keeps what its backward needs in the call's own context, which
the active tape (`cynet.tape`) records, and `_backward(ctx, grad, need_input_grad)` adds each
trainable Variable's gradient to `variable.grad`. Layers hold no pixel or timestep loops: those
live in `cynet.kernels`.

Masks (Keras 3): a boolean array over an input's leading axes, usually (batch, steps), False on
padded steps. `compute_mask(inputs, previous_mask)` gives a call's output mask where
`supports_masking` is True (a class defining compute_mask supports masking); the models pass each
layer the mask of its inputs as `mask=` when its `_forward` (built-in) or `call` (other layers)
has a `mask` parameter. NumPy arrays cannot carry a mask as Keras's tensors do: masks travel
beside the arrays inside Sequential and Functional models (one per graph tensor), and a layer
called directly on arrays returns none: pass `layer.compute_mask(x)` on as `mask=` yourself.
"""
import collections
import inspect
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _validation, activations, constraints, graph as _graph, initializers, regularizers, tape as _tape
from ..ops import core as _opcore
from ..variables import Variable
from .._typing import ArrayLike, DTypeLike
from ..dtype_policies import DTypePolicy

_name_counts: collections.Counter[str] = collections.Counter()

# How many things in this process may give a layer's `losses` an entry: weights made with a
# regularizer, add_loss calls, classes outside cynet with their own `losses`. While it is 0
# every `losses` list is empty, so the trainer skips collecting them at each step (never
# decremented: a stale count only costs that walk).
_penalty_sources = 0


def _losses_of(layer: Any, last_calls: bool) -> list[Any]:
    """A layer's `losses` (its own property where a subclass redefines it)."""
    if type(layer).losses is not Layer.losses:
        return list(layer.losses)
    return layer._collect_losses(last_calls)


def step_losses(layer: Any) -> list[Any]:
    """The penalties a training or test step adds to its loss: `losses` without those of earlier
    top-level calls (the step's own add_loss terms are on its tape)."""
    return _losses_of(layer, False)


def may_have_penalties() -> bool:
    """Whether some layer's `losses` may be non-empty (see `_penalty_sources`)."""
    return _penalty_sources != 0


def _count_penalty_source():
    global _penalty_sources
    _penalty_sources += 1


def reset_name_counts() -> None:
    """Restart the auto names (dense, dense_1, ...) from scratch, as Keras's clear_session does."""
    _name_counts.clear()


def unique_name(base: str) -> str:
    """Keras-style auto names: dense, dense_1, dense_2, ..."""
    n = _name_counts[base]
    _name_counts[base] += 1
    return base if n == 0 else f"{base}_{n}"


def snake_case(name: str) -> str:
    """Keras's auto-name rule: "Conv2D" -> "conv2d", "MaxPooling2D" -> "max_pooling2d", "SimpleRNN" -> "simple_rnn"."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


# ----------------------------------------------------------------------------- argument checks
# Constructor arguments are checked when the layer is made, with messages naming the argument
# (cynet._validation holds the checks of numbers, flags and shapes; these resolve identifiers).


def _resolved(name, value, get, what):
    """get(value), or ValueError naming the argument: `what` it must be, and why it is not."""
    try:
        return get(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be {what}; received {name}={value!r}: {exc}") from None


def check_initializer(name: str, value: Any, default: Any) -> Any:
    """An initializer argument, resolved once to catch bad ones now; None means `default`."""
    if value is None:
        return default
    _resolved(name, value, initializers.get, "an initializer (a name, a config dict, an Initializer or a callable)")
    return value


def check_regularizer(name: str, value: Any) -> Any:
    """A regularizer argument (None for none), resolved once to catch bad ones now."""
    _resolved(name, value, regularizers.get,
              "a regularizer (a name, a config dict, a Regularizer, a callable or None)")
    return value


def check_constraint(name: str, value: Any) -> Any:
    """A constraint argument resolved to its object (None for none), so bad ones fail now."""
    return _resolved(name, value, constraints.get,
                     "a constraint (a name, a config dict, a Constraint, a callable or None)")


def check_activation(name: str, value: Any) -> Any:
    """An activation object from a Keras name, an activation object or None (linear)."""
    return _resolved(name, value, activations.get, "an activation name, an activation object or None")


def set_kernel_options(layer: Any, activation: Any, use_bias: bool, kernel_initializer: Any, bias_initializer: Any,
                       kernel_regularizer: Any, bias_regularizer: Any, kernel_constraint: Any = None,
                       bias_constraint: Any = None) -> None:
    """Check and set the arguments every kernel-and-bias layer (Dense, Conv2D) takes, with Keras's
    defaults for the initializers."""
    layer.activation = check_activation("activation", activation)
    layer.use_bias = _validation.flag("use_bias", use_bias)
    layer.kernel_initializer = check_initializer("kernel_initializer", kernel_initializer, "glorot_uniform")
    layer.bias_initializer = check_initializer("bias_initializer", bias_initializer, "zeros")
    layer.kernel_regularizer = check_regularizer("kernel_regularizer", kernel_regularizer)
    layer.bias_regularizer = check_regularizer("bias_regularizer", bias_regularizer)
    layer.kernel_constraint = check_constraint("kernel_constraint", kernel_constraint)
    layer.bias_constraint = check_constraint("bias_constraint", bias_constraint)


class Layer:
    """Base class of all layers.

    Args:
        trainable: whether the layer's weights are updated by training.
        name: the layer's name (unique names are generated from the class name by default).
        dtype: a dtype policy (cynet.dtype_policies): "float32", "float64", "mixed_bfloat16",
            "mixed_float16", a DTypePolicy or its serialized dict; None: the global policy
            (cynet.mixed_precision.set_global_policy; by default cynet.config.floatx()).
            `dtype` is then the NumPy dtype of the layer's variables and arrays (float32 under
            the mixed policies), `dtype_policy` the policy, `compute_dtype` / `variable_dtype`
            its dtype names as Keras 3 reports them.
        input_shape: shape of one sample (no batch axis), for the first layer of a Sequential model.
        input_dim: Size of the input's last axis (Keras's legacy way of giving the input shape).
        activity_regularizer: Regularizer of the layer's output(s) (a name, an instance or None): in
            training, each call adds `regularizer(output) / batch size` to the loss, as Keras 3 does.
    """

    # What inputs a built layer takes (Keras's InputSpec, checked at each call): an exact ndim
    # (batch axis included) or at least one, whether empty inputs are refused (layers whose
    # kernels need data), and, set by `build`, the sizes of the axes its weights fix.
    _input_ndim: int | None = None
    _input_min_ndim = 1
    _nonempty_input = False

    def __init__(self, trainable: bool = True, name: str | None = None, dtype: Any = None,
                 input_shape: Sequence[int | None] | None = None, input_dim: int | None = None,
                 activity_regularizer: Any = None, **kwargs: Any) -> None:
        kwargs.pop("autocast", None)
        batch_input_shape = kwargs.pop("batch_input_shape", None)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}")
        self.name = name if name is not None else unique_name(snake_case(type(self).__name__))
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string; received name={name!r}")
        self.trainable = _validation.flag("trainable", trainable)
        self.activity_regularizer = _resolved("activity_regularizer", activity_regularizer, regularizers.get,
                                              "a regularizer (a name, a config dict, a Regularizer or None)")
        self._dtype_policy = _policy(dtype)
        self.dtype = np.dtype(self._dtype_policy.variable_dtype)
        if input_dim is not None:
            input_dim = _validation.shape_tuple("input_dim", (input_dim,))
            if input_shape is None:
                input_shape = input_dim  # type: ignore[assignment]  # the (input_dim,) shape tuple here
        if batch_input_shape is not None:
            batch_input_shape = _validation.shape_tuple("batch_input_shape", batch_input_shape)
            if not batch_input_shape:
                raise ValueError(f"batch_input_shape must include the batch axis; received "
                                 f"batch_input_shape={batch_input_shape!r}")
            if input_shape is None:
                input_shape = batch_input_shape[1:]
        self._input_shape_arg: Any
        self._input_shape_arg = None if input_shape is None else _validation.shape_tuple("input_shape", input_shape)
        self._input_axes: dict[int, int] = {}    # axis -> size its weights fix, set by build
        self._built_ndim = None  # the ndim its weights fix, set by build where binding
        self._trainable_vars: list[Variable] = []
        self._non_trainable_vars: list[Variable] = []
        self._regularized: list[Any] = []
        self._inbound_nodes: list[Any] = []   # the calls on symbolic tensors (graph structure, not call state)
        self.built = False
        self.input_shape: Any = None
        self.output_shape: Any = None

    # ----------------------------------------------------------------- dtype policy
    @property
    def dtype_policy(self) -> DTypePolicy:
        """The layer's DTypePolicy (Keras 3's layer.dtype_policy)."""
        return self._dtype_policy

    @dtype_policy.setter
    def dtype_policy(self, value):
        policy = _policy(value)
        if np.dtype(policy.variable_dtype) != self.dtype:
            raise ValueError(f"{self._who()}: a new dtype policy must keep the variable dtype {self.dtype}; "
                             f"received {policy!r}")
        self._dtype_policy = policy

    @property
    def compute_dtype(self) -> str:
        """The policy's compute dtype ("bfloat16" under mixed_bfloat16, whose products take
        bfloat16-rounded inputs; cynet's arrays stay `variable_dtype`)."""
        return self._dtype_policy.compute_dtype

    @property
    def variable_dtype(self) -> str:
        """The dtype name of the layer's variables."""
        return self._dtype_policy.variable_dtype

    @property
    def _bf16(self):
        """Whether this layer's matrix products take bfloat16-rounded inputs (mixed_bfloat16)."""
        return self._dtype_policy._bf16_products

    # ----------------------------------------------------------------- weights
    def add_weight(self, shape: Sequence[int], initializer: Any = "glorot_uniform", dtype: DTypeLike | None = None,
                   trainable: bool = True, regularizer: Any = None, name: str | None = None,
                   constraint: Any = None) -> Variable:
        """Create, track and return a Variable of `shape`.

        Args:
            shape: Shape of one sample (without the batch axis); `None` entries are unknown sizes.
            initializer: Initializer of the weight (name or Initializer).
            dtype: Dtype of the layer's weights and computations (`"float32"` or `"float64"`); `None` uses
                `cynet.config.floatx()`.
            trainable: Whether the layer's weights are updated by training.
            regularizer: Regularizer to apply (an instance or name).
            name: Name of the layer (a unique default is generated from the class name when `None`).
            constraint: Constraint the optimizer applies to the weight after each update (an
                instance, a name, a callable or `None`).
        """
        init = initializers.get(initializer)
        shape = tuple(int(s) for s in shape)
        _validation.check_size(f"{self._who()}: weight {name!r}", shape, np.dtype(dtype or self.dtype).itemsize,
                               "the weight (from the layer's arguments and its input shape)")
        var = Variable(init, shape=shape, dtype=dtype or self.dtype,
                       trainable=trainable, name=name)
        var.path = f"{self.name}/{var.name}"
        var.constraint = check_constraint("constraint", constraint)
        (self._trainable_vars if trainable else self._non_trainable_vars).append(var)
        reg = regularizers.get(regularizer)
        if reg is not None:
            _count_penalty_source()
            self._regularized.append((var, reg))
            if self._user_call:   # read by ops, not by a recorded layer: its reads add the penalty's gradient
                var.regularizer = reg  # type: ignore[attr-defined]  # read by the ops' variable reads
        return var

    def __setattr__(self, name, value):
        # Layers assigned as attributes (also inside lists, tuples and dicts, and public lists and
        # dicts still empty, filled later) are tracked, as in Keras: their weights count as this
        # layer's (a custom layer or subclassed model).
        if isinstance(value, Layer) or (isinstance(value, (list, tuple, dict)) and (
                any(isinstance(v, Layer) for v in (value.values() if isinstance(value, dict) else value))
                or (not value and not name.startswith("_") and not isinstance(value, tuple)))):
            tracked = self.__dict__.get("_tracked")
            if tracked is None:
                tracked = {}
                object.__setattr__(self, "_tracked", tracked)
            tracked[name] = None
        object.__setattr__(self, name, value)

    def _sublayers(self):
        """The layers tracked on this one (assigned as attributes), in assignment order, once each."""
        found, seen = [], {id(self)}

        def visit(value):
            if isinstance(value, Layer):
                if id(value) not in seen:
                    seen.add(id(value))
                    found.append(value)
            elif isinstance(value, (list, tuple)):
                for v in value:
                    visit(v)
            elif isinstance(value, dict):
                for v in value.values():
                    visit(v)
        for name in self.__dict__.get("_tracked", ()):
            visit(self.__dict__.get(name))
        return found

    def _collect(self, own, attribute):
        out, seen = list(own), {id(v) for v in own}
        for layer in self._sublayers():
            for v in getattr(layer, attribute):
                if id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
        return out

    @property
    def trainable_weights(self) -> list[Variable]:
        """The layer's trainable weights (Variables), empty when the layer is frozen (`trainable=False`)."""
        if not self.trainable:
            return []
        return self._collect(self._trainable_vars, "trainable_weights") if "_tracked" in self.__dict__ \
            else list(self._trainable_vars)

    @property
    def non_trainable_weights(self) -> list[Variable]:
        """The layer's non-trainable weights (all of them when the layer is frozen)."""
        if not self.trainable:
            return self.weights
        return self._collect(self._non_trainable_vars, "non_trainable_weights") if "_tracked" in self.__dict__ \
            else list(self._non_trainable_vars)

    @property
    def weights(self) -> list[Variable]:
        """All the layer's weights: the trainable ones, then the non-trainable ones (Keras's order)."""
        own = self._trainable_vars + self._non_trainable_vars
        return self._collect(own, "weights") if "_tracked" in self.__dict__ else own

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights
    variables = weights

    def get_weights(self) -> list[np.ndarray]:
        """The layer's weights as a list of NumPy arrays, in `weights` order."""
        return [v.numpy() for v in self.weights]

    def set_weights(self, weights: Sequence[ArrayLike]) -> None:
        """Set the layer's weights from a list of NumPy arrays, in `weights` order (shapes must match).

        Args:
            weights: List of NumPy arrays, in `get_weights()` order.
        """
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

    def count_params(self) -> int:
        """The total number of scalars in the layer's weights (the layer must be built)."""
        return int(sum(v.size for v in self.weights))

    # ----------------------------------------------------------- regularization
    @property
    def losses(self) -> list[Any]:
        """Regularization penalties of this layer's weights, the losses its latest call added
        (add_loss), and its tracked layers'. Floats; inside a GradientTape block, recorded values
        (their gradients reach the weights), with the losses added by the calls recorded in the block."""
        return self._collect_losses(last_calls=True)

    def _collect_losses(self, last_calls):
        """`losses`; without `last_calls` (what a training or test step adds to its loss, the
        step's own add_loss terms being counted from its tape) the losses earlier top-level calls
        added are left out: they belong to those calls, not to the step."""
        tape = _tape.active()
        if isinstance(tape, _tape.Tape) and _opcore.in_user_call():
            own = [_opcore.penalty(tape, var, reg) for var, reg in self._regularized]
            own += [value for layer, value in tape.added_losses if layer is self]
        else:   # floats; with the losses this layer added in this thread's last call of it (as Keras keeps them)
            own = [float(reg(var.value)) for var, reg in self._regularized]
            last = _tape.last_call(self) if last_calls else None
            if last is not None:
                own += [float(np.sum(value)) for layer, value in last[0].added_losses if layer is self]
        if "_tracked" not in self.__dict__:
            return own
        return own + [p for layer in self._sublayers() for p in _losses_of(layer, last_calls)]

    def add_loss(self, loss: Any) -> None:
        """Add `loss` (a scalar or array computed in `call` with cynet.ops) to the loss that training
        minimizes (summed), as Keras's add_loss: the KL term of a VAE, an activity penalty. It belongs
        to the call that adds it (kept on the call's tape, never on the layer); outside a recording
        call (predict) it is ignored.

        Args:
            loss: A penalty to add to the model's loss.
        """
        tape = _tape.active()
        if isinstance(tape, _tape.Tape):
            if not _penalty_sources:
                _count_penalty_source()
            tape.added_losses.append((self, loss))

    def _add_regularization_gradients(self):
        """Add the penalties' gradients (once per backward pass: the tape calls it)."""
        for var, reg in self._regularized:
            if var.grad is not None:
                var.grad = var.grad + reg.gradient(var.value).astype(var.dtype, copy=False)

    # ------------------------------------------------------------------ calling
    def build(self, input_shape: Any) -> None:
        """Create the weights for inputs of `input_shape` (batch axis first, may be None).

        Args:
            input_shape: Shape of the input, including the batch axis (`None` for unknown sizes).
        """
        self.built = True

    def _maybe_build(self, input_shape):
        if not self.built:
            input_shape = tuple(input_shape)
            self.build(input_shape)
            self.built = True
            self.input_shape = input_shape
            self.output_shape = self.compute_output_shape(input_shape)

    def _maybe_build_for(self, input_shape):
        """Build for `input_shape` if not built; return (and remember) the output shape."""
        self._maybe_build(input_shape)
        self.output_shape = self.compute_output_shape(tuple(input_shape))
        return self.output_shape

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "losses" in cls.__dict__ and not cls.__module__.startswith("cynet."):
            _count_penalty_source()   # (its own `losses`: the trainer always asks it)
        # A layer with its own backward (`_forward` / `_backward`) records each call on the tape;
        # any other layer composes layers (or is the identity) and its inner calls record themselves.
        cls._fused = cls._forward is not Layer._forward
        try:
            params = inspect.signature(cls.call).parameters
        except (TypeError, ValueError):
            params = {}
        cls._call_takes_training = "training" in params or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        # A composite layer written outside cynet (a user's `call`) runs on Tensors, so that its arithmetic
        # and cynet.ops calls record on the tape; cynet's own composites (models, wrappers) pass arrays through.
        if "_user_call" not in cls.__dict__:   # (a cynet class may say so itself: Lambda runs user code)
            cls._user_call = not cls._fused and not cls.__module__.startswith("cynet.")

        # Masks (Keras 3): the engine passes `mask=` to a built-in layer's `_forward`, or to another
        # layer's `call`, when that signature names `mask`. A class that defines compute_mask
        # supports masking unless it says otherwise (as Keras decides from compute_mask), and is a
        # mask source: the engine asks it for a mask even when its inputs carry none.
        try:
            takes = inspect.signature(cls._forward if cls._fused else cls.call).parameters
        except (TypeError, ValueError):
            takes = {}
        cls._takes_mask = "mask" in takes
        # Keras's `<name>_mask` arguments (MultiHeadAttention's query_mask, value_mask, key_mask):
        # filled from the masks of inputs given by name (a dict of inputs)
        named = dict(takes)
        if cls.__call__ is not Layer.__call__:
            try:
                named.update(inspect.signature(cls.__call__).parameters)
            except (TypeError, ValueError):
                pass
        cls._named_mask_params = frozenset(n for n in named if n.endswith("_mask"))
        if "compute_mask" in cls.__dict__ and "supports_masking" not in cls.__dict__:
            cls.supports_masking = True
        if not isinstance(inspect.getattr_static(cls, "_mask_source", None), property):
            cls._mask_source = cls.compute_mask is not Layer.compute_mask

    _fused = False
    _call_takes_training = True
    _user_call = False
    # Masking (see __init_subclass__ and compute_mask): whether the layer's output carries a mask
    # worked out by compute_mask (False: an input mask stops here, with a warning as in Keras);
    # whether its `_forward`/`call` takes `mask`; whether it may make a mask from none.
    supports_masking = False
    _takes_mask = False
    _named_mask_params: frozenset[str] = frozenset()
    _mask_source = False
    _warn_dropped_mask = True
    # A built-in layer whose call takes a list of arrays (merge layers): `_forward` gets the list,
    # `_backward` gets a list of booleans (which inputs need a gradient) and returns a list.
    _multi_input = False
    # A composite layer that takes one array (a wrapper), so that a nested list is that array.
    _single_input = False

    def __call__(self, inputs, training=False, **kwargs):
        if type(inputs) is not np.ndarray and (_graph.any_symbolic(inputs) or _graph.any_symbolic(kwargs)):
            return self._symbolic_call(inputs, training, kwargs)
        tape = _tape._active.get()
        if tape is None:   # a top-level call: its own tape, kept as this thread's last call of the layer
            tape = _tape.Tape()
            with _tape.recording(tape):
                taken, outputs = self._invoke(tape, inputs, training, kwargs)
            _tape.set_last_call(self, tape, taken, outputs)
            return outputs
        return self._invoke(tape, inputs, training, kwargs)[1]

    def _invoke(self, tape, inputs, training, kwargs):
        """Run one call on `tape`: (the flat tuple of inputs as the call took them, its outputs)."""
        taken, outputs = self._run_call(tape, inputs, training, kwargs)
        if self.activity_regularizer is not None and isinstance(tape, _tape.Tape):
            if not _penalty_sources:   # (its penalties are the call's added losses: see `_penalty_sources`)
                _count_penalty_source()
            for out in _graph.flatten(outputs):
                _tape.record_activity_penalty(tape, self, _opcore.plain(out), self.activity_regularizer)
        return taken, outputs

    def _run_call(self, tape, inputs, training, kwargs, forward=None):
        """One call on `tape`, as _invoke; `forward` (a built-in layer's): run instead of _forward."""
        training = bool(training)
        if not self._fused:   # a composite layer: its own call, on inputs of any structure (one array: a wrapper)
            convert = lambda a: _tape.record_cast(tape, a, self._convert_input(a))  # noqa: E731
            x = convert(inputs) if self._single_input else _graph.map_structure(convert, inputs)
            self._maybe_build(_graph.map_structure(lambda a: (None,) + a.shape[1:], x))
            if kwargs:
                self._take_mask_argument(kwargs, x)
            if self._call_takes_training:
                kwargs["training"] = training
            if self._user_call and tape is not _tape.NO_RECORD:
                return tuple(_graph.flatten(x)), _opcore.run_user_call(tape, self.call, x, kwargs)
            return tuple(_graph.flatten(x)), self.call(x, **kwargs)
        if self._multi_input:
            if not isinstance(inputs, (list, tuple)) or not inputs:
                raise TypeError(f"{self._who()}: inputs must be a non-empty list of arrays; received "
                                f"{type(inputs).__name__}")
            # (a Tensor from a user's call is taken as a plain array, linked on the tape: a built-in
            # layer computes on plain arrays)
            x = [_tape.record_cast(tape, a, self._convert_input(_opcore.plain(a))) for a in inputs]
            self._check_inputs(x)
            taken = tuple(x)
            self._maybe_build([(None,) + a.shape[1:] for a in x])
            for shape in _graph.flatten_shapes(self.compute_output_shape([a.shape for a in x])):
                _validation.check_size(f"{self._who()}: inputs", shape, self.dtype.itemsize,   # (views can be tiny
                                       "the output")                                         # and their output huge)
        else:
            x = self._convert_input(_opcore.plain(inputs))
            if x is not inputs:
                _tape.record_cast(tape, inputs, x)
            self._check_input(x)
            if not self.built:
                self._maybe_build((None,) + x.shape[1:])
            taken = (x,)
        if kwargs:
            self._take_mask_argument(kwargs, x)
        ctx = _tape.Context()
        y = (forward or self._forward)(ctx, x, training, **kwargs)
        if tape is not _tape.NO_RECORD:
            multi = isinstance(y, list)
            if _opcore.in_user_call():   # its output goes on in a user's call: a Tensor, so that arithmetic records
                y = [_opcore.as_tensor(a) for a in y] if multi else _opcore.as_tensor(y)
            tape.record(self, ctx, taken, tuple(y) if multi else (y,), self._multi_input, multi)
        return taken, y

    # ------------------------------------------------------------------ masking
    def compute_mask(self, inputs: Any, previous_mask: Any = None) -> Any:
        """The mask of this layer's output(s) for `inputs`, given the mask of its inputs (Keras 3:
        the previous mask, passed through; only used where `supports_masking` is True).

        A mask is a boolean array over the leading axes of an array (usually (batch, steps)):
        False marks a padded step that mask-aware layers skip. NumPy arrays cannot carry a mask as
        Keras's tensors do, so masks travel beside the arrays inside Sequential and Functional
        models; a layer called directly (`layer(x)`) returns no mask: ask
        `layer.compute_mask(x)` and pass it on with `other(y, mask=m)`.

        Args:
            inputs: Input array (or list of arrays for multi-input layers).
            previous_mask: The mask of the inputs, or `None`.
        """
        return previous_mask

    def _take_mask_argument(self, kwargs, x):
        """Check the `mask=` of a call (in `kwargs`) against the inputs `x`, in place, where the
        layer supports masking (a propagated mask): a boolean array (integers are read as
        booleans), or a list of them for a list of inputs. A layer that takes a `mask` of another
        kind checks it itself; a layer whose call takes no mask refuses one (None is dropped)."""
        if "mask" not in kwargs:
            return
        if not self._takes_mask:
            if kwargs["mask"] is None:
                del kwargs["mask"]
                return
            raise TypeError(f"{self._who()} takes no mask argument (its call has no `mask` parameter); received "
                            f"mask of type {type(kwargs['mask']).__name__}")
        if kwargs["mask"] is not None and self.supports_masking:
            kwargs["mask"] = self._checked_mask(kwargs["mask"], x)

    def _checked_mask(self, mask, x, what="mask"):
        """`mask` as booleans, refused (naming `what`) unless it fits `x`: for one array, its shape
        is that of x's leading axes (Keras's (batch, steps) for a sequence); for a list of inputs,
        a list with one mask (or None) per input. Layers with another rule override it."""
        if isinstance(x, (list, tuple)):
            if not isinstance(mask, (list, tuple)) or len(mask) != len(x):
                raise ValueError(f"{self._who()}: {what} must be a list of {len(x)} masks (or None), one per input; "
                                 f"received {type(mask).__name__}")
            return [None if m is None else self._checked_mask(m, a, f"{what}[{i}]")
                    for i, (m, a) in enumerate(zip(mask, x))]
        if not isinstance(x, np.ndarray):
            return mask   # a structure of inputs only a user's own call reads
        m = as_mask(self._who(), mask, what)
        if not 1 <= m.ndim <= x.ndim or m.shape != x.shape[:m.ndim]:
            raise ValueError(f"{self._who()}: {what} must have the shape of the leading axes of inputs of shape "
                             f"{x.shape} (such as {x.shape[:2]}); received shape {m.shape}")
        return m

    def _output_mask(self, inputs, previous_mask):
        """The mask the engine attaches to this call's output(s): compute_mask where the layer
        supports masking; otherwise none, with Keras's warning when an input mask is lost."""
        if self.supports_masking:
            return self.compute_mask(inputs, previous_mask)
        if previous_mask is not None and self._warn_dropped_mask:
            warnings.warn(f"Layer '{self.name}' (of type {type(self).__name__}) was passed an input with a mask "
                          "attached to it. However, this layer does not support masking and will therefore "
                          "destroy the mask information. Downstream layers will not see the mask.", stacklevel=3)
        return None

    def _masked_call(self, inputs, mask, training, kwargs, auto=True):
        """Call the layer inside a model whose arrays carry masks: (outputs, their mask).

        `mask`: the mask of `inputs` (a list, one per input, for a list; None for none). It
        reaches the layer's `mask` argument unless the call gives its own `mask=` or `auto` is
        False (Keras fills `mask` only for a call with one tensor argument); the output mask is
        compute_mask's (see `_output_mask`)."""
        if isinstance(mask, dict):   # inputs by name: Keras fills each `<name>_mask` the call has,
            named = {f"{k}_mask": m for k, m in mask.items()   # and the first input's mask is the previous one
                     if m is not None and f"{k}_mask" in self._named_mask_params and kwargs.get(f"{k}_mask") is None}
            if named:
                kwargs = dict(kwargs, **named)
            mask = next(iter(mask.values()), None)
        given = kwargs.get("mask")
        if given is None:
            if mask is not None and auto and self._takes_mask:
                kwargs = dict(kwargs, mask=mask)
        else:
            mask = given
        outputs = self(inputs, training=training, **kwargs)
        return outputs, self._output_mask(inputs, mask)

    def _check_inputs(self, xs):
        """Refuse, naming `inputs`, a list of inputs a multi-input layer cannot take."""
        for x in xs:
            self._check_input(x)

    def _symbolic_call(self, inputs, training, kwargs):
        """Calling on KerasTensors (keras.Input): build for their shapes, work out the output shapes,
        record a Node, return KerasTensors. No arithmetic runs (but for a composite layer with no
        compute_output_shape of its own, whose call runs once on a batch of zeros to find them)."""
        shapes = _graph.map_structure(lambda t: t.shape if _graph.is_symbolic(t) else np.shape(t), inputs)
        before = (self.built, len(self._trainable_vars), len(self._non_trainable_vars), len(self._regularized),
                  self.input_shape, self.output_shape, dict(self._input_axes), self._built_ndim)
        try:
            if self._fused or type(self).compute_output_shape is not Layer.compute_output_shape:
                self._maybe_build(shapes)
                if self._fused:
                    specs = _graph.map_structure(lambda t: _Spec(np.shape(t) if not _graph.is_symbolic(t)
                                                                 else t.shape), inputs)
                    self._check_inputs(specs) if self._multi_input else self._check_input(specs)
                out_shapes = self.compute_output_shape(shapes)
            else:
                out_shapes = self._traced_output_shapes(inputs, training, kwargs)
        except (ValueError, TypeError, IndexError) as exc:
            self._undo_build(before)   # a refused call leaves the layer as it was
            text = str(exc)
            if self.name not in text:
                text = f"{self._who()}: cannot be called on inputs of shape {shapes}: {text}"
            raise type(exc)(text) from None
        dtype = self._output_dtype()
        multi = isinstance(out_shapes, list)
        outputs = [_graph.KerasTensor(s, dtype) for s in (out_shapes if multi else [out_shapes])]
        _graph.Node(self, inputs, kwargs, outputs if multi else outputs[0])
        return outputs if multi else outputs[0]

    def _undo_build(self, before):
        built, n_trainable, n_non_trainable, n_regularized, input_shape, output_shape, axes, ndim = before
        if built:
            return
        del self._trainable_vars[n_trainable:], self._non_trainable_vars[n_non_trainable:]
        del self._regularized[n_regularized:]
        self.built, self.input_shape, self.output_shape = False, input_shape, output_shape
        self._input_axes, self._built_ndim = axes, ndim

    def _traced_output_shapes(self, inputs, training, kwargs):
        """Output shapes of a call on zeros shaped like the symbolic inputs (None read as 1)."""
        def zeros(t):
            if not _graph.is_symbolic(t):
                return t
            return np.zeros(tuple(1 if s is None else s for s in t.shape), dtype=t.dtype)
        with _tape.recording(_tape.NO_RECORD):
            out = self(_graph.map_structure(zeros, inputs), training=training,
                       **_graph.map_structure(zeros, kwargs))
        shapes = [(None,) + tuple(np.shape(o))[1:] for o in _graph.flatten(out)]
        return shapes if isinstance(out, (list, tuple)) else shapes[0]

    def _output_dtype(self):
        return self.dtype.name

    @property
    def input(self) -> Any:
        """The input tensor(s) of the layer's first call on symbolic tensors (Keras's layer.input)."""
        return self._first_node("input").arguments

    @property
    def output(self) -> Any:
        """The output tensor(s) of the layer's first call on symbolic tensors (Keras's layer.output)."""
        return self._first_node("output").output_structure

    def _first_node(self, what):
        if not self._inbound_nodes:
            raise AttributeError(f"{self._who()} has never been called on symbolic tensors (keras.Input), so it has "
                                 f"no {what}")
        return self._inbound_nodes[0]

    def forward(self, inputs: Any, training: bool = False, **kwargs: Any) -> Any:
        """Same as calling the layer (the manual loop's name for it): `backward` then runs on this call.

        Args:
            inputs: Input array (or list of arrays for multi-input layers).
            training: Whether the call is in training mode (dropout, batch statistics).
        """
        return self(inputs, training=training, **kwargs)

    def _who(self):
        return f"{type(self).__name__} '{self.name}'"

    def _convert_input(self, inputs):
        x = inputs if isinstance(inputs, np.ndarray) else _validation.as_array(f"{self._who()}: inputs", inputs)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{self._who()}: inputs must be numeric; received dtype {x.dtype}")
        if x.ndim == 0:
            raise ValueError(f"{self._who()}: inputs need a batch axis; received a scalar")
        if x.dtype != self.dtype or x.size * self.dtype.itemsize > _validation.memory_limit():  # (the hot path
            _validation.check_size(f"{self._who()}: inputs", x.shape, self.dtype.itemsize,  # builds no message)
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

    def _seeds(self, grad, outputs):
        """[(output, its gradient)] for `grad`, the gradient of the last call's output(s), as arrays
        of the layer's dtype. Refuses (naming `grad`) a grad whose shape is not the output's, or
        that is not real: NumPy would broadcast a wrong shape into a silently wrong gradient."""
        if isinstance(outputs, (list, tuple)):
            if not isinstance(grad, (list, tuple)) or len(grad) != len(outputs):
                raise ValueError(f"{self._who()}: grad must be a list of {len(outputs)} arrays, one per "
                                 f"output of the last call; received {type(grad).__name__}")
            return [(o, self._one_grad(g, o, f"grad[{i}]"))
                    for i, (g, o) in enumerate(zip(grad, outputs))]
        return [(outputs, self._one_grad(grad, outputs, "grad"))]

    def _one_grad(self, grad, output, what):
        shape = np.shape(output)
        g = _validation.as_array(f"{self._who()}: grad", grad)
        if g.dtype.kind not in "biuf":
            raise TypeError(f"{self._who()}: {what} must be a real numeric array; received dtype {g.dtype}")
        if g.shape != tuple(shape):
            raise ValueError(f"{self._who()}: {what} must have the shape of the last call's output {tuple(shape)}; "
                             f"received shape {g.shape}")
        return np.asarray(g, dtype=output.dtype if output.dtype.kind == "f" else self.dtype)

    def call(self, inputs: Any, training: bool = False) -> Any:
        """The layer's output for `inputs` (Keras's `call`; override it to write a layer).

        Args:
            inputs: Input array (or list of arrays for multi-input layers).
            training: Whether the call is in training mode (dropout, batch statistics).
        """
        if self._fused:
            return self._forward(_tape.Context(), inputs, bool(training))
        return inputs

    def _fuse_next(self, layer, x):
        """A call running this layer and then `layer` on x in one kernel, or None (the usual two
        calls). A Sequential model asks each layer about the next one, a Functional model each
        node about the one node that takes its output (and nothing else does), where no mask
        travels; the call, fn(x, training), returns `layer`'s output and records one call of this
        layer, whose backward goes from `layer`'s output gradient to x's."""
        return None

    def _forward(self, ctx, inputs, training):
        """Built-in layers with their own backward: the output, keeping in `ctx` what `_backward` needs."""
        raise NotImplementedError

    def _backward(self, ctx, grad, need_input_grad):
        """The input gradient of the call whose context is `ctx`, given its output's gradient (None
        when `need_input_grad` is False); adds each trainable variable's gradient with `_add_grad`."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def backward(self, grad: Any, input_gradient: bool = True) -> Any:
        """The gradient with respect to the input of this thread's last call of the layer, given
        the gradient of its output (a list, one per output, for a layer with several outputs).

        Sets each trainable variable's `grad` to its gradient. With `input_gradient=False`, only
        the variables' gradients are computed and None is returned. A call with several inputs
        (a recurrent layer given `initial_state`, a merge layer) gets a list, one gradient per input.

        Args:
            grad: Gradient of the loss with respect to the layer's output.
            input_gradient: Whether to return the gradient with respect to the input.
        """
        last = _tape.last_call(self)
        if last is None:
            raise RuntimeError(f"{self._who()}: backward() needs a forward call first (layer(inputs))")
        tape, inputs, outputs = last
        seeds = self._seeds(grad, outputs)
        seeds += [(v, np.ones(v.shape, v.dtype)) for _, v in tape.added_losses   # the call's add_loss terms
                  if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
        grads = tape.backward(seeds, inputs if input_gradient else ())
        if not input_gradient:
            return None
        return grads[0] if len(inputs) == 1 and not self._multi_input else grads

    def compute_output_shape(self, input_shape: Any) -> Any:
        """The output shape for `input_shape`: the input's for a built-in layer that keeps it; a
        user-written layer (its own `call`) without this method runs once on zeros to find it.

        Args:
            input_shape: Shape of the input, including the batch axis (`None` for unknown sizes).
        """
        if self._user_call and self.built and all(v is None or isinstance(v, (int, np.integer)) for v in input_shape):
            return self._traced_output_shapes(_graph.KerasTensor(tuple(input_shape), self.dtype.name), False, {})
        return tuple(input_shape)

    # ------------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments of this layer (Keras's names and values), JSON-serializable, so that
        `from_config` rebuilds it.
        """
        config = {"name": self.name, "trainable": self.trainable, "dtype": self._dtype_policy.name}
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        if self._input_shape_arg is not None:
            config["input_shape"] = list(self._input_shape_arg)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Layer":
        """An instance built from `get_config()`'s dictionary.

        Args:
            config: The dictionary `get_config()` returned.
        """
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


class _Spec:
    """A shape standing in for an array when a layer checks symbolic inputs (None: unknown size)."""

    def __init__(self, shape):
        self.shape = tuple(shape)
        self.ndim = len(self.shape)
        self.size = int(np.prod([1 if s is None else s for s in self.shape]))


def as_mask(who: str, mask: Any, what: str = "mask") -> np.ndarray:
    """`mask` as a boolean array (integers read as booleans), or TypeError naming `what`."""
    m = mask if isinstance(mask, np.ndarray) else _validation.as_array(f"{who}: {what}", mask)
    if m.dtype.kind == "b":
        return m
    if m.dtype.kind in "iu":
        return m != 0
    raise TypeError(f"{who}: {what} must be a boolean array (True: the step is kept); received dtype {m.dtype}")


def structure_mask(mask: Any) -> Any:
    """None for a structure of masks that are all None (nothing to propagate), else the mask."""
    if isinstance(mask, (list, tuple)):
        return mask if any(structure_mask(m) is not None for m in mask) else None
    return mask


def add_grad(variable: Any, grad: np.ndarray) -> None:
    """Add `grad` to `variable.grad` (a layer used twice gets the sum of both calls' gradients)."""
    variable.grad = grad if variable.grad is None else variable.grad + grad


def _policy(dtype):
    """A layer's DTypePolicy from its dtype argument (a NumPy dtype or type is taken by name)."""
    from .. import dtype_policies
    if isinstance(dtype, (np.dtype, type)):
        try:
            dtype = np.dtype(dtype).name
        except TypeError:
            pass
    try:
        return dtype_policies.get(dtype)
    except (TypeError, ValueError, NotImplementedError) as e:   # (half-precision variables: a bad argument here)
        raise ValueError(f"dtype must be 'float32', 'float64', 'mixed_bfloat16' or 'mixed_float16' (a dtype "
                         f"policy); received dtype={dtype!r}" + (f" ({e})" if isinstance(e, NotImplementedError)
                                                                 else "")) from e
