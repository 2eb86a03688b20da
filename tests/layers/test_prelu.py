"""PReLU: forward against its NumPy definition, float64 gradients (input and alpha) against central
differences, alpha's shape with shared_axes (Keras's layout), input checks once built, config round
trip, symbolic shapes, refused arguments, the regularizer, and (when Keras 3 is installed) forward
equality with Keras on the same weights."""
import os

import numpy as np
import pytest

import cynet
from cynet import layers
from cynet.testing import check_layer_gradients


@pytest.fixture
def rng():
    return np.random.default_rng(99)


def _prelu(x, alpha):
    return np.where(x >= 0, x, alpha * x)


CASES = [
    ("2d", dict(), (3, 5), (5,)),
    ("3d", dict(), (2, 4, 3), (4, 3)),
    ("shared_1", dict(shared_axes=1), (2, 4, 3), (1, 3)),
    ("shared_spatial", dict(shared_axes=[1, 2]), (2, 3, 4, 5), (1, 1, 5)),
    ("shared_all", dict(shared_axes=(1, 2, 3)), (2, 3, 4, 2), (1, 1, 1)),
    ("shared_channel", dict(shared_axes=[3]), (2, 3, 2, 4), (3, 2, 1)),
]
IDS = [c[0] for c in CASES]


def _layer(kwargs, shape, rng):
    layer = layers.PReLU(dtype="float64", **kwargs)
    layer(np.zeros(shape))
    layer.set_weights([rng.uniform(-0.5, 1.0, layer.alpha.shape)])
    return layer


@pytest.mark.parametrize("name, kwargs, shape, alpha_shape", CASES, ids=IDS)
def test_forward_and_alpha_shape(name, kwargs, shape, alpha_shape, rng):
    layer = _layer(kwargs, shape, rng)
    assert layer.alpha.shape == alpha_shape and [w.shape for w in layer.get_weights()] == [alpha_shape]
    x = rng.standard_normal(shape)
    np.testing.assert_array_equal(layer(x), _prelu(x, layer.get_weights()[0]))


@pytest.mark.parametrize("name, kwargs, shape, alpha_shape", CASES, ids=IDS)
def test_gradients(name, kwargs, shape, alpha_shape, rng):
    layer = _layer(kwargs, shape, rng)
    check_layer_gradients(layer, rng.standard_normal(shape))


@pytest.mark.parametrize("name, kwargs, shape, alpha_shape", CASES, ids=IDS)
def test_symbolic_shape_and_config(name, kwargs, shape, alpha_shape, rng):
    layer = layers.PReLU(**kwargs)
    out = layer(cynet.Input(shape[1:]))
    assert out.shape == layer.compute_output_shape((None,) + shape[1:]) == (None,) + shape[1:]
    assert layer(rng.standard_normal(shape)).shape == shape
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
    restored = layers.deserialize(layers.serialize(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


@pytest.mark.parametrize("regularizer", ["l2", {"class_name": "L1", "config": {"l1": 0.5}}, None])
def test_config_with_regularizer(regularizer):
    layer = layers.PReLU(alpha_initializer="ones", alpha_regularizer=regularizer)
    config = layer.get_config()
    assert config["alpha_regularizer"] == (None if regularizer is None else
                                           cynet.regularizers.serialize(cynet.regularizers.get(regularizer)))
    clone = layers.PReLU.from_config(config)
    assert clone.get_config() == config
    clone(np.ones((1, 3)))
    assert len(clone.losses) == (0 if regularizer is None else 1)


def test_default_alpha_is_zero_a_relu(rng):
    x = rng.standard_normal((4, 6))
    np.testing.assert_array_equal(layers.PReLU()(x), np.maximum(x, 0).astype(np.float32))
    config = layers.PReLU().get_config()
    assert config["alpha_initializer"]["class_name"] == "Zeros"
    assert config["alpha_regularizer"] is None and config["alpha_constraint"] is None and config["shared_axes"] is None


def test_unknown_size_on_a_shared_axis_is_fine():
    layer = layers.PReLU(shared_axes=[1])
    assert layer(cynet.Input((None, 3))).shape == (None, None, 3)
    assert layer.alpha.shape == (1, 3)
    assert layer(np.ones((2, 7, 3))).shape == (2, 7, 3)


def test_inputs_must_fit_the_built_alpha():
    layer = layers.PReLU(shared_axes=[1])
    layer(np.zeros((2, 4, 3)))
    assert layer(np.zeros((5, 9, 3))).shape == (5, 9, 3)     # the shared axis and the batch may change
    with pytest.raises(ValueError, match="inputs"):
        layer(np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="inputs"):
        layer(np.zeros((2, 4, 3, 1)))


@pytest.mark.parametrize("kwargs, name", [
    (dict(shared_axes=0), "shared_axes"),
    (dict(shared_axes=[-1]), "shared_axes"),
    (dict(shared_axes=[1, 1]), "shared_axes"),
    (dict(shared_axes="1"), "shared_axes"),
    (dict(shared_axes=True), "shared_axes"),
    (dict(alpha_constraint="no_such"), "alpha_constraint"),
    (dict(alpha_initializer="no_such"), "alpha_initializer"),
    (dict(alpha_regularizer="no_such"), "alpha_regularizer"),
])
def test_bad_arguments(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=rf"\b{name}\b"):
        layers.PReLU(**kwargs)


def test_shared_axis_beyond_the_inputs_is_refused_at_build():
    with pytest.raises(ValueError, match="shared_axes"):
        layers.PReLU(shared_axes=[3])(np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match="PReLU"):
        layers.PReLU(shared_axes=[3])(cynet.Input((4, 3)))
    with pytest.raises(ValueError, match="unknown"):
        layers.PReLU()(cynet.Input((None, 3)))


def test_regularizer_adds_a_loss_and_its_gradient(rng):
    layer = layers.PReLU(alpha_initializer="ones", alpha_regularizer="l2", dtype="float64")
    x = rng.standard_normal((3, 4))
    layer(x)
    assert layer.losses == [pytest.approx(0.01 * 4)]
    layer.backward(np.zeros((3, 4)))
    np.testing.assert_allclose(layer.alpha.grad, 0.02 * np.ones(4))


def test_trains_in_a_model(rng):
    model = cynet.Sequential([cynet.Input((4,)), layers.Dense(8), layers.PReLU(alpha_initializer="constant"),
                              layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    before = model.layers[1].get_weights()[0].copy()
    model.fit(rng.standard_normal((32, 4)), rng.standard_normal((32, 1)), epochs=1, verbose=0)
    assert not np.array_equal(before, model.layers[1].get_weights()[0])


pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.mark.parametrize("shared_axes, shape", [(None, (2, 4, 3)), ([1, 2], (2, 3, 4, 5)), ([1], (3, 6))])
def test_forward_matches_keras(shared_axes, shape, rng):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3; found {keras.__version__}")
    theirs = keras.layers.PReLU(shared_axes=shared_axes)
    theirs.build(shape)
    weights = [rng.uniform(-0.5, 1.0, w.shape).astype(np.float32) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours = layers.PReLU(shared_axes=shared_axes)
    x = rng.standard_normal(shape).astype(np.float32)
    ours(x)
    ours.set_weights(weights)   # same weight list, same shapes
    np.testing.assert_allclose(ours(x), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-6, atol=1e-7)
