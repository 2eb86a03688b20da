"""Recurrent dropout in the recurrent kernels (recurrent_dropout_mask, Keras 3 semantics: one
scaled keep-mask per gate block, drawn once per call, multiplying h_{t-1} before that block's
recurrent product at every step).

- forward of both backends against a naive per-sample, per-step definition;
- every backward output against float64 central differences with the masks fixed, alone and
  together with a time mask;
- the compiled kernels against the twin (float32 and float64, both step-product paths: the
  packed per-gate blocks on one thread and NumPy's BLAS with more threads);
- an all-ones mask is no mask; argument validation.
"""
import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet.testing import assert_twins_close, numerical_gradient

from .test_rnn import CELLS, GATES, _f, make_case, random_mask

BACKENDS = ("cython", "numpy")


def dropout_masks(cell, N, U, seed=0, rate=0.4, dtype=np.float64):
    """(k, N, U) scaled keep-masks, as a layer draws them: 0 or 1 / (1 - rate)."""
    rng = np.random.default_rng(seed)
    return ((rng.random((GATES[cell], N, U)) >= rate) / (1 - rate)).astype(dtype)


def naive_dropout(cell, c, rd, mask=None, act="tanh", ract="sigmoid"):
    """Hidden (and LSTM cell) states, one sample and one step at a time: gate block j's
    recurrent product reads h_{t-1} * rd[j]; a masked step keeps the states."""
    x, W, R, b = c["x"], c["kernel"], c["recurrent_kernel"], c["bias"]
    N, T, _ = x.shape
    U = R.shape[0]
    k = GATES[cell]
    hs, cs = np.zeros((N, T, U)), np.zeros((N, T, U))
    for n in range(N):
        h = c["h0"][n].copy()
        cc = c["c0"][n].copy() if cell == "lstm" else None
        for t in range(T):
            rec = np.concatenate([(h * rd[j, n]) @ R[:, j * U:(j + 1) * U] for j in range(k)])
            if cell == "simple_rnn":
                hn, cn = _f(act, x[n, t] @ W + rec + b), None
            elif cell == "lstm":
                z = x[n, t] @ W + rec + b
                i, f, g, o = _f(ract, z[:U]), _f(ract, z[U:2 * U]), _f(act, z[2 * U:3 * U]), _f(ract, z[3 * U:])
                cn = f * cc + i * g
                hn = o * _f(act, cn)
            else:
                mx, mh = x[n, t] @ W + b[0], rec + b[1]
                z, r = _f(ract, mx[:U] + mh[:U]), _f(ract, mx[U:2 * U] + mh[U:2 * U])
                hn, cn = z * h + (1 - z) * _f(act, mx[2 * U:] + r * mh[2 * U:]), None
            if mask is None or mask[n, t]:
                h, cc = hn, cn
            hs[n, t] = h
            if cell == "lstm":
                cs[n, t] = cc
    return hs, cs


