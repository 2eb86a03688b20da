"""Preprocessing layers (Keras 3): Rescaling and CenterCrop.

Rescaling(scale, offset=0.0) computes `inputs * scale + offset` in the layer's dtype (uint8
images become float32 by default). `scale` and `offset` are real numbers, or array-likes of them
that broadcast to the input's trailing axes (one factor per channel: `Rescaling([1/255, 1/127,
1/63])`), as Keras allows; they may not change the input's shape.

CenterCrop(height, width) keeps the central height x width window of a batch of images (4-D,
channels_last or channels_first); where the image is larger by an odd number of pixels, the extra
one is cut from the bottom / right (Keras: the window starts at (H - height) // 2). When an image
is smaller than the window on either axis, Keras resizes it (`smart_resize`: crop to the target
aspect ratio, then bilinear resize); cynet does not implement that and raises NotImplementedError
naming the case. An image axis of size 0 is refused with a ValueError (there is nothing to crop
or resize).

Both pass gradients through (Rescaling: `grad * scale`; CenterCrop: the gradient placed in the
window, zeros elsewhere), so they can sit inside a trained model.
"""
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _validation as _checks
from .base import Layer


def _factor(name, value, dtype):
    """A real number finite in `dtype` (kept as a float), or an array-like of them (kept as a
    nested list)."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return float(_checks.real(name, value, dtype))
    if isinstance(value, (str, bytes, dict, set)) or value is None or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number or an array-like of real numbers; received {name}={value!r}")
    try:
        a = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        a = None
    if a is None or a.dtype.kind not in "iuf" or a.size == 0:
        raise TypeError(f"{name} must be a real number or a non-empty array-like of real numbers; received "
                        f"{name}={value!r}")
    with np.errstate(all="ignore"):
        a = a.astype(np.float64)
        finite = bool(np.isfinite(a).all()) and float(np.abs(a).max()) <= float(np.finfo(dtype).max)
    if not finite:
        raise ValueError(f"{name} must hold numbers finite in {np.dtype(dtype)}; received {name}={value!r}")
    return float(a) if a.ndim == 0 else a.tolist()


def _from_keras(value):
    """A scale or offset as Keras's config writes a NumPy array ({"class_name": "__numpy__", ...})."""
    if isinstance(value, dict) and value.get("class_name") == "__numpy__" and isinstance(value.get("config"), dict):
        return value["config"].get("value")
    return value


