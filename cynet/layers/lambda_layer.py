"""Lambda: wraps a function of arrays as a layer (Keras 3 `keras.layers.Lambda`).

What can be differentiated. The function runs on Tensors while a tape records (as a user-written
`call` does: cynet/ops/core.py), so everything it computes with cynet.ops, with NumPy operators and
ufuncs, or with cynet layer calls is on the tape and differentiable (`lambda x: x * 2`,
`lambda x: ops.concatenate([x, ops.sin(x)], -1)`). What it computes on plain arrays it made itself
(`np.asarray(x) * 2`) cuts the chain: the check at each recorded call (the outputs come out of
recorded calls, or are inputs, and every float array those calls took is an input or came out of
one of them) marks such a call, and a gradient that must go through it raises NotImplementedError
naming the layer: no gradient is ever silently wrong or missing. A NumPy function with no op yet
raises a TypeError naming it at the call.

Serialization (safe by design): `get_config` names the function ({"class_name": "function",
"config": name, "module": module}); `from_config` resolves that name only through custom objects
(`custom_objects=`, `custom_object_scope`, `register_keras_serializable`): nothing is imported and
no code from a file is run. A lambda or a local function is written as {"class_name":
"__lambda__", "config": {"name": "<lambda>"}} without its code (Keras writes its bytecode and
loads it only with safe_mode=False); loading it raises a ValueError asking for a named function
in custom_objects.
"""
import inspect
from typing import Any

import numpy as np

from .. import graph as _graph
from .. import tape as _tape
from ..utils import serialization as _serialization
from .base import Layer


class _NotDifferentiable:
    """The pseudo-layer of a Lambda call whose function is not made of layer calls: its backward
    refuses to make up a gradient."""

    trainable = False
    trainable_weights = ()
    _trainable_vars = ()

    def __init__(self, lam):
        self.lam = lam
        self.name = lam.name

    def _backward(self, ctx, grads, need):
        if any(need):
            raise NotImplementedError(
                f"{self.lam._who()}: a gradient must flow through its function "
                f"{_function_name(self.lam.function)!r}, which computes on plain NumPy arrays the tape does not "
                f"follow (made with np.asarray or copied out of its inputs); write it with cynet.ops, or with NumPy "
                f"operators on the arrays it is given (those are recorded)")
        return [None] * len(need)

    def _add_regularization_gradients(self):
        pass


def _function_name(fn):
    return getattr(fn, "__name__", type(fn).__name__)


def _shape_arg(value):
    if value is None or callable(value):
        return value
    try:
        shape = tuple(value)
    except TypeError:
        shape = None
    if shape is None or not all(s is None or (isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0)
                                for s in shape):
        raise TypeError(f"output_shape must be None, a tuple of sizes (None for unknown) or a function of the input "
                        f"shape; received output_shape={value!r}")
    return tuple(None if s is None else int(s) for s in shape)


