"""Training steps: the first layer skips its input gradient (Sequential.backward still returns it
when asked); loss_weights scale each output's loss."""
import numpy as np

import cynet
from cynet import layers
from cynet.layers import conv as conv_layers


def _convnet():
    model = cynet.Sequential([cynet.Input(shape=(8, 8, 1)), layers.Conv2D(4, 3), layers.Conv2D(3, 3),
                              layers.Flatten(), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def test_fit_asks_the_first_conv_for_no_input_gradient(monkeypatch):
    calls = []
    original = conv_layers.kernels.conv2d_backward

    def recording(*args, **kwargs):
        calls.append(kwargs["compute_dx"])
        return original(*args, **kwargs)

    monkeypatch.setattr(conv_layers.kernels, "conv2d_backward", recording)
    rng = np.random.default_rng(0)
    _convnet().train_on_batch(rng.random((5, 8, 8, 1)), rng.integers(0, 2, 5))
    assert calls == [True, False]      # backward order: second conv, then the first


def test_a_first_recurrent_layer_skips_its_input_gradient_and_trains_the_same():
    rng = np.random.default_rng(2)
    x, y = rng.random((6, 5, 3)).astype(np.float32), rng.integers(0, 2, 6)
    for cell in (layers.SimpleRNN, layers.LSTM, layers.GRU):
        stacked = cynet.Sequential([cynet.Input(shape=(5, 3)), cell(4, return_sequences=True), cell(3),
                                    layers.Dense(2, activation="softmax")])
        stacked.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        stacked(x, training=True)
        g = np.ones((6, 2), np.float32)
        dx = stacked.backward(g)
        assert dx.shape == x.shape
        grads = [v.grad.copy() for v in stacked.trainable_weights]
        stacked(x, training=True)
        assert stacked.backward(g, input_gradient=False) is None
        for a, v in zip(grads, stacked.trainable_weights):
            np.testing.assert_array_equal(a, v.grad)


def test_backward_returns_the_input_gradient_unless_told_not_to():
    rng = np.random.default_rng(1)
    model = cynet.Sequential([cynet.Input(shape=(3,)), layers.Dense(4), layers.Dense(2)])
    x = rng.random((6, 3)).astype(np.float32)
    y = model(x, training=True)
    g = np.ones_like(y)
    dx = model.backward(g)
    w1, w2 = model.layers[0].kernel.value, model.layers[1].kernel.value
    np.testing.assert_allclose(dx, g @ w2.T @ w1.T, rtol=1e-5)
    model(x, training=True)
    assert model.backward(g, input_gradient=False) is None
    np.testing.assert_allclose(model.layers[0].kernel.grad, x.T @ (g @ w2.T), rtol=1e-5)


def test_loss_weights_scale_the_loss_and_its_gradients():
    rng = np.random.default_rng(3)
    x, y = rng.random((6, 3)).astype(np.float32), rng.random((6, 2)).astype(np.float32)
    changes, losses = [], []
    for weight in (1.0, 0.5):
        cynet.utils.set_random_seed(0)
        model = cynet.Sequential([cynet.Input(shape=(3,)), layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse", loss_weights=[weight])
        before = model.layers[0].kernel.numpy()
        losses.append(model.train_on_batch(x, y))
        changes.append(model.layers[0].kernel.numpy() - before)
    np.testing.assert_allclose(losses[1], 0.5 * losses[0], rtol=1e-6)
    np.testing.assert_allclose(changes[1], 0.5 * changes[0], rtol=1e-4, atol=1e-7)
