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

    def __init__(self, scale, offset=0.0, **kwargs):
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
        height, width: positive ints, the size of the window.
        data_format: "channels_last" (default; (batch, height, width, channels)) or "channels_first".
    """

    _input_ndim = 4

    def __init__(self, height, width, data_format=None, **kwargs):
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
