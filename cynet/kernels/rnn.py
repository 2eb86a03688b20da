"""Recurrent kernels: SimpleRNN, LSTM and GRU over whole sequences, forward and
backpropagation through time, with Keras 3 semantics and weight layouts.

Layouts (Keras): x is batch-major (N, T, D). kernel (D, k*U) and recurrent_kernel (U, k*U) hold
the gates as column blocks: SimpleRNN k=1; LSTM k=4 in the order i|f|c|o; GRU k=3 in the order
z|r|h. bias: SimpleRNN (U,), LSTM (4U,), GRU (2, 3U) with row 0 the input bias and row 1 the
recurrent bias (reset_after=True). bias=None means use_bias=False.

The forward functions return every hidden state hs (N, T, U), so a layer can take hs[:, -1]
(return_sequences=False) or all of them; go_backwards is the layer's business (reverse x).
The backward functions take dhs (N, T, U), the gradient w.r.t. every hidden state (a layer that
returns only the last state puts its gradient in dhs[:, -1] and zeros elsewhere).

Memory layout. The kernels keep sequences feature-major, in (F, T, N) C-contiguous buffers
(one timestep = F rows of N samples; that is what makes the per-step matmuls fast, see
cynet/_kernels/rnn.pyx), except what only the step kernels read back (the LSTM's cs and
gates, the GRU's cache): those are time-major, (T, F, N). Every (N, T, F) array these
functions RETURN (hs, cs, gates, cache, dx) is a view of such a buffer: `a.transpose(2, 1, 0)`
(time-major: `a.transpose(1, 2, 0)`) is C-contiguous, `a` itself is not
(np.ascontiguousarray(a) gives a C-ordered copy). Every (N, T, F) array they ACCEPT may have
any layout: a view in the kernels' layout (for instance the hs of another recurrent layer, the
dx of the next one, or cs and gates as forward returned them) is used without a copy,
anything else is converted. dhs is read in place
with whatever strides it has. State arrays (h0, c0, dc_last in; dh0, dc0 out) are (N, U);
the returned ones are transposed views of (U, N) buffers.

activation and recurrent_activation: "tanh", "sigmoid", "relu", "hard_sigmoid" (Keras 3:
clip(x / 6 + 0.5, 0, 1)) or "linear" (None also means linear). Defaults as in Keras: tanh and
sigmoid.

Every function validates its arguments here (ValueError/TypeError naming the argument),
converts them to one float dtype (float64 if any is float64, else float32), C-contiguous, and
dispatches to the compiled kernels or their NumPy twin (cynet.kernels.use_backend).

recurrent_dropout_mask (every function; None: no recurrent dropout): (k, N, U) reals, one
scaled keep-mask per gate block of recurrent_kernel (k = 1, 4, 3 for SimpleRNN, LSTM, GRU,
blocks in the gate order above), typically 0 or 1 / (1 - rate). At every step, gate block j's
recurrent product reads h_{t-1} * mask[j] instead of h_{t-1} (Keras 3's recurrent dropout: one
mask per gate, drawn once per call); pass the same array to the backward function, whose
gradients then flow through the masks.
"""
from typing import Any

import numpy as np

from .. import _validation
from .._kernels.rnn_numpy import ACTIVATIONS
from ._backend import impl
from .._typing import ArrayLike

__all__ = [
    "simple_rnn_forward",
    "simple_rnn_backward",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
]

# Keras activation names -> the kernels' codes: ACTIVATIONS, defined once, in the twin.


def _activation(name, value):
    if value is None:
        value = "linear"
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise ValueError(f"{name} must be one of {sorted(ACTIVATIONS)}; received {name}={value!r}")
    return ACTIVATIONS[value]


def _use_bias(value):
    return _validation.flag("use_bias", value)


def _dtype(**arrays):
    """Common float dtype of the arguments (TypeError naming a non-real one)."""
    return _validation.float_dtype(**arrays)


