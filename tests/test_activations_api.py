"""cynet.activations (the public, Keras-named objects): values against Keras 3's formulas written out
here, float64 gradients against central differences, Keras argument names, get/serialize, stability.

The kernels under relu/leaky_relu/elu/sigmoid/tanh/softmax are tested in tests/kernels/; this file
checks what a Keras user calls.
"""
import math
import warnings

import numpy as np
import pytest

from cynet import activations
from cynet.testing import numerical_gradient

NAMES = ("linear", "relu", "leaky_relu", "elu", "selu", "sigmoid", "hard_sigmoid", "tanh", "softmax", "softplus",
         "softsign", "silu", "swish", "gelu")
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _sigmoid(x):
    return np.vectorize(lambda v: 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v)),
                        otypes=[np.float64])(x)


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def reference(name, x, **kw):
    """Keras 3 definitions, in float64."""
    x = np.asarray(x, dtype=np.float64)
    if name == "linear":
        return x
    if name == "relu":  # relu(x, negative_slope=0, max_value=None, threshold=0)
        slope, top, t = kw.get("negative_slope", 0.0), kw.get("max_value"), kw.get("threshold", 0.0)
        y = np.where(x > t, x, 0.0)
        if top is not None:
            y = np.minimum(np.maximum(y, 0.0), top)
        return y - slope * np.maximum(t - x, 0.0)
    if name == "leaky_relu":
        return np.where(x > 0, x, kw.get("negative_slope", 0.2) * x)
    if name == "elu":
        return np.where(x > 0, x, kw.get("alpha", 1.0) * (np.exp(x) - 1))
    if name == "selu":
        return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1))
    if name == "sigmoid":
        return _sigmoid(x)
    if name == "hard_sigmoid":  # relu6(x + 3) / 6
        return np.minimum(np.maximum(x + 3, 0), 6) / 6
    if name == "tanh":
        return np.tanh(x)
    if name == "softmax":
        return _softmax(x, kw.get("axis", -1))
    if name == "softplus":
        return np.vectorize(lambda v: math.log1p(math.exp(v)) if v < 30 else v + math.log1p(math.exp(-v)))(x)
    if name == "softsign":
        return x / (np.abs(x) + 1)
    if name in ("silu", "swish"):
        return x * _sigmoid(x)
    if name == "gelu":
        if kw.get("approximate", False):
            return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))
    raise AssertionError(name)


def away_from_kinks(x, kinks, gap=1e-3):
    """x with every entry nudged at least `gap` away from each kink (finite differences straddle none)."""
    x = x.copy()
    for k in kinks:
        near = np.abs(x - k) < gap
        x[near] = k + np.where(x[near] >= k, gap, -gap) * 2
    return x


KINKS = {"relu": [0.0], "leaky_relu": [0.0], "elu": [0.0], "selu": [0.0], "hard_sigmoid": [-3.0, 3.0]}


# ---------------------------------------------------------------------------------------------
# Values.

@pytest.mark.parametrize("name", NAMES)
def test_values_match_keras_formulas(name):
    x = np.concatenate([np.linspace(-7, 7, 57), [-30.0, -3.0, -1e-3, 0.0, 1e-3, 3.0, 30.0]]).reshape(8, 8)
    y = activations.get(name)(x)
    assert y.shape == x.shape and y.dtype == np.float64
    # gelu's erf is Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): within 1e-6 of the exact value.
    atol = 1e-6 if name == "gelu" else 1e-14
    np.testing.assert_allclose(y, reference(name, x), rtol=1e-12, atol=atol, err_msg=name)


@pytest.mark.parametrize("name", NAMES)
def test_float32_in_float32_out(name):
    x = np.linspace(-5, 5, 24, dtype=np.float32).reshape(4, 6)
    act = activations.get(name)
    y = act(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, reference(name, x.astype(np.float64)), rtol=2e-6, atol=2e-6)
    dx = act.backward(np.ones_like(y), x, y)
    assert dx.shape == x.shape and dx.dtype == np.float32


