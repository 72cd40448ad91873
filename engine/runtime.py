"""Process-level tuning for training speed (opt-in; the app, the CLI and the benchmarks call it).

How a training step uses the cores (``training_plan``, applied by ``engine.train.Trainer``):

- Data parallelism: a batch large enough (``batch_shards``: H >= 256 and at least 32 rows per
  half; the problem size alone decides, so a seed trains the same weights on any machine) is
  split in two halves, each run forward + BPTT with one BLAS thread, one on the calling thread
  and one on a persistent daemon worker (``ShardWorker``; NumPy releases the GIL inside BLAS
  calls and ufunc loops), the gradients summed in a fixed order, one update. One hand-off per
  training step, and the element-wise work runs on both cores too. When less than one core is
  free the halves run in turn (the same figures). Measured on the 2-core VM, quiet: one
  forward + backward at (H, B, T) = (256, 64, 100) takes 160 ms at one BLAS thread, 101 ms at
  two, 91-94 ms as two halves at once (one half alone: 84 ms).
- Otherwise the batch runs unsplit, with OpenBLAS threads by ``blas_threads_for`` (problem size,
  usable cores, cores busy elsewhere), through ``threadpoolctl`` (an optional dependency:
  without it nothing changes). ``lstmviz`` starts OpenBLAS with one thread. Two threads gain
  from about 1 M recurrent multiply-adds per step: one training step at H=128, B=32, T=64 took
  14-19 ms at two threads against 20-21 ms at one (H=128, B=16: 9.8 against 12.5; H=64, B=32:
  9.9 against 9.4).

Below the data-parallel thresholds halves lose: OpenBLAS packs the whole (4H, H) recurrent
matrix for each per-step product however few rows it multiplies (at H=512 a half batch of 16
rows costs 59 % of the whole batch's 32, not 50 %), and with small products (H=128: a few
microseconds per NumPy call) the two threads spend more time handing the GIL to each other than
computing (H=128, B=32: 24-30 ms as two halves at once, 20-21 ms unsplit at one thread).
The plan has no split of each time step by hidden units (each thread its half of the units' gate
rows, meeting at a barrier every time step: a ``queue.SimpleQueue`` one costs 7-12 us,
``threading.Barrier`` 33-58 us): the two threads' GIL hand-offs around some 20 NumPy calls per
step cost more than the half products save (each half product takes exactly half the time: no
cache gain at H=512). Such a split's training steps, measured on the 2-core VM: 133-136 ms at
(512, 32, 64) against 108-124 ms at two BLAS threads, 124 ms at (256, 64, 100) against 93 ms as
two halves, 34 ms at (128, 32, 64) against 20-21 ms unsplit at one thread.

The load: ``load_elsewhere`` measures the cores busy outside the calling thread over 0.2 s
(``/proc/stat``), only with two usable cores or more and for problems large enough to use two
threads, and reuses a sample for ``LOAD_REUSE_S``; the 1-minute load average would count the
trainer's own threads of the previous minute as a busy machine.

A training step allocates and frees about 10 MB of temporaries (gate activations, gradients,
projections). glibc returns every free of more than 128 KiB to the kernel (``mmap``/``munmap``),
so the next step touches fresh pages and takes a page fault every 4 KiB: measured 2,871 faults
and about 20 % of an H=128, B=32, T=64 step (39 -> 31 ms single-threaded on this 2-core VM).
``keep_freed_memory`` raises glibc's mmap and trim thresholds so freed blocks stay in the heap
and are reused. The cost: up to ``MMAP_THRESHOLD_MAX`` bytes per block stay mapped after use.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import queue
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

M_TRIM_THRESHOLD = -1  # glibc mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's upper limit for M_MMAP_THRESHOLD on 64-bit, bytes
TRIM_THRESHOLD = 256 * 1024 * 1024  # keep up to this much free heap before giving it back, bytes
TWO_THREAD_MACS = 4 * 128 * 128 * 16  # recurrent multiply-adds per timestep (4H x H x B) from which 2 threads gain
MAX_BLAS_THREADS = 2  # more threads than this were not measured to gain on the engine's products
LOAD_WINDOW_S = 0.2  # seconds over which load_elsewhere measures the machine's busy time
LOAD_REUSE_S = 5.0  # a load sample younger than this is reused (see load_elsewhere), seconds
SHARD_MIN_ROWS = 32  # batch rows per shard from which data parallelism gains (see batch_shards)
SHARD_MIN_HIDDEN = 256  # hidden size from which data parallelism gains (see batch_shards)


class ShardWorker:
    """One daemon thread running the calls given to ``submit`` in order: a minimal executor
    for the parts of a batch (``SequenceModel.loss_and_grads``). Daemon: an idle worker never
    keeps the process alive (the caller always waits for the part it submitted). Not a
    ``ThreadPoolExecutor(max_workers=1)``: its worker is not a daemon, so a persistent one
    stays among the process's live threads until the interpreter's exit hook joins it (and
    the test suite's thread-leak check fails every test that first creates it)."""

    def __init__(self):
        self._calls = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="lstmviz-shard", daemon=True).start()

    def submit(self, fn, *args) -> Future:
        """Queue ``fn(*args)``; the returned Future holds its result or exception."""
        future = Future()
        self._calls.put((future, fn, args))
        return future

    def _serve(self) -> None:
        while True:
            future, fn, args = self._calls.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as e:  # handed to the caller through the Future
                    future.set_exception(e)


