"""Mixed precision (cynet.mixed_precision, cynet.dtype_policies) and the layers under it.

Under mixed_bfloat16 the layers' variables and arrays stay float32 and their matrix products take
bfloat16-rounded inputs with float32 accumulation. Checked here: the policy API as Keras 3 spells
it; Dense and the convolutions against the float32 layer fed bfloat16-rounded inputs and weights
(the same products: only the float32 summation order differs); every affected layer's output and
gradients against float32 within bfloat16's tolerance, on the compiled kernels (native and
emulated paths) and the NumPy twin; mixed_float16 = float32 exactly; a training run under the
policy reaching float32's accuracy; configs and .keras files keeping the policy."""
import contextlib

import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet import _config, dtype_policies, layers, mixed_precision
from cynet.kernels import bf16

PATHS = (["emulated"] + (["avx512_bf16"] if bf16.native_available() else [])
         + (["amx"] if bf16.amx_available() else []))


@pytest.fixture(autouse=True)
def _reset_policy():
    yield
    _config.set_value("dtype_policy", None)


@contextlib.contextmanager
def bf16_path(p):
    old = bf16.set_bf16_path(p)
    try:
        yield
    finally:
        bf16.set_bf16_path(old)


def rounded(a):
    return K.round_bf16(a)


# ----------------------------------------------------------------------------- the API

def test_policy_names_and_dtypes():
    p = mixed_precision.DTypePolicy("mixed_bfloat16")
    assert (p.name, p.compute_dtype, p.variable_dtype) == ("mixed_bfloat16", "bfloat16", "float32")
    q = dtype_policies.DTypePolicy("mixed_float16")
    assert (q.compute_dtype, q.variable_dtype) == ("float16", "float32")
    assert dtype_policies.DTypePolicy("float64").compute_dtype == "float64"
    assert repr(p) == '<DTypePolicy "mixed_bfloat16">' and p == mixed_precision.Policy("mixed_bfloat16") != q
    with pytest.raises(NotImplementedError, match="mixed_bfloat16"):
        dtype_policies.DTypePolicy("bfloat16")
    with pytest.raises(NotImplementedError):
        dtype_policies.DTypePolicy("float16")
    with pytest.raises(ValueError, match="dtype policy"):
        dtype_policies.DTypePolicy("int8")
    with pytest.raises(TypeError, match="name"):
        dtype_policies.DTypePolicy(3)
    with pytest.raises(NotImplementedError, match="loss scaling"):
        mixed_precision.LossScaleOptimizer(None)


def test_global_policy_and_layer_properties():
    assert mixed_precision.global_policy().name == "float32"
    mixed_precision.set_global_policy("mixed_bfloat16")
    assert mixed_precision.global_policy() == dtype_policies.DTypePolicy("mixed_bfloat16")
    assert cynet.config.dtype_policy().name == "mixed_bfloat16"
    d = layers.Dense(3)
    assert d.dtype_policy.name == "mixed_bfloat16" and d.compute_dtype == "bfloat16"
    assert d.variable_dtype == "float32" and d.dtype == np.float32
    d.build((None, 4))
    assert d.kernel.value.dtype == np.float32
    assert d(np.ones((2, 4))).dtype == np.float32
    assert layers.Dense(2, dtype="float32").dtype_policy.name == "float32"
    mixed_precision.set_global_policy(mixed_precision.DTypePolicy("float32"))
    assert layers.Dense(2).compute_dtype == "float32"
    with pytest.raises(ValueError, match="policy"):
        mixed_precision.set_global_policy(3)
    with pytest.raises(ValueError, match="mixed_bfloat16"):
        layers.Dense(2, dtype="int32")
    with pytest.raises(ValueError, match="set_global_policy"):
        cynet.config.set_floatx("mixed_bfloat16")


