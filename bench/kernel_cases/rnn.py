"""Cases of cynet.kernels.rnn: SimpleRNN, LSTM and GRU over whole sequences, forward and backward."""
import numpy as np

import cynet.kernels as K

from . import case, normal, thunks

GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}   # the kernels' column blocks of U

# The benchmarks (float32): batch, steps, inputs, units.
BENCH = dict(N=32, T=60, D=43, U=256)

# The leak check: arguments of `arguments` (scale 0.3, bias_scale 0.1).
LEAK = (dict(N=4, T=5, D=3, U=6),
        dict(N=3, T=4, D=2, U=5, bias=False, h0=True, c0=True, activation="relu",
             recurrent_activation="hard_sigmoid", recurrent_dropout=0.3))
LEAK_LARGE = (dict(N=256, T=2, D=8, U=128),)


def bias_shape(cell, U):
    return (2, 3 * U) if cell == "gru" else (GATES[cell] * U,)


def arguments(cell, rng, dtype, N, T, D, U, bias=True, h0=False, c0=False, scale=None, bias_scale=0.3,
              recurrent_dropout=None, **activations):
    """<cell>_forward's keyword arguments: normal x (N, T, D), kernels times `scale` (default
    1/sqrt(D) and 1/sqrt(U): their fan-in), bias times bias_scale (zeros for 0; None without `bias`),
    initial states h0 (and c0 for the LSTM) where asked for, else None; the `activations` as
    given (recurrent_activation: not for simple_rnn); recurrent_dropout (a rate): per-gate
    scaled keep-masks as recurrent_dropout_mask (left out when None)."""
    k = GATES[cell]
    if cell == "simple_rnn":
        activations.pop("recurrent_activation", None)
    kw = dict(x=normal(rng, (N, T, D), dtype),
              kernel=normal(rng, (D, k * U), dtype, 1 / np.sqrt(D) if scale is None else scale),
              recurrent_kernel=normal(rng, (U, k * U), dtype, 1 / np.sqrt(U) if scale is None else scale))
    kw["bias"] = None if not bias else (normal(rng, bias_shape(cell, U), dtype, bias_scale) if bias_scale
                                        else np.zeros(bias_shape(cell, U), dtype))
    kw["h0"] = normal(rng, (N, U), dtype) if h0 else None
    if cell == "lstm":
        kw["c0"] = normal(rng, (N, U), dtype) if c0 else None
    if recurrent_dropout:
        kw["recurrent_dropout_mask"] = ((rng.random((k, N, U)) >= recurrent_dropout) /
                                        (1 - recurrent_dropout)).astype(dtype)
    kw.update(activations)
    return kw


def forward(cell, kw):
    return getattr(K, f"{cell}_forward")(**kw)


def backward_arguments(cell, kw, out, dhs, dc_last=None, compute_dx=True):
    """<cell>_backward's keyword arguments for the forward call <cell>_forward(**kw) that returned
    `out`: the gradient dhs of the hidden states (and dc_last of the LSTM's last cell state)."""
    backward = {k: v for k, v in kw.items() if k != "bias"}
    backward.update(dhs=dhs, hs=out[0] if isinstance(out, tuple) else out, use_bias=kw["bias"] is not None,
                    compute_dx=compute_dx)
    if cell == "lstm":
        backward.update(cs=out[1], gates=out[2], dc_last=dc_last)
    if cell == "gru":
        backward["cache"] = out[1]
    return backward


def forward_backward(cell, kw, dhs):
    """The input and weight gradients of <cell> after its forward."""
    return getattr(K, f"{cell}_backward")(**backward_arguments(cell, kw, forward(cell, kw), dhs))


# ----------------------------------------------------------------------------- leak cases

def _rnn_case(cell):
    fwd, bwd = getattr(K, f"{cell}_forward"), getattr(K, f"{cell}_backward")

    def factory(dt, rng, large):
        def bind(N, T, D, U, **cfg):
            kw = arguments(cell, rng, dt, N, T, D, U, scale=0.3, bias_scale=0.1, **cfg)
            dc_last = normal(rng, (N, U), dt) if cfg.get("h0") else None
            backward = backward_arguments(cell, kw, fwd(**kw), normal(rng, (N, T, U), dt), dc_last)
            return [lambda: fwd(**kw), lambda: bwd(**backward)]

        return thunks(bind, LEAK_LARGE if large else LEAK)
    return factory


for _cell in GATES:
    case(f"{_cell}_forward", f"{_cell}_backward")(_rnn_case(_cell))
