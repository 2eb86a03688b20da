"""Threads on a busy machine: one epoch of fit while another process keeps one core busy.

    pytest bench/test_busy.py --benchmark-only        # (no --threads: the default count is the point)

Group "busy machine": the MLP 784-256-256-10 epoch (4,096 samples, batch 64, Adam) with cynet's
default threads on an idle machine, the same with a busy process spinning on one core (started by
the benchmark, bounded to 120 s and killed after), and on one thread with the busy process, each
with the busy-machine policy on (the default) or off (`CYNET_ADAPTIVE_THREADS=0`). Issue 20's
target: busy, default threads, at most 1.1x the one-thread time, and the idle speed-up kept.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import cynet
from cynet import layers
from cynet.kernels import _backend

SPIN = "import time\nend = time.time() + 120\nwhile time.time() < end:\n    pass\n"
N, BATCH = 4096, 64


@pytest.fixture
def busy_core():
    proc = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _epoch(benchmark, threads, adaptive):
    omp = _backend._compiled.get("_openmp")
    if omp is None:
        pytest.skip("needs the compiled kernels")
    old = (omp.get_num_threads(), _backend._adaptive)
    omp.set_num_threads(threads or (os.cpu_count() or 1))
    _backend.set_adaptive_threads(adaptive)
    try:
        rng = np.random.default_rng(0)
        x, y = rng.random((N, 784), dtype=np.float32), rng.integers(0, 10, N)
        model = cynet.Sequential([cynet.Input((784,)), layers.Dense(256, activation="relu"),
                                  layers.Dense(256, activation="relu"), layers.Dense(10, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
        benchmark.pedantic(lambda: model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0),
                           rounds=5, iterations=1, warmup_rounds=1)
    finally:
        omp.set_num_threads(old[0])
        _backend.set_adaptive_threads(old[1])
        omp.set_load_cap(0)


GROUP = "busy machine: mlp 784-256x2-10 epoch"


@pytest.mark.parametrize("adaptive", [True, False], ids=["policy", "no_policy"])
def test_idle_default_threads(benchmark, adaptive):
    benchmark.group = GROUP
    _epoch(benchmark, None, adaptive)


@pytest.mark.parametrize("adaptive", [True, False], ids=["policy", "no_policy"])
def test_busy_default_threads(benchmark, busy_core, adaptive):
    benchmark.group = GROUP
    _epoch(benchmark, None, adaptive)


def test_busy_one_thread(benchmark, busy_core):
    benchmark.group = GROUP
    _epoch(benchmark, 1, False)
