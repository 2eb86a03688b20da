"""Layer and group normalization kernels: Cython == twin (float32, float64), twin == direct
NumPy definition, twin gradients == finite differences, statistics accuracy, threads, errors."""
import os

import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet._kernels import layernorm_numpy as twin
from cynet.testing import assert_twins_close, numerical_gradient

try:
    from cynet._kernels import layernorm as compiled
except ImportError:  # pragma: no cover - only with CYNET_ALLOW_UNCOMPILED
    compiled = None

COMPILED = compiled is not None
if not COMPILED and os.environ.get("CYNET_ALLOW_UNCOMPILED", "") in ("", "0"):  # pragma: no cover
    raise ImportError("cynet._kernels.layernorm is not compiled (set CYNET_ALLOW_UNCOMPILED=1 to skip its tests)")
needs_compiled = pytest.mark.skipif(not COMPILED, reason="compiled layernorm kernel not built")
DTYPES = [np.float32, np.float64]


def case(rng, shape, dtype, offset=0.0, params=True):
    C = shape[-1]
    x = (rng.standard_normal(shape) + offset).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, C).astype(dtype) if params else None
    beta = rng.standard_normal(C).astype(dtype) if params else None
    return x, gamma, beta, rng.standard_normal(shape).astype(dtype)


# ----------------------------------------------------------------------------- direct definitions

def ref_layer_norm(x, gamma, beta, eps, rms=False):
    """Keras 3's formula, in float64."""
    x = x.astype(np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x if rms else x - mean) / np.sqrt(var + eps)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y, mean[..., 0], 1 / np.sqrt(var[..., 0] + eps)


