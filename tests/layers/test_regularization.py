"""Noise layers (SpatialDropout1D/2D, GaussianNoise, GaussianDropout, AlphaDropout): the identity at
inference (gradients checked there against central differences); in training, the output and the
gradient use exactly the noise a generator seeded like the layer draws (the draws re-made here
from the seed, the formulas written out in NumPy); config round trips, symbolic shapes, refused
arguments and inputs; Keras 3's behaviour at inference and its statistics in training."""
import math
import os

import numpy as np
import pytest

import cynet
from cynet import layers
from cynet.testing import check_layer_gradients, numerical_gradient

F64 = dict(dtype="float64")
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


@pytest.fixture
def rng():
    return np.random.default_rng(4242)


def _spatial_mask(seed, rate, noise_shape, dtype):
    keep = np.random.default_rng(seed).random(noise_shape, dtype=dtype) >= rate
    return keep / (1.0 - rate)


def _alpha_reference(x, keep, rate):
    """Keras 3's AlphaDropout formula, written out."""
    alpha_p = -SELU_ALPHA * SELU_SCALE
    a = ((1 - rate) * (1 + rate * alpha_p ** 2)) ** -0.5
    b = -a * alpha_p * rate
    keep = keep.astype(x.dtype)
    return a * (x * keep + alpha_p * (1 - keep)) + b, a * keep


