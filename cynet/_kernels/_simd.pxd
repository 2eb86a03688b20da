# cynet_simd.h, the C shared by the compiled kernels (branch-free select, vectorisable exp and
# tanh, float bit casts), declared once: `from cynet._kernels._simd cimport cynet_self, ...`.
# A module that needs a C loop of its own (a CYNET_CLONES function) writes it in a header of its
# own that includes cynet_simd.h (cynet_activations.h, cynet_optim.h), not in a string.
from libc.stdint cimport int32_t

cdef extern from "cynet_simd.h" nogil:
    float cynet_self(int c, float a, float b) noexcept
    double cynet_seld(int c, double a, double b) noexcept
    float cynet_expf(float x) noexcept
    double cynet_expd(double x) noexcept
    float cynet_tanhf(float x) noexcept
    double cynet_tanhd(double x) noexcept
    int32_t cynet_f32_bits(float x) noexcept
    float cynet_f32_from_bits(int32_t i) noexcept
