"""The tape: per-call records of what a backward pass needs.

A layer holds configuration and variables only. What one call's backward needs (its inputs, the
cache a kernel returned, the dropout mask) lives in a `Context`, kept by a `Record` of that call
on the tape that is active in the calling thread (a `contextvars.ContextVar`, so concurrent fits,
and predict beside fit, never see each other's records).

`Tape.backward` walks the records in reverse. Gradients travel between records by the identity of
the arrays a call returned and another call took (a record keeps them alive, so no id is reused
while the tape lives); a variable's gradient is the sum over every call that used it (a layer
called twice gets both contributions). Each record is told which of its inputs need a gradient:
an input needs one when it is a source the caller asked about, or came out of a call that needs
gradients (one that has trainable variables or an input that needs one). So a model's first layer
skips its input gradient in training without any flag on the layer.

Where no tape is active (a layer or model called at the top level, as the manual PyTorch-style
loop does), the call gets a tape of its own, kept as the calling thread's last call of that object
(`last_call`), which `layer.backward(grad)` reads. Inside `predict` the marker `NO_RECORD` is
active: nothing is recorded, nothing is kept.
"""
import contextlib
import contextvars
import threading
import warnings
import weakref

import numpy as np

NO_RECORD = "no-record"
_active = contextvars.ContextVar("cynet_tape", default=None)


def active():
    """The tape recording in this context: a Tape, NO_RECORD, or None (top level)."""
    return _active.get()


@contextlib.contextmanager
def recording(tape):
    """Make `tape` (a Tape or NO_RECORD) the active one for the block."""
    token = _active.set(tape)
    try:
        yield tape
    finally:
        _active.reset(token)


class Context:
    """A call's own scratch space: what its backward will need (attributes set by the layer)."""


class Record:
    """One call: the layer, its context, the arrays it took and returned.

    `inputs` and `outputs` are flat tuples; `multi_in` / `multi_out` say whether the layer took or
    returned a list (then its backward takes and returns lists) or one array.
    """

    __slots__ = ("layer", "ctx", "inputs", "outputs", "multi_in", "multi_out", "trainable")

    def __init__(self, layer, ctx, inputs, outputs, multi_in, multi_out):
        self.layer = layer
        self.ctx = ctx
        self.inputs = inputs
        self.outputs = outputs
        self.multi_in = multi_in
        self.multi_out = multi_out
        self.trainable = bool(layer.trainable and layer._trainable_vars)

    def run_backward(self, grads, need):
        """The input gradients (a list, one per input; None where not needed) from the output ones."""
        layer = self.layer
        g = grads if self.multi_out else grads[0]
        if self.multi_in:
            return list(layer._backward(self.ctx, g, need))
        return [layer._backward(self.ctx, g, need[0])]


class Tape:
    """Records of layer calls, in call order, and the reverse walk over them."""

    __slots__ = ("records", "added_losses", "__weakref__")

    def __init__(self):
        self.records = []
        self.added_losses = []   # (layer, value) for each Layer.add_loss of the recorded calls

    def record(self, layer, ctx, inputs, outputs, multi_in, multi_out):
        rec = Record(layer, ctx, inputs, outputs, multi_in, multi_out)
        self.records.append(rec)
        return rec

    def producer(self, array):
        """The last record that returned `array` (by identity), or None."""
        for rec in reversed(self.records):
            for out in rec.outputs:
                if out is array:
                    return rec
        return None

    def _needs(self, sources):
        """For each record, which inputs need a gradient (see the module docstring)."""
        required = {id(a) for a in sources}
        needs = []
        for rec in self.records:
            need = [id(x) in required for x in rec.inputs]
            needs.append(need)
            if rec.trainable or True in need:
                for y in rec.outputs:
                    required.add(id(y))
        return needs

    def backward(self, seeds, sources=(), replace=None, warn=True, regularization=True):
        """Backpropagate and return the gradients of `sources`.

        seeds: pairs (array, gradient of the loss with respect to it): the outputs the loss read.
        sources: arrays (inputs of the recorded calls) whose gradients to return (None for one no
            gradient reached).
        replace: optional {record: function(ctx, output grad(s) or None, need) -> input grad(s)},
            a backward to run instead of the record's own (the loss fused with the last activation).

        Each trainable variable of a recorded layer ends with `grad` set to the sum of its
        gradients over the calls on this tape (None when no gradient reached it); each layer's
        regularization gradients are added once (unless `regularization` is False: a GradientTape's
        target already holds the penalties the user added). `warn`: warn about trainable variables of
        the recorded layers that no gradient reached.
        """
        records = self.records
        needs = self._needs(sources)
        layers = list({id(rec.layer): rec.layer for rec in records}.values())
        for layer in layers:   # (a frozen layer's variables too: their gradients never accumulate over steps)
            for v in layer._trainable_vars:
                v.grad = None
        grads = {}
        for array, g in seeds:
            _accumulate(grads, id(array), g)
        replace = replace or {}
        wanted = {id(s) for s in sources}
        captured = {}   # a source's whole gradient, kept when the record that made it (a cast) takes it on
        for i in range(len(records) - 1, -1, -1):
            rec = records[i]
            need = needs[i]
            special = replace.get(rec) if replace else None
            if special is None and not (rec.multi_in or rec.multi_out):   # the common case: one in, one out
                key = id(rec.outputs[0])
                g = grads.pop(key, None)
                if key in wanted and g is not None and rec.outputs[0] is not rec.inputs[0]:
                    captured[key] = g
                if g is not None:
                    dx = rec.layer._backward(rec.ctx, g, need[0])
                    if need[0] and dx is not None:
                        _accumulate(grads, id(rec.inputs[0]), dx)
                continue
            out_grads = [grads.pop(id(y), None) for y in rec.outputs]
            for y, g in zip(rec.outputs, out_grads):
                if id(y) in wanted and g is not None and not any(y is x for x in rec.inputs):
                    captured[id(y)] = g
            if special is not None:
                in_grads = special(rec.ctx, out_grads if rec.multi_out else out_grads[0], need)
                in_grads = list(in_grads) if rec.multi_in else [in_grads]
            elif all(g is None for g in out_grads):
                continue
            else:
                if rec.multi_out:   # an output no gradient reached (an unused state) contributes zeros
                    out_grads = [np.zeros_like(y) if g is None and isinstance(y, np.ndarray) else g
                                 for g, y in zip(out_grads, rec.outputs)]
                in_grads = rec.run_backward(out_grads, need)
            for x, n, g in zip(rec.inputs, need, in_grads):
                if n and g is not None:
                    _accumulate(grads, id(x), g)
        if regularization:
            for layer in layers:
                layer._add_regularization_gradients()
        unreached = [v.path for layer in layers for v in layer.trainable_weights if v.grad is None] if warn else None
        if unreached:
            warnings.warn(f"Gradients do not exist for variables {unreached} when minimizing the loss: their "
                          "layers' outputs did not reach it through recorded layer calls", stacklevel=3)
        return [captured.get(id(s), grads.get(id(s))) for s in sources]


