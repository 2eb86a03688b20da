"""Data-parallel training on MPI (through mpi4py), the way Horovod scales Keras.

An ordinary cynet script plus two lines, launched with `mpirun -n K python script.py` or
`python -m cynet.distributed.run -n K script.py`:

    import cynet.distributed as dist
    dist.init()
    model.compile(optimizer=dist.DistributedOptimizer(cynet.optimizers.Adam(1e-3)), loss=...)
    model.fit(x, y, batch_size=32)      # 32 samples per rank: the global batch is 32 * dist.size()

Semantics (what `fit` and `evaluate` do when the model's optimizer is a DistributedOptimizer):
- every rank holds the same x and y; at the start of `fit`, rank 0's weights, optimizer state and
  shuffling state are broadcast, so the ranks start identical whatever their seeds;
- each global batch of `batch_size * K` samples is split in K contiguous shards, one per rank;
- after the backward pass, the gradients are averaged, weighted by each shard's sample count, with
  one Allreduce over a single contiguous buffer; every rank then takes the same optimizer step, so
  the weights stay identical and equal (to float32 rounding) those of one process training on the
  global batch;
- BatchNormalization statistics stay local to each rank (Horovod's default), and so do dropout
  masks;
- the loss and metrics in the logs, and validation, are reduced over all ranks (validation data
  is split across ranks), so callbacks see the same numbers everywhere and EarlyStopping,
  ReduceLROnPlateau or TerminateOnNaN decide identically on every rank; a `stop_training` set
  on any rank stops all of them;
- only rank 0 prints progress and runs the callbacks that write files (ModelCheckpoint,
  CSVLogger); guard your own `model.save(...)` with `if dist.rank() == 0`;
- an uncaught exception on any rank prints its traceback and aborts the whole job (MPI_Abort), so
  no rank hangs waiting for a dead peer; a rank killed outright is detected by mpirun, which stops
  the others.

mpi4py and an MPI library are an optional extra: `pip install "cynet[mpi]"` with Open MPI
installed (`apt-get install openmpi-bin libopenmpi-dev`). Importing this module does not need them;
`init()` does.
"""
import os
import sys
import time
from typing import Any

import numpy as np

__all__ = ["init", "is_initialized", "rank", "size", "local_rank", "local_size", "DistributedOptimizer",
           "broadcast_variables", "allreduce", "barrier"]

_comm = None
_local_comm = None


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError("cynet.distributed needs mpi4py and an MPI library: install Open MPI "
                          "(apt-get install openmpi-bin libopenmpi-dev) and then `pip install \"cynet[mpi]\"` "
                          f"({exc})") from None
    return MPI


