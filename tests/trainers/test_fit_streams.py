"""fit / evaluate / predict on Python generators and PyDatasets (through the data adapters)."""
import threading
import warnings

import numpy as np
import pytest

import cynet
from cynet import layers


def _model():
    cynet.utils.set_random_seed(0)
    model = cynet.Sequential([cynet.Input((6,)), layers.Dense(8, activation="relu"),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _batches(n_batches=6, size=8, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.random((size, 6), dtype=np.float32), rng.integers(0, 3, size)) for _ in range(n_batches)]


class Batches(cynet.utils.PyDataset):
    def __init__(self, batches, **kwargs):
        super().__init__(**kwargs)
        self.batches = batches
        self.epochs_ended = 0

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches[index]

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_a_generator_trains_exactly_like_the_same_batches_as_arrays():
    batches = _batches()
    streamed = _model()
    streamed.fit(iter(batches), steps_per_epoch=6, epochs=1, verbose=0)
    stepped = _model()
    for x, y in batches:
        stepped.train_on_batch(x, y)
    for a, b in zip(streamed.get_weights(), stepped.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_an_endless_generator_with_steps_per_epoch_and_generator_validation():
    def endless(seed):
        rng = np.random.default_rng(seed)
        while True:
            yield rng.random((8, 6), dtype=np.float32), rng.integers(0, 3, 8)
    history = _model().fit(endless(0), steps_per_epoch=4, epochs=3, verbose=0, validation_data=endless(1),
                           validation_steps=2)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["loss"]) == 3


def test_a_generator_that_runs_out_of_data_stops_training_with_a_warning():
    model = _model()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model.fit(iter(_batches(5)), steps_per_epoch=3, epochs=4, verbose=0)
    assert len(history.history["loss"]) == 2


@pytest.mark.parametrize("workers, multiprocessing", [(1, False), (2, False), (2, True)])
def test_a_pydataset_with_workers_trains_like_its_batches(workers, multiprocessing):
    batches = _batches()
    data = Batches(batches, workers=workers, use_multiprocessing=multiprocessing)
    model = _model()
    before = threading.active_count()
    model.fit(data, epochs=2, shuffle=False, verbose=0)
    assert threading.active_count() <= before
    assert data.epochs_ended == 2
    reference = _model()
    for _ in range(2):
        for x, y in batches:
            reference.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_evaluate_and_predict_read_a_pydataset():
    batches = _batches(3)
    model = _model()
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    np.testing.assert_allclose(model.evaluate(Batches(batches), verbose=0), model.evaluate(x, y, batch_size=8,
                                                                                          verbose=0), rtol=1e-6)
    np.testing.assert_array_equal(model.predict(Batches(batches), verbose=0), model.predict(x, verbose=0))


def test_a_generator_batch_of_the_wrong_shape_is_a_clear_error():
    bad = _batches(2) + [(np.zeros((8, 5), np.float32), np.zeros(8, int))]
    with pytest.raises(ValueError, match="batch"):
        _model().fit(iter(bad), steps_per_epoch=3, verbose=0)


def test_a_functional_model_reads_dict_batches():
    a, b = cynet.Input((3,), name="a"), cynet.Input((2,), name="b")
    out = layers.Dense(1, name="out")(layers.concatenate([a, b]))
    model = cynet.Model([a, b], out)
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)

    def gen():
        while True:
            yield {"a": rng.random((4, 3)), "b": rng.random((4, 2))}, {"out": rng.random((4, 1))}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = model.fit(gen(), steps_per_epoch=3, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_validation_split_needs_arrays():
    with pytest.raises(ValueError, match="validation_split is only supported for arrays"):
        _model().fit(iter(_batches()), validation_split=0.2, verbose=0)
