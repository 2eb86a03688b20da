"""Learning-rate schedules (Keras 3 `keras.optimizers.schedules`).

A schedule is a callable `schedule(step) -> float` that an optimizer evaluates at its iteration
count before every update. Formulas, defaults and argument checks follow Keras 3. Like Keras
(whose learning rates are float32 tensors), the arithmetic is done in float32 and the result is
returned as a Python float holding that float32 value.

Serialization uses a closed registry of the classes in this module (plus any `custom_objects`
the caller passes explicitly); nothing is ever imported by name.
"""
import bisect
import math
import reprlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import ArgumentTypeError, argument_bool, argument_real, is_real, to_python

_F = np.float32

__all__ = [
    "LearningRateSchedule",
    "ExponentialDecay",
    "InverseTimeDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "CosineDecay",
    "CosineDecayRestarts",
    "serialize",
    "deserialize",
]


def _step(owner, step):
    """The step as a Python int or float (accepts ints, NumPy scalars, 0-d arrays, Variables)."""
    if hasattr(step, "value") and isinstance(getattr(step, "value"), np.ndarray):
        step = step.value
    step = to_python(step)
    if not is_real(step):
        raise ArgumentTypeError(f"{owner}: `step` must be a real number; received step={step!r}")
    return step


def _decay_steps(owner, name, value):
    value = to_python(value)
    argument_real(owner, name, value)
    if value <= 0:
        raise ValueError(f"{owner}: argument `{name}` must be > 0. Received: {name}={value}")
    return value


def _number(owner, name, value):
    value = to_python(value)
    argument_real(owner, name, value)
    return value


#: Repr of long argument lists in messages: their first elements and "...", never the whole list.
_short = reprlib.Repr()
_short.maxlist = _short.maxtuple = 6
_short.maxlevel = 2
_short.maxother = _short.maxstring = 80


def _as_list(seq):
    """`list(seq)`; a 1-d numeric array becomes its Python numbers in one C loop (`tolist`)."""
    if isinstance(seq, np.ndarray) and seq.ndim == 1 and seq.dtype.kind in "iuf":
        return seq.tolist()
    return list(seq)


def _real_list(owner, name, seq):
    """The list `seq` checked element by element as `_number` checks one argument, and returned
    as Python numbers (ints stay ints), with a float64 copy of it.

    Linear in `len(seq)` with a small constant: lists of plain ints and floats (what JSON and
    `tolist` give) and of NumPy scalars are checked in bulk; any other element type, and a list
    holding a bad element, take the per-element check, which names the first bad index.
    """
    types = set(map(type, seq))
    if not types <= {int, float} and all(
        t in (int, float) or issubclass(t, (np.integer, np.floating)) for t in types
    ):
        seq = [v.item() if isinstance(v, np.generic) else v for v in seq]
        types = set(map(type, seq))
    if types <= {int, float}:
        try:
            as_float = np.array(list(map(float, seq)), dtype=np.float64)
        except OverflowError:  # an int beyond the float range: the per-element check names it
            pass
        else:
            if bool(np.isfinite(as_float).all()):
                return seq, as_float
    out = []
    for i, value in enumerate(seq):
        try:
            out.append(_number(owner, f"{name}[{i}]", value))
        except OverflowError:
            raise ValueError(f"{owner}: argument `{name}[{i}]` must be finite; received {name}[{i}]={_short.repr(value)}, "
                             "beyond the range of a float") from None
    return out, np.array([float(v) for v in out], dtype=np.float64)


