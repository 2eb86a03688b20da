"""The busy-machine thread policy (cynet/kernels/_load.py, cynet.kernels.adapt_threads): the load
signal from simulated /proc/stat readings, the decisions it leads to, and how it meets the thread
count the user sets."""
import numpy as np
import pytest

import cynet
from cynet.kernels import _backend
from cynet.kernels._load import LoadMonitor

omp = _backend._compiled.get("_openmp")


class FakeMachine:
    """A machine of `cores` cores over time: others keep `others` cores busy, this process `own`."""

    def __init__(self, cores=2, hz=100):
        self.cores, self.hz, self.t, self.busy, self.total, self.own = cores, hz, 0.0, 0, 0, 0.0

    def advance(self, seconds, others, own):
        self.t += seconds
        jiffies = seconds * self.hz
        self.total += int(round(jiffies * self.cores))
        self.busy += int(round(jiffies * (others + own)))
        self.own += seconds * own

    def monitor(self):
        return LoadMonitor(cores=self.cores, read_stat=lambda: (self.busy, self.total), own_cpu=lambda: self.own,
                           clock=lambda: self.t, ticks=self.hz)


@pytest.mark.parametrize("others, own, expected_others, free", [
    (0.0, 2.0, 0.0, 2),     # idle machine, cynet on both cores: keep both
    (1.0, 1.0, 1.0, 1),     # one core taken by another process: one thread
    (0.4, 1.6, 0.4, 2),     # a little background work: still two
    (0.7, 1.3, 0.7, 1),     # most of a core taken
    (2.0, 0.0, 2.0, 1),     # everything taken: never fewer than one
])
def test_load_signal_and_decision(others, own, expected_others, free):
    m = FakeMachine()
    mon = m.monitor()
    assert mon.sample() is None                       # the first reading only starts the interval
    m.advance(1.0, others, own)
    assert mon.sample() == pytest.approx(expected_others, abs=0.02)
    assert mon.free_cores(2) == free
    assert mon.free_cores(1) == 1


def test_samples_at_most_once_per_interval():
    m = FakeMachine()
    mon = m.monitor()
    mon.sample()
    m.advance(0.02, 1.0, 1.0)
    assert mon.sample() is None                       # too soon: no new reading
    m.advance(0.04, 1.0, 1.0)
    assert mon.sample() == pytest.approx(1.0, abs=0.05)   # the first one comes early (first_interval)
    m.advance(0.1, 1.0, 1.0)
    assert mon.sample() is None                       # then one per interval
    m.advance(0.2, 1.0, 1.0)
    assert mon.sample() == pytest.approx(1.0, abs=0.02)


def _decide(m, mon, seconds, others, own, wanted=2):
    m.advance(seconds, others, own)
    assert mon.sample() is not None
    return mon.threads(wanted)


def test_teams_shrink_at_once_and_grow_only_after_the_cores_stay_free():
    m = FakeMachine()
    mon = m.monitor()
    mon.sample()
    assert _decide(m, mon, 0.25, 0.0, 2.0) == 2        # idle: every configured thread
    assert _decide(m, mon, 0.25, 1.0, 1.0) == 1        # a core taken: one thread at the first sample
    assert _decide(m, mon, 0.25, 0.0, 1.0) == 1        # free again, but not for long enough
    assert _decide(m, mon, 0.25, 1.0, 1.0) == 1        # taken again: the count of free time restarts
    assert _decide(m, mon, 0.25, 0.0, 1.0) == 1
    assert _decide(m, mon, 0.25, 0.0, 1.0) == 1
    assert _decide(m, mon, 0.25, 0.0, 1.0) == 2        # free for 0.75 s (raise_after: 0.6): both threads
    assert _decide(m, mon, 0.25, 0.0, 2.0) == 2


def test_a_brief_lull_of_the_busy_process_does_not_bring_back_the_second_thread():
    m = FakeMachine()
    mon = m.monitor()
    mon.sample()
    seen = [_decide(m, mon, 0.25, others, 1.0) for others in [1.0, 0.1, 1.0, 0.2, 0.9, 0.0, 1.0]]
    assert seen == [1] * 7


def test_the_decision_never_exceeds_the_configured_count_and_never_drops_below_one():
    m = FakeMachine(cores=8)
    mon = m.monitor()
    mon.sample()
    assert _decide(m, mon, 0.25, 0.0, 4.0, wanted=4) == 4
    assert _decide(m, mon, 0.25, 6.0, 2.0, wanted=4) == 2    # 8 cores, 6 taken: 2 left
    assert _decide(m, mon, 0.25, 8.0, 0.5, wanted=4) == 1
    assert _decide(m, mon, 1.0, 0.0, 1.0, wanted=4) == 4    # one long free interval counts as a whole
    assert mon.threads(3) == 3                              # the configured count went down


