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
        weight_decay: `None` or a float >= 0; if set, `variable -= variable * weight_decay * lr` is applied
            before every update (decoupled weight decay).
        clipnorm: If set, each gradient is clipped so that its L2 norm is at most this value.
        clipvalue: If set, each gradient is clipped elementwise to `[-clipvalue, clipvalue]`.
        global_clipnorm: If set, all gradients are scaled so that their joint L2 norm is at most this value
            (at most one of the three clip options may be set).
        use_ema: Whether to keep an exponential moving average of the weights (see `ema_momentum`).
        ema_momentum: Momentum of the moving average of the weights when `use_ema=True`: `ema = ema_momentum *
            ema + (1 - ema_momentum) * w`.
        ema_overwrite_frequency: With `use_ema`, overwrite the weights with their moving average every this
            many steps (`None`: only at `finalize_variable_values`).
        loss_scale_factor: If set, gradients are divided by it (the loss is multiplied by it in `scale_loss`),
            for loss scaling.
        gradient_accumulation_steps: If set (int >= 2), variables are updated only every that many calls, with
            the mean of the accumulated gradients.
        name: Name of the optimizer, the prefix of its variables' paths.

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
