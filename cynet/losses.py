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

Besides those, Keras 3's hinge, squared and categorical hinge, KL divergence, Poisson, log-cosh,
cosine similarity, MAPE, MSLE, binary and categorical focal cross-entropies, Dice and Tversky
losses, each with its analytic gradient (`_per_sample` returns the values and a function of the
upstream factor), and Keras's names for `compile(loss=...)` ("kld", "mape", "msle", "log_cosh", ...).
"""
from collections.abc import Callable
from typing import Any

import numpy as np

from . import tape as _tape
from ._typing import ArrayLike, DTypeLike
from ._validation import first_entry
from .kernels import activations as K
from .kernels._backend import impl as _impl

EPSILON = 1e-7


def _float(a, dtype=None):
    a = np.asarray(a)
    if dtype is None:
        dtype = a.dtype if a.dtype in (np.float32, np.float64) else np.float32
    return a.astype(dtype, copy=False)


def _loss_dtype(dtype):
    """A loss's compute dtype: None (the predictions' own) or a float dtype's name."""
    if dtype is None:
        return None
    name = getattr(dtype, "name", dtype)   # a dtype policy or a NumPy dtype
    try:
        dt = np.dtype(getattr(dtype, "compute_dtype", name))
    except TypeError:
        raise ValueError(f"dtype must be a float dtype such as 'float32'; received dtype={dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64'; received dtype={dtype!r}")
    return dt.name


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


def _reduce(values, sample_weight, dtype, reduction="sum_over_batch_size", mask=None):
    """(reduced loss, d loss / d values) of per-sample values under a Keras reduction: a float,
    or for "none" the weighted values (whose sum the gradient is of). `mask` (bool, values' shape)
    leaves entries out as Keras's apply_mask does: for the mean reductions the kept ones are
    weighted by size / number kept, so that the loss is their mean."""
    if sample_weight is not None and values.ndim == 0:
        # one number for the batch (Dice, Tversky with axis=None): Keras broadcasts it to the weights
        values = np.broadcast_to(values, np.shape(sample_weight))
    weights = None if sample_weight is None else _weights(values, sample_weight, dtype)
    if mask is not None:
        kept = int(np.count_nonzero(mask))
        per_kept = (mask.size / kept if kept else 0.0) if reduction in ("mean", "sum_over_batch_size") else 1.0
        float_mask = np.where(mask, per_kept, 0.0).astype(dtype)
        weights = float_mask if weights is None else weights * float_mask
        values = np.where(mask, values, 0)   # an ignored entry's value is 0 (Keras), even where weights are not
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


