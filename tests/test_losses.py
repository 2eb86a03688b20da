"""cynet.losses: values against Keras 3's formulas written out here (and Keras's documented numbers),
reductions and sample weights, float64 gradients of forward_backward / fused_logits_backward against
central differences, labels, aliases, configs and errors."""
import math
import warnings

import numpy as np
import pytest

from cynet import losses
from cynet.losses import (BinaryCrossentropy, CategoricalCrossentropy, Huber, MeanAbsoluteError, MeanSquaredError,
                          SparseCategoricalCrossentropy)
from cynet.testing import numerical_gradient

EPS = 1e-7  # Keras's backend.epsilon()


# ---------------------------------------------------------------------------------------------
# Keras 3 definitions (float64), per sample: the last axis is reduced.

def ref_mse(t, p):
    return np.mean((np.asarray(t, float) - p) ** 2, axis=-1)


def ref_mae(t, p):
    return np.mean(np.abs(np.asarray(t, float) - p), axis=-1)


def ref_huber(t, p, delta=1.0):
    e = np.asarray(p, float) - t
    return np.mean(np.where(np.abs(e) <= delta, 0.5 * e * e, delta * np.abs(e) - 0.5 * delta * delta), axis=-1)


def _sigmoid(z):
    return np.vectorize(lambda v: 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v)))(z)


def ref_bce(t, p, from_logits=False, label_smoothing=0.0):
    t = np.asarray(t, float) * (1 - label_smoothing) + 0.5 * label_smoothing
    p = np.asarray(p, float)
    if from_logits:  # tf.nn.sigmoid_cross_entropy_with_logits
        elems = np.maximum(p, 0) - p * t + np.log1p(np.exp(-np.abs(p)))
    else:
        q = np.clip(p, EPS, 1 - EPS)
        elems = -(t * np.log(q) + (1 - t) * np.log(1 - q))
    return elems.mean(axis=-1)


def ref_cce(t, p, from_logits=False, label_smoothing=0.0):
    t = np.asarray(t, float)
    t = t * (1 - label_smoothing) + label_smoothing / t.shape[-1]
    p = np.asarray(p, float)
    if from_logits:
        m = p.max(axis=-1, keepdims=True)
        logp = p - m - np.log(np.exp(p - m).sum(axis=-1, keepdims=True))
    else:
        logp = np.log(np.clip(p / p.sum(axis=-1, keepdims=True), EPS, 1 - EPS))
    return -(t * logp).sum(axis=-1)


def onehot(labels, k):
    return np.eye(k)[np.asarray(labels).astype(int)]


def reduce_ref(values, w=None, reduction="sum_over_batch_size"):
    """Keras reduce_weighted_values for weights over the leading axes."""
    if w is not None:
        w = np.asarray(w, float).reshape(np.shape(w) + (1,) * (values.ndim - np.ndim(w)))
        values = values * w
    if reduction in ("none", None):
        return values
    if reduction == "sum":
        return values.sum()
    if reduction == "mean_with_sample_weight" and w is not None:
        return values.sum() / np.broadcast_to(w, values.shape).sum()
    return values.sum() / values.size


def probs(rng, shape):
    return _softmax(rng.standard_normal(shape))


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# Keras's documented numbers.

