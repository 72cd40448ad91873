"""Shared helpers for the benchmark scripts: alternating timing, percentiles, machine facts, a
fresh model for a text.

Timings use ``time.perf_counter`` (seconds). Competing implementations are run *alternately*
(A, B, A, B, ...) after a warm-up, so a busy neighbour on a shared machine slows both alike.
Each call starts once the machine is quiet (``settle``): the process's other threads idle, since a
thread pool keeps spinning after a call returns (OpenBLAS's workers about 0.1 s, 2^28 TSC cycles, its
``THREAD_TIMEOUT``; PyTorch's OpenMP workers 10-20 ms, measured on the 2-core VM), and a pool still
spinning takes a core from whatever runs next; and the other processes idle, up to ``SETTLE_MAX_S``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from engine import ModelConfig, SequenceModel
from engine.checkpoint import save_checkpoint
from engine.data import CharVocab, load_text
from engine.runtime import busy_cpu_seconds, keep_freed_memory

KEEP_FREED = keep_freed_memory()  # every benchmark runs the engine as the app and the CLI do


def time_call(fn, clock=time.perf_counter) -> float:
    """Time of one call of ``fn()`` in seconds by ``clock`` (wall time by default;
    ``time.thread_time``: the calling thread's CPU time)."""
    start = clock()
    fn()
    return clock() - start


SETTLE_WINDOW_S = 0.05  # settle's sampling window, seconds
SETTLE_IDLE = 0.05  # settle: the process's other threads idle below this many cores over a window
SETTLE_MACHINE_IDLE = 0.3  # settle: the machine quiet below this many busy cores over a window (/proc/stat)
SETTLE_MAX_S = 2.0  # settle gives up waiting after this long, seconds


def settle(window_s: float = SETTLE_WINDOW_S, idle: float = SETTLE_IDLE, machine_idle: float = SETTLE_MACHINE_IDLE,
           max_s: float = SETTLE_MAX_S) -> float:
    """Sleep until the machine is quiet: the process's threads other than the caller idle (their
    CPU time ``time.process_time() - time.thread_time()`` over a ``window_s`` window below ``idle``
    cores) and the whole machine's busy time (``engine.runtime.busy_cpu_seconds``, where
    ``/proc/stat`` exists) below ``machine_idle`` cores over the same window; or until ``max_s``
    seconds have passed. Returns the seconds waited (at least one window; ``>= max_s``: the
    machine stayed busy)."""
    start = time.perf_counter()
    while True:
        others = time.process_time() - time.thread_time()  # CPU s of the other threads so far
        try:
            machine = busy_cpu_seconds()
        except (OSError, ValueError, IndexError):
            machine = None
        time.sleep(window_s)
        busy = (time.process_time() - time.thread_time() - others) / window_s  # cores
        machine_busy = 0.0 if machine is None else (busy_cpu_seconds() - machine) / window_s  # cores
        waited = time.perf_counter() - start
        if (busy < idle and machine_busy < machine_idle) or waited >= max_s:
            return waited


def alternate(fns: dict, reps: int, warmup: int = 2, clock=time.perf_counter, waits: dict | None = None,
              quiet: bool = True) -> dict:
    """Time each callable of ``fns`` ``reps`` times by ``clock``, interleaved in ``fns``' order,
    each call after ``settle()`` (untimed; ``quiet=False``: back to back); return name -> seconds
    array. ``waits``, if given, receives name -> (reps,) seconds waited after each timed call."""
    pause = settle if quiet else (lambda: 0.0)
    pause()
    for _ in range(warmup):
        for fn in fns.values():
            fn()
            pause()
    times = {name: np.empty(reps) for name in fns}  # name -> (reps,) seconds
    waited = {name: np.empty(reps) for name in fns}  # name -> (reps,) seconds settled after each call
    for r in range(reps):
        for name, fn in fns.items():
            times[name][r] = time_call(fn, clock)
            waited[name][r] = pause()
    if waits is not None:
        waits.update(waited)
    return times


def quartiles(seconds: np.ndarray) -> tuple[float, float, float]:
    """(p25, median, p75) of a sample of times, in the sample's unit."""
    p25, p50, p75 = np.percentile(seconds, [25, 50, 75])
    return float(p25), float(p50), float(p75)


def numpy_blas() -> str:
    """NumPy's BLAS as ``name version (config)`` from ``np.show_config(mode="dicts")``."""
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (TypeError, KeyError):  # NumPy < 1.26 has no dict mode
        return "unknown (NumPy < 1.26)"
    config = " ".join(str(info.get("openblas configuration", "")).split())
    return f"{info.get('name', '?')} {info.get('version', '?')} {config}".strip()


def machine_lines() -> list[str]:
    """Human-readable facts about the machine and the numerical libraries."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "n/a"
    blas_env = {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
                if k in os.environ}
    return [
        f"cores: os.cpu_count()={os.cpu_count()}, usable (sched_getaffinity)={affinity}",
        f"numpy {np.__version__}, BLAS: {numpy_blas()}",
        f"thread env vars: {blas_env or 'none set'}",
        f"freed memory kept for reuse (engine.runtime.keep_freed_memory, as the app and CLI run): {KEEP_FREED}",
    ]


def add_text_model_args(parser) -> None:
    """The arguments of a long-text benchmark that choose its text and model: ``text_file``,
    ``--hidden``, ``--layers`` and ``--model`` (what :func:`model_for_text` takes)."""
    parser.add_argument("text_file")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--model", help="a character-model checkpoint (default: a fresh one)")


def model_for_text(text_file, folder, hidden: int, layers: int, given: str | None = None) -> str:
    """The checkpoint a long-text benchmark runs: ``given`` if not None, else a freshly
    initialised character LSTM (``hidden`` units, ``layers`` layers, seed 0) over the characters
    of ``text_file``, saved as ``folder/model.npz``. Returns its path."""
    if given is not None:
        return given
    vocab = CharVocab.from_text(load_text(text_file))
    cfg = ModelConfig(input_size=len(vocab), output_size=len(vocab), hidden_size=hidden, num_layers=layers)
    path = str(Path(folder) / "model.npz")
    save_checkpoint(path, SequenceModel(cfg, rng=np.random.default_rng(0)), vocab=vocab)
    return path
