"""Conv2D benchmarks: forward and forward+backward, float32, numpy twin vs compiled (same group)."""
import numpy as np
import pytest

import cynet.kernels as K

# name, x shape (N, H, W, C), kernel shape (KH, KW, C, F), strides, padding
SHAPES = [
    ("N64 32x32x32->64 3x3 same", (64, 32, 32, 32), (3, 3, 32, 64), (1, 1), "same"),
    ("N512 28x28x1->32 6x6 s2 valid", (512, 28, 28, 1), (6, 6, 1, 32), (2, 2), "valid"),
    ("N32 16x16x64->128 3x3 same", (32, 16, 16, 64), (3, 3, 64, 128), (1, 1), "same"),
]


def _data(x_shape, k_shape, strides, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape, dtype=np.float32)
    kernel = (rng.standard_normal(k_shape, dtype=np.float32) / np.sqrt(np.prod(k_shape[:3]))).astype(np.float32)
    bias = rng.standard_normal(k_shape[3], dtype=np.float32)
    out = K.conv2d_output_shape(x_shape, k_shape[:2], strides, padding, filters=k_shape[3])
    dy = rng.standard_normal(out, dtype=np.float32)
    return x, kernel, bias, dy


@pytest.mark.parametrize("name, x_shape, k_shape, strides, padding", SHAPES, ids=[s[0] for s in SHAPES])
def test_conv2d_forward(benchmark, backend, name, x_shape, k_shape, strides, padding):
    x, kernel, bias, _ = _data(x_shape, k_shape, strides, padding)
    benchmark.group = f"conv2d {name} fwd"
    benchmark.extra_info["backend"] = backend
    y = benchmark(K.conv2d_forward, x, kernel, bias, strides=strides, padding=padding)
    assert y.dtype == np.float32


@pytest.mark.parametrize("name, x_shape, k_shape, strides, padding", SHAPES, ids=[s[0] for s in SHAPES])
def test_conv2d_forward_backward(benchmark, backend, name, x_shape, k_shape, strides, padding):
    x, kernel, bias, dy = _data(x_shape, k_shape, strides, padding)
    benchmark.group = f"conv2d {name} fwd+bwd"
    benchmark.extra_info["backend"] = backend

    def step():
        y = K.conv2d_forward(x, kernel, bias, strides=strides, padding=padding)
        return y, K.conv2d_backward(dy, x, kernel, strides=strides, padding=padding)

    y, (dx, dkernel, dbias) = benchmark(step)
    assert dx.dtype == dkernel.dtype == dbias.dtype == np.float32
