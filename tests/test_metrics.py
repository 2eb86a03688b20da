"""cynet.metrics: the metric functions against Keras 3's definitions written out here (and Keras's
documented numbers), stateful update_state / result / reset_state with sample weights, the
"accuracy" string's resolution from the shapes, names, configs and errors."""
import numpy as np
import pytest

from cynet import losses, metrics
from cynet.metrics import (Accuracy, BinaryAccuracy, CategoricalAccuracy, Mean, MeanAbsoluteError, MeanSquaredError,
                           SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy)


# ---------------------------------------------------------------------------------------------
# Keras 3 definitions, per sample (loops, so they do not share NumPy tricks with the code).

def ref_binary(t, p, threshold=0.5):
    return np.array([[float(tv == float(pv > threshold)) for tv, pv in zip(tr, pr)] for tr, pr in zip(t, p)])


def ref_categorical(t, p):
    return np.array([float(int(np.argmax(tr)) == int(np.argmax(pr))) for tr, pr in zip(t, p)])


def ref_sparse(labels, p):
    return np.array([float(int(lab) == int(np.argmax(pr))) for lab, pr in zip(labels, p)])


def ref_sparse_top_k(labels, p, k=5):
    # in_top_k: the true class's score is at least the k-th largest score (ties count as in).
    return np.array([float(pr[int(lab)] >= sorted(pr, reverse=True)[min(k, len(pr)) - 1])
                     for lab, pr in zip(labels, p)])


def weighted_mean(values, w=None):
    values = np.asarray(values, float).reshape(len(values), -1).mean(axis=1)
    return values.mean() if w is None else (values * w).sum() / np.sum(w)


# ---------------------------------------------------------------------------------------------
# Keras's documented numbers.

def test_keras_documented_examples():
    def run(m, t, p, w=None):
        m.reset_state()
        m.update_state(t, p, sample_weight=w)
        return m.result()

    m = BinaryAccuracy()
    t, p = [[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]]
    assert run(m, t, p) == pytest.approx(0.75) and run(m, t, p, [1, 0, 0, 1]) == pytest.approx(0.5)

    t, p, w = [[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]], [0.7, 0.3]
    for m in (CategoricalAccuracy(), TopKCategoricalAccuracy(k=1)):
        assert run(m, t, p) == pytest.approx(0.5) and run(m, t, p, w) == pytest.approx(0.3)
    assert run(SparseTopKCategoricalAccuracy(k=1), [2, 1], p) == pytest.approx(0.5)
    assert run(SparseTopKCategoricalAccuracy(k=1), [2, 1], p, w) == pytest.approx(0.3)

    m = SparseCategoricalAccuracy()
    t, p = [[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]]
    assert run(m, t, p) == pytest.approx(0.5) and run(m, t, p, w) == pytest.approx(0.3)

    m = Accuracy()  # keras.metrics.Accuracy: exact match
    t, p = [[1], [2], [3], [4]], [[0], [2], [3], [4]]
    assert run(m, t, p) == pytest.approx(0.75) and run(m, t, p, [1, 1, 0, 0]) == pytest.approx(0.5)

    for m in (MeanSquaredError(), MeanAbsoluteError()):
        t, p = [[0, 1], [0, 0]], [[1, 1], [0, 0]]
        assert run(m, t, p) == pytest.approx(0.25) and run(m, t, p, [1, 0]) == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------
# Functions against the definitions.

def test_binary_accuracy_function():
    rng = np.random.default_rng(0)
    t = (rng.random((6, 3)) > 0.5).astype(float)
    p = rng.random((6, 3))
    np.testing.assert_array_equal(metrics.binary_accuracy(t, p), ref_binary(t, p))
    np.testing.assert_array_equal(metrics.binary_accuracy(t, p, threshold=0.8), ref_binary(t, p, 0.8))
    # exactly at the threshold is a 0 prediction (y_pred > threshold)
    np.testing.assert_array_equal(metrics.binary_accuracy([[0.0], [1.0]], [[0.5], [0.5]]), [[1.0], [0.0]])
    # (N,) labels against (N, 1) predictions, int and bool labels
    out = metrics.binary_accuracy(np.array([1, 0, 1]), np.array([[0.7], [0.2], [0.1]]))
    np.testing.assert_array_equal(np.ravel(out), [1, 1, 0])
    np.testing.assert_array_equal(np.ravel(metrics.binary_accuracy(np.array([True, False]), [[0.9], [0.9]])),
                                  [1, 0])


