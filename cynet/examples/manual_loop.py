"""The mnist_mlp network trained by a hand-written loop, PyTorch style: forward, loss gradient,
backward, optimizer.apply_gradients, with no fit().

    python -m cynet.examples.manual_loop [--epochs 20] [--backend numpy]
"""
import time

import numpy as np

import cynet

from . import _common, _mnist, mnist_mlp


def accuracy(model, x, y, batch_size=256):
    correct = 0
    for i in range(0, len(x), batch_size):
        probabilities = model.forward(x[i:i + batch_size], training=False)
        correct += int(np.sum(np.argmax(probabilities, axis=-1) == y[i:i + batch_size]))
    return correct / len(x)


def main(argv=None):
    p = _mnist.add_data_arguments(_common.parser("manual_loop", __doc__, epochs=20, batch_size=64))
    args = _common.setup(p.parse_args(argv), argv)
    (x_train, y_train), (x_test, y_test) = _mnist.load(args, flat=True)
    model = mnist_mlp.build_model()
    loss_fn = cynet.losses.SparseCategoricalCrossentropy()
    optimizer = cynet.optimizers.Adam(learning_rate=1e-3)
    rng = np.random.default_rng(args.seed)
    timer = _common.EpochTimer()
    history = {"loss": [], "accuracy": [], "val_accuracy": []}
    for epoch in range(args.epochs):
        timer.on_epoch_begin(epoch)
        order = rng.permutation(len(x_train))
        losses = []
        for start in range(0, len(order), args.batch_size):
            batch = order[start:start + args.batch_size]
            probabilities = model.forward(x_train[batch], training=True)
            loss, grad = loss_fn.forward_backward(y_train[batch], probabilities)
            model.backward(grad)
            variables = model.trainable_variables
            optimizer.apply_gradients(zip([v.grad for v in variables], variables))
            losses.append(loss)
        timer.on_epoch_end(epoch)
        history["loss"].append(float(np.mean(losses)))
        history["accuracy"].append(accuracy(model, x_train, y_train))
        history["val_accuracy"].append(accuracy(model, x_test, y_test))
        if args.verbose:
            print(f"epoch {epoch + 1}/{args.epochs}: loss {history['loss'][-1]:.4f}, "
                  f"accuracy {history['accuracy'][-1]:.4f}, val_accuracy {history['val_accuracy'][-1]:.4f}, "
                  f"{timer.times[-1]:.2f} s")
    start = time.perf_counter()
    test_accuracy = accuracy(model, x_test, y_test)
    _common.report("manual_loop", {"test accuracy": test_accuracy, "evaluate seconds": time.perf_counter() - start},
                   timer, args, history)
    return _mnist.check_accuracy(test_accuracy, 0.95, args)


if __name__ == "__main__":
    main()
