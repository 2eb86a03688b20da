"""cynet.mixed_precision: Keras 3's keras.mixed_precision names.

    cynet.mixed_precision.set_global_policy("mixed_bfloat16")

makes every layer created afterwards (without a dtype of its own) keep float32 variables and run
its matrix products on bfloat16-rounded inputs with float32 accumulation; see cynet.dtype_policies
for what each policy does in cynet and how that differs from Keras.
"""
from typing import Any

from .dtype_policies import DTypePolicy, dtype_policy, set_dtype_policy

__all__ = ["DTypePolicy", "Policy", "dtype_policy", "global_policy", "set_dtype_policy", "set_global_policy",
           "LossScaleOptimizer"]

Policy = DTypePolicy
global_policy = dtype_policy
set_global_policy = set_dtype_policy


class LossScaleOptimizer:
    """Not provided: cynet computes mixed_float16 in float32 (no float16 gradients to underflow)
    and mixed_bfloat16 keeps float32's exponent range, so no loss scaling is needed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("LossScaleOptimizer: cynet needs no loss scaling (mixed_float16 computes in "
                                  "float32 on the CPU; bfloat16 has float32's exponent range)")
