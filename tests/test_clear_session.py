"""Bounded recurrent scratch, released when its thread ends, and `cynet.utils.clear_session()`
(= `cynet.backend.clear_session()`), which releases every cache cynet holds and restarts the
auto names.

RSS is read from /proc/self/statm: the recurrent scratch is anonymous mmap'ed memory, so a
dropped buffer's pages leave the process at once, whatever malloc does with its arenas.
"""
import gc
import os
import threading
import weakref

import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet.kernels import _backend
from cynet.utils import clear_session

compiled = pytest.mark.skipif(not _backend.COMPILED, reason="needs the compiled kernels")
linux = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads /proc/self/statm (Linux)")

MiB = 1 << 20
TIMEOUT = 60
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss():
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _rnn():
    return _backend._compiled["rnn"]


def _lstm_inputs(N=32, T=100, D=32, U=500, seed=0):
    """By default the LSTM(500) of the issue: ~31 MiB of scratch per thread (gate gradients,
    stacked inputs, per-step products), all under the 64 MiB per-buffer bound."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D), dtype=np.float32)
    k = rng.standard_normal((D, 4 * U), dtype=np.float32) * 0.1
    rk = rng.standard_normal((U, 4 * U), dtype=np.float32) * 0.05
    b = rng.standard_normal(4 * U, dtype=np.float32) * 0.1
    return x, k, rk, b


def _in_fresh_thread(inputs):
    """_lstm_step in a new thread: the threads it is compared with start from OpenMP's default
    thread count, which an earlier test may have changed for the main thread."""
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", _lstm_step(inputs)))
    t.start()
    t.join()
    return out["r"]


def _lstm_step(inputs):
    """Forward and backward through the compiled kernels; returns the gradients."""
    x, k, rk, b = inputs
    with K.use_backend("cython"):
        hs, cs, gates = K.lstm_forward(x, k, rk, b)
        grads = K.lstm_backward(np.ones_like(hs), None, x, k, rk, None, None, hs, cs, gates)
    return [hs] + [g for g in grads if g is not None]


@pytest.fixture
def scratch_limits():
    """Restores the default bounds and drops all scratch around a test."""
    clear_session(free_memory=False)
    previous = _rnn()._scratch_limits()
    yield _rnn()._scratch_limits
    _rnn()._scratch_limits(*previous)
    clear_session(free_memory=False)


def _run_threads(n, body, hold):
    """n threads run body(i) and then wait, alive, until `hold` is set. Returns (threads,
    results, errors, ready) where ready is set when all have finished their body."""
    results, errors = [None] * n, []
    barrier = threading.Barrier(n + 1)

    def target(i):
        try:
            results[i] = body(i)
        except BaseException as e:  # noqa: BLE001 - reported to the main thread
            errors.append(e)
        barrier.wait(TIMEOUT)
        hold.wait(TIMEOUT)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait(TIMEOUT)
    return threads, results, errors


# ---------------------------------------------------------------------------------- the bounds

@compiled
def test_default_bounds():
    assert _rnn()._scratch_limits() == (64 * MiB, 128 * MiB, 256 * MiB)
    with pytest.raises(ValueError, match="non-negative integers"):
        _rnn()._scratch_limits(per_thread=-1)


@compiled
def test_scratch_per_thread_is_bounded(scratch_limits):
    inputs = _lstm_inputs(N=16, T=40, U=128)
    reference = _lstm_step(inputs)
    need = _rnn()._scratch_bytes(all_threads=False)
    assert need > 1 * MiB
    clear_session(free_memory=False)
    scratch_limits(per_thread=need // 3)
    got = _lstm_step(inputs)
    kept = _rnn()._scratch_bytes(all_threads=False)
    assert 0 < kept <= need // 3
    for a, b in zip(got, reference):
        np.testing.assert_array_equal(a, b)        # what is not kept is allocated per call
    _lstm_step(inputs)                             # and a second call keeps no more
    assert _rnn()._scratch_bytes(all_threads=False) == kept


@compiled
def test_scratch_of_all_threads_is_bounded(scratch_limits):
    """Six threads (the issue's six pool threads kept 6 x 62 MiB after an LSTM(500) at T=200):
    together they keep at most the overall bound, and compute the same."""
    inputs = _lstm_inputs(N=16, T=40, U=128)
    reference = _lstm_step(inputs)
    need = _rnn()._scratch_bytes(all_threads=False)
    reference = _in_fresh_thread(inputs)
    clear_session(free_memory=False)
    total = int(2.5 * need)
    scratch_limits(total=total)
    hold = threading.Event()
    threads, results, errors = _run_threads(6, lambda i: _lstm_step(inputs), hold)
    try:
        assert not errors, errors
        kept = _rnn()._scratch_bytes()
        assert need <= kept <= total
    finally:
        hold.set()
        for t in threads:
            t.join(TIMEOUT)
    for got in results:
        for a, b in zip(got, reference):
            np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------- release

@compiled
@linux
def test_scratch_released_when_its_thread_ends(scratch_limits):
    """The threading.local holding a thread's scratch is freed when the thread ends, and the
    pages leave the process (RSS falls by what the thread kept), also when what the threads
    computed outlives them (the results, kept here, lie above the scratch in the threads'
    malloc arenas: scratch from malloc stayed resident there once glibc had raised its mmap
    threshold, as it does when a large block is freed, done here first as in any long run)."""
    big = np.ones(31 * MiB // 8)
    del big
    inputs = _lstm_inputs()
    hold = threading.Event()
    threads, results, errors = _run_threads(2, lambda i: (_lstm_step(inputs),
                                                         _rnn()._scratch_bytes(all_threads=False)), hold)
    assert not errors, errors
    kept = _rnn()._scratch_bytes()
    assert kept == sum(r[1] for r in results) and kept > 40 * MiB
    alive = _rss()
    hold.set()
    for t in threads:
        t.join(TIMEOUT)
    assert _rnn()._scratch_bytes() == 0
    released = alive - _rss()
    assert released >= 0.9 * kept, f"RSS fell by {released / MiB:.1f} MiB; the threads kept {kept / MiB:.1f} MiB"


@compiled
@linux
def test_clear_session_releases_the_scratch_of_every_thread(scratch_limits):
    """clear_session() from the main thread drops the scratch of threads that are still
    alive (a pool's idle workers), and they compute the same afterwards."""
    inputs = _lstm_inputs()
    reference = _in_fresh_thread(inputs)
    hold, again = threading.Event(), threading.Event()
    second = {}

    def body(i):
        return _lstm_step(inputs)

    threads, results, errors = _run_threads(2, body, hold)
    try:
        assert not errors, errors
        kept = _rnn()._scratch_bytes()
        assert kept > 40 * MiB
        before = _rss()
        clear_session()
        assert _rnn()._scratch_bytes() == 0
        released = before - _rss()
        assert released >= 0.9 * kept, f"RSS fell by {released / MiB:.1f} MiB; {kept / MiB:.1f} MiB were kept"
    finally:
        hold.set()
        for t in threads:
            t.join(TIMEOUT)

    def later():
        second["out"] = _lstm_step(inputs)
        again.set()

    t = threading.Thread(target=later)
    t.start()
    t.join(TIMEOUT)
    assert again.is_set()
    for got in results + [second["out"]]:
        for a, b in zip(got, reference):
            np.testing.assert_array_equal(a, b)


def _lstm_model(units=16):
    model = cynet.Sequential([cynet.Input((12, 5)), cynet.layers.LSTM(units), cynet.layers.Dense(1)])
    model.compile(optimizer=cynet.optimizers.RMSprop(0.01, momentum=0.9), loss="mse")
    return model


def _xy(n=64):
    rng = np.random.default_rng(3)
    return rng.standard_normal((n, 12, 5)).astype(np.float32), rng.standard_normal((n, 1)).astype(np.float32)


def test_clear_session_frees_optimizer_buffers_and_holds_no_optimizer():
    x, y = _xy()
    model = _lstm_model()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    optimizer = model.optimizer
    assert optimizer._buffers
    clear_session(free_memory=False)
    assert optimizer._buffers == {}
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)    # the buffers come back
    assert optimizer._buffers
    ref = weakref.ref(optimizer)
    del model, optimizer
    gc.collect()
    assert ref() is None                                     # the registry holds them weakly


@compiled
def test_clear_session_frees_the_caching_allocator_blocks():
    memory = _backend._compiled["_memory"]
    with memory.caching():
        a = np.ones(1 << 18)                                 # 2 MiB
        del a
        assert memory.stats()["cached_bytes"] >= 2 * MiB
        clear_session()                                      # inside a scope: the free blocks go
        assert memory.stats()["cached_bytes"] == 0
        b = np.ones(1 << 18)
        del b
        assert memory.stats()["cached_bytes"] >= 2 * MiB     # and it goes on caching
    assert memory.stats()["cached_bytes"] == 0


def test_clear_session_during_fit_changes_nothing():
    """Caches dropped after every batch (the next call rebuilds them): the same weights."""
    x, y = _xy()
    weights = []
    for clear in (False, True):
        cynet.utils.set_random_seed(7)
        model = _lstm_model()
        clearing = cynet.callbacks.LambdaCallback(on_batch_end=lambda batch, logs: clear_session(False))
        callbacks = [clearing] if clear else []
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=callbacks)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_clear_session_restarts_auto_names():
    clear_session(free_memory=False)
    names = [cynet.layers.Dense(2).name for _ in range(3)]
    assert names == ["dense", "dense_1", "dense_2"]
    clear_session(free_memory=False)
    assert cynet.layers.Dense(2).name == "dense"
    first = cynet.Sequential([cynet.Input((3,)), cynet.layers.Dense(1)]).name
    clear_session(free_memory=False)
    assert cynet.Sequential([cynet.Input((3,)), cynet.layers.Dense(1)]).name == first


def test_keras_backend_module():
    import cynet as keras

    assert keras.backend.clear_session is keras.utils.clear_session
    assert keras.backend.floatx() == "float32"
    assert keras.backend.epsilon() == 1e-7
    assert keras.backend.image_data_format() == "channels_last"
    keras.backend.clear_session()
    keras.backend.clear_session(free_memory=False)
