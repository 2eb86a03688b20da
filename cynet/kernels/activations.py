"""Activation and loss kernels: fused softmax + cross-entropy, sigmoid + binary cross-entropy,
softmax, and the elementwise activations (relu, leaky_relu, elu, sigmoid, tanh), forward and backward.

Every function validates and normalises its arguments here (dtype, shape agreement, class
indices, axis), then dispatches to the compiled kernel or its NumPy twin (`use_backend`).
Inputs may be any array-like of real numbers; bool/int/float16 become float32, float64 stays
float64. Outputs are new C-contiguous arrays in that float dtype; no argument is modified.

All of them are numerically stable for inputs of any finite magnitude (logits of 1e4 in float32,
1e30 in float64 give finite losses and gradients, with no NumPy overflow warnings). NaN inputs
give NaN outputs.
"""
from typing import Any

import numpy as np

from .._validation import as_array, as_float, float_dtype, is_int, is_real
from ._backend import impl
from .._typing import ArrayLike

__all__ = [
    "softmax_cross_entropy",
    "sigmoid_cross_entropy",
    "softmax_forward",
    "softmax_backward",
    "relu_forward",
    "relu_backward",
    "leaky_relu_forward",
    "leaky_relu_backward",
    "elu_forward",
    "elu_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "tanh_forward",
    "tanh_backward",
]


# ---------------------------------------------------------------------------------------------
# Normalisation helpers.

def _array(name, a):
    return as_array(name, a)


def _floats(**arrays):
    """Named array-likes -> C-contiguous arrays of one common float dtype, shapes kept (also 0-d)."""
    values = tuple(arrays.values())
    first = values[0]
    if type(first) is np.ndarray and first.dtype in _FLOATS and all(
            type(a) is np.ndarray and a.dtype is first.dtype and a.flags.c_contiguous for a in values):
        return values   # (a layer's own arrays, every call: nothing to convert)
    arrays = {name: _array(name, a) for name, a in arrays.items()}
    dtype = float_dtype(**arrays)
    return tuple(as_float(name, a, dtype).reshape(a.shape) for name, a in arrays.items())


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _same_shape(name, a, ref_name, ref):
    if a.shape != ref.shape:
        raise ValueError(f"{name} must have the shape of {ref_name} {ref.shape}; received shape {a.shape}")


def _real(name, value):
    if type(value) is float and value - value == 0.0:   # (finite: a layer's own slope, every call)
        return value
    if not is_real(value) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number; received {name}={value!r}")
    return float(value)


def _axis(axis, ndim, name):
    if not is_int(axis):
        raise ValueError(f"axis must be an integer; received axis={axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis must lie in [{-ndim}, {ndim}) for {name} of {ndim} dimensions; received axis={axis}")
    return int(axis) % ndim


def _classes_last(name, x, axis):
    """x with `axis` moved last, as C-contiguous (rows, K), plus the moved shape."""
    if x.ndim < 1:
        raise ValueError(f"{name} must have at least 1 dimension (the class axis); received shape {x.shape}")
    axis = _axis(axis, x.ndim, name)
    if x.shape[axis] < 1:
        raise ValueError(f"{name} must have at least one entry along axis {axis} (K >= 1); received shape {x.shape}")
    if axis != x.ndim - 1:
        x = np.ascontiguousarray(np.moveaxis(x, axis, -1))
    return x.reshape(-1, x.shape[-1]), x.shape, axis


def _restore(y, moved_shape, axis, ndim):
    y = y.reshape(moved_shape)
    if axis != ndim - 1:
        y = np.ascontiguousarray(np.moveaxis(y, -1, axis))
    return y


def _class_indices(labels, k):
    """Integer (or integral-valued float) class indices -> flat int64, each in [0, k)."""
    kind = labels.dtype.kind
    if kind == "f":
        if labels.size and not (np.all(np.isfinite(labels)) and np.all(labels == np.floor(labels))):
            raise ValueError("labels with the shape of logits.shape[:-1] must be integer class indices; "
                             "received non-integral values")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must be class indices in [0, {k}) for K={k} classes (the last axis of logits); "
                         f"received values in [{labels.min():g}, {labels.max():g}]")
    return np.ascontiguousarray(labels, dtype=np.int64).reshape(-1)


# ---------------------------------------------------------------------------------------------
# Losses.

def softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> Any:
    """Fused softmax + cross-entropy over the last axis, loss and gradient in one pass per row.

    Args:
        logits: (..., K) float32|float64 (IN), K >= 1.
        labels: (IN) either integer class indices with shape logits.shape[:-1], each in [0, K)
            (integral-valued floats are accepted), or float targets (one-hot or probabilities)
            with the shape of logits.

    Returns:
        (loss, dlogits): loss of shape logits.shape[:-1], the per-sample cross-entropy
        -sum_j t_j * log_softmax(z)_j; dlogits of logits' shape, softmax(z) * sum_j t_j - t
        (softmax(z) - t for targets summing to 1), the gradient of each sample's loss: NOT divided
        by the batch size (the loss layer scales).

    Raises:
        ValueError: shapes that fit neither form, out-of-range class indices, K = 0.
        TypeError: complex, object or string inputs.
    """
    (z,) = _floats(logits=logits)
    if z.ndim < 1:
        raise ValueError(f"logits must have at least 1 dimension (the class axis); received shape {z.shape}")
    k = z.shape[-1]
    if k < 1:
        raise ValueError(f"logits must have at least one class along its last axis (K >= 1); received shape {z.shape}")
    labels = _array("labels", labels)
    if labels.dtype.kind not in "biuf":
        raise TypeError("labels must be a real numeric array (class indices or targets); "
                        f"received dtype {labels.dtype}")
    lead = z.shape[:-1]
    z2 = z.reshape(-1, k)
    if labels.shape == lead:
        loss, g = impl("activations").softmax_cross_entropy_sparse(z2, _class_indices(labels, k))
    elif labels.shape == z.shape:
        t = as_float("labels", labels, z.dtype).reshape(-1, k)
        loss, g = impl("activations").softmax_cross_entropy_dense(z2, t)
    else:
        raise ValueError(f"labels must have shape {lead} (integer class indices) or {z.shape} (targets, "
                         f"one-hot or probabilities) for logits of shape {z.shape}; received shape {labels.shape}")
    return loss.reshape(lead), g.reshape(z.shape)


def sigmoid_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> Any:
    """Fused sigmoid + binary cross-entropy, elementwise.

    Args:
        logits: Any shape, float32|float64 (IN).
        labels: The shape of logits, float/int/bool targets in [0, 1] (IN).

    Returns:
        (loss, dlogits), both of logits' shape and dtype, per element (not averaged):
        loss = max(z, 0) - z*y + log1p(exp(-|z|)), dlogits = sigmoid(z) - y.
    """
    (z,) = _floats(logits=logits)
    labels = _array("labels", labels)
    _same_shape("labels", labels, "logits", z)
    y = as_float("labels", labels, z.dtype)
    loss, g = impl("activations").sigmoid_cross_entropy(z.reshape(-1), y.reshape(-1))
    return loss.reshape(z.shape), g.reshape(z.shape)


# ---------------------------------------------------------------------------------------------
# Softmax.

def softmax_forward(x: ArrayLike, axis: int = -1) -> Any:
    """y = exp(x - max) / sum(exp(x - max)) along `axis`.

    Args:
        x: Any shape with ndim >= 1 and at least one entry along axis, float32|float64 (IN).
        axis: The softmax axis.

    Returns:
        y of x's shape and dtype.
    """
    if type(x) is np.ndarray and x.ndim == 2 and type(axis) is int and axis in (-1, 1) and x.shape[1] \
            and x.dtype in _FLOATS and x.flags.c_contiguous:
        return impl("activations").softmax_forward(x)   # (a layer's rows of logits, every call)
    (x,) = _floats(x=x)
    rows, moved, ax = _classes_last("x", x, axis)
    return _restore(impl("activations").softmax_forward(rows), moved, ax, x.ndim)


def softmax_backward(dy: ArrayLike, y: ArrayLike, axis: int = -1) -> Any:
    """dx = y * (dy - sum(dy * y, axis)), the gradient of softmax along `axis`.

    Args:
        dy: Upstream gradient (IN), y's shape (ndim >= 1).
        y: The softmax output (IN).
        axis: The softmax axis, as given to softmax_forward.

    Returns:
        dx of y's shape.
    """
    dy, y = _floats(dy=dy, y=y)
    _same_shape("dy", dy, "y", y)
    rows_y, moved, ax = _classes_last("y", y, axis)
    rows_dy, _, _ = _classes_last("dy", dy, axis)
    return _restore(impl("activations").softmax_backward(rows_dy, rows_y), moved, ax, y.ndim)


