"""Leak check of the kernels: every public kernel of `cynet.kernels`, called thousands of times.

    python bench/leaks.py [--iterations N] [--backend cython|numpy|both] [--kernels SUBSTR ...]

For each kernel the script builds a few argument sets once (float32 and float64, the optional
branches: no bias, channels_first, AMSGrad, Nesterov, given initial states, ...; one set large
enough that the compiled kernel starts an OpenMP team of 2 threads; for a few kernels a call the
compiled kernel itself refuses), calls them for a warm-up, then N more times, and compares two
measures taken after `gc.collect()` and glibc's `malloc_trim(0)` (which hands freed heap pages
back, so that RSS follows the live memory closely):

- RSS, the resident set size (/proc/self/statm): catches memory allocated by C code and never
  freed, which Python cannot see;
- traced memory (tracemalloc): catches leaked Python objects and NumPy arrays (NumPy reports its
  data buffers to tracemalloc) to the byte, with little noise, so a few hundred calls suffice.

The N calls run in two halves. A leak grows memory in both; a one-off step (a cache that fills
once, glibc moving its mmap threshold, tracemalloc's accounting of NumPy's as_strided: the NumPy
twin's conv2d_backward shows a single ~940 KiB step of traced memory, with RSS flat over 200k
calls) in one only. The verdict uses the smaller half, doubled ("steady" growth).

It prints one row per kernel group (a forward and its backward share their arguments): RSS after
the warm-up, RSS after the N calls, the growth of RSS and of traced memory, and the steady growth
(RSS/traced); it exits with status 1 if any steady growth exceeds --max-rss-growth-kib (default
1024) or --max-traced-growth-kib (default 64). Each iteration makes at least 4 calls per group,
so the defaults fail a leak of 1 KiB per call within about 300 iterations by RSS (measured noise:
under 80 KiB), and within 16 iterations by tracemalloc when the leaked memory is a Python object
or a NumPy array.

The compiled (Cython) backend is the point and the default; `--backend numpy` runs the same
calls on the NumPy twin. `--json PATH` writes the results for tests/robustness/test_leaks.py.
Linux only (reads /proc/self/statm).
"""
import argparse
import ctypes
import ctypes.util
import gc
import importlib
import inspect
import json
import os
import sys
import time
import tracemalloc

import numpy as np

# Names in cynet.kernels that control the dispatch rather than compute anything.
CONTROL = frozenset({"BACKENDS", "get_backend", "set_backend", "use_backend", "get_num_threads",
                     "set_num_threads", "info"})

# Public functions of the compiled modules that no public kernel reaches (called directly).
COMPILED_EXTRAS = ("cynet._kernels.conv.im2col", "cynet._kernels.conv.col2im")

DTYPES = (np.float32, np.float64)
LARGE_EVERY = 10   # the large (multi-threaded) argument sets run on every 10th iteration


# ----------------------------------------------------------------------------- measuring

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _load_libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # not glibc: RSS then also counts freed, unreturned heap
        return None


_libc = _load_libc()


