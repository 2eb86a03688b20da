"""Recurrent kernels, NumPy twin of rnn.pyx: SimpleRNN, LSTM and GRU, whole-sequence forward
and backpropagation through time, with Keras 3 semantics and weight layouts.

Same names, signatures, layouts and results as the compiled module; it is the reference the
compiled kernels are tested against and the baseline the benchmarks measure.

Layout. Sequences are stored feature-major, (F, T, N) C-contiguous, so one timestep is a slab
of F rows of N samples (see rnn.pyx for why). Arguments arrive normalised by
cynet.kernels.rnn (one float dtype, C-contiguous, bias and initial states as arrays of zeros
when absent, activations as integer codes):

    x                 (D, T, N)   inputs, feature-major
    kernel            (D, k*U)    column blocks: SimpleRNN k=1; LSTM k=4, i|f|c|o; GRU k=3, z|r|h
    recurrent_kernel  (U, k*U)    same column blocks
    bias              SimpleRNN (U,), LSTM (4U,), GRU (2, 3U): row 0 input bias, row 1 recurrent
    h0, c0, dc_last   (U, N)      states, feature-major
    hs                (U, T, N)   every hidden state
    cs (LSTM)         (T, U, N)   every cell state, time-major (as rnn.pyx, whose step kernels
                                  read it one contiguous slab per step)
    gates (LSTM)      (T, 4U, N)  activated gates i|f|g|o of every step, time-major
    cache (GRU)       (T, 4U, N)  z | r | hh | rh of every step, rh = h_{t-1} U_h + b_rec_h, time-major
    dhs               (N, T, U)   gradient w.r.t. every hidden state, any strides
    recurrent_dropout_mask (k, U, N) or None: recurrent dropout, one scaled keep-mask per gate
                                  block (0 or 1 / (1 - rate)), multiplying h_{t-1} before that
                                  block's recurrent product at every step (Keras 3: one mask per
                                  gate, drawn once per call); the same array goes to backward

Activation codes: 0 linear, 1 tanh, 2 sigmoid, 3 relu, 4 hard_sigmoid (Keras 3:
clip(x / 6 + 0.5, 0, 1)). Every derivative is taken from the activation's output.

Algorithm (thinc's _lstm_forward_training), the same steps as rnn.pyx: one matmul for the
inputs of every timestep, then per step the recurrent matmul (out= buffer) and the gate
arithmetic as whole-array NumPy operations on that step's (k*U, N) slab; backward mirrors it
and finishes with one matmul each for dkernel, drecurrent_kernel and dx.
"""
import numpy as np

from .bf16_numpy import _round as _round_bf16

# The activation codes: the one Python definition (cynet.kernels.rnn maps the Keras names with
# it, rnn.pyx checks at import that cynet_rnn.h's C enum agrees).
ACTIVATIONS = {"linear": 0, "tanh": 1, "sigmoid": 2, "relu": 3, "hard_sigmoid": 4}
LINEAR, TANH, SIGMOID, RELU, HARD_SIGMOID = (ACTIVATIONS[k] for k in ("linear", "tanh", "sigmoid", "relu",
                                                                       "hard_sigmoid"))
N_ACTIVATIONS = len(ACTIVATIONS)

# The cap on exp's argument in the kernel's exp (cynet_simd.h: cynet_expf, cynet_expd)
_EXP_CAP = {np.dtype(np.float32): np.float32(88.3762626647949), np.dtype(np.float64): np.float64(709.08)}


def _check_act(name, code):
    if not 0 <= code < N_ACTIVATIONS:
        raise ValueError(f"{name} must be an activation code in [0, {N_ACTIVATIONS}); received {code}")


