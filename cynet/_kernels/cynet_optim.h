/* cynet_optim.h: the fused optimizer update loops of optim.pyx (declared there), written once
   for T = float (suffix f) and double (suffix d), in the CYNET_CLONES form of cynet_simd.h. */
#ifndef CYNET_OPTIM_H
#define CYNET_OPTIM_H
#include <math.h>
#include "cynet_simd.h"

#define CYNET_OPTIM_KERNELS(T, S, SEL, SQRT, POW)                                                 \
/* Adam: m += (g - m) c1; v += (g^2 - v) c2; [vh = max(vh, v)]; w -= alpha m / (sqrt(v) + eps) */ \
CYNET_CLONES static void cynet_adam_##S(T* w, const T* g, T* m, T* v, T* vh, Py_ssize_t n,  \
                                         T alpha, T c1, T c2, T eps) {                       \
    Py_ssize_t i; T gi, mi, vi;                                                              \
    if (vh) {                                                                                \
        for (i = 0; i < n; i++) {                                                            \
            gi = g[i];                                                                       \
            mi = m[i] + (gi - m[i]) * c1; m[i] = mi;                                         \
            vi = v[i] + (gi * gi - v[i]) * c2; v[i] = vi;                                    \
            vi = SEL(vh[i] > vi || vh[i] != vh[i], vh[i], vi); vh[i] = vi; /* NaN wins */   \
            w[i] = w[i] - (mi * alpha) / (SQRT(vi) + eps);                                   \
        }                                                                                    \
    } else {                                                                                 \
        for (i = 0; i < n; i++) {                                                            \
            gi = g[i];                                                                       \
            mi = m[i] + (gi - m[i]) * c1; m[i] = mi;                                         \
            vi = v[i] + (gi * gi - v[i]) * c2; v[i] = vi;                                    \
            w[i] = w[i] - (mi * alpha) / (SQRT(vi) + eps);                                   \
        }                                                                                    \
    }                                                                                        \
}                                                                                            \
/* SGD with momentum (Keras): m = momentum m - lr g; w += m, or w += momentum m - lr g */    \
CYNET_CLONES static void cynet_sgd_##S(T* w, const T* g, T* m, Py_ssize_t n, T lr,          \
                                        T momentum, int nesterov) {                          \
    Py_ssize_t i; T step, mi;                                                                \
    if (nesterov) {                                                                          \
        for (i = 0; i < n; i++) {                                                            \
            step = g[i] * lr; mi = m[i] * momentum - step; m[i] = mi;                        \
            w[i] = w[i] + (mi * momentum - step);                                            \
        }                                                                                    \
    } else {                                                                                 \
        for (i = 0; i < n; i++) {                                                            \
            mi = m[i] * momentum - g[i] * lr; m[i] = mi;                                     \
            w[i] = w[i] + mi;                                                                \
        }                                                                                    \
    }                                                                                        \
}                                                                                            \
/* Adamax: m += (g - m) c1; u = max(b2 u, |g|); w -= (m lr) / ((u + eps) corr) */          \
CYNET_CLONES static void cynet_adamax_##S(T* w, const T* g, T* m, T* u, Py_ssize_t n, T lr, \
                                           T c1, T b2, T corr, T eps) {                      \
    Py_ssize_t i; T gi, mi, ui, ag;                                                          \
    for (i = 0; i < n; i++) {                                                                \
        gi = g[i];                                                                           \
        mi = m[i] + (gi - m[i]) * c1; m[i] = mi;                                             \
        ui = u[i] * b2; ag = gi < 0 ? -gi : gi;                                              \
        ui = SEL(ui > ag || ui != ui, ui, ag); u[i] = ui;        /* NaN wins, as np.maximum */ \
        w[i] = w[i] - (mi * lr) / ((ui + eps) * corr);                                       \
    }                                                                                        \
}                                                                                            \
/* Lion: w -= lr sign(b1 m + c1 g); m = b2 m + c2 g (c = 1 - b) */                          \
CYNET_CLONES static void cynet_lion_##S(T* w, const T* g, T* m, Py_ssize_t n, T lr, T b1,   \
                                         T c1, T b2, T c2) {                                 \
    Py_ssize_t i; T gi, d;                                                                   \
    for (i = 0; i < n; i++) {                                                                \
        gi = g[i];                                                                           \
        d = m[i] * b1 + gi * c1;                                                             \
        d = d > 0 ? (T)1 : (d < 0 ? (T)-1 : d);             /* sign; 0 and NaN as they are */ \
        w[i] = w[i] - d * lr;                                                                \
        m[i] = m[i] * b2 + gi * c2;                                                          \
    }                                                                                        \
}                                                                                            \
/* FTRL (Keras): n' = n + g^2; z += g + s2 w; z -= (n'^p - n^p) / lr w;                     \
   w = (clip(z, -l1, l1) - z) / (n'^p / lr + l2x2); n = n' */                               \
CYNET_CLONES static void cynet_ftrl_##S(T* w, const T* g, T* acc, T* lin, Py_ssize_t n, T lr, \
                                         T p, T l1, T l2x2, T s2) {                           \
    Py_ssize_t i; T gi, wi, pn, nn, pnn, z, zc;                                              \
    int root = p == (T)0.5;                     /* the default: sqrt, far cheaper than pow */ \
    for (i = 0; i < n; i++) {                                                                \
        gi = g[i]; wi = w[i];                                                                \
        z = lin[i] + (wi * s2 + gi);                                                         \
        nn = acc[i] + gi * gi;                                                               \
        if (root) { pn = SQRT(acc[i]); pnn = SQRT(nn); }                                     \
        else { pn = POW(acc[i], p); pnn = POW(nn, p); }                                      \
        z = z - ((pnn - pn) / lr) * wi; lin[i] = z;                                          \
        zc = z < -l1 ? -l1 : z; zc = zc > l1 ? l1 : zc;     /* np.clip: min(max(z, -l1), l1) */ \
        w[i] = (zc - z) / (pnn / lr + l2x2);                                                 \
        acc[i] = nn;                                                                         \
    }                                                                                        \
}

CYNET_OPTIM_KERNELS(float, f, cynet_self, sqrtf, powf)
CYNET_OPTIM_KERNELS(double, d, cynet_seld, sqrt, pow)

#endif  /* CYNET_OPTIM_H */