def test_categorical_and_sparse_functions():
    rng = np.random.default_rng(1)
    p = rng.random((8, 5))
    labels = rng.integers(0, 5, 8)
    t = np.eye(5)[labels]
    np.testing.assert_array_equal(metrics.categorical_accuracy(t, p), ref_categorical(t, p))
    np.testing.assert_array_equal(metrics.sparse_categorical_accuracy(labels, p), ref_sparse(labels, p))
    np.testing.assert_array_equal(metrics.sparse_categorical_accuracy(labels[:, None], p), ref_sparse(labels, p))
    np.testing.assert_array_equal(metrics.sparse_categorical_accuracy(labels.astype(np.float32), p),
                                  ref_sparse(labels, p))
    # argmax ties go to the first index, as in NumPy / TF
    np.testing.assert_array_equal(metrics.categorical_accuracy([[1, 0], [0, 1]], [[0.5, 0.5], [0.5, 0.5]]), [1, 0])
    # sequences: (N, T) labels against (N, T, K)
    seq_p, seq_l = rng.random((2, 3, 4)), rng.integers(0, 4, (2, 3))
    np.testing.assert_array_equal(metrics.sparse_categorical_accuracy(seq_l, seq_p),
                                  ref_sparse(seq_l.ravel(), seq_p.reshape(-1, 4)).reshape(2, 3))


@pytest.mark.parametrize("k", [1, 2, 3, 5, 7])
def test_top_k_functions(k):
    rng = np.random.default_rng(k)
    p = rng.random((10, 6))
    labels = rng.integers(0, 6, 10)
    want = ref_sparse_top_k(labels, p, k)
    np.testing.assert_array_equal(metrics.sparse_top_k_categorical_accuracy(labels, p, k=k), want)
    np.testing.assert_array_equal(metrics.top_k_categorical_accuracy(np.eye(6)[labels], p, k=k), want)


def test_top_k_default_and_ties():
    p = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]])
    assert metrics.sparse_top_k_categorical_accuracy([2], p)[0] == 1.0  # k=5 by default: 0.3 is 5th
    assert metrics.sparse_top_k_categorical_accuracy([1], p)[0] == 0.0
    assert TopKCategoricalAccuracy().get_config()["k"] == 5
    assert SparseTopKCategoricalAccuracy().get_config()["k"] == 5
    # a tie straddling the k-th place counts as in the top k (TF in_top_k)
    tied = np.array([[0.5, 0.5, 0.5, 0.1]])
    np.testing.assert_array_equal(metrics.sparse_top_k_categorical_accuracy([0, 2, 3], np.repeat(tied, 3, 0), k=1),
                                  [1, 1, 0])


def test_regression_metric_functions():
    rng = np.random.default_rng(2)
    t, p = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    np.testing.assert_allclose(metrics.mean_squared_error(t, p), [np.mean((a - b) ** 2) for a, b in zip(t, p)])
    np.testing.assert_allclose(metrics.mean_absolute_error(t, p), [np.mean(np.abs(a - b)) for a, b in zip(t, p)])
    # (N,) targets against (N, 1) predictions
    np.testing.assert_allclose(metrics.mean_squared_error([1.0, 2.0], [[0.0], [0.0]]), [1.0, 4.0])


# ---------------------------------------------------------------------------------------------
# Stateful behaviour.

def _batches(rng, n_batches=3):
    out = []
    for size in (4, 7, 1)[:n_batches]:
        labels = rng.integers(0, 4, size)
        out.append((labels, rng.random((size, 4)), rng.uniform(0, 2, size)))
    return out


