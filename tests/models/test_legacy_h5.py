"""Legacy HDF5 files (TF-Keras 2's `model.save("m.h5")` / `save_weights("w.h5")`), read only: the
committed fixtures written by tests/fixtures/make_legacy_h5.py in the documented layout (no
TensorFlow here). Without Keras the predictions are checked against the same model built in code
with the fixture's arrays; with Keras, against Keras 3's own legacy reader on the same file."""
import importlib.util
import os

import numpy as np
import pytest

import cynet

pytest.importorskip("h5py")
FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
_spec = importlib.util.spec_from_file_location("make_legacy_h5", os.path.join(FIXTURES, "make_legacy_h5.py"))
make = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make)


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def _sequential(lib):
    L = lib.layers
    return lib.Sequential([lib.Input((3,)), L.Dense(4, activation="relu"), L.BatchNormalization(),
                           L.Dense(2, activation="softmax")])


def _functional(lib):
    L = lib.layers
    i = lib.Input((5, 3))
    h = L.LSTM(4)(i)
    return lib.Model(i, L.Dense(2)(L.Add()([h, L.Dense(4, activation="tanh")(h)])))


def _with_fixture_weights(model, layout, seed):
    values = make.arrays(layout, seed)
    names = [n for _, weights in layout for n, _ in weights]
    trainable_first = [w for layer in model.layers for w in list(layer.trainable_weights) +
                       list(layer.non_trainable_weights)]
    for var, name in zip(trainable_first, names):
        var.assign(values[name])
    return model


X_SEQ = np.random.default_rng(5).standard_normal((8, 3)).astype("float32")
X_FUN = np.random.default_rng(6).standard_normal((8, 5, 3)).astype("float32")


def test_a_legacy_sequential_model_file_loads_and_compiles():
    path = os.path.join(FIXTURES, "legacy_sequential.h5")
    model = cynet.models.load_model(path)
    expected = _with_fixture_weights(_sequential(cynet), make.SEQUENTIAL_WEIGHTS, 1)
    np.testing.assert_allclose(model.predict(X_SEQ, verbose=0), expected.predict(X_SEQ, verbose=0), rtol=1e-6)
    assert model.compiled and type(model.optimizer).__name__ == "Adam"
    assert not model.optimizer.built            # TF's optimizer state is not restored: a fresh Adam
    model.fit(X_SEQ, np.arange(8) % 2, epochs=1, verbose=0)
    model.load_weights(path)                    # the weights of a full-model file, by layer name
    np.testing.assert_allclose(model.predict(X_SEQ, verbose=0), expected.predict(X_SEQ, verbose=0), rtol=1e-6)


def test_a_legacy_functional_model_with_an_lstm_loads():
    model = cynet.models.load_model(os.path.join(FIXTURES, "legacy_functional.h5"), compile=False)
    expected = _with_fixture_weights(_functional(cynet), make.FUNCTIONAL_WEIGHTS, 2)
    np.testing.assert_allclose(model.predict(X_FUN, verbose=0), expected.predict(X_FUN, verbose=0), rtol=1e-6)
    assert not model.compiled


def test_a_legacy_weights_file_loads_by_order_when_names_differ():
    model = cynet.Sequential([cynet.Input((3,)), cynet.layers.Dense(4, activation="relu", name="x"),
                              cynet.layers.BatchNormalization(name="y"), cynet.layers.Dense(2, activation="softmax")])
    model.load_weights(os.path.join(FIXTURES, "legacy_sequential_weights.h5"))
    expected = _with_fixture_weights(_sequential(cynet), make.SEQUENTIAL_WEIGHTS, 3)
    np.testing.assert_allclose(model.predict(X_SEQ, verbose=0), expected.predict(X_SEQ, verbose=0), rtol=1e-6)


def test_the_fixtures_are_what_the_generator_writes(tmp_path):
    """The committed files hold the generator's arrays (regenerate them with the script)."""
    import h5py
    for name, (writer, args) in make.FIXTURES.items():
        writer(str(tmp_path / name), *args)
        with h5py.File(os.path.join(FIXTURES, name), "r") as a, h5py.File(str(tmp_path / name), "r") as b:
            pairs = []
            a.visititems(lambda n, o: pairs.append(n) if isinstance(o, h5py.Dataset) else None)
            assert pairs
            for n in pairs:
                np.testing.assert_array_equal(a[n][()], b[n][()])


def test_keras_reads_the_legacy_fixtures_as_cynet_does():
    """Keras 3's legacy reader loads the fixtures' weights into the same models (built in code: Keras 3
    cannot rebuild TF-Keras 2's LSTM(time_major=...) or BatchNormalization(axis=[1]) configs, which
    cynet translates)."""
    keras = _keras()
    for build, name, x in ((_functional, "legacy_functional.h5", X_FUN), (_sequential, "legacy_sequential.h5", X_SEQ)):
        path = os.path.join(FIXTURES, name)
        km = build(keras)
        km.load_weights(path)
        np.testing.assert_allclose(cynet.models.load_model(path, compile=False).predict(x, verbose=0),
                                   km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_legacy_files_are_never_written(tmp_path):
    model = _sequential(cynet)
    for call in (model.save, model.save_weights):
        with pytest.raises(ValueError, match=r"legacy HDF5 format \('\.h5'\) is not supported"):
            call(str(tmp_path / "m.h5"))
