"""Recurrent kernels (compiled): SimpleRNN, LSTM and GRU, whole-sequence forward and
backpropagation through time, with Keras 3 semantics and weight layouts.

Twin: rnn_numpy.py (same names, signatures, layouts and results).

Layout. Sequences are stored FEATURE-MAJOR inside the kernels: an (F, T, N) C-contiguous
buffer, so that the slab of one timestep is F rows of N contiguous samples. Then the recurrent
product of a step is recurrent_kernel.T (kU, U) @ h_{t-1} (U, N), the orientation that runs
fastest for small batches (measured 12.6 ms vs 16.4 ms per LSTM sequence at N=32, U=256, on
OpenBLAS), and every whole-sequence product (inputs, dkernel, drecurrent_kernel, dx) is still
ONE 2-D matmul over the (F, T*N) views. cynet.kernels.rnn converts from / to the public (N, T, F) arrays
(its outputs are (N, T, F) views of these buffers, so chained layers copy nothing).
The buffers that only the step kernels read (the LSTM's gates and cell states, the GRU's cache)
are TIME-major, (T, F, N): a step's rows are one contiguous slab instead of rows a whole
sequence apart. The fused gate passes of an LSTM call (U 256, N 32, perf) spend 40% less time
than with those buffers feature-major. Their input projection is then one matmul per step (a
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
written straight into the gates buffer; then per step the recurrent product and ONE fused
gate kernel for all the other arithmetic of the step. Backward runs one fused gate-gradient
kernel per step, then dh_{t-1} = recurrent_kernel @ dgates_t, and after the loop ONE matmul
each for dkernel = X dG^T, drecurrent_kernel = Hprev dG^T and dx = kernel dG over the stacked
per-step gate gradients; dbias is a row sum. The whole time loop runs without the GIL: the
per-step products are cynet_gemm.h's, on the recurrent kernel packed once per call (BLAS
would repack it at every step, and each np.matmul call costs a few microseconds of Python),
the whole-sequence ones NumPy's BLAS.

The gate kernels are C. Cython compiles them for the baseline ISA only (SSE2 on x86-64, set
once in setup.py for every module), and under GCC's default -ftrapping-math a float `?:` is not
if-converted, so Cython loops with a select or a libm call stay scalar: libm expf/tanhf cost
4-15 ns per element here, more than the matmuls. So the per-step kernels below are plain C99,
written once for both float types by a macro, on the branch-free exp and tanh of cynet_simd.h,
and built by CYNET_CLONES for the baseline, AVX2+FMA and AVX-512 (chosen once at load time).
The Keras default activations (tanh, sigmoid) of the LSTM and the GRU take a fused path: one
vectorised pass over a unit's samples per step instead of one pass per operation.
Cython owns everything else: validation, buffers, the time loop, the matmuls and the threads.

Threads. A step's kernel runs prange over chunks of units when the step has enough work
(threads_for(k*U*N, COST_RECURRENT)); at the benchmark size (1024 x 32 gate values per step,
a few microseconds) it stays serial, since waking a passive OpenMP team costs more. For the
same reason a step's product goes back to NumPy's BLAS (np.matmul under the GIL, on its own
threads) when more threads are configured and the thread policy gives its multiply-adds
(COST_RECURRENT_MACS) more than one thread (the benchmark LSTM's 8.4M do). The whole-sequence matmuls run on NumPy's BLAS outside
any parallel region.
"""
import mmap
import os
import threading
import weakref

import numpy as np

from cython cimport floating
from cython.parallel cimport prange

from cynet._kernels._openmp cimport threads_for, COST_RECURRENT, COST_RECURRENT_MACS

