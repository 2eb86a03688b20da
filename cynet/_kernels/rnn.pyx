"""Recurrent kernels (compiled): SimpleRNN, LSTM and GRU, whole-sequence forward and
backpropagation through time, with Keras 3 semantics and weight layouts.

Twin: rnn_numpy.py (same names, signatures, layouts and results).

Layout. Sequences are stored FEATURE-MAJOR inside the kernels: an (F, T, N) C-contiguous
buffer, so that the slab of one timestep is F rows of N contiguous samples. Then the recurrent
product of a step is recurrent_kernel.T (kU, U) @ h_{t-1} (U, N), the orientation that runs
fastest for small batches (bench/README.md, "rnn"), and every whole-sequence product (inputs, dkernel, drecurrent_kernel, dx) is still
ONE 2-D matmul over the (F, T*N) views. cynet.kernels.rnn converts from / to the public (N, T, F) arrays
(its outputs are (N, T, F) views of these buffers, so chained layers copy nothing).
The buffers that only the step kernels read (the LSTM's gates and cell states, the GRU's cache)
are TIME-major, (T, F, N): a step's rows are one contiguous slab instead of rows a whole
sequence apart, which the fused gate passes read much faster (bench/README.md, "rnn"). Their input projection is then one matmul per step (a
stacked np.matmul), at no measurable cost.

Arguments arrive normalised by cynet.kernels.rnn (one float dtype, C-contiguous, bias and
initial states as arrays of zeros when absent, activations as integer codes):

    x                 (D, T, N)   inputs, feature-major
    kernel            (D, k*U)    column blocks: SimpleRNN k=1; LSTM k=4, i|f|c|o; GRU k=3, z|r|h
    recurrent_kernel  (U, k*U)    same column blocks
    bias              SimpleRNN (U,), LSTM (4U,), GRU (2, 3U): row 0 input bias, row 1 recurrent
    h0, c0, dc_last   (U, N)      states, feature-major
    hs                (U, T, N)   every hidden state
    cs (LSTM)         (T, U, N)   every cell state, TIME-major (see below)
    gates (LSTM)      (T, 4U, N)  activated gates i|f|g|o of every step, time-major
    cache (GRU)       (T, 4U, N)  z | r | hh | rh of every step, rh = h_{t-1} U_h + b_rec_h, time-major
    dhs               (N, T, U)   gradient w.r.t. every hidden state, ANY strides (read in place)

Activation codes (shared with the twin and the public module): 0 linear, 1 tanh, 2 sigmoid,
3 relu, 4 hard_sigmoid (Keras 3: clip(x / 6 + 0.5, 0, 1)). Every derivative is taken from the
activation's output, so backward reuses the stored activations.

Algorithm (thinc's _lstm_forward_training): ONE matmul for the inputs of every timestep,
written straight into the gates buffer (for one-hot inputs, a character model's, a gather of
the kernel's rows instead: the same values); then per step the recurrent product and ONE fused
gate kernel for all the other arithmetic of the step. Backward runs one fused gate-gradient
kernel per step, then dh_{t-1} = recurrent_kernel @ dgates_t, and after the loop ONE matmul
each for dkernel = X dG^T, drecurrent_kernel = Hprev dG^T and dx = kernel dG over the stacked
per-step gate gradients; dbias is a row sum. The whole time loop runs without the GIL: the
per-step products are cynet_gemm.h's, on the recurrent kernel packed once per call (BLAS
would repack it at every step, and each np.matmul call costs a few microseconds of Python),
the whole-sequence ones NumPy's BLAS.

Recurrent dropout (recurrent_dropout_mask, (k, U, N) scaled keep-masks, one per gate block;
Keras 3's semantics): the step product runs as k (U, U) blocks, each on its own packed weights
and on h_{t-1} times its mask (cynet_rnn.h's cynet_rnn_product_dropout), backward as
dh = sum_j mask_j * (U_j dG_j); drecurrent_kernel is one product per block over all timesteps
(_drk_dropout). Same multiply-adds as without dropout, k calls instead of one per step.

bfloat16 products (the mixed_bfloat16 policy; every entry point's `bf16`: -1 float products, else
the requested path of cynet_bf16.h, 0 emulated, 1 AVX512_BF16, 2 AMX-BF16, float32 only): the
recurrent kernel is rounded and packed ONCE per call for that path (cynet_bf16_pack_a_all), each
step packs only its h_{t-1} or dG_t (cynet_bf16_gemm_apacked), and the whole-sequence products
(inputs, dkernel, drecurrent_kernel, dx) round both operands while packing them (_bf16_mm; the
gate gradients are read transposed, in place, by AMX's in-register transposes). The gates,
states and the bias gradients (row sums) stay float32. Measured on the AMX VM, LSTM(256) over 60
steps of batch 25, forward + backward: about 3x faster than float32 (bench/test_mixed_precision.py,
"lstm"); the AVX512_BF16 path is slower than float32 there (vdpbf16ps's rate, cynet_bf16.h).

The step kernels are C, in cynet_rnn.h (why C: that header's comment; declared for Cython in
_rnn_cells.pxd), each one timestep of one cell over a range of units, described by one
cynet_rnn_loop. Cython owns everything else: validation, buffers, the matmuls, the threads and
the ONE time loop (_drive) that all six entry points run.

Threads. A step's kernel runs prange over chunks of units when the step has enough work
(threads_for(k*U*N, COST_RECURRENT)); at the benchmark size it stays serial, since waking a
passive OpenMP team costs more than the step. For the
same reason a step's product goes back to NumPy's BLAS (np.matmul under the GIL, on its own
threads) when more threads are configured and the thread policy gives its multiply-adds
(COST_RECURRENT_MACS) more than one thread (the benchmark LSTM's 8.4M do). The whole-sequence matmuls run on NumPy's BLAS outside
any parallel region.
"""
import numpy as np

from cynet._kernels import scratch as _scratch_mod

from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memset

from cynet._kernels._openmp cimport threads_for, COST_RECURRENT, COST_RECURRENT_MACS
from cynet._kernels._common cimport dtype_of
from cynet._kernels._gemm cimport (CYNET_GEMM_TAIL, cynet_gemm_cols, cynet_gemm_pack_d, cynet_gemm_pack_f,
                                   cynet_gemm_packed_size, cynet_gemm_f, cynet_gemm_d)   # (cynet_gemm.h, declared once)
from cynet._kernels._gemm cimport (CYNET_BF16_WORK, cynet_bf16_path, cynet_bf16_packed_a_words,
                                   cynet_bf16_pack_a_all, cynet_bf16_gemm_apacked, uint32_t)
from libc.stdint cimport int32_t
from cynet._kernels._rnn_cells cimport *


# Activation codes: the Python definition is rnn_numpy.ACTIVATIONS (the twin and the public
# module read it), the C one cynet_rnn.h's enum; they must agree.
from cynet._kernels.rnn_numpy import ACTIVATIONS, LINEAR, TANH, SIGMOID, RELU, HARD_SIGMOID, N_ACTIVATIONS
if (ACTIVATIONS != {"linear": CYNET_LINEAR, "tanh": CYNET_TANH, "sigmoid": CYNET_SIGMOID, "relu": CYNET_RELU,
                    "hard_sigmoid": CYNET_HARD_SIGMOID} or N_ACTIVATIONS != CYNET_N_ACTIVATIONS):
    raise ImportError("cynet_rnn.h's activation codes differ from rnn_numpy.ACTIVATIONS")


