"""cynet.initializers: shapes, dtypes, distributions against the Keras formulas, seeding, registry."""
import json
import math

import numpy as np
import pytest

from cynet import initializers
from cynet.initializers import (
    Constant,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    Identity,
    LecunNormal,
    LecunUniform,
    Ones,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
    Zeros,
)
from cynet.utils import set_random_seed

# Dense kernels and conv kernels (Conv1D, Conv2D, Conv3D), with fans worked out by hand.
# (shape, fan_in, fan_out)
SHAPES = [
    ((400, 300), 400, 300),
    ((3, 3, 32, 64), 3 * 3 * 32, 3 * 3 * 64),
    ((5, 16, 40), 5 * 16, 5 * 40),
    ((2, 3, 3, 8, 4), 2 * 3 * 3 * 8, 2 * 3 * 3 * 4),
]
SHAPE_IDS = ["dense", "conv2d", "conv1d", "conv3d"]

# (class, kind, variance numerator, which fan): variance = num / n.
# Uniform: limit = sqrt(3 * variance); truncated normal: stddev (after truncation) = sqrt(variance).
FAMILY = [
    (GlorotUniform, "uniform", 2.0, "avg2"),  # 6 / (fi + fo) = 3 * 2 / (fi + fo)
    (GlorotNormal, "normal", 2.0, "avg2"),
    (HeUniform, "uniform", 2.0, "in"),
    (HeNormal, "normal", 2.0, "in"),
    (LecunUniform, "uniform", 1.0, "in"),
    (LecunNormal, "normal", 1.0, "in"),
]

TRUNC_STD = 0.87962566103423978  # stddev of N(0, 1) truncated to [-2, 2]


def _truncated_std_reference():
    # Independent check of Keras's constant: var of N(0,1) on [-2,2] = 1 - 2*2*phi(2)/(2*Phi(2)-1).
    phi = math.exp(-2.0) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    return math.sqrt(1 - 4 * phi / mass)


def test_truncation_constant_matches_theory():
    assert _truncated_std_reference() == pytest.approx(TRUNC_STD, rel=1e-12)


def _variance(num, which, fan_in, fan_out):
    if which == "in":
        return num / fan_in
    return num / (fan_in + fan_out)  # num / (fi + fo) with num = 2 == 1 / fan_avg


@pytest.mark.parametrize("shape,fan_in,fan_out", SHAPES, ids=SHAPE_IDS)
def test_compute_fans(shape, fan_in, fan_out):
    assert initializers.compute_fans(shape) == (fan_in, fan_out)


def test_compute_fans_small_ranks():
    assert initializers.compute_fans(()) == (1, 1)
    assert initializers.compute_fans((7,)) == (7, 7)


@pytest.mark.parametrize("cls,kind,num,which", FAMILY, ids=[f[0].__name__ for f in FAMILY])
@pytest.mark.parametrize("shape,fan_in,fan_out", SHAPES, ids=SHAPE_IDS)
def test_variance_scaling_family_statistics(cls, kind, num, which, shape, fan_in, fan_out):
    var = _variance(num, which, fan_in, fan_out)
    std = math.sqrt(var)
    w = cls(seed=7)(shape).astype(np.float64)
    assert w.shape == shape and cls(seed=7)(shape).dtype == np.float32
    n = w.size
    # mean of n draws has stddev std / sqrt(n): allow 5 sigma.
    assert abs(w.mean()) < 5 * std / math.sqrt(n)
    # the sample stddev has relative stddev ~ 1/sqrt(2n) (a bit more for uniform/truncated).
    assert w.std() == pytest.approx(std, rel=6 / math.sqrt(2 * n) + 2e-3)
    if kind == "uniform":
        limit = math.sqrt(3 * var)
        assert np.abs(w).max() <= limit * (1 + 1e-6)
        assert np.abs(w).max() > 0.99 * limit
    else:
        bound = 2 * std / TRUNC_STD
        assert np.abs(w).max() <= bound * (1 + 1e-6)
        assert np.abs(w).max() > 0.98 * bound


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["uniform", "truncated_normal", "untruncated_normal", "normal"])
def test_variance_scaling_modes(mode, distribution):
    shape, fan_in, fan_out = (3, 3, 16, 48), 144, 432
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    std = math.sqrt(2.5 / n)
    init = VarianceScaling(scale=2.5, mode=mode, distribution=distribution, seed=3)
    w = init(shape, dtype="float64")
    assert w.dtype == np.float64
    assert w.std() == pytest.approx(std, rel=0.03)
    assert abs(w.mean()) < 5 * std / math.sqrt(w.size)
    if distribution == "uniform":
        assert np.abs(w).max() <= math.sqrt(3) * std
    elif distribution == "untruncated_normal":
        assert np.abs(w).max() > 3 * std  # tails are not cut
    else:
        assert init.distribution == "truncated_normal"
        assert np.abs(w).max() <= 2 * std / TRUNC_STD * (1 + 1e-12)