def ref_group_norm(x, groups, gamma, beta, eps):
    x = x.astype(np.float64)
    N, C = x.shape[0], x.shape[-1]
    xg = x.reshape(N, -1, groups, C // groups)
    mean = xg.mean(axis=(1, 3), keepdims=True)
    var = xg.var(axis=(1, 3), keepdims=True)
    y = ((xg - mean) / np.sqrt(var + eps)).reshape(x.shape)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y, mean[:, 0, :, 0], 1 / np.sqrt(var[:, 0, :, 0] + eps)


# ----------------------------------------------------------------------------- Cython == twin

LN_SHAPES = [(1, 1), (3, 5), (7, 16), (5, 31), (4, 32), (6, 33), (3, 257), (19, 300), (2, 3, 64)]


@needs_compiled
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", LN_SHAPES)
@pytest.mark.parametrize("rms", [False, True])
@pytest.mark.parametrize("params", [True, False])
def test_layer_norm_cython_equals_twin(dtype, shape, rms, params):
    rng = np.random.default_rng(hash((shape, rms, params)) % 2 ** 32)
    x, gamma, beta, dy = case(rng, shape, dtype, offset=2.0, params=params)
    outs = {}
    for backend in ("cython", "numpy"):
        with K.use_backend(backend):
            y, mean, inv = K.layer_norm_forward(x, gamma, beta, 1e-3, rms)
            outs[backend] = (y, mean, inv) + K.layer_norm_backward(dy, x, gamma, mean, inv, rms)
    assert_twins_close(outs["cython"], outs["numpy"], dtype)
    assert all(a.dtype == dtype for a in outs["cython"])


GN_CASES = [((2, 8), 2), ((3, 5, 8), 4), ((2, 3, 3, 6), 6), ((2, 4, 4, 12), 1), ((1, 7, 64), 32), ((4, 2, 40), 5)]


@needs_compiled
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,groups", GN_CASES)
@pytest.mark.parametrize("params", [True, False])
def test_group_norm_cython_equals_twin(dtype, shape, groups, params):
    rng = np.random.default_rng(hash((shape, groups, params)) % 2 ** 32)
    x, gamma, beta, dy = case(rng, shape, dtype, offset=-1.0, params=params)
    outs = {}
    for backend in ("cython", "numpy"):
        with K.use_backend(backend):
            y, mean, inv = K.group_norm_forward(x, groups, gamma, beta, 1e-3)
            outs[backend] = (y, mean, inv) + K.group_norm_backward(dy, x, groups, gamma, mean, inv)
    assert_twins_close(outs["cython"], outs["numpy"], dtype)


@needs_compiled
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threads_give_the_twin_result(threads):
    """Row blocks per thread and the per-thread dgamma/dbeta partials: any team gives the result."""
    rng = np.random.default_rng(7)
    x, gamma, beta, dy = case(rng, (2048, 64), np.float64)
    xg, gg, bg, dyg = case(rng, (64, 32, 32), np.float64)
    old_threads = cynet.kernels.get_num_threads()
    from cynet._kernels._openmp import set_thread_policy
    old = set_thread_policy(window=1024)
    try:
        cynet.set_num_threads(threads)
        with K.use_backend("cython"):
            y, m, s = K.layer_norm_forward(x, gamma, beta)
            got = (y, m, s) + K.layer_norm_backward(dy, x, gamma, m, s)
            yg, mg, sg = K.group_norm_forward(xg, 8, gg, bg)
            got_g = (yg, mg, sg) + K.group_norm_backward(dyg, xg, 8, gg, mg, sg)
    finally:
        cynet.set_num_threads(old_threads)
        set_thread_policy(**old)
    with K.use_backend("numpy"):
        y, m, s = K.layer_norm_forward(x, gamma, beta)
        assert_twins_close(got, (y, m, s) + K.layer_norm_backward(dy, x, gamma, m, s), np.float64)
        yg, mg, sg = K.group_norm_forward(xg, 8, gg, bg)
        assert_twins_close(got_g, (yg, mg, sg) + K.group_norm_backward(dyg, xg, 8, gg, mg, sg), np.float64)


# ----------------------------------------------------------------------------- twin == definition

@pytest.mark.parametrize("backend", ["numpy"] + (["cython"] if COMPILED else []))
@pytest.mark.parametrize("rms", [False, True])
def test_layer_norm_forward_matches_definition(backend, rms):
    rng = np.random.default_rng(1)
    x, gamma, beta, _ = case(rng, (4, 3, 10), np.float64, offset=5.0)
    with K.use_backend(backend):
        y, mean, inv = K.layer_norm_forward(x, gamma, beta, 1e-3, rms)
    ry, rmean, rinv = ref_layer_norm(x, gamma, beta, 1e-3, rms)
    np.testing.assert_allclose(y, ry, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mean, rmean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(inv, rinv, rtol=1e-12)
    assert mean.shape == inv.shape == (4, 3)


@pytest.mark.parametrize("backend", ["numpy"] + (["cython"] if COMPILED else []))
def test_group_norm_forward_matches_definition(backend):
    rng = np.random.default_rng(2)
    x, gamma, beta, _ = case(rng, (3, 4, 5, 6), np.float64, offset=-3.0)
    with K.use_backend(backend):
        y, mean, inv = K.group_norm_forward(x, 3, gamma, beta, 1e-3)
    ry, rmean, rinv = ref_group_norm(x, 3, gamma, beta, 1e-3)
    np.testing.assert_allclose(y, ry, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mean, rmean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(inv, rinv, rtol=1e-12)


@pytest.mark.parametrize("rms", [False, True])
@pytest.mark.parametrize("params", [True, False])
def test_layer_norm_twin_gradients(rms, params):
    rng = np.random.default_rng(3)
    x, gamma, beta, dy = case(rng, (3, 7), np.float64, params=params)
    eps = 1e-3

    def loss():
        return float(np.sum(twin.layer_norm_forward(x, gamma, beta, eps, rms)[0] * dy))

    _, mean, inv = twin.layer_norm_forward(x, gamma, beta, eps, rms)
    dx, dgamma, dbeta = twin.layer_norm_backward(dy, x, gamma, mean, inv, rms)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)
    if params:
        np.testing.assert_allclose(dgamma, numerical_gradient(loss, gamma), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(dbeta, numerical_gradient(loss, beta), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_norm_twin_gradients(groups):
    rng = np.random.default_rng(4)
    x, gamma, beta, dy = case(rng, (2, 3, 6), np.float64)

    def loss():
        return float(np.sum(twin.group_norm_forward(x, groups, gamma, beta, 1e-3)[0] * dy))

    _, mean, inv = twin.group_norm_forward(x, groups, gamma, beta, 1e-3)
    dx, dgamma, dbeta = twin.group_norm_backward(dy, x, groups, gamma, mean, inv)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dgamma, numerical_gradient(loss, gamma), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dbeta, numerical_gradient(loss, beta), rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- accuracy, edge cases

@pytest.mark.parametrize("backend", ["numpy"] + (["cython"] if COMPILED else []))
@pytest.mark.parametrize("offset", [1e4, 1e7, -3e5])
def test_float32_statistics_survive_a_large_offset(backend, offset):
    """Float32 rows with a large offset: the statistics stay accurate (no E[x^2] - E[x]^2)."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((8, 300)) * 1.0 + offset).astype(np.float32)
    with K.use_backend(backend):
        _, mean, inv = K.layer_norm_forward(x, None, None, 1e-6)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean, x64.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(inv, 1 / np.sqrt(x64.var(axis=1) + 1e-6), rtol=1e-4)


@pytest.mark.parametrize("backend", ["numpy"] + (["cython"] if COMPILED else []))
def test_float32_huge_values_use_double_squares(backend):
    """|x| ~ 1e30 squares beyond float32: the statistics are still finite and right."""
    x = np.zeros((2, 64), np.float32)
    x[0, 3], x[1, :] = 1e30, np.linspace(-1e25, 1e25, 64)
    with K.use_backend(backend):
        _, mean, inv = K.layer_norm_forward(x, None, None)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(inv, 1 / np.sqrt(x64.var(axis=1) + 1e-3), rtol=1e-5)


@pytest.mark.parametrize("backend", ["numpy"] + (["cython"] if COMPILED else []))
def test_constant_rows_and_nan(backend):
    x = np.full((3, 40), 2.5, np.float32)
    x[2, 7] = np.nan
    with K.use_backend(backend):
        y, mean, inv = K.layer_norm_forward(x, None, None, 1e-3)
    np.testing.assert_array_equal(y[:2], 0.0)
    np.testing.assert_allclose(inv[:2], 1 / np.sqrt(1e-3), rtol=1e-6)
    assert np.isnan(y[2]).all() and np.isnan(mean[2])


def test_public_shapes_and_dtypes():
    x = np.arange(12, dtype=np.int64).reshape(2, 6)     # integers compute in float32
    y, mean, inv = K.layer_norm_forward(x)
    assert y.dtype == mean.dtype == np.float32 and mean.shape == (2,)
    y, mean, inv = K.layer_norm_forward(np.ones(5))     # 1-D: one row
    assert y.shape == (5,) and mean.shape == ()
    dx, dg, db = K.layer_norm_backward(np.ones(5), np.ones(5, np.float32), None, mean, inv)
    assert dx.dtype == np.float64 and dg.shape == (5,)
    y, mean, inv = K.group_norm_forward(np.ones((2, 3, 4), np.float64), 2)
    assert y.dtype == np.float64 and mean.shape == inv.shape == (2, 2)


@pytest.mark.parametrize("call,match", [
    (lambda: K.layer_norm_forward(np.ones((2, 3)), epsilon=0), "epsilon"),
    (lambda: K.layer_norm_forward(np.ones((2, 3)), gamma=np.ones(4)), "gamma"),
    (lambda: K.layer_norm_forward(np.ones((2, 0))), "x"),
    (lambda: K.layer_norm_forward(np.float64(1.0)), "x"),
    (lambda: K.layer_norm_forward(np.ones((2, 3)), rms_scaling="yes"), "rms_scaling"),
    (lambda: K.layer_norm_backward(np.ones((2, 3)), np.ones((2, 3)), None, np.ones(3), np.ones(2)), "mean"),
    (lambda: K.layer_norm_backward(np.ones((2, 4)), np.ones((2, 3)), None, np.ones(2), np.ones(2)), "dy"),
    (lambda: K.layer_norm_backward(np.ones((2, 3)), np.ones((2, 3)), None, np.ones(2), None), "inv_std"),
    (lambda: K.group_norm_forward(np.ones((2, 6)), 4), "groups"),
    (lambda: K.group_norm_forward(np.ones((2, 6)), 0), "groups"),
    (lambda: K.group_norm_forward(np.ones(6), 2), "x"),
    (lambda: K.group_norm_backward(np.ones((2, 6)), np.ones((2, 6)), 3, None, np.ones((2, 2)), np.ones((2, 3))),
     "mean"),
])
def test_bad_arguments(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


@needs_compiled
def test_compiled_functions_check_shapes_themselves():
    """Direct calls of the compiled module (no public validation) still refuse bad shapes."""
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="gamma"):
        compiled.layer_norm_forward(x, np.ones(2), None, 1e-3, False)
    with pytest.raises(ValueError, match="mean"):
        compiled.layer_norm_backward(x, x, None, np.ones(3), np.ones(2), False)
    with pytest.raises(ValueError, match="groups"):
        compiled.group_norm_forward(np.ones((2, 1, 6)), 4, None, None, 1e-3)
    with pytest.raises(ValueError, match="epsilon"):
        compiled.layer_norm_forward(x, None, None, 0.0, False)
