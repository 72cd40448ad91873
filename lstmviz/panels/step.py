"""Current step panel: the vectors of the selected layer at the current step, side by side
as colour strips (unit 0 at the top), and the model's top-k next-character predictions as a bar
chart, the true next character's bar in red. For a numeric series the right-hand plot shows the
predicted next value(s) against the actual ones, in original units when the sequence knows the
scaling (``SeriesSequence.original``), else scaled. ``PREDICTION_VIEWS`` picks the right-hand
plot by ``session.sequence.predicts_characters``; a model without an output layer (head
"none") shows ``NoPredictions``' note instead."""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from engine.data import display_char
from engine.quantities import RECORDED_NAMES as PANEL_NAMES

from ..core.labels import step_label
from ..plots import colormap_for
from ..session import Session
from ..still_parts import cache_still_parts
from ..shown import RefreshWhenShown

TOP_K = 10
PREDICTED = (90, 140, 220)
TRUE_NEXT = (220, 60, 60)


class CurrentStepPanel(RefreshWhenShown, QtWidgets.QWidget):
    """Colour strips of the current step's vectors and the top-k predictions. Behind another
    tab (e.g. the loss curve while training) it skips updates and catches up when shown."""

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.vectors_title = QtWidgets.QLabel()
        self.predictions_title = QtWidgets.QLabel()
        titles = QtWidgets.QHBoxLayout()
        titles.setContentsMargins(6, 2, 6, 2)  # room below a glyph that sits low ("␣")
        titles.addWidget(self.vectors_title, 3)
        titles.addWidget(self.predictions_title, 2)
        self.plots = pg.GraphicsLayoutWidget()
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(titles)
        layout.addWidget(self.plots, 1)
        self.setMinimumSize(260, 200)
        self.plots.ci.setContentsMargins(2, 2, 2, 2)

        self.vectors = self.plots.addPlot(row=0, col=0)
        self.vectors.invertY(True)
        self.vectors.setMouseEnabled(x=False, y=False)
        self.vectors.hideButtons()
        self.vectors.setMenuEnabled(False)
        self.vectors.setLabel("left", "unit")
        self.strips = {}
        for name in PANEL_NAMES:
            item = pg.ImageItem(axisOrder="row-major")
            self.vectors.addItem(item)
            self.strips[name] = item
        self.unit_marker = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen((255, 80, 80), width=1.5))
        self.vectors.addItem(self.unit_marker, ignoreBounds=True)

        self.predictions = self.plots.addPlot(row=0, col=1)
        self.predictions.invertY(True)
        self.predictions.setMouseEnabled(x=False, y=False)
        self.predictions.hideButtons()
        self.predictions.setMenuEnabled(False)
        self.predictions.setXRange(0, 1, padding=0.02)
        self.predictions.setYRange(-0.5, TOP_K - 0.5, padding=0)
        self.predictions.setLabel("bottom", "probability")
        self.bars = pg.BarGraphItem(x0=[], y=[], height=0.75, width=[])
        self.predictions.addItem(self.bars)
        symbol = dict(symbol="o", symbolSize=9, pen=None)
        self.predicted_points = pg.PlotDataItem(symbolBrush=PREDICTED, symbolPen=None, **symbol)
        self.actual_points = pg.PlotDataItem(symbolBrush=TRUE_NEXT, symbolPen=None, **symbol)
        for item in (self.predicted_points, self.actual_points):
            self.predictions.addItem(item)
        self.plots.ci.layout.setColumnStretchFactor(0, 3)
        self.plots.ci.layout.setColumnStretchFactor(1, 2)
        cache_still_parts(self.plots)
        self.top: list = []  # [(char, probability)] of the current step, most likely first
        self.forecast: tuple | None = None  # series: (predicted (K,), actual (K,) or None), shown units
        self._layout = None  # what the axes and colormaps were set up for (see ``layout`` below)
        self._predicted = CharacterPredictions  # the right-hand plot's kind, by ``session.sequence``

        session.model_changed.connect(self._on_model_changed)
        session.stepped.connect(self.refresh_soon)  # also follows every model or text change
        session.selection_changed.connect(self.refresh_soon)
        session.colormap_changed.connect(self._on_colormap_changed)
        self._on_model_changed()

    def _on_model_changed(self):
        s = self.session
        headless = s.model is not None and s.model.config.head == "none"
        self._predicted = NoPredictions if headless else PREDICTION_VIEWS[s.sequence.predicts_characters]
        layout = self._predicted.layout(s)
        if layout == self._layout:
            return  # new weights for the same text model (e.g. while training): nothing to rebuild
        self._layout = layout
        H = max(s.hidden_size, 1)
        for name, item in self.strips.items():
            item.setVisible(name in s.names)
        self.vectors.getAxis("bottom").setTicks([list(enumerate(s.names))])
        self.vectors.setXRange(-0.5, max(len(s.names), 1) - 0.5, padding=0)
        self.vectors.setYRange(-0.5, H - 0.5, padding=0)
        self.setToolTip("Left: the selected layer's vectors at the current step (one column each, "
                        f"unit 0 at the top). Right: {self._predicted.TOOLTIP}.")
        self._predicted.set_axes(self, s)
        self._apply_colormaps(s.colorblind)

    def _apply_colormaps(self, colorblind: bool):
        for name, item in self.strips.items():
            item.setColorMap(colormap_for(name, colorblind))

    def _on_colormap_changed(self, colorblind: bool):
        self._layout = None
        self._apply_colormaps(colorblind)
        self.refresh_soon()

    def refresh(self, *_):
        """Show step ``t - 1`` (the character or value just read) and the prediction made there."""
        s = self.session
        t = s.t
        if not s.ready or t == 0:
            for item in self.strips.values():
                item.clear()
            self.bars.setOpts(x0=[], y=[], width=[], brushes=[])
            self.predicted_points.setData([], [])
            self.actual_points.setData([], [])
            self._predicted.clear(self)
            self.top, self.forecast = [], None
            self.vectors_title.setText("before the first step")
            self.predictions_title.setText(self._predicted.EMPTY_TITLE)
            return
        window = s.records(t - 1, t)  # row 0 is step t - 1
        for k, name in enumerate(s.names):
            column = window.gate(name, s.layer)[0]  # (H,)
            item = self.strips[name]
            item.setImage(np.ascontiguousarray(column[:, None], dtype=np.float32),
                          autoLevels=False, levels=s.levels(name, s.layer))
            item.setRect(QtCore.QRectF(k - 0.42, -0.5, 0.84, column.shape[0]))
        shown = s.sequence.shown(t - 1)
        self.vectors_title.setText(f"{step_label(t - 1)}: <b>{html.escape(shown)}</b> &nbsp; layer {s.layer}")
        if s.unit >= 0:
            self.unit_marker.setValue(s.unit)
            self.unit_marker.show()
        else:
            self.unit_marker.hide()
        self._predicted.show(self, s, window.outputs[0], t)  # (V,) or (K,)


