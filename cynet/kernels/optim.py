"""Fused optimizer updates: one in-place pass over a variable and its optimizer slots.

The optimizers in cynet.optimizers call these for their per-variable step; the NumPy twin
computes the same with ufuncs. Arrays: the variable and every slot (m, v, v_hat, momentums)
C-contiguous, writable, of one float dtype and one shape, updated IN PLACE; the gradient of
the same shape (any real dtype and layout: it is converted to the variable's). Scalars are
Python or NumPy numbers, cast to the variable's dtype.
"""
import numpy as np

from .._validation import as_array, flag, inplace_array, real
from ._backend import impl
from .._typing import ArrayLike

__all__ = ["adam_update", "sgd_momentum_update"]


def _state(name, a, variable):
    """A slot (or the variable itself) as the flat view the kernels update in place."""
    return inplace_array(name, a, variable.dtype, variable.shape, "the variable's").reshape(-1)


def _arrays(variable, gradient, **slots):
    if not isinstance(variable, np.ndarray) or variable.dtype not in (np.float32, np.float64):
        raise TypeError("variable must be a float32 or float64 NumPy array (updated in place); received "
                        f"{getattr(variable, 'dtype', type(variable).__name__)}")
    w = _state("variable", variable, variable)
    g = as_array("gradient", gradient)
    if g.shape != variable.shape:
        raise ValueError(f"gradient must have the variable's shape {variable.shape}; received {g.shape}")
    if g.dtype.kind not in "biuf":
        raise TypeError(f"gradient must be real; received dtype {g.dtype}")
    g = np.ascontiguousarray(g, dtype=variable.dtype).reshape(-1)
    states = {k: None if a is None and k == "v_hat" else _state(k, a, variable) for k, a in slots.items()}
    # Each array is read and written in one fused pass by the compiled kernel, in several
    # ufunc passes by the twin: overlapping arrays would give results that depend on the order.
    named = [("variable", variable), ("gradient", gradient)] + [(k, slots[k]) for k in states if states[k] is not None]
    for i, (name_a, a) in enumerate(named):
        for name_b, b in named[i + 1:]:
            if isinstance(b, np.ndarray) and isinstance(a, np.ndarray) and np.may_share_memory(a, b):
                raise ValueError(f"{name_a} and {name_b} must be separate arrays (updated in place); "
                                 f"received overlapping memory")
    return w, g, states


def adam_update(variable: np.ndarray, gradient: ArrayLike, m: np.ndarray, v: np.ndarray, alpha: float,
                one_minus_beta_1: float, one_minus_beta_2: float, epsilon: float,
                v_hat: np.ndarray | None = None) -> None:
    """One Adam step, in place:

        m += (g - m) * one_minus_beta_1;  v += (g**2 - v) * one_minus_beta_2
        v_hat = max(v_hat, v)  (AMSGrad, when v_hat is given; it then replaces v below)
        variable -= (m * alpha) / (sqrt(v) + epsilon)

    Args:
        variable: IN/OUT parameter, C-contiguous float32|float64.
        gradient: Its gradient g (IN), variable's shape.
        m: IN/OUT first-moment slot, variable's shape and dtype.
        v: IN/OUT second-moment slot, variable's shape and dtype.
        alpha: The bias-corrected learning rate, lr * sqrt(1 - beta_2**t) / (1 - beta_1**t).
        one_minus_beta_1: 1 - beta_1.
        one_minus_beta_2: 1 - beta_2.
        epsilon: Added to sqrt(v).
        v_hat: IN/OUT running maximum of v (AMSGrad), or None.
    """
    w, g, s = _arrays(variable, gradient, m=m, v=v, v_hat=v_hat)
    dt = variable.dtype
    impl("optim").adam_update(w, g, s["m"], s["v"], s["v_hat"], real("alpha", alpha, dt),
                              real("one_minus_beta_1", one_minus_beta_1, dt),
                              real("one_minus_beta_2", one_minus_beta_2, dt), real("epsilon", epsilon, dt))


def sgd_momentum_update(variable: np.ndarray, gradient: ArrayLike, momentums: np.ndarray, learning_rate: float,
                        momentum: float, nesterov: bool = False) -> None:
    """One SGD-with-momentum step (Keras 3), in place:

        momentums = momentum * momentums - learning_rate * g
        variable += momentums, or with nesterov: variable += momentum * momentums - learning_rate * g

    Args:
        variable: IN/OUT parameter, C-contiguous float32|float64.
        gradient: Its gradient g (IN), variable's shape.
        momentums: IN/OUT velocity slot, variable's shape and dtype.
        learning_rate: The learning rate (a float).
        momentum: The momentum, in [0, 1].
        nesterov: Whether to apply Nesterov momentum.
    """
    w, g, s = _arrays(variable, gradient, momentums=momentums)
    dt = variable.dtype
    impl("optim").sgd_momentum_update(w, g, s["momentums"], real("learning_rate", learning_rate, dt),
                                      real("momentum", momentum, dt), flag("nesterov", nesterov))
