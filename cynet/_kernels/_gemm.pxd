# cynet_gemm.h, the single-threaded matrix products that run without the GIL (inside an OpenMP
# team or a time loop), declared once for every kernel that cimports them:
#
#   from cynet._kernels._gemm cimport gemms, gemms_tail
#
# gemms: C = A @ B with A read in place through any strides (the row scheme): a patch matrix,
#   its transpose, a weight. gemm_pack + gemm_packed: A packed once, then multiplied by many B
#   (a recurrent layer's weights at every step). The fused inline wrappers pick the float / double
#   kernel; the C names stay available for code that calls them directly (rnn.pyx).
# _gemm.pyx wraps both for Python (tests/kernels/test_gemm.py checks them against np.matmul).
from cython cimport floating

cdef extern from "cynet_gemm.h" nogil:
    const int CYNET_GEMM_VECTOR     # 1: vector kernels (GCC); 0: the plain fallback loop
    Py_ssize_t CYNET_GEMM_TAIL(Py_ssize_t K, Py_ssize_t N) noexcept
    Py_ssize_t CYNET_GEMMS_TAIL(Py_ssize_t K, Py_ssize_t N) noexcept
    int cynet_gemm_cols(Py_ssize_t M, Py_ssize_t N, Py_ssize_t sz) noexcept
    Py_ssize_t cynet_gemm_packed_size(Py_ssize_t M, Py_ssize_t K, Py_ssize_t N, Py_ssize_t sz) noexcept
    void cynet_gemm_pack_f(const float* A, Py_ssize_t sam, Py_ssize_t sak, Py_ssize_t M, Py_ssize_t K,
                           Py_ssize_t N, float* Ap) noexcept
    void cynet_gemm_pack_d(const double* A, Py_ssize_t sam, Py_ssize_t sak, Py_ssize_t M, Py_ssize_t K,
                           Py_ssize_t N, double* Ap) noexcept
    void cynet_gemm_f(const float* Ap, Py_ssize_t M, Py_ssize_t K, const float* B, Py_ssize_t sb,
                      Py_ssize_t N, float* C, Py_ssize_t sc, float* tail) noexcept
    void cynet_gemm_d(const double* Ap, Py_ssize_t M, Py_ssize_t K, const double* B, Py_ssize_t sb,
                      Py_ssize_t N, double* C, Py_ssize_t sc, double* tail) noexcept
    void cynet_gemms_f(const float* A, Py_ssize_t sa, Py_ssize_t sk, Py_ssize_t M, Py_ssize_t K,
                       const float* B, Py_ssize_t sb, Py_ssize_t N, float* C, Py_ssize_t sc,
                       float* tail) noexcept
    void cynet_gemms_d(const double* A, Py_ssize_t sa, Py_ssize_t sk, Py_ssize_t M, Py_ssize_t K,
                       const double* B, Py_ssize_t sb, Py_ssize_t N, double* C, Py_ssize_t sc,
                       double* tail) noexcept


cdef inline Py_ssize_t gemms_tail(Py_ssize_t K, Py_ssize_t N) noexcept nogil:
    """Values of scratch `tail` that gemms needs for a (K, N) B."""
    return CYNET_GEMMS_TAIL(K, N)


cdef inline void gemms(const floating* A, Py_ssize_t sa, Py_ssize_t sk, Py_ssize_t M, Py_ssize_t K,
                       const floating* B, Py_ssize_t sb, Py_ssize_t N, floating* C, Py_ssize_t sc,
                       floating* tail) noexcept nogil:
    """C (M, N; row stride sc) = A @ B with A[m, k] at A + m*sa + k*sk, B (K, N; row stride sb,
    unit column stride). tail: gemms_tail(K, N) values of scratch."""
    if floating is float:
        cynet_gemms_f(A, sa, sk, M, K, B, sb, N, C, sc, tail)
    else:
        cynet_gemms_d(A, sa, sk, M, K, B, sb, N, C, sc, tail)


cdef inline Py_ssize_t gemm_packed_size(Py_ssize_t M, Py_ssize_t K, Py_ssize_t N,
                                        Py_ssize_t itemsize) noexcept nogil:
    """Values of A packed for products with N columns (gemm_pack's Ap)."""
    return cynet_gemm_packed_size(M, K, N, itemsize)