def _reduce_into(values, grad, sample_weight, dtype, reduction, mask=None):
    """(reduced loss, gradient) of per-sample `values` whose per-sample gradients `grad` (values'
    shape plus trailing axes; a fresh array, scaled in place) are given: `_reduce`'s result and
    `grad * scale`, without its arrays of ones when no sample_weight or mask weighs the values
    (every step of fit without weights: the same numbers, since scale is then 1/n everywhere)."""
    if sample_weight is not None or mask is not None or reduction in ("none", None) or values.size == 0:
        loss, scale = _reduce(values, sample_weight, dtype, reduction, mask)
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
        dtype: The float dtype the loss computes in (its gradient comes back in the predictions' dtype);
            `None` (default) computes in the predictions' dtype (float32, or float64 for float64 inputs).
    """

    #: which activation, applied by the last layer, this loss can fuse with (or None).
    fusable_activation: str | None = None

    def __init__(self, name: str | None = None, reduction: str | None = "sum_over_batch_size",
                 dtype: DTypeLike | None = None) -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}; received reduction={reduction!r}")
        self.name = name or _snake(type(self).__name__)
        self.reduction = reduction
        self.dtype = _loss_dtype(dtype)

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Any:
        from .ops import core as _opcore
        tape = _opcore.recording()
        if tape is not None and self.reduction not in ("none", None) and _opcore.differentiable(y_pred):
            # on a recording tape (a GradientTape, an overridden compute_loss): the loss is an op
            loss, dy = self.forward_backward(y_true, _opcore.plain(y_pred), sample_weight)
            return _opcore.record(tape, lambda g, need: dy * g if need else None, [y_pred],
                                  np.asarray(loss, dtype=dy.dtype))
        y_pred = _float(y_pred, self.dtype)
        values, _ = self._per_sample(self._targets(y_true, y_pred), y_pred, need_grad=False)
        loss, _ = _reduce(values, sample_weight, y_pred.dtype, self.reduction, self._mask(y_true, y_pred))
        return loss

    def forward_backward(self, y_true: ArrayLike, y_pred: ArrayLike,
                         sample_weight: ArrayLike | None = None) -> tuple[Any, np.ndarray]:
        """(loss as __call__ returns it, gradient of that loss (summed, for "none") w.r.t. y_pred).

        Args:
            y_true: Ground-truth targets.
            y_pred: Predictions, with the same batch size as `y_true`.
            sample_weight: Optional per-sample weights, broadcast against the per-sample values.
        """
        given = _float(y_pred)
        y_pred = _float(given, self.dtype)
        values, grad_fn = self._per_sample(self._targets(y_true, y_pred), y_pred, need_grad=True)
        loss, scale = _reduce(values, sample_weight, y_pred.dtype, self.reduction, self._mask(y_true, y_pred))
        return loss, np.asarray(grad_fn(scale)).astype(given.dtype, copy=False)

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

    def _mask(self, y_true, y_pred):
        """Which per-sample values count (a bool array of their shape), or None for all: the entries
        a loss leaves out (SparseCategoricalCrossentropy's ignore_class)."""
        return None

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
        config: dict[str, Any] = {"name": self.name, "reduction": self.reduction}
        if self.dtype is not None:   # Keras leaves it out; kept here only when set, so that it round-trips
            config["dtype"] = self.dtype
        return config

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
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """

    def __init__(self, fn: Callable[..., Any], reduction: str | None = "sum_over_batch_size", name: str | None = None,
                 dtype: DTypeLike | None = None, **kwargs: Any) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable (y_true, y_pred) -> per-sample losses; received {fn!r}")
        super().__init__(name or getattr(fn, "__name__", "loss"), reduction, dtype)
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
        return {"fn": get_registered_name(self.fn), **super().get_config(), **self._fn_kwargs}

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
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str | None = "mean_squared_error",
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)

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
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str | None = "mean_absolute_error",
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)

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
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    def __init__(self, delta: float = 1.0, reduction: str | None = "sum_over_batch_size",
                 name: str | None = "huber_loss", dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)
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
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    fusable_activation = "sigmoid"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size", name: str | None = "binary_crossentropy",
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)
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
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    fusable_activation = "softmax"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size", name: str | None = "categorical_crossentropy",
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)
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
        return _reduce_into(values, dz, sample_weight, logits.dtype, self.reduction, self._mask(y_true, logits))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                "axis": self.axis}


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Integer class labels, shape y_pred.shape[:-1] (or with a trailing 1).

    Args:
        from_logits: Whether `y_pred` holds logits (unnormalized scores) instead of probabilities.
        ignore_class: A label (e.g. padding, any int) whose entries give a loss of 0 and are left out
            of the mean, as in Keras 3; `None` (default) uses every entry.
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        axis: The class axis of `y_pred` (only the last axis is supported); Keras 3's argument order.
        name: Name of the object (a unique default is generated when `None`).
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None,
                 reduction: str | None = "sum_over_batch_size", axis: int = -1,
                 name: str | None = "sparse_categorical_crossentropy", dtype: DTypeLike | None = None) -> None:
        Loss.__init__(self, name, reduction, dtype)
        _last_axis(axis)
        if ignore_class is not None and (isinstance(ignore_class, bool)
                                         or not isinstance(ignore_class, (int, np.integer))):
            raise ValueError(f"ignore_class must be an int or None; received ignore_class={ignore_class!r}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = 0.0
        self.axis = -1
        self.ignore_class = None if ignore_class is None else int(ignore_class)

    def _kept(self, labels):
        """The entries not labelled ignore_class (None when nothing is ignored)."""
        return None if self.ignore_class is None else np.asarray(labels) != self.ignore_class

    def _mask(self, y_true, y_pred):
        kept = self._kept(y_true)
        return None if kept is None else kept.reshape(y_pred.shape[:-1])

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
        kept = self._kept(y_true)
        if kept is not None:
            y_true = np.where(kept, y_true, 0)
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
        return _reduce_into(values, dz, sample_weight, logits.dtype, self.reduction, self._mask(y_true, logits))

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
        kept = self._kept(labels)
        if kept is not None:   # an ignored entry's label becomes 0: its value is left out by _mask
            labels = np.where(kept, labels, 0)
        k = y_pred.shape[-1]
        if in_range and labels.size and (labels.min() < 0 or labels.max() >= k):
            raise ValueError(f"{self.name}: labels must lie in [0, {k}); received values from {labels.min()} to {labels.max()}")
        return labels

    def get_config(self) -> dict[str, Any]:
        return {**Loss.get_config(self), "from_logits": self.from_logits, "ignore_class": self.ignore_class,
                "axis": self.axis}


# ---------------------------------------------------------------------------------------------
# Keras 3's other losses: each with its per-sample values and their analytic gradient.

def _axis_int(axis, name="axis"):
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"{name} must be an int; received {name}={axis!r}")
    return int(axis)


def _axes_or_none(axis):
    """Dice / Tversky reduce over `axis`: None (every axis, one number per batch), an int or a
    tuple of ints."""
    if axis is None:
        return None
    if isinstance(axis, (list, tuple)):
        return tuple(_axis_int(a) for a in axis)
    return _axis_int(axis)


def _norm_axes(axis, ndim):
    """`axis` (None, an int or a tuple) as a sorted tuple of non-negative axes of an ndim array."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of bounds for predictions of rank {ndim}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"axis must not repeat an axis; received axis={axis!r}")
    return tuple(sorted(out))


def _hinge_targets(y_true):
    """Keras's convert_binary_labels_to_hinge: 0/1 labels (all of them, over the whole batch) become
    -1/1; other labels are used as they are."""
    if y_true.size and np.all((y_true == 0) | (y_true == 1)):
        return 2.0 * y_true - 1.0
    return y_true


def _grad_last(elems_grad, y_pred):
    """d (mean over the last axis) / d y_pred, scaled per sample: `elems_grad` is d elems / d y_pred."""
    k = y_pred.shape[-1] if y_pred.ndim else 1
    return lambda scale: (elems_grad * (np.asarray(scale)[..., None] / k)).astype(y_pred.dtype, copy=False)


def _mean_last(elems, y_pred):
    return np.mean(elems, axis=-1).astype(y_pred.dtype, copy=False)


class Hinge(Loss):
    """Hinge loss `mean(maximum(1 - y_true * y_pred, 0))` over the last axis, for -1/1 labels (0/1
    labels, when every label of the batch is 0 or 1, are turned into -1/1 as Keras does).

    Args:
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str | None = "hinge",
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)

    def _per_sample(self, y_true, y_pred, need_grad):
        t = _hinge_targets(y_true)
        margin = 1.0 - t * y_pred
        return _mean_last(np.maximum(margin, 0.0), y_pred), _grad_last(np.where(margin > 0, -t, 0.0), y_pred)


class SquaredHinge(Loss):
    """Squared hinge loss `mean(maximum(1 - y_true * y_pred, 0) ** 2)` over the last axis (0/1 labels
    become -1/1 as for `Hinge`).

    Args:
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str | None = "squared_hinge",
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)

    def _per_sample(self, y_true, y_pred, need_grad):
        t = _hinge_targets(y_true)
        margin = np.maximum(1.0 - t * y_pred, 0.0)
        return _mean_last(margin * margin, y_pred), _grad_last(-2.0 * t * margin, y_pred)


class CategoricalHinge(Loss):
    """Categorical hinge loss `maximum(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)` over
    the last axis, for one-hot targets.

    Args:
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str | None = "categorical_hinge", dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)

    def _per_sample(self, y_true, y_pred, need_grad):
        pos = np.sum(y_true * y_pred, axis=-1)
        others = (1.0 - y_true) * y_pred
        j = np.argmax(others, axis=-1)[..., None]
        neg = np.take_along_axis(others, j, axis=-1)[..., 0]
        values = np.maximum(neg - pos + 1.0, 0.0).astype(y_pred.dtype, copy=False)

        def grad(scale):
            g = -y_true.copy()
            np.put_along_axis(g, j, np.take_along_axis(g, j, axis=-1) + np.take_along_axis(1.0 - y_true, j, axis=-1),
                              axis=-1)
            active = (neg - pos + 1.0 > 0)
            return (g * (np.where(active, scale, 0.0)[..., None])).astype(y_pred.dtype, copy=False)
        return values, grad


class KLDivergence(Loss):
    """Kullback-Leibler divergence `sum(y_true * log(y_true / y_pred))` over the last axis, both clipped to
    [1e-7, 1] as Keras does.

    Args:
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str | None = "kl_divergence",
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)

    def _per_sample(self, y_true, y_pred, need_grad):
        t = np.clip(y_true, EPSILON, 1.0)
        p = np.clip(y_pred, EPSILON, 1.0)
        values = np.sum(t * np.log(t / p), axis=-1).astype(y_pred.dtype, copy=False)
        inside = (y_pred >= EPSILON) & (y_pred <= 1.0)   # the clip passes the gradient on its closed interval

        def grad(scale):
            return (np.where(inside, -t / p, 0.0) * np.asarray(scale)[..., None]).astype(y_pred.dtype, copy=False)
        return values, grad


