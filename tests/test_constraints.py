"""Weight constraints (cynet.constraints): each against its direct definition and against Keras 3,
names and configs, and in layers: stored on the weight, applied by the optimizer after each update
(as Keras does), kept in configs. The .keras round trips with constraints are in
tests/models/test_keras_files.py ("constrained")."""
import os

import numpy as np
import pytest

import cynet
from cynet import constraints as C
from cynet import layers as L

RNG = np.random.default_rng(0)
EPS = 1e-7


def _norms(w, axis):
    return np.sqrt(np.sum(w * w, axis=tuple(axis) if isinstance(axis, list) else axis, keepdims=True))


def _w(shape=(4, 3), dtype="float64"):
    return (RNG.standard_normal(shape) * 2).astype(dtype)


@pytest.mark.parametrize("axis", [0, 1, [0, 1]])
def test_max_norm(axis):
    w = _w()
    out = C.MaxNorm(1.5, axis=axis)(w)
    n = _norms(w, axis)
    np.testing.assert_allclose(out, w * np.minimum(n, 1.5) / (EPS + n), rtol=1e-12)
    assert np.all(_norms(out, axis) <= 1.5 + 1e-9)
    small = w * 1e-3                      # already inside: unchanged (up to the epsilon)
    np.testing.assert_allclose(C.MaxNorm(1.5, axis=axis)(small), small, rtol=1e-4)


@pytest.mark.parametrize("rate", [1.0, 0.25])
def test_min_max_norm(rate):
    w = _w((3, 5))
    out = C.MinMaxNorm(0.5, 1.0, rate=rate, axis=1)(w)
    n = _norms(w, 1)
    desired = rate * np.clip(n, 0.5, 1.0) + (1 - rate) * n
    np.testing.assert_allclose(out, w * desired / (EPS + n), rtol=1e-12)
    if rate == 1.0:
        got = _norms(out, 1)
        assert np.all((got >= 0.5 - 1e-6) & (got <= 1.0 + 1e-6))


