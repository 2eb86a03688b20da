"""Metrics, Keras 3 names: stateful objects with update_state / result / reset_state.

The string "accuracy" (or "acc", in any case) picks binary, sparse or categorical accuracy from
the label and prediction shapes on first use, as Keras 3's compile does; the class `Accuracy` is
Keras's exact-match metric (how often y_pred equals y_true). A metric given to compile as a string
is named by that string in the logs ("auc", "AUC"); a metric object without a name gets its class
name in snake_case, made unique ("precision", "precision_1"), as in Keras.

Besides the accuracies and the mean errors, Keras 3's confusion-matrix metrics (`Precision`,
`Recall`, `AUC`, `TruePositives` ..., `PrecisionAtRecall` ...), `F1Score` / `FBetaScore`, the IoU
metrics (`MeanIoU` ...), `R2Score`, the regression, hinge and probabilistic metrics
(`RootMeanSquaredError`, `MeanAbsolutePercentageError`, `KLDivergence`, `BinaryCrossentropy` ...,
whose per-sample values are cynet.losses' functions, as in Keras), `Sum`, `PearsonCorrelation` and
`ConcordanceCorrelation`, with Keras's arguments, defaults and results. They keep
their state in variables made by `add_variable` / `add_weight`, as a user's own `Metric` subclass
does; the counts accumulate in float64 (Keras: float32), and predictions are compared with the
thresholds in the metric's dtype (float32 by default), as Keras compares them.

`result()` returns a Python float, or a NumPy array for a metric with one value per threshold or
per class (Keras returns tensors).
"""
import functools
import inspect
import numbers
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._typing import ArrayLike, DTypeLike, Shape
from .losses import (binary_crossentropy, binary_focal_crossentropy, categorical_crossentropy,  # Keras 3's
                     categorical_focal_crossentropy, categorical_hinge, hinge, huber,  # keras.metrics.<fn>
                     kl_divergence, log_cosh, mean_absolute_percentage_error, mean_squared_logarithmic_error,
                     poisson, sparse_categorical_crossentropy, squared_hinge)
from .variables import Variable

_EPSILON = 1e-7     # keras.backend.epsilon()
_NEG_INF = -1e10    # what Keras's top_k filter writes over the predictions outside the top k


def _auto_name(class_name):
    """Keras's auto_name: the class name in snake_case, made unique like layer names (precision,
    precision_1, ...; `clear_session` restarts the count)."""
    from .layers.base import snake_case, unique_name

    return unique_name(snake_case(re.sub(r"\W+", "", class_name)))


def _standardize_dtype(dtype, default="float32"):
    if dtype is None:
        dtype = default
    if isinstance(dtype, str) and dtype == "int":
        dtype = "int32"
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be a NumPy dtype name such as 'float32'; received dtype={dtype!r}") from None
    if dt.kind not in "fiub":
        raise ValueError(f"a metric's dtype must be a float or integer dtype; received dtype={dtype!r}")
    return dt.name


def _plain(value):
    """A result as cynet hands it out: a Python float for a scalar, a NumPy array (a copy) else."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Variable):
        value = value.value
    if isinstance(value, (np.ndarray, np.generic)):
        if value.ndim == 0 and value.dtype.kind in "fiub":
            return float(value)
        return np.array(value, copy=True)
    return value


class MetricVariable(np.lib.mixins.NDArrayOperatorsMixin, Variable):
    """A metric's state variable: a `Variable` that also takes part in NumPy arithmetic
    (`v + 1`, `v[0]`, `np.sum(v)`, `float(v)`), as Keras variables do in a metric's code.
    Arithmetic returns plain NumPy arrays; `assign` / `assign_add` change the variable.

    Args:
        value: Initial value of the variable.
        shape: Shape of the variable, a tuple of ints.
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
        name: Name of the object (a default is generated when `None`).
        aggregation: How the value is combined across replicas (`"sum"`, `"mean"`, ...); recorded for Keras
            compatibility.
    """

    __hash__ = Variable.__hash__

    def __init__(self, value: Any, shape: Shape | None = None, dtype: DTypeLike | None = "float32",
                 name: str | None = None,
                 aggregation: str = "sum") -> None:
        super().__init__(value, shape=shape, dtype=dtype, trainable=False, name=name)
        self.aggregation = aggregation

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = tuple(x.value if isinstance(x, Variable) else x for x in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(x.value if isinstance(x, Variable) else x for x in kwargs["out"])
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __getitem__(self, key):
        return self.value[key]

    def __len__(self):
        return len(self.value)

    def __iter__(self):
        return iter(self.value)

    def __float__(self):
        return float(self.value)

    def __int__(self):
        return int(self.value)

    def __bool__(self):
        return bool(self.value)

    def _copy(self):
        clone = MetricVariable(self.value, dtype=self.value.dtype, name=self.name, aggregation=self.aggregation)
        clone.path = self.path
        return clone


def _wrap_reset_or_update(fn):
    @functools.wraps(fn)
    def method(self, *args, **kwargs):
        self._own_state()
        return fn(self, *args, **kwargs)
    setattr(method, "_cynet_wrapped", True)
    return method


def _wrap_result(fn):
    @functools.wraps(fn)
    def result(self, *args, **kwargs):
        return _plain(fn(self, *args, **kwargs))
    setattr(result, "_cynet_wrapped", True)
    return result


class Metric:
    """Base class of the metrics (Keras 3's `keras.metrics.Metric`).

    A subclass creates its state in `__init__` with `self.add_variable(...)` (or `add_weight`),
    changes it in `update_state` (`v.assign(...)`, `v.assign_add(...)`) and computes `result()`
    from it; `reset_state()` sets every variable back to zeros unless overridden::

        class BinaryTruePositives(cynet.metrics.Metric):
            def __init__(self, name="binary_true_positives", **kwargs):
                super().__init__(name=name, **kwargs)
                self.true_positives = self.add_weight(shape=(), initializer="zeros", name="tp")

            def update_state(self, y_true, y_pred, sample_weight=None):
                values = np.logical_and(np.asarray(y_true, bool), np.asarray(y_pred) > 0.5)
                values = values.astype("float32")
                if sample_weight is not None:
                    values = values * np.broadcast_to(sample_weight, values.shape)
                self.true_positives.assign(self.true_positives + np.sum(values))

            def result(self):
                return self.true_positives

    `result()` hands out Python floats (NumPy arrays for vector results), never the variables.

    Args:
        name: the metric's name (in the logs and history); by default the class name in
            snake_case, made unique as Keras does ("precision", "precision_1", ...).
        dtype: the dtype the metric computes in (default "float32").
    """

    def __init__(self, name: str | None = None, dtype: DTypeLike | None = None) -> None:
        self.name = name if name is not None else _auto_name(type(self).__name__)
        self._dtype = _standardize_dtype(dtype)
        self._variables: list[Any] = []
        self._owner = id(self)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for attr, wrap in (("reset_state", _wrap_reset_or_update), ("update_state", _wrap_reset_or_update),
                           ("result", _wrap_result)):
            fn = cls.__dict__.get(attr)
            if inspect.isfunction(fn) and not getattr(fn, "_cynet_wrapped", False):
                setattr(cls, attr, wrap(fn))

    # ------------------------------------------------------------------ state
    @property
    def dtype(self) -> Any:
        """The dtype of the metric's state and result."""
        return self._dtype

    def add_variable(self, shape: Sequence[int], initializer: Any, dtype: DTypeLike | None = None,
                     aggregation: str = "sum", name: str | None = None) -> MetricVariable:
        """A new state variable of `shape`, filled by `initializer` (an initializer object or
        name such as "zeros"); it is reset to zeros by `reset_state`. `aggregation` ("sum",
        "mean", "only_first_replica" or "none") says how distributed training combines the
        ranks' values.

        Args:
            shape: Shape of the variable, a tuple of ints.
            initializer: Initializer of the variable (an Initializer instance or name).
            dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
            aggregation: How the value is combined across replicas (`"sum"`, `"mean"`, ...); recorded for
                Keras compatibility.
            name: Name of the object (a default is generated when `None`).
        """
        if "_variables" not in self.__dict__:
            raise RuntimeError("You forgot to call `super().__init__()` in the `__init__()` method. Go add it!")
        from . import initializers

        if aggregation not in ("sum", "mean", "only_first_replica", "none"):
            raise ValueError(f"aggregation must be one of 'sum', 'mean', 'only_first_replica', 'none'; "
                             f"received aggregation={aggregation!r}")
        if shape is None:
            shape = ()
        elif isinstance(shape, numbers.Integral):
            shape = (int(shape),)
        else:
            shape = tuple(int(d) for d in shape)
        init = initializers.get("zeros" if initializer is None else initializer)
        variable = MetricVariable(init, shape=shape, dtype=_standardize_dtype(dtype, self._dtype),
                                  name=name, aggregation=aggregation)
        variable.path = f"{self.name}/{variable.name}"
        self._variables.append(variable)
        return variable

    def add_weight(self, shape: Sequence[int] = (), initializer: Any = None, dtype: DTypeLike | None = None,
                   name: str | None = None) -> MetricVariable:
        """Keras's older name for `add_variable` (zeros when no initializer is given).

        Args:
            shape: Shape of the variable, a tuple of ints.
            initializer: Initializer of the variable (an Initializer instance or name).
            dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
            name: Name of the object (a default is generated when `None`).
        """
        return self.add_variable(shape=shape, initializer=initializer, dtype=dtype, name=name)

    @property
    def variables(self) -> list[Any]:
        """The metric's state variables (those of metrics it holds as attributes included)."""
        out = list(self.__dict__.get("_variables", ()))
        for value in self.__dict__.values():
            if isinstance(value, Metric) and value is not self:
                out.extend(value.variables)
        return out

    def _own_state(self):
        """A metric copied attribute by attribute (as the trainer copies the compiled metrics for
        evaluate) shares its variables with the original: give it its own before it changes them."""
        d = self.__dict__
        if d.get("_owner", id(self)) == id(self):
            return
        d["_owner"] = id(self)
        mapping = {id(v): v._copy() for v in d.get("_variables", ())}
        d["_variables"] = [mapping[id(v)] for v in d.get("_variables", ())]

        def swap(value):
            if isinstance(value, Variable):
                return mapping.get(id(value), value)
            if isinstance(value, Metric):
                clone = type(value).__new__(type(value))
                clone.__dict__.update(value.__dict__)
                clone._own_state()
                return clone
            if isinstance(value, list):
                return [swap(v) for v in value]
            if isinstance(value, tuple) and type(value) is tuple:
                return tuple(swap(v) for v in value)
            if isinstance(value, dict):
                return {k: swap(v) for k, v in value.items()}
            return value

        for key, value in list(d.items()):
            if key != "_variables":
                d[key] = swap(value)

    def _get_state(self):
        """The state as float64 arrays, with how each combines over ranks (distributed training)."""
        return [(np.array(v.value, dtype=np.float64), v.aggregation) for v in self.variables]

    def _set_state(self, values):
        for v, value in zip(self.variables, values):
            v.assign(value)

    def reset_state(self) -> None:
        """Set every state variable back to zeros (Keras's default)."""
        self._own_state()
        for v in self.variables:
            v.assign(np.zeros(v.shape, dtype=v.dtype))

    def update_state(self, *args: Any, **kwargs: Any) -> None:
        """Accumulate statistics from one batch into the metric's state variables."""
        raise NotImplementedError

    def result(self) -> Any:
        """The metric's current value, computed from its state variables."""
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        """update_state(*args, **kwargs), then the result."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments of this object, JSON-serializable, so that `from_config` rebuilds it."""
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Metric":
        """An instance built from `get_config()`'s dictionary.

        Args:
            config: The dictionary `get_config()` returned.
        """
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


_SCALARS = frozenset((int, float, np.float64, np.float32, np.int64))   # one number: no arrays needed


class Mean(Metric):
    """Weighted mean of the values passed to update_state(values, sample_weight=None).

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, name: str | None = "mean", dtype: DTypeLike | None = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def reset_state(self) -> None:
        self._total = 0.0
        self._count = 0.0

    def update_state(self, values: ArrayLike, sample_weight: ArrayLike | None = None) -> None:
        self._accumulate(values, sample_weight)

    def result(self) -> Any:
        return float(self._total / self._count) if self._count else 0.0

    def _get_state(self):
        return [(np.array([self._total, self._count]), "sum")]

    def _set_state(self, values):
        self._total, self._count = (float(x) for x in values[0])

    def _accumulate(self, values, sample_weight):
        """Keras's reduce_to_samplewise_values: values become one mean per sample (per weight, when
        sample_weight has more axes), the total grows by their weighted sum and the count by the
        number of samples, or the sum of the (per-sample mean) weights."""
        if type(sample_weight) in _SCALARS and type(values) in _SCALARS:   # fit's loss trackers, every batch
            weight = float(sample_weight)
            self._total += float(values) * weight
            self._count += weight
            return
        values = np.asarray(values, dtype=np.float64)
        if sample_weight is None:
            if values.ndim > 1:
                values = values.reshape(values.shape[0], -1).mean(axis=1)
            self._total += float(values.sum())
            self._count += values.shape[0] if values.ndim else 1
            return
        values, w = _same_rank(values, np.asarray(sample_weight, dtype=np.float64))
        if values.ndim > w.ndim:
            values = values.mean(axis=tuple(range(w.ndim, values.ndim)))
        try:
            w = np.broadcast_to(w, values.shape)
        except ValueError:
            raise ValueError(f"{self.name}: sample_weight must have shape {values.shape[:1]} (or broadcast to the "
                             f"values' shape {values.shape}); received shape {np.shape(sample_weight)}") from None
        values = values * w
        if w.ndim > 1:
            w = w.reshape(w.shape[0], -1).mean(axis=1)
            values = values.reshape(values.shape[0], -1).mean(axis=1)
        self._total += float(values.sum())
        self._count += float(w.sum())


class MeanMetricWrapper(Mean):
    """Mean over samples of fn(y_true, y_pred) -> per-sample values.

    Args:
        fn: The function `fn(y_true, y_pred, **kwargs)` returning per-sample values.
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, fn: Callable[..., Any], name: str | None = None, dtype: DTypeLike | None = None,
                 **kwargs: Any) -> None:
        self._fn = fn
        self._fn_kwargs = kwargs
        super().__init__(name=name or fn.__name__, dtype=dtype)

    def update_state(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> None:
        self._accumulate(self._fn(y_true, y_pred, **self._fn_kwargs), sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._fn_kwargs}


def _labels(y_true, y_pred):
    """Integer labels of shape y_pred.shape[:-1] from sparse labels (with or without a trailing 1)."""
    y_true = np.asarray(y_true)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    return y_true.astype(np.int64, copy=False)


def _same_rank(y_true, y_pred):
    """Keras's squeeze_or_expand_to_same_rank: when the ranks differ by one and the longer has a
    trailing axis of 1, expand a 1-d shorter one, else squeeze the longer one."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        if y_pred.ndim == 1:
            y_pred = y_pred[:, None]
        else:
            y_true = y_true[..., 0]
    elif y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        if y_true.ndim == 1:
            y_true = y_true[:, None]
        else:
            y_pred = y_pred[..., 0]
    return y_true, y_pred


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Keras's exact-match accuracy: 1 where y_pred equals y_true.

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
    """
    y_true, y_pred = _same_rank(y_true, y_pred)
    return (y_true == y_pred).astype(np.float64)


def binary_accuracy(y_true: ArrayLike, y_pred: ArrayLike, threshold: float = 0.5) -> np.ndarray:
    """1 where y_true equals (y_pred > threshold), elementwise (Keras 3: labels are 0/1).

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
        threshold: Predictions above this value count as class 1.
    """
    y_true, y_pred = _same_rank(y_true, y_pred)
    return (y_true == (y_pred > threshold)).astype(np.float64)


def categorical_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Per-sample 1.0 where the argmax of `y_pred` equals the argmax of one-hot `y_true`, else 0.0.

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
    """
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float64)


def sparse_categorical_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Per-sample 1.0 where the argmax of `y_pred` equals the integer label `y_true`, else 0.0.

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
    """
    y_pred = np.asarray(y_pred)
    return (_labels(y_true, y_pred) == np.argmax(y_pred, axis=-1)).astype(np.float64)


def top_k_categorical_accuracy(y_true: ArrayLike, y_pred: ArrayLike, k: int = 5) -> np.ndarray:
    """Per-sample 1.0 where the one-hot target's class is among the `k` highest scores of `y_pred`.

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
        k: Number of top predictions among which the target must be.
    """
    return sparse_top_k_categorical_accuracy(np.argmax(y_true, axis=-1), y_pred, k)


def sparse_top_k_categorical_accuracy(y_true: ArrayLike, y_pred: ArrayLike, k: int = 5) -> np.ndarray:
    """Per-sample 1.0 where the integer label is among the `k` highest scores of `y_pred`.

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
        k: Number of top predictions among which the target must be.
    """
    y_pred = np.asarray(y_pred)
    labels = _labels(y_true, y_pred)
    if k >= y_pred.shape[-1]:
        return np.ones(labels.shape)
    true_score = np.take_along_axis(y_pred, labels[..., None], axis=-1)
    # In the top k when fewer than k scores beat the true class's score.
    return ((y_pred > true_score).sum(axis=-1) < k).astype(np.float64)


def mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Per-sample mean squared error over the last axis.

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
    """
    d = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64).reshape(np.shape(y_pred))
    return np.mean(d * d, axis=-1)


def mean_absolute_error(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Per-sample mean absolute error over the last axis.

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
    """
    d = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64).reshape(np.shape(y_pred))
    return np.mean(np.abs(d), axis=-1)


