"""EinsumDense: the forward against np.einsum of the equation, kernel and bias shapes, float64
gradients (input, kernel, bias) against central differences on both kernel backends, the
initializer's fans, config round trip, symbolic shapes, use in a trained model and a .keras file,
refused arguments and inputs, and (when Keras 3 runs with the PyTorch backend) weight shapes,
predictions, input gradients and one SGD step equal to Keras's with copied weights."""
import os

import numpy as np
import pytest

import cynet
from cynet import layers
from cynet.kernels import use_backend
from cynet.testing import check_layer_gradients

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

# (equation, output_shape, bias_axes, input shape, kernel shape, bias shape, output shape)
CASES = [
    ("ab,bc->ac", 4, "c", (3, 5), (5, 4), (4,), (3, 4)),
    ("abc,cd->abd", (None, 4), "d", (2, 3, 5), (5, 4), (4,), (2, 3, 4)),
    ("abc,cde->abde", (None, 2, 3), "de", (2, 3, 5), (5, 2, 3), (2, 3), (2, 3, 2, 3)),
    ("abc,cde->abde", (None, 2, 3), "d", (2, 3, 5), (5, 2, 3), (2, 1), (2, 3, 2, 3)),
    ("abcd,cde->abe", (3, 4), "b", (2, 3, 2, 5), (2, 5, 4), (3, 1), (2, 3, 4)),
    ("...x,xy->...y", 3, "y", (2, 3, 2, 4), (4, 3), (3,), (2, 3, 2, 3)),
    ("ab...,bc->ac...", 3, "c", (2, 4, 2, 3), (4, 3), (3, 1, 1), (2, 3, 2, 3)),
    ("abc,cd->ad", 3, None, (2, 3, 4), (4, 3), None, (2, 3)),
]
IDS = [f"{c[0]}-{c[2]}" for c in CASES]


@pytest.fixture
def rng():
    return np.random.default_rng(41)


def _layer(case, **kw):
    eq, out, bias, shape = case[:4]
    layer = layers.EinsumDense(eq, out, bias_axes=bias, **kw)
    layer.build(shape)
    return layer


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_shapes_and_definition(case, rng):
    eq, _, bias, shape, kshape, bshape, oshape = case
    layer = _layer(case, dtype="float64", activation="tanh")
    assert [w.name for w in layer.weights] == (["kernel", "bias"] if bias else ["kernel"])
    assert layer.kernel.shape == kshape and (layer.bias is None if bshape is None else layer.bias.shape == bshape)
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.get_weights()])
    x = rng.standard_normal(shape)
    z = np.einsum(eq, x, layer.get_weights()[0])
    if bias:
        z = z + layer.get_weights()[1]
    np.testing.assert_allclose(layer(x), np.tanh(z), rtol=1e-12, atol=1e-12)
    assert layer.compute_output_shape(shape) == oshape
    assert layers.EinsumDense(eq, case[1], bias_axes=bias)(cynet.Input(shape[1:])).shape == (None,) + oshape[1:]


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients(backend, case, rng):
    layer = _layer(case, dtype="float64", activation="sigmoid")
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.get_weights()])
    with use_backend(backend):
        check_layer_gradients(layer, rng.standard_normal(case[3]), rtol=1e-6, atol=1e-8)


def test_kernel_initializer_uses_keras_fans():
    """glorot_uniform with fan_in = 5 (the contracted axis), fan_out = 2 * 3 (the output axes)."""
    cynet.utils.set_random_seed(3)
    layer = layers.EinsumDense("abc,cde->abde", (None, 200, 300), bias_axes="de")
    layer.build((2, 3, 50))
    limit = np.sqrt(6 / (50 + 200 * 300))
    k = layer.get_weights()[0]
    assert np.abs(k).max() <= limit and np.abs(k).max() > 0.9 * limit
    np.testing.assert_array_equal(layer.get_weights()[1], 0.0)


def test_config_model_and_file(tmp_path, rng):
    layer = layers.EinsumDense("abc,cde->abde", (None, 2, 3), bias_axes="de", activation="relu", name="ed",
                               kernel_regularizer="l2")
    config = layer.get_config()
    assert config["equation"] == "abc,cde->abde" and tuple(config["output_shape"]) == (None, 2, 3)
    assert config["bias_axes"] == "de" and config["activation"] == "relu" and config["name"] == "ed"
    restored = layers.deserialize(layers.serialize(layer))
    assert type(restored) is layers.EinsumDense and restored.get_config() == config
    inp = cynet.Input((4, 5))
    out = layers.Reshape((24,))(layers.EinsumDense("abc,cde->abde", (None, 2, 3), bias_axes="de")(inp))
    model = cynet.Model(inp, layers.Dense(1)(out))
    model.compile(optimizer="adam", loss="mse")
    x, y = rng.standard_normal((16, 4, 5)).astype(np.float32), rng.standard_normal((16, 1)).astype(np.float32)
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=20, verbose=0)
    assert model.evaluate(x, y, verbose=0) < first
    path = str(tmp_path / "m.keras")
    model.save(path)
    np.testing.assert_allclose(cynet.saving.load_model(path).predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)


