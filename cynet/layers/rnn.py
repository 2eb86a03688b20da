"""Recurrent layers: SimpleRNN, LSTM, GRU (Keras 3 weight layouts and gate orders).

Inputs are (batch, timesteps, features). The whole sequence runs in `cynet.kernels`
(one input GEMM, then per step a recurrent GEMM and one fused gate kernel; BPTT likewise).
"""
from typing import Any

import numpy as np

from .. import _validation, constraints, initializers, kernels, regularizers, tape as _tape
from ..ops import core as _opcore
from ..utils.rng import make_rng
from .base import Layer, add_grad, check_activation, check_constraint, check_initializer, check_regularizer

_KERNEL_ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
_KERNEL_RECURRENT_ACTIVATIONS = ("sigmoid", "hard_sigmoid", "tanh", "linear")


def _activation_name(value, allowed, arg):
    name = check_activation(arg, value).name
    if name not in allowed:
        raise ValueError(f"{arg} must be one of {allowed} for the fused recurrent kernels; received {arg}={value!r}")
    return name


def lstm_bias_initializer(bias_initializer, units, unit_forget_bias):
    """The initializer of an LSTM's (4 * units,) bias (Keras's gate order i|f|c|o): with
    unit_forget_bias, `bias_initializer` for the i, c and o blocks and ones for the forget gate's;
    else `bias_initializer` itself. Shared by the LSTM layer and LSTMCell."""
    if not unit_forget_bias:
        return bias_initializer
    base = initializers.get(bias_initializer)

    def init(shape, dtype=None):
        return np.concatenate([base((units,), dtype=dtype), np.ones((units,), dtype=dtype),
                               base((2 * units,), dtype=dtype)])
    return init


class WeightOptions:
    """The kernel, recurrent_kernel and bias options of a recurrent layer or cell (Keras's argument
    names and defaults): checked and set once, serialized once."""

    kernel_initializer: Any
    recurrent_initializer: Any
    bias_initializer: Any
    kernel_regularizer: Any
    recurrent_regularizer: Any
    bias_regularizer: Any
    kernel_constraint: Any
    recurrent_constraint: Any
    bias_constraint: Any

    def _set_weight_options(self, kernel_initializer: Any, recurrent_initializer: Any, bias_initializer: Any,
                            kernel_regularizer: Any, recurrent_regularizer: Any, bias_regularizer: Any,
                            kernel_constraint: Any, recurrent_constraint: Any, bias_constraint: Any) -> None:
        self.kernel_initializer = check_initializer("kernel_initializer", kernel_initializer, "glorot_uniform")
        self.recurrent_initializer = check_initializer("recurrent_initializer", recurrent_initializer, "orthogonal")
        self.bias_initializer = check_initializer("bias_initializer", bias_initializer, "zeros")
        self.kernel_regularizer = check_regularizer("kernel_regularizer", kernel_regularizer)
        self.recurrent_regularizer = check_regularizer("recurrent_regularizer", recurrent_regularizer)
        self.bias_regularizer = check_regularizer("bias_regularizer", bias_regularizer)
        self.kernel_constraint = check_constraint("kernel_constraint", kernel_constraint)
        self.recurrent_constraint = check_constraint("recurrent_constraint", recurrent_constraint)
        self.bias_constraint = check_constraint("bias_constraint", bias_constraint)

    def _weights_config(self) -> dict[str, Any]:
        """Their config entries, serialized as Keras writes them."""
        def ser(v, mod):
            return None if v is None else mod.serialize(mod.get(v))
        names = ("kernel", "recurrent", "bias")
        return {**{f"{n}_initializer": ser(getattr(self, f"{n}_initializer"), initializers) for n in names},
                **{f"{n}_regularizer": ser(getattr(self, f"{n}_regularizer"), regularizers) for n in names},
                **{f"{n}_constraint": constraints.serialize(getattr(self, f"{n}_constraint")) for n in names}}


