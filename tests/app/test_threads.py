"""lstmviz.threads: the worker wiring, failure reporting, the registry and stop_all; and the
QThread-leak guard of tests/conftest.py catching a deliberately leaked thread."""

import gc
import threading

from PySide6.QtCore import QObject, QThread, Signal, Slot

from lstmviz import threads

from ..conftest import dangling_qthreads


class Blocking(threads.Worker):
    """Announces that it works, then waits until asked to stop."""

    started_work = Signal()

    def work(self):
        self.started_work.emit()
        while not self.stop_requested.wait(0.01):
            pass


class Failing(threads.Worker):
    def work(self):
        raise ValueError("no such column 'x'")


class Crashing(threads.Worker):
    def work(self):
        raise KeyError("k")


class Receiver(QObject):
    """GUI-thread slots recording what workers report, and on which thread."""

    def __init__(self):
        super().__init__()
        self.messages, self.finished, self.started, self.on_main = [], 0, 0, []

    @Slot(str)
    def on_failed(self, message):
        self.messages.append(message)
        self.on_main.append(threading.current_thread() is threading.main_thread())

    @Slot()
    def on_finished(self):
        self.finished += 1

    @Slot()
    def on_started(self):
        self.started += 1


def start(worker, receiver, name="test-worker"):
    worker.failed.connect(receiver.on_failed)
    worker.finished.connect(receiver.on_finished)
    return threads.start(worker, name)


def test_failures_arrive_on_the_gui_thread_and_the_thread_ends(qtbot):
    receiver = Receiver()
    first = start(Failing(), receiver)
    second = start(Crashing(), receiver)
    qtbot.waitUntil(lambda: receiver.finished == 2, timeout=10_000)
    assert sorted(receiver.messages) == ["KeyError: 'k'", "no such column 'x'"]
    assert receiver.on_main == [True, True]
    qtbot.waitUntil(lambda: threads.is_finished(first) and threads.is_finished(second), timeout=10_000)
    qtbot.waitUntil(lambda: threads.live_threads() == [], timeout=10_000)


def start_blocking(qtbot, receiver, n: int = 2) -> tuple[list, list]:
    """``n`` ``Blocking`` workers, started and working: (workers, their threads)."""
    workers = [Blocking() for _ in range(n)]
    for worker in workers:
        worker.started_work.connect(receiver.on_started)
    started = [start(worker, receiver, f"blocking-{k}") for k, worker in enumerate(workers)]
    qtbot.waitUntil(lambda: receiver.started == n, timeout=10_000)
    return workers, started


def test_stop_all_stops_and_waits_for_every_worker(qtbot):
    receiver = Receiver()
    _, started = start_blocking(qtbot, receiver)
    assert set(threads.live_threads()) == set(started) and all(t.isRunning() for t in started)
    threads.stop_all()
    assert all(threads.is_finished(t) for t in started)
    assert receiver.finished == 2 and receiver.messages == []  # finished delivered by stop_all
    assert threads.live_threads() == []


def test_the_leak_guard_names_where_a_leaked_qthread_was_started(qtbot):
    stop = threading.Event()

    class Spinner(QThread):
        def run(self):
            stop.wait(30)

    leaked = Spinner()
    leaked.setObjectName("deliberately-leaked")
    leaked.start()  # this line is what the guard must point at
    try:
        dangling = dangling_qthreads()
        assert [name for name, _ in dangling] == ["deliberately-leaked"]
        where = dangling[0][1]
        assert "test_threads.py" in where and "leaked.start()" in where
    finally:
        stop.set()
        leaked.wait()
    assert dangling_qthreads() == []


def test_a_call_hands_its_result_or_its_failure_to_the_relay_on_the_gui_thread(qtbot, qapp):
    """``Call`` + ``Relay``: the handlers run on the GUI thread with the worker first; a failure
    arrives as the one line the app shows (an OSError's message, no type name); the relay goes
    once the worker has finished."""
    seen = []

    def handler(kind):
        return lambda worker, *args: seen.append((kind, worker.tag, *args, threading.current_thread() is threading.main_thread()))

    parent = QObject()
    for tag, fn in (("sum", lambda: 41 + 1), ("missing", lambda: open("/nonexistent/x.txt"))):
        worker = threads.Call(fn, tag)
        threads.Relay(worker, parent, done=handler("done"), failed=handler("failed"))
        threads.start(worker, f"call-{tag}")
    qtbot.waitUntil(lambda: len(seen) == 2 and not threads.live_threads(), timeout=10000)
    assert ("done", "sum", 42, True) in seen
    failure = next(entry for entry in seen if entry[0] == "failed")
    assert failure[1] == "missing" and failure[2].startswith("[Errno 2]") and failure[3] is True
    qtbot.waitUntil(lambda: not parent.findChildren(threads.Relay), timeout=10000)


ENDS_WHILE_A_WORKER_RUNS = """
from PySide6 import QtWidgets
from lstmviz import threads
from tests.app.test_threads import Blocking
app = QtWidgets.QApplication([])
worker = Blocking()
threads.start(worker, "still-running")
print(len(threads.live_threads()))
"""


def test_a_script_ending_while_a_worker_runs_stops_it_instead_of_aborting():
    """A script that starts a worker and ends without the event loop (no ``aboutToQuit``): the
    ``atexit`` hook stops and waits for the thread, so Python ends normally (exit 0), not with
    Qt's abort for a ``QThread`` destroyed while running (exit -6)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(root))
    done = subprocess.run([sys.executable, "-c", ENDS_WHILE_A_WORKER_RUNS], cwd=root, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1"]


class Allocating(threads.Worker):
    """Allocates and keeps far more container objects than the collector's generation-0
    threshold (the collector counts allocations net of deallocations)."""

    def __init__(self, kept: list):
        super().__init__()
        self.kept = kept

    def work(self):
        self.kept.extend([k] for k in range(200_000))


class Finalised:
    """One half of a reference cycle; records the thread its finaliser ran on."""

    threads_seen: list = []

    def __init__(self):
        self.partner = None

    def __del__(self):
        Finalised.threads_seen.append(threading.current_thread() is threading.main_thread())


def test_cyclic_garbage_is_collected_on_the_gui_thread_while_workers_allocate(qtbot):
    """Garbage in a reference cycle (as a closed window's Qt wrappers are) is finalised on the
    GUI thread, never by a collection a worker's allocations trigger: collecting a window's Qt
    objects in a worker deadlocks the process (see ``lstmviz.threads``)."""
    receiver = Receiver()
    Finalised.threads_seen = []
    gc.collect()
    first, second = Finalised(), Finalised()
    first.partner, second.partner = second, first
    del first, second
    kept = []
    thread = start(Allocating(kept), receiver, "allocating")
    qtbot.waitUntil(lambda: receiver.finished == 1 and threads.is_finished(thread), timeout=10_000)
    qtbot.waitUntil(lambda: len(Finalised.threads_seen) == 2, timeout=10_000)
    assert Finalised.threads_seen == [True, True]


def test_automatic_collection_is_off_while_workers_run_and_back_once_the_last_has_finished(qtbot):
    assert gc.isenabled()
    receiver = Receiver()
    workers, started = start_blocking(qtbot, receiver)
    assert not gc.isenabled()
    workers[0].stop_requested.set()
    qtbot.waitUntil(lambda: threads.live_threads() == [started[1]], timeout=10_000)
    assert not gc.isenabled()  # one worker still runs
    threads.stop_all()
    assert threads.live_threads() == [] and gc.isenabled()
