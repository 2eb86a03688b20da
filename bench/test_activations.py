"""Benchmarks: activation and loss kernels, compiled vs NumPy twin (float32).

Each group holds the same call on both backends (the `backend` fixture); speedup =
median(numpy) / median(cython).
"""
import numpy as np
import pytest

import cynet.kernels as K

ACT_SHAPE = (64, 32, 32, 64)
ELEMENTWISE = ("relu", "sigmoid", "tanh", "leaky_relu", "elu")


@pytest.fixture(scope="module")
def act_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(ACT_SHAPE, dtype=np.float32)
    dy = rng.standard_normal(ACT_SHAPE, dtype=np.float32)
    return x, dy


def _fwd(op, x):
    return getattr(K, f"{op}_forward")(x)


def _fwd_bwd(op, x, dy):
    y = _fwd(op, x)
    if op == "leaky_relu":
        return K.leaky_relu_backward(dy, x)
    if op == "elu":
        return K.elu_backward(dy, x, y)
    return getattr(K, f"{op}_backward")(dy, y)


@pytest.mark.parametrize("shape", [(512, 10), (1500, 43)], ids=["512x10", "1500x43"])
@pytest.mark.parametrize("labels_kind", ["int", "onehot"])
def test_softmax_cross_entropy(benchmark, backend, shape, labels_kind):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal(shape, dtype=np.float32) * 3
    labels = rng.integers(0, shape[1], shape[0])
    if labels_kind == "onehot":
        labels = np.eye(shape[1], dtype=np.float32)[labels]
    benchmark.group = f"softmax_cross_entropy {shape} {labels_kind} labels loss+grad"
    loss, grad = benchmark(K.softmax_cross_entropy, logits, labels)
    assert loss.shape == shape[:1] and grad.shape == shape


def test_softmax_fwd(benchmark, backend):
    shape = (1500, 43)
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32) * 3
    benchmark.group = f"softmax {shape} fwd"
    assert benchmark(K.softmax_forward, x).shape == shape


def test_softmax_fwd_bwd(benchmark, backend):
    shape = (1500, 43)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32) * 3
    dy = rng.standard_normal(shape, dtype=np.float32)
    benchmark.group = f"softmax {shape} fwd+bwd"
    assert benchmark(lambda: K.softmax_backward(dy, K.softmax_forward(x))).shape == shape


@pytest.mark.parametrize("op", ELEMENTWISE)
def test_elementwise_fwd(benchmark, backend, act_data, op):
    x, _ = act_data
    benchmark.group = f"{op} {ACT_SHAPE} fwd"
    assert benchmark(_fwd, op, x).shape == ACT_SHAPE


@pytest.mark.parametrize("op", ELEMENTWISE)
def test_elementwise_fwd_bwd(benchmark, backend, act_data, op):
    x, dy = act_data
    benchmark.group = f"{op} {ACT_SHAPE} fwd+bwd"
    assert benchmark(_fwd_bwd, op, x, dy).shape == ACT_SHAPE
