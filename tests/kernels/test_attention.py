"""Attention kernels (the fused masked softmax): Cython == twin, twin == definition, gradients,
fully masked rows, broadcast masks, errors."""
import os

import numpy as np
import pytest

import cynet.kernels as K
from cynet._kernels import attention_numpy
from cynet.testing import assert_twins_close, numerical_gradient

try:
    from cynet._kernels import attention as attention_compiled
except ImportError:  # pragma: no cover - only with CYNET_ALLOW_UNCOMPILED
    attention_compiled = None

COMPILED = attention_compiled is not None
if not COMPILED and os.environ.get("CYNET_ALLOW_UNCOMPILED", "") in ("", "0"):  # pragma: no cover
    raise ImportError("cynet._kernels.attention is not compiled (set CYNET_ALLOW_UNCOMPILED=1 to skip its tests)")
BACKENDS = ["cython", "numpy"] if COMPILED else ["numpy"]
needs_compiled = pytest.mark.skipif(not COMPILED, reason="compiled attention kernel not built")

MASK_SHAPES = [None, (2, 3, 4, 9), (2, 1, 4, 9), (2, 1, 1, 9), (4, 1), (9,), (1, 3, 4, 1)]


@pytest.fixture(params=BACKENDS)
def backend(request):
    with K.use_backend(request.param):
        yield request.param


def definition(x, mask, scale):
    """Keras 3's masked softmax, written out: softmax(where(mask, scale * x, -1e9)) in float64."""
    z = np.asarray(x, np.float64) * scale
    if mask is not None:
        z = np.where(mask, z, -1e9)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def case(rng, shape, mask_shape, dtype, keep=0.7):
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    mask = None if mask_shape is None else rng.random(mask_shape) < keep
    return x, mask


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mask_shape", MASK_SHAPES)
def test_twin_matches_definition(dtype, mask_shape):
    rng = np.random.default_rng(1)
    x, mask = case(rng, (2, 3, 4, 9), mask_shape, dtype)
    with K.use_backend("numpy"):
        p = K.masked_softmax_forward(x, mask, 0.37)
    assert p.dtype == dtype and p.shape == x.shape
    np.testing.assert_allclose(p, definition(x, mask, 0.37), rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-7 if dtype == np.float32 else 1e-15)


@needs_compiled
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mask_shape", MASK_SHAPES + ["bools"])
@pytest.mark.parametrize("shape", [(2, 3, 4, 9), (2, 3, 4, 33), (1, 1, 1, 1), (3, 2, 5, 128)])
def test_cython_matches_twin(dtype, mask_shape, shape):
    rng = np.random.default_rng(2)
    if mask_shape == "bools":   # a numeric mask (nonzero = keep), of the full shape
        mask = (rng.random(shape) < 0.5).astype(np.float32)
    else:
        mask = None if mask_shape is None else rng.random(
            tuple(1 if a == 1 else b for a, b in zip(mask_shape[::-1], shape[::-1]))[::-1]) < 0.7
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    dp = rng.standard_normal(shape).astype(dtype)
    out = {}
    for be in BACKENDS:
        with K.use_backend(be):
            p = K.masked_softmax_forward(x, mask, -0.5)
            out[be] = (p, K.masked_softmax_backward(dp, p, mask, -0.5))
    assert_twins_close(out["cython"], out["numpy"], dtype)