class LearningRateSchedule:
    """Base class of learning-rate schedules.

    Subclasses implement `__call__(self, step)` returning the learning rate at `step` (the
    optimizer's iteration count, an int), and `get_config()` to be serializable.
    """

    def __call__(self, step):
        raise NotImplementedError(
            f"Learning rate schedule '{self.__class__.__name__}' must override `__call__(self, step)`."
        )

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments of this object, JSON-serializable, so that `from_config` rebuilds it."""
        raise NotImplementedError(
            f"Learning rate schedule '{self.__class__.__name__}' must override `get_config()` "
            "in order to be serializable."
        )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "LearningRateSchedule":
        """An instance built from `get_config()`'s dictionary.

        Args:
            config: The dictionary `get_config()` returned.
        """
        return cls(**config)

    def __repr__(self):
        try:
            cfg = self.get_config()
        except NotImplementedError:
            return f"<{self.__class__.__name__}>"
        args = ", ".join(f"{k}={_short.repr(v) if isinstance(v, (list, tuple)) else repr(v)}"
                         for k, v in cfg.items())
        return f"{self.__class__.__name__}({args})"


class ExponentialDecay(LearningRateSchedule):
    """`initial_learning_rate * decay_rate ** (step / decay_steps)`.

    With `staircase=True`, `step / decay_steps` is floored, so the rate drops in discrete steps.

    Args:
        initial_learning_rate: The learning rate at step 0.
        decay_steps: Number of steps over which the learning rate decays.
        decay_rate: Decay factor.
        staircase: If `True`, decay in discrete intervals (`step // decay_steps`).
        name: Name of the optimizer, the prefix of its variables' paths.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False,
                 name: str = "ExponentialDecay") -> None:
        owner = "ExponentialDecay"
        self.initial_learning_rate = _number(owner, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _decay_steps(owner, "decay_steps", decay_steps)
        self.decay_rate = _number(owner, "decay_rate", decay_rate)
        self.staircase = argument_bool(owner, "staircase", staircase)
        self.name = name

    def __call__(self, step):
        step = _F(_step("ExponentialDecay", step))
        p = step / _F(self.decay_steps)
        if self.staircase:
            p = np.floor(p)
        return float(_F(self.initial_learning_rate) * np.power(_F(self.decay_rate), p))

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class InverseTimeDecay(LearningRateSchedule):
    """`initial_learning_rate / (1 + decay_rate * step / decay_steps)`.

    With `staircase=True`, `step / decay_steps` is floored.

    Args:
        initial_learning_rate: The learning rate at step 0.
        decay_steps: Number of steps over which the learning rate decays.
        decay_rate: Decay factor.
        staircase: If `True`, decay in discrete intervals (`step // decay_steps`).
        name: Name of the optimizer, the prefix of its variables' paths.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False,
                 name: str = "InverseTimeDecay") -> None:
        owner = "InverseTimeDecay"
        self.initial_learning_rate = _number(owner, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _decay_steps(owner, "decay_steps", decay_steps)
        self.decay_rate = _number(owner, "decay_rate", decay_rate)
        self.staircase = argument_bool(owner, "staircase", staircase)
        self.name = name

    def __call__(self, step):
        step = _F(_step("InverseTimeDecay", step))
        p = step / _F(self.decay_steps)
        if self.staircase:
            p = np.floor(p)
        denom = _F(1) + _F(self.decay_rate) * p
        return float(_F(self.initial_learning_rate) / denom)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class PiecewiseConstantDecay(LearningRateSchedule):
    """`values[0]` while `step <= boundaries[0]`, `values[1]` while `step <= boundaries[1]`, ...,
    and `values[-1]` once `step > boundaries[-1]`.

    `boundaries` must be strictly increasing and one shorter than `values`. Building one (from a
    config too) costs time linear in the number of boundaries, and each call a binary search, so
    a schedule with a million boundaries loads in a fraction of a second and looks a step up in
    about twenty comparisons. Error messages and `repr` show long lists abbreviated.

    Args:
        boundaries: Increasing list of step boundaries.
        values: The list of arrays `get_variable_values()` returned.
        name: Name of the optimizer, the prefix of its variables' paths.
    """

    def __init__(self, boundaries: Sequence[int], values: Sequence[float], name: str = "PiecewiseConstant") -> None:
        owner = "PiecewiseConstantDecay"
        try:
            boundaries = _as_list(boundaries)
            values = _as_list(values)
        except TypeError:
            raise ArgumentTypeError(
                f"{owner}: `boundaries` and `values` must be lists of numbers; received "
                f"boundaries={_short.repr(boundaries)}, values={_short.repr(values)}"
            ) from None
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values. "
                f"Received: boundaries={_short.repr(boundaries)} of length {len(boundaries)}, and "
                f"values={_short.repr(values)} of length {len(values)}."
            )
        boundaries, as_float = _real_list(owner, "boundaries", boundaries)
        values, _ = _real_list(owner, "values", values)
        # float() is monotone, so a pair increasing as float64 is increasing exactly; the pairs it
        # flags are checked again exactly (distinct ints beyond 2**53 can round to one float).
        for i in np.flatnonzero(as_float[1:] <= as_float[:-1]) + 1:
            i = int(i)  # type: ignore[assignment]  # the loop's numpy integer, as a Python int
            if not boundaries[i] > boundaries[i - 1]:
                raise ValueError(
                    f"{owner}: `boundaries` must be strictly increasing; received boundaries[{i}]={_short.repr(boundaries[i])} "
                    f"after boundaries[{i - 1}]={_short.repr(boundaries[i - 1])} (boundaries={_short.repr(boundaries)})"
                )
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def __call__(self, step):
        # values[i] where i = the number of boundaries strictly below step: a binary search
        # (O(log n) comparisons) of the sorted boundaries, exactly as Keras's
        # `b[i-1] < step <= b[i]`. A NaN step compares false everywhere and gets values[-1].
        step = _step("PiecewiseConstantDecay", step)
        if step != step:
            return float(_F(self.values[-1]))
        return float(_F(self.values[bisect.bisect_left(self.boundaries, step)]))

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": list(self.boundaries), "values": list(self.values), "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """`(initial - end) * (1 - min(step, decay_steps) / decay_steps) ** power + end`.

    With `cycle=True`, `decay_steps` is replaced by its first multiple >= step.

    Args:
        initial_learning_rate: The learning rate at step 0.
        decay_steps: Number of steps over which the learning rate decays.
        end_learning_rate: The final learning rate.
        power: Power of the polynomial.
        cycle: Whether to restart the decay after `decay_steps` (with a longer period).
        name: Name of the optimizer, the prefix of its variables' paths.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
        name: str = "PolynomialDecay",
    ) -> None:
        owner = "PolynomialDecay"
        self.initial_learning_rate = _number(owner, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _decay_steps(owner, "decay_steps", decay_steps)
        self.end_learning_rate = _number(owner, "end_learning_rate", end_learning_rate)
        self.power = _number(owner, "power", power)
        self.cycle = argument_bool(owner, "cycle", cycle)
        self.name = name

    def __call__(self, step):
        step = _F(_step("PolynomialDecay", step))
        initial = _F(self.initial_learning_rate)
        end = _F(self.end_learning_rate)
        decay_steps = _F(self.decay_steps)
        if self.cycle:
            multiplier = _F(1.0) if step == 0 else np.ceil(step / _F(self.decay_steps))
            decay_steps = decay_steps * multiplier
        else:
            step = min(step, decay_steps)
        p = step / decay_steps
        return float((initial - end) * np.power(_F(1) - p, _F(self.power)) + end)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "cycle": self.cycle,
            "name": self.name,
        }


