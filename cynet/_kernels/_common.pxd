# Small helpers shared by the compiled kernels: cimport them, never paste a copy.
#
#   from cynet._kernels._common cimport dtype_of, copy_n, add_n, zero_n, imin, imax
#
# Buffer helpers take (dst, src, n), in that order, like memcpy: dst[:n] op= src[:n] over raw
# pointers of one fused `floating` type. They are inline: each kernel module compiles its own
# copy, so a call costs nothing beside the loop, and the compiler vectorises the loop in place.
# The window geometry (output sizes and its argument checks) is Python-level and shared with the
# NumPy twins: cynet/_kernels/_windows.py.
from cython cimport floating
from libc.string cimport memcpy, memset

cdef inline str dtype_of(floating tag):
    """The NumPy dtype code of a fused specialisation: dtype_of(<floating>0) inside a function over
    `floating` is 'f' (float32) for float and 'd' (float64) for double, which np.empty / zeros /
    astype take as dtype= as cheaply as the type object (no NumPy C API, so no import_array)."""
    if floating is float:
        return "f"
    else:
        return "d"


cdef inline void copy_n(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    """dst[:n] = src[:n] (no overlap). Below 16 elements (a window row of a small kernel on few
    channels, e.g. 6 x 1) two fixed-size copies that overlap cover [0, n): constant-size moves
    instead of a loop whose setup costs more than the copy."""
    if n >= 16:
        memcpy(dst, src, n * sizeof(floating))
    elif n >= 8:
        memcpy(dst, src, 8 * sizeof(floating))
        memcpy(dst + n - 8, src + n - 8, 8 * sizeof(floating))
    elif n >= 4:
        memcpy(dst, src, 4 * sizeof(floating))
        memcpy(dst + n - 4, src + n - 4, 4 * sizeof(floating))
    elif n >= 2:
        memcpy(dst, src, 2 * sizeof(floating))
        memcpy(dst + n - 2, src + n - 2, 2 * sizeof(floating))
    elif n == 1:
        dst[0] = src[0]


cdef inline void add_n(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    """dst[:n] += src[:n]."""
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] += src[i]


cdef inline void zero_n(floating* dst, Py_ssize_t n) noexcept nogil:
    """dst[:n] = 0."""
    memset(dst, 0, n * sizeof(floating))


cdef inline Py_ssize_t imin(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a < b else b


cdef inline Py_ssize_t imax(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a > b else b
