/* cynet_rnn.h: the recurrent cells of rnn.pyx (SimpleRNN, LSTM, GRU with reset_after=True),
   one timestep each, forward and backward, and the per-step recurrent product; declared for
   Cython in _rnn_cells.pxd. rnn.pyx's one time-loop driver (_drive) calls them.

   Everything a step needs is described by one cynet_rnn_loop: the cell, its activations, the
   sizes and the call's buffers (layouts in rnn.pyx's docstring). A step function takes the
   loop, the timestep t and a range of units [u0, u1) (the driver splits the units over an
   OpenMP team when a step has enough work), so that the time loop is written once.

   Why C: Cython compiles for the baseline ISA only (SSE2 on x86-64, set once in setup.py), and
   under GCC's default -ftrapping-math a float `?:` is not if-converted, so Cython loops with a
   select or a libm call stay scalar, and libm's expf/tanhf cost more than the matmuls. These
   kernels are plain C99 written once for both float types by a macro, on the branch-free exp
   and tanh of cynet_simd.h, and built by CYNET_CLONES for the baseline, AVX2+FMA and AVX-512.
   The Keras default activations (tanh, sigmoid) take a fused path: one vectorised pass over a
   unit's samples per step instead of one pass per operation.

   Bounds: every row a kernel touches is computed by CYNET_RNN_ROW, which checks with CY_AT
   (cynet_check.h) that the row's first and last element lie in the buffer, so the debug build
   (CYNET_DEBUG_BUILD=1) catches any overrun an inconsistent size or stride would cause; the
   inner loops then run over n in [0, N) of such a row. In a normal build the checks vanish. */
#ifndef CYNET_RNN_H
#define CYNET_RNN_H

#include "cynet_simd.h"
#include "cynet_gemm.h"
#include "cynet_bf16.h"
#include "cynet_check.h"

#ifndef CYNET_AHEAD
#define CYNET_AHEAD 4   /* units ahead whose rows the fused kernels prefetch (8: no better) */
#endif

/* Activation codes: the one C definition; rnn_numpy.ACTIVATIONS is the Python one, and
   rnn.pyx checks at import that they agree. Every derivative is taken from the activation's
   output, so backward reuses the stored activations. */
enum { CYNET_LINEAR = 0, CYNET_TANH = 1, CYNET_SIGMOID = 2, CYNET_RELU = 3, CYNET_HARD_SIGMOID = 4,
       CYNET_N_ACTIVATIONS = 5 };

enum { CYNET_CELL_SIMPLE = 0, CYNET_CELL_LSTM = 1, CYNET_CELL_GRU = 2 };

/* One call of a recurrent kernel: what every step reads and writes. Pointers are to the
   first element of C-contiguous buffers of the call's dtype (dsize bytes per element), except
   dhs (any strides, in elements). Unused ones are NULL. */
typedef struct {
    int cell, act, ract, dsize;
    Py_ssize_t steps, N, U;   /* timesteps, samples, units */
    /* forward */
    const void* h0;   /* (U, N) initial hidden state */
    const void* c0;   /* (U, N) LSTM initial cell state */
    const void* b;    /* bias: SimpleRNN (U,), LSTM (4U,), GRU (2, 3U) */
    void* hs;         /* (U, T, N) hidden states; on entry SimpleRNN's hold x W */
    void* cs;         /* (T, U, N) LSTM cell states */
    void* g;          /* (T, 4U, N) LSTM gates / GRU cache; on entry their x W rows */
    void* r;          /* (kU, N) the step's recurrent product */
    /* backward */
    void* dg;         /* (kU, T, N) stacked pre-activation gradients (GRU: 4U rows) */
    void* dh;         /* (U, N) gradient of h_t through the recurrent product */
    void* dhd;        /* (U, N) GRU: gradient of h_t through the direct path z * h_t */
    void* dc;         /* (U, N) LSTM: gradient of c_t */
    const void* dhs;  /* (N, T, U) gradient of every hidden state, strides sdn, sdt, sdu */
    Py_ssize_t sdn, sdt, sdu, dhs_lo, dhs_hi;   /* dhs's reach: element offsets [lo, hi] */
    /* the step product's A, packed by cynet_gemm_pack_* for N columns, and its scratch */
    const void* ap;
    void* tail;
    /* masking (NULL: none): mask (T, N), 0 = a skipped step, whose states carry over; backward
       scratch carry (U, N) = the gradient of h_t carried past a skipped step, carry_c (U, N)
       the LSTM's cell-state gradient kept across it */
    const unsigned char* mask;
    void* carry;
    void* carry_c;
    /* recurrent dropout (NULL: none): rdrop (k, U, N), one scaled keep-mask per gate block that
       multiplies h_{t-1} before the block's product; ap then holds k packed (U, U) blocks of
       apj values each, and hm is a (U, N) scratch (forward: the masked h_{t-1}; backward: one
       block's product before its mask) */
    const void* rdrop;
    void* hm;
    Py_ssize_t apj;
    /* bfloat16 products (float32 loops under the mixed_bfloat16 policy; bf16 = 0: float32 ones):
       the step products' A packed once per call by cynet_bf16_pack_a_all for the resolved path
       bpath (bap; under recurrent dropout k blocks of bapj words), and the B-packing work area
       (CYNET_BF16_WORK words). ap and tail are then unused. */
    int bf16, bpath;
    const uint32_t* bap;
    uint32_t* bwork;
    Py_ssize_t bapj;
    /* the LSTM's forward over flat rows (NULL: per unit): the bias expanded to (4U, N), each
       unit's value repeated over its samples, and a (U, N) scratch for h_t. With them the fused
       gate pass runs over a step's U * N values as one stream instead of U rows of N: at a
       ragged batch (N 25 = 16 + 8 + 1) a row ends in a half vector and a scalar iteration,
       which took 48% of the pass (perf, U 256) */
    const void* bx;
    void* hflat;
} cynet_rnn_loop;

/* C (M, N; row stride N) = A_j @ B (K rows of N samples, row stride sb) on the loop's packed
   weights (block j: recurrent dropout's gate block, else 0): cynet_gemm.h's float product, or
   under bf16 cynet_bf16.h's on bfloat16-rounded A and B with float32 sums */
static inline void cynet_rnn_mm_f(const cynet_rnn_loop* L, Py_ssize_t j, Py_ssize_t M, Py_ssize_t K,
                                  const float* B, Py_ssize_t sb, float* C) {
    if (L->bf16)
        cynet_bf16_gemm_apacked(L->bpath, L->bap + j * L->bapj, M, K, B, sb, 1, C, L->N, L->N, 0, L->bwork);
    else
        cynet_gemm_f((const float*)L->ap + j * L->apj, M, K, B, sb, L->N, C, L->N, (float*)L->tail);
}

