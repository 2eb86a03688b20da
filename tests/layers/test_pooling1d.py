"""GlobalAveragePooling1D and GlobalMaxPooling1D: forward against NumPy's mean / max over the steps
axis (both data formats, keepdims), float64 gradients against central differences, ties routed to
the first maximum, NaN, config round trips, symbolic shapes, refused arguments and inputs, and
(when Keras 3 is installed) forward equality with Keras."""
import os

import numpy as np
import pytest

import cynet
from cynet import layers
from cynet.testing import check_layer_gradients

CLASSES = {"avg": (layers.GlobalAveragePooling1D, np.mean), "max": (layers.GlobalMaxPooling1D, np.max)}
VARIANTS = [("channels_last", False), ("channels_last", True), ("channels_first", False), ("channels_first", True)]


@pytest.fixture
def rng():
    return np.random.default_rng(1701)


@pytest.mark.parametrize("kind", sorted(CLASSES))
@pytest.mark.parametrize("data_format, keepdims", VARIANTS)
def test_forward_gradients_shapes_config(kind, data_format, keepdims, rng):
    cls, reduce = CLASSES[kind]
    layer = cls(data_format=data_format, keepdims=keepdims, dtype="float64")
    x = rng.standard_normal((3, 5, 4))
    axis = 1 if data_format == "channels_last" else 2
    y = layer(x)
    np.testing.assert_allclose(y, reduce(x, axis=axis, keepdims=keepdims), rtol=1e-14, atol=1e-14)
    check_layer_gradients(layer, x)
    symbolic = layer(cynet.Input((5, 4)))
    assert symbolic.shape == layer.compute_output_shape((None, 5, 4)) == (None,) + y.shape[1:]
    unknown = cls(data_format=data_format, keepdims=keepdims)(cynet.Input((None, None))).shape
    assert unknown == ((None, None) if not keepdims else (None, 1, None) if axis == 1 else (None, None, 1))
    config = layer.get_config()
    assert config["data_format"] == data_format and config["keepdims"] is keepdims
    assert type(layer).from_config(config).get_config() == config
    restored = layers.deserialize(layers.serialize(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def test_keras_aliases():
    assert layers.GlobalAvgPool1D is layers.GlobalAveragePooling1D
    assert layers.GlobalMaxPool1D is layers.GlobalMaxPooling1D


def test_max_ties_route_to_the_first_maximum():
    x = np.array([[[1.0, 2.0], [3.0, 2.0], [3.0, 0.0]]])   # steps 1 and 2 tie on channel 0; 0 and 1 on 1
    layer = layers.GlobalMaxPooling1D(dtype="float64")
    np.testing.assert_array_equal(layer(x), [[3.0, 2.0]])
    dx = layer.backward(np.array([[10.0, 20.0]]))
    np.testing.assert_array_equal(dx, [[[0.0, 20.0], [10.0, 0.0], [0.0, 0.0]]])
    cf = layers.GlobalMaxPooling1D(data_format="channels_first", dtype="float64")
    cf(np.swapaxes(x, 1, 2))
    np.testing.assert_array_equal(cf.backward(np.array([[10.0, 20.0]])), np.swapaxes(dx, 1, 2))


def test_max_with_nan_gives_nan_and_its_gradient():
    x = np.array([[[1.0], [np.nan], [5.0]]])
    layer = layers.GlobalMaxPooling1D(dtype="float64")
    assert np.isnan(layer(x)).all()
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1))), [[[0.0], [1.0], [0.0]]])


def test_empty_batch_and_empty_features_are_fine():
    for cls in (layers.GlobalAveragePooling1D, layers.GlobalMaxPooling1D):
        assert cls()(np.zeros((0, 3, 2))).shape == (0, 2)
        layer = cls()
        assert layer(np.zeros((2, 3, 0))).shape == (2, 0)
        assert layer.backward(np.zeros((2, 0))).shape == (2, 3, 0)


@pytest.mark.parametrize("cls", [layers.GlobalAveragePooling1D, layers.GlobalMaxPooling1D])
def test_bad_arguments_and_inputs(cls):
    with pytest.raises(ValueError, match="data_format"):
        cls(data_format="NWC")
    with pytest.raises(TypeError, match="keepdims"):
        cls(keepdims=1)
    with pytest.raises(ValueError, match="3-dimensional"):
        cls()(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="3-dimensional"):
        cls()(cynet.Input((2, 3, 4)))
    with pytest.raises(ValueError, match="step"):
        cls()(np.zeros((2, 0, 3)))
    with pytest.raises(ValueError, match="step"):
        cls(data_format="channels_first")(np.zeros((2, 3, 0)))


def test_in_a_sequence_model(rng):
    model = cynet.Sequential([cynet.Input((None,), dtype="int32"), layers.Embedding(10, 4),
                              layers.GlobalAveragePooling1D(), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(rng.integers(0, 10, (16, 7)), rng.integers(0, 2, 16), epochs=1, verbose=0)
    assert model.predict(rng.integers(0, 10, (3, 7)), verbose=0).shape == (3, 2)


pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def test_forward_matches_keras(rng):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3; found {keras.__version__}")
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)
    for name in ("GlobalAveragePooling1D", "GlobalMaxPooling1D"):
        for data_format, keepdims in VARIANTS:
            ours = getattr(layers, name)(data_format=data_format, keepdims=keepdims)
            theirs = getattr(keras.layers, name)(data_format=data_format, keepdims=keepdims)
            np.testing.assert_allclose(ours(x), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-6, atol=1e-7)
            assert tuple(theirs.compute_output_shape((None, 5, 4))) == ours.compute_output_shape((None, 5, 4))
