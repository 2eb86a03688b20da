"""Kernel dispatch: which implementation (compiled Cython or NumPy twin) serves a call.

`set_backend` (and the environment variable CYNET_BACKEND, read at import) choose the backend
for the whole process. `use_backend` overrides it for its block in the current thread only (a
contextvars.ContextVar, as Thinc holds its current ops): other threads keep running on the
process-wide backend, and so do threads started inside the block (a new thread starts with an
empty context); asyncio tasks created inside the block inherit it. `get_backend` reports the
backend this thread's calls use. The kernel families, each a compiled module and its NumPy twin
with identical functions, and the compiled support modules are those of cynet._kernels.manifest.
"""
import contextlib
import contextvars
import importlib
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from cynet._kernels import manifest

BACKENDS = ("cython", "numpy")
_TWINS = {f.name: f.twin for f in manifest.FAMILIES}   # family -> its NumPy twin's module name


def _import_compiled():
    modules, missing = {}, []
    for name, module in manifest.compiled_modules().items():
        try:
            modules[name] = importlib.import_module(module)
        except ImportError:
            missing.append(name)
    return modules, missing


_compiled, _missing = _import_compiled()
COMPILED = not _missing
_twins: dict[str, object] = {}
_tables = {"cython": _compiled, "numpy": _twins}   # backend name -> {family: module}

if _missing:
    _msg = (
        "cynet: the compiled kernels are missing (" + ", ".join(_missing) + "); "
        "install with `pip install .` to build them. Running on the NumPy path."
    )
    _here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.exists(os.path.join(os.path.dirname(_here), "setup.py")):
        _msg += (f" This cynet was imported from a source checkout ({_here}), which shadows the installed "
                 "package: run from another directory, or install in place with `pip install -e .`.")
    if os.environ.get("CYNET_REQUIRE_COMPILED", "").strip() not in ("", "0"):
        raise ImportError(_msg + " (CYNET_REQUIRE_COMPILED is set, so this is an error.)")
    warnings.warn(_msg, RuntimeWarning, stacklevel=2)


def _check_name(name):
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, received backend={name!r}")
    if name == "cython" and not _compiled.keys() - {"_openmp"}:
        raise ValueError("backend='cython' needs the compiled extension, which is not built; use 'numpy' "
                         "or install cynet with `pip install .`")
    return name


_backend = _check_name(os.environ.get("CYNET_BACKEND", "cython" if COMPILED else "numpy").strip().lower())
# use_backend's choice for the current context; None: the process-wide _backend
_override = contextvars.ContextVar("cynet_kernel_backend", default=None)


def get_backend() -> str:
    """The name of the kernel backend the calling thread's kernel calls use: "cython" or "numpy"."""
    return _override.get() or _backend


def set_backend(name: str) -> None:
    """Select the process-wide kernel backend for every later kernel call: "cython" or "numpy".

    A `use_backend` block active in the calling thread keeps its own choice until it exits.

    Args:
        name: "cython" (the compiled kernels) or "numpy" (their NumPy twins).
    """
    global _backend
    _backend = _check_name(name)


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Context manager that runs its block on the named backend, in the calling thread only
    (its contextvars context); other threads keep the process-wide backend.

    Args:
        name: "cython" (the compiled kernels) or "numpy" (their NumPy twins).
    """
    token = _override.set(_check_name(name))
    try:
        yield
    finally:
        _override.reset(token)


def impl(family: str) -> Any:
    """The module that implements kernel `family` on the current backend."""
    try:
        return _tables[_override.get() or _backend][family]
    except KeyError:
        pass
    if (_override.get() or _backend) == "numpy":
        module = _twins[family] = importlib.import_module(_TWINS[family])
        return module
    raise ImportError(f"cynet: the compiled kernel module '{family}' is not built") from None


def _blas_pools():
    try:
        import threadpoolctl
    except ImportError:  # pragma: no cover - a declared dependency
        return []
    return [p for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas"]


def set_num_threads(n: int) -> None:
    """Use `n` threads in the kernels' OpenMP regions and in NumPy's BLAS.

    The OpenMP setting applies to kernel calls made from the calling thread. A count set here is
    kept as it is on a busy machine (the load-aware default stops: see `adapt_threads`).

    Args:
        n: Number of threads, a positive int.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, received n={n!r}")
    n = int(n)
    global _adaptive
    _adaptive = False
    if "_openmp" in _compiled:
        _compiled["_openmp"].set_load_cap(0)
    if "_openmp" in _compiled:
        _compiled["_openmp"].set_num_threads(n)
    try:
        import threadpoolctl
        threadpoolctl.threadpool_limits(limits=n, user_api="blas")
    except ImportError:  # pragma: no cover
        pass