static inline void cynet_rnn_mm_d(const cynet_rnn_loop* L, Py_ssize_t j, Py_ssize_t M, Py_ssize_t K,
                                  const double* B, Py_ssize_t sb, double* C) {
    cynet_gemm_d((const double*)L->ap + j * L->apj, M, K, B, sb, L->N, C, L->N, (double*)L->tail);
}

/* base + off, after checking (debug build) that the elements off and off + last lie in the
   ext elements of base. */
#define CYNET_RNN_ROW(base, off, last, ext) \
    ((void)CY_AT((off), (ext)), (void)CY_AT((off) + (last), (ext)), (base) + (off))

/* The row of dhs for unit u at step t: element offsets o + n * sdn, n in [0, N), checked
   against the reach [dhs_lo, dhs_hi] of the dhs array (strides may be negative). */
#define CYNET_RNN_DHS_ROW(T_, L, t, u) \
    ((void)CY_AT((t) * (L)->sdt + (u) * (L)->sdu - (L)->dhs_lo, (L)->dhs_hi - (L)->dhs_lo + 1), \
     (void)CY_AT((t) * (L)->sdt + (u) * (L)->sdu + ((L)->N - 1) * (L)->sdn - (L)->dhs_lo, \
                 (L)->dhs_hi - (L)->dhs_lo + 1), \
     (const T_*)(L)->dhs + (t) * (L)->sdt + (u) * (L)->sdu)

/* The step kernels, written once for T = float (suffix f) and double (suffix d). A "row" is
   the N samples of one gate unit (contiguous); step numbers match the twin (rnn_numpy.py). */
#define CYNET_RNN_KERNELS(T, S, SEL, EXP, TANH)                                                  \
                                                                                                  \
