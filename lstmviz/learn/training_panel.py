"""Training panel: Train / Pause / Resume / Stop, progress, saving and resuming checkpoints.

Train builds a fresh model from the model panel's settings (weights drawn from the seed) on the
data panel's corpus (``core.recipes.new_trainer``) and estimates the run's time from a short
measured burst (``engine.train.estimate_time``: a few steps and validation passes of a scratch
copy) in an :class:`EstimateWorker` off the GUI thread (``lstmviz.threads``; up to ~20 s for a
big model on a loaded machine). While it runs the estimate label says "Estimating the run's
time…", Train is disabled and Stop cancels it (nothing starts; closing the window stops it too,
through ``threads.stop_all``). When it arrives the panel shows it, asks before a run estimated
over ``LONG_RUN_S`` (5 minutes), asks before replacing the model shown (``replacing``), and
hands the ``engine.train.Trainer`` to the ``TrainingController``; ``estimate_ended(bool)`` then
says whether the run started. Resuming a checkpoint is ``core.recipes.resume_trainer``.
Resume continues a paused run, or a stopped run exactly where it stopped (same trainer:
weights, optimizer state, data position, RNG). "Save model…" writes a checkpoint with the
optimizer and training state; "Resume from checkpoint…" continues such a checkpoint on the
current training text, bit for bit, up to the Steps value of the model panel. "Live heatmaps"
(remembered) chooses whether the viewer follows the weights while training.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QSettings, Signal, Slot
from PySide6.QtWidgets import QCheckBox, QGridLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from engine.train import LONG_RUN_S, Trainer, estimate_time

from .. import dialogs, threads
from ..crash_handler import one_line
from ..core.recipes import new_trainer, resume_trainer
from ..readout import Readout
from ..progress import format_duration
from ..threads import Worker
from ..training import TrainingController, estimate_summary

CHECKPOINT_FILTER = "lstmviz checkpoints (*.npz)"
READOUT_INTERVAL_S = 0.5  # the progress bar and rate readout change at most twice a second
LIVE_VIEW_KEY = "training/live_heatmaps"  # QSettings key of the "Live heatmaps" check box
TRAIN_TIP = "Train a new model from the model panel's settings on the training text."
STOP_TIP = "Stop after the current step; the weights learned so far are kept."
ESTIMATING = "Estimating the run's time…"


class EstimateWorker(Worker):
    """Runs ``estimate_time(trainer)`` in its thread (the trainer itself is not changed; a scratch
    copy trains). ``estimated(TimeEstimate)`` unless ``stop_requested`` was set meanwhile;
    an error reaches ``failed(str)``."""

    estimated = Signal(object)

    def __init__(self, trainer: Trainer):
        super().__init__()
        self._trainer = trainer

    def work(self) -> None:
        estimate = estimate_time(self._trainer, stop=self.stop_requested)
        if estimate is not None and not self.stop_requested.is_set():
            self.estimated.emit(estimate)


class TrainingPanel(QWidget):
    """Buttons, progress bar and rate/ETA readout for one ``TrainingController``.

    ``trainer_started(Trainer)`` is emitted (GUI thread) right before a run starts;
    ``estimate_ended(bool)`` once the time estimate that ``train`` started has ended and its
    worker thread with it: True if the run started, False if it was cancelled, failed or declined
    (tests wait on it; Train can be pressed again from then on).
    """

    trainer_started = Signal(object)
    estimate_ended = Signal(bool)

    def __init__(self, controller: TrainingController, model_panel, data_panel, parent: QWidget | None = None,
                 settings: QSettings | None = None):
        super().__init__(parent)
        self.controller = controller
        self.model_panel = model_panel
        self.data_panel = data_panel
        self.train_button = _button("Train", TRAIN_TIP)
        self.pause_button = _button("Pause", "Pause after the current step (the run can be resumed).")
        self.resume_button = _button("Resume", "Continue the paused or stopped run exactly where it left off.")
        self.stop_button = _button("Stop", STOP_TIP)
        self.save_button = _button("Save model…", "Save the trained model with its optimizer and training "
                                                   "state, so training can later resume exactly.")
        self.load_button = _button("Resume from checkpoint…", "Continue training a saved checkpoint on the current "
                                                               "training text, up to the Steps value.")
        self.progress = QProgressBar()
        self.progress.setToolTip("Optimizer steps done out of the total.")
        self.progress.setFormat("no training run yet")  # "%v / %m steps" once a run starts
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self._readout_at = float("-inf")  # time.monotonic() of the last readout change
        self._holding = False  # paused, and the worker holds between two steps
        self._estimator: EstimateWorker | None = None  # the estimate's worker, until it has finished
        self._pending: Trainer | None = None  # its run, until the estimate is answered or cancelled
        self._deciding = False  # the estimate's questions are being asked
        self._outcome = False  # the run started (what ``estimate_ended`` reports once the worker ends)
        self.reason_label = QLabel()  # why Train is disabled, on this tab (the form is on another)
        self.reason_label.setWordWrap(True)
        self.reason_label.setStyleSheet("color: #e0a040")
        self.rate_label = Readout("Idle.", reserve="999.9 steps/s — elapsed 00:00:00 — remaining 00:00:00")
        self.rate_label.setToolTip("Training speed, elapsed time and estimated time remaining.")
        self.estimate_label = QLabel()  # the last run's estimated time, measured when Train was pressed
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setToolTip("Measured from a short burst of training steps and a validation pass "
                                       "when Train was pressed.")
        self.live_view = QCheckBox("Live heatmaps")
        self.live_view.setToolTip("Redraw the gate heatmaps and the text colours with the latest weights while "
                                  "training (about once a second). Off: training runs at about its full "
                                  "speed, and the views catch up when it pauses or stops.")
        self._settings = settings
        # What starting ``trainer`` replaces, in words ("" when nothing needs asking); set by the
        # service that knows what is shown. Train asks (``dialogs.ask_confirm``) when it is not empty.
        self.replacing: Callable[[Trainer], str] = lambda trainer: ""
        self.live_view.setChecked(True if settings is None else settings.value(LIVE_VIEW_KEY, True, type=bool))
        self.live_view.toggled.connect(self._remember_live_view)
        grid = QGridLayout()
        for k, button in enumerate((self.train_button, self.pause_button, self.resume_button, self.stop_button)):
            grid.addWidget(button, 0, k)
        grid.addWidget(self.save_button, 1, 0, 1, 2)
        grid.addWidget(self.load_button, 1, 2, 1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.progress)
        layout.addWidget(self.reason_label)
        layout.addWidget(self.rate_label)
        layout.addWidget(self.estimate_label)
        layout.addWidget(self.live_view)
        layout.addStretch(1)
        self.train_button.clicked.connect(self.train)
        self.pause_button.clicked.connect(controller.pause)
        self.resume_button.clicked.connect(self.resume)
        self.stop_button.clicked.connect(self.stop)
        self.save_button.clicked.connect(self.save)
        self.load_button.clicked.connect(self.resume_from_checkpoint)
        controller.state_changed.connect(self._update_buttons)
        controller.progressed.connect(self._on_progress)
        model_panel.validity_changed.connect(self._update_buttons)
        model_panel.reason_changed.connect(self._update_buttons)
        self._update_buttons()

    # --- commands ---------------------------------------------------------------------------
    def train(self) -> bool:
        """Build a fresh run from the form and start estimating its time in a worker thread (see
        the module docstring); errors are shown in a dialog. True if the estimate started: the run
        itself starts later, if at all (``estimate_ended``)."""
        if self._estimator is not None or self.controller.is_active():
            return False
        try:
            corpus = self.data_panel.corpus
            model_config, train_config = self.model_panel.build(corpus)
            trainer = new_trainer(model_config, corpus, train_config)
        except (ValueError, MemoryError) as exc:
            dialogs.show_error(self, "Cannot train", one_line(exc))
            return False
        worker = EstimateWorker(trainer)
        worker.estimated.connect(self._on_estimated)
        worker.failed.connect(self._on_estimate_failed)
        worker.finished.connect(self._on_estimate_finished)
        self._estimator, self._pending, self._outcome = worker, trainer, False
        self.estimate_label.setText(ESTIMATING)
        self._update_buttons()
        threads.start(worker, "lstmviz-estimate")
        return True

    def stop(self) -> None:
        """Stop: cancel the time estimate (nothing starts), or stop the run after its current step."""
        if self._pending is not None:
            self._cancel_estimate()
        else:
            self.controller.stop()

    def _cancel_estimate(self) -> None:
        if not self._estimator.stop_requested.is_set():
            self._estimator.stop_requested.set()
            self.estimate_label.setText("Estimate cancelled; nothing was started.")
            self._update_buttons()

    @Slot(object)
    def _on_estimated(self, estimate) -> None:
        trainer = self._pending
        if trainer is None or self._estimator.stop_requested.is_set():
            return
        self._pending = None  # answered: Stop no longer cancels it
        self._update_buttons()
        self._deciding = True
        try:
            self._outcome = self._decide(trainer, estimate)
        finally:
            self._deciding = False
        if self._estimator is None:  # the worker ended while the questions were asked
            self.estimate_ended.emit(self._outcome)

    def _decide(self, trainer: Trainer, estimate) -> bool:
        """Show ``estimate``, ask what needs asking, and start ``trainer``; True if it started."""
        summary = estimate_summary(estimate)
        self.estimate_label.setText(summary)
        if estimate.total_s > LONG_RUN_S and not dialogs.ask_confirm(
                self, "Long training run", f"This run will take a while. {summary}",
                f"Over {LONG_RUN_S // 60} minutes: fewer steps, a smaller model or shorter sequences train "
                f"faster. The run can be paused or stopped at any time; the weights learned so far are kept.",
                confirm="Train"):
            return False
        change = self.replacing(trainer)
        if change and not dialogs.ask_confirm(self, "Train a new model", change, confirm="Train"):
            return False
        self._start(trainer)
        return True

    @Slot(str)
    def _on_estimate_failed(self, message: str) -> None:
        if self._pending is not None and not self._estimator.stop_requested.is_set():
            self._pending = None
            self.estimate_label.setText("")
            dialogs.show_error(self, "Cannot train", message)

    @Slot()
    def _on_estimate_finished(self) -> None:
        self._estimator = self._pending = None
        self._update_buttons()
        if not self._deciding:  # else the questions' end reports it
            self.estimate_ended.emit(self._outcome)

    def resume(self) -> None:
        """Un-pause, or continue the stopped run with the same trainer."""
        if self.controller.state == "paused":
            self.controller.resume()
        elif self._can_continue():
            self._start(self.controller.trainer)

    def save(self) -> bool:
        """Save the last run's model with its training state (while idle or paused: a paused
        run waits between two steps, so its state is whole)."""
        trainer = self.controller.trainer
        if trainer is None or not self._may_save():
            return False
        path = dialogs.ask_save_path(self, "Save model", CHECKPOINT_FILTER)
        if not path:
            return False
        try:
            trainer.save(path)
        except (OSError, ValueError, MemoryError) as exc:
            dialogs.show_error(self, "Cannot save the model", one_line(exc))
            return False
        return True

    def resume_from_checkpoint(self) -> bool:
        """Ask for a checkpoint and continue training it on the current text."""
        if self.controller.is_active() or self._estimator is not None:
            return False
        path = dialogs.ask_open_path(self, "Resume training from checkpoint", CHECKPOINT_FILTER)
        if not path:
            return False
        try:
            if self.data_panel.corpus is None:
                raise ValueError("open or paste the training text the checkpoint was trained on first")
            trainer = resume_trainer(path, self.data_panel.corpus.text, self.model_panel.values()["steps"])
        except (ValueError, OSError, MemoryError) as exc:
            dialogs.show_error(self, "Cannot resume training", one_line(exc))
            return False
        self._start(trainer)
        return True

    def _remember_live_view(self, on: bool) -> None:
        if self._settings is not None:
            self._settings.setValue(LIVE_VIEW_KEY, bool(on))

    # --- display ----------------------------------------------------------------------------
    def _start(self, trainer: Trainer) -> None:
        self.progress.setFormat("%v / %m steps")
        self.progress.setRange(0, trainer.config.steps)
        self.progress.setValue(trainer.step)
        self.trainer_started.emit(trainer)
        self.controller.start(trainer)

    def _may_save(self) -> bool:
        """Idle, or paused with the worker holding between two steps (its paused payload came)."""
        state = self.controller.state
        return state == "idle" or (state == "paused" and self._holding)

    def _can_continue(self) -> bool:
        trainer = self.controller.trainer
        return (not self.controller.is_active() and trainer is not None
                and trainer.step < trainer.config.steps)

    def _on_progress(self, update) -> None:
        """Show the payload's step, rate and time remaining; at most every READOUT_INTERVAL_S
        (each change of a progress bar repaints it at once), always a run's last payload and
        the one it pauses at."""
        if update.paused:  # the worker now holds between two steps: its state can be saved
            self._holding = True
            self._update_buttons()
        now = time.monotonic()
        if not (update.final or update.paused or now - self._readout_at >= READOUT_INTERVAL_S):
            return
        self._readout_at = now
        p = update.progress
        self.progress.setRange(0, p.total_steps)
        self.progress.setValue(p.step)
        remaining = (p.total_steps - p.step) / p.steps_per_s if p.steps_per_s > 0 else float("nan")
        self.rate_label.setText(f"{p.steps_per_s:.1f} steps/s — elapsed {format_duration(p.elapsed_s)}"
                                f" — remaining {format_duration(remaining)}")

    def _update_buttons(self, *_args) -> None:
        state = self.controller.state
        estimating = self._pending is not None
        idle = state == "idle" and self._estimator is None
        self.train_button.setEnabled(idle and self.model_panel.valid)
        reason = self.model_panel.reason
        self.train_button.setToolTip(f"{TRAIN_TIP}\nCannot train now: {reason}" if reason else TRAIN_TIP)
        self.pause_button.setEnabled(state == "running")
        self.resume_button.setEnabled(state == "paused" or (idle and self._can_continue()))
        cancellable = estimating and not self._estimator.stop_requested.is_set()
        self.stop_button.setEnabled(state in ("running", "paused") or cancellable)
        self.stop_button.setText("Cancel" if estimating else "Stop")
        self.stop_button.setToolTip("Cancel the time estimate; nothing starts." if estimating else STOP_TIP)
        if state != "paused":
            self._holding = False
        self.save_button.setEnabled(self._may_save() and self.controller.trainer is not None)
        self.reason_label.setText(f"Cannot train yet: {reason}" if idle and reason else "")
        self.reason_label.setVisible(bool(idle and reason))
        self.load_button.setEnabled(idle)
        trainer = self.controller.trainer
        if idle and trainer is not None:
            self.rate_label.setText(f"Idle at step {trainer.step} of {trainer.config.steps}.")
        elif state != "running":
            self.rate_label.setText({"idle": "Idle.", "paused": "Paused.", "stopping": "Stopping…"}[state])


def _button(text: str, tooltip: str) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tooltip)
    return button
