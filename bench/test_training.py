"""End-to-end training: one epoch through `model.fit(..., verbose=0)` (Python overhead per
batch counts), cynet on both backends and, when installed, the same model in PyTorch trained by
the usual loop (shuffle, zero_grad, backward, step). Float32, random data of the real shapes.

    pytest bench/test_training.py --benchmark-only [--threads 1]

Workloads: the MNIST MLP 784-400-400-400-10 (leaky ReLU, dropout 0.2) on 10,000 samples, batch
64; the small MNIST CNN of cynet.examples.mnist_cnn, same data; a character LSTM(256) +
Dense(43) on one-hot windows of 60 steps, batch 25, 100 batches, and the same with GRU(256) and
SimpleRNN(256) (PyTorch: nn.GRU, nn.RNN, whose equations are Keras's GRU with reset_after=True
and SimpleRNN's); and, to measure the per-batch
Python overhead of the engine (each layer call recorded on the tape, the reverse walk), a tiny MLP
of 20 Dense(8) layers on 4,096 samples of 8 features, batch 32 (128 steps whose arithmetic is
negligible); and the per-batch overhead of `fit` itself (data slicing, one layer's call and
backward, the loss, one optimizer step over two variables, the loss tracker, callbacks): one
Dense(4) on 8,192 samples of 8 features, batch 32 (256 steps; epoch time / 256 = the overhead
per batch). Adam everywhere.

The Keras twin (`-k keras`, Keras 3 on its PyTorch backend, in its own process like PyTorch's; its
name says torch, so `-k "not torch"` leaves it out of cynet's process):
the same cynet model written to a `.keras` file and loaded by Keras (so the architectures are
the same by construction), compiled as cynet's and trained by Keras's own `fit`, for the MLP, the
small CNN and the char LSTM.
"""
import contextlib

import numpy as np
import pytest

import cynet
from cynet import layers
import cynet.kernels as K
from cynet.examples import mnist_cnn, mnist_mlp

N_MNIST, BATCH_MNIST = 10_000, 64
VOCAB, STEPS, UNITS, BATCH_CHAR, BATCHES_CHAR = 43, 60, 256, 25, 100
N_TINY, BATCH_TINY, DEPTH_TINY = 4096, 32, 20
N_OVERHEAD = 8192

GROUPS = {
    "mlp": f"epoch mlp 784-400x3-10 N{N_MNIST} batch {BATCH_MNIST}",
    "cnn": f"epoch small cnn N{N_MNIST} batch {BATCH_MNIST}",
    "char_lstm": f"epoch char lstm({UNITS}) T{STEPS} batch {BATCH_CHAR} x{BATCHES_CHAR}",
    "char_gru": f"epoch char gru({UNITS}) T{STEPS} batch {BATCH_CHAR} x{BATCHES_CHAR}",
    "char_simple_rnn": f"epoch char simple_rnn({UNITS}) T{STEPS} batch {BATCH_CHAR} x{BATCHES_CHAR}",
    "tiny20": f"epoch tiny mlp 20x Dense(8) N{N_TINY} batch {BATCH_TINY}",
    "overhead": f"epoch one Dense(4) on 8 features N{N_OVERHEAD} batch {BATCH_TINY}",
}


def _data(workload):
    rng = np.random.default_rng(0)
    if workload.startswith("char_"):
        y = rng.integers(0, VOCAB, (BATCH_CHAR * BATCHES_CHAR, STEPS))
        x = np.eye(VOCAB, dtype=np.float32)[rng.integers(0, VOCAB, y.shape)]
        return x, y, BATCH_CHAR
    if workload == "tiny20":
        return rng.random((N_TINY, 8), dtype=np.float32), rng.integers(0, 4, N_TINY), BATCH_TINY
    if workload == "overhead":
        return rng.random((N_OVERHEAD, 8), dtype=np.float32), rng.integers(0, 4, N_OVERHEAD), BATCH_TINY
    x = rng.random((N_MNIST, 28, 28, 1), dtype=np.float32)
    if workload == "mlp":
        x = x.reshape(N_MNIST, 784)
    return x, rng.integers(0, 10, N_MNIST), BATCH_MNIST


def _cynet_model(workload):
    if workload == "mlp":
        return mnist_mlp.build_model()
    if workload == "cnn":
        return mnist_cnn.build_model()
    if workload == "tiny20":
        return cynet.Sequential([cynet.Input(shape=(8,))]
                                + [layers.Dense(8, activation="relu") for _ in range(DEPTH_TINY - 1)]
                                + [layers.Dense(4, activation="softmax")])
    if workload == "overhead":
        return cynet.Sequential([cynet.Input(shape=(8,)), layers.Dense(4, activation="softmax")])
    recurrent = {"char_lstm": layers.LSTM, "char_gru": layers.GRU, "char_simple_rnn": layers.SimpleRNN}[workload]
    return cynet.Sequential([cynet.Input(shape=(STEPS, VOCAB)), recurrent(UNITS, return_sequences=True),
                             layers.Dense(VOCAB, activation="softmax")])


