"""Normalization: forward against the definition, adapt from arrays and from batch iterables
(merged statistics equal the whole data's), invert, float64 input gradients, the weights
(Keras's mean / variance / count), config and model round trips, refused arguments, and (when
Keras 3 runs) equality with Keras's Normalization."""
import os

import numpy as np
import pytest

import cynet
from cynet import layers
from cynet.testing import check_layer_gradients

F64 = dict(dtype="float64")


@pytest.fixture
def rng():
    return np.random.default_rng(99)


def _data(rng, shape=(40, 4, 3)):
    return rng.standard_normal(shape) * np.arange(1, shape[-1] + 1) + 2.0


@pytest.mark.parametrize("axis, keep", [(-1, (2,)), (None, ()), ((1, 2), (1, 2)), (1, (1,)), ([-2], (1,))])
def test_adapt_and_call(axis, keep, rng):
    x = _data(rng)
    layer = layers.Normalization(axis=axis, **F64)
    layer.adapt(x)
    reduce = tuple(d for d in range(3) if d not in keep)
    mean, var = x.mean(axis=reduce, keepdims=True), x.var(axis=reduce, keepdims=True)
    np.testing.assert_allclose(layer(x), (x - mean) / np.sqrt(var), rtol=1e-10)
    assert [w.shape for w in layer.get_weights()] == [tuple(x.shape[d] for d in keep)] * 2 + [()]
    assert [w.name for w in layer.weights] == ["mean", "variance", "count"]
    assert layer.trainable_weights == []
    check_layer_gradients(layer, x[:3])
    # adapting on batches (a list, a generator) gives the statistics of the whole data
    for batches in ([x[:7], x[7:25], x[25:]], (b for b in np.array_split(x, 5))):
        other = layers.Normalization(axis=axis, **F64)
        other.adapt(batches)
        np.testing.assert_allclose(other(x), layer(x), rtol=1e-9, atol=1e-12)


def test_given_statistics_and_invert(rng):
    x = _data(rng, (5, 3))
    layer = layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 0.0, 9.0], **F64)
    expected = (x - [1, 2, 3]) / np.maximum(np.sqrt([4.0, 0.0, 9.0]), 1e-7)
    np.testing.assert_allclose(layer(x), expected)
    assert layer.weights == []
    inverse = layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 0.0, 9.0], invert=True, **F64)
    np.testing.assert_allclose(inverse(layer(x)), x, rtol=1e-9)
    for invert in (False, True):   # (variance 0 divides by 1e-7: finite differences lose their digits there)
        check_layer_gradients(layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 0.5, 9.0], invert=invert,
                                                   **F64), x)
    scalar = layers.Normalization(mean=2.0, variance=4.0, **F64)
    np.testing.assert_allclose(scalar(x), (x - 2) / 2)
    per_last = layers.Normalization(axis=(1, 2), mean=[1.0, 2.0], variance=[1.0, 4.0], **F64)
    x3 = rng.standard_normal((2, 3, 2))
    np.testing.assert_allclose(per_last(x3), (x3 - [1.0, 2.0]) / [1.0, 2.0])


def test_unadapted_layer_is_the_identity(rng):
    x = _data(rng, (3, 2))
    np.testing.assert_allclose(layers.Normalization(**F64)(x), x)


def test_config_and_saved_model_keep_the_statistics(rng, tmp_path):
    x = _data(rng, (30, 3)).astype(np.float32)
    norm = layers.Normalization()
    norm.adapt(x)
    model = cynet.Sequential([cynet.Input((3,)), norm, layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, x[:, :1], epochs=1, verbose=0)
    path = tmp_path / "m.cynet"
    model.save(path)
    restored = cynet.saving.load_model(path)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    given = layers.Normalization(axis=(1, 2), mean=[1.0], variance=[2.0])
    config = given.get_config()
    assert config["axis"] == [1, 2] and config["mean"] == [1.0] and config["variance"] == [2.0]
    assert layers.deserialize(layers.serialize(given)).get_config() == config


@pytest.mark.parametrize("kwargs, name", [
    (dict(axis="a"), "axis"), (dict(axis=1.5), "axis"), (dict(axis=(1, 1)), "axis"),
    (dict(mean=1.0), "variance"), (dict(variance=1.0), "mean"),
    (dict(mean=[1.0, 2.0], variance=[1.0]), "same shape"),
    (dict(mean=[[1.0]], variance=[[1.0]]), "rank"),
    (dict(mean="1", variance=1.0), "mean"), (dict(mean=1.0, variance=float("nan")), "variance"),
    (dict(mean=0.0, variance=-1.0), "variance"), (dict(invert=1), "invert"),
])
def test_bad_arguments(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        layers.Normalization(**kwargs)


def test_bad_adapt_data_and_inputs(rng):
    layer = layers.Normalization()
    with pytest.raises(ValueError, match="no data"):
        layer.adapt([])
    with pytest.raises(TypeError, match="numeric"):
        layer.adapt(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="finite"):
        layer.adapt(np.array([[1.0, np.nan]]))
    layer.adapt(np.ones((4, 3)))
    with pytest.raises(ValueError, match="built for"):
        layer.adapt(np.ones((4, 2)))
    with pytest.raises(ValueError, match="axis"):
        layer(np.ones((2, 5)))
    with pytest.raises(ValueError, match="batch axis"):
        layers.Normalization(axis=0)(np.ones((2, 3)))
    with pytest.raises(ValueError, match="given as mean"):
        layers.Normalization(mean=0.0, variance=1.0).adapt(np.ones((2, 2)))
    with pytest.raises(ValueError, match="known size"):
        layers.Normalization()(cynet.Input((None,)))


pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def test_matches_keras(rng):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip("needs Keras 3")
    x = _data(rng).astype(np.float32)
    for kwargs in [dict(), dict(axis=None), dict(axis=(1, 2)), dict(axis=1, invert=True)]:
        ours, theirs = layers.Normalization(**kwargs), keras.layers.Normalization(**kwargs)
        ours.adapt(x)
        theirs.adapt(x)
        np.testing.assert_allclose(ours(x), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-5, atol=1e-5)
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        ours.adapt([x[:10], x[10:]])   # (Keras's adapt on a list of batches needs TensorFlow)
        np.testing.assert_allclose(ours(x), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-5, atol=1e-5)
    given = dict(mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 9.0])
    np.testing.assert_allclose(layers.Normalization(**given)(x),
                               keras.ops.convert_to_numpy(keras.layers.Normalization(**given)(x)), rtol=1e-6)
