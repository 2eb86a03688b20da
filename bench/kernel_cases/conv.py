"""Cases of cynet.kernels.conv: conv2d_forward, conv2d_backward, conv2d_output_shape (with groups),
the transposed convolution conv2d_transpose_forward / _backward / _output_shape, and the
compiled module's im2col and col2im."""
import numpy as np

import cynet.kernels as K

from . import case, normal, raises, thunks

LAYOUT = ("strides", "padding", "dilation_rate", "data_format")

# The benchmarks (float32, channels_last): name (in the group), x (N, H, W, C), kernel (KH, KW, C, F),
# strides, padding.
BENCH = [
    ("N64 32x32x32->64 3x3 same", (64, 32, 32, 32), (3, 3, 32, 64), (1, 1), "same"),
    ("N512 28x28x1->32 6x6 s2 valid", (512, 28, 28, 1), (6, 6, 1, 32), (2, 2), "valid"),
    ("N32 16x16x64->128 3x3 same", (32, 16, 16, 64), (3, 3, 64, 128), (1, 1), "same"),
]

# Conv1D's benchmark (float32, channels_last), on the 2-D kernels as the layer runs it (a height-1
# view): name, x (N, 1, L, C), kernel (1, k, C, F), strides, padding.
CONV1D_BENCH = [
    ("N64 L128 C64->64 k5 same", (64, 1, 128, 64), (1, 5, 64, 64), (1, 1), "same"),
]

# The leak check: arguments of `arguments` (kernel_scale 0.1).
LEAK = (
    dict(x=(2, 8, 8, 3), kernel=(3, 3, 3, 4), bias=True, strides=1, padding="same", dilation_rate=1,
         data_format="channels_last"),
    dict(x=(2, 9, 9, 3), kernel=(3, 2, 3, 4), bias=False, strides=(2, 1), padding="valid", dilation_rate=(1, 2),
         data_format="channels_last"),
    dict(x=(2, 3, 8, 8), kernel=(3, 3, 3, 4), bias=True, strides=1, padding="same", dilation_rate=1,
         data_format="channels_first"),
    dict(x=(2, 8, 8, 3), kernel=(1, 1, 3, 4), bias=True, strides=1, padding="valid", dilation_rate=1,
         data_format="channels_last"),   # 1x1: the patch matrix is x itself
    dict(x=(2, 8, 8, 4), kernel=(3, 3, 2, 6), bias=True, strides=1, padding="same", dilation_rate=1,
         data_format="channels_last", groups=2),
)
LEAK_LARGE = (dict(x=(8, 16, 16, 8), kernel=(3, 3, 8, 16), bias=True, strides=1, padding="same", dilation_rate=1,
                   data_format="channels_last"),)


def arguments(rng, dtype, x, kernel, bias=True, kernel_scale=None, **options):
    """conv2d_forward's keyword arguments for an input of shape `x` and a kernel of shape
    `kernel` (KH, KW, C, F): normal values, the kernel's times kernel_scale (default
    1/sqrt(KH*KW*C)), a bias unless bias=False (then None), and the layout `options` as given."""
    scale = 1 / np.sqrt(np.prod(kernel[:3])) if kernel_scale is None else kernel_scale
    return dict(x=normal(rng, x, dtype), kernel=normal(rng, kernel, dtype, scale),
                bias=normal(rng, kernel[3:], dtype) if bias else None, **options)


def layout(kw):
    """The layout options of conv2d_forward's keyword arguments `kw` (those conv2d_output_shape takes)."""
    return {k: kw[k] for k in LAYOUT if k in kw}


def output_gradient(rng, kw):
    """A normal dy of the shape of conv2d_forward(**kw)."""
    shape = K.conv2d_output_shape(kw["x"].shape, kw["kernel"].shape[:2], filters=kw["kernel"].shape[3], **layout(kw))
    return normal(rng, shape, kw["x"].dtype)


def backward_arguments(kw, dy, compute_dx=True):
    """conv2d_backward's keyword arguments for the forward call conv2d_forward(**kw)."""
    groups = {"groups": kw["groups"]} if "groups" in kw else {}
    return dict(dy=dy, x=kw["x"], kernel=kw["kernel"], use_bias=kw["bias"] is not None, compute_dx=compute_dx,
                **layout(kw), **groups)


# ----------------------------------------------------------------------------- leak cases

@case("conv2d_forward")
def _forward(dt, rng, large):
    def bind(**cfg):
        kw = arguments(rng, dt, kernel_scale=0.1, **cfg)
        return [lambda: K.conv2d_forward(**kw)]

    return thunks(bind, LEAK_LARGE if large else LEAK)


