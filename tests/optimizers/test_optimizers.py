"""Tests of cynet.optimizers against Keras 3's update formulas.

Each optimizer is run for several steps and compared with a plain NumPy transcription of the
Keras formula written here (not shared with the implementation), in float32 and float64, and
with the golden values published in Keras's own test-suite.
"""
import copy
import json
import math
import os
import pickle
import tracemalloc
import warnings

import numpy as np
import pytest

from cynet import optimizers
from cynet.optimizers import schedules
from cynet.variables import Variable

SHAPES = [(3, 4), (5,)]
STEPS = 6


def tol(dtype):
    return dict(rtol=2e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------ reference formulas
# Straightforward NumPy transcriptions of keras/src/optimizers/*.py `update_step`. `t` is the
# iteration count before the step (Keras's `self.iterations`); arrays are in the test dtype.


def ref_sgd(p, w, g, s, t, lr):
    mom = p.get("momentum", 0.0)
    if mom == 0:
        return w - g * lr
    m = s.get("m", np.zeros_like(w))
    m = m * mom - g * lr
    s["m"] = m
    if p.get("nesterov"):
        return w + (m * mom - g * lr)
    return w + m


def ref_rmsprop(p, w, g, s, t, lr):
    rho, eps, mom, centered = p.get("rho", 0.9), p.get("epsilon", 1e-7), p.get("momentum", 0.0), p.get("centered")
    v = rho * s.get("v", np.zeros_like(w)) + (1 - rho) * g**2
    s["v"] = v
    if centered:
        a = rho * s.get("a", np.zeros_like(w)) + (1 - rho) * g
        s["a"] = a
        denom = v - a**2 + eps
    else:
        denom = v + eps
    inc = lr * g / np.sqrt(denom)
    if mom > 0:
        mm = mom * s.get("mom", np.zeros_like(w)) + inc
        s["mom"] = mm
        return w - mm
    return w - inc


def ref_adagrad(p, w, g, s, t, lr):
    eps = p.get("epsilon", 1e-7)
    acc = s.get("acc", np.full_like(w, p.get("initial_accumulator_value", 0.1))) + g**2
    s["acc"] = acc
    return w - lr * g / np.sqrt(acc + eps)


def ref_adadelta(p, w, g, s, t, lr):
    rho, eps = p.get("rho", 0.95), p.get("epsilon", 1e-7)
    eg = rho * s.get("eg", np.zeros_like(w)) + (1 - rho) * g**2
    edx = s.get("edx", np.zeros_like(w))
    delta = -(np.sqrt(edx + eps) * g) / np.sqrt(eg + eps)
    s["eg"] = eg
    s["edx"] = rho * edx + (1 - rho) * delta**2
    return w + lr * delta


def ref_adam(p, w, g, s, t, lr):
    b1, b2, eps = p.get("beta_1", 0.9), p.get("beta_2", 0.999), p.get("epsilon", 1e-7)
    step = t + 1
    m = s.get("m", np.zeros_like(w))
    v = s.get("v", np.zeros_like(w))
    m = m + (g - m) * (1 - b1)
    v = v + (g * g - v) * (1 - b2)
    s["m"], s["v"] = m, v
    if p.get("amsgrad"):
        v = np.maximum(s.get("vhat", np.zeros_like(w)), v)
        s["vhat"] = v
    alpha = lr * math.sqrt(1 - b2**step) / (1 - b1**step)
    return w - m * alpha / (np.sqrt(v) + eps)


def ref_nadam(p, w, g, s, t, lr, shared):
    b1, b2, eps = p.get("beta_1", 0.9), p.get("beta_2", 0.999), p.get("epsilon", 1e-7)
    step = t + 1
    u_t = b1 * (1 - 0.5 * 0.96**step)
    u_next = b1 * (1 - 0.5 * 0.96 ** (step + 1))
    u_prod = shared["u_product"]  # already multiplied by u_t for this step
    m = s.get("m", np.zeros_like(w))
    v = s.get("v", np.zeros_like(w))
    m = m + (g - m) * (1 - b1)
    v = v + (g * g - v) * (1 - b2)
    s["m"], s["v"] = m, v
    m_hat = u_next * m / (1 - u_prod * u_next) + (1 - u_t) * g / (1 - u_prod)
    v_hat = v / (1 - b2**step)
    return w - m_hat * lr / (np.sqrt(v_hat) + eps)


REFS = {
    "SGD": ref_sgd,
    "RMSprop": ref_rmsprop,
    "Adagrad": ref_adagrad,
    "Adadelta": ref_adadelta,
    "Adam": ref_adam,
    "AdamW": ref_adam,
    "Nadam": ref_nadam,
}


def run_reference(cls_name, params, ws, grads_seq, lr_at=None, weight_decay=None):
    """Run the reference for len(grads_seq) steps; returns the list of weights after each step."""
    ws = [w.copy() for w in ws]
    states = [{} for _ in ws]
    shared = {"u_product": 1.0}
    history = []
    for t, grads in enumerate(grads_seq):
        lr = lr_at(t) if lr_at else params.get("learning_rate")
        if cls_name == "Nadam":
            shared["u_product"] *= params.get("beta_1", 0.9) * (1 - 0.5 * 0.96 ** (t + 1))
        new = []
        for w, g, st in zip(ws, grads, states):
            if weight_decay is not None:
                w = w - w * weight_decay * lr
            if cls_name == "Nadam":
                w = ref_nadam(params, w, g, st, t, lr, shared)
            else:
                w = REFS[cls_name](params, w, g, st, t, lr)
            new.append(w.astype(ws[0].dtype))
        ws = new
        history.append([w.copy() for w in ws])
    return history


CASES = [
    ("SGD", dict(learning_rate=0.1)),
    ("SGD", dict(learning_rate=0.1, momentum=0.9)),
    ("SGD", dict(learning_rate=0.05, momentum=0.7, nesterov=True)),
    ("SGD", dict(learning_rate=0.1, momentum=0.5, weight_decay=0.01)),
    ("RMSprop", dict(learning_rate=0.01)),
    ("RMSprop", dict(learning_rate=0.01, momentum=0.5)),
    ("RMSprop", dict(learning_rate=0.01, centered=True)),
    ("RMSprop", dict(learning_rate=0.02, rho=0.8, momentum=0.3, centered=True, epsilon=1e-4)),
    ("Adagrad", dict(learning_rate=0.1)),
    ("Adagrad", dict(learning_rate=0.2, initial_accumulator_value=0.3, epsilon=1e-6)),
    ("Adadelta", dict(learning_rate=1.0)),
    ("Adadelta", dict(learning_rate=0.5, rho=0.8, epsilon=1e-6)),
    ("Adam", dict(learning_rate=0.01)),
    ("Adam", dict(learning_rate=0.01, amsgrad=True)),
    ("Adam", dict(learning_rate=0.1, beta_1=0.5, beta_2=0.7, epsilon=1e-3)),
    ("AdamW", dict(learning_rate=0.01, weight_decay=0.1)),
    ("AdamW", dict(learning_rate=0.01, amsgrad=True)),
    ("Nadam", dict(learning_rate=0.01)),
    ("Nadam", dict(learning_rate=0.5, beta_1=0.5, beta_2=0.67, epsilon=1e-5)),
]
DEFAULT_LR = {"SGD": 0.01}


def case_id(case):
    name, params = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in params.items())


