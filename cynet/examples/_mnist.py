"""The MNIST data and training run shared by mnist_mlp, mnist_cnn, mnist_convnet and manual_loop."""
import time

import numpy as np

import cynet
from cynet.datasets import mnist

from . import _common


def add_data_arguments(p):
    p.add_argument("--data-dir", default=None,
                   help="directory holding the MNIST IDX files (default: $CYNET_DATA_DIR, ~/.cynet/datasets)")
    p.add_argument("--dataset", choices=("auto", "full", "test-split"), default="auto",
                   help="full: the 60,000/10,000 files (downloaded if missing and online); test-split: the "
                        "fixed 8,000/2,000 split of the 10,000 test images; auto: full when its files are on "
                        "disk, else test-split")
    return p


def load(args, flat):
    """(x_train, y_train), (x_test, y_test) as float32 in [0, 1] (flat: (n, 784), else (n, 28, 28, 1))."""
    kind = args.dataset
    if kind == "auto":
        kind = "full" if mnist.training_files_present(args.data_dir) else "test-split"
    if kind == "full":
        (x_train, y_train), (x_test, y_test) = mnist.load_data(path=args.data_dir)
    else:
        (x_train, y_train), (x_test, y_test) = mnist.load_test_split(path=args.data_dir)
    print(f"MNIST ({kind}): {len(x_train)} training and {len(x_test)} test images")
    if args.smoke:
        x_train, y_train, x_test, y_test = x_train[:4 * args.batch_size], y_train[:4 * args.batch_size], \
            x_test[:2 * args.batch_size], y_test[:2 * args.batch_size]
    shape = (-1, 784) if flat else (-1, 28, 28, 1)
    return ((x_train.reshape(shape).astype("float32") / 255, y_train.astype("int64")),
            (x_test.reshape(shape).astype("float32") / 255, y_test.astype("int64")))


def run(title, build_model, args, flat, optimizer="adam"):
    """Train `build_model()` with sparse categorical cross-entropy and report test accuracy."""
    (x_train, y_train), (x_test, y_test) = load(args, flat)
    model = build_model()
    if args.verbose:
        model.summary()
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = _common.EpochTimer()
    history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                        validation_data=(x_test, y_test), callbacks=[timer], verbose=args.verbose)
    start = time.perf_counter()
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    _common.report(title, {"test loss": loss, "test accuracy": accuracy,
                           "evaluate seconds": time.perf_counter() - start}, timer, args, history)
    return model, history, accuracy


def leaky_relu():
    return cynet.layers.LeakyReLU(negative_slope=0.1)


def check_accuracy(accuracy, target, args):
    if not args.smoke and accuracy < target:
        print(f"note: test accuracy {accuracy:.4f} is below the {target:.2f} this example usually reaches")
    return np.float64(accuracy)
