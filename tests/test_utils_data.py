"""utils.pack_x_y_sample_weight / unpack_x_y_sample_weight / is_keras_tensor / get_source_inputs /
normalize: against direct definitions and, where Keras is installed, against Keras 3."""
import os

import numpy as np
import pytest

import cynet
from cynet import utils

RNG = np.random.default_rng(0)


def test_pack_and_unpack():
    x, y, w = np.ones(2), np.zeros(2), np.full(2, 0.5)
    assert utils.pack_x_y_sample_weight(x) == (x,)
    assert utils.pack_x_y_sample_weight(x, y) == (x, y)
    assert utils.pack_x_y_sample_weight(x, y, w) == (x, y, w)
    for data in ((x,), (x, y), (x, y, w)):
        assert utils.unpack_x_y_sample_weight(data)[:len(data)] == data
    assert utils.unpack_x_y_sample_weight(x)[0] is x and utils.unpack_x_y_sample_weight(x)[1:] == (None, None)
    assert utils.unpack_x_y_sample_weight([x, y]) == (x, y, None)
    with pytest.raises(ValueError, match="format"):
        utils.unpack_x_y_sample_weight((x, y, w, w))


def test_symbolic_tensors():
    a, b = cynet.Input((3,)), cynet.Input((3,))
    c = cynet.layers.Add()([cynet.layers.Dense(3)(a), b])
    d = cynet.layers.Dense(2)(c)
    assert utils.is_keras_tensor(d) and not utils.is_keras_tensor(np.ones(3))
    assert utils.get_source_inputs(d) == [a, b] and utils.get_source_inputs(a) == [a]
    with pytest.raises(ValueError, match="symbolic"):
        utils.get_source_inputs(np.ones(3))


@pytest.mark.parametrize("axis,order", [(-1, 2), (0, 2), (1, 1), (-1, np.inf)])
def test_normalize(axis, order):
    x = RNG.standard_normal((4, 5))
    x[1] = 0.0
    norm = np.linalg.norm(x, order, axis, keepdims=True)
    np.testing.assert_allclose(utils.normalize(x, axis, order), x / np.where(norm == 0, 1, norm))
    assert utils.normalize(np.arange(4), 0).dtype == np.float32


def test_equal_to_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    x = RNG.standard_normal((3, 6))
    for order in (1, 2):                      # (Keras turns axis=0 into -1: compared on the last axis)
        np.testing.assert_allclose(utils.normalize(x, -1, order), keras.utils.normalize(x, -1, order))
    for data in ((1,), (1, 2), [1, 2, 3], 7):
        assert utils.unpack_x_y_sample_weight(data) == keras.utils.unpack_x_y_sample_weight(data)
    assert utils.pack_x_y_sample_weight(1, 2) == keras.utils.pack_x_y_sample_weight(1, 2)
