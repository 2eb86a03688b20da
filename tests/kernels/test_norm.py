"""Batch normalization kernels: Cython == twin, twin == definition, gradients, edge cases, errors."""
import math
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cynet
import cynet.kernels as K
from cynet._kernels import norm_numpy
from cynet.testing import assert_twins_close, numerical_gradient

try:
    from cynet._kernels import norm as norm_compiled
except ImportError:  # pragma: no cover - only with CYNET_ALLOW_UNCOMPILED
    norm_compiled = None

COMPILED = norm_compiled is not None
if not COMPILED and os.environ.get("CYNET_ALLOW_UNCOMPILED", "") in ("", "0"):  # pragma: no cover
    raise ImportError("cynet._kernels.norm is not compiled (set CYNET_ALLOW_UNCOMPILED=1 to skip its tests)")
BACKENDS = ["cython", "numpy"] if COMPILED else ["numpy"]
needs_compiled = pytest.mark.skipif(not COMPILED, reason="compiled norm kernel not built")


@pytest.fixture(params=BACKENDS)
def backend(request):
    with K.use_backend(request.param):
        yield request.param


# ---------------------------------------------------------------------------------------------
# helpers

def make_case(rng, shape, dtype, offset=0.0, scale=1.0, params=True):
    C = shape[-1]
    x = (rng.standard_normal(shape) * scale + offset).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, C).astype(dtype) if params else None
    beta = rng.standard_normal(C).astype(dtype) if params else None
    mm = rng.standard_normal(C).astype(dtype)
    mv = rng.uniform(0.5, 2.0, C).astype(dtype)
    return x, gamma, beta, mm, mv


def run_all(backend, x, gamma, beta, mm, mv, dy, momentum=0.9, epsilon=1e-3):
    """Train fwd (on copies of the moving stats), inference fwd and backward on one backend."""
    with K.use_backend(backend):
        mm1, mv1 = mm.copy(), mv.copy()
        y, mean, inv_std = K.batch_norm_train_forward(x, gamma, beta, mm1, mv1, momentum, epsilon)
        yi = K.batch_norm_inference_forward(x, gamma, beta, mm, mv, epsilon)
        dx, dgamma, dbeta = K.batch_norm_backward(dy, x, gamma, mean, inv_std)
    return y, mean, inv_std, mm1, mv1, yi, dx, dgamma, dbeta


def assert_backends_agree(x, gamma, beta, mm, mv, dy, dtype, **kw):
    if not COMPILED:
        pytest.skip("compiled norm kernel not built")
    got = run_all("cython", x, gamma, beta, mm, mv, dy, **kw)
    want = run_all("numpy", x, gamma, beta, mm, mv, dy, **kw)
    for a, e in zip(got, want):
        assert a.dtype == dtype and e.dtype == dtype
        assert a.shape == e.shape
    assert_twins_close(got, want, dtype)


def ref_forward(x, gamma, beta, epsilon):
    """Definition with naive Python loops over the columns, in float64 (math.fsum)."""
    x2 = np.asarray(x, dtype=np.float64).reshape(-1, x.shape[-1])
    M, C = x2.shape
    mean = np.empty(C)
    var = np.empty(C)
    for c in range(C):
        col = [float(v) for v in x2[:, c]]
        mean[c] = math.fsum(col) / M
        var[c] = math.fsum((v - mean[c]) ** 2 for v in col) / M
    g = np.ones(C) if gamma is None else np.asarray(gamma, np.float64)
    b = np.zeros(C) if beta is None else np.asarray(beta, np.float64)
    inv_std = 1.0 / np.sqrt(var + epsilon)
    y = np.empty_like(x2)
    for i in range(M):
        for c in range(C):
            y[i, c] = g[c] * (x2[i, c] - mean[c]) * inv_std[c] + b[c]
    return y.reshape(x.shape), mean, var, inv_std


# ---------------------------------------------------------------------------------------------
# cython == twin

@pytest.mark.parametrize("shape", [(8, 3), (2, 5, 4, 3), (1, 7), (9, 1), (1, 1), (3, 1, 1, 5), (2, 3, 4, 2, 3)])
@pytest.mark.parametrize("params", [True, False])
def test_backends_agree_hand_cases(dtype, shape, params, rng):
    x, gamma, beta, mm, mv = make_case(rng, shape, dtype, offset=2.0, params=params)
    dy = rng.standard_normal(shape).astype(dtype)
    assert_backends_agree(x, gamma, beta, mm, mv, dy, dtype)


