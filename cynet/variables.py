"""Variable: a named, mutable NumPy array that layers own and optimizers update in place."""
import itertools
from typing import Any

import numpy as np

_uid = itertools.count()


def _binary_op(name, reflected=False):
    """A Variable operator method that runs cynet.ops.<name> on the variable and the other operand."""
    def method(self, other):
        from . import ops
        fn = getattr(ops, name)
        return fn(other, self) if reflected else fn(self, other)
    method.__name__ = name
    return method


class Variable:
    """A layer weight or optimizer slot.

    Args:
        value: initial value (array-like), or an initializer callable `f(shape, dtype)`.
        shape: shape, required when `value` is an initializer.
        dtype: float dtype (default float32).
        trainable: whether optimizers update it (False for e.g. BatchNormalization's moving statistics).
        name: a readable name ("kernel", "bias", ...).

    Attributes:
        value: the C-contiguous ndarray, updated in place by `assign` and by optimizers.
        grad: the gradient of the loss with respect to this variable after a backward pass
            (same shape and dtype), or None.
        constraint: a callable `c(value) -> value` the optimizer applies after each update
            (a layer's `kernel_constraint` and the like), or None.
    """

    __array_priority__ = 10
    __array_ufunc__ = None   # ndarray (op) variable defers to the operators below, which record on the tape

    def __init__(self, value: Any, shape: Any = None, dtype: Any = "float32", trainable: bool = True,
                 name: str | None = None) -> None:
        dtype = np.dtype(dtype)
        if callable(value):
            if shape is None:
                raise ValueError("shape is required when value is an initializer")
            value = value(tuple(shape), dtype=dtype)
        arr = np.array(value, dtype=dtype, copy=True, order="C")
        if shape is not None and tuple(arr.shape) != tuple(shape):
            raise ValueError(f"value must have shape {tuple(shape)}; received shape {arr.shape}")
        self.value = arr
        self.trainable = bool(trainable)
        self.name = name if name is not None else f"variable_{next(_uid)}"
        self.path = self.name
        self.grad = None
        self.constraint: Any = None   # applied by the optimizer after each update (Layer.add_weight sets it)

    @property
    def shape(self) -> Any:
        """The shape of the value."""
        return self.value.shape

    @property
    def dtype(self) -> Any:
        """The dtype of the value."""
        return self.value.dtype

    @property
    def size(self) -> Any:
        """The number of elements of the value."""
        return self.value.size

    @property
    def ndim(self) -> Any:
        """The number of axes of the value."""
        return self.value.ndim

    def numpy(self) -> np.ndarray:
        """A copy of the current value."""
        return self.value.copy()

    def assign(self, value: Any) -> None:
        """Overwrite the value in place (shape must match; dtype is cast).

        Args:
            value: Initial value of the variable.
        """
        value = np.asarray(value)
        if value.shape != self.value.shape:
            raise ValueError(f"cannot assign a value of shape {value.shape} to variable '{self.name}' of shape {self.value.shape}")
        np.copyto(self.value, value, casting="unsafe")

    def assign_add(self, delta: Any) -> None:
        """Add `delta` to the value in place (cast to the variable's dtype).

        Args:
            delta: Value to add or subtract (broadcast to the variable's shape).
        """
        self.value += np.asarray(delta, dtype=self.value.dtype)

    def assign_sub(self, delta: Any) -> None:
        """Subtract `delta` from the value in place (cast to the variable's dtype).

        Args:
            delta: Value to add or subtract (broadcast to the variable's shape).
        """
        self.value -= np.asarray(delta, dtype=self.value.dtype)

    def __array__(self, dtype=None, copy=None):
        if dtype is None:
            return self.value if not copy else self.value.copy()
        return self.value.astype(dtype)

    # Arithmetic reads the variable as an array through cynet.ops: recorded on the tape while one
    # records (a custom layer's `x @ self.kernel + self.bias` gets its gradients), plain NumPy otherwise.
    __add__, __radd__ = _binary_op("add"), _binary_op("add", True)
    __sub__, __rsub__ = _binary_op("subtract"), _binary_op("subtract", True)
    __mul__, __rmul__ = _binary_op("multiply"), _binary_op("multiply", True)
    __truediv__, __rtruediv__ = _binary_op("divide"), _binary_op("divide", True)
    __pow__, __rpow__ = _binary_op("power"), _binary_op("power", True)
    __matmul__, __rmatmul__ = _binary_op("matmul"), _binary_op("matmul", True)
    __lt__, __le__ = _binary_op("less"), _binary_op("less_equal")
    __gt__, __ge__ = _binary_op("greater"), _binary_op("greater_equal")

    def __neg__(self):
        from . import ops
        return ops.negative(self)

    def __abs__(self):
        from . import ops
        return ops.abs(self)

    def __getitem__(self, key):
        from . import ops
        return ops.getitem(self, key)

    def __len__(self):
        return len(self.value)

    @property
    def T(self) -> Any:
        """The transpose of the value (recorded on the tape while one records)."""
        from . import ops
        return ops.transpose(self)

    def __repr__(self):
        return f"<Variable '{self.path}' shape={self.shape} dtype={self.dtype.name} trainable={self.trainable}>"
