"""Neural-network ops of cynet.ops (keras.ops.relu, softmax, the cross-entropies, ...), each with its
vector-Jacobian product on the tape."""
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend
from .._typing import ArrayLike, Axis, DTypeLike
from . import numpy_ops as _np
from .numpy_ops import _apply, _values


def _erf(a):
    return np.vectorize(math.erf, otypes=[np.float64])(a).astype(np.result_type(a, np.float32), copy=False)


def erf(x: ArrayLike) -> np.ndarray:
    """Element-wise error function.

    Differentiable: while a tape records, the gradient flows to float inputs.

    Args:
        x: Input array (float for the differentiable ops).
    """
    return _apply("erf", (x,), _erf, lambda g, v, o, i: g * (2 / math.sqrt(math.pi)) * np.exp(-v[0] * v[0]))


def relu(x: ArrayLike) -> np.ndarray:
    """Rectified linear unit, `max(x, 0)`.

    Differentiable: while a tape records, the gradient flows to float inputs.

    Args:
        x: Input array (float for the differentiable ops).
    """
    return _apply("relu", (x,), lambda a: np.maximum(a, 0), lambda g, v, o, i: g * (v[0] > 0))


def relu6(x: ArrayLike) -> np.ndarray:
    """ReLU capped at 6, `min(max(x, 0), 6)`.

    Differentiable: while a tape records, the gradient flows to float inputs.

    Args:
        x: Input array (float for the differentiable ops).
    """
    return _apply("relu6", (x,), lambda a: np.clip(a, 0, 6), lambda g, v, o, i: g * ((v[0] > 0) & (v[0] < 6)))


def _sigmoid(a):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-a))


def sigmoid(x: ArrayLike) -> np.ndarray:
    """Logistic sigmoid, `1 / (1 + exp(-x))`, computed without overflow.

    Differentiable: while a tape records, the gradient flows to float inputs.

    Args:
        x: Input array (float for the differentiable ops).
    """
    return _apply("sigmoid", (x,), _sigmoid, lambda g, v, o, i: g * o * (1 - o))


def softplus(x: ArrayLike) -> np.ndarray:
    """`log(1 + exp(x))`, computed without overflow.

    Differentiable: while a tape records, the gradient flows to float inputs.

    Args:
        x: Input array (float for the differentiable ops).
    """
    return _apply("softplus", (x,), lambda a: np.logaddexp(a, 0), lambda g, v, o, i: g * _sigmoid(v[0]))


def softsign(x: ArrayLike) -> np.ndarray:
    """`x / (1 + |x|)`.

    Differentiable: while a tape records, the gradient flows to float inputs.

    Args:
        x: Input array (float for the differentiable ops).
    """
    return _apply("softsign", (x,), lambda a: a / (1 + np.abs(a)), lambda g, v, o, i: g / (1 + np.abs(v[0])) ** 2)


def silu(x: ArrayLike) -> np.ndarray:
    """SiLU (swish), `x * sigmoid(x)`.

    Differentiable: while a tape records, the gradient flows to float inputs.

    Args:
        x: Input array (float for the differentiable ops).
    """
    def grad(g, v, o, i):
        s = _sigmoid(v[0])
        return g * (s + v[0] * s * (1 - s))
    return _apply("silu", (x,), lambda a: a * _sigmoid(a), grad)


swish = silu


def log_sigmoid(x: ArrayLike) -> np.ndarray:
    """`log(sigmoid(x))`, computed stably.

    Differentiable: while a tape records, the gradient flows to float inputs.

    Args:
        x: Input array (float for the differentiable ops).
    """
    return _apply("log_sigmoid", (x,), lambda a: -np.logaddexp(-a, 0), lambda g, v, o, i: g * _sigmoid(-v[0]))


def leaky_relu(x: ArrayLike, negative_slope: float = 0.2) -> np.ndarray:
    """Leaky ReLU: `x` for `x >= 0`, `negative_slope * x` below.

    Differentiable: while a tape records, the gradient flows to float inputs.

    Args:
        x: Input array (float for the differentiable ops).
        negative_slope: Slope of the function for `x < 0`.
    """
    return _apply("leaky_relu", (x,), lambda a: np.where(a >= 0, a, negative_slope * a),
                  lambda g, v, o, i: g * np.where(v[0] >= 0, 1, negative_slope))


