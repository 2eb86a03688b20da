"""Keras 3's other losses in cynet.losses (hinges, KL divergence, Poisson, log-cosh, cosine similarity,
MAPE, MSLE, the focal cross-entropies, Dice, Tversky): values against the definitions written out here
in float64, every reduction with and without sample weights, analytic gradients against central
differences, float32, names, configs, errors; and against Keras 3 itself (values, gradients, one fit
step) when keras is installed."""
import json
import os

import numpy as np
import pytest

import cynet
from cynet import losses
from cynet.testing import numerical_gradient

EPS = 1e-7  # Keras's backend.epsilon()
N, C = 5, 4
REDUCTIONS = ["sum_over_batch_size", "sum", "none", "mean_with_sample_weight"]


# ---------------------------------------------------------------------------------------------
# The definitions (Keras 3's formulas, float64).

def _hinge_t(t):
    return 2 * t - 1 if np.all((t == 0) | (t == 1)) else t


def ref_hinge(t, p):
    return np.mean(np.maximum(1 - _hinge_t(t) * p, 0), axis=-1)


def ref_squared_hinge(t, p):
    return np.mean(np.maximum(1 - _hinge_t(t) * p, 0) ** 2, axis=-1)


def ref_categorical_hinge(t, p):
    return np.maximum(np.max((1 - t) * p, axis=-1) - np.sum(t * p, axis=-1) + 1, 0)


def ref_kld(t, p):
    t, p = np.clip(t, EPS, 1), np.clip(p, EPS, 1)
    return np.sum(t * np.log(t / p), axis=-1)


def ref_poisson(t, p):
    return np.mean(p - t * np.log(p + EPS), axis=-1)


def ref_log_cosh(t, p):
    return np.mean(np.log(np.cosh(p - t)), axis=-1)


def ref_cosine(t, p, axis=-1):
    def unit(x):
        return x / np.maximum(np.sqrt(np.sum(x * x, axis=axis, keepdims=True)), EPS)
    return -np.sum(unit(t) * unit(p), axis=axis)


def ref_mape(t, p):
    return 100 * np.mean(np.abs(t - p) / np.maximum(np.abs(t), EPS), axis=-1)


def ref_msle(t, p):
    return np.mean((np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(t, EPS) + 1)) ** 2, axis=-1)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def ref_binary_focal(t, p, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                     label_smoothing=0.0):
    t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    p = _sigmoid(p) if from_logits else p
    q = np.clip(p, EPS, 1 - EPS)
    bce = -(t * np.log(q) + (1 - t) * np.log(1 - q))
    p_t = t * p + (1 - t) * (1 - p)
    out = (1 - p_t) ** gamma * bce
    if apply_class_balancing:
        out = out * (t * alpha + (1 - t) * (1 - alpha))
    return out.mean(axis=-1)


def ref_categorical_focal(t, p, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0):
    t = t * (1 - label_smoothing) + label_smoothing / t.shape[-1]
    p = _softmax(p) if from_logits else p
    o = np.clip(p / p.sum(axis=-1, keepdims=True), EPS, 1 - EPS)
    return np.sum(alpha * (1 - o) ** gamma * -t * np.log(o), axis=-1)


def _axes(axis, ndim):
    return tuple(range(ndim)) if axis is None else axis


def ref_dice(t, p, axis=None):
    a = _axes(axis, p.ndim)
    return 1 - 2 * np.sum(t * p, axis=a) / (np.sum(t, axis=a) + np.sum(p, axis=a) + EPS)


def ref_tversky(t, p, alpha=0.5, beta=0.5, axis=None):
    a = _axes(axis, p.ndim)
    tp = np.sum(t * p, axis=a)
    fp = np.sum((1 - p) * t, axis=a)
    fn = np.sum(p * (1 - t), axis=a)
    return 1 - tp / (tp + alpha * fp + beta * fn + EPS)