def _act(kind, x, out):
    """out = act(x) (out may be x)."""
    if kind == TANH:
        np.tanh(x, out=out)
    elif kind == SIGMOID:
        # sigmoid(x) = 1 / (1 + exp(-x)), the kernel's formula: full relative accuracy for x < 0
        # (sigmoid(-20) = 2.1e-9, where (1 + tanh(x / 2)) / 2 rounds to 0 in float32), with exp's
        # argument capped as the kernel caps it (at ~log of the largest finite value), so that
        # it never overflows and a saturated gate is the kernel's floor (4.2e-39 in float32)
        np.negative(x, out=out)
        np.minimum(out, _EXP_CAP[out.dtype], out=out)     # NaN stays NaN
        np.exp(out, out=out)
        out += 1
        np.reciprocal(out, out=out)
    elif kind == RELU:
        np.maximum(x, 0, out=out)
    elif kind == HARD_SIGMOID:
        np.divide(x, 6, out=out)
        out += 0.5
        np.clip(out, 0, 1, out=out)
    elif out is not x:
        out[...] = x


def _dact_mul(kind, y, d):
    """d *= act'(.) given the activation's output y."""
    if kind == TANH:
        t = y * y
        np.subtract(1, t, out=t)
        d *= t
    elif kind == SIGMOID:
        t = 1 - y
        t *= y
        d *= t
    elif kind == RELU:
        d *= y > 0
    elif kind == HARD_SIGMOID:
        d *= ((y > 0) & (y < 1)) * d.dtype.type(1 / 6)


def _sizes(x, kernel, recurrent_kernel, k):
    D, T, N = x.shape
    U = recurrent_kernel.shape[0]
    if N < 1 or T < 1 or D < 1:
        raise ValueError(f"x must have shape (D, T, N) with D, T, N >= 1; received shape {x.shape}")
    if U < 1 or recurrent_kernel.shape != (U, k * U):
        raise ValueError(f"recurrent_kernel must have shape (U, {k}U) with U >= 1; received shape "
                         f"{recurrent_kernel.shape}")
    if kernel.shape != (D, k * U):
        raise ValueError(f"kernel must have shape ({D}, {k * U}); received shape {kernel.shape}")
    return D, T, N, U


def _check_shape(name, a, shape):
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; received shape {a.shape}")


def _skipped(mask, T, N, t):
    """The samples whose step t is masked out (mask (T, N), 0 = skipped), or None."""
    if mask is None:
        return None
    if t is None:
        _check_shape("mask", mask, (T, N))
        return None
    skip = mask[t] == 0
    return skip if skip.any() else None


def _check_bf16(bf16, dtype):
    if bf16 >= 0 and np.dtype(dtype) != np.float32:
        raise ValueError(f"bf16 products need float32 arrays; received {np.dtype(dtype).itemsize * 8}-bit floats "
                         f"with bf16={bf16}")


def _check_rdrop(rdrop, k, U, N):
    if rdrop is not None:
        _check_shape("recurrent_dropout_mask", rdrop, (k, U, N))


def _q(a, bf16):
    """a as a product of the kernels sees it: unchanged (bf16 < 0), or rounded to bfloat16 (the
    mixed_bfloat16 products: every product's operands rounded, float32 sums; rnn.pyx's bf16)."""
    return a if bf16 < 0 else _round_bf16(a)


def _product_fwd(rkt, h_prev, rdrop, r, bf16=-1):
    """Step 1b, the recurrent matmul r = U^T h_{t-1}; with recurrent dropout, gate block j of r
    is U_j^T (h_{t-1} * rdrop[j]) (Keras 3: one mask per gate on the previous state)."""
    if rdrop is None:
        np.matmul(rkt, _q(h_prev, bf16), out=r)
        return
    U = h_prev.shape[0]
    for j in range(rdrop.shape[0]):
        np.matmul(rkt[j * U:(j + 1) * U], _q(h_prev * rdrop[j], bf16), out=r[j * U:(j + 1) * U])


def _product_bwd(recurrent_kernel, dg_rec, rdrop, dh, bf16=-1):
    """The gradient of h_{t-1} through the recurrent matmul, dh = U dg_t (dg_rec: the
    recurrent-side rows of dg_t); with recurrent dropout, the sum over the gates of
    rdrop[j] * (U_j dg_j)."""
    if rdrop is None:
        np.matmul(recurrent_kernel, _q(dg_rec, bf16), out=dh)
        return
    U = dh.shape[0]
    dh[...] = 0
    for j in range(rdrop.shape[0]):
        dh += rdrop[j] * np.matmul(recurrent_kernel[:, j * U:(j + 1) * U], _q(dg_rec[j * U:(j + 1) * U], bf16))