cdef extern from *:
    """
    #include "cynet_simd.h"
    #include "cynet_gemm.h"

    #ifndef CYNET_AHEAD
    #define CYNET_AHEAD 4   /* units ahead whose rows the fused kernels prefetch (8: no better) */
    #endif
    enum { CYNET_LINEAR = 0, CYNET_TANH = 1, CYNET_SIGMOID = 2, CYNET_RELU = 3, CYNET_HARD_SIGMOID = 4 };

    /* The gate kernels, written once for T = float (suffix f) and double (suffix d).
       Each handles one timestep for the units [u0, u1). A "row" is the N samples of one gate
       unit (contiguous); every array argument is a block of rows with its own row stride
       (in elements), the matmul outputs r, dh, dhg, dhd are contiguous (rows of N).
       Step numbers match the twin (rnn_numpy.py). */
    #define CYNET_RNN_KERNELS(T, S, SEL, EXP, TANH)                                              \
                                                                                                  \
    /* y = act(x) over n elements (x == y allowed) */                                             \
    static inline void cynet_act_##S(int kind, const T* x, T* y, Py_ssize_t n) {                  \
        Py_ssize_t i; T v;                                                                        \
        switch (kind) {                                                                           \
        case CYNET_TANH:                                                                          \
            for (i = 0; i < n; i++) y[i] = TANH(x[i]);                                            \
            break;                                                                                \
        case CYNET_SIGMOID:                                                                       \
            for (i = 0; i < n; i++) y[i] = (T)1 / ((T)1 + EXP(-x[i]));                            \
            break;                                                                                \
        case CYNET_RELU:                                                                          \
            for (i = 0; i < n; i++) y[i] = SEL(x[i] < (T)0, (T)0, x[i]);                          \
            break;                                                                                \
        case CYNET_HARD_SIGMOID:                                                                  \
            for (i = 0; i < n; i++) {                                                             \
                v = x[i] / (T)6 + (T)0.5;                                                         \
                v = SEL(v < (T)0, (T)0, v);                                                       \
                y[i] = SEL(v > (T)1, (T)1, v);                                                    \
            }                                                                                     \
            break;                                                                                \
        default:                                                                                  \
            if (x != y) for (i = 0; i < n; i++) y[i] = x[i];                                      \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* d *= act'(.) written from the activation's output y */                                     \
    static inline void cynet_dact_##S(int kind, const T* y, T* d, Py_ssize_t n) {                 \
        Py_ssize_t i;                                                                             \
        switch (kind) {                                                                           \
        case CYNET_TANH:                                                                          \
            for (i = 0; i < n; i++) d[i] *= (T)1 - y[i] * y[i];                                   \
            break;                                                                                \
        case CYNET_SIGMOID:                                                                       \
            for (i = 0; i < n; i++) d[i] *= y[i] * ((T)1 - y[i]);                                 \
            break;                                                                                \
        case CYNET_RELU:                                                                          \
            for (i = 0; i < n; i++) d[i] *= SEL(y[i] > (T)0, (T)1, (T)0);                         \
            break;                                                                                \
        case CYNET_HARD_SIGMOID:                                                                  \
            for (i = 0; i < n; i++) d[i] *= SEL((y[i] > (T)0) & (y[i] < (T)1), (T)1 / (T)6, (T)0); \
            break;                                                                                \
        default:                                                                                  \
            break;                                                                                \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* SimpleRNN forward: h (rows of x W on entry) <- act(x W + h_{t-1} U + b) */                 \
    CYNET_CLONES static void cynet_simple_fwd_##S(                                                \
            T* h, Py_ssize_t sh, const T* r, const T* b,                                          \
            Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act) {                                \
        Py_ssize_t u, n;                                                                          \
        for (u = u0; u < u1; u++) {                                                               \
            T* hu = h + u * sh; const T* ru = r + u * N; T bu = b[u];                             \
            if (act == CYNET_TANH) {   /* the Keras default, fused: one pass */                   \
                if (u + CYNET_AHEAD < u1) CYNET_PREFETCH(hu + CYNET_AHEAD * sh, N, sizeof(T), 1); \
                CYNET_IVDEP                                                                       \
                for (n = 0; n < N; n++) hu[n] = TANH(hu[n] + ru[n] + bu);                         \
                continue;                                                                         \
            }                                                                                     \
            /* step 2: pre-activation, then the activation */                                     \
            for (n = 0; n < N; n++) hu[n] = hu[n] + ru[n] + bu;                                   \
            cynet_act_##S(act, hu, hu, N);                                                        \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* SimpleRNN backward: dg = (dh + dhs_t) * act'(h_t) */                                       \
    CYNET_CLONES static void cynet_simple_bwd_##S(                                                \
            T* dg, Py_ssize_t sdg, const T* dh, const T* dhs, Py_ssize_t sdn, Py_ssize_t sdu,     \
            const T* h, Py_ssize_t sh, Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act) {     \
        Py_ssize_t u, n;                                                                          \
        for (u = u0; u < u1; u++) {                                                               \
            T* g = dg + u * sdg; const T* d = dh + u * N; const T* o = dhs + u * sdu;             \
            if (act == CYNET_TANH) {   /* the Keras default, fused: one pass */                   \
                const T* hu = h + u * sh;                                                         \
                if (u + CYNET_AHEAD < u1) {                                                       \
                    CYNET_PREFETCH(hu + CYNET_AHEAD * sh, N, sizeof(T), 0);                       \
                    CYNET_PREFETCH(g + CYNET_AHEAD * sdg, N, sizeof(T), 1);                       \
                }                                                                                 \
                CYNET_IVDEP                                                                       \
                for (n = 0; n < N; n++) g[n] = (d[n] + o[n * sdn]) * ((T)1 - hu[n] * hu[n]);     \
                continue;                                                                         \
            }                                                                                     \
            /* step 1: total gradient of h_t (from step t+1 and from the output) */               \
            for (n = 0; n < N; n++) g[n] = d[n] + o[n * sdn];                                     \
            /* step 2: through the activation */                                                  \
            cynet_dact_##S(act, h + u * sh, g, N);                                                \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* LSTM forward: gates g (rows of x W on entry, i|f|c|o blocks of U rows) */                  \
    CYNET_CLONES static void cynet_lstm_fwd_##S(                                                  \
            T* g, Py_ssize_t sg, const T* r, const T* b, const T* cp, Py_ssize_t scp,             \
            T* c, Py_ssize_t sc, T* h, Py_ssize_t sh,                                             \
            Py_ssize_t U, Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act, int ract) {        \
        Py_ssize_t u, n, k;                                                                       \
        for (u = u0; u < u1; u++) {                                                               \
            T* gi = g + u * sg; T* gf = g + (U + u) * sg;                                         \
            T* gg = g + (2 * U + u) * sg; T* go = g + (3 * U + u) * sg;                           \
            const T* cpu = cp + u * scp; T* cu = c + u * sc; T* hu = h + u * sh;                  \
            if (act == CYNET_TANH && ract == CYNET_SIGMOID) {                                     \
                /* the Keras default, fused: one pass over the N samples of a unit, steps 2-5 */  \
                const T* ri = r + u * N; const T* rf = r + (U + u) * N;                           \
                const T* rg = r + (2 * U + u) * N; const T* ro = r + (3 * U + u) * N;             \
                T bi = b[u], bf = b[U + u], bg = b[2 * U + u], bo = b[3 * U + u];                 \
                if (u + CYNET_AHEAD < u1) {                                                       \
                    CYNET_PREFETCH_GATES(gi + CYNET_AHEAD * sg, U * sg, N, sizeof(T), 1);         \
                    CYNET_PREFETCH(cu + CYNET_AHEAD * sc, N, sizeof(T), 1);                       \
                    CYNET_PREFETCH(hu + CYNET_AHEAD * sh, N, sizeof(T), 1);                       \
                }                                                                                 \
                CYNET_IVDEP                                                                       \
                for (n = 0; n < N; n++) {                                                         \
                    T vi = (T)1 / ((T)1 + EXP(-(gi[n] + ri[n] + bi)));                            \
                    T vf = (T)1 / ((T)1 + EXP(-(gf[n] + rf[n] + bf)));                            \
                    T vo = (T)1 / ((T)1 + EXP(-(go[n] + ro[n] + bo)));                            \
                    T vg = TANH(gg[n] + rg[n] + bg);                                              \
                    T vc = vf * cpu[n] + vi * vg;                                                 \
                    gi[n] = vi; gf[n] = vf; gg[n] = vg; go[n] = vo; cu[n] = vc;                   \
                    hu[n] = vo * TANH(vc);                                                        \
                }                                                                                 \
                continue;                                                                         \
            }                                                                                     \
            /* step 2: pre-activations z = x W + h_{t-1} U + b */                                 \
            for (k = 0; k < 4; k++) {                                                             \
                T* z = g + (k * U + u) * sg; const T* rk = r + (k * U + u) * N; T bk = b[k * U + u]; \
                for (n = 0; n < N; n++) z[n] = z[n] + rk[n] + bk;                                 \
            }                                                                                     \
            /* step 3: gates i, f, o with the recurrent activation, candidate g with act */       \
            cynet_act_##S(ract, gi, gi, N);                                                       \
            cynet_act_##S(ract, gf, gf, N);                                                       \
            cynet_act_##S(ract, go, go, N);                                                       \
            cynet_act_##S(act, gg, gg, N);                                                        \
            /* step 4: cell state c_t = f * c_{t-1} + i * g */                                    \
            for (n = 0; n < N; n++) cu[n] = gf[n] * cpu[n] + gi[n] * gg[n];                       \
            /* step 5: hidden state h_t = o * act(c_t) */                                         \
            cynet_act_##S(act, cu, hu, N);                                                        \
            for (n = 0; n < N; n++) hu[n] = go[n] * hu[n];                                        \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* LSTM backward: dh (U, N) holds the matmul part of dh_t, dc the gradient of c_t; on exit    \
       dg holds the pre-activation gradients, dc the gradient of c_{t-1} */                       \
    CYNET_CLONES static void cynet_lstm_bwd_##S(                                                  \
            T* dg, Py_ssize_t sdg, T* dh, const T* dhs, Py_ssize_t sdn, Py_ssize_t sdu, T* dc,    \
            const T* g, Py_ssize_t sg, const T* c, Py_ssize_t sc, const T* cp, Py_ssize_t scp,    \
            Py_ssize_t U, Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act, int ract) {        \
        Py_ssize_t u, n; T d;                                                                     \
        for (u = u0; u < u1; u++) {                                                               \
            T* di = dg + u * sdg; T* df = dg + (U + u) * sdg;                                     \
            T* dgg = dg + (2 * U + u) * sdg; T* dgo = dg + (3 * U + u) * sdg;                     \
            const T* gi = g + u * sg; const T* gf = g + (U + u) * sg;                             \
            const T* gg = g + (2 * U + u) * sg; const T* go = g + (3 * U + u) * sg;               \
            T* dhu = dh + u * N; T* dcu = dc + u * N; const T* o = dhs + u * sdu;                 \
            const T* cu = c + u * sc; const T* cpu = cp + u * scp;                                \
            if (act == CYNET_TANH && ract == CYNET_SIGMOID) {                                     \
                /* the Keras default, fused: one pass over the N samples of a unit, steps 1-5 */  \
                if (u + CYNET_AHEAD < u1) {                                                       \
                    CYNET_PREFETCH_GATES(gi + CYNET_AHEAD * sg, U * sg, N, sizeof(T), 0);         \
                    CYNET_PREFETCH_GATES(di + CYNET_AHEAD * sdg, U * sdg, N, sizeof(T), 1);       \
                    CYNET_PREFETCH(cu + CYNET_AHEAD * sc, N, sizeof(T), 0);                       \
                    CYNET_PREFETCH(cpu + CYNET_AHEAD * scp, N, sizeof(T), 0);                     \
                }                                                                                 \
                CYNET_IVDEP                                                                       \
                for (n = 0; n < N; n++) {                                                         \
                    T vh = dhu[n] + o[n * sdn], tc = TANH(cu[n]);                                 \
                    T vi = gi[n], vf = gf[n], vg = gg[n], vo = go[n];                             \
                    d = dcu[n] + (vh * vo) * ((T)1 - tc * tc);                                    \
                    dhu[n] = vh;                                                                  \
                    dcu[n] = d * vf;                                                              \
                    di[n] = (d * vg) * (vi * ((T)1 - vi));                                        \
                    df[n] = (d * cpu[n]) * (vf * ((T)1 - vf));                                    \
                    dgg[n] = (d * vi) * ((T)1 - vg * vg);                                         \
                    dgo[n] = (vh * tc) * (vo * ((T)1 - vo));                                      \
                }                                                                                 \
                continue;                                                                         \
            }                                                                                     \
            /* step 1: total gradient of h_t (matmul part from step t+1 + output gradient) */     \
            for (n = 0; n < N; n++) dhu[n] = dhu[n] + o[n * sdn];                                 \
            /* step 2: recompute act(c_t) into the o block */                                     \
            cynet_act_##S(act, cu, dgo, N);                                                       \
            /* step 3: gradient reaching c_t through h_t, dh * o * act'(c_t), in the f block */   \
            for (n = 0; n < N; n++) df[n] = dhu[n] * go[n];                                       \
            cynet_dact_##S(act, dgo, df, N);                                                      \
            /* step 4: cell gradient, gate gradients before their activations; dc -> dc_{t-1} */  \
            for (n = 0; n < N; n++) {                                                             \
                d = dcu[n] + df[n];                                                               \
                dcu[n] = d * gf[n];                                                               \
                di[n] = d * gg[n];                                                                \
                df[n] = d * cpu[n];                                                               \
                dgg[n] = d * gi[n];                                                               \
                dgo[n] = dhu[n] * dgo[n];                                                         \
            }                                                                                     \
            /* step 5: through the activations, from their outputs */                             \
            cynet_dact_##S(ract, gi, di, N);                                                      \
            cynet_dact_##S(ract, gf, df, N);                                                      \
            cynet_dact_##S(ract, go, dgo, N);                                                     \
            cynet_dact_##S(act, gg, dgg, N);                                                      \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* GRU forward: cache g (rows x W for z|r|h on entry, 4th block rh written here) */           \
    CYNET_CLONES static void cynet_gru_fwd_##S(                                                   \
            T* g, Py_ssize_t sg, const T* r, const T* b_in, const T* b_rec,                       \
            const T* hp, Py_ssize_t shp, T* h, Py_ssize_t sh,                                     \
            Py_ssize_t U, Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act, int ract) {        \
        Py_ssize_t u, n; T zz;                                                                    \
        for (u = u0; u < u1; u++) {                                                               \
            T* z = g + u * sg; T* rr = g + (U + u) * sg;                                          \
            T* hh = g + (2 * U + u) * sg; T* rh = g + (3 * U + u) * sg;                           \
            const T* rz = r + u * N; const T* rrr = r + (U + u) * N; const T* rhh = r + (2 * U + u) * N; \
            const T* hpu = hp + u * shp; T* hu = h + u * sh;                                      \
            T bz = b_in[u], br = b_in[U + u], bh = b_in[2 * U + u];                               \
            T cz = b_rec[u], cr = b_rec[U + u], ch = b_rec[2 * U + u];                            \
            if (act == CYNET_TANH && ract == CYNET_SIGMOID) {                                     \
                /* the Keras default, fused: one pass over the N samples of a unit, steps 2-5 */  \
                if (u + CYNET_AHEAD < u1) {                                                       \
                    CYNET_PREFETCH_GATES(z + CYNET_AHEAD * sg, U * sg, N, sizeof(T), 1);          \
                    CYNET_PREFETCH(hu + CYNET_AHEAD * sh, N, sizeof(T), 1);                       \
                }                                                                                 \
                CYNET_IVDEP                                                                       \
                for (n = 0; n < N; n++) {                                                         \
                    T vz = (T)1 / ((T)1 + EXP(-(z[n] + bz + (rz[n] + cz))));                      \
                    T vr = (T)1 / ((T)1 + EXP(-(rr[n] + br + (rrr[n] + cr))));                    \
                    T vrh = rhh[n] + ch;                                                          \
                    T vh = TANH(hh[n] + bh + vr * vrh);                                           \
                    z[n] = vz; rr[n] = vr; rh[n] = vrh; hh[n] = vh;                               \
                    hu[n] = vz * hpu[n] + ((T)1 - vz) * vh;                                       \
                }                                                                                 \
                continue;                                                                         \
            }                                                                                     \
            /* step 2: z, r pre-activations (x W + b_in) + (h_{t-1} U + b_rec), and rh */         \
            for (n = 0; n < N; n++) {                                                             \
                z[n] = z[n] + bz + (rz[n] + cz);                                                  \
                rr[n] = rr[n] + br + (rrr[n] + cr);                                               \
                rh[n] = rhh[n] + ch;                                                              \
            }                                                                                     \
            /* step 3: update and reset gates */                                                  \
            cynet_act_##S(ract, z, z, N);                                                         \
            cynet_act_##S(ract, rr, rr, N);                                                       \
            /* step 4: candidate hh = act(x W_h + b_in_h + r * rh) */                             \
            for (n = 0; n < N; n++) hh[n] = hh[n] + bh + rr[n] * rh[n];                           \
            cynet_act_##S(act, hh, hh, N);                                                        \
            /* step 5: h_t = z * h_{t-1} + (1 - z) * hh */                                        \
            for (n = 0; n < N; n++) {                                                             \
                zz = z[n];                                                                        \
                hu[n] = zz * hpu[n] + ((T)1 - zz) * hh[n];                                        \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* GRU backward: dg rows dxh | dz | dr | dhr; dhg (U, N) the matmul part of dh_t, dhd the     \
       direct part z * dh_t of the step after (rewritten for this step) */                        \
    CYNET_CLONES static void cynet_gru_bwd_##S(                                                   \
            T* dg, Py_ssize_t sdg, const T* dhg, T* dhd, const T* dhs, Py_ssize_t sdn,            \
            Py_ssize_t sdu, const T* g, Py_ssize_t sg, const T* hp, Py_ssize_t shp,               \
            Py_ssize_t U, Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act, int ract) {        \
        Py_ssize_t u, n; T d, zz;                                                                 \
        for (u = u0; u < u1; u++) {                                                               \
            T* dxh = dg + u * sdg; T* dz = dg + (U + u) * sdg;                                    \
            T* dr = dg + (2 * U + u) * sdg; T* dhr = dg + (3 * U + u) * sdg;                      \
            const T* z = g + u * sg; const T* rr = g + (U + u) * sg;                              \
            const T* hh = g + (2 * U + u) * sg; const T* rh = g + (3 * U + u) * sg;               \
            const T* dgu = dhg + u * N; T* ddu = dhd + u * N; const T* o = dhs + u * sdu;         \
            const T* hpu = hp + u * shp;                                                          \
            if (act == CYNET_TANH && ract == CYNET_SIGMOID) {                                     \
                /* the Keras default, fused: one pass over the N samples of a unit, steps 1-4 */  \
                if (u + CYNET_AHEAD < u1) {                                                       \
                    CYNET_PREFETCH_GATES(z + CYNET_AHEAD * sg, U * sg, N, sizeof(T), 0);          \
                    CYNET_PREFETCH_GATES(dxh + CYNET_AHEAD * sdg, U * sdg, N, sizeof(T), 1);      \
                    CYNET_PREFETCH(hpu + CYNET_AHEAD * shp, N, sizeof(T), 0);                     \
                }                                                                                 \
                CYNET_IVDEP                                                                       \
                for (n = 0; n < N; n++) {                                                         \
                    T vz = z[n], vr = rr[n], vh = hh[n], vd;                                      \
                    d = dgu[n] + ddu[n] + o[n * sdn];                                             \
                    vd = (d * ((T)1 - vz)) * ((T)1 - vh * vh);                                    \
                    ddu[n] = d * vz;                                                              \
                    dxh[n] = vd;                                                                  \
                    dz[n] = (d * (hpu[n] - vh)) * (vz * ((T)1 - vz));                             \
                    dr[n] = (vd * rh[n]) * (vr * ((T)1 - vr));                                    \
                    dhr[n] = vd * vr;                                                             \
                }                                                                                 \
                continue;                                                                         \
            }                                                                                     \
            /* step 1: total gradient of h_t, split over z, hh and the direct path */             \
            for (n = 0; n < N; n++) {                                                             \
                d = dgu[n] + ddu[n] + o[n * sdn];                                                 \
                zz = z[n];                                                                        \
                dz[n] = d * (hpu[n] - hh[n]);                                                     \
                dxh[n] = d * ((T)1 - zz);                                                         \
                ddu[n] = d * zz;                                                                  \
            }                                                                                     \
            /* step 2: through the candidate activation */                                        \
            cynet_dact_##S(act, hh, dxh, N);                                                      \
            /* step 3: reset gate and the recurrent candidate part */                             \
            for (n = 0; n < N; n++) {                                                             \
                dr[n] = dxh[n] * rh[n];                                                           \
                dhr[n] = dxh[n] * rr[n];                                                          \
            }                                                                                     \
            /* step 4: through the recurrent activation of z and r */                             \
            cynet_dact_##S(ract, z, dz, N);                                                       \
            cynet_dact_##S(ract, rr, dr, N);                                                      \
        }                                                                                         \
    }

    CYNET_RNN_KERNELS(float, f, cynet_self, cynet_expf, cynet_tanhf)
    CYNET_RNN_KERNELS(double, d, cynet_seld, cynet_expd, cynet_tanhd)
    """
    void cynet_simple_fwd_f(float* h, Py_ssize_t sh, const float* r, const float* b,
                            Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act) noexcept nogil
    void cynet_simple_fwd_d(double* h, Py_ssize_t sh, const double* r, const double* b,
                            Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act) noexcept nogil
    void cynet_simple_bwd_f(float* dg, Py_ssize_t sdg, const float* dh, const float* dhs, Py_ssize_t sdn,
                            Py_ssize_t sdu, const float* h, Py_ssize_t sh, Py_ssize_t N, Py_ssize_t u0,
                            Py_ssize_t u1, int act) noexcept nogil
    void cynet_simple_bwd_d(double* dg, Py_ssize_t sdg, const double* dh, const double* dhs, Py_ssize_t sdn,
                            Py_ssize_t sdu, const double* h, Py_ssize_t sh, Py_ssize_t N, Py_ssize_t u0,
                            Py_ssize_t u1, int act) noexcept nogil
    void cynet_lstm_fwd_f(float* g, Py_ssize_t sg, const float* r, const float* b, const float* cp,
                          Py_ssize_t scp, float* c, Py_ssize_t sc, float* h, Py_ssize_t sh, Py_ssize_t U,
                          Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act, int ract) noexcept nogil
    void cynet_lstm_fwd_d(double* g, Py_ssize_t sg, const double* r, const double* b, const double* cp,
                          Py_ssize_t scp, double* c, Py_ssize_t sc, double* h, Py_ssize_t sh, Py_ssize_t U,
                          Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act, int ract) noexcept nogil
    void cynet_lstm_bwd_f(float* dg, Py_ssize_t sdg, float* dh, const float* dhs, Py_ssize_t sdn,
                          Py_ssize_t sdu, float* dc, const float* g, Py_ssize_t sg, const float* c,
                          Py_ssize_t sc, const float* cp, Py_ssize_t scp, Py_ssize_t U, Py_ssize_t N,
                          Py_ssize_t u0, Py_ssize_t u1, int act, int ract) noexcept nogil
    void cynet_lstm_bwd_d(double* dg, Py_ssize_t sdg, double* dh, const double* dhs, Py_ssize_t sdn,
                          Py_ssize_t sdu, double* dc, const double* g, Py_ssize_t sg, const double* c,
                          Py_ssize_t sc, const double* cp, Py_ssize_t scp, Py_ssize_t U, Py_ssize_t N,
                          Py_ssize_t u0, Py_ssize_t u1, int act, int ract) noexcept nogil
    void cynet_gru_fwd_f(float* g, Py_ssize_t sg, const float* r, const float* b_in, const float* b_rec,
                         const float* hp, Py_ssize_t shp, float* h, Py_ssize_t sh, Py_ssize_t U,
                         Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act, int ract) noexcept nogil
    void cynet_gru_fwd_d(double* g, Py_ssize_t sg, const double* r, const double* b_in, const double* b_rec,
                         const double* hp, Py_ssize_t shp, double* h, Py_ssize_t sh, Py_ssize_t U,
                         Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act, int ract) noexcept nogil
    void cynet_gru_bwd_f(float* dg, Py_ssize_t sdg, const float* dhg, float* dhd, const float* dhs,
                         Py_ssize_t sdn, Py_ssize_t sdu, const float* g, Py_ssize_t sg, const float* hp,
                         Py_ssize_t shp, Py_ssize_t U, Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act,
                         int ract) noexcept nogil
    void cynet_gru_bwd_d(double* dg, Py_ssize_t sdg, const double* dhg, double* dhd, const double* dhs,
                         Py_ssize_t sdn, Py_ssize_t sdu, const double* g, Py_ssize_t sg, const double* hp,
                         Py_ssize_t shp, Py_ssize_t U, Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act,
                         int ract) noexcept nogil

    Py_ssize_t CYNET_GEMM_TAIL(Py_ssize_t K, Py_ssize_t N) noexcept nogil
    int cynet_gemm_cols(Py_ssize_t M, Py_ssize_t N, Py_ssize_t sz) noexcept nogil
    Py_ssize_t cynet_gemm_packed_size(Py_ssize_t M, Py_ssize_t K, Py_ssize_t N, Py_ssize_t sz) noexcept nogil
    void cynet_gemm_pack_f(const float* A, Py_ssize_t sam, Py_ssize_t sak, Py_ssize_t M, Py_ssize_t K,
                           Py_ssize_t N, float* Ap) noexcept nogil
    void cynet_gemm_pack_d(const double* A, Py_ssize_t sam, Py_ssize_t sak, Py_ssize_t M, Py_ssize_t K,
                           Py_ssize_t N, double* Ap) noexcept nogil
    void cynet_gemm_f(const float* Ap, Py_ssize_t M, Py_ssize_t K, const float* B, Py_ssize_t sb, Py_ssize_t N,
                      float* C, Py_ssize_t sc, float* tail) noexcept nogil
    void cynet_gemm_d(const double* Ap, Py_ssize_t M, Py_ssize_t K, const double* B, Py_ssize_t sb, Py_ssize_t N,
                      double* C, Py_ssize_t sc, double* tail) noexcept nogil


