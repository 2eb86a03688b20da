/* cynet_check.h: checked indexing for the debug build.

   CY_AT(i, n) is the index i, checked to lie in [0, n) when the extension is compiled with
   CYNET_DEBUG_BUILD=1 (setup.py defines CYNET_DEBUG_BUILD): an index out of bounds prints where
   and aborts, so a kernel test under the debug build fails at the first overrun instead of
   reading or corrupting memory. In a normal build it is the bare index, and costs nothing.

   Use it on raw-pointer accesses in inner loops: p[CY_AT(i, n)], where n is the number of
   elements the pointer may reach (the buffer's extent from that pointer). CY_SPAN(o, len, n) is
   the offset o of a run of len elements (a memcpy, a row, a chunk), checked to lie whole in
   [0, n): p + CY_SPAN(o, len, n). Cython declares both in _check.pxd. */
#ifndef CYNET_CHECK_H
#define CYNET_CHECK_H

#include <stddef.h>

#ifdef CYNET_DEBUG_BUILD
#include <stdio.h>
#include <stdlib.h>
static inline ptrdiff_t cynet_checked_index(ptrdiff_t i, ptrdiff_t n, const char* file, int line) {
    if (i < 0 || i >= n) {
        fprintf(stderr, "cynet debug build: index %td out of bounds [0, %td) at %s:%d\n", i, n, file, line);
        fflush(stderr);
        abort();
    }
    return i;
}
/* the offset o of a run of len elements, checked to lie with the whole run in [0, n) */
static inline ptrdiff_t cynet_checked_span(ptrdiff_t o, ptrdiff_t len, ptrdiff_t n, const char* file, int line) {
    if (o < 0 || len < 0 || o > n - len) {
        fprintf(stderr, "cynet debug build: run [%td, %td) out of bounds [0, %td) at %s:%d\n", o, o + len, n, file, line);
        fflush(stderr);
        abort();
    }
    return o;
}
#define CY_AT(i, n) cynet_checked_index((ptrdiff_t)(i), (ptrdiff_t)(n), __FILE__, __LINE__)
#define CY_SPAN(o, len, n) cynet_checked_span((ptrdiff_t)(o), (ptrdiff_t)(len), (ptrdiff_t)(n), __FILE__, __LINE__)
#define CYNET_CHECKED 1
#else
#define CY_AT(i, n) (i)
#define CY_SPAN(o, len, n) (o)
#define CYNET_CHECKED 0
#endif

#endif
