"""Python entry to cynet_gemm.h's products (the kernels cimport them from _gemm.pxd instead).

What the tests call directly, as scikit-learn's _cython_blas is tested: tests/kernels/test_gemm.py
compares `gemm` with np.matmul for both dtypes, strided and transposed A, packed A, every tile
width and remainder, and a C with a row stride of its own.
"""
import numpy as np

from cython cimport floating

from cynet._kernels._common cimport dtype_of

__all__ = ["gemm", "scheme", "VECTOR"]

VECTOR = bool(CYNET_GEMM_VECTOR)   # the vector kernels were built (else the plain loop)


cdef Py_ssize_t _elements(Py_ssize_t stride_bytes, Py_ssize_t itemsize, str name) except? -1:
    if stride_bytes % itemsize:
        raise ValueError(f"{name}'s strides must be whole elements; received {stride_bytes} bytes")
    return stride_bytes // itemsize


def gemm(const floating[:, :] A not None, const floating[:, :] B not None, out=None,
         bint packed=False):
    """C = A @ B on cynet_gemm.h. A: (M, K), any strides (a transpose or a strided view is read in
    place); B: (K, N) of A's dtype, unit column stride, any row stride. packed: pack A first
    (gemm_pack + gemm_packed, the recurrent layers' path; otherwise gemms, the row scheme on A in
    place). out: None or a writable (M, N) array of A's dtype with unit column stride, written
    and returned; else a new C-contiguous array."""
    cdef Py_ssize_t M = A.shape[0], K = A.shape[1], N = B.shape[1], sz = sizeof(floating)
    if B.shape[0] != K:
        raise ValueError(f"B must have shape ({K}, N) to match A's shape ({M}, {K}); "
                         f"received shape ({B.shape[0]}, {N})")
    if M < 1 or K < 1 or N < 1:
        raise ValueError(f"M, K and N must be >= 1; received M={M}, K={K}, N={N}")
    if B.strides[1] != sz:
        raise ValueError("B must have a unit column stride")
    dtype = dtype_of(<floating>0)
    c_arr = np.empty((M, N), dtype=dtype) if out is None else out
    cdef floating[:, :] C = c_arr
    if (C.shape[0], C.shape[1]) != (M, N) or C.strides[1] != sz:
        raise ValueError(f"out must have shape ({M}, {N}) and a unit column stride")
    cdef Py_ssize_t sa = _elements(A.strides[0], sz, "A"), sk = _elements(A.strides[1], sz, "A")
    cdef Py_ssize_t sb = _elements(B.strides[0], sz, "B"), sc = _elements(C.strides[0], sz, "out")
    cdef floating[::1] tail
    cdef floating[::1] ap
    if packed:
        ap = np.empty(gemm_packed_size(M, K, N, sz), dtype=dtype)
        tail = np.empty(CYNET_GEMM_TAIL(K, N), dtype=dtype)
        with nogil:
            gemm_pack(&A[0, 0], sa, sk, M, K, N, &ap[0])
            gemm_packed(&ap[0], M, K, &B[0, 0], sb, N, &C[0, 0], sc, &tail[0])
    else:
        tail = np.empty(gemms_tail(K, N), dtype=dtype)
        with nogil:
            gemms(&A[0, 0], sa, sk, M, K, &B[0, 0], sb, N, &C[0, 0], sc, &tail[0])
    return c_arr


def scheme(Py_ssize_t M, Py_ssize_t N, dtype):
    """Which scheme the packed product of an (M, K) A and a (K, N) B of `dtype` runs on this
    machine: 'columns' (AVX-512 only, ragged N) or 'rows'."""
    return "columns" if cynet_gemm_cols(M, N, np.dtype(dtype).itemsize) else "rows"
