"""Ops on the engine's tape: Tensor arithmetic and NumPy functions record; Variables record their
reads; a custom layer written with ops trains with fit and matches a built-in one; GradientTape
drives a custom training loop; threads keep their own tapes; predict stays plain NumPy."""
import threading

import numpy as np
import pytest

import cynet
from cynet import layers, ops
from cynet.testing import check_layer_gradients, numerical_gradient


class OpsDense(layers.Layer):
    """A Dense layer written with ops (and NumPy operators on what they return)."""

    def __init__(self, units, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = activation

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform",
                                      name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, x):
        y = ops.matmul(x, self.kernel) + self.bias
        return ops.relu(y) if self.activation == "relu" else y


class Residual(layers.Layer):
    """Built-in layers inside a user call, combined with NumPy arithmetic and functions."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(4, activation="tanh", dtype=self.dtype.name)
        self.scale = None

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(4,), initializer="ones", name="scale")

    def call(self, x):
        h = self.dense(x)
        h = np.exp(h) * self.scale + x          # a NumPy ufunc and operators on Tensors
        h = h.reshape(h.shape[0], 2, 2).sum(axis=2)   # Tensor methods
        return np.concatenate([h, h[:, :1] ** 2], axis=-1)


RNG = np.random.default_rng(3)
X = RNG.standard_normal((5, 4))


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("make", [lambda: OpsDense(3, activation="relu", dtype="float64"),
                                  lambda: Residual(dtype="float64")], ids=["ops_dense", "residual"])
def test_user_layers_have_right_gradients(make, backend):
    with cynet.kernels.use_backend(backend):
        check_layer_gradients(make(), X)


def test_ops_dense_trains_like_the_builtin_dense():
    x = RNG.standard_normal((32, 4)).astype("float32")
    y = RNG.standard_normal((32, 2)).astype("float32")

    def model(first):
        m = cynet.Sequential([cynet.Input((4,)), first, layers.Dense(2)])
        m.compile(cynet.optimizers.SGD(0.05), "mse")
        return m
    ours = model(OpsDense(6, activation="relu"))
    builtin = model(layers.Dense(6, activation="relu"))
    builtin.set_weights(ours.get_weights())
    h1 = ours.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    h2 = builtin.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(h1, h2, rtol=1e-5)
    for a, b in zip(ours.get_weights(), builtin.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    out = ours.predict(x, verbose=0)
    assert type(out) is np.ndarray


def test_subclassed_model_with_ops_trains_and_outputs_plain_arrays():
    class Net(cynet.Model):
        def __init__(self):
            super().__init__()
            self.a = layers.Dense(8)
            self.b = OpsDense(1)

        def call(self, x):
            return self.b(ops.gelu(self.a(x)) + 0.1 * x[:, :1])

    x = RNG.standard_normal((64, 3)).astype("float32")
    y = (x[:, :1] * 2).astype("float32")
    net = Net()
    net.compile(cynet.optimizers.Adam(0.02), "mse")
    losses = net.fit(x, y, epochs=40, verbose=0).history["loss"]
    assert losses[-1] < 0.1 * losses[0]
    assert type(net(x)) is np.ndarray and type(net.predict(x, verbose=0)) is np.ndarray


def test_gradient_tape_custom_loop_equals_fit():
    x = RNG.standard_normal((16, 4)).astype("float32")
    y = RNG.integers(0, 3, 16)

    def build():
        m = cynet.Sequential([cynet.Input((4,)), layers.Dense(5, activation="relu"), layers.Dense(3)])
        return m
    loop, ref = build(), build()
    ref.set_weights(loop.get_weights())
    ref.compile(cynet.optimizers.SGD(0.1), cynet.losses.SparseCategoricalCrossentropy(from_logits=True))
    ref.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    opt = cynet.optimizers.SGD(0.1)
    with cynet.GradientTape() as tape:
        logits = loop(x, training=True)
        loss = ops.mean(ops.sparse_categorical_crossentropy(y, logits, from_logits=True))
    grads = tape.gradient(loss, loop.trainable_variables)
    opt.apply_gradients(zip(grads, loop.trainable_variables))
    for a, b in zip(loop.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_gradient_tape_sources_targets_and_errors():
    w = cynet.Variable(RNG.standard_normal((4, 2)), dtype="float64")
    unused = cynet.Variable(np.ones(3), dtype="float64")
    x = X.copy()
    with cynet.GradientTape(persistent=True) as tape:
        h = ops.tanh(x @ w)
        loss = ops.sum(h ** 2)
    gw, gx, gu = tape.gradient(loss, [w, x, unused])
    assert gu is None
    np.testing.assert_allclose(gw, numerical_gradient(lambda: np.sum(np.tanh(x @ w.value) ** 2), w.value), rtol=1e-6)
    np.testing.assert_allclose(gx, numerical_gradient(lambda: np.sum(np.tanh(x @ w.value) ** 2), x), rtol=1e-6)
    seed = RNG.standard_normal(h.shape)
    (gh,) = tape.gradient(h, [w], output_gradients=[seed])
    np.testing.assert_allclose(gh, x.T @ (seed * (1 - np.tanh(x @ w.value) ** 2)), rtol=1e-10)
    once = cynet.GradientTape()
    with once:
        z = ops.sum(w * 2.0)
    once.gradient(z, w)
    with pytest.raises(RuntimeError, match="only be called once"):
        once.gradient(z, w)


def test_tensor_refuses_what_it_cannot_record():
    w = cynet.Variable(np.ones((2, 2)), dtype="float64")
    with cynet.GradientTape():
        t = ops.multiply(w, 2.0)
        with pytest.raises(TypeError, match="arctan"):
            np.arctan(t)
        for fn in (np.sort, np.linalg.norm, np.median):   # differentiable, but no op yet: refused
            with pytest.raises(TypeError, match="not differentiable on cynet's tape"):
                fn(t)
        with pytest.raises(TypeError, match="assigning into a Tensor"):
            t[0, 0] = 1.0
        t += 1.0    # rebinds to a new recorded Tensor, no in-place write
        assert isinstance(t, ops.Tensor)
        assert int(np.argmax(t)) == 0 and np.shape(t) == (2, 2)   # non-differentiable functions run plainly


def test_ops_outside_a_tape_return_plain_arrays():
    v = cynet.Variable(np.ones(3))
    assert type(ops.exp(X)) is np.ndarray and type(v * 2) is np.ndarray and type(np.ones(3) + v) is np.ndarray


def test_threads_keep_their_own_gradient_tapes():
    """Each thread's tape sees its own ops only. (Two threads differentiating through the SAME
    variable at once would race on `variable.grad`, as two concurrent fits of one model do.)"""
    results, errors = {}, []

    def work(k):
        try:
            w = cynet.Variable(np.arange(4.0).reshape(2, 2), dtype="float64")
            x = np.full((3, 2), float(k))
            for _ in range(50):
                with cynet.GradientTape() as tape:
                    loss = ops.sum(ops.matmul(x, w))
                (g,) = tape.gradient(loss, [w])
                np.testing.assert_allclose(g, np.full((2, 2), 3.0 * k))
            results[k] = True
        except Exception as exc:   # noqa: BLE001
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(k,)) for k in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 3


def test_variable_regularizer_is_added_through_op_reads():
    class Reg(layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 1), initializer="ones", regularizer="l2", name="w")

        def call(self, x):
            return ops.matmul(x, self.w)
    layer = Reg(dtype="float64")
    y = layer(X)
    layer.backward(np.ones_like(y))
    np.testing.assert_allclose(layer.w.grad, X.sum(0)[:, None] + 0.01 * 2 * layer.w.value)


def test_gradient_tape_on_a_subclassed_float64_model_matches_finite_differences():
    """A model mixing built-in layers, an ops layer, NumPy arithmetic on Tensors and a loss written
    in ops: every weight's gradient from the tape equals central differences."""
    class Block(cynet.Model):
        def __init__(self):
            super().__init__(dtype="float64")
            self.a = layers.Dense(5, activation="tanh", dtype="float64")
            self.b = OpsDense(4, dtype="float64")
            self.c = layers.Dense(3, dtype="float64")

        def call(self, x):
            h = self.a(x)
            h = self.b(h) * ops.sigmoid(h[:, :4]) + 0.5 * h[:, 1:]
            return self.c(np.tanh(h))   # a NumPy ufunc on a Tensor records too

    x = RNG.standard_normal((6, 4))
    y = RNG.integers(0, 3, 6)
    model = Block()
    model(x)

    def loss_value():
        return float(ops.mean(ops.sparse_categorical_crossentropy(y, model(x), from_logits=True)))

    with cynet.GradientTape() as tape:
        loss = ops.mean(ops.sparse_categorical_crossentropy(y, model(x), from_logits=True))
    grads = tape.gradient(loss, model.trainable_variables)
    for v, g in zip(model.trainable_variables, grads):
        np.testing.assert_allclose(g, numerical_gradient(loss_value, v.value), rtol=1e-6, atol=1e-9,
                                   err_msg=v.path)
