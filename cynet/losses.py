"""Losses, Keras 3 names and defaults.

A loss is called like Keras's (`loss(y_true, y_pred, sample_weight=None)` -> scalar) and also
has `forward_backward(y_true, y_pred, sample_weight=None)` -> (loss, d loss / d y_pred) for
training. Reductions are Keras's: the per-sample losses are multiplied by sample_weight, then
"sum_over_batch_size" (the default; "mean" is the same) sums them and divides by their number,
"sum" sums them, "mean_with_sample_weight" divides the sum by the sum of the weights, and
"none"/None returns the weighted per-sample losses (forward_backward then gives the gradient of
their sum).

Cross-entropies on probabilities clip them to [1e-7, 1 - 1e-7] as Keras 3 does, then take the
log. When the model's last layer applies the matching activation (softmax for the categorical
losses, sigmoid for the binary one) the model calls `fused_logits_backward` instead: loss and
gradient come straight from the logits through one stable fused kernel (no clipping needed, no
vanishing gradient).
"""
from collections.abc import Callable
from typing import Any

import numpy as np

from . import tape as _tape
from ._typing import ArrayLike
from ._validation import first_entry
from .kernels import activations as K
from .kernels._backend import impl as _impl

EPSILON = 1e-7


def _float(a, dtype=None):
    a = np.asarray(a)
    if dtype is None:
        dtype = a.dtype if a.dtype in (np.float32, np.float64) else np.float32
    return a.astype(dtype, copy=False)


_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def _weights(values, sample_weight, dtype):
    """sample_weight as an array of values' shape: its axes are the leading axes of values (a
    trailing axis of 1 beyond them is dropped, as Keras squeezes it); size-1 axes broadcast."""
    weights = np.asarray(sample_weight, dtype=dtype)
    if weights.ndim == values.ndim + 1 and weights.shape[-1] == 1:
        weights = weights.reshape(weights.shape[:-1])
    if weights.ndim > values.ndim or any(w not in (1, v) for w, v in zip(weights.shape, values.shape)):
        raise ValueError(f"sample_weight must have shape {values.shape[:1]} (or broadcast to the loss shape "
                         f"{values.shape}); received shape {np.shape(sample_weight)}")
    weights = weights.reshape(weights.shape + (1,) * (values.ndim - weights.ndim))
    return np.broadcast_to(weights, values.shape)


def _reduce(values, sample_weight, dtype, reduction="sum_over_batch_size"):
    """(reduced loss, d loss / d values) of per-sample values under a Keras reduction: a float,
    or for "none" the weighted values (whose sum the gradient is of)."""
    weights = None if sample_weight is None else _weights(values, sample_weight, dtype)
    factor = np.ones_like(values) if weights is None else weights.astype(values.dtype)
    weighted = values if weights is None else values * weights
    if reduction in ("none", None):
        return weighted.astype(dtype, copy=False), factor.astype(dtype, copy=False)
    total = weighted.sum(dtype=np.float64)
    if reduction == "sum":
        n = 1.0
    elif reduction == "mean_with_sample_weight" and weights is not None:
        n = float(weights.sum(dtype=np.float64))
    else:
        n = values.size
    if n == 0:  # Keras divides "no nan": an empty batch or all-zero weights give 0
        return 0.0, np.zeros_like(values, dtype=dtype)
    return float(total / n), (factor / n).astype(dtype, copy=False)


def _reduce_into(values, grad, sample_weight, dtype, reduction):
    """(reduced loss, gradient) of per-sample `values` whose per-sample gradients `grad` (values'
    shape plus trailing axes; a fresh array, scaled in place) are given: `_reduce`'s result and
    `grad * scale`, without its arrays of ones when no sample_weight weighs the values (every
    step of fit without weights: the same numbers, since scale is then 1/n everywhere)."""
    if sample_weight is not None or reduction in ("none", None) or values.size == 0:
        loss, scale = _reduce(values, sample_weight, dtype, reduction)
        return loss, grad * scale.reshape(scale.shape + (1,) * (grad.ndim - scale.ndim))
    n = 1 if reduction == "sum" else values.size
    total = np.add.reduce(values, axis=None, dtype=np.float64)   # (values.sum(dtype=np.float64), less its wrapper)
    grad *= values.dtype.type(1) / values.dtype.type(n)   # (1 / n as `_reduce` rounds it, in values' dtype)
    return float(total / n), grad.astype(dtype, copy=False)


