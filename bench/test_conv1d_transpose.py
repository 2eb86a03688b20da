"""Conv1D (the 2-D kernels on a height-1 view, as the layer runs them) and the transposed 2-D
convolution: forward+backward, float32, channels_last; the compiled kernels, their NumPy twins
and PyTorch (conv1d, conv_transpose2d) in the same group. Shapes: kernel_cases/conv.py
(CONV1D_BENCH, TRANSPOSE_BENCH)."""
import numpy as np
import pytest

import cynet.kernels as K
from kernel_cases import conv as cases

CONV1D = cases.CONV1D_BENCH
TRANSPOSE = cases.TRANSPOSE_BENCH


def _conv1d_data(x_shape, k_shape, strides, padding):
    rng = np.random.default_rng(0)
    kw = cases.arguments(rng, np.float32, x_shape, k_shape, strides=strides, padding=padding)
    return kw, cases.output_gradient(rng, kw)


@pytest.mark.parametrize("name, x_shape, k_shape, strides, padding", CONV1D, ids=[s[0] for s in CONV1D])
def test_conv1d_fwd_bwd(benchmark, backend, name, x_shape, k_shape, strides, padding):
    kw, dy = _conv1d_data(x_shape, k_shape, strides, padding)
    backward = cases.backward_arguments(kw, dy)
    benchmark.group = f"conv1d {name} fwd+bwd"
    benchmark.extra_info["backend"] = backend

    def step():
        return K.conv2d_forward(**kw), K.conv2d_backward(**backward)

    y, (dx, dkernel, dbias) = benchmark(step)
    assert dx.shape == x_shape and dkernel.dtype == np.float32


@pytest.mark.parametrize("name, x_shape, k_shape, strides, padding", CONV1D, ids=[s[0] for s in CONV1D])
def test_conv1d_fwd_bwd_torch(benchmark, torch, name, x_shape, k_shape, strides, padding):
    """PyTorch twin: conv1d on (N, C, L) (its native layout), symmetric padding (k odd)."""
    kw, dy = _conv1d_data(x_shape, k_shape, strides, padding)
    benchmark.group = f"conv1d {name} fwd+bwd"
    k = k_shape[1]
    assert padding == "valid" or k % 2 == 1, "even windows have no symmetric PyTorch padding"
    xt = torch.from_numpy(np.ascontiguousarray(kw["x"][:, 0].transpose(0, 2, 1))).requires_grad_()
    w = torch.from_numpy(np.ascontiguousarray(kw["kernel"][0].transpose(2, 1, 0))).requires_grad_()
    b = torch.from_numpy(kw["bias"]).requires_grad_()
    dyt = torch.from_numpy(np.ascontiguousarray(dy[:, 0].transpose(0, 2, 1)))
    pad = 0 if padding == "valid" else k // 2

    def step():
        y = torch.nn.functional.conv1d(xt, w, b, stride=strides[1], padding=pad)
        return torch.autograd.grad(y, (xt, w, b), dyt)

    dx, dw, db = benchmark(step)
    assert tuple(dx.shape) == (x_shape[0], x_shape[3], x_shape[2])


def _transpose_data(x_shape, k_shape, strides, padding):
    rng = np.random.default_rng(0)
    kw = cases.transpose_arguments(rng, np.float32, x_shape, k_shape, strides=strides, padding=padding)
    return kw, cases.transpose_output_gradient(rng, kw)


@pytest.mark.parametrize("name, x_shape, k_shape, strides, padding", TRANSPOSE, ids=[s[0] for s in TRANSPOSE])
def test_conv2d_transpose_fwd_bwd(benchmark, backend, name, x_shape, k_shape, strides, padding):
    kw, dy = _transpose_data(x_shape, k_shape, strides, padding)
    backward = cases.transpose_backward_arguments(kw, dy)
    benchmark.group = f"conv2d_transpose {name} fwd+bwd"
    benchmark.extra_info["backend"] = backend

    def step():
        return K.conv2d_transpose_forward(**kw), K.conv2d_transpose_backward(**backward)

    y, (dx, dkernel, dbias) = benchmark(step)
    assert dx.shape == x_shape and dkernel.dtype == np.float32


@pytest.mark.parametrize("name, x_shape, k_shape, strides, padding", TRANSPOSE, ids=[s[0] for s in TRANSPOSE])
def test_conv2d_transpose_fwd_bwd_torch(benchmark, torch, name, x_shape, k_shape, strides, padding):
    """PyTorch twin, channels_last memory (its fastest CPU layout); Keras's "same" (odd window)
    as PyTorch's padding (k - 1) / 2 plus output_padding s - 1 (Keras's own conversion)."""
    kw, dy = _transpose_data(x_shape, k_shape, strides, padding)
    benchmark.group = f"conv2d_transpose {name} fwd+bwd"
    assert padding == "same" and k_shape[0] % 2 == 1 and k_shape[1] % 2 == 1
    x, kernel, bias = kw["x"], kw["kernel"], kw["bias"]
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2)).requires_grad_()            # NCHW view, NHWC memory
    w = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())                  # (C_in, F, KH, KW)
    w = w.contiguous(memory_format=torch.channels_last).requires_grad_()
    b = torch.from_numpy(bias).requires_grad_()
    dyt = torch.from_numpy(dy.transpose(0, 3, 1, 2))
    pad = tuple((k - 1) // 2 for k in k_shape[:2])
    op = tuple(s - 1 for s in strides)

    def step():
        y = torch.nn.functional.conv_transpose2d(xt, w, b, stride=strides, padding=pad, output_padding=op)
        return torch.autograd.grad(y, (xt, w, b), dyt)

    dx, dw, db = benchmark(step)
    assert tuple(dx.shape) == (x_shape[0], x_shape[3], x_shape[1], x_shape[2])
