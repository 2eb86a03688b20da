"""Wrappers: Bidirectional and TimeDistributed (Keras 3: keras/src/layers/rnn/bidirectional.py,
keras/src/layers/core/... time_distributed.py).

Both are composite layers: their `call` composes layer calls (the wrapped layers, and small
recorded pieces such as a time reversal or a reshape), each recorded on the tape, so they need
no backward of their own and train inside any model.
"""
from typing import Any

from .base import Layer, as_mask
from .merging import Add, Average, Concatenate, Multiply
from .tensor_ops import GetItem, ReshapeBatch

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _mask_argument(layer, mask):
    """{"mask": mask} for a wrapped layer whose call takes one, else {}."""
    return {"mask": mask} if mask is not None and layer._takes_mask else {}


def _sequence_layer(layer, what):
    from .rnn import _RNN
    if not isinstance(layer, _RNN):
        raise ValueError(f"{what} must be a recurrent layer (SimpleRNN, LSTM, GRU); received {layer!r}")
    return layer


class Bidirectional(Layer):
    """Runs a recurrent layer forward and a copy of it backward over the sequence and merges the
    two outputs (`merge_mode` "concat", "sum", "mul", "ave", or None for the list of both).
    `initial_state` (a call argument, Keras's order): the forward layer's states, then the
    backward layer's. With return_sequences, both layers output zeros at masked steps
    (zero_output_for_mask, as Keras forces it).

    Weights, in Keras's order: the forward layer's, then the backward layer's.

    Args:
        layer: The wrapped layer.
        merge_mode: How the forward and backward outputs are combined: `"concat"` (default), `"sum"`, `"mul"`,
            `"ave"` or `None` (a list of both).
        weights: List of NumPy arrays, in `get_weights()` order.
        backward_layer: Optional layer to process the sequence backwards (default: a copy of `layer` with
            `go_backwards=True`).
    """

    _single_input = True

    def __init__(self, layer: Any, merge_mode: str | None = "concat", weights: Any = None, backward_layer: Any = None,
                 **kwargs: Any) -> None:
        if weights is not None:
            raise ValueError("Bidirectional(weights=...) is not supported: set the weights with set_weights()")
        _sequence_layer(layer, "layer")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"merge_mode must be one of {_MERGE_MODES}; received merge_mode={merge_mode!r}")
        kwargs.setdefault("name", "bidirectional_" + layer.name)
        kwargs.setdefault("dtype", layer.dtype_policy.name)
        super().__init__(**kwargs)
        if backward_layer is None:
            config = layer.get_config()
            config.update(name="backward_" + layer.name, go_backwards=not layer.go_backwards)
            backward_layer = type(layer).from_config(config)
        else:
            _sequence_layer(backward_layer, "backward_layer")
            if backward_layer.go_backwards == layer.go_backwards:
                raise ValueError("backward_layer must have go_backwards opposite to that of layer; both have "
                                 f"go_backwards={layer.go_backwards}")
            for attr in ("return_sequences", "return_state"):
                if getattr(backward_layer, attr) != getattr(layer, attr):
                    raise ValueError(f"backward_layer must have the same {attr} as layer; received "
                                     f"{getattr(backward_layer, attr)} and {getattr(layer, attr)}")
        for inner in (layer, backward_layer):   # Keras: masked steps of returned sequences are zeros
            if getattr(inner, "zero_output_for_mask", None) is not None:
                inner.zero_output_for_mask = inner.return_sequences
        self.forward_layer = layer
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self._reverse = GetItem((slice(None), slice(None, None, -1)), dtype=layer.dtype_policy.name)
        merge = {"concat": lambda **kw: Concatenate(axis=-1, **kw), "sum": Add, "mul": Multiply, "ave": Average,
                 None: None}[merge_mode]
        # (mypy types `merge` as object: the table holds layer classes and a factory)
        self._merge = None if merge is None else merge(dtype=layer.dtype_policy.name)  # type: ignore[operator]

    def build(self, input_shape: Any) -> None:
        self.forward_layer._maybe_build(input_shape)
        self.backward_layer._maybe_build(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        out = self.forward_layer.compute_output_shape(input_shape)
        states = out[1:] if self.return_state else []
        out = out[0] if self.return_state else out
        if self.merge_mode == "concat":
            out = tuple(out[:-1]) + (None if out[-1] is None else 2 * out[-1],)
        outputs = [out, out] if self.merge_mode is None else [out]
        return outputs + states + states if (self.return_state or self.merge_mode is None) else out

    supports_masking = True

    def _split_states(self, initial_state):
        """Keras's initial_state: the forward layer's states, then the backward layer's (an LSTM
        pair h, c each). Returns ({} or {"initial_state": ...}) for each layer."""
        if initial_state is None:
            return {}, {}
        n_f, n_b = self.forward_layer._n_states(), self.backward_layer._n_states()
        if not isinstance(initial_state, (list, tuple)) or len(initial_state) != n_f + n_b:
            got = len(initial_state) if isinstance(initial_state, (list, tuple)) else type(initial_state).__name__
            raise ValueError(f"{self._who()}: initial_state must be a list of {n_f + n_b} arrays, the forward "
                             f"layer's {n_f} state(s) then the backward layer's {n_b}; received {got}")
        return {"initial_state": list(initial_state[:n_f])}, {"initial_state": list(initial_state[n_f:])}

    def call(self, inputs: Any, training: bool = False, initial_state: Any = None, mask: Any = None) -> Any:
        forward_state, backward_state = self._split_states(initial_state)
        forward = self.forward_layer(inputs, training=training, **_mask_argument(self.forward_layer, mask),
                                     **forward_state)
        backward = self.backward_layer(inputs, training=training, **_mask_argument(self.backward_layer, mask),
                                       **backward_state)
        if self.return_state:
            forward, forward_states = forward[0], forward[1:]
            backward, backward_states = backward[0], backward[1:]
        if self.return_sequences:   # the backward layer's outputs run from the last step: put them in order
            backward = self._reverse(backward)
        outputs = [forward, backward] if self._merge is None else [self._merge([forward, backward])]
        if self.return_state:
            return outputs + list(forward_states) + list(backward_states)
        return outputs if self._merge is None else outputs[0]

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """Keras's: the input mask on the sequence output(s) (both, with merge_mode None) when
        return_sequences, none on the states.

        Args:
            inputs: Input array (or list of arrays for multi-input layers).
            mask: Optional boolean mask of the inputs (`True` keeps a position).
        """
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if self.return_sequences:
            out = mask if self.merge_mode is not None else [mask, mask]
        else:
            out = None if self.merge_mode is not None else [None, None]
        if self.return_state:
            n = 2 * self.forward_layer._n_states()
            return (out if isinstance(out, list) else [out]) + [None] * n
        return out

    def get_config(self) -> dict[str, Any]:
        from . import serialize
        config = {**super().get_config(), "layer": serialize(self.forward_layer), "merge_mode": self.merge_mode,
                  "backward_layer": serialize(self.backward_layer)}
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Bidirectional":
        from . import deserialize
        config = dict(config)
        layer = deserialize(config.pop("layer"))
        backward = config.pop("backward_layer", None)
        backward = None if backward is None else deserialize(backward)
        return cls(layer, backward_layer=backward, **config)


class TimeDistributed(Layer):
    """Applies `layer` to every temporal slice of its input: (batch, time, ...) -> the layer on
    (batch * time, ...) -> (batch, time, ...).

    Args:
        layer: The wrapped layer.
    """

    _single_input = True

    def __init__(self, layer: Layer, **kwargs: Any) -> None:
        if not isinstance(layer, Layer):
            raise ValueError(f"layer must be a cynet layer; received {layer!r}")
        kwargs.setdefault("dtype", layer.dtype_policy.name)
        super().__init__(**kwargs)
        self.layer = layer
        self._merge_time = ReshapeBatch(merge=True, dtype=layer.dtype_policy.name)
        self._split_time = ReshapeBatch(merge=False, dtype=layer.dtype_policy.name)

    def _inner_shape(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"{self._who()}: inputs must be at least 3-dimensional (batch, time, ...); received "
                             f"shape {tuple(input_shape)}")
        n, t = input_shape[0], input_shape[1]
        return (None if n is None or t is None else n * t,) + tuple(input_shape[2:])

    def build(self, input_shape: Any) -> None:
        self.layer._maybe_build(self._inner_shape(tuple(input_shape)))
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        inner = self.layer.compute_output_shape(self._inner_shape(tuple(input_shape)))
        if isinstance(inner, list):
            raise ValueError(f"{self._who()}: the wrapped layer must have one output")
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])

    supports_masking = True   # the (batch, steps) mask passes through (Keras 3)

    def _checked_mask(self, mask, x, what="mask"):
        """At least (batch, steps), matching the inputs' first two axes (Keras's check)."""
        m = as_mask(self._who(), mask, what)
        if m.ndim < 2 or m.ndim > x.ndim or m.shape != x.shape[:m.ndim]:
            raise ValueError(f"{self._who()}: {what} must be at least 2-dimensional, (batch, steps) = {x.shape[:2]} "
                             f"and then the inputs' next axes, for inputs of shape {x.shape}; received shape "
                             f"{m.shape}")
        return m

    def call(self, inputs: Any, training: bool = False, mask: Any = None) -> Any:
        self._inner_shape(inputs.shape)
        inner = {}
        if mask is not None and self.layer._takes_mask:   # each step's mask goes to the wrapped layer
            inner["mask"] = mask.reshape((-1,) + mask.shape[2:])
        y = self.layer(self._merge_time(inputs), training=training, **inner)
        if isinstance(y, (list, tuple)):
            raise ValueError(f"{self._who()}: the wrapped layer must have one output")
        return self._split_time(y, leading=inputs.shape[:2])

    def get_config(self) -> dict[str, Any]:
        from . import serialize
        return {**super().get_config(), "layer": serialize(self.layer)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "TimeDistributed":
        from . import deserialize
        config = dict(config)
        return cls(deserialize(config.pop("layer")), **config)