/* y = act(x) over n elements (x == y allowed) */                                                 \
static inline void cynet_act_##S(int kind, const T* x, T* y, Py_ssize_t n) {                      \
    Py_ssize_t i; T v;                                                                            \
    switch (kind) {                                                                               \
    case CYNET_TANH:                                                                              \
        for (i = 0; i < n; i++) y[i] = TANH(x[i]);                                                \
        break;                                                                                    \
    case CYNET_SIGMOID:                                                                           \
        for (i = 0; i < n; i++) y[i] = (T)1 / ((T)1 + EXP(-x[i]));                                \
        break;                                                                                    \
    case CYNET_RELU:                                                                              \
        for (i = 0; i < n; i++) y[i] = SEL(x[i] < (T)0, (T)0, x[i]);                              \
        break;                                                                                    \
    case CYNET_HARD_SIGMOID:                                                                      \
        for (i = 0; i < n; i++) {                                                                 \
            v = x[i] / (T)6 + (T)0.5;                                                             \
            v = SEL(v < (T)0, (T)0, v);                                                           \
            y[i] = SEL(v > (T)1, (T)1, v);                                                        \
        }                                                                                         \
        break;                                                                                    \
    default:                                                                                      \
        if (x != y) for (i = 0; i < n; i++) y[i] = x[i];                                          \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
/* d *= act'(.) written from the activation's output y */                                         \
static inline void cynet_dact_##S(int kind, const T* y, T* d, Py_ssize_t n) {                     \
    Py_ssize_t i;                                                                                 \
    switch (kind) {                                                                               \
    case CYNET_TANH:                                                                              \
        for (i = 0; i < n; i++) d[i] *= (T)1 - y[i] * y[i];                                       \
        break;                                                                                    \
    case CYNET_SIGMOID:                                                                           \
        for (i = 0; i < n; i++) d[i] *= y[i] * ((T)1 - y[i]);                                     \
        break;                                                                                    \
    case CYNET_RELU:                                                                              \
        for (i = 0; i < n; i++) d[i] *= SEL(y[i] > (T)0, (T)1, (T)0);                             \
        break;                                                                                    \
    case CYNET_HARD_SIGMOID:                                                                      \
        for (i = 0; i < n; i++) d[i] *= SEL((y[i] > (T)0) & (y[i] < (T)1), (T)1 / (T)6, (T)0);    \
        break;                                                                                    \
    default:                                                                                      \
        break;                                                                                    \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
/* SimpleRNN forward: h (rows of x W on entry) <- act(x W + h_{t-1} U + b) */                     \
CYNET_CLONES static void cynet_simple_fwd_##S(const cynet_rnn_loop* L, Py_ssize_t t,             \
                                              Py_ssize_t u0, Py_ssize_t u1) {                     \
    const Py_ssize_t N = L->N, U = L->U, sh = L->steps * N, eh = U * sh;                              \
    (void)eh;                                                                                     \
    T* h = (T*)L->hs + t * N; const T* r = (const T*)L->r; const T* b = (const T*)L->b;           \
    Py_ssize_t u, n; int act = L->act;                                                            \
    for (u = u0; u < u1; u++) {                                                                   \
        T* hu = CYNET_RNN_ROW(h, u * sh, N - 1, eh - t * N);                                      \
        const T* ru = CYNET_RNN_ROW(r, u * N, N - 1, U * N);                                      \
        T bu = b[CY_AT(u, U)];                                                                    \
        if (act == CYNET_TANH) {   /* the Keras default, fused: one pass */                       \
            if (u + CYNET_AHEAD < u1) CYNET_PREFETCH(hu + CYNET_AHEAD * sh, N, sizeof(T), 1);     \
            CYNET_IVDEP                                                                           \
            for (n = 0; n < N; n++) hu[n] = TANH(hu[n] + ru[n] + bu);                             \
            continue;                                                                             \
        }                                                                                         \
        /* step 2: pre-activation, then the activation */                                         \
        for (n = 0; n < N; n++) hu[n] = hu[n] + ru[n] + bu;                                       \
        cynet_act_##S(act, hu, hu, N);                                                            \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
/* SimpleRNN backward: dg = (dh + dhs_t) * act'(h_t) */                                           \
CYNET_CLONES static void cynet_simple_bwd_##S(const cynet_rnn_loop* L, Py_ssize_t t,             \
                                              Py_ssize_t u0, Py_ssize_t u1) {                     \
    const Py_ssize_t N = L->N, U = L->U, sg = L->steps * N, eg = U * sg;                              \
    (void)eg;                                                                                     \
    T* dg = (T*)L->dg + t * N; const T* dh = (const T*)L->dh; const T* h = (const T*)L->hs + t * N; \
    const Py_ssize_t sdn = L->sdn;                                                                \
    Py_ssize_t u, n; int act = L->act;                                                            \
    for (u = u0; u < u1; u++) {                                                                   \
        T* g = CYNET_RNN_ROW(dg, u * sg, N - 1, eg - t * N);                                      \
        const T* d = CYNET_RNN_ROW(dh, u * N, N - 1, U * N);                                      \
        const T* o = CYNET_RNN_DHS_ROW(T, L, t, u);                                               \
        const T* hu = CYNET_RNN_ROW(h, u * sg, N - 1, eg - t * N);                                \
        if (act == CYNET_TANH) {   /* the Keras default, fused: one pass */                       \
            if (u + CYNET_AHEAD < u1) {                                                           \
                CYNET_PREFETCH(hu + CYNET_AHEAD * sg, N, sizeof(T), 0);                           \
                CYNET_PREFETCH(g + CYNET_AHEAD * sg, N, sizeof(T), 1);                            \
            }                                                                                     \
            CYNET_IVDEP                                                                           \
            for (n = 0; n < N; n++) g[n] = (d[n] + o[n * sdn]) * ((T)1 - hu[n] * hu[n]);         \
            continue;                                                                             \
        }                                                                                         \
        /* step 1: total gradient of h_t (from step t+1 and from the output) */                   \
        for (n = 0; n < N; n++) g[n] = d[n] + o[n * sdn];                                         \
        /* step 2: through the activation */                                                      \
        cynet_dact_##S(act, hu, g, N);                                                            \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
/* LSTM forward: gates of step t (rows of x W on entry, i|f|c|o blocks of U rows) */             \
CYNET_CLONES static void cynet_lstm_fwd_##S(const cynet_rnn_loop* L, Py_ssize_t t,               \
                                            Py_ssize_t u0, Py_ssize_t u1) {                       \
    const Py_ssize_t N = L->N, U = L->U, sh = L->steps * N, eg = 4 * U * N, ec = U * N;               \
    T* g = (T*)L->g + t * eg; const T* r = (const T*)L->r; const T* b = (const T*)L->b;           \
    const T* cp = t == 0 ? (const T*)L->c0 : (const T*)L->cs + (t - 1) * ec;                      \
    T* c = (T*)L->cs + t * ec; T* h = (T*)L->hs + t * N;                                          \
    Py_ssize_t u, n, k; int act = L->act, ract = L->ract;                                         \
    if (act == CYNET_TANH && ract == CYNET_SIGMOID && L->bx && u1 > u0) {                          \
        /* the Keras default over the flat rows of units [u0, u1): see cynet_rnn_loop's bx */    \
        const Py_ssize_t i0 = u0 * N, m = (u1 - u0) * N;                                          \
        T* gi = CYNET_RNN_ROW(g, i0, m - 1, eg); T* gf = CYNET_RNN_ROW(g, ec + i0, m - 1, eg);    \
        T* gg = CYNET_RNN_ROW(g, 2 * ec + i0, m - 1, eg);                                         \
        T* go = CYNET_RNN_ROW(g, 3 * ec + i0, m - 1, eg);                                         \
        const T* ri = CYNET_RNN_ROW(r, i0, m - 1, eg); const T* rf = CYNET_RNN_ROW(r, ec + i0, m - 1, eg); \
        const T* rg = CYNET_RNN_ROW(r, 2 * ec + i0, m - 1, eg);                                   \
        const T* ro = CYNET_RNN_ROW(r, 3 * ec + i0, m - 1, eg);                                   \
        const T* bx = (const T*)L->bx;                                                            \
        const T* bi = CYNET_RNN_ROW(bx, i0, m - 1, eg); const T* bf = CYNET_RNN_ROW(bx, ec + i0, m - 1, eg); \
        const T* bg = CYNET_RNN_ROW(bx, 2 * ec + i0, m - 1, eg);                                  \
        const T* bo = CYNET_RNN_ROW(bx, 3 * ec + i0, m - 1, eg);                                  \
        const T* cpu = CYNET_RNN_ROW(cp, i0, m - 1, ec); T* cu = CYNET_RNN_ROW(c, i0, m - 1, ec); \
        T* hf = CYNET_RNN_ROW((T*)L->hflat, i0, m - 1, ec);                                       \
        CYNET_IVDEP                                                                               \
        for (n = 0; n < m; n++) {                                                                 \
            T vi = (T)1 / ((T)1 + EXP(-(gi[n] + ri[n] + bi[n])));                                 \
            T vf = (T)1 / ((T)1 + EXP(-(gf[n] + rf[n] + bf[n])));                                 \
            T vo = (T)1 / ((T)1 + EXP(-(go[n] + ro[n] + bo[n])));                                 \
            T vg = TANH(gg[n] + rg[n] + bg[n]);                                                   \
            T vc = vf * cpu[n] + vi * vg;                                                         \
            gi[n] = vi; gf[n] = vf; gg[n] = vg; go[n] = vo; cu[n] = vc;                           \
            hf[n] = vo * TANH(vc);                                                                \
        }                                                                                         \
        for (u = u0; u < u1; u++)                                                                 \
            memcpy(CYNET_RNN_ROW(h, u * sh, N - 1, U * sh - t * N), hf + (u - u0) * N, N * sizeof(T)); \
        return;                                                                                   \
    }                                                                                             \
    for (u = u0; u < u1; u++) {                                                                   \
        T* gi = CYNET_RNN_ROW(g, u * N, N - 1, eg); T* gf = CYNET_RNN_ROW(g, (U + u) * N, N - 1, eg); \
        T* gg = CYNET_RNN_ROW(g, (2 * U + u) * N, N - 1, eg);                                     \
        T* go = CYNET_RNN_ROW(g, (3 * U + u) * N, N - 1, eg);                                     \
        const T* cpu = CYNET_RNN_ROW(cp, u * N, N - 1, ec);                                       \
        T* cu = CYNET_RNN_ROW(c, u * N, N - 1, ec);                                               \
        T* hu = CYNET_RNN_ROW(h, u * sh, N - 1, U * sh - t * N);                                  \
        if (act == CYNET_TANH && ract == CYNET_SIGMOID) {                                         \
            /* the Keras default, fused: one pass over the N samples of a unit, steps 2-5 */      \
            const T* ri = CYNET_RNN_ROW(r, u * N, N - 1, eg);                                     \
            const T* rf = CYNET_RNN_ROW(r, (U + u) * N, N - 1, eg);                               \
            const T* rg = CYNET_RNN_ROW(r, (2 * U + u) * N, N - 1, eg);                           \
            const T* ro = CYNET_RNN_ROW(r, (3 * U + u) * N, N - 1, eg);                           \
            T bi = b[CY_AT(u, 4 * U)], bf = b[CY_AT(U + u, 4 * U)];                               \
            T bg = b[CY_AT(2 * U + u, 4 * U)], bo = b[CY_AT(3 * U + u, 4 * U)];                   \
            if (u + CYNET_AHEAD < u1) {                                                           \
                CYNET_PREFETCH_GATES(gi + CYNET_AHEAD * N, U * N, N, sizeof(T), 1);               \
                CYNET_PREFETCH(cu + CYNET_AHEAD * N, N, sizeof(T), 1);                            \
                CYNET_PREFETCH(hu + CYNET_AHEAD * sh, N, sizeof(T), 1);                           \
            }                                                                                     \
            CYNET_IVDEP                                                                           \
            for (n = 0; n < N; n++) {                                                             \
                T vi = (T)1 / ((T)1 + EXP(-(gi[n] + ri[n] + bi)));                                \
                T vf = (T)1 / ((T)1 + EXP(-(gf[n] + rf[n] + bf)));                                \
                T vo = (T)1 / ((T)1 + EXP(-(go[n] + ro[n] + bo)));                                \
                T vg = TANH(gg[n] + rg[n] + bg);                                                  \
                T vc = vf * cpu[n] + vi * vg;                                                     \
                gi[n] = vi; gf[n] = vf; gg[n] = vg; go[n] = vo; cu[n] = vc;                       \
                hu[n] = vo * TANH(vc);                                                            \
            }                                                                                     \
            continue;                                                                             \
        }                                                                                         \
        /* step 2: pre-activations z = x W + h_{t-1} U + b */                                     \
        for (k = 0; k < 4; k++) {                                                                 \
            T* z = CYNET_RNN_ROW(g, (k * U + u) * N, N - 1, eg);                                  \
            const T* rk = CYNET_RNN_ROW(r, (k * U + u) * N, N - 1, eg);                           \
            T bk = b[CY_AT(k * U + u, 4 * U)];                                                    \
            for (n = 0; n < N; n++) z[n] = z[n] + rk[n] + bk;                                     \
        }                                                                                         \
        /* step 3: gates i, f, o with the recurrent activation, candidate g with act */           \
        cynet_act_##S(ract, gi, gi, N);                                                           \
        cynet_act_##S(ract, gf, gf, N);                                                           \
        cynet_act_##S(ract, go, go, N);                                                           \
        cynet_act_##S(act, gg, gg, N);                                                            \
        /* step 4: cell state c_t = f * c_{t-1} + i * g */                                        \
        for (n = 0; n < N; n++) cu[n] = gf[n] * cpu[n] + gi[n] * gg[n];                           \
        /* step 5: hidden state h_t = o * act(c_t) */                                             \
        cynet_act_##S(act, cu, hu, N);                                                            \
        for (n = 0; n < N; n++) hu[n] = go[n] * hu[n];                                            \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
/* LSTM backward: dh (U, N) holds the matmul part of dh_t, dc the gradient of c_t; on exit        \
   dg holds the pre-activation gradients, dc the gradient of c_{t-1} */                           \
CYNET_CLONES static void cynet_lstm_bwd_##S(const cynet_rnn_loop* L, Py_ssize_t t,               \
                                            Py_ssize_t u0, Py_ssize_t u1) {                       \
    const Py_ssize_t N = L->N, U = L->U, sdg = L->steps * N, edg = 4 * U * sdg;                       \
    (void)edg;                                                                                    \
    const Py_ssize_t eg = 4 * U * N, ec = U * N, sdn = L->sdn;                                    \
    T* dg = (T*)L->dg + t * N; T* dh = (T*)L->dh; T* dc = (T*)L->dc;                              \
    const T* g = (const T*)L->g + t * eg; const T* c = (const T*)L->cs + t * ec;                  \
    const T* cp = t == 0 ? (const T*)L->c0 : (const T*)L->cs + (t - 1) * ec;                      \
    Py_ssize_t u, n; T d; int act = L->act, ract = L->ract;                                       \
    for (u = u0; u < u1; u++) {                                                                   \
        T* di = CYNET_RNN_ROW(dg, u * sdg, N - 1, edg - t * N);                                   \
        T* df = CYNET_RNN_ROW(dg, (U + u) * sdg, N - 1, edg - t * N);                             \
        T* dgg = CYNET_RNN_ROW(dg, (2 * U + u) * sdg, N - 1, edg - t * N);                        \
        T* dgo = CYNET_RNN_ROW(dg, (3 * U + u) * sdg, N - 1, edg - t * N);                        \
        const T* gi = CYNET_RNN_ROW(g, u * N, N - 1, eg);                                         \
        const T* gf = CYNET_RNN_ROW(g, (U + u) * N, N - 1, eg);                                   \
        const T* gg = CYNET_RNN_ROW(g, (2 * U + u) * N, N - 1, eg);                               \
        const T* go = CYNET_RNN_ROW(g, (3 * U + u) * N, N - 1, eg);                               \
        T* dhu = CYNET_RNN_ROW(dh, u * N, N - 1, ec); T* dcu = CYNET_RNN_ROW(dc, u * N, N - 1, ec); \
        const T* o = CYNET_RNN_DHS_ROW(T, L, t, u);                                               \
        const T* cu = CYNET_RNN_ROW(c, u * N, N - 1, ec);                                         \
        const T* cpu = CYNET_RNN_ROW(cp, u * N, N - 1, ec);                                       \
        if (act == CYNET_TANH && ract == CYNET_SIGMOID) {                                         \
            /* the Keras default, fused: one pass over the N samples of a unit, steps 1-5 */      \
            if (u + CYNET_AHEAD < u1) {                                                           \
                CYNET_PREFETCH_GATES(gi + CYNET_AHEAD * N, U * N, N, sizeof(T), 0);               \
                CYNET_PREFETCH_GATES(di + CYNET_AHEAD * sdg, U * sdg, N, sizeof(T), 1);           \
                CYNET_PREFETCH(cu + CYNET_AHEAD * N, N, sizeof(T), 0);                            \
                CYNET_PREFETCH(cpu + CYNET_AHEAD * N, N, sizeof(T), 0);                           \
            }                                                                                     \
            CYNET_IVDEP                                                                           \
            for (n = 0; n < N; n++) {                                                             \
                T vh = dhu[n] + o[n * sdn], tc = TANH(cu[n]);                                     \
                T vi = gi[n], vf = gf[n], vg = gg[n], vo = go[n];                                 \
                d = dcu[n] + (vh * vo) * ((T)1 - tc * tc);                                        \
                dhu[n] = vh;                                                                      \
                dcu[n] = d * vf;                                                                  \
                di[n] = (d * vg) * (vi * ((T)1 - vi));                                            \
                df[n] = (d * cpu[n]) * (vf * ((T)1 - vf));                                        \
                dgg[n] = (d * vi) * ((T)1 - vg * vg);                                             \
                dgo[n] = (vh * tc) * (vo * ((T)1 - vo));                                          \
            }                                                                                     \
            continue;                                                                             \
        }                                                                                         \
        /* step 1: total gradient of h_t (matmul part from step t+1 + output gradient) */         \
        for (n = 0; n < N; n++) dhu[n] = dhu[n] + o[n * sdn];                                     \
        /* step 2: recompute act(c_t) into the o block */                                         \
        cynet_act_##S(act, cu, dgo, N);                                                           \
        /* step 3: gradient reaching c_t through h_t, dh * o * act'(c_t), in the f block */       \
        for (n = 0; n < N; n++) df[n] = dhu[n] * go[n];                                           \
        cynet_dact_##S(act, dgo, df, N);                                                          \
        /* step 4: cell gradient, gate gradients before their activations; dc -> dc_{t-1} */      \
        for (n = 0; n < N; n++) {                                                                 \
            d = dcu[n] + df[n];                                                                   \
            dcu[n] = d * gf[n];                                                                   \
            di[n] = d * gg[n];                                                                    \
            df[n] = d * cpu[n];                                                                   \
            dgg[n] = d * gi[n];                                                                   \
            dgo[n] = dhu[n] * dgo[n];                                                             \
        }                                                                                         \
        /* step 5: through the activations, from their outputs */                                 \
        cynet_dact_##S(ract, gi, di, N);                                                          \
        cynet_dact_##S(ract, gf, df, N);                                                          \
        cynet_dact_##S(ract, go, dgo, N);                                                         \
        cynet_dact_##S(act, gg, dgg, N);                                                          \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
/* GRU forward: cache of step t (rows x W for z|r|h on entry, 4th block rh written here) */      \
CYNET_CLONES static void cynet_gru_fwd_##S(const cynet_rnn_loop* L, Py_ssize_t t,                \
                                           Py_ssize_t u0, Py_ssize_t u1) {                        \
    const Py_ssize_t N = L->N, U = L->U, sh = L->steps * N, eg = 4 * U * N, er = 3 * U * N;           \
    (void)er;                                                                                     \
    const Py_ssize_t shp = t == 0 ? N : sh, ehp = t == 0 ? U * N : U * sh - (t - 1) * N;          \
    (void)ehp;                                                                                    \
    T* g = (T*)L->g + t * eg; const T* r = (const T*)L->r;                                        \
    const T* b_in = (const T*)L->b; const T* b_rec = b_in + 3 * U;                                \
    const T* hp = t == 0 ? (const T*)L->h0 : (const T*)L->hs + (t - 1) * N;                       \
    T* h = (T*)L->hs + t * N;                                                                     \
    Py_ssize_t u, n; T zz; int act = L->act, ract = L->ract;                                      \
    for (u = u0; u < u1; u++) {                                                                   \
        T* z = CYNET_RNN_ROW(g, u * N, N - 1, eg); T* rr = CYNET_RNN_ROW(g, (U + u) * N, N - 1, eg); \
        T* hh = CYNET_RNN_ROW(g, (2 * U + u) * N, N - 1, eg);                                     \
        T* rh = CYNET_RNN_ROW(g, (3 * U + u) * N, N - 1, eg);                                     \
        const T* rz = CYNET_RNN_ROW(r, u * N, N - 1, er);                                         \
        const T* rrr = CYNET_RNN_ROW(r, (U + u) * N, N - 1, er);                                  \
        const T* rhh = CYNET_RNN_ROW(r, (2 * U + u) * N, N - 1, er);                              \
        const T* hpu = CYNET_RNN_ROW(hp, u * shp, N - 1, ehp);                                    \
        T* hu = CYNET_RNN_ROW(h, u * sh, N - 1, U * sh - t * N);                                  \
        T bz = b_in[CY_AT(u, 3 * U)], br = b_in[CY_AT(U + u, 3 * U)], bh = b_in[CY_AT(2 * U + u, 3 * U)]; \
        T cz = b_rec[CY_AT(u, 3 * U)], cr = b_rec[CY_AT(U + u, 3 * U)];                           \
        T ch = b_rec[CY_AT(2 * U + u, 3 * U)];                                                    \
        if (act == CYNET_TANH && ract == CYNET_SIGMOID) {                                         \
            /* the Keras default, fused: one pass over the N samples of a unit, steps 2-5 */      \
            if (u + CYNET_AHEAD < u1) {                                                           \
                CYNET_PREFETCH_GATES(z + CYNET_AHEAD * N, U * N, N, sizeof(T), 1);                \
                CYNET_PREFETCH(hu + CYNET_AHEAD * sh, N, sizeof(T), 1);                           \
            }                                                                                     \
            CYNET_IVDEP                                                                           \
            for (n = 0; n < N; n++) {                                                             \
                T vz = (T)1 / ((T)1 + EXP(-(z[n] + bz + (rz[n] + cz))));                          \
                T vr = (T)1 / ((T)1 + EXP(-(rr[n] + br + (rrr[n] + cr))));                        \
                T vrh = rhh[n] + ch;                                                              \
                T vh = TANH(hh[n] + bh + vr * vrh);                                               \
                z[n] = vz; rr[n] = vr; rh[n] = vrh; hh[n] = vh;                                   \
                hu[n] = vz * hpu[n] + ((T)1 - vz) * vh;                                           \
            }                                                                                     \
            continue;                                                                             \
        }                                                                                         \
        /* step 2: z, r pre-activations (x W + b_in) + (h_{t-1} U + b_rec), and rh */             \
        for (n = 0; n < N; n++) {                                                                 \
            z[n] = z[n] + bz + (rz[n] + cz);                                                      \
            rr[n] = rr[n] + br + (rrr[n] + cr);                                                   \
            rh[n] = rhh[n] + ch;                                                                  \
        }                                                                                         \
        /* step 3: update and reset gates */                                                      \
        cynet_act_##S(ract, z, z, N);                                                             \
        cynet_act_##S(ract, rr, rr, N);                                                           \
        /* step 4: candidate hh = act(x W_h + b_in_h + r * rh) */                                 \
        for (n = 0; n < N; n++) hh[n] = hh[n] + bh + rr[n] * rh[n];                               \
        cynet_act_##S(act, hh, hh, N);                                                            \
        /* step 5: h_t = z * h_{t-1} + (1 - z) * hh */                                            \
        for (n = 0; n < N; n++) {                                                                 \
            zz = z[n];                                                                            \
            hu[n] = zz * hpu[n] + ((T)1 - zz) * hh[n];                                            \
        }                                                                                         \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
/* GRU backward: dg rows dxh | dz | dr | dhr; dh (U, N) the matmul part of dh_t, dhd the          \
   direct part z * dh_t of the step after (rewritten for this step) */                            \
CYNET_CLONES static void cynet_gru_bwd_##S(const cynet_rnn_loop* L, Py_ssize_t t,                \
                                           Py_ssize_t u0, Py_ssize_t u1) {                        \
    const Py_ssize_t N = L->N, U = L->U, sdg = L->steps * N, edg = 4 * U * sdg, eg = 4 * U * N;       \
    (void)edg;                                                                                    \
    const Py_ssize_t shp = t == 0 ? N : sdg, ehp = t == 0 ? U * N : U * sdg - (t - 1) * N;        \
    (void)ehp;                                                                                    \
    const Py_ssize_t sdn = L->sdn;                                                                \
    T* dg = (T*)L->dg + t * N; const T* dhg = (const T*)L->dh; T* dhd = (T*)L->dhd;               \
    const T* g = (const T*)L->g + t * eg;                                                         \
    const T* hp = t == 0 ? (const T*)L->h0 : (const T*)L->hs + (t - 1) * N;                       \
    Py_ssize_t u, n; T d, zz; int act = L->act, ract = L->ract;                                   \
    for (u = u0; u < u1; u++) {                                                                   \
        T* dxh = CYNET_RNN_ROW(dg, u * sdg, N - 1, edg - t * N);                                  \
        T* dz = CYNET_RNN_ROW(dg, (U + u) * sdg, N - 1, edg - t * N);                             \
        T* dr = CYNET_RNN_ROW(dg, (2 * U + u) * sdg, N - 1, edg - t * N);                         \
        T* dhr = CYNET_RNN_ROW(dg, (3 * U + u) * sdg, N - 1, edg - t * N);                        \
        const T* z = CYNET_RNN_ROW(g, u * N, N - 1, eg);                                          \
        const T* rr = CYNET_RNN_ROW(g, (U + u) * N, N - 1, eg);                                   \
        const T* hh = CYNET_RNN_ROW(g, (2 * U + u) * N, N - 1, eg);                               \
        const T* rh = CYNET_RNN_ROW(g, (3 * U + u) * N, N - 1, eg);                               \
        const T* dgu = CYNET_RNN_ROW(dhg, u * N, N - 1, U * N);                                   \
        T* ddu = CYNET_RNN_ROW(dhd, u * N, N - 1, U * N);                                         \
        const T* o = CYNET_RNN_DHS_ROW(T, L, t, u);                                               \
        const T* hpu = CYNET_RNN_ROW(hp, u * shp, N - 1, ehp);                                    \
        if (act == CYNET_TANH && ract == CYNET_SIGMOID) {                                         \
            /* the Keras default, fused: one pass over the N samples of a unit, steps 1-4 */      \
            if (u + CYNET_AHEAD < u1) {                                                           \
                CYNET_PREFETCH_GATES(z + CYNET_AHEAD * N, U * N, N, sizeof(T), 0);                \
                CYNET_PREFETCH_GATES(dxh + CYNET_AHEAD * sdg, U * sdg, N, sizeof(T), 1);          \
                CYNET_PREFETCH(hpu + CYNET_AHEAD * shp, N, sizeof(T), 0);                         \
            }                                                                                     \
            CYNET_IVDEP                                                                           \
            for (n = 0; n < N; n++) {                                                             \
                T vz = z[n], vr = rr[n], vh = hh[n], vd;                                          \
                d = dgu[n] + ddu[n] + o[n * sdn];                                                 \
                vd = (d * ((T)1 - vz)) * ((T)1 - vh * vh);                                        \
                ddu[n] = d * vz;                                                                  \
                dxh[n] = vd;                                                                      \
                dz[n] = (d * (hpu[n] - vh)) * (vz * ((T)1 - vz));                                 \
                dr[n] = (vd * rh[n]) * (vr * ((T)1 - vr));                                        \
                dhr[n] = vd * vr;                                                                 \
            }                                                                                     \
            continue;                                                                             \
        }                                                                                         \
        /* step 1: total gradient of h_t, split over z, hh and the direct path */                 \
        for (n = 0; n < N; n++) {                                                                 \
            d = dgu[n] + ddu[n] + o[n * sdn];                                                     \
            zz = z[n];                                                                            \
            dz[n] = d * (hpu[n] - hh[n]);                                                         \
            dxh[n] = d * ((T)1 - zz);                                                             \
            ddu[n] = d * zz;                                                                      \
        }                                                                                         \
        /* step 2: through the candidate activation */                                            \
        cynet_dact_##S(act, hh, dxh, N);                                                          \
        /* step 3: reset gate and the recurrent candidate part */                                 \
        for (n = 0; n < N; n++) {                                                                 \
            dr[n] = dxh[n] * rh[n];                                                               \
            dhr[n] = dxh[n] * rr[n];                                                              \
        }                                                                                         \
        /* step 4: through the recurrent activation of z and r */                                 \
        cynet_dact_##S(ract, z, dz, N);                                                           \
        cynet_dact_##S(ract, rr, dr, N);                                                          \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
/* The recurrent product under recurrent dropout, one block per gate j on its own packed      \
   (U, U) weights A_j: forward r_j = A_j (h_{t-1} * m_j); backward dh = sum_j m_j * (A_j dg_j)   \
   (the gradient flows back through the mask). */                                                \
static void cynet_rnn_product_dropout_##S(const cynet_rnn_loop* L, Py_ssize_t t, int backward,    \
                                          Py_ssize_t k) {                                         \
    const Py_ssize_t N = L->N, U = L->U, TN = L->steps * N, UN = U * N;                           \
    const T* m = (const T*)L->rdrop; T* hm = (T*)L->hm;            \
    Py_ssize_t j, u, n, i;                                                                        \
    if (!backward) {                                                                              \
        const T* hp = t == 0 ? (const T*)L->h0 : (const T*)L->hs + (t - 1) * N;                   \
        const Py_ssize_t sh = t == 0 ? N : TN, eh = t == 0 ? UN : U * TN - (t - 1) * N;           \
        (void)eh;                                                                                 \
        for (j = 0; j < k; j++) {                                                                 \
            for (u = 0; u < U; u++) {                                                             \
                const T* hu = CYNET_RNN_ROW(hp, u * sh, N - 1, eh);                               \
                const T* mu = CYNET_RNN_ROW(m, j * UN + u * N, N - 1, k * UN);                    \
                T* o = CYNET_RNN_ROW(hm, u * N, N - 1, UN);                                       \
                CYNET_IVDEP                                                                       \
                for (n = 0; n < N; n++) o[n] = hu[n] * mu[n];                                     \
            }                                                                                     \
            cynet_rnn_mm_##S(L, j, U, U, hm, N, (T*)L->r + j * UN);                                 \
        }                                                                                         \
    } else {                                                                                      \
        const T* dgt = (const T*)L->dg + (L->cell == CYNET_CELL_GRU ? U * TN : 0) + t * N;        \
        T* dh = (T*)L->dh;                                                                        \
        for (j = 0; j < k; j++) {                                                                 \
            const T* mj = CYNET_RNN_ROW(m, j * UN, UN - 1, k * UN);                               \
            cynet_rnn_mm_##S(L, j, U, U, dgt + j * U * TN, TN, hm);                                 \
            if (j == 0) { CYNET_IVDEP for (i = 0; i < UN; i++) dh[i] = mj[i] * hm[i]; }           \
            else { CYNET_IVDEP for (i = 0; i < UN; i++) dh[i] += mj[i] * hm[i]; }                 \
        }                                                                                         \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
/* The recurrent product of step t on the packed weights: forward r (kU, N) = A h_{t-1};          \
   backward dh (U, N) = A dg_t over the recurrent-side rows (GRU: rows U:4U of dg). */           \
static void cynet_rnn_product_##S(const cynet_rnn_loop* L, Py_ssize_t t, int backward) {         \
    const Py_ssize_t N = L->N, U = L->U, TN = L->steps * N;                                           \
    const Py_ssize_t k = L->cell == CYNET_CELL_SIMPLE ? 1 : L->cell == CYNET_CELL_LSTM ? 4 : 3;   \
    if (L->rdrop) { cynet_rnn_product_dropout_##S(L, t, backward, k); return; }                   \
    if (!backward) {                                                                              \
        const T* hp = t == 0 ? (const T*)L->h0 : (const T*)L->hs + (t - 1) * N;                   \
        cynet_rnn_mm_##S(L, 0, k * U, U, hp, t == 0 ? N : TN, (T*)L->r);                        \
    } else {                                                                                      \
        const T* dgt = (const T*)L->dg + (L->cell == CYNET_CELL_GRU ? U * TN : 0) + t * N;        \
        cynet_rnn_mm_##S(L, 0, U, k * U, dgt, TN, (T*)L->dh);                                    \
    }                                                                                             \
}

CYNET_RNN_KERNELS(float, f, cynet_self, cynet_expf, cynet_tanhf)
CYNET_RNN_KERNELS(double, d, cynet_seld, cynet_expd, cynet_tanhd)

/* One-hot inputs (a character model's x: every column x[:, t, n] a unit vector). cls (T * N)
   gets the row of the one in every column of x (D, T * N); returns 0 as soon as a value is
   neither 0 nor 1 or a column holds two ones, 1 when every column holds exactly one. A dense
   x fails at its first value that is neither, so the scan costs only one-hot inputs. */
#define CYNET_RNN_ONE_HOT(T, S)                                                                   \
static int cynet_rnn_one_hot_##S(const T* x, Py_ssize_t D, Py_ssize_t TN, int32_t* cls) {        \
    Py_ssize_t d, j; T v;                                                                         \
    for (j = 0; j < TN; j++) cls[j] = -1;                                                         \
    for (d = 0; d < D; d++)                                                                       \
        for (j = 0; j < TN; j++) {                                                                \
            v = x[d * TN + j];                                                                    \
            if (v == (T)0) continue;                                                              \
            if (v != (T)1 || cls[j] >= 0) return 0;                                               \
            cls[j] = (int32_t)d;                                                                  \
        }                                                                                         \
    for (j = 0; j < TN; j++) if (cls[j] < 0) return 0;                                            \
    return 1;                                                                                     \
}                                                                                                 \
                                                                                                  \
/* The input projection of one-hot inputs (classes cls (T * N) in [0, D)) as a gather: out       \
   (steps of st elements, M rows of N at stride sr) = kernel.T's rows kt (M, D) at the classes,  \
   out[t][g * sr + n] = kt[g * D + cls[t * N + n]], exactly the product's values; out reaches    \
   ext elements (checked in the debug build, as the classes are). */                             \
CYNET_CLONES static void cynet_rnn_gather_##S(const T* kt, Py_ssize_t D, const int32_t* cls,     \
                                              Py_ssize_t steps, Py_ssize_t M, Py_ssize_t N,       \
                                              T* out, Py_ssize_t st, Py_ssize_t sr, Py_ssize_t ext) { \
    Py_ssize_t t, g, n;                                                                           \
    (void)ext;                                                                                    \
    for (t = 0; t < steps; t++) {                                                                 \
        const int32_t* c = cls + t * N;                                                           \
        for (g = 0; g < M; g++) {                                                                 \
            const T* row = kt + g * D; T* o = out + CY_SPAN(t * st + g * sr, N, ext);             \
            for (n = 0; n < N; n++) o[n] = row[CY_AT(c[n], D)];                                   \
        }                                                                                         \
    }                                                                                             \
}
CYNET_RNN_ONE_HOT(float, f)
CYNET_RNN_ONE_HOT(double, d)

/* Masked steps (Keras: a skipped step leaves the states as they were). Forward, after the
   cell's kernel: h_t (and the LSTM's c_t) of a skipped sample := h_{t-1} (c_{t-1}). Backward,
   before the cell's kernel: carry := the total gradient of h_t of a skipped sample (0 for the
   others), carry_c := dc; after it: the skipped samples' gate gradients := 0, the LSTM's dc
   := carry_c, the GRU's direct-path gradient := carry (so dh_{t-1} = carry); after the step
   product (SimpleRNN, LSTM): dh += carry. */
#define CYNET_RNN_MASKS(T, S)                                                                     \
static void cynet_rnn_mask_fwd_##S(const cynet_rnn_loop* L, Py_ssize_t t, Py_ssize_t u0, Py_ssize_t u1) { \
    const Py_ssize_t N = L->N, U = L->U, sh = L->steps * N, eh = U * sh, ec = U * N;              \
    const unsigned char* m = CYNET_RNN_ROW(L->mask, t * N, N - 1, L->steps * N);                  \
    Py_ssize_t u, n;                                                                              \
    (void)eh;                                                                                     \
    for (u = u0; u < u1; u++) {                                                                   \
        T* h = CYNET_RNN_ROW((T*)L->hs, u * sh + t * N, N - 1, eh);                               \
        const T* hp = t == 0 ? CYNET_RNN_ROW((const T*)L->h0, u * N, N - 1, ec)                   \
                             : CYNET_RNN_ROW((const T*)L->hs, u * sh + (t - 1) * N, N - 1, eh);   \
        for (n = 0; n < N; n++) if (!m[n]) h[n] = hp[n];                                          \
        if (L->cell == CYNET_CELL_LSTM) {                                                         \
            T* c = CYNET_RNN_ROW((T*)L->cs, t * ec + u * N, N - 1, L->steps * ec);                \
            const T* cp = t == 0 ? CYNET_RNN_ROW((const T*)L->c0, u * N, N - 1, ec)               \
                                 : CYNET_RNN_ROW((const T*)L->cs, (t - 1) * ec + u * N, N - 1, L->steps * ec); \
            for (n = 0; n < N; n++) if (!m[n]) c[n] = cp[n];                                      \
        }                                                                                         \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
static void cynet_rnn_mask_bwd_##S(const cynet_rnn_loop* L, Py_ssize_t t, Py_ssize_t u0, Py_ssize_t u1, \
                                   int after) {                                                   \
    const Py_ssize_t N = L->N, U = L->U, sg = L->steps * N, ec = U * N, sdn = L->sdn;             \
    const Py_ssize_t k = L->cell == CYNET_CELL_SIMPLE ? 1 : 4, eg = k * U * sg;                   \
    const unsigned char* m = CYNET_RNN_ROW(L->mask, t * N, N - 1, L->steps * N);                  \
    Py_ssize_t u, n, j;                                                                           \
    (void)ec; (void)eg;                                                                           \
    for (u = u0; u < u1; u++) {                                                                   \
        T* cu = CYNET_RNN_ROW((T*)L->carry, u * N, N - 1, ec);                                    \
        T* dhu = CYNET_RNN_ROW((T*)L->dh, u * N, N - 1, ec);                                      \
        if (!after) {                                                                             \
            const T* o = CYNET_RNN_DHS_ROW(T, L, t, u);                                           \
            const T* dd = L->cell == CYNET_CELL_GRU ? CYNET_RNN_ROW((const T*)L->dhd, u * N, N - 1, ec) : NULL; \
            for (n = 0; n < N; n++)                                                               \
                cu[n] = m[n] ? (T)0 : dhu[n] + (dd ? dd[n] : (T)0) + o[n * sdn];                  \
            if (L->cell == CYNET_CELL_LSTM) {                                                     \
                const T* dc = CYNET_RNN_ROW((const T*)L->dc, u * N, N - 1, ec);                   \
                T* cc = CYNET_RNN_ROW((T*)L->carry_c, u * N, N - 1, ec);                          \
                for (n = 0; n < N; n++) cc[n] = dc[n];                                            \
            }                                                                                     \
            continue;                                                                             \
        }                                                                                         \
        for (j = 0; j < k; j++) {                                                                 \
            T* g = CYNET_RNN_ROW((T*)L->dg, (j * U + u) * sg + t * N, N - 1, eg);                 \
            for (n = 0; n < N; n++) if (!m[n]) g[n] = (T)0;                                       \
        }                                                                                         \
        if (L->cell == CYNET_CELL_LSTM) {                                                         \
            T* dc = CYNET_RNN_ROW((T*)L->dc, u * N, N - 1, ec);                                   \
            const T* cc = CYNET_RNN_ROW((const T*)L->carry_c, u * N, N - 1, ec);                  \
            for (n = 0; n < N; n++) if (!m[n]) dc[n] = cc[n];                                     \
        } else if (L->cell == CYNET_CELL_GRU) {                                                   \
            T* dd = CYNET_RNN_ROW((T*)L->dhd, u * N, N - 1, ec);                                  \
            for (n = 0; n < N; n++) if (!m[n]) dd[n] = cu[n];                                     \
        }                                                                                         \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
static void cynet_rnn_mask_carry_##S(const cynet_rnn_loop* L) {                                   \
    const Py_ssize_t n = L->U * L->N;                                                             \
    T* dh = (T*)L->dh; const T* c = (const T*)L->carry;                                           \
    Py_ssize_t i;                                                                                 \
    for (i = 0; i < n; i++) dh[i] += c[i];                                                        \
}

CYNET_RNN_MASKS(float, f)
CYNET_RNN_MASKS(double, d)

/* The cell's kernel for step t, units [u0, u1), forward or backward, of the loop's dtype. */
static inline void cynet_rnn_step(const cynet_rnn_loop* L, Py_ssize_t t, Py_ssize_t u0, Py_ssize_t u1,
                                  int backward) {
    int f = L->dsize == (int)sizeof(float);
    if (L->mask && backward) {
        if (f) cynet_rnn_mask_bwd_f(L, t, u0, u1, 0); else cynet_rnn_mask_bwd_d(L, t, u0, u1, 0);
    }
    switch (L->cell * 2 + backward) {
    case 0: if (f) cynet_simple_fwd_f(L, t, u0, u1); else cynet_simple_fwd_d(L, t, u0, u1); break;
    case 1: if (f) cynet_simple_bwd_f(L, t, u0, u1); else cynet_simple_bwd_d(L, t, u0, u1); break;
    case 2: if (f) cynet_lstm_fwd_f(L, t, u0, u1); else cynet_lstm_fwd_d(L, t, u0, u1); break;
    case 3: if (f) cynet_lstm_bwd_f(L, t, u0, u1); else cynet_lstm_bwd_d(L, t, u0, u1); break;
    case 4: if (f) cynet_gru_fwd_f(L, t, u0, u1); else cynet_gru_fwd_d(L, t, u0, u1); break;
    default: if (f) cynet_gru_bwd_f(L, t, u0, u1); else cynet_gru_bwd_d(L, t, u0, u1); break;
    }
    if (L->mask) {
        if (!backward) { if (f) cynet_rnn_mask_fwd_f(L, t, u0, u1); else cynet_rnn_mask_fwd_d(L, t, u0, u1); }
        else if (f) cynet_rnn_mask_bwd_f(L, t, u0, u1, 1);
        else cynet_rnn_mask_bwd_d(L, t, u0, u1, 1);
    }
}

/* After the backward product of step t: the gradient carried past a skipped step joins dh
   (SimpleRNN, LSTM; the GRU's goes through its direct path). */
static inline void cynet_rnn_after_product(const cynet_rnn_loop* L) {
    if (!L->mask || L->cell == CYNET_CELL_GRU) return;
    if (L->dsize == (int)sizeof(float)) cynet_rnn_mask_carry_f(L); else cynet_rnn_mask_carry_d(L);
}

static inline void cynet_rnn_product(const cynet_rnn_loop* L, Py_ssize_t t, int backward) {
    if (L->dsize == (int)sizeof(float)) cynet_rnn_product_f(L, t, backward);
    else cynet_rnn_product_d(L, t, backward);
}

#endif
