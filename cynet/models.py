"""Sequential models: compile / fit / evaluate / predict / summary / save, as in Keras 3.

Training runs forward through the layers, the loss gives d loss / d output (or, when the last
layer's activation is the one the loss fuses with, d loss / d logits straight from one stable
kernel), backward runs through the layers in reverse and the optimizer applies the gradients
stored on each trainable Variable.
"""
import collections.abc
import inspect
import math
import numbers
import signal
import threading

import numpy as np

from . import activations, callbacks as callbacks_module, distributed, losses, metrics as metrics_module, optimizers
from .layers import InputLayer, Layer
from .layers import deserialize as deserialize_layer
from .layers import serialize as serialize_layer
from .layers.base import unique_name
from . import tape as _tape
from .kernels._backend import array_cache
from .optimizers import _checks
from .utils.rng import make_rng


class Sequential(Layer):
    """A linear stack of layers.

    Args:
        layers: optional list of layers (the first may be `cynet.Input(shape=...)`).
        name: the model's name.
    """

    def __init__(self, layers=None, trainable=True, name=None, **kwargs):
        super().__init__(trainable=trainable, name=name or unique_name("sequential"), **kwargs)
        self._layers = []
        self._layer_names = set()
        self._input_layer = None
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        for layer in layers or []:
            self.add(layer)

    # ---------------------------------------------------------------- structure
    @property
    def layers(self):
        return list(self._layers)

    def add(self, layer):
        """Append a layer (or an Input as the very first element)."""
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError("an Input may only be the first element of a Sequential model")
            self._input_layer = layer
            self._input_shape_arg = layer._input_shape_arg
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a cynet layer; received {layer!r}")
        if layer.name in self._layer_names:
            raise ValueError(f"All layers added to a Sequential model should have unique names; "
                             f"name '{layer.name}' is already used")
        first_shape = None
        if not self._layers and self._input_shape_arg is None and layer._input_shape_arg is not None:
            first_shape = layer._input_shape_arg
        if self.built:   # extend the built stack by one layer: adding n layers costs O(n), not O(n^2)
            shape = layer._maybe_build_for(self.output_shape)
            self.output_shape = shape
        elif first_shape is not None or self._input_shape_arg is not None:
            self._input_shape_arg = self._input_shape_arg or first_shape
            try:
                self._layers.append(layer)
                self.build((None,) + self._input_shape_arg)
            except BaseException:   # a refused layer leaves the model as it was
                self._layers.pop()
                if first_shape is not None:
                    self._input_shape_arg = None
                self.built = False
                raise
            self._layer_names.add(layer.name)
            return
        self._layers.append(layer)
        self._layer_names.add(layer.name)

    def pop(self):
        if not self._layers:
            raise ValueError("There are no layers in the model")
        layer = self._layers.pop()
        self._layer_names.discard(layer.name)
        self.built = False
        return layer

    def build(self, input_shape=None):
        if input_shape is None:
            if self._input_shape_arg is None:
                raise ValueError("build() needs input_shape, or give the first layer input_shape= or start with Input")
            input_shape = (None,) + self._input_shape_arg
        shape = tuple(input_shape)
        for layer in self._layers:
            shape = layer._maybe_build_for(shape)
        self.input_shape = tuple(input_shape)
        self.output_shape = shape
        self.built = True

    def compute_output_shape(self, input_shape):
        for layer in self._layers:
            input_shape = layer.compute_output_shape(input_shape)
        return input_shape

    # ---------------------------------------------------------------- weights
    @property
    def weights(self):
        return [v for layer in self._layers for v in layer.weights]

    @property
    def trainable_weights(self):
        return [v for layer in self._layers for v in layer.trainable_weights] if self.trainable else []

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        return [v for layer in self._layers for v in layer.non_trainable_weights]

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights
    variables = weights

    @property
    def losses(self):
        return [penalty for layer in self._layers for penalty in layer.losses]

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: {[layer.name for layer in self._layers]}")

    # ---------------------------------------------------------------- forward / backward
    def _invoke(self, tape, inputs, training, kwargs):
        if kwargs:
            raise TypeError(f"Sequential model '{self.name}': unexpected call arguments {sorted(kwargs)}")
        if not self._layers:
            raise ValueError("The model has no layers")
        x = self._layers[0]._convert_input(inputs)
        if not self.built:
            self.build((None,) + x.shape[1:])
        return (x,), self.call(x, training=training)

    def call(self, inputs, training=False):
        x = inputs
        for layer in self._layers:
            x = layer(x, training=training)
        return x

    # ---------------------------------------------------------------- compile
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True):
        """Configure training: optimizer and loss (objects or Keras strings), metrics (list).

        As in Keras 3, `metrics` ignore sample and class weights; `weighted_metrics` use them.
        `loss_weights` other than None or 1 is refused (NotImplementedError) rather than ignored.
        """
        if loss_weights is not None:
            weights = list(loss_weights.values()) if isinstance(loss_weights, dict) else (
                list(loss_weights) if isinstance(loss_weights, (list, tuple)) else [loss_weights])
            if weights != [1] and weights != [1.0]:
                raise NotImplementedError(f"loss_weights={loss_weights!r} is not supported: cynet Sequential models "
                                          "have one output and do not scale its loss; scale the learning rate, "
                                          "or the loss with sample_weight, instead")
        self.optimizer = optimizers.get(optimizer)
        self.loss = None if loss is None else losses.get(loss)
        for arg, value in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
            if value is not None and not isinstance(value, (list, tuple)):
                raise TypeError(f"{arg} must be a list; received {arg}={value!r}")
        self._metric_ids = [(m, False) for m in metrics or []] + [(m, True) for m in weighted_metrics or []]
        names = lambda ids: [m if isinstance(m, str) else m.name for m in ids or []]  # noqa: E731
        self._compile_config = {"optimizer": optimizers.serialize(self.optimizer),
                                "loss": None if self.loss is None else losses.serialize(self.loss),
                                "metrics": names(metrics), "weighted_metrics": names(weighted_metrics)}
        self._metrics = self._build_metrics(fresh=False)
        self._loss_tracker = metrics_module.Mean(name="loss")
        self.compiled = True

    def _build_metrics(self, fresh):
        """[(metric, weighted)], a weighted metric named "weighted_<name>" when a plain one has its name."""
        built, plain = [], set()
        for identifier, weighted in self._metric_ids:
            if isinstance(identifier, str) or not fresh:
                metric = metrics_module.get(identifier, loss=self.loss)
            else:
                metric = _fresh(identifier)
            if not weighted:
                plain.add(metric.name)
            built.append((metric, weighted))
        for metric, weighted in built:
            if weighted and metric.name in plain and not metric.name.startswith("weighted_"):
                metric.name = "weighted_" + metric.name
        return built

    @property
    def metrics(self):
        """The loss tracker and the compiled metric objects, as in Keras."""
        if not self.compiled:
            return []
        return [self._loss_tracker] + [m for m, _ in self._metrics]

    @property
    def metrics_names(self):
        return ["loss"] + [m.name for m, _ in getattr(self, "_metrics", [])]

    def _check_compiled(self):
        if not self.compiled or self.loss is None:
            raise RuntimeError("You must call compile(optimizer, loss) before training or evaluating the model")

    def _fused_index(self):
        """Index of the last layer if its activation fuses with the loss (softmax + crossentropy, ...)."""
        last = self._layers[-1]
        act = getattr(last, "activation", None)
        want = getattr(self.loss, "fusable_activation", None)
        if (want and not getattr(self.loss, "from_logits", True) and isinstance(act, activations.Activation)
                and act.name == want and getattr(act, "axis", -1) == -1 and hasattr(last, "_backward_from_logits")):
            return len(self._layers) - 1
        return None

    # ---------------------------------------------------------------- steps
    def _train_step(self, x, y, sample_weight):
        tape = _tape.Tape()
        with _tape.recording(tape):
            y_pred = self.call(x, training=True)
        fused = self._fused_record(tape, y_pred)
        if fused is not None:
            loss, dz = self.loss.fused_logits_backward(y, fused.ctx.logits, sample_weight)
            tape.backward((), replace={fused: _from_logits(fused.layer, dz)})
        else:
            loss, dy = self.loss.forward_backward(y, y_pred, sample_weight)
            tape.backward([(y_pred, dy)])
        penalties = self.losses
        if penalties:
            loss += float(sum(penalties))
        variables = self.trainable_weights
        if getattr(self.optimizer, "distributed", False):   # averaged over ranks, weighted by shard size
            self.optimizer.apply([v.grad for v in variables], variables, sample_count=x.shape[0])
        else:
            self.optimizer.apply([v.grad for v in variables], variables)
        return loss, y_pred

    def _fused_record(self, tape, y_pred):
        """The tape's record of the call that made y_pred, when its activation fuses with the loss."""
        if self._fused_index() is None:
            return None
        rec = tape.producer(y_pred)
        return rec if rec is not None and rec.layer is self._layers[-1] else None

    def _loss_value(self, y, x, sample_weight):
        """(loss, y_pred) of a forward pass on x; the loss through the logits when the last
        activation fuses with it, so that evaluate reports what training minimises (no clipping of
        saturated probabilities)."""
        tape = _tape.Tape()
        with _tape.recording(tape):
            y_pred = self.call(x, training=False)
        fused = self._fused_record(tape, y_pred)
        if fused is not None:
            return self.loss.fused_logits_backward(y, fused.ctx.logits, sample_weight)[0], y_pred
        return self.loss(y, y_pred, sample_weight=sample_weight), y_pred

    def _update_metrics(self, loss, y, y_pred, sample_weight, n):
        self._loss_tracker.update_state(loss, sample_weight=n)
        for m, weighted in self._metrics:
            m.update_state(y, y_pred, sample_weight=sample_weight if weighted else None)

    def _logs(self, prefix="", dist=None):
        if dist is not None:   # the metrics over all ranks; each rank keeps its own running state
            local = dist.reduce_metrics(self.metrics)
            try:
                return self._logs(prefix)
            finally:
                dist.restore_metrics(self.metrics, local)
        logs = {prefix + "loss": self._loss_tracker.result()}
        for m, _ in self._metrics:
            logs[prefix + m.name] = m.result()
        return logs

    def _reset_metrics(self):
        self._loss_tracker.reset_state()
        for m, _ in self._metrics:
            m.reset_state()

    reset_metrics = _reset_metrics

    # ---------------------------------------------------------------- data
    # Every argument is checked once per call, before any callback runs or any weight changes:
    # a bad argument raises ValueError (TypeError, catchable as ValueError, for a wrong type)
    # naming it, and never a failure half-way through training.
    def _prepare_x(self, x, name="x"):
        """x as the first layer's input array: non-empty, samples of the model's input shape, finite."""
        if x is None:
            raise ValueError(f"{name} must be given")
        if not self._layers:
            raise ValueError("The model has no layers")
        given = _asarray(x, name)
        if given.ndim == 0 or given.size == 0:
            raise ValueError(f"{name} must be a non-empty array with a batch axis; received shape {given.shape}")
        if given.dtype.kind not in "biuf":
            raise _checks.ArgumentTypeError(f"{name} must be numeric; received dtype {given.dtype}")
        with np.errstate(over="ignore"):  # a value the model's dtype cannot hold: _check_finite names it
            arr = self._layers[0]._convert_input(given)
        if not self.built:
            self.build((None,) + arr.shape[1:])
        expected = self.input_shape[1:]
        if len(expected) != arr.ndim - 1 or any(e is not None and e != a for e, a in zip(expected, arr.shape[1:])):
            raise ValueError(f"{name} must have samples of shape {expected}; received {name} with shape {arr.shape}")
        _check_finite(arr, name, given)
        return arr

    def _prepare_y(self, y, x, name="y", x_name="x"):
        """y as an array of targets the loss accepts for the model's outputs on x."""
        if y is None:
            raise ValueError(f"{name} must be given to train or evaluate")
        y = _asarray(y, name)
        n = x.shape[0]
        if y.ndim == 0 or y.shape[0] != n:
            raise ValueError(f"{x_name} and {name} must have the same number of samples; received {n} and "
                             f"{y.shape[0] if y.ndim else 'a scalar'}")
        if y.dtype.kind not in "biuf":
            raise _checks.ArgumentTypeError(f"{name} must be numeric; received dtype {y.dtype}")
        _check_finite(y, name)
        self.loss.check_targets(y, self._output_shape(x), name=name)
        return y

    def _output_shape(self, x):
        """The model's output shape, batch axis None, for inputs like x."""
        return tuple(self.compute_output_shape((None,) + tuple(x.shape[1:])))

    def _prepare_sample_weight(self, sample_weight, x, name="sample_weight"):
        """sample_weight as a float64 array: one finite, non-negative entry per sample (or per
        sample and output position, broadcasting as the loss does), or None."""
        if sample_weight is None:
            return None
        weights = _asarray(sample_weight, name)
        if weights.dtype.kind not in "biuf":
            raise _checks.ArgumentTypeError(f"{name} must be numeric; received dtype {weights.dtype}")
        weights = weights.astype(np.float64, copy=False)
        n = x.shape[0]
        if weights.ndim == 0 or weights.shape[0] != n:
            raise ValueError(f"{name} must have one entry per sample ({n}); received shape {weights.shape}")
        per_sample = (n,) + self._output_shape(x)[1:-1]    # the losses' per-sample values
        shape = weights.shape[:-1] if weights.ndim == len(per_sample) + 1 and weights.shape[-1] == 1 else weights.shape
        if len(shape) > len(per_sample) or any(w != 1 and v is not None and w != v
                                               for w, v in zip(shape, per_sample)):
            raise ValueError(f"{name} must have shape {per_sample[:1]} (or broadcast to the per-sample loss shape "
                             f"{per_sample}); received shape {weights.shape}")
        _check_finite(weights, name)
        if weights.min() < 0:
            raise ValueError(f"{name} must be non-negative; received {_at(name, weights < 0, weights)}")
        return weights

    def _class_weights(self, y, x, class_weight):
        """Per-sample weights from class_weight {class index: weight}: classes are y's argmax for
        one-hot targets and the rounded label otherwise, as in Keras; a class not in the dict
        weighs 1."""
        if not isinstance(class_weight, dict):
            raise _checks.ArgumentTypeError(f"class_weight must be a dict {{class_index: weight}}; "
                                            f"received class_weight={class_weight!r}")
        units = self._output_shape(x)[-1]
        n_classes = None if units is None else max(int(units), 2)
        for key, value in class_weight.items():
            if isinstance(key, (bool, np.bool_)) or not isinstance(key, numbers.Integral):
                raise _checks.ArgumentTypeError(f"class_weight keys must be integer class indices; "
                                                f"received the key {key!r}")
            if key < 0 or (n_classes is not None and key >= n_classes):
                where = "non-negative" if n_classes is None else f"in [0, {n_classes}) for the model's output"
                raise ValueError(f"class_weight keys must be class indices {where}; received the key {key!r}")
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
                raise _checks.ArgumentTypeError(f"class_weight values must be real numbers; received "
                                                f"class_weight[{key!r}]={value!r}")
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"class_weight values must be finite and non-negative; received "
                                 f"class_weight[{key!r}]={value!r}")
        n = y.shape[0]
        if y.ndim > 2:
            raise ValueError(f"class_weight needs y of shape ({n},) or ({n}, classes); received shape {y.shape}")
        if y.ndim == 2 and y.shape[-1] > 1:
            labels = np.argmax(y, axis=-1)
        else:
            labels = y.reshape(n)
            labels = np.rint(labels) if labels.dtype.kind == "f" else labels
        table = np.ones(max([int(k) for k in class_weight] + [0]) + 1)
        for key, value in class_weight.items():
            table[int(key)] = float(value)
        labels = labels.astype(np.int64)
        inside = (labels >= 0) & (labels < table.size)
        return np.where(inside, table[np.clip(labels, 0, table.size - 1)], 1.0)

    # ---------------------------------------------------------------- fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for `epochs` epochs (the final epoch index when resuming with initial_epoch).

        Returns a History whose `history` dict holds per-epoch lists ("loss", metrics, "val_*").
        Every argument is checked before training starts. A KeyboardInterrupt (Ctrl-C) that
        arrives during a training step is held back until the step has finished, so the model
        keeps the weights of the last completed batch.
        """
        self._check_compiled()
        batch_size = _positive_int("batch_size", batch_size, default=32)
        epochs = _nonnegative_int("epochs", epochs)
        initial_epoch = _nonnegative_int("initial_epoch", initial_epoch)
        steps_per_epoch = _positive_int("steps_per_epoch", steps_per_epoch, default=None)
        validation_batch_size = _positive_int("validation_batch_size", validation_batch_size, default=None)
        validation_freq = _positive_int("validation_freq", validation_freq, default=1)
        verbose = _verbose(verbose)
        if isinstance(validation_split, (bool, np.bool_)) or not isinstance(validation_split, numbers.Real):
            raise _checks.ArgumentTypeError(f"validation_split must be a float in [0, 1); "
                                            f"received validation_split={validation_split!r}")
        if not 0.0 <= float(validation_split) < 1.0:
            raise ValueError(f"validation_split must be in [0, 1); received validation_split={validation_split!r}")
        _one_of_the_weights(sample_weight, class_weight)
        x = self._prepare_x(x)
        y = self._prepare_y(y, x)
        weights = self._prepare_sample_weight(sample_weight, x)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight); "
                                 f"received {_describe(validation_data)}")
            vx = self._prepare_x(validation_data[0], "validation_data[0]")
            vy = self._prepare_y(validation_data[1], vx, "validation_data[1]", "validation_data[0]")
            vw = None if len(validation_data) == 2 else self._prepare_sample_weight(validation_data[2], vx,
                                                                                    "validation_data[2]")
            val = (vx, vy, vw)
        elif validation_split:
            split = int(math.floor(x.shape[0] * (1.0 - validation_split)))  # Keras: the last samples validate
            if split == 0 or split == x.shape[0]:
                raise ValueError(f"validation_split={validation_split} leaves no training or no validation samples "
                                 f"out of {x.shape[0]}")
            val = (x[split:], y[split:], None if weights is None else weights[split:])
            x, y = x[:split], y[:split]
            weights = None if weights is None else weights[:split]
        if class_weight is not None:  # training samples only, as in Keras
            weights = self._class_weights(y, x, class_weight)
        n = x.shape[0]
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
            logs = {}
            for epoch in range(initial_epoch, epochs):
                self._reset_metrics()
                cbs.on_epoch_begin(epoch)
                order = rng.permutation(n) if shuffle else None
                for step in range(steps):
                    start = (step * global_batch) % n
                    idx = slice(start, min(start + global_batch, n)) if order is None else order[start:start + global_batch]
                    if dist:
                        idx = dist.shard(idx)
                    xb, yb = x[idx], y[idx]
                    wb = None if weights is None else weights[idx]
                    cbs.on_train_batch_begin(step)
                    atomic.active = True
                    try:
                        if xb.shape[0]:
                            loss, y_pred = self._train_step(xb, yb, wb)
                        else:   # a rank with an empty shard still joins the gradient Allreduce
                            self.optimizer.apply(None, self.trainable_weights)
                    finally:
                        atomic.release()
                    if xb.shape[0]:
                        self._update_metrics(loss, yb, y_pred, wb, xb.shape[0])
                    logs = self._logs(dist=dist)
                    cbs.on_train_batch_end(step, logs)
                    if dist:
                        self.stop_training = dist.any(self.stop_training)
                    if self.stop_training:
                        break
                epoch_logs = dict(logs)
                if val is not None and (epoch + 1) % validation_freq == 0:
                    val_logs = self._evaluate_arrays(*val, batch_size=validation_batch_size or batch_size, cbs=cbs)
                    epoch_logs.update({"val_" + k: v for k, v in val_logs.items()})
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

    # ---------------------------------------------------------------- evaluate / predict
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """Loss (and metrics) over (x, y): a scalar, `[loss, *metrics]`, or a dict with return_dict=True."""
        self._check_compiled()
        batch_size = _positive_int("batch_size", batch_size, default=32)
        verbose = _verbose(verbose)
        x = self._prepare_x(x)
        y = self._prepare_y(y, x)
        weights = self._prepare_sample_weight(sample_weight, x)
        cbs = callbacks_module.CallbackList(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose,
                                            rank_zero=distributed.rank() == 0,
                                            epochs=1, steps=math.ceil(x.shape[0] / batch_size))
        with array_cache():
            return self._result(return_dict, self._evaluate_arrays(x, y, weights, batch_size, cbs))

    def _evaluate_arrays(self, x, y, weights, batch_size, cbs):
        """The logs of evaluating prepared arrays, with fresh metric states (the training ones are kept).
        Data-parallel, each rank evaluates its part of the arrays and the logs are over all ranks."""
        dist = distributed.of(self)
        if dist:
            part = dist.split(x.shape[0])
            x, y, weights = x[part], y[part], None if weights is None else weights[part]
        n = x.shape[0]
        nsteps = math.ceil(n / batch_size)
        saved = (self._loss_tracker, self._metrics)
        self._loss_tracker = metrics_module.Mean(name="loss")
        self._metrics = self._build_metrics(fresh=True)
        try:
            cbs.on_test_begin()
            for step in range(nsteps):
                sl = slice(step * batch_size, min((step + 1) * batch_size, n))
                cbs.on_test_batch_begin(step)
                wb = None if weights is None else weights[sl]
                loss, y_pred = self._loss_value(y[sl], x[sl], wb)
                penalties = self.losses
                if penalties:
                    loss += float(sum(penalties))
                self._update_metrics(loss, y[sl], y_pred, wb, y_pred.shape[0])
                cbs.on_test_batch_end(step, self._logs())
            logs = self._logs(dist=dist)
            cbs.on_test_end(logs)
        finally:
            self._loss_tracker, self._metrics = saved
        return logs

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Model outputs for x, batch by batch, as one NumPy array."""
        batch_size = _positive_int("batch_size", batch_size, default=32)
        _verbose(verbose)
        x = self._prepare_x(x)
        n = x.shape[0]
        with array_cache(), _tape.recording(_tape.NO_RECORD):
            outs = [self.call(x[i:i + batch_size], training=False) for i in range(0, n, batch_size)]
            return np.concatenate(outs, axis=0) if len(outs) > 1 else np.array(outs[0], copy=True)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One training step on (x, y); a KeyboardInterrupt during it is held back until it ends."""
        self._check_compiled()
        _one_of_the_weights(sample_weight, class_weight)
        x = self._prepare_x(x)
        y = self._prepare_y(y, x)
        w = self._prepare_sample_weight(sample_weight, x)
        if class_weight is not None:
            w = self._class_weights(y, x, class_weight)
        self._reset_metrics()
        with _AtomicSteps() as atomic:
            atomic.active = True
            try:
                loss, y_pred = self._train_step(x, y, w)
            finally:
                atomic.release()
        self._update_metrics(loss, y, y_pred, w, x.shape[0])
        return self._result(return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        self._check_compiled()
        x = self._prepare_x(x)
        y = self._prepare_y(y, x)
        weights = self._prepare_sample_weight(sample_weight, x)
        cbs = callbacks_module.CallbackList(None, model=self, verbose=0, epochs=1, steps=1)
        return self._result(return_dict, self._evaluate_arrays(x, y, weights, x.shape[0], cbs))

    def predict_on_batch(self, x):
        with _tape.recording(_tape.NO_RECORD):
            return np.array(self.call(self._prepare_x(x), training=False), copy=True)

    def _result(self, return_dict, logs=None):
        logs = self._logs() if logs is None else logs
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    # ---------------------------------------------------------------- summary / config / saving
    def summary(self, line_length=None, print_fn=None):
        """Print a Keras-like table of layers, output shapes and parameter counts."""
        print_fn = print_fn or print
        if not self.built and self._input_shape_arg is not None:
            self.build()
        rows = [("Layer (type)", "Output Shape", "Param #")]
        for layer in self._layers:
            shape = layer.output_shape if self.built else "?"
            rows.append((f"{layer.name} ({type(layer).__name__})", str(shape), f"{layer.count_params():,}"))
        widths = [max(len(r[i]) for r in rows) + 2 for i in range(3)]
        width = sum(widths)
        trainable = sum(v.size for v in self.trainable_weights)
        total = sum(v.size for v in self.weights)
        itemsize = self.dtype.itemsize
        lines = [f'Model: "{self.name}"', "━" * width, "".join(c.ljust(w) for c, w in zip(rows[0], widths)),
                 "━" * width]
        for r in rows[1:]:
            lines.append("".join(c.ljust(w) for c, w in zip(r, widths)))
        lines.append("━" * width)
        lines.append(f" Total params: {total:,} ({_human_bytes(total * itemsize)})")
        lines.append(f" Trainable params: {trainable:,} ({_human_bytes(trainable * itemsize)})")
        lines.append(f" Non-trainable params: {total - trainable:,} ({_human_bytes((total - trainable) * itemsize)})")
        for line in lines:
            print_fn(line)

    def get_config(self):
        layers = [serialize_layer(layer) for layer in self._layers]
        if self._input_layer is not None:
            layers.insert(0, serialize_layer(self._input_layer))
        return {"name": self.name, "trainable": self.trainable, "layers": layers,
                "build_input_shape": None if not self.built else list(self.input_shape)}

    @classmethod
    def from_config(cls, config):
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for layer_config in config.get("layers", []):
            model.add(deserialize_layer(layer_config))
        shape = config.get("build_input_shape")
        if shape is not None and not model.built:
            model.build(tuple(shape))
        return model

    def save(self, filepath, overwrite=True):
        from .saving import save_model
        save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        from .saving import save_weights
        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        from .saving import load_weights
        load_weights(self, filepath)


Model = Sequential


# -------------------------------------------------------------------- argument checks
_ARRAY_ITEMS = (numbers.Number, np.generic, np.ndarray, list, tuple)


def _refuse_unsupported_data(value, name):
    """Refuse, before NumPy looks at it, data that is not an array-like of numbers.

    np.asarray would turn a generator into a 0-d object array and walk any object with __len__
    and __getitem__ (a PyDataset or Sequence) item by item, allocating without bound. Lists and
    tuples are checked at their top level and along their first items."""
    while True:
        if isinstance(value, (np.ndarray, numbers.Number, np.generic)) or hasattr(value, "__array__") \
                or hasattr(value, "__array_interface__"):
            return
        if isinstance(value, (list, tuple)):
            if not all(isinstance(item, _ARRAY_ITEMS) or hasattr(item, "__array__") for item in value):
                bad = next(item for item in value
                           if not (isinstance(item, _ARRAY_ITEMS) or hasattr(item, "__array__")))
                raise _checks.ArgumentTypeError(
                    f"{name} must be an array-like of numbers (a NumPy array, or nested lists of numbers); "
                    f"received a {type(value).__name__} holding an object of type {type(bad).__name__}")
            if not value:
                return
            value = value[0]
            continue
        if isinstance(value, dict):
            raise _checks.ArgumentTypeError(
                f"{name} must be a NumPy array; received a dict. Dicts of inputs or targets (for models with "
                f"several named inputs or outputs) need the Functional API, which is not supported yet")
        kind = "a string" if isinstance(value, (str, bytes)) else "a generator" if inspect.isgenerator(value) else (
            "an iterator" if isinstance(value, collections.abc.Iterator) else (
                "a dataset object with __len__/__getitem__ (a keras.utils.PyDataset or Sequence)"
                if hasattr(value, "__getitem__") and hasattr(value, "__len__") else
                f"an object of type {type(value).__name__}"))
        raise _checks.ArgumentTypeError(
            f"{name} must be a NumPy array or an array-like of numbers (nested lists); received {kind}. "
            f"Python generators, iterators and PyDataset / Sequence objects are not supported yet "
            f"(they come with the data adapters of the model engine): pass arrays, or call train_on_batch "
            f"on each batch yourself")


def _asarray(value, name):
    _refuse_unsupported_data(value, name)
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be an array of numbers with one row per sample; {exc}") from None


def _index(mask):
    """The index of the first True in mask: an int for 1-d, else a tuple."""
    idx = np.unravel_index(int(np.argmax(mask)), mask.shape)
    return int(idx[0]) if len(idx) == 1 else tuple(int(i) for i in idx)


def _at(name, mask, values):
    """'name[i] = v' for the first True in mask."""
    idx = _index(mask)
    where = ", ".join(map(str, idx)) if isinstance(idx, tuple) else idx
    return f"{name}[{where}] = {values[idx].item()!r}"


def _check_finite(arr, name, given=None):
    """Raise ValueError naming the first NaN or infinity of a float array.

    One reduction and no temporary when all is well: the sum is finite exactly when every entry
    is (NaN and inf propagate), unless it overflows; only then is each entry looked at. (NumPy's
    sum, not a BLAS dot: a threaded dot wakes OpenBLAS's threads, which then compete with the
    kernels' OpenMP threads and slowed the next training steps tenfold.)
    """
    if arr.dtype.kind not in "fc" or arr.size == 0:
        return
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(arr.sum()):
            return
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    message = f"{name} must hold finite values only (no NaN or inf); received {_at(name, bad, arr)}"
    if given is not None and given.dtype != arr.dtype and given.dtype.kind == "f" and given.shape == arr.shape:
        idx = _index(bad)
        if np.isfinite(given[idx]):
            message += f" (the value {given[idx].item()!r} overflows the model's dtype {arr.dtype})"
    raise ValueError(message)


def _positive_int(name, value, default):
    if value is None:
        return default
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise _checks.ArgumentTypeError(f"{name} must be a positive integer; received {name}={value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer; received {name}={value!r}")
    return int(value)


def _nonnegative_int(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise _checks.ArgumentTypeError(f"{name} must be a non-negative integer; received {name}={value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer; received {name}={value!r}")
    return int(value)


def _verbose(verbose):
    if verbose == "auto":
        return 1
    if isinstance(verbose, numbers.Integral) and int(verbose) in (0, 1, 2):
        return int(verbose)
    raise ValueError(f"verbose must be \"auto\", 0, 1 or 2; received verbose={verbose!r}")


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


def _human_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024


def _from_logits(layer, dz):
    """The backward of `layer`'s record when the loss sent `dz` to its logits (plus, through the
    activation, any gradient its output also received)."""
    def backward(ctx, grad, need_input_grad):
        g = dz if grad is None else dz + layer._activation_grad(ctx, grad)
        return layer._backward_from_logits(ctx, g, need_input_grad)
    return backward


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    from .saving import load_model as _load
    return _load(filepath, compile=compile)
