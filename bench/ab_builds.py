"""Interleaved A/B timing of two builds of one compiled kernel family, in one process:

    cp cynet/_kernels/rnn.cpython-*.so /tmp/rnn_before.so     # before the change
    ... edit, rebuild (python setup.py build_ext --inplace) ...
    PYTHONPATH=$PWD python bench/ab_builds.py rnn /tmp/rnn_before.so epoch:char_lstm [--repeats 10]

Times one workload under the working tree's build of a kernel family (cynet._kernels.<family>)
and under another build of the same family (OTHER, a copy of its shared library kept from before
a change), both loaded into this process, taking turns call by call. Separate processes drift by
a few percent from run to run on a shared VM (the char LSTM's epoch: 5% between runs of the same
build), which hides the 1-3% a kernel change is often worth; turns within one process meet the
same drift. Prints each build's minimum and median and the median of the paired ratios (this
build / OTHER: below 1 is faster).

Workloads:
  epoch:NAME          one epoch through fit of bench/test_training.py's workload NAME
                      (char_lstm, char_gru, char_simple_rnn, cnn, mlp), 1 thread
  mixed:NAME          one epoch of bench/test_mixed_precision.py's workload NAME (convnet, mlp,
                      char_lstm) under mixed_bfloat16
  CELL_fwd, CELL_bwd, CELL_fwd_bwd
                      the recurrent kernels (CELL: lstm, gru, simple_rnn) at the char LSTM's shape
                      (batch 25, 60 steps, 43 features, 256 units); --one-hot feeds one-hot inputs

The swap points the backend's table of kernel modules (cynet.kernels._backend) at one build or
the other, so it reaches the code that looks its kernels up through impl(FAMILY), as every public
kernel and layer does; the other compiled families stay as built.
"""
import argparse
import importlib.util
import os
import sys
import time

import numpy as np

import cynet
from cynet.kernels import _backend

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CELLS = ("lstm", "gru", "simple_rnn")


def load_other(family, path):
    """A second instance of cynet._kernels.<family>, from the shared library at `path`."""
    current = _backend._tables["cython"].get(family)
    if current is None:
        raise SystemExit(f"ab_builds: no compiled kernel family {family!r} in this build "
                         f"(families: {', '.join(sorted(_backend._tables['cython']))})")
    spec = importlib.util.spec_from_file_location(current.__name__, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"ab_builds: {path} is not a loadable extension module")
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    return current, other


def workload(name, one_hot):
    """A callable that runs the workload once."""
    if name.startswith(("epoch:", "mixed:")):
        kind, wl = name.split(":", 1)
        if kind == "epoch":
            import test_training as suite
            x, y, batch = suite._data(wl)
            model = suite._cynet_model(wl)
        else:   # bench/test_mixed_precision.py's epoch under mixed_bfloat16
            import test_mixed_precision as suite
            from cynet import mixed_precision
            x, y, batch = suite._data(wl)
            mixed_precision.set_global_policy("mixed_bfloat16")
            try:
                model = suite._model(wl)
            finally:
                mixed_precision.set_global_policy("float32")
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")   # as the suite's epochs
        return lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    cell = next((c for c in CELLS if name.startswith(c + "_")), None)
    what = name[len(cell) + 1:] if cell else None
    if what not in ("fwd", "bwd", "fwd_bwd"):
        raise SystemExit(f"ab_builds: unknown workload {name!r} (epoch:NAME, mixed:NAME, or CELL_fwd|_bwd|_fwd_bwd with CELL in "
                         f"{', '.join(CELLS)})")
    import cynet.kernels as K
    from kernel_cases import rnn as cases
    rng = np.random.default_rng(0)
    kw = cases.arguments(cell, rng, np.float32, N=25, T=60, D=43, U=256)
    if one_hot:
        kw["x"] = np.eye(43, dtype=np.float32)[rng.integers(0, 43, (25, 60))]
    out = cases.forward(cell, kw)
    dhs = rng.standard_normal((25, 60, 256)).astype(np.float32)
    bk = cases.backward_arguments(cell, kw, out, dhs, compute_dx=False)
    backward = getattr(K, f"{cell}_backward")

    def run():
        if what != "bwd":
            cases.forward(cell, kw)
        if what != "fwd":
            backward(**bk)
    return run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("family", help="kernel family (a module of cynet._kernels): rnn, conv, pool, ...")
    p.add_argument("other", help="the other build's shared library (.so)")
    p.add_argument("workload", help="epoch:NAME, mixed:NAME or CELL_fwd|CELL_bwd|CELL_fwd_bwd")
    p.add_argument("--repeats", type=int, default=10, help="turns of each build (default 10)")
    p.add_argument("--one-hot", action="store_true", help="one-hot inputs for the recurrent kernels")
    args = p.parse_args(argv)
    cynet.set_num_threads(1)
    current, other = load_other(args.family, args.other)
    run = workload(args.workload, args.one_hot)
    table = _backend._tables["cython"]
    builds = {"this build": current, "other": other}
    times = {name: [] for name in builds}
    try:
        for module in builds.values():   # warm both: first calls allocate and fault in pages
            table[args.family] = module
            run()
        for i in range(max(1, args.repeats)):
            order = list(builds.items()) if i % 2 == 0 else list(builds.items())[::-1]
            for name, module in order:
                table[args.family] = module
                t0 = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - t0)
    finally:
        table[args.family] = current
    for name, v in times.items():
        ms = np.array(v) * 1e3
        print(f"{name:10s}  min {ms.min():10.3f} ms  median {np.median(ms):10.3f} ms")
    ratio = np.array(times["this build"]) / np.array(times["other"])
    print(f"this build / other, median of paired ratios: {np.median(ratio):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
