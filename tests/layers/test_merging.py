"""Merge layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot): forward
against NumPy definitions, float64 gradients against central differences (broadcasting cases
included), Keras's shape rules and errors, config round trips, and (when Keras 3 is installed)
forward against Keras."""
import numpy as np
import pytest

from cynet import layers, tape
from cynet.testing import numerical_gradient


@pytest.fixture
def rng():
    return np.random.default_rng(20240516)


def _keras_expand(xs):
    """Keras's rank alignment: new size-1 axes after the batch axis."""
    nd = max(x.ndim for x in xs)
    return [x.reshape(x.shape[:1] + (1,) * (nd - x.ndim) + x.shape[1:]) for x in xs]


def _as_list(grads, n):
    # Layer.backward returns a list for a merge layer, one gradient per input, even for one input
    assert isinstance(grads, list) and len(grads) == n
    return grads


def check_merge_gradients(layer, xs, rtol=1e-6, atol=1e-8, seed=0):
    """layer.backward against central differences of sum(layer(xs) * g), for every input."""
    xs = [np.array(x, dtype=np.float64, copy=True) for x in xs]
    y = layer(xs)
    g = np.random.default_rng(seed).standard_normal(y.shape)

    def loss():
        return float(np.sum(layer(xs) * g))

    layer(xs)
    grads = _as_list(layer.backward(g), len(xs))
    assert len(grads) == len(xs)
    for i, (x, dx) in enumerate(zip(xs, grads)):
        assert dx.shape == x.shape, f"input {i}: gradient shape {dx.shape} != input shape {x.shape}"
        assert dx.dtype == np.float64
        np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=rtol, atol=atol,
                                   err_msg=f"{layer.name}: gradient of input {i}")
    return grads


def _distinct(rng, *shapes):
    """Inputs whose values are all distinct and at least 1e-3 apart (finite differences never
    cross a tie of Maximum / Minimum)."""
    total = sum(int(np.prod(s)) for s in shapes)
    values = rng.permutation(total).astype(np.float64) / total * 4 - 2
    out, start = [], 0
    for s in shapes:
        n = int(np.prod(s))
        out.append(values[start:start + n].reshape(s))
        start += n
    return out


# ------------------------------------------------------------------------------ gradient checks
ELEMWISE = {
    "add": (layers.Add, lambda xs: sum(xs[1:], xs[0])),
    "subtract": (layers.Subtract, lambda xs: xs[0] - xs[1]),
    "multiply": (layers.Multiply, lambda xs: np.prod(np.broadcast_arrays(*xs), axis=0)),
    "average": (layers.Average, lambda xs: sum(xs[1:], xs[0]) / len(xs)),
    "maximum": (layers.Maximum, lambda xs: np.max(np.broadcast_arrays(*xs), axis=0)),
    "minimum": (layers.Minimum, lambda xs: np.min(np.broadcast_arrays(*xs), axis=0)),
}

SHAPE_CASES = [
    ("same2", [(3, 4), (3, 4)]),
    ("same3_3d", [(2, 3, 4), (2, 3, 4), (2, 3, 4)]),
    ("broadcast_size1", [(3, 4), (3, 1)]),
    ("broadcast_rank", [(2, 3, 4), (2, 4)]),
    ("broadcast_column", [(3,), (3, 4)]),           # a (batch,) input is a column (Keras's expand_dims(x, 1))
    ("broadcast3", [(2, 1, 4), (2, 3, 1), (2, 4)]),
    ("one_input", [(3, 4)]),
]


def _cases():
    for name, (cls, _) in ELEMWISE.items():
        for case, shapes in SHAPE_CASES:
            n = len(shapes)
            if name == "subtract" and n != 2:
                continue
            yield pytest.param(name, shapes, id=f"{name}-{case}")


@pytest.mark.parametrize("name,shapes", list(_cases()))
def test_elementwise_forward_and_gradients(name, shapes, rng):
    cls, reference = ELEMWISE[name]
    xs = _distinct(rng, *shapes)
    layer = cls(dtype="float64")
    y = layer(xs)
    np.testing.assert_allclose(y, reference(_keras_expand(xs)), rtol=1e-12, atol=1e-12)
    assert (None,) + y.shape[1:] == layer.compute_output_shape([(None,) + s[1:] for s in shapes])
    check_merge_gradients(layer, xs)


