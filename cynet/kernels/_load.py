"""Threads that hold up on a busy machine.

An OpenMP team (and OpenBLAS's threads) of as many threads as cores assumes the cores are free.
When another process keeps a core busy, the thread that lands there runs a fraction of the time,
and every barrier of the team waits for it: an epoch on two threads with one core taken took 2.7x
its one-thread time (issue 20's measurement). OpenBLAS's threads suffer most: on this two-core VM
under a heavy load, the MNIST MLP epoch took 0.6 s with one BLAS thread and 9 to 17 s with two,
whatever the OpenMP count. So, while the thread count is cynet's default (not set by the user),
`fit` and `evaluate` ask this monitor between batches how many cores other processes keep busy,
and run the kernels and the BLAS on the cores left (not `predict`, which may serve many threads
at once: OpenBLAS's thread count must not change while another thread is inside a BLAS call).

The signal: the machine's busy CPU time (/proc/stat) minus this process's own (os.times), over
the last interval (at least INTERVAL seconds, so a sample costs ~20 us per 0.2 s of training;
the first one after FIRST_INTERVAL, so that a fit on a busy machine is not long on too many
threads), in cores. A core counts as taken when others used more than TAKEN of it. Where
/proc/stat cannot be read (not Linux), nothing changes.

The decision is asymmetric, because the two mistakes are: a team of more threads than free
cores waits at every barrier for a thread the scheduler has parked (on the same VM, the MLP epoch
on two threads beside one or two busy processes, the policy off: 7x to 9x its one-thread time),
while one thread too few costs at most the parallel speed-up. So teams shrink at the first sample that shows cores taken,
and grow again only after the cores have shown free for RAISE_AFTER seconds in a row.
"""
import os
import threading
import time

INTERVAL = 0.2         # seconds between samples
FIRST_INTERVAL = 0.05  # seconds before the first one
TAKEN = 0.5            # cores of others' use that count as one core taken
RAISE_AFTER = 0.6      # seconds of free cores before a team grows again


def _read_proc_stat():
    """(busy, total) jiffies of all CPUs from /proc/stat's first line."""
    with open("/proc/stat", "rb") as f:
        fields = f.readline().split()
    values = [int(v) for v in fields[1:9]]   # user nice system idle iowait irq softirq steal
    total = sum(values)
    return total - values[3] - values[4], total


class LoadMonitor:
    """Cores that other processes keep busy, measured between calls to `sample`.

    read_stat: () -> (busy, total) machine jiffies; own_cpu: () -> this process's CPU seconds;
    clock: () -> seconds; injectable, so the decisions are unit-tested with a simulated load.
    """

    def __init__(self, cores=None, read_stat=_read_proc_stat, own_cpu=None, clock=time.monotonic,
                 interval=INTERVAL, ticks=None, first_interval=FIRST_INTERVAL, raise_after=RAISE_AFTER):
        self.cores = cores or os.cpu_count() or 1
        self._read_stat = read_stat
        self._own_cpu = own_cpu or (lambda: sum(os.times()[:2]))
        self._clock = clock
        self.interval = interval
        self._hz = ticks or (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)
        self.first_interval = first_interval
        self.raise_after = raise_after
        self._last = None
        self._lock = threading.Lock()
        self.others = 0.0
        self._measured_since = None   # start of the interval the last sample measured
        self._decided = None          # the thread count `threads` decided last (None: none yet)
        self._free_since = None       # since when samples have shown more free cores than _decided

    def sample(self):
        """Cores used by other processes since the last sample (None while the interval runs, or
        when the system cannot say)."""
        now = self._clock()
        with self._lock:
            if self._last is not None and now - self._last[0] < (
                    self.interval if self._measured_since is not None else self.first_interval):
                return None
            try:
                busy, total = self._read_stat()
            except (OSError, ValueError, IndexError):
                return None
            own = self._own_cpu()
            last, self._last = self._last, (now, busy, total, own)
            if last is None or total <= last[2]:
                return None
            wall = (total - last[2]) / self.cores            # jiffies per core in the interval
            others = (busy - last[1]) - (own - last[3]) * self._hz
            self.others = max(0.0, others / wall)
            self._measured_since = last[0]
            return self.others

    def free_cores(self, wanted):
        """Threads to run for `wanted` configured ones, given the last sample."""
        taken = int(self.others + (1 - TAKEN))   # round up from TAKEN of a core
        return max(1, min(wanted, self.cores - taken))

    def reset_decision(self):
        """Forget the thread count decided (the policy was turned off or on): the next decision
        starts from the configured count."""
        self._decided = self._free_since = None

    def threads(self, wanted):
        """Threads to run for `wanted` configured ones after the last sample, with the asymmetry of
        the module docstring: fewer at once, more only once the cores have been free for
        `raise_after` seconds of consecutive samples."""
        target = self.free_cores(wanted)
        current = wanted if self._decided is None else min(self._decided, wanted)
        if target < current:
            self._decided, self._free_since = target, None
        elif target > current:
            if self._free_since is None:
                self._free_since = self._measured_since
            if self._last is not None and self._last[0] - self._free_since >= self.raise_after:
                self._decided, self._free_since = target, None
        else:
            self._free_since = None
        return current if self._decided is None else min(self._decided, wanted)
