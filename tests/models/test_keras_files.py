"""Keras 3's own files, both directions: `.keras` archives and `.weights.h5` written by real Keras
(KERAS_BACKEND=torch) load in cynet with equal predictions, and resume training with the optimizer
state exactly as Keras goes on; cynet's files load in Keras the same way. Skipped without Keras."""
import os

import numpy as np
import pytest

import cynet

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytest.importorskip("h5py")

RNG = np.random.default_rng(0)


def _cnn(lib):
    # A ReLU between the convolution and BatchNormalization: a bias feeding BatchNormalization
    # directly has a gradient that is exactly zero, so what both libraries compute for it is rounding
    # noise (~1e-9, different in each), which Adam's g / (sqrt(v) + eps) turns into steps of ~lr:
    # the two runs then drift apart by ~1e-4 in that bias alone with no semantic difference (with SGD,
    # or with the ReLU, they agree to ~1e-8).
    L = lib.layers
    return lib.Sequential([lib.Input((8, 8, 1)), L.Conv2D(3, 3, activation="relu", name="c1"), L.BatchNormalization(),
                           L.MaxPooling2D(), L.Flatten(), L.Dense(4, activation="softmax", name="out")])


def _text(lib):
    L = lib.layers
    return lib.Sequential([lib.Input((7,), dtype="int32"), L.Embedding(20, 5), L.LSTM(6), L.Dense(3)])


def _gru(lib):
    L = lib.layers
    return lib.Sequential([lib.Input((6, 3)), L.GRU(5, return_sequences=True), L.SimpleRNN(4), L.Dense(2)])


def _bidir(lib):
    L = lib.layers
    return lib.Sequential([lib.Input((6, 3)), L.Bidirectional(L.LSTM(4)), L.Dense(2)])


def _residual(lib):
    L = lib.layers
    i = lib.Input((6,), name="inp")
    a = L.Dense(5, activation="relu", name="a")(i)
    b = L.Dense(5)(a)
    return lib.Model(i, L.Dense(3)(L.Add()([a, b])))


def _two_outputs(lib):
    L = lib.layers
    i = lib.Input((6,))
    h = L.Dense(5, activation="tanh")(i)
    return lib.Model(i, [L.Dense(2, name="reg")(h), L.Dense(3, activation="softmax", name="cls")(h)])


def _nested(lib):
    """A Sequential inside a Functional model (its weights sit under the nested model's own layers)."""
    L = lib.layers
    inner = lib.Sequential([lib.Input((6,)), L.Dense(5, activation="relu"), L.Dense(4)], name="inner")
    i = lib.Input((6,))
    return lib.Model(i, L.Dense(3, activation="softmax")(L.Add()([inner(i), L.Dense(4)(i)])))


def _constrained(lib):
    """Weight constraints, which the optimizer applies after each step in both libraries, and an
    activity regularizer (its penalty is part of the loss both report)."""
    L, C = lib.layers, lib.constraints
    return lib.Sequential([lib.Input((6,)),
                           L.Dense(5, activation="relu", kernel_constraint=C.MaxNorm(0.3), bias_constraint="non_neg",
                                   activity_regularizer=lib.regularizers.L1(0.02)),
                           L.BatchNormalization(gamma_constraint=C.MinMaxNorm(0.5, 1.0, rate=0.5, axis=0)),
                           L.Dense(3, activation="softmax", kernel_constraint=C.UnitNorm(axis=[0, 1]))])


def _data(name):
    if name == "cnn":
        return RNG.random((16, 8, 8, 1)).astype("float32"), RNG.integers(0, 4, 16)
    if name == "text":
        return RNG.integers(0, 20, (16, 7)).astype("int32"), RNG.integers(0, 3, 16)
    if name in ("gru", "bidir"):
        return RNG.standard_normal((16, 6, 3)).astype("float32"), RNG.standard_normal((16, 2)).astype("float32")
    x = RNG.standard_normal((16, 6)).astype("float32")
    if name == "two_outputs":
        return x, [RNG.standard_normal((16, 2)).astype("float32"), RNG.integers(0, 3, 16)]
    return x, RNG.integers(0, 3, 16)


MODELS = {"cnn": _cnn, "text": _text, "gru": _gru, "bidir": _bidir, "residual": _residual,
          "two_outputs": _two_outputs, "nested": _nested, "constrained": _constrained}
