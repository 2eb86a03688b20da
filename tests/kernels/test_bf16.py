"""The bfloat16 products of the mixed_bfloat16 policy (cynet.kernels.bf16, cynet_bf16.h).

round_bf16 against a direct definition (the nearest bfloat16 by exact rational arithmetic in
float64, ties to even; NaN and Inf kept); matmul_bf16 against a float64 product of the rounded
inputs (the only difference allowed: float32 accumulation) on every path this machine has
(native AVX512_BF16, the emulation forced with set_bf16_path("emulated"), the NumPy twin), with
the sizes of every tile remainder, K blocks, strided / transposed / broadcast operands; the
native and emulated paths agree bit for bit on normal numbers (vdpbf16ps's order)."""
import contextlib

import numpy as np
import pytest

import cynet.kernels as K
from cynet.kernels import bf16

PATHS = (["emulated"] + (["avx512_bf16"] if bf16.native_available() else [])
         + (["amx"] if bf16.amx_available() else []))


@contextlib.contextmanager
def path(p):
    old = bf16.set_bf16_path(p)
    try:
        yield
    finally:
        bf16.set_bf16_path(old)


def nearest_bf16(x):
    """The direct definition: of the two bfloat16 values around x (float64 arithmetic, exact for
    these), the nearer one; on a tie the one whose last mantissa bit is 0."""
    out = np.empty_like(x, dtype=np.float64)
    for i, v in enumerate(np.asarray(x, dtype=np.float32).ravel()):
        if np.isnan(v) or np.isinf(v) or v == 0:
            out.flat[i] = v
            continue
        bits = int(np.float32(v).view(np.uint32))
        lo_bits = bits & 0xffff0000
        lo = float(np.uint32(lo_bits).view(np.float32))
        hi = float(np.uint32(lo_bits + 0x10000).view(np.float32))   # next bfloat16 away from 0 (may be Inf)
        d_lo, d_hi = abs(float(v) - lo), abs(hi - float(v)) if np.isfinite(hi) else np.inf
        if np.isinf(hi):   # above the largest bfloat16: overflow to Inf at the midpoint (IEEE)
            big = float(np.uint32(lo_bits).view(np.float32))
            ulp = big - float(np.uint32(lo_bits - 0x10000).view(np.float32))
            d_hi = abs(big + ulp - float(v))
            hi = np.copysign(np.inf, v)
        if d_lo < d_hi or (d_lo == d_hi and not (lo_bits >> 16) & 1):
            out.flat[i] = lo
        else:
            out.flat[i] = hi
    return out


def test_round_matches_the_definition():
    rng = np.random.default_rng(0)
    x = np.concatenate([
        rng.standard_normal(2000).astype(np.float32) * 10.0 ** rng.integers(-30, 30, 2000),
        np.array([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -9, -(1 + 2 ** -8), 3.0e38, 3.4e38, -3.4e38,
                  np.finfo(np.float32).max, 1e-40, -1e-42, 0.0, -0.0, np.inf, -np.inf], dtype=np.float32),
        (np.arange(0, 1 << 16, 7, dtype=np.uint32) | np.uint32(0x3f800000)).view(np.float32),  # every low half
    ])
    want = nearest_bf16(x)
    for backend in ("cython", "numpy"):
        with K.use_backend(backend):
            got = K.round_bf16(x)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got.astype(np.float64), want, err_msg=backend)
        assert np.signbit(got[x == 0]).tolist() == np.signbit(x[x == 0]).tolist()


def test_round_keeps_nan():
    x = np.array([np.nan, -np.nan], dtype=np.float32)
    x = np.concatenate([x, np.array([0x7f800001, 0xffc00001, 0x7fff0000], dtype=np.uint32).view(np.float32)])
    for backend in ("cython", "numpy"):
        with K.use_backend(backend):
            assert np.isnan(K.round_bf16(x)).all()


def _reference(a, b):
    return K.round_bf16(a).astype(np.float64) @ K.round_bf16(b).astype(np.float64)


def _tolerance(a, b):
    """float32 accumulation: a few units in the last place of the sum of |terms| (K terms)."""
    mag = np.abs(K.round_bf16(a)).astype(np.float64) @ np.abs(K.round_bf16(b)).astype(np.float64)
    return 4 * a.shape[-1] * np.finfo(np.float32).eps * mag + 1e-30


SIZES = [(1, 1, 1), (1, 2, 1), (11, 3, 31), (12, 7, 32), (13, 8, 33), (25, 17, 16), (97, 5, 65),
         (3, 513, 2), (40, 1030, 7), (200, 33, 513), (7, 1, 600)]