def make_problem(dtype, seed=0, steps=STEPS):
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    grads_seq = [[rng.normal(size=s).astype(dtype) for s in SHAPES] for _ in range(steps)]
    # Include a step with a zero gradient and one with large values.
    grads_seq[2][0][0, 0] = 0
    grads_seq[3][1][:] *= 10
    return ws, grads_seq


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_matches_reference_formula(case, dtype):
    name, params = case
    ws, grads_seq = make_problem(dtype)
    variables = [Variable(w, dtype=dtype, name=f"w{i}") for i, w in enumerate(ws)]
    opt = getattr(optimizers, name)(**params)
    ref_params = dict(params)
    ref_params.setdefault("learning_rate", DEFAULT_LR.get(name, 0.001))
    wd = opt.weight_decay
    expected = run_reference(name, ref_params, ws, grads_seq, weight_decay=wd)
    for t, grads in enumerate(grads_seq):
        opt.apply_gradients(zip(grads, variables))
        assert opt.iterations == t + 1
        for v, e in zip(variables, expected[t]):
            assert v.value.dtype == dtype
            np.testing.assert_allclose(v.value, e, **tol(dtype), err_msg=f"step {t + 1}")
    # the variables actually moved
    assert not np.allclose(variables[0].value, ws[0])


# ------------------------------------------------------------------- Keras's golden values

GOLDEN_STEPS = {
    # From keras/src/optimizers/*_test.py test_correctness_with_golden: x = ones(10), first a
    # gradient of 0.01 everywhere, then arange(0.1, 1.1, 0.1); x checked before each later step.
    "sgd": (
        optimizers.SGD,
        dict(nesterov=True),
        np.array(
            [
                [0.9999] * 10,
                [0.9989, 0.9979, 0.9969, 0.9959, 0.9949, 0.9939, 0.9929, 0.9919, 0.9909, 0.9899],
                [0.9979, 0.9959, 0.9939, 0.9919, 0.9899, 0.9879, 0.9859, 0.9839, 0.9819, 0.9799],
                [0.9969, 0.9939, 0.9909, 0.9879, 0.9849, 0.9819, 0.9789, 0.9759, 0.9729, 0.9699],
                [0.9959, 0.9919, 0.9879, 0.9839, 0.9799, 0.9759, 0.9719, 0.9679, 0.9639, 0.9599],
            ]
        ),
    ),
    "rmsprop": (optimizers.RMSprop, dict(centered=True), np.tile([[0.9967], [0.9933], [0.9908], [0.9885], [0.9864]], (1, 10))),
    "adadelta": (
        optimizers.Adadelta,
        dict(learning_rate=1.0, rho=0.8, epsilon=1e-6),
        np.tile([[0.9978], [0.9947], [0.9915], [0.9882], [0.9849]], (1, 10)),
    ),
    "adam": (optimizers.Adam, dict(amsgrad=True), np.tile([[0.999], [0.9982], [0.9974], [0.9965], [0.9955]], (1, 10))),
    "adagrad": (
        optimizers.Adagrad,
        dict(learning_rate=0.2, initial_accumulator_value=0.3, epsilon=1e-6),
        np.array(
            [
                [0.9963] * 10,
                [0.9604, 0.9278, 0.9003, 0.8784, 0.8615, 0.8487, 0.8388, 0.8313, 0.8255, 0.8209],
                [0.9251, 0.8629, 0.8137, 0.7768, 0.7497, 0.7298, 0.7151, 0.704, 0.6956, 0.6891],
                [0.8903, 0.8012, 0.7342, 0.6862, 0.6521, 0.6277, 0.6099, 0.5967, 0.5867, 0.579],
                [0.856, 0.7422, 0.6604, 0.6037, 0.5644, 0.5367, 0.5168, 0.5021, 0.491, 0.4825],
            ]
        ),
    ),
    "adamw": (
        optimizers.AdamW,
        dict(learning_rate=1.0, weight_decay=0.5, epsilon=2),
        np.array(
            [
                [0.4998] * 10,
                [0.2486, 0.2475, 0.2463, 0.2451, 0.244, 0.2428, 0.2417, 0.2405, 0.2394, 0.2382],
                [0.1223, 0.1198, 0.1174, 0.1149, 0.1124, 0.11, 0.1075, 0.1051, 0.1027, 0.1003],
                [0.0586, 0.0549, 0.0512, 0.0475, 0.0439, 0.0402, 0.0366, 0.033, 0.0294, 0.0258],
                [0.0263, 0.0215, 0.0167, 0.012, 0.0073, 0.0026, -0.0021, -0.0067, -0.0113, -0.0159],
            ]
        ),
    ),
    "nadam": (
        optimizers.Nadam,
        dict(learning_rate=0.5, beta_1=0.5, beta_2=0.67, epsilon=1e-5),
        np.array(
            [
                [0.4281] * 10,
                [-0.1738, -0.1731, -0.1726, -0.1723, -0.1721, -0.172, -0.1719, -0.1718, -0.1718, -0.1717],
                [-0.7115, -0.7103, -0.7096, -0.7092, -0.709, -0.7088, -0.7086, -0.7085, -0.7085, -0.7084],
                [-1.2335, -1.2322, -1.2313, -1.2309, -1.2306, -1.2304, -1.2302, -1.2301, -1.23, -1.2299],
                [-1.7492, -1.7478, -1.7469, -1.7464, -1.7461, -1.7459, -1.7457, -1.7456, -1.7455, -1.7454],
            ]
        ),
    ),
}


