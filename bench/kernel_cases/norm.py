"""Cases of cynet.kernels.norm: batch normalization (features last), training and inference
forward, backward."""
import numpy as np

import cynet.kernels as K

from . import case, normal, normal_like, thunks

# The benchmarks (float32): name (in the group) -> x's shape.
BENCH = {
    "N64 32x32x64": (64, 32, 32, 64),
    "(256, 512)": (256, 512),
}

# The leak check: x's shape and whether gamma and beta are given.
LEAK = (dict(shape=(32, 16)), dict(shape=(2, 6, 6, 8), affine=False))
LEAK_LARGE = (dict(shape=(2048, 64)),)


def arguments(rng, dtype, shape, affine=True):
    """(x, gamma, beta): a normal x of `shape`, gamma in [0.5, 1.5) and a normal beta (both None
    without `affine`)."""
    C = shape[-1]
    x = normal(rng, shape, dtype)
    if not affine:
        return x, None, None
    return x, rng.uniform(0.5, 1.5, C).astype(dtype), normal(rng, (C,), dtype)


def moving_statistics(C, dtype):
    """Fresh moving mean and variance (updated in place by a training forward)."""
    return np.zeros(C, dtype), np.ones(C, dtype)


def forward_backward(x, dy, gamma, beta, moving_mean, moving_variance):
    """(dx, dgamma, dbeta) of a training step: the training forward, then the backward."""
    _, mean, inv_std = K.batch_norm_train_forward(x, gamma, beta, moving_mean, moving_variance)
    return K.batch_norm_backward(dy, x, gamma, mean, inv_std)


# ----------------------------------------------------------------------------- leak cases

@case("batch_norm_train_forward", "batch_norm_inference_forward", "batch_norm_backward")
def _batch_norm(dt, rng, large):
    def bind(**cfg):
        x, gamma, beta = arguments(rng, dt, **cfg)
        mm, mv = moving_statistics(x.shape[-1], dt)
        _, mean, inv_std = K.batch_norm_train_forward(x, gamma, beta, mm, mv)
        dy = normal_like(rng, x)
        return [lambda: K.batch_norm_train_forward(x, gamma, beta, mm, mv, momentum=0.9),
                lambda: K.batch_norm_inference_forward(x, gamma, beta, mm, mv),
                lambda: K.batch_norm_backward(dy, x, gamma, mean, inv_std)]

    return thunks(bind, LEAK_LARGE if large else LEAK)
