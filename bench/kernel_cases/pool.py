"""Cases of cynet.kernels.pool: max and average pooling, global pooling, upsampling."""
import numpy as np

import cynet.kernels as K

from . import case, normal, normal_like, raises, thunks

# The benchmarks (float32, channels_last): the input of 2x2 max and average pooling, and the
# smaller one of global pooling and upsampling.
BENCH_SHAPE = (64, 32, 32, 64)
BENCH_SMALL_SHAPE = (64, 16, 16, 64)

# The leak check: arguments of `arguments` (x: a shape).
LEAK = (
    dict(x=(2, 8, 8, 3), pool_size=2, strides=None, padding="valid", data_format="channels_last"),
    dict(x=(2, 7, 9, 3), pool_size=(3, 2), strides=(2, 1), padding="same", data_format="channels_last"),
    dict(x=(2, 3, 8, 8), pool_size=2, strides=None, padding="valid", data_format="channels_first"),
)
LEAK_LARGE = (dict(x=(8, 32, 32, 16), pool_size=2, strides=None, padding="valid", data_format="channels_last"),)
LEAK_GLOBAL = (dict(x=(2, 8, 8, 3), data_format="channels_last"), dict(x=(2, 3, 8, 8), data_format="channels_first"))
LEAK_GLOBAL_LARGE = (dict(x=(8, 32, 32, 16), data_format="channels_last"),)
LEAK_UPSAMPLING = (dict(x=(2, 4, 4, 3), size=2, data_format="channels_last"),
                   dict(x=(2, 3, 4, 5), size=(2, 3), data_format="channels_first"))
LEAK_UPSAMPLING_LARGE = (dict(x=(8, 32, 32, 16), size=2, data_format="channels_last"),)


def shape_name(shape):
    n, h, w, c = shape
    return f"N{n} {h}x{w}x{c}"


def arguments(rng, dtype, x, **options):
    """The keyword arguments of a forward: a normal x of shape `x`, and the `options` as given."""
    return dict(x=normal(rng, x, dtype), **options)


def options_of(kw):
    """The options of a forward's keyword arguments `kw` (all but x), which its backward takes too."""
    return {k: v for k, v in kw.items() if k != "x"}


# ----------------------------------------------------------------------------- leak cases

@case("max_pool2d_forward", "max_pool2d_backward")
def _max_pool(dt, rng, large):
    def bind(**cfg):
        kw = arguments(rng, dt, **cfg)
        y, argmax = K.max_pool2d_forward(**kw)
        dy, opts = normal_like(rng, y), options_of(kw)
        return [lambda: K.max_pool2d_forward(**kw), lambda: K.max_pool2d_backward(dy, argmax, kw["x"].shape, **opts)]

    if large:
        return thunks(bind, LEAK_LARGE)
    y, argmax = K.max_pool2d_forward(normal(rng, (2, 8, 8, 3), dt))
    argmax[0, 0, 0, 0] = 4          # outside [0, 2 * 2): the compiled kernel raises
    return thunks(bind, LEAK) + [raises(lambda: K.max_pool2d_backward(np.ones_like(y), argmax, (2, 8, 8, 3)))]


@case("avg_pool2d_forward", "avg_pool2d_backward")
def _avg_pool(dt, rng, large):
    def bind(**cfg):
        kw = arguments(rng, dt, **cfg)
        dy, opts = normal_like(rng, K.avg_pool2d_forward(**kw)), options_of(kw)
        return [lambda: K.avg_pool2d_forward(**kw), lambda: K.avg_pool2d_backward(dy, kw["x"].shape, **opts)]

    return thunks(bind, LEAK_LARGE if large else LEAK)


@case("global_avg_pool2d_forward", "global_avg_pool2d_backward", "global_max_pool2d_forward",
      "global_max_pool2d_backward")
def _global_pool(dt, rng, large):
    def bind(**cfg):
        kw = arguments(rng, dt, **cfg)
        y, argmax = K.global_max_pool2d_forward(**kw)
        dy, shape, opts = normal_like(rng, y), kw["x"].shape, options_of(kw)
        return [lambda: K.global_avg_pool2d_forward(**kw), lambda: K.global_avg_pool2d_backward(dy, shape, **opts),
                lambda: K.global_max_pool2d_forward(**kw),
                lambda: K.global_max_pool2d_backward(dy, argmax, shape, **opts)]

    if large:
        return thunks(bind, LEAK_GLOBAL_LARGE)
    dy, bad = np.ones((2, 3), dt), np.full((2, 3), 64, np.int32)   # outside [0, 8 * 8): the compiled kernel raises
    return thunks(bind, LEAK_GLOBAL) + [raises(lambda: K.global_max_pool2d_backward(dy, bad, (2, 8, 8, 3)))]


@case("upsampling2d_forward", "upsampling2d_backward")
def _upsampling(dt, rng, large):
    def bind(**cfg):
        kw = arguments(rng, dt, **cfg)
        dy, opts = normal_like(rng, K.upsampling2d_forward(**kw)), options_of(kw)
        return [lambda: K.upsampling2d_forward(**kw), lambda: K.upsampling2d_backward(dy, **opts)]

    return thunks(bind, LEAK_UPSAMPLING_LARGE if large else LEAK_UPSAMPLING)


@case("pool2d_output_shape")
def _output_shape(dt, rng, large):
    if large:
        return []
    return [lambda: K.pool2d_output_shape((None, 28, 28, 8), 2),
            lambda: K.pool2d_output_shape((4, 8, None, 9), (3, 2), strides=2, padding="same",
                                          data_format="channels_first")]
