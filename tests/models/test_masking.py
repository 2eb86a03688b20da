"""Masks (Keras 3 semantics): Embedding(mask_zero=True) and Masking make them, Sequential and
Functional models carry them beside the arrays, mask-aware layers read them (a `mask` argument)
and pass them on (`supports_masking` / `compute_mask`); a layer that does not support masking
drops them with Keras's warning."""
import os
import threading
import warnings

import numpy as np
import pytest

import cynet
from cynet import layers as L
from cynet.kernels import use_backend
from cynet.testing import check_layer_gradients, numerical_gradient

F64 = "float64"


class MaskTimes(L.Layer):
    """Test-only consumer: its output is its input times the mask it receives (so the mask shows
    in the output, call by call), and it records the masks it saw."""

    supports_masking = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def _forward(self, ctx, inputs, training, mask=None):
        self.seen.append(None if mask is None else mask.copy())
        ctx.mask = mask
        if mask is None:
            return inputs.copy()
        return inputs * mask.reshape(mask.shape + (1,) * (inputs.ndim - mask.ndim))

    def _backward(self, ctx, grad, need_input_grad):
        if ctx.mask is None:
            return grad
        return grad * ctx.mask.reshape(ctx.mask.shape + (1,) * (grad.ndim - ctx.mask.ndim))


class RecordingRNN(L.SimpleRNN):
    """A SimpleRNN (so that Bidirectional takes it) that records the mask each call is given."""

    supports_masking = True
    seen = []

    def _invoke(self, tape, inputs, training, kwargs):
        RecordingRNN.seen.append((self.name, kwargs.pop("mask", None)))
        return super()._invoke(tape, inputs, training, kwargs)

    def _forward(self, ctx, inputs, training, states0=None, mask=None):
        return super()._forward(ctx, inputs, training, states0=states0)

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None


def _padded(rng, n=4, t=5, f=3, value=0.0):
    """(n, t, f) data whose samples end in padded steps (all features == value), and the mask."""
    x = rng.standard_normal((n, t, f))
    lengths = rng.integers(1, t + 1, n)
    lengths[0] = t
    keep = np.arange(t)[None, :] < lengths[:, None]
    x[~keep] = value
    return x, keep


# ----------------------------------------------------------------------------- defaults and layers
def test_compute_mask_defaults():
    x, m = np.ones((2, 3, 4)), np.ones((2, 3), bool)
    base = L.Layer()
    assert base.supports_masking is False and base.compute_mask(x, m) is m and base.compute_mask(x) is None
    assert L.Dense(2).supports_masking and L.Dropout(0.5).supports_masking and L.Activation("relu").supports_masking
    assert not L.Flatten().supports_masking and not L.GlobalMaxPooling1D().supports_masking

    class Makes(L.Layer):
        def compute_mask(self, inputs, mask=None):
            return np.asarray(inputs)[..., 0] > 0

    class Refuses(Makes):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = False

    assert Makes().supports_masking and Makes._mask_source and not Refuses().supports_masking
    assert L.Embedding(5, 2).compute_mask(np.array([[0, 1]])) is None
    np.testing.assert_array_equal(L.Embedding(5, 2, mask_zero=True).compute_mask(np.array([[0, 1, 3, 0]])),
                                  [[False, True, True, False]])
    np.testing.assert_array_equal(L.Masking(mask_value=2.0).compute_mask(np.array([[[2.0, 2.0], [2.0, 1.0]]])),
                                  [[False, True]])
    assert L.GlobalAveragePooling1D().compute_mask(x, m) is None
    assert L.Dot(axes=1).compute_mask([x, x], [m, m]) is None


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_masking_forward_and_gradients(rng, backend):
    x, keep = _padded(rng, value=-1.0)
    layer = L.Masking(mask_value=-1.0, dtype=F64)
    with use_backend(backend):
        y = layer(x)
        np.testing.assert_array_equal(y, np.where(keep[..., None], x, 0.0))
        np.testing.assert_array_equal(layer.compute_mask(x), keep)
        g = rng.standard_normal(x.shape)
        layer(x)
        dx = layer.backward(g)
        # at a masked step the output jumps as soon as one feature leaves mask_value: finite
        # differences only hold on the kept steps; the masked ones get 0, as Keras's where()
        num = numerical_gradient(lambda: float(np.sum(layer(x) * g)), x)
        np.testing.assert_allclose(dx[keep], num[keep], rtol=1e-6, atol=1e-8)
        assert np.all(dx[~keep] == 0)
        check_layer_gradients(layer, rng.standard_normal((2, 3, 4)))   # nothing masked
    # a step is masked only when every feature equals mask_value
    x2 = np.array([[[0.0, 0.0], [0.0, 1.0]]])
    np.testing.assert_array_equal(L.Masking()(x2), x2)
    np.testing.assert_array_equal(L.Masking().compute_mask(x2), [[False, True]])


