"""Adadelta (Keras 3 `keras.optimizers.Adadelta`)."""
from collections.abc import Callable
from typing import Any

import numpy as np

from .base_optimizer import Optimizer, constructor_arguments
from ..variables import Variable
from .schedules import LearningRateSchedule


class Adadelta(Optimizer):
    """Adadelta: step sizes from moving windows of squared gradients and squared updates.

    `Eg = rho * Eg + (1 - rho) * g**2`;
    `delta = -sqrt(Edx + eps) * g / sqrt(Eg + eps)`;
    `Edx = rho * Edx + (1 - rho) * delta**2`; `w += lr * delta`.

    Args:
        learning_rate: float, `LearningRateSchedule` or no-argument callable. Defaults to 0.001
            (use 1.0 for the exact form of the paper).
        rho: decay rate in [0, 1]. Defaults to 0.95.
        epsilon: small constant >= 0 for numerical stability. Defaults to 1e-7.
        **base arguments: see `Optimizer`. `name` defaults to "adadelta".
    """

    _hyperparameters = ("rho", "epsilon")

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | Callable[[], float] = 0.001,
        rho: float = 0.95,
        epsilon: float = 1e-7,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = "adadelta",
        **kwargs: Any,
    ) -> None:
        super().__init__(**constructor_arguments(locals()))

    def build(self, var_list: list[Variable]) -> None:
        if self.built:
            return
        super().build(var_list)
        self._accumulated_grads, self._accumulated_delta_vars = self.add_optimizer_variables(
            var_list, ["accumulated_grad", "accumulated_delta_var"]
        )

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        dt = variable.dtype.type
        index = self._get_variable_index(variable)
        w, g = variable.value, gradient
        acc_grad = self._accumulated_grads[index].value
        acc_delta = self._accumulated_delta_vars[index].value
        s = self._scratch(variable, 0)
        t = self._scratch(variable, 1)
        rho = dt(self.rho)
        one_minus_rho = dt(1 - self.rho)
        eps = dt(self.epsilon)

        np.square(g, out=s)
        np.multiply(s, one_minus_rho, out=s)
        np.multiply(acc_grad, rho, out=acc_grad)
        np.add(acc_grad, s, out=acc_grad)  # Eg = rho * Eg + (1 - rho) * g^2
        np.add(acc_delta, eps, out=s)
        np.sqrt(s, out=s)
        np.multiply(s, g, out=s)
        np.add(acc_grad, eps, out=t)
        np.sqrt(t, out=t)
        np.divide(s, t, out=s)
        np.negative(s, out=s)  # delta = -(sqrt(Edx + eps) * g) / sqrt(Eg + eps)
        np.square(s, out=t)
        np.multiply(t, one_minus_rho, out=t)
        np.multiply(acc_delta, rho, out=acc_delta)
        np.add(acc_delta, t, out=acc_delta)  # Edx = rho * Edx + (1 - rho) * delta^2
        np.multiply(s, dt(learning_rate), out=s)
        np.add(w, s, out=w)  # w += lr * delta
