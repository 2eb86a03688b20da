/* cynet_col2im.h: the add of col2im (conv.pyx's _col2im_row: one window column of the patch
   gradients of an output row, added into an input row), as CYNET_CLONES C loops: conv.pyx
   compiles for the baseline x86-64 (SSE2), and this add runs over every patch gradient of a
   convolution's backward (float32 and float64; the mixed_bfloat16 path too). */
#ifndef CYNET_COL2IM_H
#define CYNET_COL2IM_H
#include "cynet_simd.h"

/* dxr[iw * C : iw * C + C] += s[ow * K : ow * K + C] for ow < OW, iw = iw0 + ow * sw, 0 <= iw < W */
#define CYNET_COL2IM_ADD(T, SUF)                                                                        \
CYNET_CLONES CYNET_UNUSED static void cynet_col2im_add_##SUF(T* dxr, const T* s, Py_ssize_t OW, Py_ssize_t K, \
                                                            Py_ssize_t C, Py_ssize_t iw0, Py_ssize_t sw,   \
                                                            Py_ssize_t W) {                                \
    Py_ssize_t ow, c;                                                                                   \
    for (ow = 0; ow < OW; ow++) {                                                                       \
        Py_ssize_t iw = iw0 + ow * sw;                                                                  \
        if (iw >= 0 && iw < W) {                                                                        \
            T* d = dxr + iw * C;                                                                        \
            const T* q = s + ow * K;                                                                    \
            CYNET_IVDEP                                                                                 \
            for (c = 0; c < C; c++)                                                                     \
                d[c] += q[c];                                                                           \
        }                                                                                               \
    }                                                                                                   \
}

CYNET_COL2IM_ADD(float, f)
CYNET_COL2IM_ADD(double, d)

#endif  /* CYNET_COL2IM_H */
