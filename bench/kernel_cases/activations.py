"""Cases of cynet.kernels.activations: the elementwise activations, softmax and the fused losses."""
import numpy as np

import cynet.kernels as K

from . import case, normal, thunks

ELEMENTWISE = ("relu", "sigmoid", "tanh", "leaky_relu", "elu")

# The benchmarks (float32): the elementwise activations' input, softmax's, and the logits
# (N, classes) of softmax_cross_entropy by benchmark id.
BENCH_SHAPE = (64, 32, 32, 64)
BENCH_SOFTMAX_SHAPE = (1500, 43)
BENCH_LOSS_SHAPES = {"512x10": (512, 10), "1500x43": (1500, 43)}
BENCH_LOGIT_SCALE = 3.0

# The leak check: a batch and a 0-d input; a large 1-D one. Non-default parameters where there are.
LEAK = (dict(shape=(16, 128)), dict(shape=()))
LEAK_LARGE = (dict(shape=(300_000,)),)
LEAK_PARAMETERS = {"leaky_relu": (0.1,), "elu": (0.5,)}


def backward_inputs(op, x, y):
    """What the backward of the elementwise activation `op` reads besides dy: y, or x (leaky_relu),
    or both (elu)."""
    return {"leaky_relu": (x,), "elu": (x, y)}.get(op, (y,))


def forward(op, x, *parameters):
    return getattr(K, f"{op}_forward")(x, *parameters)


def forward_backward(op, x, dy, *parameters):
    """dx of the elementwise activation `op` at x, after its forward."""
    y = forward(op, x, *parameters)
    return getattr(K, f"{op}_backward")(dy, *backward_inputs(op, x, y), *parameters)


def loss_arguments(rng, shape, dtype, labels="int", scale=1.0):
    """(logits, labels) of softmax_cross_entropy: normal logits of `shape` times `scale`, and a
    class over the last axis for every row, as integers ("int", "int32") or one-hot ("onehot")."""
    logits = normal(rng, shape, dtype, scale)
    index = rng.integers(0, shape[-1], shape[:-1])
    if labels == "onehot":
        return logits, np.eye(shape[-1], dtype=dtype)[index]
    return logits, index.astype(np.int32) if labels == "int32" else index


# ----------------------------------------------------------------------------- leak cases

def _elementwise_case(op):
    params = LEAK_PARAMETERS.get(op, ())
    fwd, bwd = getattr(K, f"{op}_forward"), getattr(K, f"{op}_backward")

    def factory(dt, rng, large):
        def bind(shape):
            x = normal(rng, shape, dt)
            dy, inputs = np.ones_like(x), backward_inputs(op, x, fwd(x, *params))
            return [lambda: fwd(x, *params), lambda: bwd(dy, *inputs, *params)]

        return thunks(bind, LEAK_LARGE if large else LEAK)
    return factory


for _op in ELEMENTWISE:
    case(f"{_op}_forward", f"{_op}_backward")(_elementwise_case(_op))


@case("softmax_cross_entropy")
def _softmax_cross_entropy(dt, rng, large):
    def bind(shape, labels):
        logits, target = loss_arguments(rng, shape, dt, labels)
        return [lambda: K.softmax_cross_entropy(logits, target)]

    if large:
        return thunks(bind, [dict(shape=(4096, 16), labels="int")])
    return thunks(bind, [dict(shape=(64, 10), labels="int"), dict(shape=(64, 10), labels="onehot"),
                         dict(shape=(4, 16, 10), labels="int32")])


@case("sigmoid_cross_entropy")
def _sigmoid_cross_entropy(dt, rng, large):
    def bind(shape, targets=dt):
        logits, labels = normal(rng, shape, dt), rng.random(shape) > 0.5
        labels = labels.astype(targets)
        return [lambda: K.sigmoid_cross_entropy(logits, labels)]

    if large:
        return thunks(bind, [dict(shape=(300_000,))])
    return thunks(bind, [dict(shape=(64, 8)), dict(shape=(4, 5, 3), targets=bool)])


@case("softmax_forward", "softmax_backward")
def _softmax(dt, rng, large):
    def bind(shape, axis=-1):
        x = normal(rng, shape, dt)
        y, dy = K.softmax_forward(x, axis=axis), np.ones(shape, dt)
        return [lambda: K.softmax_forward(x, axis=axis), lambda: K.softmax_backward(dy, y, axis=axis)]

    if large:
        return thunks(bind, [dict(shape=(4096, 16))])
    return thunks(bind, [dict(shape=(64, 10)), dict(shape=(4, 10, 6), axis=1)])