def test_multiply_gradient_with_zeros(rng):
    xs = [rng.standard_normal((3, 4)) for _ in range(3)]
    xs[0][0, :2] = 0.0
    xs[1][0, 1:3] = 0.0   # two zero factors at [0, 1]: every input's gradient is 0 there
    grads = check_merge_gradients(layers.Multiply(dtype="float64"), xs)
    assert [g[0, 1] for g in grads] == [0.0, 0.0, 0.0]
    assert grads[0][0, 0] != 0.0 and grads[1][0, 0] == 0.0 and grads[2][0, 0] == 0.0   # one zero factor (x0)


# Maximum / Minimum: the gradient of each element goes to the FIRST input holding the extreme
# value (TensorFlow's maximum gradient folded over the inputs as Keras folds them).
@pytest.mark.parametrize("cls", [layers.Maximum, layers.Minimum])
def test_extremum_ties_go_to_the_first_input(cls):
    a = np.array([[1.0, 2.0, 3.0, 5.0]])
    b = np.array([[1.0, 0.0, 3.0, 5.0]])
    c = np.array([[1.0, 2.0, 0.0, 5.0]])
    if cls is layers.Minimum:
        a, b, c = -a, -b, -c
    layer = cls(dtype="float64")
    layer([a, b, c])
    g = np.array([[1.0, 2.0, 3.0, 4.0]])
    ga, gb, gc = layer.backward(g)
    np.testing.assert_array_equal(ga, g)         # a holds (or ties for) the extreme everywhere
    np.testing.assert_array_equal(gb, np.zeros_like(g))
    np.testing.assert_array_equal(gc, np.zeros_like(g))
    # and the sum of the routed gradients is the output gradient wherever there is a tie
    layer([b, c, a])
    gb, gc, ga = layer.backward(g)
    np.testing.assert_array_equal(gb, [[1.0, 0.0, 3.0, 4.0]])
    np.testing.assert_array_equal(gc, [[0.0, 2.0, 0.0, 0.0]])
    np.testing.assert_array_equal(ga, [[0.0, 0.0, 0.0, 0.0]])


def test_maximum_tie_with_broadcast_input():
    a = np.array([[2.0], [0.0]])              # (2, 1): broadcast over 3 columns
    b = np.array([[2.0, 1.0, 3.0], [0.0, -1.0, 1.0]])
    layer = layers.Maximum(dtype="float64")
    y = layer([a, b])
    np.testing.assert_array_equal(y, [[2.0, 2.0, 3.0], [0.0, 0.0, 1.0]])
    ga, gb = layer.backward(np.ones((2, 3)))
    np.testing.assert_array_equal(ga, [[2.0], [2.0]])   # the ties and the wins, summed over the columns
    np.testing.assert_array_equal(gb, [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])


def test_maximum_nan_propagates_and_takes_the_gradient():
    a = np.array([[1.0, np.nan]])
    b = np.array([[np.nan, 0.0]])
    layer = layers.Maximum(dtype="float64")
    y = layer([a, b])
    assert np.isnan(y).all()
    ga, gb = layer.backward(np.ones((1, 2)))
    np.testing.assert_array_equal(ga, [[0.0, 1.0]])
    np.testing.assert_array_equal(gb, [[1.0, 0.0]])


# ------------------------------------------------------------------------------- Concatenate
CONCAT_CASES = [
    ("last", -1, [(2, 3), (2, 4)]),
    ("last3_3d", -1, [(2, 3, 1), (2, 3, 4), (2, 3, 2)]),
    ("axis1_3d", 1, [(2, 1, 4), (2, 3, 4), (2, 2, 4)]),
    ("axis2_4d", 2, [(2, 3, 1, 2), (2, 3, 2, 2)]),
    ("neg2_4d", -2, [(2, 3, 4, 2), (2, 3, 1, 2), (2, 3, 2, 2)]),
    ("batch_axis", 0, [(2, 3), (1, 3)]),
    ("one_input", -1, [(2, 3)]),
]


