"""The shape, noise, 1-D pooling and preprocessing layers of issue 17 together in one Sequential
model: it trains, summarises, and saves and loads (.cynet) with the same predictions."""
import os

import numpy as np

import cynet
from cynet import layers as L


def _model():
    return cynet.Sequential([
        cynet.Input((8, 8, 3)), L.Rescaling([1.0, 2.0, 3.0], offset=-1.0), L.CenterCrop(6, 6), L.ZeroPadding2D(1),
        L.Cropping2D(((1, 0), (0, 1))), L.SpatialDropout2D(0.2, seed=1), L.Identity(), L.Reshape((49, 3)),
        L.UpSampling1D(2), L.ZeroPadding1D(1), L.Cropping1D((2, 0)), L.SpatialDropout1D(0.1, seed=2),
        L.PReLU(shared_axes=[1], alpha_regularizer="l2"), L.GaussianNoise(0.1, seed=3), L.Permute((2, 1)),
        L.GlobalMaxPooling1D(), L.RepeatVector(2), L.GlobalAveragePooling1D(keepdims=True), L.Flatten(),
        L.GaussianDropout(0.1, seed=4), L.AlphaDropout(0.1, seed=5), L.Dense(2, activation="softmax"),
    ])


def test_all_together_train_save_and_load(tmp_path):
    rng = np.random.default_rng(17)
    x = rng.random((12, 8, 8, 3)).astype(np.float32)
    y = rng.integers(0, 2, 12)
    model = _model()
    assert model.output_shape == (None, 2)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    prelu = next(layer for layer in model.layers if isinstance(layer, L.PReLU))
    alpha = prelu.get_weights()[0].copy()
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not np.array_equal(alpha, prelu.get_weights()[0])   # gradients reached PReLU
    model.summary(print_fn=lambda *a, **k: None)
    path = os.path.join(tmp_path, "model.cynet")
    model.save(path)
    restored = cynet.models.load_model(path)
    assert [type(a) for a in restored.layers] == [type(b) for b in model.layers]
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
