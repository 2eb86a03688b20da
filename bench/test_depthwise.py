"""Depthwise convolution benchmarks: forward and forward+backward, float32, channels_last, the
NumPy twin, the compiled kernels and PyTorch (conv2d with groups=C, channels_last memory) in one
group per shape. Shapes (MobileNet's 3x3 depthwise layers) and arguments: kernel_cases/depthwise.py.

    pytest bench/test_depthwise.py --benchmark-only --threads 1 -k "not torch"
    pytest bench/test_depthwise.py --benchmark-only --threads 1 -k torch
"""
import numpy as np
import pytest

import cynet.kernels as K
from kernel_cases import depthwise as cases

SHAPES = cases.BENCH
IDS = [s[0] for s in SHAPES]


def _data(x_shape, k_shape, strides, padding):
    """depthwise_conv2d_forward's keyword arguments and a dy."""
    rng = np.random.default_rng(0)
    kw = cases.arguments(rng, np.float32, x_shape, k_shape, strides=strides, padding=padding)
    return kw, cases.output_gradient(rng, kw)


@pytest.mark.parametrize("name, x_shape, k_shape, strides, padding", SHAPES, ids=IDS)
def test_depthwise_fwd(benchmark, backend, name, x_shape, k_shape, strides, padding):
    kw, _ = _data(x_shape, k_shape, strides, padding)
    benchmark.group = f"depthwise {name} fwd"
    benchmark.extra_info["backend"] = backend
    y = benchmark(K.depthwise_conv2d_forward, **kw)
    assert y.dtype == np.float32


@pytest.mark.parametrize("name, x_shape, k_shape, strides, padding", SHAPES, ids=IDS)
def test_depthwise_fwd_bwd(benchmark, backend, name, x_shape, k_shape, strides, padding):
    kw, dy = _data(x_shape, k_shape, strides, padding)
    backward = cases.backward_arguments(kw, dy)
    benchmark.group = f"depthwise {name} fwd+bwd"
    benchmark.extra_info["backend"] = backend

    def step():
        return K.depthwise_conv2d_forward(**kw), K.depthwise_conv2d_backward(**backward)

    y, (dx, dkernel, dbias) = benchmark(step)
    assert dx.dtype == dkernel.dtype == dbias.dtype == np.float32


def _torch_padding(x_shape, k_shape, strides, padding):
    """Keras padding as PyTorch's symmetric padding. An odd total (Keras puts the extra cell after)
    is rounded up on both sides when that gives the same output size: the windows then start one
    cell earlier, the same work (a timing twin, not a numerical one)."""
    if padding == "valid":
        return (0, 0)
    out = K.depthwise_conv2d_output_shape(x_shape, k_shape[:2], strides, padding)
    pads = []
    for o, s, k, i in zip(out[1:3], strides, k_shape[:2], x_shape[1:3]):
        p = (max((o - 1) * s + k - i, 0) + 1) // 2
        assert (i + 2 * p - k) // s + 1 == o, "no symmetric padding gives Keras's output size"
        pads.append(p)
    return tuple(pads)


def _torch_args(torch, x_shape, k_shape, strides, padding):
    kw, dy = _data(x_shape, k_shape, strides, padding)
    x, kernel, bias = kw["x"], kw["kernel"], kw["bias"]
    C, M = k_shape[2], k_shape[3]
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2)).requires_grad_()     # NCHW view, NHWC memory
    # (KH, KW, C, M) -> (C*M, 1, KH, KW): output channel c*M + m, as Keras's
    w = torch.from_numpy(kernel.reshape(k_shape[0], k_shape[1], C * M).transpose(2, 0, 1)[:, None].copy())
    w = w.contiguous(memory_format=torch.channels_last).requires_grad_()
    b = torch.from_numpy(bias).requires_grad_()
    dyt = torch.from_numpy(dy.transpose(0, 3, 1, 2))
    return xt, w, b, dyt, dict(stride=strides, padding=_torch_padding(x_shape, k_shape, strides, padding), groups=C)


@pytest.mark.parametrize("name, x_shape, k_shape, strides, padding", SHAPES, ids=IDS)
def test_depthwise_fwd_torch(benchmark, torch, name, x_shape, k_shape, strides, padding):
    xt, w, b, _, opts = _torch_args(torch, x_shape, k_shape, strides, padding)
    benchmark.group = f"depthwise {name} fwd"

    def step():
        with torch.no_grad():
            return torch.nn.functional.conv2d(xt, w, b, **opts)

    y = benchmark(step)
    assert y.shape[1] == k_shape[2] * k_shape[3]


@pytest.mark.parametrize("name, x_shape, k_shape, strides, padding", SHAPES, ids=IDS)
def test_depthwise_fwd_bwd_torch(benchmark, torch, name, x_shape, k_shape, strides, padding):
    """PyTorch twin: d_input, d_kernel and d_bias."""
    xt, w, b, dyt, opts = _torch_args(torch, x_shape, k_shape, strides, padding)
    benchmark.group = f"depthwise {name} fwd+bwd"

    def step():
        y = torch.nn.functional.conv2d(xt, w, b, **opts)
        return torch.autograd.grad(y, (xt, w, b), dyt)

    dx, dw, db = benchmark(step)
    assert tuple(dx.shape) == (x_shape[0], x_shape[3], x_shape[1], x_shape[2])