class Loss:
    """Base class. Subclasses implement `_values(y_true, y_pred)` -> (per-sample values, d values / d y_pred
    as a function of the upstream factor).

    Args:
        name: Name of the object (a unique default is generated when `None`).
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
    """

    #: which activation, applied by the last layer, this loss can fuse with (or None).
    fusable_activation: str | None = None

    def __init__(self, name: str | None = None, reduction: str | None = "sum_over_batch_size") -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}; received reduction={reduction!r}")
        self.name = name or _snake(type(self).__name__)
        self.reduction = reduction

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Any:
        from .ops import core as _opcore
        tape = _opcore.recording()
        if tape is not None and self.reduction not in ("none", None) and _opcore.differentiable(y_pred):
            # on a recording tape (a GradientTape, an overridden compute_loss): the loss is an op
            loss, dy = self.forward_backward(y_true, _opcore.plain(y_pred), sample_weight)
            return _opcore.record(tape, lambda g, need: dy * g if need else None, [y_pred],
                                  np.asarray(loss, dtype=dy.dtype))
        y_pred = _float(y_pred)
        values, _ = self._per_sample(self._targets(y_true, y_pred), y_pred, need_grad=False)
        loss, _ = _reduce(values, sample_weight, y_pred.dtype, self.reduction)
        return loss

    def forward_backward(self, y_true: ArrayLike, y_pred: ArrayLike,
                         sample_weight: ArrayLike | None = None) -> tuple[Any, np.ndarray]:
        """(loss as __call__ returns it, gradient of that loss (summed, for "none") w.r.t. y_pred).

        Args:
            y_true: Ground-truth targets.
            y_pred: Predictions, with the same batch size as `y_true`.
            sample_weight: Optional per-sample weights, broadcast against the per-sample values.
        """
        y_pred = _float(y_pred)
        values, grad_fn = self._per_sample(self._targets(y_true, y_pred), y_pred, need_grad=True)
        loss, scale = _reduce(values, sample_weight, y_pred.dtype, self.reduction)
        return loss, grad_fn(scale)

    def call(self, y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
        """Per-sample loss values (Keras's `Loss.call`): override it with cynet.ops (or NumPy
        arithmetic on y_pred, a Tensor here) to write a loss; its gradient comes from the tape.

        Args:
            y_true: Ground-truth targets.
            y_pred: Predictions, with the same batch size as `y_true`.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement call(y_true, y_pred)")

    def _per_sample(self, y_true, y_pred, need_grad):
        """A loss written as `call`: its values, and their gradient w.r.t. y_pred through the tape."""
        from .ops.core import Tensor, plain
        tape = _tape.Tape()
        source = y_pred.view(Tensor)
        with _tape.recording(tape if need_grad else _tape.NO_RECORD):
            values = self.call(y_true, source)
        if not isinstance(values, np.ndarray) or values.ndim == 0:
            values = np.asarray(values, dtype=y_pred.dtype)
        out = plain(values).astype(y_pred.dtype, copy=False)
        if not need_grad:
            return out, None

        def grad(scale):
            with _tape.recording(_tape.NO_RECORD):
                (g,) = tape.backward([(values, np.asarray(scale, dtype=y_pred.dtype).reshape(values.shape))],
                                     [source], warn=False)
            return np.zeros_like(y_pred) if g is None else np.asarray(g, dtype=y_pred.dtype)
        return out, grad

    def fused_logits_backward(self, y_true: ArrayLike, logits: np.ndarray,
                              sample_weight: ArrayLike | None = None) -> tuple[Any, np.ndarray]:
        """(scalar loss, gradient w.r.t. the logits) for losses with a fusable activation.

        Args:
            y_true: Ground-truth targets.
            logits: Logits of the predictions.
            sample_weight: Optional per-sample weights, broadcast against the per-sample values.
        """
        raise NotImplementedError(f"{self.name} has no fused logits path")

    def check_targets(self, y_true: ArrayLike, y_pred_shape: tuple[int | None, ...], name: str = "y") -> np.ndarray:
        """Check once, before training or evaluating, that `y_true` (all samples) can be this loss's
        targets for model outputs of shape `y_pred_shape` (batch axis first; None for a size not
        known): raise ValueError (TypeError for a non-numeric dtype) naming `name` otherwise.

        The base check is on shapes: samples of y_pred's shape, or with a trailing axis of 1 more or
        less (which the loss squeezes or adds). Subclasses add what their targets must hold.

        Args:
            y_true: Ground-truth targets.
            y_pred_shape: Shape of the predictions.
            name: Name of the object (a unique default is generated when `None`).
        """
        y_true = np.asarray(y_true)
        out = tuple(y_pred_shape)
        got, want = y_true.shape[1:], out[1:]
        if not (_fits(got, want) or _fits(got + (1,), want) or _fits(got, want + (1,))):
            raise ValueError(f"{name} must have samples of shape {_shape_str(want)}, the model's output, for "
                             f"{self.name}; received {name} with shape {y_true.shape}")
        return y_true

    def _targets(self, y_true, y_pred):
        y_true = _float(y_true, y_pred.dtype)
        if y_true.shape != y_pred.shape:
            # Keras squeezes or expands a trailing axis of 1: (N,) against (N, 1) and back.
            if y_true.shape + (1,) == y_pred.shape or y_true.shape == y_pred.shape + (1,):
                y_true = y_true.reshape(y_pred.shape)
            else:
                raise ValueError(f"{self.name}: y_true must have the shape of y_pred {y_pred.shape}; "
                                 f"received shape {y_true.shape}")
        return y_true

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments of this object, JSON-serializable, so that `from_config` rebuilds it."""
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Loss":
        """An instance built from `get_config()`'s dictionary.

        Args:
            config: The dictionary `get_config()` returned.
        """
        return cls(**config)


class LossFunctionWrapper(Loss):
    """A loss from a function `fn(y_true, y_pred, **kwargs)` returning per-sample values, written
    with cynet.ops (Keras's `loss=my_function`): reduced as the built-in losses are, differentiated
    on the tape.

    Args:
        fn: The function `fn(y_true, y_pred, **kwargs)` returning per-sample values.
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a unique default is generated when `None`).
    """

    def __init__(self, fn: Callable[..., Any], reduction: str | None = "sum_over_batch_size", name: str | None = None,
                 **kwargs: Any) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable (y_true, y_pred) -> per-sample losses; received {fn!r}")
        super().__init__(name or getattr(fn, "__name__", "loss"), reduction)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def _targets(self, y_true, y_pred):
        return np.asarray(y_true)   # the function decides what its targets are

    def check_targets(self, y_true: ArrayLike, y_pred_shape: tuple[int | None, ...], name: str = "y") -> np.ndarray:
        return np.asarray(y_true)

    def get_config(self) -> dict[str, Any]:
        from .utils.serialization import get_registered_name
        return {"fn": get_registered_name(self.fn), "name": self.name, "reduction": self.reduction, **self._fn_kwargs}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "LossFunctionWrapper":
        from .utils.serialization import get_registered_object
        config = dict(config)
        name = config.pop("fn")
        fn = get_registered_object(name)
        if fn is None:
            raise ValueError(f"Unknown loss function {name!r}: register it with "
                             f"cynet.saving.register_keras_serializable(), or pass it in custom_objects")
        return cls(fn, **config)


def _fits(shape, pattern):
    return len(shape) == len(pattern) and all(p is None or s == p for s, p in zip(shape, pattern))


def _shape_str(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _check_in_unit_interval(y_true, name, loss_name, what):
    """Targets of a cross-entropy are probabilities: outside [0, 1] the loss has no minimum."""
    if y_true.size == 0 or y_true.dtype.kind == "b":
        return
    lo, hi = y_true.min(), y_true.max()
    if not (lo >= 0 and hi <= 1):  # NaN fails too
        bad = ~((y_true >= 0) & (y_true <= 1))
        raise ValueError(f"{name} must hold {what} in [0, 1] for {loss_name}; received values from {lo} to {hi}, "
                         f"first {first_entry(name, bad, y_true)}")


def _snake(name):
    out = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return out


class MeanSquaredError(Loss):
    """Mean of the squared errors over the last axis, `mean((y_true - y_pred) ** 2)`, then reduced over the
    batch.

    Args:
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
    """
    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str | None = "mean_squared_error") -> None:
        super().__init__(name, reduction)

    def _per_sample(self, y_true, y_pred, need_grad):
        diff = y_pred - y_true
        values = np.mean(diff * diff, axis=-1)
        k = y_pred.shape[-1] if y_pred.ndim else 1
        return values, lambda scale: (diff * (2.0 / k)) * scale[..., None]


class MeanAbsoluteError(Loss):
    """Mean of the absolute errors over the last axis, then reduced over the batch.

    Args:
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
    """
    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str | None = "mean_absolute_error") -> None:
        super().__init__(name, reduction)

    def _per_sample(self, y_true, y_pred, need_grad):
        diff = y_pred - y_true
        values = np.mean(np.abs(diff), axis=-1)
        k = y_pred.shape[-1] if y_pred.ndim else 1
        return values, lambda scale: (np.sign(diff) / k).astype(y_pred.dtype) * scale[..., None]


