"""PReLU (Keras 3 `keras.layers.PReLU`): the parametric ReLU, `x` where x >= 0 and `alpha * x`
below, with a learned `alpha`.

`alpha` has the shape of one sample (the input shape without the batch axis) with size 1 on the
`shared_axes` (1-based, as in Keras: axis 0 is the batch), so
`PReLU(shared_axes=[1, 2])` on (batch, height, width, channels) learns one slope per channel.
Once built, inputs must keep their rank and their sizes on the axes alpha does not share.

The gradient with respect to the input at exactly x = 0 is alpha (the slope of the left piece);
Keras's `relu(x) - alpha * relu(-x)` under autodiff gives 0 there. Elsewhere they agree.
"""
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import constraints, initializers, regularizers
from .base import Layer, add_grad, check_constraint, check_initializer, check_regularizer


class PReLU(Layer):
    """Parametric ReLU: `max(x, 0) + alpha * min(x, 0)`, `alpha` a learned weight.

    Args:
        alpha_initializer: initializer of alpha (Keras's default "Zeros": a plain ReLU at first).
        alpha_regularizer: regularizer of alpha, or None.
        alpha_constraint: Constraint the optimizer applies to alpha after each update, or None.
        shared_axes: None, an axis or a list of axes (1-based: 1 is the first axis after the
            batch axis) along which alpha is shared (size 1).
    """

    supports_masking = True   # the mask passes through (Keras 3)

    def __init__(self, alpha_initializer: Any = "Zeros", alpha_regularizer: Any = None, alpha_constraint: Any = None,
                 shared_axes: Sequence[int] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha_initializer = check_initializer("alpha_initializer", alpha_initializer, "Zeros")
        self.alpha_regularizer = check_regularizer("alpha_regularizer", alpha_regularizer)
        self.alpha_constraint = check_constraint("alpha_constraint", alpha_constraint)
        self.shared_axes = _shared_axes(shared_axes)

    def build(self, input_shape):
        ndim = len(input_shape)
        shared = set(self.shared_axes or ())
        if ndim < 2:
            raise ValueError(f"{self._who()}: inputs must have at least 2 dimensions (batch axis included); "
                             f"received shape {tuple(input_shape)}")
        too_far = sorted(a for a in shared if a >= ndim)
        if too_far:
            raise ValueError(f"{self._who()}: shared_axes={self.shared_axes} names axes {too_far} that inputs of "
                             f"shape {tuple(input_shape)} do not have (axes 1 to {ndim - 1})")
        unknown = [i for i in range(1, ndim) if i not in shared and input_shape[i] is None]
        if unknown:
            raise ValueError(f"{self._who()}: inputs need known sizes on the axes alpha does not share; axes "
                             f"{unknown} of shape {tuple(input_shape)} are unknown")
        shape = tuple(1 if i in shared else int(input_shape[i]) for i in range(1, ndim))
        self.alpha = self.add_weight(shape, self.alpha_initializer, regularizer=self.alpha_regularizer, name="alpha",
                                     constraint=self.alpha_constraint)
        self._built_ndim = ndim
        self._input_axes = {i: int(input_shape[i]) for i in range(1, ndim) if i not in shared}
        self._reduce = (0,) + tuple(sorted(shared))
        self.built = True

    def _check_input(self, x):
        super()._check_input(x)
        if x.ndim < 2:
            raise ValueError(f"{self._who()}: inputs must have at least 2 dimensions (batch axis included); "
                             f"received shape {x.shape}")

    def _forward(self, ctx, inputs, training):
        ctx.inputs = inputs
        return np.maximum(inputs, 0) + self.alpha.value * np.minimum(inputs, 0)

    def _backward(self, ctx, grad, need_input_grad):
        x = ctx.inputs
        add_grad(self.alpha, (grad * np.minimum(x, 0)).sum(axis=self._reduce, keepdims=True)[0])
        if not need_input_grad:
            return None
        return grad * np.where(x > 0, x.dtype.type(1), self.alpha.value)

    def get_config(self):
        return {**super().get_config(),
                "alpha_initializer": initializers.serialize(initializers.get(self.alpha_initializer)),
                "alpha_regularizer": regularizers.serialize(regularizers.get(self.alpha_regularizer)),
                "alpha_constraint": constraints.serialize(self.alpha_constraint),
                "shared_axes": None if self.shared_axes is None else list(self.shared_axes)}


def _shared_axes(value):
    """Keras's shared_axes: None, one axis or a list of axes; here each a positive int (axis 0 is the
    batch axis, never shared by a per-sample weight), none repeated."""
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        value_list = [value]
    elif isinstance(value, (list, tuple)):
        value_list = list(value)
    else:
        value_list = None
    if value_list is None or not all(isinstance(a, numbers.Integral) and not isinstance(a, (bool, np.bool_))
                                     and 1 <= a < 2 ** 31 for a in value_list) \
            or len(set(int(a) for a in value_list)) != len(value_list):
        raise ValueError(f"shared_axes must be None, a positive axis or a list of distinct positive axes (1-based: "
                         f"axis 0 is the batch axis); received shared_axes={value!r}")
    return [int(a) for a in value_list]
