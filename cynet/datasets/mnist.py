"""MNIST handwritten digits (LeCun, Cortes, Burges): `load_data()` as in `keras.datasets.mnist`.

The four canonical IDX files (`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
`t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`; gzipped or raw, i.e. without `.gz`)
are looked for in this order:

1. the directory passed as `path=`,
2. `$CYNET_DATA_DIR/mnist`, then `$CYNET_DATA_DIR`,
3. the cache `~/.cynet/datasets/mnist`.

The first directory that holds every file needed is used. When none does, the files missing from
the cache are downloaded into it (only `urllib`, with a timeout), checked against the published
md5 sums below and moved into place atomically. Offline, a `DatasetNotFoundError` (a subclass of
FileNotFoundError) lists every place searched and how to provide the files.

When only the 10,000-image test files are at hand, `load_test_split()` gives a fixed, documented
8,000/2,000 split of them; `load_data(test_split_only=True)` returns the same thing.
"""
from typing import Any

from . import _mnist_like
from ._files import DatasetNotFoundError  # noqa: F401  (re-exported for `except mnist.DatasetNotFoundError`)

#: Published md5 sums of the canonical files (the same ones torchvision checks).
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
#: Download mirrors, tried in order (LeCun's original site no longer serves the files reliably).
MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
#: Default number of the 10,000 test images that `load_test_split` uses for training.
N_TRAIN_TEST_SPLIT = 8000

_SPEC = _mnist_like.Spec(
    "mnist", "MNIST", MD5, MIRRORS,
    howto="With only the 10,000-image test files (t10k-*), use cynet.datasets.mnist.load_test_split() "
          "or load_data(test_split_only=True) for a fixed 8,000/2,000 split of them.")


def load_data(path: str | None = None, *, test_split_only: bool = False, download: bool = True) -> Any:
    """Load MNIST as `(x_train, y_train), (x_test, y_test)`, like `keras.datasets.mnist.load_data`.

    Args:
        path: a directory holding the IDX files; searched before `$CYNET_DATA_DIR` and the cache.
            (Keras's `path` names a file in its cache; here it is a directory.)
        test_split_only: when True, return `load_test_split(path)` instead: the first 8,000 and the
            last 2,000 of the 10,000 canonical test images, for machines that carry only those.
            Never switched on implicitly.
        download: whether missing files may be downloaded into `~/.cynet/datasets/mnist`.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: uint8 images (60000, 28, 28) and (10000, 28, 28),
        uint8 labels 0-9 of shapes (60000,) and (10000,).

    Raises:
        DatasetNotFoundError: the files are absent and could not be downloaded.
        ValueError: a file is damaged or not MNIST-shaped, or a download failed its md5 check.
    """
    if not isinstance(test_split_only, bool):
        raise TypeError(f"test_split_only must be True or False; received test_split_only={test_split_only!r}")
    if test_split_only:
        return load_test_split(path, download=download)
    return _mnist_like.load_full(_SPEC, path, download)


def load_test_split(path: str | None = None, n_train: int = N_TRAIN_TEST_SPLIT, *, download: bool = True) -> Any:
    """A fixed train/test split of the 10,000 canonical MNIST test images.

    `x_train` is the first `n_train` images of `t10k-images-idx3-ubyte` in file order and `x_test`
    the remaining `10000 - n_train` (2,000 by default); no shuffling, so the split is the same on
    every machine. Only the two t10k files are needed (searched for as in `load_data`).

    Returns:
        `(x_train, y_train), (x_test, y_test)`, uint8, shapes (n_train, 28, 28), (n_train,),
        (10000 - n_train, 28, 28), (10000 - n_train,).

    Args:
        path: Directory or file to read from; `None` searches `$CYNET_DATA_DIR` and `~/.cynet/datasets`.
        n_train: Number of images in the training part (the rest is the test part).
        download: Whether to download missing files (md5-checked).
    """
    return _mnist_like.load_test_split(_SPEC, path, n_train, download)


def training_files_present(path: str | None = None) -> Any:
    """True when a searched directory (path=, $CYNET_DATA_DIR..., the cache) holds all four files.

    Never downloads; use it to choose between `load_data()` and `load_test_split()` offline.

    Args:
        path: Directory or file to read from; `None` searches `$CYNET_DATA_DIR` and `~/.cynet/datasets`.
    """
    return _mnist_like.training_files_present(_SPEC, path)
