"""The kernels' case tables: one module per kernel family (conv.py for cynet.kernels.conv, ...).

Each holds the family's argument builders, the realistic shapes its benchmarks time
(bench/test_<family>.py: the benchmark groups are named after them) and the argument sets of
the leak check (bench/leaks.py), which it registers with `case`. The fuzz suite
(tests/robustness/test_fuzz_kernels.py) builds its valid calls with the builders where they fit.
A module added here is imported with the others: the leak check's completeness test
(tests/robustness/test_leaks.py) names every public kernel that has no case.

Imported as `kernel_cases` with bench/ on sys.path (bench/conftest.py, bench/leaks.py and
tests/robustness/conftest.py put it there).
"""
import importlib
import pkgutil

import numpy as np

# kernel name -> leak case factory (see `case`). A name with a dot is a function of a compiled
# module that no public kernel reaches, called directly.
CASES = {}


def case(*names):
    """Register a leak case factory `f(dtype, rng, large) -> [thunks]` for the kernel(s) `names`:
    argument-bound calls of those kernels in `dtype`; with large=True (float32 only) the sets large
    enough that the compiled kernel starts an OpenMP team, which the check calls less often.
    Kernels sharing a factory are measured together (a backward needs its forward's outputs)."""
    def register(factory):
        for name in names:
            if name in CASES:
                raise ValueError(f"two leak cases for {name}")
            CASES[name] = factory
        return factory
    return register


def thunks(bind, sets):
    """The thunks bind(**s) returns (a list) for each keyword-argument set s of `sets`, in one list."""
    return [fn for s in sets for fn in bind(**s)]


def normal(rng, shape, dtype, scale=1.0):
    """Standard normal values times `scale`, as an array of `dtype` (an ndarray also for shape ())."""
    return np.asarray(rng.standard_normal(shape) * scale, dtype=dtype)


def normal_like(rng, a):
    """Normal values of a's shape and dtype (the gradient of a forward's output a, say)."""
    return normal(rng, a.shape, a.dtype)


def raises(fn, exc=ValueError):
    """A thunk that calls fn and expects it to raise `exc` (an error path must not leak either)."""
    def call():
        try:
            fn()
        except exc:
            return
        raise AssertionError(f"{fn} did not raise {exc.__name__}")
    return call


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
