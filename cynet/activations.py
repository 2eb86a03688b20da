"""Activation functions, Keras 3 names and defaults, each with its derivative.

An activation is an object that is called like a function (`relu(x)`, or with Keras's keyword
arguments: `relu(x, max_value=6.0)`, `leaky_relu(x, negative_slope=0.1)`, `elu(x, alpha=0.5)`,
`softmax(x, axis=1)`, `gelu(x, approximate=True)`) and has `backward(dy, x, y)`, the gradient
with respect to its input given the upstream gradient, its input and its output. The hot ones run
on `cynet.kernels`; the rest are a line of NumPy each.
"""
from typing import Any

import numpy as np

from . import kernels as K


class Activation:
    """Base class: subclasses define `forward(x)` and `backward(dy, x, y)`."""

    name: str | None = None

    def __call__(self, x, *args, **kwargs):
        # Keras's function arguments (`relu(x, max_value=6)`) configure a one-off instance.
        fn = type(self)(*args, **kwargs) if args or kwargs else self
        return fn.forward(np.asarray(x))

    def forward(self, x: Any) -> np.ndarray:
        """The activation of `x` (float32 or float64; other dtypes are cast to float32).

        Args:
            x: Input array.
        """
        raise NotImplementedError

    def backward(self, dy: np.ndarray, x: Any, y: np.ndarray) -> np.ndarray:
        """The gradient with respect to `x`, given the output gradient `dy`.

        Args:
            dy: Gradient of the loss with respect to the activation's output.
            x: Input array.
            y: The forward output, `activation(x)` (cached by the caller so the backward need not recompute
                it).
        """
        raise NotImplementedError

    @property
    def __name__(self):
        return self.name

    def __repr__(self):
        return f"<activation {self.name}>"


def _float(x):
    x = np.asarray(x)
    return x if x.dtype.kind == "f" and x.dtype.itemsize >= 4 else x.astype(np.float32)


class _Linear(Activation):
    """Identity activation, `linear(x) = x`.

    Args:
        x: Input array.
    """
    name = "linear"

    def forward(self, x):
        return x

    def backward(self, dy, x, y):
        return dy


class _ReLU(Activation):
    """Keras 3 relu(x, negative_slope=0.0, max_value=None, threshold=0.0): x above the threshold,
    clipped to [0, max_value] when max_value is given, minus negative_slope * relu(threshold - x).

    Args:
        x: Input array.
    """

    name = "relu"

    def __init__(self, negative_slope=0.0, max_value=None, threshold=0.0):
        self.negative_slope = float(negative_slope)
        self.max_value = None if max_value is None else float(max_value)
        self.threshold = float(threshold)
        if self.negative_slope < 0:
            raise ValueError(f"negative_slope must be >= 0; received negative_slope={negative_slope!r}")
        if self.max_value is not None and self.max_value < 0:
            raise ValueError(f"max_value must be >= 0; received max_value={max_value!r}")
        self._plain = self.negative_slope == 0 and self.max_value is None and self.threshold == 0

    def forward(self, x):
        if self._plain:
            return K.relu_forward(x)
        x = _float(x)
        y = np.where(x > self.threshold, x, 0)
        if self.max_value is not None:
            y = np.clip(y, 0, self.max_value)
        if self.negative_slope:
            y = y - self.negative_slope * np.maximum(self.threshold - x, 0)
        return y.astype(x.dtype, copy=False)

    def backward(self, dy, x, y):
        if self._plain:
            return K.relu_backward(dy, y)
        x = np.asarray(x)
        passes = x > self.threshold
        if self.max_value is not None:
            passes &= (x > 0) & (x < self.max_value)
        d = np.where(passes, 1.0, np.where(x < self.threshold, self.negative_slope, 0.0))
        return (dy * d).astype(y.dtype, copy=False)


class _LeakyReLU(Activation):
    """Leaky ReLU with Keras's default slope 0.2 below 0 (`keras.activations.leaky_relu`).

    Args:
        x: Input array.
    """
    name = "leaky_relu"

    def __init__(self, negative_slope=0.2):
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        return K.leaky_relu_forward(x, self.negative_slope)

    def backward(self, dy, x, y):
        return K.leaky_relu_backward(dy, x, self.negative_slope)


class _ELU(Activation):
    """Exponential linear unit: `x` for `x > 0`, `alpha * (exp(x) - 1)` below (alpha 1).

    Args:
        x: Input array.
    """
    name = "elu"

    def __init__(self, alpha=1.0):
        self.alpha = float(alpha)

    def forward(self, x):
        return K.elu_forward(x, self.alpha)

    def backward(self, dy, x, y):
        return K.elu_backward(dy, x, y, self.alpha)


class _SELU(Activation):
    """Scaled ELU with the constants of Klambauer et al. (2017); use with `lecun_normal` weights.

    Args:
        x: Input array.
    """
    name = "selu"
    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946

    def forward(self, x):
        x = _float(x)
        neg = self.alpha * np.expm1(np.minimum(x, 0))
        return (self.scale * np.where(x > 0, x, neg)).astype(x.dtype, copy=False)

    def backward(self, dy, x, y):
        return (dy * np.where(x > 0, self.scale, y + self.scale * self.alpha)).astype(y.dtype, copy=False)


class _Sigmoid(Activation):
    """Logistic sigmoid, `1 / (1 + exp(-x))`, computed without overflow.

    Args:
        x: Input array.
    """
    name = "sigmoid"

    def forward(self, x):
        return K.sigmoid_forward(x)

    def backward(self, dy, x, y):
        return K.sigmoid_backward(dy, y)