@pytest.mark.parametrize("args, kwargs, name, exc", [
    (("ab,bc",), dict(output_shape=3), "equation", ValueError),
    (("ab,bc->ad",), dict(output_shape=3), "equation", ValueError),
    (("ab,bcx->ac",), dict(output_shape=3), "equation", ValueError),
    ((3,), dict(output_shape=3), "equation", TypeError),
    (("aa,ab->ab",), dict(output_shape=3), "equation", NotImplementedError),
    (("ab,bc->ac",), dict(output_shape=0), "output_shape", ValueError),
    (("ab,bc->ac",), dict(output_shape="3"), "output_shape", ValueError),
    (("ab,bc->ac",), dict(output_shape=3, bias_axes="x"), "bias_axes", ValueError),
    (("ab,bc->ac",), dict(output_shape=3, bias_axes=1), "bias_axes", ValueError),
    (("ab,bc->ac",), dict(output_shape=3, activation="nope"), "activation", ValueError),
    (("ab,bc->ac",), dict(output_shape=3, kernel_initializer="nope"), "kernel_initializer", ValueError),
    (("ab,bc->ac",), dict(output_shape=3, lora_rank=4), "lora_rank", NotImplementedError),
    (("ab,bc->ac",), dict(output_shape=3, quantization_config={}), "quantization_config", NotImplementedError),
])
def test_bad_arguments(args, kwargs, name, exc):
    with pytest.raises(exc, match=name):
        layers.EinsumDense(*args, **kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="rank"):
        layers.EinsumDense("abc,cd->abd", (None, 3))(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="output_shape"):
        layers.EinsumDense("abc,cd->abd", 3)(np.ones((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="do not match"):
        layers.EinsumDense("abc,cd->abd", (5, 3))(np.ones((2, 3, 4), np.float32))
    layer = layers.EinsumDense("ab,bc->ac", 3)
    layer(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError):
        layer(np.ones((2, 5), np.float32))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_keras_prediction_and_sgd_step(case, rng):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    torch = pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3") or keras.backend.backend() != "torch":
        pytest.skip("needs Keras 3 with the PyTorch backend")
    eq, out, bias, shape, _, _, oshape = case
    theirs = keras.layers.EinsumDense(eq, out, bias_axes=bias, activation="tanh")
    theirs.build(shape)
    ours = layers.EinsumDense(eq, out, bias_axes=bias, activation="tanh")
    ours.build(shape)
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    weights = [rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    x, g = rng.standard_normal(shape).astype(np.float32), rng.standard_normal(oshape).astype(np.float32)
    np.testing.assert_allclose(ours(x), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-5, atol=1e-5)
    xt = torch.tensor(x, requires_grad=True)
    (theirs(xt) * torch.tensor(g)).sum().backward()
    keras.optimizers.SGD(learning_rate=0.1).apply([w.value.grad for w in theirs.trainable_weights],
                                                  theirs.trainable_weights)
    ours(x, training=True)
    np.testing.assert_allclose(ours.backward(g), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    cynet.optimizers.SGD(learning_rate=0.1).apply_gradients([(w.grad, w) for w in ours.trainable_weights])
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert set(theirs.get_config()) - {"dtype"} <= set(ours.get_config())


def test_mixed_bfloat16_products_are_dense_s(rng):
    """Under mixed_bfloat16, "ab,bc->ac" is Dense: the same bfloat16-rounded products, forward and
    backward (and not the float32 products)."""
    x = rng.standard_normal((5, 7)).astype(np.float32)
    g = rng.standard_normal((5, 3)).astype(np.float32)
    ours = layers.EinsumDense("ab,bc->ac", 3, bias_axes="c", dtype="mixed_bfloat16")
    dense = layers.Dense(3, dtype="mixed_bfloat16")
    ours.build((None, 7))
    dense.build((None, 7))
    weights = [rng.standard_normal((7, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    ours.set_weights(weights)
    dense.set_weights(weights)
    y = ours(x, training=True)
    np.testing.assert_allclose(y, dense(x, training=True), rtol=1e-6, atol=1e-6)
    assert np.abs(y - (x @ weights[0] + weights[1])).max() > 1e-4   # rounded operands, not float32's
    np.testing.assert_allclose(ours.backward(g), dense.backward(g), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours.kernel.grad, dense.kernel.grad, rtol=1e-6, atol=1e-6)
