"""Compiled bfloat16 products (cynet_bf16.h) for the mixed_bfloat16 policy.

matmul: out[b] = A[b] @ B[b] for a batch of float32 matrices read through any strides (a
transposed weight, a broadcast batch of stride 0), each element rounded to bfloat16 while it is
packed, float32 accumulation. The batch and the rows of A are split over an OpenMP team (each
thread packs its own panels of B: no barrier inside the product). `native` picks vdpbf16ps or the
emulation (cynet.kernels.bf16 decides, from the CPU's features and CYNET_BF16).
"""
import numpy as np

from cython.parallel cimport prange, threadid

from cynet._kernels._gemm cimport (CYNET_BF16_WORK, cynet_bf16_amx_ok, cynet_bf16_gemm,
                                   cynet_bf16_native_ok, cynet_bf16_roundf, uint32_t)
from cynet._kernels._openmp cimport threads_for, COST_RECURRENT_MACS

__all__ = ["round_bf16", "matmul_bf16", "native_available", "amx_available"]
FLOAT32_ONLY = ("round_bf16", "matmul_bf16")   # bfloat16 products: float32 in and out by design

# rows of A per task at least: a few packed panels, so that a thread's B packing pays off
cdef Py_ssize_t _MIN_ROWS = 48


def native_available():
    """True where this build has the AVX512_BF16 kernel and this CPU runs it."""
    return bool(cynet_bf16_native_ok())


def amx_available():
    """True where this build has the AMX-BF16 kernel, this CPU has AMX-BF16 and Linux granted
    this process the tile data (asked once, here)."""
    return bool(cynet_bf16_amx_ok())


def round_bf16(const float[::1] x not None):
    """x (flat float32) rounded to the nearest bfloat16 (ties to even), as float32 values."""
    cdef Py_ssize_t i, n = x.shape[0]
    out = np.empty(n, dtype=np.float32)
    cdef float[::1] o = out
    with nogil:
        for i in range(n):
            o[i] = cynet_bf16_roundf(x[i])
    return out


cdef inline Py_ssize_t _el(Py_ssize_t stride) noexcept nogil:
    return stride // <Py_ssize_t>sizeof(float)


def matmul_bf16(const float[:, :, :] a not None, const float[:, :, :] b not None, int native, out=None,
                bias=None):
    """(batch, M, N) float32 = a (batch, M, K) @ b (batch, K, N) on bfloat16-rounded inputs.
    native: 2 AMX-BF16, 1 AVX512_BF16, 0 the emulation (a path the CPU lacks falls back to the
    next). out: None or a C-contiguous (batch, M, N) float32 array, written and returned. bias:
    None or (N,) float32 added to every row (cynet's own callers: the convolutions). The
    public function (cynet.kernels.bf16) has checked the shapes and element strides."""
    cdef Py_ssize_t nb = a.shape[0], M = a.shape[1], K = a.shape[2], N = b.shape[2]
    if out is None:
        out = np.empty((nb, M, N), dtype=np.float32)
    elif out.shape != (nb, M, N) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(nb, M, N)}")
    if nb == 0 or M == 0 or N == 0:
        return out
    cdef float[:, :, ::1] c = out
    cdef int use_native = native
    if use_native >= 2 and not cynet_bf16_amx_ok():
        use_native = 1
    if use_native >= 1 and not cynet_bf16_native_ok():
        use_native = 0
    cdef Py_ssize_t saB = _el(a.strides[0]), sam = _el(a.strides[1]), sak = _el(a.strides[2])
    cdef Py_ssize_t sbB = _el(b.strides[0]), sbk = _el(b.strides[1]), sbn = _el(b.strides[2])
    cdef int nt = threads_for(nb * M * N * K, COST_RECURRENT_MACS)
    # tasks: (matrix, block of rows); the rows split only as far as the threads need
    cdef Py_ssize_t per = M
    if nt > 1 and nb < nt:
        per = (M * nb + nt - 1) // nt
        if per < _MIN_ROWS:
            per = _MIN_ROWS
    cdef Py_ssize_t blocks = (M + per - 1) // per, tasks = nb * blocks
    if nt > tasks:
        nt = <int>tasks
    if nt < 1:
        nt = 1
    work_arr = np.empty(nt * CYNET_BF16_WORK, dtype=np.uint32)
    cdef uint32_t[::1] work = work_arr
    cdef const float* pa
    cdef const float* pb
    cdef const float[::1] bv
    cdef const float* pbias = NULL
    if bias is not None:
        bv = bias
        if bv.shape[0] != N:
            raise ValueError(f"bias must have shape ({N},)")
        pbias = &bv[0]
    cdef float* pc = &c[0, 0, 0]
    cdef Py_ssize_t t, i, m0, rows
    if K == 0:   # (an empty sum; the views have no element to point at)
        out[...] = 0 if bias is None else bias
        return out
    pa = &a[0, 0, 0]
    pb = &b[0, 0, 0]
    with nogil:
        for t in prange(tasks, schedule="static", num_threads=nt):
            i = t // blocks
            m0 = (t - i * blocks) * per
            rows = M - m0
            if rows > per:
                rows = per
            cynet_bf16_gemm(use_native, pa + i * saB + m0 * sam, sam, sak, pb + i * sbB, sbk, sbn,
                            pc + (i * M + m0) * N, N, rows, N, K, 0, pbias,
                            &work[threadid() * CYNET_BF16_WORK])
    return out
