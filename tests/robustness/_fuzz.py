"""Helpers shared by the fuzz suites (test_fuzz_kernels.py, test_fuzz_layers.py).

Not a test module: the suites load it by path (pytest runs in importlib mode, where sibling
modules are not importable by name). It holds

* choosers: one interface (`int`, `choice`, `bool`) over a hypothesis draw or a seeded
  `random.Random`, so a valid call can be generated from either;
* the outcome checks: a call on both kernel backends, the comparison of their results and the
  rule that an error is a ValueError/TypeError whose message names the argument;
* the hostile values: array transforms that keep the values (views, read-only, unaligned,
  byte-swapped, nested lists), transforms that must be refused (complex, object, strings,
  datetimes, structured dtypes, ragged lists, multi-terabyte broadcast views), and tables of
  hostile hyper-parameters (sizes, strides, padding, data formats, reals, flags, axes).
"""
import math
import random
import re
import warnings

import numpy as np
from hypothesis import strategies as st

import cynet.kernels as K

BACKENDS = ("cython", "numpy") if K._backend.COMPILED else ("numpy",)
F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
HUGE = 2 ** 40  # an axis length no machine can hold as float32 (4 TiB per unit of the other axes)

# What an outcome must be.
RAISE = "raise"    # ValueError/TypeError naming the argument, on every backend
SAME = "same"      # succeeds, with the result of the unchanged call
OK = "ok"          # succeeds (any result), the backends agree
EITHER = "either"  # succeeds with agreeing backends, or raises as RAISE says


# ----------------------------------------------------------------------------- choosers

class DrawChooser:
    """Choices drawn by hypothesis (they shrink)."""

    def __init__(self, data):
        self.data = data

    def int(self, lo, hi):
        return self.data.draw(st.integers(lo, hi))

    def choice(self, seq):
        return self.data.draw(st.sampled_from(list(seq)))

    def bool(self):
        return self.data.draw(st.booleans())


class RandomChooser:
    """Choices from a seeded random.Random (for the deterministic sweeps)."""

    def __init__(self, seed):
        self.r = random.Random(seed)

    def int(self, lo, hi):
        return self.r.randint(lo, hi)

    def choice(self, seq):
        seq = list(seq)
        return seq[self.r.randrange(len(seq))]

    def bool(self):
        return self.r.random() < 0.5


# ----------------------------------------------------------------------------- outcome checks

