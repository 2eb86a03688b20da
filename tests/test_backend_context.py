"""`use_backend` holds for its own thread (contextvars context) only; `set_backend` is
process-wide."""
import asyncio
import importlib
import threading

import numpy as np
import pytest

import cynet.kernels as K
from cynet.kernels import _backend
from cynet.kernels._backend import impl

pytestmark = pytest.mark.skipif(not _backend.COMPILED, reason="needs the compiled kernels (two backends)")

TIMEOUT = 30


@pytest.fixture(autouse=True)
def _process_backend_cython():
    previous = _backend._backend
    K.set_backend("cython")
    yield
    K.set_backend(previous)


def _where(module):
    return "numpy" if module.__name__.endswith("_numpy") else "cython"


def _spy_conv(monkeypatch):
    """Records, per thread name, which backend served each conv2d_forward call."""
    seen = []
    for name in ("cynet._kernels.conv", "cynet._kernels.conv_numpy"):
        module = importlib.import_module(name)
        original = module.conv2d_forward

        def spy(*args, _original=original, _module=module, **kwargs):
            seen.append((threading.current_thread().name, _where(_module)))
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, "conv2d_forward", spy)
    return seen


def test_use_backend_in_one_thread_leaves_other_threads_alone(monkeypatch):
    """Thread A enters use_backend("numpy") and stays inside while thread B runs a kernel and
    looks at the backend; then B enters use_backend("numpy") itself while A, still inside its
    block, has its own choice intact. Events fix the interleaving."""
    seen = _spy_conv(monkeypatch)
    x = np.random.default_rng(0).random((2, 6, 6, 3), dtype=np.float32)
    w = np.random.default_rng(1).random((3, 3, 3, 4), dtype=np.float32)
    a_inside, b_checked, b_inside, a_checked = (threading.Event() for _ in range(4))
    report, errors = {}, []

    def run(name, body):
        def target():
            try:
                body()
            except BaseException as e:  # noqa: BLE001 - reported to the main thread
                errors.append((name, e))
                for event in (a_inside, b_checked, b_inside, a_checked):
                    event.set()
        return threading.Thread(target=target, name=name)

    def thread_a():
        with K.use_backend("numpy"):
            K.conv2d_forward(x, w)
            report["a_inside"] = K.get_backend()
            a_inside.set()
            assert b_checked.wait(TIMEOUT)
            report["a_after_b_entered"] = (K.get_backend(), _where(impl("conv")))
            K.conv2d_forward(x, w)
            a_checked.set()
            assert b_inside.wait(TIMEOUT)
        report["a_after_exit"] = K.get_backend()

    def thread_b():
        assert a_inside.wait(TIMEOUT)
        report["b_while_a_inside"] = (K.get_backend(), _where(impl("conv")))
        K.conv2d_forward(x, w)
        with K.use_backend("numpy"):
            b_checked.set()
            assert a_checked.wait(TIMEOUT)
            report["b_inside"] = K.get_backend()
            K.conv2d_forward(x, w)
        report["b_after_exit"] = K.get_backend()
        b_inside.set()

    threads = [run("A", thread_a), run("B", thread_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not errors, errors
    assert report == {
        "a_inside": "numpy",
        "b_while_a_inside": ("cython", "cython"),     # the leak: this was ("numpy", "numpy")
        "a_after_b_entered": ("numpy", "numpy"),
        "b_inside": "numpy",
        "a_after_exit": "cython",
        "b_after_exit": "cython",
    }
    assert seen == [("A", "numpy"), ("B", "cython"), ("A", "numpy"), ("B", "numpy")]
    assert K.get_backend() == "cython"


def test_thread_started_inside_the_block_uses_the_process_backend():
    """A new thread starts with an empty context: the process-wide backend."""
    got = []
    with K.use_backend("numpy"):
        t = threading.Thread(target=lambda: got.append((K.get_backend(), _where(impl("pool")))))
        t.start()
        t.join(TIMEOUT)
        assert K.get_backend() == "numpy"
    assert got == [("cython", "cython")]


def test_set_backend_is_process_wide_and_a_block_keeps_its_choice():
    seen = {}
    done = threading.Event()

    def other():
        seen["other"] = K.get_backend()
        done.set()

    K.set_backend("numpy")
    t = threading.Thread(target=other)
    t.start()
    assert done.wait(TIMEOUT)
    t.join(TIMEOUT)
    assert seen["other"] == "numpy"
    with K.use_backend("cython"):
        K.set_backend("numpy")                  # the process-wide setting changes ...
        assert K.get_backend() == "cython"      # ... this block's choice holds
        assert _where(impl("norm")) == "cython"
    assert K.get_backend() == "numpy"           # and is what remains after the block
    assert K.info()["backend"] == "numpy"


def test_nested_blocks_restore_and_errors_restore():
    with K.use_backend("numpy"):
        with K.use_backend("cython"):
            assert K.get_backend() == "cython"
        assert K.get_backend() == "numpy"
        with pytest.raises(RuntimeError):
            with K.use_backend("cython"):
                raise RuntimeError
        assert K.get_backend() == "numpy"
        with pytest.raises(ValueError, match="backend must be one of"):
            with K.use_backend("torch"):
                pass
        assert K.get_backend() == "numpy"
    assert K.get_backend() == "cython"


def test_asyncio_tasks_inherit_the_block_and_keep_their_own():
    """Tasks copy the context they are created in: two concurrent tasks, one inside a block,
    interleaved on one thread, each sees its own backend."""
    async def inside(gate, log):
        with K.use_backend("numpy"):
            gate.set()
            await asyncio.sleep(0.01)
            log.append(("inside", K.get_backend()))

    async def outside(gate, log):
        await gate.wait()
        log.append(("outside", K.get_backend()))

    async def main():
        log, gate = [], asyncio.Event()
        await asyncio.gather(inside(gate, log), outside(gate, log))
        with K.use_backend("numpy"):
            child = await asyncio.create_task(_get())
        return log, child

    async def _get():
        return K.get_backend()

    log, child = asyncio.run(main())
    assert log == [("outside", "cython"), ("inside", "numpy")]
    assert child == "numpy"
