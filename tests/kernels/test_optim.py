"""Fused optimizer update kernels: Cython == twin, twin == the Keras formulas written out,
thread-count independence, and argument errors."""
import os

import numpy as np
import pytest

import cynet
import cynet.kernels as K

try:
    from cynet._kernels import optim as optim_compiled
except ImportError:  # pragma: no cover - only with CYNET_ALLOW_UNCOMPILED
    optim_compiled = None

COMPILED = optim_compiled is not None
if not COMPILED and os.environ.get("CYNET_ALLOW_UNCOMPILED", "") in ("", "0"):  # pragma: no cover
    raise ImportError("cynet._kernels.optim is not compiled (set CYNET_ALLOW_UNCOMPILED=1 to skip its tests)")
needs_compiled = pytest.mark.skipif(not COMPILED, reason="compiled optim kernel not built")

# sizes: empty, one element, odd (vector remainders), several OpenMP chunks plus a remainder
SIZES = [0, 1, 37, (3, 5, 7), 200_003]


def _state(rng, shape, dtype, slots):
    w = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    out = [w, g]
    for name in slots:
        a = rng.standard_normal(shape).astype(dtype)
        out.append(np.abs(a) if name in ("v", "v_hat") else a)
    return out


def _adam_definition(w, g, m, v, v_hat, lr, beta_1, beta_2, eps, t):
    """Keras 3 Adam, float64, from the paper's formulas (t is the 1-based step)."""
    w, g, m, v = (a.astype(np.float64) for a in (w, g, m, v))
    m = m + (g - m) * (1 - beta_1)
    v = v + (g * g - v) * (1 - beta_2)
    if v_hat is not None:
        v_hat = np.maximum(v_hat.astype(np.float64), v)
    alpha = lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
    return w - alpha * m / (np.sqrt(v if v_hat is None else v_hat) + eps), m, v, v_hat


def _adam_args(lr=1e-3, beta_1=0.9, beta_2=0.999, eps=1e-7, t=3):
    alpha = lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
    return (alpha, 1 - beta_1, 1 - beta_2, eps), (lr, beta_1, beta_2, eps, t)


def _run(backend, fn, arrays, *args, **kwargs):
    arrays = [a.copy() for a in arrays]
    with K.use_backend(backend):
        fn(*arrays, *args, **kwargs)
    return arrays


@pytest.mark.parametrize("shape", SIZES)
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_twin_matches_definition(rng, dtype, shape, amsgrad):
    w, g, m, v, v_hat = _state(rng, shape, dtype, ["m", "v", "v_hat"])
    kernel_args, definition_args = _adam_args()
    with K.use_backend("numpy"):
        W, M, V, VH = (a.copy() for a in (w, m, v, v_hat))
        K.adam_update(W, g, M, V, *kernel_args, v_hat=VH if amsgrad else None)
    ew, em, ev, evh = _adam_definition(w, g, m, v, v_hat if amsgrad else None, *definition_args)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(W, ew, **tol)
    np.testing.assert_allclose(M, em, **tol)
    np.testing.assert_allclose(V, ev, **tol)
    if amsgrad:
        np.testing.assert_allclose(VH, evh, **tol)


