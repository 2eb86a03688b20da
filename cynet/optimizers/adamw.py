"""AdamW (Keras 3 `keras.optimizers.AdamW`)."""
from collections.abc import Callable
from typing import Any

from .adam import Adam
from .base_optimizer import constructor_arguments
from .schedules import LearningRateSchedule


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): before each Adam update,
    `w -= w * weight_decay * learning_rate` (see `Optimizer.exclude_from_weight_decay`).

    Args:
        learning_rate: float, `LearningRateSchedule` or no-argument callable. Defaults to 0.001.
        weight_decay: float >= 0 (required, not None). Defaults to 0.004.
        beta_1: decay rate of the first-moment estimates, in [0, 1). Defaults to 0.9.
        beta_2: decay rate of the second-moment estimates, in [0, 1). Defaults to 0.999.
        epsilon: small constant >= 0 ("epsilon hat" of the paper). Defaults to 1e-7.
        amsgrad: use the AMSGrad variant. Defaults to False.
        **base arguments: see `Optimizer`. `name` defaults to "adamw".
    """

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | Callable[[], float] = 0.001,
        weight_decay: float | None = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = "adamw",
        **kwargs: Any,
    ) -> None:
        super().__init__(**constructor_arguments(locals()))
        if self.weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
