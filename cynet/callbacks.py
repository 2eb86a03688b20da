"""Callbacks with Keras 3 names, arguments, defaults and semantics.

`fit` wraps the user's callbacks in a `CallbackList` (adding `History`, and `ProgbarLogger`
when `verbose != 0`), calls `set_model` / `set_params({"verbose", "epochs", "steps"})`, then the
hooks in Keras's order: on_train_begin, on_epoch_begin, on_train_batch_begin/end (logs hold the
running means of this epoch), on_test_* while validating, on_epoch_end (logs with "val_*"),
on_train_end.

Where cynet differs from Keras (each one on purpose):
- Files: `ModelCheckpoint` writes Keras's `.keras` / `.weights.h5` files and also cynet's own
  `.cynet` / `.weights.npz`; a legacy `.h5` path is refused (cynet reads that format, never writes it).
- mode="auto" also knows the direction of metrics by their Keras names ("accuracy", "auc",
  "mse", ...), not only through metric objects that carry a `_direction`; it still raises,
  as Keras does, for a name it cannot place.
- `ReduceLROnPlateau` and `LearningRateScheduler` name the callback when the optimizer refuses a
  new learning rate (a schedule); `LearningRateScheduler` tells `schedule(epoch, lr)` from
  `schedule(epoch)` by signature, so a TypeError raised inside the schedule is not swallowed.
- Batch-end callbacks run synchronously (no thread pool): cynet trains on the CPU in-process.
- `CSVLogger` ends lines with "\\n" rather than the csv module's "\\r\\n".
- `BackupAndRestore` keeps its state in one file of cynet's (weights, optimizer state and the
  position, written atomically), restores the optimizer's state with the weights, and with an
  integer `save_freq` resumes at the step after the last backup (Keras restarts that epoch
  from its first batch); the running means of that epoch then cover the remaining batches only.
  At the end it removes its own files (and the directory when that leaves it empty), not the
  whole directory.
- `SwapEMAWeights` swaps the weights back after `predict` (Keras 3.15 leaves the moving averages
  in the model there), and with `swap_on_epoch` also keeps the moving averages in the model when
  training stops before its last epoch (stop_training already set when it runs).
- `ProgbarLogger` shows the running means it receives as they are (Keras 3 averages them again
  during the epoch), and an epoch stopped early ends on the step it reached, not on the target.
"""
import collections.abc
import csv
import inspect
import math
import numbers
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .utils.progbar import Progbar

__all__ = [
    "Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping", "ModelCheckpoint",
    "ReduceLROnPlateau", "LearningRateScheduler", "TerminateOnNaN", "CSVLogger", "LambdaCallback", "TensorBoard",
    "MonitorCallback", "BackupAndRestore", "SwapEMAWeights",
]

_HOOKS = (
    "on_batch_begin", "on_batch_end", "on_epoch_begin", "on_epoch_end",
    "on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end",
    "on_predict_batch_begin", "on_predict_batch_end", "on_train_begin", "on_train_end",
    "on_test_begin", "on_test_end", "on_predict_begin", "on_predict_end",
)


class Callback:
    """Base class for callbacks: every hook is a no-op; subclasses override the ones they need.

    Attributes:
        params: dict of training parameters (`verbose`, `epochs`, `steps`).
        model: the model being trained.

    In data-parallel training (cynet.distributed), callbacks whose class sets
    `rank_zero_only = True` (those that print or write files) run on rank 0 only.
    """

    rank_zero_only = False

    def __init__(self) -> None:
        self.params: dict[str, Any] | None = None
        self._model = None

    def set_params(self, params: dict[str, Any]) -> None:
        """Store the training parameters (`self.params`); called by fit/evaluate/predict.

        Args:
            params: Dict of training parameters (verbose, epochs, steps).
        """
        self.params = params

    def set_model(self, model: Any) -> None:
        """Attach the model this callback acts on (`self.model`); called by fit/evaluate/predict.

        Args:
            model: The model being trained, evaluated or run.
        """
        self._model = model

    @property
    def model(self) -> Any:
        """The model this callback is attached to."""
        return self._model

    @model.setter
    def model(self, model):
        self._model = model

    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Backwards-compatible alias, called by `on_train_batch_begin`.

        Args:
            batch: Index of the batch within the epoch.
            logs: Dict of the metric results so far in this epoch or batch (may be empty).
        """

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Backwards-compatible alias, called by `on_train_batch_end`.

        Args:
            batch: Index of the batch within the epoch.
            logs: Dict of the metric results so far in this epoch or batch (may be empty).
        """

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Called at the start of an epoch (0-based `epoch`).

        Args:
            epoch: Index of the epoch.
            logs: Dict of the metric results so far in this epoch or batch (may be empty).
        """

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Called at the end of an epoch; logs hold the epoch's metrics and `val_*` entries.

        Args:
            epoch: Index of the epoch.
            logs: Dict of the metric results so far in this epoch or batch (may be empty).
        """

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called at the start of a training batch (calls `on_batch_begin`).

        Args:
            batch: Index of the batch within the epoch.
            logs: Dict of the metric results so far in this epoch or batch (may be empty).
        """
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called after a training batch; logs hold the running means of this epoch.

        Args:
            batch: Index of the batch within the epoch.
            logs: Dict of the metric results so far in this epoch or batch (may be empty).
        """
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called at the start of a batch in `evaluate` (and validation in `fit`).

        Args:
            batch: Index of the batch within the epoch.
            logs: Dict of the metric results so far in this epoch or batch (may be empty).
        """
        pass

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called at the end of a batch in `evaluate`; `logs` hold the running metric values.

        Args:
            batch: Index of the batch within the epoch.
            logs: Dict of the metric results so far in this epoch or batch (may be empty).
        """
        pass

    def on_predict_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called at the start of a batch in `predict` (Keras's hook; cynet's `predict` does not call callbacks yet).

        Args:
            batch: Index of the batch within the epoch.
            logs: Dict of the metric results so far in this epoch or batch (may be empty).
        """
        pass

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called at the end of a batch in `predict` (Keras's hook; cynet's `predict` does not call callbacks yet).

        Args:
            batch: Index of the batch within the epoch.
            logs: Dict of the metric results so far in this epoch or batch (may be empty).
        """
        pass

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Called at the start of `fit`.

        Args:
            logs: Dict of the metric results so far in this epoch or batch (may be empty).
        """
        pass

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Called at the end of `fit` (also when a callback stopped it).

        Args:
            logs: Dict of the metric results so far in this epoch or batch (may be empty).
        """
        pass

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Called at the start of `evaluate` (and of each validation pass in `fit`).

        Args:
            logs: Dict of the metric results so far in this epoch or batch (may be empty).
        """
        pass

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        """Called at the end of `evaluate`; `logs` hold the results.

        Args:
            logs: Dict of the metric results so far in this epoch or batch (may be empty).
        """
        pass

    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Called at the start of `predict` (Keras's hook; cynet's `predict` does not call callbacks yet).

        Args:
            logs: Dict of the metric results so far in this epoch or batch (may be empty).
        """
        pass

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        """Called at the end of `predict` (Keras's hook; cynet's `predict` does not call callbacks yet).

        Args:
            logs: Dict of the metric results so far in this epoch or batch (may be empty).
        """
        pass


