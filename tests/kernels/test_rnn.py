"""Tests of the recurrent kernels (cynet.kernels.rnn): SimpleRNN, LSTM, GRU forward and BPTT.

- the public functions on both backends against a naive per-sample, per-timestep definition
  written directly from the Keras equations;
- every backward output against float64 central differences, for every activation and
  recurrent activation;
- the compiled kernels against the NumPy twin on hand-made and hypothesis-random sizes;
- edge cases (T=1, N=1, no bias, given initial states, dc_last None or given), validation
  errors, dtype handling, non-contiguous inputs, NaN propagation.
"""
import platform
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cynet.kernels as K
from cynet.kernels._backend import impl
from cynet.testing import assert_twins_close, numerical_gradient

CELLS = ("simple_rnn", "lstm", "gru")
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
ACTIVATIONS = ("linear", "tanh", "sigmoid", "relu", "hard_sigmoid")
# (activation, recurrent_activation): every activation and every recurrent activation at least once
ACT_PAIRS = [("tanh", "sigmoid"), ("relu", "hard_sigmoid"), ("sigmoid", "tanh"), ("linear", "linear"),
             ("hard_sigmoid", "relu")]


# ---------------------------------------------------------------------------------------------
# Naive definitions, straight from the equations (float64, one sample and one step at a time)

def _f(name, v):
    if name == "tanh":
        return np.tanh(v)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-v))
    if name == "relu":
        return np.maximum(v, 0.0)
    if name == "hard_sigmoid":
        return np.clip(v / 6.0 + 0.5, 0.0, 1.0)
    assert name == "linear"
    return v


def naive_simple_rnn(x, W, R, b, h0, act):
    N, T, _ = x.shape
    U = R.shape[0]
    hs = np.zeros((N, T, U))
    for n in range(N):
        h = h0[n].astype(np.float64)
        for t in range(T):
            h = _f(act, x[n, t] @ W + h @ R + b)
            hs[n, t] = h
    return hs


def naive_lstm(x, W, R, b, h0, c0, act, ract):
    N, T, _ = x.shape
    U = R.shape[0]
    hs, cs, gates = np.zeros((N, T, U)), np.zeros((N, T, U)), np.zeros((N, T, 4 * U))
    for n in range(N):
        h, c = h0[n].astype(np.float64), c0[n].astype(np.float64)
        for t in range(T):
            z = x[n, t] @ W + h @ R + b
            i, f = _f(ract, z[:U]), _f(ract, z[U:2 * U])
            g, o = _f(act, z[2 * U:3 * U]), _f(ract, z[3 * U:])
            c = f * c + i * g
            h = o * _f(act, c)
            hs[n, t], cs[n, t], gates[n, t] = h, c, np.concatenate([i, f, g, o])
    return hs, cs, gates


def naive_gru(x, W, R, b, h0, act, ract):
    N, T, _ = x.shape
    U = R.shape[0]
    hs, cache = np.zeros((N, T, U)), np.zeros((N, T, 4 * U))
    for n in range(N):
        h = h0[n].astype(np.float64)
        for t in range(T):
            mx = x[n, t] @ W + b[0]
            mh = h @ R + b[1]
            z = _f(ract, mx[:U] + mh[:U])
            r = _f(ract, mx[U:2 * U] + mh[U:2 * U])
            hh = _f(act, mx[2 * U:] + r * mh[2 * U:])
            h = z * h + (1 - z) * hh
            hs[n, t], cache[n, t] = h, np.concatenate([z, r, hh, mh[2 * U:]])
    return hs, cache


# ---------------------------------------------------------------------------------------------
# Helpers

def make_case(cell, N=2, T=3, D=3, U=4, dtype=np.float64, seed=0, use_bias=True, states=True, scale=1.0):
    """Random weights and inputs for `cell`, scaled so that pre-activations stay moderate (linear
    and relu gates are unbounded: long sequences want scale < 1)."""
    rng = np.random.default_rng(seed)
    k = GATES[cell]
    case = {
        "x": rng.standard_normal((N, T, D)),
        "kernel": rng.standard_normal((D, k * U)) * (0.6 * scale),
        "recurrent_kernel": rng.standard_normal((U, k * U)) * (0.5 * scale),
        "bias": (rng.standard_normal((2, 3 * U) if cell == "gru" else (k * U,)) * 0.3) if use_bias else None,
        "h0": rng.standard_normal((N, U)) * 0.5 if states else None,
        "dhs": rng.standard_normal((N, T, U)),
    }
    if cell == "lstm":
        case["c0"] = rng.standard_normal((N, U)) * 0.5 if states else None
        case["dc_last"] = rng.standard_normal((N, U))
    return {key: (None if v is None else v.astype(dtype)) for key, v in case.items()}


