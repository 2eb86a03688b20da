"""Lion (Keras 3 `keras.optimizers.Lion`)."""
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import kernels
from .._validation import argument_in_range
from .base_optimizer import Optimizer, constructor_arguments
from ..variables import Variable
from .schedules import LearningRateSchedule


class Lion(Optimizer):
    """Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms"): steps of equal
    size in every coordinate, in the sign of an interpolated momentum.

    `w -= lr * sign(beta_1 * m + (1 - beta_1) * g)`; `m = beta_2 * m + (1 - beta_2) * g`.

    Args:
        learning_rate: float, `LearningRateSchedule` or no-argument callable. Defaults to 0.001.
        beta_1: interpolation factor of the update direction, in (0, 1] (0 would make it SignSGD).
            Defaults to 0.9.
        beta_2: decay rate of the momentum, in [0, 1). Defaults to 0.99.
        **base arguments: see `Optimizer`. `name` defaults to "lion".

    Slots (Keras's names and order): "momentum" per variable.
    """

    _hyperparameters = ("beta_2",)

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | Callable[[], float] = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = "lion",
        **kwargs: Any,
    ) -> None:
        arguments = constructor_arguments(locals())
        beta_1 = arguments.pop("beta_1")
        super().__init__(**arguments)
        # Lion's own interval (Keras's check): beta_1 = 0 would make it SignSGD, 1 is allowed
        self.beta_1 = argument_in_range("Lion", "beta_1", beta_1, 0.0, 1.0, low_open=True)

    def build(self, var_list: list[Variable]) -> None:
        if self.built:
            return
        super().build(var_list)
        self._momentums = self.add_optimizer_variables(var_list, "momentum")

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        dt = variable.dtype.type
        m = self._momentums[self._get_variable_index(variable)]
        # one fused pass: w -= lr * sign(beta_1 m + (1 - beta_1) g); m = beta_2 m + (1 - beta_2) g
        kernels.lion_update(variable.value, gradient, m.value, dt(learning_rate), dt(self.beta_1),
                            dt(1 - self.beta_1), dt(self.beta_2), dt(1 - self.beta_2))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1}