def _flatten(callbacks):
    if callbacks is None:
        return []
    if isinstance(callbacks, (list, tuple)):
        out = []
        for item in callbacks:
            out.extend(_flatten(item))
        return out
    if isinstance(callbacks, type):
        raise TypeError(f"callbacks must be Callback instances; received the class {callbacks.__name__}. "
                        f"Did you mean {callbacks.__name__}()?")
    if not isinstance(callbacks, Callback):
        raise TypeError(f"callbacks must be instances of cynet.callbacks.Callback; "
                        f"received {callbacks!r} of type {type(callbacks).__name__}")
    return [callbacks]


def _pythonify_logs(logs):
    """Plain floats (where possible), keys sorted, nested dicts flattened, as Keras does."""
    result = {}
    for key, value in sorted(logs.items()):
        if isinstance(value, dict):
            result.update(_pythonify_logs(value))
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            pass
        result[key] = value
    return result


class CallbackList(Callback):
    """Holds callbacks and calls the same hook on each of them, in order.

    Args:
        callbacks: list of `Callback` instances (nested lists are flattened).
        add_history: add a `History` unless the list has one.
        add_progbar: add a `ProgbarLogger` unless the list has one.
        model: the model the callbacks are used with.
        rank_zero: False on the other ranks of a data-parallel job: the callbacks marked
            `rank_zero_only` are left out, and no progress bar is added.
        **params: passed to every callback through `set_params`.
    """

    def __init__(self, callbacks: Any = None, add_history: bool = False, add_progbar: bool = False, model: Any = None,
                 rank_zero: bool = True, **params: Any) -> None:
        super().__init__()
        self.callbacks = [cb for cb in _flatten(callbacks) if rank_zero or not cb.rank_zero_only]
        add_progbar = add_progbar and rank_zero
        self._history = None
        self._progbar = None
        for cb in self.callbacks:
            if isinstance(cb, ProgbarLogger):
                self._progbar = cb
            elif isinstance(cb, History):
                self._history = cb
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        self.set_model(model)
        self.set_params(params)

    @property
    def history(self) -> Any:
        """The `History` callback in this list, or None."""
        return self._history

    def append(self, callback: Any) -> None:
        """Add a callback (or a list of them), attaching the model and parameters already set.

        Args:
            callback: A Callback.
        """
        callback = _flatten(callback)
        self.callbacks.extend(callback)
        for cb in callback:
            if self._model is not None:
                cb.set_model(self._model)
            if self.params:
                cb.set_params(self.params)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params
        if params:
            for cb in self.callbacks:
                cb.set_params(params)

    def set_model(self, model: Any) -> None:
        if model is None:
            return
        super().set_model(model)
        if self._history is not None:
            try:
                model.history = self._history
            except AttributeError:  # a model class that does not allow the attribute
                pass
        for cb in self.callbacks:
            cb.set_model(model)

    def _call(self, hook, *args, logs=None):
        logs = logs if logs is not None else {}
        for cb in self.callbacks:
            getattr(cb, hook)(*args, logs)

    # epoch-level and run-level hooks pass the same dict to every callback, so a callback
    # that adds an entry (ReduceLROnPlateau's "learning_rate") is seen by the ones after it
    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_epoch_end", epoch, logs=logs)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._call("on_train_begin", logs=logs)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._call("on_train_end", logs=logs)

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._call("on_test_begin", logs=logs)

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        self._call("on_test_end", logs=logs)

    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._call("on_predict_begin", logs=logs)

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        self._call("on_predict_end", logs=logs)

    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_batch_begin", batch, logs=logs)

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_train_batch_begin", batch, logs=logs)

    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_test_batch_begin", batch, logs=logs)

    def on_predict_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_predict_batch_begin", batch, logs=logs)

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_batch_end", batch, logs=_pythonify_logs(logs or {}))

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_train_batch_end", batch, logs=_pythonify_logs(logs or {}))

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_test_batch_end", batch, logs=_pythonify_logs(logs or {}))

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_predict_batch_end", batch, logs=logs)