class Poisson(Loss):
    """Poisson loss `mean(y_pred - y_true * log(y_pred + 1e-7))` over the last axis.

    Args:
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str | None = "poisson",
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)

    def _per_sample(self, y_true, y_pred, need_grad):
        shifted = y_pred + EPSILON
        with np.errstate(divide="ignore", invalid="ignore"):
            elems = y_pred - y_true * np.log(shifted)
            return _mean_last(elems, y_pred), _grad_last(1.0 - y_true / shifted, y_pred)


class LogCosh(Loss):
    """Logarithm of the hyperbolic cosine of the error, `mean(log(cosh(y_pred - y_true)))` over the last
    axis: about half the squared error for small errors, the absolute error minus log(2) for large ones.

    Args:
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str | None = "log_cosh",
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)

    def _per_sample(self, y_true, y_pred, need_grad):
        x = y_pred - y_true
        a = np.abs(x)
        elems = a + np.log1p(np.exp(-2.0 * a)) - np.log(2.0)   # log(cosh(x)) without overflow
        return _mean_last(elems, y_pred), _grad_last(np.tanh(x), y_pred)


class CosineSimilarity(Loss):
    """Negative cosine similarity `-sum(l2_normalize(y_true) * l2_normalize(y_pred))` along `axis`: -1 for
    parallel vectors, 0 for orthogonal ones (norms are bounded below by 1e-7 as Keras does).

    Args:
        axis: The axis along which the similarity is computed.
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    def __init__(self, axis: int = -1, reduction: str | None = "sum_over_batch_size",
                 name: str | None = "cosine_similarity", dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)
        self.axis = _axis_int(axis)

    def _per_sample(self, y_true, y_pred, need_grad):
        (axis,) = _norm_axes(self.axis, y_pred.ndim)
        with np.errstate(divide="ignore"):
            inv_t = np.minimum(1.0 / np.sqrt(np.sum(y_true * y_true, axis=axis, keepdims=True)), 1.0 / EPSILON)
            norm_p = np.sqrt(np.sum(y_pred * y_pred, axis=axis, keepdims=True))
            inv_p = np.minimum(1.0 / norm_p, 1.0 / EPSILON)
        u = y_true * inv_t
        v = y_pred * inv_p
        values = -np.sum(u * v, axis=axis).astype(y_pred.dtype, copy=False)

        def grad(scale):
            # d/dp of -sum(u * p * inv_p): inv_p = 1/|p| (above the bound) also depends on p.
            free = inv_p < 1.0 / EPSILON
            g = -u * inv_p + np.where(free, np.sum(u * v, axis=axis, keepdims=True) * v * inv_p, 0.0)
            return (g * np.expand_dims(np.asarray(scale), axis)).astype(y_pred.dtype, copy=False)
        return values, grad

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


class MeanAbsolutePercentageError(Loss):
    """Mean absolute percentage error `100 * mean(|y_true - y_pred| / maximum(|y_true|, 1e-7))` over the
    last axis.

    Args:
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str | None = "mean_absolute_percentage_error", dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)

    def _per_sample(self, y_true, y_pred, need_grad):
        denom = np.maximum(np.abs(y_true), EPSILON)
        diff = y_pred - y_true
        return (_mean_last(100.0 * np.abs(diff) / denom, y_pred),
                _grad_last(100.0 * np.sign(diff) / denom, y_pred))