# Activation codes (the public module maps the Keras names to these).
LINEAR, TANH, SIGMOID, RELU, HARD_SIGMOID = 0, 1, 2, 3, 4
cdef int N_ACTIVATIONS = 5



# ---------------------------------------------------------------------------------------------
# Fused-type dispatch to the C step kernels (one step, units [u0, u1)).

cdef inline void _simple_fwd(floating* h, Py_ssize_t sh, const floating* r, const floating* b,
                             Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act) noexcept nogil:
    if floating is float:
        cynet_simple_fwd_f(h, sh, r, b, N, u0, u1, act)
    else:
        cynet_simple_fwd_d(h, sh, r, b, N, u0, u1, act)


cdef inline void _simple_bwd(floating* dg, Py_ssize_t sdg, const floating* dh, const floating* dhs,
                             Py_ssize_t sdn, Py_ssize_t sdu, const floating* h, Py_ssize_t sh,
                             Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act) noexcept nogil:
    if floating is float:
        cynet_simple_bwd_f(dg, sdg, dh, dhs, sdn, sdu, h, sh, N, u0, u1, act)
    else:
        cynet_simple_bwd_d(dg, sdg, dh, dhs, sdn, sdu, h, sh, N, u0, u1, act)


cdef inline void _lstm_fwd(floating* g, Py_ssize_t sg, const floating* r, const floating* b,
                           const floating* cp, Py_ssize_t scp, floating* c, Py_ssize_t sc, floating* h,
                           Py_ssize_t sh, Py_ssize_t U, Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1,
                           int act, int ract) noexcept nogil:
    if floating is float:
        cynet_lstm_fwd_f(g, sg, r, b, cp, scp, c, sc, h, sh, U, N, u0, u1, act, ract)
    else:
        cynet_lstm_fwd_d(g, sg, r, b, cp, scp, c, sc, h, sh, U, N, u0, u1, act, ract)


