/* cynet_pool.h: the 2x2 / stride 2 / valid max pooling of one image (pool.pyx's common case: an
   image model's pooling after a convolution), as CYNET_CLONES C loops.

   pool.pyx itself compiles for the baseline x86-64 (SSE2), and its general window loops run
   one window cell per pass over the channels; these read the four cells of a window in one
   pass, keep the running max and its index in registers and write y and argmax (or the four
   dx cells) once, vectorised over the channels by GCC's AVX2 / AVX-512 clones. Same arithmetic
   and order as the general path (cells (0,0), (0,1), (1,0), (1,1); a NaN wins over a number;
   the first maximum wins), so the results are identical. */
#ifndef CYNET_POOL_H
#define CYNET_POOL_H
#include <stdint.h>
#include "cynet_simd.h"

/* y, am (OH, OW, C) = the max and its window-local index of each 2x2 window of x (H, W, C);
   rows 2*OH and columns 2*OW of x are read (a last odd row or column belongs to no window). */
#define CYNET_POOL_MAX_FWD_2X2(T, SUF, SEL)                                                            \
CYNET_CLONES CYNET_UNUSED static void cynet_max_fwd_2x2_##SUF(const T* x, T* y, int32_t* am, Py_ssize_t W,  \
                                                             Py_ssize_t C, Py_ssize_t OH, Py_ssize_t OW) { \
    Py_ssize_t oh, ow, c;                                                                              \
    for (oh = 0; oh < OH; oh++)                                                                        \
        for (ow = 0; ow < OW; ow++) {                                                                  \
            const T* r0 = x + (2 * oh * W + 2 * ow) * C;                                               \
            const T* r1 = r0 + W * C;                                                                  \
            T* yr = y + (oh * OW + ow) * C;                                                            \
            int32_t* ar = am + (oh * OW + ow) * C;                                                     \
            CYNET_IVDEP                                                                                \
            for (c = 0; c < C; c++) {                                                                  \
                T m = r0[c], v;                                                                        \
                int32_t k = 0, t;                                                                      \
                v = r0[C + c];                                                                         \
                t = (v > m) | ((v != v) & (m == m));                                                   \
                m = SEL(t, v, m); k = t ? 1 : k;                                                       \
                v = r1[c];                                                                             \
                t = (v > m) | ((v != v) & (m == m));                                                   \
                m = SEL(t, v, m); k = t ? 2 : k;                                                       \
                v = r1[C + c];                                                                         \
                t = (v > m) | ((v != v) & (m == m));                                                   \
                m = SEL(t, v, m); k = t ? 3 : k;                                                       \
                yr[c] = m;                                                                             \
                ar[c] = k;                                                                             \
            }                                                                                          \
        }                                                                                              \
}

/* dx rows [0, 2*OH) x columns [0, 2*OW) of one image (H, W, C): each dy at its window's argmax
   cell, 0 at the other three, every cell stored once. Returns 1 (dx then incomplete) if an
   argmax lies outside [0, 4), the range check fused into the same pass. */
#define CYNET_POOL_MAX_BWD_2X2(T, SUF, SEL)                                                            \
CYNET_CLONES CYNET_UNUSED static int cynet_max_bwd_2x2_##SUF(const T* dy, const int32_t* am, T* dx, Py_ssize_t W, \
                                                            Py_ssize_t C, Py_ssize_t OH, Py_ssize_t OW) { \
    Py_ssize_t oh, ow, c;                                                                              \
    uint32_t bad = 0;                                                                                  \
    for (oh = 0; oh < OH; oh++)                                                                        \
        for (ow = 0; ow < OW; ow++) {                                                                  \
            T* r0 = dx + (2 * oh * W + 2 * ow) * C;                                                    \
            T* r1 = r0 + W * C;                                                                        \
            const T* g = dy + (oh * OW + ow) * C;                                                      \
            const int32_t* ar = am + (oh * OW + ow) * C;                                               \
            CYNET_IVDEP                                                                                \
            for (c = 0; c < C; c++) {                                                                  \
                T v = g[c], z = 0;                                                                     \
                int32_t k = ar[c];                                                                     \
                bad |= (uint32_t)k >= 4u;                                                              \
                r0[c] = SEL(k == 0, v, z);                                                             \
                r0[C + c] = SEL(k == 1, v, z);                                                         \
                r1[c] = SEL(k == 2, v, z);                                                             \
                r1[C + c] = SEL(k == 3, v, z);                                                         \
            }                                                                                          \
        }                                                                                              \
    return bad != 0;                                                                                   \
}

CYNET_POOL_MAX_FWD_2X2(float, f, cynet_self)
CYNET_POOL_MAX_FWD_2X2(double, d, cynet_seld)
CYNET_POOL_MAX_BWD_2X2(float, f, cynet_self)
CYNET_POOL_MAX_BWD_2X2(double, d, cynet_seld)

#endif  /* CYNET_POOL_H */
