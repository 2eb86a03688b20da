"""cynet.metrics' confusion-matrix, F-score, IoU and R2 metrics (Keras 3's), against their NumPy
definitions written out here with loops, and (where Keras 3 is installed; KERAS_BACKEND=torch)
against Keras itself, accumulated over several update_state calls and again after a reset. Also:
names as compile() resolves them, user metrics built with add_weight, the metrics inside
compile / fit / evaluate, and their state combined over ranks for distributed training."""
import os
import warnings

import numpy as np
import pytest

import cynet
from cynet import layers, metrics
from cynet.metrics import (AUC, F1Score, FalseNegatives, FalsePositives, FBetaScore, MeanIoU, Precision, R2Score,
                           Recall, TrueNegatives, TruePositives)

EPS = 1e-7

# Keras's own Variable.numpy() trips NumPy 2's __array__(copy=) deprecation with torch tensors.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


# ---------------------------------------------------------------------------------------------
# The definitions, with loops (float64; predictions compared with the thresholds as given).

def ref_counts(t, p, thresholds, w=None):
    """(tp, fp, tn, fn) per threshold over every value: positive label = non-zero, positive
    prediction = p > threshold; w weighs each value."""
    t, p = np.ravel(t), np.ravel(p)
    w = np.ones(t.size) if w is None else np.ravel(w)
    out = np.zeros((4, len(thresholds)))
    for j, thr in enumerate(thresholds):
        for tv, pv, wv in zip(t, p, w):
            pos_label, pos_pred = tv != 0, pv > thr
            k = {(True, True): 0, (False, True): 1, (False, False): 2, (True, False): 3}[(pos_label, pos_pred)]
            out[k, j] += wv
    return out


def div0(a, b):
    return 0.0 if b == 0 else a / b


def ref_auc(t, p, num_thresholds=200, curve="ROC", summation="interpolation", w=None):
    n = num_thresholds
    thresholds = [-EPS] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1 + EPS]
    tp, fp, tn, fn = ref_counts(t, p, thresholds, w)
    if curve == "PR" and summation == "interpolation":
        total = 0.0
        for i in range(n - 1):
            dtp = tp[i] - tp[i + 1]
            p0, p1 = tp[i] + fp[i], tp[i + 1] + fp[i + 1]
            slope = div0(dtp, max(p0 - p1, 0))
            intercept = tp[i + 1] - slope * p1
            ratio = div0(p0, p1) if p0 > 0 and p1 > 0 else 1.0
            total += div0(slope * (dtp + intercept * np.log(ratio)), max(tp[i + 1] + fn[i + 1], 0))
        return total
    rec = [div0(a, a + b) for a, b in zip(tp, fn)]
    if curve == "ROC":
        x, y = [div0(a, a + b) for a, b in zip(fp, tn)], rec
    else:
        x, y = rec, [div0(a, a + b) for a, b in zip(tp, fp)]
    height = {"interpolation": lambda a, b: (a + b) / 2, "minoring": min, "majoring": max}[summation]
    return sum((x[i] - x[i + 1]) * height(y[i], y[i + 1]) for i in range(n - 1))


def ref_fbeta(t, p, average=None, beta=1.0, threshold=None, w=None):
    t, p = np.asarray(t, float), np.asarray(p, float)
    w = np.ones(len(t)) if w is None else np.asarray(w, float)
    if threshold is None:
        pred = np.array([[float(v >= max(row) and abs(v) > 1e-9) for v in row] for row in p])
    else:
        pred = (p > threshold).astype(float)
    tp = (pred * t * w[:, None]).sum(0)
    fp = (pred * (1 - t) * w[:, None]).sum(0)
    fn = ((1 - pred) * t * w[:, None]).sum(0)
    support = (t * w[:, None]).sum(0)
    if average == "micro":
        tp, fp, fn, support = tp.sum(), fp.sum(), fn.sum(), support.sum()
    prec, rec = tp / (tp + fp + EPS), tp / (tp + fn + EPS)
    f = (1 + beta ** 2) * prec * rec / (beta ** 2 * prec + rec + EPS)
    if average == "weighted":
        return float(np.sum(f * support / (support.sum() + EPS)))
    return f if average is None else float(np.mean(f))


def ref_mean_iou(t, p, num_classes, w=None, ignore_class=None):
    cm = np.zeros((num_classes, num_classes))
    w = np.ones(np.size(t)) if w is None else np.ravel(w)
    for a, b, c in zip(np.ravel(t), np.ravel(p), w):
        if 0 <= a < num_classes and 0 <= b < num_classes and a != ignore_class:
            cm[int(a), int(b)] += c
    ious = []
    for k in range(num_classes):
        denominator = cm[k].sum() + cm[:, k].sum() - cm[k, k]
        if denominator > 0:
            ious.append(cm[k, k] / (denominator + EPS))
    return sum(ious) / (len(ious) + EPS)


