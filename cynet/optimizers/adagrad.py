"""Adagrad (Keras 3 `keras.optimizers.Adagrad`)."""
from collections.abc import Callable
from typing import Any

import numpy as np

from .base_optimizer import Optimizer, constructor_arguments
from ..variables import Variable
from .schedules import LearningRateSchedule


class Adagrad(Optimizer):
    """Adagrad: per-parameter learning rates scaled by the accumulated squared gradients.

    `acc += g**2; w -= lr * g / sqrt(acc + eps)`, with `acc` starting at
    `initial_accumulator_value`.

    Args:
        learning_rate: float, `LearningRateSchedule` or no-argument callable. Defaults to 0.001.
        initial_accumulator_value: starting value (>= 0) of the accumulators. Defaults to 0.1.
        epsilon: small constant >= 0 for numerical stability. Defaults to 1e-7.
        **base arguments: see `Optimizer`. `name` defaults to "adagrad".
    """

    _hyperparameters = ("initial_accumulator_value", "epsilon")

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | Callable[[], float] = 0.001,
        initial_accumulator_value: float = 0.1,
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
        name: str | None = "adagrad",
        **kwargs: Any,
    ) -> None:
        super().__init__(**constructor_arguments(locals()))

    def build(self, var_list: list[Variable]) -> None:
        if self.built:
            return
        super().build(var_list)
        self._accumulators = [
            self.add_variable(
                shape=var.shape, initializer=self.initial_accumulator_value, dtype=var.dtype, name="accumulator"
            )
            for var in var_list
        ]

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        dt = variable.dtype.type
        w, g = variable.value, gradient
        acc = self._accumulators[self._get_variable_index(variable)].value
        s = self._scratch(variable, 0)
        t = self._scratch(variable, 1)
        np.square(g, out=s)
        np.add(acc, s, out=acc)  # acc += g^2
        np.add(acc, dt(self.epsilon), out=s)
        np.sqrt(s, out=s)
        np.multiply(g, dt(learning_rate), out=t)
        np.divide(t, s, out=t)
        np.subtract(w, t, out=w)  # w -= lr * g / sqrt(acc + eps)
