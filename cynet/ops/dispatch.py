"""What a Tensor's NumPy protocol hooks run: the matching cynet op for the ufuncs and functions that
have one, plain NumPy (on plain arrays, no gradient) for those that are not differentiable, and a
clear error for a differentiable NumPy function that has no op yet (a gradient would silently stop)."""
import numpy as np

from . import nn
from . import numpy_ops as ops
from .core import Tensor, plain, recording

UFUNCS = {
    np.add: ops.add, np.subtract: ops.subtract, np.multiply: ops.multiply, np.true_divide: ops.divide,
    np.negative: ops.negative, np.power: ops.power, np.square: ops.square, np.sqrt: ops.sqrt,
    np.exp: ops.exp, np.log: ops.log, np.log1p: ops.log1p, np.expm1: ops.expm1, np.absolute: ops.abs,
    np.tanh: ops.tanh, np.sin: ops.sin, np.cos: ops.cos, np.maximum: ops.maximum, np.minimum: ops.minimum,
    np.reciprocal: ops.reciprocal, np.matmul: ops.matmul, np.positive: lambda x: x,
}
REDUCTIONS = {np.add: ops.sum, np.maximum: ops.max, np.minimum: ops.min, np.multiply: ops.prod}

FUNCTIONS = {
    np.sum: ops.sum, np.mean: ops.mean, np.max: ops.max, np.amax: ops.max, np.min: ops.min, np.amin: ops.min,
    np.prod: ops.prod, np.var: ops.var, np.std: ops.std, np.cumsum: ops.cumsum,
    np.reshape: ops.reshape, np.transpose: ops.transpose, np.swapaxes: ops.swapaxes, np.moveaxis: ops.moveaxis,
    np.expand_dims: ops.expand_dims, np.squeeze: ops.squeeze, np.ravel: ops.ravel, np.flip: ops.flip,
    np.broadcast_to: ops.broadcast_to, np.tile: ops.tile, np.repeat: ops.repeat,
    np.concatenate: ops.concatenate, np.stack: ops.stack, np.split: ops.split, np.take: ops.take,
    np.take_along_axis: ops.take_along_axis, np.pad: ops.pad, np.where: ops.where, np.clip: ops.clip,
    np.matmul: ops.matmul, np.dot: ops.dot, np.tensordot: ops.tensordot, np.einsum: ops.einsum,
    np.tril: ops.tril, np.triu: ops.triu, np.abs: ops.abs,
}
# NumPy functions whose result carries no gradient (indices, booleans, shapes, copies for display)
NOT_DIFFERENTIABLE = {
    np.argmax, np.argmin, np.argsort, np.shape, np.ndim, np.size, np.allclose, np.isclose, np.array_equal,
    np.array_equiv, np.any, np.all, np.nonzero, np.count_nonzero, np.sign, np.round, np.around, np.floor,
    np.ceil, np.unique, np.searchsorted, np.result_type, np.can_cast, np.zeros_like, np.ones_like,
    np.empty_like, np.full_like, np.array_repr, np.array_str, np.may_share_memory, np.shares_memory,
    np.isnan, np.isinf, np.isfinite, np.copyto, np.broadcast_arrays, np.atleast_1d, np.atleast_2d,
    np.atleast_3d, np.array2string, np.histogram, np.bincount, np.digitize,
    np.testing.assert_allclose, np.testing.assert_array_equal, np.iscomplexobj, np.isrealobj,
    np.save, np.savez, np.savez_compressed,
}   # (differentiable functions without an op, np.sort or np.linalg.norm say, are refused instead)


def _plain_all(x):
    if type(x) is Tensor:
        return plain(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_plain_all(i) for i in x)
    if isinstance(x, dict):
        return {k: _plain_all(v) for k, v in x.items()}
    return x


def _needs_gradient(args):
    """True when a tape records and a float Tensor is among the arguments."""
    if recording() is None:
        return False
    stack = list(args)
    while stack:
        a = stack.pop()
        if type(a) is Tensor and a.dtype.kind in "fc":
            return True
        if isinstance(a, (list, tuple)):
            stack.extend(a)
    return False


def _fallback(fn, name, args, kwargs):
    if _needs_gradient(list(args) + list(kwargs.values())):
        raise TypeError(f"{name} is not differentiable on cynet's tape yet: use the cynet.ops equivalent, or "
                        f"compute it outside the recorded call (ops.stop_gradient)")
    return fn(*_plain_all(args), **_plain_all(kwargs))


