"""RandomCrop: the training crop (a window of the input, one position per batch, every position
reachable), Keras's fallback for small images and the inference smart resize against Keras 3
(PyTorch backend) and against Resizing(crop_to_aspect_ratio=True), float64 input gradients on both
backends, config round trip, symbolic shapes, refused arguments."""
import os

import numpy as np
import pytest

import cynet
from cynet import layers
from cynet.kernels import use_backend
from cynet.testing import check_layer_gradients

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture
def rng():
    return np.random.default_rng(5)


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3") or keras.backend.backend() != "torch":
        pytest.skip("needs Keras 3 with the PyTorch backend")
    return keras


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_training_crop_is_one_window_per_batch(data_format, rng):
    x = rng.random((3, 7, 9, 2))
    xin = x if data_format == "channels_last" else np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    layer = layers.RandomCrop(4, 5, seed=3, data_format=data_format, dtype="float64")
    seen = set()
    for _ in range(200):
        y = layer(xin, training=True)
        y = y if data_format == "channels_last" else y.transpose(0, 2, 3, 1)
        assert y.shape == (3, 4, 5, 2)
        hits = [(i, j) for i in range(4) for j in range(5) if np.array_equal(x[:, i:i + 4, j:j + 5], y)]
        assert len(hits) == 1, "the same window of every image"
        seen.add(hits[0])
    assert seen == {(i, j) for i in range(4) for j in range(5)}, "every position is drawn"


def test_seeded_layers_repeat(rng):
    x = rng.random((2, 8, 8, 1))
    a, b = layers.RandomCrop(3, 3, seed=9), layers.RandomCrop(3, 3, seed=9)
    for _ in range(5):
        np.testing.assert_array_equal(a(x, training=True), b(x, training=True))


def test_inference_is_the_smart_resize(rng):
    for shape, (h, w) in [((2, 7, 9, 3), (4, 5)), ((2, 3, 10, 1), (4, 5)), ((1, 8, 5, 2), (4, 5)),
                          ((2, 4, 5, 1), (4, 5)), ((1, 6, 6, 1), (9, 2))]:
        x = rng.random(shape)
        expected = layers.Resizing(h, w, crop_to_aspect_ratio=True, dtype="float64")(x)
        np.testing.assert_allclose(layers.RandomCrop(h, w, dtype="float64")(x), expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(layers.RandomCrop(h, w, dtype="float64")(x, training=False), expected,
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("shape, training", [((2, 6, 7, 2), True), ((2, 3, 8, 2), True), ((2, 6, 7, 2), False),
                                             ((1, 2, 9, 1), False)])
def test_gradients(backend, shape, training, rng):
    layer = layers.RandomCrop(4, 5, dtype="float64")
    x = rng.random(shape)
    if training and shape[1] > 4:   # the draw held fixed for finite differences: the window at (1, 1)
        layer._rng = type("Fixed", (), {"uniform": staticmethod(lambda lo, hi: 1.0)})()
    with use_backend(backend):
        check_layer_gradients(layer, x, training=training, rtol=1e-6, atol=1e-8)


def test_config_symbolic_and_model(rng):
    layer = layers.RandomCrop(4, 5, seed=2, data_format="channels_first", name="crop")
    config = layer.get_config()
    assert {k: config[k] for k in ("height", "width", "seed", "data_format", "name")} == dict(
        height=4, width=5, seed=2, data_format="channels_first", name="crop")
    restored = layers.deserialize(layers.serialize(layer))
    assert type(restored) is layers.RandomCrop and restored.get_config() == config
    assert layers.RandomCrop(4, 5)(cynet.Input((8, 9, 3))).shape == (None, 4, 5, 3)
    model = cynet.Sequential([cynet.Input((8, 9, 3)), layers.RandomCrop(4, 5, seed=1), layers.Flatten(),
                              layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(rng.random((4, 8, 9, 3)), rng.random((4, 2)), epochs=1, verbose=0)
    assert model.predict(rng.random((3, 8, 9, 3)), verbose=0).shape == (3, 2)


@pytest.mark.parametrize("kwargs, name", [(dict(height=0, width=2), "height"), (dict(height=2, width=-1), "width"),
                                          (dict(height=2.5, width=2), "height"), (dict(height=2, width="3"), "width"),
                                          (dict(height=2, width=2, seed=-1), "seed"),
                                          (dict(height=2, width=2, data_format="nhwc"), "data_format")])
def test_bad_arguments(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        layers.RandomCrop(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="4-dimensional"):
        layers.RandomCrop(2, 2)(np.zeros((3, 3, 1)))
    with pytest.raises(ValueError, match="empty images"):
        layers.RandomCrop(2, 2)(np.zeros((1, 0, 3, 1)))


def test_matches_keras(rng):
    """Keras's training path where it is deterministic (images not larger than the target), and
    its crop position range; its inference returns the images unchanged (see the docstring)."""
    keras = _keras()
    for shape, data_format in [((2, 3, 10, 3), "channels_last"), ((2, 8, 5, 3), "channels_last"),
                               ((2, 4, 5, 2), "channels_last"), ((1, 2, 3, 1), "channels_last"),
                               ((2, 3, 8, 3), "channels_first"), ((1, 3, 4, 12), "channels_first")]:
        x = rng.random(shape).astype(np.float32)
        ours = layers.RandomCrop(4, 5, data_format=data_format)(x, training=True)
        theirs = keras.ops.convert_to_numpy(keras.layers.RandomCrop(4, 5, data_format=data_format)(x, training=True))
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6, err_msg=str(shape))
    x = rng.random((2, 7, 9, 3)).astype(np.float32)
    theirs = keras.ops.convert_to_numpy(keras.layers.RandomCrop(4, 5, seed=1)(x, training=True))
    assert any(np.array_equal(x[:, i:i + 4, j:j + 5], theirs) for i in range(4) for j in range(5))
    assert keras.layers.RandomCrop(4, 5).get_config().keys() - {"dtype"} <= \
        layers.RandomCrop(4, 5).get_config().keys() | {"dtype"}
