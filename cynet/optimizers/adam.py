"""Adam (Keras 3 `keras.optimizers.Adam`)."""
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import kernels
from .base_optimizer import Optimizer, constructor_arguments
from ..variables import Variable
from .schedules import LearningRateSchedule


class Adam(Optimizer):
    """Adam: adaptive estimates of the first and second moments of the gradients.

    With `t = iterations + 1`:
    `m += (g - m) * (1 - beta_1)`, `v += (g**2 - v) * (1 - beta_2)`,
    `alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)`, `w -= alpha * m / (sqrt(v) + epsilon)`;
    with `amsgrad=True`, `v_hat = max(v_hat, v)` replaces `v` in the last formula.

    Args:
        learning_rate: float, `LearningRateSchedule` or no-argument callable. Defaults to 0.001.
        beta_1: decay rate of the first-moment estimates, in [0, 1). Defaults to 0.9.
        beta_2: decay rate of the second-moment estimates, in [0, 1). Defaults to 0.999.
        epsilon: small constant >= 0 ("epsilon hat" of the paper). Defaults to 1e-7.
        amsgrad: use the AMSGrad variant. Defaults to False.
        **base arguments: see `Optimizer`. `name` defaults to "adam".
    """

    _hyperparameters = ("beta_1", "beta_2", "epsilon", "amsgrad")

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | Callable[[], float] = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = "adam",
        **kwargs: Any,
    ) -> None:
        super().__init__(**constructor_arguments(locals()))

    def build(self, var_list: list[Variable]) -> None:
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])
        if self.amsgrad:
            self._velocity_hats = self.add_optimizer_variables(var_list, "velocity_hat")

    def _scalars(self, dt, learning_rate):
        local_step = dt(self.iterations + 1)
        beta_1_power = np.power(dt(self.beta_1), local_step)
        beta_2_power = np.power(dt(self.beta_2), local_step)
        alpha = dt(learning_rate) * np.sqrt(dt(1) - beta_2_power) / (dt(1) - beta_1_power)
        return alpha, dt(1 - self.beta_1), dt(1 - self.beta_2), dt(self.epsilon)

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        dt = variable.dtype.type
        index = self._get_variable_index(variable)
        alpha, one_minus_beta_1, one_minus_beta_2, epsilon = self._step_scalars(
            (dt, learning_rate), lambda: self._scalars(dt, learning_rate)
        )
        # one fused pass: m, v (and v_hat) updated, then w -= (m * alpha) / (sqrt(v) + eps)
        kernels.adam_update(variable.value, gradient, self._momentums[index].value,
                            self._velocities[index].value, alpha, one_minus_beta_1, one_minus_beta_2,
                            epsilon, v_hat=self._velocity_hats[index].value if self.amsgrad else None)