@case("conv2d_backward")
def _backward(dt, rng, large):
    def bind(compute_dx=True, **cfg):
        kw = arguments(rng, dt, kernel_scale=0.1, **cfg)
        backward = backward_arguments(kw, output_gradient(rng, kw), compute_dx)
        return [lambda: K.conv2d_backward(**backward)]

    return thunks(bind, LEAK_LARGE if large else LEAK + (dict(LEAK[0], compute_dx=False),))


@case("conv2d_output_shape")
def _output_shape(dt, rng, large):
    if large:
        return []
    return [lambda: K.conv2d_output_shape((None, 28, 28, 1), 3, padding="same", filters=8),
            lambda: K.conv2d_output_shape((4, 3, 9, 9), (3, 2), strides=2, data_format="channels_first")]


@case("cynet._kernels.conv.im2col", "cynet._kernels.conv.col2im")
def _im2col(dt, rng, large):
    from cynet._kernels import conv as compiled   # (here: there is none on the NumPy path)
    if large:
        return []
    x = normal(rng, (2, 8, 8, 3), dt)
    geometry = (3, 3, 1, 1, 1, 1, 1, 1, 1, 1)            # KH, KW, pt, pb, pl, pr, sh, sw, dh, dw
    cols = compiled.im2col(x, *geometry)
    bad = np.ascontiguousarray(cols[:-1])
    return [lambda: compiled.im2col(x, *geometry), lambda: compiled.col2im(cols, 2, 8, 8, 3, *geometry),
            raises(lambda: compiled.col2im(bad, 2, 8, 8, 3, *geometry))]


@case("cynet._kernels.conv.conv2d_forward_bf16", "cynet._kernels.conv.conv2d_backward_bf16")
def _bf16(dt, rng, large):
    """The mixed_bfloat16 convolution (float32 by design: the NumPy arrays are float32 whatever
    `dt`): packed and short products, the fused ReLU, the AMX / AVX512_BF16 / emulated paths."""
    from cynet._kernels import conv as compiled
    x = normal(rng, (8, 16, 16, 8) if large else (2, 7, 6, 3), np.float32)
    calls = []
    for k, code, relu in (((3, 3, 8 if large else 3, 16), 2, True), ((3, 3, 8 if large else 3, 20), 1, False),
                          ((2, 1, 8 if large else 3, 5), 0, True)):
        kernel = normal(rng, k, np.float32, 0.1)
        bias = normal(rng, k[3:], np.float32)
        geometry = (1, 1, 0, 0, 1, 1, 1, 1)              # pt, pb, pl, pr, sh, sw, dh, dw
        y = compiled.conv2d_forward_bf16(x, kernel, bias, *geometry, code, relu)
        dy = normal(rng, y.shape, np.float32)
        calls += [lambda x=x, kernel=kernel, bias=bias, code=code, relu=relu, g=geometry:
                  compiled.conv2d_forward_bf16(x, kernel, bias, *g, code, relu),
                  lambda dy=dy, x=x, kernel=kernel, y=y if relu else None, code=code, g=geometry:
                  compiled.conv2d_backward_bf16(dy, x, kernel, y, *g, True, True, code)]
    bad = normal(rng, (3,), np.float32)
    return calls + [raises(lambda: compiled.conv2d_forward_bf16(x, kernel, bad, *geometry, 0, False))]


@case("cynet._kernels.conv.relu_maxpool_native", "cynet._kernels.conv.conv2d_relu_maxpool_forward",
      "cynet._kernels.conv.conv2d_relu_maxpool_backward")
def _relu_maxpool(dt, rng, large):
    """The first convolution, its ReLU and a 2x2 max pooling in one pass (float32 by design, with
    bfloat16-rounded products or not; where relu_maxpool_native: AVX-512F): odd output rows and
    columns, F not a multiple of 8, strides."""
    from cynet._kernels import conv as compiled
    x = normal(rng, (16, 28, 28, 1) if large else (2, 11, 12, 2), np.float32)
    calls = [lambda: compiled.relu_maxpool_native(9)]
    if not compiled.relu_maxpool_native(x.shape[3] * 6):
        return calls
    kernel = normal(rng, (3, 2, x.shape[3], 32 if large else 13), np.float32, 0.3)
    bias = normal(rng, kernel.shape[3:], np.float32)
    for g, bf16 in (((1, 1, 1, 1), True), ((2, 1, 1, 2), False)):   # sh, sw, dh, dw
        p, sel = compiled.conv2d_relu_maxpool_forward(x, kernel, bias, *g, bf16)
        dp = normal(rng, p.shape, np.float32)
        calls += [lambda g=g, b=bf16: compiled.conv2d_relu_maxpool_forward(x, kernel, bias, *g, b),
                  lambda g=g, b=bf16, dp=dp, sel=sel: compiled.conv2d_relu_maxpool_backward(dp, x, kernel, sel, *g,
                                                                                            True, b)]
    return calls + [raises(lambda: compiled.conv2d_relu_maxpool_backward(dp, x, kernel, sel[1:], *g, True, False))]


