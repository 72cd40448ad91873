"""Vanilla RNN vs LSTM: train both, same size, same data, same seed, and compare.

"Train both" builds an Elman RNN and an LSTM with the chosen hidden size on the viewer's text
(with shorter BPTT chunks if it is too short for one batch at the chosen length, down to
MIN_SEQ_LEN; only below that the bundled demo corpus), and trains them at the same
time, each through its own ``lstmviz.training.TrainingController`` (a worker thread each); the
pair and its training are ``core.recipes.compare_trainers`` / ``compare_config``. Their
smoothed training losses are overlaid (``core.history.LossHistory`` keeps and decimates the
points); validation losses are drawn as dots. When a model finishes, ``models_changed`` carries
the trained pair to the gradient-flow plot, and "Step through" swaps either into the viewer.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from engine.data import CharVocab, TextCorpus, load_text
from engine.errors import DataError
from engine.model import ModelConfig
from engine.settings import settings_of
from engine.train import TrainConfig

from .. import dialogs
from ..assets_path import asset_path
from ..core.history import LossHistory
from ..core.recipes import compare_config, compare_trainers, copy_model
from ..forms import setting_widget
from ..training import TrainingController

CELLS = {"rnn": ("vanilla RNN", "#D55E00"), "lstm": ("LSTM", "#0072B2")}  # label, colour
DEMO_CORPUS = "demo.txt"
MIN_SEQ_LEN = 8  # shortest BPTT chunk the comparison shortens to, to train on the viewer's text
EXPECT = ("<b>What to expect.</b> The LSTM's gates let it keep a fact for many steps (a bracket opened long "
          "ago, an open quote); the vanilla RNN carries everything through one tanh and forgets within a "
          "few dozen steps, as Gradient flow shows. On a short run over an easy text the RNN can still "
          "come out ahead: it has a quarter of the weights to fit, and what it needs is local. Train longer, "
          "on a longer text with deep nesting, to see the LSTM pull ahead.")
MODEL_SETTINGS, TRAIN_SETTINGS = settings_of(ModelConfig), settings_of(TrainConfig)


class ComparePanel(QtWidgets.QWidget):
    """Trains an RNN and an LSTM side by side (see the module docstring).

    ``models`` maps "rnn"/"lstm" to the latest trained ``SequenceModel``; ``vocab`` is their
    shared vocabulary; ``histories[cell]`` the smoothed-loss ``LossHistory`` as plotted.
    """

    models_changed = QtCore.Signal(object)  # {label: (model, vocab)} of the finished models

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.models: dict = {}
        self.vocab: CharVocab | None = None
        self.controllers = {cell: TrainingController(self) for cell in CELLS}
        self.histories = {cell: LossHistory() for cell in CELLS}
        self.val_histories = {cell: LossHistory() for cell in CELLS}

        self.hidden = setting_widget(MODEL_SETTINGS["hidden_size"], value=64, low=4, high=512,
                                     tip="Hidden units of both models")
        self.steps = setting_widget(TRAIN_SETTINGS["steps"], value=600, low=10, high=100_000,
                                    tip="Optimizer steps for each model")
        self.seq_len = setting_widget(TRAIN_SETTINGS["seq_len"], value=64, low=2, high=400,
                                      tip="Characters per truncated-BPTT chunk")
        self.train_button = QtWidgets.QPushButton("Train both")
        self.train_button.setToolTip("Train a vanilla RNN and an LSTM of this size on the same text, side by side")
        self.train_button.clicked.connect(self.train)
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.step_box = QtWidgets.QComboBox()
        self.step_box.setToolTip("Which trained model the gate heatmaps step through")
        self.step_box.setMinimumContentsLength(max(len(label) for label, _ in CELLS.values()))  # never clipped
        self.step_box.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.step_button = QtWidgets.QPushButton("Step through")
        self.step_button.clicked.connect(self.show_in_viewer)
        self.status = QtWidgets.QLabel("Train both to compare how fast they learn and how far back their gradients reach.")
        self.status.setWordWrap(True)
        self.expect = QtWidgets.QLabel(EXPECT)
        self.expect.setWordWrap(True)

        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "smoothed loss", units="nats/char")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.addLegend(offset=(-10, 10))
        self.curves, self.val_curves = {}, {}
        for cell, (label, colour) in CELLS.items():
            self.curves[cell] = self.plot.plot(pen=pg.mkPen(colour, width=2), name=label)
            self.val_curves[cell] = self.plot.plot(pen=None, symbol="o", symbolSize=6, symbolBrush=colour,
                                                   name=f"{label} validation")

        form = QtWidgets.QHBoxLayout()
        for text, widget in (("hidden", self.hidden), ("steps", self.steps), ("seq len", self.seq_len)):
            form.addWidget(QtWidgets.QLabel(text))
            form.addWidget(widget)
        form.addWidget(self.train_button)
        form.addWidget(self.stop_button)
        form.addStretch(1)
        form.addWidget(self.step_box)
        form.addWidget(self.step_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(form)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.expect)

        for cell, controller in self.controllers.items():
            controller.progressed.connect(lambda update, cell=cell: self._on_progress(cell, update))
            controller.finished_training.connect(lambda _update, cell=cell: self._on_finished(cell))
            controller.failed.connect(lambda message, cell=cell: self._on_failed(cell, message))
            controller.state_changed.connect(self._update_buttons)
        self._update_buttons()

    # --- commands -----------------------------------------------------------------------------
    def training_text(self, seq_len: int, batch_size: int) -> tuple[str, str, int]:
        """``(text, where it came from, chunk length)``: the viewer's text at ``seq_len``, or at
        the longest shorter chunk (halving, down to MIN_SEQ_LEN) at which one batch fits; else
        the demo corpus at ``seq_len``."""
        text = self.session.text
        length = seq_len
        while text and length >= min(seq_len, MIN_SEQ_LEN):
            try:
                TextCorpus(text).check_trainable(length, batch_size)
                shorter = "" if length == seq_len else f", in chunks of {length} characters (it is short)"
                return text, f"the viewer's text{shorter}", length
            except DataError:
                length //= 2
        path = asset_path(DEMO_CORPUS)
        if path is None:
            raise DataError("the viewer's text is too short to train on and the demo corpus is missing; "
                            "open a longer text first")
        return load_text(path), "the demo corpus (the viewer's text is too short)", seq_len

    def train(self) -> None:
        """Start both runs (refused with an error dialog if a run is active or the data is unusable)."""
        if self.is_active():
            return
        config = compare_config(self.seq_len.value(), self.steps.value())
        try:
            text, source, seq_len = self.training_text(config.seq_len, config.batch_size)
            config = compare_config(seq_len, self.steps.value())
            corpus, trainers = compare_trainers(text, self.hidden.value(), config)
        except (ValueError, OSError) as e:
            dialogs.show_error(self, "Cannot train the comparison", str(e))
            return
        self.vocab, self.models = corpus.vocab, {}
        for cell in CELLS:
            self.histories[cell].clear()
            self.val_histories[cell].clear()
            self._redraw(cell)
        self.step_box.clear()
        self.status.setText(f"Training on {source} ({len(text):,} characters)…")
        for cell, trainer in trainers.items():
            self.controllers[cell].start(trainer)

    def stop(self) -> None:
        for controller in self.controllers.values():
            controller.stop()

    def shutdown(self) -> None:
        """Stop both runs and wait for their threads (call before the window goes away)."""
        for controller in self.controllers.values():
            controller.shutdown()

    def is_active(self) -> bool:
        return any(c.is_active() for c in self.controllers.values())

    def show_in_viewer(self) -> None:
        """Swap the chosen trained model into the viewer (the heatmaps then step through it)."""
        cell = self.step_box.currentData()
        if cell in self.models:
            self.session.set_model(self.models[cell], self.vocab)

    # --- controller relays (GUI thread) -------------------------------------------------------
    def _on_progress(self, cell: str, update) -> None:
        self.histories[cell].extend(update.steps, update.smooth_loss)
        self.val_histories[cell].extend(update.val_steps, update.val_loss)
        self._redraw(cell)

    def _redraw(self, cell: str) -> None:
        self.curves[cell].setData(*self.histories[cell].decimated())
        self.val_curves[cell].setData(*self.val_histories[cell].decimated())

    def _on_finished(self, cell: str) -> None:
        self.models[cell] = copy_model(self.controllers[cell].trainer.model)  # the worker has ended
        self.step_box.clear()
        for name in CELLS:
            if name in self.models:
                self.step_box.addItem(CELLS[name][0], name)
        self.models_changed.emit({CELLS[c][0]: (m, self.vocab) for c, m in self.models.items()})
        if not self.is_active():
            self.status.setText(self._summary())
        self._update_buttons()

    def _summary(self) -> str:
        parts = []
        for cell in CELLS:
            steps, values = self.val_histories[cell].data()
            if len(values):
                parts.append(f"{CELLS[cell][0]}: validation loss {values[-1]:.3f} nats/char after {steps[-1]} steps")
        if not parts:
            return "Done."
        final = {cell: self.val_histories[cell].data()[1] for cell in CELLS}
        verdict = ""
        if all(len(v) for v in final.values()) and final["rnn"][-1] < final["lstm"][-1]:
            verdict = (" The RNN is ahead on this run: see What to expect below (a longer run on a longer, "
                       "more nested text favours the LSTM).")
        return "Done. " + "; ".join(parts) + "." + verdict

    def _on_failed(self, cell: str, message: str) -> None:
        dialogs.show_error(self, f"Training the {CELLS[cell][0]} stopped", message)

    def _update_buttons(self, *_) -> None:
        active = self.is_active()
        self.train_button.setEnabled(not active)
        self.stop_button.setEnabled(active)
        self.step_button.setEnabled(self.step_box.count() > 0)