# ---------------------------------------------------------------------------------------------
# Scratch: the buffers a call needs only while it runs (packed weights, per-step products, the
# stacked gate gradients) come from the calling thread's Scratch of cynet._kernels.scratch
# (bounded, released by cynet.utils.clear_session(); see that module). The names below are
# kept for the tests and tools that inspect the recurrent pool.

cdef object _scratch(str name, tuple shape, dt):
    return _scratch_mod.thread_scratch().get(name, shape, dt)


_scratch_lock = _scratch_mod._lock


def _scratch_bytes(all_threads=True):
    """Bytes of recurrent scratch kept: by every live thread, or by the calling one."""
    return _scratch_mod.kept_bytes("recurrent", all_threads)


def _clear_scratch():
    """Drops every kept scratch buffer (cynet._kernels.scratch.release). Returns the bytes."""
    return _scratch_mod.release()


def _scratch_limits(per_buffer=None, per_thread=None, total=None):
    """The recurrent scratch bounds in bytes, (per_buffer, per_thread, total); sets those given."""
    return _scratch_mod.limits("recurrent", per_buffer, per_thread, total)


# ---------------------------------------------------------------------------------------------
# The recurrent product of a step, C (M, N) = A (M, K) @ B (K, N), on the weights packed once
# per sequence (cynet_gemm.h).

cdef inline tuple _packed(const floating[:, ::1] w, bint transposed, Py_ssize_t N, Py_ssize_t blocks=0):
    """The step products' A from a weight w: A = w.T (w is (K, M)) when transposed, else A = w
    (M, K), for products with N columns. Returns (packed A, scratch, None) for _step_product
    on one thread; with more threads configured and enough multiply-adds (COST_RECURRENT_MACS)
    per thread, (-, -, A as a C-contiguous array) for np.matmul: the BLAS's own threads spin
    between calls, while an OpenMP team under OMP_WAIT_POLICY=passive sleeps after each step
    and waking it every step cost more than the second thread saved (bench/README.md, "rnn").
    blocks > 0 (recurrent dropout): A is packed as `blocks` square blocks, block j from the
    columns j*U:(j+1)*U of w (U = w.shape[0]), each cynet_gemm_packed_size(U, U, N) values
    (the fourth value returned; 0 otherwise)."""
    cdef Py_ssize_t M = w.shape[1] if transposed else w.shape[0]
    cdef Py_ssize_t K = w.shape[0] if transposed else w.shape[1]
    cdef Py_ssize_t U = w.shape[0], ld = w.shape[1], j, apj
    cdef floating[::1] ap
    dt = dtype_of(w[0, 0])
    wa = np.asarray(w)
    if threads_for(M * K * N, COST_RECURRENT_MACS) > 1:
        dummy = np.empty(1, dtype=dt)
        return dummy, dummy, np.ascontiguousarray(wa.T) if transposed else wa, 0
    if blocks:
        apj = cynet_gemm_packed_size(U, U, N, sizeof(floating))
        ap_a = _scratch("packed", (blocks * apj,), dt)
        ap = ap_a
        with nogil:
            for j in range(blocks):
                if floating is float:
                    cynet_gemm_pack_f(&w[0, j * U], 1 if transposed else ld, ld if transposed else 1, U, U, N,
                                      &ap[j * apj])
                else:
                    cynet_gemm_pack_d(&w[0, j * U], 1 if transposed else ld, ld if transposed else 1, U, U, N,
                                      &ap[j * apj])
        return ap_a, _scratch("tail", (CYNET_GEMM_TAIL(U, N),), dt), None, apj
    ap_a = _scratch("packed", (cynet_gemm_packed_size(M, K, N, sizeof(floating)),), dt)
    ap = ap_a
    with nogil:
        if floating is float:
            cynet_gemm_pack_f(&w[0, 0], 1 if transposed else K, M if transposed else 1, M, K, N, &ap[0])
        else:
            cynet_gemm_pack_d(&w[0, 0], 1 if transposed else K, M if transposed else 1, M, K, N, &ap[0])
    return ap_a, _scratch("tail", (CYNET_GEMM_TAIL(K, N),), dt), None, 0


# ---------------------------------------------------------------------------------------------
# bfloat16 products (the mixed_bfloat16 policy): every entry point takes `bf16`, -1 for float
# products, else the requested path of cynet_bf16.h (0 emulated, 1 AVX512_BF16, 2 AMX-BF16; a
# path this CPU lacks falls back to the next). Then the step products run on the recurrent
# kernel packed ONCE per call in bfloat16 (cynet_bf16_pack_a_all; each step packs only its
# h_{t-1} or dG_t) and the whole-sequence products (inputs, dkernel, drecurrent_kernel, dx) on
# bfloat16-rounded operands too; the gates, states and sums (dbias) stay float32.

cdef int _check_bf16(int bf16, Py_ssize_t itemsize) except -2:
    if bf16 >= 0 and itemsize != 4:
        raise ValueError(f"bf16 products need float32 arrays; received {itemsize * 8}-bit floats with bf16={bf16}")
    return bf16


