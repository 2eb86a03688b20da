r"""Fuzz suite: every layer of cynet.layers under hostile constructor arguments, inputs and
gradients.

For each layer class a valid case is generated (constructor arguments, an input batch, training
or not, initial states for the recurrent layers). The layer is constructed, built on the valid
input, given deterministic weights, called and backpropagated, on the compiled backend and on
the NumPy twin; both must agree (outputs, input gradient, weight gradients, weights after the
call). Then ONE thing is made hostile:

* a constructor argument (zero, negative, huge, bool, float, string, None, wrong length, unknown
  names, ...): a bad one must raise ValueError/TypeError naming the argument when the layer is
  made; an unusual valid one must work on both backends alike, or be refused later naming the
  argument or `inputs`;
* the input of a built layer (wrong ndim, wrong size on an axis its weights fix, empty batch,
  zero-size axes, complex/object/string/datetime/structured dtypes, ragged lists, multi-terabyte
  broadcast views, NaN/inf, other batch sizes, real dtypes of every kind, non-contiguous,
  reversed, Fortran-ordered, read-only, unaligned, byte-swapped views and nested lists): refused
  naming `inputs`, or the same result as the plain array, or at least agreeing backends;
* the gradient given to `backward` (wrong shape or ndim, bad dtype, None, ragged, ...): refused
  naming `grad`, or the same result as the plain array;
* for SimpleRNN/LSTM/GRU, `initial_state` (wrong count, shape, dtype): refused naming it.

test_every_layer_is_fuzzed fails when a layer class or a constructor argument is added without a
fuzz case.

CI (the "ci" hypothesis profile of tests/conftest.py: 25 derandomized examples per test):
    python -P -m pytest -q -p no:cacheprovider \
        tests/robustness/test_fuzz_kernels.py tests/robustness/test_fuzz_layers.py
Long run (2000 examples per hypothesis test; about 10 minutes per file on two cores):
    HYPOTHESIS_PROFILE=long python -P -m pytest -q -p no:cacheprovider \
        tests/robustness/test_fuzz_kernels.py tests/robustness/test_fuzz_layers.py
"""
import inspect
import types
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cynet.kernels as K
from cynet import layers as L
from cynet.layers.base import Layer
from cynet.layers.rnn import _RNN

import cynet_fuzz as fz  # (tests/robustness/conftest.py loads _fuzz.py under this name)

RAISE, SAME, OK, EITHER = fz.RAISE, fz.SAME, fz.OK, fz.EITHER
NAN, INF = float("nan"), float("inf")

# ----------------------------------------------------------------------------- hostile constructor values

INT_BAD = [0, -1, True, 2.5, "3", None, 2 ** 31, 2 ** 63, [3], 1j, np.float64(3.0)]
FLAG_BAD = ["False", "yes", 1, 0, None, np.array([True, False]), 1.0]
FLAG_OK = [True, False, np.True_]
RATE_BAD = [-0.1, 1.0, 1.5, NAN, INF, "0.5", None, True, 1j, [0.5]]
INIT_BAD = ["no_such_initializer", 3, object(), {"class_name": "NoSuch", "config": {}}]
INIT_OK = ["zeros", "he_normal", None]
REG_BAD = ["no_such_regularizer", 3, object()]
REG_OK = ["l2", None]
ACT_BAD = ["no_such_activation", 3, object(), b"relu", ["relu"]]
PAIR_BAD = [v for v in fz.PAIR_BAD if v is not None]
CONSTRAINT_BAD = ["no_such_constraint", object(), 1, {"class_name": "NoSuch", "config": {}}]
CONSTRAINT_OK = [None, "non_neg", {"class_name": "MaxNorm", "config": {"max_value": 2, "axis": 0}}]
CONSTRAINT_ARG = (CONSTRAINT_BAD, CONSTRAINT_OK)
CONSTRAINT_ARGS = {"kernel_constraint": CONSTRAINT_ARG, "bias_constraint": CONSTRAINT_ARG}
SEED_BAD = [-1, "a", 1.5, True]

# Every layer accepts these (Layer.__init__).
BASE_ARGS = {
    "name": (["", 1, b"name", object(), ("a",)], ["custom_name"]),
    "dtype": (["float16", "int32", "complex64", "bogus", 1, object(), np.int64, "float128"],
              ["float64", "float32", np.float64, np.dtype("float32")]),
    "trainable": (["yes", None, 2, 1.0, np.array([True, False])], [False, np.True_]),
    "input_shape": ([(0,), (-1,), "abc", 1.5, (1.5,), ((1,),), (True,), b"ab", object(), (2 ** 63,)],
                    [(3,), [3, 4], 5, None]),
    "input_dim": ([0, -1, "a", 1.5, True], [3]),
    "batch_input_shape": (["abc", (None, 0), 5.5, ()], [(None, 3)]),
    "activity_regularizer": (["no_such_regularizer", 3, object()], [None, "l2"]),
}


def _rnn_args(recurrent):
    args = {
        "units": (INT_BAD, [1, 3, np.int64(2)]),
        "activation": (ACT_BAD + ["softmax", "gelu"], [None, "relu", "tanh", "sigmoid"]),
        "use_bias": (FLAG_BAD, FLAG_OK),
        "kernel_initializer": (INIT_BAD, INIT_OK),
        "recurrent_initializer": (INIT_BAD, INIT_OK),
        "bias_initializer": (INIT_BAD, INIT_OK),
        "kernel_regularizer": (REG_BAD, REG_OK),
        "recurrent_regularizer": (REG_BAD, REG_OK),
        "bias_regularizer": (REG_BAD, REG_OK),
        "kernel_constraint": CONSTRAINT_ARG, "recurrent_constraint": CONSTRAINT_ARG, "bias_constraint": CONSTRAINT_ARG,
        "dropout": (RATE_BAD, [0.0, 0.5]),
        "recurrent_dropout": (RATE_BAD, [0.0, 0, 0.5]),
        "return_sequences": (FLAG_BAD, FLAG_OK),
        "return_state": (FLAG_BAD, FLAG_OK),
        "go_backwards": (FLAG_BAD, FLAG_OK),
        "stateful": (["a", 1, None], [False]),
        "unroll": (FLAG_BAD, FLAG_OK),
        "zero_output_for_mask": (FLAG_BAD, FLAG_OK),
        "seed": (SEED_BAD, [0, 7, np.int64(3)]),
    }
    if recurrent:
        args["recurrent_activation"] = (ACT_BAD + ["relu", "softmax"], ["sigmoid", "hard_sigmoid", "tanh", None])
    return args