class CharacterPredictions:
    """Text: the ``TOP_K`` most likely next characters as bars, the true next one's in red."""

    TOOLTIP = "the most likely next characters; the red bar is the character that actually comes next"
    EMPTY_TITLE = "next character"

    @staticmethod
    def layout(s: Session) -> tuple:
        """What the axes depend on: new weights for the same model keep them."""
        return (s.sequence.kind, s.names, s.hidden_size, s.colorblind)

    @staticmethod
    def set_axes(panel: CurrentStepPanel, s: Session) -> None:
        plot = panel.predictions
        plot.invertY(True)
        plot.getAxis("left").setTicks([[]])
        plot.setLabel("bottom", "probability")
        plot.getAxis("bottom").setTicks(None)
        plot.setXRange(0, 1, padding=0.02)
        plot.setYRange(-0.5, TOP_K - 0.5, padding=0)

    @staticmethod
    def clear(panel: CurrentStepPanel) -> None:
        panel.predictions.getAxis("left").setTicks([[]])

    @staticmethod
    def show(panel: CurrentStepPanel, s: Session, probs: np.ndarray, t: int) -> None:
        """The ``TOP_K`` most likely next characters after step ``t - 1``, the true next one's bar in red."""
        if panel.forecast is not None:  # a series' points are shown: cleared once, not on every step
            panel.predicted_points.setData([], [])
            panel.actual_points.setData([], [])
            panel.forecast = None
        k = min(TOP_K, probs.shape[0])
        best = np.argsort(-probs, kind="stable")[:k]  # (k,)
        true_next = s.vocab.index(s.text[t]) if t < len(s.text) else -1
        panel.top = [(s.vocab.chars[i], float(probs[i])) for i in best]
        brushes = [pg.mkBrush(TRUE_NEXT if i == true_next else PREDICTED) for i in best]
        panel.bars.setOpts(x0=np.zeros(k), y=np.arange(k), width=probs[best].astype(float), brushes=brushes)
        labels = [(j, f"{display_char(ch)}  {p:.2f}") for j, (ch, p) in enumerate(panel.top)]
        panel.predictions.getAxis("left").setTicks([labels])
        if true_next >= 0 and true_next not in best:
            title = f"next: <b>{html.escape(display_char(s.text[t]))}</b> (p={probs[true_next]:.3f}, not in top {k})"
        elif true_next >= 0:
            title = f"next character: <b style='color:#dc3c3c'>{html.escape(display_char(s.text[t]))}</b>"
        else:
            title = "next character (end of text)"
        panel.predictions_title.setText(title)


