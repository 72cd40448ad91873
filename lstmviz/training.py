"""Training off the GUI thread: a ``TrainingWorker`` run by ``lstmviz.threads``, owned by a
GUI-thread ``TrainingController`` (DESIGN.md §3).

The worker iterates ``engine.train.Trainer.run(stop, pause)`` and hands back
:class:`TrainingUpdate` payloads at most every ``progress_interval`` seconds (default
``PROGRESS_INTERVAL_S``, 0.2 s: <= 5 per second) and always the final state. A payload carries
the latest ``Progress``, the loss history of every step since the previous payload, and - at
most every ``weights_interval`` seconds (default ``WEIGHTS_INTERVAL_S``) and always in the
final payload and the paused one - a copy of the parameters. Nothing in a payload is shared
with the trainer, which keeps mutating its model in the worker thread.

The viewer's trace is computed here too, not on the GUI thread: when the GUI has set the viewer's
inputs (``set_viewer_inputs``: the token ids the gate heatmaps show), every payload with weights
also carries ``model.trace(ids)`` under exactly those weights, so the GUI only draws. A trace
costs worker time, so after a trace that took ``c`` seconds the next weights payload comes no
sooner than ``c / TRACE_SHARE`` (at most ``TRACE_SHARE`` of the worker's time; the final and
paused payloads always carry both).

The worker's signals are connected only to ``@Slot`` methods of the controller, so they run on
the GUI thread; the controller re-emits them as GUI-thread relay signals:

``progressed(TrainingUpdate)``, ``weights_updated(SequenceModel, Trace | None)`` (a fresh model
built from the copied parameters, and the viewer's trace under it or None),
``finished_training(TrainingUpdate | None)`` (the last payload), ``failed(str)`` (an exception
in the loop, or divergence after the last finite weights were restored and relayed) and
``state_changed(str)`` with one of :data:`STATES`.

Stop and pause are ``threading.Event`` objects that ``Trainer.run`` checks between steps; when
it starts holding at a pause it yields a ``Progress`` with ``paused=True``, which the worker
sends at once with the weights, so the GUI shows exactly where the run is held.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, replace

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from engine.model import SequenceModel
from engine.train import TimeEstimate, TrainingDiverged

from . import threads
from .core.history import StepLosses
from .progress import format_duration
from .threads import Worker

STATES = ("idle", "running", "paused", "stopping")
PROGRESS_INTERVAL_S = 0.2  # shortest gap between two payloads, seconds
WEIGHTS_INTERVAL_S = 0.25  # shortest gap between two payloads with weights, seconds
TRACE_SHARE = 0.02  # the viewer's trace may take at most this share of the worker's time


def estimate_summary(estimate: TimeEstimate) -> str:
    """``Estimated time 2:05 (1000 steps x 118 ms + 10 evaluations x 0.70 s).`` for an
    ``engine.train.estimate_time`` result."""
    evaluations = f"{estimate.evaluations} evaluation{'s' * (estimate.evaluations != 1)}"
    return (f"Estimated time {format_duration(estimate.total_s)} ({estimate.steps} steps x "
            f"{estimate.step_s * 1e3:.0f} ms + {evaluations} x {estimate.eval_s:.2f} s).")


class ViewerInputs:
    """The viewer's inputs, set on the GUI thread and read by the worker (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._inputs = None  # read-only (T,) token ids or (T, D) values, or None

    def set(self, inputs: np.ndarray | None) -> None:
        """Trace ``inputs`` from now on (a private read-only copy is kept); None: trace nothing."""
        if inputs is not None:
            inputs = np.array(inputs)  # (T,) or (T, D) private copy
            inputs.flags.writeable = False
        with self._lock:
            self._inputs = inputs

    def get(self) -> np.ndarray | None:
        with self._lock:
            return self._inputs