POOL_ARGS = {
    "pool_size": (PAIR_BAD + [None], [1, (2, 1), [1, 2]]),
    "strides": (PAIR_BAD, [None, 1, (1, 2)]),
    "padding": (fz.POOL_PADDING_BAD, ["same", "VALID"]),
    "data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None]),
}
GLOBAL_ARGS = {"data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None]), "keepdims": (FLAG_BAD, FLAG_OK)}


# ----------------------------------------------------------------------------- layer specs

class LayerSpec:
    """How to fuzz one layer class.

    make(c) -> a namespace: kwargs (constructor), x (a valid input batch, rebuilt by x(seed)),
    training, states (initial states, recurrent layers only). args: constructor argument ->
    (bad values, valid alternatives). fixed_ndim: inputs must keep their ndim; min_ndim: the least
    ndim inputs may have; fixed_axes(case, ndim): the axes whose size the weights fix;
    index_input: inputs are indices (Embedding).

    A layer taking a list of inputs (`_multi_input`: the merge layers) has a case with `shapes`
    (one per input) and `shapes_ok(case, shapes)`: whether the layer takes inputs of those shapes
    (count, ranks, batch sizes, the layer's shape rule), which decides what a mutated list must
    give. input_names: the words an error about the inputs may name them by.
    """

    def __init__(self, cls, make, args, fixed_ndim=False, min_ndim=1, fixed_axes=None, index_input=False,
                 unreached=(), shapes_ok=None, input_names=("inputs",), wrap=None):
        self.cls, self.make, self.args = cls, make, dict(args)
        self.wrap = wrap   # layer -> the layer that is called (a recurrent cell: RNN(cell))
        self.fixed_ndim, self.min_ndim, self.index_input = fixed_ndim, min_ndim, index_input
        self.fixed_axes = fixed_axes or (lambda case, ndim: ())
        self.unreached = unreached  # base classes whose __init__ this class does not call
        self.multi_input = bool(getattr(cls, "_multi_input", False))
        assert self.multi_input == (shapes_ok is not None), f"{cls.__name__}: shapes_ok is for multi-input layers"
        self.shapes_ok = shapes_ok
        self.input_names = tuple(input_names)
        # layers whose outputs sum products (matmuls, reductions): with infinities in the input
        # the place of NaN vs inf depends on the order of summation (see fz.assert_close)
        self.lenient = cls.__name__ in ("Dense", "Conv2D", "BatchNormalization", "SimpleRNN", "LSTM", "GRU",
                                        "Softmax", "Activation", "AveragePooling2D", "GlobalAveragePooling2D",
                                        "Conv1D", "Conv2DTranspose", "Conv1DTranspose", "AveragePooling1D",
                                        "LayerNormalization", "GroupNormalization", "UnitNormalization",
                                        "DepthwiseConv2D", "DepthwiseConv1D", "SeparableConv2D", "SeparableConv1D",
                                        "EinsumDense", "RMSNormalization")


SPECS = {}


def layer_spec(cls, args, **opts):
    def deco(make):
        SPECS[cls.__name__] = LayerSpec(cls, make, args, **opts)
        return make
    return deco


def _case(c, kwargs, shape, training=None, index_dim=None, states=None):
    case = types.SimpleNamespace()
    case.seed = c.int(0, 2 ** 31 - 1)
    case.dtype = c.choice(["float32", "float64"])
    case.kwargs = dict(kwargs, dtype=case.dtype)
    case.shape = tuple(shape)
    case.training = c.bool() if training is None else training
    case.index_dim = index_dim
    case.states = states
    case.shapes = None  # (multi-input layers: one shape per input; see _merge_case)
    return case


def _merge_case(c, kwargs, shapes):
    """A case of a multi-input layer: its input is a list of arrays of `shapes`."""
    case = _case(c, kwargs, shapes[0])
    case.shapes = [tuple(s) for s in shapes]
    return case


def _x(case, seed_offset=0):
    rng = np.random.default_rng(case.seed + seed_offset)
    if case.shapes is not None:
        return [np.asarray(rng.standard_normal(s), dtype=case.dtype) for s in case.shapes]
    if case.index_dim is not None:
        return rng.integers(0, case.index_dim, case.shape)
    return np.asarray(rng.standard_normal(case.shape), dtype=case.dtype)


def _shape(c, ndim_lo, ndim_hi, lo=1, hi=4):
    return tuple(c.int(lo, hi) for _ in range(c.int(ndim_lo, ndim_hi)))


@layer_spec(L.Dense, {"units": (INT_BAD, [1, 3, np.int64(2)]),
                      "activation": (ACT_BAD, [None, "relu", "softmax", "swish"]),
                      "use_bias": (FLAG_BAD, FLAG_OK),
                      "kernel_initializer": (INIT_BAD, INIT_OK), "bias_initializer": (INIT_BAD, INIT_OK),
                      "kernel_regularizer": (REG_BAD, REG_OK), "bias_regularizer": (REG_BAD, REG_OK),
                      **CONSTRAINT_ARGS},
            min_ndim=2, fixed_axes=lambda case, ndim: (ndim - 1,))
def make_dense(c):
    return _case(c, dict(units=c.int(1, 4), activation=c.choice([None, "relu", "tanh", "softmax", "sigmoid"]),
                         use_bias=c.bool()), _shape(c, 2, 3))


# (equation, output_shape, bias_axes, the input's rank): Keras's documented forms
EINSUM_CASES = [("ab,bc->ac", 3, "c", 2), ("abc,cd->abd", (None, 2), "d", 3), ("abc,cde->abde", (None, 2, 3), "de", 3),
                ("abc,cde->abde", (None, 2, 3), "e", 3), ("...b,bc->...c", 2, None, 3), ("abc,cd->ad", 2, "d", 3)]


@layer_spec(L.EinsumDense, {"equation": (["ab,bc", "ab,bc->ad", "", 3, None, ["ab,bc->ac"]], []),
                            "output_shape": ([0, -1, "3", 1.5, None, [0], [None, "a"], True], []),
                            "bias_axes": (["x", 1, "", ["c"]], [None]),
                            "activation": (ACT_BAD, [None, "relu", "softmax"]),
                            "kernel_initializer": (INIT_BAD, INIT_OK), "bias_initializer": (INIT_BAD, INIT_OK),
                            "kernel_regularizer": (REG_BAD, REG_OK), "bias_regularizer": (REG_BAD, REG_OK),
                            # (LoRA and quantization: NotImplementedError unless None)
                            "lora_rank": ([], [None]), "lora_alpha": ([], [None]),
                            "gptq_unpacked_column_size": ([], [None]),
                            "quantization_config": ([], [None]),
                            **CONSTRAINT_ARGS},
            fixed_ndim=True, fixed_axes=lambda case, ndim: (ndim - 1,))
def make_einsum_dense(c):
    equation, output_shape, bias_axes, ndim = c.choice(EINSUM_CASES)
    return _case(c, dict(equation=equation, output_shape=output_shape, bias_axes=bias_axes,
                         activation=c.choice([None, "relu", "tanh"])), (c.int(1, 3),) + _shape(c, ndim - 1, ndim - 1))


@layer_spec(L.Activation, {"activation": (ACT_BAD, [None, "relu", "gelu", "softmax"])})
def make_activation(c):
    names = ["relu", "sigmoid", "tanh", "softmax", "elu", "gelu", "selu", "softplus", "softsign", "swish", "silu",
             "linear", "leaky_relu", "hard_sigmoid"]
    return _case(c, dict(activation=c.choice(names)), _shape(c, 1, 3))


RELU_ARGS = {"max_value": ([-1, "a", NAN, INF, True, 1j], [None, 6.0, 0.0, 1]),
             "negative_slope": ([-0.1, "a", NAN, None, True], [0.0, 0.1, np.float32(0.2)]),
             "threshold": ([-1, "a", NAN, None, True], [0.0, 0.5])}


@layer_spec(L.ReLU, RELU_ARGS)
def make_relu(c):
    return _case(c, dict(max_value=c.choice([None, 1.5, 6.0]), negative_slope=c.choice([0.0, 0.1]),
                         threshold=c.choice([0.0, 0.2])), _shape(c, 1, 3))


@layer_spec(L.LeakyReLU, {"negative_slope": ([-0.1, "a", NAN, None, True, INF], [0.0, 0.3, 2])}, unreached=(L.ReLU,))
def make_leaky_relu(c):
    return _case(c, dict(negative_slope=c.choice([0.3, 0.01, 1.0])), _shape(c, 1, 3))


@layer_spec(L.ELU, {"alpha": (["a", NAN, None, True, INF], [0.5, 1, -1.0])}, unreached=(L.ReLU,))
def make_elu(c):
    return _case(c, dict(alpha=c.choice([1.0, 0.5, 2.0])), _shape(c, 1, 3))


@layer_spec(L.Softmax, {"axis": (["a", 1.5, None, True, (0, 1), [0]], [-1, 1, np.int64(-1), 5])},
            unreached=(L.ReLU,))
def make_softmax(c):
    shape = _shape(c, 2, 3)
    return _case(c, dict(axis=c.int(-len(shape), len(shape) - 1)), shape)


@layer_spec(L.Dropout, {"rate": (RATE_BAD, [0.0, 0.5, 0.99]),
                        "noise_shape": ([5.5, "ab", (0,), (1.5,), (True, 1)], [None, (None, 1)]),
                        "seed": (SEED_BAD, [0, 123, np.int64(5)])})
def make_dropout(c):
    shape = _shape(c, 1, 3)
    noise = c.choice([None, tuple(1 if i % 2 else None for i in range(len(shape)))])
    return _case(c, dict(rate=c.choice([0.0, 0.3, 0.7]), noise_shape=noise, seed=c.int(0, 99)), shape)


@layer_spec(L.Flatten, {"data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None, "channels_last"])})
def make_flatten(c):
    return _case(c, dict(data_format=c.choice([None, "channels_last", "channels_first"])), _shape(c, 2, 4))


@layer_spec(L.Reshape, {"target_shape": ([5.5, "ab", (0,), (-2,), (-1, -1), (1.5,), (True,), None, b"ab", (2 ** 31,)],
                                         [(-1,), (1, -1), (7,)])})
def make_reshape(c):
    a, b = c.int(1, 3), c.int(1, 4)
    target = c.choice([(b, a), (a * b,), (-1,), (a, -1)])
    return _case(c, dict(target_shape=target), (c.int(1, 3), a, b))


@layer_spec(L.InputLayer, {"shape": ([(0,), "ab", 1.5, (None, -1), None, (True,)], [(3,), (None, 2)]),
                           "batch_size": ([0, -1, 1.5, "a", True], [None, 4]),
                           # shape is given, so any input_shape (its alias) or batch_shape is one too many
                           "batch_shape": ([(), "ab", (2, 3), (None, 3)], []),
                           # an Input may hold indices (Embedding inputs): integer and bool dtypes are good
                           "dtype": (["complex64", "bogus", 1, object(), "U8", "float128"],
                                     [None, "float32", "float64", "int32", np.int64, "bool"]),
                           "input_shape": (BASE_ARGS["input_shape"][0] + [(3,), [3, 4]], [])})
def make_input_layer(c):
    shape = _shape(c, 2, 3)
    return _case(c, dict(shape=shape[1:]), shape)


@layer_spec(L.Conv2D, {"filters": (INT_BAD, [2, 4]), "kernel_size": (PAIR_BAD + [None], [1, (1, 2)]),
                       "strides": (PAIR_BAD + [None], [1, (2, 1)]), "padding": (fz.POOL_PADDING_BAD, ["same", "VALID"]),
                       "data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None]),
                       "dilation_rate": (PAIR_BAD + [None], [1, (1, 2)]),
                       "groups": ([0, -1, "1", 1.5, None, True, np.array([1, 1])], [1, np.int64(1)]),
                       "activation": (ACT_BAD, [None, "relu"]), "use_bias": (FLAG_BAD, FLAG_OK),
                       "kernel_initializer": (INIT_BAD, INIT_OK), "bias_initializer": (INIT_BAD, INIT_OK),
                       "kernel_regularizer": (REG_BAD, REG_OK), "bias_regularizer": (REG_BAD, REG_OK),
                       **CONSTRAINT_ARGS},
            fixed_ndim=True,
            fixed_axes=lambda case, ndim: (1 if case.kwargs["data_format"] == "channels_first" else 3,))
def make_conv2d(c):
    fmt = c.choice(["channels_last", "channels_first"])
    kh, kw = c.int(1, 3), c.int(1, 3)
    dil = c.choice([1, 2])
    h, w = (kh - 1) * dil + 1 + c.int(0, 3), (kw - 1) * dil + 1 + c.int(0, 3)
    groups = c.choice([1, 1, 2])
    n, ch = c.int(1, 3), c.int(1, 3) * groups
    shape = (n, ch, h, w) if fmt == "channels_first" else (n, h, w, ch)
    return _case(c, dict(filters=c.int(1, 3) * groups, kernel_size=(kh, kw), strides=c.choice([1, 2, (1, 2)]),
                         padding=c.choice(["valid", "same"]), data_format=fmt, dilation_rate=dil, groups=groups,
                         activation=c.choice([None, "relu"]), use_bias=c.bool()), shape)


# --- 1-D convolutions and the transposed convolutions (the 1-D ones are height-1 2-D ones)

ONE_BAD = [0, -1, True, 2.5, "3", None, (1, 2), [], 2 ** 63, 1j, object()]
KERNEL_ARGS = {"filters": (INT_BAD, [1, 3]), "activation": (ACT_BAD, [None, "relu"]), "use_bias": (FLAG_BAD, FLAG_OK),
               "kernel_initializer": (INIT_BAD, INIT_OK), "bias_initializer": (INIT_BAD, INIT_OK),
               "kernel_regularizer": (REG_BAD, REG_OK), "bias_regularizer": (REG_BAD, REG_OK),
               "data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None]), **CONSTRAINT_ARGS}
ONE_D = {"kernel_size": (ONE_BAD, [1, (2,), [1]]), "strides": (ONE_BAD, [1, (2,)]),
         "dilation_rate": (ONE_BAD, [1, [2]])}


def _channel_axis(case, ndim):
    return (1 if case.kwargs["data_format"] == "channels_first" else ndim - 1,)


@layer_spec(L.Conv1D, dict(KERNEL_ARGS, **ONE_D, padding=(fz.POOL_PADDING_BAD, ["same", "VALID", "causal", "Causal"]),
                           filters=(INT_BAD, [2, 4]),   # (divisible by the case's groups, 1 or 2)
                           groups=([0, -1, "1", 1.5, None, True, np.array([1, 1])], [1, np.int64(1)])),
            fixed_ndim=True, fixed_axes=_channel_axis)
def make_conv1d(c):
    k, dil, groups = c.int(1, 3), c.choice([1, 2]), c.choice([1, 1, 2])
    padding = c.choice(["valid", "same", "causal"])
    return _steps_case(c, dict(filters=c.int(1, 3) * groups, kernel_size=k, strides=c.choice([1, 2]),
                               padding=padding, dilation_rate=dil, groups=groups, activation=c.choice([None, "relu"]),
                               use_bias=c.bool()),
                       min_steps=(k - 1) * dil + 1, data_format=c.choice(["channels_last", "channels_first"]),
                       features=groups)


OUTPUT_PADDING_BAD = [-1, "1", 1.5, True, (0, 0, 0), object(), 5]


@layer_spec(L.Conv2DTranspose, dict(KERNEL_ARGS, kernel_size=(PAIR_BAD + [None], [1, (1, 2)]),
                                    strides=(PAIR_BAD + [None], [3, (3, 4)]),   # (above any case's output_padding)
                                    dilation_rate=(PAIR_BAD + [None], [1, (1, 2)]),
                                    padding=(fz.POOL_PADDING_BAD + ["causal"], ["same", "VALID"]),
                                    output_padding=(OUTPUT_PADDING_BAD + [(0,), (0, 3)], [None, 0, (0, 0)])),
            fixed_ndim=True, fixed_axes=_channel_axis)
def make_conv2d_transpose(c):
    kh, kw = c.int(1, 3), c.int(1, 3)
    strides = c.choice([1, 2, (1, 2), (3, 2)])
    sh, sw = (strides, strides) if isinstance(strides, int) else strides
    output_padding = c.choice([None, (sh - 1, 0), (0, sw - 1)])
    return _image_case(c, dict(filters=c.int(1, 3), kernel_size=(kh, kw), strides=strides, padding=c.choice(
        ["valid", "same"]), output_padding=output_padding, dilation_rate=c.choice([1, 2]) if strides == 1 else 1,
        activation=c.choice([None, "relu"]), use_bias=c.bool()), min_hw=2)


@layer_spec(L.Conv1DTranspose, dict(KERNEL_ARGS, **dict(ONE_D, strides=(ONE_BAD, [3, (4,)])),
                                    padding=(fz.POOL_PADDING_BAD + ["causal"], ["same", "VALID"]),
                                    output_padding=(OUTPUT_PADDING_BAD + [(0, 0)], [None, 0, (0,)])),
            fixed_ndim=True, fixed_axes=_channel_axis)
def make_conv1d_transpose(c):
    strides = c.choice([1, 2, 3])
    return _steps_case(c, dict(filters=c.int(1, 3), kernel_size=c.int(1, 3), strides=strides,
                               padding=c.choice(["valid", "same"]), output_padding=c.choice([None, strides - 1]),
                               dilation_rate=c.choice([1, 2]) if strides == 1 else 1,
                               activation=c.choice([None, "relu"]), use_bias=c.bool()),
                       min_steps=2, data_format=c.choice(["channels_last", "channels_first"]))


def _image_case(c, kwargs, min_hw=1):
    fmt = c.choice(["channels_last", "channels_first"])
    n, ch = c.int(1, 3), c.int(1, 3)
    h, w = min_hw + c.int(0, 3), min_hw + c.int(0, 3)
    return _case(c, dict(kwargs, data_format=fmt), (n, ch, h, w) if fmt == "channels_first" else (n, h, w, ch))


for _cls in (L.MaxPooling2D, L.AveragePooling2D):
    @layer_spec(_cls, POOL_ARGS, fixed_ndim=True)
    def make_pool(c):
        pool = c.choice([1, 2, (2, 1), 3])
        return _image_case(c, dict(pool_size=pool, strides=c.choice([None, 1, 2]), padding=c.choice(["valid", "same"])),
                           min_hw=3)

for _cls in (L.GlobalAveragePooling2D, L.GlobalMaxPooling2D):
    @layer_spec(_cls, GLOBAL_ARGS, fixed_ndim=True)
    def make_global(c):
        return _image_case(c, dict(keepdims=c.bool()))


@layer_spec(L.UpSampling2D, {"size": (PAIR_BAD + [None], [1, (1, 3)]),
                             "data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None]),
                             "interpolation": (["bilinear", "", 1, None, ["nearest"]], ["nearest"])},
            fixed_ndim=True)
def make_upsampling(c):
    return _image_case(c, dict(size=c.choice([1, 2, (2, 3)])))


def _bn_axes(case, ndim):
    axis = case.kwargs["axis"]
    axis = axis[0] if isinstance(axis, list) else axis
    return (axis % ndim,)


@layer_spec(L.BatchNormalization, {
    "axis": (["a", 1.5, None, True, (0, 1), []], [-1, 1, [-1], 0, 7]),
    "momentum": ([-0.1, 1.5, "a", None, NAN, True], [0.0, 1.0, 0.5]),
    "epsilon": ([0, -1, "a", None, NAN, INF, True], [1e-5, 1]),
    "center": (FLAG_BAD, FLAG_OK), "scale": (FLAG_BAD, FLAG_OK),
    "beta_initializer": (INIT_BAD, INIT_OK), "gamma_initializer": (INIT_BAD, INIT_OK),
    "moving_mean_initializer": (INIT_BAD, INIT_OK), "moving_variance_initializer": (INIT_BAD, INIT_OK),
    "beta_regularizer": (REG_BAD, REG_OK), "gamma_regularizer": (REG_BAD, REG_OK),
    "beta_constraint": CONSTRAINT_ARG, "gamma_constraint": CONSTRAINT_ARG},
    fixed_ndim=True, fixed_axes=_bn_axes)
def make_batch_norm(c):
    shape = (c.int(2, 4),) + _shape(c, 1, 3)
    axis = c.choice([-1, 1] if len(shape) > 2 else [-1, 1, [1]])
    return _case(c, dict(axis=axis, momentum=c.choice([0.99, 0.5, 0.0]), epsilon=c.choice([1e-3, 0.1]),
                         center=c.bool(), scale=c.bool()), shape)




def _ln_axes(case, ndim):
    axis = case.kwargs["axis"]
    return tuple(sorted({a % ndim for a in (axis if isinstance(axis, list) else [axis])}))


@layer_spec(L.LayerNormalization, {
    "axis": (["a", 1.5, None, True, [], [1.5], {1}], [-1, [-1], 1, 7]),
    "epsilon": ([0, -1, "a", None, NAN, INF, True], [1e-5, 1]),
    "center": (FLAG_BAD, FLAG_OK), "scale": (FLAG_BAD, FLAG_OK), "rms_scaling": (FLAG_BAD, [False]),
    "beta_initializer": (INIT_BAD, INIT_OK), "gamma_initializer": (INIT_BAD, INIT_OK),
    "beta_regularizer": (REG_BAD, REG_OK), "gamma_regularizer": (REG_BAD, REG_OK),
    "beta_constraint": CONSTRAINT_ARG, "gamma_constraint": CONSTRAINT_ARG},
    fixed_ndim=True, fixed_axes=_ln_axes)
def make_layer_norm(c):
    shape = (c.int(1, 4),) + _shape(c, 1, 3)
    axis = c.choice([-1, [-1]] if len(shape) == 2 else [-1, 1, [1, -1]])
    return _case(c, dict(axis=axis, epsilon=c.choice([1e-3, 0.1]), center=c.bool(), scale=c.bool()), shape)


def _gn_axes(case, ndim):
    return (case.kwargs["axis"] % ndim,)


@layer_spec(L.GroupNormalization, {
    "groups": ([0, -2, 1.5, "a", None, True, 2 ** 40], [1, -1, 5]),
    "axis": (["a", 1.5, None, True, [1]], [-1, 1, 7, 0]),
    "epsilon": ([0, -1, "a", None, NAN, INF, True], [1e-5, 1]),
    "center": (FLAG_BAD, FLAG_OK), "scale": (FLAG_BAD, FLAG_OK),
    "beta_initializer": (INIT_BAD, INIT_OK), "gamma_initializer": (INIT_BAD, INIT_OK),
    "beta_regularizer": (REG_BAD, REG_OK), "gamma_regularizer": (REG_BAD, REG_OK),
    "beta_constraint": CONSTRAINT_ARG, "gamma_constraint": CONSTRAINT_ARG},
    fixed_ndim=True, min_ndim=2, fixed_axes=_gn_axes)
def make_group_norm(c):
    groups = c.choice([1, 2, -1])
    shape = (c.int(1, 3),) + _shape(c, 0, 2) + ((2 if groups == -1 else groups) * c.int(1, 2),)
    return _case(c, dict(groups=groups, axis=-1, epsilon=c.choice([1e-3, 0.1]), center=c.bool(), scale=c.bool()),
                 shape)


@layer_spec(L.UnitNormalization, {"axis": (["a", 1.5, None, True, [], [1.5]], [-1, [-1], 1, 7])})
def make_unit_norm(c):
    shape = (c.int(1, 4),) + _shape(c, 1, 3)
    return _case(c, dict(axis=c.choice([-1, [-1]] if len(shape) == 2 else [-1, 1, [1, -1]])), shape)


@layer_spec(L.RMSNormalization, {"axis": (["a", 1.5, None, True, [], [1.5], {1}], [-1, [-1], 1, 7]),
                                 "epsilon": ([0, -1, "a", None, NAN, INF, True], [1e-5, 1])},
            fixed_ndim=True, fixed_axes=_ln_axes)
def make_rms_norm(c):
    shape = (c.int(1, 4),) + _shape(c, 1, 3)
    axis = c.choice([-1, [-1]] if len(shape) == 2 else [-1, 1, [1, -1]])
    return _case(c, dict(axis=axis, epsilon=c.choice([1e-6, 0.1])), shape)


@layer_spec(L.Embedding, {"input_dim": (INT_BAD, [5, 100]), "output_dim": (INT_BAD, [1, 4]),
                          "embeddings_initializer": (INIT_BAD, INIT_OK), "embeddings_regularizer": (REG_BAD, REG_OK),
                          "embeddings_constraint": CONSTRAINT_ARG, "mask_zero": (["a", 1, None], [False, True])}, index_input=True)
def make_embedding(c):
    dim = c.int(2, 10)
    return _case(c, dict(input_dim=dim, output_dim=c.int(1, 4)), _shape(c, 1, 3), index_dim=dim)


def _make_rnn(c, cell):
    n, t, d, units = c.int(1, 3), c.int(1, 4), c.int(1, 3), c.int(1, 3)
    kwargs = dict(units=units, activation=c.choice(["tanh", "relu", "sigmoid", "linear"]), use_bias=c.bool(),
                  return_sequences=c.bool(), return_state=c.bool(), go_backwards=c.bool(),
                  dropout=c.choice([0.0, 0.0, 0.4]), seed=c.int(0, 99))
    if cell is not L.SimpleRNN:
        kwargs["recurrent_activation"] = c.choice(["sigmoid", "hard_sigmoid", "tanh"])
    n_states = 2 if cell is L.LSTM else 1
    states = c.choice([None, n_states])
    case = _case(c, kwargs, (n, t, d), states=None if states is None else [(n, units)] * states)
    case.mask_p = c.choice([None, None, 0.3])   # a call mask (N, T) skipping about this share of steps
    return case


for _cls in (L.SimpleRNN, L.LSTM, L.GRU):
    _args = _rnn_args(_cls is not L.SimpleRNN)
    if _cls is L.LSTM:
        _args["unit_forget_bias"] = (FLAG_BAD, FLAG_OK)
    if _cls is L.GRU:
        _args["reset_after"] = ([False, "a", 1, None], [True])

    @layer_spec(_cls, _args, fixed_ndim=True, fixed_axes=lambda case, ndim: (2,))
    def make_rnn(c, cell=_cls):
        return _make_rnn(c, cell)


# RNN(cell) and the cells (fuzzed through RNN(cell): a cell alone is called with states)

def _cell_args(recurrent):
    args = {k: v for k, v in _rnn_args(recurrent).items()
            if k not in ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
                         "zero_output_for_mask")}
    args["activation"] = (ACT_BAD, [None, "relu", "tanh", "sigmoid", "gelu", "softmax"])
    args["dropout"] = (RATE_BAD, [0.0])   # (> 0 raises NotImplementedError naming it: tests/layers/test_rnn_cells.py)
    args["recurrent_dropout"] = (RATE_BAD, [0.0, 0])
    if recurrent:
        args["recurrent_activation"] = (ACT_BAD, ["sigmoid", "hard_sigmoid", "tanh", None, "relu"])
    return args


def _make_cell_case(c, cls):
    kwargs = dict(units=c.int(1, 3), activation=c.choice(["tanh", "relu", "sigmoid", "linear"]), use_bias=c.bool())
    if cls is not L.SimpleRNNCell:
        kwargs["recurrent_activation"] = c.choice(["sigmoid", "hard_sigmoid", "tanh"])
    case = _case(c, kwargs, (c.int(1, 3), c.int(1, 4), c.int(1, 3)))
    case.mask_p = c.choice([None, None, 0.3])
    return case


for _cls in (L.SimpleRNNCell, L.LSTMCell, L.GRUCell):
    _args = _cell_args(_cls is not L.SimpleRNNCell)
    if _cls is L.LSTMCell:
        _args["unit_forget_bias"] = (FLAG_BAD, FLAG_OK)
    if _cls is L.GRUCell:
        _args["reset_after"] = (FLAG_BAD, FLAG_OK)

    @layer_spec(_cls, _args, fixed_ndim=True, fixed_axes=lambda case, ndim: (2,),
                wrap=lambda cell: L.RNN(cell, return_sequences=True))
    def make_cell(c, cls=_cls):
        return _make_cell_case(c, cls)


def _cell_template(c):
    return c.choice([L.SimpleRNNCell, L.LSTMCell, L.GRUCell])(c.int(1, 3))


@layer_spec(L.StackedRNNCells, {"cells": ([None, [], "lstm", [L.Dense(2)], [object()], 3],
                                          [[L.LSTMCell(2), L.GRUCell(3)], (L.SimpleRNNCell(1),)])},
            fixed_ndim=True, fixed_axes=lambda case, ndim: (2,), wrap=lambda cells: L.RNN(cells))
def make_stacked_cells(c):
    return _case(c, dict(cells=[_cell_template(c) for _ in range(c.int(1, 3))]),
                 (c.int(1, 3), c.int(1, 4), c.int(1, 3)))


@layer_spec(L.RNN, {"cell": ([None, "lstm", 3, L.Dense(2), object(), []], [L.LSTMCell(2), [L.GRUCell(2)]]),
                    "return_sequences": (FLAG_BAD, FLAG_OK), "return_state": (FLAG_BAD, FLAG_OK),
                    "go_backwards": (FLAG_BAD, FLAG_OK), "stateful": (FLAG_BAD, [False]),
                    "unroll": (FLAG_BAD, FLAG_OK), "zero_output_for_mask": (FLAG_BAD, FLAG_OK)},
            fixed_ndim=True, fixed_axes=lambda case, ndim: (2,))
def make_rnn_layer(c):
    case = _case(c, dict(cell=_cell_template(c), return_sequences=c.bool(), return_state=c.bool(),
                         go_backwards=c.bool(), zero_output_for_mask=c.bool()),
                 (c.int(1, 3), c.int(1, 4), c.int(1, 3)))
    case.mask_p = c.choice([None, None, 0.3])
    return case


# ----------------------------------------------------------------------------- wrappers (a layer as argument)
# A wrapped layer in a case's kwargs is a template: each run builds a fresh one from its config
# (see _fresh_kwargs), so no run sees another's built weights.

def _rnn_template(c, **kwargs):
    cell = c.choice([L.SimpleRNN, L.LSTM, L.GRU])
    return cell(c.int(1, 3), return_sequences=c.bool(), **kwargs)


@layer_spec(L.Bidirectional, {"layer": ([None, "lstm", 3, L.Dense(2), object()], [L.LSTM(2), L.GRU(2)]),
                              "merge_mode": (["avg", 1, True, "concatenate"], ["concat", "sum", "mul", "ave"]),
                              "weights": ([[np.zeros(1)], "a"], [None]),
                              "backward_layer": ([L.Dense(2), "x", 1], [None])},
            fixed_ndim=True, fixed_axes=lambda case, ndim: (2,))
def make_bidirectional(c):
    return _case(c, dict(layer=_rnn_template(c), merge_mode=c.choice(["concat", "sum", "mul", "ave"])),
                 (c.int(1, 3), c.int(1, 4), c.int(1, 3)))


@layer_spec(L.TimeDistributed, {"layer": ([None, "dense", 3, object()], [L.Dense(2), L.Activation("relu")])},
            min_ndim=3, fixed_axes=lambda case, ndim: (ndim - 1,))
def make_time_distributed(c):
    return _case(c, dict(layer=L.Dense(c.int(1, 3), activation=c.choice([None, "tanh"]))),
                 (c.int(1, 3), c.int(1, 3)) + _shape(c, 1, 2))


def _fresh_kwargs(kwargs, dtype):
    """Constructor kwargs with each Layer value rebuilt from its config (a wrapper's layer), in
    the wrapper's dtype when that is a valid one, else the case's."""
    try:
        wanted = np.dtype(kwargs.get("dtype"))
        dtype = wanted.name if wanted in (np.float32, np.float64) and kwargs.get("dtype") is not None else dtype
    except (TypeError, ValueError):
        pass

    def fresh(v):
        if isinstance(v, L.Layer):
            config = dict(v.get_config(), dtype=dtype)
            config.pop("name", None)
            return type(v).from_config(config)
        return v
    return {k: fresh(v) for k, v in kwargs.items()}


# ----------------------------------------------------------------------------- merge layers (a list of inputs)
# The shape rules below are Keras 3's, written out independently of cynet/layers/merging.py; a
# mutated list of inputs must work (OK) when they allow its shapes and be refused otherwise.

def _elementwise_ok(case, shapes, count=None):
    """Keras's Merge: at least one input (exactly `count`), each with a batch axis, equal batch
    sizes; the other axes, aligned from the right (a lower-rank input gets size-1 axes after the
    batch axis), must be equal or 1."""
    if not shapes or (count is not None and len(shapes) != count) or any(len(s) < 1 for s in shapes):
        return False
    if len({s[0] for s in shapes}) > 1:
        return False
    nd = max(len(s) for s in shapes) - 1
    samples = [(1,) * (nd - len(s) + 1) + tuple(s[1:]) for s in shapes]
    return all(len({s[d] for s in samples} - {1}) <= 1 for d in range(nd))


def _concatenate_ok(case, shapes):
    """Keras's Concatenate: inputs of one rank (at least 1) that have `axis`, equal on every other axis
    (the batch axis too, unless it is the concatenation axis)."""
    if not shapes or any(len(s) < 1 for s in shapes) or len({len(s) for s in shapes}) > 1:
        return False
    nd, axis = len(shapes[0]), case.kwargs["axis"]
    if not -nd <= axis < nd:
        return False
    return all(len({s[d] for s in shapes}) == 1 for d in range(nd) if d != axis % nd)


def _dot_ok(case, shapes):
    """Keras's Dot: exactly two inputs of rank >= 2, equal batch sizes, `axes` (an int for both or
    one per input) within each rank and not the batch axis, the two summed axes of equal size."""
    if len(shapes) != 2 or any(len(s) < 2 for s in shapes) or shapes[0][0] != shapes[1][0]:
        return False
    axes = case.kwargs["axes"]
    pair = (axes, axes) if isinstance(axes, (int, np.integer)) else tuple(axes)
    if not all(-len(s) <= a < len(s) and a % len(s) for a, s in zip(pair, shapes)):
        return False
    return shapes[0][pair[0]] == shapes[1][pair[1]]


ELEMENTWISE = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)

for _cls in ELEMENTWISE:
    _count = 2 if _cls is L.Subtract else None

    @layer_spec(_cls, {}, shapes_ok=lambda case, shapes, count=_count: _elementwise_ok(case, shapes, count))
    def make_elementwise(c, count=_count):
        """2 or 3 inputs (1 sometimes; Subtract: 2) with one batch size, sample shapes broadcasting
        by Keras's rule: the first input's sample shape, or for the others a right-aligned tail of it
        (none at all: a (batch,) input), any axis of it possibly 1."""
        n = count or c.choice([2, 3, 1])
        batch, sample = c.int(1, 3), (_shape(c, 1, 3) if c.int(0, 4) < 4 else ())
        shapes = []
        for i in range(n):
            rank = c.int(0, len(sample)) if i else len(sample)
            shapes.append((batch,) + tuple(1 if c.int(0, 3) == 0 else d for d in sample[len(sample) - rank:]))
        return _merge_case(c, {}, shapes)


@layer_spec(L.Concatenate, {
    # 2 ** 63 and 5 are integers (taken by the constructor), refused at the call as no axis of the inputs;
    # axis 0 joins along the batch axis, as Keras's Concatenate does
    "axis": (["a", 1.5, None, True, np.bool_(False), (0, 1), [1], 1j, np.float64(1.0), NAN, object()],
             [-1, 0, 1, np.int64(-1), np.int8(1), 5, -7, 2 ** 63]),
}, shapes_ok=_concatenate_ok)
def make_concatenate(c):
    nd = c.int(1, 4)
    base = [c.int(1, 3) for _ in range(nd)]
    axis = c.int(-nd, nd - 1)
    shapes = []
    for _ in range(c.choice([2, 3, 1])):
        s = list(base)
        s[axis % nd] = c.int(1, 3)
        shapes.append(tuple(s))
    return _merge_case(c, dict(axis=axis), shapes)


# Dot's "incompatible input shapes: axis values 3 (at axis 1) != 4 (at axis 2)" (Keras's words) names
# the inputs as "input"
@layer_spec(L.Dot, {
    "axes": (["1", "ab", 1.5, None, True, np.float64(1.0), (1,), (1, 2, 3), [], (1.0, 2), (True, 1), (1, None),
              [1, "2"], {1, 2}, {}, object(), np.array([1, 1]), 1j],
             # integers the constructor takes; 0 (the batch axis), 7 and 2 ** 63 (no axis of the inputs) and
             # pairs of unequal sizes are refused at the call
             [1, -1, (1, 1), [1, -1], (np.int64(1), np.int32(-1)), 0, (1, 0), 7, (2 ** 63, 1), (-1, 2)]),
    "normalize": (FLAG_BAD, FLAG_OK),
}, shapes_ok=_dot_ok, input_names=("inputs", "input"))
def make_dot(c):
    batch, k = c.int(1, 3), c.int(1, 4)

    def operand():
        nd = c.int(2, 4)
        shape = [batch] + [c.int(1, 3) for _ in range(nd - 1)]
        axis = c.int(1, nd - 1)
        shape[axis] = k
        return tuple(shape), axis - nd if c.bool() else axis   # (negative: counted from the end)
    (s1, a1), (s2, a2) = operand(), operand()
    axes = c.choice([a1, (a1, a2), [a1, a2]]) if a1 == a2 else c.choice([(a1, a2), [a1, a2]])
    return _merge_case(c, dict(axes=axes, normalize=c.bool()), [s1, s2])


# ----------------------------------------------------------------------------- shape, noise, 1-D pooling and
# preprocessing layers (issue 17)

AMOUNT_BAD = [-1, True, 1.5, "1", None, (1,), (1, 2, 3), (1, -1), (1, 1.5), (True, 0), 2 ** 31, 2 ** 63, [],
              object(), 1j, np.float64(1.0), {1: 2}]
AMOUNT_2D_BAD = AMOUNT_BAD + [((1, 2, 3), (0, 0)), ((-1, 0), (0, 0)), (("a", 0), (0, 0)), ((0, 0), (0, True)),
                              (1, 2, 3), ((1, 1),), "ab"]
NOISE_SEED = (SEED_BAD, [0, 123, np.int64(5)])   # (seeded: both backends draw the same noise)


@layer_spec(L.Masking, {"mask_value": (["a", None, True, 1j, [0.0], object()], [0.0, -1, 1.5, NAN, np.float32(2.0)])},
            min_ndim=2)
def make_masking(c):
    return _case(c, dict(mask_value=c.choice([0.0, 1.0, -0.5])), _shape(c, 2, 4))


@layer_spec(L.Identity, {})
def make_identity(c):
    return _case(c, {}, _shape(c, 1, 4))


@layer_spec(L.RepeatVector, {"n": (INT_BAD, [1, 3, np.int64(2)])}, fixed_ndim=True, min_ndim=2)
def make_repeat_vector(c):
    return _case(c, dict(n=c.int(1, 3)), (c.int(1, 3), c.int(1, 4)))


@layer_spec(L.Permute, {"dims": ([None, "ab", 1, (0, 1), (1, 1), (1, 3), (), (1.0, 2), (True, 2), [1, "2"], object(),
                                  {1: 2}, (2 ** 63,), b"\x01"],
                                 # valid permutations: of another rank than the case's, refused at the call
                                 [(1,), (2, 1), [1, 2, 3], (3, 1, 2), (np.int64(1), np.int32(2))])},
            fixed_ndim=True, min_ndim=2)
def make_permute(c):
    shape = (c.int(1, 3),) + _shape(c, 1, 3)
    dims = list(range(1, len(shape)))
    for i in range(len(dims) - 1, 0, -1):   # a permutation, drawn by the chooser
        j = c.int(0, i)
        dims[i], dims[j] = dims[j], dims[i]
    return _case(c, dict(dims=tuple(dims)), shape)


def _steps_case(c, kwargs, min_steps=1, data_format=None, features=1):
    """A (batch, steps, features) case, (batch, features, steps) for data_format="channels_first";
    the features are a multiple of `features`."""
    n, t, f = c.int(1, 3), min_steps + c.int(0, 3), c.int(1, 3) * features
    if data_format is not None:
        kwargs = dict(kwargs, data_format=data_format)
    return _case(c, kwargs, (n, f, t) if data_format == "channels_first" else (n, t, f))


@layer_spec(L.ZeroPadding1D, {"padding": (AMOUNT_BAD, [0, 2, (0, 1), [2, 0], np.int64(1)]),
                              "data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None])}, fixed_ndim=True)
def make_zero_padding1d(c):
    pad = c.choice([1, 0, (0, 2), (1, 0)])
    return _steps_case(c, dict(padding=pad), data_format=c.choice(["channels_last", "channels_first"]))


@layer_spec(L.ZeroPadding2D, {"padding": (AMOUNT_2D_BAD, [0, 2, (1, 0), ((0, 1), (2, 0)), [[1, 1], [0, 0]],
                                                          np.int64(1)]),
                              "data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None])}, fixed_ndim=True)
def make_zero_padding2d(c):
    pad = c.choice([1, (1, 0), ((0, 1), (2, 0)), 0])
    return _image_case(c, dict(padding=pad))


@layer_spec(L.Cropping1D, {"cropping": (AMOUNT_BAD, [0, 1, (0, 1), [1, 0], np.int64(1), 50])}, fixed_ndim=True)
def make_cropping1d(c):
    crop = c.choice([(1, 1), (0, 0), (2, 0), (0, 1)])
    return _steps_case(c, dict(cropping=crop), min_steps=sum(crop) + 1)


@layer_spec(L.Cropping2D, {"cropping": (AMOUNT_2D_BAD, [0, 1, (1, 0), ((0, 1), (1, 0)), [[0, 0], [1, 1]], 50]),
                           "data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None])}, fixed_ndim=True)
def make_cropping2d(c):
    crop = c.choice([((0, 0), (0, 0)), ((1, 0), (0, 1)), ((1, 1), (2, 0))])
    return _image_case(c, dict(cropping=crop), min_hw=5)


@layer_spec(L.UpSampling1D, {"size": (INT_BAD, [1, 3, np.int64(2)])}, fixed_ndim=True)
def make_upsampling1d(c):
    return _steps_case(c, dict(size=c.choice([1, 2, 3])))


POOL1D_ARGS = {"pool_size": (ONE_BAD, [1, (2,), [3]]),
               "strides": ([v for v in ONE_BAD if v is not None], [None, 1, (2,)]),
               "padding": (fz.POOL_PADDING_BAD + ["causal"], ["same", "VALID"]),
               "data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None])}

for _cls in (L.MaxPooling1D, L.AveragePooling1D):
    @layer_spec(_cls, POOL1D_ARGS, fixed_ndim=True)
    def make_pool1d(c):
        return _steps_case(c, dict(pool_size=c.choice([1, 2, 3]), strides=c.choice([None, 1, 2]),
                                   padding=c.choice(["valid", "same"])), min_steps=3,
                           data_format=c.choice(["channels_last", "channels_first"]))


for _cls in (L.GlobalAveragePooling1D, L.GlobalMaxPooling1D):
    @layer_spec(_cls, GLOBAL_ARGS, fixed_ndim=True)
    def make_global1d(c):
        return _steps_case(c, dict(keepdims=c.bool()), data_format=c.choice(["channels_last", "channels_first"]))


@layer_spec(L.SpatialDropout1D, {"rate": (RATE_BAD, [0.0, 0.5, 0.99]), "seed": NOISE_SEED}, fixed_ndim=True)
def make_spatial_dropout1d(c):
    return _steps_case(c, dict(rate=c.choice([0.0, 0.3, 0.7]), seed=c.int(0, 99)))


@layer_spec(L.SpatialDropout2D, {"rate": (RATE_BAD, [0.0, 0.5, 0.99]), "seed": NOISE_SEED,
                                 "data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None])}, fixed_ndim=True)
def make_spatial_dropout2d(c):
    return _image_case(c, dict(rate=c.choice([0.0, 0.3, 0.7]), seed=c.int(0, 99)))


@layer_spec(L.GaussianNoise, {"stddev": ([-0.1, 1.5, NAN, INF, "0.5", None, True, 1j, [0.5]], [0.0, 0.5, 1.0, 1]),
                              "seed": NOISE_SEED})
def make_gaussian_noise(c):
    return _case(c, dict(stddev=c.choice([0.0, 0.1, 1.0]), seed=c.int(0, 99)), _shape(c, 1, 3))


@layer_spec(L.GaussianDropout, {"rate": (RATE_BAD, [0.0, 0.5, 0.9]), "seed": NOISE_SEED})
def make_gaussian_dropout(c):
    return _case(c, dict(rate=c.choice([0.0, 0.3, 0.7]), seed=c.int(0, 99)), _shape(c, 1, 3))


@layer_spec(L.AlphaDropout, {"rate": (RATE_BAD, [0.0, 0.5, 0.9]),
                             "noise_shape": ([5.5, "ab", (0,), (1.5,), (True, 1)], [None, (None, 1)]),
                             "seed": NOISE_SEED})
def make_alpha_dropout(c):
    shape = _shape(c, 1, 3)
    noise = c.choice([None, tuple(1 if i % 2 else None for i in range(len(shape)))])
    return _case(c, dict(rate=c.choice([0.0, 0.3, 0.7]), noise_shape=noise, seed=c.int(0, 99)), shape)


def _prelu_axes(case, ndim):
    shared = case.kwargs["shared_axes"] or ()
    return tuple(i for i in range(1, ndim) if i not in shared)


@layer_spec(L.PReLU, {"alpha_initializer": (INIT_BAD, INIT_OK), "alpha_regularizer": (REG_BAD, REG_OK),
                      "alpha_constraint": CONSTRAINT_ARG,
                      # 7: an axis the inputs lack, refused at the call
                      "shared_axes": ([0, -1, "a", 1.5, True, [1, 1], [0], (1, "2"), object(), {1}, [None], 2 ** 31],
                                      [None, 1, [1], (1,), np.int64(1), 7])},
            fixed_ndim=True, min_ndim=2, fixed_axes=_prelu_axes)
def make_prelu(c):
    shape = (c.int(1, 3),) + _shape(c, 1, 3)
    shared = c.choice([None, [1], list(range(1, len(shape)))])
    return _case(c, dict(shared_axes=shared, alpha_initializer=c.choice(["zeros", "random_normal"])), shape)


# MultiHeadAttention takes [query, value] or [query, value, key] (its list form; Keras's mha(query,
# value, key=...)): (batch, T, dim) arrays of one batch size, value and key of one length S, each
# last axis the one its projection was built for (the valid case's).
def _mha_ok(case, shapes):
    if not 2 <= len(shapes) <= 3 or any(len(s) != 3 for s in shapes):
        return False
    if len({s[0] for s in shapes}) > 1 or (len(shapes) == 3 and shapes[1][1] != shapes[2][1]):
        return False
    built = list(case.shapes) + [case.shapes[1]] * (3 - len(case.shapes))   # (no key: the value is the key)
    given = list(shapes) + [shapes[1]] * (3 - len(shapes))
    return all(s[-1] == b[-1] for s, b in zip(given, built))


@layer_spec(L.MultiHeadAttention, {
    "num_heads": (INT_BAD, [1, 3, np.int64(2)]),
    "key_dim": (INT_BAD, [1, 4]),
    "value_dim": ([v for v in INT_BAD if v is not None], [None, 1, 3]),
    "dropout": (RATE_BAD, [0.0, 0.5]),
    "use_bias": (FLAG_BAD, FLAG_OK),
    "output_shape": ([0, -1, "a", 1.5, True, (2, 0), [], (2, "a")], [None, 2, (2, 3), [1]]),
    "attention_axes": (["x", 1.5, True, [1.0], object()], [None, 1, -2, (1,), [1]]),
    "sliding_window": ([0, -1, True, 2.5, "3"], [None, 1, 2]),
    "flash_attention": (["yes", 1, 0.5], [None, False]),
    "kernel_initializer": (INIT_BAD, INIT_OK), "bias_initializer": (INIT_BAD, INIT_OK),
    "kernel_regularizer": (REG_BAD, REG_OK), "bias_regularizer": (REG_BAD, REG_OK),
    **CONSTRAINT_ARGS,
    "use_gate": (["yes", 1, None], [False]),
    "seed": (SEED_BAD, [None, 0, 7]),
}, shapes_ok=_mha_ok, input_names=("inputs", "query", "value", "key"))
def make_multi_head_attention(c):
    batch, t, s = c.int(1, 3), c.int(1, 4), c.int(1, 4)
    shapes = [(batch, t, c.int(1, 4)), (batch, s, c.int(1, 4))]
    if c.bool():
        shapes.append((batch, s, c.int(1, 4)))
    kwargs = dict(num_heads=c.int(1, 3), key_dim=c.int(1, 3), value_dim=c.choice([None, 2]),
                  dropout=c.choice([0.0, 0.0, 0.3]), use_bias=c.bool(), output_shape=c.choice([None, 2, (2, 1)]),
                  seed=3)
    return _merge_case(c, kwargs, shapes)


# Attention and AdditiveAttention take [query, value] or [query, value, key]: (batch, T, dim)
# arrays of one batch size, value and key of one length, query and key of one width (without a
# key, the value is the key); AdditiveAttention's scale fixes the query's width.
def _luong_ok(case, shapes):
    if not 2 <= len(shapes) <= 3 or any(len(s) != 3 for s in shapes) or len({s[0] for s in shapes}) > 1:
        return False
    q, v = shapes[0], shapes[1]
    k = shapes[2] if len(shapes) == 3 else v
    return v[1] == k[1] and q[2] == k[2]


def _luong_case(c, kwargs):
    batch, d = c.int(1, 3), c.int(1, 4)
    tv = c.int(1, 4)
    three = c.bool()
    shapes = [(batch, c.int(1, 4), d), (batch, tv, c.int(1, 4) if three else d)]
    if three:
        shapes.append((batch, tv, d))
    return _merge_case(c, kwargs, shapes)


LUONG_ARGS = {"use_scale": (FLAG_BAD, FLAG_OK), "dropout": (RATE_BAD, [0.0, 0.5]), "seed": (SEED_BAD, [None, 0, 7])}


@layer_spec(L.Attention, dict(LUONG_ARGS, score_mode=(["sum", 1, None, "DOT"], ["dot", "concat"])),
            shapes_ok=_luong_ok, input_names=("inputs", "query", "value", "key"))
def make_attention(c):
    return _luong_case(c, dict(use_scale=c.bool(), score_mode=c.choice(["dot", "concat"]),
                               dropout=c.choice([0.0, 0.0, 0.4]), seed=5))


def _additive_ok(case, shapes):
    return _luong_ok(case, shapes) and (not case.kwargs.get("use_scale", True) or shapes[0][2] == case.shapes[0][2])


# (score_mode reaches Attention's constructor through **kwargs, as in Keras, and is ignored)
@layer_spec(L.AdditiveAttention, dict(LUONG_ARGS, score_mode=(["sum", 1, None], ["dot", "concat"])), shapes_ok=_additive_ok, input_names=("inputs", "query", "value", "key"))
def make_additive_attention(c):
    return _luong_case(c, dict(use_scale=c.bool(), dropout=c.choice([0.0, 0.0, 0.4]), seed=5))


FACTOR_BAD = [NAN, INF, -INF, "0.5", None, True, 1j, [], [[NAN]], object(), ["a"], np.bool_(True), [1.0, INF]]


@layer_spec(L.Rescaling, {"scale": (FACTOR_BAD, [0.5, 2, -1.0, [1.0], np.float32(0.1), [[2.0]]]),
                          "offset": (FACTOR_BAD, [0.0, -1, [0.5]])})
def make_rescaling(c):
    shape = _shape(c, 1, 4)
    per_axis = [float(v) for v in range(1, shape[-1] + 1)] if len(shape) > 1 else 2.0
    return _case(c, dict(scale=c.choice([1 / 255, 2.0, per_axis]), offset=c.choice([0.0, -1.0])), shape)


@layer_spec(L.CenterCrop, {"height": (INT_BAD, [1, 2, np.int64(1)]), "width": (INT_BAD, [1, 2]),
                           "data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None])}, fixed_ndim=True)
def make_center_crop(c):
    # every axis of the image at least one larger than any crop the sweep asks for (2), so that neither
    # a shrunk axis nor the other data_format make an image smaller than the window (NotImplementedError:
    # see tests/layers/test_preprocessing.py)
    fmt = c.choice(["channels_last", "channels_first"])
    n, ch, h, w = c.int(1, 3), c.int(3, 4), c.int(3, 6), c.int(3, 6)
    return _case(c, dict(height=c.int(1, 2), width=c.int(1, 2), data_format=fmt),
                 (n, ch, h, w) if fmt == "channels_first" else (n, h, w, ch))


def _norm_axes(case, ndim):
    axis = case.kwargs["axis"]
    axes = () if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axes)


@layer_spec(L.Normalization, {
    # (the case always gives both statistics: one alone is refused when the layer is made)
    "axis": (["a", 1.5, True, (1, 1), [None], object()], [-1, None, 0, 7]),
    "mean": (["a", NAN, None, [[[1.0]]], [1.0, 2.0], object(), True], [0.5, 2, np.float32(-1.0)]),
    "variance": (["a", NAN, None, -1.0, [1.0, 2.0], True], [1.0, 0.0, 3]),
    "invert": (FLAG_BAD, FLAG_OK)}, fixed_ndim=True, fixed_axes=_norm_axes)
def make_normalization(c):
    shape = (c.int(1, 3),) + _shape(c, 1, 3)
    axis = c.choice([-1, None, list(range(1, len(shape)))])
    return _case(c, dict(axis=axis, mean=c.choice([0.0, 1.5]), variance=c.choice([1.0, 4.0]), invert=c.bool()),
                 shape)


FILL_BAD = ["a", NAN, None, True, [0.0], 1j]
SEED_OK = [0, 7, np.int64(3)]   # (an unseeded layer draws from the global generator: the backends would differ)
IMAGE_FILL_MODE = (["mirror", "", None, 1, ["reflect"], "Reflect"], ["reflect", "wrap", "constant", "nearest"])
IMAGE_INTERPOLATION = (["bicubic", "", None, 1, ["nearest"]], ["nearest", "bilinear"])
FACTOR_RANGE_BAD = [1.5, -1.5, NAN, "0.1", None, True, (0.1,), (0.1, 0.2, 0.3), (0.1, "a"), object(), 1j]


@layer_spec(L.Resizing, {"height": (INT_BAD, [1, 3, np.int64(2)]), "width": (INT_BAD, [1, 5]),
                         "interpolation": (["cubic", "", 1, None, ["nearest"]], ["nearest", "bilinear"]),
                         "crop_to_aspect_ratio": (FLAG_BAD, FLAG_OK), "pad_to_aspect_ratio": (FLAG_BAD, FLAG_OK),
                         "fill_mode": (["reflect", "", None, 1], ["constant"]),
                         "fill_value": (FILL_BAD, [0.0, 1, -2.5]),
                         "antialias": (["yes", 1, None], [False]),
                         "data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None])}, fixed_ndim=True)
def make_resizing(c):
    # (neither aspect-ratio option: the sweep turns each on alone; both at once is refused)
    return _image_case(c, dict(height=c.int(1, 5), width=c.int(1, 5), interpolation=c.choice(["bilinear", "nearest"]),
                               fill_value=c.choice([0.0, 1.0])))


@layer_spec(L.RandomFlip, {"mode": (["diagonal", "", None, 1, ["horizontal"]],
                                    ["horizontal", "vertical", "horizontal_and_vertical"]),
                           "seed": (SEED_BAD, SEED_OK),
                           "data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None])}, fixed_ndim=True)
def make_random_flip(c):
    return _image_case(c, dict(mode=c.choice(["horizontal", "vertical", "horizontal_and_vertical"]),
                               seed=c.int(0, 99)))


@layer_spec(L.RandomCrop, {"height": (INT_BAD, [1, 3, np.int64(2)]), "width": (INT_BAD, [1, 5]),
                           "seed": (SEED_BAD, SEED_OK),
                           "data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None])}, fixed_ndim=True)
def make_random_crop(c):
    # (heights and widths below and above the images': the random window and Keras's fallback)
    return _image_case(c, dict(height=c.int(1, 5), width=c.int(1, 5), seed=c.int(0, 99)))


def _affine_args(**factors):
    return dict(factors, fill_mode=IMAGE_FILL_MODE, interpolation=IMAGE_INTERPOLATION, seed=(SEED_BAD, SEED_OK),
                fill_value=(FILL_BAD, [0.0, 1, -2.5]), data_format=(fz.DATA_FORMAT_BAD, ["channels_first", None]))


def _affine_case(c, **factors):
    return _image_case(c, dict(factors, fill_mode=c.choice(["reflect", "wrap", "constant", "nearest"]),
                               interpolation=c.choice(["bilinear", "nearest"]), seed=c.int(0, 99),
                               fill_value=c.choice([0.0, 0.5])))


@layer_spec(L.RandomRotation, _affine_args(factor=(FACTOR_RANGE_BAD, [0.0, 1, (-0.2, 0.3), [0.5, 0.5]])),
            fixed_ndim=True)
def make_random_rotation(c):
    return _affine_case(c, factor=c.choice([0.1, 0.5, (-0.3, 0.1)]))


@layer_spec(L.RandomZoom, _affine_args(height_factor=(FACTOR_RANGE_BAD + [-1.0], [0.0, 1, (-0.5, 0.3)]),
                                       width_factor=(FACTOR_RANGE_BAD[:4] + [-1.0, (0.1,), True], [None, 0.2, (-0.2, 0.0)])),
            fixed_ndim=True)
def make_random_zoom(c):
    return _affine_case(c, height_factor=c.choice([0.2, (-0.5, 0.5)]), width_factor=c.choice([None, 0.3]))


@layer_spec(L.RandomTranslation, _affine_args(height_factor=(FACTOR_RANGE_BAD, [0.0, 1, (-0.5, 0.3)]),
                                              width_factor=(FACTOR_RANGE_BAD, [0.0, -1, (0.1, 0.2)])),
            fixed_ndim=True)
def make_random_translation(c):
    return _affine_case(c, height_factor=c.choice([0.2, (-0.5, 0.5)]), width_factor=c.choice([0.3, (0.0, 0.4)]))


VALUE_RANGE = ([(0,), (0, 1, 2), "0-255", None, 5, (0, NAN), (0, "a")], [(0, 255), [-1, 1], (1.0, 0.0)])


@layer_spec(L.RandomContrast, {"factor": ([-0.5, 1.5, NAN, "0.1", None, True, (0.1,), object()], [0.0, 1, (0.2, 0.8)]),
                               "value_range": VALUE_RANGE, "seed": (SEED_BAD, SEED_OK),
                               "data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None])}, fixed_ndim=True)
def make_random_contrast(c):
    return _image_case(c, dict(factor=c.choice([0.5, (0.1, 0.9)]), value_range=c.choice([(0, 255), (-1, 1)]),
                               seed=c.int(0, 99)))


@layer_spec(L.RandomBrightness, {"factor": (FACTOR_RANGE_BAD, [0.0, -1, (-0.2, 0.5)]),
                                 "value_range": VALUE_RANGE, "seed": (SEED_BAD, SEED_OK),
                                 "data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None])}, fixed_ndim=True)
def make_random_brightness(c):
    return _image_case(c, dict(factor=c.choice([0.2, (-0.5, 0.1)]), value_range=c.choice([(0, 255), (-1, 1)]),
                               seed=c.int(0, 99)))


REG_FACTOR = ([-0.1, "a", NAN, None, True, INF, 1j, [0.1]], [0.0, 0.5, 1, np.float32(0.1)])


@layer_spec(L.ActivityRegularization, {"l1": REG_FACTOR, "l2": REG_FACTOR})
def make_activity_regularization(c):
    return _case(c, dict(l1=c.choice([0.0, 0.1]), l2=c.choice([0.0, 0.2])), _shape(c, 1, 3))


def _fuzz_tanh(x):
    """A Lambda function made of a cynet layer call (so differentiable)."""
    return L.Activation("tanh", dtype=x.dtype.name if x.dtype.kind == "f" else None)(x)


def _fuzz_identity(x):
    return x


@layer_spec(L.Lambda, {"function": ([3, None, "a", object(), L.Dense], [_fuzz_identity, _fuzz_tanh]),
                       "output_shape": (["a", 1.5, (-1,), (True,), 5], [None, (3,), lambda s: s]),
                       "mask": ([1, "a"], [None]),
                       "arguments": ([[1], "a", 3, {1: 2}], [None, {}])})
def make_lambda(c):
    return _case(c, dict(function=c.choice([_fuzz_identity, _fuzz_tanh])), _shape(c, 1, 3))


@layer_spec(L.CategoryEncoding, {"num_tokens": (INT_BAD, [1, 10, np.int64(7)]),
                                 "output_mode": (["tf_idf", "", None, 1, "int", ["count"]],
                                                 ["one_hot", "multi_hot", "count", "binary"]),
                                 "sparse": (["yes", 1, None, True], [False])},
            fixed_ndim=True, min_ndim=2, index_input=True)
def make_category_encoding(c):
    # (multi_hot / count take (batch, values) only; the index inputs lie in [0, num_tokens))
    tokens = c.int(1, 6)
    case = _case(c, dict(num_tokens=tokens, output_mode=c.choice(["multi_hot", "count"])), (c.int(1, 3), c.int(1, 4)),
                 index_dim=tokens)
    return case
# --- depthwise and separable convolutions (activity_regularizer: only None, others raise
# NotImplementedError, tested in tests/layers/test_depthwise.py)

INT1_BAD = [v for v in INT_BAD if v != [3]] + [(1, 2), (0,), ()]
NONE_ONLY = ([], [None])


def _depthwise_args(rank):
    size = (PAIR_BAD + [None], [1, (1, 2)]) if rank == 2 else (INT1_BAD, [1, (2,), np.int64(2)])
    return {"kernel_size": size, "strides": size, "dilation_rate": size,
            "padding": (fz.POOL_PADDING_BAD + ["causal"], ["same", "VALID"]),
            "depth_multiplier": (INT_BAD, [1, 2]), "data_format": (fz.DATA_FORMAT_BAD, ["channels_first", None]),
            "activation": (ACT_BAD, [None, "relu"]), "use_bias": (FLAG_BAD, FLAG_OK),
            "depthwise_initializer": (INIT_BAD, INIT_OK), "bias_initializer": (INIT_BAD, INIT_OK),
            "depthwise_regularizer": (REG_BAD, REG_OK), "bias_regularizer": (REG_BAD, REG_OK),
            "activity_regularizer": NONE_ONLY, "depthwise_constraint": CONSTRAINT_ARG, "bias_constraint": CONSTRAINT_ARG}


def _separable_args(rank):
    return dict(_depthwise_args(rank), filters=(INT_BAD, [1, 3]), pointwise_initializer=(INIT_BAD, INIT_OK),
                pointwise_regularizer=(REG_BAD, REG_OK), pointwise_constraint=CONSTRAINT_ARG)


def _depthwise_case(c, rank, separable):
    fmt = c.choice(["channels_last", "channels_first"])
    ks = [c.int(1, 3) for _ in range(rank)]
    dil = c.choice([1, 2])
    spatial = [(k - 1) * dil + 1 + c.int(0, 3) for k in ks]
    n, ch = c.int(1, 3), c.int(1, 3)
    shape = (n, ch, *spatial) if fmt == "channels_first" else (n, *spatial, ch)
    kwargs = dict(kernel_size=tuple(ks), strides=c.choice([1, 2]), padding=c.choice(["valid", "same"]),
                  data_format=fmt, dilation_rate=dil, depth_multiplier=c.int(1, 2),
                  activation=c.choice([None, "relu"]), use_bias=c.bool())
    if separable:
        kwargs["filters"] = c.int(1, 3)
    return _case(c, kwargs, shape)


def _channel_axis(case, ndim):
    return (1 if case.kwargs["data_format"] == "channels_first" else ndim - 1,)


for _cls, _rank, _separable in ((L.DepthwiseConv2D, 2, False), (L.DepthwiseConv1D, 1, False),
                                (L.SeparableConv2D, 2, True), (L.SeparableConv1D, 1, True)):
    @layer_spec(_cls, (_separable_args if _separable else _depthwise_args)(_rank), fixed_ndim=True,
                fixed_axes=_channel_axis)
    def make_depthwise(c, _rank=_rank, _separable=_separable):
        return _depthwise_case(c, _rank, _separable)


# ----------------------------------------------------------------------------- running a layer

class Run:
    """One hostile variant of a case: constructor kwargs, the input, the call kwargs and a grad
    maker (y -> grad), all rebuilt for each backend."""

    def __init__(self, case, kwargs=None, x=None, states="base", grad=None):
        self.case = case
        self.kwargs = case.kwargs if kwargs is None else kwargs
        self.x = x or (lambda: _x(case))
        self.states = states
        self.grad = grad or (lambda y: grad_like(y, case))


def grad_like(y, case):
    rng = np.random.default_rng(case.seed + 7)
    if isinstance(y, (list, tuple)):
        return [np.asarray(rng.standard_normal(np.shape(a)), dtype=case.dtype) for a in y]
    return np.asarray(rng.standard_normal(np.shape(y)), dtype=case.dtype)


def _states(case, which):
    if which is None or case.states is None:
        return None
    if which != "base":
        return which()
    rng = np.random.default_rng(case.seed + 3)
    return [np.asarray(rng.standard_normal(s), dtype=case.dtype) for s in case.states]


def _mask_for(x, case):
    """A recurrent case's call mask for input x (whatever form x takes): (N, T) booleans from the
    case's seed, or None when x has no (N, T, D) shape."""
    try:
        shape = np.shape(x)
    except Exception:  # noqa: BLE001 - a hostile input without a shape
        return None
    if len(shape) != 3 or shape[0] * shape[1] > 1 << 20:   # (a huge view: refused before any mask matters)
        return None
    return np.random.default_rng(case.seed + 5).random(shape[:2]) > case.mask_p


def _set_weights(layer, seed):
    rng = np.random.default_rng(seed + 11)
    for v in layer.weights:
        value = rng.standard_normal(v.shape) * 0.5
        if "variance" in v.name:
            value = np.abs(value) + 0.5
        v.assign(value)


def _copy(v):
    if isinstance(v, (list, tuple)):
        return [_copy(a) for a in v]
    return None if v is None else np.array(v, copy=True)


def run_layer(spec, run, backend):
    """Construct, build on the valid input, set weights, call on run's input, backpropagate.
    Returns an Outcome; an error carries the phase it happened in (exc.fuzz_phase)."""
    case = run.case
    phase = "construct"
    with K.use_backend(backend), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            layer = spec.cls(**_fresh_kwargs(run.kwargs, case.dtype))
            if spec.wrap is not None:
                layer = spec.wrap(layer)
            phase = "build"
            layer(_x(case), training=False)
            _set_weights(layer, case.seed)
            phase = "call"
            extra = {}
            states = _states(case, run.states)
            if states is not None:
                extra["initial_state"] = states
            x = run.x()
            if getattr(case, "mask_p", None) is not None:
                extra["mask"] = _mask_for(x, case)
            y = layer(x, training=case.training, **extra)
            y_copy = _copy(y)
            phase = "backward"
            dx = layer.backward(run.grad(y))
            state_grads = None
            if states is not None:   # a call given initial states gets one gradient per input
                dx, state_grads = dx[0], _copy(dx[1:])
            grads = [_copy(v.grad) for v in layer.trainable_weights]
            after = [_copy(v.value) for v in layer.weights]
        except BaseException as exc:  # noqa: BLE001 - judged by the caller (MemoryError is a failure)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            exc.fuzz_phase = phase
            return fz.Outcome(exc=exc)
    return fz.Outcome(value=(y_copy, _copy(dx), grads, after, state_grads))


def run_both(spec, run):
    return {b: run_layer(spec, run, b) for b in fz.BACKENDS}


def judge(expect, outcomes, names, phases, base=None, exc_type=(ValueError, TypeError), lenient=False, what=""):
    """Check the outcomes of a hostile variant: RAISE (an error of exc_type in one of `phases`,
    naming one of `names`, on every backend), SAME (the base results), OK (success), EITHER."""
    failed = {b: o for b, o in outcomes.items() if not o.ok}
    if expect == RAISE or failed:
        assert expect not in (SAME, OK), f"{what}: refused: " + "; ".join(
            f"{b} ({o.exc.fuzz_phase}) {type(o.exc).__name__}: {o.exc}" for b, o in failed.items())
        kinds = set()
        for b, o in outcomes.items():
            assert not o.ok, f"{what}: accepted on {b} but refused on {list(failed)}"
            exc = o.exc
            assert isinstance(exc, exc_type), f"{what}: {b} raised {type(exc).__name__} in {exc.fuzz_phase}: {exc}"
            assert exc.fuzz_phase in phases, f"{what}: {b} raised in {exc.fuzz_phase}, expected {phases}: {exc}"
            assert any(fz.names(exc, n) for n in names), f"{what}: {b}'s message names none of {names}: {exc}"
            kinds.add(type(exc))
        assert len(kinds) == 1, f"{what}: backends raised different errors {outcomes}"
        return
    first = outcomes[fz.BACKENDS[0]]
    for b, o in outcomes.items():
        fz.assert_close(o.value, first.value, f"{what}: {b} vs {fz.BACKENDS[0]}", lenient)
        if expect == SAME and base is not None:
            fz.assert_close(o.value, base[b].value, f"{what}: {b} vs the plain call", lenient)


def check_base(spec, case):
    outcomes = run_both(spec, Run(case))
    judge(OK, outcomes, (), (), what=f"{spec.cls.__name__}{case.kwargs} on {case.shapes or case.shape} (valid case)")
    return outcomes


# ----------------------------------------------------------------------------- mutations

def ctor_mutations(spec):
    """name -> (argument, value, expectation): every bad and valid alternative constructor value."""
    muts = {}
    table = dict(BASE_ARGS, **spec.args)
    for arg, (bad, ok) in table.items():
        for i, v in enumerate(bad):
            muts[f"{arg}:bad[{i}]={fz.short(v)}"] = (arg, v, RAISE)
        for i, v in enumerate(ok):
            muts[f"{arg}:ok[{i}]={fz.short(v)}"] = (arg, v, EITHER)
    muts["unknown_keyword"] = ("no_such_argument", 1, RAISE)
    return muts


def check_ctor(spec, case, base, label, mutation):
    arg, value, expect = mutation
    kwargs = dict(case.kwargs)
    kwargs[arg] = value
    outcomes = run_both(spec, Run(case, kwargs=kwargs))
    what = f"{spec.cls.__name__}({arg}={fz.short(value)}) [{label}]"
    if expect == RAISE:
        judge(RAISE, outcomes, (arg,), ("construct",), what=what)
    else:
        judge(EITHER, outcomes, (arg,) + spec.input_names, ("build", "call", "backward"), what=what)


SHAPE_RULE = "shape rule"  # (expectation of a reshaped input of a list: see merge_input_mutations)


def _array_mutations(target, fixed_ndim, min_ndim, fixed_axes, index, states=False, batch_fixed=False):
    """Mutations of an array (the input, or the grad): name -> prepare(chooser) -> transform
    (array -> (array, expectation, exception types, lenient)). target "list_item": one input of a
    multi-input layer, whose reshapes are judged on the whole list (SHAPE_RULE)."""
    muts = {}

    def fixed(fn, expect, exc=None, lenient=False):
        return lambda c: (lambda a: (fn(a), expect, exc, lenient))

    for dname, conv in fz.BAD_DTYPES.items():
        muts[f"dtype={dname}"] = fixed(conv, RAISE, TypeError)
    for t in fz.REAL_DTYPES:
        muts[f"dtype={np.dtype(t).name}"] = fixed(lambda a, t=t: fz.cast(a, t), OK)
    for lname, fn in fz.LAYOUTS.items():
        muts[f"layout={lname}"] = lambda c, fn=fn: (lambda a, seed=c.int(0, 3): (fn(a, fz.RandomChooser(seed)), SAME,
                                                                                  None, False))
    muts["list"] = fixed(fz.as_list, SAME)
    muts["ragged"] = fixed(lambda a: fz.ragged(), RAISE)
    muts["none"] = fixed(lambda a: None, RAISE)
    muts["python_scalar"] = fixed(lambda a: 0.5, RAISE)
    muts["huge_broadcast"] = fixed(fz.broadcast_huge, RAISE)

    def ndim_expect(new):
        if target == "grad" or new.ndim < min_ndim or fixed_ndim:
            return RAISE
        return EITHER

    def axis_edit(edit):
        def prepare(c):
            pick = c.int(0, 7)

            def apply(a):
                new, axis = edit(a, pick)
                if new is None:
                    return a, SAME, None, False
                if target == "list_item":
                    return new, SHAPE_RULE, None, False
                if target != "inputs":  # a grad or an initial state has one right shape
                    return new, RAISE, None, False
                if axis == 0:  # the batch axis (which the initial states of a recurrent case fix)
                    return new, (OK if new.shape[0] and not batch_fixed else EITHER), None, False
                if axis is None:
                    return new, ndim_expect(new), None, False
                return new, (RAISE if axis in fixed_axes(a.ndim) and new.shape[axis] else EITHER), None, False
            return apply
        return prepare

    def add_axis(a, pick):
        return np.expand_dims(a, 1 + pick % a.ndim), None

    def drop_axis(a, pick):
        if a.ndim < 2:
            return None, None
        return np.take(a, 0, axis=1 + pick % (a.ndim - 1)), None

    def grow(a, pick):
        ax = pick % a.ndim
        return np.concatenate([a, a.take([0], axis=ax)], axis=ax), ax

    def shrink(a, pick):
        axes = [i for i in range(a.ndim) if a.shape[i] >= 2]
        if not axes:
            return None, None
        ax = axes[pick % len(axes)]
        return np.delete(a, -1, axis=ax), ax

    def zero(a, pick):
        ax = pick % a.ndim
        return np.take(a, [], axis=ax), ax

    if not states:
        muts["add_axis"] = axis_edit(add_axis)
        muts["drop_axis"] = axis_edit(drop_axis)
    muts["grow_axis"] = axis_edit(grow)
    muts["shrink_axis"] = axis_edit(shrink)
    muts["zero_axis"] = axis_edit(zero)

    if index:
        def prepare(c):
            bad = c.choice([-1, "dim", 2 ** 40, 0.5, NAN])

            def apply(a):
                new = np.array(a, copy=True, dtype=np.float64 if isinstance(bad, float) else np.int64)
                new.reshape(-1)[0] = index if bad == "dim" else bad
                return new, RAISE, ValueError, False
            return apply
        muts["bad_index"] = prepare
    else:
        def prepare(c):
            picks = [(c.int(0, 10 ** 6), c.choice(fz.SPECIAL_VALUES)) for _ in range(c.int(1, 3))]

            def apply(a):
                new = np.array(a, copy=True)
                flat = new.reshape(-1)
                for i, v in picks:
                    flat[i % flat.size] = v
                return new, EITHER, None, True
            return apply
        muts["special_values"] = prepare
    return muts


def input_mutations(spec, case):
    if spec.multi_input:
        return merge_input_mutations(spec, case)
    fixed_axes = lambda ndim: spec.fixed_axes(case, ndim)  # noqa: E731
    return _array_mutations("inputs", spec.fixed_ndim, spec.min_ndim, fixed_axes,
                            case.index_dim if spec.index_input else None, batch_fixed=case.states is not None)


def merge_input_mutations(spec, case):
    """Mutations of the list of inputs of a multi-input layer: every array mutation applied to one
    input of the list (a reshape judged by spec.shapes_ok on the whole list), and mutations of the
    list itself (container, count, batch sizes). Transforms map the list of inputs as _x makes it."""
    def rule(xs):
        return OK if spec.shapes_ok(case, [np.shape(x) for x in xs]) else RAISE

    def on_one(prepare_one):
        def prepare(c):
            transform = prepare_one(c)
            k = c.int(0, len(case.shapes) - 1)

            def apply(xs):
                xs = list(xs)
                xs[k], expect, exc, lenient = transform(xs[k])
                if expect == SHAPE_RULE:
                    expect = rule(xs)
                elif expect == EITHER:
                    # (NaN, inf, huge and denormal values) the merge layers are NumPy code, the same on
                    # both backends: they take any real value and agree exactly
                    expect, lenient = OK, False
                return xs, expect, exc, lenient
            return apply
        return prepare

    muts = {f"item:{k}": on_one(v) for k, v in _array_mutations("list_item", False, 1, None, None).items()}

    def fixed(fn, expect=None, exc=None):  # expect None: by the shape rule
        return lambda c: (lambda xs: (lambda new: (new, expect or rule(new), exc, False))(fn(xs)))

    def batch(xs, size):
        return [np.resize(x, (size,) + x.shape[1:]) for x in xs]

    def generator(xs):
        yield from xs

    muts["list:empty"] = fixed(lambda xs: [], RAISE, TypeError)
    muts["list:bare_array"] = fixed(lambda xs: xs[0], RAISE, TypeError)
    muts["list:dict"] = fixed(lambda xs: {f"x{i}": x for i, x in enumerate(xs)}, RAISE, TypeError)
    muts["list:generator"] = fixed(generator, RAISE, TypeError)
    muts["list:none"] = fixed(lambda xs: None, RAISE, TypeError)
    muts["list:tuple"] = fixed(tuple, SAME)
    muts["list:nested_lists"] = fixed(lambda xs: [x.tolist() for x in xs], SAME)
    muts["list:drop_last"] = fixed(lambda xs: xs[:-1])   # (one input: an empty list)
    muts["list:append_copy"] = fixed(lambda xs: xs + [np.array(xs[0], copy=True)])
    muts["list:reversed"] = fixed(lambda xs: xs[::-1])
    muts["list:300_inputs"] = fixed(lambda xs: [np.asarray(np.random.default_rng(i).standard_normal(xs[0].shape),
                                                           dtype=xs[0].dtype) for i in range(300)])
    # the same array object as every input: the backends must agree (what backward returns for aliased
    # inputs is the tape's business, not compared here)
    muts["list:same_array"] = fixed(lambda xs: [xs[0]] * len(xs))
    muts["list:empty_batch"] = fixed(lambda xs: batch(xs, 0))
    muts["list:other_batch"] = fixed(lambda xs: batch(xs, xs[0].shape[0] + 2))
    muts["list:first_batch_differs"] = fixed(lambda xs: batch(xs[:1], xs[0].shape[0] + 1) + xs[1:])
    muts["list:last_batch_empty"] = fixed(lambda xs: xs[:-1] + batch(xs[-1:], 0))
    return muts


def grad_mutations(spec, case):
    muts = {f"grad:{k}": v for k, v in _array_mutations("grad", True, 1, lambda n: (), None).items()}
    muts["grad:wrong_container"] = lambda c: "wrong_container"
    return muts


def state_mutations(spec, case):
    muts = {f"state:{k}": v for k, v in _array_mutations("initial_state", True, 2, lambda n: (0, 1), None,
                                                         states=True).items()}
    muts["state:count"] = lambda c: "count"
    return muts


def check_input(spec, case, base, label, prepare, c):
    transform = prepare(c)
    done = {}

    def x():
        new, expect, exc, lenient = transform(_x(case))
        done["expect"] = (expect, exc, lenient)
        return new
    outcomes = {}
    for b in fz.BACKENDS:
        outcomes[b] = run_layer(spec, Run(case, x=x), b)
    expect, exc, lenient = done["expect"]
    judge(expect, outcomes, spec.input_names, ("call", "backward"), base, exc or (ValueError, TypeError),
          lenient and spec.lenient or lenient and expect == OK, what=f"{spec.cls.__name__} inputs: {label}")


def check_grad(spec, case, base, label, prepare, c):
    transform = prepare(c)
    done = {}

    def grad(y):
        g = grad_like(y, case)
        if transform == "wrong_container":
            done["expect"] = (RAISE, None, False)
            return g[0] if isinstance(g, list) else [g, g]
        if isinstance(g, list):
            i = len(g) - 1
            g[i], *done["expect"] = transform(g[i])
            return g
        g, *rest = transform(g)
        done["expect"] = tuple(rest)
        return g
    outcomes = {b: run_layer(spec, Run(case, grad=grad), b) for b in fz.BACKENDS}
    if "expect" not in done:  # the forward pass failed: a bug in the valid case itself
        raise AssertionError(f"forward failed: {outcomes}")
    expect, exc, lenient = done["expect"]
    judge(expect, outcomes, ("grad",), ("backward",), base, exc or (ValueError, TypeError),
          lenient and (spec.lenient or expect == OK), what=f"{spec.cls.__name__} grad: {label}")


def check_states(spec, case, base, label, prepare, c):
    if case.states is None:
        case = types.SimpleNamespace(**vars(case))
        case.states = [(case.shape[0], case.kwargs["units"])] * (2 if spec.cls is L.LSTM else 1)
        base = None
    transform = prepare(c)
    done = {}

    def states():
        s = _states(case, "base")
        if transform == "count":
            done["expect"] = (RAISE, None, False)
            return s + s
        s[-1], *rest = transform(s[-1])
        done["expect"] = tuple(rest)
        return s
    outcomes = {b: run_layer(spec, Run(case, states=states), b) for b in fz.BACKENDS}
    expect, exc, lenient = done["expect"]
    if expect == SAME and base is None:
        expect = OK
    judge(expect, outcomes, ("initial_state",), ("call",), base, exc or (ValueError, TypeError),
          lenient and spec.lenient, what=f"{spec.cls.__name__} initial_state: {label}")


def all_mutations(spec, case):
    """kind -> {label: mutation} for this case."""
    kinds = {"ctor": ctor_mutations(spec), "inputs": input_mutations(spec, case), "grad": grad_mutations(spec, case)}
    if issubclass(spec.cls, _RNN):
        kinds["state"] = state_mutations(spec, case)
    return kinds


def check_one(spec, case, base, kind, label, mutation, c):
    if kind == "ctor":
        check_ctor(spec, case, base, label, mutation)
    elif kind == "inputs":
        check_input(spec, case, base, label, mutation, c)
    elif kind == "grad":
        check_grad(spec, case, base, label, mutation, c)
    else:
        check_states(spec, case, base, label, mutation, c)


# ----------------------------------------------------------------------------- the tests

def _init_params(cls):
    return [p for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


def test_every_layer_is_fuzzed():
    """Every layer class of cynet.layers has a fuzz spec (or, for the layers whose inputs are
    strings or arbitrary integers, a TOKEN_SPECS entry: see test_token_layers_*), and every
    constructor argument it takes (its own and those of the base classes whose __init__ it
    reaches) a fuzz table."""
    classes = {v for v in vars(L).values() if isinstance(v, type) and issubclass(v, Layer) and v is not Layer}
    assert {c.__name__ for c in classes} == set(SPECS) | set(TOKEN_SPECS), \
        f"layers without a fuzz spec: {sorted({c.__name__ for c in classes} - set(SPECS) - set(TOKEN_SPECS))}"
    assert not set(SPECS) & set(TOKEN_SPECS)
    for name, spec in list(SPECS.items()) + list(TOKEN_SPECS.items()):
        table = dict(BASE_ARGS, **spec.args)
        wanted = set()
        for klass in spec.cls.__mro__:
            if klass is object or klass in spec.unreached or "__init__" not in vars(klass):
                continue
            wanted |= {p.name for p in _init_params(klass)}
        assert wanted <= set(table), f"{name}: constructor arguments without a fuzz table: {wanted - set(table)}"
        assert set(spec.args) <= wanted, f"{name}: fuzz tables for no constructor argument: {set(spec.args) - wanted}"


LAYER_NAMES = sorted(SPECS)


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_sweep_every_hostile_argument(name):
    """Every hostile constructor value, input, grad (and initial state) on one fixed valid case."""
    spec = SPECS[name]
    case = spec.make(fz.RandomChooser(0))
    base = check_base(spec, case)
    for kind, muts in all_mutations(spec, case).items():
        for label, mutation in muts.items():
            check_one(spec, case, base, kind, label, mutation, fz.RandomChooser(zlib.crc32(label.encode())))


@pytest.mark.parametrize("name", LAYER_NAMES)
@given(data=st.data())
def test_random_valid_cases_match_twin(name, data):
    spec = SPECS[name]
    check_base(spec, spec.make(fz.DrawChooser(data)))


@pytest.mark.parametrize("name", LAYER_NAMES)
@given(data=st.data())
def test_random_hostile_case(name, data):
    spec = SPECS[name]
    c = fz.DrawChooser(data)
    case = spec.make(c)
    base = check_base(spec, case)
    kinds = all_mutations(spec, case)
    kind = c.choice(sorted(kinds))
    label = c.choice(sorted(kinds[kind]))
    check_one(spec, case, base, kind, label, kinds[kind][label], c)


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_backward_before_call(name):
    """backward() on a layer that was never called is a clear RuntimeError, not an AttributeError."""
    spec = SPECS[name]
    case = spec.make(fz.RandomChooser(1))
    layer = spec.cls(**case.kwargs)
    with pytest.raises(RuntimeError, match="forward call first"):
        layer.backward(np.zeros((1, 1)))


def test_weight_too_big_for_memory_is_refused_at_build():
    """Weights asking for terabytes are refused (ValueError naming the weight) before any allocation."""
    layer = L.Dense(2 ** 30, dtype="float32")
    with pytest.raises(ValueError, match="kernel"):
        layer(np.zeros((1, 2 ** 12), np.float32))
    layer = L.Embedding(2 ** 30, 2 ** 12)
    with pytest.raises(ValueError, match="embeddings"):
        layer(np.zeros((1, 1), np.int64))


@pytest.mark.parametrize("make", [L.Add, L.Multiply, L.Maximum, lambda: L.Dot(axes=(2, 1))],
                         ids=["Add", "Multiply", "Maximum", "Dot"])
def test_merge_output_too_big_for_memory_is_refused(make):
    """Inputs of a few bytes (broadcast views) whose merged output, (1, 2**24, 2**24), would take a
    PiB: refused with a ValueError naming the inputs, as a weight or an input too big for memory is
    (the PiB is beyond any address space, so the allocation fails at once, never swaps)."""
    a = np.broadcast_to(np.ones((), np.float32), (1, 2 ** 24, 1))
    b = np.broadcast_to(np.ones((), np.float32), (1, 1, 2 ** 24))
    with pytest.raises(ValueError, match="inputs"):
        make()([a, b])


# ----------------------------------------------------------------------------- token layers (opt-out)
# The harness above builds float (or index) inputs and compares the compiled and NumPy backends.
# Layers whose inputs are strings or arbitrary integers (any integer is a valid token) and that
# have no kernels, hence no twins, opt out of it here: each has a valid case and constructor
# tables like SPECS', and test_token_layers_* check that every bad constructor value is refused
# naming its argument, every valid alternative works or is refused naming the argument or
# `inputs`, and hostile inputs give a result or a ValueError / TypeError naming `inputs`.

class TokenSpec:
    def __init__(self, cls, kwargs, x, args):
        self.cls, self.kwargs, self.x, self.args = cls, kwargs, x, dict(args)
        self.unreached = ()


_STRINGS = np.array([["the cat", "a dog"], ["cat", ""], ["zz top", "the"]])
_TOKENS_BAD = [0, -1, True, 2.5, "3", 2 ** 31, [3], 1j]
TOKEN_SPECS = {
    "StringLookup": TokenSpec(L.StringLookup, dict(vocabulary=["cat", "the", "a dog"]), _STRINGS, {
        "max_tokens": ([1, -1, 1.5, "3", True], [None, 10]),
        "num_oov_indices": ([-1, 1.5, "1", None, True], [0, 1, 3]),
        "mask_token": ([3, 1.5, object()], [None, ""]),
        "oov_token": ([3, 1.5, object()], ["[UNK]", "?"]),
        "vocabulary": ([["a", "a"], [1, 2], [["a"]], []], [None, ["x"], np.array(["cat", "dog"])]),
        "idf_weights": ([[1.0], "a"], [None]),
        "invert": (FLAG_BAD, [False]),
        "output_mode": (["ints", "", None, 1], ["int", "one_hot", "count", "multi_hot"]),
        "pad_to_max_tokens": (FLAG_BAD + [True], [False]),
        "sparse": ([True, "yes", 1], [False]),
        "encoding": (["latin-1", 1, None], ["utf-8"]),
        "salt": ([], [None])}),
    "IntegerLookup": TokenSpec(L.IntegerLookup, dict(vocabulary=[3, 1000, -7]), np.array([[3, 5], [-7, 0]]), {
        "max_tokens": ([1, -1, 1.5, "3", True], [None, 10]),
        "num_oov_indices": ([-1, 1.5, "1", None, True], [0, 1, 3]),
        "mask_token": (["a", 1.5, object()], [None, 0]),
        "oov_token": (["a", 1.5, object()], [-1, 99]),
        "vocabulary": ([[1, 1], ["a"], [[1]], []], [None, [5], np.array([3, 4])]),
        "vocabulary_dtype": (["int32", "string", None], ["int64"]),
        "idf_weights": ([[1.0], "a"], [None]),
        "invert": (FLAG_BAD, [False, True]),
        "output_mode": (["ints", "", None, 1], ["int", "one_hot", "count", "multi_hot"]),
        "sparse": ([True, "yes", 1], [False]),
        "pad_to_max_tokens": (FLAG_BAD + [True], [False]),
        "oov_method": (["hash", None, 1], ["floormod", "farmhash"]),
        "salt": ([3, "a"], [None])}),
    "Hashing": TokenSpec(L.Hashing, dict(num_bins=4), _STRINGS, {
        "num_bins": (INT_BAD, [1, 7]),
        "mask_value": ([1.5, object(), [1]], [None, "", "cat", 0]),
        "salt": (["a", [1, 2, 3], -1, 1.5, 2 ** 64], [None, 7, [1, 2]]),
        "output_mode": (["tf_idf", "", None, 1], ["int", "one_hot", "multi_hot", "count"]),
        "sparse": ([True, "yes", 1], [False])}),
    "TextVectorization": TokenSpec(L.TextVectorization, dict(vocabulary=["cat", "the", "dog"]),
                                   np.array(["The cat!", "a dog", ""]), {
        "max_tokens": ([1, -1, 1.5, "3", True], [None, 10]),
        "standardize": (["upper", 1, ""], [None, "lower", "strip_punctuation", "lower_and_strip_punctuation"]),
        "split": (["comma", 1, ""], [None, "whitespace", "character"]),
        "ngrams": ([0, -1, "2", (1, "a"), 1.5], [None, 2, (1, 3)]),
        "output_mode": (["one_hot", "", None, 1], ["int", "multi_hot", "count"]),
        "output_sequence_length": ([0, -1, 1.5, "3"], [None, 1, 5]),
        "pad_to_max_tokens": (FLAG_BAD + [True], [False]),
        "vocabulary": ([["a", "a"], [1, 2], [["a"]], []], [None, ["x"]]),
        "idf_weights": ([[1.0], "a"], [None]),
        "sparse": ([True, "yes", 1], [False]),
        "ragged": ([True, "yes", 1], [False]),
        "encoding": (["latin-1", 1, None], ["utf-8"])}),
}

_TOKEN_INPUTS = {
    "none": None, "scalar": "cat", "python_float": 0.5, "complex": np.ones((2, 1), np.complex64),
    "datetime": np.zeros((2, 1), "datetime64[s]"), "ragged": [["a"], ["b", "c"]], "floats": np.full((2, 1), 0.5),
    "nan": np.full((2, 1), np.nan), "empty_batch": np.zeros((0, 1), dtype="<U3"), "object_ints": np.ones((2, 1), object),
    "huge": np.broadcast_to(np.array("a"), (2 ** 40, 1)), "bytes": np.array([[b"cat"], [b"the"]]),
    "ints": np.array([[1], [2]]), "bools": np.array([[True], [False]]),
}


def _run_token_layer(spec, kwargs, x):
    layer = spec.cls(**kwargs)
    y = layer(x)
    assert layer.backward(np.ones(np.shape(y)) if np.shape(y) else 1.0) is None   # no input gradient
    return y


@pytest.mark.parametrize("name", sorted(TOKEN_SPECS))
def test_token_layers_constructor_arguments(name):
    spec = TOKEN_SPECS[name]
    _run_token_layer(spec, spec.kwargs, spec.x)
    table = dict(BASE_ARGS, **spec.args)
    table.pop("dtype")   # (these layers also take Keras's int / string dtypes: checked in their tests)
    table.pop("input_shape"), table.pop("input_dim"), table.pop("batch_input_shape")
    for arg, (bad, ok) in table.items():
        for value in bad:
            with pytest.raises((ValueError, TypeError, NotImplementedError)) as err:
                spec.cls(**dict(spec.kwargs, **{arg: value}))
            assert fz.names(err.value, arg) or arg in ("vocabulary",) and "vocabulary" in str(err.value) \
                or "repeated" in str(err.value) or "empty" in str(err.value), f"{name}({arg}={value!r}): {err.value}"
        for value in ok:
            try:
                _run_token_layer(spec, dict(spec.kwargs, **{arg: value}), spec.x)
            except (ValueError, TypeError, RuntimeError) as exc:
                assert any(fz.names(exc, n) for n in (arg, "inputs", "vocabulary", "idf_weights", "max_tokens")), \
                    f"{name}({arg}={value!r}): {type(exc).__name__}: {exc}"
    with pytest.raises(TypeError, match="no_such_argument"):
        spec.cls(**spec.kwargs, no_such_argument=1)


@pytest.mark.parametrize("name", sorted(TOKEN_SPECS))
@pytest.mark.parametrize("label", sorted(_TOKEN_INPUTS))
def test_token_layers_hostile_inputs(name, label):
    spec = TOKEN_SPECS[name]
    try:
        y = _run_token_layer(spec, spec.kwargs, _TOKEN_INPUTS[label])
    except (ValueError, TypeError) as exc:
        assert fz.names(exc, "inputs"), f"{name} on {label}: {exc}"
    else:
        assert isinstance(y, np.ndarray) and y.shape[0] == np.shape(_TOKEN_INPUTS[label])[0]


@pytest.mark.parametrize("name", sorted(TOKEN_SPECS))
def test_token_layers_backward_before_call(name):
    spec = TOKEN_SPECS[name]
    with pytest.raises(RuntimeError, match="forward call first"):
        spec.cls(**spec.kwargs).backward(np.zeros((1, 1)))
