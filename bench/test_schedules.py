"""Learning-rate schedules: what a very long PiecewiseConstantDecay costs.

    pytest bench/test_schedules.py --benchmark-only

Group "schedules": deserializing a PiecewiseConstantDecay with a million boundaries (validation of
every boundary and value, as a loaded file would), and 10,000 lookups into it (a bisection each:
tests/optimizers/test_schedules.py counts its comparisons). Measured earlier: load about 0.15 s,
10,000 lookups about 15 ms; a linear scan took 1.5 s to load and about 8 ms per lookup.
"""
import json

import pytest

from cynet.optimizers import schedules

N = 10**6


@pytest.fixture(scope="module")
def million_config():
    return json.loads(json.dumps({
        "class_name": "PiecewiseConstantDecay",
        "config": {"boundaries": list(range(0, 2 * N, 2)), "values": [1.0 / (i + 1) for i in range(N + 1)],
                   "name": "PiecewiseConstant"}}))


@pytest.mark.benchmark(group="schedules")
def test_piecewise_constant_load_million(benchmark, million_config):
    schedule = benchmark(schedules.deserialize, million_config)
    assert len(schedule.boundaries) == N


@pytest.mark.benchmark(group="schedules")
def test_piecewise_constant_10k_lookups(benchmark, million_config):
    schedule = schedules.deserialize(million_config)
    steps = [i * 199 for i in range(10_000)]
    values = benchmark(lambda: [schedule(step) for step in steps])
    assert values[0] == 1.0 and values[-1] < values[0]