def test_keras_documented_categorical_examples():
    y_true = np.array([[0, 1, 0], [0, 0, 1]])
    y_pred = np.array([[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
    for loss_cls, t in [(CategoricalCrossentropy, y_true), (SparseCategoricalCrossentropy, [1, 2])]:
        assert loss_cls()(t, y_pred) == pytest.approx(1.177, abs=1e-3)
        assert loss_cls()(t, y_pred, sample_weight=np.array([0.3, 0.7])) == pytest.approx(0.814, abs=1e-3)
        assert loss_cls(reduction="sum")(t, y_pred) == pytest.approx(2.354, abs=1e-3)
        np.testing.assert_allclose(loss_cls(reduction=None)(t, y_pred), [0.0513, 2.303], atol=1e-3)


def test_keras_documented_binary_examples():
    # from_logits
    assert BinaryCrossentropy(from_logits=True)([0, 1, 0, 0], [-18.6, 0.51, 2.94, -12.8]) == pytest.approx(
        0.865, abs=1e-3)
    y_true, logits = np.array([[0, 1], [0, 0]]), np.array([[-18.6, 0.51], [2.94, -12.8]])
    assert BinaryCrossentropy(from_logits=True)(y_true, logits) == pytest.approx(0.865, abs=1e-3)
    assert BinaryCrossentropy(from_logits=True)(y_true, logits, sample_weight=[0.8, 0.2]) == pytest.approx(
        0.243, abs=1e-3)
    assert BinaryCrossentropy(from_logits=True, reduction="sum")(y_true, logits) == pytest.approx(1.730, abs=1e-3)
    np.testing.assert_allclose(BinaryCrossentropy(from_logits=True, reduction=None)(y_true, logits),
                               [0.235, 1.496], atol=1e-3)
    # probabilities
    y_pred = np.array([[0.6, 0.4], [0.4, 0.6]])
    assert BinaryCrossentropy()(y_true, y_pred) == pytest.approx(0.815, abs=1e-3)
    assert BinaryCrossentropy()(y_true, y_pred, sample_weight=[1, 0]) == pytest.approx(0.458, abs=1e-3)
    assert BinaryCrossentropy(reduction="sum")(y_true, y_pred) == pytest.approx(1.630, abs=1e-3)
    np.testing.assert_allclose(BinaryCrossentropy(reduction="none")(y_true, y_pred), [0.916, 0.714], atol=1e-3)


def test_hand_worked_regression_losses():
    t, p = np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[1.0, 1.0], [1.0, 0.0]])
    assert MeanSquaredError()(t, p) == pytest.approx(0.5)
    assert MeanAbsoluteError()(t, p) == pytest.approx(0.5)
    assert Huber()(t, p) == pytest.approx(0.25)  # 0.5 * 1**2, averaged
    assert Huber(delta=0.5)([[0.0]], [[3.0]]) == pytest.approx(0.5 * 3 - 0.125)
    assert isinstance(MeanSquaredError()(t, p), float)


# ---------------------------------------------------------------------------------------------
# Values against the formulas.

def _cases(rng):
    """(loss, y_true, y_pred, reference per-sample values) with shapes (5, 4)."""
    t = rng.standard_normal((5, 4))
    p = rng.standard_normal((5, 4))
    bt = (rng.random((5, 4)) > 0.5).astype(float)
    bp = rng.uniform(0.02, 0.98, (5, 4))
    labels = rng.integers(0, 4, 5)
    cp = probs(rng, (5, 4))
    return [
        (MeanSquaredError(), t, p, ref_mse(t, p)),
        (MeanAbsoluteError(), t, p, ref_mae(t, p)),
        (Huber(), t, p, ref_huber(t, p)),
        (Huber(delta=0.3), t, p, ref_huber(t, p, 0.3)),
        (BinaryCrossentropy(), bt, bp, ref_bce(bt, bp)),
        (BinaryCrossentropy(label_smoothing=0.2), bt, bp, ref_bce(bt, bp, label_smoothing=0.2)),
        (BinaryCrossentropy(from_logits=True), bt, 3 * p, ref_bce(bt, 3 * p, from_logits=True)),
        (BinaryCrossentropy(from_logits=True, label_smoothing=0.1), bt, p, ref_bce(bt, p, True, 0.1)),
        (CategoricalCrossentropy(), onehot(labels, 4), cp, ref_cce(onehot(labels, 4), cp)),
        (CategoricalCrossentropy(label_smoothing=0.3), onehot(labels, 4), cp,
         ref_cce(onehot(labels, 4), cp, False, 0.3)),
        (CategoricalCrossentropy(from_logits=True), onehot(labels, 4), 4 * p, ref_cce(onehot(labels, 4), 4 * p, True)),
        (CategoricalCrossentropy(from_logits=True, label_smoothing=0.1), onehot(labels, 4), p,
         ref_cce(onehot(labels, 4), p, True, 0.1)),
        (CategoricalCrossentropy(), bp / bp.sum(-1, keepdims=True), cp, ref_cce(bp / bp.sum(-1, keepdims=True), cp)),
        (SparseCategoricalCrossentropy(), labels, cp, ref_cce(onehot(labels, 4), cp)),
        (SparseCategoricalCrossentropy(from_logits=True), labels, 4 * p, ref_cce(onehot(labels, 4), 4 * p, True)),
    ]


CASE_IDS = ["mse", "mae", "huber", "huber0.3", "bce", "bce_ls", "bce_logits", "bce_logits_ls", "cce", "cce_ls",
            "cce_logits", "cce_logits_ls", "cce_soft", "scce", "scce_logits"]


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none", None, "mean", "mean_with_sample_weight"])
@pytest.mark.parametrize("weighted", [False, True])
def test_values_and_reductions(reduction, weighted):
    rng = np.random.default_rng(0)
    w = rng.uniform(0.0, 2.0, 5) if weighted else None
    for (loss, t, p, ref), cid in zip(_cases(rng), CASE_IDS):
        loss.reduction = reduction
        got = loss(t, p, sample_weight=w)
        np.testing.assert_allclose(got, reduce_ref(ref, w, reduction), rtol=1e-10, atol=1e-12, err_msg=cid)
        if reduction in ("none", None):
            assert got.shape == (5,)
        else:
            assert isinstance(got, float)


def test_functional_forms_are_per_sample():
    rng = np.random.default_rng(1)
    t, p = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    bt, bp = (t > 0).astype(float), rng.uniform(0.1, 0.9, (3, 4))
    np.testing.assert_allclose(losses.mean_squared_error(t, p), ref_mse(t, p))
    np.testing.assert_allclose(losses.mean_absolute_error(t, p), ref_mae(t, p))
    np.testing.assert_allclose(losses.huber(t, p, delta=0.5), ref_huber(t, p, 0.5))
    np.testing.assert_allclose(losses.binary_crossentropy(bt, bp), ref_bce(bt, bp))
    np.testing.assert_allclose(losses.binary_crossentropy(bt, p, from_logits=True, label_smoothing=0.2, axis=-1),
                               ref_bce(bt, p, True, 0.2))
    cp = probs(rng, (3, 4))
    np.testing.assert_allclose(losses.categorical_crossentropy(onehot([0, 3, 1], 4), cp, label_smoothing=0.1),
                               ref_cce(onehot([0, 3, 1], 4), cp, False, 0.1))
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy([0, 3, 1], p, from_logits=True),
                               ref_cce(onehot([0, 3, 1], 4), p, True))


