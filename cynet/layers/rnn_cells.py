"""Keras 3's generic recurrent API: `RNN(cell)` and the cells SimpleRNNCell, LSTMCell, GRUCell,
StackedRNNCells.

A cell is a layer whose `call(inputs, states, training=False)` computes one timestep: it takes the
step's inputs (batch, features) and its states (always a list, as Keras passes them) and returns
`(output, new_states)`. cynet's cells are written with cynet.ops, so every step records on the tape
and the gradients reach the weights, the inputs and the initial states without a hand-written
backward; a user-defined cell (any Layer with `state_size` and `call(inputs, states)`, as in
Keras's guide "Working with RNNs") works the same way.

`RNN` loops over the timesteps in Python. It is the flexible path, not the fast one: the fused
layers `SimpleRNN`, `LSTM` and `GRU` (cynet/layers/rnn.py) run the whole sequence in compiled
kernels and are many times faster for the same weights.
"""
from typing import Any

import numpy as np

from .. import _validation, ops
from .. import graph as _graph
from .. import tape as _tape
from ..ops import core as _opcore
from ..utils.rng import make_rng
from .base import Layer, as_mask, check_activation
from .rnn import WeightOptions, lstm_bias_initializer

# activations a cell computes with ops (recorded on the tape), by Keras name
_OP_ACTIVATIONS = {"tanh": ops.tanh, "sigmoid": ops.sigmoid, "relu": ops.relu, "linear": lambda x: x,
                   "hard_sigmoid": ops.hard_sigmoid, "elu": ops.elu, "selu": ops.selu, "softplus": ops.softplus,
                   "softsign": ops.softsign, "gelu": ops.gelu, "silu": ops.silu, "swish": ops.silu,
                   "relu6": ops.relu6, "softmax": ops.softmax}


def _op_activation(arg, value):
    """(Keras name, function on Tensors) of an activation argument."""
    name = check_activation(arg, value).name
    if name not in _OP_ACTIVATIONS:
        raise ValueError(f"{arg}={value!r} is not supported by cynet's recurrent cells yet; use one of "
                                  f"{sorted(_OP_ACTIVATIONS)}")
    return name, _OP_ACTIVATIONS[name]


def _no_dropout(dropout, recurrent_dropout):
    for arg, value in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
        value = _validation.real(arg, value, low=0.0, high=1.0, high_open=True)
        if value:
            raise NotImplementedError(f"{arg}={value} is not supported by cynet's recurrent cells yet (use the "
                                      f"fused SimpleRNN, LSTM or GRU layers, which support it)")


def _call_cell(cell, inputs, states, training):
    """One step of `cell` (a cynet or user cell): (output, new_states as a list)."""
    if isinstance(cell, Layer):
        kwargs = {"training": training} if cell._call_takes_training else {}
        out = Layer.__call__(cell, inputs, states=states, **kwargs)
    else:
        out = cell.call(inputs, states)
    output, new_states = out
    if not isinstance(new_states, (list, tuple)):
        new_states = [new_states]
    return output, list(new_states)


def _zeros_states(state_size, batch_size, dtype):
    """Zero states shaped like `state_size` (an int, or a nested list of ints)."""
    if isinstance(state_size, (list, tuple)):
        return [_zeros_states(s, batch_size, dtype) for s in state_size]
    return np.zeros((batch_size, int(state_size)), dtype=dtype)