class MeanSquaredLogarithmicError(Loss):
    """Mean squared logarithmic error `mean((log(maximum(y_pred, 1e-7) + 1) - log(maximum(y_true, 1e-7) +
    1)) ** 2)` over the last axis.

    Args:
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str | None = "mean_squared_logarithmic_error", dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)

    def _per_sample(self, y_true, y_pred, need_grad):
        shifted = np.maximum(y_pred, EPSILON) + 1.0
        diff = np.log(shifted) - np.log(np.maximum(y_true, EPSILON) + 1.0)
        dp = np.where(y_pred > EPSILON, 2.0 * diff / shifted, 0.0)
        return _mean_last(diff * diff, y_pred), _grad_last(dp, y_pred)


def _bce_terms(t, p):
    """Keras's binary cross-entropy on probabilities (clipped to [1e-7, 1 - 1e-7]) and its derivative
    w.r.t. p (zero where the clip is active)."""
    pc = np.clip(p, EPSILON, 1.0 - EPSILON)
    bce = -(t * np.log(pc) + (1.0 - t) * np.log(1.0 - pc))
    inside = (p >= EPSILON) & (p <= 1.0 - EPSILON)
    return bce, np.where(inside, -t / pc + (1.0 - t) / (1.0 - pc), 0.0)


def _power_and_slope(base, gamma):
    """base ** gamma and its derivative gamma * base ** (gamma - 1), taken as 0 at base == 0 for
    gamma < 1 (where it is infinite) so that a perfectly classified entry gives no NaN."""
    powered = np.power(base, gamma)
    if gamma == 0:
        return powered, np.zeros_like(base)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(base > 0, gamma * np.power(base, gamma - 1.0), 1.0 if gamma == 1 else 0.0)
    return powered, slope


def _focal_args(alpha, gamma):
    alpha, gamma = float(alpha), float(gamma)
    if not gamma >= 0:
        raise ValueError(f"gamma must be >= 0; received gamma={gamma!r}")
    if not np.isfinite(alpha):
        raise ValueError(f"alpha must be a finite number; received alpha={alpha!r}")
    return alpha, gamma


class BinaryFocalCrossentropy(Loss):
    """Focal binary cross-entropy (Lin et al., 2017): the binary cross-entropy of each entry times
    `(1 - p_t) ** gamma`, which down-weights the easy, well-classified entries; with
    `apply_class_balancing` also times `alpha` for positives and `1 - alpha` for negatives. Averaged over
    the last axis.

    Args:
        apply_class_balancing: Whether to weight positives by `alpha` and negatives by `1 - alpha`.
        alpha: The class-balancing weight of the positive class (used with `apply_class_balancing`).
        gamma: The focusing parameter (>= 0); 0 gives the plain binary cross-entropy.
        from_logits: Whether `y_pred` holds logits (unnormalized scores) instead of probabilities.
        label_smoothing: In `[0, 1]`: targets are squeezed toward 0.5 by this amount.
        axis: The axis over which the loss is averaged (only the last axis is supported).
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    def __init__(self, apply_class_balancing: bool = False, alpha: float = 0.25, gamma: float = 2.0,
                 from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size", name: str | None = "binary_focal_crossentropy",
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)
        self.apply_class_balancing = bool(apply_class_balancing)
        self.alpha, self.gamma = _focal_args(alpha, gamma)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _smoothing(label_smoothing)
        self.axis = _last_axis(axis)

    def check_targets(self, y_true: ArrayLike, y_pred_shape: tuple[int | None, ...], name: str = "y") -> np.ndarray:
        """Shapes as for every loss, and targets in [0, 1] (labels or probabilities), as for the
        cross-entropies.

        Args:
            y_true: Ground-truth targets.
            y_pred_shape: Shape of the predictions.
            name: Name of the object (a unique default is generated when `None`).
        """
        y_true = super().check_targets(y_true, y_pred_shape, name)
        _check_in_unit_interval(y_true, name, self.name, "binary targets (0/1 labels or probabilities)")
        return y_true

    def _targets(self, y_true, y_pred):
        y_true = super()._targets(y_true, y_pred)
        if self.label_smoothing:
            return y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return y_true

    def _per_sample(self, y_true, y_pred, need_grad):
        t = y_true
        p = K.sigmoid_forward(y_pred) if self.from_logits else y_pred
        bce, dbce = _bce_terms(t, p)
        one_minus_pt = 1.0 - (t * p + (1.0 - t) * (1.0 - p))
        focal, dfocal = _power_and_slope(one_minus_pt, self.gamma)
        weight = (t * self.alpha + (1.0 - t) * (1.0 - self.alpha)) if self.apply_class_balancing else 1.0
        values = _mean_last(weight * focal * bce, y_pred)

        def grad(scale):
            # d(1 - p_t)/dp = 1 - 2t; through the sigmoid for logits.
            dp = weight * (dfocal * (1.0 - 2.0 * t) * bce + focal * dbce)
            if self.from_logits:
                dp = dp * p * (1.0 - p)
            return _grad_last(dp, y_pred)(scale)
        return values, grad

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                "axis": self.axis, "apply_class_balancing": self.apply_class_balancing, "alpha": self.alpha,
                "gamma": self.gamma}


