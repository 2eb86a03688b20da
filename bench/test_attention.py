"""Attention benchmarks, float32, forward + backward.

Groups:
- "masked_softmax <shape> fwd+bwd": the fused softmax of (B, H, Tq, Tk) scores and its gradient,
  no mask, scale 1: cynet's Cython kernel, its NumPy twin, and PyTorch's softmax + autograd.
- "masked_softmax <shape> scaled+masked fwd+bwd": the same with the 1/sqrt(key_dim) scale and a
  key-padding mask (B, 1, 1, Tk) fused in; PyTorch's twin is what MultiHeadAttention does there:
  scale, masked_fill(-1e9), softmax, autograd through all three.
- "attention <shape> fwd+bwd": the fused dot-product attention kernel (attention_forward /
  attention_backward: q k^T, softmax, .v and the gradients of q, k, v) on the projections'
  (B, T, H, d) layout; PyTorch's F.scaled_dot_product_attention + autograd on (B, H, T, d) views.
- "mha <shape> fwd+bwd": MultiHeadAttention(num_heads=8, key_dim=32) self-attention on
  (32, 128, 256): the layer's call and backward (input and weight gradients; mha(x, x) runs the
  query, key and value projections as one product, forward and backward); PyTorch's
  nn.MultiheadAttention(256, 8, batch_first=True) and a twin made of Linear projections around
  F.scaled_dot_product_attention, each with autograd for the input and every weight.

Shapes: kernel_cases/attention.py (BENCH, HEADS_BENCH, MHA_BENCH).
"""
import numpy as np
import pytest

import cynet.kernels as K
from cynet import layers
from kernel_cases import attention as cases

SHAPES = cases.BENCH
MHA_SHAPES = cases.MHA_BENCH


@pytest.fixture(params=list(SHAPES), scope="module")
def case(request):
    rng = np.random.default_rng(0)
    shape = SHAPES[request.param]
    scores, mask = cases.arguments(rng, np.float32, shape, mask_shape=(shape[0], 1, 1, shape[3]), keep=0.9)
    return request.param, scores, cases.normal_like(rng, scores), mask


def test_masked_softmax_fwd_bwd(benchmark, backend, case):
    name, scores, dp, _ = case
    benchmark.group = f"masked_softmax {name} fwd+bwd"
    ds = benchmark(cases.forward_backward, scores, dp)
    assert ds.shape == scores.shape and ds.dtype == np.float32


def test_masked_softmax_fwd_bwd_torch(benchmark, torch, case):
    name, scores, dp, _ = case
    benchmark.group = f"masked_softmax {name} fwd+bwd"
    st, dpt = torch.from_numpy(scores), torch.from_numpy(dp)

    def step():
        s = st.detach().requires_grad_()
        return torch.autograd.grad(torch.softmax(s, -1), s, dpt)[0]

    assert benchmark(step).shape == st.shape


def test_masked_softmax_scaled_masked_fwd_bwd(benchmark, backend, case):
    name, scores, dp, mask = case
    benchmark.group = f"masked_softmax {name} scaled+masked fwd+bwd"
    ds = benchmark(cases.forward_backward, scores, dp, mask, 0.125)
    assert ds.shape == scores.shape


def test_masked_softmax_scaled_masked_fwd_bwd_torch(benchmark, torch, case):
    name, scores, dp, mask = case
    benchmark.group = f"masked_softmax {name} scaled+masked fwd+bwd"
    st, dpt, masked = torch.from_numpy(scores), torch.from_numpy(dp), torch.from_numpy(~mask)

    def step():
        s = st.detach().requires_grad_()
        p = torch.softmax((s * 0.125).masked_fill(masked, -1e9), -1)
        return torch.autograd.grad(p, s, dpt)[0]

    assert benchmark(step).shape == st.shape


# ----------------------------------------------------------------------------- the fused attention

