"""Cases of cynet.kernels.bf16: the bfloat16 products of the mixed_bfloat16 policy."""
import cynet.kernels as K
from cynet.kernels import bf16 as bf16_public

from . import case, normal, thunks

# The benchmarks: name -> (M, K, N) of a float32 product a (M, K) @ b (K, N). An MLP layer's
# forward on a batch of 128 (784 -> 128), a convnet's im2col product (MNIST 3x3x32 -> 64 on a
# batch of 128 at 11x11... as (rows, patch, filters)) and a square 1024 product.
BENCH = {
    "dense 128x784x128": (128, 784, 128),
    "conv 15488x288x64": (15488, 288, 64),
    "square 1024": (1024, 1024, 1024),
}

LEAK = (dict(M=5, Kd=7, N=3), dict(M=13, Kd=600, N=40, batch=2))
LEAK_LARGE = (dict(M=256, Kd=512, N=256),)


@case("round_bf16", "matmul_bf16")
def _bf16(dt, rng, large):
    def bind(M, Kd, N, batch=None):
        shape = (M, Kd) if batch is None else (batch, M, Kd)
        a, b = normal(rng, shape, dt), normal(rng, (Kd, N), dt)
        return [lambda: K.round_bf16(a), lambda: K.matmul_bf16(a, b), lambda: K.matmul_bf16(a[..., ::2, :], b),
                bf16_public.native_available, bf16_public.amx_available]   # (the CPU-feature queries)

    return thunks(bind, LEAK_LARGE if large else LEAK)
