"""Adagrad (Keras 3 `keras.optimizers.Adagrad`)."""
import numpy as np

from . import _checks
from .base_optimizer import Optimizer


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

    def __init__(
        self,
        learning_rate=0.001,
        initial_accumulator_value=0.1,
        epsilon=1e-7,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name="adagrad",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self.initial_accumulator_value = _checks.in_range(
            "Adagrad", "initial_accumulator_value", initial_accumulator_value, low=0.0
        )
        self.epsilon = _checks.in_range("Adagrad", "epsilon", epsilon, low=0.0)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._accumulators = [
            self.add_variable(
                shape=var.shape, initializer=self.initial_accumulator_value, dtype=var.dtype, name="accumulator"
            )
            for var in var_list
        ]

    def update_step(self, gradient, variable, learning_rate):
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

    def get_config(self):
        config = super().get_config()
        config.update({"initial_accumulator_value": self.initial_accumulator_value, "epsilon": self.epsilon})
        return config
