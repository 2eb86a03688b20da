"""The Trainer: compile / fit / evaluate / predict and the *_on_batch methods, for every model
(Sequential, Functional, subclassed), as Keras 3's trainer (keras/src/trainers/trainer.py).

A training step runs the model's forward on a tape (cynet.tape), the losses give d loss / d output
for each output (or, when an output layer's activation is the one its loss fuses with, d loss /
d logits straight from one stable kernel), the tape's backward accumulates each trainable
Variable's gradient, and the optimizer applies them.

Data are NumPy arrays (or nested lists / dicts of them, one per model input and output). A model
provides `_prepare_x` (the inputs as its `call` takes them), `_output_names()` and
`_output_shapes(x)`; everything else lives here.
"""
import collections.abc
import contextlib
import inspect
import math
import numbers
from typing import Any
import signal
import threading

import numpy as np

from .. import _validation
from .. import activations, callbacks as callbacks_module, distributed, losses, metrics as metrics_module, optimizers
from .. import tape as _tape
from ..layers import base as _layer_base
from ..graph import flatten, map_structure, pack_like
from .data_adapters import class_weight_to_sample_weights, get_data_adapter, unpack_x_y_sample_weight
from .data_adapters.data_adapter_utils import is_iterator, is_py_dataset
from .._validation import check_finite as _check_finite  # (a module global: tests wrap it)
from ..kernels._backend import adapt_threads, array_cache
from ..ops import core as _opcore
from ..utils.rng import make_rng