def reduce_ref(values, w=None, reduction="sum_over_batch_size"):
    """Keras's reduce_weighted_values, weights over the leading axes (a scalar loss is broadcast to them)."""
    if w is not None:
        if values.ndim == 0:
            values = np.broadcast_to(values, np.shape(w))
        w = np.asarray(w, float).reshape(np.shape(w) + (1,) * (values.ndim - np.ndim(w)))
        values = values * w
    if reduction in ("none", None):
        return values
    if reduction == "sum":
        return values.sum()
    if reduction == "mean_with_sample_weight" and w is not None:
        return values.sum() / np.broadcast_to(w, values.shape).sum()
    return values.sum() / values.size


# ---------------------------------------------------------------------------------------------
# Cases: (id, factory(reduction) -> loss, y_true, y_pred, reference per-sample function).

def _data(rng):
    d = {
        "probs": _softmax(rng.standard_normal((N, C))),
        "probs2": _softmax(rng.standard_normal((N, C))),
        "onehot": np.eye(C)[rng.integers(0, C, N)],
        "reg_t": rng.standard_normal((N, C)),
        "reg_p": rng.standard_normal((N, C)),
        "pos_t": rng.uniform(0.0, 3.0, (N, C)),
        "pos_p": rng.uniform(0.2, 3.0, (N, C)),
        "bin": (rng.random((N, C)) > 0.5).astype(float),
        "pm1": np.where(rng.random((N, C)) > 0.5, 1.0, -1.0),
        "sig": rng.uniform(0.05, 0.95, (N, C)),
        "logits": rng.standard_normal((N, C)) * 2,
        "masks": (rng.random((N, 3, 3)) > 0.5).astype(float),
        "mask_p": rng.uniform(0.05, 0.95, (N, 3, 3)),
    }
    # keep finite differences off the kinks: hinge margins and MAPE's |.| away from 0
    for t in ("bin", "pm1"):
        margin = 1 - _hinge_t(d[t]) * d["reg_p"]
        d["reg_p"] = np.where(np.abs(margin) < 0.05, d["reg_p"] + 0.1, d["reg_p"])
    d["reg_p"] = np.where(np.abs(d["reg_p"] - d["reg_t"]) < 0.05, d["reg_p"] + 0.1, d["reg_p"])
    return d


