"""Cases of cynet.kernels.layernorm: layer normalization (last axis) and group normalization
(channels last), forward and backward."""
import numpy as np

import cynet.kernels as K

from . import case, normal, normal_like, thunks

# The benchmarks (float32): name (in the group) -> x's shape, normalised over the last axis.
# Transformer activations (batch 32 x sequence 128, model width 512) and a wide MLP batch.
BENCH = {
    "transformer 32x128x512": (32, 128, 512),
    "(4096, 256)": (4096, 256),
}
# Group normalization (a ResNet-style feature map, 32 groups of channels): x's shape, groups.
BENCH_GROUP = {"N16 32x32x64 G32": ((16, 32, 32, 64), 32)}

# The leak check: x's shape, whether gamma and beta are given, rms_scaling; group norm's groups.
LEAK = (dict(shape=(32, 16)), dict(shape=(2, 3, 40), affine=False, rms_scaling=True))
LEAK_LARGE = (dict(shape=(2048, 64)),)
LEAK_GROUP = (dict(shape=(2, 5, 8), groups=4), dict(shape=(3, 2, 2, 6), groups=6, affine=False))
LEAK_GROUP_LARGE = (dict(shape=(64, 32, 32), groups=8),)


def arguments(rng, dtype, shape, affine=True):
    """(x, gamma, beta): a normal x of `shape` (offset by 3, as activations are), gamma in
    [0.5, 1.5) and a normal beta over the last axis (both None without `affine`)."""
    C = shape[-1]
    x = normal(rng, shape, dtype) + dtype(3)
    if not affine:
        return x, None, None
    return x, rng.uniform(0.5, 1.5, C).astype(dtype), normal(rng, (C,), dtype)


def forward_backward(x, dy, gamma, beta, epsilon=1e-3):
    """(dx, dgamma, dbeta) of a training step of layer normalization: forward, then backward."""
    _, mean, inv_std = K.layer_norm_forward(x, gamma, beta, epsilon)
    return K.layer_norm_backward(dy, x, gamma, mean, inv_std)


def group_forward_backward(x, dy, groups, gamma, beta, epsilon=1e-3):
    """(dx, dgamma, dbeta) of a training step of group normalization."""
    _, mean, inv_std = K.group_norm_forward(x, groups, gamma, beta, epsilon)
    return K.group_norm_backward(dy, x, groups, gamma, mean, inv_std)


# ----------------------------------------------------------------------------- leak cases

@case("layer_norm_forward", "layer_norm_backward")
def _layer_norm(dt, rng, large):
    def bind(shape, affine=True, rms_scaling=False):
        x, gamma, beta = arguments(rng, dt, shape, affine)
        _, mean, inv_std = K.layer_norm_forward(x, gamma, beta, rms_scaling=rms_scaling)
        dy = normal_like(rng, x)
        return [lambda: K.layer_norm_forward(x, gamma, beta, 1e-3, rms_scaling),
                lambda: K.layer_norm_backward(dy, x, gamma, mean, inv_std, rms_scaling)]

    return thunks(bind, LEAK_LARGE if large else LEAK)


@case("group_norm_forward", "group_norm_backward")
def _group_norm(dt, rng, large):
    def bind(shape, groups, affine=True):
        x, gamma, beta = arguments(rng, dt, shape, affine)
        _, mean, inv_std = K.group_norm_forward(x, groups, gamma, beta)
        dy = normal_like(rng, x)
        return [lambda: K.group_norm_forward(x, groups, gamma, beta),
                lambda: K.group_norm_backward(dy, x, groups, gamma, mean, inv_std)]

    return thunks(bind, LEAK_GROUP_LARGE if large else LEAK_GROUP)
