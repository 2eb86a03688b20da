"""Adafactor (Keras 3 `keras.optimizers.Adafactor`)."""
from collections.abc import Callable
from typing import Any

import numpy as np

from .._validation import argument_bool, argument_real
from .base_optimizer import Optimizer, constructor_arguments
from ..variables import Variable
from .schedules import LearningRateSchedule


def _rms(x):
    return np.sqrt(np.mean(np.square(x)))


class Adafactor(Optimizer):
    """Adafactor (Shazeer & Stern, 2018): second moments kept factored, as row and column means,
    for every variable of rank >= 2 (memory O(rows + columns) instead of O(rows * columns)).

    With t the step counted from 1, rho = min(lr, 1/sqrt(t)) (lr itself is capped the same way when
    `relative_step` and the learning rate is a number), alpha = max(epsilon_2, rms(w)) * rho,
    g2 = g**2 + epsilon_1 and beta = 1 - t**beta_2_decay:
    rank >= 2: `r = beta r + (1 - beta) mean(g2, -1)`, `c = beta c + (1 - beta) mean(g2, -2)`,
    `v = (r / mean(r, -1))[..., None] * c[..., None, :]`; otherwise `v = beta v + (1 - beta) g2`;
    `u = g / sqrt(v)`; `w -= alpha * u / max(1, rms(u) / clip_threshold)`.

    Args:
        learning_rate: float, `LearningRateSchedule` or no-argument callable. Defaults to 0.001.
        beta_2_decay: the decay exponent of the second-moment rate. Defaults to -0.8.
        epsilon_1: added to the squared gradients. Defaults to 1e-30.
        epsilon_2: the least scale of a step (relative to rms(w)). Defaults to 1e-3.
        clip_threshold: the largest rms of an update direction. Defaults to 1.0.
        relative_step: cap the learning rate at 1/sqrt(t). Defaults to True.
        **base arguments: see `Optimizer`. `name` defaults to "adafactor".

    Slots in Keras's order, variable by variable: for rank >= 2 its row and column factors
    (named after the variable; for lower ranks two int32 scalar placeholders, as Keras keeps), then
    a "velocity" of its shape.
    """

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | Callable[[], float] = 0.001,
        beta_2_decay: float = -0.8,
        epsilon_1: float = 1e-30,
        epsilon_2: float = 1e-3,
        clip_threshold: float = 1.0,
        relative_step: bool = True,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = "adafactor",
        **kwargs: Any,
    ) -> None:
        arguments = constructor_arguments(locals())
        own = {k: arguments.pop(k) for k in ("beta_2_decay", "epsilon_1", "epsilon_2", "clip_threshold",
                                              "relative_step")}
        super().__init__(**arguments)
        for k in ("beta_2_decay", "epsilon_1", "epsilon_2", "clip_threshold"):
            setattr(self, k, argument_real("Adafactor", k, own[k]))
        self.relative_step = argument_bool("Adafactor", "relative_step", own["relative_step"])

    def build(self, var_list: list[Variable]) -> None:
        if self.built:
            return
        super().build(var_list)
        self._r, self._c, self._v = [], [], []
        for var in var_list:
            shape = tuple(var.shape)
            name = getattr(var, "name", None) or "variable"
            if len(shape) >= 2:
                self._r.append(self.add_variable(shape[:-1], dtype=var.dtype, name=name))
                self._c.append(self.add_variable(shape[:-2] + shape[-1:], dtype=var.dtype, name=name))
            else:   # not factored: Keras's two int32 placeholders (they hold a place in its saved state)
                self._r.append(self.add_variable((), dtype="int32", name=name))
                self._c.append(self.add_variable((), dtype="int32", name=name))
            self._v.append(self.add_variable_from_reference(var, name="velocity"))

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        dt = variable.dtype.type
        index = self._get_variable_index(variable)
        w, g = variable.value, np.asarray(gradient, dtype=variable.dtype)
        t = dt(self.iterations + 1)
        lr = dt(learning_rate)
        cap = dt(1) / np.sqrt(t)
        if not callable(self._learning_rate) and self.relative_step:
            lr = min(lr, cap)
        rho = min(lr, cap)
        alpha = max(dt(self.epsilon_2), _rms(w).astype(dt)) * rho
        g2 = np.square(g) + dt(self.epsilon_1)
        beta = dt(1) - np.power(t, dt(self.beta_2_decay))
        v = self._v[index].value
        if w.ndim >= 2:
            r, c = self._r[index].value, self._c[index].value
            r[...] = beta * r + (dt(1) - beta) * np.mean(g2, axis=-1)
            c[...] = beta * c + (dt(1) - beta) * np.mean(g2, axis=-2)
            v[...] = (r / np.mean(r, axis=-1, keepdims=True))[..., None] * c[..., None, :]
        else:
            v[...] = beta * v + (dt(1) - beta) * g2
        u = g / np.sqrt(v)
        u /= max(dt(1), _rms(u) / dt(self.clip_threshold))
        w -= alpha * u

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_2_decay": self.beta_2_decay, "epsilon_1": self.epsilon_1,
                "epsilon_2": self.epsilon_2, "clip_threshold": self.clip_threshold,
                "relative_step": self.relative_step}
