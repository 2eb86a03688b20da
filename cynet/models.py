"""Sequential models: compile / fit / evaluate / predict / summary / save, as in Keras 3.

Training runs forward through the layers, the loss gives d loss / d output (or, when the last
layer's activation is the one the loss fuses with, d loss / d logits straight from one stable
kernel), backward runs through the layers in reverse and the optimizer applies the gradients
stored on each trainable Variable.
"""
import math

import numpy as np

from . import activations, callbacks as callbacks_module, losses, metrics as metrics_module, optimizers
from .layers import InputLayer, Layer
from .layers import deserialize as deserialize_layer
from .layers import serialize as serialize_layer
from .layers.base import unique_name
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
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError(f"All layers added to a Sequential model should have unique names; "
                             f"name '{layer.name}' is already used")
        if not self._layers and self._input_shape_arg is None and layer._input_shape_arg is not None:
            self._input_shape_arg = layer._input_shape_arg
        self._layers.append(layer)
        self.built = False
        if self._input_shape_arg is not None:
            self.build((None,) + self._input_shape_arg)

    def pop(self):
        if not self._layers:
            raise ValueError("There are no layers in the model")
        layer = self._layers.pop()
        self.built = False
        return layer

    def build(self, input_shape=None):
        if input_shape is None:
            if self._input_shape_arg is None:
                raise ValueError("build() needs input_shape, or give the first layer input_shape= or start with Input")
            input_shape = (None,) + self._input_shape_arg
        shape = tuple(input_shape)
        self.input_shape = shape
        for layer in self._layers:
            layer._maybe_build(shape)
            shape = layer.compute_output_shape(shape)
            layer.output_shape = shape
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
    def __call__(self, inputs, training=False):
        if not self._layers:
            raise ValueError("The model has no layers")
        x = self._layers[0]._convert_input(inputs)
        if not self.built:
            self.build((None,) + x.shape[1:])
        return self.call(x, training=training)

    def call(self, inputs, training=False):
        x = inputs
        for layer in self._layers:
            x = layer(x, training=training)
        return x

    def backward(self, grad, stop_at=None, input_gradient=True):
        """Backpropagate `grad` (gradient of the model output) through the layers in reverse.

        Returns the gradient with respect to the model input, or None with
        `input_gradient=False`, which lets the first layer skip computing it (training needs only
        the weight gradients). `stop_at` (an index) starts from the output of layer
        `stop_at - 1`, used when the last layer's logits got the gradient.
        """
        layers = self._layers if stop_at is None else self._layers[:stop_at]
        for i in range(len(layers) - 1, -1, -1):
            layer = layers[i]
            layer._needs_input_grad = i > 0 or input_gradient
            grad = layer.backward(grad)
        return grad

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
                and act.name == want and getattr(act, "axis", -1) == -1 and hasattr(last, "backward_from_logits")):
            return len(self._layers) - 1
        return None

    # ---------------------------------------------------------------- steps
    def _train_step(self, x, y, sample_weight):
        y_pred = self.call(x, training=True)
        fused = self._fused_index()
        if fused is not None:
            last = self._layers[fused]
            loss, dz = self.loss.fused_logits_backward(y, last.logits, sample_weight)
            last._needs_input_grad = fused > 0
            self.backward(last.backward_from_logits(dz), stop_at=fused, input_gradient=False)
        else:
            loss, dy = self.loss.forward_backward(y, y_pred, sample_weight)
            self.backward(dy, input_gradient=False)
        penalties = self.losses
        if penalties:
            loss += float(sum(penalties))
        variables = self.trainable_weights
        self.optimizer.apply([v.grad for v in variables], variables)
        return loss, y_pred

    def _loss_value(self, y, y_pred, sample_weight):
        """The loss of a forward pass; through the logits when the last activation fuses with it,
        so that evaluate reports what training minimises (no clipping of saturated probabilities)."""
        fused = self._fused_index()
        if fused is not None:
            return self.loss.fused_logits_backward(y, self._layers[fused].logits, sample_weight)[0]
        return self.loss(y, y_pred, sample_weight=sample_weight)

    def _update_metrics(self, loss, y, y_pred, sample_weight, n):
        self._loss_tracker.update_state(loss, sample_weight=n)
        for m, weighted in self._metrics:
            m.update_state(y, y_pred, sample_weight=sample_weight if weighted else None)

    def _logs(self, prefix=""):
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
    def _prepare_x(self, x, name="x"):
        if x is None:
            raise ValueError(f"{name} must be given")
        if not self._layers:
            raise ValueError("The model has no layers")
        first = self._layers[0]
        arr = np.asarray(x)
        if arr.ndim == 0 or arr.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty array with a batch axis; received shape {arr.shape}")
        arr = first._convert_input(arr)
        if not self.built:
            self.build((None,) + arr.shape[1:])
        expected = self.input_shape[1:]
        if len(expected) != arr.ndim - 1 or any(e is not None and e != a for e, a in zip(expected, arr.shape[1:])):
            raise ValueError(f"{name} must have samples of shape {expected}; received {name} with shape {arr.shape}")
        return arr

    @staticmethod
    def _prepare_y(y, n, name="y"):
        if y is None:
            raise ValueError(f"{name} must be given to train or evaluate")
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != n:
            raise ValueError(f"x and {name} must have the same number of samples; received {n} and "
                             f"{y.shape[0] if y.ndim else 'a scalar'}")
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric; received dtype {y.dtype}")
        return y

    @staticmethod
    def _batch_size(batch_size):
        if batch_size is None:
            return 32
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; received batch_size={batch_size!r}")
        return int(batch_size)

    @staticmethod
    def _sample_weights(y, n, sample_weight, class_weight):
        weights = None
        if sample_weight is not None and class_weight is not None:
            raise ValueError("You cannot give both class_weight and sample_weight (as in Keras): fold the class "
                             "weights into sample_weight instead")
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=np.float64)
            if weights.ndim == 0 or weights.shape[0] != n:
                raise ValueError(f"sample_weight must have one entry per sample ({n}); received shape {weights.shape}")
        if class_weight is not None:
            if not isinstance(class_weight, dict):
                raise TypeError(f"class_weight must be a dict {{class_index: weight}}; received {class_weight!r}")
            labels = np.argmax(y, axis=-1) if (y.ndim > 1 and y.shape[-1] > 1) else y.reshape(n, -1)[:, 0]
            labels = np.asarray(labels).astype(np.int64)
            cw = np.array([float(class_weight.get(int(c), 1.0)) for c in labels])
            weights = cw
        return weights

    # ---------------------------------------------------------------- fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for `epochs` epochs (the final epoch index when resuming with initial_epoch).

        Returns a History whose `history` dict holds per-epoch lists ("loss", metrics, "val_*").
        """
        self._check_compiled()
        batch_size = self._batch_size(batch_size)
        x = self._prepare_x(x)
        y = self._prepare_y(y, x.shape[0])
        if sample_weight is not None and class_weight is not None:
            self._sample_weights(y, x.shape[0], sample_weight, class_weight)  # raises, naming both
        weights = self._sample_weights(y, x.shape[0], sample_weight, None)
        if not 0.0 <= float(validation_split) < 1.0:
            raise ValueError(f"validation_split must be in [0, 1); received validation_split={validation_split!r}")
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight)")
            vx = self._prepare_x(validation_data[0], "validation_data x")
            vy = self._prepare_y(validation_data[1], vx.shape[0], "validation_data y")
            vw = None if len(validation_data) == 2 else validation_data[2]
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
            weights = self._sample_weights(y, x.shape[0], None, class_weight)
        epochs = int(epochs)
        n = x.shape[0]
        steps = steps_per_epoch or math.ceil(n / batch_size)
        verbose = 1 if verbose == "auto" else int(verbose)
        cbs = callbacks_module.CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=self,
                                            verbose=verbose, epochs=epochs, steps=steps)
        self.stop_training = False
        cbs.on_train_begin()
        logs = {}
        rng = make_rng(None)
        for epoch in range(int(initial_epoch), epochs):
            self._reset_metrics()
            cbs.on_epoch_begin(epoch)
            order = rng.permutation(n) if shuffle else None
            for step in range(steps):
                start = (step * batch_size) % n
                idx = slice(start, min(start + batch_size, n)) if order is None else order[start:start + batch_size]
                xb, yb = x[idx], y[idx]
                wb = None if weights is None else weights[idx]
                cbs.on_train_batch_begin(step)
                loss, y_pred = self._train_step(xb, yb, wb)
                self._update_metrics(loss, yb, y_pred, wb, xb.shape[0])
                logs = self._logs()
                cbs.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
            epoch_logs = dict(logs)
            if val is not None and (epoch + 1) % validation_freq == 0:
                val_logs = self.evaluate(val[0], val[1], batch_size=validation_batch_size or batch_size, verbose=0,
                                         sample_weight=val[2], return_dict=True, _callbacks=cbs)
                epoch_logs.update({"val_" + k: v for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, epoch_logs)
            logs = epoch_logs
            if self.stop_training:
                break
        self.optimizer.finalize_variable_values(self.trainable_weights)
        cbs.on_train_end(logs)
        self.history = cbs.history
        return self.history

    # ---------------------------------------------------------------- evaluate / predict
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False, _callbacks=None):
        """Loss (and metrics) over (x, y): a scalar, `[loss, *metrics]`, or a dict with return_dict=True."""
        self._check_compiled()
        batch_size = self._batch_size(batch_size)
        x = self._prepare_x(x)
        y = self._prepare_y(y, x.shape[0])
        weights = self._sample_weights(y, x.shape[0], sample_weight, None)
        n = x.shape[0]
        nsteps = math.ceil(n / batch_size)
        verbose = 1 if verbose == "auto" else int(verbose)
        cbs = _callbacks or callbacks_module.CallbackList(callbacks, add_progbar=verbose != 0, model=self,
                                                          verbose=verbose, epochs=1, steps=nsteps)
        saved = (self._loss_tracker, self._metrics)
        self._loss_tracker = metrics_module.Mean(name="loss")
        self._metrics = self._build_metrics(fresh=True)
        try:
            cbs.on_test_begin()
            for step in range(nsteps):
                sl = slice(step * batch_size, min((step + 1) * batch_size, n))
                cbs.on_test_batch_begin(step)
                y_pred = self.call(x[sl], training=False)
                wb = None if weights is None else weights[sl]
                loss = self._loss_value(y[sl], y_pred, wb)
                penalties = self.losses
                if penalties:
                    loss += float(sum(penalties))
                self._update_metrics(loss, y[sl], y_pred, wb, y_pred.shape[0])
                cbs.on_test_batch_end(step, self._logs())
            logs = self._logs()
            cbs.on_test_end(logs)
        finally:
            self._loss_tracker, self._metrics = saved
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Model outputs for x, batch by batch, as one NumPy array."""
        batch_size = self._batch_size(batch_size)
        x = self._prepare_x(x)
        n = x.shape[0]
        outs = [self.call(x[i:i + batch_size], training=False) for i in range(0, n, batch_size)]
        return np.concatenate(outs, axis=0) if len(outs) > 1 else np.array(outs[0], copy=True)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        self._check_compiled()
        x = self._prepare_x(x)
        y = self._prepare_y(y, x.shape[0])
        w = self._sample_weights(y, x.shape[0], sample_weight, class_weight)
        self._reset_metrics()
        loss, y_pred = self._train_step(x, y, w)
        self._update_metrics(loss, y, y_pred, w, x.shape[0])
        return self._result(return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        return self.evaluate(x, y, batch_size=max(len(x), 1), verbose=0, sample_weight=sample_weight,
                             return_dict=return_dict)

    def predict_on_batch(self, x):
        return np.array(self.call(self._prepare_x(x), training=False), copy=True)

    def _result(self, return_dict):
        logs = self._logs()
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


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    from .saving import load_model as _load
    return _load(filepath, compile=compile)
