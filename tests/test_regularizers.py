"""cynet.regularizers: penalties and gradients vs hand computation and finite differences, registry."""
import json

import numpy as np
import pytest

from cynet import regularizers
from cynet.regularizers import L1, L1L2, L2, OrthogonalRegularizer, Regularizer
from cynet.testing import numerical_gradient


def test_hand_worked_penalties():
    x = np.array([[1.0, -2.0], [0.0, 3.0]])
    assert L1(0.1)(x) == pytest.approx(0.1 * 6.0)
    assert L2(0.1)(x) == pytest.approx(0.1 * 14.0)
    assert L1L2(l1=0.1, l2=0.2)(x) == pytest.approx(0.1 * 6.0 + 0.2 * 14.0)
    assert L1L2()(x) == 0.0
    # Keras docstring example: L2(2.) on ones((5, 5)) is 50.
    assert L2(2.0)(np.ones((5, 5), np.float32)) == pytest.approx(50.0)
    assert isinstance(L1()(x), float)


def test_hand_worked_gradients():
    x = np.array([[1.0, -2.0], [0.0, 3.0]], dtype=np.float32)
    np.testing.assert_array_equal(L1(0.5).gradient(x), [[0.5, -0.5], [0.0, 0.5]])  # sign, 0 at 0
    np.testing.assert_allclose(L2(0.5).gradient(x), [[1.0, -2.0], [0.0, 3.0]])
    np.testing.assert_allclose(L1L2(0.5, 0.5).gradient(x), [[1.5, -2.5], [0.0, 3.5]])
    for reg in [L1(0.5), L2(0.5), L1L2(0.5, 0.5), L1L2(), OrthogonalRegularizer()]:
        g = reg.gradient(x)
        assert g.dtype == np.float32 and g.shape == x.shape


def test_orthogonal_hand_worked():
    # rows (1, 0), (1, 1)/sqrt2, (0, 1): off-diagonal dots 1/sqrt2, 0, 1/sqrt2; 3 pairs.
    x = np.array([[2.0, 0.0], [3.0, 3.0], [0.0, 0.5]])
    expected = 0.1 * 0.5 * (2 * 2 / np.sqrt(2)) / 3.0
    assert OrthogonalRegularizer(0.1)(x) == pytest.approx(expected)
    assert OrthogonalRegularizer(0.1, mode="columns")(x.T) == pytest.approx(expected)
    # orthogonal rows cost nothing
    assert OrthogonalRegularizer(1.0)(np.diag([1.0, 5.0, 2.0])) == 0.0
    assert OrthogonalRegularizer(1.0)(np.ones((1, 4))) == 0.0  # a single row has no pairs
    with pytest.raises(ValueError, match="must have rank 2"):
        OrthogonalRegularizer()(np.ones(4))