_shard_worker: ShardWorker | None = None
_shard_worker_lock = threading.Lock()
_load_sample: tuple[float, float] | None = None  # (time.monotonic() when taken, cores busy elsewhere)


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks of up to 32 MiB for reuse (see the module docstring).
    Returns True if it took effect; False elsewhere (not Linux, or a libc without mallopt)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def load_elsewhere(window_s: float = LOAD_WINDOW_S, reuse_s: float = LOAD_REUSE_S) -> float:
    """Cores kept busy by everything but the calling thread, measured: the machine's busy CPU
    time (user, nice, system, irq, softirq, steal in ``/proc/stat``) over ``window_s`` seconds
    while the caller sleeps, divided by the elapsed time. Unlike the load average it leaves out
    this process's own training threads of the last minute. A sample taken less than
    ``reuse_s`` seconds ago is returned again (a run's device line, time estimate and plan made
    one after another see one figure). Without ``/proc/stat`` (not Linux): the 1-minute load
    average, or 0 without one."""
    global _load_sample
    if _load_sample is not None and time.monotonic() - _load_sample[0] < reuse_s:
        return _load_sample[1]
    try:
        busy_before, start = busy_cpu_seconds(), time.perf_counter()
        time.sleep(window_s)
        busy_after, elapsed = busy_cpu_seconds(), time.perf_counter() - start
        load = max(0.0, (busy_after - busy_before) / elapsed)
    except (OSError, ValueError, IndexError):
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    _load_sample = (time.monotonic(), load)
    return load


def busy_cpu_seconds() -> float:
    """Busy CPU time of the whole machine since boot, seconds, in steps of one clock tick
    (``/proc/stat``; raises OSError, ValueError or IndexError where it is missing or unreadable)."""
    return _busy_ticks() / os.sysconf("SC_CLK_TCK")


def _busy_ticks() -> int:
    """Busy CPU time of the whole machine since boot, clock ticks (``/proc/stat``'s cpu line)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()  # cpu user nice system idle iowait irq softirq steal ...
    return sum(int(fields[k]) for k in (1, 2, 3, 6, 7, 8))


def _cores_and_load(cores: int | None, load: float | None) -> tuple[int, float | None]:
    """``cores`` or the usable cores; ``load`` or, with two cores or more, ``load_elsewhere()``
    (on one core the load cannot change a choice: None, nothing measured)."""
    cores = usable_cores() if cores is None else cores
    return cores, (load_elsewhere() if load is None and cores >= 2 else load)


def _large_product(hidden_size: int, batch_size: int) -> bool:
    """Whether the recurrent product is large enough for two BLAS threads: ``4 H^2 B >= TWO_THREAD_MACS``."""
    return 4 * hidden_size * hidden_size * batch_size >= TWO_THREAD_MACS


def blas_threads_for(hidden_size: int, batch_size: int, cores: int | None = None,
                     load: float | None = None) -> int:
    """BLAS threads for training a model of ``hidden_size`` units on batches of ``batch_size``:
    1 when the recurrent product is small (``4 H^2 B < TWO_THREAD_MACS``), on one core, or when
    fewer than ``MAX_BLAS_THREADS - 0.5`` cores are free (``cores - load``: OpenBLAS's threads
    spin at each hand-off, and one that waits for a core stalls every product), else
    ``min(MAX_BLAS_THREADS, cores)``. ``cores``/``load`` (cores busy elsewhere) default to the
    process's usable cores and ``load_elsewhere()``, measured only when the size calls for it."""
    if not _large_product(hidden_size, batch_size):
        return 1
    cores, load = _cores_and_load(cores, load)
    threads = max(1, min(MAX_BLAS_THREADS, cores))
    return threads if threads > 1 and cores - load >= threads - 0.5 else 1


