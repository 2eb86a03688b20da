"""The caching allocator the training loop runs under (cynet._kernels._memory, array_cache)."""
import resource
import threading

import numpy as np
import pytest

import cynet
from cynet import layers
from cynet.kernels._backend import array_cache
from cynet.utils.rng import set_random_seed

mem = pytest.importorskip("cynet._kernels._memory")

BIG = 3 * mem.MIN_BLOCK // 4          # float32 elements: a block of 3 x the smallest cached size


try:
    from numpy._core.multiarray import get_handler_name
except ImportError:   # NumPy 1.x
    from numpy.core.multiarray import get_handler_name


def handler_name(a=None):
    return get_handler_name() if a is None else get_handler_name(a)


def test_the_handler_is_active_only_inside_the_scope():
    outside = handler_name()
    with mem.caching():
        assert handler_name() == "cynet_caching_allocator"
        a = np.empty(10)
        assert handler_name(a) == "cynet_caching_allocator"
    assert handler_name() == outside
    assert handler_name(np.empty(10)) == outside
    assert mem.stats()["cached_blocks"] == 0


def test_a_freed_block_serves_the_next_request_of_its_size():
    with mem.caching():
        a = np.ones(BIG, np.float32)
        address = a.ctypes.data
        before = mem.stats()
        del a
        assert mem.stats()["cached_bytes"] == before["cached_bytes"] + BIG * 4
        b = np.empty(BIG, np.float32)
        assert b.ctypes.data == address
        assert mem.stats()["hits"] == before["hits"] + 1
        c = np.empty(BIG + 1, np.float32)     # another size: not from the cache
        assert c.ctypes.data != address


def test_zeros_from_a_reused_dirty_block_are_zeros():
    with mem.caching():
        a = np.full(BIG, 7.0, np.float32)
        address = a.ctypes.data
        del a
        z = np.zeros(BIG, np.float32)
        assert z.ctypes.data == address
        assert not z.any()


def test_small_blocks_are_not_cached():
    with mem.caching():
        before = mem.stats()
        a = np.ones(mem.MIN_BLOCK // 8 - 64, np.float32)
        del a
        assert mem.stats()["cached_blocks"] == before["cached_blocks"]


def test_arrays_outlive_the_scope_and_the_cache_is_emptied():
    with mem.caching():
        kept = np.arange(BIG, dtype=np.float32)
        dropped = np.ones(BIG, np.float32)
        del dropped
        assert mem.stats()["cached_blocks"] >= 1
    assert mem.stats() | {"hits": 0, "misses": 0} == {"cached_bytes": 0, "cached_blocks": 0, "hits": 0, "misses": 0}
    np.testing.assert_array_equal(kept, np.arange(BIG, dtype=np.float32))
    del kept                                   # freed, not cached: no scope is open
    assert mem.stats()["cached_blocks"] == 0


def test_nested_scopes_keep_the_cache_until_the_outer_one_exits():
    with mem.caching():
        with mem.caching():
            del_me = np.ones(BIG, np.float32)
            del del_me
        assert mem.stats()["cached_blocks"] >= 1
        assert handler_name() == "cynet_caching_allocator"
    assert mem.stats()["cached_blocks"] == 0


def test_the_limit_bounds_the_cache():
    limit = 8 * BIG * 4
    with mem.caching(limit=limit):
        arrays = [np.ones(BIG + i, np.float32) for i in range(20)]
        del arrays
        assert mem.stats()["cached_bytes"] <= limit
        huge = np.ones(limit // 4 + 1024, np.uint8)   # over limit / 4: freed at once
        before = mem.stats()["cached_bytes"]
        del huge
        assert mem.stats()["cached_bytes"] == before


def test_realloc_keeps_the_data():
    with mem.caching():
        a = np.arange(BIG, dtype=np.float32)
        a.resize(2 * BIG, refcheck=False)
        np.testing.assert_array_equal(a[:BIG], np.arange(BIG, dtype=np.float32))
        a.resize(BIG // 2, refcheck=False)
        np.testing.assert_array_equal(a, np.arange(BIG // 2, dtype=np.float32))
        del a
        b = np.zeros(BIG // 2, np.float32)      # the realloc'ed block is cached by its new size
        assert not b.any()


def test_threads_allocate_and_free_concurrently():
    """Two threads under their own scopes, and frees on a thread without one."""
    errors, handoff = [], []

    def work(seed):
        rng = np.random.default_rng(seed)
        try:
            with mem.caching():
                for i in range(300):
                    n = BIG + int(rng.integers(0, 4)) * 1024
                    a = np.full(n, float(i), np.float32)
                    if not (a == i).all():
                        errors.append("corrupted")
                    if i % 7 == 0:
                        handoff.append(a)
        except Exception as exc:   # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(s,)) for s in range(2)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        while handoff:
            handoff.pop()          # freed here, possibly while the other threads cache
    for t in threads:
        t.join()
    handoff.clear()
    assert errors == []
    assert mem.stats()["cached_blocks"] == 0


def _cnn():
    set_random_seed(0)
    model = cynet.Sequential([cynet.Input(shape=(28, 28, 1)), layers.Conv2D(16, 3, padding="same", activation="relu"),
                              layers.AveragePooling2D(2), layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_fit_reuses_its_temporaries_instead_of_faulting_them_in(monkeypatch):
    """A second epoch under the cache takes its large temporaries from it (hits, no misses) and
    page-faults far less than the same epoch through plain malloc."""
    rng = np.random.default_rng(0)
    x = rng.random((512, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 512)

    def second_epoch_faults(model):
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)
        start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        before = mem.stats()
        model.fit(x, y, batch_size=64, epochs=2, verbose=0)
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start, before, mem.stats()

    cached_faults, before, after = second_epoch_faults(_cnn())
    assert after["hits"] - before["hits"] > 8 * 16
    assert (after["misses"] - before["misses"]) * 10 < after["hits"] - before["hits"]
    assert after["cached_blocks"] == 0
    monkeypatch.setattr("cynet.models.array_cache", lambda: np.errstate())   # plain malloc
    plain_faults, _, _ = second_epoch_faults(_cnn())
    assert cached_faults * 3 < plain_faults, (cached_faults, plain_faults)


def test_predict_and_evaluate_return_arrays_that_outlive_the_cache():
    model = _cnn()
    x = np.random.default_rng(1).random((300, 28, 28, 1), dtype=np.float32)
    out = model.predict(x, batch_size=64, verbose=0)
    assert handler_name(out) == "cynet_caching_allocator" and mem.stats()["cached_blocks"] == 0
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    with array_cache():
        again = model.predict(x, batch_size=64, verbose=0)
    np.testing.assert_array_equal(out, again)
    assert np.isfinite(model.evaluate(x, np.zeros(300, np.int64), verbose=0))
