"""Adamax (Keras 3 `keras.optimizers.Adamax`)."""
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import kernels
from .base_optimizer import Optimizer, constructor_arguments
from ..variables import Variable
from .schedules import LearningRateSchedule


class Adamax(Optimizer):
    """Adamax: Adam with the infinity norm in place of the second moment.

    `m += (g - m) * (1 - beta_1)`; `u = max(beta_2 * u, |g|)`;
    `w -= lr * m / ((1 - beta_1**t) * (u + epsilon))`, t the step counted from 1.

    Args:
        learning_rate: float, `LearningRateSchedule` or no-argument callable. Defaults to 0.001.
        beta_1: decay rate of the first moment, in [0, 1). Defaults to 0.9.
        beta_2: decay rate of the infinity norm, in [0, 1). Defaults to 0.999.
        epsilon: small constant >= 0 for numerical stability. Defaults to 1e-7.
        **base arguments: see `Optimizer`. `name` defaults to "adamax".

    Slots (Keras's names and order, so that .keras files carry them): "momentum" and "norm" per
    variable.
    """

    _hyperparameters = ("beta_1", "beta_2", "epsilon")

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | Callable[[], float] = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
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
        name: str | None = "adamax",
        **kwargs: Any,
    ) -> None:
        super().__init__(**constructor_arguments(locals()))

    def build(self, var_list: list[Variable]) -> None:
        if self.built:
            return
        super().build(var_list)
        self._m, self._u = self.add_optimizer_variables(var_list, ["momentum", "norm"])

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        dt = variable.dtype.type
        index = self._get_variable_index(variable)
        correction = dt(1) - np.power(dt(self.beta_1), dt(self.iterations + 1))
        # one fused pass: m and u updated, then w -= lr * m / ((u + eps) * (1 - beta_1^t))
        kernels.adamax_update(variable.value, gradient, self._m[index].value, self._u[index].value,
                              dt(learning_rate), dt(1 - self.beta_1), dt(self.beta_2), correction, dt(self.epsilon))
