# The recurrent cells and their step product (cynet_rnn.h), declared once for Cython.
# rnn.pyx's time-loop driver fills one cynet_rnn_loop per call and runs the steps.
from libc.stdint cimport uint32_t, int32_t

cdef extern from "cynet_rnn.h" nogil:
    enum:
        CYNET_LINEAR
        CYNET_TANH
        CYNET_SIGMOID
        CYNET_RELU
        CYNET_HARD_SIGMOID
        CYNET_N_ACTIVATIONS
    enum:
        CYNET_CELL_SIMPLE
        CYNET_CELL_LSTM
        CYNET_CELL_GRU

    ctypedef struct cynet_rnn_loop:
        int cell, act, ract, dsize
        Py_ssize_t steps, N, U
        const void* h0
        const void* c0
        const void* b
        void* hs
        void* cs
        void* g
        void* r
        void* dg
        void* dh
        void* dhd
        void* dc
        const void* dhs
        Py_ssize_t sdn, sdt, sdu, dhs_lo, dhs_hi
        const void* ap
        void* tail
        const unsigned char* mask
        void* carry
        void* carry_c
        const void* rdrop
        void* hm
        Py_ssize_t apj
        int bf16, bpath
        const uint32_t* bap
        uint32_t* bwork
        Py_ssize_t bapj
        const void* bx
        void* hflat

    int cynet_rnn_one_hot_f(const float* x, Py_ssize_t D, Py_ssize_t TN, int32_t* cls) noexcept
    int cynet_rnn_one_hot_d(const double* x, Py_ssize_t D, Py_ssize_t TN, int32_t* cls) noexcept
    void cynet_rnn_gather_f(const float* kt, Py_ssize_t D, const int32_t* cls, Py_ssize_t steps, Py_ssize_t M,
                            Py_ssize_t N, float* out, Py_ssize_t st, Py_ssize_t sr, Py_ssize_t ext) noexcept
    void cynet_rnn_gather_d(const double* kt, Py_ssize_t D, const int32_t* cls, Py_ssize_t steps, Py_ssize_t M,
                            Py_ssize_t N, double* out, Py_ssize_t st, Py_ssize_t sr, Py_ssize_t ext) noexcept
    void cynet_rnn_step(const cynet_rnn_loop* L, Py_ssize_t t, Py_ssize_t u0, Py_ssize_t u1,
                        int backward) noexcept
    void cynet_rnn_product(const cynet_rnn_loop* L, Py_ssize_t t, int backward) noexcept
    void cynet_rnn_after_product(const cynet_rnn_loop* L) noexcept