L = losses
CASES = [
    ("hinge_01", lambda r: L.Hinge(reduction=r), "bin", "reg_p", ref_hinge),
    ("hinge_pm1", lambda r: L.Hinge(reduction=r), "pm1", "reg_p", ref_hinge),
    ("squared_hinge", lambda r: L.SquaredHinge(reduction=r), "bin", "reg_p", ref_squared_hinge),
    ("categorical_hinge", lambda r: L.CategoricalHinge(reduction=r), "onehot", "reg_p", ref_categorical_hinge),
    ("kld", lambda r: L.KLDivergence(reduction=r), "probs", "probs2", ref_kld),
    ("poisson", lambda r: L.Poisson(reduction=r), "pos_t", "pos_p", ref_poisson),
    ("log_cosh", lambda r: L.LogCosh(reduction=r), "reg_t", "reg_p", ref_log_cosh),
    ("cosine", lambda r: L.CosineSimilarity(reduction=r), "reg_t", "reg_p", ref_cosine),
    ("mape", lambda r: L.MeanAbsolutePercentageError(reduction=r), "reg_t", "reg_p", ref_mape),
    ("msle", lambda r: L.MeanSquaredLogarithmicError(reduction=r), "pos_t", "pos_p", ref_msle),
    ("binary_focal", lambda r: L.BinaryFocalCrossentropy(reduction=r), "bin", "sig", ref_binary_focal),
    ("binary_focal_balanced_smoothed",
     lambda r: L.BinaryFocalCrossentropy(True, 0.4, 1.5, label_smoothing=0.1, reduction=r), "bin", "sig",
     lambda t, p: ref_binary_focal(t, p, True, 0.4, 1.5, label_smoothing=0.1)),
    ("binary_focal_logits",
     lambda r: L.BinaryFocalCrossentropy(apply_class_balancing=True, from_logits=True, gamma=3.0, reduction=r),
     "bin", "logits", lambda t, p: ref_binary_focal(t, p, True, gamma=3.0, from_logits=True)),
    ("categorical_focal", lambda r: L.CategoricalFocalCrossentropy(reduction=r), "onehot", "probs",
     ref_categorical_focal),
    ("categorical_focal_logits",
     lambda r: L.CategoricalFocalCrossentropy(alpha=0.5, gamma=0.5, from_logits=True, label_smoothing=0.2,
                                              reduction=r),
     "onehot", "logits", lambda t, p: ref_categorical_focal(t, p, 0.5, 0.5, True, 0.2)),
    ("dice", lambda r: L.Dice(reduction=r), "masks", "mask_p", ref_dice),
    ("dice_per_image", lambda r: L.Dice(reduction=r, axis=(1, 2)), "masks", "mask_p",
     lambda t, p: ref_dice(t, p, (1, 2))),
    ("tversky", lambda r: L.Tversky(0.3, 0.7, reduction=r), "masks", "mask_p",
     lambda t, p: ref_tversky(t, p, 0.3, 0.7)),
    ("tversky_last_axis", lambda r: L.Tversky(reduction=r, axis=-1), "masks", "mask_p",
     lambda t, p: ref_tversky(t, p, axis=-1)),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_values_match_definitions(case, reduction, weighted):
    _, make, tk, pk, ref = case
    rng = np.random.default_rng(0)
    d = _data(rng)
    w = rng.uniform(0.1, 2.0, N) if weighted else None
    t, p = d[tk], d[pk]
    got = make(reduction)(t, p, sample_weight=w)
    np.testing.assert_allclose(got, reduce_ref(ref(t, p), w, reduction), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_gradients_match_central_differences(case, reduction, weighted):
    _, make, tk, pk, _ = case
    rng = np.random.default_rng(1)
    d = _data(rng)
    w = rng.uniform(0.1, 2.0, N) if weighted else None
    t, p = d[tk], np.array(d[pk], dtype=np.float64)
    loss = make(reduction)
    value, grad = loss.forward_backward(t, p, sample_weight=w)
    np.testing.assert_allclose(np.sum(value), np.sum(loss(t, p, sample_weight=w)), rtol=1e-12)
    assert grad.shape == p.shape and grad.dtype == np.float64
    numeric = numerical_gradient(lambda: float(np.sum(loss(t, p, sample_weight=w))), p)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_values_and_gradients(case):
    _, make, tk, pk, ref = case
    d = _data(np.random.default_rng(2))
    t, p = d[tk].astype(np.float32), d[pk].astype(np.float32)
    loss = make("sum_over_batch_size")
    value, grad = loss.forward_backward(t, p)
    assert grad.dtype == np.float32
    assert make("none")(t, p).dtype == np.float32
    np.testing.assert_allclose(value, ref(d[tk], d[pk]).mean(), rtol=2e-5, atol=1e-6)
    _, grad64 = make("sum_over_batch_size").forward_backward(d[tk], d[pk])
    np.testing.assert_allclose(grad, grad64, rtol=1e-3, atol=1e-5)


def test_clipped_and_degenerate_inputs_give_finite_zero_gradients():
    """Entries the Keras clips hold fixed get a zero gradient; perfect predictions give no NaN."""
    t = np.array([[1.0, 0.0, 0.0]])
    p = np.array([[1.0, 0.0, 0.0]])
    for loss in (L.BinaryFocalCrossentropy(gamma=0.5), L.CategoricalFocalCrossentropy(gamma=0.5), L.KLDivergence(),
                 L.CategoricalFocalCrossentropy(), L.Dice(), L.Tversky(), L.MeanSquaredLogarithmicError()):
        value, grad = loss.forward_backward(t, p)
        assert np.isfinite(value) and np.all(np.isfinite(grad)), loss.name
    _, g = L.KLDivergence().forward_backward(np.array([[0.5, 0.5]]), np.array([[0.0, 1.0]]))
    assert g[0, 0] == 0.0   # below the clip: no gradient
    _, g = L.CosineSimilarity().forward_backward(np.array([[1.0, 0.0]]), np.array([[0.0, 0.0]]))
    assert np.all(np.isfinite(g))


def test_hinge_converts_binary_labels_over_the_whole_batch():
    p = np.array([[0.3, -0.2], [0.8, 0.1]])
    np.testing.assert_allclose(L.hinge(np.array([[0.0, 1.0], [1.0, 1.0]]), p),
                               L.hinge(np.array([[-1.0, 1.0], [1.0, 1.0]]), p))
    # one label outside {0, 1}: nothing is converted
    np.testing.assert_allclose(L.hinge(np.array([[0.0, 1.0], [1.0, 0.5]]), p),
                               ref_hinge(np.array([[0.0, 1.0], [1.0, 0.5]]), p))


def test_cosine_similarity_axis():
    rng = np.random.default_rng(3)
    t, p = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    got = L.CosineSimilarity(axis=0, reduction="none")(t, p)
    np.testing.assert_allclose(got, ref_cosine(t, p, axis=0))
    np.testing.assert_allclose(L.cosine_similarity(t, p, axis=0), got)
    _, grad = L.CosineSimilarity(axis=0, reduction="sum").forward_backward(t, p)
    np.testing.assert_allclose(grad, numerical_gradient(lambda: L.CosineSimilarity(axis=0, reduction="sum")(t, p), p),
                               rtol=1e-6, atol=1e-8)
    # parallel vectors: -1
    assert L.CosineSimilarity()(np.array([[1.0, 2.0]]), np.array([[2.0, 4.0]])) == pytest.approx(-1.0)


FUNCTIONS = [
    (L.hinge, L.Hinge, {}), (L.squared_hinge, L.SquaredHinge, {}), (L.categorical_hinge, L.CategoricalHinge, {}),
    (L.kl_divergence, L.KLDivergence, {}), (L.poisson, L.Poisson, {}), (L.log_cosh, L.LogCosh, {}),
    (L.cosine_similarity, L.CosineSimilarity, {"axis": -1}),
    (L.mean_absolute_percentage_error, L.MeanAbsolutePercentageError, {}),
    (L.mean_squared_logarithmic_error, L.MeanSquaredLogarithmicError, {}),
    (L.binary_focal_crossentropy, L.BinaryFocalCrossentropy, {"apply_class_balancing": True, "gamma": 1.0}),
    (L.categorical_focal_crossentropy, L.CategoricalFocalCrossentropy, {"alpha": 0.3, "from_logits": True}),
    (L.dice, L.Dice, {"axis": -1}), (L.tversky, L.Tversky, {"alpha": 0.2, "beta": 0.8, "axis": 1}),
]


@pytest.mark.parametrize("fn,cls,kwargs", FUNCTIONS, ids=[f[0].__name__ for f in FUNCTIONS])
def test_function_forms_are_per_sample(fn, cls, kwargs):
    rng = np.random.default_rng(4)
    t = (rng.random((N, C)) > 0.5).astype(float)
    p = rng.uniform(0.05, 0.95, (N, C))
    got = fn(t, p, **kwargs)
    assert got.shape == (N,)
    np.testing.assert_allclose(got, cls(reduction="none", **kwargs)(t, p))


KERAS_NAMES = {
    "Hinge": ["hinge", "Hinge"], "SquaredHinge": ["squared_hinge", "SquaredHinge"],
    "CategoricalHinge": ["categorical_hinge", "CategoricalHinge"],
    "KLDivergence": ["kl_divergence", "kld", "KLD", "kullback_leibler_divergence", "KLDivergence"],
    "Poisson": ["poisson", "Poisson"], "LogCosh": ["log_cosh", "logcosh", "LogCosh"],
    "CosineSimilarity": ["cosine_similarity", "CosineSimilarity"],
    "MeanAbsolutePercentageError": ["mean_absolute_percentage_error", "mape", "MAPE", "MeanAbsolutePercentageError"],
    "MeanSquaredLogarithmicError": ["mean_squared_logarithmic_error", "msle", "MSLE", "MeanSquaredLogarithmicError"],
    "BinaryFocalCrossentropy": ["binary_focal_crossentropy", "BinaryFocalCrossentropy"],
    "CategoricalFocalCrossentropy": ["categorical_focal_crossentropy", "CategoricalFocalCrossentropy"],
    "Dice": ["dice", "Dice"], "Tversky": ["tversky", "Tversky"],
}


@pytest.mark.parametrize("cls_name", sorted(KERAS_NAMES))
def test_get_by_every_keras_name(cls_name):
    for name in KERAS_NAMES[cls_name]:
        assert type(losses.get(name)).__name__ == cls_name, name


@pytest.mark.parametrize("loss", [
    L.Hinge(reduction="sum", name="h"), L.SquaredHinge(), L.CategoricalHinge(), L.KLDivergence(reduction="none"),
    L.Poisson(), L.LogCosh(), L.CosineSimilarity(axis=1), L.MeanAbsolutePercentageError(),
    L.MeanSquaredLogarithmicError(),
    L.BinaryFocalCrossentropy(True, 0.3, 1.0, True, 0.1, reduction="sum"),
    L.CategoricalFocalCrossentropy(0.4, 3.0, True, 0.2), L.Dice(axis=(1, 2)), L.Dice(axis=None),
    L.Tversky(0.1, 0.9, axis=-1),
], ids=lambda x: type(x).__name__)
def test_config_round_trip(loss):
    config = loss.get_config()
    again = losses.deserialize(losses.serialize(loss))
    assert type(again) is type(loss) and again.get_config() == config
    json.dumps(config)
    rng = np.random.default_rng(5)
    t = (rng.random((3, 2, 2)) > 0.5).astype(float)
    p = rng.uniform(0.1, 0.9, (3, 2, 2))
    np.testing.assert_allclose(again(t, p), loss(t, p))


def test_keras_default_names_and_configs():
    assert L.LogCosh().name == "log_cosh" and L.KLDivergence().name == "kl_divergence"
    assert L.BinaryFocalCrossentropy().get_config() == {
        "name": "binary_focal_crossentropy", "reduction": "sum_over_batch_size", "from_logits": False,
        "label_smoothing": 0.0, "axis": -1, "apply_class_balancing": False, "alpha": 0.25, "gamma": 2.0}
    assert L.Tversky().get_config() == {"name": "tversky", "reduction": "sum_over_batch_size", "alpha": 0.5,
                                        "beta": 0.5, "axis": None}


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="gamma"):
        L.BinaryFocalCrossentropy(gamma=-1)
    with pytest.raises(ValueError, match="gamma"):
        L.CategoricalFocalCrossentropy(gamma=float("nan"))
    with pytest.raises(ValueError, match="label_smoothing"):
        L.CategoricalFocalCrossentropy(label_smoothing=2)
    with pytest.raises(ValueError, match="axis"):
        L.BinaryFocalCrossentropy(axis=0)
    with pytest.raises(ValueError, match="axis"):
        L.CosineSimilarity(axis="last")
    with pytest.raises(ValueError, match="axis"):
        L.Dice(axis=1.5)
    with pytest.raises(ValueError, match="reduction"):
        L.Hinge(reduction="avg")
    with pytest.raises(ValueError, match="alpha"):
        L.Tversky(alpha=float("inf"))
    with pytest.raises(ValueError, match="out of bounds"):
        L.Dice(axis=3)(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="shape"):
        L.Poisson()(np.ones((2, 3)), np.ones((2, 4)))


# ---------------------------------------------------------------------------------------------
# Against Keras 3 (torch backend).

def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none"])
def test_values_and_gradients_equal_keras(case, reduction):
    keras = _keras()
    torch = pytest.importorskip("torch")
    cid, make, tk, pk, _ = case
    rng = np.random.default_rng(6)
    d = _data(rng)
    w = rng.uniform(0.1, 2.0, N).astype(np.float32)
    t, p = d[tk].astype(np.float32), d[pk].astype(np.float32)
    ours = make(reduction)
    theirs = getattr(keras.losses, type(ours).__name__).from_config(ours.get_config())
    per_sample_rank = np.ndim(ours.forward_backward(t, p)[0]) if reduction == "none" else None
    # Keras matches sample_weight (N,) only to per-sample losses of rank 1 or 0 (cynet also broadcasts it
    # over the other axes of a per-sample loss; tested above against the definitions)
    for weights in ((None,) if per_sample_rank is not None and per_sample_rank > 1 or cid == "tversky_last_axis"
                    else (None, w)):
        pt = torch.tensor(p, requires_grad=True)
        kv = theirs(torch.tensor(t), pt, sample_weight=None if weights is None else torch.tensor(weights))
        kv.sum().backward()
        value, grad = ours.forward_backward(t, p, weights)
        np.testing.assert_allclose(value, kv.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=cid)
        np.testing.assert_allclose(grad, pt.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=cid)


FIT_CASES = [
    ("squared_hinge", None, lambda r: np.where(r.random((16, 3)) > 0.5, 1.0, -1.0)),
    ("kld", "softmax", lambda r: _softmax(r.standard_normal((16, 3)))),
    ("log_cosh", None, lambda r: r.standard_normal((16, 3))),
    ("mape", None, lambda r: r.uniform(1, 3, (16, 3))),
    ("poisson", "softplus", lambda r: r.poisson(2.0, (16, 3)).astype(float)),
    (lambda lib: lib.losses.BinaryFocalCrossentropy(apply_class_balancing=True, from_logits=True), None,
     lambda r: (r.random((16, 3)) > 0.5).astype(float)),
    (lambda lib: lib.losses.CategoricalFocalCrossentropy(gamma=1.5), "softmax",
     lambda r: np.eye(3)[r.integers(0, 3, 16)]),
    (lambda lib: lib.losses.Tversky(0.3, 0.7, axis=-1), "sigmoid", lambda r: (r.random((16, 3)) > 0.5) * 1.0),
    ("dice", "sigmoid", lambda r: (r.random((16, 3)) > 0.5).astype(float)),
]


@pytest.mark.parametrize("loss,activation,targets", FIT_CASES,
                         ids=[c[0] if isinstance(c[0], str) else f"object{i}" for i, c in enumerate(FIT_CASES)])
def test_one_fit_step_equals_keras(loss, activation, targets):
    keras = _keras()
    rng = np.random.default_rng(7)
    x = rng.standard_normal((16, 5)).astype("float32")
    y = targets(rng).astype("float32")
    w = rng.uniform(0.5, 1.5, 16).astype("float32")
    models = []
    for lib in (cynet, keras):
        m = lib.Sequential([lib.Input((5,)), lib.layers.Dense(3, activation=activation)])
        m.compile(optimizer=lib.optimizers.SGD(0.1), loss=loss(lib) if callable(loss) else loss)
        models.append(m)
    models[1].set_weights(models[0].get_weights())
    logs = [m.fit(x, y, sample_weight=w, batch_size=8, epochs=1, shuffle=False, verbose=0).history["loss"][0]
            for m in models]
    np.testing.assert_allclose(logs[0], logs[1], rtol=1e-4)
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cls", [L.MeanSquaredError, L.Huber, L.BinaryCrossentropy, L.SparseCategoricalCrossentropy,
                                 L.Hinge, L.KLDivergence, L.BinaryFocalCrossentropy, L.Dice, L.Tversky])
