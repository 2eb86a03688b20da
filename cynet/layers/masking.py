"""Masking (Keras 3: keras/src/layers/core/masking.py)."""
from typing import Any

import numpy as np

from .. import _validation
from .base import Layer


class Masking(Layer):
    """Masks the steps whose features all equal `mask_value`: the output is the input with those
    steps set to 0, and its mask (for mask-aware layers downstream: recurrent layers, pooling)
    is `any(inputs != mask_value, axis=-1)`, False on the masked steps.

    Args:
        mask_value: the value that marks a padded step (a real number; default 0.0).
    """

    supports_masking = True
    _input_min_ndim = 2

    def __init__(self, mask_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not _validation.is_real(mask_value):
            raise ValueError(f"mask_value must be a real number; received mask_value={mask_value!r}")
        self.mask_value = float(mask_value)

    def _kept(self, x):
        """Which steps of x are kept: (..., 1), True where some feature differs from mask_value."""
        return np.any(x != x.dtype.type(self.mask_value), axis=-1, keepdims=True)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return self._kept(self._convert_input(inputs))[..., 0]

    def _forward(self, ctx, inputs, training):
        ctx.kept = self._kept(inputs)
        return np.where(ctx.kept, inputs, inputs.dtype.type(0))

    def _backward(self, ctx, grad, need_input_grad):
        return np.where(ctx.kept, grad, grad.dtype.type(0))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mask_value": self.mask_value}