@given(
    lead=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    C=st.integers(1, 20),
    dtype=st.sampled_from([np.float32, np.float64]),
    params=st.booleans(),
    momentum=st.floats(0.0, 1.0),
    epsilon=st.floats(1e-5, 1.0),
    offset=st.sampled_from([0.0, -3.0, 100.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_backends_agree_random(lead, C, dtype, params, momentum, epsilon, offset, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(lead) + (C,)
    x, gamma, beta, mm, mv = make_case(rng, shape, dtype, offset=offset, params=params)
    dy = rng.standard_normal(shape).astype(dtype)
    assert_backends_agree(x, gamma, beta, mm, mv, dy, np.dtype(dtype), momentum=momentum, epsilon=epsilon)


@pytest.mark.parametrize("shape", [(1000, 130), (300, 2, 2, 64), (70000, 1)])
def test_backends_agree_large_and_threaded(dtype, shape, rng):
    """Large enough for several row blocks and chunks; on 1 and 2 threads."""
    x, gamma, beta, mm, mv = make_case(rng, shape, dtype, offset=5.0)
    dy = rng.standard_normal(shape).astype(dtype)
    before = cynet.get_num_threads()
    try:
        for n in (1, 2):
            cynet.set_num_threads(n)
            assert_backends_agree(x, gamma, beta, mm, mv, dy, dtype)
    finally:
        cynet.set_num_threads(before)


@needs_compiled
def test_cython_deterministic_per_thread_count(rng):
    x, gamma, beta, mm, mv = make_case(rng, (4096, 40), np.float32, offset=10.0)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    before = cynet.get_num_threads()
    try:
        results = {}
        for n in (1, 2):
            cynet.set_num_threads(n)
            r1 = run_all("cython", x, gamma, beta, mm, mv, dy)
            r2 = run_all("cython", x, gamma, beta, mm, mv, dy)
            for a, b in zip(r1, r2):
                np.testing.assert_array_equal(a, b)
            results[n] = r1
        assert_twins_close(results[2], results[1], np.float32)
    finally:
        cynet.set_num_threads(before)


# ---------------------------------------------------------------------------------------------
# cython == twin at extreme float32 magnitudes: the twin accumulates as the kernel does (squared
# deviations in float64, about the mean), so 1e20 inputs do not overflow and 1e-20 ones do not
# underflow to subnormal squares

def assert_matches_kernel(actual, expected, rtol=2e-5, err_msg=""):
    """The twin's `actual` against the kernel's `expected`: the same NaNs and infinities, and
    finite entries within rtol of their feature's scale (the largest finite magnitude along
    every axis but the last), so a 1e-20 feature is held to the same relative accuracy as a
    1e20 one; a few subnormal quanta of slack."""
    a, e = np.asarray(actual), np.asarray(expected)
    assert a.shape == e.shape and a.dtype == e.dtype, err_msg
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e), err_msg=f"{err_msg}: NaN positions")
    inf = np.isinf(a) | np.isinf(e)
    np.testing.assert_array_equal(a[inf], e[inf], err_msg=f"{err_msg}: infinities")
    fin = np.isfinite(e)
    mag = np.where(fin, np.abs(e), 0.0)
    scale = mag if e.ndim < 2 else mag.reshape(-1, e.shape[-1]).max(axis=0)
    tiny = 4 * float(np.finfo(e.dtype).smallest_subnormal)
    bound = rtol * np.broadcast_to(scale, e.shape)[fin] + tiny
    err = np.abs(a[fin].astype(np.float64) - e[fin].astype(np.float64))
    i = np.argmax(err / bound) if err.size else 0
    assert np.all(err <= bound), (f"{err_msg}: error / bound {err[i] / bound[i]:.3g} "
                                  f"(kernel {e[fin][i]!r}, twin {a[fin][i]!r})")


def extreme_case(rng, kind, shape):
    """float32 x of one extreme kind, features along the last axis."""
    C = shape[-1]
    x = rng.standard_normal(shape)
    if kind == "huge":                      # squares ~1e40 overflow float32
        x = x * 1e20 + 3e19
    elif kind == "tiny":                    # squares ~1e-44 underflow to float32 subnormals
        x = x * 1e-22
    elif kind == "mixed":                   # per-feature scales from 1e-20 to 1e20, and outliers
        x = x * np.logspace(-20, 20, C)
        flat = x.reshape(-1, C)
        flat[::5, 0] = 1e20                 # a 1e-20 feature with 1e20 outliers
        flat[1::7, -1] = 1e-20
    elif kind == "near_max":                # x - mean itself overflows float32 (+-3e38, mostly +)
        x = np.where(rng.random(shape) < 0.7, 3e38, -3e38) * (1 + 0.01 * np.abs(x))
        x = np.minimum(x, 3.4e38)
    return x.astype(np.float32)


@needs_compiled
@pytest.mark.parametrize("kind", ["huge", "tiny", "mixed", "near_max"])
@pytest.mark.parametrize("shape", [(64, 6), (8, 9, 9, 5)])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_backends_agree_extreme_float32(kind, shape, momentum, rng):
    """Training forward (y, mean, inv_std and the moving statistics), backward through it and
    inference forward: the twin is finite where the kernel is, and as accurate, with epsilon
    small enough (1e-60) that inv_std depends on the variance even for 1e-22 data."""
    x = extreme_case(rng, kind, shape)
    C = shape[-1]
    # for 1e-22 data inv_std is ~1e22 and dx's coefficient gamma inv_std^2 dgamma / M would
    # overflow float32 on both backends: gamma ~1e-20 keeps the backward finite
    gamma = (rng.uniform(0.5, 1.5, C) * (1e-20 if kind == "tiny" else 1.0)).astype(np.float32)
    beta = rng.standard_normal(C).astype(np.float32)
    mm = rng.standard_normal(C).astype(np.float32)
    mv = rng.uniform(0.5, 2.0, C).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    names = ("y", "mean", "inv_std", "moving_mean", "moving_variance", "inference y", "dx", "dgamma", "dbeta")
    with np.errstate(all="ignore"):         # near_max overflows in float32 on both backends
        want = run_all("cython", x, gamma, beta, mm, mv, dy, momentum=momentum, epsilon=1e-60)
        got = run_all("numpy", x, gamma, beta, mm, mv, dy, momentum=momentum, epsilon=1e-60)
    if kind != "near_max":
        assert all(np.all(np.isfinite(w)) for w in want[:3] + want[5:]), "the kernel itself is finite here"
    for name, a, e in zip(names, got, want):
        assert_matches_kernel(a, e, err_msg=f"{kind} {name}")


@needs_compiled
def test_backends_agree_extreme_float32_threaded(rng):
    """The same on a batch-norm shape large enough for several chunks and threads."""
    x = extreme_case(rng, "mixed", (64, 14, 14, 8))
    C = x.shape[-1]
    dy = rng.standard_normal(x.shape).astype(np.float32)
    mm, mv = np.zeros(C, np.float32), np.ones(C, np.float32)
    before = cynet.get_num_threads()
    try:
        for n in (1, 2):
            cynet.set_num_threads(n)
            want = run_all("cython", x, None, None, mm, mv, dy, momentum=0.0, epsilon=1e-60)
            got = run_all("numpy", x, None, None, mm, mv, dy, momentum=0.0, epsilon=1e-60)
            for i, (a, e) in enumerate(zip(got, want)):
                assert_matches_kernel(a, e, err_msg=f"{n} threads, item {i}")
    finally:
        cynet.set_num_threads(before)


def test_extreme_float32_statistics_match_definition(backend, rng):
    """Both backends against float64 statistics of the same float32 data: 1e20 data gives its
    true variance (1e40: inf once rounded to float32, in the moving variance) and a finite
    inv_std, 1e-22 data a variance that float32 squares would have lost."""
    for kind in ("huge", "tiny", "mixed"):
        x = extreme_case(rng, kind, (40, 5))
        x64 = x.astype(np.float64)
        rmean, rvar = x64.mean(axis=0), x64.var(axis=0)
        mm, mv = np.zeros(5, np.float32), np.ones(5, np.float32)
        with np.errstate(over="ignore"):
            y, mean, inv_std = K.batch_norm_train_forward(x, None, None, mm, mv, momentum=0.0, epsilon=1e-60)
            rvar32 = rvar.astype(np.float32)
        np.testing.assert_allclose(mean, rmean, rtol=1e-6, err_msg=kind)
        np.testing.assert_allclose(inv_std, 1 / np.sqrt(rvar + 1e-60), rtol=1e-6, err_msg=kind)
        np.testing.assert_allclose(mv, rvar32, rtol=1e-6,
                                   atol=np.finfo(np.float32).smallest_subnormal, err_msg=kind)
        assert np.all(np.isfinite(y)), kind
        np.testing.assert_allclose(y.std(axis=0, dtype=np.float64), 1, rtol=1e-4, err_msg=kind)


# ---------------------------------------------------------------------------------------------
# against the definition

@pytest.mark.parametrize("shape", [(6, 3), (2, 3, 2, 4), (1, 2), (5, 1)])
@pytest.mark.parametrize("params", [True, False])
def test_train_forward_matches_definition(backend, shape, params, rng):
    x, gamma, beta, mm, mv = make_case(rng, shape, np.float64, offset=1.5, params=params)
    y, mean, inv_std = K.batch_norm_train_forward(x, gamma, beta, mm, mv, 0.9, 1e-3)
    ry, rmean, rvar, rinv = ref_forward(x, gamma, beta, 1e-3)
    np.testing.assert_allclose(mean, rmean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(inv_std, rinv, rtol=1e-12)
    np.testing.assert_allclose(y, ry, rtol=1e-11, atol=1e-12)
    assert y.shape == x.shape and mean.shape == inv_std.shape == (shape[-1],)


def test_hand_worked_case(backend):
    x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0], [7.0, 10.0]])   # mean (4, 10), var (5, 0)
    gamma = np.array([2.0, 3.0])
    beta = np.array([0.5, -1.0])
    mm = np.zeros(2)
    mv = np.ones(2)
    y, mean, inv_std = K.batch_norm_train_forward(x, gamma, beta, mm, mv, momentum=0.5, epsilon=4.0)
    np.testing.assert_allclose(mean, [4.0, 10.0])
    np.testing.assert_allclose(inv_std, [1 / 3, 0.5])
    np.testing.assert_allclose(y[:, 0], 2.0 * (x[:, 0] - 4.0) / 3.0 + 0.5)
    np.testing.assert_allclose(y[:, 1], -1.0)
    np.testing.assert_allclose(mm, [2.0, 5.0])       # 0 * 0.5 + mean * 0.5
    np.testing.assert_allclose(mv, [3.0, 0.5])       # 1 * 0.5 + var * 0.5 (biased var)