def _hprev(h0, hs):
    """h_{t-1} for every (t, n): h0 then hs shifted by one step, (U, T, N)."""
    hprev = np.empty_like(hs)
    hprev[:, 0] = h0
    hprev[:, 1:] = hs[:, :hs.shape[1] - 1]
    return hprev


def _drk(hprev, g_rec, rdrop, bf16=-1):
    """drecurrent_kernel = Hprev dG^T over all timesteps (g_rec: (kU, T*N) recurrent-side rows);
    with recurrent dropout, gate block j is (Hprev * rdrop[j]) dG_j^T."""
    U = hprev.shape[0]
    g_rec = _q(g_rec, bf16)
    if rdrop is None:
        return np.matmul(_q(hprev, bf16).reshape(U, -1), g_rec.T)
    return np.concatenate([np.matmul(_q(hprev * rdrop[j][:, None, :], bf16).reshape(U, -1), g_rec[j * U:(j + 1) * U].T)
                           for j in range(rdrop.shape[0])], axis=1)


def _weight_grads(dg, x, kernel, h0, hs, use_bias, compute_dx, rdrop=None, bf16=-1):
    """Step 4 of every backward: the weight and input gradients, one matmul each over all
    timesteps. dg: (kU, T, N) stacked pre-activation gradients. Returns (dx (D, T, N), dkernel,
    drecurrent_kernel, dbias|None); dx is None unless compute_dx."""
    D, T, N = x.shape
    U = hs.shape[0]
    kU = dg.shape[0]
    g2 = dg.reshape(kU, T * N)
    g2q = _q(g2, bf16)
    dkernel = np.matmul(_q(x, bf16).reshape(D, T * N), g2q.T)
    drk = _drk(_hprev(h0, hs), g2, rdrop, bf16)
    dx = np.matmul(_q(kernel, bf16), g2q).reshape(D, T, N) if compute_dx else None
    dbias = g2.sum(axis=1) if use_bias else None
    return dx, dkernel, drk, dbias


# ---------------------------------------------------------------------------------------------
# SimpleRNN

def simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, activation, mask=None, recurrent_dropout_mask=None,
                       bf16=-1):
    """SimpleRNN over a whole sequence: h_t = act(x_t W + h_{t-1} U + b).

    x: (D, T, N) IN; kernel (D, U), recurrent_kernel (U, U), bias (U,), h0 (U, N) IN,
    float32|float64, C-contiguous, one dtype. activation: code (module docstring).
    Returns hs: (U, T, N) OUT, every hidden state (feature-major).
    """
    D, T, N, U = _sizes(x, kernel, recurrent_kernel, 1)
    _check_shape("bias", bias, (U,))
    _check_shape("h0", h0, (U, N))
    _check_act("activation", activation)
    _skipped(mask, T, N, None)
    rdrop = recurrent_dropout_mask
    _check_rdrop(rdrop, 1, U, N)
    _check_bf16(bf16, x.dtype)
    rkt = _q(np.ascontiguousarray(recurrent_kernel.T), bf16)
    # step 1: input projection of every timestep, one matmul, straight into hs
    hs = np.empty((U, T, N), dtype=x.dtype)
    np.matmul(_q(kernel, bf16).T, _q(x, bf16).reshape(D, T * N), out=hs.reshape(U, T * N))
    r = np.empty((U, N), dtype=x.dtype)
    b = bias[:, None]
    h_prev = h0
    for t in range(T):
        # step 1b: recurrent matmul R = U^T h_{t-1}
        _product_fwd(rkt, h_prev, rdrop, r, bf16)
        # step 2: h_t = act(x W + R + b)
        h = hs[:, t]
        h += r
        h += b
        _act(activation, h, h)
        # a masked step keeps the state
        skip = _skipped(mask, T, N, t)
        if skip is not None:
            h[:, skip] = h_prev[:, skip]
        h_prev = h
    return hs


