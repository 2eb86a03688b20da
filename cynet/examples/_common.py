"""Plumbing shared by the examples: command line, run-time settings, timing and the final report."""
import argparse
import json
import sys
import time

import cynet
from cynet import callbacks


class _HelpFormatter(argparse.HelpFormatter):
    """Adds "(default: X)" to an option's help only where the help does not already say its
    default and there is one to say (not None, not a flag's False)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or not action.option_strings or action.default is None
                or action.default is False or action.default is argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


def description(doc):
    """The first paragraph of an example's docstring, as one line (argparse re-wraps it)."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def parser(name, doc, epochs, batch_size):
    """An ArgumentParser with the options every example understands.

    `name` is the example's name: the usage line reads `cynet-examples NAME [options]`, the
    command that runs it. `doc` is the example's docstring; its first paragraph is the description.
    """
    p = argparse.ArgumentParser(prog=f"cynet-examples {name}", description=description(doc),
                                formatter_class=_HelpFormatter)
    p.set_defaults(example=name)
    p.add_argument("--backend", choices=cynet.kernels.BACKENDS, default=cynet.kernels.get_backend(),
                   help="kernel implementation: compiled Cython or the NumPy twins")
    p.add_argument("--epochs", type=int, default=epochs, help="training epochs")
    p.add_argument("--batch-size", type=int, default=batch_size, help="samples per gradient step")
    p.add_argument("--seed", type=int, default=0, help="random seed (weights, shuffles, dropout)")
    p.add_argument("--threads", type=int, default=None, help="OpenMP and BLAS threads (default: all cores)")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2, help="Keras progress output level")
    p.add_argument("--dtype-policy", choices=POLICIES, default="float32",
                   help="Keras dtype policy for every layer: mixed_bfloat16 runs the matrix products on "
                        "bfloat16 inputs with float32 accumulation (see cynet.kernels.info()['bf16'])")
    p.add_argument("--plot", metavar="PATH", default=None,
                   help="save the loss and metric curves to this PNG (needs matplotlib)")
    p.add_argument("--results", metavar="PATH", default=None,
                   help="append this run's metrics, time per epoch and settings to PATH as one JSON line "
                        "(tools/results_table.py turns such lines into the results table)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny run (a few batches, one epoch) to check that the example works")
    return p


def setup(args, argv=None):
    """Apply --backend, --threads, --seed and --dtype-policy; keep the command line (for --results); return args."""
    args.argv = list(sys.argv[1:] if argv is None else argv)
    cynet.kernels.set_backend(args.backend)
    if args.threads:
        cynet.set_num_threads(args.threads)
    cynet.utils.set_random_seed(args.seed)
    cynet.mixed_precision.set_global_policy(args.dtype_policy)
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


def _plain(value):
    """A metric as a JSON number (NumPy scalars and lists of them included)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return float(value)


def record(title, results, timer, args, history=None, extra=None):
    """This run as one JSON-able dict: what `--results` appends and tools/results_table.py reads."""
    info = cynet.kernels.info()
    logs = getattr(history, "history", history) or {}
    return {
        "example": getattr(args, "example", title), "title": title,
        "argv": sys.argv[1:] if getattr(args, "argv", None) is None else args.argv,
        "backend": info["backend"], "threads": info["threads"], "bf16_path": info["bf16"],
        "epochs": len(timer.times),
        "seconds_per_epoch": seconds_per_epoch(timer),
        "results": {name: _plain(value) for name, value in results.items()},
        "history": {name: _plain(values) for name, values in logs.items()},
        "settings": {k: v for k, v in vars(args).items() if k not in ("results", "plot", "argv")
                     and isinstance(v, (str, int, float, bool, type(None)))},
        **(extra or {}),
    }


def report(title, results, timer, args, history=None, plot=None, extra=None):
    """Print the final metrics and time per epoch; save the curves when --plot was given (with
    `plot(path)` when the example draws its own figure); append the run to --results (with the
    JSON-able entries of `extra`)."""
    info = cynet.kernels.info()
    parts = [f"{name} {value:.4f}" for name, value in results.items()]
    print(f"{title}: " + ", ".join(parts))
    print(f"time per epoch: {seconds_per_epoch(timer):.2f} s  (backend={info['backend']}, "
          f"threads={info['threads']}, epochs={len(timer.times)})")
    if args.plot and (plot is not None or history is not None):
        if plot is not None:
            plot(args.plot)
        else:
            cynet.utils.plot_history(history, args.plot, title=title)
        print(f"curves saved to {args.plot}")
    if getattr(args, "results", None):
        with open(args.results, "a", encoding="utf-8") as f:
            f.write(json.dumps(record(title, results, timer, args, history, extra)) + "\n")
    sys.stdout.flush()