def names(exc, name):
    """Whether the message of `exc` names `name` as a word (`x` matches "x's", not "dx" or "max")."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", str(exc)) is not None


class Outcome:
    def __init__(self, value=None, exc=None, state=None):
        self.value, self.exc, self.state = value, exc, state

    @property
    def ok(self):
        return self.exc is None

    def __repr__(self):
        return f"<Outcome ok={self.ok} exc={self.exc!r}>"


def call(fn, kwargs, backend, state_names=()):
    """Run fn(**kwargs) on `backend`; the outcome holds the result or the exception, and copies
    of the arrays named in `state_names` (the IN/OUT arguments) after the call."""
    before = {n: np.array(kwargs[n], copy=True) for n in state_names if isinstance(kwargs.get(n), np.ndarray)
              and kwargs[n].dtype.kind in "biufc" and kwargs[n].size < 2 ** 20}
    with K.use_backend(backend), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            value = fn(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - judged by the caller (MemoryError is a failure)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            for n, old in before.items():  # a refused call leaves its IN/OUT arrays alone
                assert np.array_equal(kwargs[n], old, equal_nan=True), \
                    f"{fn.__name__} raised {exc!r} after modifying its IN/OUT argument {n}"
            return Outcome(exc=exc)
    state = tuple(np.array(kwargs[n], copy=True) if isinstance(kwargs.get(n), np.ndarray) else None
                  for n in state_names)
    return Outcome(value=value, state=state)


def tolerance(dtype):
    """(rtol, atol) for comparing results of `dtype` (the twin tolerance of cynet.testing,
    a little wider for float32, whose fuzzed values include large and special ones; atol is
    scaled by the magnitude of the array compared, see assert_close)."""
    if np.dtype(dtype) == F64:
        return 1e-9, 1e-10
    return 1e-4, 1e-5


def assert_close(actual, expected, what="", lenient=False):
    """Two results (arrays, tuples/lists of them, None, plain values) agree: same structure,
    shapes and dtypes, values within the tolerance (NaN matching NaN).

    lenient: compare structure, shapes and dtypes only. For inputs holding infinities or values
    near the float range, sums and products give inf or NaN depending on the order of summation
    (BLAS and the fused kernels add in different orders), which then spreads through later
    steps; and a sigmoid saturating to 0 or to a denormal, times 3.4e38, is 0 or 2.5.
    """
    if isinstance(expected, (tuple, list)):
        assert isinstance(actual, (tuple, list)) and len(actual) == len(expected), \
            f"{what}: {type(actual).__name__} of {len(actual) if hasattr(actual, '__len__') else '?'} " \
            f"items != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, f"{what}[{i}]", lenient)
        return
    if expected is None:
        assert actual is None, f"{what}: expected None, got {type(actual).__name__}"
        return
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray), f"{what}: expected an array, got {type(actual).__name__}"
        assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
        assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
        if expected.dtype.kind in "fc":
            rtol, atol = tolerance(expected.dtype)
            if lenient:
                return
            # rounding errors of sums grow with the magnitudes summed: scale atol by the array's
            finite = np.abs(expected[np.isfinite(expected)])
            scale = max(1.0, float(finite.max())) if finite.size else 1.0
            np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, equal_nan=True, err_msg=what)
        else:
            np.testing.assert_array_equal(actual, expected, err_msg=what)
        return
    assert actual == expected, f"{what}: {actual!r} != {expected!r}"


def assert_refused(outcomes, name, exc_type=(ValueError, TypeError), what=""):
    """Every backend raised the same ValueError/TypeError (or `exc_type`), naming `name`."""
    kinds = set()
    for backend, out in outcomes.items():
        assert not out.ok, f"{what}: accepted on {backend} (expected an error naming {name!r})"
        exc = out.exc
        assert isinstance(exc, exc_type), \
            f"{what}: {backend} raised {type(exc).__name__}: {exc} (expected {exc_type})"
        assert names(exc, name), f"{what}: {backend}'s {type(exc).__name__} does not name {name!r}: {exc}"
        kinds.add(type(exc))
    assert len(kinds) == 1, f"{what}: the backends raised different errors: {outcomes}"


def assert_agree(outcomes, name, what="", lenient=False):
    """EITHER: every backend succeeded with the same result, or every one refused naming `name`."""
    first = next(iter(outcomes.values()))
    if any(not o.ok for o in outcomes.values()):
        assert_refused(outcomes, name, what=what)
        return
    for backend, out in outcomes.items():
        assert_close(out.value, first.value, f"{what}: {backend} result vs {BACKENDS[0]}", lenient)
        assert_close(out.state, first.state, f"{what}: {backend} IN/OUT arrays vs {BACKENDS[0]}", lenient)


def check(expect, outcomes, name, base=None, exc_type=(ValueError, TypeError), what="", lenient=False):
    """Judge the outcomes of one call (a dict backend -> Outcome) against `expect`."""
    if expect == RAISE:
        assert_refused(outcomes, name, exc_type, what)
        return
    if expect in (SAME, OK):
        for backend, out in outcomes.items():
            assert out.ok, f"{what}: refused on {backend}: {type(out.exc).__name__}: {out.exc}"
    assert_agree(outcomes, name, what, lenient)
    if expect == SAME and base is not None:
        for backend, out in outcomes.items():
            assert_close(out.value, base[backend].value, f"{what}: {backend} result vs the unchanged call")
            assert_close(out.state, base[backend].state, f"{what}: {backend} IN/OUT arrays vs the unchanged call")


# ----------------------------------------------------------------------------- array transforms

def noncontig(a, axis=0):
    """The values of `a` in a view that skips every other element along `axis`."""
    if a.ndim == 0:
        return a
    shape = list(a.shape)
    shape[axis] *= 2
    big = np.zeros(shape, dtype=a.dtype)
    index = [slice(None)] * a.ndim
    index[axis] = slice(None, None, 2)
    view = big[tuple(index)]
    view[...] = a
    return view


def reversed_view(a):
    """The values of `a` in a view with negative strides on every axis."""
    if a.ndim == 0:
        return np.array(a, copy=True)
    return np.flip(np.ascontiguousarray(np.flip(a)))


def fortran(a):
    return np.asfortranarray(a) if a.ndim else np.array(a, copy=True)  # (asfortranarray makes 0-d 1-d)


def readonly(a):
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def unaligned(a):
    """The values of `a` in a C-contiguous array whose data pointer is misaligned for its dtype."""
    if a.dtype.itemsize < 2 or a.size == 0:
        return np.array(a, copy=True)
    buf = np.zeros(a.nbytes + a.dtype.itemsize + 1, dtype=np.uint8)
    off = 1 if buf.ctypes.data % a.dtype.alignment == 0 else 0
    out = buf[off:off + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


def byteswapped(a):
    return a.astype(a.dtype.newbyteorder())


def as_list(a):
    return a.tolist()


def broadcast_huge(a):
    """A read-only broadcast view with a's ndim (at least 1) and a first axis of 2**40: a few
    bytes of memory posing as terabytes."""
    shape = (HUGE,) + tuple(max(s, 1) for s in a.shape[1:]) if a.ndim else (HUGE,)
    return np.broadcast_to(np.ones((), dtype=a.dtype), shape)


LAYOUTS = {  # value-preserving transforms
    "noncontig": lambda a, c: noncontig(a, c.int(0, max(a.ndim - 1, 0))),
    "reversed": lambda a, c: reversed_view(a),
    "fortran": lambda a, c: fortran(a),
    "readonly": lambda a, c: readonly(a),
    "unaligned": lambda a, c: unaligned(a),
    "byteswapped": lambda a, c: byteswapped(a),
}

BAD_DTYPES = {  # every one must be refused with a TypeError
    "complex64": lambda a: a.astype(np.complex64),
    "complex128": lambda a: a.astype(np.complex128) + 1j,
    "object": lambda a: a.astype(object),
    "str": lambda a: a.astype(str),
    "bytes": lambda a: a.astype("S16"),
    "datetime64": lambda a: np.zeros(a.shape, dtype="datetime64[s]"),
    "timedelta64": lambda a: np.zeros(a.shape, dtype="timedelta64[s]"),
    "structured": lambda a: np.zeros(a.shape, dtype=[("a", "f4"), ("b", "i4")]),
}

REAL_DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
               np.float16, np.float32, np.float64, np.longdouble]

def cast(a, dtype):
    """`a` as `dtype`. Floats go through unchanged; for bool and integer dtypes the magnitudes are
    rounded first (|a| rounded), so that a cast to an unsigned type does not wrap -0.3 into 255
    or 4e9: values that large belong to SPECIAL_VALUES, whose comparison is made for them."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f" or a.dtype.kind not in "f":
        return a.astype(dtype)
    with np.errstate(invalid="ignore", over="ignore"):  # (NaN and inf cast to some integer)
        return np.round(np.abs(a)).astype(dtype)


