"""Merge layers (Keras 3 `keras.layers.merging`): Add, Subtract, Multiply, Average, Maximum,
Minimum, Concatenate and Dot, and their functional forms `add`, `subtract`, ... `dot`.

Each takes a list of arrays (`_multi_input`), converted to the layer's dtype by the base class.

Elementwise merges (Add ... Minimum) follow Keras's `Merge`:
- every input has the same batch size (no broadcasting over the batch axis);
- the other axes broadcast like Keras's `_compute_elemwise_op_output_shape`: right-aligned, a
  size-1 axis stretches to the other input's size, any other mismatch is an error;
- an input of lower rank gets new size-1 axes after the batch axis (Keras's `expand_dims(x, 1)`),
  so a (batch,) input combines with a (batch, 3) one as a column, not as NumPy would align it.
The gradient of a broadcast input is summed over the axes it was stretched along.

Maximum / Minimum route each output element's gradient to ONE input: the first input (in list
order) holding the extreme value. This is the gradient of Keras's fold `maximum(maximum(x0, x1),
x2)` under the TensorFlow backend (tf.maximum's gradient goes to x where x >= y); JAX and PyTorch
split a tie evenly instead. A NaN wins (the output is NaN, as np.maximum gives) and gets the
gradient.

Dot with `normalize=True` divides each input by its L2 norm along the dot axis, the norm floored
at 1e-7 (Keras 3's `ops.normalize`: `x * min(rsqrt(sum(x**2)), 1 / epsilon)` with
`backend.epsilon()` = 1e-7), so a zero vector gives 0, and gradient `g / 1e-7` below the floor.
"""
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _validation
from .base import Layer

_NORM_EPSILON = 1e-7  # Keras 3's backend.epsilon(): the floor of the norm in Dot(normalize=True)


