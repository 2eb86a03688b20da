"""Batch normalization benchmarks: numpy twin vs Cython, float32, features last.

Groups: "batch_norm <shape> train fwd", "... inference fwd", "... train fwd+bwd". The moving
statistics are updated in place on every training call, which does not affect the timing.
Shapes and arguments: kernel_cases/norm.py.
"""
import numpy as np
import pytest

import cynet.kernels as K
from kernel_cases import norm as cases

SHAPES = cases.BENCH


@pytest.fixture(params=list(SHAPES), scope="module")
def case(request):
    rng = np.random.default_rng(0)
    x, gamma, beta = cases.arguments(rng, np.float32, SHAPES[request.param])
    return request.param, x, cases.normal_like(rng, x), gamma, beta


def _moving(C):
    return cases.moving_statistics(C, np.float32)


def test_batch_norm_train_fwd(benchmark, backend, case):
    name, x, _, gamma, beta = case
    mm, mv = _moving(x.shape[-1])
    benchmark.group = f"batch_norm {name} train fwd"
    benchmark.extra_info["backend"] = backend
    y, mean, inv_std = benchmark(K.batch_norm_train_forward, x, gamma, beta, mm, mv)
    assert y.shape == x.shape and y.dtype == np.float32


def test_batch_norm_inference_fwd(benchmark, backend, case):
    name, x, _, gamma, beta = case
    mm, mv = _moving(x.shape[-1])
    benchmark.group = f"batch_norm {name} inference fwd"
    benchmark.extra_info["backend"] = backend
    y = benchmark(K.batch_norm_inference_forward, x, gamma, beta, mm, mv)
    assert y.shape == x.shape and y.dtype == np.float32


def test_batch_norm_train_fwd_bwd(benchmark, backend, case):
    name, x, dy, gamma, beta = case
    mm, mv = _moving(x.shape[-1])
    benchmark.group = f"batch_norm {name} train fwd+bwd"
    benchmark.extra_info["backend"] = backend

    dx, dgamma, dbeta = benchmark(cases.forward_backward, x, dy, gamma, beta, mm, mv)
    assert dx.shape == x.shape and dx.dtype == np.float32


def test_batch_norm_train_fwd_bwd_torch(benchmark, torch, case):
    """PyTorch twin (channels_last for 4-D inputs): d_input, d_gamma and d_beta."""
    name, x, dy, gamma, beta = case
    benchmark.group = f"batch_norm {name} train fwd+bwd"
    order = (0, 3, 1, 2) if x.ndim == 4 else (0, 1)
    xt = torch.from_numpy(x.transpose(order)).requires_grad_()
    dyt = torch.from_numpy(dy.transpose(order))
    g = torch.from_numpy(gamma).requires_grad_()
    b = torch.from_numpy(beta).requires_grad_()
    mm, mv = (torch.from_numpy(a) for a in _moving(x.shape[-1]))

    def step():
        y = torch.nn.functional.batch_norm(xt, mm, mv, g, b, training=True, momentum=0.01, eps=1e-3)
        return torch.autograd.grad(y, (xt, g, b), dyt)

    dx, dg, db = benchmark(step)
    assert dx.shape == xt.shape
