"""Bad arguments to fit / evaluate / predict / *_on_batch raise a clear error (ValueError, or
TypeError catchable as ValueError for a wrong type) naming the argument, before any callback runs
and before any weight changes."""
import numpy as np
import pytest

import cynet
from cynet import callbacks, layers, losses, optimizers
from cynet.trainers import trainer as models

N, D, K = 24, 5, 3


class Spy(callbacks.Callback):
    """Records every hook called on it."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            calls = object.__getattribute__(self, "calls")
            return lambda *args, **kwargs: calls.append(name)
        return object.__getattribute__(self, name)


def data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, D)).astype(np.float32), rng.integers(0, K, N)


def model_for(loss="sparse_categorical_crossentropy", units=K, activation="softmax"):
    model = cynet.Sequential([cynet.Input(shape=(D,)), layers.Dense(4, activation="relu"),
                              layers.Dense(units, activation=activation)])
    model.compile(optimizer=optimizers.SGD(0.1, momentum=0.9), loss=loss)
    return model


def snapshot(model):
    return [w.numpy() for w in model.weights]


def assert_untouched(model, before, spy):
    for old, new in zip(before, snapshot(model)):
        np.testing.assert_array_equal(old, new)
    assert spy.calls == []
    assert int(model.optimizer.iterations) == 0


def with_nan(a, index, value=np.nan):
    a = np.array(a, dtype=np.float64 if np.asarray(a).dtype.kind != "f" else np.asarray(a).dtype, copy=True)
    a[index] = value
    return a


x0, y0 = data()
onehot0 = np.eye(K, dtype=np.float32)[y0]

# (id, fit kwargs (x and y default to x0, y0), loss, exception, message regex)
FIT_CASES = [
    ("x-none", dict(x=None), None, ValueError, r"^x must be given"),
    ("x-empty", dict(x=x0[:0], y=y0[:0]), None, ValueError, r"^x must be a non-empty array"),
    ("x-no-features", dict(x=np.zeros((N, 0), np.float32)), None, ValueError, r"^x must be a non-empty array"),
    ("x-ragged", dict(x=[[1.0, 2.0], [3.0]]), None, ValueError, r"^x must be an array of numbers"),
    ("x-strings", dict(x=np.full((N, D), "a")), None, TypeError, r"^x must be numeric; received dtype <U1"),
    ("x-wrong-features", dict(x=x0[:, :4]), None, ValueError, r"^x must have samples of shape \(5,\); received x with shape \(24, 4\)"),
    ("x-wrong-rank", dict(x=x0[:, :, None]), None, ValueError, r"^x must have samples of shape \(5,\)"),
    ("x-nan", dict(x=with_nan(x0, (7, 3))), None, ValueError, r"^x must hold finite values only \(no NaN or inf\); received x\[7, 3\] = nan"),
    ("x-inf", dict(x=with_nan(x0, (2, 0), -np.inf)), None, ValueError, r"^x must hold finite values only .* x\[2, 0\] = -inf"),
    ("x-overflows-float32", dict(x=with_nan(x0.astype(np.float64), (4, 1), 1e300)), None, ValueError,
     r"x\[4, 1\] = inf \(the value 1e\+300 overflows the model's dtype float32\)"),
    ("y-none", dict(y=None), None, ValueError, r"^y must be given"),
    ("y-short", dict(y=y0[:10]), None, ValueError, r"^x and y must have the same number of samples; received 24 and 10"),
    ("y-scalar", dict(y=1), None, ValueError, r"same number of samples; received 24 and a scalar"),
    ("y-strings", dict(y=np.array(["a"] * N)), None, TypeError, r"^y must be numeric"),
    ("y-nan", dict(y=with_nan(y0, 5)), None, ValueError, r"^y must hold finite values only .* y\[5\] = nan"),
    ("sparse-label-too-big", dict(y=np.where(np.arange(N) == 9, K, y0)), None, ValueError,
     r"^y must hold class labels for the model's 3 output units: labels must lie in \[0, 3\); .* first y\[9\] = 3"),
    ("sparse-label-negative", dict(y=np.where(np.arange(N) == 4, -1, y0)), None, ValueError,
     r"labels must lie in \[0, 3\); received labels from -1 to 2, first y\[4\] = -1"),
    ("sparse-label-fraction", dict(y=with_nan(y0, 6, 0.5)), None, ValueError,
     r"^y must hold integer class labels for sparse_categorical_crossentropy; received y\[6\] = 0.5"),
    ("sparse-given-one-hot", dict(y=onehot0), None, ValueError, r"one-hot labels go with categorical_crossentropy"),
    ("categorical-given-labels", dict(y=y0), "categorical_crossentropy", ValueError,
     r"^y must hold one-hot targets of shape \(3,\).*integer class labels go with sparse_categorical_crossentropy"),
    ("categorical-wrong-width", dict(y=np.eye(K + 1)[y0]), "categorical_crossentropy", ValueError,
     r"one-hot targets of width 4 for a model with 3 output units"),
    ("categorical-out-of-range", dict(y=onehot0 * 3), "categorical_crossentropy", ValueError,
     r"^y must hold one-hot targets or probabilities in \[0, 1\]"),
    ("mse-wrong-shape", dict(y=onehot0[:, :2]), "mse", ValueError,
     r"^y must have samples of shape \(3,\), the model's output, for mean_squared_error; received y with shape \(24, 2\)"),
    ("sample-weight-short", dict(sample_weight=np.ones(N - 1)), None, ValueError,
     r"^sample_weight must have one entry per sample \(24\)"),
    ("sample-weight-too-wide", dict(sample_weight=np.ones((N, K))), None, ValueError,
     r"^sample_weight must have shape \(24,\)"),
    ("sample-weight-negative", dict(sample_weight=with_nan(np.ones(N), 11, -0.5)), None, ValueError,
     r"^sample_weight must be non-negative; received sample_weight\[11\] = -0.5"),
    ("sample-weight-nan", dict(sample_weight=with_nan(np.ones(N), 3)), None, ValueError,
     r"^sample_weight must hold finite values only .* sample_weight\[3\] = nan"),
    ("sample-weight-strings", dict(sample_weight=np.array(["1"] * N)), None, TypeError, r"^sample_weight must be numeric"),
    ("class-weight-list", dict(class_weight=[1.0, 2.0]), None, TypeError, r"^class_weight must be a dict"),
    ("class-weight-str-key", dict(class_weight={"0": 1.0}), None, TypeError, r"keys must be integer class indices; received the key '0'"),
    ("class-weight-key-range", dict(class_weight={0: 1.0, 3: 2.0}), None, ValueError,
     r"keys must be class indices in \[0, 3\) for the model's output; received the key 3"),
    ("class-weight-negative-key", dict(class_weight={-1: 1.0}), None, ValueError, r"received the key -1"),
    ("class-weight-negative", dict(class_weight={0: -1.0}), None, ValueError,
     r"^class_weight values must be finite and non-negative; received class_weight\[0\]=-1.0"),
    ("class-weight-nan", dict(class_weight={1: float("nan")}), None, ValueError, r"class_weight\[1\]=nan"),
    ("class-weight-str-value", dict(class_weight={1: "2"}), None, TypeError, r"class_weight values must be real numbers"),
    ("class-and-sample-weight", dict(class_weight={0: 1.0}, sample_weight=np.ones(N)), None, ValueError,
     r"class_weight and sample_weight"),
    ("batch-size-zero", dict(batch_size=0), None, ValueError, r"^batch_size must be a positive integer; received batch_size=0"),
    ("batch-size-negative", dict(batch_size=-4), None, ValueError, r"batch_size=-4"),
    ("batch-size-float", dict(batch_size=8.0), None, TypeError, r"^batch_size must be a positive integer; received batch_size=8.0"),
    ("batch-size-bool", dict(batch_size=True), None, TypeError, r"batch_size=True"),
    ("epochs-negative", dict(epochs=-1), None, ValueError, r"^epochs must be a non-negative integer; received epochs=-1"),
    ("epochs-float", dict(epochs=2.5), None, TypeError, r"epochs=2.5"),
    ("epochs-str", dict(epochs="3"), None, TypeError, r"epochs='3'"),
    ("initial-epoch-negative", dict(initial_epoch=-2), None, ValueError, r"^initial_epoch must be a non-negative integer"),
    ("steps-per-epoch-zero", dict(steps_per_epoch=0), None, ValueError, r"^steps_per_epoch must be a positive integer"),
    ("validation-freq-zero", dict(validation_freq=0), None, ValueError, r"^validation_freq must be a positive integer"),
    ("validation-batch-size", dict(validation_batch_size=-1), None, ValueError, r"^validation_batch_size must be"),
    ("verbose", dict(verbose=3), None, ValueError, r"^verbose must be \"auto\", 0, 1 or 2; received verbose=3"),
    ("validation-split-one", dict(validation_split=1.0), None, ValueError, r"^validation_split must be in \[0, 1\)"),
    ("validation-split-negative", dict(validation_split=-0.1), None, ValueError, r"validation_split=-0.1"),
    ("validation-split-str", dict(validation_split="0.2"), None, TypeError, r"^validation_split must be a float"),
    ("validation-split-empty", dict(validation_split=0.99), None, ValueError, r"leaves no training or no validation"),
    ("validation-data-array", dict(validation_data=x0), None, ValueError,
     r"^validation_data must be a tuple \(x_val, y_val\).*received an object of type ndarray"),
    ("validation-data-one", dict(validation_data=(x0,)), None, ValueError, r"received a tuple of 1 items"),
    ("validation-data-features", dict(validation_data=(x0[:, :3], y0)), None, ValueError,
     r"^validation_data\[0\] must have samples of shape \(5,\)"),
    ("validation-data-lengths", dict(validation_data=(x0, y0[:3])), None, ValueError,
     r"^validation_data\[0\] and validation_data\[1\] must have the same number of samples"),
    ("validation-data-labels", dict(validation_data=(x0, y0 + K)), None, ValueError,
     r"^validation_data\[1\] must hold class labels .* labels must lie in \[0, 3\)"),
    ("validation-data-nan", dict(validation_data=(with_nan(x0, (0, 0)), y0)), None, ValueError,
     r"^validation_data\[0\] must hold finite values only .* validation_data\[0\]\[0, 0\] = nan"),
    ("validation-data-weights", dict(validation_data=(x0, y0, -np.ones(N))), None, ValueError,
     r"^validation_data\[2\] must be non-negative"),
]


@pytest.mark.parametrize("kwargs, loss, error, message", [c[1:] for c in FIT_CASES], ids=[c[0] for c in FIT_CASES])
def test_fit_refuses_bad_arguments_before_training(kwargs, loss, error, message):
    model = model_for(loss or "sparse_categorical_crossentropy")
    args = dict(x=x0, y=onehot0 if loss in ("categorical_crossentropy", "mse") else y0, epochs=2, batch_size=8,
                verbose=0)
    args.update(kwargs)
    spy = Spy()
    before = snapshot(model)
    with pytest.raises(error, match=message) as info:
        model.fit(callbacks=[spy], **args)
    if error is TypeError:
        assert isinstance(info.value, ValueError)  # a wrong type is catchable as ValueError too
    assert_untouched(model, before, spy)
    # the model is still usable with good arguments
    good = dict(x=x0, y=onehot0 if loss in ("categorical_crossentropy", "mse") else y0)
    history = model.fit(epochs=1, batch_size=8, verbose=0, callbacks=[spy], **good)
    assert len(history.history["loss"]) == 1 and "on_train_begin" in spy.calls


BINARY_CASES = [
    ("labels-1-2", np.arange(N) % 2 + 1, r"^y must hold binary targets \(0/1 labels or probabilities\) in \[0, 1\] "
                                         r"for binary_crossentropy; received values from 1 to 2, first y\[1\] = 2"),
    ("labels-minus-one", np.where(np.arange(N) % 2 == 0, -1.0, 1.0), r"received values from -1.0 to 1.0, first y\[0\] = -1.0"),
    ("two-columns", np.zeros((N, 2)), r"^y must have samples of shape \(1,\), the model's output, for binary_crossentropy"),
]


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("y, message", [c[1:] for c in BINARY_CASES], ids=[c[0] for c in BINARY_CASES])
def test_binary_crossentropy_targets_must_lie_in_the_unit_interval(y, message, from_logits):
    model = model_for(losses.BinaryCrossentropy(from_logits=from_logits), units=1,
                      activation=None if from_logits else "sigmoid")
    spy, before = Spy(), snapshot(model)
    with pytest.raises(ValueError, match=message):
        model.fit(x0, y, verbose=0, callbacks=[spy])
    assert_untouched(model, before, spy)


def test_accepted_edge_inputs_train():
    """Forms Keras accepts keep working: (N, 1) sparse labels, integral float labels, soft binary
    targets, (N, 1) sample weights, zero weights, epochs=0 (no training), int64 inputs."""
    model = model_for()
    before = snapshot(model)
    history = model.fit(x0, y0, epochs=0, verbose=0)
    assert history.history == {}
    for old, new in zip(before, snapshot(model)):
        np.testing.assert_array_equal(old, new)
    model.fit(x0, y0.reshape(-1, 1).astype(np.float64), sample_weight=np.zeros((N, 1)), verbose=0)
    for old, new in zip(before, snapshot(model)):  # zero weights: zero gradients; momentum stays 0
        np.testing.assert_array_equal(old, new)
    model.fit(np.rint(x0 * 3).astype(np.int64), y0, verbose=0, validation_data=(x0, y0, np.ones(N)))
    binary = model_for("binary_crossentropy", units=1, activation="sigmoid")
    soft = np.linspace(0, 1, N)
    binary.fit(x0, soft, verbose=0)
    binary.fit(x0, (soft > 0.5).astype(bool), verbose=0)
    assert np.isfinite(binary.evaluate(x0, soft, verbose=0))


def test_class_weight_rounds_binary_labels_and_defaults_missing_classes_to_one():
    model = model_for("binary_crossentropy", units=1, activation="sigmoid")
    labels = (np.arange(N) % 2).astype(np.float64)
    w, = model._class_weights([labels.reshape(-1, 1) * 0.9], x0, {1: 4.0})  # 0.9 rounds to class 1, as in Keras
    np.testing.assert_array_equal(w, np.where(labels == 1, 4.0, 1.0))
    sparse = model_for()
    np.testing.assert_array_equal(sparse._class_weights([onehot0], x0, {2: 0.5})[0], np.where(y0 == 2, 0.5, 1.0))


EVAL_CASES = [
    ("evaluate", lambda m, x, y: m.evaluate(x, y, verbose=0)),
    ("test_on_batch", lambda m, x, y: m.test_on_batch(x, y)),
    ("train_on_batch", lambda m, x, y: m.train_on_batch(x, y)),
]


@pytest.mark.parametrize("call", [c[1] for c in EVAL_CASES], ids=[c[0] for c in EVAL_CASES])
@pytest.mark.parametrize("x, y, message", [
    (x0, y0[:5], r"same number of samples; received 24 and 5"),
    (x0[:, :2], y0, r"^x must have samples of shape \(5,\)"),
    (with_nan(x0, (1, 1), np.inf), y0, r"^x must hold finite values only .* x\[1, 1\] = inf"),
    (x0, y0 + 10, r"labels must lie in \[0, 3\)"),
    (x0[:0], y0[:0], r"non-empty"),
    (None, y0, r"^x must be given"),
], ids=["lengths", "features", "inf", "labels", "empty", "none"])
def test_evaluate_and_batch_methods_refuse_bad_arrays(call, x, y, message):
    model = model_for()
    before = snapshot(model)
    with pytest.raises(ValueError, match=message):
        call(model, x, y)
    assert_untouched(model, before, Spy())


def test_sample_weight_checks_in_evaluate_and_train_on_batch():
    model = model_for()
    with pytest.raises(ValueError, match=r"^sample_weight must be non-negative"):
        model.evaluate(x0, y0, sample_weight=-np.ones(N), verbose=0)
    with pytest.raises(ValueError, match=r"^sample_weight must hold finite values"):
        model.train_on_batch(x0, y0, sample_weight=with_nan(np.ones(N), 0))
    with pytest.raises(ValueError, match=r"class_weight keys must be class indices"):
        model.train_on_batch(x0, y0, class_weight={7: 1.0})
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.evaluate(x0, y0, batch_size=0, verbose=0)
    assert int(model.optimizer.iterations) == 0


@pytest.mark.parametrize("call", [lambda m, x: m.predict(x, verbose=0), lambda m, x: m.predict_on_batch(x)],
                         ids=["predict", "predict_on_batch"])
def test_predict_refuses_bad_inputs(call):
    model = model_for()
    with pytest.raises(ValueError, match=r"^x must hold finite values only .* x\[3, 4\] = nan"):
        call(model, with_nan(x0, (3, 4)))
    with pytest.raises(ValueError, match=r"^x must have samples of shape \(5,\)"):
        call(model, x0[:, :1])
    with pytest.raises(ValueError, match="non-empty"):
        call(model, np.zeros((0, D), np.float32))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.predict(x0, batch_size=-1, verbose=0)
    assert call(model, x0).shape == (N, K)


def test_the_finite_check_is_one_pass_per_array_per_call_not_per_batch(monkeypatch):
    calls = []
    original = models._check_finite
    monkeypatch.setattr(models, "_check_finite", lambda arr, name, *a: (calls.append((name, arr.shape)),
                                                                         original(arr, name, *a)))
    model = model_for()
    model.fit(x0, y0, batch_size=2, epochs=3, validation_data=(x0, y0), sample_weight=np.ones(N), verbose=0)
    names = [name for name, _ in calls]
    # x, y, sample_weight, then the validation x and y: once each for 3 epochs x 12 batches + 3 evaluations
    assert names == ["x", "y", "sample_weight", "validation_data[0]", "validation_data[1]"]
    assert calls[0][1] == (N, D)


def test_integer_inputs_skip_the_finite_check():
    model = cynet.Sequential([layers.Embedding(10, 3), layers.Flatten(), layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    idx = np.arange(40).reshape(10, 4) % 10
    model.fit(idx, np.arange(10) % 2, verbose=0)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 10\)"):
        model.fit(idx + 1, np.arange(10) % 2, verbose=0)


def test_the_loss_hook_checks_targets_against_output_shapes_directly():
    """Loss.check_targets: the one place a loss says what targets it takes."""
    sparse = losses.SparseCategoricalCrossentropy()
    sparse.check_targets(np.array([0, 2, 1]), (None, 3))
    sparse.check_targets(np.array([[0], [2]]), (None, 3))
    sparse.check_targets(np.zeros((2, 7)), (None, 7, 3))          # per-timestep labels
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        sparse.check_targets(np.array([0, 3]), (None, 3))
    with pytest.raises(TypeError, match="integer class labels"):
        sparse.check_targets(np.array(["a", "b"]), (None, 3))
    with pytest.raises(ValueError, match=r"^y_val must hold integer class labels of sample shape \(7,\)"):
        sparse.check_targets(np.zeros((2, 6)), (None, 7, 3), name="y_val")
    cat = losses.CategoricalCrossentropy(from_logits=True)
    cat.check_targets(np.full((2, 3), 1 / 3), (None, 3))
    with pytest.raises(ValueError, match="one-hot targets or probabilities in \\[0, 1\\]"):
        cat.check_targets(np.array([[0.5, -0.5, 1.0]]), (None, 3))
    with pytest.raises(ValueError, match=r"\[0, 1\].*first y\[0, 1\] = nan"):
        cat.check_targets(np.array([[0.5, np.nan, 1.0]]), (None, 3))
    losses.MeanSquaredError().check_targets(np.zeros(4), (None, 1))
    losses.MeanSquaredError().check_targets(np.zeros((4, 1)), (None,))
    losses.MeanSquaredError().check_targets(np.zeros((4, 9, 2)), (None, None, 2))
    with pytest.raises(ValueError, match=r"^y must have samples of shape \(None, 2\)"):
        losses.Huber().check_targets(np.zeros((4, 9, 3)), (None, None, 2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_the_finite_check_finds_the_first_bad_entry_in_any_layout(dtype):
    a = np.ones((30, 7), dtype)
    models._check_finite(a, "x")
    huge = np.full((4, 3), np.finfo(dtype).max / 2, dtype)
    with np.errstate(over="ignore"):
        assert not np.isfinite(huge.sum())
    models._check_finite(huge, "x")  # the one-pass sum overflows, every entry is finite: no error
    for layout in (lambda m: m, lambda m: np.asfortranarray(m), lambda m: m[::2], lambda m: m.T):
        for bad in (np.nan, np.inf, -np.inf):
            m = layout(np.array(a))
            m[(m.shape[0] - 1, 2)] = bad
            m[(m.shape[0] - 1, 5)] = bad
            with pytest.raises(ValueError, match=rf"x\[{m.shape[0] - 1}, 2\] = {bad!r}"):
                models._check_finite(m, "x")
