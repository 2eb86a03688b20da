"""Rescaling and CenterCrop: forward against direct NumPy definitions, float64 gradients against
central differences, config round trips (Keras's NumPy-array form of scale too), symbolic shapes,
refused arguments and inputs (CenterCrop on images smaller than the window: NotImplementedError,
where Keras resizes), and (when Keras 3 is installed) forward equality with Keras."""
import os

import numpy as np
import pytest

import cynet
from cynet import layers
from cynet.testing import check_layer_gradients

F64 = dict(dtype="float64")


@pytest.fixture
def rng():
    return np.random.default_rng(2718)


RESCALING = [
    ("scalar", dict(scale=1 / 255), (2, 4, 4, 3)),
    ("scale_offset", dict(scale=2.0, offset=-1.0), (3, 5)),
    ("per_channel", dict(scale=[0.5, 2.0, -1.0], offset=[0.0, 1.0, 2.0]), (2, 4, 3)),
    ("per_pixel", dict(scale=[[1.0], [2.0]], offset=0.5), (3, 2, 4)),
    ("integer_scale", dict(scale=3, offset=1), (2, 2)),
    ("batch_only", dict(scale=2.0), (5,)),
]


@pytest.mark.parametrize("name, kwargs, shape", RESCALING, ids=[c[0] for c in RESCALING])
def test_rescaling(name, kwargs, shape, rng):
    layer = layers.Rescaling(**kwargs, **F64)
    x = rng.standard_normal(shape)
    expected = x * np.asarray(kwargs["scale"], np.float64) + np.asarray(kwargs.get("offset", 0.0), np.float64)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-15, atol=1e-15)
    check_layer_gradients(layer, x)
    assert layer(cynet.Input(shape[1:])).shape == layer.compute_output_shape((None,) + shape[1:]) \
        == (None,) + shape[1:]
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
    restored = layers.deserialize(layers.serialize(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def test_rescaling_uint8_images_become_float32():
    images = np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3) * 10
    y = layers.Rescaling(1 / 255)(images)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, images / 255, rtol=1e-6)


def test_rescaling_config_follows_keras():
    assert layers.Rescaling(0.5).get_config()["offset"] == 0.0
    config = layers.Rescaling([1, 2], offset=np.float32(0.5)).get_config()
    assert config["scale"] == [1.0, 2.0] and config["offset"] == 0.5
    keras_form = {"class_name": "__numpy__", "config": {"value": [0.5, 0.25], "dtype": "float32"}}
    assert layers.Rescaling.from_config({"scale": keras_form, "offset": 0.0}).scale == [0.5, 0.25]


@pytest.mark.parametrize("kwargs, name", [
    (dict(scale=float("nan")), "scale"),
    (dict(scale="0.5"), "scale"),
    (dict(scale=None), "scale"),
    (dict(scale=True), "scale"),
    (dict(scale=[]), "scale"),
    (dict(scale=[1.0, float("inf")]), "scale"),
    (dict(scale=1e300), "scale"),         # not finite in float32
    (dict(scale=1.0, offset=1j), "offset"),
    (dict(scale=1.0, offset=[[1.0], [2.0, 3.0]]), "offset"),
])
def test_rescaling_bad_arguments(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=rf"\b{name}\b"):
        layers.Rescaling(**kwargs)