def test_fully_masked_rows_are_uniform_and_get_no_gradient(backend):
    """Keras: a row with every key masked gets a uniform softmax (not NaN), and the `where` passes
    no gradient to masked keys."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 3, 5))
    mask = np.ones((2, 1, 3, 5), bool)
    mask[0, 0, 1] = False            # query row 1 of sample 0: every key masked
    mask[1, 0, :, 2] = False         # key 2 of sample 1 masked for every query
    p = K.masked_softmax_forward(x, mask, 1.0)
    np.testing.assert_allclose(p[0, :, 1], 0.2)
    assert np.all(p[1, :, :, 2] == 0.0)
    np.testing.assert_allclose(p.sum(-1), 1.0)
    dx = K.masked_softmax_backward(rng.standard_normal(p.shape), p, mask, 1.0)
    assert np.all(dx[0, :, 1] == 0.0) and np.all(dx[1, :, :, 2] == 0.0)
    assert np.all(dx[0, :, 0] != 0.0)


def test_row_constant_mask(backend):
    """A mask of size 1 along the keys (a per-query flag, e.g. Keras's query_mask) masks whole rows."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 4, 6))
    qmask = np.array([True, False, True, False])[:, None]
    p = K.masked_softmax_forward(x, qmask, 2.0)
    np.testing.assert_allclose(p[:, :, 1], 1 / 6)
    np.testing.assert_allclose(p[:, :, 0], definition(x, None, 2.0)[:, :, 0], rtol=1e-12)
    dx = K.masked_softmax_backward(np.ones_like(p) + x, p, qmask, 2.0)
    assert np.all(dx[:, :, 1] == 0.0) and np.all(dx[:, :, 3] == 0.0)


@pytest.mark.parametrize("mask_shape", [None, (2, 1, 3, 4), (3, 1)])
def test_gradient_matches_finite_differences(backend, mask_shape):
    rng = np.random.default_rng(5)
    x, mask = case(rng, (2, 2, 3, 4), mask_shape, np.float64)
    g = rng.standard_normal(x.shape)
    p = K.masked_softmax_forward(x, mask, 0.8)
    dx = K.masked_softmax_backward(g, p, mask, 0.8)
    num = numerical_gradient(lambda: float(np.sum(K.masked_softmax_forward(x, mask, 0.8) * g)), x)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)


def test_lower_rank_scores(backend):
    """Scores of 1 to 3 dimensions are read as having leading size-1 axes."""
    rng = np.random.default_rng(6)
    for shape in [(7,), (3, 7), (2, 3, 7)]:
        x = rng.standard_normal(shape)
        np.testing.assert_allclose(K.masked_softmax_forward(x, None, 1.0), definition(x, None, 1.0), rtol=1e-12)


def test_large_scores_stay_finite(backend):
    x = np.array([[1e30, -1e30, 0.0], [3e38, 3e38, -3e38]], np.float32)
    p = K.masked_softmax_forward(x, None, 1.0)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-6)


def test_empty(backend):
    assert K.masked_softmax_forward(np.zeros((2, 0, 3, 4)), None, 1.0).shape == (2, 0, 3, 4)
    assert K.masked_softmax_backward(np.zeros((2, 3, 0)), np.zeros((2, 3, 0))).shape == (2, 3, 0)


def test_errors(backend):
    x = np.zeros((2, 3, 4, 5))
    with pytest.raises(ValueError, match="scores"):
        K.masked_softmax_forward(np.zeros((1, 2, 3, 4, 5)))
    with pytest.raises(ValueError, match="scores"):
        K.masked_softmax_forward(np.float64(1.0))
    with pytest.raises(ValueError, match="mask"):
        K.masked_softmax_forward(x, np.ones((3, 5, 5), bool))
    with pytest.raises(ValueError, match="mask"):
        K.masked_softmax_forward(x, np.ones((1, 2, 3, 4, 5), bool))
    with pytest.raises(TypeError, match="mask"):
        K.masked_softmax_forward(x, np.ones((4, 5), complex))
    with pytest.raises(ValueError, match="scale"):
        K.masked_softmax_forward(x, None, float("nan"))
    with pytest.raises(ValueError, match="scale"):
        K.masked_softmax_forward(x, None, "big")
    with pytest.raises(ValueError, match="dp"):
        K.masked_softmax_backward(np.zeros((2, 3, 4, 4)), x)


@needs_compiled
def test_compiled_refuses_wrong_mask_shape():
    x = np.zeros((1, 1, 2, 3))
    with pytest.raises(ValueError, match="mask"):
        attention_compiled.masked_softmax_forward(x, np.ones((1, 1, 2, 2), np.uint8), 1.0)
    with pytest.raises(ValueError, match="dp"):
        attention_compiled.masked_softmax_backward(np.zeros((1, 1, 2, 2)), x, None, 1.0)