def test_sequence_shapes_and_temporal_weights():
    rng = np.random.default_rng(2)
    t, p = rng.standard_normal((3, 5, 2)), rng.standard_normal((3, 5, 2))
    ref = ref_mse(t, p)  # (3, 5)
    assert MeanSquaredError()(t, p) == pytest.approx(ref.sum() / 15)
    w = np.array([1.0, 0.0, 2.0])
    assert MeanSquaredError()(t, p, sample_weight=w) == pytest.approx((ref * w[:, None]).sum() / 15)
    wt = rng.random((3, 5))
    assert MeanSquaredError()(t, p, sample_weight=wt) == pytest.approx((ref * wt).sum() / 15)
    labels = rng.integers(0, 2, (3, 5))
    probs_ = probs(rng, (3, 5, 2))
    assert SparseCategoricalCrossentropy()(labels, probs_) == pytest.approx(
        ref_cce(onehot(labels, 2), probs_).mean())


def test_sample_weight_shapes():
    t, p = np.zeros((4, 1)), np.arange(4.0).reshape(4, 1)
    w = np.array([1.0, 2.0, 0.0, 1.0])
    expect = (np.arange(4.0) ** 2 * w).sum() / 4
    for weights in (w, w.reshape(4, 1), list(w)):
        assert MeanSquaredError()(t, p, sample_weight=weights) == pytest.approx(expect)
        assert MeanSquaredError().forward_backward(t, p, sample_weight=weights)[0] == pytest.approx(expect)
    assert MeanSquaredError()(t, p, sample_weight=2.0) == pytest.approx(2 * (np.arange(4.0) ** 2).mean())
    np.testing.assert_allclose(MeanSquaredError(reduction="none")(t, p, sample_weight=w), np.arange(4.0) ** 2 * w)
    # all-zero weights: Keras divides without NaN
    assert MeanSquaredError(reduction="mean_with_sample_weight")(t, p, sample_weight=np.zeros(4)) == 0.0
    for bad in (np.ones(3), np.ones((4, 2)), np.ones((4, 1, 1))):
        with pytest.raises(ValueError, match="sample_weight"):
            MeanSquaredError()(t, p, sample_weight=bad)


