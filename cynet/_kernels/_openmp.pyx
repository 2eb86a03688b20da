"""OpenMP state of the compiled kernels: was OpenMP compiled in, and how many threads.

Fork. GNU OpenMP (libgomp) keeps, for each thread that started a parallel region, a pool of
worker threads and reuses it for that thread's next region. After `fork` the child has only the
forking thread, but libgomp still believes its pool's workers exist: the child's first region of
more than one thread waits for them forever (a team of one never touches the pool and works).
libgomp has no fork handler of its own (LLVM's libomp does). So this module registers one with
pthread_atfork when it is imported: before every fork it releases the forking thread's pool
(omp_pause_resource_all, OpenMP 5.0: its workers exit), so the child starts without a pool and
creates fresh workers at its first parallel region, with the thread count the forking thread
had; the parent does the same at its next region (about 0.1 ms). OpenBLAS does the same for its
own threads (its pthread_atfork handler shuts its pool down before the fork). If the pool could
not be released (an OpenMP runtime without omp_pause_resource_all, or a fork from inside a
parallel region), the child's kernels run on one thread instead of hanging, and
set_num_threads(n > 1) in that child would hang: `fork_handler()` tells which case applies.
"""
from cynet._kernels._omp cimport CYNET_HAVE_OPENMP, omp_get_max_threads, omp_set_num_threads

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #endif
    #if defined(_OPENMP) && !defined(_WIN32)
    #include <pthread.h>
    /* omp_pause_resource_all: OpenMP 5.0, in libgomp since GCC 9 (whose _OPENMP still says 4.5)
       and in LLVM's libomp since LLVM 8. */
    #if (defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 9) || defined(__clang__) \
        || _OPENMP >= 201811
    #define CYNET_OMP_PAUSE 1
    #else
    #define CYNET_OMP_PAUSE 0
    #endif
    static int cynet_fork_registered = 0;
    static volatile int cynet_fork_paused = 1;   /* the last fork's pause succeeded */
    static volatile int cynet_forks = 0;         /* forks prepared by this process */
    static void cynet_fork_prepare(void) {
    #if CYNET_OMP_PAUSE
        cynet_fork_paused = omp_pause_resource_all(omp_pause_soft) == 0;
    #else
        cynet_fork_paused = 0;
    #endif
        cynet_forks++;
    }
    static void cynet_fork_child(void) {
        cynet_forks = 0;
        if (!cynet_fork_paused) omp_set_num_threads(1);   /* a team of one never waits for the pool */
    }
    static int cynet_fork_register(void) {
        if (!cynet_fork_registered)
            cynet_fork_registered = pthread_atfork(cynet_fork_prepare, NULL, cynet_fork_child) == 0;
        return cynet_fork_registered;
    }
    static int cynet_fork_pause_available(void) { return CYNET_OMP_PAUSE; }
    #else
    static volatile int cynet_fork_paused = 1;
    static volatile int cynet_forks = 0;
    static int cynet_fork_register(void) { return 0; }
    static int cynet_fork_pause_available(void) { return 0; }
    #endif

    /* threads that actually ran a parallel region asked for n (a probe for tests) */
    static int cynet_team_size(int n) {
        int got = 1;
    #ifdef _OPENMP
        #pragma omp parallel num_threads(n)
        {
            #pragma omp single
            got = omp_get_num_threads();
        }
    #else
        (void)n;
    #endif
        return got;
    }
    """
    int cynet_fork_register() nogil
    int cynet_fork_pause_available() nogil
    int cynet_fork_paused
    int cynet_forks
    int cynet_team_size(int n) nogil

_fork_registered = bool(cynet_fork_register())


# ----------------------------------------------------------------------------------------------
# The thread policy. min_work[cost]: units of work each thread must get before a parallel region
# pays for its team (waking threads costs microseconds; below that, one thread is faster). The
# values were tuned per kernel family on the benchmark shapes (bench/README.md, "Thread policy").

cdef Py_ssize_t _min_work[<int>N_COSTS]
_min_work[<int>COST_STREAM] = 131072
_min_work[<int>COST_TRANSCENDENTAL] = 32768
_min_work[<int>COST_ROWS] = 16384
_min_work[<int>COST_WINDOW] = 1 << 15
_min_work[<int>COST_CONV] = 1 << 15
_min_work[<int>COST_RECURRENT] = 65536
_min_work[<int>COST_RECURRENT_MACS] = 1 << 20
_min_work[<int>COST_UPDATE] = 1 << 16

COSTS = {"stream": COST_STREAM, "transcendental": COST_TRANSCENDENTAL, "rows": COST_ROWS,
         "window": COST_WINDOW, "conv": COST_CONV, "recurrent": COST_RECURRENT,
         "recurrent_macs": COST_RECURRENT_MACS, "update": COST_UPDATE}


# Threads the load on the machine leaves (cynet.kernels._load: other processes' busy cores); a
# team never exceeds it. 0: no cap (the user set the thread count, or nothing was measured).
cdef int _load_cap = 0


cdef int threads_for(Py_ssize_t work, int cost) noexcept nogil:
    """Team size for a parallel region over `work` units of the kind `cost`: at most the
    calling thread's configured count (and the cores the machine's load leaves), and 1 when the
    work is too small to pay for a team."""
    cdef int nt = omp_get_max_threads()
    cdef Py_ssize_t cap
    if 0 < _load_cap < nt:
        nt = _load_cap
    if 0 <= cost < <int>N_COSTS and _min_work[cost] > 0:
        cap = work // _min_work[cost]
        if cap < nt:
            nt = <int>cap
    return nt if nt >= 1 else 1


def thread_policy():
    """{cost kind: minimum units of work per thread} of the thread policy."""
    return {name: _min_work[<int>c] for name, c in COSTS.items()}


def set_thread_policy(**min_work):
    """Change the policy's minimum work per thread for the named cost kinds (tuning and tests);
    returns the previous policy, which set_thread_policy(**old) restores."""
    old = thread_policy()
    for name, value in min_work.items():
        if name not in COSTS:
            raise ValueError(f"unknown cost kind {name!r}; the kinds: {sorted(COSTS)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer (work units per thread); received {value!r}")
    for name, value in min_work.items():
        _min_work[<int>COSTS[name]] = value
    return old


def set_load_cap(int n):
    """Cap every team at n threads (n >= 1), or lift the cap (n = 0): the busy-machine policy."""
    global _load_cap
    if n < 0:
        raise ValueError(f"n must be a non-negative integer, received n={n}")
    _load_cap = n


def load_cap():
    return _load_cap


def threads_for_work(Py_ssize_t work, str cost):
    """threads_for(work, cost) from Python (tests, benchmarks)."""
    if cost not in COSTS:
        raise ValueError(f"unknown cost kind {cost!r}; the kinds: {sorted(COSTS)}")
    return threads_for(work, <int>COSTS[cost])


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


def fork_handler():
    """How this build survives fork: {"registered": the pthread_atfork handler is installed,
    "pause": the OpenMP runtime can release its pool before a fork, "last_fork_paused": the
    last fork released it (if not, the child runs kernels on one thread), "forks": forks this
    process prepared (0 in a freshly forked child)}."""
    return {"registered": _fork_registered, "pause": bool(cynet_fork_pause_available()),
            "last_fork_paused": bool(cynet_fork_paused), "forks": cynet_forks}


def _team_size(int n):
    """Runs an empty parallel region asking for n threads; returns how many ran it."""
    if n < 1:
        raise ValueError(f"n must be a positive integer, received n={n}")
    with nogil:
        n = cynet_team_size(n)
    return n