@pytest.mark.parametrize(
    "reg",
    [
        L1(0.3),
        L2(0.7),
        L1L2(l1=0.2, l2=0.4),
        OrthogonalRegularizer(0.5, mode="rows"),
        OrthogonalRegularizer(0.5, mode="columns"),
    ],
    ids=["l1", "l2", "l1l2", "orth_rows", "orth_cols"],
)
@pytest.mark.parametrize("shape", [(4, 5), (6, 3)])
def test_gradient_matches_finite_differences(reg, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    x[np.abs(x) < 0.05] += 0.2  # keep away from the |x| kink for L1
    g = reg.gradient(x)
    assert g.dtype == np.float64 and g.shape == x.shape
    num = numerical_gradient(lambda: reg(x), x, eps=1e-6)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_and_array_likes(dtype):
    x = np.arange(-3, 3, dtype=dtype).reshape(2, 3)
    for reg in [L1(), L2(), L1L2(0.01, 0.01)]:
        assert reg.gradient(x).dtype == dtype
    assert L1(1.0)([[1, -2], [3, 0]]) == 6.0
    assert L2(1.0).gradient([[1, 2]]).dtype == np.float32


def test_defaults_and_configs_match_keras():
    assert L1().get_config() == {"l1": 0.01}
    assert L2().get_config() == {"l2": 0.01}
    assert L1L2().get_config() == {"l1": 0.0, "l2": 0.0}
    assert OrthogonalRegularizer().get_config() == {"factor": 0.01, "mode": "rows"}
    assert L1(None).l1 == 0.01 and L2(None).l2 == 0.01
    assert L1L2(None, None).get_config() == {"l1": 0.0, "l2": 0.0}
    assert regularizers.l1 is L1 and regularizers.l2 is L2 and regularizers.l1_l2 is L1L2
    assert L1(3).get_config() == {"l1": 3.0}


@pytest.mark.parametrize(
    "name,cls,config",
    [
        ("l1", L1, {"l1": 0.01}),
        ("L1", L1, {"l1": 0.01}),
        ("l2", L2, {"l2": 0.01}),
        ("L2", L2, {"l2": 0.01}),
        ("l1_l2", L1L2, {"l1": 0.01, "l2": 0.01}),
        ("L1L2", L1L2, {"l1": 0.0, "l2": 0.0}),
        ("orthogonal_regularizer", OrthogonalRegularizer, {"factor": 0.01, "mode": "rows"}),
    ],
)
def test_get_strings(name, cls, config):
    reg = regularizers.get(name)
    assert type(reg) is cls and reg.get_config() == config


@pytest.mark.parametrize(
    "reg", [L1(0.2), L2(0.3), L1L2(0.1, 0.4), OrthogonalRegularizer(0.05, "columns")], ids=lambda r: type(r).__name__
)
def test_serialize_round_trip(reg):
    cfg = json.loads(json.dumps(regularizers.serialize(reg)))
    assert cfg == {"class_name": type(reg).__name__, "config": reg.get_config()}
    back = regularizers.deserialize(cfg)
    assert type(back) is type(reg) and back.get_config() == reg.get_config()
    assert type(regularizers.get(cfg)) is type(reg)
    x = np.random.default_rng(1).standard_normal((3, 4))
    assert back(x) == reg(x)


def test_get_other_identifiers_and_custom_objects():
    assert regularizers.get(None) is None
    r = L2(0.5)
    assert regularizers.get(r) is r
    assert type(regularizers.get(L1)) is L1

    def my_reg(x):
        return 0.0

    assert regularizers.get(my_reg) is my_reg

    class MyReg(Regularizer):
        def __init__(self, k=1.0):
            self.k = k

        def __call__(self, x):
            return self.k * float(np.sum(x))

        def get_config(self):
            return {"k": self.k}

    cfg = regularizers.serialize(MyReg(2.0))
    with pytest.raises(ValueError, match="Unknown regularizer: 'MyReg'"):
        regularizers.deserialize(cfg)
    assert regularizers.deserialize(cfg, custom_objects={"MyReg": MyReg}).k == 2.0
    with pytest.raises(NotImplementedError, match="MyReg defines a penalty but not its gradient"):
        MyReg().gradient(np.ones(3))
    base = Regularizer()
    assert base(np.ones(3)) == 0.0
    np.testing.assert_array_equal(base.gradient(np.ones(3)), np.zeros(3))


def test_errors():
    with pytest.raises(ValueError, match=r"Unknown regularizer: 'l3'.*l1_l2"):
        regularizers.get("l3")
    with pytest.raises(ValueError, match="Could not interpret regularizer identifier: 0.1"):
        regularizers.get(0.1)
    with pytest.raises(ValueError, match="only cynet.regularizers.Regularizer"):
        regularizers.serialize(lambda x: 0.0)
    with pytest.raises(ValueError, match="Invalid config for regularizer 'L1'"):
        regularizers.deserialize({"class_name": "L1", "config": {"l2": 0.1}})
    with pytest.raises(ValueError, match=r"Invalid value for argument l1: expected a non-negative.*l1=-0.1"):
        L1(-0.1)
    with pytest.raises(ValueError, match="Invalid value for argument l2"):
        L2(float("inf"))
    with pytest.raises(ValueError, match="Invalid value for argument l2"):
        L1L2(l2="0.1")
    with pytest.raises(ValueError, match="Invalid value for argument factor"):
        OrthogonalRegularizer(factor=-1)
    with pytest.raises(ValueError, match=r"Invalid value for argument `mode`.*mode='diag'"):
        OrthogonalRegularizer(mode="diag")
