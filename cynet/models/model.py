"""Model: a Layer that trains (Trainer + Layer), as Keras 3's keras/src/models/model.py.

`Model(inputs, outputs)` makes a Functional model; `class M(Model)` with layers made in `__init__`
and a `call(inputs, training=None)` is a subclassed model (its layers, assigned as attributes, also
inside lists and dicts, are tracked); `Sequential` is the Model of one chain of layers.
"""
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import graph, tape as _tape
from ..layers.base import Layer, snake_case, unique_name
from ..ops import core as _opcore
from ..trainers.trainer import Trainer


class Model(Trainer, Layer):
    """A trainable layer: `fit`, `evaluate`, `predict`, `summary`, `save`.

    `Model(inputs, outputs, name=None)` builds a Functional model from symbolic tensors
    (`cynet.Input`); subclass Model and write `call` for a model in Python.
    """

    def __new__(cls, *args, **kwargs):
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
            from .functional import Functional
            return Functional.__new__(Functional)
        obj = super().__new__(cls)
        obj._init_config = _captured_arguments(cls, args, kwargs)   # a subclassed model's default config
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args or "inputs" in kwargs or "outputs" in kwargs:
            raise TypeError(f"{type(self).__name__}.__init__ takes name=, trainable=, dtype= (a subclassed model "
                            "makes its layers itself); Model(inputs, outputs) makes a Functional model")
        name = kwargs.pop("name", None)
        super().__init__(name=name or unique_name(snake_case(type(self).__name__)), **kwargs)
        self._init_trainer()

    # ---------------------------------------------------------------- structure
    @property
    def layers(self) -> Any:
        """The layers the model tracks (its attributes, in the order they were set)."""
        return self._sublayers()

    def get_layer(self, name: str | None = None, index: int | None = None) -> Any:
        """A layer of the model by name or by index in `model.layers`.

        Args:
            name: Name of the object (a default is generated when `None`).
            index: Index of the layer (in the order of `model.layers`).
        """
        layers = self.layers
        if index is not None:
            if name is not None:
                raise ValueError("Provide only a layer name or a layer index, not both")
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"Was asked to retrieve layer at index {index} but the model only has "
                                 f"{len(layers)} layers")
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: {[layer.name for layer in layers]}")

    def _invoke(self, tape, inputs, training, kwargs):
        """A subclassed model's call: its own `call` on the inputs converted to the model's dtype."""
        x = graph.map_structure(lambda a: _tape.record_cast(tape, a, self._convert_input(a)), inputs)
        if self._call_takes_training:
            kwargs["training"] = training
        if self._user_call and isinstance(tape, _tape.Tape):
            outputs = _opcore.run_user_call(tape, self.call, x, kwargs)
        else:
            outputs = self.call(x, **kwargs)
        if not self.built:
            self.built = True
            self._build_shapes = graph.map_structure(lambda a: [None] + list(np.shape(a)[1:]), x)
        return tuple(graph.flatten(x)), outputs

    def _build_from_shapes(self, shapes):
        """Create a subclassed model's weights by calling it once on zeros of `shapes` (batch 1)."""
        def zeros(shape):
            return np.zeros([1] + [1 if s is None else int(s) for s in shape[1:]], dtype=self.dtype)
        is_shape = lambda v: isinstance(v, list) and all(s is None or isinstance(s, int) for s in v)  # noqa: E731
        with _tape.recording(_tape.NO_RECORD):
            self(zeros(shapes) if is_shape(shapes) else _map_shapes(zeros, shapes, is_shape))

    def call(self, inputs: Any, training: bool | None = False) -> Any:
        raise NotImplementedError(f"{type(self).__name__} is a subclassed Model without a call method: define "
                                  "call(self, inputs, training=None)")

    # ---------------------------------------------------------------- data (subclassed models)
    def _prepare_x(self, x, name="x"):
        """x as the model's call takes it: each array of the structure numeric, non-empty, of one
        number of samples, finite, in the model's dtype."""
        if x is None:
            raise ValueError(f"{name} must be given")
        leaves = graph.flatten(x)
        labels = [name] if len(leaves) == 1 and not isinstance(x, (list, tuple, dict)) else [
            f"{name}[{i}]" for i in range(len(leaves))]
        convert = lambda a: a.astype(self.dtype) if a.dtype.kind == "f" else a  # noqa: E731
        arrays = [self._input_array(leaf, label, convert, lambda a: None) for label, leaf in zip(labels, leaves)]
        _same_samples(arrays, labels)
        x = graph.pack_like(x, arrays) if isinstance(x, (list, tuple, dict)) else arrays[0]
        if not self.built and self._has_call():   # its layers make their weights on this first call
            self._probe(x)
            self._build_shapes = graph.map_structure(lambda a: [None] + list(a.shape[1:]), x)
            self.built = True
        return x

    def _probe(self, x):
        """The model's outputs on the first sample of x (how many, what shapes)."""
        with _tape.recording(_tape.NO_RECORD):
            return self._call_model(graph.map_structure(lambda a: a[:1], x), False)

    def _has_call(self):
        """False for a model that only overrides train_step (Keras's VAE example has no call)."""
        return type(self).call is not Model.call

    def _output_names(self, x=None):
        if x is None:
            return None
        n = len(graph.flatten(self._probe(x))) if self._has_call() else 1
        return [self.name] if n == 1 else [f"output_{i + 1}" for i in range(n)]

    def _output_shapes(self, x):
        if not self._has_call():
            return [None]
        return [(None,) + tuple(np.shape(o))[1:] for o in graph.flatten(self._probe(x))]

    # ---------------------------------------------------------------- summary / saving
    def _summary_rows(self):
        """(layer name and type, output shape, parameter count, connected to or None) per layer."""
        rows = []
        for layer in self.layers:
            shape = layer.output_shape if layer.built and layer.output_shape is not None else "?"
            rows.append((f"{layer.name} ({type(layer).__name__})", str(shape), f"{layer.count_params():,}", None))
        return rows

    def summary(self, line_length: int | None = None, print_fn: Callable[..., Any] | None = None) -> None:
        """Print a Keras-like table of layers, output shapes, parameter counts (and, for a
        Functional model, what each layer is connected to).

        Args:
            line_length: Total width of the printed table.
            print_fn: Function called with each line (default `print`).
        """
        print_fn = print_fn or print
        if not self.built and getattr(self, "_input_shape_arg", None) is not None:
            self.build()   # type: ignore[call-arg]  # (Sequential's build: its Input's shape by default)
        rows = self._summary_rows()
        connected = any(r[3] is not None for r in rows)
        header = ("Layer (type)", "Output Shape", "Param #") + (("Connected to",) if connected else ())
        table = [header] + [r[:3] + ((r[3] or "-",) if connected else ()) for r in rows]
        widths = [max(len(r[i]) for r in table) + 2 for i in range(len(header))]
        width = sum(widths)
        weights = self.weights
        trainable_ids = {id(v) for v in self.trainable_weights}
        total = sum(v.size for v in weights)
        trainable = sum(v.size for v in weights if id(v) in trainable_ids)
        total_bytes = sum(v.size * v.dtype.itemsize for v in weights)
        trainable_bytes = sum(v.size * v.dtype.itemsize for v in weights if id(v) in trainable_ids)
        lines = [f'Model: "{self.name}"', "━" * width, "".join(c.ljust(w) for c, w in zip(header, widths)),
                 "━" * width]
        for r in table[1:]:
            lines.append("".join(c.ljust(w) for c, w in zip(r, widths)))
        lines.append("━" * width)
        lines.append(f" Total params: {total:,} ({_human_bytes(total_bytes)})")
        lines.append(f" Trainable params: {trainable:,} ({_human_bytes(trainable_bytes)})")
        lines.append(f" Non-trainable params: {total - trainable:,} ({_human_bytes(total_bytes - trainable_bytes)})")
        for line in lines:
            print_fn(line)

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> "Model":
        """A model from its config: a Functional graph's config (layers, input_layers,
        output_layers) makes a Functional model; a subclassed model gets its config as __init__
        arguments (its weights are made when it is built: `build_input_shape`).

        Args:
            config: The dictionary `get_config()` returned.
            custom_objects: Optional dict mapping names to custom classes or functions used while
                deserializing.
        """
        if cls is Model and isinstance(config, dict) and "input_layers" in config:
            from .functional import Functional
            return Functional.from_config(config, custom_objects=custom_objects)
        config = {k: v for k, v in config.items() if k != "build_input_shape"}
        return cls(**config)

    def get_config(self) -> dict[str, Any]:
        """A subclassed model's config: the arguments its __init__ was called with (when they are
        plain JSON values, as Keras captures them), its name and trainable flag, and the input
        shape it was built for. Override it when __init__ takes other objects."""
        captured = getattr(self, "_init_config", None)
        if captured is None:
            raise NotImplementedError(f"{type(self).__name__} is a subclassed model whose __init__ arguments are not "
                                      "plain values: define get_config() (returning its __init__ arguments) to save "
                                      "or clone it")
        config = dict(captured, name=self.name, trainable=self.trainable)
        shapes = getattr(self, "_build_shapes", None)
        if shapes is not None:
            config["build_input_shape"] = shapes
        return config

    def save(self, filepath: Any, overwrite: bool = True) -> None:
        """Save the model (architecture, weights, compile and optimizer state) to a `.keras` file, as
        `cynet.saving.save_model`.

        Args:
            filepath: Path of the file.
            overwrite: Whether to overwrite an existing file (`False` raises instead of asking, unlike Keras's
                prompt).
        """
        from ..saving import save_model
        save_model(self, filepath, overwrite=overwrite)

    def to_json(self, **kwargs: Any) -> str:
        """The architecture as a JSON string in Keras 3's format (`serialize_keras_object`), which
        `cynet.models.model_from_json` and Keras's `model_from_json` read back (no weights).

        Args:
            **kwargs: Options for `json.dumps` (e.g. `indent`).
        """
        import json
        from ..saving_objects import serialize_keras_object
        return json.dumps(serialize_keras_object(self), **kwargs)

    def save_weights(self, filepath: Any, overwrite: bool = True) -> None:
        """Save only the weights to a `.weights.h5` file (Keras 3's layout), as `cynet.saving.save_weights`.

        Args:
            filepath: Path of the file.
            overwrite: Whether to overwrite an existing file (`False` raises instead of asking, unlike Keras's
                prompt).
        """
        from ..saving import save_weights
        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: Any) -> None:
        """Load weights saved by `save_weights` (or by Keras) into this model, matched by structure.

        Args:
            filepath: Path of the file.
        """
        from ..saving import load_weights
        load_weights(self, filepath)


