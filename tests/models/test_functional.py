"""The Functional API and subclassed models on the engine's tape: float64 gradients against finite
differences for DAGs (residual block, shared layer, two inputs and two outputs with loss weights,
nested model, subclassed model with a Python loop), multi-output training, configs, errors."""
import numpy as np
import pytest

import cynet
from cynet import layers
from cynet.graph import flatten
from cynet.testing import numerical_gradient

F64 = "float64"


def _flat(v):
    return list(v) if isinstance(v, (list, tuple)) else [v]


def check_model_gradients(model, xs, seed=0, rtol=1e-6, atol=1e-8):
    """model(xs) then model.backward(g) against central differences of sum(outputs * g)."""
    rng = np.random.default_rng(seed)
    outs = _flat(model(xs))
    gs = [rng.standard_normal(o.shape) for o in outs]
    dxs = model.backward(gs if len(gs) > 1 else gs[0])
    analytic = [np.array(v.grad, copy=True) for v in model.trainable_weights]

    def loss():
        return sum(float(np.sum(o * g)) for o, g in zip(_flat(model(xs)), gs))
    for x, dx in zip(flatten(xs), _flat(dxs)):
        np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=rtol, atol=atol)
    assert analytic
    for v, a in zip(model.trainable_weights, analytic):
        np.testing.assert_allclose(a, numerical_gradient(loss, v.value), rtol=rtol, atol=atol, err_msg=v.path)


def test_residual_block_gradients(rng):
    inp = cynet.Input((5,), dtype=F64)
    h = layers.Dense(4, activation="tanh", dtype=F64)(inp)
    r = layers.Dense(4, activation="tanh", dtype=F64)(h)
    out = layers.Dense(2, dtype=F64)(layers.add([h, r], dtype=F64))
    check_model_gradients(cynet.Model(inp, out), rng.standard_normal((3, 5)))


def test_a_shared_layer_used_twice_gets_both_gradients(rng):
    shared = layers.Dense(3, activation="tanh", dtype=F64)
    a, b = cynet.Input((3,), dtype=F64), cynet.Input((3,), dtype=F64)
    out = layers.concatenate([shared(a), shared(shared(b))], dtype=F64)
    model = cynet.Model([a, b], out)
    assert [layer.name for layer in model.layers].count(shared.name) == 1
    check_model_gradients(model, [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))])


def test_two_inputs_two_outputs_and_operators(rng):
    a, b = cynet.Input((4,), dtype=F64, name="a"), cynet.Input((2,), dtype=F64, name="b")
    h = layers.Dense(3, activation="sigmoid", dtype=F64)(a)
    mixed = layers.Concatenate(dtype=F64)([h * 2.0 - 1.0, -b])
    out1 = layers.Dense(2, dtype=F64, name="out1")(mixed)
    out2 = layers.Dense(1, dtype=F64, name="out2")(h[:, 1:] + 0.5)
    model = cynet.Model({"a": a, "b": b}, [out1, out2])
    check_model_gradients(model, {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal((3, 2))})


def test_nested_models_gradients(rng):
    inner = cynet.Sequential([layers.Dense(3, activation="tanh", dtype=F64), layers.Dense(3, dtype=F64)])
    inner_in = cynet.Input((3,), dtype=F64)
    block = cynet.Model(inner_in, layers.Dense(3, activation="tanh", dtype=F64)(inner_in))
    inp = cynet.Input((3,), dtype=F64)
    out = layers.Dense(1, dtype=F64)(block(inner(inp)))
    model = cynet.Model(inp, out)
    assert len(model.trainable_weights) == 8
    check_model_gradients(model, rng.standard_normal((4, 3)))


class LoopModel(cynet.Model):
    """A subclassed model composing layers with a Python loop and a branch."""

    def __init__(self, depth=3, **kwargs):
        super().__init__(**kwargs)
        self.blocks = [layers.Dense(4, activation="tanh", dtype=F64) for _ in range(depth)]
        self.head = {"out": layers.Dense(2, dtype=F64)}

    def call(self, x, training=False):
        for i, block in enumerate(self.blocks):
            y = block(x)
            x = layers.add([x, y], dtype=F64) if i and x.shape[-1] == y.shape[-1] else y
        return self.head["out"](x)


def test_subclassed_model_with_a_loop_gradients_and_tracking(rng):
    model = LoopModel(dtype=F64)
    x = rng.standard_normal((3, 4))
    model(x)
    assert len(model.trainable_weights) == 8 and len(model.layers) == 4
    check_model_gradients(model, x)