cdef inline void _lstm_bwd(floating* dg, Py_ssize_t sdg, floating* dh, const floating* dhs, Py_ssize_t sdn,
                           Py_ssize_t sdu, floating* dc, const floating* g, Py_ssize_t sg, const floating* c,
                           Py_ssize_t sc, const floating* cp, Py_ssize_t scp, Py_ssize_t U, Py_ssize_t N,
                           Py_ssize_t u0, Py_ssize_t u1, int act, int ract) noexcept nogil:
    if floating is float:
        cynet_lstm_bwd_f(dg, sdg, dh, dhs, sdn, sdu, dc, g, sg, c, sc, cp, scp, U, N, u0, u1, act, ract)
    else:
        cynet_lstm_bwd_d(dg, sdg, dh, dhs, sdn, sdu, dc, g, sg, c, sc, cp, scp, U, N, u0, u1, act, ract)


cdef inline void _gru_fwd(floating* g, Py_ssize_t sg, const floating* r, const floating* b_in,
                          const floating* b_rec, const floating* hp, Py_ssize_t shp, floating* h, Py_ssize_t sh,
                          Py_ssize_t U, Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act,
                          int ract) noexcept nogil:
    if floating is float:
        cynet_gru_fwd_f(g, sg, r, b_in, b_rec, hp, shp, h, sh, U, N, u0, u1, act, ract)
    else:
        cynet_gru_fwd_d(g, sg, r, b_in, b_rec, hp, shp, h, sh, U, N, u0, u1, act, ract)


