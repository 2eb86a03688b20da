"""Benchmarks: activation and loss kernels, compiled vs NumPy twin (float32).

Each group holds the same call on both backends (the `backend` fixture); speedup =
median(numpy) / median(cython). Shapes and arguments: kernel_cases/activations.py.
"""
import numpy as np
import pytest

import cynet.kernels as K
from kernel_cases import activations as cases

ACT_SHAPE = cases.BENCH_SHAPE
F32 = np.float32


@pytest.fixture(scope="module")
def act_data():
    rng = np.random.default_rng(0)
    return cases.normal(rng, ACT_SHAPE, F32), cases.normal(rng, ACT_SHAPE, F32)


@pytest.mark.parametrize("shape", list(cases.BENCH_LOSS_SHAPES.values()), ids=list(cases.BENCH_LOSS_SHAPES))
@pytest.mark.parametrize("labels_kind", ["int", "onehot"])
def test_softmax_cross_entropy(benchmark, backend, shape, labels_kind):
    logits, labels = cases.loss_arguments(np.random.default_rng(0), shape, F32, labels_kind, cases.BENCH_LOGIT_SCALE)
    benchmark.group = f"softmax_cross_entropy {shape} {labels_kind} labels loss+grad"
    loss, grad = benchmark(K.softmax_cross_entropy, logits, labels)
    assert loss.shape == shape[:1] and grad.shape == shape


def test_softmax_fwd(benchmark, backend):
    shape = cases.BENCH_SOFTMAX_SHAPE
    x = cases.normal(np.random.default_rng(0), shape, F32, cases.BENCH_LOGIT_SCALE)
    benchmark.group = f"softmax {shape} fwd"
    assert benchmark(K.softmax_forward, x).shape == shape


def test_softmax_fwd_bwd(benchmark, backend):
    shape = cases.BENCH_SOFTMAX_SHAPE
    rng = np.random.default_rng(0)
    x, dy = cases.normal(rng, shape, F32, cases.BENCH_LOGIT_SCALE), cases.normal(rng, shape, F32)
    benchmark.group = f"softmax {shape} fwd+bwd"
    assert benchmark(lambda: K.softmax_backward(dy, K.softmax_forward(x))).shape == shape


@pytest.mark.parametrize("op", cases.ELEMENTWISE)
def test_elementwise_fwd(benchmark, backend, act_data, op):
    x, _ = act_data
    benchmark.group = f"{op} {ACT_SHAPE} fwd"
    assert benchmark(cases.forward, op, x).shape == ACT_SHAPE


@pytest.mark.parametrize("op", cases.ELEMENTWISE)
def test_elementwise_fwd_bwd(benchmark, backend, act_data, op):
    x, dy = act_data
    benchmark.group = f"{op} {ACT_SHAPE} fwd+bwd"
    assert benchmark(cases.forward_backward, op, x, dy).shape == ACT_SHAPE