class History(Callback):
    """Records the epoch logs: `history.history` maps each key to its per-epoch list.

    `fit` adds one automatically and returns it; `history.epoch` lists the epoch indices run.
    """

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[Any]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            try:
                self.model.history = self
            except AttributeError:
                pass


class ProgbarLogger(Callback):
    """Prints "Epoch i/n" and a progress bar with the logs (added by `fit` when verbose != 0).

    verbose=1 draws a live bar in terminals and notebooks (one final line per epoch elsewhere);
    verbose=2 prints one line per epoch. During `fit`, validation is silent.
    """

    rank_zero_only = True

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0
        self.progbar: Any = None
        self.target: Any = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False
        self._batch_keys: set[str] = set()

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._called_in_fit = True  # validation inside fit stays silent

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._called_in_fit = False

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not self._called_in_fit:
            self._reset_progbar()
            self._maybe_init_progbar()

    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._reset_progbar()
        self._maybe_init_progbar()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._update_progbar(batch, logs)

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._called_in_fit:
            self._update_progbar(batch, logs)

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._update_progbar(batch, None)  # predictions are not metrics

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._finalize_progbar(logs)

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if not self._called_in_fit:
            self._finalize_progbar(logs)

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        self._finalize_progbar(logs)

    def _reset_progbar(self):
        self.seen = 0
        self.progbar = None
        self._batch_keys = set()

    def _maybe_init_progbar(self):
        if self.progbar is None:
            # the logs carry running means already: show them as given
            self.progbar = Progbar(target=self.target, verbose=self.verbose, stateful_metrics=(),
                                   unit_name="step")

    def _values(self, logs):
        """(name, value) pairs in Keras 3's display order: the batch metrics sorted ("accuracy",
        "loss"), then the validation ones sorted, then entries callbacks added ("learning_rate")."""
        logs = logs or {}
        self.progbar.stateful_metrics.update(logs.keys())
        batch = sorted(k for k in logs if k in self._batch_keys)
        val = sorted(k for k in logs if k not in self._batch_keys and k.startswith("val_"))
        rest = [k for k in logs if k not in self._batch_keys and not k.startswith("val_")]
        return [(k, logs[k]) for k in batch + val + rest]

    def _update_progbar(self, batch, logs=None):
        self._maybe_init_progbar()
        self.seen = batch + 1
        self._batch_keys.update(logs or ())
        if self.verbose == 1:
            self.progbar.update(self.seen, self._values(logs), finalize=False)

    def _finalize_progbar(self, logs):
        self._maybe_init_progbar()
        if self.target is None:
            self.target = self.seen
            self.progbar.target = self.target
        current = self.seen if 0 < self.seen < (self.target or 0) else self.target
        self.progbar.update(current, self._values(logs), finalize=True)


# ---------------------------------------------------------------------- monitored quantities
_HIGHER_IS_BETTER = frozenset({
    "acc", "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "auc", "prc", "precision",
    "recall", "f1_score", "fbeta_score", "r2_score", "iou", "mean_iou", "binary_iou", "one_hot_iou",
    "one_hot_mean_iou", "cosine_similarity", "true_positives", "true_negatives", "precision_at_recall",
    "recall_at_precision", "sensitivity_at_specificity", "specificity_at_sensitivity",
})
_LOWER_IS_BETTER = frozenset({
    "loss", "mse", "mae", "mape", "msle", "rmse", "mean_squared_error", "mean_absolute_error",
    "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "root_mean_squared_error",
    "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
    "binary_focal_crossentropy", "categorical_focal_crossentropy", "kl_divergence", "kld",
    "kullback_leibler_divergence", "poisson", "hinge", "squared_hinge", "categorical_hinge", "logcosh",
    "log_cosh", "log_cosh_error", "huber", "false_positives", "false_negatives",
})


def _model_metric_directions(model):
    """{name: "up"|"down"} from metric objects on the model that carry a `_direction`."""
    found: dict[str, Any] = {}
    for attr in ("metrics", "_metrics"):
        try:
            metrics = getattr(model, attr, None)
        except Exception:  # noqa: BLE001 - a property that fails before compile
            metrics = None
        if not isinstance(metrics, (list, tuple)):
            continue
        stack = list(metrics)
        while stack:
            m = stack.pop()
            inner = getattr(m, "metrics", None)
            if isinstance(inner, (list, tuple)) and inner is not metrics:
                stack.extend(inner)
            name, direction = getattr(m, "name", None), getattr(m, "_direction", None)
            if isinstance(name, str) and direction in ("up", "down"):
                found.setdefault(name, direction)
    return found


def _infer_direction(monitor, model):
    """"up", "down" or None for a monitored name such as "val_accuracy"."""
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if name == "loss" or name.endswith("_loss"):
        return "down"
    direction = _model_metric_directions(model).get(name)
    if direction is not None:
        return direction
    if name in _HIGHER_IS_BETTER or name.endswith("_accuracy"):
        return "up"
    if name in _LOWER_IS_BETTER or name.endswith(("_error", "_crossentropy")):
        return "down"
    return None


