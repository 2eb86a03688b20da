"""Data sets for examples and tests, in the shapes `keras.datasets` returns.

- `mnist.load_data()`, `fashion_mnist.load_data()`: `(x_train, y_train), (x_test, y_test)` uint8,
  from local IDX files (`path=`, `$CYNET_DATA_DIR`, `~/.cynet/datasets`) or an md5-checked download;
  `mnist.load_test_split()`: a fixed 8,000/2,000 split of the 10,000 MNIST test images.
- `idx.read_idx` / `idx.write_idx`: the IDX file format, with strict header/size checks.
- `text`: character vocabulary, training windows, temperature sampling, Tiny Shakespeare.
- `tabular`: digits, breast cancer, wine, iris through an optional scikit-learn.
"""
from . import fashion_mnist, idx, mnist, tabular, text  # noqa: F401
from ._files import DatasetNotFoundError  # noqa: F401