@pytest.mark.parametrize("weighted", [False, True])
def test_stateful_accumulation_over_batches(weighted):
    rng = np.random.default_rng(3)
    batches = _batches(rng)
    labels = np.concatenate([b[0] for b in batches])
    p = np.concatenate([b[1] for b in batches])
    w = np.concatenate([b[2] for b in batches]) if weighted else None
    onehot = np.eye(4)[labels]
    binary_t, binary_p = (p[:, :2] > 0.4).astype(float), p[:, 2:]
    cases = [
        (SparseCategoricalAccuracy(), lambda b: b[0], lambda b: b[1], ref_sparse(labels, p)),
        (CategoricalAccuracy(), lambda b: np.eye(4)[b[0]], lambda b: b[1], ref_categorical(onehot, p)),
        (SparseTopKCategoricalAccuracy(k=2), lambda b: b[0], lambda b: b[1], ref_sparse_top_k(labels, p, 2)),
        (TopKCategoricalAccuracy(k=2), lambda b: np.eye(4)[b[0]], lambda b: b[1], ref_sparse_top_k(labels, p, 2)),
        (BinaryAccuracy(), lambda b: (b[1][:, :2] > 0.4).astype(float), lambda b: b[1][:, 2:],
         ref_binary(binary_t, binary_p)),
        (MeanSquaredError(), lambda b: np.eye(4)[b[0]], lambda b: b[1], ((onehot - p) ** 2).mean(axis=1)),
        (MeanAbsoluteError(), lambda b: np.eye(4)[b[0]], lambda b: b[1], np.abs(onehot - p).mean(axis=1)),
    ]
    for m, get_t, get_p, per_sample in cases:
        assert m.result() == 0.0  # before any update
        for b in batches:
            m.update_state(get_t(b), get_p(b), sample_weight=b[2] if weighted else None)
        assert m.result() == pytest.approx(weighted_mean(per_sample, w), rel=1e-12), m.name
        m.reset_state()
        assert m.result() == 0.0
        b = batches[0]
        m.update_state(get_t(b), get_p(b))
        assert m.result() == pytest.approx(weighted_mean(per_sample[: len(b[0])]), rel=1e-12), m.name


def test_sample_weight_shapes_and_zero_weights():
    t, p = [[1], [0], [1]], [[0.9], [0.8], [0.2]]  # correct, wrong, wrong
    w = np.array([2.0, 1.0, 1.0])
    for weights in (w, w[:, None], list(w)):
        m = BinaryAccuracy()
        m.update_state(t, p, sample_weight=weights)
        assert m.result() == pytest.approx(0.5)
    m = SparseCategoricalAccuracy()
    m.update_state([1, 0], [[0.2, 0.8], [0.1, 0.9]], sample_weight=np.array([[3.0], [1.0]]))
    assert m.result() == pytest.approx(0.75)
    m = BinaryAccuracy()
    m.update_state(t, p, sample_weight=2.0)  # a scalar weight scales everything
    assert m.result() == pytest.approx(1 / 3)
    m = BinaryAccuracy()
    m.update_state(t, p, sample_weight=[0, 0, 0])  # Keras divides without NaN
    assert m.result() == 0.0
    with pytest.raises(ValueError, match="sample_weight"):
        BinaryAccuracy().update_state(t, p, sample_weight=[1.0, 2.0])


def test_mean_metric():
    m = Mean()
    assert m.name == "mean" and m.result() == 0.0
    m.update_state(2.0)
    m.update_state([4.0, 6.0])
    assert m.result() == pytest.approx(4.0)
    m.reset_state()
    m.update_state(1.0, sample_weight=3)  # the model's loss tracker: batch loss weighted by batch size
    m.update_state(5.0, sample_weight=1)
    assert m.result() == pytest.approx(2.0)
    m.reset_state()
    m.update_state([1.0, 3.0], sample_weight=[1.0, 0.0])
    m.update_state(np.array([[2.0, 4.0]]), sample_weight=[1.0])
    assert m.result() == pytest.approx((1.0 + 3.0) / 2)  # one sample (mean 3) of weight 1, as Keras counts
    m.reset_state()
    m.update_state(np.array([[1.0, 3.0]]))
    m.update_state(np.array([[5.0, 5.0, 5.0, 5.0]]))
    assert m.result() == pytest.approx(3.5)  # the mean of the per-sample means
    m.reset_state()
    m.update_state(np.array([3.0, 5.0]), sample_weight=4)  # a vector loss weighted by its batch size
    m.update_state(np.array([1.0]), sample_weight=1)
    assert m.result() == pytest.approx((4 * 4.0 + 1.0) / 5)
    m.reset_state()
    v, w = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 2.0]])
    m.update_state(v, sample_weight=w)  # temporal weights
    assert m.result() == pytest.approx((v * w).sum() / w.sum())


# ---------------------------------------------------------------------------------------------
# The "accuracy" string.