class Huber(Loss):
    """Huber loss: quadratic for errors below `delta`, linear above; averaged over the last axis.

    Args:
        delta: The point where the Huber loss changes from quadratic to linear.
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
    """
    def __init__(self, delta: float = 1.0, reduction: str | None = "sum_over_batch_size",
                 name: str | None = "huber_loss") -> None:
        super().__init__(name, reduction)
        if not delta > 0:
            raise ValueError(f"delta must be positive; received delta={delta!r}")
        self.delta = float(delta)

    def _per_sample(self, y_true, y_pred, need_grad):
        diff = y_pred - y_true
        a = np.abs(diff)
        quad = a <= self.delta
        elems = np.where(quad, 0.5 * diff * diff, self.delta * a - 0.5 * self.delta**2)
        values = np.mean(elems, axis=-1).astype(y_pred.dtype, copy=False)
        k = y_pred.shape[-1]
        grad = np.where(quad, diff, self.delta * np.sign(diff)).astype(y_pred.dtype) / k
        return values, lambda scale: grad * scale[..., None]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "delta": self.delta}


class BinaryCrossentropy(Loss):
    """Binary cross-entropy between 0/1 (or soft) targets and predicted probabilities or logits, averaged over
    the last axis.

    With `from_logits=True` and a sigmoid output layer, cynet fuses the sigmoid and the loss in the backward
    pass (the same result, fewer passes).

    Args:
        from_logits: Whether `y_pred` holds logits (unnormalized scores) instead of probabilities.
        label_smoothing: In `[0, 1]`: targets are squeezed toward `1 / num_classes` (0.5 for binary) by this
            amount.
        axis: The class axis over which the loss is computed (only the last axis is supported).
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
    """
    fusable_activation = "sigmoid"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size", name: str | None = "binary_crossentropy") -> None:
        super().__init__(name, reduction)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _smoothing(label_smoothing)
        self.axis = _last_axis(axis)

    def _targets(self, y_true, y_pred):
        y_true = super()._targets(y_true, y_pred)
        if self.label_smoothing:
            return y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return y_true

    def check_targets(self, y_true: ArrayLike, y_pred_shape: tuple[int | None, ...], name: str = "y") -> np.ndarray:
        """Shapes as for every loss, and targets in [0, 1]: 0/1 labels or probabilities (Keras does
        not check; labels such as 1/2 or -1/1 make the loss unbounded below).

        Args:
            y_true: Ground-truth targets.
            y_pred_shape: Shape of the predictions.
            name: Name of the object (a unique default is generated when `None`).
        """
        y_true = super().check_targets(y_true, y_pred_shape, name)
        _check_in_unit_interval(y_true, name, self.name, "binary targets (0/1 labels or probabilities)")
        return y_true

    def _per_sample(self, y_true, y_pred, need_grad):
        k = y_pred.shape[-1]
        if self.from_logits:
            elems, dz = K.sigmoid_cross_entropy(y_pred, y_true)
            return elems.mean(axis=-1), lambda scale: dz * (scale[..., None] / k)
        p = np.clip(y_pred, EPSILON, 1.0 - EPSILON)
        elems = -(y_true * np.log(p) + (1.0 - y_true) * np.log(1.0 - p))
        inside = (y_pred > EPSILON) & (y_pred < 1.0 - EPSILON)

        def grad(scale):
            g = (-y_true / p + (1.0 - y_true) / (1.0 - p)) * inside
            return (g * (scale[..., None] / k)).astype(y_pred.dtype, copy=False)

        return elems.mean(axis=-1).astype(y_pred.dtype, copy=False), grad

    def fused_logits_backward(self, y_true: ArrayLike, logits: np.ndarray,
                              sample_weight: ArrayLike | None = None) -> tuple[Any, np.ndarray]:
        logits = _float(logits)
        y_true = self._targets(y_true, logits)
        elems, dz = K.sigmoid_cross_entropy(logits, y_true)
        k = logits.shape[-1]
        loss, scale = _reduce(elems.mean(axis=-1), sample_weight, logits.dtype, self.reduction)
        return loss, dz * (scale[..., None] / k)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                "axis": self.axis}


