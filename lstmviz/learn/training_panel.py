"""Training panel: Train / Pause / Resume / Stop, progress, saving and resuming checkpoints.

Train builds a fresh model from the model panel's settings (weights drawn from the seed) on the
data panel's corpus (``core.recipes.new_trainer``), estimates the run's time from a short
measured burst (``engine.train.estimate_time``: a few steps and a validation pass of a scratch
copy, on the GUI thread under a busy cursor), shows it, asks before a run estimated over
``LONG_RUN_S`` (5 minutes), and hands the ``engine.train.Trainer`` to the
``TrainingController``; resuming a checkpoint is ``core.recipes.resume_trainer``.
Resume continues a paused run, or a stopped run exactly where it stopped (same trainer:
weights, optimizer state, data position, RNG). "Save model…" writes a checkpoint with the
optimizer and training state; "Resume from checkpoint…" continues such a checkpoint on the
current training text, bit for bit, up to the Steps value of the model panel. "Live heatmaps"
(remembered) chooses whether the viewer follows the weights while training.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import (QApplication, QCheckBox, QGridLayout, QLabel, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from engine.train import Trainer, estimate_time

from .. import dialogs
from ..crash_handler import one_line
from ..core.recipes import new_trainer, resume_trainer
from ..readout import Readout
from ..progress import format_duration
from ..training import LONG_RUN_S, TrainingController, estimate_summary

CHECKPOINT_FILTER = "lstmviz checkpoints (*.npz)"
READOUT_INTERVAL_S = 0.5  # the progress bar and rate readout change at most twice a second
LIVE_VIEW_KEY = "training/live_heatmaps"  # QSettings key of the "Live heatmaps" check box
TRAIN_TIP = "Train a new model from the model panel's settings on the training text."


class TrainingPanel(QWidget):
    """Buttons, progress bar and rate/ETA readout for one ``TrainingController``.

    ``trainer_started(Trainer)`` is emitted (GUI thread) right before a run starts.
    """

    trainer_started = Signal(object)

    def __init__(self, controller: TrainingController, model_panel, data_panel, parent: QWidget | None = None,
                 settings: QSettings | None = None):
        super().__init__(parent)
        self.controller = controller
        self.model_panel = model_panel
        self.data_panel = data_panel
        self.train_button = _button("Train", TRAIN_TIP)
        self.pause_button = _button("Pause", "Pause after the current step (the run can be resumed).")
        self.resume_button = _button("Resume", "Continue the paused or stopped run exactly where it left off.")
        self.stop_button = _button("Stop", "Stop after the current step; the weights learned so far are kept.")
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
        self.reason_label = QLabel()  # why Train is disabled, on this tab (the form is on another)
        self.reason_label.setWordWrap(True)
        self.reason_label.setStyleSheet("color: #e0a040")
        self.rate_label = Readout("Idle.", reserve="999.9 steps/s — elapsed 00:00:00 — remaining 00:00:00")
        self.rate_label.setToolTip("Training speed, elapsed time and estimated time remaining.")
        self.estimate_label = QLabel()  # the last run's estimated time, measured when Train was pressed
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setToolTip("Measured from a short burst of training steps and one validation pass "
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
        self.stop_button.clicked.connect(controller.stop)
        self.save_button.clicked.connect(self.save)
        self.load_button.clicked.connect(self.resume_from_checkpoint)
        controller.state_changed.connect(self._update_buttons)
        controller.progressed.connect(self._on_progress)
        model_panel.validity_changed.connect(self._update_buttons)
        model_panel.reason_changed.connect(self._update_buttons)
        self._update_buttons()

    # --- commands ---------------------------------------------------------------------------
    def train(self) -> bool:
        """Start a fresh run from the form; errors are shown in a dialog. True if started."""
        try:
            corpus = self.data_panel.corpus
            model_config, train_config = self.model_panel.build(corpus)
            trainer = new_trainer(model_config, corpus, train_config)
            QApplication.setOverrideCursor(QCursor(Qt.WaitCursor))
            try:
                estimate = estimate_time(trainer)
            finally:
                QApplication.restoreOverrideCursor()
        except (ValueError, MemoryError) as exc:
            dialogs.show_error(self, "Cannot train", one_line(exc))
            return False
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
        if self.controller.is_active():
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
        idle = state == "idle"
        self.train_button.setEnabled(idle and self.model_panel.valid)
        reason = self.model_panel.reason
        self.train_button.setToolTip(f"{TRAIN_TIP}\nCannot train now: {reason}" if reason else TRAIN_TIP)
        self.pause_button.setEnabled(state == "running")
        self.resume_button.setEnabled(state == "paused" or (idle and self._can_continue()))
        self.stop_button.setEnabled(state in ("running", "paused"))
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