def ref_r2(t, p, w=None, aggregation="uniform_average"):
    t, p = np.asarray(t, float), np.asarray(p, float)
    w = np.ones(len(t)) if w is None else np.asarray(w, float)
    scores, variances = [], []
    for j in range(t.shape[1]):
        mean = np.sum(w * t[:, j]) / np.sum(w)
        ss_tot = np.sum(w * (t[:, j] - mean) ** 2)
        ss_res = np.sum(w * (t[:, j] - p[:, j]) ** 2)
        scores.append(1 - ss_res / ss_tot)
        variances.append(ss_tot)
    scores, variances = np.array(scores), np.array(variances)
    if aggregation == "uniform_average":
        return float(scores.mean())
    if aggregation == "variance_weighted_average":
        return float(np.sum(scores * variances) / np.sum(variances))
    return scores


def batches(rng, shape, n=3, weighted=False, labels=2):
    out = []
    for size in (7, 12, 5)[:n]:
        s = (size,) + tuple(shape)
        t = rng.integers(0, labels, s).astype(np.float32)
        p = rng.random(s).astype(np.float32)
        w = rng.uniform(0, 2, size).astype(np.float32) if weighted else None
        out.append((t, p, w))
    return out


def accumulate(metric, bs):
    for t, p, w in bs:
        metric.update_state(t, p, sample_weight=w)
    return metric.result()


def joined(bs, shape_w=None):
    t = np.concatenate([b[0] for b in bs])
    p = np.concatenate([b[1] for b in bs])
    w = None if bs[0][2] is None else np.concatenate([b[2] for b in bs])
    return t, p, w


def value_weights(w, t):
    """Per-sample weights spread over each sample's values (as the metrics broadcast them)."""
    return None if w is None else np.broadcast_to(w.reshape((-1,) + (1,) * (t.ndim - 1)), t.shape)


# ---------------------------------------------------------------------------------------------
# Against the definitions.

@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("thresholds", [None, 0.3, [0.1, 0.5, 0.9], [0.0, 0.5, 1.0], [0.0, 0.25, 0.5, 0.75, 1.0]])
def test_counts_precision_recall_against_definition(thresholds, weighted):
    rng = np.random.default_rng(0)
    bs = batches(rng, (3,), weighted=weighted)
    t, p, w = joined(bs)
    thr = [0.5] if thresholds is None else np.atleast_1d(thresholds).tolist()
    tp, fp, tn, fn = ref_counts(t, p, thr, value_weights(w, t))
    single = np.ndim(thresholds) == 0
    want = {TruePositives: tp, FalsePositives: fp, TrueNegatives: tn, FalseNegatives: fn,
            Precision: [div0(a, a + b) for a, b in zip(tp, fp)], Recall: [div0(a, a + b) for a, b in zip(tp, fn)]}
    for cls, expected in want.items():
        m = cls(thresholds=thresholds)
        got = accumulate(m, bs)
        if single:
            assert isinstance(got, float)
        np.testing.assert_allclose(got, expected[0] if single else expected, rtol=1e-12, atol=1e-12,
                                   err_msg=cls.__name__)
        m.reset_state()
        np.testing.assert_allclose(m.result(), 0.0 if single else np.zeros(len(thr)))
        accumulate(m, bs[:1])
        t1, p1, w1 = bs[0]
        again = ref_counts(t1, p1, thr, value_weights(w1, t1))
        if cls is TruePositives:
            np.testing.assert_allclose(m.result(), again[0][0] if single else again[0], rtol=1e-12)


def test_precision_recall_top_k_and_class_id_against_definition():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 2, (30, 5)).astype(np.float32)
    p = rng.random((30, 5)).astype(np.float32)
    w = rng.uniform(0, 2, 30).astype(np.float32).astype(np.float64)   # float32 values: the metric casts to float32
    # top_k=2: only each row's 2 highest scores are positive predictions
    top = np.zeros_like(p, dtype=bool)
    for i, row in enumerate(p):
        top[i, np.argsort(-row)[:2]] = True
    tp = float(np.sum(top * (t != 0) * w[:, None]))
    fp = float(np.sum(top * (t == 0) * w[:, None]))
    fn = float(np.sum(~top * (t != 0) * w[:, None]))
    m = Precision(top_k=2)
    m.update_state(t, p, sample_weight=w)
    assert m.result() == pytest.approx(tp / (tp + fp), rel=1e-12)
    m = Recall(top_k=2)
    m.update_state(t, p, sample_weight=w)
    assert m.result() == pytest.approx(tp / (tp + fn), rel=1e-12)
    # class_id=3 (with and without top_k, and a threshold)
    for kwargs in ({"class_id": 3}, {"class_id": 3, "top_k": 2}, {"class_id": 3, "thresholds": 0.7}):
        col_pred = (top[:, 3] if "top_k" in kwargs else p[:, 3] > kwargs.get("thresholds", 0.5))
        col_true = t[:, 3] != 0
        tp = float(np.sum(col_pred * col_true * w))
        fp = float(np.sum(col_pred * ~col_true * w))
        fn = float(np.sum(~col_pred * col_true * w))
        m = Precision(**kwargs)
        m.update_state(t, p, sample_weight=w)
        assert m.result() == pytest.approx(tp / (tp + fp), rel=1e-12), kwargs
        m = Recall(**kwargs)
        m.update_state(t, p, sample_weight=w)
        assert m.result() == pytest.approx(tp / (tp + fn), rel=1e-12), kwargs