class _RNN(WeightOptions, Layer):
    """The recurrent layers' common part. Keras features, all in the kernels (no Python loop
    over timesteps): `mask` (a call argument, (batch, timesteps) booleans: a masked step is
    skipped, the states carried over; the output at a masked step is the last unmasked step's,
    zeros before the first one, as Keras 3 gives it), `dropout` (one per-sequence mask on the
    inputs, training only, seeded by `seed`), `recurrent_dropout` (Keras 3: one per-sequence
    mask per gate on h_{t-1} before the gate's recurrent product, applied inside the kernels'
    time loop; with it, an LSTM's or GRU's `dropout` also draws one input mask per gate, as
    Keras's implementation 1 does), `go_backwards`, `return_state`, `stateful` (the
    final states of a call are the next call's initial states, for a fixed batch size, until
    `reset_states()`), and `unroll`, accepted and ignored (the kernels' loop is always fused)."""

    gates = 1
    _input_ndim = 3
    _nonempty_input = True
    supports_masking = True

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False, stateful=False, unroll=False,
                 seed=None, zero_output_for_mask=False, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = _validation.positive_int("units", units)
        self.activation = _activation_name(activation, _KERNEL_ACTIVATIONS, "activation")
        self.use_bias = _validation.flag("use_bias", use_bias)
        self._set_weight_options(kernel_initializer, recurrent_initializer, bias_initializer, kernel_regularizer,
                                 recurrent_regularizer, bias_regularizer, kernel_constraint, recurrent_constraint,
                                 bias_constraint)
        self.dropout = _validation.real("dropout", dropout, low=0.0, high=1.0, high_open=True)
        self.recurrent_dropout = _validation.real("recurrent_dropout", recurrent_dropout, low=0.0, high=1.0,
                                                  high_open=True)
        self.return_sequences = _validation.flag("return_sequences", return_sequences)
        self.return_state = _validation.flag("return_state", return_state)
        self.go_backwards = _validation.flag("go_backwards", go_backwards)
        self.stateful = _validation.flag("stateful", stateful)
        self._states = None                 # stateful: the states the next call starts from
        self._expected_batch_size = None
        self.unroll = _validation.flag("unroll", unroll)   # accepted, ignored: the loop is fused
        # Keras's RNN argument: the output at a masked step is zeros, not the last unmasked
        # step's (Bidirectional sets it to return_sequences, as Keras does)
        self.zero_output_for_mask = _validation.flag("zero_output_for_mask", zero_output_for_mask)
        self.seed = seed
        self._rng = make_rng(seed) if seed is not None else None

    def build(self, input_shape: Any) -> None:
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects inputs (batch, timesteps, features); "
                             f"received shape {input_shape}")
        self._input_axes = {-1: input_shape[-1]}
        k = self.gates * self.units
        self.kernel = self.add_weight((input_shape[-1], k), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, name="kernel",
                                      constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight((self.units, k), self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer, name="recurrent_kernel",
                                                constraint=self.recurrent_constraint)
        self.bias = (self.add_weight(self._bias_shape(), self._bias_init(), regularizer=self.bias_regularizer,
                                     name="bias", constraint=self.bias_constraint) if self.use_bias else None)
        self.built = True

    def _bias_shape(self):
        return (self.gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    def compute_output_shape(self, input_shape: Any) -> Any:
        n, t = input_shape[0], input_shape[1]
        out = (n, t, self.units) if self.return_sequences else (n, self.units)
        if self.return_state:
            return [out] + [(n, self.units)] * self._n_states()
        return out

    def _n_states(self):
        return 1

    def _invoke(self, tape, inputs, training, kwargs):
        """A call: the inputs it takes are the sequence and, when given, the initial states (which
        then get gradients too)."""
        initial_state = kwargs.pop("initial_state", None)
        mask = kwargs.pop("mask", None)
        if kwargs:
            raise TypeError(f"{self._who()}: unexpected call arguments {sorted(kwargs)}")
        x = _tape.record_cast(tape, inputs, self._convert_input(_opcore.plain(inputs)))   # (a Tensor: plain)
        self._check_input(x)
        self._maybe_build((None,) + x.shape[1:])
        states = self._initial_states(initial_state, x.shape[0])
        ctx = _tape.Context()
        y = self._forward(ctx, x, bool(training), mask=mask, states0=states)
        taken = (x,) if initial_state is None else (x, *states)
        if tape is not _tape.NO_RECORD:
            multi = isinstance(y, list)
            tape.record(self, ctx, taken, tuple(y) if multi else (y,), initial_state is not None, multi)
        return taken, y

    def _initial_states(self, initial_state, n):
        count = self._n_states()
        if initial_state is None:
            return self._stateful_states(n) if self.stateful else [None] * count
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(states) != count:
            raise ValueError(f"initial_state must hold {count} array(s) of shape ({n}, {self.units}); "
                             f"received {len(states)}")
        out = []
        for s in states:
            s = _validation.as_array("initial_state", s)
            if s.dtype.kind not in "biuf":
                raise TypeError(f"initial_state arrays must be real numeric arrays; received dtype {s.dtype}")
            if s.shape != (n, self.units):
                raise ValueError(f"initial_state arrays must have shape ({n}, {self.units}): (N, units) with N the "
                                 f"batch size of the inputs and units={self.units}; received {s.shape}")
            out.append(np.asarray(s, dtype=self.dtype))
        return out

    def _stateful_states(self, n):
        """stateful=True: the states kept from the last call (zeros at first), for batches of
        the size they were made for."""
        if self._states is None:
            self._states = [np.zeros((n, self.units), dtype=self.dtype) for _ in range(self._n_states())]
            self._expected_batch_size = n
        if n != self._expected_batch_size:
            raise ValueError(f"If an RNN is stateful, the batch size of the input sequences must be the same as the "
                             f"batch size of the initial state. \n- Expected batch size: "
                             f"{self._expected_batch_size}\n- Received batch size: {n}")
        return list(self._states)

    def reset_state(self) -> None:
        """stateful=True: the next call starts from zero states again."""
        if self._states is not None:
            self._states = [np.zeros_like(s) for s in self._states]

    def reset_states(self) -> None:
        """Alias of reset_state (Keras)."""
        self.reset_state()

    @property
    def states(self) -> Any:
        """stateful=True: the states the next call starts from (None before the first call)."""
        return None if self._states is None else list(self._states)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The output's mask (Keras): the input's for return_sequences, else None; None for states.

        Args:
            inputs: Input array (or list of arrays for multi-input layers).
            mask: Optional boolean mask of the inputs (`True` keeps a position).
        """
        out = mask if self.return_sequences else None
        return [out] + [None] * self._n_states() if self.return_state else out

    def call(self, inputs: Any, training: bool = False, initial_state: Any = None, mask: Any = None) -> Any:
        x = inputs
        return self._forward(_tape.Context(), x, bool(training), mask=mask,
                             states0=self._initial_states(initial_state, x.shape[0]))

    def _time_mask(self, mask, x):
        """mask (batch, timesteps) -> booleans in the kernels' time order, or None when absent or
        all True."""
        if mask is None:
            return None
        m = _validation.as_array("mask", mask)
        if m.ndim == 3 and m.shape[-1] == 1:
            m = m[..., 0]
        if m.dtype.kind not in "biuf" or m.shape != x.shape[:2]:
            raise ValueError(f"{self._who()}: mask must be booleans of shape (batch, timesteps) = {x.shape[:2]}; "
                             f"received {m.dtype} array of shape {m.shape}")
        m = m != 0
        if self.go_backwards:
            m = m[:, ::-1]
        return None if m.all() else np.ascontiguousarray(m)

    def _forward(self, ctx, inputs, training, mask=None, states0=None):
        if inputs.shape[-1] != self.kernel.shape[0]:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects {self.kernel.shape[0]} features; "
                             f"received shape {inputs.shape}")
        x = inputs[:, ::-1] if self.go_backwards else inputs
        ctx.time_mask = self._time_mask(mask, x)
        # Keras's output at a masked step is the previous step's output, zeros before the first
        # unmasked one (the states carry over from the initial ones); with zero_output_for_mask,
        # zeros at every masked step. ctx.seen: where the output is the state, in the kernels'
        # time order.
        ctx.seen = None
        if ctx.time_mask is not None:
            ctx.seen = ctx.time_mask if self.zero_output_for_mask else np.logical_or.accumulate(ctx.time_mask, axis=1)
        if states0 is None and self.stateful:
            states0 = self._stateful_states(x.shape[0])
        x, ctx.mask, ctx.kernel = self._input_dropout(x, training)
        ctx.rdrop = None
        if training and self.recurrent_dropout:
            ctx.rdrop = self._dropout_masks((self.gates, x.shape[0], self.units), self.recurrent_dropout, x.dtype)
        ctx.x = np.ascontiguousarray(x)
        # mixed_bfloat16: every matrix product of the sequence (inputs, recurrent step, weight and
        # input gradients) on bfloat16-rounded operands with float32 sums; the gates, states and
        # bias gradients stay float32 (cynet.kernels.rnn's bf16)
        ctx.bf16 = bool(self._bf16 and ctx.x.dtype == np.float32 and ctx.kernel.dtype == np.float32
                        and self.recurrent_kernel.value.dtype == np.float32)
        ctx.states0 = states0 if states0 is not None else [None] * self._n_states()
        hs, final_states = self._run(ctx, ctx.x, ctx.states0)
        ctx.hs = hs
        if self.stateful:
            self._states = [np.array(s, dtype=self.dtype) for s in final_states]
        output = hs if self.return_sequences else hs[:, -1]
        if ctx.seen is not None:
            output = output * (ctx.seen[:, :, None] if self.return_sequences else ctx.seen[:, -1:])
        if self.return_state:
            return [output] + final_states
        return output

    def _dropout_masks(self, shape, rate, dtype):
        """Scaled keep-masks (0 or 1 / (1 - rate)) of `shape`, from the layer's seeded RNG."""
        rng = self._rng if self._rng is not None else make_rng(None)
        keep = rng.random(shape, dtype=dtype) >= rate
        return keep * dtype.type(1.0 / (1.0 - rate))

    def _input_dropout(self, x, training):
        """(inputs the kernels see, the input masks or None, the kernel they multiply).

        Keras 3 draws one input mask per sequence, shared by the gates; but with
        recurrent_dropout (its implementation 1) one mask per gate. The kernels take one input
        sequence, so k per-gate masks run as ONE product of the k masked copies of x, side by
        side (N, T, k*D), with a block-diagonal kernel (k*D, k*U) whose block j is gate j's
        columns: gate j sees only x * mask_j. _backward folds the gradients back."""
        kernel = self.kernel.value
        if not (training and self.dropout):
            return x, None, kernel
        k = self.gates if self.recurrent_dropout and self.gates > 1 else 1
        masks = self._dropout_masks((k, x.shape[0], 1, x.shape[2]), self.dropout, x.dtype)
        if k == 1:
            return x * masks[0], masks[0], kernel
        D, U = kernel.shape[0], self.units
        block = np.zeros((k * D, k * U), dtype=kernel.dtype)
        for j in range(k):
            block[j * D:(j + 1) * D, j * U:(j + 1) * U] = kernel[:, j * U:(j + 1) * U]
        return np.concatenate([x * m for m in masks], axis=-1), masks, block

    def _fold_input_dropout(self, ctx, dx, dk):
        """The gradients of x and kernel from those of _input_dropout's inputs and kernel."""
        if ctx.mask is None:
            return dx, dk
        if ctx.mask.ndim == 3:   # one mask for every gate
            return (None if dx is None else dx * ctx.mask), dk
        k, D, U = len(ctx.mask), self.kernel.shape[0], self.units
        dk = np.concatenate([dk[j * D:(j + 1) * D, j * U:(j + 1) * U] for j in range(k)], axis=1)
        if dx is not None:
            dx = sum(dx[..., j * D:(j + 1) * D] * ctx.mask[j] for j in range(k))
        return dx, dk

    def _backward(self, ctx, grad, need_input_grad):
        """`grad`: gradient of the output, or [output, *states] gradients when return_state=True.
        With initial states among the call's inputs, `need_input_grad` is a list and so is the result."""
        if self.return_state:
            grad, state_grads = grad[0], grad[1:]
        else:
            state_grads = [None] * self._n_states()
        need_dx = need_input_grad[0] if isinstance(need_input_grad, list) else need_input_grad
        if ctx.seen is not None:
            grad = grad * (ctx.seen[:, :, None] if self.return_sequences else ctx.seen[:, -1:])
        if self.return_sequences and state_grads[0] is None:
            dhs = grad   # read in place by the kernels (any strides): no zeros, no copy
        else:
            dhs = np.zeros_like(ctx.hs)
            if self.return_sequences:
                dhs += grad
            else:
                dhs[:, -1] += grad
            if state_grads[0] is not None:
                dhs[:, -1] += state_grads[0]
        dx, dk, drk, db, dstates = self._run_backward(ctx, dhs, state_grads[1:], need_dx)
        dx, dk = self._fold_input_dropout(ctx, dx, dk)
        add_grad(self.kernel, dk)
        add_grad(self.recurrent_kernel, drk)
        if self.use_bias:
            add_grad(self.bias, db)
        if dx is not None:
            if self.go_backwards:
                dx = dx[:, ::-1]
        if isinstance(need_input_grad, list):
            return [dx] + list(dstates)
        return dx

    def _bias(self):
        return self.bias.value if self.use_bias else None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias, **self._weights_config(),
                "dropout": self.dropout, "return_sequences": self.return_sequences,
                "return_state": self.return_state, "go_backwards": self.go_backwards, "stateful": self.stateful,
                "unroll": self.unroll, "recurrent_dropout": self.recurrent_dropout, "seed": self.seed,
                "zero_output_for_mask": self.zero_output_for_mask}


class SimpleRNN(_RNN):
    """Fully connected recurrence: h_t = activation(x_t W + h_{t-1} U + b).

    Args:
        units: Positive int: the dimensionality of the output space.
        activation: Activation function (name or callable); `None` means linear (`a(x) = x`).
        use_bias: Whether the layer adds a bias vector.
        kernel_initializer: Initializer of the kernel weights (name or Initializer).
        recurrent_initializer: Initializer of the recurrent kernel.
        bias_initializer: Initializer of the bias vector.
        kernel_regularizer: Regularizer applied to the kernel weights, or `None`.
        recurrent_regularizer: Regularizer of the recurrent kernel, or `None`.
        bias_regularizer: Regularizer applied to the bias vector, or `None`.
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is
            added to the loss), or `None`.
        kernel_constraint: Constraint the optimizer applies to the kernel after each update, or `None`.
        recurrent_constraint: Constraint applied to the recurrent kernel after each update, or `None`.
        bias_constraint: Constraint applied to the bias after each update, or `None`.
        dropout: Float between 0 and 1: the fraction of the input units to drop (one mask per sequence,
            training only).
        recurrent_dropout: Float between 0 and 1: the fraction of the recurrent state's units to drop
            (Keras 3's masks: one per gate, drawn once per sequence, training only; applied inside the
            kernels' time loop).
        return_sequences: Whether to return the output of every timestep (`True`) or only the last one.
        return_state: Whether to return the last state(s) in addition to the output.
        go_backwards: If `True`, process the input sequence backwards and return the reversed sequence.
        stateful: If `True`, the last state of each batch is the initial state of the next call (same batch
            size required; `reset_states()` starts again from zeros).
        unroll: Keras's graph unrolling; accepted and ignored (cynet's kernels loop over time).
        seed: Int seed of the layer's random draws, for reproducibility; `None` uses cynet's global generator.
        zero_output_for_mask: Whether a masked step outputs zeros (in returned sequences) instead of the
            previous step's output; Bidirectional sets it as Keras does.
    """

    gates = 1

    def _run(self, ctx, x, states0):
        hs = kernels.simple_rnn_forward(x, ctx.kernel, self.recurrent_kernel.value, self._bias(), states0[0],
                                        activation=self.activation, mask=ctx.time_mask,
                                        recurrent_dropout_mask=ctx.rdrop, bf16=ctx.bf16)
        return hs, [hs[:, -1]]

    def _run_backward(self, ctx, dhs, extra_state_grads, need_dx):
        dx, dk, drk, db, dh0 = kernels.simple_rnn_backward(
            dhs, ctx.x, ctx.kernel, self.recurrent_kernel.value, ctx.states0[0], ctx.hs,
            activation=self.activation, use_bias=self.use_bias, compute_dx=need_dx, mask=ctx.time_mask,
            recurrent_dropout_mask=ctx.rdrop, bf16=ctx.bf16)
        return dx, dk, drk, db, [dh0]


class LSTM(_RNN):
    """Long short-term memory, Keras gate order i, f, c, o; `unit_forget_bias=True` starts the
    forget-gate bias at one.

    Args:
        units: Positive int: the dimensionality of the output space.
        activation: Activation function (name or callable); `None` means linear (`a(x) = x`).
        recurrent_activation: Activation of the gates (default `"sigmoid"`).
        unit_forget_bias: If `True`, add 1 to the forget gate's bias at initialization (Jozefowicz et al.,
            2015).
    """

    gates = 4

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 unit_forget_bias: bool = True, **kwargs: Any) -> None:
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = _activation_name(recurrent_activation, _KERNEL_RECURRENT_ACTIVATIONS,
                                                     "recurrent_activation")
        self.unit_forget_bias = _validation.flag("unit_forget_bias", unit_forget_bias)

    def _n_states(self):
        return 2

    def _bias_init(self):
        return lstm_bias_initializer(self.bias_initializer, self.units, self.unit_forget_bias)

    def _run(self, ctx, x, states0):
        hs, cs, gates = kernels.lstm_forward(x, ctx.kernel, self.recurrent_kernel.value, self._bias(),
                                             states0[0], states0[1], activation=self.activation,
                                             recurrent_activation=self.recurrent_activation, mask=ctx.time_mask,
                                             recurrent_dropout_mask=ctx.rdrop, bf16=ctx.bf16)
        ctx.cs, ctx.gates = cs, gates
        return hs, [hs[:, -1], cs[:, -1]]

    def _run_backward(self, ctx, dhs, extra_state_grads, need_dx):
        dc_last = None if not extra_state_grads or extra_state_grads[0] is None else \
            np.asarray(extra_state_grads[0], dtype=self.dtype)
        dx, dk, drk, db, dh0, dc0 = kernels.lstm_backward(
            dhs, dc_last, ctx.x, ctx.kernel, self.recurrent_kernel.value, ctx.states0[0],
            ctx.states0[1], ctx.hs, ctx.cs, ctx.gates, activation=self.activation,
            recurrent_activation=self.recurrent_activation, use_bias=self.use_bias, compute_dx=need_dx,
            mask=ctx.time_mask, recurrent_dropout_mask=ctx.rdrop, bf16=ctx.bf16)
        return dx, dk, drk, db, [dh0, dc0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "unit_forget_bias": self.unit_forget_bias}


