"""Resizing and the augmentation layers (RandomFlip, RandomRotation, RandomZoom, RandomTranslation,
RandomContrast, RandomBrightness): forward against direct definitions (and, when Keras 3 runs with
the PyTorch backend, against Keras's Resizing and its affine_transform given the same matrices),
seeding, training vs inference, float64 input gradients against central differences (the random
draw held fixed), config round trips, use in a trained model, refused arguments."""
import os

import numpy as np
import pytest

import cynet
from cynet import layers
from cynet.testing import check_layer_gradients

F64 = dict(dtype="float64")
RANDOM = [
    (layers.RandomFlip, dict()),
    (layers.RandomFlip, dict(mode="horizontal")),
    (layers.RandomFlip, dict(mode="vertical")),
    (layers.RandomRotation, dict(factor=0.2)),
    (layers.RandomRotation, dict(factor=(-0.5, 0.1), fill_mode="constant", fill_value=0.5)),
    (layers.RandomRotation, dict(factor=0.3, interpolation="nearest", fill_mode="wrap")),
    (layers.RandomZoom, dict(height_factor=0.3)),
    (layers.RandomZoom, dict(height_factor=(-0.4, -0.1), width_factor=0.5, fill_mode="nearest")),
    (layers.RandomTranslation, dict(height_factor=0.2, width_factor=(-0.3, 0.4))),
    (layers.RandomTranslation, dict(height_factor=0.5, width_factor=0.5, fill_mode="constant")),
    (layers.RandomContrast, dict(factor=0.5)),
    (layers.RandomContrast, dict(factor=(0.2, 0.8), value_range=(0, 1))),
    (layers.RandomBrightness, dict(factor=0.2)),
    (layers.RandomBrightness, dict(factor=(-0.5, 0.5), value_range=(0, 1))),
]
IDS = [f"{cls.__name__}-{i}" for i, (cls, _) in enumerate(RANDOM)]


@pytest.fixture
def rng():
    return np.random.default_rng(31)


def _images(rng, shape=(3, 5, 6, 2), high=255.0):
    return rng.random(shape) * high


def _fixed_draws(layer, seed=5):
    """Make every call of `layer` draw the same transformation (for finite differences)."""
    layer._generator = lambda: np.random.default_rng(seed)
    return layer


