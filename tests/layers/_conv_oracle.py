"""Shared helper of the convolution layer tests: one layer against Keras 3 (torch backend) with
copied weights: predictions, then one SGD step of a small model (the layer, Flatten, Dense; mean
squared error) giving the same loss and weights. Skipped cleanly when Keras 3 is missing."""
import os

import numpy as np
import pytest


def keras_or_skip():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3; found {keras.__version__}")
    return keras


def _model(lib, layer_cls, kwargs, shape):
    return lib.Sequential([lib.Input(shape[1:]), getattr(lib.layers, layer_cls)(**kwargs), lib.layers.Flatten(),
                           lib.layers.Dense(2)])


def check_against_keras(layer_cls, kwargs, shape, rng, rtol=1e-5, atol=1e-5):
    """predict and one SGD step of [layer_cls(**kwargs), Flatten, Dense(2)] equal in cynet and Keras."""
    keras = keras_or_skip()
    import cynet
    x = rng.normal(size=shape).astype(np.float32)
    kmodel, cmodel = _model(keras, layer_cls, kwargs, shape), _model(cynet, layer_cls, kwargs, shape)
    weights = [rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in kmodel.get_weights()]
    kmodel.set_weights(weights)
    cmodel.set_weights(weights)
    np.testing.assert_allclose(cmodel.predict(x, verbose=0), keras.ops.convert_to_numpy(kmodel(x)),
                               rtol=rtol, atol=atol, err_msg="predict")
    y = rng.normal(size=(shape[0], 2)).astype(np.float32)
    kmodel.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    cmodel.compile(optimizer=cynet.optimizers.SGD(learning_rate=0.1), loss="mse")
    np.testing.assert_allclose(cmodel.train_on_batch(x, y), kmodel.train_on_batch(x, y), rtol=rtol, atol=atol,
                               err_msg="train_on_batch loss")
    for c, k, w in zip(cmodel.get_weights(), kmodel.get_weights(), kmodel.weights):
        np.testing.assert_allclose(c, k, rtol=rtol, atol=atol, err_msg=f"{w.path} after one SGD step")