@dataclass(frozen=True)
class TrainingUpdate:
    """One payload from the worker; every array is owned by the payload.

    ``steps (n,)`` int64 and ``train_loss``/``smooth_loss (n,)`` float64 (in the dataset's
    loss unit, ``progress.loss_unit``) cover every step since the previous payload;
    ``val_steps (m,)``/``val_loss (m,)`` the evaluations among them. ``params`` is a copy of the
    model's parameters, or None when this payload carries none; ``viewer_trace`` the ``Trace``
    of the viewer's inputs under those parameters (None without params or without viewer
    inputs). ``final`` marks the last payload of a run; ``paused`` the payload sent when the worker has stopped between two steps because
    of a pause (it carries the weights).
    """

    progress: object
    steps: np.ndarray
    train_loss: np.ndarray
    smooth_loss: np.ndarray
    val_steps: np.ndarray
    val_loss: np.ndarray
    params: dict | None
    final: bool
    paused: bool = False
    viewer_trace: object = None


class TrainingWorker(Worker):
    """Runs one ``Trainer`` to completion in its thread (see module docstring); stops when
    ``stop_requested`` is set, holds while ``pause`` is set."""

    update = Signal(object)

    def __init__(self, trainer, pause: threading.Event, progress_interval: float, weights_interval: float,
                 viewer: ViewerInputs | None = None):
        super().__init__()
        self._trainer = trainer
        self._pause = pause
        self._progress_interval = progress_interval
        self._weights_interval = weights_interval  # shortest gap between weights payloads, seconds
        self._viewer = viewer if viewer is not None else ViewerInputs()
        self._weights_gap = weights_interval  # the current gap, seconds: stretched after costly traces

    def work(self) -> None:
        history = StepLosses()
        last_progress = None
        last_emit = last_weights = float("-inf")
        pending = False
        try:
            for progress in self._trainer.run(stop=self.stop_requested, pause=self._pause):
                if progress.paused:  # the trainer now holds: show exactly where, with the weights
                    self._emit(history, progress, True, final=False, paused=True)
                    last_emit = last_weights = time.monotonic()
                    pending = False
                    continue
                last_progress = progress
                if not progress.done:  # the closing snapshot repeats the last step
                    history.add(progress)
                pending = True
                now = time.monotonic()
                if progress.done or now - last_emit >= self._progress_interval:
                    with_weights = progress.done or now - last_weights >= self._weights_gap
                    self._emit(history, progress, with_weights, final=progress.done)
                    last_emit, pending = now, False
                    if with_weights:
                        last_weights = time.monotonic()
            if pending:
                self._emit(history, last_progress, True, final=True)
        except TrainingDiverged as exc:
            # The trainer restored the last good weights (a runaway loss: from before the step that
            # made it): hand them back, at their step, before the error.
            if last_progress is not None:
                self._emit(history, replace(last_progress, step=self._trainer.step), True, final=True)
            self.failed.emit(str(exc))

    def _emit(self, history: StepLosses, progress, with_weights: bool, final: bool, paused: bool = False) -> None:
        steps, train, smooth, val_steps, val = history.take()
        params = trace = None
        if with_weights:
            model = self._trainer.model
            params = {name: value.copy() for name, value in model.params.items()}
            trace = self._viewer_trace(model)
        self.update.emit(TrainingUpdate(copy.copy(progress), steps, train, smooth,
                                        val_steps, val, params, final, paused, trace))

    def _viewer_trace(self, model):
        """The viewer's inputs traced under ``model`` now (None without inputs, or when they do
        not fit the model: the viewer then traces for itself; a display aid never stops
        training); stretches the gap to the next weights payload by the trace's cost."""
        inputs = self._viewer.get()
        if inputs is None or not len(inputs):
            return None
        started = time.monotonic()
        try:
            trace = model.trace(inputs)
        except ValueError:  # e.g. ids of another vocabulary, set while the viewer showed another model
            trace = None
        self._weights_gap = max(self._weights_interval, (time.monotonic() - started) / TRACE_SHARE)
        return trace


