"""Benchmarks of the recurrent kernels: SimpleRNN, LSTM and GRU over a whole sequence, float32,
batch 32, 60 steps, 43 inputs, 256 units; forward alone and forward + backward, each backend in
the same group (speedup = median(numpy) / median(cython)).

    pytest bench/test_rnn.py --benchmark-only
"""
import numpy as np
import pytest

import cynet.kernels as K

N, T, D, U = 32, 60, 43, 256
SHAPE = f"(N={N}, T={T}, D={D}, U={U})"
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}


def _case(cell):
    rng = np.random.default_rng(0)
    k = GATES[cell]
    x = rng.standard_normal((N, T, D), dtype=np.float32)
    kernel = (rng.standard_normal((D, k * U), dtype=np.float32) / np.sqrt(D)).astype(np.float32)
    rk = (rng.standard_normal((U, k * U), dtype=np.float32) / np.sqrt(U)).astype(np.float32)
    bias = np.zeros((2, 3 * U) if cell == "gru" else (k * U,), dtype=np.float32)
    dhs = rng.standard_normal((N, T, U), dtype=np.float32)
    return x, kernel, rk, bias, dhs


def _fwd(cell, x, kernel, rk, bias):
    if cell == "simple_rnn":
        return (K.simple_rnn_forward(x, kernel, rk, bias),)
    if cell == "lstm":
        return K.lstm_forward(x, kernel, rk, bias)
    return K.gru_forward(x, kernel, rk, bias)


def _fwd_bwd(cell, x, kernel, rk, bias, dhs):
    out = _fwd(cell, x, kernel, rk, bias)
    if cell == "simple_rnn":
        return K.simple_rnn_backward(dhs, x, kernel, rk, None, out[0])
    if cell == "lstm":
        return K.lstm_backward(dhs, None, x, kernel, rk, None, None, *out)
    return K.gru_backward(dhs, x, kernel, rk, None, *out)


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_rnn_forward(benchmark, backend, cell):
    x, kernel, rk, bias, _ = _case(cell)
    benchmark.group = f"{cell} {SHAPE} fwd"
    benchmark.extra_info["backend"] = backend
    out = benchmark(_fwd, cell, x, kernel, rk, bias)
    assert out[0].shape == (N, T, U) and out[0].dtype == np.float32


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_rnn_forward_backward(benchmark, backend, cell):
    x, kernel, rk, bias, dhs = _case(cell)
    benchmark.group = f"{cell} {SHAPE} fwd+bwd"
    benchmark.extra_info["backend"] = backend
    grads = benchmark(_fwd_bwd, cell, x, kernel, rk, bias, dhs)
    assert grads[0].shape == (N, T, D) and grads[0].dtype == np.float32


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_rnn_forward_backward_torch(benchmark, torch, cell):
    """PyTorch twin: whole sequence, gradients for the inputs and every weight."""
    x, *_, dhs = _case(cell)
    benchmark.group = f"{cell} {SHAPE} fwd+bwd"
    torch.manual_seed(0)
    layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "simple_rnn": torch.nn.RNN}[cell](D, U, batch_first=True)
    xt = torch.from_numpy(x).requires_grad_()
    dyt = torch.from_numpy(dhs)
    params = tuple(layer.parameters())

    def step():
        y, _ = layer(xt)
        return torch.autograd.grad(y, (xt, *params), dyt)

    grads = benchmark(step)
    assert tuple(grads[0].shape) == (N, T, D)
