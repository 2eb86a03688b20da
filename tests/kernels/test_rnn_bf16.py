"""The recurrent kernels' bfloat16 products (cynet.kernels.rnn with bf16=True, the mixed_bfloat16
policy's recurrent layers).

- one step (T = 1: the products' inputs are then x, kernel, h0 and recurrent_kernel only) against
  the float64 kernels fed the bfloat16-rounded values: exact up to float32 accumulation, on every
  bfloat16 path this machine has (AMX-BF16, AVX512_BF16, the emulation, forced with
  set_bf16_path) and the NumPy twin, with sizes that leave tile remainders and K blocks;
- whole sequences forward and backward, every cell, with and without masks and recurrent dropout:
  the compiled kernels against the twin (which rounds the same operands) on every path;
- the rounding happens (bf16 differs from float32) and stays within bfloat16's tolerance;
  float64 arrays with bf16=True are refused.
"""
import contextlib

import numpy as np
import pytest

import cynet.kernels as K
from cynet.kernels import bf16
from cynet.kernels._backend import impl

PATHS = (["emulated"] + (["avx512_bf16"] if bf16.native_available() else [])
         + (["amx"] if bf16.amx_available() else []))
CELLS = ("simple_rnn", "lstm", "gru")
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}


@contextlib.contextmanager
def path(p):
    old = bf16.set_bf16_path(p)
    try:
        yield
    finally:
        bf16.set_bf16_path(old)


def rounded(a):
    return K.round_bf16(np.asarray(a, dtype=np.float32)).astype(np.float64)


def _args(cell, N, T, D, U, seed=0, scale=0.4):
    rng = np.random.default_rng(seed)
    k = GATES[cell]
    f = lambda *s: (rng.standard_normal(s) * scale).astype(np.float32)  # noqa: E731
    bias = f(2, 3 * U) if cell == "gru" else f(k * U)
    return {"x": f(N, T, D), "kernel": f(D, k * U), "recurrent_kernel": f(U, k * U), "bias": bias,
            "h0": f(N, U), **({"c0": f(N, U)} if cell == "lstm" else {})}


def _forward(cell, a, **kw):
    return getattr(K, f"{cell}_forward")(**a, **kw)


def _backward(cell, a, fwd, dhs, **kw):
    common = dict(x=a["x"], kernel=a["kernel"], recurrent_kernel=a["recurrent_kernel"], h0=a["h0"], **kw)
    if cell == "simple_rnn":
        return K.simple_rnn_backward(dhs, hs=fwd, **common)
    if cell == "lstm":
        hs, cs, gates = fwd
        return K.lstm_backward(dhs, None, c0=a["c0"], hs=hs, cs=cs, gates=gates, **common)
    hs, cache = fwd
    return K.gru_backward(dhs, hs=hs, cache=cache, **common)


def _close(got, want, rtol, what):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for i, (g, w) in enumerate(zip(got, want)):
        if w is None:
            assert g is None
            continue
        w = np.asarray(w, dtype=np.float64)
        scale = np.abs(w).max() + 1e-12
        np.testing.assert_allclose(np.asarray(g, dtype=np.float64), w, rtol=0, atol=rtol * scale,
                                   err_msg=f"{what} [item {i}]")


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("p", PATHS)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("N, D, U", [(3, 5, 7), (25, 43, 33), (2, 530, 12), (4, 9, 260)])
def test_one_step_is_the_float64_step_on_rounded_inputs(cell, p, backend, N, D, U):
    """T = 1: every product input (x, kernel, h0, recurrent_kernel) is given, so the float64
    kernels on the rounded values are the exact result; float32 accumulation is the only
    difference allowed. Sizes: tile remainders, a K block boundary in the input projection
    (D = 530 > 512) and in the recurrent product (4 * 260 > 512 for the LSTM's backward)."""
    a = _args(cell, N, 1, D, U, seed=N + D + U)
    if cell == "gru":   # (h0 also enters the GRU's state update, elementwise: given exactly in bfloat16)
        a["h0"] = rounded(a["h0"]).astype(np.float32)
    ref = {k: (rounded(v) if k in ("x", "kernel", "recurrent_kernel", "h0") else v.astype(np.float64))
           for k, v in a.items()}
    with K.use_backend(backend), path(p):
        got = _forward(cell, a, bf16=True)
    want = _forward(cell, ref)
    _close(got, want, 5e-6, f"{cell} {p}")
    plain = _forward(cell, a)
    first = lambda r: r[0] if isinstance(r, tuple) else r  # noqa: E731
    assert not np.array_equal(first(got), first(plain))   # (the rounding did happen)


