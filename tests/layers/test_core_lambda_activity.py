"""Lambda and ActivityRegularization.

Lambda: forward, differentiable when made of cynet layer calls (float64 gradients against central
differences), refused with NotImplementedError naming Lambda and cynet.ops when a gradient must
go through NumPy code (never a silently wrong or missing gradient), fine at the model input,
symbolic shapes (traced or given), safe serialization (functions by name through custom objects
only; lambdas refused at load with a clear message).

ActivityRegularization: identity forward, the penalty (l1 sum|x| + l2 sum x^2) / batch in
`losses` and in fit's loss, its gradient (central differences of output . g + penalty), and the
loss and one SGD step equal to Keras 3's."""
import os

import numpy as np
import pytest

import cynet
from cynet import layers, ops
from cynet.testing import numerical_gradient

F64 = dict(dtype="float64")


@pytest.fixture
def rng():
    return np.random.default_rng(5)


def double(x):
    return x * 2.0


def through_layers(x):
    return layers.Multiply(dtype="float64")([layers.Activation("tanh", dtype="float64")(x), x])


def test_lambda_forward_and_arguments(rng):
    x = rng.standard_normal((3, 4))
    np.testing.assert_allclose(layers.Lambda(double, **F64)(x), 2 * x)
    np.testing.assert_allclose(layers.Lambda(lambda t, k: t ** k, arguments={"k": 3}, **F64)(x), x ** 3)
    out = layers.Lambda(lambda ts: ts[0] - ts[1], **F64)([x, x * 3])
    np.testing.assert_allclose(out, -2 * x)
    seen = []
    layers.Lambda(lambda t, training: seen.append(training) or t)(x, training=True)
    assert seen[-1] is True


def test_lambda_of_layers_is_differentiable(rng):
    layer = layers.Lambda(through_layers, **F64)
    x = rng.standard_normal((3, 4))
    y = layer(x)
    np.testing.assert_allclose(y, np.tanh(x) * x)
    g = rng.standard_normal(y.shape)
    dx = layer.backward(g)

    def loss():
        return float(np.sum(layer(x) * g))
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("fn", [double, lambda t: layers.ReLU(dtype="float64")(t + 1.0) * np.exp(t),
                                lambda t: ops.concatenate([t, ops.sin(t)], axis=-1)[:, 1:]],
                         ids=["numpy_operator", "layer_and_ufunc", "ops"])
def test_lambda_with_numpy_operators_and_ops_is_differentiable(fn, rng):
    layer = layers.Lambda(fn, **F64)
    x = rng.standard_normal((2, 3))
    y = layer(x)
    g = rng.standard_normal(np.shape(y))
    dx = layer.backward(g)
    np.testing.assert_allclose(dx, numerical_gradient(lambda: float(np.sum(layer(x) * g)), x), rtol=1e-6, atol=1e-8)


def test_lambda_on_plain_copies_refuses_a_gradient(rng):
    layer = layers.Lambda(lambda t: np.asarray(t).view(np.ndarray) * 2.0, **F64)
    x = rng.standard_normal((2, 3))
    layer(x)
    with pytest.raises(NotImplementedError, match=r"Lambda .*cynet\.ops"):
        layer.backward(np.ones((2, 3)))
    assert layers.Lambda(lambda t: t, **F64)(x) is not None   # the identity passes gradients: no record needed


def test_lambda_in_models(rng):
    x = rng.standard_normal((16, 3)).astype(np.float32)
    y = rng.standard_normal((16, 2)).astype(np.float32)
    at_input = cynet.Sequential([cynet.Input((3,)), layers.Lambda(double), layers.Dense(2)])
    at_input.compile(optimizer="sgd", loss="mse")
    at_input.fit(x, y, epochs=1, verbose=0)          # nothing before the Lambda needs a gradient
    inside = cynet.Sequential([cynet.Input((3,)), layers.Dense(3), layers.Lambda(double), layers.Dense(2)])
    inside.compile(optimizer="sgd", loss="mse")
    before = inside.get_weights()
    inside.fit(x, y, epochs=1, verbose=0)            # the gradient goes through x * 2 (recorded)
    assert not np.allclose(before[0], inside.get_weights()[0])
    assert inside.predict(x, verbose=0).shape == (16, 2)
    inp = cynet.Input((3,))
    h = layers.Dense(4)(inp)
    out = layers.Dense(2)(layers.Lambda(lambda t: layers.ReLU()(t))(h))
    model = cynet.Model(inp, out)
    model.compile(optimizer="sgd", loss="mse")
    before = model.get_weights()
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.allclose(before[0], model.get_weights()[0])   # the gradient reached the first Dense