def forward(cell, c, act="tanh", ract="sigmoid"):
    if cell == "simple_rnn":
        return (K.simple_rnn_forward(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"], act),)
    if cell == "lstm":
        return K.lstm_forward(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"], c["c0"], act, ract)
    return K.gru_forward(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"], act, ract)


CASE = object()  # "take dc_last from the case"


def backward(cell, c, fwd, act="tanh", ract="sigmoid", dc_last=CASE, compute_dx=True):
    use_bias = c["bias"] is not None
    if cell == "simple_rnn":
        return K.simple_rnn_backward(c["dhs"], c["x"], c["kernel"], c["recurrent_kernel"], c["h0"], fwd[0],
                                     act, use_bias, compute_dx=compute_dx)
    if cell == "lstm":
        dcl = c["dc_last"] if dc_last is CASE else dc_last
        return K.lstm_backward(c["dhs"], dcl, c["x"], c["kernel"], c["recurrent_kernel"], c["h0"], c["c0"],
                               *fwd, act, ract, use_bias, compute_dx=compute_dx)
    return K.gru_backward(c["dhs"], c["x"], c["kernel"], c["recurrent_kernel"], c["h0"], *fwd, act, ract,
                          use_bias, compute_dx=compute_dx)


def naive(cell, c, act="tanh", ract="sigmoid"):
    N, U = c["x"].shape[0], c["recurrent_kernel"].shape[0]
    k = GATES[cell]
    b = c["bias"] if c["bias"] is not None else np.zeros((2, 3 * U) if cell == "gru" else (k * U,))
    h0 = c["h0"] if c["h0"] is not None else np.zeros((N, U))
    args = [a.astype(np.float64) for a in (c["x"], c["kernel"], c["recurrent_kernel"], b, h0)]
    if cell == "simple_rnn":
        return (naive_simple_rnn(*args, act),)
    if cell == "lstm":
        c0 = c["c0"] if c["c0"] is not None else np.zeros((N, U))
        return naive_lstm(*args, c0.astype(np.float64), act, ract)
    return naive_gru(*args, act, ract)


def _scale(act, ract):
    """Weight scale for long twin comparisons: with unbounded (linear, relu) gates an LSTM or GRU
    state can grow double-exponentially; keep it small so both backends compare finite numbers."""
    unbounded = {"linear", "relu"}
    return 0.1 if ract in unbounded else 0.25 if act in unbounded else 0.5


def both_backends(fn):
    out = {}
    for name in ("cython", "numpy"):
        with K.use_backend(name):
            out[name] = fn()
    return out["cython"], out["numpy"]


# ---------------------------------------------------------------------------------------------
# Forward against the naive definition

@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("act,ract", ACT_PAIRS)
def test_forward_matches_naive_definition(backend, cell, act, ract):
    c = make_case(cell, N=3, T=4, D=3, U=5, seed=1)
    got = forward(cell, c, act, ract)
    want = naive(cell, c, act, ract)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_forward_float32_matches_naive(backend, cell):
    c = make_case(cell, N=4, T=7, D=5, U=6, dtype=np.float32, seed=2)
    got = forward(cell, c)
    for g, w in zip(got, naive(cell, c)):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def test_gru_hand_worked_case(backend):
    """One unit, one feature, two steps, computed by hand from the Keras equations."""
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    x = np.array([[[1.0], [-2.0]]])
    W = np.array([[0.5, -1.0, 2.0]])          # z | r | h
    R = np.array([[0.3, 0.7, -0.4]])
    b = np.array([[0.1, 0.2, 0.3], [-0.1, 0.05, 0.6]])
    h = 0.25
    expected = []
    for xt in (1.0, -2.0):
        z = sig(xt * 0.5 + 0.1 + h * 0.3 - 0.1)
        r = sig(xt * -1.0 + 0.2 + h * 0.7 + 0.05)
        hh = np.tanh(xt * 2.0 + 0.3 + r * (h * -0.4 + 0.6))
        h = z * h + (1 - z) * hh
        expected.append(h)
    hs, _ = K.gru_forward(x, W, R, b, h0=np.array([[0.25]]))
    np.testing.assert_allclose(hs[0, :, 0], expected, rtol=1e-13)


def test_lstm_hand_worked_case(backend):
    """One unit: c_1 = f c_0 + i g, h_1 = o tanh(c_1) with known pre-activations."""
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    x = np.array([[[2.0]]])
    W = np.array([[0.1, 0.2, 0.3, 0.4]])      # i | f | c | o
    R = np.array([[1.0, -1.0, 0.5, 2.0]])
    b = np.array([0.0, 1.0, 0.0, -0.5])
    h0, c0 = np.array([[0.5]]), np.array([[-1.0]])
    zi, zf, zc, zo = 0.2 + 0.5, 0.4 - 0.5 + 1.0, 0.6 + 0.25, 0.8 + 1.0 - 0.5
    c1 = sig(zf) * -1.0 + sig(zi) * np.tanh(zc)
    h1 = sig(zo) * np.tanh(c1)
    hs, cs, gates = K.lstm_forward(x, W, R, b, h0, c0)
    np.testing.assert_allclose([hs[0, 0, 0], cs[0, 0, 0]], [h1, c1], rtol=1e-13)
    np.testing.assert_allclose(gates[0, 0], [sig(zi), sig(zf), np.tanh(zc), sig(zo)], rtol=1e-13)


def test_hard_sigmoid_is_keras3(backend):
    """Keras 3 hard_sigmoid = clip(x / 6 + 0.5, 0, 1), visible through a 1-unit linear cell."""
    v = np.array([-4.0, -3.0, -1.5, 0.0, 2.0, 3.0, 5.0])
    x = v.reshape(1, -1, 1)
    hs = K.simple_rnn_forward(x, np.ones((1, 1)), np.zeros((1, 1)), activation="hard_sigmoid")
    np.testing.assert_allclose(hs[0, :, 0], [0, 0, 0.25, 0.5, 5 / 6, 1, 1], rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# Gradients against central differences (float64, N=2, T=3, D=3, U=4)

def _check_gradients(cell, c, act, ract, dc_last=CASE):
    fwd = forward(cell, c, act, ract)
    grads = backward(cell, c, fwd, act, ract, dc_last=dc_last)
    dcl = c.get("dc_last") if dc_last is CASE else dc_last

    def loss():
        out = forward(cell, c, act, ract)
        value = np.sum(out[0] * c["dhs"])
        if cell == "lstm" and dcl is not None:
            value += np.sum(out[1][:, -1] * dcl)
        return value

    names = ["x", "kernel", "recurrent_kernel", "bias", "h0"] + (["c0"] if cell == "lstm" else [])
    assert len(grads) == len(names)
    for name, grad in zip(names, grads):
        if name == "bias" and c["bias"] is None:
            assert grad is None
            continue
        if c[name] is None:  # zero initial state: check against an explicit zero array instead
            continue
        assert grad.shape == c[name].shape and grad.dtype == np.float64, name
        num = numerical_gradient(loss, c[name], eps=1e-6)
        # central differences lose ~1e-16 * |loss| / eps to rounding: scale atol with the gradient
        atol = 1e-8 * max(1.0, np.abs(num).max())
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=atol, err_msg=f"{cell} d{name} ({act}, {ract})")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("act,ract", ACT_PAIRS)
def test_backward_matches_numerical_gradient(backend, cell, act, ract):
    _check_gradients(cell, make_case(cell, seed=3), act, ract)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("N,T", [(1, 1), (2, 1), (1, 4)])
def test_backward_edge_sizes(backend, cell, N, T):
    _check_gradients(cell, make_case(cell, N=N, T=T, seed=4), "tanh", "sigmoid")


@pytest.mark.parametrize("cell", CELLS)
def test_backward_without_bias(backend, cell):
    _check_gradients(cell, make_case(cell, seed=5, use_bias=False), "tanh", "sigmoid")


@pytest.mark.parametrize("cell", CELLS)
def test_backward_zero_initial_states(backend, cell):
    c = make_case(cell, seed=6, states=False)
    _check_gradients(cell, c, "tanh", "sigmoid")
    # the state gradients still come back, as if zeros had been passed explicitly
    grads = backward(cell, c, forward(cell, c))
    N, U = c["x"].shape[0], c["recurrent_kernel"].shape[0]
    z = dict(c, h0=np.zeros((N, U)), **({"c0": np.zeros((N, U))} if cell == "lstm" else {}))
    grads_z = backward(cell, z, forward(cell, z))
    for g, gz in zip(grads, grads_z):
        np.testing.assert_allclose(g, gz, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("cell", CELLS)
def test_backward_without_dx_skips_only_dx(backend, cell):
    c = make_case(cell, seed=8)
    fwd = forward(cell, c)
    full = backward(cell, c, fwd)
    lean = backward(cell, c, fwd, compute_dx=False)
    assert lean[0] is None and full[0] is not None
    for a, b in zip(full[1:], lean[1:]):
        np.testing.assert_array_equal(a, b)


def test_lstm_backward_dc_last_none(backend):
    c = make_case("lstm", seed=7)
    _check_gradients("lstm", c, "tanh", "sigmoid", dc_last=None)
    fwd = forward("lstm", c)
    g_none = backward("lstm", c, fwd, dc_last=None)
    g_zero = backward("lstm", c, fwd, dc_last=np.zeros_like(c["dc_last"]))
    for a, b in zip(g_none, g_zero):
        np.testing.assert_array_equal(a, b)
    g_given = backward("lstm", c, fwd)
    assert not np.allclose(g_given[5], g_none[5])  # dc_last reaches dc0


def test_lstm_dc_last_only(backend):
    """A gradient only on the final cell state (dhs = 0) still flows to every input."""
    c = make_case("lstm", seed=8)
    c["dhs"] = np.zeros_like(c["dhs"])
    _check_gradients("lstm", c, "tanh", "sigmoid")


# ---------------------------------------------------------------------------------------------
# Cython == twin

@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("act,ract", ACT_PAIRS)
def test_cython_equals_twin(dtype, cell, act, ract):
    c = make_case(cell, N=5, T=9, D=7, U=11, dtype=dtype, seed=9, scale=_scale(act, ract))
    got, want = both_backends(lambda: (forward(cell, c, act, ract),
                                       backward(cell, c, forward(cell, c, act, ract), act, ract)))
    assert np.abs(want[0][0]).max() < 100  # a meaningful comparison, not an explosion
    assert_twins_close(got[0], want[0], dtype, err_msg=f"{cell} forward")
    assert_twins_close(got[1], want[1], dtype, err_msg=f"{cell} backward")


@given(cell=st.sampled_from(CELLS), N=st.integers(1, 6), T=st.integers(1, 7), D=st.integers(1, 6),
       U=st.integers(1, 9), act=st.sampled_from(ACTIVATIONS), ract=st.sampled_from(ACTIVATIONS),
       use_bias=st.booleans(), states=st.booleans(), double=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_cython_equals_twin_random(cell, N, T, D, U, act, ract, use_bias, states, double, seed):
    dtype = np.dtype(np.float64 if double else np.float32)
    c = make_case(cell, N=N, T=T, D=D, U=U, dtype=dtype, seed=seed, use_bias=use_bias, states=states,
                  scale=_scale(act, ract))
    got, want = both_backends(lambda: (forward(cell, c, act, ract),
                                       backward(cell, c, forward(cell, c, act, ract), act, ract)))
    for g, w in zip(got[0] + got[1], want[0] + want[1]):
        assert g is None and w is None or g.dtype == w.dtype == dtype
    assert_twins_close(got, want, dtype)


STEP_BATCHES = [1, 2, 3, 4, 5, 6, 8, 16, 24, 25, 32, 37, 48]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("N", STEP_BATCHES)
def test_step_product_tiles_equal_twin(dtype, cell, N):
    """The per-step product (cynet_gemm.h) in every tiling of both schemes: rows (batches of
    whole wide and narrow vectors, a ragged batch padded through its scratch) and columns
    (tiles of 1 to 6 samples); 13 units make the last panel partial for every gate count."""
    c = make_case(cell, N=N, T=4, D=3, U=13, dtype=dtype, seed=N, scale=0.5)
    got, want = both_backends(lambda: (forward(cell, c), backward(cell, c, forward(cell, c))))
    assert_twins_close(got, want, dtype, err_msg=f"{cell} N={N}")


def _cpu_has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return platform.machine() == "x86_64" and {"avx512f", "avx512vl", "avx512bw", "avx512dq"} <= set(flags)


def test_step_product_cases_reach_both_schemes():
    """The cases above run the row scheme, and on an AVX-512 Linux CPU the column scheme too
    (it is chosen for ragged batches: 25 samples on 1024 gate rows)."""
    compiled = pytest.importorskip("cynet._kernels.rnn")
    schemes = {compiled._step_product_scheme(GATES[cell] * 13, N, dt)
               for cell in CELLS for N in STEP_BATCHES for dt in (np.float32, np.float64)}
    schemes |= {compiled._step_product_scheme(13, N, dt) for N in STEP_BATCHES for dt in (np.float32, np.float64)}
    assert "rows" in schemes
    if _cpu_has_avx512() and sys.platform == "linux":
        assert "columns" in schemes
        assert compiled._step_product_scheme(1024, 25, np.float32) == "columns"
        assert compiled._step_product_scheme(1024, 32, np.float32) == "rows"


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("N", [130, 136])
def test_step_product_with_threads_equals_twin(cell_threads_guard, threads, N):
    """With two threads, an LSTM step's 2.1M multiply-adds go to the BLAS's threads, the GRU's
    and SimpleRNN's smaller ones stay on cynet_gemm.h (a ragged batch too). Float64: with 2
    threads the BLAS sums in another order, beyond float32's twin tolerance."""
    K.set_num_threads(threads)
    for cell in CELLS:
        c = make_case(cell, N=N, T=3, D=5, U=64, dtype=np.float64, seed=threads, scale=0.5)
        got, want = both_backends(lambda: (forward(cell, c), backward(cell, c, forward(cell, c))))
        assert_twins_close(got, want, np.float64, err_msg=f"{cell} threads={threads}")


# ---------------------------------------------------------------------------------------------
# One-hot inputs (a character model's): the input projection is a gather of the kernel's rows

def _one_hot_case(cell, dtype, N=5, T=7, D=6, U=9, seed=3):
    c = make_case(cell, N=N, T=T, D=D, U=U, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    c["x"] = np.eye(D, dtype=dtype)[rng.integers(0, D, (N, T))]
    return c


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", CELLS)
def test_one_hot_inputs_gather_the_products_values(dtype, cell):
    """One-hot x takes the gather, which gives exactly the product's values: against the same
    x with one extra 1e-30 (not one-hot, so the product runs; the term vanishes in rounding)
    every output is bit-identical, and both match the twin and the naive definition."""
    c = _one_hot_case(cell, dtype)
    rnn = impl("rnn")
    assert rnn._one_hot_classes(np.ascontiguousarray(c["x"].transpose(2, 1, 0))) is not None
    dense = dict(c, x=c["x"].copy())
    dense["x"][0, 0, (np.argmax(c["x"][0, 0]) + 1) % c["x"].shape[2]] = dtype(1e-30)
    assert rnn._one_hot_classes(np.ascontiguousarray(dense["x"].transpose(2, 1, 0))) is None
    got, plain = forward(cell, c), forward(cell, dense)
    for a, b in zip(got, plain):
        np.testing.assert_array_equal(a, b)
    _, want = both_backends(lambda: forward(cell, c))
    assert_twins_close(got, want, dtype, err_msg=cell)
    np.testing.assert_allclose(got[0], naive(cell, c)[0], rtol=1e-4 if dtype == np.float32 else 1e-10,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("values", ["zero column", "two ones", "a two", "minus one", "one feature"])
def test_one_hot_detection_rejects_other_inputs(values):
    """Only columns holding exactly one 1 and zeros elsewhere are one-hot (D >= 2)."""
    rnn = impl("rnn")
    x = np.zeros((4, 3, 2), dtype=np.float32)
    x[1] = 1
    assert rnn._one_hot_classes(x).tolist() == [1] * 6
    if values == "zero column":
        x[1, 2, 1] = 0
    elif values == "two ones":
        x[3, 0, 0] = 1
    elif values == "a two":
        x[1, 1, 0] = 2
    elif values == "minus one":
        x[1, 0, 1], x[2, 0, 1] = 0, -1
    else:
        x = np.ones((1, 3, 2), dtype=np.float32)
    assert rnn._one_hot_classes(x) is None


@pytest.mark.parametrize("cell", CELLS)
def test_one_hot_inputs_gradients(cell):
    """Gradients with one-hot inputs (the forward's gather) against finite differences."""
    _check_gradients(cell, _one_hot_case(cell, np.float64, N=2, T=3, D=4, U=3), "tanh", "sigmoid")


@pytest.fixture
def cell_threads_guard():
    previous = K.get_num_threads()
    yield
    K.set_num_threads(previous)


def test_cython_equals_twin_benchmark_size():
    """A larger case in the benchmark's proportions, float32 (multi-vector rows, long sequence)."""
    for cell in CELLS:
        c = make_case(cell, N=8, T=30, D=43, U=64, dtype=np.float32, seed=10, scale=0.2)
        got, want = both_backends(lambda: (forward(cell, c), backward(cell, c, forward(cell, c))))
        assert_twins_close(got, want, np.float32, err_msg=cell)


# ---------------------------------------------------------------------------------------------
# Cython == twin at extreme float32 magnitudes: the twin's sigmoid is the kernel's formula,
# 1 / (1 + exp(-x)) with exp's argument capped, so strongly negative gates keep their relative
# digits (sigmoid(-20) = 2.1e-9, not (1 + tanh(-10)) / 2 = 0 in float32) and saturated ones
# sit on the kernel's floor (4.2e-39), not on 0

def sigmoid_outputs(cell, fwd):
    """What the sigmoid produced in a forward result: the LSTM's i|f|o gates, the GRU's z|r,
    a sigmoid SimpleRNN's hidden states."""
    if cell == "lstm":
        U = fwd[2].shape[-1] // 4
        return np.concatenate([fwd[2][..., :2 * U], fwd[2][..., 3 * U:]], axis=-1)
    if cell == "gru":
        return fwd[1][..., :2 * fwd[1].shape[-1] // 4]
    return fwd[0]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("kind", ["strong", "extreme"])
def test_sigmoid_extreme_float32_matches_kernel(cell, kind):
    """strong: inputs x15, pre-activations down to about -60 (sigmoid 1e-26 .. 1e-4); extreme:
    input features scaled 1e20, 1, 1e-20 and 1e10 (saturated gates). The sigmoid outputs agree
    to 1e-4 relative, each on its own; everything else to float32 tolerance of its scale."""
    c = make_case(cell, N=5, T=6, D=4, U=3, dtype=np.float32, seed=3)
    if kind == "strong":
        c["x"] = c["x"] * np.float32(15)
    else:
        c["x"] = (c["x"].astype(np.float64) * np.array([1e20, 1, 1e-20, 1e10])).astype(np.float32)
    act, ract = ("sigmoid", "tanh") if cell == "simple_rnn" else ("tanh", "sigmoid")
    got, want = both_backends(lambda: (forward(cell, c, act, ract),
                                       backward(cell, c, forward(cell, c, act, ract), act, ract)))
    sc, sn = sigmoid_outputs(cell, got[0]), sigmoid_outputs(cell, want[0])
    assert sc.min() < 1e-9 and np.all(sc > 0)             # deep in the tail, never exactly 0
    np.testing.assert_allclose(sn, sc, rtol=1e-4, atol=0, err_msg=f"{cell} {kind} sigmoid outputs")
    for i, (a, b) in enumerate(zip(got[0] + got[1], want[0] + want[1])):
        if a is None:
            continue
        assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max(), err_msg=f"{cell} {kind} {i}")


# ---------------------------------------------------------------------------------------------
# Shapes, dtypes, layouts, special values

@pytest.mark.parametrize("cell", CELLS)
def test_output_shapes_and_dtypes(backend, dtype, cell):
    N, T, D, U = 3, 4, 2, 5
    c = make_case(cell, N=N, T=T, D=D, U=U, dtype=dtype)
    fwd = forward(cell, c)
    assert fwd[0].shape == (N, T, U)
    if cell == "lstm":
        assert fwd[1].shape == (N, T, U) and fwd[2].shape == (N, T, 4 * U)
    if cell == "gru":
        assert fwd[1].shape == (N, T, 4 * U)
    grads = backward(cell, c, fwd)
    k = GATES[cell]
    shapes = [(N, T, D), (D, k * U), (U, k * U), (2, 3 * U) if cell == "gru" else (k * U,), (N, U)]
    shapes += [(N, U)] if cell == "lstm" else []
    assert [g.shape for g in grads] == shapes
    for a in fwd + grads:
        assert a.dtype == dtype


def test_mixed_dtypes_promote_to_float64(backend):
    c = make_case("lstm", dtype=np.float32)
    c["h0"] = c["h0"].astype(np.float64)
    hs, cs, gates = forward("lstm", c)
    assert hs.dtype == cs.dtype == gates.dtype == np.float64


@pytest.mark.parametrize("cell", CELLS)
def test_bias_none_equals_zero_bias(backend, cell):
    c = make_case(cell, use_bias=False)
    U = c["recurrent_kernel"].shape[0]
    z = dict(c, bias=np.zeros((2, 3 * U) if cell == "gru" else (GATES[cell] * U,)))
    for a, b in zip(forward(cell, c), forward(cell, z)):
        np.testing.assert_array_equal(a, b)
    grads = backward(cell, c, forward(cell, c))
    assert grads[3] is None


@pytest.mark.parametrize("cell", CELLS)
def test_views_and_integer_inputs_are_converted(backend, cell):
    c = make_case(cell, N=3, T=5, D=4, U=3)
    want = forward(cell, c)
    # reversed / strided views of the same values
    big = np.zeros((3, 10, 8))
    big[:, ::2, ::2] = c["x"][:, ::-1]
    v = dict(c, x=big[:, ::2, ::2][:, ::-1], kernel=np.asfortranarray(c["kernel"]),
             recurrent_kernel=c["recurrent_kernel"].T.copy().T)
    assert not v["x"].flags.c_contiguous and not v["kernel"].flags.c_contiguous
    for a, b in zip(forward(cell, v), want):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)
    # integer and bool inputs become float32
    ci = dict(c, x=np.arange(3 * 5 * 4).reshape(3, 5, 4) % 3 - 1, kernel=(c["kernel"] > 0),
              recurrent_kernel=c["recurrent_kernel"].astype(np.float32),
              bias=None if c["bias"] is None else c["bias"].astype(np.float32),
              h0=c["h0"].astype(np.float32), **({"c0": c["c0"].astype(np.float32)} if cell == "lstm" else {}))
    got = forward(cell, ci)
    cf = {k: (v if v is None else np.asarray(v, dtype=np.float32)) for k, v in ci.items()}
    want_f = naive(cell, cf)
    assert got[0].dtype == np.float32
    np.testing.assert_allclose(got[0], want_f[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_nan_propagates(backend, cell):
    c = make_case(cell, N=2, T=4)
    c["x"][0, 1, 0] = np.nan
    fwd = forward(cell, c)
    hs = fwd[0]
    assert np.isnan(hs[0, 1:]).all()          # every later state of sample 0 (full recurrent matrices)
    assert np.isfinite(hs[0, 0]).all() and np.isfinite(hs[1]).all()
    grads = backward(cell, c, fwd)
    assert np.isnan(grads[1]).any()           # dkernel sees the NaN
    assert np.isfinite(grads[0][1]).all()     # the other sample's dx does not


@pytest.mark.parametrize("cell", CELLS)
def test_saturated_inputs_stay_finite(backend, dtype, cell):
    c = make_case(cell, N=2, T=3, dtype=dtype)
    c["x"] = (c["x"] * 1e4).astype(dtype)
    fwd = forward(cell, c)
    grads = backward(cell, c, fwd)
    for a in fwd + grads:
        assert np.isfinite(a).all()
    assert np.abs(fwd[0]).max() <= 1  # tanh / sigmoid bounded


def test_inputs_are_not_modified(backend):
    for cell in CELLS:
        c = make_case(cell)
        saved = {k: (None if v is None else v.copy()) for k, v in c.items()}
        fwd = forward(cell, c)
        fwd_saved = [a.copy() for a in fwd]
        backward(cell, c, fwd)
        for k, v in c.items():
            if v is not None:
                np.testing.assert_array_equal(v, saved[k], err_msg=k)
        for a, b in zip(fwd, fwd_saved):
            np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Validation errors (public functions, both backends)

def test_unknown_activation_names_the_argument(backend):
    c = make_case("lstm")
    with pytest.raises(ValueError, match="activation must be one of .* received activation='swish'"):
        forward("lstm", c, act="swish")
    with pytest.raises(ValueError, match="recurrent_activation must be one of .* received recurrent_activation='soft'"):
        forward("lstm", c, ract="soft")
    with pytest.raises(ValueError, match="activation must be one of"):
        K.simple_rnn_forward(c["x"], c["kernel"][:, :4], c["recurrent_kernel"][:, :4], activation=3)
    with pytest.raises(ValueError, match="recurrent_activation must be one of"):
        K.gru_backward(c["dhs"], c["x"], c["kernel"][:, :12], c["recurrent_kernel"][:, :12], None,
                       c["dhs"], np.zeros((2, 3, 16)), recurrent_activation="Sigmoid")


def test_none_activation_means_linear(backend):
    c = make_case("simple_rnn")
    a = K.simple_rnn_forward(c["x"], c["kernel"], c["recurrent_kernel"], activation=None)
    b = K.simple_rnn_forward(c["x"], c["kernel"], c["recurrent_kernel"], activation="linear")
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", CELLS)
def test_shape_errors_name_the_argument(backend, cell):
    c = make_case(cell)  # N=2, T=3, D=3, U=4
    k = GATES[cell]
    bad = [
        (dict(x=c["x"][0]), "x must be 3-dimensional"),
        (dict(x=c["x"][:, :0]), "x must have shape \\(N, T, D\\) with at least one"),
        (dict(x=c["x"][:0]), "x must have shape \\(N, T, D\\) with at least one"),
        (dict(kernel=c["kernel"][None]), "kernel must be 2-dimensional"),
        (dict(kernel=c["kernel"][:2]), "kernel must have shape \\(D, "),
        (dict(kernel=c["kernel"][:, :-1]), "kernel must have shape"),
        (dict(recurrent_kernel=c["recurrent_kernel"][:, :-1]), "recurrent_kernel must have shape \\(units, "),
        (dict(recurrent_kernel=c["recurrent_kernel"][:3]), "recurrent_kernel must have shape"),
        (dict(recurrent_kernel=np.zeros((0, 0))), "recurrent_kernel must have shape"),
        (dict(bias=np.zeros(k * 4 + 1)), "bias must have shape"),
        (dict(h0=np.zeros((2, 5))), "h0 must have shape \\(2, 4\\)"),
        (dict(h0=np.zeros(4)), "h0 must be 2-dimensional"),
    ]
    if cell == "gru":
        bad.append((dict(bias=np.zeros(12)), "bias must have shape \\(2, 12\\)"))
    if cell == "lstm":
        bad.append((dict(c0=np.zeros((3, 4))), "c0 must have shape \\(3, 4\\)|c0 must have shape \\(2, 4\\)"))
    for change, msg in bad:
        with pytest.raises(ValueError, match=msg):
            forward(cell, dict(c, **change))


@pytest.mark.parametrize("cell", CELLS)
def test_backward_shape_errors_name_the_argument(backend, cell):
    c = make_case(cell)
    fwd = forward(cell, c)
    with pytest.raises(ValueError, match="dhs must have shape \\(2, 3, 4\\)"):
        backward(cell, dict(c, dhs=c["dhs"][:, :2]), fwd)
    with pytest.raises(ValueError, match="dhs must be 3-dimensional"):
        backward(cell, dict(c, dhs=c["dhs"][0]), fwd)
    with pytest.raises(ValueError, match="hs must have shape"):
        backward(cell, c, (fwd[0][:, :, :3],) + fwd[1:])
    with pytest.raises(ValueError, match="h0 must have shape"):
        backward(cell, dict(c, h0=np.zeros((1, 4))), fwd)
    with pytest.raises(TypeError, match="use_bias must be a bool"):
        if cell == "simple_rnn":
            K.simple_rnn_backward(c["dhs"], c["x"], c["kernel"], c["recurrent_kernel"], c["h0"], fwd[0],
                                  use_bias="yes")
        elif cell == "lstm":
            K.lstm_backward(c["dhs"], None, c["x"], c["kernel"], c["recurrent_kernel"], None, None, *fwd,
                            use_bias=1)
        else:
            K.gru_backward(c["dhs"], c["x"], c["kernel"], c["recurrent_kernel"], None, *fwd, use_bias=None)
    if cell == "lstm":
        with pytest.raises(ValueError, match="cs must have shape"):
            backward(cell, c, (fwd[0], fwd[1][:, :2], fwd[2]))
        with pytest.raises(ValueError, match="gates must have shape \\(2, 3, 16\\)"):
            backward(cell, c, (fwd[0], fwd[1], fwd[2][..., :12]))
        with pytest.raises(ValueError, match="dc_last must have shape \\(2, 4\\)"):
            backward(cell, c, fwd, dc_last=np.zeros((2, 3)))
        with pytest.raises(ValueError, match="c0 must be 2-dimensional"):
            backward(cell, dict(c, c0=np.zeros((2, 4, 1))), fwd)
        with pytest.raises(ValueError, match="c0 must have shape \\(2, 4\\)"):
            backward(cell, dict(c, c0=np.zeros((4, 2))), fwd)
    if cell == "gru":
        with pytest.raises(ValueError, match="cache must have shape \\(2, 3, 16\\)"):
            backward(cell, c, (fwd[0], fwd[1][..., :12]))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bad", [np.zeros((2, 3, 3), dtype=complex), np.full((2, 3, 3), None, dtype=object),
                                 np.full((2, 3, 3), "a")])
def test_unsupported_dtypes_raise_type_error(backend, cell, bad):
    c = make_case(cell)
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        forward(cell, dict(c, x=bad))
    with pytest.raises(TypeError, match="dhs must be a real numeric array"):
        backward(cell, dict(c, dhs=bad[..., :1].repeat(4, axis=2)), forward(cell, c))


def test_low_level_entry_points_check_shapes(backend):
    """The implementation modules are safe when called directly with inconsistent arrays
    (their layout: x (D, T, N), states (U, N), hs (U, T, N); cs, gates and cache time-major,
    (T, F, N))."""
    mod = impl("rnn")
    f = np.zeros
    x, h0 = f((3, 3, 2)), f((4, 2))           # D=3, T=3, N=2; U=4
    with pytest.raises(ValueError, match="kernel"):
        mod.lstm_forward(x, f((2, 16)), f((4, 16)), f(16), h0, h0, 1, 2)
    with pytest.raises(ValueError, match="recurrent_kernel"):
        mod.gru_forward(x, f((3, 12)), f((4, 11)), f((2, 12)), h0, 1, 2)
    with pytest.raises(ValueError, match="bias"):
        mod.simple_rnn_forward(x, f((3, 4)), f((4, 4)), f(5), h0, 1)
    with pytest.raises(ValueError, match="bias"):
        mod.gru_forward(x, f((3, 12)), f((4, 12)), f((3, 12)), h0, 1, 2)
    with pytest.raises(ValueError, match="h0"):
        mod.simple_rnn_forward(x, f((3, 4)), f((4, 4)), f(4), f((2, 4)), 1)
    with pytest.raises(ValueError, match="c0"):
        mod.lstm_forward(x, f((3, 16)), f((4, 16)), f(16), h0, f((4, 3)), 1, 2)
    with pytest.raises(ValueError, match="activation"):
        mod.simple_rnn_forward(x, f((3, 4)), f((4, 4)), f(4), h0, 7)
    with pytest.raises(ValueError, match="recurrent_activation"):
        mod.lstm_forward(x, f((3, 16)), f((4, 16)), f(16), h0, h0, 1, -1)
    with pytest.raises(ValueError, match="x must have shape"):
        mod.simple_rnn_forward(f((3, 0, 2)), f((3, 4)), f((4, 4)), f(4), h0, 1)
    with pytest.raises(ValueError, match="dhs"):
        mod.gru_backward(f((2, 2, 4)), x, f((3, 12)), f((4, 12)), h0, f((4, 3, 2)), f((3, 16, 2)), 1, 2, True)
    with pytest.raises(ValueError, match="hs"):
        mod.simple_rnn_backward(f((2, 3, 4)), x, f((3, 4)), f((4, 4)), h0, f((4, 3, 3)), 1, True)
    with pytest.raises(ValueError, match="cache"):
        mod.gru_backward(f((2, 3, 4)), x, f((3, 12)), f((4, 12)), h0, f((4, 3, 2)), f((16, 3, 2)), 1, 2, True)
    with pytest.raises(ValueError, match="gates"):
        mod.lstm_backward(f((2, 3, 4)), h0, x, f((3, 16)), f((4, 16)), h0, h0, f((4, 3, 2)), f((3, 4, 2)),
                          f((3, 15, 2)), 1, 2, True)
    with pytest.raises(ValueError, match="cs"):
        mod.lstm_backward(f((2, 3, 4)), h0, x, f((3, 16)), f((4, 16)), h0, h0, f((4, 3, 2)), f((4, 3, 2)),
                          f((3, 16, 2)), 1, 2, True)
    with pytest.raises(ValueError, match="dc_last"):
        mod.lstm_backward(f((2, 3, 4)), f((4, 3)), x, f((3, 16)), f((4, 16)), h0, h0, f((4, 3, 2)),
                          f((3, 4, 2)), f((3, 16, 2)), 1, 2, True)
    # and they run on consistent arrays
    hs = mod.simple_rnn_forward(x, f((3, 4)), f((4, 4)), f(4), h0, 1)
    assert hs.shape == (4, 3, 2) and hs.flags.c_contiguous


# ---------------------------------------------------------------------------------------------
# Masks: a step whose mask is False is skipped, its states carried over (Keras 3's RNN
# semantics), in the compiled kernels and their NumPy twin alike. Checked against a naive
# per-sample definition, against finite differences (float64), and twin against twin.

MASK_BACKENDS = ("cython", "numpy")


def random_mask(N, T, seed=0, p=0.35):
    """Random skips, including a sample with its first steps masked, one with its last steps
    masked and one fully masked row when N allows."""
    rng = np.random.default_rng(seed)
    mask = rng.random((N, T)) >= p
    if N >= 3:
        mask[0, :2] = False
        mask[1, -2:] = False
        mask[2] = False
    return mask


def naive_masked(cell, c, mask, act="tanh", ract="sigmoid"):
    """States of every step, one sample and one step at a time; a masked step keeps h (and c)."""
    x, W, R = c["x"], c["kernel"], c["recurrent_kernel"]
    N, T, _ = x.shape
    U = R.shape[0]
    b = c["bias"]
    hs, cs = np.zeros((N, T, U)), np.zeros((N, T, U))
    for n in range(N):
        h = c["h0"][n].copy()
        cc = c["c0"][n].copy() if cell == "lstm" else None
        for t in range(T):
            if cell == "simple_rnn":
                hn, cn = _f(act, x[n, t] @ W + h @ R + b), None
            elif cell == "lstm":
                z = x[n, t] @ W + h @ R + b
                i, f, g, o = _f(ract, z[:U]), _f(ract, z[U:2 * U]), _f(act, z[2 * U:3 * U]), _f(ract, z[3 * U:])
                cn = f * cc + i * g
                hn = o * _f(act, cn)
            else:
                mx, mh = x[n, t] @ W + b[0], h @ R + b[1]
                z, r = _f(ract, mx[:U] + mh[:U]), _f(ract, mx[U:2 * U] + mh[U:2 * U])
                hn, cn = z * h + (1 - z) * _f(act, mx[2 * U:] + r * mh[2 * U:]), None
            if mask[n, t]:
                h, cc = hn, cn
            hs[n, t] = h
            if cell == "lstm":
                cs[n, t] = cc
    return hs, cs


def forward_masked(cell, c, mask, act="tanh", ract="sigmoid"):
    if cell == "simple_rnn":
        return (K.simple_rnn_forward(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"], act, mask=mask),)
    if cell == "lstm":
        return K.lstm_forward(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"], c["c0"], act, ract,
                              mask=mask)
    return K.gru_forward(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"], act, ract, mask=mask)


def backward_masked(cell, c, fwd, mask, act="tanh", ract="sigmoid"):
    if cell == "simple_rnn":
        return K.simple_rnn_backward(c["dhs"], c["x"], c["kernel"], c["recurrent_kernel"], c["h0"], fwd[0], act,
                                     True, mask=mask)
    if cell == "lstm":
        return K.lstm_backward(c["dhs"], c["dc_last"], c["x"], c["kernel"], c["recurrent_kernel"], c["h0"],
                               c["c0"], *fwd, act, ract, True, mask=mask)
    return K.gru_backward(c["dhs"], c["x"], c["kernel"], c["recurrent_kernel"], c["h0"], *fwd, act, ract, True,
                          mask=mask)


@pytest.mark.parametrize("backend", MASK_BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
def test_masked_forward_matches_naive(backend, cell):
    c = make_case(cell, N=4, T=6, seed=1)
    mask = random_mask(4, 6, seed=2)
    with K.use_backend(backend):
        out = forward_masked(cell, c, mask)
    hs, cs = naive_masked(cell, c, mask)
    np.testing.assert_allclose(out[0], hs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out[0][2], np.broadcast_to(c["h0"][2], hs[2].shape))   # fully masked: h0
    if cell == "lstm":
        np.testing.assert_allclose(out[1], cs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", MASK_BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("act,ract", ACT_PAIRS[:3])
def test_masked_backward_matches_numerical_gradient(backend, cell, act, ract):
    c = make_case(cell, N=4, T=5, seed=3)
    mask = random_mask(4, 5, seed=4)
    with K.use_backend(backend):
        fwd = forward_masked(cell, c, mask, act, ract)
        grads = backward_masked(cell, c, fwd, mask, act, ract)

        def loss():
            out = forward_masked(cell, c, mask, act, ract)
            value = np.sum(out[0] * c["dhs"])
            if cell == "lstm":
                value += np.sum(out[1][:, -1] * c["dc_last"])
            return value

        names = ["x", "kernel", "recurrent_kernel", "bias", "h0"] + (["c0"] if cell == "lstm" else [])
        for name, grad in zip(names, grads):
            num = numerical_gradient(loss, c[name], eps=1e-6)
            atol = 1e-8 * max(1.0, np.abs(num).max())
            np.testing.assert_allclose(grad, num, rtol=1e-6, atol=atol, err_msg=f"{cell} d{name} ({act}, {ract})")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", CELLS)
def test_masked_cython_equals_twin(cell, dtype):
    c = make_case(cell, N=9, T=7, D=5, U=6, seed=5, dtype=dtype)
    mask = random_mask(9, 7, seed=6)
    res = {}
    for backend in MASK_BACKENDS:
        with K.use_backend(backend):
            fwd = forward_masked(cell, c, mask)
            res[backend] = tuple(fwd) + tuple(backward_masked(cell, c, fwd, mask))
    assert_twins_close(res["cython"], res["numpy"], dtype)


@pytest.mark.parametrize("cell", CELLS)
def test_all_true_mask_is_no_mask(cell):
    c = make_case(cell, N=3, T=4, seed=7)
    ones = np.ones((3, 4), dtype=bool)
    for backend in MASK_BACKENDS:
        with K.use_backend(backend):
            a, b = forward_masked(cell, c, ones), forward_masked(cell, c, None)
            for u, v in zip(a, b):
                np.testing.assert_array_equal(u, v)


def test_mask_validation():
    c = make_case("simple_rnn", N=3, T=4)
    args = (c["x"], c["kernel"], c["recurrent_kernel"])
    with pytest.raises(ValueError, match=r"mask must have shape \(3, 4\)"):
        K.simple_rnn_forward(*args, mask=np.ones((4, 3), dtype=bool))
    with pytest.raises(TypeError, match="mask must be a boolean"):
        K.simple_rnn_forward(*args, mask=np.ones((3, 4), dtype=np.float32))
    with K.use_backend("cython"):
        from cynet.kernels._backend import impl
        x = np.zeros((3, 4, 3)); k = np.zeros((3, 2)); rk = np.zeros((2, 2)); b = np.zeros(2); h0 = np.zeros((2, 3))
        with pytest.raises(ValueError, match="mask must have shape"):
            impl("rnn").simple_rnn_forward(x, k, rk, b, h0, 1, np.ones((3, 3), dtype=np.uint8))
