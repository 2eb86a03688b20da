/* cynet_activations.h: the C loops of activations.pyx (declared there). */
#ifndef CYNET_ACTIVATIONS_H
#define CYNET_ACTIVATIONS_H
#include "cynet_simd.h"

/* float32 tanh over n elements, cloned for AVX2 and AVX-512 (the rest of activations.pyx is
   compiled for the baseline): without the clones NumPy's own SIMD tanh is the faster one. */
CYNET_CLONES static void cynet_tanh_fwd_f32(const float* x, float* y, Py_ssize_t n) {
    Py_ssize_t i;
    for (i = 0; i < n; i++) y[i] = cynet_tanhf(x[i]);
}

#endif  /* CYNET_ACTIVATIONS_H */
