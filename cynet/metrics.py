"""Metrics, Keras 3 names: stateful objects with update_state / result / reset_state.

The string "accuracy" (or "acc") picks binary, sparse or categorical accuracy from the label and
prediction shapes on first use, as Keras 3's compile does; the class `Accuracy` is Keras's
exact-match metric (how often y_pred equals y_true).
"""
import numpy as np


class Metric:
    def __init__(self, name=None, dtype=None):
        self.name = name or type(self).__name__.lower()
        self.reset_state()

    def reset_state(self):
        self._total = 0.0
        self._count = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        raise NotImplementedError

    def result(self):
        return float(self._total / self._count) if self._count else 0.0

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _accumulate(self, values, sample_weight):
        """Keras's reduce_to_samplewise_values: values become one mean per sample (per weight, when
        sample_weight has more axes), the total grows by their weighted sum and the count by the
        number of samples, or the sum of the (per-sample mean) weights."""
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


class Mean(Metric):
    """Weighted mean of the values passed to update_state(values, sample_weight=None)."""

    def update_state(self, values, sample_weight=None):
        self._accumulate(values, sample_weight)


class MeanMetricWrapper(Metric):
    """Mean over samples of fn(y_true, y_pred) -> per-sample values."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        self._fn = fn
        self._fn_kwargs = kwargs
        super().__init__(name=name or fn.__name__, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        self._accumulate(self._fn(y_true, y_pred, **self._fn_kwargs), sample_weight)

    def get_config(self):
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


def accuracy(y_true, y_pred):
    """Keras's exact-match accuracy: 1 where y_pred equals y_true."""
    y_true, y_pred = _same_rank(y_true, y_pred)
    return (y_true == y_pred).astype(np.float64)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """1 where y_true equals (y_pred > threshold), elementwise (Keras 3: labels are 0/1)."""
    y_true, y_pred = _same_rank(y_true, y_pred)
    return (y_true == (y_pred > threshold)).astype(np.float64)


def categorical_accuracy(y_true, y_pred):
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float64)


def sparse_categorical_accuracy(y_true, y_pred):
    y_pred = np.asarray(y_pred)
    return (_labels(y_true, y_pred) == np.argmax(y_pred, axis=-1)).astype(np.float64)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    return sparse_top_k_categorical_accuracy(np.argmax(y_true, axis=-1), y_pred, k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    y_pred = np.asarray(y_pred)
    labels = _labels(y_true, y_pred)
    if k >= y_pred.shape[-1]:
        return np.ones(labels.shape)
    true_score = np.take_along_axis(y_pred, labels[..., None], axis=-1)
    # In the top k when fewer than k scores beat the true class's score.
    return ((y_pred > true_score).sum(axis=-1) < k).astype(np.float64)


def mean_squared_error(y_true, y_pred):
    d = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64).reshape(np.shape(y_pred))
    return np.mean(d * d, axis=-1)


def mean_absolute_error(y_true, y_pred):
    d = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64).reshape(np.shape(y_pred))
    return np.mean(np.abs(d), axis=-1)


class BinaryAccuracy(MeanMetricWrapper):
    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(binary_accuracy, name, dtype, threshold=threshold)


class CategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name, dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name, dtype)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        super().__init__(top_k_categorical_accuracy, name, dtype, k=k)


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None):
        super().__init__(sparse_top_k_categorical_accuracy, name, dtype, k=k)


class MeanSquaredError(MeanMetricWrapper):
    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name, dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name, dtype)


class Accuracy(MeanMetricWrapper):
    """Keras's Accuracy class: how often y_pred equals y_true exactly."""

    def __init__(self, name="accuracy", dtype=None):
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


_CLASSES = {c.__name__: c for c in (Mean, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
                                     TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError,
                                     MeanAbsoluteError, Accuracy)}
_ALIASES = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy, "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
}


def get(identifier, loss=None):
    """A Metric from a Keras name, a class name, or a Metric instance."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier in ("accuracy", "acc"):
            return _AutoAccuracy(name=identifier, loss=loss)
        cls = _ALIASES.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown metric {identifier!r}; expected 'accuracy' or one of {sorted(_ALIASES)}")
        metric = cls()
        if identifier in ("mse", "mae"):
            metric.name = identifier
        return metric
    raise TypeError(f"metrics must be strings or cynet Metric objects; received {identifier!r}")
