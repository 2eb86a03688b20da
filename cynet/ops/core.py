"""How ops record themselves on the tape, and the Tensor that makes NumPy arithmetic record too.

An op (cynet.ops.add, matmul, relu, ...) computes its result on plain NumPy arrays. When a tape is
recording (a fit step, a GradientTape, a layer's top-level call), it also appends one record to it:
the op's vector-Jacobian product (a function from the output's gradient to the inputs'), the
arrays it took and the array it returned. The tape walks op records and layer records alike.

While recording, an op returns its result as a `Tensor`: an ndarray subclass (a view, no copy)
whose arithmetic operators, NumPy ufuncs and common NumPy functions run the matching op, so
`ops.matmul(x, w) + b` or `np.exp(t) * 2` inside a custom layer's `call` record every step.
Outside a recording tape, ops return plain ndarrays and add no cost beyond NumPy's.

Variables read by an op (a custom layer's `add_weight` results) are recorded as reads, so the
variable's gradient accumulates in `variable.grad`, as the built-in layers' do.
"""
import contextvars
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import tape as _tape
from .._typing import ArrayLike


class Tensor(np.ndarray):
    """The array an op returns while a tape records (an ndarray view: everything NumPy does with
    an ndarray works). Its operators, ufuncs and the common NumPy functions go through cynet.ops,
    so they are recorded too; any other NumPy function returns a plain array that the tape does
    not follow (no gradient flows through it)."""

    __array_priority__ = 20

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from . import dispatch
        return dispatch.ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from . import dispatch
        return dispatch.function(func, args, kwargs)

    def __getitem__(self, key):
        from . import numpy_ops
        return numpy_ops.getitem(self, key)

    def __reduce__(self):   # pickles (and deep copies) as the plain array
        return plain(self).copy().__reduce__()

    def __repr__(self):
        return "Tensor(" + repr(plain(self))[6:]


def plain(a: Any) -> Any:
    """`a` as a base-class ndarray (a view of a Tensor; `a` itself otherwise).

    Args:
        a: An array, Tensor or other value.
    """
    return a.view(np.ndarray) if type(a) is Tensor else a


def recording() -> _tape.Tape | None:
    """The active Tape when one records, else None."""
    t = _tape._active.get()
    return t if isinstance(t, _tape.Tape) else None


# ------------------------------------------------------------------------------------- records
class _OpNode:
    """The pseudo-layer of op records: its backward is the record's own vector-Jacobian product
    (kept in the record's context), so one object serves every op."""

    trainable = False
    trainable_weights = ()
    _trainable_vars = ()

    def __init__(self, name):
        self.name = name

    def _backward(self, ctx, grad, need):
        return ctx.vjp(grad, need)

    def _add_regularization_gradients(self):
        pass


UNARY = _OpNode("op")     # one input: vjp(grad, need: bool) -> grad or None
NARY = _OpNode("op")      # several inputs: vjp(grad, need: [bool]) -> [grad or None]


class _VariableRead:
    """The pseudo-layer of a read of one trainable Variable by ops: its backward adds the gradient to
    `variable.grad` (and, once per backward pass, the variable's regularizer gradient)."""

    def __init__(self, variable):
        self._ref = weakref.ref(variable)

    @property
    def _var(self):
        return self._ref()

    @property
    def trainable(self):
        v = self._var
        return v is not None and v.trainable

    @property
    def _trainable_vars(self):
        v = self._var
        return (v,) if v is not None and v.trainable else ()

    trainable_weights = _trainable_vars

    @property
    def name(self):
        v = self._var
        return f"read of {v.path}" if v is not None else "read"

    def _backward(self, ctx, grad, need):
        v = self._var
        if v is not None:
            g = np.asarray(grad, dtype=v.dtype)
            v.grad = g if v.grad is None else v.grad + g
        return []

    def _add_regularization_gradients(self):
        v = self._var
        reg = getattr(v, "regularizer", None) if v is not None else None
        if reg is not None and v.grad is not None:
            v.grad = v.grad + reg.gradient(v.value).astype(v.dtype, copy=False)


_readers: weakref.WeakKeyDictionary[object, object] = weakref.WeakKeyDictionary()


def _reader(variable):
    r = _readers.get(variable)
    if r is None:
        r = _readers[variable] = _VariableRead(variable)
    return r


