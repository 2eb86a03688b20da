"""Benchmarks: pooling and upsampling, cython vs numpy twin (float32, channels_last).

    pytest bench/test_pool.py --benchmark-only
Each group holds both backends; speedup = median(numpy) / median(cython) (bench/report.py).
Shapes and arguments: kernel_cases/pool.py.
"""
import numpy as np
import pytest

import cynet.kernels as K
from kernel_cases import pool as cases

POOL_SHAPE = cases.BENCH_SHAPE
SMALL_SHAPE = cases.BENCH_SMALL_SHAPE


def _x(shape):
    return cases.normal(np.random.default_rng(0), shape, np.float32)


def _dy(y):
    return cases.normal_like(np.random.default_rng(1), y)


@pytest.fixture(scope="module")
def x_pool():
    return _x(POOL_SHAPE)


@pytest.fixture(scope="module")
def x_small():
    return _x(SMALL_SHAPE)


def test_max_pool_2x2_fwd(benchmark, backend, x_pool):
    benchmark.group = f"max_pool2d 2x2 {cases.shape_name(POOL_SHAPE)} fwd"
    y, argmax = benchmark(K.max_pool2d_forward, x_pool, (2, 2))
    assert y.shape == (64, 16, 16, 64) and argmax.dtype == np.int32


def test_max_pool_2x2_fwd_bwd(benchmark, backend, x_pool):
    benchmark.group = f"max_pool2d 2x2 {cases.shape_name(POOL_SHAPE)} fwd+bwd"
    dy = _dy(K.max_pool2d_forward(x_pool, (2, 2))[0])

    def step():
        _, argmax = K.max_pool2d_forward(x_pool, (2, 2))
        return K.max_pool2d_backward(dy, argmax, x_pool.shape, (2, 2))

    dx = benchmark(step)
    assert dx.shape == POOL_SHAPE and dx.dtype == np.float32


def test_avg_pool_2x2_fwd(benchmark, backend, x_pool):
    benchmark.group = f"avg_pool2d 2x2 {cases.shape_name(POOL_SHAPE)} fwd"
    y = benchmark(K.avg_pool2d_forward, x_pool, (2, 2))
    assert y.shape == (64, 16, 16, 64)


def test_avg_pool_2x2_fwd_bwd(benchmark, backend, x_pool):
    benchmark.group = f"avg_pool2d 2x2 {cases.shape_name(POOL_SHAPE)} fwd+bwd"
    dy = _dy(K.avg_pool2d_forward(x_pool, (2, 2)))

    def step():
        K.avg_pool2d_forward(x_pool, (2, 2))
        return K.avg_pool2d_backward(dy, x_pool.shape, (2, 2))

    dx = benchmark(step)
    assert dx.shape == POOL_SHAPE


def test_global_avg_pool_fwd_bwd(benchmark, backend, x_small):
    benchmark.group = f"global_avg_pool2d {cases.shape_name(SMALL_SHAPE)} fwd+bwd"
    dy = _dy(K.global_avg_pool2d_forward(x_small))

    def step():
        K.global_avg_pool2d_forward(x_small)
        return K.global_avg_pool2d_backward(dy, x_small.shape)

    dx = benchmark(step)
    assert dx.shape == SMALL_SHAPE


def test_upsampling_2x2_fwd_bwd(benchmark, backend, x_small):
    benchmark.group = f"upsampling2d 2x2 {cases.shape_name(SMALL_SHAPE)} fwd+bwd"
    dy = _dy(K.upsampling2d_forward(x_small, (2, 2)))

    def step():
        K.upsampling2d_forward(x_small, (2, 2))
        return K.upsampling2d_backward(dy, (2, 2))

    dx = benchmark(step)
    assert dx.shape == SMALL_SHAPE


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_2x2_fwd_bwd_torch(benchmark, torch, x_pool, kind):
    """PyTorch twin of the 2x2 pooling workloads, channels_last."""
    benchmark.group = f"{kind}_pool2d 2x2 {cases.shape_name(POOL_SHAPE)} fwd+bwd"
    xt = torch.from_numpy(x_pool.transpose(0, 3, 1, 2)).requires_grad_()
    dy = _dy(K.avg_pool2d_forward(x_pool, (2, 2)))
    dyt = torch.from_numpy(dy.transpose(0, 3, 1, 2))
    pool = torch.nn.functional.max_pool2d if kind == "max" else torch.nn.functional.avg_pool2d

    def step():
        return torch.autograd.grad(pool(xt, 2), xt, dyt)[0]

    dx = benchmark(step)
    assert tuple(dx.shape) == (64, 64, 32, 32)