# ------------------------------------------------------------------- the busy-machine policy
_adaptive = os.environ.get("CYNET_ADAPTIVE_THREADS", "1").strip() != "0"
_monitor = None
_blas = None


def _blas_controllers():
    global _blas
    if _blas is None:
        try:
            import threadpoolctl
            _blas = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:   # noqa: BLE001 - no BLAS control: OpenMP alone adapts
            _blas = []
    return _blas


def adapt_threads() -> None:
    """Between batches of fit: while the thread count is cynet's default, run the kernels' teams
    and the BLAS on the cores other processes leave free (cynet.kernels._load: fewer threads at
    once, more after the cores have stayed free a while). Cheap: a clock read, and a sample of
    the machine's load every 0.2 s."""
    global _monitor
    omp = _compiled.get("_openmp")
    if not _adaptive or omp is None:
        return
    if _monitor is None:
        from ._load import LoadMonitor
        _monitor = LoadMonitor()
    if _monitor.sample() is None:
        return
    wanted = omp.get_num_threads()
    n = _monitor.threads(wanted)
    cap = 0 if n >= wanted else n
    if cap != omp.load_cap():
        omp.set_load_cap(cap)
        for controller in _blas_controllers():
            controller.set_num_threads(n)


def set_adaptive_threads(enabled: bool) -> None:
    """Turn the busy-machine policy on (the default while the thread count is not set) or off.

    Args:
        enabled: Whether the thread count adapts to the machine's load.
    """
    global _adaptive
    _adaptive = bool(enabled)
    omp = _compiled.get("_openmp")
    if not _adaptive and omp is not None and omp.load_cap():   # the cap goes, for the BLAS too
        omp.set_load_cap(0)
        for controller in _blas_controllers():
            controller.set_num_threads(omp.get_num_threads())
    if _monitor is not None:
        _monitor.reset_decision()


def get_num_threads() -> int:
    """Threads the kernels' OpenMP regions use (1 when built without OpenMP)."""
    return _compiled["_openmp"].get_num_threads() if "_openmp" in _compiled else 1


def array_cache() -> contextlib.AbstractContextManager[Any]:
    """A context manager under which this thread's NumPy arrays take their data from cynet's
    caching allocator (cynet._kernels._memory: freed blocks are kept for the next request of
    the same size, so a training loop stops page-faulting its temporaries in at every batch).
    The models' fit, evaluate and predict run under it; a no-op without the compiled kernels
    or with the environment variable CYNET_ARRAY_CACHE=0 (plain malloc)."""
    mem = _compiled.get("_memory")
    if mem is None or os.environ.get("CYNET_ARRAY_CACHE", "1").strip() == "0":
        return contextlib.nullcontext()
    return mem.caching()


def info() -> dict[str, Any]:
    """A dict describing the kernel build: backend, compiled, openmp, threads, blas, ...

    "path" is the directory the package was imported from; when the compiled kernels are missing,
    "note" says why and what to do (typically: this is an uncompiled source checkout shadowing the
    installed package, because Python was started inside the checkout).
    """
    blas = _blas_pools()
    if blas:
        b = blas[0]
        blas_name = f"{b.get('internal_api')} {b.get('version')} ({b.get('threading_layer')})"
        blas_threads = int(b.get("num_threads", 1))
    else:
        blas_name, blas_threads = "unknown", 1
    omp = _compiled.get("_openmp")
    return {
        "backend": get_backend(),
        "compiled": COMPILED,
        "missing_modules": list(_missing),
        "openmp": bool(omp.openmp_enabled()) if omp else False,
        "threads": get_num_threads(),
        "blas": blas_name,
        "blas_threads": blas_threads,
        "numpy": np.__version__,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "path": os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        **({"note": _msg} if _missing else {}),
        "bf16": _bf16_path(),
    }


def _bf16_path():
    """The bfloat16 product the mixed_bfloat16 policy runs (cynet.kernels.bf16)."""
    from . import bf16
    return bf16.bf16_path()
