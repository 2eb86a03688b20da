"""cynet.ops on the tape: what writing a layer with ops instead of using the built-in costs.

    pytest bench/test_ops.py --benchmark-only [--threads 1]

Group "ops dense mlp": one epoch of fit on an MLP 784-256-256-10 (ReLU, softmax) on 4,096 samples,
batch 64, Adam: once with the built-in Dense layers, once with the same layer written as a user
layer (`ops.relu(ops.matmul(x, kernel) + bias)`, no backward written). Issue 18's target: the ops
version at most 1.3x the built-in's time.

Group "op overhead": one recorded op on tiny arrays (ops.add of two (4, 4) float32 arrays inside a
GradientTape, then its backward), against the NumPy addition alone: the per-op Python cost of the
tape (the recorded op, its Tensor view and its vector-Jacobian product).
"""
import numpy as np
import pytest

import cynet
from cynet import layers, ops

N, BATCH, WIDTH = 4096, 64, 256


class OpsDense(layers.Layer):
    """Dense written with ops: the gradient comes from the tape."""

    def __init__(self, units, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.activation = units, activation

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, x):
        y = ops.matmul(x, self.kernel) + self.bias
        return ops.relu(y) if self.activation == "relu" else y


def _model(dense):
    return cynet.Sequential([cynet.Input((784,)), dense(WIDTH, activation="relu"), dense(WIDTH, activation="relu"),
                             layers.Dense(10, activation="softmax")])


@pytest.mark.parametrize("kind", ["builtin", "ops"])
def test_ops_dense_epoch(benchmark, kind):
    benchmark.group = f"ops dense mlp 784-{WIDTH}x2-10 N{N} batch {BATCH}"
    rng = np.random.default_rng(0)
    x, y = rng.random((N, 784), dtype=np.float32), rng.integers(0, 10, N)
    model = _model(layers.Dense if kind == "builtin" else OpsDense)
    model.compile("adam", "sparse_categorical_crossentropy")
    history = benchmark.pedantic(lambda: model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0),
                                 rounds=5, iterations=1, warmup_rounds=1)
    assert np.isfinite(history.history["loss"][-1])


def test_op_overhead_recorded(benchmark):
    benchmark.group = "op overhead: add (4, 4) + backward"
    a, b = np.ones((4, 4), np.float32), np.ones((4, 4), np.float32)

    def step():
        with cynet.GradientTape() as tape:
            y = ops.add(a, b)
        return tape.gradient(y, [a])
    assert benchmark(step)[0] is not None


def test_op_overhead_numpy(benchmark):
    benchmark.group = "op overhead: add (4, 4) + backward"
    a, b = np.ones((4, 4), np.float32), np.ones((4, 4), np.float32)
    benchmark(np.add, a, b)