def rss_bytes():
    """Resident set size of this process, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def settle():
    """Collect garbage and hand freed heap memory back to the OS, so RSS shows live memory."""
    gc.collect()
    if _libc is not None:
        _libc.malloc_trim(0)


def measure(calls, iterations, warmup=None, large=()):
    """Call every thunk of `calls` (each iteration), those of `large` on every LARGE_EVERY-th
    iteration: `warmup` iterations, then `iterations` measured ones in two halves.

    A leak grows memory in both halves; a one-off step (a cache or hash table that grows once,
    glibc moving its mmap threshold, a pymalloc arena) in one of them only. So the verdict uses
    the smaller half, doubled: `rss_leak` and `traced_leak` estimate what a steady leak would
    have added over all the iterations, and a single step of any size does not count.

    Returns a dict: calls (thunk calls measured), rss_warm, rss_end (bytes), rss_growth,
    traced_growth (end minus warm), rss_halves, traced_halves (the growth of each half),
    rss_leak, traced_leak, seconds. The traced entries are None when tracemalloc is not tracing.
    """
    if warmup is None:
        warmup = max(LARGE_EVERY, iterations // 10)

    def loop(start, stop):
        count = 0
        for i in range(start, stop):
            for fn in calls:
                fn()
            count += len(calls)
            if i % LARGE_EVERY == 0:
                for fn in large:
                    fn()
                count += len(large)
        return count

    tracing = tracemalloc.is_tracing()

    def point():
        settle()
        return rss_bytes(), (tracemalloc.get_traced_memory()[0] if tracing else None)

    loop(0, warmup)
    half = iterations // 2
    (rss0, tr0) = point()
    t0 = time.perf_counter()
    count = loop(0, half)
    (rss1, tr1) = point()
    count += loop(half, iterations)
    seconds = time.perf_counter() - t0
    (rss2, tr2) = point()
    rss_halves = (rss1 - rss0, rss2 - rss1)
    traced_halves = None if not tracing else (tr1 - tr0, tr2 - tr1)
    return {"calls": count, "rss_warm": rss0, "rss_end": rss2, "rss_growth": rss2 - rss0,
            "traced_growth": None if not tracing else tr2 - tr0,
            "rss_halves": rss_halves, "traced_halves": traced_halves,
            "rss_leak": 2 * min(rss_halves),
            "traced_leak": None if not tracing else 2 * min(traced_halves),
            "seconds": seconds}


# ----------------------------------------------------------------------------- the kernels

def public_kernels():
    """Every public kernel: the callables cynet.kernels exports, less the dispatch controls,
    plus everything its family modules list in __all__."""
    import cynet.kernels as K
    from cynet._kernels import manifest

    names = {n for n, obj in vars(K).items()
             if not n.startswith("_") and n not in CONTROL and callable(obj) and not inspect.ismodule(obj)
             and not inspect.isclass(obj)}
    for family in manifest.FAMILIES:
        names.update(importlib.import_module(family.public).__all__)
    return sorted(names)


def compiled_functions():
    """'module.function' for every public function of the compiled kernel modules."""
    from cynet._kernels import manifest

    out = []
    for family in manifest.FAMILIES:
        module = importlib.import_module(family.compiled)
        out += [f"{module.__name__}.{n}" for n in dir(module)
                if not n.startswith("_") and callable(getattr(module, n))
                and not inspect.isclass(getattr(module, n)) and not inspect.ismodule(getattr(module, n))]
    return sorted(out)


CASES = {}


def case(*names):
    """Register a factory `f(dtype, rng) -> (calls, large)` of argument-bound thunks for the
    kernel(s) `names`. `large` (built for float32 only) runs on every LARGE_EVERY-th iteration."""
    def register(factory):
        for name in names:
            if name in CASES:
                raise ValueError(f"two leak cases for {name}")
            CASES[name] = factory
        return factory
    return register


def _k():
    import cynet.kernels as K
    return K


def _raises(fn, exc=ValueError):
    """A thunk that calls fn and expects it to raise `exc` (an error path must not leak either)."""
    def call():
        try:
            fn()
        except exc:
            return
        raise AssertionError(f"{fn} did not raise {exc.__name__}")
    return call


def _r(rng, shape, dt, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dt)


# -- activations

_ELEMENTWISE = {
    "relu_forward": ("relu_backward", "y", ()),
    "leaky_relu_forward": ("leaky_relu_backward", "x", (0.1,)),
    "sigmoid_forward": ("sigmoid_backward", "y", ()),
    "tanh_forward": ("tanh_backward", "y", ()),
}


def _elementwise_factory(name):
    def factory(dt, rng):
        K = _k()
        fn = getattr(K, name)
        forward = name.endswith("_forward")
        base = name.replace("_backward", "_forward")
        fwd = getattr(K, base)

        def bind(x):
            if forward:
                args = (x,) + (() if base != "leaky_relu_forward" else (0.1,))
                return lambda: fn(*args)
            y = fwd(x)
            dy = np.ones_like(x)
            _, arg, extra = _ELEMENTWISE[base]
            second = y if arg == "y" else x
            return lambda: fn(dy, second, *extra)

        calls = [bind(_r(rng, (16, 128), dt)), bind(_r(rng, (), dt))]
        large = [bind(_r(rng, (300_000,), np.float32))] if dt == np.float32 else []
        return calls, large
    return factory


for _name in list(_ELEMENTWISE) + [v[0] for v in _ELEMENTWISE.values()]:
    case(_name)(_elementwise_factory(_name))


@case("elu_forward", "elu_backward")
def _elu(dt, rng):
    K = _k()

    def bind(x):
        y = K.elu_forward(x, 0.5)
        dy = np.ones_like(x)
        return [lambda: K.elu_forward(x, 0.5), lambda: K.elu_backward(dy, x, y, 0.5)]

    calls = bind(_r(rng, (16, 128), dt))
    large = bind(_r(rng, (300_000,), np.float32)) if dt == np.float32 else []
    return calls, large


@case("softmax_cross_entropy")
def _softmax_ce(dt, rng):
    K = _k()
    z = _r(rng, (64, 10), dt)
    labels = rng.integers(0, 10, 64)
    onehot = np.eye(10, dtype=dt)[labels]
    z3 = _r(rng, (4, 16, 10), dt)
    labels3 = rng.integers(0, 10, (4, 16)).astype(np.int32)
    calls = [lambda: K.softmax_cross_entropy(z, labels), lambda: K.softmax_cross_entropy(z, onehot),
             lambda: K.softmax_cross_entropy(z3, labels3)]
    large = []
    if dt == np.float32:
        zl = _r(rng, (4096, 16), dt)
        ll = rng.integers(0, 16, 4096)
        large = [lambda: K.softmax_cross_entropy(zl, ll)]
    return calls, large


@case("sigmoid_cross_entropy")
def _sigmoid_ce(dt, rng):
    K = _k()
    z = _r(rng, (64, 8), dt)
    y = (rng.random((64, 8)) > 0.5).astype(dt)
    z3 = _r(rng, (4, 5, 3), dt)
    y3 = rng.random((4, 5, 3)) > 0.5          # bool targets
    calls = [lambda: K.sigmoid_cross_entropy(z, y), lambda: K.sigmoid_cross_entropy(z3, y3)]
    large = []
    if dt == np.float32:
        zl = _r(rng, (300_000,), dt)
        yl = (rng.random(300_000) > 0.5).astype(dt)
        large = [lambda: K.sigmoid_cross_entropy(zl, yl)]
    return calls, large


@case("softmax_forward", "softmax_backward")
def _softmax(dt, rng):
    K = _k()

    def bind(x, axis):
        y = K.softmax_forward(x, axis=axis)
        dy = np.ones_like(x)
        return [lambda: K.softmax_forward(x, axis=axis), lambda: K.softmax_backward(dy, y, axis=axis)]

    calls = bind(_r(rng, (64, 10), dt), -1) + bind(_r(rng, (4, 10, 6), dt), 1)
    large = bind(_r(rng, (4096, 16), np.float32), -1) if dt == np.float32 else []
    return calls, large


# -- convolution

_CONV_CONFIGS = (
    dict(x=(2, 8, 8, 3), k=(3, 3, 3, 4), bias=True, strides=1, padding="same", dilation_rate=1,
         data_format="channels_last"),
    dict(x=(2, 9, 9, 3), k=(3, 2, 3, 4), bias=False, strides=(2, 1), padding="valid", dilation_rate=(1, 2),
         data_format="channels_last"),
    dict(x=(2, 3, 8, 8), k=(3, 3, 3, 4), bias=True, strides=1, padding="same", dilation_rate=1,
         data_format="channels_first"),
    dict(x=(2, 8, 8, 3), k=(1, 1, 3, 4), bias=True, strides=1, padding="valid", dilation_rate=1,
         data_format="channels_last"),   # 1x1: the patch matrix is x itself
)
_CONV_LARGE = dict(x=(8, 16, 16, 8), k=(3, 3, 8, 16), bias=True, strides=1, padding="same", dilation_rate=1,
                   data_format="channels_last")


def _conv_args(rng, dt, cfg):
    x = _r(rng, cfg["x"], dt)
    kernel = _r(rng, cfg["k"], dt, 0.1)
    bias = _r(rng, (cfg["k"][3],), dt) if cfg["bias"] else None
    opts = {k: cfg[k] for k in ("strides", "padding", "dilation_rate", "data_format")}
    return x, kernel, bias, opts


@case("conv2d_forward")
def _conv_forward(dt, rng):
    K = _k()

    def bind(cfg):
        x, kernel, bias, opts = _conv_args(rng, dt, cfg)
        return lambda: K.conv2d_forward(x, kernel, bias, **opts)

    calls = [bind(cfg) for cfg in _CONV_CONFIGS]
    large = [bind(_CONV_LARGE)] if dt == np.float32 else []
    return calls, large


@case("conv2d_backward")
def _conv_backward(dt, rng):
    K = _k()

    def bind(cfg, compute_dx=True):
        x, kernel, bias, opts = _conv_args(rng, dt, cfg)
        dy = np.ones_like(K.conv2d_forward(x, kernel, bias, **opts))
        return lambda: K.conv2d_backward(dy, x, kernel, use_bias=bias is not None, compute_dx=compute_dx, **opts)

    calls = [bind(cfg) for cfg in _CONV_CONFIGS] + [bind(_CONV_CONFIGS[0], compute_dx=False)]
    large = [bind(_CONV_LARGE)] if dt == np.float32 else []
    return calls, large


@case("conv2d_output_shape")
def _conv_shape(dt, rng):
    K = _k()
    return [lambda: K.conv2d_output_shape((None, 28, 28, 1), 3, padding="same", filters=8),
            lambda: K.conv2d_output_shape((4, 3, 9, 9), (3, 2), strides=2, data_format="channels_first")], []


@case("cynet._kernels.conv.im2col", "cynet._kernels.conv.col2im")
def _im2col(dt, rng):
    from cynet._kernels import conv
    x = _r(rng, (2, 8, 8, 3), dt)
    geometry = (3, 3, 1, 1, 1, 1, 1, 1, 1, 1)            # KH, KW, pt, pb, pl, pr, sh, sw, dh, dw
    cols = conv.im2col(x, *geometry)
    bad = np.ascontiguousarray(cols[:-1])
    return [lambda: conv.im2col(x, *geometry), lambda: conv.col2im(cols, 2, 8, 8, 3, *geometry),
            _raises(lambda: conv.col2im(bad, 2, 8, 8, 3, *geometry))], []


# -- pooling

_POOL_CONFIGS = (
    dict(x=(2, 8, 8, 3), pool_size=2, strides=None, padding="valid", data_format="channels_last"),
    dict(x=(2, 7, 9, 3), pool_size=(3, 2), strides=(2, 1), padding="same", data_format="channels_last"),
    dict(x=(2, 3, 8, 8), pool_size=2, strides=None, padding="valid", data_format="channels_first"),
)
_POOL_LARGE = dict(x=(8, 32, 32, 16), pool_size=2, strides=None, padding="valid", data_format="channels_last")


def _pool_opts(cfg):
    return {k: cfg[k] for k in ("pool_size", "strides", "padding", "data_format")}


@case("max_pool2d_forward", "max_pool2d_backward")
def _max_pool(dt, rng):
    K = _k()

    def bind(cfg):
        x = _r(rng, cfg["x"], dt)
        opts = _pool_opts(cfg)
        y, argmax = K.max_pool2d_forward(x, **opts)
        dy = np.ones_like(y)
        return [lambda: K.max_pool2d_forward(x, **opts),
                lambda: K.max_pool2d_backward(dy, argmax, x.shape, **opts)]

    calls = [fn for cfg in _POOL_CONFIGS for fn in bind(cfg)]
    y, argmax = K.max_pool2d_forward(_r(rng, (2, 8, 8, 3), dt))
    bad = argmax.copy()
    bad[0, 0, 0, 0] = 4          # outside [0, 2 * 2): the compiled kernel raises
    calls.append(_raises(lambda: K.max_pool2d_backward(np.ones_like(y), bad, (2, 8, 8, 3))))
    large = bind(_POOL_LARGE) if dt == np.float32 else []
    return calls, large


@case("avg_pool2d_forward", "avg_pool2d_backward")
def _avg_pool(dt, rng):
    K = _k()

    def bind(cfg):
        x = _r(rng, cfg["x"], dt)
        opts = _pool_opts(cfg)
        dy = np.ones_like(K.avg_pool2d_forward(x, **opts))
        return [lambda: K.avg_pool2d_forward(x, **opts), lambda: K.avg_pool2d_backward(dy, x.shape, **opts)]

    calls = [fn for cfg in _POOL_CONFIGS for fn in bind(cfg)]
    large = bind(_POOL_LARGE) if dt == np.float32 else []
    return calls, large


@case("global_avg_pool2d_forward", "global_avg_pool2d_backward", "global_max_pool2d_forward",
      "global_max_pool2d_backward")
def _global_pool(dt, rng):
    K = _k()

    def bind(shape, fmt):
        x = _r(rng, shape, dt)
        y, argmax = K.global_max_pool2d_forward(x, data_format=fmt)
        dy = np.ones_like(y)
        return [lambda: K.global_avg_pool2d_forward(x, data_format=fmt),
                lambda: K.global_avg_pool2d_backward(dy, x.shape, data_format=fmt),
                lambda: K.global_max_pool2d_forward(x, data_format=fmt),
                lambda: K.global_max_pool2d_backward(dy, argmax, x.shape, data_format=fmt)]

    calls = bind((2, 8, 8, 3), "channels_last") + bind((2, 3, 8, 8), "channels_first")
    dy = np.ones((2, 3), dt)
    bad = np.full((2, 3), 64, np.int32)       # outside [0, 8 * 8): the compiled kernel raises
    calls.append(_raises(lambda: K.global_max_pool2d_backward(dy, bad, (2, 8, 8, 3))))
    large = bind((8, 32, 32, 16), "channels_last") if dt == np.float32 else []
    return calls, large


@case("upsampling2d_forward", "upsampling2d_backward")
def _upsampling(dt, rng):
    K = _k()

    def bind(shape, size, fmt):
        x = _r(rng, shape, dt)
        dy = np.ones_like(K.upsampling2d_forward(x, size=size, data_format=fmt))
        return [lambda: K.upsampling2d_forward(x, size=size, data_format=fmt),
                lambda: K.upsampling2d_backward(dy, size=size, data_format=fmt)]

    calls = bind((2, 4, 4, 3), 2, "channels_last") + bind((2, 3, 4, 5), (2, 3), "channels_first")
    large = bind((8, 32, 32, 16), 2, "channels_last") if dt == np.float32 else []
    return calls, large


@case("pool2d_output_shape")
def _pool_shape(dt, rng):
    K = _k()
    return [lambda: K.pool2d_output_shape((None, 28, 28, 8), 2),
            lambda: K.pool2d_output_shape((4, 8, None, 9), (3, 2), strides=2, padding="same",
                                          data_format="channels_first")], []


# -- batch normalization

@case("batch_norm_train_forward", "batch_norm_inference_forward", "batch_norm_backward")
def _batch_norm(dt, rng):
    K = _k()

    def bind(shape, affine=True):
        x = _r(rng, shape, dt)
        C = shape[-1]
        gamma = _r(rng, (C,), dt) if affine else None
        beta = _r(rng, (C,), dt) if affine else None
        mm, mv = np.zeros(C, dt), np.ones(C, dt)
        _, mean, inv_std = K.batch_norm_train_forward(x, gamma, beta, mm, mv)
        dy = np.ones_like(x)
        return [lambda: K.batch_norm_train_forward(x, gamma, beta, mm, mv, momentum=0.9),
                lambda: K.batch_norm_inference_forward(x, gamma, beta, mm, mv),
                lambda: K.batch_norm_backward(dy, x, gamma, mean, inv_std)]

    calls = bind((32, 16)) + bind((2, 6, 6, 8), affine=False)
    large = bind((2048, 64)) if dt == np.float32 else []
    return calls, large


# -- optimizers

@case("adam_update", "sgd_momentum_update")
def _optim(dt, rng):
    K = _k()

    def bind(n):
        w = _r(rng, (n,), dt)
        g = _r(rng, (n,), dt, 1e-3)
        m, v, v_hat, w2, w3, mom, mom2 = (np.zeros(n, dt) for _ in range(7))
        return [lambda: K.adam_update(w, g, m, v, 1e-4, 0.1, 0.001, 1e-7),
                lambda: K.adam_update(w2, g, m, v, 1e-4, 0.1, 0.001, 1e-7, v_hat=v_hat),
                lambda: K.sgd_momentum_update(w3, g, mom, 1e-4, 0.9),
                lambda: K.sgd_momentum_update(w3, g, mom2, 1e-4, 0.9, nesterov=True)]

    calls = bind(1000)
    large = bind(140_000) if dt == np.float32 else []
    return calls, large


# -- recurrent

def _rnn_case(forward_name, backward_name, gates, has_cell, bias_shape):
    def factory(dt, rng):
        K = _k()
        forward, backward = getattr(K, forward_name), getattr(K, backward_name)

        def bind(N, T, D, U, bias=True, with_state=False, activation="tanh", recurrent_activation="sigmoid"):
            x = _r(rng, (N, T, D), dt)
            kernel = _r(rng, (D, gates * U), dt, 0.3)
            rkernel = _r(rng, (U, gates * U), dt, 0.3)
            b = _r(rng, bias_shape(U), dt, 0.1) if bias else None
            h0 = _r(rng, (N, U), dt) if with_state else None
            c0 = _r(rng, (N, U), dt) if with_state and has_cell else None
            acts = {"activation": activation}
            if gates > 1:
                acts["recurrent_activation"] = recurrent_activation
            states = (h0, c0) if has_cell else (h0,)
            out = forward(x, kernel, rkernel, b, *states, **acts)
            hs = out[0] if isinstance(out, tuple) else out
            saved = out[1:] if isinstance(out, tuple) else ()
            dhs = np.ones_like(hs)
            lead = (dhs, np.ones((N, U), dt) if with_state else None) if has_cell else (dhs,)
            return [lambda: forward(x, kernel, rkernel, b, *states, **acts),
                    lambda: backward(*lead, x, kernel, rkernel, *states, hs, *saved, use_bias=bias, **acts)]

        calls = (bind(4, 5, 3, 6) + bind(3, 4, 2, 5, bias=False, with_state=True, activation="relu",
                                          recurrent_activation="hard_sigmoid"))
        large = bind(256, 2, 8, 128) if dt == np.float32 else []
        return calls, large
    return factory


case("simple_rnn_forward", "simple_rnn_backward")(
    _rnn_case("simple_rnn_forward", "simple_rnn_backward", 1, False, lambda U: (U,)))
case("lstm_forward", "lstm_backward")(
    _rnn_case("lstm_forward", "lstm_backward", 4, True, lambda U: (4 * U,)))
case("gru_forward", "gru_backward")(
    _rnn_case("gru_forward", "gru_backward", 3, False, lambda U: (2, 3 * U)))


# ----------------------------------------------------------------------------- running

def groups():
    """{factory: [kernel names]}: kernels sharing a factory are measured together (their
    backward needs the forward's outputs), in the order of public_kernels()."""
    out = {}
    for name in public_kernels() + list(COMPILED_EXTRAS):
        factory = CASES.get(name)
        if factory is None:
            raise KeyError(f"no leak case for the kernel {name!r}: add one to bench/leaks.py")
        out.setdefault(factory, []).append(name)
    return out


def build(factory, seed=0):
    """(calls, large) thunks of `factory` for both dtypes."""
    rng = np.random.default_rng(seed)
    calls, large = [], []
    for dt in DTYPES:
        c, big = factory(dt, rng)
        calls += c
        large += big
    return calls, large


def run(iterations, backend="cython", select=None, warmup=None, trace=True, out=sys.stdout):
    """Measure every kernel group on `backend`; returns a list of result dicts (see measure)."""
    import cynet.kernels as K

    results = []
    if trace and not tracemalloc.is_tracing():
        tracemalloc.start()
    try:
        with K.use_backend(backend):
            for factory, names in groups().items():
                label = ", ".join(names)
                if select and not any(s in label for s in select):
                    continue
                if backend != "cython" and any(n.startswith("cynet._kernels.") for n in names):
                    continue
                calls, large = build(factory)
                result = measure(calls, iterations, warmup=warmup, large=large)
                del calls, large
                result.update(kernels=names, backend=backend)
                results.append(result)
                if out is not None:
                    print(_row(result), file=out, flush=True)
    finally:
        if trace:
            tracemalloc.stop()
    return results


_HEADER = (f"{'kernel':<60} {'calls':>7} {'RSS warm MiB':>12} {'RSS end MiB':>11} {'growth KiB':>10} "
           f"{'traced KiB':>10} {'steady KiB':>13}")


def _kib(v):
    return "-" if v is None else f"{v / 1024:.1f}"


def _row(r):
    label = ", ".join(n.replace("cynet._kernels.", "") for n in r["kernels"])
    if len(label) > 60:
        label = label[:57] + "..."
    steady = f"{_kib(r['rss_leak'])}/{_kib(r['traced_leak'])}"
    return (f"{label:<60} {r['calls']:>7} {r['rss_warm'] / 2**20:>12.2f} {r['rss_end'] / 2**20:>11.2f} "
            f"{_kib(r['rss_growth']):>10} {_kib(r['traced_growth']):>10} {steady:>13}")


def failures(results, max_rss_growth_kib=1024, max_traced_growth_kib=64):
    """The results whose steady growth (rss_leak, traced_leak) exceeds a threshold, with the reason."""
    bad = []
    for r in results:
        if r["rss_leak"] > max_rss_growth_kib * 1024:
            bad.append((r, f"RSS grew steadily: {r['rss_halves'][0] / 1024:.0f} + "
                           f"{r['rss_halves'][1] / 1024:.0f} KiB over the two halves, about "
                           f"{r['rss_leak'] / 1024:.0f} KiB > {max_rss_growth_kib:g} KiB"))
        elif r["traced_leak"] is not None and r["traced_leak"] > max_traced_growth_kib * 1024:
            bad.append((r, f"traced memory grew steadily: {r['traced_halves'][0] / 1024:.0f} + "
                           f"{r['traced_halves'][1] / 1024:.0f} KiB over the two halves, about "
                           f"{r['traced_leak'] / 1024:.0f} KiB > {max_traced_growth_kib:g} KiB"))
    return bad


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=3000,
                   help="measured iterations per kernel (each calls every argument set; default 3000)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up iterations (default: iterations / 10)")
    p.add_argument("--backend", choices=("cython", "numpy", "both"), default="cython")
    p.add_argument("--kernels", nargs="*", default=None, help="only the kernels whose names contain one of these")
    p.add_argument("--threads", type=int, default=None, help="cynet.set_num_threads(N) first (default: cynet's)")
    p.add_argument("--max-rss-growth-kib", type=float, default=1024.0)
    p.add_argument("--max-traced-growth-kib", type=float, default=64.0)
    p.add_argument("--no-tracemalloc", action="store_true", help="RSS only (tracemalloc slows Python allocations)")
    p.add_argument("--json", default=None, help="write the results to this file")
    args = p.parse_args(argv)
    if args.iterations < 1:
        p.error("--iterations must be >= 1")

    import cynet
    import cynet.kernels as K

    if args.threads is not None:
        cynet.set_num_threads(args.threads)
    info = K.info()
    print(f"cynet kernels: compiled={info['compiled']} openmp={info['openmp']} threads={info['threads']} "
          f"blas={info['blas']}; {args.iterations} iterations (large argument sets every {LARGE_EVERY}th)")
    backends = ("cython", "numpy") if args.backend == "both" else (args.backend,)
    results = []
    start_rss = rss_bytes()
    for backend in backends:
        print(f"\nbackend: {backend}")
        print(_HEADER)
        results += run(args.iterations, backend, select=args.kernels, warmup=args.warmup,
                       trace=not args.no_tracemalloc)
    settle()
    print(f"\nprocess RSS: {start_rss / 2**20:.1f} MiB after the imports, {rss_bytes() / 2**20:.1f} MiB at the end")
    bad = failures(results, args.max_rss_growth_kib, args.max_traced_growth_kib)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"iterations": args.iterations, "threads": info["threads"], "results": results,
                       "failures": [{"kernels": r["kernels"], "backend": r["backend"], "reason": why}
                                    for r, why in bad]}, f, indent=1)
    if bad:
        print(f"\nFAILED: {len(bad)} kernel group(s) grew beyond the threshold:")
        for r, why in bad:
            print(f"  [{r['backend']}] {', '.join(r['kernels'])}: {why}")
        return 1
    print(f"\nOK: no kernel grew by more than {args.max_rss_growth_kib:g} KiB RSS "
          f"or {args.max_traced_growth_kib:g} KiB traced memory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
