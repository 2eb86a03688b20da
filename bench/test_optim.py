"""Fused optimizer update benchmarks: one step of each update kernel on a variable of 1M floats
(a mid-size dense layer, 1024 x 1024) and of 64k, float32; Cython vs the NumPy twin, and
torch.optim's single-tensor (foreach=False) step where PyTorch has the rule (Adam, SGD momentum,
Adamax). Slots persist across rounds, as in training.
"""
import numpy as np
import pytest

import cynet.kernels as K

SIZES = {"1M": 1 << 20, "64k": 1 << 16}


def _arrays(n, k):
    rng = np.random.default_rng(0)
    w = rng.standard_normal(n).astype(np.float32)
    g = (rng.standard_normal(n) * 1e-3).astype(np.float32)
    return [w, g] + [np.full(n, 0.1, np.float32) for _ in range(k)]


STEPS = {   # name -> (number of slots, step(w, g, *slots))
    "adam": (2, lambda w, g, m, v: K.adam_update(w, g, m, v, 1e-4, 0.1, 0.001, 1e-7)),
    "sgd_momentum": (1, lambda w, g, m: K.sgd_momentum_update(w, g, m, 1e-3, 0.9)),
    "adamax": (2, lambda w, g, m, u: K.adamax_update(w, g, m, u, 1e-3, 0.1, 0.999, 0.1, 1e-7)),
    "lion": (1, lambda w, g, m: K.lion_update(w, g, m, 1e-4, 0.9, 0.1, 0.99, 0.01)),
    "ftrl": (2, lambda w, g, n, z: K.ftrl_update(w, g, n, z, 1e-3, 0.5, 1e-3, 0.0, 0.0)),
}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name", list(STEPS))
def test_update(benchmark, backend, name, size):
    slots, step = STEPS[name]
    arrays = _arrays(SIZES[size], slots)
    benchmark.group = f"{name}_update {size}"
    benchmark.extra_info["backend"] = backend
    benchmark(step, *arrays)
    assert np.isfinite(arrays[0]).all()


TORCH = {"adam": lambda t, p: t.optim.Adam([p], lr=1e-3, eps=1e-7, foreach=False),
         "sgd_momentum": lambda t, p: t.optim.SGD([p], lr=1e-3, momentum=0.9, foreach=False),
         "adamax": lambda t, p: t.optim.Adamax([p], lr=1e-3, eps=1e-7, foreach=False)}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name", list(TORCH))
def test_update_torch(benchmark, torch, name, size):
    """PyTorch twin: torch.optim's step on one parameter with its gradient set."""
    w, g = _arrays(SIZES[size], 0)
    p = torch.nn.Parameter(torch.from_numpy(w))
    p.grad = torch.from_numpy(g)
    opt = TORCH[name](torch, p)
    benchmark.group = f"{name}_update {size}"
    with torch.no_grad():
        benchmark(opt.step)
    assert torch.isfinite(p).all()