class Rescaling(Layer):
    """`inputs * scale + offset`.

    Args:
        scale: a real number, or an array-like broadcasting to the input's trailing axes.
        offset: the same (default 0.0).
    """

    supports_masking = True   # the mask passes through (Keras 3)

    def __init__(self, scale: bool, offset: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = _factor("scale", scale, self.dtype)
        self.offset = _factor("offset", offset, self.dtype)
        self._scale = np.asarray(self.scale, dtype=self.dtype)
        self._offset = np.asarray(self.offset, dtype=self.dtype)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for name, a in (("scale", self._scale), ("offset", self._offset)):
            if a.ndim > len(shape) - 1 or any(f != 1 and s is not None and f != s
                                              for f, s in zip(a.shape[::-1], shape[::-1])):
                raise ValueError(f"{self._who()}: {name} of shape {a.shape} does not broadcast to the samples of "
                                 f"inputs of shape {shape} (its axes align with the inputs' last axes, each 1 or "
                                 f"the inputs' size; the batch axis is not scaled)")
        return shape

    def _check_input(self, x):
        super()._check_input(x)
        self.compute_output_shape(x.shape)

    def _forward(self, ctx, inputs, training):
        y = inputs * self._scale
        if self.offset != 0.0:
            y += self._offset
        return y

    def _backward(self, ctx, grad, need_input_grad):
        return grad * self._scale

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("scale", "offset"):
            if key in config:
                config[key] = _from_keras(config[key])
        return cls(**config)


class CenterCrop(Layer):
    """The central `height` x `width` window of each image of a 4-D batch.

    Args:
        height: Positive ints, the size of the window.
        width: Positive ints, the size of the window.
        data_format: "channels_last" (default; (batch, height, width, channels)) or "channels_first".
    """

    _input_ndim = 4

    def __init__(self, height: int, width: int, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.height = _checks.positive_int("height", height)
        self.width = _checks.positive_int("width", width)
        self.data_format = _checks.data_format(data_format)

    def _image_axes(self):
        return (1, 2) if self.data_format == "channels_last" else (2, 3)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        if len(shape) != 4:
            raise ValueError(f"{self._who()}: inputs must be 4-dimensional (a batch of images); received shape "
                             f"{tuple(input_shape)}")
        for axis, size, name in zip(self._image_axes(), (self.height, self.width), ("height", "width")):
            if shape[axis] == 0:
                raise ValueError(f"{self._who()}: inputs of shape {tuple(input_shape)} hold empty images (axis "
                                 f"{axis} has size 0): there is nothing to crop")
            if shape[axis] is not None and shape[axis] < size:
                raise NotImplementedError(
                    f"{self._who()}: images of shape {tuple(input_shape)} are smaller than the crop window "
                    f"{name}={size} (axis {axis} has size {shape[axis]}); Keras resizes images smaller than the "
                    f"window (smart_resize), which cynet's CenterCrop does not implement: only images at least "
                    f"height={self.height} x width={self.width} are taken")
            shape[axis] = size
        return tuple(shape)

    def _check_input(self, x):
        super()._check_input(x)
        self.compute_output_shape(x.shape)

    def _window(self, shape):
        index = [slice(None)] * 4
        for axis, size in zip(self._image_axes(), (self.height, self.width)):
            start = (shape[axis] - size) // 2
            index[axis] = slice(start, start + size)
        return tuple(index)

    def _forward(self, ctx, inputs, training):
        ctx.shape = inputs.shape
        return inputs[self._window(inputs.shape)]

    def _backward(self, ctx, grad, need_input_grad):
        dx = np.zeros(ctx.shape, dtype=grad.dtype)
        dx[self._window(ctx.shape)] = grad
        return dx

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width, "data_format": self.data_format}


# ------------------------------------------------------------------------------ Normalization
_EPSILON = 1e-7   # Keras's backend.epsilon(): the least standard deviation Normalization divides by


def _axes(value):
    """Keras's `axis` argument of Normalization: an int, a sequence of ints, or None (one mean
    and variance over everything), as a tuple."""
    if value is None:
        return ()
    if _checks.is_int(value):
        return (int(value),)
    try:
        axes = None if isinstance(value, (str, bytes, dict, set)) else tuple(value)
    except TypeError:
        axes = None
    if axes is None or not all(_checks.is_int(a) for a in axes) or len(set(int(a) for a in axes)) != len(axes):
        raise ValueError(f"axis must be an int, a sequence of distinct ints, or None; received axis={value!r}")
    return tuple(int(a) for a in axes)


def _statistic(name, value):
    """A mean or variance given at construction: a real number or an array-like of them, finite."""
    if value is None:
        return None
    if isinstance(value, (str, bytes, dict, set, bool, np.bool_)):
        raise TypeError(f"{name} must be a real number or an array-like of real numbers; received {name}={value!r}")
    try:
        a = np.asarray(value)
    except (ValueError, TypeError):
        a = None
    if a is None or a.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real number or an array-like of real numbers; received {name}={value!r}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite; received {name}={value!r}")
    return a


class Normalization(Layer):
    """`(inputs - mean) / max(sqrt(variance), 1e-7)` per position of the kept `axis` (Keras 3).

    The statistics are given at construction (`mean` and `variance`, broadcast to the kept axes:
    a scalar, or arrays aligned with the last kept axes) or computed by `adapt(data)` from a
    NumPy array or an iterable of batches (the batches' means and variances merged as Keras does).
    Adapted statistics live in non-trainable weights `mean`, `variance` and `count` (Keras's names,
    shapes and order; `count` stays 0 as in Keras 3), so they are saved with the model; statistics
    given as arguments are in the config instead. `invert=True` maps normalized values back:
    `mean + inputs * max(sqrt(variance), 1e-7)`.

    Linear in its input: the input gradient is `grad / max(sqrt(variance), 1e-7)` (or times it
    when inverted). The statistics are not trained.

    Args:
        axis: the axis or axes that keep their own statistics (default -1, the features); None
            for one mean and variance over all values. The batch axis may not be kept.
        mean: Optional, both or neither, of one shape.
        variance: Optional, both or neither, of one shape.
        invert: apply the inverse transformation.
    """

    def __init__(self, axis: int | Sequence[int] = -1, mean: Any = None, variance: Any = None, invert: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = _axes(axis)
        self.invert = _checks.flag("invert", invert)
        self.input_mean = _statistic("mean", mean)
        self.input_variance = _statistic("variance", variance)
        if (mean is None) != (variance is None):
            raise ValueError(f"When setting values directly, both mean and variance must be set; received "
                             f"mean={mean!r} and variance={variance!r}")
        if self.input_mean is not None:
            if self.input_mean.shape != self.input_variance.shape:
                raise ValueError(f"mean and variance must have the same shape; received mean of shape "
                                 f"{self.input_mean.shape} and variance of shape {self.input_variance.shape}")
            if self.input_mean.ndim > len(self.axis):
                raise ValueError(f"The rank of mean must be at most the number of kept axes ({len(self.axis)}); "
                                 f"received mean of shape {self.input_mean.shape} for axis={self.axis}")
            if (self.input_variance < 0).any():
                raise ValueError("variance must be non-negative")
        self._keep = None

    # ------------------------------------------------------------------ shapes and weights
    def _kept_axes(self, shape):
        ndim = len(shape)
        for a in self.axis:
            if not -ndim <= a < ndim:
                raise ValueError(f"{self._who()}: every axis must lie in [-{ndim}, {ndim}) for inputs of shape "
                                 f"{tuple(shape)}; received axis={self.axis}")
        keep = tuple(sorted(a % ndim for a in self.axis))
        if 0 in keep:
            raise ValueError(f"{self._who()}: axis={self.axis} keeps the batch axis, whose size changes from "
                             f"batch to batch; keep feature axes only")
        for d in keep:
            if shape[d] is None:
                raise ValueError(f"{self._who()}: the kept axes must have a known size; axis {d} of inputs of "
                                 f"shape {tuple(shape)} is unknown")
        return keep

    def build(self, input_shape):
        keep = self._kept_axes(input_shape)
        self._keep = keep
        self._built_ndim = len(input_shape)
        self._input_axes = {d: input_shape[d] for d in keep}
        stats_shape = tuple(input_shape[d] for d in keep)
        self._broadcast_shape = tuple(input_shape[d] if d in keep else 1 for d in range(len(input_shape)))
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(stats_shape, "zeros", trainable=False, name="mean")
            self.adapt_variance = self.add_weight(stats_shape, "ones", trainable=False, name="variance")
            self.count = self.add_weight((), "zeros", dtype="int64", trainable=False, name="count")
        else:
            try:
                self._fixed = tuple(self._expand(s, stats_shape) for s in (self.input_mean, self.input_variance))
            except ValueError:
                raise ValueError(f"{self._who()}: mean of shape {self.input_mean.shape} does not broadcast to the "
                                 f"kept axes of inputs of shape {tuple(input_shape)} (sizes {stats_shape})") from None
        self.built = True

    def _expand(self, stat, stats_shape):
        """A statistic given at construction, aligned with the last kept axes and broadcast to them."""
        stat = np.broadcast_to(stat.reshape((1,) * (len(stats_shape) - stat.ndim) + stat.shape), stats_shape)
        return np.ascontiguousarray(stat.reshape(self._broadcast_shape))

    def _statistics(self, dtype):
        if self.input_mean is not None:
            mean, variance = self._fixed
        else:
            mean = self.adapt_mean.value.reshape(self._broadcast_shape)
            variance = self.adapt_variance.value.reshape(self._broadcast_shape)
        scale = np.maximum(np.sqrt(np.maximum(variance, 0)), _EPSILON)
        return mean.astype(dtype, copy=False), scale.astype(dtype, copy=False)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    # ------------------------------------------------------------------ call
    def _forward(self, ctx, inputs, training):
        mean, scale = self._statistics(inputs.dtype)
        ctx.scale = scale
        if self.invert:
            return mean + inputs * scale
        return (inputs - mean) / scale

    def _backward(self, ctx, grad, need_input_grad):
        if not need_input_grad:
            return None
        return grad * ctx.scale if self.invert else grad / ctx.scale

    # ------------------------------------------------------------------ adapt
    def adapt(self, data):
        """Compute the mean and variance of `data` per position of the kept axes: a NumPy array
        (or array-like) of samples, or an iterable of batches (lists, generators, a PyDataset;
        a batch that is a tuple contributes its first element, the inputs).

        Args:
            data: Data to compute the layer's state from (an array, or an iterable of batches).
        """
        if self.input_mean is not None:
            raise ValueError(f"{self._who()}: adapt() computes the statistics, which were given as mean= and "
                             f"variance=; make the layer without them to adapt it")
        if isinstance(data, np.ndarray) or (not hasattr(data, "__iter__") and hasattr(data, "__array__")):
            batches = iter([np.asarray(data)])
        elif hasattr(data, "__getitem__") and hasattr(data, "__len__") and hasattr(data, "num_batches"):
            batches = (data[i] for i in range(len(data)))   # a PyDataset
        elif hasattr(data, "__iter__") and not isinstance(data, (str, bytes, dict)):
            batches = iter(data)
        else:
            raise TypeError(f"{self._who()}: adapt() takes a NumPy array or an iterable of batches; received "
                            f"{type(data).__name__}")
        first = next(batches, None)
        if first is None:
            raise ValueError(f"{self._who()}: adapt() received no data (an empty iterable of batches)")
        total_mean = total_var = None
        total_count = 0
        for i, batch in enumerate(_chain(first, batches)):
            x = self._adapt_batch(batch, i)
            reduce = tuple(d for d in range(x.ndim) if d not in self._keep)
            count = int(np.prod([x.shape[d] for d in reduce])) if reduce else 1
            if count == 0:
                continue
            mean, var = x.mean(axis=reduce), x.var(axis=reduce)
            if total_mean is None:
                total_mean, total_var, total_count = mean, var, count
                continue
            total_count += count
            w = count / total_count
            new_mean = total_mean * (1.0 - w) + mean * w
            total_var = (total_var + (total_mean - new_mean) ** 2) * (1.0 - w) + (var + (mean - new_mean) ** 2) * w
            total_mean = new_mean
        if total_mean is None:
            raise ValueError(f"{self._who()}: adapt() received only empty batches")
        self.adapt_mean.assign(total_mean)
        self.adapt_variance.assign(total_var)

    def _adapt_batch(self, batch, i):
        if isinstance(batch, tuple):
            batch = batch[0]
        x = _checks.as_array(f"{self._who()}: adapt() batch {i}", batch)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{self._who()}: adapt() needs numeric data; received batch {i} of dtype {x.dtype}")
        x = x.astype(np.float64)
        if not np.isfinite(x).all():
            raise ValueError(f"{self._who()}: adapt() needs finite data; batch {i} holds NaN or inf")
        if not self.built:
            if x.ndim == 0:
                raise ValueError(f"{self._who()}: adapt() data needs a batch axis; received a scalar")
            self._maybe_build((None,) + x.shape[1:])
        elif x.ndim != len(self._broadcast_shape) or any(x.shape[d] != self._broadcast_shape[d] for d in self._keep):
            raise ValueError(f"{self._who()}: the layer was built for inputs of shape {self.input_shape}, but adapt() "
                             f"received batch {i} of shape {x.shape}")
        return x

    def get_config(self):
        return {**super().get_config(), "axis": list(self.axis), "invert": self.invert,
                "mean": None if self.input_mean is None else self.input_mean.tolist(),
                "variance": None if self.input_variance is None else self.input_variance.tolist()}


def _chain(first, rest):
    yield first
    yield from rest
