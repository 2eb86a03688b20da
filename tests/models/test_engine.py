"""The engine's tape: backward state belongs to the call (cynet.tape), not to the layer.

A layer used twice gets the sum of both calls' gradients; one model serves predict from many
threads and beside fit; a flag of one call never outlives it; data fit cannot take is refused at
once."""
import threading

import numpy as np
import pytest

import cynet
from cynet import layers, tape
from cynet.testing import numerical_gradient


class Twice(cynet.Layer):
    """Calls one inner layer twice: a shared layer."""

    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner

    def call(self, x):          # no `training` argument: the engine inspects the signature
        return self.inner(self.inner(x))


def test_a_layer_used_twice_gets_the_sum_of_both_gradients():
    dense = layers.Dense(2, use_bias=False, kernel_initializer="ones")
    shared = Twice(dense)
    x = np.array([[1.0, 2.0]], np.float32)
    y = shared(x)
    np.testing.assert_array_equal(y, [[6.0, 6.0]])
    dx = shared.backward(np.ones_like(y))
    # second call: h^T g = [[3, 3], [3, 3]]; first call: x^T (g W^T) = [[2, 2], [4, 4]]
    np.testing.assert_array_equal(dense.kernel.grad, [[5.0, 5.0], [7.0, 7.0]])
    np.testing.assert_array_equal(dx, [[4.0, 4.0]])


@pytest.mark.parametrize("inner", [lambda: layers.Dense(3, activation="tanh", dtype="float64"),
                                   lambda: layers.SimpleRNN(3, return_sequences=True, dtype="float64")])
def test_shared_layer_gradients_match_finite_differences(inner, rng):
    shared = Twice(inner(), dtype="float64")
    x = rng.standard_normal((4, 5, 3))
    g = rng.standard_normal(shared(x).shape)
    shared(x)
    dx = shared.backward(g)
    layer = shared.inner

    def loss():
        return float(np.sum(shared(x) * g))
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)
    for v in layer.trainable_weights:
        np.testing.assert_allclose(v.grad, numerical_gradient(loss, v.value), rtol=1e-6, atol=1e-8,
                                   err_msg=v.name)


def test_regularization_gradient_is_added_once_for_a_shared_layer():
    dense = layers.Dense(2, use_bias=False, kernel_initializer="ones", kernel_regularizer=cynet.regularizers.L2(0.5))
    shared = Twice(dense)
    x = np.array([[1.0, 2.0]], np.float32)
    shared.backward(np.ones_like(shared(x)))
    # data gradient [[5, 5], [7, 7]] plus the L2 penalty's gradient 2 * 0.5 * W once
    np.testing.assert_allclose(dense.kernel.grad, [[6.0, 6.0], [8.0, 8.0]])


