"""keep_freed_memory: a freed multi-megabyte array is reused without fresh page faults; the BLAS
thread choice by problem size, cores and load."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from engine import runtime
from engine.runtime import MAX_BLAS_THREADS, TWO_THREAD_MACS, blas_threads, blas_threads_for


SECOND_ALLOCATION = """
import resource, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from engine.runtime import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def faults(nbytes):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.ones(nbytes // 8)  # touches every page
    del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
nbytes = 16 * 1024 * 1024  # above glibc's default mmap threshold, below the raised one
faults(nbytes)  # the first use maps the pages
print(faults(nbytes))
"""


def second_allocation_faults(keep: bool) -> int:
    """Page faults of a 16 MiB array allocated again after one was freed, in a fresh process
    (no other thread can take the freed block meanwhile), with or without ``keep_freed_memory``."""
    root = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, "-c", SECOND_ALLOCATION, "keep" if keep else "default", root],
                          capture_output=True, text=True, check=True, timeout=120)
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_freed_blocks_are_reused_without_page_faults():
    assert second_allocation_faults(keep=True) < 50
    assert second_allocation_faults(keep=False) > 200  # glibc unmaps the block and maps it again (about 500)


def test_small_products_keep_one_thread_large_ones_use_two_on_an_idle_machine():
    assert TWO_THREAD_MACS == 4 * 128 * 128 * 16
    assert blas_threads_for(64, 32, cores=2, load=0.0) == 1  # 4 x 64^2 x 32 = 0.5 M multiply-adds
    assert blas_threads_for(128, 16, cores=2, load=0.0) == 2  # 1.05 M: the threshold
    assert blas_threads_for(128, 32, cores=2, load=0.0) == 2
    assert blas_threads_for(512, 32, cores=2, load=0.4) == 2
    assert blas_threads_for(512, 32, cores=8, load=0.0) == MAX_BLAS_THREADS == 2
    assert blas_threads_for(512, 32, cores=1, load=0.0) == 1


def test_a_busy_machine_gets_one_thread():
    assert blas_threads_for(512, 64, cores=2, load=0.6) == 1  # less than 1.5 cores free
    assert blas_threads_for(512, 64, cores=2, load=6.6) == 1
    assert blas_threads_for(512, 64, cores=8, load=6.0) == 2


def test_small_problems_never_measure_the_load(monkeypatch):
    monkeypatch.setattr(runtime, "load_elsewhere", lambda: pytest.fail("measured the load"))
    assert blas_threads_for(64, 32) == 1


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="Linux /proc/stat")
def test_load_elsewhere_sees_a_busy_thread_of_this_process():
    """Another thread spinning (in NumPy, GIL released) keeps about one core busy: the machine's
    busy time counts it, whatever else runs."""
    stop = threading.Event()

    def spin():
        a = np.ones((256, 256))
        while not stop.is_set():
            np.sqrt(a, out=a)

    idle = runtime.load_elsewhere(0.3, reuse_s=0.0)
    worker = threading.Thread(target=spin)
    worker.start()
    try:
        busy = runtime.load_elsewhere(0.3, reuse_s=0.0)
    finally:
        stop.set()
        worker.join()
    assert idle >= 0.0
    assert busy >= 0.7


def counted_samples(monkeypatch, now: list) -> list:
    """No load sample held yet, ``/proc/stat`` readings counted (two per sample, each one tick
    more busy) and the clock of ``load_elsewhere`` at ``now[0]``; returns the readings list."""
    readings = []
    monkeypatch.setattr(runtime, "_load_sample", None)
    monkeypatch.setattr(runtime, "_busy_ticks", lambda: readings.append(len(readings)) or len(readings))
    monkeypatch.setattr(runtime.time, "sleep", lambda s: None)
    monkeypatch.setattr(runtime.time, "monotonic", lambda: now[0])
    return readings


def test_a_load_sample_is_reused_for_a_few_seconds(monkeypatch):
    """A device line, a time estimate and a run's plan made within LOAD_REUSE_S share one sample."""
    now = [100.0]
    readings = counted_samples(monkeypatch, now)
    first = runtime.load_elsewhere()
    now[0] += runtime.LOAD_REUSE_S - 0.1
    assert runtime.load_elsewhere() == first
    runtime.blas_threads_for(512, 32, cores=2)
    assert runtime.training_plan(512, 32, cores=2).load == first
    assert len(readings) == 2  # one sample: two readings of /proc/stat
    now[0] += 0.2  # the sample is LOAD_REUSE_S + 0.1 s old
    runtime.load_elsewhere()
    assert len(readings) == 4


def test_one_core_never_measures_the_load(monkeypatch):
    """On one core the load cannot change a choice: no sample, and the plan says none was made."""
    readings = counted_samples(monkeypatch, [0.0])
    assert runtime.blas_threads_for(512, 32, cores=1) == 1
    plan = runtime.training_plan(512, 32, cores=1)
    assert (plan.blas_threads, plan.executor, plan.load) == (1, None, None)
    assert runtime.shard_executor(cores=1) is None
    assert readings == []


def test_blas_threads_sets_and_restores_the_count():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def counts():
        return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]

    before = counts()
    with blas_threads(1):
        assert all(n == 1 for n in counts())
    assert counts() == before