def test_targets_with_trailing_axis_of_one():
    p = np.array([[0.2], [0.9], [0.6]])
    t = np.array([0.0, 1.0, 1.0])
    ref = ref_bce(t[:, None], p).mean()
    assert BinaryCrossentropy()(t, p) == pytest.approx(ref)  # (N,) labels, (N, 1) predictions
    assert BinaryCrossentropy()(t[:, None], p[:, 0]) == pytest.approx(ref_bce(t, p[:, 0]))  # and the reverse
    assert MeanSquaredError()(t, p) == pytest.approx(ref_mse(t[:, None], p).mean())


# ---------------------------------------------------------------------------------------------
# Keras's epsilon clipping of probabilities.

def test_probability_clipping_uses_keras_epsilon():
    big = -math.log(EPS)
    assert BinaryCrossentropy()([[1.0]], [[0.0]]) == pytest.approx(big, rel=1e-6)
    assert BinaryCrossentropy()([[0.0]], [[1.0]]) == pytest.approx(big, rel=1e-6)
    assert BinaryCrossentropy()([[1.0]], [[1.0]]) == pytest.approx(-math.log(1 - EPS), abs=1e-12)
    assert CategoricalCrossentropy()([[1.0, 0.0]], [[0.0, 1.0]]) == pytest.approx(big, rel=1e-6)
    assert SparseCategoricalCrossentropy()([0], [[0.0, 1.0]]) == pytest.approx(big, rel=1e-6)
    # out-of-range probabilities are clipped too
    assert BinaryCrossentropy()([[1.0]], [[-0.5]]) == pytest.approx(big, rel=1e-6)
    # CCE renormalizes y_pred over the last axis before clipping
    assert CategoricalCrossentropy()([[0.0, 1.0]], [[2.0, 2.0]]) == pytest.approx(math.log(2))