@pytest.mark.parametrize("curve,summation", [("ROC", "interpolation"), ("ROC", "minoring"), ("ROC", "majoring"),
                                             ("PR", "interpolation"), ("PR", "minoring"), ("PR", "majoring")])
@pytest.mark.parametrize("weighted", [False, True])
def test_auc_against_definition(curve, summation, weighted):
    rng = np.random.default_rng(2)
    bs = batches(rng, (), weighted=weighted)
    t, p, w = joined(bs)
    for n in (200, 7):
        m = AUC(num_thresholds=n, curve=curve, summation_method=summation)
        got = accumulate(m, bs)
        assert got == pytest.approx(ref_auc(t, p, n, curve, summation, w), rel=1e-9, abs=1e-12)
        m.reset_state()
        assert m.result() == 0.0


def test_auc_multi_label_and_label_weights_against_definition():
    rng = np.random.default_rng(3)
    bs = batches(rng, (3,), weighted=True)
    t, p, w = joined(bs)
    per_label = [ref_auc(t[:, j], p[:, j], w=w) for j in range(3)]
    assert accumulate(AUC(multi_label=True), bs) == pytest.approx(np.mean(per_label), rel=1e-9)
    lw = np.array([1.0, 3.0, 0.5])
    assert accumulate(AUC(multi_label=True, label_weights=lw), bs) == \
        pytest.approx(np.sum(np.array(per_label) * lw) / lw.sum(), rel=1e-6)
    assert accumulate(AUC(multi_label=True, num_labels=3, curve="PR"), bs) == \
        pytest.approx(np.mean([ref_auc(t[:, j], p[:, j], curve="PR", w=w) for j in range(3)]), rel=1e-9)
    # not multi-label: label_weights weigh each label's values in the pooled counts
    pooled = ref_auc(t, p, w=value_weights(w, t) * lw)
    assert accumulate(AUC(label_weights=lw), bs) == pytest.approx(pooled, rel=1e-6)
    # the exact ROC AUC (pairs ranked correctly) is close with 200 thresholds
    t1 = np.concatenate([b[0][:, 0] for b in bs])
    p1 = np.concatenate([b[1][:, 0] for b in bs])
    exact = np.mean([(a > b) + 0.5 * (a == b) for a in p1[t1 == 1] for b in p1[t1 == 0]])
    assert accumulate(AUC(), [(b[0][:, 0], b[1][:, 0], None) for b in bs]) == pytest.approx(exact, abs=0.02)


def test_auc_from_logits_and_explicit_thresholds():
    rng = np.random.default_rng(4)
    t = rng.integers(0, 2, 40)
    logits = rng.standard_normal(40) * 3
    m = AUC(from_logits=True)
    m.update_state(t, logits)
    assert m.result() == pytest.approx(ref_auc(t, 1 / (1 + np.exp(-logits))), rel=1e-9)
    m = AUC(thresholds=[0.7, 0.2, 0.5])
    p = rng.random(40)
    m.update_state(t, p)
    tp, fp, tn, fn = ref_counts(t, p, [-EPS, 0.2, 0.5, 0.7, 1 + EPS])
    x = [div0(a, a + b) for a, b in zip(fp, tn)]
    y = [div0(a, a + b) for a, b in zip(tp, fn)]
    assert m.num_thresholds == 5 and m.thresholds[1:-1] == [0.2, 0.5, 0.7]
    assert m.result() == pytest.approx(sum((x[i] - x[i + 1]) * (y[i] + y[i + 1]) / 2 for i in range(4)), rel=1e-12)


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
@pytest.mark.parametrize("threshold", [None, 0.4])
def test_fbeta_against_definition(average, threshold):
    rng = np.random.default_rng(5)
    bs = batches(rng, (4,), weighted=True)
    t, p, w = joined(bs)
    for beta in (1.0, 0.5, 2.0):
        m = F1Score(average=average, threshold=threshold) if beta == 1.0 else \
            FBetaScore(average=average, beta=beta, threshold=threshold)
        np.testing.assert_allclose(accumulate(m, bs), ref_fbeta(t, p, average, beta, threshold, w), rtol=1e-9)
        m.reset_state()
        np.testing.assert_allclose(accumulate(m, bs[1:2]), ref_fbeta(*bs[1][:2], average, beta, threshold, bs[1][2]),
                                   rtol=1e-9)


