"""Compiled 2-D convolution: im2col / col2im in typed loops, the products on cynet_gemm.h.

Layout: channels_last only, explicit padding amounts (pt, pb, pl, pr), strides (sh, sw),
dilation (dh, dw). The public wrappers in cynet.kernels.conv validate and normalise (Keras
padding modes, channels_first) before calling here; the functions below are nevertheless safe
for any input (cheap checks, then loops that cannot leave their buffers).

Team path (the default on GCC builds): ONE OpenMP team per call. Thread t owns the images
[t N / nt, (t + 1) N / nt) and runs them in blocks of consecutive output rows whose patch
matrix stays in its core's cache:
  forward   per block: im2col into the thread's buffer, y_block = cols @ W on cynet_gemm.h's
            row scheme reading cols in place (rows K apart), bias added while it is in cache.
  backward  per block: im2col again; dkernel_t += cols^T @ dy_block (the same kernel reading
            cols transposed: rows 1 apart, k-th column K apart); then, when dx is wanted,
            dcols = dy_block @ W^T into the patch buffer and col2im into the block's images.
            The threads' partial dkernel / dbias are added in thread order after the team.
The products are single-threaded and need no GIL, so nothing waits beside the team: with
NumPy's BLAS, its spinning workers and the OpenMP team took turns on the same cores; and the
in-place products skip the BLAS's packing of a patch matrix that is already in cache (the
measurements: bench/README.md, "Convolution").
1-D path (height-1 convolutions with stride and dilation 1: Conv1D's view; see "the 1-D path"
below): the same team over images, with no im2col: the zero-padded row of an image is its
patch matrix read in place (rows C apart, overlapping), and dx is one more such product, on
the padded dy with the kernel flipped, instead of col2im.
BLAS path (1x1 windows whose patch matrix is x itself, batches of fewer images than the
threads the work calls for, builds without GCC vector extensions, _set_tuning(own_gemm=False)): blocks of output rows spanning images; per block an OpenMP
region for im2col (prange over output rows), one np.matmul with out=, and for the backward
col2im with one task per input row, so the threads' writes are disjoint. No NumPy or BLAS call
happens inside a nogil region; the OpenMP regions and the GEMMs alternate.
"""
import numpy as np

from cython cimport floating
from cython.parallel cimport prange, threadid

from cynet._kernels._check cimport CY_AT, CY_SPAN, CYNET_CHECKED
from cynet._kernels._common cimport add_n, copy_n, dtype_of, zero_n
from cynet._kernels._gemm cimport CYNET_GEMM_VECTOR, gemms, gemms_tail
from cynet._kernels._omp cimport omp_get_max_threads
from cynet._kernels._openmp cimport threads_for, COST_CONV
from cynet._kernels._openmp import set_thread_policy as _set_thread_policy, thread_policy as _thread_policy
from cynet._kernels._windows import conv_geometry as _geometry

__all__ = ["im2col", "col2im", "conv2d_forward", "conv2d_backward", "conv2d_transpose_forward",
           "conv2d_transpose_backward"]

# float32 by design, outside __all__ (below): the mixed_bfloat16 convolution (cynet/_kernels/conv_bf16.py
# calls it) and the one-pass convolution, ReLU and max pooling (cynet.kernels.conv calls it)
FLOAT32_ONLY = ("conv2d_forward_bf16", "conv2d_backward_bf16", "conv2d_relu_maxpool_forward",
                "conv2d_relu_maxpool_backward")
_CHECKED = bool(CYNET_CHECKED)   # built with CYNET_DEBUG_BUILD=1: CY_AT / CY_SPAN check the loops


cdef struct Geom:
    Py_ssize_t N, H, W, C, KH, KW, OH, OW, pt, pl, sh, sw, dh, dw


# Tuning (see _set_tuning). On one thread, and for each thread of a team, the patch matrix of
# a block takes about _block_bytes, so that it, the block's output and the weights stay in the
# core's L2 cache (the size is not critical within a factor of a few: bench/README.md). On the BLAS path
# with nt > 1 threads every block costs a few thread hand-overs (an OpenMP region, then the
# BLAS's own threads), so blocks grow to nt * _block_bytes_mt. A block has at least nt * _min_block_m rows (the GEMM's M)
# when the batch has that many; a parallel region's team size is the thread policy's (COST_CONV).
cdef Py_ssize_t _block_bytes = 1 << 19
cdef Py_ssize_t _block_bytes_mt = 1 << 21
cdef Py_ssize_t _min_block_m = 256
# Products on cynet_gemm.h inside one OpenMP team (see _team_forward), else NumPy's BLAS.
cdef bint _own_gemm = CYNET_GEMM_VECTOR   # the plain fallback would be slower than the BLAS


def _set_tuning(block_bytes=None, min_block_m=None, min_work=None, block_bytes_mt=None, own_gemm=None):
    """Developer knob for benchmarking the blocking and the product path (and for the tests,
    which run both paths); returns the previous values."""
    global _block_bytes, _min_block_m, _block_bytes_mt, _own_gemm
    old = (_block_bytes, _min_block_m, _thread_policy()["conv"], _block_bytes_mt, _own_gemm)
    if own_gemm is not None:
        _own_gemm = bool(own_gemm) and CYNET_GEMM_VECTOR
    if block_bytes is not None:
        _block_bytes = max(1, int(block_bytes))
    if block_bytes_mt is not None:
        _block_bytes_mt = max(1, int(block_bytes_mt))
    if min_block_m is not None:
        _min_block_m = max(1, int(min_block_m))
    if min_work is not None:
        _set_thread_policy(conv=max(1, int(min_work)))
    return old


# ----------------------------------------------------------------------------------------------
# inner loops

cdef extern from "cynet_col2im.h" nogil:
    void cynet_col2im_add_f(float* dxr, const float* s, Py_ssize_t OW, Py_ssize_t K, Py_ssize_t C,
                            Py_ssize_t iw0, Py_ssize_t sw, Py_ssize_t W) noexcept
    void cynet_col2im_add_d(double* dxr, const double* s, Py_ssize_t OW, Py_ssize_t K, Py_ssize_t C,
                            Py_ssize_t iw0, Py_ssize_t sw, Py_ssize_t W) noexcept


cdef void _im2col_row(const floating* x, floating* dst, Py_ssize_t r, Geom g) noexcept nogil:
    """Patch rows of output row r = n*OH + oh: OW rows of K = KH*KW*C elements at dst.
    (CY_SPAN: every run read from x and written to dst checked in the debug build.)"""
    cdef Py_ssize_t n = r // g.OH
    cdef Py_ssize_t oh = r - n * g.OH
    cdef Py_ssize_t C = g.C, K = g.KH * g.KW * g.C, seg = g.KW * g.C, HWC = g.H * g.W * g.C
    cdef Py_ssize_t ow, kh, kw, ih, iw, iw0
    cdef const floating* xn = x + CY_SPAN(n * HWC, HWC, g.N * HWC)
    cdef floating* d
    for ow in range(g.OW):
        iw0 = ow * g.sw - g.pl
        d = dst + CY_SPAN(ow * K, K, g.OW * K)
        if g.dw == 1 and iw0 >= 0 and iw0 + g.KW <= g.W:
            # the KW*C elements of each window row are contiguous in x
            for kh in range(g.KH):
                ih = oh * g.sh - g.pt + kh * g.dh
                if ih >= 0 and ih < g.H:
                    copy_n(d + kh * seg, xn + CY_SPAN((ih * g.W + iw0) * C, seg, HWC), seg)
                else:
                    zero_n(d + kh * seg, seg)
        else:
            for kh in range(g.KH):
                ih = oh * g.sh - g.pt + kh * g.dh
                if ih < 0 or ih >= g.H:
                    zero_n(d + kh * seg, seg)
                    continue
                for kw in range(g.KW):
                    iw = iw0 + kw * g.dw
                    if iw >= 0 and iw < g.W:
                        copy_n(d + kh * seg + kw * C, xn + CY_SPAN((ih * g.W + iw) * C, C, HWC), C)
                    else:
                        zero_n(d + kh * seg + kw * C, C)


cdef void _col2im_row(const floating* dcols, floating* dx, Py_ssize_t n, Py_ssize_t ih,
                      Py_ssize_t r0, Py_ssize_t r1, Geom g) noexcept nogil:
    """Add into input row (n, ih) of dx every contribution of the patch-gradient rows of output
    rows [r0, r1) (output row r at dcols + (r - r0)*OW*K)."""
    cdef Py_ssize_t C = g.C, K = g.KH * g.KW * g.C, seg = g.KW * g.C
    cdef Py_ssize_t kh, kw, t, oh, ow, iw0, iw, oh_lo, oh_hi
    cdef Py_ssize_t top = ih + g.pt               # the row's index in the padded input
    cdef Py_ssize_t ext = (g.KH - 1) * g.dh
    cdef floating* dxr = dx + CY_SPAN((n * g.H + ih) * g.W * C, g.W * C, g.N * g.H * g.W * C)
    cdef const floating* src
    cdef const floating* s
    # output rows oh whose window covers the row: 0 <= top - oh*sh <= ext (a multiple of dh);
    # two divisions per input row, none per window row
    oh_lo = 0 if top <= ext else (top - ext + g.sh - 1) // g.sh
    oh_hi = top // g.sh
    if oh_hi > g.OH - 1:
        oh_hi = g.OH - 1
    if oh_lo < r0 - n * g.OH:                       # only the rows of this block
        oh_lo = r0 - n * g.OH
    if oh_hi > r1 - 1 - n * g.OH:
        oh_hi = r1 - 1 - n * g.OH
    for oh in range(oh_lo, oh_hi + 1):
        t = top - oh * g.sh
        if g.dh == 1:
            kh = t
        elif t % g.dh == 0:
            kh = t // g.dh
        else:
            continue
        src = (dcols + CY_SPAN((n * g.OH + oh - r0) * g.OW * K, g.OW * K, (r1 - r0) * g.OW * K)
               + CY_AT(kh, g.KH) * seg)
        # kw outside, ow inside: successive adds go to different pixels of the row. (Adding
        # whole overlapping KW*C segments makes each vector load wait on the previous,
        # partially overlapping store when C is not a multiple of the vector width.)
        for kw in range(g.KW):
            s = src + kw * C
            iw0 = kw * g.dw - g.pl
            if C == 1:
                for ow in range(g.OW):
                    iw = iw0 + ow * g.sw
                    if iw >= 0 and iw < g.W:
                        dxr[CY_AT(iw, g.W)] += s[ow * K]
            elif CYNET_CHECKED:
                for ow in range(g.OW):
                    iw = iw0 + ow * g.sw
                    if iw >= 0 and iw < g.W:
                        add_n(dxr + CY_SPAN(iw * C, C, g.W * C), s + ow * K, C)
            elif floating is float:   # (vectorised clones; the same adds)
                cynet_col2im_add_f(dxr, s, g.OW, K, C, iw0, g.sw, g.W)
            else:
                cynet_col2im_add_d(dxr, s, g.OW, K, C, iw0, g.sw, g.W)


cdef void _im2col_block(const floating* x, floating* cols, Py_ssize_t r0, Py_ssize_t r1,
                        Geom g) noexcept nogil:
    """cols[(r - r0)*OW : (r - r0 + 1)*OW] = patches of output row r, for r in [r0, r1)."""
    cdef Py_ssize_t r
    cdef Py_ssize_t rowlen = g.OW * g.KH * g.KW * g.C
    cdef int nt = threads_for((r1 - r0) * rowlen, COST_CONV)
    for r in prange(r0, r1, schedule="static", num_threads=nt):
        _im2col_row(x, cols + CY_SPAN((r - r0) * rowlen, rowlen, (r1 - r0) * rowlen), r, g)