def elu(x: ArrayLike, alpha: float = 1.0) -> np.ndarray:
    """Exponential linear unit: `x` for `x > 0`, `alpha * (exp(x) - 1)` below.

    Differentiable: while a tape records, the gradient flows to float inputs.

    Args:
        x: Input array (float for the differentiable ops).
        alpha: Scale of the negative part, `alpha * (exp(x) - 1)` for `x <= 0`.
    """
    return _apply("elu", (x,), lambda a: np.where(a > 0, a, alpha * np.expm1(np.minimum(a, 0))),
                  lambda g, v, o, i: g * np.where(v[0] > 0, 1, o + alpha))


def selu(x: ArrayLike) -> np.ndarray:
    """Scaled ELU with the constants of Klambauer et al. (2017).

    Differentiable: while a tape records, the gradient flows to float inputs.

    Args:
        x: Input array (float for the differentiable ops).
    """
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    return _apply("selu", (x,), lambda a: scale * np.where(a > 0, a, alpha * np.expm1(np.minimum(a, 0))),
                  lambda g, v, o, i: g * np.where(v[0] > 0, scale, o + scale * alpha))


def hard_sigmoid(x: ArrayLike) -> np.ndarray:
    """Piecewise-linear sigmoid, `clip(x / 6 + 0.5, 0, 1)` (Keras 3's definition).

    Differentiable: while a tape records, the gradient flows to float inputs.

    Args:
        x: Input array (float for the differentiable ops).
    """
    return _apply("hard_sigmoid", (x,), lambda a: np.clip(a / 6 + 0.5, 0, 1),
                  lambda g, v, o, i: g * ((v[0] > -3) & (v[0] < 3)) / 6)


def gelu(x: ArrayLike, approximate: bool = True) -> np.ndarray:
    """Gaussian error linear unit.

    Differentiable: while a tape records, the gradient flows to float inputs.

    Args:
        x: Input array (float for the differentiable ops).
        approximate: If `True` (Keras's default), the tanh approximation; otherwise the exact erf form.
    """
    c = math.sqrt(2 / math.pi)
    if approximate:
        def compute(a):
            return 0.5 * a * (1 + np.tanh(c * (a + 0.044715 * a ** 3)))

        def grad(g, v, o, i):
            a = v[0]
            t = np.tanh(c * (a + 0.044715 * a ** 3))
            return g * (0.5 * (1 + t) + 0.5 * a * (1 - t * t) * c * (1 + 3 * 0.044715 * a * a))
    else:
        def compute(a):
            return 0.5 * a * (1 + _erf(a / math.sqrt(2)))

        def grad(g, v, o, i):
            a = v[0]
            return g * (0.5 * (1 + _erf(a / math.sqrt(2))) + a * np.exp(-a * a / 2) / math.sqrt(2 * math.pi))
    return _apply("gelu", (x,), compute, grad)


def _softmax(a, axis):
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """Softmax along `axis` (the maximum is subtracted first).

    Differentiable: while a tape records, the gradient flows to float inputs.

    Args:
        x: Input array (float for the differentiable ops).
        axis: Axis along which the softmax is taken.
    """
    def grad(g, v, o, i):
        return o * (g - np.sum(g * o, axis=axis, keepdims=True))
    return _apply("softmax", (x,), lambda a: _softmax(a, axis), grad)


def log_softmax(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """Log of the softmax along `axis`, computed stably.

    Differentiable: while a tape records, the gradient flows to float inputs.

    Args:
        x: Input array (float for the differentiable ops).
        axis: Axis along which the log-softmax is taken.
    """
    def compute(a):
        m = np.max(a, axis=axis, keepdims=True)
        return a - m - np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))

    def grad(g, v, o, i):
        return g - np.exp(o) * np.sum(g, axis=axis, keepdims=True)
    return _apply("log_softmax", (x,), compute, grad)


def one_hot(x: ArrayLike, num_classes: int, axis: int = -1, dtype: DTypeLike | None = None,
            sparse: bool | None = False) -> np.ndarray:
    """One-hot encode integer class indices: a new axis of size `num_classes`. Indices outside `[0, num_classes)`
    give an all-zero row.

    Not differentiable (integer/boolean or piecewise-constant result): no gradient flows through it.

    Args:
        x: Integer array of class indices.
        num_classes: Number of classes: the size of the new axis.
        axis: Position of the new class axis (-1: last).
        dtype: Output dtype (a NumPy dtype or its name); `None` infers it (`floatx()` for the creation ops).
        sparse: Keras's sparse output; cynet always returns a dense array (the argument is accepted and
            ignored).
    """
    idx = np.asarray(_values(x))
    out = (idx[..., None] == np.arange(num_classes)).astype(dtype or backend.floatx())
    return np.moveaxis(out, -1, axis) if axis != -1 else out


