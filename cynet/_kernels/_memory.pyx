"""A caching allocator for NumPy array data, active while a model trains, evaluates or predicts.

A training step allocates the same large temporaries at every batch (activations, their
gradients, pooled maps, im2col patches). Through malloc each comes back from the kernel as
fresh pages: glibc serves blocks above its mmap threshold (128 KiB to 32 MiB, adapting) with
mmap and hands them back with munmap, and trims its heap when its top is free, so every batch
page-faults its working set in again, and on a VM page faults are expensive: they were a large
share of a small CNN's epoch (bench/README.md, "Array cache").

`caching()` installs, for the current thread's context (NumPy's PyDataMem_SetHandler), a data
allocator that keeps freed blocks of CYNET_MEM_MIN bytes or more, by exact size, for the next
request of that size: in a training loop every request after the first batch is served from
the cache. Every block is malloc'ed with a header holding its size, so a block is always
freed or reused by its true size whatever size NumPy reports. When the last `caching()` scope
of the process exits, the cache is emptied; an array allocated inside and freed later goes
straight back to free(). The cache holds at most CYNET_MEM_SLOTS blocks and `limit` bytes
(oldest evicted first); a mutex guards it, since NumPy may free an array on any thread.
`trim()` (called by cynet.utils.clear_session()) frees the cached blocks at any time.
"""
import contextlib
import threading

from cpython.pycapsule cimport PyCapsule_New

cimport numpy as cnp

cnp.import_array()

cdef extern from *:
    """
    #include <stdlib.h>
    #include <string.h>
    #include <stdint.h>
    #include <pthread.h>
    #ifdef __GLIBC__
    #include <malloc.h>
    #endif

    #define CYNET_MEM_MIN ((size_t)1 << 16)  /* smaller blocks: malloc's own free lists serve well */
    #define CYNET_MEM_SLOTS 128
    #define CYNET_MEM_HEAD 64                /* header: the block's size; keeps malloc's alignment */

    static void* cynet_mem_block[CYNET_MEM_SLOTS];   /* cached headers, oldest first */
    static size_t cynet_mem_size[CYNET_MEM_SLOTS];
    static int cynet_mem_count = 0;
    static size_t cynet_mem_bytes = 0, cynet_mem_limit = 0;   /* limit 0: not caching */
    static size_t cynet_mem_hits = 0, cynet_mem_misses = 0;
    static pthread_mutex_t cynet_mem_lock = PTHREAD_MUTEX_INITIALIZER;

    static void cynet_mem_drop(int i) {   /* remove slot i (lock held) */
        cynet_mem_bytes -= cynet_mem_size[i];
        memmove(cynet_mem_block + i, cynet_mem_block + i + 1, (cynet_mem_count - i - 1) * sizeof(void*));
        memmove(cynet_mem_size + i, cynet_mem_size + i + 1, (cynet_mem_count - i - 1) * sizeof(size_t));
        cynet_mem_count--;
    }

    /* a cached header of exactly n bytes, or NULL */
    static void* cynet_mem_take(size_t n) {
        void* h = NULL;
        int i;
        if (n < CYNET_MEM_MIN) return NULL;
        pthread_mutex_lock(&cynet_mem_lock);
        for (i = cynet_mem_count - 1; i >= 0; i--)
            if (cynet_mem_size[i] == n) { h = cynet_mem_block[i]; cynet_mem_drop(i); break; }
        if (cynet_mem_limit) { if (h) cynet_mem_hits++; else cynet_mem_misses++; }
        pthread_mutex_unlock(&cynet_mem_lock);
        return h;
    }

    static void* cynet_mem_malloc(void* ctx, size_t n) {
        char* h;
        (void)ctx;
        if (n > SIZE_MAX - CYNET_MEM_HEAD) return NULL;
        h = (char*)cynet_mem_take(n);
        if (!h && !(h = (char*)malloc(n + CYNET_MEM_HEAD))) return NULL;
        *(size_t*)h = n;
        return h + CYNET_MEM_HEAD;
    }

    static void* cynet_mem_calloc(void* ctx, size_t count, size_t size) {
        char* h;
        size_t n;
        (void)ctx;
        if (size && count > (SIZE_MAX - CYNET_MEM_HEAD) / size) return NULL;
        n = count * size;
        if ((h = (char*)cynet_mem_take(n)))
            memset(h + CYNET_MEM_HEAD, 0, n);        /* a reused block is dirty */
        else if (!(h = (char*)calloc(1, n + CYNET_MEM_HEAD)))
            return NULL;
        *(size_t*)h = n;
        return h + CYNET_MEM_HEAD;
    }

    static void* cynet_mem_realloc(void* ctx, void* p, size_t n) {
        char* h;
        if (!p) return cynet_mem_malloc(ctx, n);
        if (n > SIZE_MAX - CYNET_MEM_HEAD) return NULL;
        if (!(h = (char*)realloc((char*)p - CYNET_MEM_HEAD, n + CYNET_MEM_HEAD))) return NULL;
        *(size_t*)h = n;
        return h + CYNET_MEM_HEAD;
    }

    static void cynet_mem_free(void* ctx, void* p, size_t reported) {
        char* h;
        size_t n;
        void* evicted[CYNET_MEM_SLOTS];
        int ne = 0, i;
        (void)ctx; (void)reported;   /* the header's size is the truth */
        if (!p) return;
        h = (char*)p - CYNET_MEM_HEAD;
        n = *(size_t*)h;
        if (n >= CYNET_MEM_MIN) {
            pthread_mutex_lock(&cynet_mem_lock);
            if (cynet_mem_limit && n <= cynet_mem_limit / 4) {
                while (cynet_mem_count && (cynet_mem_count == CYNET_MEM_SLOTS
                                           || cynet_mem_bytes + n > cynet_mem_limit)) {
                    evicted[ne++] = cynet_mem_block[0];
                    cynet_mem_drop(0);
                }
                cynet_mem_block[cynet_mem_count] = h;
                cynet_mem_size[cynet_mem_count++] = n;
                cynet_mem_bytes += n;
                h = NULL;
            }
            pthread_mutex_unlock(&cynet_mem_lock);
            for (i = 0; i < ne; i++) free(evicted[i]);
        }
        free(h);
    }

    /* start (limit > 0) or stop (limit 0: every cached block is freed) caching */
    static void cynet_mem_set_limit(size_t limit) {
        void* evicted[CYNET_MEM_SLOTS];
        int ne = 0, i;
        pthread_mutex_lock(&cynet_mem_lock);
        cynet_mem_limit = limit;
        while (cynet_mem_count && (!limit || cynet_mem_bytes > limit)) {
            evicted[ne++] = cynet_mem_block[0];
            cynet_mem_drop(0);
        }
        pthread_mutex_unlock(&cynet_mem_lock);
        for (i = 0; i < ne; i++) free(evicted[i]);
    }

    /* free every cached block now, caching or not; returns their bytes */
    static size_t cynet_mem_release(void) {
        void* evicted[CYNET_MEM_SLOTS];
        int ne = 0, i;
        size_t released;
        pthread_mutex_lock(&cynet_mem_lock);
        released = cynet_mem_bytes;
        while (cynet_mem_count) {
            evicted[ne++] = cynet_mem_block[0];
            cynet_mem_drop(0);
        }
        pthread_mutex_unlock(&cynet_mem_lock);
        for (i = 0; i < ne; i++) free(evicted[i]);
        return released;
    }

    /* return malloc's free memory to the system (glibc keeps it in its arenas otherwise) */
    static int cynet_mem_trim_system(void) {
    #ifdef __GLIBC__
        return malloc_trim(0);
    #else
        return 0;
    #endif
    }

    static size_t cynet_mem_stat(int which) {
        size_t v;
        pthread_mutex_lock(&cynet_mem_lock);
        v = which == 0 ? cynet_mem_bytes : which == 1 ? (size_t)cynet_mem_count
            : which == 2 ? cynet_mem_hits : cynet_mem_misses;
        pthread_mutex_unlock(&cynet_mem_lock);
        return v;
    }

    static PyDataMem_Handler cynet_mem_handler = {
        "cynet_caching_allocator", 1,
        {NULL, cynet_mem_malloc, cynet_mem_calloc, cynet_mem_realloc, cynet_mem_free}
    };
    """
    size_t CYNET_MEM_MIN
    int CYNET_MEM_SLOTS
    ctypedef struct PyDataMem_Handler:
        pass
    PyDataMem_Handler cynet_mem_handler
    void cynet_mem_set_limit(size_t limit) nogil
    size_t cynet_mem_release() nogil
    int cynet_mem_trim_system() nogil
    size_t cynet_mem_stat(int which) nogil