class MonitorCallback(Callback):
    """Base for callbacks that watch a quantity and ask whether it improved.

    mode "min" / "max" fixes the direction; "auto" infers it from the name ("loss", "accuracy",
    "mse", ... with or without "val_") and raises ValueError when it cannot.

    Args:
        monitor: Name of the quantity to monitor (e.g. `"val_loss"`).
        mode: `"min"`, `"max"` or `"auto"` (infers the direction from the monitored name).
        baseline: Value the monitored quantity must improve on (`None`: the first epoch's value).
        min_delta: Minimum change of the monitored quantity that counts as an improvement.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", baseline: float | None = None,
                 min_delta: float = 0) -> None:
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__} mode '{mode}' is unknown, fallback to auto mode.", stacklevel=3)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op: Any = None

    def _set_monitor_op(self):
        if self.mode == "min":
            direction = "down"
        elif self.mode == "max":
            direction = "up"
        else:
            direction = _infer_direction(self.monitor, self.model)
            if direction is None:
                raise ValueError(
                    f"{type(self).__name__} callback received monitor={self.monitor}, but cynet isn't able to "
                    "automatically determine whether that metric should be maximized or minimized. Pass "
                    "`mode='max'` in order to monitor based on the highest metric value, or pass `mode='min'` "
                    "in order to use the lowest value."
                )
        if direction == "down":
            self.monitor_op = np.less
            self.min_delta = -abs(self.min_delta)
        else:
            self.monitor_op = np.greater
            self.min_delta = abs(self.min_delta)

    def _is_improvement(self, monitor_value, reference_value):
        if reference_value is None:
            return True
        return bool(self.monitor_op(monitor_value - self.min_delta, reference_value))


def _copy_weights(weights):
    return [np.array(w, copy=True) for w in weights]


class EarlyStopping(MonitorCallback):
    """Stop training when a monitored metric has stopped improving.

    Args:
        monitor: quantity to watch. Defaults to "val_loss".
        min_delta: an absolute change smaller than this is no improvement.
        patience: epochs without improvement after which training stops.
        verbose: 0 silent, 1 prints when it stops and when it restores weights.
        mode: "auto", "min" or "max".
        baseline: training stops unless the model improves on this value within `patience`.
        restore_best_weights: at the end of training (however it ends), restore the weights of
            the best epoch seen. Keras 3 behaviour.
        start_from_epoch: epochs to wait before monitoring starts (warm-up).

    Attributes: `stopped_epoch` (0-based, 0 when it never stopped), `best`, `best_epoch`, `wait`.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0, verbose: int = 0,
                 mode: str = "auto", baseline: float | None = None, restore_best_weights: bool = False,
                 start_from_epoch: int = 0) -> None:
        super().__init__(monitor, mode, baseline=None, min_delta=min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        # allow the instance to be reused across fit calls
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # nothing better seen yet: the current weights are the best
            self.best_weights = _copy_weights(self.model.get_weights())
            self.best_epoch = epoch

        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = _copy_weights(self.model.get_weights())
            # restart the wait only when both the baseline and the previous best are beaten
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return

        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping", flush=True)
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.", flush=True)
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs: dict[str, Any] | None) -> Any:
        """The monitored value in `logs`, or `None` with a warning naming the available keys.

        Args:
            logs: Dict of the metric results so far in this epoch or batch (may be empty).
        """
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(logs.keys())}",
                stacklevel=3,
            )
        return value


MODEL_EXTENSIONS = (".keras", ".cynet")
WEIGHTS_EXTENSIONS = (".weights.h5", ".weights.npz")


class ModelCheckpoint(MonitorCallback):
    """Save the model, or only its weights, at the end of every epoch or every `save_freq` batches.

    Args:
        filepath: where to save; may hold `str.format` fields filled with `epoch` (1-based), `batch`
            (1-based, with an integer save_freq) and the log entries, e.g.
            "model-{epoch:02d}-{val_loss:.2f}.keras". Must end in ".keras" (Keras 3's format) or ".cynet"
            (cynet's), or in ".weights.h5" / ".weights.npz" when `save_weights_only=True`.
        monitor: quantity compared when `save_best_only=True`.
        verbose: 1 prints a message on each save decision.
        save_best_only: save only when the monitored quantity improves on the best so far.
        save_weights_only: call `model.save_weights(path)` instead of `model.save(path)`.
        mode: "auto", "min" or "max".
        save_freq: "epoch", or a number of batches.
        initial_value_threshold: the "best" value to beat before the first save (save_best_only).
    """

    rank_zero_only = True

    def __init__(self, filepath: str, monitor: str = "val_loss", verbose: int = 0, save_best_only: bool = False,
                 save_weights_only: bool = False, mode: str = "auto", save_freq: str | int = "epoch",
                 initial_value_threshold: float | None = None) -> None:
        super().__init__(monitor, mode, baseline=initial_value_threshold)
        self.verbose = verbose
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq: Any = save_freq
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._current_epoch = 0

        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, numbers.Integral)
                                     or save_freq < 1):
            raise ValueError(f"Unrecognized save_freq: {save_freq}. Expected save_freq are 'epoch' or "
                             "positive integer values")
        if save_weights_only:
            if not self.filepath.endswith(WEIGHTS_EXTENSIONS):
                raise ValueError(
                    "When using `save_weights_only=True` in `ModelCheckpoint`, the filepath provided must end in "
                    f"one of {list(WEIGHTS_EXTENSIONS)} (Keras's weights format, or cynet's). "
                    f"Received: filepath={self.filepath}"
                )
        elif not self.filepath.endswith(MODEL_EXTENSIONS):
            hint = (" For weights only, pass save_weights_only=True."
                    if self.filepath.endswith(WEIGHTS_EXTENSIONS) else "")
            legacy = " (the legacy `.h5` format is read, not written)" if self.filepath.endswith(".h5") else ""
            raise ValueError(
                f"The filepath provided must end in one of {list(MODEL_EXTENSIONS)} (Keras's model format, or "
                f"cynet's){legacy}. Received: filepath={self.filepath}.{hint}"
            )

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._should_save_on_batch(batch):
            self._save_model(epoch=self._current_epoch, batch=batch, logs=logs)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._current_epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.save_freq == "epoch":
            self._save_model(epoch=epoch, batch=None, logs=logs)

    def _should_save_on_batch(self, batch):
        if self.save_freq == "epoch":
            return False
        if batch <= self._last_batch_seen:  # a new epoch began
            add_batches = batch + 1
        else:
            add_batches = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += add_batches
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _should_save_model(self, epoch, batch, logs, filepath):
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}", flush=True)
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=4)
            return True
        if isinstance(current, np.ndarray) and current.ndim > 0:
            warnings.warn(f"Can save best model only when `monitor` is a scalar value. Received: {current}. "
                          "Falling back to `save_best_only=False`.", stacklevel=4)
            return True
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to {current:.5f}, "
                      f"saving model to {filepath}", flush=True)
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}", flush=True)
        return False

    def _save_model(self, epoch, batch, logs):
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, batch, logs, filepath):
            return
        if os.path.isdir(filepath):
            raise IOError("Please specify a non-directory filepath for ModelCheckpoint. Filepath used is an "
                          f"existing directory: {filepath}")
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath, overwrite=True)
        else:
            self.model.save(filepath, overwrite=True)

    def _get_file_path(self, epoch, batch, logs):
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as exc:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". Reason: {exc}. '
                           f"Available keys: epoch, {'batch, ' if batch is not None else ''}"
                           f"{', '.join(logs.keys())}") from None