def multi_hot(inputs: ArrayLike, num_classes: int, axis: int = -1, dtype: DTypeLike | None = None,
              sparse: bool | None = False) -> np.ndarray:
    """Multi-hot encode integer class indices: 1 for every class that appears in a sample.

    Not differentiable (integer/boolean or piecewise-constant result): no gradient flows through it.

    Args:
        inputs: Integer array of class indices, (batch, n) for n indices per sample.
        num_classes: Number of classes: the size of the new axis.
        axis: Position of the class axis (-1: last).
        dtype: Output dtype (a NumPy dtype or its name); `None` infers it (`floatx()` for the creation ops).
        sparse: Keras's sparse output; cynet always returns a dense array (the argument is accepted and
            ignored).
    """
    return np.max(one_hot(inputs, num_classes, axis=axis, dtype=dtype), axis=-2 if axis == -1 else axis)


def _clipped(output):
    eps = backend.epsilon()
    return _np.clip(output, eps, 1 - eps)


def binary_crossentropy(target: ArrayLike, output: ArrayLike, from_logits: bool = False) -> np.ndarray:
    """Elementwise binary cross-entropy (Keras: no reduction).

    Args:
        target: Ground-truth values with the same shape as `output` (class indices for the sparse form).
        output: Predictions: probabilities, or logits when `from_logits=True`.
        from_logits: Whether `output` holds logits (unnormalized scores) rather than probabilities.
    """
    if from_logits:
        def compute(t, z):
            return np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))

        def grad(g, v, o, i):
            t, z = v
            return g * (_sigmoid(z) - t) if i == 1 else -g * z
        return _apply("binary_crossentropy", (target, output), compute, grad)
    p = _clipped(output)
    return _np.negative(_np.add(_np.multiply(target, _np.log(p)),
                                _np.multiply(_np.subtract(1, target), _np.log(_np.subtract(1, p)))))


def categorical_crossentropy(target: ArrayLike, output: ArrayLike, from_logits: bool = False,
                             axis: int = -1) -> np.ndarray:
    """Cross-entropy over `axis` (Keras: reduced over that axis only).

    Args:
        target: Ground-truth values with the same shape as `output` (class indices for the sparse form).
        output: Predictions: probabilities, or logits when `from_logits=True`.
        from_logits: Whether `output` holds logits (unnormalized scores) rather than probabilities.
        axis: The class axis.
    """
    if from_logits:
        return _np.negative(_np.sum(_np.multiply(target, log_softmax(output, axis=axis)), axis=axis))
    p = _np.divide(output, _np.sum(output, axis=axis, keepdims=True))
    return _np.negative(_np.sum(_np.multiply(target, _np.log(_clipped(p))), axis=axis))


def sparse_categorical_crossentropy(target: ArrayLike, output: ArrayLike, from_logits: bool = False,
                                    axis: int = -1) -> np.ndarray:
    """Cross-entropy between integer class targets and predicted class probabilities (or logits), reduced over
    the class axis only (no batch reduction, as Keras's op).

    Differentiable: while a tape records, the gradient flows to float inputs.

    Args:
        target: Ground-truth values with the same shape as `output` (class indices for the sparse form).
        output: Predictions: probabilities, or logits when `from_logits=True`.
        from_logits: Whether `output` holds logits (unnormalized scores) rather than probabilities.
        axis: The class axis of `output`.
    """
    t = np.asarray(_values(target))
    if t.ndim == np.ndim(_values(output)) and t.shape[-1] == 1:
        t = t[..., 0]
    n = np.shape(_values(output))[axis]
    return categorical_crossentropy(one_hot(t.astype(np.intp), n, axis=axis,
                                            dtype=np.asarray(_values(output)).dtype), output,
                                    from_logits=from_logits, axis=axis)