class CosineDecay(LearningRateSchedule):
    """Cosine decay from `initial_learning_rate` (or `warmup_target` after a linear warmup of
    `warmup_steps`) to `alpha` times that value over `decay_steps`.

    Args:
        initial_learning_rate: The learning rate at step 0.
        decay_steps: Number of steps over which the learning rate decays.
        alpha: Minimum learning rate as a fraction of `initial_learning_rate`.
        name: Name of the optimizer, the prefix of its variables' paths.
        warmup_target: Learning rate at the end of the linear warmup (`None`: no warmup).
        warmup_steps: Number of warmup steps.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        name: str = "CosineDecay",
        warmup_target: float | None = None,
        warmup_steps: int = 0,
    ) -> None:
        owner = "CosineDecay"
        self.initial_learning_rate = _number(owner, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _decay_steps(owner, "decay_steps", decay_steps)
        self.alpha = _number(owner, "alpha", alpha)
        self.name = name
        self.warmup_target = None if warmup_target is None else _number(owner, "warmup_target", warmup_target)
        self.warmup_steps = to_python(warmup_steps)
        if argument_real(owner, "warmup_steps", self.warmup_steps) < 0:
            raise ValueError(f"{owner}: argument `warmup_steps` must be >= 0; received warmup_steps={warmup_steps}")

    def _decay(self, step, decay_steps, decay_from_lr):
        completed_fraction = step / decay_steps
        cosine_decayed = _F(0.5) * (_F(1.0) + np.cos(_F(math.pi) * completed_fraction))
        decayed = _F(1 - self.alpha) * cosine_decayed + _F(self.alpha)
        return decay_from_lr * decayed

    def __call__(self, step):
        step = _F(_step("CosineDecay", step))
        initial = _F(self.initial_learning_rate)
        decay_steps = _F(self.decay_steps)
        if self.warmup_target is None:
            return float(self._decay(min(step, decay_steps), decay_steps, initial))
        target = _F(self.warmup_target)
        warmup_steps = _F(self.warmup_steps)
        step = min(step, decay_steps + warmup_steps)
        if step < warmup_steps:
            completed_fraction = step / warmup_steps
            return float((target - initial) * completed_fraction + initial)
        return float(self._decay(step - warmup_steps, decay_steps, target))

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR): periods of `first_decay_steps * t_mul**i` steps,
    each starting from `initial_learning_rate * m_mul**i`.

    Args:
        initial_learning_rate: The learning rate at step 0.
        first_decay_steps: Number of steps of the first decay period.
        t_mul: Factor by which each period's length grows.
        m_mul: Factor by which each period's initial learning rate shrinks.
        alpha: Minimum learning rate as a fraction of `initial_learning_rate`.
        name: Name of the optimizer, the prefix of its variables' paths.
    """

    def __init__(self, initial_learning_rate: float, first_decay_steps: int, t_mul: float = 2.0, m_mul: float = 1.0,
                 alpha: float = 0.0, name: str = "SGDRDecay") -> None:
        owner = "CosineDecayRestarts"
        self.initial_learning_rate = _number(owner, "initial_learning_rate", initial_learning_rate)
        self.first_decay_steps = _decay_steps(owner, "first_decay_steps", first_decay_steps)
        self._t_mul = _number(owner, "t_mul", t_mul)
        self._m_mul = _number(owner, "m_mul", m_mul)
        self.alpha = _number(owner, "alpha", alpha)
        self.name = name

    def __call__(self, step):
        step = _F(_step("CosineDecayRestarts", step))
        initial = _F(self.initial_learning_rate)
        alpha = _F(self.alpha)
        t_mul = _F(self._t_mul)
        m_mul = _F(self._m_mul)
        completed_fraction = step / _F(self.first_decay_steps)
        with np.errstate(divide="ignore", invalid="ignore"):
            if t_mul == 1.0:
                i_restart = np.floor(completed_fraction)
                completed_fraction = completed_fraction - i_restart
            else:
                i_restart = np.floor(np.log(_F(1.0) - completed_fraction * (_F(1.0) - t_mul)) / np.log(t_mul))
                sum_r = (_F(1.0) - np.power(t_mul, i_restart)) / (_F(1.0) - t_mul)
                completed_fraction = (completed_fraction - sum_r) / np.power(t_mul, i_restart)
            m_fac = np.power(m_mul, i_restart)
            cosine_decayed = _F(0.5) * m_fac * (_F(1.0) + np.cos(_F(math.pi) * completed_fraction))
            decayed = (_F(1) - alpha) * cosine_decayed + alpha
        return float(initial * decayed)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "first_decay_steps": self.first_decay_steps,
            "t_mul": self._t_mul,
            "m_mul": self._m_mul,
            "alpha": self.alpha,
            "name": self.name,
        }