SPECIAL_VALUES = [np.nan, np.inf, -np.inf, -0.0, 1e30, -1e30, 1e-40, 5e-324, 3.4e38]


def ragged():
    return [[0.0], [0.0, 1.0]]


# ----------------------------------------------------------------------------- hostile hyper-parameters

NAN = float("nan")

# For int-or-pair arguments (strides, pool_size, dilation_rate, kernel_size, size):
PAIR_BAD = [0, -1, -2 ** 63, 2 ** 31, 2 ** 63, 2 ** 64, 2 ** 100, True, False, 1.5, 2.0, NAN, "2", b"2", "ab",
            (1,), (1, 2, 3), (0, 1), (1, -1), (1, True), (1, 2.0), (1, 2 ** 63), [], {}, 1j, np.float64(2.0),
            np.bool_(True), object(), np.array([[1, 1]])]
PAIR_OK = [1, 2, 3, (1, 2), [2, 1], np.int64(2), np.uint8(1), (np.int32(2), 1), np.array([1, 2])]

CONV_PADDING_BAD = ["full", "", "causal", "valid ", "vaild", None, -1, True, 1.5, (1,), (1, 2, 3),
                    ((1, 2, 3), (0, 0)), ((-1, 0), (0, 0)), (("a", 0), (0, 0)), ((0, 0), (0, True)), 2 ** 31,
                    2 ** 63, 2 ** 100, -2 ** 63, 1j, {}, object(), [[1]]]
# padding a convolution cannot allocate (terabytes of output or padded input); fine for shapes alone
CONV_PADDING_HUGE = [2 ** 20, (2 ** 20, 2 ** 20), ((2 ** 20, 0), (0, 2 ** 30))]
CONV_PADDING_OK = ["valid", "same", "SAME", "Valid", 0, 1, 2, (1, 0), [0, 2], ((0, 1), (2, 0)), np.int64(1),
                   (np.int32(1), 0)]

POOL_PADDING_BAD = ["full", "", None, 0, 1, True, (1, 1), 1.5, b"same", ["same"], object(), "same "]
POOL_PADDING_OK = ["valid", "same", "SAME", "Valid"]

DATA_FORMAT_BAD = ["NHWC", "", "channels-last", "channels_lasts", 1, True, b"channels_last", ["channels_last"],
                   object(), ("channels_last",)]
DATA_FORMAT_OK = ["channels_last", "channels_first", None, np.str_("channels_first"), "Channels_Last"]

REAL_BAD = [NAN, float("inf"), -float("inf"), "0.1", None, 1j, [0.1], True, False, object(),
            np.array([0.1, 0.2]), np.float64("nan"), np.bool_(True)]

FLAG_BAD = [1, 0, None, "False", "yes", 1.0, np.array([True, False]), [True], object()]
FLAG_OK = [True, False, np.True_, np.False_]

ACTIVATION_OK = ["linear", "tanh", "sigmoid", "relu", "hard_sigmoid", None]
ACTIVATION_BAD = ["TANH ", "softmax", "", "gelu", "swish", 1, b"tanh", ["tanh"], object(), True]

AXIS_BAD_TYPES = [2 ** 63, -2 ** 63, 2 ** 100, True, False, 1.0, None, "0", (0,), [0], np.array([0]), 1j, NAN]

POSINT_BAD = [0, -1, True, 2.0, "3", 2 ** 63, 2 ** 100, 1j, NAN, None, [3], object()]


def finite(x):
    return isinstance(x, float) and math.isfinite(x)


def short(v):
    """A stable, short label for a hyper-parameter value (no memory addresses)."""
    if type(v) is object:
        return "object()"
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."