class TrainingController(QObject):
    """GUI-thread owner of the training thread. See the module docstring for the signals."""

    progressed = Signal(object)
    weights_updated = Signal(object, object)
    finished_training = Signal(object)
    failed = Signal(str)
    state_changed = Signal(str)

    def __init__(self, parent: QObject | None = None, progress_interval: float = PROGRESS_INTERVAL_S,
                 weights_interval: float = WEIGHTS_INTERVAL_S):
        super().__init__(parent)
        self._progress_interval = progress_interval
        self._weights_interval = weights_interval
        self._pause = threading.Event()
        self._stop: threading.Event | None = None  # the running worker's stop_requested
        self._thread: QThread | None = None
        self._trainer = None
        self._last_update: TrainingUpdate | None = None
        self._state = "idle"
        self._viewer = ViewerInputs()

    # --- queries ----------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """One of :data:`STATES`."""
        return self._state

    @property
    def trainer(self):
        """The trainer of the current or last run (None before the first run). Only touch its
        model and optimizer while :attr:`state` is ``"idle"``."""
        return self._trainer

    @property
    def thread(self) -> QThread | None:
        """The running QThread, or None when idle."""
        return self._thread

    def is_active(self) -> bool:
        """True while a worker thread exists (running, paused or stopping)."""
        return self._thread is not None

    # --- commands ---------------------------------------------------------------------------
    def set_viewer_inputs(self, inputs: np.ndarray | None) -> None:
        """What the viewer shows: token ids ``(T,)`` (or values ``(T, D)``) that the worker
        traces with every weights payload from now on (also during a run); None: no trace."""
        self._viewer.set(inputs)

    def start(self, trainer) -> None:
        """Train ``trainer`` in a new thread. RuntimeError if a run is still active."""
        if self.is_active():
            raise RuntimeError("training is already running; stop it first")
        self._pause.clear()
        self._trainer = trainer
        self._last_update = None
        worker = TrainingWorker(trainer, self._pause, self._progress_interval, self._weights_interval, self._viewer)
        worker.update.connect(self._on_update)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_worker_finished)
        self._stop = worker.stop_requested
        self._set_state("running")
        self._thread = threads.start(worker, "lstmviz-training")

    def pause(self) -> None:
        if self._state == "running":
            self._pause.set()
            self._set_state("paused")

    def resume(self) -> None:
        if self._state == "paused":
            self._pause.clear()
            self._set_state("running")

    def stop(self) -> None:
        """Ask the worker to stop after the current step; returns at once."""
        if self.is_active() and self._state != "stopping":
            self._stop.set()
            self._pause.clear()
            self._set_state("stopping")

    def shutdown(self) -> None:
        """Stop, and block until the thread has finished; its last payloads are delivered
        before this returns (so the final weights have been relayed). Never terminates."""
        if not self.is_active():
            return
        self.stop()
        threads.wait(self._thread)
        QCoreApplication.sendPostedEvents(self)  # deliver the worker's queued updates now
        if self.is_active():  # finished signal was consumed elsewhere; clean up ourselves
            self._finish()

    # --- worker slots (GUI thread) ----------------------------------------------------------
    @Slot(object)
    def _on_update(self, update: TrainingUpdate) -> None:
        self._last_update = update
        self.progressed.emit(update)
        if update.params is not None:
            self.weights_updated.emit(SequenceModel(self._trainer.model.config, params=update.params),
                                      update.viewer_trace)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.failed.emit(message)

    @Slot()
    def _on_worker_finished(self) -> None:
        if self.is_active():
            self._finish()

    def _finish(self) -> None:
        threads.wait(self._thread)  # run() has returned and quit() was called: returns promptly
        self._thread = self._stop = None
        self._set_state("idle")
        self.finished_training.emit(self._last_update)

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.state_changed.emit(state)