def simple_rnn_backward(dhs, x, kernel, recurrent_kernel, h0, hs, activation, use_bias, compute_dx=True,
                        mask=None, recurrent_dropout_mask=None, bf16=-1):
    """Backpropagation through time for simple_rnn_forward.

    dhs: (N, T, U) IN, any strides, gradient w.r.t. every hidden state; x (D, T, N), kernel,
    recurrent_kernel, h0 (U, N) as in forward; hs: (U, T, N) IN from forward. Returns (dx
    (D, T, N), dkernel (D, U), drecurrent_kernel (U, U), dbias (U,) or None when not use_bias,
    dh0 (U, N)), all new.
    """
    D, T, N, U = _sizes(x, kernel, recurrent_kernel, 1)
    _check_shape("h0", h0, (U, N))
    _check_shape("hs", hs, (U, T, N))
    _check_shape("dhs", dhs, (N, T, U))
    _check_act("activation", activation)
    _skipped(mask, T, N, None)
    rdrop = recurrent_dropout_mask
    _check_rdrop(rdrop, 1, U, N)
    _check_bf16(bf16, x.dtype)
    rk = _q(recurrent_kernel, bf16)
    dg = np.empty((U, T, N), dtype=x.dtype)
    dh = np.zeros((U, N), dtype=x.dtype)
    for t in range(T - 1, -1, -1):
        dg_t = dg[:, t]
        # step 1: total gradient of h_t (from step t+1 and from the output)
        np.add(dh, dhs[:, t].T, out=dg_t)
        skip = _skipped(mask, T, N, t)
        carry = None if skip is None else dg_t[:, skip].copy()
        # step 2: through the activation
        _dact_mul(activation, hs[:, t], dg_t)
        if skip is not None:   # a masked step passes the gradient straight to h_{t-1}
            dg_t[:, skip] = 0
        # step 3: gradient of h_{t-1} through the recurrent matmul
        _product_bwd(rk, dg_t, rdrop, dh, bf16)
        if skip is not None:
            dh[:, skip] += carry
    return _weight_grads(dg, x, kernel, h0, hs, use_bias, compute_dx, rdrop, bf16) + (dh,)


# ---------------------------------------------------------------------------------------------
# LSTM

def lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, activation, recurrent_activation, mask=None,
                 recurrent_dropout_mask=None, bf16=-1):
    """LSTM over a whole sequence (Keras gate order i|f|c|o).

    z = x_t W + h_{t-1} U + b; i, f, o = ract(z_i, z_f, z_o); g = act(z_c);
    c_t = f * c_{t-1} + i * g; h_t = o * act(c_t).
    x: (D, T, N) IN; kernel (D, 4U), recurrent_kernel (U, 4U), bias (4U,), h0, c0 (U, N) IN.
    Returns (hs (U, T, N), cs (T, U, N), gates (T, 4U, N) = activated i|f|g|o), all new.
    """
    D, T, N, U = _sizes(x, kernel, recurrent_kernel, 4)
    _check_shape("bias", bias, (4 * U,))
    _check_shape("h0", h0, (U, N))
    _check_shape("c0", c0, (U, N))
    _check_act("activation", activation)
    _check_act("recurrent_activation", recurrent_activation)
    _skipped(mask, T, N, None)
    rdrop = recurrent_dropout_mask
    _check_rdrop(rdrop, 4, U, N)
    _check_bf16(bf16, x.dtype)
    rkt = _q(np.ascontiguousarray(recurrent_kernel.T), bf16)
    # step 1: input projection of every timestep, straight into the gates buffer
    gates = np.empty((T, 4 * U, N), dtype=x.dtype)
    np.matmul(_q(kernel, bf16).T, _q(x, bf16).transpose(1, 0, 2), out=gates)
    hs = np.empty((U, T, N), dtype=x.dtype)
    cs = np.empty((T, U, N), dtype=x.dtype)
    r = np.empty((4 * U, N), dtype=x.dtype)
    b = bias[:, None]
    h_prev, c_prev = h0, c0
    for t in range(T):
        # step 1b: recurrent matmul R = U^T h_{t-1}
        _product_fwd(rkt, h_prev, rdrop, r, bf16)
        # step 2: pre-activations z = x W + R + b
        z = gates[t]
        z += r
        z += b
        # step 3: gates i, f, o with the recurrent activation; candidate g with act
        i, f, g, o = z[:U], z[U:2 * U], z[2 * U:3 * U], z[3 * U:]
        _act(recurrent_activation, i, i)
        _act(recurrent_activation, f, f)
        _act(recurrent_activation, o, o)
        _act(activation, g, g)
        # step 4: cell state c_t = f * c_{t-1} + i * g
        c = cs[t]
        np.multiply(f, c_prev, out=c)
        c += i * g
        # step 5: hidden state h_t = o * act(c_t)
        h = hs[:, t]
        _act(activation, c, h)
        h *= o
        skip = _skipped(mask, T, N, t)
        if skip is not None:   # a masked step keeps the states
            h[:, skip] = h_prev[:, skip]
            c[:, skip] = c_prev[:, skip]
        h_prev, c_prev = h, c
    return hs, cs, gates