@pytest.mark.parametrize("key", sorted(GOLDEN_STEPS))
def test_keras_golden_values(key):
    cls, kwargs, golden = GOLDEN_STEPS[key]
    opt = cls(**kwargs)
    x = Variable(np.ones(10), dtype="float32")
    grads = np.arange(0.1, 1.1, 0.1).astype("float32")[:10]
    opt.apply_gradients([(np.full(10, 0.01, "float32"), x)])
    for i in range(5):
        np.testing.assert_allclose(x.value, golden[i], rtol=5e-4, atol=5e-4, err_msg=f"golden row {i}")
        opt.apply_gradients([(grads, x)])


SINGLE_STEP = {
    # keras/src/optimizers/*_test.py test_single_step: lr=0.5, g=[1, 6, 7, 2], w=[1, 2, 3, 4].
    "SGD": [0.5, -1.0, -0.5, 3.0],
    "RMSprop": [-0.5811, 0.4189, 1.4189, 2.4189],
    "Adagrad": [0.5233, 1.5007, 2.5005, 3.5061],
    "Adadelta": [0.9993, 1.9993, 2.9993, 3.9993],
    "Adam": [0.5, 1.5, 2.5, 3.5],
    "AdamW": [0.4980, 1.4960, 2.494, 3.492],
    "Nadam": [0.4686, 1.4686, 2.4686, 3.4686],
}


@pytest.mark.parametrize("name", sorted(SINGLE_STEP))
def test_keras_single_step(name):
    opt = getattr(optimizers, name)(learning_rate=0.5)
    w = Variable([1.0, 2.0, 3.0, 4.0])
    opt.apply_gradients([(np.array([1.0, 6.0, 7.0, 2.0], "float32"), w)])
    np.testing.assert_allclose(w.value, SINGLE_STEP[name], rtol=1e-4, atol=1e-4)


def test_rmsprop_docstring_example():
    # Keras's RMSprop docstring: var 10, loss var**2 / 2, one step at lr 0.1 -> 9.683772.
    opt = optimizers.RMSprop(learning_rate=0.1)
    v = Variable(10.0)
    opt.apply_gradients([(v.value.copy(), v)])
    assert abs(float(v.value) - 9.683772) < 1e-5


# ------------------------------------------------------------------------------ weight decay


# (Not Ftrl: its update sets w from its accumulators even for a zero gradient, in Keras too.)
@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adagrad", "Adadelta", "Adam", "AdamW", "Nadam", "Adamax",
                                  "Lion", "Adafactor"])
def test_weight_decay_and_exclusions(name):
    # keras/src/optimizers/*_test.py test_weight_decay: zero gradients, lr 1, decay 0.004.
    cls = getattr(optimizers, name)
    zero = np.zeros((), "float32")
    var1, var2, var3 = Variable(2.0), Variable(2.0, name="exclude"), Variable(2.0)
    opt1 = cls(learning_rate=1.0, weight_decay=0.004)
    opt1.apply_gradients([(zero, var1)])
    opt2 = cls(learning_rate=1.0, weight_decay=0.004)
    opt2.exclude_from_weight_decay(var_names=["exclude"])
    opt2.apply_gradients([(zero, var1), (zero, var2)])
    opt3 = cls(learning_rate=1.0, weight_decay=0.004)
    opt3.exclude_from_weight_decay(var_list=[var3])
    opt3.apply_gradients([(zero, var1), (zero, var3)])
    assert float(var1.value) == pytest.approx(1.9760959, abs=1e-6)
    assert float(var2.value) == 2.0
    assert float(var3.value) == 2.0


def test_weight_decay_uses_scheduled_learning_rate():
    sched = schedules.PiecewiseConstantDecay([0], [1.0, 0.5])
    opt = optimizers.SGD(learning_rate=sched, weight_decay=0.1)
    v = Variable([1.0])
    zero = np.zeros(1, "float32")
    opt.apply_gradients([(zero, v)])  # step 0: lr 1.0
    opt.apply_gradients([(zero, v)])  # step 1: lr 0.5
    np.testing.assert_allclose(v.value, [(1 - 0.1) * (1 - 0.05)], rtol=1e-6)


# ---------------------------------------------------------------------------------- clipping


def test_clipnorm_per_variable():
    opt = optimizers.SGD(learning_rate=1.0, clipnorm=1.0)
    a, b = Variable([0.0, 0.0]), Variable([0.0, 0.0])
    ga = np.array([100.0, 100.0], "float32")
    gb = np.array([0.3, 0.4], "float32")  # norm 0.5 < 1: unchanged
    ga_before = ga.copy()
    opt.apply_gradients([(ga, a), (gb, b)])
    np.testing.assert_allclose(a.value, [-(2**0.5) / 2] * 2, rtol=1e-6)
    np.testing.assert_allclose(b.value, [-0.3, -0.4], rtol=1e-6)
    np.testing.assert_array_equal(ga, ga_before)  # the caller's gradient is not modified


def test_global_clipnorm():
    opt = optimizers.SGD(learning_rate=1.0, global_clipnorm=1.0)
    a, b = Variable([0.0, 0.0]), Variable([0.0])
    opt.apply_gradients([(np.array([3.0, 4.0], "float32"), a), (np.array([12.0], "float32"), b)])
    np.testing.assert_allclose(a.value, [-3 / 13, -4 / 13], rtol=1e-6)
    np.testing.assert_allclose(b.value, [-12 / 13], rtol=1e-6)
    # below the threshold nothing changes; an all-zero gradient stays zero (no NaN)
    opt.apply_gradients([(np.array([0.3, 0.4], "float32"), a), (np.zeros(1, "float32"), b)])
    np.testing.assert_allclose(a.value, [-3 / 13 - 0.3, -4 / 13 - 0.4], rtol=1e-6)
    np.testing.assert_allclose(b.value, [-12 / 13], rtol=1e-6)


