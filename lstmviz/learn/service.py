"""The learning docks' service: the data, model, training, loss and sampling panels, the
``TrainingController`` they share, and their wiring to the Session.

``LearningService(session, settings, hooks)`` builds the panels (``lstmviz.app``'s dock table
puts each in its dock) and wires them; ``hooks`` is the window's ``WindowHooks``:

* the controller's ``weights_updated`` relay swaps the new weights into the session through
  ``ViewerSync`` (rate-limited; the ``hooks.paint_later()`` widgets and the loss plot repaint
  one per event-loop turn), with the trace of the viewer's text that the training thread
  computed under them (the viewer's token ids are handed to the controller whenever the text
  changes), so the gate heatmaps show the model as it learns and the GUI thread only draws; a
  run's untrained model swaps in the same way (``ViewerSync.swap``), its final weights as soon
  as it ends, and a pause's at once; with the training panel's "Live heatmaps" unchecked, the
  worker traces nothing and the viewer only catches up at pauses and at the end;
* ``failed`` (an error, or divergence after the last finite weights were restored) shows an
  error dialog; a run that starts brings the Loss dock to the front;
* its close guard asks Save / Discard / Cancel while training (``dialogs.ask_save_discard_cancel``),
  then stops the worker and waits for it; once the window closes it stops and waits for every
  other worker thread (``lstmviz.threads.stop_all``);
* the demo's training corpus (``hooks.use_demo_corpus``) goes into the data panel.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Slot

from engine.model import SequenceModel

from .. import dialogs
from ..core.labels import lost_characters
from ..core.sequence import split_known
from ..training import TrainingController
from .data_panel import DataPanel
from .loss_plot import LossPlot
from .model_panel import ModelPanel
from .sampling_panel import SamplingPanel
from .training_panel import TrainingPanel
from .viewer_sync import ViewerSync

PREVIEW_CHARS = 400  # characters of the training text shown when the viewer's text does not fit
STATE_MESSAGES = {"running": "Training…", "paused": "Training paused.", "stopping": "Stopping training…",
                  "idle": "Training stopped."}


class LearningService(QObject):
    """The learning docks' panels and the training service they share (see the module docstring)."""

    def __init__(self, session, settings: QSettings | None, hooks):
        super().__init__()
        self.session = session
        self.hooks = hooks
        self.controller = TrainingController(self)
        self.model_panel = ModelPanel(settings)
        self.data_panel = DataPanel(check=self.model_panel.check_corpus)
        self.training_panel = TrainingPanel(self.controller, self.model_panel, self.data_panel, settings=settings)
        self.loss_plot = LossPlot()
        self.sampling_panel = SamplingPanel(session)
        self.setParent(self.training_panel)  # lives as long as the training dock
        self.viewer_sync = ViewerSync(session, self, paint_later=(*hooks.paint_later(), self.loss_plot))
        self.viewer_sync.live = self.training_panel.live_view.isChecked()
        self._plotted_trainer = None
        self._replaced_path = None  # the opened model a confirmed Train replaced (asked once)
        self.training_panel.replacing = self._what_training_replaces

        self.data_panel.corpus_changed.connect(self.model_panel.set_corpus)
        self.training_panel.trainer_started.connect(self._on_trainer_started)
        self.controller.progressed.connect(self.loss_plot.add_update)
        self.controller.weights_updated.connect(self._on_weights)
        session.text_changed.connect(self._hand_viewer_inputs)
        self.training_panel.live_view.toggled.connect(self._on_live_view)
        self.controller.failed.connect(self._on_failed)
        self.controller.finished_training.connect(self._on_finished)
        self.controller.state_changed.connect(self._on_state)
        hooks.add_close_guard(self.may_close)
        hooks.on_demo_corpus(self.data_panel.use_text)

    def _what_training_replaces(self, trainer) -> str:
        """Words for the confirmation before ``trainer`` replaces an opened model (the demo's or
        one from a file); "" once a confirmed run has replaced it, or with nothing open."""
        s = self.session
        if s.model is None or s.model_path is None or s.model_path == self._replaced_path:
            return ""
        name = Path(s.model_path).name
        words = (f"Train replaces the model shown ({name}) with a new one built from the Model tab's "
                 f"settings, its weights drawn from the seed, and trained on the Training data tab's text. "
                 f"{name} itself is not changed: File > Open model (or Help > Open demo) brings it back.")
        known = split_known(s.text, trainer.corpus.vocab) if s.text else None
        if known and known.unknown:
            lost = lost_characters(known.unknown, known.dropped)
            words += (" The text shown is replaced by the start of the training text, because "
                      f"the new model cannot read all of it: {lost}")
        return words

    # --- wiring (GUI thread) ----------------------------------------------------------------
    @Slot(object)
    def _on_trainer_started(self, trainer) -> None:
        if trainer is not self._plotted_trainer:  # a new run; continuing a stopped one keeps the curve
            self.loss_plot.reset()
            self._plotted_trainer = trainer
        self._replaced_path = self.session.model_path
        params = {name: value.copy() for name, value in trainer.model.params.items()}  # worker not started yet
        model = SequenceModel(trainer.model.config, params=params)
        self.viewer_sync.swap(lambda: self._show_untrained(model, trainer.corpus), rate_limited=False)
        self._hand_viewer_inputs()

    def _show_untrained(self, model: SequenceModel, corpus) -> None:
        """Swap a run's first weights into the viewer, with the start of the training text when
        the model cannot read the text shown."""
        text = self.session.text
        self.session.set_model(model, corpus.vocab)
        if not text or corpus.vocab.unknown(text):  # show some training text instead of a mangled one
            self.session.set_text(corpus.text[:PREVIEW_CHARS])

    @Slot()
    def _hand_viewer_inputs(self) -> None:
        """Tell the training thread which token ids the viewer shows (it traces them), or
        nothing when the heatmaps do not follow training live."""
        live = self.viewer_sync.live and self.session.sequence.traced_live
        self.controller.set_viewer_inputs(self.session.trace_inputs() if live else None)

    @Slot(bool)
    def _on_live_view(self, on: bool) -> None:
        self.viewer_sync.live = bool(on)
        self._hand_viewer_inputs()
        if on:
            self.viewer_sync.flush()  # catch up at once

    @Slot(object, object)
    def _on_weights(self, model: SequenceModel, trace) -> None:
        self.viewer_sync.offer(model, self.controller.trainer.corpus.vocab, trace)
        if self.controller.state == "paused":  # the weights a pause holds are shown, live or not
            self.viewer_sync.flush()

    @Slot(object)
    def _on_finished(self, _update) -> None:
        self.viewer_sync.flush()
        self.session.model_step = self.controller.trainer.step

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.viewer_sync.flush()  # e.g. the last finite weights after a divergence
        self.hooks.show_error("Training stopped", message)

    @Slot(str)
    def _on_state(self, state: str) -> None:
        self.hooks.show_status(STATE_MESSAGES[state], 5000)
        if state == "running":
            self.hooks.raise_panel("loss")  # show the curve (it may sit behind another tab)

    # --- close guard ------------------------------------------------------------------------
    def may_close(self) -> bool:
        """The window's close guard: while training, ask whether to save first (Cancel keeps the
        window open); then stop sampling."""
        if self.controller.is_active() and not self.confirm_close():
            return False
        self.sampling_panel.shutdown()
        return True

    def confirm_close(self) -> bool:
        """Called when the window is about to close while training: ask Save / Discard /
        Cancel, stop the worker and wait for it. True if the window may close."""
        choice = dialogs.ask_save_discard_cancel(self.hooks.dialog_parent)
        if choice == "cancel":
            return False
        self.controller.shutdown()
        if choice == "save":
            return self.training_panel.save()  # a cancelled save dialog keeps the window open
        return True
