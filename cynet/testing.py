"""Helpers for checking gradients and kernel twins (used by cynet's tests, usable by yours)."""
from collections.abc import Callable
from typing import Any

import numpy as np

from ._typing import ArrayLike, DTypeLike


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of the scalar function f() with respect to array x.

    x is perturbed in place (and restored), so f must read x. Use float64.

    Args:
        f: Scalar function of no arguments that reads `x`.
        x: Input array.
        eps: Finite-difference step.
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


def tolerance(dtype: DTypeLike | None) -> tuple[float, float]:
    """(rtol, atol) for comparing the two kernel backends in `dtype`.

    Args:
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """
    return (1e-10, 1e-10) if np.dtype(dtype) == np.float64 else (1e-5, 1e-5)


def assert_twins_close(actual: Any, expected: Any, dtype: DTypeLike | None, err_msg: str = "") -> None:
    """Assert two results (arrays or tuples of arrays) agree within the dtype's tolerance.

    Args:
        actual: Result of the backend under test (an array, a tuple/list of arrays, or None).
        expected: Result of the reference backend, in the same structure.
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
        err_msg: Message shown on failure.
    """
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


def check_layer_gradients(layer: Any, x: ArrayLike, training: bool = True, eps: float = 1e-6, rtol: float = 1e-6,
                          atol: float = 1e-8, seed: int | None = 0) -> Any:
    """Check `layer.backward` against central differences, for the input and every trainable weight.

    The layer should be float64 (`dtype="float64"`). The scalar checked is sum(layer(x) * g) for a
    fixed random g. Returns the analytic input gradient.

    Args:
        layer: A Layer instance.
        x: Input array.
        training: Whether to run in training mode (dropout, batch statistics).
        eps: Finite-difference step.
        rtol: Relative tolerance.
        atol: Absolute tolerance.
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
    """
    x = np.array(x, dtype=np.float64, copy=True)
    y = layer(x, training=training)
    g = np.random.default_rng(seed).standard_normal(np.shape(y))

    def loss():
        return float(np.sum(np.asarray(layer(x, training=training), dtype=np.float64) * g))

    layer(x, training=training)
    dx = layer.backward(g)
    analytic = {v.path: np.array(v.grad, copy=True) for v in layer.trainable_weights}
    if dx is not None:
        num_dx = numerical_gradient(loss, x, eps)
        np.testing.assert_allclose(dx, num_dx, rtol=rtol, atol=atol, err_msg=f"{layer.name}: input gradient")
    for v in layer.trainable_weights:
        num = numerical_gradient(loss, v.value, eps)
        np.testing.assert_allclose(analytic[v.path], num, rtol=rtol, atol=atol,
                                   err_msg=f"{layer.name}: gradient of {v.name}")
    return dx