def _numeric_check(fn, x, g, analytic):
    num = numerical_gradient(lambda: float(np.sum(fn(x) * g)), x)
    np.testing.assert_allclose(analytic, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_global_average_pooling_1d_masked_mean_and_gradient(rng, data_format):
    x, keep = _padded(rng)
    if data_format == "channels_first":
        x = np.ascontiguousarray(x.transpose(0, 2, 1))
    layer = L.GlobalAveragePooling1D(data_format=data_format, dtype=F64)
    y = layer(x, mask=keep)
    steps = x if data_format == "channels_last" else x.transpose(0, 2, 1)
    want = np.stack([steps[i][keep[i]].mean(axis=0) for i in range(len(x))])
    np.testing.assert_allclose(y, want, rtol=1e-12)
    g = rng.standard_normal(y.shape)
    layer(x, mask=keep)
    _numeric_check(lambda a: layer(a, mask=keep), x, g, layer.backward(g))
    # integer masks read as booleans; without a mask, the plain mean
    np.testing.assert_allclose(layer(x, mask=keep.astype(np.int8)), want, rtol=1e-12)
    np.testing.assert_allclose(layer(x), x.mean(axis=1 if data_format == "channels_last" else 2))


def test_softmax_mask_matches_its_definition_and_gradient(rng):
    x = rng.standard_normal((3, 4, 5))
    m = rng.random((4, 5)) > 0.3
    layer = L.Softmax(dtype=F64)
    y = layer(x, mask=m)
    z = np.where(m, x, -1e9)
    e = np.exp(z - z.max(-1, keepdims=True))
    np.testing.assert_allclose(y, np.where(m, e / e.sum(-1, keepdims=True), 0), rtol=1e-12)
    g = rng.standard_normal(y.shape)
    layer(x, mask=m)
    _numeric_check(lambda a: layer(a, mask=m), x, g, layer.backward(g))
    with pytest.raises(ValueError, match="mask"):
        layer(x, mask=np.ones((2, 5), bool))


# ----------------------------------------------------------------------------- propagation in models
def test_mask_reaches_consumers_in_sequential(rng):
    x, keep = _padded(rng)
    rec = MaskTimes()
    model = cynet.Sequential([cynet.Input((5, 3)), L.Masking(), L.Dense(4), L.Dropout(0.2), rec])
    y = model.predict(x, verbose=0)
    np.testing.assert_array_equal(rec.seen[-1], keep)
    assert np.all(y[~keep] == 0) and np.all(y[keep] != 0)
    model.compile("sgd", "mse")
    model.fit(x, np.zeros_like(y), epochs=1, shuffle=False, verbose=0)    # training carries the mask too
    np.testing.assert_array_equal(rec.seen[-1], keep)
    # model(x, mask=...) gives the first layer a mask
    m2 = cynet.Sequential([cynet.Input((5, 3)), L.Dense(2), MaskTimes()])
    m2(x, mask=~keep)
    np.testing.assert_array_equal(m2.layers[-1].seen[-1], ~keep)
    m2(x)
    assert m2.layers[-1].seen[-1] is None


def test_layer_without_masking_drops_the_mask_with_keras_warning(rng):
    x, _ = _padded(rng)
    rec = MaskTimes()
    model = cynet.Sequential([cynet.Input((5, 3)), L.Masking(), L.ZeroPadding1D(1), rec])
    with pytest.warns(UserWarning, match="does not support masking"):
        model(x)
    assert rec.seen[-1] is None
    with warnings.catch_warnings():   # a model without masks warns of nothing
        warnings.simplefilter("error")
        cynet.Sequential([cynet.Input((5, 3)), L.ZeroPadding1D(1), MaskTimes()])(x)


def test_mask_reaches_consumers_in_functional_and_nested_models(rng):
    x, keep = _padded(rng)
    inp = cynet.Input((5, 3))
    rec = MaskTimes()
    inner = cynet.Sequential([cynet.Input((5, 3)), L.Masking(), L.Dense(3)])
    out = rec(L.Activation("tanh")(inner(inp)))
    model = cynet.Model(inp, out)
    model(x)
    np.testing.assert_array_equal(rec.seen[-1], keep)
    # a Functional model nested in a Sequential one passes its outputs' mask on
    rec2 = MaskTimes()
    outer = cynet.Sequential([cynet.Input((5, 3)), model, rec2])
    outer.predict(x, verbose=0)
    np.testing.assert_array_equal(rec2.seen[-1], keep)
    # a layer called directly on arrays carries no mask (NumPy arrays hold no attribute): pass it
    masking = L.Masking()
    rec3 = MaskTimes()
    rec3(masking(x))
    assert rec3.seen[-1] is None
    rec3(masking(x), mask=masking.compute_mask(x))
    np.testing.assert_array_equal(rec3.seen[-1], keep)


def test_functional_multiple_inputs_and_outputs_carry_their_own_masks(rng):
    x1, k1 = _padded(rng)
    x2, k2 = _padded(rng, value=1.0)
    a, b = cynet.Input((5, 3), name="a"), cynet.Input((5, 3), name="b")
    ra, rb, rc = MaskTimes(), MaskTimes(), MaskTimes()
    ha = L.Masking()(a)
    hb = L.Masking(mask_value=1.0)(b)
    model = cynet.Model([a, b], [ra(ha), rb(hb), rc(L.Dense(2)(b))])
    model([x1, x2])
    np.testing.assert_array_equal(ra.seen[-1], k1)
    np.testing.assert_array_equal(rb.seen[-1], k2)
    assert rc.seen[-1] is None
    # masks given to the model call: a list (None where an input has none) or a dict by name
    model([x1, x2], mask=[None, ~k2])
    assert rc.seen[-1] is not None and np.array_equal(rc.seen[-1], ~k2)
    model([x1, x2], mask={"b": k1})
    np.testing.assert_array_equal(rc.seen[-1], k1)
    # the model returns the outputs' masks through its nested-call path
    outs, masks = model._run([x1, x2], False)
    np.testing.assert_array_equal(masks[0], k1)
    np.testing.assert_array_equal(masks[1], k2)
    assert masks[2] is None


@pytest.mark.parametrize("merge", [L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum])
def test_merge_layers_or_the_masks(rng, merge):
    x1, k1 = _padded(rng)
    x2, k2 = _padded(rng)
    a, b = cynet.Input((5, 3)), cynet.Input((5, 3))
    rec, rec_none = MaskTimes(), MaskTimes()
    ma, mb = L.Masking()(a), L.Masking()(b)
    model = cynet.Model([a, b], [rec(merge()([ma, mb])), rec_none(merge()([ma, L.Dense(3)(b)]))])
    model([x1, x2])
    np.testing.assert_array_equal(rec.seen[-1], k1 | k2)
    assert rec_none.seen[-1] is None   # Keras: no mask unless every input has one


def test_concatenate_masks_follow_keras(rng):
    x1, k1 = _padded(rng)
    x2, k2 = _padded(rng)
    a, b = cynet.Input((5, 3)), cynet.Input((5, 3))
    r_last, r_time, r_one = MaskTimes(), MaskTimes(), MaskTimes()
    ma, mb = L.Masking()(a), L.Masking()(b)
    model = cynet.Model([a, b], [r_last(L.Concatenate()([ma, mb])), r_time(L.Concatenate(axis=1)([ma, mb])),
                                 r_one(L.Concatenate()([ma, L.Dense(2)(b)]))])
    model([x1, x2])
    np.testing.assert_array_equal(r_last.seen[-1], k1 | k2)
    np.testing.assert_array_equal(r_time.seen[-1], np.concatenate([k1, k2], axis=1))
    np.testing.assert_array_equal(r_one.seen[-1], np.ones_like(k1))   # an unmasked input counts as all kept
    with pytest.raises(ValueError, match="mask"):
        L.Concatenate().compute_mask([x1, x2], k1)


def test_wrappers_pass_the_mask_to_the_wrapped_layer(rng):
    x, keep = _padded(rng)
    inner = MaskTimes()
    td = L.TimeDistributed(inner)
    rec = MaskTimes()
    model = cynet.Sequential([cynet.Input((5, 3)), L.Masking(), td, rec])
    y = model(x)
    np.testing.assert_array_equal(inner.seen[-1], keep.reshape(-1))   # (batch * steps,) for the inner layer
    np.testing.assert_array_equal(rec.seen[-1], keep)                # and the mask passes through
    assert np.all(y[~keep] == 0)
    RecordingRNN.seen.clear()
    bi = L.Bidirectional(RecordingRNN(2, return_sequences=True))
    rec2 = MaskTimes()
    cynet.Sequential([cynet.Input((5, 3)), L.Masking(), bi, rec2])(x)
    names = [name for name, _ in RecordingRNN.seen]
    assert names == [bi.forward_layer.name, bi.backward_layer.name]
    for _, m in RecordingRNN.seen:
        np.testing.assert_array_equal(m, keep)   # both directions get the mask in input order
    np.testing.assert_array_equal(rec2.seen[-1], keep)
    assert bi.compute_mask(x, keep) is keep
    assert L.Bidirectional(L.SimpleRNN(2), merge_mode=None).compute_mask(x, keep) == [None, None]
    assert L.Bidirectional(L.LSTM(2, return_state=True)).compute_mask(x, keep) == [None] * 5
    with pytest.raises(ValueError, match="mask"):
        td(x, mask=keep[:, :3])


def test_masks_with_shared_layers_and_concurrent_predict(rng):
    x1, k1 = _padded(rng, n=6)
    x2, k2 = _padded(rng, n=6)
    a, b = cynet.Input((5, 3)), cynet.Input((5, 3))
    masking, dense, times, pool = L.Masking(), L.Dense(4), MaskTimes(), L.GlobalAveragePooling1D()
    ya = pool(times(dense(masking(a))))
    yb = pool(times(dense(masking(b))))
    model = cynet.Model([a, b], L.Add()([ya, yb]))

    def expected(xa, ka, xb, kb):
        def branch(x, k):
            h = x @ dense.kernel.value + dense.bias.value
            return (h * k[..., None]).sum(1) / k.sum(1, keepdims=True)
        return branch(xa, ka) + branch(xb, kb)

    np.testing.assert_allclose(model.predict([x1, x2], verbose=0), expected(x1, k1, x2, k2), rtol=1e-5, atol=1e-6)
    cases = [(x1, k1, x2, k2), (x2, k2, x1, k1)] * 4
    results, errors = [None] * len(cases), []

    def work(i):
        try:
            xa, ka, xb, kb = cases[i]
            for _ in range(5):
                results[i] = model.predict([xa, xb], batch_size=3, verbose=0)
        except Exception as exc:   # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (xa, ka, xb, kb), got in zip(cases, results):
        np.testing.assert_allclose(got, expected(xa, ka, xb, kb), rtol=1e-5, atol=1e-6)


def test_masked_model_gradients_match_finite_differences(rng):
    x, keep = _padded(rng, n=3)
    model = cynet.Sequential([cynet.Input((5, 3)), L.Masking(dtype=F64), L.Dense(4, activation="tanh", dtype=F64),
                              MaskTimes(dtype=F64), L.GlobalAveragePooling1D(dtype=F64), L.Dense(2, dtype=F64)])
    model.build((None, 5, 3))
    g = rng.standard_normal((3, 2))
    model(x)
    model.backward(g)
    for v in model.trainable_weights:
        num = numerical_gradient(lambda: float(np.sum(model(x) * g)), v.value)
        np.testing.assert_allclose(v.grad, num, rtol=1e-6, atol=1e-8, err_msg=v.path)


# ----------------------------------------------------------------------------- bad masks
def test_bad_masks_are_refused_naming_mask(rng):
    x, keep = _padded(rng)
    rec = MaskTimes()
    with pytest.raises(TypeError, match="mask must be a boolean array"):
        rec(x, mask=keep.astype(np.float32))
    with pytest.raises(TypeError, match="mask"):
        rec(x, mask="abc")
    with pytest.raises(ValueError, match="mask must have the shape"):
        rec(x, mask=keep[:, :2])
    with pytest.raises(ValueError, match="mask must have the shape"):
        rec(x, mask=keep.T)
    with pytest.raises(ValueError, match="mask must have the shape"):
        rec(x, mask=np.ones((4, 5, 3, 1), bool))
    with pytest.raises(TypeError, match="takes no mask argument"):
        L.Dense(2)(x, mask=keep)
    L.Dense(2)(x, mask=None)   # None is no mask
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, steps\)"):
        L.GlobalAveragePooling1D()(x, mask=keep[:, :3])
    with pytest.raises(ValueError, match=r"mask must be a list of 2 masks"):
        MultiTimes()([x, x], mask=keep)
    with pytest.raises(ValueError, match=r"mask\[1\]"):
        MultiTimes()([x, x], mask=[keep, keep[:1]])
    model = cynet.Sequential([cynet.Input((5, 3)), MaskTimes()])
    with pytest.raises(ValueError, match="mask"):
        model(x, mask=keep[:2])
    inp = cynet.Input((5, 3))
    fmodel = cynet.Model(inp, MaskTimes()(inp))
    with pytest.raises(ValueError, match="mask"):
        fmodel(x, mask=[keep, keep])
    with pytest.raises(TypeError, match="mask"):
        fmodel(x, mask=keep.astype(float))