def _float64_two_io(seed=0):
    cynet.utils.set_random_seed(seed)
    a, b = cynet.Input((3,), dtype=F64, name="a"), cynet.Input((2,), dtype=F64, name="b")
    h = layers.Dense(4, activation="tanh", dtype=F64)(layers.concatenate([a, b], dtype=F64))
    cls = layers.Dense(3, activation="softmax", dtype=F64, name="cls")(h)
    reg = layers.Dense(1, dtype=F64, name="reg")(h)
    return cynet.Model([a, b], [cls, reg])


def test_training_gradient_of_weighted_losses_matches_finite_differences(rng):
    xa, xb = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    y_cls, y_reg = rng.integers(0, 3, 6), rng.standard_normal((6, 1))
    model = _float64_two_io()
    model.compile(optimizer=cynet.optimizers.SGD(learning_rate=1.0), loss=["sparse_categorical_crossentropy", "mse"],
                  loss_weights={"cls": 0.7, "reg": 0.3})
    before = [v.numpy() for v in model.trainable_weights]

    def total():
        return float(model.evaluate([xa, xb], [y_cls, y_reg], verbose=0, batch_size=6)[0])
    numeric = [numerical_gradient(total, v.value) for v in model.trainable_weights]
    model.train_on_batch([xa, xb], {"cls": y_cls, "reg": y_reg})
    for b, v, g in zip(before, model.trainable_weights, numeric):
        np.testing.assert_allclose(b - v.value, g, rtol=1e-5, atol=1e-8, err_msg=v.path)


def test_multi_output_fit_history_and_metrics(rng):
    x = [rng.standard_normal((32, 3)), rng.standard_normal((32, 2))]
    y = [rng.integers(0, 3, 32), rng.standard_normal((32, 1))]
    model = _float64_two_io()
    model.compile(optimizer="adam", loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                  metrics={"cls": ["accuracy"]})
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_split=0.25)
    assert set(history.history) == {"loss", "cls_loss", "reg_loss", "cls_accuracy",
                                    "val_loss", "val_cls_loss", "val_reg_loss", "val_cls_accuracy"}
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["cls_loss"] + logs["reg_loss"])
    preds = model.predict(x, verbose=0)
    assert [p.shape for p in preds] == [(32, 3), (32, 1)]


