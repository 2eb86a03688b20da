"""Sequential end to end: compile/fit/evaluate/predict, real learning, saving, callbacks, seeds."""
import gzip
import os

import numpy as np
import pytest

import cynet
from cynet import callbacks, layers, models, optimizers, utils


def blobs(n=600, d=8, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)) * 3
    y = rng.integers(0, k, n)
    x = centers[y] + rng.standard_normal((n, d))
    return x.astype(np.float32), y


def mlp(d=8, k=3, **kw):
    return models.Sequential([layers.Input(shape=(d,)), layers.Dense(16, activation="relu"),
                              layers.Dense(k, activation="softmax")], **kw)


def test_mlp_learns_blobs_with_strings():
    utils.set_random_seed(0)
    x, y = blobs()
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, epochs=15, batch_size=32, validation_split=0.2, verbose=0)
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(hist.history["loss"]) == 15
    assert hist.history["loss"][-1] < hist.history["loss"][0] * 0.5
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc >= 0.95
    probs = model.predict(x[:10], verbose=0)
    assert probs.shape == (10, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    d = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(d) == {"loss", "accuracy"} and abs(d["loss"] - loss) < 1e-6


def test_one_hot_categorical_and_scalar_evaluate():
    utils.set_random_seed(1)
    x, y = blobs()
    model = mlp()
    model.compile(optimizer=optimizers.RMSprop(0.01), loss="categorical_crossentropy")
    model.fit(x, utils.to_categorical(y, 3), epochs=5, verbose=0)
    loss = model.evaluate(x, utils.to_categorical(y, 3), verbose=0)
    assert isinstance(loss, float) and loss < 0.3


def test_fused_softmax_path_gives_the_same_gradient_as_the_unfused_loss():
    """Dense(softmax)+CE uses logits; the gradient must equal the chain rule through softmax."""
    utils.set_random_seed(2)
    x, y = blobs(n=16)
    a = mlp()
    a.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    b = models.Sequential([layers.Input(shape=(8,)), layers.Dense(16, activation="relu"), layers.Dense(3),
                           layers.Activation("softmax")])
    b.set_weights(a.get_weights())
    b.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    a.train_on_batch(x, y)
    # b's last layer is an Activation: also fused. Compare against a manual unfused computation instead.
    c = models.Sequential([layers.Input(shape=(8,)), layers.Dense(16, activation="relu"), layers.Dense(3),
                           layers.Activation("softmax")])
    c.set_weights(b.get_weights())
    probs = c(x, training=True)
    loss, dprobs = cynet.losses.SparseCategoricalCrossentropy().forward_backward(y, probs)
    c.backward(dprobs)
    b.train_on_batch(x, y)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)
    w_before = [w.copy() for w in c.get_weights()]
    for v, w0, wa in zip(c.trainable_weights, w_before, a.get_weights()):
        np.testing.assert_allclose(w0 - 0.1 * v.grad, wa, rtol=1e-4, atol=1e-5)