def test_hand_worked_values():
    x = np.array([-2.0, 0.0, 1.0])
    np.testing.assert_allclose(activations.relu(x), [0, 0, 1])
    np.testing.assert_allclose(activations.leaky_relu(x), [-0.4, 0, 1])  # Keras default negative_slope=0.2
    np.testing.assert_allclose(activations.elu(x), [math.exp(-2) - 1, 0, 1])
    np.testing.assert_allclose(activations.hard_sigmoid(np.array([-4.0, -3.0, 0.0, 1.5, 3.0, 9.0])),
                               [0, 0, 0.5, 0.75, 1, 1])
    np.testing.assert_allclose(activations.softmax(np.array([[1.0, 1.0], [0.0, math.log(3)]])),
                               [[0.5, 0.5], [0.25, 0.75]])
    np.testing.assert_allclose(activations.softplus(np.array([0.0])), [math.log(2)])
    np.testing.assert_allclose(activations.softsign(np.array([-3.0, 1.0])), [-0.75, 0.5])
    np.testing.assert_allclose(activations.silu(np.array([0.0, 1.0])), [0.0, 1 / (1 + math.exp(-1))])
    np.testing.assert_allclose(activations.gelu(np.array([0.0, 1.0, -1.0])),
                               [0.0, 0.8413447460685429, -0.15865525393145707], atol=1e-7)
    np.testing.assert_allclose(activations.selu(np.array([1.0, -1.0])),
                               [SELU_SCALE, SELU_SCALE * SELU_ALPHA * (math.exp(-1) - 1)])
    # lists and ints are accepted, as with Keras ops.
    np.testing.assert_allclose(activations.relu([-1, 2]), [0, 2])
    np.testing.assert_allclose(activations.sigmoid([0]), [0.5])


def test_gelu_derivative_close_to_exact():
    x = np.linspace(-6, 6, 241)
    exact = 0.5 * (1 + _erf(x / math.sqrt(2))) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    got = activations.gelu.backward(np.ones_like(x), x, activations.gelu(x))
    np.testing.assert_allclose(got, exact, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Keras argument names.

def test_relu_keras_arguments_docstring_example():
    x = np.array([-10, -5, 0.0, 5, 10])
    np.testing.assert_allclose(activations.relu(x), [0, 0, 0, 5, 10])
    np.testing.assert_allclose(activations.relu(x, negative_slope=0.5), [-5, -2.5, 0, 5, 10])
    np.testing.assert_allclose(activations.relu(x, max_value=5.0), [0, 0, 0, 5, 5])
    np.testing.assert_allclose(activations.relu(x, threshold=5.0), [0, 0, 0, 0, 10])


@pytest.mark.parametrize("kw", [
    dict(negative_slope=0.3), dict(max_value=6.0), dict(threshold=1.5), dict(threshold=-1.0),
    dict(negative_slope=0.1, max_value=4.0, threshold=0.5), dict(threshold=-2.0, max_value=3.0),
])
def test_relu_arguments_values_and_gradients(kw):
    rng = np.random.default_rng(0)
    x = rng.uniform(-8, 8, (6, 7))
    act = activations._ReLU(**kw)
    np.testing.assert_allclose(activations.relu(x, **kw), reference("relu", x, **kw), rtol=1e-14)
    kinks = [0.0, kw.get("threshold", 0.0)] + ([kw["max_value"]] if "max_value" in kw else [])
    _check_gradient(act, away_from_kinks(x, kinks))


def test_other_keras_arguments():
    x = np.linspace(-3, 3, 12).reshape(3, 4)
    np.testing.assert_allclose(activations.leaky_relu(x, negative_slope=0.1),
                               reference("leaky_relu", x, negative_slope=0.1))
    np.testing.assert_allclose(activations.elu(x, alpha=0.5), reference("elu", x, alpha=0.5))
    np.testing.assert_allclose(activations.softmax(x, axis=0), reference("softmax", x, axis=0))
    np.testing.assert_allclose(activations.softmax(x, axis=-1), reference("softmax", x))
    np.testing.assert_allclose(activations.gelu(x, approximate=True), reference("gelu", x, approximate=True),
                               rtol=1e-14)
    np.testing.assert_allclose(activations.gelu(x, approximate=False), reference("gelu", x), atol=1e-6)
    # the shared objects keep their defaults after a configured call
    np.testing.assert_allclose(activations.leaky_relu(np.array([-1.0])), [-0.2])
    assert activations.gelu.approximate is False and activations.softmax.axis == -1
    with pytest.raises(TypeError, match="approx"):
        activations.gelu(x, approx=True)
    with pytest.raises(TypeError):
        activations.tanh(x, alpha=1.0)
    with pytest.raises(ValueError, match="negative_slope"):
        activations.relu(x, negative_slope=-1.0)
    with pytest.raises(ValueError, match="max_value"):
        activations.relu(x, max_value=-1.0)


# ---------------------------------------------------------------------------------------------
# Gradients (float64, central differences).

def _check_gradient(act, x, seed=1):
    x = np.array(x, dtype=np.float64)
    g = np.random.default_rng(seed).standard_normal(x.shape)
    y = act(x)
    dx = act.backward(g, x, y)
    num = numerical_gradient(lambda: float(np.sum(act(x) * g)), x)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8, err_msg=repr(act))


