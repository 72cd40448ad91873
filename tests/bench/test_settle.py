"""bench.common.settle: a timed run starts once the process's other threads have gone idle (a
BLAS pool still spinning from the run before would take a core from it)."""

import math
import threading
import time

from bench.common import settle


def test_settle_waits_while_another_thread_of_the_process_burns_cpu():
    spin_s = 0.4  # like OpenBLAS's workers after a call (about 0.1 s), longer to stand out of the windows
    started = threading.Event()
    stop_at = time.perf_counter() + spin_s

    def spin():
        started.set()
        while time.perf_counter() < stop_at:
            pass

    worker = threading.Thread(target=spin)
    worker.start()
    started.wait()
    waited = settle(machine_idle=math.inf, max_s=5.0)  # the process's own threads only
    returned = time.perf_counter()
    worker.join()
    assert returned >= stop_at  # only after the spin ended
    assert waited < 5.0  # and not by giving up


def test_settle_returns_after_one_window_when_the_process_is_idle():
    waited = settle(window_s=0.05, machine_idle=math.inf, max_s=5.0)
    assert 0.05 <= waited < 1.0