def test_moving_statistics_update_over_calls(backend, dtype, rng):
    C = 5
    mm = rng.standard_normal(C).astype(dtype)
    mv = rng.uniform(0.5, 2, C).astype(dtype)
    exp_m = mm.astype(np.float64)
    exp_v = mv.astype(np.float64)
    mm_id, mv_id = id(mm), id(mv)
    momentum = 0.8
    for step in range(4):
        x = (rng.standard_normal((7, 3, C)) * (step + 1) + step).astype(dtype)
        K.batch_norm_train_forward(x, None, None, mm, mv, momentum=momentum)
        x64 = x.astype(np.float64).reshape(-1, C)
        exp_m = exp_m * momentum + x64.mean(axis=0) * (1 - momentum)
        exp_v = exp_v * momentum + x64.var(axis=0) * (1 - momentum)        # biased variance
        if dtype == np.float32:                                             # stored in float32
            exp_m, exp_v = exp_m.astype(np.float32).astype(np.float64), exp_v.astype(np.float32).astype(np.float64)
        tol = 1e-6 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(mm, exp_m, rtol=tol, atol=tol)
        np.testing.assert_allclose(mv, exp_v, rtol=tol, atol=tol)
    assert id(mm) == mm_id and id(mv) == mv_id and mm.dtype == dtype