cdef object _bf16_mm(a, b, int path, out=None):
    """out (batch, M, N) = a (M, K) @ b[i] (K, N) for every i, on bfloat16-rounded operands with
    float32 sums, A packed once for the whole batch (cynet_bf16.h's gemm_apacked); a and b any
    element strides, out's rows unit-stride (a new C-contiguous array when None). 2-D b and out
    also work (one product). Runs on the calling thread."""
    cdef bint flat = np.ndim(b) == 2
    if flat:
        b = b[None]
        if out is not None:
            out = out[None]
    cdef const float[:, :] av = a
    cdef const float[:, :, :] bv = b
    cdef Py_ssize_t M = av.shape[0], K = av.shape[1], nb = bv.shape[0], N = bv.shape[2], i
    if out is None:
        out = np.empty((nb, M, N), dtype=np.float32)
    if out.strides[2] != 4:
        raise ValueError("out must have unit-stride rows")
    cdef float[:, :] orow
    if M == 0 or N == 0 or nb == 0:
        return out[0] if flat else out
    cdef int pth = cynet_bf16_path(path)
    ap_a = _scratch("bf16_a", (cynet_bf16_packed_a_words(pth, M, K),), np.uint32)
    work_a = _scratch("bf16_work", (CYNET_BF16_WORK,), np.uint32)
    cdef uint32_t[::1] ap = ap_a
    cdef uint32_t[::1] work = work_a
    cdef Py_ssize_t sam = av.strides[0] // 4, sak = av.strides[1] // 4
    cdef Py_ssize_t sbb = bv.strides[0] // 4, sbk = bv.strides[1] // 4, sbn = bv.strides[2] // 4
    cdef const float* pa = &av[0, 0] if K else NULL
    cdef const float* pb = &bv[0, 0, 0] if K else NULL
    with nogil:
        if K:
            cynet_bf16_pack_a_all(pth, pa, sam, sak, M, K, &ap[0])
    for i in range(nb):
        orow = out[i]
        with nogil:
            cynet_bf16_gemm_apacked(pth, &ap[0], M, K, pb + i * sbb if K else NULL, sbk, sbn, &orow[0, 0],
                                    orow.strides[0] // 4, N, 0, &work[0])
    return out[0] if flat else out


cdef object _row_sums(a):
    """a.sum(axis=1) for a C-contiguous (M, K) a, in a's float type, as one matrix-vector product
    on the BLAS (the bias gradients: several times faster than NumPy's pairwise sum per row)."""
    return np.matmul(a, np.ones(a.shape[1], dtype=a.dtype))


cdef object _mm(a, b, int bf16, out=None):
    """a @ b (2-D): NumPy's float product, or with bf16 >= 0 the bfloat16 one (_bf16_mm)."""
    if bf16 < 0:
        return np.matmul(a, b, out=out)
    return _bf16_mm(a, b, bf16, out)


cdef int _inputs_packed(const floating[:, ::1] ka, const floating[:, :, ::1] x, floating[:, :, :] out) except -1:
    """_inputs on one thread: kernel.T packed once (cynet_gemm.h), then one product per step
    straight into out[t]; 35-40% less time than NumPy's stacked product of the char LSTM's
    shapes (kU 1024, D 43, N 25: 60 small products through the BLAS interface)."""
    cdef Py_ssize_t D = ka.shape[0], M = ka.shape[1], T = x.shape[1], N = x.shape[2], t
    cdef Py_ssize_t sc = out.strides[1] // sizeof(floating)   # out (T, M, N): rows of N unit-stride values
    if out.strides[2] != sizeof(floating) or out.shape[0] != T or out.shape[1] != M or out.shape[2] != N:
        raise ValueError("out must be (T, kU, N) with unit-stride rows")
    dt = dtype_of(ka[0, 0])
    ap_a = _scratch("inputs_packed", (cynet_gemm_packed_size(M, D, N, sizeof(floating)),), dt)
    tail_a = _scratch("inputs_tail", (CYNET_GEMM_TAIL(D, N),), dt)
    cdef floating[::1] ap = ap_a
    cdef floating[::1] tail = tail_a
    with nogil:
        if floating is float:
            cynet_gemm_pack_f(&ka[0, 0], 1, M, M, D, N, &ap[0])
            for t in range(T):
                cynet_gemm_f(&ap[0], M, D, &x[0, t, 0], T * N, N, &out[t, 0, 0], sc, &tail[0])
        else:
            cynet_gemm_pack_d(&ka[0, 0], 1, M, M, D, N, &ap[0])
            for t in range(T):
                cynet_gemm_d(&ap[0], M, D, &x[0, t, 0], T * N, N, &out[t, 0, 0], sc, &tail[0])
    return 0


cdef object _classes_of(const floating[:, :, ::1] x):
    """For one-hot x (D, T, N) (a character model's inputs: every column a unit vector) the row
    of each column's one, (T * N,) int32; else None. A dense x stops the scan at its first
    value other than 0 or 1, so only one-hot inputs pay for it."""
    cdef Py_ssize_t D = x.shape[0], TN = x.shape[1] * x.shape[2]
    cdef int found
    if D < 2 or TN == 0:
        return None
    cls_a = _scratch("inputs_classes", (TN,), np.int32)
    cdef int32_t[::1] cls = cls_a
    with nogil:
        if floating is float:
            found = cynet_rnn_one_hot_f(&x[0, 0, 0], D, TN, &cls[0])
        else:
            found = cynet_rnn_one_hot_d(&x[0, 0, 0], D, TN, &cls[0])
    return cls_a if found else None


def _one_hot_classes(x):
    """_classes_of for the tests: x (D, T, N) float32|float64, C-contiguous."""
    return _classes_of[float](x) if x.dtype == np.float32 else _classes_of[double](x)


cdef int _gather_rows(const floating[:, ::1] ka, const int32_t[::1] cls, floating[:, :, :] out) except -1:
    """out (T, kU, N) = kernel's rows at the classes cls, step by step (cynet_rnn_gather_*)."""
    cdef Py_ssize_t D = ka.shape[0], M = ka.shape[1], T = out.shape[0], N = out.shape[2]
    cdef Py_ssize_t sz = sizeof(floating)
    if out.strides[2] != sz or out.strides[0] < 0 or out.strides[1] < 0 or out.shape[1] != M \
            or cls.shape[0] != T * N or T * M * N == 0:
        raise ValueError("out must be a non-empty (T, kU, N) with unit-stride rows and positive strides")
    cdef Py_ssize_t st = out.strides[0] // sz, sr = out.strides[1] // sz
    cdef Py_ssize_t ext = (T - 1) * st + (M - 1) * sr + N
    kt_a = np.ascontiguousarray(np.asarray(ka).T)
    cdef const floating[:, ::1] kt = kt_a
    with nogil:
        if floating is float:
            cynet_rnn_gather_f(&kt[0, 0], D, &cls[0], T, M, N, &out[0, 0, 0], st, sr, ext)
        else:
            cynet_rnn_gather_d(&kt[0, 0], D, &cls[0], T, M, N, &out[0, 0, 0], st, sr, ext)
    return 0


cdef bint _inputs_one_hot(ka, xa, out, int bf16) except -1:
    """The input projection (out (T, kU, N) = kernel.T @ x[:, t] per step) of one-hot x, as a
    gather of kernel's rows at the classes (_classes_of): exactly the product's values (a sum
    of zeros and one weight) at a fraction of its time (char LSTM: 0.3 ms less per forward).
    False, out untouched, when x is not one-hot or the products are bfloat16 (whose rounding
    of the kernel the gather would skip)."""
    if bf16 >= 0:
        return False
    cls = _one_hot_classes(xa)
    if cls is None:
        return False
    if ka.dtype == np.float32:
        _gather_rows[float](ka, cls, out)
    else:
        _gather_rows[double](ka, cls, out)
    return True


cdef object _inputs(ka, xa, out, int bf16):
    """The input projection of every timestep into the time-major out (T, kU, N): out[t] =
    kernel.T @ x[:, t] (x (D, T, N)): a gather when x is one-hot (_inputs_one_hot), else one
    stacked product on the BLAS when the thread policy gives it more than one thread, else
    _inputs_packed (bfloat16: kernel packed once, _bf16_mm, one-hot or not)."""
    if _inputs_one_hot(ka, xa, out, bf16):
        return
    if bf16 >= 0:
        _bf16_mm(ka.T, xa.transpose(1, 0, 2), bf16, out)
    elif threads_for(ka.shape[1] * xa.size, COST_RECURRENT_MACS) > 1:
        np.matmul(ka.T, xa.transpose(1, 0, 2), out=out)
    elif ka.dtype == np.float32:
        _inputs_packed[float](ka, xa, out)
    else:
        _inputs_packed[double](ka, xa, out)


cdef tuple _bf16_step_weights(const floating[:, ::1] w, bint transposed, Py_ssize_t blocks, int path):
    """The step products' A for the bfloat16 path (see _packed for transposed and blocks),
    packed once: (resolved path, packed words, B-packing work, words per block)."""
    if floating is double:
        raise ValueError("bf16 products need float32 arrays")
    cdef int pth = cynet_bf16_path(path)
    cdef Py_ssize_t U = w.shape[0], ld = w.shape[1], j
    cdef Py_ssize_t M = ld if transposed else U, K = U if transposed else ld
    cdef Py_ssize_t per = cynet_bf16_packed_a_words(pth, U, U) if blocks else 0
    cdef Py_ssize_t sam = 1 if transposed else ld, sak = ld if transposed else 1
    ap_a = _scratch("packed_bf16", ((blocks * per) if blocks else cynet_bf16_packed_a_words(pth, M, K),),
                    np.uint32)
    work_a = _scratch("bf16_work", (CYNET_BF16_WORK,), np.uint32)
    cdef uint32_t[::1] ap = ap_a
    with nogil:
        if blocks:
            for j in range(blocks):
                cynet_bf16_pack_a_all(pth, <const float*>&w[0, j * U], sam, sak, U, U, &ap[j * per])
        else:
            cynet_bf16_pack_a_all(pth, <const float*>&w[0, 0], sam, sak, M, K, &ap[0])
    return pth, ap_a, work_a, per


cdef object _weights_for(cynet_rnn_loop* L, const floating[:, ::1] w, bint transposed, Py_ssize_t N,
                         Py_ssize_t blocks, int bf16):
    """The step products' packed weights, set on L (after _loop_init): cynet_gemm's (float) or,
    with bf16 >= 0, the bfloat16 ones. Returns (blas, apj, keep): blas as _packed's (None
    under bf16: the step products always run here), apj for _loop_rdrop, and the buffers that
    L points into, which the caller keeps alive."""
    cdef uint32_t[::1] bap
    cdef uint32_t[::1] bwork
    cdef floating[::1] ap
    cdef floating[::1] tail
    if bf16 >= 0:
        pth, bap_a, bwork_a, per = _bf16_step_weights(w, transposed, blocks, bf16)
        bap, bwork = bap_a, bwork_a
        L.bf16, L.bpath, L.bap, L.bwork, L.bapj = 1, pth, &bap[0], &bwork[0], per
        return None, 0, (bap_a, bwork_a)
    ap_a, tail_a, blas, apj = _packed(w, transposed, N, blocks)
    ap, tail = ap_a, tail_a
    L.ap, L.tail = &ap[0], &tail[0]
    return blas, apj, (ap_a, tail_a)


def _step_product_scheme(Py_ssize_t M, Py_ssize_t N, dtype):
    """Which scheme of cynet_gemm.h runs an (M, K) @ (K, N) step product of `dtype` on this
    CPU: "columns" or "rows" (for the tests that must reach both)."""
    return "columns" if cynet_gemm_cols(M, N, np.dtype(dtype).itemsize) else "rows"


# ---------------------------------------------------------------------------------------------
# Argument checks shared by the entry points (the public module checks first, with the
# user's argument names and layouts; these keep direct calls safe).

cdef inline int _check_act(str name, int code) except -1:
    if code < 0 or code >= N_ACTIVATIONS:
        raise ValueError(f"{name} must be an activation code in [0, {N_ACTIVATIONS}); received {code}")
    return 0


cdef inline int _check_shape2(str name, Py_ssize_t a, Py_ssize_t b, Py_ssize_t wa, Py_ssize_t wb) except -1:
    if a != wa or b != wb:
        raise ValueError(f"{name} must have shape ({wa}, {wb}); received shape ({a}, {b})")
    return 0


cdef inline int _check_shape3(str name, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c,
                              Py_ssize_t wa, Py_ssize_t wb, Py_ssize_t wc) except -1:
    if a != wa or b != wb or c != wc:
        raise ValueError(f"{name} must have shape ({wa}, {wb}, {wc}); received shape ({a}, {b}, {c})")
    return 0


cdef inline tuple _sizes(Py_ssize_t D, Py_ssize_t T, Py_ssize_t N, Py_ssize_t kd, Py_ssize_t kc,
                         Py_ssize_t U, Py_ssize_t rc, Py_ssize_t k):
    """(D, T, N, U) from x (D, T, N), kernel (kd, kc) = (D, kU), recurrent_kernel (U, rc) = (U, kU)."""
    if N < 1 or T < 1 or D < 1:
        raise ValueError(f"x must have shape (D, T, N) with D, T, N >= 1; received shape ({D}, {T}, {N})")
    if U < 1:
        raise ValueError(f"recurrent_kernel must have at least one unit; received shape ({U}, {rc})")
    _check_shape2("recurrent_kernel", U, rc, U, k * U)
    _check_shape2("kernel", kd, kc, D, k * U)
    return D, T, N, U


cdef inline int _check_dhs(const floating[:, :, :] dhs, Py_ssize_t N, Py_ssize_t T, Py_ssize_t U) except -1:
    _check_shape3("dhs", dhs.shape[0], dhs.shape[1], dhs.shape[2], N, T, U)
    cdef Py_ssize_t i
    for i in range(3):
        if dhs.strides[i] % <Py_ssize_t>sizeof(floating) != 0:
            raise ValueError(f"dhs must have strides that are multiples of its itemsize; received {dhs.strides[i]}")
    return 0


cdef inline int _team(Py_ssize_t work) noexcept nogil:
    return threads_for(work, COST_RECURRENT)


# ---------------------------------------------------------------------------------------------
# The one time loop: every entry point fills a cynet_rnn_loop (cynet_rnn.h) and runs _drive.

cdef inline void _loop_init(cynet_rnn_loop* L, int cell, int act, int ract, Py_ssize_t T, Py_ssize_t N,
                            Py_ssize_t U, int dsize) noexcept:
    memset(L, 0, sizeof(cynet_rnn_loop))
    L.cell, L.act, L.ract, L.dsize = cell, act, ract, dsize
    L.steps, L.N, L.U = T, N, U


cdef inline void _loop_dhs(cynet_rnn_loop* L, const floating[:, :, :] dhs) noexcept:
    """dhs (N, T, U), any strides (in elements), and the element offsets it reaches."""
    cdef Py_ssize_t k, s, lo = 0, hi = 0
    cdef Py_ssize_t sz = sizeof(floating)
    L.dhs = &dhs[0, 0, 0]
    L.sdn, L.sdt, L.sdu = dhs.strides[0] // sz, dhs.strides[1] // sz, dhs.strides[2] // sz
    for k in range(3):
        s = dhs.strides[k] // sz * (dhs.shape[k] - 1)
        if s < 0:
            lo += s
        else:
            hi += s
    L.dhs_lo, L.dhs_hi = lo, hi


cdef object _loop_mask(cynet_rnn_loop* L, const unsigned char[:, ::1] mask, bint backward, dt):
    """Masking for the loop: mask (T, N), 0 = a skipped step (None: no mask). Backward also
    gets its carry buffers (U, N). Returns the buffers, which the caller keeps alive."""
    if mask is None:
        return None
    _check_shape2("mask", mask.shape[0], mask.shape[1], L.steps, L.N)
    L.mask = &mask[0, 0]
    if not backward:
        return None
    carry_a = np.zeros((2, L.U, L.N), dtype=dt)
    cdef char[:, :, ::1] c = carry_a.view(np.int8)
    L.carry, L.carry_c = &c[0, 0, 0], &c[1, 0, 0]
    return carry_a


cdef object _loop_rdrop(cynet_rnn_loop* L, rdrop, Py_ssize_t k, Py_ssize_t apj, dt):
    """Recurrent dropout for the loop: rdrop (k, U, N) scaled keep-masks of the loop's dtype
    (None: none), the packed blocks' size apj (_packed) and the scratch hm (U, N). Returns
    (rdrop, hm) as arrays, which the caller keeps alive."""
    if rdrop is None:
        return None
    a = np.asarray(rdrop)
    if a.dtype != dt or a.ndim != 3 or not a.flags.c_contiguous:
        raise ValueError(f"recurrent_dropout_mask must be a C-contiguous {np.dtype(dt).name} array of shape "
                         f"({k}, {L.U}, {L.N}); received {a.dtype} array of shape {a.shape}")
    _check_shape3("recurrent_dropout_mask", a.shape[0], a.shape[1], a.shape[2], k, L.U, L.N)
    hm_a = _scratch("dropped", (L.U, L.N), dt)
    cdef const char[:, :, ::1] av = a.view(np.int8)
    cdef char[:, ::1] hv = hm_a.view(np.int8)
    L.rdrop, L.hm, L.apj = &av[0, 0, 0], &hv[0, 0], apj
    return a, hm_a


cdef int _blas_product(blas, src, h0, Py_ssize_t t, bint backward, out, rdrop) except -1:
    """The step product on NumPy's BLAS (see _packed): out = blas @ src[:, t] backward,
    out = blas @ (h0 if t == 0 else src[:, t - 1]) forward; with recurrent dropout rdrop
    (k, U, N) one product per gate block, as cynet_rnn.h's cynet_rnn_product_dropout."""
    if rdrop is None:
        if backward:
            np.matmul(blas, src[:, t], out=out)
        else:
            np.matmul(blas, h0 if t == 0 else src[:, t - 1], out=out)
        return 0
    cdef Py_ssize_t j, U = rdrop.shape[1]
    if backward:
        out[...] = 0
        for j in range(rdrop.shape[0]):
            out += rdrop[j] * np.matmul(blas[:, j * U:(j + 1) * U], src[j * U:(j + 1) * U, t])
    else:
        hp = h0 if t == 0 else src[:, t - 1]
        for j in range(rdrop.shape[0]):
            np.matmul(blas[j * U:(j + 1) * U], hp * rdrop[j], out=out[j * U:(j + 1) * U])
    return 0


cdef int _drive(cynet_rnn_loop* L, bint backward, Py_ssize_t width, blas, src, h0, out, rdrop=None) except -1:
    """Runs the time loop of L without the GIL. Forward, t = 0 .. T-1: the step product
    r = U^T h_{t-1}, then the cell's fused step kernel. Backward, t = T-1 .. 0: the cell's fused
    gradient kernel, then the product that carries dh_t back to step t-1. A step's units are
    split over an OpenMP team when its width * N values are enough work for the thread policy
    (COST_RECURRENT); at the benchmark size it stays serial, since waking a passive team costs
    more than the step. With `blas` (not None, see _packed) the product runs on NumPy's BLAS
    under the GIL instead of cynet_gemm, from src / h0 into out (_blas_product)."""
    cdef Py_ssize_t i, t, ch, T = L.steps, U = L.U
    cdef int nt = _team(width * L.N)
    cdef int nch = nt
    cdef bint own = blas is None
    with nogil:
        for i in range(T):
            t = T - 1 - i if backward else i
            if not backward:
                if own:
                    cynet_rnn_product(L, t, 0)
                else:
                    with gil:
                        _blas_product(blas, src, h0, t, False, out, rdrop)
            if nt == 1:
                cynet_rnn_step(L, t, 0, U, backward)
            else:
                for ch in prange(nch, schedule="static", num_threads=nt):
                    cynet_rnn_step(L, t, ch * U // nch, (ch + 1) * U // nch, backward)
            if backward:
                if own:
                    cynet_rnn_product(L, t, 1)
                else:
                    with gil:
                        _blas_product(blas, src, h0, t, True, out, rdrop)
                cynet_rnn_after_product(L)
    return 0


# ---------------------------------------------------------------------------------------------
# SimpleRNN

def simple_rnn_forward(const floating[:, :, ::1] x not None, const floating[:, ::1] kernel not None,
                       const floating[:, ::1] recurrent_kernel not None, const floating[::1] bias not None,
                       const floating[:, ::1] h0 not None, int activation,
                       const unsigned char[:, ::1] mask=None, recurrent_dropout_mask=None, int bf16=-1):
    """SimpleRNN over a whole sequence: h_t = act(x_t W + h_{t-1} U + b).

    x: (D, T, N) IN; kernel (D, U), recurrent_kernel (U, U), bias (U,), h0 (U, N) IN,
    float32|float64, C-contiguous, one dtype. activation: code (module docstring).
    Returns hs: (U, T, N) OUT, every hidden state (feature-major).
    """
    cdef Py_ssize_t D, T, N, U
    D, T, N, U = _sizes(x.shape[0], x.shape[1], x.shape[2], kernel.shape[0], kernel.shape[1],
                        recurrent_kernel.shape[0], recurrent_kernel.shape[1], 1)
    if bias.shape[0] != U:
        raise ValueError(f"bias must have shape ({U},); received shape ({bias.shape[0]},)")
    _check_shape2("h0", h0.shape[0], h0.shape[1], U, N)
    _check_act("activation", activation)
    dt = dtype_of(x[0, 0, 0])
    _check_bf16(bf16, sizeof(floating))
    # step 1: input projection of every timestep, one matmul, straight into hs
    hs_a = np.empty((U, T, N), dtype=dt)
    if not _inputs_one_hot(np.asarray(kernel), np.asarray(x), hs_a.transpose(1, 0, 2), bf16):
        _mm(np.asarray(kernel).T, np.asarray(x).reshape(D, T * N), bf16, hs_a.reshape(U, T * N))
    r_a = _scratch("step", (U, N), dt)
    cdef floating[:, :, ::1] hs = hs_a
    cdef floating[:, ::1] r = r_a
    cdef cynet_rnn_loop L
    _loop_init(&L, CYNET_CELL_SIMPLE, activation, CYNET_LINEAR, T, N, U, sizeof(floating))
    blas, apj, keep = _weights_for(&L, recurrent_kernel, True, N,
                                   0 if recurrent_dropout_mask is None else 1, bf16)
    L.h0, L.b, L.hs, L.r = &h0[0, 0], &bias[0], &hs[0, 0, 0], &r[0, 0]
    # per step: recurrent product R = U^T h_{t-1}, then the fused h_t = act(x W + R + b)
    _loop_mask(&L, mask, False, dt)
    rd = _loop_rdrop(&L, recurrent_dropout_mask, 1, apj, dt)
    _drive(&L, False, U, blas, hs_a, np.asarray(h0), r_a, None if rd is None else rd[0])
    return hs_a


def simple_rnn_backward(const floating[:, :, :] dhs not None, const floating[:, :, ::1] x not None,
                        const floating[:, ::1] kernel not None, const floating[:, ::1] recurrent_kernel not None,
                        const floating[:, ::1] h0 not None, const floating[:, :, ::1] hs not None,
                        int activation, bint use_bias, bint compute_dx=True,
                        const unsigned char[:, ::1] mask=None, recurrent_dropout_mask=None, int bf16=-1):
    """Backpropagation through time for simple_rnn_forward.

    dhs: (N, T, U) IN, any strides, gradient w.r.t. every hidden state; x (D, T, N), kernel,
    recurrent_kernel, h0 (U, N) as in forward; hs: (U, T, N) IN from forward. Returns (dx
    (D, T, N), dkernel (D, U), drecurrent_kernel (U, U), dbias (U,) or None when not use_bias,
    dh0 (U, N)), all new.
    """
    cdef Py_ssize_t D, T, N, U
    D, T, N, U = _sizes(x.shape[0], x.shape[1], x.shape[2], kernel.shape[0], kernel.shape[1],
                        recurrent_kernel.shape[0], recurrent_kernel.shape[1], 1)
    _check_shape2("h0", h0.shape[0], h0.shape[1], U, N)
    _check_shape3("hs", hs.shape[0], hs.shape[1], hs.shape[2], U, T, N)
    _check_dhs(dhs, N, T, U)
    _check_act("activation", activation)
    dt = dtype_of(x[0, 0, 0])
    _check_bf16(bf16, sizeof(floating))
    dg_a = _scratch("dgates", (U, T, N), dt)
    dh_a = np.zeros((U, N), dtype=dt)
    cdef floating[:, :, ::1] dg = dg_a
    cdef floating[:, ::1] dh = dh_a
    cdef cynet_rnn_loop L
    _loop_init(&L, CYNET_CELL_SIMPLE, activation, CYNET_LINEAR, T, N, U, sizeof(floating))
    blas, apj, keep = _weights_for(&L, recurrent_kernel, False, N,
                                   0 if recurrent_dropout_mask is None else 1, bf16)
    L.hs, L.dg, L.dh = <void*>&hs[0, 0, 0], &dg[0, 0, 0], &dh[0, 0]
    _loop_dhs(&L, dhs)
    # per step (t = T-1 .. 0): fused gate gradient, then dh_{t-1} = U dg_t
    carry_a = _loop_mask(&L, mask, True, dt)
    rd = _loop_rdrop(&L, recurrent_dropout_mask, 1, apj, dt)
    _drive(&L, True, U, blas, dg_a, None, dh_a, None if rd is None else rd[0])
    return _weight_grads(dg_a, np.asarray(x), np.asarray(kernel), np.asarray(h0), np.asarray(hs),
                         use_bias, compute_dx, None if rd is None else rd[0], bf16) + (dh_a,)


cdef tuple _weight_grads(dg_a, xa, ka, h0a, hsa, bint use_bias, bint compute_dx, rdrop=None, int bf16=-1):
    """Step 4 of every backward: the weight and input gradients, one matmul each over all
    timesteps. dg_a: (kU, T, N) stacked pre-activation gradients. Returns (dx (D, T, N),
    dkernel, drecurrent_kernel, dbias|None); dx is None unless compute_dx. With recurrent
    dropout (rdrop (k, U, N)) drecurrent_kernel's gate block j is (Hprev * rdrop[j]) dG_j^T,
    one product per block (_drk_dropout). bf16 >= 0: bfloat16 products (_bf16_mm); dbias is then
    a float32 row sum, not a product with a row of ones (whose dG would be rounded)."""
    D, T, N = xa.shape
    U = hsa.shape[0]
    kU = dg_a.shape[0]
    g2 = dg_a.reshape(kU, T * N)
    cdef bint ones = use_bias and bf16 < 0
    # [x_t; h_{t-1}; 1] for every (t, n), so that ONE product gives dkernel, drecurrent_kernel
    # and dbias, and the BLAS packs the large dG once (faster than two products:
    # bench/README.md, "rnn"); under recurrent dropout the h_{t-1} rows are left out
    H = 0 if rdrop is not None else U
    xh = _scratch("inputs", (D + H + ones, T, N), dg_a.dtype)
    xh[:D] = xa
    if H:
        xh[D:D + U, 0] = h0a
        xh[D:D + U, 1:] = hsa[:, :T - 1]
    if ones:
        xh[D + H] = 1
    dw = _mm(xh.reshape(D + H + ones, T * N), g2.T, bf16)
    dkernel = dw[:D]
    drk = dw[D:D + U] if H else _drk_dropout(h0a, hsa, g2, rdrop, bf16)
    dbias = None
    if use_bias:
        dbias = dw[D + H] if ones else _row_sums(g2)
    dx = _mm(ka, g2, bf16).reshape(D, T, N) if compute_dx else None
    return dx, dkernel, drk, dbias


cdef object _drk_dropout(h0a, hsa, g_rec, rdrop, int bf16=-1):
    """drecurrent_kernel under recurrent dropout: block j = (Hprev * rdrop[j]) G_j^T, Hprev
    (U, T, N) = [h0, hs[:, :T-1]] masked into one scratch per block, g_rec (kU, T*N) the
    recurrent-side gate gradients."""
    U, T, N = hsa.shape
    k = rdrop.shape[0]
    hm = _scratch("inputs_dropped", (U, T, N), hsa.dtype)
    drk = np.empty((U, k * U), dtype=hsa.dtype)
    for j in range(k):
        m = rdrop[j][:, None, :]
        np.multiply(h0a[:, None, :], m, out=hm[:, :1])
        np.multiply(hsa[:, :T - 1], m, out=hm[:, 1:])
        _mm(hm.reshape(U, T * N), g_rec[j * U:(j + 1) * U].T, bf16, drk[:, j * U:(j + 1) * U])
    return drk


# ---------------------------------------------------------------------------------------------
# LSTM

def lstm_forward(const floating[:, :, ::1] x not None, const floating[:, ::1] kernel not None,
                 const floating[:, ::1] recurrent_kernel not None, const floating[::1] bias not None,
                 const floating[:, ::1] h0 not None, const floating[:, ::1] c0 not None,
                 int activation, int recurrent_activation, const unsigned char[:, ::1] mask=None,
                 recurrent_dropout_mask=None, int bf16=-1):
    """LSTM over a whole sequence (Keras gate order i|f|c|o).

    z = x_t W + h_{t-1} U + b; i, f, o = ract(z_i, z_f, z_o); g = act(z_c);
    c_t = f * c_{t-1} + i * g; h_t = o * act(c_t).
    x: (D, T, N) IN; kernel (D, 4U), recurrent_kernel (U, 4U), bias (4U,), h0, c0 (U, N) IN.
    Returns (hs (U, T, N), cs (T, U, N), gates (T, 4U, N) = activated i|f|g|o), all new.
    """
    cdef Py_ssize_t D, T, N, U
    D, T, N, U = _sizes(x.shape[0], x.shape[1], x.shape[2], kernel.shape[0], kernel.shape[1],
                        recurrent_kernel.shape[0], recurrent_kernel.shape[1], 4)
    if bias.shape[0] != 4 * U:
        raise ValueError(f"bias must have shape ({4 * U},); received shape ({bias.shape[0]},)")
    _check_shape2("h0", h0.shape[0], h0.shape[1], U, N)
    _check_shape2("c0", c0.shape[0], c0.shape[1], U, N)
    _check_act("activation", activation)
    _check_act("recurrent_activation", recurrent_activation)
    dt = dtype_of(x[0, 0, 0])
    _check_bf16(bf16, sizeof(floating))
    # step 1: input projection of every timestep, one matmul per step, straight into the gates
    gates_a = np.empty((T, 4 * U, N), dtype=dt)
    _inputs(np.asarray(kernel), np.asarray(x), gates_a, bf16)
    hs_a = np.empty((U, T, N), dtype=dt)
    cs_a = np.empty((T, U, N), dtype=dt)
    r_a = _scratch("step", (4 * U, N), dt)
    cdef floating[:, :, ::1] g = gates_a
    cdef floating[:, :, ::1] hs = hs_a
    cdef floating[:, :, ::1] cs = cs_a
    cdef floating[:, ::1] r = r_a
    cdef cynet_rnn_loop L
    _loop_init(&L, CYNET_CELL_LSTM, activation, recurrent_activation, T, N, U, sizeof(floating))
    blas, apj, keep = _weights_for(&L, recurrent_kernel, True, N,
                                   0 if recurrent_dropout_mask is None else 4, bf16)
    L.h0, L.c0, L.b, L.hs, L.cs, L.g, L.r = &h0[0, 0], &c0[0, 0], &bias[0], &hs[0, 0, 0], &cs[0, 0, 0], &g[0, 0, 0], &r[0, 0]
    # the fused gate pass over flat rows (cynet_rnn_loop's bx): the bias repeated per sample
    bx_a = np.repeat(np.asarray(bias), N)
    hflat_a = _scratch("hflat", (U, N), dt)
    cdef floating[::1] bx = bx_a
    cdef floating[:, ::1] hflat = hflat_a
    L.bx, L.hflat = &bx[0], &hflat[0, 0]
    # per step: recurrent product R = U^T h_{t-1}, then the fused gate kernel (steps 2-5)
    _loop_mask(&L, mask, False, dt)
    rd = _loop_rdrop(&L, recurrent_dropout_mask, 4, apj, dt)
    _drive(&L, False, 4 * U, blas, hs_a, np.asarray(h0), r_a, None if rd is None else rd[0])
    return hs_a, cs_a, gates_a


def lstm_backward(const floating[:, :, :] dhs not None, const floating[:, ::1] dc_last not None,
                  const floating[:, :, ::1] x not None, const floating[:, ::1] kernel not None,
                  const floating[:, ::1] recurrent_kernel not None, const floating[:, ::1] h0 not None,
                  const floating[:, ::1] c0 not None, const floating[:, :, ::1] hs not None,
                  const floating[:, :, ::1] cs not None, const floating[:, :, ::1] gates not None,
                  int activation, int recurrent_activation, bint use_bias, bint compute_dx=True,
                  const unsigned char[:, ::1] mask=None, recurrent_dropout_mask=None, int bf16=-1):
    """Backpropagation through time for lstm_forward.

    dhs: (N, T, U) IN, any strides, gradient w.r.t. every hidden state; dc_last: (U, N) IN,
    gradient w.r.t. the final cell state; the rest as in / from forward. Returns (dx (D, T, N),
    dkernel (D, 4U), drecurrent_kernel (U, 4U), dbias (4U,) or None when not use_bias,
    dh0 (U, N), dc0 (U, N)), all new.
    """
    cdef Py_ssize_t D, T, N, U
    D, T, N, U = _sizes(x.shape[0], x.shape[1], x.shape[2], kernel.shape[0], kernel.shape[1],
                        recurrent_kernel.shape[0], recurrent_kernel.shape[1], 4)
    _check_shape2("h0", h0.shape[0], h0.shape[1], U, N)
    _check_shape2("c0", c0.shape[0], c0.shape[1], U, N)
    _check_shape2("dc_last", dc_last.shape[0], dc_last.shape[1], U, N)
    _check_shape3("hs", hs.shape[0], hs.shape[1], hs.shape[2], U, T, N)
    _check_shape3("cs", cs.shape[0], cs.shape[1], cs.shape[2], T, U, N)
    _check_shape3("gates", gates.shape[0], gates.shape[1], gates.shape[2], T, 4 * U, N)
    _check_dhs(dhs, N, T, U)
    _check_act("activation", activation)
    _check_act("recurrent_activation", recurrent_activation)
    dt = dtype_of(x[0, 0, 0])
    _check_bf16(bf16, sizeof(floating))
    dg_a = _scratch("dgates", (4 * U, T, N), dt)
    dh_a = np.zeros((U, N), dtype=dt)
    dc_a = np.array(dc_last, dtype=dt)
    cdef floating[:, :, ::1] dg = dg_a
    cdef floating[:, ::1] dh = dh_a
    cdef floating[:, ::1] dc = dc_a
    cdef cynet_rnn_loop L
    _loop_init(&L, CYNET_CELL_LSTM, activation, recurrent_activation, T, N, U, sizeof(floating))
    blas, apj, keep = _weights_for(&L, recurrent_kernel, False, N,
                                   0 if recurrent_dropout_mask is None else 4, bf16)
    L.c0, L.hs, L.cs, L.g = &c0[0, 0], <void*>&hs[0, 0, 0], <void*>&cs[0, 0, 0], <void*>&gates[0, 0, 0]
    L.dg, L.dh, L.dc = &dg[0, 0, 0], &dh[0, 0], &dc[0, 0]
    _loop_dhs(&L, dhs)
    # per step (t = T-1 .. 0): fused gate-gradient kernel (steps 1-5), then dh_{t-1} = U dg_t
    carry_a = _loop_mask(&L, mask, True, dt)
    rd = _loop_rdrop(&L, recurrent_dropout_mask, 4, apj, dt)
    _drive(&L, True, 4 * U, blas, dg_a, None, dh_a, None if rd is None else rd[0])
    return _weight_grads(dg_a, np.asarray(x), np.asarray(kernel), np.asarray(h0), np.asarray(hs),
                         use_bias, compute_dx, None if rd is None else rd[0], bf16) + (dh_a, dc_a)


# ---------------------------------------------------------------------------------------------
# GRU (reset_after=True)

def gru_forward(const floating[:, :, ::1] x not None, const floating[:, ::1] kernel not None,
                const floating[:, ::1] recurrent_kernel not None, const floating[:, ::1] bias not None,
                const floating[:, ::1] h0 not None, int activation, int recurrent_activation,
                const unsigned char[:, ::1] mask=None, recurrent_dropout_mask=None, int bf16=-1):
    """GRU over a whole sequence (Keras gate order z|r|h, reset_after=True).

    xz, xr, xh = x_t W + b_in; rz, rr, rh = h_{t-1} U + b_rec; z = ract(xz + rz);
    r = ract(xr + rr); hh = act(xh + r * rh); h_t = z * h_{t-1} + (1 - z) * hh.
    x: (D, T, N) IN; kernel (D, 3U), recurrent_kernel (U, 3U), bias (2, 3U), h0 (U, N) IN.
    Returns (hs (U, T, N), cache (T, 4U, N) = z|r|hh|rh of every step), both new.
    """
    cdef Py_ssize_t D, T, N, U
    D, T, N, U = _sizes(x.shape[0], x.shape[1], x.shape[2], kernel.shape[0], kernel.shape[1],
                        recurrent_kernel.shape[0], recurrent_kernel.shape[1], 3)
    _check_shape2("bias", bias.shape[0], bias.shape[1], 2, 3 * U)
    _check_shape2("h0", h0.shape[0], h0.shape[1], U, N)
    _check_act("activation", activation)
    _check_act("recurrent_activation", recurrent_activation)
    dt = dtype_of(x[0, 0, 0])
    _check_bf16(bf16, sizeof(floating))
    # step 1: input projection of every timestep, one matmul per step, into rows 0:3U of the cache
    cache_a = np.empty((T, 4 * U, N), dtype=dt)
    _inputs(np.asarray(kernel), np.asarray(x), cache_a[:, :3 * U], bf16)
    hs_a = np.empty((U, T, N), dtype=dt)
    r_a = _scratch("step", (3 * U, N), dt)
    cdef floating[:, :, ::1] g = cache_a
    cdef floating[:, :, ::1] hs = hs_a
    cdef floating[:, ::1] r = r_a
    cdef cynet_rnn_loop L
    _loop_init(&L, CYNET_CELL_GRU, activation, recurrent_activation, T, N, U, sizeof(floating))
    blas, apj, keep = _weights_for(&L, recurrent_kernel, True, N,
                                   0 if recurrent_dropout_mask is None else 3, bf16)
    L.h0, L.b, L.hs, L.g, L.r = &h0[0, 0], &bias[0, 0], &hs[0, 0, 0], &g[0, 0, 0], &r[0, 0]
    # per step: recurrent product R = U^T h_{t-1}, then the fused gate kernel (steps 2-5)
    _loop_mask(&L, mask, False, dt)
    rd = _loop_rdrop(&L, recurrent_dropout_mask, 3, apj, dt)
    _drive(&L, False, 4 * U, blas, hs_a, np.asarray(h0), r_a, None if rd is None else rd[0])
    return hs_a, cache_a


def gru_backward(const floating[:, :, :] dhs not None, const floating[:, :, ::1] x not None,
                 const floating[:, ::1] kernel not None, const floating[:, ::1] recurrent_kernel not None,
                 const floating[:, ::1] h0 not None, const floating[:, :, ::1] hs not None,
                 const floating[:, :, ::1] cache not None, int activation, int recurrent_activation,
                 bint use_bias, bint compute_dx=True, const unsigned char[:, ::1] mask=None,
                 recurrent_dropout_mask=None, int bf16=-1):
    """Backpropagation through time for gru_forward.

    dhs: (N, T, U) IN, any strides; the rest as in / from forward. Returns (dx (D, T, N),
    dkernel (D, 3U), drecurrent_kernel (U, 3U), dbias (2, 3U) or None when not use_bias,
    dh0 (U, N)).
    """
    cdef Py_ssize_t D, T, N, U
    D, T, N, U = _sizes(x.shape[0], x.shape[1], x.shape[2], kernel.shape[0], kernel.shape[1],
                        recurrent_kernel.shape[0], recurrent_kernel.shape[1], 3)
    _check_shape2("h0", h0.shape[0], h0.shape[1], U, N)
    _check_shape3("hs", hs.shape[0], hs.shape[1], hs.shape[2], U, T, N)
    _check_shape3("cache", cache.shape[0], cache.shape[1], cache.shape[2], T, 4 * U, N)
    _check_dhs(dhs, N, T, U)
    _check_act("activation", activation)
    _check_act("recurrent_activation", recurrent_activation)
    dt = dtype_of(x[0, 0, 0])
    _check_bf16(bf16, sizeof(floating))
    # dG rows per step: dxh | dz | dr | dhr, so that rows 0:3U are the input-side gradient (in
    # the order h, z, r) and rows U:4U the recurrent-side one (in the order z, r, h)
    dg_a = _scratch("dgates", (4 * U, T, N), dt)
    dhg_a = np.zeros((U, N), dtype=dt)   # dh_t via the recurrent matmul of step t+1
    dhd_a = np.zeros((U, N), dtype=dt)   # dh_t via the direct path z * h_t of step t+1
    cdef floating[:, :, ::1] dg = dg_a
    cdef floating[:, ::1] dhg = dhg_a
    cdef floating[:, ::1] dhd = dhd_a
    cdef cynet_rnn_loop L
    _loop_init(&L, CYNET_CELL_GRU, activation, recurrent_activation, T, N, U, sizeof(floating))
    blas, apj, keep = _weights_for(&L, recurrent_kernel, False, N,
                                   0 if recurrent_dropout_mask is None else 3, bf16)
    L.h0, L.hs, L.g = &h0[0, 0], <void*>&hs[0, 0, 0], <void*>&cache[0, 0, 0]
    L.dg, L.dh, L.dhd = &dg[0, 0, 0], &dhg[0, 0], &dhd[0, 0]
    _loop_dhs(&L, dhs)
    # per step (t = T-1 .. 0): fused gate-gradient kernel (steps 1-4), then dh_{t-1} = U dg_t
    carry_a = _loop_mask(&L, mask, True, dt)
    rd = _loop_rdrop(&L, recurrent_dropout_mask, 3, apj, dt)
    _drive(&L, True, 4 * U, blas, dg_a[U:], None, dhg_a, None if rd is None else rd[0])
    dhg_a += dhd_a
    return _gru_weight_grads(dg_a, np.asarray(x), np.asarray(kernel), np.asarray(h0), np.asarray(hs),
                             use_bias, compute_dx, None if rd is None else rd[0], bf16) + (dhg_a,)


def _gru_weight_grads(dg_a, xa, ka, h0a, hsa, use_bias, compute_dx, rdrop=None, int bf16=-1):
    """Step 6 of gru_backward: weight and input gradients from the stacked dxh|dz|dr|dhr."""
    D, T, N = xa.shape
    U = hsa.shape[0]
    g2 = dg_a.reshape(4 * U, T * N)
    gx = g2[:3 * U]             # input side, rows h|z|r
    gr = g2[U:]                 # recurrent side, rows z|r|h
    # [h_{t-1}; 1] for every (t, n): the row of ones makes the recurrent product also sum the
    # recurrent-side bias gradients (z|r|h), which saves a pass over dG (not under bf16, whose
    # products round dG: there the bias gradients are float32 row sums)
    ones = use_bias and bf16 < 0
    dk_hzr = _mm(xa.reshape(D, T * N), gx.T, bf16)
    dkernel = np.concatenate((dk_hzr[:, U:], dk_hzr[:, :U]), axis=1)
    if rdrop is None:
        hprev = _scratch("inputs", (U + ones, T, N), g2.dtype)
        hprev[:U, 0] = h0a
        hprev[:U, 1:] = hsa[:, :T - 1]
        if ones:
            hprev[U] = 1
        drk_b = _mm(hprev.reshape(U + ones, T * N), gr.T, bf16)
        drk = drk_b[:U]
    else:   # recurrent dropout: one product per gate block, the recurrent bias a row sum
        drk = _drk_dropout(h0a, hsa, gr, rdrop, bf16)
    if use_bias and (not ones or rdrop is not None):
        drk_b = np.empty((U + 1, 3 * U), dtype=g2.dtype)
        drk_b[U] = _row_sums(gr)
    dx = None
    if compute_dx:
        k_hzr = np.concatenate((ka[:, 2 * U:], ka[:, :2 * U]), axis=1)
        dx = _mm(k_hzr, gx, bf16).reshape(D, T, N)
    dbias = None
    if use_bias:
        dbias = np.empty((2, 3 * U), dtype=g2.dtype)
        dbias[1] = drk_b[U]                      # z | r | h, recurrent side
        dbias[0, :2 * U] = drk_b[U, :2 * U]      # z and r have one gradient for both biases
        dbias[0, 2 * U:] = _row_sums(gx[:U])     # h, input side
    return dx, dkernel, drk, dbias