class _Cell(WeightOptions, Layer):
    """Common part of cynet's cells: weights, options and config shared by the three kinds."""

    _user_call = True   # their call runs on Tensors, as a user-written call does (recorded by ops)
    gates = 1

    def __init__(self, units: int, activation: Any = "tanh", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, kernel_constraint: Any = None, recurrent_constraint: Any = None,
                 bias_constraint: Any = None, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 seed: Any = None, **kwargs: Any) -> None:
        implementation = kwargs.pop("implementation", 2)   # (Keras's LSTMCell / GRUCell: same results either way)
        if implementation not in (1, 2) or isinstance(implementation, bool):
            raise ValueError(f"implementation must be 1 or 2; received implementation={implementation!r}")
        super().__init__(**kwargs)
        self.units = _validation.positive_int("units", units)
        self.activation, self._act = _op_activation("activation", activation)
        self.use_bias = _validation.flag("use_bias", use_bias)
        self._set_weight_options(kernel_initializer, recurrent_initializer, bias_initializer, kernel_regularizer,
                                 recurrent_regularizer, bias_regularizer, kernel_constraint, recurrent_constraint,
                                 bias_constraint)
        _no_dropout(dropout, recurrent_dropout)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        if seed is not None:
            make_rng(seed)   # (checks it: a bad seed fails now, as the fused layers' do)
        self.seed = seed

    def __call__(self, inputs, states=None, training=False, **kwargs):
        """One step, as Keras calls a cell: `cell(inputs, states)` -> (output, new_states)."""
        if states is None:
            raise TypeError(f"{self._who()}: a cell is called as cell(inputs, states) with states a list of "
                            f"arrays; received no states")
        if not isinstance(states, (list, tuple)):
            states = [states]
        return super().__call__(inputs, training=training, states=list(states), **kwargs)

    @property
    def state_size(self) -> Any:
        """The size of each state (Keras's state_size)."""
        return self.units

    @property
    def output_size(self) -> int:
        """The size of the step's output."""
        return self.units

    def get_initial_state(self, batch_size: int | None = None) -> list[np.ndarray]:
        """Zero states for `batch_size` sequences (a list, one array per state).

        Args:
            batch_size: Number of sequences in the batch.
        """
        size = self.state_size
        return _zeros_states(size if isinstance(size, (list, tuple)) else [size], int(batch_size or 0), self.dtype)

    def build(self, input_shape: Any) -> None:
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"{self._who()} expects step inputs (batch, features); received shape {input_shape}")
        self._input_axes = {-1: input_shape[-1]}
        k = self.gates * self.units
        self.kernel = self.add_weight((input_shape[-1], k), self.kernel_initializer, name="kernel",
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight((self.units, k), self.recurrent_initializer, name="recurrent_kernel",
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        self.bias = (self.add_weight(self._bias_shape(), self._bias_init(), name="bias",
                                     regularizer=self.bias_regularizer, constraint=self.bias_constraint)
                     if self.use_bias else None)
        self.built = True

    def _bias_shape(self):
        return (self.gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], self.units)

    def _states(self, states, count):
        if len(states) != count:
            raise ValueError(f"{self._who()}: states must be a list of {count} array(s) of shape (batch, "
                             f"{self.units}); received {len(states)}")
        return states

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias, **self._weights_config(),
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout, "seed": self.seed}


class SimpleRNNCell(_Cell):
    """One step of a fully connected RNN: `h = activation(x @ kernel + h_prev @ recurrent_kernel + bias)`.

    Args:
        units: Positive integer, the size of the output and of the state.
        activation: Activation (Keras name); default "tanh".
        use_bias: Whether the step adds a bias.
        kernel_initializer: Initializer of `kernel` (features, units).
        recurrent_initializer: Initializer of `recurrent_kernel` (units, units).
        bias_initializer: Initializer of `bias` (units,).
        kernel_regularizer: Optional regularizer of `kernel`.
        recurrent_regularizer: Optional regularizer of `recurrent_kernel`.
        bias_regularizer: Optional regularizer of `bias`.
        kernel_constraint: Optional constraint of `kernel`.
        recurrent_constraint: Optional constraint of `recurrent_kernel`.
        bias_constraint: Optional constraint of `bias`.
        dropout: Must be 0 (dropout in cells raises NotImplementedError; the fused SimpleRNN has it).
        recurrent_dropout: Must be 0 (as `dropout`).
        seed: Kept for Keras compatibility (no dropout to seed).
        **kwargs: Base layer arguments (name, dtype, trainable).
    """

    def call(self, inputs: Any, states: Any, training: bool = False) -> Any:  # type: ignore[override]
        (h_prev,) = self._states(states, 1)
        z = ops.matmul(inputs, self.kernel)
        if self.use_bias:
            z = z + self.bias
        h = self._act(z + ops.matmul(h_prev, self.recurrent_kernel))
        return h, [h]


