/* cynet_optim.h: the fused optimizer update loops of optim.pyx (declared there), written once
   for T = float (suffix f) and double (suffix d), in the CYNET_CLONES form of cynet_simd.h. */
#ifndef CYNET_OPTIM_H
#define CYNET_OPTIM_H
#include <math.h>
#include "cynet_simd.h"

#define CYNET_OPTIM_KERNELS(T, S, SEL, SQRT)                                                 \
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
}

CYNET_OPTIM_KERNELS(float, f, cynet_self, sqrtf)
CYNET_OPTIM_KERNELS(double, d, cynet_seld, sqrt)

#endif  /* CYNET_OPTIM_H */