@pytest.mark.parametrize("p", PATHS)
@pytest.mark.parametrize("dropout", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_compiled_matches_twin_on_every_path(cell, masked, dropout, p):
    """Whole sequences, forward and backward: the compiled kernels on each bfloat16 path against
    the NumPy twin, which rounds the same operands and multiplies in float32 (AMX and vdpbf16ps
    sum in their own orders; the rounding of a state that differs in its last float32 bit may
    differ, so the tolerance is a few float32 ulps of the result's scale, far below bfloat16's)."""
    N, T, D, U = 6, 7, 11, 19
    a = _args(cell, N, T, D, U, seed=3)
    rng = np.random.default_rng(4)
    kw = {}
    if masked:
        kw["mask"] = rng.random((N, T)) > 0.3
    if dropout:
        kw["recurrent_dropout_mask"] = ((rng.random((GATES[cell], N, U)) > 0.25) / 0.75).astype(np.float32)
    dhs = (rng.standard_normal((N, T, U)) * 0.5).astype(np.float32)
    with path(p):
        with K.use_backend("numpy"):
            fwd_t = _forward(cell, a, bf16=True, **kw)
            bwd_t = _backward(cell, a, fwd_t, dhs, bf16=True, **kw)
        fwd_c = _forward(cell, a, bf16=True, **kw)
        bwd_c = _backward(cell, a, fwd_t, dhs, bf16=True, **kw)
    _close(fwd_c, fwd_t, 1e-5, f"{cell} forward {p}")
    _close(bwd_c, bwd_t, 1e-5, f"{cell} backward {p}")


@pytest.mark.parametrize("cell", CELLS)
def test_bf16_is_within_bfloat16_tolerance_of_float32(cell):
    """The same sequence in float32 and with bfloat16 products: close in norm (8 significant bits,
    about 0.4% per rounded operand), and not equal."""
    N, T, D, U = 8, 12, 10, 16
    a = _args(cell, N, T, D, U, seed=5, scale=0.3)
    dhs = np.random.default_rng(6).standard_normal((N, T, U)).astype(np.float32)
    f32, b16 = _forward(cell, a), _forward(cell, a, bf16=True)
    g32 = _backward(cell, a, f32, dhs)
    g16 = _backward(cell, a, b16, dhs, bf16=True)
    first = lambda r: r[0] if isinstance(r, tuple) else r  # noqa: E731
    h32, h16 = first(f32), first(b16)
    assert not np.array_equal(h32, h16)
    assert np.linalg.norm(h16 - h32) <= 2e-2 * np.linalg.norm(h32)
    for x16, x32 in zip(g16, g32):
        assert np.linalg.norm(x16 - x32) <= 3e-2 * np.linalg.norm(x32)


def test_bias_gradient_is_a_float32_sum():
    """dbias is the sum of the float32 gate gradients (a reduction: not rounded to bfloat16)."""
    a = _args("simple_rnn", 5, 4, 3, 6, seed=7)
    rng = np.random.default_rng(8)
    dhs = rng.standard_normal((5, 4, 6)).astype(np.float32)
    hs = K.simple_rnn_forward(**a, activation="linear", bf16=True)
    dx, dk, drk, db, dh0 = K.simple_rnn_backward(dhs, a["x"], a["kernel"], a["recurrent_kernel"], a["h0"], hs,
                                                  activation="linear", bf16=True)
    # linear: dG_t = dhs_t + dh_t; dbias = sum over t and n of dG, which the twin computes in float32
    with K.use_backend("numpy"):
        want = K.simple_rnn_backward(dhs, a["x"], a["kernel"], a["recurrent_kernel"], a["h0"], hs,
                                     activation="linear", bf16=True)[3]
    np.testing.assert_allclose(db, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_float64_with_bf16_is_refused(backend):
    a = _args("lstm", 2, 3, 4, 5)
    a = {k: v.astype(np.float64) for k, v in a.items()}
    with K.use_backend(backend), pytest.raises(ValueError, match="float32"):
        K.lstm_forward(**a, bf16=True)
    with pytest.raises(ValueError, match="float32"):
        impl("rnn").simple_rnn_forward(np.zeros((2, 2, 2)), np.zeros((2, 3)), np.zeros((3, 3)), np.zeros(3),
                                       np.zeros((3, 2)), 1, bf16=0)