def test_dtype_argument_forms_and_config_round_trip():
    ser = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_bfloat16"},
           "registered_name": None}
    assert dtype_policies.serialize("mixed_bfloat16") == ser
    assert dtype_policies.deserialize(ser).name == "mixed_bfloat16"
    for form in ("mixed_bfloat16", ser, mixed_precision.DTypePolicy("mixed_bfloat16")):
        d = layers.Dense(3, dtype=form)
        assert d.dtype_policy.name == "mixed_bfloat16"
        config = d.get_config()
        assert config["dtype"] == "mixed_bfloat16"
        assert layers.Dense.from_config(config).dtype_policy.name == "mixed_bfloat16"
    assert layers.Dense(2, dtype=np.float64).dtype_policy.name == "float64"


def test_keras_file_keeps_the_policy(tmp_path):
    pytest.importorskip("h5py")
    model = cynet.Sequential([cynet.Input((4,)), layers.Dense(3, dtype="mixed_bfloat16"), layers.Dense(2)])
    path = str(tmp_path / "m.keras")
    model.save(path)
    back = cynet.models.load_model(path)
    assert back.layers[0].dtype_policy.name == "mixed_bfloat16"
    assert back.layers[1].dtype_policy.name == "float32"
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


# ----------------------------------------------------------------------------- the layers