@needs_compiled
@pytest.mark.parametrize("shape", SIZES)
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_compiled_matches_twin(rng, dtype, shape, amsgrad):
    w, g, m, v, v_hat = _state(rng, shape, dtype, ["m", "v", "v_hat"])
    kernel_args, _ = _adam_args()

    def step(w, m, v, v_hat):
        K.adam_update(w, g, m, v, *kernel_args, v_hat=v_hat if amsgrad else None)

    got = _run("cython", step, [w, m, v, v_hat])
    want = _run("numpy", step, [w, m, v, v_hat])
    tol = dict(rtol=2e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize("shape", SIZES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_twin_matches_definition(rng, dtype, shape, nesterov):
    w, g, mom = _state(rng, shape, dtype, ["momentums"])
    lr, momentum = 0.05, 0.9
    with K.use_backend("numpy"):
        W, MOM = w.copy(), mom.copy()
        K.sgd_momentum_update(W, g, MOM, lr, momentum, nesterov)
    em = momentum * mom.astype(np.float64) - lr * g
    ew = w + (momentum * em - lr * g if nesterov else em)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(MOM, em, **tol)
    np.testing.assert_allclose(W, ew, **tol)


@needs_compiled
@pytest.mark.parametrize("shape", SIZES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_compiled_matches_twin(rng, dtype, shape, nesterov):
    w, g, mom = _state(rng, shape, dtype, ["momentums"])

    def step(w, mom):
        K.sgd_momentum_update(w, g, mom, 0.05, 0.9, nesterov)

    tol = dict(rtol=2e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
    for a, b in zip(_run("cython", step, [w, mom]), _run("numpy", step, [w, mom])):
        np.testing.assert_allclose(a, b, **tol)


@needs_compiled
def test_adam_same_result_on_any_thread_count(rng):
    """Chunks are disjoint: the team size must not change a single bit."""
    w, g, m, v = _state(rng, 300_001, np.float32, ["m", "v"])
    kernel_args, _ = _adam_args()
    results = []
    before = cynet.get_num_threads()
    try:
        for n in (1, 2, 3):
            cynet.set_num_threads(n)
            results.append(_run("cython", lambda *a: K.adam_update(*a[:1], g, *a[1:], *kernel_args), [w, m, v]))
    finally:
        cynet.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_gradient_of_another_dtype_and_layout_is_converted(backend, rng):
    w, m, v = (np.abs(rng.standard_normal((4, 6))).astype(np.float32) for _ in range(3))
    g64 = rng.standard_normal((6, 4)).T                     # float64, Fortran order
    kernel_args, _ = _adam_args()
    W1, M1, V1 = w.copy(), m.copy(), v.copy()
    K.adam_update(W1, g64, M1, V1, *kernel_args)
    W2, M2, V2 = w.copy(), m.copy(), v.copy()
    K.adam_update(W2, np.ascontiguousarray(g64, dtype=np.float32), M2, V2, *kernel_args)
    np.testing.assert_array_equal(W1, W2)


@pytest.mark.parametrize("bad, match", [
    (dict(m=np.zeros(5, np.float32)), "m must have shape \\(4, 4\\)"),
    (dict(v=np.zeros((4, 4), np.float64)), "v must have dtype float32 \\(the variable's"),
    (dict(v=[[0.0] * 4] * 4), "v must be a NumPy array"),
    (dict(m=np.zeros((4, 8), np.float32)[:, ::2]), "m must be C-contiguous"),
    (dict(g=np.zeros(3)), "gradient must have the variable's shape"),
    (dict(g=np.zeros((4, 4), complex)), "gradient must be real"),
    (dict(w=np.zeros((4, 4), np.int64)), "variable must be a float32 or float64 NumPy array"),
    (dict(v_hat=np.zeros((4, 4), np.float16)), "v_hat must have dtype float32"),
])
def test_adam_rejects_bad_arguments(backend, bad, match):
    args = dict(w=np.zeros((4, 4), np.float32), g=np.zeros((4, 4), np.float32), m=np.zeros((4, 4), np.float32),
                v=np.zeros((4, 4), np.float32), v_hat=None)
    args.update(bad)
    with pytest.raises((TypeError, ValueError), match=match):
        K.adam_update(args["w"], args["g"], args["m"], args["v"], 1e-3, 0.1, 0.001, 1e-7, v_hat=args["v_hat"])


def test_read_only_state_is_rejected(backend):
    w = np.zeros(8, np.float32)
    mom = np.zeros(8, np.float32)
    mom.flags.writeable = False
    with pytest.raises(ValueError, match="momentums must be writable"):
        K.sgd_momentum_update(w, np.ones(8, np.float32), mom, 0.1, 0.9)


# ------------------------------------------------------------------------------ Adamax, Lion
def _adamax_definition(w, g, m, u, lr, beta_1, beta_2, eps, t):
    """Keras 3 Adamax (keras/src/optimizers/adamax.py), float64, t the 1-based step."""
    w, g, m, u = (a.astype(np.float64) for a in (w, g, m, u))
    m = m + (g - m) * (1 - beta_1)
    u = np.maximum(beta_2 * u, np.abs(g))
    return w - lr * m / ((1 - beta_1 ** t) * (u + eps)), m, u


def _lion_definition(w, g, m, lr, beta_1, beta_2):
    """Keras 3 Lion (keras/src/optimizers/lion.py), float64."""
    w, g, m = (a.astype(np.float64) for a in (w, g, m))
    return w - lr * np.sign(beta_1 * m + (1 - beta_1) * g), beta_2 * m + (1 - beta_2) * g


ADAMAX = dict(lr=0.01, beta_1=0.9, beta_2=0.999, eps=1e-7, t=3)
LION = dict(lr=0.01, beta_1=0.9, beta_2=0.99)


def _adamax_step(p):
    return lambda w, g, m, u: K.adamax_update(w, g, m, u, p["lr"], 1 - p["beta_1"], p["beta_2"],
                                              1 - p["beta_1"] ** p["t"], p["eps"])


def _lion_step(p):
    return lambda w, g, m: K.lion_update(w, g, m, p["lr"], p["beta_1"], 1 - p["beta_1"], p["beta_2"],
                                         1 - p["beta_2"])


def _tol(dtype, compiled=False):
    if dtype == np.float32:
        return dict(rtol=2e-6 if compiled else 1e-5, atol=1e-6)
    return dict(rtol=1e-13, atol=1e-14) if compiled else dict(rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("shape", SIZES)
def test_adamax_twin_matches_definition(rng, dtype, shape):
    w, g, m, u = _state(rng, shape, dtype, ["m", "v"])
    W, M, U = _run("numpy", lambda *a: _adamax_step(ADAMAX)(a[0], g, a[1], a[2]), [w, m, u])
    for got, want in zip((W, M, U), _adamax_definition(w, g, m, u, **ADAMAX)):
        np.testing.assert_allclose(got, want, **_tol(dtype))


@pytest.mark.parametrize("shape", SIZES)
def test_lion_twin_matches_definition(rng, dtype, shape):
    w, g, m = _state(rng, shape, dtype, ["m"])
    W, M = _run("numpy", lambda *a: _lion_step(LION)(a[0], g, a[1]), [w, m])
    for got, want in zip((W, M), _lion_definition(w, g, m, **LION)):
        np.testing.assert_allclose(got, want, **_tol(dtype))


@needs_compiled
@pytest.mark.parametrize("shape", SIZES)
def test_adamax_and_lion_compiled_match_twin(rng, dtype, shape):
    w, g, m, u = _state(rng, shape, dtype, ["m", "v"])
    u.flat[:1] = np.nan if u.size else u.flat[:1]      # NaN state propagates alike
    adamax = lambda *a: _adamax_step(ADAMAX)(a[0], g, a[1], a[2])   # noqa: E731
    lion = lambda *a: _lion_step(LION)(a[0], g, a[1])               # noqa: E731
    for step, arrays in ((adamax, [w, m, u]), (lion, [w, m])):
        for a, b in zip(_run("cython", step, arrays), _run("numpy", step, arrays)):
            np.testing.assert_allclose(a, b, **_tol(dtype, compiled=True))


@needs_compiled
def test_adamax_and_lion_same_result_on_any_thread_count(rng):
    w, g, m, u = _state(rng, 300_001, np.float32, ["m", "v"])
    results = []
    before = cynet.get_num_threads()
    try:
        for n in (1, 2, 3):
            cynet.set_num_threads(n)
            results.append(_run("cython", lambda *a: _adamax_step(ADAMAX)(a[0], g, a[1], a[2]), [w, m, u])
                           + _run("cython", lambda *a: _lion_step(LION)(a[0], g, a[1]), [w, m]))
    finally:
        cynet.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_adamax_and_lion_reject_bad_arguments(backend):
    w, g = np.zeros((4, 4), np.float32), np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="u must have shape \\(4, 4\\)"):
        K.adamax_update(w, g, np.zeros((4, 4), np.float32), np.zeros(3, np.float32), 0.1, 0.1, 0.9, 0.1, 1e-7)
    with pytest.raises(ValueError, match="variable and m must be separate arrays"):
        K.lion_update(w, g, w, 0.1, 0.9, 0.1, 0.99, 0.01)
    with pytest.raises(TypeError, match="m must have dtype float32"):
        K.lion_update(w, g, np.zeros((4, 4)), 0.1, 0.9, 0.1, 0.99, 0.01)


def _ftrl_definition(w, g, n, z, lr, lr_power, l1, l2, shrinkage, beta):
    """Keras 3 Ftrl (keras/src/optimizers/ftrl.py), float64."""
    w, g, n, z = (a.astype(np.float64) for a in (w, g, n, z))
    l2 = l2 + beta / (2 * lr)
    new_n = n + g * g
    z = z + (g + 2 * shrinkage * w) - (new_n ** -lr_power - n ** -lr_power) / lr * w
    quadratic = new_n ** -lr_power / lr + 2 * l2
    return (np.clip(z, -l1, l1) - z) / quadratic, new_n, z


FTRL = dict(lr=0.1, lr_power=-0.5, l1=0.05, l2=0.01, shrinkage=0.02, beta=0.1)


def _ftrl_step(p):
    two_l2 = 2 * (p["l2"] + p["beta"] / (2 * p["lr"]))
    return lambda w, g, n, z: K.ftrl_update(w, g, n, z, p["lr"], -p["lr_power"], p["l1"], two_l2, 2 * p["shrinkage"])


@pytest.mark.parametrize("shape", SIZES)
@pytest.mark.parametrize("lr_power", [-0.5, -0.7, 0.0])
def test_ftrl_twin_matches_definition_and_compiled_matches_twin(rng, dtype, shape, lr_power):
    w, g, n, z = _state(rng, shape, dtype, ["v", "z"])
    params = dict(FTRL, lr_power=lr_power)
    step = lambda *a: _ftrl_step(params)(a[0], g, a[1], a[2])   # noqa: E731
    W, N, Z = _run("numpy", step, [w, n, z])
    for got, want in zip((W, N, Z), _ftrl_definition(w, g, n, z, **params)):
        np.testing.assert_allclose(got, want, **dict(_tol(dtype), atol=1e-5 if dtype == np.float32 else 1e-12))
    if COMPILED:
        for a, b in zip(_run("cython", step, [w, n, z]), (W, N, Z)):
            np.testing.assert_allclose(a, b, **dict(_tol(dtype, compiled=True), atol=1e-5 if dtype == np.float32
                                                    else 1e-13))