def test_clipvalue_and_zero_gradient_with_clipnorm():
    opt = optimizers.SGD(learning_rate=1.0, clipvalue=0.5)
    v = Variable([0.0, 0.0, 0.0])
    opt.apply_gradients([(np.array([100.0, -100.0, 0.25], "float32"), v)])
    np.testing.assert_allclose(v.value, [-0.5, 0.5, -0.25])
    opt = optimizers.Adam(clipnorm=1.0)
    w = Variable([1.0, 2.0])
    opt.apply_gradients([(np.zeros(2, "float32"), w)])
    assert np.all(np.isfinite(w.value))


@pytest.mark.parametrize("clip", [dict(clipnorm=0.7), dict(global_clipnorm=0.9), dict(clipvalue=0.2)])
def test_clipping_then_adam_matches_reference(clip, dtype):
    ws, grads_seq = make_problem(dtype, seed=3, steps=4)
    variables = [Variable(w, dtype=dtype) for w in ws]
    opt = optimizers.Adam(learning_rate=0.01, **clip)
    clipped_seq = []
    for grads in grads_seq:
        if "clipnorm" in clip:
            c = clip["clipnorm"]
            clipped = [g * c / max(np.linalg.norm(g), c) for g in grads]
        elif "global_clipnorm" in clip:
            c = clip["global_clipnorm"]
            n = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
            clipped = [g * (c * min(1 / n, 1 / c)) for g in grads]
        else:
            clipped = [np.clip(g, -clip["clipvalue"], clip["clipvalue"]) for g in grads]
        clipped_seq.append([g.astype(dtype) for g in clipped])
    expected = run_reference("Adam", dict(learning_rate=0.01), ws, clipped_seq)
    for t, grads in enumerate(grads_seq):
        opt.apply_gradients(zip(grads, variables))
        for v, e in zip(variables, expected[t]):
            np.testing.assert_allclose(v.value, e, **tol(dtype))


# ----------------------------------------------------------------- learning rate & schedules