def test_non_neg_and_unit_norm():
    w = _w()
    np.testing.assert_array_equal(C.NonNeg()(w), np.where(w < 0, 0.0, w))
    out = C.UnitNorm(axis=0)(w)
    np.testing.assert_allclose(_norms(out, 0), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(C.Constraint()(w), w)


def test_dtype_is_kept():
    w = _w(dtype="float32")
    for c in (C.MaxNorm(1.0), C.MinMaxNorm(), C.NonNeg(), C.UnitNorm()):
        assert c(w).dtype == np.float32


def test_names_configs_and_get():
    assert C.max_norm is C.MaxNorm and C.non_neg is C.NonNeg and C.unit_norm is C.UnitNorm
    for name, cls in (("max_norm", C.MaxNorm), ("MaxNorm", C.MaxNorm), ("non_neg", C.NonNeg),
                      ("unit_norm", C.UnitNorm), ("min_max_norm", C.MinMaxNorm)):
        assert type(C.get(name)) is cls
    c = C.MinMaxNorm(0.1, 2.0, rate=0.5, axis=[0, 2])
    again = C.deserialize(C.serialize(c))
    assert type(again) is C.MinMaxNorm and again.get_config() == c.get_config()
    assert C.get({"class_name": "MaxNorm", "config": {"max_value": 3, "axis": 1}, "module": "keras.constraints",
                  "registered_name": None}).get_config() == {"max_value": 3, "axis": 1}
    assert C.get(None) is None and type(C.get(C.NonNeg)) is C.NonNeg
    fn = lambda w: w  # noqa: E731
    assert C.get(fn) is fn
    with pytest.raises(ValueError, match="Unknown constraint"):
        C.get("max_norms")
    with pytest.raises(ValueError, match="Could not interpret constraint"):
        C.get(3)
    with pytest.raises(ValueError, match="axis"):
        C.MaxNorm(axis="rows")
    with pytest.raises(ValueError, match="max_value"):
        C.MaxNorm(max_value="big")
    with pytest.raises(ValueError, match="only cynet.constraints.Constraint"):
        C.serialize(fn)


def test_equal_to_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    w = _w((3, 3, 2, 4), "float32")
    for ours, theirs in ((C.MaxNorm(1.0, axis=[0, 1, 2]), keras.constraints.MaxNorm(1.0, axis=[0, 1, 2])),
                         (C.MinMaxNorm(0.5, 0.8, 0.7, axis=3), keras.constraints.MinMaxNorm(0.5, 0.8, 0.7, axis=3)),
                         (C.NonNeg(), keras.constraints.NonNeg()), (C.UnitNorm(axis=1), keras.constraints.UnitNorm(1))):
        np.testing.assert_allclose(ours(w), keras.ops.convert_to_numpy(theirs(w)), rtol=1e-6, atol=1e-7)
        assert ours.get_config() == theirs.get_config()


LAYERS = [
    (lambda c: L.Dense(4, kernel_constraint=c, bias_constraint=c), (6,), ["kernel", "bias"]),
    (lambda c: L.Conv2D(3, 3, kernel_constraint=c, bias_constraint=c), (6, 6, 2), ["kernel", "bias"]),
    (lambda c: L.Conv1D(3, 2, kernel_constraint=c), (7, 2), ["kernel"]),
    (lambda c: L.Conv2DTranspose(3, 2, kernel_constraint=c), (4, 4, 2), ["kernel"]),
    (lambda c: L.DepthwiseConv2D(3, depthwise_constraint=c, bias_constraint=c), (6, 6, 2), ["kernel", "bias"]),
    (lambda c: L.SeparableConv2D(3, 3, depthwise_constraint=c, pointwise_constraint=c, bias_constraint=c), (6, 6, 2),
     ["depthwise_kernel", "pointwise_kernel", "bias"]),
    (lambda c: L.BatchNormalization(beta_constraint=c, gamma_constraint=c), (5,), ["gamma", "beta"]),
    (lambda c: L.LayerNormalization(beta_constraint=c, gamma_constraint=c), (5,), ["gamma", "beta"]),
    (lambda c: L.GroupNormalization(2, beta_constraint=c, gamma_constraint=c), (4,), ["gamma", "beta"]),
    (lambda c: L.PReLU(alpha_constraint=c), (5,), ["alpha"]),
    (lambda c: L.LSTM(3, kernel_constraint=c, recurrent_constraint=c, bias_constraint=c), (4, 2),
     ["kernel", "recurrent_kernel", "bias"]),
    (lambda c: L.GRU(3, kernel_constraint=c, recurrent_constraint=c), (4, 2), ["kernel", "recurrent_kernel"]),
]


@pytest.mark.parametrize("make,shape,names", LAYERS, ids=[type(m(None)).__name__ for m, *_ in LAYERS])
def test_layers_apply_constraints_after_each_update(make, shape, names):
    cynet.utils.set_random_seed(1)
    layer = make("non_neg")
    model = cynet.Sequential([cynet.Input(shape), layer, L.Flatten(), L.Dense(1)])
    model.compile(optimizer=cynet.optimizers.SGD(0.01), loss="mse")
    x = RNG.standard_normal((32,) + shape).astype("float32")
    y = RNG.standard_normal((32, 1)).astype("float32")
    for name in names:   # start from entries of both signs
        getattr(layer, name).assign(0.2 * RNG.standard_normal(getattr(layer, name).shape))
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    for name in names:
        var = getattr(layer, name)
        assert isinstance(var.constraint, C.NonNeg)
        assert np.all(var.value >= 0), name
    assert any(np.any(getattr(layer, name).value == 0) for name in names)   # projected, not merely positive
    config = layer.get_config()
    constrained = {k: v for k, v in config.items() if k.endswith("_constraint")}
    assert constrained and all(v == {"class_name": "NonNeg", "config": {}} for v in constrained.values()
                               if v is not None)
    clone = type(layer).from_config(config)
    assert all(isinstance(getattr(clone, k), C.NonNeg) for k, v in constrained.items() if v is not None)


def test_embedding_constraint_and_gradients_unchanged():
    cynet.utils.set_random_seed(2)
    emb = L.Embedding(10, 3, embeddings_constraint=C.MaxNorm(0.5, axis=1))
    model = cynet.Sequential([cynet.Input((4,), dtype="int32"), emb, L.Flatten(), L.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x = RNG.integers(0, 10, (64, 4)).astype("int32")
    model.fit(x, RNG.standard_normal((64, 1)) * 9, epochs=3, verbose=0)
    assert np.all(_norms(emb.embeddings.value, 1) <= 0.5 + 1e-6)


def test_multi_head_attention_constrains_its_projections():
    cynet.utils.set_random_seed(4)
    inp = cynet.Input((5, 4))
    mha = L.MultiHeadAttention(2, 3, kernel_constraint="non_neg", bias_constraint=C.MaxNorm(0.1, axis=0))
    model = cynet.Model(inp, L.Flatten()(mha(inp, inp)))
    model.compile(optimizer=cynet.optimizers.SGD(0.05), loss="mse")
    model.fit(RNG.standard_normal((16, 5, 4)).astype("float32"), RNG.standard_normal((16, 20)).astype("float32"),
              epochs=2, batch_size=8, verbose=0)
    kernels = [w for w in mha.trainable_weights if w.name == "kernel"]
    assert len(kernels) == 4 and all(np.all(k.value >= 0) for k in kernels)
    assert all(np.all(_norms(w.value, 0) <= 0.1 + 1e-6) for w in mha.trainable_weights if w.name == "bias")
    config = mha.get_config()
    assert config["kernel_constraint"] == {"class_name": "NonNeg", "config": {}}
    assert isinstance(L.MultiHeadAttention.from_config(config).bias_constraint, C.MaxNorm)


def test_bad_constraint_argument_names_it():
    with pytest.raises(ValueError, match="kernel_constraint must be a constraint"):
        L.Dense(3, kernel_constraint="positive")
    with pytest.raises(ValueError, match="embeddings_constraint"):
        L.Embedding(3, 2, embeddings_constraint=5)


def test_one_sgd_step_equals_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    x = RNG.standard_normal((16, 5)).astype("float32")
    y = RNG.standard_normal((16, 3)).astype("float32") * 4
    models = []
    for lib in (cynet, keras):
        m = lib.Sequential([lib.Input((5,)), lib.layers.Dense(3, kernel_constraint=lib.constraints.MaxNorm(0.4),
                                                               bias_constraint=lib.constraints.NonNeg())])
        m.compile(optimizer=lib.optimizers.SGD(0.3), loss="mse")
        models.append(m)
    models[1].set_weights(models[0].get_weights())
    for m in models:
        m.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