def _sizes(x, kernel, recurrent_kernel, k, cell, dtype):
    """(N, T, D, U) after checking x (N, T, D), kernel (D, kU), recurrent_kernel (U, kU), and that
    the sequences they give fit in memory."""
    _validation.check_ndim("x", x, 3)
    _validation.check_ndim("kernel", kernel, 2)
    _validation.check_ndim("recurrent_kernel", recurrent_kernel, 2)
    N, T, D = x.shape
    if N < 1 or T < 1 or D < 1:
        raise ValueError(f"x must have shape (N, T, D) with at least one sample, timestep and feature; "
                         f"received shape {x.shape}")
    U = recurrent_kernel.shape[0]
    blocks = "" if k == 1 else f"{k} * "
    if U < 1 or recurrent_kernel.shape[1] != k * U:
        raise ValueError(f"recurrent_kernel must have shape (units, {blocks}units) for {cell} with units >= 1; "
                         f"received shape {recurrent_kernel.shape}")
    if kernel.shape != (D, k * U):
        raise ValueError(f"kernel must have shape (D, {blocks}units) = {(D, k * U)} to match x (D={D}) and "
                         f"recurrent_kernel (units={U}); received shape {kernel.shape}")
    itemsize = np.dtype(dtype).itemsize
    _validation.check_size("x", (N, T, D), itemsize, "x converted to a feature-major array")
    _validation.check_size("x and recurrent_kernel", (N, T, max(k, 4) * U), itemsize,
                           f"the per-step outputs (N, T, {max(k, 4)} * units) they give")
    return N, T, D, U


def _bf16_code(value, dtype):
    """The kernels' `bf16` argument: -1 for float products, else the code of the bfloat16 path
    that runs (cynet.kernels.bf16: AMX-BF16, AVX512_BF16 or the emulation)."""
    if not _validation.flag("bf16", value):
        return -1
    if np.dtype(dtype) != np.float32:
        raise ValueError(f"bf16=True needs float32 arrays (bfloat16 products with float32 sums); "
                         f"received {np.dtype(dtype).name}")
    from . import bf16 as _bf16
    return _bf16._CODES[_bf16._path()]


def _array(name, a):
    return _validation.as_array(name, a)


def _feature_major(a, dtype):
    """(N, T, F) array of any layout -> (F, T, N) C-contiguous of `dtype` (free for a
    feature-major view of the right dtype)."""
    return np.ascontiguousarray(a.transpose(2, 1, 0), dtype=dtype)


def _seq(name, a, shape, dtype):
    """Check an (N, T, F) sequence argument and return it in the kernels' layout: feature-major
    (F, T, N), or time-major (T, F, N) for the buffers only the step kernels read."""
    _validation.check_ndim(name, a, 3)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, i.e. (N, T, {_FEATURES[name]}) for x of shape (N, T, D) "
                         f"and recurrent_kernel of shape (units, k * units); received shape {a.shape}")
    if name in _TIME_MAJOR:
        return np.ascontiguousarray(a.transpose(1, 2, 0), dtype=dtype)
    return _feature_major(a, dtype)


_FEATURES = {"hs": "units", "cs": "units", "gates": "4 * units", "cache": "4 * units", "dhs": "units"}
_TIME_MAJOR = {"cs", "gates", "cache"}


def _state(name, a, N, U, dtype):
    """An (N, U) state as a (U, N) C-contiguous array; None means zeros."""
    if a is None:
        return np.zeros((U, N), dtype=dtype)
    a = _array(name, a)
    _validation.check_ndim(name, a, 2)
    if a.shape != (N, U):
        raise ValueError(f"{name} must have shape {(N, U)}, i.e. (N, units) with N from x and units from "
                         f"recurrent_kernel; received shape {a.shape}")
    return np.ascontiguousarray(a.T, dtype=dtype)


def _bias(bias, shape, dtype):
    if bias is None:
        return np.zeros(shape, dtype=dtype)
    bias = _array("bias", bias)
    if bias.shape != shape:
        raise ValueError(f"bias must have shape {shape} (from recurrent_kernel's units); received shape {bias.shape}")
    return _validation.as_float("bias", bias, dtype)


def _weights(kernel, recurrent_kernel, dtype):
    return (_validation.as_float("kernel", kernel, dtype),
            _validation.as_float("recurrent_kernel", recurrent_kernel, dtype))