def test_mean_iou_against_definition():
    rng = np.random.default_rng(6)
    bs = [(rng.integers(-1, 5, (6, 5)), rng.integers(0, 5, (6, 5)), rng.integers(0, 3, (6, 5))) for _ in range(3)]
    t = np.concatenate([b[0] for b in bs])
    p = np.concatenate([b[1] for b in bs])
    w = np.concatenate([b[2] for b in bs])
    assert accumulate(MeanIoU(4), [(a, b, None) for a, b, _ in bs]) == pytest.approx(ref_mean_iou(t, p, 4), rel=1e-12)
    assert accumulate(MeanIoU(4), bs) == pytest.approx(ref_mean_iou(t, p, 4, w), rel=1e-12)
    assert accumulate(MeanIoU(4, ignore_class=0), bs) == pytest.approx(ref_mean_iou(t, p, 4, w, ignore_class=0),
                                                                       rel=1e-12)
    # scores (sparse_y_pred=False) and one-hot labels (sparse_y_true=False) go through argmax
    scores = rng.random((20, 3))
    labels = rng.integers(0, 3, 20)
    m = MeanIoU(3, sparse_y_true=False, sparse_y_pred=False)
    m.update_state(np.eye(3)[labels], scores)
    assert m.result() == pytest.approx(ref_mean_iou(labels, scores.argmax(-1), 3), rel=1e-12)


def test_mean_iou_int_dtype_truncates_float_weights_like_keras():
    m = MeanIoU(2)
    with pytest.warns(UserWarning, match="weight as `float`"):
        m.update_state([0, 1, 1], [0, 1, 0], sample_weight=np.array([1.0, 0.5, 2.7]))
    assert m.result() == pytest.approx(ref_mean_iou([0, 1, 1], [0, 1, 0], 2, [1, 0, 2]), rel=1e-12)
    m = MeanIoU(2, dtype="float32")
    m.update_state([0, 1, 1], [0, 1, 0], sample_weight=np.array([1.0, 0.5, 2.7]))
    assert m.result() == pytest.approx(ref_mean_iou([0, 1, 1], [0, 1, 0], 2, [1.0, 0.5, 2.7]), rel=1e-6)


@pytest.mark.parametrize("aggregation", [None, "uniform_average", "variance_weighted_average"])
def test_r2_against_definition(aggregation):
    rng = np.random.default_rng(7)
    bs = [(rng.standard_normal((n, 3)), rng.standard_normal((n, 3)), rng.uniform(0.5, 2, n)) for n in (6, 9, 4)]
    t, p, w = joined(bs)
    m = R2Score(class_aggregation=aggregation)
    np.testing.assert_allclose(accumulate(m, bs), ref_r2(t, p, w, aggregation), rtol=1e-5)
    m.reset_state()
    np.testing.assert_allclose(accumulate(m, [(t, p, None)]), ref_r2(t, p, None, aggregation), rtol=1e-5)


def test_r2_adjusted_and_fallbacks():
    rng = np.random.default_rng(8)
    t, p = rng.standard_normal((20, 1)), rng.standard_normal((20, 1))
    r2 = ref_r2(t, p)
    m = R2Score(num_regressors=3)
    m.update_state(t, p)
    assert m.result() == pytest.approx(1 - (1 - r2) * (20 - 1) / (20 - 3 - 1), rel=1e-5)
    m = R2Score(num_regressors=19)
    m.update_state(t, p)
    with pytest.warns(UserWarning, match="Division by zero"):
        assert m.result() == pytest.approx(r2, rel=1e-5)
    m = R2Score(num_regressors=25)
    m.update_state(t, p)
    with pytest.warns(UserWarning, match="More independent predictors"):
        assert m.result() == pytest.approx(r2, rel=1e-5)
    m = R2Score()
    m.update_state(t[:, 0], p)   # (N,) targets against (N, 1) predictions
    assert m.result() == pytest.approx(r2, rel=1e-5)


# ---------------------------------------------------------------------------------------------
# Arguments, errors, names, configs.