def batch_shards(hidden_size: int, batch_size: int) -> int:
    """Parts a training batch is split into for data parallelism (``SequenceModel.loss_and_grads``):
    2 when each half keeps at least ``SHARD_MIN_ROWS`` rows and ``hidden_size`` >= ``SHARD_MIN_HIDDEN``,
    else 1. It depends on the problem only, never on the machine or its load, so a seed trains
    the same weights everywhere; whether the parts run at once is ``shard_executor``'s choice.
    Below the thresholds a half batch gains less than it costs: per step OpenBLAS packs the
    whole (4H, H) recurrent matrix for every product however few rows it multiplies, and
    small products leave the two threads queueing for the GIL between NumPy calls."""
    return 2 if hidden_size >= SHARD_MIN_HIDDEN and batch_size >= 2 * SHARD_MIN_ROWS else 1


def shard_executor(cores: int | None = None, load: float | None = None) -> ShardWorker | None:
    """The one persistent worker thread that runs a training batch's second part while the
    caller runs the first (created on first use, reused after), or None (run the parts one
    after another) on one usable core or when less than one core is free (``cores - load``,
    ``load`` the cores busy elsewhere: with one core taken, the two halves still share the
    other and finish sooner than in turn). ``cores``/``load`` default as in ``blas_threads_for``."""
    global _shard_worker
    cores, load = _cores_and_load(cores, load)
    if cores < 2 or cores - load < 1.0:
        return None
    with _shard_worker_lock:
        if _shard_worker is None:
            _shard_worker = ShardWorker()
        return _shard_worker


@dataclass(frozen=True)
class TrainingPlan:
    """How a training step runs: ``shards`` parts of the batch (``batch_shards``), each product
    with ``blas_threads`` BLAS threads, the parts at once on ``executor`` (None: in turn).
    ``eval_threads``: the BLAS threads of a forward-only (validation) pass, which is never split
    (``blas_threads_for`` at the same load). ``load``: the cores busy elsewhere the plan was made
    for, None when the problem size alone decided (nothing measured)."""

    shards: int
    blas_threads: int
    executor: ShardWorker | None
    eval_threads: int
    load: float | None = None

    @property
    def label(self) -> str:
        """``"2 parts at once"``, ``"2 parts in turn"`` or ``"1 BLAS thread(s)"`` style summary."""
        if self.shards > 1:
            return f"{self.shards} parts {'at once' if self.executor is not None else 'in turn'}"
        return f"{self.blas_threads} BLAS thread{'s' if self.blas_threads > 1 else ''}"


def training_plan(hidden_size: int, batch_size: int, cores: int | None = None, load: float | None = None,
                  shards: int | None = None) -> TrainingPlan:
    """The plan of ``engine.train.Trainer``: a batch split in ``shards`` parts (default
    ``batch_shards``) runs them with one BLAS thread each, at once when ``shard_executor`` gives
    a worker; an unsplit batch runs with ``blas_threads_for`` BLAS threads. ``load`` (cores busy
    elsewhere) is measured at most once (``load_elsewhere``), and only when the size calls for it."""
    shards = batch_shards(hidden_size, batch_size) if shards is None else shards
    if shards > 1 or _large_product(hidden_size, batch_size):
        cores, load = _cores_and_load(cores, load)
    threads = blas_threads_for(hidden_size, batch_size, cores, load)
    if shards > 1:
        return TrainingPlan(shards, 1, shard_executor(cores, load), threads, load)
    return TrainingPlan(1, threads, None, threads, load)


def blas_threads(n: int):
    """A context manager running its body with ``n`` BLAS threads (``threadpoolctl``), restoring
    the previous count after; a no-op without ``threadpoolctl``."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")

