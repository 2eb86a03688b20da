"""Noise and dropout layers (Keras 3 `keras.layers.regularization`): SpatialDropout1D,
SpatialDropout2D, GaussianNoise, GaussianDropout, AlphaDropout; and ActivityRegularization.

Active only in training (`layer(x, training=True)`); at inference each is the identity and returns
its input. Randomness comes from `cynet.utils.rng.make_rng(seed)`, as Dropout's does: a layer
given `seed` owns a generator seeded with it (successive calls draw new noise, the same sequence
for the same seed); without a seed the global generator (`cynet.utils.set_random_seed`) is used.
The noise of a call (mask, factors) is kept in the call's context, so its backward applies
exactly the noise its forward used.

Rates follow Keras: a fraction in [0, 1). Keras accepts rate=1 at construction for
GaussianDropout and AlphaDropout but then divides by zero in the call (infinite scale factors);
cynet refuses it when the layer is made. GaussianNoise takes `stddev` in [0, 1], Keras's range.
"""
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _validation as _checks
from ..utils.rng import make_rng
from .base import Layer
from .core import check_noise_shape

# SELU's constants (Keras 3's AlphaDropout): the negative saturation value is -alpha * scale.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class _Noise(Layer):
    """Base of the layers drawing noise in training: `rate` (or `stddev`) and `seed`."""

    supports_masking = True   # the mask passes through (Keras 3)

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rng = make_rng(seed) if seed is not None else None
        self.seed = int(seed) if isinstance(seed, (int, np.integer)) else seed

    def _generator(self):
        return self._rng if self._rng is not None else make_rng(None)

    def _active(self, training):
        raise NotImplementedError

    def _forward(self, ctx, inputs, training):
        if not self._active(training):
            ctx.factor = None
            return inputs
        return self._noisy(ctx, inputs)

    def _backward(self, ctx, grad, need_input_grad):
        return grad if ctx.factor is None else grad * ctx.factor