class LSTMCell(_Cell):
    """One step of a Long Short-Term Memory layer (Keras 3's gate order i, f, c, o).

    Args:
        units: Positive integer, the size of the output and of each state (h and c).
        activation: Activation of the cell input and output (Keras name); default "tanh".
        recurrent_activation: Activation of the gates; default "sigmoid".
        use_bias: Whether the step adds a bias.
        kernel_initializer: Initializer of `kernel` (features, 4 * units).
        recurrent_initializer: Initializer of `recurrent_kernel` (units, 4 * units).
        bias_initializer: Initializer of `bias` (4 * units,).
        unit_forget_bias: If True, the forget gate's bias starts at 1 (Keras's default).
        kernel_regularizer: Optional regularizer of `kernel`.
        recurrent_regularizer: Optional regularizer of `recurrent_kernel`.
        bias_regularizer: Optional regularizer of `bias`.
        kernel_constraint: Optional constraint of `kernel`.
        recurrent_constraint: Optional constraint of `recurrent_kernel`.
        bias_constraint: Optional constraint of `bias`.
        dropout: Must be 0 (dropout in cells raises NotImplementedError; the fused LSTM has it).
        recurrent_dropout: Must be 0 (as `dropout`).
        seed: Kept for Keras compatibility (no dropout to seed).
        **kwargs: Base layer arguments (name, dtype, trainable).
    """

    gates = 4

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 unit_forget_bias: bool = True, kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, kernel_constraint: Any = None, recurrent_constraint: Any = None,
                 bias_constraint: Any = None, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 seed: Any = None, **kwargs: Any) -> None:
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                         recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint,
                         dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed, **kwargs)
        self.recurrent_activation, self._rec_act = _op_activation("recurrent_activation", recurrent_activation)
        self.unit_forget_bias = _validation.flag("unit_forget_bias", unit_forget_bias)

    @property
    def state_size(self) -> Any:
        """[units, units]: the states h and c."""
        return [self.units, self.units]

    def _bias_init(self):
        return lstm_bias_initializer(self.bias_initializer, self.units, self.unit_forget_bias)

    def call(self, inputs: Any, states: Any, training: bool = False) -> Any:  # type: ignore[override]
        h_prev, c_prev = self._states(states, 2)
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h_prev, self.recurrent_kernel)
        if self.use_bias:
            z = z + self.bias
        i, f, c, o = ops.split(z, 4, axis=-1)
        c_new = self._rec_act(f) * c_prev + self._rec_act(i) * self._act(c)
        h = self._rec_act(o) * self._act(c_new)
        return h, [h, c_new]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "unit_forget_bias": self.unit_forget_bias}


class GRUCell(_Cell):
    """One step of a Gated Recurrent Unit (Keras 3's gate order z, r, h).

    Args:
        units: Positive integer, the size of the output and of the state.
        activation: Activation of the candidate state (Keras name); default "tanh".
        recurrent_activation: Activation of the gates; default "sigmoid".
        use_bias: Whether the step adds biases.
        kernel_initializer: Initializer of `kernel` (features, 3 * units).
        recurrent_initializer: Initializer of `recurrent_kernel` (units, 3 * units).
        bias_initializer: Initializer of `bias`: (2, 3 * units) with reset_after, else (3 * units,).
        kernel_regularizer: Optional regularizer of `kernel`.
        recurrent_regularizer: Optional regularizer of `recurrent_kernel`.
        bias_regularizer: Optional regularizer of `bias`.
        kernel_constraint: Optional constraint of `kernel`.
        recurrent_constraint: Optional constraint of `recurrent_kernel`.
        bias_constraint: Optional constraint of `bias`.
        dropout: Must be 0 (dropout in cells raises NotImplementedError; the fused GRU has it).
        recurrent_dropout: Must be 0 (as `dropout`).
        reset_after: If True (Keras 3's default), the reset gate applies after the recurrent product.
        seed: Kept for Keras compatibility (no dropout to seed).
        **kwargs: Base layer arguments (name, dtype, trainable).
    """

    gates = 3

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, recurrent_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, recurrent_constraint: Any = None, bias_constraint: Any = None,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, reset_after: bool = True,
                 seed: Any = None, **kwargs: Any) -> None:
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                         recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint,
                         dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed, **kwargs)
        self.recurrent_activation, self._rec_act = _op_activation("recurrent_activation", recurrent_activation)
        self.reset_after = _validation.flag("reset_after", reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def call(self, inputs: Any, states: Any, training: bool = False) -> Any:  # type: ignore[override]
        (h_prev,) = self._states(states, 1)
        u = self.units
        x = ops.matmul(inputs, self.kernel)
        if self.reset_after:
            r_all = ops.matmul(h_prev, self.recurrent_kernel)
            if self.use_bias:
                bias: Any = self.bias
                x = x + bias[0]
                r_all = r_all + bias[1]
            x_z, x_r, x_h = ops.split(x, 3, axis=-1)
            r_z, r_r, r_h = ops.split(r_all, 3, axis=-1)
            z = self._rec_act(x_z + r_z)
            r = self._rec_act(x_r + r_r)
            hh = self._act(x_h + r * r_h)
        else:
            if self.use_bias:
                x = x + self.bias
            x_z, x_r, x_h = ops.split(x, 3, axis=-1)
            rk = self.recurrent_kernel
            zr = ops.matmul(h_prev, rk[:, :2 * u])
            r_z, r_r = ops.split(zr, 2, axis=-1)
            z = self._rec_act(x_z + r_z)
            r = self._rec_act(x_r + r_r)
            hh = self._act(x_h + ops.matmul(r * h_prev, rk[:, 2 * u:]))
        h = z * h_prev + (1.0 - z) * hh
        return h, [h]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "reset_after": self.reset_after}