@pytest.mark.parametrize("name", NAMES)
def test_gradients(name):
    x = np.random.default_rng(3).uniform(-5, 5, (4, 5))
    _check_gradient(activations.get(name), away_from_kinks(x, KINKS.get(name, [])))


@pytest.mark.parametrize("act", [activations._LeakyReLU(0.05), activations._ELU(0.7), activations._Softmax(0),
                                 activations._Softmax(1), activations._GELU(approximate=True)], ids=repr)
def test_configured_gradients(act):
    _check_gradient(act, away_from_kinks(np.random.default_rng(4).uniform(-4, 4, (3, 4, 2)), [0.0]))


def test_gradients_at_large_magnitude_are_the_asymptotes():
    x = np.array([-50.0, 50.0])
    ones = np.ones(2)
    expect = {"sigmoid": [0, 0], "tanh": [0, 0], "softplus": [0, 1], "silu": [0, 1], "gelu": [0, 1],
              "hard_sigmoid": [0, 0], "elu": [0, 1], "relu": [0, 1], "softsign": [1 / 51**2, 1 / 51**2]}
    for name, want in expect.items():
        act = activations.get(name)
        np.testing.assert_allclose(act.backward(ones, x, act(x)), want, atol=1e-15, err_msg=name)


# ---------------------------------------------------------------------------------------------
# Large magnitudes.

@pytest.mark.parametrize("dt,big", [(np.float32, 1e30), (np.float32, 3e38), (np.float64, 1e300)])
def test_large_magnitudes_stay_finite(dt, big):
    x = np.array([[-big, -1e4, -1.0, 0.0, 1.0, 1e4, big]], dtype=dt)
    acts = [activations.get(n) for n in NAMES] + [activations._GELU(True), activations._ReLU(0.1, 6.0, 0.5)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            for act in acts:
                y = act(x)
                dx = act.backward(np.ones_like(y), x, y)
                assert y.dtype == dt and dx.dtype == dt, act
                assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx)), (act, y, dx)
    # and the values are the asymptotes
    ends = {"sigmoid": (0, 1), "tanh": (-1, 1), "hard_sigmoid": (0, 1), "softsign": (-1, 1), "relu": (0, big),
            "silu": (0, big), "gelu": (0, big), "softplus": (0, big), "elu": (-1, big)}
    for name, (lo, hi) in ends.items():
        y = activations.get(name)(x)
        np.testing.assert_allclose([y[0, 0], y[0, -1]], [lo, hi], rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(activations.softmax(np.array([[-big, big]], dt)), [[0, 1]])


# ---------------------------------------------------------------------------------------------
# get / serialize.

@pytest.mark.parametrize("name", NAMES)
def test_get_serialize_round_trip(name):
    act = activations.get(name)
    assert isinstance(act, activations.Activation)
    canonical = "silu" if name == "swish" else name
    assert act.name == canonical and act.__name__ == canonical
    assert activations.serialize(act) == canonical
    assert activations.serialize(name) == canonical
    assert activations.get(activations.serialize(act)) is act
    assert activations.get(act) is act
    assert getattr(activations, name) is act  # the module attribute, as keras.activations.relu


def test_get_special_cases():
    assert activations.get(None) is activations.linear
    assert activations.swish is activations.silu
    assert activations.serialize(None) == "linear"
    with pytest.raises(ValueError, match="'no_such_activation'"):
        activations.get("no_such_activation")
    with pytest.raises(TypeError, match="activation"):
        activations.get(3)
