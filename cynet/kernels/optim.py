"""Fused optimizer updates: one in-place pass over a variable and its optimizer slots.

The optimizers in cynet.optimizers call these for their per-variable step; the NumPy twin
computes the same with ufuncs (Adam, SGD with momentum, Adamax, Lion, Ftrl; the other optimizers
update with NumPy ufuncs directly). Arrays: the variable and every slot (m, v, v_hat, momentums, u,
accumulator, linear)
C-contiguous, writable, of one float dtype and one shape, updated IN PLACE; the gradient of
the same shape (any real dtype and layout: it is converted to the variable's). Scalars are
Python or NumPy numbers, cast to the variable's dtype.
"""
import math

import numpy as np

from .._validation import as_array, flag, inplace_array, real
from ._backend import impl
from .._typing import ArrayLike

__all__ = ["adam_update", "sgd_momentum_update", "adamax_update", "lion_update", "ftrl_update"]


def _state(name, a, variable):
    """A slot (or the variable itself) as the flat view the kernels update in place."""
    return inplace_array(name, a, variable.dtype, variable.shape, "the variable's").reshape(-1)


def _ready(variable, gradient, slots):
    """Whether the arrays need no conversion and no check beyond this one (the optimizers' own
    calls, every step): all C-contiguous NumPy arrays of the variable's float dtype and shape,
    the state writable, no two overlapping. Anything else takes `_arrays`, which converts or
    names what is wrong."""
    if type(variable) is not np.ndarray or type(gradient) is not np.ndarray:
        return False
    dt, shape = variable.dtype, variable.shape
    if dt not in _FLOATS or gradient.dtype is not dt and gradient.dtype != dt or gradient.shape != shape \
            or not gradient.flags.c_contiguous:
        return False
    for a in slots:
        if type(a) is not np.ndarray or a.dtype != dt or a.shape != shape:
            return False
    state = [variable, *slots]
    for a in state:
        flags = a.flags
        if not (flags.c_contiguous and flags.writeable) or np.may_share_memory(a, gradient):
            return False
    for i in range(len(state) - 1):
        for b in state[i + 1:]:
            if np.may_share_memory(state[i], b):
                return False
    return True


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _scalar(name, value, dt):
    """A scalar argument as the kernels take it: one already of the variable's dtype and finite
    passes as it is (the optimizers compute theirs so), anything else through `real`."""
    if type(value) is dt.type and math.isfinite(value):
        return value
    return real(name, value, dt)


def _arrays(variable, gradient, **slots):
    """The flat views the kernels update: at once when `_ready` (every optimizer step), else after
    converting the gradient and checking every array, naming the one that is wrong."""
    if _ready(variable, gradient, [a for k, a in slots.items() if not (k == "v_hat" and a is None)]):
        return variable.reshape(-1), gradient.reshape(-1), {k: None if a is None else a.reshape(-1)
                                                            for k, a in slots.items()}
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
    impl("optim").adam_update(w, g, s["m"], s["v"], s["v_hat"], _scalar("alpha", alpha, dt),
                              _scalar("one_minus_beta_1", one_minus_beta_1, dt),
                              _scalar("one_minus_beta_2", one_minus_beta_2, dt), _scalar("epsilon", epsilon, dt))


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
    impl("optim").sgd_momentum_update(w, g, s["momentums"], _scalar("learning_rate", learning_rate, dt),
                                      _scalar("momentum", momentum, dt), flag("nesterov", nesterov))


