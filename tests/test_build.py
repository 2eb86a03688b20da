"""The tests must exercise the compiled kernels, not a silently imported source tree."""
import os

import pytest

import cynet
import cynet.kernels as K

SKIP = os.environ.get("CYNET_ALLOW_UNCOMPILED", "") not in ("", "0")


@pytest.mark.skipif(SKIP, reason="CYNET_ALLOW_UNCOMPILED is set")
def test_extension_is_compiled():
    info = K.info()
    assert info["compiled"], f"compiled kernels missing: {info['missing_modules']}"
    assert info["backend"] == "cython" or os.environ.get("CYNET_BACKEND") == "numpy"


@pytest.mark.skipif(SKIP or os.environ.get("CYNET_NO_OPENMP"), reason="OpenMP not required here")
def test_openmp_compiled_in():
    assert K.info()["openmp"], "the extension was built without OpenMP"


def test_info_keys_and_types():
    info = K.info()
    assert isinstance(info["backend"], str)
    assert isinstance(info["compiled"], bool)
    assert isinstance(info["openmp"], bool)
    assert isinstance(info["threads"], int) and info["threads"] >= 1
    assert isinstance(info["blas"], str)


def test_backend_switching_and_context_manager():
    start = K.get_backend()
    with K.use_backend("numpy"):
        assert K.get_backend() == "numpy"
        with K.use_backend("cython"):
            assert K.get_backend() == "cython"
        assert K.get_backend() == "numpy"
    assert K.get_backend() == start
    with pytest.raises(ValueError, match="backend must be one of"):
        K.set_backend("torch")
    assert K.get_backend() == start


def test_set_num_threads_round_trip():
    before = cynet.get_num_threads()
    try:
        cynet.set_num_threads(1)
        assert cynet.get_num_threads() == 1
        assert K.info()["blas_threads"] == 1
        if K.info()["openmp"] and (os.cpu_count() or 1) >= 2:
            cynet.set_num_threads(2)
            assert cynet.get_num_threads() == 2
    finally:
        cynet.set_num_threads(before)
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            cynet.set_num_threads(bad)


def test_wait_policy_defaults_to_passive():
    assert os.environ.get("OMP_WAIT_POLICY")
