r"""Fuzz suite: every public kernel of cynet.kernels under hostile arguments.

Each case builds a valid call of one kernel (random small shapes, geometry, dtype and values),
checks that it succeeds with the same result on the compiled backend and on the NumPy twin, then
changes ONE argument in a hostile way and checks the contract of the public boundary:

* the call gives the same result on both backends (within the twin tolerance), or
* it raises ValueError/TypeError whose message names the changed argument, on both backends,
  without touching its IN/OUT arrays,

and, where the outcome is known in advance, that it is that outcome: complex, object, string,
bytes, datetime, timedelta and structured arrays, ragged lists, wrong ndim, wrong shapes of
arguments whose shape is fixed by the others, read-only / non-contiguous / wrongly typed IN/OUT
arrays, multi-terabyte broadcast views and bad hyper-parameters (zero, negative, huge, bool,
float, string, wrong-length strides / pool sizes / padding / dilation / data formats / axes /
flags / activation names / input shapes) must be refused; non-contiguous, reversed, Fortran-
ordered, read-only, unaligned and byte-swapped IN arrays and nested lists must give the result
of the plain array. No call may crash the interpreter, raise anything else (MemoryError,
OverflowError, IndexError, ...) or allocate the terabytes a hostile size asks for.

Three tests per kernel: a deterministic sweep of every hostile value of every argument over two
fixed valid calls, and two hypothesis tests (random valid calls against the twin; a random valid
call with one random hostile argument). test_every_kernel_is_fuzzed fails when a kernel or a
kernel parameter is added without a fuzz spec.

CI (the "ci" hypothesis profile of tests/conftest.py: 25 derandomized examples per test):
    python -P -m pytest -q -p no:cacheprovider \
        tests/robustness/test_fuzz_kernels.py tests/robustness/test_fuzz_layers.py
Long run (2000 examples per hypothesis test; about 10 minutes per file on two cores):
    HYPOTHESIS_PROFILE=long python -P -m pytest -q -p no:cacheprovider \
        tests/robustness/test_fuzz_kernels.py tests/robustness/test_fuzz_layers.py
"""
import importlib
import inspect
import tracemalloc
import types
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cynet.kernels as K
from cynet._kernels import manifest

import cynet_fuzz as fz  # (tests/robustness/conftest.py loads _fuzz.py under this name)
from kernel_cases import conv as conv_cases, depthwise as depthwise_cases, rnn as rnn_cases  # (bench/kernel_cases: the valid calls' builders)
from kernel_cases import normal as rnd  # an ndarray of normal values, also for shape ()

RAISE, SAME, OK, EITHER = fz.RAISE, fz.SAME, fz.OK, fz.EITHER
F32, F64 = fz.F32, fz.F64

# Everything public in cynet.kernels that is not a kernel.
BACKEND_HELPERS = {"get_backend", "set_backend", "use_backend", "info", "set_num_threads", "get_num_threads",
                   "set_adaptive_threads"}


def as_pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ----------------------------------------------------------------------------- parameter kinds
#
# A parameter kind lists the hostile (and the alternative valid) values of one argument as
# mutations: name -> prepare(chooser) -> apply(kwargs) -> (kwargs, expectation, exception types).

class Arr:
    """An array argument.

    ndim: None (any) or a predicate on the ndim; fixed: its shape is fixed by the other arguments
    (a changed shape must be refused); role: "in" or "inout" (updated in place); elem: "float",
    "index" (argmax: integers in [0, limit(kwargs))), "labels"; optional: None is valid, and
    template(kwargs) gives a valid array to mutate when the call has None; list_ok: a nested list
    of a float32 array (which becomes float64) must be accepted (False where that float64 then
    clashes with a float32 IN/OUT argument).
    """

    def __init__(self, ndim=None, fixed=True, role="in", elem="float", optional=False, template=None, limit=None,
                 list_ok=True, specials=None):
        if isinstance(ndim, int):
            want = ndim
            ndim = lambda d, want=want: d == want  # noqa: E731
        self.ndim, self.fixed, self.role, self.elem = ndim, fixed, role, elem
        self.optional, self.template, self.limit, self.list_ok = optional, template, limit, list_ok
        self.specials = fz.SPECIAL_VALUES if specials is None else specials

    def ndim_ok(self, d):
        return self.ndim is None or self.ndim(d)

    def mutations(self, name):
        muts = {}

        def value(kw):
            a = kw[name]
            return self.template(kw) if a is None else a

        def templated(kw, expect):
            # a template stands in for None, which it need not equal: SAME becomes OK
            return OK if expect == SAME and kw[name] is None else expect

        def put(kw, v):
            kw = dict(kw)
            kw[name] = v
            return kw

        def simple(fn, expect_fn):
            def prepare(c):
                def apply(kw):
                    a = value(kw)
                    new = fn(a)
                    expect, exc = expect_fn(a, new)
                    return put(kw, new), templated(kw, expect), exc
                return apply
            return prepare

        inout = self.role == "inout"
        for dname, conv in fz.BAD_DTYPES.items():
            muts[f"dtype={dname}"] = simple(conv, lambda a, new: (RAISE, TypeError))
        for t in fz.REAL_DTYPES:
            t = np.dtype(t)

            def expect_real(a, new, t=t):
                if inout:
                    return (SAME, None) if t == a.dtype else (RAISE, TypeError)
                if self.elem == "index":
                    if t.kind in "iu":
                        return SAME, None
                    return (EITHER, None) if t.kind == "b" else (RAISE, TypeError)
                if self.elem == "float" and t == a.dtype:
                    return SAME, None
                return EITHER, None
            muts[f"dtype={t.name}"] = simple(lambda a, t=t: fz.cast(a, t), expect_real)

        def expect_layout(a, new):
            if not inout:
                return SAME, None
            if not new.flags.writeable:
                return RAISE, ValueError
            if new.dtype != a.dtype:
                return RAISE, TypeError
            if not new.flags.c_contiguous:
                return RAISE, ValueError
            return SAME, None

        for lname, fn in fz.LAYOUTS.items():
            def prepare(c, fn=fn, lname=lname):
                seed = c.int(0, 3)

                def apply(kw):
                    a = value(kw)
                    new = fn(a, fz.RandomChooser(seed))
                    expect, exc = expect_layout(a, new)
                    return put(kw, new), templated(kw, expect), exc
                return apply
            muts[f"layout={lname}"] = prepare

        def expect_list(a, new):
            if inout:
                return RAISE, TypeError
            if self.elem == "float" and a.dtype != F64:
                return (OK if self.list_ok else EITHER), None
            return (SAME, None) if self.elem != "labels" else (OK, None)
        muts["list"] = simple(fz.as_list, expect_list)
        muts["ragged"] = simple(lambda a: fz.ragged(), lambda a, new: (RAISE, (TypeError, ValueError)))
        muts["none"] = simple(lambda a: None, lambda a, new: (OK, None) if self.optional else (RAISE, None))
        muts["python_scalar"] = simple(
            lambda a: 0.5, lambda a, new: (RAISE, None) if inout or not self.ndim_ok(0) else (EITHER, None))
        muts["huge_broadcast"] = simple(fz.broadcast_huge, lambda a, new: (RAISE, None))

        def shape_expect(a, new):
            if not self.ndim_ok(new.ndim):
                return RAISE, None
            if self.fixed:
                return RAISE, None
            return EITHER, None

        def axis_mutation(edit):
            def prepare(c):
                pick = c.int(0, 7)

                def apply(kw):
                    a = value(kw)
                    new = edit(a, pick)
                    if new is None:  # not applicable to this array: leave it valid
                        return kw, SAME, None
                    expect, exc = shape_expect(a, new)
                    return put(kw, new), expect, exc
                return apply
            return prepare

        def add_axis(a, pick):
            return np.expand_dims(a, pick % (a.ndim + 1))

        def drop_axis(a, pick):
            if a.ndim == 0 or a.size == 0:
                return None
            return np.take(a, 0, axis=pick % a.ndim)

        def grow(a, pick):
            if a.ndim == 0:
                return None
            ax = pick % a.ndim
            extra = a.take([0], axis=ax) if a.shape[ax] else np.zeros(a.shape[:ax] + (1,) + a.shape[ax + 1:], a.dtype)
            return np.concatenate([a, extra], axis=ax)

        def shrink(a, pick):
            axes = [i for i in range(a.ndim) if a.shape[i] >= 2]
            if not axes:
                return None
            return np.delete(a, -1, axis=axes[pick % len(axes)])

        def zero(a, pick):
            if a.ndim == 0 or a.size == 0:
                return None
            ax = pick % a.ndim
            return np.take(a, [], axis=ax)

        muts["add_axis"] = axis_mutation(add_axis)
        muts["drop_axis"] = axis_mutation(drop_axis)
        muts["grow_axis"] = axis_mutation(grow)
        muts["shrink_axis"] = axis_mutation(shrink)
        muts["zero_axis"] = axis_mutation(zero)

        if self.elem == "float":
            def prepare(c):
                picks = [(c.int(0, 10 ** 6), c.choice(self.specials)) for _ in range(c.int(1, 3))]

                def apply(kw):
                    a = value(kw)
                    if a.size == 0:
                        return kw, SAME, None
                    new = np.array(a, copy=True)
                    flat = new.reshape(-1)
                    for i, v in picks:
                        flat[i % flat.size] = v
                    return put(kw, new), EITHER, None
                return apply
            muts["special_values"] = prepare
        if self.elem == "index":
            def prepare(c):
                which = c.int(0, 3)
                pos = c.int(0, 10 ** 6)

                def apply(kw):
                    a = value(kw)
                    limit = self.limit(kw)
                    bad = [-1, limit, 2 ** 31 - 1, -2 ** 31][which]
                    new = np.array(a, copy=True)
                    new.reshape(-1)[pos % new.size] = bad
                    return put(kw, new), RAISE, ValueError
                return apply
            muts["index_out_of_range"] = prepare
            muts["index_int64_huge"] = simple(lambda a: a.astype(np.int64) + 2 ** 40,
                                              lambda a, new: (RAISE, ValueError))
        return muts