class BackupAndRestore(Callback):
    """Back up the training state during `fit`, and resume an interrupted `fit` from the last backup.

    At the end of each epoch (or every `save_freq` batches) the model's weights, its optimizer's
    state and the position reached are written, atomically, into one file in `backup_dir`. A later
    `fit` with a callback on the same directory restores them in on_train_begin and starts at that
    epoch (with an integer `save_freq`, at the batch after the last backup), so that a run killed
    in the middle ends as an uninterrupted one would. A `fit` that completes removes the backup
    (`delete_checkpoint`). The model (and its compile settings) must be those that made the backup.

    Args:
        backup_dir: Directory for the backup files, used by this callback alone.
        save_freq: "epoch" (back up at each epoch end), a positive number of batches, or False
            (never back up; only restore).
        double_checkpoint: Keep the previous backup too, restored when the latest cannot be read.
        delete_checkpoint: Remove the backup when `fit` completes.
    """

    _LATEST = "latest.backup"

    def __init__(self, backup_dir: str | os.PathLike[str], save_freq: str | int = "epoch",
                 double_checkpoint: bool = False, delete_checkpoint: bool = True) -> None:
        super().__init__()
        if not isinstance(backup_dir, (str, os.PathLike)) or not os.fspath(backup_dir):
            raise ValueError(f"Empty or invalid `backup_dir` argument passed: backup_dir={backup_dir!r} (expected "
                             "a directory path)")
        if save_freq is not False and save_freq != "epoch" and (
                isinstance(save_freq, bool) or not isinstance(save_freq, numbers.Integral) or save_freq < 1):
            raise ValueError(f"Invalid value for argument `save_freq`. Received: save_freq={save_freq!r}. Expected "
                             "'epoch', a positive integer, or False.")
        for name, value in (("double_checkpoint", double_checkpoint), ("delete_checkpoint", delete_checkpoint)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"`{name}` must be a bool; received {name}={value!r}")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq: Any = save_freq
        self.double_checkpoint = bool(double_checkpoint)
        self.delete_checkpoint = bool(delete_checkpoint)
        self._path = os.path.join(self.backup_dir, self._LATEST)
        self._prev_path = self._path + ".bkp"
        self._epoch = 0
        self._batches_since_save = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        from . import distributed
        if distributed.of(self.model):
            raise NotImplementedError("BackupAndRestore is not supported in data-parallel training yet")
        if not self.model.built:
            raise ValueError("To use the BackupAndRestore callback, the model must be built before you call fit(): "
                             f"model {self.model.name!r} is unbuilt (call it on a batch of data, or build it)")
        self._epoch = 0
        self._batches_since_save = 0
        state = self._restore()
        if state is not None:
            epoch, step = state
            self.model._initial_epoch = epoch
            self.model._initial_step = step
            self._epoch = epoch

    def _restore(self):
        """(epoch, step) from the latest backup (the previous one, with double_checkpoint, when the
        latest cannot be read), or None when there is none."""
        from .saving import load_training_state
        if not os.path.exists(self._path):
            if not (self.double_checkpoint and os.path.exists(self._prev_path)):
                return None
            metadata = load_training_state(self.model, self._prev_path)
        else:
            try:
                metadata = load_training_state(self.model, self._path)
            except (OSError, ValueError):
                if not (self.double_checkpoint and os.path.exists(self._prev_path)):
                    raise
                warnings.warn(f"BackupAndRestore: {self._path} cannot be read; restoring the previous backup "
                              f"{self._prev_path}", stacklevel=3)
                metadata = load_training_state(self.model, self._prev_path)
        epoch, step = metadata.get("epoch"), metadata.get("step", 0)
        if type(epoch) is not int or type(step) is not int or epoch < 0 or step < 0:
            raise ValueError(f"{self._path}: the backup's position must be non-negative integers; received "
                             f"epoch={epoch!r}, step={step!r}")
        return epoch, step

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.save_freq is False or self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            steps = (self.params or {}).get("steps")
            if steps is not None and batch + 1 >= steps:   # the epoch's last batch: resume at the next epoch
                self._save(self._epoch + 1, 0)
            else:
                self._save(self._epoch, batch + 1)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.save_freq == "epoch":
            self._save(epoch + 1, 0)

    def _save(self, epoch, step):
        from .saving import save_training_state
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint and os.path.exists(self._path):
            os.replace(self._path, self._prev_path)
        save_training_state(self.model, self._path, {"epoch": epoch, "step": step})

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if not self.delete_checkpoint:
            return
        for path in (self._path, self._prev_path):
            if os.path.exists(path):
                os.remove(path)
        try:
            os.rmdir(self.backup_dir)
        except OSError:   # absent, or holding other files: left as it is
            pass


