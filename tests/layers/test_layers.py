"""Every layer: output shape, weights in Keras layout, config round trip, NumPy reference output,
and float64 gradient checks on both kernel backends."""
import numpy as np

from cynet.testing import numerical_gradient
import pytest

import cynet
import cynet.kernels as K
from cynet import layers
from cynet.testing import check_layer_gradients, numerical_gradient


def _x(rng, *shape):
    return rng.standard_normal(shape)


def roundtrip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    return clone


LAYER_CASES = [
    ("dense", lambda: layers.Dense(4, activation="tanh", dtype="float64"), (3, 5)),
    ("dense_3d", lambda: layers.Dense(3, dtype="float64"), (2, 4, 5)),
    ("dense_softmax", lambda: layers.Dense(4, activation="softmax", dtype="float64"), (3, 5)),
    ("activation_sigmoid", lambda: layers.Activation("sigmoid", dtype="float64"), (3, 5)),
    ("activation_gelu", lambda: layers.Activation("gelu", dtype="float64"), (3, 5)),
    ("activation_selu", lambda: layers.Activation("selu", dtype="float64"), (3, 5)),
    ("activation_softplus", lambda: layers.Activation("softplus", dtype="float64"), (3, 5)),
    ("activation_swish", lambda: layers.Activation("swish", dtype="float64"), (3, 5)),
    ("activation_softsign", lambda: layers.Activation("softsign", dtype="float64"), (3, 5)),
    ("leaky_relu", lambda: layers.LeakyReLU(dtype="float64"), (3, 5)),
    ("relu_keras_args", lambda: layers.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2, dtype="float64"),
     (3, 5)),
    ("elu", lambda: layers.ELU(dtype="float64"), (3, 5)),
    ("softmax", lambda: layers.Softmax(dtype="float64"), (3, 5)),
    ("flatten", lambda: layers.Flatten(dtype="float64"), (2, 3, 4, 2)),
    ("reshape", lambda: layers.Reshape((4, 6), dtype="float64"), (2, 3, 8)),
    ("conv_same_s2", lambda: layers.Conv2D(3, 3, strides=2, padding="same", activation="relu", dtype="float64"),
     (2, 6, 5, 2)),
    ("conv_valid_dil", lambda: layers.Conv2D(2, (2, 3), dilation_rate=2, dtype="float64"), (1, 7, 8, 3)),
    ("conv_channels_first", lambda: layers.Conv2D(2, 3, padding="same", data_format="channels_first",
                                                  dtype="float64"), (2, 3, 5, 5)),
    ("maxpool", lambda: layers.MaxPooling2D(2, dtype="float64"), (2, 6, 6, 3)),
    ("maxpool_same", lambda: layers.MaxPooling2D(3, strides=2, padding="same", dtype="float64"), (2, 5, 7, 2)),
    ("avgpool_same", lambda: layers.AveragePooling2D(3, strides=2, padding="same", dtype="float64"), (2, 5, 7, 2)),
    ("global_avg", lambda: layers.GlobalAveragePooling2D(dtype="float64"), (2, 4, 3, 5)),
    ("global_max", lambda: layers.GlobalMaxPooling2D(keepdims=True, dtype="float64"), (2, 4, 3, 5)),
    ("upsampling", lambda: layers.UpSampling2D((2, 3), dtype="float64"), (2, 3, 2, 2)),
    ("batchnorm_2d", lambda: layers.BatchNormalization(dtype="float64"), (6, 4)),
    ("batchnorm_4d", lambda: layers.BatchNormalization(dtype="float64"), (3, 3, 2, 4)),
    ("batchnorm_axis1", lambda: layers.BatchNormalization(axis=1, dtype="float64"), (3, 4, 2, 2)),
    ("simple_rnn", lambda: layers.SimpleRNN(4, return_sequences=True, dtype="float64"), (2, 3, 3)),
    ("lstm", lambda: layers.LSTM(3, dtype="float64"), (2, 4, 3)),
    ("lstm_seq_back", lambda: layers.LSTM(3, return_sequences=True, go_backwards=True, dtype="float64"), (2, 3, 2)),
    ("gru", lambda: layers.GRU(3, return_sequences=True, dtype="float64"), (2, 4, 3)),
    ("gru_hard", lambda: layers.GRU(3, recurrent_activation="hard_sigmoid", activation="relu", dtype="float64"),
     (2, 3, 2)),
]