def test_lambda_shapes():
    assert layers.Lambda(lambda t: t[:, :2])(cynet.Input((5,))).shape == (None, 2)
    assert layers.Lambda(double, output_shape=(7,))(cynet.Input((7,))).shape == (None, 7)
    assert layers.Lambda(double, output_shape=lambda s: s)(cynet.Input((3, 2))).shape == (None, 3, 2)


def test_lambda_config_is_safe(rng):
    named = layers.Lambda(double, arguments={})
    config = layers.serialize(named)
    assert config["config"]["function"]["config"] == "double"
    with pytest.raises(ValueError, match="custom_objects"):
        layers.deserialize(config)   # never imported from the module the config names
    restored = layers.deserialize(config, custom_objects={"double": double})
    x = rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(restored(x), named(x))
    anonymous = layers.serialize(layers.Lambda(lambda t: t + 1))
    function = anonymous["config"]["function"]
    assert function["class_name"] == "__lambda__" and "code" not in function
    with pytest.raises(ValueError, match="lambda"):
        layers.deserialize(anonymous)


@pytest.mark.parametrize("kwargs, name", [(dict(function=3), "function"), (dict(function=double, output_shape="a"),
                                                                            "output_shape"),
                                          (dict(function=double, arguments=[1]), "arguments"),
                                          (dict(function=double, mask=1), "mask")])
def test_lambda_bad_arguments(kwargs, name):
    with pytest.raises(TypeError, match=name):
        layers.Lambda(**kwargs)
    with pytest.raises(NotImplementedError, match="mask"):
        layers.Lambda(double, mask=lambda x, m: m)


# ----------------------------------------------------------------------------- ActivityRegularization
@pytest.mark.parametrize("l1, l2", [(0.1, 0.0), (0.0, 0.2), (0.05, 0.3), (0.0, 0.0)])
def test_activity_penalty_and_gradient(l1, l2, rng):
    layer = layers.ActivityRegularization(l1=l1, l2=l2, **F64)
    x = rng.standard_normal((4, 3))
    y = layer(x)
    np.testing.assert_array_equal(y, x)
    expected = (l1 * np.abs(x).sum() + l2 * (x ** 2).sum()) / 4
    assert layer.losses == [pytest.approx(expected)]
    g = rng.standard_normal(x.shape)
    layer(x)
    dx = layer.backward(g)

    def loss():
        return float(np.sum(layer(x) * g)) + layer.losses[-1]
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)
    config = layer.get_config()
    assert (config["l1"], config["l2"]) == (l1, l2)
    assert layers.deserialize(layers.serialize(layer)).get_config() == config


def test_activity_bad_arguments():
    for kwargs, name in [(dict(l1=-0.1), "l1"), (dict(l2="a"), "l2"), (dict(l1=float("nan")), "l1")]:
        with pytest.raises((ValueError, TypeError), match=name):
            layers.ActivityRegularization(**kwargs)


pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def test_activity_regularization_matches_keras(rng):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip("needs Keras 3")
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)
    ours = cynet.Sequential([cynet.Input((3,)), layers.Dense(4), layers.ActivityRegularization(l1=0.05, l2=0.1),
                             layers.Dense(2)])
    theirs = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                               keras.layers.ActivityRegularization(l1=0.05, l2=0.1), keras.layers.Dense(2)])
    theirs.set_weights(ours.get_weights())
    ours.compile(optimizer=cynet.optimizers.SGD(0.1), loss="mse")
    theirs.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), theirs.evaluate(x, y, verbose=0), rtol=1e-5)
    loss_ours = ours.train_on_batch(x, y)
    loss_theirs = theirs.train_on_batch(x, y)
    np.testing.assert_allclose(np.ravel(loss_ours)[0], np.ravel(loss_theirs)[0], rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
