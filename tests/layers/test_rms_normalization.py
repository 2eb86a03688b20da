"""RMSNormalization: forward against the definition x / sqrt(mean(x^2) + eps) * scale, float64
gradients (input and scale) against central differences on both kernel backends, weight name and
shape, config round trip, symbolic shapes, .keras round trip, refused arguments and inputs, and
(when Keras 3 runs with the PyTorch backend) predictions, gradients and one SGD step equal to
Keras with copied weights."""
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
    return np.random.default_rng(23)


def ref_rms(x, axes, scale_full, eps):
    return x / np.sqrt(np.mean(x * x, axis=tuple(axes), keepdims=True) + eps) * scale_full


@pytest.mark.parametrize("axis, shape", [(-1, (3, 7)), ([1, 2], (2, 3, 4)), (1, (2, 3, 4)), ([-1, 1], (2, 3, 4, 5))])
def test_definition_and_weight(axis, shape, rng):
    x = rng.standard_normal(shape)
    layer = layers.RMSNormalization(axis=axis, epsilon=1e-3, dtype="float64")
    layer.build(shape)
    axes_given = sorted(axis if isinstance(axis, list) else [axis])
    assert [w.name for w in layer.weights] == ["scale"]
    assert layer.get_weights()[0].shape == tuple(shape[a] for a in axes_given)
    np.testing.assert_array_equal(layer.get_weights()[0], 1.0)
    scale = rng.uniform(0.5, 1.5, layer.get_weights()[0].shape)
    layer.set_weights([scale])
    resolved = [a % len(shape) for a in axes_given]
    # the scale broadcast: its axes (in the order of sorted(axis)) placed at the normalised axes
    order = np.argsort(resolved)
    full = scale.transpose(order).reshape([shape[a] if a in resolved else 1 for a in range(len(shape))])
    np.testing.assert_allclose(layer(x), ref_rms(x, resolved, full, 1e-3), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("axis, shape", [(-1, (3, 6)), ([1, 2], (2, 3, 4)), ([-1, 1], (2, 3, 2, 4))])
def test_gradients(backend, axis, shape, rng):
    layer = layers.RMSNormalization(axis=axis, epsilon=0.1, dtype="float64")
    layer.build(shape)
    layer.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in layer.get_weights()])
    with use_backend(backend):
        check_layer_gradients(layer, rng.standard_normal(shape), rtol=1e-6, atol=1e-8)


def test_config_symbolic_and_file(tmp_path, rng):
    layer = layers.RMSNormalization(axis=[1, 2], epsilon=1e-4, name="rms")
    config = layer.get_config()
    assert {k: config[k] for k in ("axis", "epsilon", "name")} == dict(axis=[1, 2], epsilon=1e-4, name="rms")
    restored = layers.deserialize(layers.serialize(layer))
    assert type(restored) is layers.RMSNormalization and restored.get_config() == config
    assert layers.RMSNormalization()(cynet.Input((None, 6))).shape == (None, None, 6)
    inp = cynet.Input((3, 4))
    model = cynet.Model(inp, layers.Dense(2)(layers.RMSNormalization(name="rms")(inp)))
    model.get_layer("rms").set_weights([rng.uniform(0.5, 1.5, 4).astype(np.float32)])
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = cynet.saving.load_model(path)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


@pytest.mark.parametrize("kwargs, name", [(dict(axis="a"), "axis"), (dict(axis=[]), "axis"), (dict(axis=1.5), "axis"),
                                          (dict(epsilon=0), "epsilon"), (dict(epsilon=-1.0), "epsilon"),
                                          (dict(epsilon="a"), "epsilon")])
def test_bad_arguments(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        layers.RMSNormalization(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="out of bounds"):
        layers.RMSNormalization(axis=3)(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="unknown"):
        layers.RMSNormalization(axis=1)(cynet.Input((None, 3)))
    layer = layers.RMSNormalization()
    layer(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError):
        layer(np.ones((2, 5), np.float32))


@pytest.mark.parametrize("axis, shape", [(-1, (3, 5, 16)), ([2, 3], (2, 3, 4, 5)), (-1, (4, 10))])
def test_matches_keras_prediction_and_sgd_step(axis, shape, rng):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    torch = pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    if not hasattr(keras.layers, "RMSNormalization") or keras.backend.backend() != "torch":
        pytest.skip("needs Keras >= 3.9 with the PyTorch backend")
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    theirs = keras.layers.RMSNormalization(axis=axis, epsilon=1e-5)
    theirs.build(shape)
    theirs.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in theirs.get_weights()])
    ours = layers.RMSNormalization(axis=axis, epsilon=1e-5)
    ours(x)
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    assert [w.path.split("/")[-1] for w in theirs.weights] == ["scale"]
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours(x), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-5, atol=2e-5)
    xt = torch.tensor(x, requires_grad=True)
    (theirs(xt) * torch.tensor(g)).sum().backward()
    keras.optimizers.SGD(learning_rate=0.1).apply([w.value.grad for w in theirs.trainable_weights],
                                                  theirs.trainable_weights)
    ours(x, training=True)
    np.testing.assert_allclose(ours.backward(g), xt.grad.numpy(), rtol=1e-4, atol=1e-4)
    cynet.optimizers.SGD(learning_rate=0.1).apply_gradients([(w.grad, w) for w in ours.trainable_weights])
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert set(theirs.get_config()) - {"dtype"} <= set(ours.get_config())
