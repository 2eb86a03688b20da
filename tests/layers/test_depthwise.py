"""DepthwiseConv2D, SeparableConv2D, DepthwiseConv1D, SeparableConv1D: float64 gradients against
central differences on both kernel backends, compiled == twin, weight shapes and order, config
round trips, symbolic shapes, refused arguments and inputs, and (when Keras 3 is installed) the
outputs, gradients and one SGD step of a model equal to Keras's with copied weights."""
import os

import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet import layers as L
from cynet.testing import check_layer_gradients

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture
def rng():
    return np.random.default_rng(23)


# (class, arguments, input shape, weight shapes)
CASES = [
    ("dw_same_m2", L.DepthwiseConv2D, dict(kernel_size=3, padding="same", depth_multiplier=2, activation="tanh"),
     (2, 5, 6, 3), [(3, 3, 3, 2), (6,)]),
    ("dw_strided_cf", L.DepthwiseConv2D, dict(kernel_size=(2, 3), strides=2, data_format="channels_first"),
     (2, 3, 7, 6), [(2, 3, 3, 1), (3,)]),
    ("dw_dilated_nobias", L.DepthwiseConv2D, dict(kernel_size=2, dilation_rate=(2, 1), use_bias=False,
                                                  padding="same"), (2, 6, 5, 2), [(2, 2, 2, 1)]),
    ("sep_same_dil_m2", L.SeparableConv2D, dict(filters=4, kernel_size=3, padding="same", dilation_rate=2,
                                                depth_multiplier=2, activation="relu"),
     (2, 6, 6, 3), [(3, 3, 3, 2), (1, 1, 6, 4), (4,)]),
    ("sep_cf", L.SeparableConv2D, dict(filters=4, kernel_size=2, strides=(1, 2), data_format="channels_first"),
     (2, 3, 5, 5), [(2, 2, 3, 1), (1, 1, 3, 4), (4,)]),
    ("dw1d_same_m2", L.DepthwiseConv1D, dict(kernel_size=3, padding="same", depth_multiplier=2), (2, 7, 3),
     [(3, 3, 2), (6,)]),
    ("sep1d_strided_cf", L.SeparableConv1D, dict(filters=4, kernel_size=3, strides=2, data_format="channels_first"),
     (2, 3, 9), [(3, 3, 1), (1, 3, 4), (4,)]),
    ("sep1d_dilated", L.SeparableConv1D, dict(filters=2, kernel_size=2, dilation_rate=2, use_bias=False),
     (3, 8, 2), [(2, 2, 1), (1, 2, 2)]),
]
IDS = [c[0] for c in CASES]


def _layer(cls, kwargs, shape, rng, dtype="float64"):
    layer = cls(dtype=dtype, **kwargs)
    layer(np.zeros(shape))
    layer.set_weights([rng.normal(0.0, 0.5, w.shape) for w in layer.get_weights()])
    return layer


@pytest.mark.parametrize("name, cls, kwargs, shape, weights", CASES, ids=IDS)
@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_gradients(backend, name, cls, kwargs, shape, weights, rng):
    with K.use_backend(backend):
        layer = _layer(cls, kwargs, shape, rng)
        check_layer_gradients(layer, rng.standard_normal(shape))


@pytest.mark.parametrize("name, cls, kwargs, shape, weights", CASES, ids=IDS)
def test_weights_and_backends_agree(name, cls, kwargs, shape, weights, rng):
    layer = _layer(cls, kwargs, shape, rng, dtype="float32")
    assert [tuple(w.shape) for w in layer.get_weights()] == weights
    x = rng.standard_normal(shape).astype(np.float32)
    out = {}
    for backend in ("cython", "numpy"):
        with K.use_backend(backend):
            y = layer(x)
            dx = layer.backward(np.ones_like(y))
            out[backend] = [y, dx] + [w.grad.copy() for w in layer.trainable_weights]
    for a, b in zip(out["cython"], out["numpy"]):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_depthwise_forward_is_the_per_channel_definition(rng):
    """Output channel c*M + m is input channel c filtered by kernel[:, :, c, m] (valid, stride 1)."""
    layer = _layer(L.DepthwiseConv2D, dict(kernel_size=(2, 3), depth_multiplier=2), (2, 4, 5, 3), rng)
    x = rng.standard_normal((2, 4, 5, 3))
    k, b = layer.get_weights()
    y = layer(x)
    for c in range(3):
        for m in range(2):
            ref = np.zeros((2, 3, 3))
            for i in range(3):
                for j in range(3):
                    ref[:, i, j] = np.sum(x[:, i:i + 2, j:j + 3, c] * k[:, :, c, m], axis=(1, 2))
            np.testing.assert_allclose(y[..., c * 2 + m], ref + b[c * 2 + m], rtol=1e-12, atol=1e-12)


