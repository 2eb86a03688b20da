"""Benchmarks of the recurrent kernels: SimpleRNN, LSTM and GRU over a whole sequence, float32,
batch 32, 60 steps, 43 inputs, 256 units; forward alone and forward + backward, each backend in
the same group (speedup = median(numpy) / median(cython)).

    pytest bench/test_rnn.py --benchmark-only

Shapes and arguments: kernel_cases/rnn.py.
"""
import numpy as np
import pytest

from kernel_cases import rnn as cases

N, T, D, U = (cases.BENCH[k] for k in "NTDU")
SHAPE = f"(N={N}, T={T}, D={D}, U={U})"


def _case(cell):
    """<cell>_forward's keyword arguments (kernels scaled by their fan-in, zero bias) and dhs."""
    rng = np.random.default_rng(0)
    kw = cases.arguments(cell, rng, np.float32, **cases.BENCH, bias_scale=0.0)
    return kw, cases.normal(rng, (N, T, U), np.float32)


def _fwd(cell, kw):
    out = cases.forward(cell, kw)
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_rnn_fwd(benchmark, backend, cell):
    kw, _ = _case(cell)
    benchmark.group = f"{cell} {SHAPE} fwd"
    benchmark.extra_info["backend"] = backend
    out = benchmark(_fwd, cell, kw)
    assert out[0].shape == (N, T, U) and out[0].dtype == np.float32


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_rnn_fwd_bwd(benchmark, backend, cell):
    kw, dhs = _case(cell)
    benchmark.group = f"{cell} {SHAPE} fwd+bwd"
    benchmark.extra_info["backend"] = backend
    grads = benchmark(cases.forward_backward, cell, kw, dhs)
    assert grads[0].shape == (N, T, D) and grads[0].dtype == np.float32


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_rnn_fwd_bwd_torch(benchmark, torch, cell):
    """PyTorch twin: whole sequence, gradients for the inputs and every weight."""
    kw, dhs = _case(cell)
    x = kw["x"]
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


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_rnn_fwd_bwd_masked(benchmark, backend, cell):
    """Padded sequences: each sample's mask is False over a random tail of up to a third of the
    steps (what Embedding(mask_zero=True) gives for right-padded batches)."""
    kw, dhs = _case(cell)
    rng = np.random.default_rng(1)
    lengths = rng.integers(2 * T // 3, T + 1, N)
    kw = dict(kw, mask=np.arange(T)[None, :] < lengths[:, None])
    benchmark.group = f"{cell} {SHAPE} fwd+bwd masked"
    benchmark.extra_info["backend"] = backend
    grads = benchmark(cases.forward_backward, cell, kw, dhs)
    assert grads[0].shape == (N, T, D) and grads[0].dtype == np.float32


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_rnn_fwd_bwd_recurrent_dropout(benchmark, backend, cell):
    """Recurrent dropout (Keras 3: one mask per gate on h_{t-1}, rate 0.2): per step, the
    product runs as one (U, U) block per gate on the masked state. PyTorch's RNN modules have
    no recurrent dropout, hence no twin; compare with the plain fwd+bwd group."""
    kw, dhs = _case(cell)
    rng = np.random.default_rng(2)
    k = cases.GATES[cell]
    kw = dict(kw, recurrent_dropout_mask=((rng.random((k, N, U)) >= 0.2) / 0.8).astype(np.float32))
    benchmark.group = f"{cell} {SHAPE} fwd+bwd recurrent dropout"
    benchmark.extra_info["backend"] = backend
    grads = benchmark(cases.forward_backward, cell, kw, dhs)
    assert grads[0].shape == (N, T, D) and grads[0].dtype == np.float32