def lstm_backward(dhs, dc_last, x, kernel, recurrent_kernel, h0, c0, hs, cs, gates,
                  activation, recurrent_activation, use_bias, compute_dx=True, mask=None,
                  recurrent_dropout_mask=None, bf16=-1):
    """Backpropagation through time for lstm_forward.

    dhs: (N, T, U) IN, any strides, gradient w.r.t. every hidden state; dc_last: (U, N) IN,
    gradient w.r.t. the final cell state; the rest as in / from forward. Returns (dx (D, T, N),
    dkernel (D, 4U), drecurrent_kernel (U, 4U), dbias (4U,) or None when not use_bias,
    dh0 (U, N), dc0 (U, N)), all new.
    """
    D, T, N, U = _sizes(x, kernel, recurrent_kernel, 4)
    _check_shape("h0", h0, (U, N))
    _check_shape("c0", c0, (U, N))
    _check_shape("dc_last", dc_last, (U, N))
    _check_shape("hs", hs, (U, T, N))
    _check_shape("cs", cs, (T, U, N))
    _check_shape("gates", gates, (T, 4 * U, N))
    _check_shape("dhs", dhs, (N, T, U))
    _check_act("activation", activation)
    _check_act("recurrent_activation", recurrent_activation)
    _skipped(mask, T, N, None)
    rdrop = recurrent_dropout_mask
    _check_rdrop(rdrop, 4, U, N)
    _check_bf16(bf16, x.dtype)
    rk = _q(recurrent_kernel, bf16)
    dg = np.empty((4 * U, T, N), dtype=x.dtype)
    dh = np.zeros((U, N), dtype=x.dtype)
    dc = np.array(dc_last, dtype=x.dtype)
    for t in range(T - 1, -1, -1):
        g_t, dg_t = gates[t], dg[:, t]
        i, f, g, o = g_t[:U], g_t[U:2 * U], g_t[2 * U:3 * U], g_t[3 * U:]
        di, df, dgg, do = dg_t[:U], dg_t[U:2 * U], dg_t[2 * U:3 * U], dg_t[3 * U:]
        c_prev = c0 if t == 0 else cs[t - 1]
        # step 1: total gradient of h_t (matmul part from step t+1 + output gradient)
        dh += dhs[:, t].T
        skip = _skipped(mask, T, N, t)
        if skip is not None:
            carry, carry_c = dh[:, skip].copy(), dc[:, skip].copy()
        # step 2: recompute act(c_t) into the o block
        _act(activation, cs[t], do)
        # step 3: gradient reaching c_t through h_t, dh * o * act'(c_t), in the f block
        np.multiply(dh, o, out=df)
        _dact_mul(activation, do, df)
        # step 4: cell gradient, gate gradients before their activations; dc -> dc_{t-1}
        dc += df
        np.multiply(dc, g, out=di)
        np.multiply(dc, c_prev, out=df)
        np.multiply(dc, i, out=dgg)
        do *= dh
        dc *= f
        # step 5: through the activations, from their outputs
        _dact_mul(recurrent_activation, i, di)
        _dact_mul(recurrent_activation, f, df)
        _dact_mul(recurrent_activation, o, do)
        _dact_mul(activation, g, dgg)
        if skip is not None:   # a masked step passes the gradients straight to step t-1
            dg_t[:, skip] = 0
            dc[:, skip] = carry_c
        # step 6: gradient of h_{t-1} through the recurrent matmul
        _product_bwd(rk, dg_t, rdrop, dh, bf16)
        if skip is not None:
            dh[:, skip] += carry
    return _weight_grads(dg, x, kernel, h0, hs, use_bias, compute_dx, rdrop, bf16) + (dh, dc)


