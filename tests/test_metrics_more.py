"""Keras 3's regression, hinge, probabilistic, correlation and Sum metrics in cynet.metrics: several
batches (update_state / result / reset_state, sample weights) against direct definitions, names,
configs, compile; and against Keras 3 itself when keras is installed."""
import json
import os

import numpy as np
import pytest

import cynet
from cynet import metrics

EPS = 1e-7
N, C = 6, 4


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _pearson(t, p):
    t = t - t.mean(-1, keepdims=True)
    p = p - p.mean(-1, keepdims=True)
    return np.mean(t / t.std(-1, keepdims=True) * p / p.std(-1, keepdims=True), axis=-1)


def _concordance(t, p):
    """As Keras 3 computes it (its covariance centres y_true on y_pred's mean)."""
    mt, mp = t.mean(-1, keepdims=True), p.mean(-1, keepdims=True)
    norm = t.var(-1, keepdims=True) + p.var(-1, keepdims=True) + (mt - mp) ** 2
    return np.mean(2 * (t - mp) * (p - mp) / (norm + EPS), axis=-1)


def _hinge_t(t):
    return 2 * t - 1 if np.all((t == 0) | (t == 1)) else t


def _bce(t, p, from_logits=False, label_smoothing=0.0):
    t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    q = np.clip(_sigmoid(p) if from_logits else p, EPS, 1 - EPS)
    return -np.mean(t * np.log(q) + (1 - t) * np.log(1 - q), axis=-1)


def _cce(t, p, from_logits=False, label_smoothing=0.0):
    t = t * (1 - label_smoothing) + label_smoothing / t.shape[-1]
    q = _softmax(p) if from_logits else np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return -np.sum(t * np.log(q), axis=-1)


def _batch(rng):
    return {
        "reg_t": rng.standard_normal((N, C)), "reg_p": rng.standard_normal((N, C)),
        "pos_t": rng.uniform(0, 3, (N, C)), "pos_p": rng.uniform(0.1, 3, (N, C)),
        "probs": _softmax(rng.standard_normal((N, C))), "probs2": _softmax(rng.standard_normal((N, C))),
        "onehot": np.eye(C)[rng.integers(0, C, N)], "labels": rng.integers(0, C, N),
        "bin": (rng.random((N, C)) > 0.5).astype(float), "sig": rng.uniform(0.05, 0.95, (N, C)),
    }


