"""Mixed precision: cynet float32 against cynet mixed_bfloat16, PyTorch float32 and PyTorch
bfloat16 autocast (`torch.autocast("cpu", dtype=torch.bfloat16)`), one group per workload.

    pytest bench/test_mixed_precision.py --benchmark-only --threads 1 -k "not torch"
    pytest bench/test_mixed_precision.py --benchmark-only --threads 1 -k torch

(each framework in its own process, as the rest of the suite; bench/conftest.py). Workloads:
one epoch through `fit` (cynet) or the usual loop (PyTorch, Adam, cross-entropy) of the MLP
784-400x3-10 (N 10,000, batch 64) and the classic Keras MNIST convnet (cynet.examples.mnist_convnet:
conv 32 3x3, max pool, conv 64 3x3, max pool, dropout, dense 10; N 4,096, batch 128); the char
LSTM(256) epoch of bench/test_training.py (under the policy its recurrent step and whole-sequence
products run in bfloat16 too); and the kernels alone, forward + backward: a Dense 784->400 on a
batch of 128, the convnet's second convolution (batch 128, 13x13x32 -> 11x11x64, 3x3), its first
with its relu (batch 128, 28x28x1 -> 26x26x32, 3x3: K = 9, the input gradient included), the same
with the max pooling after it, as the first layers of a model (no input gradient; cynet runs the
pair as one kernel under mixed_bfloat16: Layer._fuse_next) and the
char LSTM's layer (LSTM(256) over 60 steps of 43 one-hot features, batch 25, return_sequences;
backward without the input gradient, as the first layer of the model). cynet.kernels.info()["bf16"]
in the machine info says which bfloat16 path cynet ran (native amx_bf16 / avx512_bf16 / emulated).
"""
import numpy as np
import pytest

import cynet
import cynet.kernels as K
from cynet import layers, mixed_precision
from cynet.examples import mnist_convnet

import test_training as T

N_CONV, BATCH_CONV = 4096, 128
DENSE = (128, 784, 400)            # batch, in, out
CONV = ((128, 13, 13, 32), 64, 3)  # x, filters, kernel size
CONV_FIRST = ((128, 28, 28, 1), 32, 3)   # the convnet's first convolution (one input channel), with its relu

GROUPS = {
    "mlp": f"mixed: epoch mlp 784-400x3-10 N{T.N_MNIST} batch {T.BATCH_MNIST}",
    "convnet": f"mixed: epoch mnist convnet N{N_CONV} batch {BATCH_CONV}",
    "char_lstm": f"mixed: epoch char lstm({T.UNITS}) T{T.STEPS} batch {T.BATCH_CHAR} x{T.BATCHES_CHAR}",
    "dense": f"mixed: dense fwd+bwd {DENSE[0]}x{DENSE[1]}->{DENSE[2]}",
    "conv": "mixed: conv2d fwd+bwd N128 13x13x32->64 3x3",
    "lstm": f"mixed: lstm({T.UNITS}) fwd+bwd T{T.STEPS} batch {T.BATCH_CHAR} features {T.VOCAB}",
    "conv_first": "mixed: conv2d+relu fwd+bwd N128 28x28x1->32 3x3",
    "conv_pool_first": "mixed: conv2d+relu+maxpool2x2 fwd+bwd N128 28x28x1->32 3x3, no input gradient",
}
POLICIES = ["float32", "mixed_bfloat16"]
EPOCHS = ("mlp", "convnet", "char_lstm")


@pytest.fixture
def policy(request):
    mixed_precision.set_global_policy(request.param)
    yield request.param
    mixed_precision.set_global_policy("float32")


def _data(workload):
    if workload != "convnet":
        return T._data(workload)
    rng = np.random.default_rng(0)
    return rng.random((N_CONV, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, N_CONV), BATCH_CONV


def _model(workload):
    return mnist_convnet.build_model() if workload == "convnet" else T._cynet_model(workload)


@pytest.mark.parametrize("policy", POLICIES, indirect=True)
@pytest.mark.parametrize("workload", EPOCHS)
def test_epoch(benchmark, policy, workload):
    x, y, batch = _data(workload)
    benchmark.group = GROUPS[workload]
    benchmark.extra_info["policy"] = policy
    benchmark.extra_info["bf16_path"] = K.info()["bf16"]
    model = _model(workload)
    assert model.layers[0].dtype_policy.name == policy
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = T._rounds(benchmark, lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0))
    assert np.isfinite(history.history["loss"][-1])