class MultiTimes(L.Layer):
    """Test-only two-input layer taking a list of masks."""

    _multi_input = True
    supports_masking = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def _forward(self, ctx, inputs, training, mask=None):
        return inputs[0] + inputs[1]

    def _backward(self, ctx, grad, need_input_grad):
        return [grad, grad]


# ----------------------------------------------------------------------------- config and saving
def test_config_round_trips_and_masking_arguments():
    emb = L.Embedding(7, 3, mask_zero=True)
    again = L.Embedding.from_config(emb.get_config())
    assert again.mask_zero is True and emb.get_config()["mask_zero"] is True
    masking = L.Masking(mask_value=-1)
    config = masking.get_config()
    assert config["mask_value"] == -1.0
    again = L.deserialize(L.serialize(masking))
    assert isinstance(again, L.Masking) and again.mask_value == -1.0
    for bad in ("a", None, True, [0.0], 1j):
        with pytest.raises(ValueError, match="mask_value"):
            L.Masking(mask_value=bad)
    with pytest.raises(TypeError, match="mask_zero"):
        L.Embedding(3, 2, mask_zero="yes")
    with pytest.raises(ValueError, match="inputs"):
        L.Masking()(np.ones(3))


def test_saved_masked_model_keeps_its_behaviour(rng, tmp_path):
    tokens = rng.integers(1, 20, (8, 6))
    tokens[:, 4:] = 0
    tokens[0, 2:] = 0
    inp = cynet.Input((6,), dtype="int32")
    h = L.Embedding(20, 4, mask_zero=True)(inp)
    h = L.GlobalAveragePooling1D()(L.Dense(5, activation="relu")(h))
    model = cynet.Model(inp, L.Dense(2)(h))
    model.compile("adam", "mse")
    model.fit(tokens, rng.random((8, 2)), epochs=1, verbose=0)
    seq = cynet.Sequential([cynet.Input((6, 3)), L.Masking(mask_value=-1.0), L.GlobalAveragePooling1D()])
    for m, x in ((model, tokens), (seq, np.where(tokens[..., None] == 0, -1.0, rng.random((8, 6, 3))))):
        path = str(tmp_path / f"{m.name}.cynet")
        m.save(path)
        loaded = cynet.models.load_model(path)
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))
    # the mask matters: changing a padded (masked) position changes nothing, unlike without a mask
    changed = tokens.copy()
    changed[1, 5] = 0
    np.testing.assert_allclose(model.predict(changed, verbose=0)[1], model.predict(tokens, verbose=0)[1])


