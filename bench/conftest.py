"""Shared fixtures of the benchmark suite.

    pytest bench --benchmark-only [--threads N]

Measure cynet and PyTorch in separate processes (`-k "not torch"`, then `-k torch`): with
PyTorch imported, the same NumPy and cynet code ran 20-25% slower here (measured on the MLP
epoch, both backends), so one process for both would understate cynet.

`--threads N` sets the threads of cynet's OpenMP kernels and NumPy's BLAS, and PyTorch's
intra-op threads when PyTorch is installed, so every implementation runs on the same count
(default: cynet's own default, which PyTorch is then set to match).

cynet's kernel benchmarks run under the array cache that `fit`, `evaluate` and `predict` run
under (cynet.kernels._backend.array_cache), so a kernel is timed as a training step runs it:
its outputs reuse the blocks freed by the previous call instead of page-faulting fresh ones.
`--array-cache off` times the kernels on plain malloc, as a direct call outside `fit` runs.
"""
import contextlib
import os
import sys

import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet.kernels._backend import array_cache

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:   # the benchmarks' shapes and arguments: `import kernel_cases`
    sys.path.append(HERE)


def pytest_addoption(parser):
    parser.addoption("--threads", type=int, default=None,
                     help="threads for cynet (OpenMP and BLAS) and PyTorch (default: cynet's default)")
    parser.addoption("--array-cache", choices=("on", "off"), default="on",
                     help="run cynet's kernel benchmarks under the array cache of fit (default: on)")


def pytest_configure(config):
    threads = config.getoption("--threads", default=None)
    if threads is not None:
        cynet.set_num_threads(threads)


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["cynet"] = dict(K.info(), array_cache=config.getoption("--array-cache"))
    torch = sys.modules.get("torch")   # only when a PyTorch twin ran: importing it costs cynet time
    if torch is not None:
        machine_info["torch"] = {"version": torch.__version__, "threads": torch.get_num_threads()}


def _torch():
    try:
        import torch
    except ImportError:
        return None
    n = K.get_num_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch


@pytest.fixture(params=["numpy", "cython"])
def backend(request):
    """Each benchmark runs once per backend; both land in the same group. Both run under the
    array cache unless --array-cache off."""
    cached = request.config.getoption("--array-cache") == "on"
    with K.use_backend(request.param), (array_cache() if cached else contextlib.nullcontext()):
        yield request.param


@pytest.fixture
def torch(benchmark):
    """PyTorch on cynet's thread count, for the PyTorch twin of a workload (skips without it).
    Its results land in the workload's group with backend "torch"."""
    module = _torch()
    if module is None:
        pytest.skip("PyTorch is not installed (optional: pip install torch)")
    benchmark.extra_info["backend"] = "torch"
    return module


@pytest.fixture
def keras(torch):
    """Keras 3 on its PyTorch backend (the one the test oracles use), on cynet's thread count, for
    the Keras twin of a workload (skips without it). Its results land in the group with backend
    "keras"."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras as module
    except ImportError:
        pytest.skip("Keras 3 is not installed (optional: pip install keras)")
    if module.backend.backend() != "torch":
        pytest.skip(f"the Keras twin runs on Keras's torch backend; KERAS_BACKEND is {module.backend.backend()!r}")
    return module


@pytest.fixture
def rng():
    return np.random.default_rng(0)
