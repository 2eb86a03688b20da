"""cynet: a Keras-like deep-learning library for the CPU with typed Cython kernels.

    import cynet as keras
    from cynet import layers
"""
import os as _os

# OpenMP (kernels) and OpenBLAS (matmul) threads alternate; busy-waiting OpenMP workers steal the
# cores from BLAS. Default to passive waiting unless the user chose a policy. Must precede the
# first load of the OpenMP runtime, i.e. the import of the compiled kernels below.
_os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from . import kernels  # noqa: E402
from .kernels import get_num_threads, set_num_threads  # noqa: E402,F401
from . import (  # noqa: E402,F401
    activations,
    backend,
    callbacks,
    constraints,
    config,
    datasets,
    dtype_policies,
    initializers,
    layers,
    losses,
    metrics,
    mixed_precision,
    models,
    ops,
    optimizers,
    random,
    regularizers,
    saving,
    utils,
)
from .layers import Input, Layer  # noqa: E402,F401
from .models import Model, Sequential, clone_model, load_model  # noqa: E402,F401
from .ops.gradient_tape import GradientTape  # noqa: E402,F401
from .variables import Variable  # noqa: E402,F401

__version__ = "0.1.0"