@pytest.mark.parametrize("axis,shapes", [c[1:] for c in CONCAT_CASES], ids=[c[0] for c in CONCAT_CASES])
def test_concatenate(axis, shapes, rng):
    xs = [rng.standard_normal(s) for s in shapes]
    layer = layers.Concatenate(axis=axis, dtype="float64")
    y = layer(xs)
    np.testing.assert_array_equal(y, np.concatenate(xs, axis=axis))
    expected = layer.compute_output_shape([(None,) + s[1:] for s in shapes])
    assert expected[1:] == y.shape[1:]
    check_merge_gradients(layer, xs)
    np.testing.assert_array_equal(layers.concatenate(xs, axis=axis), np.concatenate(xs, axis=axis).astype("float32"))


def test_concatenate_output_shape_unknown_sizes():
    layer = layers.Concatenate(axis=1)
    assert layer.compute_output_shape([(None, 3, 4), (None, 2, 4)]) == (None, 5, 4)
    assert layer.compute_output_shape([(None, None, 4), (None, 2, 4)]) == (None, None, 4)
    assert layer.compute_output_shape([(None, 3, None), (None, 2, 4)]) == (None, 5, 4)


# ----------------------------------------------------------------------------------------- Dot
def _dot_reference(x, y, axes, normalize=False):
    ax, ay = (axes, axes) if isinstance(axes, int) else axes
    ax, ay = ax % x.ndim, ay % y.ndim
    if normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=ax, keepdims=True), 1e-7)
        y = y / np.maximum(np.linalg.norm(y, axis=ay, keepdims=True), 1e-7)
    out = np.stack([np.tensordot(x[b], y[b], axes=(ax - 1, ay - 1)) for b in range(x.shape[0])])
    return out.reshape(x.shape[0], 1) if out.ndim == 1 else out


DOT_CASES = [
    ("2d_axes1", 1, (3, 4), (3, 4)),
    ("2d_neg", -1, (3, 4), (3, 4)),
    ("3d_pair", (1, 2), (2, 3, 5), (2, 4, 3)),       # Keras's docstring example: (2, 5, 4)
    ("3d_last", -1, (2, 3, 4), (2, 5, 4)),
    ("3d_mixed_neg", (-1, 1), (2, 3, 4), (2, 4, 5)),
    ("2d_3d", (1, 2), (2, 4), (2, 3, 4)),
    ("3d_2d", (2, 1), (2, 3, 4), (2, 4)),
    ("4d_3d", (2, 1), (2, 3, 4, 2), (2, 4, 5)),
    ("4d_4d", (3, 2), (2, 3, 2, 4), (2, 2, 4, 3)),
]


@pytest.mark.parametrize("normalize", [False, True], ids=["plain", "normalize"])
@pytest.mark.parametrize("axes,s1,s2", [c[1:] for c in DOT_CASES], ids=[c[0] for c in DOT_CASES])
def test_dot(axes, s1, s2, normalize, rng):
    x, y = rng.standard_normal(s1), rng.standard_normal(s2)
    layer = layers.Dot(axes=axes, normalize=normalize, dtype="float64")
    out = layer([x, y])
    np.testing.assert_allclose(out, _dot_reference(x, y, axes, normalize), rtol=1e-12, atol=1e-12)
    assert out.shape == layer.compute_output_shape([s1, s2])
    assert (None,) + out.shape[1:] == layer.compute_output_shape([(None,) + s1[1:], (None,) + s2[1:]])
    check_merge_gradients(layer, [x, y])


def test_dot_keras_docstring_example():
    x = np.arange(10).reshape(1, 5, 2)
    y = np.arange(10, 20).reshape(1, 2, 5)
    out = layers.Dot(axes=(1, 2))([x, y])
    np.testing.assert_array_equal(out, [[[260, 360], [320, 445]]])
    assert out.dtype == np.float32


