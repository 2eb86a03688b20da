"""MNIST small CNN: conv 6x6/2 -> leaky ReLU -> avg pool 2 -> conv 3x3/2 -> leaky ReLU -> avg pool 2
-> flatten -> dense 100 -> leaky ReLU -> batch norm -> dense 10 softmax.

    python -m cynet.examples.mnist_cnn [--epochs 15] [--backend numpy] [--plot cnn.png]
"""
import cynet
from cynet import layers

from . import _common, _mnist


def build_model():
    return cynet.Sequential([
        cynet.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, (6, 6), strides=2, padding="same"),
        _mnist.leaky_relu(),
        layers.AveragePooling2D(2),
        layers.Conv2D(32, (3, 3), strides=2, padding="same"),
        _mnist.leaky_relu(),
        layers.AveragePooling2D(2, padding="same"),
        layers.Flatten(),
        layers.Dense(100),
        _mnist.leaky_relu(),
        layers.BatchNormalization(),
        layers.Dense(10, activation="softmax"),
    ], name="mnist_cnn")


def main(argv=None):
    p = _mnist.add_data_arguments(_common.parser("mnist_cnn", __doc__, epochs=15, batch_size=64))
    args = _common.setup(p.parse_args(argv), argv)
    model, history, accuracy = _mnist.run("mnist_cnn", build_model, args, flat=False)
    return _mnist.check_accuracy(accuracy, 0.97, args)


if __name__ == "__main__":
    main()
