"""Shared loader for data sets in the MNIST layout (four IDX files, 28x28 uint8 images, labels 0-9)."""
import numpy as np

from . import _files
from .idx import read_idx

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
TRAIN_FILES = (TRAIN_IMAGES, TRAIN_LABELS)
TEST_FILES = (TEST_IMAGES, TEST_LABELS)
_MAX_BYTES = 1 << 27  # 128 MiB: the largest file (60,000 images) holds 47 MB


class Spec:
    """What distinguishes MNIST from Fashion-MNIST: names, published hashes, mirrors."""

    def __init__(self, name, title, hashes, mirrors, howto=""):
        self.name, self.title, self.hashes, self.mirrors, self.howto = name, title, hashes, mirrors, howto


def _check_download(download):
    if not isinstance(download, bool):
        raise TypeError(f"download must be True or False; received download={download!r}")


def _read_pair(paths, images_name, labels_name):
    x = read_idx(paths[images_name], max_bytes=_MAX_BYTES)
    y = read_idx(paths[labels_name], max_bytes=_MAX_BYTES)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"{paths[images_name]}: expected uint8 images of shape (n, 28, 28); "
                         f"found {x.dtype} {x.shape}")
    if y.dtype != np.uint8 or y.ndim != 1:
        raise ValueError(f"{paths[labels_name]}: expected uint8 labels of shape (n,); found {y.dtype} {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"{paths[images_name]} holds {len(x)} images but {paths[labels_name]} "
                         f"holds {len(y)} labels")
    if y.size and y.max() > 9:
        raise ValueError(f"{paths[labels_name]}: labels must be 0-9; found {int(y.max())}")
    return x, y


def locate(spec, files, path, download):
    _check_download(download)
    howto = spec.howto if TRAIN_IMAGES in files else ""
    return _files.locate(spec.name, spec.title, files, spec.hashes, spec.mirrors, path=path,
                         download_missing=download, max_bytes=_MAX_BYTES, howto=howto)


def load_full(spec, path, download):
    paths = locate(spec, TRAIN_FILES + TEST_FILES, path, download)
    return _read_pair(paths, TRAIN_IMAGES, TRAIN_LABELS), _read_pair(paths, TEST_IMAGES, TEST_LABELS)


def load_test_split(spec, path, n_train, download):
    if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)):
        raise TypeError(f"n_train must be an int; received n_train={n_train!r}")
    paths = locate(spec, TEST_FILES, path, download)
    x, y = _read_pair(paths, TEST_IMAGES, TEST_LABELS)
    if not 0 < n_train < len(x):
        raise ValueError(f"n_train must be between 1 and {len(x) - 1} (the test split holds {len(x)} "
                         f"images); received n_train={n_train}")
    n_train = int(n_train)
    return (x[:n_train].copy(), y[:n_train].copy()), (x[n_train:].copy(), y[n_train:].copy())


def training_files_present(spec, path):
    """True when some searched directory holds all four files (no download is tried)."""
    try:
        locate(spec, TRAIN_FILES + TEST_FILES, path, False)
    except _files.DatasetNotFoundError:
        return False
    return True