_REGISTRY = {
    cls.__name__: cls
    for cls in (
        ExponentialDecay,
        InverseTimeDecay,
        PiecewiseConstantDecay,
        PolynomialDecay,
        CosineDecay,
        CosineDecayRestarts,
    )
}


def serialize(learning_rate_schedule: LearningRateSchedule) -> dict[str, Any]:
    """`{"class_name": ..., "config": ...}` for a schedule (JSON-compatible for the built-ins).

    Args:
        learning_rate_schedule: A LearningRateSchedule.
    """
    if not isinstance(learning_rate_schedule, LearningRateSchedule):
        raise ArgumentTypeError(
            f"serialize expects a LearningRateSchedule; received {type(learning_rate_schedule).__name__}"
        )
    return {"class_name": learning_rate_schedule.__class__.__name__, "config": learning_rate_schedule.get_config()}


def _lookup(class_name, registry, custom_objects, kind):
    if custom_objects and class_name in custom_objects:
        return custom_objects[class_name]
    if class_name in registry:
        return registry[class_name]
    lowered = {k.lower(): v for k, v in registry.items()}
    if class_name.lower() in lowered:
        return lowered[class_name.lower()]
    raise ValueError(f"Unknown {kind} '{class_name}'. Known: {sorted(registry)}")


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> LearningRateSchedule:
    """A schedule from `{"class_name": ..., "config": {...}}`.

    Only cynet's own schedules are known, plus classes passed in `custom_objects`
    (a dict name -> class). Extra keys written by Keras ("module", "registered_name") are ignored.

    Args:
        config: The dictionary `get_config()` returned.
        custom_objects: Optional dict of custom objects (e.g. a custom learning-rate schedule) used while
            deserializing.
    """
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ArgumentTypeError(
            f"A serialized schedule must be a dict with a string 'class_name' and a dict 'config'; received {config!r}"
        )
    inner = config.get("config", {})
    if not isinstance(inner, dict):
        raise ArgumentTypeError(f"'config' of a serialized schedule must be a dict; received {inner!r}")
    cls = _lookup(config["class_name"], _REGISTRY, custom_objects, "learning rate schedule")
    return cls.from_config(dict(inner))
