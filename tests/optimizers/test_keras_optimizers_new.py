"""Adamax, Ftrl, Lion and Adafactor: Keras 3's arguments, defaults, update rules and slots.

Their updates equal Keras's (KERAS_BACKEND=torch) on the same gradients over several steps, with
default and non-default settings; their configs are Keras's. The resume-across-libraries test (state
in .keras files, both ways) is in tests/models/test_keras_files.py (OPTIMIZERS)."""
import os

import numpy as np
import pytest

from cynet import optimizers
from cynet.variables import Variable

CASES = {
    "adamax": ("Adamax", {}),
    "adamax_set": ("Adamax", dict(learning_rate=0.05, beta_1=0.5, beta_2=0.8, epsilon=1e-3)),
    "ftrl": ("Ftrl", dict(learning_rate=0.1)),
    "ftrl_set": ("Ftrl", dict(learning_rate=0.2, learning_rate_power=-0.7, initial_accumulator_value=0.3,
                              l1_regularization_strength=0.01, l2_regularization_strength=0.02,
                              l2_shrinkage_regularization_strength=0.03, beta=0.1)),
    "lion": ("Lion", dict(learning_rate=0.01)),
    "lion_set": ("Lion", dict(learning_rate=0.1, beta_1=1.0, beta_2=0.5)),
    "adafactor": ("Adafactor", {}),
    "adafactor_set": ("Adafactor", dict(learning_rate=0.05, beta_2_decay=-0.5, epsilon_2=1e-2, clip_threshold=0.5,
                                        relative_step=False)),
    "adamax_decay_clip": ("Adamax", dict(learning_rate=0.05, weight_decay=0.01, clipnorm=0.5)),
}


def _gradients(steps, shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype("float32") for s in shapes] for _ in range(steps)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_updates_equal_keras_on_the_same_gradients(case):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    cls, kwargs = CASES[case]
    shapes = [(3, 4), (2, 3, 4), (4,)]
    rng = np.random.default_rng(1)
    init = [rng.standard_normal(s).astype("float32") for s in shapes]
    c_vars = [Variable(v.copy()) for v in init]
    k_vars = [keras.Variable(v.copy()) for v in init]
    c_opt, k_opt = getattr(optimizers, cls)(**kwargs), getattr(keras.optimizers, cls)(**kwargs)
    for grads in _gradients(5, shapes):
        c_opt.apply_gradients(zip([g.copy() for g in grads], c_vars))
        k_opt.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in grads], k_vars))
        for c, k in zip(c_vars, k_vars):
            np.testing.assert_allclose(c.value, keras.ops.convert_to_numpy(k), rtol=1e-5, atol=1e-6)
    k_slots = [keras.ops.convert_to_numpy(v) for v in k_opt.variables]
    k_slots = k_slots[:1] + k_slots[2:]     # Keras's 2nd variable is its learning rate (cynet: a float)
    c_slots = [np.asarray(v.value) for v in c_opt.variables]
    assert [v.shape for v in c_slots] == [v.shape for v in k_slots]   # same slots, same order
    for c, k in zip(c_slots, k_slots):
        np.testing.assert_allclose(c, k, rtol=1e-5, atol=1e-6)
    k_config = k_opt.get_config()
    c_config = c_opt.get_config()
    assert set(c_config) == set(k_config)
    for key in set(c_config) - {"name"}:    # (Keras numbers unnamed optimizers: adamax_1, ...)
        assert c_config[key] == pytest.approx(k_config[key]), key


@pytest.mark.parametrize("cls", ["Adamax", "Ftrl", "Lion", "Adafactor"])
def test_defaults_and_names(cls):
    opt = getattr(optimizers, cls)()
    assert opt.name == cls.lower() and opt.learning_rate == pytest.approx(0.001)
    assert optimizers.get(cls.lower()).__class__ is opt.__class__
    again = optimizers.deserialize(optimizers.serialize(opt))
    assert again.get_config() == opt.get_config()


@pytest.mark.parametrize("make, match", [
    (lambda: optimizers.Adamax(beta_1=1.0), "beta_1"),
    (lambda: optimizers.Adamax(epsilon=-1.0), "epsilon"),
    (lambda: optimizers.Ftrl(learning_rate_power=0.5), "learning_rate_power"),
    (lambda: optimizers.Ftrl(initial_accumulator_value=-0.1), "initial_accumulator_value"),
    (lambda: optimizers.Ftrl(l1_regularization_strength=-1), "l1_regularization_strength"),
    (lambda: optimizers.Ftrl(l2_regularization_strength=-1), "l2_regularization_strength"),
    (lambda: optimizers.Ftrl(l2_shrinkage_regularization_strength=-1), "l2_shrinkage_regularization_strength"),
    (lambda: optimizers.Lion(beta_1=0.0), "beta_1"),
    (lambda: optimizers.Lion(beta_1=1.5), "beta_1"),
    (lambda: optimizers.Lion(beta_2=1.0), "beta_2"),
])
def test_bad_arguments_name_themselves(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_lion_steps_are_lr_in_every_coordinate():
    """Direct definition: the first step (m = 0) moves every coordinate by lr against the gradient's sign."""
    w = Variable(np.array([1.0, -2.0, 3.0], "float64"))
    opt = optimizers.Lion(learning_rate=0.25)
    opt.apply_gradients([(np.array([0.3, -5.0, 0.0]), w)])
    np.testing.assert_allclose(w.value, [0.75, -1.75, 3.0])


def test_adamax_first_step_is_lr_sign_g():
    """Direct definition: after one step m = (1 - b1) g, u = |g|, so w moves by lr * g / (|g| + eps)."""
    g = np.array([0.5, -2.0])
    w = Variable(np.zeros(2))
    optimizers.Adamax(learning_rate=0.1, epsilon=0.0).apply_gradients([(g, w)])
    np.testing.assert_allclose(w.value, -0.1 * np.sign(g), rtol=1e-6)
