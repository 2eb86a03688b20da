# The thread policy: how many threads a kernel's parallel region of a given size and kind uses.
# Every kernel asks threads_for(); the policy's table lives in _openmp.pyx (one place to make it
# load-aware). Cross-module calls go through Cython's C-API capsule: one indirect call per
# kernel call, nothing per element.

cdef enum Cost:
    COST_STREAM          # memory-bound elementwise passes: relu, backward passes
    COST_TRANSCENDENTAL  # one exp / tanh / log per element
    COST_ROWS            # the softmax family: row-wise reductions and exps
    COST_WINDOW          # pooling and batch-norm passes (elements of the input or output)
    COST_CONV            # im2col / col2im / bias passes of the convolution (patch elements)
    COST_RECURRENT       # gate values of one recurrent step
    COST_RECURRENT_MACS  # multiply-adds of one recurrent step product (BLAS above the threshold)
    COST_UPDATE          # optimizer update elements
    N_COSTS

cdef int threads_for(Py_ssize_t work, int cost) noexcept nogil