def _synthetic_images(n=400, seed=0):
    """Bright 3x3 square in one of four quadrants of a noisy 12x12 image; label = quadrant."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 12, 12, 1)).astype(np.float32) * 0.3
    y = rng.integers(0, 4, n)
    for i, q in enumerate(y):
        r, c = (q // 2) * 6 + rng.integers(0, 3), (q % 2) * 6 + rng.integers(0, 3)
        x[i, r:r + 3, c:c + 3, 0] += 1.0
    return x, y


def test_small_cnn_learns_quadrants():
    utils.set_random_seed(0)
    x, y = _synthetic_images()
    model = models.Sequential([
        layers.Input(shape=(12, 12, 1)),
        layers.Conv2D(8, 3, activation="relu", padding="same"),
        layers.MaxPooling2D(2),
        layers.Conv2D(8, 3, activation="relu"),
        layers.BatchNormalization(),
        layers.Flatten(),
        layers.Dropout(0.2),
        layers.Dense(4, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:300], y[:300], epochs=8, batch_size=32, verbose=0)
    assert model.evaluate(x[300:], y[300:], verbose=0)[1] >= 0.9


def _mnist(data_dir):
    def read(name, offset):
        with gzip.open(os.path.join(data_dir, "mnist", name)) as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)
    x = read("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
    y = read("t10k-labels-idx1-ubyte.gz", 8)
    return x, y


@pytest.mark.skipif(not os.path.exists(os.path.join(os.environ.get("CYNET_DATA_DIR", "/nonexistent"), "mnist")),
                    reason="CYNET_DATA_DIR with mnist/ not set")
def test_keras_style_convnet_learns_mnist_subset():
    """The classic Keras convnet script, unchanged but for its imports, on 3,000 MNIST test-split images."""
    keras = cynet
    utils.set_random_seed(0)
    x, y = _mnist(os.environ["CYNET_DATA_DIR"])
    x = x[:3000].astype("float32") / 255
    y = keras.utils.to_categorical(y[:3000], 10)
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(16, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(16, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    hist = model.fit(x[:2500], y[:2500], batch_size=64, epochs=3, validation_split=0.1, verbose=0)
    assert hist.history["val_accuracy"][-1] > 0.8
    assert model.evaluate(x[2500:], y[2500:], verbose=0)[1] > 0.85


def test_lstm_text_model_with_rmsprop_learns():
    """An LSTM + Dense softmax next-token model compiled with RMSprop memorises a periodic sequence."""
    utils.set_random_seed(0)
    seq = np.array([0, 1, 2, 3, 2, 1] * 60)
    T, V = 6, 4
    xs = np.stack([seq[i:i + T] for i in range(len(seq) - T)])
    ys = seq[T:len(seq)]
    x = np.eye(V, dtype=np.float32)[xs]
    model = models.Sequential([layers.Input(shape=(T, V)), layers.LSTM(16), layers.Dense(V, activation="softmax")])
    model.compile(optimizer=optimizers.RMSprop(learning_rate=0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, ys, batch_size=32, epochs=10, verbose=0)
    assert model.evaluate(x, ys, verbose=0)[1] > 0.95


def test_save_load_round_trip_and_continue_training(tmp_path):
    utils.set_random_seed(0)
    x, y = blobs()
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=0, shuffle=False)
    path = tmp_path / "m.cynet"
    model.save(path)
    loaded = models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.get_config() == model.get_config()
    # Optimizer state included: one more identical epoch gives identical weights.
    model.fit(x, y, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, y, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    wpath = tmp_path / "w.weights.npz"
    model.save_weights(wpath)
    other = mlp()
    other.load_weights(wpath)
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match=r"\.keras.*\.cynet"):   # an unknown extension lists the formats
        model.save(tmp_path / "m.pkl")


def test_load_rejects_wrong_architecture_and_garbage(tmp_path):
    x, y = blobs()
    model = mlp()
    wpath = tmp_path / "w.weights.npz"
    model.save_weights(wpath)
    wrong = models.Sequential([layers.Input(shape=(8,)), layers.Dense(5), layers.Dense(3)])
    with pytest.raises(ValueError, match="shape"):
        wrong.load_weights(wpath)
    bad = tmp_path / "bad.cynet"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a cynet file"):
        models.load_model(bad)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_early_stopping_restores_best_weights_and_checkpoints_appear(tmp_path):
    utils.set_random_seed(0)
    x, y = blobs()
    model = mlp()
    model.compile(optimizer=optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    seen = {}

    class Record(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen[epoch] = (logs["val_loss"], [w.copy() for w in self.model.get_weights()])

    es = callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    ckpt = callbacks.ModelCheckpoint(str(tmp_path / "model-{epoch:02d}.cynet"))
    # A learning rate that makes training diverge after a few epochs forces a stop.
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: 0.05 if epoch < 3 else 50.0)
    model.fit(x, y, epochs=20, validation_split=0.25, callbacks=[Record(), es, ckpt, sched], verbose=0)
    assert len(seen) < 20
    best_epoch = min(seen, key=lambda e: seen[e][0])
    for a, b in zip(model.get_weights(), seen[best_epoch][1]):
        np.testing.assert_array_equal(a, b)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"model-{e + 1:02d}.cynet" for e in sorted(seen)]


def test_same_seed_same_training_result():
    x, y = blobs()

    def run():
        utils.set_random_seed(42)
        model = models.Sequential([layers.Input(shape=(8,)), layers.Dense(16, activation="relu"),
                                   layers.Dropout(0.3), layers.Dense(3, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, verbose=0)
        return model.get_weights()

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_manual_training_loop_matches_fit_step():
    utils.set_random_seed(0)
    x, y = blobs(n=64)
    model = mlp()
    twin = mlp()
    twin.set_weights(model.get_weights())
    loss_fn = cynet.losses.SparseCategoricalCrossentropy()
    opt = optimizers.Adam(1e-2)
    probs = model.forward(x, training=True)
    loss, grad = loss_fn.forward_backward(y, probs)
    model.backward(grad)
    opt.apply_gradients(zip([v.grad for v in model.trainable_variables], model.trainable_variables))
    twin.compile(optimizer=optimizers.Adam(1e-2), loss=loss_fn)
    twin.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_summary_counts_trainable_and_non_trainable(capsys):
    model = models.Sequential([layers.Input(shape=(4,)), layers.Dense(3), layers.BatchNormalization()])
    model.summary()
    out = capsys.readouterr().out
    assert "Total params: 27" in out and "Trainable params: 21" in out and "Non-trainable params: 6" in out
    assert "dense" in out and "(None, 3)" in out


def test_fit_input_errors():
    x, y = blobs(n=20)
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="same number of samples"):
        model.fit(x, y[:10], verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="validation_split must be in"):
        model.fit(x, y, validation_split=1.0, verbose=0)
    with pytest.raises(ValueError, match="samples of shape"):
        model.fit(x[:, :5], y, verbose=0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        model.fit(x, y + 5, verbose=0)
    with pytest.raises(RuntimeError, match="compile"):
        mlp().fit(x, y, verbose=0)


def test_class_weight_and_sample_weight_change_the_loss():
    x, y = blobs(n=40)
    model = mlp()
    model.compile(optimizer=optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    base = model.evaluate(x, y, verbose=0)
    w = np.where(y == 0, 3.0, 1.0)
    weighted = model.evaluate(x, y, sample_weight=w, verbose=0)
    ref = cynet.losses.SparseCategoricalCrossentropy(reduction="none")(y, model.predict(x, verbose=0))
    np.testing.assert_allclose(base, ref.mean(), rtol=1e-5)
    np.testing.assert_allclose(weighted, (ref * w).mean(), rtol=1e-5)


def test_metrics_ignore_sample_weight_and_weighted_metrics_use_it():
    """Keras 3: `metrics` are unweighted, `weighted_metrics` take sample_weight (and get a prefix on a clash)."""
    rng = np.random.default_rng(0)
    model = cynet.Sequential([cynet.Input(shape=(3,)), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  weighted_metrics=["accuracy"])
    x = rng.standard_normal((40, 3)).astype("float32")
    y = rng.integers(0, 2, 40)
    w = rng.uniform(0.1, 3.0, 40)
    logs = model.evaluate(x, y, sample_weight=w, batch_size=7, verbose=0, return_dict=True)
    correct = (np.argmax(model.predict(x, verbose=0), axis=-1) == y).astype(float)
    assert set(logs) == {"loss", "accuracy", "weighted_accuracy"}
    np.testing.assert_allclose(logs["accuracy"], correct.mean(), rtol=1e-6)
    np.testing.assert_allclose(logs["weighted_accuracy"], np.sum(w * correct) / np.sum(w), rtol=1e-6)
    assert [m.name for m in model.metrics] == ["loss", "accuracy", "weighted_accuracy"]


def test_class_weight_with_sample_weight_is_refused_and_validation_split_rounds_down():
    model = cynet.Sequential([cynet.Input(shape=(2,)), layers.Dense(2, activation="softmax")])
    model.compile(optimizer=cynet.optimizers.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy")
    x = np.arange(20, dtype="float32").reshape(10, 2) / 10
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match="class_weight and sample_weight"):
        model.fit(x, y, class_weight={0: 1.0}, sample_weight=np.ones(10), verbose=0)
    history = model.fit(x, y, validation_split=0.25, class_weight={0: 5.0}, verbose=0)
    # Keras floors n * (1 - split): the last 3 samples validate, with no class weights.
    np.testing.assert_allclose(history.history["val_loss"][0], model.evaluate(x[7:], y[7:], verbose=0), rtol=1e-6)