def _check_cell(cell, arg):
    if not callable(getattr(cell, "call", None)):
        raise ValueError(f"{arg} should have a `call` method. Received: {arg}={cell!r}")
    if not hasattr(cell, "state_size"):
        raise ValueError(f"The RNN cell should have a `state_size` attribute (single integer or list of integers, "
                         f"one integer per RNN state). Received: {arg}={cell!r}")


def _output_size(cell):
    size = getattr(cell, "output_size", None)
    if size is not None:
        return size
    state = cell.state_size
    return state[0] if isinstance(state, (list, tuple)) else state


class StackedRNNCells(Layer):
    """A stack of cells that behaves as one cell: each cell's output is the next one's input.

    Its states are the list of each cell's states (nested as each cell's state_size is).

    Args:
        cells: A non-empty list of cells (layers with `state_size` and `call(inputs, states)`).
        **kwargs: Base layer arguments (name, dtype, trainable); without a dtype, the first cell's.
    """

    _user_call = True

    def __init__(self, cells: Any, **kwargs: Any) -> None:
        if not isinstance(cells, (list, tuple)) or not cells:
            raise ValueError(f"cells must be a non-empty list of RNN cells; received cells={cells!r}")
        if "dtype" not in kwargs and isinstance(cells[0], Layer):   # (without one: its first cell's)
            kwargs["dtype"] = cells[0]._dtype_policy.name
        super().__init__(**kwargs)
        for cell in cells:
            _check_cell(cell, "cells")
        self.cells = list(cells)

    def __call__(self, inputs, states=None, training=False, **kwargs):
        if states is None:
            raise TypeError(f"{self._who()}: a cell is called as cell(inputs, states); received no states")
        return super().__call__(inputs, training=training, states=list(states), **kwargs)

    @property
    def state_size(self) -> Any:
        """Each cell's state_size, in order."""
        return [c.state_size for c in self.cells]

    @property
    def output_size(self) -> Any:
        """The last cell's output size."""
        return _output_size(self.cells[-1])

    def get_initial_state(self, batch_size: int | None = None) -> list[Any]:
        """Each cell's zero (or own initial) states.

        Args:
            batch_size: Number of sequences in the batch.
        """
        out = []
        for cell in self.cells:
            fn = getattr(cell, "get_initial_state", None)
            out.append(fn(batch_size=batch_size) if fn is not None
                       else _zeros_states(cell.state_size, int(batch_size or 0), self.dtype))
        return out

    def build(self, input_shape: Any) -> None:
        shape = tuple(input_shape)
        for cell in self.cells:
            if isinstance(cell, Layer) and not cell.built:
                cell.build(shape)
                cell.built = True
                cell.input_shape = shape
            shape = (shape[0], _output_size(cell))
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], self.output_size)

    def call(self, inputs: Any, states: Any, training: bool = False) -> Any:  # type: ignore[override]
        if len(states) != len(self.cells):
            raise ValueError(f"{self._who()}: states must hold one entry per cell ({len(self.cells)}); "
                             f"received {len(states)}")
        new_states = []
        for cell, s in zip(self.cells, states):
            nested = isinstance(s, (list, tuple))
            inputs, s_new = _call_cell(cell, inputs, list(s) if nested else [s], training)
            new_states.append(s_new if nested or len(s_new) != 1 else s_new[0])
        return inputs, new_states

    def get_config(self) -> dict[str, Any]:
        from . import serialize
        return {**super().get_config(), "cells": [serialize(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> "StackedRNNCells":
        from . import deserialize
        config = dict(config)
        return cls([deserialize(c, custom_objects) for c in config.pop("cells")], **config)


class RNN(Layer):
    """A recurrent layer made of any cell (Keras 3's `keras.layers.RNN`).

    The layer loops over the timesteps in Python, calling the cell on each step; every step is
    recorded on the tape, so gradients reach the cell's weights, the inputs and the initial states
    (also initial states that come from other layers of a Functional model, such as an encoder's
    states fed to a decoder). This is the flexible path: for a plain SimpleRNN, LSTM or GRU, the
    fused layers of those names compute the same function many times faster.

    Args:
        cell: A cell (SimpleRNNCell, LSTMCell, GRUCell, StackedRNNCells or a user-defined layer with
            `state_size` and `call(inputs, states)` returning `(output, new_states)`), or a list of
            cells (made into a StackedRNNCells).
        return_sequences: If True, return the output of every step (batch, timesteps, output_size);
            else the last one's (batch, output_size).
        return_state: If True, also return the final states: [output, *states].
        go_backwards: If True, process the sequence in reverse order (the outputs of every step
            are returned in that reversed order, as Keras does).
        stateful: If True, each batch starts from the last batch's final states (a fixed batch
            size) until `reset_states()`.
        unroll: Accepted for Keras compatibility (the result is the same; the loop is always in Python).
        zero_output_for_mask: If True, the output at a masked step is zeros rather than the
            previous step's output.
        **kwargs: Base layer arguments (name, dtype, trainable). Without a dtype, the layer takes
            its cell's.

    Call arguments: `inputs` (batch, timesteps, features); `initial_state` (a list of arrays,
    structured as the cell's state_size); `mask` (batch, timesteps) booleans (a masked step keeps
    the states); `training`.
    """

    supports_masking = True
    _input_ndim = 3

    def __init__(self, cell: Any, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 zero_output_for_mask: bool = False, **kwargs: Any) -> None:
        if isinstance(cell, (list, tuple)):
            if not cell:
                raise ValueError(f"cell must be a cell or a non-empty list of cells; received cell={cell!r}")
            for c in cell:
                _check_cell(c, "cell")
            cell = StackedRNNCells(cell)
        _check_cell(cell, "cell")
        if "dtype" not in kwargs and isinstance(cell, Layer):
            kwargs["dtype"] = cell._dtype_policy.name
        super().__init__(**kwargs)
        size = cell.state_size
        if not isinstance(size, (list, tuple, int)) or isinstance(size, bool):
            raise ValueError(f"state_size must be an integer, or a list/tuple of integers (one for each state "
                             f"tensor); received state_size={size!r}")
        self.cell = cell
        self.return_sequences = _validation.flag("return_sequences", return_sequences)
        self.return_state = _validation.flag("return_state", return_state)
        self.go_backwards = _validation.flag("go_backwards", go_backwards)
        self.stateful = _validation.flag("stateful", stateful)
        self.unroll = _validation.flag("unroll", unroll)
        self.zero_output_for_mask = _validation.flag("zero_output_for_mask", zero_output_for_mask)
        self._states = None
        self._expected_batch_size = None

    @property
    def state_size(self) -> list[Any]:
        """The cell's state sizes as a list (one entry per state)."""
        size = self.cell.state_size
        return [size] if isinstance(size, int) else list(size)

    def build(self, input_shape: Any) -> None:
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"{self._who()} expects inputs (batch, timesteps, features); received shape "
                             f"{input_shape}")
        self._input_axes = {-1: input_shape[-1]}
        if isinstance(self.cell, Layer) and not self.cell.built:
            step = (input_shape[0], input_shape[-1])
            self.cell.build(step)
            self.cell.built = True
            self.cell.input_shape = step
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        n, t = input_shape[0], input_shape[1]
        size = _output_size(self.cell)
        out = (n, t, size) if self.return_sequences else (n, size)
        if not self.return_state:
            return out
        states = [[(n, s) for s in size] if isinstance(size, (list, tuple)) else (n, size)
                  for size in self.state_size]
        return [out] + _flat_shapes(states)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The output's mask: the input's for return_sequences, else None; None for the states.

        Args:
            inputs: The layer's inputs.
            mask: Optional boolean mask of the inputs (`True` keeps a step).
        """
        if isinstance(mask, (list, tuple)):
            mask = mask[0] if mask else None
        out = mask if self.return_sequences else None
        return [out] + [None] * len(_flat_shapes(self.state_size)) if self.return_state else out

    def get_initial_state(self, batch_size: int) -> list[Any]:
        """The cell's initial states (zeros unless the cell has its own get_initial_state).

        Args:
            batch_size: Number of sequences in the batch.
        """
        fn = getattr(self.cell, "get_initial_state", None)
        states = fn(batch_size=batch_size) if fn is not None else \
            _zeros_states(self.state_size, batch_size, self.dtype)
        return list(states) if isinstance(states, (list, tuple)) else [states]

    # ------------------------------------------------------------------ calling
    def call(self, inputs: Any, initial_state: Any = None, mask: Any = None,  # type: ignore[override]
             training: bool = False) -> Any:
        """The layer's output (Keras's call arguments; its signature is how a model knows the layer
        takes a mask).

        Args:
            inputs: The sequences (batch, timesteps, features).
            initial_state: Optional initial states, structured as the cell's state_size.
            mask: Optional (batch, timesteps) booleans; a masked step keeps the states.
            training: Whether the call is in training mode (passed to the cell).
        """
        kwargs = {k: v for k, v in (("initial_state", initial_state), ("mask", mask)) if v is not None}
        tape = _tape._active.get()
        return self._invoke(_tape.NO_RECORD if tape is None else tape, inputs, training, kwargs)[1]

    def _invoke(self, tape, inputs, training, kwargs):
        """A call: the inputs it takes are the sequence and, when given, the initial states (which
        then get gradients too)."""
        initial_state = kwargs.pop("initial_state", None)
        mask = kwargs.pop("mask", None)
        if "constants" in kwargs:
            raise NotImplementedError(f"{self._who()}: the `constants` call argument is not supported")
        if kwargs:
            raise TypeError(f"{self._who()}: unexpected call arguments {sorted(kwargs)}")
        x = _tape.record_cast(tape, inputs, self._convert_input(_opcore.plain(inputs)))
        self._check_input(x)
        if x.shape[1] == 0:
            raise ValueError(f"{self._who()}: inputs must have at least one timestep; received shape {x.shape}")
        self._maybe_build((None,) + x.shape[1:])
        n = x.shape[0]
        size = _output_size(self.cell)
        if isinstance(size, (int, np.integer)):   # (a broadcast view can be tiny and its outputs huge)
            _validation.check_size(f"{self._who()}: inputs", (n, x.shape[1], size), self.dtype.itemsize,
                                   "the outputs of every step")
        states = self._given_states(tape, initial_state, n) if initial_state is not None else (
            self._stateful_states(n) if self.stateful else self.get_initial_state(n))
        mask = None if mask is None else self._time_mask(mask, x)
        taken = (x, *_graph.flatten(states)) if initial_state is not None else (x,)
        if tape is _tape.NO_RECORD:
            out = self._loop([x, states], mask=mask, training=bool(training))
        else:
            out = _opcore.run_user_call(tape, self._loop, [x, states], {"mask": mask, "training": bool(training)})
        return taken, out

    def _given_states(self, tape, initial_state, n):
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        sizes = self.state_size
        if len(states) != len(sizes):
            raise ValueError(f"{self._who()}: initial_state must hold {len(sizes)} state(s) (the cell's state_size "
                             f"{sizes}); received {len(states)}")

        def one(s, size):
            if isinstance(size, (list, tuple)):
                if not isinstance(s, (list, tuple)) or len(s) != len(size):
                    raise ValueError(f"{self._who()}: initial_state entry for state_size {size} must be a list of "
                                     f"{len(size)} arrays")
                return [one(a, z) for a, z in zip(s, size)]
            a = _validation.as_array("initial_state", _opcore.plain(s))
            if a.dtype.kind not in "biuf":
                raise TypeError(f"initial_state arrays must be real numeric arrays; received dtype {a.dtype}")
            if a.shape != (n, size):
                raise ValueError(f"initial_state arrays must have shape ({n}, {size}): (batch, state size); "
                                 f"received {a.shape}")
            return _tape.record_cast(tape, s, np.asarray(a, dtype=self.dtype))
        return [one(s, z) for s, z in zip(states, sizes)]

    def _time_mask(self, mask, x):
        m = as_mask(self._who(), _opcore.plain(mask))
        if m.ndim == 3 and m.shape[-1] == 1:
            m = m[..., 0]
        if m.shape != x.shape[:2]:
            raise ValueError(f"{self._who()}: mask must be booleans of shape (batch, timesteps) = {x.shape[:2]}; "
                             f"received shape {m.shape}")
        return m

    def _loop(self, args, mask=None, training=False):
        """The recurrence, on Tensors (recorded) or plain arrays (predict)."""
        x, states = args
        steps = range(x.shape[1] - 1, -1, -1) if self.go_backwards else range(x.shape[1])
        outputs = []
        prev = None
        for t in steps:
            out, new_states = _call_cell(self.cell, x[:, t], states, training)
            if mask is not None:
                m = mask[:, t:t + 1]
                if prev is None:
                    prev = np.zeros(np.shape(out), dtype=np.result_type(out))
                new_states = _where_states(m, new_states, states)
                out = ops.where(m, out, prev)
                prev = out
                if self.zero_output_for_mask:
                    out = ops.where(m, out, ops.zeros_like(out))
            states = new_states
            outputs.append(out)
        output = ops.stack(outputs, axis=1) if self.return_sequences else outputs[-1]
        if self.stateful:
            self._states = _graph.map_structure(lambda a: np.array(_opcore.plain(a), dtype=self.dtype), states)
        return [output, *_graph.flatten(states)] if self.return_state else output

    def _stateful_states(self, n):
        if self._states is None:
            self._states = self.get_initial_state(n)
            self._expected_batch_size = n
        if n != self._expected_batch_size:
            raise ValueError(f"If an RNN is stateful, the batch size of the input sequences must be the same as the "
                             f"batch size of the initial state. \n- Expected batch size: "
                             f"{self._expected_batch_size}\n- Received batch size: {n}")
        return self._states

    def reset_state(self) -> None:
        """stateful=True: the next call starts from the cell's initial (zero) states again."""
        if self._states is not None:
            self._states = self.get_initial_state(self._expected_batch_size)

    def reset_states(self) -> None:
        """Alias of reset_state (Keras)."""
        self.reset_state()

    @property
    def states(self) -> Any:
        """stateful=True: the states the next call starts from (None before the first call)."""
        return self._states

    def get_config(self) -> dict[str, Any]:
        from . import serialize
        return {**super().get_config(), "return_sequences": self.return_sequences,
                "return_state": self.return_state, "go_backwards": self.go_backwards, "stateful": self.stateful,
                "unroll": self.unroll, "zero_output_for_mask": self.zero_output_for_mask,
                "cell": serialize(self.cell)}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> "RNN":
        from . import deserialize
        config = dict(config)
        return cls(deserialize(config.pop("cell"), custom_objects), **config)


def _where_states(m, new, old):
    """new where the step is kept (m True), else old, over nested lists of states."""
    if isinstance(new, (list, tuple)):
        return [_where_states(m, a, b) for a, b in zip(new, old)]
    return ops.where(m, new, old)


def _flat_shapes(states):
    out = []
    for s in states:
        if isinstance(s, list):
            out.extend(_flat_shapes(s))
        else:
            out.append(s)
    return out