# ----------------------------------------------------------------------------- Resizing
def _torch_bilinear_1d(n_in, n_out):
    """The definition: output i reads source coordinate max((i + 0.5) * n_in / n_out - 0.5, 0)."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        s = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
        lo = min(int(np.floor(s)), n_in - 1)
        hi = min(lo + 1, n_in - 1)
        m[i, lo] += 1 - (s - lo)
        m[i, hi] += s - lo
    return m


@pytest.mark.parametrize("hw", [(4, 3), (9, 11), (5, 6), (1, 1)])
def test_resizing_bilinear_definition(hw, rng):
    x = _images(rng)
    y = layers.Resizing(*hw, **F64)(x)
    mh, mw = _torch_bilinear_1d(5, hw[0]), _torch_bilinear_1d(6, hw[1])
    np.testing.assert_allclose(y, np.einsum("oh,nhwc,pw->nopc", mh, x, mw), rtol=1e-12, atol=1e-9)


def test_resizing_nearest_definition(rng):
    x = _images(rng)
    y = layers.Resizing(7, 4, interpolation="nearest", **F64)(x)
    rows = np.minimum(np.floor((np.arange(7) + 0.5) * 5 / 7).astype(int), 4)
    cols = np.minimum(np.floor((np.arange(4) + 0.5) * 6 / 4).astype(int), 5)
    np.testing.assert_array_equal(y, x[:, rows][:, :, cols])


@pytest.mark.parametrize("kwargs", [
    dict(height=3, width=4), dict(height=8, width=9), dict(height=4, width=2, interpolation="nearest"),
    dict(height=3, width=3, crop_to_aspect_ratio=True), dict(height=3, width=3, pad_to_aspect_ratio=True,
                                                             fill_value=2.0),
    dict(height=2, width=7, data_format="channels_first"),
], ids=str)
def test_resizing_gradients_shapes_config(kwargs, rng):
    layer = layers.Resizing(**kwargs, **F64)
    shape = (2, 3, 5, 4) if kwargs.get("data_format") == "channels_first" else (2, 5, 4, 3)
    x = rng.standard_normal(shape)
    check_layer_gradients(layer, x)
    assert layer(x).shape == layer.compute_output_shape(shape)
    assert layer(cynet.Input(shape[1:])).shape == layer.compute_output_shape((None,) + shape[1:])
    config = layer.get_config()
    assert layers.deserialize(layers.serialize(layer)).get_config() == config


def test_resizing_crop_and_pad_boxes(rng):
    x = _images(rng, (1, 4, 8, 1))
    # crop to a square: the central 4 x 4 window, then an identity resize
    np.testing.assert_allclose(layers.Resizing(4, 4, crop_to_aspect_ratio=True, **F64)(x), x[:, :, 2:6])
    # pad to a square: 2 rows of fill_value above and below, then an identity resize
    y = layers.Resizing(8, 8, pad_to_aspect_ratio=True, fill_value=-1.0, **F64)(x)
    np.testing.assert_allclose(y[:, 2:6], x)
    assert (y[:, :2] == -1).all() and (y[:, 6:] == -1).all()


def test_resizing_bad_arguments():
    for kwargs, name in [(dict(height=0, width=2), "height"), (dict(height=2, width="3"), "width"),
                         (dict(height=2, width=2, interpolation="cubic"), "interpolation"),
                         (dict(height=2, width=2, fill_mode="reflect"), "fill_mode"),
                         (dict(height=2, width=2, crop_to_aspect_ratio=1), "crop_to_aspect_ratio"),
                         (dict(height=2, width=2, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True),
                          "pad_to_aspect_ratio"),
                         (dict(height=2, width=2, fill_value="0"), "fill_value"),
                         (dict(height=2, width=2, data_format="NHWC"), "data_format")]:
        with pytest.raises((ValueError, TypeError), match=name):
            layers.Resizing(**kwargs)
    with pytest.raises(NotImplementedError, match="bicubic"):
        layers.Resizing(2, 2, interpolation="bicubic")
    with pytest.raises(NotImplementedError, match="antialias"):
        layers.Resizing(2, 2, antialias=True)
    with pytest.raises(ValueError, match="4-dimensional"):
        layers.Resizing(2, 2)(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="empty images"):
        layers.Resizing(2, 2)(np.zeros((2, 0, 3, 1)))


# ----------------------------------------------------------------------------- random layers
@pytest.mark.parametrize("cls, kwargs", RANDOM, ids=IDS)
def test_identity_at_inference(cls, kwargs, rng):
    x = _images(rng, high=1.0 if "value_range" in kwargs else 255.0)
    layer = cls(**kwargs, seed=1, **F64)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, training=False), x)
    layer(x)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), np.ones_like(x))


@pytest.mark.parametrize("cls, kwargs", RANDOM, ids=IDS)
def test_seeded_runs_repeat_and_draws_vary(cls, kwargs, rng):
    x = _images(rng, (8, 5, 6, 2), high=1.0 if "value_range" in kwargs else 255.0)
    a, b = cls(**kwargs, seed=7), cls(**kwargs, seed=7)
    first = [a(x, training=True) for _ in range(3)]
    second = [b(x, training=True) for _ in range(3)]
    for u, v in zip(first, second):
        np.testing.assert_array_equal(u, v)
    assert not all(np.array_equal(first[0], f) for f in first[1:]), "successive calls draw new transformations"
    assert first[0].shape == x.shape and first[0].dtype == np.float32


@pytest.mark.parametrize("cls, kwargs", RANDOM, ids=IDS)
def test_gradients_with_the_draw_fixed(cls, kwargs, rng):
    layer = _fixed_draws(cls(**kwargs, **F64))
    x = _images(rng, (2, 4, 5, 2), high=1.0 if "value_range" in kwargs else 255.0)
    check_layer_gradients(layer, x, training=True, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls, kwargs", RANDOM, ids=IDS)
def test_config_round_trip_and_symbolic(cls, kwargs):
    layer = cls(**kwargs, seed=3)
    config = layer.get_config()
    restored = layers.deserialize(layers.serialize(layer))
    assert type(restored) is cls and restored.get_config() == config
    assert layer(cynet.Input((5, 6, 3))).shape == (None, 5, 6, 3)


def test_flip_definition(rng):
    x = _images(rng, (6, 3, 4, 2))
    for mode in ("horizontal", "vertical", "horizontal_and_vertical"):
        layer = _fixed_draws(layers.RandomFlip(mode, **F64), seed=11)
        flips = np.random.default_rng(11).uniform(size=6) <= 0.5
        expected = x.copy()
        if mode != "vertical":
            expected[flips] = expected[flips][:, :, ::-1]
        if mode != "horizontal":
            expected[flips] = expected[flips][:, ::-1]
        np.testing.assert_array_equal(layer(x, training=True), expected)
        layer_cf = _fixed_draws(layers.RandomFlip(mode, data_format="channels_first", **F64), seed=11)
        np.testing.assert_array_equal(layer_cf(x.transpose(0, 3, 1, 2), training=True), expected.transpose(0, 3, 1, 2))


def test_contrast_and_brightness_definitions(rng):
    x = _images(rng, (4, 3, 5, 2))
    draw = np.random.default_rng(2)
    f = draw.uniform(1.0 - 0.0, 1.0 + 0.5, size=(4, 1, 1, 1))   # factor=0.5 -> Keras's range (0, 0.5)
    mean = x.mean(axis=(1, 2), keepdims=True)
    expected = np.clip((x - mean) * f + mean, 0, 255)
    np.testing.assert_allclose(_fixed_draws(layers.RandomContrast(0.5, **F64), 2)(x, training=True), expected)
    delta = np.random.default_rng(2).uniform(-0.2, 0.2, size=(4, 1, 1, 1)) * 255
    np.testing.assert_allclose(_fixed_draws(layers.RandomBrightness(0.2, **F64), 2)(x, training=True),
                               np.clip(x + delta, 0, 255))


def test_rotation_by_half_turn_is_a_double_flip():
    """factor=(0.5, 0.5): every image turns by exactly 180 degrees about its centre: pixel (y, x)
    reads (H-1-y, W-1-x), whatever the fill mode."""
    x = np.arange(2 * 3 * 4 * 1, dtype=np.float64).reshape(2, 3, 4, 1)
    for fill_mode in ("reflect", "constant"):
        y = layers.RandomRotation((0.5, 0.5), fill_mode=fill_mode, **F64)(x, training=True)
        np.testing.assert_allclose(y, x[:, ::-1, ::-1], atol=1e-9)


def test_translation_by_whole_pixels_shifts_and_fills():
    x = np.arange(1 * 4 * 5 * 1, dtype=np.float64).reshape(1, 4, 5, 1) + 1
    layer = layers.RandomTranslation((0.5, 0.5), (0.0, 0.0), fill_mode="constant", fill_value=-1.0, **F64)
    y = layer(x, training=True)   # down by 2 rows: rows 0, 1 filled, rows 2, 3 are the old rows 0, 1
    np.testing.assert_allclose(y[0, 2:], x[0, :2])
    assert (y[0, :2] == -1).all()
    y = layers.RandomTranslation((0.5, 0.5), 0.0, fill_mode="wrap", **F64)(x, training=True)
    np.testing.assert_allclose(y[0], np.roll(x[0], 2, axis=0))
    y = layers.RandomTranslation((-0.25, -0.25), 0.0, fill_mode="nearest", **F64)(x, training=True)
    np.testing.assert_allclose(y[0], x[0, [1, 2, 3, 3]])
    y = layers.RandomTranslation((0.5, 0.5), 0.0, fill_mode="reflect", **F64)(x, training=True)
    np.testing.assert_allclose(y[0], x[0, [1, 0, 0, 1]])   # d c b a | a b c d


def test_zoom_factor_zero_is_the_identity(rng):
    x = _images(rng)
    np.testing.assert_allclose(layers.RandomZoom((0.0, 0.0), **F64)(x, training=True), x, atol=1e-9)


@pytest.mark.parametrize("cls, kwargs, name", [
    (layers.RandomFlip, dict(mode="diagonal"), "mode"),
    (layers.RandomFlip, dict(seed=-1), "seed"),
    (layers.RandomRotation, dict(factor=1.5), "factor"),
    (layers.RandomRotation, dict(factor=(0.1, 0.2, 0.3)), "factor"),
    (layers.RandomRotation, dict(factor="0.1"), "factor"),
    (layers.RandomRotation, dict(factor=0.1, fill_mode="mirror"), "fill_mode"),
    (layers.RandomRotation, dict(factor=0.1, interpolation="bicubic"), "interpolation"),
    (layers.RandomRotation, dict(factor=0.1, fill_value=None), "fill_value"),
    (layers.RandomZoom, dict(height_factor=-1.0), "height_factor"),
    (layers.RandomZoom, dict(height_factor=0.1, width_factor=[2.0, 0.1]), "width_factor"),
    (layers.RandomTranslation, dict(height_factor=0.1, width_factor=None), "width_factor"),
    (layers.RandomTranslation, dict(height_factor=float("nan"), width_factor=0.1), "height_factor"),
    (layers.RandomContrast, dict(factor=-0.5), "factor"),
    (layers.RandomContrast, dict(factor=0.5, value_range=(0,)), "value_range"),
    (layers.RandomBrightness, dict(factor=2.0), "factor"),
    (layers.RandomBrightness, dict(factor=0.2, value_range="0-255"), "value_range"),
])
def test_bad_arguments(cls, kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        cls(**kwargs)


def test_augmentation_in_a_trained_model(rng):
    model = cynet.Sequential([cynet.Input((8, 8, 1)), layers.RandomFlip(seed=1), layers.RandomRotation(0.1, seed=2),
                              layers.RandomZoom(0.1, seed=3), layers.RandomTranslation(0.1, 0.1, seed=4),
                              layers.RandomContrast(0.2, seed=5), layers.RandomBrightness(0.1, seed=6),
                              layers.Resizing(6, 6), layers.Rescaling(1 / 255), layers.Flatten(),
                              layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = rng.integers(0, 256, (16, 8, 8, 1)).astype(np.uint8)
    model.fit(x, rng.integers(0, 2, 16), epochs=2, verbose=0)
    p1, p2 = model.predict(x, verbose=0), model.predict(x, verbose=0)
    np.testing.assert_array_equal(p1, p2)   # no augmentation at inference
    assert p1.shape == (16, 2)


# ----------------------------------------------------------------------------- Keras
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3") or keras.backend.backend() != "torch":
        pytest.skip("needs Keras 3 with the PyTorch backend")
    return keras


def test_resizing_matches_keras(rng):
    keras = _keras()
    x = (rng.random((2, 7, 9, 3)) * 255).astype(np.float32)
    for kwargs in [dict(height=4, width=5), dict(height=11, width=13),
                   dict(height=4, width=13, interpolation="nearest"), dict(height=11, width=3, interpolation="nearest"),
                   dict(height=5, width=5, crop_to_aspect_ratio=True),
                   dict(height=5, width=5, pad_to_aspect_ratio=True, fill_value=3.0),
                   dict(height=9, width=4, pad_to_aspect_ratio=True),
                   dict(height=3, width=8, crop_to_aspect_ratio=True)]:
        ours = layers.Resizing(**kwargs)(x)
        theirs = keras.ops.convert_to_numpy(keras.layers.Resizing(**kwargs)(x))
        np.testing.assert_allclose(ours / 255, theirs / 255, rtol=0, atol=1e-5, err_msg=str(kwargs))
    xf = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    np.testing.assert_allclose(layers.Resizing(4, 6, data_format="channels_first")(xf) / 255,
                               keras.ops.convert_to_numpy(keras.layers.Resizing(4, 6, data_format="channels_first")(xf))
                               / 255, atol=1e-5)


@pytest.mark.parametrize("cls, kwargs", [(layers.RandomRotation, dict(factor=0.3)),
                                         (layers.RandomZoom, dict(height_factor=0.4, width_factor=(-0.5, 0.3))),
                                         (layers.RandomTranslation, dict(height_factor=0.3, width_factor=0.5))],
                         ids=["rotation", "zoom", "translation"])
def test_affine_layers_match_keras_affine_transform(cls, kwargs, rng):
    """Given our drawn matrices, Keras's own affine_transform (PyTorch backend) gives our images."""
    _keras()
    import torch
    from keras.src.backend.torch.image import affine_transform
    x = (rng.random((2, 7, 9, 3)) * 255).astype(np.float32)
    for fill_mode in ("reflect", "wrap", "constant", "nearest"):
        for interpolation in ("bilinear", "nearest"):
            layer = cls(**kwargs, fill_mode=fill_mode, interpolation=interpolation, fill_value=2.0, seed=3)
            ours = layer(x, training=True)
            m = layer._matrices(np.random.default_rng(3), 2, 7, 9)
            m8 = np.concatenate([m, np.zeros((2, 2))], axis=1).astype(np.float32)
            theirs = affine_transform(torch.tensor(x), torch.tensor(m8), interpolation=interpolation,
                                      fill_mode=fill_mode, fill_value=2.0, data_format="channels_last").numpy()
            np.testing.assert_allclose(ours / 255, theirs / 255, atol=1e-5, err_msg=f"{fill_mode} {interpolation}")


def test_keras_factor_rules(rng):
    keras = _keras()
    for ours, theirs in [(layers.RandomContrast(0.3), keras.layers.RandomContrast(0.3)),
                         (layers.RandomContrast((0.1, 0.4)), keras.layers.RandomContrast((0.1, 0.4))),
                         (layers.RandomBrightness(0.3), keras.layers.RandomBrightness(0.3)),
                         (layers.RandomRotation((0.2, -0.1)), keras.layers.RandomRotation((0.2, -0.1)))]:
        assert tuple(ours.factor) == pytest.approx(tuple(theirs.factor))