def test_an_unreadable_proc_stat_changes_nothing():
    def broken():
        raise OSError("no /proc")
    mon = LoadMonitor(cores=2, read_stat=broken, clock=lambda: 10.0)
    assert mon.sample() is None and mon.free_cores(2) == 2


@pytest.mark.skipif(omp is None or not omp.openmp_enabled(), reason="needs the OpenMP build")
def test_adapt_threads_caps_teams_and_blas_then_lifts_the_cap(monkeypatch):
    m = FakeMachine()
    mon = m.monitor()
    calls = []

    class Blas:
        def set_num_threads(self, n):
            calls.append(n)
    monkeypatch.setattr(_backend, "_monitor", mon)
    monkeypatch.setattr(_backend, "_blas", [Blas()])
    monkeypatch.setattr(_backend, "_adaptive", True)
    old = cynet.get_num_threads()
    omp.set_num_threads(2)   # the default count (set_num_threads would end the adaptive policy)
    try:
        mon.sample()
        m.advance(0.5, 1.0, 1.0)
        _backend.adapt_threads()
        assert omp.load_cap() == 1 and calls == [1]
        assert omp.threads_for_work(10 ** 9, "stream") == 1   # every team capped
        m.advance(0.2, 0.0, 1.0)
        _backend.adapt_threads()
        assert omp.load_cap() == 1 and calls == [1]            # free, but not yet for raise_after
        m.advance(0.5, 0.0, 2.0)
        _backend.adapt_threads()
        assert omp.load_cap() == 0 and calls == [1, 2]
        assert omp.threads_for_work(10 ** 9, "stream") == 2
    finally:
        omp.set_load_cap(0)
        omp.set_num_threads(old)


def test_a_thread_count_the_user_sets_ends_the_adaptive_policy(monkeypatch):
    monkeypatch.setattr(_backend, "_adaptive", True)
    old = cynet.get_num_threads()
    cynet.set_num_threads(old)
    assert _backend._adaptive is False
    if omp is not None:
        assert omp.load_cap() == 0
    with pytest.raises(ValueError):
        omp.set_load_cap(-1) if omp is not None else (_ for _ in ()).throw(ValueError())


def test_fit_consults_the_policy_between_batches(monkeypatch):
    seen = []
    monkeypatch.setattr("cynet.trainers.trainer.adapt_threads", lambda: seen.append(1))
    model = cynet.Sequential([cynet.Input((3,)), cynet.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.ones((40, 3), "float32"), np.ones((40, 1), "float32"), batch_size=8, epochs=1, verbose=0)
    assert len(seen) == 5


@pytest.mark.skipif(omp is None or not omp.openmp_enabled(), reason="needs the OpenMP build")
def test_turning_the_policy_off_lifts_the_cap_of_the_blas_too(monkeypatch):
    m = FakeMachine()
    mon = m.monitor()
    calls = []

    class Blas:
        def set_num_threads(self, n):
            calls.append(n)
    monkeypatch.setattr(_backend, "_monitor", mon)
    monkeypatch.setattr(_backend, "_blas", [Blas()])
    monkeypatch.setattr(_backend, "_adaptive", True)
    old = cynet.get_num_threads()
    omp.set_num_threads(2)
    try:
        mon.sample()
        m.advance(0.5, 1.0, 1.0)
        _backend.adapt_threads()
        assert omp.load_cap() == 1 and calls == [1]
        _backend.set_adaptive_threads(False)
        assert omp.load_cap() == 0 and calls == [1, 2]     # the BLAS back on the configured count
        _backend.set_adaptive_threads(True)
        m.advance(0.2, 0.0, 2.0)
        _backend.adapt_threads()                          # a fresh decision: no waiting for free time
        assert omp.load_cap() == 0 and calls == [1, 2]
    finally:
        omp.set_load_cap(0)
        omp.set_num_threads(old)


def test_evaluate_consults_the_policy_between_batches_and_predict_does_not(monkeypatch):
    """(predict serves many threads at once; changing OpenBLAS's thread count while another thread
    is inside a BLAS call is not safe, so predict keeps the count fit or evaluate left.)"""
    seen = []
    monkeypatch.setattr("cynet.trainers.trainer.adapt_threads", lambda: seen.append(1))
    model = cynet.Sequential([cynet.Input((3,)), cynet.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.ones((40, 3), "float32"), np.ones((40, 1), "float32")
    model.evaluate(x, y, batch_size=8, verbose=0)
    assert len(seen) == 5
    model.predict(x, batch_size=16, verbose=0)
    assert len(seen) == 5
