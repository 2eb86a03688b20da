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