# ----------------------------------------------------------------------------- transposed convolution
# kernel (KH, KW, F, C): Keras's Conv2DTranspose layout

TRANSPOSE_LAYOUT = ("strides", "padding", "output_padding", "dilation_rate", "data_format")

# The benchmark (float32, channels_last): name, x (N, H, W, C), kernel (KH, KW, F, C), strides, padding.
TRANSPOSE_BENCH = [
    ("N32 16x16x64->32x32x32 3x3 s2 same", (32, 16, 16, 64), (3, 3, 32, 64), (2, 2), "same"),
]

TRANSPOSE_LEAK = (
    dict(x=(2, 4, 4, 3), kernel=(3, 3, 4, 3), bias=True, strides=2, padding="same", output_padding=None,
         dilation_rate=1, data_format="channels_last"),
    dict(x=(2, 5, 4, 3), kernel=(2, 3, 2, 3), bias=False, strides=(2, 1), padding="valid", output_padding=(1, 0),
         dilation_rate=1, data_format="channels_last"),
    dict(x=(2, 3, 4, 4), kernel=(3, 3, 2, 3), bias=True, strides=1, padding="same", output_padding=None,
         dilation_rate=2, data_format="channels_first"),
)
TRANSPOSE_LEAK_LARGE = (dict(x=(8, 16, 16, 8), kernel=(3, 3, 16, 8), bias=True, strides=2, padding="same",
                             output_padding=None, dilation_rate=1, data_format="channels_last"),)


def transpose_arguments(rng, dtype, x, kernel, bias=True, kernel_scale=None, **options):
    """conv2d_transpose_forward's keyword arguments for an input of shape `x` and a kernel of
    shape `kernel` (KH, KW, F, C): as `arguments`, with the bias of F entries."""
    scale = 1 / np.sqrt(np.prod(kernel[:3])) if kernel_scale is None else kernel_scale
    return dict(x=normal(rng, x, dtype), kernel=normal(rng, kernel, dtype, scale),
                bias=normal(rng, kernel[2:3], dtype) if bias else None, **options)


def transpose_layout(kw):
    return {k: kw[k] for k in TRANSPOSE_LAYOUT if k in kw}


def transpose_output_gradient(rng, kw):
    """A normal dy of the shape of conv2d_transpose_forward(**kw)."""
    shape = K.conv2d_transpose_output_shape(kw["x"].shape, kw["kernel"].shape[:2], kw["kernel"].shape[2],
                                            **transpose_layout(kw))
    return normal(rng, shape, kw["x"].dtype)


def transpose_backward_arguments(kw, dy, compute_dx=True):
    """conv2d_transpose_backward's keyword arguments for the call conv2d_transpose_forward(**kw)."""
    return dict(dy=dy, x=kw["x"], kernel=kw["kernel"], use_bias=kw["bias"] is not None, compute_dx=compute_dx,
                **transpose_layout(kw))


@case("conv2d_transpose_forward", "conv2d_transpose_backward")
def _transpose(dt, rng, large):
    def bind(compute_dx=True, **cfg):
        kw = transpose_arguments(rng, dt, kernel_scale=0.1, **cfg)
        backward = transpose_backward_arguments(kw, transpose_output_gradient(rng, kw), compute_dx)
        return [lambda: K.conv2d_transpose_forward(**kw), lambda: K.conv2d_transpose_backward(**backward)]

    if large:
        return thunks(bind, TRANSPOSE_LEAK_LARGE)
    x = normal(rng, (2, 4, 4, 3), dt)
    bad = normal(rng, (3, 3, 4, 2), dt)     # C = 2 against x's 3: refused
    return thunks(bind, TRANSPOSE_LEAK + (dict(TRANSPOSE_LEAK[0], compute_dx=False),)) + [
        raises(lambda: K.conv2d_transpose_forward(x, bad))]


@case("conv2d_transpose_output_shape")
def _transpose_output_shape(dt, rng, large):
    if large:
        return []
    return [lambda: K.conv2d_transpose_output_shape((None, 14, 14, 8), 3, 4, strides=2, padding="same"),
            lambda: K.conv2d_transpose_output_shape((4, 3, 9, 9), (3, 2), 5, strides=2, output_padding=1,
                                                    data_format="channels_first")]
