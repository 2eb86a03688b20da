"""SGD (Keras 3 `keras.optimizers.SGD`)."""
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import kernels
from .base_optimizer import Optimizer, constructor_arguments
from ..variables import Variable
from .schedules import LearningRateSchedule


class SGD(Optimizer):
    """Gradient descent, optionally with (Nesterov) momentum.

    Without momentum: `w -= learning_rate * g`. With momentum:
    `velocity = momentum * velocity - learning_rate * g`, then `w += velocity`, or with
    `nesterov=True`, `w += momentum * velocity - learning_rate * g`.

    Args:
        learning_rate: float, `LearningRateSchedule` or no-argument callable. Defaults to 0.01.
        momentum: float in [0, 1]. Defaults to 0.0 (plain gradient descent).
        nesterov: whether to use Nesterov momentum. Defaults to False.
        **base arguments: see `Optimizer`. `name` defaults to "SGD".
    """

    _hyperparameters = ("momentum", "nesterov")

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | Callable[[], float] = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = "SGD",
        **kwargs: Any,
    ) -> None:
        super().__init__(**constructor_arguments(locals()))

    def build(self, variables: list[Variable]) -> None:
        if self.built:
            return
        super().build(variables)
        self.momentums = []
        if self.momentum != 0:
            self.momentums = self.add_optimizer_variables(variables, "momentum")

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        dt = variable.dtype.type
        w = variable.value
        if self.momentum != 0:
            # one fused pass: m = momentum * m - lr * g, then w += m (or momentum * m - lr * g)
            kernels.sgd_momentum_update(w, gradient, self.momentums[self._get_variable_index(variable)].value,
                                        learning_rate, self.momentum, self.nesterov)
        else:
            step = self._scratch(variable, 0)
            np.multiply(gradient, dt(learning_rate), out=step)
            np.subtract(w, step, out=w)
