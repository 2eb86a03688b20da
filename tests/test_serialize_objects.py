"""saving.serialize_keras_object / deserialize_keras_object: every family of cynet object round
trips, plain data and arrays too, and the dicts are Keras 3's: Keras deserializes cynet's and cynet
deserializes Keras's (skipped without Keras)."""
import json
import os

import numpy as np
import pytest

import cynet
from cynet.saving import deserialize_keras_object as deserialize
from cynet.saving import serialize_keras_object as serialize


def _objects(lib):
    L = lib.layers
    inp = lib.Input((3,))
    return {
        "dense": L.Dense(3, activation="relu", kernel_regularizer=lib.regularizers.L2(0.1)),
        "lstm": L.LSTM(4, return_sequences=True),
        "bidirectional": L.Bidirectional(L.GRU(2)),
        "sequential": lib.Sequential([lib.Input((3,)), L.Dense(2)]),
        "functional": lib.Model(inp, L.Dense(2)(L.Dense(4, activation="relu")(inp))),
        "loss": lib.losses.Huber(2.0),
        "optimizer": lib.optimizers.Adam(0.01, beta_1=0.8),
        "schedule": lib.optimizers.schedules.ExponentialDecay(0.1, 100, 0.9),
        "initializer": lib.initializers.HeNormal(seed=3),
        "regularizer": lib.regularizers.L1L2(0.1, 0.2),
        "constraint": lib.constraints.MaxNorm(3.0, axis=[0, 1]),
        "metric": lib.metrics.AUC(num_thresholds=50),
    }


def _same(a, b):
    """Same class and the same scalar arguments (the libraries spell dtypes and shapes differently,
    and Keras keeps a learning rate as a float32 variable)."""
    assert type(a).__name__ == type(b).__name__
    ca, cb = a.get_config(), b.get_config()
    for k in set(ca) & set(cb) - {"name", "dtype"}:
        if isinstance(ca[k], float) or isinstance(cb[k], float):
            assert ca[k] == pytest.approx(cb[k], rel=1e-6), k
        elif isinstance(ca[k], (str, int, bool)) or ca[k] is None:
            assert ca[k] == cb[k], k


@pytest.mark.parametrize("name", sorted(_objects(cynet)))
def test_round_trip(name):
    obj = _objects(cynet)[name]
    data = json.loads(json.dumps(serialize(obj)))
    assert data["module"].startswith("keras")
    _same(deserialize(data), obj)


def test_plain_data_arrays_and_activations():
    data = serialize({"a": [1, 2.5, "x", None, True], "w": np.arange(4, dtype="float32"), "f": np.float64(0.5)})
    back = deserialize(json.loads(json.dumps(data)))
    assert back["a"] == [1, 2.5, "x", None, True] and back["f"] == 0.5
    np.testing.assert_array_equal(back["w"], np.arange(4, dtype="float32"))
    assert back["w"].dtype == np.float32
    assert serialize(cynet.activations.get("relu")) == "relu"


def test_custom_objects_and_errors():
    @cynet.saving.register_keras_serializable("tests")
    class Scaled(cynet.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    back = deserialize(json.loads(json.dumps(serialize(Scaled(3.0)))))
    assert type(back) is Scaled and back.factor == 3.0
    with pytest.raises(ValueError, match="Cannot deserialize class 'NoSuchThing'"):
        deserialize({"class_name": "NoSuchThing", "config": {}})
    with pytest.raises(TypeError, match="Cannot serialize"):
        serialize(object())


@pytest.mark.parametrize("name", sorted(_objects(cynet)))
def test_both_ways_with_keras(name):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    ours, theirs = _objects(cynet)[name], _objects(keras)[name]
    _same(keras.saving.deserialize_keras_object(json.loads(json.dumps(serialize(ours)))), ours)
    _same(deserialize(json.loads(json.dumps(keras.saving.serialize_keras_object(theirs)))), theirs)