def test_variance_scaling_one_dimensional_and_tiny_fans():
    w = VarianceScaling(scale=1.0, mode="fan_in", distribution="uniform", seed=0)((10000,))
    assert np.abs(w).max() <= math.sqrt(3 / 10000) * (1 + 1e-6)
    assert np.abs(w).max() > 0.99 * math.sqrt(3 / 10000)
    # fan 0 is treated as 1 (no division by zero).
    assert VarianceScaling(seed=0)((0, 5)).shape == (0, 5)
    w = VarianceScaling(mode="fan_in", distribution="uniform", seed=0)((1, 20000))
    assert np.abs(w).max() <= math.sqrt(3) * (1 + 1e-6)


def test_random_normal_and_uniform_statistics():
    w = RandomNormal(mean=1.5, stddev=0.3, seed=1)((500, 400), dtype=np.float64)
    assert w.mean() == pytest.approx(1.5, abs=5 * 0.3 / math.sqrt(w.size))
    assert w.std() == pytest.approx(0.3, rel=0.01)
    w = RandomUniform(minval=-0.2, maxval=0.6, seed=1)((500, 400))
    assert w.dtype == np.float32
    assert w.min() >= -0.2 and w.max() <= np.float32(0.6)
    assert w.min() < -0.199 and w.max() > 0.599
    assert float(w.mean()) == pytest.approx(0.2, abs=5 * 0.8 / math.sqrt(12 * w.size))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_truncated_normal_stays_within_two_stddev(dtype):
    w = TruncatedNormal(mean=-1.0, stddev=2.0, seed=5)((600, 500), dtype=dtype)
    assert w.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-12
    assert np.all(np.abs(w.astype(np.float64) + 1.0) <= 4.0 * (1 + tol))
    assert np.abs(w + 1.0).max() > 3.99
    assert w.mean() == pytest.approx(-1.0, abs=0.01)
    assert w.std() == pytest.approx(2.0 * TRUNC_STD, rel=0.01)


def test_defaults_match_keras():
    assert RandomNormal().get_config() == {"seed": None, "mean": 0.0, "stddev": 0.05}
    assert TruncatedNormal().get_config() == {"seed": None, "mean": 0.0, "stddev": 0.05}
    assert RandomUniform().get_config() == {"seed": None, "minval": -0.05, "maxval": 0.05}
    assert VarianceScaling().get_config() == {
        "seed": None,
        "scale": 1.0,
        "mode": "fan_in",
        "distribution": "truncated_normal",
    }
    assert Orthogonal().get_config() == {"seed": None, "gain": 1.0}
    assert Constant().get_config() == {"value": 0.0}
    assert Identity().get_config() == {"gain": 1.0}
    assert GlorotUniform(seed=3).get_config() == {"seed": 3}
    g = GlorotUniform()
    assert (g.scale, g.mode, g.distribution) == (1.0, "fan_avg", "uniform")
    h = HeNormal()
    assert (h.scale, h.mode, h.distribution) == (2.0, "fan_in", "truncated_normal")


@pytest.mark.parametrize("gain", [1.0, 0.5])
@pytest.mark.parametrize("shape", [(64, 16), (16, 64), (32, 32), (3, 3, 4, 20), (2, 2, 4, 40)])
def test_orthogonal(shape, gain):
    w = Orthogonal(gain=gain, seed=11)(shape, dtype="float64")
    assert w.shape == shape and w.dtype == np.float64
    m = w.reshape(-1, shape[-1])
    rows, cols = m.shape
    if rows >= cols:  # tall: orthonormal columns
        np.testing.assert_allclose(m.T @ m, gain**2 * np.eye(cols), atol=1e-12)
    else:  # wide: orthonormal rows
        np.testing.assert_allclose(m @ m.T, gain**2 * np.eye(rows), atol=1e-12)
    assert Orthogonal(seed=11)(shape).dtype == np.float32


