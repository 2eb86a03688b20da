"""The layers that operators on symbolic tensors become: `x * 2.0`, `1.0 - x`, `-x`, `x[:, 0]`.

(`x + y` on two symbolic tensors becomes the merge layer Add, and so on.) Each is an ordinary
layer with its own backward, so a Functional model that uses operators trains like any other.
"""
import numpy as np

from .. import _validation
from .base import Layer

_SCALAR_OPS = ("add", "subtract", "rsubtract", "multiply")


class ScalarOp(Layer):
    """`x op value` for a real constant: op is "add", "subtract", "rsubtract" (value - x) or "multiply"."""

    _warn_dropped_mask = False   # a Keras op on a masked tensor drops its mask silently

    def __init__(self, op, value, **kwargs):
        super().__init__(**kwargs)
        if op not in _SCALAR_OPS:
            raise ValueError(f"op must be one of {_SCALAR_OPS}; received op={op!r}")
        if not _validation.is_real(value) or not np.isfinite(value):
            raise ValueError(f"value must be a finite real number; received value={value!r}")
        self.op, self.value = op, float(value)

    def _forward(self, ctx, inputs, training):
        c = inputs.dtype.type(self.value)
        if self.op == "add":
            return inputs + c
        if self.op == "subtract":
            return inputs - c
        if self.op == "rsubtract":
            return c - inputs
        return inputs * c

    def _backward(self, ctx, grad, need_input_grad):
        if self.op == "multiply":
            return grad * grad.dtype.type(self.value)
        return -grad if self.op == "rsubtract" else grad

    def get_config(self):
        return {**super().get_config(), "op": self.op, "value": self.value}


_BIG = 9973   # stands for an unknown size while working out an indexed shape


def _encode(item):
    if isinstance(item, slice):
        return {"slice": [item.start, item.stop, item.step]}
    if item is Ellipsis:
        return "..."
    return item


def _decode(item):
    if isinstance(item, dict) and set(item) == {"slice"}:
        return slice(*item["slice"])
    if item == "...":
        return Ellipsis
    return item


class GetItem(Layer):
    """`x[key]` with basic indexing (integers, slices, None, Ellipsis) that keeps the batch axis."""

    _warn_dropped_mask = False   # a Keras op on a masked tensor drops its mask silently

    def __init__(self, key, **kwargs):
        super().__init__(**kwargs)
        key = tuple(_decode(k) for k in key) if isinstance(key, (list, tuple)) else (_decode(key),)
        for item in key:
            ok = item is None or item is Ellipsis or isinstance(item, slice) or _validation.is_int(item)
            if isinstance(item, slice):
                ok = ok and all(p is None or _validation.is_int(p)
                                for p in (item.start, item.stop, item.step))
            if not ok:
                raise ValueError(f"indexing a symbolic tensor takes integers, slices, None and Ellipsis; "
                                 f"received the index {item!r} (array indexing is not supported yet)")
        first = key[0] if key else slice(None)
        if not (first is Ellipsis and len(key) > 1 or first == slice(None)):
            raise ValueError(f"indexing a symbolic tensor must keep its batch axis (`x[:, ...]`); received the "
                             f"index {key!r}")
        self.key = key

    def compute_output_shape(self, input_shape):
        dummy = np.broadcast_to(np.empty((), bool), tuple(_BIG if s is None else s for s in input_shape))
        try:
            shape = dummy[self.key].shape
        except IndexError as exc:
            raise ValueError(f"{self._who()}: the index {self.key!r} does not fit inputs of shape "
                             f"{tuple(input_shape)}: {exc}") from None
        return tuple(None if s == _BIG else s for s in shape)

    def _forward(self, ctx, inputs, training):
        ctx.shape = inputs.shape
        try:
            return inputs[self.key]
        except IndexError as exc:
            raise ValueError(f"{self._who()}: the index {self.key!r} does not fit inputs of shape "
                             f"{inputs.shape}: {exc}") from None

    def _backward(self, ctx, grad, need_input_grad):
        if not need_input_grad:
            return None
        dx = np.zeros(ctx.shape, grad.dtype)
        dx[self.key] = grad
        return dx

    def get_config(self):
        return {**super().get_config(), "key": [_encode(k) for k in self.key]}


class ReshapeBatch(Layer):
    """Merges the batch and time axes, (N, T, ...) -> (N * T, ...), or (merge=False, given the
    `leading` sizes (N, T)) splits them back: the reshapes TimeDistributed records around its layer."""

    def __init__(self, merge=True, **kwargs):
        super().__init__(**kwargs)
        self.merge = bool(merge)

    def _forward(self, ctx, inputs, training, leading=None):
        ctx.shape = inputs.shape
        if self.merge:
            return inputs.reshape((inputs.shape[0] * inputs.shape[1],) + inputs.shape[2:])
        return inputs.reshape(tuple(leading) + inputs.shape[1:])

    def _backward(self, ctx, grad, need_input_grad):
        return grad.reshape(ctx.shape) if need_input_grad else None

    def get_config(self):
        return {**super().get_config(), "merge": self.merge}