cdef void _col2im_block(const floating* dcols, floating* dx, Py_ssize_t r0, Py_ssize_t r1,
                        Geom g) noexcept nogil:
    """dx += col2im of the patch gradients of output rows [r0, r1): one task per input row
    (n, ih) of the images those rows belong to, so the threads write disjoint rows of dx."""
    cdef Py_ssize_t n0 = r0 // g.OH
    cdef Py_ssize_t n1 = (r1 - 1) // g.OH + 1
    cdef Py_ssize_t j, n
    cdef Py_ssize_t tasks = (n1 - n0) * g.H
    cdef int nt = threads_for((r1 - r0) * g.OW * g.KH * g.KW * g.C, COST_CONV)
    for j in prange(tasks, schedule="static", num_threads=nt):
        n = n0 + j // g.H
        _col2im_row(dcols, dx, n, j - (n - n0) * g.H, r0, r1, g)


cdef void _sum_rows(const floating* a, floating* scratch, double* acc, Py_ssize_t m,
                    Py_ssize_t F) noexcept nogil:
    """acc[f] += sum_i a[i, f] for an (m, F) row-major block. scratch: nt*F elements, each
    thread sums its rows into its own F of them (a loop inside an OpenMP region, so that the
    compiler vectorizes it)."""
    cdef Py_ssize_t i, f
    cdef int t
    cdef int nt = threads_for(m * F, COST_CONV)
    zero_n(scratch, nt * F)
    for i in prange(m, schedule="static", num_threads=nt):
        add_n(scratch + CY_SPAN(threadid() * F, F, nt * F), a + CY_SPAN(i * F, F, m * F), F)
    for t in range(nt):
        for f in range(F):
            acc[f] += scratch[t * F + f]


cdef void _add_bias(floating* y, const floating* b, Py_ssize_t m, Py_ssize_t F) noexcept nogil:
    """y[i, :] += b for the m rows of an (m, F) row-major block."""
    cdef Py_ssize_t i
    for i in prange(m, schedule="static", num_threads=threads_for(m * F, COST_CONV)):
        add_n(y + CY_SPAN(i * F, F, m * F), b, F)


# ----------------------------------------------------------------------------------------------
# one team for a whole pass: each thread owns a range of images and runs im2col, its products
# (cynet_gemm.h, single-threaded, no GIL) and col2im on them, in blocks of br output rows whose
# patch matrix stays in its core's cache. No BLAS threads wait beside the team, and images
# never overlap in dx, so the threads' writes are disjoint.

cdef inline Py_ssize_t _team_scratch(Geom g, Py_ssize_t F, Py_ssize_t br) noexcept nogil:
    """Values of scratch per thread: the block's patch matrix, a (K, F) partial product, and
    the largest `tail` any of the three products needs."""
    cdef Py_ssize_t K = g.KH * g.KW * g.C, m = br * g.OW
    cdef Py_ssize_t t = gemms_tail(K, F)
    if gemms_tail(m, F) > t:
        t = gemms_tail(m, F)
    if gemms_tail(F, K) > t:
        t = gemms_tail(F, K)
    return m * K + K * F + t


cdef void _team_forward(const floating* x, const floating* w, const floating* b, floating* y,
                        floating* work, Geom g, Py_ssize_t F, Py_ssize_t br, int nt) noexcept nogil:
    """y = conv(x, w) (+ b when b is not NULL); w (K, F). work: nt * _team_scratch values."""
    cdef Py_ssize_t K = g.KH * g.KW * g.C, OW = g.OW, ws = _team_scratch(g, F, br)
    cdef Py_ssize_t t, r0, r1, r, hi, i, m
    cdef floating* cols
    for t in prange(nt, schedule="static", num_threads=nt):
        cols = work + t * ws
        r0 = (t * g.N) // nt * g.OH
        hi = ((t + 1) * g.N) // nt * g.OH
        while r0 < hi:
            r1 = r0 + br
            if r1 > hi:
                r1 = hi
            m = (r1 - r0) * OW
            for r in range(r0, r1):
                _im2col_row(x, cols + CY_SPAN((r - r0) * OW * K, OW * K, br * OW * K), r, g)
            gemms(cols, K, 1, m, K, w, F, F, y + CY_SPAN(r0 * OW * F, m * F, g.N * g.OH * OW * F), F,
                  cols + m * K + K * F)
            if b != NULL:
                for i in range(m):
                    add_n(y + (r0 * OW + i) * F, b, F)
            r0 = r1