class Values:
    """A hyper-parameter given by tables of values: bad ones must be refused; ok ones
    (EITHER unless listed in `sure`) may still be refused, naming the argument."""

    def __init__(self, bad, ok=(), sure=(), same=()):
        self.bad, self.ok, self.sure, self.same = list(bad), list(ok), list(sure), list(same)

    def mutations(self, name):
        muts = {}

        def fixed(v, expect):
            def prepare(c):
                def apply(kw):
                    kw = dict(kw)
                    kw[name] = v
                    return kw, expect, None
                return apply
            return prepare

        for i, v in enumerate(self.bad):
            muts[f"bad[{i}]={fz.short(v)}"] = fixed(v, RAISE)
        for i, v in enumerate(self.ok):
            muts[f"ok[{i}]={fz.short(v)}"] = fixed(v, EITHER)
        for i, v in enumerate(self.sure):
            muts[f"sure[{i}]={fz.short(v)}"] = fixed(v, OK)
        for i, fn in enumerate(self.same):  # functions of the valid value giving an equivalent one
            def prepare(c, fn=fn):
                def apply(kw):
                    kw = dict(kw)
                    kw[name] = fn(kw[name])
                    return kw, SAME, None
                return apply
            muts[f"same[{i}]"] = prepare
        return muts


def Pair(none_ok=False):
    return Values(fz.PAIR_BAD + ([] if none_ok else [None]), fz.PAIR_OK + ([None] if none_ok else []),
                  same=[lambda v: v if v is None else list(as_pair(v)),
                        lambda v: v if v is None else tuple(np.int64(s) for s in as_pair(v))])


def ConvPadding(shapes_only=False):
    huge = fz.CONV_PADDING_HUGE
    return Values(fz.CONV_PADDING_BAD + ([] if shapes_only else huge),
                  fz.CONV_PADDING_OK + (huge if shapes_only else []),
                  same=[lambda v: v.upper() if isinstance(v, str) else v])


def PoolPadding():
    return Values(fz.POOL_PADDING_BAD, fz.POOL_PADDING_OK, same=[lambda v: v.upper()])


def DataFormat():
    return Values(fz.DATA_FORMAT_BAD, fz.DATA_FORMAT_OK)


def Real(ok, bad=()):
    return Values(fz.REAL_BAD + list(bad), list(ok) + [np.array(0.5)])


def Flag():
    return Values(fz.FLAG_BAD, [np.array(True)], sure=fz.FLAG_OK)


def Activation():
    return Values(fz.ACTIVATION_BAD, sure=fz.ACTIVATION_OK)


class Axis(Values):
    """An axis of the array argument `of`."""

    def __init__(self, of):
        super().__init__(fz.AXIS_BAD_TYPES, [np.int64(0), np.int32(-1)])
        self.of = of

    def mutations(self, name):
        muts = super().mutations(name)

        def rel(offset, expect):
            def prepare(c):
                def apply(kw):
                    nd = np.ndim(kw[self.of])
                    kw = dict(kw)
                    kw[name] = {"ndim": nd, "-ndim-1": -nd - 1, "0": 0, "-1": -1}[offset]
                    return kw, expect, None
                return apply
            return prepare
        muts["axis=ndim"] = rel("ndim", RAISE)
        muts["axis=-ndim-1"] = rel("-ndim-1", RAISE)
        muts["axis=0"] = rel("0", EITHER)
        muts["axis=-1"] = rel("-1", EITHER)
        return muts


class Shape4(Values):
    """A 4-entry shape argument (input_shape). `unknown_ok`: None entries are allowed and the
    function only computes shapes (so a huge entry is fine)."""

    def __init__(self, unknown_ok=False, zero_ok=False):
        bad = [None, 5, "abcd", (1, 2, 3), (1, 2, 3, 4, 5), 2.5, (1, 2, 3, 4.0), [1, True, 2, 2], (1, "2", 2, 2),
               (1, 2, -1, 2), (1, 2, 2, 1j)]
        if not zero_ok:
            bad.append((1, 0, 2, 2))
        if not unknown_ok:
            bad.append((None, 2, 2, 2))
        super().__init__(bad, same=[list, lambda v: np.array([-1 if s is None else s for s in v]) if None not in v
                                    else v, lambda v: tuple(s if s is None else np.int64(s) for s in v)])
        self.unknown_ok, self.zero_ok = unknown_ok, zero_ok

    def mutations(self, name):
        muts = super().mutations(name)

        def entry(value, expect):
            def prepare(c):
                pos = c.int(0, 3)

                def apply(kw):
                    shape = list(kw[name])
                    old = shape[pos]
                    shape[pos] = value(old) if callable(value) else value
                    kw = dict(kw)
                    kw[name] = tuple(shape)
                    return kw, expect, None
                return apply
            return prepare
        muts["entry+1"] = entry(lambda s: s if s is None else s + 1, EITHER)
        muts["entry=0"] = entry(0, EITHER if self.zero_ok else RAISE)
        muts["entry=-1"] = entry(-1, RAISE)
        muts["entry=None"] = entry(None, EITHER if self.unknown_ok else RAISE)
        muts["entry=2**40"] = entry(2 ** 40, EITHER if self.unknown_ok else RAISE)
        muts["entry=2**100"] = entry(2 ** 100, EITHER if self.unknown_ok else RAISE)
        muts["entry=True"] = entry(True, RAISE)
        muts["entry=1.0"] = entry(1.0, RAISE)
        return muts


def PosInt(none_ok=False):
    bad = [v for v in fz.POSINT_BAD if not (none_ok and v is None)]
    return Values(bad, [1, 4, np.int64(2), np.uint16(3)], sure=[None] if none_ok else [])


# ----------------------------------------------------------------------------- kernel specs

class Spec:
    def __init__(self, name, params, make, inout=()):
        self.name, self.fn, self.params, self.make, self.inout = name, getattr(K, name), params, make, tuple(inout)
        # kernels that sum products (GEMMs, reductions, recurrences): with infinities in the
        # input, where NaN and inf land depends on the order of summation (see fz.assert_close)
        self.lenient = name.startswith(("conv", "batch_norm", "simple_rnn", "lstm", "gru", "softmax", "layer_norm",
                                        "group_norm", "masked_softmax", "depthwise_conv", "attention_"))

    def mutations(self, pname):
        muts = self.params[pname].mutations(pname)
        if pname in self.inout:
            # an IN/OUT array that is another array argument: refused, or the same on both backends
            for other, kind in self.params.items():
                if other != pname and isinstance(kind, Arr):
                    muts[f"alias={other}"] = self._alias(pname, other)
        return muts

    @staticmethod
    def _alias(pname, other):
        def prepare(c):
            def apply(kw):
                if not isinstance(kw.get(other), np.ndarray):
                    return kw, SAME, None
                kw = dict(kw)
                kw[pname] = kw[other]
                return kw, EITHER, None
            return apply
        return prepare


SPECS = {}


def spec(name, params, inout=()):
    def deco(make):
        SPECS[name] = Spec(name, params, make, inout)
        return make
    return deco


def _fmt_shape(n, h, w, c, fmt):
    return (n, c, h, w) if fmt == "channels_first" else (n, h, w, c)


# --- convolution

