"""bfloat16 product benchmarks (cynet.kernels.matmul_bf16): a (M, K) @ b (K, N), float32 in and
out, both rounded to bfloat16, float32 accumulation. Shapes: kernel_cases/bf16.py (an MLP layer,
a convnet's im2col product, a square 1024 product).

Groups "bf16 matmul <shape>": cynet on each path this CPU has (the compiled backend: amx,
avx512_bf16, emulated; the NumPy twin rounds then multiplies in float32), cynet's float32 product
for scale (np.matmul, OpenBLAS), and PyTorch's bfloat16 matmul of bfloat16 tensors (the
conversion excluded) and float32 matmul.
"""
import contextlib

import numpy as np
import pytest

import cynet.kernels as K
from cynet.kernels import bf16
from kernel_cases import bf16 as cases

PATHS = (["emulated"] + (["avx512_bf16"] if bf16.native_available() else [])
         + (["amx"] if bf16.amx_available() else []))


@pytest.fixture(params=list(cases.BENCH), scope="module")
def case(request):
    M, Kd, N = cases.BENCH[request.param]
    rng = np.random.default_rng(0)
    return request.param, cases.normal(rng, (M, Kd), np.float32), cases.normal(rng, (Kd, N), np.float32)


@contextlib.contextmanager
def _path(p):
    old = bf16.set_bf16_path(p)
    try:
        yield
    finally:
        bf16.set_bf16_path(old)


@pytest.mark.parametrize("path", PATHS)
def test_matmul_bf16(benchmark, backend, case, path):
    name, a, b = case
    if backend == "numpy" and path != "emulated":
        pytest.skip("the NumPy twin has one path")
    benchmark.group = f"bf16 matmul {name}"
    benchmark.extra_info.update(backend=backend, path=path)
    with _path(path):
        c = benchmark(K.matmul_bf16, a, b)
    assert c.shape == (a.shape[0], b.shape[1]) and c.dtype == np.float32


def test_matmul_float32(benchmark, case):
    name, a, b = case
    benchmark.group = f"bf16 matmul {name}"
    benchmark.extra_info["backend"] = "numpy float32"
    assert benchmark(np.matmul, a, b).dtype == np.float32


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_matmul_torch(benchmark, torch, case, dtype):
    name, a, b = case
    benchmark.group = f"bf16 matmul {name}"
    at, bt = (torch.from_numpy(v).to(getattr(torch, dtype)) for v in (a, b))
    benchmark(torch.matmul, at, bt)