class CategoricalFocalCrossentropy(Loss):
    """Focal categorical cross-entropy (Lin et al., 2017): `sum(alpha * (1 - p) ** gamma * -y_true *
    log(p))` over the classes, with p the predictions normalized to sum 1 (the softmax of logits) and
    clipped to [1e-7, 1 - 1e-7], as Keras computes it.

    Args:
        alpha: The weight of every class's term (a number, as in Keras).
        gamma: The focusing parameter (>= 0); 0 gives `alpha` times the categorical cross-entropy.
        from_logits: Whether `y_pred` holds logits (unnormalized scores) instead of probabilities.
        label_smoothing: In `[0, 1]`: targets are squeezed toward `1 / num_classes` by this amount.
        axis: The class axis over which the loss is computed (only the last axis is supported).
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, from_logits: bool = False,
                 label_smoothing: float = 0.0, axis: int = -1, reduction: str | None = "sum_over_batch_size",
                 name: str | None = "categorical_focal_crossentropy", dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)
        self.alpha, self.gamma = _focal_args(alpha, gamma)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _smoothing(label_smoothing)
        self.axis = _last_axis(axis)

    def check_targets(self, y_true: ArrayLike, y_pred_shape: tuple[int | None, ...], name: str = "y") -> np.ndarray:
        """Shapes as for every loss, and targets in [0, 1] (labels or probabilities), as for the
        cross-entropies.

        Args:
            y_true: Ground-truth targets.
            y_pred_shape: Shape of the predictions.
            name: Name of the object (a unique default is generated when `None`).
        """
        y_true = super().check_targets(y_true, y_pred_shape, name)
        _check_in_unit_interval(y_true, name, self.name, "one-hot targets or probabilities")
        return y_true

    def _targets(self, y_true, y_pred):
        y_true = super()._targets(y_true, y_pred)
        if self.label_smoothing:
            return y_true * (1.0 - self.label_smoothing) + self.label_smoothing / y_pred.shape[-1]
        return y_true

    def _per_sample(self, y_true, y_pred, need_grad):
        t = y_true
        p = K.softmax_forward(y_pred) if self.from_logits else y_pred
        total = np.sum(p, axis=-1, keepdims=True)
        q = p / total
        o = np.clip(q, EPSILON, 1.0 - EPSILON)
        log_o = np.log(o)
        focal, dfocal = _power_and_slope(1.0 - o, self.gamma)
        values = np.sum(self.alpha * focal * (-t * log_o), axis=-1).astype(y_pred.dtype, copy=False)

        def grad(scale):
            go = self.alpha * (dfocal * t * log_o - focal * t / o)
            gq = np.where((q >= EPSILON) & (q <= 1.0 - EPSILON), go, 0.0)
            gp = (gq - np.sum(gq * q, axis=-1, keepdims=True)) / total   # through p / sum(p)
            if self.from_logits:
                gp = p * (gp - np.sum(gp * p, axis=-1, keepdims=True))     # through the softmax
            return (gp * np.asarray(scale)[..., None]).astype(y_pred.dtype, copy=False)
        return values, grad

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                "axis": self.axis, "alpha": self.alpha, "gamma": self.gamma}


class _OverlapLoss(Loss):
    """Dice and Tversky: one minus an overlap ratio of sums over `axis` (None: over everything, one
    number for the whole batch, as Keras)."""

    axis: int | tuple[int, ...] | None

    def _ratio(self, t, p, axes):
        """(numerator, denominator, d numerator / d p, d denominator / d p) of the overlap ratio."""
        raise NotImplementedError

    def _per_sample(self, y_true, y_pred, need_grad):
        axes = _norm_axes(self.axis, y_pred.ndim)
        num, den, dnum, dden = self._ratio(y_true, y_pred, axes)
        values = (1.0 - num / den).astype(y_pred.dtype, copy=False)

        def grad(scale):
            scale = np.asarray(scale)
            if values.ndim == 0:      # a weighted scalar loss was broadcast to the weights: sum them back
                scale = scale.sum()
            s = np.expand_dims(scale, axes) if axes else scale
            n, d = np.expand_dims(num, axes), np.expand_dims(den, axes)
            g = -(dnum * d - n * dden) / (d * d)
            return (g * s).astype(y_pred.dtype, copy=False)
        return values, grad

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": list(self.axis) if isinstance(self.axis, tuple) else self.axis}


class Dice(_OverlapLoss):
    """Dice loss `1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + 1e-7)`, the sums over `axis`
    (segmentation masks: e.g. `axis=(1, 2, 3)` gives one loss per image).

    Args:
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
        axis: The axis (an int or a tuple of ints) the sums run over; `None` (default, Keras's) sums over
            every axis, one number for the whole batch.
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str | None = "dice",
                 axis: int | tuple[int, ...] | None = None, dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)
        self.axis = _axes_or_none(axis)

    def _ratio(self, t, p, axes):
        num = 2.0 * np.sum(t * p, axis=axes)
        den = np.sum(t, axis=axes) + np.sum(p, axis=axes) + EPSILON
        return num, den, 2.0 * t, np.ones_like(p)