def test_separable_is_depthwise_then_pointwise(rng):
    sep = _layer(L.SeparableConv2D, dict(filters=3, kernel_size=3, padding="same", depth_multiplier=2),
                 (2, 5, 5, 2), rng)
    dk, pk, b = sep.get_weights()
    dw = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, use_bias=False, dtype="float64")
    pw = L.Conv2D(3, 1, dtype="float64")
    x = rng.standard_normal((2, 5, 5, 2))
    mid = dw(x)
    dw.set_weights([dk])
    pw(mid)
    pw.set_weights([pk, b])
    np.testing.assert_allclose(sep(x), pw(dw(x)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, cls, kwargs, shape, weights", CASES, ids=IDS)
def test_symbolic_shape_and_config(name, cls, kwargs, shape, weights, rng):
    layer = cls(**kwargs)
    out = layer(cynet.Input(shape[1:]))
    concrete = layer(rng.standard_normal(shape).astype(np.float32))
    assert out.shape == (None,) + concrete.shape[1:] == layer.compute_output_shape((None,) + shape[1:])
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
    restored = L.deserialize(L.serialize(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def test_unknown_spatial_size():
    layer = L.DepthwiseConv2D(3, strides=2, padding="same")
    assert layer(cynet.Input((None, None, 4))).shape == (None, None, None, 4)
    assert layer(np.zeros((1, 9, 6, 4))).shape == (1, 5, 3, 4)
    layer = L.SeparableConv1D(5, 3)
    assert layer(cynet.Input((None, 4))).shape == (None, None, 5)


def test_config_defaults_match_keras_names():
    config = L.DepthwiseConv2D(3).get_config()
    for key, value in dict(kernel_size=[3, 3], strides=[1, 1], padding="valid", depth_multiplier=1,
                           data_format="channels_last", dilation_rate=[1, 1], use_bias=True, activation="linear",
                           depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                           depthwise_constraint=None, bias_constraint=None).items():
        assert config[key] == value, key
    assert config["depthwise_initializer"]["class_name"] == "GlorotUniform"
    config = L.SeparableConv2D(8, 3, pointwise_regularizer="l2").get_config()
    assert config["filters"] == 8 and config["pointwise_initializer"]["class_name"] == "GlorotUniform"
    assert config["pointwise_regularizer"] is not None and config["pointwise_constraint"] is None


def test_regularizers_add_losses(rng):
    layer = L.SeparableConv2D(2, 2, depthwise_regularizer="l2", pointwise_regularizer="l1", bias_regularizer="l2",
                              bias_initializer="ones")
    layer(rng.standard_normal((1, 4, 4, 3)).astype(np.float32))
    assert len(layer.losses) == 3


@pytest.mark.parametrize("cls, kwargs, name, exc", [
    (L.DepthwiseConv2D, dict(kernel_size=0), "kernel_size", ValueError),
    (L.DepthwiseConv2D, dict(kernel_size=(2, 2, 2)), "kernel_size", ValueError),
    (L.DepthwiseConv2D, dict(kernel_size=3, strides=0), "strides", ValueError),
    (L.DepthwiseConv2D, dict(kernel_size=3, dilation_rate=-1), "dilation_rate", ValueError),
    (L.DepthwiseConv2D, dict(kernel_size=3, padding="causal"), "padding", ValueError),
    (L.DepthwiseConv2D, dict(kernel_size=3, padding=1), "padding", ValueError),
    (L.DepthwiseConv2D, dict(kernel_size=3, depth_multiplier=0), "depth_multiplier", ValueError),
    (L.DepthwiseConv2D, dict(kernel_size=3, depth_multiplier=1.5), "depth_multiplier", (ValueError, TypeError)),
    (L.DepthwiseConv2D, dict(kernel_size=3, data_format="nhwc"), "data_format", ValueError),
    (L.DepthwiseConv2D, dict(kernel_size=3, use_bias="yes"), "use_bias", (ValueError, TypeError)),
    (L.DepthwiseConv2D, dict(kernel_size=3, activation="nope"), "activation", ValueError),
    (L.DepthwiseConv2D, dict(kernel_size=3, depthwise_initializer="nope"), "depthwise_initializer", ValueError),
    (L.DepthwiseConv2D, dict(kernel_size=3, depthwise_regularizer="nope"), "depthwise_regularizer", ValueError),
    (L.DepthwiseConv2D, dict(kernel_size=3, depthwise_constraint="no_such"), "depthwise_constraint", ValueError),
    (L.DepthwiseConv2D, dict(kernel_size=3, activity_regularizer="l7"), "activity_regularizer", ValueError),
    (L.SeparableConv2D, dict(filters=0, kernel_size=3), "filters", ValueError),
    (L.SeparableConv2D, dict(filters=2, kernel_size=3, pointwise_initializer="nope"), "pointwise_initializer",
     ValueError),
    (L.SeparableConv2D, dict(filters=2, kernel_size=3, pointwise_constraint=1), "pointwise_constraint", ValueError),
    (L.DepthwiseConv1D, dict(kernel_size=(2, 2)), "kernel_size", ValueError),
    (L.SeparableConv1D, dict(filters=2, kernel_size=3, strides=(1, 2)), "strides", ValueError),
])
def test_bad_arguments(cls, kwargs, name, exc):
    with pytest.raises(exc, match=rf"\b{name}\b"):
        cls(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="4-dimensional"):
        L.DepthwiseConv2D(3)(np.zeros((2, 5, 5)))
    with pytest.raises(ValueError, match="3-dimensional"):
        L.SeparableConv1D(2, 3)(np.zeros((2, 5, 5, 1)))
    with pytest.raises(ValueError, match="do not fit"):
        L.DepthwiseConv2D(4)(np.zeros((1, 3, 3, 2)))
    with pytest.raises(ValueError, match="channel"):
        L.DepthwiseConv2D(3)(cynet.Input((5, 5, None)))
    layer = L.SeparableConv2D(2, 3)
    layer(np.zeros((1, 5, 5, 2)))
    with pytest.raises(ValueError):
        layer(np.zeros((1, 5, 5, 3)))          # the kernel was built for 2 channels


def test_trains_in_a_model(rng):
    model = cynet.Sequential([cynet.Input((8, 8, 3)), L.DepthwiseConv2D(3, padding="same", activation="relu"),
                              L.SeparableConv2D(4, 3, strides=2, depth_multiplier=2), L.Flatten(), L.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(rng.standard_normal((16, 8, 8, 3)), rng.standard_normal((16, 2)), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


# ----------------------------------------------------------------------------- Keras 3 oracle

def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3; found {keras.__version__}")
    return keras


ORACLE = [
    ("DepthwiseConv2D", dict(kernel_size=3), (2, 7, 6, 3)),
    ("DepthwiseConv2D", dict(kernel_size=3, strides=2, padding="same", depth_multiplier=2), (2, 7, 8, 3)),
    ("DepthwiseConv2D", dict(kernel_size=(2, 3), dilation_rate=2, padding="same", activation="relu"), (2, 8, 7, 2)),
    ("DepthwiseConv2D", dict(kernel_size=2, padding="same", data_format="channels_first", depth_multiplier=3),
     (2, 2, 6, 5)),
    ("SeparableConv2D", dict(filters=4, kernel_size=3, padding="same", depth_multiplier=2), (2, 6, 6, 3)),
    ("SeparableConv2D", dict(filters=3, kernel_size=2, strides=2, activation="tanh"), (2, 7, 6, 2)),
    ("SeparableConv2D", dict(filters=3, kernel_size=3, dilation_rate=2, data_format="channels_first"),
     (2, 2, 7, 7)),
    ("DepthwiseConv1D", dict(kernel_size=3, padding="same", depth_multiplier=2), (2, 9, 3)),
    ("DepthwiseConv1D", dict(kernel_size=2, strides=2), (2, 9, 3)),
    ("SeparableConv1D", dict(filters=4, kernel_size=3, padding="same", dilation_rate=2), (2, 9, 3)),
    ("SeparableConv1D", dict(filters=2, kernel_size=3, data_format="channels_first"), (2, 3, 8)),
]


def _close(actual, expected, what):
    expected = np.asarray(expected, np.float64)
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=1e-5, atol=1e-5 * scale, err_msg=what)


@pytest.mark.parametrize("cls, kwargs, shape", ORACLE, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(ORACLE)])
@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_predict_and_one_sgd_step_match_keras(backend, cls, kwargs, shape, rng):
    keras = _keras()
    x = rng.standard_normal(shape).astype(np.float32)

    def model(lib):
        return lib.Sequential([lib.Input(shape[1:]), getattr(lib.layers, cls)(**kwargs), lib.layers.Flatten(),
                               lib.layers.Dense(2)])

    kmodel = model(keras)
    kmodel.set_weights([rng.normal(0.0, 0.5, w.shape).astype(np.float32) for w in kmodel.get_weights()])
    with K.use_backend(backend):
        cmodel = model(cynet)
        assert [w.shape for w in cmodel.get_weights()] == [tuple(w.shape) for w in kmodel.get_weights()]
        assert [w.name for w in cmodel.layers[0].weights] == [w.name for w in kmodel.layers[0].weights]
        cmodel.set_weights(kmodel.get_weights())
        _close(cmodel.predict(x, verbose=0), kmodel.predict(x, verbose=0), "predict")
        y = rng.standard_normal((shape[0], 2)).astype(np.float32)
        kmodel.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
        cmodel.compile(optimizer=cynet.optimizers.SGD(learning_rate=0.1), loss="mse")
        _close(cmodel.train_on_batch(x, y), kmodel.train_on_batch(x, y), "train_on_batch loss")
        for c, k, w in zip(cmodel.get_weights(), kmodel.get_weights(), kmodel.weights):
            _close(c, k, f"{w.path} after one SGD step")
        _close(cmodel.predict(x, verbose=0), kmodel.predict(x, verbose=0), "predict after one step")