def test_dot_normalize_is_cosine_similarity(rng):
    x, y = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    out = layers.dot([x, y], axes=1, normalize=True, dtype="float64")
    cos = np.sum(x * y, axis=1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
    np.testing.assert_allclose(out[:, 0], cos, rtol=1e-12)


def test_dot_normalize_zero_vector_has_finite_gradient():
    x = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]])
    y = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    layer = layers.Dot(axes=1, normalize=True, dtype="float64")
    out = layer([x, y])
    assert out[0, 0] == 0.0
    gx, gy = layer.backward(np.ones((2, 1)))
    assert np.isfinite(gx).all() and np.isfinite(gy).all()
    # below the norm floor, x / 1e-7 is linear: its gradient is y_normalized / 1e-7
    np.testing.assert_allclose(gx[0], y[0] / np.linalg.norm(y[0]) / 1e-7, rtol=1e-12)
    np.testing.assert_array_equal(gy[0], 0.0)
    # finite differences that stay below the floor (steps of 1e-10 around a norm of 1e-9)
    x = x + np.array([[1e-9, -5e-10, 0.0], [0.0, 0.0, 0.0]])
    layer([x, y])
    gx, _ = layer.backward(np.ones((2, 1)))
    num = numerical_gradient(lambda: float(np.sum(layer([x, y]))), x, eps=1e-10)
    np.testing.assert_allclose(gx[0], num[0], rtol=1e-5)


def test_dot_empty_batch_and_zero_length_axis():
    layer = layers.Dot(axes=(2, 1), dtype="float64")
    out = layer([np.zeros((0, 3, 4)), np.zeros((0, 4, 5))])
    assert out.shape == (0, 3, 5)
    out = layer([np.zeros((2, 3, 0)), np.zeros((2, 0, 5))])
    np.testing.assert_array_equal(out, np.zeros((2, 3, 5)))
    gx, gy = layer.backward(np.ones((2, 3, 5)))
    assert gx.shape == (2, 3, 0) and gy.shape == (2, 0, 5)


# ------------------------------------------------------------------------- shapes and dtypes
def test_elementwise_output_shapes_follow_keras():
    add = layers.Add()
    assert add.compute_output_shape([(None, 3, 4), (None, 4)]) == (None, 3, 4)
    assert add.compute_output_shape([(None, 1, 4), (None, 3, 1)]) == (None, 3, 4)
    assert add.compute_output_shape([(None,), (None, 3)]) == (None, 3)
    assert add.compute_output_shape([(None, None, 4), (None, 3, 4)]) == (None, None, 4)
    assert add.compute_output_shape([(5, 3), (None, 3)]) == (5, 3)
    with pytest.raises(ValueError, match="incompatible shapes"):
        add.compute_output_shape([(None, 3), (None, 4)])
    with pytest.raises(ValueError, match="different batch sizes"):
        add.compute_output_shape([(5, 3), (4, 3)])


def test_inputs_are_converted_to_the_layer_dtype():
    y = layers.Add()([np.array([[1, 2]], dtype=np.int64), np.array([[True, False]])])
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [[2.0, 2.0]])
    y = layers.Multiply(dtype="float64")([np.ones((2, 3), np.float32), np.full((2, 3), 2.0, np.float32)])
    assert y.dtype == np.float64
    y = layers.Concatenate()([np.ones((2, 1), np.float64), [[1], [2]]])
    assert y.dtype == np.float32 and y.shape == (2, 2)


def test_float32_outputs_and_gradients(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 1))
    for layer, xs in [(layers.Add(), [a, b]), (layers.Subtract(), [a, b]), (layers.Multiply(), [a, b, a]),
                      (layers.Average(), [a, b]), (layers.Maximum(), [a, b]), (layers.Minimum(), [b, a]),
                      (layers.Concatenate(), [a, b]), (layers.Dot(axes=1, normalize=True), [a, a])]:
        y = layer(xs)
        assert y.dtype == np.float32
        grads = layer.backward(np.ones_like(y))
        assert [g.dtype for g in grads] == [np.float32] * len(xs)
        assert [g.shape for g in grads] == [x.shape for x in xs]


def test_single_input_returns_a_new_array():
    x = np.ones((2, 3), np.float32)
    for cls in (layers.Add, layers.Multiply, layers.Average, layers.Maximum, layers.Minimum, layers.Concatenate):
        y = cls()([x])
        assert y is not x
        np.testing.assert_array_equal(y, x)


def test_training_flag_has_no_effect(rng):
    xs = [rng.standard_normal((2, 3)) for _ in range(2)]
    for layer in (layers.Add(), layers.Maximum(), layers.Concatenate(), layers.Dot(axes=1)):
        np.testing.assert_array_equal(layer(xs, training=True), layer(xs, training=False))


