"""Cases of cynet.kernels.depthwise: depthwise_conv2d_forward, depthwise_conv2d_backward,
depthwise_conv2d_output_shape."""
import numpy as np

import cynet.kernels as K

from . import case, normal, thunks

LAYOUT = ("strides", "padding", "dilation_rate", "data_format")

# The benchmarks (float32, channels_last, 3x3 windows, depth_multiplier 1): MobileNet's depthwise
# layers. name (in the group), x (N, H, W, C), kernel (KH, KW, C, M), strides, padding.
BENCH = [
    ("N32 56x56x64 3x3 s1 same", (32, 56, 56, 64), (3, 3, 64, 1), (1, 1), "same"),
    ("N32 28x28x128 3x3 s2 same", (32, 28, 28, 128), (3, 3, 128, 1), (2, 2), "same"),
]

# The leak check: arguments of `arguments` (kernel_scale 0.1).
LEAK = (
    dict(x=(2, 8, 8, 3), kernel=(3, 3, 3, 1), bias=True, strides=1, padding="same", dilation_rate=1,
         data_format="channels_last"),
    dict(x=(2, 9, 9, 40), kernel=(3, 2, 40, 2), bias=False, strides=(2, 1), padding="valid", dilation_rate=(1, 2),
         data_format="channels_last"),
    dict(x=(2, 3, 8, 8), kernel=(3, 3, 3, 2), bias=True, strides=1, padding="same", dilation_rate=1,
         data_format="channels_first"),
)
LEAK_LARGE = (dict(x=(8, 16, 16, 64), kernel=(3, 3, 64, 1), bias=True, strides=1, padding="same", dilation_rate=1,
                   data_format="channels_last"),)


def arguments(rng, dtype, x, kernel, bias=True, kernel_scale=None, **options):
    """depthwise_conv2d_forward's keyword arguments for an input of shape `x` and a kernel of shape
    `kernel` (KH, KW, C, M): normal values, the kernel's times kernel_scale (default 1/sqrt(KH*KW)),
    a bias of C*M values unless bias=False (then None), and the layout `options` as given."""
    scale = 1 / np.sqrt(kernel[0] * kernel[1]) if kernel_scale is None else kernel_scale
    return dict(x=normal(rng, x, dtype), kernel=normal(rng, kernel, dtype, scale),
                bias=normal(rng, (kernel[2] * kernel[3],), dtype) if bias else None, **options)


def layout(kw):
    """The layout options of depthwise_conv2d_forward's keyword arguments `kw`."""
    return {k: kw[k] for k in LAYOUT if k in kw}


def output_gradient(rng, kw):
    """A normal dy of the shape of depthwise_conv2d_forward(**kw)."""
    shape = K.depthwise_conv2d_output_shape(kw["x"].shape, kw["kernel"].shape[:2],
                                            depth_multiplier=kw["kernel"].shape[3], **layout(kw))
    return normal(rng, shape, kw["x"].dtype)


def backward_arguments(kw, dy, compute_dx=True):
    """depthwise_conv2d_backward's keyword arguments for the forward call depthwise_conv2d_forward(**kw)."""
    return dict(dy=dy, x=kw["x"], kernel=kw["kernel"], use_bias=kw["bias"] is not None, compute_dx=compute_dx,
                **layout(kw))


@case("depthwise_conv2d_forward")
def _forward(dt, rng, large):
    def bind(**cfg):
        kw = arguments(rng, dt, kernel_scale=0.1, **cfg)
        return [lambda: K.depthwise_conv2d_forward(**kw)]

    return thunks(bind, LEAK_LARGE if large else LEAK)


@case("depthwise_conv2d_backward")
def _backward(dt, rng, large):
    def bind(compute_dx=True, **cfg):
        kw = arguments(rng, dt, kernel_scale=0.1, **cfg)
        backward = backward_arguments(kw, output_gradient(rng, kw), compute_dx)
        return [lambda: K.depthwise_conv2d_backward(**backward)]

    return thunks(bind, LEAK_LARGE if large else LEAK + (dict(LEAK[0], compute_dx=False),))


@case("depthwise_conv2d_output_shape")
def _output_shape(dt, rng, large):
    if large:
        return []
    return [lambda: K.depthwise_conv2d_output_shape((None, 28, 28, 8), 3, padding="same", depth_multiplier=2),
            lambda: K.depthwise_conv2d_output_shape((4, 3, 9, 9), (3, 2), strides=2, data_format="channels_first")]