def ufunc(uf, method, inputs, kwargs):
    if method == "__call__" and not kwargs:
        op = UFUNCS.get(uf)
        if op is not None:
            return op(*inputs)
    if method == "reduce" and uf in REDUCTIONS and set(kwargs) <= {"axis", "keepdims"}:
        return REDUCTIONS[uf](inputs[0], axis=kwargs.get("axis", 0), keepdims=kwargs.get("keepdims", False))
    out = kwargs.get("out")
    differentiable_result = uf.types and any(t.split("->")[1][0] in "efdgFDG" for t in uf.types)
    if (uf in UFUNCS or differentiable_result) and _needs_gradient(inputs):
        if out is not None:
            raise TypeError(f"np.{uf.__name__} writing into a Tensor (out=, or an in-place operator) cannot be "
                            "recorded: write `x = x + y`, not `x += y`, on arrays that need a gradient")
        raise TypeError(f"np.{uf.__name__} ({method}) is not differentiable on cynet's tape yet: use the cynet.ops "
                        "equivalent")
    result = getattr(uf, method)(*_plain_all(inputs), **_plain_all(kwargs))
    return result


def function(func, args, kwargs):
    op = FUNCTIONS.get(func)
    if op is not None:
        try:
            return op(*args, **kwargs)
        except TypeError:   # a NumPy-only keyword (out=, dtype=, ...): plain NumPy if no gradient is asked
            return _fallback(func, f"np.{func.__name__} with these arguments", args, kwargs)
    if func in NOT_DIFFERENTIABLE:
        return func(*_plain_all(args), **_plain_all(kwargs))
    return _fallback(func, f"np.{getattr(func, '__name__', func)}", args, kwargs)


# ------------------------------------------------------------------------------- Tensor methods
def _method(op):
    def m(self, *args, **kwargs):
        return op(self, *args, **kwargs)
    return m


def _shape_args(args):
    return args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


Tensor.reshape = lambda self, *shape, **kw: ops.reshape(self, _shape_args(shape) if shape else kw["shape"])
Tensor.transpose = lambda self, *axes: ops.transpose(self, _shape_args(axes) if axes else None)
Tensor.T = property(lambda self: ops.transpose(self), doc="The transpose (as `ndarray.T`), recorded on the tape.")
Tensor.sum = _method(ops.sum)
Tensor.mean = _method(ops.mean)
Tensor.max = _method(ops.max)
Tensor.min = _method(ops.min)
Tensor.prod = _method(ops.prod)
Tensor.var = _method(ops.var)
Tensor.std = _method(ops.std)
Tensor.cumsum = _method(ops.cumsum)
Tensor.squeeze = _method(ops.squeeze)
Tensor.swapaxes = _method(ops.swapaxes)
Tensor.repeat = lambda self, repeats, axis=None: ops.repeat(self, repeats, axis)
Tensor.take = lambda self, indices, axis=None: ops.take(self, indices, axis)
Tensor.clip = lambda self, a_min=None, a_max=None: ops.clip(self, a_min, a_max)
Tensor.dot = _method(ops.dot)
Tensor.flatten = lambda self: ops.reshape(self, (-1,))
Tensor.ravel = lambda self: ops.reshape(self, (-1,))
Tensor.astype = lambda self, dtype, *a, **k: ops.cast(self, dtype)
Tensor.copy = lambda self, *a, **k: ops.multiply(self, 1) if self.dtype.kind in "fc" else plain(self).copy()
Tensor.__iadd__ = lambda self, other: ops.add(self, other)
Tensor.__isub__ = lambda self, other: ops.subtract(self, other)
Tensor.__imul__ = lambda self, other: ops.multiply(self, other)
Tensor.__itruediv__ = lambda self, other: ops.divide(self, other)
Tensor.__ipow__ = lambda self, other: ops.power(self, other)
Tensor.__imatmul__ = lambda self, other: ops.matmul(self, other)
Tensor.__abs__ = lambda self: ops.abs(self)
Tensor.__setitem__ = lambda self, key, value: _refuse_setitem(self, key, value)
for _name in ("argmax", "argmin", "argsort", "any", "all", "nonzero", "tolist", "item", "tobytes", "round"):
    setattr(Tensor, _name, (lambda n: lambda self, *a, **k: getattr(plain(self), n)(*a, **k))(_name))
nn  # (imported so that the NN ops exist when a Tensor is first used)


def _refuse_setitem(self, key, value):
    if recording() is not None and self.dtype.kind in "fc":
        raise TypeError("assigning into a Tensor (x[i] = v) cannot be recorded on cynet's tape: build the result "
                        "with ops.where / ops.concatenate, or assign on a copy made with ops.convert_to_numpy")
    plain(self)[key] = plain(value) if type(value) is Tensor else value