def _dhs(dhs, N, T, U, dtype):
    """dhs (N, T, U) of the right dtype, in whatever layout it has (the kernels read it in place)."""
    _validation.check_ndim("dhs", dhs, 3)
    if dhs.shape != (N, T, U):
        raise ValueError(f"dhs must have shape {(N, T, U)}, i.e. (N, T, units) for x of shape (N, T, D) and "
                         f"recurrent_kernel of shape (units, k * units); received shape {dhs.shape}")
    a = dhs.astype(dtype, copy=False)
    if not a.flags.aligned or any(s % a.itemsize for s in a.strides):
        a = np.ascontiguousarray(a)
    return a


def _mask(mask, N, T):
    """mask (N, T), True (nonzero) where a step counts, -> the kernels' (T, N) uint8, or None
    when there is none or every step counts."""
    if mask is None:
        return None
    mask = _array("mask", mask)
    if mask.dtype.kind not in "biu":
        raise TypeError(f"mask must be a boolean (or integer) array of shape (N, T); received dtype {mask.dtype}")
    if mask.shape != (N, T):
        raise ValueError(f"mask must have shape {(N, T)}, i.e. (N, T) for x of shape (N, T, D); "
                         f"received shape {mask.shape}")
    keep = np.ascontiguousarray(mask.T != 0, dtype=np.uint8)
    return None if keep.all() else keep


def _rdrop(rdrop, k, N, U, dtype):
    """recurrent_dropout_mask (k, N, U), one scaled keep-mask per gate block (finite reals), ->
    the kernels' (k, U, N) C-contiguous array of `dtype`, or None."""
    if rdrop is None:
        return None
    rdrop = _array("recurrent_dropout_mask", rdrop)
    if rdrop.dtype.kind not in "biuf":
        raise TypeError(f"recurrent_dropout_mask must be a real array of shape {(k, N, U)}; "
                        f"received dtype {rdrop.dtype}")
    if rdrop.shape != (k, N, U):
        raise ValueError(f"recurrent_dropout_mask must have shape {(k, N, U)}, i.e. (gates, N, units): one mask "
                         f"per gate block of recurrent_kernel for x of shape (N, T, D); received shape {rdrop.shape}")
    out = np.ascontiguousarray(rdrop.transpose(0, 2, 1), dtype=dtype)
    if not np.isfinite(out).all():
        raise ValueError("recurrent_dropout_mask must hold finite values")
    return out


def _seq_out(a):
    """(F, T, N) kernel buffer -> the (N, T, F) view the public functions return (None stays None)."""
    return None if a is None else a.transpose(2, 1, 0)


def _time_major_out(a):
    """(T, F, N) kernel buffer -> the (N, T, F) view the public functions return."""
    return a.transpose(2, 0, 1)


# ---------------------------------------------------------------------------------------------
# SimpleRNN

def simple_rnn_forward(x: ArrayLike, kernel: ArrayLike, recurrent_kernel: ArrayLike, bias: ArrayLike | None = None,
                       h0: ArrayLike | None = None, activation: str = "tanh", mask: ArrayLike | None = None,
                       recurrent_dropout_mask: ArrayLike | None = None, bf16: bool = False) -> Any:
    """SimpleRNN over a whole sequence: h_t = act(x_t W + h_{t-1} U + b).

    Any real dtype; float64 if any input is float64, else float32.

    Args:
        x: (N, T, D).
        kernel: (D, U).
        recurrent_kernel: (U, U).
        bias: (U,) or None.
        h0: (N, U) or None (zeros).
        activation: Activation name ("tanh", "relu", "sigmoid", "linear", ...).
        mask: (N, T) booleans or None: a step where it is False is skipped, the state carried over
            (Keras).
        recurrent_dropout_mask: (k, N, U) per-gate keep-masks or None (see the module docstring).
        bf16: Run the matrix products in bfloat16 (the mixed_bfloat16 policy's products: every
            operand rounded to bfloat16, float32 sums; the gates, states and sums stay float32);
            float32 inputs only. Pass the forward's value to the backward.

    Returns:
        hs: (N, T, U), every hidden state (a view of a feature-major buffer, see the module
        docstring).
    """
    act = _activation("activation", activation)
    x, kernel, recurrent_kernel = _array("x", x), _array("kernel", kernel), _array("recurrent_kernel", recurrent_kernel)
    dtype = _dtype(x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h0=h0)
    N, T, D, U = _sizes(x, kernel, recurrent_kernel, 1, "SimpleRNN", dtype)
    kernel, recurrent_kernel = _weights(kernel, recurrent_kernel, dtype)
    hs = impl("rnn").simple_rnn_forward(_feature_major(x, dtype), kernel, recurrent_kernel,
                                        _bias(bias, (U,), dtype), _state("h0", h0, N, U, dtype), act,
                                        _mask(mask, N, T),
        _rdrop(recurrent_dropout_mask, 1, N, U, dtype), bf16=_bf16_code(bf16, dtype))
    return _seq_out(hs)


