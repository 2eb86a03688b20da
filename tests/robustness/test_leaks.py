"""The kernels do not leak: bench/leaks.py calls every public kernel many times with flat memory.

Fast (CI): the table covers every public kernel and every public function of the compiled
modules; the detector flags a real leak of 1 KiB per call (Python-visible and C-level) and
passes the same work without the leak; the script runs 100 iterations per kernel group.
Slow (`-m slow`): 2000 iterations on the compiled backend (>= 8000 calls per kernel group: a
leak of 1 KiB a call adds >= 8 MiB), 500 on the NumPy twin.
"""
import ctypes
import importlib.util
import json
import pathlib
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import cynet.kernels as K

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "leaks.py"

pytestmark = pytest.mark.skipif(not pathlib.Path("/proc/self/statm").exists(),
                                reason="the leak check reads /proc/self/statm (Linux)")


@pytest.fixture(scope="module")
def leaks():
    spec = importlib.util.spec_from_file_location("cynet_bench_leaks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_public_kernel_has_a_leak_case(leaks):
    kernels = leaks.public_kernels()
    # the enumeration itself finds the kernels (not an empty or stale list)
    assert {"conv2d_forward", "lstm_backward", "adam_update", "softmax_cross_entropy", "max_pool2d_backward",
            "batch_norm_train_forward", "upsampling2d_backward"} <= set(kernels)
    assert not set(kernels) & leaks.CONTROL
    missing = sorted(set(kernels) - set(leaks.CASES))
    assert not missing, f"bench/kernel_cases/ has no leak case for the public kernel(s) {missing}: add one"
    stale = sorted(set(leaks.CASES) - set(kernels) - set(leaks.COMPILED_EXTRAS))
    assert not stale, f"bench/kernel_cases/ has leak cases for names that are no kernels: {stale}"
    grouped = [name for names in leaks.groups().values() for name in names]
    assert sorted(grouped) == sorted(kernels + list(leaks.COMPILED_EXTRAS))
    # the script's sensitivity assumes >= 4 calls per iteration (its docstring, the thresholds)
    for factory, names in leaks.groups().items():
        calls, _ = leaks.build(factory)
        assert len(calls) >= 4, f"{names}: {len(calls)} calls per iteration"


@pytest.mark.skipif(not K.info()["compiled"], reason="needs the compiled kernels")
def test_leak_cases_reach_every_compiled_function(leaks, monkeypatch):
    """Every public function of every compiled module is called by the cases (in both dtypes),
    so a new compiled entry point without a leak case fails here."""
    import importlib

    called = {}
    for qualified in leaks.compiled_functions():
        module_name, name = qualified.rsplit(".", 1)
        module = importlib.import_module(module_name)
        original = getattr(module, name)

        def counting(*args, _original=original, _q=qualified, **kwargs):
            dtypes = {a.dtype.name for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"}
            called.setdefault(_q, set()).update(dtypes or {"-"})
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counting)
    with K.use_backend("cython"):
        for factory in leaks.groups():
            calls, large = leaks.build(factory)
            for fn in calls + large:
                fn()
    missing = sorted(set(leaks.compiled_functions()) - set(called))
    assert not missing, f"no leak case reaches the compiled function(s) {missing}"
    one_dtype = sorted(q for q, dts in called.items() if dts != {"-"} and not {"float32", "float64"} <= dts
                       and q.rsplit(".", 1)[1] not in getattr(importlib.import_module(q.rsplit(".", 1)[0]),
                                                              "FLOAT32_ONLY", ()))   # (bf16: float32 by design)
    assert not one_dtype, f"compiled function(s) called in one float dtype only: {one_dtype}"


# ------------------------------------------------------------------------- the detector itself

_libc = ctypes.CDLL(None)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.free.argtypes = [ctypes.c_void_p]
_libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]


def _fake_kernels(leak):
    """Thunks doing a kernel's allocations; with leak=True each call also keeps 1 KiB: a NumPy
    array in a Python list (Python-visible) or a malloc'd block (C-level, invisible to Python)."""
    kept_arrays, kept_blocks = [], []
    x = np.ones(256, np.float32)

    def python_level():
        y = x * 2.0
        if leak:
            kept_arrays.append(np.empty(256, np.float32))     # 1 KiB
        return y

    def c_level():
        p = _libc.malloc(1024)
        _libc.memset(p, 1, 1024)
        if leak:
            kept_blocks.append(p)
        else:
            _libc.free(p)

    def release():
        kept_arrays.clear()
        for p in kept_blocks:
            _libc.free(p)
        kept_blocks.clear()

    return python_level, c_level, release


