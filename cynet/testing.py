"""Helpers for checking gradients and kernel twins (used by cynet's tests, usable by yours)."""
import numpy as np


def numerical_gradient(f, x, eps=1e-6):
    """Central-difference gradient of the scalar function f() with respect to array x.

    x is perturbed in place (and restored), so f must read x. Use float64.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)
    g = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return grad


def tolerance(dtype):
    """(rtol, atol) for comparing the two kernel backends in `dtype`."""
    return (1e-10, 1e-10) if np.dtype(dtype) == np.float64 else (1e-5, 1e-5)


def assert_twins_close(actual, expected, dtype, err_msg=""):
    """Assert two results (arrays or tuples of arrays) agree within the dtype's tolerance."""
    rtol, atol = tolerance(dtype)
    if isinstance(expected, (tuple, list)):
        assert isinstance(actual, (tuple, list)) and len(actual) == len(expected), err_msg
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_twins_close(a, e, dtype, err_msg=f"{err_msg} [item {i}]")
        return
    if expected is None:
        assert actual is None, err_msg
        return
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=err_msg)