def test_schedule_evaluated_at_iteration_count(dtype):
    sched = schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5, staircase=True)
    opt = optimizers.SGD(learning_rate=sched)
    v = Variable(np.zeros(3), dtype=dtype)
    g = np.array([1.0, 2.0, -1.0], dtype)
    expected = np.zeros(3, dtype)
    for step in range(7):
        assert opt.iterations == step
        assert opt.learning_rate == pytest.approx(0.1 * 0.5 ** (step // 2), rel=1e-6)
        opt.apply_gradients([(g, v)])
        expected = expected - g * np.float32(0.1 * 0.5 ** (step // 2))
        np.testing.assert_allclose(v.value, expected, rtol=1e-6)


def test_schedule_in_adam_matches_reference(dtype):
    sched = schedules.InverseTimeDecay(0.05, decay_steps=3, decay_rate=0.7)
    ws, grads_seq = make_problem(dtype, seed=5)
    variables = [Variable(w, dtype=dtype) for w in ws]
    opt = optimizers.Adam(learning_rate=sched)
    expected = run_reference("Adam", {}, ws, grads_seq, lr_at=sched)
    for t, grads in enumerate(grads_seq):
        opt.apply_gradients(zip(grads, variables))
        for v, e in zip(variables, expected[t]):
            np.testing.assert_allclose(v.value, e, **tol(dtype))


def test_learning_rate_setter():
    opt = optimizers.SGD(learning_rate=0.1)
    assert isinstance(opt.learning_rate, float) and opt.learning_rate == 0.1
    opt.learning_rate = 0.5
    v = Variable([1.0])
    opt.apply_gradients([(np.array([1.0], "float32"), v)])
    np.testing.assert_allclose(v.value, [0.5])
    opt.learning_rate = np.float32(0.25)  # callbacks may hand NumPy scalars
    assert opt.learning_rate == 0.25
    assert opt.get_config()["learning_rate"] == 0.25
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = "fast"

    sched = schedules.ExponentialDecay(0.1, 10, 0.5)
    opt = optimizers.Adam(learning_rate=sched)
    with pytest.raises(TypeError, match="not settable"):
        opt.learning_rate = 0.01
    opt2 = optimizers.Adam(learning_rate=0.01)
    opt2.learning_rate = sched  # a schedule may replace a float
    assert opt2.learning_rate == pytest.approx(0.1)


def test_callable_learning_rate():
    v = Variable([[1.0, 2.0], [3.0, 4.0]])
    opt = optimizers.SGD(learning_rate=lambda: 0.1)
    opt.apply_gradients([(np.ones((2, 2), "float32"), v)])
    np.testing.assert_allclose(v.value, [[0.9, 1.9], [2.9, 3.9]], rtol=1e-6)
    assert opt.get_config()["learning_rate"] == 0.1


def test_custom_schedule_subclass():
    class Halving(schedules.LearningRateSchedule):
        def __call__(self, step):
            return 1.0 / (step + 1)

        def get_config(self):
            return {}

    opt = optimizers.SGD(learning_rate=Halving())
    v = Variable([0.0])
    for _ in range(3):
        opt.apply_gradients([(np.ones(1, "float32"), v)])
    np.testing.assert_allclose(v.value, [-(1 + 1 / 2 + 1 / 3)], rtol=1e-6)
    cfg = optimizers.serialize(opt)
    with pytest.raises(ValueError, match="Unknown learning rate schedule"):
        optimizers.deserialize(cfg)
    back = optimizers.deserialize(cfg, custom_objects={"Halving": Halving})
    assert isinstance(back._learning_rate, Halving)


# ------------------------------------------------------------------ iterations, None grads


def test_iterations_and_variables_layout():
    a, b = Variable(np.ones((2, 3)), name="kernel"), Variable(np.ones(3), name="bias")
    opt = optimizers.Adam(amsgrad=True)
    assert opt.iterations == 0
    assert len(opt.variables) == 1 and opt.variables[0].dtype == np.int64
    opt.apply_gradients([(np.ones((2, 3)), a), (np.ones(3), b)])
    opt.apply_gradients([(np.ones((2, 3)), a), (np.ones(3), b)])
    assert opt.iterations == 2
    names = [v.name for v in opt.variables]
    assert names == [
        "iteration",
        "kernel_momentum",
        "kernel_velocity",
        "bias_momentum",
        "bias_velocity",
        "kernel_velocity_hat",
        "bias_velocity_hat",
    ]
    assert int(opt.variables[0].value) == 2
    assert all(not v.trainable for v in opt.variables)
    for slot in opt.variables[1:]:
        assert slot.dtype == np.float32 and slot.value.flags.c_contiguous
    rms = optimizers.RMSprop(momentum=0.5, centered=True)
    rms.build([a, b])
    assert [v.name for v in rms.variables][1:] == [
        "kernel_velocity",
        "bias_velocity",
        "kernel_momentum",
        "bias_momentum",
        "kernel_average_gradient",
        "bias_average_gradient",
    ]
    sgd = optimizers.SGD()
    sgd.build([a, b])
    assert len(sgd.variables) == 1  # no momentum slots without momentum
    ada = optimizers.Adagrad(initial_accumulator_value=0.25)
    ada.build([a])
    np.testing.assert_array_equal(ada.variables[1].value, np.full((2, 3), 0.25, "float32"))


def test_none_gradients_skipped_with_warning():
    a, b = Variable([[3.0, 4.0], [5.0, 6.0]]), Variable([[3.0, 4.0], [5.0, 6.0]])
    opt = optimizers.SGD(learning_rate=1.0)
    with pytest.warns(UserWarning, match="Gradients do not exist"):
        opt.apply_gradients([(None, a), (np.ones((2, 2), "float32"), b)])
    np.testing.assert_array_equal(a.value, [[3.0, 4.0], [5.0, 6.0]])
    np.testing.assert_array_equal(b.value, [[2.0, 3.0], [4.0, 5.0]])
    assert opt.iterations == 1
    with pytest.raises(ValueError, match="No gradients provided"):
        optimizers.SGD().apply_gradients([(None, a)])


def test_apply_with_built_variable_list():
    a, b = Variable([1.0, 2.0]), Variable([3.0])
    opt = optimizers.SGD(learning_rate=1.0)
    with pytest.raises(ValueError, match="must already be built"):
        opt.apply([np.ones(2), np.ones(1)])
    opt.build([a, b])
    opt.apply([np.ones(2), np.ones(1)])
    np.testing.assert_allclose(a.value, [0.0, 1.0])
    np.testing.assert_allclose(b.value, [2.0])
    with pytest.raises(ValueError, match="tracking 2"):
        opt.apply([np.ones(2)])
    # a subset of the known variables is fine
    opt.apply_gradients([(np.ones(1), b)])
    np.testing.assert_allclose(b.value, [1.0])
    with pytest.raises(ValueError, match="Unknown variable"):
        opt.apply_gradients([(np.ones(1), Variable([0.0]))])


def test_in_place_float32_no_upcast():
    v = Variable(np.ones((4, 5)), dtype="float32")
    arr = v.value
    opt = optimizers.Nadam()
    opt.apply_gradients([(np.ones((4, 5), "float64"), v)])  # float64 gradient is cast
    assert v.value is arr and v.value.dtype == np.float32
    assert all(s.dtype == np.float32 for s in opt.variables[1:])


def _step_allocation(opt, variables, grads):
    opt.apply_gradients(zip(grads, variables))  # builds, allocates slots and scratch
    opt.apply_gradients(zip(grads, variables))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        opt.apply_gradients(zip(grads, variables))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - base


@pytest.mark.parametrize(
    "make",
    [
        lambda: optimizers.SGD(momentum=0.9, nesterov=True),
        lambda: optimizers.RMSprop(momentum=0.9, centered=True),
        lambda: optimizers.Adagrad(),
        lambda: optimizers.Adadelta(),
        lambda: optimizers.Adam(amsgrad=True),
        lambda: optimizers.AdamW(clipnorm=1.0),
        lambda: optimizers.Nadam(global_clipnorm=1.0),
    ],
    ids=["sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamw", "nadam"],
)
def test_steady_state_step_allocates_no_arrays(make):
    variables = [Variable(np.ones((250, 400)), dtype="float32"), Variable(np.ones(400), dtype="float32")]
    grads = [np.full((250, 400), 0.1, "float32"), np.full(400, 0.1, "float32")]
    grown = _step_allocation(make(), variables, grads)
    assert grown < 64 * 1024, f"a step allocated {grown} bytes for 400 KB of parameters"


# ------------------------------------------------------------------- EMA, accumulation, misc


def test_ema():
    # keras/src/optimizers/optimizer_test.py test_ema
    v = Variable([[3.0, 4.0], [5.0, 6.0]])
    g = np.ones((2, 2), "float32")
    opt = optimizers.SGD(learning_rate=1.0, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=3)
    opt.apply_gradients([(g, v)])
    np.testing.assert_allclose(v.value, [[2.0, 3.0], [4.0, 5.0]])
    np.testing.assert_allclose(opt._model_variables_moving_average[0].value, [[2.0, 3.0], [4.0, 5.0]])
    opt.apply_gradients([(g, v)])
    np.testing.assert_allclose(v.value, [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(opt._model_variables_moving_average[0].value, [[1.9, 2.9], [3.9, 4.9]], rtol=1e-6)
    opt.apply_gradients([(g, v)])
    np.testing.assert_allclose(v.value, [[1.71, 2.71], [3.71, 4.71]], rtol=1e-6)
    # finalize_variable_values overwrites with the average
    opt2 = optimizers.SGD(learning_rate=1.0, use_ema=True, ema_momentum=0.5)
    w = Variable([4.0])
    opt2.apply_gradients([(np.ones(1), w)])
    opt2.apply_gradients([(np.ones(1), w)])
    opt2.finalize_variable_values([w])
    np.testing.assert_allclose(w.value, [0.5 * 3.0 + 0.5 * 2.0])
    assert [x.name for x in opt2.variables] == ["iteration", f"{w.name}_average"]


def test_gradient_accumulation():
    # keras/src/optimizers/optimizer_test.py test_gradient_accumulation
    v = Variable([[1.0, 2.0], [3.0, 4.0]])
    g = np.ones((2, 2), "float32")
    opt = optimizers.SGD(learning_rate=1.0, gradient_accumulation_steps=3)
    expected_v = [[[1.0, 2.0], [3.0, 4.0]]] * 2 + [[[0.0, 1.0], [2.0, 3.0]]] * 2
    expected_acc = [1.0, 2.0, 0.0, 1.0]
    for i in range(4):
        opt.apply_gradients([(g, v)])
        np.testing.assert_allclose(v.value, expected_v[i])
        np.testing.assert_allclose(opt._accumulated_gradients[0].value, np.full((2, 2), expected_acc[i]))
        assert int(opt._iterations.value) == i + 1
    assert opt.iterations == 1  # updates actually applied


def test_gradient_accumulation_adam_uses_update_count():
    v1, v2 = Variable([1.0, -1.0]), Variable([1.0, -1.0])
    acc = optimizers.Adam(learning_rate=0.1, gradient_accumulation_steps=2)
    plain = optimizers.Adam(learning_rate=0.1)
    for g1, g2 in [([0.2, 0.4], [0.6, 0.0]), ([1.0, -1.0], [0.0, 3.0])]:
        acc.apply_gradients([(np.array(g1, "float32"), v1)])
        acc.apply_gradients([(np.array(g2, "float32"), v1)])
        plain.apply_gradients([((np.array(g1, "float32") + np.array(g2, "float32")) / 2, v2)])
    np.testing.assert_allclose(v1.value, v2.value, rtol=1e-6)


def test_loss_scale_factor():
    v = Variable([[1.0, 2.0], [3.0, 4.0]])
    opt = optimizers.SGD(learning_rate=1.0, loss_scale_factor=1024.0)
    opt.apply_gradients([(np.array([[1.0, 2.0], [3.0, 4.0]], "float32") * 1024, v)])
    assert opt.scale_loss(1.0) == 1024.0
    np.testing.assert_allclose(v.value, np.zeros((2, 2)))


def test_constraint_applied_after_update():
    v = Variable([[-0.5, 0.2], [0.3, -0.1]])
    v.constraint = lambda w: np.maximum(w, 0)
    optimizers.SGD(learning_rate=1e-4).apply_gradients([(np.zeros((2, 2)), v)])
    assert np.min(v.value) == 0.0


def test_pickle_and_deepcopy_keep_working():
    v = Variable(np.linspace(-1, 1, 6).reshape(2, 3), name="kernel")
    opt = optimizers.AdamW(learning_rate=0.01)
    opt.exclude_from_weight_decay(var_list=[v])
    g = np.full((2, 3), 0.5, "float32")
    opt.apply_gradients([(g, v)])
    clones = [pickle.loads(pickle.dumps((v, opt))), copy.deepcopy((v, opt))]
    opt.apply_gradients([(g, v)])
    for v2, opt2 in clones:
        assert opt2.get_config() == opt.get_config()
        assert opt2._use_weight_decay(v2) is False  # exclusion by variable survives the copy
        opt2.apply_gradients([(g, v2)])
        np.testing.assert_array_equal(v2.value, v.value)
        for a, b in zip(opt2.get_variable_values(), opt.get_variable_values()):
            np.testing.assert_array_equal(a, b)


# -------------------------------------------------------------- get / serialize / deserialize

ALL_NAMES = {
    "sgd": optimizers.SGD,
    "rmsprop": optimizers.RMSprop,
    "adagrad": optimizers.Adagrad,
    "adadelta": optimizers.Adadelta,
    "adam": optimizers.Adam,
    "adamw": optimizers.AdamW,
    "nadam": optimizers.Nadam,
    "adamax": optimizers.Adamax,
    "ftrl": optimizers.Ftrl,
    "lion": optimizers.Lion,
    "adafactor": optimizers.Adafactor,
}


@pytest.mark.parametrize("name", sorted(ALL_NAMES))
def test_get_by_name(name):
    for spelling in (name, name.upper(), ALL_NAMES[name].__name__):
        obj = optimizers.get(spelling)
        assert type(obj) is ALL_NAMES[name]


def test_get_other_identifiers():
    adam = optimizers.Adam()
    assert optimizers.get(adam) is adam
    assert optimizers.get(None) is None
    obj = optimizers.get({"class_name": "SGD", "config": {"learning_rate": 0.5, "momentum": 0.9}})
    assert isinstance(obj, optimizers.SGD) and obj.learning_rate == 0.5 and obj.momentum == 0.9
    with pytest.raises(ValueError, match="Could not interpret optimizer identifier"):
        optimizers.get("typo")
    with pytest.raises(ValueError):
        optimizers.get(optimizers.Adam)  # a class is not an identifier (as Keras)
    with pytest.raises(ValueError):
        optimizers.get(3)
    with pytest.raises(ValueError, match="Unknown optimizer"):
        optimizers.deserialize({"class_name": "os.system", "config": {}})
    with pytest.raises(TypeError):
        optimizers.deserialize({"config": {}})
    with pytest.raises(TypeError):
        optimizers.serialize("adam")


DEFAULTS = {
    "SGD": dict(learning_rate=0.01, momentum=0.0, nesterov=False, name="SGD"),
    "RMSprop": dict(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, name="rmsprop"),
    "Adagrad": dict(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, name="adagrad"),
    "Adadelta": dict(learning_rate=0.001, rho=0.95, epsilon=1e-7, name="adadelta"),
    "Adam": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, name="adam"),
    "AdamW": dict(
        learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, name="adamw"
    ),
    "Nadam": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name="nadam"),
    "Adamax": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name="adamax"),
    "Ftrl": dict(learning_rate=0.001, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                 l1_regularization_strength=0.0, l2_regularization_strength=0.0,
                 l2_shrinkage_regularization_strength=0.0, beta=0.0, name="ftrl"),
    "Lion": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.99, name="lion"),
    "Adafactor": dict(learning_rate=0.001, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3, clip_threshold=1.0,
                      relative_step=True, name="adafactor"),
}


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_keras_defaults(name):
    cfg = getattr(optimizers, name)().get_config()
    for key, value in DEFAULTS[name].items():
        assert cfg[key] == value, key
    base_defaults = dict(
        clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
        ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None,
    )
    for key, value in base_defaults.items():
        assert cfg[key] == value, key
    if name != "AdamW":
        assert cfg["weight_decay"] is None


CONFIG_CASES = [
    optimizers.SGD(learning_rate=0.5, momentum=0.06, nesterov=True, weight_decay=0.004),
    optimizers.RMSprop(learning_rate=0.5, rho=0.8, momentum=0.05, epsilon=1e-6, centered=True, clipnorm=2.0),
    optimizers.Adagrad(learning_rate=0.5, initial_accumulator_value=0.2, epsilon=1e-5, clipvalue=1.0),
    optimizers.Adadelta(learning_rate=0.5, rho=0.9, epsilon=1e-5, global_clipnorm=3.0),
    optimizers.Adam(learning_rate=0.5, beta_1=0.5, beta_2=0.67, epsilon=1e-5, amsgrad=True, use_ema=True),
    optimizers.AdamW(learning_rate=0.5, weight_decay=0.008, beta_1=0.5, beta_2=0.67, epsilon=1e-5, amsgrad=True),
    optimizers.Nadam(learning_rate=0.5, beta_1=0.5, beta_2=0.67, epsilon=1e-5, gradient_accumulation_steps=4),
    optimizers.Adam(learning_rate=schedules.ExponentialDecay(0.1, 100, 0.96, staircase=True), name="my_adam"),
    optimizers.SGD(learning_rate=schedules.PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001])),
    optimizers.Adamax(learning_rate=0.5, beta_1=0.5, beta_2=0.67, epsilon=1e-5, clipnorm=1.0),
    optimizers.Ftrl(learning_rate=0.5, learning_rate_power=-0.7, initial_accumulator_value=0.2,
                    l1_regularization_strength=0.1, l2_regularization_strength=0.2,
                    l2_shrinkage_regularization_strength=0.3, beta=0.4),
    optimizers.Lion(learning_rate=0.5, beta_1=1.0, beta_2=0.5, weight_decay=0.01),
    optimizers.Adafactor(learning_rate=0.5, beta_2_decay=-0.5, epsilon_1=1e-20, epsilon_2=1e-2, clip_threshold=2.0,
                         relative_step=False),
]