@pytest.mark.parametrize("momentum", [0.0, 1.0, 0.99])
def test_momentum_extremes(backend, momentum, rng):
    x = rng.standard_normal((10, 4))
    mm, mv = np.full(4, 3.0), np.full(4, 7.0)
    K.batch_norm_train_forward(x, None, None, mm, mv, momentum=momentum)
    np.testing.assert_allclose(mm, 3.0 * momentum + x.mean(0) * (1 - momentum), rtol=1e-12)
    np.testing.assert_allclose(mv, 7.0 * momentum + x.var(0) * (1 - momentum), rtol=1e-12)


@pytest.mark.parametrize("shape", [(6, 3), (2, 4, 4, 3), (1, 1)])
def test_inference_matches_formula(backend, dtype, shape, rng):
    x, gamma, beta, mm, mv = make_case(rng, shape, dtype, offset=1.0)
    y = K.batch_norm_inference_forward(x, gamma, beta, mm, mv, epsilon=1e-2)
    f = lambda a: a.astype(np.float64)  # noqa: E731
    want = f(gamma) * (f(x) - f(mm)) / np.sqrt(f(mv) + 1e-2) + f(beta)
    assert y.dtype == dtype and y.shape == shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol)
    # None parameters mean ones / zeros; the moving stats are not modified
    mm0, mv0 = mm.copy(), mv.copy()
    y0 = K.batch_norm_inference_forward(x, None, None, mm, mv)
    y1 = K.batch_norm_inference_forward(x, np.ones_like(gamma), np.zeros_like(beta), mm, mv)
    np.testing.assert_array_equal(y0, y1)
    np.testing.assert_array_equal(mm, mm0)
    np.testing.assert_array_equal(mv, mv0)