class BinaryAccuracy(MeanMetricWrapper):
    """How often binary predictions (`y_pred > threshold`) match 0/1 labels.

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
        threshold: Predictions above this value count as class 1.
    """
    def __init__(self, name: str | None = "binary_accuracy", dtype: DTypeLike | None = None,
                 threshold: float = 0.5) -> None:
        super().__init__(binary_accuracy, name, dtype, threshold=threshold)


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of the predictions matches one-hot labels.

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """
    def __init__(self, name: str | None = "categorical_accuracy", dtype: DTypeLike | None = None) -> None:
        super().__init__(categorical_accuracy, name, dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of the predictions matches integer labels.

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """
    def __init__(self, name: str | None = "sparse_categorical_accuracy", dtype: DTypeLike | None = None) -> None:
        super().__init__(sparse_categorical_accuracy, name, dtype)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot target's class is among the top `k` predictions.

    Args:
        k: Number of top predictions among which the target must be.
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """
    def __init__(self, k: int = 5, name: str | None = "top_k_categorical_accuracy",
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(top_k_categorical_accuracy, name, dtype, k=k)


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer target is among the top `k` predictions.

    Args:
        k: Number of top predictions among which the target must be.
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """
    def __init__(self, k: int = 5, name: str | None = "sparse_top_k_categorical_accuracy",
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(sparse_top_k_categorical_accuracy, name, dtype, k=k)


class MeanSquaredError(MeanMetricWrapper):
    """Mean of the squared errors over all samples seen.

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """
    def __init__(self, name: str | None = "mean_squared_error", dtype: DTypeLike | None = None) -> None:
        super().__init__(mean_squared_error, name, dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    """Mean of the absolute errors over all samples seen.

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """
    def __init__(self, name: str | None = "mean_absolute_error", dtype: DTypeLike | None = None) -> None:
        super().__init__(mean_absolute_error, name, dtype)


class Accuracy(MeanMetricWrapper):
    """Keras's Accuracy class: how often y_pred equals y_true exactly.

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, name: str | None = "accuracy", dtype: DTypeLike | None = None) -> None:
        super().__init__(accuracy, name, dtype)


class _AutoAccuracy(MeanMetricWrapper):
    """Keras's "accuracy" string in compile: binary / sparse categorical / categorical accuracy,
    chosen from the shapes on the first update as Keras 3 does (binary when y_pred has a last axis
    of 1; sparse when y_true has fewer axes, or a last axis of 1; else categorical)."""

    def __init__(self, name="accuracy", dtype=None, loss=None):
        super().__init__(self._resolve, name, dtype)
        self._chosen = None

    def _resolve(self, y_true, y_pred):
        if self._chosen is None:
            y_true_a, y_pred_a = np.asarray(y_true), np.asarray(y_pred)
            if y_pred_a.shape[-1:] == (1,):
                self._chosen = binary_accuracy
            elif y_true_a.ndim < y_pred_a.ndim or y_true_a.shape[-1:] == (1,):
                self._chosen = sparse_categorical_accuracy
            else:
                self._chosen = categorical_accuracy
        return self._chosen(y_true, y_pred)

    def get_config(self):
        return {"name": self.name}


# ---------------------------------------------------------------------------------------------
# Confusion-matrix metrics (Keras 3's confusion_metrics.py and metrics_utils.py).

_TP, _FP, _TN, _FN = "tp", "fp", "tn", "fn"


def _div_no_nan(a, b):
    """a / b, 0 where b is 0 (ops.divide_no_nan)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b == 0, 0.0, a / np.where(b == 0, 1.0, b))


def _thresholds_list(thresholds, default):
    """Keras's parse_init_thresholds: a list of thresholds, each in [0, 1] (a number, or a list,
    tuple or 1-d array of numbers)."""
    if thresholds is None:
        return [default]
    if isinstance(thresholds, np.ndarray):
        thresholds = thresholds.tolist()
    values = list(thresholds) if isinstance(thresholds, (list, tuple)) else [thresholds]
    if not values:
        raise ValueError("thresholds must hold at least one value; received an empty list")
    bad = [t for t in values if t is None or isinstance(t, bool) or not isinstance(t, numbers.Real)
           or not 0 <= float(t) <= 1]
    if bad:
        raise ValueError(f"Threshold values must be in [0, 1]. Received: {bad}")
    return [float(t) for t in values]


def _evenly_distributed(thresholds):
    """Keras's is_evenly_distributed_thresholds: at least 3 thresholds, i / (n - 1) for i < n."""
    n = len(thresholds)
    if n < 3:
        return False
    return bool(np.allclose(thresholds, np.arange(n, dtype=np.float32) / (n - 1), atol=_EPSILON))


def _filter_top_k(x, k):
    """Keras's _filter_top_k: the predictions outside each row's top k become -1e10."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"top_k must be a positive integer; received top_k={k!r}")
    if k > x.shape[-1]:
        raise ValueError(f"top_k={k} is larger than the number of classes in y_pred (last axis of size "
                         f"{x.shape[-1]})")
    # the k largest per row; on ties the lower index (stable sort of the negated values)
    top = np.argsort(-x, axis=-1, kind="stable")[..., :k]
    mask = np.zeros(x.shape, dtype=bool)
    np.put_along_axis(mask, top, True, axis=-1)
    return np.where(mask, x, x.dtype.type(_NEG_INF))


def _count_above(p, v, thresholds):
    """For each threshold t: the sum of v over the predictions p > t (NaN predictions never are)."""
    keep = ~np.isnan(p)
    p, v = p[keep], v[keep]
    order = np.argsort(p, kind="stable")
    suffix = np.zeros(p.size + 1)
    suffix[:-1] = np.cumsum(v[order][::-1])[::-1]
    return suffix[np.searchsorted(p[order], thresholds, side="right")]


def _bucket_sums(p, v, n):
    """Keras's optimized path: bucket b of each prediction (p > threshold_i exactly when b >= i), then
    for each i the sum of v over the predictions with b >= i."""
    sums = np.bincount(p, weights=v, minlength=n)[:n]
    return np.cumsum(sums[::-1])[::-1]


def _update_confusion_matrix(variables, y_true, y_pred, thresholds, dtype, top_k=None, class_id=None,
                             sample_weight=None, multi_label=False, label_weights=None, evenly=False):
    """Keras's update_confusion_matrix_variables: add the (weighted) counts of true / false
    positives / negatives at each threshold to `variables` ({"tp": var, ...}); with multi_label the
    counts are kept per label (last axis), else over all the values."""
    dtype = np.dtype(dtype)
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.dtype.kind not in "fiub" or y_pred.dtype.kind not in "fiub":
        raise TypeError(f"y_true and y_pred must be numeric arrays; received dtypes {y_true.dtype} and {y_pred.dtype}")
    y_true = y_true.astype(dtype, copy=False)
    y_pred = y_pred.astype(dtype, copy=False)
    with_epsilon = evenly and (thresholds[0] < 0.0 or thresholds[-1] > 1.0)
    thresholds = np.asarray(thresholds, dtype=dtype)
    n = len(thresholds)

    y_true, y_pred = _same_rank(y_true, y_pred)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=dtype)[..., None]
        if sample_weight.ndim == y_true.ndim + 1:     # (squeeze_or_expand_to_same_rank, expand_rank_1=False)
            sample_weight = sample_weight[..., 0]
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim == 1:
            raise ValueError("When class_id is provided, y_pred must be a 2D array with shape (num_samples, "
                             f"num_classes), found shape: {y_pred.shape}")
        if isinstance(class_id, bool) or not isinstance(class_id, numbers.Integral) or \
                not -y_pred.shape[-1] <= class_id < y_pred.shape[-1]:
            raise ValueError(f"class_id={class_id!r} is not a class of y_pred (last axis of size {y_pred.shape[-1]})")
        y_true = y_true[..., class_id, None]
        y_pred = y_pred[..., class_id, None]
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape (one 0/1 label per prediction); received "
                         f"{y_true.shape} and {y_pred.shape}")

    weights = None
    try:
        if sample_weight is not None:
            weights = np.broadcast_to(sample_weight, y_pred.shape)
        if label_weights is not None and not multi_label:
            lw = np.broadcast_to(np.asarray(label_weights, dtype=dtype)[None], y_pred.shape)
            weights = lw if weights is None else weights * lw
    except ValueError:
        raise ValueError(f"sample_weight of shape {np.shape(sample_weight)} does not broadcast to y_pred's shape "
                         f"{y_pred.shape}") from None

    positive = y_true != 0
    if multi_label:
        if y_pred.ndim != 2:
            raise ValueError(f"`y_pred` must have rank 2 when `multi_label=True`. Found rank {y_pred.ndim}.")
        columns = range(y_pred.shape[1])
        cols = lambda a: [a[:, j] for j in columns]  # noqa: E731
    else:
        cols = lambda a: [a.reshape(-1)]  # noqa: E731
    w_cols = cols(np.ones(y_pred.shape, dtype=np.float64) if weights is None else weights.astype(np.float64))
    tps, fps, tots_t, tots_f = [], [], [], []
    for p, t, w in zip(cols(y_pred), cols(positive), w_cols):
        wt, wf = np.where(t, w, 0.0), np.where(t, 0.0, w)
        if evenly:
            # Keras's optimized path: clip to [0, 1], bucket = ceil(p * (n - 1)) - 1 (in the dtype)
            p = np.clip(p, 0, 1)
            with np.errstate(invalid="ignore"):
                b = np.ceil(p * p.dtype.type(n - 1)) - 1
                if with_epsilon:
                    b = np.maximum(b, 0)
                b = np.where(np.isnan(b), -1, b).astype(np.int64)
            ok = b >= 0
            tps.append(_bucket_sums(b[ok], wt[ok], n))
            fps.append(_bucket_sums(b[ok], wf[ok], n))
        else:
            tps.append(_count_above(p, wt, thresholds))
            fps.append(_count_above(p, wf, thresholds))
        tots_t.append(wt.sum())
        tots_f.append(wf.sum())
    stack = (lambda xs: np.stack(xs, axis=-1)) if multi_label else (lambda xs: xs[0])
    tp, fp = stack(tps), stack(fps)
    counts = {_TP: tp, _FP: fp, _FN: np.asarray(tots_t) - tp if multi_label else tots_t[0] - tp,
              _TN: np.asarray(tots_f) - fp if multi_label else tots_f[0] - fp}
    for key, variable in variables.items():
        variable.assign_add(counts[key])


class _ConfusionMatrixConditionCount(Metric):
    """How many (weighted) predictions fall in one cell of the confusion matrix, per threshold."""

    _condition: str | None = None

    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.thresholds = _thresholds_list(thresholds, 0.5)
        self._thresholds_distributed_evenly = _evenly_distributed(self.thresholds)
        self.accumulator = self.add_variable(shape=(len(self.thresholds),), initializer="zeros", dtype="float64",
                                             name="accumulator")

    def update_state(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> None:
        """Add a batch: y_true holds 0/1 labels (anything non-zero is positive), y_pred scores
        compared with each threshold (positive when y_pred > threshold); sample_weight (optional)
        weighs each sample (or each value).

        Args:
            y_true: Ground-truth targets.
            y_pred: Predictions, with the same batch size as `y_true`.
            sample_weight: Optional per-sample weights, broadcast against the per-sample values.
        """
        _update_confusion_matrix({self._condition: self.accumulator}, y_true, y_pred, self.thresholds, self.dtype,
                                 sample_weight=sample_weight, evenly=self._thresholds_distributed_evenly)

    def result(self) -> Any:
        return self.accumulator[0] if len(self.thresholds) == 1 else self.accumulator

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "thresholds": self.init_thresholds}


class TruePositives(_ConfusionMatrixConditionCount):
    """The (weighted) number of true positives: y_true non-zero and y_pred > threshold.

    Args:
        thresholds: a float in [0, 1] or a list of them (default 0.5); with a list the result has
            one count per threshold.
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    _condition = _TP


class FalsePositives(_ConfusionMatrixConditionCount):
    """The (weighted) number of false positives: y_true 0 and y_pred > threshold (see TruePositives).

    Args:
        thresholds: A float or a list of floats in `[0, 1]`; a prediction above a threshold counts as positive
            (default 0.5).
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    _condition = _FP


class TrueNegatives(_ConfusionMatrixConditionCount):
    """The (weighted) number of true negatives: y_true 0 and y_pred <= threshold (see TruePositives).

    Args:
        thresholds: A float or a list of floats in `[0, 1]`; a prediction above a threshold counts as positive
            (default 0.5).
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    _condition = _TN


class FalseNegatives(_ConfusionMatrixConditionCount):
    """The (weighted) number of false negatives: y_true non-zero and y_pred <= threshold (see
    TruePositives).

    Args:
        thresholds: A float or a list of floats in `[0, 1]`; a prediction above a threshold counts as positive
            (default 0.5).
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    _condition = _FN


class _PrecisionRecall(Metric):
    _other: str | None = None
    _other_name: str = ""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        self.init_thresholds = thresholds
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1):
            raise ValueError(f"top_k must be None or a positive integer; received top_k={top_k!r}")
        if class_id is not None and (isinstance(class_id, bool) or not isinstance(class_id, numbers.Integral)):
            raise ValueError(f"class_id must be None or an integer; received class_id={class_id!r}")
        self.top_k = top_k
        self.class_id = class_id
        self.thresholds = _thresholds_list(thresholds, 0.5 if top_k is None else _NEG_INF)
        self._thresholds_distributed_evenly = _evenly_distributed(self.thresholds)
        n = len(self.thresholds)
        self.true_positives = self.add_variable(shape=(n,), initializer="zeros", dtype="float64",
                                                name="true_positives")
        setattr(self, self._other_name, self.add_variable(shape=(n,), initializer="zeros", dtype="float64",
                                                          name=self._other_name))

    def update_state(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> None:
        """Add a batch: y_true holds 0/1 labels, y_pred scores (positive when y_pred > threshold;
        with top_k only a row's k highest scores can be). class_id restricts both to one class
        (column); sample_weight (optional) weighs each sample or value.

        Args:
            y_true: Ground-truth targets.
            y_pred: Predictions, with the same batch size as `y_true`.
            sample_weight: Optional per-sample weights, broadcast against the per-sample values.
        """
        _update_confusion_matrix({_TP: self.true_positives, self._other: getattr(self, self._other_name)},
                                 y_true, y_pred, self.thresholds, self.dtype, top_k=self.top_k,
                                 class_id=self.class_id, sample_weight=sample_weight,
                                 evenly=self._thresholds_distributed_evenly)

    def result(self) -> Any:
        tp = self.true_positives.value
        value = _div_no_nan(tp, tp + getattr(self, self._other_name).value)
        return value[0] if len(self.thresholds) == 1 else value

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "thresholds": self.init_thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


class Precision(_PrecisionRecall):
    """Precision, tp / (tp + fp), of binary predictions y_pred > threshold (Keras 3).

    Args:
        thresholds: a float in [0, 1] or a list of them; the result then has one precision per
            threshold. Default 0.5, or, with top_k, every score in the top k counts as positive.
        top_k: only each row's k highest scores can be positive.
        class_id: compute the precision of this class (column) only.
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    _other, _other_name = _FP, "false_positives"


class Recall(_PrecisionRecall):
    """Recall, tp / (tp + fn), of binary predictions y_pred > threshold (Keras 3); the arguments
    are Precision's.

    Args:
        thresholds: A float or a list of floats in `[0, 1]`; a prediction above a threshold counts as positive
            (default 0.5).
        top_k: Only each row's k highest scores can be positive.
        class_id: Compute the metric for this class (column) only.
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    _other, _other_name = _FN, "false_negatives"


class _SensitivitySpecificityBase(Metric):
    true_positives: Any   # state variables, created in __init__
    true_negatives: Any
    false_positives: Any
    false_negatives: Any

    def __init__(self, value, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, numbers.Integral) or num_thresholds <= 0:
            raise ValueError(f"Argument `num_thresholds` must be an integer > 0. "
                             f"Received: num_thresholds={num_thresholds}")
        self.value = value
        self.class_id = class_id
        if num_thresholds == 1:
            self.thresholds = [0.5]
            self._thresholds_distributed_evenly = False
        else:
            self.thresholds = [0.0] + [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)] + [1.0]
            self._thresholds_distributed_evenly = True
        shape = (len(self.thresholds),)
        for var in ("true_positives", "false_positives", "true_negatives", "false_negatives"):
            setattr(self, var, self.add_variable(shape=shape, initializer="zeros", dtype="float64", name=var))

    def update_state(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> None:
        """Add a batch of 0/1 labels and scores (optionally weighted).

        Args:
            y_true: Ground-truth targets.
            y_pred: Predictions, with the same batch size as `y_true`.
            sample_weight: Optional per-sample weights, broadcast against the per-sample values.
        """
        _update_confusion_matrix({_TP: self.true_positives, _TN: self.true_negatives, _FP: self.false_positives,
                                  _FN: self.false_negatives}, y_true, y_pred, self.thresholds, self.dtype,
                                 class_id=self.class_id, sample_weight=sample_weight,
                                 evenly=self._thresholds_distributed_evenly)

    def _rates(self):
        tp, fp, tn, fn = (v.value for v in (self.true_positives, self.false_positives, self.true_negatives,
                                             self.false_negatives))
        return {"sensitivity": _div_no_nan(tp, tp + fn), "specificity": _div_no_nan(tn, tn + fp),
                "precision": _div_no_nan(tp, tp + fp)}

    def _max_under_constraint(self, constrained, dependent):
        feasible = constrained >= self.value
        return float(np.max(np.where(feasible, dependent, 0.0), initial=0.0))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "class_id": self.class_id}


def _in_unit_interval(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= float(value) <= 1:
        raise ValueError(f"Argument `{name}` must be in the range [0, 1]. Received: {name}={value}")


class SensitivityAtSpecificity(_SensitivitySpecificityBase):
    """The best sensitivity (recall) among the thresholds whose specificity is >= `specificity`.

    Args:
        specificity: Target specificity.
        num_thresholds: Number of thresholds to discretize the curve with.
        class_id: Compute the metric for this class (column) only.
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, specificity: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype: DTypeLike | None = None) -> None:
        _in_unit_interval(specificity, "specificity")
        self.specificity, self.num_thresholds = specificity, num_thresholds
        super().__init__(specificity, num_thresholds=num_thresholds, class_id=class_id, name=name, dtype=dtype)

    def result(self) -> Any:
        r = self._rates()
        return self._max_under_constraint(r["specificity"], r["sensitivity"])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_thresholds": self.num_thresholds, "specificity": self.specificity}


class SpecificityAtSensitivity(_SensitivitySpecificityBase):
    """The best specificity among the thresholds whose sensitivity is >= `sensitivity`.

    Args:
        sensitivity: Target sensitivity.
        num_thresholds: Number of thresholds to discretize the curve with.
        class_id: Compute the metric for this class (column) only.
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, sensitivity: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype: DTypeLike | None = None) -> None:
        _in_unit_interval(sensitivity, "sensitivity")
        self.sensitivity, self.num_thresholds = sensitivity, num_thresholds
        super().__init__(sensitivity, num_thresholds=num_thresholds, class_id=class_id, name=name, dtype=dtype)

    def result(self) -> Any:
        r = self._rates()
        return self._max_under_constraint(r["sensitivity"], r["specificity"])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_thresholds": self.num_thresholds, "sensitivity": self.sensitivity}


class PrecisionAtRecall(_SensitivitySpecificityBase):
    """The best precision among the thresholds whose recall is >= `recall`.

    Args:
        recall: Target recall.
        num_thresholds: Number of thresholds to discretize the curve with.
        class_id: Compute the metric for this class (column) only.
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, recall: float, num_thresholds: int = 200, class_id: int | None = None, name: str | None = None,
                 dtype: DTypeLike | None = None) -> None:
        _in_unit_interval(recall, "recall")
        self.recall, self.num_thresholds = recall, num_thresholds
        super().__init__(recall, num_thresholds=num_thresholds, class_id=class_id, name=name, dtype=dtype)

    def result(self) -> Any:
        r = self._rates()
        return self._max_under_constraint(r["sensitivity"], r["precision"])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_thresholds": self.num_thresholds, "recall": self.recall}