@pytest.mark.parametrize("opt", CONFIG_CASES, ids=[f"{type(o).__name__}{i}" for i, o in enumerate(CONFIG_CASES)])
def test_config_round_trip(opt):
    cfg = opt.get_config()
    again = type(opt).from_config(cfg)
    assert again.get_config() == cfg
    assert opt.get_config() == cfg  # from_config did not mutate the dict
    data = json.loads(json.dumps(optimizers.serialize(opt)))
    assert data["class_name"] == type(opt).__name__
    back = optimizers.deserialize(data)
    assert type(back) is type(opt)
    assert back.get_config() == cfg
    assert optimizers.get(data).get_config() == cfg
    # Keras-style dicts (extra keys, lower-case names) are accepted
    keras_style = {"module": "keras.optimizers", "class_name": type(opt).__name__.lower(), "config": data["config"],
                   "registered_name": None}
    assert optimizers.deserialize(keras_style).get_config() == cfg


def test_schedule_serialized_as_class_name_and_config():
    opt = optimizers.Adam(learning_rate=schedules.InverseTimeDecay(0.1, 10, 0.5))
    lr = opt.get_config()["learning_rate"]
    assert lr == {
        "class_name": "InverseTimeDecay",
        "config": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5, "staircase": False,
                   "name": "InverseTimeDecay"},
    }