cdef inline void _gru_bwd(floating* dg, Py_ssize_t sdg, const floating* dhg, floating* dhd, const floating* dhs,
                          Py_ssize_t sdn, Py_ssize_t sdu, const floating* g, Py_ssize_t sg, const floating* hp,
                          Py_ssize_t shp, Py_ssize_t U, Py_ssize_t N, Py_ssize_t u0, Py_ssize_t u1, int act,
                          int ract) noexcept nogil:
    if floating is float:
        cynet_gru_bwd_f(dg, sdg, dhg, dhd, dhs, sdn, sdu, g, sg, hp, shp, U, N, u0, u1, act, ract)
    else:
        cynet_gru_bwd_d(dg, sdg, dhg, dhd, dhs, sdn, sdu, g, sg, hp, shp, U, N, u0, u1, act, ract)


# ---------------------------------------------------------------------------------------------
# Scratch reused across calls: the buffers a call needs only while it runs (packed weights,
# per-step products, the stacked gate gradients) are kept per thread and per name, so that a
# training loop does not map and fault in fresh pages for them on every batch (the LSTM
# benchmark's 7.8 MB of gate gradients alone are ~1900 page faults per call). Nothing a kernel
# returns is ever scratch, and dropping a buffer never invalidates a call that is using it (the
# call holds a view, which keeps the memory alive).
#
# Bounds: a buffer over SCRATCH_MAX_BYTES is never kept; one thread keeps at most
# SCRATCH_THREAD_BYTES, all threads together SCRATCH_TOTAL_BYTES. A request that would pass a
# bound gets a buffer that is not kept (plain np.empty, so the caching allocator of
# cynet._kernels._memory serves it during fit/predict), and the kept ones stay as they are.
# Release: a thread's buffers belong to a threading.local, freed when the thread ends; every
# thread's are dropped by _clear_scratch() (cynet.utils.clear_session()), which finds them
# through a registry of weak references (a forked child keeps only the forking thread's). The
# kept buffers are anonymous mmap'ed memory, so a dropped buffer's pages go back to the system
# at once (from malloc they stayed in the thread's malloc arena when anything the thread
# allocated later was still alive: RSS did not come down when the thread ended).

class _ThreadScratch:
    """One thread's kept scratch: {(name, dtype): 1-D array}, and their bytes."""
    __slots__ = ("buffers", "nbytes", "__weakref__")

    def __init__(self):
        self.buffers = {}
        self.nbytes = 0


_scratch_local = threading.local()
_scratch_registry = weakref.WeakSet()   # every live thread's _ThreadScratch
_scratch_lock = threading.Lock()        # guards the kept sets and their byte counts
cdef Py_ssize_t SCRATCH_MAX_BYTES = 64 << 20
cdef Py_ssize_t SCRATCH_THREAD_BYTES = 128 << 20
cdef Py_ssize_t SCRATCH_TOTAL_BYTES = 256 << 20


cdef object _scratch(str name, tuple shape, dt):
    cdef Py_ssize_t n = 1, d
    for d in shape:
        n *= d
    dt = np.dtype(dt)
    if n * dt.itemsize > SCRATCH_MAX_BYTES:
        return np.empty(shape, dtype=dt)
    mine = getattr(_scratch_local, "scratch", None)
    if mine is None:
        mine = _scratch_local.scratch = _ThreadScratch()
        with _scratch_lock:
            _scratch_registry.add(mine)
    buf = mine.buffers.get((name, dt))
    if buf is None or buf.shape[0] < n:
        buf = _scratch_grow(mine, (name, dt), n, dt)
    return buf[:n].reshape(shape)


cdef object _scratch_grow(mine, tuple key, Py_ssize_t n, dt):
    """A buffer of n elements for `key`, kept when the bounds allow, else a plain one."""
    cdef Py_ssize_t nbytes = n * dt.itemsize, total
    with _scratch_lock:
        old = mine.buffers.pop(key, None)
        if old is not None:
            mine.nbytes -= old.nbytes
        total = sum([s.nbytes for s in _scratch_registry])
        if nbytes == 0 or mine.nbytes + nbytes > SCRATCH_THREAD_BYTES or total + nbytes > SCRATCH_TOTAL_BYTES:
            return np.empty(n, dtype=dt)
        buf = np.frombuffer(mmap.mmap(-1, nbytes), dtype=dt, count=n)
        mine.buffers[key] = buf
        mine.nbytes += nbytes
    return buf


def _after_fork_in_child():
    """The child of a fork has only the forking thread: a lock another thread held at the fork
    stays held forever there, so the child starts a fresh one. (The other threads' scratch is
    freed in the child by CPython itself, which clears their thread states and with them their
    threading.local data.)"""
    global _scratch_lock
    _scratch_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _scratch_bytes(all_threads=True):
    """Bytes of recurrent scratch kept: by every live thread, or by the calling one."""
    with _scratch_lock:
        if all_threads:
            return sum([s.nbytes for s in _scratch_registry])
        mine = getattr(_scratch_local, "scratch", None)
        return 0 if mine is None else mine.nbytes


def _clear_scratch():
    """Drops the recurrent scratch of every thread (a call in progress keeps its own views).
    Returns the bytes dropped."""
    cdef Py_ssize_t dropped = 0
    with _scratch_lock:
        for s in list(_scratch_registry):
            dropped += s.nbytes
            s.buffers.clear()
            s.nbytes = 0
    return dropped


def _scratch_limits(per_buffer=None, per_thread=None, total=None):
    """The scratch bounds in bytes, (per_buffer, per_thread, total); sets those given (kept
    buffers over a lowered bound stay until dropped)."""
    global SCRATCH_MAX_BYTES, SCRATCH_THREAD_BYTES, SCRATCH_TOTAL_BYTES
    previous = (SCRATCH_MAX_BYTES, SCRATCH_THREAD_BYTES, SCRATCH_TOTAL_BYTES)
    for value in (per_buffer, per_thread, total):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"scratch limits must be non-negative integers, received {value!r}")
    if per_buffer is not None:
        SCRATCH_MAX_BYTES = per_buffer
    if per_thread is not None:
        SCRATCH_THREAD_BYTES = per_thread
    if total is not None:
        SCRATCH_TOTAL_BYTES = total
    return previous


# ---------------------------------------------------------------------------------------------
# The recurrent product of a step, C (M, N) = A (M, K) @ B (K, N), on the weights packed once
# per sequence (cynet_gemm.h).

cdef inline tuple _packed(const floating[:, ::1] w, bint transposed, Py_ssize_t N):
    """The step products' A from a weight w: A = w.T (w is (K, M)) when transposed, else A = w
    (M, K), for products with N columns. Returns (packed A, scratch, None) for _step_product
    on one thread; with more threads configured and enough multiply-adds (COST_RECURRENT_MACS)
    per thread, (-, -, A as a C-contiguous array) for np.matmul: the BLAS's own threads spin
    between calls, while an OpenMP team under OMP_WAIT_POLICY=passive sleeps after each step
    and waking it every step cost more than the second thread saved (measured: LSTM 56 ms on
    one thread, 54 on two, against 48 for the BLAS)."""
    cdef Py_ssize_t M = w.shape[1] if transposed else w.shape[0]
    cdef Py_ssize_t K = w.shape[0] if transposed else w.shape[1]
    dt = _dtype(w[0, 0])
    wa = np.asarray(w)
    if threads_for(M * K * N, COST_RECURRENT_MACS) > 1:
        dummy = np.empty(1, dtype=dt)
        return dummy, dummy, np.ascontiguousarray(wa.T) if transposed else wa
    ap_a = _scratch("packed", (cynet_gemm_packed_size(M, K, N, sizeof(floating)),), dt)
    cdef floating[::1] ap = ap_a
    with nogil:
        if floating is float:
            cynet_gemm_pack_f(&w[0, 0], 1 if transposed else K, M if transposed else 1, M, K, N, &ap[0])
        else:
            cynet_gemm_pack_d(&w[0, 0], 1 if transposed else K, M if transposed else 1, M, K, N, &ap[0])
    return ap_a, _scratch("tail", (CYNET_GEMM_TAIL(K, N),), dt), None


