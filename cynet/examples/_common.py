"""Plumbing shared by the examples: command line, run-time settings, timing and the final report."""
import argparse
import sys
import time

import cynet
from cynet import callbacks


def parser(description, epochs, batch_size):
    """An ArgumentParser with the options every example understands."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--backend", choices=cynet.kernels.BACKENDS, default=cynet.kernels.get_backend(),
                   help="kernel implementation: compiled Cython or the NumPy twins")
    p.add_argument("--epochs", type=int, default=epochs, help="training epochs")
    p.add_argument("--batch-size", type=int, default=batch_size, help="samples per gradient step")
    p.add_argument("--seed", type=int, default=0, help="random seed (weights, shuffles, dropout)")
    p.add_argument("--threads", type=int, default=None, help="OpenMP and BLAS threads (default: all cores)")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2, help="Keras progress output level")
    p.add_argument("--plot", metavar="PATH", default=None,
                   help="save the loss and metric curves to this PNG (needs matplotlib)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny run (a few batches, one epoch) to check that the example works")
    return p


def setup(args):
    """Apply --backend, --threads and --seed; return the parsed args."""
    cynet.kernels.set_backend(args.backend)
    if args.threads:
        cynet.set_num_threads(args.threads)
    cynet.utils.set_random_seed(args.seed)
    if args.smoke:
        args.epochs = 1
    return args


class EpochTimer(callbacks.Callback):
    """Wall-clock seconds of each training epoch (validation included, as Keras reports it)."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def seconds_per_epoch(timer):
    """Median epoch time; the first epoch is left out when there are more (it warms caches up)."""
    times = sorted(timer.times[1:] if len(timer.times) > 1 else timer.times)
    return times[len(times) // 2] if times else float("nan")


def report(title, results, timer, args, history=None):
    """Print the final metrics and time per epoch; save the curves when --plot was given."""
    info = cynet.kernels.info()
    parts = [f"{name} {value:.4f}" for name, value in results.items()]
    print(f"{title}: " + ", ".join(parts))
    print(f"time per epoch: {seconds_per_epoch(timer):.2f} s  (backend={info['backend']}, "
          f"threads={info['threads']}, epochs={len(timer.times)})")
    if args.plot and history is not None:
        cynet.utils.plot_history(history, args.plot, title=title)
        print(f"curves saved to {args.plot}")
    sys.stdout.flush()