def _last_axis(axis):
    if axis != -1:
        raise ValueError(f"only axis=-1 is supported; received axis={axis!r}")
    return -1


def _smoothing(value):
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1]; received label_smoothing={value}")
    return value


class CategoricalCrossentropy(Loss):
    """Cross-entropy between one-hot (or soft) targets and predicted class probabilities or logits.

    With a softmax output layer cynet fuses the softmax and the loss in the backward pass.

    Args:
        from_logits: Whether `y_pred` holds logits (unnormalized scores) instead of probabilities.
        label_smoothing: In `[0, 1]`: targets are squeezed toward `1 / num_classes` (0.5 for binary) by this
            amount.
        axis: The class axis over which the loss is computed (only the last axis is supported).
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
    """
    fusable_activation = "softmax"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size", name: str | None = "categorical_crossentropy") -> None:
        super().__init__(name, reduction)
        self.axis = _last_axis(axis)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _smoothing(label_smoothing)

    def check_targets(self, y_true: ArrayLike, y_pred_shape: tuple[int | None, ...], name: str = "y") -> np.ndarray:
        """One-hot (or probability) targets as wide as the model's output, entries in [0, 1].

        Args:
            y_true: Ground-truth targets.
            y_pred_shape: Shape of the predictions.
            name: Name of the object (a unique default is generated when `None`).
        """
        y_true = np.asarray(y_true)
        out = tuple(y_pred_shape)
        k = out[-1] if len(out) > 1 else None
        got, want = y_true.shape[1:], out[1:]
        if len(out) > 1 and not (_fits(got, want) or _fits(got + (1,), want) or _fits(got, want + (1,))):
            hint = ""
            if y_true.ndim == len(out) - 1 or (y_true.ndim == len(out) and y_true.shape[-1] == 1 != k):
                hint = " (integer class labels go with sparse_categorical_crossentropy)"
            elif y_true.ndim == len(out) and _fits(y_true.shape[1:-1], out[1:-1]):
                hint = f" (one-hot targets of width {y_true.shape[-1]} for a model with {k} output units)"
            raise ValueError(f"{name} must hold one-hot targets of shape {_shape_str(out[1:])}, one column per "
                             f"output unit of the model, for {self.name}; received {name} with shape "
                             f"{y_true.shape}{hint}")
        _check_in_unit_interval(y_true, name, self.name, "one-hot targets or probabilities")
        return y_true

    def _targets(self, y_true, y_pred):
        y_true = super()._targets(y_true, y_pred)
        if self.label_smoothing:
            k = y_pred.shape[-1]
            y_true = y_true * (1.0 - self.label_smoothing) + self.label_smoothing / k
        return y_true

    def _per_sample(self, y_true, y_pred, need_grad):
        if self.from_logits:
            values, dz = K.softmax_cross_entropy(y_pred, y_true)
            return values, lambda scale: dz * scale[..., None]
        total = y_pred.sum(axis=-1, keepdims=True)
        p = np.clip(y_pred / total, EPSILON, 1.0 - EPSILON)
        values = -(y_true * np.log(p)).sum(axis=-1)

        def grad(scale):
            # d/dy_pred of -sum(t * log(y/sum(y))) with the clip's zero gradient outside.
            inside = (p > EPSILON) & (p < 1.0 - EPSILON)
            g_p = np.where(inside, -y_true / p, 0.0)
            g = (g_p - (g_p * p).sum(axis=-1, keepdims=True)) / total
            return (g * scale[..., None]).astype(y_pred.dtype, copy=False)

        return values.astype(y_pred.dtype, copy=False), grad

    def fused_logits_backward(self, y_true: ArrayLike, logits: np.ndarray,
                              sample_weight: ArrayLike | None = None) -> tuple[Any, np.ndarray]:
        logits = _float(logits)
        values, dz = K.softmax_cross_entropy(logits, self._targets(y_true, logits))
        return _reduce_into(values, dz, sample_weight, logits.dtype, self.reduction)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                "axis": self.axis}


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Integer class labels, shape y_pred.shape[:-1] (or with a trailing 1).

    Args:
        from_logits: Whether `y_pred` holds logits (unnormalized scores) instead of probabilities.
        ignore_class: A class index whose targets contribute no loss (e.g. a padding label); `None` uses all.
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a unique default is generated when `None`).
    """

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None,
                 reduction: str | None = "sum_over_batch_size",
                 name: str | None = "sparse_categorical_crossentropy") -> None:
        Loss.__init__(self, name, reduction)
        if ignore_class is not None:
            raise ValueError("ignore_class is not supported; pass sample_weight=0 for the samples to ignore")
        self.from_logits = bool(from_logits)
        self.label_smoothing = 0.0
        self.axis = -1
        self.ignore_class = None

    def check_targets(self, y_true: ArrayLike, y_pred_shape: tuple[int | None, ...], name: str = "y") -> np.ndarray:
        """Integer class labels of the output's shape less its class axis (or with a trailing 1),
        each in [0, units) for the model's output units.

        Args:
            y_true: Ground-truth targets.
            y_pred_shape: Shape of the predictions.
            name: Name of the object (a unique default is generated when `None`).
        """
        y_true = np.asarray(y_true)
        out = tuple(y_pred_shape)
        want = out[1:-1]
        if not (_fits(y_true.shape[1:], want) or _fits(y_true.shape[1:], want + (1,))):
            hint = (" (one-hot labels go with categorical_crossentropy)"
                    if len(out) > 1 and _fits(y_true.shape[1:], out[1:]) else "")
            raise ValueError(f"{name} must hold integer class labels of sample shape {_shape_str(want)} for "
                             f"{self.name}; received {name} with shape {y_true.shape}{hint}")
        if y_true.dtype.kind == "f":
            fractional = y_true != np.round(y_true)  # NaN too
            if fractional.any():
                raise ValueError(f"{name} must hold integer class labels for {self.name}; received "
                                 f"{first_entry(name, fractional, y_true)}")
        elif y_true.dtype.kind not in "iub":
            raise TypeError(f"{name} must hold integer class labels for {self.name}; received dtype {y_true.dtype}")
        k = out[-1] if len(out) > 1 else None
        if k is not None and y_true.size:
            lo, hi = y_true.min(), y_true.max()
            if lo < 0 or hi >= k:
                bad = (y_true < 0) | (y_true >= k)
                raise ValueError(f"{name} must hold class labels for the model's {k} output units: labels must lie "
                                 f"in [0, {k}); received labels from {lo} to {hi}, "
                                 f"first {first_entry(name, bad, y_true)}")
        return y_true

    def fused_logits_backward(self, y_true: ArrayLike, logits: np.ndarray,
                              sample_weight: ArrayLike | None = None) -> tuple[Any, np.ndarray]:
        logits = _float(logits)
        labels = self._labels(y_true, logits, in_range=False)
        k = logits.shape[-1]
        if k >= 1 and logits.flags.c_contiguous:   # the compiled kernel (or its twin) at once
            try:   # (it checks that each label lies in [0, k), as `_labels` does)
                values, dz = _impl("activations").softmax_cross_entropy_sparse(
                    logits.reshape(-1, k), np.ascontiguousarray(labels, dtype=np.int64).reshape(-1))
            except ValueError:
                self._labels(y_true, logits)   # a label out of range: raised as the loss names it
                raise
            values, dz = values.reshape(logits.shape[:-1]), dz.reshape(logits.shape)
        else:
            values, dz = K.softmax_cross_entropy(logits, labels)
        return _reduce_into(values, dz, sample_weight, logits.dtype, self.reduction)

    def _targets(self, y_true, y_pred):
        labels = self._labels(y_true, y_pred)
        if self.from_logits:
            return labels
        onehot = np.zeros(y_pred.shape, dtype=y_pred.dtype)
        np.put_along_axis(onehot, labels[..., None], 1, axis=-1)
        return onehot

    def _labels(self, y_true, y_pred, in_range=True):
        """y_true as integer class indices of y_pred's shape less its class axis, each checked to
        lie in [0, classes) (unless `in_range` is False: the caller's kernel checks that)."""
        y_true = np.asarray(y_true)
        if y_true.shape == y_pred.shape[:-1] + (1,) and y_pred.ndim >= 1:
            y_true = y_true.reshape(y_pred.shape[:-1])
        if y_true.shape != y_pred.shape[:-1]:
            raise ValueError(f"{self.name}: y_true must hold integer class indices of shape {y_pred.shape[:-1]}; "
                             f"received shape {y_true.shape} (one-hot labels go with categorical_crossentropy)")
        if y_true.dtype.kind == "f":
            if not np.all(np.isfinite(y_true)) or np.any(y_true != np.round(y_true)):
                raise ValueError(f"{self.name}: y_true must hold integer class indices")
        elif y_true.dtype.kind not in "iub":
            raise TypeError(f"{self.name}: y_true must hold integer class indices; received dtype {y_true.dtype}")
        labels = y_true.astype(np.intp, copy=False)
        k = y_pred.shape[-1]
        if in_range and labels.size and (labels.min() < 0 or labels.max() >= k):
            raise ValueError(f"{self.name}: labels must lie in [0, {k}); received values from {labels.min()} to {labels.max()}")
        return labels

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "reduction": self.reduction, "from_logits": self.from_logits,
                "ignore_class": self.ignore_class}


def mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Per-sample mean squared error over the last axis (no batch reduction).

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
    """
    return MeanSquaredError(reduction="none")(y_true, y_pred)


def mean_absolute_error(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Per-sample mean absolute error over the last axis (no batch reduction).

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
    """
    return MeanAbsoluteError(reduction="none")(y_true, y_pred)


def binary_crossentropy(y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool = False, label_smoothing: float = 0.0,
                        axis: int = -1) -> np.ndarray:
    """Per-sample binary cross-entropy averaged over `axis` (no batch reduction).

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
        from_logits: Whether `y_pred` holds logits (unnormalized scores) instead of probabilities.
        label_smoothing: In `[0, 1]`: targets are squeezed toward `1 / num_classes` (0.5 for binary) by this
            amount.
        axis: The class axis over which the loss is computed (only the last axis is supported).
    """
    return BinaryCrossentropy(from_logits, label_smoothing, axis, reduction="none")(y_true, y_pred)


def categorical_crossentropy(y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool = False,
                             label_smoothing: float = 0.0, axis: int = -1) -> np.ndarray:
    """Per-sample categorical cross-entropy (no batch reduction).

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
        from_logits: Whether `y_pred` holds logits (unnormalized scores) instead of probabilities.
        label_smoothing: In `[0, 1]`: targets are squeezed toward `1 / num_classes` (0.5 for binary) by this
            amount.
        axis: The class axis over which the loss is computed (only the last axis is supported).
    """
    return CategoricalCrossentropy(from_logits, label_smoothing, axis, reduction="none")(y_true, y_pred)