def _conv_geometry(c):
    g = types.SimpleNamespace()
    g.seed = c.int(0, 2 ** 31 - 1)
    g.dt = c.choice([F32, F64])
    g.fmt = c.choice(["channels_last", "channels_first", None])
    g.groups = c.choice([1, 1, 2])
    g.N, g.C, g.F = c.int(1, 3), c.int(1, 3) * g.groups, c.int(1, 3) * g.groups
    g.KH, g.KW = c.int(1, 3), c.int(1, 3)
    g.strides = c.choice([1, 2, 3, (1, 2), (2, 1)])
    g.dil = c.choice([1, 2, (1, 2), (2, 1)])
    g.padding = c.choice(["valid", "same", "SAME", 0, 1, (1, 0), ((0, 1), (2, 0))])
    dh, dw = as_pair(g.dil)
    g.H = (g.KH - 1) * dh + 1 + c.int(0, 3)
    g.W = (g.KW - 1) * dw + 1 + c.int(0, 3)
    g.xshape = _fmt_shape(g.N, g.H, g.W, g.C, g.fmt)
    g.use_bias, g.compute_dx = c.bool(), c.bool()
    return g


def _conv_arguments(g, rng):
    return conv_cases.arguments(rng, g.dt, g.xshape, (g.KH, g.KW, g.C // g.groups, g.F), bias=g.use_bias,
                                kernel_scale=1.0, strides=g.strides, padding=g.padding, dilation_rate=g.dil,
                                data_format=g.fmt, groups=g.groups)


CONV_LAYOUT = dict(strides=Pair(), padding=ConvPadding(), dilation_rate=Pair(), data_format=DataFormat())
# groups: ok values may be refused (they must divide the channels and filters), naming groups
GROUPS = Values([0, -1, True, 1.5, "1", None, 2 ** 63, [1], object()], [1, 2, 3, np.int64(1)])


@spec("conv2d_forward", dict(x=Arr(4, fixed=False), kernel=Arr(4, fixed=False),
                             bias=Arr(1, optional=True, template=lambda kw: np.zeros(np.shape(kw["kernel"])[3],
                                                                                     np.asarray(kw["x"]).dtype)),
                             groups=GROUPS, **CONV_LAYOUT))
def make_conv2d_forward(c):
    g = _conv_geometry(c)

    def build():
        return _conv_arguments(g, np.random.default_rng(g.seed))
    return build


@spec("conv2d_backward", dict(dy=Arr(4), x=Arr(4, fixed=False), kernel=Arr(4, fixed=False), use_bias=Flag(),
                              compute_dx=Flag(), groups=GROUPS, **CONV_LAYOUT))
def make_conv2d_backward(c):
    g = _conv_geometry(c)

    def build():
        rng = np.random.default_rng(g.seed)
        kw = _conv_arguments(g, rng)
        return conv_cases.backward_arguments(kw, conv_cases.output_gradient(rng, kw), g.compute_dx)
    return build


@spec("conv2d_output_shape", dict(input_shape=Shape4(unknown_ok=True, zero_ok=True), kernel_size=Pair(),
                                  filters=PosInt(none_ok=True), **dict(CONV_LAYOUT, padding=ConvPadding(True))))
def make_conv2d_output_shape(c):
    g = _conv_geometry(c)
    unknown = c.choice([(), (0,), (0, 1), (1,), (2,)])
    shape = tuple(None if i in unknown else s for i, s in enumerate(g.xshape))
    filters = c.choice([g.F, None])

    def build():
        return dict(input_shape=shape, kernel_size=(g.KH, g.KW), strides=g.strides, padding=g.padding,
                    dilation_rate=g.dil, data_format=g.fmt, filters=filters)
    return build


# --- transposed convolution

def _transpose_geometry(c):
    g = types.SimpleNamespace()
    g.seed = c.int(0, 2 ** 31 - 1)
    g.dt = c.choice([F32, F64])
    g.fmt = c.choice(["channels_last", "channels_first", None])
    g.N, g.C, g.F = c.int(1, 3), c.int(1, 3), c.int(1, 3)
    g.KH, g.KW = c.int(1, 3), c.int(1, 3)
    g.strides = c.choice([1, 2, 3, (1, 2), (2, 1)])
    sh, sw = as_pair(g.strides)
    g.output_padding = c.choice([None, None, 0, (sh - 1, 0), (0, sw - 1)])
    g.dil = c.choice([1, 2, (1, 2)])
    g.padding = c.choice(["valid", "same", "SAME"])
    g.H, g.W = c.int(2, 4), c.int(2, 4)
    g.xshape = _fmt_shape(g.N, g.H, g.W, g.C, g.fmt)
    g.use_bias, g.compute_dx = c.bool(), c.bool()
    return g


def _transpose_arguments(g, rng):
    return conv_cases.transpose_arguments(rng, g.dt, g.xshape, (g.KH, g.KW, g.F, g.C), bias=g.use_bias,
                                          kernel_scale=1.0, strides=g.strides, padding=g.padding,
                                          output_padding=g.output_padding, dilation_rate=g.dil, data_format=g.fmt)


# output_padding: each entry must be below its stride (ok values may be refused, naming it)
OUTPUT_PADDING = Values([-1, "1", 1.5, True, (0,), (0, 0, 0), (0, -1), object(), 2 ** 63, [[0]]],
                        [None, 0, (0, 0), np.int64(0), 1, (1, 0)])
TRANSPOSE_LAYOUT = dict(strides=Pair(), padding=PoolPadding(), output_padding=OUTPUT_PADDING, dilation_rate=Pair(),
                        data_format=DataFormat())


@spec("conv2d_transpose_forward", dict(
    x=Arr(4, fixed=False), kernel=Arr(4, fixed=False),
    bias=Arr(1, optional=True, template=lambda kw: np.zeros(np.shape(kw["kernel"])[2], np.asarray(kw["x"]).dtype)),
    **TRANSPOSE_LAYOUT))
def make_conv2d_transpose_forward(c):
    g = _transpose_geometry(c)

    def build():
        return _transpose_arguments(g, np.random.default_rng(g.seed))
    return build


@spec("conv2d_transpose_backward", dict(dy=Arr(4), x=Arr(4, fixed=False), kernel=Arr(4, fixed=False),
                                        use_bias=Flag(), compute_dx=Flag(), **TRANSPOSE_LAYOUT))
def make_conv2d_transpose_backward(c):
    g = _transpose_geometry(c)

    def build():
        rng = np.random.default_rng(g.seed)
        kw = _transpose_arguments(g, rng)
        return conv_cases.transpose_backward_arguments(kw, conv_cases.transpose_output_gradient(rng, kw),
                                                       g.compute_dx)
    return build


@spec("conv2d_transpose_output_shape", dict(input_shape=Shape4(unknown_ok=True, zero_ok=True), kernel_size=Pair(),
                                            filters=PosInt(), **TRANSPOSE_LAYOUT))
def make_conv2d_transpose_output_shape(c):
    g = _transpose_geometry(c)
    unknown = c.choice([(), (0,), (0, 1), (1,), (2,)])
    shape = tuple(None if i in unknown else s for i, s in enumerate(g.xshape))

    def build():
        return dict(input_shape=shape, kernel_size=(g.KH, g.KW), filters=g.F, strides=g.strides, padding=g.padding,
                    output_padding=g.output_padding, dilation_rate=g.dil, data_format=g.fmt)
    return build


# --- depthwise convolution (the convolution's geometry; kernel (KH, KW, C, M), M the depth multiplier)

def _depthwise_arguments(g, rng):
    return depthwise_cases.arguments(rng, g.dt, g.xshape, (g.KH, g.KW, g.C, g.F), bias=g.use_bias, kernel_scale=1.0,
                                     strides=g.strides, padding=g.padding, dilation_rate=g.dil, data_format=g.fmt)


@spec("depthwise_conv2d_forward",
      dict(x=Arr(4, fixed=False), kernel=Arr(4, fixed=False),
           bias=Arr(1, optional=True, template=lambda kw: np.zeros(np.shape(kw["kernel"])[2] * np.shape(kw["kernel"])[3],
                                                                   np.asarray(kw["x"]).dtype)),
           **CONV_LAYOUT))
def make_depthwise_conv2d_forward(c):
    g = _conv_geometry(c)

    def build():
        return _depthwise_arguments(g, np.random.default_rng(g.seed))
    return build


@spec("depthwise_conv2d_backward", dict(dy=Arr(4), x=Arr(4, fixed=False), kernel=Arr(4, fixed=False),
                                        use_bias=Flag(), compute_dx=Flag(), **CONV_LAYOUT))
def make_depthwise_conv2d_backward(c):
    g = _conv_geometry(c)

    def build():
        rng = np.random.default_rng(g.seed)
        kw = _depthwise_arguments(g, rng)
        return depthwise_cases.backward_arguments(kw, depthwise_cases.output_gradient(rng, kw), g.compute_dx)
    return build


@spec("depthwise_conv2d_output_shape", dict(input_shape=Shape4(unknown_ok=True, zero_ok=True), kernel_size=Pair(),
                                            depth_multiplier=PosInt(), **dict(CONV_LAYOUT, padding=ConvPadding(True))))
def make_depthwise_conv2d_output_shape(c):
    g = _conv_geometry(c)
    unknown = c.choice([(), (0,), (0, 1), (1,), (2,)])
    shape = tuple(None if i in unknown else s for i, s in enumerate(g.xshape))

    def build():
        return dict(input_shape=shape, kernel_size=(g.KH, g.KW), strides=g.strides, padding=g.padding,
                    dilation_rate=g.dil, data_format=g.fmt, depth_multiplier=g.F)
    return build


# --- pooling

def _pool_geometry(c, pool_needed=True):
    g = types.SimpleNamespace()
    g.seed = c.int(0, 2 ** 31 - 1)
    g.dt = c.choice([F32, F64])
    g.fmt = c.choice(["channels_last", "channels_first", None])
    g.N, g.C = c.int(1, 3), c.int(1, 3)
    g.pool = c.choice([1, 2, 3, (2, 1), (1, 3), (2, 3)])
    g.strides = c.choice([None, 1, 2, (1, 2), (3, 1)])
    g.padding = c.choice(["valid", "same"])
    ph, pw = as_pair(g.pool)
    g.H, g.W = ph + c.int(0, 3), pw + c.int(0, 3)
    g.xshape = _fmt_shape(g.N, g.H, g.W, g.C, g.fmt)
    return g


POOL_LAYOUT = dict(pool_size=Pair(), strides=Pair(none_ok=True), padding=PoolPadding(), data_format=DataFormat())


def _pool_out(g):
    return K.pool2d_output_shape(g.xshape, g.pool, g.strides, g.padding, g.fmt)


for _name in ("max_pool2d_forward", "avg_pool2d_forward"):
    @spec(_name, dict(x=Arr(4, fixed=False), **POOL_LAYOUT))
    def make_pool_forward(c):
        g = _pool_geometry(c)

        def build():
            rng = np.random.default_rng(g.seed)
            return dict(x=rnd(rng, g.xshape, g.dt), pool_size=g.pool, strides=g.strides, padding=g.padding,
                        data_format=g.fmt)
        return build


def _pool_limit(kw):
    ph, pw = as_pair(kw["pool_size"])
    return ph * pw


@spec("max_pool2d_backward", dict(dy=Arr(4), argmax=Arr(4, elem="index", limit=_pool_limit),
                                  input_shape=Shape4(), **POOL_LAYOUT))
def make_max_pool2d_backward(c):
    g = _pool_geometry(c)

    def build():
        rng = np.random.default_rng(g.seed)
        oshape = _pool_out(g)
        ph, pw = as_pair(g.pool)
        return dict(dy=rnd(rng, oshape, g.dt), argmax=rng.integers(0, ph * pw, oshape).astype(np.int32),
                    input_shape=g.xshape, pool_size=g.pool, strides=g.strides, padding=g.padding, data_format=g.fmt)
    return build


@spec("avg_pool2d_backward", dict(dy=Arr(4), input_shape=Shape4(), **POOL_LAYOUT))
def make_avg_pool2d_backward(c):
    g = _pool_geometry(c)

    def build():
        rng = np.random.default_rng(g.seed)
        return dict(dy=rnd(rng, _pool_out(g), g.dt), input_shape=g.xshape, pool_size=g.pool, strides=g.strides,
                    padding=g.padding, data_format=g.fmt)
    return build


@spec("pool2d_output_shape", dict(input_shape=Shape4(unknown_ok=True), **POOL_LAYOUT))
def make_pool2d_output_shape(c):
    g = _pool_geometry(c)
    unknown = c.choice([(), (0,), (0, 1), (1,), (2,)])
    shape = tuple(None if i in unknown else s for i, s in enumerate(g.xshape))

    def build():
        return dict(input_shape=shape, pool_size=g.pool, strides=g.strides, padding=g.padding, data_format=g.fmt)
    return build


for _name in ("global_avg_pool2d_forward", "global_max_pool2d_forward"):
    @spec(_name, dict(x=Arr(4, fixed=False), data_format=DataFormat()))
    def make_global_forward(c):
        g = _pool_geometry(c)

        def build():
            rng = np.random.default_rng(g.seed)
            return dict(x=rnd(rng, g.xshape, g.dt), data_format=g.fmt)
        return build


@spec("global_avg_pool2d_backward", dict(dy=Arr(2), input_shape=Shape4(), data_format=DataFormat()))
def make_global_avg_pool2d_backward(c):
    g = _pool_geometry(c)

    def build():
        rng = np.random.default_rng(g.seed)
        return dict(dy=rnd(rng, (g.N, g.C), g.dt), input_shape=g.xshape, data_format=g.fmt)
    return build


def _global_limit(kw):
    shape = kw["input_shape"]
    return shape[2] * shape[3] if kw["data_format"] == "channels_first" else shape[1] * shape[2]


@spec("global_max_pool2d_backward", dict(dy=Arr(2), argmax=Arr(2, elem="index", limit=_global_limit),
                                         input_shape=Shape4(), data_format=DataFormat()))
def make_global_max_pool2d_backward(c):
    g = _pool_geometry(c)

    def build():
        rng = np.random.default_rng(g.seed)
        return dict(dy=rnd(rng, (g.N, g.C), g.dt), argmax=rng.integers(0, g.H * g.W, (g.N, g.C)).astype(np.int32),
                    input_shape=g.xshape, data_format=g.fmt)
    return build


def _upsampling_geometry(c):
    g = _pool_geometry(c)
    g.size = c.choice([1, 2, 3, (1, 2), (3, 1)])
    return g


@spec("upsampling2d_forward", dict(x=Arr(4, fixed=False), size=Pair(), data_format=DataFormat()))
def make_upsampling2d_forward(c):
    g = _upsampling_geometry(c)

    def build():
        rng = np.random.default_rng(g.seed)
        return dict(x=rnd(rng, g.xshape, g.dt), size=g.size, data_format=g.fmt)
    return build


@spec("upsampling2d_backward", dict(dy=Arr(4, fixed=False), size=Pair(), data_format=DataFormat()))
def make_upsampling2d_backward(c):
    g = _upsampling_geometry(c)
    sh, sw = as_pair(g.size)

    def build():
        rng = np.random.default_rng(g.seed)
        return dict(dy=rnd(rng, _fmt_shape(g.N, g.H * sh, g.W * sw, g.C, g.fmt), g.dt), size=g.size, data_format=g.fmt)
    return build


# --- attention: the masked softmax

def _attention_geometry(c):
    g = types.SimpleNamespace()
    g.seed = c.int(0, 2 ** 31 - 1)
    g.dt = c.choice([F32, F64])
    g.shape = tuple(c.int(1, 4) for _ in range(c.int(1, 4)))
    # the mask: None, or the scores' shape with some axes 1 and some leading axes dropped
    g.masked = c.bool()
    g.mask_shape = tuple(1 if c.bool() else s for s in g.shape)[c.int(0, len(g.shape) - 1):]
    g.scale = c.choice([1.0, 0.125, -2.0])
    g.out = c.bool()
    return g


def _attention_mask_template(kw):
    return np.ones(np.shape(kw["scores"] if "scores" in kw else kw["p"]), bool)


ATTENTION_MASK = Arr(None, fixed=False, optional=True, template=_attention_mask_template)
# out: None, or an array of the result's shape and dtype (the input itself allowed: in place)
ATTENTION_OUT = Arr(lambda d: 1 <= d <= 4, role="inout", optional=True, list_ok=False,
                    template=lambda kw: np.zeros(np.shape(kw["scores"] if "scores" in kw else kw["p"]),
                                                 np.asarray(kw["scores"] if "scores" in kw else kw["p"]).dtype))
ATTENTION_SCALE = Real([1.0, 0.5, -1.0, np.float32(0.3), np.int64(2)])


@spec("masked_softmax_forward", dict(scores=Arr(lambda d: 1 <= d <= 4, fixed=False), mask=ATTENTION_MASK,
                                     scale=ATTENTION_SCALE, out=ATTENTION_OUT), inout=("out",))
def make_masked_softmax_forward(c):
    g = _attention_geometry(c)

    def build():
        rng = np.random.default_rng(g.seed)
        mask = rng.random(g.mask_shape) < 0.7 if g.masked else None
        return dict(scores=rnd(rng, g.shape, g.dt, 3.0), mask=mask, scale=g.scale,
                    out=np.zeros(g.shape, g.dt) if g.out else None)
    return build


@spec("masked_softmax_backward", dict(dp=Arr(lambda d: 1 <= d <= 4), p=Arr(lambda d: 1 <= d <= 4, fixed=False),
                                      mask=ATTENTION_MASK, scale=ATTENTION_SCALE, out=ATTENTION_OUT), inout=("out",))
def make_masked_softmax_backward(c):
    g = _attention_geometry(c)

    def build():
        rng = np.random.default_rng(g.seed)
        z = np.exp(rnd(rng, g.shape, np.float64))
        mask = rng.random(g.mask_shape) < 0.7 if g.masked else None
        return dict(dp=rnd(rng, g.shape, g.dt), p=(z / z.sum(axis=-1, keepdims=True)).astype(g.dt), mask=mask,
                    scale=g.scale, out=np.zeros(g.shape, g.dt) if g.out else None)
    return build


# --- attention: the fused dot-product attention

def _heads_geometry(c):
    g = types.SimpleNamespace()
    g.seed = c.int(0, 2 ** 31 - 1)
    g.dt = c.choice([F32, F64])
    g.B, g.T, g.S, g.H, g.dk, g.dv = (c.int(1, 4) for _ in range(6))
    # the mask: None, or the scores' (B, H, T, S) shape with some axes 1 and some leading axes dropped
    g.masked = c.bool()
    g.mask_shape = tuple(1 if c.bool() else s for s in (g.B, g.H, g.T, g.S))[c.int(0, 3):]
    g.scale = c.choice([1.0, 0.125, -2.0])
    return g


def _heads_build(g, rng):
    q, k, v = (rnd(rng, shape, g.dt) for shape in ((g.B, g.T, g.H, g.dk), (g.B, g.S, g.H, g.dk), (g.B, g.S, g.H, g.dv)))
    return dict(query=q, key=k, value=v, mask=rng.random(g.mask_shape) < 0.7 if g.masked else None, scale=g.scale)


def _heads_mask_template(kw):
    q, k = np.asarray(kw["query"]), np.asarray(kw["key"])
    return np.ones((q.shape[0], q.shape[2], q.shape[1], k.shape[1]), bool)


HEADS_MASK = Arr(None, fixed=False, optional=True, template=_heads_mask_template)


@spec("attention_forward", dict(query=Arr(4, fixed=False), key=Arr(4, fixed=False), value=Arr(4, fixed=False),
                                mask=HEADS_MASK, scale=ATTENTION_SCALE))
def make_attention_forward(c):
    g = _heads_geometry(c)
    return lambda: _heads_build(g, np.random.default_rng(g.seed))


# the gradients' layout: "qkv" needs as many keys as queries (refused otherwise)
HEADS_PACKED = Values(["q", "QKV", 1, 2, True, b"kv", object()], ["qkv"], sure=[None, "kv"])


@spec("attention_backward", dict(grad=Arr(4), query=Arr(4, fixed=False), key=Arr(4, fixed=False),
                                 value=Arr(4, fixed=False), p=Arr(4), mask=HEADS_MASK, scale=ATTENTION_SCALE,
                                 packed=HEADS_PACKED))
def make_attention_backward(c):
    g = _heads_geometry(c)

    def build():
        rng = np.random.default_rng(g.seed)
        kw = _heads_build(g, rng)
        z = np.exp(rnd(rng, (g.B, g.H, g.T, g.S), np.float64))
        return dict(kw, grad=rnd(rng, (g.B, g.T, g.H, g.dv), g.dt), p=(z / z.sum(axis=-1, keepdims=True)).astype(g.dt))
    return build


# --- batch normalization

def _bn_geometry(c):
    g = types.SimpleNamespace()
    g.seed = c.int(0, 2 ** 31 - 1)
    g.dt = c.choice([F32, F64])
    g.C = c.int(1, 4)
    g.shape = tuple(c.int(1, 3) for _ in range(c.int(1, 3))) + (g.C,)
    g.scale, g.center = c.bool(), c.bool()
    g.momentum = c.choice([0.0, 0.5, 0.99, 1.0])
    g.epsilon = c.choice([1e-3, 1e-5, 0.5])
    return g


def _ones(kw):
    return np.ones(np.shape(kw["x"])[-1], dtype=np.asarray(kw["x"]).dtype)


def _zeros(kw):
    return np.zeros(np.shape(kw["x"])[-1], dtype=np.asarray(kw["x"]).dtype)


MOMENTUM = Real([0.0, 1.0, 0.5, np.float32(0.9), np.float64(0.99), 1, np.int64(0)], bad=[-0.1, 1.1, 2, -1e-300])
EPSILON = Real([1e-3, 1.0, 1e-30, np.float32(1e-5), 2, 1e300], bad=[0.0, -1e-3, -1, 0])
BN_VEC = dict(gamma=Arr(1, optional=True, template=_ones), beta=Arr(1, optional=True, template=_zeros))


@spec("batch_norm_train_forward",
      dict(x=Arr(lambda d: d >= 2, fixed=False, list_ok=False), moving_mean=Arr(1, role="inout"),
           moving_variance=Arr(1, role="inout"),
           momentum=MOMENTUM, epsilon=EPSILON, **BN_VEC), inout=("moving_mean", "moving_variance"))
def make_batch_norm_train_forward(c):
    g = _bn_geometry(c)

    def build():
        rng = np.random.default_rng(g.seed)
        return dict(x=rnd(rng, g.shape, g.dt), gamma=rnd(rng, (g.C,), g.dt) if g.scale else None,
                    beta=rnd(rng, (g.C,), g.dt) if g.center else None, moving_mean=rnd(rng, (g.C,), g.dt),
                    moving_variance=np.abs(rnd(rng, (g.C,), g.dt)) + 0.1, momentum=g.momentum, epsilon=g.epsilon)
    return build


@spec("batch_norm_inference_forward",
      dict(x=Arr(lambda d: d >= 2, fixed=False), moving_mean=Arr(1), moving_variance=Arr(1), epsilon=EPSILON, **BN_VEC))
def make_batch_norm_inference_forward(c):
    g = _bn_geometry(c)

    def build():
        rng = np.random.default_rng(g.seed)
        return dict(x=rnd(rng, g.shape, g.dt), gamma=rnd(rng, (g.C,), g.dt) if g.scale else None,
                    beta=rnd(rng, (g.C,), g.dt) if g.center else None, moving_mean=rnd(rng, (g.C,), g.dt),
                    moving_variance=np.abs(rnd(rng, (g.C,), g.dt)) + 0.1, epsilon=g.epsilon)
    return build


@spec("batch_norm_backward", dict(dy=Arr(lambda d: d >= 2), x=Arr(lambda d: d >= 2, fixed=False),
                                  gamma=Arr(1, optional=True, template=_ones), mean=Arr(1), inv_std=Arr(1)))
def make_batch_norm_backward(c):
    g = _bn_geometry(c)

    def build():
        rng = np.random.default_rng(g.seed)
        x = rnd(rng, g.shape, g.dt)
        axes = tuple(range(x.ndim - 1))
        return dict(dy=rnd(rng, g.shape, g.dt), x=x, gamma=rnd(rng, (g.C,), g.dt) if g.scale else None,
                    mean=x.mean(axis=axes), inv_std=(1 / np.sqrt(x.var(axis=axes) + g.epsilon)).astype(g.dt))
    return build


# --- layer and group normalization

def _ln_geometry(c, min_ndim=1):
    g = types.SimpleNamespace()
    g.seed = c.int(0, 2 ** 31 - 1)
    g.dt = c.choice([F32, F64])
    g.groups = c.choice([1, 2, 3])
    g.C = g.groups * c.int(1, 3)
    g.shape = tuple(c.int(1, 3) for _ in range(c.int(min_ndim - 1, 2))) + (g.C,)
    g.scale, g.center, g.rms = c.bool(), c.bool(), c.bool()
    g.epsilon = c.choice([1e-3, 1e-5, 0.5])
    return g


def _ln_stats(x, epsilon, axes):
    return x.mean(axis=axes), (1 / np.sqrt(x.var(axis=axes) + epsilon)).astype(x.dtype)


# --- bfloat16 products (cynet.kernels.bf16): float32 out from any real inputs

@spec("round_bf16", dict(x=Arr(None, fixed=False)))
def make_round_bf16(c):
    seed, shape = c.int(0, 2 ** 31 - 1), tuple(c.int(1, 4) for _ in range(c.int(0, 3)))
    dt = c.choice([F32, F64])

    def build():
        return dict(x=rnd(np.random.default_rng(seed), shape, dt))
    return build


@spec("matmul_bf16", dict(a=Arr(lambda d: d >= 2, fixed=False), b=Arr(lambda d: d >= 2, fixed=False)))
def make_matmul_bf16(c):
    seed, M, Kd, N = c.int(0, 2 ** 31 - 1), c.int(1, 5), c.int(1, 40), c.int(1, 40)
    batch = c.choice([(), (2,), (1, 3)])
    dt = c.choice([F32, F64])

    def build():
        rng = np.random.default_rng(seed)
        return dict(a=rnd(rng, batch + (M, Kd), dt), b=rnd(rng, (Kd, N), dt))
    return build


@spec("layer_norm_forward", dict(x=Arr(lambda d: d >= 1, fixed=False), epsilon=EPSILON, rms_scaling=Flag(), **BN_VEC))
def make_layer_norm_forward(c):
    g = _ln_geometry(c)

    def build():
        rng = np.random.default_rng(g.seed)
        return dict(x=rnd(rng, g.shape, g.dt), gamma=rnd(rng, (g.C,), g.dt) if g.scale else None,
                    beta=rnd(rng, (g.C,), g.dt) if g.center else None, epsilon=g.epsilon, rms_scaling=g.rms)
    return build


@spec("layer_norm_backward", dict(dy=Arr(lambda d: d >= 1), x=Arr(lambda d: d >= 1, fixed=False),
                                  gamma=Arr(1, optional=True, template=_ones), mean=Arr(None), inv_std=Arr(None),
                                  rms_scaling=Flag()))
def make_layer_norm_backward(c):
    g = _ln_geometry(c)

    def build():
        rng = np.random.default_rng(g.seed)
        x = rnd(rng, g.shape, g.dt)
        mean, inv_std = _ln_stats(x, g.epsilon, -1)
        return dict(dy=rnd(rng, g.shape, g.dt), x=x, gamma=rnd(rng, (g.C,), g.dt) if g.scale else None,
                    mean=mean, inv_std=inv_std, rms_scaling=g.rms)
    return build


@spec("group_norm_forward", dict(x=Arr(lambda d: d >= 2, fixed=False), groups=PosInt(), epsilon=EPSILON, **BN_VEC))
def make_group_norm_forward(c):
    g = _ln_geometry(c, min_ndim=2)

    def build():
        rng = np.random.default_rng(g.seed)
        return dict(x=rnd(rng, g.shape, g.dt), groups=g.groups, gamma=rnd(rng, (g.C,), g.dt) if g.scale else None,
                    beta=rnd(rng, (g.C,), g.dt) if g.center else None, epsilon=g.epsilon)
    return build


@spec("group_norm_backward", dict(dy=Arr(lambda d: d >= 2), x=Arr(lambda d: d >= 2, fixed=False), groups=PosInt(),
                                  gamma=Arr(1, optional=True, template=_ones), mean=Arr(2), inv_std=Arr(2)))
def make_group_norm_backward(c):
    g = _ln_geometry(c, min_ndim=2)

    def build():
        rng = np.random.default_rng(g.seed)
        x = rnd(rng, g.shape, g.dt)
        xg = x.reshape(x.shape[0], -1, g.groups, g.C // g.groups)
        mean, inv_std = _ln_stats(xg, g.epsilon, (1, 3))
        return dict(dy=rnd(rng, g.shape, g.dt), x=x, groups=g.groups,
                    gamma=rnd(rng, (g.C,), g.dt) if g.scale else None, mean=mean, inv_std=inv_std)
    return build


# --- optimizers

OPTIM_REAL = Real([0.0, 1e-3, -0.5, 1, np.float32(0.1), np.float64(0.2), np.int64(1), 1e300])


def _optim_geometry(c):
    g = types.SimpleNamespace()
    g.seed = c.int(0, 2 ** 31 - 1)
    g.dt = c.choice([F32, F64])
    g.shape = c.choice([(), (1,), (3,), (2, 3), (2, 1, 2)])
    return g


@spec("adam_update", dict(variable=Arr(None, fixed=False, role="inout"), gradient=Arr(None), m=Arr(None, role="inout"),
                          v=Arr(None, role="inout"),
                          v_hat=Arr(None, role="inout", optional=True, template=lambda kw: np.array(kw["v"], copy=True)),
                          alpha=OPTIM_REAL, one_minus_beta_1=OPTIM_REAL, one_minus_beta_2=OPTIM_REAL,
                          epsilon=OPTIM_REAL),
      inout=("variable", "m", "v", "v_hat"))
def make_adam_update(c):
    g = _optim_geometry(c)
    amsgrad = c.bool()
    scalars = dict(alpha=c.choice([1e-3, 0.1, 0.0]), one_minus_beta_1=c.choice([0.1, 0.0, 1.0]),
                   one_minus_beta_2=c.choice([1e-3, 0.5]), epsilon=c.choice([1e-7, 1e-3]))

    def build():
        rng = np.random.default_rng(g.seed)
        v = np.asarray(np.abs(rnd(rng, g.shape, g.dt)))
        return dict(variable=rnd(rng, g.shape, g.dt), gradient=rnd(rng, g.shape, g.dt), m=rnd(rng, g.shape, g.dt), v=v,
                    v_hat=np.asarray(v + np.abs(rnd(rng, g.shape, g.dt)), dtype=g.dt) if amsgrad else None, **scalars)
    return build


@spec("sgd_momentum_update", dict(variable=Arr(None, fixed=False, role="inout"), gradient=Arr(None),
                                  momentums=Arr(None, role="inout"), learning_rate=OPTIM_REAL, momentum=OPTIM_REAL,
                                  nesterov=Flag()),
      inout=("variable", "momentums"))
def make_sgd_momentum_update(c):
    g = _optim_geometry(c)
    lr, momentum, nesterov = c.choice([1e-2, 0.5]), c.choice([0.0, 0.9]), c.bool()

    def build():
        rng = np.random.default_rng(g.seed)
        return dict(variable=rnd(rng, g.shape, g.dt), gradient=rnd(rng, g.shape, g.dt),
                    momentums=rnd(rng, g.shape, g.dt), learning_rate=lr, momentum=momentum, nesterov=nesterov)
    return build


@spec("adamax_update", dict(variable=Arr(None, fixed=False, role="inout"), gradient=Arr(None), m=Arr(None, role="inout"),
                            u=Arr(None, role="inout"), learning_rate=OPTIM_REAL, one_minus_beta_1=OPTIM_REAL,
                            beta_2=OPTIM_REAL, correction=OPTIM_REAL, epsilon=OPTIM_REAL),
      inout=("variable", "m", "u"))
def make_adamax_update(c):
    g = _optim_geometry(c)
    scalars = dict(learning_rate=c.choice([1e-3, 0.1, 0.0]), one_minus_beta_1=c.choice([0.1, 0.0, 1.0]),
                   beta_2=c.choice([0.999, 0.5]), correction=c.choice([0.1, 1.0]), epsilon=c.choice([1e-7, 1e-3]))

    def build():
        rng = np.random.default_rng(g.seed)
        return dict(variable=rnd(rng, g.shape, g.dt), gradient=rnd(rng, g.shape, g.dt), m=rnd(rng, g.shape, g.dt),
                    u=np.asarray(np.abs(rnd(rng, g.shape, g.dt))), **scalars)
    return build


@spec("lion_update", dict(variable=Arr(None, fixed=False, role="inout"), gradient=Arr(None), m=Arr(None, role="inout"),
                          learning_rate=OPTIM_REAL, beta_1=OPTIM_REAL, one_minus_beta_1=OPTIM_REAL, beta_2=OPTIM_REAL,
                          one_minus_beta_2=OPTIM_REAL),
      inout=("variable", "m"))
def make_lion_update(c):
    g = _optim_geometry(c)
    b1, b2 = c.choice([0.9, 1.0]), c.choice([0.99, 0.0])
    scalars = dict(learning_rate=c.choice([1e-3, 0.1]), beta_1=b1, one_minus_beta_1=1 - b1, beta_2=b2,
                   one_minus_beta_2=1 - b2)

    def build():
        rng = np.random.default_rng(g.seed)
        return dict(variable=rnd(rng, g.shape, g.dt), gradient=rnd(rng, g.shape, g.dt), m=rnd(rng, g.shape, g.dt),
                    **scalars)
    return build


@spec("ftrl_update", dict(variable=Arr(None, fixed=False, role="inout"), gradient=Arr(None),
                          accumulator=Arr(None, role="inout"), linear=Arr(None, role="inout"), learning_rate=OPTIM_REAL,
                          power=OPTIM_REAL, l1=OPTIM_REAL, two_l2=OPTIM_REAL, two_shrinkage=OPTIM_REAL),
      inout=("variable", "accumulator", "linear"))
def make_ftrl_update(c):
    g = _optim_geometry(c)
    scalars = dict(learning_rate=c.choice([1e-3, 0.1]), power=c.choice([0.5, 0.7, 0.0]), l1=c.choice([0.0, 0.01]),
                   two_l2=c.choice([0.0, 0.2]), two_shrinkage=c.choice([0.0, 0.1]))

    def build():
        rng = np.random.default_rng(g.seed)
        return dict(variable=rnd(rng, g.shape, g.dt), gradient=rnd(rng, g.shape, g.dt),
                    accumulator=np.asarray(np.abs(rnd(rng, g.shape, g.dt)) + 0.1, dtype=g.dt),
                    linear=rnd(rng, g.shape, g.dt), **scalars)
    return build


# --- activations and losses

def _act_geometry(c, min_ndim=0):
    g = types.SimpleNamespace()
    g.seed = c.int(0, 2 ** 31 - 1)
    g.dt = c.choice([F32, F64])
    g.shape = tuple(c.int(1, 4) for _ in range(c.int(min_ndim, 3)))
    g.scale = c.choice([1.0, 3.0, 30.0])
    return g


@spec("softmax_cross_entropy", dict(logits=Arr(lambda d: d >= 1, fixed=False),
                                    labels=Arr(None, fixed=False, elem="labels")))
def make_softmax_cross_entropy(c):
    g = _act_geometry(c, min_ndim=1)
    sparse = c.bool()

    def build():
        rng = np.random.default_rng(g.seed)
        logits = rnd(rng, g.shape, g.dt, g.scale)
        if sparse:
            labels = rng.integers(0, g.shape[-1], g.shape[:-1])
        else:
            e = np.exp(rnd(rng, g.shape, np.float64))
            labels = (e / e.sum(axis=-1, keepdims=True)).astype(g.dt)
        return dict(logits=logits, labels=labels)
    return build


@spec("sigmoid_cross_entropy", dict(logits=Arr(None, fixed=False), labels=Arr(None)))
def make_sigmoid_cross_entropy(c):
    g = _act_geometry(c)

    def build():
        rng = np.random.default_rng(g.seed)
        return dict(logits=rnd(rng, g.shape, g.dt, g.scale), labels=rng.random(g.shape).astype(g.dt))
    return build


@spec("softmax_forward", dict(x=Arr(lambda d: d >= 1, fixed=False), axis=Axis("x")))
def make_softmax_forward(c):
    g = _act_geometry(c, min_ndim=1)
    axis = c.int(-len(g.shape), len(g.shape) - 1)

    def build():
        rng = np.random.default_rng(g.seed)
        return dict(x=rnd(rng, g.shape, g.dt, g.scale), axis=axis)
    return build


@spec("softmax_backward", dict(dy=Arr(lambda d: d >= 1), y=Arr(lambda d: d >= 1, fixed=False), axis=Axis("y")))
def make_softmax_backward(c):
    g = _act_geometry(c, min_ndim=1)
    axis = c.int(-len(g.shape), len(g.shape) - 1)

    def build():
        rng = np.random.default_rng(g.seed)
        z = np.exp(rnd(rng, g.shape, np.float64))
        return dict(dy=rnd(rng, g.shape, g.dt), y=(z / z.sum(axis=axis, keepdims=True)).astype(g.dt), axis=axis)
    return build


def _elementwise(name, arrays, reals=None):
    """An elementwise kernel: `arrays` names its array arguments, the last one free in shape
    (the reference), the others fixed to it."""
    params = {a: Arr(None, fixed=(a != arrays[-1])) for a in arrays}
    if reals:
        params.update({r: Real([0.0, 1.0, -2.0, np.float32(0.3), np.int64(2), 1e300]) for r in reals})

    @spec(name, params)
    def make(c):
        g = _act_geometry(c)
        values = {r: c.choice([0.2, 1.0, 0.0, 3.5]) for r in reals or ()}

        def build():
            rng = np.random.default_rng(g.seed)
            kw = {a: rnd(rng, g.shape, g.dt, g.scale) for a in arrays}
            kw.update(values)
            return kw
        return build


for _name in ("relu", "sigmoid", "tanh"):
    _elementwise(f"{_name}_forward", ("x",))
    _elementwise(f"{_name}_backward", ("dy", "y"))
_elementwise("leaky_relu_forward", ("x",), ("negative_slope",))
_elementwise("leaky_relu_backward", ("dy", "x"), ("negative_slope",))
_elementwise("elu_forward", ("x",), ("alpha",))
@spec("elu_backward", dict(dy=Arr(None), x=Arr(None, fixed=False), y=Arr(None),
                           alpha=Real([0.0, 1.0, -2.0, np.float32(0.3), np.int64(2), 1e300])))
def make_elu_backward(c):
    g = _act_geometry(c)
    alpha = c.choice([0.2, 1.0, 3.5])

    def build():
        rng = np.random.default_rng(g.seed)
        x = rnd(rng, g.shape, g.dt, g.scale)
        y = np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(g.dt)
        return dict(dy=rnd(rng, g.shape, g.dt), x=x, y=y, alpha=alpha)
    return build



# --- recurrent

GATES = rnn_cases.GATES
ACTS = ["tanh", "relu", "sigmoid", "linear", "hard_sigmoid"]


def _rnn_geometry(c, cell):
    g = types.SimpleNamespace()
    g.seed = c.int(0, 2 ** 31 - 1)
    g.dt = c.choice([F32, F64])
    g.N, g.T, g.D, g.U = c.int(1, 3), c.int(1, 4), c.int(1, 3), c.int(1, 3)
    g.acts = {"activation": c.choice(ACTS)}
    if cell != "simple_rnn":
        g.acts["recurrent_activation"] = c.choice(ACTS)
    g.use_bias, g.h0, g.c0, g.dc = c.bool(), c.bool(), c.bool(), c.bool()
    g.compute_dx = c.bool()
    g.mask = c.choice([None, 0.4])   # a mask skipping about this share of the steps
    g.rdrop = c.choice([None, 0.3])  # recurrent dropout at about this rate
    return g


def _rnn_inputs(g, cell, rng):
    # small weights: with linear gates a larger recurrence grows geometrically, and float32
    # results then differ by summation order more than any fixed tolerance allows
    kw = rnn_cases.arguments(cell, rng, g.dt, g.N, g.T, g.D, g.U, bias=g.use_bias, h0=g.h0, c0=g.c0, scale=0.3,
                             bias_scale=0.3, **g.acts)
    kw["mask"] = None if g.mask is None else rng.random((g.N, g.T)) >= g.mask
    kw["recurrent_dropout_mask"] = (None if g.rdrop is None else
                                    ((rng.random((GATES[cell], g.N, g.U)) >= g.rdrop) / (1 - g.rdrop)).astype(g.dt))
    return kw


def _state_template(kw):
    return np.zeros((np.shape(kw["x"])[0], np.shape(kw["recurrent_kernel"])[0]), dtype=np.asarray(kw["x"]).dtype)


def _rnn_params(cell, backward):
    state = dict(ndim=2, optional=True, template=_state_template)
    params = dict(x=Arr(3, fixed=False), kernel=Arr(2), recurrent_kernel=Arr(2), h0=Arr(**state),
                  activation=Activation(),
                  mask=Arr(2, elem="labels", optional=True, template=lambda kw: np.ones(np.shape(kw["x"])[:2], bool)))
    params["recurrent_dropout_mask"] = Arr(3, optional=True, template=lambda kw, cell=cell: np.ones(
        (GATES[cell],) + _state_template(kw).shape, np.asarray(kw["x"]).dtype))
    if cell != "simple_rnn":
        params["recurrent_activation"] = Activation()
    # bfloat16 products: float32 only (a float64 call with bf16=True is refused, naming bf16)
    params["bf16"] = Values(fz.FLAG_BAD, fz.FLAG_OK + [np.array(True)])
    if cell == "lstm":
        params["c0"] = Arr(**state)
    if backward:
        params.update(dhs=Arr(3), hs=Arr(3), use_bias=Flag(), compute_dx=Flag())
        if cell == "lstm":
            params.update(dc_last=Arr(**state), cs=Arr(3), gates=Arr(3))
        if cell == "gru":
            params["cache"] = Arr(3)
    else:
        params["bias"] = Arr(2 if cell == "gru" else 1, optional=True, template=lambda kw, cell=cell: np.zeros(
            rnn_cases.bias_shape(cell, np.shape(kw["recurrent_kernel"])[0]), np.asarray(kw["x"]).dtype))
    return params


for _cell in GATES:
    @spec(f"{_cell}_forward", _rnn_params(_cell, False))
    def make_rnn_forward(c, cell=_cell):
        g = _rnn_geometry(c, cell)

        def build():
            return _rnn_inputs(g, cell, np.random.default_rng(g.seed))
        return build

    @spec(f"{_cell}_backward", _rnn_params(_cell, True))
    def make_rnn_backward(c, cell=_cell):
        g = _rnn_geometry(c, cell)

        def build():
            rng = np.random.default_rng(g.seed)
            kw = _rnn_inputs(g, cell, rng)
            with K.use_backend("numpy"):
                out = rnn_cases.forward(cell, kw)
            dhs = rnd(rng, (g.N, g.T, g.U), g.dt)
            dc_last = rnd(rng, (g.N, g.U), g.dt) if cell == "lstm" and g.dc else None
            return rnn_cases.backward_arguments(cell, kw, out, dhs, dc_last, g.compute_dx)
        return build


# ----------------------------------------------------------------------------- the checks

def run(spec, kwargs_list):
    return {b: fz.call(spec.fn, kw, b, spec.inout) for b, kw in zip(fz.BACKENDS, kwargs_list)}


def check_valid(spec, build):
    """The unchanged call: succeeds on every backend with the same result; returns the outcomes."""
    outcomes = run(spec, [build() for _ in fz.BACKENDS])
    fz.check(OK, outcomes, "", what=f"{spec.name} (valid call)")
    return outcomes


def check_mutation(spec, build, base, pname, label, prepare, c):
    apply = prepare(c)
    kwargs, expects = [], set()
    for _ in fz.BACKENDS:
        kw, expect, exc = apply(build())
        kwargs.append(kw)
        expects.add((expect, exc if exc is None or isinstance(exc, tuple) else (exc,)))
    assert len(expects) == 1, f"non-deterministic mutation {label}"
    expect, exc = expects.pop()
    outcomes = run(spec, kwargs)
    fz.check(expect, outcomes, pname, base, exc or (ValueError, TypeError), what=f"{spec.name}({pname}: {label})",
             lenient=spec.lenient and label == "special_values")


def test_every_kernel_is_fuzzed():
    """Every public kernel has a fuzz spec, and every one of its parameters a fuzz kind."""
    public = {n for n in dir(K) if not n.startswith("_") and n not in BACKEND_HELPERS
              and callable(getattr(K, n)) and not isinstance(getattr(K, n), types.ModuleType)}
    listed = {n for f in manifest.FAMILIES for n in importlib.import_module(f.public).__all__}
    assert public == listed, f"cynet.kernels exports callables outside the families' __all__: {public ^ listed}"
    assert public == set(SPECS), \
        f"kernels without a fuzz spec: {public - set(SPECS)}; stale specs: {set(SPECS) - public}"
    for name, s in SPECS.items():
        signature = set(inspect.signature(getattr(K, name)).parameters)
        assert signature == set(s.params), (f"{name}: parameters without a fuzz kind {signature - set(s.params)}, "
                                            f"fuzz kinds of no parameter {set(s.params) - signature}")
        for pname in s.params:
            assert s.mutations(pname), f"{name}({pname}) has no mutation"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_sweep_every_hostile_argument(name):
    """Every mutation of every parameter, on two fixed valid calls."""
    s = SPECS[name]
    for seed in (0, 1):
        build = s.make(fz.RandomChooser(seed))
        base = check_valid(s, build)
        for pname in sorted(s.params):
            for label, prepare in s.mutations(pname).items():
                check_mutation(s, build, base, pname, label, prepare,
                               fz.RandomChooser(zlib.crc32(f"{seed}{pname}{label}".encode())))


@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_random_valid_calls_match_twin(name, data):
    check_valid(SPECS[name], SPECS[name].make(fz.DrawChooser(data)))


@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_random_hostile_argument(name, data):
    s = SPECS[name]
    c = fz.DrawChooser(data)
    build = s.make(c)
    base = check_valid(s, build)
    pname = c.choice(sorted(s.params))
    muts = s.mutations(pname)
    label = c.choice(sorted(muts))
    check_mutation(s, build, base, pname, label, muts[label], c)


# ----------------------------------------------------------------------------- huge sizes

def _ones(*shape, dtype=np.float32):
    return np.ones(shape, dtype=dtype)


HUGE_CASES = {
    # explicit padding that blows the output (or the padded input) up to terabytes
    "conv_padding": ("padding", lambda: K.conv2d_forward(_ones(1, 1, 1, 1), _ones(1, 1, 1, 1), padding=2 ** 20)),
    "conv_padding_strided": ("padding", lambda: K.conv2d_forward(_ones(1, 1, 1, 1), _ones(1, 1, 1, 1),
                                                                 padding=2 ** 30, strides=2 ** 30)),
    "conv_backward_padding": ("padding", lambda: K.conv2d_backward(_ones(1, 3, 3, 1), _ones(1, 1, 1, 1),
                                                                   _ones(1, 1, 1, 1), padding=2 ** 30,
                                                                   strides=2 ** 30)),
    "conv_many_filters": ("kernel", lambda: K.conv2d_forward(_ones(2 ** 20, 1, 1, 1), _ones(1, 1, 1, 2 ** 20))),
    "depthwise_padding": ("padding", lambda: K.depthwise_conv2d_forward(_ones(1, 1, 1, 1), _ones(1, 1, 1, 1),
                                                                       padding=2 ** 20)),
    "depthwise_multiplier": ("kernel", lambda: K.depthwise_conv2d_forward(_ones(2 ** 20, 1, 1, 1),
                                                                          _ones(1, 1, 1, 2 ** 20))),
    # an upsampling factor that overflows the output size
    "upsampling_size": ("size", lambda: K.upsampling2d_forward(_ones(1, 4, 4, 1), size=(2 ** 30, 2 ** 30))),
    "upsampling_size_overflow": ("size", lambda: K.upsampling2d_forward(_ones(1, 4, 4, 1), size=2 ** 62)),
    # an input_shape whose gradient would take terabytes, consistent with a small dy
    "max_pool_backward": ("input_shape", lambda: K.max_pool2d_backward(
        _ones(2 ** 10, 1, 1, 1), np.zeros((2 ** 10, 1, 1, 1), np.int32), (2 ** 10, 2 ** 30, 1, 1),
        pool_size=(2 ** 30, 1))),
    "avg_pool_backward": ("input_shape", lambda: K.avg_pool2d_backward(
        _ones(2 ** 10, 1, 1, 1), (2 ** 10, 2 ** 30, 1, 1), pool_size=(2 ** 30, 1))),
    "global_avg_backward": ("input_shape", lambda: K.global_avg_pool2d_backward(_ones(1, 1), (1, 2 ** 30, 2 ** 30, 1))),
    "global_max_backward": ("input_shape", lambda: K.global_max_pool2d_backward(
        _ones(1, 1), np.zeros((1, 1), np.int32), (1, 2 ** 30, 2 ** 30, 1))),
    # broadcast views posing as terabytes
    "relu_broadcast": ("x", lambda: K.relu_forward(np.broadcast_to(np.float64(1), (2 ** 40,)))),
    "softmax_broadcast": ("x", lambda: K.softmax_forward(np.broadcast_to(np.float32(1), (2 ** 40, 2)))),
    "bn_broadcast": ("x", lambda: K.batch_norm_inference_forward(
        np.broadcast_to(np.float32(1), (2 ** 40, 2)), None, None, np.zeros(2), np.ones(2))),
    "rnn_broadcast": ("x", lambda: K.simple_rnn_forward(
        np.broadcast_to(np.float32(1), (2 ** 30, 2 ** 10, 1)), _ones(1, 2), _ones(2, 2))),
    "adam_broadcast_gradient": ("gradient", lambda: K.adam_update(
        _ones(3), np.broadcast_to(np.float32(1), (2 ** 40,)), _ones(3), _ones(3), 0.1, 0.1, 0.1, 1e-7)),
}


@pytest.mark.parametrize("case", sorted(HUGE_CASES))
@pytest.mark.parametrize("backend", fz.BACKENDS)
def test_huge_sizes_refused_before_allocating(case, backend):
    """Sizes that ask for terabytes are refused with a ValueError naming the argument, before
    anything big is allocated (traced peak below 64 MiB)."""
    name, fn = HUGE_CASES[case]
    tracemalloc.start()
    try:
        with K.use_backend(backend), pytest.raises(ValueError) as info:
            fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fz.names(info.value, name), f"{case}: {info.value}"
    assert peak < 64 * 2 ** 20, f"{case}: allocated {peak / 2 ** 20:.0f} MiB before refusing"


# ----------------------------------------------------------------------------- known issues

@pytest.mark.skipif(not K._backend.COMPILED, reason="needs the compiled kernels")
def test_amsgrad_propagates_nan_in_v_hat_like_the_twin():
    results = {}
    for backend in fz.BACKENDS:
        w, g, m, v = (np.full(3, x, np.float32) for x in (1.0, 0.5, 0.1, 0.2))
        v_hat = np.array([np.nan, 0.3, 0.1], np.float32)
        with K.use_backend(backend), np.errstate(all="ignore"):
            K.adam_update(w, g, m, v, 0.1, 0.1, 0.001, 1e-7, v_hat=v_hat)
        results[backend] = (w, v_hat)
    fz.assert_close(results["cython"], results["numpy"], "adam_update with NaN in v_hat")
    assert np.isnan(results["cython"][1][0]) and np.isnan(results["cython"][0][0])
