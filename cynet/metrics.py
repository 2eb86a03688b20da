"""Metrics, Keras 3 names: stateful objects with update_state / result / reset_state.

"accuracy" (or "acc") picks binary, sparse or categorical accuracy from the label and
prediction shapes on first use, as Keras does.
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

    def _accumulate(self, values, sample_weight):
        values = np.asarray(values, dtype=np.float64)
        if sample_weight is None:
            self._total += float(values.sum())
            self._count += values.size
        else:
            w = np.broadcast_to(np.asarray(sample_weight, dtype=np.float64).reshape(
                np.shape(sample_weight) + (1,) * (values.ndim - np.ndim(sample_weight))), values.shape)
            self._total += float((values * w).sum())
            self._count += float(w.sum())


class Mean(Metric):
    """Weighted mean of the values passed to update_state(values, sample_weight=None)."""

    def update_state(self, values, sample_weight=None):
        values = np.asarray(values, dtype=np.float64)
        if sample_weight is not None and np.ndim(sample_weight) == 0 and values.ndim == 0:
            self._total += float(values) * float(sample_weight)
            self._count += float(sample_weight)
        else:
            self._accumulate(values, sample_weight)


class MeanMetricWrapper(Metric):
    """Mean over samples of fn(y_true, y_pred) -> per-sample values."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        self._fn = fn
        self._fn_kwargs = kwargs
        super().__init__(name=name or fn.__name__, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        self._accumulate(self._fn(y_true, y_pred, **self._fn_kwargs), sample_weight)


def _labels(y_true, y_pred):
    """Integer labels of shape y_pred.shape[:-1] from sparse labels (with or without a trailing 1)."""
    y_true = np.asarray(y_true)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    return y_true.astype(np.int64, copy=False)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true).reshape(y_pred.shape) if np.size(y_true) == y_pred.size else np.asarray(y_true)
    return np.mean((y_pred > threshold) == (y_true > 0.5), axis=-1)


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
    """Keras's "accuracy" string: binary / sparse categorical / categorical, chosen from the shapes
    (and the loss) on the first update."""

    def __init__(self, name="accuracy", dtype=None, loss=None):
        self._loss_name = getattr(loss, "name", None)
        super().__init__(self._resolve, name, dtype)
        self._chosen = None

    def _resolve(self, y_true, y_pred):
        if self._chosen is None:
            y_true_a, y_pred_a = np.asarray(y_true), np.asarray(y_pred)
            if self._loss_name == "binary_crossentropy" or y_pred_a.shape[-1:] == (1,):
                self._chosen = binary_accuracy
            elif (self._loss_name == "sparse_categorical_crossentropy" or y_true_a.ndim < y_pred_a.ndim
                  or y_true_a.shape[-1:] == (1,)):
                self._chosen = sparse_categorical_accuracy
            else:
                self._chosen = categorical_accuracy
        return self._chosen(y_true, y_pred)


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
            return Accuracy(name=identifier, loss=loss)
        cls = _ALIASES.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown metric {identifier!r}; expected 'accuracy' or one of {sorted(_ALIASES)}")
        metric = cls()
        if identifier in ("mse", "mae"):
            metric.name = identifier
        return metric
    raise TypeError(f"metrics must be strings or cynet Metric objects; received {identifier!r}")