class RecallAtPrecision(_SensitivitySpecificityBase):
    """The best recall among the thresholds whose precision is >= `precision`.

    Args:
        precision: Target precision.
        num_thresholds: Number of thresholds to discretize the curve with.
        class_id: Compute the metric for this class (column) only.
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, precision: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype: DTypeLike | None = None) -> None:
        _in_unit_interval(precision, "precision")
        self.precision, self.num_thresholds = precision, num_thresholds
        super().__init__(precision, num_thresholds=num_thresholds, class_id=class_id, name=name, dtype=dtype)

    def result(self) -> Any:
        r = self._rates()
        return self._max_under_constraint(r["precision"], r["sensitivity"])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_thresholds": self.num_thresholds, "precision": self.precision}


_AUC_CURVES = {"roc": "ROC", "ROC": "ROC", "pr": "PR", "PR": "PR", "prgain": "PRGAIN", "PRGAIN": "PRGAIN"}
_AUC_SUMMATIONS = {"interpolation": "interpolation", "Interpolation": "interpolation", "majoring": "majoring",
                   "Majoring": "majoring", "minoring": "minoring", "Minoring": "minoring"}


class AUC(Metric):
    """Area under the ROC or the precision-recall curve, by a Riemann sum over `num_thresholds`
    thresholds (Keras 3's AUC, same arguments and results).

    Args:
        num_thresholds: how many thresholds discretize the curve (> 1; default 200), evenly
            spaced in [0, 1] (plus one just below 0 and one just above 1).
        curve: "ROC" (default), "PR" or "PRGAIN" (Keras also takes lower case).
        summation_method: "interpolation" (default; for PR, Davis & Goadrich's interpolation),
            "minoring" (left Riemann sum: underestimates) or "majoring" (overestimates).
        thresholds: explicit thresholds in [0, 1] (num_thresholds is then their number + 2).
        multi_label: y_true / y_pred are (batch, labels): one AUC per label, averaged (weighted by
            label_weights when given). Else every value is one binary prediction.
        num_labels: with multi_label, the number of labels (else taken from the first batch).
        label_weights: per-label weights: for multi_label the weights of the label AUCs' average,
            else weights of the labels' values in the counts.
        from_logits: y_pred are logits (a sigmoid is applied first).
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    true_positives: Any   # state variables, created in __init__
    true_negatives: Any
    false_positives: Any
    false_negatives: Any

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC", summation_method: str = "interpolation",
                 name: str | None = None, dtype: DTypeLike | None = None,
                 thresholds: float | Sequence[float] | None = None, multi_label: bool = False,
                 num_labels: int | None = None, label_weights: ArrayLike | None = None,
                 from_logits: bool = False) -> None:
        self._direction = "up"
        if curve not in _AUC_CURVES:
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected values are ["PR", "ROC", "PRGAIN"]')
        if summation_method not in _AUC_SUMMATIONS:
            raise ValueError(f'Invalid AUC summation method value: "{summation_method}". Expected values are '
                             '["interpolation", "majoring", "minoring"]')
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            thresholds = sorted(_thresholds_list(thresholds, 0.5))
            self.num_thresholds = len(thresholds) + 2
            self._thresholds_distributed_evenly = _evenly_distributed([0.0] + thresholds + [1.0])
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, numbers.Integral) \
                    or num_thresholds <= 1:
                raise ValueError(f"Argument `num_thresholds` must be an integer > 1. "
                                 f"Received: num_thresholds={num_thresholds}")
            self.num_thresholds = int(num_thresholds)
            thresholds = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._thresholds_distributed_evenly = True
        self._thresholds = np.array([0.0 - _EPSILON] + thresholds + [1.0 + _EPSILON])
        self.curve = _AUC_CURVES[curve]
        self.summation_method = _AUC_SUMMATIONS[summation_method]
        super().__init__(name=name, dtype=dtype)
        self.multi_label = bool(multi_label)
        self.num_labels = num_labels
        if label_weights is not None:
            label_weights = np.array(label_weights, dtype=self.dtype)
            if label_weights.ndim != 1:
                raise ValueError(f"label_weights must be a 1-d list of per-label weights; received shape "
                                 f"{label_weights.shape}")
            if np.any(label_weights < 0):
                raise ValueError("All values of `label_weights` must be non-negative.")
        self.label_weights = label_weights
        self._from_logits = bool(from_logits)
        self._built = False
        if self.multi_label:
            if num_labels:
                self._build((None, num_labels))
        else:
            if num_labels:
                raise ValueError("`num_labels` is needed only when `multi_label` is True.")
            self._build(None)

    @property
    def thresholds(self) -> list[float]:
        """The thresholds, the two end points (just below 0 and just above 1) included."""
        return list(self._thresholds)

    def _build(self, shape):
        if self.multi_label:
            if len(shape) != 2:
                raise ValueError(f"`y_pred` must have rank 2 when `multi_label=True`. Found rank {len(shape)}. "
                                 f"Full shape received for `y_pred`: {tuple(shape)}")
            self._num_labels = shape[1]
            variable_shape: tuple[int, ...] = (self.num_thresholds, self._num_labels)
        else:
            variable_shape = (self.num_thresholds,)
        self._build_input_shape = shape
        for var in ("true_positives", "false_positives", "true_negatives", "false_negatives"):
            setattr(self, var, self.add_variable(shape=variable_shape, initializer="zeros", dtype="float64", name=var))
        self._built = True

    def update_state(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> None:
        """Add a batch of 0/1 labels and scores in [0, 1] (logits with from_logits), optionally
        weighted per sample or per value.

        Args:
            y_true: Ground-truth targets.
            y_pred: Predictions, with the same batch size as `y_true`.
            sample_weight: Optional per-sample weights, broadcast against the per-sample values.
        """
        y_pred = np.asarray(y_pred)
        if not self._built:
            self._build(y_pred.shape)
        if self.multi_label and (y_pred.ndim != 2 or y_pred.shape[1] != self._num_labels):
            raise ValueError(f"{self.name}: with multi_label, y_pred must have shape (batch, {self._num_labels}); "
                             f"received {y_pred.shape}")
        if self._from_logits:
            e = np.exp(-np.abs(y_pred.astype(np.float64)))   # a stable sigmoid
            y_pred = np.where(y_pred >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        _update_confusion_matrix({_TP: self.true_positives, _TN: self.true_negatives, _FP: self.false_positives,
                                  _FN: self.false_negatives}, y_true, y_pred, self._thresholds, self.dtype,
                                 sample_weight=sample_weight, multi_label=self.multi_label,
                                 label_weights=None if self.multi_label else self.label_weights,
                                 evenly=self._thresholds_distributed_evenly)

    def _average(self, per_label):
        if self.label_weights is None:
            return float(np.mean(per_label))
        return float(_div_no_nan(np.sum(per_label * self.label_weights), np.sum(self.label_weights)))

    def interpolate_pr_auc(self) -> Any:
        """The PR AUC by Davis & Goadrich's interpolation between the thresholds."""
        n = self.num_thresholds
        tp, fp, fn = self.true_positives.value, self.false_positives.value, self.false_negatives.value
        dtp = tp[:n - 1] - tp[1:]
        p = tp + fp
        dp = p[:n - 1] - p[1:]
        prec_slope = _div_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - prec_slope * p[1:]
        safe_p_ratio = np.where((p[:n - 1] > 0) & (p[1:] > 0), _div_no_nan(p[:n - 1], np.maximum(p[1:], 0)), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            increment = _div_no_nan(prec_slope * (dtp + intercept * np.log(safe_p_ratio)),
                                    np.maximum(tp[1:] + fn[1:], 0))
        if self.multi_label:
            return self._average(np.sum(increment, axis=0))
        return float(np.sum(increment))

    def result(self) -> Any:
        if not self._built:
            return 0.0
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self.interpolate_pr_auc()
        tp, fp, tn, fn = (v.value for v in (self.true_positives, self.false_positives, self.true_negatives,
                                             self.false_negatives))
        recall = _div_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _div_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, _div_no_nan(tp, tp + fp)
        else:  # PRGAIN
            scaling = _div_no_nan(tp + fn, tn + fp)
            recall_gain = 1.0 - scaling * _div_no_nan(fn, tp)
            precision_gain = 1.0 - scaling * _div_no_nan(fp, tp)
            recall_gain = np.maximum(np.where(tp == 0, 0.0, recall_gain), 0.0)
            precision_gain = np.where(tp == 0, 1.0, precision_gain)
            x, y = recall_gain, precision_gain
        n = self.num_thresholds
        if self.summation_method == "interpolation":
            heights = (y[:n - 1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:n - 1], y[1:])
        else:
            heights = np.maximum(y[:n - 1], y[1:])
        riemann = (x[:n - 1] - x[1:]) * heights
        if self.multi_label:
            return self._average(np.sum(riemann, axis=0))
        return float(np.sum(riemann))

    def reset_state(self) -> None:
        if self._built:
            for v in (self.true_positives, self.false_positives, self.true_negatives, self.false_negatives):
                v.assign(np.zeros(v.shape))

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), "num_thresholds": self.num_thresholds, "curve": self.curve,
                  "summation_method": self.summation_method, "multi_label": self.multi_label,
                  "num_labels": self.num_labels,
                  "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
                  "from_logits": self._from_logits}
        if self._init_from_thresholds:
            config["thresholds"] = [float(t) for t in self._thresholds[1:-1]]
        return config


# ---------------------------------------------------------------------------------------------
# F-scores (Keras 3's f_score_metrics.py).

class FBetaScore(Metric):
    """F-beta score, (1 + beta^2) * precision * recall / (beta^2 * precision + recall), of
    (batch, classes) multi-label or one-hot predictions (Keras 3).

    Args:
        average: None (one score per class), "micro" (counts over all classes), "macro" (mean
            of the class scores) or "weighted" (class scores weighted by their true counts).
        beta: a positive Python float (default 1.0).
        threshold: y_pred > threshold is positive (a float in (0, 1]); by default the highest
            score(s) of each row are positive (unless it is 0).
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    true_positives: Any   # state variables, created in __init__
    false_positives: Any
    false_negatives: Any
    intermediate_weights: Any

    def __init__(self, average: str | None = None, beta: float = 1.0, threshold: float | None = None,
                 name: str | None = "fbeta_score", dtype: DTypeLike | None = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError("Invalid `average` argument value. Expected one of: {None, 'micro', 'macro', "
                             f"'weighted'}}. Received: average={average}")
        if not isinstance(beta, float):
            raise ValueError(f"Invalid `beta` argument value. It should be a Python float. Received: beta={beta} of "
                             f"type '{type(beta)}'")
        if beta <= 0.0:
            raise ValueError(f"Invalid `beta` argument value. It should be > 0. Received: beta={beta}")
        if threshold is not None:
            if not isinstance(threshold, float):
                raise ValueError(f"Invalid `threshold` argument value. It should be a Python float. Received: "
                                 f"threshold={threshold} of type '{type(threshold)}'")
            if threshold > 1.0 or threshold <= 0.0:
                raise ValueError(f"Invalid `threshold` argument value. It should verify 0 < threshold <= 1. "
                                 f"Received: threshold={threshold}")
        self.average = average
        self.beta = beta
        self.threshold = threshold
        self.axis = None if average == "micro" else 0
        self._built = False

    def _build(self, y_true_shape, y_pred_shape):
        if len(y_pred_shape) != 2 or len(y_true_shape) != 2:
            raise ValueError(f"{type(self).__name__} expects 2D inputs with shape (batch_size, output_dim). Received "
                             f"input shapes: y_pred.shape={y_pred_shape} and y_true.shape={y_true_shape}.")
        shape = (y_pred_shape[-1],) if self.average != "micro" else ()
        for var in ("true_positives", "false_positives", "false_negatives", "intermediate_weights"):
            setattr(self, var, self.add_variable(shape=shape, initializer="zeros", dtype="float64", name=var))
        self._num_classes = y_pred_shape[-1]
        self._built = True

    def update_state(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> None:
        """Add a batch: y_true (batch, classes) 0/1 labels, y_pred (batch, classes) scores;
        sample_weight (optional) one weight per sample.

        Args:
            y_true: Ground-truth targets.
            y_pred: Predictions, with the same batch size as `y_true`.
            sample_weight: Optional per-sample weights, broadcast against the per-sample values.
        """
        y_true = np.asarray(y_true).astype(self.dtype, copy=False)
        y_pred = np.asarray(y_pred).astype(self.dtype, copy=False)
        if not self._built:
            self._build(y_true.shape, y_pred.shape)
        if y_pred.ndim != 2 or y_true.shape != y_pred.shape or y_pred.shape[1] != self._num_classes:
            raise ValueError(f"{type(self).__name__} expects y_true and y_pred of shape (batch_size, "
                             f"{self._num_classes}); received y_true.shape={y_true.shape} and "
                             f"y_pred.shape={y_pred.shape}")
        if self.threshold is None:
            row_max = np.max(y_pred, axis=-1, keepdims=True)
            y_pred = (y_pred >= row_max) & (np.abs(y_pred) > 1e-9)
        else:
            y_pred = y_pred > self.threshold
        y_pred = y_pred.astype(np.float64)
        y_true = y_true.astype(np.float64)
        w = None
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=self.dtype).astype(np.float64)
            if w.size != y_true.shape[0] or w.ndim > 2:
                raise ValueError(f"{self.name}: sample_weight must hold one weight per sample (shape "
                                 f"({y_true.shape[0]},)); received shape {w.shape}")
            w = w.reshape(-1, 1)

        def weighted_sum(values):
            if w is not None:
                values = values * w
            return np.sum(values, axis=self.axis)

        self.true_positives.assign_add(weighted_sum(y_pred * y_true))
        self.false_positives.assign_add(weighted_sum(y_pred * (1 - y_true)))
        self.false_negatives.assign_add(weighted_sum((1 - y_pred) * y_true))
        self.intermediate_weights.assign_add(weighted_sum(y_true))

    def result(self) -> Any:
        if not self._built:
            return 0.0
        tp, fp, fn = self.true_positives.value, self.false_positives.value, self.false_negatives.value
        precision = tp / (tp + fp + _EPSILON)
        recall = tp / (tp + fn + _EPSILON)
        beta2 = self.beta ** 2
        score = precision * recall / (beta2 * precision + recall + _EPSILON) * (1 + beta2)
        if self.average == "weighted":
            iw = self.intermediate_weights.value
            return float(np.sum(score * iw / (np.sum(iw) + _EPSILON)))
        if self.average is not None:
            return float(np.mean(score))
        return score

    def reset_state(self) -> None:
        for v in self.variables:
            v.assign(np.zeros(v.shape))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "average": self.average, "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    """F1 score, 2 * precision * recall / (precision + recall): FBetaScore with beta=1 (Keras 3).

    Args:
        average: How per-class values are combined: `None` (one per class), `"micro"`, `"macro"` or
            `"weighted"`.
        threshold: Predictions above this value count as class 1.
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, average: str | None = None, threshold: float | None = None, name: str | None = "f1_score",
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["beta"]
        return config


# ---------------------------------------------------------------------------------------------
# IoU (Keras 3's iou_metrics.py).

class _IoUBase(Metric):
    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True,
                 sparse_y_pred=True, axis=-1):
        # Keras defaults the dtype to "int" (int32): labels, predictions and weights are cast to it.
        super().__init__(name=name, dtype=dtype or "int")
        self._direction = "up"
        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer; received num_classes={num_classes!r}")
        if ignore_class is not None and (isinstance(ignore_class, bool) or not isinstance(ignore_class,
                                                                                           numbers.Integral)):
            raise ValueError(f"ignore_class must be None or an integer; received ignore_class={ignore_class!r}")
        self.num_classes = int(num_classes)
        self.ignore_class = ignore_class
        self.sparse_y_true = sparse_y_true
        self.sparse_y_pred = sparse_y_pred
        self.axis = axis
        accumulator = "int64" if np.dtype(self.dtype).kind in "iub" else "float64"
        self.total_cm = self.add_variable(shape=(self.num_classes, self.num_classes), initializer="zeros",
                                          dtype=accumulator, name="total_confusion_matrix")

    def update_state(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> None:
        """Add a batch: class ids (or, with sparse_y_true / sparse_y_pred False, scores whose argmax
        along `axis` is the class), flattened; sample_weight (optional) per value, cast to the
        metric's dtype (an integer one by default, as in Keras: pass dtype="float32" for fractional
        weights). Ids outside [0, num_classes) and ignore_class are left out.

        Args:
            y_true: Ground-truth targets.
            y_pred: Predictions, with the same batch size as `y_true`.
            sample_weight: Optional per-sample weights, broadcast against the per-sample values.
        """
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        if not self.sparse_y_true:
            y_true = np.argmax(y_true, axis=self.axis)
        if not self.sparse_y_pred:
            y_pred = np.argmax(y_pred, axis=self.axis)
        dtype = np.dtype(self.dtype)
        with np.errstate(invalid="ignore"):
            y_true = y_true.astype(dtype).reshape(-1)
            y_pred = y_pred.astype(dtype).reshape(-1)
        if y_true.shape != y_pred.shape:
            raise ValueError(f"{self.name}: y_true and y_pred must hold as many values; received {y_true.size} "
                             f"and {y_pred.size}")
        if sample_weight is None:
            w = np.ones(y_true.shape, dtype=dtype)
        else:
            w = np.asarray(sample_weight)
            if w.dtype.kind == "f" and dtype.kind in "iu":
                warnings.warn("You are passing weight as `float`, but dtype is `int`. This may result in an incorrect "
                              "weight due to type casting Consider using integer weights.", stacklevel=2)
            w = w.astype(dtype).reshape(-1) if w.ndim > 1 else w.astype(dtype)
            try:
                w = np.broadcast_to(w, y_true.shape)
            except ValueError:
                raise ValueError(f"{self.name}: sample_weight of shape {np.shape(sample_weight)} does not match the "
                                 f"{y_true.size} values") from None
        keep = (y_true >= 0) & (y_true < self.num_classes) & (y_pred >= 0) & (y_pred < self.num_classes)
        if self.ignore_class is not None:
            keep &= y_true != self.ignore_class
        t, p = y_true[keep].astype(np.int64), y_pred[keep].astype(np.int64)
        cm = np.bincount(t * self.num_classes + p, weights=w[keep].astype(np.float64),
                         minlength=self.num_classes ** 2).reshape(self.num_classes, self.num_classes)
        self.total_cm.assign_add(cm.astype(self.total_cm.dtype))

    def reset_state(self) -> None:
        self.total_cm.assign(np.zeros(self.total_cm.shape))


class IoU(_IoUBase):
    """Intersection over union, tp / (tp + fp + fn), averaged over `target_class_ids` (Keras 3).

    Args:
        num_classes: the number of classes (the confusion matrix is num_classes x num_classes).
        target_class_ids: the classes whose IoU is averaged (classes absent from both labels and
            predictions are left out of the average).
        ignore_class: a label value left out (e.g. a void class), or None.
        sparse_y_true: whether labels are class ids (True) or scores whose argmax along `axis` is
            the class.
        sparse_y_pred: whether predictions are class ids (True) or scores whose argmax along `axis`
            is the class.
        axis: the class axis of non-sparse inputs (default -1).
        name: Name of the object (a default is generated when `None`).
        dtype: dtype of the state; defaults to "int" as in Keras, so sample weights are truncated
            to integers (with a warning) unless a float dtype is given.
    """

    def __init__(self, num_classes: int, target_class_ids: Sequence[int], name: str | None = None,
                 dtype: DTypeLike | None = None, ignore_class: int | None = None, sparse_y_true: bool = True,
                 sparse_y_pred: bool = True, axis: int = -1) -> None:
        super().__init__(name=name, num_classes=num_classes, ignore_class=ignore_class, sparse_y_true=sparse_y_true,
                         sparse_y_pred=sparse_y_pred, axis=axis, dtype=dtype)
        target_class_ids = list(target_class_ids)
        if not target_class_ids:
            raise ValueError("target_class_ids must name at least one class")
        if max(target_class_ids) >= num_classes:
            raise ValueError(f"Target class id {max(target_class_ids)} is out of range, which is [0, {num_classes}).")
        if min(target_class_ids) < 0:
            raise ValueError(f"Target class id {min(target_class_ids)} is out of range, which is [0, {num_classes}).")
        self.target_class_ids = target_class_ids

    def result(self) -> Any:
        cm = self.total_cm.value.astype(np.float64)
        tp = np.diag(cm)
        denominator = cm.sum(axis=0) + cm.sum(axis=1) - tp
        ids = np.asarray(self.target_class_ids, dtype=np.int64)
        tp, denominator = tp[ids], denominator[ids]
        valid = denominator > 1e-9
        iou = np.where(valid, tp / (denominator + _EPSILON), 0.0)
        return float(np.sum(iou) / (np.sum(valid) + _EPSILON))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes, "target_class_ids": self.target_class_ids,
                "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class BinaryIoU(IoU):
    """IoU of binary predictions y_pred >= threshold, over the classes 0 and 1 (Keras 3).

    Args:
        target_class_ids: Class indices over which the mean IoU is computed.
        threshold: Predictions above this value count as class 1.
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, target_class_ids: Sequence[int] = (0, 1), threshold: float = 0.5, name: str | None = None,
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(num_classes=2, target_class_ids=target_class_ids, name=name, dtype=dtype)
        self.threshold = threshold

    def update_state(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> None:
        """Add a batch of 0/1 labels and scores (class 1 where y_pred >= threshold).

        Args:
            y_true: Ground-truth targets.
            y_pred: Predictions, with the same batch size as `y_true`.
            sample_weight: Optional per-sample weights, broadcast against the per-sample values.
        """
        y_pred = (np.asarray(y_pred).astype(np.float32) >= self.threshold).astype(self.dtype)
        return super().update_state(y_true, y_pred, sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {"target_class_ids": self.target_class_ids, "threshold": self.threshold, "name": self.name,
                "dtype": self.dtype}


class MeanIoU(IoU):
    """Mean intersection over union over all `num_classes` classes (Keras 3's MeanIoU): per class
    tp / (tp + fp + fn) from the accumulated confusion matrix, averaged over the classes present.
    The arguments are IoU's (every class is a target); with sparse_y_pred=False, y_pred holds
    scores (e.g. a softmax output) whose argmax is the predicted class.

    Args:
        num_classes: Number of classes.
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
        ignore_class: A label value left out of the metric (e.g. a void class), or `None`.
        sparse_y_true: Whether `y_true` holds class indices instead of one-hot rows.
        sparse_y_pred: Whether `y_pred` holds class indices instead of scores.
        axis: The class axis of the inputs.
    """

    def __init__(self, num_classes: int, name: str | None = None, dtype: DTypeLike | None = None,
                 ignore_class: int | None = None, sparse_y_true: bool = True, sparse_y_pred: bool = True,
                 axis: int = -1) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer; received num_classes={num_classes!r}")
        super().__init__(name=name, num_classes=num_classes, target_class_ids=list(range(num_classes)), axis=axis,
                         dtype=dtype, ignore_class=ignore_class, sparse_y_true=sparse_y_true,
                         sparse_y_pred=sparse_y_pred)

    def get_config(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype,
                "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class OneHotIoU(IoU):
    """IoU with one-hot labels (and, unless sparse_y_pred, score predictions).

    Args:
        num_classes: Number of classes.
        target_class_ids: Class indices over which the mean IoU is computed.
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
        ignore_class: A label value left out of the metric (e.g. a void class), or `None`.
        sparse_y_pred: Whether `y_pred` holds class indices instead of scores.
        axis: The class axis of the inputs.
    """

    def __init__(self, num_classes: int, target_class_ids: Sequence[int], name: str | None = None,
                 dtype: DTypeLike | None = None, ignore_class: int | None = None, sparse_y_pred: bool = False,
                 axis: int = -1) -> None:
        super().__init__(num_classes=num_classes, target_class_ids=target_class_ids, name=name, dtype=dtype,
                         ignore_class=ignore_class, sparse_y_true=False, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "target_class_ids": self.target_class_ids, "name": self.name,
                "dtype": self.dtype, "ignore_class": self.ignore_class, "sparse_y_pred": self.sparse_y_pred,
                "axis": self.axis}


class OneHotMeanIoU(MeanIoU):
    """MeanIoU with one-hot labels (and, unless sparse_y_pred, score predictions).

    Args:
        num_classes: Number of classes.
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
        ignore_class: A label value left out of the metric (e.g. a void class), or `None`.
        sparse_y_pred: Whether `y_pred` holds class indices instead of scores.
        axis: The class axis of the inputs.
    """

    def __init__(self, num_classes: int, name: str | None = None, dtype: DTypeLike | None = None,
                 ignore_class: int | None = None, sparse_y_pred: bool = False, axis: int = -1) -> None:
        super().__init__(num_classes=num_classes, axis=axis, name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=False, sparse_y_pred=sparse_y_pred)

    def get_config(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype,
                "ignore_class": self.ignore_class, "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


# ---------------------------------------------------------------------------------------------
# R2 (Keras 3's regression_metrics.R2Score).

class R2Score(Metric):
    """Coefficient of determination, 1 - sum of squared residuals / total sum of squares, per
    output column of (batch, outputs) targets (Keras 3).

    Args:
        class_aggregation: "uniform_average" (default: the mean of the column scores),
            "variance_weighted_average" (weighted by each column's variance) or None (one score
            per column).
        num_regressors: for the adjusted R2, the number of independent variables (default 0:
            plain R2). As in Keras, the sample count in the adjustment is the number of values
            seen (batch * outputs).
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    _built: bool
    num_samples: Any
    class_aggregation: str | None
    num_regressors: int

    def __init__(self, class_aggregation: str | None = "uniform_average", num_regressors: int = 0,
                 name: str | None = "r2_score", dtype: DTypeLike | None = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        valid = (None, "uniform_average", "variance_weighted_average")
        if class_aggregation not in valid:
            raise ValueError(f"Invalid value for argument `class_aggregation`. Expected one of {valid}. "
                             f"Received: class_aggregation={class_aggregation}")
        if isinstance(num_regressors, bool) or not isinstance(num_regressors, numbers.Integral) or num_regressors < 0:
            raise ValueError(f"Invalid value for argument `num_regressors`. Expected a value >= 0. "
                             f"Received: num_regressors={num_regressors}")
        self.class_aggregation = class_aggregation
        self.num_regressors = int(num_regressors)
        self.num_samples = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="num_samples")
        self._built = False

    def _build(self, y_true_shape, y_pred_shape):
        if len(y_pred_shape) != 2 or len(y_true_shape) != 2:
            raise ValueError(f"R2Score expects 2D inputs with shape (batch_size, output_dim). Received input shapes: "
                             f"y_pred.shape={y_pred_shape} and y_true.shape={y_true_shape}.")
        n = y_pred_shape[-1]
        self.squared_sum = self.add_variable(shape=(n,), initializer="zeros", dtype="float64", name="squared_sum")
        self.sum = self.add_variable(shape=(n,), initializer="zeros", dtype="float64", name="sum")
        self.total_mse = self.add_variable(shape=(n,), initializer="zeros", dtype="float64", name="residual")
        self.count = self.add_variable(shape=(n,), initializer="zeros", dtype="float64", name="count")
        self._built = True

    def update_state(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> None:
        """Add a batch of (batch, outputs) targets and predictions; sample_weight (optional) per
        sample, or per value.

        Args:
            y_true: Ground-truth targets.
            y_pred: Predictions, with the same batch size as `y_true`.
            sample_weight: Optional per-sample weights, broadcast against the per-sample values.
        """
        y_true = np.asarray(y_true).astype(self.dtype, copy=False)
        y_pred = np.asarray(y_pred).astype(self.dtype, copy=False)
        y_true, y_pred = _same_rank(y_true, y_pred)
        if not self._built:
            self._build(y_true.shape, y_pred.shape)
        if y_true.shape != y_pred.shape or y_true.ndim != 2 or y_true.shape[1] != self.sum.shape[0]:
            raise ValueError(f"R2Score expects y_true and y_pred of shape (batch_size, {self.sum.shape[0]}); "
                             f"received y_true.shape={y_true.shape} and y_pred.shape={y_pred.shape}")
        w = np.asarray(1.0 if sample_weight is None else sample_weight, dtype=self.dtype)
        if w.ndim == 1:
            w = w[:, None]
        try:
            w = np.broadcast_to(w, y_true.shape).astype(np.float64)
        except ValueError:
            raise ValueError(f"{self.name}: sample_weight of shape {np.asarray(sample_weight).shape} does not "
                             f"broadcast to the targets' shape {y_true.shape}") from None
        y_true, y_pred = y_true.astype(np.float64), y_pred.astype(np.float64)
        weighted = y_true * w
        self.sum.assign_add(weighted.sum(axis=0))
        self.squared_sum.assign_add((y_true * weighted).sum(axis=0))
        self.total_mse.assign_add(((y_true - y_pred) ** 2 * w).sum(axis=0))
        self.count.assign_add(w.sum(axis=0))
        self.num_samples.assign_add(y_true.size)

    def result(self) -> Any:
        if not self._built:
            return 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = self.sum.value / self.count.value
            total = self.squared_sum.value - self.sum.value * mean
            raw = 1 - self.total_mse.value / total
            raw = np.where(np.isinf(raw), 0.0, raw)
            score: Any
            if self.class_aggregation == "uniform_average":
                score = np.mean(raw)
            elif self.class_aggregation == "variance_weighted_average":
                score = np.sum(total * raw) / np.sum(total)
            else:
                score = raw
        if self.num_regressors != 0:
            n, p = float(self.num_samples.value), float(self.num_regressors)
            if p > n - 1:
                warnings.warn("More independent predictors than datapoints in adjusted R2 score. Falling back to "
                              "standard R2 score.", stacklevel=2)
            elif p == n - 1:
                warnings.warn("Division by zero in Adjusted R2 score. Falling back to standard R2 score.",
                              stacklevel=2)
            else:
                score = 1.0 - (1.0 - score) * (n - 1.0) / (n - p - 1.0)
        return score

    def reset_state(self) -> None:
        for v in self.variables:
            v.assign(np.zeros(v.shape))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}


# ---------------------------------------------------------------------------------------------
# Keras 3's regression, hinge, probabilistic, correlation and Sum metrics. The per-sample values
# are those of the matching cynet.losses function (Keras's metrics call its loss functions too).

class RootMeanSquaredError(Mean):
    """Square root of the mean squared error over all the values seen, `sqrt(mean((y_pred - y_true) **
    2))` (weighted per sample).

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, name: str | None = "root_mean_squared_error", dtype: DTypeLike | None = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> None:
        """Add the squared errors of a batch.

        Args:
            y_true: Ground-truth targets.
            y_pred: Predictions, with the same batch size as `y_true`.
            sample_weight: Optional per-sample weights, broadcast against the per-sample values.
        """
        y_true, y_pred = _same_rank(np.asarray(y_true, dtype=self.dtype), np.asarray(y_pred, dtype=self.dtype))
        self._accumulate(np.square(y_pred - y_true), sample_weight)

    def result(self) -> Any:
        return float(np.sqrt(super().result()))


class MeanAbsolutePercentageError(MeanMetricWrapper):
    """Mean absolute percentage error, `100 * mean(|y_true - y_pred| / maximum(|y_true|, 1e-7))`.

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, name: str | None = "mean_absolute_percentage_error", dtype: DTypeLike | None = None) -> None:
        super().__init__(mean_absolute_percentage_error, name, dtype)


class MeanSquaredLogarithmicError(MeanMetricWrapper):
    """Mean squared logarithmic error, `mean((log(1 + y_pred) - log(1 + y_true)) ** 2)` (both bounded below
    by 1e-7).

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, name: str | None = "mean_squared_logarithmic_error", dtype: DTypeLike | None = None) -> None:
        super().__init__(mean_squared_logarithmic_error, name, dtype)


def _cosine_similarity(y_true, y_pred, axis=-1):
    """Per-sample cosine similarity along `axis` (the negative of the loss `cynet.losses.cosine_similarity`)."""
    from .losses import cosine_similarity

    return -cosine_similarity(y_true, y_pred, axis=axis)


class CosineSimilarity(MeanMetricWrapper):
    """Mean cosine similarity between targets and predictions along `axis` (1: parallel, -1: opposite).

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
        axis: The axis along which the similarity is computed.
    """

    def __init__(self, name: str | None = "cosine_similarity", dtype: DTypeLike | None = None,
                 axis: int = -1) -> None:
        super().__init__(_cosine_similarity, name, dtype, axis=axis)


class LogCoshError(MeanMetricWrapper):
    """Mean logarithm of the hyperbolic cosine of the prediction error.

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, name: str | None = "logcosh", dtype: DTypeLike | None = None) -> None:
        super().__init__(log_cosh, name, dtype)


