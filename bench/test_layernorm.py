"""Layer and group normalization benchmarks: NumPy twin vs Cython vs PyTorch, float32, fwd+bwd.

Groups: "layernorm <shape> fwd+bwd" (forward then backward: dx, dgamma, dbeta) and
"layernorm <shape> fwd" for the shapes of kernel_cases/layernorm.py (Transformer activations,
batch 32 x sequence 128 x width 512, normalised over the 512; a (4096, 256) batch), with
PyTorch's torch.nn.functional.layer_norm (autograd for the backward) as the reference;
"group_norm <shape> fwd+bwd" for a 32-group feature map (PyTorch's group_norm on the same
data, channels_last memory format).
"""
import numpy as np
import pytest

import cynet.kernels as K
from kernel_cases import layernorm as cases

SHAPES = cases.BENCH
GROUP = cases.BENCH_GROUP


@pytest.fixture(params=list(SHAPES), scope="module")
def case(request):
    rng = np.random.default_rng(0)
    x, gamma, beta = cases.arguments(rng, np.float32, SHAPES[request.param])
    return request.param, x, cases.normal_like(rng, x), gamma, beta


@pytest.fixture(params=list(GROUP), scope="module")
def group_case(request):
    rng = np.random.default_rng(1)
    shape, groups = GROUP[request.param]
    x, gamma, beta = cases.arguments(rng, np.float32, shape)
    return request.param, x, cases.normal_like(rng, x), groups, gamma, beta


def test_layer_norm_fwd_bwd(benchmark, backend, case):
    name, x, dy, gamma, beta = case
    benchmark.group = f"layernorm {name} fwd+bwd"
    benchmark.extra_info["backend"] = backend
    dx, dgamma, dbeta = benchmark(cases.forward_backward, x, dy, gamma, beta)
    assert dx.shape == x.shape and dx.dtype == np.float32


def test_layer_norm_fwd_bwd_torch(benchmark, torch, case):
    name, x, dy, gamma, beta = case
    benchmark.group = f"layernorm {name} fwd+bwd"
    xt = torch.from_numpy(x).requires_grad_()
    dyt = torch.from_numpy(dy)
    g = torch.from_numpy(gamma).requires_grad_()
    b = torch.from_numpy(beta).requires_grad_()
    C = x.shape[-1]

    def step():
        y = torch.nn.functional.layer_norm(xt, (C,), g, b, eps=1e-3)
        return torch.autograd.grad(y, (xt, g, b), dyt)

    dx, dg, db = benchmark(step)
    assert dx.shape == xt.shape


def test_layer_norm_fwd(benchmark, backend, case):
    name, x, _, gamma, beta = case
    benchmark.group = f"layernorm {name} fwd"
    benchmark.extra_info["backend"] = backend
    y, mean, inv_std = benchmark(K.layer_norm_forward, x, gamma, beta)
    assert y.shape == x.shape


def test_layer_norm_fwd_torch(benchmark, torch, case):
    name, x, _, gamma, beta = case
    benchmark.group = f"layernorm {name} fwd"
    xt, g, b = (torch.from_numpy(a) for a in (x, gamma, beta))
    C = x.shape[-1]

    def fwd():
        with torch.no_grad():
            return torch.nn.functional.layer_norm(xt, (C,), g, b, eps=1e-3)

    assert benchmark(fwd).shape == xt.shape


def test_group_norm_fwd_bwd(benchmark, backend, group_case):
    name, x, dy, groups, gamma, beta = group_case
    benchmark.group = f"group_norm {name} fwd+bwd"
    benchmark.extra_info["backend"] = backend
    dx, dgamma, dbeta = benchmark(cases.group_forward_backward, x, dy, groups, gamma, beta)
    assert dx.shape == x.shape


def test_group_norm_fwd_bwd_torch(benchmark, torch, group_case):
    name, x, dy, groups, gamma, beta = group_case
    benchmark.group = f"group_norm {name} fwd+bwd"
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).requires_grad_()     # NCHW view of NHWC data
    dyt = torch.from_numpy(dy).permute(0, 3, 1, 2)
    g = torch.from_numpy(gamma).requires_grad_()
    b = torch.from_numpy(beta).requires_grad_()

    def step():
        y = torch.nn.functional.group_norm(xt, groups, g, b, eps=1e-3)
        return torch.autograd.grad(y, (xt, g, b), dyt)

    dx, dg, db = benchmark(step)
    assert dx.shape == xt.shape