@needs_compiled
def test_threads_give_the_same_result():
    import cynet
    rng = np.random.default_rng(7)
    x, mask = case(rng, (8, 4, 64, 64), (8, 1, 1, 64), np.float32)
    before = cynet.kernels.get_num_threads()
    try:
        cynet.set_num_threads(1)
        one = K.masked_softmax_forward(x, mask, 0.3)
        cynet.set_num_threads(2)
        two = K.masked_softmax_forward(x, mask, 0.3)
    finally:
        cynet.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def test_twin_module_matches_public_names():
    assert set(attention_numpy.__all__) == {"masked_softmax_forward", "masked_softmax_backward",
                                            "attention_forward", "attention_backward"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_in_place_and_separate(backend, dtype):
    """out= writes the result into a given array: the input itself (in place) or a separate one."""
    rng = np.random.default_rng(8)
    x, mask = case(rng, (2, 3, 4, 9), (2, 1, 4, 9), dtype)
    dp = rng.standard_normal(x.shape).astype(dtype)
    p = K.masked_softmax_forward(x, mask, 0.7)
    dx = K.masked_softmax_backward(dp, p, mask, 0.7)
    buf = np.full_like(x, np.nan)
    assert K.masked_softmax_forward(x, mask, 0.7, out=buf) is buf
    np.testing.assert_array_equal(buf, p)
    inplace = x.copy()
    assert K.masked_softmax_forward(inplace, mask, 0.7, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, p)
    for which in ("dp", "p"):
        a, b = dp.copy(), p.copy()
        target = a if which == "dp" else b
        assert K.masked_softmax_backward(a, b, mask, 0.7, out=target) is target
        np.testing.assert_array_equal(target, dx)


def test_out_refused(backend):
    x = np.zeros((2, 3, 4, 5), np.float32)
    with pytest.raises(TypeError, match="out"):
        K.masked_softmax_forward(x, out=np.zeros(x.shape, np.float64))
    with pytest.raises(ValueError, match="out"):
        K.masked_softmax_forward(x, out=np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="out"):
        K.masked_softmax_forward(x, out=np.zeros((2, 3, 5, 4), np.float32).transpose(0, 1, 3, 2))
    ro = np.zeros_like(x)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out"):
        K.masked_softmax_forward(x, out=ro)
    flat = np.zeros(2 * 3 * 4 * 5 + 1, np.float32)
    with pytest.raises(ValueError, match="overlap"):   # overlapping the input, not the input itself
        K.masked_softmax_forward(flat[:-1].reshape(x.shape), out=flat[1:].reshape(x.shape))
    with pytest.raises(ValueError, match="overlap"):
        K.masked_softmax_backward(flat[:-1].reshape(x.shape), x, out=flat[1:].reshape(x.shape))
    with pytest.raises(TypeError, match="out"):
        K.masked_softmax_backward(x, x, out=[[0.0]])


# ----------------------------------------------------------------------------- fused attention

def heads_case(rng, B, T, S, H, dk, dv, dtype):
    q, k, v = (rng.standard_normal(shape).astype(dtype) for shape in ((B, T, H, dk), (B, S, H, dk), (B, S, H, dv)))
    return q, k, v, rng.standard_normal((B, T, H, dv)).astype(dtype)


def attention_definition(q, k, v, mask, scale):
    """softmax(where(mask, scale * q k^T, -1e9)) v per (batch, head), in float64, (B, T, H, dv)."""
    s = np.einsum("bthd,bshd->bhts", q.astype(np.float64), k.astype(np.float64))
    p = definition(s, mask, scale)
    return np.einsum("bhts,bshd->bthd", p, v.astype(np.float64)), p


# (B, T, S, H, dk, dv): remainders of the products' tiles, one key, one query, empty axes
HEAD_SHAPES = [(2, 5, 7, 3, 4, 6), (1, 13, 9, 2, 17, 3), (2, 1, 1, 1, 1, 1), (1, 33, 20, 2, 16, 16),
               (2, 3, 5, 2, 0, 2), (2, 3, 5, 2, 2, 0), (2, 0, 5, 2, 2, 2), (2, 3, 0, 2, 2, 2), (0, 3, 4, 2, 2, 2)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", HEAD_SHAPES)
@pytest.mark.parametrize("masked", [None, "keys", "full"])
def test_fused_attention_cython_matches_twin_and_definition(dtype, shape, masked):
    rng = np.random.default_rng(11)
    B, T, S, H, dk, dv = shape
    q, k, v, g = heads_case(rng, B, T, S, H, dk, dv, dtype)
    mask = None if masked is None else rng.random((B, 1, 1, S) if masked == "keys" else (B, H, T, S)) < 0.7
    res = {}
    for be in BACKENDS:
        with K.use_backend(be):
            out, p = K.attention_forward(q, k, v, mask, 0.4)
            res[be] = (out, p) + tuple(K.attention_backward(g, q, k, v, p, mask, 0.4))
    for be, r in res.items():
        assert [a.shape for a in r] == [(B, T, H, dv), (B, H, T, S), q.shape, k.shape, v.shape], be
        assert all(a.dtype == dtype for a in r), be
    if COMPILED:
        assert_twins_close(res["cython"], res["numpy"], dtype)
    if S == 0:   # no keys: p empty, out zero
        assert not res["numpy"][0].any()
        return
    ref_out, ref_p = attention_definition(q, k, v, mask, 0.4)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(res["numpy"][0], ref_out, rtol=tol, atol=tol)
    np.testing.assert_allclose(res["numpy"][1], ref_p, rtol=tol, atol=tol)


@pytest.mark.parametrize("mask_shape", [None, (2, 1, 3, 4)])
def test_fused_attention_gradient_matches_finite_differences(backend, mask_shape):
    rng = np.random.default_rng(12)
    q, k, v, g = heads_case(rng, 2, 3, 4, 2, 3, 2, np.float64)
    mask = None if mask_shape is None else rng.random(mask_shape) < 0.7
    _, p = K.attention_forward(q, k, v, mask, 0.6)
    grads = K.attention_backward(g, q, k, v, p, mask, 0.6)
    for x, dx in zip((q, k, v), grads):
        num = numerical_gradient(lambda: float(np.sum(K.attention_forward(q, k, v, mask, 0.6)[0] * g)), x)
        np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)


def test_fused_attention_errors(backend):
    q = np.zeros((2, 3, 2, 4), np.float32)
    k = np.zeros((2, 5, 2, 4), np.float32)
    v = np.zeros((2, 5, 2, 6), np.float32)
    with pytest.raises(ValueError, match="key"):
        K.attention_forward(q, np.zeros((2, 5, 2, 3), np.float32), v)
    with pytest.raises(ValueError, match="value"):
        K.attention_forward(q, k, np.zeros((2, 4, 2, 6), np.float32))
    with pytest.raises(ValueError, match="query"):
        K.attention_forward(q[0], k, v)
    with pytest.raises(ValueError, match="mask"):
        K.attention_forward(q, k, v, np.ones((2, 1, 3, 4), bool))
    with pytest.raises(ValueError, match="scale"):
        K.attention_forward(q, k, v, None, np.nan)
    with pytest.raises(TypeError, match="query"):
        K.attention_forward(q.astype(complex), k, v)
    out, p = K.attention_forward(q, k, v)
    with pytest.raises(ValueError, match="grad"):
        K.attention_backward(np.zeros((2, 3, 2, 4), np.float32), q, k, v, p)
    with pytest.raises(ValueError, match="p must"):
        K.attention_backward(out, q, k, v, p[:, :, :, :4])


@needs_compiled
def test_compiled_fused_attention_refuses_wrong_shapes():
    q, k, v = np.zeros((1, 2, 1, 3)), np.zeros((1, 4, 1, 3)), np.zeros((1, 4, 1, 5))
    with pytest.raises(ValueError, match="k must"):
        attention_compiled.attention_forward(q, np.zeros((1, 4, 1, 2)), v, None, 1.0)
    with pytest.raises(ValueError, match="v must"):
        attention_compiled.attention_forward(q, k, np.zeros((1, 3, 1, 5)), None, 1.0)
    with pytest.raises(ValueError, match="mask"):
        attention_compiled.attention_forward(q, k, v, np.ones((1, 1, 2, 3), np.uint8), 1.0)
    out, p = attention_compiled.attention_forward(q, k, v, None, 1.0)
    with pytest.raises(ValueError, match="g must"):
        attention_compiled.attention_backward(np.zeros((1, 2, 1, 3)), q, k, v, p, None, 1.0)
    with pytest.raises(ValueError, match="p must"):
        attention_compiled.attention_backward(out, q, k, v, np.zeros((1, 1, 2, 3)), None, 1.0)


@needs_compiled
def test_fused_attention_threads_give_the_same_result():
    import cynet
    rng = np.random.default_rng(13)
    q, k, v, g = heads_case(rng, 4, 32, 40, 4, 8, 8, np.float32)
    mask = rng.random((4, 1, 32, 40)) < 0.8
    before = cynet.kernels.get_num_threads()
    res = []
    try:
        for n in (1, 2):
            cynet.set_num_threads(n)
            out, p = K.attention_forward(q, k, v, mask, 0.3)
            res.append((out, p) + tuple(K.attention_backward(g, q, k, v, p, mask, 0.3)))
    finally:
        cynet.set_num_threads(before)
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- packed projections

def packed_case(rng, B, T, S, H, dk, dv, dtype, kind):
    """q, k, v as views of one packed projection: kind "qkv" (B, T, 2*H*dk + H*dv), T == S, or
    "kv" (k and v parts of one (B, S, H*dk + H*dv) array, q its own)."""
    if kind == "qkv":
        buf = rng.standard_normal((B, T, H * (2 * dk + dv))).astype(dtype)
        q = buf[:, :, :H * dk].reshape(B, T, H, dk)
        k = buf[:, :, H * dk:2 * H * dk].reshape(B, S, H, dk)
        v = buf[:, :, 2 * H * dk:].reshape(B, S, H, dv)
    else:
        buf = rng.standard_normal((B, S, H * (dk + dv))).astype(dtype)
        q = rng.standard_normal((B, T, H, dk)).astype(dtype)
        k, v = buf[:, :, :H * dk].reshape(B, S, H, dk), buf[:, :, H * dk:].reshape(B, S, H, dv)
    return q, k, v, rng.standard_normal((B, T, H, dv)).astype(dtype)


# (B, T, S, H, dk, dv, kind)
PACKED_SHAPES = [(2, 5, 5, 3, 4, 6, "qkv"), (1, 9, 9, 2, 17, 3, "qkv"), (2, 1, 1, 1, 1, 1, "qkv"),
                 (2, 5, 7, 3, 4, 6, "kv"), (1, 13, 9, 2, 3, 17, "kv"), (2, 3, 3, 2, 0, 2, "qkv"),
                 (2, 3, 5, 2, 2, 0, "kv"), (0, 3, 3, 2, 2, 2, "qkv"),
                 # 16 x 16 tiles of the key and value transposes (AVX-512) and their remainders
                 (2, 37, 37, 2, 35, 19, "qkv"), (1, 5, 48, 2, 32, 48, "kv")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", PACKED_SHAPES)
@pytest.mark.parametrize("masked", [False, True])
def test_packed_views_and_gradients_match_separate_arrays(dtype, shape, masked):
    """Views of a packed projection are read in place (the same results as C-contiguous copies);
    packed='qkv' / 'kv' return the gradients as consecutive parts of one array, equal to the
    separate ones; the compiled kernel matches its twin."""
    *dims, kind = shape
    B, T, S, H, dk, dv = dims
    rng = np.random.default_rng(19)
    q, k, v, g = packed_case(rng, B, T, S, H, dk, dv, dtype, kind)
    mask = rng.random((B, 1, T, S)) < 0.7 if masked else None
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    res = {}
    for be in BACKENDS:
        with K.use_backend(be):
            out, p = K.attention_forward(q, k, v, mask, 0.4)
            ref_out, ref_p = K.attention_forward(q.copy(), k.copy(), v.copy(), mask, 0.4)
            np.testing.assert_array_equal(out, ref_out)
            np.testing.assert_array_equal(p, ref_p)
            grads = K.attention_backward(g, q, k, v, p, mask, 0.4, packed=kind)
            ref = K.attention_backward(g, q.copy(), k.copy(), v.copy(), p, mask, 0.4)
            for a, b in zip(grads, ref):
                assert a.shape == b.shape and a.dtype == b.dtype
                np.testing.assert_allclose(a, b, **tol)
            parts = grads if kind == "qkv" else grads[1:]
            base = parts[0].base
            assert base is not None and all(a.base is base for a in parts) and base.flags.c_contiguous
            joined = np.concatenate([a.reshape(a.shape[0], a.shape[1], a.shape[2] * a.shape[3]) for a in parts], axis=2)
            np.testing.assert_array_equal(base.reshape(joined.shape), joined)
            res[be] = (out, p) + tuple(grads)
    for a, b in zip(res["cython"], res["numpy"]):
        np.testing.assert_allclose(a, b, **tol)


def test_views_that_are_not_read_in_place_are_copied(backend):
    """Negative strides, a last axis with a stride, Fortran order: copied first, same results."""
    rng = np.random.default_rng(29)
    q, k, v, g = heads_case(rng, 2, 4, 4, 2, 3, 3, np.float64)
    out, p = K.attention_forward(q, k, v)
    for qq in (q[:, ::-1][:, ::-1], np.repeat(q, 2, axis=3)[..., ::2], np.asfortranarray(q)):
        np.testing.assert_array_equal(K.attention_forward(qq, k, v)[0], out)
        for a, b in zip(K.attention_backward(g, qq, k, v, p), K.attention_backward(g, q, k, v, p)):
            np.testing.assert_array_equal(a, b)


def test_packed_argument_errors(backend):
    q, k, v = np.zeros((2, 3, 2, 4)), np.zeros((2, 5, 2, 4)), np.zeros((2, 5, 2, 6))
    out, p = K.attention_forward(q, k, v)
    with pytest.raises(ValueError, match="packed must be None, 'kv' or 'qkv'"):
        K.attention_backward(out, q, k, v, p, packed="q")
    with pytest.raises(ValueError, match="packed must be None, 'kv' or 'qkv'"):
        K.attention_backward(out, q, k, v, p, packed=2)
    with pytest.raises(ValueError, match="packed='qkv' needs as many keys as queries"):
        K.attention_backward(out, q, k, v, p, packed="qkv")


@needs_compiled
def test_compiled_attention_refuses_a_strided_last_axis_and_bad_packed():
    q = np.zeros((1, 2, 1, 6))[..., ::2]
    k, v = np.zeros((1, 2, 1, 3)), np.zeros((1, 2, 1, 3))
    with pytest.raises(ValueError, match="unit stride along its last axis"):
        attention_compiled.attention_forward(q, k, v, None, 1.0)
    out, p = attention_compiled.attention_forward(k, k, v, None, 1.0)
    with pytest.raises(ValueError, match="packed must be 0, 1, or 2"):
        attention_compiled.attention_backward(out, k, k, v, p, None, 1.0, 3)
    with pytest.raises(ValueError, match="packed must be 0, 1, or 2"):
        attention_compiled.attention_backward(out[:, :1], k[:, :1], k, v, p[:, :, :1], None, 1.0, 2)
