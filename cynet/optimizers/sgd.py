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
