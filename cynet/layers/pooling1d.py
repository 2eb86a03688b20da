"""1-D global pooling (Keras 3): GlobalAveragePooling1D and GlobalMaxPooling1D over the steps axis
of a 3-D input, (batch, steps, features) with data_format "channels_last" (the default) or
(batch, features, steps) with "channels_first"; `keepdims=True` keeps the steps axis with size 1.

GlobalMaxPooling1D routes each gradient to the first maximum along the steps (`argmax`), as the
2-D pooling kernels do; a NaN counts as the maximum (the output is NaN, as np.max gives, and the
first NaN gets the gradient). The steps axis must not be empty (there is nothing to pool); an
empty batch or an empty features axis is fine. Masks are not supported.
"""
import numpy as np

from .. import _validation as _checks
from .base import Layer
from .reshaping import check_rank


class _GlobalPooling1D(Layer):
    _input_ndim = 3

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _checks.data_format(data_format)
        self.keepdims = _checks.flag("keepdims", keepdims)

    def _steps_axis(self):
        return 1 if self.data_format == "channels_last" else 2

    def compute_output_shape(self, input_shape):
        check_rank(self, input_shape)
        n = input_shape[0]
        if self.data_format == "channels_last":
            c = input_shape[2]
            return (n, 1, c) if self.keepdims else (n, c)
        c = input_shape[1]
        return (n, c, 1) if self.keepdims else (n, c)

    def _check_input(self, x):
        super()._check_input(x)
        if x.shape[self._steps_axis()] == 0:
            raise ValueError(f"{self._who()}: inputs must have at least one step to pool (axis "
                             f"{self._steps_axis()}); received shape {tuple(x.shape)}")

    def _grad_kept(self, grad):
        """The output gradient with the steps axis kept (size 1)."""
        return grad if self.keepdims else np.expand_dims(grad, self._steps_axis())

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPooling1D):
    """The mean over the steps axis."""

    def _forward(self, ctx, inputs, training):
        ctx.shape = inputs.shape
        return inputs.mean(axis=self._steps_axis(), keepdims=self.keepdims)

    def _backward(self, ctx, grad, need_input_grad):
        steps = ctx.shape[self._steps_axis()]
        g = self._grad_kept(grad) * grad.dtype.type(1.0 / steps)
        return np.broadcast_to(g, ctx.shape).copy()


class GlobalMaxPooling1D(_GlobalPooling1D):
    """The maximum over the steps axis; the gradient goes to the first maximum."""

    def _forward(self, ctx, inputs, training):
        axis = self._steps_axis()
        ctx.shape = inputs.shape
        ctx.argmax = np.expand_dims(np.argmax(inputs, axis=axis), axis)
        y = np.take_along_axis(inputs, ctx.argmax, axis=axis)
        return y if self.keepdims else np.squeeze(y, axis)

    def _backward(self, ctx, grad, need_input_grad):
        axis = self._steps_axis()
        dx = np.zeros(ctx.shape, dtype=grad.dtype)
        np.put_along_axis(dx, ctx.argmax, self._grad_kept(grad), axis=axis)
        return dx