def _accumulate(grads, key, g):
    """Add g to grads[key], never in place (one gradient array can reach several inputs)."""
    prev = grads.get(key)
    grads[key] = g if prev is None else prev + g


class _Cast:
    """The pseudo-layer of a dtype conversion at a layer's boundary (a float64 array into a float32
    layer): its record sends the gradient back in the original dtype, so conversions never cut the
    chain of records."""

    trainable = False
    trainable_weights = ()
    _trainable_vars = ()
    name = "cast"

    def _backward(self, ctx, grad, need_input_grad):
        return grad.astype(ctx.dtype) if need_input_grad else None

    def _add_regularization_gradients(self):
        pass


CAST = _Cast()


def record_cast(tape, original, converted):
    """On `tape` (when recording), the conversion of the float array `original` into `converted`."""
    if converted is not original and isinstance(tape, Tape) and isinstance(original, np.ndarray) \
            and original.dtype.kind == "f":
        ctx = Context()
        ctx.dtype = original.dtype
        tape.record(CAST, ctx, (original,), (converted,), False, False)
    return converted


class _ActivityPenalty:
    """The pseudo-layer of a layer's activity regularization: penalty = reg(output) / batch size
    (Keras 3 divides by the batch size), added to the call's losses; its record sends
    reg.gradient(output) / batch size back into the output's gradient."""

    trainable = False
    trainable_weights = ()
    _trainable_vars = ()
    name = "activity_regularizer"

    def _backward(self, ctx, grad, need_input_grad):
        if not need_input_grad:
            return None
        g = ctx.regularizer.gradient(ctx.output) * (float(np.sum(grad)) / ctx.batch)
        return g.astype(ctx.output.dtype, copy=False)

    def _add_regularization_gradients(self):
        pass


ACTIVITY_PENALTY = _ActivityPenalty()


def record_activity_penalty(tape, layer, output, regularizer):
    """On `tape` (when recording), `regularizer`'s penalty on `layer`'s float array `output`, as one
    of the call's added losses (Layer.add_loss): its gradient reaches the output through a record."""
    if not isinstance(tape, Tape) or not isinstance(output, np.ndarray) or output.dtype.kind != "f":
        return
    batch = output.shape[0] if output.ndim > 0 else 1
    ctx = Context()
    ctx.regularizer, ctx.output, ctx.batch = regularizer, output, max(batch, 1)
    penalty = np.asarray(regularizer(output) / ctx.batch if batch else 0.0, dtype=output.dtype)
    tape.record(ACTIVITY_PENALTY, ctx, (output,), (penalty,), False, False)
    tape.added_losses.append((layer, penalty))


# ------------------------------------------------------------------------- last calls per thread
_local = threading.local()


def _last_calls():
    table = getattr(_local, "calls", None)
    if table is None:
        table = _local.calls = weakref.WeakKeyDictionary()
    return table


def set_last_call(obj, tape, inputs, outputs):
    """Keep `tape` as this thread's last top-level call of `obj` (a layer or model)."""
    _last_calls()[obj] = (tape, inputs, outputs)


def last_call(obj):
    """(tape, inputs, outputs) of this thread's last top-level call of `obj`, or None."""
    table = getattr(_local, "calls", None)
    return table.get(obj) if table else None   # (fit asks every layer at every step: mostly no table)