cdef extern from "numpy/arrayobject.h":
    object PyDataMem_SetHandler(object handler)

DEFAULT_LIMIT = 256 << 20
MIN_BLOCK = CYNET_MEM_MIN
SLOTS = CYNET_MEM_SLOTS

_handler = PyCapsule_New(<void*>&cynet_mem_handler, "mem_handler", NULL)
_scopes = 0
_scopes_lock = threading.Lock()


@contextlib.contextmanager
def caching(limit=DEFAULT_LIMIT):
    """Within the block, NumPy arrays created by this thread take their data from the cache.
    `limit`: bytes the cache may hold (the first scope's value holds until the last exits)."""
    global _scopes
    with _scopes_lock:
        if _scopes == 0:
            cynet_mem_set_limit(limit)
        _scopes += 1
    previous = PyDataMem_SetHandler(_handler)
    try:
        yield
    finally:
        PyDataMem_SetHandler(previous)
        with _scopes_lock:
            _scopes -= 1
            if _scopes == 0:
                cynet_mem_set_limit(0)


def trim(system=True):
    """Frees every cached block now (they are free memory: safe inside an active `caching()`
    scope, which goes on caching). With `system`, then asks malloc to give its free memory back
    to the system (glibc's malloc_trim: memory freed by other threads stays in their malloc
    arenas otherwise; a no-op elsewhere). Returns the bytes freed from the cache."""
    # the cache's mutex is only ever taken with the GIL held, so that no other thread holds it
    # when a thread forks (os.fork holds the GIL)
    cdef size_t released = cynet_mem_release()
    if system:
        with nogil:
            cynet_mem_trim_system()
    return released


def stats():
    """{"cached_bytes", "cached_blocks", "hits", "misses"} (hits and misses count requests of
    MIN_BLOCK bytes or more while caching, since the module was loaded)."""
    return {"cached_bytes": cynet_mem_stat(0), "cached_blocks": cynet_mem_stat(1),
            "hits": cynet_mem_stat(2), "misses": cynet_mem_stat(3)}