def forward(cell, c, rd, mask=None, act="tanh", ract="sigmoid"):
    kw = dict(mask=mask, recurrent_dropout_mask=rd)
    if cell == "simple_rnn":
        return (K.simple_rnn_forward(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"], act, **kw),)
    if cell == "lstm":
        return K.lstm_forward(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"], c["c0"], act, ract,
                              **kw)
    return K.gru_forward(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"], act, ract, **kw)


def backward(cell, c, fwd, rd, mask=None, act="tanh", ract="sigmoid"):
    kw = dict(mask=mask, recurrent_dropout_mask=rd)
    use_bias = c["bias"] is not None
    if cell == "simple_rnn":
        return K.simple_rnn_backward(c["dhs"], c["x"], c["kernel"], c["recurrent_kernel"], c["h0"], fwd[0], act,
                                     use_bias, **kw)
    if cell == "lstm":
        return K.lstm_backward(c["dhs"], c["dc_last"], c["x"], c["kernel"], c["recurrent_kernel"], c["h0"],
                               c["c0"], *fwd, act, ract, use_bias, **kw)
    return K.gru_backward(c["dhs"], c["x"], c["kernel"], c["recurrent_kernel"], c["h0"], *fwd, act, ract, use_bias,
                          **kw)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("masked", [False, True])
def test_forward_matches_naive(backend, cell, masked):
    c = make_case(cell, N=4, T=5, seed=1)
    rd = dropout_masks(cell, 4, 4, seed=2)
    mask = random_mask(4, 5, seed=3) if masked else None
    with K.use_backend(backend):
        out = forward(cell, c, rd, mask)
    hs, cs = naive_dropout(cell, c, rd, mask)
    np.testing.assert_allclose(out[0], hs, rtol=1e-12, atol=1e-12)
    if cell == "lstm":
        np.testing.assert_allclose(out[1], cs, rtol=1e-12, atol=1e-12)
    # the masks matter: without them the states differ
    with K.use_backend(backend):
        plain = forward(cell, c, None, mask)
    assert not np.allclose(plain[0], out[0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("masked,act,ract", [(False, "tanh", "sigmoid"), (True, "tanh", "sigmoid"),
                                             (False, "relu", "hard_sigmoid"), (True, "sigmoid", "tanh")])
def test_backward_matches_numerical_gradient(backend, cell, masked, act, ract):
    c = make_case(cell, N=4, T=5, seed=4)
    rd = dropout_masks(cell, 4, 4, seed=5)
    mask = random_mask(4, 5, seed=6) if masked else None
    with K.use_backend(backend):
        fwd = forward(cell, c, rd, mask, act, ract)
        grads = backward(cell, c, fwd, rd, mask, act, ract)

        def loss():
            out = forward(cell, c, rd, mask, act, ract)
            value = np.sum(out[0] * c["dhs"])
            if cell == "lstm":
                value += np.sum(out[1][:, -1] * c["dc_last"])
            return value

        names = ["x", "kernel", "recurrent_kernel", "bias", "h0"] + (["c0"] if cell == "lstm" else [])
        assert len(grads) == len(names)
        for name, grad in zip(names, grads):
            num = numerical_gradient(loss, c[name], eps=1e-6)
            atol = 1e-8 * max(1.0, np.abs(num).max())
            np.testing.assert_allclose(grad, num, rtol=1e-6, atol=atol,
                                       err_msg=f"{cell} d{name} ({act}, {ract}, masked={masked})")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("N,T,D,U,use_bias", [(3, 4, 2, 5, True), (9, 6, 5, 7, False), (40, 5, 3, 17, True)])
def test_cython_equals_twin(dtype, cell, N, T, D, U, use_bias):
    c = make_case(cell, N=N, T=T, D=D, U=U, seed=7, dtype=dtype, use_bias=use_bias, scale=0.5)
    rd = dropout_masks(cell, N, U, seed=8, dtype=dtype)
    mask = random_mask(N, T, seed=9)
    res = {}
    for backend in BACKENDS:
        with K.use_backend(backend):
            fwd = forward(cell, c, rd, mask)
            res[backend] = tuple(fwd) + tuple(g for g in backward(cell, c, fwd, rd, mask) if g is not None)
    assert_twins_close(res["cython"], res["numpy"], dtype)


@pytest.fixture
def threads_guard():
    before = cynet.get_num_threads()
    yield
    cynet.set_num_threads(before)


@pytest.mark.parametrize("cell", CELLS)
def test_blas_step_product_equals_twin(threads_guard, cell):
    """With more threads and enough multiply-adds, the step products run on NumPy's BLAS
    (rnn.pyx's _packed): the per-gate masked products there equal the twin too."""
    cynet.set_num_threads(2)
    N, T, D, U = 256, 3, 4, 128
    c = make_case(cell, N=N, T=T, D=D, U=U, seed=10, dtype=np.float64, scale=0.2)
    rd = dropout_masks(cell, N, U, seed=11)
    res = {}
    for backend in BACKENDS:
        with K.use_backend(backend):
            fwd = forward(cell, c, rd)
            res[backend] = tuple(fwd) + tuple(backward(cell, c, fwd, rd))
    assert_twins_close(res["cython"], res["numpy"], np.float64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
def test_all_ones_mask_is_no_dropout(backend, cell):
    c = make_case(cell, N=3, T=4, seed=12)
    ones = np.ones((GATES[cell], 3, 4))
    with K.use_backend(backend):
        a, b = forward(cell, c, ones), forward(cell, c, None)
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, rtol=1e-13, atol=1e-13)
        ga, gb = backward(cell, c, a, ones), backward(cell, c, b, None)
        for u, v in zip(ga, gb):
            np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_validation(backend):
    c = make_case("lstm", N=3, T=4, U=2)
    with K.use_backend(backend):
        with pytest.raises(ValueError, match=r"recurrent_dropout_mask must have shape \(4, 3, 2\)"):
            forward("lstm", c, np.ones((1, 3, 2)))
        with pytest.raises(ValueError, match=r"recurrent_dropout_mask must have shape \(4, 3, 2\)"):
            forward("lstm", c, np.ones((4, 2, 3)))
        with pytest.raises(TypeError, match="recurrent_dropout_mask must be a real array"):
            forward("lstm", c, np.ones((4, 3, 2), dtype=complex))
        with pytest.raises(ValueError, match="finite"):
            forward("lstm", c, np.full((4, 3, 2), np.nan))
        fwd = forward("lstm", c, None)
        with pytest.raises(ValueError, match="recurrent_dropout_mask must have shape"):
            backward("lstm", c, fwd, np.ones((3, 3, 2)))


def test_low_level_entry_points_check_the_mask():
    from cynet.kernels._backend import impl
    x = np.zeros((3, 4, 2)); k = np.zeros((3, 2)); rk = np.zeros((2, 2)); b = np.zeros(2); h0 = np.zeros((2, 2))
    for backend in BACKENDS:
        with K.use_backend(backend):
            with pytest.raises(ValueError, match="recurrent_dropout_mask"):
                impl("rnn").simple_rnn_forward(x, k, rk, b, h0, 1, None, np.ones((1, 2, 3)))
    with K.use_backend("cython"):
        with pytest.raises(ValueError, match="recurrent_dropout_mask"):
            impl("rnn").simple_rnn_forward(x, k, rk, b, h0, 1, None, np.ones((1, 2, 2), dtype=np.float32))
