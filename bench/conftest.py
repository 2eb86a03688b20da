import numpy as np
import pytest

import cynet.kernels as K


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["cynet"] = K.info()


@pytest.fixture(params=["numpy", "cython"])
def backend(request):
    """Each benchmark runs once per backend; both land in the same group."""
    with K.use_backend(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)