def _captured_arguments(cls, args, kwargs):
    """The keyword form of a subclassed model's __init__ arguments when all are plain JSON values
    (numbers, strings, booleans, None, lists and dicts of them), else None."""
    import inspect
    try:
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    except TypeError:
        return None
    captured = {}
    for name, value in list(bound.arguments.items())[1:]:
        kind = inspect.signature(cls.__init__).parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            captured.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                return None
        else:
            captured[name] = value
    return captured if all(_plain(v) for v in captured.values()) else None


def _plain(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _map_shapes(fn, shapes, is_shape):
    if is_shape(shapes):
        return fn(shapes)
    if isinstance(shapes, dict):
        return {k: _map_shapes(fn, v, is_shape) for k, v in shapes.items()}
    return [_map_shapes(fn, v, is_shape) for v in shapes]


def _same_samples(arrays, labels):
    sizes = {a.shape[0] for a in arrays}
    if len(sizes) > 1:
        raise ValueError("all inputs must have the same number of samples; received "
                         + ", ".join(f"{label} with {a.shape[0]}" for label, a in zip(labels, arrays)))


def _human_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024


def nested_masked_call(model, inputs, mask, training, kwargs, auto=True):
    """Layer._masked_call for a Sequential or Functional model inside a model: the masks of its
    inputs go in as its `mask`, and the masks its own layers leave on its outputs come out (the
    model's _invoke hands them to `_mask_sink`), as Keras's tensors carry them out of a model."""
    from ..layers.base import structure_mask
    sink = []
    kwargs = dict(kwargs, _mask_sink=sink)
    if kwargs.get("mask") is None and mask is not None and auto:
        kwargs["mask"] = mask
    outputs = model(inputs, training=training, **kwargs)
    return outputs, structure_mask(sink[0]) if sink else None