def simple_rnn_backward(dhs: ArrayLike, x: ArrayLike, kernel: ArrayLike, recurrent_kernel: ArrayLike,
                        h0: ArrayLike | None, hs: ArrayLike, activation: str = "tanh", use_bias: bool = True,
                        compute_dx: bool = True, mask: ArrayLike | None = None,
                        recurrent_dropout_mask: ArrayLike | None = None, bf16: bool = False) -> Any:
    """Backpropagation through time for simple_rnn_forward.

    Args:
        dhs: (N, T, U), gradient w.r.t. every hidden state.
        x: As given to the forward.
        kernel: As given to the forward.
        recurrent_kernel: As given to the forward.
        h0: As given to the forward (or None).
        hs: (N, T, U) as returned by the forward.
        activation: As given to the forward.
        use_bias: Whether the forward had a bias (dbias is None otherwise).
        compute_dx: Whether to compute dx (a model's first layer needs no input gradient): with False,
            dx is None and its matmul is skipped.
        mask: As given to the forward.
        recurrent_dropout_mask: As given to the forward.
        bf16: Run the matrix products in bfloat16 (the mixed_bfloat16 policy's products: every
            operand rounded to bfloat16, float32 sums; the gates, states and sums stay float32);
            float32 inputs only. Pass the forward's value to the backward.

    Returns:
        (dx (N, T, D), dkernel (D, U), drecurrent_kernel (U, U), dbias (U,) or None when
        use_bias=False, dh0 (N, U)), all new arrays (dx and dh0 are views of feature-major buffers).
    """
    act = _activation("activation", activation)
    use_bias = _use_bias(use_bias)
    compute_dx = _validation.flag("compute_dx", compute_dx)
    dhs, x, kernel, recurrent_kernel, hs = (_array(n, a) for n, a in (
        ("dhs", dhs), ("x", x), ("kernel", kernel), ("recurrent_kernel", recurrent_kernel), ("hs", hs)))
    dtype = _dtype(dhs=dhs, x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, h0=h0, hs=hs)
    N, T, D, U = _sizes(x, kernel, recurrent_kernel, 1, "SimpleRNN", dtype)
    kernel, recurrent_kernel = _weights(kernel, recurrent_kernel, dtype)
    h0 = _state("h0", h0, N, U, dtype)
    hs = _seq("hs", hs, (N, T, U), dtype)
    dhs = _dhs(dhs, N, T, U, dtype)
    dx, dk, drk, db, dh0 = impl("rnn").simple_rnn_backward(dhs, _feature_major(x, dtype), kernel,
                                                          recurrent_kernel, h0, hs, act, use_bias, compute_dx,
                                                          _mask(mask, N, T),
        _rdrop(recurrent_dropout_mask, 1, N, U, dtype), bf16=_bf16_code(bf16, dtype))
    return _seq_out(dx), dk, drk, db, dh0.T


# ---------------------------------------------------------------------------------------------
# LSTM