@pytest.mark.parametrize("name,make,shape", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_layer_gradients(name, make, shape, backend, rng):
    layer = make()
    x = _x(rng, *shape)
    if "maxpool" in name or "global_max" in name:
        x = rng.permutation(np.arange(x.size, dtype=np.float64)).reshape(shape) / x.size  # distinct values
    check_layer_gradients(layer, x, training=True)


@pytest.mark.parametrize("name,make,shape", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_layer_output_shape_and_config(name, make, shape, rng):
    layer = make()
    y = layer(_x(rng, *shape))
    expected = layer.compute_output_shape((None,) + shape[1:])
    assert (None,) + y.shape[1:] == tuple(expected)
    clone = roundtrip(layer)
    clone(_x(rng, *shape))
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in layer.get_weights()]


@pytest.mark.parametrize("name,make,shape", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_backends_agree(name, make, shape, rng):
    layer = make()
    x = _x(rng, *shape)
    with K.use_backend("numpy"):
        y_np = layer(x, training=False)
    with K.use_backend("cython"):
        y_cy = layer(x, training=False)
    np.testing.assert_allclose(y_cy, y_np, rtol=1e-10, atol=1e-12)


def test_dense_matches_numpy_and_weight_layout(rng):
    layer = layers.Dense(3, activation="relu")
    x = rng.standard_normal((4, 5)).astype(np.float32)
    y = layer(x)
    kernel, bias = layer.get_weights()
    assert kernel.shape == (5, 3) and bias.shape == (3,)
    np.testing.assert_allclose(y, np.maximum(x @ kernel + bias, 0), rtol=1e-6)
    assert y.dtype == np.float32


def test_conv2d_matches_direct_definition(rng):
    layer = layers.Conv2D(2, 3, padding="same", dtype="float64")
    x = rng.standard_normal((1, 4, 4, 2))
    y = layer(x)
    k, b = layer.get_weights()
    assert k.shape == (3, 3, 2, 2)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    ref = np.zeros((1, 4, 4, 2))
    for i in range(4):
        for j in range(4):
            ref[0, i, j] = np.tensordot(xp[0, i:i + 3, j:j + 3, :], k, axes=3) + b
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)


def test_batchnorm_training_vs_inference_and_moving_stats(rng):
    bn = layers.BatchNormalization(momentum=0.5, dtype="float64")
    x = rng.standard_normal((8, 3)) * 2 + 5
    y = bn(x, training=True)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-10)
    gamma, beta, mm, mv = bn.get_weights()
    np.testing.assert_allclose(mm, 0.5 * x.mean(axis=0))
    np.testing.assert_allclose(mv, 0.5 + 0.5 * x.var(axis=0))
    y_inf = bn(x, training=False)
    np.testing.assert_allclose(y_inf, (x - mm) / np.sqrt(mv + 1e-3))
    assert [w.name for w in bn.trainable_weights] == ["gamma", "beta"]
    assert [w.name for w in bn.non_trainable_weights] == ["moving_mean", "moving_variance"]


def test_batchnorm_inference_gradients(rng):
    bn = layers.BatchNormalization(dtype="float64")
    bn(rng.standard_normal((5, 3)), training=True)
    check_layer_gradients(bn, rng.standard_normal((4, 3)), training=False)