def _pair(make, x_shape, seed=0):
    """(layer under mixed_bfloat16, the same layer in float32 with the same weights, x)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(np.float32)
    mixed, plain = make("mixed_bfloat16"), make("float32")
    mixed(x)
    plain(x)
    plain.set_weights(mixed.get_weights())
    return mixed, plain, x


PRODUCT_LAYERS = {   # layers whose only products multiply their input by their kernel
    "dense": (lambda dt: layers.Dense(7, dtype=dt), (5, 33)),
    "dense3d": (lambda dt: layers.Dense(4, dtype=dt), (2, 3, 17)),
    "conv2d": (lambda dt: layers.Conv2D(5, 3, padding="same", dtype=dt), (2, 6, 7, 3)),
    "conv2d_strided": (lambda dt: layers.Conv2D(4, (2, 3), strides=2, dilation_rate=1, dtype=dt), (2, 9, 8, 3)),
    "conv2d_groups": (lambda dt: layers.Conv2D(4, 3, groups=2, dtype=dt), (1, 5, 5, 4)),
    "conv1d": (lambda dt: layers.Conv1D(6, 3, padding="causal", dilation_rate=2, dtype=dt), (2, 11, 3)),
    # a plain relu runs inside the bfloat16 convolution's kernel (epilogue and per-block gradient)
    "conv2d_relu": (lambda dt: layers.Conv2D(5, 3, padding="same", activation="relu", dtype=dt), (2, 6, 7, 3)),
    "conv2d_relu_one_channel": (lambda dt: layers.Conv2D(6, 3, activation="relu", dtype=dt), (3, 8, 9, 1)),
    "conv1d_relu": (lambda dt: layers.Conv1D(6, 3, padding="causal", activation="relu", dtype=dt), (2, 11, 3)),
    "conv2d_transpose": (lambda dt: layers.Conv2DTranspose(3, 3, strides=2, dtype=dt), (2, 4, 5, 2)),
    "conv1d_transpose": (lambda dt: layers.Conv1DTranspose(3, 4, strides=2, padding="same", dtype=dt), (2, 5, 3)),
}


@pytest.mark.parametrize("p", PATHS)
@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("name", sorted(PRODUCT_LAYERS))
def test_forward_is_the_float32_layer_on_rounded_values(name, backend, p):
    make, shape = PRODUCT_LAYERS[name]
    mixed, plain, x = _pair(make, shape)
    plain.set_weights([rounded(w) if w.ndim > 1 else w for w in mixed.get_weights()])
    with K.use_backend(backend), bf16_path(p):
        got = mixed(x)
        want = plain(rounded(x))
    assert got.dtype == np.float32
    scale = np.abs(want).max() + 1e-6
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * scale)
    assert not np.allclose(got, plain(x), rtol=0, atol=1e-7 * scale)   # (the rounding did happen)


def _grads(layer, x, g):
    dx = layer.backward(g)
    return [dx] + [v.grad for v in layer.trainable_weights]


# (the ReLU layers are left out: where bfloat16 moves a logit across 0, the ReLU's gradient there
# changes by the whole upstream gradient, so a norm tolerance would judge the ReLU, not the
# products; test_fused_relu_is_the_layer_then_relu checks them)
ALL_LAYERS = dict({k: v for k, v in PRODUCT_LAYERS.items() if "relu" not in k}, **{
    "separable_conv2d": (lambda dt: layers.SeparableConv2D(5, 3, depth_multiplier=2, dtype=dt), (2, 6, 7, 3)),
    "separable_conv1d": (lambda dt: layers.SeparableConv1D(4, 3, padding="same", dtype=dt), (2, 9, 3)),
    "mha": (lambda dt: layers.MultiHeadAttention(2, 4, dtype=dt), (2, 5, 6)),
    "attention": (lambda dt: layers.Attention(use_scale=True, dtype=dt), (2, 5, 6)),
})


def _call(layer, x):
    if isinstance(layer, layers.MultiHeadAttention):
        return layer(x, x)
    if isinstance(layer, layers.Attention):
        return layer([x, x])
    return layer(x)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("name", sorted(ALL_LAYERS))
def test_outputs_and_gradients_within_bf16_tolerance(name, backend):
    """Every affected layer: output and every gradient (input and weights) close to float32's in
    norm (bfloat16 keeps 8 significant bits: about 0.4% per rounded value), and not equal to them."""
    make, shape = ALL_LAYERS[name]
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    mixed, plain = make("mixed_bfloat16"), make("float32")
    _call(mixed, x)
    _call(plain, x)
    plain.set_weights(mixed.get_weights())
    with K.use_backend(backend):
        ym, yp = _call(mixed, x), _call(plain, x)
        g = rng.standard_normal(ym.shape).astype(np.float32)
        gm = _grads(mixed, x, g)
        gp = _grads(plain, x, g)
    if isinstance(gm[0], list):
        gm, gp = gm[0] + gm[1:], gp[0] + gp[1:]
    assert ym.dtype == np.float32 and all(a.dtype == np.float32 for a in gm if a is not None)
    assert np.linalg.norm(ym - yp) <= 2e-2 * np.linalg.norm(yp)
    assert not np.array_equal(ym, yp)
    scale = max(np.linalg.norm(b) for b in gp if b is not None)
    for a, b in zip(gm, gp):
        if b is None:
            continue
        # (a gradient that is zero in exact arithmetic, as MHA's key bias, is judged on the others' scale)
        assert np.linalg.norm(a - b) <= 3e-2 * max(np.linalg.norm(b), 0.05 * scale), name


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("name", ["conv2d_relu", "conv2d_relu_one_channel", "conv1d_relu"])
def test_fused_relu_is_the_layer_then_relu(name, backend):
    """A Conv layer with activation="relu" under the policy (the ReLU fused into the kernel) gives
    what the same layer without activation followed by cynet's relu gives, forward and backward."""
    make, shape = PRODUCT_LAYERS[name]
    fused = make("mixed_bfloat16")
    linear = type(fused).from_config({**fused.get_config(), "activation": "linear"})
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(np.float32)
    with K.use_backend(backend):
        y = fused(x)
        assert fused._fuses_relu()
        linear(x)
        linear.set_weights(fused.get_weights())
        z = linear(x)
        np.testing.assert_array_equal(y, K.relu_forward(z))
        g = rng.standard_normal(y.shape).astype(np.float32)
        got = _grads(fused, x, g)
        want = _grads(linear, x, K.relu_backward(g, y))
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * np.abs(b).max())


@pytest.mark.parametrize("p", PATHS)
@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_separable_pointwise_product_is_bf16(backend, p):
    """SeparableConv2D under the policy: the depthwise step in float32 (no matrix product), the
    pointwise product on bfloat16-rounded inputs (the depthwise output and the pointwise kernel)."""
    x = np.random.default_rng(6).standard_normal((2, 7, 6, 3)).astype(np.float32)
    layer = layers.SeparableConv2D(5, 3, depth_multiplier=2, dtype="mixed_bfloat16")
    with K.use_backend(backend), bf16_path(p):
        y = layer(x)
        mid = K.depthwise_conv2d_forward(x, layer.depthwise_kernel.value, None)
    want = rounded(mid).astype(np.float64) @ rounded(layer.pointwise_kernel.value[0, 0]).astype(np.float64)
    want += layer.bias.value
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-5 * np.abs(want).max())
    plain = mid.astype(np.float64) @ layer.pointwise_kernel.value[0, 0] + layer.bias.value
    assert not np.allclose(y, plain, rtol=0, atol=1e-7 * np.abs(want).max())