def test_dtype_argument(cls):
    """Keras's `dtype`: the loss computes in it; the gradient comes back in the predictions' dtype."""
    rng = np.random.default_rng(8)
    p32 = rng.uniform(0.05, 0.95, (N, C)).astype(np.float32)
    t = rng.integers(0, C, N) if cls is L.SparseCategoricalCrossentropy else (rng.random((N, C)) > 0.5) * 1.0
    loss64 = cls(dtype="float64")
    assert loss64.dtype == "float64" and cls().dtype is None
    value, grad = loss64.forward_backward(t, p32)
    ref_value, ref_grad = cls().forward_backward(t, p32.astype(np.float64))
    assert grad.dtype == np.float32
    assert value == pytest.approx(ref_value, rel=1e-12)   # computed in float64
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-6)
    assert cls(dtype="float32")(t, p32.astype(np.float64)) == pytest.approx(ref_value, rel=1e-5)
    again = losses.deserialize(losses.serialize(loss64))
    assert again.dtype == "float64" and again.get_config() == loss64.get_config()
    assert "dtype" not in cls().get_config()   # as Keras's configs
    with pytest.raises(ValueError, match="dtype"):
        cls(dtype="int32")


def test_focal_losses_check_their_targets():
    for loss in (L.BinaryFocalCrossentropy(), L.CategoricalFocalCrossentropy()):
        loss.check_targets(np.eye(3)[[0, 2]], (None, 3))
        with pytest.raises(ValueError, match=r"in \[0, 1\]"):
            loss.check_targets(np.array([[0.0, 2.0, 1.0]]), (None, 3))
        with pytest.raises(ValueError, match="shape"):
            loss.check_targets(np.zeros((2, 4)), (None, 3))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_crossentropy_ignore_class(reduction, weighted, from_logits):
    """Entries labelled ignore_class give 0 and leave the mean (Keras's apply_mask); any int, -1 too."""
    rng = np.random.default_rng(9)
    y = rng.integers(-1, 3, (4, 5))
    z = rng.standard_normal((4, 5, 3))
    p = z if from_logits else _softmax(z)
    w = rng.uniform(0.2, 2.0, (4, 5)) if weighted else None
    loss = L.SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=-1, reduction=reduction)
    kept = y != -1
    per_entry = np.where(kept, -np.log(np.take_along_axis(_softmax(z), np.where(kept, y, 0)[..., None], -1)[..., 0]),
                         0.0)
    weights = (1.0 if w is None else w) * kept
    if reduction in ("sum_over_batch_size",):
        weights = weights * kept.size / kept.sum()
    expected = reduce_ref(per_entry * weights, None, reduction)
    if reduction == "mean_with_sample_weight":
        expected = np.sum(per_entry * weights) / np.sum(weights)   # the mask is a weight
    value, grad = loss.forward_backward(y, p, w)
    np.testing.assert_allclose(value, expected, rtol=1e-10)
    numeric = numerical_gradient(lambda: float(np.sum(loss(y, p, sample_weight=w))), p)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)
    assert np.all(grad[~kept] == 0)
    if reduction != "none":   # the fused softmax path (a softmax output layer) gives the same
        fused = L.SparseCategoricalCrossentropy(ignore_class=-1, reduction=reduction)
        v2, dz = fused.fused_logits_backward(y, z, w)
        _, g_logits = L.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1,
                                                      reduction=reduction).forward_backward(y, z, w)
        np.testing.assert_allclose(v2, expected, rtol=1e-10)
        np.testing.assert_allclose(dz, g_logits, rtol=1e-8, atol=1e-12)
    loss.check_targets(y, (None, 5, 3))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        L.SparseCategoricalCrossentropy(ignore_class=0).check_targets(y, (None, 5, 3))
    assert losses.deserialize(losses.serialize(loss)).ignore_class == -1


def test_sparse_crossentropy_ignore_class_fit_equals_keras():
    keras = _keras()
    rng = np.random.default_rng(10)
    x = rng.standard_normal((8, 6, 4)).astype("float32")
    y = rng.integers(-1, 3, (8, 6))
    models = []
    for lib in (cynet, keras):
        m = lib.Sequential([lib.Input((6, 4)), lib.layers.Dense(3, activation="softmax")])
        m.compile(optimizer=lib.optimizers.SGD(0.5), loss=lib.losses.SparseCategoricalCrossentropy(ignore_class=-1))
        models.append(m)
    models[1].set_weights(models[0].get_weights())
    logs = [m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history["loss"][0] for m in models]
    np.testing.assert_allclose(logs[0], logs[1], rtol=1e-4)
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