def test_gamma_beta_none_equal_ones_zeros(backend, dtype, rng):
    x, gamma, beta, mm, mv = make_case(rng, (4, 3, 2, 6), dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    a = run_all(backend, x, None, None, mm, mv, dy)
    b = run_all(backend, x, np.ones(6, dtype), np.zeros(6, dtype), mm, mv, dy)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    # center only / scale only
    y, _, _ = K.batch_norm_train_forward(x, None, beta, mm.copy(), mv.copy())
    y2, _, _ = K.batch_norm_train_forward(x, np.ones(6, dtype), beta, mm.copy(), mv.copy())
    np.testing.assert_array_equal(y, y2)
    y, _, _ = K.batch_norm_train_forward(x, gamma, None, mm.copy(), mv.copy())
    y2, _, _ = K.batch_norm_train_forward(x, gamma, np.zeros(6, dtype), mm.copy(), mv.copy())
    np.testing.assert_array_equal(y, y2)


# ---------------------------------------------------------------------------------------------
# edge cases and accuracy

def test_single_row_gives_beta(backend, dtype, rng):
    """M = 1: variance 0, y = beta exactly, everything finite; dx = 0."""
    for shape in [(1, 5), (1, 1, 1, 5)]:
        x, gamma, beta, mm, mv = make_case(rng, shape, dtype, offset=50.0)
        y, mean, inv_std = K.batch_norm_train_forward(x, gamma, beta, mm, mv, epsilon=1e-3)
        np.testing.assert_array_equal(y.reshape(-1), beta)
        np.testing.assert_array_equal(mean, x.reshape(-1))
        np.testing.assert_allclose(inv_std, 1 / np.sqrt(1e-3), rtol=1e-6)
        dx, dgamma, dbeta = K.batch_norm_backward(np.ones_like(x), x, gamma, mean, inv_std)
        assert np.all(np.isfinite(dx)) and np.all(np.isfinite(dgamma))
        np.testing.assert_allclose(dx, 0, atol=1e-6)
        np.testing.assert_array_equal(dbeta, 1)


def test_constant_column(backend, dtype):
    x = np.full((50, 2), 123.25, dtype=dtype)
    x[:, 1] = np.arange(50)
    y, mean, inv_std = K.batch_norm_train_forward(x, None, None, np.zeros(2, dtype), np.ones(2, dtype))
    np.testing.assert_array_equal(y[:, 0], 0)
    assert mean[0] == dtype.type(123.25)


@pytest.mark.parametrize("offset", [1000.0, -5000.0])
def test_large_offset_float32_accuracy(backend, offset, rng):
    """float32 input around `offset` with std 1: statistics as accurate as float32 allows."""
    x = (rng.standard_normal((64, 8, 8, 4)) + offset).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, 4).astype(np.float32)
    beta = rng.standard_normal(4).astype(np.float32)
    mm, mv = np.zeros(4, np.float32), np.ones(4, np.float32)
    y, mean, inv_std = K.batch_norm_train_forward(x, gamma, beta, mm, mv, momentum=0.0)
    x64 = x.astype(np.float64).reshape(-1, 4)
    rmean, rvar = x64.mean(axis=0), x64.var(axis=0)
    ulp = np.spacing(np.float32(abs(offset)))
    np.testing.assert_allclose(mean, rmean, rtol=0, atol=ulp)                # rounding of the mean only
    np.testing.assert_allclose(inv_std, 1 / np.sqrt(rvar + 1e-3), rtol=2e-7)
    np.testing.assert_allclose(mv, rvar, rtol=2e-7)
    ry = gamma * (x64 - rmean) / np.sqrt(rvar + 1e-3) + beta
    np.testing.assert_allclose(y.reshape(-1, 4), ry, rtol=0, atol=2 * ulp)
    # the normalised output has mean ~0 and variance ~1 per feature
    np.testing.assert_allclose(((y.reshape(-1, 4) - beta) / gamma).mean(0), 0, atol=2 * ulp)


def test_large_offset_float64_accuracy(backend, rng):
    """float64 data at 1e8 with std 1: E[x^2] - E[x]^2 would lose every digit here."""
    x = rng.standard_normal((4096, 3)) + 1e8
    _, mean, inv_std = K.batch_norm_train_forward(x, None, None, np.zeros(3), np.ones(3), epsilon=1e-12)
    rvar = np.array([math.fsum((x[:, c] - math.fsum(x[:, c]) / 4096) ** 2) / 4096 for c in range(3)])
    np.testing.assert_allclose(1 / inv_std ** 2, rvar, rtol=1e-7)


@pytest.mark.parametrize("shape", [(100, 1), (1, 1), (2, 2, 1)])
def test_single_feature(backend, dtype, shape, rng):
    x, gamma, beta, mm, mv = make_case(rng, shape, dtype, offset=3.0)
    y, mean, inv_std = K.batch_norm_train_forward(x, gamma, beta, mm, mv)
    ry, rmean, rvar, rinv = ref_forward(x, gamma, beta, 1e-3)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ry, rtol=tol, atol=tol)
    np.testing.assert_allclose(mean, rmean, rtol=tol)


