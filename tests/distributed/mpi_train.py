"""Training script for the MPI tests: run under mpirun (distributed) or alone with --single.

    mpirun -n 2 python mpi_train.py --model mlp --batch 8 --out w.npz
    python mpi_train.py --model mlp --batch 16 --single --out ref.npz

Same seed, data and model either way; rank 0 (or the single process) writes the final weights
and the history to --out (npz), every rank writes its own history to --out.rank<R>.json.
"""
import argparse
import json
import sys

import numpy as np

import cynet
from cynet import layers


def data(kind, n=90):
    rng = np.random.default_rng(7)
    if kind == "mlp":
        x = rng.standard_normal((n, 12)).astype(np.float32)
        y = (x[:, :3].sum(axis=1) > 0).astype(np.int64) + (x[:, 3] > 1)
        return x, y
    if kind == "cnn":
        x = rng.standard_normal((n, 8, 8, 1)).astype(np.float32)
        return x, (x[:, :4].mean(axis=(1, 2, 3)) > 0).astype(np.int64)
    x = rng.standard_normal((n, 6, 5)).astype(np.float32)
    return x, (x[:, :, 0].sum(axis=1) > 0).astype(np.int64)


def model_for(kind, x):
    stack = {"mlp": [layers.Dense(16, activation="relu"), layers.Dense(8, activation="tanh"),
                     layers.Dense(3, activation="softmax")],
             "cnn": [layers.Conv2D(4, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
                     layers.Conv2D(6, 3, strides=2), layers.Flatten(), layers.Dense(2, activation="softmax")],
             "lstm": [layers.LSTM(7), layers.Dense(2, activation="softmax")]}[kind]
    return cynet.Sequential([cynet.Input(shape=x.shape[1:])] + stack)


class FailAt(cynet.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError(f"deliberate failure at epoch {epoch}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="mlp")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--single", action="store_true")
    p.add_argument("--fail-rank", type=int, default=-1)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    rank = 0
    optimizer = cynet.optimizers.Adam(0.01)
    if not args.single:
        import cynet.distributed as dist
        rank = dist.init(threads=1)
        optimizer = dist.DistributedOptimizer(optimizer)
    cynet.utils.set_random_seed(3)
    x, y = data(args.model)
    model = model_for(args.model, x)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = []
    if args.fail_rank == rank:
        callbacks.append(FailAt(1))
    if args.checkpoint:
        callbacks.append(cynet.callbacks.ModelCheckpoint(args.checkpoint))
    history = model.fit(x[:71], y[:71], batch_size=args.batch, epochs=args.epochs, verbose=2,
                        validation_data=(x[71:], y[71:]), callbacks=callbacks)
    evaluated = model.evaluate(x, y, verbose=0, return_dict=True)
    record = {"history": history.history, "evaluate": evaluated}
    with open(f"{args.out}.rank{rank}.json", "w") as f:
        json.dump(record, f)
    if rank == 0:
        np.savez(args.out, *model.get_weights())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