cdef inline void _step_product(const floating* ap, Py_ssize_t M, Py_ssize_t K, const floating* b, Py_ssize_t sb,
                               Py_ssize_t N, floating* c, floating* tail) noexcept nogil:
    """c (M, N) contiguous = A @ B, A packed by _packed for N columns, B[k, n] at b + k * sb + n."""
    if floating is float:
        cynet_gemm_f(ap, M, K, b, sb, N, c, N, tail)
    else:
        cynet_gemm_d(ap, M, K, b, sb, N, c, N, tail)


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


cdef inline object _dtype(floating dummy):
    if floating is float:
        return np.float32
    else:
        return np.float64


cdef inline int _team(Py_ssize_t work) noexcept nogil:
    return threads_for(work, COST_RECURRENT)


# ---------------------------------------------------------------------------------------------
# SimpleRNN

def simple_rnn_forward(const floating[:, :, ::1] x not None, const floating[:, ::1] kernel not None,
                       const floating[:, ::1] recurrent_kernel not None, const floating[::1] bias not None,
                       const floating[:, ::1] h0 not None, int activation):
    """SimpleRNN over a whole sequence: h_t = act(x_t W + h_{t-1} U + b).

    x: (D, T, N) IN; kernel (D, U), recurrent_kernel (U, U), bias (U,), h0 (U, N) IN,
    float32|float64, C-contiguous, one dtype. activation: code (module docstring).
    Returns hs: (U, T, N) OUT, every hidden state (feature-major).
    """
    cdef Py_ssize_t D, T, N, U, t, ch, nch, sh, shp
    cdef const floating* hp
    D, T, N, U = _sizes(x.shape[0], x.shape[1], x.shape[2], kernel.shape[0], kernel.shape[1],
                        recurrent_kernel.shape[0], recurrent_kernel.shape[1], 1)
    if bias.shape[0] != U:
        raise ValueError(f"bias must have shape ({U},); received shape ({bias.shape[0]},)")
    _check_shape2("h0", h0.shape[0], h0.shape[1], U, N)
    _check_act("activation", activation)
    dt = _dtype(x[0, 0, 0])
    # step 1: input projection of every timestep, one matmul, straight into hs
    hs_a = np.empty((U, T, N), dtype=dt)
    np.matmul(np.asarray(kernel).T, np.asarray(x).reshape(D, T * N), out=hs_a.reshape(U, T * N))
    r_a = _scratch("step", (U, N), dt)
    ap_a, tail_a, blas = _packed(recurrent_kernel, True, N)
    cdef bint own = blas is None
    cdef floating[:, :, ::1] hs = hs_a
    cdef floating[:, ::1] r = r_a
    cdef floating[::1] ap = ap_a
    cdef floating[::1] tail = tail_a
    cdef int nt = _team(U * N)
    nch = nt
    sh = T * N
    with nogil:
        for t in range(T):
            # step 1b: recurrent product R = U^T h_{t-1}
            if t == 0:
                hp, shp = &h0[0, 0], N
            else:
                hp, shp = &hs[0, t - 1, 0], sh
            if own:
                _step_product(&ap[0], U, U, hp, shp, N, &r[0, 0], &tail[0])
            else:
                with gil:
                    np.matmul(blas, np.asarray(h0) if t == 0 else hs_a[:, t - 1], out=r_a)
            # step 2: fused step kernel h_t = act(x W + R + b)
            if nt == 1:
                _simple_fwd(&hs[0, t, 0], sh, &r[0, 0], &bias[0], N, 0, U, activation)
            else:
                for ch in prange(nch, schedule="static", num_threads=nt):
                    _simple_fwd(&hs[0, t, 0], sh, &r[0, 0], &bias[0], N, ch * U // nch, (ch + 1) * U // nch,
                                activation)
    return hs_a


