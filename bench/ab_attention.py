"""Interleaved A/B timing of the attention benchmarks, at 1 thread, in one process:

    PYTHONPATH=$PWD python bench/ab_attention.py [--repeats 4]

The workloads of bench/test_attention.py (shapes from kernel_cases/attention.py), each timed as
the best of a few calls by CPU time (time.process_time: a loaded machine's waits do not count),
the implementations alternating within each repeat so that load drifts hit them alike
("cython, 3 projections" is MultiHeadAttention on distinct query, value and key arrays: its query,
key and value projections one product each, where self-attention packs them into one). The
pytest-benchmark groups (wall time, one implementation after the other) are the reference on a
quiet machine; this is the comparison to trust on a busy one. Needs PyTorch.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

import cynet
import cynet.kernels as K
from cynet import layers
from cynet.kernels._backend import array_cache

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_cases import attention as cases  # noqa: E402


def best_cpu_ms(fn, calls=5):
    fn()
    best = float("inf")
    for _ in range(calls):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best * 1e3


def softmax_workloads(rng):
    shape = next(iter(cases.BENCH.values()))
    scores, mask = cases.arguments(rng, np.float32, shape, mask_shape=(shape[0], 1, 1, shape[3]), keep=0.9)
    dp = cases.normal_like(rng, scores)
    st, dpt, masked = torch.from_numpy(scores), torch.from_numpy(dp), torch.from_numpy(~mask)

    def cy(backend, *args):
        def run():
            with K.use_backend(backend):
                return cases.forward_backward(scores, dp, *args)
        return run

    def torch_plain():
        s = st.detach().requires_grad_()
        return torch.autograd.grad(torch.softmax(s, -1), s, dpt)

    def torch_masked():
        s = st.detach().requires_grad_()
        return torch.autograd.grad(torch.softmax((s * 0.125).masked_fill(masked, -1e9), -1), s, dpt)

    return {"softmax fwd+bwd": {"cython": cy("cython"), "numpy": cy("numpy"), "torch": torch_plain},
            "softmax scaled+masked fwd+bwd": {"cython": cy("cython", mask, 0.125), "numpy": cy("numpy", mask, 0.125),
                                              "torch": torch_masked}}


def mha_workloads(rng):
    shape, heads = next(iter(cases.MHA_BENCH.values()))
    x = cases.normal(rng, shape, np.float32)
    g = cases.normal_like(rng, x)
    d, (n, t) = shape[-1], shape[:2]
    mha = layers.MultiHeadAttention(num_heads=heads, key_dim=d // heads)
    mha(x, x)

    def cy():
        mha(x, x)
        return mha.backward(g)

    xv, xk = x.copy(), x.copy()

    def cy_separate():   # the same attention with query, value and key distinct arrays: three projections
        mha(x, xv, key=xk)
        return mha.backward(g)

    torch.manual_seed(0)
    module = torch.nn.MultiheadAttention(d, heads, batch_first=True)
    mparams = list(module.parameters())
    proj = [torch.nn.Linear(d, d) for _ in range(4)]
    pparams = [p for lin in proj for p in lin.parameters()]
    xt, gt = torch.from_numpy(x), torch.from_numpy(g)

    def torch_module():
        xx = xt.detach().requires_grad_()
        y, _ = module(xx, xx, xx, need_weights=False)
        return torch.autograd.grad(y, [xx] + mparams, gt)

    def split(a):
        return a.view(n, t, heads, d // heads).transpose(1, 2)

    def torch_sdpa():
        xx = xt.detach().requires_grad_()
        q, k, v = (split(lin(xx)) for lin in proj[:3])
        o = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return torch.autograd.grad(proj[3](o.transpose(1, 2).reshape(n, t, d)), [xx] + pparams, gt)

    return {"MultiHeadAttention fwd+bwd": {"cython": cy, "cython, 3 projections": cy_separate,
                                           "torch MultiheadAttention": torch_module,
                                           "torch Linear+sdpa": torch_sdpa}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    cynet.set_num_threads(1)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    groups = {**softmax_workloads(rng), **mha_workloads(rng)}
    with array_cache():
        for group, impls in groups.items():
            times = {name: [] for name in impls}
            for _ in range(args.repeats):
                for name, fn in impls.items():
                    times[name].append(best_cpu_ms(fn, 3 if "MultiHead" in group else 5))
            ref = min(v for k, v in times.items() if k.startswith("torch") for v in [min(v)])
            print(f"{group} (ms, CPU time, best of each repeat; ratio to the fastest torch):")
            for name, ts in times.items():
                print(f"  {name:26s} {' '.join(f'{v:7.2f}' for v in ts)}   min {min(ts):7.2f}  "
                      f"x{min(ts) / ref:.2f}")


if __name__ == "__main__":
    main()