def test_rescaling_factors_must_broadcast_to_the_samples():
    layer = layers.Rescaling([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="scale") as real:
        layer(np.zeros((2, 4)))
    assert "inputs" in str(real.value)
    with pytest.raises(ValueError, match="offset"):
        layers.Rescaling(1.0, offset=[[1.0, 2.0]])(np.zeros((2, 2)))   # would add an axis
    with pytest.raises(ValueError, match="Rescaling"):
        layers.Rescaling([1.0, 2.0, 3.0])(cynet.Input((4,)))
    assert layers.Rescaling([1.0, 2.0, 3.0])(cynet.Input((None, 3))).shape == (None, None, 3)


# ---------------------------------------------------------------------------- CenterCrop
def _center(x, height, width, axes=(1, 2)):
    index = [slice(None)] * 4
    for axis, size in zip(axes, (height, width)):
        start = (x.shape[axis] - size) // 2
        index[axis] = slice(start, start + size)
    return x[tuple(index)]


CROPS = [
    ("even", (4, 2), (2, 6, 6, 3), "channels_last"),
    ("odd_extra", (3, 2), (2, 6, 5, 2), "channels_last"),     # the extra pixel goes bottom / right
    ("same_size", (5, 4), (2, 5, 4, 1), "channels_last"),
    ("one_pixel", (1, 1), (1, 4, 5, 2), "channels_last"),
    ("channels_first", (2, 3), (2, 3, 5, 6), "channels_first"),
]


@pytest.mark.parametrize("name, hw, shape, data_format", CROPS, ids=[c[0] for c in CROPS])
def test_center_crop(name, hw, shape, data_format, rng):
    layer = layers.CenterCrop(*hw, data_format=data_format, **F64)
    x = rng.standard_normal(shape)
    axes = (1, 2) if data_format == "channels_last" else (2, 3)
    np.testing.assert_array_equal(layer(x), _center(x, *hw, axes=axes))
    check_layer_gradients(layer, x)
    out = layer(cynet.Input(shape[1:]))
    assert out.shape == layer.compute_output_shape((None,) + shape[1:]) == (None,) + layer(x).shape[1:]
    config = layer.get_config()
    assert (config["height"], config["width"], config["data_format"]) == (*hw, data_format)
    assert type(layer).from_config(config).get_config() == config
    restored = layers.deserialize(layers.serialize(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def test_center_crop_window_position():
    x = np.arange(6 * 5, dtype=np.float64).reshape(1, 6, 5, 1)
    y = layers.CenterCrop(3, 2, **F64)(x)
    np.testing.assert_array_equal(y[0, :, :, 0], x[0, 1:4, 1:3, 0])   # starts (6-3)//2 = 1, (5-2)//2 = 1


def test_center_crop_unknown_image_size_gives_the_window():
    assert layers.CenterCrop(3, 4)(cynet.Input((None, None, 3))).shape == (None, 3, 4, 3)


def test_center_crop_smaller_images_are_not_implemented():
    with pytest.raises(NotImplementedError, match="smaller than the crop window") as real:
        layers.CenterCrop(4, 4)(np.zeros((2, 3, 8, 1)))
    assert "resize" in str(real.value) and "height=4" in str(real.value)
    with pytest.raises(NotImplementedError, match="width=9"):
        layers.CenterCrop(2, 9, data_format="channels_first")(np.zeros((1, 3, 5, 8)))
    with pytest.raises(NotImplementedError, match="smaller"):
        layers.CenterCrop(4, 4)(cynet.Input((3, 8, 1)))


def test_center_crop_empty_images_are_a_value_error():
    with pytest.raises(ValueError, match="inputs"):
        layers.CenterCrop(1, 1)(np.zeros((2, 0, 4, 1)))
    assert layers.CenterCrop(1, 1)(np.zeros((0, 3, 4, 1))).shape == (0, 1, 1, 1)   # an empty batch is fine


@pytest.mark.parametrize("kwargs, name", [
    (dict(height=0, width=2), "height"),
    (dict(height=2.0, width=2), "height"),
    (dict(height=2, width=-1), "width"),
    (dict(height=2, width="2"), "width"),
    (dict(height=2, width=2, data_format="NHWC"), "data_format"),
])
def test_center_crop_bad_arguments(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=rf"\b{name}\b"):
        layers.CenterCrop(**kwargs)


def test_center_crop_needs_a_batch_of_images():
    with pytest.raises(ValueError, match="4-dimensional"):
        layers.CenterCrop(2, 2)(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="CenterCrop"):
        layers.CenterCrop(2, 2)(cynet.Input((4, 4)))


def test_preprocessing_in_a_trained_model(rng):
    model = cynet.Sequential([cynet.Input((8, 8, 1)), layers.Rescaling(1 / 255), layers.CenterCrop(6, 6),
                              layers.Flatten(), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(rng.integers(0, 256, (16, 8, 8, 1)).astype(np.uint8), rng.integers(0, 2, 16), epochs=1, verbose=0)
    assert model.output_shape == (None, 2)


pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def test_forward_matches_keras(rng):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3; found {keras.__version__}")
    kl = keras.layers
    images = rng.standard_normal((2, 7, 6, 3)).astype(np.float32)
    cases = [
        (layers.Rescaling(1 / 255), kl.Rescaling(1 / 255), images),
        (layers.Rescaling(2.0, offset=-1.0), kl.Rescaling(2.0, offset=-1.0), images),
        (layers.Rescaling([0.5, 2.0, -1.0], offset=[0.0, 1.0, 2.0]),
         kl.Rescaling([0.5, 2.0, -1.0], offset=[0.0, 1.0, 2.0]), images),
        (layers.CenterCrop(4, 3), kl.CenterCrop(4, 3), images),
        (layers.CenterCrop(3, 3), kl.CenterCrop(3, 3), images[:, :, :5]),
        (layers.CenterCrop(7, 6), kl.CenterCrop(7, 6), images),
        (layers.CenterCrop(2, 1, data_format="channels_first"), kl.CenterCrop(2, 1, data_format="channels_first"),
         np.ascontiguousarray(images.transpose(0, 3, 1, 2))),
    ]
    for ours, theirs, x in cases:
        np.testing.assert_allclose(ours(x), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-6, atol=1e-7,
                                   err_msg=type(ours).__name__)
        assert tuple(theirs.compute_output_shape((None,) + x.shape[1:])) == \
            ours.compute_output_shape((None,) + x.shape[1:])
