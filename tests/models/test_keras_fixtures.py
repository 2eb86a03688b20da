"""Files made by real Keras 3 (committed, written by tests/fixtures/make_keras_fixtures.py), read
without Keras: predictions equal Keras's, and training resumes from the saved Adam state with the
losses Keras had. Needs h5py only."""
import importlib.util
import os

import numpy as np
import pytest

import cynet

pytest.importorskip("h5py")
FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
_spec = importlib.util.spec_from_file_location("make_keras_fixtures", os.path.join(FIXTURES, "make_keras_fixtures.py"))
make = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make)
EXPECTED = dict(np.load(os.path.join(FIXTURES, "keras_expected.npz")))


@pytest.mark.parametrize("name", ["cnn", "text"])
def test_a_keras_archive_predicts_and_resumes_as_keras_did(name):
    x, y = EXPECTED[f"{name}_x"], EXPECTED[f"{name}_y"]
    model = cynet.models.load_model(os.path.join(FIXTURES, f"keras_{name}.keras"))
    np.testing.assert_allclose(model.predict(x, verbose=0), EXPECTED[f"{name}_pred"], rtol=1e-5, atol=1e-6)
    assert model.optimizer.built and model.optimizer.iterations == 2    # one epoch of two batches
    history = model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"], EXPECTED[f"{name}_resume"], rtol=1e-4)


def test_a_keras_two_output_gru_archive_predicts_and_resumes_as_keras_did():
    x = EXPECTED["gru_two_outputs_x"]
    model = cynet.models.load_model(os.path.join(FIXTURES, "keras_gru_two_outputs.keras"))
    for out, i in zip(model.predict(x, verbose=0), range(2)):
        np.testing.assert_allclose(out, EXPECTED[f"gru_two_outputs_pred{i}"], rtol=1e-5, atol=1e-6)
    assert model.optimizer.built and model.optimizer.iterations == 2
    history = model.fit(x, make.labels(EXPECTED, "gru_two_outputs"), epochs=2, batch_size=8, shuffle=False,
                        verbose=0)
    np.testing.assert_allclose(history.history["loss"], EXPECTED["gru_two_outputs_resume"], rtol=1e-4)


def test_keras_nested_sublayers_load_by_their_paths(tmp_path):
    """MultiHeadAttention's query/key/value/output EinsumDense sublayers, Bidirectional's two LSTMs
    (and their cells) and TimeDistributed's Dense, as Keras files them: the archive and its weights
    (saved again by cynet as .weights.h5) give Keras's predictions."""
    x = EXPECTED["attention_x"]
    model = cynet.models.load_model(os.path.join(FIXTURES, "keras_attention.keras"))
    np.testing.assert_allclose(model.predict(x, verbose=0), EXPECTED["attention_pred"], rtol=1e-5, atol=1e-6)
    assert not model.compiled
    model.save_weights(str(tmp_path / "w.weights.h5"))
    other = make.attention(cynet)
    other.load_weights(str(tmp_path / "w.weights.h5"))
    np.testing.assert_allclose(other.predict(x, verbose=0), EXPECTED["attention_pred"], rtol=1e-5, atol=1e-6)


def test_keras_weights_h5_loads_into_the_model_built_in_code(tmp_path):
    model = make.residual(cynet)
    model.load_weights(os.path.join(FIXTURES, "keras_residual.weights.h5"))
    x = EXPECTED["residual_x"]
    np.testing.assert_allclose(model.predict(x, verbose=0), EXPECTED["residual_pred"], rtol=1e-5, atol=1e-6)
    # cynet's own .weights.h5 of it reads back the same
    model.save_weights(str(tmp_path / "w.weights.h5"))
    other = make.residual(cynet)
    other.load_weights(str(tmp_path / "w.weights.h5"))
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_keras_archive_round_trips_through_cynet(tmp_path):
    """Loaded from Keras's file and saved by cynet as .keras: the same predictions and optimizer state."""
    x = EXPECTED["cnn_x"]
    model = cynet.models.load_model(os.path.join(FIXTURES, "keras_cnn.keras"))
    model.save(str(tmp_path / "again.keras"))
    again = cynet.models.load_model(str(tmp_path / "again.keras"))
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    for a, b in zip(again.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(a.value, b.value)


def test_model_checkpoint_writes_keras_files_cynet_reads(tmp_path):
    """ModelCheckpoint("best.keras") and save_weights_only to ".weights.h5" (no Keras needed)."""
    x, y = EXPECTED["cnn_x"], EXPECTED["cnn_y"]
    model = make.cnn(cynet)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_data=(x, y), callbacks=[
        cynet.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), save_best_only=True),
        cynet.callbacks.ModelCheckpoint(str(tmp_path / "w{epoch}.weights.h5"), save_weights_only=True)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "w1.weights.h5", "w2.weights.h5"]
    last = make.cnn(cynet)
    last.load_weights(str(tmp_path / "w2.weights.h5"))
    np.testing.assert_array_equal(last.predict(x, verbose=0), model.predict(x, verbose=0))
    assert cynet.models.load_model(str(tmp_path / "best.keras")).optimizer.iterations in (2, 4)