class Lambda(Layer):
    """Wraps `function(inputs, **arguments)` as a layer.

    Args:
        function: a callable taking the inputs (one array, or the list / dict the layer is called
            on) and returning an array or a list of arrays.
        output_shape: optional: the output shape without the batch axis, or a function of the
            input shape (with the batch axis) returning the output shape; by default the
            function is run once on zeros to find it.
        mask: None (cynet layers do not propagate masks; anything else raises).
        arguments: optional dict of keyword arguments passed to the function.

    See the module docstring for which functions can be differentiated and how the function is
    saved.
    """

    _user_call = True   # its function runs on Tensors, as a user-written call does (see the module docstring)

    def __init__(self, function: Any, output_shape: Any = None, mask: Any = None,
                 arguments: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not callable(function) or inspect.isclass(function):
            raise TypeError(f"function must be a callable (a function of the inputs); received function={function!r}")
        if mask is not None:
            if callable(mask) or isinstance(mask, np.ndarray):
                raise NotImplementedError("Lambda(mask=...) is not supported: cynet layers do not propagate masks")
            raise TypeError(f"mask must be None; received mask={mask!r}")
        if arguments is not None and (not isinstance(arguments, dict)
                                      or not all(isinstance(k, str) for k in arguments)):
            raise TypeError(f"arguments must be None or a dict of keyword arguments; received arguments={arguments!r}")
        self.function = function
        self._output_shape_arg = _shape_arg(output_shape)
        self.mask = None
        self.arguments = dict(arguments or {})
        try:
            params = inspect.signature(function).parameters
        except (TypeError, ValueError):
            params = inspect.Signature().parameters
        self._takes_training = "training" in params

    def call(self, inputs, training=False):
        if self._takes_training:
            return self.function(inputs, training=training, **self.arguments)
        return self.function(inputs, **self.arguments)

    def _convert_input(self, inputs):
        return super()._convert_input(inputs) if not isinstance(inputs, np.ndarray) or inputs.dtype.kind == "f" \
            else inputs   # (integer inputs, token ids, pass as they are)

    def _invoke(self, tape, inputs, training, kwargs):
        if isinstance(inputs, (list, tuple)) and not any(isinstance(a, np.ndarray) for a in _graph.flatten(inputs)):
            inputs = self._convert_input(inputs)   # nested lists of numbers: one array (a list of arrays: several)
        recording = isinstance(tape, _tape.Tape)
        start = len(tape.records) if recording else 0
        taken, outputs = super()._invoke(tape, inputs, training, kwargs)
        given = tuple(a for a in _graph.flatten(inputs) if isinstance(a, np.ndarray))
        if recording and not self._traceable(tape.records[start:], taken + given, outputs):
            flat = tuple(o for o in _graph.flatten(outputs) if isinstance(o, np.ndarray))
            if flat:
                tape.record(_NotDifferentiable(self), _tape.Context(), taken, flat, True, True)
        return taken, outputs

    @staticmethod
    def _traceable(records, taken, outputs):
        """Whether the layer calls recorded inside the function carry every gradient from the
        outputs to the inputs (see the module docstring). `taken`: the inputs as given and as
        converted (a dtype conversion is a recorded call too)."""
        if not any(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in taken):
            return True   # integer or bool inputs: no input gradient to carry (inner layer calls record themselves)
        known = {id(a) for a in taken}
        for rec in records:
            for a in rec.inputs:
                if isinstance(a, np.ndarray) and a.dtype.kind == "f" and id(a) not in known:
                    return False
            known.update(id(a) for a in rec.outputs)
        return all(id(o) in known for o in _graph.flatten(outputs) if isinstance(o, np.ndarray))

    def compute_output_shape(self, input_shape):
        spec = self._output_shape_arg
        if callable(spec):
            return spec(input_shape)
        if spec is not None:
            return (None,) + spec if _is_shape(input_shape) else [(None,) + spec]
        return self._traced(input_shape)

    def _traced(self, input_shape):
        """Output shapes from one run of the function on zeros (unknown sizes read as 1)."""
        def zeros(shape):
            return np.zeros(tuple(1 if s is None else s for s in shape), dtype=self.dtype)
        x = zeros(input_shape) if _is_shape(input_shape) else _map_shapes(zeros, input_shape)
        with _tape.recording(_tape.NO_RECORD):
            out = self.call(x, training=False)
        shapes = [(None,) + tuple(np.shape(o))[1:] for o in _graph.flatten(out)]
        return shapes if isinstance(out, (list, tuple)) else shapes[0]

    def get_config(self):
        config = {**super().get_config(), "function": _serialize_function(self.function),
                  "mask": None, "arguments": self.arguments}
        spec = self._output_shape_arg
        config["output_shape"] = _serialize_function(spec) if callable(spec) else (
            None if spec is None else list(spec))
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["function"] = _deserialize_function(config.get("function"), "function", custom_objects)
        spec = config.get("output_shape")
        if isinstance(spec, dict):
            config["output_shape"] = _deserialize_function(spec, "output_shape", custom_objects)
        return cls(**config)


def _is_shape(value):
    return isinstance(value, tuple) and all(s is None or isinstance(s, int) for s in value)


def _map_shapes(fn, shapes):
    if _is_shape(shapes):
        return fn(shapes)
    if isinstance(shapes, dict):
        return {k: _map_shapes(fn, v) for k, v in shapes.items()}
    return [_map_shapes(fn, s) for s in shapes]


def _serialize_function(fn):
    name = _function_name(fn)
    for key, obj in _serialization.get_custom_objects().items():
        if obj is fn:
            return {"class_name": "function", "config": key, "module": getattr(fn, "__module__", None)}
    if name == "<lambda>" or "<locals>" in getattr(fn, "__qualname__", ""):
        return {"class_name": "__lambda__", "config": {"name": getattr(fn, "__qualname__", name)}}
    return {"class_name": "function", "config": name, "module": getattr(fn, "__module__", None)}


def _deserialize_function(config, what, custom_objects):
    if callable(config):
        return config
    if isinstance(config, str):
        config = {"class_name": "function", "config": config}
    if not isinstance(config, dict):
        raise ValueError(f"Lambda {what} must be a serialized function; received {config!r}")
    if config.get("class_name") == "__lambda__":
        raise ValueError(f"Lambda {what}: the saved layer wraps a lambda or local function, whose code cynet does "
                         f"not save or load (loading code from a file is unsafe). Define a named function and pass "
                         f"it as custom_objects={{'name': function}} (or register it with "
                         f"register_keras_serializable), and use it in the Lambda")
    name = config.get("config")
    fn = _serialization.get_registered_object(name, custom_objects) if isinstance(name, str) else None
    if fn is None or not callable(fn):
        raise ValueError(f"Lambda {what}: unknown function {name!r}. cynet never imports code named in a config: "
                         f"pass the function in custom_objects={{{name!r}: function}}, a custom_object_scope, or "
                         f"register it with @cynet.saving.register_keras_serializable()")
    return fn