# (metric factory, y_true key, y_pred key, per-sample definition, how the per-sample means combine)
CASES = [
    ("rmse", lambda: metrics.RootMeanSquaredError(), "reg_t", "reg_p", lambda t, p: np.mean((p - t) ** 2, -1), np.sqrt),
    ("mape", lambda: metrics.MeanAbsolutePercentageError(), "reg_t", "reg_p",
     lambda t, p: 100 * np.mean(np.abs(t - p) / np.maximum(np.abs(t), EPS), -1), None),
    ("msle", lambda: metrics.MeanSquaredLogarithmicError(), "pos_t", "reg_p",
     lambda t, p: np.mean((np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(t, EPS) + 1)) ** 2, -1), None),
    ("cosine", lambda: metrics.CosineSimilarity(), "reg_t", "reg_p",
     lambda t, p: np.sum(t * p, -1) / np.linalg.norm(t, axis=-1) / np.linalg.norm(p, axis=-1), None),
    ("logcosh", lambda: metrics.LogCoshError(), "reg_t", "reg_p", lambda t, p: np.mean(np.log(np.cosh(p - t)), -1),
     None),
    ("poisson", lambda: metrics.Poisson(), "pos_t", "pos_p", lambda t, p: np.mean(p - t * np.log(p + EPS), -1), None),
    ("kld", lambda: metrics.KLDivergence(), "probs", "probs2", lambda t, p: np.sum(t * np.log(t / p), -1), None),
    ("hinge", lambda: metrics.Hinge(), "bin", "reg_p", lambda t, p: np.mean(np.maximum(1 - _hinge_t(t) * p, 0), -1),
     None),
    ("squared_hinge", lambda: metrics.SquaredHinge(), "bin", "reg_p",
     lambda t, p: np.mean(np.maximum(1 - _hinge_t(t) * p, 0) ** 2, -1), None),
    ("categorical_hinge", lambda: metrics.CategoricalHinge(), "onehot", "reg_p",
     lambda t, p: np.maximum(np.max((1 - t) * p, -1) - np.sum(t * p, -1) + 1, 0), None),
    ("bce", lambda: metrics.BinaryCrossentropy(), "bin", "sig", _bce, None),
    ("bce_logits", lambda: metrics.BinaryCrossentropy(from_logits=True, label_smoothing=0.1), "bin", "reg_p",
     lambda t, p: _bce(t, p, True, 0.1), None),
    ("cce", lambda: metrics.CategoricalCrossentropy(), "onehot", "probs", _cce, None),
    ("cce_logits", lambda: metrics.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2), "onehot", "reg_p",
     lambda t, p: _cce(t, p, True, 0.2), None),
    ("sparse_cce", lambda: metrics.SparseCategoricalCrossentropy(), "labels", "probs",
     lambda t, p: _cce(np.eye(C)[t], p), None),
    ("sparse_cce_logits", lambda: metrics.SparseCategoricalCrossentropy(from_logits=True), "labels", "reg_p",
     lambda t, p: _cce(np.eye(C)[t], p, True), None),
    ("pearson", lambda: metrics.PearsonCorrelation(), "reg_t", "reg_p", _pearson, None),
    ("concordance", lambda: metrics.ConcordanceCorrelation(), "reg_t", "reg_p", _concordance, None),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_several_batches_match_the_definition(case, weighted):
    _, make, tk, pk, ref, finish = case
    rng = np.random.default_rng(0)
    metric = make()
    total = count = 0.0
    for _ in range(3):
        d = _batch(rng)
        w = rng.uniform(0.1, 2.0, N) if weighted else None
        metric.update_state(d[tk], d[pk], sample_weight=w)
        values = ref(d[tk], d[pk])
        total += np.sum(values * (1.0 if w is None else w))
        count += N if w is None else w.sum()
    expected = total / count
    expected = finish(expected) if finish else expected
    assert isinstance(metric.result(), float)
    np.testing.assert_allclose(metric.result(), expected, rtol=1e-6, atol=1e-9)
    metric.reset_state()
    assert metric.result() == 0.0
    d = _batch(rng)
    metric.update_state(d[tk], d[pk])
    expected = np.mean(ref(d[tk], d[pk]))
    np.testing.assert_allclose(metric.result(), finish(expected) if finish else expected, rtol=1e-6, atol=1e-9)


def test_sum_over_batches_with_weights():
    rng = np.random.default_rng(1)
    m = metrics.Sum()
    expected = 0.0
    for _ in range(3):
        v = rng.standard_normal((N, 3))
        w = rng.uniform(size=N)
        m.update_state(v, sample_weight=w)
        m.update_state(v[:, 0])
        m.update_state(v, sample_weight=np.broadcast_to(w[:, None], v.shape))
        expected += 2 * np.sum(v * w[:, None]) + np.sum(v[:, 0])
    assert m.result() == pytest.approx(expected)
    assert metrics.Sum()(3.5) == 3.5
    m.reset_state()
    assert m.result() == 0.0
    with pytest.raises(ValueError, match="sample_weight"):
        m.update_state(np.ones((4, 2)), sample_weight=np.ones(3))


def test_correlation_axis_and_perfect_values():
    x = np.array([[1.0, 2.0, 4.0], [0.5, -1.0, 3.0]])
    assert metrics.PearsonCorrelation()(x, 3 * x + 1) == pytest.approx(1.0)
    assert metrics.ConcordanceCorrelation()(x, x) == pytest.approx(1.0, abs=1e-6)
    m = metrics.PearsonCorrelation(axis=0)
    m.update_state(x.T, x.T * 2)
    assert m.result() == pytest.approx(1.0)


