"""Dense networks on two small real tables from scikit-learn (breast cancer: 2 classes, 30
features; wine: 3 classes, 13 features), each trained with cross-entropy + Adam and with
MSE + SGD (momentum), reporting test accuracy.

    pip install "cynet[examples]"      # scikit-learn
    python -m cynet.examples.tabular
"""
import numpy as np

import cynet
from cynet import layers
from cynet.datasets import tabular

from . import _common

SETUPS = [  # (loss, optimizer factory)
    ("crossentropy", lambda: cynet.optimizers.Adam(learning_rate=1e-2)),
    ("mean_squared_error", lambda: cynet.optimizers.SGD(learning_rate=0.1, momentum=0.9)),
]


def build_model(n_features, n_classes):
    out = layers.Dense(1, activation="sigmoid") if n_classes == 2 else layers.Dense(n_classes, activation="softmax")
    return cynet.Sequential([cynet.Input(shape=(n_features,)), layers.Dense(16, activation="relu"), out])


def run(name, loader, loss, optimizer, args):
    (x_train, y_train), (x_test, y_test) = loader(seed=args.seed, standardize=True)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    if n_classes == 2:
        loss = "binary_crossentropy" if loss == "crossentropy" else loss
        t_train, t_test = y_train.reshape(-1, 1).astype("float32"), y_test.reshape(-1, 1).astype("float32")
    else:
        loss = "categorical_crossentropy" if loss == "crossentropy" else loss
        t_train, t_test = cynet.utils.to_categorical(y_train, n_classes), cynet.utils.to_categorical(y_test, n_classes)
    if args.smoke:
        x_train, t_train = x_train[:2 * args.batch_size], t_train[:2 * args.batch_size]
    model = build_model(x_train.shape[1], n_classes)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    timer = _common.EpochTimer()
    history = model.fit(x_train, t_train, batch_size=args.batch_size, epochs=args.epochs, callbacks=[timer],
                        verbose=0)
    _, accuracy = model.evaluate(x_test, t_test, verbose=0)
    print(f"{name:14s} {loss:26s} {type(model.optimizer).__name__:8s} test accuracy {accuracy:.4f}  "
          f"({_common.seconds_per_epoch(timer) * 1000:.1f} ms/epoch)")
    return history, timer, accuracy


def plot_runs(histories, path):
    """One figure for the four runs: training loss (left) and accuracy (right) per epoch, one
    labelled curve per data set and loss/optimizer, so the four can be told apart."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError('--plot needs matplotlib: pip install "cynet[examples]"') from err
    fig = Figure(figsize=(9.5, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    for i, metric in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, i + 1)
        for label, history in histories.items():
            values = history.history[metric]
            ax.plot(range(1, len(values) + 1), values, label=label)
        ax.set_xlabel("epoch")
        ax.set_title(f"training {metric}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("tabular")
    fig.tight_layout()
    fig.savefig(path)
    return path


def main(argv=None):
    p = _common.parser("tabular", __doc__, epochs=50, batch_size=32)
    args = _common.setup(p.parse_args(argv), argv)
    results, histories, seconds = {}, {}, {}
    for name, loader in (("breast_cancer", tabular.load_breast_cancer), ("wine", tabular.load_wine)):
        for loss, make_optimizer in SETUPS:
            optimizer = make_optimizer()
            history, timer, accuracy = run(name, loader, loss, optimizer, args)
            results[f"{name} {loss}"] = accuracy
            histories[f"{name}: {loss} + {type(optimizer).__name__}"] = history
            seconds[f"{name} {loss}"] = _common.seconds_per_epoch(timer)
    _common.report("tabular", results, timer, args, plot=lambda path: plot_runs(histories, path),
                   extra={"seconds_per_epoch_by_run": seconds})
    return results


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