def _kernel_layer(workload):
    rng = np.random.default_rng(0)
    if workload == "lstm":
        x = np.eye(T.VOCAB, dtype=np.float32)[rng.integers(0, T.VOCAB, (T.BATCH_CHAR, T.STEPS))]
        return layers.LSTM(T.UNITS, return_sequences=True), x
    if workload == "dense":
        n, fin, fout = DENSE
        return layers.Dense(fout), rng.standard_normal((n, fin)).astype(np.float32)
    if workload in ("conv_first", "conv_pool_first"):
        shape, filters, k = CONV_FIRST
        conv = layers.Conv2D(filters, k, activation="relu")
        if workload == "conv_pool_first":   # (a Sequential model is a layer: one call, one backward)
            conv = cynet.Sequential([cynet.Input(shape[1:]), conv, layers.MaxPooling2D()])
        return conv, rng.random(shape, dtype=np.float32)
    shape, filters, k = CONV
    return layers.Conv2D(filters, k), rng.standard_normal(shape).astype(np.float32)


KERNELS = ["dense", "conv", "conv_first", "conv_pool_first", "lstm"]


@pytest.mark.parametrize("policy", POLICIES, indirect=True)
@pytest.mark.parametrize("workload", KERNELS)
def test_kernel(benchmark, policy, workload):
    layer, x = _kernel_layer(workload)
    benchmark.group = GROUPS[workload]
    benchmark.extra_info["policy"] = policy
    benchmark.extra_info["bf16_path"] = K.info()["bf16"]
    g = np.ones(layer(x).shape, np.float32)
    need_dx = workload not in ("lstm", "conv_pool_first")   # (first layers of their models: no input gradient)

    def step():
        layer(x, training=True)
        return layer.backward(g, input_gradient=need_dx)
    benchmark.pedantic(step, rounds=20, iterations=1, warmup_rounds=2)


# ----------------------------------------------------------------------------- PyTorch

def _torch_model(torch, workload):
    nn = torch.nn
    if workload == "convnet":
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(1600, 10))
    return T._torch_model(torch, workload)


def _autocast(torch, precision):
    import contextlib
    if precision == "bfloat16_autocast":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


TORCH_PRECISIONS = ["float32", "bfloat16_autocast"]


@pytest.mark.parametrize("precision", TORCH_PRECISIONS)
@pytest.mark.parametrize("workload", EPOCHS)
def test_epoch_torch(benchmark, torch, workload, precision):
    x, y, batch = _data(workload)
    benchmark.group = GROUPS[workload]
    benchmark.extra_info["precision"] = precision
    torch.manual_seed(0)
    model = _torch_model(torch, workload)
    epoch = T.torch_epoch(torch, model, x, y, batch, image=workload == "convnet",
                          context=lambda: _autocast(torch, precision))
    assert np.isfinite(T._rounds(benchmark, epoch))


@pytest.mark.parametrize("precision", TORCH_PRECISIONS)
@pytest.mark.parametrize("workload", KERNELS)
def test_kernel_torch(benchmark, torch, workload, precision):
    benchmark.group = GROUPS[workload]
    benchmark.extra_info["precision"] = precision
    layer, x = _kernel_layer(workload)
    if workload == "lstm":
        mod = torch.nn.LSTM(T.VOCAB, T.UNITS, batch_first=True)
        xt = torch.from_numpy(x)

        def step():
            with _autocast(torch, precision):
                y, _ = mod(xt)
            y.float().sum().backward()
        benchmark.pedantic(step, rounds=20, iterations=1, warmup_rounds=2)
        return
    if workload == "dense":
        mod = torch.nn.Linear(DENSE[1], DENSE[2])
        xt = torch.from_numpy(x).requires_grad_()
    else:
        shape, filters, k = CONV if workload == "conv" else CONV_FIRST
        mod = torch.nn.Conv2d(shape[3], filters, k).to(memory_format=torch.channels_last)
        if workload == "conv_first":
            mod = torch.nn.Sequential(mod, torch.nn.ReLU())
        elif workload == "conv_pool_first":
            mod = torch.nn.Sequential(mod, torch.nn.ReLU(), torch.nn.MaxPool2d(2))
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        xt.requires_grad_(workload != "conv_pool_first")

    def step():
        with _autocast(torch, precision):
            y = mod(xt)
        y.float().sum().backward()
    benchmark.pedantic(step, rounds=20, iterations=1, warmup_rounds=2)