@pytest.mark.parametrize("p", PATHS)
@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_matmul_against_float64(p, backend):
    rng = np.random.default_rng(1)
    for M, Kd, N in SIZES:
        a = rng.standard_normal((M, Kd)).astype(np.float32)
        b = rng.standard_normal((Kd, N)).astype(np.float32)
        with path(p), K.use_backend(backend):
            c = K.matmul_bf16(a, b)
        assert c.dtype == np.float32 and c.shape == (M, N)
        assert (np.abs(c - _reference(a, b)) <= _tolerance(a, b)).all(), (M, Kd, N)


def test_rounding_happens_before_the_product():
    """The products see rounded inputs: 1 + 2^-9 (rounds to 1) times 1 is 1, not 1 + 2^-9."""
    a = np.full((3, 4), 1 + 2 ** -9, dtype=np.float32)
    b = np.ones((4, 5), dtype=np.float32)
    for p in PATHS:
        with path(p):
            np.testing.assert_array_equal(K.matmul_bf16(a, b), 4.0)


@pytest.mark.skipif(not bf16.native_available(), reason="no AVX512_BF16 on this CPU")
def test_native_and_emulated_agree_bit_for_bit():
    rng = np.random.default_rng(2)
    for M, Kd, N in SIZES:
        a = rng.standard_normal((M, Kd)).astype(np.float32)
        b = rng.standard_normal((Kd, N)).astype(np.float32)
        with path("avx512_bf16"):
            n = K.matmul_bf16(a, b)
        with path("emulated"):
            e = K.matmul_bf16(a, b)
        np.testing.assert_array_equal(n, e)


@pytest.mark.parametrize("p", PATHS)
def test_strided_transposed_and_batched_operands(p):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((50, 37)).astype(np.float32)
    b = rng.standard_normal((29, 50)).astype(np.float32)
    with path(p):
        cases = [(a.T, b.T), (a[::2, ::3].T, b[::-1, :25].T), (a.T.astype(np.float64), b.T),
                 (np.asfortranarray(a.T), b.T.copy())]
        for x, y in cases:
            got = K.matmul_bf16(x, y)
            ref = _reference(np.asarray(x, np.float32), np.asarray(y, np.float32))
            assert np.abs(got - ref).max() <= _tolerance(np.asarray(x, np.float32), np.asarray(y, np.float32)).max()
        q = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
        k = rng.standard_normal((3, 8, 10)).astype(np.float32)   # broadcast over the first axis
        got = K.matmul_bf16(q, k)
        ref = np.matmul(K.round_bf16(q).astype(np.float64), K.round_bf16(k).astype(np.float64))
        assert got.shape == (2, 3, 9, 10)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_empty_and_bad_shapes():
    z = K.matmul_bf16(np.ones((3, 0), np.float32), np.ones((0, 4), np.float32))
    np.testing.assert_array_equal(z, np.zeros((3, 4)))
    assert K.matmul_bf16(np.ones((0, 2)), np.ones((2, 4))).shape == (0, 4)
    with pytest.raises(ValueError, match="b must have shape"):
        K.matmul_bf16(np.ones((3, 2)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="2-dimensional"):
        K.matmul_bf16(np.ones(3), np.ones((3, 4)))
    with pytest.raises(ValueError, match="broadcast"):
        K.matmul_bf16(np.ones((2, 3, 2)), np.ones((3, 2, 4)))
    with pytest.raises(TypeError):
        K.matmul_bf16(np.ones((2, 2), complex), np.ones((2, 2)))


def test_info_names_the_path():
    with path("emulated"):
        assert K.info()["bf16"] == "emulated"
    want = ("native amx_bf16" if bf16.amx_available() else "native avx512_bf16" if bf16.native_available()
            else "emulated")
    assert K.info()["bf16"] == want
    with pytest.raises(ValueError, match="path must be"):
        bf16.set_bf16_path("fast")


def test_env_var_forces_the_emulation():
    import subprocess
    import sys
    # -P: the cynet on sys.path / PYTHONPATH (the installed one in CI), never the checkout's sources
    out = subprocess.run([sys.executable, "-P", "-c", "import cynet.kernels as K; print(K.info()['bf16'])"],
                         capture_output=True, text=True, env={**__import__("os").environ, "CYNET_BF16": "emulated"})
    assert out.stdout.strip() == "emulated", out.stderr