def test_relu_fuses_only_under_bf16_products():
    x = np.random.default_rng(0).standard_normal((2, 5, 5, 2)).astype(np.float32)
    for policy, groups, act, fuses in [("mixed_bfloat16", 1, "relu", True), ("float32", 1, "relu", False),
                                       ("mixed_bfloat16", 2, "relu", False), ("mixed_bfloat16", 1, "tanh", False),
                                       ("mixed_float16", 1, "relu", False)]:
        layer = layers.Conv2D(4, 3, groups=groups, activation=act, dtype=policy)
        layer(x)
        assert layer._fuses_relu() == fuses, (policy, groups, act)
    leaky = layers.Conv2D(4, 3, activation=type(cynet.activations.get("relu"))(negative_slope=0.1),
                          dtype="mixed_bfloat16")
    leaky(x)
    assert not leaky._fuses_relu()   # (only the plain relu is fused)


def test_dense_gradients_are_the_rounded_products():
    """Dense's backward products: dkernel = round(x)^T round(g), dx = round(g) round(kernel)^T."""
    mixed, _, x = _pair(PRODUCT_LAYERS["dense"][0], (9, 33))
    g = np.random.default_rng(2).standard_normal((9, 7)).astype(np.float32)
    mixed(x)
    dx = mixed.backward(g)
    r = lambda a: rounded(a).astype(np.float64)  # noqa: E731
    np.testing.assert_allclose(mixed.kernel.grad, r(x).T @ r(g), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, r(g) @ r(mixed.kernel.value).T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mixed.bias.grad, g.sum(0), rtol=1e-5)


def test_mixed_float16_computes_as_float32():
    for make, shape in PRODUCT_LAYERS.values():
        half, plain, x = _pair(lambda dt, make=make: make("mixed_float16" if dt == "mixed_bfloat16" else dt), shape)
        assert half.compute_dtype == "float16" and half.dtype == np.float32
        np.testing.assert_array_equal(half(x), plain(x))


def test_float64_policy_is_unaffected():
    d = layers.Dense(3, dtype="float64")
    x = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_allclose(d(x), x @ d.kernel.value + d.bias.value, rtol=1e-12)


# ----------------------------------------------------------------------------- training

def _blobs(n, rng, centers):
    y = rng.integers(0, 4, n)
    return (centers[y] + rng.standard_normal((n, 20))).astype(np.float32), y


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_training_under_the_policy_reaches_float32_accuracy(kind):
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((4, 20)) * 0.6   # overlapping classes: accuracy below 1
    x, y = _blobs(600, rng, centers)
    xt, yt = _blobs(300, rng, centers)
    if kind == "cnn":
        x, xt = x.reshape(-1, 4, 5, 1), xt.reshape(-1, 4, 5, 1)
    accs = {}
    for policy in ("float32", "mixed_bfloat16"):
        mixed_precision.set_global_policy(policy)
        cynet.utils.set_random_seed(0) if hasattr(cynet.utils, "set_random_seed") else None
        if kind == "mlp":
            model = cynet.Sequential([cynet.Input((20,)), layers.Dense(32, activation="relu"), layers.Dense(4)])
        else:
            model = cynet.Sequential([cynet.Input((4, 5, 1)), layers.Conv2D(8, 3, padding="same", activation="relu"),
                                      layers.Flatten(), layers.Dense(4)])
        assert model.layers[0].compute_dtype == ("bfloat16" if policy == "mixed_bfloat16" else "float32")
        model.compile(optimizer="adam", loss=cynet.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        model.fit(x, y, epochs=5, batch_size=32, verbose=0)
        accs[policy] = model.evaluate(xt, yt, verbose=0)[1]
    assert accs["float32"] > 0.7
    assert accs["mixed_bfloat16"] >= accs["float32"] - 0.02, accs