def simple_rnn_backward(const floating[:, :, :] dhs not None, const floating[:, :, ::1] x not None,
                        const floating[:, ::1] kernel not None, const floating[:, ::1] recurrent_kernel not None,
                        const floating[:, ::1] h0 not None, const floating[:, :, ::1] hs not None,
                        int activation, bint use_bias, bint compute_dx=True):
    """Backpropagation through time for simple_rnn_forward.

    dhs: (N, T, U) IN, any strides, gradient w.r.t. every hidden state; x (D, T, N), kernel,
    recurrent_kernel, h0 (U, N) as in forward; hs: (U, T, N) IN from forward. Returns (dx
    (D, T, N), dkernel (D, U), drecurrent_kernel (U, U), dbias (U,) or None when not use_bias,
    dh0 (U, N)), all new.
    """
    cdef Py_ssize_t D, T, N, U, t, ch, nch, sg, sdn, sdu
    D, T, N, U = _sizes(x.shape[0], x.shape[1], x.shape[2], kernel.shape[0], kernel.shape[1],
                        recurrent_kernel.shape[0], recurrent_kernel.shape[1], 1)
    _check_shape2("h0", h0.shape[0], h0.shape[1], U, N)
    _check_shape3("hs", hs.shape[0], hs.shape[1], hs.shape[2], U, T, N)
    _check_dhs(dhs, N, T, U)
    _check_act("activation", activation)
    dt = _dtype(x[0, 0, 0])
    dg_a = _scratch("dgates", (U, T, N), dt)
    dh_a = np.zeros((U, N), dtype=dt)
    ap_a, tail_a, blas = _packed(recurrent_kernel, False, N)
    cdef bint own = blas is None
    cdef floating[:, :, ::1] dg = dg_a
    cdef floating[:, ::1] dh = dh_a
    cdef floating[::1] ap = ap_a
    cdef floating[::1] tail = tail_a
    cdef int nt = _team(U * N)
    nch = nt
    sg = T * N
    sdn = dhs.strides[0] // <Py_ssize_t>sizeof(floating)
    sdu = dhs.strides[2] // <Py_ssize_t>sizeof(floating)
    with nogil:
        for t in range(T - 1, -1, -1):
            # steps 1-2: fused gate-gradient kernel of step t
            if nt == 1:
                _simple_bwd(&dg[0, t, 0], sg, &dh[0, 0], &dhs[0, t, 0], sdn, sdu, &hs[0, t, 0], sg, N, 0, U,
                            activation)
            else:
                for ch in prange(nch, schedule="static", num_threads=nt):
                    _simple_bwd(&dg[0, t, 0], sg, &dh[0, 0], &dhs[0, t, 0], sdn, sdu, &hs[0, t, 0], sg, N,
                                ch * U // nch, (ch + 1) * U // nch, activation)
            # step 3: gradient of h_{t-1} through the recurrent product
            if own:
                _step_product(&ap[0], U, U, &dg[0, t, 0], sg, N, &dh[0, 0], &tail[0])
            else:
                with gil:
                    np.matmul(blas, dg_a[:, t], out=dh_a)
    return _weight_grads(dg_a, np.asarray(x), np.asarray(kernel), np.asarray(h0), np.asarray(hs),
                         use_bias, compute_dx) + (dh_a,)


cdef tuple _weight_grads(dg_a, xa, ka, h0a, hsa, bint use_bias, bint compute_dx):
    """Step 4 of every backward: the weight and input gradients, one matmul each over all
    timesteps. dg_a: (kU, T, N) stacked pre-activation gradients. Returns (dx (D, T, N),
    dkernel, drecurrent_kernel, dbias|None); dx is None unless compute_dx."""
    D, T, N = xa.shape
    U = hsa.shape[0]
    kU = dg_a.shape[0]
    g2 = dg_a.reshape(kU, T * N)
    # [x_t; h_{t-1}; 1] for every (t, n), so that ONE product gives dkernel, drecurrent_kernel
    # and dbias, and the BLAS packs the large dG once (measured 16-17.5 ms against 18.5-20 for
    # two products at the LSTM benchmark size)
    xh = _scratch("inputs", (D + U + use_bias, T, N), dg_a.dtype)
    xh[:D] = xa
    xh[D:D + U, 0] = h0a
    xh[D:D + U, 1:] = hsa[:, :T - 1]
    if use_bias:
        xh[D + U] = 1
    dw = np.matmul(xh.reshape(D + U + use_bias, T * N), g2.T)
    dkernel, drk = dw[:D], dw[D:D + U]
    dbias = dw[D + U] if use_bias else None
    dx = np.matmul(ka, g2).reshape(D, T, N) if compute_dx else None
    return dx, dkernel, drk, dbias


# ---------------------------------------------------------------------------------------------
# LSTM

def lstm_forward(const floating[:, :, ::1] x not None, const floating[:, ::1] kernel not None,
                 const floating[:, ::1] recurrent_kernel not None, const floating[::1] bias not None,
                 const floating[:, ::1] h0 not None, const floating[:, ::1] c0 not None,
                 int activation, int recurrent_activation):
    """LSTM over a whole sequence (Keras gate order i|f|c|o).

    z = x_t W + h_{t-1} U + b; i, f, o = ract(z_i, z_f, z_o); g = act(z_c);
    c_t = f * c_{t-1} + i * g; h_t = o * act(c_t).
    x: (D, T, N) IN; kernel (D, 4U), recurrent_kernel (U, 4U), bias (4U,), h0, c0 (U, N) IN.
    Returns (hs (U, T, N), cs (T, U, N), gates (T, 4U, N) = activated i|f|g|o), all new.
    """
    cdef Py_ssize_t D, T, N, U, t, ch, nch, sh, hsp
    D, T, N, U = _sizes(x.shape[0], x.shape[1], x.shape[2], kernel.shape[0], kernel.shape[1],
                        recurrent_kernel.shape[0], recurrent_kernel.shape[1], 4)
    if bias.shape[0] != 4 * U:
        raise ValueError(f"bias must have shape ({4 * U},); received shape ({bias.shape[0]},)")
    _check_shape2("h0", h0.shape[0], h0.shape[1], U, N)
    _check_shape2("c0", c0.shape[0], c0.shape[1], U, N)
    _check_act("activation", activation)
    _check_act("recurrent_activation", recurrent_activation)
    dt = _dtype(x[0, 0, 0])
    # step 1: input projection of every timestep, one matmul per step, straight into the gates
    gates_a = np.empty((T, 4 * U, N), dtype=dt)
    np.matmul(np.asarray(kernel).T, np.asarray(x).transpose(1, 0, 2), out=gates_a)
    hs_a = np.empty((U, T, N), dtype=dt)
    cs_a = np.empty((T, U, N), dtype=dt)
    r_a = _scratch("step", (4 * U, N), dt)
    ap_a, tail_a, blas = _packed(recurrent_kernel, True, N)
    cdef bint own = blas is None
    cdef floating[:, :, ::1] g = gates_a
    cdef floating[:, :, ::1] hs = hs_a
    cdef floating[:, :, ::1] cs = cs_a
    cdef floating[:, ::1] r = r_a
    cdef floating[::1] ap = ap_a
    cdef floating[::1] tail = tail_a
    cdef const floating* cp
    cdef const floating* hp
    cdef int nt = _team(4 * U * N)
    nch = nt
    sh = T * N
    with nogil:
        for t in range(T):
            # step 1b: recurrent product R = U^T h_{t-1}
            if t == 0:
                hp, hsp, cp = &h0[0, 0], N, &c0[0, 0]
            else:
                hp, hsp, cp = &hs[0, t - 1, 0], sh, &cs[t - 1, 0, 0]
            if own:
                _step_product(&ap[0], 4 * U, U, hp, hsp, N, &r[0, 0], &tail[0])
            else:
                with gil:
                    np.matmul(blas, np.asarray(h0) if t == 0 else hs_a[:, t - 1], out=r_a)
            # steps 2-5: fused gate kernel
            if nt == 1:
                _lstm_fwd(&g[t, 0, 0], N, &r[0, 0], &bias[0], cp, N, &cs[t, 0, 0], N, &hs[0, t, 0], sh,
                          U, N, 0, U, activation, recurrent_activation)
            else:
                for ch in prange(nch, schedule="static", num_threads=nt):
                    _lstm_fwd(&g[t, 0, 0], N, &r[0, 0], &bias[0], cp, N, &cs[t, 0, 0], N, &hs[0, t, 0], sh,
                              U, N, ch * U // nch, (ch + 1) * U // nch, activation, recurrent_activation)
    return hs_a, cs_a, gates_a


def lstm_backward(const floating[:, :, :] dhs not None, const floating[:, ::1] dc_last not None,
                  const floating[:, :, ::1] x not None, const floating[:, ::1] kernel not None,
                  const floating[:, ::1] recurrent_kernel not None, const floating[:, ::1] h0 not None,
                  const floating[:, ::1] c0 not None, const floating[:, :, ::1] hs not None,
                  const floating[:, :, ::1] cs not None, const floating[:, :, ::1] gates not None,
                  int activation, int recurrent_activation, bint use_bias, bint compute_dx=True):
    """Backpropagation through time for lstm_forward.

    dhs: (N, T, U) IN, any strides, gradient w.r.t. every hidden state; dc_last: (U, N) IN,
    gradient w.r.t. the final cell state; the rest as in / from forward. Returns (dx (D, T, N),
    dkernel (D, 4U), drecurrent_kernel (U, 4U), dbias (4U,) or None when not use_bias,
    dh0 (U, N), dc0 (U, N)), all new.
    """
    cdef Py_ssize_t D, T, N, U, t, ch, nch, sg, sdn, sdu
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
    dt = _dtype(x[0, 0, 0])
    dg_a = _scratch("dgates", (4 * U, T, N), dt)
    dh_a = np.zeros((U, N), dtype=dt)
    dc_a = np.array(dc_last, dtype=dt)
    ap_a, tail_a, blas = _packed(recurrent_kernel, False, N)
    cdef bint own = blas is None
    cdef floating[:, :, ::1] dg = dg_a
    cdef floating[:, ::1] dh = dh_a
    cdef floating[:, ::1] dc = dc_a
    cdef floating[::1] ap = ap_a
    cdef floating[::1] tail = tail_a
    cdef const floating* cp
    cdef int nt = _team(4 * U * N)
    nch = nt
    sg = T * N
    sdn = dhs.strides[0] // <Py_ssize_t>sizeof(floating)
    sdu = dhs.strides[2] // <Py_ssize_t>sizeof(floating)
    with nogil:
        for t in range(T - 1, -1, -1):
            cp = &c0[0, 0] if t == 0 else &cs[t - 1, 0, 0]
            # steps 1-5: fused gate-gradient kernel of step t
            if nt == 1:
                _lstm_bwd(&dg[0, t, 0], sg, &dh[0, 0], &dhs[0, t, 0], sdn, sdu, &dc[0, 0], &gates[t, 0, 0], N,
                          &cs[t, 0, 0], N, cp, N, U, N, 0, U, activation, recurrent_activation)
            else:
                for ch in prange(nch, schedule="static", num_threads=nt):
                    _lstm_bwd(&dg[0, t, 0], sg, &dh[0, 0], &dhs[0, t, 0], sdn, sdu, &dc[0, 0], &gates[t, 0, 0],
                              N, &cs[t, 0, 0], N, cp, N, U, N, ch * U // nch, (ch + 1) * U // nch,
                              activation, recurrent_activation)
            # step 6: gradient of h_{t-1} through the recurrent product
            if own:
                _step_product(&ap[0], U, 4 * U, &dg[0, t, 0], sg, N, &dh[0, 0], &tail[0])
            else:
                with gil:
                    np.matmul(blas, dg_a[:, t], out=dh_a)
    return _weight_grads(dg_a, np.asarray(x), np.asarray(kernel), np.asarray(h0), np.asarray(hs),
                         use_bias, compute_dx) + (dh_a, dc_a)


# ---------------------------------------------------------------------------------------------
# GRU (reset_after=True)

def gru_forward(const floating[:, :, ::1] x not None, const floating[:, ::1] kernel not None,
                const floating[:, ::1] recurrent_kernel not None, const floating[:, ::1] bias not None,
                const floating[:, ::1] h0 not None, int activation, int recurrent_activation):
    """GRU over a whole sequence (Keras gate order z|r|h, reset_after=True).

    xz, xr, xh = x_t W + b_in; rz, rr, rh = h_{t-1} U + b_rec; z = ract(xz + rz);
    r = ract(xr + rr); hh = act(xh + r * rh); h_t = z * h_{t-1} + (1 - z) * hh.
    x: (D, T, N) IN; kernel (D, 3U), recurrent_kernel (U, 3U), bias (2, 3U), h0 (U, N) IN.
    Returns (hs (U, T, N), cache (T, 4U, N) = z|r|hh|rh of every step), both new.
    """
    cdef Py_ssize_t D, T, N, U, t, ch, nch, sh, shp
    D, T, N, U = _sizes(x.shape[0], x.shape[1], x.shape[2], kernel.shape[0], kernel.shape[1],
                        recurrent_kernel.shape[0], recurrent_kernel.shape[1], 3)
    _check_shape2("bias", bias.shape[0], bias.shape[1], 2, 3 * U)
    _check_shape2("h0", h0.shape[0], h0.shape[1], U, N)
    _check_act("activation", activation)
    _check_act("recurrent_activation", recurrent_activation)
    dt = _dtype(x[0, 0, 0])
    # step 1: input projection of every timestep, one matmul per step, into rows 0:3U of the cache
    cache_a = np.empty((T, 4 * U, N), dtype=dt)
    np.matmul(np.asarray(kernel).T, np.asarray(x).transpose(1, 0, 2), out=cache_a[:, :3 * U])
    hs_a = np.empty((U, T, N), dtype=dt)
    r_a = _scratch("step", (3 * U, N), dt)
    ap_a, tail_a, blas = _packed(recurrent_kernel, True, N)
    cdef bint own = blas is None
    cdef floating[:, :, ::1] g = cache_a
    cdef floating[:, :, ::1] hs = hs_a
    cdef floating[:, ::1] r = r_a
    cdef floating[::1] ap = ap_a
    cdef floating[::1] tail = tail_a
    cdef const floating* hp
    cdef int nt = _team(4 * U * N)
    nch = nt
    sh = T * N
    with nogil:
        for t in range(T):
            if t == 0:
                hp, shp = &h0[0, 0], N
            else:
                hp, shp = &hs[0, t - 1, 0], sh
            # step 1b: recurrent product R = U^T h_{t-1}
            if own:
                _step_product(&ap[0], 3 * U, U, hp, shp, N, &r[0, 0], &tail[0])
            else:
                with gil:
                    np.matmul(blas, np.asarray(h0) if t == 0 else hs_a[:, t - 1], out=r_a)
            # steps 2-5: fused gate kernel
            if nt == 1:
                _gru_fwd(&g[t, 0, 0], N, &r[0, 0], &bias[0, 0], &bias[1, 0], hp, shp, &hs[0, t, 0], sh,
                         U, N, 0, U, activation, recurrent_activation)
            else:
                for ch in prange(nch, schedule="static", num_threads=nt):
                    _gru_fwd(&g[t, 0, 0], N, &r[0, 0], &bias[0, 0], &bias[1, 0], hp, shp, &hs[0, t, 0], sh,
                             U, N, ch * U // nch, (ch + 1) * U // nch, activation, recurrent_activation)
    return hs_a, cache_a


def gru_backward(const floating[:, :, :] dhs not None, const floating[:, :, ::1] x not None,
                 const floating[:, ::1] kernel not None, const floating[:, ::1] recurrent_kernel not None,
                 const floating[:, ::1] h0 not None, const floating[:, :, ::1] hs not None,
                 const floating[:, :, ::1] cache not None, int activation, int recurrent_activation,
                 bint use_bias, bint compute_dx=True):
    """Backpropagation through time for gru_forward.

    dhs: (N, T, U) IN, any strides; the rest as in / from forward. Returns (dx (D, T, N),
    dkernel (D, 3U), drecurrent_kernel (U, 3U), dbias (2, 3U) or None when not use_bias,
    dh0 (U, N)).
    """
    cdef Py_ssize_t D, T, N, U, t, ch, nch, sg, shp, sdn, sdu
    D, T, N, U = _sizes(x.shape[0], x.shape[1], x.shape[2], kernel.shape[0], kernel.shape[1],
                        recurrent_kernel.shape[0], recurrent_kernel.shape[1], 3)
    _check_shape2("h0", h0.shape[0], h0.shape[1], U, N)
    _check_shape3("hs", hs.shape[0], hs.shape[1], hs.shape[2], U, T, N)
    _check_shape3("cache", cache.shape[0], cache.shape[1], cache.shape[2], T, 4 * U, N)
    _check_dhs(dhs, N, T, U)
    _check_act("activation", activation)
    _check_act("recurrent_activation", recurrent_activation)
    dt = _dtype(x[0, 0, 0])
    # dG rows per step: dxh | dz | dr | dhr, so that rows 0:3U are the input-side gradient (in
    # the order h, z, r) and rows U:4U the recurrent-side one (in the order z, r, h)
    dg_a = _scratch("dgates", (4 * U, T, N), dt)
    dhg_a = np.zeros((U, N), dtype=dt)   # dh_t via the recurrent matmul of step t+1
    dhd_a = np.zeros((U, N), dtype=dt)   # dh_t via the direct path z * h_t of step t+1
    ap_a, tail_a, blas = _packed(recurrent_kernel, False, N)
    cdef bint own = blas is None
    cdef floating[:, :, ::1] dg = dg_a
    cdef floating[:, ::1] dhg = dhg_a
    cdef floating[:, ::1] dhd = dhd_a
    cdef floating[::1] ap = ap_a
    cdef floating[::1] tail = tail_a
    cdef const floating* hp
    cdef int nt = _team(4 * U * N)
    nch = nt
    sg = T * N
    sdn = dhs.strides[0] // <Py_ssize_t>sizeof(floating)
    sdu = dhs.strides[2] // <Py_ssize_t>sizeof(floating)
    with nogil:
        for t in range(T - 1, -1, -1):
            if t == 0:
                hp, shp = &h0[0, 0], N
            else:
                hp, shp = &hs[0, t - 1, 0], sg
            # steps 1-4: fused gate-gradient kernel of step t
            if nt == 1:
                _gru_bwd(&dg[0, t, 0], sg, &dhg[0, 0], &dhd[0, 0], &dhs[0, t, 0], sdn, sdu, &cache[t, 0, 0], N,
                         hp, shp, U, N, 0, U, activation, recurrent_activation)
            else:
                for ch in prange(nch, schedule="static", num_threads=nt):
                    _gru_bwd(&dg[0, t, 0], sg, &dhg[0, 0], &dhd[0, 0], &dhs[0, t, 0], sdn, sdu, &cache[t, 0, 0],
                             N, hp, shp, U, N, ch * U // nch, (ch + 1) * U // nch, activation,
                             recurrent_activation)
            # step 5: gradient of h_{t-1} through the recurrent product
            if own:
                _step_product(&ap[0], U, 3 * U, &dg[U, t, 0], sg, N, &dhg[0, 0], &tail[0])
            else:
                with gil:
                    np.matmul(blas, dg_a[U:, t], out=dhg_a)
    dhg_a += dhd_a
    return _gru_weight_grads(dg_a, np.asarray(x), np.asarray(kernel), np.asarray(h0), np.asarray(hs),
                             use_bias, compute_dx) + (dhg_a,)


def _gru_weight_grads(dg_a, xa, ka, h0a, hsa, use_bias, compute_dx):
    """Step 6 of gru_backward: weight and input gradients from the stacked dxh|dz|dr|dhr."""
    D, T, N = xa.shape
    U = hsa.shape[0]
    g2 = dg_a.reshape(4 * U, T * N)
    gx = g2[:3 * U]             # input side, rows h|z|r
    gr = g2[U:]                 # recurrent side, rows z|r|h
    # [h_{t-1}; 1] for every (t, n): the row of ones makes the recurrent product also sum the
    # recurrent-side bias gradients (z|r|h), which saves a pass over dG
    hprev = _scratch("inputs", (U + use_bias, T, N), g2.dtype)
    hprev[:U, 0] = h0a
    hprev[:U, 1:] = hsa[:, :T - 1]
    if use_bias:
        hprev[U] = 1
    dk_hzr = np.matmul(xa.reshape(D, T * N), gx.T)
    dkernel = np.concatenate((dk_hzr[:, U:], dk_hzr[:, :U]), axis=1)
    drk_b = np.matmul(hprev.reshape(U + use_bias, T * N), gr.T)
    drk = drk_b[:U]
    dx = None
    if compute_dx:
        k_hzr = np.concatenate((ka[:, 2 * U:], ka[:, :2 * U]), axis=1)
        dx = np.matmul(k_hzr, gx).reshape(D, T, N)
    dbias = None
    if use_bias:
        dbias = np.empty((2, 3 * U), dtype=g2.dtype)
        dbias[1] = drk_b[U]                      # z | r | h, recurrent side
        dbias[0, :2 * U] = drk_b[U, :2 * U]      # z and r have one gradient for both biases
        dbias[0, 2 * U:] = gx[:U].sum(axis=1)    # h, input side
    return dx, dkernel, drk, dbias
