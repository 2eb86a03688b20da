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


# How many threads a region uses is the thread policy's call: _openmp.pxd, threads_for().