# (name, make(seed), input shape, training reference(x, seed) -> (output, d output / d x))
CASES = [
    ("spatial_dropout1d", lambda s: layers.SpatialDropout1D(0.4, seed=s, **F64), (3, 5, 4),
     lambda x, s: (lambda m: (x * m, m))(_spatial_mask(s, 0.4, (3, 1, 4), x.dtype))),
    ("spatial_dropout2d", lambda s: layers.SpatialDropout2D(0.5, seed=s, **F64), (3, 3, 4, 5),
     lambda x, s: (lambda m: (x * m, m))(_spatial_mask(s, 0.5, (3, 1, 1, 5), x.dtype))),
    ("spatial_dropout2d_cf", lambda s: layers.SpatialDropout2D(0.5, data_format="channels_first", seed=s, **F64),
     (3, 5, 3, 4), lambda x, s: (lambda m: (x * m, m))(_spatial_mask(s, 0.5, (3, 5, 1, 1), x.dtype))),
    ("gaussian_noise", lambda s: layers.GaussianNoise(0.3, seed=s, **F64), (4, 6),
     lambda x, s: (x + 0.3 * np.random.default_rng(s).standard_normal(x.shape), np.ones_like(x))),
    ("gaussian_dropout", lambda s: layers.GaussianDropout(0.2, seed=s, **F64), (4, 6),
     lambda x, s: (lambda n: (x * n, n))(1 + math.sqrt(0.2 / 0.8) * np.random.default_rng(s).standard_normal(x.shape))),
    ("alpha_dropout", lambda s: layers.AlphaDropout(0.3, seed=s, **F64), (4, 6),
     lambda x, s: _alpha_reference(x, np.random.default_rng(s).random(x.shape) >= 0.3, 0.3)),
    ("alpha_dropout_noise_shape", lambda s: layers.AlphaDropout(0.5, noise_shape=(None, 1, 3), seed=s, **F64),
     (4, 5, 3), lambda x, s: _alpha_reference(x, np.random.default_rng(s).random((4, 1, 3)) >= 0.5, 0.5)),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name, make, shape, reference", CASES, ids=IDS)
def test_inference_is_identity_with_exact_gradients(name, make, shape, reference, rng):
    layer = make(3)
    x = rng.standard_normal(shape)
    y = layer(x, training=False)
    assert y is x or np.array_equal(y, x)
    check_layer_gradients(layer, x, training=False)


@pytest.mark.parametrize("name, make, shape, reference", CASES, ids=IDS)
def test_training_uses_the_seeded_noise_in_forward_and_backward(name, make, shape, reference, rng):
    x = rng.standard_normal(shape)
    layer = make(11)
    y = layer(x, training=True)
    expected, factor = reference(x, 11)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(shape)
    np.testing.assert_allclose(layer.backward(g), g * np.broadcast_to(factor, shape), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, make, shape, reference", CASES, ids=IDS)
def test_training_gradient_against_central_differences_with_the_same_noise(name, make, shape, reference, rng):
    """With the noise fixed (a layer re-seeded for each evaluation), the training-mode output is a
    function of x alone: its gradient checks against central differences."""
    x = rng.standard_normal(shape)
    g = rng.standard_normal(shape)
    layer = make(5)
    layer(x, training=True)
    dx = layer.backward(g)

    def loss():
        return float(np.sum(make(5)(x, training=True) * g))
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name, make, shape, reference", CASES, ids=IDS)
def test_symbolic_shapes_and_config(name, make, shape, reference, rng):
    layer = make(1)
    symbolic = layer(cynet.Input(shape=shape[1:]))
    assert symbolic.shape == layer.compute_output_shape((None,) + shape[1:]) == (None,) + shape[1:]
    assert layer(rng.standard_normal(shape), training=True).shape == shape
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
    restored = layers.deserialize(layers.serialize(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def test_seeded_layers_draw_new_noise_per_call_and_repeat_per_seed(rng):
    x = rng.standard_normal((8, 10))
    a, b = layers.GaussianNoise(0.5, seed=7), layers.GaussianNoise(0.5, seed=7)
    first, second = a(x, training=True), a(x, training=True)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(b(x, training=True), first)
    np.testing.assert_array_equal(b(x, training=True), second)


def test_unseeded_layers_follow_set_random_seed(rng):
    x = rng.standard_normal((6, 5, 4))
    cynet.utils.set_random_seed(3)
    first = layers.SpatialDropout1D(0.5)(x, training=True)
    cynet.utils.set_random_seed(3)
    np.testing.assert_array_equal(layers.SpatialDropout1D(0.5)(x, training=True), first)


def test_spatial_dropout_drops_whole_feature_maps(rng):
    x = rng.random((16, 6, 5, 8)) + 1.0    # positive: a zero means dropped
    y = layers.SpatialDropout2D(0.5, seed=0)(x, training=True)
    dropped = y == 0
    assert dropped.any() and not dropped.all()
    assert (dropped == dropped[:, :1, :1, :]).all()     # the same for every pixel of a map
    np.testing.assert_allclose(y[~dropped], 2 * x.astype(np.float32)[~dropped], rtol=1e-6)
    y1 = layers.SpatialDropout1D(0.5, seed=0)(x[:, 0], training=True)
    assert ((y1 == 0) == (y1 == 0)[:, :1, :]).all()


def test_rate_zero_and_stddev_zero_are_the_identity_in_training(rng):
    x = rng.standard_normal((3, 4, 5))
    for layer in (layers.SpatialDropout1D(0.0), layers.GaussianNoise(0.0), layers.GaussianDropout(0.0),
                  layers.AlphaDropout(0.0)):
        np.testing.assert_array_equal(layer(x, training=True), x.astype(np.float32))


def test_alpha_dropout_keeps_mean_and_variance():
    x = np.random.default_rng(0).standard_normal((400, 500))
    y = layers.AlphaDropout(0.2, seed=1, **F64)(x, training=True)
    assert abs(y.mean()) < 0.01 and abs(y.var() - 1.0) < 0.02


def test_gaussian_dropout_noise_statistics():
    x = np.ones((500, 400))
    y = layers.GaussianDropout(0.5, seed=2, **F64)(x, training=True)
    assert abs(y.mean() - 1.0) < 0.01 and abs(y.std() - 1.0) < 0.01   # stddev sqrt(0.5 / 0.5) = 1


def test_dropout_in_a_trained_model(rng):
    model = cynet.Sequential([cynet.Input((5, 4)), layers.SpatialDropout1D(0.3, seed=1), layers.GaussianNoise(0.1),
                              layers.Flatten(), layers.GaussianDropout(0.2), layers.AlphaDropout(0.1),
                              layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = rng.standard_normal((16, 5, 4)), rng.standard_normal((16, 1))
    history = model.fit(x, y, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


# ---------------------------------------------------------------------------- refused arguments and inputs
@pytest.mark.parametrize("make, name", [
    (lambda: layers.SpatialDropout1D(1.0), "rate"),
    (lambda: layers.SpatialDropout1D(-0.1), "rate"),
    (lambda: layers.SpatialDropout1D("0.5"), "rate"),
    (lambda: layers.SpatialDropout1D(0.5, seed=-1), "seed"),
    (lambda: layers.SpatialDropout2D(0.5, data_format="NCHW"), "data_format"),
    (lambda: layers.GaussianNoise(-0.1), "stddev"),
    (lambda: layers.GaussianNoise(1.5), "stddev"),      # Keras 3's range: [0, 1]
    (lambda: layers.GaussianNoise(float("nan")), "stddev"),
    (lambda: layers.GaussianDropout(1.0), "rate"),      # Keras takes it, then divides by zero
    (lambda: layers.GaussianDropout(None), "rate"),
    (lambda: layers.AlphaDropout(1.0), "rate"),
    (lambda: layers.AlphaDropout(0.5, noise_shape=(0,)), "noise_shape"),
    (lambda: layers.AlphaDropout(0.5, seed="a"), "seed"),
])
def test_bad_arguments(make, name):
    with pytest.raises((ValueError, TypeError), match=rf"\b{name}\b"):
        make()


def test_spatial_dropout_needs_its_rank():
    with pytest.raises(ValueError, match="3-dimensional"):
        layers.SpatialDropout1D(0.5)(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="4-dimensional"):
        layers.SpatialDropout2D(0.5)(cynet.Input((3, 4)))


def test_alpha_dropout_noise_shape_must_broadcast():
    with pytest.raises(ValueError, match="noise_shape"):
        layers.AlphaDropout(0.5, noise_shape=(None, 2))(np.zeros((2, 3)), training=True)


def test_config_follows_keras():
    assert layers.SpatialDropout2D(0.2).get_config()["data_format"] == "channels_last"
    config = layers.AlphaDropout(0.2, noise_shape=(None, 1), seed=4).get_config()
    assert (config["rate"], config["noise_shape"], config["seed"]) == (0.2, [None, 1], 4)
    assert layers.GaussianNoise(0.1).get_config()["stddev"] == 0.1


# ---------------------------------------------------------------------------- against Keras 3
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def test_inference_and_shapes_match_keras(rng):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3; found {keras.__version__}")
    kl = keras.layers
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    for ours, theirs, xs in [
        (layers.SpatialDropout1D(0.5), kl.SpatialDropout1D(0.5), x[:, 0]),
        (layers.SpatialDropout2D(0.5), kl.SpatialDropout2D(0.5), x),
        (layers.GaussianNoise(0.5), kl.GaussianNoise(0.5), x),
        (layers.GaussianDropout(0.5), kl.GaussianDropout(0.5), x),
        (layers.AlphaDropout(0.5), kl.AlphaDropout(0.5), x),
    ]:
        np.testing.assert_array_equal(ours(xs, training=False), keras.ops.convert_to_numpy(theirs(xs, training=False)))
        # in training both keep the shape; Keras's AlphaDropout affine map is the one written above
        assert keras.ops.convert_to_numpy(theirs(xs, training=True)).shape == ours(xs, training=True).shape
    # every unit dropped in Keras's formula (rate -> its noise) equals the value cynet gives dropped units
    theirs = keras.ops.convert_to_numpy(kl.AlphaDropout(0.3, seed=1)(np.zeros((200, 50), np.float32), training=True))
    ours = layers.AlphaDropout(0.3, seed=1)(np.zeros((200, 50), np.float32), training=True)
    np.testing.assert_allclose(sorted(set(np.round(theirs.ravel(), 5))), sorted(set(np.round(ours.ravel(), 5))),
                               rtol=1e-5)
