"""Analysis jobs off the GUI thread: one ``JobRunner`` per panel, a ``JobBar`` showing its
progress with a Cancel button, and ``chunks`` streaming the viewed text through a model: from
the first pass's checkpoints when ``text_source`` had them (``engine.analysis.stream.iter_segments``:
``segments_for(model)`` checkpoint blocks in one batched forward), else sequentially
(``iter_chunks``).

A job is a plain function ``fn(check) -> result`` run in a ``lstmviz.threads.Worker``; it calls
``check(fraction)`` between units of work (``fraction`` in [0, 1]): that reports progress (at
most every ``PROGRESS_INTERVAL_S``) and raises ``Cancelled`` once the job was cancelled, so a
cancelled job ends at its next chunk. ``JobRunner.run(fn)`` cancels the running job and starts
``fn`` (text edited: the old answer is worthless); ``run(fn, restart=False)`` lets the running
job finish and then runs the latest ``fn`` asked for (live while training: one job at a time,
so the rate is bounded by the work itself). Results of cancelled or superseded jobs (a newer one
queued) are dropped.
Every signal of the runner is emitted on the GUI thread.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6 import QtWidgets
from PySide6.QtCore import QObject, Signal

from engine.analysis.stream import iter_chunks, iter_segments

from .. import threads

PROGRESS_INTERVAL_S = 0.1
CHUNK = 2048  # steps per chunk of the sequential analysis passes (memory: one chunk's trace)
SEGMENTS = 8  # fewest checkpoint blocks per batched forward (memory: one trace of segments * every steps)
BATCH_CELLS = 4096  # segments * hidden size * layers aimed at (``segments_for``)
SEGMENTS_MAX = 64  # most blocks per batched forward (bounds the outputs, segments * every * V numbers)


def segments_for(model) -> int:
    """Checkpoint blocks per batched forward for ``model``: ``BATCH_CELLS // (H * L)`` within
    ``[SEGMENTS, SEGMENTS_MAX]`` (32 for H = 128, L = 1; 8 from H * L = 512 up). Each NumPy call
    of the forward then works on ``segments * H`` numbers, long enough that the job's thread
    holds the GIL a small part of its time and the GUI thread rarely waits for it. Memory: one
    batch is a trace of ``segments * every`` steps, ``engine.memory.trace_bytes(config, segments
    * every)`` bytes (117,637,120 bytes, about 112 MiB, for 32 x 256 steps at H = 128, L = 1,
    V = 65, float32), held about twice. Measured at the end of a 1.1 MB text, H = 128, a nice-10 job beside the
    stepping GUI on a 2-core machine at load 3-8.5: steps within 1 ms of the idle cost in three
    rounds out of three with 32 blocks, two out of three with 8 (26.5 vs 8.4 ms idle at load 7)."""
    cells = model.config.hidden_size * model.config.num_layers
    return min(SEGMENTS_MAX, max(SEGMENTS, BATCH_CELLS // max(cells, 1)))


class Cancelled(Exception):
    """Raised by ``check`` inside a job that was cancelled."""


class KnownIds(np.ndarray):
    """Token ids ``(T,)`` (``text_source``'s) carrying the first pass's checkpoints over them
    under the model handed with them, every ``every`` steps: ``checkpoints (J, L, S, H)``
    (``Stepper.known_checkpoints``), or while the pass fills them in, the ``stepper`` that
    holds them while its inputs are still ``version``'s. Arrays derived from them (slices,
    results) carry none."""

    checkpoints: np.ndarray | None = None
    every = 0
    stepper = None
    version = 0


def chunks(model, inputs: np.ndarray, check, start: int = 0, end: int | None = None):
    """``(t0, trace)`` covering steps ``[start, end)`` of ``inputs (T,)`` in time order, with
    ``check`` (progress and cancel) called before each is handed on: ``iter_segments`` from the
    checkpoints ``inputs`` carry (``KnownIds``; while the first pass fills them in up to
    ``end``, it first waits for the pass, saying so through ``check``'s note, and then reads
    them; the text edited meanwhile: ``Cancelled``), else ``iter_chunks``."""
    end = inputs.shape[0] if end is None else end
    known = getattr(inputs, "checkpoints", None)
    if known is None and getattr(inputs, "stepper", None) is not None:
        known = _wait_for_pass(inputs, check, end)
    if known is not None:
        parts = iter_segments(model, inputs.view(np.ndarray), known, inputs.every, start, end,
                              segments=segments_for(model))
    else:
        parts = iter_chunks(model, inputs, start, end, chunk=CHUNK)
    for t0, trace in parts:
        check((t0 + trace.steps) / max(end, 1))
        yield t0, trace


def _wait_for_pass(inputs: KnownIds, check, end: int) -> np.ndarray:
    """The checkpoints up to ``end`` once the first pass has them (or stopped filling them in),
    copied once then (``Stepper.wait_known``)."""
    stepper, waited = inputs.stepper, False
    while True:
        ready, known = stepper.wait_known(end, inputs.version, PROGRESS_INTERVAL_S)
        if ready and known is None:
            raise Cancelled()  # the text changed: a job on the new one supersedes this one
        if ready:
            if waited:
                check(0.0, "")
            return known
        waited = True
        check(0.0, f"waiting for the first pass ({stepper.known_percent()} %)")


class _JobWorker(threads.Worker):
    """Runs one job: ``fn(check)``, its result through ``done``, at a lower priority than the
    GUI thread's (``threads.lower_priority``)."""

    background = True

    def __init__(self, fn):
        super().__init__()
        self._fn = fn
        self._last = 0.0
        self._note = ""

    def check(self, fraction: float, note: str | None = None) -> None:
        """Progress (``fraction`` in [0, 1]) and a status ``note`` ("" clears it; None keeps it)
        for the panel; raises ``Cancelled`` once the job was cancelled."""
        if self.stop_requested.is_set():
            raise Cancelled()
        if note is not None and note != self._note:
            self._note = note
            self.noted.emit(note)
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL_S:
            self._last = now
            self.progressed.emit(float(fraction))

    def work(self) -> None:
        try:
            result = self._fn(self.check)
        except Cancelled:
            return
        self.done.emit(result)