# ----------------------------------------------------------------------------- Keras 3 oracle
def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("the Keras oracle runs with KERAS_BACKEND=torch")
    return keras


def _copy_weights(kmodel, cmodel):
    for kl, cl in zip([l for l in kmodel.layers if l.weights], [l for l in cmodel.layers if l.weights]):
        cl.set_weights([np.asarray(w) for w in kl.get_weights()])


def _compare_with_keras(build, x, y, keras):
    kmodel, cmodel = build(keras), build(cynet)
    rng = np.random.default_rng(3)
    for layer in kmodel.layers:
        if layer.weights:   # (variances positive)
            layer.set_weights([(rng.uniform(0.5, 1.5, w.shape) if "variance" in w.name else
                                rng.normal(0, 0.5, w.shape)).astype("float32") for w in layer.weights])
    _copy_weights(kmodel, cmodel)
    expected = kmodel.predict(x, verbose=0)
    assert np.all(np.isfinite(expected))   # (NaN would compare equal to NaN)
    np.testing.assert_allclose(cmodel.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    for lib, m in ((keras, kmodel), (cynet, cmodel)):
        m.compile(optimizer=lib.optimizers.SGD(learning_rate=0.5), loss="mse")
    np.testing.assert_allclose(cmodel.train_on_batch(x, y), kmodel.train_on_batch(x, y), rtol=1e-5)
    for kw, cw in zip(kmodel.weights, cmodel.weights):
        np.testing.assert_allclose(cw.numpy(), np.asarray(kw), rtol=1e-5, atol=1e-6, err_msg=cw.path)
    np.testing.assert_allclose(cmodel.predict(x, verbose=0), kmodel.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_embedding_mask_zero_pooling_dense_equals_keras(rng):
    keras = _keras()
    tokens = rng.integers(1, 30, (6, 7))
    for i, n in enumerate([7, 3, 1, 5, 2, 6]):
        tokens[i, n:] = 0

    def build(lib):
        inp = lib.Input((7,), dtype="int32")
        h = lib.layers.Embedding(30, 4, mask_zero=True)(inp)
        h = lib.layers.Dense(5, activation="tanh")(h)
        h = lib.layers.GlobalAveragePooling1D()(h)
        return lib.Model(inp, lib.layers.Dense(2)(h))

    _compare_with_keras(build, tokens, rng.random((6, 2)).astype("float32"), keras)


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_masking_softmax_and_merges_equal_keras(rng):
    keras = _keras()
    x, _ = _padded(rng, n=4, t=4, f=3)
    x2, _ = _padded(rng, n=4, t=4, f=3)
    x, x2 = x.astype("float32"), x2.astype("float32")

    def build(lib):
        a, b = lib.Input((4, 3)), lib.Input((4, 3))
        ma, mb = lib.layers.Masking()(a), lib.layers.Masking()(b)
        h = lib.layers.Dense(4)(lib.layers.Add()([ma, mb]))
        s = lib.layers.Softmax()(h)      # the (batch, steps) mask broadcasts here as batch == steps == 4
        c = lib.layers.Concatenate()([s, lib.layers.Dense(2)(ma)])
        return lib.Model([a, b], lib.layers.GlobalAveragePooling1D()(c))

    _compare_with_keras(build, [x, x2], rng.random((4, 6)).astype("float32"), keras)


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
@pytest.mark.skipif("mask" not in __import__("inspect").signature(L.SimpleRNN._forward).parameters,
                    reason="the recurrent layers take masks once the masked-steps kernels land")
@pytest.mark.parametrize("cell", ["SimpleRNN", "LSTM", "GRU"])
def test_embedding_mask_zero_recurrent_equals_keras(rng, cell):
    keras = _keras()
    tokens = rng.integers(1, 30, (5, 6))
    for i, n in enumerate([6, 3, 1, 4, 2]):
        tokens[i, n:] = 0

    def build(lib):
        inp = lib.Input((6,), dtype="int32")
        h = lib.layers.Embedding(30, 4, mask_zero=True)(inp)
        h = getattr(lib.layers, cell)(3, return_sequences=True)(h)
        h = lib.layers.Bidirectional(getattr(lib.layers, cell)(2))(h)
        return lib.Model(inp, lib.layers.Dense(2)(h))

    _compare_with_keras(build, tokens, rng.random((5, 2)).astype("float32"), keras)


@pytest.mark.parametrize("axis", [-1, 1])
def test_batch_normalization_masked_moments_in_training(rng, axis):
    x, keep = _padded(rng, n=3, t=5, f=4)
    layer = L.BatchNormalization(axis=axis, dtype=F64, gamma_initializer="random_normal",
                                 beta_initializer="random_normal")
    if axis == 1:   # features on axis 1: (batch, features, steps) with a (batch, features) mask
        x = np.ascontiguousarray(x.transpose(0, 2, 1)[:, :, :3])
        keep = rng.random((3, 4)) > 0.3
    y = layer(x, training=True, mask=keep)
    w = np.broadcast_to(keep[..., None], x.shape).astype(float)   # Keras: the mask spreads over the last axis
    axes = tuple(i for i in range(x.ndim) if i != axis % x.ndim)
    count = w.sum(axis=axes, keepdims=True) + 1e-7                 # Keras divides by count + 1e-7
    mean = (w * x).sum(axis=axes, keepdims=True) / count
    var = (w * (x - mean) ** 2).sum(axis=axes, keepdims=True) / count
    shape = [1] * x.ndim
    shape[axis] = -1
    want = (x - mean) / np.sqrt(var + 1e-3) * layer.gamma.value.reshape(shape) + layer.beta.value.reshape(shape)
    np.testing.assert_allclose(y, want, rtol=1e-9, atol=1e-12)
    g = rng.standard_normal(y.shape)
    layer.moving_mean.assign(np.zeros(layer.moving_mean.shape))
    layer(x, training=True, mask=keep)
    dx = layer.backward(g)
    grads = {v.name: v.grad.copy() for v in layer.trainable_weights}
    f = lambda: float(np.sum(layer(x, training=True, mask=keep) * g))   # noqa: E731
    _numeric_check(lambda a: layer(a, training=True, mask=keep), x, g, dx)
    for v in layer.trainable_weights:
        np.testing.assert_allclose(grads[v.name], numerical_gradient(f, v.value), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(layer(x, training=False, mask=keep), layer(x, training=False))   # inference: no change
    with pytest.raises(ValueError, match="one dimension less"):
        layer(x, training=True, mask=np.ones(x.shape, bool))


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_batch_normalization_on_masked_sequences_trains_like_keras(rng):
    keras = _keras()
    tokens = rng.integers(1, 30, (6, 7))
    for i, n in enumerate([7, 3, 1, 5, 2, 6]):
        tokens[i, n:] = 0

    def build(lib):
        inp = lib.Input((7,), dtype="int32")
        h = lib.layers.Embedding(30, 4, mask_zero=True)(inp)
        h = lib.layers.BatchNormalization(momentum=0.5)(h)
        return lib.Model(inp, lib.layers.Dense(2)(lib.layers.GlobalAveragePooling1D()(h)))

    _compare_with_keras(build, tokens, rng.random((6, 2)).astype("float32"), keras)


class NamedInputs(L.Layer):
    """Test-only layer called on inputs by name (as MultiHeadAttention packs query and value): it
    gets Keras's `<name>_mask` arguments."""

    supports_masking = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def call(self, inputs, query_mask=None, value_mask=None):
        self.seen.append((query_mask, value_mask))
        return inputs["query"] + inputs["value"]


def test_inputs_by_name_get_their_name_mask_arguments(rng):
    x1, k1 = _padded(rng)
    x2, k2 = _padded(rng)
    a, b = cynet.Input((5, 3)), cynet.Input((5, 3))
    layer, rec = NamedInputs(), MaskTimes()
    out = rec(layer({"query": L.Masking()(a), "value": L.Masking()(b)}))
    cynet.Model([a, b], out)([x1, x2])
    np.testing.assert_array_equal(layer.seen[-1][0], k1)
    np.testing.assert_array_equal(layer.seen[-1][1], k2)
    np.testing.assert_array_equal(rec.seen[-1], k1)   # the output keeps the first input's (the query's) mask


@pytest.mark.parametrize("bad, error", [
    ([[True, False], [True]], TypeError),                 # ragged
    (np.array([[None] * 5] * 4, dtype=object), TypeError),
    (np.ones((4, 5), complex), TypeError),
    (np.array([["a"] * 5] * 4), TypeError),
    (np.array(True), ValueError),                         # 0-d
    (np.ones((0, 5), bool), ValueError),                  # another batch size
    (np.broadcast_to(np.ones(5, bool), (2 ** 40, 5)), ValueError),   # a huge view of the wrong size
])
def test_hostile_masks_are_refused_naming_mask(rng, bad, error):
    x, _ = _padded(rng)
    for layer in (MaskTimes(), L.GlobalAveragePooling1D(), L.Softmax(), L.BatchNormalization()):
        if isinstance(layer, L.Softmax) and isinstance(bad, np.ndarray) and bad.ndim == 0:
            continue   # Keras's Softmax takes any mask that broadcasts, a scalar too
        with pytest.raises(error, match="mask"):
            layer(x, mask=bad, training=True)


def test_unusual_valid_masks_give_the_plain_result(rng):
    x, keep = _padded(rng)
    pool = L.GlobalAveragePooling1D(dtype=F64)
    want = pool(x, mask=keep)
    padded = np.zeros((4, 10), bool)
    padded[:, ::2] = keep
    readonly = keep.copy()
    readonly.flags.writeable = False
    for m in (padded[:, ::2], np.asfortranarray(keep), readonly, keep.astype(np.uint8), keep.tolist(),
              keep.astype(">i4")):
        np.testing.assert_array_equal(pool(x, mask=m), want)


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_time_distributed_dropout_and_nested_model_keep_the_mask_like_keras(rng):
    keras = _keras()
    tokens = rng.integers(1, 30, (5, 6))
    for i, n in enumerate([6, 3, 1, 4, 2]):
        tokens[i, n:] = 0

    def build(lib):
        inner = lib.Sequential([lib.Input((6, 4)), lib.layers.Dense(4, activation="relu"), lib.layers.Dropout(0.0)])
        inp = lib.Input((6,), dtype="int32")
        h = inner(lib.layers.Embedding(30, 4, mask_zero=True)(inp))
        h = lib.layers.TimeDistributed(lib.layers.Dense(3))(h)
        return lib.Model(inp, lib.layers.GlobalAveragePooling1D()(h))

    _compare_with_keras(build, tokens, rng.random((5, 3)).astype("float32"), keras)


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
@pytest.mark.filterwarnings("ignore:Layer 'flatten")
def test_time_distributed_passes_each_steps_mask_like_keras(rng):
    keras = _keras()
    x = rng.standard_normal((3, 4, 5, 2)).astype("float32")
    padded = rng.random((3, 4, 5)) < 0.4
    padded[:, :, 0] = False   # (no step wholly padded: its mean would be NaN, as in Keras)
    x[padded] = 0.0           # padded inner steps: a (batch, steps, inner steps) mask

    def build(lib):
        inp = lib.Input((4, 5, 2))
        h = lib.layers.TimeDistributed(lib.layers.GlobalAveragePooling1D())(lib.layers.Masking()(inp))
        return lib.Model(inp, lib.layers.Dense(2)(lib.layers.Flatten()(h)))

    _compare_with_keras(build, x, rng.random((3, 2)).astype("float32"), keras)


def test_subclassed_model_passes_masks_explicitly(rng):
    """Inside a subclassed model's call the arrays carry no mask: compute_mask and mask= carry it
    (as Keras's own guide writes subclassed layers)."""
    tokens = rng.integers(1, 20, (6, 5))
    tokens[:, 3:] = 0

    class Pooled(cynet.Model):
        def __init__(self):
            super().__init__()
            self.emb = L.Embedding(20, 4, mask_zero=True)
            self.pool = L.GlobalAveragePooling1D()
            self.out = L.Dense(2)

        def call(self, inputs, training=False):
            return self.out(self.pool(self.emb(inputs), mask=self.emb.compute_mask(inputs)))

    model = Pooled()
    y = model(tokens)
    e = model.emb.embeddings.value[tokens]
    want = (e[:, :3].mean(axis=1)) @ model.out.kernel.value + model.out.bias.value
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    model.compile("sgd", "mse")
    model.fit(tokens, rng.random((6, 2)), epochs=1, verbose=0)
    assert not np.any(model.emb.embeddings.grad[0])   # the padding row got no gradient