# ------------------------------------------------------------------------- state round trip

STATE_CASES = [
    lambda: optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
    lambda: optimizers.RMSprop(momentum=0.5, centered=True),
    lambda: optimizers.Adagrad(learning_rate=0.1),
    lambda: optimizers.Adadelta(learning_rate=1.0),
    lambda: optimizers.Adam(learning_rate=schedules.ExponentialDecay(0.01, 2, 0.5), amsgrad=True),
    lambda: optimizers.AdamW(learning_rate=0.01, use_ema=True),
    lambda: optimizers.Nadam(learning_rate=0.01, gradient_accumulation_steps=2),
    lambda: optimizers.Adamax(learning_rate=0.01),
    lambda: optimizers.Ftrl(learning_rate=0.1, l1_regularization_strength=0.01),
    lambda: optimizers.Lion(learning_rate=0.01, use_ema=True),
    lambda: optimizers.Adafactor(learning_rate=0.01),
]


@pytest.mark.parametrize("make", STATE_CASES, ids=["sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamw", "nadam",
                                                   "adamax", "ftrl", "lion", "adafactor"])
def test_state_round_trip_continues_identically(make):
    ws, grads_seq = make_problem(np.float32, seed=11, steps=8)
    run_vars = [Variable(w, name=f"w{i}") for i, w in enumerate(ws)]
    opt = make()
    for grads in grads_seq[:3]:
        opt.apply_gradients(zip(grads, run_vars))
    saved_state = opt.get_variable_values()
    saved_weights = [v.numpy() for v in run_vars]
    saved_config = json.loads(json.dumps(optimizers.serialize(opt)))
    for grads in grads_seq[3:]:
        opt.apply_gradients(zip(grads, run_vars))

    resumed_vars = [Variable(w, name=f"w{i}") for i, w in enumerate(saved_weights)]
    resumed = optimizers.deserialize(saved_config)
    resumed.set_variable_values(saved_state, trainable_variables=resumed_vars)
    assert int(resumed.variables[0].value) == 3
    for grads in grads_seq[3:]:
        resumed.apply_gradients(zip(grads, resumed_vars))
    for a, b in zip(run_vars, resumed_vars):
        np.testing.assert_array_equal(a.value, b.value)
    for a, b in zip(opt.get_variable_values(), resumed.get_variable_values()):
        np.testing.assert_array_equal(a, b)


