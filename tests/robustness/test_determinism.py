"""Determinism: seeded training is reproducible, bit for bit at a fixed thread count.

- One thread: two seeded runs in one process (with the heap, the global random generators and
  the kernels' scratch memory disturbed in between) give bit-identical weights, optimizer
  state, history and predictions, for an MLP with dropout, a CNN with batch normalization and
  an LSTM, trained with Adam.
- Two threads: the results agree with the one-thread run to float32 tolerance, and two
  two-thread runs are again bit-identical (every parallel loop has a static schedule and every
  reduction a fixed order for a given thread count).
- Every public kernel (the leak check's argument sets, bench/kernel_cases/, whose large sets start
  an OpenMP team) returns bit-identical results on repeated calls, and agrees across thread counts.

The thread count is process state: the `using_threads` context manager restores the OpenMP
and BLAS settings after each use, also when the body raises.
"""
import contextlib
import importlib.util
import pathlib

import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet import layers
from cynet.optimizers import Adam
from cynet.utils.rng import set_random_seed

try:
    import threadpoolctl
except ImportError:  # pragma: no cover - a declared dependency
    threadpoolctl = None

ROOT = pathlib.Path(__file__).resolve().parents[2]
OPENMP = K.info()["openmp"]
needs_openmp = pytest.mark.skipif(not OPENMP, reason="the kernels were built without OpenMP")


def _blas_threads():
    return K.info()["blas_threads"]


@contextlib.contextmanager
def using_threads(n):
    """Run the block with `n` kernel (OpenMP) and BLAS threads; restore both afterwards."""
    before = (K.get_num_threads(), _blas_threads())
    try:
        K.set_num_threads(n)
        if OPENMP:
            assert K.get_num_threads() == n
        yield
    finally:
        K.set_num_threads(before[0])
        if threadpoolctl is not None:
            threadpoolctl.threadpool_limits(limits=before[1], user_api="blas")


def test_using_threads_restores_the_settings():
    before = (K.get_num_threads(), _blas_threads())
    with using_threads(1):
        assert K.get_num_threads() == 1
    assert (K.get_num_threads(), _blas_threads()) == before
    with pytest.raises(RuntimeError):
        with using_threads(3):
            raise RuntimeError("boom")
    assert (K.get_num_threads(), _blas_threads()) == before


# --------------------------------------------------------------------------------- helpers

def _disturb():
    """Leave the process in another state than a fresh run would find: draws from every global
    generator, freed memory full of NaN (np.empty would hand it out again), and a training step
    of another model (the kernels' scratch buffers and the optimizer's caches)."""
    rng = np.random.default_rng(99)
    np.random.random(17)
    cynet.utils.rng.global_rng().random(23)
    _disturb_heap(rng)
    other = cynet.Sequential([layers.Input((6, 6, 2)), layers.Conv2D(3, 3), layers.BatchNormalization(),
                              layers.Flatten(), layers.Dense(2, activation="softmax")])
    other.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    other.fit(rng.standard_normal((8, 6, 6, 2)), rng.integers(0, 2, 8), epochs=1, verbose=0)


def _mlp(conv_bias=True):  # noqa: ARG001 - one signature for all three
    return cynet.Sequential([
        layers.Input((64,)),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.3),
        layers.Dense(64, activation="tanh"),
        layers.Dropout(0.2),
        layers.Dense(5, activation="softmax"),
    ])


def _cnn(conv_bias=True):
    return cynet.Sequential([
        layers.Input((16, 16, 3)),
        layers.Conv2D(16, 3, padding="same", use_bias=conv_bias),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.MaxPooling2D(),
        layers.Dropout(0.2),
        layers.Conv2D(8, 3, use_bias=conv_bias),
        layers.BatchNormalization(),
        layers.Flatten(),
        layers.Dense(5, activation="softmax"),
    ])


def _lstm(conv_bias=True):  # noqa: ARG001
    return cynet.Sequential([layers.Input((4, 16)), layers.LSTM(128), layers.Dense(5, activation="softmax")])