def test_orthogonal_sign_correction_makes_it_keras_like():
    # With Keras's sign correction Q = QR(A).Q * sign(diag(R)), so Q^T A = R' has a positive diagonal.
    shape = (50, 20)
    rng = np.random.default_rng(21)  # same generator the initializer uses for seed=21
    a = rng.standard_normal(shape)
    q = Orthogonal(seed=21)(shape, dtype="float64")
    assert np.all(np.diag(q.T @ a) > 0)
    # The wide case is the transpose of the tall draw.
    np.testing.assert_allclose(Orthogonal(seed=21)((20, 50), dtype="float64"), q.T)


def test_orthogonal_rejects_rank_below_two():
    with pytest.raises(ValueError, match="at least two-dimensional"):
        Orthogonal()((5,))


def test_constant_zeros_ones_identity():
    np.testing.assert_array_equal(Zeros()((2, 3)), np.zeros((2, 3), np.float32))
    assert Zeros()((2, 3)).dtype == np.float32
    assert Ones()((4,), dtype="int32").dtype == np.int32
    np.testing.assert_array_equal(Ones()((4,), dtype="int32"), [1, 1, 1, 1])
    c = Constant(2.5)((3, 2), dtype=np.float64)
    assert c.dtype == np.float64 and np.all(c == 2.5)
    c = Constant([1.0, 2.0])((3, 2))
    np.testing.assert_array_equal(c, [[1, 2]] * 3)
    c[0, 0] = 9  # writable copy, not a broadcast view
    with pytest.raises(ValueError, match="cannot be broadcast"):
        Constant([1.0, 2.0, 3.0])((3, 2))
    np.testing.assert_array_equal(Identity(gain=3.0)((2, 3)), [[3, 0, 0], [0, 3, 0]])
    with pytest.raises(ValueError, match="only be used for 2D"):
        Identity()((2, 2, 2))


@pytest.mark.parametrize(
    "init",
    [
        GlorotUniform(seed=1),
        GlorotNormal(seed=1),
        HeUniform(seed=1),
        HeNormal(seed=1),
        LecunUniform(seed=1),
        LecunNormal(seed=1),
        RandomNormal(seed=1),
        RandomUniform(seed=1),
        TruncatedNormal(seed=1),
        VarianceScaling(seed=1),
        Orthogonal(seed=1),
        Zeros(),
        Ones(),
        Constant(0.5),
    ],
    ids=lambda i: type(i).__name__,
)
@pytest.mark.parametrize("dtype", [None, "float32", np.float64, np.dtype("float16")])
def test_shapes_and_dtypes(init, dtype):
    for shape in [(3, 4), (2, 3, 4, 5), [6, 2]]:
        w = init(shape, dtype=dtype)
        assert isinstance(w, np.ndarray)
        assert w.shape == tuple(shape)
        assert w.dtype == (np.float32 if dtype is None else np.dtype(dtype))
        assert np.all(np.isfinite(w))


@pytest.mark.parametrize("cls", [GlorotUniform, RandomNormal, TruncatedNormal, Orthogonal])
def test_random_initializers_reject_integer_dtypes(cls):
    with pytest.raises(ValueError, match="floating-point.*int32"):
        cls(seed=0)((3, 3), dtype="int32")


def test_seeded_instances_are_reproducible_and_repeat_like_keras():
    a = GlorotUniform(seed=42)((30, 20))
    b = GlorotUniform(seed=42)((30, 20))
    np.testing.assert_array_equal(a, b)
    init = GlorotUniform(seed=42)
    np.testing.assert_array_equal(init((30, 20)), init((30, 20)))  # Keras 3: same values every call
    assert not np.array_equal(GlorotUniform(seed=43)((30, 20)), a)
    # float32 and float64 come from the same draws
    np.testing.assert_allclose(GlorotUniform(seed=42)((30, 20), dtype="float64"), a, rtol=1e-6)


