# Checked indexing for the debug build (cynet_check.h): p[CY_AT(i, n)] checks 0 <= i < n and
# aborts with the location when built with CYNET_DEBUG_BUILD=1; otherwise it is p[i].
cdef extern from "cynet_check.h":
    Py_ssize_t CY_AT(Py_ssize_t i, Py_ssize_t n) noexcept nogil
    const int CYNET_CHECKED
