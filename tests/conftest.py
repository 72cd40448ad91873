"""Shared test set-up: offscreen Qt before any Qt import, and guards against leaked threads.

A running ``QThread`` appears to Python as a daemon dummy thread, which the Python-thread guard
cannot tell from Qt's own; so ``QThread.start`` is patched to record where each thread was
started, and a test that leaves one running fails with that place (as napari's suite does).
"""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import signal  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402

import pytest  # noqa: E402

_qthreads_started: dict = {}  # QThread -> the stack (text) where it was started


def _record_qthread_starts() -> None:
    try:
        from PySide6.QtCore import QThread
    except ImportError:  # an engine-only environment: no QThread to watch
        return

    original = QThread.start
    if getattr(original, "records_starts", False):
        return

    def start(self, *args, **kwargs):
        _qthreads_started[self] = "".join(traceback.format_stack(limit=14)[:-1])
        return original(self, *args, **kwargs)

    start.records_starts = True
    QThread.start = start


def dangling_qthreads() -> list:
    """``(thread name, where it was started)`` of every recorded QThread still running; the
    finished ones are forgotten."""
    if not _qthreads_started:
        return []
    import shiboken6

    running = []
    for thread, where in list(_qthreads_started.items()):
        if shiboken6.isValid(thread) and thread.isRunning():
            running.append((thread.objectName(), where))
        else:
            del _qthreads_started[thread]
    return running


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Fail any test that leaves a Python thread or a QThread running."""
    _record_qthread_starts()
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    assert not leaked, f"test left threads running: {leaked}"
    dangling = dangling_qthreads()
    assert not dangling, "test left QThreads running:\n" + "\n".join(
        f"{name or '(unnamed)'} started at:\n{where}" for name, where in dangling)


@pytest.fixture
def alarm():
    """A test that blocks (e.g. opening a FIFO without O_NONBLOCK) fails after 20 s instead of
    hanging the suite."""
    def timeout(signum, frame):
        raise AssertionError("blocked: no answer within 20 s")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