class Trainer:
    """The training half of Model: needs `call`, `trainable_weights`, `losses` and the data hooks."""

    def _init_trainer(self):
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._initial_epoch = None   # set by a callback's on_train_begin to resume (BackupAndRestore)
        self._initial_step = None

    # ---------------------------------------------------------------- compile
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, loss_weights: Any = None, metrics: Any = None,
                weighted_metrics: Any = None, run_eagerly: bool = False, steps_per_execution: int = 1,
                jit_compile: bool | str = "auto", auto_scale_loss: bool = True) -> None:
        """Configure training: optimizer and loss (objects or Keras strings), metrics.

        For a model with several outputs, `loss`, `loss_weights`, `metrics` and `weighted_metrics`
        may be lists (one entry per output) or dicts keyed by output name; a single loss applies
        to every output. As in Keras 3, `metrics` ignore sample and class weights;
        `weighted_metrics` use them.

        Args:
            optimizer: Optimizer instance or name (e.g. `"adam"`); its default arguments when a name.
            loss: Loss: a Loss instance, a function `f(y_true, y_pred)` or a name; for several outputs a list
                or a dict keyed by output name.
            loss_weights: Optional scalar weights of the per-output losses (a list or a dict keyed by output
                name).
            metrics: List of metrics (instances, functions or names such as `"accuracy"`), evaluated without
                sample or class weights; per output, a list of lists or a dict.
            weighted_metrics: List of metrics evaluated with `sample_weight`/`class_weight`.
            run_eagerly: Accepted for Keras compatibility; cynet always runs eagerly (there is no graph
                compilation).
            steps_per_execution: Accepted for Keras compatibility and ignored (each batch is one step).
            jit_compile: Accepted for Keras compatibility and ignored (no XLA; the hot loops are compiled
                Cython).
            auto_scale_loss: Accepted for Keras compatibility and ignored (loss scaling is the optimizer's
                `loss_scale_factor`).
        """
        self.optimizer = optimizers.get(optimizer)
        per_output = isinstance(loss, (list, tuple)) or (isinstance(loss, dict) and "class_name" not in loss)
        self.loss = loss if loss is None or per_output else losses.get(loss)
        for arg, value in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
            if value is not None and not isinstance(value, (list, tuple, dict)):
                raise TypeError(f"{arg} must be a list (or, for several outputs, a list of lists or a dict); "
                                f"received {arg}={value!r}")
        if loss_weights is not None and not isinstance(loss_weights, (list, tuple, dict)):
            loss_weights = [loss_weights]
        self._compile_args = {"loss": self.loss, "loss_weights": loss_weights, "metrics": metrics,
                              "weighted_metrics": weighted_metrics}
        # (type: ignore below: the optimizer `get` made from a non-None argument is never None)
        self._compile_config = {"optimizer": optimizers.serialize(self.optimizer),  # type: ignore[arg-type]
                                "loss": _serialize_losses(self.loss), "loss_weights": loss_weights,
                                "metrics": _serialize_metrics(metrics),
                                "weighted_metrics": _serialize_metrics(weighted_metrics)}
        self._compiled_outputs: Any = None
        self.compiled = True
        names = self._output_names()
        if names is not None and loss is not None:   # a subclassed model learns its outputs at its first call
            self._resolve_compile(names)

    def _resolve_compile(self, names):
        """Per output: its loss, loss weight and [(metric, weighted)]; and the loss trackers."""
        args = self._compile_args
        per_loss = _per_output("loss", args["loss"], names, broadcast=True)
        weights = _per_output("loss_weights", args["loss_weights"], names, default=1.0)
        for name, w in zip(names, weights):
            if not _validation.is_real(w) or not math.isfinite(w) or w < 0:
                raise ValueError(f"loss_weights must be finite non-negative numbers; received {w!r} for output "
                                 f"{name!r}")
        per_loss = [None if l is None else losses.get(l) for l in per_loss]
        if all(l is None for l in per_loss) and args["loss"] is not None:
            raise ValueError("compile() needs a loss for at least one output (or loss=None, when the model adds "
                             "its own losses with add_loss or overrides compute_loss or train_step)")
        plain = _per_output("metrics", args["metrics"], names, broadcast=True, nested=True)
        weighted = _per_output("weighted_metrics", args["weighted_metrics"], names, broadcast=True, nested=True)
        metric_ids = [[(m, False) for m in p or []] + [(m, True) for m in w or []] for p, w in zip(plain, weighted)]
        self._compiled_outputs = [(name, l, float(w), ids) for name, l, w, ids in zip(names, per_loss, weights,
                                                                                     metric_ids)]
        self._metrics = self._build_metrics(fresh=False)
        self._loss_tracker = metrics_module.Mean(name="loss")
        multi = len(names) > 1
        self._output_loss_trackers = [metrics_module.Mean(name=f"{name}_loss") if multi and l is not None else None
                                      for name, l, _, _ in self._compiled_outputs]

    def _build_metrics(self, fresh):
        """Per output, [(metric, weighted)]; a weighted metric named "weighted_<name>" when a plain
        one has its name; with several outputs each name is prefixed by its output's; names made
        unique as Keras 3's logs make them."""
        multi = len(self._compiled_outputs) > 1
        built = []
        for name, loss, _, ids in self._compiled_outputs:
            mine, plain = [], set()
            for identifier, weighted in ids:
                if isinstance(identifier, (str, dict)) or not fresh:
                    metric = metrics_module.get(identifier, loss=loss)
                else:
                    metric = _fresh(identifier)
                if not weighted:
                    plain.add(metric.name)
                mine.append((metric, weighted))
            for metric, weighted in mine:
                if weighted and metric.name in plain and not metric.name.startswith("weighted_"):
                    metric.name = "weighted_" + metric.name
                if multi and not metric.name.startswith(name + "_"):
                    metric.name = f"{name}_{metric.name}"
            built.append(mine)
        # As Keras 3 reports them: a name met again (e.g. "precision" and a Precision() named
        # "precision") becomes name_1, name_2, ...; plain metrics first, then weighted ones.
        seen = {}
        for want_weighted in (False, True):
            for metric, weighted in (pair for mine in built for pair in mine):
                if weighted == want_weighted:
                    if metric.name in seen:
                        seen[metric.name] += 1
                        metric.name = f"{metric.name}_{seen[metric.name] - 1}"
                    else:
                        seen[metric.name] = 1
        return built

    @property
    def metrics(self) -> list[Any]:
        """The loss tracker and the compiled metric objects, as in Keras."""
        if not self.compiled or self._compiled_outputs is None:
            return []
        trackers = [t for t in self._output_loss_trackers if t is not None]
        return [self._loss_tracker] + trackers + [m for mine in self._metrics for m, _ in mine]

    @property
    def metrics_names(self) -> list[str]:
        """The names of the compiled metrics' results ("loss" first), as in `evaluate`'s list."""
        return [m.name for m in self.metrics] or ["loss"]

    def _check_compiled(self, x=None):
        """Refuse training or evaluating a model not compiled with a loss; resolve, for a subclassed
        model (whose outputs are known once it has run on x), the per-output compile arguments."""
        if not self.compiled:
            raise RuntimeError("You must call compile(optimizer, loss) before training or evaluating the model")
        if self._compiled_outputs is None and x is not None:
            self._resolve_compile(self._output_names(x))

    # ---------------------------------------------------------------- steps
    def _forward_on_tape(self, x, training):
        tape = _tape.Tape()
        token = _tape._active.set(tape)   # (`with _tape.recording(tape)`, without its generator: every step)
        try:
            y_pred = self._call_model(x, training)
        finally:
            _tape._active.reset(token)
        return tape, y_pred

    def _call_model(self, x, training):
        """The model's own `call` on x (a user-written one takes `training` only if it says so, and
        runs on Tensors while a tape records, so that its arithmetic and ops are recorded)."""
        kwargs = {"training": training} if self._call_takes_training else {}
        if self._user_call:
            tape = _tape.active()
            if isinstance(tape, _tape.Tape):
                return _opcore.run_user_call(tape, self.call, x, kwargs)
        return self.call(x, **kwargs)

    def _fused_record(self, tape, output, loss):
        """The tape's record of the call that made `output`, when its activation fuses with `loss`
        (softmax + crossentropy, sigmoid + binary crossentropy): the loss then reads its logits."""
        want = getattr(loss, "fusable_activation", None)
        if not want or getattr(loss, "from_logits", True):
            return None
        rec = tape.producer(output)
        if rec is None or rec.multi_out or not hasattr(rec.layer, "_backward_from_logits"):
            return None
        act = getattr(rec.layer, "activation", None)
        if isinstance(act, activations.Activation) and act.name == want and getattr(act, "axis", -1) == -1:
            return rec
        return None

    def _train_step(self, x, y, sample_weight):
        """One step on prepared data: (total loss, per-output losses, flat predictions)."""
        if y is None:   # a model trained only on the losses it adds
            y = [None] * len(self._compiled_outputs)
        tape, y_pred = self._forward_on_tape(x, training=True)
        preds = flatten(y_pred)
        if type(self).compute_loss is not Trainer.compute_loss:   # the model's own compute_loss, on the tape
            total = self._custom_loss_backward(tape, x, y, y_pred, sample_weight)
            self._apply_gradients(x)
            return total, [None] * len(self._compiled_outputs), preds
        seeds, replace, total, each = [], {}, 0.0, []
        for (name, loss_fn, w, _), yt, yp, sw in zip(self._compiled_outputs, y, preds, _weights_per(sample_weight, y)):
            if loss_fn is None:
                each.append(None)
                continue
            rec = self._fused_record(tape, yp, loss_fn)
            if rec is not None and rec not in replace:
                value, dz = loss_fn.fused_logits_backward(yt, rec.ctx.logits, sw)
                replace[rec] = _from_logits(rec.layer, dz if w == 1.0 else dz * dz.dtype.type(w))
            else:
                value, dy = loss_fn.forward_backward(yt, yp, sw)
                seeds.append((yp, dy if w == 1.0 else dy * dy.dtype.type(w)))
            each.append(value)
            total += w * value
        total += _added_losses(tape, seeds)
        if not seeds and not replace:
            raise ValueError(f"model '{self.name}' has no loss to minimize: give compile(loss=...), or add losses "
                             "in the model's call with self.add_loss(...)")
        penalties = _layer_base.step_losses(self) if _layer_base.may_have_penalties() else None
        if penalties:
            total += float(sum(penalties))
        tape.backward(seeds, replace=replace)
        self._apply_gradients(x)
        return total, each, preds

    def _apply_gradients(self, x):
        """The optimizer's step on the gradients the backward pass left in the variables."""
        variables = self.trainable_weights
        if not variables:
            self._check_layers_were_called()
        n = _num_samples(x)
        if getattr(self.optimizer, "distributed", False):   # averaged over ranks, weighted by shard size
            self.optimizer.apply([v.grad for v in variables], variables, sample_count=n)
        else:
            self.optimizer.apply([v.grad for v in variables], variables)

    def _custom_loss_backward(self, tape, x, y, y_pred, sample_weight):
        """Run the model's overridden compute_loss on the tape (y_pred as Tensors, so that its ops and
        arithmetic are recorded) and backpropagate from its result; returns the loss as a float."""
        with _tape.recording(tape):
            yp = map_structure(lambda a: _opcore.link(tape, a, _opcore.as_tensor), y_pred)
            batch = self._batch(x, y, sample_weight) if y is not None else (x, None)
            loss = self.compute_loss(x=x, y=batch[1], y_pred=yp, sample_weight=batch[2] if len(batch) > 2 else None,
                                     training=True)
        if not isinstance(loss, np.ndarray):
            raise TypeError(f"{type(self).__name__}.compute_loss must return the loss computed from y_pred with "
                            f"cynet.ops (an array the tape recorded); received {type(loss).__name__}")
        seeds = [(loss, np.ones(loss.shape, dtype=loss.dtype if loss.dtype.kind == "f" else np.float32))]
        tape.backward(seeds)
        return float(np.sum(loss))

    def _check_layers_were_called(self):
        """A model with nothing to train because its call never used its layers is a mistake."""
        unbuilt = [layer.name for layer in self._sublayers() if not layer.built]
        if unbuilt:
            raise ValueError(f"model '{self.name}' has no trainable weights: its layers {unbuilt} were never called "
                             "(a subclassed model's call must use the layers made in __init__)")

    def _test_step(self, x, y, sample_weight):
        """The losses of a forward pass on x; through the logits where an output activation fuses
        with its loss, so that evaluate reports what training minimises (no clipping of saturated
        probabilities)."""
        if y is None:
            y = [None] * len(self._compiled_outputs)
        tape, y_pred = self._forward_on_tape(x, training=False)
        preds = flatten(y_pred)
        total, each = 0.0, []
        for (name, loss_fn, w, _), yt, yp, sw in zip(self._compiled_outputs, y, preds, _weights_per(sample_weight, y)):
            if loss_fn is None:
                each.append(None)
                continue
            rec = self._fused_record(tape, yp, loss_fn)
            value = (loss_fn.fused_logits_backward(yt, rec.ctx.logits, sw)[0] if rec is not None
                     else loss_fn(yt, yp, sample_weight=sw))
            each.append(value)
            total += w * value
        total += _added_losses(tape, [])
        penalties = _layer_base.step_losses(self) if _layer_base.may_have_penalties() else None
        if penalties:
            total += float(sum(penalties))
        return total, each, preds

    # ---------------------------------------------------------------- the overridable steps (Keras 3 names)
    def train_step(self, data: Any) -> dict[str, Any]:
        """One training step on a batch, as fit and train_on_batch run it: `data` is (x, y) or
        (x, y, sample_weight) with x as the model's call takes it and y one array (a list, one per
        output, for several outputs). Runs forward on the tape, backward, the optimizer; returns
        the logs (loss and metrics so far this epoch). Override it to change what a step does.

        Args:
            data: A batch: `x`, `(x, y)` or `(x, y, sample_weight)`.
        """
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        y, sample_weight = self._as_output_list(y), self._as_output_list(sample_weight)
        total, each, preds = self._train_step(x, y, sample_weight)
        self._update_losses(total, each, _num_samples(x))
        return self.compute_metrics(x, y, preds, sample_weight)

    def _quiet_train_step(self, x, y, sample_weight, n):
        """train_step on fit's prepared batch (y and sample_weight per-output lists, or None; n
        samples), without its logs (fit builds them once, at the epoch's end, when no callback
        reads them batch by batch: see `_quiet_batches`)."""
        total, each, preds = self._train_step(x, y, sample_weight)
        self._update_losses(total, each, n)
        self._update_metrics(y, preds, sample_weight)

    def _quiet_batches(self, cbs, dist):
        """Whether fit may skip the per-batch logs and hooks: no callback does anything per
        training batch, the steps are Trainer's own (an override of train_step or compute_metrics
        returns logs of its own), and no data-parallel job (whose logs gather over all ranks at
        every batch). The epoch's logs are the same: the metrics' states after its last batch."""
        if dist or getattr(self.train_step, "__func__", None) is not Trainer.train_step \
                or getattr(self.compute_metrics, "__func__", None) is not Trainer.compute_metrics \
                or type(cbs) is not callbacks_module.CallbackList:
            return False
        base = callbacks_module.Callback
        for cb in cbs.callbacks:   # (a hook set on the instance counts too: it is no method of Callback's)
            if any(getattr(getattr(cb, hook), "__func__", None) is not getattr(base, hook) for hook in _BATCH_HOOKS):
                return False
        return True

    def test_step(self, data: Any) -> dict[str, Any]:
        """One evaluation step (evaluate, validation, test_on_batch) on `data` as in train_step.

        Args:
            data: A batch: `x`, `(x, y)` or `(x, y, sample_weight)`.
        """
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        y, sample_weight = self._as_output_list(y), self._as_output_list(sample_weight)
        total, each, preds = self._test_step(x, y, sample_weight)
        self._update_losses(total, each, _num_samples(x))
        return self.compute_metrics(x, y, preds, sample_weight)

    def predict_step(self, data: Any) -> Any:
        """The model's outputs on one batch (predict runs it): `data` is x, or (x,) / (x, y, ...).

        Args:
            data: A batch: `x`, `(x, y)` or `(x, y, sample_weight)`.
        """
        return self._call_model(unpack_x_y_sample_weight(data)[0], False)

    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None,
                     training: bool = True) -> Any:
        """The total loss of predictions `y_pred` against `y`: each output's compiled loss times its
        loss weight, plus the layers' regularization penalties (a float).

        Args:
            x: The batch's inputs.
            y: The batch's targets.
            y_pred: The model's predictions for `x`.
            sample_weight: The batch's sample weights, or `None`.
            training: Whether the loss is computed in training mode.
        """
        y, preds, sample_weight = (self._as_output_list(v) for v in (y, y_pred, sample_weight))
        total = 0.0
        for (_, loss_fn, w, _), yt, yp, sw in zip(self._compiled_outputs, y, preds, _weights_per(sample_weight, y)):
            if loss_fn is not None:   # (on a recording tape, a loss is an op: an override's super() call)
                term = loss_fn(yt, yp, sample_weight=sw)
                total = total + (term * w if w != 1.0 else term)
        penalties = _layer_base.step_losses(self) if _layer_base.may_have_penalties() else None
        return total + float(sum(penalties)) if penalties else total

    def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> dict[str, Any]:
        """Update the compiled metrics with a batch's predictions; return the logs (every metric's
        result, loss trackers included).

        Args:
            x: The batch's inputs.
            y: The batch's targets.
            y_pred: The model's predictions for `x`.
            sample_weight: The batch's sample weights, or `None`.
        """
        self._update_metrics(y, y_pred, sample_weight)
        return self._logs()

    def _update_metrics(self, y, y_pred, sample_weight):
        """compute_metrics's updates, without its logs."""
        if y is None:   # no targets (a model trained on the losses it adds): only the loss trackers
            return
        if self._metrics and any(self._metrics):
            y, preds, sample_weight = (self._as_output_list(v) for v in (y, y_pred, sample_weight))
            for mine, yt, yp, sw in zip(self._metrics, y, preds, _weights_per(sample_weight, y)):
                for m, weighted in mine:
                    m.update_state(yt, yp, sample_weight=sw if weighted else None)

    def _as_output_list(self, value):
        """A per-output list as the steps use it, from one array (a model with one output)."""
        if value is None or len(self._compiled_outputs) > 1:
            return value
        return value if isinstance(value, list) and len(value) == 1 and isinstance(value[0], np.ndarray) else [value]

    def _batch(self, x, y, sample_weight):
        """(x, y[, sample_weight]) as train_step and test_step take it: one array for one output."""
        if y is None:   # fit(x) alone: the step gets x, as in Keras
            return x
        if len(self._compiled_outputs) == 1:
            y = y[0]
            sample_weight = None if sample_weight is None else sample_weight[0]
        return (x, y) if sample_weight is None else (x, y, sample_weight)

    def _update_losses(self, total, each, n):
        self._loss_tracker.update_state(total, sample_weight=n)
        for tracker, value in zip(self._output_loss_trackers, each):
            if tracker is not None:
                tracker.update_state(value, sample_weight=n)

    def _logs(self, prefix="", dist=None):
        if dist is not None:   # the metrics over all ranks; each rank keeps its own running state
            local = dist.reduce_metrics(self.metrics)
            try:
                return self._logs(prefix)
            finally:
                dist.restore_metrics(self.metrics, local)
        return {prefix + m.name: m.result() for m in self.metrics}

    def _reset_metrics(self) -> None:
        """Reset the state of every compiled metric (and the loss tracker)."""
        for m in self.metrics:
            m.reset_state()

    reset_metrics = _reset_metrics

    # ---------------------------------------------------------------- data
    # Every argument is checked once per call, before any callback runs or any weight changes:
    # a bad argument raises ValueError (TypeError, catchable as ValueError, for a wrong type)
    # naming it, and never a failure half-way through training.
    def _input_array(self, value, label, convert, expected):
        """One input array of x, checked: non-empty, numeric, converted by `convert`, samples of the
        shape `expected(arr)` returns (None entries: any size), finite."""
        strings = self._takes_strings()
        given = _asarray(value, label, strings)
        if given.ndim == 0 or given.size == 0:
            raise ValueError(f"{label} must be a non-empty array with a batch axis; received shape {given.shape}")
        if given.dtype.kind not in "biuf" and not (strings and given.dtype.kind in "USO"):
            raise _validation.ArgumentTypeError(f"{label} must be numeric; received dtype {given.dtype}")
        with np.errstate(over="ignore"):  # a value the model's dtype cannot hold: _check_finite names it
            arr = convert(given)
        shape = expected(arr)
        if shape is not None and (len(shape) != arr.ndim - 1 or any(e is not None and e != a
                                                                     for e, a in zip(shape, arr.shape[1:]))):
            raise ValueError(f"{label} must have samples of shape {tuple(shape)}; received {label} with shape "
                             f"{arr.shape}")
        if arr.dtype.kind in "biuf":   # (strings, for a model whose first layer takes them, are checked by it)
            _check_finite(arr, label, given)
        return arr

    def _takes_strings(self):
        """Whether the model's inputs may be strings (a first layer such as StringLookup or
        TextVectorization, or an Input(dtype="string")); the model types override it."""
        return False

    def _prepare_y(self, y, x, name="y", x_name="x"):
        """y as a list of target arrays, one per output (None for an output without a loss), each
        one its loss accepts for the model's outputs on x."""
        outputs = self._compiled_outputs
        if y is None:
            custom = type(self).train_step is not Trainer.train_step or type(self).compute_loss is not Trainer.compute_loss
            if custom or all(o[1] is None for o in outputs):   # the model computes its own loss
                return None
            raise ValueError(f"{name} must be given to train or evaluate")
        names = [o[0] for o in outputs]
        given = _per_output(name, y, names, what="targets") if len(names) > 1 or isinstance(y, dict) else [y]
        shapes = self._output_shapes(x)
        n = _num_samples(x)
        prepared = []
        for (out, loss_fn, _, _), target, shape in zip(outputs, given, shapes):
            label = name if len(names) == 1 else f"{name}[{out!r}]"
            if loss_fn is None or target is None:
                if loss_fn is not None:
                    raise ValueError(f"{name} has no targets for the output {out!r}, which has a loss")
                prepared.append(None)
                continue
            arr = _asarray(target, label)
            if arr.ndim == 0 or arr.shape[0] != n:
                raise ValueError(f"{x_name} and {label} must have the same number of samples; received {n} and "
                                 f"{arr.shape[0] if arr.ndim else 'a scalar'}")
            if arr.dtype.kind not in "biuf":
                raise _validation.ArgumentTypeError(f"{label} must be numeric; received dtype {arr.dtype}")
            _check_finite(arr, label)
            loss_fn.check_targets(arr, shape, name=label)
            prepared.append(arr)
        return prepared

    def _prepare_sample_weight(self, sample_weight, x, name="sample_weight"):
        """sample_weight as float64 arrays, one per output (a single array serves every output), or
        None: one finite, non-negative entry per sample (or per sample and output position,
        broadcasting as the loss does)."""
        if sample_weight is None:
            return None
        names = [o[0] for o in self._compiled_outputs]
        if isinstance(sample_weight, (list, tuple, dict)) and len(names) > 1:
            given = _per_output(name, sample_weight, names, what="sample weights")
        else:
            given = [sample_weight] * len(names)
        return [None if w is None else self._one_sample_weight(w, x, shape, name if len(names) == 1 else
                                                               f"{name}[{out!r}]")
                for w, shape, out in zip(given, self._output_shapes(x), names)]

    def _one_sample_weight(self, sample_weight, x, output_shape, name):
        weights = _asarray(sample_weight, name)
        if weights.dtype.kind not in "biuf":
            raise _validation.ArgumentTypeError(f"{name} must be numeric; received dtype {weights.dtype}")
        weights = weights.astype(np.float64, copy=False)
        n = _num_samples(x)
        if weights.ndim == 0 or weights.shape[0] != n:
            raise ValueError(f"{name} must have one entry per sample ({n}); received shape {weights.shape}")
        per_sample = (n,) + tuple(output_shape)[1:-1]    # the losses' per-sample values
        shape = weights.shape[:-1] if weights.ndim == len(per_sample) + 1 and weights.shape[-1] == 1 else weights.shape
        if len(shape) > len(per_sample) or any(w != 1 and v is not None and w != v
                                               for w, v in zip(shape, per_sample)):
            raise ValueError(f"{name} must have shape {per_sample[:1]} (or broadcast to the per-sample loss shape "
                             f"{per_sample}); received shape {weights.shape}")
        _check_finite(weights, name)
        if weights.min() < 0:
            raise ValueError(f"{name} must be non-negative; received "
                             f"{_validation.first_entry(name, weights < 0, weights)}")
        return weights

    def _class_weights(self, y, x, class_weight):
        """Per-sample weights from class_weight {class index: weight}: classes are y's argmax for
        one-hot targets and the rounded label otherwise, as in Keras; a class not in the dict
        weighs 1. Only for a model with one output, as in Keras."""
        if len(y) != 1:
            raise ValueError("class_weight is only supported for models with one output; give sample_weight per "
                             "output instead")
        units = self._output_shapes(x)[0][-1]
        return [class_weight_to_sample_weights(y[0], class_weight, None if units is None else max(int(units), 2))]

    # ---------------------------------------------------------------- fit
    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: int | str = "auto", callbacks: list[Any] | None = None, validation_split: float = 0.0,
            validation_data: Any = None, shuffle: bool | str = True, class_weight: dict[int, float] | None = None,
            sample_weight: Any = None, initial_epoch: int = 0, steps_per_epoch: int | None = None,
            validation_steps: int | None = None, validation_batch_size: int | None = None,
            validation_freq: int = 1) -> Any:
        """Train for `epochs` epochs (the final epoch index when resuming with initial_epoch).

        Returns a History whose `history` dict holds per-epoch lists ("loss", metrics, "val_*").
        Every argument is checked before training starts. A KeyboardInterrupt (Ctrl-C) that
        arrives during a training step is held back until the step has finished, so the model
        keeps the weights of the last completed batch.

        Args:
            x: Input data: a NumPy array (or a list/dict of arrays for several inputs), a generator, or a
                `PyDataset` yielding batches.
            y: Target data, like `x` (arrays); `None` when `x` is a generator or PyDataset yielding `(x, y)`.
            batch_size: Number of samples per batch (default 32); not used with generators or PyDatasets.
            epochs: Index of the last epoch to train (with `initial_epoch`, the number of epochs is their
                difference).
            verbose: `"auto"`, 0 (silent), 1 (progress bar) or 2 (one line per epoch).
            callbacks: List of `cynet.callbacks.Callback` instances.
            validation_split: Float in [0, 1): the fraction of the training data (its last samples, before
                shuffling) held out for validation.
            validation_data: Data to evaluate at the end of each epoch: `(x_val, y_val)`, `(x_val, y_val,
                val_sample_weight)`, a generator or a PyDataset.
            shuffle: Whether to shuffle the training samples before each epoch (arrays only).
            class_weight: Optional dict mapping class indices to weights of the loss (single-output models).
            sample_weight: Optional per-sample weights, an array of shape `(samples,)` (per output: a list or
                dict).
            initial_epoch: Epoch at which to start training (to resume a previous run).
            steps_per_epoch: Number of batches per epoch (default: the whole data set, or the generator until
                exhausted).
            validation_steps: Number of validation batches to draw from a validation generator (default: all).
            validation_batch_size: Batch size of the validation (default `batch_size`).
            validation_freq: Run validation every this many epochs.
        """
        self._check_compiled()
        batch_size = _validation.positive_int("batch_size", batch_size, bounded=False, default=32)
        epochs = _validation.nonnegative_int("epochs", epochs, bounded=False)
        initial_epoch = _validation.nonnegative_int("initial_epoch", initial_epoch, bounded=False)
        steps_per_epoch = _validation.positive_int("steps_per_epoch", steps_per_epoch, bounded=False, default=None)
        validation_batch_size = _validation.positive_int("validation_batch_size", validation_batch_size, bounded=False,
                                                         default=None)
        validation_freq = _validation.positive_int("validation_freq", validation_freq, bounded=False, default=1)
        verbose = _validation.verbose(verbose)
        if not _validation.is_real(validation_split):
            raise _validation.ArgumentTypeError(f"validation_split must be a float in [0, 1); "
                                                f"received validation_split={validation_split!r}")
        if not 0.0 <= float(validation_split) < 1.0:
            raise ValueError(f"validation_split must be in [0, 1); received validation_split={validation_split!r}")
        _one_of_the_weights(sample_weight, class_weight)
        if _is_stream(x):
            if validation_split:
                raise ValueError("validation_split is only supported for arrays; received x as a "
                                 f"{type(x).__name__}: pass validation_data instead")
            return self._fit_stream(x, y, sample_weight, class_weight, epochs, initial_epoch, steps_per_epoch,
                                    shuffle, callbacks, verbose, validation_data, validation_steps,
                                    validation_batch_size or batch_size, validation_freq)
        x = self._prepare_x(x)
        self._check_compiled(x)
        y = self._prepare_y(y, x)
        weights = self._prepare_sample_weight(sample_weight, x)
        val = self._prepare_validation(validation_data)
        if val is None and validation_split:
            n = _num_samples(x)
            split = int(math.floor(n * (1.0 - validation_split)))  # Keras: the last samples validate
            if split == 0 or split == n:
                raise ValueError(f"validation_split={validation_split} leaves no training or no validation samples "
                                 f"out of {n}")
            val = (_take(x, slice(split, None)), _take(y, slice(split, None)), _take(weights, slice(split, None)))
            x, y, weights = _take(x, slice(0, split)), _take(y, slice(0, split)), _take(weights, slice(0, split))
        if class_weight is not None:  # training samples only, as in Keras
            weights = self._class_weights(y, x, class_weight)
        n = _num_samples(x)
        dist = distributed.of(self)  # data-parallel: each rank trains on its shard of every global batch
        global_batch = batch_size * (dist.size if dist else 1)
        steps = steps_per_epoch or math.ceil(n / global_batch)
        cbs = callbacks_module.CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=self,
                                            rank_zero=dist is None or dist.rank == 0,
                                            verbose=verbose, epochs=epochs, steps=steps)
        self.stop_training = False
        with _AtomicSteps() as atomic, array_cache():
            rng = make_rng(None)
            if dist:
                dist.start(self, rng)
            cbs.on_train_begin()
            initial_epoch, first_step = self._resume_point(initial_epoch)
            logs = {}
            for epoch in range(initial_epoch, epochs):
                self._reset_metrics()
                cbs.on_epoch_begin(epoch)
                quiet = self._quiet_batches(cbs, dist)
                order = rng.permutation(n) if shuffle else None
                for step in range(first_step if epoch == initial_epoch else 0, steps):
                    start = (step * global_batch) % n
                    idx = (slice(start, min(start + global_batch, n)) if order is None
                           else order[start:start + global_batch])
                    if dist:
                        idx = dist.shard(idx)
                    logs = self._run_train_batch(cbs, atomic, step, _take(x, idx), _take(y, idx), _take(weights, idx),
                                                 dist, quiet)
                    if dist:
                        self.stop_training = dist.any(self.stop_training)
                    if self.stop_training:
                        break
                epoch_logs = dict(self._logs() if logs is None else logs)
                if val is not None and (epoch + 1) % validation_freq == 0:
                    epoch_logs.update(self._validation_logs(val, validation_steps, validation_batch_size or batch_size,
                                                            cbs))
                cbs.on_epoch_end(epoch, epoch_logs)
                logs = epoch_logs
                if dist:
                    self.stop_training = dist.any(self.stop_training)
                if self.stop_training:
                    break
            self.optimizer.finalize_variable_values(self.trainable_weights)
            cbs.on_train_end(logs)
        self.history = cbs.history
        return self.history

    def _resume_point(self, initial_epoch):
        """The epoch, and the step in it, at which fit starts: `initial_epoch` and 0, unless a callback's
        on_train_begin set `model._initial_epoch` (Keras's hook, which BackupAndRestore uses) and
        cynet's `model._initial_step`. Both are consumed: the next fit starts afresh."""
        epoch, step = getattr(self, "_initial_epoch", None), getattr(self, "_initial_step", None)
        self._initial_epoch = self._initial_step = None
        if epoch is None:
            return initial_epoch, 0
        return int(epoch), int(step or 0)

    def _prepare_validation(self, validation_data):
        """validation_data as a generator or PyDataset (read at each validation), or as prepared
        arrays (x, y, sample_weight); None stays None."""
        if validation_data is None or _is_stream(validation_data):
            return validation_data
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight), a "
                             f"generator or a PyDataset; received {_describe(validation_data)}")
        vx = self._prepare_x(validation_data[0], "validation_data[0]")
        self._check_compiled(vx)
        vy = self._prepare_y(validation_data[1], vx, "validation_data[1]", "validation_data[0]")
        vw = None if len(validation_data) == 2 else self._prepare_sample_weight(validation_data[2], vx,
                                                                                "validation_data[2]")
        return vx, vy, vw

    def _validation_logs(self, val, steps, batch_size, cbs):
        """The "val_" logs of one validation pass over prepared arrays or a stream."""
        logs = (self._evaluate_stream(val, steps, cbs) if _is_stream(val) else
                self._evaluate_arrays(*val, batch_size=batch_size, cbs=cbs))
        return {"val_" + k: v for k, v in logs.items()}

    # ---------------------------------------------------------------- generators and PyDatasets
    def _prepared_batch(self, batch):
        """A batch from a data adapter ((x,), (x, y) or (x, y, sample_weight)), checked and
        converted as fit checks arrays."""
        bx, by, bw = unpack_x_y_sample_weight(batch)
        xb = self._prepare_x(bx)
        self._check_compiled(xb)
        yb = self._prepare_y(by, xb)
        return xb, yb, self._prepare_sample_weight(bw, xb)

    def _fit_stream(self, x, y, sample_weight, class_weight, epochs, initial_epoch, steps_per_epoch, shuffle,
                    callbacks, verbose, validation_data, validation_steps, validation_batch_size, validation_freq):
        """fit on a Python generator or iterator, or a PyDataset, through its data adapter: each
        batch is checked as arrays are; memory stays bounded (no batch is kept past its step)."""
        if distributed.of(self):
            raise NotImplementedError("data-parallel training takes NumPy arrays; generators and PyDatasets are not "
                                      "supported there yet")
        adapter = get_data_adapter(x, y, sample_weight, steps_per_epoch=steps_per_epoch,
                                   shuffle=shuffle if is_py_dataset(x) else False,   # a generator's order is its own
                                   class_weight=class_weight)
        val = self._prepare_validation(validation_data)
        cbs = callbacks_module.CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=self,
                                            rank_zero=True, verbose=verbose, epochs=epochs, steps=adapter.num_batches)
        self.stop_training = False
        try:
            with _AtomicSteps() as atomic, array_cache():
                cbs.on_train_begin()
                initial_epoch, first_step = self._resume_point(initial_epoch)
                logs = {}
                for epoch in range(initial_epoch, epochs):
                    self._reset_metrics()
                    adapter.on_epoch_begin()
                    cbs.on_epoch_begin(epoch)
                    step = -1
                    quiet = self._quiet_batches(cbs, None)
                    try:
                        for step, batch in enumerate(adapter.get_numpy_iterator()):
                            if epoch == initial_epoch and step < first_step:
                                continue   # trained before the run was interrupted (BackupAndRestore)
                            xb, yb, wb = self._prepared_batch(batch)
                            logs = self._run_train_batch(cbs, atomic, step, xb, yb, wb, None, quiet)
                            if self.stop_training:
                                break
                    finally:
                        adapter.on_epoch_end()
                    if step < 0 and adapter.ran_out_of_data:
                        break
                    epoch_logs = dict(self._logs() if logs is None else logs)
                    if val is not None and (epoch + 1) % validation_freq == 0:
                        epoch_logs.update(self._validation_logs(val, validation_steps, validation_batch_size, cbs))
                    cbs.on_epoch_end(epoch, epoch_logs)
                    logs = epoch_logs
                    if self.stop_training or adapter.ran_out_of_data:
                        break
                self.optimizer.finalize_variable_values(self.trainable_weights)
                cbs.on_train_end(logs)
        finally:
            adapter.close()
        self.history = cbs.history
        return self.history

    def _run_train_batch(self, cbs, atomic, step, xb, yb, wb, dist, quiet=False):
        """One training batch between its callbacks; a KeyboardInterrupt waits for the step to end.
        Returns the logs, or None when `quiet` (no callback reads them: see `_quiet_batches`)."""
        adapt_threads()
        nb = _num_samples(xb)
        if quiet and nb:
            atomic.active = True
            try:
                self._quiet_train_step(xb, yb, wb, nb)
            finally:
                atomic.release()
            return None
        cbs.on_train_batch_begin(step)
        atomic.active = True
        try:
            if nb:
                logs = self.train_step(self._batch(xb, yb, wb))
            else:   # a rank with an empty shard still joins the gradient Allreduce
                self.optimizer.apply(None, self.trainable_weights)
        finally:
            atomic.release()
        if dist or not nb:
            logs = self._logs(dist=dist)
        cbs.on_train_batch_end(step, logs)
        return logs

    def _evaluate_stream(self, data, steps, cbs):
        """The logs of evaluating a generator or PyDataset (at most `steps` batches), with fresh
        metric states (the training ones are kept)."""
        adapter = get_data_adapter(data, steps_per_epoch=steps)
        with self._fresh_metric_states():
            try:
                cbs.on_test_begin()
                adapter.on_epoch_begin()
                for step, batch in enumerate(adapter.get_numpy_iterator()):
                    adapt_threads()
                    cbs.on_test_batch_begin(step)
                    cbs.on_test_batch_end(step, self.test_step(self._batch(*self._prepared_batch(batch))))
                adapter.on_epoch_end()
            finally:
                adapter.close()
            logs = self._logs()
            cbs.on_test_end(logs)
        return logs

    # ---------------------------------------------------------------- evaluate / predict
    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None, verbose: int | str = "auto",
                 sample_weight: Any = None, steps: int | None = None, callbacks: list[Any] | None = None,
                 return_dict: bool = False) -> Any:
        """Loss (and metrics) over (x, y): a scalar, `[loss, *metrics]`, or a dict with return_dict=True.

        Args:
            x: Input data: a NumPy array (or a list/dict of arrays for several inputs), a generator, or a
                `PyDataset` yielding batches.
            y: Target data, like `x` (arrays); `None` when `x` is a generator or PyDataset yielding `(x, y)`.
            batch_size: Number of samples per batch (default 32); not used with generators or PyDatasets.
            verbose: `"auto"`, 0 (silent), 1 (progress bar) or 2 (one line per epoch).
            sample_weight: Optional per-sample weights, an array of shape `(samples,)` (per output: a list or
                dict).
            steps: Number of batches to run (default: the whole data set, or the generator until exhausted).
            callbacks: List of `cynet.callbacks.Callback` instances.
            return_dict: If `True`, return a dict `{name: value}` instead of a list.
        """
        self._check_compiled()
        batch_size = _validation.positive_int("batch_size", batch_size, bounded=False, default=32)
        verbose = _validation.verbose(verbose)
        if _is_stream(x):
            if y is not None or sample_weight is not None:
                raise ValueError("When x is a generator or a PyDataset, y and sample_weight come in its batches; "
                                 "do not pass them to evaluate")
            steps = _validation.positive_int("steps", steps, bounded=False, default=None)
            cbs = callbacks_module.CallbackList(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose,
                                                rank_zero=distributed.rank() == 0, epochs=1, steps=steps)
            with array_cache():
                return self._result(return_dict, self._evaluate_stream(x, steps, cbs))
        x = self._prepare_x(x)
        self._check_compiled(x)
        y = self._prepare_y(y, x)
        weights = self._prepare_sample_weight(sample_weight, x)
        cbs = callbacks_module.CallbackList(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose,
                                            rank_zero=distributed.rank() == 0,
                                            epochs=1, steps=math.ceil(_num_samples(x) / batch_size))
        with array_cache():
            return self._result(return_dict, self._evaluate_arrays(x, y, weights, batch_size, cbs))

    def _evaluate_arrays(self, x, y, weights, batch_size, cbs):
        """The logs of evaluating prepared arrays, with fresh metric states (the training ones are kept).
        Data-parallel, each rank evaluates its part of the arrays and the logs are over all ranks."""
        dist = distributed.of(self)
        if dist:
            part = dist.split(_num_samples(x))
            x, y, weights = _take(x, part), _take(y, part), _take(weights, part)
        n = _num_samples(x)
        nsteps = math.ceil(n / batch_size)
        with self._fresh_metric_states():
            cbs.on_test_begin()
            for step in range(nsteps):
                sl = slice(step * batch_size, min((step + 1) * batch_size, n))
                adapt_threads()
                cbs.on_test_batch_begin(step)
                cbs.on_test_batch_end(step, self.test_step(self._batch(_take(x, sl), _take(y, sl),
                                                                       _take(weights, sl))))
            logs = self._logs(dist=dist)
            cbs.on_test_end(logs)
        return logs

    @contextlib.contextmanager
    def _fresh_metric_states(self):
        """Evaluation's own loss trackers and metrics; the training ones are restored after."""
        saved = (self._loss_tracker, self._output_loss_trackers, self._metrics)
        self._loss_tracker = metrics_module.Mean(name="loss")
        self._output_loss_trackers = [None if t is None else metrics_module.Mean(name=t.name)
                                      for t in self._output_loss_trackers]
        self._metrics = self._build_metrics(fresh=True)
        try:
            yield
        finally:
            self._loss_tracker, self._output_loss_trackers, self._metrics = saved

    def predict(self, x: Any, batch_size: int | None = None, verbose: int | str = "auto", steps: int | None = None,
                callbacks: list[Any] | None = None) -> Any:
        """Model outputs for x, batch by batch: one NumPy array (or the model's structure of them).

        Args:
            x: Input data: a NumPy array (or a list/dict of arrays for several inputs), a generator, or a
                `PyDataset` yielding batches.
            batch_size: Number of samples per batch (default 32); not used with generators or PyDatasets.
            verbose: `"auto"`, 0 (silent), 1 (progress bar) or 2 (one line per epoch).
            steps: Number of batches to run (default: the whole data set, or the generator until exhausted).
            callbacks: List of `Callback`s: their `on_predict_begin`, `on_predict_batch_begin`,
                `on_predict_batch_end` (logs `{"outputs": batch outputs}`, as in Keras) and `on_predict_end`
                hooks are called.
        """
        batch_size = _validation.positive_int("batch_size", batch_size, bounded=False, default=32)
        verbose = _validation.verbose(verbose)
        if _is_stream(x):
            steps = _validation.positive_int("steps", steps, bounded=False, default=None)
            batches = self._predict_batches(x, steps)
            total = steps if steps is not None else getattr(x, "num_batches", None)
        else:
            x = self._prepare_x(x)
            n = _num_samples(x)
            batches = (_take(x, slice(i, i + batch_size)) for i in range(0, n, batch_size))
            total = -(-n // batch_size)
        # Keras's progress bar (verbose 1) or its one closing line (2); without it and without
        # callbacks the loop calls no hooks at all (a one-sample predict stays a bare forward pass)
        cbs = callbacks_module.CallbackList(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose,
                                            rank_zero=distributed.rank() == 0, epochs=1, steps=total) \
            if callbacks or verbose else None
        with array_cache(), _tape.recording(_tape.NO_RECORD):
            if cbs is not None:
                cbs.on_predict_begin()
            outs = []
            for step, xb in enumerate(batches):
                if cbs is not None:
                    cbs.on_predict_batch_begin(step)
                outs.append(self.predict_step((xb,)))
                if cbs is not None:
                    cbs.on_predict_batch_end(step, {"outputs": outs[-1]})
            if not outs:
                raise ValueError("predict received no batches from the generator or PyDataset" if _is_stream(x)
                                 else "predict received no samples")
            if cbs is not None:
                cbs.on_predict_end()
            flat = [flatten(o) for o in outs]
            joined = [np.concatenate(parts, axis=0) if len(parts) > 1 else np.array(parts[0], copy=True)
                      for parts in zip(*flat)]
            return _pack(outs[0], joined)

    def _predict_batches(self, data, steps):
        """The prepared input batches of a generator or PyDataset (at most `steps`)."""
        adapter = get_data_adapter(data, steps_per_epoch=steps)
        try:
            adapter.on_epoch_begin()
            for batch in adapter.get_numpy_iterator():
                yield self._prepare_x(unpack_x_y_sample_weight(batch)[0])
            adapter.on_epoch_end()
        finally:
            adapter.close()

    def train_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                       class_weight: dict[int, float] | None = None, return_dict: bool = False) -> Any:
        """One training step on (x, y); a KeyboardInterrupt during it is held back until it ends.

        Args:
            x: One batch of inputs (an array, or a list/dict of arrays).
            y: The batch's targets.
            sample_weight: Optional per-sample weights of the batch.
            class_weight: Optional dict mapping class indices to weights of the loss (single-output models).
            return_dict: If `True`, return a dict `{name: value}` instead of a list.
        """
        self._check_compiled()
        _one_of_the_weights(sample_weight, class_weight)
        x = self._prepare_x(x)
        self._check_compiled(x)
        y = self._prepare_y(y, x)
        w = self._prepare_sample_weight(sample_weight, x)
        if class_weight is not None:
            w = self._class_weights(y, x, class_weight)
        self._reset_metrics()
        with _AtomicSteps() as atomic:
            atomic.active = True
            try:
                logs = self.train_step(self._batch(x, y, w))
            finally:
                atomic.release()
        return self._result(return_dict, logs)

    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False) -> Any:
        """Loss (and metrics) on one batch, without updating the weights: a scalar, a list, or a dict with
        `return_dict=True`.

        Args:
            x: One batch of inputs (an array, or a list/dict of arrays).
            y: The batch's targets.
            sample_weight: Optional per-sample weights of the batch.
            return_dict: If `True`, return a dict `{name: value}` instead of a list.
        """
        self._check_compiled()
        x = self._prepare_x(x)
        self._check_compiled(x)
        y = self._prepare_y(y, x)
        weights = self._prepare_sample_weight(sample_weight, x)
        cbs = callbacks_module.CallbackList(None, model=self, verbose=0, epochs=1, steps=1)
        return self._result(return_dict, self._evaluate_arrays(x, y, weights, _num_samples(x), cbs))

    def predict_on_batch(self, x: Any) -> Any:
        """The model's outputs on one batch (NumPy arrays in the model's output structure).

        Args:
            x: One batch of inputs (an array, or a list/dict of arrays).
        """
        with _tape.recording(_tape.NO_RECORD):
            out = self.predict_step((self._prepare_x(x),))
            return _pack(out, [np.array(o, copy=True) for o in flatten(out)])

    def _result(self, return_dict, logs=None):
        logs = self._logs() if logs is None else logs
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values