class _SpatialDropout(_Noise):
    """Dropout of whole feature maps: one keep/drop draw per (sample, channel), broadcast over the
    steps (1-D) or the image (2-D); kept maps are scaled by 1 / (1 - rate), as Dropout's units."""

    data_format = "channels_last"

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.rate = _checks.real("rate", rate, low=0.0, high=1.0, high_open=True)

    def _active(self, training):
        return training and self.rate > 0.0

    def _noise_shape(self, shape):
        keep = {0, len(shape) - 1 if self.data_format == "channels_last" else 1}
        return tuple(s if i in keep else 1 for i, s in enumerate(shape))

    def _noisy(self, ctx, inputs):
        keep = self._generator().random(self._noise_shape(inputs.shape), dtype=inputs.dtype) >= self.rate
        ctx.factor = keep * inputs.dtype.type(1.0 / (1.0 - self.rate))
        return inputs * ctx.factor

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of a (batch, steps, channels) input in training: each (sample, channel)
    is zeroed for every step with probability `rate`, the rest scaled by 1 / (1 - rate).

    Args:
        rate: Float between 0 and 1: the fraction of the inputs to drop.
        seed: Int seed of the layer's random draws, for reproducibility; `None` uses cynet's global generator.
    """

    _input_ndim = 3


class SpatialDropout2D(_SpatialDropout):
    """Drops whole feature maps of a 4-D image batch in training: each (sample, channel) is zeroed
    over the whole image with probability `rate`, the rest scaled by 1 / (1 - rate).

    Args:
        rate: Float between 0 and 1: the fraction of the inputs to drop.
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
        seed: Int seed of the layer's random draws, for reproducibility; `None` uses cynet's global generator.
    """

    _input_ndim = 4

    def __init__(self, rate: float, data_format: str | None = None, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(rate, seed=seed, **kwargs)
        self.data_format = _checks.data_format(data_format)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class GaussianNoise(_Noise):
    """Adds zero-centred Gaussian noise of standard deviation `stddev` in training.

    Args:
        stddev: Standard deviation of the noise.
        seed: Int seed of the layer's random draws, for reproducibility; `None` uses cynet's global generator.
    """

    def __init__(self, stddev: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.stddev = _checks.real("stddev", stddev, low=0.0, high=1.0)

    def _active(self, training):
        return training and self.stddev > 0.0

    def _noisy(self, ctx, inputs):
        ctx.factor = None   # additive noise: the gradient passes unchanged
        noise = self._generator().standard_normal(inputs.shape, dtype=inputs.dtype)
        noise *= inputs.dtype.type(self.stddev)
        return inputs + noise

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_Noise):
    """Multiplies the input by 1-centred Gaussian noise of standard deviation
    sqrt(rate / (1 - rate)) in training.

    Args:
        rate: Float between 0 and 1: the fraction of the inputs to drop.
        seed: Int seed of the layer's random draws, for reproducibility; `None` uses cynet's global generator.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.rate = _checks.real("rate", rate, low=0.0, high=1.0, high_open=True)

    def _active(self, training):
        return training and self.rate > 0.0

    def _noisy(self, ctx, inputs):
        noise = self._generator().standard_normal(inputs.shape, dtype=inputs.dtype)
        noise *= inputs.dtype.type(math.sqrt(self.rate / (1.0 - self.rate)))
        noise += inputs.dtype.type(1.0)
        ctx.factor = noise
        return inputs * noise

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class AlphaDropout(_Noise):
    """Dropout that keeps the mean and variance of SELU activations: in training, each unit is set
    with probability `rate` to SELU's negative saturation value -alpha*scale, then the result is
    mapped by a*x + b, the affine map that restores zero mean and unit variance (Keras 3's
    formula). `noise_shape` as Dropout's (None entries take the input's size).

    Args:
        rate: Float between 0 and 1: the fraction of the inputs to drop.
        noise_shape: Shape of the binary dropout mask, broadcast against the inputs (e.g. `(batch, 1,
            features)` to drop the same features at every timestep).
        seed: Int seed of the layer's random draws, for reproducibility; `None` uses cynet's global generator.
    """

    def __init__(self, rate: float, noise_shape: Sequence[int | None] | None = None, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.rate = _checks.real("rate", rate, low=0.0, high=1.0, high_open=True)
        self.noise_shape = None if noise_shape is None else _checks.shape_tuple("noise_shape", noise_shape)

    def _active(self, training):
        return training and self.rate > 0.0

    def _check_input(self, x):
        super()._check_input(x)
        check_noise_shape(self, x)

    def _noisy(self, ctx, inputs):
        shape = inputs.shape
        if self.noise_shape is not None:
            shape = tuple(s if n is None else n for s, n in zip(inputs.shape, self.noise_shape))
        keep = self._generator().random(shape, dtype=inputs.dtype) >= self.rate
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        a = ((1.0 - self.rate) * (1.0 + self.rate * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * self.rate
        t = inputs.dtype.type
        ctx.factor = keep * t(a)
        # a * (x * keep + alpha_p * (1 - keep)) + b
        return inputs * ctx.factor + np.where(keep, t(b), t(a * alpha_p + b))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape), "seed": self.seed}


class ActivityRegularization(Layer):
    """The identity, adding the activity penalty `(l1 * sum|x| + l2 * sum x**2) / batch_size` of
    its input to the model's loss (Keras 3: an L1L2 activity regularizer, divided by the batch
    size as Keras's Layer does).

    The penalty is an `add_loss` of each call, computed with cynet.ops, so its gradient comes from
    the tape (whether or not the layer's output reaches the model's loss) and it belongs to the call,
    not to the layer: `layer.losses` holds this thread's latest call's, as Keras keeps the latest.

    Args:
        l1: L1 regularization factor on the activity.
        l2: L2 regularization factor on the activity.
    """

    _user_call = True   # its call runs on Tensors: the penalty's ops are recorded
    _single_input = True   # one array (a nested list is that array)
    supports_masking = True   # (the mask passes through, as in Keras)

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.l1 = _checks.real("l1", l1, low=0.0)
        self.l2 = _checks.real("l2", l2, low=0.0)

    def call(self, inputs):
        from .. import ops
        penalty = 0.0
        if inputs.ndim and inputs.shape[0]:
            if self.l1:
                penalty = penalty + self.l1 * ops.sum(ops.abs(inputs))
            if self.l2:
                penalty = penalty + self.l2 * ops.sum(ops.square(inputs))
            penalty = penalty / inputs.shape[0]
        self.add_loss(penalty)
        return inputs

    def get_config(self):
        return {**super().get_config(), "l1": self.l1, "l2": self.l2}