cdef void _team_backward(const floating* x, const floating* dy, const floating* wt, floating* dx,
                         floating* work, floating* dkp, double* dbp, Geom g, Py_ssize_t F,
                         Py_ssize_t br, int nt, bint use_bias) noexcept nogil:
    """Thread t's partial dkernel (K, F) at dkp + t*K*F and dbias (F doubles) at dbp + t*F;
    dx += col2im(dy @ w^T) unless dx is NULL (wt: w^T, (F, K)). work: nt * _team_scratch."""
    cdef Py_ssize_t K = g.KH * g.KW * g.C, OW = g.OW, ws = _team_scratch(g, F, br)
    cdef Py_ssize_t t, r0, r1, hi, r, i, f, m, n, ih
    cdef floating* cols
    cdef floating* part
    cdef floating* tail
    cdef floating* dk
    cdef double* db
    cdef const floating* dyb
    for t in prange(nt, schedule="static", num_threads=nt):
        cols = work + t * ws
        dk = dkp + t * K * F
        db = dbp + t * F
        r0 = (t * g.N) // nt * g.OH
        hi = ((t + 1) * g.N) // nt * g.OH
        zero_n(dk, K * F)
        for f in range(F):
            db[f] = 0.0
        while r0 < hi:
            r1 = r0 + br
            if r1 > hi:
                r1 = hi
            m = (r1 - r0) * OW
            part = cols + m * K
            tail = part + K * F
            dyb = dy + CY_SPAN(r0 * OW * F, m * F, g.N * g.OH * OW * F)
            for r in range(r0, r1):
                _im2col_row(x, cols + CY_SPAN((r - r0) * OW * K, OW * K, br * OW * K), r, g)
            # dkernel += cols^T @ dy_block (A = cols^T: rows k adjacent, k-th row strided by K)
            gemms(cols, 1, K, K, m, dyb, F, F, part, F, tail)
            add_n(dk, part, K * F)
            if use_bias:
                for i in range(m):
                    for f in range(F):
                        db[f] += dyb[i * F + f]
            if dx != NULL:
                # dcols = dy_block @ w^T into the patch buffer, then scattered back into dx
                gemms(dyb, F, 1, m, F, wt, K, K, cols, K, tail)
                for n in range(r0 // g.OH, (r1 - 1) // g.OH + 1):
                    for ih in range(g.H):
                        _col2im_row(cols, dx, n, ih, r0, r1, g)
            r0 = r1


# ----------------------------------------------------------------------------------------------
# the 1-D path: a height-1 convolution (Conv1D's view) with stride and dilation 1. Output row l
# of an image reads the K = KW*C contiguous values of the zero-padded input from (l*C) on, so the
# patch matrix is the padded image itself read with a row stride of C (rows overlapping): the
# products read it in place (cynet_gemm.h's strided A) after one copy of the image into a
# padded buffer, with no im2col (KW times the image) and no col2im. The input gradient is the
# same kind of product on the padded dy with the kernel flipped: dx = dypad(rows F apart) @ wf,
# wf[(j, f), c] = w[KW-1-j, c, f], written straight into dx. Thread t owns images
# [t N / nt, (t + 1) N / nt), one image at a time.

cdef inline Py_ssize_t _right_pad_1d(Geom g) noexcept nogil:
    """pr of a 1-D geometry (stride 1): OW = W + pl + pr - KW + 1."""
    return g.OW + g.KW - 1 - g.W - g.pl


cdef inline bint _is_row_1d(Geom g) noexcept nogil:
    """True when the 1-D path runs this geometry: one row, stride and dilation 1 along it, no
    empty axis, and paddings of at most KW - 1 on each side (the flipped product's are >= 0)."""
    cdef Py_ssize_t pr = _right_pad_1d(g)
    return (g.H == 1 and g.KH == 1 and g.OH == 1 and g.pt == 0 and g.sw == 1 and g.dw == 1
            and g.N >= 1 and g.W >= 1 and g.C >= 1 and g.OW >= 1
            and 0 <= g.pl <= g.KW - 1 and 0 <= pr <= g.KW - 1)


cdef inline Py_ssize_t _scratch_1d(Geom g, Py_ssize_t F) noexcept nogil:
    """Values of scratch per thread of the 1-D path: the padded image, the padded dy, a (K, F)
    partial product, and the largest `tail` its products need."""
    cdef Py_ssize_t K = g.KW * g.C, Wp = g.W + g.pl + _right_pad_1d(g), Dp = g.W + g.KW - 1
    cdef Py_ssize_t t = gemms_tail(K, F)
    if gemms_tail(g.OW, F) > t:
        t = gemms_tail(g.OW, F)
    if gemms_tail(g.KW * F, g.C) > t:
        t = gemms_tail(g.KW * F, g.C)
    return Wp * g.C + Dp * F + K * F + t


cdef inline void _pad_row(const floating* src, Py_ssize_t rows, Py_ssize_t before, Py_ssize_t after,
                          Py_ssize_t width, floating* dst) noexcept nogil:
    """dst = `before` zero rows, the `rows` rows of src, `after` zero rows (rows of `width`)."""
    zero_n(dst, before * width)
    copy_n(dst + before * width, src, rows * width)
    zero_n(dst + (before + rows) * width, after * width)


cdef void _team_forward_1d(const floating* x, const floating* w, const floating* b, floating* y,
                           floating* work, Geom g, Py_ssize_t F, int nt) noexcept nogil:
    """y = conv(x, w) (+ b when b is not NULL) on the 1-D path; w (K, F). work: nt * _scratch_1d."""
    cdef Py_ssize_t C = g.C, K = g.KW * g.C, OW = g.OW, W = g.W, ws = _scratch_1d(g, F)
    cdef Py_ssize_t pr = _right_pad_1d(g), Wp = W + g.pl + pr
    cdef Py_ssize_t t, n, i
    cdef floating* xp
    cdef floating* yn
    for t in prange(nt, schedule="static", num_threads=nt):
        xp = work + t * ws
        for n in range((t * g.N) // nt, ((t + 1) * g.N) // nt):
            _pad_row(x + CY_SPAN(n * W * C, W * C, g.N * W * C), W, g.pl, pr, C, xp)
            yn = y + CY_SPAN(n * OW * F, OW * F, g.N * OW * F)
            gemms(xp, C, 1, OW, K, w, F, F, yn, F, xp + Wp * C + (W + g.KW - 1) * F + K * F)
            if b != NULL:
                for i in range(OW):
                    add_n(yn + i * F, b, F)


cdef void _team_backward_1d(const floating* x, const floating* dy, const floating* wf, floating* dx,
                            floating* work, floating* dkp, double* dbp, Geom g, Py_ssize_t F, int nt,
                            bint use_bias) noexcept nogil:
    """Thread t's partial dkernel (K, F) at dkp + t*K*F and dbias (F doubles) at dbp + t*F, and
    dx = dypad @ wf unless dx is NULL (wf: the flipped kernel, (KW*F, C)). work: nt * _scratch_1d."""
    cdef Py_ssize_t C = g.C, K = g.KW * g.C, OW = g.OW, W = g.W, ws = _scratch_1d(g, F)
    cdef Py_ssize_t pr = _right_pad_1d(g), Wp = W + g.pl + pr
    cdef Py_ssize_t t, n, i, f
    cdef floating* xp
    cdef floating* dyp
    cdef floating* part
    cdef floating* tail
    cdef floating* dk
    cdef double* db
    cdef const floating* dyn
    for t in prange(nt, schedule="static", num_threads=nt):
        xp = work + t * ws
        dyp = xp + Wp * C
        part = dyp + (W + g.KW - 1) * F
        tail = part + K * F
        dk = dkp + t * K * F
        db = dbp + t * F
        zero_n(dk, K * F)
        for f in range(F):
            db[f] = 0.0
        for n in range((t * g.N) // nt, ((t + 1) * g.N) // nt):
            dyn = dy + CY_SPAN(n * OW * F, OW * F, g.N * OW * F)
            _pad_row(x + CY_SPAN(n * W * C, W * C, g.N * W * C), W, g.pl, pr, C, xp)
            # dkernel += patches^T @ dy_n (patches^T: rows 1 apart, its k-th column C apart)
            gemms(xp, 1, C, K, OW, dyn, F, F, part, F, tail)
            add_n(dk, part, K * F)
            if use_bias:
                # the image's column sums in x's dtype (vectorised), then into float64
                copy_n(part, dyn, F)
                for i in range(1, OW):
                    add_n(part, dyn + i * F, F)
                for f in range(F):
                    db[f] += part[f]
            if dx != NULL:
                _pad_row(dyn, OW, g.KW - 1 - g.pl, g.KW - 1 - pr, F, dyp)
                gemms(dyp, F, 1, W, g.KW * F, wf, C, C, dx + CY_SPAN(n * W * C, W * C, g.N * W * C), C, tail)


# ----------------------------------------------------------------------------------------------
# geometry (its checks: _windows.conv_geometry, Python ints, so nothing overflows) and blocking

cdef Geom _make_geom(Py_ssize_t N, Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t KH,
                     Py_ssize_t KW, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t pt, Py_ssize_t pl,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw):
    cdef Geom g
    g.N, g.H, g.W, g.C, g.KH, g.KW, g.OH, g.OW = N, H, W, C, KH, KW, OH, OW
    g.pt, g.pl, g.sh, g.sw, g.dh, g.dw = pt, pl, sh, sw, dh, dw
    return g


cdef Py_ssize_t _block_rows(Geom g, Py_ssize_t itemsize, bint per_thread=False):
    """Output rows per block (see the tuning notes at the top); per_thread: the block of one
    thread of a team (_team_forward, _team_backward), sized as on one thread."""
    cdef Py_ssize_t nt = 1 if per_thread else omp_get_max_threads()
    cdef Py_ssize_t rowlen = g.OW * g.KH * g.KW * g.C
    cdef Py_ssize_t target = _block_bytes
    if nt > 1:
        target = nt * _block_bytes_mt
    else:
        nt = 1
    cdef Py_ssize_t br = target // (rowlen * itemsize)
    cdef Py_ssize_t need = (nt * _min_block_m + g.OW - 1) // g.OW
    if br < need:
        br = need
    if br < 1:
        br = 1
    if br > g.N * g.OH:
        br = g.N * g.OH
    return br


def _debug_im2col_row(const floating[:, :, :, ::1] x, Py_ssize_t r, Py_ssize_t KH, Py_ssize_t KW,
                      Py_ssize_t pt, Py_ssize_t pb, Py_ssize_t pl, Py_ssize_t pr, Py_ssize_t sh,
                      Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw):
    """Debug-build test hook: the patch rows (OW, KH*KW*C) of output row r, with r NOT checked
    against the batch, so that a test can show the checked build (CYNET_DEBUG_BUILD=1) aborting
    at the overrun that r >= N * OH would be (tests/kernels/test_debug_build.py). RuntimeError in
    a normal build, where nothing would stop it."""
    if not CYNET_CHECKED:
        raise RuntimeError("_debug_im2col_row runs only in a CYNET_DEBUG_BUILD=1 build")
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    OH, OW = _geometry(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    cdef Geom g = _make_geom(N, H, W, C, KH, KW, OH, OW, pt, pl, sh, sw, dh, dw)
    cols = np.zeros((OW, KH * KW * C), dtype=dtype_of(<floating>0))
    cdef floating[:, ::1] c = cols
    with nogil:
        _im2col_row(&x[0, 0, 0, 0], &c[0, 0], r, g)
    return cols


cdef const floating* _bias_data(const floating[::1] b, Py_ssize_t F) except? NULL:
    """The data of a bias of F values, or NULL for None (no bias); ValueError naming bias otherwise."""
    if b is None:
        return NULL
    if b.shape[0] != F:
        raise ValueError(f"bias must have shape ({F},); received shape ({b.shape[0]},)")
    return &b[0]


def _check_conv_args(C, kshape):
    if kshape[2] != C:
        raise ValueError(f"kernel must have shape (KH, KW, {C}, F) to match x's channels; "
                         f"received shape {kshape}")
    if kshape[3] < 1:
        raise ValueError(f"kernel must not be empty; received shape {kshape}")


cdef inline int _team_size(Geom g) noexcept nogil:
    """Threads of a team pass (the thread policy's count for its patch elements, as the BLAS path's regions), or
    0 when the batch has fewer images than that: a team owns whole images, so it would leave
    threads idle, and the BLAS path splits rows instead, which is then faster (bench/README.md,
    "Convolution")."""
    cdef int nt = threads_for(g.N * g.OH * g.OW * g.KH * g.KW * g.C, COST_CONV)
    return nt if nt <= g.N else 0


cdef inline int _team_size_1d(Geom g) noexcept nogil:
    """Threads of a 1-D path pass: the thread policy's count for its patch elements, at most one
    per image."""
    cdef int nt = threads_for(g.N * g.OW * g.KW * g.C, COST_CONV)
    return nt if nt <= g.N else <int>g.N


cdef inline bint _is_identity(Geom g) noexcept nogil:
    """True when the patch matrix is x itself (1x1 window, stride 1, no padding)."""
    return (g.KH == 1 and g.KW == 1 and g.sh == 1 and g.sw == 1
            and g.OH == g.H and g.OW == g.W and g.pt == 0 and g.pl == 0)


# ----------------------------------------------------------------------------------------------
# entry points

def im2col(const floating[:, :, :, ::1] x, Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t pt,
           Py_ssize_t pb, Py_ssize_t pl, Py_ssize_t pr, Py_ssize_t sh, Py_ssize_t sw,
           Py_ssize_t dh, Py_ssize_t dw):
    """Patch matrix of a channels_last batch.

    x: (N, H, W, C) float32|float64, C-contiguous, IN. Returns cols (N*OH*OW, KH*KW*C) of x's
    dtype, a new array; row n*OH*OW + oh*OW + ow holds the window at (oh, ow) in (kh, kw, c)
    order, with zeros where the window covers padding.
    """
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    OH, OW = _geometry(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    cdef Geom g = _make_geom(N, H, W, C, KH, KW, OH, OW, pt, pl, sh, sw, dh, dw)
    cols = np.empty((N * g.OH * g.OW, KH * KW * C), dtype=dtype_of(<floating>0))
    cdef floating[:, ::1] c = cols
    with nogil:
        _im2col_block(&x[0, 0, 0, 0], &c[0, 0], 0, N * g.OH, g)
    return cols


def col2im(const floating[:, ::1] cols, Py_ssize_t N, Py_ssize_t H, Py_ssize_t W, Py_ssize_t C,
           Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t pt, Py_ssize_t pb, Py_ssize_t pl,
           Py_ssize_t pr, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw):
    """Adjoint of im2col: scatter-add the patch rows back into a (N, H, W, C) image batch.

    cols: (N*OH*OW, KH*KW*C) float32|float64, C-contiguous, IN. Returns dx (N, H, W, C) of
    cols' dtype, a new array; the entries that fell on padding are dropped.
    """
    OH, OW = _geometry(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    if (cols.shape[0], cols.shape[1]) != (N * OH * OW, KH * KW * C):
        raise ValueError(f"cols must have shape {(N * OH * OW, KH * KW * C)}; "
                         f"received shape {(cols.shape[0], cols.shape[1])}")
    cdef Geom g = _make_geom(N, H, W, C, KH, KW, OH, OW, pt, pl, sh, sw, dh, dw)
    dx = np.zeros((N, H, W, C), dtype=dtype_of(<floating>0))
    cdef floating[:, :, :, ::1] d = dx
    with nogil:
        _col2im_block(&cols[0, 0], &d[0, 0, 0, 0], 0, N * g.OH, g)
    return dx


def conv2d_forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] kernel, bias,
                   Py_ssize_t pt, Py_ssize_t pb, Py_ssize_t pl, Py_ssize_t pr,
                   Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw):
    """y = conv(x, kernel) + bias, channels_last, cross-correlation as in Keras.

    x: (N, H, W, C) float32|float64, C-contiguous, IN. kernel: (KH, KW, C, F) same dtype,
    C-contiguous, IN. bias: (F,) same dtype or None, IN. pt, pb, pl, pr: zero padding
    top/bottom/left/right; sh, sw: strides; dh, dw: dilation. Returns y (N, OH, OW, F), new.
    """
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t KH = kernel.shape[0], KW = kernel.shape[1], F = kernel.shape[3]
    _check_conv_args(C, (KH, KW, kernel.shape[2], F))
    OH, OW = _geometry(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    cdef Geom g = _make_geom(N, H, W, C, KH, KW, OH, OW, pt, pl, sh, sw, dh, dw)
    cdef const floating[::1] b
    if bias is not None:
        b = bias
        if b.shape[0] != F:
            raise ValueError(f"bias must have shape ({F},); received shape ({b.shape[0]},)")
    dtype = dtype_of(<floating>0)
    cdef Py_ssize_t K = KH * KW * C
    cdef Py_ssize_t rows = N * g.OH, OW_ = g.OW
    cdef Py_ssize_t br = _block_rows(g, sizeof(floating))
    cdef Py_ssize_t r0, r1
    wmat = np.asarray(kernel).reshape(K, F)
    y = np.empty((N, g.OH, g.OW, F), dtype=dtype)
    y2 = y.reshape(rows * OW_, F)
    cdef floating[:, ::1] yv = y2
    cdef floating[:, ::1] cv
    cdef bint identity = _is_identity(g)
    cdef int nt
    cdef floating[::1] work
    cdef const floating* bp = NULL
    if bias is not None:
        bp = &b[0]
    if _own_gemm and _is_row_1d(g):
        nt = _team_size_1d(g)
        work = np.empty(nt * _scratch_1d(g, F), dtype=dtype)
        with nogil:
            _team_forward_1d(&x[0, 0, 0, 0], &kernel[0, 0, 0, 0], bp, &yv[0, 0], &work[0], g, F, nt)
        return y
    nt = _team_size(g) if _own_gemm and not identity else 0
    if nt > 0:
        br = _block_rows(g, sizeof(floating), 1)
        work = np.empty(nt * _team_scratch(g, F, br), dtype=dtype)
        with nogil:
            _team_forward(&x[0, 0, 0, 0], &kernel[0, 0, 0, 0], bp, &yv[0, 0], &work[0], g, F, br, nt)
        return y
    if identity:
        x2 = np.asarray(x).reshape(N * H * W, C)
    else:
        cols = np.empty((br * OW_, K), dtype=dtype)
        cv = cols
    for r0 in range(0, rows, br):
        r1 = min(r0 + br, rows)
        if identity:
            np.matmul(x2[r0 * OW_:r1 * OW_], wmat, out=y2[r0 * OW_:r1 * OW_])
        else:
            with nogil:
                _im2col_block(&x[0, 0, 0, 0], &cv[0, 0], r0, r1, g)
            np.matmul(cols[:(r1 - r0) * OW_], wmat, out=y2[r0 * OW_:r1 * OW_])
        if bias is not None:
            with nogil:
                _add_bias(&yv[r0 * OW_, 0], &b[0], (r1 - r0) * OW_, F)
    return y


def conv2d_backward(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] x,
                    const floating[:, :, :, ::1] kernel, Py_ssize_t pt, Py_ssize_t pb,
                    Py_ssize_t pl, Py_ssize_t pr, Py_ssize_t sh, Py_ssize_t sw,
                    Py_ssize_t dh, Py_ssize_t dw, bint use_bias, bint compute_dx):
    """Gradients of conv2d_forward.

    dy: (N, OH, OW, F) float32|float64, C-contiguous, IN (the upstream gradient). x, kernel and
    the geometry as in conv2d_forward. Returns (dx, dkernel, dbias): dx (N, H, W, C) or None
    when compute_dx is false; dkernel (KH, KW, C, F); dbias (F,) or None when use_bias is
    false. All new arrays of x's dtype.
    """
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t KH = kernel.shape[0], KW = kernel.shape[1], F = kernel.shape[3]
    _check_conv_args(C, (KH, KW, kernel.shape[2], F))
    OH, OW = _geometry(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    if (dy.shape[0], dy.shape[1], dy.shape[2], dy.shape[3]) != (N, OH, OW, F):
        raise ValueError(f"dy must have shape {(N, OH, OW, F)}; received shape "
                         f"{(dy.shape[0], dy.shape[1], dy.shape[2], dy.shape[3])}")
    cdef Geom g = _make_geom(N, H, W, C, KH, KW, OH, OW, pt, pl, sh, sw, dh, dw)
    dtype = dtype_of(<floating>0)
    cdef Py_ssize_t K = KH * KW * C
    cdef Py_ssize_t rows = N * g.OH, OW_ = g.OW
    cdef Py_ssize_t br = _block_rows(g, sizeof(floating))
    cdef Py_ssize_t r0, r1, m
    cdef bint identity = _is_identity(g)
    cdef bint row1d = _own_gemm and _is_row_1d(g)
    cdef floating[:, ::1] cv
    cdef floating[:, :, :, ::1] dxv
    wmat = np.asarray(kernel).reshape(K, F)
    dx = None
    if compute_dx:
        # (fully written by the identity and 1-D paths, added into by col2im)
        dx = np.empty((N, H, W, C), dtype=dtype) if identity or row1d else np.zeros((N, H, W, C), dtype=dtype)
        dxv = dx
        dx2 = dx.reshape(N * H * W, C)
    cdef int nt
    cdef floating[::1] work
    cdef floating[:, :, ::1] dkp
    cdef double[:, ::1] dbp
    cdef const floating[:, ::1] wt
    cdef floating* dxp = NULL
    nt = _team_size_1d(g) if row1d else _team_size(g) if _own_gemm and not identity else 0
    if nt > 0:
        if row1d:
            work = np.empty(nt * _scratch_1d(g, F), dtype=dtype)
            # the flipped kernel (KW*F, C): wf[(j, f), c] = kernel[0, KW-1-j, c, f]
            wt = np.ascontiguousarray(np.asarray(kernel)[0, ::-1].transpose(0, 2, 1)).reshape(KW * F, C)
        else:
            br = _block_rows(g, sizeof(floating), 1)
            work = np.empty(nt * _team_scratch(g, F, br), dtype=dtype)
            wt = np.ascontiguousarray(wmat.T)
        dkp_a = np.empty((nt, K, F), dtype=dtype)
        dbp_a = np.empty((nt, F), dtype=np.float64)
        dkp = dkp_a
        dbp = dbp_a
        if compute_dx:
            dxp = &dxv[0, 0, 0, 0]
        with nogil:
            if row1d:
                _team_backward_1d(&x[0, 0, 0, 0], &dy[0, 0, 0, 0], &wt[0, 0], dxp, &work[0], &dkp[0, 0, 0],
                                  &dbp[0, 0], g, F, nt, use_bias)
            else:
                _team_backward(&x[0, 0, 0, 0], &dy[0, 0, 0, 0], &wt[0, 0], dxp, &work[0], &dkp[0, 0, 0],
                               &dbp[0, 0], g, F, br, nt, use_bias)
        # the threads' partial sums, added in thread order (deterministic for a thread count)
        dkernel = dkp_a.sum(axis=0).reshape(KH, KW, C, F)
        dbias = dbp_a.sum(axis=0).astype(dtype) if use_bias else None
        return dx, dkernel, dbias
    # BLAS path
    dy2 = np.asarray(dy).reshape(rows * OW_, F)
    dkernel = np.empty((KH, KW, C, F), dtype=dtype)
    dk2 = dkernel.reshape(K, F)
    part = np.empty((K, F), dtype=dtype)
    cdef double[::1] acc = np.zeros(F, dtype=np.float64)   # dbias: per block and thread in
    # x's dtype, over the blocks in float64
    cdef floating[::1] bpart = np.zeros(max(1, omp_get_max_threads()) * F, dtype=dtype)
    if identity:
        x2 = np.asarray(x).reshape(N * H * W, C)
    else:
        cols = np.empty((br * OW_, K), dtype=dtype)
        cv = cols
    for r0 in range(0, rows, br):
        r1 = min(r0 + br, rows)
        m = (r1 - r0) * OW_
        dyb = dy2[r0 * OW_:r1 * OW_]
        if identity:
            cb = x2[r0 * OW_:r1 * OW_]
        else:
            with nogil:
                _im2col_block(&x[0, 0, 0, 0], &cv[0, 0], r0, r1, g)
            cb = cols[:m]
        if r0 == 0:
            np.matmul(cb.T, dyb, out=dk2)
        else:
            np.matmul(cb.T, dyb, out=part)
            np.add(dk2, part, out=dk2)
        if use_bias:
            with nogil:
                _sum_rows(&dy[0, 0, 0, 0] + r0 * OW_ * F, &bpart[0], &acc[0], m, F)
        if compute_dx:
            if identity:
                np.matmul(dyb, wmat.T, out=dx2[r0 * OW_:r1 * OW_])
            else:
                np.matmul(dyb, wmat.T, out=cb)   # the patch buffer now holds dcols
                with nogil:
                    _col2im_block(&cv[0, 0], &dxv[0, 0, 0, 0], r0, r1, g)
    dbias = np.asarray(acc).astype(dtype) if use_bias else None
    return dx, dkernel, dbias


# ----------------------------------------------------------------------------------------------
# transposed convolution: the adjoint in x of the convolution g that maps an image y
# (g.N, g.H, g.W, g.C = F) onto x (g.N, g.OH, g.OW, C). The forward is that convolution's input
# gradient (col2im of x @ w^T), the backward its forward (dx = patches(dy) @ w) and its kernel
# gradient (dkernel = patches(dy)^T @ x). Same team scheme as _team_forward / _team_backward:
# thread t owns images [t N / nt, (t + 1) N / nt) and runs blocks of br rows of x.

cdef void _team_transpose_forward(const floating* x, const floating* wt, const floating* b, floating* y,
                                  floating* work, Geom g, Py_ssize_t C, Py_ssize_t br, int nt) noexcept nogil:
    """y = col2im(x @ wt) (+ b when b is not NULL); wt: the kernel as (C, K), K = KH*KW*F.
    work: nt * _team_scratch(g, C, br) values."""
    cdef Py_ssize_t K = g.KH * g.KW * g.C, OW = g.OW, ws = _team_scratch(g, C, br)
    cdef Py_ssize_t t, r0, r1, hi, n0, n1, i, m, n, ih
    cdef floating* cols
    for t in prange(nt, schedule="static", num_threads=nt):
        cols = work + t * ws
        n0 = (t * g.N) // nt
        n1 = ((t + 1) * g.N) // nt
        # the thread's images of y start as the bias (or zeros); col2im adds into them
        if b != NULL:
            for i in range(n0 * g.H * g.W, n1 * g.H * g.W):
                copy_n(y + i * g.C, b, g.C)
        else:
            zero_n(y + n0 * g.H * g.W * g.C, (n1 - n0) * g.H * g.W * g.C)
        r0 = n0 * g.OH
        hi = n1 * g.OH
        while r0 < hi:
            r1 = r0 + br
            if r1 > hi:
                r1 = hi
            m = (r1 - r0) * OW
            gemms(x + r0 * OW * C, C, 1, m, C, wt, K, K, cols, K, cols + m * K + K * C)
            for n in range(r0 // g.OH, (r1 - 1) // g.OH + 1):
                for ih in range(g.H):
                    _col2im_row(cols, y, n, ih, r0, r1, g)
            r0 = r1


cdef void _team_transpose_backward(const floating* dy, const floating* x, const floating* w, floating* dx,
                                   floating* work, floating* dkp, double* dbp, Geom g, Py_ssize_t C,
                                   Py_ssize_t br, int nt, bint use_bias) noexcept nogil:
    """Thread t's partial dkernel (K, C) at dkp + t*K*C and dbias (g.C doubles) at dbp + t*g.C;
    dx = patches(dy) @ w unless dx is NULL (w: (K, C)). work: nt * _team_scratch(g, C, br)."""
    cdef Py_ssize_t K = g.KH * g.KW * g.C, OW = g.OW, ws = _team_scratch(g, C, br)
    cdef Py_ssize_t t, r0, r1, hi, r, i, f, m, n0, n1
    cdef floating* cols
    cdef floating* part
    cdef floating* tail
    cdef floating* dk
    cdef double* db
    for t in prange(nt, schedule="static", num_threads=nt):
        cols = work + t * ws
        dk = dkp + t * K * C
        db = dbp + t * g.C
        n0 = (t * g.N) // nt
        n1 = ((t + 1) * g.N) // nt
        zero_n(dk, K * C)
        for f in range(g.C):
            db[f] = 0.0
        if use_bias:
            for i in range(n0 * g.H * g.W, n1 * g.H * g.W):
                for f in range(g.C):
                    db[f] += dy[i * g.C + f]
        r0 = n0 * g.OH
        hi = n1 * g.OH
        while r0 < hi:
            r1 = r0 + br
            if r1 > hi:
                r1 = hi
            m = (r1 - r0) * OW
            part = cols + m * K
            tail = part + K * C
            for r in range(r0, r1):
                _im2col_row(dy, cols + (r - r0) * OW * K, r, g)
            # dkernel += patches^T @ x_block (A = cols^T: rows k adjacent, k-th row strided by K)
            gemms(cols, 1, K, K, m, x + r0 * OW * C, C, C, part, C, tail)
            add_n(dk, part, K * C)
            if dx != NULL:
                gemms(cols, K, 1, m, K, w, C, C, dx + r0 * OW * C, C, tail)
            r0 = r1


cdef Geom _transpose_geom(Py_ssize_t N, Py_ssize_t H, Py_ssize_t W, Py_ssize_t KH, Py_ssize_t KW,
                          Py_ssize_t F, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t pt, Py_ssize_t pb,
                          Py_ssize_t pl, Py_ssize_t pr, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh,
                          Py_ssize_t dw) except *:
    """The Geom of the convolution from the (N, OH, OW, F) output onto x (N, H, W, C), after
    checking that it gives x's spatial size."""
    if F < 1:
        raise ValueError(f"kernel must not be empty; received F={F}")
    if _geometry(N, OH, OW, F, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw) != (H, W):
        raise ValueError(f"the convolution of an ({OH}, {OW}) output with this geometry does not give x's "
                         f"spatial size ({H}, {W})")
    return _make_geom(N, OH, OW, F, KH, KW, H, W, pt, pl, sh, sw, dh, dw)


def conv2d_transpose_forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] kernel, bias,
                             Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t pt, Py_ssize_t pb, Py_ssize_t pl,
                             Py_ssize_t pr, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw):
    """y = conv2d_transpose(x, kernel) + bias, channels_last.

    x: (N, H, W, C) float32|float64, C-contiguous, IN. kernel: (KH, KW, F, C) same dtype,
    C-contiguous, IN (Keras's layout). bias: (F,) same dtype or None, IN. (OH, OW): the output's
    spatial size; pt, pb, pl, pr, sh, sw, dh, dw: the geometry of the convolution that maps an
    (OH, OW) image onto x's (H, W). Returns y (N, OH, OW, F), new: col2im of x @ kernel^T.
    """
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t KH = kernel.shape[0], KW = kernel.shape[1], F = kernel.shape[2]
    if kernel.shape[3] != C:
        raise ValueError(f"kernel must have shape (KH, KW, F, {C}) to match x's channels; received shape "
                         f"{(kernel.shape[0], kernel.shape[1], kernel.shape[2], kernel.shape[3])}")
    cdef Geom g = _transpose_geom(N, H, W, KH, KW, F, OH, OW, pt, pb, pl, pr, sh, sw, dh, dw)
    cdef const floating[::1] b = bias
    cdef const floating* bp = _bias_data(b, F)
    dtype = np.float32 if floating is float else np.float64
    cdef Py_ssize_t K = KH * KW * F, rows = N * H
    cdef Py_ssize_t br, r0, r1
    wmat = np.asarray(kernel).reshape(K, C)
    cdef const floating[:, ::1] wt = np.ascontiguousarray(wmat.T)
    cdef floating[::1] work
    cdef floating[:, :, :, ::1] yv
    cdef floating[:, ::1] cv
    cdef int nt = _team_size(g) if _own_gemm else 0
    if nt > 0:
        br = _block_rows(g, sizeof(floating), 1)
        y = np.empty((N, OH, OW, F), dtype=dtype)
        yv = y
        work = np.empty(nt * _team_scratch(g, C, br), dtype=dtype)
        with nogil:
            _team_transpose_forward(&x[0, 0, 0, 0], &wt[0, 0], bp, &yv[0, 0, 0, 0], &work[0], g, C, br, nt)
        return y
    # BLAS path: per block of rows of x, the patch gradients in one product, then col2im
    y = np.zeros((N, OH, OW, F), dtype=dtype)
    yv = y
    br = _block_rows(g, sizeof(floating))
    x2 = np.asarray(x).reshape(N * H * W, C)
    cols = np.empty((br * W, K), dtype=dtype)
    cv = cols
    for r0 in range(0, rows, br):
        r1 = min(r0 + br, rows)
        np.matmul(x2[r0 * W:r1 * W], wmat.T, out=cols[:(r1 - r0) * W])
        with nogil:
            _col2im_block(&cv[0, 0], &yv[0, 0, 0, 0], r0, r1, g)
    if bias is not None:
        y += np.asarray(b)
    return y


def conv2d_transpose_backward(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] x,
                              const floating[:, :, :, ::1] kernel, Py_ssize_t pt, Py_ssize_t pb,
                              Py_ssize_t pl, Py_ssize_t pr, Py_ssize_t sh, Py_ssize_t sw,
                              Py_ssize_t dh, Py_ssize_t dw, bint use_bias, bint compute_dx):
    """Gradients of conv2d_transpose_forward.

    dy: (N, OH, OW, F) float32|float64, C-contiguous, IN. x, kernel and the geometry as given
    to conv2d_transpose_forward. Returns (dx, dkernel, dbias): dx (N, H, W, C) = the
    convolution of dy with the kernel (None when compute_dx is false); dkernel (KH, KW, F, C) =
    patches(dy)^T @ x; dbias (F,) or None when use_bias is false. New arrays of x's dtype.
    """
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t KH = kernel.shape[0], KW = kernel.shape[1], F = kernel.shape[2]
    cdef Py_ssize_t OH = dy.shape[1], OW = dy.shape[2]
    if kernel.shape[3] != C:
        raise ValueError(f"kernel must have shape (KH, KW, F, {C}) to match x's channels; received shape "
                         f"{(kernel.shape[0], kernel.shape[1], kernel.shape[2], kernel.shape[3])}")
    if dy.shape[0] != N or dy.shape[3] != F:
        raise ValueError(f"dy must have shape ({N}, OH, OW, {F}); received shape "
                         f"{(dy.shape[0], dy.shape[1], dy.shape[2], dy.shape[3])}")
    cdef Geom g = _transpose_geom(N, H, W, KH, KW, F, OH, OW, pt, pb, pl, pr, sh, sw, dh, dw)
    dtype = np.float32 if floating is float else np.float64
    cdef Py_ssize_t K = KH * KW * F, rows = N * H
    cdef Py_ssize_t br, r0, r1, m
    wmat = np.asarray(kernel).reshape(K, C)
    dx = np.empty((N, H, W, C), dtype=dtype) if compute_dx else None
    cdef floating[:, :, :, ::1] dxv
    if compute_dx:
        dxv = dx
    cdef floating[::1] work
    cdef floating[:, :, ::1] dkp
    cdef double[:, ::1] dbp
    cdef floating[:, ::1] cv
    cdef const floating[:, ::1] wv
    cdef int nt = _team_size(g) if _own_gemm else 0
    if nt > 0:
        br = _block_rows(g, sizeof(floating), 1)
        work = np.empty(nt * _team_scratch(g, C, br), dtype=dtype)
        wv = wmat
        dkp_a = np.empty((nt, K, C), dtype=dtype)
        dbp_a = np.empty((nt, F), dtype=np.float64)
        dkp = dkp_a
        dbp = dbp_a
        with nogil:
            _team_transpose_backward(&dy[0, 0, 0, 0], &x[0, 0, 0, 0], &wv[0, 0],
                                     &dxv[0, 0, 0, 0] if compute_dx else NULL, &work[0], &dkp[0, 0, 0],
                                     &dbp[0, 0], g, C, br, nt, use_bias)
        dkernel = dkp_a.sum(axis=0).reshape(KH, KW, F, C)
        dbias = dbp_a.sum(axis=0).astype(dtype) if use_bias else None
        return dx, dkernel, dbias
    # BLAS path: per block of rows of x, the patches of dy, then both products
    br = _block_rows(g, sizeof(floating))
    x2 = np.asarray(x).reshape(N * H * W, C)
    dk2 = np.zeros((K, C), dtype=dtype)
    cols = np.empty((br * W, K), dtype=dtype)
    cv = cols
    for r0 in range(0, rows, br):
        r1 = min(r0 + br, rows)
        m = (r1 - r0) * W
        with nogil:
            _im2col_block(&dy[0, 0, 0, 0], &cv[0, 0], r0, r1, g)
        dk2 += cols[:m].T @ x2[r0 * W:r1 * W]
        if compute_dx:
            np.matmul(cols[:m], wmat, out=dx.reshape(N * H * W, C)[r0 * W:r1 * W])
    dbias = (np.einsum("ij->j", np.asarray(dy).reshape(-1, F), dtype=np.float64).astype(dtype)
             if use_bias else None)
    return dx, dk2.reshape(KH, KW, F, C), dbias


# ----------------------------------------------------------------------------------------------
# the mixed_bfloat16 convolution (float32 only; cynet/_kernels/conv_bf16.py calls these): the
# team scheme of _team_forward / _team_backward with the products on cynet_bf16.h, so that
# every product input is rounded to bfloat16 while it is packed and the sums run in float32,
# and with the elementwise work of a Conv layer's block fused in while the block is in cache:
#   forward   per block: im2col, y_block = cols @ W (+ bias in the product's epilogue), then
#             ReLU when the layer's activation is a plain relu (relu=True).
#   backward  per block: g = dy_block, or dy where the ReLU output y > 0 (y given); dbias += the
#             column sums of g (float32 in, float64 sums, unrounded: a sum, not a product);
#             im2col; dkernel_t += cols^T @ g (float32, the packed product accumulating in
#             place); dcols = g @ W^T, col2im.
# A product whose inner dimension is at most _bf16_short (the first convolution of an image
# model: K = 3 x 3 x 1) gains nothing from the packed kernels (pairs of k padded to tiles of 32):
# its operands are rounded to bfloat16 in cache (cynet_bf16_round_n) and multiplied by
# cynet_gemm.h in float32. A product of two bfloat16 values is exact in float32, so this is the
# same rounding and the same float32 accumulation, only in another order. Where the CPU has
# AVX-512F, such a convolution (K <= _bf16_short) runs on cynet_conv_small.h instead (Short,
# _short_rows): the input is rounded once, the patches of rows whose windows lie inside it are
# read in place (no im2col), each output is computed in registers and written once with its
# bias and ReLU, and the weight gradient keeps tiles of dkernel in registers over a block.

from libc.stdint cimport uint32_t
from cynet._kernels._gemm cimport (CYNET_BF16_WORK, cynet_bf16_amx_ok, cynet_bf16_bias_relu,
                                   cynet_bf16_gemm, cynet_bf16_native_ok, cynet_bf16_relu_grad,
                                   cynet_bf16_round_n, cynet_bf16_col_sums)

cdef extern from "cynet_conv_small.h" nogil:
    int cynet_cs_ok() noexcept
    void cynet_cs_forward(const float* x, Py_ssize_t rows, Py_ssize_t rs, Py_ssize_t ow, Py_ssize_t ps,
                          const Py_ssize_t* off, Py_ssize_t k, const float* w, Py_ssize_t f,
                          const float* bias, float* y, int relu, unsigned char* bits, Py_ssize_t mb) noexcept
    void cynet_cs_weight_grad(const float* x, Py_ssize_t rows, Py_ssize_t rs, Py_ssize_t ow, Py_ssize_t ps,
                              const Py_ssize_t* off, Py_ssize_t k, const float* g, Py_ssize_t f,
                              float* dk) noexcept
    void cynet_cs_grad_block(float* g, const float* dy, const float* y, const unsigned char* bits,
                             Py_ssize_t mb, Py_ssize_t rows, Py_ssize_t f, float* colsum) noexcept
    const Py_ssize_t CYNET_CS_FUSED_MAX_K
    void cynet_cs_fused_backward(const float* x, Py_ssize_t rows, Py_ssize_t rs, Py_ssize_t ow, Py_ssize_t ps,
                                 const Py_ssize_t* off, Py_ssize_t k, const float* dy, const unsigned char* bits,
                                 Py_ssize_t mb, const float* y, Py_ssize_t f, float* dk, double* db) noexcept
    void cynet_relu_bits(float* y, Py_ssize_t rows, Py_ssize_t f, unsigned char* bits, Py_ssize_t mb,
                         int relu, int avx512) noexcept
    void cynet_cs_pool_forward(const float* x, Py_ssize_t prows, Py_ssize_t rs, Py_ssize_t pw, Py_ssize_t ps,
                               const Py_ssize_t* off, Py_ssize_t k, const float* w, Py_ssize_t f,
                               const float* bias, float* y, unsigned char* sel, Py_ssize_t mb) noexcept
    void cynet_cs_pool_backward(const float* x, Py_ssize_t prows, Py_ssize_t rs, Py_ssize_t pw, Py_ssize_t ps,
                                const Py_ssize_t* off, Py_ssize_t k, const float* dp, const unsigned char* sel,
                                Py_ssize_t mb, Py_ssize_t f, float* dk, double* db, int round) noexcept
    void cynet_relu_grad_bits(float* g, const float* dy, const unsigned char* bits, Py_ssize_t rows, Py_ssize_t f,
                              Py_ssize_t mb, int avx512) noexcept


cdef struct Short:
    # a short product on cynet_conv_small.h (on: K <= _bf16_short and the CPU runs it): xr, the
    # input rounded to bfloat16; offx[k], the offset of a patch's k-th value from its window's
    # first cell in xr; offc[k] = k (the same in an im2col block)
    bint on
    const float* xr
    const Py_ssize_t* offx
    const Py_ssize_t* offc

cdef Py_ssize_t _bf16_short = 16
cdef bint _bf16_direct = True   # cynet_conv_small.h's AVX-512 kernels where the CPU runs them
cdef bint _bf16_fused = True    # and its one-pass backward where no input gradient is needed


def _bf16_knobs(short_max=None, direct=None, fused=None):
    """Developer and test knobs of the bfloat16 convolutions: sets those given (not None) and
    returns the previous (short_max, direct, fused), which _bf16_knobs(*previous) restores.

    short_max: the longest inner dimension run as a rounded float32 product (0: every product on
    the packed bfloat16 kernels). direct: whether such a short product runs on
    cynet_conv_small.h's kernels (True, where this CPU has AVX-512F) or on the rounded float32
    small GEMM, and the relu bits on its AVX-512 loops or its plain ones. fused: whether a short
    convolution's backward without an input gradient runs in one pass (cynet_cs_fused_backward)
    where the AVX-512 kernels run. The one-pass convolution, ReLU and max pooling
    (relu_maxpool_native), float32 or not, runs only where all three leave them on."""
    global _bf16_short, _bf16_direct, _bf16_fused
    old = (_bf16_short, _bf16_direct, _bf16_fused)
    if short_max is not None:
        _bf16_short = max(0, int(short_max))
    if direct is not None:
        _bf16_direct = bool(direct)
    if fused is not None:
        _bf16_fused = bool(fused)
    return old


cdef Py_ssize_t _BF16_SUM_ROWS = 256   # rows of a float32 partial sum of the bias gradient


cdef inline Py_ssize_t _bf16_scratch(Geom g, Py_ssize_t F, Py_ssize_t br) noexcept nogil:
    """Floats of scratch per thread: the block's patch matrix (m, K), a gradient block (m, F),
    and the largest `tail` a float32 product needs (at least F: the bias gradient's partial
    sums use it)."""
    cdef Py_ssize_t K = g.KH * g.KW * g.C, m = br * g.OW
    cdef Py_ssize_t t = gemms_tail(K, F)
    if gemms_tail(F, K) > t:
        t = gemms_tail(F, K)
    if F > t:
        t = F
    return m * K + m * F + t


cdef int _bf16_path(int path):
    """The path that runs: a native path this CPU or build lacks falls back to the next."""
    if path >= 2 and not cynet_bf16_amx_ok():
        path = 1
    if path >= 1 and not cynet_bf16_native_ok():
        path = 0
    return path


cdef inline bint _row_inside(Geom g, Py_ssize_t oh) noexcept nogil:
    """Whether every window of output row oh lies inside the input (no padded cell), so that
    its patches can be read from the input in place."""
    cdef Py_ssize_t ih0 = oh * g.sh - g.pt
    return (g.pl == 0 and (g.OW - 1) * g.sw + (g.KW - 1) * g.dw < g.W
            and ih0 >= 0 and ih0 + (g.KH - 1) * g.dh < g.H)


cdef Py_ssize_t _short_run(Short sp, float* cols, Py_ssize_t r, Py_ssize_t r1, Geom g, const float** src,
                           Py_ssize_t* rs, Py_ssize_t* ps, const Py_ssize_t** off) noexcept nogil:
    """The run of output rows [r, q) (returned) of one image from r, all of whose windows lie
    inside the input or none: its patches as cynet_conv_small.h reads them (src, rs, ps, off):
    the rounded input in place, or the run's im2col written to cols (block-sized)."""
    cdef Py_ssize_t K = g.KH * g.KW * g.C, OW = g.OW, HWC = g.H * g.W * g.C
    cdef Py_ssize_t n = r // g.OH, oh = r - n * g.OH, e = (n + 1) * g.OH, q, rr
    cdef bint inside = _row_inside(g, oh)
    if e > r1:
        e = r1
    q = r + 1
    while q < e and _row_inside(g, q - n * g.OH) == inside:
        q = q + 1
    if inside:
        src[0] = sp.xr + CY_SPAN(n * HWC + (oh * g.sh - g.pt) * g.W * g.C, 1, g.N * HWC)
        rs[0] = g.sh * g.W * g.C
        ps[0] = g.sw * g.C
        off[0] = sp.offx
    else:
        for rr in range(r, q):
            _im2col_row(sp.xr, cols + (rr - r) * OW * K, rr, g)
        src[0] = cols
        rs[0] = OW * K
        ps[0] = K
        off[0] = sp.offc
    return q


cdef void _short_rows(Short sp, float* cols, Py_ssize_t r0, Py_ssize_t r1, Geom g, const float* w,
                      const float* b, float* out, float* dk, Py_ssize_t F, bint relu, unsigned char* bits,
                      Py_ssize_t mb) noexcept nogil:
    """The short products of output rows [r0, r1) on cynet_conv_small.h. Forward (dk NULL): out
    = the rows' outputs (+ b; ReLU when relu; w rounded; their relu bits from bits on, unless
    NULL). Backward: dk += patches^T @ out (out: the rows' rounded gradients). A run of rows of
    one image whose windows lie inside the input reads the rounded input in place; the other
    runs, their im2col in cols (br * OW * K)."""
    cdef Py_ssize_t K = g.KH * g.KW * g.C, OW = g.OW
    cdef Py_ssize_t r = r0, q, rs = 0, ps = 0
    cdef const float* src = NULL
    cdef const Py_ssize_t* off = NULL
    while r < r1:
        q = _short_run(sp, cols, r, r1, g, &src, &rs, &ps, &off)
        if dk == NULL:
            cynet_cs_forward(src, q - r, rs, OW, ps, off, K, w, F, b, out + (r - r0) * OW * F, relu,
                             bits + (r - r0) * OW * mb if bits != NULL else NULL, mb)
        else:
            cynet_cs_weight_grad(src, q - r, rs, OW, ps, off, K, out + (r - r0) * OW * F, F, dk)
        r = q


cdef void _short_backward_rows(Short sp, float* cols, Py_ssize_t r0, Py_ssize_t r1, Geom g, const float* dy,
                               const unsigned char* ybits, Py_ssize_t mb, const float* yrelu, Py_ssize_t F,
                               float* dk, double* db) noexcept nogil:
    """dk and db (db NULL: no bias) of output rows [r0, r1) in one pass over dy (no input
    gradient: the first convolution; cynet_cs_fused_backward), the runs as _short_rows'."""
    cdef Py_ssize_t K = g.KH * g.KW * g.C, OW = g.OW
    cdef Py_ssize_t r = r0, q, rs = 0, ps = 0
    cdef const float* src = NULL
    cdef const Py_ssize_t* off = NULL
    while r < r1:
        q = _short_run(sp, cols, r, r1, g, &src, &rs, &ps, &off)
        cynet_cs_fused_backward(src, q - r, rs, OW, ps, off, K, dy + r * OW * F,
                                ybits + r * OW * mb if ybits != NULL else NULL, mb,
                                yrelu + r * OW * F if yrelu != NULL else NULL, F, dk, db)
        r = q


cdef void _team_forward_bf16(const float* x, const float* w, const float* wr, const float* b, float* y,
                             float* work, uint32_t* bwork, Geom g, Py_ssize_t F, Py_ssize_t br, int nt,
                             int path, bint relu, Short sp, unsigned char* bits, Py_ssize_t mb) noexcept nogil:
    """y = conv(x, w) (+ b), then ReLU when relu; w (K, F), wr: w rounded to bfloat16 (read when
    K <= _bf16_short). work: nt * _bf16_scratch floats; bwork: nt * CYNET_BF16_WORK words.
    bits: NULL, or the outputs' relu bits (cynet_relu_bits: mb bytes per output position)."""
    cdef Py_ssize_t K = g.KH * g.KW * g.C, OW = g.OW, ws = _bf16_scratch(g, F, br)
    cdef Py_ssize_t t, r0, r1, r, hi, m
    cdef bint short = K <= _bf16_short
    cdef float* cols
    cdef float* yb
    for t in prange(nt, schedule="static", num_threads=nt):
        cols = work + t * ws
        r0 = (t * g.N) // nt * g.OH
        hi = ((t + 1) * g.N) // nt * g.OH
        while r0 < hi:
            r1 = r0 + br
            if r1 > hi:
                r1 = hi
            m = (r1 - r0) * OW
            yb = y + CY_SPAN(r0 * OW * F, m * F, g.N * g.OH * OW * F)
            if sp.on:   # bias and ReLU in registers, each output written once
                _short_rows(sp, cols, r0, r1, g, wr, b, yb, NULL, F, relu,
                            bits + r0 * OW * mb if bits != NULL else NULL, mb)
                r0 = r1
                continue
            for r in range(r0, r1):
                _im2col_row(x, cols + CY_SPAN((r - r0) * OW * K, OW * K, br * OW * K), r, g)
            if short:
                cynet_bf16_round_n(cols, cols, m * K)
                gemms(cols, K, 1, m, K, wr, F, F, yb, F, cols + br * OW * (K + F))
                cynet_bf16_bias_relu(yb, m, F, b, relu)
                if bits != NULL:
                    cynet_relu_bits(yb, m, F, bits + r0 * OW * mb, mb, 0, _bf16_direct)
            else:
                cynet_bf16_gemm(path, cols, K, 1, w, F, 1, yb, F, m, F, K, 0, b, bwork + t * CYNET_BF16_WORK)
                if bits != NULL:   # the bits of the logits and their ReLU in one pass
                    cynet_relu_bits(yb, m, F, bits + r0 * OW * mb, mb, relu, _bf16_direct)
                elif relu:
                    cynet_bf16_bias_relu(yb, m, F, NULL, 1)
            r0 = r1


cdef void _team_backward_bf16(const float* x, const float* dy, const float* yrelu, const float* wt,
                              const float* wtr, float* dx, float* work, uint32_t* bwork, float* dkp,
                              double* dbp, Geom g, Py_ssize_t F, Py_ssize_t br, int nt, bint use_bias,
                              int path, Short sp, const unsigned char* ybits, Py_ssize_t mb) noexcept nogil:
    """Thread t's partial dkernel (K, F) at dkp + t*K*F and dbias (F doubles) at dbp + t*F;
    dx += col2im(g @ w^T) unless dx is NULL (wt: w^T (F, K); wtr: wt rounded, read when
    F <= _bf16_short). g: dy, or dy where yrelu > 0 when yrelu is not NULL, or where the relu
    bits ybits (mb bytes per output position) are 1 when ybits is not NULL."""
    cdef Py_ssize_t K = g.KH * g.KW * g.C, OW = g.OW, ws = _bf16_scratch(g, F, br)
    cdef Py_ssize_t t, r0, r1, hi, r, i, f, m, n, ih
    cdef bint short = F <= _bf16_short
    cdef bint direct = sp.on
    cdef bint fused = direct and dx == NULL and _bf16_fused and K <= CYNET_CS_FUSED_MAX_K
    # the one-pass gradient block (cynet_cs_grad_block): a short patch's, and a ReLU's on AVX-512
    cdef bint gpass = direct or (_bf16_direct and cynet_cs_ok() == 1 and (ybits != NULL or yrelu != NULL))
    cdef Py_ssize_t nr
    cdef float* cols
    cdef float* gb
    cdef float* part
    cdef float* dk
    cdef double* db
    cdef const float* src
    cdef uint32_t* bw
    for t in prange(nt, schedule="static", num_threads=nt):
        cols = work + t * ws
        gb = cols + br * OW * K
        part = gb + br * OW * F
        bw = bwork + t * CYNET_BF16_WORK
        dk = dkp + t * K * F
        db = dbp + t * F
        r0 = (t * g.N) // nt * g.OH
        hi = ((t + 1) * g.N) // nt * g.OH
        zero_n(dk, K * F)
        for f in range(F):
            db[f] = 0.0
        while r0 < hi:
            r1 = r0 + br
            if r1 > hi:
                r1 = hi
            m = (r1 - r0) * OW
            src = dy + CY_SPAN(r0 * OW * F, m * F, g.N * g.OH * OW * F)
            if fused:   # the first convolution: one pass over dy, nothing written per position
                _short_backward_rows(sp, cols, r0, r1, g, dy, ybits, mb, yrelu, F, dk, db if use_bias else NULL)
                r0 = r1
                continue
            if gpass:
                # g rounded in one pass with the bias gradient's sums (the packed products'
                # own rounding leaves it as it is)
                i = 0
                while i < m:
                    nr = m - i if m - i < _BF16_SUM_ROWS else _BF16_SUM_ROWS
                    zero_n(part, F)
                    cynet_cs_grad_block(gb + i * F, src + i * F,
                                        yrelu + (r0 * OW + i) * F if yrelu != NULL else NULL,
                                        ybits + (r0 * OW + i) * mb if ybits != NULL else NULL, mb, nr, F, part)
                    if use_bias:
                        for f in range(F):
                            db[f] += part[f]
                    i = i + _BF16_SUM_ROWS
                src = gb
            elif ybits != NULL:
                cynet_relu_grad_bits(gb, src, ybits + r0 * OW * mb, m, F, mb, _bf16_direct)
                src = gb
            elif yrelu != NULL:
                cynet_bf16_relu_grad(gb, src, yrelu + r0 * OW * F, m * F)
                src = gb
            if not gpass and use_bias:   # float32 sums of _BF16_SUM_ROWS rows at a time, float64 over them
                i = 0
                while i < m:
                    zero_n(part, F)
                    cynet_bf16_col_sums(src + i * F, m - i if m - i < _BF16_SUM_ROWS else _BF16_SUM_ROWS, F, part)
                    for f in range(F):
                        db[f] += part[f]
                    i = i + _BF16_SUM_ROWS
            if direct:   # a short patch (K <= _bf16_short): dkernel from 3 x 32 tiles in registers
                _short_rows(sp, cols, r0, r1, g, NULL, NULL, gb, dk, F, 0, NULL, 0)
            if not direct:
                for r in range(r0, r1):
                    _im2col_row(x, cols + CY_SPAN((r - r0) * OW * K, OW * K, br * OW * K), r, g)
                # dkernel += cols^T @ g (A = cols^T: rows k adjacent, the k-th column K apart)
                cynet_bf16_gemm(path, cols, 1, K, src, F, 1, dk, F, K, F, m, 1, NULL, bw)
            if dx != NULL:
                # dcols = g @ w^T into the patch buffer, then scattered back into dx
                if short:
                    cynet_bf16_round_n(gb, src, m * F)
                    gemms(gb, F, 1, m, F, wtr, K, K, cols, K, part)
                else:
                    cynet_bf16_gemm(path, src, F, 1, wt, K, 1, cols, K, m, K, F, 0, NULL, bw)
                for n in range(r0 // g.OH, (r1 - 1) // g.OH + 1):
                    for ih in range(g.H):
                        _col2im_row(cols, dx, n, ih, r0, r1, g)
            r0 = r1


def _rounded(a):
    """A C-contiguous float32 copy of a rounded to bfloat16."""
    out = np.array(a, dtype=np.float32, order="C", copy=True)
    cdef float[::1] v = out.reshape(-1)
    if v.shape[0]:
        cynet_bf16_round_n(&v[0], &v[0], v.shape[0])
    return out


cdef int _bf16_team(Geom g):
    """Threads of a bfloat16 pass: the thread policy's count, at most one per image."""
    cdef int nt = threads_for(g.N * g.OH * g.OW * g.KH * g.KW * g.C, COST_CONV)
    if nt > g.N:
        nt = <int>g.N
    return nt if nt > 0 else 1


cdef Short _short_setup(x, Geom g, list keep, bint rounded=True):
    """The Short of a pass: on when K <= _bf16_short and cynet_conv_small.h runs here; then the
    input rounded to bfloat16 (unless not rounded: the input itself, float32) and the two offset
    tables, their arrays appended to keep (which the caller holds while the pass runs)."""
    cdef Short sp
    cdef Py_ssize_t K = g.KH * g.KW * g.C
    cdef const float[::1] xr
    cdef const Py_ssize_t[::1] offx
    cdef const Py_ssize_t[::1] offc
    sp.on = K <= _bf16_short and _bf16_direct and cynet_cs_ok() == 1
    sp.xr = NULL
    sp.offx = NULL
    sp.offc = NULL
    if not sp.on:
        return sp
    kh, kw, c = np.meshgrid(np.arange(g.KH), np.arange(g.KW), np.arange(g.C), indexing="ij")
    offx_a = ((kh * g.dh * g.W + kw * g.dw) * g.C + c).reshape(-1).astype(np.intp)
    offc_a = np.arange(K, dtype=np.intp)
    xr_a = (_rounded(x) if rounded else np.asarray(x)).reshape(-1)
    keep.extend([xr_a, offx_a, offc_a])
    xr, offx, offc = xr_a, offx_a, offc_a
    sp.xr = &xr[0]
    sp.offx = &offx[0]
    sp.offc = &offc[0]
    return sp


def conv2d_forward_bf16(const float[:, :, :, ::1] x, const float[:, :, :, ::1] kernel, bias,
                        Py_ssize_t pt, Py_ssize_t pb, Py_ssize_t pl, Py_ssize_t pr, Py_ssize_t sh,
                        Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw, int path, bint relu, bint bits=False):
    """conv2d_forward (float32) with the product in bfloat16 (see above), then ReLU when relu.

    path: 2 AMX-BF16, 1 AVX512_BF16, 0 the emulation (cynet.kernels.bf16's codes; a path this
    CPU lacks falls back to the next). Returns y (N, OH, OW, F), new; with bits, (y, relu
    bits): uint8 (N * OH * OW, ceil(F / 8)), bit j % 8 of byte j // 8 of a row 1 where the
    output's channel j is > 0 (before the ReLU; what conv2d_backward_bf16 takes for y)."""
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t KH = kernel.shape[0], KW = kernel.shape[1], F = kernel.shape[3]
    _check_conv_args(C, (KH, KW, kernel.shape[2], F))
    OH, OW = _geometry(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    cdef Geom g = _make_geom(N, H, W, C, KH, KW, OH, OW, pt, pl, sh, sw, dh, dw)
    cdef Py_ssize_t K = KH * KW * C
    cdef const float[::1] b = bias
    cdef const float* bp = _bias_data(b, F)
    y = np.empty((N, g.OH, g.OW, F), dtype=np.float32)
    cdef Py_ssize_t mb = (F + 7) // 8
    bits_a = np.zeros((N * g.OH * g.OW, mb), dtype=np.uint8) if bits else None
    if N == 0 or g.OH == 0 or g.OW == 0:
        return (y, bits_a) if bits else y
    cdef unsigned char[:, ::1] bv
    cdef unsigned char* bp_bits = NULL
    if bits:
        bv = bits_a
        bp_bits = &bv[0, 0]
    cdef float[:, :, :, ::1] yv = y
    cdef int nt = _bf16_team(g), use = _bf16_path(path)
    cdef Py_ssize_t br = _block_rows(g, sizeof(float), 1)
    cdef float[::1] work = np.empty(nt * _bf16_scratch(g, F, br), dtype=np.float32)
    cdef uint32_t[::1] bwork = np.empty(nt * CYNET_BF16_WORK, dtype=np.uint32)
    cdef const float[:, ::1] wr = _rounded(np.asarray(kernel).reshape(K, F)) if K <= _bf16_short else \
        np.asarray(kernel).reshape(K, F)
    keep = []
    cdef Short sp = _short_setup(x, g, keep)
    with nogil:
        _team_forward_bf16(&x[0, 0, 0, 0], &kernel[0, 0, 0, 0], &wr[0, 0], bp, &yv[0, 0, 0, 0], &work[0],
                           &bwork[0], g, F, br, nt, use, relu, sp, bp_bits, mb)
    return (y, bits_a) if bits else y


def conv2d_backward_bf16(const float[:, :, :, ::1] dy, const float[:, :, :, ::1] x,
                         const float[:, :, :, ::1] kernel, y, Py_ssize_t pt, Py_ssize_t pb,
                         Py_ssize_t pl, Py_ssize_t pr, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh,
                         Py_ssize_t dw, bint use_bias, bint compute_dx, int path):
    """conv2d_backward (float32) with the products in bfloat16 (see above). y: None, or the
    ReLU output of conv2d_forward_bf16(..., relu=True) (dy's shape), or its relu bits (uint8
    (N * OH * OW, ceil(F / 8)), conv2d_forward_bf16(..., bits=True)): dy is then the gradient of
    that output, and the gradients go through the ReLU first (dy where y > 0).
    Returns (dx or None, dkernel, dbias or None), new float32 arrays."""
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t KH = kernel.shape[0], KW = kernel.shape[1], F = kernel.shape[3]
    _check_conv_args(C, (KH, KW, kernel.shape[2], F))
    OH, OW = _geometry(N, H, W, C, KH, KW, pt, pb, pl, pr, sh, sw, dh, dw)
    if (dy.shape[0], dy.shape[1], dy.shape[2], dy.shape[3]) != (N, OH, OW, F):
        raise ValueError(f"dy must have shape {(N, OH, OW, F)}; received shape "
                         f"{(dy.shape[0], dy.shape[1], dy.shape[2], dy.shape[3])}")
    cdef const float[:, :, :, ::1] yv
    cdef const float* yp = NULL
    cdef const unsigned char[:, ::1] ybv
    cdef const unsigned char* ybp = NULL
    cdef Py_ssize_t mb = (F + 7) // 8
    if isinstance(y, np.ndarray) and y.dtype == np.uint8:
        if y.shape != (N * OH * OW, mb):
            raise ValueError(f"the relu bits y must have shape {(N * OH * OW, mb)}; received shape {y.shape}")
        ybv = y
        if N * OH * OW:
            ybp = &ybv[0, 0]
    elif y is not None:
        yv = y
        if (yv.shape[0], yv.shape[1], yv.shape[2], yv.shape[3]) != (N, OH, OW, F):
            raise ValueError(f"y must have dy's shape {(N, OH, OW, F)}; received shape "
                             f"{(yv.shape[0], yv.shape[1], yv.shape[2], yv.shape[3])}")
        yp = &yv[0, 0, 0, 0]
    cdef Geom g = _make_geom(N, H, W, C, KH, KW, OH, OW, pt, pl, sh, sw, dh, dw)
    cdef Py_ssize_t K = KH * KW * C
    dx = np.zeros((N, H, W, C), dtype=np.float32) if compute_dx else None
    if N == 0 or g.OH == 0 or g.OW == 0:
        return dx, np.zeros((KH, KW, C, F), np.float32), np.zeros(F, np.float32) if use_bias else None
    cdef float[:, :, :, ::1] dxv
    cdef float* dxp = NULL
    if compute_dx:
        dxv = dx
        dxp = &dxv[0, 0, 0, 0]
    cdef int nt = _bf16_team(g), use = _bf16_path(path)
    cdef Py_ssize_t br = _block_rows(g, sizeof(float), 1)
    cdef float[::1] work = np.empty(nt * _bf16_scratch(g, F, br), dtype=np.float32)
    cdef uint32_t[::1] bwork = np.empty(nt * CYNET_BF16_WORK, dtype=np.uint32)
    wt_a = np.ascontiguousarray(np.asarray(kernel).reshape(K, F).T)
    cdef const float[:, ::1] wt = wt_a
    cdef const float[:, ::1] wtr = _rounded(wt_a) if F <= _bf16_short else wt_a
    dkp_a = np.empty((nt, K, F), dtype=np.float32)
    dbp_a = np.empty((nt, F), dtype=np.float64)
    cdef float[:, :, ::1] dkp = dkp_a
    cdef double[:, ::1] dbp = dbp_a
    keep = []
    cdef Short sp = _short_setup(x, g, keep)
    with nogil:
        _team_backward_bf16(&x[0, 0, 0, 0], &dy[0, 0, 0, 0], yp, &wt[0, 0], &wtr[0, 0], dxp, &work[0],
                            &bwork[0], &dkp[0, 0, 0], &dbp[0, 0], g, F, br, nt, use_bias, use, sp, ybp, mb)
    dkernel = (dkp_a[0] if nt == 1 else dkp_a.sum(axis=0)).reshape(KH, KW, C, F)
    dbias = dbp_a.sum(axis=0).astype(np.float32) if use_bias else None
    return dx, dkernel, dbias


# ----------------------------------------------------------------------------------------------
# The first convolution with its ReLU and a 2x2 / stride 2 / valid max pooling after it, in one
# pass (cynet_conv_small.h's cynet_cs_pool_forward / _backward; the Conv2D -> MaxPooling2D pair
# of a model, float32 or under mixed_bfloat16: Layer._fuse_next): the convolution's output (4x
# the pooled one) is never written nor read again. Valid padding only (every window inside the
# image: the input, or its rounded copy, is read in place); the team owns whole images, as above.

def relu_maxpool_native(Py_ssize_t K):
    """Whether conv2d_relu_maxpool_forward / _backward run here for a patch of K
    values: this build has cynet_conv_small.h's AVX-512 kernels and this CPU runs them, K is at
    most CYNET_CS_FUSED_MAX_K, and the developer knobs (_bf16_knobs) leave the short kernels on."""
    return (0 < K <= CYNET_CS_FUSED_MAX_K and K <= _bf16_short and _bf16_direct and _bf16_fused
            and cynet_cs_ok() == 1)


cdef Geom _pool_geom(x, kernel, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw):
    """The valid convolution's geometry for conv2d_relu_maxpool_forward / _backward, after its checks."""
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t KH = kernel.shape[0], KW = kernel.shape[1], F = kernel.shape[3]
    _check_conv_args(C, (KH, KW, kernel.shape[2], F))
    OH, OW = _geometry(N, H, W, C, KH, KW, 0, 0, 0, 0, sh, sw, dh, dw)
    if not relu_maxpool_native(KH * KW * C):
        raise ValueError(f"the one-pass convolution, ReLU and max pooling needs relu_maxpool_native(K) "
                         f"(AVX-512F, K = KH * KW * C <= {CYNET_CS_FUSED_MAX_K}); received K = {KH * KW * C}")
    return _make_geom(N, H, W, C, KH, KW, OH, OW, 0, 0, sh, sw, dh, dw)


cdef void _team_pool_pass(Short sp, Geom g, const float* w, const float* b, const float* dp, float* p,
                          const unsigned char* sel_in, unsigned char* sel, float* dkp, double* dbp,
                          Py_ssize_t F, Py_ssize_t mb, int nt, bint bf16) noexcept nogil:
    """Thread t's images [t N / nt, (t + 1) N / nt). Forward (dp NULL): their pooled outputs p
    and records sel (w: the kernel (rounded under bf16), b the bias or NULL). Backward: thread t's
    partial dkernel (K, F) at dkp + t*K*F and dbias (F doubles, unless dbp is NULL) at dbp + t*F
    from dp (rounded for the product under bf16) and the records sel_in."""
    cdef Py_ssize_t K = g.KH * g.KW * g.C, HWC = g.H * g.W * g.C
    cdef Py_ssize_t PH = g.OH // 2, PW = g.OW // 2
    cdef Py_ssize_t PP = PH * PW, rs = g.sh * g.W * g.C, ps = g.sw * g.C
    cdef Py_ssize_t t, n, f
    cdef const float* xn
    cdef float* dk
    cdef double* db
    for t in prange(nt, schedule="static", num_threads=nt):
        dk = dkp + t * K * F if dkp != NULL else NULL
        db = dbp + t * F if dbp != NULL else NULL
        if dk != NULL:
            zero_n(dk, K * F)
        if db != NULL:
            for f in range(F):
                db[f] = 0.0
        for n in range((t * g.N) // nt, ((t + 1) * g.N) // nt):
            xn = sp.xr + CY_SPAN(n * HWC, HWC, g.N * HWC)
            if dp == NULL:
                cynet_cs_pool_forward(xn, PH, rs, PW, ps, sp.offx, K, w, F, b,
                                      p + CY_SPAN(n * PP * F, PP * F, g.N * PP * F),
                                      sel + CY_SPAN(n * PP * 4 * mb, PP * 4 * mb, g.N * PP * 4 * mb), mb)
            else:
                cynet_cs_pool_backward(xn, PH, rs, PW, ps, sp.offx, K, dp + CY_SPAN(n * PP * F, PP * F, g.N * PP * F),
                                       sel_in + CY_SPAN(n * PP * 4 * mb, PP * 4 * mb, g.N * PP * 4 * mb), mb,
                                       F, dk, db, bf16)


def conv2d_relu_maxpool_forward(const float[:, :, :, ::1] x, const float[:, :, :, ::1] kernel, bias,
                                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw, bint bf16):
    """The 2x2 / stride 2 max pooling of relu(conv2d_forward(x, kernel, bias, valid padding,
    strides (sh, sw), dilation (dh, dw))) in one pass, where relu_maxpool_native(K): AVX-512 FMAs,
    float32, on x and kernel rounded to bfloat16 when bf16 (then the same outputs as
    conv2d_forward_bf16's, whose short products are these). Returns
    (p (N, OH // 2, OW // 2, F), sel): sel uint8 (N * (OH // 2) * (OW // 2), 4, ceil(F / 8)), bit
    j % 8 of byte j // 8 of sel[u, q] 1 where pooled output u's channel j is > 0 and its first
    maximum is window cell q ((0,0), (0,1), (1,0), (1,1)): what the backward takes."""
    cdef Geom g = _pool_geom(x, kernel, sh, sw, dh, dw)
    cdef Py_ssize_t K = g.KH * g.KW * g.C, F = kernel.shape[3], mb = (F + 7) // 8
    cdef const float[::1] b = bias
    cdef const float* bp = _bias_data(b, F)
    p = np.empty((g.N, g.OH // 2, g.OW // 2, F), dtype=np.float32)
    sel = np.zeros((p.shape[0] * p.shape[1] * p.shape[2], 4, mb), dtype=np.uint8)
    if p.size == 0:
        return p, sel
    cdef float[:, :, :, ::1] pv = p
    cdef unsigned char[:, :, ::1] sv = sel
    cdef const float[:, ::1] wr = (_rounded if bf16 else np.asarray)(np.asarray(kernel).reshape(K, F))
    keep = []
    cdef Short sp = _short_setup(x, g, keep, bf16)
    cdef int nt = _bf16_team(g)
    with nogil:
        _team_pool_pass(sp, g, &wr[0, 0], bp, NULL, &pv[0, 0, 0, 0], NULL, &sv[0, 0, 0], NULL, NULL, F, mb, nt,
                        bf16)
    return p, sel


def conv2d_relu_maxpool_backward(const float[:, :, :, ::1] dp, const float[:, :, :, ::1] x,
                                 const float[:, :, :, ::1] kernel, sel, Py_ssize_t sh, Py_ssize_t sw,
                                 Py_ssize_t dh, Py_ssize_t dw, bint use_bias, bint bf16):
    """(dkernel, dbias or None) from dp, the gradient of conv2d_relu_maxpool_forward's p, and its
    record sel, in one pass (no input gradient: the first convolution's backward; x and dp
    rounded to bfloat16 for the product when bf16; the bias gradient's float32 sums of the
    unrounded dp added in float64, as conv2d_backward_bf16's). New float32 arrays."""
    cdef Geom g = _pool_geom(x, kernel, sh, sw, dh, dw)
    cdef Py_ssize_t K = g.KH * g.KW * g.C, F = kernel.shape[3], mb = (F + 7) // 8
    cdef Py_ssize_t PH = g.OH // 2, PW = g.OW // 2
    if (dp.shape[0], dp.shape[1], dp.shape[2], dp.shape[3]) != (g.N, PH, PW, F):
        raise ValueError(f"dp must have shape {(g.N, PH, PW, F)}; received shape "
                         f"{(dp.shape[0], dp.shape[1], dp.shape[2], dp.shape[3])}")
    if not isinstance(sel, np.ndarray) or sel.dtype != np.uint8 or sel.shape != (g.N * PH * PW, 4, mb):
        raise ValueError(f"sel must be a uint8 array of shape {(g.N * PH * PW, 4, mb)}; received "
                         f"{getattr(sel, 'dtype', type(sel).__name__)} {getattr(sel, 'shape', '')}")
    cdef const unsigned char[:, :, ::1] sv = sel
    dkernel = np.zeros((g.KH, g.KW, g.C, F), dtype=np.float32)
    dbias = np.zeros(F, dtype=np.float32) if use_bias else None
    if dp.size == 0:
        return dkernel, dbias
    cdef int nt = _bf16_team(g)
    dkp_a = np.empty((nt, K, F), dtype=np.float32)
    dbp_a = np.empty((nt, F), dtype=np.float64)
    cdef float[:, :, ::1] dkp = dkp_a
    cdef double[:, ::1] dbp = dbp_a
    keep = []
    cdef Short sp = _short_setup(x, g, keep, bf16)
    with nogil:
        _team_pool_pass(sp, g, NULL, NULL, &dp[0, 0, 0, 0], NULL, &sv[0, 0, 0], NULL, &dkp[0, 0, 0],
                        &dbp[0, 0] if use_bias else NULL, F, mb, nt, bf16)
    dkernel = (dkp_a[0] if nt == 1 else dkp_a.sum(axis=0)).reshape(g.KH, g.KW, g.C, F)
    if use_bias:
        dbias = dbp_a.sum(axis=0).astype(np.float32)
    return dkernel, dbias
