"""Small tabular data sets bundled with scikit-learn, split the way cynet examples use them.

Each loader returns `(x_train, y_train), (x_test, y_test)`: x float32 (n, features), y int64
class ids. The split is stratified and fixed by `seed`: within every class the samples are
permuted with `numpy.random.default_rng(seed)` and round(test_size * class count) of them go to
the test set (at least one when the class has two or more samples); both sets are then shuffled.
With `standardize=True` every feature is shifted and scaled by the training set's mean and
standard deviation (features constant in training are only shifted).

scikit-learn is optional; it is imported when a loader is called (`pip install "cynet[examples]"`).
The data ship inside scikit-learn, so nothing is downloaded.
"""
from typing import Any

import numpy as np

_INSTALL_HINT = 'these loaders need scikit-learn: pip install "cynet[examples]" (or pip install scikit-learn)'


def _sklearn_datasets():
    try:
        from sklearn import datasets
    except ImportError as e:
        raise ImportError(_INSTALL_HINT) from e
    return datasets


def stratified_split(y: np.ndarray, test_size: float = 0.2, seed: int | None = 0) -> Any:
    """Indices `(train_idx, test_idx)` of the fixed stratified split described in the module docstring.

    Args:
        y: The forward output, `activation(x)` (cached by the caller so the backward need not recompute it).
        test_size: Fraction of the samples held out for the test split.
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.size < 2:
        raise ValueError(f"y must be 1-D with at least 2 samples; received shape {y.shape}")
    if isinstance(test_size, bool) or not isinstance(test_size, (float, int, np.floating)) \
            or not 0 < test_size < 1:
        raise ValueError(f"test_size must be a fraction in (0, 1); received test_size={test_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; received seed={seed!r}")
    rng = np.random.default_rng(int(seed))
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(test_size * len(idx)))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        test.append(idx[:k])
        train.append(idx[k:])
    train, test = np.concatenate(train), np.concatenate(test)
    if not len(test) or not len(train):
        raise ValueError(f"test_size={test_size} leaves an empty train or test set for {len(y)} samples")
    return rng.permutation(train), rng.permutation(test)


def _load(loader_name, test_size, seed, standardize):
    if not isinstance(standardize, bool):
        raise TypeError(f"standardize must be True or False; received standardize={standardize!r}")
    bunch = getattr(_sklearn_datasets(), loader_name)()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target).astype(np.int64)
    train, test = stratified_split(y, test_size, seed)
    x_train, x_test = x[train], x[test]
    if standardize:
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        std[std == 0] = 1.0
        x_train = (x_train - mean) / std
        x_test = (x_test - mean) / std
    return ((x_train.astype(np.float32), y[train]), (x_test.astype(np.float32), y[test]))


def load_digits(test_size: float = 0.2, seed: int | None = 0, standardize: bool = False) -> Any:
    """8x8 handwritten digits: 1,797 samples, 64 features (pixel values 0-16), 10 classes.

    Returns `(x_train, y_train), (x_test, y_test)` (x float32, y int64); the split is fixed by `seed`.
    Reshape x to (n, 8, 8, 1) for a small Conv2D.

    Args:
        test_size: Fraction of the samples held out for the test split.
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
        standardize: Whether to standardize the features with the training split's mean and standard
            deviation.
    """
    return _load("load_digits", test_size, seed, standardize)


def load_breast_cancer(test_size: float = 0.2, seed: int | None = 0, standardize: bool = False) -> Any:
    """Wisconsin breast cancer: 569 samples, 30 features, 2 classes (0 malignant, 1 benign).

    Args:
        test_size: Fraction of the samples held out for the test split.
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
        standardize: Whether to standardize the features with the training split's mean and standard
            deviation.
    """
    return _load("load_breast_cancer", test_size, seed, standardize)


def load_wine(test_size: float = 0.2, seed: int | None = 0, standardize: bool = False) -> Any:
    """Wine recognition: 178 samples, 13 features, 3 classes.

    Args:
        test_size: Fraction of the samples held out for the test split.
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
        standardize: Whether to standardize the features with the training split's mean and standard
            deviation.
    """
    return _load("load_wine", test_size, seed, standardize)


def load_iris(test_size: float = 0.2, seed: int | None = 0, standardize: bool = False) -> Any:
    """Iris: 150 samples, 4 features, 3 classes (50 each).

    Args:
        test_size: Fraction of the samples held out for the test split.
        seed: Int seed (the same values every call) or `None` (cynet's global generator).
        standardize: Whether to standardize the features with the training split's mean and standard
            deviation.
    """
    return _load("load_iris", test_size, seed, standardize)