def read_variable(variable: Any, tape: _tape.Tape | None) -> Any:
    """The array an op computes with for `variable`; on `tape` a read record of it (trainable only).

    Args:
        variable: The Variable read.
        tape: The recording Tape, or `None` outside a recording.
    """
    value = variable.value
    if tape is not None and variable.trainable and value.dtype.kind == "f":
        tape.record(_reader(variable), _tape.Context(), (), (value,), True, False)   # (no inputs: a list of none)
    return value


def record(tape: _tape.Tape, vjp: Callable[..., Any], inputs: Sequence[Any], output: ArrayLike) -> Tensor:
    """Record an op on `tape` (not None) and return its output as a Tensor.

    Args:
        tape: The recording Tape.
        vjp: `vjp(grad, need)` returns the inputs' gradients (a list for several inputs, one for one).
        inputs: The arrays exactly as the op took them (the tape routes gradients by their identity).
        output: The op's output array.
    """
    out = output.view(Tensor) if isinstance(output, np.ndarray) else np.asarray(output).view(Tensor)
    ctx = _tape.Context()
    ctx.vjp = vjp  # type: ignore[attr-defined]  # a Context holds what its record's backward needs
    if len(inputs) == 1:
        tape.record(UNARY, ctx, inputs, (out,), False, False)
    else:
        tape.record(NARY, ctx, tuple(inputs), (out,), True, False)
    return out


def differentiable(a: Any) -> bool:
    """True when an array can carry a gradient (floating point).

    Args:
        a: An array or value.
    """
    return isinstance(a, np.ndarray) and a.dtype.kind in "fc"


def unbroadcast(grad: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Sum `grad` down to `shape` (the input's shape before broadcasting).

    Args:
        grad: Gradient of the broadcast result.
        shape: The input's shape before broadcasting.
    """
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


# ----------------------------------------------------------------------- user calls on the tape
class _Identity:
    """The pseudo-layer of a view taken at a user call's boundary (array -> Tensor -> array): the
    gradient passes through unchanged."""

    trainable = False
    trainable_weights = ()
    _trainable_vars = ()
    name = "view"

    def _backward(self, ctx, grad, need):
        return grad if need else None

    def _add_regularization_gradients(self):
        pass


IDENTITY = _Identity()
_in_user = contextvars.ContextVar("cynet_in_user_call", default=False)


def in_user_call() -> bool:
    """True inside a user-written `call` (its layer outputs and ops results are Tensors)."""
    return _in_user.get()


def as_tensor(a: Any) -> Any:
    """A float array as a Tensor view (itself when it is one); other values unchanged."""
    if type(a) is np.ndarray and a.dtype.kind in "fc":
        return a.view(Tensor)
    return a


def link(tape: _tape.Tape | None, a: Any, convert: Callable[[Any], Any]) -> Any:
    """convert(a), with a record that passes gradients between the two (when they differ)."""
    b = convert(a)
    if b is not a and isinstance(tape, _tape.Tape):
        tape.record(IDENTITY, _tape.Context(), (a,), (b,), False, False)
    return b


def run_user_call(tape: _tape.Tape | None, call: Callable[..., Any], inputs: Any, kwargs: dict[str, Any]) -> Any:
    """Run a user-written `call` on `tape`: its float inputs become Tensors and, when this is the
    outermost user call, its Tensor outputs become plain arrays again (each view linked on the tape),
    so the code around it (losses, metrics, cynet's models) sees arrays."""
    from .. import graph
    outer = not _in_user.get()
    tensors = graph.map_structure(lambda a: link(tape, a, as_tensor), inputs)
    token = _in_user.set(True)
    try:
        out = call(tensors, **kwargs)
    finally:
        _in_user.reset(token)
    if outer:
        out = graph.map_structure(lambda a: link(tape, a, plain) if type(a) is Tensor else a, out)
    return out


def penalty(tape: _tape.Tape, variable: Any, regularizer: Any) -> Any:
    """regularizer(variable) recorded on `tape`: its gradient reaches the variable."""
    value = read_variable(variable, tape)
    out = np.asarray(regularizer(variable.value), dtype=variable.dtype)
    g_reg = regularizer.gradient(variable.value).astype(variable.dtype, copy=False)
    return record(tape, lambda g, need: g_reg * g if need else None, [value], out)