def test_nan_propagates(backend, dtype, rng):
    x, gamma, beta, mm, mv = make_case(rng, (20, 3), dtype)
    x[4, 1] = np.nan
    y, mean, inv_std = K.batch_norm_train_forward(x, gamma, beta, mm, mv)
    assert np.all(np.isnan(y[:, 1])) and np.isnan(mean[1]) and np.isnan(mm[1])
    assert np.all(np.isfinite(y[:, [0, 2]]))
    dx, dgamma, dbeta = K.batch_norm_backward(np.ones_like(x), x, gamma, mean, inv_std)
    assert np.all(np.isnan(dx[:, 1])) and np.all(np.isfinite(dx[:, [0, 2]]))
    yi = K.batch_norm_inference_forward(x, gamma, beta, mm, mv)
    assert np.all(np.isnan(yi[:, 1])) and np.all(np.isfinite(yi[:, 0]))


def test_views_and_conversions(backend, rng):
    base = rng.standard_normal((6, 8, 10))
    views = [base[:, ::2, :], base[::-1], base.transpose(1, 0, 2), base[..., ::-1]]
    for v in views:
        C = v.shape[-1]
        y, mean, inv_std = K.batch_norm_train_forward(v, None, None, np.zeros(C), np.ones(C))
        ry, rmean, _, rinv = ref_forward(np.ascontiguousarray(v), None, None, 1e-3)
        np.testing.assert_allclose(y, ry, rtol=1e-10, atol=1e-12)
        dy = np.ones_like(v)[..., ::-1]                              # a reversed dy view too
        dx, dgamma, dbeta = K.batch_norm_backward(dy, v, None, mean, inv_std)
        np.testing.assert_allclose(dbeta, v.size // C)
        gamma_view = np.ones(2 * C)[::2]
        y2 = K.batch_norm_inference_forward(v, gamma_view, None, mean, np.ones(C)[::-1])
        assert y2.shape == v.shape
    xi = rng.integers(-5, 5, size=(12, 3))
    y, mean, inv_std = K.batch_norm_train_forward(xi, None, None, np.zeros(3, np.float32), np.ones(3, np.float32))
    assert y.dtype == np.float32 and mean.dtype == np.float32
    np.testing.assert_allclose(mean, xi.mean(0), rtol=1e-6)
    xb = np.array([[True, False], [False, False], [True, True]])
    y, mean, _ = K.batch_norm_train_forward(xb, [1, 1], [0, 0], np.zeros(2, np.float32), np.ones(2, np.float32))
    np.testing.assert_allclose(mean, [2 / 3, 1 / 3], rtol=1e-6)
    yl = K.batch_norm_inference_forward([[1, 2], [3, 4]], None, None, [0, 0], [1, 1], epsilon=1e-3)
    assert yl.dtype == np.float32
    # float32 x with float64 gamma: computed in x's dtype
    y, _, _ = K.batch_norm_train_forward(xi.astype(np.float32), np.ones(3), None,
                                         np.zeros(3, np.float32), np.ones(3, np.float32))
    assert y.dtype == np.float32
    # backward: float64 if x or dy is float64
    dx, dgamma, dbeta = K.batch_norm_backward(np.ones((12, 3)), xi.astype(np.float32), None, np.zeros(3, np.float32),
                                              np.ones(3, np.float32))
    assert dx.dtype == dgamma.dtype == dbeta.dtype == np.float64


# ---------------------------------------------------------------------------------------------
# gradients

@pytest.mark.parametrize("shape", [(6, 3), (2, 2, 3, 2), (4, 1), (2, 1)])
@pytest.mark.parametrize("params", [True, False])
def test_backward_numerical_gradient(backend, shape, params, rng):
    x, gamma, beta, mm, mv = make_case(rng, shape, np.float64, offset=0.5, params=params)
    C = shape[-1]
    g = rng.standard_normal(shape)
    gam = gamma if params else np.ones(C)
    bet = beta if params else np.zeros(C)

    def loss():
        y, _, _ = K.batch_norm_train_forward(x, gam, bet, mm.copy(), mv.copy(), 0.9, 1e-3)
        return float(np.sum(y * g))

    y, mean, inv_std = K.batch_norm_train_forward(x, gamma, beta, mm.copy(), mv.copy(), 0.9, 1e-3)
    dx, dgamma, dbeta = K.batch_norm_backward(g, x, gamma, mean, inv_std)
    assert dx.shape == shape and dgamma.shape == dbeta.shape == (C,)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x, 1e-6), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dgamma, numerical_gradient(loss, gam, 1e-6), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dbeta, numerical_gradient(loss, bet, 1e-6), rtol=1e-6, atol=1e-7)


