"""Quick start: a small CNN on scikit-learn's bundled 8x8 handwritten digits (1,797 images, no
download), trained in seconds; prints the test accuracy (about 97-99%).

    pip install "cynet[examples]"      # scikit-learn (and matplotlib for --plot)
    python -m cynet.examples.quickstart
"""
import time

import cynet
from cynet import layers
from cynet.datasets import tabular

from . import _common


def build_model():
    return cynet.Sequential([
        cynet.Input(shape=(8, 8, 1)),
        layers.Conv2D(32, (3, 3), padding="same", activation="relu"),
        layers.Conv2D(32, (3, 3), padding="same", activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dropout(0.25),
        layers.Dense(64, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ], name="digits_cnn")


def main(argv=None):
    p = _common.parser("quickstart", __doc__, epochs=15, batch_size=32)
    args = _common.setup(p.parse_args(argv), argv)
    (x_train, y_train), (x_test, y_test) = tabular.load_digits(seed=args.seed)
    x_train = x_train.reshape(-1, 8, 8, 1).astype("float32") / 16
    x_test = x_test.reshape(-1, 8, 8, 1).astype("float32") / 16
    if args.smoke:
        x_train, y_train = x_train[:2 * args.batch_size], y_train[:2 * args.batch_size]
    print(f"digits: {len(x_train)} training and {len(x_test)} test images of 8x8")
    model = build_model()
    model.summary()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = _common.EpochTimer()
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                        validation_split=0.1, callbacks=[timer], verbose=args.verbose)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    _common.report("quickstart", {"test loss": loss, "test accuracy": accuracy,
                                  "total seconds": time.perf_counter() - start}, timer, args, history)
    return accuracy


if __name__ == "__main__":
    main()