class Poisson(MeanMetricWrapper):
    """Mean Poisson loss, `mean(y_pred - y_true * log(y_pred + 1e-7))`.

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, name: str | None = "poisson", dtype: DTypeLike | None = None) -> None:
        super().__init__(poisson, name, dtype)


class KLDivergence(MeanMetricWrapper):
    """Mean Kullback-Leibler divergence `sum(y_true * log(y_true / y_pred))` (both clipped to [1e-7, 1]).

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, name: str | None = "kl_divergence", dtype: DTypeLike | None = None) -> None:
        super().__init__(kl_divergence, name, dtype)


class Hinge(MeanMetricWrapper):
    """Mean hinge loss, `mean(maximum(1 - y_true * y_pred, 0))`, for -1/1 (or 0/1) labels.

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, name: str | None = "hinge", dtype: DTypeLike | None = None) -> None:
        super().__init__(hinge, name, dtype)


class SquaredHinge(MeanMetricWrapper):
    """Mean squared hinge loss, `mean(maximum(1 - y_true * y_pred, 0) ** 2)`, for -1/1 (or 0/1) labels.

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, name: str | None = "squared_hinge", dtype: DTypeLike | None = None) -> None:
        super().__init__(squared_hinge, name, dtype)


class CategoricalHinge(MeanMetricWrapper):
    """Mean categorical hinge loss for one-hot targets.

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, name: str | None = "categorical_hinge", dtype: DTypeLike | None = None) -> None:
        super().__init__(categorical_hinge, name, dtype)


class BinaryCrossentropy(MeanMetricWrapper):
    """Mean binary cross-entropy between 0/1 (or soft) targets and probabilities or logits.

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
        from_logits: Whether `y_pred` holds logits (unnormalized scores) instead of probabilities.
        label_smoothing: In `[0, 1]`: targets are squeezed toward 0.5 by this amount.
    """

    def __init__(self, name: str | None = "binary_crossentropy", dtype: DTypeLike | None = None,
                 from_logits: bool = False, label_smoothing: float = 0) -> None:
        super().__init__(binary_crossentropy, name, dtype, from_logits=bool(from_logits),
                         label_smoothing=label_smoothing)


class CategoricalCrossentropy(MeanMetricWrapper):
    """Mean categorical cross-entropy between one-hot (or soft) targets and probabilities or logits.

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
        from_logits: Whether `y_pred` holds logits (unnormalized scores) instead of probabilities.
        label_smoothing: In `[0, 1]`: targets are squeezed toward `1 / num_classes` by this amount.
        axis: The class axis (only the last axis is supported).
    """

    def __init__(self, name: str | None = "categorical_crossentropy", dtype: DTypeLike | None = None,
                 from_logits: bool = False, label_smoothing: float = 0, axis: int = -1) -> None:
        super().__init__(categorical_crossentropy, name, dtype, from_logits=bool(from_logits),
                         label_smoothing=label_smoothing, axis=axis)


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    """Mean cross-entropy between integer class labels and class probabilities or logits.

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
        from_logits: Whether `y_pred` holds logits (unnormalized scores) instead of probabilities.
        ignore_class: A label whose entries count as a loss of 0 (e.g. padding); with `sample_weight`
            given, they are also left out of the count, as Keras 3 does. `None` uses every entry.
        axis: The class axis (only the last axis is supported).
    """

    def __init__(self, name: str | None = "sparse_categorical_crossentropy", dtype: DTypeLike | None = None,
                 from_logits: bool = False, ignore_class: int | None = None, axis: int = -1) -> None:
        if ignore_class is not None and (isinstance(ignore_class, bool)
                                         or not isinstance(ignore_class, numbers.Integral)):
            raise ValueError(f"ignore_class must be an int or None; received ignore_class={ignore_class!r}")
        super().__init__(sparse_categorical_crossentropy, name, dtype, from_logits=bool(from_logits),
                         ignore_class=None, axis=axis)
        if ignore_class is not None:
            self._fn_kwargs["ignore_class"] = int(ignore_class)

    def update_state(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> None:
        """Add a batch's cross-entropies (entries labelled `ignore_class` as 0).

        Args:
            y_true: Ground-truth targets.
            y_pred: Predictions, with the same batch size as `y_true`.
            sample_weight: Optional per-sample weights, broadcast against the per-sample values.
        """
        ignore = self._fn_kwargs["ignore_class"]
        if ignore is None:
            return super().update_state(y_true, y_pred, sample_weight)
        kwargs = {k: v for k, v in self._fn_kwargs.items() if k != "ignore_class"}
        labels = np.asarray(y_true)
        valid = labels != ignore
        values = sparse_categorical_crossentropy(np.where(valid, labels, 0), y_pred, **kwargs)
        valid = valid.reshape(values.shape)
        values = np.where(valid, values, 0.0)
        if sample_weight is not None:   # Keras applies the mask to the weights only when there are weights
            values_w, w = _same_rank(valid.astype(np.float64), np.asarray(sample_weight, dtype=np.float64))
            sample_weight = values_w * w.reshape(w.shape + (1,) * (values_w.ndim - w.ndim))
        self._accumulate(values, sample_weight)


def pearson_correlation(y_true: ArrayLike, y_pred: ArrayLike, axis: int = -1) -> np.ndarray:
    """Pearson correlation coefficient between y_true and y_pred along `axis`, per sample.

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
        axis: The axis along which the correlation is computed.
    """
    y_pred = np.asarray(y_pred)
    y_pred = y_pred.astype(y_pred.dtype if y_pred.dtype.kind == "f" else np.float32, copy=False)
    y_true, y_pred = _same_rank(np.asarray(y_true, dtype=y_pred.dtype), y_pred)
    t = y_true - y_true.mean(axis=axis, keepdims=True)
    p = y_pred - y_pred.mean(axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = t / t.std(axis=axis, keepdims=True)
        p = p / p.std(axis=axis, keepdims=True)
    return np.mean(t * p, axis=axis)


def concordance_correlation(y_true: ArrayLike, y_pred: ArrayLike, axis: int = -1) -> np.ndarray:
    """Concordance correlation coefficient along `axis`, per sample, computed as Keras 3 does: its
    covariance term is `mean((y_true - mean(y_pred)) * (y_pred - mean(y_pred)))` (Keras centres y_true on
    y_pred's mean) over `var(y_true) + var(y_pred) + (mean(y_true) - mean(y_pred)) ** 2 + 1e-7`.

    Args:
        y_true: Ground-truth targets.
        y_pred: Predictions, with the same batch size as `y_true`.
        axis: The axis along which the correlation is computed.
    """
    y_pred = np.asarray(y_pred)
    y_pred = y_pred.astype(y_pred.dtype if y_pred.dtype.kind == "f" else np.float32, copy=False)
    y_true, y_pred = _same_rank(np.asarray(y_true, dtype=y_pred.dtype), y_pred)
    mt = y_true.mean(axis=axis, keepdims=True)
    mp = y_pred.mean(axis=axis, keepdims=True)
    covar = (y_true - mp) * (y_pred - mp)
    norm = y_true.var(axis=axis, keepdims=True) + y_pred.var(axis=axis, keepdims=True) + np.square(mt - mp)
    return np.mean(2.0 * covar / (norm + _EPSILON), axis=axis)


class PearsonCorrelation(MeanMetricWrapper):
    """Mean over samples of the Pearson correlation between y_true and y_pred along `axis`.

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
        axis: The axis along which the correlation is computed.
    """

    def __init__(self, name: str | None = "pearson_correlation", dtype: DTypeLike | None = None,
                 axis: int = -1) -> None:
        super().__init__(pearson_correlation, name, dtype, axis=axis)


class ConcordanceCorrelation(MeanMetricWrapper):
    """Mean over samples of the concordance correlation between y_true and y_pred along `axis` (as Keras 3
    computes it: see `concordance_correlation`).

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
        axis: The axis along which the correlation is computed.
    """

    def __init__(self, name: str | None = "concordance_correlation", dtype: DTypeLike | None = None,
                 axis: int = -1) -> None:
        super().__init__(concordance_correlation, name, dtype, axis=axis)


class Sum(Metric):
    """Weighted sum of the values passed to `update_state(values, sample_weight=None)`.

    Args:
        name: Name of the object (a default is generated when `None`).
        dtype: Dtype of the state or result; `None` uses `cynet.config.floatx()`.
    """

    def __init__(self, name: str | None = "sum", dtype: DTypeLike | None = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="total")

    def update_state(self, values: ArrayLike, sample_weight: ArrayLike | None = None) -> None:
        """Add the (weighted) values of a batch.

        Args:
            values: The values to add (any shape).
            sample_weight: Optional weights, broadcast against the values.
        """
        values = np.asarray(values, dtype=np.float64)
        if sample_weight is not None:
            values, w = _same_rank(values, np.asarray(sample_weight, dtype=np.float64))
            try:   # a weight per sample (or per value): the same total as Keras's sums per sample times weights
                values = values * np.broadcast_to(w.reshape(w.shape + (1,) * (values.ndim - w.ndim)), values.shape)
            except ValueError:
                raise ValueError(f"{self.name}: sample_weight of shape {np.shape(sample_weight)} does not broadcast "
                                 f"to the values' shape {values.shape}") from None
        self.total.assign_add(float(values.sum()))

    def result(self) -> Any:
        return float(self.total.value)


_ALL = (Mean, MeanMetricWrapper, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
        TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError, MeanAbsoluteError, Accuracy,
        TruePositives, FalsePositives, TrueNegatives, FalseNegatives, Precision, Recall, AUC,
        SensitivityAtSpecificity, SpecificityAtSensitivity, PrecisionAtRecall, RecallAtPrecision,
        FBetaScore, F1Score, IoU, BinaryIoU, MeanIoU, OneHotIoU, OneHotMeanIoU, R2Score,
        RootMeanSquaredError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError, CosineSimilarity,
        LogCoshError, Poisson, KLDivergence, Hinge, SquaredHinge, CategoricalHinge, BinaryCrossentropy,
        CategoricalCrossentropy, SparseCategoricalCrossentropy, Sum, PearsonCorrelation, ConcordanceCorrelation)
_CLASSES = {c.__name__: c for c in _ALL}


def _snake(name):
    from .layers.base import snake_case

    return snake_case(name)


# Keras 3's ALL_OBJECTS_DICT: the class names and their snake_case ("auc", "mean_io_u", "f_beta_score"),
# and the short names.
_ALIASES = {_snake(name): cls for name, cls in _CLASSES.items() if cls is not MeanMetricWrapper}
_ALIASES.update({"mse": MeanSquaredError, "MSE": MeanSquaredError, "mae": MeanAbsoluteError,
                 "MAE": MeanAbsoluteError})
_ALIASES.update({"mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,   # Keras 3's short names
                 "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError,
                 "bce": BinaryCrossentropy, "BCE": BinaryCrossentropy})
_ALIASES.pop("accuracy")   # the string "accuracy" is compile's shape-driven choice


def serialize(metric: Any) -> Any:
    """{"class_name": ..., "config": ...} of a Metric object.

    Args:
        metric: A Metric instance.
    """
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Any:
    """The Metric a `serialize` dict describes (custom classes through custom_objects or
    `register_keras_serializable`).

    Args:
        config: The dictionary `get_config()` returned.
        custom_objects: Optional dict mapping names to custom classes or functions used while deserializing.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"expected a dict with 'class_name' and 'config'; received {config!r}")
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or _CLASSES.get(name)
    if cls is None:
        from .utils.serialization import get_registered_object

        cls = get_registered_object(name, custom_objects)
    if not (isinstance(cls, type) and issubclass(cls, Metric)):
        raise ValueError(f"Unknown metric class {name!r}; pass it in custom_objects")
    return cls.from_config(dict(config.get("config") or {}))


