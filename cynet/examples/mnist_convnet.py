"""MNIST convnet, the classic Keras example: conv 32 3x3 relu, max pool, conv 64 3x3 relu, max pool,
flatten, dropout 0.5, dense 10 softmax.

    python -m cynet.examples.mnist_convnet [--epochs 12] [--backend numpy] [--plot convnet.png]
"""
import cynet
from cynet import layers

from . import _common, _mnist


def build_model():
    return cynet.Sequential([
        cynet.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ], name="mnist_convnet")


def main(argv=None):
    p = _mnist.add_data_arguments(_common.parser("mnist_convnet", __doc__, epochs=12, batch_size=128))
    args = _common.setup(p.parse_args(argv), argv)
    model, history, accuracy = _mnist.run("mnist_convnet", build_model, args, flat=False)
    return _mnist.check_accuracy(accuracy, 0.97, args)


if __name__ == "__main__":
    main()
