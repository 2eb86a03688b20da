"""Losses and training steps written with ops: a loss function, a Loss subclass with call, add_loss,
compile without a loss, a compute_loss override calling super(), a train_step with GradientTape
(Keras's VAE pattern, a model without call trained by fit(x)); cynet.random and cynet.config."""
import numpy as np
import pytest

import cynet
from cynet import layers, ops
from cynet.testing import numerical_gradient

RNG = np.random.default_rng(11)
X = RNG.standard_normal((32, 3)).astype("float32")
Y = (X[:, :2] * 2 + 0.5).astype("float32")


def _dense_model(seed=1):
    m = cynet.Sequential([cynet.Input((3,)), layers.Dense(2, kernel_initializer=cynet.initializers.GlorotUniform(seed))])
    return m


def _fit(loss, model=None, **kwargs):
    m = model or _dense_model()
    m.compile(cynet.optimizers.SGD(0.1), loss, **kwargs)
    h = m.fit(X, Y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    return h, m.get_weights()


def my_mse(y_true, y_pred):
    return ops.mean(ops.square(y_pred - y_true), axis=-1)


class MyMSE(cynet.losses.Loss):
    def call(self, y_true, y_pred):
        return ((y_pred - y_true) ** 2).mean(axis=-1)


@pytest.mark.parametrize("loss", [my_mse, MyMSE(), MyMSE(reduction="sum")], ids=["function", "subclass", "sum"])
def test_ops_losses_train_like_the_builtin(loss):
    reduction = getattr(loss, "reduction", "sum_over_batch_size")
    h_ref, w_ref = _fit(cynet.losses.MeanSquaredError(reduction=reduction))
    h, w = _fit(loss)
    np.testing.assert_allclose(h, h_ref, rtol=1e-5)
    for a, b in zip(w, w_ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_loss_function_with_sample_weight_and_evaluate():
    sw = RNG.uniform(0, 2, len(X))
    m1, m2 = _dense_model(), _dense_model()
    for m, loss in ((m1, "mse"), (m2, my_mse)):
        m.compile(cynet.optimizers.SGD(0.1), loss)
        m.fit(X, Y, sample_weight=sw, epochs=2, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(m1.evaluate(X, Y, verbose=0), m2.evaluate(X, Y, verbose=0), rtol=1e-5)


def test_a_registered_loss_function_survives_saving(tmp_path):
    @cynet.saving.register_keras_serializable(package="test_ops")
    def scaled_mse(y_true, y_pred):
        return 2.0 * ops.mean(ops.square(y_pred - y_true), axis=-1)
    m = _dense_model()
    m.compile("sgd", scaled_mse)
    m.fit(X, Y, epochs=1, verbose=0)
    path = tmp_path / "m.cynet"
    m.save(path)
    back = cynet.models.load_model(path)
    np.testing.assert_allclose(back.evaluate(X, Y, verbose=0), m.evaluate(X, Y, verbose=0), rtol=1e-6)


class ActivityL2(layers.Layer):
    def call(self, h):
        self.add_loss(0.05 * ops.sum(ops.square(h)))
        return h


def test_add_loss_equals_the_same_term_in_the_loss():
    def with_term(y_true, y_pred):   # the same penalty, through the loss (per sample: divided back by batch)
        return ops.mean(ops.square(y_pred - y_true), axis=-1) + 0.05 * ops.sum(ops.square(y_pred), axis=-1) * 8
    a = cynet.Sequential([cynet.Input((3,)), layers.Dense(2, kernel_initializer=cynet.initializers.GlorotUniform(1)),
                          ActivityL2()])
    h_a, w_a = _fit("mse", model=a)
    h_b, w_b = _fit(with_term)
    np.testing.assert_allclose(h_a, h_b, rtol=1e-5)
    for x, y in zip(w_a, w_b):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_compile_without_a_loss_trains_on_added_losses_only():
    m = cynet.Sequential([cynet.Input((3,)), layers.Dense(2), ActivityL2()])
    m.compile(cynet.optimizers.SGD(0.1))
    losses = m.fit(X, epochs=5, batch_size=32, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    plain = cynet.Sequential([cynet.Input((3,)), layers.Dense(2)])
    plain.compile("sgd")
    with pytest.raises(ValueError, match="no loss to minimize"):
        plain.fit(X, Y, epochs=1, verbose=0)


def test_compute_loss_override_calling_super():
    class Net(cynet.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(2, kernel_initializer=cynet.initializers.GlorotUniform(1))

        def call(self, x):
            return self.d(x)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return super().compute_loss(x, y, y_pred, sample_weight, training) + 0.1 * ops.mean(ops.abs(y_pred))

    def reference(y_true, y_pred):
        return ops.mean(ops.square(y_pred - y_true), axis=-1) + 0.1 * ops.mean(ops.abs(y_pred), axis=-1)
    h, w = _fit("mse", model=Net())
    h_ref, w_ref = _fit(reference)
    np.testing.assert_allclose(h, h_ref, rtol=1e-5)
    for a, b in zip(w, w_ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_vae_style_train_step_with_gradient_tape():
    class Sampling(layers.Layer):
        def call(self, inputs):
            mean, log_var = inputs
            eps = cynet.random.normal(ops.shape(mean), seed=self.seed_generator)
            return mean + ops.exp(0.5 * log_var) * eps

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = cynet.random.SeedGenerator(3)

    inp = cynet.Input((6,))
    h = layers.Dense(8, activation="relu")(inp)
    z_mean, z_log_var = layers.Dense(2)(h), layers.Dense(2)(h)
    encoder = cynet.Model(inp, [z_mean, z_log_var, Sampling()([z_mean, z_log_var])])
    zin = cynet.Input((2,))
    decoder = cynet.Model(zin, layers.Dense(6)(layers.Dense(8, activation="relu")(zin)))

    class VAE(cynet.Model):   # no call: only train_step, as in Keras's example
        def __init__(self, encoder, decoder):
            super().__init__()
            self.encoder, self.decoder = encoder, decoder
            self.total = cynet.metrics.Mean(name="total_loss")

        @property
        def metrics(self):
            return [self.total]

        def train_step(self, data):
            with cynet.GradientTape() as tape:
                z_mean, z_log_var, z = self.encoder(data)
                reconstruction = self.decoder(z)
                rec = ops.mean(ops.sum(ops.square(data - reconstruction), axis=1))
                kl = ops.mean(ops.sum(-0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)), axis=1))
                loss = rec + kl
            grads = tape.gradient(loss, self.trainable_weights)
            assert all(g is not None for g in grads), [v.path for v, g in zip(self.trainable_weights, grads) if g is None]
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            self.total.update_state(loss)
            return {"loss": self.total.result()}

    data = RNG.standard_normal((64, 6)).astype("float32")
    vae = VAE(encoder, decoder)
    vae.compile(optimizer=cynet.optimizers.Adam(0.01))
    history = vae.fit(data, epochs=8, batch_size=16, verbose=0).history["loss"]
    assert history[-1] < history[0]


def test_random_seeding():
    a = cynet.random.normal((3, 2), seed=5)
    np.testing.assert_array_equal(a, cynet.random.normal((3, 2), seed=5))
    g1, g2 = cynet.random.SeedGenerator(9), cynet.random.SeedGenerator(9)
    u1, u2 = cynet.random.uniform((4,), seed=g1), cynet.random.uniform((4,), seed=g1)
    assert not np.array_equal(u1, u2)
    np.testing.assert_array_equal(u1, cynet.random.uniform((4,), seed=g2))
    t = cynet.random.truncated_normal((1000,), seed=1)
    assert np.abs(t).max() <= 2 and a.dtype == np.float32
    draws = cynet.random.categorical(np.log([[0.1, 0.9]]), 4000, seed=2)
    assert abs(draws.mean() - 0.9) < 0.03
    r = cynet.random.randint((100,), 3, 7, seed=0)
    assert r.min() >= 3 and r.max() < 7 and r.dtype == np.int32
    np.testing.assert_array_equal(np.sort(cynet.random.shuffle(np.arange(10), seed=3)), np.arange(10))


def test_random_dropout_is_differentiable():
    x = RNG.standard_normal((50, 4))
    with cynet.GradientTape() as tape:
        y = cynet.random.dropout(x, 0.5, seed=4)
        loss = ops.sum(y)
    (g,) = tape.gradient(loss, [x])
    kept = np.asarray(y) != 0
    np.testing.assert_allclose(g, kept * 2.0)
    assert 0.3 < kept.mean() < 0.7
    with pytest.raises(ValueError, match="rate"):
        cynet.random.dropout(x, 1.0)


def test_config_floatx_and_friends():
    assert cynet.config.backend() == "cynet" == cynet.backend.backend()
    try:
        cynet.config.set_floatx("float64")
        assert layers.Dense(2).dtype == np.float64 and cynet.backend.floatx() == "float64"
        assert ops.zeros((2,)).dtype == np.float64
    finally:
        cynet.config.set_floatx("float32")
    assert layers.Dense(2).dtype == np.float32
    with pytest.raises(NotImplementedError, match="mixed_bfloat16"):
        cynet.config.set_floatx("bfloat16")
    with pytest.raises(ValueError, match="float32"):
        cynet.config.set_floatx("int8")
    with pytest.raises(ValueError, match="data_format"):
        cynet.config.set_image_data_format("nhwc")


def test_model_losses_inside_a_gradient_tape_carry_gradients():
    """The TensorFlow idiom `loss += sum(model.losses)`: the penalties and the added losses are
    recorded values in the block, so their gradients reach the weights (as fit's do)."""
    def build():
        return cynet.Sequential([cynet.Input((3,)),
                                 layers.Dense(4, kernel_regularizer=cynet.regularizers.L2(0.1),
                                              kernel_initializer=cynet.initializers.GlorotUniform(2)),
                                 ActivityL2(), layers.Dense(2, kernel_initializer=cynet.initializers.GlorotUniform(3))])
    loop, ref = build(), build()
    ref.compile(cynet.optimizers.SGD(0.1), "mse")
    ref.fit(X, Y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    opt = cynet.optimizers.SGD(0.1)
    with cynet.GradientTape() as tape:
        pred = loop(X, training=True)
        loss = cynet.losses.MeanSquaredError()(Y, pred) + sum(loop.losses)
    grads = tape.gradient(loss, loop.trainable_variables)
    opt.apply_gradients(zip(grads, loop.trainable_variables))
    for a, b in zip(loop.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert all(isinstance(v, float) for v in loop.losses)   # outside a tape: floats


def test_ops_name_themselves_in_errors():
    with pytest.raises(ValueError, match="ops.add"):
        ops.add(np.ones((2, 3)), np.ones((4,)))
    with pytest.raises(TypeError, match="ops.exp"):
        ops.exp(np.array(["a"]))


def test_vae_with_a_compute_loss_override():
    """Keras's VAE written with compute_loss instead of train_step: the model returns the
    reconstruction and the latent statistics; compute_loss (ops) adds the KL term. Its gradients
    through fit's tape equal central differences of that loss (float64), and it trains."""
    class VAE(cynet.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            dt = self.dtype.name
            self.enc = layers.Dense(8, activation="tanh", dtype=dt)
            self.mean, self.log_var = layers.Dense(2, dtype=dt), layers.Dense(2, dtype=dt)
            self.dec = layers.Dense(6, dtype=dt)

        def call(self, x):
            h = self.enc(x)
            z_mean, z_log_var = self.mean(h), self.log_var(h)
            z = z_mean + ops.exp(0.5 * z_log_var) * 0.1        # a fixed "noise" keeps it deterministic
            return [self.dec(z), z_mean, z_log_var]

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            reconstruction, z_mean, z_log_var = y_pred
            rec = ops.mean(ops.sum(ops.square(x - reconstruction), axis=1))
            kl = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            return rec + ops.mean(ops.sum(kl, axis=1))

    data = RNG.standard_normal((32, 6))
    vae = VAE(dtype="float64")
    vae.compile(optimizer=cynet.optimizers.SGD(0.0))   # lr 0: the step leaves the weights for the check
    vae.fit(data, epochs=1, batch_size=32, verbose=0)
    grads = [np.array(v.grad) for v in vae.trainable_variables]

    def loss():
        return float(vae.compute_loss(x=data, y_pred=vae(data)))
    for v, g in zip(vae.trainable_variables, grads):
        np.testing.assert_allclose(g, numerical_gradient(loss, v.value), rtol=1e-5, atol=1e-8, err_msg=v.path)
    vae.compile(optimizer=cynet.optimizers.Adam(0.02))
    history = vae.fit(data, epochs=10, batch_size=8, verbose=0).history["loss"]
    assert history[-1] < history[0]