# -------------------------------------------------------------------- argument checks
# -------------------------------------------------------------------- structures of arrays
_BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")


def _is_stream(x):
    """A Python generator or iterator, or a PyDataset: data fit reads batch by batch."""
    return is_py_dataset(x) or is_iterator(x)


def _num_samples(x):
    return x.shape[0] if type(x) is np.ndarray else flatten(x)[0].shape[0]


def _take(structure, idx):
    """The rows `idx` of every array of a structure (None stays None)."""
    if structure is None:
        return None
    if type(structure) is np.ndarray:   # (every batch of fit: no walk over a structure)
        return structure[idx]
    if type(structure) is list and len(structure) == 1 and type(structure[0]) is np.ndarray:
        return [structure[0][idx]]
    return map_structure(lambda a: None if a is None else a[idx], structure)


def _pack(template, flat):
    """`flat` arrays in the structure of `template` (one array when it is one)."""
    return pack_like(template, flat) if isinstance(template, (list, tuple, dict)) else flat[0]


def _weights_per(sample_weight, y):
    return [None] * len(y) if sample_weight is None else sample_weight


def _per_output(arg, value, names, broadcast=False, nested=False, default=None, what=None):
    """`value` (a compile or fit argument) as a list, one entry per output named in `names`: a dict
    keyed by output name (a missing name gets `default`), a list with one entry per output, or,
    with `broadcast`, one value for every output. `nested`: entries are lists (metrics)."""
    n = len(names)
    what = what or "entries"
    if value is None:
        return [default] * n
    if isinstance(value, dict):
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ValueError(f"{arg} has {what} for {unknown}, which are not outputs of the model; its outputs are "
                             f"{names}")
        return [value.get(name, default) for name in names]
    if isinstance(value, (list, tuple)):
        if nested:
            if n == 1:
                return [list(value[0])] if len(value) == 1 and isinstance(value[0], (list, tuple)) else [list(value)]
            if all(isinstance(v, (list, tuple)) or v is None for v in value):
                if len(value) != n:
                    raise ValueError(f"{arg} must have one list per output ({n}: {names}); received {len(value)}")
                return [None if v is None else list(v) for v in value]
            return [list(value)] * n   # a flat list: every output
        if len(value) != n:
            raise ValueError(f"{arg} must have one entry per output ({n}: {names}); received a "
                             f"{type(value).__name__} of {len(value)}")
        return list(value)
    if broadcast or n == 1:
        return [value] * n
    raise ValueError(f"{arg} must be a list or a dict with one entry per output ({n}: {names}); received "
                     f"{type(value).__name__}")