class ValuePredictions:
    """A series: the predicted next value(s) against the actual ones, by steps ahead, in
    original units when the sequence knows them (``sequence.original``)."""

    TOOLTIP = "the predicted next values (blue) against the actual ones (red), by steps ahead"
    EMPTY_TITLE = "next value"

    @staticmethod
    def layout(s: Session) -> tuple:
        """Every series has its own y range (that of its actual values)."""
        return (s.sequence, s.names, s.hidden_size, s.colorblind)

    @staticmethod
    def set_axes(panel: CurrentStepPanel, s: Session) -> None:
        """Values by horizon step, y fixed to the actual values' range."""
        plot = panel.predictions
        plot.invertY(False)
        plot.getAxis("left").setTicks(None)
        K = s.model.config.output_size
        plot.setLabel("bottom", "steps ahead")
        plot.getAxis("bottom").setTicks([[(k, str(k)) for k in range(1, K + 1)]])
        plot.setXRange(0.5, K + 0.5, padding=0)
        targets = s.sequence.targets
        if targets is not None and targets.size:
            actual = s.sequence.original(targets)  # (T, K)
            lo, hi = float(actual.min()), float(actual.max())
            plot.setYRange(lo, hi if hi > lo else lo + 1.0, padding=0.1)
        else:
            plot.enableAutoRange(axis="y")

    @staticmethod
    def clear(panel: CurrentStepPanel) -> None:
        pass

    @staticmethod
    def show(panel: CurrentStepPanel, s: Session, output: np.ndarray, t: int) -> None:
        """The prediction made at step ``t - 1`` against the actual next value(s)."""
        sequence = s.sequence
        predicted = sequence.original(output)  # (K,)
        actual = None if sequence.targets is None else sequence.original(sequence.targets[t - 1])  # (K,)
        panel.forecast = (predicted, actual)
        panel.bars.setOpts(x0=[], y=[], width=[], brushes=[])
        panel.top = []
        ahead = np.arange(1, predicted.shape[0] + 1)  # (K,)
        panel.predicted_points.setData(ahead - 0.08, predicted)
        panel.actual_points.setData([] if actual is None else ahead + 0.08, [] if actual is None else actual)
        units = "" if sequence.has_original_units else " (scaled)"
        title = f"next{units}: <b style='color:#5a8cdc'>predicted {predicted[0]:.4g}</b>"
        if actual is not None:
            title += f" &nbsp; <b style='color:#dc3c3c'>actual {actual[0]:.4g}</b>"
        panel.predictions_title.setText(title)


class NoPredictions:
    """A model without an output layer (head "none"): the right-hand plot stays empty and its
    title says why."""

    TOOLTIP = "nothing: this model has no output layer, so it makes no predictions"
    EMPTY_TITLE = "no predictions: this model has no output layer"

    @staticmethod
    def layout(s: Session) -> tuple:
        return ("headless", s.names, s.hidden_size, s.colorblind)

    @staticmethod
    def set_axes(panel: CurrentStepPanel, s: Session) -> None:
        panel.predictions.getAxis("left").setTicks([[]])

    @staticmethod
    def clear(panel: CurrentStepPanel) -> None:
        pass

    @staticmethod
    def show(panel: CurrentStepPanel, s: Session, output: np.ndarray, t: int) -> None:
        """Nothing to draw: the output is the top layer's h, shown on the left."""
        panel.bars.setOpts(x0=[], y=[], width=[], brushes=[])
        panel.predicted_points.setData([], [])
        panel.actual_points.setData([], [])
        panel.top, panel.forecast = [], None
        panel.predictions_title.setText(NoPredictions.EMPTY_TITLE)


PREDICTION_VIEWS = {True: CharacterPredictions, False: ValuePredictions}  # by ``sequence.predicts_characters``
