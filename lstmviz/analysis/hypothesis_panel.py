"""Hypothesis selection, LSTMVis-style (``engine.analysis.hypothesis``), live on the viewed text.

The brushed span (``Session.brush``: a selection in the text panel, or a drag across a gate
heatmap) with the chosen quantity, layer, threshold and lead ("off before") gives the selected
units; the panel plots their values over the span (and the lead steps before it) and lists the
other places in the text where the same units (or the chosen fraction of them) are on together,
ranked as LSTMVis ranks them.
Clicking a match moves the cursor to its end. Editing the text, new weights or new settings
re-run the match off the GUI thread (one streaming pass for the span, one for the matches:
memory one chunk plus the listed matches, whatever the text length).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from engine.analysis.hypothesis import DEFAULT_THRESHOLD, MatchFinder, Selection, select_units
from engine.analysis.stream import cell_quantities, quantity

from ..plots import room_for_end_tick_labels
from .base import AnalysisPanel, layer_box, quantity_box
from .jobs import chunks, text_source

MATCHES_SHOWN = 50
PLOTTED_UNITS = 20  # curves drawn at most
SNIPPET = 30  # characters of a match shown in the list
DEBOUNCE_MS = 250
RESULT_HEIGHT = 80  # px: the least height of the plot and the match list


def run_hypothesis(model, ids, start, end, layer, name, threshold, lead, min_overlap, check):
    """The job: ``(selection, window values (n, K) of the selected units from start - lead to end,
    matches)``; ``check`` reports progress and cancels (``jobs.chunks``)."""
    first = max(0, start - lead)
    window = np.concatenate([quantity(tr, name, layer) for _, tr in chunks(model, ids, check, first, end)])  # (end - first, H)
    sel = select_units(window, start - first, end - first, threshold, lead)
    sel = Selection(start, end, sel.threshold, lead, sel.units)
    finder = MatchFinder(sel, model.config.hidden_size, min_overlap, limit=MATCHES_SHOWN)
    if sel.units:
        for _, tr in chunks(model, ids, check):
            finder.feed(quantity(tr, name, layer))
    return sel, window[:, list(sel.units)], finder.matches()  # (end - first, K)


class HypothesisPanel(AnalysisPanel):
    """Brush a span, see the units that switch on there and where else they do."""

    def __init__(self, session, parent=None):
        super().__init__(session, "hypothesis", parent)
        self.quantity = quantity_box(("h", "tanh_c", "i", "f", "g", "o", "r", "z", "n"))
        self.layer = layer_box(session)
        self.threshold = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.threshold.setRange(-100, 100)
        self.threshold.setValue(int(round(DEFAULT_THRESHOLD * 100)))
        self.threshold.setToolTip("A unit is on where its value is at least this threshold")
        self.threshold_label = QtWidgets.QLabel()
        self.lead = QtWidgets.QSpinBox()
        self.lead.setRange(0, 50)
        self.lead.setValue(0)
        self.lead.setPrefix("off before: ")
        self.lead.setToolTip("Steps before the span where a selected unit must be off (below the threshold)")
        self.overlap = QtWidgets.QSpinBox()
        self.overlap.setRange(10, 100)
        self.overlap.setValue(100)
        self.overlap.setSuffix(" % on")
        self.overlap.setToolTip("A match needs at least this share of the selected units on together")
        # controls in a compact column on the left, the plot and the matches beside it
        side = QtWidgets.QGridLayout()
        side.setContentsMargins(4, 0, 0, 0)
        side.setSpacing(2)
        side.addWidget(self.quantity, 0, 0, 1, 3)
        side.addWidget(self.layer, 1, 0)
        side.addWidget(self.lead, 1, 1, 1, 2)
        side.addWidget(QtWidgets.QLabel("threshold"), 2, 0)
        side.addWidget(self.threshold, 2, 1)
        side.addWidget(self.threshold_label, 2, 2)
        side.addWidget(self.overlap, 3, 0)
        side.setRowStretch(4, 1)
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "value")
        self.plot.setMinimumSize(200, RESULT_HEIGHT)
        self.plot.setYRange(-1.05, 1.05, padding=0)
        room_for_end_tick_labels(self.plot.getPlotItem())
        self.plot.setMouseEnabled(x=True, y=False)
        self.threshold_line = pg.InfiniteLine(angle=0, pen=pg.mkPen((255, 200, 0), style=QtCore.Qt.DashLine))
        self.plot.addItem(self.threshold_line)
        self.span_region = pg.LinearRegionItem(movable=False, brush=(90, 160, 240, 40))
        self.plot.addItem(self.span_region)
        self.curves = []
        self.matches = QtWidgets.QTableWidget(0, 5)
        self.matches.setHorizontalHeaderLabels(["steps", "text", "overlap", "extra", "length"])
        self.matches.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeToContents)
        self.matches.horizontalHeader().setSectionResizeMode(1, QtWidgets.QHeaderView.Stretch)
        self.matches.setWordWrap(False)
        self.matches.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.matches.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.matches.verticalHeader().setVisible(False)
        self.matches.setToolTip("Other places where the selected units are on together, best first; click to go there")
        self.matches.cellClicked.connect(self._on_match_clicked)
        self.matches.setMinimumSize(200, RESULT_HEIGHT)
        splitter = QtWidgets.QSplitter(QtCore.Qt.Horizontal)
        splitter.addWidget(self.plot)
        splitter.addWidget(self.matches)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([1000, 1000])  # halves
        row = QtWidgets.QHBoxLayout()
        row.setSpacing(4)
        row.addLayout(side)
        row.addWidget(splitter, 1)
        self.body.addLayout(row, 1)
        self.result = None  # (selection, values, matches) shown
        self._debounce = QtCore.QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.refresh_soon)
        for signal in (self.quantity.currentIndexChanged, self.layer.valueChanged, self.threshold.valueChanged,
                       self.lead.valueChanged, self.overlap.valueChanged):
            signal.connect(self._debounce.start)
        self.threshold.valueChanged.connect(self._show_threshold)
        session.brushed.connect(self.refresh_soon)
        self._show_threshold()
        self.say("Select a span of the text (drag in the Text panel or across a heatmap) to find the units that "
                 "switch on there.")

    def _show_threshold(self, *_):
        self.threshold_label.setText(f"{self.threshold_value():+.2f}")
        self.threshold_line.setPos(self.threshold_value())

    def threshold_value(self) -> float:
        return self.threshold.value() / 100.0

    def refresh(self) -> None:
        start, end = self.session.brush_span
        source = text_source(self.session)
        if source is None or end <= start:
            return
        model, ids, text = source
        args = (model, ids, start, end, min(self.layer.value(), model.config.num_layers - 1),
                self.quantity.currentData(), self.threshold_value(), self.lead.value(), self.overlap.value() / 100.0)
        recorded = cell_quantities(model.config.cell) + (("tanh_c",) if model.config.cell == "lstm" else ())
        if args[5] not in recorded:
            self.say(f"A {model.config.cell.upper()} layer records {', '.join(recorded)}: choose one of them.")
            return
        self.say(f"Matching steps {start}–{end - 1}…")
        self.start(lambda check: run_hypothesis(*args, check), text, model)

    def clear_results(self) -> None:
        self.result = None
        self._remove_curves()
        self.matches.setRowCount(0)

    def _remove_curves(self) -> None:
        for curve in self.curves:
            self.plot.removeItem(curve)
        self.curves = []

    def show_result(self, result) -> None:
        self.result = result
        sel, values, matches = result
        text = self.session.text
        first = max(0, sel.start - sel.lead)
        self._remove_curves()
        steps = np.arange(first, sel.end)  # (n,)
        self.curves = [self.plot.plot(steps, values[:, k], pen=pg.intColor(k, max(len(sel.units), 1)))
                       for k in range(min(len(sel.units), PLOTTED_UNITS))]
        self.span_region.setRegion((sel.start - 0.5, sel.end - 0.5))
        units = ", ".join(str(u) for u in sel.units[:40]) + (" …" if len(sel.units) > 40 else "")
        self.say(f"{len(sel.units)} unit{'s' * (len(sel.units) != 1)} on over “{_snippet(text, sel.start, sel.end)}”"
                 f"{': ' + units if sel.units else ' (lower the threshold or the steps off before)'}; "
                 f"{len(matches)} match{'es' * (len(matches) != 1)}")
        self.matches.setRowCount(len(matches))
        for row, m in enumerate(matches):
            cells = (f"{m.start}–{m.end - 1}", _snippet(text, m.start, m.end), str(m.overlap), str(m.extra), str(m.length))
            for col, value in enumerate(cells):
                self.matches.setItem(row, col, QtWidgets.QTableWidgetItem(value))

    def _on_match_clicked(self, row: int, _col: int) -> None:
        if self.result is not None and row < len(self.result[2]):
            self.session.seek(self.result[2][row].end)

    def figure(self):
        return self.plot

    def csv_rows(self):
        if self.result is None:
            return None
        sel, _, matches = self.result
        return (["start", "end", "overlap", "extra", "length", "selected_units"],
                [[m.start, m.end, m.overlap, m.extra, m.length, " ".join(map(str, sel.units))] for m in matches])


def _snippet(text: str, start: int, end: int) -> str:
    s = text[start:min(end, start + SNIPPET)].replace("\n", "⏎")
    return s + ("…" if end - start > SNIPPET else "")