def test_state_restore_errors_and_keras_helpers():
    v = Variable(np.ones(3))
    opt = optimizers.Adam()
    opt.apply_gradients([(np.ones(3), v)])
    state = opt.get_variable_values()
    assert [s.shape for s in state] == [(), (3,), (3,)]
    fresh = optimizers.Adam()
    with pytest.raises(ValueError, match="not been built"):
        fresh.set_variable_values(state)
    with pytest.raises(ValueError, match="not yet been built"):
        fresh.set_weights(state)
    fresh.build([Variable(np.ones(3))])
    with pytest.raises(ValueError, match="expected 3 arrays"):
        fresh.set_variable_values(state[:2])
    with pytest.raises(ValueError, match="shape"):
        fresh.set_variable_values([state[0], np.ones(4), state[2]])
    fresh.set_weights(state)
    assert fresh.iterations == 1
    store = {}
    opt.save_own_variables(store)
    other = optimizers.Adam()
    other.build([Variable(np.ones(3))])
    other.load_own_variables(store)
    for a, b in zip(other.get_weights(), state):
        np.testing.assert_array_equal(a, b)
    with pytest.warns(UserWarning, match="Skipping variable loading"):
        optimizers.Adam().load_own_variables(store)


# ------------------------------------------------------------------------------------ errors


def test_argument_errors():
    with pytest.raises(ValueError, match="not recognized"):
        optimizers.Adam(lr=0.1)
    with pytest.raises(ValueError, match="Only one of `clipnorm`, `clipvalue` and `global_clipnorm`"):
        optimizers.SGD(clipnorm=0.1, clipvalue=0.1)
    with pytest.raises(ValueError, match="Only one of"):
        optimizers.SGD(clipnorm=0.1, global_clipnorm=0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.SGD(learning_rate="0.1")
    with pytest.raises(TypeError, match="learning_rate"):
        optimizers.SGD(learning_rate=None)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate=float("nan"))
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"momentum` must be a float in \[0, 1\]"):
            optimizers.SGD(momentum=bad)
    with pytest.raises(TypeError, match="momentum"):
        optimizers.SGD(momentum="high")
    with pytest.raises(ValueError, match="beta_1"):
        optimizers.Adam(beta_1=1.0)
    with pytest.raises(ValueError, match="beta_2"):
        optimizers.Nadam(beta_2=-0.1)
    with pytest.raises(ValueError, match="epsilon"):
        optimizers.RMSprop(epsilon=-1e-7)
    with pytest.raises(ValueError, match="rho"):
        optimizers.Adadelta(rho=1.5)
    with pytest.raises(ValueError, match="initial_accumulator_value"):
        optimizers.Adagrad(initial_accumulator_value=-0.1)
    with pytest.raises(ValueError, match="weight_decay"):
        optimizers.AdamW(weight_decay=None)
    with pytest.raises(ValueError, match="weight_decay"):
        optimizers.SGD(weight_decay=-0.1)
    with pytest.raises(ValueError, match="clipnorm"):
        optimizers.SGD(clipnorm=-1.0)
    with pytest.raises(TypeError, match="nesterov"):
        optimizers.SGD(nesterov="yes")
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        optimizers.SGD(gradient_accumulation_steps=1)
    with pytest.raises(ValueError, match="ema_momentum"):
        optimizers.SGD(use_ema=True, ema_momentum=1.5)
    with pytest.raises(ValueError, match="ema_overwrite_frequency"):
        optimizers.SGD(use_ema=True, ema_overwrite_frequency=0)
    with pytest.warns(UserWarning, match="decay"):
        optimizers.SGD(decay=0.1)
    # ints are accepted where Keras documents floats
    assert optimizers.SGD(learning_rate=1, momentum=0).momentum == 0.0


def test_gradient_errors():
    v = Variable(np.ones((2, 3)))
    opt = optimizers.SGD()
    with pytest.raises(ValueError, match=r"shape \(3, 2\); expected \(2, 3\)"):
        opt.apply_gradients([(np.ones((3, 2)), v)])
    with pytest.raises(TypeError, match="numeric"):
        opt.apply_gradients([(np.array([["a"] * 3] * 2), v)])
    with pytest.raises(TypeError, match="pairs"):
        opt.apply_gradients([np.ones((2, 3))])
    with pytest.raises(ValueError, match="gradients for 2 variables"):
        opt.apply([np.ones((2, 3))], [v, Variable([1.0])])
    assert opt.apply_gradients([]) == opt.iterations  # empty: no-op


def test_base_optimizer_requires_update_step():
    with pytest.raises(NotImplementedError):
        optimizers.Optimizer(learning_rate=0.1).apply_gradients([(np.ones(1), Variable([1.0]))])


# ------------------------------------------------------------- optional comparison with Keras


def test_matches_keras_itself():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    if int(keras.__version__.split(".")[0]) < 3:
        pytest.skip("needs Keras 3")
    ws, grads_seq = make_problem(np.float32, seed=21, steps=5)
    for name, params in CASES + [("Adam", dict(learning_rate=0.01, global_clipnorm=0.5))]:
        ours = getattr(optimizers, name)(**params)
        theirs = getattr(keras.optimizers, name)(**{k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                                                    for k, v in params.items()})
        our_vars = [Variable(w) for w in ws]
        their_vars = [keras.Variable(w) for w in ws]
        for grads in grads_seq:
            ours.apply_gradients(zip(grads, our_vars))
            theirs.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in grads], their_vars))
        for a, b in zip(our_vars, their_vars):
            np.testing.assert_allclose(a.value, keras.ops.convert_to_numpy(b), rtol=1e-5, atol=1e-6, err_msg=name)


def test_no_warnings_in_normal_use():
    v = Variable(np.ones(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ALL_NAMES:
            optimizers.get(name).apply_gradients([(np.ones(3), v)])


def test_direct_update_step_calls_follow_the_iteration_count():
    # A manual loop may call build/update_step itself; per-step constants must not go stale.
    ws, grads_seq = make_problem(np.float64, seed=2, steps=4)
    for name in ("Adam", "Nadam"):
        a = [Variable(w, dtype="float64") for w in ws]
        b = [Variable(w, dtype="float64") for w in ws]
        manual, auto = getattr(optimizers, name)(), getattr(optimizers, name)()
        manual.build(a)
        for grads in grads_seq:
            auto.apply_gradients(zip(grads, b))
            manual._backend_update_step(grads, a, manual.learning_rate)
            manual._iterations.value += 1
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x.value, y.value)
