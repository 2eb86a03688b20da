"""cynet.kernels: the one Python-facing module for hot operations.

Each function validates and normalises its arguments, then dispatches to the compiled Cython
implementation or to its NumPy twin: `set_backend` and CYNET_BACKEND choose for the process,
`use_backend` for its block in the calling thread only. The functions are those listed in the
`__all__` of each family's public module (cynet.kernels.conv, ...: cynet._kernels.manifest).
"""
import importlib as _importlib

from cynet._kernels.manifest import FAMILIES as _FAMILIES

from ._backend import (  # noqa: F401
    BACKENDS,
    get_backend,
    get_num_threads,
    info,
    set_adaptive_threads,
    set_backend,
    set_num_threads,
    use_backend,
)

for _family in _FAMILIES:   # as `from .<family> import *`
    _module = _importlib.import_module(_family.public)
    globals().update((_name, getattr(_module, _name)) for _name in _module.__all__)
del _FAMILIES, _family, _importlib, _module
