"""Fashion-MNIST (Zalando Research): `load_data()` as in `keras.datasets.fashion_mnist`.

Same layout, file names and search order as `cynet.datasets.mnist`, with `fashion_mnist` in
place of `mnist`: `path=`, `$CYNET_DATA_DIR/fashion_mnist`, `$CYNET_DATA_DIR`,
`~/.cynet/datasets/fashion_mnist`, then a download from Zalando's mirror checked against the md5
sums Zalando publishes. Labels: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal,
6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot (`CLASS_NAMES`).
"""
from typing import Any

from . import _mnist_like
from ._files import DatasetNotFoundError  # noqa: F401

#: md5 sums published in the Fashion-MNIST README (github.com/zalandoresearch/fashion-mnist).
MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
#: Zalando's download mirror, then the files in Zalando's GitHub repository (md5-checked either way).
MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")

_SPEC = _mnist_like.Spec("fashion_mnist", "Fashion-MNIST", MD5, MIRRORS)


def load_data(path: str | None = None, *, download: bool = True) -> Any:
    """Load Fashion-MNIST as `(x_train, y_train), (x_test, y_test)`, uint8.

    Args:
        path: a directory holding the four IDX files (gz or raw); searched first.
        download: whether missing files may be downloaded into `~/.cynet/datasets/fashion_mnist`.

    Returns:
        uint8 images (60000, 28, 28) and (10000, 28, 28); uint8 labels 0-9, (60000,) and (10000,).

    Raises:
        DatasetNotFoundError: the files are absent and could not be downloaded.
        ValueError: a file is damaged or not MNIST-shaped, or a download failed its md5 check.
    """
    return _mnist_like.load_full(_SPEC, path, download)


def load_test_split(path: str | None = None, n_train: int = 8000, *, download: bool = True) -> Any:
    """The first `n_train` / remaining test images as a fixed split (see `mnist.load_test_split`).

    Args:
        path: Directory or file to read from; `None` searches `$CYNET_DATA_DIR` and `~/.cynet/datasets`.
        n_train: Number of images in the training part (the rest is the test part).
        download: Whether to download missing files (md5-checked).
    """
    return _mnist_like.load_test_split(_SPEC, path, n_train, download)
