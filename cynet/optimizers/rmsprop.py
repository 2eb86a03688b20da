"""RMSprop (Keras 3 `keras.optimizers.RMSprop`)."""
from collections.abc import Callable
from typing import Any

import numpy as np

from .base_optimizer import Optimizer, constructor_arguments
from ..variables import Variable
from .schedules import LearningRateSchedule


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a moving root-mean-square of recent gradients.

    `v = rho * v + (1 - rho) * g**2`; with `centered=True` also `a = rho * a + (1 - rho) * g` and
    the denominator is `v - a**2` instead of `v`; `increment = lr * g / sqrt(denominator + eps)`;
    with momentum `mom = momentum * mom + increment; w -= mom`, else `w -= increment`.

    Args:
        learning_rate: float, `LearningRateSchedule` or no-argument callable. Defaults to 0.001.
        rho: discounting factor for the old gradients, in [0, 1]. Defaults to 0.9.
        momentum: in [0, 1]. Defaults to 0.0.
        epsilon: small constant >= 0 for numerical stability. Defaults to 1e-7.
        centered: normalize by the estimated variance of the gradient. Defaults to False.
        **base arguments: see `Optimizer`. `name` defaults to "rmsprop".
    """

    _hyperparameters = ("rho", "momentum", "epsilon", "centered")

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | Callable[[], float] = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = "rmsprop",
        **kwargs: Any,
    ) -> None:
        super().__init__(**constructor_arguments(locals()))

    def build(self, var_list: list[Variable]) -> None:
        if self.built:
            return
        super().build(var_list)
        self._velocities = self.add_optimizer_variables(var_list, "velocity")
        self._momentums = []
        if self.momentum > 0:
            self._momentums = self.add_optimizer_variables(var_list, "momentum")
        self._average_gradients = []
        if self.centered:
            self._average_gradients = self.add_optimizer_variables(var_list, "average_gradient")

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        dt = variable.dtype.type
        index = self._get_variable_index(variable)
        w, g = variable.value, gradient
        v = self._velocities[index].value
        s = self._scratch(variable, 0)
        t = self._scratch(variable, 1)
        rho = dt(self.rho)
        one_minus_rho = dt(1 - self.rho)

        np.multiply(v, rho, out=v)
        np.square(g, out=s)
        np.multiply(s, one_minus_rho, out=s)
        np.add(v, s, out=v)  # v = rho * v + (1 - rho) * g^2
        if self.centered:
            a = self._average_gradients[index].value
            np.multiply(a, rho, out=a)
            np.multiply(g, one_minus_rho, out=s)
            np.add(a, s, out=a)  # a = rho * a + (1 - rho) * g
            np.square(a, out=s)
            np.subtract(v, s, out=s)
            np.add(s, dt(self.epsilon), out=s)  # v - a^2 + eps
        else:
            np.add(v, dt(self.epsilon), out=s)  # v + eps
        np.sqrt(s, out=s)
        np.multiply(g, dt(learning_rate), out=t)
        np.divide(t, s, out=t)  # increment = lr * g / sqrt(denominator)
        if self.momentum > 0:
            mom = self._momentums[index].value
            np.multiply(mom, dt(self.momentum), out=mom)
            np.add(mom, t, out=mom)
            np.subtract(w, mom, out=w)
        else:
            np.subtract(w, t, out=w)