def _rounds(benchmark, fn):
    """Five timed epochs after a warm-up one: on a VM whose speed drifts within a minute, the
    median of five is steadier than that of three (same rounds for every framework)."""
    return benchmark.pedantic(fn, rounds=5, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("workload", list(GROUPS))
def test_epoch(benchmark, backend, workload):
    x, y, batch = _data(workload)
    benchmark.group = GROUPS[workload]
    benchmark.extra_info["backend"] = backend
    model = _cynet_model(workload)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = _rounds(benchmark, lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0))
    assert np.isfinite(history.history["loss"][-1])


def _torch_model(torch, workload):
    nn = torch.nn
    leaky = lambda: nn.LeakyReLU(0.1)  # noqa: E731  (the examples' slope)
    if workload == "mlp":
        return nn.Sequential(nn.Linear(784, 400), leaky(), nn.Dropout(0.2), nn.Linear(400, 400), leaky(),
                             nn.Dropout(0.2), nn.Linear(400, 400), leaky(), nn.Dropout(0.2), nn.Linear(400, 10))
    if workload == "cnn":   # Keras "same" padding of these shapes is symmetric: 2 and 1
        return nn.Sequential(nn.Conv2d(1, 32, 6, stride=2, padding=2), leaky(), nn.AvgPool2d(2),
                             nn.Conv2d(32, 32, 3, stride=2, padding=1), leaky(), nn.AvgPool2d(2),
                             nn.Flatten(), nn.Linear(128, 100), leaky(), nn.BatchNorm1d(100), nn.Linear(100, 10))
    if workload == "tiny20":
        hidden = [m for _ in range(DEPTH_TINY - 1) for m in (nn.Linear(8, 8), nn.ReLU())]
        return nn.Sequential(*hidden, nn.Linear(8, 4))
    if workload == "overhead":
        return nn.Linear(8, 4)
    recurrent = {"char_lstm": nn.LSTM, "char_gru": nn.GRU, "char_simple_rnn": nn.RNN}[workload]

    class CharRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.dense = recurrent(VOCAB, UNITS, batch_first=True), nn.Linear(UNITS, VOCAB)

        def forward(self, x):
            return self.dense(self.rnn(x)[0]).reshape(-1, VOCAB)
    return CharRNN()


def torch_epoch(torch, model, x, y, batch, image, context=contextlib.nullcontext):
    """One epoch of the usual PyTorch loop (shuffle, zero_grad, forward under `context()`,
    backward, Adam step) over x, y, as a callable returning the last loss; image inputs
    (NHWC arrays) go in as channels_last NCHW, as oneDNN prefers."""
    xt = torch.from_numpy(x)
    if image:
        xt = xt.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        model = model.to(memory_format=torch.channels_last)
    yt = torch.from_numpy(y).reshape(len(y), -1).squeeze(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch():
        model.train()
        order = torch.randperm(len(xt))
        for start in range(0, len(xt), batch):
            idx = order[start:start + batch]
            optimizer.zero_grad()
            with context():
                loss = loss_fn(model(xt[idx]), yt[idx].reshape(-1))
            loss.backward()
            optimizer.step()
        return float(loss)
    return epoch


@pytest.mark.parametrize("workload", list(GROUPS))
def test_epoch_torch(benchmark, torch, workload):
    x, y, batch = _data(workload)
    benchmark.group = GROUPS[workload]
    torch.manual_seed(0)
    model = _torch_model(torch, workload)
    epoch = torch_epoch(torch, model, x, y, batch, image=workload == "cnn")
    assert np.isfinite(_rounds(benchmark, epoch))


KERAS_WORKLOADS = ("mlp", "cnn", "char_lstm")


@pytest.mark.parametrize("workload", KERAS_WORKLOADS)
def test_epoch_keras_torch_backend(benchmark, keras, workload, tmp_path):
    x, y, batch = _data(workload)
    benchmark.group = GROUPS[workload]
    benchmark.extra_info["backend"] = "keras"
    path = str(tmp_path / "model.keras")
    _cynet_model(workload).save(path)
    model = keras.models.load_model(path)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = _rounds(benchmark, lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0))
    assert np.isfinite(history.history["loss"][-1])
