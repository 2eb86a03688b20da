"""OpenMP state of the compiled kernels: was OpenMP compiled in, and how many threads."""
from cynet._kernels._omp cimport CYNET_HAVE_OPENMP, omp_get_max_threads, omp_set_num_threads


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(CYNET_HAVE_OPENMP)


def get_num_threads():
    """Threads a kernel's parallel region uses (1 without OpenMP)."""
    return omp_get_max_threads()


def set_num_threads(int n):
    """Set the OpenMP team size for kernels called from this thread. n >= 1."""
    if n < 1:
        raise ValueError(f"n must be a positive integer, received n={n}")
    omp_set_num_threads(n)