def moments(x: ArrayLike, axes: Axis, keepdims: bool = False,
            synchronized: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance) over `axes`.

    Args:
        x: Input array (float for the differentiable ops).
        axes: Axes over which the mean and variance are computed.
        keepdims: If `True`, the reduced axes are kept with size 1, so the result broadcasts against `x`.
        synchronized: Keras's cross-replica flag; ignored (statistics are always local; see
            cynet.distributed).
    """
    return _np.mean(x, axis=axes, keepdims=keepdims), _np.var(x, axis=axes, keepdims=keepdims)


def normalize(x: ArrayLike, axis: Axis = -1, order: int = 2, epsilon: float | None = None) -> np.ndarray:
    """`x` divided by its L2 norm along `axis`.

    Differentiable: while a tape records, the gradient flows to float inputs.

    Args:
        x: Input array (float for the differentiable ops).
        axis: Axis (or axes) over which the norm is taken.
        order: Norm order; only 2 (the L2 norm) is supported.
        epsilon: Lower bound on the norm (normalize, 1e-12 when `None`) or the variance offset
            (batch_normalization).
    """
    if order != 2:
        raise NotImplementedError("ops.normalize: only order=2 is supported yet")
    eps = 1e-12 if epsilon is None else epsilon
    norm = _np.sqrt(_np.maximum(_np.sum(_np.square(x), axis=axis, keepdims=True), eps * eps))
    return _np.divide(x, norm)


def dot_product_attention(query: ArrayLike, key: ArrayLike, value: ArrayLike, bias: ArrayLike | None = None,
                          mask: ArrayLike | None = None, scale: float | ArrayLike | None = None,
                          is_causal: bool = False) -> np.ndarray:
    """Keras's ops.dot_product_attention on (batch, seq, heads, dim) inputs.

    Args:
        query: Queries, (batch, target_length, num_heads, head_dim).
        key: Keys, (batch, source_length, num_heads, head_dim).
        value: Values, (batch, source_length, num_heads, head_dim).
        bias: Optional additive bias broadcast against the (batch, num_heads, target, source) logits.
        mask: Optional boolean mask broadcast against the logits: `True` keeps a position.
        scale: Multiplier of the logits; `1 / sqrt(head_dim)` when `None`.
        is_causal: If `True`, each target position attends only to source positions at or before it.
    """
    d = np.shape(_values(query))[-1]
    scale = 1 / math.sqrt(d) if scale is None else scale
    logits = _np.multiply(_np.einsum("btnh,bsnh->bnts", query, key), scale)
    if bias is not None:
        logits = _np.add(logits, bias)
    tq, tk = np.shape(_values(query))[1], np.shape(_values(key))[1]
    keep = None
    if mask is not None:
        keep = np.asarray(_values(mask)).astype(bool)
    if is_causal:
        causal = np.tril(np.ones((tq, tk), dtype=bool))
        keep = causal if keep is None else keep & causal
    if keep is not None:
        big = np.finfo(np.asarray(_values(query)).dtype).min / 2
        logits = _np.where(np.broadcast_to(keep, np.shape(_values(logits))), logits, big)
    probs = softmax(logits, axis=-1)
    return _np.einsum("bnts,bsnh->btnh", probs, value)


# ------------------------------------------------------------------ on the compiled kernels
def _spatial_2d(name, x):
    if np.ndim(_values(x)) != 4:
        raise NotImplementedError(f"ops.{name}: only 2-D (4-D inputs: batch, two spatial axes, channels) is "
                                  f"supported yet; received an input of {np.ndim(_values(x))} dimensions")


def _kernel_conv(name, forward, backward, inputs, kernel, strides, padding, data_format, dilation_rate):
    """A convolution op on a compiled kernel pair (forward(x, k, bias, ...), backward(dy, x, k, ...))."""
    _spatial_2d(name, inputs)
    args = dict(strides=strides, padding=padding, dilation_rate=dilation_rate,
                data_format=data_format or backend.image_data_format())

    def grad(g, v, o, i):
        dx, dk, _ = backward(g, v[0], v[1], use_bias=False, compute_dx=(i == 0), **args)
        return dx if i == 0 else dk
    return _apply(name, (inputs, kernel), lambda x, k: forward(x, k, None, **args), grad)


def conv(inputs: ArrayLike, kernel: ArrayLike, strides: int | tuple[int, int] | None = 1, padding: str = "valid",
         data_format: str | None = None, dilation_rate: int | tuple[int, int] = 1) -> np.ndarray:
    """2-D convolution (Keras layout: kernel (KH, KW, C, F)) on cynet's conv kernels.

    Args:
        inputs: Input batch: (batch, height, width, channels) for `data_format="channels_last"`.
        kernel: Convolution kernel, (kernel_h, kernel_w, in_channels, filters).
        strides: Stride of the window: an int or a pair (height, width); `None` (pools) means `pool_size`.
        padding: `"valid"` (no padding) or `"same"` (output size `ceil(input / stride)`).
        data_format: `"channels_last"` or `"channels_first"`; `None` uses `cynet.config.image_data_format()`.
        dilation_rate: Dilation of the kernel: an int or a pair.
    """
    from ..kernels import conv as K
    return _kernel_conv("conv", K.conv2d_forward, K.conv2d_backward, inputs, kernel, strides, padding, data_format,
                        dilation_rate)


def depthwise_conv(inputs: ArrayLike, kernel: ArrayLike, strides: int | tuple[int, int] | None = 1,
                   padding: str = "valid", data_format: str | None = None,
                   dilation_rate: int | tuple[int, int] = 1) -> np.ndarray:
    """2-D depthwise convolution (kernel (KH, KW, C, depth_multiplier)) on cynet's depthwise kernels.

    Args:
        inputs: Input batch: (batch, height, width, channels) for `data_format="channels_last"`.
        kernel: Depthwise kernel, (kernel_h, kernel_w, channels, depth_multiplier).
        strides: Stride of the window: an int or a pair (height, width); `None` (pools) means `pool_size`.
        padding: `"valid"` (no padding) or `"same"` (output size `ceil(input / stride)`).
        data_format: `"channels_last"` or `"channels_first"`; `None` uses `cynet.config.image_data_format()`.
        dilation_rate: Dilation of the kernel: an int or a pair.
    """
    from ..kernels import depthwise as K
    return _kernel_conv("depthwise_conv", K.depthwise_conv2d_forward, K.depthwise_conv2d_backward, inputs, kernel,
                        strides, padding, data_format, dilation_rate)


def max_pool(inputs: ArrayLike, pool_size: int | tuple[int, int], strides: int | tuple[int, int] | None = None,
             padding: str = "valid", data_format: str | None = None) -> np.ndarray:
    """2-D max pooling on cynet's pool kernels.

    Args:
        inputs: Input batch: (batch, height, width, channels) for `data_format="channels_last"`.
        pool_size: Size of the pooling window: an int or a pair.
        strides: Stride of the window: an int or a pair (height, width); `None` (pools) means `pool_size`.
        padding: `"valid"` (no padding) or `"same"` (output size `ceil(input / stride)`).
        data_format: `"channels_last"` or `"channels_first"`; `None` uses `cynet.config.image_data_format()`.
    """
    from ..kernels import pool as K
    _spatial_2d("max_pool", inputs)
    args: dict[str, Any] = dict(pool_size=pool_size, strides=strides, padding=padding,
                data_format=data_format or backend.image_data_format())
    kept = {}

    def compute(x):
        y, kept["argmax"] = K.max_pool2d_forward(x, **args)
        return y
    return _apply("max_pool", (inputs,), compute,
                  lambda g, v, o, i: K.max_pool2d_backward(g, kept["argmax"], v[0].shape, **args))


def average_pool(inputs: ArrayLike, pool_size: int | tuple[int, int], strides: int | tuple[int, int] | None = None,
                 padding: str = "valid", data_format: str | None = None) -> np.ndarray:
    """2-D average pooling on cynet's pool kernels (padded cells excluded from the averages).

    Args:
        inputs: Input batch: (batch, height, width, channels) for `data_format="channels_last"`.
        pool_size: Size of the pooling window: an int or a pair.
        strides: Stride of the window: an int or a pair (height, width); `None` (pools) means `pool_size`.
        padding: `"valid"` (no padding) or `"same"` (output size `ceil(input / stride)`).
        data_format: `"channels_last"` or `"channels_first"`; `None` uses `cynet.config.image_data_format()`.
    """
    from ..kernels import pool as K
    _spatial_2d("average_pool", inputs)
    args: dict[str, Any] = dict(pool_size=pool_size, strides=strides, padding=padding,
                data_format=data_format or backend.image_data_format())
    return _apply("average_pool", (inputs,), lambda x: K.avg_pool2d_forward(x, **args),
                  lambda g, v, o, i: K.avg_pool2d_backward(g, v[0].shape, **args))


def batch_normalization(x: ArrayLike, mean: ArrayLike, variance: ArrayLike, axis: int, offset: ArrayLike | None = None,
                        scale: ArrayLike | None = None, epsilon: float = 1e-3) -> np.ndarray:
    """(x - mean) / sqrt(variance + epsilon) * scale + offset, with mean, variance, offset and scale
    of x's size along `axis` (Keras's ops.batch_normalization).

    Args:
        x: Input array (float for the differentiable ops).
        mean: Mean to subtract, of `x`'s size along `axis`.
        variance: Variance, of `x`'s size along `axis`.
        axis: The feature axis of `x`.
        offset: Optional offset (beta) added after scaling.
        scale: Optional scale (gamma) multiplied after normalizing.
        epsilon: Lower bound on the norm (normalize, 1e-12 when `None`) or the variance offset
            (batch_normalization).
    """
    ndim = np.ndim(_values(x))
    shape = [1] * ndim
    shape[axis % ndim] = -1

    def along(v):
        return None if v is None else _np.reshape(v, shape)
    y = _np.multiply(_np.subtract(x, along(mean)), _np.rsqrt(_np.add(along(variance), epsilon)))
    if scale is not None:
        y = _np.multiply(y, along(scale))
    if offset is not None:
        y = _np.add(y, along(offset))
    return y
