"""Model files keep the optimizer's state exactly, at every point of a model's life.

A compiled model saved before its first `fit` (its optimizer not built yet, as Keras builds it
lazily), a fitted one (iterations and every slot), and an uncompiled one all load; a loaded model
then trains bit for bit as the original does. For every optimizer and the base class's own slots
(EMA, gradient accumulation).
"""
import json
import zipfile

import numpy as np
import pytest

from cynet import layers, models, optimizers, utils
from cynet.saving import FileFormatError

X = np.random.default_rng(1).standard_normal((32, 4)).astype("float32")
Y = np.random.default_rng(2).standard_normal((32, 3)).astype("float32")

OPTIMIZERS = {
    "sgd": lambda: optimizers.SGD(learning_rate=0.05),
    "sgd-momentum": lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9),
    "sgd-nesterov": lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
    "adam": lambda: optimizers.Adam(learning_rate=0.01),
    "adam-amsgrad": lambda: optimizers.Adam(learning_rate=0.01, amsgrad=True),
    "adamw": lambda: optimizers.AdamW(learning_rate=0.01),
    "nadam": lambda: optimizers.Nadam(learning_rate=0.01),
    "rmsprop": lambda: optimizers.RMSprop(learning_rate=0.01),
    "rmsprop-momentum": lambda: optimizers.RMSprop(learning_rate=0.01, momentum=0.9),
    "rmsprop-centered": lambda: optimizers.RMSprop(learning_rate=0.01, centered=True),
    "rmsprop-momentum-centered": lambda: optimizers.RMSprop(learning_rate=0.01, momentum=0.5, centered=True),
    "adagrad": lambda: optimizers.Adagrad(learning_rate=0.05),
    "adadelta": lambda: optimizers.Adadelta(learning_rate=1.0),
    "adamax": lambda: optimizers.Adamax(learning_rate=0.01),
    "ftrl": lambda: optimizers.Ftrl(learning_rate=0.1, l1_regularization_strength=0.001),
    "lion": lambda: optimizers.Lion(learning_rate=0.001),
    "adafactor": lambda: optimizers.Adafactor(learning_rate=0.01),
    "adam-ema": lambda: optimizers.Adam(learning_rate=0.01, use_ema=True, ema_overwrite_frequency=3),
    "sgd-accumulation": lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9, gradient_accumulation_steps=2),
}


def architecture():
    utils.set_random_seed(3)
    return models.Sequential([layers.Input(shape=(4,)), layers.Dense(6, activation="tanh", name="hidden"),
                              layers.BatchNormalization(name="bn"), layers.Dense(3, name="out")])


def compiled(name):
    model = architecture()
    model.compile(optimizer=OPTIMIZERS[name](), loss="mse")
    return model


def fit(model, epochs=1, n=32):
    model.fit(X[:n], Y[:n], epochs=epochs, batch_size=8, shuffle=False, verbose=0)


def state(model):
    """Weights, then the optimizer's (path, value) pairs."""
    opt = model.optimizer
    return model.get_weights(), [(v.path, v.value) for v in opt.variables] if opt is not None else []


def assert_same_state(a, b):
    (wa, oa), (wb, ob) = state(a), state(b)
    assert len(wa) == len(wb) and len(oa) == len(ob)
    for x, y in zip(wa, wb):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)
    for (pa, x), (pb, y) in zip(oa, ob):
        assert pa == pb and x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_compiled_model_saved_before_its_first_fit_loads_and_trains_as_the_original(tmp_path, name):
    model = compiled(name)
    path = tmp_path / "untrained.cynet"
    model.save(path)
    loaded = models.load_model(path)
    assert loaded.compiled and type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert not loaded.optimizer.built and loaded.optimizer.iterations == 0  # built on the first step, as Keras
    assert_same_state(loaded, model)
    fit(model, epochs=2)
    fit(loaded, epochs=2)
    assert model.optimizer.iterations > 0
    assert_same_state(loaded, model)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_fitted_model_restores_its_optimizer_state_bit_exactly(tmp_path, name):
    model = compiled(name)
    fit(model, n=24)  # 3 steps
    path = tmp_path / "trained.cynet"
    model.save(path)
    loaded = models.load_model(path)
    assert loaded.optimizer.built
    assert int(loaded.optimizer._iterations.value) == int(model.optimizer._iterations.value) == 3
    assert len(loaded.optimizer.variables) > 1 or name == "sgd"
    assert_same_state(loaded, model)
    # One more step on each gives identical weights and state.
    fit(model, n=8)
    fit(loaded, n=8)
    assert_same_state(loaded, model)
    # And the model file of the loaded model is the same as the original's.
    again = tmp_path / "again.cynet"
    loaded.save(again)
    model.save(path)
    with zipfile.ZipFile(path) as za, zipfile.ZipFile(again) as zb:
        assert [(i.filename, za.read(i)) for i in za.infolist()] == [(i.filename, zb.read(i)) for i in zb.infolist()]