@pytest.mark.parametrize("leak", [False, True], ids=["clean", "leaking"])
def test_detector_flags_a_1kib_per_call_leak(leaks, leak):
    python_level, c_level, release = _fake_kernels(leak)
    tracemalloc.start()
    try:
        traced = leaks.measure([python_level], iterations=200)
    finally:
        tracemalloc.stop()
    rss = leaks.measure([c_level], iterations=5000)        # 5000 x 1 KiB = 5 MiB if leaking
    release()
    assert traced["calls"] == 200 and rss["calls"] == 5000
    flagged = [why for _, why in leaks.failures([dict(traced, kernels=["python_level"], backend="-"),
                                                  dict(rss, kernels=["c_level"], backend="-")])]
    if leak:
        assert traced["traced_leak"] >= 190 * 1024
        assert rss["rss_leak"] >= 4 * 2**20
        assert len(flagged) == 2 and "traced" in flagged[0] and "RSS" in flagged[1], flagged
    else:
        assert abs(traced["traced_leak"]) < 16 * 1024
        assert rss["rss_leak"] < 512 * 1024
        assert not flagged, flagged


def test_detector_ignores_a_one_off_step(leaks):
    """A cache that fills once (here: 2 MiB in one call) is no leak; a steady leak of the same
    total is."""
    state = {"i": 0, "kept": []}

    def step():
        state["i"] += 1
        if state["i"] == 150:                               # after the warm-up, in one half only
            state["kept"].append(np.ones(2**19, np.float32))
        return np.zeros(16)

    tracemalloc.start()
    try:
        r = leaks.measure([step], iterations=200, warmup=20)
    finally:
        tracemalloc.stop()
    assert r["traced_growth"] >= 2 * 2**20 and r["rss_growth"] >= 2**20
    assert not leaks.failures([dict(r, kernels=["step"], backend="-")])


# ------------------------------------------------------------------------- the script

def _run_script(tmp_path, *args, timeout=600):
    out = tmp_path / "leaks.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--json", str(out), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=tmp_path)
    report = json.loads(out.read_text()) if out.exists() else None
    return proc, report


def _check(proc, report, leaks, backend, max_rss_kib=1024):
    assert report is not None, proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not report["failures"]
    measured = {name for r in report["results"] for name in r["kernels"]}
    expected = set(leaks.public_kernels()) | (set(leaks.COMPILED_EXTRAS) if backend == "cython" else set())
    assert measured == expected
    for r in report["results"]:
        assert r["backend"] == backend
        assert r["rss_leak"] <= max_rss_kib * 1024 and r["traced_leak"] <= 64 * 1024, r
    assert "RSS warm MiB" in proc.stdout and "OK:" in proc.stdout


@pytest.mark.skipif(not K.info()["compiled"], reason="needs the compiled kernels")
def test_leak_script_fast(tmp_path, leaks):
    # 100 iterations of >= 4 calls: a leak of 1 KiB a call adds >= 400 KiB (RSS limit 256 KiB
    # here; measured steady noise <= 32 KiB) and fails the tracemalloc limit after 16 iterations
    proc, report = _run_script(tmp_path, "--iterations", "100", "--max-rss-growth-kib", "256")
    _check(proc, report, leaks, "cython", max_rss_kib=256)


@pytest.mark.slow
@pytest.mark.skipif(not K.info()["compiled"], reason="needs the compiled kernels")
def test_leak_script_thousands_of_calls(tmp_path, leaks):
    proc, report = _run_script(tmp_path, "--iterations", "2000")
    _check(proc, report, leaks, "cython")
    print(proc.stdout)


@pytest.mark.slow
def test_leak_script_numpy_twin(tmp_path, leaks):
    proc, report = _run_script(tmp_path, "--iterations", "500", "--backend", "numpy")
    _check(proc, report, leaks, "numpy")
