"""CustomObjectScope / custom_object_scope (Keras 3's keras.saving and keras.utils names): custom
layers, regularizers, initializers and constraints found by name inside the scope only, by
.keras loading, deserialize_keras_object, layers.deserialize and from_config; nesting, threads,
exceptions, refused arguments; and a .keras file Keras 3 wrote with a custom layer, loaded under
a scope (when Keras 3 runs with the PyTorch backend)."""
import os
import threading

import numpy as np
import pytest

import cynet
from cynet import constraints, initializers, layers, regularizers, saving
from cynet.utils import CustomObjectScope, custom_object_scope


class Scaled(layers.Layer):
    """A custom layer: x * factor (no weights)."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class HalfL2(regularizers.Regularizer):
    def __init__(self, s=0.5):
        self.s = s

    def __call__(self, w):
        return self.s * np.sum(np.square(w))

    def get_config(self):
        return {"s": self.s}


class Threes(initializers.Initializer):
    def __call__(self, shape, dtype=None):
        return np.full(shape, 3.0, dtype=dtype or "float32")


class Clip1(constraints.Constraint):
    def __call__(self, w):
        return np.clip(w, -1, 1)


def test_the_names_are_keras():
    assert custom_object_scope is CustomObjectScope
    assert saving.CustomObjectScope is CustomObjectScope and saving.custom_object_scope is CustomObjectScope
    scope = CustomObjectScope({"Scaled": Scaled})
    assert scope.custom_objects == {"Scaled": Scaled}
    with scope as entered:
        assert entered is scope
    assert "Scaled" not in saving.get_custom_objects()


def test_keras_file_and_deserialize_see_the_scope(tmp_path):
    inp = cynet.Input((3,))
    model = cynet.Model(inp, layers.Dense(2)(Scaled(3.0, name="scaled")(inp)))
    path = str(tmp_path / "m.keras")
    model.save(path)
    x = np.ones((2, 3), np.float32)
    with pytest.raises(Exception, match="Scaled"):
        saving.load_model(path)
    with CustomObjectScope({"Scaled": Scaled}):
        loaded = saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.get_layer("scaled").factor == 3.0
    entry = saving.serialize_keras_object(Scaled(5.0))
    with pytest.raises(ValueError):
        saving.deserialize_keras_object(entry)
    with custom_object_scope({"Scaled": Scaled}):
        assert saving.deserialize_keras_object(entry).factor == 5.0
        assert layers.deserialize(layers.serialize(Scaled(4.0))).factor == 4.0


def test_from_config_finds_custom_regularizers_initializers_constraints():
    config = layers.Dense(3, kernel_regularizer=HalfL2(0.25), kernel_initializer=Threes(),
                          kernel_constraint=Clip1()).get_config()
    config = {**config, "kernel_regularizer": regularizers.serialize(HalfL2(0.25)),
              "kernel_initializer": {"class_name": "Threes", "config": {}},
              "kernel_constraint": {"class_name": "Clip1", "config": {}}}
    with pytest.raises(ValueError, match="HalfL2|Threes|Clip1"):
        layers.Dense.from_config(config)
    with CustomObjectScope({"HalfL2": HalfL2, "Threes": Threes, "Clip1": Clip1}):
        layer = layers.Dense.from_config(config)
        layer.build((None, 2))
    np.testing.assert_array_equal(layer.kernel.value, 3.0)
    assert layer.losses == [pytest.approx(0.25 * 9.0 * 6)]   # HalfL2(0.25) of the 2 x 3 kernel of threes
    with CustomObjectScope({"HalfL2": HalfL2}):
        reg = regularizers.get({"class_name": "HalfL2", "config": {"s": 0.25}})
        assert isinstance(reg, HalfL2) and reg.s == 0.25
    with CustomObjectScope({"Clip1": Clip1, "Threes": Threes}):
        assert isinstance(constraints.get({"class_name": "Clip1", "config": {}}), Clip1)
        assert isinstance(initializers.get({"class_name": "Threes", "config": {}}), Threes)
    with pytest.raises(ValueError, match="Clip1"):
        constraints.get({"class_name": "Clip1", "config": {}})


def test_nesting_exceptions_and_threads():
    with CustomObjectScope({"A": 1, "B": 2}):
        with CustomObjectScope({"B": 3}, {"C": 4}):
            assert [saving.get_registered_object(n) for n in "ABC"] == [1, 3, 4]
        assert [saving.get_registered_object(n) for n in "ABC"] == [1, 2, None]
    with pytest.raises(RuntimeError):
        with CustomObjectScope({"A": 1}):
            raise RuntimeError("inside")
    assert saving.get_registered_object("A") is None
    scope, seen, ready, done = CustomObjectScope({"A": 1}), [], threading.Event(), threading.Event()

    def other():
        ready.wait()
        seen.append(saving.get_registered_object("A"))   # another thread: not in this scope
        with scope:
            seen.append(saving.get_registered_object("A"))
        done.set()
    thread = threading.Thread(target=other)
    thread.start()
    with scope:
        ready.set()
        done.wait()
        assert saving.get_registered_object("A") == 1
    thread.join()
    assert seen == [None, 1] and saving.get_registered_object("A") is None
    with CustomObjectScope(None):
        pass


@pytest.mark.parametrize("bad", [["Scaled"], "Scaled", {1: Scaled}, 3])
def test_bad_arguments(bad):
    with pytest.raises(TypeError, match="custom_objects"):
        CustomObjectScope(bad)


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_loads_a_keras_file_with_a_custom_layer(tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3") or keras.backend.backend() != "torch":
        pytest.skip("needs Keras 3 with the PyTorch backend")

    class KerasScaled(keras.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.Dense(2)(KerasScaled(3.0, name="scaled")(inp)))
    path = str(tmp_path / "k.keras")
    with keras.saving.CustomObjectScope({"KerasScaled": KerasScaled}):
        model.save(path)
    x = np.ones((2, 3), np.float32)
    with CustomObjectScope({"KerasScaled": Scaled}):
        loaded = saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), keras.ops.convert_to_numpy(model(x)), rtol=1e-6)
