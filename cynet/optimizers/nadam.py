"""Nadam (Keras 3 `keras.optimizers.Nadam`)."""
from collections.abc import Callable
from typing import Any

import numpy as np

from .base_optimizer import Optimizer, constructor_arguments
from ..variables import Variable
from .schedules import LearningRateSchedule


class Nadam(Optimizer):
    """Nadam: Adam with Nesterov momentum (Dozat 2015), with the momentum schedule
    `u_t = beta_1 * (1 - 0.5 * 0.96**t)` and its running product `u_product` (a state variable).

    With `t = iterations + 1`:
    `m += (g - m) * (1 - beta_1)`, `v += (g**2 - v) * (1 - beta_2)`,
    `m_hat = u_{t+1} * m / (1 - u_product * u_{t+1}) + (1 - u_t) * g / (1 - u_product)`,
    `v_hat = v / (1 - beta_2**t)`, `w -= lr * m_hat / (sqrt(v_hat) + epsilon)`.

    Args:
        learning_rate: float, `LearningRateSchedule` or no-argument callable. Defaults to 0.001.
        beta_1: in [0, 1). Defaults to 0.9.
        beta_2: in [0, 1). Defaults to 0.999.
        epsilon: small constant >= 0. Defaults to 1e-7.
        **base arguments: see `Optimizer`. `name` defaults to "nadam".
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
        name: str | None = "nadam",
        **kwargs: Any,
    ) -> None:
        super().__init__(**constructor_arguments(locals()))

    def build(self, var_list: list[Variable]) -> None:
        if self.built:
            return
        var_list = list(var_list)
        dtype = var_list[0].dtype if var_list else np.dtype("float32")
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])
        self._u_product = self.add_variable(shape=(), initializer=1.0, dtype=dtype, name="u_product")

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # Once per step, before the per-variable updates: u_product *= u_t.
        u = self._u_product.value
        dt = u.dtype.type
        local_step = dt(self.iterations + 1)
        u[...] = (u[()] * dt(self.beta_1)) * (dt(1.0) - dt(0.5) * np.power(dt(0.96), local_step))
        super()._backend_update_step(grads, trainable_variables, learning_rate)

    def _scalars(self, dt, learning_rate):
        local_step = dt(self.iterations + 1)
        next_step = dt(self.iterations + 2)
        decay = dt(0.96)
        beta_1 = dt(self.beta_1)
        beta_2 = dt(self.beta_2)
        u_t = beta_1 * (dt(1.0) - dt(0.5) * np.power(decay, local_step))
        u_t_1 = beta_1 * (dt(1.0) - dt(0.5) * np.power(decay, next_step))
        u_product_t = dt(self._u_product.value[()])
        u_product_t_1 = u_product_t * u_t_1
        beta_2_power = np.power(beta_2, local_step)
        return u_t, u_t_1, u_product_t, u_product_t_1, beta_2_power, beta_1, beta_2, dt(learning_rate), dt(self.epsilon)

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        dt = variable.dtype.type
        index = self._get_variable_index(variable)
        w, g = variable.value, gradient
        m = self._momentums[index].value
        v = self._velocities[index].value
        s = self._scratch(variable, 0)
        t = self._scratch(variable, 1)

        (u_t, u_t_1, u_product_t, u_product_t_1, beta_2_power, beta_1, beta_2, lr, eps) = self._step_scalars(
            (dt, learning_rate), lambda: self._scalars(dt, learning_rate)
        )

        np.subtract(g, m, out=s)
        np.multiply(s, dt(1) - beta_1, out=s)
        np.add(m, s, out=m)  # m += (g - m) * (1 - beta_1)
        np.square(g, out=s)
        np.subtract(s, v, out=s)
        np.multiply(s, dt(1) - beta_2, out=s)
        np.add(v, s, out=v)  # v += (g^2 - v) * (1 - beta_2)

        np.multiply(m, u_t_1, out=s)
        np.divide(s, dt(1) - u_product_t_1, out=s)
        np.multiply(g, dt(1) - u_t, out=t)
        np.divide(t, dt(1) - u_product_t, out=t)
        np.add(s, t, out=s)  # m_hat
        np.divide(v, dt(1) - beta_2_power, out=t)  # v_hat
        np.sqrt(t, out=t)
        np.add(t, eps, out=t)
        np.multiply(s, lr, out=s)
        np.divide(s, t, out=s)
        np.subtract(w, s, out=w)  # w -= m_hat * lr / (sqrt(v_hat) + eps)
