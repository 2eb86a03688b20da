"""Sequential: a Model whose layers form one chain (Keras 3: keras/src/models/sequential.py).

It keeps its own fast path: its call runs the layers in order, with no graph walk.
"""
from typing import Any

from .. import tape as _tape
from ..graph import is_symbolic
from ..layers import InputLayer, Layer
from ..layers import deserialize as deserialize_layer
from ..layers import serialize as serialize_layer
from ..layers.base import _losses_of, unique_name
from ..ops import core as _opcore
from .model import Model, nested_masked_call


class Sequential(Model):
    """A linear stack of layers.

    Args:
        layers: optional list of layers (the first may be `cynet.Input(shape=...)`).
        name: the model's name.
        trainable: Whether the model's weights are updated by training.
    """

    def __init__(self, layers: Any = None, trainable: bool = True, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(trainable=trainable, name=name or unique_name("sequential"), **kwargs)
        self._layers: list[Any] = []
        self._layer_names: set[str] = set()
        self._input_layer: Any = None
        for layer in layers or []:
            self.add(layer)

    # ---------------------------------------------------------------- structure
    @property
    def layers(self) -> Any:
        """The model's layers in order (without the InputLayer)."""
        return list(self._layers)

    def add(self, layer: Any) -> None:
        """Append a layer (or an Input as the very first element).

        Args:
            layer: A Layer instance.
        """
        if is_symbolic(layer) and isinstance(layer._keras_history[0], InputLayer):
            layer = layer._keras_history[0]   # cynet.Input(...) as the first element
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError("an Input may only be the first element of a Sequential model")
            self._input_layer = layer
            self._input_shape_arg = layer._input_shape_arg
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a cynet layer; received {layer!r}")
        if layer.name in self._layer_names:
            raise ValueError(f"All layers added to a Sequential model should have unique names; "
                             f"name '{layer.name}' is already used")
        first_shape = None
        if not self._layers and self._input_shape_arg is None and layer._input_shape_arg is not None:
            first_shape = layer._input_shape_arg
        if self.built:   # extend the built stack by one layer: adding n layers costs O(n), not O(n^2)
            shape = layer._maybe_build_for(self.output_shape)
            self.output_shape = shape
        elif first_shape is not None or self._input_shape_arg is not None:
            self._input_shape_arg = self._input_shape_arg or first_shape
            try:
                self._layers.append(layer)
                self.build((None,) + self._input_shape_arg)  # type: ignore[operator]  # (set just above)
            except BaseException:   # a refused layer leaves the model as it was
                self._layers.pop()
                if first_shape is not None:
                    self._input_shape_arg = None
                self.built = False
                raise
            self._layer_names.add(layer.name)
            return
        self._layers.append(layer)
        self._layer_names.add(layer.name)

    def pop(self) -> Any:
        """Remove the last layer (the model is rebuilt when next used)."""
        if not self._layers:
            raise ValueError("There are no layers in the model")
        layer = self._layers.pop()
        self._layer_names.discard(layer.name)
        self.built = False
        return layer

    def build(self, input_shape: Any = None) -> Any:
        if input_shape is None:
            if self._input_shape_arg is None:
                raise ValueError("build() needs input_shape, or give the first layer input_shape= or start with Input")
            input_shape = (None,) + self._input_shape_arg
        shape = tuple(input_shape)
        for layer in self._layers:
            shape = layer._maybe_build_for(shape)
        self.input_shape = tuple(input_shape)
        self.output_shape = shape
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        for layer in self._layers:
            input_shape = layer.compute_output_shape(input_shape)
        return input_shape

    # ---------------------------------------------------------------- weights
    @property
    def weights(self) -> Any:
        """All weights of the layers, in layer order."""
        return [v for layer in self._layers for v in layer.weights]

    @property
    def trainable_weights(self) -> Any:
        """The trainable weights of the layers (none when the model is frozen)."""
        return [v for layer in self._layers for v in layer.trainable_weights] if self.trainable else []

    @property
    def non_trainable_weights(self) -> Any:
        """The non-trainable weights (all of them when the model is frozen)."""
        if not self.trainable:
            return self.weights
        return [v for layer in self._layers for v in layer.non_trainable_weights]

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights
    variables = weights

    def _collect_losses(self, last_calls):
        """The penalties of the layers (their weights' and what their calls added; see Layer.losses)."""
        return [penalty for layer in self._layers for penalty in _losses_of(layer, last_calls)]

    def get_layer(self, name: str | None = None, index: int | None = None) -> Any:
        if index is not None:
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: {[layer.name for layer in self._layers]}")

    # ---------------------------------------------------------------- forward / backward
    def _invoke(self, tape, inputs, training, kwargs):
        mask, sink = kwargs.pop("mask", None), kwargs.pop("_mask_sink", None)
        if kwargs:
            raise TypeError(f"Sequential model '{self.name}': unexpected call arguments {sorted(kwargs)}")
        if not self._layers:
            raise ValueError("The model has no layers")
        x = _tape.record_cast(tape, inputs, self._layers[0]._convert_input(_opcore.plain(inputs)))
        if not self.built:
            self.build((None,) + x.shape[1:])
        if mask is not None:
            mask = self._checked_mask(mask, x)
        y, mask = self._run(x, training, mask)
        if sink is not None:
            sink.append(mask)
        return (x,), y

    def call(self, inputs: Any, training: bool | None = False, mask: Any = None) -> Any:
        return self._run(inputs, training, mask)[0]

    def _run(self, x, training, mask):
        """Run the layers in order: (the output, its mask). Masks (Keras 3) go from each layer to
        the next; a model with no mask source and no input mask takes the plain loop, where a
        layer may run the next one's work in its own kernel (Layer._fuse_next)."""
        layers, i = self._layers, 0
        while i < len(layers):
            layer = layers[i]
            i += 1
            if mask is None and not layer._mask_source:
                pair = layer._fuse_next(layers[i], x) if i < len(layers) else None
                if pair is not None:
                    x = pair(x, training)
                    i += 1
                else:
                    x = layer(x, training=training)
            else:
                x, mask = layer._masked_call(x, mask, training, {})
        return x, mask

    @property
    def _mask_source(self):
        return any(layer._mask_source for layer in self._layers)

    _masked_call = nested_masked_call   # the input masks go in, the mask its layers leave comes out

    # ---------------------------------------------------------------- data
    def _prepare_x(self, x, name="x"):
        """x as the first layer's input array: non-empty, samples of the model's input shape, finite."""
        if x is None:
            raise ValueError(f"{name} must be given")
        if not self._layers:
            raise ValueError("The model has no layers")
        return self._input_array(x, name, self._layers[0]._convert_input, self._expected_samples)

    def _takes_strings(self):
        return bool(self._layers) and getattr(self._layers[0], "_string_input", False)

    def _expected_samples(self, arr):
        if not self.built:
            self.build((None,) + arr.shape[1:])
        return self.input_shape[1:]

    def _output_names(self, x=None):
        return [self._layers[-1].name] if self._layers else None

    def _output_shapes(self, x):
        return [tuple(self.compute_output_shape((None,) + tuple(x.shape[1:])))]

    # ---------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        layers = [serialize_layer(layer) for layer in self._layers]
        if self._input_layer is not None:
            layers.insert(0, serialize_layer(self._input_layer))
        return {"name": self.name, "trainable": self.trainable, "layers": layers,
                "build_input_shape": None if not self.built else list(self.input_shape)}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> "Sequential":
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for layer_config in config.get("layers", []):
            model.add(deserialize_layer(layer_config, custom_objects=custom_objects))
        shape = config.get("build_input_shape")
        if shape is not None and not model.built:
            model.build(tuple(shape))
        return model
