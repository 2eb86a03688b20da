"""Conv2DTranspose and Conv1DTranspose: Keras's kernel layout (k..., filters, in_channels) and
output sizes, float64 gradients against central differences on both kernel backends, the two
backends against each other, config round trips, symbolic shapes, refused arguments, and the
Keras 3 oracle (predict and one SGD step with copied weights) with strides, output_padding,
dilation and channels_first."""
import importlib.util
import pathlib

import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet import layers
from cynet.testing import assert_twins_close, check_layer_gradients

_spec = importlib.util.spec_from_file_location("_conv_oracle", pathlib.Path(__file__).with_name("_conv_oracle.py"))
_oracle = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_oracle)
check_against_keras = _oracle.check_against_keras

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

CASES_2D = [
    ("valid", dict(filters=3, kernel_size=3), (2, 4, 5, 2)),
    ("same_s2", dict(filters=2, kernel_size=3, strides=2, padding="same"), (2, 3, 4, 3)),
    ("valid_s2_op1", dict(filters=2, kernel_size=(3, 2), strides=2, output_padding=1), (2, 3, 3, 2)),
    ("same_op", dict(filters=2, kernel_size=4, strides=(3, 2), padding="same", output_padding=(2, 0)), (1, 3, 3, 2)),
    ("dilated", dict(filters=2, kernel_size=3, dilation_rate=2, padding="same", activation="tanh"), (2, 4, 4, 2)),
    ("first_nobias", dict(filters=3, kernel_size=2, strides=2, data_format="channels_first", use_bias=False),
     (2, 2, 3, 3)),
]
CASES_1D = [
    ("valid", dict(filters=3, kernel_size=3), (2, 5, 2)),
    ("same_s3_op2", dict(filters=2, kernel_size=4, strides=3, padding="same", output_padding=2), (2, 4, 3)),
    ("first", dict(filters=2, kernel_size=3, strides=2, data_format="channels_first"), (2, 3, 4)),
    ("dilated", dict(filters=2, kernel_size=2, dilation_rate=3), (2, 4, 2)),
]


def _built(cls, kwargs, shape, rng, dtype="float64"):
    layer = cls(dtype=dtype, **kwargs)
    layer(np.zeros(shape))
    layer.set_weights([rng.normal(scale=0.5, size=w.shape) for w in layer.get_weights()])
    return layer


@pytest.mark.parametrize("cls, kwargs, shape", [(layers.Conv2DTranspose,) + c[1:] for c in CASES_2D]
                         + [(layers.Conv1DTranspose,) + c[1:] for c in CASES_1D],
                         ids=[f"2d_{c[0]}" for c in CASES_2D] + [f"1d_{c[0]}" for c in CASES_1D])
def test_gradients_and_kernel_layout(cls, kwargs, shape, rng, backend):
    layer = _built(cls, kwargs, shape, rng)
    channels = shape[1] if layer.data_format == "channels_first" else shape[-1]
    assert layer.kernel.shape == layer.kernel_size + (layer.filters, channels)
    assert [w.shape for w in layer.get_weights()] == [layer.kernel.shape] + ([(layer.filters,)] if layer.use_bias
                                                                             else [])
    check_layer_gradients(layer, rng.normal(size=shape))


@pytest.mark.parametrize("name, kwargs, shape", CASES_1D, ids=[c[0] for c in CASES_1D])
def test_conv1d_transpose_is_a_height_1_conv2d_transpose(name, kwargs, shape, rng, backend):
    layer = _built(layers.Conv1DTranspose, kwargs, shape, rng)
    x = rng.normal(size=shape)
    first = layer.data_format == "channels_first"
    kw = dict(strides=(1,) + layer.strides, padding=layer.padding, dilation_rate=(1,) + layer.dilation_rate,
              output_padding=None if layer.output_padding is None else (0,) + layer.output_padding,
              data_format=layer.data_format)
    y2 = K.conv2d_transpose_forward(np.expand_dims(x, 2 if first else 1), layer.kernel.numpy()[None],
                                    layer.bias.numpy(), **kw)
    np.testing.assert_allclose(layer(x), y2[:, :, 0] if first else y2[:, 0], rtol=1e-12)


@pytest.mark.parametrize("cls, kwargs, shape", [
    (layers.Conv2DTranspose, dict(filters=4, kernel_size=3, strides=2, padding="same"), (2, 5, 4, 3)),
    (layers.Conv1DTranspose, dict(filters=4, kernel_size=3, strides=2, output_padding=1), (3, 6, 2)),
], ids=["2d", "1d"])
def test_backends_agree(cls, kwargs, shape, rng, dtype):
    x = rng.normal(size=shape).astype(dtype)
    layer = _built(cls, kwargs, shape, rng, dtype=dtype.name)
    dy = rng.normal(size=layer.compute_output_shape(shape)).astype(dtype)
    out = {}
    for name in ("cython", "numpy"):
        with K.use_backend(name):
            y = layer(x)
            dx = layer.backward(dy)
            out[name] = [y, dx] + [np.array(v.grad) for v in layer.trainable_weights]
    assert_twins_close(out["cython"], out["numpy"], dtype)


