"""Leak check of the kernels: every public kernel of `cynet.kernels`, called thousands of times.

    python bench/leaks.py [--iterations N] [--backend cython|numpy|both] [--kernels SUBSTR ...]

For each kernel the script builds a few argument sets once (the leak cases of bench/kernel_cases/:
float32 and float64, the optional branches: no bias, channels_first, AMSGrad, Nesterov, given
initial states, ...; one set large enough that the compiled kernel starts an OpenMP team of 2
threads; for a few kernels a call the compiled kernel itself refuses), calls them for a warm-up,
then N more times, and compares two measures taken after `gc.collect()` and glibc's
`malloc_trim(0)` (which hands freed heap pages back, so that RSS follows the live memory closely):

- RSS, the resident set size (/proc/self/statm): catches memory allocated by C code and never
  freed, which Python cannot see;
- traced memory (tracemalloc): catches leaked Python objects and NumPy arrays (NumPy reports its
  data buffers to tracemalloc) to the byte, with little noise, so a few hundred calls suffice.

The N calls run in two halves. A leak grows memory in both; a one-off step (a cache that fills
once, glibc moving its mmap threshold, tracemalloc's accounting of NumPy's as_strided: the NumPy
twin's conv2d_backward shows a single ~940 KiB step of traced memory, with RSS flat over 200k
calls) in one only. The verdict uses the smaller half, doubled ("steady" growth).

It prints one row per kernel group (a forward and its backward share their arguments): RSS after
the warm-up, RSS after the N calls, the growth of RSS and of traced memory, and the steady growth
(RSS/traced); it exits with status 1 if any steady growth exceeds --max-rss-growth-kib (default
1024) or --max-traced-growth-kib (default 64). Each iteration makes at least 4 calls per group,
so the defaults fail a leak of 1 KiB per call within about 300 iterations by RSS (measured noise:
under 80 KiB), and within 16 iterations by tracemalloc when the leaked memory is a Python object
or a NumPy array.

The compiled (Cython) backend is the point and the default; `--backend numpy` runs the same
calls on the NumPy twin. `--json PATH` writes the results for tests/robustness/test_leaks.py.
Linux only (reads /proc/self/statm).
"""
import argparse
import ctypes
import ctypes.util
import gc
import importlib
import inspect
import json
import os
import sys
import time
import tracemalloc

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:            # loaded by path (tests/robustness/test_leaks.py): for kernel_cases
    sys.path.append(HERE)

from kernel_cases import CASES  # noqa: E402  (the argument sets, one module per kernel family)

# Names in cynet.kernels that control the dispatch rather than compute anything.
CONTROL = frozenset({"BACKENDS", "get_backend", "set_backend", "use_backend", "get_num_threads",
                     "set_num_threads", "set_adaptive_threads", "info"})

# Public functions of the compiled modules that no public kernel reaches, called directly.
COMPILED_EXTRAS = tuple(name for name in CASES if "." in name)

DTYPES = (np.float32, np.float64)
LARGE_EVERY = 10   # the large (multi-threaded) argument sets run on every 10th iteration


# ----------------------------------------------------------------------------- measuring

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _load_libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # not glibc: RSS then also counts freed, unreturned heap
        return None


_libc = _load_libc()