def lstm_forward(x: ArrayLike, kernel: ArrayLike, recurrent_kernel: ArrayLike, bias: ArrayLike | None = None,
                 h0: ArrayLike | None = None, c0: ArrayLike | None = None, activation: str = "tanh",
                 recurrent_activation: str = "sigmoid", mask: ArrayLike | None = None,
                 recurrent_dropout_mask: ArrayLike | None = None, bf16: bool = False) -> Any:
    """LSTM over a whole sequence (Keras gate order i|f|c|o).

    z = x_t W + h_{t-1} U + b; i, f, o = ract(z_i), ract(z_f), ract(z_o); g = act(z_c);
    c_t = f * c_{t-1} + i * g; h_t = o * act(c_t).

    Args:
        x: (N, T, D).
        kernel: (D, 4U).
        recurrent_kernel: (U, 4U).
        bias: (4U,) or None.
        h0: (N, U) or None (zeros).
        c0: (N, U) or None (zeros).
        activation: Activation name of the cell input and output (act, "tanh").
        recurrent_activation: Activation name of the gates (ract, "sigmoid").
        mask: (N, T) booleans or None: a step where it is False is skipped, the state carried over
            (Keras).
        recurrent_dropout_mask: (k, N, U) per-gate keep-masks or None (see the module docstring).
        bf16: Run the matrix products in bfloat16 (the mixed_bfloat16 policy's products: every
            operand rounded to bfloat16, float32 sums; the gates, states and sums stay float32);
            float32 inputs only. Pass the forward's value to the backward.

    Returns:
        (hs, cs, gates), new arrays (views of the kernels' buffers): hs (N, T, U) hidden states,
        cs (N, T, U) cell states, gates (N, T, 4U) the activated gates i|f|g|o of every step (what
        lstm_backward needs).
    """
    act = _activation("activation", activation)
    ract = _activation("recurrent_activation", recurrent_activation)
    x, kernel, recurrent_kernel = _array("x", x), _array("kernel", kernel), _array("recurrent_kernel", recurrent_kernel)
    dtype = _dtype(x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h0=h0, c0=c0)
    N, T, D, U = _sizes(x, kernel, recurrent_kernel, 4, "LSTM", dtype)
    kernel, recurrent_kernel = _weights(kernel, recurrent_kernel, dtype)
    hs, cs, gates = impl("rnn").lstm_forward(_feature_major(x, dtype), kernel, recurrent_kernel,
                                             _bias(bias, (4 * U,), dtype), _state("h0", h0, N, U, dtype),
                                             _state("c0", c0, N, U, dtype), act, ract, _mask(mask, N, T),
        _rdrop(recurrent_dropout_mask, 4, N, U, dtype), bf16=_bf16_code(bf16, dtype))
    return _seq_out(hs), _time_major_out(cs), _time_major_out(gates)