def init(comm: Any = None, threads: int | str | None = "auto") -> Any:
    """Join the MPI job. Call once, before building the model; returns this process's rank.

    Args:
        comm: an mpi4py communicator (default: COMM_WORLD).
        threads: kernel and BLAS threads for this rank: "auto" shares the machine's cores among the
            ranks on it (unless OMP_NUM_THREADS is set), an int sets it,
            None leaves it alone.
    """
    global _comm, _local_comm
    MPI = _mpi()
    _comm = MPI.COMM_WORLD if comm is None else comm
    _local_comm = _comm.Split_type(MPI.COMM_TYPE_SHARED, key=_comm.Get_rank())
    _install_abort_hook()
    from ..kernels import set_num_threads
    if threads == "auto":
        if not os.environ.get("OMP_NUM_THREADS"):
            set_num_threads(max(1, (os.cpu_count() or 1) // local_size()))
    elif threads is not None:
        set_num_threads(threads)  # type: ignore[arg-type]  # an int here (mypy does not narrow `== "auto"`)
    return rank()


def is_initialized() -> Any:
    """Whether `init()` set up MPI data parallelism in this process."""
    return _comm is not None


def _require():
    if _comm is None:
        raise RuntimeError("cynet.distributed.init() must be called first")
    return _comm


def rank() -> Any:
    """This process's rank (0 when init() was not called)."""
    return _comm.Get_rank() if _comm is not None else 0


def size() -> Any:
    """Number of processes in the job (1 when init() was not called)."""
    return _comm.Get_size() if _comm is not None else 1


def local_rank() -> Any:
    """This process's rank among the processes on the same node (0 without MPI)."""
    return _local_comm.Get_rank() if _local_comm is not None else 0


def local_size() -> Any:
    """Number of processes on this node (1 without MPI)."""
    return _local_comm.Get_size() if _local_comm is not None else 1


def barrier() -> Any:
    """Wait until every rank has reached this call (requires `init()`)."""
    _require().Barrier()


def _install_abort_hook():
    """An uncaught exception on one rank must stop the job, not leave the others blocked in a
    collective: print it, then MPI_Abort."""
    previous = sys.excepthook
    if getattr(previous, "_cynet_abort", False):
        return

    def hook(exc_type, exc, tb):
        previous(exc_type, exc, tb)
        if _comm is not None and _comm.Get_size() > 1:
            sys.stderr.write(f"cynet.distributed: rank {_comm.Get_rank()} failed with {exc_type.__name__}; "
                             "aborting all ranks\n")
            sys.stderr.flush()
            _comm.Abort(1)

    hook._cynet_abort = True
    sys.excepthook = hook


def allreduce(values: Any, op: str = "sum") -> Any:
    """Sum (op="sum"), max or min of a float64 vector over all ranks (a new array).

    Args:
        values: Values to average.
        op: Reduction: `"sum"` or `"mean"` (the default).
    """
    MPI = _mpi()
    send = np.ascontiguousarray(values, dtype=np.float64)
    out = np.empty_like(send)
    _require().Allreduce(send, out, op={"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op])
    return out


def _pack(arrays, dtype):
    sizes = [a.size for a in arrays]
    buf = np.empty(sum(sizes), dtype=dtype)
    views, start = [], 0
    for a, n in zip(arrays, sizes):
        views.append(buf[start:start + n].reshape(a.shape))
        start += n
    return buf, views


def broadcast_variables(variables: Any, root: int = 0) -> Any:
    """Overwrite every variable (cynet Variables or arrays) with root's value: one Bcast per dtype.

    Args:
        variables: A list of Variables.
        root: Rank whose values are broadcast.
    """
    comm = _require()
    values = [v.value if hasattr(v, "value") else v for v in variables]
    for dtype in sorted({a.dtype.str for a in values}):
        group = [a for a in values if a.dtype.str == dtype]
        buf, views = _pack(group, np.dtype(dtype))
        if comm.Get_rank() == root:
            for view, a in zip(views, group):
                view[...] = a
        comm.Bcast(buf, root=root)
        for view, a in zip(views, group):
            a[...] = view


class _Distributed:
    """Mixed into the wrapped optimizer's class by DistributedOptimizer."""

    distributed = True

    def apply(self, grads, trainable_variables=None, sample_count=None):
        """Average `grads` over the ranks, then update as the wrapped optimizer does.

        sample_count: this rank's samples in the step; the average is then weighted by it (what
        `fit` passes, so that uneven shards give the global batch's gradient). None weights every
        rank equally. `grads=None` contributes nothing (a rank whose shard is empty).
        """
        if grads is None:  # (only the rare empty shard)
            variables = self._trainable_variables if trainable_variables is None else trainable_variables
            grads = [np.zeros(v.shape, v.dtype) for v in variables]
            sample_count = 0
        grads = list(grads)
        present = [i for i, g in enumerate(grads) if g is not None]
        reduced = self._allreduce_mean([grads[i] for i in present], sample_count)
        for i, g in zip(present, reduced):
            grads[i] = g
        return super().apply(grads, trainable_variables)

    def _allreduce_mean(self, grads, sample_count):
        MPI = _mpi()
        dtype = np.result_type(np.float32, *[np.asarray(g).dtype for g in grads])
        shapes = [np.shape(g) for g in grads]
        key = (dtype.str, tuple(shapes))
        if getattr(self, "_fused_key", None) != key:
            total = sum(int(np.prod(s)) for s in shapes)
            self._fused = np.empty(total + 1, dtype=dtype)  # the gradients, then the sample count
            self._fused_views, start = [], 0
            for s in shapes:
                n = int(np.prod(s))
                self._fused_views.append(self._fused[start:start + n].reshape(s))
                start += n
            self._fused_key = key
        weight = 1.0 if sample_count is None else float(sample_count)
        for view, g in zip(self._fused_views, grads):
            np.multiply(g, weight, out=view)
        self._fused[-1] = weight
        t0 = time.perf_counter()
        _require().Allreduce(MPI.IN_PLACE, self._fused, op=MPI.SUM)
        self.allreduce_seconds = getattr(self, "allreduce_seconds", 0.0) + time.perf_counter() - t0
        total_weight = float(self._fused[-1])
        if total_weight > 0:
            self._fused[:-1] /= total_weight
        return self._fused_views


def DistributedOptimizer(optimizer: Any) -> Any:
    """Wrap a cynet optimizer so that each step averages the gradients over all ranks (one
    Allreduce over one contiguous buffer) before updating. The wrapper is an instance of the
    optimizer's own class too: its config, slots and learning-rate schedule are the wrapped one's,
    and a model saved with it reloads with the plain optimizer.

    Args:
        optimizer: The optimizer to wrap.
    """
    from ..optimizers import Optimizer, get
    optimizer = get(optimizer)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a cynet optimizer or its name; received {optimizer!r}")
    _require()
    if isinstance(optimizer, _Distributed):
        return optimizer
    base = type(optimizer)
    cls: Any = type(base.__name__, (_Distributed, base), {"__module__": base.__module__, "__doc__": base.__doc__})
    wrapped = cls.__new__(cls)
    wrapped.__dict__.update(optimizer.__dict__)
    return wrapped


def of(model):
    """The distribution helper for a model whose optimizer is distributed, else None (used by fit)."""
    opt = getattr(model, "optimizer", None)
    if isinstance(opt, _Distributed) and size() > 1:
        return _FitHelper(opt)
    return None


class _FitHelper:
    """What Sequential.fit/evaluate do differently on several ranks; kept here so the model
    knows only these few calls."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.rank, self.size = rank(), size()

    def start(self, model, rng):
        """Make every rank start from rank 0's weights, optimizer state and shuffling state."""
        comm = _require()
        variables = list(model.weights)
        if self.optimizer.built:
            variables += [v for v in self.optimizer.variables]
        broadcast_variables(variables)
        rng.bit_generator.state = comm.bcast(rng.bit_generator.state, root=0)

    def shard(self, index):
        """This rank's contiguous part of a global batch (a slice or an index array)."""
        if isinstance(index, slice):
            start, stop = index.start, index.stop
            n = stop - start
            lo, hi = self._bounds(n)
            return slice(start + lo, start + hi)
        lo, hi = self._bounds(len(index))
        return index[lo:hi]

    def _bounds(self, n):
        base, extra = divmod(n, self.size)
        lo = self.rank * base + min(self.rank, extra)
        return lo, lo + base + (self.rank < extra)

    def split(self, n):
        """This rank's part of n samples (for evaluate): a slice."""
        lo, hi = self._bounds(n)
        return slice(lo, hi)

    @staticmethod
    def reduce_metrics(metrics):
        """Replace each metric's state (a Mean's total and count, another metric's variables) by
        its combination over ranks: summed, averaged for a variable made with aggregation="mean",
        rank 0's for "only_first_replica", left as is for "none". Returns the local states, to
        restore with `restore_metrics`."""
        local = [m._get_state() for m in metrics]
        first = rank() == 0
        parts = [np.ravel(v) if agg != "only_first_replica" or first else np.zeros(v.size)
                 for state in local for v, agg in state]
        combined = allreduce(np.concatenate(parts)) if parts else np.zeros(0)
        n_ranks, pos = size(), 0
        for m, state in zip(metrics, local):
            values = []
            for v, agg in state:
                new = combined[pos:pos + v.size].reshape(v.shape)
                pos += v.size
                values.append(v if agg == "none" else new / n_ranks if agg == "mean" else new)
            m._set_state(values)
        return [[v for v, _ in state] for state in local]

    @staticmethod
    def restore_metrics(metrics, local):
        for m, values in zip(metrics, local):
            m._set_state(values)

    @staticmethod
    def any(flag):
        return bool(allreduce([1.0 if flag else 0.0], op="max")[0])
