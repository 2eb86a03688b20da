"""LayerNormalization, GroupNormalization, UnitNormalization: forward against direct NumPy
definitions, float64 gradients against central differences on both kernel backends, Cython ==
twin through the layer, weight shapes and order, config round trip, symbolic shapes, refused
arguments and inputs, and (when Keras 3 is installed) predictions, gradients and one SGD step
equal to Keras with copied weights."""
import os
import warnings

import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet import layers
from cynet.testing import assert_twins_close, check_layer_gradients

BACKENDS = ["cython", "numpy"] if K.info()["compiled"] else ["numpy"]


@pytest.fixture
def rng():
    return np.random.default_rng(17)


@pytest.fixture(params=BACKENDS)
def backend(request):
    with K.use_backend(request.param):
        yield request.param


def _randomize(layer, rng):
    layer.set_weights([rng.uniform(0.5, 1.5, w.shape) if i == 0 else rng.standard_normal(w.shape)
                       for i, w in enumerate(layer.get_weights())])


def _rms(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return layers.LayerNormalization(rms_scaling=True, **kw)


# ----------------------------------------------------------------------------- definitions

def ref_layer_norm(x, axes, gamma, beta, eps, rms=False):
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    y = (x if rms else x - mean) / np.sqrt(var + eps)
    shape = [1] * x.ndim
    for a in axes:
        shape[a] = x.shape[a]
    if gamma is not None:
        y = y * gamma.reshape(shape)
    if beta is not None:
        y = y + beta.reshape(shape)
    return y


def ref_group_norm(x, groups, gamma, beta, eps, axis=-1):
    x = np.moveaxis(x, axis, -1)
    N, C = x.shape[0], x.shape[-1]
    xg = x.reshape(N, -1, groups, C // groups)
    y = ((xg - xg.mean(axis=(1, 3), keepdims=True)) / np.sqrt(xg.var(axis=(1, 3), keepdims=True) + eps))
    y = y.reshape(x.shape)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return np.moveaxis(y, -1, axis)


# ----------------------------------------------------------------------------- LayerNormalization

LN_CASES = [
    ("last", dict(), (4, 6), [1], (6,)),
    ("last_3d", dict(axis=-1), (2, 5, 7), [2], (7,)),
    ("trailing_pair", dict(axis=[-2, -1]), (2, 3, 4), [1, 2], (3, 4)),
    ("middle", dict(axis=1), (3, 4, 5), [1], (4,)),
    ("non_contiguous", dict(axis=[1, 3]), (2, 3, 2, 4), [1, 3], (3, 4)),
    ("all_but_batch", dict(axis=(1, 2, 3)), (2, 2, 3, 2), [1, 2, 3], (2, 3, 2)),
    ("no_center", dict(center=False), (3, 8), [1], (8,)),
    ("no_scale", dict(scale=False), (3, 8), [1], (8,)),
    ("plain", dict(center=False, scale=False), (3, 8), [1], None),
]
LN_IDS = [c[0] for c in LN_CASES]


def _ln(kwargs, shape, rng, dtype="float64"):
    layer = layers.LayerNormalization(dtype=dtype, **kwargs)
    layer(np.zeros(shape))
    _randomize(layer, rng)
    return layer


@pytest.mark.parametrize("name, kwargs, shape, axes, wshape", LN_CASES, ids=LN_IDS)
def test_layer_norm_forward_and_weights(name, kwargs, shape, axes, wshape, rng, backend):
    layer = _ln(kwargs, shape, rng)
    names = [w.name for w in layer.weights]
    assert names == [n for n, on in (("gamma", layer.scale), ("beta", layer.center)) if on]
    assert all(w.shape == wshape for w in layer.get_weights())
    x = rng.standard_normal(shape) * 2 + 1
    gamma = layer.gamma.value if layer.gamma is not None else None
    beta = layer.beta.value if layer.beta is not None else None
    np.testing.assert_allclose(layer(x), ref_layer_norm(x, tuple(axes), gamma, beta, 1e-3), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, kwargs, shape, axes, wshape", LN_CASES, ids=LN_IDS)
def test_layer_norm_gradients(name, kwargs, shape, axes, wshape, rng, backend):
    check_layer_gradients(_ln(kwargs, shape, rng), rng.standard_normal(shape))


@pytest.mark.parametrize("kwargs, shape", [(dict(), (2, 3, 6)), (dict(axis=[1, 2]), (2, 3, 4))])
def test_rms_scaling(kwargs, shape, rng, backend):
    with pytest.warns(UserWarning, match="rms_scaling"):
        layer = layers.LayerNormalization(dtype="float64", rms_scaling=True, **kwargs)
    layer(np.zeros(shape))
    assert [w.name for w in layer.weights] == ["gamma"]       # no beta with rms_scaling
    _randomize(layer, rng)
    x = rng.standard_normal(shape) + 0.5
    axes = tuple(range(len(shape) - (len(kwargs.get("axis", [0])) or 1), len(shape)))
    np.testing.assert_allclose(layer(x), ref_layer_norm(x, axes, layer.gamma.value, None, 1e-3, rms=True),
                               rtol=1e-10, atol=1e-12)
    check_layer_gradients(layer, x)


@pytest.mark.skipif(len(BACKENDS) < 2, reason="compiled kernels not built")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layer_norm_cython_equals_twin(dtype, rng):
    layer = _ln(dict(axis=[1, 3]), (3, 4, 2, 5), rng, dtype=dtype)
    x = rng.standard_normal((3, 4, 2, 5)).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    out = {}
    for b in BACKENDS:
        with K.use_backend(b):
            y = layer(x, training=True)
            out[b] = (np.array(y), layer.backward(g), layer.gamma.grad, layer.beta.grad)
    assert_twins_close(out["cython"], out["numpy"], dtype)


def test_layer_norm_float32_large_offset(rng):
    """float32 activations with a large offset: the statistics are accumulated in float64."""
    layer = layers.LayerNormalization(epsilon=1e-6)
    x = (rng.standard_normal((4, 512)) + 1e4).astype(np.float32)
    expected = ref_layer_norm(x.astype(np.float64), (1,), None, None, 1e-6)
    np.testing.assert_allclose(layer(x), expected, rtol=2e-3, atol=2e-3)


# ----------------------------------------------------------------------------- GroupNormalization

GN_CASES = [
    ("dense", dict(groups=2), (3, 6)),
    ("image", dict(groups=3), (2, 3, 4, 6)),
    ("instance", dict(groups=-1), (2, 5, 4)),
    ("layer", dict(groups=1), (2, 3, 4)),
    ("channels_first", dict(groups=2, axis=1), (2, 4, 3, 3)),
    ("no_affine", dict(groups=2, center=False, scale=False), (2, 3, 4)),
]
GN_IDS = [c[0] for c in GN_CASES]


def _gn(kwargs, shape, rng, dtype="float64"):
    layer = layers.GroupNormalization(dtype=dtype, **kwargs)
    layer(np.zeros(shape))
    _randomize(layer, rng)
    return layer


@pytest.mark.parametrize("name, kwargs, shape", GN_CASES, ids=GN_IDS)
def test_group_norm_forward(name, kwargs, shape, rng, backend):
    layer = _gn(kwargs, shape, rng)
    axis = kwargs.get("axis", -1)
    C = shape[axis]
    assert [w.shape for w in layer.get_weights()] == [(C,)] * (layer.scale + layer.center)
    x = rng.standard_normal(shape) * 3 - 1
    groups = C if kwargs["groups"] == -1 else kwargs["groups"]
    gamma = layer.gamma.value if layer.gamma is not None else None
    beta = layer.beta.value if layer.beta is not None else None
    np.testing.assert_allclose(layer(x), ref_group_norm(x, groups, gamma, beta, 1e-3, axis), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, kwargs, shape", GN_CASES, ids=GN_IDS)
def test_group_norm_gradients(name, kwargs, shape, rng, backend):
    check_layer_gradients(_gn(kwargs, shape, rng), rng.standard_normal(shape))


# ----------------------------------------------------------------------------- UnitNormalization

@pytest.mark.parametrize("axis, shape", [(-1, (3, 5)), (1, (2, 3, 4)), ([1, 2], (2, 3, 4))])
def test_unit_norm_forward_and_gradients(axis, shape, rng):
    layer = layers.UnitNormalization(axis=axis, dtype="float64")
    x = rng.standard_normal(shape)
    axes = tuple(a % len(shape) for a in (axis if isinstance(axis, list) else [axis]))
    np.testing.assert_allclose(layer(x), x / np.sqrt((x ** 2).sum(axis=axes, keepdims=True)), rtol=1e-12)
    assert layer.get_weights() == []
    check_layer_gradients(layer, x)


def test_unit_norm_zero_vector():
    """A zero vector stays zero (the scale is capped at 1 / 1e-12); its gradient is that scale."""
    layer = layers.UnitNormalization(dtype="float64")
    x = np.array([[0.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(layer(x), [[0.0, 0.0], [0.6, 0.8]])
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_allclose(dx[0], [1e12, 1e12])


# ----------------------------------------------------------------------------- config, shapes, errors

CONFIG_LAYERS = [
    lambda: layers.LayerNormalization(axis=[1, 2], epsilon=1e-5, center=False, gamma_initializer="zeros",
                                      gamma_regularizer="l2"),
    lambda: layers.LayerNormalization(),
    lambda: _rms(axis=-1),
    lambda: layers.GroupNormalization(groups=4, axis=1, epsilon=1e-4, scale=False, beta_regularizer="l1"),
    lambda: layers.UnitNormalization(axis=(1, 2)),
]


@pytest.mark.parametrize("make", CONFIG_LAYERS)
def test_config_round_trip(make, rng):
    layer = make()
    config = layer.get_config()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clone = type(layer).from_config(config)
    assert clone.get_config() == config
    x = rng.standard_normal((2, 4, 4, 8)).astype(np.float32)
    y = layer(x)
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(x), y)


def test_config_keys_match_keras():
    assert set(layers.LayerNormalization().get_config()) >= {
        "axis", "epsilon", "center", "scale", "rms_scaling", "beta_initializer", "gamma_initializer",
        "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"}
    assert set(layers.GroupNormalization().get_config()) >= {
        "groups", "axis", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer",
        "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"}
    assert layers.UnitNormalization(axis=[1]).get_config()["axis"] == [1]


@pytest.mark.parametrize("make, shape", [
    (lambda: layers.LayerNormalization(axis=[1, 2]), (5, 3, 4)),
    (lambda: layers.GroupNormalization(groups=2, axis=1), (4, 3, 3)),
    (lambda: layers.UnitNormalization(axis=1), (3, 7)),
])
def test_symbolic_shapes(make, shape, rng):
    inputs = cynet.Input(shape)
    outputs = make()(inputs)
    assert outputs.shape == (None,) + shape
    model = cynet.Model(inputs, outputs)
    assert model.predict(rng.standard_normal((2,) + shape).astype(np.float32), verbose=0).shape == (2,) + shape


def test_regularizers_are_applied():
    layer = layers.LayerNormalization(gamma_regularizer="l2", beta_regularizer="l1")
    layer(np.ones((2, 3), np.float32))
    assert len(layer._regularized) == 2


@pytest.mark.parametrize("make, exc, match", [
    (lambda: layers.LayerNormalization(axis="last"), TypeError, "axis"),
    (lambda: layers.LayerNormalization(axis=[1, 1.5]), TypeError, "axis"),
    (lambda: layers.LayerNormalization(epsilon=0), ValueError, "epsilon"),
    (lambda: layers.LayerNormalization(center="yes"), TypeError, "center"),
    (lambda: layers.LayerNormalization(gamma_initializer="nope"), ValueError, "gamma_initializer"),
    (lambda: layers.LayerNormalization(beta_constraint="no_such"), ValueError, "beta_constraint"),
    (lambda: layers.GroupNormalization(groups=0), ValueError, "groups"),
    (lambda: layers.GroupNormalization(groups=2.0), ValueError, "groups"),
    (lambda: layers.GroupNormalization(axis=[1]), TypeError, "axis"),
    (lambda: layers.GroupNormalization(gamma_constraint=object()), ValueError, "gamma_constraint"),
    (lambda: layers.UnitNormalization(axis=None), TypeError, "axis"),
])
def test_bad_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("make, x, match", [
    (lambda: layers.LayerNormalization(axis=3), np.ones((2, 3)), "out of bounds"),
    (lambda: layers.LayerNormalization(axis=[1, -1]), np.ones((2, 3)), "twice"),
    (lambda: layers.GroupNormalization(groups=4), np.ones((2, 6)), "multiple"),
    (lambda: layers.GroupNormalization(groups=8), np.ones((2, 6)), "cannot be more"),
    (lambda: layers.GroupNormalization(groups=2, axis=0), np.ones((2, 6)), "batch axis"),
    (lambda: layers.UnitNormalization(axis=2), np.ones((2, 3)), "out of bounds"),
])
def test_bad_inputs(make, x, match):
    with pytest.raises(ValueError, match=match):
        make()(x)


def test_built_layer_refuses_other_feature_sizes():
    layer = layers.LayerNormalization()
    layer(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="size 4"):
        layer(np.ones((2, 5), np.float32))
    with pytest.raises(ValueError, match="Input|size|symbolic|unknown"):
        layers.LayerNormalization(axis=1)(cynet.Input((None, 3)))


# ----------------------------------------------------------------------------- Keras 3 oracle

def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    torch = pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3") or keras.backend.backend() != "torch":
        pytest.skip("the oracle needs Keras 3 on the torch backend")
    return keras, torch


ORACLE = [
    ("layer_norm", lambda m: m.LayerNormalization(), (3, 5, 16)),
    ("layer_norm_axes", lambda m: m.LayerNormalization(axis=[2, 3], epsilon=1e-5), (2, 3, 4, 5)),
    ("layer_norm_non_contiguous", lambda m: m.LayerNormalization(axis=[1, 3]), (2, 3, 4, 5)),
    ("layer_norm_rms", lambda m: m.LayerNormalization(rms_scaling=True), (4, 10)),
    ("group_norm", lambda m: m.GroupNormalization(groups=4), (2, 3, 3, 8)),
    ("group_norm_instance", lambda m: m.GroupNormalization(groups=-1, scale=False), (2, 5, 6)),
    ("group_norm_channels_first", lambda m: m.GroupNormalization(groups=2, axis=1), (2, 4, 3, 3)),
    ("unit_norm", lambda m: m.UnitNormalization(), (3, 7)),
    ("unit_norm_axes", lambda m: m.UnitNormalization(axis=[1, 2]), (2, 3, 4)),
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
@pytest.mark.parametrize("name, make, shape", ORACLE, ids=[o[0] for o in ORACLE])
def test_matches_keras_prediction_and_sgd_step(name, make, shape, rng, backend):
    """(Keras 3.15's torch backend hands contiguous axes that do not trail, e.g. axis=1 of a 3-D
    input, to torch's layer_norm, which refuses them: those cases are checked against the
    definition above instead.)"""
    keras, torch = _keras()
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    theirs = make(keras.layers)
    theirs.build(shape)
    theirs.set_weights([(rng.uniform(0.5, 1.5, w.shape) if i == 0 else rng.standard_normal(w.shape)).astype(np.float32)
                        for i, w in enumerate(theirs.get_weights())])
    ours = make(layers)
    ours(x)
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    ours.set_weights(theirs.get_weights())

    # prediction
    np.testing.assert_allclose(ours(x), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-5, atol=2e-5)

    # one SGD step on sum(y * g): the input gradient and the updated weights
    xt = torch.tensor(x, requires_grad=True)
    (theirs(xt) * torch.tensor(g)).sum().backward()
    opt = keras.optimizers.SGD(learning_rate=0.1)
    opt.apply([w.value.grad for w in theirs.trainable_weights], theirs.trainable_weights)
    ours(x, training=True)
    dx = ours.backward(g)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-4)
    c_opt = cynet.optimizers.SGD(learning_rate=0.1)
    c_opt.apply_gradients([(w.grad, w) for w in ours.trainable_weights])
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