def rss_bytes():
    """Resident set size of this process, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def settle():
    """Collect garbage and hand freed heap memory back to the OS, so RSS shows live memory."""
    gc.collect()
    if _libc is not None:
        _libc.malloc_trim(0)


def measure(calls, iterations, warmup=None, large=()):
    """Call every thunk of `calls` (each iteration), those of `large` on every LARGE_EVERY-th
    iteration: `warmup` iterations, then `iterations` measured ones in two halves.

    A leak grows memory in both halves; a one-off step (a cache or hash table that grows once,
    glibc moving its mmap threshold, a pymalloc arena) in one of them only. So the verdict uses
    the smaller half, doubled: `rss_leak` and `traced_leak` estimate what a steady leak would
    have added over all the iterations, and a single step of any size does not count.

    Returns a dict: calls (thunk calls measured), rss_warm, rss_end (bytes), rss_growth,
    traced_growth (end minus warm), rss_halves, traced_halves (the growth of each half),
    rss_leak, traced_leak, seconds. The traced entries are None when tracemalloc is not tracing.
    """
    if warmup is None:
        warmup = max(LARGE_EVERY, iterations // 10)

    def loop(start, stop):
        count = 0
        for i in range(start, stop):
            for fn in calls:
                fn()
            count += len(calls)
            if i % LARGE_EVERY == 0:
                for fn in large:
                    fn()
                count += len(large)
        return count

    tracing = tracemalloc.is_tracing()

    def point():
        settle()
        return rss_bytes(), (tracemalloc.get_traced_memory()[0] if tracing else None)

    loop(0, warmup)
    half = iterations // 2
    (rss0, tr0) = point()
    t0 = time.perf_counter()
    count = loop(0, half)
    (rss1, tr1) = point()
    count += loop(half, iterations)
    seconds = time.perf_counter() - t0
    (rss2, tr2) = point()
    rss_halves = (rss1 - rss0, rss2 - rss1)
    traced_halves = None if not tracing else (tr1 - tr0, tr2 - tr1)
    return {"calls": count, "rss_warm": rss0, "rss_end": rss2, "rss_growth": rss2 - rss0,
            "traced_growth": None if not tracing else tr2 - tr0,
            "rss_halves": rss_halves, "traced_halves": traced_halves,
            "rss_leak": 2 * min(rss_halves),
            "traced_leak": None if not tracing else 2 * min(traced_halves),
            "seconds": seconds}


# ----------------------------------------------------------------------------- the kernels

def public_kernels():
    """Every public kernel: the callables cynet.kernels exports, less the dispatch controls,
    plus everything its family modules list in __all__."""
    import cynet.kernels as K
    from cynet._kernels import manifest

    names = {n for n, obj in vars(K).items()
             if not n.startswith("_") and n not in CONTROL and callable(obj) and not inspect.ismodule(obj)
             and not inspect.isclass(obj)}
    for family in manifest.FAMILIES:
        names.update(importlib.import_module(family.public).__all__)
    return sorted(names)


def compiled_functions():
    """'module.function' for every public function of the compiled kernel modules."""
    from cynet._kernels import manifest

    out = []
    for family in manifest.FAMILIES:
        module = importlib.import_module(family.compiled)
        out += [f"{module.__name__}.{n}" for n in dir(module)
                if not n.startswith("_") and callable(getattr(module, n))
                and not inspect.isclass(getattr(module, n)) and not inspect.ismodule(getattr(module, n))]
    return sorted(out)


# ----------------------------------------------------------------------------- running

def groups():
    """{factory: [kernel names]}: kernels sharing a factory are measured together (their
    backward needs the forward's outputs), in the order of public_kernels()."""
    out = {}
    for name in public_kernels() + list(COMPILED_EXTRAS):
        factory = CASES.get(name)
        if factory is None:
            raise KeyError(f"no leak case for the kernel {name!r}: add one to bench/kernel_cases/")
        out.setdefault(factory, []).append(name)
    return out


def build(factory, seed=0):
    """(calls, large): the thunks of `factory` in both dtypes, and its large ones (float32)."""
    rng = np.random.default_rng(seed)
    calls = [fn for dt in DTYPES for fn in factory(dt, rng, False)]
    return calls, factory(np.float32, rng, True)


def run(iterations, backend="cython", select=None, warmup=None, trace=True, out=sys.stdout):
    """Measure every kernel group on `backend`; returns a list of result dicts (see measure)."""
    import cynet.kernels as K

    results = []
    if trace and not tracemalloc.is_tracing():
        tracemalloc.start()
    try:
        with K.use_backend(backend):
            for factory, names in groups().items():
                label = ", ".join(names)
                if select and not any(s in label for s in select):
                    continue
                if backend != "cython" and any(n.startswith("cynet._kernels.") for n in names):
                    continue
                calls, large = build(factory)
                result = measure(calls, iterations, warmup=warmup, large=large)
                del calls, large
                result.update(kernels=names, backend=backend)
                results.append(result)
                if out is not None:
                    print(_row(result), file=out, flush=True)
    finally:
        if trace:
            tracemalloc.stop()
    return results


_HEADER = (f"{'kernel':<60} {'calls':>7} {'RSS warm MiB':>12} {'RSS end MiB':>11} {'growth KiB':>10} "
           f"{'traced KiB':>10} {'steady KiB':>13}")


def _kib(v):
    return "-" if v is None else f"{v / 1024:.1f}"


def _row(r):
    label = ", ".join(n.replace("cynet._kernels.", "") for n in r["kernels"])
    if len(label) > 60:
        label = label[:57] + "..."
    steady = f"{_kib(r['rss_leak'])}/{_kib(r['traced_leak'])}"
    return (f"{label:<60} {r['calls']:>7} {r['rss_warm'] / 2**20:>12.2f} {r['rss_end'] / 2**20:>11.2f} "
            f"{_kib(r['rss_growth']):>10} {_kib(r['traced_growth']):>10} {steady:>13}")


def failures(results, max_rss_growth_kib=1024, max_traced_growth_kib=64):
    """The results whose steady growth (rss_leak, traced_leak) exceeds a threshold, with the reason."""
    bad = []
    for r in results:
        if r["rss_leak"] > max_rss_growth_kib * 1024:
            bad.append((r, f"RSS grew steadily: {r['rss_halves'][0] / 1024:.0f} + "
                           f"{r['rss_halves'][1] / 1024:.0f} KiB over the two halves, about "
                           f"{r['rss_leak'] / 1024:.0f} KiB > {max_rss_growth_kib:g} KiB"))
        elif r["traced_leak"] is not None and r["traced_leak"] > max_traced_growth_kib * 1024:
            bad.append((r, f"traced memory grew steadily: {r['traced_halves'][0] / 1024:.0f} + "
                           f"{r['traced_halves'][1] / 1024:.0f} KiB over the two halves, about "
                           f"{r['traced_leak'] / 1024:.0f} KiB > {max_traced_growth_kib:g} KiB"))
    return bad


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=3000,
                   help="measured iterations per kernel (each calls every argument set; default 3000)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up iterations (default: iterations / 10)")
    p.add_argument("--backend", choices=("cython", "numpy", "both"), default="cython")
    p.add_argument("--kernels", nargs="*", default=None, help="only the kernels whose names contain one of these")
    p.add_argument("--threads", type=int, default=None, help="cynet.set_num_threads(N) first (default: cynet's)")
    p.add_argument("--max-rss-growth-kib", type=float, default=1024.0)
    p.add_argument("--max-traced-growth-kib", type=float, default=64.0)
    p.add_argument("--no-tracemalloc", action="store_true", help="RSS only (tracemalloc slows Python allocations)")
    p.add_argument("--json", default=None, help="write the results to this file")
    args = p.parse_args(argv)
    if args.iterations < 1:
        p.error("--iterations must be >= 1")

    import cynet
    import cynet.kernels as K

    if args.threads is not None:
        cynet.set_num_threads(args.threads)
    info = K.info()
    print(f"cynet kernels: compiled={info['compiled']} openmp={info['openmp']} threads={info['threads']} "
          f"blas={info['blas']}; {args.iterations} iterations (large argument sets every {LARGE_EVERY}th)")
    backends = ("cython", "numpy") if args.backend == "both" else (args.backend,)
    results = []
    start_rss = rss_bytes()
    for backend in backends:
        print(f"\nbackend: {backend}")
        print(_HEADER)
        results += run(args.iterations, backend, select=args.kernels, warmup=args.warmup,
                       trace=not args.no_tracemalloc)
    settle()
    print(f"\nprocess RSS: {start_rss / 2**20:.1f} MiB after the imports, {rss_bytes() / 2**20:.1f} MiB at the end")
    bad = failures(results, args.max_rss_growth_kib, args.max_traced_growth_kib)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"iterations": args.iterations, "threads": info["threads"], "results": results,
                       "failures": [{"kernels": r["kernels"], "backend": r["backend"], "reason": why}
                                    for r, why in bad]}, f, indent=1)
    if bad:
        print(f"\nFAILED: {len(bad)} kernel group(s) grew beyond the threshold:")
        for r, why in bad:
            print(f"  [{r['backend']}] {', '.join(r['kernels'])}: {why}")
        return 1
    print(f"\nOK: no kernel grew by more than {args.max_rss_growth_kib:g} KiB RSS "
          f"or {args.max_traced_growth_kib:g} KiB traced memory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