def sparse_categorical_crossentropy(y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool = False,
                                    ignore_class: int | None = None, axis: int = -1) -> np.ndarray:
    """Per-sample cross-entropy between integer class targets and class probabilities or logits (no batch
    reduction).

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
        from_logits: Whether `y_pred` holds logits (unnormalized scores) instead of probabilities.
        ignore_class: A class index whose targets contribute no loss (e.g. a padding label); `None` uses all.
        axis: The class axis over which the loss is computed (only the last axis is supported).
    """
    _last_axis(axis)
    return SparseCategoricalCrossentropy(from_logits, ignore_class, reduction="none")(y_true, y_pred)


def huber(y_true: ArrayLike, y_pred: ArrayLike, delta: float = 1.0) -> np.ndarray:
    """Per-sample Huber loss averaged over the last axis (no batch reduction).

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
        delta: The point where the Huber loss changes from quadratic to linear.
    """
    return Huber(delta, reduction="none")(y_true, y_pred)


_CLASSES = {c.__name__: c for c in (LossFunctionWrapper, MeanSquaredError, MeanAbsoluteError, Huber, BinaryCrossentropy,
                                     CategoricalCrossentropy, SparseCategoricalCrossentropy)}
_ALIASES = {
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber,
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


def get(identifier: Any) -> Any:
    """A Loss from a Keras name, a {"class_name", "config"} dict, or a Loss instance.

    Args:
        identifier: A name (string), a config dictionary, an instance, a callable, or `None`.
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _ALIASES.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown loss {identifier!r}; expected one of {sorted(_ALIASES)}")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier) and not isinstance(identifier, type):
        return LossFunctionWrapper(identifier)
    raise TypeError(f"loss must be a string, a dict, a cynet Loss or a function (y_true, y_pred) -> per-sample "
                    f"losses; received {identifier!r}")


def serialize(loss: Any) -> Any:
    """A loss's config dictionary (`{"class_name": ..., "config": ...}`), as Keras's `losses.serialize`.

    Args:
        loss: A loss (instance, function or name).
    """
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config: Any) -> Any:
    """A loss from `serialize`'s dictionary.

    Args:
        config: The dictionary `get_config()` returned.
    """
    cls: type[Loss] | None = _CLASSES.get(str(config.get("class_name"))) if isinstance(config, dict) else None
    if cls is None and isinstance(config, dict):
        from .utils.serialization import get_registered_object
        cls = get_registered_object(str(config.get("class_name")))   # a registered Loss subclass
        cls = cls if isinstance(cls, type) and issubclass(cls, Loss) else None
    if cls is None:
        raise ValueError(f"Unknown loss config {config!r}; expected class_name in {sorted(_CLASSES)}")
    return cls.from_config(dict(config.get("config", {})))