cdef inline void gemm_pack(const floating* A, Py_ssize_t sam, Py_ssize_t sak, Py_ssize_t M,
                           Py_ssize_t K, Py_ssize_t N, floating* Ap) noexcept nogil:
    """Ap = A (A[m, k] at A + m*sam + k*sak) packed for gemm_packed with N columns."""
    if floating is float:
        cynet_gemm_pack_f(A, sam, sak, M, K, N, Ap)
    else:
        cynet_gemm_pack_d(A, sam, sak, M, K, N, Ap)


cdef inline void gemm_packed(const floating* Ap, Py_ssize_t M, Py_ssize_t K, const floating* B,
                             Py_ssize_t sb, Py_ssize_t N, floating* C, Py_ssize_t sc,
                             floating* tail) noexcept nogil:
    """C (M, N; row stride sc) = A @ B from Ap = gemm_pack(A, ..., N); tail: CYNET_GEMM_TAIL(K, N)."""
    if floating is float:
        cynet_gemm_f(Ap, M, K, B, sb, N, C, sc, tail)
    else:
        cynet_gemm_d(Ap, M, K, B, sb, N, C, sc, tail)


# cynet_bf16.h: the bfloat16 product of the mixed_bfloat16 policy (float32 in and out, A and B
# rounded to bfloat16 while packed, float32 accumulation; see the header). `native` 2 runs
# AMX-BF16's tiles (only where cynet_bf16_amx_ok()), 1 AVX512_BF16's vdpbf16ps (only where
# cynet_bf16_native_ok()), 0 the emulation (same rounding, float32 multiply-adds in vdpbf16ps's
# order). `work`: CYNET_BF16_WORK words per thread.
from libc.stdint cimport uint16_t, uint32_t

cdef extern from "cynet_bf16.h" nogil:
    const Py_ssize_t CYNET_BF16_WORK
    const int CYNET_BF16_NATIVE_BUILT
    int cynet_bf16_native_ok() noexcept
    int cynet_bf16_amx_ok() noexcept
    uint16_t cynet_bf16_round(float f) noexcept
    float cynet_bf16_roundf(float f) noexcept
    void cynet_bf16_gemm(int native, const float* A, Py_ssize_t sam, Py_ssize_t sak,
                         const float* B, Py_ssize_t sbk, Py_ssize_t sbn, float* C, Py_ssize_t sc,
                         Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, int accumulate,
                         const float* bias, uint32_t* work) noexcept

# cynet_bf16.h's "pack A once, multiply many" (the recurrent layers' step and whole-sequence
# products): cynet_bf16_path resolves a requested path to one this CPU runs; pack_a_all packs all
# of A for that path into packed_a_words(path, M, K) words; gemm_apacked multiplies it by a B
# packed per call (work: CYNET_BF16_WORK words).
cdef extern from "cynet_bf16.h" nogil:
    int cynet_bf16_path(int native) noexcept
    Py_ssize_t cynet_bf16_packed_a_words(int path, Py_ssize_t M, Py_ssize_t K) noexcept
    void cynet_bf16_pack_a_all(int path, const float* A, Py_ssize_t sam, Py_ssize_t sak, Py_ssize_t M,
                               Py_ssize_t K, uint32_t* Ap) noexcept
    void cynet_bf16_gemm_apacked(int path, const uint32_t* Ap, Py_ssize_t M, Py_ssize_t K, const float* B,
                                 Py_ssize_t sbk, Py_ssize_t sbn, float* C, Py_ssize_t sc, Py_ssize_t N,
                                 int accumulate, uint32_t* work) noexcept
# cynet_bf16.h's elementwise helpers for the convolutions' fused blocks (conv.pyx): rounded
# copies (the operands of the short products run in float32), bias + ReLU epilogue, ReLU
# gradient.
cdef extern from "cynet_bf16.h" nogil:
    void cynet_bf16_round_n(float* dst, const float* src, Py_ssize_t n) noexcept
    void cynet_bf16_bias_relu(float* y, Py_ssize_t rows, Py_ssize_t f, const float* bias, int relu) noexcept
    void cynet_bf16_relu_grad(float* g, const float* dy, const float* y, Py_ssize_t n) noexcept
    void cynet_bf16_col_sums(const float* g, Py_ssize_t rows, Py_ssize_t f, float* colsum) noexcept