def test_bad_arguments_are_refused():
    cases = [
        (lambda: Precision(thresholds=1.5), "Threshold values must be in"),
        (lambda: Recall(thresholds=[0.2, None]), "Threshold values must be in"),
        (lambda: Precision(top_k=0), "top_k"),
        (lambda: TruePositives(thresholds=-0.1), "Threshold values must be in"),
        (lambda: AUC(num_thresholds=1), "num_thresholds"),
        (lambda: AUC(curve="DET"), "Invalid AUC curve"),
        (lambda: AUC(summation_method="trapezoid"), "summation method"),
        (lambda: AUC(num_labels=3), "only when `multi_label` is True"),
        (lambda: AUC(thresholds=[0.5, 2.0]), "Threshold values must be in"),
        (lambda: F1Score(average="samples"), "Invalid `average`"),
        (lambda: FBetaScore(beta=2), "should be a Python float"),
        (lambda: FBetaScore(beta=-1.0), "should be > 0"),
        (lambda: F1Score(threshold=1), "should be a Python float"),
        (lambda: F1Score(threshold=1.5), "0 < threshold <= 1"),
        (lambda: MeanIoU(0), "num_classes"),
        (lambda: metrics.IoU(3, target_class_ids=[0, 3]), "out of range"),
        (lambda: R2Score(class_aggregation="median"), "class_aggregation"),
        (lambda: R2Score(num_regressors=-1), "num_regressors"),
        (lambda: metrics.PrecisionAtRecall(1.5), "must be in the range"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message):
            make()
    with pytest.raises(ValueError, match="rank 2 when `multi_label=True`"):
        AUC(multi_label=True).update_state(np.ones((2, 2, 2)), np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="same shape"):   # sparse labels against 3 class scores
        Precision().update_state(np.zeros((4, 1)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="class_id"):
        Precision(class_id=1).update_state([1, 0], [0.3, 0.6])
    with pytest.raises(ValueError, match="larger than the number of classes"):
        Precision(top_k=4).update_state(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="expects 2D inputs"):
        F1Score().update_state([1, 0], [0.3, 0.6])
    with pytest.raises(ValueError, match="expects 2D inputs"):
        R2Score().update_state(np.ones((2, 2, 2)), np.ones((2, 2, 2)))


def test_names_like_keras(monkeypatch):
    cynet.utils.clear_session()
    assert Precision().name == "precision" and Precision().name == "precision_1"
    assert AUC().name == "auc" and TruePositives().name == "true_positives" and MeanIoU(2).name == "mean_io_u"
    assert F1Score().name == "f1_score" and FBetaScore().name == "fbeta_score" and R2Score().name == "r2_score"
    assert Precision(name="p").name == "p"
    cynet.utils.clear_session()
    assert Precision().name == "precision"
    # strings as compile(metrics=[...]) takes them: the metric is named by the string
    for identifier, cls in [("precision", Precision), ("recall", Recall), ("auc", AUC), ("AUC", AUC),
                            ("true_positives", TruePositives), ("FalseNegatives", FalseNegatives),
                            ("f1_score", F1Score), ("f_beta_score", FBetaScore), ("r2_score", R2Score),
                            ("R2Score", R2Score), ("sensitivity_at_specificity", None)]:
        if cls is None:
            with pytest.raises(ValueError, match="needs arguments"):
                metrics.get(identifier)
            continue
        m = metrics.get(identifier)
        assert type(m) is cls and m.name == identifier
    with pytest.raises(ValueError, match="needs arguments"):
        metrics.get("mean_io_u")
    # a name Keras's auto-naming makes (as a saved compile config may hold) resolves to its class
    m = metrics.get("auc_2")
    assert type(m) is AUC and m.name == "auc_2"
    # classes, configs and functions
    assert type(metrics.get(Recall)) is Recall
    m = metrics.get({"class_name": "AUC", "config": {"curve": "PR", "name": "pr"}})
    assert type(m) is AUC and m.curve == "PR" and m.name == "pr"

    def my_metric(y_true, y_pred):
        return np.abs(np.asarray(y_true) - np.asarray(y_pred)).mean(axis=-1)

    m = metrics.get(my_metric)
    m.update_state([[1.0], [0.0]], [[0.5], [0.5]])
    assert m.name == "my_metric" and m.result() == pytest.approx(0.5)


@pytest.mark.parametrize("m", [
    Precision(thresholds=[0.2, 0.7], top_k=2, class_id=1, name="p"), Recall(thresholds=0.4),
    AUC(num_thresholds=50, curve="PR", summation_method="minoring", multi_label=True, num_labels=2,
        label_weights=[1.0, 2.0], from_logits=True, name="a"), AUC(thresholds=[0.3, 0.6]),
    TruePositives(thresholds=[0.1, 0.9]), FalseNegatives(), F1Score(average="macro", threshold=0.3),
    FBetaScore(average="weighted", beta=2.0), MeanIoU(3, ignore_class=0, sparse_y_pred=False),
    R2Score(class_aggregation=None, num_regressors=2), metrics.BinaryIoU([1], threshold=0.3),
    metrics.SensitivityAtSpecificity(0.4, num_thresholds=20, class_id=1),
], ids=lambda m: type(m).__name__)
def test_config_round_trip(m):
    config = m.get_config()
    back = type(m).from_config(config)
    assert back.get_config() == config
    restored = metrics.deserialize(metrics.serialize(m))
    assert type(restored) is type(m) and restored.get_config() == config


def test_state_is_in_variables_and_results_are_plain():
    m = Precision(thresholds=[0.3, 0.6])
    assert [v.name for v in m.variables] == ["true_positives", "false_positives"]
    m.update_state([1, 0, 1], [0.9, 0.8, 0.4])
    r = m.result()
    assert type(r) is np.ndarray and r.shape == (2,)
    r[:] = -1   # a copy: the state is untouched
    np.testing.assert_allclose(m.result(), [2 / 3, 0.5])
    assert type(Precision()(np.array([1, 0]), np.array([0.9, 0.1]))) is float   # __call__: update, then result
    m = AUC(multi_label=True)
    assert m.variables == [] and m.result() == 0.0   # built on the first batch
    m.update_state(np.ones((2, 3)), np.ones((2, 3)))
    assert m.true_positives.shape == (200, 3)


# ---------------------------------------------------------------------------------------------
# A user's metric made with add_weight / add_variable, and copies (evaluate's) that keep apart.

class BinaryTruePositives(metrics.Metric):
    def __init__(self, name="binary_true_positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_positives = self.add_weight(shape=(), initializer="zeros", name="tp")
        self.seen = self.add_variable(shape=(2,), initializer="ones", name="seen")

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = np.logical_and(np.asarray(y_true).astype(bool), np.asarray(y_pred) > 0.5).astype("float32")
        if sample_weight is not None:
            values = values * np.broadcast_to(np.reshape(sample_weight, (-1,) + (1,) * (values.ndim - 1)),
                                              values.shape)
        self.true_positives.assign(self.true_positives + np.sum(values))
        self.seen.assign_add([1.0, values.size])

    def result(self):
        return self.true_positives


def test_user_metric_with_add_weight():
    m = BinaryTruePositives()
    assert m.name == "binary_true_positives" and m.dtype == "float32"
    assert [v.name for v in m.variables] == ["tp", "seen"] and m.true_positives.dtype == np.float32
    np.testing.assert_array_equal(m.seen.numpy(), [1.0, 1.0])   # its initializer
    m.update_state([[1], [1], [0]], [[0.9], [0.2], [0.8]])
    m.update_state([[1], [1]], [[0.6], [0.7]], sample_weight=[2.0, 0.5])
    assert m.result() == 3.5 and type(m.result()) is float
    assert float(m.true_positives + 1) == 4.5 and m.true_positives > 3
    m.reset_state()   # Keras's default: every variable back to zeros
    assert m.result() == 0.0
    np.testing.assert_array_equal(m.seen.numpy(), [0.0, 0.0])

    class Forgot(metrics.Metric):
        def __init__(self):
            self.v = self.add_weight(shape=())

    with pytest.raises(RuntimeError, match="super"):
        Forgot()


@pytest.mark.parametrize("make", [BinaryTruePositives, lambda: AUC(multi_label=True), Precision,
                                  lambda: F1Score(average="macro"), lambda: MeanIoU(2), R2Score])
def test_a_copied_metric_gets_its_own_state(make):
    """The trainer copies each compiled metric attribute by attribute and resets the copy for
    evaluate (validation during fit): the original's state must not change."""
    m = make()
    t, p = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]), np.array([[0.9, 0.2], [0.8, 0.6], [0.1, 0.7]])
    if isinstance(m, MeanIoU):
        t, p = t.astype(int), (p > 0.5).astype(int)
    m.update_state(t, p)
    before = m.result()
    clone = type(m).__new__(type(m))
    clone.__dict__.update(m.__dict__)
    clone.reset_state()
    clone.update_state(t[:1], p[:1])
    np.testing.assert_array_equal(m.result(), before)
    assert not any(a is b for a in clone.variables for b in m.variables)


# ---------------------------------------------------------------------------------------------
# Inside compile / fit / evaluate.

def _binary_model(seed=0):
    cynet.utils.set_random_seed(seed)
    model = cynet.models.Sequential([layers.Input((4,)), layers.Dense(1, activation="sigmoid")])
    return model


def test_fit_and_evaluate_with_confusion_metrics():
    rng = np.random.default_rng(9)
    x, xv = rng.standard_normal((64, 4)).astype(np.float32), rng.standard_normal((32, 4)).astype(np.float32)
    y, yv = (rng.random((64, 1)) > 0.5).astype(np.float32), (rng.random((32, 1)) > 0.5).astype(np.float32)
    cynet.utils.clear_session()
    model = _binary_model()
    # a learning rate of 0 keeps the weights, so every epoch's metrics are those of model.predict
    model.compile(optimizer=cynet.optimizers.SGD(learning_rate=0.0), loss="binary_crossentropy",
                  metrics=["precision", "recall", "auc", AUC(curve="PR", name="pr_auc"), TruePositives(),
                           Precision(thresholds=[0.3, 0.7]), F1Score(threshold=0.5), BinaryTruePositives()])
    # EarlyStopping's mode="auto" learns from the metric that a higher "pr_auc" is better (Keras's _direction)
    stop = cynet.callbacks.EarlyStopping(monitor="val_pr_auc", patience=5)
    history = model.fit(x, y, batch_size=16, epochs=2, validation_data=(xv, yv), verbose=0, callbacks=[stop])
    assert stop.monitor_op is np.greater
    names = ["precision", "recall", "auc", "pr_auc", "true_positives", "precision_1", "f1_score",
             "binary_true_positives"]
    assert set(history.history) == {"loss"} | set(names) | {"val_loss"} | {"val_" + n for n in names}

    def direct(metric, xs, ys):
        metric.update_state(ys, model.predict(xs, verbose=0))
        return metric.result()

    for prefix, xs, ys in (("", x, y), ("val_", xv, yv)):
        for name, metric in [("precision", Precision()), ("recall", Recall()), ("auc", AUC()),
                             ("pr_auc", AUC(curve="PR")), ("true_positives", TruePositives()),
                             ("precision_1", Precision(thresholds=[0.3, 0.7])), ("f1_score", F1Score(threshold=0.5)),
                             ("binary_true_positives", BinaryTruePositives())]:
            want = direct(metric, xs, ys)
            for got in history.history[prefix + name]:
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=prefix + name)
    logs = model.evaluate(xv, yv, batch_size=8, return_dict=True, verbose=0)
    assert logs["auc"] == pytest.approx(history.history["val_auc"][-1], rel=1e-6)