def _instantiate(cls, identifier):
    try:
        return cls()
    except TypeError as e:
        raise ValueError(f"metric {identifier!r} ({cls.__name__}) needs arguments ({e}); pass an instance, "
                         f"e.g. cynet.metrics.{cls.__name__}(...)") from None


def get(identifier: Any, loss: Any = None) -> Any:
    """A Metric, as `compile(metrics=[...])` resolves each entry (Keras 3).

    - a string: "accuracy" / "acc" (binary, sparse or categorical, chosen from the shapes), a
      Keras metric name ("precision", "recall", "auc", "f1_score", "r2_score", "mse", ...) or class
      name ("AUC", "Precision", ...); the metric is named by the string, as in Keras's logs;
    - a Metric object (used as is) or class (instantiated with its defaults);
    - a dict {"class_name": ..., "config": ...} (`serialize`'s);
    - a function fn(y_true, y_pred) -> per-sample values: averaged by a MeanMetricWrapper named
      after the function.

    Args:
        identifier: A name (string), a config dictionary, an instance, a callable, or `None`.
        loss: A loss (instance, function or name).
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier.lower() in ("accuracy", "acc"):
            return _AutoAccuracy(name=identifier, loss=loss)
        cls = _ALIASES.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            # a name Keras's auto-naming gives ("auc_1"): a saved compile config may hold one
            match = re.fullmatch(r"(.+)_([0-9]+)", identifier)
            cls = _ALIASES.get(match.group(1)) if match else None
        if cls is None or cls is MeanMetricWrapper:
            raise ValueError(f"Unknown metric {identifier!r}; expected 'accuracy' or one of {sorted(_ALIASES)}")
        metric = _instantiate(cls, identifier)
        metric.name = identifier
        return metric
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return _instantiate(identifier, identifier.__name__)
    if callable(identifier) and not isinstance(identifier, type):
        return MeanMetricWrapper(identifier, name=getattr(identifier, "__name__", None) or "mean_metric_wrapper")
    raise TypeError(f"metrics must be strings, cynet Metric objects or functions; received {identifier!r}")