def _mlp(seed=0):
    cynet.utils.set_random_seed(seed)
    model = cynet.Sequential([cynet.Input((6,)), layers.Dense(16, activation="relu"),
                              layers.Dense(8, activation="tanh"), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _data(n=256, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6)).astype(np.float32), rng.integers(0, 3, n)


def test_after_fit_the_manual_loop_still_gets_the_input_gradient():
    # issue 15, item 2: the flag that let fit skip the first layer's input gradient stayed set
    model = _mlp()
    x, y = _data(64)
    model.fit(x, y, epochs=1, verbose=0)
    out = model.forward(x[:8], training=True)
    dx = model.backward(np.ones_like(out))
    assert dx is not None and dx.shape == (8, 6)
    w = [layer.kernel.value for layer in model.layers]
    assert np.abs(dx).sum() > 0
    # the same input gradient as a fresh forward/backward of the layers one by one
    h = x[:8]
    for layer in model.layers:
        h = layer.forward(h, training=True)
    g = np.ones_like(h)
    for layer in reversed(model.layers):
        g = layer.backward(g)
    np.testing.assert_allclose(dx, g, rtol=1e-5, atol=1e-7)
    assert len(w) == 3


def test_fit_asks_the_first_layer_for_no_input_gradient_and_layers_keep_no_call_state():
    model = _mlp()
    x, y = _data(64)
    before = [set(vars(layer)) for layer in model.layers]
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    assert [set(vars(layer)) for layer in model.layers] == before


def test_predict_from_four_threads_gives_the_single_threaded_outputs():
    model = _mlp()
    x, _ = _data(64)
    batches = [x[i:i + 5 + i % 7] for i in range(0, 56, 4)]
    want = [model.predict(b, verbose=0) for b in batches]
    want_call = [model(b) for b in batches]
    errors = []

    def work():
        try:
            for _ in range(30):
                for b, w, wc in zip(batches, want, want_call):
                    np.testing.assert_array_equal(model.predict(b, verbose=0), w)
                    np.testing.assert_array_equal(model(b), wc)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_predict_in_a_thread_during_fit_leaves_training_bit_identical():
    x, y = _data(512)
    alone = _mlp()
    alone.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    model = _mlp()
    stop = threading.Event()
    seen = []

    def predicting():
        while not stop.is_set():
            seen.append(model.predict(x[:16], verbose=0).shape)
    thread = threading.Thread(target=predicting)
    thread.start()
    try:
        model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    finally:
        stop.set()
        thread.join()
    assert seen
    for a, b in zip(alone.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_last_call_is_per_thread():
    dense = layers.Dense(2, dtype="float64")
    x1, x2 = np.ones((3, 4)), np.full((5, 4), 2.0)
    dense(x1)
    done = threading.Event()

    def other():
        dense(x2)      # another thread's call does not replace this thread's last call
        done.set()
    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert done.is_set()
    dx = dense.backward(np.ones((3, 2)))
    assert dx.shape == (3, 4)


def test_backward_before_any_call_is_a_clear_error():
    with pytest.raises(RuntimeError, match="needs a forward call first"):
        layers.Dense(2).backward(np.ones((1, 2)))


def test_predict_records_nothing():
    model = _mlp()
    x, _ = _data(8)
    seen = []
    original = tape.Tape.record

    def spy(self, *args):
        seen.append(args[0])
        return original(self, *args)
    tape.Tape.record = spy
    try:
        model.predict(x, verbose=0)
    finally:
        tape.Tape.record = original
    assert seen == []


class _Counting(layers.Activation):
    calls = 0

    def compute_output_shape(self, input_shape):
        type(self).calls += 1
        return super().compute_output_shape(input_shape)


def test_building_a_sequential_model_is_linear_in_its_layers():
    # issue 15, item 8: Sequential.add rebuilt the whole stack per layer (quadratic loading)
    _Counting.calls = 0
    model = cynet.Sequential([cynet.Input((3,))])
    for _ in range(300):
        model.add(_Counting("linear"))
    assert model.built and model.output_shape == (None, 3)
    assert _Counting.calls <= 2 * 300


def test_a_refused_layer_leaves_the_sequential_model_as_it_was():
    model = cynet.Sequential([cynet.Input((4, 4, 1)), layers.Flatten()])
    with pytest.raises(ValueError):
        model.add(layers.Conv2D(2, 3))      # 4-D layer after Flatten: refused at build
    assert [type(layer).__name__ for layer in model.layers] == ["Flatten"]
    model.add(layers.Dense(2))
    assert model.output_shape == (None, 2)


class _Dataset:
    """The shape of keras.utils.PyDataset without being one: __len__ and __getitem__ (an absurd length)."""

    def __len__(self):
        return 10**12

    def __getitem__(self, i):
        return np.zeros((4, 6), np.float32), np.zeros(4)


@pytest.mark.parametrize("make, kind", [(_Dataset, "not a PyDataset"),
                                        (lambda: [_Dataset()], "object of type _Dataset"),
                                        (lambda: {"x": np.zeros((4, 6))}, "a dict"),
                                        (lambda: "abc", "a string")])
def test_fit_refuses_what_it_cannot_read_at_once(make, kind):
    # issue 15, item 3: a PyDataset-like object made fit allocate without bound; a generator gave a
    # misleading shape error (generators and PyDatasets are now read by the data adapters)
    model = _mlp()
    for call in (lambda: model.fit(make(), np.zeros(4), verbose=0),
                 lambda: model.predict(make(), verbose=0), lambda: model.evaluate(make(), np.zeros(4), verbose=0)):
        with pytest.raises(TypeError, match=kind):
            call()