class SwapEMAWeights(Callback):
    """Evaluate (and, with `swap_on_epoch`, checkpoint) with the exponential moving average of the
    weights that an optimizer built with `use_ema=True` keeps, while training goes on with the
    weights themselves.

    Around each evaluation (validation in `fit`, `evaluate`, `predict`) the model's trainable
    weights and their moving averages trade places, and trade back after it. With `swap_on_epoch`
    they also trade places at each epoch end, so that callbacks listed after this one (e.g.
    `ModelCheckpoint`) see the averages, and back at the next epoch's beginning; after the last
    epoch the model keeps the averages.

    Args:
        swap_on_epoch: Also hold the moving averages in the model from each epoch's end to the
            next epoch's beginning (and at the end of training).
    """

    def __init__(self, swap_on_epoch: bool = False) -> None:
        super().__init__()
        if not isinstance(swap_on_epoch, (bool, np.bool_)):
            raise ValueError(f"`swap_on_epoch` must be a bool; received swap_on_epoch={swap_on_epoch!r}")
        self.swap_on_epoch = bool(swap_on_epoch)
        self._ema_weights_in_model = False

    def _ema_optimizers(self):
        """The optimizers (inner ones of a wrapper or of a list) that keep moving averages; a
        ValueError naming the problem when there is none."""
        optimizer = getattr(self.model, "optimizer", None)
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        inner = list(getattr(optimizer, "optimizers", None) or [optimizer])
        with_ema = [opt for opt in inner if getattr(opt, "use_ema", False)]
        if not with_ema:
            raise ValueError("SwapEMAWeights must be used when `use_ema=True` is set on the optimizer. Received: "
                             f"use_ema={getattr(optimizer, 'use_ema', None)} (optimizer {optimizer!r})")
        for opt in with_ema:
            if getattr(opt, "_model_variables_moving_average", None) is None:
                raise ValueError("SwapEMAWeights: the optimizer has `use_ema=True` but no moving averages yet (it "
                                 "is built on the first training step): train before evaluating with them")
        return with_ema

    def _swap_variables(self):
        for opt in self._ema_optimizers():
            for var, average in zip(opt._trainable_variables, opt._model_variables_moving_average):
                weights = var.value.copy()
                var.assign(average.value)
                average.assign(weights)
        self._ema_weights_in_model = not self._ema_weights_in_model

    def _finalize_ema_values(self):
        """The model now holds the averages: make the averages hold them too, so that the trainer's
        final `finalize_variable_values` (which writes the averages into the model) keeps them."""
        for opt in self._ema_optimizers():
            for var, average in zip(opt._trainable_variables, opt._model_variables_moving_average):
                average.assign(var.value)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.swap_on_epoch and self._ema_weights_in_model:
            self._swap_variables()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.swap_on_epoch and not self._ema_weights_in_model:
            self._swap_variables()
            last = (self.params or {}).get("epochs")
            if (last is not None and epoch == last - 1) or getattr(self.model, "stop_training", False):
                self._finalize_ema_values()

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not self._ema_weights_in_model:
            self._swap_variables()

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._ema_weights_in_model:
            self._swap_variables()

    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.on_test_begin(logs)

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        self.on_test_end(logs)


def _get_lr(optimizer):
    if not hasattr(optimizer, "learning_rate"):
        raise ValueError('Optimizer must have a "learning_rate" attribute.')
    return float(np.asarray(optimizer.learning_rate))


def _set_lr(optimizer, value, who):
    try:
        optimizer.learning_rate = value
    except TypeError as exc:
        raise TypeError(f"{who} cannot set the learning rate of this optimizer: {exc}") from exc


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the learning rate by `factor` when the monitored quantity stops improving.

    After `patience` epochs without an improvement larger than `min_delta`, the rate becomes
    `max(lr * factor, min_lr)`; then `cooldown` epochs pass before counting resumes. Writes
    the current rate to `logs["learning_rate"]` at every epoch end.

    Args:
        monitor: Name of the quantity to monitor (e.g. `"val_loss"`).
        factor: Regularization factor.
        patience: Number of epochs with no improvement after which the action is taken.
        verbose: 0: silent, 1: a message when the callback acts.
        mode: `"fan_in"`, `"fan_out"` or `"fan_avg"`: which fan the variance is divided by.
        min_delta: Minimum change of the monitored quantity that counts as an improvement.
        cooldown: Number of epochs to wait after a reduction before resuming normal operation.
        min_lr: Lower bound on the learning rate.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, verbose: int = 0,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0,
                 **kwargs: Any) -> None:
        if "epsilon" in kwargs:  # Keras 2 name of min_delta
            min_delta = kwargs.pop("epsilon")
            warnings.warn("`epsilon` argument is deprecated, use `min_delta` instead.", stacklevel=2)
        if kwargs:
            warnings.warn(f"ReduceLROnPlateau ignores unknown arguments: {sorted(kwargs)}", stacklevel=2)
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}")
        self.factor = factor
        self.min_lr = min_lr
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.cooldown_counter = 0
        self.wait = 0

    def _reset(self):
        self.cooldown_counter = 0
        self.wait = 0
        self.best = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._reset()

    def in_cooldown(self) -> bool:
        """Whether the callback is waiting out its cooldown after a reduction."""
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        logs["learning_rate"] = _get_lr(self.model.optimizer)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(logs.keys())}.", stacklevel=3)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = _get_lr(self.model.optimizer)
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    _set_lr(self.model.optimizer, new_lr, "ReduceLROnPlateau")
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.",
                              flush=True)
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


