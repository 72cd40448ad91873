"""Sampling panel: generate text from the session's current model and step through it.

Generate runs ``engine.sample.sample`` with the prime, length, temperature, top-k, greedy and
seed from the form (the same seed gives the same text) in a worker thread (``lstmviz.threads``;
a few thousand characters take seconds), on a private copy of the session's model, so the window stays
responsive. The result arrives through the GUI-thread signal ``generated(SampleResult)``
(errors through a dialog and ``generation_failed(str)``; a length whose recorded gates would not
fit in the memory available is refused before starting, ``engine.memory``). The length is capped at
``MAX_UI_LENGTH`` because sampling cannot be interrupted and closing the window waits for it.
"Step through" loads the result into the stepping view (``session.set_text`` then seek to 0),
so the gates behind every sampled character can be watched.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QCoreApplication, QThread, Signal, Slot
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLineEdit,
                               QPlainTextEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from engine import memory
from engine.model import SequenceModel
from engine.sample import SampleResult, sample

from .. import dialogs, threads

MAX_UI_LENGTH = 5000  # characters per Generate (a few seconds for a 2 x 300 LSTM)


class SampleWorker(threads.Worker):
    """Runs one ``sample`` call in its thread; emits ``done(result)`` or ``failed(message)``,
    then ``finished``."""

    done = Signal(object)

    def __init__(self, model: SequenceModel, vocab, options: dict):
        super().__init__()
        self._model, self._vocab, self._options = model, vocab, options

    def work(self) -> None:
        self.done.emit(sample(self._model, self._vocab, **self._options))


class SamplingPanel(QWidget):
    """See the module docstring. Reads ``session.model`` / ``session.vocab``; writes through
    ``session.set_text`` and ``session.seek``."""

    generated = Signal(object)
    generation_failed = Signal(str)

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.result: SampleResult | None = None
        self._thread: QThread | None = None
        self._outcome = None  # (signal, value) to emit when the thread has finished
        self.prime = QLineEdit()
        self.prime.setPlaceholderText("(empty: start from a newline)")
        self.prime.setToolTip("Text fed to the model before it generates; every character must be in "
                              "the model's vocabulary.")
        self.length = QSpinBox()
        self.length.setRange(1, MAX_UI_LENGTH)
        self.length.setValue(200)
        self.length.setToolTip(f"Characters to generate after the prime (at most {MAX_UI_LENGTH}).")
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.05, 5.0)
        self.temperature.setDecimals(2)
        self.temperature.setSingleStep(0.05)
        self.temperature.setValue(1.0)
        self.temperature.setToolTip("Below 1: more likely, more repetitive text; above 1: more varied, "
                                    "more mistakes.")
        self.top_k = QSpinBox()
        self.top_k.setRange(0, 100_000)
        self.top_k.setSpecialValueText("off")
        self.top_k.setToolTip("Sample only among the k most likely characters (off: all of them).")
        self.greedy = QCheckBox("Greedy (always the most likely character)")
        self.greedy.setToolTip("Deterministic: ignores temperature, top-k and seed.")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Random seed: the same seed, model and settings give the same text.")
        self.generate_button = QPushButton("Generate")
        self.generate_button.setToolTip("Sample text from the current model.")
        self.generate_button.clicked.connect(self.generate)
        self.step_button = QPushButton("Step through")
        self.step_button.setToolTip("Load the sampled text into the stepping view to watch the gates "
                                    "behind each character.")
        self.step_button.setEnabled(False)
        self.step_button.clicked.connect(self.step_through)
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        self.output.setPlaceholderText("Generated text appears here.")
        self.output.setToolTip("The prime followed by the generated characters.")
        form = QFormLayout()
        form.addRow("Prime", self.prime)
        form.addRow("Length", self.length)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-k", self.top_k)
        form.addRow("", self.greedy)
        form.addRow("Seed", self.seed)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.step_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.output, 1)

    @property
    def busy(self) -> bool:
        """True while a sample is being generated."""
        return self._thread is not None

    def generate(self) -> bool:
        """Start sampling with the form's settings; False (with an error dialog) if it cannot."""
        model, vocab = self.session.model, self.session.vocab
        if self.busy:
            return False
        if model is None or vocab is None:
            dialogs.show_error(self, "Cannot generate", "Open or train a model first.")
            return False
        length = self.length.value()
        try:
            memory.check_fits(f"sampling {length} characters",
                              memory.sample_bytes(model.config, len(self.prime.text()) + length),
                              detail="the recorded gates of every step")
        except ValueError as exc:
            dialogs.show_error(self, "Cannot generate", str(exc))
            return False
        top_k = self.top_k.value() or None
        options = dict(prime=self.prime.text(), length=length, temperature=self.temperature.value(),
                       top_k=None if top_k is None else min(top_k, len(vocab)), greedy=self.greedy.isChecked(),
                       rng=np.random.Generator(np.random.PCG64(self.seed.value())))
        own_model = SequenceModel(model.config, params=model.params)  # own prepared-weights cache
        worker = SampleWorker(own_model, vocab, options)
        worker.done.connect(self._on_done)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)
        self.generate_button.setEnabled(False)
        self.generate_button.setText("Generating…")
        self._thread = threads.start(worker, "lstmviz-sampling")
        return True

    def shutdown(self) -> None:
        """Wait for a running sample to end (it cannot be interrupted; the length is capped)."""
        if self._thread is not None:
            threads.wait(self._thread)
            QCoreApplication.sendPostedEvents(self)
            if self._thread is not None:
                self._on_finished()

    @Slot(object)
    def _on_done(self, result: SampleResult) -> None:
        self.result = result
        self.output.setPlainText(result.text)
        self.step_button.setEnabled(True)
        self._outcome = (self.generated, result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        dialogs.show_error(self, "Cannot generate", message)
        self._outcome = (self.generation_failed, message)

    @Slot()
    def _on_finished(self) -> None:
        if self._thread is None:
            return
        threads.wait(self._thread)  # run() has returned and quit() was called: returns promptly
        self._thread = None
        self.generate_button.setEnabled(True)
        self.generate_button.setText("Generate")
        if self._outcome is not None:  # announced once the panel is ready for the next Generate
            signal, value = self._outcome
            self._outcome = None
            signal.emit(value)

    def step_through(self) -> None:
        """Show the last sample in the stepping view, from its first character."""
        if self.result is None:
            return
        self.session.set_text(self.result.text)
        self.session.seek(0)