@pytest.mark.parametrize("cls, kwargs, sample, expected", [
    (layers.Conv2DTranspose, dict(filters=5, kernel_size=3, strides=2, padding="same"), (8, 8, 3), (None, 16, 16, 5)),
    (layers.Conv2DTranspose, dict(filters=5, kernel_size=3, strides=2), (None, 8, 3), (None, None, 17, 5)),
    (layers.Conv2DTranspose, dict(filters=5, kernel_size=2, strides=3, data_format="channels_first"),
     (3, 4, 4), (None, 5, 12, 12)),
    (layers.Conv1DTranspose, dict(filters=4, kernel_size=3, strides=2, output_padding=1), (7, 2), (None, 16, 4)),
    (layers.Conv1DTranspose, dict(filters=4, kernel_size=3, padding="same", data_format="channels_first"),
     (2, None), (None, 4, None)),
])
def test_symbolic_shapes_and_config(cls, kwargs, sample, expected, rng):
    layer = cls(**kwargs)
    out = layer(cynet.Input(sample))
    assert out.shape == expected == layer.compute_output_shape((None,) + sample)
    concrete = tuple(6 if s is None else s for s in sample)
    y = layer(rng.normal(size=(2,) + concrete).astype(np.float32))
    assert y.shape == layer.compute_output_shape((2,) + concrete)
    config = layer.get_config()
    assert cls.from_config(config).get_config() == config
    restored = layers.deserialize(layers.serialize(layer))
    assert type(restored) is cls and restored.get_config() == config
    assert config["output_padding"] == (None if "output_padding" not in kwargs else [kwargs["output_padding"]])


@pytest.mark.parametrize("cls, kwargs, name", [
    (layers.Conv2DTranspose, dict(filters=0, kernel_size=3), "filters"),
    (layers.Conv2DTranspose, dict(filters=2, kernel_size=(3, 3, 3)), "kernel_size"),
    (layers.Conv2DTranspose, dict(filters=2, kernel_size=3, padding="causal"), "padding"),
    (layers.Conv2DTranspose, dict(filters=2, kernel_size=3, strides=2, output_padding=2), "output_padding"),
    (layers.Conv2DTranspose, dict(filters=2, kernel_size=3, output_padding=(0, 0, 0)), "output_padding"),
    (layers.Conv2DTranspose, dict(filters=2, kernel_size=3, output_padding=-1), "output_padding"),
    (layers.Conv2DTranspose, dict(filters=2, kernel_size=3, bias_constraint="no_such"), "bias_constraint"),
    (layers.Conv1DTranspose, dict(filters=2, kernel_size=3, padding="causal"), "padding"),
    (layers.Conv1DTranspose, dict(filters=2, kernel_size=3, strides=(2, 2)), "strides"),
    (layers.Conv1DTranspose, dict(filters=2, kernel_size=3, output_padding=1), "output_padding"),
    (layers.Conv1DTranspose, dict(filters=2, kernel_size=3, dilation_rate=0), "dilation_rate"),
])
def test_bad_arguments(cls, kwargs, name):
    with pytest.raises((ValueError, TypeError), match=rf"\b{name}\b"):
        cls(**kwargs)


def test_bad_inputs():
    layer = layers.Conv2DTranspose(4, 3)
    with pytest.raises(ValueError, match="inputs"):
        layer(np.zeros((2, 5, 3), np.float32))
    layer(np.zeros((2, 5, 5, 3), np.float32))
    with pytest.raises(ValueError, match="inputs"):
        layer(np.zeros((2, 5, 5, 2), np.float32))
    with pytest.raises(ValueError, match="empty"):
        layers.Conv1DTranspose(2, 2, padding="same", output_padding=0, strides=1)(np.zeros((2, 1, 3), np.float32))


def test_trains_in_a_model(rng):
    """An encoder-decoder: Conv2D with strides, then Conv2DTranspose back to the input size."""
    model = cynet.Sequential([cynet.Input((8, 8, 1)), layers.Conv2D(4, 3, strides=2, padding="same",
                                                                    activation="relu"),
                              layers.Conv2DTranspose(1, 3, strides=2, padding="same")])
    model.compile(optimizer="adam", loss="mse")
    x = rng.normal(size=(16, 8, 8, 1)).astype(np.float32)
    assert model.predict(x, verbose=0).shape == x.shape
    first = model.evaluate(x, x, verbose=0)
    model.fit(x, x, epochs=20, batch_size=8, verbose=0)
    assert model.evaluate(x, x, verbose=0) < first


@pytest.mark.parametrize("layer_cls, kwargs, shape", [
    ("Conv2DTranspose", dict(filters=3, kernel_size=3), (2, 4, 5, 2)),
    ("Conv2DTranspose", dict(filters=3, kernel_size=3, strides=2, padding="same", activation="relu"), (2, 4, 4, 2)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=(3, 4), strides=(2, 3), output_padding=(1, 2)), (2, 3, 3, 2)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=4, strides=3, padding="same", output_padding=1), (2, 3, 3, 2)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=3, dilation_rate=2, padding="same"), (2, 4, 4, 2)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=3, strides=2, data_format="channels_first"), (2, 3, 4, 4)),
    ("Conv1DTranspose", dict(filters=3, kernel_size=3, strides=2), (3, 6, 2)),
    ("Conv1DTranspose", dict(filters=3, kernel_size=4, strides=3, padding="same", output_padding=2), (3, 5, 2)),
    ("Conv1DTranspose", dict(filters=2, kernel_size=3, dilation_rate=2), (3, 5, 2)),
    ("Conv1DTranspose", dict(filters=2, kernel_size=3, strides=2, padding="same", data_format="channels_first"),
     (3, 2, 5)),
])
def test_matches_keras(layer_cls, kwargs, shape, rng):
    check_against_keras(layer_cls, kwargs, shape, rng)
