"""The optimizer kernels' prechecked path (cynet/kernels/optim.py: arrays already C-contiguous, of
the variable's dtype and shape, disjoint, skip the conversions): every other input still goes
through the full checks, and both paths give the same update."""
import numpy as np
import pytest

from cynet import kernels
from cynet.kernels import optim


def _state(dtype, shape=(6, 5), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for _ in range(4)]   # w, g, m, v (v made positive below)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prechecked_and_converted_gradients_give_the_same_adam_step(dtype):
    w1, g, m1, v1 = _state(dtype)
    v1 = np.abs(v1)
    w2, m2, v2 = w1.copy(), m1.copy(), v1.copy()
    assert optim._ready(w1, g, (m1, v1))
    kernels.adam_update(w1, g, m1, v1, 1e-3, 0.1, 0.001, 1e-7)
    g_strided = np.asfortranarray(g.astype(np.float64))   # another dtype and layout: the converting path
    assert not optim._ready(w2, g_strided, (m2, v2))
    kernels.adam_update(w2, g_strided, m2, v2, 1e-3, 0.1, 0.001, 1e-7)
    np.testing.assert_allclose(w1, w2, rtol=1e-6)
    np.testing.assert_allclose(m1, m2, rtol=1e-6)


def test_the_prechecked_path_refuses_what_the_checks_refuse():
    w, g, m, v = _state(np.float32)
    with pytest.raises(ValueError, match="separate arrays"):
        kernels.adam_update(w, g, m, m, 1e-3, 0.1, 0.001, 1e-7)           # m and v the same array
    with pytest.raises(ValueError, match="separate arrays"):
        kernels.sgd_momentum_update(w, w, m, 0.1, 0.9)                   # the gradient is the variable
    w.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        kernels.adam_update(w, g, m, np.abs(v), 1e-3, 0.1, 0.001, 1e-7)
    w.flags.writeable = True
    with pytest.raises(ValueError, match="finite"):
        kernels.adam_update(w, g, m, np.abs(v), np.float32(np.nan), 0.1, 0.001, 1e-7)
    with pytest.raises(TypeError):
        kernels.sgd_momentum_update(w, g, None, 0.1, 0.9)                # no momentums array