@pytest.mark.parametrize("name", ["adam", "sgd-momentum", "rmsprop-momentum-centered"])
def test_optimizer_state_loads_onto_the_weights_it_was_built_on_after_a_layer_is_frozen(tmp_path, name):
    """The optimizer was built on all trainable weights; freezing a layer afterwards changes
    `trainable_weights` but not the optimizer's slots, which load onto the same weights."""
    model = compiled(name)
    fit(model, n=16)
    model.get_layer("hidden").trainable = False
    path = tmp_path / "frozen.cynet"
    model.save(path)
    loaded = models.load_model(path)
    assert not loaded.get_layer("hidden").trainable
    assert_same_state(loaded, model)
    before = loaded.get_layer("hidden").get_weights()
    fit(model, n=8)
    fit(loaded, n=8)
    assert_same_state(loaded, model)
    for a, b in zip(before, loaded.get_layer("hidden").get_weights()):
        np.testing.assert_array_equal(a, b)  # frozen: untouched


def test_an_uncompiled_model_round_trips_and_trains_like_the_original_once_compiled(tmp_path):
    model = architecture()
    path = tmp_path / "plain.cynet"
    model.save(path)
    loaded = models.load_model(path)
    assert not loaded.compiled and loaded.optimizer is None
    assert_same_state(loaded, model)
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), model.predict(X, verbose=0))
    for m in (model, loaded):
        m.compile(optimizer="adam", loss="mse")
        fit(m)
    assert_same_state(loaded, model)


def test_compile_false_loads_a_compiled_model_without_its_optimizer(tmp_path):
    for fitted in (False, True):
        model = compiled("adam")
        if fitted:
            fit(model)
        path = tmp_path / "m.cynet"
        model.save(path)
        loaded = models.load_model(path, compile=False)
        assert not loaded.compiled
        for a, b in zip(loaded.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)


def _without_built_on(src, dst):
    """src rewritten as cynet wrote it before it recorded 'optimizer_built_on'."""
    with zipfile.ZipFile(src) as zf:
        items = [(i.filename, zf.read(i)) for i in zf.infolist()]
    config = json.loads(dict(items)["config.json"])
    del config["optimizer_built_on"]
    with zipfile.ZipFile(dst, "w") as zf:
        for n, d in items:
            zf.writestr(n, json.dumps(config).encode() if n == "config.json" else d)
    return dst


@pytest.mark.parametrize("fitted", [False, True])
def test_files_written_before_the_optimizer_recorded_its_weights_still_load(tmp_path, fitted):
    model = compiled("adam")
    if fitted:
        fit(model)
    model.save(tmp_path / "new.cynet")
    loaded = models.load_model(_without_built_on(tmp_path / "new.cynet", tmp_path / "old.cynet"))
    assert loaded.optimizer.built == fitted
    assert_same_state(loaded, model)
    fit(model, n=8)
    fit(loaded, n=8)
    assert_same_state(loaded, model)


def test_an_optimizer_built_on_another_models_weights_is_refused_at_save(tmp_path):
    model, other = compiled("adam"), architecture()
    other.compile(optimizer=model.optimizer, loss="mse")
    fit(model)
    with pytest.raises(ValueError, match="not a weight of this model"):
        other.save(tmp_path / "shared.cynet")
    assert not (tmp_path / "shared.cynet").exists()


def test_optimizer_state_that_does_not_match_is_refused_before_the_slots_are_allocated(tmp_path):
    """A file whose config asks for an optimizer with more slots than the file holds is refused
    after the weights are read but before any slot is created."""
    import tracemalloc

    utils.set_random_seed(0)
    model = models.Sequential([layers.Input(shape=(1000,)), layers.Dense(1000, name="big")])  # 4 MB kernel
    model.compile(optimizer=optimizers.SGD(), loss="mse")
    model.fit(X[:2, :1].repeat(1000, axis=1), Y[:2, :1].repeat(1000, axis=1), epochs=1, verbose=0)
    path = tmp_path / "sgd.cynet"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        items = [(i.filename, zf.read(i)) for i in zf.infolist()]
    config = json.loads(dict(items)["config.json"])
    config["compile"]["optimizer"] = optimizers.serialize(optimizers.Adam(amsgrad=True, use_ema=True))
    hostile = tmp_path / "hostile.cynet"
    with zipfile.ZipFile(hostile, "w") as zf:
        for n, d in items:
            zf.writestr(n, json.dumps(config).encode() if n == "config.json" else d)

    def peak(call):
        tracemalloc.start()
        try:
            call()
        finally:
            value = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        return value

    models.load_model(path)  # warm up lazy imports
    weights_only = peak(lambda: models.load_model(path, compile=False))

    def refuse():
        with pytest.raises(FileFormatError, match="optimizer") as info:
            models.load_model(hostile)
        assert str(hostile) in str(info.value)

    assert peak(refuse) < weights_only + 2**20  # the four 4 MB slots Adam would build are never allocated
