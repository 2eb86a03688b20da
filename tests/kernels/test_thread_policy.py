"""The thread policy (cynet/_kernels/_openmp.pyx, threads_for): one table says how much work of
each kind a thread must get before a kernel's parallel region starts a team."""
import re
from pathlib import Path

import pytest

import cynet
from cynet.kernels import _backend

omp = _backend._compiled.get("_openmp")
pytestmark = pytest.mark.skipif(omp is None, reason="compiled kernels not built")

KERNELS = Path(cynet.__file__).parent / "_kernels"


@pytest.fixture
def two_threads():
    old = cynet.get_num_threads()
    cynet.set_num_threads(2)
    yield
    cynet.set_num_threads(old)


def test_team_size_follows_the_table(two_threads):
    expected = 2 if omp.openmp_enabled() else 1
    per_thread = omp.thread_policy()["stream"]
    assert omp.threads_for_work(per_thread - 1, "stream") == 1
    assert omp.threads_for_work(2 * per_thread, "stream") == expected
    assert omp.threads_for_work(10 ** 12, "rows") == expected   # never more than configured
    assert omp.threads_for_work(0, "conv") == 1


def test_set_thread_policy_changes_and_restores(two_threads):
    old = omp.set_thread_policy(window=1)
    try:
        assert omp.thread_policy()["window"] == 1
        assert omp.threads_for_work(2, "window") == (2 if omp.openmp_enabled() else 1)
    finally:
        omp.set_thread_policy(**old)
    assert omp.thread_policy() == old


@pytest.mark.parametrize("kwargs, match", [
    ({"nonsense": 4}, "unknown cost kind 'nonsense'"),
    ({"stream": 0}, "stream must be a positive integer"),
    ({"rows": 2.5}, "rows must be a positive integer"),
    ({"conv": True}, "conv must be a positive integer"),
])
def test_set_thread_policy_rejects_bad_values(kwargs, match):
    before = omp.thread_policy()
    with pytest.raises(ValueError, match=match):
        omp.set_thread_policy(stream=7, **kwargs) if "stream" not in kwargs else omp.set_thread_policy(**kwargs)
    assert omp.thread_policy() == before     # nothing half-applied


def test_conv_tuning_knob_is_the_policy():
    conv = _backend._compiled["conv"]
    old = conv._set_tuning(min_work=123)
    try:
        assert omp.thread_policy()["conv"] == 123
    finally:
        conv._set_tuning(*old)
    assert omp.thread_policy()["conv"] == old[2]


def test_no_kernel_keeps_its_own_threshold():
    """Every parallel region sizes its team by threads_for: no kernel source computes a team
    from omp_get_max_threads and a threshold of its own."""
    for src in KERNELS.glob("*.pyx"):
        text = src.read_text()
        for m in re.finditer(r"num_threads\s*=\s*([^)\n]+\)?)", text):
            arg = m.group(1)
            assert "threads_for" in arg or re.fullmatch(r"\w+\)?", arg.strip()), (src.name, arg)
        assert "n_threads(" not in text, src.name