def _accepts_two_positional(fn):
    """True / False from fn's signature; None when it cannot be inspected."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    count = 0
    for p in sig.parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            return True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count >= 2


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to `schedule(epoch, lr)` (0-based epoch).

    `schedule(epoch)` with one argument works too, as in Keras. Writes the rate to
    `logs["learning_rate"]` at every epoch end.

    Args:
        schedule: Function `schedule(epoch, lr)` (or `schedule(epoch)`) returning the new learning rate.
        verbose: 0: silent, 1: a message when the callback acts.
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule must be callable; received {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose

    def _new_lr(self, epoch, lr):
        two = _accepts_two_positional(self.schedule)
        if two is None:  # like Keras: try the two-argument form first
            try:
                return self.schedule(epoch, lr)
            except TypeError:
                return self.schedule(epoch)
        return self.schedule(epoch, lr) if two else self.schedule(epoch)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        optimizer = self.model.optimizer
        lr = self._new_lr(epoch, _get_lr(optimizer))
        if isinstance(lr, np.ndarray) and lr.ndim == 0:
            lr = lr.item()
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
            raise ValueError(f"The output of the `schedule` function should be a float. Got: {lr}")
        lr = float(lr)
        if not math.isfinite(lr):
            raise ValueError(f"The output of the `schedule` function should be a finite float. Got: {lr}")
        _set_lr(optimizer, lr, "LearningRateScheduler")
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.", flush=True)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = _get_lr(self.model.optimizer)


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite (checked after every training batch).

    Sets `model.stop_training = True` (fit ends after that batch: the epoch's end is still
    logged) and prints "Epoch E, batch B: Invalid loss (value), terminating training", or, with
    `raise_error=True`, raises RuntimeError at once (later callbacks' on_train_end do not run).
    E is numbered from 1, as the progress bar's "Epoch E/epochs"; B from 0, as the `batch`
    argument of the hooks and Keras's "Batch B: Invalid loss, terminating training".

    Args:
        raise_error: Raise a RuntimeError instead of only stopping the training when the loss is NaN.
    """

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = raise_error
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        loss = logs.get("loss")
        if loss is None:
            return
        loss = np.asarray(loss, dtype=np.float64)
        if np.all(np.isfinite(loss)):
            return
        value = loss.item() if loss.ndim == 0 else loss
        where = f"Epoch {self._epoch + 1}, batch {batch}"
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at {where.lower()}. Loss value: {value}. "
                               "Terminating training immediately.")
        print(f"{where}: Invalid loss ({value}), terminating training", flush=True)
        self.model.stop_training = True