def test_clipped_probabilities_have_zero_gradient():
    _, g = BinaryCrossentropy().forward_backward(np.array([[1.0, 0.0, 1.0]]), np.array([[1e-9, 1.0, 0.5]]))
    assert g[0, 0] == 0.0 and g[0, 1] == 0.0 and g[0, 2] != 0.0
    _, g = CategoricalCrossentropy().forward_backward(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    np.testing.assert_array_equal(g, [[0.0, 0.0]])


# ---------------------------------------------------------------------------------------------
# Gradients (float64, central differences).

def _numeric(loss, t, p, w):
    def f():
        out = loss(t, p, sample_weight=w)
        return float(np.sum(out))
    return numerical_gradient(f, p)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none", "mean_with_sample_weight"])
@pytest.mark.parametrize("weighted", [False, True])
def test_forward_backward_gradients(reduction, weighted):
    rng = np.random.default_rng(5)
    w = rng.uniform(0.1, 2.0, 5) if weighted else None
    for (loss, t, p, _), cid in zip(_cases(rng), CASE_IDS):
        loss.reduction = reduction
        p = np.array(p, dtype=np.float64)
        if cid.startswith(("mae", "huber")):  # keep finite differences off the kinks
            d = p - t
            p = np.where(np.abs(d) < 1e-3, t + 2e-3, p)
            delta = getattr(loss, "delta", None)
            if delta is not None:
                p = np.where(np.abs(np.abs(p - t) - delta) < 1e-3, p + 3e-3 * np.sign(p - t), p)
        value, grad = loss.forward_backward(t, p, sample_weight=w)
        np.testing.assert_allclose(value, loss(t, p, sample_weight=w), rtol=1e-12, err_msg=cid)
        assert grad.shape == p.shape and grad.dtype == np.float64
        np.testing.assert_allclose(grad, _numeric(loss, t, p, w), rtol=1e-6, atol=1e-8, err_msg=cid)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none"])
def test_fused_logits_gradients(reduction):
    """fused_logits_backward(y, z) is the loss of y against activation(z) and its gradient w.r.t. z."""
    rng = np.random.default_rng(6)
    z = rng.standard_normal((5, 3)) * 2
    w = rng.uniform(0.1, 2.0, 5)
    labels = rng.integers(0, 3, 5)
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    cases = [
        (BinaryCrossentropy(reduction=reduction), (rng.random((5, 3)) > 0.5).astype(float), sig),
        (BinaryCrossentropy(label_smoothing=0.2, reduction=reduction), (rng.random((5, 3)) > 0.5) * 1.0, sig),
        (CategoricalCrossentropy(reduction=reduction), onehot(labels, 3), _softmax),
        (CategoricalCrossentropy(label_smoothing=0.1, reduction=reduction), onehot(labels, 3), _softmax),
        (SparseCategoricalCrossentropy(reduction=reduction), labels, _softmax),
    ]
    for loss, t, act in cases:
        for sw in (None, w):
            value, dz = loss.fused_logits_backward(t, z, sample_weight=sw)
            np.testing.assert_allclose(value, loss(t, act(z), sample_weight=sw), rtol=1e-10, err_msg=loss.name)
            num = numerical_gradient(lambda: float(np.sum(loss(t, act(z), sample_weight=sw))), z)
            np.testing.assert_allclose(dz, num, rtol=1e-6, atol=1e-8, err_msg=loss.name)


def test_fused_path_is_stable_for_large_logits():
    z = np.array([[1e4, -1e4, 0.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            for loss, t in [(CategoricalCrossentropy(), [[0.0, 1.0, 0.0]]), (SparseCategoricalCrossentropy(), [1]),
                            (BinaryCrossentropy(), [[0.0, 1.0, 1.0]])]:
                value, dz = loss.fused_logits_backward(t, z)
                assert np.isfinite(value) and np.all(np.isfinite(dz)) and dz.dtype == np.float32
            value, dz = CategoricalCrossentropy(from_logits=True).forward_backward([[0.0, 1.0, 0.0]], z)
            assert value == pytest.approx(2e4, rel=1e-6) and np.all(np.isfinite(dz))


def test_float32_values_and_gradient_dtype():
    rng = np.random.default_rng(7)
    for (loss, t, p, ref), cid in zip(_cases(rng), CASE_IDS):
        p32 = np.asarray(p, dtype=np.float32)
        value, grad = loss.forward_backward(t, p32)
        assert grad.dtype == np.float32, cid
        assert value == pytest.approx(float(np.mean(ref)), rel=1e-5, abs=1e-6), cid


# ---------------------------------------------------------------------------------------------
# Integer vs one-hot labels.

def test_sparse_labels_equal_one_hot():
    rng = np.random.default_rng(8)
    labels = np.array([2, 0, 1, 2])
    p, z = probs(rng, (4, 3)), rng.standard_normal((4, 3))
    for from_logits, y_pred in ((False, p), (True, z)):
        want = CategoricalCrossentropy(from_logits=from_logits)(onehot(labels, 3), y_pred)
        sparse = SparseCategoricalCrossentropy(from_logits=from_logits)
        for form in (labels, labels.reshape(4, 1), labels.astype(np.float32), labels.astype(np.uint8), list(labels)):
            assert sparse(form, y_pred) == pytest.approx(want, rel=1e-12)
        v1, g1 = sparse.forward_backward(labels, y_pred)
        v2, g2 = CategoricalCrossentropy(from_logits=from_logits).forward_backward(onehot(labels, 3), y_pred)
        assert v1 == pytest.approx(v2) and np.allclose(g1, g2, rtol=1e-12, atol=1e-15)


def test_sparse_label_errors_name_y_true():
    p = np.full((2, 3), 1 / 3)
    scce = SparseCategoricalCrossentropy()
    with pytest.raises(ValueError, match="y_true"):
        scce(np.eye(3)[:2], p)  # one-hot labels
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        scce([0, 3], p)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        scce([-1, 0], p)
    with pytest.raises(ValueError, match="integer"):
        scce([0.5, 1.0], p)
    with pytest.raises(ValueError, match="ignore_class"):
        SparseCategoricalCrossentropy(ignore_class="pad")


# ---------------------------------------------------------------------------------------------
# Errors name the argument.

def test_shape_and_argument_errors():
    with pytest.raises(ValueError, match="y_true"):
        MeanSquaredError()(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="y_true"):
        CategoricalCrossentropy()(np.zeros((3, 2)), np.full((3, 4), 0.25))
    with pytest.raises(ValueError, match="y_true"):
        BinaryCrossentropy().forward_backward(np.zeros(3), np.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="reduction"):
        MeanSquaredError(reduction="mean_over_everything")
    with pytest.raises(ValueError, match="label_smoothing"):
        BinaryCrossentropy(label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing"):
        CategoricalCrossentropy(label_smoothing=-0.1)
    with pytest.raises(ValueError, match="delta"):
        Huber(delta=0.0)
    with pytest.raises(ValueError, match="axis"):
        CategoricalCrossentropy(axis=1)
    with pytest.raises(ValueError, match="axis"):
        losses.binary_crossentropy([[1.0]], [[0.5]], axis=0)


# ---------------------------------------------------------------------------------------------
# Names, aliases, configs, Keras's positional order.

@pytest.mark.parametrize("alias,cls", [
    ("mse", MeanSquaredError), ("MSE", MeanSquaredError), ("mean_squared_error", MeanSquaredError),
    ("mae", MeanAbsoluteError), ("mean_absolute_error", MeanAbsoluteError), ("huber", Huber),
    ("huber_loss", Huber), ("bce", BinaryCrossentropy), ("binary_crossentropy", BinaryCrossentropy),
    ("categorical_crossentropy", CategoricalCrossentropy),
    ("sparse_categorical_crossentropy", SparseCategoricalCrossentropy),
    ("MeanSquaredError", MeanSquaredError), ("SparseCategoricalCrossentropy", SparseCategoricalCrossentropy),
])
def test_string_aliases(alias, cls):
    loss = losses.get(alias)
    assert type(loss) is cls and loss.reduction == "sum_over_batch_size"


def test_default_names_and_get_errors():
    assert [c().name for c in (MeanSquaredError, MeanAbsoluteError, Huber, BinaryCrossentropy,
                               CategoricalCrossentropy, SparseCategoricalCrossentropy)] == [
        "mean_squared_error", "mean_absolute_error", "huber_loss", "binary_crossentropy",
        "categorical_crossentropy", "sparse_categorical_crossentropy"]
    inst = Huber()
    assert losses.get(inst) is inst
    with pytest.raises(ValueError, match="'nope'"):
        losses.get("nope")
    with pytest.raises(TypeError, match="loss"):
        losses.get(3)
    with pytest.raises(ValueError, match="class_name"):
        losses.deserialize({"class_name": "Nope", "config": {}})


@pytest.mark.parametrize("loss", [
    MeanSquaredError(reduction="sum", name="m"), MeanAbsoluteError(reduction=None), Huber(delta=2.5),
    BinaryCrossentropy(from_logits=True, label_smoothing=0.1, reduction="none"),
    CategoricalCrossentropy(label_smoothing=0.2), SparseCategoricalCrossentropy(from_logits=True, reduction="sum"),
], ids=lambda loss: type(loss).__name__)
def test_config_round_trip(loss):
    back = losses.get(losses.serialize(loss))
    assert type(back) is type(loss) and back.get_config() == loss.get_config()
    rng = np.random.default_rng(9)
    t = rng.integers(0, 3, 4) if isinstance(loss, SparseCategoricalCrossentropy) else rng.random((4, 3)).round()
    p = rng.uniform(0.1, 0.9, (4, 3))
    np.testing.assert_allclose(back(t, p), loss(t, p))


def test_keras_positional_argument_order():
    assert MeanSquaredError("sum").reduction == "sum"
    assert MeanAbsoluteError(None, "x").name == "x"
    h = Huber(2.0, "sum", "h")
    assert (h.delta, h.reduction, h.name) == (2.0, "sum", "h")
    b = BinaryCrossentropy(True, 0.1, -1, "none", "b")
    assert (b.from_logits, b.label_smoothing, b.axis, b.reduction, b.name) == (True, 0.1, -1, "none", "b")
    c = CategoricalCrossentropy(True, 0.2, -1, "sum", "c")
    assert (c.from_logits, c.label_smoothing, c.axis, c.reduction, c.name) == (True, 0.2, -1, "sum", "c")
    s = SparseCategoricalCrossentropy(True, None, "sum", -1, "s")   # Keras 3.15: axis before name
    assert (s.from_logits, s.ignore_class, s.reduction, s.axis, s.name) == (True, None, "sum", -1, "s")
