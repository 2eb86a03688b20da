"""Adam (Keras 3 `keras.optimizers.Adam`)."""
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import kernels
from ..kernels._backend import impl as _impl
from .base_optimizer import Optimizer, constructor_arguments
from ..variables import Variable
from .schedules import LearningRateSchedule


_POWER_STEPS = 256


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
        """(alpha, 1 - beta_1, 1 - beta_2, epsilon) of this step in `dt`. While the learning rate
        and the betas stay as they were at the previous step, read from a table of the
        _POWER_STEPS steps' values (made by the same operations on arrays, element for element
        the same numbers); otherwise computed for this step alone."""
        step = self.iterations + 1
        key = (dt, float(learning_rate), float(self.beta_1), float(self.beta_2), float(self.epsilon))
        block, index = divmod(step - 1, _POWER_STEPS)
        table = self.__dict__.get("_alpha_table")
        if table is not None and table[0] == key:
            if table[1] != block:
                alpha = self._alpha(dt, learning_rate, np.arange(1, _POWER_STEPS + 1) + block * _POWER_STEPS)
                table = self._alpha_table = (key, block, alpha, table[3])
            return (table[2][index],) + table[3]
        self._alpha_table = (key, None, None, (dt(1 - self.beta_1), dt(1 - self.beta_2), dt(self.epsilon)))
        return (self._alpha(dt, learning_rate, step),) + self._alpha_table[3]

    def _alpha(self, dt, learning_rate, step):
        """The bias-corrected learning rate lr * sqrt(1 - beta_2**t) / (1 - beta_1**t) in `dt`, for
        one step t or an array of consecutive ones."""
        beta_1_power = self._power(dt, self.beta_1, step)
        beta_2_power = self._power(dt, self.beta_2, step)
        return dt(learning_rate) * np.sqrt(dt(1) - beta_2_power) / (dt(1) - beta_1_power)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        """Every variable's step, with the step's scalars computed once per dtype and, for the
        arrays `_slots_of` vouches for (the variable's and its slots', checked once) and a
        gradient of the variable's dtype, shape and layout (checked here, every step), the
        compiled kernel called directly; anything else (a subclass's own update_step too) takes
        `update_step`, which checks and converts every argument."""
        if getattr(self.update_step, "__func__", None) is not Adam.update_step:   # (set on the class or instance)
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        scalars = {}
        kernel = None
        for grad, variable in zip(grads, trainable_variables):
            slots = self._slots_of(variable)
            if slots is None or not _fits(grad, slots):
                self.update_step(grad, variable, learning_rate)
                continue
            dt = slots[0].dtype.type
            s = scalars.get(dt)
            if s is None:
                s = self._step_scalars((dt, learning_rate), lambda: self._scalars(dt, learning_rate))
                s = scalars[dt] = s if all(math.isfinite(c) for c in s) else ()
            if not s:   # (a learning rate of inf or NaN: update_step names it)
                self.update_step(grad, variable, learning_rate)
                continue
            if kernel is None:
                kernel = _impl("optim").adam_update
            kernel(slots[4], grad.reshape(-1), slots[5], slots[6], slots[7], *s)

    def _slots_of(self, variable):
        """(value, m, v, v_hat, their flat views, whether all four own their memory) of
        `variable`, checked once for as long as the same arrays stay in place: C-contiguous,
        writable, one float dtype and shape, no two overlapping; None when they are not
        (update_step then names what is wrong)."""
        index = self._trainable_variables_indices[self._var_key(variable)]
        m, v = self._momentums[index].value, self._velocities[index].value
        v_hat = self._velocity_hats[index].value if self.amsgrad else None
        cache = self.__dict__.get("_slot_views")
        if cache is None:
            cache = self._slot_views = {}
        hit = cache.get(index)
        if hit is not None and hit[0] is variable.value and hit[1] is m and hit[2] is v and hit[3] is v_hat \
                and hit[0].flags.writeable:   # (a variable made read-only since: update_step refuses it)
            return hit
        cache.pop(index, None)
        arrays = (variable.value, m, v, v_hat)
        state = [a for a in arrays if a is not None]
        w = state[0]
        if type(w) is not np.ndarray or w.dtype not in (np.float32, np.float64):
            return None
        for a in state:
            if type(a) is not np.ndarray or a.dtype is not w.dtype or a.shape != w.shape \
                    or not (a.flags.c_contiguous and a.flags.writeable):
                return None
        for i, a in enumerate(state):
            if any(np.may_share_memory(a, b) for b in state[i + 1:]):
                return None
        hit = arrays + tuple(None if a is None else a.reshape(-1) for a in arrays) \
            + (all(a.flags.owndata for a in state),)
        cache[index] = hit
        return hit

    def _power(self, dt, beta, step):
        """np.power(dt(beta), dt(step)), read from a table of the next _POWER_STEPS steps' powers
        (one ufunc call for them all, element for element the same numbers as one call per step);
        `step` an int, or an array of the steps of one table block (then the block's powers)."""
        if isinstance(step, np.ndarray):
            block, index = divmod(int(step[0]) - 1, _POWER_STEPS)
            index = slice(None)
        else:
            block, index = divmod(step - 1, _POWER_STEPS)
        tables = self.__dict__.get("_power_tables")
        if tables is None:
            tables = self._power_tables = {}
        key = (dt, float(beta))
        hit = tables.get(key)
        if hit is None or hit[0] != block:
            first = block * _POWER_STEPS + 1
            steps = np.arange(first, first + _POWER_STEPS, dtype=np.float64).astype(dt)
            hit = tables[key] = (block, np.power(dt(beta), steps))
        return hit[1][index]

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


def _fits(grad, slots):
    """Whether `grad` is what the kernel takes with the arrays of `slots` (see Adam._slots_of):
    an ndarray of their dtype, shape and layout that overlaps none of them (an array owning its
    memory cannot, when they own theirs and it is none of them)."""
    if type(grad) is not np.ndarray or grad.dtype is not slots[0].dtype or grad.shape != slots[0].shape:
        return False
    flags = grad.flags
    if not flags.c_contiguous:
        return False
    if slots[8] and flags.owndata:
        return grad is not slots[0] and grad is not slots[1] and grad is not slots[2] and grad is not slots[3]
    return not any(a is not None and np.may_share_memory(grad, a) for a in slots[:4])