# ---------------------------------------------------------------------------------------------
# Elementwise activations: any shape (0-d and empty included), outputs of the input's shape.

def _unary(fn_name, x, *args):
    (x,) = _floats(x=x)
    return getattr(impl("activations"), fn_name)(x.reshape(-1), *args).reshape(x.shape)


def _binary(fn_name, names, arrays, *args):
    arrays = _floats(**dict(zip(names, arrays)))
    ref = arrays[-1]
    for name, a in zip(names[:-1], arrays[:-1]):
        _same_shape(name, a, names[-1], ref)
    flat = [a.reshape(-1) for a in arrays]
    return getattr(impl("activations"), fn_name)(*flat, *args).reshape(ref.shape)


def relu_forward(x: ArrayLike) -> Any:
    """y = max(x, 0); NaN propagates.

    Args:
        x: Any shape (IN).
    """
    return _unary("relu_forward", x)


def relu_backward(dy: ArrayLike, y: ArrayLike) -> Any:
    """dx = dy where y > 0, else 0.

    Args:
        dy: Upstream gradient (IN).
        y: relu_forward(x) (IN), dy's shape.
    """
    return _binary("relu_backward", ("dy", "y"), (dy, y))


def leaky_relu_forward(x: ArrayLike, negative_slope: float = 0.2) -> Any:
    """y = x where x > 0, else negative_slope * x.

    Args:
        x: Any shape (IN).
        negative_slope: Slope below 0.
    """
    return _unary("leaky_relu_forward", x, _real("negative_slope", negative_slope))


def leaky_relu_backward(dy: ArrayLike, x: ArrayLike, negative_slope: float = 0.2) -> Any:
    """dx = dy where x > 0, else negative_slope * dy.

    Args:
        dy: Upstream gradient (IN).
        x: The forward input (IN), dy's shape.
        negative_slope: As given to the forward.
    """
    return _binary("leaky_relu_backward", ("dy", "x"), (dy, x), _real("negative_slope", negative_slope))


def elu_forward(x: ArrayLike, alpha: float = 1.0) -> Any:
    """y = x where x > 0, else alpha * (exp(x) - 1).

    Args:
        x: Any shape (IN).
        alpha: Scale of the negative part.
    """
    return _unary("elu_forward", x, _real("alpha", alpha))


def elu_backward(dy: ArrayLike, x: ArrayLike, y: ArrayLike, alpha: float = 1.0) -> Any:
    """dx = dy where x > 0, else dy * (y + alpha) (= dy * alpha * exp(x)).

    Args:
        dy: Upstream gradient (IN).
        x: The forward input (IN), dy's shape.
        y: elu_forward(x, alpha) (IN), dy's shape.
        alpha: As given to the forward.
    """
    alpha = _real("alpha", alpha)
    dy, x, y = _floats(dy=dy, x=x, y=y)
    _same_shape("dy", dy, "x", x)
    _same_shape("y", y, "x", x)
    return impl("activations").elu_backward(dy.reshape(-1), x.reshape(-1), y.reshape(-1), alpha).reshape(x.shape)


def sigmoid_forward(x: ArrayLike) -> Any:
    """y = 1 / (1 + exp(-x)).

    Args:
        x: Any shape (IN).
    """
    return _unary("sigmoid_forward", x)


def sigmoid_backward(dy: ArrayLike, y: ArrayLike) -> Any:
    """dx = dy * y * (1 - y).

    Args:
        dy: Upstream gradient (IN).
        y: sigmoid_forward(x) (IN), dy's shape.
    """
    return _binary("sigmoid_backward", ("dy", "y"), (dy, y))


def tanh_forward(x: ArrayLike) -> Any:
    """y = tanh(x).

    Args:
        x: Any shape (IN).
    """
    return _unary("tanh_forward", x)


def tanh_backward(dy: ArrayLike, y: ArrayLike) -> Any:
    """dx = dy * (1 - y**2).

    Args:
        dy: Upstream gradient (IN).
        y: tanh_forward(x) (IN), dy's shape.
    """
    return _binary("tanh_backward", ("dy", "y"), (dy, y))