class GRU(_RNN):
    """Gated recurrent unit, Keras gate order z, r, h with reset_after=True (bias shape (2, 3*units)).

    Args:
        units: Positive int: the dimensionality of the output space.
        activation: Activation function (name or callable); `None` means linear (`a(x) = x`).
        recurrent_activation: Activation of the gates (default `"sigmoid"`).
        reset_after: Apply the reset gate after the recurrent matrix multiplication; only `True` (Keras 3's
            default) is supported.
    """

    gates = 3

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 reset_after: bool = True, **kwargs: Any) -> None:
        super().__init__(units, activation=activation, **kwargs)
        if not _validation.flag("reset_after", reset_after):
            raise ValueError("only reset_after=True (the Keras default) is supported")
        self.reset_after = True
        self.recurrent_activation = _activation_name(recurrent_activation, _KERNEL_RECURRENT_ACTIVATIONS,
                                                     "recurrent_activation")

    def _bias_shape(self):
        return (2, 3 * self.units)

    def _run(self, ctx, x, states0):
        hs, ctx.cache = kernels.gru_forward(x, ctx.kernel, self.recurrent_kernel.value, self._bias(),
                                            states0[0], activation=self.activation,
                                            recurrent_activation=self.recurrent_activation, mask=ctx.time_mask,
                                            recurrent_dropout_mask=ctx.rdrop, bf16=ctx.bf16)
        return hs, [hs[:, -1]]

    def _run_backward(self, ctx, dhs, extra_state_grads, need_dx):
        dx, dk, drk, db, dh0 = kernels.gru_backward(
            dhs, ctx.x, ctx.kernel, self.recurrent_kernel.value, ctx.states0[0], ctx.hs, ctx.cache,
            activation=self.activation, recurrent_activation=self.recurrent_activation, use_bias=self.use_bias,
            compute_dx=need_dx, mask=ctx.time_mask, recurrent_dropout_mask=ctx.rdrop, bf16=ctx.bf16)
        return dx, dk, drk, db, [dh0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation, "reset_after": True}
