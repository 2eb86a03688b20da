"""MNIST MLP: 784-400-400-400-10, leaky ReLU, dropout 0.2, Adam.

    python -m cynet.examples.mnist_mlp [--epochs 20] [--backend numpy] [--plot mlp.png]
"""
import cynet
from cynet import layers

from . import _common, _mnist


def build_model():
    model = cynet.Sequential([cynet.Input(shape=(784,))], name="mnist_mlp")
    for _ in range(3):
        model.add(layers.Dense(400))
        model.add(_mnist.leaky_relu())
        model.add(layers.Dropout(0.2))
    model.add(layers.Dense(10, activation="softmax"))
    return model


def main(argv=None):
    p = _mnist.add_data_arguments(_common.parser("mnist_mlp", __doc__, epochs=20, batch_size=64))
    args = _common.setup(p.parse_args(argv), argv)
    model, history, accuracy = _mnist.run("mnist_mlp", build_model, args, flat=True)
    return _mnist.check_accuracy(accuracy, 0.95, args)


if __name__ == "__main__":
    main()