def test_metric_functions_are_the_loss_functions():
    """keras.metrics.hinge, kl_divergence, ... are the per-sample loss functions."""
    for name in ("hinge", "squared_hinge", "categorical_hinge", "kl_divergence", "poisson", "log_cosh",
                 "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "binary_crossentropy",
                 "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_focal_crossentropy",
                 "categorical_focal_crossentropy", "huber"):
        assert getattr(metrics, name) is getattr(cynet.losses, name), name


KERAS_NAMES = {
    "RootMeanSquaredError": ["root_mean_squared_error"], "MeanAbsolutePercentageError": ["mape", "MAPE"],
    "MeanSquaredLogarithmicError": ["msle", "MSLE"], "CosineSimilarity": ["cosine_similarity"],
    "LogCoshError": ["log_cosh_error"], "Poisson": ["poisson"], "KLDivergence": ["kl_divergence"],
    "Hinge": ["hinge"], "SquaredHinge": ["squared_hinge"], "CategoricalHinge": ["categorical_hinge"],
    "BinaryCrossentropy": ["binary_crossentropy", "bce", "BCE"],
    "CategoricalCrossentropy": ["categorical_crossentropy"],
    "SparseCategoricalCrossentropy": ["sparse_categorical_crossentropy"], "Sum": ["sum"],
    "PearsonCorrelation": ["pearson_correlation"], "ConcordanceCorrelation": ["concordance_correlation"],
}


@pytest.mark.parametrize("cls_name", sorted(KERAS_NAMES))
def test_get_by_every_keras_name(cls_name):
    for name in KERAS_NAMES[cls_name] + [cls_name]:
        m = metrics.get(name)
        assert type(m).__name__ == cls_name and m.name == name


@pytest.mark.parametrize("metric", [
    metrics.RootMeanSquaredError(name="rmse"), metrics.MeanAbsolutePercentageError(dtype="float64"),
    metrics.MeanSquaredLogarithmicError(), metrics.CosineSimilarity(axis=0), metrics.LogCoshError(),
    metrics.Poisson(), metrics.KLDivergence(), metrics.Hinge(), metrics.SquaredHinge(), metrics.CategoricalHinge(),
    metrics.BinaryCrossentropy(from_logits=True, label_smoothing=0.2),
    metrics.CategoricalCrossentropy(label_smoothing=0.1), metrics.SparseCategoricalCrossentropy(from_logits=True),
    metrics.Sum(), metrics.PearsonCorrelation(axis=0), metrics.ConcordanceCorrelation(),
], ids=lambda m: type(m).__name__)
def test_config_round_trip(metric):
    config = metric.get_config()
    json.dumps(config)
    again = metrics.deserialize(metrics.serialize(metric))
    assert type(again) is type(metric) and again.get_config() == config


def test_keras_defaults():
    assert metrics.LogCoshError().name == "logcosh"
    assert metrics.BinaryCrossentropy().get_config() == {"name": "binary_crossentropy", "dtype": "float32",
                                                         "from_logits": False, "label_smoothing": 0}
    with pytest.raises(ValueError, match="ignore_class"):
        metrics.SparseCategoricalCrossentropy(ignore_class="pad")


def test_sparse_crossentropy_ignore_class():
    """Entries labelled ignore_class count as 0; with weights they also leave the count (Keras 3)."""
    rng = np.random.default_rng(6)
    y = rng.integers(0, 3, (4, 5))
    z = rng.standard_normal((4, 5, 3))
    w = rng.uniform(0.2, 2.0, (4, 5))
    per_entry = _cce(np.eye(3)[y], z, from_logits=True)
    valid = y != 0
    m = metrics.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    m.update_state(y, z)
    assert m.result() == pytest.approx(np.mean(np.where(valid, per_entry, 0)))
    m = metrics.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    m.update_state(y, z, sample_weight=w)
    wv = w * valid
    # Keras's Mean: per-sample means of the weighted values over per-sample means of the weights
    assert m.result() == pytest.approx(np.sum(np.mean(per_entry * wv, -1)) / np.sum(np.mean(wv, -1)))
    again = metrics.deserialize(metrics.serialize(m))
    assert again.get_config()["ignore_class"] == 0