@pytest.fixture(params=list(cases.HEADS_BENCH), scope="module")
def heads_case(request):
    rng = np.random.default_rng(2)
    q, k, v, _ = cases.heads_arguments(rng, np.float32, cases.HEADS_BENCH[request.param])
    return request.param, q, k, v, cases.normal_like(rng, q[..., :v.shape[3]])


def test_attention_fwd_bwd(benchmark, backend, heads_case):
    name, q, k, v, g = heads_case
    benchmark.group = f"attention {name} fwd+bwd"
    scale = 1.0 / np.sqrt(q.shape[3])

    def step():
        out, p = K.attention_forward(q, k, v, None, scale)
        return K.attention_backward(g, q, k, v, p, None, scale)

    dq, dk, dv = benchmark(step)
    assert dq.shape == q.shape and dv.dtype == np.float32


def test_attention_fwd_bwd_torch(benchmark, torch, heads_case):
    name, q, k, v, g = heads_case
    benchmark.group = f"attention {name} fwd+bwd"
    qt, kt, vt, gt = (torch.from_numpy(a).transpose(1, 2) for a in (q, k, v, g))   # (B, H, T, d) views

    def step():
        qq, kk, vv = (a.detach().requires_grad_() for a in (qt, kt, vt))
        out = torch.nn.functional.scaled_dot_product_attention(qq, kk, vv)
        return torch.autograd.grad(out, (qq, kk, vv), gt)

    assert benchmark(step)[0].shape == qt.shape


# ----------------------------------------------------------------------------- the layer

@pytest.fixture(params=list(MHA_SHAPES), scope="module")
def mha_case(request):
    rng = np.random.default_rng(1)
    shape, heads = MHA_SHAPES[request.param]
    x = cases.normal(rng, shape, np.float32)
    return request.param, x, cases.normal_like(rng, x), heads


def test_mha_fwd_bwd(benchmark, backend, mha_case):
    name, x, g, heads = mha_case
    benchmark.group = f"mha {name} fwd+bwd"
    mha = layers.MultiHeadAttention(num_heads=heads, key_dim=x.shape[-1] // heads)
    mha(x, x)

    def step():
        mha(x, x)
        return mha.backward(g)

    dx = benchmark(step)
    assert dx[0].shape == x.shape and all(w.grad is not None for w in mha.trainable_weights)


def test_mha_fwd_bwd_torch_module(benchmark, torch, mha_case):
    name, x, g, heads = mha_case
    benchmark.group = f"mha {name} fwd+bwd"
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(x.shape[-1], heads, batch_first=True)
    xt, gt = torch.from_numpy(x), torch.from_numpy(g)
    params = list(mha.parameters())

    def step():
        xx = xt.detach().requires_grad_()
        y, _ = mha(xx, xx, xx, need_weights=False)
        return torch.autograd.grad(y, [xx] + params, gt)

    assert benchmark(step)[0].shape == xt.shape


def test_mha_fwd_bwd_torch_sdpa(benchmark, torch, mha_case):
    """PyTorch twin of Keras's layer: four Linear projections around scaled_dot_product_attention."""
    name, x, g, heads = mha_case
    benchmark.group = f"mha {name} fwd+bwd"
    torch.manual_seed(0)
    d = x.shape[-1]
    proj = [torch.nn.Linear(d, d) for _ in range(4)]
    params = [p for lin in proj for p in lin.parameters()]
    xt, gt = torch.from_numpy(x), torch.from_numpy(g)
    n, t = x.shape[:2]

    def split(a):
        return a.view(n, t, heads, d // heads).transpose(1, 2)

    def step():
        xx = xt.detach().requires_grad_()
        q, k, v = (split(lin(xx)) for lin in proj[:3])
        o = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        y = proj[3](o.transpose(1, 2).reshape(n, t, d))
        return torch.autograd.grad(y, [xx] + params, gt)

    assert benchmark(step)[0].shape == xt.shape