def test_a_functional_model_trains_like_the_sequential_one(rng):
    x, y = rng.standard_normal((40, 5)).astype(np.float32), rng.integers(0, 3, 40)
    cynet.utils.set_random_seed(1)
    seq = cynet.Sequential([cynet.Input((5,)), layers.Dense(8, activation="relu"),
                            layers.Dense(3, activation="softmax")])
    inp = cynet.Input((5,))
    fun = cynet.Model(inp, layers.Dense(3, activation="softmax")(layers.Dense(8, activation="relu")(inp)))
    fun.set_weights(seq.get_weights())
    for m in (seq, fun):
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        m.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(seq.get_weights(), fun.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_config_round_trip_gives_the_same_predictions(rng):
    model = _float64_two_io()
    config = model.get_config()
    clone = cynet.Model.from_config(config)
    clone.set_weights(model.get_weights())
    x = [rng.standard_normal((4, 3)), rng.standard_normal((4, 2))]
    for a, b in zip(model.predict(x, verbose=0), clone.predict(x, verbose=0)):
        np.testing.assert_array_equal(a, b)
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    copy = cynet.models.clone_model(model)
    assert [w.shape for w in copy.get_weights()] == [w.shape for w in model.get_weights()]


def test_summary_has_the_connected_to_column():
    lines = []
    _float64_two_io().summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text and "a[0][0], b[0][0]" in text and "Total params: 44" in text


def test_layer_input_and_output_and_get_layer():
    a = cynet.Input((3,), name="in_a")
    dense = layers.Dense(2, name="d")
    out = dense(a)
    model = cynet.Model(a, out)
    assert dense.input is a and dense.output is out and model.get_layer("d") is dense
    assert model.inputs == [a] and model.outputs == [out]
    with pytest.raises(ValueError, match="No such layer"):
        model.get_layer("nope")


def test_graph_errors_name_what_is_wrong():
    a, b = cynet.Input((3,), name="first"), cynet.Input((3,), name="second")
    out = layers.add([a, b])
    with pytest.raises(ValueError, match="Graph disconnected.*second"):
        cynet.Model(a, out)
    with pytest.raises(ValueError, match="dense_twice.*expects inputs with last axis 3"):
        d = layers.Dense(2, name="dense_twice")
        d(a)
        d(cynet.Input((4,)))
    x = layers.Dense(2, name="same")(a)
    with pytest.raises(ValueError, match="'same' is used by 2 layers"):
        cynet.Model(a, layers.Dense(2, name="same")(x))
    with pytest.raises(ValueError, match="Conv2D.*4-D inputs"):
        layers.Conv2D(2, 3)(a)
    with pytest.raises(TypeError, match="symbolic"):
        cynet.Model(np.zeros((1, 3)), out)


def test_fit_names_a_missing_input_and_wrong_shapes(rng):
    model = _float64_two_io()
    model.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"])
    y = [rng.integers(0, 3, 4), rng.standard_normal((4, 1))]
    with pytest.raises(ValueError, match=r"missing the model's inputs \['b'\]"):
        model.fit({"a": rng.standard_normal((4, 3))}, y, verbose=0)
    with pytest.raises(ValueError, match=r"x\[1\] must have samples of shape \(2,\)"):
        model.fit([rng.standard_normal((4, 3)), rng.standard_normal((4, 5))], y, verbose=0)
    with pytest.raises(ValueError, match="same number of samples"):
        model.fit([rng.standard_normal((4, 3)), rng.standard_normal((5, 2))], y, verbose=0)
    with pytest.raises(ValueError, match="not outputs of the model"):
        model.fit([rng.standard_normal((4, 3)), rng.standard_normal((4, 2))], {"cls": y[0], "bogus": y[1]},
                  verbose=0)


def test_symbolic_tensors_have_no_value():
    a = cynet.Input((3,))
    with pytest.raises(TypeError, match="symbolic"):
        np.asarray(a)
    with pytest.raises(TypeError, match="no truth value"):
        bool(a)


def test_a_layer_whose_call_takes_no_training_argument_trains():
    class Double(cynet.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner = layers.Dense(2)

        def call(self, x):
            return self.inner(self.inner(x))
    inp = cynet.Input((2,))
    model = cynet.Model(inp, Double()(inp))
    model.compile("sgd", "mse")
    before = model.get_weights()[0].copy()
    model.fit(np.ones((4, 2), np.float32), np.zeros((4, 2), np.float32), verbose=0)
    assert not np.array_equal(before, model.get_weights()[0])


def test_a_dtype_conversion_between_layers_keeps_the_gradient_chain(rng):
    inp = cynet.Input((3,), dtype=F64)
    h = layers.Dense(3, dtype=F64)(inp)
    out = layers.Dense(2, dtype=F64)(layers.Activation("tanh")(h))   # a float32 layer in a float64 graph
    model = cynet.Model(inp, out)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # no "Gradients do not exist" warning
        y = model(rng.standard_normal((2, 3)))
        model.backward(np.ones_like(y))
    assert all(v.grad is not None and v.grad.dtype == np.float64 for v in model.trainable_weights)


def test_a_refused_symbolic_call_leaves_the_layer_unbuilt():
    pool = layers.MaxPooling2D(pool_size=4)
    with pytest.raises(ValueError, match="max_pooling2d"):
        pool(cynet.Input((2, 2, 3)))           # a window larger than the image
    assert not pool.built
    bn = layers.BatchNormalization(axis=3)
    with pytest.raises(ValueError):
        bn(cynet.Input((4,)))                  # axis 3 of a 2-D input
    assert not bn.built and bn.weights == []
    out = bn(cynet.Input((2, 2, 5)))
    assert out.shape == (None, 2, 2, 5) and [w.shape for w in bn.weights] == [(5,)] * 4


def test_functional_predict_from_four_threads_gives_the_single_threaded_outputs(rng):
    import threading
    model = _float64_two_io()
    x = [rng.standard_normal((20, 3)), rng.standard_normal((20, 2))]
    want = model.predict(x, verbose=0)
    errors = []

    def work():
        try:
            for _ in range(40):
                for a, b in zip(model.predict(x, batch_size=7, verbose=0), want):
                    np.testing.assert_array_equal(a, b)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_a_subclassed_model_that_never_calls_its_layers_is_a_clear_error():
    class Forgetful(cynet.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = layers.Dense(2)

        def call(self, x, training=False):
            return x[:, :2] * 1.0

    model = Forgetful()
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"layers \['dense.*'\] were never called"):
        model.fit(np.ones((4, 3), np.float32), np.ones((4, 2), np.float32), verbose=0)