# (build, sample shape, samples, batch size): big enough that the kernels start a team of 2
# threads (conv im2col 32*16*16*27 elements, batch norm 32*256*16, LSTM gates 4*128*256 per
# step) and OpenBLAS splits the GEMMs.
MODELS = {
    "mlp": (_mlp, (64,), 256, 64),
    "cnn": (_cnn, (16, 16, 3), 64, 32),
    "lstm": (_lstm, (4, 16), 512, 256),
}


def _train(name, seed=1234, epochs=2, conv_bias=True):
    """Seeded training run; returns every piece of state it produced."""
    build, shape, n, batch_size = MODELS[name]
    data = np.random.default_rng(0)                        # the data stay fixed; the seed varies
    x = data.standard_normal((n,) + shape).astype(np.float32)
    y = data.integers(0, 5, n)
    set_random_seed(seed)
    model = build(conv_bias)
    model.compile(optimizer=Adam(learning_rate=1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True)
    return {
        # keyed by position and variable name: the layer names count up from run to run
        "weights": {f"{i}:{v.path.split('/')[-1]}": v.numpy() for i, v in enumerate(model.weights)},
        "optimizer": [np.array(v.value, copy=True) for v in model.optimizer.variables],
        "history": {k: list(v) for k, v in history.history.items()},
        "predictions": model.predict(x[:64], verbose=0),
    }


def _assert_bitwise(a, b):
    assert list(a["weights"]) == list(b["weights"])
    differ = [path for path in a["weights"] if a["weights"][path].tobytes() != b["weights"][path].tobytes()]
    assert not differ, f"weights differ bit-wise: {differ}"
    assert len(a["optimizer"]) == len(b["optimizer"])
    assert all(p.tobytes() == q.tobytes() for p, q in zip(a["optimizer"], b["optimizer"])), "optimizer state differs"
    assert a["history"] == b["history"]
    assert a["predictions"].tobytes() == b["predictions"].tobytes()


def _assert_close(a, b, rtol=1e-4, atol=1e-5):
    for path, wa in a["weights"].items():
        np.testing.assert_allclose(b["weights"][path], wa, rtol=rtol, atol=atol, err_msg=path)
    for key, values in a["history"].items():
        np.testing.assert_allclose(b["history"][key], values, rtol=rtol, atol=atol, err_msg=key)
    np.testing.assert_allclose(b["predictions"], a["predictions"], rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------- models

@pytest.mark.parametrize("name", sorted(MODELS))
def test_one_thread_runs_are_bit_identical(name):
    with using_threads(1):
        first = _train(name)
        _disturb()
        second = _train(name)
        other_seed = _train(name, seed=4321)
    _assert_bitwise(first, second)
    # the comparison is not vacuous: training moved the weights, and the seed matters
    assert any(not np.array_equal(first["weights"][p], other_seed["weights"][p]) for p in first["weights"])
    assert first["history"]["loss"][0] != first["history"]["loss"][-1]


@needs_openmp
@pytest.mark.parametrize("name", sorted(MODELS))
def test_two_threads_agree_with_one(name):
    # Conv2D without bias before BatchNormalization (as usual): the gradient of such a bias is
    # zero in exact arithmetic, so it is rounding noise, which Adam normalises to steps of the
    # learning rate; its sign, hence the bias, then depends on the summation order (measured:
    # 2e-3 apart on biases of 3e-3 after 4 steps, all other weights within 3e-7).
    with using_threads(1):
        one = _train(name, conv_bias=False)
    with using_threads(2):
        two = _train(name, conv_bias=False)
        _disturb()
        again = _train(name, conv_bias=False)
    _assert_close(one, two)
    _assert_bitwise(two, again)


# --------------------------------------------------------------------------------- kernels

@pytest.fixture(scope="module")
def leaks():
    spec = importlib.util.spec_from_file_location("cynet_bench_leaks_det", ROOT / "bench" / "leaks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(thunks):
    out = []
    for fn in thunks:
        result = fn()
        flat = result if isinstance(result, (tuple, list)) else (result,)
        out.append([None if r is None else np.array(r, copy=True) if isinstance(r, np.ndarray) else r
                    for r in flat])
    return out


def _compare(a, b, exact, label):
    for i, (xs, ys) in enumerate(zip(a, b)):
        for j, (x, y) in enumerate(zip(xs, ys)):
            where = f"{label}, call {i}, output {j}"
            if not isinstance(x, np.ndarray):
                assert x == y, where
            elif exact:
                assert x.tobytes() == y.tobytes(), f"{where}: not bit-identical on a repeated call"
            else:
                scale = float(np.max(np.abs(x))) if x.size and x.dtype.kind == "f" else 1.0
                tol = (1e-4, 1e-5) if x.dtype == np.float32 else (1e-9, 1e-12)
                np.testing.assert_allclose(y, x, rtol=tol[0], atol=tol[1] * max(scale, 1.0), err_msg=where)


@needs_openmp
@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_every_kernel_is_deterministic(leaks, backend):
    """Each kernel's argument sets (float32 and float64; the large ones run with 2 threads):
    repeated calls bit-identical, also with freed NaN-filled memory around (an uninitialised
    workspace would show), and 1 vs 2 threads within float32 / float64 tolerance."""
    if backend == "cython" and not K.info()["compiled"]:
        pytest.skip("needs the compiled kernels")
    with K.use_backend(backend):
        for factory, names in leaks.groups().items():
            if backend != "cython" and any(n.startswith("cynet._kernels.") for n in names):
                continue
            label = ", ".join(names)
            if any(n in ("adam_update", "sgd_momentum_update") for n in names):
                continue                                   # in place: see test_optimizer_kernels_*
            # fresh arguments for each run: batch norm's moving statistics change in place
            def run(factory=factory):
                calls, large = leaks.build(factory)
                return _outputs(calls + large)

            with using_threads(2):
                first = run()
                _disturb_heap()
                second = run()
            with using_threads(1):
                single = run()
            _compare(first, second, True, label)
            _compare(first, single, False, label)


def _disturb_heap(rng=None):
    """Free blocks of many sizes filled with 0xFF bytes (NaN as float32 and as float64), which
    np.empty then hands out again: a kernel reading scratch memory before writing it would
    return NaN or different numbers."""
    rng = np.random.default_rng(5) if rng is None else rng
    junk = [np.full(int(n), -1, np.int8) for n in rng.integers(8, 2_000_000, 64)]
    del junk


@needs_openmp
@pytest.mark.parametrize("kernel", ["adam", "amsgrad", "sgd", "nesterov"])
def test_optimizer_kernels_are_deterministic(kernel):
    """The in-place optimizer kernels (large enough for 2 threads), 20 steps from the same
    state: bit-identical at 2 threads twice and at 1 thread (elementwise: no reduction)."""
    def run():
        rng = np.random.default_rng(0)
        n = 200_003
        w = rng.standard_normal(n).astype(np.float32)
        slots = [np.zeros(n, np.float32) for _ in range(3)]
        for step in range(20):
            g = rng.standard_normal(n).astype(np.float32)
            if kernel in ("adam", "amsgrad"):
                K.adam_update(w, g, slots[0], slots[1], 1e-3, 0.1, 0.001, 1e-7,
                              v_hat=slots[2] if kernel == "amsgrad" else None)
            else:
                K.sgd_momentum_update(w, g, slots[0], 1e-2, 0.9, nesterov=kernel == "nesterov")
        return [w] + slots

    with using_threads(2):
        a = run()
        b = run()
    with using_threads(1):
        c = run()
    for x, y, z in zip(a, b, c):
        assert x.tobytes() == y.tobytes()
        assert x.tobytes() == z.tobytes()
