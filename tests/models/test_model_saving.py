"""Functional and subclassed models save and load with cynet's format; custom objects come from
one registry (register_keras_serializable, custom_objects=, custom_object_scope)."""
import numpy as np
import pytest

import cynet
from cynet import layers, saving
from cynet.saving import FileFormatError


def _two_io():
    cynet.utils.set_random_seed(0)
    a, b = cynet.Input((3,), name="a"), cynet.Input((2,), name="b")
    h = layers.Dense(4, activation="tanh")(layers.concatenate([a, b]))
    h = layers.BatchNormalization()(h)
    cls = layers.Dense(3, activation="softmax", name="cls")(h + 1.0)
    reg = layers.Dense(1, name="reg")(h[:, :2])
    return cynet.Model({"a": a, "b": b}, [cls, reg])


def _data(rng, n=16):
    return ({"a": rng.random((n, 3), dtype=np.float32), "b": rng.random((n, 2), dtype=np.float32)},
            [rng.integers(0, 3, n), rng.random((n, 1), dtype=np.float32)])


def test_a_fitted_functional_model_resumes_training_identically(tmp_path, rng):
    x, y = _data(rng)
    model = _two_io()
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.3],
                  metrics=[["accuracy"], []])
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = str(tmp_path / "m.cynet")
    model.save(path)
    loaded = cynet.models.load_model(path)
    assert type(loaded).__name__ == "Functional" and loaded.input_names == ["a", "b"]
    for p, q in zip(model.predict(x, verbose=0), loaded.predict(x, verbose=0)):
        np.testing.assert_array_equal(p, q)
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    history = loaded.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    assert set(history.history) == {"loss", "cls_loss", "reg_loss", "cls_accuracy"}
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_hostile_functional_config_is_refused_before_allocating(tmp_path):
    import json
    import zipfile
    inp = cynet.Input((4,))
    model = cynet.Model(inp, layers.Dense(2)(inp))
    path = str(tmp_path / "m.cynet")
    model.save(path)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(members["config.json"])
    config["model"]["config"]["layers"][1]["config"]["units"] = 10**9
    members["config.json"] = json.dumps(config).encode()
    bad = str(tmp_path / "bad.cynet")
    with zipfile.ZipFile(bad, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(FileFormatError, match="refused before allocating"):
        cynet.models.load_model(bad)


@saving.register_keras_serializable(package="tests")
class Residual(cynet.Model):
    def __init__(self, units=4, depth=2, **kwargs):
        super().__init__(**kwargs)
        self.units, self.depth = units, depth
        self.inner = [layers.Dense(units, activation="tanh") for _ in range(depth)]
        self.out = layers.Dense(1)

    def call(self, x, training=False):
        for layer in self.inner:
            x = layers.add([x, layer(x)]) if x.shape[-1] == self.units else layer(x)
        return self.out(x)


def test_a_registered_subclassed_model_saves_and_loads(tmp_path, rng):
    x, y = rng.random((8, 4), dtype=np.float32), rng.random((8, 1), dtype=np.float32)
    model = Residual(units=4, depth=3)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    assert model.get_config()["depth"] == 3
    path = str(tmp_path / "r.cynet")
    model.save(path)
    loaded = cynet.models.load_model(path)
    assert isinstance(loaded, Residual) and loaded.depth == 3
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


class Unregistered(Residual):
    pass


def test_custom_objects_and_scopes_resolve_unregistered_classes(tmp_path, rng):
    x = rng.random((2, 4), dtype=np.float32)
    model = Unregistered(units=4, depth=1)
    model(x)
    path = str(tmp_path / "u.cynet")
    model.save(path)
    with pytest.raises(FileFormatError, match="unknown model class 'Unregistered'"):
        cynet.models.load_model(path)
    loaded = cynet.models.load_model(path, custom_objects={"Unregistered": Unregistered})
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    with saving.custom_object_scope({"Unregistered": Unregistered}):
        assert isinstance(cynet.models.load_model(path), Unregistered)


@saving.register_keras_serializable(package="tests")
class Scale(cynet.layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor
        self.dense = layers.Dense(2)

    def call(self, x):
        return self.dense(x)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def test_a_registered_custom_layer_in_a_functional_model_round_trips(tmp_path, rng):
    inp = cynet.Input((3,))
    model = cynet.Model(inp, Scale(factor=3.0)(inp))
    config = model.get_config()
    assert config["layers"][1]["registered_name"] == "tests>Scale"
    clone = cynet.Model.from_config(config)
    assert clone.layers[1].factor == 3.0
    assert saving.get_registered_name(Scale) == "tests>Scale"
    assert saving.get_custom_objects()["tests>Scale"] is Scale


def test_from_config_takes_custom_objects():
    class Local(cynet.layers.Layer):
        def call(self, x):
            return x

    inp = cynet.Input((3,))
    config = cynet.Model(inp, layers.Dense(2)(Local()(inp))).get_config()
    with pytest.raises(ValueError, match="Unknown layer class 'Local'"):
        cynet.Model.from_config(config)
    model = cynet.Model.from_config(config, custom_objects={"Local": Local})
    assert isinstance(model.layers[1], Local)
    seq = cynet.Sequential([cynet.Input((3,)), Local()])
    assert isinstance(cynet.Sequential.from_config(seq.get_config(), custom_objects={"Local": Local}).layers[0],
                      Local)


def test_compiled_metric_settings_survive_saving(tmp_path, rng):
    model = cynet.Sequential([cynet.Input((3,)), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy",
                  metrics=[cynet.metrics.AUC(curve="PR", name="pr_auc"), "accuracy"])
    x, y = rng.random((16, 3), dtype=np.float32), rng.integers(0, 2, (16, 1)).astype(np.float32)
    model.fit(x, y, verbose=0)
    path = str(tmp_path / "m.cynet")
    model.save(path)
    loaded = cynet.models.load_model(path)
    auc = next(m for m in loaded.metrics if m.name == "pr_auc")
    assert type(auc).__name__ == "AUC" and auc.curve == "PR"
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0))