@pytest.mark.parametrize("t,p,chosen", [
    (np.array([[1.0], [0.0]]), np.array([[0.7], [0.6]]), "binary_accuracy"),
    (np.array([1.0, 0.0]), np.array([[0.7], [0.6]]), "binary_accuracy"),
    (np.array([1, 0]), np.array([[0.2, 0.8], [0.1, 0.9]]), "sparse_categorical_accuracy"),
    (np.array([[1], [0]]), np.array([[0.2, 0.8], [0.1, 0.9]]), "sparse_categorical_accuracy"),
    (np.array([[0, 1], [1, 0]]), np.array([[0.2, 0.8], [0.1, 0.9]]), "categorical_accuracy"),
])
def test_accuracy_string_resolves_from_shapes(t, p, chosen):
    for name in ("accuracy", "acc"):
        m = metrics.get(name)
        assert m.name == name and m.result() == 0.0
        m.update_state(t, p)
        assert m._chosen.__name__ == chosen
        fn = getattr(metrics, chosen)
        assert m.result() == pytest.approx(float(np.mean(fn(t, p))))
        m.update_state(t, p)  # the choice sticks
        assert m._chosen.__name__ == chosen


def test_accuracy_string_ignores_the_loss_like_keras3():
    # Keras 3 picks from the shapes only: multi-label outputs with binary_crossentropy get categorical_accuracy.
    m = metrics.get("accuracy", loss=losses.get("binary_crossentropy"))
    m.update_state(np.array([[1, 0, 1]]), np.array([[0.9, 0.2, 0.8]]))
    assert m._chosen is metrics.categorical_accuracy


def test_accuracy_class_is_exact_match():
    m = Accuracy()
    m.update_state(np.array([1, 2, 3]), np.array([1.0, 2.0, 2.9]))
    assert m.name == "accuracy" and m.result() == pytest.approx(2 / 3)


# ---------------------------------------------------------------------------------------------
# get, names, configs.

@pytest.mark.parametrize("identifier,cls,name", [
    ("binary_accuracy", BinaryAccuracy, "binary_accuracy"),
    ("categorical_accuracy", CategoricalAccuracy, "categorical_accuracy"),
    ("sparse_categorical_accuracy", SparseCategoricalAccuracy, "sparse_categorical_accuracy"),
    ("top_k_categorical_accuracy", TopKCategoricalAccuracy, "top_k_categorical_accuracy"),
    ("sparse_top_k_categorical_accuracy", SparseTopKCategoricalAccuracy, "sparse_top_k_categorical_accuracy"),
    ("mse", MeanSquaredError, "mse"), ("mean_squared_error", MeanSquaredError, "mean_squared_error"),
    ("mae", MeanAbsoluteError, "mae"), ("mean_absolute_error", MeanAbsoluteError, "mean_absolute_error"),
    # as Keras 3's compile: a string names the metric; any case of "accuracy" is the shape-driven choice
    ("BinaryAccuracy", BinaryAccuracy, "BinaryAccuracy"), ("Accuracy", metrics._AutoAccuracy, "Accuracy"),
])
def test_get(identifier, cls, name):
    m = metrics.get(identifier)
    assert type(m) is cls and m.name == name


def test_get_errors_and_instances():
    m = BinaryAccuracy(threshold=0.3)
    assert metrics.get(m) is m
    with pytest.raises(ValueError, match="'f1_nope'"):
        metrics.get("f1_nope")
    with pytest.raises(TypeError, match="metric"):
        metrics.get(3)


@pytest.mark.parametrize("m", [BinaryAccuracy(name="b", threshold=0.7), TopKCategoricalAccuracy(k=3, name="t3"),
                               SparseTopKCategoricalAccuracy(k=2), CategoricalAccuracy(name="c"), MeanSquaredError(),
                               Accuracy()], ids=lambda m: type(m).__name__)
def test_config_round_trip(m):
    back = type(m).from_config(m.get_config())
    assert back.get_config() == m.get_config() and back.name == m.name


def test_threshold_and_k_are_used():
    m = BinaryAccuracy(threshold=0.7)
    m.update_state([[1], [1]], [[0.6], [0.8]])
    assert m.result() == pytest.approx(0.5)
    m = SparseTopKCategoricalAccuracy(k=2)
    m.update_state([0, 0], [[0.3, 0.5, 0.2], [0.1, 0.5, 0.4]])
    assert m.result() == pytest.approx(0.5)
