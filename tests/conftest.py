import os

# The busy-machine thread policy (cynet/kernels/_load.py) would change team sizes with the load of
# whatever else runs beside the tests; they run on fixed thread counts (its own tests simulate load).
os.environ.setdefault("CYNET_ADAPTIVE_THREADS", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture(params=["cython", "numpy"])
def backend(request):
    """Run the test body on each kernel backend."""
    import cynet.kernels as K

    with K.use_backend(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
