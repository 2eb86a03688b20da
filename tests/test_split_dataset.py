"""cynet.utils.split_dataset: Keras's size rules (ints, floats, None, the errors), the order kept
without shuffle, seeded shuffles, structures (array, tuple, list, nested), refused datasets; and
(when Keras 3 runs with the PyTorch backend) the same split sizes and samples as Keras's."""
import os

import numpy as np
import pytest

import cynet
from cynet.utils import split_dataset

SIZES = [(0.8, None), (None, 0.25), (3, None), (None, 4), (0.5, 0.5), (6, 4), (0.3, 0.7), (0.15, None), (None, 9),
         (1, 9), (0.94, None)]


@pytest.mark.parametrize("left, right", SIZES)
def test_sizes_and_order(left, right):
    x = np.arange(10 * 3).reshape(10, 3)
    a, b = split_dataset(x, left_size=left, right_size=right)
    n_left = round(left * 10) if isinstance(left, float) else (left if left is not None else None)
    n_right = round(right * 10) if isinstance(right, float) else (right if right is not None else None)
    n_left = 10 - n_right if n_left is None else n_left
    n_right = 10 - n_left if n_right is None else n_right
    np.testing.assert_array_equal(a, x[:n_left])
    np.testing.assert_array_equal(b, x[10 - n_right:])


def test_partial_sizes_drop_the_middle():
    a, b = split_dataset(np.arange(10), left_size=3, right_size=2)
    np.testing.assert_array_equal(a, [0, 1, 2])
    np.testing.assert_array_equal(b, [8, 9])


def test_structures_and_shuffle():
    x, y = np.arange(20).reshape(10, 2), np.arange(10)
    (xa, ya), (xb, yb) = split_dataset((x, y), left_size=0.6, shuffle=True, seed=4)
    assert xa.shape == (6, 2) and yb.shape == (4,)
    np.testing.assert_array_equal(xa[:, 0] // 2, ya)   # rows stay paired
    np.testing.assert_array_equal(xb[:, 0] // 2, yb)
    assert sorted(np.concatenate([ya, yb])) == list(range(10)) and list(ya) != list(range(6))
    (xa2, ya2), _ = split_dataset((x, y), left_size=0.6, shuffle=True, seed=4)
    np.testing.assert_array_equal(ya, ya2)
    left, right = split_dataset([x, y], right_size=2)
    assert isinstance(left, list) and left[1].tolist() == list(range(8)) and right[1].tolist() == [8, 9]
    left, right = split_dataset(((x, {"w": y}), y), left_size=5)
    assert left[0][1]["w"].tolist() == list(range(5)) and right[1].tolist() == list(range(5, 10))
    model = cynet.Sequential([cynet.Input((2,)), cynet.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    train, test = split_dataset((x.astype(np.float32), y.astype(np.float32)), left_size=0.8)
    model.fit(*train, epochs=1, verbose=0)
    model.evaluate(*test, verbose=0)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(), ValueError, "left_size or right_size"),
    (dict(left_size=0), ValueError, "left_size"), (dict(left_size=10), ValueError, "left_size"),
    (dict(left_size=1.0), ValueError, "left_size"), (dict(left_size=-0.5), ValueError, "left_size"),
    (dict(right_size=0.0), ValueError, "right_size"), (dict(right_size=11), ValueError, "right_size"),
    (dict(left_size="5"), TypeError, "left_size"), (dict(right_size=True), TypeError, "right_size"),
    (dict(left_size=0.6, right_size=0.6), ValueError, "sum"), (dict(left_size=6, right_size=5), ValueError, "sum"),
    (dict(left_size=0.01), ValueError, "empty"), (dict(left_size=0.95), ValueError, "empty"),
    (dict(left_size=2, shuffle="yes"), TypeError, "shuffle"),
    (dict(left_size=2, seed=-1), ValueError, "seed"),
    (dict(left_size=2, preferred_backend="torch"), NotImplementedError, "preferred_backend"),
])
def test_bad_sizes(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        split_dataset(np.zeros((10, 2)), **kwargs)


def test_bad_datasets():
    with pytest.raises(ValueError, match="same length"):
        split_dataset((np.zeros(5), np.zeros(6)), left_size=2)
    with pytest.raises(ValueError, match="no arrays"):
        split_dataset((), left_size=2)
    with pytest.raises(ValueError, match="sample axis"):
        split_dataset([1.0, 2.0, 3.0], left_size=1)
    with pytest.raises(TypeError, match="dataset"):
        split_dataset({"x": np.zeros(4)}, left_size=1)
    with pytest.raises(TypeError, match="dataset"):
        split_dataset(iter([np.zeros(4)]), left_size=1)
    torch = pytest.importorskip("torch")
    with pytest.raises(NotImplementedError, match="TensorDataset"):
        split_dataset(torch.utils.data.TensorDataset(torch.zeros(4)), left_size=1)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("left, right", SIZES)
def test_matches_keras(left, right):
    """Keras's PyTorch backend splits with torch's random_split (shuffled even with shuffle=False,
    and only into parts that add up to the whole): the sizes and the samples of each side as sets."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3") or keras.backend.backend() != "torch":
        pytest.skip("needs Keras 3 with the PyTorch backend")
    x = np.arange(10, dtype=np.float32)
    ours = split_dataset(x, left_size=left, right_size=right)
    try:
        theirs = keras.utils.split_dataset(x, left_size=left, right_size=right)
    except ValueError:   # torch's random_split refuses sizes that do not add up to the whole
        assert len(ours[0]) + len(ours[1]) < 10
        return
    assert [len(p) for p in ours] == [len(p) for p in theirs]
    assert sorted(np.concatenate(ours).tolist()) == sorted(float(t[0]) for p in theirs for t in p)
    for bad in (dict(), dict(left_size=0), dict(left_size=1.0), dict(left_size=0.6, right_size=0.6),
                dict(left_size="5"), dict(left_size=0.95)):
        with pytest.raises((ValueError, TypeError)):
            keras.utils.split_dataset(x, **bad)
        with pytest.raises((ValueError, TypeError)):
            split_dataset(x, **bad)