def test_backward_formula(backend, dtype, rng):
    x, gamma, beta, mm, mv = make_case(rng, (5, 4, 3), dtype, offset=2.0)
    dy = rng.standard_normal(x.shape).astype(dtype)
    y, mean, inv_std = K.batch_norm_train_forward(x, gamma, beta, mm, mv)
    dx, dgamma, dbeta = K.batch_norm_backward(dy, x, gamma, mean, inv_std)
    f = lambda a: a.astype(np.float64).reshape(-1, 3)  # noqa: E731
    M = 20
    xhat = (f(x) - f(mean)) * f(inv_std)
    rb = f(dy).sum(0)
    rg = (f(dy) * xhat).sum(0)
    rdx = f(gamma) * f(inv_std) / M * (M * f(dy) - rb - xhat * rg)
    tol = 2e-5 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(dbeta, rb.reshape(-1), rtol=tol, atol=tol)
    np.testing.assert_allclose(dgamma, rg.reshape(-1), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx.reshape(-1, 3), rdx, rtol=tol, atol=tol)
    assert dx.dtype == dgamma.dtype == dbeta.dtype == dtype


# ---------------------------------------------------------------------------------------------
# validation errors (both backends)

def _ok(C=3, dtype=np.float32):
    return np.zeros((4, C), dtype), np.zeros(C, dtype), np.ones(C, dtype)


def test_errors_train_forward(backend):
    x, mm, mv = _ok()
    with pytest.raises(ValueError, match="x must have at least 2 dimensions"):
        K.batch_norm_train_forward(np.zeros(3, np.float32), None, None, mm, mv)
    with pytest.raises(ValueError, match="x must not be empty"):
        K.batch_norm_train_forward(np.zeros((0, 3), np.float32), None, None, mm, mv)
    with pytest.raises(ValueError, match="x must not be empty"):
        K.batch_norm_train_forward(np.zeros((4, 0), np.float32), None, None, mm[:0], mv[:0])
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        K.batch_norm_train_forward(x.astype(np.complex64), None, None, mm, mv)
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        K.batch_norm_train_forward(np.array([["a", "b", "c"]]), None, None, mm, mv)
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\)"):
        K.batch_norm_train_forward(x, np.ones(4), None, mm, mv)
    with pytest.raises(ValueError, match=r"beta must have shape \(3,\)"):
        K.batch_norm_train_forward(x, None, np.ones((3, 1)), mm, mv)
    with pytest.raises(TypeError, match="gamma must be a real numeric array"):
        K.batch_norm_train_forward(x, np.ones(3, complex), None, mm, mv)
    # moving statistics are IN/OUT: never silently copied
    with pytest.raises(TypeError, match="moving_mean must have dtype float32"):
        K.batch_norm_train_forward(x, None, None, mm.astype(np.float64), mv)
    with pytest.raises(TypeError, match="moving_variance must have dtype float64"):
        K.batch_norm_train_forward(x.astype(np.float64), None, None, mm.astype(np.float64), mv)
    with pytest.raises(TypeError, match="moving_mean must be a NumPy array"):
        K.batch_norm_train_forward(x, None, None, [0.0, 0.0, 0.0], mv)
    with pytest.raises(TypeError, match="moving_variance must be a NumPy array"):
        K.batch_norm_train_forward(x, None, None, mm, None)
    with pytest.raises(ValueError, match=r"moving_mean must have shape \(3,\)"):
        K.batch_norm_train_forward(x, None, None, np.zeros(4, np.float32), mv)
    with pytest.raises(ValueError, match=r"moving_variance must have shape \(3,\)"):
        K.batch_norm_train_forward(x, None, None, mm, np.ones((1, 3), np.float32))
    ro = mv.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="moving_variance must be writable"):
        K.batch_norm_train_forward(x, None, None, mm, ro)
    with pytest.raises(ValueError, match="moving_mean must be C-contiguous"):
        K.batch_norm_train_forward(x, None, None, np.zeros(6, np.float32)[::2], mv)
    with pytest.raises(ValueError, match="moving_mean and moving_variance must be separate"):
        K.batch_norm_train_forward(x, None, None, mm, mm)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="momentum must be"):
            K.batch_norm_train_forward(x, None, None, mm, mv, momentum=bad)
    for bad in (True, "0.9", None):
        with pytest.raises(TypeError, match="momentum must be a real number"):
            K.batch_norm_train_forward(x, None, None, mm, mv, momentum=bad)
    for bad in (0.0, -1e-3, float("inf")):
        with pytest.raises(ValueError, match="epsilon must be"):
            K.batch_norm_train_forward(x, None, None, mm, mv, epsilon=bad)
    # nothing was updated by the failing calls
    np.testing.assert_array_equal(mm, 0)
    np.testing.assert_array_equal(mv, 1)


