"""Work off the GUI thread: the one worker-in-a-``QThread`` helper and a registry of live workers.

``start(worker, name)`` moves a :class:`Worker` into a new ``QThread`` and wires it the one way
(DESIGN.md §3): ``thread.started`` -> ``worker.run``; ``worker.finished`` -> ``thread.quit``
with ``Qt.DirectConnection`` (a queued call could never reach the busy worker thread);
``worker.finished`` -> ``worker.deleteLater`` and ``thread.finished`` -> ``thread.deleteLater``.
``Worker.run`` calls ``work()``; an exception escaping it is reported through ``failed(str)``
(``crash_handler.one_line``: the message the app shows for the same error raised on the GUI
thread), and ``finished`` is always
emitted last. Connect a worker's signals only to ``@Slot`` methods of GUI-thread QObjects:
``Relay`` is the one such receiver (it calls plain handlers on the GUI thread). ``Call`` runs one
function and hands its result over (``done``); larger files than ``BACKGROUND_BYTES`` are read
with it.

A worker whose ``background`` is true (the whole-text analysis jobs) first lowers its thread's
scheduling priority (``lower_priority``: nice ``BACKGROUND_NICE`` on Linux, ``QThread``'s lowest
priority elsewhere), so the GUI thread wins the CPU whenever both are runnable: measured on a
2-core machine under load, a step at the end of a 1.1 MB text cost 15-19 ms while the Loss
strip's job ran at the default priority and within about 1 ms of the idle cost at nice 10, the
job itself taking as long (``bench/long_text.py``'s ``step_ms_busy``). A shorter
``sys.setswitchinterval`` (1 ms, 0.2 ms) made no measurable difference.

Every started worker stays in the registry until its thread has finished (the registry also
keeps the Python wrappers alive: a ``QThread`` garbage-collected while running aborts the
process). ``stop_all()`` sets every live worker's ``stop_requested`` event, waits for every
thread and then delivers the signals they queued; the main window calls it when it closes, and
it is connected to ``QCoreApplication.aboutToQuit`` and registered with ``atexit`` (a script
that builds a window and ends without running the event loop) when the first worker starts. No
thread is ever terminated.

While any worker runs, Python's cyclic garbage collection happens on the GUI thread only:
automatic collection is off and a GUI-thread timer collects each generation past its threshold
every ``GC_INTERVAL_S`` (``_GuiThreadCollector``, pyqtgraph's ``GarbageCollector`` recipe; this
module stays free of pyqtgraph). Automatic collection is back (if it was on) once the event
loop, or ``stop_all``, has delivered the end of the last worker; a script that never runs the
event loop keeps it off until ``stop_all`` at exit. An automatic collection runs in whichever
thread crosses the allocation threshold: one in a worker that reaches a closed window's Qt
objects deletes them there, its ``QObject`` destructor waits for the GIL inside a Qt lock, and
the GUI thread, holding the GIL, waits for that lock to delete another object: a deadlock.

Own module rather than superqt's thread workers: superqt's ``WorkerBase`` runs ``QRunnable``s
on the global ``QThreadPool`` and keeps its signals on a separate object, its
``GeneratorWorker`` pauses by polling in the worker (pause lives in ``engine.train.Trainer.run``
here), and ``new_worker_qthread`` keeps no registry and has no stop-and-wait-for-all call.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, QTimer, Signal, Slot

from .crash_handler import one_line

BACKGROUND_BYTES = 1 << 20  # text files larger than this are read in a worker thread (``Call``)
BACKGROUND_NICE = 10  # niceness added to a ``background`` worker's thread on Linux (0-19 range)
GC_INTERVAL_S = 0.5  # seconds between the GUI thread's checks of the collector's generation counts

_live: dict = {}  # id(thread) -> (thread, worker, its stop_requested, _Forget): started, not yet finished
_hooked_quit = False  # stop_all is connected to the application's aboutToQuit and registered with atexit
_gui_collector: _GuiThreadCollector | None = None  # created with the first worker, a child of the application
_collection_was_automatic = False  # gc was enabled when the first of the live workers started


def lower_priority() -> None:
    """Lower the calling thread's scheduling priority: on Linux add ``BACKGROUND_NICE`` to its
    niceness (``setpriority`` on the thread's id applies to that thread only), elsewhere
    ``QThread.LowestPriority``. A system refusing the change leaves the priority as it was."""
    if sys.platform.startswith("linux"):
        tid = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE))
        except OSError:
            pass  # e.g. a sandbox forbidding it: the work still runs, at the same priority
    else:
        QThread.currentThread().setPriority(QThread.LowestPriority)


class Worker(QObject):
    """Base of every worker: override :meth:`work` (runs in the worker thread; check
    ``stop_requested`` between units of work). ``background = True``: the thread runs at a
    lower priority than the GUI's (``lower_priority``)."""

    background = False

    failed = Signal(str)
    finished = Signal()
    done = Signal(object)  # a result or a delivery for the GUI thread
    progressed = Signal(float)  # fraction of the work done, in [0, 1]
    noted = Signal(str)  # what the work is doing, for a status line ("": nothing to say)

    def __init__(self):
        super().__init__()
        self.stop_requested = threading.Event()

    def work(self) -> None:
        raise NotImplementedError

    @Slot()
    def run(self) -> None:
        try:
            if self.background:
                lower_priority()
            self.work()
        except Exception as exc:  # noqa: BLE001 - any failure must reach the GUI, not kill the thread
            self.failed.emit(one_line(exc))
        finally:
            # Hand the worker back to the GUI thread: its deleteLater then runs there.
            self.moveToThread(QCoreApplication.instance().thread())
            self.finished.emit()


class Call(Worker):
    """``fn()`` in a worker thread: ``done(result)`` unless stopped meanwhile. ``tag``: what the
    caller needs to recognise the call by (e.g. the path read)."""

    def __init__(self, fn, tag=None):
        super().__init__()
        self._fn, self.tag = fn, tag

    def work(self) -> None:
        result = self._fn()
        if not self.stop_requested.is_set():
            self.done.emit(result)


class Relay(QObject):
    """The GUI-thread receiver of one worker's signals (a child of ``parent``): calls
    ``done(worker, payload)``, ``progressed(worker, fraction)``, ``noted(worker, note)``,
    ``failed(worker, message)`` and ``finished(worker)`` (each optional) on the GUI thread;
    deletes itself after ``finished``."""

    def __init__(self, worker: Worker, parent: QObject, done=None, progressed=None, noted=None, failed=None,
                 finished=None):
        super().__init__(parent)
        self._worker = worker
        self._handlers = {"done": done, "progressed": progressed, "noted": noted, "failed": failed,
                          "finished": finished}
        worker.done.connect(self._done)
        worker.progressed.connect(self._progressed)
        worker.noted.connect(self._noted)
        worker.failed.connect(self._failed)
        worker.finished.connect(self._finished)

    def _call(self, name: str, *args) -> None:
        handler = self._handlers[name]
        if handler is not None:
            handler(self._worker, *args)

    @Slot(object)
    def _done(self, payload) -> None:
        self._call("done", payload)

    @Slot(float)
    def _progressed(self, fraction: float) -> None:
        self._call("progressed", fraction)

    @Slot(str)
    def _noted(self, note: str) -> None:
        self._call("noted", note)

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._call("failed", message)

    @Slot()
    def _finished(self) -> None:
        self._call("finished")
        self._worker = None
        self.deleteLater()


class _Forget(QObject):
    """Lives on the GUI thread (a child of the application, deleted by Qt once it has run, never
    from inside its own slot); drops a thread from the registry once it has finished."""

    def __init__(self, key: int, parent: QObject):
        super().__init__(parent)
        self._key = key

    @Slot()
    def forget(self) -> None:
        entry = _live.pop(self._key, None)
        if entry is not None:  # finished is emitted just before the thread ends: let it end first,
            wait(entry[0])  # as dropping the last reference to a running QThread aborts the process
            if not _live:
                _resume_automatic_collection()
        self.deleteLater()


class _GuiThreadCollector(QObject):
    """Lives on the GUI thread (a child of the application): every ``GC_INTERVAL_S`` while its
    timer runs, collects generation 0 when its count passes its threshold, then generation 1 and
    2 likewise (``gc.get_count`` against ``gc.get_threshold``: pyqtgraph's recipe)."""

    def __init__(self, parent: QObject):
        super().__init__(parent)
        self.timer = QTimer(self)
        self.timer.setInterval(round(GC_INTERVAL_S * 1000))
        self.timer.timeout.connect(self.collect)

    @Slot()
    def collect(self) -> None:
        counts, thresholds = gc.get_count(), gc.get_threshold()
        for generation in range(3):
            if counts[generation] <= thresholds[generation]:
                break
            gc.collect(generation)


def _collect_on_gui_thread_only() -> None:
    """Automatic garbage collection off and the GUI thread's timer collecting instead (a worker
    is about to start); remembers whether collection was on when the first live worker started."""
    global _gui_collector, _collection_was_automatic
    if _gui_collector is None or not shiboken6.isValid(_gui_collector):  # none yet, or its application ended
        _gui_collector = _GuiThreadCollector(QCoreApplication.instance())
    if not _live:
        _collection_was_automatic = gc.isenabled()
    gc.disable()
    if not _gui_collector.timer.isActive():
        _gui_collector.timer.start()


def _resume_automatic_collection() -> None:
    """Automatic garbage collection as it was before the first live worker (no worker left)."""
    if _gui_collector is not None and shiboken6.isValid(_gui_collector):
        _gui_collector.timer.stop()
    if _collection_was_automatic:
        gc.enable()


def start(worker: Worker, name: str) -> QThread:
    """Run ``worker.run`` in a new QThread named ``name`` (see the module docstring); the thread,
    already started. Call on the GUI thread."""
    global _hooked_quit
    app = QCoreApplication.instance()
    if not _hooked_quit:
        app.aboutToQuit.connect(stop_all)
        atexit.register(stop_all)  # a QThread still running when Python ends aborts the process
        _hooked_quit = True
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    key = id(thread)
    forget = _Forget(key, app)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit, Qt.DirectConnection)
    worker.finished.connect(worker.deleteLater)
    thread.finished.connect(forget.forget)  # queued to the GUI thread, before the thread's deleteLater
    thread.finished.connect(thread.deleteLater)
    _collect_on_gui_thread_only()
    _live[key] = (thread, worker, worker.stop_requested, forget)
    thread.start()
    return thread


def live_threads() -> list[QThread]:
    """The started threads that have not yet reported finished (GUI thread)."""
    return [entry[0] for entry in _live.values() if shiboken6.isValid(entry[0])]


def wait(thread: QThread | None) -> None:
    """Block until ``thread`` has finished (nothing if None or already deleted). Never terminates."""
    if thread is not None and shiboken6.isValid(thread):
        thread.quit()
        thread.wait()


def is_finished(thread: QThread) -> bool:
    """True once ``thread`` has finished (also once it has been deleted, which happens only after)."""
    return not shiboken6.isValid(thread) or thread.isFinished()


@Slot()
def stop_all() -> None:
    """Ask every live worker to stop, wait for every thread, then deliver the signals they
    queued (their last payloads and ``finished``) to the GUI thread's receivers."""
    for thread, _worker, stop_requested, _forget in list(_live.values()):
        stop_requested.set()
        wait(thread)
    QCoreApplication.sendPostedEvents()