def _added_losses(tape, seeds):
    """The sum of the losses the call added (Layer.add_loss) on `tape`; each becomes a seed of the
    backward pass (gradient 1: the total loss is their sum)."""
    total = 0.0
    for _, value in tape.added_losses:
        arr = np.asarray(value)
        total += float(np.sum(arr))
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            seeds.append((value, np.ones(value.shape, dtype=value.dtype)))
    return total


def _serialize_losses(loss):
    if loss is None:
        return None
    if isinstance(loss, dict):
        return {k: _serialize_losses(v) for k, v in loss.items()}
    if isinstance(loss, (list, tuple)):
        return [_serialize_losses(v) for v in loss]
    return loss if isinstance(loss, str) else losses.serialize(losses.get(loss))


def _serialize_metrics(metrics):
    """compile's metrics as JSON: names stay names, metric objects become their configs (so that
    their settings survive saving), per-output lists and dicts keep their structure."""
    if metrics is None:
        return []
    if isinstance(metrics, str) or (isinstance(metrics, dict) and "class_name" in metrics):
        return metrics
    if isinstance(metrics, dict):
        return {k: _serialize_metrics(v) for k, v in metrics.items()}
    if isinstance(metrics, (list, tuple)):
        return [_serialize_metrics(m) for m in metrics]
    return metrics_module.serialize(metrics)


