"""Cases of cynet.kernels.attention: the fused masked softmax of dot-product attention, forward
and backward, and the fused attention (attention_forward / attention_backward)."""
import numpy as np

import cynet.kernels as K

from . import case, normal, normal_like, thunks

# The benchmarks (float32): name (in the group) -> scores' shape (B, H, Tq, Tk); a Transformer
# encoder's attention over 128 tokens with 8 heads and a batch of 32.
BENCH = {
    "B32 H8 128x128": (32, 8, 128, 128),
}
# The fused attention benchmark (float32): name -> (B, T, S, H, dk, dv), the attention of the
# MultiHeadAttention benchmark below (batch 32, 128 tokens, 8 heads of 32).
HEADS_BENCH = {"B32 T128 H8 d32": (32, 128, 128, 8, 32, 32)}
# The MultiHeadAttention benchmark: (batch, sequence, model width) and the number of heads.
MHA_BENCH = {"B32 T128 D256 H8": ((32, 128, 256), 8)}

# The leak check: the scores' shape and the mask's (None: no mask).
LEAK = (dict(shape=(2, 3, 5, 7), mask_shape=None), dict(shape=(2, 2, 4, 6), mask_shape=(2, 1, 4, 6)),
        dict(shape=(3, 5), mask_shape=(3, 1)))
LEAK_LARGE = (dict(shape=(4, 4, 64, 64), mask_shape=(4, 1, 1, 64)),)
# The fused attention's leak check: (B, T, S, H, dk, dv) and the mask's shape (None: no mask).
HEADS_LEAK = (dict(dims=(2, 5, 7, 3, 4, 6), mask_shape=None), dict(dims=(2, 4, 6, 2, 3, 3), mask_shape=(2, 1, 4, 6)))
HEADS_LEAK_LARGE = (dict(dims=(4, 64, 64, 4, 16, 16), mask_shape=(4, 1, 1, 64)),)


def arguments(rng, dtype, shape, mask_shape=None, keep=0.8):
    """(scores, mask): normal scores of `shape` and a boolean mask of `mask_shape` keeping about
    `keep` of the keys (None for no mask)."""
    scores = normal(rng, shape, dtype)
    mask = None if mask_shape is None else rng.random(mask_shape) < keep
    return scores, mask


def forward_backward(scores, dp, mask=None, scale=1.0):
    """The gradient of the scores: the forward, then the backward."""
    p = K.masked_softmax_forward(scores, mask, scale)
    return K.masked_softmax_backward(dp, p, mask, scale)


# ----------------------------------------------------------------------------- leak cases

@case("masked_softmax_forward", "masked_softmax_backward")
def _masked_softmax(dt, rng, large):
    def bind(**cfg):
        scores, mask = arguments(rng, dt, **cfg)
        p = K.masked_softmax_forward(scores, mask, 0.5)
        dp = normal_like(rng, p)
        return [lambda: K.masked_softmax_forward(scores, mask, 0.5),
                lambda: K.masked_softmax_backward(dp, p, mask, 0.5)]

    return thunks(bind, LEAK_LARGE if large else LEAK)


def heads_arguments(rng, dtype, dims, mask_shape=None, keep=0.8):
    """(query, key, value, mask) of the fused attention: (B, T, H, dk), (B, S, H, dk), (B, S, H, dv)
    normal arrays for dims = (B, T, S, H, dk, dv), and a boolean mask of `mask_shape` or None."""
    B, T, S, H, dk, dv = dims
    q, k, v = (normal(rng, shape, dtype) for shape in ((B, T, H, dk), (B, S, H, dk), (B, S, H, dv)))
    return q, k, v, None if mask_shape is None else rng.random(mask_shape) < keep


@case("attention_forward", "attention_backward")
def _fused_attention(dt, rng, large):
    def bind(**cfg):
        q, k, v, mask = heads_arguments(rng, dt, **cfg)
        out, p = K.attention_forward(q, k, v, mask, 0.5)
        g = normal_like(rng, out)
        return [lambda: K.attention_forward(q, k, v, mask, 0.5),
                lambda: K.attention_backward(g, q, k, v, p, mask, 0.5),
                lambda: K.attention_backward(g, q, k, v, p, mask, 0.5, packed="kv")]

    return thunks(bind, HEADS_LEAK_LARGE if large else HEADS_LEAK)