def test_unseeded_instances_follow_set_random_seed():
    set_random_seed(123)
    a1, a2 = HeNormal(), RandomUniform()
    wa1, wa2 = a1((40, 30)), a2((40, 30))
    set_random_seed(123)
    b1, b2 = HeNormal(), RandomUniform()
    np.testing.assert_array_equal(b1((40, 30)), wa1)
    np.testing.assert_array_equal(b2((40, 30)), wa2)
    # two unseeded instances differ; one instance repeats itself (Keras 3 semantics) ...
    assert not np.array_equal(HeNormal()((40, 30)), HeNormal()((40, 30)))
    np.testing.assert_array_equal(a1((40, 30)), wa1)
    # ... and clone() gives a new default seed with the same config.
    c = a1.clone()
    assert isinstance(c, HeNormal) and c.get_config() == a1.get_config()
    assert not np.array_equal(c((40, 30)), wa1)
    set_random_seed(7)
    o1 = Orthogonal()((8, 8))
    set_random_seed(7)
    np.testing.assert_array_equal(Orthogonal()((8, 8)), o1)


def test_generator_seed_draws_fresh_values_each_call():
    init = RandomNormal(seed=np.random.default_rng(0))
    assert not np.array_equal(init((10, 10)), init((10, 10)))
    init2 = RandomNormal(seed=np.random.default_rng(0))
    init2((10, 10))
    assert init.get_config()["seed"] is None


# ------------------------------------------------------------------ registry / serialization

ALL_INSTANCES = [
    Zeros(),
    Ones(),
    Constant(3.0),
    Constant([1.0, 2.0]),
    Identity(gain=2.0),
    RandomNormal(mean=1.0, stddev=0.2, seed=4),
    RandomUniform(minval=-1.0, maxval=2.0, seed=4),
    TruncatedNormal(mean=0.5, stddev=0.1, seed=4),
    VarianceScaling(scale=2.0, mode="fan_out", distribution="uniform", seed=4),
    GlorotUniform(seed=4),
    GlorotNormal(seed=4),
    HeUniform(seed=4),
    HeNormal(seed=4),
    LecunUniform(seed=4),
    LecunNormal(seed=4),
    Orthogonal(gain=0.5, seed=4),
]


@pytest.mark.parametrize("init", ALL_INSTANCES, ids=lambda i: type(i).__name__)
def test_serialize_round_trip(init):
    cfg = initializers.serialize(init)
    assert cfg["class_name"] == type(init).__name__
    cfg = json.loads(json.dumps(cfg))  # JSON-safe
    back = initializers.deserialize(cfg)
    assert type(back) is type(init)
    assert back.get_config() == init.get_config()
    np.testing.assert_array_equal(back((4, 2)), init((4, 2)))
    again = initializers.get(cfg)
    assert type(again) is type(init)
    assert type(init).from_config(init.get_config()).get_config() == init.get_config()


@pytest.mark.parametrize(
    "name,cls",
    [
        ("glorot_uniform", GlorotUniform),
        ("GlorotUniform", GlorotUniform),
        ("glorot_normal", GlorotNormal),
        ("he_uniform", HeUniform),
        ("he_normal", HeNormal),
        ("lecun_uniform", LecunUniform),
        ("lecun_normal", LecunNormal),
        ("random_normal", RandomNormal),
        ("normal", RandomNormal),
        ("random_uniform", RandomUniform),
        ("uniform", RandomUniform),
        ("truncated_normal", TruncatedNormal),
        ("variance_scaling", VarianceScaling),
        ("orthogonal", Orthogonal),
        ("Orthogonal", Orthogonal),
        ("OrthogonalInitializer", Orthogonal),
        ("zeros", Zeros),
        ("zero", Zeros),
        ("ones", Ones),
        ("one", Ones),
        ("constant", Constant),
        ("identity", Identity),
    ],
)
def test_get_strings(name, cls):
    obj = initializers.get(name)
    assert type(obj) is cls
    assert obj.get_config() == cls().get_config() or "seed" in obj.get_config()


