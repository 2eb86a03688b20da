"""Activation and loss kernels: compiled == twin, twin == direct definition, gradients, stability."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cynet.kernels as K
from cynet.kernels._backend import impl
from cynet.testing import assert_twins_close, numerical_gradient

BACKENDS = ("cython", "numpy")
ELEMENTWISE = ("relu", "leaky_relu", "elu", "sigmoid", "tanh")


def both(fn, *args, **kwargs):
    """fn(*args) on the compiled backend and on the twin."""
    out = []
    for name in BACKENDS:
        with K.use_backend(name):
            out.append(fn(*args, **kwargs))
    return out


def fwd(op, x, **kw):
    return getattr(K, f"{op}_forward")(x, **kw)


def bwd(op, dy, x, y, **kw):
    """The backward of `op` with the arguments its signature takes."""
    if op in ("relu", "sigmoid", "tanh"):
        return getattr(K, f"{op}_backward")(dy, y)
    if op == "leaky_relu":
        return K.leaky_relu_backward(dy, x, **kw)
    if op == "elu":
        return K.elu_backward(dy, x, y, **kw)
    if op == "softmax":
        return K.softmax_backward(dy, y, **kw)
    raise AssertionError(op)


@pytest.fixture
def no_fp_warnings():
    """NumPy floating-point overflow / invalid / divide are errors, and so is any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            yield


# ---------------------------------------------------------------------------------------------
# Direct definitions (float64, naive loops over Python floats).

def ref_softmax_rows(z):
    out = np.empty_like(z, dtype=np.float64)
    for i, row in enumerate(z.tolist()):
        m = max(row)
        e = [math.exp(v - m) for v in row]
        s = sum(e)
        out[i] = [v / s for v in e]
    return out


def ref_log_softmax_rows(z):
    out = np.empty_like(z, dtype=np.float64)
    for i, row in enumerate(z.tolist()):
        m = max(row)
        lse = m + math.log(sum(math.exp(v - m) for v in row))
        out[i] = [v - lse for v in row]
    return out


def ref_sce(z, t):
    """Per-row -sum(t * log_softmax(z)) and its gradient softmax * sum(t) - t, by loops."""
    ls = ref_log_softmax_rows(z)
    p = ref_softmax_rows(z)
    n, k = z.shape
    loss = np.array([-sum(t[i, j] * ls[i, j] for j in range(k)) for i in range(n)])
    grad = np.array([[p[i, j] * sum(t[i]) - t[i, j] for j in range(k)] for i in range(n)])
    return loss, grad


def ref_elementwise(op, x, slope=0.2, alpha=1.0):
    def one(v):
        if op == "relu":
            return v if v > 0 else 0.0
        if op == "leaky_relu":
            return v if v > 0 else slope * v
        if op == "elu":
            return v if v > 0 else alpha * (math.exp(v) - 1.0)
        if op == "sigmoid":
            return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))
        if op == "tanh":
            return math.tanh(v)
        raise AssertionError(op)
    return np.array([one(v) for v in x.ravel().tolist()]).reshape(x.shape)


def ref_elementwise_grad(op, x, slope=0.2, alpha=1.0):
    def one(v):
        if op == "relu":
            return 1.0 if v > 0 else 0.0
        if op == "leaky_relu":
            return 1.0 if v > 0 else slope
        if op == "elu":
            return 1.0 if v > 0 else alpha * math.exp(v)
        if op == "sigmoid":
            s = 1.0 / (1.0 + math.exp(-v))
            return s * (1 - s)
        if op == "tanh":
            return 1.0 - math.tanh(v) ** 2
        raise AssertionError(op)
    return np.array([one(v) for v in x.ravel().tolist()]).reshape(x.shape)


def onehot(labels, k, dtype=np.float64):
    return np.eye(k, dtype=dtype)[labels]


# ---------------------------------------------------------------------------------------------
# Hand-worked cases.

def test_softmax_hand_worked(backend, dtype):
    z = np.array([0.0, math.log(3.0)], dtype)
    np.testing.assert_allclose(K.softmax_forward(z), [0.25, 0.75], rtol=1e-6)
    y = K.softmax_forward(z)
    # dx = y * (dy - sum(dy * y)); dy = [1, 0] -> sum = 1/4 -> [1/4 * 3/4, 3/4 * -1/4]
    np.testing.assert_allclose(K.softmax_backward(np.array([1.0, 0.0], dtype), y), [3 / 16, -3 / 16], rtol=1e-6)


def test_softmax_cross_entropy_hand_worked(backend, dtype):
    z = np.array([[0.0, math.log(3.0)], [0.0, math.log(3.0)]], dtype)
    loss, g = K.softmax_cross_entropy(z, np.array([1, 0]))
    assert loss.dtype == dtype and g.dtype == dtype and loss.shape == (2,) and g.shape == (2, 2)
    np.testing.assert_allclose(loss, [-math.log(0.75), math.log(4.0)], rtol=1e-6)
    np.testing.assert_allclose(g, [[0.25, -0.25], [-0.75, 0.75]], rtol=1e-6, atol=1e-7)
    # targets summing to 2: gradient softmax * 2 - t, loss -sum(t * log p)
    loss2, g2 = K.softmax_cross_entropy(z[:1], np.array([[1.0, 1.0]], dtype))
    np.testing.assert_allclose(loss2, [-math.log(0.25) - math.log(0.75)], rtol=1e-6)
    np.testing.assert_allclose(g2, [[-0.5, 0.5]], rtol=1e-6)


