# Checked indexing for the debug build (cynet_check.h): p[CY_AT(i, n)] checks 0 <= i < n and
# aborts with the location when built with CYNET_DEBUG_BUILD=1; otherwise it is p[i].
# p + CY_SPAN(o, len, n): the run p[o:o + len] checked to lie whole in [0, n) (a row, a memcpy).
cdef extern from "cynet_check.h":
    Py_ssize_t CY_AT(Py_ssize_t i, Py_ssize_t n) noexcept nogil
    Py_ssize_t CY_SPAN(Py_ssize_t o, Py_ssize_t length, Py_ssize_t n) noexcept nogil
    const int CYNET_CHECKED