class JobRunner(QObject):
    """Runs one analysis job at a time for a panel (see the module docstring)."""

    result = Signal(object)
    failed = Signal(str)
    progressed = Signal(float)
    noted = Signal(str)  # what the running job is doing, when not plain progress ("": nothing)
    busy_changed = Signal(bool)

    def __init__(self, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self._number = 0  # the current job's number
        self._worker: _JobWorker | None = None
        self._pending = None  # fn to run once the running job finishes

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def run(self, fn, restart: bool = True) -> None:
        """Start ``fn`` (module docstring); ``restart=False`` queues it behind a running job."""
        if self._worker is not None:
            if not restart:
                self._pending = fn
                return
            self._worker.stop_requested.set()
        self._pending = None
        self._number += 1
        worker = _JobWorker(fn)
        number = self._number
        threads.Relay(worker, self, done=lambda _w, result: self._on_done(number, result),
                      progressed=lambda _w, fraction: self._on_progress(number, fraction),
                      failed=lambda _w, message: self._on_failed(number, message),
                      noted=lambda _w, note: self._on_note(number, note),
                      finished=lambda _w: self._on_finished(number))
        self._worker = worker
        threads.start(worker, f"analysis-{self.name}")
        self.busy_changed.emit(True)

    def cancel(self) -> None:
        """Stop the running job (its result is dropped) and forget a queued one."""
        self._pending = None
        if self._worker is not None:
            self._worker.stop_requested.set()
            self._worker = None
            self._number += 1
            self.busy_changed.emit(False)

    def _on_done(self, number: int, result) -> None:
        if number == self._number and self._pending is None:  # a queued job supersedes it
            self.result.emit(result)

    def _on_progress(self, number: int, fraction: float) -> None:
        if number == self._number:
            self.progressed.emit(fraction)

    def _on_note(self, number: int, note: str) -> None:
        if number == self._number:
            self.noted.emit(note)

    def _on_failed(self, number: int, message: str) -> None:
        if number == self._number:
            self.failed.emit(message)

    def _on_finished(self, number: int) -> None:
        if number != self._number:
            return
        self._worker = None
        if self._pending is not None:
            fn, self._pending = self._pending, None
            self.run(fn)
        else:
            self.busy_changed.emit(False)


class JobBar(QtWidgets.QWidget):
    """A progress bar and a Cancel button for a ``JobRunner``, visible while it works; its room
    is kept while it is hidden, so the panel's plots keep their size (no relayout and full
    repaint each time a job starts or ends)."""

    def __init__(self, runner: JobRunner, parent=None):
        super().__init__(parent)
        self.bar = QtWidgets.QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(10)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop this computation")
        self.cancel_button.clicked.connect(runner.cancel)
        self.note = QtWidgets.QLabel()  # e.g. "waiting for the first pass (37 %)"
        self.note.setVisible(False)
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.note)
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        runner.progressed.connect(lambda f: self.bar.setValue(int(1000 * f)))
        runner.noted.connect(self._on_note)
        runner.busy_changed.connect(self._on_busy)
        policy = self.sizePolicy()  # its row stays when hidden: showing it never lays the panel out
        policy.setRetainSizeWhenHidden(True)  # again (live training starts a job per refresh)
        self.setSizePolicy(policy)
        self.setVisible(False)

    def _on_note(self, note: str) -> None:
        self.note.setText(note)
        self.note.setVisible(bool(note))

    def _on_busy(self, busy: bool) -> None:
        self.bar.setValue(0)
        self._on_note("")
        self.setVisible(busy)


def text_source(session):
    """``(model, ids (T,), text)`` a job can read while the GUI changes the Session (the model is
    replaced, never mutated, by training; the ids are copied), or None without a character model
    and text. ``ids`` is a ``KnownIds``: a copy of the checkpoints known when no pass is filling
    them in, else the stepper whose pass does (``chunks`` reads them when it is far enough)."""
    if not session.ready or session.vocab is None or session.steps == 0:
        return None
    stepper = session.stepper
    ids = np.array(stepper.inputs, copy=True).view(KnownIds)  # (T,)
    ids.every, ids.version = stepper.every, stepper.version
    if stepper.filling:
        ids.stepper = stepper
    else:
        ids.checkpoints = stepper.known_checkpoints()  # (J, L, S, H)
    return stepper.model, ids, session.text