def test_dropout_is_inverted_and_only_in_training(rng):
    cynet.utils.set_random_seed(3)
    d = layers.Dropout(0.25)
    x = np.ones((200, 50), dtype=np.float32)
    np.testing.assert_array_equal(d(x, training=False), x)
    y = d(x, training=True)
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    g = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(d.backward(g), g * (y != 0) / 0.75, rtol=1e-6)


def test_embedding_lookup_and_gradient(rng):
    emb = layers.Embedding(6, 3, dtype="float64")
    idx = np.array([[1, 2, 1], [5, 0, 1]])
    y = emb(idx)
    table = emb.get_weights()[0]
    np.testing.assert_array_equal(y, table[idx])
    g = rng.standard_normal(y.shape)
    emb.backward(g)
    ref = np.zeros_like(table)
    for n in range(2):
        for t in range(3):
            ref[idx[n, t]] += g[n, t]
    np.testing.assert_allclose(emb.embeddings.grad, ref)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 6\)"):
        emb(np.array([[6]]))
    with pytest.raises(ValueError, match="integer indices"):
        emb(np.array([[0.5]]))


def test_rnn_return_state_and_initial_state(rng):
    lstm = layers.LSTM(3, return_sequences=True, return_state=True, dtype="float64")
    x = rng.standard_normal((2, 4, 3))
    h0, c0 = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    seq, h, c = lstm(x, initial_state=[h0, c0])
    np.testing.assert_allclose(seq[:, -1], h)
    assert seq.shape == (2, 4, 3) and c.shape == (2, 3)
    dx, dh0, dc0 = lstm.backward([np.ones_like(seq), np.ones_like(h), np.ones_like(c)])
    assert dx.shape == x.shape and dh0.shape == h0.shape and dc0.shape == c0.shape

    def total():
        return sum(float(np.sum(o)) for o in lstm(x, initial_state=[h0, c0]))
    np.testing.assert_allclose(dh0, numerical_gradient(total, h0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dc0, numerical_gradient(total, c0), rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="initial_state"):
        lstm(x, initial_state=[h0])


def test_lstm_unit_forget_bias_and_gru_bias_shape():
    lstm = layers.LSTM(4)
    lstm(np.zeros((1, 2, 3), dtype=np.float32))
    k, rk, b = lstm.get_weights()
    assert k.shape == (3, 16) and rk.shape == (4, 16) and b.shape == (16,)
    np.testing.assert_array_equal(b, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    np.testing.assert_allclose(rk @ rk.T, np.eye(4), atol=1e-5)  # orthogonal recurrent kernel (rows)
    gru = layers.GRU(4)
    gru(np.zeros((1, 2, 3), dtype=np.float32))
    assert gru.get_weights()[2].shape == (2, 12)


def test_layer_argument_errors():
    with pytest.raises(ValueError, match="units must be a positive integer"):
        layers.Dense(0)
    with pytest.raises(ValueError, match="filters"):
        layers.Conv2D(0, 3)
    with pytest.raises(ValueError, match="padding"):
        layers.Conv2D(2, 3, padding="full")
    with pytest.raises(ValueError, match="rate must be in"):
        layers.Dropout(1.0)
    with pytest.raises(TypeError, match="Unrecognized keyword arguments"):
        layers.Dense(3, foo=1)
    with pytest.raises(ValueError, match="recurrent_dropout"):
        layers.LSTM(3, recurrent_dropout=1.0)
    with pytest.raises(ValueError, match="expects inputs with last axis 5"):
        d = layers.Dense(2)
        d(np.zeros((1, 5)))
        d(np.zeros((1, 4)))


def test_a_regularizer_given_by_name_serializes():
    dense = layers.Dense(2, kernel_regularizer="l2", bias_regularizer="l1")
    clone = layers.Dense.from_config(dense.get_config())
    assert clone.get_config() == dense.get_config()
    assert dense.get_config()["kernel_regularizer"]["class_name"] == "L2"
