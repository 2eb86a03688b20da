"""A process forked after cynet ran a parallel kernel works (multiprocessing's default start
method on Linux, gunicorn's workers, data-loading workers).

GNU OpenMP keeps a pool of worker threads per thread that started a parallel region, and its
child after fork would wait forever for the pool's workers, which fork did not copy.
cynet._kernels._openmp releases the forking thread's pool before every fork (pthread_atfork),
so the child starts a fresh pool. Each scenario runs in a subprocess of its own with a timeout,
in a new process group that is killed on timeout, so a hang fails the test instead of CI.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import cynet
from cynet.kernels import _backend

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.skipif(not _backend.COMPILED or not cynet.kernels.info()["openmp"],
                       reason="needs the compiled kernels built with OpenMP"),
]

TIMEOUT = 60
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(cynet.__file__)))

# The parent: a small CNN trained and used for prediction on a team of two threads (the
# convolution's team path: a batch with an image for every thread), BLAS threads started by a
# large product, and the parent's OpenMP pool certainly alive (a team of two ran last).
PARENT = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import cynet
    from cynet._kernels import _openmp

    cynet.set_num_threads(2)
    cynet.utils.set_random_seed(0)
    model = cynet.Sequential([
        cynet.Input((28, 28, 1)),
        cynet.layers.Conv2D(16, 3, activation="relu"),
        cynet.layers.MaxPooling2D(2),
        cynet.layers.Flatten(),
        cynet.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((256, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 256)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    expected = model.predict(x, batch_size=64, verbose=0)
    a = rng.random((600, 600))
    expected_product = a @ a
    assert _openmp._team_size(2) == 2

    def child_result(threads=None):
        # what a child reports: its inherited thread count, its predictions and product compared
        # with the parent's, the team it really gets, and the same after set_num_threads
        out = {"inherited_threads": cynet.get_num_threads(), "handler": _openmp.fork_handler()}
        if threads is not None:
            cynet.set_num_threads(threads)
        out["threads"] = cynet.get_num_threads()
        out["predict_close"] = bool(np.allclose(model.predict(x, batch_size=64, verbose=0), expected,
                                                rtol=1e-5, atol=1e-6))
        out["team"] = _openmp._team_size(out["threads"])
        out["product_close"] = bool(np.allclose(a @ a, expected_product, rtol=1e-12))
        return out
""")


def _run(script):
    """Runs `script` after PARENT in a fresh interpreter; returns the JSON it prints last."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", PARENT + textwrap.dedent(script)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)   # the forked children too
        out, err = proc.communicate()
        pytest.fail(f"hung: no result within {TIMEOUT} s (a forked child waits for a thread that fork "
                    f"did not copy)\n{out}\n{err}")
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
    return json.loads(out.strip().splitlines()[-1])


def _check_child(r, threads):
    assert r["handler"]["registered"] and r["handler"]["last_fork_paused"], r
    assert r["inherited_threads"] == 2, r          # the child keeps the forking thread's setting
    assert r["threads"] == threads, r
    assert r["team"] == threads, r                 # a real team of that size, not a serial fallback
    assert r["predict_close"], r
    assert r["product_close"], r


def test_os_fork_after_fit_child_predicts_in_parallel():
    """os.fork() after fit on two threads: the child predicts what the parent predicted, on a
    team of two (the inherited setting), again after set_num_threads(2) and (1); its BLAS
    (OpenBLAS's own fork handler) works; and the parent goes on working after the fork."""
    r = _run("""
        results = []
        for threads in (None, 2, 1):
            rfd, wfd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(rfd)
                try:
                    os.write(wfd, json.dumps(child_result(threads)).encode())
                finally:
                    os._exit(0)
            os.close(wfd)
            with os.fdopen(rfd) as f:
                results.append(json.loads(f.read()))
            _, status = os.waitpid(pid, 0)
            assert status == 0, status
        parent = {"predict_close": bool(np.allclose(model.predict(x, batch_size=64, verbose=0), expected,
                                                    rtol=1e-5, atol=1e-6)),
                  "team": _openmp._team_size(2), "forks": _openmp.fork_handler()["forks"]}
        print(json.dumps({"children": results, "parent": parent}))
    """)
    for child, threads in zip(r["children"], (2, 2, 1)):
        _check_child(child, threads)
    assert r["parent"] == {"predict_close": True, "team": 2, "forks": 3}, r["parent"]


def test_multiprocessing_fork_pool_after_fit():
    """A multiprocessing Pool with the fork start method, created after fit: its workers
    predict what the parent predicted, on two threads, inherited or set by the worker."""
    r = _run("""
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map(child_result, [None, 2, None, 1])
        print(json.dumps(results))
    """)
    for child, threads in zip(r, (2, 2, 2, 1)):
        _check_child(child, threads)


def test_child_keeps_only_the_forking_threads_recurrent_scratch():
    """The child of a fork has only the forking thread: the scratch another thread of the parent
    kept is gone from the child (CPython clears the other threads' states, and their
    threading.local data with them), the forking thread's stays; and the scratch lock, which
    that other thread holds at the fork, is fresh in the child, whose recurrent kernels run
    (a new sequence length: new scratch, taken under the lock)."""
    r = _run("""
        import threading
        from cynet._kernels import rnn

        rng = np.random.default_rng(1)
        xs = rng.standard_normal((8, 20, 6)).astype(np.float32)
        lstm = cynet.Sequential([cynet.Input((None, 6)), cynet.layers.LSTM(32)])
        expected_h = lstm.predict(xs, verbose=0)
        expected_long = lstm.predict(np.concatenate([xs, xs], axis=1), verbose=0)
        rnn._clear_scratch()
        lstm.predict(xs, verbose=0)
        predicted, go, locked, hold = (threading.Event() for _ in range(4))

        def other():
            lstm.predict(xs, verbose=0)
            predicted.set()
            go.wait(60)
            with rnn._scratch_lock:       # held across the fork
                locked.set()
                hold.wait(60)

        t = threading.Thread(target=other)
        t.start()
        assert predicted.wait(60)
        parent = {"mine": rnn._scratch_bytes(False), "all": rnn._scratch_bytes()}
        go.set()
        assert locked.wait(60)
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                child = {"all": rnn._scratch_bytes(), "mine": rnn._scratch_bytes(False),
                         "predict_close": bool(np.allclose(lstm.predict(xs, verbose=0), expected_h,
                                                           rtol=1e-5, atol=1e-6)),
                         "long_close": bool(np.allclose(lstm.predict(np.concatenate([xs, xs], axis=1), verbose=0),
                                                        expected_long, rtol=1e-5, atol=1e-6))}
                os.write(wfd, json.dumps(child).encode())
            finally:
                os._exit(0)
        os.close(wfd)
        with os.fdopen(rfd) as f:
            child = json.loads(f.read())
        os.waitpid(pid, 0)
        hold.set()
        t.join()
        print(json.dumps({"parent": parent, "child": child}))
    """)
    parent, child = r["parent"], r["child"]
    assert 0 < parent["mine"] < parent["all"], r
    assert child["all"] == child["mine"] == parent["mine"], r
    assert child["predict_close"] and child["long_close"], r
