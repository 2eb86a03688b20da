"""The one scratch-buffer cache: temporaries that a kernel or an optimizer needs only while a
call runs, kept between calls so that a training loop does not map and fault in fresh pages for
them at every batch (the LSTM benchmark's 7.8 MB of gate gradients alone are ~1900 page faults
per call). Nothing a kernel returns is ever scratch, and dropping a buffer never invalidates a
call that is using it: a call holds a view, which keeps the memory alive.

A `Scratch` is one set of kept buffers, {key: 1-D array}; `get(key, shape, dtype)` returns a
view of the key's buffer (grown when too small). Two pools of them, each with its bounds:

    "recurrent"  the recurrent kernels' buffers (packed weights, per-step products, stacked
                 gate gradients), one Scratch per thread (`thread_scratch()`), since any thread
                 may run a model; freed when the thread ends.
    "optimizer"  each optimizer's buffers (preprocessed gradients, update temporaries), one
                 Scratch per optimizer, freed with it.

Bounds (bytes, `limits(pool, ...)`): a buffer over `per_buffer` is never kept, one Scratch keeps
at most `per_owner`, the whole pool at most `total`. A request that would pass a bound gets a
buffer that is not kept (plain np.empty, which the caching allocator of cynet._kernels._memory
serves during fit/predict), and the kept ones stay as they are. Defaults: recurrent 64 MiB per
buffer, 128 MiB per thread, 256 MiB in all (as before this module); optimizer 256 MiB per
buffer, 512 MiB per optimizer and in all (the optimizers kept everything, unbounded, before).

Release: `release()` drops every kept buffer of every pool (cynet.utils.clear_session() calls
it, and then trims the caching allocator), found through a registry of weak references; a
forked child keeps only what the forking thread and the optimizers held (CPython frees the other
threads' threading.local data in the child), and gets a fresh lock.

Buffers of 64 KiB or more are anonymous mmap'ed memory, so a dropped buffer's pages go back to
the system at once (from malloc they stayed in the thread's malloc arena when anything the
thread allocated later was still alive: RSS did not come down when the thread ended).
"""
import mmap
import os
import threading
import weakref

import numpy as np

MiB = 1 << 20
MMAP_MIN = 1 << 16

# pool -> [per_buffer, per_owner, total]
_LIMITS = {"recurrent": [64 * MiB, 128 * MiB, 256 * MiB], "optimizer": [256 * MiB, 512 * MiB, 512 * MiB]}
_registry: weakref.WeakSet[object] = weakref.WeakSet()     # every live Scratch
_lock = threading.Lock()          # guards the kept sets and their byte counts
_local = threading.local()


class Scratch:
    """One owner's kept buffers, {key: 1-D array}, and their bytes, in a pool."""
    __slots__ = ("pool", "buffers", "nbytes", "__weakref__")

    def __init__(self, pool):
        if pool not in _LIMITS:
            raise ValueError(f"pool must be one of {sorted(_LIMITS)}; received {pool!r}")
        self.pool = pool
        self.buffers = {}
        self.nbytes = 0
        with _lock:
            _registry.add(self)

    def get(self, key, shape, dtype):
        """An uninitialised array of `shape` and `dtype`: a view of the kept buffer of `key`
        (same key, same memory), or a plain new array when the bounds do not allow keeping it."""
        dtype = np.dtype(dtype)
        n = 1
        for d in shape:
            n *= d
        buf = self.buffers.get((key, dtype))
        if buf is None or buf.shape[0] < n:
            buf = self._grow((key, dtype), n, dtype)
        return buf[:n].reshape(shape)

    def _grow(self, key, n, dtype):
        nbytes = n * dtype.itemsize
        per_buffer, per_owner, total = _LIMITS[self.pool]
        if nbytes > per_buffer:
            return np.empty(n, dtype=dtype)
        with _lock:
            old = self.buffers.pop(key, None)
            if old is not None:
                self.nbytes -= old.nbytes
            kept = sum([s.nbytes for s in _registry if s.pool == self.pool])
            if nbytes == 0 or self.nbytes + nbytes > per_owner or kept + nbytes > total:
                return np.empty(n, dtype=dtype)
            if nbytes >= MMAP_MIN:
                buf = np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype, count=n)
            else:
                buf = np.empty(n, dtype=dtype)
            self.buffers[key] = buf
            self.nbytes += nbytes
        return buf

    def clear(self):
        """Drops this owner's buffers; returns their bytes."""
        with _lock:
            dropped, self.nbytes = self.nbytes, 0
            self.buffers.clear()
        return dropped


def thread_scratch():
    """The calling thread's Scratch of the "recurrent" pool (made on first use)."""
    mine = getattr(_local, "scratch", None)
    if mine is None:
        mine = _local.scratch = Scratch("recurrent")
    return mine


def kept_bytes(pool="recurrent", all_threads=True):
    """Bytes kept in `pool`: by every owner, or (recurrent pool) by the calling thread."""
    with _lock:
        if all_threads:
            return sum([s.nbytes for s in _registry if s.pool == pool])
    mine = getattr(_local, "scratch", None)
    return 0 if mine is None or pool != "recurrent" else mine.nbytes


def release():
    """Drops every kept buffer of every pool and owner (a call in progress keeps its views).
    Returns the bytes dropped."""
    dropped = 0
    with _lock:
        for s in list(_registry):
            dropped += s.nbytes
            s.buffers.clear()
            s.nbytes = 0
    return dropped


def limits(pool="recurrent", per_buffer=None, per_owner=None, total=None):
    """The bounds of `pool` in bytes, (per_buffer, per_owner, total); sets those given (kept
    buffers over a lowered bound stay until dropped). Returns the previous bounds."""
    if pool not in _LIMITS:
        raise ValueError(f"pool must be one of {sorted(_LIMITS)}; received {pool!r}")
    previous = tuple(_LIMITS[pool])
    values = (per_buffer, per_owner, total)
    for value in values:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"scratch limits must be non-negative integers, received {value!r}")
    for i, value in enumerate(values):
        if value is not None:
            _LIMITS[pool][i] = value
    return previous


def _after_fork_in_child():
    """The child of a fork has only the forking thread: a lock another thread held at the fork
    stays held forever there, so the child starts a fresh one."""
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