class Tversky(_OverlapLoss):
    """Tversky loss `1 - TP / (TP + alpha * FP + beta * FN + 1e-7)` with soft counts TP = sum(y_true *
    y_pred), FP = sum(y_true * (1 - y_pred)), FN = sum((1 - y_true) * y_pred) (Keras's naming), over `axis`;
    alpha = beta = 0.5 is the Dice loss.

    Args:
        alpha: The weight of the `FP` term.
        beta: The weight of the `FN` term.
        reduction: How per-sample losses become one number: `"sum_over_batch_size"` (default, Keras's),
            `"sum"`, `"mean"` or `None` (no reduction).
        name: Name of the object (a default is generated when `None`).
        axis: The axis (an int or a tuple of ints) the sums run over; `None` (default, Keras's) sums over
            every axis, one number for the whole batch.
        dtype: The float dtype the loss computes in; `None` (default) uses the predictions' dtype.
    """
    def __init__(self, alpha: float = 0.5, beta: float = 0.5, reduction: str | None = "sum_over_batch_size",
                 name: str | None = "tversky", axis: int | tuple[int, ...] | None = None,
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(name, reduction, dtype)
        self.alpha, self.beta = float(alpha), float(beta)
        if not (np.isfinite(self.alpha) and np.isfinite(self.beta)):
            raise ValueError(f"alpha and beta must be finite numbers; received alpha={alpha!r}, beta={beta!r}")
        self.axis = _axes_or_none(axis)

    def _ratio(self, t, p, axes):
        tp = np.sum(t * p, axis=axes)
        fp = np.sum((1.0 - p) * t, axis=axes)
        fn = np.sum(p * (1.0 - t), axis=axes)
        den = tp + self.alpha * fp + self.beta * fn + EPSILON
        return tp, den, t, t - self.alpha * t + self.beta * (1.0 - t)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta}


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


