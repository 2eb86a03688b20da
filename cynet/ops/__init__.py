"""cynet.ops: Keras 3's keras.ops on NumPy arrays, differentiable on cynet's tape.

Write custom layers, losses and training steps with these (or with NumPy arithmetic on the arrays
they return) and never a backward pass: while a tape records (fit, a GradientTape, a layer's
top-level call), each op records its vector-Jacobian product, and returns a `Tensor` (an ndarray
view) whose operators record too. Outside a tape they are plain NumPy.
"""
from . import dispatch as _dispatch  # noqa: F401  (installs the Tensor methods)
from .core import Tensor
from .nn import *  # noqa: F401,F403
from . import nn as _nn, numpy_ops as _numpy_ops
from .numpy_ops import *  # noqa: F401,F403
from .numpy_ops import abs, all, any, max, min, round, slice, sum  # noqa: F401,A004 - Keras's names

__all__ = sorted({n for d in (vars(_numpy_ops), vars(_nn)) for n, v in d.items()
                  if callable(v) and not n.startswith("_") and getattr(v, "__module__", "").startswith("cynet.ops")}
                 | {"Tensor"})
del _nn, _numpy_ops