def lstm_backward(dhs: ArrayLike, dc_last: ArrayLike | None, x: ArrayLike, kernel: ArrayLike,
                  recurrent_kernel: ArrayLike, h0: ArrayLike | None, c0: ArrayLike | None, hs: ArrayLike,
                  cs: ArrayLike, gates: ArrayLike, activation: str = "tanh", recurrent_activation: str = "sigmoid",
                  use_bias: bool = True, compute_dx: bool = True, mask: ArrayLike | None = None,
                  recurrent_dropout_mask: ArrayLike | None = None, bf16: bool = False) -> Any:
    """Backpropagation through time for lstm_forward.

    Args:
        dhs: (N, T, U), gradient w.r.t. every hidden state (the final-state gradient goes in
            dhs[:, -1]).
        dc_last: (N, U) or None, gradient w.r.t. the final cell state.
        x: As given to the forward.
        kernel: As given to the forward.
        recurrent_kernel: As given to the forward.
        h0: As given to the forward (or None).
        c0: As given to the forward (or None).
        hs: As returned by the forward.
        cs: As returned by the forward.
        gates: As returned by the forward.
        activation: As given to the forward.
        recurrent_activation: As given to the forward.
        use_bias: Whether the forward had a bias (dbias is None otherwise).
        compute_dx: Whether to compute dx (a model's first layer needs no input gradient): with False,
            dx is None and its matmul is skipped.
        mask: As given to the forward.
        recurrent_dropout_mask: As given to the forward.
        bf16: Run the matrix products in bfloat16 (the mixed_bfloat16 policy's products: every
            operand rounded to bfloat16, float32 sums; the gates, states and sums stay float32);
            float32 inputs only. Pass the forward's value to the backward.

    Returns:
        (dx (N, T, D), dkernel (D, 4U), drecurrent_kernel (U, 4U), dbias (4U,) or None when
        use_bias=False, dh0 (N, U), dc0 (N, U)), all new arrays (dx, dh0, dc0 are views of
        feature-major buffers).
    """
    act = _activation("activation", activation)
    ract = _activation("recurrent_activation", recurrent_activation)
    use_bias = _use_bias(use_bias)
    compute_dx = _validation.flag("compute_dx", compute_dx)
    dhs, x, kernel, recurrent_kernel, hs, cs, gates = (_array(n, a) for n, a in (
        ("dhs", dhs), ("x", x), ("kernel", kernel), ("recurrent_kernel", recurrent_kernel), ("hs", hs),
        ("cs", cs), ("gates", gates)))
    dtype = _dtype(dhs=dhs, dc_last=dc_last, x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, h0=h0, c0=c0,
                   hs=hs, cs=cs, gates=gates)
    N, T, D, U = _sizes(x, kernel, recurrent_kernel, 4, "LSTM", dtype)
    kernel, recurrent_kernel = _weights(kernel, recurrent_kernel, dtype)
    h0 = _state("h0", h0, N, U, dtype)
    c0 = _state("c0", c0, N, U, dtype)
    dc_last = _state("dc_last", dc_last, N, U, dtype)
    hs = _seq("hs", hs, (N, T, U), dtype)
    cs = _seq("cs", cs, (N, T, U), dtype)
    gates = _seq("gates", gates, (N, T, 4 * U), dtype)
    dhs = _dhs(dhs, N, T, U, dtype)
    dx, dk, drk, db, dh0, dc0 = impl("rnn").lstm_backward(dhs, dc_last, _feature_major(x, dtype), kernel,
                                                          recurrent_kernel, h0, c0, hs, cs, gates, act, ract,
                                                          use_bias, compute_dx, _mask(mask, N, T),
        _rdrop(recurrent_dropout_mask, 4, N, U, dtype), bf16=_bf16_code(bf16, dtype))
    return _seq_out(dx), dk, drk, db, dh0.T, dc0.T


# ---------------------------------------------------------------------------------------------
# GRU

def gru_forward(x: ArrayLike, kernel: ArrayLike, recurrent_kernel: ArrayLike, bias: ArrayLike | None = None,
                h0: ArrayLike | None = None, activation: str = "tanh", recurrent_activation: str = "sigmoid",
                mask: ArrayLike | None = None, recurrent_dropout_mask: ArrayLike | None = None,
                bf16: bool = False) -> Any:
    """GRU over a whole sequence (Keras gate order z|r|h, reset_after=True).

    xz, xr, xh = x_t W + b_in; rz, rr, rh = h_{t-1} U + b_rec; z = ract(xz + rz);
    r = ract(xr + rr); hh = act(xh + r * rh); h_t = z * h_{t-1} + (1 - z) * hh.

    Args:
        x: (N, T, D).
        kernel: (D, 3U).
        recurrent_kernel: (U, 3U).
        bias: (2, 3U) or None (row 0 input bias b_in, row 1 recurrent bias b_rec).
        h0: (N, U) or None (zeros).
        activation: Activation name of the candidate state (act, "tanh").
        recurrent_activation: Activation name of the gates (ract, "sigmoid").
        mask: (N, T) booleans or None: a step where it is False is skipped, the state carried over
            (Keras).
        recurrent_dropout_mask: (k, N, U) per-gate keep-masks or None (see the module docstring).
        bf16: Run the matrix products in bfloat16 (the mixed_bfloat16 policy's products: every
            operand rounded to bfloat16, float32 sums; the gates, states and sums stay float32);
            float32 inputs only. Pass the forward's value to the backward.

    Returns:
        (hs, cache), new arrays (views of the kernels' buffers): hs (N, T, U) hidden states; cache
        (N, T, 4U) holding z|r|hh|rh of every step (rh = h_{t-1} U_h + b_rec_h), what gru_backward
        needs.
    """
    act = _activation("activation", activation)
    ract = _activation("recurrent_activation", recurrent_activation)
    x, kernel, recurrent_kernel = _array("x", x), _array("kernel", kernel), _array("recurrent_kernel", recurrent_kernel)
    dtype = _dtype(x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h0=h0)
    N, T, D, U = _sizes(x, kernel, recurrent_kernel, 3, "GRU", dtype)
    kernel, recurrent_kernel = _weights(kernel, recurrent_kernel, dtype)
    hs, cache = impl("rnn").gru_forward(_feature_major(x, dtype), kernel, recurrent_kernel,
                                        _bias(bias, (2, 3 * U), dtype), _state("h0", h0, N, U, dtype), act, ract,
                                        _mask(mask, N, T),
        _rdrop(recurrent_dropout_mask, 3, N, U, dtype), bf16=_bf16_code(bf16, dtype))
    return _seq_out(hs), _time_major_out(cache)


