"""cynet_gemm.h's products (through cynet._kernels._gemm) against np.matmul.

The entries are small integers, so every product and sum is exact in float32 as in float64 and the
comparison is exact: a wrong tile, a lost remainder or a stray row shows as a wrong value. The sizes
cover every tile width of both schemes (float: vectors of 8 and 16, double: 4 and 8; 6-row panels)
with all remainders, and M, N, K = 1.
"""
import os

import numpy as np
import pytest

try:
    from cynet._kernels import _gemm
except ImportError:  # pragma: no cover - only with CYNET_ALLOW_UNCOMPILED
    _gemm = None
    if os.environ.get("CYNET_ALLOW_UNCOMPILED", "") in ("", "0"):
        raise

pytestmark = pytest.mark.skipif(_gemm is None, reason="cynet._kernels._gemm is not compiled")

DTYPES = [np.float32, np.float64]
MS = [1, 2, 5, 6, 7, 12, 13, 31]
NS = list(range(1, 35)) + [47, 48, 64, 65]
KS = [1, 3, 17]


def _ints(rng, shape, dtype):
    return rng.integers(-3, 4, size=shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("packed", [False, True], ids=["strided", "packed"])
def test_matches_matmul_every_size(dtype, packed):
    rng = np.random.default_rng(0)
    for M in MS:
        for K in KS:
            A = _ints(rng, (M, K), dtype)
            for N in NS:
                B = _ints(rng, (K, N), dtype)
                C = _gemm.gemm(A, B, packed=packed)
                assert C.dtype == dtype and C.shape == (M, N)
                np.testing.assert_array_equal(C, A @ B, err_msg=f"M={M} K={K} N={N}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("packed", [False, True], ids=["strided", "packed"])
def test_strided_operands(dtype, packed):
    """A transposed or sliced with steps is read in place; B and out with row strides of their own;
    nothing outside out's view is written."""
    rng = np.random.default_rng(1)
    for M, K, N in [(7, 5, 9), (13, 17, 33), (1, 1, 1), (6, 64, 16), (25, 3, 5)]:
        base = _ints(rng, (2 * K + 1, 3 * M + 2), dtype)
        A = base[::2, ::3][:K, :M].T                       # (M, K), both strides non-unit
        assert A.shape == (M, K)
        Bbase = _ints(rng, (K, N + 7), dtype)
        B = Bbase[:, 3:3 + N]                              # row stride N + 7
        big = np.full((M, N + 5), np.nan, dtype=dtype)
        out = big[:, 2:2 + N]
        C = _gemm.gemm(A, B, out=out, packed=packed)
        assert C is out
        np.testing.assert_array_equal(out, A @ B)
        assert np.isnan(big[:, :2]).all() and np.isnan(big[:, 2 + N:]).all()
        At = np.ascontiguousarray(A.T).T                   # column-major A: sa 1, sk M
        np.testing.assert_array_equal(_gemm.gemm(At, B, packed=packed), A @ B)


@pytest.mark.parametrize("dtype", DTYPES)
def test_random_values_close(dtype):
    rng = np.random.default_rng(2)
    A = rng.standard_normal((37, 129)).astype(dtype)
    B = rng.standard_normal((129, 45)).astype(dtype)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    for packed in (False, True):
        np.testing.assert_allclose(_gemm.gemm(A, B, packed=packed), A @ B, rtol=tol, atol=tol)


def test_bad_arguments():
    a = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="B must have shape"):
        _gemm.gemm(a, np.ones((5, 2), np.float32))
    with pytest.raises(ValueError, match="unit column stride"):
        _gemm.gemm(a, np.ones((4, 4), np.float32)[:, ::2])
    with pytest.raises(ValueError, match="out must have shape"):
        _gemm.gemm(a, np.ones((4, 2), np.float32), out=np.empty((3, 3), np.float32))
    with pytest.raises(ValueError, match="M, K and N"):
        _gemm.gemm(np.ones((0, 4), np.float32), np.ones((4, 2), np.float32))
    assert _gemm.scheme(1024, 25, np.float32) in ("rows", "columns")