# ---------------------------------------------------------------------------------------------
# GRU (reset_after=True)

def gru_forward(x, kernel, recurrent_kernel, bias, h0, activation, recurrent_activation, mask=None,
                recurrent_dropout_mask=None, bf16=-1):
    """GRU over a whole sequence (Keras gate order z|r|h, reset_after=True).

    xz, xr, xh = x_t W + b_in; rz, rr, rh = h_{t-1} U + b_rec; z = ract(xz + rz);
    r = ract(xr + rr); hh = act(xh + r * rh); h_t = z * h_{t-1} + (1 - z) * hh.
    x: (D, T, N) IN; kernel (D, 3U), recurrent_kernel (U, 3U), bias (2, 3U), h0 (U, N) IN.
    Returns (hs (U, T, N), cache (T, 4U, N) = z|r|hh|rh of every step), both new.
    """
    D, T, N, U = _sizes(x, kernel, recurrent_kernel, 3)
    _check_shape("bias", bias, (2, 3 * U))
    _check_shape("h0", h0, (U, N))
    _check_act("activation", activation)
    _check_act("recurrent_activation", recurrent_activation)
    _skipped(mask, T, N, None)
    rdrop = recurrent_dropout_mask
    _check_rdrop(rdrop, 3, U, N)
    b_in, b_rec = bias[0][:, None], bias[1][:, None]
    _check_bf16(bf16, x.dtype)
    rkt = _q(np.ascontiguousarray(recurrent_kernel.T), bf16)
    # step 1: input projection of every timestep, into rows 0:3U of the cache
    cache = np.empty((T, 4 * U, N), dtype=x.dtype)
    np.matmul(_q(kernel, bf16).T, _q(x, bf16).transpose(1, 0, 2), out=cache[:, :3 * U])
    hs = np.empty((U, T, N), dtype=x.dtype)
    r_buf = np.empty((3 * U, N), dtype=x.dtype)
    h_prev = h0
    for t in range(T):
        # step 1b: recurrent matmul R = U^T h_{t-1}
        _product_fwd(rkt, h_prev, rdrop, r_buf, bf16)
        c_t = cache[t]
        zr, z, r, hh, rh = c_t[:2 * U], c_t[:U], c_t[U:2 * U], c_t[2 * U:3 * U], c_t[3 * U:]
        # step 2: z, r pre-activations (x W + b_in) + (h_{t-1} U + b_rec), and rh
        zr += b_in[:2 * U]
        rec_zr = r_buf[:2 * U]
        rec_zr += b_rec[:2 * U]
        zr += rec_zr
        np.add(r_buf[2 * U:], b_rec[2 * U:], out=rh)
        # step 3: update and reset gates
        _act(recurrent_activation, zr, zr)
        # step 4: candidate hh = act(x W_h + b_in_h + r * rh)
        hh += b_in[2 * U:]
        hh += r * rh
        _act(activation, hh, hh)
        # step 5: h_t = z * h_{t-1} + (1 - z) * hh
        h = hs[:, t]
        np.multiply(z, h_prev, out=h)
        h += (1 - z) * hh
        skip = _skipped(mask, T, N, t)
        if skip is not None:   # a masked step keeps the state
            h[:, skip] = h_prev[:, skip]
        h_prev = h
    return hs, cache