def adamax_update(variable: np.ndarray, gradient: ArrayLike, m: np.ndarray, u: np.ndarray, learning_rate: float,
                  one_minus_beta_1: float, beta_2: float, correction: float, epsilon: float) -> None:
    """One Adamax step (Keras 3), in place:

        m += (g - m) * one_minus_beta_1;  u = max(beta_2 * u, |g|)
        variable -= (m * learning_rate) / ((u + epsilon) * correction)

    correction is the bias correction 1 - beta_1**t (t the 1-based step).

    Args:
        variable: The variable's array (float32 or float64, C-contiguous, writable), updated in place.
        gradient: Its gradient, of the variable's shape (converted to its dtype).
        m: First-moment slot, of the variable's shape and dtype, updated in place.
        u: Exponentially weighted infinity-norm slot, updated in place.
        learning_rate: The step size.
        one_minus_beta_1: 1 - beta_1.
        beta_2: Decay of the infinity norm.
        correction: 1 - beta_1**t.
        epsilon: Added to u for numerical stability.
    """
    w, g, s = _arrays(variable, gradient, m=m, u=u)
    dt = variable.dtype
    impl("optim").adamax_update(w, g, s["m"], s["u"], _scalar("learning_rate", learning_rate, dt),
                                _scalar("one_minus_beta_1", one_minus_beta_1, dt), _scalar("beta_2", beta_2, dt),
                                _scalar("correction", correction, dt), _scalar("epsilon", epsilon, dt))


def lion_update(variable: np.ndarray, gradient: ArrayLike, m: np.ndarray, learning_rate: float, beta_1: float,
                one_minus_beta_1: float, beta_2: float, one_minus_beta_2: float) -> None:
    """One Lion step (Keras 3), in place:

        variable -= learning_rate * sign(beta_1 * m + one_minus_beta_1 * g)
        m = beta_2 * m + one_minus_beta_2 * g

    Args:
        variable: The variable's array (float32 or float64, C-contiguous, writable), updated in place.
        gradient: Its gradient, of the variable's shape (converted to its dtype).
        m: Momentum slot, of the variable's shape and dtype, updated in place.
        learning_rate: The step size.
        beta_1: Interpolation factor of the update direction.
        one_minus_beta_1: 1 - beta_1.
        beta_2: Decay of the momentum.
        one_minus_beta_2: 1 - beta_2.
    """
    w, g, s = _arrays(variable, gradient, m=m)
    dt = variable.dtype
    impl("optim").lion_update(w, g, s["m"], _scalar("learning_rate", learning_rate, dt), _scalar("beta_1", beta_1, dt),
                              _scalar("one_minus_beta_1", one_minus_beta_1, dt), _scalar("beta_2", beta_2, dt),
                              _scalar("one_minus_beta_2", one_minus_beta_2, dt))


def ftrl_update(variable: np.ndarray, gradient: ArrayLike, accumulator: np.ndarray, linear: np.ndarray,
                learning_rate: float, power: float, l1: float, two_l2: float, two_shrinkage: float) -> None:
    """One FTRL-Proximal step (Keras 3 Ftrl), in place, with p = power = -learning_rate_power:

        linear += g + two_shrinkage * w - ((accumulator + g**2)**p - accumulator**p) / learning_rate * w
        accumulator += g**2
        variable = (clip(linear, -l1, l1) - linear) / (accumulator**p / learning_rate + two_l2)

    two_l2 is 2 * (l2_regularization_strength + beta / (2 learning_rate)).

    Args:
        variable: The variable's array (float32 or float64, C-contiguous, writable), updated in place.
        gradient: Its gradient, of the variable's shape (converted to its dtype).
        accumulator: Sum of squared gradients, updated in place.
        linear: The linear slot, updated in place.
        learning_rate: The step size.
        power: -learning_rate_power.
        l1: The L1 regularization strength.
        two_l2: 2 * (l2_regularization_strength + beta / (2 learning_rate)).
        two_shrinkage: 2 * l2_shrinkage_regularization_strength.
    """
    w, g, s = _arrays(variable, gradient, accumulator=accumulator, linear=linear)
    dt = variable.dtype
    impl("optim").ftrl_update(w, g, s["accumulator"], s["linear"], _scalar("learning_rate", learning_rate, dt),
                              _scalar("power", power, dt), _scalar("l1", l1, dt), _scalar("two_l2", two_l2, dt),
                              _scalar("two_shrinkage", two_shrinkage, dt))