class CSVLogger(Callback):
    """Stream the epoch logs to a CSV file: an "epoch" column (0-based) and one column per key.

    Args:
        filename: path of the CSV file.
        separator: field separator.
        append: append to an existing file (its header is kept) instead of overwriting it.
    """

    rank_zero_only = True

    def __init__(self, filename: str, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = append
        self.writer: Any = None
        self.keys: Any = None
        self.append_header = True
        self.csv_file: Any = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename, "r", encoding="utf-8") as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            self.append_header = True
            mode = "w"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode, newline="", encoding="utf-8")
        self.writer = None
        self.keys = None

    @staticmethod
    def _handle_value(value):
        if isinstance(value, str):
            return value
        if isinstance(value, np.ndarray) and value.ndim == 0:
            return value.item()
        if isinstance(value, collections.abc.Iterable):
            return f'"[{", ".join(map(str, value))}]"'
        return value

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.csv_file is None:  # driven without on_train_begin
            self.on_train_begin()
        csv_file: Any = self.csv_file   # (on_train_begin opened it)
        if self.keys is None:
            self.keys = sorted(logs.keys())
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys.extend(["val_" + k for k in self.keys])
        if self.writer is None:
            dialect = type("CynetCSVDialect", (csv.excel,), {"delimiter": self.sep, "lineterminator": "\n"})
            self.writer = csv.DictWriter(csv_file, fieldnames=["epoch"] + self.keys, dialect=dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, self._handle_value(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        csv_file.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


class TensorBoard(Callback):
    """Log metrics (and weight histograms) for TensorBoard, as Keras 3's `TensorBoard` writes them,
    without TensorFlow: event files under `log_dir/train` and `log_dir/validation`.

    Per epoch, `epoch_<name>` scalars at step = epoch: the training logs and the learning rate in
    `train`, the `val_` logs (prefix removed) in `validation`; after each evaluation (the
    validation of `fit` included), `evaluation_<name>_vs_iterations` at step = the optimizer's
    iterations in `validation`; with `update_freq` "batch" or N, `batch_<name>` scalars every N
    training batches (step = batches so far). View them with `tensorboard --logdir LOG_DIR`;
    `cynet.utils.tfevents.read_events` reads the files back.

    Args:
        log_dir: The directory of the runs (created when missing).
        histogram_freq: Every how many epochs to write the histogram of every weight
            (`<weight path>/histogram`); 0 never.
        write_graph: Accepted for compatibility; cynet writes no graph (TensorBoard's Graphs tab
            stays empty: there is no TensorFlow graph to show).
        write_images: Must be False: weights as images are not supported yet.
        write_steps_per_second: Also write `epoch_steps_per_second` (and `batch_steps_per_second`
            when batches are logged).
        update_freq: `"epoch"` (default), `"batch"`, or an int N: also log the batch logs every N
            training batches.
        profile_batch: Must be 0: profiling is not supported (Keras raises on its torch backend too).
        embeddings_freq: Must be 0: the embedding projector is not supported yet.
        embeddings_metadata: Must be None (with `embeddings_freq`).
    """

    rank_zero_only = True

    def __init__(self, log_dir: str | os.PathLike[str] = "logs", histogram_freq: int = 0, write_graph: bool = True,
                 write_images: bool = False, write_steps_per_second: bool = False, update_freq: str | int = "epoch",
                 profile_batch: Any = 0, embeddings_freq: int = 0, embeddings_metadata: Any = None) -> None:
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, numbers.Integral) or histogram_freq < 0:
            raise ValueError(f"histogram_freq must be a non-negative int; received histogram_freq={histogram_freq!r}")
        self.histogram_freq: int = int(histogram_freq)
        if update_freq == "batch":
            update_freq = 1
        elif update_freq != "epoch" and (isinstance(update_freq, bool) or not isinstance(update_freq, numbers.Integral)
                                         or update_freq < 1):
            raise ValueError(f"update_freq must be 'epoch', 'batch' or a positive int; received "
                             f"update_freq={update_freq!r}")
        self.update_freq: str | int = update_freq if update_freq == "epoch" else int(update_freq)
        for name, value, idle in (("write_images", write_images, False), ("profile_batch", profile_batch, 0),
                                  ("embeddings_freq", embeddings_freq, 0),
                                  ("embeddings_metadata", embeddings_metadata, None)):
            if value != idle and value is not idle:
                raise NotImplementedError(f"TensorBoard's {name} is not supported yet; pass {name}={idle!r} "
                                          f"(received {name}={value!r})")
        self.write_graph: bool = bool(write_graph)
        self.write_steps_per_second: bool = bool(write_steps_per_second)
        self._writers: dict[str, Any] = {}
        self._global_train_batch: int = 0
        self._batch_start: float = 0.0
        self._epoch_start: float = 0.0
        self._epoch_start_iterations: int = 0

    def _writer(self, run):
        from .utils.tfevents import EventFileWriter
        if run not in self._writers:
            self._writers[run] = EventFileWriter(os.path.join(self.log_dir, run))
        return self._writers[run]

    def _iterations(self):
        optimizer = getattr(self.model, "optimizer", None)
        return int(np.asarray(getattr(optimizer, "iterations", 0)))

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        self._close_writers()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._global_train_batch = 0

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._global_train_batch += 1
        if self.write_steps_per_second:
            self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step, every = self._global_train_batch, self.update_freq
        if not isinstance(every, int) or step % every:   # ("epoch": no batch logs)
            return
        writer = self._writer("train")
        if self.write_steps_per_second:
            writer.add_scalar("batch_steps_per_second", 1.0 / max(time.perf_counter() - self._batch_start, 1e-9), step)
        for name, value in (logs or {}).items():
            writer.add_scalar(f"batch_{name}", value, step)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.write_steps_per_second:
            self._epoch_start, self._epoch_start_iterations = time.perf_counter(), self._iterations()

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if getattr(self.model, "optimizer", None) is None:
            return
        writer = self._writer("validation")
        for name, value in (logs or {}).items():
            writer.add_scalar(f"evaluation_{name}_vs_iterations", value, self._iterations())
        writer.flush()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and hasattr(optimizer, "learning_rate"):
            train["learning_rate"] = _get_lr(optimizer)
        if self.write_steps_per_second:
            seconds = max(time.perf_counter() - self._epoch_start, 1e-9)
            train["steps_per_second"] = (self._iterations() - self._epoch_start_iterations) / seconds
        writer = self._writer("train")
        for name, value in train.items():
            writer.add_scalar(f"epoch_{name}", value, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            for layer in getattr(self.model, "layers", []):
                for weight in layer.weights:
                    writer.add_histogram(f"{weight.path}/histogram", np.asarray(weight.value), epoch)
        writer.flush()
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        if val:
            vwriter = self._writer("validation")
            for name, value in val.items():
                vwriter.add_scalar(f"epoch_{name}", value, epoch)
            vwriter.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._close_writers()

    def _close_writers(self):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


class LambdaCallback(Callback):
    """A callback built from plain functions, e.g. `LambdaCallback(on_epoch_end=lambda epoch, logs: ...)`.

    on_epoch_begin / on_epoch_end take (epoch, logs); on_train_begin / on_train_end take (logs);
    batch hooks take (batch, logs). Any other hook can be given by name as a keyword argument.

    Args:
        on_epoch_begin: Called as `on_epoch_begin(epoch, logs)`.
        on_epoch_end: Called as `on_epoch_end(epoch, logs)`.
        on_train_begin: Called as `on_train_begin(logs)`.
        on_train_end: Called as `on_train_end(logs)`.
        on_train_batch_begin: Called as `on_train_batch_begin(batch, logs)`.
        on_train_batch_end: Called as `on_train_batch_end(batch, logs)`.
    """

    def __init__(self, on_epoch_begin: Callable[..., Any] | None = None,
                 on_epoch_end: Callable[..., Any] | None = None, on_train_begin: Callable[..., Any] | None = None,
                 on_train_end: Callable[..., Any] | None = None,
                 on_train_batch_begin: Callable[..., Any] | None = None,
                 on_train_batch_end: Callable[..., Any] | None = None, **kwargs: Any) -> None:
        super().__init__()
        unknown = sorted(k for k in kwargs if k not in _HOOKS)
        if unknown:
            raise TypeError(f"LambdaCallback got unknown hook name(s) {unknown}; hooks are: {', '.join(_HOOKS)}")
        given = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, fn in given.items():
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError(f"LambdaCallback argument {name} must be callable; received {fn!r}")
            setattr(self, name, fn)