def test_sigmoid_cross_entropy_hand_worked(backend, dtype):
    z = np.array([0.0, math.log(3.0), math.log(3.0), -math.log(3.0)], dtype)
    y = np.array([1.0, 1.0, 0.0, 0.5], dtype)
    loss, g = K.sigmoid_cross_entropy(z, y)
    # sigmoid(log 3) = 3/4, sigmoid(-log 3) = 1/4
    expected = [math.log(2.0), -math.log(0.75), -math.log(0.25), -0.5 * math.log(0.25) - 0.5 * math.log(0.75)]
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    np.testing.assert_allclose(g, [-0.5, -0.25, 0.75, -0.25], rtol=1e-6)
    # confident predictions: the loss keeps its relative accuracy (log1p, not log(1 + e))
    loss, g = K.sigmoid_cross_entropy(np.array([30.0, -30.0, 80.0], dtype), np.array([1.0, 0.0, 1.0], dtype))
    np.testing.assert_allclose(loss, np.exp([-30.0, -30.0, -80.0]), rtol=1e-5)
    np.testing.assert_allclose(g, [-math.exp(-30), math.exp(-30), -math.exp(-80)], rtol=1e-5)


def test_elementwise_hand_worked(backend, dtype):
    x = np.array([-1.0, 0.0, 2.0], dtype)
    np.testing.assert_array_equal(K.relu_forward(x), [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(K.relu_backward(np.ones(3, dtype), K.relu_forward(x)), [0.0, 0.0, 1.0])
    np.testing.assert_allclose(K.leaky_relu_forward(x), [-0.2, 0.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(K.leaky_relu_forward(x, negative_slope=0.5), [-0.5, 0.0, 2.0])
    np.testing.assert_allclose(K.leaky_relu_backward(np.ones(3, dtype), x), [0.2, 0.2, 1.0], rtol=1e-6)
    y = K.elu_forward(x, alpha=2.0)
    np.testing.assert_allclose(y, [2.0 * (math.exp(-1) - 1), 0.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(K.elu_backward(np.ones(3, dtype), x, y, alpha=2.0), [2 * math.exp(-1), 2.0, 1.0],
                               rtol=1e-6)
    t = np.array([math.log(3.0), -math.log(3.0)], dtype)
    np.testing.assert_allclose(K.sigmoid_forward(t), [0.75, 0.25], rtol=1e-6)
    np.testing.assert_allclose(K.sigmoid_backward(np.ones(2, dtype), np.array([0.75, 0.25], dtype)), [0.1875, 0.1875])
    np.testing.assert_allclose(K.tanh_forward(t), [0.8, -0.8], rtol=1e-6)
    np.testing.assert_allclose(K.tanh_backward(np.full(2, 2.0, dtype), np.array([0.8, -0.8], dtype)), [0.72, 0.72],
                               rtol=1e-6)


def test_k_equals_one(backend, dtype):
    z = np.array([[3.0], [-7.0]], dtype)
    loss, g = K.softmax_cross_entropy(z, np.array([0, 0]))
    np.testing.assert_array_equal(loss, [0.0, 0.0])
    np.testing.assert_array_equal(g, [[0.0], [0.0]])
    np.testing.assert_array_equal(K.softmax_forward(z), [[1.0], [1.0]])


# ---------------------------------------------------------------------------------------------
# The twin against direct definitions (float64, small shapes).

@pytest.mark.parametrize("n,k", [(1, 1), (3, 5), (4, 2), (2, 17)])
def test_twin_softmax_family_matches_definition(rng, n, k):
    z = rng.standard_normal((n, k)) * 3
    labels = rng.integers(0, k, n)
    soft = rng.random((n, k))
    soft /= soft.sum(axis=1, keepdims=True)
    with K.use_backend("numpy"):
        np.testing.assert_allclose(K.softmax_forward(z), ref_softmax_rows(z), rtol=1e-13)
        for t, lab in ((onehot(labels, k), labels), (soft, soft), (soft * 3.0, soft * 3.0)):
            loss, g = K.softmax_cross_entropy(z, lab)
            rl, rg = ref_sce(z, t)
            np.testing.assert_allclose(loss, rl, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(g, rg, rtol=1e-12, atol=1e-14)
        dy = rng.standard_normal((n, k))
        p = ref_softmax_rows(z)
        ref_dx = np.array([[p[i, j] * (dy[i, j] - sum(dy[i, m] * p[i, m] for m in range(k))) for j in range(k)]
                           for i in range(n)])
        np.testing.assert_allclose(K.softmax_backward(dy, p), ref_dx, rtol=1e-12, atol=1e-14)


def test_twin_sigmoid_cross_entropy_matches_definition(rng):
    z = rng.standard_normal(40) * 5
    y = rng.random(40)
    with K.use_backend("numpy"):
        loss, g = K.sigmoid_cross_entropy(z, y)
    ref_loss = [-(t * math.log(1 / (1 + math.exp(-v))) + (1 - t) * math.log(1 - 1 / (1 + math.exp(-v))))
                for v, t in zip(z.tolist(), y.tolist())]
    ref_g = [1 / (1 + math.exp(-v)) - t for v, t in zip(z.tolist(), y.tolist())]
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-10)
    np.testing.assert_allclose(g, ref_g, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("op", ELEMENTWISE)
def test_twin_elementwise_matches_definition(rng, op):
    x = rng.standard_normal((3, 7)) * 4
    kw = {"negative_slope": 0.3} if op == "leaky_relu" else {"alpha": 1.7} if op == "elu" else {}
    ref_kw = {"slope": 0.3} if op == "leaky_relu" else {"alpha": 1.7} if op == "elu" else {}
    dy = rng.standard_normal(x.shape)
    with K.use_backend("numpy"):
        y = fwd(op, x, **kw)
        np.testing.assert_allclose(y, ref_elementwise(op, x, **ref_kw), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(bwd(op, dy, x, y, **kw), dy * ref_elementwise_grad(op, x, **ref_kw),
                                   rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# Gradient checks by central differences (float64), on both backends.

@pytest.mark.parametrize("op", ELEMENTWISE)
def test_elementwise_gradients(backend, rng, op):
    x = rng.standard_normal((2, 3, 4)) * 2
    x[np.abs(x) < 1e-3] = 0.5               # keep away from the kinks of relu/leaky/elu
    g = rng.standard_normal(x.shape)
    kw = {"negative_slope": 0.3} if op == "leaky_relu" else {"alpha": 1.3} if op == "elu" else {}
    y = fwd(op, x, **kw)
    num = numerical_gradient(lambda: float(np.sum(fwd(op, x, **kw) * g)), x, eps=1e-6)
    np.testing.assert_allclose(bwd(op, g, x, y, **kw), num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_gradient(backend, rng, axis):
    x = rng.standard_normal((3, 4, 5)) * 2
    g = rng.standard_normal(x.shape)
    y = K.softmax_forward(x, axis=axis)
    num = numerical_gradient(lambda: float(np.sum(K.softmax_forward(x, axis=axis) * g)), x, eps=1e-6)
    np.testing.assert_allclose(K.softmax_backward(g, y, axis=axis), num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", ["sparse", "onehot", "soft", "unnormalised"])
def test_softmax_cross_entropy_gradient(backend, rng, kind):
    n, k = 4, 6
    z = rng.standard_normal((n, k)) * 2
    labels = rng.integers(0, k, n)
    if kind == "sparse":
        t = labels
    elif kind == "onehot":
        t = onehot(labels, k)
    else:
        t = rng.random((n, k))
        t = t / t.sum(axis=1, keepdims=True) if kind == "soft" else t * 2
    w = rng.random(n) + 0.5
    loss, g = K.softmax_cross_entropy(z, t)
    num = numerical_gradient(lambda: float(np.sum(w * K.softmax_cross_entropy(z, t)[0])), z, eps=1e-6)
    np.testing.assert_allclose(w[:, None] * g, num, rtol=1e-6, atol=1e-8)


def test_sigmoid_cross_entropy_gradient(backend, rng):
    z = rng.standard_normal((3, 5)) * 3
    y = rng.random((3, 5))
    w = rng.random((3, 5)) + 0.5
    loss, g = K.sigmoid_cross_entropy(z, y)
    num = numerical_gradient(lambda: float(np.sum(w * K.sigmoid_cross_entropy(z, y)[0])), z, eps=1e-6)
    np.testing.assert_allclose(w * g, num, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# Compiled == twin on randomised shapes.

SCALES = st.sampled_from([1e-3, 1.0, 30.0, 1e4])


@given(lead=st.lists(st.integers(0, 5), min_size=0, max_size=3), k=st.integers(1, 40), scale=SCALES,
       seed=st.integers(0, 2**31 - 1), float64=st.booleans(), label_kind=st.sampled_from(["int", "onehot", "soft"]))
def test_softmax_cross_entropy_backends_agree(lead, k, scale, seed, float64, label_kind):
    dt = np.dtype(np.float64 if float64 else np.float32)
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((*lead, k)) * scale).astype(dt)
    labels = rng.integers(0, k, tuple(lead))
    if label_kind == "onehot":
        labels = onehot(labels, k, dt)
    elif label_kind == "soft":
        labels = rng.random((*lead, k)).astype(dt)
    c, n = both(K.softmax_cross_entropy, z, labels)
    assert c[0].shape == tuple(lead) and c[1].shape == z.shape and c[0].dtype == dt and c[1].dtype == dt
    assert_twins_close(c, n, dt)


@given(shape=st.lists(st.integers(0, 6), min_size=1, max_size=3), scale=SCALES, seed=st.integers(0, 2**31 - 1),
       float64=st.booleans(), data=st.data())
def test_softmax_backends_agree(shape, scale, seed, float64, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    shape[axis] = max(shape[axis], 1)
    dt = np.dtype(np.float64 if float64 else np.float32)
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale).astype(dt)
    dy = rng.standard_normal(shape).astype(dt)
    yc, yn = both(K.softmax_forward, x, axis=axis)
    assert yc.shape == x.shape and yc.dtype == dt
    assert_twins_close(yc, yn, dt)
    assert_twins_close(*both(K.softmax_backward, dy, yn, axis=axis), dt)


@given(op=st.sampled_from(ELEMENTWISE), shape=st.lists(st.integers(0, 7), min_size=0, max_size=4), scale=SCALES,
       seed=st.integers(0, 2**31 - 1), float64=st.booleans(), param=st.sampled_from([0.0, 0.2, 1.0, 2.5]))
def test_elementwise_backends_agree(op, shape, scale, seed, float64, param):
    dt = np.dtype(np.float64 if float64 else np.float32)
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale).astype(dt)
    dy = rng.standard_normal(shape).astype(dt)
    kw = {"negative_slope": param} if op == "leaky_relu" else {"alpha": param} if op == "elu" else {}
    yc, yn = both(fwd, op, x, **kw)
    assert yc.shape == x.shape and yc.dtype == dt
    assert_twins_close(yc, yn, dt)
    assert_twins_close(*both(bwd, op, dy, x, yn, **kw), dt)


@given(shape=st.lists(st.integers(0, 7), min_size=0, max_size=3), scale=SCALES, seed=st.integers(0, 2**31 - 1),
       float64=st.booleans())
def test_sigmoid_cross_entropy_backends_agree(shape, scale, seed, float64):
    dt = np.dtype(np.float64 if float64 else np.float32)
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal(shape) * scale).astype(dt)
    y = rng.random(shape).astype(dt)
    assert_twins_close(*both(K.sigmoid_cross_entropy, z, y), dt)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_large_inputs_use_threads_and_agree(rng, dt):
    """Sizes above the kernels' per-thread minimum work, so the prange teams run."""
    z = rng.standard_normal((3000, 50)).astype(dt) * 5
    labels = rng.integers(0, 50, 3000)
    assert_twins_close(*both(K.softmax_cross_entropy, z, labels), dt)
    assert_twins_close(*both(K.softmax_cross_entropy, z, onehot(labels, 50, dt)), dt)
    y = K.softmax_forward(z)
    assert_twins_close(*both(K.softmax_backward, z, y), dt)
    x = rng.standard_normal(600_003).astype(dt) * 3
    for op in ELEMENTWISE:
        yc, yn = both(fwd, op, x)
        assert_twins_close(yc, yn, dt, err_msg=op)
        assert_twins_close(*both(bwd, op, x, x, yn), dt, err_msg=op)
    assert_twins_close(*both(K.sigmoid_cross_entropy, x, (x > 0).astype(dt)), dt)


def test_thread_count_does_not_change_results(rng):
    """Rows and chunks are independent, so any team size gives bit-identical results."""
    z = rng.standard_normal((3000, 50)).astype(np.float32) * 5
    labels = rng.integers(0, 50, 3000)
    x = rng.standard_normal(600_003).astype(np.float32)
    previous = K.get_num_threads()

    def run():
        with K.use_backend("cython"):
            return [*K.softmax_cross_entropy(z, labels), K.softmax_forward(z), K.sigmoid_forward(x), K.elu_forward(x)]
    try:
        K.set_num_threads(1)
        serial = run()
        K.set_num_threads(max(2, previous))
        parallel = run()
    finally:
        K.set_num_threads(previous)
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Compiled == twin at extreme float32 magnitudes: the twin accumulates the softmax family's row
# sums (exp, targets, t * (z - max), dy * y) in float64 and forms the per-row scalars in float64,
# as the kernel does.

def assert_matches_kernel(actual, expected, rtol=2e-5, err_msg=""):
    """The twin's `actual` against the kernel's `expected`: the same NaNs and infinities, and
    finite entries within rtol of their row's scale (the largest finite magnitude along the last
    axis; for a 1-D result each entry's own), so a loss of 1e-9 is held to the same relative
    accuracy as one of 1e20; a few subnormal quanta of slack."""
    a, e = np.asarray(actual), np.asarray(expected)
    assert a.shape == e.shape and a.dtype == e.dtype, err_msg
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e), err_msg=f"{err_msg}: NaN positions")
    inf = np.isinf(a) | np.isinf(e)
    np.testing.assert_array_equal(a[inf], e[inf], err_msg=f"{err_msg}: infinities")
    fin = np.isfinite(e)
    mag = np.where(fin, np.abs(e), 0.0)
    scale = mag if e.ndim < 2 else mag.max(axis=-1, keepdims=True)
    bound = rtol * np.broadcast_to(scale, e.shape)[fin] + 4 * float(np.finfo(e.dtype).smallest_subnormal)
    err = np.abs(a[fin].astype(np.float64) - e[fin].astype(np.float64))
    i = np.argmax(err / bound) if err.size else 0
    assert np.all(err <= bound), (f"{err_msg}: error / bound {err[i] / bound[i]:.3g} "
                                  f"(kernel {e[fin][i]!r}, twin {a[fin][i]!r})")


# one dominant logit (a confident prediction: loss ~1e-9 .. 1e-7, or exactly 0 past exp's
# range), then logits of extreme and mixed magnitudes. (The loss is log(s), not log1p(s - 1),
# so below ~1e-11 the kernel itself keeps only a few digits, which depend on its summation
# order: no such row here.)
CONFIDENT = [[20, 0, 0, 0], [20, 0, -1e20, 1e-20], [17, 1, -1, 0], [1e20, 0, 0, 0], [25, 24.5, -3, 1e-20]]


@pytest.mark.parametrize("label_kind", ["int", "onehot", "soft"])
def test_softmax_cross_entropy_extreme_float32_matches_kernel(rng, label_kind):
    z = np.array(CONFIDENT + (rng.standard_normal((6, 4)) * 10.0 ** rng.uniform(-20, 20, (6, 4))).tolist(),
                 np.float32)
    labels = np.zeros(len(z), np.int64)
    labels[len(CONFIDENT):] = rng.integers(0, 4, 6)
    if label_kind == "onehot":
        labels = onehot(labels, 4, np.float32)
    elif label_kind == "soft":
        labels = onehot(labels, 4, np.float32) * np.float32(0.999) + np.float32(0.00025)
    (lc, gc), (ln, gn) = both(K.softmax_cross_entropy, z, labels)
    assert np.all(np.isfinite(lc)) and np.all(np.isfinite(gc))
    assert_matches_kernel(ln, lc, err_msg="loss")
    assert_matches_kernel(gn, gc, err_msg="dlogits")


def test_confident_prediction_loss_keeps_its_digits(backend):
    """log(sum exp(z - max)) = log(1 + 6e-9): float64 row sums keep it (a float32 sum rounds
    1 + 6e-9 to 1 and the loss to 0)."""
    z = np.array([r for r in CONFIDENT if r[0] < 1e20], np.float32)
    labels = np.zeros(len(z), np.int64)
    zd = z.astype(np.float64)
    ref = np.array([math.log1p(sum(math.exp(v - row[0]) for v in row[1:])) for row in zd.tolist()])
    assert np.all(ref > 0)
    loss, _ = K.softmax_cross_entropy(z, labels)
    np.testing.assert_allclose(loss, ref, rtol=1e-5)
    loss, _ = K.softmax_cross_entropy(z, onehot(labels, 4, np.float32))
    np.testing.assert_allclose(loss, ref, rtol=1e-5)


def test_softmax_extreme_float32_matches_kernel(rng):
    """Forward on extreme logits; backward with dy mixing 1e20, -1e20 and 1 in a row, where
    sum(dy * y) cancels: float32 products and sum lose the digits that dx of the unit entry needs."""
    x = np.array([[0, 1e-6, -0.7], [0, 3e-7, -2], [5, 5.000001, 0], [1e20, -1e20, 1e-20], [-1e20, 0, 1e-20]],
                 np.float32)
    yc, yn = both(K.softmax_forward, x)
    assert_matches_kernel(yn, yc, err_msg="softmax")
    dy = np.array([[1e20, -1e20, 1]] * len(x), np.float32)
    dxc, dxn = both(K.softmax_backward, dy, yc)
    assert np.all(np.isfinite(dxc))
    assert_matches_kernel(dxn[:, 2], dxc[:, 2], err_msg="dx of the unit entry")
    assert_matches_kernel(dxn, dxc, err_msg="dx")
    dy = (rng.standard_normal((6, 9)) * 10.0 ** rng.uniform(-20, 20, (6, 9))).astype(np.float32)
    y = K.softmax_forward(rng.standard_normal((6, 9)).astype(np.float32))
    dxc, dxn = both(K.softmax_backward, dy, y)
    assert_matches_kernel(dxn, dxc, err_msg="dx, random magnitudes")


# ---------------------------------------------------------------------------------------------
# Stability at large magnitudes, NaN.

@pytest.mark.parametrize("dt,big", [(np.float32, 1e4), (np.float64, 1e4), (np.float64, 1e30), (np.float32, 1e30)])
def test_softmax_cross_entropy_large_logits_finite(backend, no_fp_warnings, dt, big):
    z = np.array([[big, -big, 0.0], [-big, -big, -big], [big, big, -big]], dt)
    labels = np.array([1, 2, 0])
    loss, g = K.softmax_cross_entropy(z, labels)
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(g))
    np.testing.assert_allclose(loss, [2 * big, math.log(3.0), math.log(2.0)], rtol=1e-6)
    np.testing.assert_allclose(g, [[1, -1, 0], [1 / 3, 1 / 3, -2 / 3], [-0.5, 0.5, 0]], rtol=1e-6, atol=1e-7)
    loss_d, g_d = K.softmax_cross_entropy(z, onehot(labels, 3, dt))
    np.testing.assert_allclose(loss_d, loss, rtol=1e-6)
    np.testing.assert_allclose(g_d, g, rtol=1e-6, atol=1e-7)
    soft = np.full((3, 3), 1 / 3, dt)
    loss_s, g_s = K.softmax_cross_entropy(z, soft)
    assert np.all(np.isfinite(loss_s)) and np.all(np.isfinite(g_s))
    y = K.softmax_forward(z)
    assert np.all(np.isfinite(y))
    assert np.all(np.isfinite(K.softmax_backward(np.ones_like(z), y)))


@pytest.mark.parametrize("dt,big", [(np.float32, 1e4), (np.float64, 1e4), (np.float64, 1e30), (np.float32, 1e30)])
def test_elementwise_and_sigmoid_ce_large_finite(backend, no_fp_warnings, dt, big):
    x = np.array([-big, -100.0, -1.0, 0.0, 1.0, 100.0, big], dt)
    y01 = np.array([0, 1, 0, 1, 0, 1, 1], dt)
    loss, g = K.sigmoid_cross_entropy(x, y01)
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(g))
    np.testing.assert_allclose(loss[[0, -1]], [0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(loss[1], 100.0, rtol=1e-6)
    np.testing.assert_allclose(K.sigmoid_forward(x)[[0, -1]], [0.0, 1.0])
    np.testing.assert_allclose(K.tanh_forward(x)[[0, -1]], [-1.0, 1.0])
    np.testing.assert_allclose(K.elu_forward(x, alpha=1.5)[0], -1.5)
    for op in ELEMENTWISE:
        y = fwd(op, x)
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(bwd(op, np.ones_like(x), x, y))), op


def test_float32_accuracy(backend):
    """float32 results within a few ulp of the float64 definition, over the whole useful range."""
    x = np.concatenate([np.linspace(-80, 80, 400_001), np.linspace(-0.5, 0.5, 100_001),
                        np.geomspace(1e-30, 1, 2001), -np.geomspace(1e-30, 1, 2001)]).astype(np.float32)
    xd = x.astype(np.float64)
    refs = {
        "sigmoid": np.where(xd >= 0, 1 / (1 + np.exp(-np.abs(xd))), np.exp(-np.abs(xd)) / (1 + np.exp(-np.abs(xd)))),
        "tanh": np.tanh(xd),
        "elu": np.where(xd > 0, xd, np.expm1(np.minimum(xd, 0))),
    }
    for op, ref in refs.items():
        np.testing.assert_allclose(fwd(op, x), ref, rtol=6e-7, atol=0, err_msg=op)
    z = x[:400_000].reshape(-1, 100)
    zd = z.astype(np.float64)
    p = np.exp(zd - zd.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(K.softmax_forward(z), p, rtol=2e-6, atol=1e-37)


def test_nan_propagates(backend, dtype):
    z = np.array([[np.nan, 0.0, 1.0], [0.0, 1.0, 2.0], [0.0, np.nan, 1.0]], dtype)
    loss, g = K.softmax_cross_entropy(z, np.array([1, 1, 0]))
    assert np.isnan(loss[0]) and np.isnan(loss[2]) and np.isfinite(loss[1])
    assert np.all(np.isnan(g[0])) and np.all(np.isfinite(g[1]))
    loss_d, _ = K.softmax_cross_entropy(z, np.eye(3, dtype=dtype))
    assert np.isnan(loss_d[0]) and np.isnan(loss_d[2]) and np.isfinite(loss_d[1])
    y = K.softmax_forward(z)
    assert np.all(np.isnan(y[0])) and np.all(np.isnan(y[2])) and np.all(np.isfinite(y[1]))
    x = np.array([np.nan, -1.0, 1.0], dtype)
    for op in ELEMENTWISE:
        out = fwd(op, x)
        assert np.isnan(out[0]) and np.all(np.isfinite(out[1:])), op
    sl, sg = K.sigmoid_cross_entropy(x, np.ones(3, dtype))
    assert np.isnan(sl[0]) and np.isnan(sg[0]) and np.all(np.isfinite(sl[1:]))


def test_signed_zero_and_infinities(backend, dtype):
    x = np.array([0.0, -0.0, np.inf, -np.inf], dtype)
    np.testing.assert_array_equal(K.tanh_forward(x), [0.0, -0.0, 1.0, -1.0])
    assert not np.signbit(K.tanh_forward(x)[0])
    np.testing.assert_array_equal(K.sigmoid_forward(x), [0.5, 0.5, 1.0, 0.0])
    np.testing.assert_array_equal(K.relu_forward(x), [0.0, 0.0, np.inf, 0.0])
    np.testing.assert_array_equal(K.elu_forward(x), [0.0, 0.0, np.inf, -1.0])


# ---------------------------------------------------------------------------------------------
# Labels: forms, ranges, shapes.

def test_onehot_and_integer_labels_agree(backend, dtype, rng):
    z = rng.standard_normal((7, 5)).astype(dtype) * 4
    labels = rng.integers(0, 5, 7)
    a = K.softmax_cross_entropy(z, labels)
    b = K.softmax_cross_entropy(z, onehot(labels, 5, dtype))
    c = K.softmax_cross_entropy(z, onehot(labels, 5, np.int64))        # integer one-hot -> dense targets
    d = K.softmax_cross_entropy(z, labels.astype(np.float32))            # integral floats -> indices
    e = K.softmax_cross_entropy(z, labels.astype(np.uint8))
    for other in (b, c, d, e):
        assert_twins_close(other, a, dtype)


def test_soft_labels_match_definition(backend, rng):
    z = rng.standard_normal((5, 4)) * 2
    t = rng.random((5, 4))
    t /= t.sum(axis=1, keepdims=True)
    loss, g = K.softmax_cross_entropy(z, t)
    rl, rg = ref_sce(z, t)
    np.testing.assert_allclose(loss, rl, rtol=1e-10)
    np.testing.assert_allclose(g, rg, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(g, ref_softmax_rows(z) - t, rtol=1e-10, atol=1e-14)


def test_sequence_leading_dims(backend, dtype, rng):
    n, t, k = 3, 4, 6
    z = rng.standard_normal((n, t, k)).astype(dtype)
    labels = rng.integers(0, k, (n, t))
    loss, g = K.softmax_cross_entropy(z, labels)
    assert loss.shape == (n, t) and g.shape == (n, t, k)
    flat_loss, flat_g = K.softmax_cross_entropy(z.reshape(-1, k), labels.reshape(-1))
    assert_twins_close((loss, g), (flat_loss.reshape(n, t), flat_g.reshape(n, t, k)), dtype)
    loss1, g1 = K.softmax_cross_entropy(z[0, 0], labels[0, 0])            # (K,) logits, 0-d label
    assert loss1.shape == () and g1.shape == (k,)
    np.testing.assert_allclose(loss1, loss[0, 0], rtol=1e-6)


def test_empty_batches(backend, dtype):
    loss, g = K.softmax_cross_entropy(np.zeros((0, 3), dtype), np.zeros(0, np.int64))
    assert loss.shape == (0,) and g.shape == (0, 3) and loss.dtype == dtype
    loss, g = K.softmax_cross_entropy(np.zeros((2, 0, 3), dtype), np.zeros((2, 0, 3), dtype))
    assert loss.shape == (2, 0) and g.shape == (2, 0, 3)
    assert K.softmax_forward(np.zeros((0, 4), dtype)).shape == (0, 4)
    assert K.softmax_backward(np.zeros((0, 4), dtype), np.zeros((0, 4), dtype)).shape == (0, 4)
    loss, g = K.sigmoid_cross_entropy(np.zeros((0, 2), dtype), np.zeros((0, 2)))
    assert loss.shape == (0, 2) and g.dtype == dtype


@pytest.mark.parametrize("bad", [-1, 3, 100])
def test_labels_out_of_range(backend, bad):
    z = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 3\)"):
        K.softmax_cross_entropy(z, np.array([0, bad]))
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 3\)"):
        K.softmax_cross_entropy(z, np.array([0.0, float(bad)]))
    # the low-level kernel itself refuses too (it must never index out of bounds)
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 3\)"):
        impl("activations").softmax_cross_entropy_sparse(z, np.array([bad, 0], np.int64))


def test_label_validation(backend):
    z = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="labels must be integer class indices|non-integral"):
        K.softmax_cross_entropy(z, np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="non-integral"):
        K.softmax_cross_entropy(z, np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\).*or \(2, 3\).*received shape \(3,\)"):
        K.softmax_cross_entropy(z, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"labels must have shape"):
        K.softmax_cross_entropy(z, np.zeros((2, 4)))
    with pytest.raises(TypeError, match="labels"):
        K.softmax_cross_entropy(z, np.array([1 + 0j, 0j]))
    with pytest.raises(TypeError, match="labels"):
        K.softmax_cross_entropy(z, np.array(["a", "b"]))
    with pytest.raises(ValueError, match="labels must have the shape of logits"):
        K.sigmoid_cross_entropy(z, np.zeros((3, 2)))
    with pytest.raises(TypeError, match="labels"):
        K.sigmoid_cross_entropy(z, np.zeros((2, 3), complex))


def test_logits_validation(backend):
    with pytest.raises(TypeError, match="logits"):
        K.softmax_cross_entropy(np.zeros((2, 3), complex), np.array([0, 1]))
    with pytest.raises(TypeError, match="logits"):
        K.softmax_cross_entropy(np.array([[None, 1]], dtype=object), np.array([0]))
    with pytest.raises(ValueError, match=r"K >= 1"):
        K.softmax_cross_entropy(np.zeros((2, 0)), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="at least 1 dimension"):
        K.softmax_cross_entropy(np.float32(1.0), np.int64(0))
    with pytest.raises(TypeError, match="logits"):
        K.sigmoid_cross_entropy(np.zeros(3, complex), np.zeros(3))


# ---------------------------------------------------------------------------------------------
# Elementwise shapes, dtypes, layouts, validation.

@pytest.mark.parametrize("op", ELEMENTWISE)
def test_elementwise_zero_d_and_empty(backend, dtype, op):
    x = np.array(-0.7, dtype)
    y = fwd(op, x)
    assert y.shape == () and y.dtype == dtype
    np.testing.assert_allclose(y, ref_elementwise(op, x.astype(np.float64)), rtol=1e-6)
    dx = bwd(op, np.array(1.0, dtype), x, y)
    assert dx.shape == () and dx.dtype == dtype
    for shape in [(0,), (3, 0), (0, 2, 5)]:
        e = np.zeros(shape, dtype)
        ye = fwd(op, e)
        assert ye.shape == shape and ye.dtype == dtype
        assert bwd(op, e, e, ye).shape == shape
    sl, sg = K.sigmoid_cross_entropy(np.float64(0.0), True)
    assert sl.shape == () and sg.shape == ()


@pytest.mark.parametrize("op", ELEMENTWISE)
def test_dtype_conversion(backend, op):
    xi = np.array([[-2, 0, 3]], np.int64)
    for src in (xi, xi.astype(np.int8), xi > 0, xi.astype(np.float16), xi.tolist()):
        y = fwd(op, src)
        assert y.dtype == np.float32 and y.shape == (1, 3)
        np.testing.assert_allclose(y, fwd(op, np.asarray(src, np.float32)))
    y64 = fwd(op, xi.astype(np.float64))
    assert y64.dtype == np.float64
    # mixed float32/float64 arguments give float64
    assert bwd(op, np.ones((1, 3), np.float32), xi.astype(np.float64), y64).dtype == np.float64


def test_softmax_dtypes_and_labels_dtype(backend):
    assert K.softmax_forward(np.array([[1, 2, 3]])).dtype == np.float32
    loss, g = K.softmax_cross_entropy(np.array([[1, 2, 3]]), np.array([2]))
    assert loss.dtype == np.float32 and g.dtype == np.float32
    # targets in float64 do not upcast float32 logits
    loss, g = K.softmax_cross_entropy(np.zeros((1, 3), np.float32), np.array([[0.0, 1.0, 0.0]]))
    assert loss.dtype == np.float32 and g.dtype == np.float32
    loss, g = K.sigmoid_cross_entropy(np.zeros(3, np.float32), np.array([0.0, 1.0, 0.5]))
    assert loss.dtype == np.float32


def test_non_contiguous_and_reversed_views(backend, dtype, rng):
    base = rng.standard_normal((6, 10)).astype(dtype) * 3
    views = [base[::2, ::3], base[::-1, ::-1], base.T, base[:, 1:8]]
    for v in views:
        c = np.ascontiguousarray(v)
        for op in ELEMENTWISE:
            np.testing.assert_array_equal(fwd(op, v), fwd(op, c))
            np.testing.assert_array_equal(bwd(op, v, v, fwd(op, v)), bwd(op, c, c, fwd(op, c)))
        np.testing.assert_array_equal(K.softmax_forward(v), K.softmax_forward(c))
        labels = np.arange(v.shape[0]) % v.shape[1]
        a = K.softmax_cross_entropy(v, labels[::-1])
        b = K.softmax_cross_entropy(c, np.ascontiguousarray(labels[::-1]))
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_inputs_not_modified(backend, rng):
    z = rng.standard_normal((4, 5))
    t = np.eye(5)[[0, 1, 2, 3]]
    dy = rng.standard_normal((4, 5))
    copies = [z.copy(), t.copy(), dy.copy()]
    K.softmax_cross_entropy(z, t)
    K.softmax_cross_entropy(z, np.array([0, 1, 2, 3]))
    K.sigmoid_cross_entropy(z, t)
    y = K.softmax_forward(z)
    K.softmax_backward(dy, y)
    for op in ELEMENTWISE:
        bwd(op, dy, z, fwd(op, z))
    for a, b in zip((z, t, dy), copies):
        np.testing.assert_array_equal(a, b)


def test_readonly_inputs(backend):
    x = np.linspace(-3, 3, 12).reshape(3, 4)
    x.setflags(write=False)
    for op in ELEMENTWISE:
        fwd(op, x)
    K.softmax_forward(x)
    K.softmax_cross_entropy(x, np.array([0, 1, 2]))


def test_shape_mismatch_errors(backend):
    a, b = np.zeros((2, 3)), np.zeros((3, 2))
    for op in ("relu", "sigmoid", "tanh"):
        with pytest.raises(ValueError, match=r"dy must have the shape of y \(3, 2\); received shape \(2, 3\)"):
            getattr(K, f"{op}_backward")(a, b)
    with pytest.raises(ValueError, match="dy must have the shape of x"):
        K.leaky_relu_backward(a, b)
    with pytest.raises(ValueError, match="dy must have the shape of x"):
        K.elu_backward(a, b, b)
    with pytest.raises(ValueError, match="y must have the shape of x"):
        K.elu_backward(b, b, a)
    with pytest.raises(ValueError, match="dy must have the shape of y"):
        K.softmax_backward(a, b)


def test_dtype_errors(backend):
    c = np.zeros(3, complex)
    o = np.array([None, 1, 2], dtype=object)
    for op in ELEMENTWISE:
        with pytest.raises(TypeError, match=r"\bx\b"):
            fwd(op, c)
        with pytest.raises(TypeError, match=r"\bx\b"):
            fwd(op, o)
    with pytest.raises(TypeError, match=r"\bdy\b"):
        K.relu_backward(c, np.zeros(3))
    with pytest.raises(TypeError, match=r"\by\b"):
        K.tanh_backward(np.zeros(3), c)
    with pytest.raises(TypeError, match=r"\bx\b"):
        K.softmax_forward(c)
    with pytest.raises(TypeError, match=r"\bdy\b"):
        K.softmax_backward(c, np.zeros(3))


def test_axis_and_parameter_errors(backend):
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"axis must lie in \[-2, 2\).*received axis=2"):
        K.softmax_forward(x, axis=2)
    with pytest.raises(ValueError, match=r"axis must lie in \[-2, 2\)"):
        K.softmax_backward(x, x, axis=-3)
    with pytest.raises(ValueError, match="axis must be an integer"):
        K.softmax_forward(x, axis=1.0)
    with pytest.raises(ValueError, match="axis must be an integer"):
        K.softmax_forward(x, axis=True)
    with pytest.raises(ValueError, match="at least 1 dimension"):
        K.softmax_forward(np.float64(1.0))
    with pytest.raises(ValueError, match=r"at least one entry along axis 0 \(K >= 1\)"):
        K.softmax_forward(np.zeros((0, 3)), axis=0)
    with pytest.raises(ValueError, match="negative_slope must be a finite real number"):
        K.leaky_relu_forward(x, negative_slope=float("nan"))
    with pytest.raises(ValueError, match="negative_slope"):
        K.leaky_relu_backward(x, x, negative_slope="0.2")
    with pytest.raises(ValueError, match="alpha must be a finite real number"):
        K.elu_forward(x, alpha=None)
    with pytest.raises(ValueError, match="alpha"):
        K.elu_backward(x, x, x, alpha=float("inf"))


def test_softmax_axis(backend, dtype, rng):
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    for axis in range(-3, 3):
        y = K.softmax_forward(x, axis=axis)
        assert y.flags.c_contiguous and y.shape == x.shape
        moved = np.moveaxis(x, axis, -1)
        expected = np.moveaxis(ref_softmax_rows(moved.reshape(-1, moved.shape[-1]).astype(np.float64))
                               .reshape(moved.shape), -1, axis)
        np.testing.assert_allclose(y, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
        np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", BACKENDS)
def test_low_level_kernels_refuse_bad_input(name):
    with K.use_backend(name):
        low = impl("activations")
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="labels"):
        low.softmax_cross_entropy_sparse(z, np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="K >= 1"):
        low.softmax_forward(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="targets"):
        low.softmax_cross_entropy_dense(z, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="dy"):
        low.softmax_backward(np.zeros((3, 3)), z)
    with pytest.raises(ValueError, match="dy"):
        low.relu_backward(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="y must have the shape of x"):
        low.elu_backward(np.zeros(3), np.zeros(3), np.zeros(4), 1.0)
    with pytest.raises((ValueError, TypeError)):
        low.softmax_forward(np.zeros(3))                            # wrong ndim
    with pytest.raises((ValueError, TypeError)):
        low.relu_backward(np.zeros(3, np.float32), np.zeros(3))     # dtype mismatch
    with pytest.raises((ValueError, TypeError)):
        low.sigmoid_forward(np.zeros(3, np.int64))                  # not a float array
    with pytest.raises(TypeError):
        low.relu_forward(None)
    with pytest.raises(TypeError):
        low.softmax_cross_entropy_sparse(z, None)