LOSSES = {"cnn": "sparse_categorical_crossentropy", "text": "sparse_categorical_crossentropy", "gru": "mse",
          "bidir": "mse", "residual": "sparse_categorical_crossentropy", "nested": "sparse_categorical_crossentropy",
          "two_outputs": ["mse", "sparse_categorical_crossentropy"], "constrained": "sparse_categorical_crossentropy"}


def _compile(model, name):
    model.compile(optimizer="adam", loss=LOSSES[name])


def _predict(model, x):
    out = model.predict(x, verbose=0)
    return [np.asarray(o) for o in out] if isinstance(out, list) else [np.asarray(out)]


def _close(a, b, tol=1e-5):
    for p, q in zip(a, b):
        np.testing.assert_allclose(p, q, rtol=tol, atol=tol)


def _losses(history):
    return np.array(history.history["loss"])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_keras_archive_loads_predicts_and_resumes_in_cynet(name, tmp_path):
    x, y = _data(name)
    km = MODELS[name](keras)
    _compile(km, name)
    km.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    path = str(tmp_path / "m.keras")
    km.save(path)
    cm = cynet.models.load_model(path)
    _close(_predict(cm, x), _predict(km, x))
    h_k = km.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    h_c = cm.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(_losses(h_c), _losses(h_k), rtol=1e-4)
    _close(_predict(cm, x), _predict(km, x), 1e-4)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_cynet_archive_loads_predicts_and_resumes_in_keras(name, tmp_path):
    x, y = _data(name)
    cm = MODELS[name](cynet)
    _compile(cm, name)
    cm.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    path = str(tmp_path / "m.keras")
    cm.save(path)
    km = keras.saving.load_model(path)
    _close(_predict(km, x), _predict(cm, x))
    h_c = cm.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    h_k = km.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(_losses(h_k), _losses(h_c), rtol=1e-4)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_weights_h5_both_directions(name, tmp_path):
    x, _ = _data(name)
    km, cm = MODELS[name](keras), MODELS[name](cynet)
    path = str(tmp_path / "w.weights.h5")
    km.save_weights(path)
    cm.load_weights(path)
    _close(_predict(cm, x), _predict(km, x))
    cm2 = MODELS[name](cynet)
    path2 = str(tmp_path / "c.weights.h5")
    cm2.save_weights(path2)
    km.load_weights(path2)
    _close(_predict(km, x), _predict(cm2, x))


@pytest.mark.parametrize("name", ["cnn", "residual"])
def test_an_optimizer_saved_before_its_first_step_stays_unbuilt(name, tmp_path):
    """Keras saves a compiled model that has not trained with the optimizer's iteration counter and
    learning rate alone; both libraries then build the optimizer on the first step."""
    x, y = _data(name)
    km = MODELS[name](keras)
    _compile(km, name)
    path = str(tmp_path / "k.keras")
    km.save(path)
    cm = cynet.models.load_model(path)
    assert not cm.optimizer.built and cm.optimizer.iterations == 0
    h_k = km.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    h_c = cm.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(_losses(h_c), _losses(h_k), rtol=1e-4)

    cm = MODELS[name](cynet)
    _compile(cm, name)
    path = str(tmp_path / "c.keras")
    cm.save(path)
    import h5py
    import zipfile
    with zipfile.ZipFile(path) as zf, h5py.File(__import__("io").BytesIO(zf.read("model.weights.h5")), "r") as f:
        assert sorted(f["optimizer/vars"].keys()) == ["0", "1"]     # iterations, learning rate (as Keras)
    km = keras.saving.load_model(path)
    h_c = cm.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    h_k = km.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(_losses(h_k), _losses(h_c), rtol=1e-4)


def test_model_checkpoint_writes_keras_files(tmp_path):
    """ModelCheckpoint("best.keras") and ("w.weights.h5", save_weights_only=True) write files Keras loads."""
    x, y = _data("residual")
    cm = _residual(cynet)
    _compile(cm, "residual")
    best, weights = str(tmp_path / "best.keras"), str(tmp_path / "w-{epoch}.weights.h5")
    cm.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_data=(x, y), callbacks=[
        cynet.callbacks.ModelCheckpoint(best, save_best_only=True),
        cynet.callbacks.ModelCheckpoint(weights, save_weights_only=True)])
    km = keras.saving.load_model(best)
    km2 = _residual(keras)
    km2.load_weights(str(tmp_path / "w-2.weights.h5"))
    _close(_predict(km2, x), _predict(cm, x))
    assert km.optimizer.iterations.numpy() > 0