def test_get_other_identifiers():
    assert initializers.get(None) is None
    inst = HeNormal(seed=1)
    assert initializers.get(inst) is inst
    assert type(initializers.get(HeNormal)) is HeNormal

    def my_init(shape, dtype=None):
        return np.full(shape, 7.0, dtype=dtype or "float32")

    assert initializers.get(my_init) is my_init
    obj = initializers.get({"class_name": "RandomUniform", "config": {"minval": 0.0, "maxval": 1.0, "seed": 2}})
    assert isinstance(obj, RandomUniform) and obj.maxval == 1.0
    # Keras 3 serialized form (extra keys) loads too.
    keras_cfg = {
        "module": "keras.initializers",
        "class_name": "GlorotUniform",
        "config": {"seed": 5},
        "registered_name": None,
    }
    assert initializers.get(keras_cfg).get_config() == {"seed": 5}


def test_custom_objects_in_deserialize():
    class MyInit(initializers.Initializer):
        def __init__(self, v=1.0):
            self.v = v

        def __call__(self, shape, dtype=None):
            return np.full(shape, self.v, dtype=dtype or "float32")

        def get_config(self):
            return {"v": self.v}

    cfg = initializers.serialize(MyInit(3.0))
    with pytest.raises(ValueError, match="Unknown initializer: 'MyInit'"):
        initializers.deserialize(cfg)
    back = initializers.deserialize(cfg, custom_objects={"MyInit": MyInit})
    assert back.v == 3.0


def test_get_errors():
    with pytest.raises(ValueError, match=r"Unknown initializer: 'glorot_unifrom'.*glorot_uniform"):
        initializers.get("glorot_unifrom")
    with pytest.raises(ValueError, match="Unknown initializer: 'GLOROT_UNIFORM'"):
        initializers.get("GLOROT_UNIFORM")  # case-sensitive, as in Keras
    with pytest.raises(ValueError, match="Could not interpret initializer identifier: 42"):
        initializers.get(42)
    with pytest.raises(ValueError, match="class_name"):
        initializers.deserialize({"config": {}})
    with pytest.raises(ValueError, match="Invalid config for initializer 'HeNormal'"):
        initializers.deserialize({"class_name": "HeNormal", "config": {"scale": 3.0}})
    with pytest.raises(ValueError, match="only cynet.initializers.Initializer"):
        initializers.serialize(lambda shape, dtype=None: None)
    assert initializers.serialize(None) is None
    # names that exist elsewhere in Python are never imported
    with pytest.raises(ValueError, match="Unknown initializer: 'os.system'"):
        initializers.get({"class_name": "os.system", "config": {}})


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: RandomNormal(stddev=-1.0), r"`stddev` must be >= 0.*stddev=-1.0"),
        (lambda: TruncatedNormal(stddev=-0.1), r"`stddev` must be >= 0"),
        (lambda: RandomNormal(mean=float("nan")), r"`mean` must be finite"),
        (lambda: RandomNormal(mean="0"), r"`mean` must be a real number"),
        (lambda: RandomUniform(minval=1.0, maxval=0.0), r"`minval` must be <= `maxval`"),
        (lambda: VarianceScaling(scale=0.0), r"`scale` must be > 0.*scale=0.0"),
        (lambda: VarianceScaling(scale=-2), r"`scale` must be > 0"),
        (lambda: VarianceScaling(mode="fan_sum"), r"Invalid `mode` argument: 'fan_sum'.*fan_avg"),
        (lambda: VarianceScaling(distribution="cauchy"), r"Invalid `distribution` argument: 'cauchy'"),
        (lambda: GlorotUniform(seed=-1), r"`seed` must be None, a non-negative int"),
        (lambda: GlorotUniform(seed=1.5), r"`seed` must be None, a non-negative int"),
        (lambda: GlorotUniform(seed=True), r"`seed` must be None"),
        (lambda: Orthogonal(gain="x"), r"`gain` must be a real number"),
        (lambda: Constant("abc"), r"`value` must be a number"),
    ],
)
def test_argument_validation(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_call_validation():
    with pytest.raises(ValueError, match=r"shape must be a tuple of non-negative ints; received shape=\(3, -1\)"):
        Zeros()((3, -1))
    with pytest.raises(ValueError, match="shape must be"):
        Ones()((2.5, 2))
    with pytest.raises(ValueError, match="Invalid dtype"):
        Zeros()((2,), dtype="no-such-dtype")
    assert Zeros()(5).shape == (5,)