def _reduce_to(g, shape):
    """g (of the broadcast output shape) summed back to `shape` (g's rank, size 1 where stretched)."""
    if g.shape == shape:
        return g
    axes = tuple(i for i, (gs, s) in enumerate(zip(g.shape, shape)) if s == 1 and gs != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _fold(op, xs):
    """op(...op(op(xs[0], xs[1]), xs[2])..., xs[-1]), writing into the first result when the shapes
    allow (xs[0] itself for one input)."""
    y = xs[0]
    for i, x in enumerate(xs[1:]):
        if i and np.broadcast_shapes(y.shape, x.shape) == y.shape:
            op(y, x, out=y)
        else:
            y = op(y, x)
    return y


def _mask_list(layer, inputs, mask):
    """The masks of a merge layer's inputs as a list (None: no mask), checked as Keras checks them."""
    if mask is None:
        return None
    if not isinstance(mask, (list, tuple)):
        raise ValueError(f"{layer._who()}: mask should be a list, one mask (or None) per input; received "
                         f"{type(mask).__name__}")
    if not isinstance(inputs, (list, tuple)) or len(mask) != len(inputs):
        raise ValueError(f"{layer._who()}: inputs and mask should be lists of the same length; received "
                         f"{len(mask)} masks for {len(inputs) if isinstance(inputs, (list, tuple)) else 1} inputs")
    return list(mask)


class Merge(Layer):
    """Base of the elementwise merge layers (Keras's `Merge`): validation, broadcasting, and the
    reduction of gradients to each input's shape. Subclasses define `_merge(ctx, xs)` on inputs
    of equal rank and `_merge_grads(ctx, g, need)` returning one gradient per input (of the
    output's shape; None where not needed), which `_backward` sums back to each input's shape."""

    _multi_input = True
    _min_inputs = 1
    _max_inputs: int | None = None

    def compute_mask(self, inputs, mask=None):
        """Keras's merge mask: the OR of the inputs' masks, or None unless every input has one.

        Args:
            inputs: Input array (or list of arrays for multi-input layers).
            mask: Optional boolean mask of the inputs (`True` keeps a position).
        """
        masks = _mask_list(self, inputs, mask)
        if masks is None or any(m is None for m in masks):
            return None
        out = np.asarray(masks[0], dtype=bool)
        for m in masks[1:]:
            out = out | np.asarray(m, dtype=bool)
        return out

    def _count_rule(self):
        if self._max_inputs == self._min_inputs:
            return f"exactly {self._min_inputs}"
        return f"at least {self._min_inputs}"

    def _check_count(self, n, what):
        if n < self._min_inputs or (self._max_inputs is not None and n > self._max_inputs):
            raise ValueError(f"{self._who()}: a {type(self).__name__} layer should be called on a list of "
                             f"{self._count_rule()} inputs; received {n} {what}")

    def _check_inputs(self, xs):
        self._check_count(len(xs), "inputs")
        super()._check_inputs(xs)
        shapes = [x.shape for x in xs]
        if len({s[0] for s in shapes}) > 1:
            raise ValueError(f"{self._who()}: cannot merge inputs with different batch sizes; received inputs of "
                             f"shapes {shapes}")
        self._elemwise_shape([s[1:] for s in shapes], shapes)

    def _elemwise_shape(self, samples, shapes):
        """The broadcast shape of the sample shapes (no batch axis), Keras's rule; ValueError
        naming all `shapes` if they do not combine."""
        out = ()
        for s in samples:
            if len(s) > len(out):
                out, s = tuple(s), out
            lead = len(out) - len(s)
            merged = list(out[:lead])
            for i, j in zip(out[lead:], s):
                if i is None or j is None:
                    merged.append(None)
                elif i == 1:
                    merged.append(j)
                elif j == 1 or i == j:
                    merged.append(i)
                else:
                    raise ValueError(f"{self._who()}: inputs have incompatible shapes (every axis but the batch "
                                     f"axis must be equal or 1, aligned from the right); received shapes {shapes}")
            out = tuple(merged)
        return out

    def build(self, input_shape):
        self._check_shapes_arg(input_shape)
        self.built = True

    def _check_shapes_arg(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape or not all(
                isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"{self._who()}: a merge layer should be called on a list of inputs; received "
                             f"input_shape={input_shape!r} (not a list of shapes)")
        self._check_count(len(input_shape), "input shapes")

    def compute_output_shape(self, input_shape):
        self._check_shapes_arg(input_shape)
        shapes = [tuple(s) for s in input_shape]
        out = self._elemwise_shape([s[1:] for s in shapes], shapes)
        batch = {s[0] for s in shapes if s} - {None}
        if len(batch) > 1:
            raise ValueError(f"{self._who()}: cannot merge inputs with different batch sizes; received input "
                             f"shapes {shapes}")
        return (batch.pop() if batch else None,) + out

    def _forward(self, ctx, inputs, training):
        ndim = max(x.ndim for x in inputs)
        ctx.shapes = [x.shape for x in inputs]
        xs = [x if x.ndim == ndim else x.reshape(x.shape[:1] + (1,) * (ndim - x.ndim) + x.shape[1:])
              for x in inputs]
        ctx.expanded = [x.shape for x in xs]
        y = self._merge(ctx, xs)
        if y is inputs[0]:   # (one input) the output is a new array, as any other layer's
            y = y.copy()
        return y

    def _backward(self, ctx, grad, need_input_grad):
        grads = self._merge_grads(ctx, grad, need_input_grad)
        out = []
        for g, n, shape, expanded in zip(grads, need_input_grad, ctx.shapes, ctx.expanded):
            out.append(_reduce_to(g, expanded).reshape(shape) if n and g is not None else None)
        return out

    def _merge(self, ctx, xs):
        raise NotImplementedError

    def _merge_grads(self, ctx, g, need):
        raise NotImplementedError


class Add(Merge):
    """Elementwise sum of a list of inputs (Keras `Add`): `layers.Add()([x1, x2])`.

    Args:
        trainable: Whether the layer's weights are updated by training.
        name: Name of the layer (a unique default is generated from the class name when `None`).
        dtype: Dtype of the layer's weights and computations (`"float32"` or `"float64"`); `None` uses
            `cynet.config.floatx()`.
        input_shape: Shape of the input, including the batch axis (`None` for unknown sizes).
        input_dim: Size of the input's last axis (Keras's legacy way of giving the input shape).
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is
            added to the loss), or `None`.
    """

    def _merge(self, ctx, xs):
        return _fold(np.add, xs)

    def _merge_grads(self, ctx, g, need):
        return [g] * len(need)


class Subtract(Merge):
    """`inputs[0] - inputs[1]` (Keras `Subtract`): exactly two inputs.

    Args:
        trainable: Whether the layer's weights are updated by training.
        name: Name of the layer (a unique default is generated from the class name when `None`).
        dtype: Dtype of the layer's weights and computations (`"float32"` or `"float64"`); `None` uses
            `cynet.config.floatx()`.
        input_shape: Shape of the input, including the batch axis (`None` for unknown sizes).
        input_dim: Size of the input's last axis (Keras's legacy way of giving the input shape).
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is
            added to the loss), or `None`.
    """

    _min_inputs = _max_inputs = 2

    def _merge(self, ctx, xs):
        return xs[0] - xs[1]

    def _merge_grads(self, ctx, g, need):
        return [g, -g if need[1] else None]


class Multiply(Merge):
    """Elementwise product of a list of inputs (Keras `Multiply`).

    Args:
        trainable: Whether the layer's weights are updated by training.
        name: Name of the layer (a unique default is generated from the class name when `None`).
        dtype: Dtype of the layer's weights and computations (`"float32"` or `"float64"`); `None` uses
            `cynet.config.floatx()`.
        input_shape: Shape of the input, including the batch axis (`None` for unknown sizes).
        input_dim: Size of the input's last axis (Keras's legacy way of giving the input shape).
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is
            added to the loss), or `None`.
    """

    def _merge(self, ctx, xs):
        ctx.xs = xs
        return _fold(np.multiply, xs)

    def _merge_grads(self, ctx, g, need):
        xs = ctx.xs
        n = len(xs)
        if n == 1:
            return [g]
        # d y / d x_i = product of the others: prefix products times suffix products (no division,
        # so zeros are fine).
        suffix = [None] * (n + 1)
        for i in range(n - 1, 0, -1):
            suffix[i] = xs[i] if suffix[i + 1] is None else xs[i] * suffix[i + 1]
        grads, prefix = [], None
        for i in range(n):
            if need[i]:
                others = prefix if suffix[i + 1] is None else (
                    suffix[i + 1] if prefix is None else prefix * suffix[i + 1])
                grads.append(g * others)
            else:
                grads.append(None)
            prefix = xs[i] if prefix is None else prefix * xs[i]
        return grads


class Average(Merge):
    """Elementwise mean of a list of inputs (Keras `Average`).

    Args:
        trainable: Whether the layer's weights are updated by training.
        name: Name of the layer (a unique default is generated from the class name when `None`).
        dtype: Dtype of the layer's weights and computations (`"float32"` or `"float64"`); `None` uses
            `cynet.config.floatx()`.
        input_shape: Shape of the input, including the batch axis (`None` for unknown sizes).
        input_dim: Size of the input's last axis (Keras's legacy way of giving the input shape).
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is
            added to the loss), or `None`.
    """

    def _merge(self, ctx, xs):
        y = _fold(np.add, xs)
        if len(xs) > 1:
            y /= len(xs)   # (y is a new array)
        return y

    def _merge_grads(self, ctx, g, need):
        gn = g / len(need) if len(need) > 1 else g
        return [gn] * len(need)


class _Extremum(Merge):
    """Maximum / Minimum: the fold over the inputs, remembering which input each output element
    came from (the first one holding the extreme value; see the module docstring)."""

    _op: Any = None       # np.maximum or np.minimum
    _beats: Any = None    # np.greater or np.less: a later input takes over only when strictly better

    def _merge(self, ctx, xs):
        y = xs[0]
        src = None
        for i, x in enumerate(xs[1:], start=1):
            better = self._beats(x, y)
            nan = np.isnan(x)
            if nan.any():   # a NaN takes over from a number (np.maximum propagates it)
                better |= nan & ~np.isnan(y)
            y = self._op(y, x)
            if src is None:
                src = np.zeros(y.shape, np.min_scalar_type(len(xs) - 1))
            elif src.shape != y.shape:
                src = np.broadcast_to(src, y.shape).copy()
            src[better] = i   # (better has y's shape: x broadcast against the previous y)
        ctx.src = src
        return y

    def _merge_grads(self, ctx, g, need):
        src = ctx.src
        if src is None:
            return [g]
        zero = g.dtype.type(0)
        return [np.where(src == i, g, zero) if n else None for i, n in enumerate(need)]


class Maximum(_Extremum):
    """Elementwise maximum of a list of inputs (Keras `Maximum`). The gradient of each element
    goes to the first input holding the maximum.

    Args:
        trainable: Whether the layer's weights are updated by training.
        name: Name of the layer (a unique default is generated from the class name when `None`).
        dtype: Dtype of the layer's weights and computations (`"float32"` or `"float64"`); `None` uses
            `cynet.config.floatx()`.
        input_shape: Shape of the input, including the batch axis (`None` for unknown sizes).
        input_dim: Size of the input's last axis (Keras's legacy way of giving the input shape).
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is
            added to the loss), or `None`.
    """

    _op = np.maximum
    _beats = np.greater


class Minimum(_Extremum):
    """Elementwise minimum of a list of inputs (Keras `Minimum`). The gradient of each element
    goes to the first input holding the minimum.

    Args:
        trainable: Whether the layer's weights are updated by training.
        name: Name of the layer (a unique default is generated from the class name when `None`).
        dtype: Dtype of the layer's weights and computations (`"float32"` or `"float64"`); `None` uses
            `cynet.config.floatx()`.
        input_shape: Shape of the input, including the batch axis (`None` for unknown sizes).
        input_dim: Size of the input's last axis (Keras's legacy way of giving the input shape).
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is
            added to the loss), or `None`.
    """

    _op = np.minimum
    _beats = np.less


class Concatenate(Layer):
    """Concatenates a list of inputs along `axis` (Keras `Concatenate`); all other axes, the
    batch axis included, must match.

    Args:
        axis: the concatenation axis (default -1, the last; negative counts from the end).
    """

    _multi_input = True

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not _validation.is_int(axis):
            raise ValueError(f"axis must be an integer; received axis={axis!r}")
        self.axis = int(axis)

    def _check_shapes(self, shapes):
        """The concatenation axis (non-negative) for inputs of `shapes`; ValueError unless all have the
        same rank, the axis is one of theirs, and they match on every other axis (None matches anything)."""
        if len({len(s) for s in shapes}) > 1:
            raise ValueError(f"{self._who()}: a Concatenate layer requires inputs of the same rank; received "
                             f"shapes {shapes}")
        ndim = len(shapes[0])
        if not -ndim <= self.axis < ndim:
            raise ValueError(f"{self._who()}: axis={self.axis} is not an axis of inputs of rank {ndim}; received "
                             f"shapes {shapes}")
        axis = self.axis % ndim
        for d in range(ndim):
            if d != axis and len({s[d] for s in shapes} - {None}) > 1:
                raise ValueError(f"{self._who()}: a Concatenate layer requires inputs with matching shapes except "
                                 f"for the concatenation axis {self.axis}; received shapes {shapes}")
        return axis

    def _check_inputs(self, xs):
        super()._check_inputs(xs)
        self._check_shapes([x.shape for x in xs])

    def compute_mask(self, inputs, mask=None):
        """Keras's Concatenate mask: each input's mask (all True for an input without one, a mask
        of one axis less spread over the last axis) concatenated along `axis`, then any() over
        the last axis.

        Args:
            inputs: Input array (or list of arrays for multi-input layers).
            mask: Optional boolean mask of the inputs (`True` keeps a position).
        """
        masks = _mask_list(self, inputs, mask)
        if masks is None or all(m is None for m in masks):
            return None
        full = []
        for x, m in zip(inputs, masks):
            shape = np.shape(x)
            if m is None:
                full.append(np.ones(shape, dtype=bool))
                continue
            m = np.asarray(m, dtype=bool)
            if m.ndim < len(shape):
                m = m[..., None]
            try:
                full.append(np.broadcast_to(m, shape))
            except ValueError:
                raise ValueError(f"{self._who()}: a mask of shape {m.shape} does not fit its input of shape "
                                 f"{shape}") from None
        return np.concatenate(full, axis=self.axis).any(axis=-1)

    @staticmethod
    def _check_shapes_arg(who, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape or not all(
                isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"{who}: should be called on a list of at least 1 input; received "
                             f"input_shape={input_shape!r} (not a list of shapes)")

    def build(self, input_shape):
        self._check_shapes_arg(self._who(), input_shape)
        self._check_shapes([tuple(s) for s in input_shape])
        self.built = True

    def compute_output_shape(self, input_shape):
        self._check_shapes_arg(self._who(), input_shape)
        shapes = [tuple(s) for s in input_shape]
        axis = self._check_shapes(shapes)
        out = list(shapes[0])
        for d in range(len(out)):
            if d != axis:
                out[d] = next((s[d] for s in shapes if s[d] is not None), None)
        sizes = [s[axis] for s in shapes]
        out[axis] = None if None in sizes else sum(sizes)
        return tuple(out)

    def _forward(self, ctx, inputs, training):
        axis = self.axis % inputs[0].ndim
        ctx.axis = axis
        ctx.sizes = [x.shape[axis] for x in inputs]
        return np.concatenate(inputs, axis=axis)

    def _backward(self, ctx, grad, need_input_grad):
        bounds = np.cumsum(ctx.sizes)[:-1]
        parts = np.split(grad, bounds, axis=ctx.axis)
        return [p if n else None for p, n in zip(parts, need_input_grad)]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Dot(Layer):
    """Batchwise dot product of two inputs (Keras `Dot`) along one axis of each.

    For inputs x (batch, *a) and y (batch, *b) with `axes=(i, j)`: sums x's axis i against y's
    axis j for each sample; the output is (batch, x's other axes, y's other axes), or (batch, 1)
    when neither has other axes.

    Args:
        axes: an int (the same axis of both) or a pair of ints, one per input; negative counts from
            the end. The batch axis (0) cannot be one of them; the two axes must have equal sizes.
        normalize: L2-normalize each input along its dot axis first, so the output is the cosine
            similarity (norms floored at 1e-7, as Keras 3).
    """

    _multi_input = True
    _input_min_ndim = 2

    def compute_mask(self, inputs, mask=None):
        """No mask comes out of a dot product (Keras 3).

        Args:
            inputs: Input array (or list of arrays for multi-input layers).
            mask: Optional boolean mask of the inputs (`True` keeps a position).
        """
        return None

    def __init__(self, axes: int | list[int] | tuple[int, ...], normalize: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if _validation.is_int(axes):
            axes = int(axes)
        else:
            if not isinstance(axes, (list, tuple)):
                raise TypeError(f"Invalid type for argument axes: it should be a list or an int; received "
                                f"axes={axes!r}")
            if len(axes) != 2:
                raise ValueError(f"Invalid format for argument axes: it should contain two elements; received "
                                 f"axes={axes!r}")
            if not all(_validation.is_int(a) for a in axes):
                raise ValueError(f"Invalid format for argument axes: list elements should be integers; received "
                                 f"axes={axes!r}")
            axes = (list if isinstance(axes, list) else tuple)(int(a) for a in axes)
        self.axes = axes
        self.normalize = _validation.flag("normalize", normalize)

    def _resolve_axes(self, shapes):
        """The two axes, non-negative, for inputs of `shapes`; ValueError if either is the batch
        axis, is out of range, or the two sizes differ."""
        pair = (self.axes, self.axes) if isinstance(self.axes, int) else tuple(self.axes)
        axes = []
        for a, s in zip(pair, shapes):
            if not -len(s) <= a < len(s):
                raise ValueError(f"{self._who()}: axes={self.axes} is out of range for inputs of shapes {shapes}")
            axes.append(a % len(s))
        if 0 in axes:
            raise ValueError(f"{self._who()}: cannot take the dot product over axis 0 (the batch axis); "
                             f"axes={self.axes} with inputs of shapes {shapes}")
        d1, d2 = shapes[0][axes[0]], shapes[1][axes[1]]
        if d1 is not None and d2 is not None and d1 != d2:
            raise ValueError(f"{self._who()}: incompatible input shapes: axis values {d1} (at axis {axes[0]}) != "
                             f"{d2} (at axis {axes[1]}); full input shapes: {shapes}")
        return axes

    def _check_count(self, n, what):
        if n != 2:
            raise ValueError(f"{self._who()}: a Dot layer should be called on a list of exactly 2 inputs; "
                             f"received {n} {what}")

    def _check_inputs(self, xs):
        self._check_count(len(xs), "inputs")
        super()._check_inputs(xs)
        shapes = [x.shape for x in xs]
        if shapes[0][0] != shapes[1][0]:
            raise ValueError(f"{self._who()}: cannot take the dot product of inputs with different batch sizes; "
                             f"received shapes {shapes}")
        self._resolve_axes(shapes)

    def _check_shapes_arg(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not all(isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"{self._who()}: a Dot layer should be called on a list of 2 inputs; received "
                             f"input_shape={input_shape!r}")
        self._check_count(len(input_shape), "input shapes")
        shapes = [tuple(s) for s in input_shape]
        if any(len(s) < 2 for s in shapes):
            raise ValueError(f"{self._who()}: inputs must have at least 2 dimensions (batch axis included); "
                             f"received shapes {shapes}")
        return shapes, self._resolve_axes(shapes)

    def build(self, input_shape):
        self._check_shapes_arg(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        (s1, s2), (a1, a2) = self._check_shapes_arg(input_shape)
        out = [d for i, d in enumerate(s1) if i != a1] + [d for i, d in enumerate(s2) if i not in (0, a2)]
        if len(out) == 1:
            out.append(1)
        return tuple(out)

    def _forward(self, ctx, inputs, training):
        x, y = inputs
        ax, ay = self._resolve_axes([x.shape, y.shape])
        ctx.axes = (ax, ay)
        if self.normalize:
            x, ctx.xnorm = _l2_normalize(x, ax)
            y, ctx.ynorm = _l2_normalize(y, ay)
        # x -> (batch, P, K), its dot axis last; y -> (batch, K, Q), its dot axis first after the batch.
        xm = np.moveaxis(x, ax, -1)
        ym = np.moveaxis(y, ay, 1)
        ctx.xm_shape, ctx.ym_shape = xm.shape, ym.shape
        b, k = x.shape[0], x.shape[ax]
        x3 = xm.reshape(b, int(np.prod(xm.shape[1:-1])), k)   # (explicit sizes: -1 fails on empty arrays)
        y3 = ym.reshape(b, k, int(np.prod(ym.shape[2:])))
        ctx.x3, ctx.y3 = x3, y3
        out = np.matmul(x3, y3)
        out_shape = xm.shape[:-1] + ym.shape[2:]
        if len(out_shape) == 1:
            out_shape += (1,)
        return out.reshape(out_shape)

    def _backward(self, ctx, grad, need_input_grad):
        x3, y3 = ctx.x3, ctx.y3
        g3 = grad.reshape(x3.shape[0], x3.shape[1], y3.shape[2])
        ax, ay = ctx.axes
        grads = [None, None]
        if need_input_grad[0]:
            gx = np.moveaxis(np.matmul(g3, np.swapaxes(y3, 1, 2)).reshape(ctx.xm_shape), -1, ax)
            grads[0] = _l2_normalize_grad(gx, ctx.xnorm, ax) if self.normalize else gx
        if need_input_grad[1]:
            gy = np.moveaxis(np.matmul(np.swapaxes(x3, 1, 2), g3).reshape(ctx.ym_shape), 1, ay)
            grads[1] = _l2_normalize_grad(gy, ctx.ynorm, ay) if self.normalize else gy
        return grads

    def get_config(self):
        axes = self.axes if isinstance(self.axes, int) else list(self.axes)
        return {**super().get_config(), "axes": axes, "normalize": self.normalize}


def _l2_normalize(x, axis):
    """(x / max(||x||, eps) along axis, (the normalized x, the floored norm, whether it was floored))."""
    norm = np.sqrt(np.sum(np.square(x), axis=axis, keepdims=True))
    floored = norm < _NORM_EPSILON
    norm = np.maximum(norm, x.dtype.type(_NORM_EPSILON))
    xn = x / norm
    return xn, (xn, norm, floored)


def _l2_normalize_grad(g, saved, axis):
    """The gradient of x / max(||x||, eps) given that of its output: (g - xn * <g, xn>) / ||x||
    where the norm is above the floor, g / eps where it is floored (the norm is then constant)."""
    xn, norm, floored = saved
    proj = np.sum(g * xn, axis=axis, keepdims=True)
    if floored.any():
        proj = np.where(floored, g.dtype.type(0), proj)
    return (g - xn * proj) / norm


# ------------------------------------------------------------------------- functional interfaces
def add(inputs, **kwargs):
    """Functional interface to `Add`: `layers.add([x1, x2])` is `layers.Add()([x1, x2])`.

    Args:
        inputs: Input array (or list of arrays for multi-input layers).
    """
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """Functional interface to `Subtract`: `inputs[0] - inputs[1]`.

    Args:
        inputs: Input array (or list of arrays for multi-input layers).
    """
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """Functional interface to `Multiply`: the elementwise product of the inputs.

    Args:
        inputs: Input array (or list of arrays for multi-input layers).
    """
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """Functional interface to `Average`: the elementwise mean of the inputs.

    Args:
        inputs: Input array (or list of arrays for multi-input layers).
    """
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """Functional interface to `Maximum`: the elementwise maximum of the inputs.

    Args:
        inputs: Input array (or list of arrays for multi-input layers).
    """
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """Functional interface to `Minimum`: the elementwise minimum of the inputs.

    Args:
        inputs: Input array (or list of arrays for multi-input layers).
    """
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """Functional interface to `Concatenate`: the inputs joined along `axis`.

    Args:
        inputs: Input array (or list of arrays for multi-input layers).
        axis: The axis (or axes) the layer operates along.
    """
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    """Functional interface to `Dot` (Keras's default `axes=-1`): the batchwise dot product of two inputs.

    Args:
        inputs: Input array (or list of arrays for multi-input layers).
        axes: Axis (or pair of axes) along which the dot product is taken.
        normalize: Whether to L2-normalize the samples along `axes` first (cosine similarity).
    """
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