def test_fit_with_r2_mean_iou_and_weighted_metrics():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((48, 3)).astype(np.float32)
    y = (x @ rng.standard_normal((3, 2))).astype(np.float32)
    cynet.utils.clear_session()
    model = cynet.models.Sequential([layers.Input((3,)), layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse", metrics=["r2_score"], weighted_metrics=[R2Score()])
    w = rng.uniform(0.5, 2, 48).astype(np.float32)
    history = model.fit(x, y, sample_weight=w, batch_size=12, epochs=3, verbose=0)
    assert set(history.history) == {"loss", "r2_score", "weighted_r2_score"}
    assert history.history["r2_score"][-1] > history.history["r2_score"][0]
    r = model.evaluate(x, y, sample_weight=w, return_dict=True, verbose=0)
    pred = model.predict(x, verbose=0)
    assert r["r2_score"] == pytest.approx(ref_r2(y, pred), rel=1e-5)
    assert r["weighted_r2_score"] == pytest.approx(ref_r2(y, pred, w), rel=1e-5)

    labels = rng.integers(0, 3, 48)
    model = cynet.models.Sequential([layers.Input((3,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=[MeanIoU(3, sparse_y_pred=False), "accuracy"])
    history = model.fit(x, labels, batch_size=16, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "mean_io_u", "accuracy"}
    r = model.evaluate(x, labels, return_dict=True, verbose=0)
    assert r["mean_io_u"] == pytest.approx(ref_mean_iou(labels, model.predict(x, verbose=0).argmax(-1), 3), rel=1e-6)


def test_state_is_combined_over_ranks(monkeypatch):
    """Distributed fit sums each metric's state over the ranks before reading the results
    (simulated: two ranks holding the same state)."""
    import cynet.distributed as dist

    monkeypatch.setattr(dist, "allreduce", lambda values, op="sum": 2 * np.asarray(values, dtype=np.float64))
    monkeypatch.setattr(dist, "size", lambda: 2)
    monkeypatch.setattr(dist, "rank", lambda: 0)
    mean, auc, prec, user = metrics.Mean(), AUC(num_thresholds=5), Precision(), BinaryTruePositives()
    mean.update_state([1.0, 3.0])
    t, p = np.array([1, 0, 1, 1]), np.array([0.9, 0.7, 0.2, 0.6])
    for m in (auc, prec):
        m.update_state(t, p)
    user.update_state(t, p)
    before = [m.result() for m in (mean, auc, prec, user)]
    tp_before = auc.true_positives.numpy()
    local = dist._FitHelper.reduce_metrics([mean, auc, prec, user])
    assert mean._count == 4 and mean.result() == before[0]   # ratios do not change when every count doubles
    np.testing.assert_array_equal(auc.true_positives.numpy(), 2 * tp_before)
    assert auc.result() == pytest.approx(before[1]) and prec.result() == pytest.approx(before[2])
    assert user.result() == 2 * before[3]
    dist._FitHelper.restore_metrics([mean, auc, prec, user], local)
    assert mean._count == 2 and user.result() == before[3]
    np.testing.assert_array_equal(auc.true_positives.numpy(), tp_before)


# ---------------------------------------------------------------------------------------------
# Against Keras 3 itself (skipped without it).

@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3; found {keras.__version__}")
    if keras.backend.backend() != "torch":
        pytest.skip("the Keras comparisons run with KERAS_BACKEND=torch")
    return keras


def _keras_cases():
    # (name, cynet factory, keras factory by name + kwargs, batch maker)
    def binary(shape, weighted=True, labels=2):
        return lambda rng: batches(rng, shape, weighted=weighted, labels=labels)

    def ints(num_classes, weighted=False):
        return lambda rng: [(rng.integers(-1, num_classes + 1, (5, 4)), rng.integers(0, num_classes, (5, 4)),
                             rng.integers(0, 3, (5, 4)).astype(np.int32) if weighted else None) for _ in range(3)]

    def onehot_scores(num_classes):
        return lambda rng: [(np.eye(num_classes)[rng.integers(0, num_classes, 9)].astype(np.float32),
                             rng.random((9, num_classes)).astype(np.float32), None) for _ in range(3)]

    def regression(cols, weighted=True):
        return lambda rng: [(rng.standard_normal((n, cols)).astype(np.float32),
                             rng.standard_normal((n, cols)).astype(np.float32),
                             rng.uniform(0.5, 2, n).astype(np.float32) if weighted else None) for n in (8, 5, 11)]

    return [
        ("Precision", {}, binary(())), ("Precision", {"thresholds": [0.1, 0.5, 0.9]}, binary((3,))),
        ("Precision", {"thresholds": [0.0, 0.5, 1.0]}, binary((3,))), ("Precision", {"top_k": 2}, binary((5,))),
        ("Precision", {"class_id": 2, "thresholds": 0.3}, binary((4,))),
        ("Recall", {}, binary((2,))), ("Recall", {"thresholds": [0.0, 0.25, 0.5, 0.75, 1.0]}, binary((3,))),
        ("Recall", {"top_k": 3, "class_id": 1}, binary((5,))),
        ("TruePositives", {"thresholds": [0.2, 0.6]}, binary((3,))), ("FalsePositives", {}, binary((3,))),
        ("TrueNegatives", {"thresholds": 0.8}, binary(())), ("FalseNegatives", {"thresholds": [0.3, 0.9]}, binary(())),
        ("AUC", {}, binary(())), ("AUC", {"curve": "PR"}, binary(())),
        ("AUC", {"curve": "PR", "summation_method": "minoring"}, binary(())),
        ("AUC", {"summation_method": "majoring", "num_thresholds": 13}, binary((2,))),
        ("AUC", {"multi_label": True}, binary((3,))),
        ("AUC", {"multi_label": True, "num_labels": 3, "curve": "PR", "label_weights": [1.0, 2.0, 0.5]},
         binary((3,))),
        ("AUC", {"label_weights": [1.0, 2.0, 0.5]}, binary((3,))), ("AUC", {"thresholds": [0.3, 0.1, 0.7]},
                                                                     binary(())),
        ("AUC", {"curve": "PRGAIN"}, binary(())),
        ("F1Score", {}, binary((4,))), ("F1Score", {"average": "micro", "threshold": 0.4}, binary((4,))),
        ("F1Score", {"average": "macro"}, binary((4,))), ("F1Score", {"average": "weighted"}, binary((4,))),
        ("FBetaScore", {"beta": 2.0, "threshold": 0.5}, binary((4,))),
        ("FBetaScore", {"average": "weighted", "beta": 0.5}, binary((4,))),
        ("MeanIoU", {"num_classes": 4}, ints(4)), ("MeanIoU", {"num_classes": 4, "ignore_class": 0}, ints(4, True)),
        ("MeanIoU", {"num_classes": 3, "sparse_y_true": False, "sparse_y_pred": False}, onehot_scores(3)),
        ("R2Score", {}, regression(3)), ("R2Score", {"class_aggregation": None}, regression(2)),
        ("R2Score", {"class_aggregation": "variance_weighted_average"}, regression(3)),
        ("R2Score", {"num_regressors": 2}, regression(1, weighted=False)),
        ("SensitivityAtSpecificity", {"specificity": 0.5}, binary(())),
        ("RecallAtPrecision", {"precision": 0.4, "num_thresholds": 30}, binary(())),
    ]


@pytest.mark.parametrize("case", _keras_cases(), ids=lambda c: f"{c[0]}-{c[1]}")
def test_same_results_as_keras(keras, case):
    name, kwargs, make_batches = case
    rng = np.random.default_rng(abs(hash((name, str(kwargs)))) % 2 ** 32)
    data = make_batches(rng)
    ours, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    tensor = keras.ops.convert_to_tensor
    tol = 1e-4 if name == "R2Score" else 1e-5   # Keras sums in float32
    for part in (data, data[1:2]):   # accumulated over several batches; then again after a reset
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for t, p, w in part:
                ours.update_state(t, p, sample_weight=w)
                theirs.update_state(tensor(t), tensor(p), sample_weight=None if w is None else tensor(w))
            np.testing.assert_allclose(ours.result(), keras.ops.convert_to_numpy(theirs.result()), rtol=tol,
                                       atol=tol, err_msg=f"{name} {kwargs}")
        ours.reset_state()
        theirs.reset_state()


def test_history_names_as_keras(keras):
    rng = np.random.default_rng(11)
    x, y = rng.standard_normal((16, 3)).astype(np.float32), (rng.random((16, 1)) > 0.5).astype(np.float32)

    def names(lib, model):
        m = lib.metrics
        model.compile(optimizer="sgd", loss="binary_crossentropy",
                      metrics=["precision", m.Precision(), "recall", "auc", "AUC", m.AUC(curve="PR", name="pr_auc"),
                               m.TruePositives(), m.FalseNegatives(thresholds=[0.3, 0.6]), "f1_score", "r2_score"])
        return set(model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y)).history)

    keras.utils.clear_session()
    k = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    cynet.utils.clear_session()
    c = cynet.models.Sequential([layers.Input((3,)), layers.Dense(1, activation="sigmoid")])
    assert names(cynet, c) == names(keras, k)
