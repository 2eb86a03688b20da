"""Conv2D benchmarks: forward and forward+backward, float32, numpy twin vs compiled (same group).
Shapes and arguments: kernel_cases/conv.py."""
import numpy as np
import pytest

import cynet.kernels as K
from kernel_cases import conv as cases

SHAPES = cases.BENCH


def _data(x_shape, k_shape, strides, padding):
    """conv2d_forward's keyword arguments and a dy."""
    rng = np.random.default_rng(0)
    kw = cases.arguments(rng, np.float32, x_shape, k_shape, strides=strides, padding=padding)
    return kw, cases.output_gradient(rng, kw)


@pytest.mark.parametrize("name, x_shape, k_shape, strides, padding", SHAPES, ids=[s[0] for s in SHAPES])
def test_conv2d_fwd(benchmark, backend, name, x_shape, k_shape, strides, padding):
    kw, _ = _data(x_shape, k_shape, strides, padding)
    benchmark.group = f"conv2d {name} fwd"
    benchmark.extra_info["backend"] = backend
    y = benchmark(K.conv2d_forward, **kw)
    assert y.dtype == np.float32


@pytest.mark.parametrize("name, x_shape, k_shape, strides, padding", SHAPES, ids=[s[0] for s in SHAPES])
def test_conv2d_fwd_bwd(benchmark, backend, name, x_shape, k_shape, strides, padding):
    kw, dy = _data(x_shape, k_shape, strides, padding)
    backward = cases.backward_arguments(kw, dy)
    benchmark.group = f"conv2d {name} fwd+bwd"
    benchmark.extra_info["backend"] = backend

    def step():
        return K.conv2d_forward(**kw), K.conv2d_backward(**backward)

    y, (dx, dkernel, dbias) = benchmark(step)
    assert dx.dtype == dkernel.dtype == dbias.dtype == np.float32


def _torch_padding(x_shape, k_shape, strides, padding):
    """Keras padding as PyTorch's symmetric padding (the shapes here need no asymmetric pad)."""
    if padding == "valid":
        return (0, 0)
    out = K.conv2d_output_shape(x_shape, k_shape[:2], strides, padding, filters=k_shape[3])
    total = [max((o - 1) * s + k - i, 0) for o, s, k, i in zip(out[1:3], strides, k_shape[:2], x_shape[1:3])]
    assert all(t % 2 == 0 for t in total), "asymmetric padding has no PyTorch equivalent here"
    return tuple(t // 2 for t in total)


@pytest.mark.parametrize("name, x_shape, k_shape, strides, padding", SHAPES, ids=[s[0] for s in SHAPES])
def test_conv2d_fwd_bwd_torch(benchmark, torch, name, x_shape, k_shape, strides, padding):
    """PyTorch twin, channels_last (its fastest CPU layout): d_input, d_kernel and d_bias."""
    kw, dy = _data(x_shape, k_shape, strides, padding)
    x, kernel, bias = kw["x"], kw["kernel"], kw["bias"]
    benchmark.group = f"conv2d {name} fwd+bwd"
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2)).requires_grad_()     # NCHW view, NHWC memory
    w = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
    w = w.contiguous(memory_format=torch.channels_last).requires_grad_()
    b = torch.from_numpy(bias).requires_grad_()
    dyt = torch.from_numpy(dy.transpose(0, 3, 1, 2))
    pad = _torch_padding(x_shape, k_shape, strides, padding)

    def step():
        y = torch.nn.functional.conv2d(xt, w, b, stride=strides, padding=pad)
        return torch.autograd.grad(y, (xt, w, b), dyt)

    dx, dw, db = benchmark(step)
    assert tuple(dx.shape) == (x_shape[0], x_shape[3], x_shape[1], x_shape[2])