def gru_backward(dhs: ArrayLike, x: ArrayLike, kernel: ArrayLike, recurrent_kernel: ArrayLike, h0: ArrayLike | None,
                 hs: ArrayLike, cache: ArrayLike, activation: str = "tanh", recurrent_activation: str = "sigmoid",
                 use_bias: bool = True, compute_dx: bool = True, mask: ArrayLike | None = None,
                 recurrent_dropout_mask: ArrayLike | None = None, bf16: bool = False) -> Any:
    """Backpropagation through time for gru_forward.

    Args:
        dhs: (N, T, U), gradient w.r.t. every hidden state.
        x: As given to the forward.
        kernel: As given to the forward.
        recurrent_kernel: As given to the forward.
        h0: As given to the forward (or None).
        hs: As returned by the forward.
        cache: As returned by the forward.
        activation: As given to the forward.
        recurrent_activation: As given to the forward.
        use_bias: Whether the forward had a bias (dbias is None otherwise).
        compute_dx: Whether to compute dx (a model's first layer needs no input gradient): with False,
            dx is None and its matmul is skipped.
        mask: As given to the forward.
        recurrent_dropout_mask: As given to the forward.
        bf16: Run the matrix products in bfloat16 (the mixed_bfloat16 policy's products: every
            operand rounded to bfloat16, float32 sums; the gates, states and sums stay float32);
            float32 inputs only. Pass the forward's value to the backward.

    Returns:
        (dx (N, T, D), dkernel (D, 3U), drecurrent_kernel (U, 3U), dbias (2, 3U) or None when
        use_bias=False, dh0 (N, U)), all new arrays (dx and dh0 are views of feature-major buffers).
    """
    act = _activation("activation", activation)
    ract = _activation("recurrent_activation", recurrent_activation)
    use_bias = _use_bias(use_bias)
    compute_dx = _validation.flag("compute_dx", compute_dx)
    dhs, x, kernel, recurrent_kernel, hs, cache = (_array(n, a) for n, a in (
        ("dhs", dhs), ("x", x), ("kernel", kernel), ("recurrent_kernel", recurrent_kernel), ("hs", hs),
        ("cache", cache)))
    dtype = _dtype(dhs=dhs, x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, h0=h0, hs=hs, cache=cache)
    N, T, D, U = _sizes(x, kernel, recurrent_kernel, 3, "GRU", dtype)
    kernel, recurrent_kernel = _weights(kernel, recurrent_kernel, dtype)
    h0 = _state("h0", h0, N, U, dtype)
    hs = _seq("hs", hs, (N, T, U), dtype)
    cache = _seq("cache", cache, (N, T, 4 * U), dtype)
    dhs = _dhs(dhs, N, T, U, dtype)
    dx, dk, drk, db, dh0 = impl("rnn").gru_backward(dhs, _feature_major(x, dtype), kernel, recurrent_kernel, h0,
                                                   hs, cache, act, ract, use_bias, compute_dx, _mask(mask, N, T),
        _rdrop(recurrent_dropout_mask, 3, N, U, dtype), bf16=_bf16_code(bf16, dtype))
    return _seq_out(dx), dk, drk, db, dh0.T