_ARRAY_ITEMS = (numbers.Number, np.generic, np.ndarray, list, tuple)


def _refuse_unsupported_data(value, name, strings=False):
    """Refuse, before NumPy looks at it, data that is not an array-like of numbers.

    np.asarray would turn a generator into a 0-d object array and walk any object with __len__
    and __getitem__ (a PyDataset or Sequence) item by item, allocating without bound. Lists and
    tuples are checked at their top level and along their first items."""
    while True:
        if isinstance(value, (np.ndarray, numbers.Number, np.generic)) or hasattr(value, "__array__") \
                or hasattr(value, "__array_interface__"):
            return
        if isinstance(value, (list, tuple)):
            items = _ARRAY_ITEMS + ((str, bytes),) if strings else _ARRAY_ITEMS
            if not all(isinstance(item, items) or hasattr(item, "__array__") for item in value):
                bad = next(item for item in value
                           if not (isinstance(item, items) or hasattr(item, "__array__")))
                raise _validation.ArgumentTypeError(
                    f"{name} must be an array-like of numbers (a NumPy array, or nested lists of numbers); "
                    f"received a {type(value).__name__} holding an object of type {type(bad).__name__}")
            if not value or (strings and isinstance(value[0], (str, bytes))):
                return
            value = value[0]
            continue
        if isinstance(value, dict):
            raise _validation.ArgumentTypeError(
                f"{name} must be an array; received a dict. Dicts of inputs or targets are for models with named "
                f"inputs or outputs (Functional models: cynet.Model(inputs, outputs))")
        kind = "a string" if isinstance(value, (str, bytes)) else "a generator" if inspect.isgenerator(value) else (
            "an iterator" if isinstance(value, collections.abc.Iterator) else (
                "an object with __len__/__getitem__ that is not a PyDataset (subclass cynet.utils.PyDataset)"
                if hasattr(value, "__getitem__") and hasattr(value, "__len__") else
                f"an object of type {type(value).__name__}"))
        raise _validation.ArgumentTypeError(
            f"{name} must be a NumPy array or an array-like of numbers (nested lists); received {kind}. "
            f"fit, evaluate and predict take NumPy arrays (or array-likes / nested lists and dicts of them), "
            f"Python generators or iterators, or a cynet.utils.PyDataset (keras.utils.PyDataset)")


