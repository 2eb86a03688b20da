"""Shape layers (Identity, RepeatVector, Permute, ZeroPadding1D/2D, Cropping1D/2D, UpSampling1D):
forward against direct NumPy definitions, float64 gradients against central differences, config
round trips, shapes on symbolic inputs, refused arguments and inputs, and (when Keras 3 is
installed) forward equality with Keras."""
import os

import numpy as np
import pytest

import cynet
from cynet import layers
from cynet.testing import check_layer_gradients

F64 = dict(dtype="float64")


@pytest.fixture
def rng():
    return np.random.default_rng(1717)


def _pad_ref(x, widths):
    """Zero padding written out: a larger zero array with x copied into its middle."""
    out = np.zeros(tuple(s + a + b for s, (a, b) in zip(x.shape, widths)), dtype=x.dtype)
    out[tuple(slice(a, a + s) for s, (a, _) in zip(x.shape, widths))] = x
    return out


# (name, make, input shape, reference forward)
CASES = [
    ("identity", lambda: layers.Identity(**F64), (3, 4), lambda x: x),
    ("identity_4d", lambda: layers.Identity(**F64), (2, 3, 2, 2), lambda x: x),
    ("repeat_vector", lambda: layers.RepeatVector(3, **F64), (2, 4),
     lambda x: np.stack([x, x, x], axis=1)),
    ("permute_swap", lambda: layers.Permute((2, 1), **F64), (2, 3, 4), lambda x: x.transpose(0, 2, 1)),
    ("permute_cycle", lambda: layers.Permute((3, 1, 2), **F64), (2, 3, 4, 5), lambda x: x.transpose(0, 3, 1, 2)),
    ("zero_padding1d", lambda: layers.ZeroPadding1D(**F64), (2, 3, 2), lambda x: _pad_ref(x, [(0, 0), (1, 1), (0, 0)])),
    ("zero_padding1d_pair", lambda: layers.ZeroPadding1D((0, 2), **F64), (2, 3, 2),
     lambda x: _pad_ref(x, [(0, 0), (0, 2), (0, 0)])),
    ("zero_padding1d_cf", lambda: layers.ZeroPadding1D((2, 1), data_format="channels_first", **F64), (2, 3, 4),
     lambda x: _pad_ref(x, [(0, 0), (0, 0), (2, 1)])),
    ("zero_padding2d", lambda: layers.ZeroPadding2D(**F64), (2, 3, 2, 2),
     lambda x: _pad_ref(x, [(0, 0), (1, 1), (1, 1), (0, 0)])),
    ("zero_padding2d_sym", lambda: layers.ZeroPadding2D((2, 0), **F64), (2, 3, 2, 2),
     lambda x: _pad_ref(x, [(0, 0), (2, 2), (0, 0), (0, 0)])),
    ("zero_padding2d_full", lambda: layers.ZeroPadding2D(((1, 2), (0, 3)), **F64), (2, 3, 2, 2),
     lambda x: _pad_ref(x, [(0, 0), (1, 2), (0, 3), (0, 0)])),
    ("zero_padding2d_cf", lambda: layers.ZeroPadding2D(((1, 0), (2, 1)), data_format="channels_first", **F64),
     (2, 2, 3, 3), lambda x: _pad_ref(x, [(0, 0), (0, 0), (1, 0), (2, 1)])),
    ("cropping1d", lambda: layers.Cropping1D(**F64), (2, 5, 3), lambda x: x[:, 1:4]),
    ("cropping1d_int", lambda: layers.Cropping1D(2, **F64), (2, 5, 3), lambda x: x[:, 2:3]),
    ("cropping1d_end", lambda: layers.Cropping1D((0, 2), **F64), (2, 5, 3), lambda x: x[:, :3]),
    ("cropping2d_default", lambda: layers.Cropping2D(**F64), (2, 3, 4, 2), lambda x: x),
    ("cropping2d_int", lambda: layers.Cropping2D(1, **F64), (2, 4, 5, 2), lambda x: x[:, 1:3, 1:4]),
    ("cropping2d_sym", lambda: layers.Cropping2D((1, 0), **F64), (2, 4, 5, 2), lambda x: x[:, 1:3]),
    ("cropping2d_full", lambda: layers.Cropping2D(((1, 2), (0, 3)), **F64), (2, 5, 6, 2), lambda x: x[:, 1:3, 0:3]),
    ("cropping2d_cf", lambda: layers.Cropping2D(((0, 1), (2, 0)), data_format="channels_first", **F64), (2, 2, 4, 5),
     lambda x: x[:, :, 0:3, 2:]),
    ("upsampling1d", lambda: layers.UpSampling1D(**F64), (2, 3, 2), lambda x: np.repeat(x, 2, axis=1)),
    ("upsampling1d_3", lambda: layers.UpSampling1D(3, **F64), (2, 4, 3),
     lambda x: np.stack([x[:, t // 3] for t in range(12)], axis=1)),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name, make, shape, reference", CASES, ids=IDS)
def test_forward_matches_numpy(name, make, shape, reference, rng):
    x = rng.standard_normal(shape)
    y = make()(x)
    expected = reference(x)
    assert y.shape == expected.shape and y.dtype == np.float64
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("name, make, shape, reference", CASES, ids=IDS)
def test_gradients(name, make, shape, reference, rng):
    check_layer_gradients(make(), rng.standard_normal(shape))


@pytest.mark.parametrize("name, make, shape, reference", CASES, ids=IDS)
def test_symbolic_shapes(name, make, shape, reference, rng):
    layer = make()
    symbolic = layer(cynet.Input(shape=shape[1:]))
    assert symbolic.shape == layer.compute_output_shape((None,) + shape[1:])
    assert symbolic.shape == (None,) + layer(rng.standard_normal(shape)).shape[1:]


@pytest.mark.parametrize("name, make, shape, reference", CASES, ids=IDS)
def test_config_round_trip(name, make, shape, reference):
    layer = make()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    restored = layers.deserialize(layers.serialize(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def test_float32_and_integer_inputs(rng):
    x = rng.integers(0, 5, (2, 3, 4))
    y = layers.ZeroPadding1D(1)(x)
    assert y.dtype == np.float32 and y.shape == (2, 5, 4)
    np.testing.assert_array_equal(y[:, 1:4], x)


def test_repeat_vector_gradient_sums_repeats():
    layer = layers.RepeatVector(4, **F64)
    layer(np.ones((2, 3)))
    dx = layer.backward(np.ones((2, 4, 3)))
    np.testing.assert_array_equal(dx, np.full((2, 3), 4.0))


def test_upsampling1d_gradient_sums_each_block():
    layer = layers.UpSampling1D(2, **F64)
    layer(np.zeros((1, 2, 1)))
    dx = layer.backward(np.arange(4.0).reshape(1, 4, 1))
    np.testing.assert_array_equal(dx.ravel(), [0 + 1, 2 + 3])


def test_unknown_steps_stay_unknown():
    assert layers.ZeroPadding1D(2)(cynet.Input((None, 3))).shape == (None, None, 3)
    assert layers.UpSampling1D(2)(cynet.Input((None, 3))).shape == (None, None, 3)
    assert layers.Cropping1D(1)(cynet.Input((None, 3))).shape == (None, None, 3)
    assert layers.Cropping2D(1)(cynet.Input((None, 6, 3))).shape == (None, None, 4, 3)
    assert layers.Permute((2, 1))(cynet.Input((None, 3))).shape == (None, 3, None)


def test_layers_train_in_a_model(rng):
    """A Functional model through the shape layers trains (the gradients reach the Dense below)."""
    inputs = cynet.Input((6,))
    h = layers.Dense(4)(inputs)
    h = layers.RepeatVector(5)(h)
    h = layers.ZeroPadding1D((1, 2))(h)
    h = layers.Cropping1D((2, 1))(h)
    h = layers.UpSampling1D(2)(h)
    h = layers.Permute((2, 1))(h)
    h = layers.Identity()(h)
    outputs = layers.Dense(1)(layers.Flatten()(h))
    model = cynet.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    x, y = rng.standard_normal((16, 6)), rng.standard_normal((16, 1))
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, epochs=1, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


# ---------------------------------------------------------------------------- refused arguments and inputs
@pytest.mark.parametrize("make, name", [
    (lambda: layers.RepeatVector(0), "n"),
    (lambda: layers.RepeatVector(2.0), "n"),
    (lambda: layers.RepeatVector(True), "n"),
    (lambda: layers.Permute((1, 3)), "dims"),
    (lambda: layers.Permute((0, 1)), "dims"),
    (lambda: layers.Permute((1, 1)), "dims"),
    (lambda: layers.Permute(()), "dims"),
    (lambda: layers.Permute("12"), "dims"),
    (lambda: layers.Permute(2), "dims"),
    (lambda: layers.ZeroPadding1D(-1), "padding"),
    (lambda: layers.ZeroPadding1D((1, 2, 3)), "padding"),
    (lambda: layers.ZeroPadding1D(1.5), "padding"),
    (lambda: layers.ZeroPadding1D(data_format="NHWC"), "data_format"),
    (lambda: layers.ZeroPadding2D(((1, 2, 3), (0, 0))), "padding"),
    (lambda: layers.ZeroPadding2D((1, 2, 3)), "padding"),
    (lambda: layers.ZeroPadding2D(((-1, 0), (0, 0))), "padding"),
    (lambda: layers.Cropping1D((1, -1)), "cropping"),
    (lambda: layers.Cropping1D("1"), "cropping"),
    (lambda: layers.Cropping2D(-1), "cropping"),
    (lambda: layers.Cropping2D(((0, 0), (0, True))), "cropping"),
    (lambda: layers.Cropping2D(data_format="channels_middle"), "data_format"),
    (lambda: layers.UpSampling1D(0), "size"),
    (lambda: layers.UpSampling1D((2,)), "size"),
])
def test_bad_arguments(make, name):
    with pytest.raises((ValueError, TypeError), match=rf"\b{name}\b"):
        make()


@pytest.mark.parametrize("make, shape, words", [
    (lambda: layers.RepeatVector(2), (2, 3, 4), "2-dimensional"),
    (lambda: layers.Permute((2, 1)), (2, 3), "3-dimensional"),
    (lambda: layers.ZeroPadding2D(1), (2, 3, 4), "4-dimensional"),
    (lambda: layers.Cropping1D((2, 3)), (2, 5, 3), "cropping"),
    (lambda: layers.Cropping1D((2, 3)), (2, 4, 3), "cropping"),
    (lambda: layers.Cropping2D(((1, 1), (0, 0))), (2, 2, 5, 3), "cropping"),
    (lambda: layers.Cropping2D(((0, 0), (3, 0)), data_format="channels_first"), (2, 5, 5, 3), "cropping"),
    (lambda: layers.UpSampling1D(2), (2, 3), "3-dimensional"),
])
def test_bad_inputs_are_refused(make, shape, words):
    with pytest.raises(ValueError, match=words) as real:
        make()(np.zeros(shape))
    assert "inputs" in str(real.value)
    with pytest.raises(ValueError, match=words) as symbolic:
        make()(cynet.Input(shape[1:]))
    layer_name = str(symbolic.value)
    assert any(k in layer_name for k in ("RepeatVector", "Permute", "ZeroPadding2D", "Cropping1D", "Cropping2D",
                                         "UpSampling1D"))


def test_output_too_big_for_memory_is_refused():
    """A view of a few bytes whose repeated or padded output would take petabytes: a ValueError naming
    the inputs, before anything is allocated."""
    tiny = np.broadcast_to(np.zeros((), np.float32), (2 ** 20, 2 ** 10))
    with pytest.raises(ValueError, match="inputs"):
        layers.RepeatVector(2 ** 30)(tiny[:4])
    with pytest.raises(ValueError, match="inputs"):
        layers.ZeroPadding1D((0, 2 ** 30))(np.zeros((2 ** 10, 1, 2 ** 10), np.float32))


def test_config_follows_keras():
    assert layers.ZeroPadding2D(((1, 2), (0, 3))).get_config()["padding"] == [[1, 2], [0, 3]]
    assert layers.ZeroPadding2D(2).get_config()["padding"] == [[2, 2], [2, 2]]
    assert layers.ZeroPadding1D().get_config()["padding"] == [1, 1]
    assert layers.Cropping2D().get_config()["cropping"] == [[0, 0], [0, 0]]
    assert layers.Cropping1D().get_config()["cropping"] == [1, 1]
    assert layers.Permute((2, 1)).get_config()["dims"] == [2, 1]
    assert layers.UpSampling1D().get_config()["size"] == 2
    assert layers.ZeroPadding2D().get_config()["data_format"] == "channels_last"


# ---------------------------------------------------------------------------- against Keras 3
def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3; found {keras.__version__}")
    return keras


pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def test_forward_matches_keras(rng):
    keras = _keras()
    kl = keras.layers
    cases = [
        (layers.Identity(), kl.Identity(), (2, 3)),
        (layers.RepeatVector(3), kl.RepeatVector(3), (2, 4)),
        (layers.Permute((3, 1, 2)), kl.Permute((3, 1, 2)), (2, 3, 4, 5)),
        (layers.ZeroPadding1D((1, 2)), kl.ZeroPadding1D((1, 2)), (2, 3, 4)),
        (layers.ZeroPadding1D(2, data_format="channels_first"), kl.ZeroPadding1D(2, data_format="channels_first"),
         (2, 3, 4)),
        (layers.ZeroPadding2D(((1, 2), (0, 3))), kl.ZeroPadding2D(((1, 2), (0, 3))), (2, 3, 4, 2)),
        (layers.ZeroPadding2D((1, 2), data_format="channels_first"),
         kl.ZeroPadding2D((1, 2), data_format="channels_first"), (2, 2, 3, 4)),
        (layers.Cropping1D((1, 2)), kl.Cropping1D((1, 2)), (2, 6, 3)),
        (layers.Cropping2D(((1, 2), (0, 3))), kl.Cropping2D(((1, 2), (0, 3))), (2, 5, 6, 2)),
        (layers.Cropping2D(1, data_format="channels_first"), kl.Cropping2D(1, data_format="channels_first"),
         (2, 2, 5, 6)),
        (layers.UpSampling1D(3), kl.UpSampling1D(3), (2, 4, 3)),
    ]
    for ours, theirs, shape in cases:
        x = rng.standard_normal(shape).astype(np.float32)
        expected = keras.ops.convert_to_numpy(theirs(x))
        np.testing.assert_allclose(ours(x), expected, rtol=0, atol=0, err_msg=type(ours).__name__)
        assert tuple(theirs.compute_output_shape((None,) + shape[1:])) == ours.compute_output_shape((None,) + shape[1:])
