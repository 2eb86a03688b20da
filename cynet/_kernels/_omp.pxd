# Shared OpenMP shim: the same Cython code compiles with and without OpenMP.
# Never `cimport openmp` directly: omp.h is absent in a serial build.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define CYNET_HAVE_OPENMP 1
    #else
    #define CYNET_HAVE_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    static void omp_set_num_threads(int n) { (void)n; }
    static int omp_get_thread_num(void) { return 0; }
    #endif
    """
    const int CYNET_HAVE_OPENMP
    int omp_get_max_threads() noexcept nogil
    void omp_set_num_threads(int n) noexcept nogil
    int omp_get_thread_num() noexcept nogil


cdef inline int n_threads(Py_ssize_t work, Py_ssize_t min_work_per_thread) noexcept nogil:
    """Team size for a prange over `work` items: at most the configured thread count, and 1
    when the work is too small to pay for a team (fewer than min_work_per_thread per thread)."""
    cdef int nt = omp_get_max_threads()
    cdef Py_ssize_t cap
    if min_work_per_thread > 0:
        cap = work // min_work_per_thread
        if cap < nt:
            nt = <int>cap
    return nt if nt >= 1 else 1