def gru_backward(dhs, x, kernel, recurrent_kernel, h0, hs, cache, activation, recurrent_activation,
                 use_bias, compute_dx=True, mask=None, recurrent_dropout_mask=None, bf16=-1):
    """Backpropagation through time for gru_forward.

    dhs: (N, T, U) IN, any strides; the rest as in / from forward. Returns (dx (D, T, N),
    dkernel (D, 3U), drecurrent_kernel (U, 3U), dbias (2, 3U) or None when not use_bias,
    dh0 (U, N)).
    """
    D, T, N, U = _sizes(x, kernel, recurrent_kernel, 3)
    _check_shape("h0", h0, (U, N))
    _check_shape("hs", hs, (U, T, N))
    _check_shape("cache", cache, (T, 4 * U, N))
    _check_shape("dhs", dhs, (N, T, U))
    _check_act("activation", activation)
    _check_act("recurrent_activation", recurrent_activation)
    # dG rows per step: dxh | dz | dr | dhr, so that rows 0:3U are the input-side gradient (in
    # the order h, z, r) and rows U:4U the recurrent-side one (in the order z, r, h)
    _skipped(mask, T, N, None)
    rdrop = recurrent_dropout_mask
    _check_rdrop(rdrop, 3, U, N)
    _check_bf16(bf16, x.dtype)
    rk = _q(recurrent_kernel, bf16)
    dg = np.empty((4 * U, T, N), dtype=x.dtype)
    dhg = np.zeros((U, N), dtype=x.dtype)   # dh_t via the recurrent matmul of step t+1
    dhd = np.zeros((U, N), dtype=x.dtype)   # dh_t via the direct path z * h_t of step t+1
    for t in range(T - 1, -1, -1):
        c_t, dg_t = cache[t], dg[:, t]
        z, r, hh, rh = c_t[:U], c_t[U:2 * U], c_t[2 * U:3 * U], c_t[3 * U:]
        dxh, dz, dr, dhr = dg_t[:U], dg_t[U:2 * U], dg_t[2 * U:3 * U], dg_t[3 * U:]
        h_prev = h0 if t == 0 else hs[:, t - 1]
        # step 1: total gradient of h_t, split over z, hh and the direct path
        dh = dhg + dhd
        dh += dhs[:, t].T
        np.subtract(h_prev, hh, out=dz)
        dz *= dh
        np.subtract(1, z, out=dxh)
        dxh *= dh
        np.multiply(dh, z, out=dhd)
        # step 2: through the candidate activation
        _dact_mul(activation, hh, dxh)
        # step 3: reset gate and the recurrent candidate part
        np.multiply(dxh, rh, out=dr)
        np.multiply(dxh, r, out=dhr)
        # step 4: through the recurrent activation of z and r
        _dact_mul(recurrent_activation, z, dz)
        _dact_mul(recurrent_activation, r, dr)
        skip = _skipped(mask, T, N, t)
        if skip is not None:   # a masked step passes the gradient straight to h_{t-1}
            dg_t[:, skip] = 0
            dhd[:, skip] = dh[:, skip]
        # step 5: gradient of h_{t-1} through the recurrent matmul
        _product_bwd(rk, dg_t[U:], rdrop, dhg, bf16)
    dhg += dhd
    return _gru_weight_grads(dg, x, kernel, h0, hs, use_bias, compute_dx, rdrop, bf16) + (dhg,)


def _gru_weight_grads(dg, x, kernel, h0, hs, use_bias, compute_dx, rdrop=None, bf16=-1):
    """Step 6 of gru_backward: weight and input gradients from the stacked dxh|dz|dr|dhr."""
    D, T, N = x.shape
    U = hs.shape[0]
    g2 = dg.reshape(4 * U, T * N)
    gx = g2[:3 * U]             # input side, rows h|z|r
    gr = g2[U:]                 # recurrent side, rows z|r|h
    gxq = _q(gx, bf16)
    dk_hzr = np.matmul(_q(x, bf16).reshape(D, T * N), gxq.T)
    dkernel = np.concatenate((dk_hzr[:, U:], dk_hzr[:, :U]), axis=1)
    drk = _drk(_hprev(h0, hs), gr, rdrop, bf16)
    dx = None
    if compute_dx:
        k_hzr = np.concatenate((kernel[:, 2 * U:], kernel[:, :2 * U]), axis=1)
        dx = np.matmul(_q(k_hzr, bf16), gxq).reshape(D, T, N)
    if use_bias:
        s = g2.sum(axis=1)
        dbias = np.empty((2, 3 * U), dtype=g2.dtype)
        dbias[:, :2 * U] = s[U:3 * U]
        dbias[0, 2 * U:] = s[:U]
        dbias[1, 2 * U:] = s[3 * U:]
    else:
        dbias = None
    return dx, dkernel, drk, dbias