def _asarray(value, name, strings=False):
    _refuse_unsupported_data(value, name, strings)
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be an array of numbers with one row per sample; {exc}") from None


def _describe(value):
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"an object of type {type(value).__name__}"


def _one_of_the_weights(sample_weight, class_weight):
    if sample_weight is not None and class_weight is not None:
        raise ValueError("You cannot give both class_weight and sample_weight (as in Keras): fold the class "
                         "weights into sample_weight instead")


class _AtomicSteps:
    """Holds SIGINT (Ctrl-C) back while a training step runs.

    Within `with _AtomicSteps() as atomic:` SIGINT goes to a handler that, while `atomic.active`
    is set, only records it; `atomic.release()` (called when the step has finished: forward,
    backward and the optimizer's update of every variable) clears `active` and hands a recorded
    signal to the previous handler, which for the default one raises KeyboardInterrupt. Outside
    steps the previous handler runs at once. The handler is installed once per `with` (a
    `signal.signal` call costs microseconds), and only in the main thread (the only one that runs
    signal handlers) when the previous handler is a Python callable; otherwise nothing changes
    and steps are not protected (SIG_IGN / SIG_DFL keep their meaning).
    """

    __slots__ = ("active", "_pending", "_previous")

    def __init__(self):
        self.active = False
        self._pending = None
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if callable(previous):  # another _AtomicSteps's handler too (a fit inside a callback): it chains
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info):
        self.active = False
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        return False

    def _handle(self, signum, frame):
        if self.active:
            self._pending = (signum, frame)
        elif self._previous is not None:
            self._previous(signum, frame)
        else:  # this handler outlived its `with` (someone saved and re-installed it)
            raise KeyboardInterrupt

    def release(self):
        self.active = False
        if self._pending is not None:
            signum, frame = self._pending
            self._pending = None
            self._previous(signum, frame)


def _fresh(metric):
    clone = type(metric).__new__(type(metric))
    clone.__dict__.update(metric.__dict__)
    clone.reset_state()
    return clone


def _from_logits(layer, dz):
    """The backward of `layer`'s record when the loss sent `dz` to its logits (plus, through the
    activation, any gradient its output also received)."""
    def backward(ctx, grad, need_input_grad):
        g = dz if grad is None else dz + layer._activation_grad(ctx, grad)
        return layer._backward_from_logits(ctx, g, need_input_grad)
    return backward