def hinge(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Per-sample hinge loss over the last axis (no batch reduction).

    Args:
        y_true: Ground-truth targets, -1/1 (or 0/1) labels.
        y_pred: Predictions, with the same batch size as `y_true`.
    """
    return Hinge(reduction="none")(y_true, y_pred)


def squared_hinge(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Per-sample squared hinge loss over the last axis (no batch reduction).

    Args:
        y_true: Ground-truth targets, -1/1 (or 0/1) labels.
        y_pred: Predictions, with the same batch size as `y_true`.
    """
    return SquaredHinge(reduction="none")(y_true, y_pred)


def categorical_hinge(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Per-sample categorical hinge loss (no batch reduction).

    Args:
        y_true: Ground-truth targets, one-hot.
        y_pred: Predictions, with the same batch size as `y_true`.
    """
    return CategoricalHinge(reduction="none")(y_true, y_pred)


def kl_divergence(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Per-sample Kullback-Leibler divergence over the last axis (no batch reduction).

    Args:
        y_true: Ground-truth targets (probabilities).
        y_pred: Predictions, with the same batch size as `y_true`.
    """
    return KLDivergence(reduction="none")(y_true, y_pred)


def poisson(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Per-sample Poisson loss over the last axis (no batch reduction).

    Args:
        y_true: Ground-truth targets (counts).
        y_pred: Predictions, with the same batch size as `y_true`.
    """
    return Poisson(reduction="none")(y_true, y_pred)


def log_cosh(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Per-sample log-cosh error over the last axis (no batch reduction).

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
    """
    return LogCosh(reduction="none")(y_true, y_pred)


def cosine_similarity(y_true: ArrayLike, y_pred: ArrayLike, axis: int = -1) -> np.ndarray:
    """Per-sample negative cosine similarity along `axis` (no batch reduction).

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
        axis: The axis along which the similarity is computed.
    """
    return CosineSimilarity(axis, reduction="none")(y_true, y_pred)


def mean_absolute_percentage_error(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Per-sample mean absolute percentage error over the last axis (no batch reduction).

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
    """
    return MeanAbsolutePercentageError(reduction="none")(y_true, y_pred)


def mean_squared_logarithmic_error(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Per-sample mean squared logarithmic error over the last axis (no batch reduction).

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
    """
    return MeanSquaredLogarithmicError(reduction="none")(y_true, y_pred)


def binary_focal_crossentropy(y_true: ArrayLike, y_pred: ArrayLike, apply_class_balancing: bool = False,
                              alpha: float = 0.25, gamma: float = 2.0, from_logits: bool = False,
                              label_smoothing: float = 0.0, axis: int = -1) -> np.ndarray:
    """Per-sample focal binary cross-entropy averaged over `axis` (no batch reduction).

    Args:
        y_true: Ground-truth targets (0/1 labels or probabilities).
        y_pred: Predictions, with the same batch size as `y_true`.
        apply_class_balancing: Whether to weight positives by `alpha` and negatives by `1 - alpha`.
        alpha: The class-balancing weight of the positive class (used with `apply_class_balancing`).
        gamma: The focusing parameter (>= 0).
        from_logits: Whether `y_pred` holds logits (unnormalized scores) instead of probabilities.
        label_smoothing: In `[0, 1]`: targets are squeezed toward 0.5 by this amount.
        axis: The axis over which the loss is averaged (only the last axis is supported).
    """
    return BinaryFocalCrossentropy(apply_class_balancing, alpha, gamma, from_logits, label_smoothing, axis,
                                   reduction="none")(y_true, y_pred)


def categorical_focal_crossentropy(y_true: ArrayLike, y_pred: ArrayLike, alpha: float = 0.25, gamma: float = 2.0,
                                   from_logits: bool = False, label_smoothing: float = 0.0,
                                   axis: int = -1) -> np.ndarray:
    """Per-sample focal categorical cross-entropy (no batch reduction).

    Args:
        y_true: Ground-truth targets, one-hot (or probabilities).
        y_pred: Predictions, with the same batch size as `y_true`.
        alpha: The weight of every class's term.
        gamma: The focusing parameter (>= 0).
        from_logits: Whether `y_pred` holds logits (unnormalized scores) instead of probabilities.
        label_smoothing: In `[0, 1]`: targets are squeezed toward `1 / num_classes` by this amount.
        axis: The class axis over which the loss is computed (only the last axis is supported).
    """
    return CategoricalFocalCrossentropy(alpha, gamma, from_logits, label_smoothing, axis,
                                        reduction="none")(y_true, y_pred)


def dice(y_true: ArrayLike, y_pred: ArrayLike, axis: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Dice loss with the sums over `axis` (None: one number for everything), no batch reduction.

    Args:
        y_true: Ground-truth targets (masks).
        y_pred: Predictions, with the same batch size as `y_true`.
        axis: The axis (an int or a tuple of ints) the sums run over; `None` sums over every axis.
    """
    return Dice(reduction="none", axis=axis)(y_true, y_pred)


def tversky(y_true: ArrayLike, y_pred: ArrayLike, alpha: float = 0.5, beta: float = 0.5,
            axis: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Tversky loss with the sums over `axis` (None: one number for everything), no batch reduction.

    Args:
        y_true: Ground-truth targets (masks).
        y_pred: Predictions, with the same batch size as `y_true`.
        alpha: The weight of the false-positive term (Keras's naming).
        beta: The weight of the false-negative term (Keras's naming).
        axis: The axis (an int or a tuple of ints) the sums run over; `None` sums over every axis.
    """
    return Tversky(alpha, beta, reduction="none", axis=axis)(y_true, y_pred)


_CLASSES: dict[str, type[Loss]] = {
    c.__name__: c for c in (LossFunctionWrapper, MeanSquaredError, MeanAbsoluteError, Huber, BinaryCrossentropy,
                            CategoricalCrossentropy, SparseCategoricalCrossentropy)}
_ALIASES: dict[str, type[Loss]] = {
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber,
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}
_MORE = (Hinge, SquaredHinge, CategoricalHinge, KLDivergence, Poisson, LogCosh, CosineSimilarity,
         MeanAbsolutePercentageError, MeanSquaredLogarithmicError, BinaryFocalCrossentropy,
         CategoricalFocalCrossentropy, Dice, Tversky)
_CLASSES.update({c.__name__: c for c in _MORE})
_ALIASES.update({_snake(c.__name__): c for c in _MORE if c is not KLDivergence})
_ALIASES.update({   # Keras 3's function names and short (legacy) names
    "kl_divergence": KLDivergence, "kld": KLDivergence, "kullback_leibler_divergence": KLDivergence,
    "log_cosh": LogCosh, "logcosh": LogCosh,
    "mape": MeanAbsolutePercentageError, "msle": MeanSquaredLogarithmicError,
})


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