def test_errors_inference_forward(backend):
    x, mm, mv = _ok()
    with pytest.raises(ValueError, match="x must have at least 2 dimensions"):
        K.batch_norm_inference_forward(np.float32(1.0), None, None, mm, mv)
    with pytest.raises(ValueError, match="x must not be empty"):
        K.batch_norm_inference_forward(np.zeros((2, 0, 3)), None, None, mm, mv)
    with pytest.raises(ValueError, match=r"moving_mean must have shape \(3,\)"):
        K.batch_norm_inference_forward(x, None, None, np.zeros(2), mv)
    with pytest.raises(ValueError, match=r"moving_variance must have shape \(3,\)"):
        K.batch_norm_inference_forward(x, None, None, mm, np.ones((3, 3)))
    with pytest.raises(TypeError, match="moving_mean and moving_variance are required"):
        K.batch_norm_inference_forward(x, None, None, None, mv)
    with pytest.raises(TypeError, match="moving_variance must be a real numeric array"):
        K.batch_norm_inference_forward(x, None, None, mm, np.array([object()] * 3))
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        K.batch_norm_inference_forward(x, None, None, mm, mv, epsilon=0)
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        K.batch_norm_inference_forward(x.astype(complex), None, None, mm, mv)


def test_errors_backward(backend):
    x, mm, mv = _ok()
    with pytest.raises(ValueError, match=r"dy must have x's shape \(4, 3\)"):
        K.batch_norm_backward(np.zeros((4, 2)), x, None, mm, mv)
    with pytest.raises(ValueError, match="x must have at least 2 dimensions"):
        K.batch_norm_backward(np.zeros(3), np.zeros(3), None, mm, mv)
    with pytest.raises(ValueError, match="x must not be empty"):
        K.batch_norm_backward(np.zeros((0, 3)), np.zeros((0, 3)), None, mm, mv)
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\)"):
        K.batch_norm_backward(x, x, np.ones(2), mm, mv)
    with pytest.raises(ValueError, match=r"mean must have shape \(3,\)"):
        K.batch_norm_backward(x, x, None, np.zeros(4), mv)
    with pytest.raises(ValueError, match=r"inv_std must have shape \(3,\)"):
        K.batch_norm_backward(x, x, None, mm, np.ones(1))
    with pytest.raises(TypeError, match="mean and inv_std are required"):
        K.batch_norm_backward(x, x, None, None, mv)
    with pytest.raises(TypeError, match="dy must be a real numeric array"):
        K.batch_norm_backward(x.astype(complex), x, None, mm, mv)


# ---------------------------------------------------------------------------------------------
# the low-level entry points are safe when called directly

def _low_level_modules():
    mods = [norm_numpy]
    if COMPILED:
        mods.append(norm_compiled)
    return mods


@pytest.mark.parametrize("mod", _low_level_modules(), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_low_level_direct_calls(mod):
    x = np.ones((4, 3))
    mm, mv = np.zeros(3), np.ones(3)
    y, mean, inv_std = mod.batch_norm_train_forward(x, None, None, mm, mv, 0.9, 1e-3)
    np.testing.assert_array_equal(y, 0)
    with pytest.raises(ValueError):
        mod.batch_norm_train_forward(np.ones((0, 3)), None, None, mm, mv, 0.9, 1e-3)
    with pytest.raises(ValueError):
        mod.batch_norm_train_forward(x, np.ones(4), None, mm, mv, 0.9, 1e-3)
    with pytest.raises(ValueError):
        mod.batch_norm_train_forward(x, None, None, np.zeros(2), mv, 0.9, 1e-3)
    with pytest.raises(ValueError):
        mod.batch_norm_train_forward(x, None, None, mm, mv, 2.0, 1e-3)
    with pytest.raises(ValueError):
        mod.batch_norm_train_forward(x, None, None, mm, mv, 0.9, 0.0)
    ro = mv.copy()
    ro.flags.writeable = False
    with pytest.raises((ValueError, TypeError)):
        mod.batch_norm_train_forward(x, None, None, mm, ro, 0.9, 1e-3)
    with pytest.raises((ValueError, TypeError)):
        mod.batch_norm_train_forward(x, None, None, mm.astype(np.float32), mv, 0.9, 1e-3)
    with pytest.raises(ValueError):
        mod.batch_norm_inference_forward(np.ones((2, 0)), None, None, mm[:0], mv[:0], 1e-3)
    with pytest.raises(ValueError):
        mod.batch_norm_inference_forward(x, None, None, mm, np.ones(5), 1e-3)
    with pytest.raises(ValueError):
        mod.batch_norm_backward(np.ones((4, 2)), x, None, mean, inv_std)
    with pytest.raises(ValueError):
        mod.batch_norm_backward(x, x, None, np.zeros(7), inv_std)
    with pytest.raises((ValueError, TypeError)):
        mod.batch_norm_backward(x, np.ones(3), None, mean, inv_std)
