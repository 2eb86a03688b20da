"""cynet.ops: values against NumPy, and every op's gradient on the tape against central differences
in float64 (through cynet.GradientTape), broadcasting included."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cynet
from cynet import ops
from cynet.testing import numerical_gradient


def _grads(fn, inputs, seed=0):
    """(analytic, numerical) gradients of sum(fn(*inputs) * G) for each float64 input."""
    inputs = [np.array(a, dtype=np.float64) if np.asarray(a).dtype.kind == "f" else a for a in inputs]
    out = np.asarray(fn(*inputs))
    G = np.random.default_rng(seed).standard_normal(out.shape)
    floats = [a for a in inputs if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    with cynet.GradientTape() as tape:
        y = ops.sum(ops.multiply(fn(*inputs), G))
    analytic = tape.gradient(y, floats)
    numeric = [numerical_gradient(lambda: float(np.sum(np.asarray(fn(*inputs)) * G)), a) for a in floats]
    return analytic, numeric


def _check(fn, *inputs, rtol=1e-6, atol=1e-7):
    analytic, numeric = _grads(fn, list(inputs))
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        assert a is not None, f"input {i}: no gradient"
        np.testing.assert_allclose(a, n, rtol=rtol, atol=atol, err_msg=f"input {i}")


R = np.random.default_rng(7)
A = R.standard_normal((3, 4))
B = R.standard_normal((3, 4))
POS = R.uniform(0.5, 2.0, (3, 4))

UNARY = {
    "negative": ops.negative, "square": ops.square, "exp": ops.exp, "tanh": ops.tanh, "sin": ops.sin,
    "cos": ops.cos, "abs": ops.abs, "expm1": ops.expm1, "relu": ops.relu, "relu6": lambda x: ops.relu6(ops.multiply(x, 3)),
    "sigmoid": ops.sigmoid, "softplus": ops.softplus, "softsign": ops.softsign, "silu": ops.silu,
    "log_sigmoid": ops.log_sigmoid, "leaky_relu": ops.leaky_relu, "elu": ops.elu, "selu": ops.selu,
    "hard_sigmoid": lambda x: ops.hard_sigmoid(ops.multiply(x, 2)), "gelu": ops.gelu,
    "gelu_exact": lambda x: ops.gelu(x, approximate=False), "erf": ops.erf,
    "softmax": ops.softmax, "softmax_0": lambda x: ops.softmax(x, axis=0), "log_softmax": ops.log_softmax,
    "sum": ops.sum, "sum_axis": lambda x: ops.sum(x, axis=1), "sum_keep": lambda x: ops.sum(x, axis=0, keepdims=True),
    "mean": lambda x: ops.mean(x, axis=(0, 1)), "var": lambda x: ops.var(x, axis=1), "std": lambda x: ops.std(x, axis=0),
    "max": lambda x: ops.max(x, axis=1), "min": lambda x: ops.min(x, axis=0, keepdims=True), "prod": lambda x: ops.prod(x, axis=1),
    "logsumexp": lambda x: ops.logsumexp(x, axis=1), "cumsum": lambda x: ops.cumsum(x, axis=1),
    "cumsum_flat": ops.cumsum, "reshape": lambda x: ops.reshape(x, (2, 6)), "transpose": ops.transpose,
    "expand_squeeze": lambda x: ops.squeeze(ops.expand_dims(x, 1), 1), "flip": lambda x: ops.flip(x, 1),
    "tile": lambda x: ops.tile(x, (2, 1)), "repeat": lambda x: ops.repeat(x, 2, axis=1),
    "repeat_flat": lambda x: ops.repeat(x, 3), "broadcast_to": lambda x: ops.broadcast_to(ops.expand_dims(x, 0), (2, 3, 4)),
    "getitem": lambda x: x[1:, ::2] if isinstance(x, ops.Tensor) else ops.getitem(x, (slice(1, None), slice(None, None, 2))),
    "fancy_index": lambda x: ops.getitem(x, np.array([0, 2, 0])), "take": lambda x: ops.take(x, [3, 0, 3], axis=1),
    "take_along_axis": lambda x: ops.take_along_axis(x, np.array([[0], [3], [1]]), axis=1),
    "top_k": lambda x: ops.top_k(x, 2)[0], "pad": lambda x: ops.pad(x, ((1, 0), (2, 1))),
    "slice": lambda x: ops.slice(x, (1, 1), (2, 2)), "split": lambda x: ops.split(x, 2, axis=1)[1],
    "moveaxis": lambda x: ops.moveaxis(x, 0, 1), "tril": ops.tril, "normalize": ops.normalize,
    "cast": lambda x: ops.cast(x, "float64"), "clip": lambda x: ops.clip(x, -0.5, 0.5),
    "power_const": lambda x: ops.power(x, 3), "moments": lambda x: ops.add(*ops.moments(x, axes=[1])),
}
POSITIVE = {"sqrt": ops.sqrt, "log": ops.log, "log1p": ops.log1p, "rsqrt": ops.rsqrt, "reciprocal": ops.reciprocal,
            "power_real": lambda x: ops.power(x, 1.7)}
BINARY = {
    "add": ops.add, "subtract": ops.subtract, "multiply": ops.multiply, "divide": lambda a, b: ops.divide(a, ops.add(b, 3)),
    "maximum": ops.maximum, "minimum": ops.minimum, "where": lambda a, b: ops.where(a > 0, a, b),
    "concatenate": lambda a, b: ops.concatenate([a, b], axis=1), "stack": lambda a, b: ops.stack([a, b], axis=1),
    "matmul": lambda a, b: ops.matmul(a, ops.transpose(b)), "dot": lambda a, b: ops.dot(a, ops.transpose(b)),
    "tensordot": lambda a, b: ops.tensordot(a, b, axes=([1], [1])), "einsum": lambda a, b: ops.einsum("ij,kj->ik", a, b),
    "einsum_sum": lambda a, b: ops.einsum("ij,ij->i", a, b), "power": lambda a, b: ops.power(ops.abs(a) + 1, b),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradients(name):
    _check(UNARY[name], A)


@pytest.mark.parametrize("name", sorted(POSITIVE))
def test_positive_domain_gradients(name):
    _check(POSITIVE[name], POS)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_gradients(name):
    _check(BINARY[name], A, B)


def test_batched_and_vector_matmul_gradients():
    x = R.standard_normal((2, 3, 4))
    _check(ops.matmul, x, R.standard_normal((4, 5)))
    _check(ops.matmul, x, R.standard_normal((2, 4, 2)))
    _check(ops.matmul, x, R.standard_normal(4))
    _check(ops.matmul, R.standard_normal(3), R.standard_normal((2, 3, 4)))
    _check(ops.matmul, R.standard_normal(3), R.standard_normal(3))


def test_einsum_with_an_index_summed_out_of_one_operand():
    _check(lambda a, b: ops.einsum("ij,jk->k", a, b), R.standard_normal((2, 3)), R.standard_normal((3, 4)))
    _check(lambda a, b: ops.einsum("btnh,bsnh->bnts", a, b), R.standard_normal((2, 3, 2, 4)),
           R.standard_normal((2, 5, 2, 4)))


def test_losses_and_attention_gradients():
    t = np.eye(4)[[0, 3, 1]]
    _check(lambda p: ops.categorical_crossentropy(t, p, from_logits=True), A)
    _check(lambda p: ops.categorical_crossentropy(t, p), POS)
    _check(lambda p: ops.sparse_categorical_crossentropy(np.array([0, 3, 1]), p, from_logits=True), A)
    _check(lambda p: ops.binary_crossentropy((B > 0).astype(float), p, from_logits=True), A)
    _check(lambda p: ops.binary_crossentropy((B > 0).astype(float), ops.sigmoid(p)), A)
    q, k, v = (R.standard_normal((2, 3, 2, 4)) for _ in range(3))
    _check(lambda a, b, c: ops.dot_product_attention(a, b, c, is_causal=True), q, k, v)


def test_values_match_numpy():
    np.testing.assert_allclose(ops.logsumexp(A, axis=1), np.log(np.exp(A).sum(1)))
    np.testing.assert_allclose(ops.softmax(A), np.exp(A) / np.exp(A).sum(-1, keepdims=True))
    np.testing.assert_allclose(ops.einsum("ij,kj->ik", A, B), A @ B.T)
    np.testing.assert_array_equal(ops.top_k(A, 2)[1], np.argsort(-A, axis=-1)[:, :2])
    np.testing.assert_allclose(ops.var(A, axis=0), A.var(0))
    assert ops.argmax(A, axis=1).tolist() == A.argmax(1).tolist()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=0, max_size=3), st.lists(st.booleans(), min_size=3, max_size=3),
       st.sampled_from(["add", "subtract", "multiply", "maximum", "divide"]), st.integers(0, 2 ** 16))
def test_broadcasting_gradients_reduce_to_each_input_shape(shape, ones, name, seed):
    r = np.random.default_rng(seed)
    a_shape = tuple(shape)
    b_shape = tuple(1 if o else n for n, o in zip(shape, ones))[len(shape) // 2:]
    a, b = r.standard_normal(a_shape), r.standard_normal(b_shape)
    analytic, numeric = _grads(BINARY[name], [a, b], seed)
    for x, g, n in zip((a, b), analytic, numeric):
        assert g.shape == x.shape and g.dtype == x.dtype
        np.testing.assert_allclose(g, n, rtol=1e-6, atol=1e-7)


def test_integer_and_boolean_inputs_get_no_gradient():
    idx = np.array([[1, 2, 3, 4]] * 3)
    with cynet.GradientTape() as tape:
        y = ops.sum(ops.multiply(A, idx))
    ga, gi = tape.gradient(y, [A, idx])
    np.testing.assert_array_equal(ga, idx)
    assert gi is None


def test_keras_ops_agree(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    kops = keras.ops
    for name, ours, theirs in [
        ("softmax", ops.softmax(A), kops.softmax(A)), ("gelu", ops.gelu(A), kops.gelu(A)),
        ("gelu_exact", ops.gelu(A, approximate=False), kops.gelu(A, approximate=False)),
        ("silu", ops.silu(A), kops.silu(A)), ("logsumexp", ops.logsumexp(A, axis=1), kops.logsumexp(A, axis=1)),
        ("log_softmax", ops.log_softmax(A), kops.log_softmax(A)),
        ("cce", ops.categorical_crossentropy(np.eye(4)[[0, 1, 2]], POS), kops.categorical_crossentropy(np.eye(4)[[0, 1, 2]], POS)),
        ("bce", ops.binary_crossentropy((B > 0) * 1.0, ops.sigmoid(A)), kops.binary_crossentropy((B > 0) * 1.0, kops.sigmoid(A))),
        ("elu", ops.elu(A), kops.elu(A)), ("selu", ops.selu(A), kops.selu(A)),
        ("hard_sigmoid", ops.hard_sigmoid(2 * A), kops.hard_sigmoid(2 * A)),
        ("leaky_relu", ops.leaky_relu(A), kops.leaky_relu(A)), ("normalize", ops.normalize(A), kops.normalize(A)),
        ("einsum", ops.einsum("ij,kj->ik", A, B), kops.einsum("ij,kj->ik", A, B)),
    ]:
        np.testing.assert_allclose(np.asarray(ours, dtype=np.float64),
                                   np.asarray(kops.convert_to_numpy(theirs), dtype=np.float64),
                                   rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_kernel_backed_nn_op_gradients(backend):
    x = R.standard_normal((2, 5, 6, 3))
    k = R.standard_normal((3, 2, 3, 4))
    with cynet.kernels.use_backend(backend):
        _check(lambda a, b: ops.conv(a, b, strides=(2, 1), padding="same"), x, k)
        _check(lambda a, b: ops.conv(a, b, dilation_rate=2), x, k[:2])
        _check(lambda a, b: ops.depthwise_conv(a, b, strides=2, padding="same"), x, k[:, :, :, :2])
        _check(lambda a: ops.max_pool(a, 2, strides=1, padding="same"), x)
        _check(lambda a: ops.average_pool(a, (2, 3), padding="valid"), x)
    mean, var, off, sc = (R.uniform(0.5, 1.5, 3) for _ in range(4))
    _check(lambda a, m, v, o, s: ops.batch_normalization(a, m, v, axis=-1, offset=o, scale=s), x, mean, var, off, sc)
    with pytest.raises(NotImplementedError, match="only 2-D"):
        ops.conv(R.standard_normal((2, 5, 3)), R.standard_normal((3, 3, 4)))


def test_kernel_backed_nn_ops_agree_with_keras(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    x = R.standard_normal((2, 7, 6, 3)).astype("float32")
    k = R.standard_normal((3, 3, 3, 4)).astype("float32")
    kops = keras.ops
    for ours, theirs in [
        (ops.conv(x, k, strides=2, padding="same"), kops.conv(x, k, strides=2, padding="same")),
        (ops.depthwise_conv(x, k[:, :, :, :2], padding="same"), kops.depthwise_conv(x, k[:, :, :, :2], padding="same")),
        (ops.max_pool(x, 2, padding="valid"), kops.max_pool(x, 2, padding="valid")),
        (ops.average_pool(x, 2, strides=1), kops.average_pool(x, 2, strides=1)),
    ]:
        np.testing.assert_allclose(ours, kops.convert_to_numpy(theirs), rtol=1e-5, atol=1e-5)
