"""Training history: while a run trains, a bounded number of weight snapshots is kept
(``record``, fed by the training controller's weights relay), and a slider scrubs through them:
the chosen snapshot is swapped into the Session (``Session.set_model``), so every view (heatmaps,
text colours, probes, saturation, strip) shows that moment of training; "Latest" puts the newest
weights back. Snapshots are the relay's own copies (never mutated); when more than
``MAX_SNAPSHOTS`` arrive, every other older one is dropped, so the slider always spans the whole
run with at most ``MAX_SNAPSHOTS`` models in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6 import QtCore, QtWidgets

from ..readout import ElidedLabel
from ..shown import RefreshWhenShown

MAX_SNAPSHOTS = 40


@dataclass(frozen=True)
class Snapshot:
    """The weights at training step ``step`` (a ``SequenceModel`` and its ``CharVocab``)."""

    step: int
    model: object
    vocab: object


class HistoryPanel(RefreshWhenShown, QtWidgets.QWidget):
    """A slider over the kept snapshots."""

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.snapshots: list[Snapshot] = []
        self.shown: int | None = None  # index of the snapshot swapped in, None: the session's own model
        self.slider = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setToolTip("Scrub through training: every view shows the model at that moment")
        self.slider.valueChanged.connect(self.show_snapshot)
        self.latest = QtWidgets.QPushButton("Latest")
        self.latest.setToolTip("Back to the newest weights")
        self.latest.clicked.connect(self.to_latest)
        self.label = ElidedLabel()
        self.label.setStyleSheet("color: gray")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("Training history"))
        row.addWidget(self.slider, 1)
        row.addWidget(self.latest)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.label)
        layout.addStretch(1)
        self._describe()

    def refresh(self) -> None:
        self._describe()

    def record(self, model, vocab, step: int) -> None:
        """Keep a snapshot of ``model`` (not copied: the relay's copy, never mutated) at ``step``."""
        if self.snapshots and (self.snapshots[-1].model.config != model.config or self.snapshots[-1].vocab != vocab):
            self.snapshots.clear()  # another architecture: a new history
        self.snapshots.append(Snapshot(int(step), model, vocab))
        if len(self.snapshots) > MAX_SNAPSHOTS:
            older, newest = self.snapshots[:-1], self.snapshots[-1]
            self.snapshots = older[::2] + [newest]
        blocker = QtCore.QSignalBlocker(self.slider)
        self.slider.setRange(0, len(self.snapshots) - 1)
        if self.shown is None:
            self.slider.setValue(len(self.snapshots) - 1)
        del blocker
        self.refresh_soon()

    def show_snapshot(self, index: int) -> None:
        """Swap snapshot ``index`` into the Session (the newest: the latest weights)."""
        if not 0 <= index < len(self.snapshots):
            return
        snap = self.snapshots[index]
        self.shown = None if index == len(self.snapshots) - 1 else index
        if self.session.model is not snap.model:
            self.session.set_model(snap.model, snap.vocab)
        self._describe()

    def to_latest(self) -> None:
        if self.snapshots:
            self.slider.setValue(len(self.snapshots) - 1)
            self.show_snapshot(len(self.snapshots) - 1)

    def _describe(self) -> None:
        n = len(self.snapshots)
        if not n:
            self.label.setText("Train a model (Training dock): snapshots of its weights are kept here to scrub through.")
        else:
            k = self.slider.value()
            self.label.setText(f"Snapshot {k + 1} of {n}: training step {self.snapshots[k].step}"
                               + (" (latest)" if k == n - 1 else " — views show this moment; “Latest” returns"))
        self.latest.setEnabled(n > 0 and self.slider.value() != n - 1)