class _HardSigmoid(Activation):
    """Keras 3: relu6(x + 3) / 6.

    Args:
        x: Input array.
    """

    name = "hard_sigmoid"

    def forward(self, x):
        x = _float(x)
        return np.clip(x / 6 + 0.5, 0, 1).astype(x.dtype, copy=False)

    def backward(self, dy, x, y):
        return (dy * (((y > 0) & (y < 1)) / 6)).astype(y.dtype, copy=False)


class _Tanh(Activation):
    """Hyperbolic tangent.

    Args:
        x: Input array.
    """
    name = "tanh"

    def forward(self, x):
        return K.tanh_forward(x)

    def backward(self, dy, x, y):
        return K.tanh_backward(dy, y)


class _Softmax(Activation):
    """Softmax over the last axis (the maximum is subtracted first).

    Args:
        x: Input array.
    """
    name = "softmax"

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        return K.softmax_forward(x, axis=self.axis)

    def backward(self, dy, x, y):
        return K.softmax_backward(dy, y, axis=self.axis)


class _Softplus(Activation):
    """`log(1 + exp(x))`, computed without overflow.

    Args:
        x: Input array.
    """
    name = "softplus"

    def forward(self, x):
        x = _float(x)
        return (np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)).astype(x.dtype, copy=False)

    def backward(self, dy, x, y):
        return dy * K.sigmoid_forward(x)


class _Softsign(Activation):
    """`x / (1 + |x|)`.

    Args:
        x: Input array.
    """
    name = "softsign"

    def forward(self, x):
        x = _float(x)
        return x / (1 + np.abs(x))

    def backward(self, dy, x, y):
        d = 1 + np.abs(x)
        return dy / d / d  # not dy / (d * d): d * d overflows for |x| > 1e19 in float32


class _Swish(Activation):
    """SiLU (swish), `x * sigmoid(x)`; also available as `swish`.

    Args:
        x: Input array.
    """
    name = "silu"

    def forward(self, x):
        x = _float(x)
        return x * K.sigmoid_forward(x)

    def backward(self, dy, x, y):
        s = K.sigmoid_forward(x)
        return dy * (s * (1 + x * (1 - s)))


_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erf(x, derivative=False):
    """erf via Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7) and, with derivative=True, the exact
    derivative of that approximation (so forward and backward stay consistent)."""
    a = np.abs(x)
    t = 1.0 / (1.0 + _ERF_P * a)
    poly, dpoly = 0.0, 0.0
    for c in reversed(_ERF_A):
        dpoly = dpoly * t + poly
        poly = poly * t + c
    dpoly = dpoly * t + poly  # d(t * poly(t)) / dt
    poly = poly * t
    e = np.exp(-np.square(np.minimum(a, 30.0)))  # exp(-900) is 0 in float64 already
    value = np.sign(x) * (1.0 - poly * e)
    if not derivative:
        return value
    dt_da = -_ERF_P * t * t
    return value, (-(dpoly * dt_da) * e + poly * 2 * a * e)


class _GELU(Activation):
    """Keras 3 gelu(x, approximate=False): x * Phi(x); approximate=True uses the tanh form.

    Phi uses the erf approximation of Abramowitz & Stegun 7.1.26 (|erf error| < 1.5e-7, so the
    gelu value is within 1e-6 of the exact one), and backward is the exact derivative of that.

    Args:
        x: Input array.
    """

    name = "gelu"
    _c = np.sqrt(2 / np.pi)

    def __init__(self, approximate=False):
        self.approximate = bool(approximate)

    def _tanh_inner(self, x):
        # tanh(inner) is +-1 exactly for |x| >= 10 in float32 and float64; clipping keeps x**3 finite.
        xc = np.clip(x, -10, 10)
        return xc, np.tanh(self._c * (xc + 0.044715 * xc**3))

    def forward(self, x):
        x = _float(x)
        if self.approximate:
            _, th = self._tanh_inner(x)
            return (0.5 * x * (1 + th)).astype(x.dtype, copy=False)
        return (0.5 * x * (1 + _erf(x / np.sqrt(2)))).astype(x.dtype, copy=False)

    def backward(self, dy, x, y):
        if self.approximate:
            xc, th = self._tanh_inner(x)
            d = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * self._c * (1 + 3 * 0.044715 * xc * xc)
        else:
            erf, derf = _erf(x / np.sqrt(2), derivative=True)
            d = 0.5 * (1 + erf) + 0.5 * x * derf / np.sqrt(2)
        return (dy * d).astype(y.dtype, copy=False)


linear = _Linear()
relu = _ReLU()
leaky_relu = _LeakyReLU()
elu = _ELU()
selu = _SELU()
sigmoid = _Sigmoid()
hard_sigmoid = _HardSigmoid()
tanh = _Tanh()
softmax = _Softmax()
softplus = _Softplus()
softsign = _Softsign()
silu = _Swish()
swish = silu
gelu = _GELU()

_REGISTRY = {
    a.name: a
    for a in (linear, relu, leaky_relu, elu, selu, sigmoid, hard_sigmoid, tanh, softmax, softplus, softsign, silu, gelu)
}
_REGISTRY["swish"] = silu


def get(identifier: Any) -> Any:
    """An activation from a Keras name ("relu"), an activation object, or None (linear).

    Args:
        identifier: A name (string), a config dictionary, an instance, a callable, or `None`.
    """
    if identifier is None:
        return linear
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str):
        try:
            return _REGISTRY[identifier.lower()]
        except KeyError:
            raise ValueError(
                f"Unknown activation {identifier!r}; expected one of {sorted(_REGISTRY)}"
            ) from None
    raise TypeError(f"activation must be a string, an Activation or None; received {identifier!r}")


def serialize(activation: Any) -> Any:
    """The registered name of an activation (what `get` takes back).

    Args:
        activation: An activation (instance or name).
    """
    return get(activation).name