def test_importing_cynet_does_not_import_h5py():
    """h5py loads only when a Keras file is read or written (a lazy import keeps `import cynet` light)."""
    import subprocess
    import sys
    code = "import sys, cynet, cynet.models, cynet.saving; print('h5py' in sys.modules)"
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _net_class(lib, register):
    """The same subclassed model in either library, registered as "kf_demo>Net"."""
    @register(package="kf_demo")
    class Net(lib.Model):
        def __init__(self, units=4, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.hidden = lib.layers.Dense(units, activation="relu")
            self.blocks = [lib.layers.Dense(units), lib.layers.Dense(units)]
            self.out = lib.layers.Dense(2)      # filed by Keras under layers/dense_3 (after `blocks`, `hidden`)

        def call(self, x):
            h = self.hidden(x)
            for block in self.blocks:
                h = h + block(h)
            return self.out(h)

        def get_config(self):
            return {"units": self.units, "name": self.name, "trainable": self.trainable}
    return Net


def test_a_registered_subclassed_model_both_ways(tmp_path):
    knet = _net_class(keras, keras.saving.register_keras_serializable)
    cnet = _net_class(cynet, cynet.saving.register_keras_serializable)
    x = RNG.standard_normal((8, 3)).astype("float32")
    y = RNG.standard_normal((8, 2)).astype("float32")
    for make_src, load_dst in ((knet, cynet.models.load_model), (cnet, keras.saving.load_model)):
        src = make_src(4)
        src.compile(optimizer="adam", loss="mse")
        src.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
        path = str(tmp_path / "net.keras")
        src.save(path)
        dst = load_dst(path)
        _close(_predict(dst, x), _predict(src, x))
        h_src = src.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
        h_dst = dst.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
        np.testing.assert_allclose(_losses(h_dst), _losses(h_src), rtol=1e-5)


OPTIMIZERS = {"sgd_nesterov": ("SGD", dict(learning_rate=0.01, momentum=0.9, nesterov=True)),
              "rmsprop_centered": ("RMSprop", dict(learning_rate=0.01, momentum=0.5, centered=True)),
              "adamw": ("AdamW", dict(learning_rate=0.01)), "adagrad": ("Adagrad", dict(learning_rate=0.1)),
              "nadam": ("Nadam", dict(learning_rate=0.01)), "adadelta": ("Adadelta", dict(learning_rate=1.0)),
              "amsgrad": ("Adam", dict(learning_rate=0.01, amsgrad=True)),
              "adamax": ("Adamax", dict(learning_rate=0.01)),
              "ftrl": ("Ftrl", dict(learning_rate=0.1, l1_regularization_strength=0.001, beta=0.1)),
              "lion": ("Lion", dict(learning_rate=0.001)),
              "adafactor": ("Adafactor", dict(learning_rate=0.01))}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizers_state_resumes_across_libraries(name, tmp_path):
    """Each optimizer's variables (slots in Keras's order) carry over in both directions."""
    cls, kwargs = OPTIMIZERS[name]
    x = RNG.standard_normal((16, 6)).astype("float32")
    y = RNG.standard_normal((16, 2)).astype("float32")
    for src_lib, load in ((keras, cynet.models.load_model), (cynet, keras.saving.load_model)):
        src = src_lib.Sequential([src_lib.Input((6,)), src_lib.layers.Dense(5, activation="tanh"),
                                  src_lib.layers.Dense(2)])
        src.compile(optimizer=getattr(src_lib.optimizers, cls)(**kwargs), loss="mse")
        src.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
        path = str(tmp_path / f"{name}.keras")
        src.save(path)
        dst = load(path)
        h_src = src.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
        h_dst = dst.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
        np.testing.assert_allclose(_losses(h_dst), _losses(h_src), rtol=1e-5)


_IMG = RNG.standard_normal((4, 8, 8, 3)).astype("float32")
_SEQ = RNG.standard_normal((4, 6, 3)).astype("float32")
_VEC = RNG.standard_normal((4, 6)).astype("float32")
LAYER_CASES = {  # name -> (input, layers(L)): one Sequential per case, saved by each library, loaded by the other
    "Activation": (_VEC, lambda L: [L.Activation("tanh")]),
    "AlphaDropout": (_VEC, lambda L: [L.AlphaDropout(0.1)]),
    "AveragePooling2D": (_IMG, lambda L: [L.AveragePooling2D(2, padding="same")]),
    "CenterCrop": (_IMG, lambda L: [L.CenterCrop(4, 6)]),
    "Conv2D": (_IMG, lambda L: [L.Conv2D(4, 3, strides=2, padding="same", kernel_regularizer="l2")]),
    "Cropping1D": (_SEQ, lambda L: [L.Cropping1D((1, 2))]),
    "Cropping2D": (_IMG, lambda L: [L.Cropping2D(((1, 2), (0, 1)))]),
    "Dropout": (_VEC, lambda L: [L.Dropout(0.3, seed=3)]),
    "ELU": (_VEC, lambda L: [L.ELU(0.5)]),
    "GaussianDropout": (_VEC, lambda L: [L.GaussianDropout(0.2)]),
    "GaussianNoise": (_VEC, lambda L: [L.GaussianNoise(0.2)]),
    "GlobalAveragePooling1D": (_SEQ, lambda L: [L.GlobalAveragePooling1D()]),
    "GlobalAveragePooling2D": (_IMG, lambda L: [L.GlobalAveragePooling2D(keepdims=True)]),
    "GlobalMaxPooling1D": (_SEQ, lambda L: [L.GlobalMaxPooling1D()]),
    "GlobalMaxPooling2D": (_IMG, lambda L: [L.GlobalMaxPooling2D()]),
    "Identity": (_VEC, lambda L: [L.Identity()]),
    "LeakyReLU": (_VEC, lambda L: [L.LeakyReLU(negative_slope=0.2)]),
    "MaxPooling2D": (_IMG, lambda L: [L.MaxPooling2D(3, strides=2)]),
    "PReLU": (_VEC, lambda L: [L.PReLU()]),
    "Permute": (_SEQ, lambda L: [L.Permute((2, 1))]),
    "ReLU": (_VEC, lambda L: [L.ReLU(max_value=2.0)]),
    "RepeatVector": (_VEC, lambda L: [L.RepeatVector(3)]),
    "Rescaling": (_VEC, lambda L: [L.Rescaling(2.0, offset=1.0)]),
    "Reshape": (_VEC, lambda L: [L.Reshape((3, 2))]),
    "Softmax": (_VEC, lambda L: [L.Softmax()]),
    "SpatialDropout1D": (_SEQ, lambda L: [L.SpatialDropout1D(0.2)]),
    "SpatialDropout2D": (_IMG, lambda L: [L.SpatialDropout2D(0.2)]),
    "TimeDistributed": (_SEQ, lambda L: [L.TimeDistributed(L.Dense(4))]),
    "UpSampling1D": (_SEQ, lambda L: [L.UpSampling1D(2)]),
    "UpSampling2D": (_IMG, lambda L: [L.UpSampling2D(2)]),
    "ZeroPadding1D": (_SEQ, lambda L: [L.ZeroPadding1D(1)]),
    "ZeroPadding2D": (_IMG, lambda L: [L.ZeroPadding2D(1)]),
    "recurrent_options": (_SEQ, lambda L: [L.LSTM(4, return_sequences=True, go_backwards=True), L.GRU(3)]),
    "Bidirectional_sum": (_SEQ, lambda L: [L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum")]),
}
MERGES = ["Concatenate", "Average", "Maximum", "Minimum", "Multiply", "Subtract", "Dot"]


def _layer_case(lib, name):
    if name in MERGES:
        L = lib.layers
        a, b = lib.Input((6,)), lib.Input((6,))
        merge = getattr(L, name)(**({"axes": 1} if name == "Dot" else {}))
        return lib.Model([a, b], merge([L.Dense(4)(a), L.Dense(4)(b)])), [_VEC, _VEC]
    x, layers = LAYER_CASES[name]
    return lib.Sequential([lib.Input(x.shape[1:])] + layers(lib.layers)), x


@pytest.mark.parametrize("name", sorted(LAYER_CASES) + MERGES)
def test_each_layer_round_trips_through_keras_archives(name, tmp_path):
    for src_lib, load in ((keras, cynet.models.load_model), (cynet, keras.saving.load_model)):
        src, x = _layer_case(src_lib, name)
        path = str(tmp_path / f"{name}.keras")
        src.save(path)
        _close(_predict(load(path), x), _predict(src, x))
