"""Layers' `activity_regularizer` (Keras 3's base-layer argument): each training call adds
`reg(output) / batch size` to the loss and its gradient to the output's. Checked against finite
differences of the whole loss (float64) and against Keras 3 (one SGD step and the reported loss)."""
import os

import numpy as np
import pytest

import cynet
from cynet import layers as L

RNG = np.random.default_rng(0)


def _model(lib, make, shape, dtype="float32"):
    return lib.Sequential([lib.Input(shape, dtype=dtype), make(lib), lib.layers.Flatten(), lib.layers.Dense(1)])


CASES = {
    "dense_l2": (lambda lib: lib.layers.Dense(4, activation="tanh", activity_regularizer=lib.regularizers.L2(0.3)),
                 (5,)),
    "conv_l1": (lambda lib: lib.layers.Conv2D(2, 3, activity_regularizer=lib.regularizers.L1(0.05)), (5, 5, 1)),
    "depthwise_l1l2": (lambda lib: lib.layers.DepthwiseConv2D(
        2, activity_regularizer=lib.regularizers.L1L2(0.02, 0.1)), (4, 4, 2)),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_gradients_match_finite_differences(name, backend):
    """One full-batch SGD(1) step moves each weight by minus its gradient; the gradient of
    mse + reg(first layer's output) / batch, by central differences."""
    make, shape = CASES[name]
    cynet.utils.set_random_seed(3)
    model = _model(cynet, make, shape, "float64")
    model = cynet.Sequential([cynet.Input(shape)] + [type(layer).from_config({**layer.get_config(), "dtype": "float64"})
                                                     for layer in model.layers])
    first = model.layers[0]
    x, y = RNG.standard_normal((6,) + shape), RNG.standard_normal((6, 1))
    model.compile(optimizer=cynet.optimizers.SGD(1.0), loss="mse")
    model.build((None,) + shape)

    def loss():
        with cynet.kernels.use_backend(backend):
            out = model.predict(x, batch_size=6, verbose=0)
            act = first(x)
        return np.mean((out - y) ** 2) + first.activity_regularizer(act) / len(x)

    before = [v.numpy() for v in model.trainable_variables]
    numeric = []
    for var in model.trainable_variables:
        flat, g = var.value.reshape(-1), np.zeros(var.size)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + 1e-6
            up = loss()
            flat[i] = old - 1e-6
            g[i] = (up - loss()) / 2e-6
            flat[i] = old
        numeric.append(g.reshape(var.shape))
    with cynet.kernels.use_backend(backend):
        model.train_on_batch(x, y)
    for b, var, g in zip(before, model.trainable_variables, numeric):
        np.testing.assert_allclose(b - var.value, g, rtol=1e-5, atol=1e-8)


def test_penalty_is_in_losses_only_while_training():
    layer = L.Dense(3, activity_regularizer="l2")
    model = cynet.Sequential([cynet.Input((4,)), layer])
    x = RNG.standard_normal((8, 4)).astype("float32")
    with cynet.GradientTape():
        out = model(x, training=True)
        (penalty,) = layer.losses
    np.testing.assert_allclose(float(np.asarray(penalty)), 0.01 * np.sum(np.asarray(out) ** 2) / 8, rtol=1e-5)
    model.predict(x, verbose=0)
    assert layer.get_config()["activity_regularizer"] == {"class_name": "L2", "config": {"l2": 0.01}}
    assert isinstance(L.Dense.from_config(layer.get_config()).activity_regularizer, cynet.regularizers.L2)
    with pytest.raises(ValueError, match="activity_regularizer must be a regularizer"):
        L.Dense(3, activity_regularizer="l3")


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_sgd_step_equals_keras(name):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    make, shape = CASES[name]
    x = RNG.standard_normal((16,) + shape).astype("float32")
    y = RNG.standard_normal((16, 1)).astype("float32")
    models = [_model(lib, make, shape) for lib in (cynet, keras)]
    models[1].set_weights(models[0].get_weights())
    losses = []
    for m, lib in zip(models, (cynet, keras)):
        m.compile(optimizer=lib.optimizers.SGD(0.1), loss="mse")
        losses.append(m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0).history["loss"][0])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_penalties_of_earlier_calls_stay_out_of_later_steps():
    """A layer called on its own (or the model called) before evaluate/fit keeps that call's
    penalty in `losses` (Keras keeps a layer's last-call losses too), but the steps add only their own."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    x = RNG.random((16, 5)).astype("float32")
    y = RNG.random((16, 1)).astype("float32")
    models = []
    for lib in (cynet, keras):
        m = lib.Sequential([lib.Input((5,)), lib.layers.Dense(4, activity_regularizer=lib.regularizers.L2(0.3),
                                                               kernel_regularizer="l2"), lib.layers.Dense(1)])
        m.compile(optimizer=lib.optimizers.SGD(0.05), loss="mse")
        models.append(m)
    models[1].set_weights(models[0].get_weights())
    for m in models:
        m.layers[0](x * 10)
        m(x * 5)
    results = [(m.evaluate(x, y, batch_size=16, verbose=0),
                m.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history["loss"]) for m in models]
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5)
