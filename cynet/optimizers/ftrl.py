"""FTRL-Proximal (Keras 3 `keras.optimizers.Ftrl`)."""
from .. import kernels
from .base_optimizer import Optimizer, constructor_arguments


class Ftrl(Optimizer):
    """Follow The Regularized Leader (McMahan et al., 2013), with Keras's L2 shrinkage and `beta`.

    With p = -learning_rate_power and l2 = l2_regularization_strength + beta / (2 lr):
    `g' = g + 2 * l2_shrinkage_regularization_strength * w`; `n' = n + g**2`;
    `z += g' - (n'**p - n**p) / lr * w`; `w = (clip(z, -l1, l1) - z) / (n'**p / lr + 2 l2)`; `n = n'`.

    Args:
        learning_rate: float, `LearningRateSchedule` or no-argument callable. Defaults to 0.001.
        learning_rate_power: <= 0; how fast the per-coordinate rate falls (-0.5: 1/sqrt). Defaults to -0.5.
        initial_accumulator_value: starting value (>= 0) of the accumulators `n`. Defaults to 0.1.
        l1_regularization_strength: >= 0. Defaults to 0.0.
        l2_regularization_strength: >= 0 (the stabilization penalty). Defaults to 0.0.
        l2_shrinkage_regularization_strength: >= 0 (a magnitude penalty). Defaults to 0.0.
        beta: float; added to the L2 strength as beta / (2 lr). Defaults to 0.0.
        **base arguments: see `Optimizer`. `name` defaults to "ftrl".

    Slots (Keras's names and order): "accumulator" and "linear" per variable.
    """

    _hyperparameters = ("learning_rate_power", "initial_accumulator_value", "l1_regularization_strength",
                        "l2_regularization_strength", "l2_shrinkage_regularization_strength", "beta")

    def __init__(
        self,
        learning_rate=0.001,
        learning_rate_power=-0.5,
        initial_accumulator_value=0.1,
        l1_regularization_strength=0.0,
        l2_regularization_strength=0.0,
        l2_shrinkage_regularization_strength=0.0,
        beta=0.0,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name="ftrl",
        **kwargs,
    ):
        super().__init__(**constructor_arguments(locals()))

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._accumulators, self._linears = self.add_optimizer_variables(
            var_list, ["accumulator", "linear"], initializer=[self.initial_accumulator_value, "zeros"])

    def update_step(self, gradient, variable, learning_rate):
        dt = variable.dtype.type
        index = self._get_variable_index(variable)
        l2 = self.l2_regularization_strength + self.beta / (2.0 * float(learning_rate))
        # one fused pass over w, its accumulator n and its linear term z
        kernels.ftrl_update(variable.value, gradient, self._accumulators[index].value, self._linears[index].value,
                            dt(learning_rate), dt(-self.learning_rate_power), dt(self.l1_regularization_strength),
                            dt(2) * dt(l2), dt(2 * self.l2_shrinkage_regularization_strength))
