"""cynet.kernels: the one Python-facing module for hot operations.

Each function validates and normalises its arguments, then dispatches to the compiled Cython
implementation or to its NumPy twin: `set_backend` and CYNET_BACKEND choose for the process,
`use_backend` for its block in the calling thread only.
"""
from ._backend import (  # noqa: F401
    BACKENDS,
    get_backend,
    get_num_threads,
    info,
    set_backend,
    set_num_threads,
    use_backend,
)
from .activations import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403