def test_compile_resolves_the_names():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((12, 3)).astype("float32")
    y = rng.uniform(0.5, 2, (12, 2)).astype("float32")
    model = cynet.Sequential([cynet.Input((3,)), cynet.layers.Dense(2, activation="softplus")])
    model.compile(optimizer="sgd", loss="poisson",
                  metrics=["mape", "msle", "root_mean_squared_error", "poisson", "log_cosh_error"])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    pred = model.predict(x, verbose=0).astype(np.float64)
    assert logs["mape"] == pytest.approx(np.mean(100 * np.abs(y - pred) / np.abs(y)), rel=1e-5)
    assert logs["root_mean_squared_error"] == pytest.approx(np.sqrt(np.mean((y - pred) ** 2)), rel=1e-5)
    assert logs["poisson"] == pytest.approx(logs["loss"], rel=1e-5)


# ---------------------------------------------------------------------------------------------
# Against Keras 3 (torch backend).

def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_several_batches_equal_keras(case, weighted):
    keras = _keras()
    _, make, tk, pk, _, _ = case
    rng = np.random.default_rng(3)
    ours = make()
    theirs = getattr(keras.metrics, type(ours).__name__)(**{k: v for k, v in ours.get_config().items()
                                                            if k not in ("name", "dtype")})
    for _ in range(3):
        d = _batch(rng)
        w = rng.uniform(0.1, 2.0, N).astype("float32") if weighted else None
        t, p = d[tk].astype("float32"), d[pk].astype("float32")
        ours.update_state(t, p, sample_weight=w)
        theirs.update_state(t, p, sample_weight=w)
    np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_crossentropy_ignore_class_equals_keras(weighted):
    keras = _keras()
    rng = np.random.default_rng(7)
    ours = metrics.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    theirs = keras.metrics.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    for _ in range(3):
        y = rng.integers(0, 3, (4, 5))
        z = rng.standard_normal((4, 5, 3)).astype("float32")
        w = rng.uniform(0.2, 2.0, (4, 5)).astype("float32") if weighted else None
        ours.update_state(y, z, sample_weight=w)
        theirs.update_state(y, z, sample_weight=w)
    np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=1e-5)


def test_sum_equals_keras():
    keras = _keras()
    rng = np.random.default_rng(4)
    ours, theirs = metrics.Sum(), keras.metrics.Sum()
    for _ in range(3):
        v = rng.standard_normal((N, 3)).astype("float32")
        w = rng.uniform(size=N).astype("float32")
        for m in (ours, theirs):
            m.update_state(v, sample_weight=w)
            m.update_state(v)
    np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=1e-5)


def test_evaluate_with_string_metrics_equals_keras():
    keras = _keras()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((20, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 20)]
    names = ["kl_divergence", "categorical_hinge", "categorical_crossentropy", "mape", "msle",
             "root_mean_squared_error", "cosine_similarity", "pearson_correlation"]
    results = []
    for lib in (cynet, keras):
        m = lib.Sequential([lib.Input((3,)), lib.layers.Dense(3, activation="softmax")])
        m.compile(optimizer="sgd", loss="categorical_focal_crossentropy", metrics=names)
        results.append(m)
    results[1].set_weights(results[0].get_weights())
    logs = [m.evaluate(x, y, batch_size=8, verbose=0, return_dict=True) for m in results]
    for key in ["loss"] + names:
        np.testing.assert_allclose(logs[0][key], logs[1][key], rtol=1e-4, atol=1e-6, err_msg=key)
