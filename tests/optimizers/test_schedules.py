"""Tests of cynet.optimizers.schedules against the Keras 3 formulas."""
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cynet.optimizers import schedules
from cynet.variables import Variable

STEPS = list(range(0, 40)) + [99, 100, 101, 1000, 12345]


def close(a, b, rel=2e-6):
    return a == pytest.approx(b, rel=rel, abs=1e-12)


# ---------------------------------------------------------------------------------- formulas


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay(staircase):
    s = schedules.ExponentialDecay(0.05, decay_steps=7, decay_rate=0.9, staircase=staircase)
    for step in STEPS:
        p = step // 7 if staircase else step / 7
        assert close(s(step), 0.05 * 0.9**p), step


def test_exponential_decay_keras_examples():
    # keras/src/optimizers/schedules/learning_rate_schedule_test.py
    assert close(schedules.ExponentialDecay(0.05, 10, 0.96)(5), 0.05 * 0.96 ** (5.0 / 10.0))
    stair = schedules.ExponentialDecay(0.1, 3, 0.96, staircase=True)
    assert close(stair(1), 0.1) and close(stair(2), 0.1)
    assert close(stair(100), 0.1 * 0.96 ** (100 // 3))


@pytest.mark.parametrize("staircase", [False, True])
def test_inverse_time_decay(staircase):
    s = schedules.InverseTimeDecay(0.1, decay_steps=10, decay_rate=0.96, staircase=staircase)
    for step in STEPS:
        p = step // 10 if staircase else step / 10
        assert close(s(step), 0.1 / (1 + 0.96 * p)), step


def test_piecewise_constant_decay():
    s = schedules.PiecewiseConstantDecay([100, 110, 120], [1.0, 0.1, 0.01, 0.001])
    expected = {-999: 1.0, 0: 1.0, 100: 1.0, 101: 0.1, 105: 0.1, 110: 0.1, 111: 0.01, 120: 0.01, 121: 0.001, 999: 0.001}
    for step, value in expected.items():
        assert close(s(step), value), step
    # steps given as Variables / NumPy integers (as the optimizer and callbacks do)
    x = Variable(0, dtype="int64")
    s2 = schedules.PiecewiseConstantDecay([1, 2, 3], [0.4, 0.5, 0.6, 0.7])
    for step, value in [(0, 0.4), (1, 0.4), (2, 0.5), (3, 0.6), (4, 0.7)]:
        x.assign(step)
        assert close(s2(x), value)
        assert close(s2(np.int64(step)), value)
    only = schedules.PiecewiseConstantDecay([], [0.3])
    assert close(only(10**6), 0.3)


@pytest.mark.parametrize("cycle", [False, True])
@pytest.mark.parametrize("power", [1.0, 0.5, 2.0])
def test_polynomial_decay(cycle, power):
    lr, end, decay_steps = 0.05, 0.001, 10
    s = schedules.PolynomialDecay(lr, decay_steps, end, power=power, cycle=cycle)
    for step in STEPS:
        if cycle:
            ds = decay_steps * (1 if step == 0 else math.ceil(step / decay_steps))
            frac = step / ds
        else:
            frac = min(step, decay_steps) / decay_steps
        # float32 arithmetic as Keras: `1 - p` loses digits when p is close to 1
        assert s(step) == pytest.approx((lr - end) * (1 - frac) ** power + end, rel=1e-5, abs=1e-6), step
    # Keras examples: halfway, beyond end with cycle
    assert close(schedules.PolynomialDecay(0.05, 10, 0.0)(5), 0.025)
    assert close(schedules.PolynomialDecay(0.05, 10, 0.001, cycle=True)(15), (0.05 - 0.001) * 0.25 + 0.001)


def _cosine(step, decay_steps, alpha=0.0):
    step = min(step, decay_steps)
    return (1 - alpha) * 0.5 * (1 + math.cos(math.pi * step / decay_steps)) + alpha


@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_cosine_decay(alpha):
    s = schedules.CosineDecay(2.0, 1000, alpha=alpha)
    for step in range(0, 1500, 50):
        assert close(s(step), 2.0 * _cosine(step, 1000, alpha), rel=1e-5), step


def test_cosine_decay_with_warmup():
    s = schedules.CosineDecay(0.0, 1000, warmup_target=10.0, warmup_steps=2000)
    for step in range(0, 4000, 125):
        if step < 2000:
            expected = 10.0 * step / 2000
        else:
            expected = 10.0 * _cosine(step - 2000, 1000)
        assert s(step) == pytest.approx(expected, rel=1e-5, abs=1e-5), step


def _restarts(step, decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0):
    fac = 1.0
    while step >= decay_steps:
        step -= decay_steps
        decay_steps *= t_mul
        fac *= m_mul
    return (1 - alpha) * fac * 0.5 * (1 + math.cos(math.pi * step / decay_steps)) + alpha


@pytest.mark.parametrize("kw", [{}, {"alpha": 0.1}, {"m_mul": 0.9}, {"t_mul": 1.0}, {"t_mul": 3.0, "m_mul": 0.5}])
def test_cosine_decay_restarts(kw):
    s = schedules.CosineDecayRestarts(1.0, 100, **kw)
    for step in list(range(0, 1500, 25)) + [99, 100, 101, 299, 300]:
        assert s(step) == pytest.approx(_restarts(step, 100, **kw), rel=1e-4, abs=2e-5), step


def test_values_are_float32_like_keras():
    v = schedules.PiecewiseConstantDecay([5], [0.1, 0.01])(0)
    assert isinstance(v, float) and v == float(np.float32(0.1))
    e = schedules.ExponentialDecay(0.1, 10, 0.5)(3)
    assert isinstance(e, float) and e == float(np.float32(e))


# ------------------------------------------------------------------------- validation


def test_validation_errors():
    for cls in (schedules.ExponentialDecay, schedules.InverseTimeDecay):
        for bad in (0, -5):
            with pytest.raises(ValueError, match="decay_steps"):
                cls(0.1, bad, 0.5)
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.PolynomialDecay(0.1, 0)
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.CosineDecay(0.1, -1)
    with pytest.raises(ValueError, match="first_decay_steps"):
        schedules.CosineDecayRestarts(0.1, 0)
    with pytest.raises(ValueError, match="warmup_steps"):
        schedules.CosineDecay(0.1, 10, warmup_target=1.0, warmup_steps=-1)
    with pytest.raises(ValueError, match="1 less than the length of values"):
        schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="strictly increasing"):
        schedules.PiecewiseConstantDecay([5, 5], [0.1, 0.2, 0.3])
    with pytest.raises(TypeError, match="values"):
        schedules.PiecewiseConstantDecay([5], [0.1, "x"])
    with pytest.raises(TypeError, match="boundaries"):
        schedules.PiecewiseConstantDecay(5, [0.1])
    with pytest.raises(TypeError, match="initial_learning_rate"):
        schedules.ExponentialDecay("0.1", 10, 0.5)
    with pytest.raises(TypeError, match="staircase"):
        schedules.ExponentialDecay(0.1, 10, 0.5, staircase="no")
    with pytest.raises(TypeError, match="step"):
        schedules.ExponentialDecay(0.1, 10, 0.5)("3")


def test_base_class_must_be_subclassed():
    base = schedules.LearningRateSchedule()
    with pytest.raises(NotImplementedError, match="__call__"):
        base(0)
    with pytest.raises(NotImplementedError, match="get_config"):
        base.get_config()


# ------------------------------------------------------------------------ serialization

ALL = [
    schedules.ExponentialDecay(0.05, 10, 0.96, staircase=True, name="my_ed"),
    schedules.InverseTimeDecay(0.05, 10, 0.96, staircase=True, name="my_itd"),
    schedules.PiecewiseConstantDecay(boundaries=[10, 20], values=[1, 2, 3], name="my_pcd"),
    schedules.PolynomialDecay(0.1, 100, end_learning_rate=0.005, power=1.0, cycle=False, name="my_ld"),
    schedules.CosineDecay(0.05, 10, alpha=0.1, warmup_target=0.2, warmup_steps=2, name="my_cd"),
    schedules.CosineDecayRestarts(0.05, 10, alpha=0.1, t_mul=3.0, m_mul=4.0, name="my_cdr"),
]


@pytest.mark.parametrize("sched", ALL, ids=[type(s).__name__ for s in ALL])
def test_serialize_round_trip(sched):
    data = json.loads(json.dumps(schedules.serialize(sched)))
    assert set(data) == {"class_name", "config"} and data["class_name"] == type(sched).__name__
    back = schedules.deserialize(data)
    assert type(back) is type(sched)
    assert back.get_config() == sched.get_config()
    assert type(sched).from_config(sched.get_config()).get_config() == sched.get_config()
    for step in (0, 1, 5, 17, 250):
        assert back(step) == sched(step)
    keras_style = {"module": "keras.optimizers.schedules", "class_name": data["class_name"], "config": data["config"],
                   "registered_name": None}
    assert schedules.deserialize(keras_style).get_config() == sched.get_config()


def test_deserialize_closed_registry():
    with pytest.raises(ValueError, match="Unknown learning rate schedule"):
        schedules.deserialize({"class_name": "builtins.eval", "config": {}})
    with pytest.raises(ValueError, match="Unknown"):
        schedules.deserialize({"class_name": "LearningRateSchedule", "config": {}})
    with pytest.raises(TypeError):
        schedules.deserialize("ExponentialDecay")
    with pytest.raises(TypeError):
        schedules.deserialize({"class_name": "ExponentialDecay", "config": [1, 2]})
    with pytest.raises(TypeError):
        schedules.serialize(0.1)

    class Mine(schedules.LearningRateSchedule):
        def __init__(self, k):
            self.k = k

        def __call__(self, step):
            return self.k

        def get_config(self):
            return {"k": self.k}

    back = schedules.deserialize(schedules.serialize(Mine(3)), custom_objects={"Mine": Mine})
    assert isinstance(back, Mine) and back(0) == 3


def test_numpy_arguments_are_stored_as_python_numbers():
    s = schedules.PiecewiseConstantDecay(np.array([10, 20]), np.array([0.1, 0.01, 0.001]))
    json.dumps(schedules.serialize(s))
    e = schedules.ExponentialDecay(np.float64(0.1), np.int64(5), np.float32(0.5))
    json.dumps(schedules.serialize(e))


# ---------------------------------------------- PiecewiseConstantDecay: semantics and cost


def piecewise_reference(boundaries, values, step):
    """Keras's definition, written out: values[0] for step <= b[0], values[i] for
    b[i-1] < step <= b[i], values[-1] for step > b[-1]."""
    if not boundaries or step <= boundaries[0]:
        return values[0]
    for i in range(1, len(boundaries)):
        if boundaries[i - 1] < step <= boundaries[i]:
            return values[i]
    return values[-1]


def test_piecewise_constant_at_every_boundary_matches_the_definition():
    # ints, floats, a float boundary between ints, and ints beyond 2**53 (compared exactly,
    # never through a rounded float)
    boundaries = [-3, 0, 2.5, 7, 10.0, 2**53, 2**53 + 1, 2**60]
    values = [0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625, 0.001953125]
    s = schedules.PiecewiseConstantDecay(boundaries, values)
    steps = [-math.inf, math.inf, -10**30, 10**30]
    for b in boundaries:
        fb = float(b)
        steps += [b, b - 1, b + 1, fb - 0.5, fb + 0.5, math.nextafter(fb, -math.inf), math.nextafter(fb, math.inf)]
        if isinstance(b, int):
            steps += [np.int64(b), Variable(b, dtype="int64")] if abs(b) < 2**62 else []
    for step in steps:
        raw = step.value.item() if isinstance(step, Variable) else step
        expected = piecewise_reference(boundaries, values, raw)
        assert s(step) == float(np.float32(expected)), (step, s(step), expected)
    assert s(2**53 + 1) == values[6] and s(2**53 + 2) == values[7]  # exact int comparison
    assert s(math.nan) == values[-1]  # NaN compares false everywhere: the last value, as before
    assert schedules.PiecewiseConstantDecay([], [0.3])(-5) == float(np.float32(0.3))


@given(
    boundaries=st.lists(st.integers(-50, 50) | st.floats(-50, 50, allow_nan=False), max_size=12, unique=True),
    steps=st.lists(st.integers(-60, 60) | st.floats(-60, 60, allow_nan=False), min_size=1, max_size=20),
)
def test_piecewise_constant_matches_the_definition(boundaries, steps):
    boundaries = sorted(set(boundaries))  # 1 and 1.0 are one boundary
    values = [float(i + 1) for i in range(len(boundaries) + 1)]
    s = schedules.PiecewiseConstantDecay(boundaries, values)
    for step in steps + boundaries:
        assert s(step) == piecewise_reference(boundaries, values, step), (boundaries, step)


class CountingStep(float):
    """A step that counts the comparisons made with it (ints and floats defer to its methods)."""

    count = 0

    def _count(op):
        def method(self, other):
            CountingStep.count += 1
            return op(float(self), other)
        return method

    __lt__ = _count(float.__lt__)
    __le__ = _count(float.__le__)
    __gt__ = _count(float.__gt__)
    __ge__ = _count(float.__ge__)
    del _count


def million_config():
    n = 10**6
    return {"class_name": "PiecewiseConstantDecay",
            "config": {"boundaries": list(range(0, 2 * n, 2)), "values": [1.0 / (i + 1) for i in range(n + 1)],
                       "name": "PiecewiseConstant"}}


def test_piecewise_constant_lookup_is_a_binary_search():
    s = schedules.deserialize(million_config())
    n = len(s.boundaries)
    for step in (-1.0, 0.0, 1.0, 777_777.0, 1_999_996.0, 1_999_998.0, 1_999_999.0, 5e6):
        CountingStep.count = 0
        got = s(CountingStep(step))
        # a linear scan compares up to a million times; bisection about log2(n) = 20 times
        assert CountingStep.count <= 2 * math.ceil(math.log2(n + 1)), (step, CountingStep.count)
        expected = 1.0 / (min(math.ceil(step / 2) if step > 0 else 0, n) + 1)
        assert got == float(np.float32(expected)), step


def test_piecewise_constant_million_boundaries_round_trip():
    # Its load and lookup cost is measured in bench/test_schedules.py (no timed unit tests); the
    # lookup's complexity is checked above by counting comparisons.
    s = schedules.deserialize(json.loads(json.dumps(million_config())))
    assert s(1_999_999) == float(np.float32(1.0 / (10**6 + 1)))
    assert len(repr(s)) < 300


def test_piecewise_constant_long_lists_in_errors_are_abbreviated():
    n = 10**5
    cases = [
        (list(range(n)) + [5], [0.1] * (n + 2), "boundaries\\[100000\\]=5 after boundaries\\[99999\\]=99999"),
        (list(range(n)), [0.1] * n, "of length 100000"),
        (list(range(n - 1)) + [math.inf], [0.1] * (n + 1), "boundaries\\[99999\\]"),
        (list(range(n - 1)) + [10**400], [0.1] * (n + 1), "boundaries\\[99999\\]"),
    ]
    for boundaries, values, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            schedules.PiecewiseConstantDecay(boundaries, values)
        assert len(str(info.value)) < 1000
    with pytest.raises(TypeError, match="values\\[99999\\]"):
        schedules.PiecewiseConstantDecay(list(range(n)), [0.1] * (n - 1) + [True, 0.1])


def test_piecewise_constant_keeps_the_numbers_it_is_given():
    # ints stay ints (exact comparisons, JSON unchanged); NumPy scalars and arrays become Python numbers
    for b, v in [([1, 2.5, 3], [1, 0.5, 0.25, 0.125]),
                 (np.array([1, 2, 3]), np.array([1.0, 0.5, 0.25, 0.125], np.float32)),
                 ([np.int64(1), np.float64(2.5), 3], [np.float32(1.0), 0.5, np.int32(0), 0.125])]:
        s = schedules.PiecewiseConstantDecay(b, v)
        expected_b = [x.item() if isinstance(x, np.generic) else x for x in list(b)]
        expected_v = [x.item() if isinstance(x, np.generic) else x for x in list(v)]
        assert s.boundaries == expected_b and [type(x) for x in s.boundaries] == [type(x) for x in expected_b]
        assert s.values == expected_v and [type(x) for x in s.values] == [type(x) for x in expected_v]
        json.dumps(schedules.serialize(s))