def test_functional_forms_match_the_layers(rng):
    a, b, c = (rng.standard_normal((3, 4)) for _ in range(3))
    for fn, cls in [(layers.add, layers.Add), (layers.multiply, layers.Multiply), (layers.average, layers.Average),
                    (layers.maximum, layers.Maximum), (layers.minimum, layers.Minimum),
                    (layers.concatenate, layers.Concatenate)]:
        np.testing.assert_array_equal(fn([a, b, c], dtype="float64"), cls(dtype="float64")([a, b, c]))
    np.testing.assert_array_equal(layers.subtract([a, b]), layers.Subtract()([a, b]))
    np.testing.assert_array_equal(layers.dot([a, b]), layers.Dot(axes=-1)([a, b]))   # Keras's default axes=-1
    np.testing.assert_array_equal(layers.concatenate([a, b], 0), np.concatenate([a, b], 0).astype("float32"))


def test_merge_on_the_tape_with_shared_input(rng):
    """Two Dense branches of one input, merged: the input gradient is the sum over both paths and
    each Dense gets its weight gradient."""
    x = rng.standard_normal((4, 3))
    d1, d2 = layers.Dense(5, dtype="float64"), layers.Dense(5, activation="tanh", dtype="float64")
    merge = layers.Multiply(dtype="float64")
    g = rng.standard_normal((4, 5))

    def loss():
        with tape.recording(tape.Tape()):
            return float(np.sum(merge([d1(x), d2(x)]) * g))

    t = tape.Tape()
    with tape.recording(t):
        y = merge([d1(x), d2(x)])
    (dx,) = t.backward([(y, g)], [x])
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)
    for layer in (d1, d2):
        for v in layer.trainable_weights:
            analytic = np.array(v.grad, copy=True)
            np.testing.assert_allclose(analytic, numerical_gradient(loss, v.value), rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------------------------- errors
def test_bad_input_counts():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        layers.Subtract()([x, x, x])
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        layers.Subtract()([x])
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        layers.Dot(axes=1)([x])
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        layers.dot([x, x, x], axes=1)
    with pytest.raises(ValueError, match="exactly 2"):
        layers.Subtract().compute_output_shape([(None, 3)] * 3)
    for cls in (layers.Add, layers.Concatenate, layers.Maximum):
        with pytest.raises(TypeError, match="list"):
            cls()([])
        with pytest.raises(TypeError, match="list"):
            cls()(x)


def test_bad_elementwise_shapes():
    with pytest.raises(ValueError, match=r"Add 'my_add'.*incompatible shapes"):
        layers.Add(name="my_add")([np.ones((2, 3)), np.ones((2, 4))])
    with pytest.raises(ValueError, match="incompatible shapes"):
        layers.Maximum()([np.ones((2, 3, 4)), np.ones((2, 3))])    # (3, 4) vs (3,): aligned right, 4 != 3
    with pytest.raises(ValueError, match="different batch sizes"):
        layers.Multiply()([np.ones((2, 3)), np.ones((3, 3))])
    with pytest.raises(ValueError, match="different batch sizes"):   # no broadcasting over the batch axis
        layers.Add()([np.ones((1, 3)), np.ones((3, 3))])


def test_bad_concatenate():
    with pytest.raises(ValueError, match="matching shapes except for the concatenation axis"):
        layers.Concatenate()([np.ones((2, 3)), np.ones((2, 3, 1))][:1] + [np.ones((3, 3))])
    with pytest.raises(ValueError, match="matching shapes except"):
        layers.Concatenate(axis=1)([np.ones((2, 3, 4)), np.ones((2, 3, 5))])
    with pytest.raises(ValueError, match="same rank"):
        layers.Concatenate()([np.ones((2, 3)), np.ones((2, 3, 1))])
    with pytest.raises(ValueError, match="not an axis"):
        layers.Concatenate(axis=2)([np.ones((2, 3)), np.ones((2, 3))])
    with pytest.raises(ValueError, match="not an axis"):
        layers.Concatenate(axis=-3)([np.ones((2, 3)), np.ones((2, 3))])
    with pytest.raises(ValueError, match="axis must be an integer"):
        layers.Concatenate(axis=1.0)
    with pytest.raises(ValueError, match="axis must be an integer"):
        layers.Concatenate(axis=True)


def test_bad_dot():
    with pytest.raises(TypeError, match="axes"):
        layers.Dot(axes="1")
    with pytest.raises(ValueError, match="two elements"):
        layers.Dot(axes=(1, 2, 3))
    with pytest.raises(ValueError, match="integers"):
        layers.Dot(axes=(1.0, 2))
    with pytest.raises(TypeError, match="normalize"):
        layers.Dot(axes=1, normalize="yes")
    with pytest.raises(ValueError, match="axis 0"):
        layers.Dot(axes=0)([np.ones((2, 3)), np.ones((2, 3))])
    with pytest.raises(ValueError, match="axis 0"):
        layers.Dot(axes=(1, -2))([np.ones((2, 3)), np.ones((2, 3))])
    with pytest.raises(ValueError, match=r"axis values 3 \(at axis 1\) != 4"):
        layers.Dot(axes=1)([np.ones((2, 3)), np.ones((2, 4))])
    with pytest.raises(ValueError, match="out of range"):
        layers.Dot(axes=2)([np.ones((2, 3)), np.ones((2, 3))])
    with pytest.raises(ValueError, match="different batch sizes"):
        layers.Dot(axes=1)([np.ones((2, 3)), np.ones((3, 3))])
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        layers.Dot(axes=-1)([np.ones((2,)), np.ones((2,))])
    with pytest.raises(ValueError, match="axis values"):
        layers.Dot(axes=1).compute_output_shape([(None, 3), (None, 4)])


# ------------------------------------------------------------------------------------- config
CONFIG_CASES = [
    lambda: layers.Add(name="a1"), lambda: layers.Subtract(), lambda: layers.Multiply(dtype="float64"),
    lambda: layers.Average(), lambda: layers.Maximum(), lambda: layers.Minimum(trainable=False),
    lambda: layers.Concatenate(axis=1), lambda: layers.Concatenate(),
    lambda: layers.Dot(axes=1), lambda: layers.Dot(axes=(1, -1), normalize=True), lambda: layers.Dot(axes=[2, 1]),
]


@pytest.mark.parametrize("make", CONFIG_CASES)
def test_config_round_trip(make):
    layer = make()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    restored = layers.deserialize(layers.serialize(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def test_config_keys_follow_keras():
    assert layers.Concatenate().get_config()["axis"] == -1
    config = layers.Dot(axes=(1, 2), normalize=True).get_config()
    assert list(config["axes"]) == [1, 2] and config["normalize"] is True
    assert layers.Dot(axes=-1).get_config()["axes"] == -1
    assert layers.Dot(axes=1).get_config()["normalize"] is False


# ---------------------------------------------------------------------------- against Keras 3
def test_forward_matches_keras(rng):
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3; found {keras.__version__}")
    kl = keras.layers
    a, b, c = (rng.standard_normal((2, 3, 4)).astype(np.float32) for _ in range(3))
    col = rng.standard_normal((2, 4)).astype(np.float32)
    cases = [
        (layers.Add(), kl.Add(), [a, b, c]),
        (layers.Add(), kl.Add(), [a, col]),
        (layers.Subtract(), kl.Subtract(), [a, b]),
        (layers.Multiply(), kl.Multiply(), [a, b, c]),
        (layers.Average(), kl.Average(), [a, b, c]),
        (layers.Maximum(), kl.Maximum(), [a, b, c]),
        (layers.Minimum(), kl.Minimum(), [a, col]),
        (layers.Multiply(), kl.Multiply(), [col[:, 0].copy(), col]),   # (batch,) with (batch, 4): a column
        (layers.Maximum(), kl.Maximum(), [a[:, :1], b]),
        (layers.Concatenate(axis=1), kl.Concatenate(axis=1), [a, b]),
        (layers.Concatenate(), kl.Concatenate(), [a, b, c]),
        (layers.Dot(axes=(1, 1)), kl.Dot(axes=(1, 1)), [a, b]),
        (layers.Dot(axes=-1, normalize=True), kl.Dot(axes=-1, normalize=True), [a, b]),
        (layers.Dot(axes=(2, 1)), kl.Dot(axes=(2, 1)), [a, np.swapaxes(b, 1, 2).copy()]),
    ]
    for ours, theirs, xs in cases:
        expected = keras.ops.convert_to_numpy(theirs(xs))
        np.testing.assert_allclose(ours(xs), expected, rtol=1e-5, atol=1e-6, err_msg=type(ours).__name__)
