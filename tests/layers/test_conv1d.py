"""Conv1D (valid / same / causal, strides, dilation, groups, channels_first), Conv2D(groups=...),
MaxPooling1D and AveragePooling1D: forward against a direct definition, float64 gradients
against central differences on both kernel backends, the two backends against each other,
config round trips, symbolic shapes, refused arguments, and the Keras 3 oracle (predict and
one SGD step with copied weights)."""
import importlib.util
import pathlib

import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet import layers
from cynet.testing import assert_twins_close, check_layer_gradients

# the Keras oracle helper beside this file (pytest's importlib mode puts no test directory on sys.path)
_spec = importlib.util.spec_from_file_location("_conv_oracle", pathlib.Path(__file__).with_name("_conv_oracle.py"))
_oracle = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_oracle)
check_against_keras = _oracle.check_against_keras

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def _conv1d_direct(x, kernel, bias, stride, padding, dilation, groups):
    """Conv1D by its definition (channels_last, float64): out[n, t, f] = sum over the window."""
    N, L, C = x.shape
    k, cg, F = kernel.shape
    ek = (k - 1) * dilation + 1
    if padding == "causal":
        left, right = ek - 1, 0
    elif padding == "same":
        out = -(-L // stride)
        total = max((out - 1) * stride + ek - L, 0)
        left, right = total // 2, total - total // 2
    else:
        left = right = 0
    xp = np.pad(x, ((0, 0), (left, right), (0, 0)))
    OL = (L + left + right - ek) // stride + 1
    fg = F // groups
    y = np.zeros((N, OL, F))
    for t in range(OL):
        for j in range(k):
            xs = xp[:, t * stride + j * dilation, :]
            for g in range(groups):
                y[:, t, g * fg:(g + 1) * fg] += xs[:, g * cg:(g + 1) * cg] @ kernel[j, :, g * fg:(g + 1) * fg]
    return y + (0 if bias is None else bias)


CONV1D_CASES = [
    ("valid", dict(filters=4, kernel_size=3), (2, 9, 3)),
    ("same_stride2", dict(filters=3, kernel_size=4, strides=2, padding="same"), (2, 9, 2)),
    ("causal", dict(filters=2, kernel_size=3, padding="causal"), (2, 7, 3)),
    ("causal_dilated", dict(filters=2, kernel_size=3, padding="causal", dilation_rate=2), (2, 8, 2)),
    ("groups", dict(filters=4, kernel_size=2, groups=2), (2, 6, 4)),
    ("groups_same_strided", dict(filters=6, kernel_size=3, groups=3, strides=2, padding="same"), (2, 7, 3)),
    ("no_bias_relu", dict(filters=3, kernel_size=1, use_bias=False, activation="tanh"), (3, 5, 2)),
]
IDS = [c[0] for c in CONV1D_CASES]


def _built(cls, kwargs, shape, rng, dtype="float64"):
    layer = cls(dtype=dtype, **kwargs)
    layer(np.zeros(shape))
    layer.set_weights([rng.normal(scale=0.5, size=w.shape) for w in layer.get_weights()])
    return layer


@pytest.mark.parametrize("name, kwargs, shape", CONV1D_CASES, ids=IDS)
@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_conv1d_forward_matches_definition(name, kwargs, shape, fmt, rng, backend):
    layer = _built(layers.Conv1D, dict(kwargs, data_format=fmt), shape if fmt == "channels_last"
                   else (shape[0], shape[2], shape[1]), rng)
    x = rng.normal(size=shape)
    kernel = layer.kernel.numpy()
    bias = layer.bias.numpy() if layer.use_bias else None
    ref = _conv1d_direct(x, kernel, bias, layer.strides[0], layer.padding, layer.dilation_rate[0], layer.groups)
    ref = layer.activation(ref) if layer.activation is not cynet.activations.linear else ref
    if fmt == "channels_last":
        y = layer(x)
    else:
        y = layer(np.ascontiguousarray(x.transpose(0, 2, 1))).transpose(0, 2, 1)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    assert layer.kernel.shape == (layer.kernel_size[0], shape[2] // layer.groups, layer.filters)


@pytest.mark.parametrize("name, kwargs, shape", CONV1D_CASES, ids=IDS)
def test_conv1d_gradients(name, kwargs, shape, rng, backend):
    check_layer_gradients(_built(layers.Conv1D, kwargs, shape, rng), rng.normal(size=shape))


@pytest.mark.parametrize("kwargs, shape", [
    (dict(filters=4, kernel_size=3, groups=2, padding="same"), (2, 5, 6, 4)),
    (dict(filters=6, kernel_size=(2, 3), groups=3, strides=2, data_format="channels_first"), (2, 3, 6, 7)),
])
def test_conv2d_groups_gradients_and_definition(kwargs, shape, rng, backend):
    layer = _built(layers.Conv2D, kwargs, shape, rng)
    check_layer_gradients(layer, rng.normal(size=shape))
    # the definition: each group is an ordinary convolution of its channels with its filters
    x = rng.normal(size=shape)
    G, fmt = layer.groups, layer.data_format
    axis = 3 if fmt == "channels_last" else 1
    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    cg, fg = kernel.shape[2], layer.filters // G
    parts = [K.conv2d_forward(np.take(x, range(g * cg, (g + 1) * cg), axis=axis),
                              np.ascontiguousarray(kernel[..., g * fg:(g + 1) * fg]), bias[g * fg:(g + 1) * fg],
                              strides=layer.strides, padding=layer.padding, data_format=fmt) for g in range(G)]
    np.testing.assert_allclose(layer(x), np.concatenate(parts, axis=axis), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls, kwargs, shape", [
    (layers.Conv1D, dict(filters=4, kernel_size=3, padding="causal", dilation_rate=2, groups=2), (3, 9, 4)),
    (layers.Conv2D, dict(filters=6, kernel_size=3, padding="same", groups=3, strides=2), (2, 7, 6, 3)),
    (layers.MaxPooling1D, dict(pool_size=3, strides=2, padding="same"), (2, 9, 3)),
    (layers.AveragePooling1D, dict(pool_size=3, strides=2, padding="same"), (2, 9, 3)),
], ids=["conv1d", "conv2d_groups", "max_pool1d", "avg_pool1d"])
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


# ----------------------------------------------------------------------------- pooling

def _pool1d_direct(x, pool, stride, padding, op):
    N, L, C = x.shape
    if padding == "same":
        out = -(-L // stride)
        total = max((out - 1) * stride + pool - L, 0)
        left = total // 2
    else:
        out, left = (L - pool) // stride + 1, 0
    y = np.empty((N, out, C))
    for t in range(out):
        lo, hi = max(t * stride - left, 0), min(t * stride - left + pool, L)
        y[:, t] = op(x[:, lo:hi], axis=1)
    return y


POOL_CASES = [(2, None, "valid"), (3, 1, "valid"), (3, 2, "same"), (2, 3, "same"), ((4,), [2], "VALID")]


@pytest.mark.parametrize("pool, strides, padding", POOL_CASES)
@pytest.mark.parametrize("cls, op", [(layers.MaxPooling1D, np.max), (layers.AveragePooling1D, np.mean)],
                         ids=["max", "avg"])
def test_pool1d_forward_and_gradients(cls, op, pool, strides, padding, rng, backend):
    layer = cls(pool_size=pool, strides=strides, padding=padding, dtype="float64")
    x = rng.normal(size=(2, 9, 3))
    p = pool[0] if isinstance(pool, tuple) else pool
    s = p if strides is None else (strides[0] if isinstance(strides, list) else strides)
    np.testing.assert_allclose(layer(x), _pool1d_direct(x, p, s, padding.lower(), op), rtol=1e-12)
    check_layer_gradients(layer, x)
    first = cls(pool_size=pool, strides=strides, padding=padding, data_format="channels_first", dtype="float64")
    np.testing.assert_allclose(first(x.transpose(0, 2, 1)).transpose(0, 2, 1), layer(x), rtol=1e-12)


# ----------------------------------------------------------------------------- shapes, config, arguments

@pytest.mark.parametrize("cls, kwargs, sample, expected", [
    (layers.Conv1D, dict(filters=5, kernel_size=3, padding="causal", dilation_rate=2), (None, 4), (None, None, 5)),
    (layers.Conv1D, dict(filters=5, kernel_size=3, strides=2), (11, 4), (None, 5, 5)),
    (layers.Conv1D, dict(filters=4, kernel_size=3, padding="same", data_format="channels_first", groups=2),
     (2, 9), (None, 4, 9)),
    (layers.Conv2D, dict(filters=6, kernel_size=3, groups=2), (8, 8, 4), (None, 6, 6, 6)),
    (layers.MaxPooling1D, dict(pool_size=2), (9, 3), (None, 4, 3)),
    (layers.AveragePooling1D, dict(pool_size=3, strides=1, padding="same", data_format="channels_first"),
     (3, 9), (None, 3, 9)),
])
def test_symbolic_shapes_and_config(cls, kwargs, sample, expected, rng):
    layer = cls(**kwargs)
    out = layer(cynet.Input(sample))
    assert out.shape == expected == layer.compute_output_shape((None,) + sample)
    concrete = tuple(7 if s is None else s for s in sample)
    y = layer(rng.normal(size=(2,) + concrete).astype(np.float32))
    assert y.shape == layer.compute_output_shape((2,) + concrete)
    config = layer.get_config()
    assert cls.from_config(config).get_config() == config
    restored = layers.deserialize(layers.serialize(layer))
    assert type(restored) is cls and restored.get_config() == config


def test_conv1d_config_matches_keras_names():
    config = layers.Conv1D(4, 3).get_config()
    for key, value in dict(filters=4, kernel_size=[3], strides=[1], padding="valid", data_format="channels_last",
                           dilation_rate=[1], groups=1, use_bias=True, kernel_constraint=None,
                           bias_constraint=None).items():
        assert config[key] == value, key
    assert layers.MaxPooling1D().get_config()["pool_size"] == [2]
    assert layers.AveragePooling1D(3).get_config()["strides"] == [3]


@pytest.mark.parametrize("cls, kwargs, name", [
    (layers.Conv1D, dict(filters=0, kernel_size=3), "filters"),
    (layers.Conv1D, dict(filters=2, kernel_size=(3, 3)), "kernel_size"),
    (layers.Conv1D, dict(filters=2, kernel_size=3, padding="full"), "padding"),
    (layers.Conv1D, dict(filters=2, kernel_size=3, strides=0), "strides"),
    (layers.Conv1D, dict(filters=2, kernel_size=3, dilation_rate=1.5), "dilation_rate"),
    (layers.Conv1D, dict(filters=3, kernel_size=3, groups=2), "groups"),
    (layers.Conv1D, dict(filters=2, kernel_size=3, groups=0), "groups"),
    (layers.Conv1D, dict(filters=2, kernel_size=3, kernel_constraint=3), "kernel_constraint"),
    (layers.Conv1D, dict(filters=2, kernel_size=3, data_format="NCW"), "data_format"),
    (layers.Conv2D, dict(filters=2, kernel_size=3, padding="causal"), "padding"),
    (layers.Conv2D, dict(filters=4, kernel_size=3, groups=3), "groups"),
    (layers.MaxPooling1D, dict(pool_size=0), "pool_size"),
    (layers.MaxPooling1D, dict(pool_size=(2, 2)), "pool_size"),
    (layers.AveragePooling1D, dict(strides=-1), "strides"),
    (layers.AveragePooling1D, dict(padding="causal"), "padding"),
])
def test_bad_arguments(cls, kwargs, name):
    with pytest.raises((ValueError, TypeError), match=rf"\b{name}\b"):
        cls(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="groups"):
        layers.Conv1D(4, 3, groups=2)(np.zeros((2, 9, 3), np.float32))      # 3 channels in 2 groups
    with pytest.raises(ValueError, match="inputs"):
        layers.Conv1D(4, 3)(np.zeros((2, 9, 3, 1), np.float32))
    with pytest.raises(ValueError, match="inputs"):
        layers.Conv1D(4, 5)(np.zeros((2, 3, 3), np.float32))                 # window longer than the steps
    layer = layers.Conv1D(4, 3)
    layer(np.zeros((2, 9, 3), np.float32))
    with pytest.raises(ValueError, match="inputs"):
        layer(np.zeros((2, 9, 2), np.float32))                               # other channel count
    with pytest.raises(ValueError, match="inputs"):
        layers.MaxPooling1D(4)(np.zeros((2, 3, 3), np.float32))


def test_causal_output_depends_only_on_the_past(rng):
    layer = layers.Conv1D(3, 4, padding="causal", dilation_rate=2, dtype="float64")
    x = rng.normal(size=(1, 12, 2))
    y = layer(x)
    x2 = x.copy()
    x2[:, 7:] += 1.0
    np.testing.assert_array_equal(layer(x2)[:, :7], y[:, :7])
    assert not np.allclose(layer(x2)[:, 7:], y[:, 7:])


# ----------------------------------------------------------------------------- Keras 3 oracle

@pytest.mark.parametrize("layer_cls, kwargs, shape", [
    ("Conv1D", dict(filters=4, kernel_size=3), (3, 10, 2)),
    ("Conv1D", dict(filters=4, kernel_size=3, padding="causal", activation="relu"), (3, 10, 2)),
    ("Conv1D", dict(filters=4, kernel_size=3, padding="causal", dilation_rate=2), (3, 10, 2)),
    ("Conv1D", dict(filters=4, kernel_size=4, padding="same", strides=2), (3, 11, 2)),
    ("Conv1D", dict(filters=6, kernel_size=3, groups=3, padding="same"), (3, 8, 6)),
    ("Conv1D", dict(filters=4, kernel_size=3, data_format="channels_first", groups=2), (3, 4, 9)),
    ("Conv2D", dict(filters=4, kernel_size=3, groups=2, padding="same"), (2, 6, 6, 4)),
    ("Conv2D", dict(filters=6, kernel_size=(2, 3), groups=3, strides=2, data_format="channels_first"), (2, 3, 7, 7)),
    ("MaxPooling1D", dict(pool_size=3, strides=2, padding="same"), (3, 9, 2)),
    ("MaxPooling1D", dict(pool_size=2, data_format="channels_first"), (3, 2, 9)),
    ("AveragePooling1D", dict(pool_size=3, strides=2, padding="same"), (3, 9, 2)),
    ("AveragePooling1D", dict(pool_size=2, strides=1), (3, 9, 2)),
])
def test_matches_keras(layer_cls, kwargs, shape, rng):
    check_against_keras(layer_cls, kwargs, shape, rng)
